"""analysis_utils.stats.binomial: every statistic against a hand-computed or published value (R binom.test,
Newcombe 1998, Woolf, chisq.test / fisher.test, Cohen's kappa with the Fleiss-Cohen-Everitt ASE)."""
import math

import pandas as pd
import pytest

from analysis_utils.stats import binomial

LEVELS = ("CR", "PR", "SD", "PD", "NE")


# ---------------------------------------------------------------------------------------------------- one proportion
def test_clopper_pearson_known_values():
    lo, hi = binomial.clopper_pearson_ci(5, 20)
    assert (round(lo, 4), round(hi, 4)) == (0.0866, 0.4910)  # the brief's / R binom.test(5, 20) values
    # k = 0: lower 0, upper solves (1-p)^10 = 0.025 -> 1 - 0.025^(1/10) = 0.30850
    assert binomial.clopper_pearson_ci(0, 10) == (0.0, pytest.approx(1 - 0.025 ** 0.1))
    # k = n: by symmetry lower = 0.025^(1/10) = 0.69150, upper 1
    assert binomial.clopper_pearson_ci(10, 10) == (pytest.approx(0.025 ** 0.1), 1.0)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        binomial.clopper_pearson_ci(3, 2)


def test_wilson_interval_by_hand():
    # 56/70, z = 1.959964, z^2 = 3.841459: centre 56 + 1.920729 = 57.920729;
    # half = z * sqrt(56*14/70 + z^2/4) = 1.959964 * sqrt(11.2 + 0.960365) = 6.834732; denominator 73.841459
    lo, hi = binomial.wilson_ci(56, 70)
    assert lo == pytest.approx((57.920729 - 6.834732) / 73.841459, abs=1e-6)
    assert hi == pytest.approx((57.920729 + 6.834732) / 73.841459, abs=1e-6)


def test_normal_quantile_and_conf_level_check():
    assert binomial.normal_quantile(0.95) == pytest.approx(1.959964, abs=1e-6)
    with pytest.raises(ValueError, match="conf_level"):
        binomial.normal_quantile(1.0)


# -------------------------------------------------------------------------------------------------- two proportions
@pytest.mark.parametrize("k1,n1,k0,n0,lower,upper", [
    (56, 70, 48, 80, 0.0524, 0.3339),   # Newcombe 1998 Table II example (a), method 10
    (9, 10, 3, 10, 0.1705, 0.8090),     # (b)
    (5, 56, 0, 29, -0.0381, 0.1926),    # (d)
    (0, 10, 0, 20, -0.1611, 0.2775),    # (e)
    (10, 10, 0, 20, 0.6791, 1.0000),    # (g)
])
def test_newcombe_hybrid_score_published_examples(k1, n1, k0, n0, lower, upper):
    d, lo, hi = binomial.newcombe_risk_difference(k1, n1, k0, n0)
    assert d == pytest.approx(k1 / n1 - k0 / n0)
    assert (round(lo, 4), round(hi, 4)) == (lower, upper)


def test_woolf_odds_ratio_by_hand():
    # [[56, 14], [48, 32]]: OR = 56*32 / (14*48) = 1792/672 = 2.6667
    # SE = sqrt(1/56 + 1/14 + 1/48 + 1/32) = sqrt(0.141369) = 0.375991; exp(0.980829 -+ 1.959964*0.375991)
    or_, lo, hi, p, note = binomial.woolf_odds_ratio(56, 70, 48, 80)
    assert or_ == pytest.approx(1792 / 672)
    assert (lo, hi) == (pytest.approx(math.exp(0.980829 - 0.736929), rel=1e-5),
                        pytest.approx(math.exp(0.980829 + 0.736929), rel=1e-5))
    assert p == pytest.approx(2 * (1 - 0.995456), abs=2e-5)  # z = 0.980829/0.375991 = 2.6087
    assert note == ""
    # a zero cell: 0.5 added everywhere -> (0.5*5.5)/(10.5*5.5) = 0.5/10.5
    or0, *_, note0 = binomial.woolf_odds_ratio(0, 10, 5, 10)
    assert or0 == pytest.approx(0.5 / 10.5) and "Haldane" in note0


def test_chi_square_or_fisher_by_expected_counts():
    # [[56, 14], [48, 32]]: expected 48.533, 21.467, 55.467, 24.533 (all >= 5); |O - E| = 7.4667
    # chi2 = 55.751 * (1/48.533 + 1/21.467 + 1/55.467 + 1/24.533) = 7.0234 -> p = 2 * (1 - Phi(2.6502)) = 0.00804
    p, test = binomial.two_by_two_test(56, 70, 48, 80)
    assert test == "Pearson chi-square" and p == pytest.approx(0.008045, abs=2e-6)
    # [[3, 1], [1, 3]]: expected 2 < 5 -> Fisher. Hypergeometric probs (x70): a=0..4 -> 1, 16, 36, 16, 1;
    # observed a=3 (16/70); two-sided p sums the tables no more likely: (1 + 16 + 16 + 1)/70 = 34/70
    p, test = binomial.two_by_two_test(3, 4, 1, 4)
    assert test == "Fisher exact" and p == pytest.approx(34 / 70)
    assert math.isnan(binomial.two_by_two_test(0, 4, 0, 4)[0])


# ---------------------------------------------------------------------------------------------------- agreement
def test_cohen_kappa_and_fleiss_cohen_everitt_se_by_hand():
    # table [[20, 5], [10, 15]], n = 50: p_o = 0.7; rows 0.5/0.5, columns 0.6/0.4 -> p_e = 0.5; kappa = 0.4
    # A = 0.4*(1 - 1.1*0.6)^2 + 0.3*(1 - 0.9*0.6)^2 = 0.04624 + 0.06348 = 0.10972
    # B = 0.6^2 * (0.1*(0.6+0.5)^2 + 0.2*(0.4+0.5)^2) = 0.36 * 0.283 = 0.10188; C = (0.4 - 0.5*0.6)^2 = 0.01
    # ASE^2 = (A + B - C) / (50 * 0.25) = 0.2016 / 12.5 = 0.016128
    a = ["a"] * 25 + ["b"] * 25
    b = ["a"] * 20 + ["b"] * 5 + ["a"] * 10 + ["b"] * 15
    k = binomial.cohen_kappa(a, b, labels=["a", "b"])
    assert k["kappa"] == pytest.approx(0.4) and k["se"] == pytest.approx(math.sqrt(0.016128))
    assert k["lower"] == pytest.approx(0.4 - 1.959964 * math.sqrt(0.016128), abs=1e-6)
    assert (k["observed"], k["expected"], k["n"]) == (pytest.approx(0.7), pytest.approx(0.5), 50)
    perfect = binomial.cohen_kappa(["CR", "PR", "SD"], ["CR", "PR", "SD"], LEVELS)
    assert perfect["kappa"] == pytest.approx(1.0) and perfect["se"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="outside labels"):
        binomial.cohen_kappa(["CR", "XX"], ["CR", "PR"], LEVELS)


def test_agreement_table_shows_every_label_and_rejects_unknown_values():
    df = pd.DataFrame({"r": ["a", "b", "b"], "m": ["a", "a", "b"]})
    t = binomial.agreement_table(df, "r", "m", ["a", "b", "c"])
    assert t.loc["b", "a"] == 1 and t.loc["c", "Total"] == 0 and t.loc["Total", "Total"] == 3
    assert (t.index.name, t.columns.name) == ("r", "m")
    with pytest.raises(ValueError, match="'r' holds values outside labels"):
        binomial.agreement_table(df.assign(r=["a", None, "b"]), "r", "m", ["a", "b"])
