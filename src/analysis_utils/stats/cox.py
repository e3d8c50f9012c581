"""Cox proportional-hazards model as R's ``coxph`` (survival 3.x), its concordance and a subgroup interaction test.

- ``cox_ph``: ``coxph(Surv(t, e) ~ x + strata(s), weights=, cluster=, ties=)``. Fitted by the Newton-Raphson of
  ``coxph.fit`` (R's own algorithm and stopping rule) for Breslow ties and for Efron ties with at most
  ``NR_MAX_COLUMNS`` (64) design columns; wider Efron designs by lifelines' CoxPHFitter (tightened convergence;
  the two agree to ~1e-7 in the coefficients; tests); lifelines also takes over when the Newton-Raphson fails to
  converge on an Efron model. The information matrix is gathered per row as one weighted crossproduct (no rows x p
  x p array), so a Newton-Raphson step costs O(n p^2) in BLAS: at ~900 rows and 26 columns a fit takes ~0.03 s
  against lifelines' ~0.6 s. The robust variance is R's: the crossproduct of the dfbeta residuals (weighted score residuals x
  naive variance) summed within ``cluster`` (or per observation), without any small-sample factor. lifelines' own
  sandwich agrees without tied event times but not with ties (its score residuals ignore ties), so it is not used.
  Categorical covariates get R's treatment contrasts: the first level (pandas Categorical order, or sorted values)
  is the reference unless ``reference`` names another (R ``relevel``).
- ``concordance_index``: Harrell's C as R ``concordance()`` reports it for a Cox fit.
- ``cox_interaction_p``: HR of a two-level treatment within subgroup levels and the likelihood-ratio test of
  treatment x subgroup (R ``anova(coxph(~ arm + sg), coxph(~ arm * sg))``).
The risk-set engine (``_cox_terms``, ``_score_residuals``) follows coxfit6.c / coxscore2.c; ``fit_cox`` exposes the
fitted pieces that ``stats.cox_zph`` (cox.zph) needs. Rules: docs/methods/survival.md.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis_utils.stats.survival_input import as_float, group_labels, is_integer_weights, survival_data

__all__ = ["cox_ph", "cox_coefficients", "concordance_index", "cox_interaction_p", "fit_cox", "CoxFit", "Ties"]

Ties = Literal["efron", "breslow"]
_COX_EPS = 1e-9  # coxph.control(eps): relative change in the log partial likelihood
_LIFELINES_FIT_OPTIONS = {"precision": 1e-12, "r_precision": 1e-14}  # lifelines' defaults stop ~1e-4 short of the MLE
NR_MAX_COLUMNS = 64  # Efron fits with more design columns go to lifelines


# --------------------------------------------------------------------------------------------------------------------
# design matrix, risk-set engine (R coxph.fit / coxscore2.c / zph1.c), fit
# --------------------------------------------------------------------------------------------------------------------
def _design_matrix(df: pd.DataFrame, covariates: Sequence[str],
                   reference: dict[str, object] | None = None) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Numeric design matrix; categorical columns become 0/1 columns named ``col[T.level]``.

    Reference level: ``reference[col]`` if given, else the first category (pandas Categorical order, or sorted
    values), as R's treatment contrasts of a factor. Missing values raise.
    """
    reference = reference or {}
    cols: dict[str, pd.Series] = {}
    terms: dict[str, list[str]] = {}
    for c in covariates:
        if c not in df.columns:
            raise ValueError(f"covariate column '{c}' is not in the data")
        x = df[c]
        if x.isna().any():
            raise ValueError(f"covariate '{c}' has {int(x.isna().sum())} missing values; impute or filter first "
                             "(R's coxph would silently drop those rows)")
        categorical = isinstance(x.dtype, pd.CategoricalDtype)
        if pd.api.types.is_bool_dtype(x) or (pd.api.types.is_numeric_dtype(x) and not categorical):
            cols[c] = x.astype(float)
            terms[c] = [c]
            continue
        levels = list(x.cat.categories) if categorical else sorted(x.unique().tolist(), key=str)
        ref = reference.get(c, levels[0])
        if ref not in levels:
            raise ValueError(f"reference level {ref!r} is not a value of covariate '{c}'")
        terms[c] = []
        for lev in levels:
            if lev != ref:
                name = f"{c}[T.{lev}]"
                cols[name] = (x == lev).astype(float)
                terms[c].append(name)
    X = pd.DataFrame(cols, index=df.index)
    for name in X.columns:
        if X[name].nunique() < 2:
            raise ValueError(f"covariate column '{name}' is constant; it cannot be estimated")
    return X, terms


@dataclass(frozen=True)
class _CoxData:
    """Data sorted by (stratum, time); ``order`` maps sorted rows back to input rows."""
    time: np.ndarray
    event: np.ndarray
    X: np.ndarray
    w: np.ndarray
    strata: np.ndarray
    order: np.ndarray
    block: np.ndarray        # tied (stratum, time) block of each sorted row
    block_start: np.ndarray  # first sorted row of each block
    next_stratum: np.ndarray  # first sorted row of the next stratum, per row

    def in_input_order(self, v: np.ndarray) -> np.ndarray:
        out = np.empty_like(v)
        out[self.order] = v
        return out


def _cox_data(X: np.ndarray, time: np.ndarray, event: np.ndarray, w: np.ndarray, strata: np.ndarray) -> _CoxData:
    order = np.lexsort((time, strata))
    t, s = time[order], strata[order]
    new_block = np.concatenate([[True], (t[1:] != t[:-1]) | (s[1:] != s[:-1])])
    block = np.cumsum(new_block) - 1
    new_stratum = np.concatenate([[True], s[1:] != s[:-1]])
    stratum_start = np.flatnonzero(new_stratum)
    stratum_end = np.append(stratum_start[1:], t.size)
    next_stratum = np.repeat(stratum_end, np.diff(np.append(stratum_start, t.size)))
    Xc = X[order] - X.mean(axis=0)  # centring as coxph does; every quantity below is shift-invariant
    return _CoxData(t, event[order], Xc, w[order], s, order, block, np.flatnonzero(new_block), next_stratum)


def _rcumsum(v: np.ndarray, next_stratum: np.ndarray) -> np.ndarray:
    """Sum over rows r' >= r of the same stratum (risk-set sums in the sorted data)."""
    cs = np.cumsum(v[::-1], axis=0)[::-1]
    cs = np.concatenate([cs, np.zeros((1,) + v.shape[1:])])
    return cs[:-1] - cs[next_stratum]


@dataclass(frozen=True)
class _CoxTerms:
    loglik: float
    U: np.ndarray
    I: np.ndarray
    dblocks: np.ndarray   # block ids with at least one death
    mbar: np.ndarray      # per death block: mean of the (Efron) weighted means, for Schoenfeld residuals
    haz: np.ndarray       # per death block: sum of hazard increments (at risk, not dying there)
    hm: np.ndarray        # ... times the weighted means
    haz1: np.ndarray      # per death block: sum of (1 - f) x hazard increments (dying there)
    hm1: np.ndarray
    uc: np.ndarray        # per death block: score contribution (x of deaths - weighted mean)
    data: _CoxData = field(repr=False)
    r: np.ndarray = field(repr=False)            # w exp(eta) per sorted row
    steps: tuple = field(repr=False)             # per Efron step: (death blocks in it, their weighted means)
    meanwt: np.ndarray = field(repr=False)       # per death block: death weight per step

    @cached_property
    def V(self) -> np.ndarray:
        """Per death block: information contribution, sum over its Efron steps of meanwt ((R2 - f D2) / den -
        mean mean') = haz R2 - (haz - haz1) D2 - sum meanwt mean mean' (R2: risk-set sum of r x x', D2: the same
        over the block's deaths). Only cox.zph needs it per block; the total is ``I``."""
        d, r = self.data, self.r
        xx = d.X[:, :, None] * d.X[:, None, :]
        R2 = _rcumsum(r[:, None, None] * xx, d.next_stratum)[d.block_start][self.dblocks]
        D2 = np.add.reduceat((r * d.event)[:, None, None] * xx, d.block_start)[self.dblocks]
        V = self.haz[:, None, None] * R2 - (self.haz - self.haz1)[:, None, None] * D2
        for j, mean in self.steps:
            V[j] -= self.meanwt[j][:, None, None] * mean[:, :, None] * mean[:, None, :]
        return V


def _cox_terms(d: _CoxData, beta: np.ndarray, ties: str) -> _CoxTerms:
    """Log partial likelihood, score, information and per-death-time pieces (R coxfit6 / coxscore2 / zph1).

    Efron: for d tied deaths, d steps with the tied deaths' risk down-weighted by f = 0..(d-1)/d and each step
    carrying the mean death weight; Breslow: one step with f = 0 and the total death weight. The information, the
    sum over death blocks b and their steps of meanwt ((R2_b - f D2_b) / den - mean mean'), is gathered per row:
    sum_b haz_b R2_b - (haz_b - haz1_b) D2_b = X' diag(r (H - event (haz - haz1)_own block)) X with H the hazard
    summed over the death blocks whose risk set holds the row, so no (rows x p x p) array is formed.
    """
    X, w, e = d.X, d.w, d.event
    eta = X @ beta
    with np.errstate(over="ignore"):  # a diverging coefficient (monotone likelihood) is flagged by the caller
        r = w * np.exp(eta)
    bs = d.block_start
    R0 = _rcumsum(r, d.next_stratum)[bs]
    R1 = _rcumsum(r[:, None] * X, d.next_stratum)[bs]
    re = r * e
    D0 = np.add.reduceat(re, bs)
    D1 = np.add.reduceat(re[:, None] * X, bs)
    nd = np.add.reduceat(e, bs)
    deadwt = np.add.reduceat(w * e, bs)
    xw = np.add.reduceat((w * e)[:, None] * X, bs)
    eta_w = np.add.reduceat(w * e * eta, bs)
    keep = np.flatnonzero(nd > 0)
    R0, R1, D0, D1 = R0[keep], R1[keep], D0[keep], D1[keep]
    nd, deadwt, xw = nd[keep], deadwt[keep], xw[keep]
    steps = nd if ties == "efron" else np.ones_like(nd)
    meanwt = deadwt / steps
    nb, p = keep.size, X.shape[1]
    loglik = float(eta_w.sum())
    mbar, hm, hm1, msum = (np.zeros((nb, p)) for _ in range(4))
    haz, haz1 = np.zeros(nb), np.zeros(nb)
    step_means = []
    outer = np.zeros((p, p))
    for m in range(int(steps.max()) if nb else 0):
        # step m of the Efron sum exists only in blocks with more than m tied deaths (after the first step a few)
        j = np.arange(nb) if m == 0 else np.flatnonzero(steps > m)
        f = m / steps[j] if ties == "efron" else np.zeros(j.size)
        den = R0[j] - f * D0[j]
        mean = (R1[j] - f[:, None] * D1[j]) / den[:, None]
        hz = meanwt[j] / den
        loglik -= float(np.sum(meanwt[j] * np.log(den)))
        haz[j] += hz
        hm[j] += hz[:, None] * mean
        haz1[j] += hz * (1 - f)
        hm1[j] += (hz * (1 - f))[:, None] * mean
        mbar[j] += (1.0 / steps[j])[:, None] * mean
        msum[j] += mean
        outer += (meanwt[j][:, None] * mean).T @ mean
        step_means.append((j, mean))
    uc = xw - meanwt[:, None] * msum
    nblocks = bs.size
    haz_all, own_all = np.zeros(nblocks), np.zeros(nblocks)
    haz_all[keep], own_all[keep] = haz, haz - haz1
    cum = np.cumsum(haz_all)
    block_stratum = d.strata[bs]
    first = np.concatenate([[True], block_stratum[1:] != block_stratum[:-1]])
    base = (cum - haz_all)[np.maximum.accumulate(np.where(first, np.arange(nblocks), 0))]
    a = r * ((cum - base)[d.block] - e * own_all[d.block])
    info = (X * a[:, None]).T @ X - outer
    return _CoxTerms(loglik, uc.sum(axis=0), info, keep, mbar, haz, hm, haz1, hm1, uc, d, r, tuple(step_means), meanwt)


def _score_residuals(d: _CoxData, beta: np.ndarray, terms: _CoxTerms) -> np.ndarray:
    """Score residuals per observation, input order (R residuals(type="score"), coxscore2.c), unweighted."""
    nblocks = d.block_start.size
    haz_all, hm_all = np.zeros(nblocks), np.zeros((nblocks, d.X.shape[1]))
    haz_all[terms.dblocks] = terms.haz
    hm_all[terms.dblocks] = terms.hm
    block_stratum = d.strata[d.block_start]
    first_block = np.concatenate([[True], block_stratum[1:] != block_stratum[:-1]])
    start = np.maximum.accumulate(np.where(first_block, np.arange(nblocks), 0))
    cum_h = np.cumsum(haz_all)
    cum_hm = np.cumsum(hm_all, axis=0)
    base_h = cum_h[start] - haz_all[start]
    base_hm = cum_hm[start] - hm_all[start]
    incl_h, incl_hm = cum_h - base_h, cum_hm - base_hm     # death blocks up to and including this one
    b = d.block
    ev = d.event > 0
    H = np.where(ev, incl_h[b] - haz_all[b], incl_h[b])
    HM = np.where(ev[:, None], incl_hm[b] - hm_all[b], incl_hm[b])
    score = np.exp(d.X @ beta)
    x = d.X
    resid = -score[:, None] * (x * H[:, None] - HM)
    pos = np.full(nblocks, -1)
    pos[terms.dblocks] = np.arange(terms.dblocks.size)
    rows = np.flatnonzero(ev)
    j = pos[b[rows]]
    resid[rows] += x[rows] - terms.mbar[j] - score[rows, None] * (x[rows] * terms.haz1[j, None] - terms.hm1[j])
    return d.in_input_order(resid)


def _newton_raphson(d: _CoxData, ties: str, max_iter: int = 20) -> tuple[np.ndarray, bool]:
    """coxph.fit's Newton-Raphson: start at 0, step-halving when the log-likelihood drops, stop when the relative
    change is <= 1e-9."""
    beta, converged, _, _ = _newton_raphson_terms(d, ties, max_iter)
    return beta, converged


def _newton_raphson_terms(d: _CoxData, ties: str,
                          max_iter: int = 20) -> tuple[np.ndarray, bool, _CoxTerms, _CoxTerms]:
    """``_newton_raphson`` with the terms at the estimate and at 0 (the null model), which the fit needs next."""
    beta = np.zeros(d.X.shape[1])
    cur = null = _cox_terms(d, beta, ties)
    for _ in range(max_iter):
        try:
            step = np.linalg.solve(cur.I, cur.U)
        except np.linalg.LinAlgError:
            return beta, False, cur, null
        new_beta = beta + step
        new = _cox_terms(d, new_beta, ties)
        halvings = 0
        while (not np.isfinite(new.loglik) or new.loglik < cur.loglik) and halvings < 30:
            new_beta = (beta + new_beta) / 2
            new = _cox_terms(d, new_beta, ties)
            halvings += 1
        converged = abs(1 - cur.loglik / new.loglik) <= _COX_EPS if new.loglik != 0 else abs(cur.loglik) <= _COX_EPS
        beta, cur = new_beta, new
        if converged:
            return beta, True, cur, null
    return beta, False, cur, null


def _fit_lifelines_efron(X: pd.DataFrame, t: np.ndarray, e: np.ndarray, w: np.ndarray,
                         strata: np.ndarray | None) -> np.ndarray:
    from lifelines import CoxPHFitter

    data = X.reset_index(drop=True).copy()
    data.columns = [f"x{i}" for i in range(X.shape[1])]
    data["_T"], data["_E"], data["_W"] = t, e, w
    kwargs: dict[str, object] = {"weights_col": "_W", "fit_options": _LIFELINES_FIT_OPTIONS}
    if strata is not None:
        data["_S"] = strata
        kwargs["strata"] = ["_S"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its non-integer-weights advice: the robust variance is computed here
        cph = CoxPHFitter().fit(data, "_T", "_E", **kwargs)
    return cph.params_.to_numpy()


@dataclass(frozen=True)
class CoxFit:
    """A fitted Cox model with the sorted data and risk-set pieces at the estimate (for cox.zph, the LR test)."""
    names: list[str]
    term_columns: dict[str, list[str]]
    beta: np.ndarray
    var: np.ndarray
    loglik: float
    loglik_null: float
    infinite: np.ndarray
    converged: bool
    engine: str
    data: _CoxData
    terms: _CoxTerms
    n: int
    n_events: int


def _prepare(df: pd.DataFrame, duration_col: str, event_col: str, covariates: Sequence[str], ties: str,
             weights_col: str | None, strata_col: str | None, reference: dict[str, object] | None,
             cluster_col: str | None = None, require_covariates: bool = False):
    """The data checks and arrays shared by ``fit_cox`` and ``cox_coefficients``: tie method and columns checked,
    (time, event, weight), at least one event, the design matrix with its term columns, stratum codes and the
    sorted risk-set data. Returns (X, term_columns, t, e, w, s_codes, d)."""
    if ties not in ("efron", "breslow"):
        raise ValueError(f"ties must be 'efron' or 'breslow' (got {ties!r})")
    for c in [duration_col, event_col, weights_col, strata_col, cluster_col]:
        if c is not None and c not in df.columns:
            raise ValueError(f"column '{c}' is not in the data")
    if require_covariates and not covariates:
        raise ValueError("covariates is empty")
    t, e, w = survival_data(df[duration_col], df[event_col], None if weights_col is None else df[weights_col])
    if e.sum() == 0:
        raise ValueError(f"'{event_col}' has no events: the Cox model is not estimable")
    X, term_columns = _design_matrix(df, covariates, reference)
    s_codes = (np.zeros(t.size, dtype=int) if strata_col is None
               else pd.factorize(pd.Series(group_labels(df[strata_col], strata_col, t.size)))[0])
    return X, term_columns, t, e, w, s_codes, _cox_data(X.to_numpy(dtype=float), t, e, w, s_codes)


def _information(d, beta: np.ndarray, ties: str, terms: _CoxTerms | None = None):
    """Terms at ``beta`` (``terms`` if already computed there), the naive variance (inverse information) and
    coxph.fit's "may be infinite" check of each coefficient; a singular information matrix raises ValueError."""
    terms = _cox_terms(d, beta, ties) if terms is None else terms
    try:
        var = np.linalg.inv(terms.I)
    except np.linalg.LinAlgError as exc:
        raise ValueError("the information matrix is singular (collinear covariates?)") from exc
    step = np.abs(terms.U @ var)
    return terms, var, (step > _COX_EPS) & (step > np.sqrt(_COX_EPS) * np.abs(beta))


def fit_cox(df: pd.DataFrame, duration_col: str, event_col: str, covariates: Sequence[str], ties: str,
            weights_col: str | None, strata_col: str | None, reference: dict[str, object] | None) -> CoxFit:
    """Validate the data, build the design matrix and fit (lifelines for Efron, else or on failure coxph.fit's
    Newton-Raphson); the naive variance and R's "may be infinite" check of each coefficient."""
    X, term_columns, t, e, w, s_codes, d = _prepare(df, duration_col, event_col, covariates, ties, weights_col,
                                                    strata_col, reference, require_covariates=True)
    engine, converged, at_beta, at_zero = "newton-raphson (coxph.fit)", False, None, None
    if ties == "breslow" or X.shape[1] <= NR_MAX_COLUMNS:
        beta, converged, at_beta, at_zero = _newton_raphson_terms(d, ties)
    if ties == "efron" and not converged:
        at_beta = None
        try:
            beta = _fit_lifelines_efron(X, t, e, w, None if strata_col is None else s_codes)
            engine, converged = "lifelines CoxPHFitter", True
        except Exception:  # lifelines' ConvergenceError and friends: R's algorithm, flagged if it did not converge
            beta, converged, at_beta, at_zero = _newton_raphson_terms(d, ties)
    terms, var, infinite = _information(d, beta, ties, at_beta)
    null = (at_zero if at_zero is not None else _cox_terms(d, np.zeros_like(beta), ties)).loglik
    return CoxFit(list(X.columns), term_columns, beta, var, terms.loglik, null, infinite, converged, engine, d,
                   terms, int(t.size), int(e.sum()))


def _robust_var(fit: CoxFit, cluster: np.ndarray | None) -> np.ndarray:
    """R coxph robust variance: crossprod of dfbeta = (w x score residual) %*% var, summed within cluster."""
    resid = _score_residuals(fit.data, fit.beta, fit.terms) * fit.data.in_input_order(fit.data.w)[:, None]
    dfbeta = resid @ fit.var
    if cluster is not None:
        codes = pd.factorize(pd.Series(cluster))[0]
        summed = np.zeros((codes.max() + 1, dfbeta.shape[1]))
        np.add.at(summed, codes, dfbeta)
        dfbeta = summed
    return dfbeta.T @ dfbeta


def cox_ph(df: pd.DataFrame, duration_col: str, event_col: str, covariates: Sequence[str], ties: Ties = "efron",
           cluster_col: str | None = None, weights_col: str | None = None, strata_col: str | None = None,
           robust: bool | None = None, conf_level: float = 0.95,
           reference: dict[str, object] | None = None) -> pd.DataFrame:
    """Cox proportional-hazards model as R ``coxph(Surv(t, e) ~ covariates + strata(s), weights=, cluster=, ties=)``.

    Returns one row per coefficient: term, coef, hr, se (the one used for z, p and the CI), se_naive, se_robust, z,
    p, lower, upper (Wald, on the HR scale) and flag. ``robust=None`` follows R: robust variance when
    ``cluster_col`` is given or any weight is non-integer (IPTW); True/False force it. Robust variance = R's dfbeta
    sandwich (no small-sample correction), per observation or summed within ``cluster_col`` (e.g. matched pair).
    ``strata_col`` gives a stratified model (e.g. on pair, as a sensitivity analysis). A coefficient that R would warn
    "may be infinite" (monotone likelihood, e.g. an arm with no events) gets NaN HR/CI/p and a flag.
    Model-level results are in ``.attrs`` (n, n_events, loglik, loglik_null, lr_chi2/df/p, concordance, ...); the
    concordance is Harrell's C of the linear predictor within strata, unweighted (R's weights it by case weights).
    """
    fit = fit_cox(df, duration_col, event_col, covariates, ties, weights_col, strata_col, reference)
    cluster = None
    if cluster_col is not None:
        if cluster_col not in df.columns:
            raise ValueError(f"column '{cluster_col}' is not in the data")
        cluster = group_labels(df[cluster_col], cluster_col, fit.n)
    integer_w = is_integer_weights(fit.data.w)
    use_robust = (cluster is not None or not integer_w) if robust is None else bool(robust)
    se_naive = np.sqrt(np.diag(fit.var))
    se_robust = np.sqrt(np.diag(_robust_var(fit, cluster)))
    se = se_robust if use_robust else se_naive
    z_crit = stats.norm.ppf(1 - (1 - conf_level) / 2)
    z = fit.beta / se
    with np.errstate(over="ignore"):  # only for coefficients flagged as infinite just below
        out = pd.DataFrame({"term": fit.names, "coef": fit.beta, "hr": np.exp(fit.beta), "se": se,
                            "se_naive": se_naive, "se_robust": se_robust, "z": z, "p": 2 * stats.norm.sf(np.abs(z)),
                            "lower": np.exp(fit.beta - z_crit * se), "upper": np.exp(fit.beta + z_crit * se)})
    out["flag"] = ""
    if fit.infinite.any():
        out.loc[fit.infinite, ["hr", "z", "p", "lower", "upper"]] = np.nan
        out.loc[fit.infinite, "flag"] = "coefficient may be infinite (monotone likelihood, e.g. no events in a group)"
    if not fit.converged:
        out["flag"] = (out["flag"] + "; did not converge").str.lstrip("; ")
    lr = 2 * (fit.loglik - fit.loglik_null)
    d = fit.data
    strata = None if strata_col is None else d.in_input_order(d.strata)
    c_index = concordance_index(d.in_input_order(d.time), d.in_input_order(d.event), d.in_input_order(d.X @ fit.beta),
                                strata)
    variance = "naive" if not use_robust else "robust" if cluster is None else f"robust (cluster={cluster_col})"
    out.attrs.update({"n": fit.n, "n_events": fit.n_events, "ties": ties, "engine": fit.engine, "variance": variance,
                      "loglik": fit.loglik, "loglik_null": fit.loglik_null, "lr_chi2": lr, "lr_df": len(fit.beta),
                      "lr_p": float(stats.chi2.sf(lr, len(fit.beta))), "conf_level": conf_level,
                      "concordance": c_index})
    return out


def concordance_index(time: object, event: object, risk: object, strata: object = None) -> float:
    """Harrell's C as R ``concordance()`` for a Cox fit: a pair is comparable when the shorter time is an event (an
    event and a censoring at the same time count, the event first; two events at the same time do not); higher
    risk should die first; tied risks count 1/2. Pairs only within strata. O(n_events x n)."""
    t, e, _ = survival_data(time, event)
    r = as_float(risk, "risk")
    s = np.zeros(t.size) if strata is None else pd.factorize(pd.Series(group_labels(strata, "strata", t.size)))[0]
    conc = disc = tied = 0
    events = np.flatnonzero(e > 0)
    for rows in np.array_split(events, max(1, events.size * t.size // 4_000_000)):  # blocks of <= ~4e6 pairs
        ti, si, ri = t[rows, None], s[rows, None], r[rows, None]
        comp = (s == si) & ((t > ti) | ((t == ti) & (e == 0)))
        conc += int(np.sum(comp & (ri > r)))
        disc += int(np.sum(comp & (ri < r)))
        tied += int(np.sum(comp & (ri == r)))
    total = conc + disc + tied
    return float((conc + tied / 2) / total) if total > 0 else float("nan")


# --------------------------------------------------------------------------------------------------------------------
# subgroups: HR within levels, likelihood-ratio test of the interaction
# --------------------------------------------------------------------------------------------------------------------
def cox_interaction_p(df: pd.DataFrame, duration_col: str, event_col: str, arm_col: str,
                      subgroup_cols: Sequence[str] | str, covariates: Sequence[str] = (), ties: Ties = "efron",
                      weights_col: str | None = None, conf_level: float = 0.95,
                      reference: dict[str, object] | None = None) -> pd.DataFrame:
    """Forest-plot table: HR for arm within each level of each subgroup variable and the interaction p.

    HR per level: Cox model ``arm + covariates`` fitted in that level (robust variance if weights are non-integer, as
    coxph). Interaction: likelihood-ratio test of ``arm + subgroup + covariates`` versus the same plus arm x subgroup
    (df = levels - 1), on all patients with the subgroup recorded. A level where an arm is absent or has no events
    gets NaN with a flag. Subgroup values are treated as categories.
    """
    subgroup_cols = [subgroup_cols] if isinstance(subgroup_cols, str) else list(subgroup_cols)
    for c in [arm_col, *subgroup_cols, *covariates]:
        if c not in df.columns:
            raise ValueError(f"column '{c}' is not in the data")
    rows = []
    for sg in subgroup_cols:
        data = df.loc[df[sg].notna()].copy()
        data["_sg"] = data[sg].astype(str)
        arm_x, _ = _design_matrix(data, [arm_col], reference)
        if arm_x.shape[1] != 1:
            raise ValueError(f"arm column '{arm_col}' must have exactly two values")
        data["_arm"] = arm_x.iloc[:, 0]
        p_int, note = _interaction_lrt(data, duration_col, event_col, list(covariates), ties, weights_col)
        for level, part in data.groupby("_sg", sort=True):
            events = part.groupby("_arm")[event_col].sum()
            row = {"subgroup": sg, "level": level, "n": len(part), "n_events": int(part[event_col].sum()),
                   "hr": np.nan, "lower": np.nan, "upper": np.nan, "p": np.nan, "p_interaction": p_int,
                   "interaction_note": note, "flag": ""}
            if events.size < 2 or (events == 0).any():
                row["flag"] = "an arm is absent or has no events in this subgroup"
            else:
                try:
                    res = cox_ph(part, duration_col, event_col, ["_arm", *covariates], ties=ties,
                                 weights_col=weights_col, conf_level=conf_level, reference=reference)
                    r = res.iloc[0]
                    row.update({k: r[k] for k in ("hr", "lower", "upper", "p", "flag")})
                except ValueError as exc:
                    row["flag"] = f"not estimable: {exc}"
            rows.append(row)
    return pd.DataFrame(rows)


def _interaction_lrt(data: pd.DataFrame, duration_col: str, event_col: str, covariates: list[str], ties: str,
                     weights_col: str | None) -> tuple[float, str]:
    """LRT p for arm x subgroup; NaN with a note when it cannot be computed."""
    sg_x, _ = _design_matrix(data, ["_sg"]) if data["_sg"].nunique() > 1 else (None, None)
    if sg_x is None:
        return float("nan"), "single subgroup level"
    for c in sg_x.columns:
        data[f"_int_{c}"] = data["_arm"] * sg_x[c]
        data[f"_main_{c}"] = sg_x[c]
    main = ["_arm", *[f"_main_{c}" for c in sg_x.columns], *covariates]
    inter = [f"_int_{c}" for c in sg_x.columns]
    try:
        f0 = fit_cox(data, duration_col, event_col, main, ties, weights_col, None, None)
        f1 = fit_cox(data, duration_col, event_col, main + inter, ties, weights_col, None, None)
    except ValueError as exc:
        return float("nan"), f"not estimable: {exc}"
    note = "likelihood-ratio test" + ("; a coefficient may be infinite" if f1.infinite.any() else "")
    lr = max(2 * (f1.loglik - f0.loglik), 0.0)
    return float(stats.chi2.sf(lr, len(inter))), note


def cox_coefficients(df: pd.DataFrame, duration_col: str, event_col: str, covariates: Sequence[str],
                     ties: Ties = "efron", cluster_col: str | None = None, weights_col: str | None = None,
                     strata_col: str | None = None, robust: bool | None = None,
                     reference: dict[str, object] | None = None) -> pd.DataFrame:
    """Coefficients and variances only of R ``coxph`` (same model, data checks and robust-variance rule as
    ``cox_ph``), fitted by coxph.fit's Newton-Raphson for both tie methods and without the concordance: the fast
    path for analyses repeated many times (multiple imputation, leave-one-out). Columns term, coef, se, se_naive,
    se_robust, flag; ``.attrs`` n, n_events, converged, variance. Agrees with ``cox_ph`` to the convergence
    tolerance (relative log-likelihood change 1e-9)."""
    X, term_columns, t, e, w, s_codes, d = _prepare(df, duration_col, event_col, covariates, ties, weights_col,
                                                    strata_col, reference, cluster_col)
    beta, converged, at_beta, _ = _newton_raphson_terms(d, ties)
    terms, var, infinite = _information(d, beta, ties, at_beta)
    fit = CoxFit(list(X.columns), term_columns, beta, var, terms.loglik, float("nan"), infinite, converged,
                 "newton-raphson (coxph.fit)", d, terms, int(t.size), int(e.sum()))
    cluster = None if cluster_col is None else group_labels(df[cluster_col], cluster_col, fit.n)
    use_robust = (cluster is not None or not is_integer_weights(d.w)) if robust is None else bool(robust)
    se_naive = np.sqrt(np.diag(var))
    se_robust = np.sqrt(np.diag(_robust_var(fit, cluster))) if use_robust else np.full(beta.size, np.nan)
    out = pd.DataFrame({"term": fit.names, "coef": beta, "se": se_robust if use_robust else se_naive,
                        "se_naive": se_naive, "se_robust": se_robust})
    out["flag"] = np.where(infinite, "coefficient may be infinite (monotone likelihood)", "")
    out.loc[infinite, ["coef", "se"]] = np.nan
    out.attrs.update({"n": fit.n, "n_events": fit.n_events, "converged": converged,
                      "variance": "naive" if not use_robust else "robust" if cluster is None
                      else f"robust (cluster={cluster_col})"})
    return out
