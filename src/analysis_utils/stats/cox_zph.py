"""Proportional-hazards test as R ``cox.zph`` of survival >= 3.0, and the scaled Schoenfeld residuals it plots.

The score test for adding x * g(t) to the model (g = transformed time, default ``transform = "km"``), per term and
GLOBAL. lifelines' ``proportional_hazard_test`` implements the pre-2019 approximation (its docstring says so),
defaults to ``time_transform="rank"``, and its "km" is 1 - S(t) rather than R's 1 - S(t-): none of its options
reproduces the current R default exactly. Rules: docs/methods/survival.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis_utils.stats.cox import CoxFit, Ties, fit_cox
from analysis_utils.stats.kaplan_meier import km_counts

__all__ = ["ZphResult", "schoenfeld_test"]


@dataclass(frozen=True)
class ZphResult:
    """cox.zph result: ``table`` (term, chisq, df, p; last row GLOBAL) and ``plot_data`` (time, transformed_time,
    stratum, one column per term = scaled Schoenfeld residual + coefficient, i.e. the beta(t) points R plots)."""
    table: pd.DataFrame
    plot_data: pd.DataFrame
    transform: str


def _time_transform(t: np.ndarray, e: np.ndarray, transform: str) -> np.ndarray:
    """cox.zph time scales: km = 1 - S(t-) of the unweighted, unstratified KM; rank; identity; log."""
    if transform == "km":
        c = km_counts(t, e, np.ones_like(t))
        i = np.searchsorted(c.time, t, side="left") - 1
        return 1.0 - np.where(i >= 0, c.surv[np.maximum(i, 0)], 1.0)
    if transform == "rank":
        return stats.rankdata(t)
    if transform == "identity":
        return t.astype(float)
    if transform == "log":
        return np.log(t)
    raise ValueError(f"transform must be 'km', 'rank', 'identity' or 'log' (got {transform!r})")


def schoenfeld_test(df: pd.DataFrame, duration_col: str, event_col: str, covariates: Sequence[str],
                    ties: Ties = "efron", weights_col: str | None = None, strata_col: str | None = None,
                    transform: str = "km", reference: dict[str, object] | None = None) -> ZphResult:
    """Proportional-hazards test as R ``cox.zph(coxph(...), transform = "km")`` (survival >= 3.0).

    At the fitted coefficients, the score test for adding x * g(t) (g = transformed time centred over the deaths) to
    the model, per term (df = its number of columns) and GLOBAL (df = number of coefficients). Plot data: scaled
    Schoenfeld residuals (Schoenfeld residuals x inverse of the per-death average information) + coefficient.
    """
    fit = fit_cox(df, duration_col, event_col, covariates, ties, weights_col, strata_col, reference)
    d, tm, p = fit.data, fit.terms, len(fit.beta)
    gtime_all = _time_transform(d.time, d.event, transform)
    ev = d.event > 0
    gtime = gtime_all - gtime_all[ev].mean()
    gt = gtime[d.block_start[tm.dblocks]]
    u2 = (gt[:, None] * tm.uc).sum(axis=0)
    imat = np.zeros((2 * p, 2 * p))
    imat[:p, :p] = tm.V.sum(axis=0)
    imat[:p, p:] = imat[p:, :p] = (gt[:, None, None] * tm.V).sum(axis=0)
    imat[p:, p:] = (gt[:, None, None] ** 2 * tm.V).sum(axis=0)
    col_index = {name: i for i, name in enumerate(fit.names)}
    rows = []
    for term, cols in fit.term_columns.items():
        jj = [col_index[c] for c in cols]
        kk = list(range(p)) + [p + j for j in jj]
        u = np.concatenate([np.zeros(p), u2[jj]])
        chisq = float(u @ np.linalg.solve(imat[np.ix_(kk, kk)], u))
        rows.append((term, chisq, len(jj), float(stats.chi2.sf(chisq, len(jj)))))
    u = np.concatenate([np.zeros(p), u2])
    chisq = float(u @ np.linalg.solve(imat, u))
    rows.append(("GLOBAL", chisq, p, float(stats.chi2.sf(chisq, p))))
    table = pd.DataFrame(rows, columns=["term", "chisq", "df", "p"])
    return ZphResult(table, _zph_plot_data(fit, gtime_all, imat[:p, :p]), transform)


def _zph_plot_data(fit: CoxFit, ttimes: np.ndarray, i11: np.ndarray) -> pd.DataFrame:
    """Scaled Schoenfeld residuals + beta as in cox.zph (per-stratum scaling by I / number of deaths)."""
    d, tm = fit.data, fit.terms
    ev = np.flatnonzero(d.event > 0)
    pos = np.full(d.block_start.size, -1)
    pos[tm.dblocks] = np.arange(tm.dblocks.size)
    schoen = d.X[ev] - tm.mbar[pos[d.block[ev]]]
    strata = d.strata[ev]
    ustrata = np.unique(d.strata)
    used = np.zeros((ustrata.size, len(fit.beta)))
    for i, s in enumerate(ustrata):
        in_s = d.strata == s
        varies = np.ptp(d.X[in_s], axis=0) > 0
        used[i] = np.where(varies, np.sum(d.event[in_s]), 0.0)
    wtmat = sum(np.minimum.outer(u, u) for u in used)
    vmean = i11 / np.where(wtmat == 0, 1.0, wtmat)
    col_index = {name: i for i, name in enumerate(fit.names)}
    temp = np.zeros((len(fit.beta), len(fit.term_columns)))
    for k, cols in enumerate(fit.term_columns.values()):
        jj = [col_index[c] for c in cols]
        temp[jj, k] = 1.0 if len(jj) == 1 else fit.beta[jj]
    sresid = schoen @ temp
    vmean_t = temp.T @ vmean @ temp
    used_t = used @ (temp != 0) > 0
    for i, s in enumerate(ustrata):
        rows = strata == s
        k = np.flatnonzero(used_t[i])
        if k.size:
            sresid[np.ix_(rows, k)] = np.linalg.solve(vmean_t[np.ix_(k, k)], sresid[np.ix_(rows, k)].T).T
        sresid[np.ix_(rows, np.setdiff1d(np.arange(sresid.shape[1]), k))] = np.nan
    for k, cols in enumerate(fit.term_columns.values()):
        sresid[:, k] += fit.beta[col_index[cols[0]]] if len(cols) == 1 else 1.0
    out = pd.DataFrame(sresid, columns=list(fit.term_columns))
    out.insert(0, "stratum", strata)
    out.insert(0, "transformed_time", ttimes[ev])
    out.insert(0, "time", d.time[ev])
    return out
