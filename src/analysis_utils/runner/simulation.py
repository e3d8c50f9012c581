"""``python -m analysis_utils simulate``: run the Monte Carlo simulation (analysis_utils.simulation) for one or more
scenario params files on dask, then write its report; or rerun one replicate alone and compare it with the stored
result. Method: docs/methods/simulation.md."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd

from analysis_utils.simulation import engine, report
from analysis_utils.simulation.scenario import Scenario, default_scenario_files, generator_problem, load_scenario
from analysis_utils.study.project import ParamsError, project_root, resolve


def _scenarios(files: list[str] | None, replicates: int | None, exports_replicates: int | None) -> list[Scenario]:
    paths = [Path(f) for f in files] if files else default_scenario_files()
    if not paths:
        raise ParamsError("no scenario params files (params/simulation/*.yaml) found")
    out = []
    for p in paths:
        s = load_scenario(p)
        changes = {}
        if replicates is not None:
            changes["replicates"] = int(replicates)
        if exports_replicates is not None:
            changes["exports_replicates"] = int(exports_replicates)
        out.append(s.with_design(**changes) if changes else s)
    return out


def out_root_of(scenarios: list[Scenario], out: str | None) -> Path:
    """``--out`` if given, else ``<output_root>/simulation`` of the first scenario (all must agree)."""
    if out:
        return resolve(out, project_root())
    roots = {str(resolve(s.params["output_root"], project_root())) for s in scenarios}
    if len(roots) > 1:
        raise ParamsError(f"the scenario files name different output_root values {sorted(roots)}; give --out")
    return Path(roots.pop()) / "simulation"


def rerun_one(scenario: Scenario, out_root: Path, replicate: int, path: str) -> int:
    """Rerun one replicate alone; 0 when it reproduces the stored rows exactly (or none is stored), else 1."""
    res, stored = engine.rerun_replicate(scenario, out_root, replicate, path)
    print(f"scenario {scenario.name}, replicate {replicate} ({path}): generator seed {res.generator_seed}, "
          f"methods seed {res.method_seed}")
    if not res.ok:
        print(res.error, file=sys.stderr)
        return 1
    print(res.rows.drop(columns=["scenario", "path", "replicate", "generator_seed", "method_seed"]).to_string(
        index=False))
    if stored is None:
        print("(no stored result for this replicate to compare with)")
        return 0
    same = stored.reset_index(drop=True).equals(res.rows.reset_index(drop=True))
    if not same:
        try:
            pd.testing.assert_frame_equal(stored.reset_index(drop=True), res.rows.reset_index(drop=True))
        except AssertionError as exc:
            print(f"DIFFERS from the stored result: {exc}", file=sys.stderr)
    print("identical to the stored result" if same else "differs from the stored result")
    return 0 if same else 1


def main_simulate(files: list[str] | None, *, replicates: int | None = None, exports_replicates: int | None = None,
                  workers: int | None = None, scheduler: str | None = None, fresh: bool = False,
                  out: str | None = None, replicate: int | None = None, path: str = "fast",
                  report_only: bool = False, progress: bool = True) -> int:
    try:
        scenarios = _scenarios(files, replicates, exports_replicates)
        root = out_root_of(scenarios, out)
        if replicate is not None:
            if len(scenarios) != 1:
                raise ParamsError("--replicate reruns one replicate of one scenario: give a single --params file")
            return rerun_one(scenarios[0], root, replicate, path)
        t0 = time.perf_counter()
        failed = 0
        runnable, not_run = [], {}
        for s in scenarios:
            problem = generator_problem(s)
            if problem:
                failed += 1
                not_run[s.params_file] = problem
                print(f"scenario {s.name} ({s.params_file}) NOT RUN: this generator cannot simulate it: {problem}",
                      file=sys.stderr)
            else:
                runnable.append(s)
        scenarios = runnable
        if not scenarios:
            return 2
        if not report_only:
            where = f"the dask scheduler at {scheduler}" if scheduler else "a local dask cluster"
            total = sum(s.replicates + s.exports_replicates for s in scenarios)
            print(f"simulation: {len(scenarios)} scenario(s), up to {total} replicates, on {where} -> {root}")
            summaries = engine.run_simulation(scenarios, root, workers=workers, scheduler=scheduler, fresh=fresh,
                                              progress=progress)
            for s in summaries:
                failed += len(s.failed)
                print(f"  {s.scenario:<24} {s.ran:5d} replicate(s) run now, {len(s.failed)} failed -> {s.folder}")
                for f in s.failed:
                    print(f"    failed: {f['path']} replicate {f['replicate']} (root seed {f['root_seed']}, generator "
                          f"seed {f['generator_seed']}); rerun alone with --replicate {f['replicate']}"
                          f"{' --path exports' if f['path'] == 'exports' else ''}")
        summary = report.write_report(scenarios, root, not_run)
        unavailable = {m: why for s in summary["scenarios"] for m, why in s["methods_unavailable"].items()}
        for m, why in unavailable.items():
            print(f"  method {m!r} not run: {why}")
        print(f"report: {root / report.SUMMARY_FILE}, tables/, figures/ ({time.perf_counter() - t0:.1f} s)")
        return 1 if failed else 0
    except (ParamsError, engine.SimulationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
