"""E-value for a hazard ratio as ``EValue::evalues.HR`` (VanderWeele & Ding 2017).

Common outcome: HR -> RR by (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR)) (VanderWeele 2020); rare outcome: RR = HR.
Rules: docs/methods/survival.md.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["evalue_hr"]


def _evalue_threshold(rr: float, true: float = 1.0) -> float:
    """EValue::threshold: E = RR + sqrt(RR (RR - true)) / true on the side away from the null (RR < 1 inverted)."""
    if rr <= 1:
        rr, true = 1 / rr, 1 / true
    if true <= rr:
        return (rr + np.sqrt(rr * (rr - true))) / true
    rat = true / rr
    return rat + np.sqrt(rat * (rat - 1))


def evalue_hr(hr: float, lower: float | None = None, upper: float | None = None, rare: bool = False,
              true: float = 1.0) -> pd.Series:
    """E-value for a hazard ratio and for the CI limit closest to the null, as ``EValue::evalues.HR``.

    Common outcome (rare=False): HR -> RR = (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR)); rare outcome: RR = HR. E-value
    = RR + sqrt(RR (RR - 1)) (RR < 1 inverted first). If the CI includes the null its E-value is 1.
    """
    vals = [hr, lower, upper]
    if hr is None or not hr > 0:
        raise ValueError("hr must be > 0")
    for v in (lower, upper):
        if v is not None and not v > 0:
            raise ValueError("confidence limits must be > 0")
    if (lower is not None and lower > hr) or (upper is not None and upper < hr):
        raise ValueError("the point estimate must lie inside the confidence interval")

    def to_rr(x: float) -> float:
        return x if rare else (1 - 0.5 ** np.sqrt(x)) / (1 - 0.5 ** np.sqrt(1 / x))

    rr, rr_lo, rr_hi = (None if v is None else float(to_rr(v)) for v in vals)
    true_rr = float(to_rr(true))
    e_ci, limit = float("nan"), ""
    if rr > true_rr and rr_lo is not None:
        limit, e_ci = "lower", 1.0 if rr_lo <= true_rr else _evalue_threshold(rr_lo, true_rr)
    elif rr < true_rr and rr_hi is not None:
        limit, e_ci = "upper", 1.0 if rr_hi >= true_rr else _evalue_threshold(rr_hi, true_rr)
    elif rr == true_rr and (rr_lo is not None or rr_hi is not None):
        limit, e_ci = "lower", 1.0
    return pd.Series({"hr": hr, "lower": lower, "upper": upper, "rr": rr, "rr_lower": rr_lo, "rr_upper": rr_hi,
                      "evalue_point": float(_evalue_threshold(rr, true_rr)), "evalue_ci": e_ci, "ci_limit": limit,
                      "rare": rare})
