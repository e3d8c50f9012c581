"""Benchmark: 1:1 nearest-neighbour matching on the logit of the ps, caliper 0.2 SD of the logit (Austin 2011),
without replacement, m_order "largest" (MatchIt defaults otherwise), on 10k, 100k and 1M units (~30% treated).

Each size runs in a fresh subprocess so that its peak memory is its own. Reported per size:
- time of ``match_nearest`` (wall clock, data generation excluded);
- peak RSS of the process (``resource.getrusage``, includes the interpreter and the data) and its increase
  during matching;
- peak of traced Python/numpy allocations during a second, separate run under ``tracemalloc``.
At 10k the brute-force all-pairs reference ``_match_nearest_naive`` is timed in the same process, checked to give
identical pairs, and the speed ratio is printed. Target: 1M units in < 10 s and < 2 GB peak.

Run: PYTHONPATH=src python benchmarks/bench_matching.py [sizes...]
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

SIZES = (10_000, 100_000, 1_000_000)
NAIVE_SIZE = 10_000


def make_data(n: int, seed: int = 20250101) -> tuple[np.ndarray, np.ndarray]:
    """Logit of a true ps with ~30% treated: lp = -1.1 + 0.8 z1 + 0.5 z2, z ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    lp = -1.1 + 0.8 * rng.normal(size=n) + 0.5 * rng.normal(size=n)
    treat = rng.random(n) < 1 / (1 + np.exp(-lp))
    return lp, treat


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(n: int) -> dict:
    from analysis_utils.stats.matching import _match_nearest_naive, match_nearest

    lp, treat = make_data(n)
    kw = dict(ratio=1, caliper=0.2, std_caliper=True, replace=False, m_order="largest")
    rss_before = rss_mb()
    t0 = time.perf_counter()
    res = match_nearest(lp, treat, **kw)
    seconds = time.perf_counter() - t0
    rss_peak = rss_mb()
    tracemalloc.start()
    match_nearest(lp, treat, **kw)
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    out = {"n": n, "treated": int(treat.sum()), "matched_pairs": int((res.n_controls > 0).sum()),
           "seconds": seconds, "rss_peak_mb": rss_peak, "rss_increase_mb": rss_peak - rss_before,
           "traced_peak_mb": traced_peak, "caliper_width": res.caliper_width}
    if n == NAIVE_SIZE:
        t0 = time.perf_counter()
        naive = _match_nearest_naive(lp, treat, **kw)
        out["naive_seconds"] = time.perf_counter() - t0
        out["identical_to_naive"] = bool(np.array_equal(naive.match_matrix, res.match_matrix))
    return out


def main(sizes: tuple[int, ...]) -> None:
    print(f"{'n':>9} {'treated':>8} {'pairs':>8} {'time_s':>8} {'peakRSS_MB':>11} {'dRSS_MB':>8} "
          f"{'traced_MB':>10}  baseline (naive all-pairs)")
    for n in sizes:
        proc = subprocess.run([sys.executable, __file__, "--child", str(n)], capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{n:>9} failed:\n{proc.stderr}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        extra = ""
        if "naive_seconds" in r:
            extra = (f"naive {r['naive_seconds']:.2f} s, fast is {r['naive_seconds'] / r['seconds']:.1f}x faster, "
                     f"identical pairs: {r['identical_to_naive']}")
        print(f"{r['n']:>9} {r['treated']:>8} {r['matched_pairs']:>8} {r['seconds']:>8.2f} {r['rss_peak_mb']:>11.0f} "
              f"{r['rss_increase_mb']:>8.0f} {r['traced_peak_mb']:>10.0f}  {extra}")
        if r["n"] >= 1_000_000:
            ok = r["seconds"] < 10 and r["rss_peak_mb"] < 2048
            print(f"{'':>9} target 1M < 10 s and < 2 GB: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(int(sys.argv[2]))))
    else:
        main(tuple(int(a) for a in sys.argv[1:]) or SIZES)
