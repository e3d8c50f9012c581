"""Benchmark: the default run with multiple imputation (params/default.yaml: m = 20, the within analyses of 04-06,
the tipping point) against the same run without it (``imputation.enabled: false``), side by side.

Each configuration runs the whole pipeline (``python -m analysis_utils run``) in a fresh subprocess on the same
synthetic input (generated once by the default params if absent). Reported per configuration: wall-clock time of
the run and of each notebook (from the runner's log), CPU time of the run's processes (user + system of every
waited-for descendant: kernels and their worker processes), and the peak resident memory of the largest single
process. The issue's target: the run with m = 20 takes at most twice as long as the run without imputation on the
2-core machine. Wall-clock times depend on what else the machine runs; CPU times much less.

Run: python benchmarks/bench_mi.py [--repeats N]
"""
from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"without MI": {"imputation": {"enabled": False}}, "with MI (m = 20)": {}}


def _params_file(folder: Path, name: str, overrides: dict) -> Path:
    base = yaml.safe_load((ROOT / "params" / "default.yaml").read_text())
    doc = {"base": str(ROOT / "params" / "default.yaml"), "run_name": f"bench_{name}",
           "output_root": str(folder / "outputs"), "input_dir": base["input_dir"],
           "synthetic": {"generate": False}, **overrides}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def run_once(params: Path) -> dict:
    """One pipeline run in a subprocess: wall seconds, per-notebook seconds, CPU seconds, peak RSS (MB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "analysis_utils", "run", "--params", str(params)], cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    log = proc.stdout + proc.stderr
    notebooks = {m.group(1): float(m.group(2)) for m in re.finditer(r"\] (\d\d_\w+)\.ipynb done in ([\d.]+) s", log)}
    return {"ok": proc.returncode == 0, "wall_s": wall, "notebooks": notebooks,
            "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "peak_rss_mb": after.ru_maxrss / 1024, "log_tail": log[-1500:] if proc.returncode else ""}


def main(repeats: int, keep: str | None = None) -> dict:
    raw = ROOT / yaml.safe_load((ROOT / "params" / "default.yaml").read_text())["input_dir"]
    if not raw.is_dir():
        from analysis_utils.runner import pipeline
        pipeline.generate_input(pipeline.load_params(ROOT / "params" / "default.yaml"), ROOT)
    results: dict[str, list[dict]] = {k: [] for k in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(keep) if keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        files = {k: _params_file(folder, f"c{i}", v) for i, (k, v) in enumerate(CONFIGS.items())}
        for _ in range(repeats):  # alternate the configurations so that a change in machine load hits both
            for name, path in files.items():
                r = run_once(path)
                if not r["ok"]:
                    print(f"{name}: run FAILED\n{r['log_tail']}")
                results[name].append(r)
    best = {k: min(v, key=lambda r: r["wall_s"]) for k, v in results.items()}
    names = list(CONFIGS)
    nbs = sorted(set().union(*(b["notebooks"] for b in best.values())))
    print(f"{'':<22}" + "".join(f"{n:>20}" for n in names) + f"{'ratio':>8}")
    for label, key, fmt in (("wall clock, s", "wall_s", "{:>20.1f}"), ("CPU (all processes), s", "cpu_s", "{:>20.1f}"),
                            ("peak RSS, MB", "peak_rss_mb", "{:>20.0f}")):
        a, b = best[names[0]][key], best[names[1]][key]
        print(f"{label:<22}" + fmt.format(a) + fmt.format(b) + f"{b / a:>8.2f}")
    for nb in nbs:
        a, b = best[names[0]]["notebooks"].get(nb, 0.0), best[names[1]]["notebooks"].get(nb, 0.0)
        print(f"  {nb:<20}" + f"{a:>20.1f}{b:>20.1f}" + (f"{b / a:>8.2f}" if a else f"{'':>8}"))
    ratio = best[names[1]]["wall_s"] / best[names[0]]["wall_s"]
    print(f"target: with MI <= 2 x without: {'met' if ratio <= 2 else 'NOT met'} (ratio {ratio:.2f}; "
          f"best of {repeats} run(s) each)")
    return {"best": best, "ratio_wall": ratio}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--keep", help="write the runs' params and outputs under this folder and keep them")
    args = ap.parse_args()
    out = main(args.repeats, args.keep)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=str))
