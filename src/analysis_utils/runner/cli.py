"""Command line: ``python -m analysis_utils run|synth|dictionary|manuscript|simulate``."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis_utils", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the notebooks in order for one or more params files")
    run.add_argument("--params", nargs="+", default=["params/default.yaml"], help="params YAML file(s)")
    run.add_argument("--workers", type=int, default=1, help="parallel runs when several params files are given "
                                                            "(local dask workers)")
    run.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="run the params files on the existing dask cluster at this scheduler address")
    run.add_argument("--no-progress", action="store_true", help="no per-cell progress bar (default under CI)")
    synth = sub.add_parser("synth", help="only generate the synthetic cohort named by a params file")
    synth.add_argument("--params", default="params/default.yaml")
    dic = sub.add_parser("dictionary", help="write the human-readable data dictionary from the contract YAML")
    dic.add_argument("--out", default="docs/data-dictionary.md")
    ms = sub.add_parser("manuscript", help="fill the Quarto manuscript from a finished run and render it if Quarto "
                                           "is on the PATH")
    ms.add_argument("--params", default="params/default.yaml", help="the params file of the run to use")
    ms.add_argument("--no-render", action="store_true", help="only prepare and check; do not call quarto")
    sim = sub.add_parser("simulate", help="Monte Carlo simulation of the estimators (ADEMP) on dask; "
                                          "docs/methods/simulation.md")
    sim.add_argument("--params", nargs="+", default=None,
                     help="scenario params file(s) (default: every params/simulation/*.yaml)")
    sim.add_argument("--replicates", type=int, default=None, help="replicates per scenario (default: from params)")
    sim.add_argument("--exports-replicates", type=int, default=None,
                     help="replicates also run through the exports and cleaning path (default: from params)")
    sim.add_argument("--workers", type=int, default=None, help="local dask workers (default: the machine's cores)")
    sim.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="address of an existing dask scheduler (e.g. tcp://host:8786) instead of a local cluster")
    sim.add_argument("--out", default=None, help="output folder (default: <output_root>/simulation)")
    sim.add_argument("--fresh", action="store_true", help="discard stored replicates of these scenarios first")
    sim.add_argument("--replicate", type=int, default=None,
                     help="rerun this one replicate alone (0-based) and compare it with the stored result")
    sim.add_argument("--path", choices=("fast", "exports"), default="fast", help="data path of --replicate")
    sim.add_argument("--report-only", action="store_true", help="only rebuild the report from stored replicates")
    sim.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    if args.command == "simulate":
        from analysis_utils.runner.simulation import main_simulate

        return main_simulate(args.params, replicates=args.replicates, exports_replicates=args.exports_replicates,
                             workers=args.workers, scheduler=args.scheduler, fresh=args.fresh, out=args.out,
                             replicate=args.replicate, path=args.path, report_only=args.report_only,
                             progress=not args.no_progress)
    from analysis_utils.runner import pipeline

    if args.command == "run":
        progress = not args.no_progress and not os.environ.get("CI") and sys.stderr.isatty()
        return pipeline.main_run(args.params, args.workers, progress, args.scheduler)
    if args.command == "synth":
        params = pipeline.load_params(args.params)
        params.setdefault("synthetic", {})["generate"] = True
        pipeline.generate_input(params)
        return 0
    if args.command == "manuscript":
        from analysis_utils.reporting import manuscript

        out = pipeline.output_dir(pipeline.load_params(args.params))
        if not (out / "run_manifest.json").is_file():
            print(f"error: {out} holds no finished run; run `python -m analysis_utils run --params {args.params}` "
                  "first", file=sys.stderr)
            return 2
        return 0 if manuscript.build(out, render_it=not args.no_render) else 1
    if args.command == "dictionary":
        from analysis_utils.study.contract import data_dictionary_markdown

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(data_dictionary_markdown(), encoding="utf-8")
        print(f"wrote {args.out}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
