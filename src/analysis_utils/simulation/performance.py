"""Performance measures with their Monte Carlo standard errors (ADEMP: P), as defined in Morris, White & Crowther
2019 (Stat Med 38:2074-2102, doi:10.1002/sim.8086), Table 6. With n_sim replicates whose estimate is finite,
estimates x_i, model SEs s_i, true value theta:

| measure | estimate | Monte Carlo SE |
|---|---|---|
| bias | mean(x) - theta | sqrt(var(x) / n) |
| relative bias | bias / theta (theta != 0) | MCSE(bias) / abs(theta) |
| empirical SE | sd(x) | empSE / sqrt(2 (n - 1)) |
| model SE | sqrt(mean(s^2)) | sqrt(var(s^2) / (4 n modSE^2)) |
| relative error of the model SE | modSE / empSE - 1 | (modSE / empSE) sqrt(var(s^2) / (4 n modSE^4) + 1 / (2 (n - 1))) |
| MSE | mean((x - theta)^2) | sqrt(sum(((x - theta)^2 - MSE)^2) / (n (n - 1))) |
| coverage | share of CIs containing theta | sqrt(cov (1 - cov) / n) |
| rejection (power, or type I error when theta is the null) | share of CIs excluding the null value | sqrt(r (1 - r) / n) |

var and sd use n - 1. Replicates where a method failed are counted (n_failed) and left out of every measure.
Method: docs/methods/simulation.md.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analysis_utils.simulation.truth import null_value

MEASURES = ("bias", "relative_bias", "empirical_se", "model_se", "relative_error_model_se", "mse", "coverage",
            "rejection")
NULL_TOLERANCE = 1e-9   # |theta - null| below this: the rejection rate is a type I error rate


def measures(x: np.ndarray, se: np.ndarray, lower: np.ndarray, upper: np.ndarray, theta: float,
             null: float) -> dict[str, float]:
    """Every measure and its MCSE for one method and estimand (NaN where undefined, e.g. n < 2)."""
    ok = np.isfinite(x)
    x, se, lower, upper = x[ok], se[ok], lower[ok], upper[ok]
    n = int(x.size)
    nan = float("nan")
    out: dict[str, float] = {"n_valid": n}
    if n == 0:
        return out | {m: nan for m in MEASURES} | {f"{m}_mcse": nan for m in MEASURES}
    var_x = float(np.var(x, ddof=1)) if n > 1 else nan
    has_theta = theta is not None and math.isfinite(theta)
    mean_x = float(np.mean(x))
    out["mean_estimate"] = mean_x
    if has_theta:
        bias = mean_x - theta
        out["bias"], out["bias_mcse"] = bias, math.sqrt(var_x / n) if n > 1 else nan
        rel_ok = abs(theta) > NULL_TOLERANCE
        out["relative_bias"] = bias / theta if rel_ok else nan
        out["relative_bias_mcse"] = out["bias_mcse"] / abs(theta) if rel_ok else nan
        sq = (x - theta) ** 2
        mse = float(sq.mean())
        out["mse"] = mse
        out["mse_mcse"] = math.sqrt(float(((sq - mse) ** 2).sum()) / (n * (n - 1))) if n > 1 else nan
        cov = float(np.mean((lower <= theta) & (theta <= upper)))
        out["coverage"], out["coverage_mcse"] = cov, math.sqrt(cov * (1 - cov) / n)
    else:
        for m in ("bias", "relative_bias", "mse", "coverage"):
            out[m], out[f"{m}_mcse"] = nan, nan
    emp = math.sqrt(var_x) if n > 1 else nan
    out["empirical_se"] = emp
    out["empirical_se_mcse"] = emp / math.sqrt(2 * (n - 1)) if n > 1 else nan
    s2 = se[np.isfinite(se)] ** 2
    mod = math.sqrt(float(s2.mean())) if s2.size else nan
    out["model_se"] = mod
    var_s2 = float(np.var(s2, ddof=1)) if s2.size > 1 else nan
    out["model_se_mcse"] = math.sqrt(var_s2 / (4 * s2.size * mod ** 2)) if s2.size > 1 and mod > 0 else nan
    if n > 1 and s2.size > 1 and emp > 0 and mod > 0:
        ratio = mod / emp
        out["relative_error_model_se"] = ratio - 1
        out["relative_error_model_se_mcse"] = ratio * math.sqrt(var_s2 / (4 * s2.size * mod ** 4) + 1 / (2 * (n - 1)))
    else:
        out["relative_error_model_se"] = out["relative_error_model_se_mcse"] = nan
    rej = float(np.mean((lower > null) | (upper < null)))
    out["rejection"], out["rejection_mcse"] = rej, math.sqrt(rej * (1 - rej) / n)
    out["rejection_is_type1"] = bool(has_theta and abs(theta - null) <= NULL_TOLERANCE)
    return out


def performance_table(estimates: pd.DataFrame, truth: dict[str, float]) -> pd.DataFrame:
    """One row per (path, method, endpoint, quantity, population): n replicates, n failed, the true value and every
    measure with its MCSE. ``estimates``: the stored replicate rows; ``truth``: estimand -> true value."""
    rows: list[dict[str, Any]] = []
    keys = ["path", "method", "endpoint", "quantity", "population"]
    for key, g in estimates.groupby(keys, sort=True):
        k = dict(zip(keys, key))
        estimand = f"{k['endpoint']}.{k['quantity']}.{k['population']}"
        theta = truth.get(estimand, float("nan"))
        m = measures(g["estimate"].to_numpy(float), g["se"].to_numpy(float), g["lower"].to_numpy(float),
                     g["upper"].to_numpy(float), theta, null_value(k["quantity"]))
        rows.append({**k, "estimand": estimand, "n_replicates": int(g["replicate"].nunique()),
                     "n_failed": int(len(g) - m["n_valid"]), "true_value": theta, **m})
    return pd.DataFrame(rows)
