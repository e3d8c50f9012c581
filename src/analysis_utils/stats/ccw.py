"""Clone-censor-weight (CCW) estimation of survival under sustained treatment strategies with a grace period
(Hernán 2018; Maringe et al. 2020; Cain et al. 2010), general and vectorised.

Data: one row per unit with a follow-up time and event for each endpoint, the time at which the unit's observed
treatment deviates from each strategy (``inf`` = never; deviation takes effect just after that time, so an event or
a censoring at the deviation time counts), and baseline covariates. Nothing here knows what the strategies are.

Steps (each a function; the R package / definition it corresponds to in brackets):

1. **Intervals** of the grace period (:class:`Intervals`): ``(lo_k, hi_k]``: a point interval {0} (deviations at
   time zero), intervals of a given width, and a point interval at the end of the grace period. A strategy may
   deviate only in some intervals (``possible``).
2. **Person-interval expansion** (:func:`deviation_rows`) [TrialEmulation ``data_preparation``, the expanded
   person-period data of a pooled logistic model]: a unit is at risk of deviating from strategy s in interval k
   when it has not deviated earlier (deviation time > lo_k) and is still followed (time > lo_k, or > t for a point
   interval {t}); the row is a deviation when the deviation time falls in the interval and before the end of
   follow-up.
3. **Deviation models** (:func:`deviation_hazards`) [``glm(deviate ~ covariates + time, family = binomial)`` on
   those rows, fitted by :func:`analysis_utils.stats.irls.logit_irls_grid`]: one model per strategy with the baseline
   covariates and time (one indicator per interval, or a quadratic in time with its own term for a point interval
   at zero), and for stabilisation a model with time only.
4. **Inverse probability of censoring weights** (:func:`ipc_factors`, :func:`clone_episodes`) [Cole & Hernán
   2008; TrialEmulation ``censor_weight``]: the weight of a clone for time after interval k is
   ``prod_{j <= k} 1 / (1 - h_j(X))``, stabilised by ``prod (1 - h_j)`` of the time-only model; the clone's
   follow-up is cut into ``(start, stop]`` episodes at the interval ends so that each episode carries a constant
   weight; optionally truncated at quantiles (R ``quantile`` type 7) of the episode weights of that strategy.
5. **Weighted Kaplan-Meier on (start, stop] data** (:func:`km_counting`) [``survival::survfit(Surv(start, stop,
   event) ~ 1, weights = w)``; equal to lifelines' ``KaplanMeierFitter.fit(stop, event, entry=start,
   weights=w)``]: S(t) = prod over event times u <= t of (1 - dN_w(u) / Y_w(u)) with Y_w(u) the weight of the
   episodes with start < u <= stop.
6. **Contrasts** (:func:`ccw_estimate`): S(t) per strategy, differences and ratios, RMST up to tau (area under
   the step function, as ``survRM2::rmst2``'s point estimate), and a weighted Cox hazard ratio on the clone data
   (:func:`analysis_utils.stats.cox_counting.cox_counting`, ``coxph(Surv(start, stop, event) ~ strategy,
   weights = w)``), whose proportional-hazards assumption is violated by design around the end of the grace period.
7. **Bootstrap** (:func:`bootstrap`) [``boot::boot`` with ``strata = NULL`` over units; percentile intervals
   with quantile type 7]: units resampled with replacement (all clones of a unit together) and every model refitted
   in each replicate; replicate b draws from ``numpy.random.SeedSequence(seed).spawn(B)[b]``, so results do not
   depend on the number of workers; progress is reported through a callback.

Rules and the choices made: docs/methods/target-trial.md.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Literal, Sequence

import numpy as np

from analysis_utils.stats.cox_counting import cox_counting
from analysis_utils.stats.irls import LogitFit, expit, logit_irls_grid

__all__ = ["Intervals", "CCWInput", "CCWDesign", "risk_matrices", "deviation_rows", "time_design", "deviation_hazards",
           "ipc_factors", "clone_episodes", "truncate_weights", "km_counting", "step_at", "rmst_step",
           "ccw_estimate", "CCWResult", "bootstrap", "percentile_ci"]

TimeModel = Literal["indicators", "quadratic"]


# --------------------------------------------------------------------------------------------------------------------
# intervals and inputs
# --------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Intervals:
    """Intervals ``(lo_k, hi_k]`` covering the grace period, in the time unit of the data."""

    lo: np.ndarray
    hi: np.ndarray
    unit: float = 1.0

    @classmethod
    def grace_grid(cls, grace: float, width: float, unit: float = 1.0) -> "Intervals":
        """Intervals of a grace period measured at resolution ``unit`` (1 = whole days): the point {0} =
        (-unit, 0], then (0, w], (w, 2w], ... below grace - unit, then (., grace - unit] and the point {grace} =
        (grace - unit, grace]. Deviations at time zero and at the end of the grace period are point masses of a
        grace-period protocol, so each gets its own interval (and the units at risk at {grace} are those still
        followed after it)."""
        if grace < 0 or width <= 0 or unit <= 0:
            raise ValueError("grace must be >= 0, width and unit > 0")
        lo, hi = [-unit], [0.0]
        if grace == 0:
            return cls(np.asarray(lo, dtype=float), np.asarray(hi, dtype=float))
        ends = list(np.arange(width, grace - unit, width))
        if grace - unit > 0:
            ends.append(grace - unit)
        prev = 0.0
        for e in ends:
            lo.append(prev)
            hi.append(float(e))
            prev = float(e)
        lo.append(grace - unit)
        hi.append(float(grace))
        return cls(np.asarray(lo, dtype=float), np.asarray(hi, dtype=float), unit)

    @property
    def point(self) -> np.ndarray:
        """Point intervals ({t}: hi - lo equal to the resolution)."""
        return np.isclose(self.hi - self.lo, self.unit)

    @property
    def entry(self) -> np.ndarray:
        """Follow-up must exceed this for a unit to be at risk of deviating in the interval: the start of an
        ordinary interval (partial-interval approximation), the time itself for a point interval (a deviation
        there takes effect just after it), never below 0."""
        return np.maximum(np.where(self.point, self.hi, self.lo), 0.0)

    @property
    def size(self) -> int:
        return int(self.hi.size)

    def labels(self) -> list[str]:
        """'0' for a point interval at zero, else '(lo, hi]' with the numbers as given (e.g. days)."""
        return [f"{hi:g}" if pt else f"({lo:g}, {hi:g}]" for lo, hi, pt in zip(self.lo, self.hi, self.point)]


@dataclass(frozen=True)
class CCWInput:
    """Analysis-ready arrays: ``time``/``event`` (n, E) per endpoint, ``deviation`` (n, S) per strategy (inf =
    never), ``X`` (n, p) baseline covariates of the deviation models (no intercept; already complete)."""

    time: np.ndarray
    event: np.ndarray
    deviation: np.ndarray
    X: np.ndarray
    endpoints: tuple[str, ...] = ("outcome",)
    strategies: tuple[str, ...] = ("A", "B")

    def __post_init__(self) -> None:
        n = self.X.shape[0]
        if self.time.shape != self.event.shape or self.time.shape != (n, len(self.endpoints)):
            raise ValueError("time and event must be (n, number of endpoints)")
        if self.deviation.shape != (n, len(self.strategies)):
            raise ValueError("deviation must be (n, number of strategies)")
        if np.any(~np.isfinite(self.time)) or np.any(self.time < 0):
            raise ValueError("follow-up times must be finite and >= 0")
        if not np.all(np.isfinite(self.X)):
            raise ValueError("covariates must be complete (impute or add indicators first)")

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    def take(self, idx: np.ndarray) -> "CCWInput":
        """The units at ``idx`` (with repeats: a bootstrap sample)."""
        return CCWInput(self.time[idx], self.event[idx], self.deviation[idx], self.X[idx], self.endpoints,
                        self.strategies)


@dataclass(frozen=True)
class CCWDesign:
    """The analysis plan: intervals, in which intervals each strategy can deviate, the time model, stabilisation,
    truncation quantiles (None = none), times for S(t), tau for the RMST, the curve grid and the Cox summary."""

    intervals: Intervals
    possible: np.ndarray
    time_model: TimeModel = "indicators"
    stabilize: bool = True
    truncate: tuple[float, float] | None = None
    times: tuple[float, ...] = ()
    tau: float | None = None
    grid: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cox: bool = True

    def __post_init__(self) -> None:
        if self.possible.ndim != 2 or self.possible.shape[1] != self.intervals.size:
            raise ValueError("possible must be (number of strategies, number of intervals)")
        if self.time_model not in ("indicators", "quadratic"):
            raise ValueError(f"time_model must be 'indicators' or 'quadratic' (got {self.time_model!r})")
        if self.truncate is not None and not 0 <= self.truncate[0] < self.truncate[1] <= 1:
            raise ValueError("truncate must be two quantiles 0 <= lower < upper <= 1")


# --------------------------------------------------------------------------------------------------------------------
# person-interval expansion and deviation models
# --------------------------------------------------------------------------------------------------------------------
def risk_matrices(time: np.ndarray, deviation: np.ndarray, intervals: Intervals,
                  possible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(at_risk, deviated), both (units, intervals) booleans, of one strategy's pooled logistic model.

    A unit is at risk in interval k (where ``possible[k]``) if deviation > lo_k and time > entry_k
    (:attr:`Intervals.entry`); it deviates there if lo_k < deviation <= hi_k and deviation < time (an event or
    censoring at the deviation time comes first)."""
    lo, hi = intervals.lo[None, :], intervals.hi[None, :]
    t, d = time[:, None], deviation[:, None]
    at_risk = (d > lo) & (t > intervals.entry[None, :]) & possible[None, :]
    return at_risk, at_risk & (d <= hi) & (d < t)


def deviation_rows(time: np.ndarray, deviation: np.ndarray, intervals: Intervals,
                   possible: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The person-interval rows of :func:`risk_matrices` in long form: (unit index, interval index, deviated 0/1),
    ordered by unit then interval."""
    at_risk, dev = risk_matrices(time, deviation, intervals, possible)
    unit, k = np.nonzero(at_risk)
    return unit, k, dev[unit, k].astype(float)


def time_design(k: np.ndarray, intervals: Intervals, possible: np.ndarray, time_model: TimeModel) -> np.ndarray:
    """Intercept and time columns for rows in intervals ``k`` of one strategy.

    "indicators": intercept + one indicator per possible interval after the first (R ``factor(interval)``).
    "quadratic": intercept, an indicator per possible point interval, and t, t^2 with t = interval end / last
    interval end (TrialEmulation's default quadratic time). One possible interval: intercept only."""
    idx = np.flatnonzero(possible)
    cols = [np.ones(k.size)]
    if idx.size <= 1:
        return np.column_stack(cols)
    if time_model == "indicators":
        cols += [(k == j).astype(float) for j in idx[1:]]
    else:
        for j in idx[intervals.point[idx]]:  # each point interval (time zero, end of grace) its own term
            cols.append((k == j).astype(float))
        scale = max(float(intervals.hi[idx[-1]]), 1e-12)
        tt = intervals.hi[k] / scale
        cols += [tt, tt**2]
    return np.column_stack(cols)


@dataclass(frozen=True)
class DeviationModel:
    """Fitted hazards of deviation for one strategy: ``h`` (n, K) from covariates + time, ``h_num`` (K,) from time
    only (NaN where the interval is not possible), the two fits and the rows they used."""

    h: np.ndarray
    h_num: np.ndarray
    fit: LogitFit | None
    fit_num: LogitFit | None  # None with "indicators" (closed form)
    n_rows: np.ndarray      # (K,) units at risk per interval
    n_deviations: np.ndarray  # (K,) deviations per interval


def deviation_hazards(X: np.ndarray, time: np.ndarray, deviation: np.ndarray, intervals: Intervals,
                      possible: np.ndarray, time_model: TimeModel = "indicators",
                      start: np.ndarray | None = None) -> DeviationModel:
    """Pooled logistic models of deviation for one strategy (module docstring, step 3), and the fitted hazards for
    every unit and interval (needed for the weights of clones that remain uncensored). ``start``: initial
    coefficients of the covariate model (glm's ``start=``)."""
    n, K = X.shape[0], intervals.size
    at_risk, dev = risk_matrices(time, deviation, intervals, possible)
    n_rows = at_risk.sum(axis=0).astype(float)
    n_dev = dev.sum(axis=0).astype(float)
    h = np.zeros((n, K))
    h_num = np.where(possible, 0.0, np.nan)
    if not at_risk.any():
        return DeviationModel(h, h_num, None, None, n_rows, n_dev)
    T = time_design(np.arange(K), intervals, possible, time_model)   # one row per interval
    fit = logit_irls_grid(T, X, at_risk, dev, start=start)
    q = T.shape[1]
    lp_t = T[:, ~fit.aliased[:q]] @ fit.coef[:q][~fit.aliased[:q]]
    lp_x = X[:, ~fit.aliased[q:]] @ fit.coef[q:][~fit.aliased[q:]]
    h = np.where(possible[None, :], expit(lp_t[None, :] + lp_x[:, None]), 0.0)
    if time_model == "indicators":
        # time-only model with one parameter per interval: the MLE is the share deviating in each interval (glm
        # reaches the same up to its clamp of about 1e-13 where the share is 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            h_num = np.where(possible, n_dev / n_rows, np.nan)
        fit_num = None
    else:
        fit_num = logit_irls_grid(T, np.zeros((n, 0)), at_risk, dev)
        h_num = np.where(possible, expit(T[:, ~fit_num.aliased] @ fit_num.coef[~fit_num.aliased]), np.nan)
    return DeviationModel(h, h_num, fit, fit_num, n_rows, n_dev)


def ipc_factors(model: DeviationModel, possible: np.ndarray, stabilize: bool) -> np.ndarray:
    """Per unit and possible interval the weight factor for surviving it uncensored: 1 / (1 - h), or
    (1 - h_num) / (1 - h) when stabilised; 1 where deviation is not possible. Shape (n, K)."""
    with np.errstate(divide="ignore"):
        f = 1.0 / (1.0 - model.h)
        if stabilize:
            f = f * np.where(possible, 1.0 - np.nan_to_num(model.h_num), 1.0)[None, :]
    return np.where(possible[None, :], f, 1.0)


# --------------------------------------------------------------------------------------------------------------------
# clones in counting-process form, truncation, weighted KM
# --------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Episodes:
    """Clone follow-up of one strategy as (start, stop] episodes with constant weight; ``segment`` is the index of
    the weight period (0 = before the first interval end), ``unit`` the unit; clone-level ``clone_time``,
    ``clone_event`` and ``censored`` (artificially censored at the deviation) per unit."""

    unit: np.ndarray
    segment: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    event: np.ndarray
    weight: np.ndarray
    clone_time: np.ndarray
    clone_event: np.ndarray
    censored: np.ndarray
    change_points: np.ndarray


def clone_episodes(time: np.ndarray, event: np.ndarray, deviation: np.ndarray, factors: np.ndarray,
                   intervals: Intervals, possible: np.ndarray) -> Episodes:
    """Clone each unit into this strategy, censor it at its deviation and cut its follow-up at the ends of the
    possible intervals; the weight of the episode after the j-th interval end is the product of the factors of the
    intervals ending at or before it (a clone uncensored past an interval end was at risk in that interval)."""
    censored = deviation < time
    t_c = np.where(censored, deviation, time)
    e_c = np.where(censored, 0, event).astype(float)
    kk = np.flatnonzero(possible)
    c = intervals.hi[kk]
    cum = np.cumprod(factors[:, kk], axis=1)
    seg_start = np.concatenate([[0.0], c])
    seg_end = np.concatenate([c, [np.inf]])
    seg_w = np.concatenate([np.ones((time.size, 1)), cum], axis=1)
    stop_all = np.minimum(t_c[:, None], seg_end[None, :])
    keep = (t_c[:, None] > seg_start[None, :]) & (stop_all > seg_start[None, :])
    unit, seg = np.nonzero(keep)
    stop = stop_all[unit, seg]
    ev = e_c[unit] * (t_c[unit] <= seg_end[seg])
    return Episodes(unit, seg, seg_start[seg], stop, ev, seg_w[unit, seg], t_c, e_c, censored, c)


def truncate_weights(w: np.ndarray, quantiles: tuple[float, float] | None) -> tuple[np.ndarray, tuple[float, float]]:
    """Weights below / above the given quantiles (R ``quantile`` type 7) set to those quantiles (Cole & Hernán
    2008). Returns the weights and the two cut points (NaN when not truncated)."""
    if quantiles is None or w.size == 0:
        return w, (np.nan, np.nan)
    lo, hi = np.quantile(w, quantiles)
    return np.clip(w, lo, hi), (float(lo), float(hi))


def km_counting(start: np.ndarray, stop: np.ndarray, event: np.ndarray,
                weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weighted Kaplan-Meier on (start, stop] data (module docstring, step 5): event times, S at them, the weighted
    number at risk and the weighted events."""
    ev = (event > 0) & (weight > 0)
    if not ev.any():
        return np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0)
    u, inv = np.unique(stop[ev], return_inverse=True)
    d = np.bincount(inv, weights=weight[ev], minlength=u.size)
    so, sa = np.argsort(stop, kind="stable"), np.argsort(start, kind="stable")
    suf_stop = np.concatenate([np.cumsum(weight[so][::-1])[::-1], [0.0]])
    suf_start = np.concatenate([np.cumsum(weight[sa][::-1])[::-1], [0.0]])
    y = suf_stop[np.searchsorted(stop[so], u, side="left")] - suf_start[np.searchsorted(start[sa], u, side="left")]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(y > 0, 1.0 - d / y, 1.0)
    ratio = np.where(np.abs(ratio) < 1e-12, 0.0, ratio)
    return u, np.cumprod(ratio), y, d


def step_at(times: np.ndarray, surv: np.ndarray, t: Sequence[float] | np.ndarray, last: float) -> np.ndarray:
    """S(t) of a right-continuous step function (1 before the first time); NaN beyond ``last`` (the last follow-up
    time: R ``summary(fit, times, extend = FALSE)``)."""
    t = np.asarray(t, dtype=float)
    i = np.searchsorted(times, t, side="right") - 1
    out = np.where(i >= 0, surv[np.maximum(i, 0)] if surv.size else 1.0, 1.0)
    return np.where(t > last, np.nan, out)


def rmst_step(times: np.ndarray, surv: np.ndarray, tau: float, last: float) -> float:
    """Area under the step function from 0 to tau; NaN when tau is beyond the last follow-up time."""
    if tau > last:
        return float("nan")
    knots = np.concatenate([[0.0], times[times < tau], [tau]])
    levels = np.concatenate([[1.0], surv[times < tau]])
    return float(np.sum(np.diff(knots) * levels))


def percentile_ci(reps: np.ndarray, conf_level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile interval (quantile type 7) and bootstrap SE per column, over the finite replicates; also the
    number of finite replicates per column."""
    a = (1.0 - conf_level) / 2.0
    lower = np.full(reps.shape[1], np.nan)
    upper = np.full(reps.shape[1], np.nan)
    n_ok = np.isfinite(reps).sum(axis=0)
    for j in np.flatnonzero(n_ok >= 2):
        col = reps[np.isfinite(reps[:, j]), j]
        lower[j], upper[j] = np.quantile(col, [a, 1.0 - a])
    return lower, upper, n_ok


# --------------------------------------------------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------------------------------------------------
@dataclass
class CCWResult:
    """Point estimates of one CCW analysis. ``stats``: name -> value (flat: S(t), RMST, differences, ratios, log HR
    per endpoint); ``curves``: (endpoint, strategy) -> (event times, S, last time); ``episodes``: (endpoint,
    strategy) -> :class:`Episodes` with the truncated weights; ``models``: (endpoint, strategy) ->
    :class:`DeviationModel`; ``cuts``: truncation points."""

    stats: dict[str, float]
    curves: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, float]]
    episodes: dict[tuple[str, str], Episodes]
    models: dict[tuple[str, str], DeviationModel]
    cuts: dict[tuple[str, str], tuple[float, float]]


def _time_key(t: float) -> str:
    return f"{t:g}".replace(".", "p")


def ccw_estimate(data: CCWInput, design: CCWDesign, weighted: bool = True, keep_details: bool = True,
                 start: dict[tuple[str, str], np.ndarray] | None = None,
                 models: dict[tuple[str, str], DeviationModel] | None = None) -> CCWResult:
    """The whole CCW analysis on ``data`` (module docstring, steps 2-6) for every endpoint.

    ``weighted=False`` gives the clone-censor analysis without weights (every weight 1), for comparison. ``start``:
    (endpoint, strategy) -> initial coefficients of that deviation model (e.g. the full-data fit, in the bootstrap;
    the :class:`CCWResult` ``models`` hold them). ``models``: deviation models already fitted on these same data
    with the same intervals, possible intervals and time model (the ``models`` of another :class:`CCWResult`), used
    instead of refitting: an analysis that differs only in truncation (a sensitivity analysis) reuses the main
    analysis' fits. Statistic
    names: ``{endpoint}_S{t}_{strategy}``, ``{endpoint}_Sdiff{t}`` (first strategy minus second),
    ``{endpoint}_Sratio{t}``, ``{endpoint}_rmst_{strategy}``, ``{endpoint}_rmst_diff``, ``{endpoint}_loghr``
    (first versus second strategy) and ``{endpoint}_grid{j}_{strategy}`` for the curve grid."""
    stats: dict[str, float] = {}
    curves, episodes, fitted, cuts = {}, {}, {}, {}
    s_names = data.strategies
    for e, ep in enumerate(data.endpoints):
        t, ev = data.time[:, e], data.event[:, e]
        cox_rows = []
        for s, st in enumerate(s_names):
            possible = design.possible[s]
            if weighted:
                if models is not None and (ep, st) in models:
                    model = models[(ep, st)]
                    if model.h.shape != (data.n, design.intervals.size):
                        raise ValueError(f"models[{(ep, st)!r}] was fitted on other data or intervals")
                else:
                    model = deviation_hazards(data.X, t, data.deviation[:, s], design.intervals, possible,
                                              design.time_model, None if start is None else start.get((ep, st)))
                factors = ipc_factors(model, possible, design.stabilize)
            else:
                model = None
                factors = np.ones((data.n, design.intervals.size))
            epi = clone_episodes(t, ev, data.deviation[:, s], factors, design.intervals, possible)
            w, cut = truncate_weights(epi.weight, design.truncate if weighted else None)
            epi = Episodes(epi.unit, epi.segment, epi.start, epi.stop, epi.event, w, epi.clone_time,
                           epi.clone_event, epi.censored, epi.change_points)
            times, surv, _, _ = km_counting(epi.start, epi.stop, epi.event, epi.weight)
            last = float(epi.stop.max()) if epi.stop.size else 0.0
            for tt in design.times:
                stats[f"{ep}_S{_time_key(tt)}_{st}"] = float(step_at(times, surv, [tt], last)[0])
            if design.tau is not None:
                stats[f"{ep}_rmst_{st}"] = rmst_step(times, surv, float(design.tau), last)
            for j, v in enumerate(step_at(times, surv, design.grid, last)):
                stats[f"{ep}_grid{j}_{st}"] = float(v)
            cox_rows.append(epi)
            if keep_details:
                curves[(ep, st)] = (times, surv, last)
                episodes[(ep, st)] = epi
                cuts[(ep, st)] = cut
            if model is not None:
                fitted[(ep, st)] = model
        a, b = s_names[0], s_names[1]
        for tt in design.times:
            k = _time_key(tt)
            sa, sb = stats[f"{ep}_S{k}_{a}"], stats[f"{ep}_S{k}_{b}"]
            stats[f"{ep}_Sdiff{k}"] = sa - sb
            stats[f"{ep}_Sratio{k}"] = sa / sb if sb > 0 else float("nan")
        if design.tau is not None:
            stats[f"{ep}_rmst_diff"] = stats[f"{ep}_rmst_{a}"] - stats[f"{ep}_rmst_{b}"]
        if design.cox:
            stats[f"{ep}_loghr"] = _clone_cox(cox_rows[0], cox_rows[1])
    return CCWResult(stats, curves, episodes, fitted, cuts)


def _clone_cox(first: Episodes, second: Episodes) -> float:
    """log HR of the first versus the second strategy from the weighted Cox model on both clones' episodes."""
    start = np.concatenate([first.start, second.start])
    stop = np.concatenate([first.stop, second.stop])
    event = np.concatenate([first.event, second.event])
    w = np.concatenate([first.weight, second.weight])
    x = np.concatenate([np.ones(first.start.size), np.zeros(second.start.size)])
    try:
        return float(cox_counting(start, stop, event, x[:, None], w).coef[0])
    except (ValueError, np.linalg.LinAlgError):
        return float("nan")


# --------------------------------------------------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------------------------------------------------
def _limit_threads() -> None:
    """Worker initializer: one BLAS thread per worker process (the problems are small; threads only compete)."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass


def _run_chunk(statistic: Callable[[object, np.ndarray], np.ndarray], data: object, n: int,
               seeds: list[np.random.SeedSequence]) -> np.ndarray:
    out = []
    for ss in seeds:
        rng = np.random.default_rng(ss)
        out.append(np.asarray(statistic(data, rng.integers(0, n, n)), dtype=float))
    return np.vstack(out) if out else np.zeros((0, 0))


def bootstrap(statistic: Callable[[object, np.ndarray], np.ndarray], data: object, n: int, B: int, seed: int,
              workers: int = 1, progress: Callable[[int, int], None] | None = None,
              chunk_size: int = 10) -> np.ndarray:
    """Nonparametric bootstrap over ``n`` units: ``statistic(data, idx)`` (a picklable top-level function returning
    a 1-D array) on ``B`` resamples ``idx`` (n draws with replacement). Replicate b uses
    ``SeedSequence(seed).spawn(B)[b]``, so the (B, m) result does not depend on ``workers`` or ``chunk_size``.
    ``progress(done, B)`` is called after each chunk."""
    if B <= 0:
        return np.zeros((0, 0))
    children = np.random.SeedSequence(seed).spawn(B)
    chunks = [children[i:i + chunk_size] for i in range(0, B, chunk_size)]
    parts: list[np.ndarray | None] = [None] * len(chunks)
    done = 0
    if workers <= 1:
        for i, ch in enumerate(chunks):
            parts[i] = _run_chunk(statistic, data, n, ch)
            done += len(ch)
            if progress:
                progress(done, B)
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=_limit_threads) as pool:
            futures = {pool.submit(_run_chunk, statistic, data, n, ch): i for i, ch in enumerate(chunks)}
            from concurrent.futures import as_completed

            for fut in as_completed(futures):
                i = futures[fut]
                parts[i] = fut.result()
                done += len(chunks[i])
                if progress:
                    progress(done, B)
    return np.vstack(parts)
