"""Interval-censored event times: Turnbull's nonparametric maximum-likelihood estimate and midpoint imputation.

An event known only to lie in (L, R] (e.g. between the last scan without and the first scan with the event) is
interval-censored; R = L gives an exact time and R = inf a right-censored one.

* ``turnbull_npmle``: Turnbull's (1976) self-consistent NPMLE of the distribution, computed with lifelines'
  maintained implementation (``lifelines.fitters.npmle.npmle``, EM algorithm on the Turnbull intervals). lifelines
  takes closed intervals [L, R]; the half-open (L, R] intervals of R's ``icfit`` (package ``interval``, default
  ``Lin = FALSE, Rin = TRUE``) are passed as [L + h, R] with h below the data's resolution (half the smallest gap
  between distinct finite endpoints), which gives the same Turnbull intervals and masses. With exact and
  right-censored data only, the NPMLE is the Kaplan-Meier estimate (tested).
* ``npmle_survival_at``: S(t) = P(T > t) from the NPMLE; inside a Turnbull interval with mass the NPMLE does not say
  how the mass is spread, so the bounds (mass placed at the right end / at the left end) are returned.
* ``npmle_median``: the Turnbull interval in which the survival function reaches 0.5 (its left and right ends).
* ``midpoint_imputation``: (L + R) / 2 as an exact event time for interval-censored rows (L < R < inf), L for
  right-censored ones: the usual simple sensitivity analysis, biased when inspection intervals are long.

Rules: docs/methods/competing-risks.md (evaluation-time bias). Tests: tests/test_stats_interval_censoring.py.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = ["turnbull_npmle", "npmle_survival_at", "npmle_median", "midpoint_imputation"]


def _bounds(left: Any, right: Any) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.asarray(left, dtype=float), np.asarray(right, dtype=float)
    if lo.shape != hi.shape:
        raise ValueError("left and right differ in length")
    if np.isnan(lo).any() or np.isnan(hi).any():
        raise ValueError("left and right must not be missing (use inf for right-censored)")
    if (lo < 0).any() or (hi < lo).any():
        raise ValueError("intervals need 0 <= left <= right")
    return lo, hi


def turnbull_npmle(left: Any, right: Any, tol: float = 1e-10, max_iter: int = 100_000) -> pd.DataFrame:
    """Turnbull NPMLE of (L, R] data (L = R exact, R = inf right-censored): one row per Turnbull interval with
    left, right (its closed ends on the data's scale; a half-open (L, R] shows as left = L) and prob (mass), plus
    surv = P(T > right end). Fitted with lifelines' EM ``npmle`` to relative tolerance ``tol``."""
    from lifelines.fitters.npmle import npmle

    lo, hi = _bounds(left, right)
    finite = np.unique(np.concatenate([lo, hi[np.isfinite(hi)]]))
    gaps = np.diff(finite)
    h = 0.5 * gaps[gaps > 0].min() if (gaps > 0).any() else 0.5
    open_left = hi > lo                                # (L, R]: exclude L itself
    closed_lo = np.where(open_left, lo + h, lo)
    probs, intervals = npmle(closed_lo, hi, tol=tol, max_iter=max_iter)
    table = pd.DataFrame({"left": [float(i.left) for i in intervals], "right": [float(i.right) for i in intervals],
                          "prob": np.asarray(probs, dtype=float)})
    shifted = ~np.isin(table["left"].to_numpy(), lo)   # a left end that came from L + h maps back to L
    table.loc[shifted, "left"] = table.loc[shifted, "left"] - h
    table = table.sort_values(["left", "right"], kind="mergesort").reset_index(drop=True)
    table["prob"] = table["prob"] / table["prob"].sum()
    table["surv"] = 1.0 - table["prob"].cumsum()
    return table


def npmle_survival_at(table: pd.DataFrame, times: Sequence[float]) -> pd.DataFrame:
    """S(t) = P(T > t) at ``times`` from ``turnbull_npmle`` (intervals (L, R], exact points [D, D]): columns time,
    surv_lower (mass of an interval containing t counted as before t), surv_upper (counted as after t); equal
    outside the Turnbull intervals."""
    lo, hi, p = table["left"].to_numpy(), table["right"].to_numpy(), table["prob"].to_numpy()
    rows = []
    for t in np.asarray(times, dtype=float):
        after = p[(lo > t) | ((lo == t) & (hi > lo))].sum()   # entirely after t: (L, R] with L >= t; not a point t
        inside = p[(lo < t) & (hi > t)].sum()
        rows.append({"time": t, "surv_lower": float(after), "surv_upper": float(after + inside)})
    return pd.DataFrame(rows)


def npmle_median(table: pd.DataFrame) -> tuple[float, float]:
    """(left, right) of the Turnbull interval where the NPMLE survival reaches 0.5; (nan, nan) if it stays above
    0.5 (median not reached). When S equals 0.5 exactly after an interval, the median lies anywhere up to the next
    interval's left end, and that span is returned (R's midpoint convention would take its middle)."""
    surv = table["surv"].to_numpy()
    hit = np.flatnonzero(surv <= 0.5 + 1e-12)
    if not hit.size:
        return np.nan, np.nan
    i = int(hit[0])
    if abs(surv[i] - 0.5) <= 1e-12 and i + 1 < len(table):
        return float(table["right"].iloc[i]), float(table["left"].iloc[i + 1])
    return float(table["left"].iloc[i]), float(table["right"].iloc[i])


def midpoint_imputation(left: Any, right: Any) -> tuple[np.ndarray, np.ndarray]:
    """(time, event): the midpoint (L + R)/2 with event 1 for interval-censored rows (L < R < inf), L with event 1
    for exact rows (L = R), L with event 0 for right-censored rows (R = inf)."""
    lo, hi = _bounds(left, right)
    censored = ~np.isfinite(hi)
    time = np.where(censored, lo, (lo + np.where(censored, lo, hi)) / 2.0)
    return time, (~censored).astype(int)
