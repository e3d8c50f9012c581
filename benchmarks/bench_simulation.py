"""Benchmark of the Monte Carlo simulation (not a timed test; docs/methods/simulation.md).

1. Seconds per replicate, per piece: the default scenario's fast path (generation, then each method of the
   estimator set) over ``--serial`` replicates in this process, and one replicate of the exports-and-cleaning path.
2. Scaling from 1 to 2 workers: the same ``--replicates`` replicates on a dask LocalCluster of 1, then 2
   single-threaded worker processes (truth precomputed, cluster start excluded); parallel efficiency
   = T(1) / (2 T(2)); target >= 80 %.
3. Projection of the default simulation (every scenario file, its replicates and exports replicates) at 2, 16 and
   128 cores: total core-seconds / (cores x efficiency), and never below the longest single task.

Run: .venv/bin/python benchmarks/bench_simulation.py [--serial 8] [--replicates 24]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def serial(scenario, k: int) -> dict[str, float]:
    from analysis_utils.simulation import engine, estimators, sources

    from threadpoolctl import threadpool_limits

    per: dict[str, list[float]] = {}
    with threadpool_limits(limits=1):   # as engine.run_replicate: one BLAS thread per replicate
        return _serial(scenario, k, per, engine, estimators, sources)


def _serial(scenario, k: int, per: dict[str, list[float]], engine, estimators, sources) -> dict[str, float]:
    for r in range(k + 1):   # replicate 0 warms up imports and caches; not counted
        gen_seed, method_seed = engine.replicate_seeds(scenario.seed, r)
        t0 = time.perf_counter()
        frame, _ = sources.generate(scenario, gen_seed)
        t_gen = time.perf_counter() - t0
        s = estimators.settings_for(scenario.params, scenario.design, method_seed)
        _, secs = estimators.run_methods(frame, list(scenario.design["methods"]), s)
        if r:
            per.setdefault("generate (fast path)", []).append(t_gen)
            for m, v in secs.items():
                per.setdefault(m, []).append(v)
    return {k_: statistics.mean(v) for k_, v in per.items()}


def exports_once(scenario) -> float:
    from analysis_utils.simulation import engine

    t0 = time.perf_counter()
    res = engine.run_replicate(scenario, 0, "exports")
    if not res.ok:
        print(res.error, file=sys.stderr)
    return time.perf_counter() - t0


def scaling(scenario, n: int, workers: int, out: Path) -> float:
    from dask.distributed import Client, LocalCluster

    from analysis_utils.simulation import engine
    from analysis_utils.simulation.truth import scenario_truth

    s = scenario.with_design(replicates=n, exports_replicates=0)
    folder = s.output_dir(out_root=out)
    scenario_truth(s, folder)                      # cached: the timed run only reads it
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = Client(cluster)
    try:
        client.run(lambda: __import__("analysis_utils.simulation.estimators"))   # workers import before timing
        warm = s.with_design(replicates=workers)
        engine.run_simulation([warm], out / "warm", client=client, progress=False)
        t0 = time.perf_counter()
        engine.run_simulation([s], out, client=client, progress=False)
        return time.perf_counter() - t0
    finally:
        client.close()
        cluster.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serial", type=int, default=8)
    ap.add_argument("--replicates", type=int, default=24)
    args = ap.parse_args(argv)

    from analysis_utils.simulation.estimators import unavailable
    from analysis_utils.simulation.scenario import default_scenario_files, generator_problem, load_scenario

    default = load_scenario(ROOT / "params" / "simulation" / "default.yaml")
    print(f"1. seconds per replicate (default scenario, mean of {args.serial} fast-path replicates)")
    per = serial(default, args.serial)
    for k, v in per.items():
        print(f"   {k:<24} {v:7.3f}")
    fast = sum(per.values())
    print(f"   {'total (fast path)':<24} {fast:7.3f}")
    t_exp = exports_once(default)
    print(f"   {'one exports replicate':<24} {t_exp:7.3f}   (generate_cohort + clean + the same methods)")
    missing = unavailable(list(default.design["methods"]))
    if missing:
        print(f"   not in this version: {', '.join(missing)}")

    print(f"\n2. scaling: {args.replicates} fast replicates on a LocalCluster")
    with tempfile.TemporaryDirectory() as tmp:
        t1 = scaling(default, args.replicates, 1, Path(tmp) / "w1")
        t2 = scaling(default, args.replicates, 2, Path(tmp) / "w2")
    eff = t1 / (2 * t2)
    print(f"   1 worker  {t1:7.1f} s  ({t1 / args.replicates:.3f} s per replicate)")
    print(f"   2 workers {t2:7.1f} s  ({t2 / args.replicates:.3f} s per replicate)")
    print(f"   parallel efficiency {100 * eff:.0f} % (target >= 80 %)")

    files = default_scenario_files(ROOT)
    scen = [load_scenario(f) for f in files]
    runnable = [s for s in scen if generator_problem(s) is None]
    per_rep = t1 / args.replicates
    n_fast = sum(s.replicates for s in scen)
    n_exp = sum(s.exports_replicates for s in scen)
    core_s = n_fast * per_rep + n_exp * t_exp
    print(f"\n3. projection: {len(scen)} scenarios ({len(runnable)} runnable with this generator), {n_fast} fast "
          f"and {n_exp} exports replicates = {core_s / 60:.1f} core-minutes")
    for cores in (2, 16, 128):
        e = 1.0 if cores == 1 else min(eff, 1.0)
        wall = max(core_s / (cores * e), t_exp)
        print(f"   {cores:4d} cores: {wall / 60:7.1f} min")


if __name__ == "__main__":
    main()
