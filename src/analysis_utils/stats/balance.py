"""Covariate balance diagnostics as MatchIt's ``summary.matchit`` (``bal1var``, ``wvar``, ``qqsum``) and cobalt's
``bal.tab`` / ``col_w_*`` compute them.

- Means: weighted means ``sum(w x) / sum(w)`` in each group (weights = 1 before adjustment; matching or IPT
  weights after). Units with weight 0 (unmatched) drop out.
- SMD = (mean_treated - mean_control) / s, where s is ALWAYS computed in the unadjusted (full) sample, so the
  before and after SMDs share one denominator (MatchIt ``smd_denom``; cobalt ``col_w_smd``):
  ATT -> SD of the treated ("treated"), ATC -> SD of the controls ("control"),
  ATE -> sqrt((var_treated + var_control) / 2) ("pooled").
  If s is not finite or below sqrt(machine eps), MatchIt falls back to the pooled within-group SD with
  proportional contribution; a mean difference below sqrt(eps) is reported as the raw difference (~0).
- Variances (MatchIt ``wvar``, cobalt ``col.w.v``): continuous: with w normalised to sum 1,
  ``sum(w (x - m)^2) / (1 - sum(w^2))`` (reliability weights, = sample variance with n - 1 when w is constant);
  binary: ``p (1 - p)`` with p the (weighted) proportion, no n - 1 correction.
- Binary covariates: MatchIt standardises them too (``binary="std"``, the default here); cobalt's ``bal.tab``
  reports the raw difference in proportions by default (``binary="raw"``). A variable is binary when every value
  is 0 or 1 (MatchIt ``all(x == 0 | x == 1)``); each level of a categorical covariate becomes a 0/1 dummy.
- Variance ratio (continuous only): weighted var treated / weighted var control.
- eCDF (MatchIt ``qqsum(standardize = TRUE)``): weights normalised to sum 1 within each group, eCDF difference
  evaluated at each distinct value; mean and max of |F_treated - F_control| (max = weighted KS statistic, as
  cobalt's ``col_w_ks``). For binary variables both equal |difference in proportions|.
- Too few units: when both groups have fewer than 2 nonzero weights, SMD (unless the mean difference is ~0),
  variance ratio and eCDF statistics are NaN (MatchIt ``too.small``).
- Effective sample size (Kish): (sum w)^2 / sum(w^2) in each group.
Missing covariate values are left out of that covariate's statistics (cobalt ``na.rm = TRUE``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = ["weighted_mean", "weighted_var", "ecdf_diffs", "smd_denominator", "effective_sample_size",
           "sample_sizes", "balance_table", "balance_summary", "BalanceSummary"]

SQRT_EPS = float(np.sqrt(np.finfo(float).eps))
DENOM_BY_ESTIMAND = {"ATT": "treated", "ATC": "control", "ATE": "pooled"}


def weighted_mean(x: np.ndarray, w: np.ndarray) -> float:
    """sum(w x) / sum(w) (MatchIt ``wm``); NaN if the weights sum to 0."""
    sw = w.sum()
    return float((w * x).sum() / sw) if sw > 0 else float("nan")


def weighted_var(x: np.ndarray, w: np.ndarray, binary: bool) -> float:
    """MatchIt ``wvar`` / cobalt ``col.w.v``: binary p(1-p); continuous sum(w (x-m)^2) / (1 - sum(w^2)) with w
    normalised to sum 1 (equals the n - 1 sample variance for equal weights)."""
    sw = w.sum()
    if sw <= 0:
        return float("nan")
    wn = w / sw
    m = float((wn * x).sum())
    if binary:  # a sum of n weights 1/n can exceed 1 by an ulp: p(1-p) = -2e-16 would be NaN under sqrt (R warns)
        return max(m * (1 - m), 0.0)
    den = 1 - float((wn ** 2).sum())
    return float((wn * (x - m) ** 2).sum() / den) if den > 0 else float("nan")


def _pooled_sd_proportional(x: np.ndarray, t: np.ndarray, binary: bool) -> float:
    """MatchIt ``pooled_sd(contribution = "proportional")`` without weights, the fallback denominator."""
    n = x.size
    if binary:
        v = sum(x[g].sum() * (1 - x[g].sum() / g.sum()) / n for g in (t, ~t) if g.any())
    else:
        cen = np.concatenate([x[g] - x[g].mean() for g in (t, ~t) if g.any()])
        v = (cen ** 2).sum() / (n - 2) if n > 2 else float("nan")
    return float(np.sqrt(v))


def smd_denominator(x: np.ndarray, t: np.ndarray, s_d_denom: str, binary: bool) -> float:
    """Unadjusted-sample SD used for the SMD: "treated" sqrt(var_t), "control" sqrt(var_c), "pooled"
    sqrt((var_t + var_c) / 2) (MatchIt ``smd_denom``; cobalt ``col_w_smd``); falls back as MatchIt does."""
    one = np.ones(x.size)
    vt = weighted_var(x[t], one[t], binary)
    vc = weighted_var(x[~t], one[~t], binary)
    if s_d_denom == "treated":
        s = np.sqrt(vt)
    elif s_d_denom == "control":
        s = np.sqrt(vc)
    elif s_d_denom == "pooled":
        s = np.sqrt((vt + vc) / 2)
    else:
        raise ValueError(f"s_d_denom must be 'treated', 'control' or 'pooled', got {s_d_denom!r}")
    if not np.isfinite(s) or s < SQRT_EPS:
        s = _pooled_sd_proportional(x, t, binary)
    return float(s)


def ecdf_diffs(x: np.ndarray, t: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Mean and max over distinct values of |F_t(x) - F_c(x)| with weights normalised to sum 1 per group
    (MatchIt ``qqsum(standardize = TRUE)``; the max is cobalt's weighted KS statistic)."""
    wt, wc = w[t].sum(), w[~t].sum()
    if wt <= 0 or wc <= 0:
        return float("nan"), float("nan")
    signed = np.where(t, w / wt, -w / wc)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    cum = np.abs(np.cumsum(signed[order]))
    last_of_value = np.append(xs[1:] != xs[:-1], True)
    diffs = cum[last_of_value]
    return float(diffs.mean()), float(diffs.max())


def effective_sample_size(w: Any) -> float:
    """Kish effective sample size (sum w)^2 / sum(w^2) (MatchIt/cobalt ``ESS``)."""
    w = np.asarray(w, dtype=float)
    s2 = (w ** 2).sum()
    return float(w.sum() ** 2 / s2) if s2 > 0 else 0.0


def sample_sizes(treat: Any, weights: Any | None = None) -> pd.DataFrame:
    """MatchIt-style sample sizes: All, All (ESS), and with weights Adjusted (nonzero weight) and Adjusted (ESS)."""
    t = _as_bool_treat(treat)
    out = {"Control": [int((~t).sum()), effective_sample_size(np.ones((~t).sum()))],
           "Treated": [int(t.sum()), effective_sample_size(np.ones(t.sum()))]}
    index = ["All", "All (ESS)"]
    if weights is not None:
        w = np.asarray(weights, dtype=float)
        for name, g in (("Control", ~t), ("Treated", t)):
            out[name] += [int((w[g] > 0).sum()), effective_sample_size(w[g])]
        index += ["Adjusted", "Adjusted (ESS)"]
    return pd.DataFrame(out, index=index)


def _as_bool_treat(treat: Any) -> np.ndarray:
    t = pd.Series(np.asarray(treat))
    if t.isna().any():
        raise ValueError("treatment has missing values")
    if t.dtype == bool:
        return t.to_numpy()
    vals = set(t.unique().tolist())
    if not vals <= {0, 1} or len(vals) != 2:
        raise ValueError(f"treatment must be 0/1 or boolean with both groups present, found {sorted(map(str, vals))}")
    return t.to_numpy(dtype=float) == 1


def _one_side(x: np.ndarray, t: np.ndarray, w: np.ndarray, binary: bool, denom: float, standardize: bool
              ) -> dict[str, float]:
    """Means, SMD (or raw difference), variance ratio and eCDF stats for one set of weights (MatchIt bal1var)."""
    mt, mc = weighted_mean(x[t], w[t]), weighted_mean(x[~t], w[~t])
    diff = mt - mc
    too_small = (w[t] != 0).sum() < 2 and (w[~t] != 0).sum() < 2
    if not standardize or abs(diff) <= SQRT_EPS:
        smd = diff
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            smd = float("nan") if too_small else float(np.float64(diff) / denom)
    if binary:
        vr, em, emax = float("nan"), abs(diff), abs(diff)
    elif too_small:
        vr = em = emax = float("nan")
    else:
        vc = weighted_var(x[~t], w[~t], False)
        vr = weighted_var(x[t], w[t], False) / vc if vc > 0 else float("nan")
        em, emax = ecdf_diffs(x, t, w)
    return {"mean_treated": mt, "mean_control": mc, "smd": smd, "var_ratio": vr, "ecdf_mean": em, "ecdf_max": emax}


def _expand(df: pd.DataFrame, covariates: Sequence[str], categorical: set[str]
            ) -> list[tuple[str, Any, np.ndarray]]:
    """(variable, level, values) per row of the table: numeric covariates as is, one 0/1 dummy per factor level
    (NaN where the covariate is missing)."""
    rows = []
    for col in covariates:
        x = df[col]
        if col in categorical or not (pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x)):
            levels = list(x.cat.categories) if isinstance(x.dtype, pd.CategoricalDtype) else \
                sorted(x.dropna().unique().tolist(), key=lambda v: (str(type(v)), v))
            for lv in levels:
                rows.append((col, lv, np.where(x.isna(), np.nan, (x == lv).to_numpy(dtype=float))))
        else:
            rows.append((col, None, pd.to_numeric(x).to_numpy(dtype=float)))
    return rows


def balance_table(df: pd.DataFrame, treat: Any, covariates: Sequence[str], weights: Any | None = None,
                  estimand: str = "ATT", s_d_denom: str | None = None, binary: str = "std",
                  categorical: Sequence[str] | None = None) -> pd.DataFrame:
    """Balance before (``_un``) and, with ``weights``, after (``_adj``) adjustment, one row per numeric covariate
    and per level of each categorical covariate. Definitions in the module docstring.

    treat: name of a 0/1 column of ``df`` or a 0/1 / boolean vector. s_d_denom: None picks it from the estimand
    (ATT "treated", ATC "control", ATE "pooled"), as MatchIt and cobalt do. binary: "std" standardises binary
    rows (MatchIt) or "raw" reports the raw difference in proportions in the ``smd`` columns (cobalt's default);
    the ``diff_type`` column says which. The SMD denominator used is in ``sd_denominator``.
    """
    estimand = estimand.upper()
    if estimand not in DENOM_BY_ESTIMAND:
        raise ValueError(f"estimand must be 'ATT', 'ATC' or 'ATE', got {estimand!r}")
    if binary not in ("std", "raw"):
        raise ValueError(f"binary must be 'std' (MatchIt) or 'raw' (cobalt bal.tab default), got {binary!r}")
    denom_kind = s_d_denom or DENOM_BY_ESTIMAND[estimand]
    absent = [c for c in covariates if c not in df.columns]
    if absent:
        raise ValueError(f"covariates not in data: {absent}")
    t_all = _as_bool_treat(df[treat] if isinstance(treat, str) else treat)
    if t_all.size != len(df):
        raise ValueError(f"treatment has {t_all.size} values but the data have {len(df)} rows")
    w_all = None
    if weights is not None:
        w_all = np.asarray(weights, dtype=float)
        if w_all.shape != t_all.shape:
            raise ValueError(f"weights have {w_all.size} values but the data have {len(df)} rows")
        if not np.isfinite(w_all).all() or (w_all < 0).any():
            raise ValueError("weights must be finite and non-negative")
    rows = []
    for var, level, x_all in _expand(df, covariates, set(categorical or [])):
        ok = ~np.isnan(x_all)
        x, t = x_all[ok], t_all[ok]
        is_bin = bool(np.isin(x, (0.0, 1.0)).all())
        standardize = not (is_bin and binary == "raw")
        denom = smd_denominator(x, t, denom_kind, is_bin) if standardize else float("nan")
        row = {"term": var if level is None else f"{var}: {level}", "variable": var, "level": level,
               "type": "binary" if is_bin else "continuous", "diff_type": "std" if standardize else "raw",
               "n_missing": int((~ok).sum()), "sd_denominator": denom}
        for suffix, w in (("un", np.ones(x.size)), ("adj", None if w_all is None else w_all[ok])):
            if w is None:
                continue
            row.update({f"{k}_{suffix}": v for k, v in _one_side(x, t, w, is_bin, denom, standardize).items()})
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class BalanceSummary:
    """Largest |SMD| before/after and the terms above the threshold (after adjustment if available)."""

    threshold: float
    max_abs_smd_un: float
    max_abs_smd_adj: float | None
    failing: list[str] = field(default_factory=list)
    not_computed: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return not self.failing and not self.not_computed


def balance_summary(table: pd.DataFrame, threshold: float = 0.1) -> BalanceSummary:
    """Max |SMD| before and after and the terms with |SMD| > ``threshold`` (Austin 2009: 0.1), judged on the
    adjusted column when present, else the unadjusted one. Raw-difference rows (binary="raw") are judged on the
    raw difference, as cobalt's thresholds are. Rows whose SMD could not be computed are listed separately."""
    if "smd_un" not in table.columns:
        raise ValueError("table has no 'smd_un' column: pass the output of balance_table")
    after = "smd_adj" in table.columns
    col = table["smd_adj" if after else "smd_un"]
    failing = table.loc[col.abs() > threshold, "term"].tolist()
    missing = table.loc[col.isna(), "term"].tolist()
    return BalanceSummary(threshold=threshold,
                          max_abs_smd_un=float(table["smd_un"].abs().max()),
                          max_abs_smd_adj=float(table["smd_adj"].abs().max()) if after else None,
                          failing=failing, not_computed=missing)
