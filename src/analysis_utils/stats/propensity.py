"""Propensity score by unpenalised logistic regression, as R ``glm(treat ~ ., family = binomial)`` (MatchIt
``distance = "glm"``, ``link = "logit"``).

Definitions reproduced (read from R's and MatchIt's own source and help pages); method page:
docs/methods/matching-and-weighting.md (propensity score).

- Fit: IRLS (statsmodels ``GLM(Binomial)``) with at most 25 iterations (R ``glm.control(maxit = 25)``); the
  coefficient table is R's ``summary.glm`` Wald table with ``confint.default`` limits (estimate +/- 1.96 SE).
- Design: intercept, numeric columns as they are, factors dummy-coded against their first level (R
  ``contr.treatment``; category order for pandas categoricals, otherwise sorted); booleans enter as 0/1.
- Aliased columns: a design column whose residual on the columns before it is below 1e-7 of its norm is dropped,
  as R's pivoting QR (``qr()`` tolerance 1e-7) gives it an NA coefficient.
- Missing covariate values: the missing-indicator method (median / mode fill plus a 0/1 ``<col>_missing``
  column) or complete cases; every row or covariate left out is listed with its reason.
- Separation is reported, never raised: non-convergence, statsmodels' separation warnings, and fitted scores within
  1e-8 of 0 or 1.
The treatment column's name and its treated value are arguments: nothing here knows a particular study.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy.special import expit

__all__ = ["PropensityResult", "estimate_propensity", "PS_BOUNDARY"]

R_ALIAS_TOL = 1e-7  # relative residual norm below which a design column is aliased (R qr() default tol)
PS_BOUNDARY = 1e-8  # fitted ps this close to 0 or 1 is reported as (quasi-)complete separation
GLM_MAXIT = 25  # R glm.control(maxit = 25)


@dataclass
class PropensityResult:
    """Output of ``estimate_propensity``. ``ps``/``linear_predictor`` are indexed by the rows used in the fit."""

    ps: pd.Series
    linear_predictor: pd.Series
    treatment: pd.Series
    summary: pd.DataFrame
    design: pd.DataFrame
    problems: list[str] = field(default_factory=list)
    dropped_rows: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["row", "reason"]))
    dropped_covariates: dict[str, str] = field(default_factory=dict)
    converged: bool = False
    model: Any = None


def _binary_treatment(values: pd.Series, treated_value: Any | None, name: str) -> pd.Series:
    """Map a two-valued treatment to 0/1 (1 = treated). 0/1 and booleans need no ``treated_value``."""
    obs = values.dropna()
    levels = set(obs.unique().tolist())
    if treated_value is not None:
        if treated_value not in levels:
            raise ValueError(f"treatment column {name!r}: treated_value {treated_value!r} not found")
        if len(levels) != 2:
            raise ValueError(f"treatment column {name!r} must have exactly 2 values, found {sorted(map(str, levels))}")
        return values.map(lambda v: np.nan if pd.isna(v) else float(v == treated_value))
    if levels <= {0, 1, True, False} and len(levels) == 2:
        return values.astype(float)
    raise ValueError(f"treatment column {name!r} must be 0/1 or boolean with both values present "
                     f"(found {sorted(map(str, levels))}); pass treated_value for other codings")


def _screen_covariates(df: pd.DataFrame, covariates: Sequence[str], categorical: set[str]
                       ) -> tuple[list[str], dict[str, str]]:
    """Drop covariates that are entirely missing or constant (one observed value / one level), with the reason."""
    kept, dropped = [], {}
    for col in covariates:
        obs = df[col].dropna()
        if obs.empty:
            dropped[col] = "entirely missing"
        elif obs.nunique() < 2:
            dropped[col] = f"constant (single observed {'level' if col in categorical else 'value'} {obs.iloc[0]!r})"
        else:
            kept.append(col)
    return kept, dropped


def _levels(x: pd.Series) -> list[Any]:
    """Factor levels in R's order: categorical dtype keeps its category order, otherwise sorted; unused dropped."""
    present = set(x.dropna().unique().tolist())
    if isinstance(x.dtype, pd.CategoricalDtype):
        return [c for c in x.cat.categories if c in present]
    return sorted(present, key=lambda v: (str(type(v)), v))


def _fill_value(x: pd.Series, is_cat: bool) -> Any:
    """Median for numeric covariates, mode (most frequent; first level on a tie) for factors."""
    if not is_cat:
        return float(x.median())
    counts = x.value_counts()
    top = counts[counts == counts.max()].index.tolist()
    return [lv for lv in _levels(x) if lv in top][0]


def _design_matrix(data: pd.DataFrame, covariates: Sequence[str], categorical: set[str], indicator: bool
                   ) -> tuple[pd.DataFrame, list[str]]:
    """Intercept, numeric columns as is, factors as treatment-contrast dummies (reference = first level);
    with ``indicator`` a missing value is filled (median / mode) and a 0/1 column ``<col>_missing`` is added."""
    cols: dict[str, np.ndarray] = {"(Intercept)": np.ones(len(data))}
    notes = []
    for col in covariates:
        x = data[col]
        is_cat = col in categorical
        miss = x.isna().to_numpy()
        if indicator and miss.any():
            fill = _fill_value(x, is_cat)
            notes.append(f"{col}: {int(miss.sum())} missing value(s) filled with the "
                         f"{'mode' if is_cat else 'median'} ({fill!r}) and indicator {col}_missing added")
            x = x.where(~miss, fill)
        if is_cat:
            for lv in _levels(x)[1:]:
                cols[f"{col}[{lv}]"] = (x == lv).to_numpy(dtype=float)
        else:
            cols[col] = pd.to_numeric(x).to_numpy(dtype=float)
        if indicator and miss.any():
            cols[f"{col}_missing"] = miss.astype(float)
    return pd.DataFrame(cols, index=data.index), notes


def _drop_aliased(design: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Keep columns left to right while they add rank; a column whose residual on the kept ones is below
    ``R_ALIAS_TOL`` times its norm is aliased and dropped, as R's pivoting QR gives it an NA coefficient."""
    kept: list[str] = []
    aliased: list[str] = []
    q = np.zeros((len(design), 0))
    for name in design.columns:
        col = design[name].to_numpy(dtype=float)
        norm = np.linalg.norm(col)
        resid = col - q @ (q.T @ col) if q.shape[1] else col
        if norm == 0 or np.linalg.norm(resid) < R_ALIAS_TOL * norm:
            aliased.append(name)
            continue
        kept.append(name)
        q = np.column_stack([q, resid / np.linalg.norm(resid)])
    return design[kept], aliased


def _coef_table(res: Any) -> pd.DataFrame:
    """Wald table of the fitted GLM (as R's summary.glm; CI = estimate +/- 1.96 SE, R's confint.default)."""
    ci = np.asarray(res.conf_int())
    return pd.DataFrame({
        "term": list(res.params.index),
        "estimate": np.asarray(res.params),
        "std_error": np.asarray(res.bse),
        "z": np.asarray(res.tvalues),
        "p_value": np.asarray(res.pvalues),
        "conf_low": ci[:, 0],
        "conf_high": ci[:, 1],
    })


def _fit_logit(y: pd.Series, design: pd.DataFrame) -> tuple[Any, list[str]]:
    """Unpenalised logistic GLM by IRLS (statsmodels ``GLM(Binomial)``, at most 25 iterations like R's glm).
    Never raises: a failed fit returns ``None`` and the reason."""
    import statsmodels.api as sm

    problems: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = sm.GLM(y.to_numpy(dtype=float), design, family=sm.families.Binomial()).fit(maxiter=GLM_MAXIT)
        except Exception as exc:  # noqa: BLE001 - any numerical failure is reported, never raised
            return None, [f"logistic model could not be fitted: {type(exc).__name__}: {exc}"]
    seen = set()
    for w in caught:
        msg = f"{w.category.__name__}: {w.message}"
        if msg not in seen:
            seen.add(msg)
            problems.append(msg)
    return res, problems


def estimate_propensity(df: pd.DataFrame, treatment_col: str, covariates: Sequence[str],
                        categorical: Sequence[str] | None = None, missing: str = "indicator", link: str = "logit",
                        treated_value: Any | None = None) -> PropensityResult:
    """Propensity score by unpenalised logistic regression (R ``glm(treat ~ ., family = binomial)``, i.e.
    MatchIt ``distance = "glm"``). Returns ps, the linear predictor (logit) and the coefficient table.

    - ``categorical`` columns (and any non-numeric column) are factors with treatment contrasts against the first
      level (category order for pandas categoricals, otherwise sorted), as R's ``contr.treatment``.
    - ``missing="indicator"``: a missing numeric value is set to the covariate's median, a missing factor value to
      its mode, and a 0/1 indicator column ``<col>_missing`` enters the model (missing-indicator method; it keeps
      every row but assumes the indicator captures the missingness mechanism). ``"complete_case"``: rows with any
      missing covariate are dropped and listed in ``dropped_rows`` with the reason.
    - Rows with a missing treatment are always dropped (listed). A covariate entirely missing or constant is
      dropped with a message; aliased design columns (exact collinearity) are dropped as R gives them NA.
    - Separation is reported, not raised: fitted ps within 1e-8 of 0 or 1, non-convergence within 25 IRLS
      iterations, or statsmodels' PerfectSeparationWarning each add a message to ``problems``.
    Method: docs/methods/matching-and-weighting.md.
    """
    if link != "logit":
        raise ValueError(f"link {link!r} is not supported; only 'logit' (MatchIt link='logit')")
    if missing not in ("indicator", "complete_case"):
        raise ValueError(f"missing must be 'indicator' or 'complete_case', got {missing!r}")
    if treatment_col not in df.columns:
        raise ValueError(f"treatment column {treatment_col!r} not in data")
    absent = [c for c in covariates if c not in df.columns]
    if absent:
        raise ValueError(f"covariates not in data: {absent}")
    if treatment_col in covariates:
        raise ValueError(f"treatment column {treatment_col!r} is also listed as a covariate")

    bool_cols = {c for c in covariates if pd.api.types.is_bool_dtype(df[c])}  # booleans enter as 0/1 numbers
    cat = (set(categorical or []) | {c for c in covariates if not pd.api.types.is_numeric_dtype(df[c])}) - bool_cols
    data = df[list(covariates)].copy()
    for c in bool_cols:
        data[c] = data[c].astype(float)
    y = _binary_treatment(df[treatment_col], treated_value, treatment_col)
    problems: list[str] = []
    dropped_rows = [(r, "treatment missing") for r in df.index[y.isna()]]
    keep = y.notna()

    kept, dropped_cov = _screen_covariates(data[keep], covariates, cat)
    problems += [f"covariate {c!r} dropped: {why}" for c, why in dropped_cov.items()]
    if missing == "complete_case":
        miss = data.loc[keep, kept].isna()
        for r, row in miss[miss.any(axis=1)].iterrows():
            dropped_rows.append((r, "missing " + ", ".join(row.index[row].tolist())))
        keep &= ~data[kept].isna().any(axis=1)
        again, dropped_again = _screen_covariates(data[keep], kept, cat)
        for c, why in dropped_again.items():
            dropped_cov[c] = why + " among complete cases"
            problems.append(f"covariate {c!r} dropped: {why} among complete cases")
        kept = again
    dropped = pd.DataFrame(dropped_rows, columns=["row", "reason"])
    if dropped_rows:
        problems.append(f"{len(dropped_rows)} row(s) dropped (see dropped_rows)")
    y_fit = y[keep]
    if y_fit.nunique() < 2:
        raise ValueError(f"treatment column {treatment_col!r}: both groups are needed among the rows used")

    design, notes = _design_matrix(data.loc[keep], kept, cat, indicator=(missing == "indicator"))
    problems += notes
    design, aliased = _drop_aliased(design)
    problems += [f"design column {a!r} aliased (collinear with earlier columns) and dropped" for a in aliased]

    res, fit_problems = _fit_logit(y_fit, design)
    problems += fit_problems
    if res is None:
        nan = pd.Series(np.nan, index=design.index)
        return PropensityResult(nan, nan.copy(), y_fit, pd.DataFrame(), design, problems, dropped, dropped_cov,
                                False, None)
    lp = pd.Series(design.to_numpy() @ np.asarray(res.params), index=design.index, name="linear_predictor")
    ps = pd.Series(expit(lp.to_numpy()), index=design.index, name="ps")
    converged = bool(getattr(res, "converged", True))
    if not converged:
        problems.append(f"IRLS did not converge in {GLM_MAXIT} iterations: suspect (quasi-)complete separation")
    extreme = int(((ps < PS_BOUNDARY) | (ps > 1 - PS_BOUNDARY)).sum())
    if extreme:
        problems.append(f"fitted propensity scores numerically 0 or 1 for {extreme} unit(s): (quasi-)complete "
                        "separation; coefficients and ps at the boundary are not reliable")
    return PropensityResult(ps, lp, y_fit, _coef_table(res), design, problems, dropped, dropped_cov, converged, res)
