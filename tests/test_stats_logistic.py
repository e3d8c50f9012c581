"""analysis_utils.stats.logistic against hand-computed values: logistic odds ratio (model and HC0 sandwich SE,
pair-clustered), weighted rates and risk difference, conditional logistic regression, the design matrix."""
import math

import numpy as np
import pandas as pd
import pytest

from analysis_utils.stats import binomial, logistic


def _group_frame(y1: list[int], y0: list[int], w1=None, w0=None) -> pd.DataFrame:
    """Outcome ``y`` and weight ``w`` of group 1 (``t`` = 1) then group 0 (``t`` = 0)."""
    return pd.DataFrame({"t": [1] * len(y1) + [0] * len(y0), "y": y1 + y0,
                         "w": (w1 or [1.0] * len(y1)) + (w0 or [1.0] * len(y0))})


def _table_frame(k1: int, n1: int, k0: int, n0: int) -> pd.DataFrame:
    return _group_frame([1] * k1 + [0] * (n1 - k1), [1] * k0 + [0] * (n0 - k0))


def test_logistic_without_covariates_equals_woolf():
    # treatment-only logistic regression: exp(coef) = cross-product ratio, model SE = Woolf SE
    est = logistic.logistic_odds_ratio(_table_frame(56, 70, 48, 80), "y", "t")
    or_, lo, hi, p, _ = binomial.woolf_odds_ratio(56, 70, 48, 80)
    assert est.measure == "odds_ratio"
    assert (est.estimate, est.lower, est.upper, est.p) == (pytest.approx(or_, rel=1e-6), pytest.approx(lo, rel=1e-6),
                                                           pytest.approx(hi, rel=1e-6), pytest.approx(p, rel=1e-5))


def test_weighted_odds_ratio_and_risk_difference_hc0_by_hand():
    # group 1 y = 1,1,0,0 with w = 1,3,1,1 -> p1 = 4/6 = 2/3; group 0 y = 1,0,0,0, w = 1 -> p0 = 1/4
    df = _group_frame([1, 1, 0, 0], [1, 0, 0, 0], [1.0, 3.0, 1.0, 1.0], [1.0] * 4)
    # OR = (2/3 / 1/3) / (1/4 / 3/4) = 2 * 3 = 6.
    # HC0, group 1 logit: A = 6 * 2/3 * 1/3 = 4/3; B = 1*(1/3)^2 + 9*(1/3)^2 + 1*(2/3)^2 + 1*(2/3)^2 = 2;
    #   var = B / A^2 = 2 / (16/9) = 9/8. Group 0: A = 4 * 1/4 * 3/4 = 3/4; B = (3/4)^2 + 3*(1/4)^2 = 3/4;
    #   var = (3/4)/(9/16) = 4/3. var(log OR) = 9/8 + 4/3 = 59/24.
    est = logistic.logistic_odds_ratio(df, "y", "t", weights_col="w")
    assert est.estimate == pytest.approx(6.0, rel=1e-6)
    assert est.se == pytest.approx(math.sqrt(59 / 24), rel=1e-5)
    # RD = 2/3 - 1/4 = 5/12; var = sum w^2 (y - p)^2 / W^2 per group = 2/36 + (3/4)/16
    rd = logistic.weighted_risk_difference(df, "y", "t", weights_col="w")
    assert rd.estimate == pytest.approx(5 / 12)
    assert rd.se == pytest.approx(math.sqrt(2 / 36 + 3 / 64))
    r1, r0 = logistic.weighted_rates(df, "y", "t", weights_col="w")
    assert (r1.estimate, r1.se) == (pytest.approx(2 / 3), pytest.approx(math.sqrt(2) / 6))
    assert (r0.estimate, r0.se) == (pytest.approx(0.25), pytest.approx(math.sqrt(0.75) / 4))
    assert (r1.measure, r0.measure) == ("rate_treated", "rate_control")


def test_unit_weights_give_exact_rates_and_bad_indicator_raises():
    r1, r0 = logistic.weighted_rates(_table_frame(5, 20, 0, 10), "y", "t", "w", measures=("a", "b"))
    assert (r1.measure, r1.estimate, r1.lower) == ("a", 0.25, pytest.approx(binomial.clopper_pearson_ci(5, 20)[0]))
    assert r0.upper == pytest.approx(1 - 0.025 ** 0.1) and "Clopper-Pearson" in r0.method
    with pytest.raises(ValueError, match="treatment column 't' must be 0/1"):
        logistic.logistic_odds_ratio(_table_frame(2, 4, 1, 4).assign(t=[1, 2] * 4), "y", "t")


def test_pair_clustered_estimates_and_conditional_logit_by_hand():
    # 5 pairs (treated y, control y): (1,0), (1,0), (1,1), (0,0), (0,1); d = y_t - y_c = 1, 1, 0, 0, -1
    pairs = [(1, 0), (1, 0), (1, 1), (0, 0), (0, 1)]
    df = pd.DataFrame({"t": [1, 0] * 5, "y": [v for p in pairs for v in p], "pair": np.repeat(range(5), 2),
                       "w": 1.0})
    # RD = 3/5 - 2/5 = 0.2; influence per pair (d - 0.2)/5 -> var = (0.8^2*2 + 0.2^2*2 + 1.2^2)/25 = 2.8/25
    rd = logistic.weighted_risk_difference(df, "y", "t", weights_col="w", cluster_col="pair")
    assert rd.estimate == pytest.approx(0.2) and rd.se == pytest.approx(math.sqrt(2.8 / 25))
    # OR = (3/2)/(2/3) = 2.25; influence of the log OR per pair = (d - 0.2)/(5 * 0.24) -> var = 2.8/1.44
    lo = logistic.logistic_odds_ratio(df, "y", "t", weights_col="w", cluster_col="pair")
    assert lo.estimate == pytest.approx(2.25, rel=1e-6) and lo.se == pytest.approx(math.sqrt(2.8 / 1.44), rel=1e-5)
    # conditional logit with 6 pairs (1,0), 2 pairs (0,1) and 3 concordant: OR = 6/2 = 3, SE = sqrt(1/6 + 1/2)
    pairs = [(1, 0)] * 6 + [(0, 1)] * 2 + [(1, 1)] * 2 + [(0, 0)]
    df = pd.DataFrame({"t": [1, 0] * len(pairs), "y": [v for p in pairs for v in p],
                       "pair": np.repeat(range(len(pairs)), 2)})
    cl = logistic.conditional_logit_odds_ratio(df, "y", "pair", "t")
    assert cl.estimate == pytest.approx(3.0, rel=1e-8) and cl.se == pytest.approx(math.sqrt(2 / 3), rel=1e-8)
    assert cl.p == pytest.approx(0.17846, abs=1e-4)  # 2 * Phi(-ln 3 / 0.81650) = 2 * Phi(-1.34552)
    assert cl.note.startswith("8 of 11 matched sets informative")
    none = logistic.conditional_logit_odds_ratio(df.assign(y=1), "y", "pair", "t")
    assert math.isnan(none.estimate) and "not estimable" in none.note


def test_design_matrix_missing_indicator_levels_and_complete_case():
    df = pd.DataFrame({"age": [50.0, np.nan, 70.0, 60.0, 40.0], "sex": ["m", "f", None, "m", "f"], "k": 1})
    X, keep, notes = logistic.design_matrix(df, ["age", "sex", "k"])
    # age: median of 50, 70, 60, 40 = 55 fills row 1; sex: m and f tie (2 each) -> mode = first sorted = 'f'
    # fills row 2; reference level 'f' (sorted first) -> one dummy sex[m]
    assert X["age"].tolist() == [50.0, 55.0, 70.0, 60.0, 40.0] and X["age_missing"].tolist() == [0, 1, 0, 0, 0]
    assert X["sex[m]"].tolist() == [1, 0, 0, 1, 0] and X["sex_missing"].tolist() == [0, 0, 1, 0, 0]
    assert "k" not in X.columns and any("k: constant" in n for n in notes)
    X, keep, notes = logistic.design_matrix(df, ["age", "sex"], missing="complete_case")
    assert keep.tolist() == [True, False, False, True, True] and list(X.columns) == ["age", "sex[m]"]
    # a column equal to another is aliased and dropped (R: NA coefficient)
    X, _, notes = logistic.design_matrix(df.assign(age2=df.age * 2).dropna(), ["age", "age2"])
    assert list(X.columns) == ["age"] and any("age2: collinear" in n for n in notes)
    with pytest.raises(ValueError, match="not in the data: \\['ecog'\\]"):
        logistic.design_matrix(df, ["ecog"])


def test_adjusted_odds_ratio_flags_separation():
    # covariate level 'z' holds only outcome 1 -> quasi-separation named in the note, treatment OR still returned
    y1, y0 = [1, 0, 1, 0, 1, 1], [0, 1, 0, 1, 0, 1]
    df = _group_frame(y1, y0).assign(g=["a", "a", "b", "b", "z", "z", "a", "a", "b", "b", "a", "z"])
    est = logistic.logistic_odds_ratio(df, "y", "t", covariates=["g"])
    assert est.measure == "odds_ratio_adjusted" and np.isfinite(est.estimate)
    assert "g[z]" in est.note
