"""Random-effects meta-analysis of k estimates with known sampling variances, as R ``metafor::rma.uni(yi, vi,
method = "REML")`` (metafor's default) or ``method = "DL"`` (DerSimonian & Laird 1986) computes it, intercept-only
model, Wald-type (z) tests and intervals (metafor's default ``test = "z"``). Method page: docs/methods/multicentre.md.

Definitions reproduced (metafor 3.8, ``rma.uni``, ``predict.rma``; Viechtbauer 2005, 2010):
- Fixed-effect weights w_i = 1 / v_i; Cochran's Q = sum w_i (y_i - mu_FE)^2 with mu_FE = sum w_i y_i / sum w_i,
  p from chi-square on k - 1 df (metafor's ``QE``, ``QEp``).
- tau^2, DL: max(0, (Q - (k - 1)) / (sum w - sum w^2 / sum w)).
- tau^2, REML: Fisher scoring as metafor (step tau^2 += (y'PPy - tr P) / tr(PP), P = W - W 1 (1'W1)^-1 1'W,
  W = diag(1 / (v_i + tau^2)), step halved while it would go below 0), iterated to convergence and truncated at 0;
  metafor stops at |change| < 1e-5, this iterates to 1e-10, so the two agree to metafor's printed digits.
- Summary mu = sum w*_i y_i / sum w*_i with w*_i = 1 / (v_i + tau^2), SE = sqrt(1 / sum w*), z CI and p.
- I^2 (metafor's definition, Higgins & Thompson 2002 generalised to any tau^2 estimator):
  100 tau^2 / (tau^2 + v~), with the "typical" sampling variance v~ = (k - 1) sum w / ((sum w)^2 - sum w^2);
  H^2 = (tau^2 + v~) / v~. With DL this equals 100 max(0, (Q - (k - 1)) / Q).
- Prediction interval (``predict.rma``): mu +/- z sqrt(SE^2 + tau^2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as sps

__all__ = ["MetaResult", "random_effects", "METHODS"]

METHODS = ("REML", "DL")
REML_TOL = 1e-10
REML_MAXIT = 1000


@dataclass(frozen=True)
class MetaResult:
    """``random_effects`` output (names as metafor's ``rma`` object: beta, se, tau2, I2, H2, QE, QEp)."""

    method: str
    k: int
    estimate: float
    se: float
    z: float
    p: float
    conf_low: float
    conf_high: float
    tau2: float
    i2: float
    h2: float
    q: float
    q_df: int
    q_p: float
    pi_low: float
    pi_high: float
    iterations: int
    conf_level: float

    def to_dict(self) -> dict[str, float | int | str]:
        return dict(self.__dict__)


def _tau2_dl(y: np.ndarray, v: np.ndarray) -> float:
    w = 1 / v
    mu = (w * y).sum() / w.sum()
    q = (w * (y - mu) ** 2).sum()
    return max(0.0, (q - (y.size - 1)) / (w.sum() - (w ** 2).sum() / w.sum()))


def _tau2_reml(y: np.ndarray, v: np.ndarray) -> tuple[float, int]:
    """REML tau^2 by metafor's Fisher scoring for the intercept-only model (start: the DL estimate)."""
    tau2 = _tau2_dl(y, v)
    for it in range(1, REML_MAXIT + 1):
        w = 1 / (v + tau2)
        sw = w.sum()
        resid = y - (w * y).sum() / sw
        py = w * resid                                     # P y
        tr_p = sw - (w ** 2).sum() / sw                    # tr(P)
        tr_pp = (w ** 2).sum() - 2 * (w ** 3).sum() / sw + ((w ** 2).sum() / sw) ** 2  # tr(P P)
        adj = ((py ** 2).sum() - tr_p) / tr_pp
        while tau2 + adj < 0:
            adj /= 2
        tau2 += adj
        if abs(adj) < REML_TOL:
            return max(0.0, tau2), it
    raise ValueError(f"REML estimate of tau^2 did not converge in {REML_MAXIT} iterations")


def random_effects(estimates: Sequence[float], variances: Sequence[float], method: str = "REML",
                   conf_level: float = 0.95) -> MetaResult:
    """Random-effects summary of ``estimates`` (e.g. log hazard ratios) with sampling ``variances`` (SE^2),
    metafor ``rma(yi, vi, method = method)``: tau^2 (REML or DL), the summary with z CI and p, Cochran's Q,
    metafor's I^2 and H^2, and the prediction interval. Needs k >= 2 finite estimates with positive variances
    (ValueError otherwise)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    y, v = np.asarray(estimates, dtype=float), np.asarray(variances, dtype=float)
    if y.shape != v.shape or y.ndim != 1:
        raise ValueError("estimates and variances must be 1-D and of the same length")
    if not (np.isfinite(y).all() and np.isfinite(v).all()) or (v <= 0).any():
        raise ValueError("estimates must be finite and variances finite and positive")
    k = y.size
    if k < 2:
        raise ValueError(f"a random-effects summary needs at least 2 estimates, got {k}")
    w = 1 / v
    mu_fe = (w * y).sum() / w.sum()
    q = float((w * (y - mu_fe) ** 2).sum())
    if method == "DL":
        tau2, iterations = _tau2_dl(y, v), 0
    else:
        tau2, iterations = _tau2_reml(y, v)
    ws = 1 / (v + tau2)
    mu = float((ws * y).sum() / ws.sum())
    se = float(math.sqrt(1 / ws.sum()))
    zcrit = float(sps.norm.ppf(1 - (1 - conf_level) / 2))
    vt = (k - 1) * w.sum() / (w.sum() ** 2 - (w ** 2).sum())
    z = mu / se
    return MetaResult(method=method, k=k, estimate=mu, se=se, z=z, p=float(2 * sps.norm.sf(abs(z))),
                      conf_low=mu - zcrit * se, conf_high=mu + zcrit * se, tau2=float(tau2),
                      i2=float(100 * tau2 / (tau2 + vt)), h2=float((tau2 + vt) / vt), q=q, q_df=k - 1,
                      q_p=float(sps.chi2.sf(q, k - 1)), pi_low=mu - zcrit * math.sqrt(se ** 2 + tau2),
                      pi_high=mu + zcrit * math.sqrt(se ** 2 + tau2), iterations=iterations, conf_level=conf_level)
