"""Propensity scores, MatchIt-equivalent greedy nearest-neighbour matching, and propensity-score weights.

Definitions reproduced (read from the packages' own source and help pages):

- Propensity model: unpenalised logistic regression as R ``glm(family = binomial)`` (MatchIt ``distance = "glm"``,
  ``link = "logit"``); factors dummy-coded against their first level (R ``contr.treatment``).
- Nearest-neighbour matching: MatchIt 4.x ``method = "nearest"`` (``matchit2nearest.R``, C++ ``nn_matchC_vec`` and
  ``find_control_vec``), ATT (treated units are matched, controls are the pool):
  * Distance as given. With ``link = "linear.logit"`` MatchIt matches on the linear predictor; pass the logit of
    the propensity score here to get that (the usual "0.2 SD of the logit" caliper, Austin 2011).
  * Caliper (``process.caliper`` in ``input_processing.R``): with ``std.caliper = TRUE`` the width is
    ``caliper * sd(distance[!discarded])``: R's ``sd`` (denominator n - 1) over all non-discarded units, treated
    and control pooled (not per stratum). A control is acceptable when ``|d_t - d_c| <= width``.
  * ``discard`` (``discard()``): ``"both"`` drops units outside the intersection of the treated and control
    distance ranges, ``"control"`` controls outside the treated range, ``"treated"`` treated outside the control
    range. Discarded units are never matched but still take their place in the sorted order.
  * Order (``m.order``): ``"largest"`` = ``order(d[treat == 1], decreasing = TRUE)``, ``"smallest"`` increasing,
    ``"data"`` data order (R's ``order`` is stable, so ties keep data order); ``"random"`` is a permutation drawn
    from ``numpy.random.default_rng(seed)`` (R's ``sample.int`` stream cannot be reproduced).
  * k:1 without replacement is done in rounds: every treated unit gets its 1st control (in ``m.order``), then
    every treated unit still matched gets its 2nd, ... (``for r in 1..ratio: for t in ord``). A treated unit that
    finds no control in a round gets no further controls.
  * Which control: all units are sorted by distance (stable, ties in data order). From the treated unit's
    position (in round r > 1, from the outermost positions of the controls it already has) MatchIt scans
    outwards taking one step left, one step right, alternately; the first available control on each side is a
    candidate if within the caliper. The nearer candidate wins; on an exact distance tie the one reached first
    wins, i.e. the left one when its offset (in positions, counting every unit) is <= the right one's.
  * With replacement (and, as in MatchIt, when the sample or an exact stratum holds a single treated unit, since
    then reuse.max >= n_treated), each treated unit takes its k nearest available controls at once: up to k candidates are collected on each side in scan order
    (a side stops at the caliper, or at a candidate farther than k already collected), then the k closest are
    taken with ``std::partial_sort`` (emulated step by step from libstdc++ so that exact ties resolve as MatchIt
    built with g++ resolves them).
  * Exact matching: each exact stratum is matched separately, as ``matchit2nearest.R`` does (one C++ call per
    stratum), so the positions that break ties are counted within the stratum. (MatchIt's development C++, which
    scans the strata inside one call, counts them in the whole sample; the two differ only on exact ties.)
  * Weights (``weights_matrixC`` then ``normalize = TRUE``): a matched treated unit gets 1; a control gets the sum,
    over the treated units it is matched to, of 1 / (number of controls matched to that treated unit). Nonzero
    weights are then divided by their mean within each treatment group. Subclass (pair) ids are given only
    without replacement, numbered 1, 2, ... in the treated units' data order.
- Weights from propensity scores: WeightIt ``get_w_from_ps`` / ``trim`` (see ``iptw_weights``).

Scale: matching never forms an n_treated x n_control matrix. Controls are kept sorted; used controls are skipped
with two "next available" union-find pointer arrays (left and right), so each search is amortised near O(1) and
the whole match is O(n log n). ``_match_nearest_naive`` is the brute-force all-pairs reference used by the tests
and the benchmark.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy.special import expit

__all__ = [
    "PropensityResult",
    "estimate_propensity",
    "MatchResult",
    "match_nearest",
    "iptw_weights",
    "overlap_weights",
    "MatchingOutput",
    "check_matching_spec",
    "run_matching",
    "write_matching_data",
]

R_ALIAS_TOL = 1e-7  # relative residual norm below which a design column is aliased (R qr() default tol)
PS_BOUNDARY = 1e-8  # fitted ps this close to 0 or 1 is reported as (quasi-)complete separation
GLM_MAXIT = 25  # R glm.control(maxit = 25)
M_ORDERS = ("largest", "smallest", "random", "data")
DISCARDS = ("none", "both", "control", "treated")


# ----------------------------------------------------------------------------------------------------------------
# Propensity score
# ----------------------------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------------------------
# Nearest-neighbour matching
# ----------------------------------------------------------------------------------------------------------------

@dataclass
class MatchResult:
    """Output of ``match_nearest`` (indices are 0-based positions in the input vectors).

    ``match_matrix[i, j]`` is the j-th control matched to treated unit ``treated_index[i]`` (-1 = none), the
    order being the order matched. ``subclass`` is the pair id (1, 2, ...) per unit, -1 if unmatched or when
    matching with replacement. ``unmatched`` lists every unit with weight 0 and the reason."""

    treat: np.ndarray
    distance: np.ndarray
    treated_index: np.ndarray
    match_matrix: np.ndarray
    n_controls: np.ndarray
    subclass: np.ndarray
    weights: np.ndarray
    discarded: np.ndarray
    unmatched: pd.DataFrame
    caliper_sd: float | None
    caliper_width: float | None
    settings: dict[str, Any]

    @property
    def matched_index(self) -> np.ndarray:
        """Positions of the units in the matched sample (weight > 0)."""
        return np.flatnonzero(self.weights > 0)

    def pairs(self) -> pd.DataFrame:
        """Long table treated -> control with the pair (subclass) id and the rank of the control."""
        rows, cols = np.nonzero(self.match_matrix >= 0)
        t = self.treated_index[rows]
        return pd.DataFrame({"treated": t, "control": self.match_matrix[rows, cols], "rank": cols + 1,
                             "subclass": self.subclass[t]})

    def counts(self) -> pd.DataFrame:
        """Sample sizes as MatchIt's summary: All, Matched, Unmatched, Discarded per group."""
        t = self.treat.astype(bool)
        m = self.weights > 0
        d = self.discarded
        out = {}
        for name, g in (("Control", ~t), ("Treated", t)):
            out[name] = [int(g.sum()), int((g & m).sum()), int((g & ~m & ~d).sum()), int((g & d).sum())]
        return pd.DataFrame(out, index=["All", "Matched", "Unmatched", "Discarded"])


@dataclass
class _Problem:
    """Validated matching problem shared by the fast and the naive implementations."""

    treat: np.ndarray  # bool
    distance: np.ndarray
    strata: np.ndarray  # int codes, 0 without exact
    discarded: np.ndarray
    width: float  # caliper in distance units (inf = none)
    order: np.ndarray  # treated positions in matching order
    pos: np.ndarray  # rank of each unit in the stable sort by (stratum, distance)
    sort_order: np.ndarray  # the inverse permutation: units in that sorted order
    ratio: int
    replace: bool


def _as_treat(treat: Any) -> np.ndarray:
    """Treatment as a boolean vector (True = treated); accepts 0/1 numbers or booleans."""
    t = np.asarray(treat)
    if t.ndim != 1:
        raise ValueError("treat must be a 1-D vector")
    if t.dtype == bool:
        return t.copy()
    s = pd.Series(t)
    if s.isna().any():
        raise ValueError("treat has missing values (MatchIt: missing values are not allowed in the treatment)")
    vals = set(s.unique().tolist())
    if not vals <= {0, 1}:
        raise ValueError(f"treat must be 0/1 or boolean, found values {sorted(map(str, vals))}")
    return s.to_numpy(dtype=float) == 1


def _exact_codes(exact: Any, n: int) -> np.ndarray:
    """Integer stratum code per unit from one or several exact-matching variables (no missing allowed)."""
    if exact is None:
        return np.zeros(n, dtype=np.int64)
    if isinstance(exact, pd.DataFrame):
        ex = exact.reset_index(drop=True)
    elif isinstance(exact, pd.Series):
        ex = exact.reset_index(drop=True).to_frame()
    else:
        arr = np.asarray(exact, dtype=object)
        if arr.ndim not in (1, 2):
            raise ValueError("exact must be a vector, a 2-D array or a DataFrame")
        ex = pd.DataFrame(arr.reshape(arr.shape[0], -1))
    if len(ex) != n:
        raise ValueError(f"exact has {len(ex)} rows but distance has {n}")
    if ex.isna().any().any():
        raise ValueError("exact: missing values are not allowed in the exact-matching variables")
    ex = ex.astype(str)
    ex.columns = range(ex.shape[1])
    return ex.groupby(list(ex.columns), sort=True).ngroup().to_numpy(dtype=np.int64)


def _discard(distance: np.ndarray, treat: np.ndarray, option: str) -> np.ndarray:
    """MatchIt ``discard()``: common support on the distance's ranges (range comparisons are invariant to the
    monotone ps -> logit map, so ps or logit give the same units)."""
    if option == "none":
        return np.zeros(distance.size, dtype=bool)
    d1, d0 = distance[treat], distance[~treat]
    if option == "both":
        return (distance < max(d0.min(), d1.min())) | (distance > min(d0.max(), d1.max()))
    if option == "control":
        return (distance < d1.min()) | (distance > d1.max())
    return (distance < d0.min()) | (distance > d0.max())  # "treated"


def _treated_order(distance: np.ndarray, treat: np.ndarray, m_order: str, seed: Any) -> np.ndarray:
    """Positions of the treated units in MatchIt's ``m.order`` (stable: ties keep data order)."""
    t_idx = np.flatnonzero(treat)
    d = distance[t_idx]
    if m_order == "largest":
        return t_idx[np.argsort(-d, kind="stable")]
    if m_order == "smallest":
        return t_idx[np.argsort(d, kind="stable")]
    if m_order == "random":
        return np.random.default_rng(seed).permutation(t_idx)
    return t_idx


def _prepare(distance: Any, treat: Any, ratio: int, caliper: float | None, std_caliper: bool, replace: bool,
             m_order: str, exact: Any, discard: str, seed: Any) -> tuple[_Problem, float | None, float | None]:
    d = np.asarray(distance, dtype=float)
    if d.ndim != 1:
        raise ValueError("distance must be a 1-D vector")
    if not np.isfinite(d).all():
        raise ValueError("distance has missing or non-finite values (MatchIt does not allow them)")
    t = _as_treat(treat)
    if t.size != d.size:
        raise ValueError(f"treat has {t.size} values but distance has {d.size}")
    if not t.any() or t.all():
        raise ValueError("treat needs at least one treated and one control unit")
    if isinstance(ratio, bool) or not isinstance(ratio, (int, np.integer)) or ratio < 1:
        raise ValueError(f"ratio must be a whole number >= 1, got {ratio!r}")
    if m_order not in M_ORDERS:
        raise ValueError(f"m_order must be one of {M_ORDERS}, got {m_order!r}")
    if discard not in DISCARDS:
        raise ValueError(f"discard must be one of {DISCARDS}, got {discard!r}")
    strata = _exact_codes(exact, d.size)
    discarded = _discard(d, t, discard)
    caliper_sd = width = None
    if caliper is not None:
        try:
            caliper = float(caliper)
        except (TypeError, ValueError):
            raise ValueError(f"caliper must be a number, got {caliper!r}") from None
    if caliper is not None and np.isfinite(caliper):
        if not caliper > 0:
            raise ValueError(f"caliper must be > 0, got {caliper!r}")
        if std_caliper:
            kept = d[~discarded]
            if kept.size < 2:
                raise ValueError("caliper in SD units needs at least 2 non-discarded units")
            caliper_sd = float(np.std(kept, ddof=1))
            width = float(caliper) * caliper_sd
        else:
            width = float(caliper)
    sort_order = np.lexsort((d, strata))  # stable: ties keep data order, as R's order()
    pos = np.empty(d.size, dtype=np.int64)
    pos[sort_order] = np.arange(d.size)
    order = _treated_order(d, t, m_order, seed)
    prob = _Problem(t, d, strata, discarded, math.inf if width is None else width, order, pos, sort_order,
                    int(ratio), bool(replace))
    return prob, caliper_sd, width


def _sorted_controls(p: _Problem) -> np.ndarray:
    """Positions of the available (non-discarded) controls, in sorted (stratum, distance) order."""
    s = p.sort_order
    return s[~p.treat[s] & ~p.discarded[s]]


def _split_paths(p: _Problem) -> tuple[np.ndarray, np.ndarray]:
    """Treated units (in matching order, discarded ones removed) for the rounds path and for the all-at-once path.
    MatchIt uses all-at-once when reuse.max >= number of treated in the (stratum) call: with replacement, or a
    stratum with a single treated unit (discarded ones included in that count)."""
    order = p.order[~p.discarded[p.order]]
    if p.replace:
        return order[:0], order
    n_treated_in_stratum = np.bincount(p.strata[p.treat], minlength=p.strata.max() + 1)
    single = n_treated_in_stratum[p.strata[order]] == 1
    return order[~single], order[single]


def _rounds_fast(p: _Problem, units: np.ndarray, row_of: np.ndarray, mm: np.ndarray) -> None:
    """Greedy matching without replacement in rounds (MatchIt's reuse.max path), with union-find skipping."""
    if units.size == 0:
        return
    c = _sorted_controls(p)
    nc, nt = c.size, units.size
    if nc == 0:
        return
    c_pos = p.pos[c]
    lstart = (np.searchsorted(c_pos, p.pos[units]) - 1).tolist()  # last control left of the treated unit
    rstart = [j + 1 for j in lstart]
    lo = p.pos[units].tolist()
    hi = list(lo)
    td, ts = p.distance[units].tolist(), p.strata[units].tolist()
    cd, cs, cp = p.distance[c].tolist(), p.strata[c].tolist(), c_pos.tolist()
    left = list(range(nc + 1))  # left[j + 1] == j + 1 <=> control j available; left[0] is the sentinel
    right = list(range(nc + 1))  # right[j] == j <=> control j available; right[nc] is the sentinel
    width = p.width
    active = [True] * nt
    out_k: list[int] = []
    out_r: list[int] = []
    out_j: list[int] = []
    for r in range(p.ratio):
        for k in range(nt):
            if not active[k]:
                continue
            dt, st = td[k], ts[k]
            i = lstart[k] + 1
            while left[i] != i:  # path halving
                left[i] = left[left[i]]
                i = left[i]
            jl = i - 1
            dl = math.inf
            if jl >= 0 and cs[jl] == st:
                dl = abs(dt - cd[jl])
                if dl > width:
                    jl = -1
            else:
                jl = -1
            i = rstart[k]
            while right[i] != i:
                right[i] = right[right[i]]
                i = right[i]
            jr = i
            dr = math.inf
            if jr < nc and cs[jr] == st:
                dr = abs(dt - cd[jr])
                if dr > width:
                    jr = -1
            else:
                jr = -1
            if jl < 0 and jr < 0:
                active[k] = False
                continue
            if jr < 0 or (jl >= 0 and (dl < dr or (dl == dr and lo[k] - cp[jl] <= cp[jr] - hi[k]))):
                j = jl
                lstart[k] = jl - 1
                lo[k] = cp[jl]
            else:
                j = jr
                rstart[k] = jr + 1
                hi[k] = cp[jr]
            left[j + 1] = j
            right[j] = j + 1
            out_k.append(k)
            out_r.append(r)
            out_j.append(j)
    if out_k:
        mm[row_of[units[np.asarray(out_k)]], np.asarray(out_r)] = c[np.asarray(out_j)]


def _rounds_naive(p: _Problem, units: np.ndarray, row_of: np.ndarray, mm: np.ndarray) -> None:
    """Reference for ``_rounds_fast``: for every treated unit, distances to all controls, then the documented
    rule (minimum distance; tie -> smallest scan offset, left before right at equal offsets)."""
    c = np.flatnonzero(~p.treat & ~p.discarded)
    c_pos, c_d, c_s = p.pos[c], p.distance[c], p.strata[c]
    avail = np.ones(c.size, dtype=bool)
    lo, hi = p.pos[units].copy(), p.pos[units].copy()
    active = np.ones(units.size, dtype=bool)
    for r in range(p.ratio):
        for k, u in enumerate(units):
            if not active[k]:
                continue
            d = np.abs(p.distance[u] - c_d)
            ok = avail & (c_s == p.strata[u]) & (d <= p.width)
            if not ok.any():
                active[k] = False
                continue
            cand = np.flatnonzero(ok & (d == d[ok].min()))
            is_left, is_right = c_pos[cand] < lo[k], c_pos[cand] > hi[k]
            if not (is_left | is_right).all():
                raise RuntimeError("an available control lies between a treated unit's matches")
            key = np.where(is_left, 2 * (lo[k] - c_pos[cand]), 2 * (c_pos[cand] - hi[k]) + 1)
            j = cand[np.argmin(key)]
            avail[j] = False
            lo[k], hi[k] = min(lo[k], c_pos[j]), max(hi[k], c_pos[j])
            mm[row_of[u], r] = c[j]


def _std_partial_sort(keys: Sequence[float], middle: int) -> list[int]:
    """Emulates libstdc++ ``std::partial_sort(ind, ind + middle, ind + n, comp)`` on ind = 0..n-1 with
    ``comp(a, b) = keys[a] < keys[b]`` (``__heap_select`` then ``__sort_heap``; bits/stl_heap.h), returning the
    first ``middle`` entries. Needed only to resolve exact distance ties the way MatchIt's ``take_closest`` does."""
    a = list(range(len(keys)))

    def less(x: int, y: int) -> bool:
        return keys[x] < keys[y]

    def adjust_heap(hole: int, length: int, value: int) -> None:
        top = second = hole
        while second < (length - 1) // 2:
            second = 2 * (second + 1)
            if less(a[second], a[second - 1]):
                second -= 1
            a[hole] = a[second]
            hole = second
        if length % 2 == 0 and second == (length - 2) // 2:
            second = 2 * (second + 1)
            a[hole] = a[second - 1]
            hole = second - 1
        parent = (hole - 1) // 2 if hole > 0 else 0  # C++ truncating division
        while hole > top and less(a[parent], value):
            a[hole] = a[parent]
            hole = parent
            parent = (hole - 1) // 2 if hole > 0 else 0
        a[hole] = value

    def pop_heap(last: int, result: int) -> None:
        value = a[result]
        a[result] = a[0]
        adjust_heap(0, last, value)

    if middle >= 2:  # make_heap
        parent = (middle - 2) // 2
        while True:
            adjust_heap(parent, middle, a[parent])
            if parent == 0:
                break
            parent -= 1
    for i in range(middle, len(a)):  # heap_select
        if less(a[i], a[0]):
            pop_heap(middle, i)
    last = middle
    while last > 1:  # sort_heap
        last -= 1
        pop_heap(last, last)
    return a[:middle]


def _take_closest(ids: list[int], dists: list[float], k: int) -> list[int]:
    """MatchIt ``take_closest``: as found if at most k and already sorted; partial_sort if more than k; otherwise
    std::sort (insertion sort for n <= 16, which is stable, so Python's stable sort is the same)."""
    n = len(ids)
    if n <= 1:
        return ids
    if n <= k and not any(dists[i + 1] < dists[i] for i in range(n - 1)):
        return ids
    if n > k:
        return [ids[i] for i in _std_partial_sort(dists, k)]
    return [ids[i] for i in sorted(range(n), key=dists.__getitem__)]


def _collect_and_take(left: list[tuple[int, float, int]], right: list[tuple[int, float, int]], k: int) -> list[int]:
    """One ``find_control_vec`` call with ratio k. ``left``/``right`` are the first eligible controls within the
    caliper on each side as (control, distance, offset), nearest first. Scan order is by offset, left first on
    equal offsets; a candidate is rejected, and its side stops, when k collected ones are strictly closer; a side
    stops after k candidates."""
    events = sorted([(off, 0, i) for i, (_, _, off) in enumerate(left)]
                    + [(off, 1, i) for i, (_, _, off) in enumerate(right)])
    ids: list[int] = []
    dists: list[float] = []
    stopped = [False, False]
    taken = [0, 0]
    for _, side, i in events:
        if stopped[side]:
            continue
        cid, dist, _ = (left, right)[side][i]
        if len(ids) >= k and sum(1 for x in dists if x < dist) >= k:
            stopped[side] = True
            continue
        ids.append(cid)
        dists.append(dist)
        taken[side] += 1
        if taken[side] == k:
            stopped[side] = True
    return _take_closest(ids, dists, k)


def _all_at_once_fast(p: _Problem, units: np.ndarray, row_of: np.ndarray, mm: np.ndarray) -> None:
    """k nearest available controls per treated unit at once (MatchIt's non-reuse.max path), vectorised; rows with
    exact distance ties among their candidates go through ``_collect_and_take``."""
    if units.size == 0:
        return
    c = _sorted_controls(p)
    nc, nt, k = c.size, units.size, p.ratio
    if nc == 0:
        return
    c_pos, c_d, c_s = p.pos[c], p.distance[c], p.strata[c]
    tp, td, ts = p.pos[units], p.distance[units], p.strata[units]
    j0 = np.searchsorted(c_pos, tp) - 1
    steps = np.arange(k)

    def side(j: np.ndarray, sign: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        inside = (j >= 0) & (j < nc)
        jc = np.clip(j, 0, nc - 1)
        d = np.abs(td[:, None] - c_d[jc])
        ok = np.logical_and.accumulate(inside & (c_s[jc] == ts[:, None]) & (d <= p.width), axis=1)
        off = sign * (c_pos[jc] - tp[:, None])
        return jc, np.where(ok, d, np.inf), ok, off

    jl, dl, okl, offl = side(j0[:, None] - steps, -1)
    jr, dr, okr, offr = side(j0[:, None] + 1 + steps, 1)
    dall = np.concatenate([dl, dr], axis=1)
    jall = np.concatenate([jl, jr], axis=1)
    sd = np.sort(dall, axis=1)
    tied = (np.isfinite(sd[:, 1:]) & (sd[:, 1:] == sd[:, :-1])).any(axis=1)
    # rows without ties: the k smallest distances, ascending
    take = np.argsort(dall, axis=1, kind="stable")[:, :k]
    dsel = np.take_along_axis(dall, take, axis=1)
    jsel = np.take_along_axis(jall, take, axis=1)
    plain = ~tied
    rows_p, cols_p = np.nonzero(plain[:, None] & np.isfinite(dsel))
    mm[row_of[units[rows_p]], cols_p] = c[jsel[rows_p, cols_p]]
    for q in np.flatnonzero(tied):
        lft = [(int(jl[q, s]), float(dl[q, s]), int(offl[q, s])) for s in range(k) if okl[q, s]]
        rgt = [(int(jr[q, s]), float(dr[q, s]), int(offr[q, s])) for s in range(k) if okr[q, s]]
        chosen = _collect_and_take(lft, rgt, k)
        mm[row_of[units[q]], :len(chosen)] = c[np.asarray(chosen, dtype=np.int64)]


def _all_at_once_naive(p: _Problem, units: np.ndarray, row_of: np.ndarray, mm: np.ndarray) -> None:
    """Reference for ``_all_at_once_fast``: distances to all controls, each side's first k within the caliper by
    brute-force sorting of positions, then ``_collect_and_take`` for every row."""
    c = np.flatnonzero(~p.treat & ~p.discarded)
    c_pos, c_d, c_s = p.pos[c], p.distance[c], p.strata[c]
    k = p.ratio
    for u in units:
        d = np.abs(p.distance[u] - c_d)
        same = c_s == p.strata[u]
        sides = []
        for mask, sign in ((same & (c_pos < p.pos[u]), -1), (same & (c_pos > p.pos[u]), 1)):
            idx = np.flatnonzero(mask)
            idx = idx[np.argsort(sign * c_pos[idx])]  # nearest position first
            cut = np.flatnonzero(d[idx] > p.width)
            idx = idx[: cut[0] if cut.size else idx.size][:k]
            sides.append([(int(j), float(d[j]), int(abs(c_pos[j] - p.pos[u]))) for j in idx])
        chosen = _collect_and_take(sides[0], sides[1], k)
        if chosen:
            mm[row_of[u], :len(chosen)] = c[np.asarray(chosen, dtype=np.int64)]


def _weights_from_mm(treat: np.ndarray, treated_index: np.ndarray, mm: np.ndarray, normalize: bool) -> np.ndarray:
    """MatchIt ``weights_matrixC``: treated 1 if matched; control sum of 1/(controls of its treated unit); then
    ``normalize``: nonzero weights divided by their mean within each treatment group."""
    w = np.zeros(treat.size)
    n_c = (mm >= 0).sum(axis=1)
    has = n_c > 0
    w[treated_index[has]] = 1.0
    rows, cols = np.nonzero(mm >= 0)
    np.add.at(w, mm[rows, cols], 1.0 / n_c[rows])
    if normalize:
        for g in (treat, ~treat):
            nz = g & (w > 0)
            if nz.any():
                w[nz] /= w[nz].mean()
    return w


def _subclass(n: int, treated_index: np.ndarray, mm: np.ndarray) -> np.ndarray:
    """Pair/subclass id 1.. in treated data order (matched treated units only), shared by their controls."""
    sub = np.full(n, -1, dtype=np.int64)
    has = (mm >= 0).any(axis=1)
    ids = np.cumsum(has)
    sub[treated_index[has]] = ids[has]
    rows, cols = np.nonzero(mm >= 0)
    sub[mm[rows, cols]] = ids[rows]
    return sub


def _unmatched_reasons(p: _Problem, weights: np.ndarray, exact_used: bool) -> pd.DataFrame:
    """Reason for every unit left with weight 0."""
    n = weights.size
    reason = np.full(n, "", dtype=object)
    zero = weights == 0
    reason[zero & p.discarded] = "discarded (outside common support)"
    reason[zero & ~p.treat & ~p.discarded] = "control not selected"
    t_un = np.flatnonzero(zero & p.treat & ~p.discarded)
    if t_un.size:
        c = _sorted_controls(p)
        n_ctrl = np.bincount(p.strata[c], minlength=p.strata.max() + 1)
        empty = n_ctrl[p.strata[t_un]] == 0
        within = np.zeros(t_un.size, dtype=bool)
        if c.size:
            j0 = np.searchsorted(p.pos[c], p.pos[t_un]) - 1
            for j in (j0, j0 + 1):  # nearest controls by distance are the sorted neighbours
                inside = (j >= 0) & (j < c.size)
                jc = c[np.clip(j, 0, c.size - 1)]
                within |= inside & (p.strata[jc] == p.strata[t_un]) & \
                    (np.abs(p.distance[jc] - p.distance[t_un]) <= p.width)
        reason[t_un] = np.where(empty, "no control in exact stratum" if exact_used else "no control available",
                                np.where(within, "controls within caliper used up by earlier matches",
                                         "no control within caliper"))
    idx = np.flatnonzero(zero)
    return pd.DataFrame({"index": idx, "treated": p.treat[idx], "reason": reason[idx]})


def _match(core_rounds: Any, core_once: Any, distance: Any, treat: Any, ratio: int, caliper: float | None,
           std_caliper: bool, replace: bool, m_order: str, exact: Any, discard: str, seed: Any,
           normalize: bool) -> MatchResult:
    p, caliper_sd, width = _prepare(distance, treat, ratio, caliper, std_caliper, replace, m_order, exact,
                                    discard, seed)
    treated_index = np.flatnonzero(p.treat)
    row_of = np.full(p.treat.size, -1, dtype=np.int64)
    row_of[treated_index] = np.arange(treated_index.size)
    mm = np.full((treated_index.size, p.ratio), -1, dtype=np.int64)
    rounds_units, once_units = _split_paths(p)
    core_rounds(p, rounds_units, row_of, mm)
    core_once(p, once_units, row_of, mm)
    weights = _weights_from_mm(p.treat, treated_index, mm, normalize)
    subclass = np.full(p.treat.size, -1, dtype=np.int64) if p.replace else _subclass(p.treat.size, treated_index,
                                                                                       mm)
    settings = {"ratio": p.ratio, "caliper": caliper, "std_caliper": std_caliper, "replace": p.replace,
                "m_order": m_order, "exact": exact is not None, "discard": discard, "seed": seed,
                "normalize": normalize}
    return MatchResult(p.treat.astype(np.int8), p.distance, treated_index, mm, (mm >= 0).sum(axis=1), subclass,
                       weights, p.discarded, _unmatched_reasons(p, weights, exact is not None), caliper_sd, width,
                       settings)


def match_nearest(distance: Any, treat: Any, *, ratio: int = 1, caliper: float | None = None,
                  std_caliper: bool = True, replace: bool = False, m_order: str = "largest", exact: Any = None,
                  discard: str = "none", seed: Any = None, normalize: bool = True) -> MatchResult:
    """Greedy nearest-neighbour matching with MatchIt 4 ``method = "nearest"`` semantics (ATT; see the module
    docstring for each rule and where it comes from).

    distance: one value per unit (ps, or its logit for MatchIt's ``link = "linear.logit"``).
    treat: 0/1 or boolean. caliper: width in SD units of ``distance`` (SD over all non-discarded units, n - 1) when
    ``std_caliper``, else in raw units; the width used is ``result.caliper_width`` (SD in ``result.caliper_sd``).
    m_order: "largest" (MatchIt default with a ps), "smallest", "random" (uses ``seed``) or "data".
    exact: stratum variable(s) (vector, 2-D array or DataFrame); units match only within their stratum.
    discard: "none", "both", "control", "treated" (common support on the distance).
    normalize: MatchIt ``normalize = TRUE`` (nonzero weights have mean 1 in each group).
    """
    return _match(_rounds_fast, _all_at_once_fast, distance, treat, ratio, caliper, std_caliper, replace, m_order,
                  exact, discard, seed, normalize)


def _match_nearest_naive(distance: Any, treat: Any, *, ratio: int = 1, caliper: float | None = None,
                         std_caliper: bool = True, replace: bool = False, m_order: str = "largest",
                         exact: Any = None, discard: str = "none", seed: Any = None,
                         normalize: bool = True) -> MatchResult:
    """All-pairs reference implementation of ``match_nearest`` (O(n_treated x n_control)); tests and benchmark."""
    return _match(_rounds_naive, _all_at_once_naive, distance, treat, ratio, caliper, std_caliper, replace, m_order,
                  exact, discard, seed, normalize)


# ----------------------------------------------------------------------------------------------------------------
# Weighting
# ----------------------------------------------------------------------------------------------------------------

def _check_ps(ps: Any, treat: Any) -> tuple[np.ndarray, np.ndarray]:
    e = np.asarray(ps, dtype=float)
    t = _as_treat(treat)
    if e.shape != t.shape:
        raise ValueError(f"ps has {e.size} values but treat has {t.size}")
    if not np.isfinite(e).all():
        raise ValueError("ps has missing or non-finite values")
    if ((e <= 0) | (e >= 1)).any():
        raise ValueError("ps must lie strictly between 0 and 1 (a ps of 0 or 1 gives an infinite weight)")
    return e, t


def _trim(w: np.ndarray, t: np.ndarray, at: float) -> np.ndarray:
    """WeightIt ``trim(w, at, treat = t)``: weights above the ``max(at, 1 - at)`` quantile (R type 3) of the
    weights to be trimmed are set to that quantile; a group whose weights are all equal (e.g. the treated under
    the ATT) is left out."""
    if not 0 < at < 1:
        raise ValueError(f"trim must be a quantile strictly between 0 and 1, got {at!r}")
    at = max(at, 1 - at)
    groups_same = [g for g in (t, ~t) if g.any() and np.all(w[g] == w[g][0])]
    to_trim = np.ones(w.size, dtype=bool)
    for g in groups_same:
        to_trim &= ~g
    if not to_trim.any():
        return w
    q = np.quantile(w[to_trim], at, method="closest_observation")
    out = w.copy()
    out[to_trim & (w > q)] = q
    return out


def iptw_weights(ps: Any, treat: Any, estimand: str = "ATE", stabilize: bool = True,
                 trim: float | None = None) -> np.ndarray:
    """Inverse probability of treatment weights, WeightIt ``get_w_from_ps``:
    ATE: 1/e for treated, 1/(1-e) for controls; ATT: 1 for treated, e/(1-e) for controls; ATC: (1-e)/e for
    treated, 1 for controls. ``stabilize`` (WeightIt ``stabilize_w``) multiplies each weight by the proportion of
    units in the unit's own treatment group. ``trim`` (WeightIt ``trim``): quantile in (0, 1) at which the large
    weights are winsorised, applied after stabilisation, groups with constant weights untouched."""
    e, t = _check_ps(ps, treat)
    estimand = estimand.upper()
    if estimand == "ATE":
        w = np.where(t, 1 / e, 1 / (1 - e))
    elif estimand == "ATT":
        w = np.where(t, 1.0, e / (1 - e))
    elif estimand == "ATC":
        w = np.where(t, (1 - e) / e, 1.0)
    else:
        raise ValueError(f"estimand must be 'ATE', 'ATT' or 'ATC', got {estimand!r}")
    if stabilize:
        w = w * np.where(t, t.mean(), 1 - t.mean())
    if trim is not None:
        w = _trim(w, t, trim)
    return w


def overlap_weights(ps: Any, treat: Any) -> np.ndarray:
    """Overlap (ATO) weights, WeightIt ``estimand = "ATO"`` (Li, Morgan & Zaslavsky 2018): 1 - e for treated,
    e for controls (= (1/e_received) / (1/e + 1/(1-e)))."""
    e, t = _check_ps(ps, treat)
    return np.where(t, 1 - e, e)


# ----------------------------------------------------------------------------------------------------------------
# Orchestration: the study's matching and weighting from the params' ``matching:`` section
# ----------------------------------------------------------------------------------------------------------------

MATCHED_FILE = "data/matched.parquet"  # read by the survival, response and safety notebooks: keep name and columns
WEIGHTS_FILE = "data/weights.parquet"
SPEC_KEYS = ("covariates", "categorical", "missing", "distance", "caliper", "std_caliper", "ratio", "replace",
             "m_order", "exact", "discard", "estimand", "smd_threshold", "weighting")
DISTANCES = ("logit", "ps")
VAR_RATIO_BOUNDS = (0.5, 2.0)  # acceptable variance ratio for continuous covariates (Austin 2009; clinical-rules §6)
WEIGHTINGS = {  # name -> (label, estimand of the weights, estimand whose SMD denominator is used: cobalt)
    "iptw_ate": ("IPTW (ATE)", "ATE", "ATE"),
    "iptw_att": ("IPTW (ATT)", "ATT", "ATT"),
    "overlap": ("Overlap weights (ATO)", "ATO", "ATE"),
}
SMD_DENOMINATOR_TEXT = {"ATT": "SD of the treated group", "ATC": "SD of the control group",
                        "ATE": "pooled SD sqrt((s_t^2 + s_c^2) / 2)"}


@dataclass
class MatchingOutput:
    """Everything ``run_matching`` builds. ``matched`` and ``weights`` are the files the outcome notebooks read
    (data/matched.parquet, data/weights.parquet); the tables are ready to display or write."""

    spec: dict[str, Any]
    propensity: PropensityResult
    match: MatchResult | None
    data: pd.DataFrame
    matched: pd.DataFrame
    weights: pd.DataFrame
    unmatched: pd.DataFrame
    counts: pd.DataFrame
    balance_matched: pd.DataFrame
    balance_weighted: pd.DataFrame
    ess: pd.DataFrame
    table1_before: pd.DataFrame
    table1_matched: pd.DataFrame
    table1_iptw: pd.DataFrame
    report: pd.DataFrame
    summary: dict[str, Any]
    problems: list[str] = field(default_factory=list)

    def love_data(self) -> pd.DataFrame:
        """Tidy |SMD| per term and sample for ``figures.love_plot``: unadjusted and matched (matching estimand's
        denominator), then each weighting with its own estimand's denominator (cobalt). Terms are readable labels
        (``tables.term_label``)."""
        from analysis_utils.reporting.tables import term_label

        parts = []
        b = self.balance_matched
        if not b.empty:
            parts.append(pd.DataFrame({"term": b["term"], "sample": "Unadjusted", "smd": b["smd_un"].abs()}))
            if "smd_adj" in b.columns:
                parts.append(pd.DataFrame({"term": b["term"], "sample": "Matched", "smd": b["smd_adj"].abs()}))
        bw = self.balance_weighted
        if not bw.empty:
            for name, (label, _, _) in WEIGHTINGS.items():
                sub = bw[bw["weighting"] == name]
                parts.append(pd.DataFrame({"term": sub["term"], "sample": label, "smd": sub["smd_adj"].abs()}))
        if not parts:
            return pd.DataFrame(columns=["term", "sample", "smd"])
        out = pd.concat(parts, ignore_index=True)
        names = {r.term: term_label(r.variable, r.level) for r in pd.concat([b, bw]).itertuples()}
        return out.assign(term=out["term"].map(names))


def check_matching_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Validate the params' ``matching:`` section (clear ValueError naming the key); returns a normalised copy
    with the optional ``table1`` mapping filled: ``extra`` (Table 1 variables beyond the covariates),
    ``categorical`` (extra variables to show as n (%)), ``nonnormal`` (shown as median [Q1, Q3])."""
    missing = [k for k in SPEC_KEYS if k not in spec]
    if missing:
        raise ValueError(f"matching spec: key(s) missing: {missing}")
    s = dict(spec)
    for key in ("covariates", "categorical", "exact"):
        if s[key] is None:
            s[key] = []
        if not isinstance(s[key], (list, tuple)):
            raise ValueError(f"matching spec: {key!r} must be a list, got {s[key]!r}")
        s[key] = list(s[key])
    if not s["covariates"]:
        raise ValueError("matching spec: 'covariates' is empty")
    if s["distance"] not in DISTANCES:
        raise ValueError(f"matching spec: distance must be one of {DISTANCES}, got {s['distance']!r}")
    if str(s["estimand"]).upper() not in SMD_DENOMINATOR_TEXT:
        raise ValueError(f"matching spec: estimand must be 'ATT', 'ATC' or 'ATE', got {s['estimand']!r}")
    s["estimand"] = str(s["estimand"]).upper()
    if s["m_order"] not in M_ORDERS:
        raise ValueError(f"matching spec: m_order must be one of {M_ORDERS}, got {s['m_order']!r}")
    if s["discard"] not in DISCARDS:
        raise ValueError(f"matching spec: discard must be one of {DISCARDS}, got {s['discard']!r}")
    if not isinstance(s["weighting"], dict) or not {"stabilize", "trim_quantile"} <= set(s["weighting"]):
        raise ValueError("matching spec: 'weighting' must hold 'stabilize' and 'trim_quantile'")
    t1 = s.get("table1") or {}
    if not isinstance(t1, dict) or set(t1) - {"extra", "categorical", "nonnormal"}:
        raise ValueError("matching spec: 'table1' must be a mapping with keys among extra, categorical, nonnormal")
    s["table1"] = {k: list(t1.get(k) or []) for k in ("extra", "categorical", "nonnormal")}
    return s


def _balance_frame(used: pd.DataFrame, covariates: list[str], design: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Covariates as modelled (booleans as 0/1) plus the model's missingness indicators ``<col>_missing`` (cobalt
    shows them as covariates), so the balance tables check every column of the propensity model."""
    frame = pd.DataFrame(index=used.index)
    terms = []
    for col in covariates:
        x = used[col]
        frame[col] = x.astype(float) if pd.api.types.is_bool_dtype(x) else x
        terms.append(col)
        ind = f"{col}_missing"
        if ind in design.columns:
            frame[ind] = design[ind].to_numpy(dtype=float)
            terms.append(ind)
    return frame, terms


def _safe_ps(ps: np.ndarray) -> tuple[np.ndarray, int]:
    """ps for the weight formulas: values numerically 0 or 1 (separation) are moved to PS_BOUNDARY / 1 -
    PS_BOUNDARY so that weights stay finite; returns the count moved (reported)."""
    clipped = np.clip(ps, PS_BOUNDARY, 1 - PS_BOUNDARY)
    return clipped, int((clipped != ps).sum())


def _weights(ps: np.ndarray, t: np.ndarray, spec: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """IPTW ATE (stabilised and trimmed as the params say; WeightIt), IPTW ATT (odds weights, neither stabilised
    nor trimmed), overlap weights."""
    wspec = spec["weighting"]
    stab, trim = bool(wspec["stabilize"]), wspec["trim_quantile"]
    untrimmed = iptw_weights(ps, t, "ATE", stabilize=stab)
    ate = iptw_weights(ps, t, "ATE", stabilize=stab, trim=trim) if trim is not None else untrimmed
    info = {"n_trimmed": int((ate < untrimmed).sum()),
            "trim_value": float(ate[ate < untrimmed].max()) if (ate < untrimmed).any() else None}
    return {"iptw_ate": ate, "iptw_att": iptw_weights(ps, t, "ATT", stabilize=False),
            "overlap": overlap_weights(ps, t)}, info


def _fmt(x: Any, digits: int = 3) -> str:
    """Number for the report: '—' if missing, 'inf' for an infinite SMD (a group without variance)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return "inf" if isinstance(x, float) and math.isinf(x) else f"{x:.{digits}f}"


def _finite_or_none(x: Any) -> Any:
    """JSON-safe number for results.json: NaN and infinities become None (the report keeps 'inf')."""
    return None if isinstance(x, float) and not math.isfinite(x) else x


def _vr_outside(table: pd.DataFrame, col: str) -> list[str]:
    lo, hi = VAR_RATIO_BOUNDS
    vr = table.loc[table["type"] == "continuous", ["term", col]] if col in table.columns else pd.DataFrame()
    return [] if vr.empty else vr.loc[(vr[col] < lo) | (vr[col] > hi), "term"].tolist()


def _table1_variables(cohort: pd.DataFrame, spec: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Table 1 rows: the requested covariates (also those dropped from the ps model as constant), then
    ``table1.extra``; variables entirely missing are left out. Returns them and which are categorical."""
    extra = [c for c in spec["table1"]["extra"] if c in cohort.columns and c not in spec["covariates"]]
    variables = [c for c in spec["covariates"] + extra if cohort[c].notna().any()]
    cats = set(spec["categorical"]) | set(spec["table1"]["categorical"])
    return variables, [c for c in variables if c in cats]


def _check_cohort(cohort: pd.DataFrame, arm_col: str, id_col: str, treated_arm: str, control_arm: str) -> None:
    for col in (arm_col, id_col):
        if col not in cohort.columns:
            raise ValueError(f"run_matching: column {col!r} not in the cohort")
    other = sorted(set(cohort[arm_col].dropna().unique()) - {treated_arm, control_arm})
    if other:
        raise ValueError(f"run_matching: column {arm_col!r} has values other than {treated_arm!r} and "
                         f"{control_arm!r}: {other}")


def _match_step(s: dict[str, Any], used: pd.DataFrame, t: np.ndarray, prop: PropensityResult, seed: Any,
                problems: list[str]) -> MatchResult | None:
    """``match_nearest`` with the spec's settings on the logit (linear predictor) or the ps; a data problem that
    stops matching (e.g. missing values in an exact variable) is reported, not raised."""
    ps = prop.ps.to_numpy(dtype=float)
    if not np.isfinite(ps).all():
        problems.append("propensity score not estimated: no matching or weighting")
        return None
    distance = prop.linear_predictor.to_numpy(dtype=float) if s["distance"] == "logit" else ps
    try:
        return match_nearest(distance, t, ratio=s["ratio"], caliper=s["caliper"], std_caliper=s["std_caliper"],
                             replace=s["replace"], m_order=s["m_order"],
                             exact=used[s["exact"]] if s["exact"] else None, discard=s["discard"], seed=seed)
    except ValueError as exc:
        problems.append(f"matching not done: {exc}")
        return None


def _weights_step(s: dict[str, Any], used: pd.DataFrame, t: np.ndarray, prop: PropensityResult, id_col: str,
                  arm_col: str, problems: list[str]) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict[str, Any]]:
    """The weights file (id, arm, ps, logit_ps, one column per weighting; NaN weights when the ps is missing),
    the weight vectors and the trimming / clipping counts."""
    ps = prop.ps.to_numpy(dtype=float)
    wts = pd.DataFrame({id_col: used[id_col].to_numpy(), arm_col: used[arm_col].to_numpy(), "ps": ps,
                        "logit_ps": prop.linear_predictor.to_numpy(dtype=float)})
    info: dict[str, Any] = {"n_trimmed": 0, "trim_value": None, "n_clipped": 0}
    w: dict[str, np.ndarray] = {}
    if np.isfinite(ps).all():
        ps_w, info["n_clipped"] = _safe_ps(ps)
        if info["n_clipped"]:
            problems.append(f"{info['n_clipped']} propensity score(s) numerically 0 or 1 set to {PS_BOUNDARY:g} / "
                            f"1 - {PS_BOUNDARY:g} for the weights")
        w, trim = _weights(ps_w, t, s)
        info.update(trim)
    for name in WEIGHTINGS:
        wts[f"w_{name}"] = w.get(name, np.full(len(used), np.nan))
    return wts, w, info


def _matched_frames(match: MatchResult | None, data: pd.DataFrame, used: pd.DataFrame, prop: PropensityResult,
                    id_col: str, arm_col: str, problems: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The matched file (id, subclass, match_weight; subclass is nullable only with replacement, where MatchIt gives
    none) and every unit left out with its reason (unmatched, or not in the ps model)."""
    ids, arms = used[id_col].to_numpy(), used[arm_col].to_numpy()
    if match is None:
        matched = pd.DataFrame({id_col: pd.Series(dtype=object), "subclass": pd.Series(dtype="Int64"),
                                "match_weight": pd.Series(dtype=float)})
        unmatched = pd.DataFrame({id_col: ids, arm_col: arms, "reason": "matching not done"})
    else:
        sel = match.weights > 0
        sub = match.subclass[sel]
        subclass: Any = sub
        if (sub <= 0).any():
            subclass = pd.array(np.where(sub > 0, sub, 0), dtype="Int64")
            subclass[sub <= 0] = pd.NA
        matched = pd.DataFrame({id_col: ids[sel], "subclass": subclass, "match_weight": match.weights[sel]})
        um = match.unmatched
        idx = um["index"].to_numpy()
        unmatched = pd.DataFrame({id_col: ids[idx], arm_col: arms[idx], "reason": um["reason"].to_numpy()})
        if um["treated"].any():
            problems.append(f"{int(um['treated'].sum())} treated unit(s) left unmatched (see the matching report)")
        if not sel.any():
            problems.append("no treated unit could be matched: the matched cohort is empty")
    rows = prop.dropped_rows["row"].to_numpy()
    if rows.size:
        unmatched = pd.concat([unmatched, pd.DataFrame({
            id_col: data.loc[rows, id_col].to_numpy(), arm_col: data.loc[rows, arm_col].to_numpy(),
            "reason": "not in the propensity model: " + prop.dropped_rows["reason"].astype(str)})], ignore_index=True)
    return matched, unmatched


def _balance_step(s: dict[str, Any], used: pd.DataFrame, kept: list[str], prop: PropensityResult, t: np.ndarray,
                  mw: np.ndarray | None, w: dict[str, np.ndarray]) -> tuple[pd.DataFrame, pd.DataFrame, Any, dict]:
    """Balance of the matched sample (denominator of ``spec["estimand"]``) and of each weighting (its own
    estimand's denominator, as cobalt), with their summaries at ``smd_threshold``."""
    from analysis_utils.stats import balance

    frame, terms = _balance_frame(used, kept, prop.design)
    if not terms:
        return (pd.DataFrame(columns=["term", "variable", "level", "type", "smd_un"]),
                pd.DataFrame(columns=["weighting", "term"]), None, {})
    cats = [c for c in s["categorical"] if c in kept]
    thr = float(s["smd_threshold"])
    bal_m = balance.balance_table(frame, t, terms, weights=mw, estimand=s["estimand"], categorical=cats)
    parts, sums = [], {}
    for name, (_, w_est, denom_est) in WEIGHTINGS.items():
        if name in w:
            b = balance.balance_table(frame, t, terms, weights=w[name], estimand=denom_est, categorical=cats)
            sums[name] = balance.balance_summary(b, thr)
            parts.append(b.assign(weighting=name, weights_estimand=w_est))
    bal_w = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["weighting", "term"])
    if parts:
        bal_w = bal_w[["weighting", "weights_estimand"] + [c for c in bal_w.columns
                                                           if c not in ("weighting", "weights_estimand")]]
    return bal_m, bal_w, balance.balance_summary(bal_m, thr), sums


def _ess_table(t: np.ndarray, mw: np.ndarray | None, w: dict[str, np.ndarray], treated_arm: str,
               control_arm: str) -> pd.DataFrame:
    """Kish ESS per arm for the unadjusted sample, the matched sample and each weighting (MatchIt/cobalt)."""
    from analysis_utils.stats.balance import effective_sample_size

    samples = [("Unadjusted", np.ones(t.size))] + ([("Matched", mw)] if mw is not None else []) + \
        [(WEIGHTINGS[n][0], w[n]) for n in WEIGHTINGS if n in w]
    return pd.DataFrame([{"sample": label, "group": g, "n": int(m.sum()), "n_nonzero": int((wv[m] > 0).sum()),
                          "ess": effective_sample_size(wv[m])}
                         for label, wv in samples for g, m in ((treated_arm, t), (control_arm, ~t))])


def _table_ones(s: dict[str, Any], data: pd.DataFrame, used: pd.DataFrame, t: np.ndarray, mw: np.ndarray | None,
                w: dict[str, np.ndarray], arm_col: str, order: list[str]
                ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Table 1 of the whole cohort and of the matched sample (tableone; the weighted version when k:1 or
    replacement makes the matching weights differ from 1), and the IPTW (ATE) weighted Table 1."""
    from analysis_utils.reporting import tables

    variables, cats = _table1_variables(data, s)
    non = s["table1"]["nonnormal"]
    before = tables.table_one(data, arm_col, variables, cats, non, group_order=order)
    matched = pd.DataFrame()
    if mw is not None and (mw[t] > 0).any() and (mw[~t] > 0).any():
        if np.allclose(mw[mw > 0], 1.0):
            matched = tables.table_one(used.loc[mw > 0], arm_col, variables, cats, non, group_order=order)
        else:
            matched = tables.table_one_weighted(used, arm_col, variables, mw, cats, group_order=order,
                                                estimand=s["estimand"], nonnormal=non)
    iptw = (tables.table_one_weighted(used, arm_col, variables, w["iptw_ate"], cats, group_order=order,
                                      estimand="ATE", nonnormal=non) if "iptw_ate" in w else pd.DataFrame())
    return before, matched, iptw


def _counts(match: MatchResult | None, t: np.ndarray, treated_arm: str, control_arm: str) -> pd.DataFrame:
    """MatchIt's sample-size table (All, Matched, Unmatched, Discarded) with the arms as columns."""
    counts = (match.counts() if match is not None else
              pd.DataFrame({"Control": [int((~t).sum()), 0, int((~t).sum()), 0],
                            "Treated": [int(t.sum()), 0, int(t.sum()), 0]},
                           index=["All", "Matched", "Unmatched", "Discarded"]))
    return counts.rename(columns={"Control": control_arm, "Treated": treated_arm})[[treated_arm, control_arm]]


def _summary(s: dict[str, Any], data: pd.DataFrame, t: np.ndarray, prop: PropensityResult, kept: list[str],
             match: MatchResult | None, matched: pd.DataFrame, counts: pd.DataFrame, bal_m: pd.DataFrame,
             sum_m: Any, sum_w: dict, ess: pd.DataFrame, info: dict[str, Any], problems: list[str],
             treated_arm: str, control_arm: str) -> dict[str, Any]:
    """The key numbers for results.json (flat snake_case keys)."""
    def ess_of(label: str, g: str) -> float | None:
        r = ess[(ess["sample"] == label) & (ess["group"] == g)]
        return float(r["ess"].iloc[0]) if len(r) else None

    after = sum_m is not None and match is not None and "smd_adj" in bal_m.columns
    failing = sum_m.failing if after else []
    above = sorted({str(v) for v in bal_m.loc[bal_m["term"].isin(failing), "variable"]})
    n_t, n_c = int(t.sum()), int((~t).sum())
    m_t, m_c = int(counts.loc["Matched", treated_arm]), int(counts.loc["Matched", control_arm])
    return {
        "treated_arm": treated_arm, "control_arm": control_arm, "n_cohort": int(len(data)),
        "n_ps_model": int(t.size), "n_excluded_from_ps_model": int(len(prop.dropped_rows)),
        "n_treated_before": n_t, "n_control_before": n_c, "n_treated_matched": m_t, "n_control_matched": m_c,
        "n_treated_unmatched": n_t - m_t, "n_control_unmatched": n_c - m_c,
        "n_pairs": int(matched["subclass"].nunique()),
        "distance": s["distance"], "m_order": s["m_order"], "ratio": s["ratio"], "replace": bool(s["replace"]),
        "caliper_sd_units": float(s["caliper"]) if s["caliper"] is not None and s["std_caliper"] else None,
        "caliper_raw": match.caliper_width if match is not None else None,
        "caliper_distance_sd": match.caliper_sd if match is not None else None,
        "estimand": s["estimand"], "smd_threshold": float(s["smd_threshold"]),
        "max_abs_smd_before": sum_m.max_abs_smd_un if sum_m is not None else None,
        "max_abs_smd_matched": sum_m.max_abs_smd_adj if after else None,
        **{f"max_abs_smd_{n}": (sum_w[n].max_abs_smd_adj if n in sum_w else None) for n in WEIGHTINGS},
        "ess_matched_treated": ess_of("Matched", treated_arm), "ess_matched_control": ess_of("Matched", control_arm),
        **{f"ess_{n}_{side}": ess_of(WEIGHTINGS[n][0], g) for n in WEIGHTINGS
           for side, g in (("treated", treated_arm), ("control", control_arm))},
        "iptw_ate_n_trimmed": info["n_trimmed"], "iptw_ate_trim_value": info["trim_value"],
        "n_ps_clipped": info["n_clipped"],
        "terms_above_threshold_matched": failing, "n_terms_above_threshold_matched": len(failing),
        "covariates_above_threshold_matched": above, "n_covariates_above_threshold_matched": len(above),
        "covariates": kept, "covariates_dropped": list(prop.dropped_covariates),
        "balanced": bool(sum_m.balanced) if after else False,
        "ps_model_converged": bool(prop.converged), "n_problems": len(problems),
    }


def run_matching(cohort: pd.DataFrame, spec: dict[str, Any], *, arm_col: str = "arm",
                 treated_arm: str = "HAIC-TKIs-P", control_arm: str = "TKIs-P", id_col: str = "study_id",
                 seed: Any = None) -> MatchingOutput:
    """The study's propensity-score analysis from the params' ``matching:`` section, MatchIt/WeightIt semantics:

    1. ps by unpenalised logistic regression (``estimate_propensity``; covariates, factors and missing-data
       strategy from ``spec``); constant or empty covariates are dropped and reported; separation is reported.
    2. ``match_nearest`` on ``spec["distance"]`` ("logit": the linear predictor, MatchIt ``link = "linear.logit"``;
       "ps": the score), ATT (treated units matched), with ``caliper``/``std_caliper``/``ratio``/``replace``/
       ``m_order``/``exact``/``discard``; ``seed`` only matters for ``m_order = "random"``.
    3. Weights: IPTW ATE (stabilised and trimmed per ``spec["weighting"]``), IPTW ATT, overlap (WeightIt).
    4. Balance (``balance.balance_table``, binary covariates standardised as MatchIt): matched sample with the
       denominator of ``spec["estimand"]``, each weighting with its own estimand's denominator (cobalt: ATE and
       ATO pooled, ATT treated); ESS; Table 1 before, after matching and IPTW-weighted; the matching report.
    Data problems (dropped covariates, separation, unmatched treated units, a failed fit) go to ``problems`` and
    the report instead of raising. ``matched``: study_id, subclass, match_weight of the matched units;
    ``weights``: study_id, arm, ps, logit_ps, w_iptw_ate, w_iptw_att, w_overlap of every unit in the ps model.
    """
    s = check_matching_spec(spec)
    _check_cohort(cohort, arm_col, id_col, treated_arm, control_arm)
    data = cohort.reset_index(drop=True)
    prop = estimate_propensity(data, arm_col, s["covariates"], categorical=s["categorical"], missing=s["missing"],
                               treated_value=treated_arm)
    problems = list(prop.problems)
    kept = [c for c in s["covariates"] if c not in prop.dropped_covariates]
    if not kept:
        problems.append("no covariate left in the propensity model: intercept-only model, every unit has the same "
                        "score, so matching only follows data order and adjusts for nothing")
    used = data.loc[prop.ps.index]
    t = prop.treatment.to_numpy() == 1

    match = _match_step(s, used, t, prop, seed, problems)
    wts, w, info = _weights_step(s, used, t, prop, id_col, arm_col, problems)
    matched, unmatched = _matched_frames(match, data, used, prop, id_col, arm_col, problems)
    mw = match.weights if match is not None else None
    bal_m, bal_w, sum_m, sum_w = _balance_step(s, used, kept, prop, t, mw, w)
    ess = _ess_table(t, mw, w, treated_arm, control_arm)
    t1_before, t1_matched, t1_iptw = _table_ones(s, data, used, t, mw, w, arm_col, [treated_arm, control_arm])
    counts = _counts(match, t, treated_arm, control_arm)
    summary = _summary(s, data, t, prop, kept, match, matched, counts, bal_m, sum_m, sum_w, ess, info, problems,
                       treated_arm, control_arm)
    report = _matching_report(s, prop, match, summary, counts, unmatched, bal_m, sum_m, sum_w, ess, problems,
                              treated_arm, control_arm, arm_col)
    summary = {k: _finite_or_none(v) for k, v in summary.items()}
    return MatchingOutput(s, prop, match, used.assign(treat=t.astype(int)), matched, wts, unmatched, counts, bal_m,
                          bal_w, ess, t1_before, t1_matched, t1_iptw, report, summary, problems)


def _matching_report(s: dict[str, Any], prop: PropensityResult, match: MatchResult | None, summary: dict[str, Any],
                     counts: pd.DataFrame, unmatched: pd.DataFrame, bal: pd.DataFrame, sum_m: Any,
                     sum_w: dict[str, Any], ess: pd.DataFrame, problems: list[str], treated_arm: str,
                     control_arm: str, arm_col: str) -> pd.DataFrame:
    """The PSM report items of Yao et al. (JNCI 2017) and clinical-rules §6 as rows (section, item, value)."""
    rows: list[tuple[str, str, str]] = []

    def add(section: str, item: str, value: Any) -> None:
        rows.append((section, item, str(value)))

    sec = "Propensity model"
    add(sec, "Model", "logistic regression of arm on baseline covariates (unpenalised GLM, logit link; R glm, "
                      "MatchIt distance = 'glm')")
    add(sec, "Covariates requested", ", ".join(s["covariates"]))
    add(sec, "Covariates used", ", ".join(summary["covariates"]) or "none (intercept-only model)")
    add(sec, "Covariates dropped", "; ".join(f"{c}: {why}" for c, why in prop.dropped_covariates.items()) or "none")
    add(sec, "Missing data", {"indicator": "missing-indicator method (median / mode fill + <covariate>_missing "
                                           "indicator in the model)",
                              "complete_case": "complete cases only"}[s["missing"]])
    add(sec, "Units in the model", f"{summary['n_ps_model']} of {summary['n_cohort']} "
                                   f"({summary['n_treated_before']} {treated_arm}, "
                                   f"{summary['n_control_before']} {control_arm})")
    add(sec, "Model converged", "yes" if prop.converged else "no")
    sec = "Matching"
    add(sec, "Method", f"greedy nearest neighbour {s['ratio']}:1 {'with' if s['replace'] else 'without'} "
                       f"replacement (MatchIt method = 'nearest', estimand ATT)")
    add(sec, "Distance", "logit of the propensity score (MatchIt link = 'linear.logit')" if s["distance"] == "logit"
        else "propensity score")
    add(sec, "Matching order", f"{s['m_order']} distance first (MatchIt m.order = '{s['m_order']}')")
    if s["caliper"] is None:
        add(sec, "Caliper", "none")
    elif s["std_caliper"]:
        add(sec, "Caliper", f"{s['caliper']} SD of the distance = {_fmt(summary['caliper_raw'], 4)} raw units "
                            f"(SD {_fmt(summary['caliper_distance_sd'], 4)}, n - 1, all non-discarded units pooled)")
    else:
        add(sec, "Caliper", f"{s['caliper']} raw units of the distance")
    add(sec, "Exact matching on", ", ".join(s["exact"]) or "none")
    add(sec, "Common-support discard", s["discard"])
    sec = "Sample sizes"
    for g in (treated_arm, control_arm):
        c = counts[g]
        add(sec, g, f"{c['All']} before, {c['Matched']} matched, {c['Unmatched']} unmatched, "
                    f"{c['Discarded']} discarded")
    add(sec, "Matched pairs (subclasses)", "none: with replacement MatchIt gives no subclasses" if s["replace"]
        else summary["n_pairs"])
    sec = "Unmatched units"
    if len(unmatched):
        why_short = unmatched["reason"].where(~unmatched["reason"].str.startswith("not in the propensity model: "),
                                              "not in the propensity model (complete case: missing covariate values)")
        for (g, why), n in unmatched.assign(reason=why_short).groupby([arm_col, "reason"]).size().items():
            add(sec, f"{g}: {why}", n)
    else:
        add(sec, "All units matched", "yes")
    sec = "Balance after matching"
    add(sec, "SMD", f"(mean treated - mean control) / {SMD_DENOMINATOR_TEXT[s['estimand']]} in the unmatched "
                    f"sample (estimand {s['estimand']}; MatchIt); binary covariates standardised")
    add(sec, "Max |SMD| before", _fmt(summary["max_abs_smd_before"]))
    add(sec, "Max |SMD| after matching", _fmt(summary["max_abs_smd_matched"]))
    add(sec, f"Terms with |SMD| > {summary['smd_threshold']}", ", ".join(summary["terms_above_threshold_matched"])
        or "none")
    if sum_m is not None and sum_m.not_computed:
        add(sec, "Terms whose SMD could not be computed", ", ".join(sum_m.not_computed))
    if "var_ratio_adj" in bal.columns:
        add(sec, f"Continuous covariates with variance ratio outside {VAR_RATIO_BOUNDS[0]}–{VAR_RATIO_BOUNDS[1]}",
            ", ".join(_vr_outside(bal, "var_ratio_adj")) or "none")
    add(sec, "Balanced", "yes" if summary["balanced"] else "no")
    sec = "Weighting"
    wspec = s["weighting"]
    for name, (label, w_est, denom_est) in WEIGHTINGS.items():
        if name not in sum_w:
            add(sec, label, "not computed")
            continue
        how = {"iptw_ate": f"1/ps, 1/(1-ps){', stabilised' if wspec['stabilize'] else ''}"
                           + (f", trimmed at the {wspec['trim_quantile']} quantile "
                              f"({summary['iptw_ate_n_trimmed']} weight(s) set to "
                              f"{_fmt(summary['iptw_ate_trim_value'])})" if wspec["trim_quantile"] is not None
                              else ""),
               "iptw_att": "treated 1, controls ps/(1-ps); not stabilised, not trimmed",
               "overlap": "treated 1-ps, controls ps"}[name]
        e_t = ess[(ess["sample"] == label) & (ess["group"] == treated_arm)]["ess"].iloc[0]
        e_c = ess[(ess["sample"] == label) & (ess["group"] == control_arm)]["ess"].iloc[0]
        add(sec, label, f"{how}; max |SMD| {_fmt(sum_w[name].max_abs_smd_adj)} ({SMD_DENOMINATOR_TEXT[denom_est]}); "
                        f"ESS {e_t:.1f} {treated_arm}, {e_c:.1f} {control_arm}; terms above threshold: "
                        f"{', '.join(sum_w[name].failing) or 'none'}")
    for p in problems:
        add("Notes and problems", "Note", p)
    return pd.DataFrame(rows, columns=["section", "item", "value"])


def write_matching_data(output: MatchingOutput, out_dir: Any) -> dict[str, str]:
    """Write ``data/matched.parquet`` (study_id, subclass, match_weight; matched units) and ``data/weights.parquet``
    (study_id, arm, ps, logit_ps, w_iptw_ate, w_iptw_att, w_overlap) under ``out_dir``; returns the paths."""
    from pathlib import Path

    paths = {}
    for rel, frame in ((MATCHED_FILE, output.matched), (WEIGHTS_FILE, output.weights)):
        path = Path(out_dir) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
        paths[rel.split("/")[-1].split(".")[0]] = rel
    return paths
