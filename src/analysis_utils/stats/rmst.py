"""Restricted mean survival time as ``survRM2::rmst2`` (area under the Kaplan-Meier curve up to tau).

- ``rmst``: survRM2's rmst1: area under the KM step function on [0, tau], Greenwood plug-in variance; with
  non-integer weights the infinitesimal-jackknife (IJ) variance of the weighted KM (``stats.kaplan_meier``).
- ``rmst_difference``: ``rmst2`` (unadjusted): difference on the natural scale, RMST and RMTL ratios on the log
  scale, survRM2's default and largest tau.
- ``weighted_rmst_difference``: the same difference from weighted KMs (IJ variance per group); survRM2 has no
  weighted version.
R source read from cran/survRM2. Rules: docs/methods/survival.md.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis_utils.stats.kaplan_meier import Variance, km_counts, km_ij, resolve_variance
from analysis_utils.stats.survival_input import group_labels, survival_data

__all__ = ["rmst", "rmst_difference", "weighted_rmst_difference"]


def rmst(time: object, event: object, tau: float, weights: object = None, conf_level: float = 0.95,
         variance: Variance = "auto") -> pd.Series:
    """Restricted mean survival time up to ``tau`` as survRM2's rmst1: area under the KM step function on [0, tau].

    Variance (Greenwood plug-in): sum over times t_j <= tau of (area under S from t_j to tau)^2 d_j / (n_j (n_j - d_j))
    (0 when n_j = d_j). With non-integer weights (``variance="auto"``) the IJ variance of the weighted KM is used.
    tau beyond the last follow-up time is refused unless that last observation is an event (S = 0 afterwards).
    """
    t, e, w = survival_data(time, event, weights)
    tau = float(tau)
    if not tau > 0:
        raise ValueError("tau must be > 0")
    tmax = t.max()
    if tau > tmax and e[t == tmax].min() == 0:
        raise ValueError(f"tau = {tau:g} is beyond the last follow-up time ({tmax:g}), which is censored")
    method = resolve_variance(variance, w)
    c = km_counts(t, e, w)
    s = c.surv
    keep = c.time <= tau
    grid = np.append(c.time[keep], tau)
    areas = np.diff(np.concatenate([[0.0], grid])) * np.concatenate([[1.0], s[keep]])
    est = float(areas.sum())
    if method == "greenwood":
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(c.n_left[keep] == 0, 0.0, c.n_event[keep] / (c.n_risk[keep] * c.n_left[keep]))
        tail = np.cumsum(areas[1:][::-1])[::-1]   # area from each time t_j up to tau
        var = float(np.sum(tail**2 * v))
    else:
        _, infl = km_ij(c, e, w, tau)
        var = float(np.sum(infl**2))
    se = np.sqrt(var)
    z = stats.norm.ppf(1 - (1 - conf_level) / 2)
    return pd.Series({"rmst": est, "se": se, "lower": est - z * se, "upper": est + z * se, "tau": tau,
                      "rmtl": tau - est, "variance": method})


def _rmst_tau_bound(t: np.ndarray, e: np.ndarray, arm1: np.ndarray) -> float:
    """survRM2's largest allowed (and default) tau: the larger of the two arms' last times if the arm that ends first
    ends with an event, else the smaller."""
    last = []
    for m in (arm1, ~arm1):
        tmax = t[m].max()
        last.append((tmax, e[m][t[m] == tmax].min() == 1))
    (t1, ev1), (t0, ev0) = last
    shorter_ends_with_event = ev1 if t1 <= t0 else ev0
    return max(t1, t0) if shorter_ends_with_event else min(t1, t0)


def _ratio_and_log_se(a: float, var_a: float, b: float, var_b: float) -> tuple[float, float]:
    """a / b and the delta-method se of log(a / b) (survRM2); NaN when a or b is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.divide(a, b)), float(np.sqrt(np.divide(var_a, a**2) + np.divide(var_b, b**2)))


def _two_groups(group: object, treatment: object | None, n: int) -> tuple[np.ndarray, object, object]:
    """(arm-1 mask, arm-1 label, arm-0 label) of a two-level ``group``; ``treatment`` defaults to 1 for 0/1 groups."""
    g = group_labels(group, "group", n)
    levels = list(pd.unique(pd.Series(g)))
    if len(levels) != 2:
        raise ValueError(f"group must have exactly two levels (found {len(levels)})")
    if treatment is None:
        if set(levels) <= {0, 1}:
            treatment = 1
        else:
            raise ValueError("specify treatment= (the arm-1 label)")
    if treatment not in levels:
        raise ValueError(f"treatment {treatment!r} is not a level of group")
    return g == treatment, treatment, levels[0] if levels[1] == treatment else levels[1]


def rmst_difference(time: object, event: object, group: object, tau: float | None = None,
                    treatment: object | None = None, conf_level: float = 0.95) -> pd.DataFrame:
    """Two-arm RMST comparison as ``survRM2::rmst2`` (unadjusted): RMST per arm, difference (arm1 - arm0) with a
    normal CI, RMST ratio and RMTL ratio with CIs on the log scale, two-sided p.

    ``treatment``: the arm-1 label; required unless the groups are coded 0/1 (then 1). ``tau=None`` uses
    survRM2's default (see ``_rmst_tau_bound``); a larger tau raises, as in survRM2.
    """
    t, e, _ = survival_data(time, event)
    arm1, treatment, control = _two_groups(group, treatment, t.size)
    bound = _rmst_tau_bound(t, e, arm1)
    if tau is None:
        tau = bound
    elif tau > bound:
        raise ValueError(f"tau must be <= {bound:g} for these data (survRM2 rule)")
    r1 = rmst(t[arm1], e[arm1], tau, conf_level=conf_level)
    r0 = rmst(t[~arm1], e[~arm1], tau, conf_level=conf_level)
    z = stats.norm.ppf(1 - (1 - conf_level) / 2)
    v1, v0 = r1["se"] ** 2, r0["se"] ** 2

    def row(label: str, est: float, se: float, log: bool) -> tuple[object, ...]:
        """Estimate, se, CI and p; ratios on the log scale (undefined, NaN, when an RMTL is 0)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            centre = np.log(est) if log else est
            lo, hi = centre - z * se, centre + z * se
            p = 2 * stats.norm.sf(abs(centre) / se) if se > 0 else float("nan")
            return (label, est, se, np.exp(lo) if log else lo, np.exp(hi) if log else hi, p)

    rows = [(f"RMST {treatment}", r1["rmst"], r1["se"], r1["lower"], r1["upper"], np.nan),
            (f"RMST {control}", r0["rmst"], r0["se"], r0["lower"], r0["upper"], np.nan),
            row("RMST difference", r1["rmst"] - r0["rmst"], np.sqrt(v1 + v0), log=False),
            row("RMST ratio", *_ratio_and_log_se(r1["rmst"], v1, r0["rmst"], v0), log=True),
            row("RMTL ratio", *_ratio_and_log_se(r1["rmtl"], v1, r0["rmtl"], v0), log=True)]
    out = pd.DataFrame(rows, columns=["quantity", "estimate", "se", "lower", "upper", "p"])
    out.attrs.update({"tau": float(tau), "treatment": treatment, "conf_level": conf_level,
                      "note": "se of ratios is on the log scale (delta method), as survRM2"})
    return out


def weighted_rmst_difference(time: object, event: object, weights: object, group: object, tau: float,
                             treatment: object | None = None, conf_level: float = 0.95) -> pd.DataFrame:
    """RMST per group from the weighted KM (IJ variance, ``rmst``) and their difference (arm1 - arm0) with
    se = sqrt(v1 + v0) (groups independent; the uncertainty of estimated weights is ignored, as with a robust Cox
    variance). Rows as ``rmst_difference`` without the ratios; ``treatment`` as there."""
    t, e, w = survival_data(time, event, weights)
    arm1, treatment, control = _two_groups(group, treatment, t.size)
    r1 = rmst(t[arm1], e[arm1], tau, weights=w[arm1], conf_level=conf_level)
    r0 = rmst(t[~arm1], e[~arm1], tau, weights=w[~arm1], conf_level=conf_level)
    z = stats.norm.ppf(1 - (1 - conf_level) / 2)
    diff, se = r1["rmst"] - r0["rmst"], float(np.sqrt(r1["se"] ** 2 + r0["se"] ** 2))
    p = 2 * stats.norm.sf(abs(diff) / se) if se > 0 else float("nan")
    rows = [(f"RMST {treatment}", r1["rmst"], r1["se"], r1["lower"], r1["upper"], np.nan),
            (f"RMST {control}", r0["rmst"], r0["se"], r0["lower"], r0["upper"], np.nan),
            ("RMST difference", diff, se, diff - z * se, diff + z * se, p)]
    out = pd.DataFrame(rows, columns=["quantity", "estimate", "se", "lower", "upper", "p"])
    out.attrs.update({"tau": float(tau), "treatment": treatment, "conf_level": conf_level,
                      "note": "weighted KM, infinitesimal-jackknife variance per arm"})
    return out
