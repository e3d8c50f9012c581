"""Tumour response endpoints: ORR and DCR per arm, between-arm comparisons, RECIST 1.1 versus mRECIST agreement.

Input is the analysis cohort of ``01_cleaning`` (``cohort.parquet``: one row per eligible patient with ``arm`` and the
best overall responses ``bor_<criterion>`` (unconfirmed, the main definition) and ``bor_<criterion>_confirmed``
(sensitivity), derived by :mod:`analysis_utils.recist`). Conventions (clinical-rules.md §1.6):

- ORR = (CR + PR) / N and DCR = (CR + PR + SD) / N, where **N = all patients of the analysis cohort in that arm**.
  NE (not evaluable: no measurable target, no post-baseline scan, SD too early, unconfirmed CR/PR ...) counts as a
  non-responder and stays in the denominator; a missing best response is read as NE.
- One proportion: exact Clopper-Pearson CI (beta quantiles; R ``binom.test``, scipy ``binomtest(...).proportion_ci
  (method="exact")``).
- Risk difference (HAIC-TKIs-P minus TKIs-P): Newcombe (1998) method 10, the hybrid score interval built from the two
  Wilson score intervals without continuity correction (R ``contingencytables::Newcombe_hybrid_score_CI_2x2``,
  ``DescTools::BinomDiffCI(method = "score")``).
- Odds ratio: unadjusted with the Woolf (logit) CI; adjusted by logistic regression (R ``glm(family = binomial)``).
- Test of the 2 x 2 table: Pearson chi-square without continuity correction (R ``chisq.test(correct = FALSE)``) when
  every expected count is >= 5, otherwise Fisher's exact test (two-sided, R ``fisher.test``).
- Matched cohort: conditional logistic regression on the matched sets (R ``survival::clogit``; statsmodels
  ``ConditionalLogit``) and logistic regression / linear risk difference with matching weights and a cluster-robust
  sandwich variance with the pair as cluster (GEE with independence working correlation).
- Weighted cohort: weighted proportions, risk difference and odds ratio with the HC0 sandwich variance (R
  ``sandwich::vcovCL(type = "HC0", cadjust = FALSE)``, per patient); it treats the weights as known (ignores the
  estimation of the propensity score), which is usually conservative for ATE weights (Lunceford & Davidian 2004).
- Agreement: Cohen's unweighted kappa (sklearn ``cohen_kappa_score``) with the large-sample non-null standard error of
  Fleiss, Cohen & Everitt (1969), as SAS PROC FREQ (AGREE); Wald CI kappa +/- z * ASE.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis_utils.reporting import tables

__all__ = [
    "RESPONSE_LEVELS", "ENDPOINTS", "CRITERIA", "DEFINITIONS", "TREATMENT_ARM", "CONTROL_ARM",
    "ResponseConfig", "Estimate", "ResponseAnalysis", "DesignInputs",
    "bor_column", "responder", "response_counts", "clopper_pearson_ci", "wilson_ci", "rate_by_arm",
    "newcombe_risk_difference", "woolf_odds_ratio", "two_by_two_test", "design_matrix", "logistic_odds_ratio",
    "weighted_rates", "weighted_risk_difference", "conditional_logit_odds_ratio", "cohen_kappa", "agreement_table",
    "load_design_inputs", "matched_cohort", "weighted_cohort", "compare_arms", "compare_matched", "compare_weighted",
    "response_table", "format_models", "analyse_response", "waterfall_data", "spider_data",
]

RESPONSE_LEVELS = ("CR", "PR", "SD", "PD", "NE")
ENDPOINTS = {"orr": ("CR", "PR"), "dcr": ("CR", "PR", "SD")}
CRITERIA = ("recist", "mrecist")
CRITERION_LABELS = {"recist": "RECIST 1.1", "mrecist": "mRECIST"}
DEFINITIONS = ("unconfirmed", "confirmed")
TREATMENT_ARM, CONTROL_ARM = "HAIC-TKIs-P", "TKIs-P"
DAYS_PER_MONTH = 365.25 / 12
MATCHED_COLUMNS = ("study_id", "subclass", "match_weight")
WEIGHT_COLUMNS = ("study_id", "arm", "ps", "logit_ps", "w_iptw_ate", "w_iptw_att", "w_overlap")
# short names of the measures in the flat results keys
MEASURE_KEYS = {"rate_haic": "haic", "rate_control": "control", "risk_difference": "rd", "odds_ratio": "or",
                "odds_ratio_adjusted": "or_adj", "odds_ratio_conditional": "or_clogit", "test": "p"}


def _z(conf_level: float) -> float:
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be in (0, 1), got {conf_level}")
    return float(stats.norm.ppf(1 - (1 - conf_level) / 2))


# --------------------------------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResponseConfig:
    """The ``response:`` section of the params file (plus the run's ``seed``)."""

    primary_definition: str = "unconfirmed"
    conf_level: float = 0.95
    adjust_covariates: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    missing: str = "indicator"
    weight_column: str = "w_iptw_ate"
    spider_n_per_arm: int = 40
    waterfall_cap_pct: float = 100.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.primary_definition not in DEFINITIONS:
            raise ValueError(f"response.primary_definition must be one of {DEFINITIONS}, got {self.primary_definition!r}")
        if self.missing not in ("indicator", "complete_case"):
            raise ValueError(f"response.missing must be 'indicator' or 'complete_case', got {self.missing!r}")
        _z(self.conf_level)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "ResponseConfig":
        sec = dict(params.get("response", {}))
        known = {f for f in cls.__dataclass_fields__ if f != "seed"}
        unknown = set(sec) - known
        if unknown:
            raise ValueError(f"unknown key(s) in the response section: {sorted(unknown)}")
        for key in ("adjust_covariates", "categorical"):
            if key in sec:
                sec[key] = tuple(sec[key] or ())
        return cls(**sec, seed=int(params.get("seed", 0)))

    @property
    def definitions(self) -> tuple[str, str]:
        """Primary definition first, then the sensitivity one."""
        other = [d for d in DEFINITIONS if d != self.primary_definition][0]
        return self.primary_definition, other


# --------------------------------------------------------------------------------------------------------------------
# per-patient response
# --------------------------------------------------------------------------------------------------------------------
def bor_column(criterion: str, definition: str = "unconfirmed") -> str:
    """Cohort column of the best overall response: ``bor_recist`` or ``bor_recist_confirmed`` (same for mrecist)."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    if definition not in DEFINITIONS:
        raise ValueError(f"definition must be one of {DEFINITIONS}, got {definition!r}")
    return f"bor_{criterion}" + ("_confirmed" if definition == "confirmed" else "")


def _bor_values(bor: pd.Series) -> pd.Series:
    """BOR as plain strings; missing -> "NE" (not evaluable); any label outside CR/PR/SD/PD/NE raises."""
    values = bor.astype("object").where(bor.notna(), "NE")
    bad = sorted(set(values) - set(RESPONSE_LEVELS), key=str)
    if bad:
        raise ValueError(f"best overall response column {bor.name!r} has labels outside {RESPONSE_LEVELS}: {bad}")
    return values


def responder(bor: pd.Series, endpoint: str) -> pd.Series:
    """1 if the best overall response counts for the endpoint (ORR: CR or PR; DCR: CR, PR or SD), else 0.
    NE and missing responses count as 0 (non-responder, kept in the denominator; rules file §1.6)."""
    if endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint must be one of {tuple(ENDPOINTS)}, got {endpoint!r}")
    return _bor_values(bor).isin(ENDPOINTS[endpoint]).astype(int)


def _treat(df: pd.DataFrame, arm_col: str) -> pd.Series:
    """1 for HAIC-TKIs-P, 0 for TKIs-P; any other or missing arm raises."""
    if arm_col not in df.columns:
        raise ValueError(f"arm column {arm_col!r} is not in the data")
    bad = sorted(set(df[arm_col].astype("object").fillna("<missing>")) - {TREATMENT_ARM, CONTROL_ARM})
    if bad:
        raise ValueError(f"arm column {arm_col!r} must hold {TREATMENT_ARM!r} or {CONTROL_ARM!r}; found {bad}")
    return (df[arm_col] == TREATMENT_ARM).astype(int)


def response_counts(df: pd.DataFrame, bor_col: str, arm_col: str = "arm") -> pd.DataFrame:
    """Counts of CR, PR, SD, PD, NE per arm (rows HAIC-TKIs-P, TKIs-P; column ``n`` = arm size; missing BOR = NE)."""
    if bor_col not in df.columns:
        raise ValueError(f"best-response column {bor_col!r} is not in the data")
    _treat(df, arm_col)
    bor = pd.Categorical(_bor_values(df[bor_col]), categories=RESPONSE_LEVELS)
    arm = pd.Categorical(df[arm_col], categories=[TREATMENT_ARM, CONTROL_ARM])
    counts = pd.crosstab(arm, bor, dropna=False).reindex(index=[TREATMENT_ARM, CONTROL_ARM],
                                                        columns=list(RESPONSE_LEVELS), fill_value=0)
    counts.index.name, counts.columns.name = "arm", None
    counts["n"] = counts.sum(axis=1)
    return counts


# --------------------------------------------------------------------------------------------------------------------
# one and two proportions
# --------------------------------------------------------------------------------------------------------------------
def _check_kn(k: int, n: int) -> None:
    if n <= 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")


def clopper_pearson_ci(k: int, n: int, conf_level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) CI of k/n from beta quantiles: lower = Beta(a/2; k, n-k+1), upper =
    Beta(1-a/2; k+1, n-k); 0 when k = 0 and 1 when k = n (R ``binom.test``)."""
    _check_kn(k, n)
    alpha = 1 - conf_level
    _z(conf_level)
    lower = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
    upper = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lower, upper


def wilson_ci(k: int, n: int, conf_level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval without continuity correction: (k + z²/2 ± z·sqrt(k(n-k)/n + z²/4)) / (n + z²)."""
    _check_kn(k, n)
    z = _z(conf_level)
    centre = k + z * z / 2
    half = z * np.sqrt(k * (n - k) / n + z * z / 4)
    return float((centre - half) / (n + z * z)), float((centre + half) / (n + z * z))


def rate_by_arm(df: pd.DataFrame, bor_col: str, endpoint: str, arm_col: str = "arm",
                conf_level: float = 0.95) -> pd.DataFrame:
    """ORR or DCR per arm with the exact Clopper-Pearson CI; denominator = all patients of the arm (NE included).
    Columns arm, n, events, rate, lower, upper."""
    y = responder(df[bor_col], endpoint)
    treat = _treat(df, arm_col)
    rows = []
    for arm, flag in ((TREATMENT_ARM, 1), (CONTROL_ARM, 0)):
        n, k = int((treat == flag).sum()), int(y[treat == flag].sum())
        lo, hi = clopper_pearson_ci(k, n, conf_level) if n else (np.nan, np.nan)
        rows.append({"arm": arm, "n": n, "events": k, "rate": k / n if n else np.nan, "lower": lo, "upper": hi})
    return pd.DataFrame(rows)


def newcombe_risk_difference(k1: int, n1: int, k0: int, n0: int,
                             conf_level: float = 0.95) -> tuple[float, float, float]:
    """p1 - p0 with Newcombe's (1998) method 10 hybrid score CI: with Wilson limits (l1, u1), (l0, u0),
    lower = d - sqrt((p1-l1)² + (u0-p0)²), upper = d + sqrt((u1-p1)² + (p0-l0)²)."""
    p1, p0 = k1 / n1 if n1 else np.nan, k0 / n0 if n0 else np.nan
    l1, u1 = wilson_ci(k1, n1, conf_level)
    l0, u0 = wilson_ci(k0, n0, conf_level)
    d = p1 - p0
    return float(d), float(d - np.hypot(p1 - l1, u0 - p0)), float(d + np.hypot(u1 - p1, p0 - l0))


def woolf_odds_ratio(k1: int, n1: int, k0: int, n0: int,
                     conf_level: float = 0.95) -> tuple[float, float, float, float, str]:
    """Unadjusted odds ratio (a·d)/(b·c) of the 2 x 2 table [[k1, n1-k1], [k0, n0-k0]] with the Woolf CI
    exp(log OR ± z·sqrt(1/a + 1/b + 1/c + 1/d)) and its Wald p. With a zero cell 0.5 is added to every cell
    (Haldane-Anscombe) and the note says so. Returns (or, lower, upper, p, note)."""
    _check_kn(k1, n1)
    _check_kn(k0, n0)
    cells = np.array([k1, n1 - k1, k0, n0 - k0], dtype=float)
    note = ""
    if (cells == 0).any():
        cells += 0.5
        note = "zero cell: 0.5 added to every cell (Haldane-Anscombe)"
    a, b, c, d = cells
    log_or = np.log(a * d / (b * c))
    se = np.sqrt((1 / cells).sum())
    z = _z(conf_level)
    p = float(2 * stats.norm.sf(abs(log_or / se)))
    return float(np.exp(log_or)), float(np.exp(log_or - z * se)), float(np.exp(log_or + z * se)), p, note


def two_by_two_test(k1: int, n1: int, k0: int, n0: int) -> tuple[float, str]:
    """P-value comparing k1/n1 with k0/n0: Pearson chi-square without continuity correction when every expected
    count is >= 5 (R ``chisq.test(correct = FALSE)``), otherwise Fisher's exact test (two-sided). Returns (p, test)."""
    _check_kn(k1, n1)
    _check_kn(k0, n0)
    table = np.array([[k1, n1 - k1], [k0, n0 - k0]], dtype=float)
    if (table.sum(axis=0) == 0).any():
        return float("nan"), "not testable (no responders or no non-responders)"
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    if (expected < 5).any():
        return float(stats.fisher_exact(table.astype(int))[1]), "Fisher exact"
    return float(stats.chi2_contingency(table, correction=False)[1]), "Pearson chi-square"


# --------------------------------------------------------------------------------------------------------------------
# regression models
# --------------------------------------------------------------------------------------------------------------------
@dataclass
class Estimate:
    """One estimate with its CI (``measure``: rate_haic, rate_control, risk_difference, odds_ratio, ...)."""

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
    column ``<col>_missing`` is added (as :mod:`analysis_utils.matching`); ``"complete_case"``: rows with any
    missing covariate are dropped. Constant and collinear columns are dropped (R would give them NA). Returns the
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


def _sandwich(X: np.ndarray, resid: np.ndarray, w: np.ndarray, bread_w: np.ndarray,
              cluster: np.ndarray | None) -> np.ndarray:
    """HC0 sandwich A⁻¹ B A⁻¹ with A = X' diag(bread_w) X and B = Σ_clusters (Σ_i w_i r_i x_i)(Σ_i w_i r_i x_i)'
    (each row its own cluster when ``cluster`` is None); R ``sandwich::vcovCL(type = "HC0", cadjust = FALSE)``."""
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


def logistic_odds_ratio(df: pd.DataFrame, outcome_col: str, arm_col: str = "arm", covariates: Sequence[str] = (),
                        categorical: Iterable[str] = (), missing: str = "indicator", weights_col: str | None = None,
                        cluster_col: str | None = None, conf_level: float = 0.95) -> Estimate:
    """Odds ratio HAIC-TKIs-P vs TKIs-P from ``glm(y ~ arm + covariates, family = binomial, weights = w)``.

    Variance: model-based (R ``summary.glm``) when there are neither weights nor clusters; otherwise the HC0
    sandwich (per patient, or summed within ``cluster_col``, e.g. the matched pair: GEE with independence working
    correlation). Wald CI and p. Fitting problems (separation, non-convergence) are reported in ``note``.
    """
    import statsmodels.api as sm

    y_all = pd.to_numeric(df[outcome_col], errors="coerce")
    if y_all.isna().any() or not y_all.isin([0, 1]).all():
        raise ValueError(f"outcome column {outcome_col!r} must be 0/1 without missing values")
    treat = _treat(df, arm_col)
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
    cov = _sandwich(X, y - mu, w, w * mu * (1 - mu), cluster) if robust else np.asarray(res.cov_params())
    se = float(np.sqrt(cov[1, 1]))
    z = _z(conf_level)
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


def weighted_rates(df: pd.DataFrame, outcome_col: str, arm_col: str = "arm", weights_col: str | None = None,
                   conf_level: float = 0.95) -> list[Estimate]:
    """Rate per arm. Unit (or no) weights: k/n with the exact Clopper-Pearson CI. Other weights: weighted
    proportion Σw·y/Σw with the HC0 Wald CI, var = Σ w²(y - p)² / (Σw)² (clipped to [0, 1])."""
    y = pd.to_numeric(df[outcome_col]).to_numpy(float)
    treat = _treat(df, arm_col).to_numpy()
    w, _ = _weights_and_cluster(df, weights_col, None)
    unit = bool(np.all(w[w > 0] == 1.0))
    out = []
    for measure, flag in (("rate_haic", 1), ("rate_control", 0)):
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
        z = _z(conf_level)
        out.append(Estimate(measure, p, max(0.0, p - z * se), min(1.0, p + z * se), se=se, n=int(sel.sum()),
                            method="weighted proportion, HC0 Wald CI"))
    return out


def weighted_risk_difference(df: pd.DataFrame, outcome_col: str, arm_col: str = "arm",
                             weights_col: str | None = None, cluster_col: str | None = None,
                             conf_level: float = 0.95) -> Estimate:
    """Risk difference (weighted proportion HAIC-TKIs-P minus TKIs-P) = the arm coefficient of the weighted linear
    probability model ``lm(y ~ arm, weights = w)``, with the HC0 sandwich variance per patient or clustered by
    ``cluster_col`` (matched pair). Wald CI and p."""
    y = pd.to_numeric(df[outcome_col]).to_numpy(float)
    treat = _treat(df, arm_col).to_numpy(float)
    w, cluster = _weights_and_cluster(df, weights_col, cluster_col)
    est = Estimate("risk_difference", np.nan, n=int((w > 0).sum()),
                   method="weighted linear probability model, HC0 sandwich SE"
                          + (f" clustered by {cluster_col}" if cluster_col else ""))
    if len(np.unique(treat[w > 0])) < 2:
        est.note = "not estimable: one arm only"
        return est
    X = np.column_stack([np.ones(len(y)), treat])
    beta = np.linalg.solve(X.T @ (X * w[:, None]), X.T @ (w * y))
    cov = _sandwich(X, y - X @ beta, w, w, cluster)
    se = float(np.sqrt(cov[1, 1]))
    z = _z(conf_level)
    est.estimate, est.se = float(beta[1]), se
    est.lower, est.upper = float(beta[1] - z * se), float(beta[1] + z * se)
    est.p = float(2 * stats.norm.sf(abs(beta[1] / se))) if se > 0 else float("nan")
    return est


def conditional_logit_odds_ratio(df: pd.DataFrame, outcome_col: str, group_col: str, arm_col: str = "arm",
                                 conf_level: float = 0.95) -> Estimate:
    """Conditional odds ratio from conditional logistic regression on matched sets (R ``clogit(y ~ arm +
    strata(group))``; statsmodels ``ConditionalLogit``). In 1:1 pairs it equals n10/n01 (discordant pairs: treated
    responder / control not, and the reverse) with SE sqrt(1/n10 + 1/n01). Sets without discordance carry no
    information and are dropped (counted in ``note``). Wald CI and p."""
    from statsmodels.discrete.conditional_models import ConditionalLogit

    y = pd.to_numeric(df[outcome_col]).to_numpy(float)
    treat = _treat(df, arm_col).to_numpy(float)
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
    z = _z(conf_level)
    est.estimate, est.se = float(np.exp(b)), se
    est.lower, est.upper = float(np.exp(b - z * se)), float(np.exp(b + z * se))
    est.p = float(2 * stats.norm.sf(abs(b / se)))
    return est


# --------------------------------------------------------------------------------------------------------------------
# agreement between criteria
# --------------------------------------------------------------------------------------------------------------------
def cohen_kappa(a: Sequence[Any], b: Sequence[Any], labels: Sequence[Any] = RESPONSE_LEVELS,
                conf_level: float = 0.95) -> dict[str, float]:
    """Unweighted Cohen's kappa of two ratings of the same patients (sklearn ``cohen_kappa_score``) and its CI
    kappa ± z·ASE, with the non-null large-sample ASE of Fleiss, Cohen & Everitt (1969) (SAS PROC FREQ AGREE):
    ASE² = [Σ_i p_ii (1 - (p_i. + p_.i)(1 - κ))² + (1 - κ)² Σ_{i≠j} p_ij (p_.i + p_j.)² - (κ - p_e (1 - κ))²]
           / (n (1 - p_e)²).
    Returns kappa, se, lower, upper, observed (p_o), expected (p_e) and n."""
    from sklearn.metrics import cohen_kappa_score

    a, b = pd.Series(list(a), dtype="object"), pd.Series(list(b), dtype="object")
    if len(a) != len(b) or len(a) == 0:
        raise ValueError("the two ratings must be non-empty and of equal length")
    bad = sorted((set(a) | set(b)) - set(labels), key=str)
    if bad:
        raise ValueError(f"ratings hold values outside labels {tuple(labels)}: {bad}")
    n = len(a)
    idx = {lab: i for i, lab in enumerate(labels)}
    table = np.zeros((len(labels), len(labels)))
    np.add.at(table, (a.map(idx).to_numpy(int), b.map(idx).to_numpy(int)), 1)
    p = table / n
    row, col = p.sum(axis=1), p.sum(axis=0)
    po, pe = float(np.trace(p)), float(row @ col)
    out = {"n": n, "observed": po, "expected": pe}
    if pe >= 1:
        return {**out, "kappa": np.nan, "se": np.nan, "lower": np.nan, "upper": np.nan}
    kappa = float(cohen_kappa_score(a, b, labels=list(labels)))
    diag = np.diag(p) * (1 - (row + col) * (1 - kappa)) ** 2
    off = p * (col[:, None] + row[None, :]) ** 2  # p_ij (p_.i + p_j.)²
    np.fill_diagonal(off, 0.0)
    var = (diag.sum() + (1 - kappa) ** 2 * off.sum() - (kappa - pe * (1 - kappa)) ** 2) / (n * (1 - pe) ** 2)
    se = float(np.sqrt(max(var, 0.0)))
    z = _z(conf_level)
    return {**out, "kappa": kappa, "se": se, "lower": kappa - z * se, "upper": kappa + z * se}


def agreement_table(df: pd.DataFrame, row_col: str, col_col: str,
                    labels: Sequence[str] = RESPONSE_LEVELS) -> pd.DataFrame:
    """Cross-tabulation of two best-response columns (rows ``row_col``, columns ``col_col``, missing = NE), with
    row and column totals."""
    r = pd.Categorical(_bor_values(df[row_col]), categories=labels)
    c = pd.Categorical(_bor_values(df[col_col]), categories=labels)
    tab = pd.crosstab(r, c, dropna=False).reindex(index=list(labels), columns=list(labels), fill_value=0)
    tab["Total"] = tab.sum(axis=1)
    tab.loc["Total"] = tab.sum(axis=0)
    tab.index.name, tab.columns.name = row_col, col_col
    return tab


# --------------------------------------------------------------------------------------------------------------------
# matched and weighted cohorts (outputs of 02_matching, possibly absent)
# --------------------------------------------------------------------------------------------------------------------
@dataclass
class DesignInputs:
    """``matched`` / ``weights`` tables of 02_matching, or None with the reason in ``notes``."""

    matched: pd.DataFrame | None
    weights: pd.DataFrame | None
    notes: dict[str, str] = field(default_factory=dict)


def _read_optional(path: Path, required: Sequence[str], what: str) -> tuple[pd.DataFrame | None, str]:
    if not path.is_file():
        return None, f"not available: {path.name} not found (matching notebook not run)"
    df = pd.read_parquet(path)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: the {what} table lacks column(s) {missing}")
    return df, f"available: {path.name} ({len(df)} rows)"


def load_design_inputs(data_dir: str | Path, weight_column: str = "w_iptw_ate") -> DesignInputs:
    """Read ``matched.parquet`` (study_id, subclass, match_weight) and ``weights.parquet`` (study_id and
    ``weight_column``) from ``data_dir``. A missing file gives None and a "not available" note; a file without
    the required columns raises ValueError naming them."""
    data_dir = Path(data_dir)
    matched, m_note = _read_optional(data_dir / "matched.parquet", MATCHED_COLUMNS, "matched")
    weights, w_note = _read_optional(data_dir / "weights.parquet", ("study_id", weight_column), "weights")
    return DesignInputs(matched, weights, {"matched": m_note, "weighted": w_note})


def matched_cohort(cohort: pd.DataFrame, matched: pd.DataFrame) -> pd.DataFrame:
    """Cohort rows of the matched patients (match_weight > 0 and a subclass; matching with replacement has no
    subclass, so it gives an empty frame) with ``subclass`` and ``match_weight``; a matched study_id absent from the
    cohort raises."""
    m = matched.loc[(pd.to_numeric(matched["match_weight"]) > 0) & matched["subclass"].notna(),
                    ["study_id", "subclass", "match_weight"]]
    unknown = sorted(set(m["study_id"]) - set(cohort["study_id"]))
    if unknown:
        raise ValueError(f"matched.parquet holds {len(unknown)} study_id(s) absent from the cohort, e.g. {unknown[:3]}")
    if m["study_id"].duplicated().any():
        raise ValueError("matched.parquet holds duplicated study_id values (matching with replacement is not supported)")
    return cohort.drop(columns=["subclass", "match_weight"], errors="ignore").merge(m, on="study_id", how="inner")


def weighted_cohort(cohort: pd.DataFrame, weights: pd.DataFrame, weight_column: str) -> pd.DataFrame:
    """Cohort rows with column ``weight`` = ``weight_column`` of weights.parquet; patients without a weight
    (missing or absent) are dropped; a weighted study_id absent from the cohort raises."""
    w = weights[["study_id", weight_column]].rename(columns={weight_column: "weight"})
    unknown = sorted(set(w["study_id"]) - set(cohort["study_id"]))
    if unknown:
        raise ValueError(f"weights.parquet holds {len(unknown)} study_id(s) absent from the cohort, e.g. {unknown[:3]}")
    out = cohort.drop(columns=["weight"], errors="ignore").merge(w, on="study_id", how="inner")
    return out[out["weight"].notna()].reset_index(drop=True)


# --------------------------------------------------------------------------------------------------------------------
# comparisons per cohort
# --------------------------------------------------------------------------------------------------------------------
def compare_arms(df: pd.DataFrame, bor_col: str, endpoint: str, cfg: ResponseConfig,
                 arm_col: str = "arm") -> list[Estimate]:
    """Full cohort: rate per arm (Clopper-Pearson), risk difference (Newcombe hybrid score), unadjusted OR
    (Woolf), adjusted OR (logistic, ``cfg.adjust_covariates``) and the 2 x 2 test (chi-square or Fisher)."""
    rates = rate_by_arm(df, bor_col, endpoint, arm_col, cfg.conf_level).set_index("arm")
    (k1, n1), (k0, n0) = [(int(rates.at[a, "events"]), int(rates.at[a, "n"])) for a in (TREATMENT_ARM, CONTROL_ARM)]
    if n1 == 0 or n0 == 0:
        raise ValueError(f"both arms are needed to compare {endpoint}: n({TREATMENT_ARM}) = {n1}, n({CONTROL_ARM}) = {n0}")
    out = [Estimate(m, float(rates.at[a, "rate"]), float(rates.at[a, "lower"]), float(rates.at[a, "upper"]),
                    n=int(rates.at[a, "n"]), method="proportion, exact Clopper-Pearson CI; denominator all patients")
           for m, a in (("rate_haic", TREATMENT_ARM), ("rate_control", CONTROL_ARM))]
    rd, lo, hi = newcombe_risk_difference(k1, n1, k0, n0, cfg.conf_level)
    out.append(Estimate("risk_difference", rd, lo, hi, n=n1 + n0, method="Newcombe hybrid score (method 10)"))
    or_, lo, hi, p, note = woolf_odds_ratio(k1, n1, k0, n0, cfg.conf_level)
    out.append(Estimate("odds_ratio", or_, lo, hi, p, n=n1 + n0, method="Woolf logit CI", note=note))
    data = df.assign(_y=responder(df[bor_col], endpoint))
    adj = logistic_odds_ratio(data, "_y", arm_col, cfg.adjust_covariates, cfg.categorical, cfg.missing,
                              conf_level=cfg.conf_level)
    adj.measure = "odds_ratio_adjusted"
    out.append(adj)
    p, test = two_by_two_test(k1, n1, k0, n0)
    out.append(Estimate("test", np.nan, p=p, n=n1 + n0, method=test))
    return out


def compare_matched(df: pd.DataFrame, bor_col: str, endpoint: str, cfg: ResponseConfig,
                    arm_col: str = "arm") -> list[Estimate]:
    """Matched cohort (from :func:`matched_cohort`): rates per arm (match weights), conditional OR (conditional
    logistic on ``subclass``), OR and risk difference with match weights and pair-clustered HC0 sandwich SE."""
    data = df.assign(_y=responder(df[bor_col], endpoint))
    out = weighted_rates(data, "_y", arm_col, "match_weight", cfg.conf_level)
    out.append(weighted_risk_difference(data, "_y", arm_col, "match_weight", "subclass", cfg.conf_level))
    out.append(logistic_odds_ratio(data, "_y", arm_col, weights_col="match_weight", cluster_col="subclass",
                                   conf_level=cfg.conf_level))
    out.append(conditional_logit_odds_ratio(data, "_y", "subclass", arm_col, cfg.conf_level))
    return out


def compare_weighted(df: pd.DataFrame, bor_col: str, endpoint: str, cfg: ResponseConfig,
                     arm_col: str = "arm") -> list[Estimate]:
    """Weighted cohort (from :func:`weighted_cohort`, column ``weight``): weighted rates, risk difference and
    OR with HC0 sandwich SE per patient (marginal estimates; the weights carry the adjustment)."""
    data = df.assign(_y=responder(df[bor_col], endpoint))
    out = weighted_rates(data, "_y", arm_col, "weight", cfg.conf_level)
    out.append(weighted_risk_difference(data, "_y", arm_col, "weight", None, cfg.conf_level))
    out.append(logistic_odds_ratio(data, "_y", arm_col, weights_col="weight", conf_level=cfg.conf_level))
    return out


# --------------------------------------------------------------------------------------------------------------------
# the whole analysis
# --------------------------------------------------------------------------------------------------------------------
@dataclass
class ResponseAnalysis:
    """Everything 04_response writes: tables (numbers and Markdown versions) and the flat results section."""

    table: pd.DataFrame
    table_md: pd.DataFrame
    models: pd.DataFrame
    agreement: pd.DataFrame
    agreement_md: pd.DataFrame
    kappa: pd.DataFrame
    results: dict[str, Any]


def _key_prefix(endpoint: str, criterion: str, definition: str, cohort: str, primary: str) -> str:
    parts = [endpoint, criterion]
    if definition != primary:
        parts.append(definition)
    if cohort != "full":
        parts.append(cohort)
    return "_".join(parts)


def _results_from_models(models: pd.DataFrame, primary: str) -> dict[str, Any]:
    """Flat keys, e.g. orr_recist_haic(_lower/_upper), orr_recist_rd, orr_recist_or_adj(_p), orr_recist_p (test)
    and orr_recist_test; the sensitivity definition adds its name (orr_recist_confirmed_...) and the matched /
    weighted cohorts theirs (orr_recist_matched_or_clogit)."""
    out: dict[str, Any] = {}
    for r in models.itertuples(index=False):
        prefix = _key_prefix(r.endpoint, r.criterion, r.definition, r.cohort, primary)
        key = f"{prefix}_{MEASURE_KEYS[r.measure]}"
        if r.measure == "test":
            out[key], out[f"{prefix}_test"] = r.p, r.method
            continue
        out[key], out[f"{key}_lower"], out[f"{key}_upper"] = r.estimate, r.lower, r.upper
        if r.measure.startswith("rate"):
            out[f"{key}_n"] = r.n
        if r.measure.startswith("odds_ratio") or (r.measure == "risk_difference" and r.cohort != "full"):
            out[f"{key}_p"] = r.p
    return out


def _model_rows(estimates: list[Estimate], **labels: str) -> list[dict[str, Any]]:
    return [{**labels, **e.to_dict()} for e in estimates]


def _fmt_rate(k: int, r: pd.Series) -> str:
    """'215 (59.7%; 54.5–64.8)': events (rate %; CI in %)."""
    return (f"{k} ({tables.fmt_num(100 * r.estimate, 1, '—')}%; "
            f"{tables.fmt_num(100 * r.lower, 1, '—')}–{tables.fmt_num(100 * r.upper, 1, '—')})")


def response_table(cohort: pd.DataFrame, models: pd.DataFrame, cfg: ResponseConfig,
                   arm_col: str = "arm") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Manuscript table, full cohort: per definition (primary first) and criterion, CR/PR/SD/PD/NE n (%) per arm,
    then ORR and DCR with exact CIs, risk difference (percentage points), unadjusted and adjusted OR and P.
    Returns (numbers, formatted Markdown frame)."""
    full = models[models["cohort"] == "full"].set_index(["definition", "criterion", "endpoint", "measure"]).sort_index()
    rows, md = [], []
    n1, n0 = int((cohort[arm_col] == TREATMENT_ARM).sum()), int((cohort[arm_col] == CONTROL_ARM).sum())
    h1, h0 = f"{TREATMENT_ARM} (n = {n1})", f"{CONTROL_ARM} (n = {n0})"
    ci = f"{100 * cfg.conf_level:g}% CI"
    for definition in cfg.definitions:
        def_label = definition + (" (primary)" if definition == cfg.primary_definition else " (sensitivity)")
        for crit in CRITERIA:
            counts = response_counts(cohort, bor_column(crit, definition), arm_col)
            for lev in RESPONSE_LEVELS:
                k1, k0 = int(counts.at[TREATMENT_ARM, lev]), int(counts.at[CONTROL_ARM, lev])
                rows.append({"definition": definition, "criterion": crit, "row": lev, "n_haic": k1,
                             "pct_haic": 100 * k1 / n1 if n1 else np.nan, "n_control": k0,
                             "pct_control": 100 * k0 / n0 if n0 else np.nan})
                md.append({"Definition": def_label, "Criterion": CRITERION_LABELS[crit], "Response": lev,
                           h1: tables.fmt_n_pct(k1, n1), h0: tables.fmt_n_pct(k0, n0)})
            for ep in ENDPOINTS:
                g = full.loc[(definition, crit, ep)]
                r1, r0 = g.loc["rate_haic"], g.loc["rate_control"]
                rd, or_, adj, test = g.loc["risk_difference"], g.loc["odds_ratio"], g.loc["odds_ratio_adjusted"], g.loc["test"]
                e1, e0 = (int(counts.loc[arm, list(ENDPOINTS[ep])].sum()) for arm in (TREATMENT_ARM, CONTROL_ARM))
                row = {"definition": definition, "criterion": crit, "row": ep.upper(),
                       "n_haic": e1, "pct_haic": 100 * r1.estimate,
                       "lower_haic": 100 * r1.lower, "upper_haic": 100 * r1.upper,
                       "n_control": e0, "pct_control": 100 * r0.estimate,
                       "lower_control": 100 * r0.lower, "upper_control": 100 * r0.upper,
                       "rd_pct": 100 * rd.estimate, "rd_lower": 100 * rd.lower, "rd_upper": 100 * rd.upper,
                       "or": or_.estimate, "or_lower": or_.lower, "or_upper": or_.upper,
                       "or_adj": adj.estimate, "or_adj_lower": adj.lower, "or_adj_upper": adj.upper,
                       "or_adj_p": adj.p, "p": test.p, "test": test.method}
                rows.append(row)
                md.append({"Definition": def_label, "Criterion": CRITERION_LABELS[crit],
                           "Response": f"{ep.upper()} ({ci})",
                           h1: _fmt_rate(e1, r1), h0: _fmt_rate(e0, r0),
                           f"Risk difference, % points ({ci})": tables.fmt_est_ci(100 * rd.estimate, 100 * rd.lower,
                                                                                    100 * rd.upper, 1, "—"),
                           f"OR ({ci})": tables.fmt_est_ci(or_.estimate, or_.lower, or_.upper, 2, "—"),
                           f"Adjusted OR ({ci})": tables.fmt_est_ci(adj.estimate, adj.lower, adj.upper, 2, "—"),
                           "P": tables.fmt_p(test.p) + (" (Fisher)" if test.method == "Fisher exact" else "")})
    table_md = pd.DataFrame(md).fillna("")
    return pd.DataFrame(rows), table_md


MEASURE_LABELS = {"rate_haic": f"Rate, {TREATMENT_ARM}", "rate_control": f"Rate, {CONTROL_ARM}",
                  "risk_difference": "Risk difference, % points", "odds_ratio": "Odds ratio",
                  "odds_ratio_adjusted": "Adjusted odds ratio", "odds_ratio_conditional": "Conditional odds ratio",
                  "test": "Test of the 2 x 2 table"}


def format_models(models: pd.DataFrame, conf_level: float = 0.95) -> pd.DataFrame:
    """Readable version of the models table for the Markdown output: rates and risk differences in % (1 decimal),
    odds ratios with 2 decimals, estimate (CI), P, method."""
    out = []
    for r in models.itertuples(index=False):
        pct = r.measure.startswith("rate") or r.measure == "risk_difference"
        scale, digits = (100.0, 1) if pct else (1.0, 2)
        est = "" if r.measure == "test" else tables.fmt_est_ci(scale * r.estimate, scale * r.lower, scale * r.upper,
                                                              digits, "—")
        out.append({"Cohort": r.cohort, "Definition": r.definition, "Criterion": CRITERION_LABELS[r.criterion],
                    "Endpoint": r.endpoint.upper(), "Measure": MEASURE_LABELS[r.measure],
                    f"Estimate ({100 * conf_level:g}% CI)": est,
                    "P": tables.fmt_p(r.p), "Method": r.method, "n": r.n})
    return pd.DataFrame(out)


def _kappa_rows(cohort: pd.DataFrame, cfg: ResponseConfig) -> pd.DataFrame:
    rows = []
    for definition in cfg.definitions:
        a = _bor_values(cohort[bor_column("recist", definition)])
        b = _bor_values(cohort[bor_column("mrecist", definition)])
        k5 = cohen_kappa(a, b, RESPONSE_LEVELS, cfg.conf_level)
        rows.append({"definition": definition, "categories": "CR/PR/SD/PD/NE", **k5})
        orr = [responder(s, "orr").map({1: "responder", 0: "non-responder"}) for s in (a, b)]
        k2 = cohen_kappa(orr[0], orr[1], ("responder", "non-responder"), cfg.conf_level)
        rows.append({"definition": definition, "categories": "responder (CR/PR) vs not", **k2})
    return pd.DataFrame(rows)


def _agreement(cohort: pd.DataFrame, cfg: ResponseConfig, kappa: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    parts, md = [], []
    for definition in cfg.definitions:
        tab = agreement_table(cohort, bor_column("recist", definition), bor_column("mrecist", definition))
        t = tab.reset_index().rename(columns={tab.index.name: "recist"})
        t.insert(0, "definition", definition)
        parts.append(t)
        tm = t.rename(columns={"definition": "Definition", "recist": "RECIST 1.1 (row) × mRECIST (column)"}).astype(object)
        md.append(tm)
        for k in kappa[kappa["definition"] == definition].itertuples():
            row = {c: "" for c in tm.columns}
            row.update({"Definition": definition, "RECIST 1.1 (row) × mRECIST (column)": f"Cohen's kappa, {k.categories}",
                        "CR": tables.fmt_est_ci(k.kappa, k.lower, k.upper, 2, "—"),
                        "PR": f"agreement {100 * k.observed:.1f}%"})
            md.append(pd.DataFrame([row]))
    return pd.concat(parts, ignore_index=True), pd.concat(md, ignore_index=True)


def analyse_response(cohort: pd.DataFrame, cfg: ResponseConfig, design: DesignInputs | None = None,
                     arm_col: str = "arm") -> ResponseAnalysis:
    """All response analyses for both criteria and both definitions: the full cohort (always), the matched and
    the weighted cohorts when their inputs exist (otherwise reported "not available" in the results)."""
    design = design or DesignInputs(None, None, {"matched": "not available", "weighted": "not available"})
    cohorts: dict[str, tuple[pd.DataFrame, Any]] = {"full": (cohort, compare_arms)}
    notes = dict(design.notes)
    if design.matched is not None:
        m = matched_cohort(cohort, design.matched)
        if m[arm_col].nunique() == 2:
            cohorts["matched"] = (m, compare_matched)
        else:  # e.g. matching with replacement (no pair ids) or nobody matched
            notes["matched"] = "not available: the matched table has no matched pairs with both arms"
    if design.weights is not None:
        cohorts["weighted"] = (weighted_cohort(cohort, design.weights, cfg.weight_column), compare_weighted)
    rows: list[dict[str, Any]] = []
    for name, (data, compare) in cohorts.items():
        for definition in cfg.definitions:
            for crit in CRITERIA:
                for ep in ENDPOINTS:
                    est = compare(data, bor_column(crit, definition), ep, cfg, arm_col)
                    rows += _model_rows(est, cohort=name, definition=definition, criterion=crit, endpoint=ep)
    models = pd.DataFrame(rows)
    table, table_md = response_table(cohort, models, cfg, arm_col)
    kappa = _kappa_rows(cohort, cfg)
    agreement, agreement_md = _agreement(cohort, cfg, kappa)

    res: dict[str, Any] = {"primary_definition": cfg.primary_definition, "conf_level": cfg.conf_level,
                           "denominator": "all patients of the analysis cohort (NE = non-responder)",
                           "scale": "rates and risk differences are proportions (0-1), not percentages",
                           "n_analysed": len(cohort), "n_haic": int((cohort[arm_col] == TREATMENT_ARM).sum()),
                           "n_control": int((cohort[arm_col] == CONTROL_ARM).sum()),
                           "matched_available": "matched" in cohorts, "matched_note": notes.get("matched", ""),
                           "weighted_available": "weighted" in cohorts, "weighted_note": notes.get("weighted", ""),
                           "weight_column": cfg.weight_column, "adjust_covariates": list(cfg.adjust_covariates)}
    for crit in CRITERIA:
        for definition in cfg.definitions:
            sfx = "" if definition == cfg.primary_definition else f"_{definition}"
            ev = _bor_values(cohort[bor_column(crit, definition)]) != "NE"
            res[f"n_evaluable_{crit}{sfx}"] = int(ev.sum())
            res[f"n_evaluable_{crit}{sfx}_haic"] = int((ev & (cohort[arm_col] == TREATMENT_ARM)).sum())
            res[f"n_evaluable_{crit}{sfx}_control"] = int((ev & (cohort[arm_col] == CONTROL_ARM)).sum())
    if "matched" in cohorts:
        m = cohorts["matched"][0]
        res.update({"n_matched": len(m), "n_matched_sets": int(m["subclass"].nunique()),
                    "n_matched_haic": int((m[arm_col] == TREATMENT_ARM).sum()),
                    "n_matched_control": int((m[arm_col] == CONTROL_ARM).sum())})
    if "weighted" in cohorts:
        res["n_weighted"] = len(cohorts["weighted"][0])
    res.update(_results_from_models(models, cfg.primary_definition))
    for k in kappa.itertuples():
        key = "kappa_recist_mrecist" + ("" if k.definition == cfg.primary_definition else f"_{k.definition}")
        key += "" if k.categories.startswith("CR/") else "_orr"
        res.update({key: k.kappa, f"{key}_lower": k.lower, f"{key}_upper": k.upper, f"{key}_se": k.se,
                    f"{key}_agreement": k.observed, f"{key}_n": k.n})
    return ResponseAnalysis(table, table_md, models, agreement, agreement_md, kappa, res)


# --------------------------------------------------------------------------------------------------------------------
# data for the waterfall and spider plots
# --------------------------------------------------------------------------------------------------------------------
def waterfall_data(cohort: pd.DataFrame, criteria: Sequence[str] = CRITERIA, arm_col: str = "arm") -> pd.DataFrame:
    """Best % change of the target sum from baseline (up to first PD, recist.best_overall_response) per patient and
    criterion, sorted from largest increase to largest decrease (ties by study_id). Patients without a value (no
    post-baseline scan with all targets measured) are left out. Columns criterion, study_id, arm, best_pct_change,
    bor, rank."""
    parts = []
    for crit in criteria:
        col = f"best_pct_change_{crit}"
        if col not in cohort.columns:
            raise ValueError(f"column {col!r} is not in the cohort")
        d = cohort.loc[cohort[col].notna(), ["study_id", arm_col, col, bor_column(crit)]]
        d = d.rename(columns={col: "best_pct_change", bor_column(crit): "bor", arm_col: "arm"})
        d = d.sort_values(["best_pct_change", "study_id"], ascending=[False, True]).reset_index(drop=True)
        d.insert(0, "criterion", crit)
        d["rank"] = np.arange(len(d))
        parts.append(d)
    return pd.concat(parts, ignore_index=True)


def spider_data(timepoints: dict[str, pd.DataFrame], cohort: pd.DataFrame, n_per_arm: int, seed: int,
                arm_col: str = "arm") -> pd.DataFrame:
    """% change of the target sum from baseline over time for a random subsample of ``n_per_arm`` patients per arm
    and criterion (patients with >= 1 post-baseline value), drawn with ``numpy.random.default_rng(seed)`` from the
    sorted study_ids, so the sample is reproducible. ``timepoints[criterion]`` = response_timepoints_<criterion>.
    Baseline is drawn at month 0 (0%); visits without all targets measured are skipped. Columns criterion,
    study_id, arm, months, pct_change."""
    if n_per_arm < 1:
        raise ValueError(f"n_per_arm must be >= 1, got {n_per_arm}")
    arms = cohort.set_index("study_id")[arm_col]
    parts = []
    for crit, tp in timepoints.items():
        need = {"study_id", "visit", "days_from_index", "pct_change_baseline"}
        if need - set(tp.columns):
            raise ValueError(f"timepoints for {crit!r} lack column(s) {sorted(need - set(tp.columns))}")
        d = tp.loc[tp["study_id"].isin(arms.index) & tp["pct_change_baseline"].notna(),
                   ["study_id", "visit", "days_from_index", "pct_change_baseline"]].copy()
        d["arm"] = d["study_id"].map(arms)
        d["months"] = np.where(d["visit"] == 0, 0.0, d["days_from_index"] / DAYS_PER_MONTH)
        has_fu = d.loc[d["visit"] > 0, "study_id"].unique()
        d = d[d["study_id"].isin(has_fu)]
        rng = np.random.default_rng(seed)
        chosen = []
        for arm in (TREATMENT_ARM, CONTROL_ARM):
            ids = np.sort(d.loc[d["arm"] == arm, "study_id"].unique())
            chosen += list(rng.choice(ids, size=min(n_per_arm, len(ids)), replace=False)) if len(ids) else []
        d = d[d["study_id"].isin(chosen)].sort_values(["arm", "study_id", "months"])
        parts.append(d.assign(criterion=crit).rename(columns={"pct_change_baseline": "pct_change"})
                     [["criterion", "study_id", "arm", "months", "pct_change"]])
    return pd.concat(parts, ignore_index=True)
