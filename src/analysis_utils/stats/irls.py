"""Logistic regression by iteratively reweighted least squares on numpy arrays, as R's ``glm.fit`` with
``family = binomial(link = "logit")`` computes it, for the many small pooled-logistic fits of a clone-censor-weight
analysis and its bootstrap (statsmodels' ``GLM`` gives the same estimates but costs ~20 times more per fit).

What is reproduced from R (stats::glm.fit, stats::binomial, src/library/stats/src/family.c):
- start: ``mustart = (w y + 0.5) / (w + 1)`` (binomial()$initialize), ``eta = logit(mustart)``;
- link: ``linkinv`` clamps eta to [-30, 30] (family.c THRESH/MTHRESH); ``mu.eta`` is at least DBL_EPSILON;
- each iteration solves the weighted least-squares problem with working response ``z = eta + (y - mu)/mu.eta``
  and working weights ``w mu.eta^2 / (mu (1 - mu))``; convergence when ``|dev - dev_old| / (|dev| + 0.1) <
  epsilon`` (default 1e-8), at most ``maxit`` (25) iterations; a non-finite deviance halves the step;
- aliased (collinear or constant-zero) columns get an NA coefficient (R's pivoting QR keeps the earlier of two
  collinear columns; here columns are tested in order with the relative tolerance 1e-7 of ``qr()``) and play no
  part in the fitted values (``predict`` ignores NA coefficients).
Separation is not an error: as in R the coefficients run to large values, the fitted probabilities reach the clamp
(about 1e-13) and the fit stops on the deviance criterion; ``converged`` and ``separation`` report it.

:func:`logit_irls_grid` fits the same model to person-interval data whose design row is ``[T_k, X_i]`` (a time
part per interval k and a covariate part per unit i: the pooled logistic design) without forming the stacked matrix:
the blocks of X'WX and X'Wz are assembled from n x K matrices of working weights, which costs about n p^2 instead of
rows x (p + q)^2 per iteration; aliasing is then judged on the Gram matrix (sequential Cholesky, same tolerance).

Rules: docs/methods/target-trial.md (deviation models), docs/methods/binary-outcomes.md (logistic regression).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["LogitFit", "logit_irls", "logit_irls_grid", "expit", "aliased_columns", "aliased_from_gram"]

_THRESH = 30.0
_EPS = float(np.finfo(float).eps)


def expit(eta: np.ndarray) -> np.ndarray:
    """Inverse logit with R's clamp of eta to [-30, 30] (binomial()$linkinv)."""
    e = np.exp(np.clip(eta, -_THRESH, _THRESH))
    return e / (1.0 + e)


def aliased_columns(X: np.ndarray, tol: float = 1e-7) -> np.ndarray:
    """Boolean mask of the columns R's pivoting QR would alias: tested in order, a column whose component orthogonal
    to the earlier kept columns has a norm below ``tol`` times its own norm (an all-zero column included)."""
    n, p = X.shape
    if p == 0:
        return np.zeros(0, dtype=bool)
    norms = np.linalg.norm(X, axis=0)
    if n == 0:
        return np.ones(p, dtype=bool)
    # |R_jj| of a Householder QR (no pivoting) is the norm of column j orthogonal to all earlier columns
    r = np.linalg.qr(X, mode="r")
    diag = np.zeros(p)
    k = min(n, p)
    diag[:k] = np.abs(np.diag(r)[:k])
    return (norms == 0.0) | (diag < tol * norms)


@dataclass(frozen=True)
class LogitFit:
    """A fitted logistic model: ``coef`` (NaN where aliased), deviance, iterations, convergence flags."""

    coef: np.ndarray
    deviance: float
    iterations: int
    converged: bool
    separation: bool          # some fitted probability reached the clamp (R: "fitted probabilities 0 or 1")
    aliased: np.ndarray

    def linear_predictor(self, X: np.ndarray) -> np.ndarray:
        """X beta over the non-aliased columns (R ``predict(type = "link")``)."""
        keep = ~self.aliased
        return X[:, keep] @ self.coef[keep]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Fitted probabilities (R ``predict(type = "response")``)."""
        return expit(self.linear_predictor(X))


def _deviance(y: np.ndarray, mu: np.ndarray, w: np.ndarray) -> float:
    """Binomial deviance for 0/1 responses: -2 sum w [y log mu + (1 - y) log(1 - mu)] (binomial()$dev.resids)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = np.log(np.where(y > 0, mu, 1.0 - mu))
    return float(-2.0 * np.sum(np.where(w > 0, w * ll, 0.0)))


def _solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(A, b)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(A, b, rcond=None)[0]


def _iterate(y: np.ndarray, w: np.ndarray, beta: np.ndarray, eta: np.ndarray,
             wls: Callable[[np.ndarray, np.ndarray], np.ndarray], lin: Callable[[np.ndarray], np.ndarray],
             maxit: int, epsilon: float) -> tuple[np.ndarray, np.ndarray, float, int, bool]:
    """glm.fit's loop for the binomial logit: working response and weights from (eta, mu), ``wls(ww, z)`` -> the
    weighted least-squares coefficients, ``lin(beta)`` -> eta; step halving on a non-finite deviance; convergence on
    the relative change of the deviance. ``y``, ``w`` and ``eta`` share one shape (vector or units x intervals).
    Returns (beta, mu, deviance, iterations, converged)."""
    mu = expit(eta)
    dev_old = _deviance(y, mu, w)
    converged = False
    it = 0
    for it in range(1, maxit + 1):
        # binomial()$mu.eta: e^eta / (1 + e^eta)^2 = mu (1 - mu), at least DBL_EPSILON, DBL_EPSILON beyond the clamp
        me = np.where(np.abs(eta) > _THRESH, _EPS, np.maximum(mu * (1.0 - mu), _EPS))
        z = eta + (y - mu) / me
        ww = w * me**2 / np.maximum(mu * (1.0 - mu), _EPS * _EPS)
        beta_new = wls(ww, z)
        eta_new = lin(beta_new)
        mu_new = expit(eta_new)
        dev = _deviance(y, mu_new, w)
        halvings = 0
        while not np.isfinite(dev) and halvings < 30:  # glm.fit: step halving on a non-finite deviance
            beta_new = (beta_new + beta) / 2.0
            eta_new = lin(beta_new)
            mu_new = expit(eta_new)
            dev = _deviance(y, mu_new, w)
            halvings += 1
        beta, eta, mu = beta_new, eta_new, mu_new
        if abs(dev - dev_old) / (abs(dev) + 0.1) < epsilon:
            converged = True
            dev_old = dev
            break
        dev_old = dev
    return beta, mu, float(dev_old), it, converged


def _separation(mu: np.ndarray) -> bool:
    """glm.fit's warning criterion: a fitted probability within 10 machine epsilons of 0 or 1."""
    return bool(np.any((mu < 10 * _EPS) | (mu > 1 - 10 * _EPS)))


def logit_irls(X: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None, maxit: int = 25,
               epsilon: float = 1e-8, check_aliasing: bool = True) -> LogitFit:
    """``glm.fit(X, y, weights, family = binomial())`` for a 0/1 response; ``X`` includes the intercept column.

    Returns a :class:`LogitFit`. Aliased columns (``aliased_columns``) are dropped before fitting and reported
    with NaN coefficients; pass ``check_aliasing=False`` when the caller knows the design has full rank.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = X.shape
    if y.shape != (n,):
        raise ValueError(f"y has shape {y.shape}, expected ({n},)")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("y must be 0/1")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite, non-negative and one per row")
    aliased = aliased_columns(X) if check_aliasing else np.zeros(p, dtype=bool)
    Xk = X[:, ~aliased]
    coef = np.full(p, np.nan)
    if n == 0 or Xk.shape[1] == 0:
        return LogitFit(coef, 0.0, 0, True, False, aliased)
    mustart = (w * y + 0.5) / (w + 1.0)
    eta = np.log(mustart / (1.0 - mustart))
    good = w > 0
    Xg = Xk[good]

    def wls(ww: np.ndarray, z: np.ndarray) -> np.ndarray:
        Xw = Xg * ww[good, None]
        return _solve(Xg.T @ Xw, Xw.T @ z[good])

    beta, mu, dev, it, converged = _iterate(y, w, np.zeros(Xk.shape[1]), eta, wls, lambda b: Xk @ b, maxit, epsilon)
    coef[~aliased] = beta
    return LogitFit(coef, dev, it, converged, _separation(mu[good]), aliased)


def aliased_from_gram(G: np.ndarray, tol: float = 1e-7) -> np.ndarray:
    """Aliased columns judged on the Gram matrix D'D of a design D, in column order: column j is aliased when its
    squared residual on the earlier kept columns (sequential Cholesky) is below ``tol**2`` times its squared norm,
    i.e. the criterion of :func:`aliased_columns` (accurate to about sqrt(machine epsilon) relative, well inside the
    tolerance)."""
    from scipy.linalg import solve_triangular

    p = G.shape[0]
    aliased = np.zeros(p, dtype=bool)
    d = np.diag(G).astype(float)
    nz = d > 0
    if nz.any():  # fast path: Cholesky of the correlation-scaled Gram of the non-zero columns; L_jj^2 = residual share
        s = 1.0 / np.sqrt(d[nz])
        try:
            L0 = np.linalg.cholesky(G[np.ix_(nz, nz)] * s[:, None] * s[None, :])
            if np.all(np.diag(L0) >= tol):
                return ~nz
        except np.linalg.LinAlgError:
            pass
    kept: list[int] = []
    L = np.zeros((0, 0))
    for j in range(p):
        gjj = float(G[j, j])
        if gjj <= 0.0:
            aliased[j] = True
            continue
        if kept:
            v = solve_triangular(L, G[kept, j], lower=True)
            r = gjj - float(v @ v)
        else:
            v, r = np.zeros(0), gjj
        if r < tol**2 * gjj:
            aliased[j] = True
            continue
        m = len(kept)
        L_new = np.zeros((m + 1, m + 1))
        L_new[:m, :m] = L
        L_new[m, :m] = v
        L_new[m, m] = np.sqrt(r)
        L = L_new
        kept.append(j)
    return aliased


def _grid_gram(T: np.ndarray, X: np.ndarray, W: np.ndarray) -> np.ndarray:
    """D' diag(w) D for the stacked design D = {[T_k, X_i]} with row weights W[i, k] (0 = no row)."""
    return _gram_blocks(T, X, W.sum(axis=0), W.sum(axis=1), W @ T)


def _gram_blocks(T: np.ndarray, X: np.ndarray, col: np.ndarray, row: np.ndarray, WT: np.ndarray) -> np.ndarray:
    """The blocks of D' diag(w) D from the interval totals ``col`` (K), the unit totals ``row`` (n) and W T (n, q)."""
    q, p = T.shape[1], X.shape[1]
    out = np.empty((q + p, q + p))
    out[:q, :q] = T.T @ (T * col[:, None])
    if p:
        xt = X.T @ WT
        out[q:, :q] = xt
        out[:q, q:] = xt.T
        out[q:, q:] = X.T @ (X * row[:, None])
    return out


def logit_irls_grid(T: np.ndarray, X: np.ndarray, at_risk: np.ndarray, y: np.ndarray, maxit: int = 25,
                    epsilon: float = 1e-8, start: np.ndarray | None = None) -> LogitFit:
    """:func:`logit_irls` on the stacked rows ``[T[k], X[i]]`` for every (i, k) with ``at_risk[i, k]``, response
    ``y[i, k]`` (0/1), prior weights 1; the same estimates, deviance, iterations and flags as fitting the stacked
    matrix (``glm.fit``), computed blockwise. ``T`` (K, q) holds the intercept and time columns, ``X`` (n, p) the
    covariates; coefficients are ordered ``[time part, covariate part]``. ``start`` (glm's ``start=``): initial
    coefficients (NaN read as 0), e.g. the full-data estimates when refitting in bootstrap samples; the fit then
    stops on the same deviance criterion from there."""
    T = np.asarray(T, dtype=float)
    X = np.asarray(X, dtype=float)
    R = np.asarray(at_risk, dtype=bool)
    Y = np.where(R, np.asarray(y, dtype=float), 0.0)
    K, q = T.shape
    n, p = X.shape
    if R.shape != (n, K) or Y.shape != (n, K):
        raise ValueError("at_risk and y must be (units, intervals)")
    Rf = R.astype(float)
    coef = np.full(q + p, np.nan)
    if not R.any():
        return LogitFit(coef, 0.0, 0, True, False, np.ones(q + p, dtype=bool))
    aliased = aliased_from_gram(_grid_gram(T, X, Rf))
    keep_t, keep_x = ~aliased[:q], ~aliased[q:]
    Tk, Xk = T[:, keep_t], X[:, keep_x]
    qt = int(keep_t.sum())
    unit, k = np.nonzero(R)  # the person-interval rows, long form
    yr = Y[unit, k]
    W = np.zeros((n, K))

    def lin(beta: np.ndarray) -> np.ndarray:
        return (Tk @ beta[:qt])[k] + (Xk @ beta[qt:])[unit]

    def wls(ww: np.ndarray, z: np.ndarray) -> np.ndarray:
        W[unit, k] = ww
        wz = ww * z
        A = _gram_blocks(Tk, Xk, np.bincount(k, ww, K), np.bincount(unit, ww, n), W @ Tk)
        return _solve(A, np.concatenate([Tk.T @ np.bincount(k, wz, K), Xk.T @ np.bincount(unit, wz, n)]))

    beta = np.zeros(Tk.shape[1] + Xk.shape[1])
    if start is not None:
        st = np.nan_to_num(np.asarray(start, dtype=float))
        if st.shape != (q + p,):
            raise ValueError(f"start must have {q + p} coefficients")
        beta = st[~aliased]
        eta = lin(beta)
    else:
        eta = np.where(yr > 0, np.log(3.0), -np.log(3.0))  # mustart = (y + 0.5) / 2 with unit weights
    beta, mu, dev, it, converged = _iterate(yr, np.ones(yr.size), beta, eta, wls, lin, maxit, epsilon)
    coef[~aliased] = beta
    return LogitFit(coef, dev, it, converged, _separation(mu), aliased)
