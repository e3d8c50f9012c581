"""Tests for the survival estimators of analysis_utils.stats (kaplan_meier, logrank, cox, cox_zph, rmst, evalue,
landmark): hand-computed cases (arithmetic in comments), published R outputs, and agreement with lifelines /
scikit-survival where they compute the same quantity. Rules: docs/methods/survival.md.

R references used (R itself is not available here):
- lung, survfit(Surv(time, status) ~ sex): summary rows for sex=1 as printed in
  https://drkim.quarto.pub/non_semi_parametric_survival_analysis (R default conf.type = "log").
- lung, survdiff(Surv(time, status) ~ sex): O/E 112/91.5817 and 53/73.4183, chisq 10.3267, p = 0.00131116, as
  printed in https://www.staging.packtpub.com/en-gb/product/machine-learning-with-r-cookbook-second-edition-9781787284395/chapter/survival-analysis-6/section/using-the-log-rank-test-ch06lvl1sec69
- EValue::evalues.HR help example (HR 0.56, CI 0.46-0.69, rare = FALSE),
  https://search.r-project.org/CRAN/refmans/EValue/html/evalues.HR.html, and the leukemia example of
  VanderWeele & Ding 2017 (RR 0.80, CI 0.71-0.91 -> E-values 1.81 and 1.43), EValue::evalues.RR help page.
lifelines' copy of R's lung data (status recoded 0/1) is used for the lung checks.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.datasets import load_lung
from lifelines.statistics import logrank_test as ll_logrank
from lifelines.utils import concordance_index as ll_concordance
from lifelines.utils import restricted_mean_survival_time
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.metrics import concordance_index_censored
from sksurv.nonparametric import kaplan_meier_estimator
from sksurv.util import Surv

from analysis_utils.stats import cox, cox_zph
from analysis_utils.stats.cox import concordance_index, cox_interaction_p, cox_ph
from analysis_utils.stats.cox_zph import schoenfeld_test
from analysis_utils.stats.evalue import evalue_hr
from analysis_utils.stats.kaplan_meier import (kaplan_meier, median_follow_up_reverse_km, median_survival,
                                               number_at_risk, survival_at)
from analysis_utils.stats.landmark import landmark
from analysis_utils.stats.logrank import logrank_test
from analysis_utils.stats.rmst import rmst, rmst_difference

Z = 1.959963984540054  # qnorm(0.975)

# Six subjects: (time, event) = (1,1) (2,1) (2,0) (3,1) (4,0) (5,1)
T6 = np.array([1, 2, 2, 3, 4, 5], dtype=float)
E6 = np.array([1, 1, 0, 1, 0, 1])


@pytest.fixture(scope="module")
def lung() -> pd.DataFrame:
    return load_lung()


# ---------------------------------------------------------------------------------------------- Kaplan-Meier
def test_km_hand_computed_greenwood_and_three_transforms():
    # t=1: n=6 d=1 -> S=5/6=0.833333; Greenwood sum 1/(6*5)=0.033333
    # t=2: n=5 d=1 c=1 -> S=5/6*4/5=0.666667; sum += 1/(5*4) -> 0.083333
    # t=3: n=3 d=1 -> S=2/3*2/3=0.444444; sum += 1/(3*2) -> 0.25, se(log S)=0.5, se(S)=0.444444*0.5=0.222222
    # t=4: censored, no change; t=5: n=1 d=1 -> S=0 (Greenwood term 1/(1*0) infinite -> NA in R)
    km = kaplan_meier(T6, E6, conf_type="log")
    assert km["time"].tolist() == [1, 2, 3, 4, 5]
    assert km["n_risk"].tolist() == [6, 5, 3, 2, 1]
    assert km["n_event"].tolist() == [1, 1, 1, 0, 1]
    assert km["n_censor"].tolist() == [0, 1, 0, 1, 0]
    np.testing.assert_allclose(km["surv"], [5 / 6, 2 / 3, 4 / 9, 4 / 9, 0.0])
    np.testing.assert_allclose(km["std_err"][:4], [5 / 6 * math.sqrt(1 / 30), 2 / 3 * math.sqrt(1 / 12), 2 / 9, 2 / 9])
    # log (R default) at t=3: 0.444444 * exp(-1.959964 * 0.5) = 0.444444 / 2.664456 = 0.166808; upper 1.18 -> 1
    assert km["lower"][2] == pytest.approx(0.166808, abs=1e-6)
    assert km["upper"][2] == 1.0
    # t=1: 0.833333 * exp(-1.959964 * 0.182574) = 0.582655
    assert km["lower"][0] == pytest.approx(0.582655, abs=1e-6)
    assert np.isnan(km["lower"][4]) and np.isnan(km["upper"][4]) and np.isnan(km["std_err"][4])
    # log-log at t=3: S^exp(+-1.959964*0.5/|log 0.444444|) = S^exp(+-1.208465) -> 0.444444^3.348370 = 0.066187,
    #   0.444444^0.298652 = 0.784908
    ll = kaplan_meier(T6, E6, conf_type="log-log")
    assert ll["lower"][2] == pytest.approx(0.066187, abs=1e-6)
    assert ll["upper"][2] == pytest.approx(0.784908, abs=1e-6)
    # plain at t=3: 0.444444 -+ 1.959964*0.222222 = (0.008897, 0.879992)
    pl = kaplan_meier(T6, E6, conf_type="plain")
    assert pl["lower"][2] == pytest.approx(0.008897, abs=1e-6)
    assert pl["upper"][2] == pytest.approx(0.879992, abs=1e-6)
    assert km.attrs["conf_type"] == "log" and km.attrs["variance"] == "greenwood"


def test_km_before_first_event_ci_is_the_point():
    # S = 1 with se 0 before any event: R returns p for both limits (survfit_confint, se == 0)
    km = kaplan_meier([1, 2, 3], [0, 1, 0], conf_type="log-log")
    assert km.loc[0, ["surv", "lower", "upper", "std_err"]].tolist() == [1.0, 1.0, 1.0, 0.0]


def test_km_lung_matches_published_r_summary(lung):
    # R: summary(survfit(Surv(time, status) ~ sex, data = lung)), sex=1, first rows (see module docstring):
    #   time n.risk n.event survival std.err lower upper
    r_rows = [(11, 138, 3, 0.9783, 0.0124, 0.9542, 1.000), (12, 135, 1, 0.9710, 0.0143, 0.9434, 0.999),
              (13, 134, 2, 0.9565, 0.0174, 0.9231, 0.991), (53, 128, 2, 0.9130, 0.0240, 0.8672, 0.961),
              (163, 100, 3, 0.7029, 0.0389, 0.6306, 0.783), (180, 89, 1, 0.6445, 0.0408, 0.5693, 0.730)]
    male = lung[lung["sex"] == 1]
    km = kaplan_meier(male["time"], male["status"]).set_index("time")
    for time, n_risk, n_event, surv, se, lo, hi in r_rows:
        row = km.loc[time]
        assert (row["n_risk"], row["n_event"]) == (n_risk, n_event)
        assert row["surv"] == pytest.approx(surv, abs=5e-5)
        assert row["std_err"] == pytest.approx(se, abs=5e-5)
        assert row["lower"] == pytest.approx(lo, abs=5e-5)
        assert row["upper"] == pytest.approx(hi, abs=5e-4)


def test_km_loglog_agrees_with_lifelines_and_scikit_survival(lung):
    km = kaplan_meier(lung["time"], lung["status"], conf_type="log-log")
    kmf = KaplanMeierFitter().fit(lung["time"], lung["status"])
    ci = kmf.confidence_interval_.loc[km["time"]]
    np.testing.assert_allclose(km["surv"], kmf.survival_function_.loc[km["time"]].iloc[:, 0], atol=1e-12)
    pos = km["surv"].to_numpy() > 0   # at S = 0 lifelines/sksurv print (0, 0), R gives NA
    np.testing.assert_allclose(km["lower"][pos], ci.iloc[:, 0][pos], atol=1e-10)
    np.testing.assert_allclose(km["upper"][pos], ci.iloc[:, 1][pos], atol=1e-10)
    times, prob, conf = kaplan_meier_estimator(lung["status"].astype(bool), lung["time"].astype(float),
                                               conf_type="log-log")
    np.testing.assert_allclose(times, km["time"])
    np.testing.assert_allclose(prob, km["surv"], atol=1e-12)
    np.testing.assert_allclose(conf[0][pos], km["lower"][pos], atol=1e-10)
    np.testing.assert_allclose(conf[1][pos], km["upper"][pos], atol=1e-10)


def test_km_integer_weights_equal_replicated_rows():
    # frequency weights: weight 2 on a row == that row twice (Greenwood on weighted counts, as survfit)
    w = np.array([2, 1, 1, 3, 1, 2])
    weighted = kaplan_meier(T6, E6, weights=w)
    replicated = kaplan_meier(np.repeat(T6, w), np.repeat(E6, w))
    assert weighted.attrs["variance"] == "greenwood"
    pd.testing.assert_frame_equal(weighted, replicated, check_dtype=False)


def test_km_non_integer_weights_use_the_infinitesimal_jackknife():
    # R survfit with non-integer weights defaults to robust=TRUE: Var S(t) = sum_k (w_k dS(t)/dw_k)^2. Check the
    # closed form against central finite differences of the weighted KM (the definition of the IJ).
    rng = np.random.default_rng(3)
    t = rng.integers(1, 12, 25).astype(float)
    e = rng.integers(0, 2, 25)
    w = rng.uniform(0.2, 3.0, 25)
    km = kaplan_meier(t, e, weights=w)
    assert km.attrs["variance"] == "ij"
    h = 1e-6
    infl = []
    for k in range(t.size):
        up, down = w.copy(), w.copy()
        up[k] += h
        down[k] -= h
        s_up = kaplan_meier(t, e, weights=up, variance="greenwood")["surv"].to_numpy()
        s_down = kaplan_meier(t, e, weights=down, variance="greenwood")["surv"].to_numpy()
        infl.append((s_up - s_down) / (2 * h) * w[k])
    np.testing.assert_allclose(km["std_err"], np.sqrt((np.array(infl) ** 2).sum(axis=0)), atol=1e-7)


# ------------------------------------------------------------------------------------------- median, S(t)
def test_median_hand_case_with_ci():
    # S = 0.833 (t1), 0.667 (t2), 0.444 (t3): median = 3 (first time S <= 0.5).
    # log lower curve: 0.5827 (t1), 0.6667*exp(-1.96*0.288675) = 0.3786 (t2) -> lower limit 2.
    # upper curve stays at 1 and is NA at S = 0 -> never reaches 0.5 -> upper limit not reached.
    m = median_survival(kaplan_meier(T6, E6))
    assert m["median"] == 3 and m["lower"] == 2
    assert np.isnan(m["upper"]) and not m["upper_reached"] and m["median_reached"]


def test_median_midpoint_rule_when_curve_is_flat_at_one_half():
    # events at 1,2,3,4: S = .75, .50, .25, 0 -> S == 0.5 on [2, 3) -> R takes the midpoint 2.5 (the usual
    # median of 1,2,3,4); lifelines reports the left end instead (lifelines #861)
    km = kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1])
    assert median_survival(km)["median"] == 2.5
    kmf = KaplanMeierFitter().fit([1, 2, 3, 4], [1, 1, 1, 1])
    assert kmf.median_survival_time_ != 2.5


def test_median_midpoint_uses_tolerance_for_round_off():
    # 1..100 uncensored: S(50) = prod((n-1)/n) is 0.5 only up to round-off; R's tolerance gives (50+51)/2
    km = kaplan_meier(np.arange(1, 101), np.ones(100))
    assert median_survival(km)["median"] == 50.5


def test_median_curve_ending_flat_at_one_half_takes_midpoint_to_last_time():
    # events at 1, 2 then censored at 3, 4: S = .75, .5, .5, .5 to the end -> quantile.survfit: (2 + 4) / 2 = 3
    km = kaplan_meier([1, 2, 3, 4], [1, 1, 0, 0])
    assert median_survival(km)["median"] == 3


def test_median_not_reached_is_nan_with_flag():
    # one event in 5: S = 0.8 at the end -> never reaches 0.5
    m = median_survival(kaplan_meier([1, 2, 3, 4, 5], [1, 0, 0, 0, 0]))
    assert np.isnan(m["median"]) and not m["median_reached"]
    assert np.isnan(m["lower"]) and np.isnan(m["upper"])


def test_survival_at_landmark_times():
    km = kaplan_meier(T6, E6)
    out = survival_at(km, [0.5, 2, 2.5, 4, 6])
    # before the first event S = 1; at t = 2 the drop at 2 is included (right-continuous); 2.5 -> S(2)
    np.testing.assert_allclose(out["surv"][:4], [1.0, 2 / 3, 2 / 3, 4 / 9])
    assert out["n_risk"].tolist() == [6, 5, 3, 2, 0]   # subjects with time >= t
    assert out["beyond_follow_up"].tolist() == [False, False, False, False, True]
    assert np.isnan(out["surv"][4])
    assert out["lower"][1] == pytest.approx(km["lower"][1])


def test_number_at_risk_counts_by_hand():
    # times 2, 6, 6, 7, 12, 15: at 0 -> 6; at 6 -> {6, 6, 7, 12, 15} = 5; at 12 -> {12, 15} = 2; at 18 -> 0
    n = number_at_risk([2, 6, 6, 7, 12, 15], [0, 6, 12, 18])
    assert n.tolist() == [6, 5, 2, 0]


def test_median_follow_up_reverse_km_by_hand():
    # censoring as the event: censored at 2 and 4. t=2: at risk 5, 1 "event" -> G = 4/5; t=4: at risk 2 ->
    # G = 0.8 * 1/2 = 0.4 <= 0.5 -> median follow-up 4
    fu = median_follow_up_reverse_km(T6, E6)
    assert fu["median"] == 4 and fu["median_reached"]


# --------------------------------------------------------------------------------------------------- log-rank
def test_logrank_hand_computed():
    # A: 1, 3, 5+   B: 2, 4, 6
    # t=1: n=6 (3A) d=1 -> E_A = 3/6 = .5,  V = 1*5/5 * (1/2)(1/2) = .25
    # t=2: n=5 (2A) d=1 -> E_A = 2/5 = .4,  V = 1*4/4 * (2/5)(3/5) = .24
    # t=3: n=4 (2A) d=1 -> E_A = 2/4 = .5,  V = .25
    # t=4: n=3 (1A) d=1 -> E_A = 1/3,       V = (1/3)(2/3) = .222222
    # t=6: n=1 -> no variance term.  O_A = 2, E_A = 1.733333, V = .962222, chi2 = .266667^2/.962222 = .073903
    res = logrank_test([1, 3, 5, 2, 4, 6], [1, 1, 0, 1, 1, 1], ["A", "A", "A", "B", "B", "B"])
    assert res.chi2 == pytest.approx(0.073903, abs=1e-6)
    assert res.df == 1
    tab = res.table.set_index("group")
    assert tab.loc["A", "expected"] == pytest.approx(1.733333, abs=1e-6)
    assert tab.loc["B", "expected"] == pytest.approx(5 - 1.733333, abs=1e-6)
    ll = ll_logrank([1, 3, 5], [2, 4, 6], [1, 1, 0], [1, 1, 1])
    assert res.chi2 == pytest.approx(ll.test_statistic, rel=1e-10)


def test_logrank_lung_matches_published_r(lung):
    res = logrank_test(lung["time"], lung["status"], lung["sex"])
    tab = res.table.set_index("group")
    assert tab.loc[1, "observed"] == 112 and tab.loc[2, "observed"] == 53
    assert tab.loc[1, "expected"] == pytest.approx(91.5817, abs=1e-4)
    assert tab.loc[2, "expected"] == pytest.approx(73.4183, abs=1e-4)
    assert res.chi2 == pytest.approx(10.3267, abs=1e-4)
    assert res.p == pytest.approx(0.00131116, abs=1e-8)


def test_logrank_stratified_sums_over_strata():
    # the same data twice as two strata: O, E and V double -> chi2 doubles
    t, e, g = [1, 3, 5, 2, 4, 6], [1, 1, 0, 1, 1, 1], ["A", "A", "A", "B", "B", "B"]
    single = logrank_test(t, e, g)
    strat = logrank_test(t * 2, e * 2, g * 2, strata=[0] * 6 + [1] * 6)
    assert strat.chi2 == pytest.approx(2 * single.chi2)


def test_logrank_no_events_gives_nan_with_note_and_one_group_raises():
    res = logrank_test([1, 2, 3, 4], [0, 0, 0, 0], ["A", "A", "B", "B"])
    assert np.isnan(res.p) and res.df == 0 and "no test" in res.note
    with pytest.raises(ValueError, match="two levels"):
        logrank_test([1, 2], [1, 1], ["A", "A"])


# ------------------------------------------------------------------------------------------------------- Cox
COX3 = pd.DataFrame({"t": [1.0, 2.0, 3.0], "e": [1, 1, 0], "x": [1.0, 0.0, 1.0], "pair": ["a", "a", "b"]})


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cox_closed_form_naive_robust_and_cluster_se(ties):
    # Partial likelihood L = r/(2r+1) * 1/(1+r), r = exp(b). Score 1 - 2r/(2r+1) - r/(1+r) = 0 -> 2r^2 = 1,
    #   r = 1/sqrt(2), b = -log(2)/2 = -0.346574.
    # Information = 2r/(2r+1)^2 + r/(1+r)^2 = 2 * (3 sqrt(2) - 4) = 0.485281 -> naive se = 1/sqrt(I) = 1.435500.
    # Score residuals (p = 2r/(2r+1) = .585786, q = r/(1+r) = .414214):
    #   L1 = (1-p)(1 - r/(2r+1)) = .414214 * .707107 = .292893
    #   L2 = -q + p/(2r+1) + q/(1+r) = -.414214 + .242641 + .242641 = .071068
    #   L3 = -(r/(2r+1)(1-p) + r/(1+r)(1-q)) = -.363961
    # robust var = sum L^2 / I^2 = .223305 / .235498 -> se .973768 (no small-sample factor)
    # cluster {1,2},{3}: ((L1+L2)^2 + L3^2) / I^2 = 2 * .132468 / .235498 -> se 1.060660
    naive = cox_ph(COX3, "t", "e", ["x"], ties=ties).iloc[0]
    assert naive["coef"] == pytest.approx(-math.log(2) / 2, abs=1e-6)
    assert naive["se_naive"] == pytest.approx(1.435500, abs=1e-5)
    assert naive["se_robust"] == pytest.approx(0.973768, abs=1e-5)
    assert naive["se"] == naive["se_naive"]  # R: no cluster, integer weights -> naive variance
    clus = cox_ph(COX3, "t", "e", ["x"], ties=ties, cluster_col="pair")
    assert clus.iloc[0]["se"] == pytest.approx(1.060660, abs=1e-5)
    assert clus.attrs["variance"] == "robust (cluster=pair)"


def test_cox_efron_lung_agrees_with_lifelines(lung):
    out = cox_ph(lung, "time", "status", ["age", "sex"])
    cph = CoxPHFitter().fit(lung[["time", "status", "age", "sex"]], "time", "status")
    np.testing.assert_allclose(out["coef"], cph.params_.to_numpy(), atol=1e-5)
    np.testing.assert_allclose(out["se_naive"], cph.standard_errors_.to_numpy(), rtol=1e-4)
    assert out.attrs["loglik"] == pytest.approx(cph.log_likelihood_, abs=1e-6)
    assert out.attrs["lr_chi2"] == pytest.approx(cph.log_likelihood_ratio_test().test_statistic, rel=1e-6)
    assert out.attrs["concordance"] == pytest.approx(cph.concordance_index_, abs=1e-9)


def test_cox_internal_efron_weighted_stratified_equals_lifelines():
    # the Newton-Raphson used for Breslow (and as fallback) gives lifelines' Efron fit with weights and strata
    rng = np.random.default_rng(1)
    n = 120
    df = pd.DataFrame({"t": rng.integers(1, 30, n).astype(float), "e": rng.integers(0, 2, n),
                       "x1": rng.normal(size=n), "x2": rng.integers(0, 2, n), "w": rng.uniform(0.3, 3, n),
                       "s": rng.integers(0, 3, n)})
    X = df[["x1", "x2"]].to_numpy()
    d = cox._cox_data(X, df["t"].to_numpy(), df["e"].to_numpy(float), df["w"].to_numpy(), df["s"].to_numpy())
    beta, converged = cox._newton_raphson(d, "efron")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph = CoxPHFitter().fit(df, "t", "e", weights_col="w", strata=["s"], fit_options=cox._LIFELINES_FIT_OPTIONS)
    assert converged
    np.testing.assert_allclose(beta, cph.params_.to_numpy(), atol=1e-7)
    assert cox._cox_terms(d, beta, "efron").loglik == pytest.approx(cph.log_likelihood_, abs=1e-8)


def test_cox_breslow_agrees_with_scikit_survival():
    rng = np.random.default_rng(4)
    n = 150
    df = pd.DataFrame({"t": rng.integers(1, 25, n).astype(float), "e": rng.integers(0, 2, n),
                       "x1": rng.normal(size=n), "x2": rng.integers(0, 2, n)})
    out = cox_ph(df, "t", "e", ["x1", "x2"], ties="breslow")
    m = CoxPHSurvivalAnalysis(ties="breslow").fit(df[["x1", "x2"]], Surv.from_arrays(df["e"].astype(bool), df["t"]))
    np.testing.assert_allclose(out["coef"], m.coef_, atol=1e-7)
    efron = cox_ph(df, "t", "e", ["x1", "x2"], ties="efron")
    assert not np.allclose(efron["coef"], out["coef"], atol=1e-4)  # ties matter here


def test_cox_robust_and_cluster_se_match_lifelines_without_ties():
    rng = np.random.default_rng(2)
    n = 60
    df = pd.DataFrame({"t": rng.permutation(n) + 1.0, "e": rng.integers(0, 2, n), "x1": rng.normal(size=n),
                       "x2": rng.integers(0, 2, n), "w": rng.uniform(0.3, 3, n), "cl": rng.integers(0, 15, n)})
    ours = cox_ph(df, "t", "e", ["x1", "x2"], weights_col="w", cluster_col="cl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph = CoxPHFitter().fit(df, "t", "e", weights_col="w", cluster_col="cl", fit_options=cox._LIFELINES_FIT_OPTIONS)
    np.testing.assert_allclose(ours["se"], cph.standard_errors_.to_numpy(), rtol=1e-6)
    # non-integer weights without cluster -> robust by default (R's has.rwt rule)
    assert cox_ph(df, "t", "e", ["x1", "x2"], weights_col="w").attrs["variance"] == "robust"


@pytest.mark.parametrize("ties, stratified", [("efron", False), ("breslow", False), ("efron", True)])
def test_cox_dfbeta_is_the_jackknife_derivative_with_ties(ties, stratified):
    # R's robust variance = sum over clusters of dfbeta^2, dfbeta_k = w_k * score residual_k %*% var. For tied data
    # this equals w_k d(beta)/d(w_k) (central finite differences on a fully converged fit) for both tie methods.
    rng = np.random.default_rng(7)
    n = 30
    t = rng.integers(1, 8, n).astype(float)
    e = rng.integers(0, 2, n).astype(float)
    X = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n)])
    w0 = rng.uniform(0.5, 2, n)
    strata = rng.integers(0, 2, n) if stratified else np.zeros(n, dtype=int)

    def fit(w: np.ndarray) -> tuple[np.ndarray, cox._CoxData]:
        d = cox._cox_data(X, t, e, w, strata)
        b, _ = cox._newton_raphson(d, ties)
        for _ in range(3):
            tm = cox._cox_terms(d, b, ties)
            b = b + np.linalg.solve(tm.I, tm.U)
        return b, d

    b0, d = fit(w0)
    tm = cox._cox_terms(d, b0, ties)
    dfbeta = cox._score_residuals(d, b0, tm) * w0[:, None] @ np.linalg.inv(tm.I)
    h = 1e-6
    fd = np.array([(fit(w0 + h * (np.arange(n) == k))[0] - fit(w0 - h * (np.arange(n) == k))[0]) / (2 * h) * w0[k]
                   for k in range(n)])
    np.testing.assert_allclose(dfbeta, fd, atol=1e-7)


def test_cox_robust_with_ties_differs_from_lifelines_sandwich(lung):
    # lifelines' score residuals ignore tied times, so its sandwich is not R's with ties (lung has ties)
    ours = cox_ph(lung, "time", "status", ["sex", "age"], robust=True)
    cph = CoxPHFitter().fit(lung[["time", "status", "sex", "age"]], "time", "status", robust=True,
                            fit_options=cox._LIFELINES_FIT_OPTIONS)
    assert not np.allclose(ours["se"], cph.standard_errors_.to_numpy(), rtol=1e-5, atol=0)
    np.testing.assert_allclose(ours["se"], cph.standard_errors_.to_numpy(), rtol=5e-3)  # close, not equal


def test_cox_stratified_on_pair_runs_and_reports_strata():
    rng = np.random.default_rng(8)
    n = 80
    df = pd.DataFrame({"t": rng.exponential(10, n) + 0.1, "e": rng.integers(0, 2, n),
                       "arm": np.tile(["HAIC-TKIs-P", "TKIs-P"], n // 2), "pair": np.repeat(np.arange(n // 2), 2)})
    out = cox_ph(df, "t", "e", ["arm"], strata_col="pair", reference={"arm": "TKIs-P"})
    assert out["term"].tolist() == ["arm[T.HAIC-TKIs-P]"]  # TKIs-P is the reference level
    cph = CoxPHFitter().fit(df.assign(a=(df["arm"] == "HAIC-TKIs-P").astype(float))[["t", "e", "a", "pair"]],
                            "t", "e", strata=["pair"])
    assert out["coef"][0] == pytest.approx(cph.params_["a"], abs=1e-5)


def test_cox_arm_without_events_is_flagged_not_a_number():
    df = pd.DataFrame({"t": np.arange(1.0, 9.0), "e": [1, 1, 1, 0, 0, 0, 0, 0],
                       "arm": ["TKIs-P"] * 4 + ["HAIC-TKIs-P"] * 4})
    for ties in ("efron", "breslow"):
        row = cox_ph(df, "t", "e", ["arm"], ties=ties).iloc[0]
        assert np.isnan(row["hr"]) and np.isnan(row["upper"]) and "infinite" in row["flag"]


def test_concordance_agrees_with_lifelines_and_scikit_survival():
    rng = np.random.default_rng(0)
    t = rng.integers(1, 20, 80).astype(float)   # tied times and tied risks on purpose
    e = rng.integers(0, 2, 80)
    risk = rng.integers(0, 5, 80).astype(float)
    c = concordance_index(t, e, risk)
    assert c == pytest.approx(ll_concordance(t, -risk, e), abs=1e-12)
    assert c == pytest.approx(concordance_index_censored(e.astype(bool), t, risk)[0], abs=1e-12)


# ------------------------------------------------------------------------------------------------- cox.zph
def _efron_loglik_tv(t, e, X, beta, gamma, g, strata):
    """Brute force Efron log partial likelihood with time-varying terms x * g(t) (for the zph score test)."""
    ll = 0.0
    for s in np.unique(strata):
        m = strata == s
        ts, es, Xs = t[m], e[m], X[m]
        for tt in np.unique(ts[es == 1]):
            eta = Xs @ beta + (Xs @ gamma) * g(tt)
            risk, dead = ts >= tt, (ts == tt) & (es == 1)
            r = np.exp(eta)
            ll += eta[dead].sum() - sum(np.log(r[risk].sum() - j / dead.sum() * r[dead].sum())
                                        for j in range(dead.sum()))
    return ll


@pytest.mark.parametrize("strata_col", [None, "s"])
def test_zph_equals_brute_force_score_test(strata_col):
    # cox.zph (survival >= 3.0): score test at (beta_hat, gamma = 0) for adding x * g(t), g = 1 - S_KM(t-) centred
    # over the deaths. Gradient and information of the extended likelihood by finite differences.
    rng = np.random.default_rng(5)
    n = 50
    df = pd.DataFrame({"t": rng.integers(1, 20, n).astype(float), "e": rng.integers(0, 2, n),
                       "x1": rng.normal(size=n), "x2": rng.integers(0, 2, n), "s": rng.integers(0, 2, n)})
    res = schoenfeld_test(df, "t", "e", ["x1", "x2"], strata_col=strata_col)
    beta = cox_ph(df, "t", "e", ["x1", "x2"], strata_col=strata_col)["coef"].to_numpy()
    t, e, X = df["t"].to_numpy(), df["e"].to_numpy(), df[["x1", "x2"]].to_numpy()
    gt = 1 - KaplanMeierFitter().fit(t, e).survival_function_at_times(t - 1e-9).to_numpy()  # 1 - S(t-)
    gbar = gt[e == 1].mean()
    strata = np.zeros(n) if strata_col is None else df["s"].to_numpy()

    def f(th: np.ndarray) -> float:
        return _efron_loglik_tv(t, e, X, th[:2], th[2:], lambda tt: gt[t == tt][0] - gbar, strata)

    th0, h, eye = np.concatenate([beta, [0.0, 0.0]]), 1e-4, np.eye(4) * 1e-4
    grad = np.array([(f(th0 + eye[i]) - f(th0 - eye[i])) / (2 * h) for i in range(4)])
    hess = np.array([[(f(th0 + eye[i] + eye[j]) - f(th0 + eye[i] - eye[j]) - f(th0 - eye[i] + eye[j])
                       + f(th0 - eye[i] - eye[j])) / (4 * h * h) for j in range(4)] for i in range(4)])
    u = np.concatenate([[0.0, 0.0], grad[2:]])
    glob = u @ np.linalg.solve(-hess, u)
    tab = res.table.set_index("term")
    assert tab.loc["GLOBAL", "chisq"] == pytest.approx(glob, rel=1e-4)
    for j, term in enumerate(["x1", "x2"]):
        kk = [0, 1, 2 + j]
        assert tab.loc[term, "chisq"] == pytest.approx(u[kk] @ np.linalg.solve(-hess[np.ix_(kk, kk)], u[kk]), rel=1e-4)
    assert tab.loc["GLOBAL", "df"] == 2


def test_zph_km_time_scale_is_one_minus_left_limit_of_km():
    # R cox.zph transform "km": 1 - S(t-) of the unweighted KM. Six subjects: S(1-) = 1, S(2-) = 5/6,
    # S(3-) = 2/3, S(4-) = S(5-) = 4/9
    g = cox_zph._time_transform(T6, E6.astype(float), "km")
    np.testing.assert_allclose(g, [0, 1 / 6, 1 / 6, 1 / 3, 5 / 9, 5 / 9])


def test_zph_plot_data_centres_on_the_coefficient():
    # unweighted, unstratified: Schoenfeld residuals sum to the score (0 at beta_hat), so the scaled residuals + beta
    # average to beta
    rng = np.random.default_rng(6)
    df = pd.DataFrame({"t": rng.exponential(5, 70) + 0.1, "e": rng.integers(0, 2, 70), "x": rng.normal(size=70)})
    res = schoenfeld_test(df, "t", "e", ["x"])
    beta = cox_ph(df, "t", "e", ["x"])["coef"][0]
    assert len(res.plot_data) == df["e"].sum()
    assert res.plot_data["x"].mean() == pytest.approx(beta, abs=1e-6)
    assert res.plot_data["time"].is_monotonic_increasing


# --------------------------------------------------------------------------------------------------- RMST
def test_rmst_hand_computed_step_function():
    # S = 1 on [0,1), .833333 on [1,2), .666667 on [2,3), .444444 on [3,4.5]
    # RMST(4.5) = 1 + .833333 + .666667 + 1.5*.444444 = 3.166667
    # survRM2 variance: areas after t=1,2,3 are 2.166667, 1.333333, .666667 with d/(n(n-d)) = 1/30, 1/20, 1/6
    #   -> 4.694444/30 + 1.777778/20 + .444444/6 = .319444, se = .565194
    r = rmst(T6, E6, tau=4.5)
    assert r["rmst"] == pytest.approx(3.166667, abs=1e-6)
    assert r["se"] == pytest.approx(0.565194, abs=1e-6)
    assert r["lower"] == pytest.approx(3.166667 - Z * 0.565194, abs=1e-5)
    kmf = KaplanMeierFitter().fit(T6, E6)
    assert restricted_mean_survival_time(kmf, t=4.5) == pytest.approx(r["rmst"], abs=1e-12)


def test_rmst_difference_two_arms_by_hand():
    # arm 1 (HAIC): 2, 4, 6 all events; arm 0: 1, 3, 5 (5 censored). Default tau (survRM2): arm 0 ends first
    # (5 < 6) with a censoring -> tau = min(6, 5) = 5.
    # arm 1: S = 1 [0,2), 2/3 [2,4), 1/3 [4,5] -> RMST = 2 + 4/3 + 1/3 = 3.666667
    #   var: after t=2: 4/3 + 1/3 = 5/3, d/(n(n-d)) = 1/6; after t=4: 1/3, 1/2 -> 25/54 + 1/18 = .518519
    # arm 0: S = 1 [0,1), 2/3 [1,3), 1/3 [3,5] -> RMST = 1 + 4/3 + 2/3 = 3.0
    #   var: after 1: 4/3 + 2/3 = 2, 1/6; after 3: 2/3, 1/2 -> 4/6 + 4/18 = .888889
    # difference .666667, se sqrt(1.407407) = 1.186342
    g = np.array(["HAIC-TKIs-P"] * 3 + ["TKIs-P"] * 3)
    out = rmst_difference([2, 4, 6, 1, 3, 5], [1, 1, 1, 1, 1, 0], g,
                          treatment="HAIC-TKIs-P").set_index("quantity")
    assert out.attrs["tau"] == 5
    assert out.loc["RMST HAIC-TKIs-P", "estimate"] == pytest.approx(3.666667, abs=1e-6)
    assert out.loc["RMST TKIs-P", "estimate"] == pytest.approx(3.0)
    assert out.loc["RMST difference", "estimate"] == pytest.approx(0.666667, abs=1e-6)
    assert out.loc["RMST difference", "se"] == pytest.approx(1.186342, abs=1e-6)
    # ratio on the log scale: se = sqrt(.518519/3.666667^2 + .888889/3^2) = sqrt(.038568 + .098765) = .370585
    assert out.loc["RMST ratio", "estimate"] == pytest.approx(3.666667 / 3, abs=1e-6)
    assert out.loc["RMST ratio", "se"] == pytest.approx(0.370585, abs=1e-6)
    with pytest.raises(ValueError, match="tau must be <="):
        rmst_difference([2, 4, 6, 1, 3, 5], [1, 1, 1, 1, 1, 0], g, tau=5.5, treatment="HAIC-TKIs-P")


def test_weighted_rmst_uses_ij_variance():
    rng = np.random.default_rng(9)
    t = rng.integers(1, 12, 25).astype(float)
    e = rng.integers(0, 2, 25)
    w = rng.uniform(0.2, 3, 25)
    tau = 8.5
    r = rmst(t, e, tau, weights=w)
    assert r["variance"] == "ij"
    h = 1e-6
    infl = [(rmst(t, e, tau, weights=w + h * (np.arange(25) == k), variance="greenwood")["rmst"]
             - rmst(t, e, tau, weights=w - h * (np.arange(25) == k), variance="greenwood")["rmst"]) / (2 * h) * w[k]
            for k in range(25)]
    assert r["se"] == pytest.approx(np.sqrt(np.sum(np.square(infl))), rel=1e-6)


# ------------------------------------------------------------------------------------------------- E-value
def test_evalue_evalues_hr_documented_example():
    # evalues.HR(0.56, 0.46, 0.69, rare = FALSE):
    # RR = (1 - 0.5^sqrt(.56)) / (1 - 0.5^sqrt(1/.56)) = (1 - .595304)/(1 - .396033) = .670084 -> 1/RR = 1.492350
    # E = 1.492350 + sqrt(1.492350 * .492350) = 2.349531
    # upper limit .69 -> RR .773527 -> 1/RR 1.292780 -> E = 1.908004 (limit closest to 1)
    ev = evalue_hr(0.56, 0.46, 0.69, rare=False)
    assert ev["rr"] == pytest.approx(0.670084, abs=1e-6)
    assert ev["evalue_point"] == pytest.approx(2.349531, abs=1e-6)
    assert ev["evalue_ci"] == pytest.approx(1.908004, abs=1e-6)
    assert ev["ci_limit"] == "upper"


def test_evalue_pooled_os_hr_and_rare_outcome_identity():
    # calibration file pooled OS HR 0.56 (0.46-0.67): upper .67 -> RR .757995 -> 1/RR 1.319270 -> E = 1.968272
    ev = evalue_hr(0.56, 0.46, 0.67)
    assert ev["evalue_ci"] == pytest.approx(1.968272, abs=1e-6)
    # rare outcome: RR = HR. VanderWeele & Ding 2017 leukemia example RR .80 (.71, .91): E = 1.25 + sqrt(1.25*.25)
    #   = 1.809017; CI: 1/.91 = 1.098901 -> 1.428571
    rare = evalue_hr(0.80, 0.71, 0.91, rare=True)
    assert rare["evalue_point"] == pytest.approx(1.809017, abs=1e-6)
    assert rare["evalue_ci"] == pytest.approx(1.428571, abs=1e-6)
    # harmful direction is symmetric on the RR scale; CI crossing 1 -> E-value 1
    assert evalue_hr(1 / 0.80, rare=True)["evalue_point"] == pytest.approx(1.809017, abs=1e-6)
    assert evalue_hr(0.8, 0.6, 1.1)["evalue_ci"] == 1.0


def test_evalue_rejects_bad_input():
    with pytest.raises(ValueError, match="inside"):
        evalue_hr(0.5, 0.6, 0.9)
    with pytest.raises(ValueError, match="> 0"):
        evalue_hr(0.0)


# ------------------------------------------------------------------------------------- landmark, subgroups
def test_landmark_resets_time_and_reclassifies_late_exposure():
    df = pd.DataFrame({"os": [2.0, 3.0, 3.0, 8.0, 10.0, 12.0], "dead": [1, 1, 0, 1, 0, 1],
                       "arm": ["HAIC-TKIs-P", "TKIs-P", "HAIC-TKIs-P", "HAIC-TKIs-P", "HAIC-TKIs-P", "TKIs-P"],
                       "exposure_start_months": [0.5, np.nan, 1.0, 2.0, 4.5, np.nan]})
    lm = landmark(df, "os", "dead", 3, arm_col="arm", exposure_start_col="exposure_start_months",
                  exposed_label="HAIC-TKIs-P", unexposed_label="TKIs-P")
    # kept: time > 3 -> rows 3, 4, 5 (died at 2, died at 3, censored at 3 are out); time 8, 10, 12 -> 5, 7, 9
    assert lm.index.tolist() == [3, 4, 5]
    assert lm["os"].tolist() == [5.0, 7.0, 9.0]
    assert lm["os_baseline"].tolist() == [8.0, 10.0, 12.0]
    # HAIC at 2.0 <= 3 -> exposed; HAIC at 4.5 > 3 -> not exposed; no HAIC -> not exposed; baseline arm unchanged
    assert lm["arm_landmark"].tolist() == ["HAIC-TKIs-P", "TKIs-P", "TKIs-P"]
    assert lm["arm"].tolist() == ["HAIC-TKIs-P", "HAIC-TKIs-P", "TKIs-P"]
    assert lm.attrs["n_excluded"] == 3


def test_cox_interaction_p_levels_and_likelihood_ratio():
    rng = np.random.default_rng(10)
    n = 200
    df = pd.DataFrame({"t": rng.exponential(10, n) + 0.1, "e": rng.integers(0, 2, n),
                       "arm": rng.choice(["TKIs-P", "HAIC-TKIs-P"], n), "sex": rng.choice(["F", "M"], n)})
    out = cox_interaction_p(df, "t", "e", "arm", "sex", reference={"arm": "TKIs-P"})
    assert out["level"].tolist() == ["F", "M"]
    for _, row in out.iterrows():  # per level: lifelines (Efron) on that level's patients, HAIC-TKIs-P vs TKIs-P
        sub = df[df["sex"] == row["level"]]
        ref = CoxPHFitter().fit(pd.DataFrame({"t": sub["t"], "e": sub["e"],
                                              "a": (sub["arm"] == "HAIC-TKIs-P") * 1.0}), "t", "e")
        assert row["hr"] == pytest.approx(float(np.exp(ref.params_["a"])), rel=1e-5)
        assert row["n"] == len(sub) and row["n_events"] == int(sub["e"].sum())
    # LRT by lifelines: arm + sex versus arm + sex + arm:sex
    d = pd.DataFrame({"t": df["t"], "e": df["e"], "a": (df["arm"] == "HAIC-TKIs-P") * 1.0,
                      "m": (df["sex"] == "M") * 1.0})
    d["am"] = d["a"] * d["m"]
    ll0 = CoxPHFitter().fit(d[["t", "e", "a", "m"]], "t", "e").log_likelihood_
    ll1 = CoxPHFitter().fit(d, "t", "e").log_likelihood_
    from scipy import stats
    assert out["p_interaction"][0] == pytest.approx(stats.chi2.sf(2 * (ll1 - ll0), 1), rel=1e-4)


def test_cox_interaction_p_level_hazard_ratios_by_hand():
    """Two mirror-image levels of four deaths each (no ties, so Efron = Breslow), HR in closed form.
    Level x: deaths HAIC 1, TKIs-P 2, HAIC 3, TKIs-P 4. Score sum over deaths of z - n1 r / (n1 r + n0), r = HR:
    t=1 (2 vs 2): 1 - r/(r+1); t=2 (1 vs 2): -r/(r+2); t=3 (1 vs 1): 1 - r/(r+1); t=4 (0 vs 1): 0. So
    2/(r+1) = r/(r+2), r^2 - r - 4 = 0, r = (1 + sqrt 17)/2 = 2.562. Level y (TKIs-P dies first, arms swapped):
    -2r/(r+1) + 1/(2r+1) = 0, 4r^2 + r - 1 = 0, r = (sqrt 17 - 1)/8 = 0.390 = 1 / 2.562."""
    df = pd.DataFrame({"t": [1.0, 2, 3, 4, 1.5, 2.5, 3.5, 4.5], "e": 1,
                       "arm": ["HAIC-TKIs-P", "TKIs-P"] * 2 + ["TKIs-P", "HAIC-TKIs-P"] * 2,
                       "g": ["x"] * 4 + ["y"] * 4})
    out = cox_interaction_p(df, "t", "e", "arm", "g", reference={"arm": "TKIs-P"}).set_index("level")
    rx, ry = (1 + math.sqrt(17)) / 2, (math.sqrt(17) - 1) / 8
    assert out.loc["x", "hr"] == pytest.approx(rx, rel=1e-6) and out.loc["y", "hr"] == pytest.approx(ry, rel=1e-6)
    # SE from the information sum n1 r n0 / (n1 r + n0)^2 over the deaths; level x: 2r/(r+1)^2 + 2r/(r+2)^2
    se_x = (2 * rx / (rx + 1) ** 2 + 2 * rx / (rx + 2) ** 2) ** -0.5
    from scipy import stats
    assert out.loc["x", "lower"] == pytest.approx(math.exp(math.log(rx) - stats.norm.ppf(0.975) * se_x), rel=1e-5)
    assert out["n"].tolist() == [4, 4] and out["n_events"].tolist() == [4, 4]
    # the arm x level interaction is the whole story here: a small LRT P
    assert out["p_interaction"].iloc[0] < 0.2 and (out["flag"] == "").all()


def test_cox_interaction_flags_a_level_without_events_in_an_arm():
    df = pd.DataFrame({"t": np.arange(1.0, 13.0), "e": [1, 1, 0, 1, 1, 0, 1, 0, 0, 0, 1, 1],
                       "arm": ["TKIs-P", "HAIC-TKIs-P"] * 6, "g": ["x"] * 6 + ["y"] * 6})
    df.loc[df["g"].eq("y") & df["arm"].eq("HAIC-TKIs-P"), "e"] = 0
    out = cox_interaction_p(df, "t", "e", "arm", "g").set_index("level")
    assert np.isnan(out.loc["y", "hr"]) and "no events" in out.loc["y", "flag"]
    assert np.isfinite(out.loc["x", "hr"])


# ----------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("time, event, message", [
    ([1, -2, 3], [1, 0, 1], "negative"),
    ([1, np.nan, 3], [1, 0, 1], "missing"),
    ([1, 2, 3], [1, 2, 0], "coded"),
    ([1, 2, 3], [1, 0], "different lengths"),
    (["a", "b"], [1, 0], "numeric"),
])
def test_bad_survival_input_raises_clear_message(time, event, message):
    with pytest.raises(ValueError, match=message):
        kaplan_meier(time, event)


def test_bad_model_input_raises_clear_message():
    df = pd.DataFrame({"t": [1.0, 2, 3, 4], "e": [1, 0, 1, 1], "x": [1.0, np.nan, 0, 1], "w": [1, -1, 1, 1]})
    with pytest.raises(ValueError, match="covariate 'x' has 1 missing"):
        cox_ph(df, "t", "e", ["x"])
    with pytest.raises(ValueError, match="weights must be >= 0"):
        kaplan_meier(df["t"], df["e"], weights=df["w"])
    with pytest.raises(ValueError, match="no events"):
        cox_ph(df.assign(e=0, x=[1.0, 0, 0, 1]), "t", "e", ["x"])
    with pytest.raises(ValueError, match="not in the data"):
        cox_ph(df, "t", "e", ["age"])
    with pytest.raises(ValueError, match="conf_type"):
        kaplan_meier([1, 2], [1, 1], conf_type="logit")
    with pytest.raises(ValueError, match="beyond the last follow-up"):
        rmst([1, 2, 3], [1, 0, 0], tau=5)


def test_cox_coefficients_fast_path_agrees_with_cox_ph():
    """stats.cox.cox_coefficients (coxph.fit Newton-Raphson, no concordance) gives cox_ph's coefficient and naive,
    robust and cluster SEs (docs/methods/survival.md)."""
    from analysis_utils.stats.cox import cox_coefficients, cox_ph
    rng = np.random.default_rng(4)
    n = 120
    df = pd.DataFrame({"t": np.round(rng.exponential(10, n), 1), "e": rng.integers(0, 2, n),
                       "arm": rng.choice(["a", "b"], n), "x": rng.normal(size=n), "pair": np.arange(n) // 2,
                       "w": rng.uniform(0.5, 2, n)})
    for kw in ({}, {"cluster_col": "pair"}, {"weights_col": "w"}, {"strata_col": "pair"}):
        a = cox_ph(df, "t", "e", ["arm", "x"], **kw)
        b = cox_coefficients(df, "t", "e", ["arm", "x"], **kw)
        assert b["coef"].to_numpy() == pytest.approx(a["coef"].to_numpy(), abs=1e-6)
        assert b["se"].to_numpy() == pytest.approx(a["se"].to_numpy(), rel=1e-5)
        assert b.attrs["variance"] == a.attrs["variance"]


def test_cox_wide_efron_design_by_newton_raphson_equals_lifelines_and_the_block_information_sums_to_i():
    """A 24-column Efron design with ties and weights (like the adjusted model): R's Newton-Raphson (not lifelines)
    fits it, to lifelines' MLE; the information gathered per row equals the sum of the per-death-block pieces that
    cox.zph uses, and the terms handed to the fit are those at the estimate."""
    rng = np.random.default_rng(7)
    n, p = 400, 24
    X = rng.normal(size=(n, p))
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(p)])
    df["t"] = rng.integers(1, 40, n).astype(float)
    df["e"] = rng.integers(0, 2, n)
    df["w"] = rng.uniform(0.5, 2.0, n)
    fit = cox.fit_cox(df, "t", "e", [f"x{i}" for i in range(p)], "efron", "w", None, None)
    assert fit.engine == "newton-raphson (coxph.fit)" and fit.converged
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph = CoxPHFitter().fit(df, "t", "e", weights_col="w", fit_options=cox._LIFELINES_FIT_OPTIONS)
    np.testing.assert_allclose(fit.beta, cph.params_.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(fit.terms.V.sum(axis=0), fit.terms.I, rtol=1e-10, atol=1e-10)
    again = cox._cox_terms(fit.data, fit.beta, "efron")
    assert again.loglik == fit.loglik and np.array_equal(again.I, fit.terms.I)
    assert fit.loglik_null == cox._cox_terms(fit.data, np.zeros(p), "efron").loglik
