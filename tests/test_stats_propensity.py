"""Tests for analysis_utils.stats.propensity: the propensity model as R glm(family = binomial)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from analysis_utils.stats.propensity import estimate_propensity

CHALLENGER_TEMP = [53, 57, 58, 63, 66, 67, 67, 67, 68, 69, 70, 70, 70, 70, 72, 73, 75, 75, 76, 76, 78, 79, 81]
CHALLENGER_FAIL = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]


def test_logistic_reproduces_textbook_challenger_fit():
    # Dalal, Fowlkes & Hoadley (1989) O-ring data, R: glm(fail ~ temp, binomial):
    # (Intercept) 15.0429 (SE 7.3786), temp -0.2322 (SE 0.1082)
    df = pd.DataFrame({"temp": CHALLENGER_TEMP, "fail": CHALLENGER_FAIL})
    res = estimate_propensity(df, "fail", ["temp"])
    s = res.summary.set_index("term")
    assert s.loc["(Intercept)", "estimate"] == pytest.approx(15.0429, abs=1e-4)
    assert s.loc["temp", "estimate"] == pytest.approx(-0.2322, abs=1e-4)
    assert s.loc["(Intercept)", "std_error"] == pytest.approx(7.3786, abs=1e-4)
    assert s.loc["temp", "std_error"] == pytest.approx(0.1082, abs=1e-4)
    assert res.converged and res.problems == []
    assert np.allclose(res.ps, 1 / (1 + np.exp(-res.linear_predictor)))


def test_logistic_matches_unpenalised_sklearn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    n = 500
    df = pd.DataFrame({"age": rng.normal(60, 10, n), "ecog": rng.choice(["0", "1", "2"], n),
                       "ehs": rng.integers(0, 2, n)})
    lp = -0.5 + 0.04 * (df["age"] - 60) + 0.6 * (df["ecog"] == "1") + 0.9 * df["ehs"]
    df["arm"] = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)
    res = estimate_propensity(df, "arm", ["age", "ecog", "ehs"])
    assert list(res.design.columns) == ["(Intercept)", "age", "ecog[1]", "ecog[2]", "ehs"]  # reference ecog 0
    X = res.design.drop(columns="(Intercept)").to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = LogisticRegression(C=np.inf, tol=1e-12, max_iter=100000).fit(X, df["arm"])
    ours = res.summary.set_index("term")["estimate"]
    assert ours["(Intercept)"] == pytest.approx(sk.intercept_[0], abs=1e-4)
    assert ours.drop("(Intercept)").to_numpy() == pytest.approx(sk.coef_[0], abs=1e-4)
    assert res.ps.to_numpy() == pytest.approx(sk.predict_proba(X)[:, 1], abs=1e-6)


def test_factor_coefficient_is_hand_log_odds_ratio():
    # saturated model on one factor: level a 3/10 treated, level b 6/10 treated
    # intercept = log(3/7); coefficient of b = log(6/4) - log(3/7)
    g = ["a"] * 10 + ["b"] * 10
    y = [1] * 3 + [0] * 7 + [1] * 6 + [0] * 4
    res = estimate_propensity(pd.DataFrame({"g": g, "y": y}), "y", ["g"])
    s = res.summary.set_index("term")["estimate"]
    assert s["(Intercept)"] == pytest.approx(np.log(3 / 7), abs=1e-6)
    assert s["g[b]"] == pytest.approx(np.log(6 / 4) - np.log(3 / 7), abs=1e-6)


def test_missing_indicator_and_complete_case():
    df = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0, 10.0, 3.0, np.nan, 5.0],
                       "g": ["u", "v", "v", None, "u", "v", "u", "v"],
                       "y": [0, 1, 0, 1, 0, 1, 1, 0]})
    res = estimate_propensity(df, "y", ["x", "g"], missing="indicator")
    # median of observed x (1, 2, 4, 10, 3, 5) = (3 + 4) / 2 = 3.5; mode of g: v (4) over u (3)
    assert res.design.loc[[2, 6], "x"].tolist() == [3.5, 3.5]
    assert res.design["x_missing"].tolist() == [0, 0, 1, 0, 0, 0, 1, 0]
    assert res.design.loc[3, "g[v]"] == 1.0 and res.design.loc[3, "g_missing"] == 1.0
    assert len(res.ps) == 8
    cc = estimate_propensity(df, "y", ["x", "g"], missing="complete_case")
    assert cc.dropped_rows["row"].tolist() == [2, 3, 6]
    assert cc.dropped_rows["reason"].tolist() == ["missing x", "missing g", "missing x"]
    assert list(cc.ps.index) == [0, 1, 4, 5, 7]


def test_constant_missing_and_aliased_covariates_are_dropped_with_messages():
    rng = np.random.default_rng(1)
    n = 60
    df = pd.DataFrame({"x": rng.normal(size=n), "const": 7.0, "empty": np.nan, "y": rng.integers(0, 2, n)})
    df["x2"] = 2 * df["x"]
    res = estimate_propensity(df, "y", ["x", "const", "empty", "x2"])
    assert set(res.dropped_covariates) == {"const", "empty"}
    assert any("'empty' dropped: entirely missing" in p for p in res.problems)
    assert any("'const' dropped: constant" in p for p in res.problems)
    assert any("'x2' aliased" in p for p in res.problems)
    assert list(res.summary["term"]) == ["(Intercept)", "x"]


def test_separation_is_reported_not_raised():
    df = pd.DataFrame({"x": [1, 2, 3, 4, 5, 6, 7, 8], "y": [0, 0, 0, 0, 1, 1, 1, 1]})
    res = estimate_propensity(df, "y", ["x"])
    assert any("separation" in p for p in res.problems)
    assert res.ps.notna().all()


def test_treatment_coding_and_bad_input():
    df = pd.DataFrame({"arm": ["HAIC-TKIs-P", "TKIs-P", None, "TKIs-P", "HAIC-TKIs-P", "TKIs-P"],
                       "x": [1.0, 2.0, 3.0, 1.5, 2.5, 0.5]})
    res = estimate_propensity(df, "arm", ["x"], treated_value="HAIC-TKIs-P")
    assert res.treatment.tolist() == [1.0, 0.0, 0.0, 1.0, 0.0]
    assert res.dropped_rows["reason"].tolist() == ["treatment missing"]
    with pytest.raises(ValueError, match="treated_value"):
        estimate_propensity(df, "arm", ["x"])
    with pytest.raises(ValueError, match="not in data"):
        estimate_propensity(df, "arm", ["nope"], treated_value="TKIs-P")
    with pytest.raises(ValueError, match="link"):
        estimate_propensity(df, "arm", ["x"], treated_value="TKIs-P", link="probit")
    with pytest.raises(ValueError, match="missing must be"):
        estimate_propensity(df, "arm", ["x"], treated_value="TKIs-P", missing="mice")
