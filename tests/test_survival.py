"""Tests for analysis_utils.survival: hand-computed cases (arithmetic in comments), published R outputs, and
agreement with lifelines / scikit-survival where they compute the same quantity.

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

from analysis_utils.steps import survival as sv

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
    km = sv.kaplan_meier(T6, E6, conf_type="log")
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
    ll = sv.kaplan_meier(T6, E6, conf_type="log-log")
    assert ll["lower"][2] == pytest.approx(0.066187, abs=1e-6)
    assert ll["upper"][2] == pytest.approx(0.784908, abs=1e-6)
    # plain at t=3: 0.444444 -+ 1.959964*0.222222 = (0.008897, 0.879992)
    pl = sv.kaplan_meier(T6, E6, conf_type="plain")
    assert pl["lower"][2] == pytest.approx(0.008897, abs=1e-6)
    assert pl["upper"][2] == pytest.approx(0.879992, abs=1e-6)
    assert km.attrs["conf_type"] == "log" and km.attrs["variance"] == "greenwood"


def test_km_before_first_event_ci_is_the_point():
    # S = 1 with se 0 before any event: R returns p for both limits (survfit_confint, se == 0)
    km = sv.kaplan_meier([1, 2, 3], [0, 1, 0], conf_type="log-log")
    assert km.loc[0, ["surv", "lower", "upper", "std_err"]].tolist() == [1.0, 1.0, 1.0, 0.0]


def test_km_lung_matches_published_r_summary(lung):
    # R: summary(survfit(Surv(time, status) ~ sex, data = lung)), sex=1, first rows (see module docstring):
    #   time n.risk n.event survival std.err lower upper
    r_rows = [(11, 138, 3, 0.9783, 0.0124, 0.9542, 1.000), (12, 135, 1, 0.9710, 0.0143, 0.9434, 0.999),
              (13, 134, 2, 0.9565, 0.0174, 0.9231, 0.991), (53, 128, 2, 0.9130, 0.0240, 0.8672, 0.961),
              (163, 100, 3, 0.7029, 0.0389, 0.6306, 0.783), (180, 89, 1, 0.6445, 0.0408, 0.5693, 0.730)]
    male = lung[lung["sex"] == 1]
    km = sv.kaplan_meier(male["time"], male["status"]).set_index("time")
    for time, n_risk, n_event, surv, se, lo, hi in r_rows:
        row = km.loc[time]
        assert (row["n_risk"], row["n_event"]) == (n_risk, n_event)
        assert row["surv"] == pytest.approx(surv, abs=5e-5)
        assert row["std_err"] == pytest.approx(se, abs=5e-5)
        assert row["lower"] == pytest.approx(lo, abs=5e-5)
        assert row["upper"] == pytest.approx(hi, abs=5e-4)


def test_km_loglog_agrees_with_lifelines_and_scikit_survival(lung):
    km = sv.kaplan_meier(lung["time"], lung["status"], conf_type="log-log")
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
    weighted = sv.kaplan_meier(T6, E6, weights=w)
    replicated = sv.kaplan_meier(np.repeat(T6, w), np.repeat(E6, w))
    assert weighted.attrs["variance"] == "greenwood"
    pd.testing.assert_frame_equal(weighted, replicated, check_dtype=False)


def test_km_non_integer_weights_use_the_infinitesimal_jackknife():
    # R survfit with non-integer weights defaults to robust=TRUE: Var S(t) = sum_k (w_k dS(t)/dw_k)^2. Check the
    # closed form against central finite differences of the weighted KM (the definition of the IJ).
    rng = np.random.default_rng(3)
    t = rng.integers(1, 12, 25).astype(float)
    e = rng.integers(0, 2, 25)
    w = rng.uniform(0.2, 3.0, 25)
    km = sv.kaplan_meier(t, e, weights=w)
    assert km.attrs["variance"] == "ij"
    h = 1e-6
    infl = []
    for k in range(t.size):
        up, down = w.copy(), w.copy()
        up[k] += h
        down[k] -= h
        s_up = sv.kaplan_meier(t, e, weights=up, variance="greenwood")["surv"].to_numpy()
        s_down = sv.kaplan_meier(t, e, weights=down, variance="greenwood")["surv"].to_numpy()
        infl.append((s_up - s_down) / (2 * h) * w[k])
    np.testing.assert_allclose(km["std_err"], np.sqrt((np.array(infl) ** 2).sum(axis=0)), atol=1e-7)


# ------------------------------------------------------------------------------------------- median, S(t)
def test_median_hand_case_with_ci():
    # S = 0.833 (t1), 0.667 (t2), 0.444 (t3): median = 3 (first time S <= 0.5).
    # log lower curve: 0.5827 (t1), 0.6667*exp(-1.96*0.288675) = 0.3786 (t2) -> lower limit 2.
    # upper curve stays at 1 and is NA at S = 0 -> never reaches 0.5 -> upper limit not reached.
    m = sv.median_survival(sv.kaplan_meier(T6, E6))
    assert m["median"] == 3 and m["lower"] == 2
    assert np.isnan(m["upper"]) and not m["upper_reached"] and m["median_reached"]


def test_median_midpoint_rule_when_curve_is_flat_at_one_half():
    # events at 1,2,3,4: S = .75, .50, .25, 0 -> S == 0.5 on [2, 3) -> R takes the midpoint 2.5 (the usual
    # median of 1,2,3,4); lifelines reports the left end instead (lifelines #861)
    km = sv.kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1])
    assert sv.median_survival(km)["median"] == 2.5
    kmf = KaplanMeierFitter().fit([1, 2, 3, 4], [1, 1, 1, 1])
    assert kmf.median_survival_time_ != 2.5


def test_median_midpoint_uses_tolerance_for_round_off():
    # 1..100 uncensored: S(50) = prod((n-1)/n) is 0.5 only up to round-off; R's tolerance gives (50+51)/2
    km = sv.kaplan_meier(np.arange(1, 101), np.ones(100))
    assert sv.median_survival(km)["median"] == 50.5


def test_median_curve_ending_flat_at_one_half_takes_midpoint_to_last_time():
    # events at 1, 2 then censored at 3, 4: S = .75, .5, .5, .5 to the end -> quantile.survfit: (2 + 4) / 2 = 3
    km = sv.kaplan_meier([1, 2, 3, 4], [1, 1, 0, 0])
    assert sv.median_survival(km)["median"] == 3


def test_median_not_reached_is_nan_with_flag():
    # one event in 5: S = 0.8 at the end -> never reaches 0.5
    m = sv.median_survival(sv.kaplan_meier([1, 2, 3, 4, 5], [1, 0, 0, 0, 0]))
    assert np.isnan(m["median"]) and not m["median_reached"]
    assert np.isnan(m["lower"]) and np.isnan(m["upper"])


def test_survival_at_landmark_times():
    km = sv.kaplan_meier(T6, E6)
    out = sv.survival_at(km, [0.5, 2, 2.5, 4, 6])
    # before the first event S = 1; at t = 2 the drop at 2 is included (right-continuous); 2.5 -> S(2)
    np.testing.assert_allclose(out["surv"][:4], [1.0, 2 / 3, 2 / 3, 4 / 9])
    assert out["n_risk"].tolist() == [6, 5, 3, 2, 0]   # subjects with time >= t
    assert out["beyond_follow_up"].tolist() == [False, False, False, False, True]
    assert np.isnan(out["surv"][4])
    assert out["lower"][1] == pytest.approx(km["lower"][1])


def test_number_at_risk_counts_by_hand():
    # times 2, 6, 6, 7, 12, 15: at 0 -> 6; at 6 -> {6, 6, 7, 12, 15} = 5; at 12 -> {12, 15} = 2; at 18 -> 0
    n = sv.number_at_risk([2, 6, 6, 7, 12, 15], [0, 6, 12, 18])
    assert n.tolist() == [6, 5, 2, 0]


def test_median_follow_up_reverse_km_by_hand():
    # censoring as the event: censored at 2 and 4. t=2: at risk 5, 1 "event" -> G = 4/5; t=4: at risk 2 ->
    # G = 0.8 * 1/2 = 0.4 <= 0.5 -> median follow-up 4
    fu = sv.median_follow_up_reverse_km(T6, E6)
    assert fu["median"] == 4 and fu["median_reached"]


# --------------------------------------------------------------------------------------------------- log-rank
def test_logrank_hand_computed():
    # A: 1, 3, 5+   B: 2, 4, 6
    # t=1: n=6 (3A) d=1 -> E_A = 3/6 = .5,  V = 1*5/5 * (1/2)(1/2) = .25
    # t=2: n=5 (2A) d=1 -> E_A = 2/5 = .4,  V = 1*4/4 * (2/5)(3/5) = .24
    # t=3: n=4 (2A) d=1 -> E_A = 2/4 = .5,  V = .25
    # t=4: n=3 (1A) d=1 -> E_A = 1/3,       V = (1/3)(2/3) = .222222
    # t=6: n=1 -> no variance term.  O_A = 2, E_A = 1.733333, V = .962222, chi2 = .266667^2/.962222 = .073903
    res = sv.logrank_test([1, 3, 5, 2, 4, 6], [1, 1, 0, 1, 1, 1], ["A", "A", "A", "B", "B", "B"])
    assert res.chi2 == pytest.approx(0.073903, abs=1e-6)
    assert res.df == 1
    tab = res.table.set_index("group")
    assert tab.loc["A", "expected"] == pytest.approx(1.733333, abs=1e-6)
    assert tab.loc["B", "expected"] == pytest.approx(5 - 1.733333, abs=1e-6)
    ll = ll_logrank([1, 3, 5], [2, 4, 6], [1, 1, 0], [1, 1, 1])
    assert res.chi2 == pytest.approx(ll.test_statistic, rel=1e-10)


def test_logrank_lung_matches_published_r(lung):
    res = sv.logrank_test(lung["time"], lung["status"], lung["sex"])
    tab = res.table.set_index("group")
    assert tab.loc[1, "observed"] == 112 and tab.loc[2, "observed"] == 53
    assert tab.loc[1, "expected"] == pytest.approx(91.5817, abs=1e-4)
    assert tab.loc[2, "expected"] == pytest.approx(73.4183, abs=1e-4)
    assert res.chi2 == pytest.approx(10.3267, abs=1e-4)
    assert res.p == pytest.approx(0.00131116, abs=1e-8)


def test_logrank_stratified_sums_over_strata():
    # the same data twice as two strata: O, E and V double -> chi2 doubles
    t, e, g = [1, 3, 5, 2, 4, 6], [1, 1, 0, 1, 1, 1], ["A", "A", "A", "B", "B", "B"]
    single = sv.logrank_test(t, e, g)
    strat = sv.logrank_test(t * 2, e * 2, g * 2, strata=[0] * 6 + [1] * 6)
    assert strat.chi2 == pytest.approx(2 * single.chi2)


def test_logrank_no_events_gives_nan_with_note_and_one_group_raises():
    res = sv.logrank_test([1, 2, 3, 4], [0, 0, 0, 0], ["A", "A", "B", "B"])
    assert np.isnan(res.p) and res.df == 0 and "no test" in res.note
    with pytest.raises(ValueError, match="two levels"):
        sv.logrank_test([1, 2], [1, 1], ["A", "A"])


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
    naive = sv.cox_ph(COX3, "t", "e", ["x"], ties=ties).iloc[0]
    assert naive["coef"] == pytest.approx(-math.log(2) / 2, abs=1e-6)
    assert naive["se_naive"] == pytest.approx(1.435500, abs=1e-5)
    assert naive["se_robust"] == pytest.approx(0.973768, abs=1e-5)
    assert naive["se"] == naive["se_naive"]  # R: no cluster, integer weights -> naive variance
    clus = sv.cox_ph(COX3, "t", "e", ["x"], ties=ties, cluster_col="pair")
    assert clus.iloc[0]["se"] == pytest.approx(1.060660, abs=1e-5)
    assert clus.attrs["variance"] == "robust (cluster=pair)"


def test_cox_efron_lung_agrees_with_lifelines(lung):
    out = sv.cox_ph(lung, "time", "status", ["age", "sex"])
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
    d = sv._cox_data(X, df["t"].to_numpy(), df["e"].to_numpy(float), df["w"].to_numpy(), df["s"].to_numpy())
    beta, converged = sv._newton_raphson(d, "efron")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph = CoxPHFitter().fit(df, "t", "e", weights_col="w", strata=["s"], fit_options=sv._LIFELINES_FIT_OPTIONS)
    assert converged
    np.testing.assert_allclose(beta, cph.params_.to_numpy(), atol=1e-7)
    assert sv._cox_terms(d, beta, "efron").loglik == pytest.approx(cph.log_likelihood_, abs=1e-8)


def test_cox_breslow_agrees_with_scikit_survival():
    rng = np.random.default_rng(4)
    n = 150
    df = pd.DataFrame({"t": rng.integers(1, 25, n).astype(float), "e": rng.integers(0, 2, n),
                       "x1": rng.normal(size=n), "x2": rng.integers(0, 2, n)})
    out = sv.cox_ph(df, "t", "e", ["x1", "x2"], ties="breslow")
    m = CoxPHSurvivalAnalysis(ties="breslow").fit(df[["x1", "x2"]], Surv.from_arrays(df["e"].astype(bool), df["t"]))
    np.testing.assert_allclose(out["coef"], m.coef_, atol=1e-7)
    efron = sv.cox_ph(df, "t", "e", ["x1", "x2"], ties="efron")
    assert not np.allclose(efron["coef"], out["coef"], atol=1e-4)  # ties matter here


def test_cox_robust_and_cluster_se_match_lifelines_without_ties():
    rng = np.random.default_rng(2)
    n = 60
    df = pd.DataFrame({"t": rng.permutation(n) + 1.0, "e": rng.integers(0, 2, n), "x1": rng.normal(size=n),
                       "x2": rng.integers(0, 2, n), "w": rng.uniform(0.3, 3, n), "cl": rng.integers(0, 15, n)})
    ours = sv.cox_ph(df, "t", "e", ["x1", "x2"], weights_col="w", cluster_col="cl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph = CoxPHFitter().fit(df, "t", "e", weights_col="w", cluster_col="cl", fit_options=sv._LIFELINES_FIT_OPTIONS)
    np.testing.assert_allclose(ours["se"], cph.standard_errors_.to_numpy(), rtol=1e-6)
    # non-integer weights without cluster -> robust by default (R's has.rwt rule)
    assert sv.cox_ph(df, "t", "e", ["x1", "x2"], weights_col="w").attrs["variance"] == "robust"


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

    def fit(w: np.ndarray) -> tuple[np.ndarray, sv._CoxData]:
        d = sv._cox_data(X, t, e, w, strata)
        b, _ = sv._newton_raphson(d, ties)
        for _ in range(3):
            tm = sv._cox_terms(d, b, ties)
            b = b + np.linalg.solve(tm.I, tm.U)
        return b, d

    b0, d = fit(w0)
    tm = sv._cox_terms(d, b0, ties)
    dfbeta = sv._score_residuals(d, b0, tm) * w0[:, None] @ np.linalg.inv(tm.I)
    h = 1e-6
    fd = np.array([(fit(w0 + h * (np.arange(n) == k))[0] - fit(w0 - h * (np.arange(n) == k))[0]) / (2 * h) * w0[k]
                   for k in range(n)])
    np.testing.assert_allclose(dfbeta, fd, atol=1e-7)


def test_cox_robust_with_ties_differs_from_lifelines_sandwich(lung):
    # lifelines' score residuals ignore tied times, so its sandwich is not R's with ties (lung has ties)
    ours = sv.cox_ph(lung, "time", "status", ["sex", "age"], robust=True)
    cph = CoxPHFitter().fit(lung[["time", "status", "sex", "age"]], "time", "status", robust=True,
                            fit_options=sv._LIFELINES_FIT_OPTIONS)
    assert not np.allclose(ours["se"], cph.standard_errors_.to_numpy(), rtol=1e-5, atol=0)
    np.testing.assert_allclose(ours["se"], cph.standard_errors_.to_numpy(), rtol=5e-3)  # close, not equal


def test_cox_stratified_on_pair_runs_and_reports_strata():
    rng = np.random.default_rng(8)
    n = 80
    df = pd.DataFrame({"t": rng.exponential(10, n) + 0.1, "e": rng.integers(0, 2, n),
                       "arm": np.tile(["HAIC-TKIs-P", "TKIs-P"], n // 2), "pair": np.repeat(np.arange(n // 2), 2)})
    out = sv.cox_ph(df, "t", "e", ["arm"], strata_col="pair")
    assert out["term"].tolist() == ["arm[T.HAIC-TKIs-P]"]  # TKIs-P is the reference level
    cph = CoxPHFitter().fit(df.assign(a=(df["arm"] == "HAIC-TKIs-P").astype(float))[["t", "e", "a", "pair"]],
                            "t", "e", strata=["pair"])
    assert out["coef"][0] == pytest.approx(cph.params_["a"], abs=1e-5)


def test_cox_arm_without_events_is_flagged_not_a_number():
    df = pd.DataFrame({"t": np.arange(1.0, 9.0), "e": [1, 1, 1, 0, 0, 0, 0, 0],
                       "arm": ["TKIs-P"] * 4 + ["HAIC-TKIs-P"] * 4})
    for ties in ("efron", "breslow"):
        row = sv.cox_ph(df, "t", "e", ["arm"], ties=ties).iloc[0]
        assert np.isnan(row["hr"]) and np.isnan(row["upper"]) and "infinite" in row["flag"]


def test_concordance_agrees_with_lifelines_and_scikit_survival():
    rng = np.random.default_rng(0)
    t = rng.integers(1, 20, 80).astype(float)   # tied times and tied risks on purpose
    e = rng.integers(0, 2, 80)
    risk = rng.integers(0, 5, 80).astype(float)
    c = sv.concordance_index(t, e, risk)
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
    res = sv.schoenfeld_test(df, "t", "e", ["x1", "x2"], strata_col=strata_col)
    beta = sv.cox_ph(df, "t", "e", ["x1", "x2"], strata_col=strata_col)["coef"].to_numpy()
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
    g = sv._time_transform(T6, E6.astype(float), "km")
    np.testing.assert_allclose(g, [0, 1 / 6, 1 / 6, 1 / 3, 5 / 9, 5 / 9])


def test_zph_plot_data_centres_on_the_coefficient():
    # unweighted, unstratified: Schoenfeld residuals sum to the score (0 at beta_hat), so the scaled residuals + beta
    # average to beta
    rng = np.random.default_rng(6)
    df = pd.DataFrame({"t": rng.exponential(5, 70) + 0.1, "e": rng.integers(0, 2, 70), "x": rng.normal(size=70)})
    res = sv.schoenfeld_test(df, "t", "e", ["x"])
    beta = sv.cox_ph(df, "t", "e", ["x"])["coef"][0]
    assert len(res.plot_data) == df["e"].sum()
    assert res.plot_data["x"].mean() == pytest.approx(beta, abs=1e-6)
    assert res.plot_data["time"].is_monotonic_increasing


# --------------------------------------------------------------------------------------------------- RMST
def test_rmst_hand_computed_step_function():
    # S = 1 on [0,1), .833333 on [1,2), .666667 on [2,3), .444444 on [3,4.5]
    # RMST(4.5) = 1 + .833333 + .666667 + 1.5*.444444 = 3.166667
    # survRM2 variance: areas after t=1,2,3 are 2.166667, 1.333333, .666667 with d/(n(n-d)) = 1/30, 1/20, 1/6
    #   -> 4.694444/30 + 1.777778/20 + .444444/6 = .319444, se = .565194
    r = sv.rmst(T6, E6, tau=4.5)
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
    out = sv.rmst_difference([2, 4, 6, 1, 3, 5], [1, 1, 1, 1, 1, 0], g).set_index("quantity")
    assert out.attrs["tau"] == 5
    assert out.loc["RMST HAIC-TKIs-P", "estimate"] == pytest.approx(3.666667, abs=1e-6)
    assert out.loc["RMST TKIs-P", "estimate"] == pytest.approx(3.0)
    assert out.loc["RMST difference", "estimate"] == pytest.approx(0.666667, abs=1e-6)
    assert out.loc["RMST difference", "se"] == pytest.approx(1.186342, abs=1e-6)
    # ratio on the log scale: se = sqrt(.518519/3.666667^2 + .888889/3^2) = sqrt(.038568 + .098765) = .370585
    assert out.loc["RMST ratio", "estimate"] == pytest.approx(3.666667 / 3, abs=1e-6)
    assert out.loc["RMST ratio", "se"] == pytest.approx(0.370585, abs=1e-6)
    with pytest.raises(ValueError, match="tau must be <="):
        sv.rmst_difference([2, 4, 6, 1, 3, 5], [1, 1, 1, 1, 1, 0], g, tau=5.5)


def test_weighted_rmst_uses_ij_variance():
    rng = np.random.default_rng(9)
    t = rng.integers(1, 12, 25).astype(float)
    e = rng.integers(0, 2, 25)
    w = rng.uniform(0.2, 3, 25)
    tau = 8.5
    r = sv.rmst(t, e, tau, weights=w)
    assert r["variance"] == "ij"
    h = 1e-6
    infl = [(sv.rmst(t, e, tau, weights=w + h * (np.arange(25) == k), variance="greenwood")["rmst"]
             - sv.rmst(t, e, tau, weights=w - h * (np.arange(25) == k), variance="greenwood")["rmst"]) / (2 * h) * w[k]
            for k in range(25)]
    assert r["se"] == pytest.approx(np.sqrt(np.sum(np.square(infl))), rel=1e-6)


# ------------------------------------------------------------------------------------------------- E-value
def test_evalue_evalues_hr_documented_example():
    # evalues.HR(0.56, 0.46, 0.69, rare = FALSE):
    # RR = (1 - 0.5^sqrt(.56)) / (1 - 0.5^sqrt(1/.56)) = (1 - .595304)/(1 - .396033) = .670084 -> 1/RR = 1.492350
    # E = 1.492350 + sqrt(1.492350 * .492350) = 2.349531
    # upper limit .69 -> RR .773527 -> 1/RR 1.292780 -> E = 1.908004 (limit closest to 1)
    ev = sv.evalue_hr(0.56, 0.46, 0.69, rare=False)
    assert ev["rr"] == pytest.approx(0.670084, abs=1e-6)
    assert ev["evalue_point"] == pytest.approx(2.349531, abs=1e-6)
    assert ev["evalue_ci"] == pytest.approx(1.908004, abs=1e-6)
    assert ev["ci_limit"] == "upper"


def test_evalue_pooled_os_hr_and_rare_outcome_identity():
    # calibration file pooled OS HR 0.56 (0.46-0.67): upper .67 -> RR .757995 -> 1/RR 1.319270 -> E = 1.968272
    ev = sv.evalue_hr(0.56, 0.46, 0.67)
    assert ev["evalue_ci"] == pytest.approx(1.968272, abs=1e-6)
    # rare outcome: RR = HR. VanderWeele & Ding 2017 leukemia example RR .80 (.71, .91): E = 1.25 + sqrt(1.25*.25)
    #   = 1.809017; CI: 1/.91 = 1.098901 -> 1.428571
    rare = sv.evalue_hr(0.80, 0.71, 0.91, rare=True)
    assert rare["evalue_point"] == pytest.approx(1.809017, abs=1e-6)
    assert rare["evalue_ci"] == pytest.approx(1.428571, abs=1e-6)
    # harmful direction is symmetric on the RR scale; CI crossing 1 -> E-value 1
    assert sv.evalue_hr(1 / 0.80, rare=True)["evalue_point"] == pytest.approx(1.809017, abs=1e-6)
    assert sv.evalue_hr(0.8, 0.6, 1.1)["evalue_ci"] == 1.0


def test_evalue_rejects_bad_input():
    with pytest.raises(ValueError, match="inside"):
        sv.evalue_hr(0.5, 0.6, 0.9)
    with pytest.raises(ValueError, match="> 0"):
        sv.evalue_hr(0.0)


# ------------------------------------------------------------------------------------- landmark, subgroups
def test_landmark_resets_time_and_reclassifies_late_exposure():
    df = pd.DataFrame({"os": [2.0, 3.0, 3.0, 8.0, 10.0, 12.0], "dead": [1, 1, 0, 1, 0, 1],
                       "arm": ["HAIC-TKIs-P", "TKIs-P", "HAIC-TKIs-P", "HAIC-TKIs-P", "HAIC-TKIs-P", "TKIs-P"],
                       "exposure_start_months": [0.5, np.nan, 1.0, 2.0, 4.5, np.nan]})
    lm = sv.landmark(df, "os", "dead", 3, arm_col="arm", exposure_start_col="exposure_start_months")
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
    out = sv.cox_interaction_p(df, "t", "e", "arm", "sex")
    assert out["level"].tolist() == ["F", "M"]
    for _, row in out.iterrows():
        sub = df[df["sex"] == row["level"]]
        assert row["hr"] == pytest.approx(sv.cox_ph(sub, "t", "e", ["arm"])["hr"][0])
        assert row["n"] == len(sub)
    # LRT by lifelines: arm + sex versus arm + sex + arm:sex
    d = pd.DataFrame({"t": df["t"], "e": df["e"], "a": (df["arm"] == "HAIC-TKIs-P") * 1.0,
                      "m": (df["sex"] == "M") * 1.0})
    d["am"] = d["a"] * d["m"]
    ll0 = CoxPHFitter().fit(d[["t", "e", "a", "m"]], "t", "e").log_likelihood_
    ll1 = CoxPHFitter().fit(d, "t", "e").log_likelihood_
    from scipy import stats
    assert out["p_interaction"][0] == pytest.approx(stats.chi2.sf(2 * (ll1 - ll0), 1), rel=1e-4)


def test_cox_interaction_flags_a_level_without_events_in_an_arm():
    df = pd.DataFrame({"t": np.arange(1.0, 13.0), "e": [1, 1, 0, 1, 1, 0, 1, 0, 0, 0, 1, 1],
                       "arm": ["TKIs-P", "HAIC-TKIs-P"] * 6, "g": ["x"] * 6 + ["y"] * 6})
    df.loc[df["g"].eq("y") & df["arm"].eq("HAIC-TKIs-P"), "e"] = 0
    out = sv.cox_interaction_p(df, "t", "e", "arm", "g").set_index("level")
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
        sv.kaplan_meier(time, event)


def test_bad_model_input_raises_clear_message():
    df = pd.DataFrame({"t": [1.0, 2, 3, 4], "e": [1, 0, 1, 1], "x": [1.0, np.nan, 0, 1], "w": [1, -1, 1, 1]})
    with pytest.raises(ValueError, match="covariate 'x' has 1 missing"):
        sv.cox_ph(df, "t", "e", ["x"])
    with pytest.raises(ValueError, match="weights must be >= 0"):
        sv.kaplan_meier(df["t"], df["e"], weights=df["w"])
    with pytest.raises(ValueError, match="no events"):
        sv.cox_ph(df.assign(e=0, x=[1.0, 0, 0, 1]), "t", "e", ["x"])
    with pytest.raises(ValueError, match="not in the data"):
        sv.cox_ph(df, "t", "e", ["age"])
    with pytest.raises(ValueError, match="conf_type"):
        sv.kaplan_meier([1, 2], [1, 1], conf_type="logit")
    with pytest.raises(ValueError, match="beyond the last follow-up"):
        sv.rmst([1, 2, 3], [1, 0, 0], tau=5)


# ------------------------------------------------------------------------------ notebook orchestration (03_survival)
H, C = sv.TREATMENT_ARM, sv.CONTROL_ARM
SPEC = {"conf_type": "log-log", "conf_level": 0.95, "timepoints_months": [6], "rmst_tau_months": 6, "ties": "efron"}


def _two_arms() -> pd.DataFrame:
    # HAIC: (2,1) (4,0) (6,1) (8,0); control: (1,1) (3,1) (5,1) (7,0); one row with a missing time (dropped)
    return pd.DataFrame({"t": [2, 4, 6, 8, 1, 3, 5, 7, np.nan], "e": [1, 0, 1, 0, 1, 1, 1, 0, 1],
                         "arm": [H] * 4 + [C] * 5, "pair": [1, 2, 3, 4, 1, 2, 3, 4, 4]})


def test_analyse_endpoint_hand_computed():
    res = sv.analyse_endpoint(_two_arms(), "t", "e", SPEC)
    assert res["n_dropped"] == 1 and res["n"] == {H: 4, C: 4} and res["events"] == {H: 2, C: 3}
    # HAIC KM: t=2 n=4 d=1 -> 0.75; t=6 n=2 d=1 -> 0.375: median 6 (first time S <= 0.5)
    # control KM: t=1 -> 0.75, t=3 n=3 d=1 -> 0.5, t=5 n=2 d=1 -> 0.25: S = 0.5 exactly on [3, 5) -> median (3+5)/2 = 4
    assert res["median"].loc[H, "median"] == 6.0 and res["median"].loc[C, "median"] == 4.0
    at = res["survival_at"].set_index("arm")["surv"]
    assert at[H] == pytest.approx(0.375) and at[C] == pytest.approx(0.25)
    # RMST to 6: HAIC 2*1 + 4*0.75 = 5; control 1*1 + 2*0.75 + 2*0.5 + 1*0.25 = 3.75; difference 1.25
    rm = res["rmst"].set_index("quantity")["estimate"]
    assert rm[f"RMST {H}"] == pytest.approx(5.0) and rm[f"RMST {C}"] == pytest.approx(3.75)
    assert rm["RMST difference"] == pytest.approx(1.25)
    data = _two_arms().dropna()
    lr = sv.logrank_test(data["t"], data["e"], data["arm"])
    assert res["test"] == {"label": "Log-rank", "p": lr.p, "chi2": lr.chi2}
    direct = sv.cox_ph(data, "t", "e", ["arm"])
    assert res["hr"]["hr"] == pytest.approx(direct.loc[0, "hr"]) and res["hr"]["n"] == 8
    assert res["km"][H].attrs["conf_type"] == "log-log" and not res["notes"]
    # reverse KM (censorings as events): times 4, 7, 8 censored among 8 -> its median is where it reaches 0.5
    assert res["follow_up"]["median"] == sv.median_follow_up_reverse_km(data["t"], data["e"])["median"]


def test_analyse_endpoint_cluster_and_weights():
    data = _two_arms().dropna()
    res = sv.analyse_endpoint(data, "t", "e", SPEC, cluster_col="pair")
    assert res["hr"]["variance"] == "robust (cluster=pair)"
    assert res["hr"]["se"] == pytest.approx(sv.cox_ph(data, "t", "e", ["arm"], cluster_col="pair").loc[0, "se"])
    # weights all 1: weighted KM and RMST equal the unweighted ones; the test becomes the robust Wald of the Cox model
    w = sv.analyse_endpoint(data.assign(w=1.0), "t", "e", SPEC, weights_col="w")
    plain = sv.analyse_endpoint(data, "t", "e", SPEC)
    assert w["weighted"] and w["test"]["label"].startswith("Robust Wald") and w["test"]["p"] == w["hr"]["p"]
    pd.testing.assert_frame_equal(w["rmst"].iloc[:3].reset_index(drop=True),
                                  plain["rmst"].iloc[:3].reset_index(drop=True), check_exact=False)
    # weights 2 on every row: the KM estimate (not its variance) is unchanged
    w2 = sv.analyse_endpoint(data.assign(w=2.0), "t", "e", SPEC, weights_col="w")
    np.testing.assert_allclose(w2["km"][H]["surv"], plain["km"][H]["surv"])


def test_analyse_endpoint_records_what_is_not_estimable():
    # no events at all: medians not reached, no Cox / Schoenfeld, tau beyond follow-up -> notes, not exceptions
    data = _two_arms().dropna().assign(e=0)
    res = sv.analyse_endpoint(data, "t", "e", {**SPEC, "rmst_tau_months": 24})
    assert res["cox"] is None and res["ph"] is None and res["rmst"] is None and np.isnan(res["hr"]["hr"])
    assert not res["median"].loc[H, "median_reached"] and np.isnan(res["test"]["p"])
    assert any("Cox model" in n for n in res["notes"]) and any("RMST" in n for n in res["notes"])


def test_analyse_endpoint_bad_input():
    data = _two_arms()
    with pytest.raises(ValueError, match="other than"):
        sv.analyse_endpoint(data.assign(arm="HAIC"), "t", "e", SPEC)
    with pytest.raises(ValueError, match="both arms"):
        sv.analyse_endpoint(data[data["arm"] == H], "t", "e", SPEC)
    with pytest.raises(ValueError, match="not in the data"):
        sv.analyse_endpoint(data, "t", "e", SPEC, weights_col="w")


def test_flat_results_keys_and_values():
    res = sv.analyse_endpoint(_two_arms(), "t", "e", SPEC)
    full = sv.flat_results(res, "os")
    assert full["os_median_haic"] == 6.0 and full["os_median_control"] == 4.0 and full["os_median_haic_reached"]
    assert full["os_6m_haic"] == pytest.approx(0.375) and full["os_rmst_diff"] == pytest.approx(1.25)
    assert full["os_hr_unadj"] == res["hr"]["hr"] and full["os_events_control"] == 3
    assert "os_logrank_p" in full and full["os_rmst_tau"] == 6.0
    matched = sv.flat_results(res, "os", "matched")
    assert matched["os_median_haic_matched_lower"] == res["median"].loc[H, "lower"]
    assert matched["os_hr_matched"] == res["hr"]["hr"] and "os_logrank_p_matched" in matched
    weighted = sv.flat_results(sv.analyse_endpoint(_two_arms().assign(w=1.5), "t", "e", SPEC, weights_col="w"),
                               "os", "iptw")
    assert "os_hr_iptw" in weighted and not any(k.startswith("os_logrank") for k in weighted)


def test_prepare_covariates_missing_indicator_design():
    df = pd.DataFrame({"age": [50.0, np.nan, 60, 70], "ecog": [0.0, 1.0, np.nan, 1.0],
                       "sex": ["f", "m", "m", None], "mvi": pd.array([True, False, True, True], dtype="boolean"),
                       "const": [1.0, 1.0, 1.0, 1.0], "size": [5.0, np.nan, 7.0, 9.0]})
    data, cols, notes = sv.prepare_covariates(df, ["age", "ecog", "sex", "mvi", "const", "size"], ["ecog"])
    # age: median of 50, 60, 70 = 60; ecog: mode 1 (two 1s), integer levels 0 < 1; sex: mode "m"; mvi -> 0/1
    assert data["age"].tolist() == [50, 60, 60, 70] and data["age_missing"].tolist() == [0, 1, 0, 0]
    assert list(data["ecog"].cat.categories) == [0, 1] and data["ecog"].tolist() == [0, 1, 1, 1]
    assert data["sex"].tolist() == ["f", "m", "m", "m"] and data["mvi"].tolist() == [1.0, 0.0, 1.0, 1.0]
    assert data["size"].tolist() == [5, 7, 7, 9]  # median of 5, 7, 9
    # size is missing on the same row as age: its indicator would be collinear with age_missing -> left out
    assert cols == ["age", "age_missing", "ecog", "ecog_missing", "sex", "sex_missing", "mvi", "size"]
    assert any("const" in n for n in notes) and any("size_missing: identical to age_missing" in n for n in notes)
    # mode tie (one "f", one "m") -> first level in sorted order
    tie, _, _ = sv.prepare_covariates(pd.DataFrame({"sex": ["m", "f", None]}), ["sex"])
    assert tie["sex"].tolist() == ["m", "f", "f"]
    cc_df = pd.DataFrame({"age": [50.0, 60, np.nan, 70, 80], "sex": ["f", "m", "m", "f", None]})
    cc, cc_cols, cc_notes = sv.prepare_covariates(cc_df, ["age", "sex"], missing="complete_case")
    assert cc.index.tolist() == [0, 1, 3] and cc_cols == ["age", "sex"] and "2 of 5 rows dropped" in cc_notes[0]
    with pytest.raises(ValueError, match="not in the data"):
        sv.prepare_covariates(df, ["albi"])
    with pytest.raises(ValueError, match="missing must be"):
        sv.prepare_covariates(df, ["age"], missing="impute")


def test_adjusted_cox_is_cox_on_the_prepared_design(lung):
    df = lung.assign(arm=np.where(lung["sex"] == 2, H, C), ecog=lung["ph.ecog"]).dropna(subset=["ecog"])
    df.loc[df.index[:10], "age"] = np.nan
    table = sv.adjusted_cox(df, "time", "status", ["age", "ecog"], categorical=["ecog"])
    data, cols, _ = sv.prepare_covariates(df, ["age", "ecog"], ["ecog"])
    direct = sv.cox_ph(data, "time", "status", ["arm", *cols])
    np.testing.assert_allclose(table["coef"], direct["coef"])
    assert table["term"].iloc[0] == sv.ARM_TERM and "age_missing" in set(table["term"])
    assert table.attrs["n"] == len(df) and table.attrs["missing"] == "indicator"
    cc = sv.adjusted_cox(df, "time", "status", ["age", "ecog"], ["ecog"], missing="complete_case")
    assert cc.attrs["n"] == len(df) - 10 and cc.attrs["n_input"] == len(df)


def test_landmark_analysis_reclassifies_by_haic_start():
    # L = 3 months = 91.3 days. Rows: (time, event, arm, offset days)
    df = pd.DataFrame({"t": [2.0, 5, 6, 7, 8, 9, 10, 4], "e": [1, 1, 0, 1, 1, 0, 1, 1],
                       "arm": [H, H, H, H, C, C, C, C], "off": [10, -20, 100, 30, np.nan, np.nan, np.nan, np.nan]})
    lm = sv.landmark_analysis(df, "t", "e", 3, offset_days_col="off")
    # t=2 dies before L -> excluded; offset 100 days = 3.29 months > L -> re-classified to TKIs-P
    assert lm["n"] == 7 and lm["n_excluded"] == 1 and lm["n_reclassified"] == 1 and lm["n_events"] == 5
    d = lm["data"].set_index("t_baseline")
    assert d.loc[6, "arm"] == C and d.loc[6, "arm_baseline"] == H and d.loc[5, "arm"] == H
    assert d["t"].tolist() == [2.0, 3, 4, 5, 6, 7, 1]
    direct = sv.cox_ph(lm["data"], "t", "e", ["arm"])
    assert lm["hr_unadj"]["hr"] == pytest.approx(direct.loc[0, "hr"]) and lm["cox_adj"] is None
    with pytest.raises(ValueError, match="not in the data"):
        sv.landmark_analysis(df, "t", "e", 3)


def test_hr_tables_and_formats():
    data = _two_arms().dropna()
    table = sv.hr_summary({"unadjusted": sv.cox_ph(data, "t", "e", ["arm"]), "missing model": None})
    assert table["analysis"].tolist() == ["unadjusted", "missing model"] and np.isnan(table.loc[1, "hr"])
    f = sv.format_hr_summary(table)
    assert f.loc[1, "HR (95% CI)"] == "NE (NE–NE)" and f.loc[1, "N"] == "—" and f.loc[0, "N"] == "8"
    assert f.loc[0, "HR (95% CI)"] == f"{table.loc[0, 'hr']:.2f} ({table.loc[0, 'lower']:.2f}–{table.loc[0, 'upper']:.2f})"
    with pytest.raises(ValueError, match="not in the Cox table"):
        sv.arm_hr(sv.cox_ph(data, "t", "e", ["pair"]))
    notes: list[str] = []
    assert sv.attempt(notes, "cox", sv.cox_ph, data.assign(e=0), "t", "e", ["arm"]) is None
    assert notes and notes[0].startswith("cox: not estimable")


def test_km_and_rmst_summaries():
    # HAIC never drops to 0.5 here (one death among four) -> median "NR"
    data = pd.DataFrame({"t": [2, 4, 6, 8, 1, 3, 5, 7], "e": [1, 0, 0, 0, 1, 1, 1, 0], "arm": [H] * 4 + [C] * 4})
    res = sv.analyse_endpoint(data, "t", "e", SPEC)
    s = sv.km_summary({"full": res})
    assert s["arm"].tolist() == [H, C] and s.loc[0, "s_6m"] == pytest.approx(0.75)
    f = sv.format_km_summary(s, "log-log")
    assert f.loc[0, "n (events)"] == "4 (1)" and f.loc[0, "Median, months (95% CI, log-log)"].startswith("NR (")
    assert f.loc[1, "Median, months (95% CI, log-log)"].startswith("4.0 (")
    assert f.loc[0, "6m survival, % (95% CI)"].startswith("75.0 (")
    r = sv.rmst_summary({"full": res, "none": {**res, "rmst": None}})
    # RMST to 6: HAIC 2 + 4*0.75 = 5, control 3.75 -> 1.25
    assert r.loc[0, "diff"] == pytest.approx(1.25) and np.isnan(r.loc[1, "diff"])
    fr = sv.format_rmst_summary(r)
    assert fr.loc[0, f"RMST {H}"] == "5.0" and fr.loc[1, "P"] == "—"


def test_km_plot_number_at_risk_row_matches_number_at_risk():
    from analysis_utils.reporting import figures

    res = sv.analyse_endpoint(_two_arms(), "t", "e", SPEC)
    fig = figures.km_plot(res, x_max=9, tick_step=3)
    risk_ax = fig.axes[1]
    # ticks 0, 3, 6, 9: HAIC times 2, 4, 6, 8 -> at risk 4, 3, 2, 0; control 1, 3, 5, 7 -> 4, 3, 1, 0
    colour = {t.get_text(): t.get_color() for t in risk_ax.texts}
    by_arm = {}
    for t in risk_ax.texts:
        if t.get_text().isdigit():
            by_arm.setdefault(t.get_color(), []).append(int(t.get_text()))
    assert by_arm[figures.ARM_COLOURS[H]] == [4, 3, 2, 0] and by_arm[figures.ARM_COLOURS[C]] == [4, 3, 1, 0]
    assert colour[H] == figures.ARM_COLOURS[H]
    box = fig.axes[0].texts[0].get_text()
    assert f"{H}: 6.0 (" in box and f"{C}: 4.0 (" in box and "Log-rank p" in box
    import matplotlib.pyplot as plt
    plt.close(fig)


# ------------------------------------------------------------------ notebook steps (load_cohorts ... survival_results)
def test_load_cohorts_joins_matched_and_weights(tmp_path):
    cohort = pd.DataFrame({"study_id": ["A", "B", "C", "D"], "arm": [H, H, C, C], "age": [50, 60, 70, 80]})
    cohort.to_parquet(tmp_path / "cohort.parquet")
    pd.DataFrame({"study_id": ["A", "C"], "subclass": [1, 1], "match_weight": [1.0, 1.0]}).to_parquet(
        tmp_path / "matched.parquet")
    pd.DataFrame({"study_id": ["A", "B", "C"], "arm": [H, H, C], "w_iptw_ate": [2.0, 2.0, 1.5]}).to_parquet(
        tmp_path / "weights.parquet")
    cohorts, notes = sv.load_cohorts(tmp_path)
    assert list(cohorts) == ["full", "matched", "iptw"] and not notes
    assert cohorts["matched"]["df"]["study_id"].tolist() == ["A", "C"]  # inner join: 2 of 4 patients
    # every match weight is 1 (1:1 without replacement) -> unweighted, variance clustered on the pair
    assert cohorts["matched"]["kw"] == {"cluster_col": "subclass", "weights_col": None}
    iptw = cohorts["iptw"]["df"]  # the weights file's own arm column is dropped, not suffixed
    assert iptw["arm"].tolist() == [H, H, C] and "arm_x" not in iptw and cohorts["iptw"]["kw"]["weights_col"]
    # arms x cohorts: full 2/2, matched 1/1, iptw 2/1
    sizes = sv.cohort_sizes(cohorts)
    assert sizes.loc[H].tolist() == [2, 1, 2] and sizes.loc[C].tolist() == [2, 1, 1]
    assert sv.main_cohort(cohorts) == "matched"
    pd.DataFrame({"study_id": ["A", "C"], "subclass": [1, 1], "match_weight": [2.0, 1.0]}).to_parquet(
        tmp_path / "matched.parquet")
    assert sv.load_cohorts(tmp_path)[0]["matched"]["kw"]["weights_col"] == "match_weight"
    (tmp_path / "matched.parquet").unlink()
    (tmp_path / "weights.parquet").unlink()
    only, notes = sv.load_cohorts(tmp_path)
    assert list(only) == ["full"] and len(notes) == 2 and "matched.parquet not found" in notes[0]
    assert sv.main_cohort(only) == "full"
    with pytest.raises(FileNotFoundError, match="cohort.parquet"):
        sv.load_cohorts(tmp_path / "nowhere")


def _small_cohorts() -> dict[str, dict]:
    # the _two_arms times for all three endpoints; HAIC offsets -10, 20, 120, 0 days; age, pair, subgroup mvi
    d = _two_arms().dropna()
    df = pd.DataFrame({"study_id": list("abcdefgh"), "arm": d["arm"].tolist(),
                       "age": [50.0, 61, 58, 70, 65, 52, 49, 72], "mvi": [1, 0, 1, 0, 0, 1, 0, 1],
                       "subclass": d["pair"].astype(int).tolist(),
                       "haic_offset_days": [-10, 20, 120, 0, np.nan, np.nan, np.nan, np.nan]})
    for ep, (time_col, event_col, _) in sv.ENDPOINTS.items():
        df[time_col], df[event_col] = d["t"].to_numpy(), d["e"].to_numpy()
    return {"full": {"df": df, "kw": {}, "label": "Full cohort"},
            "matched": {"df": df, "kw": {"cluster_col": "subclass", "weights_col": None}, "label": "Matched cohort"}}


SPEC_NB = {**SPEC, "landmark_months": 3, "adjust_covariates": ["age"], "categorical": [], "missing": "indicator",
           "subgroups": ["mvi"]}


def test_notebook_steps_structure_and_hand_values():
    cohorts = _small_cohorts()
    res, notes = sv.endpoint_results(cohorts, SPEC_NB)
    assert set(res) == set(sv.ENDPOINTS) and all(list(r) == ["full", "matched"] for r in res.values())
    assert all(n.split(",")[0] in sv.ENDPOINTS for n in notes)
    summary, formatted = sv.km_tables(res, cohorts, "os", "log-log")
    # medians by hand (test_analyse_endpoint_hand_computed): HAIC 6, control 4, in both cohorts
    assert summary["median"].tolist() == [6.0, 4.0, 6.0, 4.0] and formatted["Analysis"].iloc[2] == "Matched cohort"
    assert sv.follow_up_table(res, cohorts)["analysis"].tolist() == ["Full cohort", "Matched cohort"]
    cox = sv.cox_models(cohorts, res, SPEC_NB)
    direct = sv.adjusted_cox(cohorts["full"]["df"], "os_months", "os_event", ["age"], ties="efron")
    assert cox["adjusted"]["os"]["coef"].tolist() == pytest.approx(direct["coef"].tolist())
    assert list(cox["models"]["os"]) == ["Full cohort, unadjusted", "Full cohort, adjusted (indicator)",
                                         "Full cohort, adjusted (complete case)",
                                         "Matched, robust SE clustered on pair", "Matched, stratified on pair"]
    assert cox["models"]["os"]["Full cohort, unadjusted"] is res["os"]["full"]["cox"]
    assert cox["notes"][0] == "Adjusted OS model: 8 of 8 patients; complete case: 8."
    table = sv.cox_table(cox["models"])
    assert len(table) == 15 and table.columns[0] == "endpoint" and table["endpoint"].iloc[5] == "PFS (RECIST 1.1)"
    coefs, coefs_fmt = sv.coefficient_table(direct)
    assert coefs["term"].tolist() == [sv.ARM_TERM, "age"] and list(coefs_fmt) == ["term", "hr", "p"]
    ph = sv.ph_table(res, cohorts)
    assert ph.shape == (3, 2) and ph.loc["Overall survival", "Full cohort"] == res["os"]["full"]["ph_p"]
    assert sv.arm_coef(res["os"]["full"]) == pytest.approx(res["os"]["full"]["cox"].loc[0, "coef"])
    # RMST to 6 by hand: HAIC 5, control 3.75 -> difference 1.25 in every row
    assert sv.rmst_table(res, cohorts)["diff"].tolist() == pytest.approx([1.25] * 6)
    # landmark at 3 months keeps t > 3: HAIC 4, 6, 8 and control 5, 7 (n 5, 3 excluded, events at 6 and 5);
    # the HAIC patient with t = 6 started HAIC at 120 days = 3.94 months > 3 -> re-classified
    assert sv.haic_timing(cohorts["full"]["df"], 3) == {"n_haic": 4, "n_after_index": 2, "n_after_landmark": 1}
    landmarks = sv.landmark_analyses(cohorts["full"]["df"], SPEC_NB)
    lm = sv.landmark_table(landmarks)
    assert lm.loc[0, ["n_at_landmark", "n_excluded", "n_reclassified", "events"]].tolist() == [5, 3, 1, 2]
    subgroups, sg_notes = sv.subgroup_analysis(cohorts, SPEC_NB)
    assert (subgroups is None) == bool(sg_notes)
    evalue = sv.matched_os_evalue(res)
    assert evalue["evalue_point"] == sv.evalue_hr(*(res["os"]["matched"]["hr"][k] for k in ("hr", "lower", "upper")),
                                                  rare=False)["evalue_point"]
    assert sv.matched_os_evalue({"os": {"full": res["os"]["full"]}}) is None
    values = sv.survival_results(SPEC_NB, cohorts, res, cox, landmarks, evalue, subgroups)
    assert values["cohorts"] == ["full", "matched"] and values["adjust_missing"] == "indicator"
    assert values["os_median_haic"] == 6.0 and values["pfs_mrecist_median_control_matched"] == 4.0
    assert values["os_rmst_diff"] == pytest.approx(1.25) and values["os_hr_adj_n"] == 8
    assert values["os_hr_adj"] == pytest.approx(direct.loc[0, "hr"])
    assert values["os_landmark_n"] == 5 and values["os_landmark_n_reclassified"] == 1
    assert values["median_follow_up"] == values["os_median_follow_up"] and values["os_evalue"] == evalue["evalue_point"]
    assert "os_hr_matched_strat" in values and ("os_subgroup_mvi_p_interaction" in values) == (subgroups is not None)
    head = sv.headline_results(values)
    assert "os_median_haic" in head and "os_hr_adj" in head and "pfs_recist_median_haic" not in head
    full_only = {"full": cohorts["full"]}
    no_match = sv.survival_results(SPEC_NB, full_only, {ep: {"full": r["full"]} for ep, r in res.items()},
                                   sv.cox_models(full_only, res, SPEC_NB), landmarks)
    assert not any("matched" in k for k in no_match) and "os_evalue" not in no_match
