"""One and two binomial proportions, the 2 x 2 table and agreement between two ratings.

Methods: docs/methods/binary-outcomes.md. Each function reproduces an R definition:

- One proportion: exact Clopper-Pearson CI from beta quantiles (R ``binom.test``; ``PropCIs::exactci``;
  ``DescTools::BinomCI(method = "clopper-pearson")``; scipy ``binomtest(...).proportion_ci(method="exact")``) and
  the Wilson score interval without continuity correction (``PropCIs::scoreci``, ``DescTools::BinomCI(method =
  "wilson")``, R ``prop.test(correct = FALSE)``).
- Difference of two proportions: Newcombe (1998) method 10, the hybrid score interval built from the two Wilson
  intervals without continuity correction (``DescTools::BinomDiffCI(method = "score")``;
  ``contingencytables::Newcombe_hybrid_score_CI_2x2``).
- Odds ratio of a 2 x 2 table: Woolf (logit) CI as ``epitools::oddsratio.wald``, with the Wald p of the log odds
  ratio; when a cell is zero, 0.5 is first added to every cell (Haldane-Anscombe; epitools adds nothing and
  returns 0 or Inf there).
- Test of a 2 x 2 table: Pearson chi-square without continuity correction (R ``chisq.test(correct = FALSE)``) when
  every expected count is >= 5, otherwise Fisher's exact test, two-sided (R ``fisher.test``: sums the tables no
  more likely than the one observed).
- Agreement: unweighted Cohen's kappa (R ``irr::kappa2(weight = "unweighted")``; sklearn ``cohen_kappa_score``)
  with the large-sample non-null standard error of Fleiss, Cohen & Everitt (1969), as SAS PROC FREQ (AGREE);
  Wald CI kappa +/- z * ASE. The cross-table with margins is R ``addmargins(table(a, b))``.

Counts are plain integers; ratings are sequences or frame columns named by argument.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["normal_quantile", "clopper_pearson_ci", "wilson_ci", "newcombe_risk_difference", "woolf_odds_ratio",
           "two_by_two_test", "cohen_kappa", "agreement_table"]


def normal_quantile(conf_level: float) -> float:
    """z = Phi^-1(1 - (1 - conf_level) / 2) of a two-sided ``conf_level`` interval (R ``qnorm(1 - alpha/2)``);
    ``conf_level`` outside (0, 1) raises ValueError."""
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be in (0, 1), got {conf_level}")
    return float(stats.norm.ppf(1 - (1 - conf_level) / 2))


def _check_kn(k: int, n: int) -> None:
    if n <= 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")


# --------------------------------------------------------------------------------------------------------------------
# one proportion
# --------------------------------------------------------------------------------------------------------------------
def clopper_pearson_ci(k: int, n: int, conf_level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) CI of k/n from beta quantiles: lower = Beta(a/2; k, n-k+1), upper =
    Beta(1-a/2; k+1, n-k); 0 when k = 0 and 1 when k = n (R ``binom.test``)."""
    _check_kn(k, n)
    alpha = 1 - conf_level
    normal_quantile(conf_level)
    lower = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
    upper = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lower, upper


def wilson_ci(k: int, n: int, conf_level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval without continuity correction: (k + z²/2 ± z·sqrt(k(n-k)/n + z²/4)) / (n + z²)
    (R ``prop.test(correct = FALSE)$conf.int``, ``PropCIs::scoreci``)."""
    _check_kn(k, n)
    z = normal_quantile(conf_level)
    centre = k + z * z / 2
    half = z * np.sqrt(k * (n - k) / n + z * z / 4)
    return float((centre - half) / (n + z * z)), float((centre + half) / (n + z * z))


# --------------------------------------------------------------------------------------------------------------------
# two proportions (the 2 x 2 table [[k1, n1 - k1], [k0, n0 - k0]])
# --------------------------------------------------------------------------------------------------------------------
def newcombe_risk_difference(k1: int, n1: int, k0: int, n0: int,
                             conf_level: float = 0.95) -> tuple[float, float, float]:
    """p1 - p0 with Newcombe's (1998) method 10 hybrid score CI: with Wilson limits (l1, u1), (l0, u0),
    lower = d - sqrt((p1-l1)² + (u0-p0)²), upper = d + sqrt((u1-p1)² + (p0-l0)²)
    (``DescTools::BinomDiffCI(method = "score")``)."""
    p1, p0 = k1 / n1 if n1 else np.nan, k0 / n0 if n0 else np.nan
    l1, u1 = wilson_ci(k1, n1, conf_level)
    l0, u0 = wilson_ci(k0, n0, conf_level)
    d = p1 - p0
    return float(d), float(d - np.hypot(p1 - l1, u0 - p0)), float(d + np.hypot(u1 - p1, p0 - l0))


def woolf_odds_ratio(k1: int, n1: int, k0: int, n0: int,
                     conf_level: float = 0.95) -> tuple[float, float, float, float, str]:
    """Unadjusted odds ratio (a·d)/(b·c) of the 2 x 2 table [[k1, n1-k1], [k0, n0-k0]] with the Woolf CI
    exp(log OR ± z·sqrt(1/a + 1/b + 1/c + 1/d)) (``epitools::oddsratio.wald``) and its Wald p. With a zero cell
    0.5 is added to every cell (Haldane-Anscombe) and the note says so. Returns (or, lower, upper, p, note)."""
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
    z = normal_quantile(conf_level)
    p = float(2 * stats.norm.sf(abs(log_or / se)))
    return float(np.exp(log_or)), float(np.exp(log_or - z * se)), float(np.exp(log_or + z * se)), p, note


def two_by_two_test(k1: int, n1: int, k0: int, n0: int) -> tuple[float, str]:
    """P-value comparing k1/n1 with k0/n0: Pearson chi-square without continuity correction when every expected
    count is >= 5 (R ``chisq.test(correct = FALSE)``), otherwise Fisher's exact test (two-sided, R
    ``fisher.test``). Returns (p, test); p is NaN when a column of the table is empty."""
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
# agreement between two ratings of the same units
# --------------------------------------------------------------------------------------------------------------------
def _outside(values: set[Any], labels: Sequence[Any]) -> list[Any]:
    return sorted(values - set(labels), key=str)


def cohen_kappa(a: Sequence[Any], b: Sequence[Any], labels: Sequence[Any],
                conf_level: float = 0.95) -> dict[str, float]:
    """Unweighted Cohen's kappa of two ratings of the same units (sklearn ``cohen_kappa_score``) and its CI
    kappa ± z·ASE, with the non-null large-sample ASE of Fleiss, Cohen & Everitt (1969) (SAS PROC FREQ AGREE):
    ASE² = [Σ_i p_ii (1 - (p_i. + p_.i)(1 - κ))² + (1 - κ)² Σ_{i≠j} p_ij (p_.i + p_j.)² - (κ - p_e (1 - κ))²]
           / (n (1 - p_e)²).
    ``labels``: the categories (a value outside them raises). Returns kappa, se, lower, upper, observed (p_o),
    expected (p_e) and n; kappa is NaN when p_e = 1."""
    from sklearn.metrics import cohen_kappa_score

    a, b = pd.Series(list(a), dtype="object"), pd.Series(list(b), dtype="object")
    if len(a) != len(b) or len(a) == 0:
        raise ValueError("the two ratings must be non-empty and of equal length")
    bad = _outside(set(a) | set(b), labels)
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
    z = normal_quantile(conf_level)
    return {**out, "kappa": kappa, "se": se, "lower": kappa - z * se, "upper": kappa + z * se}


def agreement_table(df: pd.DataFrame, row_col: str, col_col: str, labels: Sequence[Any]) -> pd.DataFrame:
    """Cross-tabulation of two ratings (rows ``row_col``, columns ``col_col``, every label shown even when empty)
    with row and column totals ``Total`` (R ``addmargins(table(factor(a, labels), factor(b, labels)))``).
    A missing value or a value outside ``labels`` raises ValueError."""
    for name in (row_col, col_col):
        if name not in df.columns:
            raise ValueError(f"rating column {name!r} is not in the data")
        bad = _outside(set(df[name].astype("object")), labels)
        if bad:
            raise ValueError(f"rating column {name!r} holds values outside labels {tuple(labels)}: {bad}")
    r = pd.Categorical(df[row_col], categories=labels)
    c = pd.Categorical(df[col_col], categories=labels)
    tab = pd.crosstab(r, c, dropna=False).reindex(index=list(labels), columns=list(labels), fill_value=0)
    tab["Total"] = tab.sum(axis=1)
    tab.loc["Total"] = tab.sum(axis=0)
    tab.index.name, tab.columns.name = row_col, col_col
    return tab
