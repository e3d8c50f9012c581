"""Benchmark of the Monte Carlo simulation (not a timed test; docs/methods/simulation.md).

1. Seconds per replicate, per piece: for every scenario file, the fast path (generation, then each method of the
   scenario's estimator set) over ``--serial`` replicates in this process, after one warm-up replicate that builds
   the scenario's mechanism (timed apart: every worker pays it once per scenario). Baseline: the same pieces with
   the CCW bootstrap SE (``ccw_variance: bootstrap``, ``ccw_bootstrap`` replicates), the SE the simulation used
   before the infinitesimal-jackknife SE.
2. One replicate of the exports-and-cleaning path and one scenario truth (``truth_n`` persons), timed once.
3. Scaling from 1 to 2 workers: ``--replicates`` default-scenario replicates on a dask LocalCluster of 1, then 2
   single-threaded worker processes (truth precomputed, workers warmed, cluster start excluded); parallel
   efficiency = T(1) / (2 T(2)); target >= 80 %.
4. Projection of the default simulation (every scenario file, its replicates and exports replicates, the truths) at
   2, 16 and 128 cores: core-seconds = sum over scenarios of replicates x (serial seconds per replicate x the dask
   overhead factor T(1) / (replicates x serial seconds of the default scenario)) + exports replicates x their time +
   scenarios x truth time; wall = core-seconds / (cores x efficiency) + scenarios x mechanism build (each worker
   builds each scenario's mechanism once), never below one exports replicate. The efficiency measured at 2 workers
   is assumed at 16 and 128 (the tasks are independent; the client's writing of results is not measured there).

Run: flock /work/cpu.lock nice -n 5 .venv/bin/python benchmarks/bench_simulation.py [--serial 3] [--replicates 48]
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def serial(scenario, k: int) -> tuple[dict[str, float], float]:
    """(mean seconds per piece over k replicates, seconds of the warm-up replicate incl. the mechanism build)."""
    from threadpoolctl import threadpool_limits

    from analysis_utils.simulation import engine, estimators, sources

    per: dict[str, list[float]] = {}
    warm = 0.0
    with threadpool_limits(limits=1):   # as engine.run_replicate: one BLAS thread per replicate
        for r in range(k + 1):
            gen_seed, method_seed = engine.replicate_seeds(scenario.seed, r)
            t0 = time.perf_counter()
            frame, _ = sources.generate(scenario, gen_seed)
            t_gen = time.perf_counter() - t0
            s = estimators.settings_for(scenario.params, scenario.design, method_seed)
            _, secs = estimators.run_methods(frame, list(scenario.design["methods"]), s)
            if r == 0:
                warm = t_gen + sum(secs.values())
                continue
            per.setdefault("generate", []).append(t_gen)
            for m, v in secs.items():
                per.setdefault(m, []).append(v)
    return {k_: statistics.mean(v) for k_, v in per.items()}, warm


def exports_once(scenario) -> float:
    from analysis_utils.simulation import engine

    t0 = time.perf_counter()
    res = engine.run_replicate(scenario, 0, "exports")
    if not res.ok:
        print(res.error, file=sys.stderr)
    return time.perf_counter() - t0


def truth_once(scenario, out: Path) -> float:
    from threadpoolctl import threadpool_limits

    from analysis_utils.simulation.truth import scenario_truth

    t0 = time.perf_counter()
    with threadpool_limits(limits=1):
        scenario_truth(scenario, out)
    return time.perf_counter() - t0


def scaling(scenario, n: int, workers: int, out: Path) -> float:
    from analysis_utils.simulation import engine
    from analysis_utils.simulation.truth import scenario_truth

    s = scenario.with_design(replicates=n, exports_replicates=0)
    folder = s.output_dir(out_root=out)
    scenario_truth(s, folder)                      # cached: the timed run only reads it
    client, cluster = engine.open_client(workers)
    try:
        warm = s.with_design(replicates=2 * workers)   # every worker imports and builds the mechanism first
        engine.run_simulation([warm], out / "warm", client=client, progress=False)
        t0 = time.perf_counter()
        engine.run_simulation([s], out, client=client, progress=False)
        return time.perf_counter() - t0
    finally:
        client.close()
        cluster.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serial", type=int, default=3, help="timed fast replicates per scenario")
    ap.add_argument("--replicates", type=int, default=48, help="replicates of the 1- and 2-worker runs")
    args = ap.parse_args(argv)

    from analysis_utils.simulation.estimators import unavailable
    from analysis_utils.simulation.scenario import default_scenario_files, generator_problem, load_scenario

    t_start = time.perf_counter()
    scen = [load_scenario(f) for f in default_scenario_files(ROOT)]
    runnable = [s for s in scen if generator_problem(s) is None]
    default = next(s for s in scen if s.name == "default")
    print(f"1. seconds per fast-path replicate (mean of {args.serial} replicates after one warm-up), per piece")
    per_s, warm_s = {}, {}
    for s in runnable:
        per_s[s.name], warm_s[s.name] = serial(s, args.serial)
    pieces = list(dict.fromkeys(k for p in per_s.values() for k in p))
    print(f"   {'scenario':<20}" + "".join(f"{p[:12]:>13}" for p in pieces) + f"{'total':>9}{'warm-up':>9}")
    for name, p in per_s.items():
        print(f"   {name:<20}" + "".join(f"{p[k]:13.3f}" if k in p else f"{'-':>13}" for k in pieces)
              + f"{sum(p.values()):9.3f}{warm_s[name]:9.2f}")
    mean_total = statistics.mean(sum(p.values()) for p in per_s.values())
    print(f"   mean total over scenarios {mean_total:.3f} s")
    missing = sorted({m for s in runnable for m in unavailable(list(s.design["methods"]))})
    if missing:
        print(f"   not in this version: {', '.join(missing)}")
    boot = default.with_design(ccw_variance="bootstrap")
    b, _ = serial(boot, max(1, args.serial // 2) if args.serial > 1 else 1)
    print(f"   baseline, default scenario with the CCW bootstrap SE (B = {default.design['ccw_bootstrap']}): ccw "
          f"{b['ccw']:.3f} s, total {sum(b.values()):.3f} s; with the IJ SE: ccw {per_s['default']['ccw']:.3f} s, "
          f"total {sum(per_s['default'].values()):.3f} s (ratio {sum(b.values()) / sum(per_s['default'].values()):.1f})")

    with tempfile.TemporaryDirectory() as tmp:
        t_exp = exports_once(default)
        t_truth = truth_once(default, Path(tmp) / "truth")
        print(f"\n2. one exports-and-cleaning replicate {t_exp:.1f} s (generate_cohort + clean + the same methods); "
              f"one scenario truth ({default.design['truth_n']} persons) {t_truth:.1f} s")
        print(f"\n3. scaling: {args.replicates} default-scenario fast replicates on a LocalCluster")
        t1 = scaling(default, args.replicates, 1, Path(tmp) / "w1")
        t2 = scaling(default, args.replicates, 2, Path(tmp) / "w2")
    eff = t1 / (2 * t2)
    print(f"   1 worker  {t1:7.1f} s  ({t1 / args.replicates:.3f} s per replicate)")
    print(f"   2 workers {t2:7.1f} s  ({t2 / args.replicates:.3f} s per replicate)")
    print(f"   parallel efficiency {100 * eff:.0f} % (target >= 80 %)")

    overhead = (t1 / args.replicates) / sum(per_s["default"].values())
    n_fast = sum(s.replicates for s in runnable)
    n_exp = sum(s.exports_replicates for s in runnable)
    fast_core_s = sum(s.replicates * sum(per_s[s.name].values()) * overhead for s in runnable)
    core_s = fast_core_s + n_exp * t_exp + len(runnable) * t_truth
    mech = sum(warm_s[s.name] for s in runnable)
    print(f"\n4. projection: {len(scen)} scenarios ({len(runnable)} runnable with this generator), {n_fast} fast "
          f"replicates ({fast_core_s / 60:.1f} core-minutes; dask overhead factor {overhead:.2f}), {n_exp} exports "
          f"replicates ({n_exp * t_exp / 60:.1f}), {len(runnable)} truths ({len(runnable) * t_truth / 60:.1f}) = "
          f"{core_s / 60:.1f} core-minutes; mechanism builds {mech:.0f} s per worker")
    for cores in (2, 16, 128):
        wall = max(core_s / (cores * min(eff, 1.0)) + mech, t_exp + mech)
        print(f"   {cores:4d} cores: {wall / 60:7.1f} min")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nbenchmark wall time {time.perf_counter() - t_start:.0f} s; peak memory of this process {peak:.0f} MB "
          "(workers not included)")


if __name__ == "__main__":
    main()
