"""Input checks shared by the survival estimators of ``stats/`` (Kaplan-Meier, log-rank, Cox, RMST).

Times are non-negative, events coded 1 = event / 0 = censored, case weights non-negative with a positive sum; a
missing or non-numeric value raises a ValueError naming the argument (R would drop such rows silently with
``na.action = na.omit``; here the caller decides). ``is_integer_weights`` is R's ``has.rwt`` rule that switches
``survfit`` and ``coxph`` to the robust variance. Rules: docs/methods/survival.md.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["as_float", "survival_data", "group_labels", "is_integer_weights"]


def as_float(x: object, name: str) -> np.ndarray:
    """1-d float array; ValueError naming ``name`` if it is not numeric, empty or has missing values."""
    try:
        arr = pd.Series(x).astype("float64").to_numpy() if not isinstance(x, np.ndarray) else x.astype(float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name} has {int(bad.sum())} missing or infinite values")
    return arr


def survival_data(time: object, event: object, weights: object = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (time >= 0, event as 0.0/1.0, weights >= 0)."""
    t = as_float(time, "time")
    if (t < 0).any():
        raise ValueError(f"time has {int((t < 0).sum())} negative values; times are months since time zero (>= 0)")
    e = as_float(event, "event")
    if e.shape != t.shape:
        raise ValueError(f"time and event have different lengths ({t.size} vs {e.size})")
    if not np.isin(e, (0.0, 1.0)).all():
        raise ValueError("event must be coded 1 = event, 0 = censored")
    if weights is None:
        return t, e, np.ones_like(t)
    w = as_float(weights, "weights")
    if w.shape != t.shape:
        raise ValueError(f"weights and time have different lengths ({w.size} vs {t.size})")
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be >= 0 with a positive sum")
    return t, e, w


def group_labels(x: object, name: str, n: int) -> np.ndarray:
    """Group/strata/cluster labels as an object array of length n, without missing values."""
    arr = pd.Series(x).to_numpy(dtype=object) if not isinstance(x, np.ndarray) else x.astype(object)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have the same length as time ({n})")
    if pd.isna(arr).any():
        raise ValueError(f"{name} has {int(pd.isna(arr).sum())} missing values")
    return arr


def is_integer_weights(w: np.ndarray) -> bool:
    """R's has.rwt rule: any weight that is not a whole number switches survfit/coxph to the robust variance."""
    return bool(np.all(w == np.floor(w)))
