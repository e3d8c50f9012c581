"""Multiple imputation: Rubin's rules for scalar estimates as R ``mice::pool`` / ``mice::pool.scalar`` define them,
the "within" approach (run one analysis on every imputed data set, in parallel workers) and cobalt's summary of a
statistic across imputations.

Definitions reproduced (mice 3.15-3.17, ``R/pool.R``, ``R/pool.vector.R``, ``R/pool.scalar.R``,
``R/barnard.rubin.R``, ``summary.mipo``); method page: docs/methods/missing-data.md. For m estimates Q_l with
variances U_l (squared standard errors; mice uses the robust SE when the fit has one):

- qbar = mean(Q); ubar = mean(U); b = var(Q) (divisor m - 1); t = ubar + (1 + 1/m) b       (Rubin 1987, 3.1.2-5)
- riv = (1 + 1/m) b / ubar  (relative increase in variance, mice ``riv`` / ``pool.scalar``'s ``r``)
- lambda = (1 + 1/m) b / t  (proportion of the total variance due to missingness)
- Barnard-Rubin degrees of freedom (Barnard & Rubin 1999): lambda floored at 1e-4,
  df_old = (m - 1) / lambda^2, df_obs = (dfcom + 1) / (dfcom + 3) dfcom (1 - lambda),
  df = df_old df_obs / (df_old + df_obs); with an infinite dfcom (large sample), df = df_old (mice >= 3.16;
  older mice used dfcom = 999999 instead of infinity, which differs in the 6th digit at most).
- fmi = (riv + 2 / (df + 3)) / (riv + 1)  (Rubin 1987, 3.1.10)
- ``summary.mipo``: SE = sqrt(t), statistic = qbar / SE, p = 2 P(T_df > |statistic|), CI qbar +/- t_{df, 1-a/2} SE.
- dfcom: ``pool.scalar(n, k)`` uses n - k; ``pool`` takes glance()'s ``df.residual`` (lm, glm) or nobs minus the
  number of coefficients (e.g. coxph), else a large sample. Callers pass it per term.

The "within" approach (R MatchThem's ``weightthem``/``matchthem`` then ``with`` and ``pool``; Leyrat et al. 2019,
Granger et al. 2019): the whole analysis (propensity score, matching or weighting, outcome model) is repeated in
each completed data set and only the final estimates are pooled. ``run_within`` runs a picklable callable on each
data set in worker processes (joblib/loky, workers reused across calls) and returns the results in imputation
order, so the output does not depend on the number of workers.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

__all__ = ["LAMBDA_FLOOR", "barnard_rubin", "pool_scalar", "pool", "run_within", "summarise_across"]

LAMBDA_FLOOR = 1e-4  # mice's barnard.rubin floors lambda here so that df stays finite when b = 0
POOL_COLUMNS = ["term", "m", "estimate", "ubar", "b", "t", "dfcom", "df", "riv", "lambda", "fmi", "std_error",
                "statistic", "p_value", "conf_low", "conf_high"]


def barnard_rubin(m: int, b: float, t: float, dfcom: float = math.inf) -> float:
    """Barnard-Rubin (1999) degrees of freedom, mice ``barnard.rubin(m, b, t, dfcom)``: lambda = (1 + 1/m) b / t
    floored at 1e-4; (m - 1) / lambda^2 combined with the observed-data df (dfcom + 1)/(dfcom + 3) dfcom (1 -
    lambda) as df_old df_obs / (df_old + df_obs); an infinite dfcom gives df_old."""
    if m < 2:
        raise ValueError(f"Barnard-Rubin df needs m >= 2 imputations, got {m}")
    if not (t > 0):
        return float("nan")
    lam = max((1 + 1 / m) * b / t, LAMBDA_FLOOR)
    dfold = (m - 1) / lam ** 2
    if math.isinf(dfcom):
        return float(dfold)
    if dfcom <= 0:
        raise ValueError(f"dfcom must be positive, got {dfcom}")
    dfobs = (dfcom + 1) / (dfcom + 3) * dfcom * (1 - lam)
    return float(dfold * dfobs / (dfold + dfobs))


def pool_scalar(q: Sequence[float], u: Sequence[float], n: float = math.inf, k: int = 1) -> dict[str, Any]:
    """Rubin's rules for one scalar, R ``mice::pool.scalar(Q, U, n, k)`` (rule "rubin1987"): returns m, qhat, u,
    qbar, ubar, b, t, df (Barnard-Rubin with dfcom = n - k), r (relative increase in variance), fmi and, as
    mice's ``pool``, lambda."""
    q_arr, u_arr = np.asarray(q, dtype=float), np.asarray(u, dtype=float)
    if q_arr.shape != u_arr.shape or q_arr.ndim != 1:
        raise ValueError("Q and U must be 1-D and of the same length")
    m = q_arr.size
    if m < 2:
        raise ValueError(f"pooling needs m >= 2 estimates, got {m}")
    if not (np.isfinite(q_arr).all() and np.isfinite(u_arr).all()) or (u_arr < 0).any():
        raise ValueError("Q and U must be finite, U non-negative")
    qbar, ubar, b = float(q_arr.mean()), float(u_arr.mean()), float(q_arr.var(ddof=1))
    r = (1 + 1 / m) * b / ubar if ubar > 0 else float("inf")
    t = ubar + (m + 1) * b / m
    df = barnard_rubin(m, b, t, dfcom=n - k)
    fmi = (r + 2 / (df + 3)) / (r + 1) if math.isfinite(r) else 1.0
    return {"m": m, "qhat": q_arr, "u": u_arr, "qbar": qbar, "ubar": ubar, "b": b, "t": t, "df": df, "r": r,
            "lambda": (1 + 1 / m) * b / t if t > 0 else float("nan"), "fmi": fmi}


def _pool_one(est: np.ndarray, se: np.ndarray, dfcom: float, conf_level: float) -> dict[str, float]:
    ok = np.isfinite(est) & np.isfinite(se)
    est, se = est[ok], se[ok]
    m = int(est.size)
    out = dict.fromkeys(POOL_COLUMNS[1:], float("nan"))
    out.update({"m": m, "dfcom": dfcom})
    if m < 2:
        return out
    p = pool_scalar(est, se ** 2, n=dfcom + 1 if math.isfinite(dfcom) else math.inf, k=1)
    sd = math.sqrt(p["t"])
    stat = p["qbar"] / sd if sd > 0 else float("nan")
    crit = float(sps.t.ppf(1 - (1 - conf_level) / 2, p["df"])) if math.isfinite(p["df"]) else float("nan")
    out.update({"estimate": p["qbar"], "ubar": p["ubar"], "b": p["b"], "t": p["t"], "df": p["df"], "riv": p["r"],
                "lambda": p["lambda"], "fmi": p["fmi"], "std_error": sd, "statistic": stat,
                "p_value": float(2 * sps.t.sf(abs(stat), p["df"])) if math.isfinite(stat) else float("nan"),
                "conf_low": p["qbar"] - crit * sd, "conf_high": p["qbar"] + crit * sd})
    return out


def pool(estimates: pd.DataFrame, *, term_col: str = "term", estimate_col: str = "estimate",
         se_col: str = "std_error", dfcom: float | str | None = None, conf_level: float = 0.95) -> pd.DataFrame:
    """Rubin's rules per term of a long table of per-imputation estimates, R ``summary(mice::pool(fit),
    conf.int = TRUE)``: one row per term (in order of first appearance) with m, estimate (qbar), ubar, b, t,
    dfcom, df (Barnard-Rubin), riv, lambda, fmi, std_error = sqrt(t), statistic, p_value (t on df) and the
    conf_level CI (t quantile on df).

    ``dfcom``: a number for every term; the name of a column of ``estimates`` holding it per row (the first value
    of each term is used, as mice takes it from the first fit); None for a large sample (infinite). Rows whose
    estimate or SE is not finite (the analysis failed in that imputation) are left out of that term's pooling and
    ``m`` says how many were pooled; fewer than 2 gives NaN."""
    need = [term_col, estimate_col, se_col] + ([dfcom] if isinstance(dfcom, str) else [])
    absent = [c for c in need if c not in estimates.columns]
    if absent:
        raise ValueError(f"pool: column(s) not in the estimates: {absent}")
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be in (0, 1), got {conf_level}")
    rows = []
    for term, g in estimates.groupby(term_col, sort=False):
        if isinstance(dfcom, str):
            d = float(g[dfcom].iloc[0])
        else:
            d = math.inf if dfcom is None else float(dfcom)
        rows.append({"term": term, **_pool_one(g[estimate_col].to_numpy(dtype=float),
                                               g[se_col].to_numpy(dtype=float), d, conf_level)})
    return pd.DataFrame(rows, columns=POOL_COLUMNS)


def run_within(datasets: Sequence[Any], analysis: Callable[..., Any], *, workers: int = 1,
               progress: Callable[[int, int], None] | None = None, **kwargs: Any) -> list[Any]:
    """``[analysis(d, **kwargs) for d in datasets]``, computed in up to ``workers`` processes (joblib's loky
    backend, whose workers are reused across calls). Results come back in the order of ``datasets`` whatever the
    number of workers, so seeded analyses give the same numbers serially and in parallel. ``analysis`` must be
    picklable (a module-level function or a ``functools.partial`` of one). ``progress(done, total)`` is called after
    each result in order. A worker's exception is raised here with its original type."""
    from threadpoolctl import threadpool_limits

    total = len(datasets)
    if workers is None or workers <= 1 or total <= 1:
        out = []
        with threadpool_limits(1):  # small matrices: BLAS threads only contend
            for i, d in enumerate(datasets, 1):
                out.append(analysis(d, **kwargs))
                if progress:
                    progress(i, total)
        return out
    from joblib import Parallel, delayed

    # loky limits each worker's BLAS / OpenMP threads to cpu_count // workers
    gen = Parallel(n_jobs=int(workers), backend="loky", return_as="generator")(
        delayed(analysis)(d, **kwargs) for d in datasets)
    out = []
    for i, res in enumerate(gen, 1):
        out.append(res)
        if progress:
            progress(i, total)
    return out


def summarise_across(frame: pd.DataFrame, by: Sequence[str], columns: Sequence[str],
                     imp_col: str = ".imp") -> pd.DataFrame:
    """A statistic computed in every imputed data set summarised across them as cobalt's ``bal.tab`` does for
    imputed data ("Balance summary across all imputations"): per group of ``by``, the minimum, mean and maximum
    of each column (``<col>_min``, ``<col>_mean``, ``<col>_max``; absolute values are the caller's choice, cobalt
    uses |SMD| for min/max) and the number of imputations ``n_imp``."""
    absent = [c for c in [*by, *columns, imp_col] if c not in frame.columns]
    if absent:
        raise ValueError(f"summarise_across: column(s) not in the frame: {absent}")
    g = frame.groupby(list(by), sort=False)
    parts = [g[imp_col].nunique().rename("n_imp")]
    for c in columns:
        parts += [g[c].min().rename(f"{c}_min"), g[c].mean().rename(f"{c}_mean"), g[c].max().rename(f"{c}_max")]
    return pd.concat(parts, axis=1).reset_index()
