"""Kaplan-Meier estimation as R's ``survival`` package (3.x) computes it. Time in the caller's unit (months here).

- ``kaplan_meier``: ``survfit(Surv(time, status) ~ 1, weights=)`` (survfitKM / survfitkm.c). The table has one row per
  unique time (event or censoring), like the survfit object. Variance: Greenwood on (weighted) counts; with
  non-integer case weights (e.g. inverse-probability weights) R's default is ``robust=TRUE``, the
  infinitesimal-jackknife (IJ) variance with each observation its own cluster, and that is what
  ``variance="auto"`` does. Confidence limits as ``survfit_confint``: ``"log"`` (R's default,
  exp(log S +- z se[log S])), ``"log-log"`` (lifelines' and scikit-survival's, S^exp(+-z se[log S]/log S)) and
  ``"plain"`` (S +- z se[S], clipped to [0, 1]).
- ``median_survival``: ``quantile.survfit`` (findq): the median is where S(t) first reaches 0.5; where S(t) equals
  0.5 over an interval the midpoint of the flat part is taken; the CI limits are the same rule applied to the lower
  and upper confidence curves. A median (or limit) never reached is NaN with ``*_reached = False``.
- ``survival_at``: ``summary(fit, times=)``; ``number_at_risk``: the n.risk row under a KM plot;
  ``median_follow_up_reverse_km``: the reverse Kaplan-Meier (Schemper & Smith 1996).
Not reproduced: R's ``timefix``/``aeqSurv`` rounding of nearly tied times (times here are compared exactly).
R source read from github.com/therneau/survival; the unit tests (tests/test_stats_survival.py) carry the hand
arithmetic and the published R outputs used as references. Rules: docs/methods/survival.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis_utils.stats.survival_input import as_float, is_integer_weights, survival_data

__all__ = ["kaplan_meier", "median_survival", "survival_at", "number_at_risk", "median_follow_up_reverse_km",
           "KMCounts", "km_counts", "km_ij", "resolve_variance", "ConfType", "Variance"]

ConfType = Literal["log", "log-log", "plain"]
Variance = Literal["auto", "greenwood", "ij"]
_TOL = float(np.sqrt(np.finfo(float).eps))  # R: sqrt(.Machine$double.eps), the tolerance of quantile.survfit


# --------------------------------------------------------------------------------------------------------------------
# counts, variances, confidence limits (survfitkm.c, survfit_confint)
# --------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KMCounts:
    """Per unique time: the (weighted) counts behind the survfit table."""
    time: np.ndarray       # unique times (events and censorings), ascending
    n_risk: np.ndarray     # weighted number at risk at t (time >= t)
    n_event: np.ndarray    # weighted events at t
    n_censor: np.ndarray   # weighted censorings at t
    has_event: np.ndarray  # at least one event with positive weight at t (survfitkm.c: d0 > 0 && d1 > 0)
    index: np.ndarray      # position of each observation in ``time``

    @property
    def n_left(self) -> np.ndarray:
        """n_risk - n_event, set to exactly 0 when all at risk die (guards weighted round-off)."""
        left = self.n_risk - self.n_event
        return np.where(left <= 1e-12 * self.n_risk, 0.0, left)

    @property
    def surv(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.cumprod(np.where(self.has_event, self.n_left / self.n_risk, 1.0))

    @property
    def greenwood_increment(self) -> np.ndarray:
        """d / (n (n - d)) at event times (inf when everyone at risk dies)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.has_event, self.n_event / (self.n_risk * self.n_left), 0.0)


def km_counts(t: np.ndarray, e: np.ndarray, w: np.ndarray) -> KMCounts:
    """Weighted counts at each unique time (survfitkm.c), the basis of the KM, its variances and RMST."""
    utime, idx = np.unique(t, return_inverse=True)
    m = utime.size
    n_leave = np.bincount(idx, weights=w, minlength=m)
    n_event = np.bincount(idx, weights=w * e, minlength=m)
    event_rows = np.bincount(idx, weights=e, minlength=m)
    n_risk = n_leave[::-1].cumsum()[::-1]
    return KMCounts(utime, n_risk, n_event, n_leave - n_event, (event_rows > 0) & (n_event > 0), idx)


def km_ij(c: KMCounts, e: np.ndarray, w: np.ndarray,
          tau: float | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Infinitesimal-jackknife variance of S(t) at each unique time (survfitkm.c, one cluster per observation).

    The influence of observation k is w_k dS(t)/dw_k = -S(t) w_k [delta_k 1(T_k <= t) / (N - D)(T_k) - G(min(t, T_k))],
    G(t) = sum over event times <= t of D / (N (N - D)), so Var S(t) = sum_k influence^2 splits into subjects already
    out by t and subjects still at risk. Also returns the influence of each observation on the RMST up to ``tau``.
    """
    s = c.surv
    g = c.greenwood_increment
    big_g = np.cumsum(g)
    k = c.index
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(e > 0, 1.0 / c.n_left[k], 0.0)
        dev = a - big_g[k]
        out_sum = np.cumsum(np.bincount(k, weights=(w * dev) ** 2, minlength=c.time.size))
        w2_at_risk_after = np.sum(w**2) - np.cumsum(np.bincount(k, weights=w**2, minlength=c.time.size))
        var = s**2 * (out_sum + big_g**2 * w2_at_risk_after)
    var = np.where(s > 0, var, 0.0)  # R: once S = 0 every influence is 0
    if tau is None:
        return np.sqrt(var), None
    widths = np.clip(np.append(c.time[1:], np.inf), None, tau) - c.time
    area = np.where((c.time < tau) & (s > 0), widths * s, 0.0)  # L_i = area of the step starting at time i
    area_after = area[::-1].cumsum()[::-1]                     # sum of L over steps at or after i
    with np.errstate(invalid="ignore"):
        area_g_before = np.concatenate([[0.0], np.cumsum(np.where(area > 0, area * big_g, 0.0))])[:-1]
        term = np.where(area_after[k] > 0, dev * area_after[k], 0.0)
    rmst_influence = -w * (term - area_g_before[k])
    return np.sqrt(var), rmst_influence


def _conf_limits(surv: np.ndarray, se_log: np.ndarray, conf_type: str,
                 conf_level: float) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise limits as R's survfit_confint(logse=TRUE); se_log is the standard error of log S(t)."""
    if not 0 < conf_level < 1:
        raise ValueError("conf_level must be strictly between 0 and 1")
    z = stats.norm.ppf(1 - (1 - conf_level) / 2)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "plain":
            se2 = z * se_log * surv
            return np.maximum(surv - se2, 0.0), np.minimum(surv + se2, 1.0)
        if conf_type == "log":
            xx = np.where(surv == 0, np.nan, surv)
            lower = np.where(se_log == 0, surv, np.exp(np.log(xx) - z * se_log))
            upper = np.where(se_log == 0, surv, np.minimum(np.exp(np.log(xx) + z * se_log), 1.0))
            return lower, upper
        if conf_type == "log-log":
            xx = np.where((surv == 0) | (surv == 1), np.nan, surv)
            se2 = z * se_log / np.log(xx)
            lower = np.where(se_log == 0, surv, np.exp(-np.exp(np.log(-np.log(xx)) - se2)))
            upper = np.where(se_log == 0, surv, np.exp(-np.exp(np.log(-np.log(xx)) + se2)))
            return lower, upper
    raise ValueError(f"conf_type must be one of 'log', 'log-log', 'plain' (got {conf_type!r})")


def resolve_variance(variance: str, w: np.ndarray) -> str:
    """The variance method, "greenwood" or "ij": "auto" picks IJ for non-integer weights (R's robust default)."""
    if variance not in ("auto", "greenwood", "ij"):
        raise ValueError(f"variance must be 'auto', 'greenwood' or 'ij' (got {variance!r})")
    if variance == "auto":
        return "greenwood" if is_integer_weights(w) else "ij"
    return variance


# --------------------------------------------------------------------------------------------------------------------
# survfit, quantile.survfit, summary.survfit
# --------------------------------------------------------------------------------------------------------------------
def kaplan_meier(time: object, event: object, weights: object = None, conf_type: ConfType = "log",
                 conf_level: float = 0.95, variance: Variance = "auto") -> pd.DataFrame:
    """Kaplan-Meier table as R ``survfit``: one row per unique time (events and censorings).

    Columns: time, n_risk, n_event, n_censor (weighted sums when weights are given, as R's survfit reports them),
    surv, std_err (standard error of S(t), as summary.survfit prints), lower, upper. ``conf_type``: "log" is R's
    default, "log-log" is lifelines'/scikit-survival's, "plain" is linear; see the module docstring for formulas.
    ``variance="auto"`` is Greenwood unless a weight is non-integer (IPTW), then the IJ (robust) variance as R's
    default for such weights. Where S(t) = 0 the log and log-log limits are NaN (R gives NA).
    """
    t, e, w = survival_data(time, event, weights)
    method = resolve_variance(variance, w)
    c = km_counts(t, e, w)
    s = c.surv
    with np.errstate(invalid="ignore"):
        if method == "greenwood":
            se_log = np.sqrt(np.cumsum(c.greenwood_increment))
            std_err = s * se_log
        else:
            std_err, _ = km_ij(c, e, w)
            se_log = np.where(std_err == 0, 0.0, std_err / s)
    lower, upper = _conf_limits(s, se_log, conf_type, conf_level)
    table = pd.DataFrame({"time": c.time, "n_risk": c.n_risk, "n_event": c.n_event, "n_censor": c.n_censor,
                          "surv": s, "std_err": std_err, "lower": lower, "upper": upper})
    table.attrs.update({"conf_type": conf_type, "conf_level": conf_level, "variance": method,
                        "n": int(t.size), "events": int(e.sum())})
    return table


def _check_km_table(km_table: pd.DataFrame) -> None:
    missing = {"time", "surv", "lower", "upper", "std_err", "n_risk"} - set(km_table.columns)
    if missing:
        raise ValueError(f"km_table is missing columns {sorted(missing)}; use kaplan_meier() to build it")


def _quantile_time(times: np.ndarray, curve: np.ndarray, p: float = 0.5, tol: float = _TOL) -> float:
    """R survival:::findq for one probability: where 1 - curve first reaches p, midpoint of a flat part at p."""
    x = np.concatenate([[0.0], np.asarray(times, dtype=float)])
    y = np.concatenate([[0.0], 1.0 - np.asarray(curve, dtype=float)])
    if np.all(np.isnan(y)) or np.nanmax(y) < p:
        return float("nan")
    xmax = x[-1]
    keep = ~pd.Series(y).duplicated().to_numpy()   # censoring rows repeat the previous level
    x, y = x[keep], y[keep]
    last_y = y[-1]
    ok = ~np.isnan(y)
    x, y = x[ok], y[ok]
    first_at = np.flatnonzero(y + tol >= p)
    first_above = np.flatnonzero(y - tol >= p)
    q = (x[first_at[0]] + x[first_above[0]]) / 2 if first_above.size else float("nan")
    if not np.isnan(last_y) and abs(p - last_y) < tol:  # the curve ends on a flat at exactly p
        q = (x[first_at[0]] + xmax) / 2
    return float(q)


def median_survival(km_table: pd.DataFrame) -> pd.Series:
    """Median survival and its CI by R's quantile.survfit rule (see module docstring).

    Not reached -> NaN with ``median_reached=False`` (likewise ``lower_reached``/``upper_reached`` for the CI limits,
    reported as "NR"). Note: R's print.survfit differs from quantile.survfit only when the curve *ends* on a flat at
    exactly 0.5 (print gives the start of the flat, quantile the midpoint up to the last follow-up time); this follows
    quantile.survfit.
    """
    _check_km_table(km_table)
    t = km_table["time"].to_numpy()
    med = _quantile_time(t, km_table["surv"].to_numpy())
    lo = _quantile_time(t, km_table["lower"].to_numpy())
    hi = _quantile_time(t, km_table["upper"].to_numpy())
    return pd.Series({"median": med, "lower": lo, "upper": hi, "median_reached": not np.isnan(med),
                      "lower_reached": not np.isnan(lo), "upper_reached": not np.isnan(hi),
                      "conf_type": km_table.attrs.get("conf_type"), "conf_level": km_table.attrs.get("conf_level")})


def survival_at(km_table: pd.DataFrame, times: Sequence[float]) -> pd.DataFrame:
    """S(t), its standard error and CI at given times (R ``summary(fit, times=)``; S is right-continuous).

    n_risk is the (weighted) number still at risk at t. Times after the last follow-up time are NaN with
    ``beyond_follow_up=True`` (summary.survfit drops them with extend=FALSE).
    """
    _check_km_table(km_table)
    tt = as_float(times, "times")
    kt = km_table["time"].to_numpy()
    i = np.searchsorted(kt, tt, side="right") - 1
    beyond = tt > kt[-1]
    risk_row = np.searchsorted(kt, tt, side="left")
    n_risk = km_table["n_risk"].to_numpy(dtype=float)
    out = {"time": tt, "n_risk": np.where(risk_row < kt.size, n_risk[np.minimum(risk_row, kt.size - 1)], 0.0)}
    for col, before_first in (("surv", 1.0), ("std_err", 0.0), ("lower", 1.0), ("upper", 1.0)):
        v = km_table[col].to_numpy(dtype=float)[np.maximum(i, 0)]
        out[col] = np.where(beyond, np.nan, np.where(i < 0, before_first, v))
    out["beyond_follow_up"] = beyond
    return pd.DataFrame(out)


def number_at_risk(time: object, times: Sequence[float]) -> pd.Series:
    """Number at risk at the *start* of each displayed time: count of subjects with time >= t (the table under a KM
    plot). Censored exactly at t still count at t (R's n.risk convention)."""
    t = as_float(time, "time")
    if (t < 0).any():
        raise ValueError("time has negative values")
    tt = as_float(times, "times")
    st = np.sort(t)
    counts = st.size - np.searchsorted(st, tt, side="left")
    return pd.Series(counts, index=pd.Index(tt, name="time"), name="n_at_risk")


def median_follow_up_reverse_km(time: object, event: object, conf_type: ConfType = "log",
                                conf_level: float = 0.95) -> pd.Series:
    """Median follow-up by the reverse Kaplan-Meier method (Schemper & Smith 1996): the KM of the censoring
    distribution, i.e. R ``survfit(Surv(time, 1 - status) ~ 1)``, then its median by ``median_survival``."""
    t, e, _ = survival_data(time, event)
    out = median_survival(kaplan_meier(t, 1.0 - e, conf_type=conf_type, conf_level=conf_level))
    out["method"] = "reverse Kaplan-Meier (censoring as the event)"
    return out
