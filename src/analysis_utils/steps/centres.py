"""Centre in the design and the analysis (params ``centres:``), computation only; tables and the forest plot are in
``reporting/centres.py``. Method: docs/methods/multicentre.md.

- ``matching_spec``: how centre enters the propensity model: ``none``; ``fixed_effect`` (centre dummies in the
  logistic model, so matching and weights balance the centre mix); ``exact`` (matching within centre, MatchIt
  ``exact = ~ centre``, with the centre dummies kept in the model for the weights).
- ``centre_table``: patients, HAIC-TKIs-P share, OS events and median follow-up (reverse Kaplan-Meier) per centre.
- ``centre_balance``: the matched sample by centre: matched patients per arm and the largest within-centre |SMD|.
- Per imputation (``centre_models``): Cox models of arm in the matched sample stratified by centre and with the
  variance clustered by centre (sensitivity analyses of the pair-clustered main model), leave-one-centre-out
  (pairs with a patient of the centre removed, the model refitted; matching is not redone) and per-centre models
  (matched patients of the centre, robust variance), all as log HR and SE for pooling with Rubin's rules; the
  pooled per-centre estimates are summarised by ``forest`` with a random-effects model (``stats.meta``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from analysis_utils.stats import balance
from analysis_utils.stats.cox import cox_coefficients
from analysis_utils.stats.kaplan_meier import median_follow_up_reverse_km
from analysis_utils.stats.meta import random_effects
from analysis_utils.study.treatment import ARM_CONTROL, ARM_HAIC

__all__ = ["PS_MODES", "CentreConfig", "matching_spec", "centre_table", "centre_balance", "centre_models",
           "forest"]

PS_MODES = ("none", "fixed_effect", "exact")
ARM_TERM = f"arm[T.{ARM_HAIC}]"


@dataclass(frozen=True)
class CentreConfig:
    """The params' ``centres:`` section."""

    column: str = "center_id"
    ps_model: str = "fixed_effect"
    meta_method: str = "REML"

    def __post_init__(self) -> None:
        if self.ps_model not in PS_MODES:
            raise ValueError(f"centres.ps_model must be one of {PS_MODES}, got {self.ps_model!r}")
        if self.meta_method not in ("REML", "DL"):
            raise ValueError(f"centres.meta_method must be 'REML' or 'DL', got {self.meta_method!r}")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "CentreConfig":
        sec = dict(params.get("centres") or {})
        unknown = set(sec) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown key(s) in the centres section: {sorted(unknown)}")
        return cls(**sec)


def matching_spec(spec: dict[str, Any], cfg: CentreConfig) -> dict[str, Any]:
    """The params' ``matching:`` section with centre added as ``cfg.ps_model`` says (a copy; ``none`` returns
    it unchanged). ``fixed_effect``: centre joins ``covariates`` and ``categorical``; ``exact``: also ``exact``."""
    s = {**spec, **{k: list(spec.get(k) or []) for k in ("covariates", "categorical", "exact")}}
    col = cfg.column
    if cfg.ps_model == "none":
        return s
    for key in ("covariates", "categorical") + (("exact",) if cfg.ps_model == "exact" else ()):
        if col not in s[key]:
            s[key].append(col)
    return s


def centre_table(cohort: pd.DataFrame, centre_col: str = "center_id", arm_col: str = "arm",
                 time_col: str = "os_months", event_col: str = "os_event") -> pd.DataFrame:
    """Per centre (and all centres): patients, HAIC-TKIs-P patients and share (%), OS events, median follow-up
    in months (reverse Kaplan-Meier, Schemper & Smith 1996) with its CI."""
    rows = []
    groups = [(c, g) for c, g in cohort.groupby(centre_col, sort=True)] + [("All centres", cohort)]
    for centre, g in groups:
        fu = median_follow_up_reverse_km(g[time_col].to_numpy(float), g[event_col].to_numpy(float))
        n_haic = int((g[arm_col] == ARM_HAIC).sum())
        rows.append({"centre": centre, "n": len(g), "n_haic": n_haic, "haic_pct": 100 * n_haic / len(g),
                     "n_control": int((g[arm_col] == ARM_CONTROL).sum()), "os_events": int(g[event_col].sum()),
                     "median_follow_up": fu["median"], "follow_up_lower": fu["lower"],
                     "follow_up_upper": fu["upper"]})
    return pd.DataFrame(rows)


def centre_balance(cohort: pd.DataFrame, matched: pd.DataFrame, covariates: Sequence[str],
                   categorical: Sequence[str] = (), centre_col: str = "center_id", arm_col: str = "arm",
                   estimand: str = "ATT") -> pd.DataFrame:
    """The matched sample by centre: matched patients per arm, and the largest |SMD| of the covariates between
    the matched arms within the centre (MatchIt/cobalt SMD with the centre's own treated SD; NaN where an arm has
    fewer than 2 matched patients)."""
    m = cohort.merge(matched[["study_id", "match_weight"]], on="study_id", how="inner")
    covs = [c for c in covariates if c != centre_col and c in m.columns]
    rows = []
    for centre, g in m.groupby(centre_col, sort=True):
        t = (g[arm_col] == ARM_HAIC).to_numpy()
        row = {"centre": centre, "n_haic_matched": int(t.sum()), "n_control_matched": int((~t).sum()),
               "max_abs_smd": np.nan}
        if t.sum() >= 2 and (~t).sum() >= 2:
            frame = g[covs].copy()
            for c in covs:
                if pd.api.types.is_bool_dtype(frame[c]):
                    frame[c] = frame[c].astype(float)
            usable = [c for c in covs if frame[c].notna().any()]
            tab = balance.balance_table(frame, t, usable, estimand=estimand,
                                        categorical=[c for c in categorical if c in usable])
            row["max_abs_smd"] = float(tab["smd_un"].abs().max()) if len(tab) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _arm_row(df: pd.DataFrame, time_col: str, event_col: str, **kw: Any) -> tuple[float, float]:
    """log HR and SE of the arm (NaN when not estimable: no events, one arm, monotone likelihood)."""
    try:
        if df["arm"].nunique() < 2 or df[event_col].sum() == 0:
            return np.nan, np.nan
        tab = cox_coefficients(df, time_col, event_col, ["arm"], reference={"arm": ARM_CONTROL}, **kw)
    except (ValueError, np.linalg.LinAlgError):
        return np.nan, np.nan
    r = tab.loc[tab["term"] == ARM_TERM].iloc[0]
    return float(r["coef"]), float(r["se"])


def centre_models(matched: pd.DataFrame, time_col: str, event_col: str, centre_col: str = "center_id"
                  ) -> pd.DataFrame:
    """In one imputation's matched cohort (cohort rows with subclass and match_weight): log HR and SE of the arm
    for ``stratified by centre``, ``clustered by centre``, each ``without <centre>`` (leave one centre out: every
    pair with a patient of that centre removed) and ``centre <centre>`` (the centre's matched patients, variance
    clustered on the pair). Columns analysis, centre, estimate, std_error, n, events."""
    rows = []

    def add(analysis: str, centre: Any, df: pd.DataFrame, **kw: Any) -> None:
        est, se = _arm_row(df, time_col, event_col, **kw)
        rows.append({"analysis": analysis, "centre": centre, "estimate": est, "std_error": se, "n": len(df),
                     "events": int(df[event_col].sum())})

    add("stratified by centre", "", matched, strata_col=centre_col)
    add("clustered by centre", "", matched, cluster_col=centre_col)
    for centre in sorted(matched[centre_col].unique()):
        pairs = matched.loc[matched[centre_col] == centre, "subclass"].unique()
        add("leave one centre out", centre, matched[~matched["subclass"].isin(pairs)], cluster_col="subclass")
        add("per centre", centre, matched[matched[centre_col] == centre], cluster_col="subclass")
    return pd.DataFrame(rows)


def forest(per_centre: pd.DataFrame, method: str = "REML", conf_level: float = 0.95) -> tuple[pd.DataFrame,
                                                                                              dict[str, Any]]:
    """Random-effects summary (``stats.meta.random_effects``, metafor ``rma``) of pooled per-centre log HRs
    (columns centre, estimate, std_error, ...): returns (the estimable centres with HR and CI, the summary dict:
    hr, lower, upper, p, tau2, i2, q, q_p, k, centres left out and why)."""
    from scipy.stats import norm

    z = norm.ppf(1 - (1 - conf_level) / 2)
    ok = per_centre["estimate"].notna() & per_centre["std_error"].gt(0) & np.isfinite(per_centre["std_error"])
    est = per_centre[ok].copy()
    est["hr"], est["lower"], est["upper"] = (np.exp(est["estimate"]), np.exp(est["estimate"] - z * est["std_error"]),
                                             np.exp(est["estimate"] + z * est["std_error"]))
    left_out = per_centre.loc[~ok, "centre"].astype(str).tolist()
    summary: dict[str, Any] = {"k": int(len(est)), "centres_left_out": left_out, "method": method}
    if len(est) >= 2:
        r = random_effects(est["estimate"], est["std_error"] ** 2, method=method, conf_level=conf_level)
        summary.update({"hr": float(np.exp(r.estimate)), "lower": float(np.exp(r.conf_low)),
                        "upper": float(np.exp(r.conf_high)), "p": r.p, "tau2": r.tau2, "i2": r.i2, "h2": r.h2,
                        "q": r.q, "q_df": r.q_df, "q_p": r.q_p, "pi_lower": float(np.exp(r.pi_low)),
                        "pi_upper": float(np.exp(r.pi_high))})
    return est.reset_index(drop=True), summary
