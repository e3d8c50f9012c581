"""Binary-outcome regression for a two-group comparison: logistic odds ratio (unadjusted, adjusted, weighted,
clustered), weighted proportions and risk difference, conditional logistic regression on matched sets.

Methods: docs/methods/binary-outcomes.md. Each function reproduces an R definition:

- :func:`design_matrix`: the covariate columns R's ``model.matrix`` builds with ``contr.treatment`` (first level
  in sorted order as reference), with the missing-indicator method or complete cases, and aliased (collinear)
  columns dropped as R's pivoting QR (``qr()``, tolerance 1e-7) gives them an NA coefficient.
- :func:`logistic_odds_ratio`: ``glm(y ~ treat + covariates, family = binomial, weights = w)``; model-based
  variance (``summary.glm``) without weights or clusters, otherwise the HC0 sandwich (``sandwich::vcovCL(type =
  "HC0", cadjust = FALSE)``, per unit or summed within clusters: GEE with an independence working correlation).
- :func:`weighted_rates` and :func:`weighted_risk_difference`: the weighted proportion per group and the
  coefficient of ``lm(y ~ treat, weights = w)`` (linear probability model) with the same HC0 sandwich. The
  weights are treated as known (the estimation of a propensity score is ignored), which is usually conservative
  for ATE weights (Lunceford & Davidian 2004).
- :func:`conditional_logit_odds_ratio`: ``survival::clogit(y ~ treat + strata(set))`` (statsmodels
  ``ConditionalLogit`` fitted by Newton-Raphson); in 1:1 pairs it equals the ratio of discordant pairs.

Every function takes a frame and column names: ``outcome_col`` holds 0/1, ``treat_col`` the 0/1 indicator of
the group whose odds (or proportion) is the numerator (1) versus the reference group (0). Wald CIs and p-values
throughout; numerical failures (separation, non-convergence) are reported in the estimate's ``note``.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis_utils.stats.binomial import clopper_pearson_ci, normal_quantile

__all__ = ["Estimate", "design_matrix", "sandwich_vcov", "logistic_odds_ratio", "weighted_rates",
           "weighted_risk_difference", "conditional_logit_odds_ratio"]


@dataclass
class Estimate:
    """One estimate with its CI (``measure`` names it: odds_ratio, risk_difference, a rate ...)."""

    measure: str
    estimate: float
    lower: float = float("nan")
    upper: float = float("nan")
    p: float = float("nan")
    se: float = float("nan")
    n: int = 0
    method: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _indicator(df: pd.DataFrame, treat_col: str) -> pd.Series:
    """The 0/1 group indicator as int; a missing column, a missing value or another value raises."""
    if treat_col not in df.columns:
        raise ValueError(f"treatment column {treat_col!r} is not in the data")
    t = pd.to_numeric(df[treat_col], errors="coerce")
    if t.isna().any() or not t.isin([0, 1]).all():
        raise ValueError(f"treatment column {treat_col!r} must be 0/1 without missing values")
    return t.astype(int)


# --------------------------------------------------------------------------------------------------------------------
# design matrix
# --------------------------------------------------------------------------------------------------------------------
def _fill_value(x: pd.Series, is_cat: bool) -> Any:
    """Median of a numeric covariate, mode of a categorical one (first level in sorted order on a tie)."""
    if not is_cat:
        return float(x.median())
    counts = x.value_counts()
    return sorted(counts[counts == counts.max()].index.tolist(), key=str)[0]


def design_matrix(df: pd.DataFrame, covariates: Sequence[str], categorical: Iterable[str] = (),
                  missing: str = "indicator") -> tuple[pd.DataFrame, pd.Series, list[str]]:
    """Covariate columns for a regression (no intercept): numeric and boolean as numbers, categorical (listed or
    non-numeric) as 0/1 dummies against the first level in sorted order (R ``contr.treatment``).

    ``missing="indicator"``: a missing value is filled with the median (numeric) or the mode (categorical) and a 0/1
    column ``<col>_missing`` is added (the missing-indicator method); ``"complete_case"``: rows with any missing
    covariate are dropped. Constant and collinear columns are dropped (R would give them NA). Returns the
    matrix (rows kept), the boolean mask of rows kept, and notes on what was done.
    """
    if missing not in ("indicator", "complete_case"):
        raise ValueError(f"missing must be 'indicator' or 'complete_case', got {missing!r}")
    absent = [c for c in covariates if c not in df.columns]
    if absent:
        raise ValueError(f"adjustment covariate(s) not in the data: {absent}")
    categorical = set(categorical)
    keep = pd.Series(True, index=df.index)
    if missing == "complete_case" and len(covariates):
        keep = ~df[list(covariates)].isna().any(axis=1)
    data = df.loc[keep]
    cols: dict[str, pd.Series] = {}
    notes: list[str] = []
    if missing == "complete_case" and (~keep).any():
        notes.append(f"{int((~keep).sum())} patient(s) with a missing covariate excluded (complete case)")
    for col in covariates:
        x = data[col]
        is_cat = col in categorical or not (pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x))
        miss = x.isna()
        if miss.all():
            notes.append(f"{col}: entirely missing, dropped")
            continue
        if miss.any():
            fill = _fill_value(x.dropna(), is_cat)
            x = x.astype("object").where(~miss, fill) if is_cat else x.astype("Float64").fillna(fill)
            notes.append(f"{col}: {int(miss.sum())} missing filled with the {'mode' if is_cat else 'median'} "
                         f"({fill!r}) + indicator {col}_missing")
        if is_cat:
            levels = sorted(x.unique().tolist(), key=str)
            for lev in levels[1:]:
                cols[f"{col}[{lev}]"] = (x == lev).astype(float)
        else:
            cols[col] = x.astype("Float64").astype(float)
        if miss.any():
            cols[f"{col}_missing"] = miss.astype(float)
    X = pd.DataFrame(cols, index=data.index)
    kept: list[str] = []
    q = np.ones((len(X), 1)) / np.sqrt(max(len(X), 1))  # orthonormal basis of the kept columns, intercept first
    for name in X.columns:
        col = X[name].to_numpy(dtype=float)
        resid = col - q @ (q.T @ col)
        if X[name].nunique() < 2:
            notes.append(f"{name}: constant, dropped")
        elif np.linalg.norm(resid) < 1e-7 * np.linalg.norm(col):  # R's qr() tolerance: aliased column
            notes.append(f"{name}: collinear with earlier columns, dropped")
        else:
            kept.append(name)
            q = np.column_stack([q, resid / np.linalg.norm(resid)])
    return X[kept], keep, notes


# --------------------------------------------------------------------------------------------------------------------
# sandwich variance
# --------------------------------------------------------------------------------------------------------------------
def sandwich_vcov(X: np.ndarray, resid: np.ndarray, w: np.ndarray, bread_w: np.ndarray,
                  cluster: np.ndarray | None) -> np.ndarray:
    """HC0 sandwich A⁻¹ B A⁻¹ with A = X' diag(bread_w) X and B = Σ_clusters (Σ_i w_i r_i x_i)(Σ_i w_i r_i x_i)'
    (each row its own cluster when ``cluster`` is None); R ``sandwich::vcovCL(type = "HC0", cadjust = FALSE)``.
    For a GLM, ``bread_w`` = w·μ(1-μ) (logit) or w (identity link) and ``resid`` = y - μ."""
    A = X.T @ (X * bread_w[:, None])
    U = X * (w * resid)[:, None]
    if cluster is not None:
        U = pd.DataFrame(U).groupby(pd.Series(cluster).to_numpy(), sort=True).sum().to_numpy()
    A_inv = np.linalg.inv(A)
    return A_inv @ (U.T @ U) @ A_inv


def _weights_and_cluster(df: pd.DataFrame, weights_col: str | None,
                         cluster_col: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    w = np.ones(len(df))
    if weights_col is not None:
        if weights_col not in df.columns:
            raise ValueError(f"weights column {weights_col!r} is not in the data")
        w = pd.to_numeric(df[weights_col], errors="coerce").to_numpy(dtype=float)
        if np.isnan(w).any() or (w < 0).any():
            raise ValueError(f"weights column {weights_col!r} must be non-negative and non-missing")
    cluster = None
    if cluster_col is not None:
        if cluster_col not in df.columns:
            raise ValueError(f"cluster column {cluster_col!r} is not in the data")
        if df[cluster_col].isna().any():
            raise ValueError(f"cluster column {cluster_col!r} has missing values")
        cluster = df[cluster_col].to_numpy()
    return w, cluster


# --------------------------------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------------------------------
def logistic_odds_ratio(df: pd.DataFrame, outcome_col: str, treat_col: str, covariates: Sequence[str] = (),
                        categorical: Iterable[str] = (), missing: str = "indicator", weights_col: str | None = None,
                        cluster_col: str | None = None, conf_level: float = 0.95) -> Estimate:
    """Odds ratio of group 1 vs group 0 of ``treat_col`` from ``glm(y ~ treat + covariates, family = binomial,
    weights = w)``; ``measure`` is "odds_ratio", or "odds_ratio_adjusted" with covariates.

    Variance: model-based (R ``summary.glm``) when there are neither weights nor clusters; otherwise the HC0
    sandwich (per unit, or summed within ``cluster_col``, e.g. the matched pair: GEE with independence working
    correlation). Wald CI and p. Fitting problems (separation, non-convergence) are reported in ``note``.
    """
    import statsmodels.api as sm

    y_all = pd.to_numeric(df[outcome_col], errors="coerce")
    if y_all.isna().any() or not y_all.isin([0, 1]).all():
        raise ValueError(f"outcome column {outcome_col!r} must be 0/1 without missing values")
    treat = _indicator(df, treat_col)
    X_cov, keep, notes = design_matrix(df, covariates, categorical, missing)
    data = df.loc[keep]
    w, cluster = _weights_and_cluster(data, weights_col, cluster_col)
    X = np.column_stack([np.ones(keep.sum()), treat[keep].to_numpy(float), X_cov.to_numpy(float)])
    y = y_all[keep].to_numpy(float)
    robust = weights_col is not None or cluster_col is not None
    method = "logistic regression" + (f", adjusted for {len(X_cov.columns)} design column(s)" if len(covariates) else "")
    method += (", HC0 sandwich SE" + (f" clustered by {cluster_col}" if cluster_col else "")) if robust else ", model SE"
    est = Estimate("odds_ratio_adjusted" if len(covariates) else "odds_ratio", np.nan, n=int(keep.sum()), method=method)
    if len(np.unique(y)) < 2 or treat[keep].nunique() < 2:
        est.note = "not estimable: outcome or arm constant"
        return est
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = sm.GLM(y, X, family=sm.families.Binomial(), var_weights=w).fit(maxiter=100)
        except Exception as exc:  # noqa: BLE001 - numerical failure is reported, not raised
            est.note = f"not estimable: {type(exc).__name__}: {exc}"
            return est
    beta = np.asarray(res.params)
    mu = np.clip(np.asarray(res.fittedvalues), 1e-12, 1 - 1e-12)
    cov = sandwich_vcov(X, y - mu, w, w * mu * (1 - mu), cluster) if robust else np.asarray(res.cov_params())
    se = float(np.sqrt(cov[1, 1]))
    z = normal_quantile(conf_level)
    est.estimate = float(np.exp(beta[1]))
    est.lower, est.upper = float(np.exp(beta[1] - z * se)), float(np.exp(beta[1] + z * se))
    est.p, est.se = float(2 * stats.norm.sf(abs(beta[1] / se))), se
    problems = sorted({f"{c.category.__name__}" for c in caught if "Separation" in c.category.__name__
                       or "Convergence" in c.category.__name__})
    if ((mu < 1e-8) | (mu > 1 - 1e-8)).any() or not getattr(res, "converged", True):
        Xc = X_cov.to_numpy(float)
        pure = [name for j, name in enumerate(X_cov.columns)  # 0/1 column whose '1' rows all share one outcome
                if set(np.unique(Xc[:, j])) <= {0.0, 1.0} and len(np.unique(y[Xc[:, j] == 1])) == 1]
        problems.append("fitted probabilities at 0 or 1: (quasi-)separation"
                        + (f" on {', '.join(pure)} (one outcome only); that coefficient is not estimable" if pure else ""))
    est.note = "; ".join(notes + problems)
    return est


def weighted_rates(df: pd.DataFrame, outcome_col: str, treat_col: str, weights_col: str | None = None,
                   conf_level: float = 0.95,
                   measures: tuple[str, str] = ("rate_treated", "rate_control")) -> list[Estimate]:
    """Proportion of ``outcome_col`` in group 1, then group 0 of ``treat_col`` (named by ``measures``). Unit (or
    no) weights: k/n with the exact Clopper-Pearson CI (R ``binom.test``). Other weights: weighted proportion
    Σw·y/Σw with the HC0 Wald CI, var = Σ w²(y - p)² / (Σw)² (the sandwich variance of ``lm(y ~ 1, weights =
    w)``), clipped to [0, 1]. Units with weight 0 are left out."""
    y = pd.to_numeric(df[outcome_col]).to_numpy(float)
    treat = _indicator(df, treat_col).to_numpy()
    w, _ = _weights_and_cluster(df, weights_col, None)
    unit = bool(np.all(w[w > 0] == 1.0))
    out = []
    for measure, flag in zip(measures, (1, 0)):
        sel = (treat == flag) & (w > 0)
        if not sel.any():
            out.append(Estimate(measure, np.nan, n=0, note="no patient in this arm"))
            continue
        if unit:
            k, n = int(y[sel].sum()), int(sel.sum())
            lo, hi = clopper_pearson_ci(k, n, conf_level)
            out.append(Estimate(measure, k / n, lo, hi, n=n, method="proportion, exact Clopper-Pearson CI"))
            continue
        W = w[sel].sum()
        p = float((w[sel] * y[sel]).sum() / W)
        se = float(np.sqrt((w[sel] ** 2 * (y[sel] - p) ** 2).sum()) / W)
        z = normal_quantile(conf_level)
        out.append(Estimate(measure, p, max(0.0, p - z * se), min(1.0, p + z * se), se=se, n=int(sel.sum()),
                            method="weighted proportion, HC0 Wald CI"))
    return out


def weighted_risk_difference(df: pd.DataFrame, outcome_col: str, treat_col: str, weights_col: str | None = None,
                             cluster_col: str | None = None, conf_level: float = 0.95) -> Estimate:
    """Risk difference (weighted proportion of group 1 minus group 0) = the treatment coefficient of the weighted
    linear probability model ``lm(y ~ treat, weights = w)``, with the HC0 sandwich variance per unit or clustered
    by ``cluster_col`` (matched pair; ``sandwich::vcovCL(type = "HC0", cadjust = FALSE)``). Wald CI and p."""
    y = pd.to_numeric(df[outcome_col]).to_numpy(float)
    treat = _indicator(df, treat_col).to_numpy(float)
    w, cluster = _weights_and_cluster(df, weights_col, cluster_col)
    est = Estimate("risk_difference", np.nan, n=int((w > 0).sum()),
                   method="weighted linear probability model, HC0 sandwich SE"
                          + (f" clustered by {cluster_col}" if cluster_col else ""))
    if len(np.unique(treat[w > 0])) < 2:
        est.note = "not estimable: one arm only"
        return est
    X = np.column_stack([np.ones(len(y)), treat])
    beta = np.linalg.solve(X.T @ (X * w[:, None]), X.T @ (w * y))
    cov = sandwich_vcov(X, y - X @ beta, w, w, cluster)
    se = float(np.sqrt(cov[1, 1]))
    z = normal_quantile(conf_level)
    est.estimate, est.se = float(beta[1]), se
    est.lower, est.upper = float(beta[1] - z * se), float(beta[1] + z * se)
    est.p = float(2 * stats.norm.sf(abs(beta[1] / se))) if se > 0 else float("nan")
    return est


def conditional_logit_odds_ratio(df: pd.DataFrame, outcome_col: str, group_col: str, treat_col: str,
                                 conf_level: float = 0.95) -> Estimate:
    """Conditional odds ratio of group 1 vs group 0 of ``treat_col`` from conditional logistic regression on the
    matched sets ``group_col`` (R ``survival::clogit(y ~ treat + strata(group))``; statsmodels
    ``ConditionalLogit``). In 1:1 pairs it equals n10/n01 (discordant pairs: treated with the outcome / control
    without, and the reverse) with SE sqrt(1/n10 + 1/n01). Sets without discordance carry no information and are
    dropped (counted in ``note``). Wald CI and p."""
    from statsmodels.discrete.conditional_models import ConditionalLogit

    y = pd.to_numeric(df[outcome_col]).to_numpy(float)
    treat = _indicator(df, treat_col).to_numpy(float)
    if group_col not in df.columns or df[group_col].isna().any():
        raise ValueError(f"matched-set column {group_col!r} must be present and non-missing")
    groups = df[group_col].to_numpy()
    g = pd.DataFrame({"g": groups, "y": y, "t": treat})
    sets = g.groupby("g").agg(vy=("y", "nunique"), vt=("t", "nunique"))
    informative = sets.index[(sets.vy > 1) & (sets.vt > 1)]
    est = Estimate("odds_ratio_conditional", np.nan, n=len(df), method="conditional logistic regression (matched sets)",
                   note=f"{len(informative)} of {len(sets)} matched sets informative (discordant)")
    if len(informative) == 0:
        est.note += "; not estimable"
        return est
    inf = g[g["g"].isin(informative)]
    means = inf.groupby(["g", "t"])["y"].mean().unstack("t")
    direction = np.sign(means[1.0] - means[0.0])
    if (direction > 0).all() or (direction < 0).all():  # monotone likelihood: R clogit warns "beta may be infinite"
        est.note += "; all informative sets favour one arm: the odds ratio is infinite (not estimable)"
        return est
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ConditionalLogit(y, treat[:, None], groups=groups).fit(disp=0, method="newton")  # default BFGS stops early
    b, se = float(np.asarray(res.params)[0]), float(np.asarray(res.bse)[0])
    if np.abs(res.model.score(np.asarray(res.params))).max() > 1e-4:  # ConditionalResults has no converged flag
        est.note += "; did not converge (score not zero at the estimate)"
    z = normal_quantile(conf_level)
    est.estimate, est.se = float(np.exp(b)), se
    est.lower, est.upper = float(np.exp(b - z * se)), float(np.exp(b + z * se))
    est.p = float(2 * stats.norm.sf(abs(b / se)))
    return est
