"""Inference that honours clustered (e.g. matched-pair) observations.

* ``robust_score_test``: the robust (Lin & Wei 1989) score test of all coefficients of a Cox model, R
  ``summary(coxph(..., cluster = id))``'s "Robust = ..., p = ..." line: at beta = 0 (the null), the weighted
  score residuals summed within each cluster, T0 (clusters x p), and u = their column sums; statistic
  u' (T0'T0)^-1 u on p degrees of freedom (survival's ``coxph``: ``rscore <- coxph.wtest(t(temp0) %*% temp0, u)``).
  With one 0/1 covariate it is the pair-clustered analogue of the log-rank test, valid when the two arms' patients
  are correlated within pairs.
* ``bootstrap_percentile_ci``: percentile limits with R ``boot``'s interpolation on the normal-quantile scale
  between order statistics (``boot:::norm.inter``, used by ``boot.ci(type = "perc")``).
* ``cluster_bootstrap``: the nonparametric bootstrap that resamples whole clusters with replacement (Davison &
  Hinkley 1997, section 3.8); numpy's seeded generator, not R's stream.
* ``rmst_difference_cluster_bootstrap``: the difference in restricted mean survival time up to tau (the area
  under each group's Kaplan-Meier curve, as ``survRM2::rmst2``) with its pair-bootstrap standard error,
  percentile interval and Wald p.

Rules: docs/methods/survival.md (paired data). Tests: tests/test_stats_clustered.py (hand arithmetic).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis_utils.stats.cox import _cox_terms, _score_residuals, fit_cox
from analysis_utils.stats.kaplan_meier import km_counts
from analysis_utils.stats.survival_input import group_labels, survival_data

__all__ = ["robust_score_test", "bootstrap_percentile_ci", "cluster_bootstrap", "rmst_difference_cluster_bootstrap"]


def robust_score_test(df: pd.DataFrame, duration_col: str, event_col: str, covariates: Sequence[str],
                      cluster_col: str, ties: str = "efron", weights_col: str | None = None,
                      strata_col: str | None = None, reference: dict[str, object] | None = None) -> dict[str, float]:
    """R ``coxph(Surv(t, e) ~ covariates [+ strata(s)], weights =, cluster = cluster_col, ties =)``'s robust score
    test: {stat, df, p, n_clusters}. The data are validated and prepared as the fit (``stats.cox.fit_cox``); the
    score residuals at beta = 0 (Efron or Breslow risk sets), times the case weights, are summed within clusters."""
    if cluster_col not in df.columns:
        raise ValueError(f"column '{cluster_col}' is not in the data")
    fit = fit_cox(df, duration_col, event_col, covariates, ties, weights_col, strata_col, reference)
    d = fit.data
    beta0 = np.zeros(fit.beta.size)
    resid = _score_residuals(d, beta0, _cox_terms(d, beta0, ties)) * d.in_input_order(d.w)[:, None]
    codes = pd.factorize(pd.Series(group_labels(df[cluster_col], cluster_col, fit.n)))[0]
    summed = np.zeros((codes.max() + 1, fit.beta.size))
    np.add.at(summed, codes, resid)
    u = summed.sum(axis=0)
    stat = float(u @ np.linalg.solve(summed.T @ summed, u))
    return {"stat": stat, "df": int(fit.beta.size), "p": float(stats.chi2.sf(stat, fit.beta.size)),
            "n_clusters": int(summed.shape[0])}


def bootstrap_percentile_ci(replicates: Any, conf_level: float = 0.95) -> tuple[float, float]:
    """Percentile limits as R ``boot.ci(type = "perc")`` (``boot:::norm.inter``): for alpha in (a/2, 1 - a/2),
    rk = (R + 1) alpha; the rk-th order statistic if rk is an integer, else interpolation between the k-th and
    (k + 1)-th on the scale of qnorm(k / (R + 1)); the extreme order statistic when k is 0 or R. Non-finite
    replicates are dropped first."""
    t = np.sort(np.asarray(replicates, dtype=float))
    t = t[np.isfinite(t)]
    r = t.size
    if r == 0:
        return np.nan, np.nan
    out = []
    for alpha in ((1 - conf_level) / 2, (1 + conf_level) / 2):
        rk = (r + 1) * alpha
        k = int(np.trunc(rk))
        if k == rk and 0 < k <= r:
            out.append(float(t[k - 1]))
        elif k <= 0:
            out.append(float(t[0]))
        elif k >= r:
            out.append(float(t[-1]))
        else:
            q, qk, qk1 = stats.norm.ppf(alpha), stats.norm.ppf(k / (r + 1)), stats.norm.ppf((k + 1) / (r + 1))
            out.append(float(t[k - 1] + (q - qk) / (qk1 - qk) * (t[k] - t[k - 1])))
    return out[0], out[1]


def _resample_rows(codes: np.ndarray, n_boot: int, seed: int):
    """For each replicate, the row indices of ``len(clusters)`` clusters drawn with replacement."""
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        pick = rng.integers(0, counts.size, counts.size)
        sizes = counts[pick]
        offsets = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        yield order[np.repeat(starts[pick], sizes) + offsets]


def _summarise(estimate: float, reps: np.ndarray, n_boot: int, conf_level: float) -> dict[str, Any]:
    ok = np.isfinite(reps)
    se = float(np.std(reps[ok], ddof=1)) if ok.sum() > 1 else np.nan
    lower, upper = bootstrap_percentile_ci(reps[ok], conf_level)
    p = float(2 * stats.norm.sf(abs(estimate) / se)) if se and se > 0 else np.nan
    return {"estimate": estimate, "se": se, "lower": lower, "upper": upper, "p": p, "n_boot": int(n_boot),
            "n_failed": int((~ok).sum()), "replicates": reps}


def cluster_bootstrap(df: pd.DataFrame, cluster_col: str, statistic: Callable[[pd.DataFrame], float],
                      n_boot: int = 2000, seed: int = 0, conf_level: float = 0.95) -> dict[str, Any]:
    """Bootstrap of ``statistic(df)`` resampling whole clusters of ``cluster_col`` with replacement (seeded numpy
    generator): {estimate (on the data), se (SD of the replicates, n - 1), lower, upper (percentile,
    ``bootstrap_percentile_ci``), p (two-sided Wald with the bootstrap se), n_boot, n_failed (replicates where the
    statistic raised ValueError or was not finite), replicates}."""
    if n_boot < 2:
        raise ValueError("n_boot must be >= 2")
    codes, _ = pd.factorize(df[cluster_col])
    if (codes < 0).any():
        raise ValueError(f"'{cluster_col}' has missing values")
    reps = np.full(n_boot, np.nan)
    for b, rows in enumerate(_resample_rows(codes, n_boot, seed)):
        try:
            reps[b] = statistic(df.iloc[rows])
        except ValueError:
            pass
    return _summarise(float(statistic(df)), reps, n_boot, conf_level)


def _km_area(t: np.ndarray, e: np.ndarray, tau: float) -> float:
    """Area under the Kaplan-Meier curve on [0, tau] (survRM2's rmst1 estimate)."""
    c = km_counts(t, e, np.ones(t.size))
    keep = c.time <= tau
    grid = np.append(c.time[keep], tau)
    return float(np.sum(np.diff(np.concatenate([[0.0], grid])) * np.concatenate([[1.0], c.surv[keep]])))


def rmst_difference_cluster_bootstrap(time: Any, event: Any, group: Any, cluster: Any, tau: float,
                                      treatment: Any, n_boot: int = 2000, seed: int = 0,
                                      conf_level: float = 0.95) -> dict[str, Any]:
    """RMST(tau) of ``treatment`` minus that of the other group, with a bootstrap over ``cluster`` (e.g. matched
    pairs): ``cluster_bootstrap``'s dict. tau must be one the data allow (``survRM2``'s rule, checked by the
    caller with ``stats.rmst.rmst_difference``); in a replicate whose curve ends before tau the last value of S is
    carried to tau."""
    t, e, _ = survival_data(time, event)
    arm1 = np.asarray(group, dtype=object) == treatment
    if arm1.all() or not arm1.any():
        raise ValueError("both groups are needed")
    if n_boot < 2:
        raise ValueError("n_boot must be >= 2")
    codes, _ = pd.factorize(pd.Series(np.asarray(cluster, dtype=object)))
    if (codes < 0).any():
        raise ValueError("cluster has missing values")

    def diff(rows: np.ndarray) -> float:
        a = arm1[rows]
        if a.all() or not a.any():
            return np.nan
        tt, ee = t[rows], e[rows]
        return _km_area(tt[a], ee[a], tau) - _km_area(tt[~a], ee[~a], tau)

    reps = np.array([diff(rows) for rows in _resample_rows(codes, n_boot, seed)])
    return _summarise(diff(np.arange(t.size)), reps, n_boot, conf_level)
