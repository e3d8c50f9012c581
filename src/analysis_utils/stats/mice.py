"""Multivariate imputation by chained equations (MICE) on statsmodels' ``MICEData``, with R mice's default
methods per variable type, and the Nelson-Aalen auxiliary of ``mice::nelsonaalen``.

R definitions followed (mice 3.15; van Buuren & Groothuis-Oudshoorn 2011); method page:
docs/methods/missing-data.md.

- One chain per imputation, m chains, each with its own random generator (``numpy.random.SeedSequence(seed)
  .spawn(m)``), so imputation l is the same whatever the number of workers. Start: each missing value drawn at
  random from the observed values (mice's initial ``mice.impute.sample``); then ``maxit`` cycles over the
  incomplete variables (statsmodels' order: fewest missing first).
- ``pmm`` (continuous; mice's default for numeric data): linear regression on the current values of every other
  variable; coefficients drawn from their normal approximation (statsmodels' "gaussian" perturbation); each
  missing value is replaced by the observed value of one of the ``donors`` (mice default 5) observed cases whose
  predicted means are closest (statsmodels ``MICEData.impute_pmm``; type-2 matching, drawn coefficients on both
  sides).
- ``logreg`` (two levels, booleans included; mice's default for binary factors) and ``polyreg`` (three or more
  levels; mice's default for unordered factors, used here for the ordered ECOG and Child-Pugh points as well):
  logistic / multinomial logistic regression with a weak ridge penalty (scikit-learn ``LogisticRegression``'s
  objective with C = 10 on standardised predictors, fitted by Newton's method in ``stats.ridge_logit``; the
  penalty keeps the fit finite under the (quasi-)separation that small levels and centre dummies cause, as mice's
  data augmentation does), fitted on a bootstrap resample of the observed cases
  (mice's ``logreg.boot``, statsmodels' "boot" perturbation) so that the parameter uncertainty is propagated; the
  level is drawn from the predicted probabilities. A fit that does not converge is counted in ``notes``.
- Predictors: every other variable, numeric ones centred and scaled by their observed mean and SD, factors as
  dummies of their levels (first level reference); constant and duplicated design columns are left out per fit.
- A variable with no observed value cannot be imputed and is left missing (``notes``); one with a single observed
  level is filled with it (``notes``).
- Delta adjustment (MNAR sensitivity; van Buuren 2018, section 3.9.1, mice's ``post``): ``delta[v]`` adds
  ``j * delta`` to the linear predictor of level j (0 = first level) of a factor, or ``delta`` to the predicted
  mean of a numeric variable, for the missing cases at every draw, so the imputed values move toward the later
  levels (higher values).
- Trace (mice's ``plot(imp)``): mean and SD of the imputed values of each variable (level codes 0, 1, ... for
  factors) after every iteration of every chain.

``nelson_aalen`` reproduces ``mice::nelsonaalen`` (the cumulative hazard of ``survival::basehaz(coxph(Surv(time,
status) ~ 1))`` at each subject's own time: Fleming-Harrington increments sum_{k<d} 1/(n - k) at a time with d
events among n at risk, the Efron-ties estimate), the auxiliary White & Royston (2009) recommend for covariates of a
survival analysis, with the event indicator.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from statsmodels.imputation.mice import MICEData

from analysis_utils.stats.ridge_logit import ridge_logit

__all__ = ["METHODS", "MiceResult", "default_method", "nelson_aalen", "mice", "mice_chain"]

METHODS = ("pmm", "logreg", "polyreg")
RIDGE_C = 10.0  # inverse ridge penalty of the logistic imputation models (standardised predictors)
RIDGE_TOL = 1e-6  # their convergence: largest gradient entry below RIDGE_TOL x C n (scikit-learn default 1e-4)


def nelson_aalen(time: Sequence[float], event: Sequence[float]) -> np.ndarray:
    """Cumulative hazard at each subject's own time, as ``mice::nelsonaalen`` (Efron-ties / Fleming-Harrington
    increments ``sum_{k=0}^{d-1} 1/(n - k)``). Missing time or event gives NaN."""
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=float)
    ok = np.isfinite(t) & np.isfinite(e)
    out = np.full(t.size, np.nan)
    if not ok.any():
        return out
    tt, ee = t[ok], e[ok] > 0
    times = np.unique(tt)
    n_risk = np.array([(tt >= s).sum() for s in times])
    d = np.array([(ee & (tt == s)).sum() for s in times])
    inc = np.array([np.sum(1.0 / (n - np.arange(k))) if k else 0.0 for n, k in zip(n_risk, d)])
    cum = np.cumsum(inc)
    out[ok] = cum[np.searchsorted(times, tt)]
    return out


def default_method(x: pd.Series, categorical: bool) -> str:
    """mice's default per type: numeric -> pmm; a factor with two levels -> logreg; more -> polyreg."""
    if not categorical:
        return "pmm"
    return "logreg" if x.dropna().nunique() <= 2 else "polyreg"


@dataclass
class MiceResult:
    """``mice`` output: ``completed`` the m completed data sets (long: ``.imp`` 1..m, ``.id`` the row of the input,
    then the columns, factors with their original labels), ``trace`` (``.imp``, iteration, variable, mean, sd),
    ``methods`` (variable -> method, "" for complete ones) and ``notes`` (fallbacks and problems, with counts)."""

    completed: pd.DataFrame
    trace: pd.DataFrame
    methods: dict[str, str]
    notes: list[str] = field(default_factory=list)


class _Chain(MICEData):
    """statsmodels ``MICEData`` with numpy design matrices (no formula parsing per update), factor dummies, the
    logreg / polyreg draws, random initial values, delta shifts and fallback fits."""

    def __init__(self, data: pd.DataFrame, methods: dict[str, str], factors: dict[str, int], donors: int,
                 rng: np.random.Generator, delta: dict[str, float] | None = None,
                 init: pd.DataFrame | None = None, ridge_c: float = RIDGE_C) -> None:
        self._methods, self._factors, self._delta = methods, factors, dict(delta or {})
        self._ridge_c = ridge_c
        self._init = init
        self._scale = {c: (float(data[c].mean()), float(data[c].std()) or 1.0) for c in data.columns
                       if c not in factors}
        self.fallbacks: dict[str, int] = {}
        self._rng0 = rng
        super().__init__(data, k_pmm=donors, rng=rng)
        self.k_pmm = donors
        self._cycle_order = [c for c in self._cycle_order if c in methods]
        for v in self._cycle_order:
            self.model_class[v] = None  # set per fit below

    # ------------------------------------------------------------------ start values
    def _initial_imputation(self) -> None:
        if getattr(self, "_init", None) is not None:
            for col in self.data.columns:
                miss = self.data[col].isna().to_numpy()
                if miss.any():
                    self.data.loc[miss, col] = self._init.loc[miss, col].to_numpy()
            return
        for col in self.data.columns:
            miss = self.data[col].isna().to_numpy()
            if miss.any():
                obs = self.data.loc[~miss, col].to_numpy()
                self.data.loc[miss, col] = self._rng0.choice(obs, size=int(miss.sum()))

    # ------------------------------------------------------------------ design matrices
    def _block(self, c: str) -> np.ndarray:
        x = self.data[c].to_numpy(dtype=float)
        if c in self._factors:
            return np.column_stack([(x == j).astype(float) for j in range(1, self._factors[c])]) \
                if self._factors[c] > 1 else np.zeros((x.size, 0))
        mu, sd = self._scale[c]
        return ((x - mu) / sd)[:, None]

    def _design(self, vname: str) -> np.ndarray:
        """Intercept and every other variable's block; the full matrix is built once and a variable's block is
        rebuilt only when its imputed values change (``_store_changes``)."""
        if not hasattr(self, "_full"):
            blocks = {c: self._block(c) for c in self.data.columns}
            self._slices, start = {}, 1
            for c, b in blocks.items():
                self._slices[c] = slice(start, start + b.shape[1])
                start += b.shape[1]
            self._full = np.column_stack([np.ones(len(self.data))] + list(blocks.values()))
        sl = self._slices[vname]
        return np.delete(self._full, np.s_[sl.start:sl.stop], axis=1)

    def _store_changes(self, col: str, vals: np.ndarray) -> None:
        super()._store_changes(col, vals)
        if hasattr(self, "_full"):
            self._full[:, self._slices[col]] = self._block(col)

    def _usable(self, x_obs: np.ndarray) -> np.ndarray:
        """Columns that vary among the fitting rows and are not exact duplicates (to 12 decimals) of an earlier
        one (the intercept, column 0, is always kept)."""
        varying = np.flatnonzero(x_obs[:, 1:].std(axis=0) > 0) + 1
        rounded = np.ascontiguousarray(np.round(x_obs[:, varying], 12).T) + 0.0  # -0.0 as 0.0
        seen: set[bytes] = set()
        keep = [0]
        for j, col in zip(varying, rounded):
            key = col.tobytes()
            if key not in seen:
                seen.add(key)
                keep.append(int(j))
        return np.asarray(keep)

    def get_fitting_data(self, vname: str):  # noqa: ANN201 - MICEData's signature
        x = self._design(vname)
        ix = self.ix_obs[vname]
        cols = self._usable(x[ix])
        self._cols = cols
        return self.data[vname].to_numpy(dtype=float)[ix], x[np.ix_(ix, cols)], {}, {}

    def get_split_data(self, vname: str):  # noqa: ANN201 - MICEData's signature
        x = self._design(vname)[:, self._cols]
        ixo, ixm = self.ix_obs[vname], self.ix_miss[vname]
        return self.data[vname].to_numpy(dtype=float)[ixo], x[ixo], x[ixm], {}, {}

    # ------------------------------------------------------------------ fits and draws
    def perturb_params(self, vname: str) -> None:
        """pmm: OLS coefficients drawn from their normal approximation (statsmodels' "gaussian" perturbation);
        logreg / polyreg: ridge-penalised logistic fit on a bootstrap resample of the observed cases (mice's
        ``logreg.boot``; statsmodels' "boot" perturbation)."""
        import statsmodels.api as sm

        y, x, _, _ = self.get_fitting_data(vname)
        if self._methods[vname] == "pmm":
            self.models[vname] = sm.OLS(y, x)
            res = self.models[vname].fit()
            cov = np.asarray(res.cov_params())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                self.params[vname] = self.rng.multivariate_normal(np.asarray(res.params), (cov + cov.T) / 2,
                                                                  method="eigh")
            return
        n = y.size
        for _ in range(20):  # a resample must hold at least two levels
            rows = self.rng.integers(0, n, n)
            if np.unique(y[rows]).size > 1:
                break
        yb, xb = y[rows].astype(int), x[rows, 1:]
        fit = ridge_logit(xb, yb, self._ridge_c, tol=RIDGE_TOL, start=self.results.get(vname))
        self.results[vname] = fit
        if not fit.converged:
            self.fallbacks[vname] = self.fallbacks.get(vname, 0) + 1

    def impute(self, vname: str) -> None:
        if self._methods[vname] == "pmm":
            if vname in self._delta:
                self._pmm_shifted(vname)
            else:
                self.impute_pmm(vname)
            return
        _, _, x_miss, _, _ = self.get_split_data(vname)
        n_levels = self._factors[vname]
        fit = self.results[vname]
        score = fit.decision_function(x_miss[:, 1:])
        classes = fit.classes.astype(int)
        if score.ndim == 1:  # two classes present: the score is the logit of the second
            score = np.column_stack([np.zeros_like(score), score])
        eta = np.full((x_miss.shape[0], n_levels), -np.inf)  # a level absent from the resample: probability 0
        eta[:, classes] = score
        eta = eta + self._delta.get(vname, 0.0) * np.arange(n_levels)[None, :]
        eta = eta - eta.max(axis=1, keepdims=True)
        p = np.exp(eta)
        p /= p.sum(axis=1, keepdims=True)
        u = self.rng.random(p.shape[0])
        draws = (p.cumsum(axis=1) < u[:, None]).sum(axis=1).clip(0, n_levels - 1)
        self._store_changes(vname, draws.astype(float))

    def _pmm_shifted(self, vname: str) -> None:
        """PMM with ``delta`` added to the predicted means of the missing cases (shift toward higher values)."""
        y_obs, x_obs, x_miss, _, _ = self.get_split_data(vname)
        p_obs, p_miss = x_obs @ self.params[vname], x_miss @ self.params[vname] + self._delta[vname]
        order = np.argsort(p_obs)
        y_sorted, p_sorted = y_obs[order], p_obs[order]
        dist = np.abs(p_miss[:, None] - p_sorted[None, :])
        k = min(self.k_pmm, y_sorted.size)
        nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]
        pick = nearest[np.arange(nearest.shape[0]), self.rng.integers(0, k, nearest.shape[0])]
        self._store_changes(vname, y_sorted[pick])


def _trace_row(chain: _Chain, iteration: int) -> list[dict[str, Any]]:
    rows = []
    for v in chain._cycle_order:
        vals = chain.data[v].to_numpy(dtype=float)[chain.ix_miss[v]]
        rows.append({"iteration": iteration, "variable": v, "mean": float(vals.mean()),
                     "sd": float(vals.std(ddof=1)) if vals.size > 1 else float("nan")})
    return rows


def mice_chain(data: pd.DataFrame, methods: dict[str, str], factors: dict[str, int], *, maxit: int,
               donors: int, seed: Any, delta: dict[str, float] | None = None,
               init: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """One chain on an encoded frame (numbers; factors as level codes 0..J-1): ``maxit`` cycles, returning the
    completed frame, the trace and the fallback counts. ``init`` starts from a completed frame (e.g. the end of a
    MAR chain, for a delta-adjusted continuation) instead of random draws. Use ``mice`` for labelled data."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # small matrices: BLAS threads only contend (15-fold slower on 2 cores)
        return _run_chain(data, methods, factors, maxit, donors, seed, delta, init)


def _run_chain(data: pd.DataFrame, methods: dict[str, str], factors: dict[str, int], maxit: int, donors: int,
               seed: Any, delta: dict[str, float] | None, init: pd.DataFrame | None
               ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    rng = np.random.default_rng(seed)
    chain = _Chain(data.reset_index(drop=True), methods, factors, donors, rng, delta,
                   None if init is None else init.reset_index(drop=True))
    trace = []
    for it in range(1, maxit + 1):
        chain.update_all(1)
        trace += _trace_row(chain, it)
    return chain.data.copy(), pd.DataFrame(trace, columns=["iteration", "variable", "mean", "sd"]), chain.fallbacks


def _encode(frame: pd.DataFrame, categorical: Sequence[str]) -> tuple[pd.DataFrame, dict[str, list[Any]]]:
    """Numbers for the chains: booleans 0/1, factors as codes of their levels (category order for pandas
    categoricals, otherwise sorted), missing as NaN."""
    enc = pd.DataFrame(index=range(len(frame)))
    levels: dict[str, list[Any]] = {}
    for c in frame.columns:
        x = frame[c].reset_index(drop=True)
        if c in categorical or pd.api.types.is_bool_dtype(x) or not pd.api.types.is_numeric_dtype(x):
            if isinstance(x.dtype, pd.CategoricalDtype):
                lv = [v for v in x.cat.categories if v in set(x.dropna())]
            else:
                lv = sorted(x.dropna().unique().tolist(), key=lambda v: (str(type(v)), v))
            levels[c] = lv
            codes = {v: float(i) for i, v in enumerate(lv)}
            enc[c] = x.map(lambda v: codes.get(v, np.nan) if pd.notna(v) else np.nan).astype(float)
        else:
            enc[c] = pd.to_numeric(x).astype(float)
    return enc, levels


def _decode(enc: pd.DataFrame, frame: pd.DataFrame, levels: dict[str, list[Any]]) -> pd.DataFrame:
    out = {}
    for c in frame.columns:
        if c in levels:
            codes = enc[c].to_numpy(dtype=float)
            ok = np.isfinite(codes)
            labels = np.empty(len(levels[c]), dtype=object)
            labels[:] = levels[c]
            arr = np.full(codes.size, None, dtype=object)
            arr[ok] = labels[codes[ok].astype(int)]
            vals = pd.Series(arr, dtype=object)
            if pd.api.types.is_bool_dtype(frame[c]):
                vals = vals.astype("boolean")
            elif pd.api.types.is_numeric_dtype(frame[c]):
                vals = pd.to_numeric(vals).astype(float)
            out[c] = vals
        else:
            out[c] = enc[c]
    return pd.DataFrame(out)


def _one(args: tuple) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    enc, methods, factors, maxit, donors, seed, delta, init = args
    return mice_chain(enc, methods, factors, maxit=maxit, donors=donors, seed=seed, delta=delta, init=init)


def mice(frame: pd.DataFrame, *, categorical: Sequence[str] = (), m: int = 20, maxit: int = 10, donors: int = 5,
         seed: int = 0, methods: dict[str, str] | None = None, delta: dict[str, float] | None = None,
         init: pd.DataFrame | None = None, visit: Sequence[str] | None = None, workers: int = 1,
         progress: Callable[[int, int], None] | None = None) -> MiceResult:
    """m imputations of ``frame`` (every column is imputed if incomplete and used as a predictor of the others),
    R ``mice(frame, m, maxit, method = <defaults>, donors)`` semantics as the module docstring states; the chains
    run in up to ``workers`` processes (``stats.mi.run_within``), chain l seeded by ``SeedSequence(seed).spawn(m)
    [l - 1]``. ``methods`` overrides the default method of a column. ``delta`` shifts the imputations of the
    named columns (MNAR sensitivity). ``init``: a long completed frame (``.imp``, columns) to continue from instead
    of random start values, e.g. a delta-adjusted continuation of MAR chains; ``visit`` restricts the variables
    updated in each cycle (the others keep their ``init`` values), e.g. to re-draw only the shifted variables."""
    from analysis_utils.stats.mi import run_within

    if m < 1 or maxit < 1 or donors < 1:
        raise ValueError(f"m, maxit and donors must be >= 1 (got {m}, {maxit}, {donors})")
    notes: list[str] = []
    enc, levels = _encode(frame, categorical)
    chosen: dict[str, str] = {}
    empty = [c for c in enc.columns if enc[c].isna().all()]
    for c in empty:
        notes.append(f"{c}: no observed value, cannot be imputed; left missing (analyses drop it)")
    use = enc.drop(columns=empty)
    factors = {c: len(levels[c]) for c in use.columns if c in levels}
    for c in use.columns:
        miss = use[c].isna()
        if not miss.any():
            chosen[c] = ""
            continue
        if use[c].nunique() < 2:
            use.loc[miss, c] = use[c].dropna().iloc[0]
            notes.append(f"{c}: a single observed value; its {int(miss.sum())} missing value(s) set to it")
            chosen[c] = "constant"
            continue
        meth = (methods or {}).get(c) or default_method(use[c], c in factors)
        if meth not in METHODS:
            raise ValueError(f"method for {c!r} must be one of {METHODS}, got {meth!r}")
        if meth != "pmm" and c not in factors:
            raise ValueError(f"{c!r}: method {meth!r} needs a categorical column")
        chosen[c] = meth
    todo = {c: v for c, v in chosen.items() if v in METHODS and (visit is None or c in visit)}
    if visit is not None and init is None:
        raise ValueError("visit needs init: the variables not visited must start from completed values")
    seeds = np.random.SeedSequence(seed).spawn(m)
    inits = [None] * m
    if init is not None:
        ienc = _encode(init.drop(columns=".imp"), categorical)[0]
        for c, lv in levels.items():  # same codes as the data's levels
            if c in init.columns:
                codes = {v: float(i) for i, v in enumerate(lv)}
                ienc[c] = init[c].reset_index(drop=True).map(lambda v: codes.get(v, np.nan))
        imp = init[".imp"].to_numpy()
        inits = [ienc.loc[imp == i + 1, use.columns].reset_index(drop=True) for i in range(m)]
    jobs = [(use, todo, factors, maxit, donors, seeds[i], delta, inits[i]) for i in range(m)]
    out = run_within(jobs, _one, workers=workers, progress=progress) if todo else \
        [(use.copy(), pd.DataFrame(columns=["iteration", "variable", "mean", "sd"]), {}) for _ in range(m)]
    parts, traces, fallbacks = [], [], {}
    for i, (data, trace, fb) in enumerate(out, 1):
        for c in empty:
            data[c] = np.nan
        dec = _decode(data[enc.columns], frame, levels)
        parts.append(dec.assign(**{".imp": i, ".id": np.arange(len(dec))}))
        traces.append(trace.assign(**{".imp": i}))
        for k, v in fb.items():
            fallbacks[k] = fallbacks.get(k, 0) + v
    for c, n in fallbacks.items():
        notes.append(f"{c}: the {chosen[c]} model did not reach convergence in {n} of {m * maxit} fits "
                     "(Newton's method, 100 iterations); the last iterate was used")
    completed = pd.concat(parts, ignore_index=True)
    completed = completed[[".imp", ".id", *frame.columns]]
    return MiceResult(completed, pd.concat(traces, ignore_index=True), {c: chosen.get(c, "") for c in frame.columns},
                      notes)
