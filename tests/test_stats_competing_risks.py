"""analysis_utils.stats.competing_risks against R cmprsk::cuminc (published output) and hand arithmetic.

Reference output: cmprsk's own regression test, tests/test.Rout.save of the CRAN package (R 3.6.1,
``RNGversion("1.6.2")``, ``set.seed(2)``): its data are regenerated here with R's Marsaglia-Multicarry generator,
``exp_rand`` and ``sample`` with sample.kind = "Rounding" (tests/r_rng.py); the largest exponential draw,
5.24864987, is the last failure time cmprsk's ``predict.crr`` prints in the same file, which confirms the data.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis_utils.stats import competing_risks as cr
from analysis_utils.stats.cox import cox_ph
from analysis_utils.stats.kaplan_meier import kaplan_meier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from r_rng import MarsagliaMulticarry  # noqa: E402


@pytest.fixture(scope="module")
def cmprsk_data():
    """set.seed(2); ss <- rexp(100); gg <- factor(sample(1:3,100,replace=TRUE),1:3,c('a','b','c'));
    cc <- sample(0:2,100,replace=TRUE); strt <- sample(1:2,100,replace=TRUE)  (RNGversion("1.6.2"))."""
    g = MarsagliaMulticarry(2)
    ss = np.array([g.exp() for _ in range(100)])
    gg = np.array(["abc"[i - 1] for i in g.sample_index(3, 100)], dtype=object)
    cc = np.array([i - 1 for i in g.sample_index(3, 100)])
    strt = np.array(g.sample_index(2, 100))
    assert ss.max() == pytest.approx(5.24864987, abs=5e-9)
    return ss, gg, cc, strt


def _table(res, times=(1, 2, 3, 4, 5)):
    at = cr.cuminc_at(res, times)
    return (at.pivot_table(index=["group", "cause"], columns="time", values="est", dropna=False),
            at.pivot_table(index=["group", "cause"], columns="time", values="var", dropna=False))


def test_cuminc_one_group_matches_cmprsk(cmprsk_data):
    # print(xx <- cuminc(ss,cc)): times 1..5
    ss, _, cc, _ = cmprsk_data
    est, var = _table(cr.cuminc(ss, cc))
    np.testing.assert_allclose(est.loc[(1, 1)], [0.2352861, 0.3287068, 0.4247898, 0.4247898, 0.4247898], atol=5e-8)
    np.testing.assert_allclose(est.loc[(1, 2)], [0.2567862, 0.3931580, 0.4631781, 0.4911861, 0.4911861], atol=5e-8)
    np.testing.assert_allclose(var.loc[(1, 1)], [0.002062112, 0.002957844, 0.004170634, 0.004170634, 0.004170634],
                               atol=5e-10)
    np.testing.assert_allclose(var.loc[(1, 2)], [0.002190305, 0.003273248, 0.004004514, 0.004369940, 0.004369940],
                               atol=5e-10)


def test_cuminc_groups_and_stratified_gray_test_match_cmprsk(cmprsk_data):
    # print(xx <- cuminc(ss,cc,gg,strt))
    ss, gg, cc, strt = cmprsk_data
    res = cr.cuminc(ss, cc, gg, strt)
    t = res.tests.set_index("cause")
    assert t.loc[1, "stat"] == pytest.approx(3.393977, abs=5e-7) and t.loc[1, "p"] == pytest.approx(0.1832345, abs=5e-8)
    assert t.loc[2, "stat"] == pytest.approx(1.989511, abs=5e-7) and t.loc[2, "p"] == pytest.approx(0.3698139, abs=5e-8)
    assert (t["df"] == 2).all()
    est, var = _table(res)
    nan = np.nan
    expected_est = {("a", 1): [0.1311269, 0.2699184, 0.3420625, 0.3420625, 0.3420625],
                    ("b", 1): [0.2176471, 0.2615686, nan, nan, nan],
                    ("c", 1): [0.3816280, 0.4889137, 0.5723581, nan, nan],
                    ("a", 2): [0.2257601, 0.2972171, 0.4415053, 0.4415053, 0.4415053],
                    ("b", 2): [0.3117647, 0.5878431, nan, nan, nan],
                    ("c", 2): [0.2160508, 0.2607532, 0.2607532, nan, nan]}
    expected_var = {("a", 1): [0.003922836, 0.009113464, 0.012507959, 0.01250796, 0.01250796],
                    ("b", 1): [0.005528913, 0.006916070, nan, nan, nan],
                    ("c", 1): [0.009854126, 0.012351948, 0.015575726, nan, nan],
                    ("a", 2): [0.005947601, 0.007356628, 0.014479506, 0.01447951, 0.01447951],
                    ("b", 2): [0.007033454, 0.010927780, nan, nan, nan],
                    ("c", 2): [0.006497566, 0.007867543, 0.007867543, nan, nan]}
    for key, row in expected_est.items():
        np.testing.assert_allclose(est.loc[key], row, atol=5e-8)
        np.testing.assert_allclose(var.loc[key], expected_var[key], atol=5e-9)


def test_gray_test_subsets_match_cmprsk(cmprsk_data):
    # cuminc(ss,cc,gg2,strt,subset=d2$X == 1): gg2 with NA at 5, 10, 50 (3 cases omitted), first 80 rows;
    # cuminc(ssd,ccd,gg2,strtd,subset=gg != 'b'): two groups, df 1.
    ss, gg, cc, strt = cmprsk_data
    gg2 = gg.copy()
    gg2[[4, 9, 49]] = None
    first80 = np.arange(100) < 80
    t = cr.cuminc(ss[first80], cc[first80], gg2[first80], strt[first80]).tests.set_index("cause")
    assert t.loc[1, "stat"] == pytest.approx(4.716769, abs=5e-7) and t.loc[1, "p"] == pytest.approx(0.0945729, abs=5e-8)
    assert t.loc[2, "stat"] == pytest.approx(2.696396, abs=5e-7) and t.loc[2, "p"] == pytest.approx(0.2597078, abs=5e-8)
    not_b = gg != "b"
    t = cr.cuminc(ss[not_b], cc[not_b], gg2[not_b], strt[not_b]).tests.set_index("cause")
    assert t.loc[1, "stat"] == pytest.approx(3.5151549, abs=5e-8) and t.loc[1, "p"] == pytest.approx(0.06080997, abs=5e-9)
    assert t.loc[2, "stat"] == pytest.approx(0.1400145, abs=5e-8) and t.loc[2, "p"] == pytest.approx(0.70826655, abs=5e-9)
    assert (t["df"] == 1).all()
    one = cr.gray_test(ss[not_b], cc[not_b], gg[not_b], 1, strt[not_b])
    assert one["stat"] == pytest.approx(3.5151549, abs=5e-8)


def test_cif_and_variance_by_hand():
    # times 1..5, status 1, 2, 1, 0, 1 (cause 1 of interest, cause 2 competing, 0 censored):
    # t=1: n=5, d1=1: F = 1/5 = 0.2, S = 0.8.   t=2: n=4, d2=1: S = 0.6.   t=3: n=3, d1=1: F = 0.2 + 0.6/3 = 0.4,
    # S = 0.4.   t=5: n=1, d1=1: F = 0.4 + 0.4 = 0.8.
    # Variance (Gray 1988 as cmprsk): with w = S(t-)^2 d / n^2 and accumulators
    #   cause-1 time: v1 += (1 + F/S)^2 w, v2 += (1/S)(1 + F/S) w, v3 += w / S^2  (1/S taken as 0 when S = 0)
    #   other cause:  v1 += (F/S)^2 w,     v2 += (1/S)(F/S) w,     v3 += w / S^2
    #   var = v1 + F^2 v3 - 2 F v2 at each cause-1 time.
    # t=1: w=0.04, v1=v2=v3=0.0625 -> var = 0.0625 + 0.04*0.0625 - 0.4*0.0625 = 0.04.
    # t=2: w=0.04: v1 += 0.04/9, v2 += 0.04/1.8, v3 += 0.04/0.36.
    # t=3: w=0.04: v1 += 0.16, v2 += 0.2, v3 += 0.25 -> v1=0.2269444, v2=0.2847222, v3=0.4236111,
    #      var = 0.2269444 + 0.16*0.4236111 - 0.8*0.2847222 = 0.0669444.
    # t=5: w=0.16, S=0: v1 += 0.16 -> var = 0.3869444 + 0.64*0.4236111 - 1.6*0.2847222 = 0.2025.
    res = cr.cuminc([1, 2, 3, 4, 5], [1, 2, 1, 0, 1])
    c1 = res.curves[res.curves.cause == 1]
    np.testing.assert_allclose(c1["time"], [0, 1, 3, 5])
    np.testing.assert_allclose(c1["est"], [0, 0.2, 0.4, 0.8])
    np.testing.assert_allclose(c1["var"], [0, 0.04, 0.0669444444, 0.2025], atol=1e-9)
    at = cr.cuminc_at(res, [0.5, 2.5, 5, 6]).query("cause == 1")
    assert at["est"].tolist()[:3] == [0.0, 0.2, 0.8] and np.isnan(at["est"].iloc[3])   # beyond follow-up: NA
    assert res.tests.empty


def test_without_competing_events_cif_is_one_minus_km():
    t = np.array([2, 3, 3, 5, 7, 8, 8, 11, 12, 15.0])
    e = np.array([1, 1, 0, 1, 0, 1, 1, 0, 1, 0])
    res = cr.cuminc(t, e)
    km = kaplan_meier(t, e)
    km_ev = km[km["n_event"] > 0]
    np.testing.assert_allclose(res.curves["est"].to_numpy()[1:], 1 - km_ev["surv"].to_numpy())


def test_confidence_limits():
    # log-log: F^exp(-+z se/(F log F)); F = 0.2, var = 0.04 (se 0.2): z*se/(F log F) = 1.959964*0.2/(0.2*log 0.2)
    # = -1.217794 -> lower 0.2^exp(1.217794) = 0.2^3.37982 = 0.004366, upper 0.2^exp(-1.217794) = 0.2^0.295874 = 0.6212.
    lo, hi = cr.cif_confint([0.2, 0.0], [0.04, 0.0])
    assert lo[0] == pytest.approx(0.2 ** np.exp(1.959964 / np.log(5)), rel=1e-6)
    assert hi[0] == pytest.approx(0.2 ** np.exp(-1.959964 / np.log(5)), rel=1e-6)
    assert np.isnan(lo[1]) and np.isnan(hi[1])
    lo, hi = cr.cif_confint([0.2], [0.04], conf_type="plain")
    assert lo[0] == 0.0 and hi[0] == pytest.approx(0.2 + 1.959964 * 0.2, rel=1e-6)
    with pytest.raises(ValueError, match="conf_type"):
        cr.cif_confint([0.2], [0.04], conf_type="log")


def test_cause_specific_cox_is_cox_of_the_cause_indicator(cmprsk_data):
    ss, gg, cc, _ = cmprsk_data
    df = pd.DataFrame({"t": ss, "status": cc, "grp": gg})
    a = cr.cause_specific_cox(df, "t", "status", 1, ["grp"])
    b = cox_ph(df.assign(ev=(cc == 1).astype(int)), "t", "ev", ["grp"])
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_bad_input():
    with pytest.raises(ValueError, match=">= 0"):
        cr.cuminc([-1, 2], [1, 0])
    with pytest.raises(ValueError, match="two groups"):
        cr.gray_test([1, 2], [1, 0], ["a", "a"], 1)
