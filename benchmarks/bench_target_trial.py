"""Benchmark: the clone-censor-weight analysis of notebook 03_target_trial (stats/ccw.py, stats/irls.py,
stats/cox_counting.py, steps/target_trial.py), against simple baselines, side by side. Not a timed test.

Data: a synthetic analysis-ready cohort frame with the columns 01_cleaning writes (three endpoints in days,
``haic_offset_days`` with ~14 % HAIC on day 0 and ~13 % later HAIC, ``combination_day``, 12 covariates with some
missing values, 14 centres), so that no pipeline run is needed. Each part runs in a fresh subprocess, so that its peak
memory is its own. Reported:

1. person-interval expansion (risk sets of the deviation model of strategy B and the clone episodes) for n = 1k, 10k,
   100k: vectorised (``risk_matrices`` + ``clone_episodes``) versus a per-patient, per-interval Python loop (the naive
   baseline; identical output checked at 1k and 10k);
2. the weighted Kaplan-Meier on the (start, stop] episodes: ``km_counting`` versus lifelines'
   ``KaplanMeierFitter(entry=, weights=)`` on the same data (identical curve checked);
3. the pooled logistic deviation model of strategy B: ``logit_irls_grid`` versus statsmodels' GLM on the stacked
   person-interval matrix (identical coefficients checked);
4. one bootstrap replicate of every analysis (main, unweighted, complete eligibility data, arm at time zero,
   naive) and the whole run of the default params (point estimates + B = 200 replicates in 2 workers): wall time,
   CPU time of the main process, peak RSS. The default run's budget is 90 s added on a 2-core machine.
5. ``default``: notebook 03's ``steps.target_trial.run`` on a cohort of the default params' generator mechanism
   (params/default.yaml as is, B = 200, 2 workers), against the baseline of the same run without the
   truncated-weights sensitivity analysis; output kept in benchmarks/results/target_trial_default_run.md.

Run: flock /work/cpu.lock nice -n 5 .venv/bin/python benchmarks/bench_target_trial.py [expansion|km|glm|run|default|all]
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd

SIZES = (1_000, 10_000, 100_000)
COVARIATES = ["age", "sex", "etiology", "ecog", "child_pugh_class", "albi_score", "bclc_stage", "multiple_tumours",
              "max_tumour_size_cm", "mvi", "ehs", "afp_ge_400"]
CATEGORICAL = ["sex", "etiology", "ecog", "child_pugh_class", "bclc_stage"]


def make_cohort(n: int, seed: int = 20261125) -> pd.DataFrame:
    """A synthetic analysis-ready cohort frame (see module docstring)."""
    from analysis_utils.study.treatment import ARM_CONTROL, ARM_HAIC

    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    haic0 = rng.random(n) < 1 / (1 + np.exp(-(-1.9 + 0.5 * x)))
    later = ~haic0 & (rng.random(n) < 0.15)
    offset = np.where(haic0, 0.0, np.where(later, rng.integers(1, 140, n), np.nan))
    combo = np.where(rng.random(n) < 0.97, rng.integers(0, 40, n), np.nan).astype(float)
    os_days = np.ceil(rng.exponential(500 * np.exp(0.3 * haic0 - 0.3 * x))).clip(1, 1000)
    os_event = (os_days < 1000) & (rng.random(n) < 0.85)
    pfs = np.minimum(os_days, np.ceil(rng.exponential(250, n)).clip(0, None))
    df = pd.DataFrame({
        "study_id": [f"S{i:06d}" for i in range(n)], "center_id": [f"C{c:02d}" for c in rng.integers(1, 15, n)],
        "os_days": os_days, "os_event": os_event.astype(int),
        "pfs_recist_days": pfs, "pfs_recist_event": ((pfs < os_days) | os_event).astype(int),
        "pfs_mrecist_days": pfs, "pfs_mrecist_event": ((pfs < os_days) | os_event).astype(int),
        "haic_offset_days": offset, "combination_day": combo,
        "arm": np.where(haic0, ARM_HAIC, ARM_CONTROL),
        "arm_ever_haic": np.where(haic0 | (later & (offset <= 90)), ARM_HAIC, ARM_CONTROL),
        "eligibility_query": rng.random(n) < 0.2,
        "age": np.round(55 + 10 * rng.normal(size=n)), "sex": rng.choice(["male", "female"], n, p=[0.85, 0.15]),
        "etiology": rng.choice(["hbv", "hcv", "alcohol", "other"], n, p=[0.7, 0.1, 0.1, 0.1]),
        "ecog": rng.choice([0.0, 1.0, 2.0], n, p=[0.5, 0.4, 0.1]),
        "child_pugh_class": rng.choice(["A", "B"], n, p=[0.8, 0.2]), "albi_score": -2.5 + 0.5 * rng.normal(size=n),
        "bclc_stage": rng.choice(["B", "C"], n, p=[0.3, 0.7]), "multiple_tumours": rng.random(n) < 0.6,
        "max_tumour_size_cm": np.round(rng.gamma(4, 2, n), 1), "mvi": rng.random(n) < 0.5 + 0.2 * (x > 0),
        "ehs": rng.random(n) < 0.3, "afp_ge_400": rng.random(n) < 0.45})
    for col, share in (("ecog", 0.07), ("child_pugh_class", 0.15), ("afp_ge_400", 0.05)):
        df[col] = df[col].astype(object).where(rng.random(n) >= share, None)
    return df


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _setup(n: int):
    from analysis_utils.stats import ccw
    from analysis_utils.steps import target_trial as tt
    from analysis_utils.study.config import TargetTrialConfig

    cfg = TargetTrialConfig.from_params({"target_trial": {"covariates": COVARIATES, "categorical": CATEGORICAL}})
    d = tt.prepare(make_cohort(n), cfg)
    return ccw, d


def naive_expansion(time_: np.ndarray, deviation: np.ndarray, iv, possible: np.ndarray):
    """The baseline: one Python loop over patients and intervals building the risk-set rows and the episodes."""
    rows, episodes = [], []
    for i in range(time_.size):
        t, d = time_[i], deviation[i]
        for k in range(iv.size):
            if possible[k] and d > iv.lo[k] and t > iv.entry[k]:
                rows.append((i, k, float(iv.lo[k] < d <= iv.hi[k] and d < t)))
        t_c = d if d < t else t
        start = 0.0
        for k in np.flatnonzero(possible):
            end = iv.hi[k]
            if t_c > start and min(t_c, end) > start:
                episodes.append((i, start, min(t_c, end)))
            start = end
        if t_c > start:
            episodes.append((i, start, t_c))
    return rows, episodes


def child_expansion(n: int) -> dict:
    ccw, d = _setup(n)
    t, dev = d.ccw.time[:, 0], d.ccw.deviation[:, 1]
    iv, possible = d.design.intervals, d.design.possible[1]
    rss0 = rss_mb()
    t0 = time.perf_counter()
    unit, k, y = ccw.deviation_rows(t, dev, iv, possible)
    epi = ccw.clone_episodes(t, d.ccw.event[:, 0], dev, np.ones((n, iv.size)), iv, possible)
    fast = time.perf_counter() - t0
    out = {"n": n, "rows": int(unit.size), "episodes": int(epi.start.size), "seconds": fast,
           "rss_increase_mb": rss_mb() - rss0}
    if n <= 10_000:
        t0 = time.perf_counter()
        rows, episodes = naive_expansion(t, dev, iv, possible)
        out["naive_seconds"] = time.perf_counter() - t0
        same_rows = np.array_equal(np.array(rows)[:, 2], y) and len(rows) == unit.size
        ref = np.array([(s, e) for _, s, e in episodes])
        same_epi = ref.shape[0] == epi.start.size and np.allclose(np.sort(ref[:, 1]), np.sort(epi.stop))
        out["identical"] = bool(same_rows and same_epi)
    return out


def child_km(n: int) -> dict:
    from lifelines import KaplanMeierFitter

    ccw, d = _setup(n)
    res = ccw.ccw_estimate(d.ccw, d.design_sens)
    epi = res.episodes[("os", d.ccw.strategies[1])]
    t0 = time.perf_counter()
    times, surv, _, _ = ccw.km_counting(epi.start, epi.stop, epi.event, epi.weight)
    fast = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        km = KaplanMeierFitter().fit(epi.stop, epi.event, entry=epi.start, weights=epi.weight)
        ref_s = time.perf_counter() - t0
    ref = km.survival_function_.iloc[:, 0].reindex(times).to_numpy()
    ok = surv > 1e-12
    return {"n": n, "episodes": int(epi.start.size), "seconds": fast, "lifelines_seconds": ref_s,
            "max_abs_diff": float(np.max(np.abs(ref[ok] - surv[ok])))}


def child_glm(n: int) -> dict:
    import statsmodels.api as sm

    from analysis_utils.stats.irls import logit_irls_grid

    ccw, d = _setup(n)
    t, dev = d.ccw.time[:, 0], d.ccw.deviation[:, 1]
    iv, possible = d.design.intervals, d.design.possible[1]
    T = ccw.time_design(np.arange(iv.size), iv, possible, "indicators")
    risk, y = ccw.risk_matrices(t, dev, iv, possible)
    t0 = time.perf_counter()
    fit = logit_irls_grid(T, d.ccw.X, risk, y)
    fast = time.perf_counter() - t0
    unit, k, yy = ccw.deviation_rows(t, dev, iv, possible)
    Xs = np.column_stack([T[k], d.ccw.X[unit]])[:, ~fit.aliased]
    t0 = time.perf_counter()
    ref = sm.GLM(yy, Xs, family=sm.families.Binomial()).fit(tol=1e-10)
    ref_s = time.perf_counter() - t0
    return {"n": n, "rows": int(unit.size), "columns": int(Xs.shape[1]), "seconds": fast, "statsmodels_seconds": ref_s,
            "max_abs_diff_coef": float(np.max(np.abs(ref.params - fit.coef[~fit.aliased])))}


def child_run(n: int) -> dict:
    from analysis_utils.steps import target_trial as tt
    from analysis_utils.study.config import TargetTrialConfig

    ccw, d = _setup(n)
    tt.analysis_statistics(d, keep_details=True)
    idx = np.random.default_rng(1).integers(0, n, n)
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(5):
        tt.replicate_statistics(d, idx)
    rep_cpu, rep_wall = (time.process_time() - c0) / 5, (time.perf_counter() - t0) / 5
    cfg = TargetTrialConfig.from_params({"target_trial": {"covariates": COVARIATES, "categorical": CATEGORICAL,
                                                          "bootstrap": 200, "workers": 2}})
    c0, t0 = time.process_time(), time.perf_counter()
    r = tt.run(make_cohort(n), cfg, seed=20261125)
    wall, main_cpu = time.perf_counter() - t0, time.process_time() - c0
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"n": n, "replicate_cpu_s": rep_cpu, "replicate_wall_s": rep_wall, "run_wall_s": wall,
            "run_main_cpu_s": main_cpu, "run_workers_cpu_s": kids.ru_utime + kids.ru_stime,
            "statistics": len(r.names), "rss_peak_mb": rss_mb(), "load_average": list(__import__("os").getloadavg())}


def child_default(sensitivity: int) -> dict:
    """Notebook 03's computation (``steps.target_trial.run``: point estimates of every analysis and B = 200 bootstrap
    replicates in 2 workers) on a cohort of the default params' generator mechanism (the generator's analysis-ready
    eligible cohort, ``simulation.sources.fast_frame``), with the params' ``target_trial`` section as is
    (``sensitivity`` = 1) or without the truncated-weights sensitivity analysis (0: the baseline)."""
    from pathlib import Path

    import yaml

    from analysis_utils.runner.pipeline import synthetic_config
    from analysis_utils.simulation.sources import fast_frame
    from analysis_utils.steps import target_trial as tt
    from analysis_utils.study.config import TargetTrialConfig
    from analysis_utils.synthetic import analysis_ready

    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params" / "default.yaml").read_text())
    cohort = fast_frame(analysis_ready(synthetic_config(params), int(params["seed"]))[0],
                        int(params["cleaning"]["haic_window_days"]))
    cfg = TargetTrialConfig.from_params(params)
    if not sensitivity:
        cfg.truncate_quantiles_sensitivity = None
    c0, t0 = time.process_time(), time.perf_counter()
    r = tt.run(cohort, cfg, seed=int(params["seed"]))
    wall, main_cpu = time.perf_counter() - t0, time.process_time() - c0
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"n": len(cohort), "sensitivity": bool(sensitivity), "bootstrap": cfg.bootstrap, "workers": cfg.workers,
            "run_wall_s": wall, "run_main_cpu_s": main_cpu, "run_workers_cpu_s": kids.ru_utime + kids.ru_stime,
            "statistics": len(r.names), "rss_peak_mb": rss_mb(), "load_average": list(__import__("os").getloadavg())}


CHILDREN = {"expansion": (child_expansion, SIZES), "km": (child_km, (1_000, 10_000)),
            "glm": (child_glm, (1_000, 10_000)), "run": (child_run, (850,)), "default": (child_default, (0, 1))}


def main(parts: list[str]) -> None:
    results: list[dict] = []
    for part in parts:
        fn, sizes = CHILDREN[part]
        print(f"== {part}")
        for n in sizes:
            proc = subprocess.run([sys.executable, __file__, "--child", part, str(n)], capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"  n = {n}: failed\n{proc.stderr[-2000:]}")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            if part == "expansion":
                extra = (f"; naive loop {r['naive_seconds']:.3f} s ({r['naive_seconds'] / r['seconds']:.0f}x slower), "
                         f"identical: {r['identical']}") if "naive_seconds" in r else ""
                print(f"  n = {n:>7}: {r['rows']:>8} rows, {r['episodes']:>8} episodes in {r['seconds']:.4f} s "
                      f"(+{r['rss_increase_mb']:.0f} MB){extra}")
            elif part == "km":
                print(f"  n = {n:>7}: {r['episodes']:>8} episodes: km_counting {r['seconds']:.4f} s, lifelines "
                      f"{r['lifelines_seconds']:.4f} s ({r['lifelines_seconds'] / r['seconds']:.0f}x), "
                      f"max |difference| {r['max_abs_diff']:.1e}")
            elif part == "glm":
                print(f"  n = {n:>7}: {r['rows']:>8} rows x {r['columns']} columns: logit_irls_grid {r['seconds']:.4f} s,"
                      f" statsmodels GLM {r['statsmodels_seconds']:.4f} s "
                      f"({r['statsmodels_seconds'] / r['seconds']:.0f}x), max |coef difference| "
                      f"{r['max_abs_diff_coef']:.1e}")
            elif part == "default":
                cpu = r["run_main_cpu_s"] + r["run_workers_cpu_s"]
                results.append(r)
                label = "params as is" if r["sensitivity"] else "baseline: no truncated-weights sensitivity analysis"
                print(f"  {label}: {r['n']} patients, B = {r['bootstrap']} in {r['workers']} workers: "
                      f"{r['run_wall_s']:.1f} s wall, {cpu:.1f} s CPU (main {r['run_main_cpu_s']:.1f} + workers "
                      f"{r['run_workers_cpu_s']:.1f}); {r['statistics']} statistics; peak RSS "
                      f"{r['rss_peak_mb']:.0f} MB (main process); load average {r['load_average'][0]:.1f}; budget 90 s: "
                      f"{'met' if r['run_wall_s'] <= 90 else 'NOT met at this load'}")
                if len(results) == 2:
                    print(f"  ratio to the baseline: {results[1]['run_wall_s'] / results[0]['run_wall_s']:.2f} "
                          "(wall)")
            else:
                cpu = r["run_main_cpu_s"] + r["run_workers_cpu_s"]
                print(f"  n = {n}: one replicate (all analyses, 3 endpoints) {r['replicate_cpu_s']:.3f} s CPU "
                      f"({r['replicate_wall_s']:.3f} s wall); whole run with B = 200 in 2 workers: "
                      f"{r['run_wall_s']:.1f} s wall, {cpu:.1f} s CPU (main {r['run_main_cpu_s']:.1f} + workers "
                      f"{r['run_workers_cpu_s']:.1f}), i.e. about {cpu / 2:.0f} s on two idle cores; "
                      f"{r['statistics']} statistics, peak RSS {r['rss_peak_mb']:.0f} MB (main process); machine load "
                      f"average during the run {r['load_average'][0]:.1f}; budget 90 s: "
                      f"{'met' if r['run_wall_s'] <= 90 else 'NOT met at this load'}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(CHILDREN[sys.argv[2]][0](int(sys.argv[3]))))
    else:
        arg = sys.argv[1:] or ["all"]
        main(list(CHILDREN) if arg == ["all"] else arg)
