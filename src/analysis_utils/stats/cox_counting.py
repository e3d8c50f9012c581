"""Cox model on counting-process data ``(start, stop]`` with case weights, as R's
``coxph(Surv(start, stop, event) ~ x, weights = w, ties = "efron")`` (survival::agreg.fit, agfit4.c) estimates the
coefficients: the point estimate behind the weighted Cox hazard ratio of a clone-censor-weight analysis, whose
confidence interval comes from the bootstrap (so no variance is computed here).

Risk set at an event time u: rows with ``start < u <= stop``. Efron's approximation with weights is R's: for d
tied deaths at u with total weight W_d, the k-th (k = 0..d-1) term uses the denominator
``S0(u) - k/d * sum_deaths w exp(eta)`` and is weighted by the mean death weight W_d / d (agfit4.c ``meanwt``);
Breslow uses k = 0 throughout. Newton-Raphson from beta = 0 with step halving when the log partial likelihood
drops, stopping when ``|1 - loglik_old / loglik_new| <= 1e-9`` (coxph.control eps), at most 20 iterations.
Validated against lifelines' ``CoxTimeVaryingFitter`` (Efron) in tests/test_stats_ccw.py.
Rules: docs/methods/target-trial.md, docs/methods/survival.md (Cox model).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["CountingCoxFit", "cox_counting"]


@dataclass(frozen=True)
class CountingCoxFit:
    coef: np.ndarray
    loglik: float
    loglik_null: float
    iterations: int
    converged: bool

    @property
    def hr(self) -> np.ndarray:
        return np.exp(self.coef)


def _suffix_at(keys_sorted: np.ndarray, values_sorted: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Sum of values over rows with key >= u, for each u (keys ascending, values aligned, any trailing shape)."""
    suffix = np.concatenate([np.cumsum(values_sorted[::-1], axis=0)[::-1],
                             np.zeros((1,) + values_sorted.shape[1:])], axis=0)
    return suffix[np.searchsorted(keys_sorted, u, side="left")]


def _terms(beta: np.ndarray, d: dict, ties: str) -> tuple[float, np.ndarray, np.ndarray]:
    """Log partial likelihood, score and information at beta.

    A Newton step that overshoots (e.g. a covariate separating the events in a bootstrap sample) can make exp(eta)
    overflow and a risk-set sum 0: the log likelihood is then not finite and :func:`cox_counting` halves the step.
    Those are expected states, so numpy's warnings are silenced here (they reached notebook 03's output with the
    package's absolute path)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _terms_unchecked(beta, d, ties)


def _terms_unchecked(beta: np.ndarray, d: dict, ties: str) -> tuple[float, np.ndarray, np.ndarray]:
    X, w = d["X"], d["w"]
    eta = X @ beta
    r = w * np.exp(eta)
    p = X.shape[1]
    f = np.concatenate([r[:, None], r[:, None] * X, (r[:, None, None] * X[:, :, None] * X[:, None, :]).reshape(-1, p * p)],
                       axis=1)
    at_risk = (_suffix_at(d["stop_sorted"], f[d["stop_order"]], d["u"])
               - _suffix_at(d["start_sorted"], f[d["start_order"]], d["u"]))
    s0, s1, s2 = at_risk[:, 0], at_risk[:, 1:1 + p], at_risk[:, 1 + p:].reshape(-1, p, p)
    dead = d["dead"]
    g = d["group"]
    m = d["u"].size
    e0 = np.bincount(g, weights=r[dead], minlength=m)
    e1 = np.stack([np.bincount(g, weights=(r * X[:, j])[dead], minlength=m) for j in range(p)], axis=1)
    rd, Xd = r[dead], X[dead]
    e2 = np.stack([np.bincount(g, weights=rd * Xd[:, j] * Xd[:, l], minlength=m)
                   for j in range(p) for l in range(p)], axis=1).reshape(m, p, p)
    frac = d["frac"] if ties == "efron" else np.zeros_like(d["frac"])
    mw = d["meanwt"][g]
    den = s0[g] - frac * e0[g]
    a = (s1[g] - frac[:, None] * e1[g]) / den[:, None]
    b = (s2[g] - frac[:, None, None] * e2[g]) / den[:, None, None]
    loglik = float(np.sum(w[dead] * eta[dead]) - np.sum(mw * np.log(den)))
    score = (w[dead][:, None] * X[dead]).sum(axis=0) - (mw[:, None] * a).sum(axis=0)
    info = (mw[:, None, None] * (b - a[:, :, None] * a[:, None, :])).sum(axis=0)
    return loglik, score, info


def cox_counting(start: np.ndarray, stop: np.ndarray, event: np.ndarray, X: np.ndarray,
                 weights: np.ndarray | None = None, ties: Literal["efron", "breslow"] = "efron",
                 max_iter: int = 20, eps: float = 1e-9) -> CountingCoxFit:
    """Coefficients of ``coxph(Surv(start, stop, event) ~ X, weights = weights, ties = ties)`` (module docstring).

    ``X`` is (n, p) without intercept. Rows need ``start < stop``. Raises ValueError without any event."""
    start = np.asarray(start, dtype=float)
    stop = np.asarray(stop, dtype=float)
    event = np.asarray(event).astype(bool)
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    n = stop.size
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if not (start.size == event.size == w.size == X.shape[0] == n):
        raise ValueError("start, stop, event, weights and X must have one row each")
    if np.any(start >= stop):
        raise ValueError("every row needs start < stop")
    if ties not in ("efron", "breslow"):
        raise ValueError(f"ties must be 'efron' or 'breslow' (got {ties!r})")
    dead = event & (w > 0)
    if not dead.any():
        raise ValueError("no event with positive weight: the Cox model is not estimable")
    u, group = np.unique(stop[dead], return_inverse=True)
    order = np.argsort(group, kind="stable")
    counts = np.bincount(group)
    rank = np.empty(group.size)
    rank[order] = np.arange(group.size) - np.repeat(np.cumsum(counts) - counts, counts)
    so, sto = np.argsort(stop, kind="stable"), np.argsort(start, kind="stable")
    d = {"X": X, "w": w, "u": u, "dead": np.flatnonzero(dead), "group": group, "frac": rank / counts[group],
         "meanwt": np.bincount(group, weights=w[dead]) / counts, "stop_order": so, "stop_sorted": stop[so],
         "start_order": sto, "start_sorted": start[sto]}
    beta = np.zeros(X.shape[1])
    loglik, score, info = _terms(beta, d, ties)
    loglik0 = loglik
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(info, score, rcond=None)[0]
        new = beta + step
        new_ll, new_score, new_info = _terms(new, d, ties)
        halvings = 0
        while (not np.isfinite(new_ll) or new_ll < loglik - 1e-12 * abs(loglik)) and halvings < 30:
            new = (new + beta) / 2.0
            new_ll, new_score, new_info = _terms(new, d, ties)
            halvings += 1
        done = abs(1.0 - loglik / new_ll) <= eps if new_ll != 0 else True
        beta, loglik, score, info = new, new_ll, new_score, new_info
        if done:
            converged = True
            break
    return CountingCoxFit(beta, loglik, loglik0, it, converged)
