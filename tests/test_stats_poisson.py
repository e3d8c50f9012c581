"""analysis_utils.stats.poisson against the examples of R's ?poisson.test (R 4.x printed output) and by hand."""
from __future__ import annotations

import pytest
from scipy import stats

from analysis_utils.stats.poisson import poisson_rate_ci, poisson_rate_ratio


def test_one_sample_matches_r_help_example():
    # poisson.test(137, 24.19893): estimate 5.661407, 95 percent CI 4.753125 6.692709
    rate, lo, hi = poisson_rate_ci(137, 24.19893)
    assert rate == pytest.approx(5.661407, abs=5e-7)
    assert lo == pytest.approx(4.753125, abs=5e-7) and hi == pytest.approx(6.692709, abs=5e-7)


def test_two_sample_matches_r_help_example():
    # poisson.test(c(11, 6+8+7), c(800, 1083+1050+878)): count1 = 11, expected count1 = 6.7174, p-value = 0.07967,
    # 95 percent CI 0.8584264 4.2772659, rate ratio 1.971488
    res = poisson_rate_ratio(11, 800, 21, 1083 + 1050 + 878)
    assert res["rate_ratio"] == pytest.approx(1.971488, abs=5e-7)
    assert res["lower"] == pytest.approx(0.8584264, abs=5e-8) and res["upper"] == pytest.approx(4.2772659, abs=5e-8)
    assert res["p"] == pytest.approx(0.07967, abs=5e-6) and res["expected_x1"] == pytest.approx(6.7174, abs=5e-5)


def test_by_hand_and_edges():
    # x = 0 over 50 patient-years: lower 0, upper = qgamma(0.975, 1)/50 = -log(0.025)/50 = 0.0737776 per year,
    # i.e. 7.37776 per 100 patient-years.
    rate, lo, hi = poisson_rate_ci(0, 50.0, per=100)
    assert (rate, lo) == (0.0, 0.0) and hi == pytest.approx(-100 * __import__("math").log(0.025) / 50, rel=1e-12)
    # x = 3 over 2 years per 100: lower = qgamma(0.025, 3)/2 * 100
    assert poisson_rate_ci(3, 2.0, per=100)[1] == pytest.approx(stats.gamma.ppf(0.025, 3) / 2 * 100, rel=1e-12)
    assert poisson_rate_ratio(0, 10, 0, 10)["p"] != poisson_rate_ratio(0, 10, 0, 10)["p"]  # NaN
    assert poisson_rate_ratio(3, 10, 0, 10)["upper"] == float("inf")
    with pytest.raises(ValueError, match="person-time"):
        poisson_rate_ci(1, 0.0)
    with pytest.raises(ValueError, match="count"):
        poisson_rate_ci(1.5, 2.0)
