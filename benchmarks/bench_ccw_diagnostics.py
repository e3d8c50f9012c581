"""Diagnostic benchmark of the clone-censor-weight estimator's centring (issue #12; not a timed test): point
estimates only (no bootstrap), many generator seeds, several variants of the estimator side by side.

Why: the validity benchmark (bench_ccw_validity.py, 100 seeds, bootstrap SEs) is too slow to compare variants and its
Monte Carlo SE (about 0.004 for a difference of S(12 m)) is of the size of the biases in question. Here each
replicate of the immortal-time scenario (params/simulation/immortal_time.yaml; replicate r uses the generator seed
of the simulation engine's replicate r, ``engine.replicate_seeds``, so replicates 0-99 are those of the validity
benchmark) is analysed by every variant, and the mean error against the generator's potential-outcome truths
(``synthetic.true_values``: strategy A "HAIC within 90 days" and B "no HAIC within 90 days") is reported with its
Monte Carlo SE, per strategy (S_A, S_B) and for the contrasts, and per block of 100 replicates.

Variants (all from the params' ``target_trial:`` section, weights NOT truncated unless said):
- ``main``: the params' analysis (pooled logistic deviation models with one indicator per interval, the covariates
  with missing indicators, centre indicators, 7-day intervals);
- ``truncated_1_99``: weights truncated at the 1st and 99th percentiles of each strategy's episode weights;
- ``centre_none``: no centre term (the generator's centres shift the HAIC log-odds and the outcome hazards);
- ``quadratic_time``: a quadratic in time instead of interval indicators;
- ``interval_14`` / ``interval_30``: coarser intervals of the grace period; ``interval_1``: daily intervals, where the
  partial-interval approximation (a clone followed into an interval is at risk of deviating in all of it,
  ``Intervals.entry``) no longer applies: deaths and losses on a day count after that day's deviations (not in the
  default run: ``--variants``);
- ``generator_covariates``: the covariates of the generator's HAIC model in its own form (age/10, ECOG 0, EHS, MVI,
  log tumour size, ALBI, >= 4 nodules; missing values filled with the median plus an indicator) and centre
  indicators, instead of the params' covariates: does the deviation model miss what drives HAIC timing?
- ``unweighted``: clone-censor without weights (every weight 1).
Stabilisation is not a variant: the numerator of a stabilised weight is common to every clone followed at a time, so
it cancels from the weighted Kaplan-Meier (it matters only through truncation).

Output: ``benchmarks/results/ccw_diagnostics.json`` and ``.md``. Prints the time per fit of each variant, the peak
RSS, and the ratio of each variant's time to the main analysis' (the baseline).

Run: flock /work/cpu.lock nice -n 5 .venv/bin/python benchmarks/bench_ccw_diagnostics.py [--replicates 400]
     [--workers 2]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = "params/simulation/immortal_time.yaml"
DAYS_PER_MONTH = 365.25 / 12
ENDPOINTS = {"os": "os", "pfs": "pfs_recist"}          # truth endpoint -> target-trial endpoint
#: variant -> (changes to target_trial:, weighted, covariates of the generator's HAIC model)
VARIANTS = {"main": ({}, True, False),
            "truncated_1_99": ({"truncate_quantiles": [0.01, 0.99]}, True, False),
            "centre_none": ({"centre": "none"}, True, False),
            "quadratic_time": ({"time_model": "quadratic"}, True, False),
            "interval_14": ({"interval_days": 14}, True, False),
            "interval_30": ({"interval_days": 30}, True, False),
            "interval_1": ({"interval_days": 1}, True, False),
            "generator_covariates": ({}, True, True),
            "unweighted": ({}, False, False)}
QUANTITIES = ("S12_A", "S12_B", "Sdiff12", "S24_A", "S24_B", "Sdiff24", "rmst_diff24")


def generator_covariates(frame: pd.DataFrame) -> np.ndarray:
    """The generator's HAIC covariates (synthetic/timing.py model_features, ASSIGN_COEF) from the observed columns,
    median-filled with a missing indicator per incomplete column, and centre indicators."""
    f = frame
    cols = [pd.to_numeric(f["age"], errors="coerce") / 10.0,
            (pd.to_numeric(f["ecog"], errors="coerce") == 0).astype(float).where(f["ecog"].notna()),
            pd.to_numeric(f["ehs"], errors="coerce"), pd.to_numeric(f["mvi"], errors="coerce"),
            np.log(pd.to_numeric(f["max_tumour_size_cm"], errors="coerce")),
            pd.to_numeric(f["albi_score"], errors="coerce"),
            (pd.to_numeric(f["tumour_number"], errors="coerce") >= 4).astype(float).where(f["tumour_number"].notna())]
    Z = np.column_stack([np.asarray(c, dtype=float) for c in cols])
    miss = ~np.isfinite(Z)
    Z = np.where(miss, np.nanmedian(Z, axis=0)[None, :], Z)
    parts = [Z] + [miss[:, [j]].astype(float) for j in range(Z.shape[1]) if miss[:, j].any()]
    centres = sorted(f["center_id"].astype(str).unique())
    parts += [(f["center_id"].astype(str) == c).to_numpy(float)[:, None] for c in centres[1:]]
    return np.hstack(parts)


def _replicates(job: tuple[int, int, tuple[str, ...]]) -> tuple[list[dict], dict[str, float]]:
    """The variants job[2] on replicates job[0] .. job[1] - 1; rows and seconds per variant."""
    from threadpoolctl import threadpool_limits

    from analysis_utils.simulation import engine, estimators, sources
    from analysis_utils.simulation import estimators_tte as et
    from analysis_utils.simulation.scenario import load_scenario
    from analysis_utils.stats.ccw import CCWInput, ccw_estimate
    from analysis_utils.steps import target_trial as tt
    from analysis_utils.study.treatment import STRATEGIES

    s = load_scenario(ROOT / SCENARIO)
    base = {**s.params["target_trial"], "truncate_quantiles": None}
    rows, seconds = [], {v: 0.0 for v in job[2]}
    with threadpool_limits(limits=1):
        for r in range(job[0], job[1]):
            gen_seed, method_seed = engine.replicate_seeds(s.seed, r)
            frame, _ = sources.generate(s, gen_seed, "fast")
            st = estimators.settings_for(s.params, s.design, method_seed)
            for name in job[2]:
                change, weighted, gen_x = VARIANTS[name]
                t0 = time.perf_counter()
                st.target_trial = {**base, **change}
                cfg = et.tte_config(frame, st)
                cfg.endpoints = list(ENDPOINTS.values())
                prep = tt.prepare(frame, cfg)
                data = prep.ccw
                if gen_x:
                    data = CCWInput(data.time, data.event, data.deviation, generator_covariates(frame),
                                    data.endpoints, data.strategies)
                stats = ccw_estimate(data, dataclasses.replace(prep.design_sens, cox=False), weighted=weighted,
                                     keep_details=False).stats
                seconds[name] += time.perf_counter() - t0
                for ep, te in ENDPOINTS.items():
                    row = {"replicate": r, "variant": name, "endpoint": ep, "n": len(frame)}
                    for m, days in zip((12, 24), prep.design_sens.times):
                        k = f"{days:g}".replace(".", "p")
                        row[f"S{m}_A"] = stats[f"{te}_S{k}_{STRATEGIES[0]}"]
                        row[f"S{m}_B"] = stats[f"{te}_S{k}_{STRATEGIES[1]}"]
                        row[f"Sdiff{m}"] = stats[f"{te}_Sdiff{k}"]
                    row["rmst_diff24"] = stats[f"{te}_rmst_diff"] / DAYS_PER_MONTH
                    rows.append(row)
    return rows, seconds


def truths() -> dict[str, dict[str, float]]:
    from analysis_utils.simulation.scenario import load_scenario
    from analysis_utils.synthetic import true_values

    t = true_values(load_scenario(ROOT / SCENARIO).generator_config())
    out = {}
    for ep in ENDPOINTS:
        a, b, d = t[ep]["A"], t[ep]["B"], t[ep]["A_vs_B"]
        out[ep] = {"S12_A": a["S_12"], "S12_B": b["S_12"], "Sdiff12": d["S_12_difference"],
                   "S24_A": a["S_24"], "S24_B": b["S_24"], "Sdiff24": d["S_24_difference"],
                   "rmst_diff24": d["RMST_24_difference"]}
    return out


def summarise(rows: pd.DataFrame, truth: dict[str, dict[str, float]], block: int = 100) -> list[dict]:
    """Bias, its Monte Carlo SE and empirical SD per variant, endpoint and quantity; over all replicates and per
    block of ``block`` replicates."""
    out = []
    rows = rows.assign(block=rows["replicate"] // block)
    groups = [("all", rows)] + [(f"{int(b) * block}-{int(b) * block + block - 1}", g) for b, g in rows.groupby("block")]
    for label, g in groups:
        for (variant, ep), h in g.groupby(["variant", "endpoint"], sort=True, observed=True):
            for q in QUANTITIES:
                x = h[q].to_numpy(float)
                x = x[np.isfinite(x)]
                bias = float(x.mean() - truth[ep][q])
                sd = float(x.std(ddof=1))
                mcse = sd / math.sqrt(x.size)
                out.append({"replicates": label, "variant": str(variant), "endpoint": ep, "quantity": q,
                            "n": int(x.size), "truth": truth[ep][q], "bias": bias, "mcse": mcse,
                            "bias_in_mcse": bias / mcse, "empirical_sd": sd})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=400)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=25)
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "ccw_diagnostics")
    ap.add_argument("--variants", default=",".join(v for v in VARIANTS if v != "interval_1"),
                    help="comma-separated variants (first = the baseline of the time ratios; default all but "
                         "interval_1)")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    variants = tuple(a.variants.split(","))
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; known: {list(VARIANTS)}")
    jobs = [(i, min(i + a.chunk, a.replicates), variants) for i in range(0, a.replicates, a.chunk)]
    rows: list[dict] = []
    seconds = {v: 0.0 for v in variants}
    with ProcessPoolExecutor(max_workers=a.workers) as pool:
        for part, sec in pool.map(_replicates, jobs):
            rows += part
            for k, v in sec.items():
                seconds[k] += v
    wall = time.perf_counter() - t0
    frame = pd.DataFrame(rows)
    frame["variant"] = pd.Categorical(frame["variant"], categories=list(variants), ordered=True)
    frame = frame.sort_values(["replicate", "variant", "endpoint"], kind="stable")
    perf = summarise(frame, truths())
    per_fit = {k: v / a.replicates for k, v in seconds.items()}
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    doc = {"scenario": SCENARIO, "replicates": a.replicates, "workers": a.workers, "wall_seconds": round(wall, 1),
           "seconds_per_fit": {k: round(v, 3) for k, v in per_fit.items()},
           "ratio_to_first": {k: round(v / per_fit[variants[0]], 2) for k, v in per_fit.items()},
           "peak_rss_mb": round(peak, 1), "variants": {k: {"target_trial_change": VARIANTS[k][0],
                                                           "weighted": VARIANTS[k][1],
                                                           "generator_covariates": VARIANTS[k][2]}
                                                       for k in variants},
           "performance": perf, "paired_differences": paired(frame, variants)}
    a.results.parent.mkdir(parents=True, exist_ok=True)
    a.results.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    md = _markdown(doc)
    a.results.with_suffix(".md").write_text(md, encoding="utf-8")
    print(md)
    return 0


def _markdown(doc: dict) -> str:
    perf = pd.DataFrame(doc["performance"])
    lines = [f"# CCW diagnostics: point estimates over {doc['replicates']} replicates of `{doc['scenario']}`", "",
             "Bias (mean estimate minus the generator's potential-outcome truth) and, in brackets, bias / Monte Carlo "
             "SE; S in probability, RMST difference in months; weights untruncated unless the variant says so. "
             f"{doc['workers']} workers, {doc['wall_seconds']:.0f} s wall, peak RSS {doc['peak_rss_mb']:.0f} MB.", ""]
    for ep in ENDPOINTS:
        lines += [f"## {ep} (all replicates)", "", "| variant | " + " | ".join(QUANTITIES) + " |",
                  "|---|" + "---|" * len(QUANTITIES)]
        sub = perf[(perf["replicates"] == "all") & (perf["endpoint"] == ep)]
        for v, g in sub.groupby("variant", sort=False):
            cells = [f"{r.bias:+.4f} ({r.bias_in_mcse:+.1f})" for r in g.set_index("quantity").loc[list(QUANTITIES)]
                     .itertuples()]
            lines.append(f"| {v} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Main analysis by block of 100 replicates (OS)", "",
              "| replicates | " + " | ".join(QUANTITIES) + " |", "|---|" + "---|" * len(QUANTITIES)]
    sub = perf[(perf["variant"] == "main") & (perf["endpoint"] == "os")]
    if not len(sub):
        sub = perf[(perf["variant"] == perf["variant"].iloc[0]) & (perf["endpoint"] == "os")]
    for b, g in sub.groupby("replicates", sort=False):
        cells = [f"{r.bias:+.4f} ({r.bias_in_mcse:+.1f})" for r in g.set_index("quantity").loc[list(QUANTITIES)]
                 .itertuples()]
        lines.append(f"| {b} | " + " | ".join(cells) + " |")
    sd = perf[(perf["replicates"] == "all") & (perf["endpoint"] == "os") & (perf["quantity"] == "Sdiff12")]
    lines += ["", "Empirical SD of the OS difference in S(12 m): " +
              ", ".join(f"{r.variant} {r.empirical_sd:.4f}" for r in sd.itertuples()), "",
              "Seconds per fit (ratio to the first variant): " +
              ", ".join(f"{k} {v:.3f} ({doc['ratio_to_first'][k]:.2f})" for k, v in doc["seconds_per_fit"].items()),
              "", "Paired differences from the first variant, same replicates (mean, SD, mean / (SD / sqrt n)):", "",
              "| variant | endpoint | " + " | ".join(QUANTITIES) + " |", "|---|---|" + "---|" * len(QUANTITIES)]
    for d in doc["paired_differences"]:
        lines.append(f"| {d['variant']} | {d['endpoint']} | " +
                     " | ".join(f"{d[q]['mean']:+.4f} ({d[q]['sd']:.4f}; {d[q]['z']:+.1f})" for q in QUANTITIES) + " |")
    lines.append("")
    return "\n".join(lines)


def paired(frame: pd.DataFrame, variants: tuple[str, ...]) -> list[dict]:
    """Per variant after the first: mean and SD over replicates of (variant - first variant) per quantity: how much
    the variant itself moves the estimates, without the sampling variation they share."""
    out = []
    base = frame[frame["variant"] == variants[0]].set_index(["replicate", "endpoint"])
    for v in variants[1:]:
        d = frame[frame["variant"] == v].set_index(["replicate", "endpoint"])[list(QUANTITIES)] - base[list(QUANTITIES)]
        for ep, g in d.groupby(level="endpoint"):
            row: dict = {"variant": v, "endpoint": ep}
            for q in QUANTITIES:
                x = g[q].to_numpy(float)
                x = x[np.isfinite(x)]
                sd = float(x.std(ddof=1)) if x.size > 1 else float("nan")
                row[q] = {"mean": float(x.mean()), "sd": sd,
                          "z": float(x.mean() / (sd / math.sqrt(x.size))) if sd > 0 else float("nan")}
            out.append(row)
    return out


if __name__ == "__main__":
    sys.exit(main())
