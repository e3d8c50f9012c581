"""Weights from a propensity score with WeightIt's semantics: inverse probability of treatment weights (ATE, ATT,
ATC), their stabilisation and trimming, and overlap (ATO) weights.

Definitions reproduced (read from WeightIt's own source and help pages); method page:
docs/methods/matching-and-weighting.md (IPTW/ATT/overlap weights).

- ``get_w_from_ps``: ATE 1/e for treated, 1/(1-e) for controls; ATT 1 for treated, e/(1-e) for controls; ATC
  (1-e)/e for treated, 1 for controls; ATO (overlap, Li, Morgan & Zaslavsky 2018) 1-e for treated, e for
  controls.
- ``stabilize_w``: each weight times the proportion of units in the unit's own treatment group.
- ``trim(w, at, treat)``: weights above the ``max(at, 1 - at)`` quantile (R ``quantile`` type 3) set to that
  quantile, groups whose weights are all equal left out; applied after stabilisation.
A score of exactly 0 or 1 gives an infinite weight and is refused: the caller decides how to bound it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from analysis_utils.stats.matching import _as_treat

__all__ = ["iptw_weights", "overlap_weights"]


def _check_ps(ps: Any, treat: Any) -> tuple[np.ndarray, np.ndarray]:
    e = np.asarray(ps, dtype=float)
    t = _as_treat(treat)
    if e.shape != t.shape:
        raise ValueError(f"ps has {e.size} values but treat has {t.size}")
    if not np.isfinite(e).all():
        raise ValueError("ps has missing or non-finite values")
    if ((e <= 0) | (e >= 1)).any():
        raise ValueError("ps must lie strictly between 0 and 1 (a ps of 0 or 1 gives an infinite weight)")
    return e, t


def _trim(w: np.ndarray, t: np.ndarray, at: float) -> np.ndarray:
    """WeightIt ``trim(w, at, treat = t)``: weights above the ``max(at, 1 - at)`` quantile (R type 3) of the
    weights to be trimmed are set to that quantile; a group whose weights are all equal (e.g. the treated under
    the ATT) is left out."""
    if not 0 < at < 1:
        raise ValueError(f"trim must be a quantile strictly between 0 and 1, got {at!r}")
    at = max(at, 1 - at)
    groups_same = [g for g in (t, ~t) if g.any() and np.all(w[g] == w[g][0])]
    to_trim = np.ones(w.size, dtype=bool)
    for g in groups_same:
        to_trim &= ~g
    if not to_trim.any():
        return w
    q = np.quantile(w[to_trim], at, method="closest_observation")
    out = w.copy()
    out[to_trim & (w > q)] = q
    return out


def iptw_weights(ps: Any, treat: Any, estimand: str = "ATE", stabilize: bool = True,
                 trim: float | None = None) -> np.ndarray:
    """Inverse probability of treatment weights, WeightIt ``get_w_from_ps``:
    ATE: 1/e for treated, 1/(1-e) for controls; ATT: 1 for treated, e/(1-e) for controls; ATC: (1-e)/e for
    treated, 1 for controls. ``stabilize`` (WeightIt ``stabilize_w``) multiplies each weight by the proportion of
    units in the unit's own treatment group. ``trim`` (WeightIt ``trim``): quantile in (0, 1) at which the large
    weights are winsorised, applied after stabilisation, groups with constant weights untouched.
    Method: docs/methods/matching-and-weighting.md."""
    e, t = _check_ps(ps, treat)
    estimand = estimand.upper()
    if estimand == "ATE":
        w = np.where(t, 1 / e, 1 / (1 - e))
    elif estimand == "ATT":
        w = np.where(t, 1.0, e / (1 - e))
    elif estimand == "ATC":
        w = np.where(t, (1 - e) / e, 1.0)
    else:
        raise ValueError(f"estimand must be 'ATE', 'ATT' or 'ATC', got {estimand!r}")
    if stabilize:
        w = w * np.where(t, t.mean(), 1 - t.mean())
    if trim is not None:
        w = _trim(w, t, trim)
    return w


def overlap_weights(ps: Any, treat: Any) -> np.ndarray:
    """Overlap (ATO) weights, WeightIt ``estimand = "ATO"`` (Li, Morgan & Zaslavsky 2018): 1 - e for treated,
    e for controls (= (1/e_received) / (1/e + 1/(1-e)))."""
    e, t = _check_ps(ps, treat)
    return np.where(t, 1 - e, e)
