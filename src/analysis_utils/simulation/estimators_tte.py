"""The clone-censor-weight method of the simulation (ADEMP: M; registered in ``estimators.py`` beside the naive
"ever HAIC" comparison it replaces); both target the ``tte`` estimands (``truth.py``: strategy A, HAIC within G days
of time zero, versus B, no HAIC within G days).

- ``ccw``: ``steps.target_trial.prepare`` (the study's deviation days, covariates with the missing-indicator design,
  centre indicators, from the params' ``target_trial:`` section) and ``stats.ccw.ccw_estimate`` (pooled logistic
  deviation models, stabilised and truncated IPC weights, weighted Kaplan-Meier on the clone episodes): differences
  of S(t) at the timepoints and of the RMST up to tau, for OS and PFS per RECIST 1.1 (the simulation's ``pfs``).
  Standard error (``simulation.ccw_variance``):
  ``ij`` (default): the robust infinitesimal-jackknife variance of the weighted Kaplan-Meier curves,
  ``stats.km_counting_ij`` (R's ``survfit(Surv(start, stop, event) ~ strategy, weights = w, id = patient,
  robust = TRUE)``), clustered on the patient so that both clones of a patient are one cluster, applied to the
  differences; the IPC weights are treated as fixed (the fitting of the deviation models and the truncation are
  ignored), which for inverse probability weights is usually conservative. One CCW fit per replicate.
  ``bootstrap``: a nonparametric bootstrap over patients (both clones together) that refits the deviation models
  in every bootstrap replicate, ``simulation.ccw_bootstrap`` replicates (default 50) drawn from the replicate's
  methods seed (``stats.ccw.bootstrap``); 1 + B CCW fits per replicate. With B = 50 the SE itself carries ~10 %
  Monte Carlo error (1 / sqrt(2 (B - 1))), which widens the sampling distribution of the Wald statistic slightly
  (like a t with ~49 degrees of freedom: nominal 95 % becomes ~94.6 %). Why not the notebook's percentile interval
  from 200 replicates: 200 refits per simulation replicate is 4 times the cost, and a percentile interval needs many
  more replicates than an SE does.
  CI, either way: Wald, estimate +/- z x SE.
Method: docs/methods/simulation.md, docs/methods/target-trial.md.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis_utils.simulation.result_rows import failed as _failed
from analysis_utils.simulation.result_rows import row as _row
from analysis_utils.simulation.truth import rmst_key, surv_key
from analysis_utils.stats.ccw import CCWDesign, CCWInput, CCWResult, bootstrap, ccw_estimate
from analysis_utils.stats.km_counting_ij import clone_influences, ij_difference
from analysis_utils.study.config import TargetTrialConfig

#: simulation endpoint -> target-trial endpoint (steps.target_trial.ENDPOINTS)
TTE_ENDPOINTS = {"os": "os", "pfs": "pfs_recist"}
DAYS_PER_MONTH = 365.25 / 12
POPULATION = "tte"


def tte_config(frame: pd.DataFrame, s: Any) -> TargetTrialConfig:
    """The params' ``target_trial:`` section with the simulation's timepoints, tau and endpoints (``s``: the
    replicate's ``estimators.Settings``)."""
    cfg = TargetTrialConfig.from_params({"target_trial": s.target_trial})
    cfg.timepoints_months = [float(t) for t in s.timepoints]
    cfg.rmst_tau_months = float(s.tau)
    cfg.endpoints = [TTE_ENDPOINTS[ep] for ep in s.endpoints_in(frame)]
    return cfg


@dataclass(frozen=True)
class _BootData:
    data: CCWInput
    design: CCWDesign
    names: tuple[str, ...]
    start: dict[tuple[str, str], np.ndarray]


def _statistic(d: _BootData, idx: np.ndarray) -> np.ndarray:
    """The contrasts of one bootstrap sample (deviation models refitted, started from the full-data fit)."""
    stats = ccw_estimate(d.data.take(idx), d.design, keep_details=False, start=d.start).stats
    return np.array([stats.get(n, np.nan) for n in d.names], dtype=float)


def _ij_se(full: CCWResult, design: CCWDesign, n: int, wanted: list[tuple[str, str, str, float]],
           strategies: tuple[str, str]) -> np.ndarray:
    """Robust IJ SEs of the wanted contrasts (module docstring), clustered on the patient across both clones."""
    out = np.full(len(wanted), np.nan)
    a, b = strategies
    for te in {TTE_ENDPOINTS[w[0]] for w in wanted}:
        se_s, se_rmst = ij_difference(*clone_influences(full, te, (a, b), n, design.times, design.tau))
        for j, (ep, _, name, _) in enumerate(wanted):
            if TTE_ENDPOINTS[ep] != te:
                continue
            if name.endswith("_rmst_diff"):
                out[j] = se_rmst
            else:
                out[j] = se_s[[f"{te}_Sdiff{t:g}".replace(".", "p") for t in design.times].index(name)]
    return out


def _bootstrap_se(prepared_ccw: CCWInput, design: CCWDesign, full: CCWResult, names: tuple[str, ...],
                  s: Any) -> tuple[np.ndarray, list[str]]:
    """Bootstrap SEs of the named contrasts (unscaled) and a note per contrast."""
    start = {k: m.fit.coef for k, m in full.models.items() if m.fit is not None}
    reps = bootstrap(_statistic, _BootData(prepared_ccw, design, names, start), prepared_ccw.n,
                     int(s.ccw_bootstrap), s.seed, workers=1)
    se, notes = np.full(len(names), np.nan), [""] * len(names)
    for j in range(len(names)):
        col = reps[:, j] if reps.size else np.zeros(0)
        ok = col[np.isfinite(col)]
        if ok.size < 2:
            notes[j] = "no bootstrap SE"
            continue
        se[j] = float(np.std(ok, ddof=1))
        if ok.size != reps.shape[0]:
            notes[j] = f"{reps.shape[0] - ok.size} bootstrap replicate(s) not estimable"
    return se, notes


def ccw(frame: pd.DataFrame, s: Any) -> list[dict[str, Any]]:
    """CCW differences of S(t) and RMST with IJ or bootstrap SEs and Wald CIs (module docstring); ``s``:
    ``Settings``."""
    from analysis_utils.steps import target_trial as tt

    cfg = tte_config(frame, s)
    prepared = tt.prepare(frame, cfg)
    design = dataclasses.replace(prepared.design_sens, cox=False)   # no curve grid, no Cox summary
    full = ccw_estimate(prepared.ccw, design, keep_details=True)
    # (simulation endpoint, quantity, statistic name, scale to months)
    wanted = []
    for ep in s.endpoints_in(frame):
        te = TTE_ENDPOINTS[ep]
        for t, t_days in zip(s.timepoints, design.times):
            wanted.append((ep, surv_key(t), f"{te}_Sdiff{t_days:g}".replace(".", "p"), 1.0))   # stats.ccw names
        wanted.append((ep, rmst_key(s.tau), f"{te}_rmst_diff", 1.0 / DAYS_PER_MONTH))
    names = tuple(w[2] for w in wanted)
    if s.ccw_variance == "ij":
        se_all = _ij_se(full, design, prepared.ccw.n, wanted, prepared.ccw.strategies[:2])
        notes = ["" if math.isfinite(v) else "no IJ SE" for v in se_all]
    else:
        se_all, notes = _bootstrap_se(prepared.ccw, design, full, names, s)
    z = sps.norm.ppf(1 - (1 - s.conf_level) / 2)
    rows = []
    for j, (ep, quantity, name, scale) in enumerate(wanted):
        est = full.stats.get(name, np.nan) * scale
        if not math.isfinite(est):
            rows.append(_failed(ep, quantity, POPULATION, f"{name} not estimable (beyond follow-up)"))
            continue
        se = se_all[j] * scale
        if not math.isfinite(se):
            rows.append(_row(ep, quantity, POPULATION, est, np.nan, np.nan, np.nan, notes[j]))
            continue
        rows.append(_row(ep, quantity, POPULATION, est, se, est - z * se, est + z * se, notes[j]))
    return rows
