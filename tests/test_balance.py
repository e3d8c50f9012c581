"""Tests for analysis_utils.balance on tiny hand-computed vectors (MatchIt summary.matchit / cobalt definitions)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from analysis_utils.stats.balance import (
    balance_summary,
    balance_table,
    ecdf_diffs,
    effective_sample_size,
    sample_sizes,
    smd_denominator,
    weighted_var,
)

# treated x = 1, 2, 3: mean 2, variance ((1-2)^2 + 0 + (3-2)^2) / 2 = 1
# control x = 2, 4, 6, 8: mean 5, variance (9 + 1 + 1 + 9) / 3 = 20/3
DF = pd.DataFrame({
    "x": [1, 2, 3, 2, 4, 6, 8],
    "b": [1, 1, 0, 1, 0, 0, 0],  # treated p = 2/3, control p = 1/4
    "g": ["u", "v", "v", "u", "u", "w", "u"],
    "t": [1, 1, 1, 0, 0, 0, 0],
})
W = np.array([1, 1, 1, 1, 1, 2, 0], dtype=float)  # control weights 1, 1, 2, 0


def row(tab: pd.DataFrame, term: str) -> pd.Series:
    return tab.set_index("term").loc[term]


def test_smd_denominators_by_estimand():
    # ATT: SD treated = 1 -> (2 - 5) / 1 = -3
    # ATC: SD control = sqrt(20/3) -> -3 / 2.5820 = -1.1619
    # ATE: sqrt((1 + 20/3) / 2) = sqrt(23/6) -> -3 / 1.9579 = -1.5323
    for estimand, expected in (("ATT", -3.0), ("ATC", -3 / np.sqrt(20 / 3)), ("ATE", -3 / np.sqrt(23 / 6))):
        tab = balance_table(DF, "t", ["x"], estimand=estimand)
        assert row(tab, "x")["smd_un"] == pytest.approx(expected)
    assert row(balance_table(DF, "t", ["x"], s_d_denom="control"), "x")["sd_denominator"] == \
        pytest.approx(np.sqrt(20 / 3))


def test_variance_ratio_and_ecdf_unweighted():
    tab = balance_table(DF, "t", ["x"])
    r = row(tab, "x")
    assert r["type"] == "continuous"
    assert (r["mean_treated_un"], r["mean_control_un"]) == (2.0, 5.0)
    assert r["var_ratio_un"] == pytest.approx(1 / (20 / 3))  # 0.15
    # eCDF at the distinct values 1, 2, 3, 4, 6, 8:
    # F_t = 1/3, 2/3, 1, 1, 1, 1;  F_c = 0, 1/4, 1/4, 1/2, 3/4, 1
    # |diff| = 1/3, 5/12, 3/4, 1/2, 1/4, 0 -> mean (4 + 5 + 9 + 6 + 3 + 0)/12/6 = 27/72 = 0.375, max 0.75
    assert r["ecdf_mean_un"] == pytest.approx(0.375)
    assert r["ecdf_max_un"] == pytest.approx(0.75)


def test_weighted_statistics_use_unadjusted_denominator():
    tab = balance_table(DF, "t", ["x"], weights=W, estimand="ATT")
    r = row(tab, "x")
    # weighted control mean (2 + 4 + 2*6 + 0*8) / 4 = 4.5; SMD uses the unadjusted treated SD 1: (2 - 4.5) / 1
    assert r["mean_control_adj"] == pytest.approx(4.5)
    assert r["smd_adj"] == pytest.approx(-2.5)
    # control w normalised (.25, .25, .5, 0): sum w (x - 4.5)^2 = .25*6.25 + .25*.25 + .5*2.25 = 2.75,
    # 1 - sum w^2 = 1 - (.0625 + .0625 + .25) = .625 -> var 4.4; treated var 1 -> ratio 1/4.4
    assert r["var_ratio_adj"] == pytest.approx(1 / 4.4)
    # eCDF with control weights (.25, .25, .5, 0) at 1, 2, 3, 4, 6, 8:
    # F_c = 0, .25, .25, .5, 1, 1 -> |diff| 1/3, 5/12, 3/4, 1/2, 0, 0 -> mean 24/12/6 = 1/3, max .75
    assert r["ecdf_mean_adj"] == pytest.approx(1 / 3)
    assert r["ecdf_max_adj"] == pytest.approx(0.75)


def test_binary_std_versus_raw():
    # p_t = 2/3, p_c = 1/4, difference 5/12; ATT SD of a binary is sqrt(p(1-p)) = sqrt(2/9) (no n - 1)
    std = row(balance_table(DF, "t", ["b"]), "b")
    assert std["type"] == "binary" and std["diff_type"] == "std"
    assert std["smd_un"] == pytest.approx((5 / 12) / np.sqrt(2 / 9))  # 0.8839
    assert np.isnan(std["var_ratio_un"])  # not computed for binary variables
    assert std["ecdf_mean_un"] == pytest.approx(5 / 12) and std["ecdf_max_un"] == pytest.approx(5 / 12)
    raw = row(balance_table(DF, "t", ["b"], binary="raw"), "b")
    assert raw["diff_type"] == "raw" and raw["smd_un"] == pytest.approx(5 / 12)


def test_factor_levels_each_get_a_row():
    tab = balance_table(DF, "t", ["g"])
    assert tab["term"].tolist() == ["g: u", "g: v", "g: w"]
    # u: treated 1/3, control 3/4; v: 2/3 vs 0; w: 0 vs 1/4
    assert tab["mean_treated_un"].tolist() == pytest.approx([1 / 3, 2 / 3, 0])
    assert tab["mean_control_un"].tolist() == pytest.approx([3 / 4, 0, 1 / 4])
    # level w: treated SD is 0 -> MatchIt falls back to the pooled proportional SD:
    # sum over groups s_i (1 - s_i/n_i) / n = (0 + 1 * (1 - 1/4)) / 7 = 3/28 -> SMD = -1/4 / sqrt(3/28)
    assert row(tab, "g: w")["smd_un"] == pytest.approx(-0.25 / np.sqrt(3 / 28))


def test_fallback_denominator_continuous():
    # treated x constant (SD 0) -> pooled SD with proportional contribution:
    # centred values t (0, 0), c (-1, 1): sum of squares 2 / (n - 2 = 2) = 1 -> SMD (5 - 2) / 1 = 3
    x = np.array([5.0, 5.0, 1.0, 3.0])
    t = np.array([True, True, False, False])
    assert smd_denominator(x, t, "treated", binary=False) == pytest.approx(1.0)
    tab = balance_table(pd.DataFrame({"x": x, "t": t}), "t", ["x"])
    assert tab["smd_un"].item() == pytest.approx(3.0)


def test_weighted_var_and_ess():
    # equal weights give the n - 1 sample variance: var(1, 2, 3) = 1
    assert weighted_var(np.array([1.0, 2, 3]), np.ones(3), binary=False) == pytest.approx(1.0)
    assert weighted_var(np.array([1.0, 0, 0, 1]), np.ones(4), binary=True) == pytest.approx(0.25)  # p(1-p)
    with np.errstate(invalid="raise"):  # all ones: the normalised weights sum to 1 + 2e-16 for n = 20
        assert weighted_var(np.ones(20), np.ones(20), binary=True) == 0.0
        x, t = np.r_[np.ones(20), np.ones(10), np.zeros(10)], np.r_[np.ones(20), np.zeros(20)] > 0
        assert smd_denominator(x, t, "treated", True) == pytest.approx(np.sqrt(0.125))  # MatchIt's pooled fallback
    # Kish: (1 + 1 + 2 + 0)^2 / (1 + 1 + 4) = 16/6
    assert effective_sample_size([1, 1, 2, 0]) == pytest.approx(16 / 6)
    nn = sample_sizes(DF["t"], W)
    assert nn.loc["Adjusted", "Control"] == 3 and nn.loc["Adjusted (ESS)", "Control"] == pytest.approx(16 / 6)
    assert nn.loc["All (ESS)", "Treated"] == pytest.approx(3.0)


def test_ecdf_helper_and_too_small():
    m, mx = ecdf_diffs(np.array([1.0, 2.0]), np.array([True, False]), np.ones(2))
    assert (m, mx) == (0.5, 1.0)  # at 1: |1 - 0| = 1; at 2: 0
    # one nonzero weight in each group -> MatchIt "too.small": SMD, variance ratio, eCDF are NaN
    tab = balance_table(DF, "t", ["x"], weights=[1, 0, 0, 1, 0, 0, 0])
    r = row(tab, "x")
    assert np.isnan(r["smd_adj"]) and np.isnan(r["var_ratio_adj"]) and np.isnan(r["ecdf_max_adj"])


def test_missing_values_are_left_out_per_covariate():
    df = DF.assign(x=[1, 2, 3, np.nan, 4, 6, 8])  # control 2 missing -> control mean (4 + 6 + 8)/3 = 6
    r = row(balance_table(df, "t", ["x"]), "x")
    assert r["n_missing"] == 1 and r["mean_control_un"] == pytest.approx(6.0)


def test_balance_summary_threshold():
    tab = balance_table(DF, "t", ["x", "b"], weights=W)
    s = balance_summary(tab, threshold=0.1)
    assert s.max_abs_smd_un == pytest.approx(3.0)
    assert s.max_abs_smd_adj == pytest.approx(2.5)
    assert s.failing == ["x", "b"] and not s.balanced
    # balanced after weights that equalise the groups exactly
    same = pd.DataFrame({"x": [1.0, 2, 1, 2], "t": [1, 1, 0, 0]})
    ok = balance_summary(balance_table(same, "t", ["x"], weights=np.ones(4)))
    assert ok.failing == [] and ok.balanced and ok.max_abs_smd_adj == 0.0


def test_balance_bad_input():
    with pytest.raises(ValueError, match="estimand"):
        balance_table(DF, "t", ["x"], estimand="ATO")
    with pytest.raises(ValueError, match="binary"):
        balance_table(DF, "t", ["x"], binary="pooled")
    with pytest.raises(ValueError, match="not in data"):
        balance_table(DF, "t", ["nope"])
    with pytest.raises(ValueError, match="weights"):
        balance_table(DF, "t", ["x"], weights=[1, 2])
    with pytest.raises(ValueError, match="non-negative"):
        balance_table(DF, "t", ["x"], weights=-W)
    with pytest.raises(ValueError, match="0/1"):
        balance_table(DF.assign(t=[1, 2, 1, 0, 0, 0, 0]), "t", ["x"])
    with pytest.raises(ValueError, match="balance_table"):
        balance_summary(pd.DataFrame({"a": [1]}))


def test_binary_variance_of_a_constant_group_is_zero_not_an_ulp_below():
    """20 treated all 1: the 20 weights 1/20 sum to 1 + 1 ulp, so p(1-p) came out -2e-16 and sqrt warned (a
    RuntimeWarning printed with the package's absolute path into notebook 04's balance-by-centre table)."""
    x = np.r_[np.ones(20), np.zeros(5)]
    t = np.r_[np.ones(20, bool), np.zeros(5, bool)]
    assert weighted_var(x[t], np.ones(20), True) == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert smd_denominator(x, t, "treated", True) == 0.0
