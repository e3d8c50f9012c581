"""Clone-censor-weight core (stats/ccw.py, stats/irls.py, stats/cox_counting.py) against hand arithmetic on a tiny
cohort, lifelines (weighted Kaplan-Meier with entry times, Cox on (start, stop] data) and statsmodels (glm).

The hand cohort (days; grace period G = 10, intervals of 5 days, so {0}, (0, 5], (5, 9], {10}):

unit  follow-up  event  deviation A  deviation B  x   (what happened)
1     20         1      inf          0            1   HAIC on day 0
2     7          1      10           inf          0   no HAIC, dies before G
3     30         0      10           inf          1   no HAIC
4     15         1      inf          4            0   HAIC on day 4
5     6          1      inf          6            1   HAIC on day 6, dies that day (the death counts in B)
6     25         0      10           10           0   no combination
7     10         1      10           inf          0   no HAIC, dies on day G (the death counts in A)
8     40         0      inf          10           1   HAIC on day G
"""
import warnings

import numpy as np
import pandas as pd
import pytest

from analysis_utils.stats import ccw
from analysis_utils.stats.cox_counting import cox_counting
from analysis_utils.stats.irls import aliased_columns, logit_irls, logit_irls_grid

TIME = np.array([20, 7, 30, 15, 6, 25, 10, 40], dtype=float)
EVENT = np.array([1, 1, 0, 1, 1, 0, 1, 0], dtype=float)
INF = np.inf
DEV = np.array([[INF, 0], [10, INF], [10, INF], [INF, 4], [INF, 6], [10, 10], [10, INF], [INF, 10]], dtype=float)
X1 = np.array([1, 0, 1, 0, 1, 0, 0, 1], dtype=float)[:, None]
IV = ccw.Intervals.grace_grid(10, 5)
POSSIBLE = np.vstack([np.arange(IV.size) == IV.size - 1, np.ones(IV.size, dtype=bool)])


def _design(stabilize=True, truncate=None, times=(6.0, 7.0, 10.0, 15.0, 20.0), tau=20.0):
    return ccw.CCWDesign(IV, POSSIBLE, stabilize=stabilize, truncate=truncate, times=times, tau=tau)


def test_intervals_of_the_grace_period():
    assert IV.labels() == ["0", "(0, 5]", "(5, 9]", "10"]
    assert IV.entry.tolist() == [0, 0, 5, 10]
    g90 = ccw.Intervals.grace_grid(90, 7)
    assert g90.labels()[:3] == ["0", "(0, 7]", "(7, 14]"] and g90.labels()[-2:] == ["(84, 89]", "90"]
    assert ccw.Intervals.grace_grid(0, 7).labels() == ["0"]
    assert ccw.Intervals.grace_grid(8, 7).labels() == ["0", "(0, 7]", "8"]


def test_person_interval_rows_by_hand():
    # A: at risk at {10} = followed beyond day 10 and not deviated before: units 1, 3, 4, 6, 8; deviating: 3, 6
    risk, dev = ccw.risk_matrices(TIME, DEV[:, 0], IV, POSSIBLE[0])
    assert risk.sum(axis=0).tolist() == [0, 0, 0, 5] and np.flatnonzero(risk[:, 3]).tolist() == [0, 2, 3, 5, 7]
    assert np.flatnonzero(dev[:, 3]).tolist() == [2, 5]
    # B: {0}: all 8, unit 1 deviates; (0, 5]: 7, unit 4; (5, 9]: units 2, 3, 5, 6, 7, 8 and no deviation (unit 5 dies
    # on its HAIC day); {10}: units 3, 6, 8 (unit 7 dies on day 10), units 6 and 8 deviate
    risk, dev = ccw.risk_matrices(TIME, DEV[:, 1], IV, POSSIBLE[1])
    assert risk.sum(axis=0).tolist() == [8, 7, 6, 3] and dev.sum(axis=0).tolist() == [1, 1, 0, 2]
    unit, k, y = ccw.deviation_rows(TIME, DEV[:, 1], IV, POSSIBLE[1])
    assert len(unit) == 24 and y.sum() == 4 and (np.diff(unit) >= 0).all()


def test_weights_by_hand_strategy_a_with_a_covariate():
    # one interval, binary x: the logistic MLE is the share deviating per x: x=1 (units 1, 3, 8): 1/3; x=0 (4, 6):
    # 1/2; time only: 2/5. Stabilised weight after day 10: (3/5)/(2/3) = 0.9 (x=1), (3/5)/(1/2) = 1.2 (x=0)
    m = ccw.deviation_hazards(X1, TIME, DEV[:, 0], IV, POSSIBLE[0])
    assert m.h[:, 3] == pytest.approx(np.where(X1[:, 0] == 1, 1 / 3, 1 / 2), abs=1e-7)
    assert m.h_num[3] == pytest.approx(2 / 5)
    f = ccw.ipc_factors(m, POSSIBLE[0], stabilize=True)
    assert f[:, 3] == pytest.approx(np.where(X1[:, 0] == 1, 0.9, 1.2), abs=1e-6)
    assert np.all(f[:, :3] == 1.0)
    epi = ccw.clone_episodes(TIME, EVENT, DEV[:, 0], f, IV, POSSIBLE[0])
    # clones 3, 6 censored at 10; 7's death on day 10 counts; weights 1 up to day 10, then 0.9 / 1.2
    assert epi.censored.tolist() == [False, False, True, False, False, True, False, False]
    after = epi.start == 10
    assert sorted(zip(epi.unit[after].tolist(), np.round(epi.weight[after], 6).tolist())) == [(0, 0.9), (3, 1.2), (7, 0.9)]
    times, surv, y, d = ccw.km_counting(epi.start, epi.stop, epi.event, epi.weight)
    # S: day 6: 7/8; day 7: 6/8; day 10: 5/8; day 15: risk 0.9 + 1.2 + 0.9 = 3, death weight 1.2 -> x 0.6; day 20: x 0.5
    assert times.tolist() == [6, 7, 10, 15, 20]
    assert surv == pytest.approx([7 / 8, 6 / 8, 5 / 8, 5 / 8 * 0.6, 5 / 8 * 0.3], abs=1e-6)
    assert y[3] == pytest.approx(3.0, abs=1e-6) and d[3] == pytest.approx(1.2, abs=1e-6)


def test_weights_by_hand_strategy_b_time_only():
    # time-only hazards 1/8, 1/7, 0, 2/3 -> unstabilised weights after day 0: 8/7, after 5: 4/3, after 9: 4/3, after
    # 10: 4. Clone 1 is censored at day 0 (no follow-up), 4 at day 4, 6 and 8 at day 10; 5 and 7 keep their deaths
    none = np.zeros((8, 0))
    m = ccw.deviation_hazards(none, TIME, DEV[:, 1], IV, POSSIBLE[1])
    assert m.h[0] == pytest.approx([1 / 8, 1 / 7, 0, 2 / 3], abs=1e-7)
    assert m.h_num == pytest.approx([1 / 8, 1 / 7, 0, 2 / 3])
    f = ccw.ipc_factors(m, POSSIBLE[1], stabilize=False)
    epi = ccw.clone_episodes(TIME, EVENT, DEV[:, 1], f, IV, POSSIBLE[1])
    assert epi.clone_time.tolist() == [0, 7, 30, 4, 6, 10, 10, 10]
    assert epi.clone_event.tolist() == [0, 1, 0, 0, 1, 0, 1, 0]
    w = {(u, s): wt for u, s, wt in zip(epi.unit, epi.start, epi.weight)}
    assert w[(1, 0.0)] == pytest.approx(8 / 7) and w[(2, 5.0)] == pytest.approx(4 / 3, abs=1e-6)
    assert w[(2, 9.0)] == pytest.approx(4 / 3, abs=1e-6) and w[(2, 10.0)] == pytest.approx(4, abs=1e-5)
    assert 0 not in epi.unit  # censored at time zero: no episode
    times, surv, _, _ = ccw.km_counting(epi.start, epi.stop, epi.event, epi.weight)
    # day 6: risk 2, 3, 5, 6, 7, 8 all weighted 4/3 -> 5/6; day 7: 4/5; day 10: 3/4 -> S = 1/2
    assert times.tolist() == [6, 7, 10] and surv == pytest.approx([5 / 6, 2 / 3, 1 / 2], abs=1e-6)


def test_estimate_contrasts_and_unweighted_version():
    data = ccw.CCWInput(TIME[:, None], EVENT[:, None], DEV, X1, ("os",), ("A", "B"))
    res = ccw.ccw_estimate(data, _design())
    s = res.stats
    assert s["os_S15_A"] == pytest.approx(0.375, abs=1e-6) and s["os_S20_A"] == pytest.approx(0.1875, abs=1e-6)
    assert s["os_Sdiff15"] == pytest.approx(s["os_S15_A"] - s["os_S15_B"])
    assert s["os_Sratio15"] == pytest.approx(s["os_S15_A"] / s["os_S15_B"])
    # RMST of A to day 20: 6 + 1 * 7/8 + 3 * 6/8 + 5 * 5/8 + 5 * 0.375 = 15.125
    assert s["os_rmst_A"] == pytest.approx(6 + 7 / 8 + 3 * 6 / 8 + 5 * 5 / 8 + 5 * 0.375, abs=1e-5)
    assert s["os_rmst_diff"] == pytest.approx(s["os_rmst_A"] - s["os_rmst_B"])
    assert np.isfinite(s["os_loghr"])
    unw = ccw.ccw_estimate(data, _design(), weighted=False).stats
    # without weights A's day-15 factor is 1 - 1/3 (units 1, 4, 8 at risk)
    assert unw["os_S15_A"] == pytest.approx(5 / 8 * 2 / 3)


def test_reused_deviation_models_give_the_refitted_analysis():
    """An analysis that differs only in truncation (the sensitivity analysis) reuses the main analysis' fits: the
    same statistics as refitting, the truncation applied, and a model of other data refused."""
    data = ccw.CCWInput(TIME[:, None], EVENT[:, None], DEV, X1, ("os",), ("A", "B"))
    main = ccw.ccw_estimate(data, _design())
    refit = ccw.ccw_estimate(data, _design(truncate=(0.1, 0.9))).stats
    reused = ccw.ccw_estimate(data, _design(truncate=(0.1, 0.9)), models=main.models)
    assert reused.stats == pytest.approx(refit, nan_ok=True)
    assert reused.stats["os_S15_A"] != pytest.approx(main.stats["os_S15_A"])   # the truncation did something
    for key, epi in reused.episodes.items():
        lo, hi = reused.cuts[key]
        assert epi.weight.min() >= lo - 1e-12 and epi.weight.max() <= hi + 1e-12
    with pytest.raises(ValueError, match="other data"):
        ccw.ccw_estimate(data.take(np.arange(7)), _design(), models=main.models)


def test_clone_data_rejects_incomplete_covariates():
    with pytest.raises(ValueError, match="complete"):
        ccw.CCWInput(TIME[:, None], EVENT[:, None], DEV, np.full((8, 1), np.nan))


def test_truncation_at_quantiles():
    w = np.arange(1.0, 101.0)
    t, (lo, hi) = ccw.truncate_weights(w, (0.01, 0.99))
    assert lo == pytest.approx(np.quantile(w, 0.01)) and hi == pytest.approx(np.quantile(w, 0.99))
    assert t.min() == lo and t.max() == hi and (t[1:-1] == w[1:-1]).all()
    assert ccw.truncate_weights(w, None)[0] is w


def test_step_function_helpers():
    times, surv = np.array([2.0, 5.0]), np.array([0.5, 0.25])
    assert ccw.step_at(times, surv, [0, 2, 4.9, 5, 6], last=6).tolist() == [1, 0.5, 0.5, 0.25, 0.25]
    assert np.isnan(ccw.step_at(times, surv, [7], last=6)[0])
    assert ccw.rmst_step(times, surv, 6, last=6) == pytest.approx(2 + 3 * 0.5 + 0.25)
    assert np.isnan(ccw.rmst_step(times, surv, 7, last=6))


def test_weighted_km_on_start_stop_data_matches_lifelines():
    from lifelines import KaplanMeierFitter

    rng = np.random.default_rng(5)
    m = 400
    start = rng.integers(0, 50, m).astype(float)
    stop = start + rng.integers(1, 100, m)
    event = (rng.random(m) < 0.5).astype(float)
    w = rng.uniform(0.3, 3, m)
    times, surv, _, _ = ccw.km_counting(start, stop, event, w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km = KaplanMeierFitter().fit(stop, event, entry=start, weights=w)
    ref = km.survival_function_.iloc[:, 0].reindex(times).to_numpy()
    # lifelines does not reach exactly 0 when the last subjects at risk all die; compare before that point
    ok = surv > 1e-12
    assert np.max(np.abs(ref[ok] - surv[ok])) < 1e-12
    # brute force: at risk = start < t <= stop (R's survfit on Surv(start, stop, event))
    s = 1.0
    for t, sv in zip(times, surv):
        s *= 1 - w[(stop == t) & (event > 0)].sum() / w[(start < t) & (stop >= t)].sum()
        assert sv == pytest.approx(s, abs=1e-12)


def test_counting_process_cox_matches_lifelines():
    from lifelines import CoxTimeVaryingFitter

    rng = np.random.default_rng(11)
    m = 300
    start = rng.integers(0, 40, m).astype(float)
    stop = start + rng.integers(1, 80, m) + rng.random(m)  # no tied event times
    event = rng.random(m) < 0.5
    x = rng.integers(0, 2, m).astype(float)
    w = rng.uniform(0.5, 2.5, m)
    df = pd.DataFrame({"id": np.arange(m), "start": start, "stop": stop, "event": event.astype(int), "x": x, "w": w})
    ref = CoxTimeVaryingFitter().fit(df, id_col="id", start_col="start", stop_col="stop", event_col="event",
                                     weights_col="w").params_["x"]
    fit = cox_counting(start, stop, event, x[:, None], w)
    assert fit.converged and fit.coef[0] == pytest.approx(ref, abs=1e-6)
    # tied event times, unweighted: Efron as lifelines (and R)
    stop2 = np.floor(stop)
    ok = stop2 > start
    df2 = df[ok].assign(stop=stop2[ok]).drop(columns="w")
    ref2 = CoxTimeVaryingFitter().fit(df2, id_col="id", start_col="start", stop_col="stop", event_col="event").params_["x"]
    fit2 = cox_counting(start[ok], stop2[ok], event[ok], x[ok][:, None])
    assert fit2.coef[0] == pytest.approx(ref2, abs=1e-5)
    assert cox_counting(start[ok], stop2[ok], event[ok], x[ok][:, None], ties="breslow").coef[0] != fit2.coef[0]


def test_irls_reproduces_glm():
    import statsmodels.api as sm

    rng = np.random.default_rng(2)
    n = 2000
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 5)), (rng.random(n) < 0.3).astype(float)])
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ rng.normal(size=7) * 0.5)))).astype(float)
    ref = sm.GLM(y, X, family=sm.families.Binomial()).fit(tol=1e-12)
    fit = logit_irls(X, y)
    assert fit.converged and np.max(np.abs(fit.coef - ref.params)) < 1e-8
    assert fit.deviance == pytest.approx(ref.deviance, rel=1e-10)
    # an aliased column gets NaN and changes nothing else (R: NA coefficient)
    fit2 = logit_irls(np.column_stack([X, 2 * X[:, 3], np.zeros(n)]), y)
    assert fit2.aliased.tolist()[-2:] == [True, True] and np.allclose(fit2.coef[:7], fit.coef)
    assert aliased_columns(np.column_stack([X, X[:, 1] + X[:, 2]])).tolist()[-1]


def test_irls_separation_is_reported_not_an_error():
    X = np.column_stack([np.ones(60), np.repeat([0.0, 1.0], 30)])
    y = np.concatenate([np.tile([0.0, 1.0], 15), np.zeros(30)])
    fit = logit_irls(X, y)
    assert fit.coef[1] < -15 and fit.predict(X)[30:].max() < 1e-6


def test_grid_irls_equals_the_stacked_fit_and_warm_start():
    rng = np.random.default_rng(4)
    n, K = 300, IV.size
    X = np.column_stack([rng.normal(size=n), (rng.random(n) < 0.4).astype(float), np.zeros(n)])  # last column aliased
    t = rng.integers(1, 60, n).astype(float)
    d = np.where(rng.random(n) < 0.3, 0.0, np.where(rng.random(n) < 0.5, rng.integers(1, 11, n), np.inf))
    T = ccw.time_design(np.arange(K), IV, POSSIBLE[1], "indicators")
    risk, dev = ccw.risk_matrices(t, d, IV, POSSIBLE[1])
    grid = logit_irls_grid(T, X, risk, dev)
    unit, k, y = ccw.deviation_rows(t, d, IV, POSSIBLE[1])
    stacked = logit_irls(np.column_stack([T[k], X[unit]]), y)
    assert (grid.aliased == stacked.aliased).all() and grid.aliased[-1]
    assert np.nanmax(np.abs(grid.coef - stacked.coef)) < 1e-9 and grid.deviance == pytest.approx(stacked.deviance)
    warm = logit_irls_grid(T, X, risk, dev, start=grid.coef)
    assert warm.iterations <= 2 and np.nanmax(np.abs(warm.coef - grid.coef)) < 1e-6
    quad = ccw.time_design(np.arange(K), IV, POSSIBLE[1], "quadratic")
    assert quad.shape[1] == 5  # intercept, {0}, {10}, t, t^2


def _mean_stat(data, idx):
    return np.array([data[idx].mean()])


def test_bootstrap_is_reproducible_and_independent_of_workers():
    x = np.arange(50.0)
    progress = []
    one = ccw.bootstrap(_mean_stat, x, 50, 30, seed=7, workers=1, progress=lambda d, b: progress.append(d))
    two = ccw.bootstrap(_mean_stat, x, 50, 30, seed=7, workers=2, chunk_size=4)
    assert one.shape == (30, 1) and np.array_equal(one, two)
    assert progress == [10, 20, 30]
    children = np.random.SeedSequence(7).spawn(30)
    first = x[np.random.default_rng(children[0]).integers(0, 50, 50)].mean()
    assert one[0, 0] == first
    lo, hi, n_ok = ccw.percentile_ci(one, 0.9)
    assert lo[0] == pytest.approx(np.quantile(one[:, 0], 0.05)) and n_ok[0] == 30


# --------------------------------------------------------------------------------------------------------------------
# robust (infinitesimal-jackknife) variance of the weighted KM on (start, stop] data: stats/km_counting_ij.py
# --------------------------------------------------------------------------------------------------------------------
from analysis_utils.stats.kaplan_meier import km_counts, km_ij  # noqa: E402
from analysis_utils.stats.km_counting_ij import ij_difference, km_influence  # noqa: E402
from analysis_utils.stats.rmst import rmst as rmst_one  # noqa: E402

# rows (start, stop, event, weight, cluster): cluster 1 has two rows (weight 2 before and after day 3), cluster 2
# enters late (day 1). Event times 2 (Y 5, d 1), 4 (Y 4, d 1), 5 (Y 3, d 2): S = 0.8, 0.6, 0.2.
IJ_START = np.array([0, 0, 3, 1, 0], dtype=float)
IJ_STOP = np.array([2, 3, 5, 4, 6], dtype=float)
IJ_EVENT = np.array([1, 0, 1, 1, 0], dtype=float)
IJ_W = np.array([1, 2, 2, 1, 1], dtype=float)
IJ_CLUSTER = np.array([0, 1, 1, 2, 3])


def test_km_influence_by_hand():
    """survfitkm.c's recursion U_c(u_j) = U_c(u_{j-1}) (1 - h_j) + S(u_{j-1}) [Y_c h_j - dN_c] / Y_j by hand:
    u = 2 (S_prev 1, Y 5, h 0.2): U = (-0.16, 0.08, 0.04, 0.04); u = 4 (S_prev 0.8, Y 4, h 0.25):
    U = (-0.12, 0.16, -0.12, 0.08); u = 5 (S_prev 0.6, Y 3, h 2/3): U = (-0.04, -0.08, -0.04, 0.16).
    RMST to 5.5 = 2 + 2 (0.8) + 0.6 + 0.5 (0.2) = 4.3, influence = 2 U(2) + 1 U(4) + 0.5 U(5)."""
    res = km_influence(IJ_START, IJ_STOP, IJ_EVENT, IJ_W, IJ_CLUSTER, 4, [1.0, 2.0, 4.5, 5.0], tau=5.5)
    assert res.surv == pytest.approx([1.0, 0.8, 0.6, 0.2])
    assert res.influence[:, 0] == pytest.approx([0, 0, 0, 0])
    assert res.influence[:, 1] == pytest.approx([-0.16, 0.08, 0.04, 0.04])
    assert res.influence[:, 2] == pytest.approx([-0.12, 0.16, -0.12, 0.08])
    assert res.influence[:, 3] == pytest.approx([-0.04, -0.08, -0.04, 0.16])
    assert res.se[2] == pytest.approx(np.sqrt(0.0608))
    assert res.rmst == pytest.approx(4.3)
    assert res.rmst_influence == pytest.approx([-0.46, 0.28, -0.06, 0.24])
    assert res.rmst_se == pytest.approx(np.sqrt(0.3512))
    beyond = km_influence(IJ_START, IJ_STOP, IJ_EVENT, IJ_W, IJ_CLUSTER, 4, [7.0], tau=6.5)
    assert np.isnan(beyond.surv[0]) and np.isnan(beyond.se[0]) and np.isnan(beyond.rmst)
    with pytest.raises(ValueError, match="start < stop"):
        km_influence(IJ_STOP, IJ_START, IJ_EVENT, IJ_W, IJ_CLUSTER, 4, [1.0])


def _clone_like(seed=3, n=60):
    """Two curves on the same n clusters (like the two clones of each unit): each cluster has 1-2 rows per curve
    (cut at day 10 with a new weight), non-integer weights, ties, late entries."""
    rng = np.random.default_rng(seed)
    curves = []
    for _ in range(2):
        t = rng.integers(1, 40, n).astype(float)
        e = (rng.random(n) < 0.6).astype(float)
        w0, w1 = rng.uniform(0.5, 2.0, n), rng.uniform(0.5, 3.0, n)
        late = rng.random(n) < 0.2
        s0 = np.where(late, np.minimum(rng.integers(0, 5, n).astype(float), t - 1), 0.0)
        first_stop = np.minimum(t, 10.0)
        rows = [(s0, first_stop, np.where(t <= 10, e, 0.0), w0, np.arange(n), first_stop > s0),
                (np.full(n, 10.0), t, e, w1, np.arange(n), t > 10)]
        cat = [np.concatenate([r[k][r[5]] for r in rows]) for k in range(5)]
        curves.append(cat)
    return curves


def _scaled(curve, c, eps):
    start, stop, event, w, cl = curve
    return start, stop, event, np.where(cl == c, w * (1 + eps), w), cl


def test_km_influence_is_the_derivative_of_s_and_rmst_in_each_clusters_weight():
    """U_c = d/de of S(t) (and RMST) when every row of cluster c has its weight scaled by (1 + e), at e = 0
    (central differences); the same for the difference of two curves sharing the clusters."""
    (a, b), times, tau, n = _clone_like(), np.array([3.0, 9.5, 10.0, 17.0, 30.0]), 25.0, 60
    fa = km_influence(*a, n, times, tau)
    fb = km_influence(*b, n, times, tau)
    eps = 1e-6
    num_s = np.zeros((n, times.size))
    num_r = np.zeros(n)
    num_diff = np.zeros((n, times.size))
    for c in range(n):
        hi, lo = km_influence(*_scaled(a, c, eps), n, times, tau), km_influence(*_scaled(a, c, -eps), n, times, tau)
        num_s[c] = (hi.surv - lo.surv) / (2 * eps)
        num_r[c] = (hi.rmst - lo.rmst) / (2 * eps)
        hb, lb = km_influence(*_scaled(b, c, eps), n, times, tau), km_influence(*_scaled(b, c, -eps), n, times, tau)
        num_diff[c] = ((hi.surv - hb.surv) - (lo.surv - lb.surv)) / (2 * eps)
    assert np.max(np.abs(fa.influence - num_s)) < 1e-6
    assert np.max(np.abs(fa.rmst_influence - num_r)) < 1e-5
    se_diff, se_rmst = ij_difference(fa, fb)
    assert se_diff == pytest.approx(np.sqrt((num_diff**2).sum(axis=0)), rel=1e-6)
    assert se_rmst == pytest.approx(np.sqrt(((fa.rmst_influence - fb.rmst_influence) ** 2).sum()))
    # clusters shared by the two curves: not the sum of the two variances
    assert not np.allclose(se_diff**2, fa.se**2 + fb.se**2)
    # S and RMST are the weighted KM of stats.ccw
    u, s, _, _ = ccw.km_counting(a[0], a[1], a[2], a[3])
    assert fa.surv == pytest.approx(ccw.step_at(u, s, times, a[1].max()))
    assert fa.rmst == pytest.approx(ccw.rmst_step(u, s, tau, a[1].max()))


def test_km_influence_reduces_to_the_right_censored_ij_and_greenwood():
    """One row per cluster from time 0: the IJ of stats.kaplan_meier (weighted) and of stats.rmst; with unit
    weights, Greenwood's variance (survival's own check, tests/book6.R)."""
    rng = np.random.default_rng(11)
    n = 80
    t = rng.integers(1, 30, n).astype(float)
    e = (rng.random(n) < 0.7).astype(float)
    w = rng.uniform(0.3, 2.5, n)
    c = km_counts(t, e, w)
    se_ref, _ = km_ij(c, e, w)
    res = km_influence(np.zeros(n), t, e, w, np.arange(n), n, c.time, tau=20.0)
    ok = np.isfinite(res.surv)
    assert res.se[ok] == pytest.approx(se_ref[ok], rel=1e-9)
    assert res.rmst_se == pytest.approx(rmst_one(t, e, 20.0, weights=w, variance="ij")["se"], rel=1e-9)
    ones = np.ones(n)
    c1 = km_counts(t, e, ones)
    greenwood = c1.surv * np.sqrt(np.cumsum(c1.greenwood_increment))
    g = km_influence(np.zeros(n), t, e, ones, np.arange(n), n, c1.time)
    fin = np.isfinite(greenwood) & np.isfinite(g.surv)
    assert g.se[fin] == pytest.approx(greenwood[fin], rel=1e-9)
