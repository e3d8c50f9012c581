"""Notebook 03_target_trial's steps: the target-trial emulation of "HAIC within G days of time zero" versus "no HAIC
within G days" (both with the TKI/anti-VEGF + PD-(L)1 combination started by day G) by clone-censor-weight, the
primary analysis; computation only (tables and figures are in ``reporting/target_trial.py``).

The statistics are the general estimators of :mod:`analysis_utils.stats.ccw` (person-interval expansion, pooled
logistic deviation models, stabilised and truncated IPC weights, weighted Kaplan-Meier on (start, stop] data, RMST,
weighted Cox, bootstrap); the protocol rules (time zero, strategies, deviation days) are
:mod:`analysis_utils.study.treatment`'s. This module joins them for the study: the analysis-ready arrays from the
cohort (:func:`prepare`), the analysis plan (:func:`design`), the statistics of one bootstrap replicate
(:func:`replicate_statistics`: the main analysis and the sensitivity analyses), the run (:func:`run`) and the flat
``results.json`` section (:func:`results_section`). :func:`estimate` runs the whole estimator on an analysis-ready
cohort frame (e.g. from a simulation engine). Time is in days inside, months in the outputs (days / 30.4375).
Rules: docs/methods/target-trial.md, docs/methods/eligibility-and-time-zero.md.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from analysis_utils.stats.ccw import (CCWDesign, CCWInput, CCWResult, Intervals, bootstrap, ccw_estimate,
                                      percentile_ci)
from analysis_utils.stats.logistic import design_matrix
from analysis_utils.study.config import TargetTrialConfig
from analysis_utils.study.treatment import (ARM_CONTROL, ARM_HAIC, STRATEGIES, crossover_counts,
                                            strategy_deviation_days)

DAYS_PER_MONTH = 365.25 / 12
ENDPOINTS = {"os": ("os_days", "os_event", "Overall survival"),          # key -> (time in days, event, label)
             "pfs_recist": ("pfs_recist_days", "pfs_recist_event", "PFS (RECIST 1.1)"),
             "pfs_mrecist": ("pfs_mrecist_days", "pfs_mrecist_event", "PFS (mRECIST)")}
STRATEGY_TAGS = {ARM_HAIC: "haic", ARM_CONTROL: "control"}
#: analyses of the sensitivity table: key -> label (the main analysis first)
ANALYSES = {"ccw": "Clone-censor-weight (main)",
            "ccw_truncated": "Clone-censor-weight, truncated weights",
            "ccw_unweighted": "Clone-censor, unweighted",
            "ccw_complete": "Clone-censor-weight, complete eligibility data",
            "arm_t0": "Arm known at time zero (unadjusted)",
            "naive": "Ever-HAIC within the window (naive, immortal-time biased)"}


# --------------------------------------------------------------------------------------------------------------------
# analysis-ready data and plan
# --------------------------------------------------------------------------------------------------------------------
@dataclass
class TTEData:
    """Everything one replicate needs (picklable for the bootstrap workers): the CCW input (days), the designs of the
    main and the sensitivity analyses (``design_truncated``: the main analysis with the weights truncated at
    ``truncate_quantiles_sensitivity``; None when that analysis is not run), and per patient the arm at T0, the naive
    ever-HAIC group and whether the eligibility data are complete."""

    ccw: CCWInput
    design: CCWDesign
    design_sens: CCWDesign
    design_truncated: CCWDesign | None
    haic_t0: np.ndarray
    ever_haic: np.ndarray
    complete: np.ndarray
    covariates: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    start: dict[str, dict[tuple[str, str], np.ndarray]] = field(default_factory=dict)


def design(cfg: TargetTrialConfig, grid: bool = True,
           truncate: tuple[float, float] | None | str = "main") -> CCWDesign:
    """The analysis plan in days: intervals {0}, (0, w], ..., (., G - 1], {G}; strategy A (HAIC-TKIs-P) can deviate
    only at {G}, B (TKIs-P) in every interval; S(t) at the timepoints, RMST at tau, the curve grid (weekly up to
    ``plot_months``) when ``grid``; weights truncated at ``cfg.truncate_quantiles`` (``truncate="main"``) or at the
    quantiles given."""
    iv = Intervals.grace_grid(cfg.grace_days, cfg.interval_days, unit=1.0)
    possible = np.vstack([np.arange(iv.size) == iv.size - 1, np.ones(iv.size, dtype=bool)])
    times = tuple(float(m) * DAYS_PER_MONTH for m in cfg.timepoints_months)
    g = np.arange(0.0, cfg.plot_months * DAYS_PER_MONTH + 1e-9, 7.0) if grid else np.zeros(0)
    return CCWDesign(iv, possible, time_model=cfg.time_model, stabilize=cfg.stabilize,  # type: ignore[arg-type]
                     truncate=cfg.truncate_quantiles if truncate == "main" else truncate,  # type: ignore[arg-type]
                     times=times, tau=cfg.rmst_tau_months * DAYS_PER_MONTH, grid=g)


def covariate_matrix(cohort: pd.DataFrame, cfg: TargetTrialConfig) -> tuple[np.ndarray, list[str], list[str]]:
    """Baseline covariates of the deviation models: ``cfg.covariates`` with the missing-indicator design of
    ``stats.logistic.design_matrix`` (median / mode fill + indicator; constant and collinear columns dropped), plus
    centre indicators (first centre in sorted order = reference) when ``cfg.centre == "fixed"``."""
    X, _, notes = design_matrix(cohort, cfg.covariates, cfg.categorical, missing="indicator")
    parts, names = [X.to_numpy(float)], list(X.columns)
    if cfg.centre == "fixed" and "center_id" in cohort.columns:
        centres = sorted(cohort["center_id"].astype(str).unique())
        for c in centres[1:]:
            parts.append((cohort["center_id"].astype(str) == c).to_numpy(float)[:, None])
            names.append(f"centre[{c}]")
        notes.append(f"centre: {len(centres) - 1} indicator(s), reference {centres[0] if centres else '-'}")
    return np.hstack(parts) if parts else np.zeros((len(cohort), 0)), names, notes


def prepare(cohort: pd.DataFrame, cfg: TargetTrialConfig) -> TTEData:
    """Analysis-ready arrays from the eligible cohort (one row per patient): follow-up days and events per endpoint
    (``ENDPOINTS``; a missing time or event raises), deviation days per strategy
    (:func:`analysis_utils.study.treatment.strategy_deviation_days`), covariates (:func:`covariate_matrix`)."""
    eps = [e for e in cfg.endpoints]
    need = [c for e in eps for c in ENDPOINTS[e][:2]] + ["haic_offset_days", "combination_day", "arm"]
    absent = [c for c in need if c not in cohort.columns]
    if absent:
        raise ValueError(f"cohort lacks column(s) {absent} (01_cleaning writes them)")
    t = np.column_stack([pd.to_numeric(cohort[ENDPOINTS[e][0]], errors="coerce").to_numpy(float) for e in eps])
    ev = np.column_stack([pd.to_numeric(cohort[ENDPOINTS[e][1]], errors="coerce").to_numpy(float) for e in eps])
    if np.isnan(t).any() or np.isnan(ev).any():
        bad = [e for j, e in enumerate(eps) if np.isnan(t[:, j]).any() or np.isnan(ev[:, j]).any()]
        raise ValueError(f"missing follow-up time or event for endpoint(s) {bad}")
    dev = strategy_deviation_days(cohort, cfg.grace_days)[["deviation_day_haic", "deviation_day_control"]].to_numpy()
    X, names, notes = covariate_matrix(cohort, cfg)
    data = CCWInput(t, ev, dev, X, tuple(eps), STRATEGIES)
    complete = (~cohort["eligibility_query"].astype(bool)).to_numpy() if "eligibility_query" in cohort.columns \
        else np.ones(len(cohort), dtype=bool)
    ever = cohort["arm_ever_haic"].eq(ARM_HAIC).to_numpy() if "arm_ever_haic" in cohort.columns \
        else (pd.to_numeric(cohort["haic_offset_days"], errors="coerce") <= cfg.grace_days).to_numpy()
    q = cfg.truncate_quantiles_sensitivity
    return TTEData(data, design(cfg), design(cfg, grid=False), None if q is None else design(cfg, False, q),
                   cohort["arm"].eq(ARM_HAIC).to_numpy(), ever, complete, names, notes)


# --------------------------------------------------------------------------------------------------------------------
# one replicate: main analysis and sensitivity analyses
# --------------------------------------------------------------------------------------------------------------------
def _group_input(data: CCWInput, group: np.ndarray) -> CCWInput:
    """A two-group comparison as a degenerate clone analysis: each patient's clone of the other group is censored at
    time zero (so it contributes nothing), no weights."""
    dev = np.column_stack([np.where(group, np.inf, 0.0), np.where(group, 0.0, np.inf)])
    return CCWInput(data.time, data.event, dev, data.X, data.endpoints, data.strategies)


def analysis_statistics(d: TTEData, idx: np.ndarray | None = None,
                        keep_details: bool = False) -> tuple[dict[str, float], CCWResult]:
    """Named statistics of every analysis of :data:`ANALYSES` on the patients ``idx`` (all when None), prefixed
    ``<analysis>:``, and the main analysis' full result."""
    idx = np.arange(d.ccw.n) if idx is None else idx
    sample = d.ccw.take(idx)
    out: dict[str, float] = {}
    main = ccw_estimate(sample, d.design, keep_details=keep_details, start=d.start.get("ccw"))
    out.update({f"ccw:{k}": v for k, v in main.stats.items()})
    if d.design_truncated is not None:  # same deviation models, weights truncated
        trunc = ccw_estimate(sample, d.design_truncated, keep_details=False, models=main.models)
        out.update({f"ccw_truncated:{k}": v for k, v in trunc.stats.items()})
    unw = ccw_estimate(sample, d.design_sens, weighted=False, keep_details=False)
    out.update({f"ccw_unweighted:{k}": v for k, v in unw.stats.items()})
    sub = idx[d.complete[idx]]
    comp = ccw_estimate(d.ccw.take(sub), d.design_sens, keep_details=False, start=d.start.get("ccw_complete"))
    out.update({f"ccw_complete:{k}": v for k, v in comp.stats.items()})
    if keep_details:  # the full-data fits start the bootstrap refits (glm's start=)
        d.start = {"ccw": {k: m.fit.coef for k, m in main.models.items() if m.fit is not None},
                   "ccw_complete": {k: m.fit.coef for k, m in comp.models.items() if m.fit is not None}}
    for key, grp in (("arm_t0", d.haic_t0), ("naive", d.ever_haic)):
        res = ccw_estimate(_group_input(sample, grp[idx]), d.design_sens, weighted=False, keep_details=False)
        out.update({f"{key}:{k}": v for k, v in res.stats.items()})
    return out, main


def replicate_statistics(d: TTEData, idx: np.ndarray) -> np.ndarray:
    """The statistics of :func:`analysis_statistics` as a vector (the bootstrap's statistic; names fixed by the
    order of a full-data run)."""
    values, _ = analysis_statistics(d, idx)
    return np.array(list(values.values()), dtype=float)


# --------------------------------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------------------------------
@dataclass
class TTERun:
    """Point estimates (``point``: name -> value; ``main``: the main CCWResult), bootstrap replicates (B x m, columns
    in ``names`` order), the CI table, the data and the settings; ``seconds`` (not written to any output)."""

    data: TTEData
    cfg: TargetTrialConfig
    point: dict[str, float]
    main: CCWResult
    names: list[str]
    reps: np.ndarray
    ci: pd.DataFrame
    seed: int
    seconds: float = 0.0


def progress_printer(label: str = "bootstrap", step: float = 0.1,
                     say: Callable[[str], None] = print) -> Callable[[int, int], None]:
    """A progress callback printing '<label>: done/B replicates' about every ``step`` of the way (no clock time, so
    the executed notebook stays byte-identical between runs)."""
    state = {"next": 0.0}

    def report(done: int, total: int) -> None:
        if done >= state["next"] * total or done == total:
            say(f"{label}: {done}/{total} replicates")
            state["next"] = done / total + step
    return report


def ci_table(names: list[str], point: dict[str, float], reps: np.ndarray, conf_level: float) -> pd.DataFrame:
    """One row per statistic: estimate, percentile CI (quantile type 7), bootstrap SE, finite replicates."""
    if reps.size:
        lower, upper, n_ok = percentile_ci(reps, conf_level)
        with np.errstate(invalid="ignore"):
            se = np.array([np.nanstd(reps[:, j], ddof=1) if n_ok[j] > 1 else np.nan for j in range(len(names))])
    else:
        lower = upper = se = np.full(len(names), np.nan)
        n_ok = np.zeros(len(names), dtype=int)
    return pd.DataFrame({"name": names, "estimate": [point[n] for n in names], "lower": lower, "upper": upper,
                         "se": se, "n_boot": n_ok})


def run(cohort: pd.DataFrame, cfg: TargetTrialConfig, seed: int,
        progress: Callable[[int, int], None] | None = None) -> TTERun:
    """Point estimates of every analysis, then ``cfg.bootstrap`` replicates over patients in ``cfg.workers``
    processes (seeds spawned from ``seed``), and the percentile CIs."""
    t0 = time.perf_counter()
    d = prepare(cohort, cfg)
    point, main = analysis_statistics(d, keep_details=True)
    names = list(point)
    reps = bootstrap(replicate_statistics, d, d.ccw.n, cfg.bootstrap, seed, workers=cfg.workers, progress=progress)
    ci = ci_table(names, point, reps, cfg.conf_level)
    return TTERun(d, cfg, point, main, names, reps, ci, seed, time.perf_counter() - t0)


def estimate(cohort: pd.DataFrame, params: dict[str, Any], seed: int | None = None, bootstrap_b: int | None = None,
             workers: int | None = None, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """The whole estimator on an analysis-ready cohort frame (eligible patients; the columns 01_cleaning writes:
    endpoint days and events, ``haic_offset_days``, ``combination_day``, ``arm``, the covariates, ``center_id``),
    e.g. for a simulation engine: returns the flat ``results_section`` (estimates with percentile CIs of every
    analysis). ``params`` is a params dict (its ``target_trial`` section and ``seed``); ``bootstrap_b`` and
    ``workers`` override the section's values."""
    cfg = TargetTrialConfig.from_params(params)
    if bootstrap_b is not None:
        cfg.bootstrap = int(bootstrap_b)
    if workers is not None:
        cfg.workers = int(workers)
    r = run(cohort, cfg, int(params.get("seed", 0) if seed is None else seed), progress)
    return results_section(r, cohort)


# --------------------------------------------------------------------------------------------------------------------
# summaries for the tables, figures and results.json
# --------------------------------------------------------------------------------------------------------------------
def _key(t: float) -> str:
    return f"{t:g}".replace(".", "p")


def stat_name(analysis: str, endpoint: str, what: str, t_days: float | None = None, strategy: str | None = None) -> str:
    """Name of a statistic in ``TTERun.names``: what in S (survival), Sdiff, Sratio, rmst, rmst_diff, loghr, grid."""
    t = "" if t_days is None else _key(t_days)
    s = "" if strategy is None else f"_{strategy}"
    return f"{analysis}:{endpoint}_{what}{t}{s}"


def clone_summary(r: TTERun, endpoint: str = "os") -> pd.DataFrame:
    """Per strategy: clones, clones artificially censored at their deviation (total, on day 0, during the grace
    period, on day G), events counted, events before G, for one endpoint (main analysis)."""
    g = r.cfg.grace_days
    rows = []
    for s in STRATEGIES:
        epi = r.main.episodes[(endpoint, s)]
        dev = r.data.ccw.deviation[:, STRATEGIES.index(s)]
        cens = epi.censored
        ev_time = epi.clone_time[epi.clone_event > 0]
        rows.append({"strategy": s, "clones": int(cens.size), "censored": int(cens.sum()),
                     "censored_day0": int((cens & (dev == 0)).sum()),
                     "censored_grace": int((cens & (dev > 0) & (dev < g)).sum()),
                     "censored_day_g": int((cens & (dev == g)).sum()),
                     "events": int(epi.clone_event.sum()), "events_by_g": int((ev_time <= g).sum())})
    return pd.DataFrame(rows)


def weight_distribution(r: TTERun, endpoint: str = "os") -> pd.DataFrame:
    """Per strategy and weight period (the time after each interval end at which weights change): clones at risk,
    mean, SD, min, 1st percentile, median, 99th percentile and max of the (stabilised, truncated) weights, and the
    truncation cut points, for one endpoint (main analysis)."""
    rows = []
    for s in STRATEGIES:
        epi = r.main.episodes[(endpoint, s)]
        cuts = r.main.cuts[(endpoint, s)]
        starts = np.concatenate([[0.0], epi.change_points])
        ends = np.concatenate([epi.change_points, [np.inf]])
        for j in np.unique(epi.segment):
            w = epi.weight[epi.segment == j]
            label = (f"after day {starts[j]:g}" if not np.isfinite(ends[j]) else f"days {starts[j]:g}-{ends[j]:g}"
                     if starts[j] + 1 < ends[j] else f"day {ends[j]:g}")
            rows.append({"strategy": s, "period": label, "start_day": starts[j], "n": int(w.size),
                         "mean": w.mean(), "sd": w.std(ddof=1) if w.size > 1 else np.nan, "min": w.min(),
                         "p01": np.quantile(w, 0.01), "median": np.median(w), "p99": np.quantile(w, 0.99),
                         "max": w.max(), "trunc_lower": cuts[0], "trunc_upper": cuts[1]})
    return pd.DataFrame(rows)


def model_summary(r: TTERun, endpoint: str = "os") -> pd.DataFrame:
    """Per strategy and interval of the deviation model: clones at risk, deviations, and the fit's convergence and
    separation flags (main analysis, one endpoint)."""
    iv = r.data.design.intervals
    rows = []
    for s in STRATEGIES:
        m = r.main.models.get((endpoint, s))
        if m is None:
            continue
        possible = r.data.design.possible[STRATEGIES.index(s)]
        for k in np.flatnonzero(possible):
            rows.append({"strategy": s, "interval": iv.labels()[k], "at_risk": int(m.n_rows[k]),
                         "deviations": int(m.n_deviations[k]), "hazard_time_only": m.h_num[k],
                         "converged": bool(m.fit.converged) if m.fit else None,
                         "separation": bool(m.fit.separation) if m.fit else None})
    return pd.DataFrame(rows)


def curve_table(r: TTERun, analysis: str = "ccw") -> pd.DataFrame:
    """Weighted survival per endpoint and strategy on the weekly grid, with pointwise percentile bootstrap CIs
    (months)."""
    ci = r.ci.set_index("name")
    rows = []
    grid = r.data.design.grid
    for ep in r.data.ccw.endpoints:
        for s in STRATEGIES:
            for j, t in enumerate(grid):
                row = ci.loc[f"{analysis}:{ep}_grid{j}_{s}"]
                rows.append({"endpoint": ep, "strategy": s, "months": t / DAYS_PER_MONTH, "surv": row["estimate"],
                             "lower": row["lower"], "upper": row["upper"]})
    return pd.DataFrame(rows)


def contrast_table(r: TTERun, analysis: str = "ccw") -> pd.DataFrame:
    """One row per endpoint and quantity: S(t) per strategy, their difference (HAIC-TKIs-P minus TKIs-P) and ratio at
    each timepoint, RMST per strategy and difference (months), and the weighted Cox HR; estimate with percentile
    CI."""
    ci = r.ci.set_index("name")
    rows = []
    dpm = DAYS_PER_MONTH
    for ep in r.data.ccw.endpoints:
        def add(quantity: str, name: str, scale: float = 1.0, exp: bool = False) -> None:
            x = ci.loc[name]
            f = np.exp if exp else (lambda v: v * scale)
            rows.append({"endpoint": ep, "quantity": quantity, "estimate": f(x["estimate"]), "lower": f(x["lower"]),
                         "upper": f(x["upper"]), "n_boot": int(x["n_boot"])})
        for m, t in zip(r.cfg.timepoints_months, r.data.design.times):
            for s in STRATEGIES:
                add(f"S({m:g} months), {s}", stat_name(analysis, ep, "S", t, s))
            add(f"Difference in S({m:g} months)", stat_name(analysis, ep, "Sdiff", t))
            add(f"Ratio of S({m:g} months)", stat_name(analysis, ep, "Sratio", t))
        for s in STRATEGIES:
            add(f"RMST ({r.cfg.rmst_tau_months:g} months), {s}", stat_name(analysis, ep, "rmst", strategy=s), 1 / dpm)
        add(f"Difference in RMST ({r.cfg.rmst_tau_months:g} months)", stat_name(analysis, ep, "rmst_diff"), 1 / dpm)
        add("Hazard ratio (weighted Cox)", stat_name(analysis, ep, "loghr"), exp=True)
    return pd.DataFrame(rows)


def analysis_labels(cfg: TargetTrialConfig) -> dict[str, str]:
    """The analyses of :data:`ANALYSES` that the settings run, with their labels (the truncated-weights analysis
    names its quantiles as percentiles; it is not run when ``truncate_quantiles_sensitivity`` is null)."""
    out = dict(ANALYSES)
    q = cfg.truncate_quantiles_sensitivity
    if q is None:
        del out["ccw_truncated"]
    else:
        out["ccw_truncated"] = (f"Clone-censor-weight, weights truncated at percentiles {100 * q[0]:g} and "
                                f"{100 * q[1]:g}")
    return out


def sensitivity_table(r: TTERun) -> pd.DataFrame:
    """The main contrasts (difference in S at each timepoint, RMST difference in months, HR) of every analysis of
    :data:`ANALYSES` per endpoint, with percentile bootstrap CIs, and the patients each uses."""
    ci = r.ci.set_index("name")
    rows = []
    n_all, n_complete = r.data.ccw.n, int(r.data.complete.sum())
    for key, label in analysis_labels(r.cfg).items():
        for ep in r.data.ccw.endpoints:
            row: dict[str, Any] = {"analysis": label, "key": key, "endpoint": ep,
                                   "n": n_complete if key == "ccw_complete" else n_all}
            for m, t in zip(r.cfg.timepoints_months, r.data.design.times):
                x = ci.loc[stat_name(key, ep, "Sdiff", t)]
                row.update({f"sdiff_{m:g}": x["estimate"], f"sdiff_{m:g}_lower": x["lower"],
                            f"sdiff_{m:g}_upper": x["upper"]})
            x = ci.loc[stat_name(key, ep, "rmst_diff")]
            row.update({"rmst_diff": x["estimate"] / DAYS_PER_MONTH, "rmst_diff_lower": x["lower"] / DAYS_PER_MONTH,
                        "rmst_diff_upper": x["upper"] / DAYS_PER_MONTH})
            x = ci.loc[stat_name(key, ep, "loghr")]
            row.update({"hr": np.exp(x["estimate"]), "hr_lower": np.exp(x["lower"]), "hr_upper": np.exp(x["upper"])})
            rows.append(row)
    return pd.DataFrame(rows)


def results_section(r: TTERun, cohort: pd.DataFrame) -> dict[str, Any]:
    """The flat ``target_trial`` section of results.json: settings, cohort at time zero (arms, crossovers, blank
    eligibility fields), clones censored and events per strategy (OS), weight summaries per strategy (OS), and for
    every endpoint the contrasts of the main analysis ``{ep}_{quantity}[_{strategy tag}][_lower|_upper]`` and of the
    sensitivity analyses ``{analysis}_{ep}_{quantity}``."""
    cfg = r.cfg
    out: dict[str, Any] = {"grace_days": cfg.grace_days, "interval_days": cfg.interval_days,
                           "n_intervals": r.data.design.intervals.size, "time_model": cfg.time_model,
                           "stabilize": cfg.stabilize, "truncate_quantiles": cfg.truncate_quantiles,
                           "truncate_quantiles_sensitivity": cfg.truncate_quantiles_sensitivity,
                           "centre": cfg.centre, "bootstrap": cfg.bootstrap, "conf_level": cfg.conf_level,
                           "ci_method": "percentile (quantile type 7)", "timepoints_months": cfg.timepoints_months,
                           "rmst_tau_months": cfg.rmst_tau_months, "endpoints": list(r.data.ccw.endpoints),
                           "n_covariate_columns": len(r.data.covariates), "n_eligible": r.data.ccw.n,
                           "n_complete_eligibility": int(r.data.complete.sum())}
    out["n_eligibility_query"] = out["n_eligible"] - out["n_complete_eligibility"]
    out.update({k: v for k, v in cohort_counts(cohort, cfg).items() if k != "eligible"})
    out["n_ever_haic"] = int(r.data.ever_haic.sum())
    for row in clone_summary(r).itertuples(index=False):
        tag = STRATEGY_TAGS[row.strategy]
        for k in ("clones", "censored", "censored_day0", "censored_grace", "censored_day_g", "events", "events_by_g"):
            out[f"os_{k}_{tag}"] = getattr(row, k)
    wd = weight_distribution(r)
    for s in STRATEGIES:
        w = wd[wd["strategy"] == s]
        tag = STRATEGY_TAGS[s]
        out[f"weight_max_{tag}"] = float(w["max"].max())
        out[f"weight_mean_final_{tag}"] = float(w.iloc[-1]["mean"])
        out[f"weight_trunc_upper_{tag}"] = float(w.iloc[-1]["trunc_upper"])
    ct = contrast_table(r)
    for ep in r.data.ccw.endpoints:
        for m, t in zip(cfg.timepoints_months, r.data.design.times):
            for s in STRATEGIES:
                _put(out, f"{ep}_s{m:g}m_{STRATEGY_TAGS[s]}", ct, ep, f"S({m:g} months), {s}")
            _put(out, f"{ep}_sdiff{m:g}m", ct, ep, f"Difference in S({m:g} months)")
            _put(out, f"{ep}_sratio{m:g}m", ct, ep, f"Ratio of S({m:g} months)")
        for s in STRATEGIES:
            _put(out, f"{ep}_rmst_{STRATEGY_TAGS[s]}", ct, ep, f"RMST ({cfg.rmst_tau_months:g} months), {s}")
        _put(out, f"{ep}_rmst_diff", ct, ep, f"Difference in RMST ({cfg.rmst_tau_months:g} months)")
        _put(out, f"{ep}_hr", ct, ep, "Hazard ratio (weighted Cox)")
    st = sensitivity_table(r)
    for row in st.to_dict("records"):
        if row["key"] == "ccw":
            continue
        base = f"{row['key']}_{row['endpoint']}"
        for k, v in row.items():
            if k not in ("analysis", "key", "endpoint"):
                out[f"{base}_{k}"] = v
    contrasts = r.ci[~r.ci["name"].str.contains("_grid")]
    out["n_boot_failed_max"] = int(cfg.bootstrap - contrasts["n_boot"].min()) if cfg.bootstrap else 0
    return out


def cohort_counts(cohort: pd.DataFrame, cfg: TargetTrialConfig) -> dict[str, int]:
    """Eligible patients, arms at time zero and crossovers (``study.treatment.crossover_counts``), the naive ever-HAIC
    group and the patients with a blank eligibility field."""
    out = {"eligible": len(cohort), **crossover_counts(cohort, cfg.grace_days)}
    if "arm_ever_haic" in cohort.columns:
        out["n_ever_haic"] = int(cohort["arm_ever_haic"].eq(ARM_HAIC).sum())
    if "eligibility_query" in cohort.columns:
        out["n_eligibility_query"] = int(cohort["eligibility_query"].astype(bool).sum())
    if "response_evaluable" in cohort.columns:
        out["n_response_evaluable"] = int(cohort["response_evaluable"].astype(bool).sum())
    return out


def headline(values: dict[str, Any]) -> dict[str, Any]:
    """The main contrasts of the results section (differences in S(t), RMST difference, HR of each endpoint)."""
    return {k: float(v) for k, v in values.items() if k.split("_")[0] in ("os", "pfs") and
            any(x in k for x in ("_sdiff", "_rmst_diff", "_hr")) and not k.startswith(("ccw_", "naive_", "arm_t0_"))}


def _put(out: dict[str, Any], key: str, table: pd.DataFrame, endpoint: str, quantity: str) -> None:
    row = table[(table["endpoint"] == endpoint) & (table["quantity"] == quantity)].iloc[0]
    out[key], out[f"{key}_lower"], out[f"{key}_upper"] = row["estimate"], row["lower"], row["upper"]


def load_cohort(data_dir: str | Path) -> pd.DataFrame:
    """The eligible cohort written by 01_cleaning (``data/cohort.parquet``)."""
    path = Path(data_dir) / "cohort.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (01_cleaning writes it)")
    return pd.read_parquet(path)
