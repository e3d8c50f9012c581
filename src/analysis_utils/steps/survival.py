"""Survival analysis for the compendium, reproducing R's ``survival`` package (3.x) and ``survRM2``. Time in months.

Each statistic follows the R definition named below (R source read from github.com/therneau/survival and
cran/survRM2; the unit tests carry the hand arithmetic and the published R outputs used as references).

- ``kaplan_meier``: ``survfit(Surv(time, status) ~ 1, weights=)`` (survfitKM / survfitkm.c). The table has one row per
  unique time (event or censoring), like the survfit object. Variance: Greenwood on (weighted) counts; with
  non-integer case weights (IPTW) R's default is ``robust=TRUE``, the infinitesimal-jackknife (IJ) variance with each
  observation its own cluster, and that is what ``variance="auto"`` does. Confidence limits as ``survfit_confint``:
  ``"log"`` (R's default, exp(log S +- z se[log S])), ``"log-log"`` (lifelines' and scikit-survival's,
  S^exp(+-z se[log S]/log S)) and ``"plain"`` (S +- z se[S], clipped to [0, 1]).
- ``median_survival``: ``quantile.survfit`` (findq): the median is where S(t) first reaches 0.5; where S(t) equals
  0.5 over an interval the midpoint of the flat part is taken; the CI limits are the same rule applied to the lower
  and upper confidence curves. A median (or limit) never reached is NaN with ``*_reached = False``.
- ``logrank_test``: ``survdiff(rho = 0)`` with optional ``strata()``; hypergeometric variance.
- ``cox_ph``: ``coxph``. Efron ties are fitted with lifelines' CoxPHFitter (tightened convergence); Breslow ties
  (not offered by lifelines) by the Newton-Raphson of ``coxph.fit``. The robust variance is R's: the crossproduct of
  the dfbeta residuals (weighted score residuals x naive variance) summed within ``cluster`` (or per observation),
  without any small-sample factor. lifelines' own sandwich agrees without tied event times but not with ties (its
  score residuals ignore ties), so it is not used.
- ``schoenfeld_test``: ``cox.zph`` of survival >= 3.0 (score test for adding x * g(t), g = transformed time, default
  ``transform = "km"``). lifelines' ``proportional_hazard_test`` implements the pre-2019 approximation (its docstring
  says so), defaults to ``time_transform="rank"``, and its "km" is 1 - S(t) rather than R's 1 - S(t-): none of its
  options reproduces the current R default exactly.
- ``rmst`` / ``rmst_difference``: ``survRM2::rmst2`` (area under the KM curve up to tau, Greenwood plug-in variance,
  difference on the natural scale, ratios on the log scale); with weights the IJ variance is used instead.
- ``evalue_hr``: ``EValue::evalues.HR`` (VanderWeele & Ding 2017); common outcome: HR -> RR by
  (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR)) (VanderWeele 2020).
Not reproduced: R's ``timefix``/``aeqSurv`` rounding of nearly tied times (times here are compared exactly).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import pandas as pd
from scipy import stats

ConfType = Literal["log", "log-log", "plain"]
Ties = Literal["efron", "breslow"]
Variance = Literal["auto", "greenwood", "ij"]
TREATMENT_ARM = "HAIC-TKIs-P"
CONTROL_ARM = "TKIs-P"
LANDMARK_TIMES = (6.0, 12.0, 18.0, 24.0)
_TOL = float(np.sqrt(np.finfo(float).eps))  # R: sqrt(.Machine$double.eps), the tolerance of quantile.survfit
_COX_EPS = 1e-9  # coxph.control(eps): relative change in the log partial likelihood
_LIFELINES_FIT_OPTIONS = {"precision": 1e-12, "r_precision": 1e-14}  # lifelines' defaults stop ~1e-4 short of the MLE


# --------------------------------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------------------------------
def _as_float(x: object, name: str) -> np.ndarray:
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


def _survival_data(time: object, event: object, weights: object = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (time >= 0, event as 0.0/1.0, weights >= 0)."""
    t = _as_float(time, "time")
    if (t < 0).any():
        raise ValueError(f"time has {int((t < 0).sum())} negative values; times are months since time zero (>= 0)")
    e = _as_float(event, "event")
    if e.shape != t.shape:
        raise ValueError(f"time and event have different lengths ({t.size} vs {e.size})")
    if not np.isin(e, (0.0, 1.0)).all():
        raise ValueError("event must be coded 1 = event, 0 = censored")
    if weights is None:
        return t, e, np.ones_like(t)
    w = _as_float(weights, "weights")
    if w.shape != t.shape:
        raise ValueError(f"weights and time have different lengths ({w.size} vs {t.size})")
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be >= 0 with a positive sum")
    return t, e, w


def _labels(x: object, name: str, n: int) -> np.ndarray:
    """Group/strata/cluster labels as an object array of length n, without missing values."""
    arr = pd.Series(x).to_numpy(dtype=object) if not isinstance(x, np.ndarray) else x.astype(object)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have the same length as time ({n})")
    if pd.isna(arr).any():
        raise ValueError(f"{name} has {int(pd.isna(arr).sum())} missing values")
    return arr


def _is_integer_weights(w: np.ndarray) -> bool:
    """R's has.rwt rule: any weight that is not a whole number switches survfit/coxph to the robust variance."""
    return bool(np.all(w == np.floor(w)))


# --------------------------------------------------------------------------------------------------------------------
# Kaplan-Meier (survfit)
# --------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _KMCounts:
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


def _km_counts(t: np.ndarray, e: np.ndarray, w: np.ndarray) -> _KMCounts:
    utime, idx = np.unique(t, return_inverse=True)
    m = utime.size
    n_leave = np.bincount(idx, weights=w, minlength=m)
    n_event = np.bincount(idx, weights=w * e, minlength=m)
    event_rows = np.bincount(idx, weights=e, minlength=m)
    n_risk = n_leave[::-1].cumsum()[::-1]
    return _KMCounts(utime, n_risk, n_event, n_leave - n_event, (event_rows > 0) & (n_event > 0), idx)


def _km_ij(c: _KMCounts, e: np.ndarray, w: np.ndarray,
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


def _resolve_variance(variance: str, w: np.ndarray) -> str:
    if variance not in ("auto", "greenwood", "ij"):
        raise ValueError(f"variance must be 'auto', 'greenwood' or 'ij' (got {variance!r})")
    if variance == "auto":
        return "greenwood" if _is_integer_weights(w) else "ij"
    return variance


def kaplan_meier(time: object, event: object, weights: object = None, conf_type: ConfType = "log",
                 conf_level: float = 0.95, variance: Variance = "auto") -> pd.DataFrame:
    """Kaplan-Meier table as R ``survfit``: one row per unique time (events and censorings).

    Columns: time, n_risk, n_event, n_censor (weighted sums when weights are given, as R's survfit reports them),
    surv, std_err (standard error of S(t), as summary.survfit prints), lower, upper. ``conf_type``: "log" is R's
    default, "log-log" is lifelines'/scikit-survival's, "plain" is linear; see the module docstring for formulas.
    ``variance="auto"`` is Greenwood unless a weight is non-integer (IPTW), then the IJ (robust) variance as R's
    default for such weights. Where S(t) = 0 the log and log-log limits are NaN (R gives NA).
    """
    t, e, w = _survival_data(time, event, weights)
    method = _resolve_variance(variance, w)
    c = _km_counts(t, e, w)
    s = c.surv
    with np.errstate(invalid="ignore"):
        if method == "greenwood":
            se_log = np.sqrt(np.cumsum(c.greenwood_increment))
            std_err = s * se_log
        else:
            std_err, _ = _km_ij(c, e, w)
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


def survival_at(km_table: pd.DataFrame, times: Sequence[float] = LANDMARK_TIMES) -> pd.DataFrame:
    """S(t), its standard error and CI at given times (R ``summary(fit, times=)``; S is right-continuous).

    n_risk is the (weighted) number still at risk at t. Times after the last follow-up time are NaN with
    ``beyond_follow_up=True`` (summary.survfit drops them with extend=FALSE).
    """
    _check_km_table(km_table)
    tt = _as_float(times, "times")
    kt = km_table["time"].to_numpy()
    i = np.searchsorted(kt, tt, side="right") - 1
    beyond = tt > kt[-1]
    rows = []
    for t_, j, out in zip(tt, i, beyond):
        risk_row = np.searchsorted(kt, t_, side="left")
        n_risk = float(km_table["n_risk"].iloc[risk_row]) if risk_row < kt.size else 0.0
        if out:
            vals = (np.nan,) * 4
        elif j < 0:
            vals = (1.0, 0.0, 1.0, 1.0)
        else:
            r = km_table.iloc[j]
            vals = (r["surv"], r["std_err"], r["lower"], r["upper"])
        rows.append((t_, n_risk, *vals, bool(out)))
    return pd.DataFrame(rows, columns=["time", "n_risk", "surv", "std_err", "lower", "upper", "beyond_follow_up"])


def number_at_risk(time: object, times: Sequence[float]) -> pd.Series:
    """Number at risk at the *start* of each displayed time: count of subjects with time >= t (the table under a KM
    plot). Censored exactly at t still count at t (R's n.risk convention)."""
    t = _as_float(time, "time")
    if (t < 0).any():
        raise ValueError("time has negative values")
    tt = _as_float(times, "times")
    st = np.sort(t)
    counts = st.size - np.searchsorted(st, tt, side="left")
    return pd.Series(counts, index=pd.Index(tt, name="time"), name="n_at_risk")


def median_follow_up_reverse_km(time: object, event: object, conf_type: ConfType = "log",
                                conf_level: float = 0.95) -> pd.Series:
    """Median follow-up by the reverse Kaplan-Meier method (Schemper & Smith 1996): the KM of the censoring
    distribution, i.e. R ``survfit(Surv(time, 1 - status) ~ 1)``, then its median by ``median_survival``."""
    t, e, _ = _survival_data(time, event)
    out = median_survival(kaplan_meier(t, 1.0 - e, conf_type=conf_type, conf_level=conf_level))
    out["method"] = "reverse Kaplan-Meier (censoring as the event)"
    return out


# --------------------------------------------------------------------------------------------------------------------
# log-rank (survdiff)
# --------------------------------------------------------------------------------------------------------------------
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
    t, e, _ = _survival_data(time, event)
    g_codes, levels = pd.factorize(pd.Series(_labels(group, "group", t.size)), sort=True)
    if levels.size < 2:
        raise ValueError("group must have at least two levels for a log-rank test")
    s_codes = (np.zeros(t.size, dtype=int) if strata is None
               else pd.factorize(pd.Series(_labels(strata, "strata", t.size)))[0])
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


# --------------------------------------------------------------------------------------------------------------------
# Cox model: design matrix, risk-set engine (R coxph.fit / coxscore2.c / zph1.c), fit
# --------------------------------------------------------------------------------------------------------------------
def _default_reference(levels: list[object]) -> object:
    return CONTROL_ARM if CONTROL_ARM in levels else levels[0]


def _design_matrix(df: pd.DataFrame, covariates: Sequence[str],
                   reference: dict[str, object] | None = None) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Numeric design matrix; categorical columns become 0/1 columns named ``col[T.level]``.

    Reference level: ``reference[col]`` if given, else "TKIs-P" when present (so the arm HR is HAIC-TKIs-P versus
    TKIs-P), else the first category (pandas Categorical order, or sorted values). Missing values raise.
    """
    reference = reference or {}
    cols: dict[str, pd.Series] = {}
    terms: dict[str, list[str]] = {}
    for c in covariates:
        if c not in df.columns:
            raise ValueError(f"covariate column '{c}' is not in the data")
        x = df[c]
        if x.isna().any():
            raise ValueError(f"covariate '{c}' has {int(x.isna().sum())} missing values; impute or filter first "
                             "(R's coxph would silently drop those rows)")
        categorical = isinstance(x.dtype, pd.CategoricalDtype)
        if pd.api.types.is_bool_dtype(x) or (pd.api.types.is_numeric_dtype(x) and not categorical):
            cols[c] = x.astype(float)
            terms[c] = [c]
            continue
        levels = list(x.cat.categories) if categorical else sorted(x.unique().tolist(), key=str)
        ref = reference.get(c, _default_reference(levels))
        if ref not in levels:
            raise ValueError(f"reference level {ref!r} is not a value of covariate '{c}'")
        terms[c] = []
        for lev in levels:
            if lev != ref:
                name = f"{c}[T.{lev}]"
                cols[name] = (x == lev).astype(float)
                terms[c].append(name)
    X = pd.DataFrame(cols, index=df.index)
    for name in X.columns:
        if X[name].nunique() < 2:
            raise ValueError(f"covariate column '{name}' is constant; it cannot be estimated")
    return X, terms


@dataclass(frozen=True)
class _CoxData:
    """Data sorted by (stratum, time); ``order`` maps sorted rows back to input rows."""
    time: np.ndarray
    event: np.ndarray
    X: np.ndarray
    w: np.ndarray
    strata: np.ndarray
    order: np.ndarray
    block: np.ndarray        # tied (stratum, time) block of each sorted row
    block_start: np.ndarray  # first sorted row of each block
    next_stratum: np.ndarray  # first sorted row of the next stratum, per row

    def in_input_order(self, v: np.ndarray) -> np.ndarray:
        out = np.empty_like(v)
        out[self.order] = v
        return out


def _cox_data(X: np.ndarray, time: np.ndarray, event: np.ndarray, w: np.ndarray, strata: np.ndarray) -> _CoxData:
    order = np.lexsort((time, strata))
    t, s = time[order], strata[order]
    new_block = np.concatenate([[True], (t[1:] != t[:-1]) | (s[1:] != s[:-1])])
    block = np.cumsum(new_block) - 1
    new_stratum = np.concatenate([[True], s[1:] != s[:-1]])
    stratum_start = np.flatnonzero(new_stratum)
    stratum_end = np.append(stratum_start[1:], t.size)
    next_stratum = np.repeat(stratum_end, np.diff(np.append(stratum_start, t.size)))
    Xc = X[order] - X.mean(axis=0)  # centring as coxph does; every quantity below is shift-invariant
    return _CoxData(t, event[order], Xc, w[order], s, order, block, np.flatnonzero(new_block), next_stratum)


def _rcumsum(v: np.ndarray, next_stratum: np.ndarray) -> np.ndarray:
    """Sum over rows r' >= r of the same stratum (risk-set sums in the sorted data)."""
    cs = np.cumsum(v[::-1], axis=0)[::-1]
    cs = np.concatenate([cs, np.zeros((1,) + v.shape[1:])])
    return cs[:-1] - cs[next_stratum]


@dataclass(frozen=True)
class _CoxTerms:
    loglik: float
    U: np.ndarray
    I: np.ndarray
    dblocks: np.ndarray   # block ids with at least one death
    mbar: np.ndarray      # per death block: mean of the (Efron) weighted means, for Schoenfeld residuals
    haz: np.ndarray       # per death block: sum of hazard increments (at risk, not dying there)
    hm: np.ndarray        # ... times the weighted means
    haz1: np.ndarray      # per death block: sum of (1 - f) x hazard increments (dying there)
    hm1: np.ndarray
    uc: np.ndarray        # per death block: score contribution (x of deaths - weighted mean)
    V: np.ndarray         # per death block: information contribution


def _cox_terms(d: _CoxData, beta: np.ndarray, ties: str) -> _CoxTerms:
    """Log partial likelihood, score, information and per-death-time pieces (R coxfit6 / coxscore2 / zph1).

    Efron: for d tied deaths, d steps with the tied deaths' risk down-weighted by f = 0..(d-1)/d and each step
    carrying the mean death weight; Breslow: one step with f = 0 and the total death weight.
    """
    X, w, e = d.X, d.w, d.event
    eta = X @ beta
    with np.errstate(over="ignore"):  # a diverging coefficient (monotone likelihood) is flagged by the caller
        r = w * np.exp(eta)
    bs = d.block_start
    R0 = _rcumsum(r, d.next_stratum)[bs]
    R1 = _rcumsum(r[:, None] * X, d.next_stratum)[bs]
    R2 = _rcumsum(r[:, None, None] * X[:, :, None] * X[:, None, :], d.next_stratum)[bs]
    re = r * e
    D0 = np.add.reduceat(re, bs)
    D1 = np.add.reduceat(re[:, None] * X, bs)
    D2 = np.add.reduceat(re[:, None, None] * X[:, :, None] * X[:, None, :], bs)
    nd = np.add.reduceat(e, bs)
    deadwt = np.add.reduceat(w * e, bs)
    xw = np.add.reduceat((w * e)[:, None] * X, bs)
    eta_w = np.add.reduceat(w * e * eta, bs)
    keep = np.flatnonzero(nd > 0)
    R0, R1, R2, D0, D1, D2 = R0[keep], R1[keep], R2[keep], D0[keep], D1[keep], D2[keep]
    nd, deadwt, xw = nd[keep], deadwt[keep], xw[keep]
    steps = nd if ties == "efron" else np.ones_like(nd)
    meanwt = deadwt / steps
    nb, p = keep.size, X.shape[1]
    loglik = float(eta_w.sum())
    mbar, hm, hm1, msum = (np.zeros((nb, p)) for _ in range(4))
    haz, haz1 = np.zeros(nb), np.zeros(nb)
    V = np.zeros((nb, p, p))
    for m in range(int(steps.max()) if nb else 0):
        act = steps > m
        f = np.where(act, m / steps, 0.0) if ties == "efron" else np.zeros(nb)
        den = R0 - f * D0
        mean = (R1 - f[:, None] * D1) / den[:, None]
        s2 = (R2 - f[:, None, None] * D2) / den[:, None, None]
        a = act.astype(float)
        hz = a * meanwt / den
        loglik -= float(np.sum(a * meanwt * np.log(den)))
        haz += hz
        hm += hz[:, None] * mean
        haz1 += hz * (1 - f)
        hm1 += (hz * (1 - f))[:, None] * mean
        mbar += (a / steps)[:, None] * mean
        msum += a[:, None] * mean
        V += (a * meanwt)[:, None, None] * (s2 - mean[:, :, None] * mean[:, None, :])
    uc = xw - meanwt[:, None] * msum
    return _CoxTerms(loglik, uc.sum(axis=0), V.sum(axis=0), keep, mbar, haz, hm, haz1, hm1, uc, V)


def _score_residuals(d: _CoxData, beta: np.ndarray, terms: _CoxTerms) -> np.ndarray:
    """Score residuals per observation, input order (R residuals(type="score"), coxscore2.c), unweighted."""
    nblocks = d.block_start.size
    haz_all, hm_all = np.zeros(nblocks), np.zeros((nblocks, d.X.shape[1]))
    haz_all[terms.dblocks] = terms.haz
    hm_all[terms.dblocks] = terms.hm
    block_stratum = d.strata[d.block_start]
    first_block = np.concatenate([[True], block_stratum[1:] != block_stratum[:-1]])
    start = np.maximum.accumulate(np.where(first_block, np.arange(nblocks), 0))
    cum_h = np.cumsum(haz_all)
    cum_hm = np.cumsum(hm_all, axis=0)
    base_h = cum_h[start] - haz_all[start]
    base_hm = cum_hm[start] - hm_all[start]
    incl_h, incl_hm = cum_h - base_h, cum_hm - base_hm     # death blocks up to and including this one
    b = d.block
    ev = d.event > 0
    H = np.where(ev, incl_h[b] - haz_all[b], incl_h[b])
    HM = np.where(ev[:, None], incl_hm[b] - hm_all[b], incl_hm[b])
    score = np.exp(d.X @ beta)
    x = d.X
    resid = -score[:, None] * (x * H[:, None] - HM)
    pos = np.full(nblocks, -1)
    pos[terms.dblocks] = np.arange(terms.dblocks.size)
    rows = np.flatnonzero(ev)
    j = pos[b[rows]]
    resid[rows] += x[rows] - terms.mbar[j] - score[rows, None] * (x[rows] * terms.haz1[j, None] - terms.hm1[j])
    return d.in_input_order(resid)


def _newton_raphson(d: _CoxData, ties: str, max_iter: int = 20) -> tuple[np.ndarray, bool]:
    """coxph.fit's Newton-Raphson: start at 0, step-halving when the log-likelihood drops, stop when the relative
    change is <= 1e-9."""
    beta = np.zeros(d.X.shape[1])
    cur = _cox_terms(d, beta, ties)
    for _ in range(max_iter):
        try:
            step = np.linalg.solve(cur.I, cur.U)
        except np.linalg.LinAlgError:
            return beta, False
        new_beta = beta + step
        new = _cox_terms(d, new_beta, ties)
        halvings = 0
        while (not np.isfinite(new.loglik) or new.loglik < cur.loglik) and halvings < 30:
            new_beta = (beta + new_beta) / 2
            new = _cox_terms(d, new_beta, ties)
            halvings += 1
        converged = abs(1 - cur.loglik / new.loglik) <= _COX_EPS if new.loglik != 0 else abs(cur.loglik) <= _COX_EPS
        beta, cur = new_beta, new
        if converged:
            return beta, True
    return beta, False


def _fit_lifelines_efron(X: pd.DataFrame, t: np.ndarray, e: np.ndarray, w: np.ndarray,
                         strata: np.ndarray | None) -> np.ndarray:
    from lifelines import CoxPHFitter

    data = X.reset_index(drop=True).copy()
    data.columns = [f"x{i}" for i in range(X.shape[1])]
    data["_T"], data["_E"], data["_W"] = t, e, w
    kwargs: dict[str, object] = {"weights_col": "_W", "fit_options": _LIFELINES_FIT_OPTIONS}
    if strata is not None:
        data["_S"] = strata
        kwargs["strata"] = ["_S"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its non-integer-weights advice: the robust variance is computed here
        cph = CoxPHFitter().fit(data, "_T", "_E", **kwargs)
    return cph.params_.to_numpy()


@dataclass(frozen=True)
class _CoxFit:
    names: list[str]
    term_columns: dict[str, list[str]]
    beta: np.ndarray
    var: np.ndarray
    loglik: float
    loglik_null: float
    infinite: np.ndarray
    converged: bool
    engine: str
    data: _CoxData
    terms: _CoxTerms
    n: int
    n_events: int


def _fit_cox(df: pd.DataFrame, duration_col: str, event_col: str, covariates: Sequence[str], ties: str,
             weights_col: str | None, strata_col: str | None, reference: dict[str, object] | None) -> _CoxFit:
    if ties not in ("efron", "breslow"):
        raise ValueError(f"ties must be 'efron' or 'breslow' (got {ties!r})")
    for c in [duration_col, event_col, weights_col, strata_col]:
        if c is not None and c not in df.columns:
            raise ValueError(f"column '{c}' is not in the data")
    if not covariates:
        raise ValueError("covariates is empty")
    t, e, w = _survival_data(df[duration_col], df[event_col], None if weights_col is None else df[weights_col])
    if e.sum() == 0:
        raise ValueError(f"'{event_col}' has no events: the Cox model is not estimable")
    X, term_columns = _design_matrix(df, covariates, reference)
    s_codes = (np.zeros(t.size, dtype=int) if strata_col is None
               else pd.factorize(pd.Series(_labels(df[strata_col], strata_col, t.size)))[0])
    d = _cox_data(X.to_numpy(dtype=float), t, e, w, s_codes)
    engine, converged = "newton-raphson (coxph.fit)", True
    if ties == "efron":
        try:
            beta = _fit_lifelines_efron(X, t, e, w, None if strata_col is None else s_codes)
            engine = "lifelines CoxPHFitter"
        except Exception:  # lifelines' ConvergenceError and friends: fall back to R's algorithm
            beta, converged = _newton_raphson(d, ties)
    else:
        beta, converged = _newton_raphson(d, ties)
    terms = _cox_terms(d, beta, ties)
    try:
        var = np.linalg.inv(terms.I)
    except np.linalg.LinAlgError as exc:
        raise ValueError("the information matrix is singular (collinear covariates?)") from exc
    step = np.abs(terms.U @ var)
    infinite = (step > _COX_EPS) & (step > np.sqrt(_COX_EPS) * np.abs(beta))  # coxph.fit's "may be infinite" check
    null = _cox_terms(d, np.zeros_like(beta), ties).loglik
    return _CoxFit(list(X.columns), term_columns, beta, var, terms.loglik, null, infinite, converged, engine, d,
                   terms, int(t.size), int(e.sum()))


def _robust_var(fit: _CoxFit, cluster: np.ndarray | None) -> np.ndarray:
    """R coxph robust variance: crossprod of dfbeta = (w x score residual) %*% var, summed within cluster."""
    resid = _score_residuals(fit.data, fit.beta, fit.terms) * fit.data.in_input_order(fit.data.w)[:, None]
    dfbeta = resid @ fit.var
    if cluster is not None:
        codes = pd.factorize(pd.Series(cluster))[0]
        summed = np.zeros((codes.max() + 1, dfbeta.shape[1]))
        np.add.at(summed, codes, dfbeta)
        dfbeta = summed
    return dfbeta.T @ dfbeta


def cox_ph(df: pd.DataFrame, duration_col: str, event_col: str, covariates: Sequence[str], ties: Ties = "efron",
           cluster_col: str | None = None, weights_col: str | None = None, strata_col: str | None = None,
           robust: bool | None = None, conf_level: float = 0.95,
           reference: dict[str, object] | None = None) -> pd.DataFrame:
    """Cox proportional-hazards model as R ``coxph(Surv(t, e) ~ covariates + strata(s), weights=, cluster=, ties=)``.

    Returns one row per coefficient: term, coef, hr, se (the one used for z, p and the CI), se_naive, se_robust, z,
    p, lower, upper (Wald, on the HR scale) and flag. ``robust=None`` follows R: robust variance when
    ``cluster_col`` is given or any weight is non-integer (IPTW); True/False force it. Robust variance = R's dfbeta
    sandwich (no small-sample correction), per observation or summed within ``cluster_col`` (e.g. matched pair).
    ``strata_col`` gives a stratified model (e.g. on pair, as a sensitivity analysis). A coefficient that R would warn
    "may be infinite" (monotone likelihood, e.g. an arm with no events) gets NaN HR/CI/p and a flag.
    Model-level results are in ``.attrs`` (n, n_events, loglik, loglik_null, lr_chi2/df/p, concordance, ...); the
    concordance is Harrell's C of the linear predictor within strata, unweighted (R's weights it by case weights).
    """
    fit = _fit_cox(df, duration_col, event_col, covariates, ties, weights_col, strata_col, reference)
    cluster = None
    if cluster_col is not None:
        if cluster_col not in df.columns:
            raise ValueError(f"column '{cluster_col}' is not in the data")
        cluster = _labels(df[cluster_col], cluster_col, fit.n)
    integer_w = _is_integer_weights(fit.data.w)
    use_robust = (cluster is not None or not integer_w) if robust is None else bool(robust)
    se_naive = np.sqrt(np.diag(fit.var))
    se_robust = np.sqrt(np.diag(_robust_var(fit, cluster)))
    se = se_robust if use_robust else se_naive
    z_crit = stats.norm.ppf(1 - (1 - conf_level) / 2)
    z = fit.beta / se
    with np.errstate(over="ignore"):  # only for coefficients flagged as infinite just below
        out = pd.DataFrame({"term": fit.names, "coef": fit.beta, "hr": np.exp(fit.beta), "se": se,
                            "se_naive": se_naive, "se_robust": se_robust, "z": z, "p": 2 * stats.norm.sf(np.abs(z)),
                            "lower": np.exp(fit.beta - z_crit * se), "upper": np.exp(fit.beta + z_crit * se)})
    out["flag"] = ""
    if fit.infinite.any():
        out.loc[fit.infinite, ["hr", "z", "p", "lower", "upper"]] = np.nan
        out.loc[fit.infinite, "flag"] = "coefficient may be infinite (monotone likelihood, e.g. no events in a group)"
    if not fit.converged:
        out["flag"] = (out["flag"] + "; did not converge").str.lstrip("; ")
    lr = 2 * (fit.loglik - fit.loglik_null)
    d = fit.data
    strata = None if strata_col is None else d.in_input_order(d.strata)
    c_index = concordance_index(d.in_input_order(d.time), d.in_input_order(d.event), d.in_input_order(d.X @ fit.beta),
                                strata)
    variance = "naive" if not use_robust else "robust" if cluster is None else f"robust (cluster={cluster_col})"
    out.attrs.update({"n": fit.n, "n_events": fit.n_events, "ties": ties, "engine": fit.engine, "variance": variance,
                      "loglik": fit.loglik, "loglik_null": fit.loglik_null, "lr_chi2": lr, "lr_df": len(fit.beta),
                      "lr_p": float(stats.chi2.sf(lr, len(fit.beta))), "conf_level": conf_level,
                      "concordance": c_index})
    return out


def concordance_index(time: object, event: object, risk: object, strata: object = None) -> float:
    """Harrell's C as R ``concordance()`` for a Cox fit: a pair is comparable when the shorter time is an event (an
    event and a censoring at the same time count, the event first; two events at the same time do not); higher
    risk should die first; tied risks count 1/2. Pairs only within strata. O(n_events x n)."""
    t, e, _ = _survival_data(time, event)
    r = _as_float(risk, "risk")
    s = np.zeros(t.size) if strata is None else pd.factorize(pd.Series(_labels(strata, "strata", t.size)))[0]
    conc = disc = tied = 0.0
    for i in np.flatnonzero(e > 0):
        comp = (s == s[i]) & ((t > t[i]) | ((t == t[i]) & (e == 0)))
        conc += np.sum(r[i] > r[comp])
        disc += np.sum(r[i] < r[comp])
        tied += np.sum(r[i] == r[comp])
    total = conc + disc + tied
    return float((conc + tied / 2) / total) if total > 0 else float("nan")


# --------------------------------------------------------------------------------------------------------------------
# proportional hazards (cox.zph)
# --------------------------------------------------------------------------------------------------------------------
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
        c = _km_counts(t, e, np.ones_like(t))
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
    fit = _fit_cox(df, duration_col, event_col, covariates, ties, weights_col, strata_col, reference)
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


def _zph_plot_data(fit: _CoxFit, ttimes: np.ndarray, i11: np.ndarray) -> pd.DataFrame:
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


# --------------------------------------------------------------------------------------------------------------------
# RMST (survRM2)
# --------------------------------------------------------------------------------------------------------------------
def rmst(time: object, event: object, tau: float, weights: object = None, conf_level: float = 0.95,
         variance: Variance = "auto") -> pd.Series:
    """Restricted mean survival time up to ``tau`` as survRM2's rmst1: area under the KM step function on [0, tau].

    Variance (Greenwood plug-in): sum over times t_j <= tau of (area under S from t_j to tau)^2 d_j / (n_j (n_j - d_j))
    (0 when n_j = d_j). With non-integer weights (``variance="auto"``) the IJ variance of the weighted KM is used.
    tau beyond the last follow-up time is refused unless that last observation is an event (S = 0 afterwards).
    """
    t, e, w = _survival_data(time, event, weights)
    tau = float(tau)
    if not tau > 0:
        raise ValueError("tau must be > 0")
    tmax = t.max()
    if tau > tmax and e[t == tmax].min() == 0:
        raise ValueError(f"tau = {tau:g} is beyond the last follow-up time ({tmax:g}), which is censored")
    method = _resolve_variance(variance, w)
    c = _km_counts(t, e, w)
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
        _, infl = _km_ij(c, e, w, tau)
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


def rmst_difference(time: object, event: object, group: object, tau: float | None = None,
                    treatment: object | None = None, conf_level: float = 0.95) -> pd.DataFrame:
    """Two-arm RMST comparison as ``survRM2::rmst2`` (unadjusted): RMST per arm, difference (arm1 - arm0) with a
    normal CI, RMST ratio and RMTL ratio with CIs on the log scale, two-sided p.

    ``treatment``: the arm-1 label; default 1 for 0/1 groups, else "HAIC-TKIs-P" if present. ``tau=None`` uses
    survRM2's default (see ``_rmst_tau_bound``); a larger tau raises, as in survRM2.
    """
    t, e, _ = _survival_data(time, event)
    g = _labels(group, "group", t.size)
    levels = list(pd.unique(pd.Series(g)))
    if len(levels) != 2:
        raise ValueError(f"group must have exactly two levels (found {len(levels)})")
    if treatment is None:
        if set(levels) <= {0, 1}:
            treatment = 1
        elif TREATMENT_ARM in levels:
            treatment = TREATMENT_ARM
        else:
            raise ValueError("specify treatment= (the arm-1 label)")
    if treatment not in levels:
        raise ValueError(f"treatment {treatment!r} is not a level of group")
    arm1 = g == treatment
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
            (f"RMST {levels[0] if levels[1] == treatment else levels[1]}", r0["rmst"], r0["se"], r0["lower"],
             r0["upper"], np.nan),
            row("RMST difference", r1["rmst"] - r0["rmst"], np.sqrt(v1 + v0), log=False),
            row("RMST ratio", *_ratio_and_log_se(r1["rmst"], v1, r0["rmst"], v0), log=True),
            row("RMTL ratio", *_ratio_and_log_se(r1["rmtl"], v1, r0["rmtl"], v0), log=True)]
    out = pd.DataFrame(rows, columns=["quantity", "estimate", "se", "lower", "upper", "p"])
    out.attrs.update({"tau": float(tau), "treatment": treatment, "conf_level": conf_level,
                      "note": "se of ratios is on the log scale (delta method), as survRM2"})
    return out


# --------------------------------------------------------------------------------------------------------------------
# E-value (EValue::evalues.HR)
# --------------------------------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------------------------------
# landmark and subgroup analyses
# --------------------------------------------------------------------------------------------------------------------
def landmark(df: pd.DataFrame, time_col: str, event_col: str, landmark_months: float, arm_col: str | None = None,
             exposure_start_col: str | None = None, exposed_label: object = TREATMENT_ARM,
             unexposed_label: object = CONTROL_ARM) -> pd.DataFrame:
    """Landmark data set: patients alive, event-free and still followed beyond the landmark (time > L), with time
    reset to start at L (original kept in ``<time_col>_baseline``).

    The arm stays as defined at baseline. For immortal-time handling, ``exposure_start_col`` (e.g.
    ``exposure_start_months``, months from time zero to the first HAIC) adds ``arm_landmark``: exposed if exposure
    started at or before L, otherwise unexposed (a HAIC started after L counts as not exposed; a missing start
    means never exposed).
    """
    for c in [time_col, event_col, arm_col, exposure_start_col]:
        if c is not None and c not in df.columns:
            raise ValueError(f"column '{c}' is not in the data")
    t, e, _ = _survival_data(df[time_col], df[event_col])
    L = float(landmark_months)
    if L < 0:
        raise ValueError("landmark_months must be >= 0")
    out = df.loc[t > L].copy()
    out[f"{time_col}_baseline"] = out[time_col]
    out[time_col] = out[time_col] - L
    if exposure_start_col is not None:
        start = pd.to_numeric(out[exposure_start_col], errors="coerce")
        out["arm_landmark"] = np.where(start.notna() & (start <= L), exposed_label, unexposed_label)
    out.attrs.update({"landmark_months": L, "n_excluded": int((t <= L).sum())})
    return out


def cox_interaction_p(df: pd.DataFrame, duration_col: str, event_col: str, arm_col: str,
                      subgroup_cols: Sequence[str] | str, covariates: Sequence[str] = (), ties: Ties = "efron",
                      weights_col: str | None = None, conf_level: float = 0.95,
                      reference: dict[str, object] | None = None) -> pd.DataFrame:
    """Forest-plot table: HR for arm within each level of each subgroup variable and the interaction p.

    HR per level: Cox model ``arm + covariates`` fitted in that level (robust variance if weights are non-integer, as
    coxph). Interaction: likelihood-ratio test of ``arm + subgroup + covariates`` versus the same plus arm x subgroup
    (df = levels - 1), on all patients with the subgroup recorded. A level where an arm is absent or has no events
    gets NaN with a flag. Subgroup values are treated as categories.
    """
    subgroup_cols = [subgroup_cols] if isinstance(subgroup_cols, str) else list(subgroup_cols)
    for c in [arm_col, *subgroup_cols, *covariates]:
        if c not in df.columns:
            raise ValueError(f"column '{c}' is not in the data")
    rows = []
    for sg in subgroup_cols:
        data = df.loc[df[sg].notna()].copy()
        data["_sg"] = data[sg].astype(str)
        arm_x, _ = _design_matrix(data, [arm_col], reference)
        if arm_x.shape[1] != 1:
            raise ValueError(f"arm column '{arm_col}' must have exactly two values")
        data["_arm"] = arm_x.iloc[:, 0]
        p_int, note = _interaction_lrt(data, duration_col, event_col, list(covariates), ties, weights_col)
        for level, part in data.groupby("_sg", sort=True):
            events = part.groupby("_arm")[event_col].sum()
            row = {"subgroup": sg, "level": level, "n": len(part), "n_events": int(part[event_col].sum()),
                   "hr": np.nan, "lower": np.nan, "upper": np.nan, "p": np.nan, "p_interaction": p_int,
                   "interaction_note": note, "flag": ""}
            if events.size < 2 or (events == 0).any():
                row["flag"] = "an arm is absent or has no events in this subgroup"
            else:
                try:
                    res = cox_ph(part, duration_col, event_col, ["_arm", *covariates], ties=ties,
                                 weights_col=weights_col, conf_level=conf_level, reference=reference)
                    r = res.iloc[0]
                    row.update({k: r[k] for k in ("hr", "lower", "upper", "p", "flag")})
                except ValueError as exc:
                    row["flag"] = f"not estimable: {exc}"
            rows.append(row)
    return pd.DataFrame(rows)


def _interaction_lrt(data: pd.DataFrame, duration_col: str, event_col: str, covariates: list[str], ties: str,
                     weights_col: str | None) -> tuple[float, str]:
    """LRT p for arm x subgroup; NaN with a note when it cannot be computed."""
    sg_x, _ = _design_matrix(data, ["_sg"]) if data["_sg"].nunique() > 1 else (None, None)
    if sg_x is None:
        return float("nan"), "single subgroup level"
    for c in sg_x.columns:
        data[f"_int_{c}"] = data["_arm"] * sg_x[c]
        data[f"_main_{c}"] = sg_x[c]
    main = ["_arm", *[f"_main_{c}" for c in sg_x.columns], *covariates]
    inter = [f"_int_{c}" for c in sg_x.columns]
    try:
        f0 = _fit_cox(data, duration_col, event_col, main, ties, weights_col, None, None)
        f1 = _fit_cox(data, duration_col, event_col, main + inter, ties, weights_col, None, None)
    except ValueError as exc:
        return float("nan"), f"not estimable: {exc}"
    note = "likelihood-ratio test" + ("; a coefficient may be infinite" if f1.infinite.any() else "")
    lr = max(2 * (f1.loglik - f0.loglik), 0.0)
    return float(stats.chi2.sf(lr, len(inter))), note


# --------------------------------------------------------------------------------------------------------------------
# orchestration for the survival notebook (03_survival): one endpoint in one cohort, adjusted and landmark models
# --------------------------------------------------------------------------------------------------------------------
ARM_TERM = f"arm[T.{TREATMENT_ARM}]"  # the arm coefficient's name in cox_ph tables (HAIC-TKIs-P vs TKIs-P)
ARM_TAGS = {TREATMENT_ARM: "haic", CONTROL_ARM: "control"}  # arm -> short tag used in flat result keys
DAYS_PER_MONTH = 365.25 / 12  # as cleaning: months = days / 30.4375
ENDPOINTS = {"os": ("os_months", "os_event", "Overall survival"),                # key -> (time, event, label)
             "pfs_recist": ("pfs_recist_months", "pfs_recist_event", "PFS (RECIST 1.1)"),
             "pfs_mrecist": ("pfs_mrecist_months", "pfs_mrecist_event", "PFS (mRECIST)")}


def prepare_covariates(df: pd.DataFrame, covariates: Sequence[str], categorical: Sequence[str] = (),
                       missing: str = "indicator") -> tuple[pd.DataFrame, list[str], list[str]]:
    """Covariates ready for ``cox_ph``: returns (data, model columns, notes).

    ``missing="indicator"``: the same design as ``matching.estimate_propensity(missing="indicator")`` -- a missing
    numeric value is set to the median, a missing categorical value to the mode (first level in sorted order on a
    tie), and a 0/1 column ``<col>_missing`` is added; every row is kept. ``"complete_case"``: rows with any missing
    covariate are dropped (R coxph's na.action = na.omit), the number in the notes. Columns in ``categorical`` (and
    text columns) become pandas Categoricals of the observed levels, sorted, so the first level is the reference
    (e.g. ECOG 0); booleans become 0/1. A covariate or indicator that is constant in the data, or an indicator
    identical to an earlier one, is left out with a note (R would report an NA coefficient).
    """
    if missing not in ("indicator", "complete_case"):
        raise ValueError(f"missing must be 'indicator' or 'complete_case' (got {missing!r})")
    absent = [c for c in covariates if c not in df.columns]
    if absent:
        raise ValueError(f"covariate column(s) not in the data: {absent}")
    data = df.copy()
    notes: list[str] = []
    if missing == "complete_case":
        keep = data[list(covariates)].notna().all(axis=1)
        if (~keep).any():
            notes.append(f"complete case: {int((~keep).sum())} of {len(data)} rows dropped for missing covariates")
        data = data.loc[keep].copy()
    columns: list[str] = []
    for c in covariates:
        x = data[c]
        is_cat = c in categorical or not (pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x))
        miss = x.isna()
        obs = x[~miss]
        if obs.nunique() < 2:
            notes.append(f"{c}: constant or empty in these data, left out")
            continue
        if miss.any():
            if is_cat:
                counts = obs.value_counts()
                fill = sorted(counts.index[counts == counts.max()].tolist(), key=str)[0]
            else:
                fill = float(pd.to_numeric(obs).median())
            notes.append(f"{c}: {int(miss.sum())} missing set to the {'mode' if is_cat else 'median'} ({fill!r}), "
                         f"indicator {c}_missing added")
            x = x.astype(object).where(~miss, fill) if is_cat else pd.to_numeric(x).astype(float).fillna(fill)
        if is_cat:
            vals = x.astype(object)
            if pd.api.types.is_numeric_dtype(obs) and np.all(np.mod(obs.astype(float), 1) == 0):
                vals = vals.map(int)  # ECOG 0/1/2 stored as floats -> level names "0", "1", "2"
            data[c] = pd.Categorical(vals, categories=sorted(pd.unique(vals), key=lambda v: (str(type(v)), v)))
        else:
            data[c] = pd.to_numeric(x).astype(float)
        columns.append(c)
        if miss.any():
            ind = miss.astype(float)
            same = [k for k in columns if k.endswith("_missing") and data[k].equals(ind)]
            if ind.nunique() < 2 or same:
                notes.append(f"{c}_missing: {'constant' if ind.nunique() < 2 else 'identical to ' + same[0]}, "
                             "left out")
            else:
                data[f"{c}_missing"] = ind
                columns.append(f"{c}_missing")
    return data, columns, notes


def arm_hr(cox_table: pd.DataFrame | None, term: str = ARM_TERM) -> dict[str, object]:
    """The arm row of a ``cox_ph`` table as a flat dict (hr, lower, upper, p, se, n, n_events, variance, flag);
    NaN values when the model is missing (not estimable)."""
    out: dict[str, object] = {"hr": np.nan, "lower": np.nan, "upper": np.nan, "p": np.nan, "se": np.nan,
                              "n": np.nan, "n_events": np.nan, "variance": "", "flag": "not estimable"}
    if cox_table is None:
        return out
    row = cox_table.loc[cox_table["term"] == term]
    if row.empty:
        raise ValueError(f"term {term!r} is not in the Cox table (terms: {cox_table['term'].tolist()})")
    r = row.iloc[0]
    out.update({k: r[k] for k in ("hr", "lower", "upper", "p", "se", "flag")})
    out.update({k: cox_table.attrs.get(k) for k in ("n", "n_events", "variance")})
    return out


def adjusted_cox(df: pd.DataFrame, time_col: str, event_col: str, covariates: Sequence[str],
                 categorical: Sequence[str] = (), missing: str = "indicator", arm_col: str = "arm",
                 ties: Ties = "efron", conf_level: float = 0.95, weights_col: str | None = None,
                 cluster_col: str | None = None, strata_col: str | None = None) -> pd.DataFrame:
    """Multivariable Cox model ``arm + covariates`` (R ``coxph``), covariates prepared by ``prepare_covariates``
    (missing-indicator or complete-case design). The arm is the first term (HAIC-TKIs-P vs TKIs-P); ``.attrs`` adds
    ``missing``, ``n_input`` (rows given), ``n`` (rows used) and ``covariate_notes``."""
    data, cols, notes = prepare_covariates(df, [c for c in covariates if c != arm_col], categorical, missing)
    table = cox_ph(data, time_col, event_col, [arm_col, *cols], ties=ties, weights_col=weights_col,
                   cluster_col=cluster_col, strata_col=strata_col, conf_level=conf_level)
    table.attrs.update({"missing": missing, "n_input": len(df), "covariate_notes": notes})
    return table


def attempt(notes: list[str], label: str, fn, *args, **kwargs):  # noqa: ANN001, ANN201 - any statistic
    """``fn(*args, **kwargs)``, or None with a note appended to ``notes`` when it raises ValueError or LinAlgError
    (not estimable: no events, an arm without patients, tau beyond follow-up, singular information, ...)."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, np.linalg.LinAlgError) as exc:
        notes.append(f"{label}: not estimable ({exc})")
        return None


def _weighted_rmst_difference(t: np.ndarray, e: np.ndarray, w: np.ndarray, arm1: np.ndarray, tau: float,
                              conf_level: float) -> pd.DataFrame:
    """RMST per arm from the weighted KM (IJ variance, ``rmst``) and their difference with se = sqrt(v1 + v0)
    (arms independent; the uncertainty of the estimated weights is ignored, as with a robust Cox variance)."""
    r1 = rmst(t[arm1], e[arm1], tau, weights=w[arm1], conf_level=conf_level)
    r0 = rmst(t[~arm1], e[~arm1], tau, weights=w[~arm1], conf_level=conf_level)
    z = stats.norm.ppf(1 - (1 - conf_level) / 2)
    diff, se = r1["rmst"] - r0["rmst"], float(np.sqrt(r1["se"] ** 2 + r0["se"] ** 2))
    p = 2 * stats.norm.sf(abs(diff) / se) if se > 0 else float("nan")
    rows = [(f"RMST {TREATMENT_ARM}", r1["rmst"], r1["se"], r1["lower"], r1["upper"], np.nan),
            (f"RMST {CONTROL_ARM}", r0["rmst"], r0["se"], r0["lower"], r0["upper"], np.nan),
            ("RMST difference", diff, se, diff - z * se, diff + z * se, p)]
    out = pd.DataFrame(rows, columns=["quantity", "estimate", "se", "lower", "upper", "p"])
    out.attrs.update({"tau": float(tau), "treatment": TREATMENT_ARM, "conf_level": conf_level,
                      "note": "weighted KM, infinitesimal-jackknife variance per arm"})
    return out


def analyse_endpoint(df: pd.DataFrame, time_col: str, event_col: str, spec: dict, weights_col: str | None = None,
                     cluster_col: str | None = None, arm_col: str = "arm") -> dict[str, object]:
    """Everything reported for one time-to-event endpoint in one cohort, arm HAIC-TKIs-P versus TKIs-P.

    ``spec`` is the ``survival`` section of the params: conf_type, conf_level, timepoints_months, rmst_tau_months,
    ties. Returns a dict with
      km (arm -> ``kaplan_meier`` table; weighted when ``weights_col``), times (arm -> follow-up times, for the
      number-at-risk table), n / events (arm -> unweighted counts), median (``median_survival`` per arm, indexed by
      arm), survival_at (``survival_at`` per arm at the timepoints), follow_up (``median_follow_up_reverse_km``,
      both arms together), test ({label, p, chi2}: log-rank ``survdiff``; with weights, where no weighted log-rank
      is offered, the robust Wald test of the weighted Cox model), cox (``cox_ph`` of arm alone: robust on
      ``cluster_col`` if given, robust for non-integer weights), hr (``arm_hr`` of it), ph (``schoenfeld_test`` of
      that model) and ph_p, rmst (``rmst_difference``, or the weighted version, at rmst_tau_months), notes (what
      could not be estimated and why; those parts are None/NaN), weighted (bool).
    Rows with a missing time, event, arm or weight are dropped and counted in ``n_dropped``.
    """
    needed = [time_col, event_col, arm_col] + [c for c in (weights_col, cluster_col) if c]
    absent = [c for c in needed if c not in df.columns]
    if absent:
        raise ValueError(f"column(s) not in the data: {absent}")
    unknown = set(df[arm_col].dropna().unique()) - {TREATMENT_ARM, CONTROL_ARM}
    if unknown:
        raise ValueError(f"{arm_col} has values other than {TREATMENT_ARM!r} and {CONTROL_ARM!r}: {sorted(unknown)}")
    data = df.loc[df[needed].notna().all(axis=1)].copy()
    arms = [a for a in (TREATMENT_ARM, CONTROL_ARM) if (data[arm_col] == a).any()]
    if len(arms) < 2:
        raise ValueError(f"both arms are needed; found only {arms} in '{arm_col}'")
    conf_type, conf_level = spec.get("conf_type", "log-log"), float(spec.get("conf_level", 0.95))
    ties, tau = spec.get("ties", "efron"), float(spec.get("rmst_tau_months", 24))
    timepoints = [float(x) for x in spec.get("timepoints_months", LANDMARK_TIMES)]
    t_all, e_all, w_all = _survival_data(data[time_col], data[event_col],
                                         None if weights_col is None else data[weights_col])
    arm_all = data[arm_col].to_numpy()
    notes: list[str] = []
    res: dict[str, object] = {"time_col": time_col, "event_col": event_col, "weighted": weights_col is not None,
                              "n_dropped": int(len(df) - len(data)), "conf_type": conf_type,
                              "conf_level": conf_level, "notes": notes}
    km, times, medians, at = {}, {}, {}, []
    for a in arms:
        m = arm_all == a
        km[a] = kaplan_meier(t_all[m], e_all[m], weights=None if weights_col is None else w_all[m],
                             conf_type=conf_type, conf_level=conf_level)
        times[a] = t_all[m]
        medians[a] = median_survival(km[a])
        at.append(survival_at(km[a], timepoints).assign(arm=a))
    res.update({"km": km, "times": times, "n": {a: int((arm_all == a).sum()) for a in arms},
                "events": {a: int(e_all[arm_all == a].sum()) for a in arms},
                "median": pd.DataFrame(medians).T.rename_axis("arm"),
                "survival_at": pd.concat(at, ignore_index=True),
                "follow_up": median_follow_up_reverse_km(t_all, e_all, conf_type=conf_type, conf_level=conf_level)})
    cox = attempt(notes, "Cox model", cox_ph, data, time_col, event_col, [arm_col], ties=ties,
                   weights_col=weights_col, cluster_col=cluster_col, conf_level=conf_level)
    res["cox"], res["hr"] = cox, arm_hr(cox)
    if weights_col is None:
        lr = logrank_test(t_all, e_all, arm_all)
        if lr.note:
            notes.append(f"log-rank: {lr.note}")
        res["test"] = {"label": "Log-rank", "p": lr.p, "chi2": lr.chi2}
    else:
        res["test"] = {"label": "Robust Wald (weighted Cox)", "p": res["hr"]["p"], "chi2": np.nan}
    zph = attempt(notes, "Schoenfeld test", schoenfeld_test, data, time_col, event_col, [arm_col], ties=ties,
                   weights_col=weights_col)
    res["ph"] = zph
    res["ph_p"] = float(zph.table.loc[zph.table["term"] == arm_col, "p"].iloc[0]) if zph is not None else np.nan
    arm1 = arm_all == TREATMENT_ARM
    if weights_col is None:
        res["rmst"] = attempt(notes, f"RMST at tau = {tau:g}", rmst_difference, t_all, e_all, arm_all, tau=tau,
                               treatment=TREATMENT_ARM, conf_level=conf_level)
    else:
        res["rmst"] = attempt(notes, f"RMST at tau = {tau:g}", _weighted_rmst_difference, t_all, e_all, w_all,
                               arm1, tau, conf_level)
    return res


def _time_key(t: float) -> str:
    return f"{int(t)}m" if float(t).is_integer() else f"{t:g}m".replace(".", "p")


def flat_results(res: dict, prefix: str, cohort: str = "") -> dict[str, object]:
    """Flat ``results.json`` keys from ``analyse_endpoint``: ``{prefix}_{statistic}[_{arm}][_{cohort}][_bound]``.

    E.g. os_median_haic, os_median_haic_lower, os_12m_control_upper, os_events_haic, os_logrank_p, os_rmst_diff,
    os_ph_p_arm, os_median_follow_up; the arm HR is ``{prefix}_hr_{cohort}`` (``_unadj`` for the full cohort,
    ``cohort=""``). Medians / limits not reached are None (NaN) with ``..._reached`` False.
    """
    c = f"_{cohort}" if cohort else ""
    out: dict[str, object] = {}
    med = res["median"]
    for arm, tag in ARM_TAGS.items():
        out[f"{prefix}_n_{tag}{c}"] = res["n"].get(arm)
        out[f"{prefix}_events_{tag}{c}"] = res["events"].get(arm)
        if arm in med.index:
            r = med.loc[arm]
            out[f"{prefix}_median_{tag}{c}"] = r["median"]
            out[f"{prefix}_median_{tag}{c}_lower"] = r["lower"]
            out[f"{prefix}_median_{tag}{c}_upper"] = r["upper"]
            out[f"{prefix}_median_{tag}{c}_reached"] = bool(r["median_reached"])
    for r in res["survival_at"].itertuples(index=False):
        key = f"{prefix}_{_time_key(r.time)}_{ARM_TAGS[r.arm]}{c}"
        out[key], out[f"{key}_lower"], out[f"{key}_upper"] = r.surv, r.lower, r.upper
    hr, name = res["hr"], f"{prefix}_hr_{cohort or 'unadj'}"
    out[name], out[f"{name}_lower"], out[f"{name}_upper"], out[f"{name}_p"] = (hr["hr"], hr["lower"], hr["upper"],
                                                                               hr["p"])
    if not res["weighted"]:
        out[f"{prefix}_logrank_p{c}"] = res["test"]["p"]
    out[f"{prefix}_ph_p_arm{c}"] = res["ph_p"]
    fu = res["follow_up"]
    out[f"{prefix}_median_follow_up{c}"] = fu["median"]
    out[f"{prefix}_median_follow_up{c}_lower"] = fu["lower"]
    out[f"{prefix}_median_follow_up{c}_upper"] = fu["upper"]
    rm = res["rmst"]
    if rm is not None:
        by = rm.set_index("quantity")
        for arm, tag in ARM_TAGS.items():
            r = by.loc[f"RMST {arm}"]
            out[f"{prefix}_rmst_{tag}{c}"], out[f"{prefix}_rmst_{tag}{c}_lower"] = r["estimate"], r["lower"]
            out[f"{prefix}_rmst_{tag}{c}_upper"] = r["upper"]
        r = by.loc["RMST difference"]
        out[f"{prefix}_rmst_diff{c}"], out[f"{prefix}_rmst_diff{c}_lower"] = r["estimate"], r["lower"]
        out[f"{prefix}_rmst_diff{c}_upper"], out[f"{prefix}_rmst_diff{c}_p"] = r["upper"], r["p"]
        out[f"{prefix}_rmst_tau{c}"] = rm.attrs["tau"]
    return out


def landmark_analysis(df: pd.DataFrame, time_col: str, event_col: str, landmark_months: float,
                      offset_days_col: str = "haic_offset_days", covariates: Sequence[str] = (),
                      categorical: Sequence[str] = (), missing: str = "indicator", ties: Ties = "efron",
                      conf_level: float = 0.95) -> dict[str, object]:
    """Immortal-time sensitivity analysis: landmark at L months (Anderson, Cain & Gelber 1983).

    Patients still event-free and followed beyond L (``landmark``) enter, with time restarted at L; the arm is
    re-classified as HAIC-TKIs-P only if the first HAIC (``offset_days_col`` days from the index date, converted
    with 30.4375 days per month; missing = never) was at or before L. Cox HR of the re-classified arm from L:
    unadjusted and, if ``covariates``, adjusted (``adjusted_cox``). Returns data, n, n_excluded, n_reclassified,
    cox_unadj / cox_adj tables, hr_unadj / hr_adj (``arm_hr``) and notes.
    """
    if offset_days_col not in df.columns:
        raise ValueError(f"column '{offset_days_col}' is not in the data")
    data = df.assign(_haic_start_months=pd.to_numeric(df[offset_days_col], errors="coerce") / DAYS_PER_MONTH)
    data = data.loc[data[[time_col, event_col]].notna().all(axis=1)]
    lm = landmark(data, time_col, event_col, landmark_months, arm_col="arm", exposure_start_col="_haic_start_months")
    lm = lm.drop(columns="arm").rename(columns={"arm_landmark": "arm"}).assign(arm_baseline=data.loc[lm.index, "arm"])
    notes: list[str] = []
    out: dict[str, object] = {"landmark_months": float(landmark_months), "data": lm, "n": len(lm),
                              "n_excluded": lm.attrs["n_excluded"],
                              "n_reclassified": int((lm["arm"] != lm["arm_baseline"]).sum()),
                              "n_events": int(lm[event_col].sum()) if len(lm) else 0, "notes": notes}
    fits = {"unadj": lambda: cox_ph(lm, time_col, event_col, ["arm"], ties=ties, conf_level=conf_level)}
    if covariates:
        fits["adj"] = lambda: adjusted_cox(lm, time_col, event_col, covariates, categorical, missing, ties=ties,
                                           conf_level=conf_level)
    for key in ("unadj", "adj"):  # without covariates the adjusted model is absent (None, NaN HR)
        table = attempt(notes, f"landmark Cox ({key})", fits[key]) if len(lm) and key in fits else None
        out[f"cox_{key}"], out[f"hr_{key}"] = table, arm_hr(table)
    return out


def hr_summary(models: dict[str, pd.DataFrame | None], term: str = ARM_TERM) -> pd.DataFrame:
    """One row per model (label -> ``cox_ph`` table or None): n, events, HR, CI, p, variance, flag, for the arm."""
    rows = [{"analysis": label, **arm_hr(table, term)} for label, table in models.items()]
    return pd.DataFrame(rows, columns=["analysis", "n", "n_events", "hr", "lower", "upper", "p", "se", "variance",
                                       "flag"])


def km_summary(results: dict[str, dict]) -> pd.DataFrame:
    """Numbers table from several ``analyse_endpoint`` results (label -> result): one row per label and arm with n,
    events, median and CI, S(t) and CI at each timepoint (columns ``s_<t>m``, ``s_<t>m_lower``, ...), and RMST."""
    rows = []
    for label, res in results.items():
        at = res["survival_at"]
        rm = None if res["rmst"] is None else res["rmst"].set_index("quantity")
        for arm in res["km"]:
            med = res["median"].loc[arm]
            row = {"analysis": label, "arm": arm, "n": res["n"][arm], "events": res["events"][arm],
                   "median": med["median"], "median_lower": med["lower"], "median_upper": med["upper"]}
            for r in at[at["arm"] == arm].itertuples(index=False):
                k = f"s_{_time_key(r.time)}"
                row.update({k: r.surv, f"{k}_lower": r.lower, f"{k}_upper": r.upper})
            if rm is not None:
                r = rm.loc[f"RMST {arm}"]
                row.update({"rmst": r["estimate"], "rmst_lower": r["lower"], "rmst_upper": r["upper"]})
            rows.append(row)
    return pd.DataFrame(rows)


def format_km_summary(summary: pd.DataFrame, conf_type: str = "") -> pd.DataFrame:
    """Manuscript version of ``km_summary``: 'n (events)', 'median (CI)' in months ('NR' = not reached), survival
    at each timepoint as % (CI), RMST (CI) in months."""
    from analysis_utils.reporting.tables import fmt_est_ci

    out = pd.DataFrame({"Analysis": summary["analysis"], "Arm": summary["arm"],
                        "n (events)": [f"{int(n)} ({int(e)})" for n, e in zip(summary["n"], summary["events"])],
                        f"Median, months (95% CI{', ' + conf_type if conf_type else ''})": [
                            fmt_est_ci(m, lo, hi, digits=1) for m, lo, hi in
                            zip(summary["median"], summary["median_lower"], summary["median_upper"])]})
    for c in [c for c in summary.columns if c.startswith("s_") and not c.endswith(("_lower", "_upper"))]:
        out[f"{c[2:]} survival, % (95% CI)"] = [
            fmt_est_ci(100 * s, 100 * lo, 100 * hi, digits=1, missing="—") for s, lo, hi in
            zip(summary[c], summary[f"{c}_lower"], summary[f"{c}_upper"])]
    if "rmst" in summary.columns:
        out["RMST, months (95% CI)"] = [fmt_est_ci(r, lo, hi, digits=1, missing="—") for r, lo, hi in
                                        zip(summary["rmst"], summary["rmst_lower"], summary["rmst_upper"])]
    return out


def format_hr_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Manuscript version of ``hr_summary`` (extra leading columns such as the endpoint are kept): N, events,
    HR (95% CI), P, variance; 'NE' where the model is not estimable."""
    from analysis_utils.reporting.tables import fmt_est_ci, fmt_p

    lead = [c for c in table.columns if c not in ("n", "n_events", "hr", "lower", "upper", "p", "se", "variance",
                                                  "flag")]
    out = table[lead].copy()
    out["N"] = [("—" if pd.isna(n) else f"{int(n)}") for n in table["n"]]
    out["Events"] = [("—" if pd.isna(n) else f"{int(n)}") for n in table["n_events"]]
    out["HR (95% CI)"] = [fmt_est_ci(h, lo, hi, missing="NE") for h, lo, hi in
                          zip(table["hr"], table["lower"], table["upper"])]
    out["P"] = [fmt_p(p) for p in table["p"]]
    out["Variance"] = table["variance"].to_numpy()
    return out


def flat_hr(hr: dict, key: str) -> dict[str, object]:
    """``{key: hr, key_lower, key_upper, key_p}`` from an ``arm_hr`` dict, for ``results.json``."""
    return {key: hr["hr"], f"{key}_lower": hr["lower"], f"{key}_upper": hr["upper"], f"{key}_p": hr["p"]}


def rmst_summary(results: dict[str, dict]) -> pd.DataFrame:
    """RMST difference (HAIC-TKIs-P minus TKIs-P) per ``analyse_endpoint`` result (label -> result): tau, RMST per
    arm, difference with CI and p; NaN where it was not estimable (see the result's notes)."""
    rows = []
    for label, res in results.items():
        row = {"analysis": label, "tau": np.nan, "rmst_haic": np.nan, "rmst_control": np.nan, "diff": np.nan,
               "lower": np.nan, "upper": np.nan, "p": np.nan}
        if res["rmst"] is not None:
            by = res["rmst"].set_index("quantity")
            d = by.loc["RMST difference"]
            row.update({"tau": res["rmst"].attrs["tau"], "rmst_haic": by.loc[f"RMST {TREATMENT_ARM}", "estimate"],
                        "rmst_control": by.loc[f"RMST {CONTROL_ARM}", "estimate"], "diff": d["estimate"],
                        "lower": d["lower"], "upper": d["upper"], "p": d["p"]})
        rows.append(row)
    return pd.DataFrame(rows)


def format_rmst_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Manuscript version of ``rmst_summary`` (months, one decimal; '—' when not estimable)."""
    from analysis_utils.reporting.tables import fmt_est_ci, fmt_num, fmt_p

    return pd.DataFrame({
        "Analysis": table["analysis"], "tau, months": [fmt_num(t, 0, "—") for t in table["tau"]],
        f"RMST {TREATMENT_ARM}": [fmt_num(v, 1, "—") for v in table["rmst_haic"]],
        f"RMST {CONTROL_ARM}": [fmt_num(v, 1, "—") for v in table["rmst_control"]],
        "Difference, months (95% CI)": [fmt_est_ci(d, lo, hi, digits=1, missing="—") for d, lo, hi in
                                        zip(table["diff"], table["lower"], table["upper"])],
        "P": [fmt_p(p) for p in table["p"]]})


# --------------------------------------------------------------------------------------------------------------------
# notebook steps (03_survival): cohorts, models per endpoint, tables and the flat results section
# --------------------------------------------------------------------------------------------------------------------
COHORT_LABELS = {"full": "Full cohort", "matched": "Matched cohort", "iptw": "IPTW (ATE) cohort"}


def load_cohorts(data_dir: str | Path) -> tuple[dict[str, dict], list[str]]:
    """The analysis cohorts from the run's ``data`` folder, as (cohorts, notes).

    ``cohorts``: name -> {"df", "kw" (keyword arguments for ``analyse_endpoint``), "label"}: ``full`` (cohort.parquet);
    ``matched`` (cohort inner-joined with matched.parquet's subclass and match_weight; Cox variance clustered on the
    pair, R ``coxph(..., cluster = subclass)``; weights only if some match_weight differs from 1, since 1:1 matching
    without replacement gives weight 1); ``iptw`` (cohort inner-joined with weights.parquet, weights
    ``w_iptw_ate``). A missing matched/weights file (02_matching did not write it) leaves that cohort out with a note.
    """
    data = Path(data_dir)
    cohort_path = data / "cohort.parquet"
    if not cohort_path.is_file():
        raise FileNotFoundError(f"{cohort_path} does not exist (01_cleaning writes it)")
    cohort = pd.read_parquet(cohort_path)
    cohorts: dict[str, dict] = {"full": {"df": cohort, "kw": {}, "label": COHORT_LABELS["full"]}}
    notes: list[str] = []
    if (data / "matched.parquet").is_file():
        matched = cohort.merge(pd.read_parquet(data / "matched.parquet")[["study_id", "subclass", "match_weight"]],
                               on="study_id", how="inner")
        match_w = None if (matched["match_weight"] == 1).all() else "match_weight"
        cohorts["matched"] = {"df": matched, "kw": {"cluster_col": "subclass", "weights_col": match_w},
                              "label": COHORT_LABELS["matched"]}
    else:
        notes.append("No matched cohort: data/matched.parquet not found (02_matching has not written it); "
                     "matched analyses skipped.")
    if (data / "weights.parquet").is_file():
        weighted = cohort.merge(pd.read_parquet(data / "weights.parquet").drop(columns="arm", errors="ignore"),
                                on="study_id", how="inner")
        cohorts["iptw"] = {"df": weighted, "kw": {"weights_col": "w_iptw_ate"}, "label": COHORT_LABELS["iptw"]}
    else:
        notes.append("No weights: data/weights.parquet not found (02_matching has not written it); "
                     "weighted analyses skipped.")
    return cohorts, notes


def cohort_sizes(cohorts: dict[str, dict]) -> pd.DataFrame:
    """Patients per arm (rows) and cohort (columns)."""
    return pd.DataFrame({name: c["df"]["arm"].value_counts() for name, c in cohorts.items()})


def main_cohort(cohorts: dict[str, dict]) -> str:
    """The cohort of the main analysis: ``matched`` when there is one, else ``full``."""
    return "matched" if "matched" in cohorts else "full"


def endpoint_results(cohorts: dict[str, dict], spec: dict) -> tuple[dict[str, dict[str, dict]], list[str]]:
    """``analyse_endpoint`` for every endpoint (``ENDPOINTS``) and cohort: (res[endpoint][cohort], notes), the notes
    prefixed '<endpoint>, <cohort>: '."""
    res = {ep: {name: analyse_endpoint(c["df"], time_col, event_col, spec, **c["kw"]) for name, c in cohorts.items()}
           for ep, (time_col, event_col, _) in ENDPOINTS.items()}
    notes = [f"{ep}, {name}: {note}" for ep, by in res.items() for name, r in by.items() for note in r["notes"]]
    return res, notes


def km_tables(res: dict[str, dict[str, dict]], cohorts: dict[str, dict], endpoint: str,
              conf_type: str = "") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(``km_summary``, ``format_km_summary``) of one endpoint over the cohorts, rows labelled by cohort label."""
    summary = km_summary({cohorts[c]["label"]: r for c, r in res[endpoint].items()})
    return summary, format_km_summary(summary, conf_type)


def follow_up_table(res: dict[str, dict[str, dict]], cohorts: dict[str, dict]) -> pd.DataFrame:
    """Median follow-up (reverse Kaplan-Meier of the OS times, Schemper & Smith 1996) with its CI per cohort."""
    return pd.DataFrame([{"analysis": cohorts[c]["label"], **r["follow_up"][["median", "lower", "upper"]].to_dict()}
                         for c, r in res["os"].items()])


def cox_models(cohorts: dict[str, dict], res: dict[str, dict[str, dict]], spec: dict) -> dict[str, object]:
    """The Cox models of arm reported per endpoint (R ``coxph``, ties and conf_level from ``spec``).

    Full cohort: unadjusted (from ``res``), adjusted for ``spec["adjust_covariates"]`` with the ``spec["missing"]``
    design and complete case (``adjusted_cox``); matched: robust SE clustered on the pair (from ``res``) and
    stratified on the pair (``strata(subclass)``, conditional on the pair); IPTW: robust SE (from ``res``). Returns
    {"adjusted", "adjusted_cc", "stratified": endpoint -> table or None, "models": endpoint -> {row label -> table},
    "notes": what was not estimable plus the patients and covariate notes of the adjusted OS model}.
    """
    cohort = cohorts["full"]["df"]
    notes: list[str] = []
    adjusted, adjusted_cc, stratified, models = {}, {}, {}, {}
    adj_kw = dict(covariates=spec["adjust_covariates"], categorical=spec["categorical"], ties=spec["ties"],
                  conf_level=spec["conf_level"])
    for ep, (time_col, event_col, _) in ENDPOINTS.items():
        adjusted[ep] = attempt(notes, f"{ep} adjusted", adjusted_cox, cohort, time_col, event_col,
                               missing=spec["missing"], **adj_kw)
        adjusted_cc[ep] = attempt(notes, f"{ep} adjusted, complete case", adjusted_cox, cohort, time_col,
                                  event_col, missing="complete_case", **adj_kw)
        m = {"Full cohort, unadjusted": res[ep]["full"]["cox"],
             f"Full cohort, adjusted ({spec['missing'].replace('_', ' ')})": adjusted[ep],
             "Full cohort, adjusted (complete case)": adjusted_cc[ep]}
        if "matched" in cohorts:
            stratified[ep] = attempt(notes, f"{ep} stratified on pair", cox_ph, cohorts["matched"]["df"], time_col,
                                     event_col, ["arm"], ties=spec["ties"], strata_col="subclass",
                                     weights_col=cohorts["matched"]["kw"]["weights_col"],
                                     conf_level=spec["conf_level"])
            m["Matched, robust SE clustered on pair"] = res[ep]["matched"]["cox"]
            m["Matched, stratified on pair"] = stratified[ep]
        if "iptw" in cohorts:
            m["IPTW (ATE), robust SE"] = res[ep]["iptw"]["cox"]
        models[ep] = m
    if adjusted["os"] is not None:
        notes.append(f"Adjusted OS model: {adjusted['os'].attrs['n']} of {adjusted['os'].attrs['n_input']} patients; "
                     f"complete case: {adjusted_cc['os'].attrs['n'] if adjusted_cc['os'] is not None else 0}.")
        notes.extend(adjusted["os"].attrs["covariate_notes"])
    return {"adjusted": adjusted, "adjusted_cc": adjusted_cc, "stratified": stratified, "models": models,
            "notes": notes}


def cox_table(models: dict[str, dict[str, pd.DataFrame | None]]) -> pd.DataFrame:
    """``hr_summary`` of every endpoint's models (``cox_models(...)["models"]``) stacked, endpoint label first."""
    parts = []
    for ep, (_, _, label) in ENDPOINTS.items():
        d = hr_summary(models[ep]).assign(endpoint=label)
        parts.append(d[["endpoint"] + [c for c in d.columns if c != "endpoint"]])
    return pd.concat(parts, ignore_index=True)


def coefficient_table(cox_table_: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(term, hr, lower, upper, p) of a Cox table and its manuscript version (HR (95% CI), P formatted)."""
    from analysis_utils.reporting.tables import fmt_est_ci, fmt_p

    coefs = cox_table_[["term", "hr", "lower", "upper", "p"]]
    formatted = coefs.assign(hr=[fmt_est_ci(h, lo, hi) for h, lo, hi in
                                 zip(coefs["hr"], coefs["lower"], coefs["upper"])],
                             p=coefs["p"].map(fmt_p))[["term", "hr", "p"]]
    return coefs, formatted


def ph_table(res: dict[str, dict[str, dict]], cohorts: dict[str, dict]) -> pd.DataFrame:
    """Schoenfeld (``cox.zph``) p of the arm: one row per endpoint label, one column per cohort label."""
    return pd.DataFrame({cohorts[c]["label"]: {label: res[ep][c]["ph_p"] for ep, (_, _, label) in ENDPOINTS.items()}
                         for c in cohorts})


def arm_coef(result: dict) -> float:
    """log HR of the arm in an ``analyse_endpoint`` result (the Cox coefficient, for the Schoenfeld plot)."""
    return float(np.log(result["hr"]["hr"]))


def rmst_table(res: dict[str, dict[str, dict]], cohorts: dict[str, dict]) -> pd.DataFrame:
    """``rmst_summary`` for every endpoint and cohort, rows labelled '<endpoint label>, <cohort label>'."""
    return pd.concat([rmst_summary({f"{label}, {cohorts[c]['label']}": res[ep][c] for c in cohorts})
                      for ep, (_, _, label) in ENDPOINTS.items()], ignore_index=True)


def subgroup_analysis(cohorts: dict[str, dict], spec: dict) -> tuple[pd.DataFrame | None, list[str]]:
    """OS subgroups (``cox_interaction_p``, subgroups ``spec["subgroups"]``) in the main cohort (``main_cohort``):
    (table or None when not estimable, notes)."""
    notes: list[str] = []
    table = attempt(notes, "subgroups", cox_interaction_p, cohorts[main_cohort(cohorts)]["df"], "os_months",
                    "os_event", "arm", spec["subgroups"], ties=spec["ties"], conf_level=spec["conf_level"])
    return table, notes


def matched_os_evalue(res: dict[str, dict[str, dict]]) -> pd.Series | None:
    """``evalue_hr`` (common outcome, ``rare=False``) of the matched-cohort OS HR; None without a matched cohort or
    a finite HR."""
    if "matched" not in res["os"] or not np.isfinite(res["os"]["matched"]["hr"]["hr"]):
        return None
    h = res["os"]["matched"]["hr"]
    return evalue_hr(h["hr"], h["lower"], h["upper"], rare=False)


def haic_timing(cohort: pd.DataFrame, landmark_months: float,
                offset_days_col: str = "haic_offset_days") -> dict[str, int]:
    """Immortal time at a glance: HAIC patients (offset known), those whose first HAIC came after the index date
    (offset > 0 days) and after the landmark (offset / 30.4375 > L months)."""
    offset = cohort[offset_days_col]
    return {"n_haic": int(offset.notna().sum()), "n_after_index": int((offset > 0).sum()),
            "n_after_landmark": int((offset / DAYS_PER_MONTH > landmark_months).sum())}


def landmark_analyses(cohort: pd.DataFrame, spec: dict) -> dict[str, dict]:
    """``landmark_analysis`` at ``spec["landmark_months"]`` for every endpoint, unadjusted and adjusted as the main
    adjusted model (covariates, categorical, missing, ties, conf_level from ``spec``)."""
    return {ep: landmark_analysis(cohort, time_col, event_col, spec["landmark_months"],
                                  covariates=spec["adjust_covariates"], categorical=spec["categorical"],
                                  missing=spec["missing"], ties=spec["ties"], conf_level=spec["conf_level"])
            for ep, (time_col, event_col, _) in ENDPOINTS.items()}


def landmark_table(landmarks: dict[str, dict]) -> pd.DataFrame:
    """One row per endpoint: patients at the landmark, excluded, re-classified, events, HR (95% CI) unadjusted and
    adjusted ('NE' when not estimable)."""
    from analysis_utils.reporting.tables import fmt_est_ci

    def hr_text(hr: dict) -> str:
        return fmt_est_ci(hr["hr"], hr["lower"], hr["upper"], missing="NE")

    return pd.DataFrame([{"endpoint": label, "n_at_landmark": lm["n"], "n_excluded": lm["n_excluded"],
                          "n_reclassified": lm["n_reclassified"], "events": lm["n_events"],
                          "hr_unadj": hr_text(lm["hr_unadj"]), "hr_adj": hr_text(lm["hr_adj"])}
                         for ep, (_, _, label) in ENDPOINTS.items() for lm in [landmarks[ep]]])


def survival_results(spec: dict, cohorts: dict[str, dict], res: dict[str, dict[str, dict]], cox: dict,
                     landmarks: dict[str, dict], evalue: pd.Series | None = None,
                     subgroups: pd.DataFrame | None = None) -> dict[str, object]:
    """The flat ``results.json`` "survival" section: settings, then per endpoint ``flat_results`` of every cohort,
    ``{ep}_hr_adj`` / ``_hr_adj_cc`` (with ``_n``), ``_hr_matched_strat``, ``_hr_landmark`` (adjusted) /
    ``_hr_landmark_unadj`` and the landmark counts; median_follow_up (= the full-cohort OS reverse KM), the OS
    E-value and the subgroup interaction p values when given."""
    values: dict[str, object] = {"conf_type": spec["conf_type"], "conf_level": spec["conf_level"],
                                 "rmst_tau_months": spec["rmst_tau_months"],
                                 "landmark_months": spec["landmark_months"], "adjust_missing": spec["missing"],
                                 "cohorts": list(cohorts)}
    for ep in ENDPOINTS:
        for c in cohorts:
            values.update(flat_results(res[ep][c], ep, "" if c == "full" else c))
        for kind, key in (("adjusted", "adj"), ("adjusted_cc", "adj_cc")):
            table = cox[kind][ep]
            values.update(flat_hr(arm_hr(table), f"{ep}_hr_{key}"))
            values[f"{ep}_hr_{key}_n"] = table.attrs["n"] if table is not None else None
        if "matched" in cohorts:
            values.update(flat_hr(arm_hr(cox["stratified"][ep]), f"{ep}_hr_matched_strat"))
        lm = landmarks[ep]
        values.update(flat_hr(lm["hr_adj"], f"{ep}_hr_landmark"))
        values.update(flat_hr(lm["hr_unadj"], f"{ep}_hr_landmark_unadj"))
        values.update({f"{ep}_landmark_n": lm["n"], f"{ep}_landmark_n_reclassified": lm["n_reclassified"]})
    values.update({f"median_follow_up{b}": values[f"os_median_follow_up{b}"] for b in ("", "_lower", "_upper")})
    if evalue is not None:
        values.update({"os_evalue": evalue["evalue_point"], "os_evalue_ci": evalue["evalue_ci"]})
    if subgroups is not None:
        for sg, p in subgroups.groupby("subgroup")["p_interaction"].first().items():
            values[f"os_subgroup_{sg}_p_interaction"] = p
    return values


def headline_results(values: dict[str, object]) -> dict[str, object]:
    """The OS medians and hazard ratios of the results section (keys os_*, with '_hr_' or 'median', <= 4 '_')."""
    return {k: v for k, v in values.items() if k.startswith("os_") and ("_hr_" in k or "median" in k)
            and k.count("_") <= 4}
