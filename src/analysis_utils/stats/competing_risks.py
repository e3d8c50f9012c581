"""Competing risks: cumulative incidence (Aalen-Johansen) with Gray's variance, Gray's K-sample test, cause-specific
Cox models.

Reproduces R ``cmprsk::cuminc`` (Gray 1988; cmprsk 2.2):

* ``cuminc``: per group and cause the cumulative incidence function (CIF) F_k(t) = sum over event times t_j <= t of
  S(t_j-) d_kj / n_j, with S the all-cause Kaplan-Meier estimate, and the variance cmprsk reports (the delta-method
  variance of Gray 1988, cmprsk's Fortran ``cinc``, including its tie correction 1 - (d - 1)/(n - 1)). As in
  cmprsk the variance changes only at the event times of the cause itself.
* ``cuminc_at``: estimates and variances at given times as cmprsk ``timepoints``: the value of the step function
  at the last jump at or before t, missing beyond the group's last follow-up time; plus pointwise confidence limits,
  by default on the log(-log) scale, F^exp(+-z se / (F log F)) (Pintilie 2006, formula 4.9; the interval
  ``tidycmprsk::cuminc`` reports), or plain F +- z se clipped to [0, 1].
* ``gray_test``: Gray's (1988) test that the CIF of one cause is equal in K groups, weight (1 - F(t-))^rho
  (``rho = 0`` by default), optionally stratified (scores and variances summed over strata); statistic
  s' V^-1 s on K - 1 degrees of freedom, as cmprsk's Fortran ``crstm`` / ``crst``.
* ``cause_specific_cox``: the Cox model of the cause-specific hazard (R ``coxph(Surv(time, status == k) ~ ...)``,
  other causes censored), through :func:`analysis_utils.stats.cox.cox_ph`.

Validated against cmprsk's own test output (tests/test_stats_competing_risks.py regenerates its data with R's
random-number generator) and a hand-computed example. Rules: docs/methods/competing-risks.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis_utils.stats.cox import cox_ph

__all__ = ["CumincResult", "cuminc", "cuminc_at", "cif_confint", "gray_test", "cause_specific_cox"]


@dataclass(frozen=True)
class CumincResult:
    """Output of :func:`cuminc`.

    curves: one row per group, cause and event time of that cause (plus a row at time 0): group, cause, time, est,
    var. max_time: group -> last follow-up time (any status). tests: one row per cause (cause, stat, p, df) when
    there are at least two groups, else empty. groups, causes: in the order used (sorted, as R's factor levels).
    """

    curves: pd.DataFrame
    max_time: dict[Any, float]
    tests: pd.DataFrame
    groups: list[Any]
    causes: list[Any]


def _inputs(time: Any, status: Any, group: Any, strata: Any) -> pd.DataFrame:
    d = pd.DataFrame({"time": np.asarray(time, dtype=float), "status": np.asarray(status)})
    n = len(d)
    d["group"] = np.asarray(group) if group is not None else np.ones(n, dtype=int)
    d["strata"] = np.asarray(strata) if strata is not None else np.ones(n, dtype=int)
    bad = d.isna().any(axis=1)
    if bad.any():  # R: na.action = na.omit
        d = d.loc[~bad]
    if (d["time"] < 0).any():
        raise ValueError("times must be >= 0")
    if d.empty:
        raise ValueError("no complete observations")
    return d.reset_index(drop=True)


def _cif_one(time: np.ndarray, any_event: np.ndarray, cause_event: np.ndarray) -> pd.DataFrame:
    """CIF and cmprsk's variance of one cause in one group (times unsorted; ``any_event`` / ``cause_event`` 0/1)."""
    ut, inv = np.unique(time, return_inverse=True)
    n_at = len(time) - np.concatenate([[0], np.cumsum(np.bincount(inv))[:-1]])     # at risk: time >= t_j
    d1 = np.bincount(inv, weights=cause_event).astype(float)                        # this cause
    d2 = np.bincount(inv, weights=any_event).astype(float) - d1                      # other causes
    d = d1 + d2
    surv = np.cumprod(1.0 - d / n_at)                                                # S(t_j)
    s_before = np.concatenate([[1.0], surv[:-1]])                                    # S(t_j-)
    f = np.cumsum(s_before * d1 / n_at)                                              # F(t_j)

    def tie(dk: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(dk > 1, 1.0 - (dk - 1.0) / (n_at - 1.0), 1.0)

    with np.errstate(divide="ignore", invalid="ignore"):
        inv_s = np.where(surv > 0, 1.0 / surv, 0.0)
        # other causes (only where S(t_j) > 0), then this cause, both at the CIF value after the jump at t_j
        w2 = np.where((d2 > 0) & (surv > 0), s_before ** 2 * tie(d2) * d2 / n_at ** 2, 0.0)
        w1 = np.where(d1 > 0, s_before ** 2 * tie(d1) * d1 / n_at ** 2, 0.0)
    g2, g1 = f * inv_s, 1.0 + inv_s * f
    v1 = np.cumsum(g2 ** 2 * w2 + g1 ** 2 * w1)
    v2 = np.cumsum(inv_s * g2 * w2 + inv_s * g1 * w1)
    v3 = np.cumsum(inv_s ** 2 * w2 + inv_s ** 2 * w1)
    var = v1 + f ** 2 * v3 - 2.0 * f * v2
    jump = d1 > 0
    return pd.DataFrame({"time": np.concatenate([[0.0], ut[jump]]), "est": np.concatenate([[0.0], f[jump]]),
                         "var": np.concatenate([[0.0], var[jump]])})


def cuminc(time: Any, status: Any, group: Any = None, strata: Any = None, rho: float = 0.0,
           cencode: Any = 0) -> CumincResult:
    """R ``cmprsk::cuminc(ftime, fstatus, group, strata, rho, cencode)``: CIF and variance per group and cause,
    and Gray's test per cause across groups (stratified on ``strata``). Rows with a missing value are dropped
    (R's ``na.omit``); causes are the values of ``status`` other than ``cencode`` that occur."""
    d = _inputs(time, status, group, strata)
    groups = sorted(pd.unique(d["group"]))
    event = (d["status"] != cencode).to_numpy()
    causes = sorted(pd.unique(d.loc[event, "status"]))
    parts = []
    for k in causes:
        is_k = (d["status"] == k).to_numpy()
        for g in groups:
            m = (d["group"] == g).to_numpy()
            parts.append(_cif_one(d["time"].to_numpy()[m], event[m], is_k[m]).assign(group=g, cause=k))
    curves = pd.concat(parts, ignore_index=True)[["group", "cause", "time", "est", "var"]] if parts else \
        pd.DataFrame(columns=["group", "cause", "time", "est", "var"])
    max_time = {g: float(d.loc[d["group"] == g, "time"].max()) for g in groups}
    tests = pd.DataFrame(columns=["cause", "stat", "p", "df"])
    if len(groups) > 1 and causes:
        tests = pd.DataFrame([{"cause": k, **gray_test(d["time"], d["status"], d["group"], k, d["strata"], rho,
                                                        cencode)} for k in causes])
    return CumincResult(curves=curves, max_time=max_time, tests=tests, groups=groups, causes=causes)


def cif_confint(est: Any, var: Any, conf_level: float = 0.95, conf_type: str = "log-log"
                ) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise limits of a CIF: ``log-log`` F^exp(-+z se/(F log F)) (Pintilie 2006; tidycmprsk), missing where F
    is 0 or 1, or ``plain`` F -+ z se clipped to [0, 1]."""
    est, se = np.asarray(est, dtype=float), np.sqrt(np.asarray(var, dtype=float))
    z = stats.norm.ppf(0.5 + conf_level / 2.0)
    if conf_type == "plain":
        return np.clip(est - z * se, 0.0, 1.0), np.clip(est + z * se, 0.0, 1.0)
    if conf_type != "log-log":
        raise ValueError("conf_type must be 'log-log' or 'plain'")
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = se / (est * np.log(est))                     # negative for 0 < F < 1
        lower, upper = est ** np.exp(-z * scale), est ** np.exp(z * scale)
    ok = (est > 0) & (est < 1)
    return np.where(ok, lower, np.nan), np.where(ok, upper, np.nan)


def cuminc_at(result: CumincResult, times: Sequence[float], conf_level: float = 0.95,
              conf_type: str = "log-log") -> pd.DataFrame:
    """Estimates at ``times`` as cmprsk ``timepoints``: the CIF and its variance at the last jump at or before t;
    missing beyond the group's last follow-up time. Columns group, cause, time, est, var, se, lower, upper."""
    times = np.sort(np.unique(np.asarray(times, dtype=float)))
    rows = []
    for (g, k), c in result.curves.groupby(["group", "cause"], sort=False):
        pos = np.searchsorted(c["time"].to_numpy(), times, side="right") - 1
        beyond = times > result.max_time[g]
        est = np.where(beyond, np.nan, c["est"].to_numpy()[pos])
        var = np.where(beyond, np.nan, c["var"].to_numpy()[pos])
        lower, upper = cif_confint(est, var, conf_level, conf_type)
        rows.append(pd.DataFrame({"group": g, "cause": k, "time": times, "est": est, "var": var, "se": np.sqrt(var),
                                  "lower": lower, "upper": upper}))
    return pd.concat(rows, ignore_index=True)


def _gray_stratum(time: np.ndarray, code: np.ndarray, grp: np.ndarray, ng: int, rho: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Score (ng - 1) and variance (ng - 1 x ng - 1) of Gray's test in one stratum; ``code`` 0 censored, 1 the
    cause of interest, 2 another cause; ``grp`` 0..ng-1. Gray (1988), section 2, as cmprsk's ``crst``."""
    order = np.argsort(time, kind="stable")
    time, code, grp = time[order], code[order], grp[order]
    ut, start = np.unique(time, return_index=True)
    end = np.append(start[1:], len(time))
    at_risk = np.bincount(grp, minlength=ng).astype(float)
    s_prev, f1_prev = np.ones(ng), np.zeros(ng)          # all-cause KM and CIF just before t, per group
    f_prev = 0.0                                         # pooled CIF under the null, just before t
    c = np.zeros((ng, ng))
    score, v = np.zeros(ng - 1), np.zeros((ng - 1, ng - 1))
    v2, v3 = np.zeros((ng - 1, ng)), np.zeros(ng)
    s_now, f1_now = s_prev.copy(), f1_prev.copy()
    for lo, hi in zip(start, end):
        d = np.zeros((3, ng))
        np.add.at(d, (code[lo:hi], grp[lo:hi]), 1.0)
        d1, d2 = d[1], d[2]
        n1, n2 = d1.sum(), d2.sum()
        if n1 + n2 > 0:
            risk = at_risk > 0
            with np.errstate(divide="ignore", invalid="ignore"):
                s_now = np.where(risk, s_prev * (at_risk - d1 - d2) / at_risk, s_prev)
                f1_now = np.where(risk, f1_prev + s_prev * d1 / at_risk, f1_prev)
                h = np.where(risk, at_risk / s_prev, 0.0)                    # R_r / S_r(t-)
            tr = h.sum()
            tq = (h * (1.0 - f1_prev)).sum()
            f_now = f_prev + n1 / tr
            fb = (1.0 - f_prev) ** rho
            a = -fb * np.outer(h, h) / tr
            a[np.diag_indices(ng)] = fb * h * (1.0 - h / tr)
            c += a * n1 / (tr * (1.0 - f_prev))
            with np.errstate(divide="ignore", invalid="ignore"):
                score += np.where(risk[:-1], fb * (d1[:-1] - n1 * h[:-1] * (1.0 - f1_prev[:-1]) / tq), 0.0)
            if n1 > 0:
                k = risk
                with np.errstate(divide="ignore", invalid="ignore"):
                    t4 = np.where(s_now > 0, 1.0 - (1.0 - f_now) / s_now, 1.0)
                    t5 = 1.0 - (n1 - 1.0) / (tr * s_prev - 1.0) if n1 > 1 else np.ones(ng)
                    t3 = np.where(k, t5 * s_prev * n1 / (tr * at_risk), 0.0)
                t1 = a[:-1] - t4 * c[:-1]                                   # (ng - 1, ng)
                v3 += np.where(k, t4 ** 2 * t3, 0.0)
                v2 += t1 * t4 * t3
                v += (t1 * t3) @ t1.T
            if n2 > 0:
                k = (s_now > 0) & (d2 > 0)
                with np.errstate(divide="ignore", invalid="ignore"):
                    t4 = np.where(k, (1.0 - f_now) / s_now, 0.0)
                    t5 = np.where(d2 > 1, 1.0 - (d2 - 1.0) / (at_risk - 1.0), 1.0)
                    t3 = np.where(k, t5 * s_prev ** 2 * d2 / at_risk ** 2, 0.0)
                t1 = t4 * c[:-1]
                v3 += t4 ** 2 * t3
                v2 -= t1 * t4 * t3
                v += (t1 * t3) @ t1.T
            f_prev = f_now
        at_risk -= np.bincount(grp[lo:hi], minlength=ng)
        s_prev, f1_prev = s_now.copy(), f1_now.copy()
    cm = c[:-1]
    v += (cm * v3) @ cm.T + cm @ v2.T + v2 @ cm.T
    return score, v


def gray_test(time: Any, status: Any, group: Any, cause: Any, strata: Any = None, rho: float = 0.0,
              cencode: Any = 0) -> dict[str, float]:
    """Gray's (1988) K-sample test of equal cumulative incidence of ``cause`` (cmprsk ``cuminc``'s "Tests"):
    {stat, p, df}. Groups are ordered as sorted levels (the first K - 1 carry the score); stratified on
    ``strata`` by summing scores and variances; a singular variance gives stat -1 (as cmprsk) and p missing."""
    d = _inputs(time, status, group, strata)
    levels = sorted(pd.unique(d["group"]))
    ng = len(levels)
    if ng < 2:
        raise ValueError("Gray's test needs at least two groups")
    code = np.where(d["status"] == cencode, 0, np.where(d["status"] == cause, 1, 2))
    grp = pd.Index(levels).get_indexer(d["group"])
    score, var = np.zeros(ng - 1), np.zeros((ng - 1, ng - 1))
    for s in sorted(pd.unique(d["strata"])):
        m = (d["strata"] == s).to_numpy()
        sc, vv = _gray_stratum(d["time"].to_numpy()[m], code[m], grp[m], ng, rho)
        score += sc
        var += vv
    if np.linalg.matrix_rank(var) < ng - 1:
        return {"stat": -1.0, "p": np.nan, "df": ng - 1}
    stat = float(score @ np.linalg.solve(var, score))
    return {"stat": stat, "p": float(stats.chi2.sf(stat, ng - 1)), "df": ng - 1}


def cause_specific_cox(df: pd.DataFrame, time_col: str, status_col: str, cause: Any, covariates: Sequence[str],
                       **cox_kwargs: Any) -> pd.DataFrame:
    """Cox model of the cause-specific hazard of ``cause``: R ``coxph(Surv(time, status == cause) ~ covariates)``,
    every other status (other causes, censoring) censored. Keyword arguments go to ``cox_ph`` (ties, cluster,
    strata, weights, reference, conf_level)."""
    data = df.assign(_cause_event=(df[status_col] == cause).astype(int))
    return cox_ph(data, time_col, "_cause_event", covariates, **cox_kwargs)
