"""Log-rank test as R ``survdiff(Surv(time, status) ~ group [+ strata(s)], rho = 0)`` (survival 3.x).

Observed and expected events summed over the unique event times (and strata), hypergeometric variance, chi-square
on (number of groups with expected events) - 1 degrees of freedom. Rules: docs/methods/survival.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analysis_utils.stats.survival_input import group_labels, survival_data

__all__ = ["LogrankResult", "logrank_test"]


@dataclass(frozen=True)
class LogrankResult:
    """survdiff result: chi-square, degrees of freedom, p and the observed/expected table."""
    chi2: float
    df: int
    p: float
    table: pd.DataFrame
    note: str = ""


def logrank_test(time: object, event: object, group: object, strata: object = None) -> LogrankResult:
    """Log-rank test as R ``survdiff(Surv(time, status) ~ group [+ strata(s)], rho = 0)``.

    O and E are summed over unique event times (and strata); V is the hypergeometric variance
    sum d (n - d) / (n - 1) [diag(p) - p p'] with p = n_g / n; chi2 = (O - E)' V^- (O - E) dropping the first group
    with E > 0, df = (#groups with E > 0) - 1. With no events at all the test is undefined: p = NaN with a note.
    """
    t, e, _ = survival_data(time, event)
    g_codes, levels = pd.factorize(pd.Series(group_labels(group, "group", t.size)), sort=True)
    if levels.size < 2:
        raise ValueError("group must have at least two levels for a log-rank test")
    s_codes = (np.zeros(t.size, dtype=int) if strata is None
               else pd.factorize(pd.Series(group_labels(strata, "strata", t.size)))[0])
    ng = levels.size
    obs, exp, var = np.zeros(ng), np.zeros(ng), np.zeros((ng, ng))
    for k in np.unique(s_codes):
        m = s_codes == k
        utime, idx = np.unique(t[m], return_inverse=True)
        deaths = np.zeros((utime.size, ng))
        leave = np.zeros((utime.size, ng))
        np.add.at(deaths, (idx, g_codes[m]), e[m])
        np.add.at(leave, (idx, g_codes[m]), 1.0)
        n_g = leave[::-1].cumsum(axis=0)[::-1]
        d, n = deaths.sum(axis=1), n_g.sum(axis=1)
        obs += deaths.sum(axis=0)
        exp += (d / n) @ n_g
        use = (d > 0) & (n > 1)
        p = n_g[use] / n[use, None]
        f = d[use] * (n[use] - d[use]) / (n[use] - 1)
        var += np.einsum("t,tj->j", f, p) * np.eye(ng) - np.einsum("t,tj,tk->jk", f, p, p)
    table = pd.DataFrame({"group": levels, "n": np.bincount(g_codes, minlength=ng), "observed": obs,
                          "expected": exp})
    with np.errstate(divide="ignore", invalid="ignore"):
        table["(O-E)^2/E"] = (obs - exp) ** 2 / exp
        table["(O-E)^2/V"] = (obs - exp) ** 2 / np.diag(var)
    keep = np.flatnonzero(exp > 0)
    if keep.size < 2:
        return LogrankResult(0.0, 0, float("nan"), table, "fewer than two groups with expected events: no test")
    sub = keep[1:]
    x = (obs - exp)[sub]
    chi2 = float(x @ np.linalg.solve(var[np.ix_(sub, sub)], x))
    df = int(keep.size - 1)
    return LogrankResult(chi2, df, float(stats.chi2.sf(chi2, df)), table)
