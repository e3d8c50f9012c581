"""Infinitesimal-jackknife (robust, clustered) variance of a weighted Kaplan-Meier curve on (start, stop] data, of
its restricted mean, and of the difference of two such curves whose clusters overlap; vectorised.

R definition reproduced: ``survival::survfit(Surv(start, stop, event) ~ group, weights = w, id = id,
robust = TRUE)`` (survival 3.x, ``survfitKM`` and the C routine ``survfitkm``, type 1 = Kaplan-Meier survival,
read from github.com/therneau/survival): with ``robust = TRUE`` the ``std.err`` of the curve is the standard error of
S(t) itself (not of log S), sqrt(sum over clusters c of U_c(t)^2), where U_c(t) is the sum over the rows r of
cluster c of w_r dS(t)/dw_r (the "influence" matrix that ``survfit(..., influence = TRUE)`` returns per curve).
The C routine builds it by the recursion, at each event time u_j with weighted number at risk Y_j, weighted events
d_j and h_j = d_j / Y_j,

    U_c(u_j) = U_c(u_{j-1}) (1 - h_j) + S(u_{j-1}) [Y_c(u_j) h_j - dN_c(u_j)] / Y_j,

Y_c and dN_c being the weight of cluster c's rows at risk (start < u <= stop) and dying at u_j. Solved, for a row r,

    w_r dS(t)/dw_r = S(t) w_r [G(min(stop_r, t)) - G(start_r) - event_r 1(stop_r <= t) / (Y - d)(stop_r)],

with G(t) = sum over event times u_j <= t of d_j / (Y_j (Y_j - d_j)) (the Greenwood sum; the bracket is 0 while
t <= start_r). Once S reaches 0 every influence is 0 (as in R). For a single observation per cluster, unit weights
and no delayed entry this variance equals Greenwood's (survival's own validation, tests/book6.R).

- :func:`km_influence`: S(t) at given times, the influence U_c(t) per cluster (clusters coded 0..C-1, so that the
  curves of two groups share one coding), and optionally the RMST up to tau (area under the step function, as
  ``survRM2::rmst2``'s point estimate) with its influence, the integral of U_c(t) from 0 to tau (the IJ of a linear
  functional of S; the same definition as the IJ variance of ``stats.rmst.rmst`` with weights).
- :func:`ij_difference`: the standard errors of S_1(t) - S_2(t) and RMST_1 - RMST_2 from the clustered
  influences of the two curves, sqrt(sum_c (U_1c - U_2c)^2): the IJ variance of the difference, in which a cluster
  contributing rows to both curves (e.g. both clones of a unit in a clone-censor design) counts once. R's
  ``survfit`` returns each curve's influence (``influence = TRUE``) but not this covariance; it is the same
  definition applied to the difference.

The weights are treated as fixed (known). When they are estimated (inverse probability of censoring or treatment
weights from fitted models) the variance ignores that estimation; for inverse probability weights that ignoring is
usually conservative (the estimated weights are more efficient than the true ones: Robins, Rotnitzky & Zhao 1994;
Hernán, Brumback & Robins 2000 for the robust variance of weighted estimators), though not guaranteed to be.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from analysis_utils.stats.ccw import km_counting

__all__ = ["KMInfluence", "km_influence", "ij_difference", "clone_influences"]


@dataclass(frozen=True)
class KMInfluence:
    """One weighted KM curve: ``surv`` (S at ``times``; NaN beyond ``last``), ``influence`` (clusters x times; 0
    where S is NaN), ``se`` (robust standard error of S at ``times``), ``rmst`` and ``rmst_influence`` (clusters,)
    when a tau was given (NaN / None otherwise; NaN when tau is beyond ``last``)."""

    times: np.ndarray
    surv: np.ndarray
    influence: np.ndarray
    se: np.ndarray
    last: float
    tau: float | None = None
    rmst: float = float("nan")
    rmst_influence: np.ndarray | None = None

    @property
    def rmst_se(self) -> float:
        if self.rmst_influence is None or not np.isfinite(self.rmst):
            return float("nan")
        return float(np.sqrt(np.sum(self.rmst_influence**2)))


def km_influence(start: np.ndarray, stop: np.ndarray, event: np.ndarray, weight: np.ndarray,
                 cluster: np.ndarray, n_clusters: int, times: Sequence[float] | np.ndarray,
                 tau: float | None = None) -> KMInfluence:
    """Weighted KM of (start, stop] rows with its clustered IJ influence (module docstring).

    ``cluster``: integer code 0..n_clusters-1 of each row's cluster (R's ``id``); ``times``: where S(t) and its
    influence are wanted (S = NaN beyond the last stop time, as ``summary(fit, times, extend = FALSE)``);
    ``tau``: the RMST horizon (None: no RMST)."""
    start, stop, event, weight = (np.asarray(a, dtype=float) for a in (start, stop, event, weight))
    cluster = np.asarray(cluster, dtype=np.int64)
    times = np.asarray(times, dtype=float)
    if not (start.shape == stop.shape == event.shape == weight.shape == cluster.shape):
        raise ValueError("start, stop, event, weight and cluster must have the same length")
    if np.any(stop <= start):
        raise ValueError("every row needs start < stop")
    if np.any(weight < 0) or not np.all(np.isfinite(weight)):
        raise ValueError("weights must be finite and >= 0")
    if cluster.size and (cluster.min() < 0 or cluster.max() >= n_clusters):
        raise ValueError("cluster codes must lie in 0..n_clusters-1")
    # event times u, S there, weighted number at risk Y (start < u <= stop) and events d: stats.ccw's weighted KM
    u, s_at_u, y, d = km_counting(start, stop, event, weight)
    left = y - d
    left = np.where(left <= 1e-12 * y, 0.0, left)                 # everyone at risk dies: S reaches 0
    with np.errstate(divide="ignore", invalid="ignore"):
        # Greenwood increment and 1/(Y - d); 0 at the time S reaches 0 (from then on every influence is 0)
        g = np.where(left > 0, d / (y * left), 0.0)
        inv_left = np.where(left > 0, 1.0 / left, 0.0)
    big_g = np.concatenate([[0.0], np.cumsum(g)])   # G after 0, 1, ..., m event times

    def G(t: np.ndarray) -> np.ndarray:
        return big_g[np.searchsorted(u, t, side="right")]

    def S(t: np.ndarray) -> np.ndarray:
        i = np.searchsorted(u, t, side="right")
        return np.concatenate([[1.0], s_at_u])[i]

    last = float(stop.max()) if stop.size else 0.0
    g_start = G(start)
    is_event = (event > 0) & (weight > 0)
    # 1 / (Y - d) at the row's own stop time, for its event term
    k_stop = np.searchsorted(u, stop, side="left")
    ev_term = np.where(is_event, inv_left[np.minimum(k_stop, max(u.size - 1, 0))] if u.size else 0.0, 0.0)

    surv = np.where(times > last, np.nan, S(times))
    phi = weight[:, None] * (G(np.maximum(np.minimum(stop[:, None], times[None, :]), start[:, None])) - g_start[:, None]
                             - ev_term[:, None] * (stop[:, None] <= times[None, :]))
    infl = np.zeros((n_clusters, times.size))
    for j in range(times.size):
        infl[:, j] = np.bincount(cluster, weights=phi[:, j], minlength=n_clusters)
    infl *= np.nan_to_num(surv)[None, :]
    se = np.where(np.isnan(surv), np.nan, np.sqrt(np.sum(infl**2, axis=0)))
    if tau is None:
        return KMInfluence(times, surv, infl, se, last)
    tau = float(tau)
    if tau > last:
        return KMInfluence(times, surv, infl, se, last, tau, float("nan"), None)
    # steps of the curve on [0, tau): knots x_k (0, then event times < tau), level S_k, area L_k, G_k after x_k
    inside = u < tau
    x = np.concatenate([[0.0], u[inside]])
    level = np.concatenate([[1.0], s_at_u[inside]])
    area = np.diff(np.concatenate([x, [tau]])) * level
    gk = np.concatenate([[0.0], big_g[1:][inside]])
    cum_l = np.concatenate([[0.0], np.cumsum(area)])            # area of steps 0..k-1
    cum_lg = np.concatenate([[0.0], np.cumsum(area * gk)])
    total = cum_l[-1]
    a = np.searchsorted(x, start, side="right")                 # first step with x_k > start
    b = np.searchsorted(x, stop, side="right")                  # first step with x_k > stop
    c = np.searchsorted(x, stop, side="left")                   # first step with x_k >= stop
    g_stop = G(stop)
    # integral over [0, tau) of the bracket: steps with start < x_k <= stop carry G_k - G(start), later steps
    # G(stop) - G(start); the event term counts on steps with x_k >= stop
    b_ = np.maximum(a, b)
    at_risk_part = (cum_lg[b_] - cum_lg[a]) - g_start * (cum_l[b_] - cum_l[a])
    after_part = (g_stop - g_start) * (total - cum_l[b])
    event_part = ev_term * (total - cum_l[c])
    rmst_row = weight * (at_risk_part + after_part - event_part)
    rmst_infl = np.bincount(cluster, weights=rmst_row, minlength=n_clusters)
    return KMInfluence(times, surv, infl, se, last, tau, float(total), rmst_infl)


def ij_difference(first: KMInfluence, second: KMInfluence) -> tuple[np.ndarray, float]:
    """Robust standard errors of S_first(t) - S_second(t) at the common ``times`` and of RMST_first -
    RMST_second (NaN where either is not estimable): sqrt(sum over clusters of (U_first - U_second)^2), both curves
    coded on the same clusters."""
    if first.influence.shape != second.influence.shape or not np.array_equal(first.times, second.times):
        raise ValueError("the two curves need the same times and the same cluster coding")
    se = np.sqrt(np.sum((first.influence - second.influence) ** 2, axis=0))
    se = np.where(np.isnan(first.surv) | np.isnan(second.surv), np.nan, se)
    if first.rmst_influence is None or second.rmst_influence is None:
        return se, float("nan")
    return se, float(np.sqrt(np.sum((first.rmst_influence - second.rmst_influence) ** 2)))


def clone_influences(result, endpoint: str, strategies: Sequence[str], n_units: int, times: Sequence[float],
                     tau: float | None) -> tuple[KMInfluence, ...]:
    """:func:`km_influence` of each strategy's weighted KM curve of a clone-censor-weight fit
    (``stats.ccw.ccw_estimate(..., keep_details=True)``: its episodes carry the unit index as ``unit``), all coded on
    the same ``n_units`` clusters, so that :func:`ij_difference` of two of them counts both clones of a unit once."""
    t = np.asarray(times, dtype=float)
    return tuple(km_influence(e.start, e.stop, e.event, e.weight, e.unit, n_units, t, tau)
                 for e in (result.episodes[(endpoint, st)] for st in strategies))
