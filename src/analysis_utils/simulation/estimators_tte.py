"""The clone-censor-weight method of the simulation (ADEMP: M; registered in ``estimators.py`` beside the naive
"ever HAIC" comparison it replaces); both target the ``tte`` estimands (``truth.py``: strategy A, HAIC within G days
of time zero, versus B, no HAIC within G days).

- ``ccw``: ``steps.target_trial.prepare`` (the study's deviation days, covariates with the missing-indicator design,
  centre indicators, from the params' ``target_trial:`` section) and ``stats.ccw.ccw_estimate`` (pooled logistic
  deviation models, stabilised and truncated IPC weights, weighted Kaplan-Meier on the clone episodes): differences
  of S(t) at the timepoints and of the RMST up to tau, for OS and PFS per RECIST 1.1 (the simulation's ``pfs``).
  Standard error: a nonparametric bootstrap over patients (both clones together) that refits the deviation models
  in every bootstrap replicate, ``simulation.ccw_bootstrap`` replicates (default 50) drawn from the replicate's
  methods seed (``stats.ccw.bootstrap``); CI: Wald, estimate +/- z x bootstrap SE. Why not the notebook's
  percentile interval from 200 replicates: 200 refits per simulation replicate is 4 times the cost, and a
  percentile interval needs many more replicates than an SE does (its tails rest on a few replicates), while the
  estimators are near-normal at this sample size. With B = 50 the SE itself carries ~10 % Monte Carlo error
  (1 / sqrt(2 (B - 1))), which widens the sampling distribution of the Wald statistic slightly (like a t with ~49
  degrees of freedom: nominal 95 % becomes ~94.6 %). No analytic variance is used: the usual robust (sandwich)
  variance of an IPC-weighted Kaplan-Meier ignores the estimation of the weights and is not known to be
  conservative for clone data (the two clones of a patient share follow-up up to the first deviation).
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
from analysis_utils.stats.ccw import CCWDesign, CCWInput, bootstrap, ccw_estimate
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


def ccw(frame: pd.DataFrame, s: Any) -> list[dict[str, Any]]:
    """CCW differences of S(t) and RMST with bootstrap SEs and Wald CIs (module docstring); ``s``: ``Settings``."""
    from analysis_utils.steps import target_trial as tt

    cfg = tte_config(frame, s)
    prepared = tt.prepare(frame, cfg)
    design = dataclasses.replace(prepared.design_sens, cox=False)   # no curve grid, no Cox summary
    full = ccw_estimate(prepared.ccw, design, keep_details=True)
    start = {k: m.fit.coef for k, m in full.models.items() if m.fit is not None}
    # (simulation endpoint, quantity, statistic name, scale to months)
    wanted = []
    for ep in s.endpoints_in(frame):
        te = TTE_ENDPOINTS[ep]
        for t, t_days in zip(s.timepoints, design.times):
            wanted.append((ep, surv_key(t), f"{te}_Sdiff{t_days:g}".replace(".", "p"), 1.0))   # stats.ccw names
        wanted.append((ep, rmst_key(s.tau), f"{te}_rmst_diff", 1.0 / DAYS_PER_MONTH))
    names = tuple(w[2] for w in wanted)
    reps = bootstrap(_statistic, _BootData(prepared.ccw, design, names, start), prepared.ccw.n,
                     int(s.ccw_bootstrap), s.seed, workers=1)
    z = sps.norm.ppf(1 - (1 - s.conf_level) / 2)
    rows = []
    for j, (ep, quantity, name, scale) in enumerate(wanted):
        est = full.stats.get(name, np.nan) * scale
        col = reps[:, j] * scale if reps.size else np.zeros(0)
        ok = col[np.isfinite(col)]
        if not math.isfinite(est):
            rows.append(_failed(ep, quantity, POPULATION, f"{name} not estimable (beyond follow-up)"))
            continue
        if ok.size < 2:
            rows.append(_row(ep, quantity, POPULATION, est, np.nan, np.nan, np.nan, "no bootstrap SE"))
            continue
        se = float(np.std(ok, ddof=1))
        note = "" if ok.size == reps.shape[0] else f"{reps.shape[0] - ok.size} bootstrap replicate(s) not estimable"
        rows.append(_row(ep, quantity, POPULATION, est, se, est - z * se, est + z * se, note))
    return rows

