"""analysis_utils.stats.multiplicity (fixed-sequence testing) and analysis_utils.stats.clustered (robust score test,
percentile interval, cluster bootstrap): hand arithmetic."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis_utils.stats.clustered import (bootstrap_percentile_ci, cluster_bootstrap, robust_score_test,
                                            rmst_difference_cluster_bootstrap)
from analysis_utils.stats.multiplicity import fixed_sequence
from analysis_utils.stats.rmst import rmst_difference


def test_fixed_sequence_stops_at_first_non_rejection():
    # p = 0.01, 0.04, 0.20, 0.001 at alpha 0.05: H1, H2 rejected; H3 not (0.20); H4 not tested although 0.001.
    t = fixed_sequence(["os", "pfs1", "pfs2", "orr"], [0.01, 0.04, 0.20, 0.001])
    assert t["rejected"].tolist() == [True, True, False, False]
    assert t["tested"].tolist() == [True, True, True, False]
    np.testing.assert_allclose(t["adjusted_p"], [0.01, 0.04, 0.20, 0.20])
    # all rejected; the first fails -> nothing else is tested; a missing p stops the sequence
    assert fixed_sequence(list("abc"), [0.001, 0.002, 0.05])["rejected"].all()     # 0.05 <= 0.05
    first_fails = fixed_sequence(list("abc"), [0.3, 0.001, 0.001])
    assert first_fails["tested"].tolist() == [True, False, False] and not first_fails["rejected"].any()
    gap = fixed_sequence(list("abc"), [0.01, np.nan, 0.001])
    assert gap["rejected"].tolist() == [True, False, False] and np.isnan(gap["adjusted_p"][1:]).all()
    with pytest.raises(ValueError):
        fixed_sequence(["a"], [1.5])


def _toy():
    # times 1, 2, 3, 4; events 1, 1, 0, 1; x = 1, 0, 1, 0
    return pd.DataFrame({"t": [1.0, 2, 3, 4], "e": [1, 1, 0, 1], "x": [1.0, 0, 1, 0], "own": [1, 2, 3, 4],
                         "pair": ["a", "a", "b", "b"]})


def test_robust_score_test_by_hand():
    # At beta = 0 the risk-set means of x are 2/4 (t=1), 1/3 (t=2), 0 (t=4); hazard increments 1/4, 1/3, 1.
    # Score residuals r_i = d_i (x_i - xbar(t_i)) - sum_{event times t_j <= t_i} (x_i - xbar(t_j)) / n_j:
    #   r1 = 1/2 - 1/8 = 3/8; r2 = -1/3 - (-1/8 - 1/9) = -7/72; r3 = -(1/8 + 2/9) = -25/72;
    #   r4 = 0 - (-1/8 - 1/9 + 0) = 17/72.  u = sum r = 1/6 (= sum over deaths of x - xbar).
    # Own clusters: sum r^2 = (729 + 49 + 625 + 289) / 5184 = 1692 / 5184 = 0.3263889,
    #   stat = u^2 / sum r^2 = (1/36) / 0.3263889 = 0.0851064.
    # Pairs {1,2}, {3,4}: sums 20/72, -8/72 -> stat = (1/36) / ((400 + 64)/5184) = 5184 / (36 * 464) = 0.3103448.
    r = np.array([3 / 8, -7 / 72, -25 / 72, 17 / 72])
    own = robust_score_test(_toy(), "t", "e", ["x"], "own")
    assert own["stat"] == pytest.approx((1 / 36) / np.sum(r ** 2), rel=1e-10)
    assert own["stat"] == pytest.approx(0.0851064, abs=1e-7) and own["df"] == 1 and own["n_clusters"] == 4
    pair = robust_score_test(_toy(), "t", "e", ["x"], "pair")
    assert pair["stat"] == pytest.approx(5184 / (36 * 464), rel=1e-10)
    assert pair["p"] == pytest.approx(stats.chi2.sf(5184 / (36 * 464), 1), rel=1e-12)
    with pytest.raises(ValueError, match="no events"):
        robust_score_test(_toy().assign(e=0), "t", "e", ["x"], "pair")


def test_percentile_interval_as_boot_norm_inter():
    # R = 19 replicates 1..19, 90 %: rk = 20 * 0.05 = 1 and 20 * 0.95 = 19 -> order statistics 1 and 19.
    assert bootstrap_percentile_ci(np.arange(1, 20), 0.90) == (1.0, 19.0)
    # R = 9, 80 %: rk = 10 * 0.1 = 1 -> t(1); 10 * 0.9 = 9 -> t(9).  R = 10, 80 %: rk = 1.1 -> between t(1) and t(2)
    # on the normal-quantile scale: t1 + (qnorm(.1) - qnorm(1/11)) / (qnorm(2/11) - qnorm(1/11)) * (t2 - t1).
    x = np.array([3.0, 1, 2, 5, 4, 7, 6, 9, 8, 10])
    lo, hi = bootstrap_percentile_ci(x, 0.80)
    q = stats.norm.ppf
    assert lo == pytest.approx(1 + (q(0.1) - q(1 / 11)) / (q(2 / 11) - q(1 / 11)), rel=1e-12)
    assert hi == pytest.approx(9 + (q(0.9) - q(9 / 11)) / (q(10 / 11) - q(9 / 11)), rel=1e-12)


def test_cluster_bootstrap_resamples_whole_clusters():
    # A value constant within each cluster (A: 0, B: 10), clusters of equal size: a replicate draws A twice, B twice
    # or one of each, so every replicate mean is 0, 10 or 5; row-level resampling would also give 2.5 and 7.5.
    df = pd.DataFrame({"c": ["A", "A", "B", "B"], "v": [0.0, 0.0, 10.0, 10.0]})
    res = cluster_bootstrap(df, "c", lambda d: d["v"].mean(), n_boot=200, seed=1)
    assert set(np.unique(res["replicates"])) <= {0.0, 5.0, 10.0} and res["estimate"] == 5.0
    again = cluster_bootstrap(df, "c", lambda d: d["v"].mean(), n_boot=200, seed=1)
    np.testing.assert_array_equal(res["replicates"], again["replicates"])      # seeded


def test_rmst_difference_bootstrap_point_estimate_is_rmst2():
    rng = np.random.default_rng(3)
    n = 120
    pair = np.repeat(np.arange(n // 2), 2)
    arm = np.tile(["T", "C"], n // 2)
    t = rng.exponential(np.where(arm == "T", 14.0, 9.0)) + 0.01
    c = rng.uniform(5, 40, n)
    e = (t <= c).astype(int)
    t = np.minimum(t, c)
    ref = rmst_difference(t, e, arm, tau=12, treatment="T").set_index("quantity").loc["RMST difference"]
    res = rmst_difference_cluster_bootstrap(t, e, arm, pair, 12, "T", n_boot=300, seed=7)
    assert res["estimate"] == pytest.approx(ref["estimate"], rel=1e-12)
    assert res["lower"] < res["estimate"] < res["upper"] and res["n_failed"] == 0
    assert 0.5 * ref["se"] < res["se"] < 2 * ref["se"]          # same order as the independent-arms variance
