"""Notebook 05_survival's multiple-imputation steps: the outcome models of the "within" approach in every imputed
data set's matched and weighted cohorts, pooled by Rubin's rules (``stats.mi.pool``, R ``mice::pool``); the
complete-case and missing-indicator estimates beside them (the sensitivity table); the centre analyses per
imputation (``steps.centres``); the delta-adjusted tipping-point analysis. Computation only; tables and figures in
``reporting/imputation.py`` and ``reporting/centres.py``. Methods: docs/methods/missing-data.md,
docs/methods/multicentre.md, docs/methods/survival.md.

Pooled quantities (all HAIC-TKIs-P versus TKIs-P): log HR of the Cox model of arm in the matched cohort (robust
variance clustered on the pair, as the main complete-data analysis) and in the IPTW (ATE) cohort (robust), log HR
of the covariate-adjusted Cox model in the full cohort (OS), RMST difference at tau (survRM2; weighted KM with IJ
variance for IPTW) and survival differences at the timepoints (Kaplan-Meier, Greenwood / IJ SEs added in
quadrature) in the matched cohort. Complete-data df (mice ``get.dfcom`` for coxph): n minus the number of
coefficients for Cox models; infinite (large sample) for RMST and survival differences.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from analysis_utils.stats.cox import cox_coefficients
from analysis_utils.stats.kaplan_meier import kaplan_meier, survival_at
from analysis_utils.stats.mi import pool, run_within
from analysis_utils.stats.rmst import rmst_difference, weighted_rmst_difference
from analysis_utils.stats.survival_input import survival_data
from analysis_utils.steps import centres
from analysis_utils.steps.survival import ENDPOINTS, prepare_covariates
from analysis_utils.study.treatment import ARM_CONTROL, ARM_HAIC

__all__ = ["imputation_frames", "outcomes_one", "within_survival", "pooled_hr_table", "matched_outcomes",
           "design_outcomes", "tipping_cohorts", "tipping_one", "tipping_point", "sensitivity_rows",
           "survival_mi_results"]

ARM_TERM = f"arm[T.{ARM_HAIC}]"
RATIO_MEASURES = ("log_hr",)


def _time_key(t: float) -> str:
    return f"{int(t)}m" if float(t).is_integer() else f"{t:g}m".replace(".", "p")


def imputation_frames(cohorts: list[pd.DataFrame], matched_mi: pd.DataFrame | None,
                      weights_mi: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Per imputation: the completed cohort and that imputation's matched sets and weights (04_matching)."""
    out = []
    for i, c in enumerate(cohorts, 1):
        d: dict[str, Any] = {"cohort": c}
        if matched_mi is not None:
            d["matched"] = matched_mi.loc[matched_mi[".imp"] == i].drop(columns=".imp")
        if weights_mi is not None:
            d["weights"] = weights_mi.loc[weights_mi[".imp"] == i].drop(columns=[".imp", "arm"], errors="ignore")
        out.append(d)
    return out


def _cox_row(df: pd.DataFrame, time_col: str, event_col: str, covariates: Sequence[str] = ("arm",),
             **kw: Any) -> tuple[float, float, float]:
    """(log HR of the arm, SE, dfcom = n - number of coefficients); NaN when not estimable."""
    try:
        tab = cox_coefficients(df, time_col, event_col, list(covariates), reference={"arm": ARM_CONTROL}, **kw)
    except (ValueError, np.linalg.LinAlgError):
        return np.nan, np.nan, np.nan
    r = tab.loc[tab["term"] == ARM_TERM].iloc[0]
    return float(r["coef"]), float(r["se"]), float(tab.attrs["n"] - len(tab))


def _rmst_row(df: pd.DataFrame, time_col: str, event_col: str, tau: float,
              weights_col: str | None) -> tuple[float, float]:
    t, e, w = survival_data(df[time_col], df[event_col], None if weights_col is None else df[weights_col])
    try:
        if weights_col is None:
            r = rmst_difference(t, e, df["arm"].to_numpy(), tau=tau, treatment=ARM_HAIC)
        else:
            r = weighted_rmst_difference(t, e, w, df["arm"].to_numpy(), tau, treatment=ARM_HAIC)
    except ValueError:
        return np.nan, np.nan
    d = r.set_index("quantity").loc["RMST difference"]
    return float(d["estimate"]), float(d["se"])


def _surv_rows(df: pd.DataFrame, time_col: str, event_col: str, times: Sequence[float],
               weights_col: str | None) -> list[tuple[float, float, float]]:
    """(t, S_haic - S_control, SE) at each time (SEs of the two KM curves added in quadrature)."""
    t, e, w = survival_data(df[time_col], df[event_col], None if weights_col is None else df[weights_col])
    arm = df["arm"].to_numpy()
    at = {}
    for a in (ARM_HAIC, ARM_CONTROL):
        m = arm == a
        km = kaplan_meier(t[m], e[m], weights=None if weights_col is None else w[m])
        at[a] = survival_at(km, list(times)).set_index("time")
    out = []
    for s in times:
        h, c = at[ARM_HAIC].loc[float(s)], at[ARM_CONTROL].loc[float(s)]
        ok = not (h.get("beyond_follow_up", False) or c.get("beyond_follow_up", False))
        out.append((float(s), float(h["surv"] - c["surv"]) if ok else np.nan,
                    float(math.hypot(h["std_err"], c["std_err"])) if ok else np.nan))
    return out


def matched_outcomes(cohort: pd.DataFrame, matched: pd.DataFrame | None, weights: pd.DataFrame | None,
                     spec: dict[str, Any], adjusted: bool = True, missing: str = "indicator",
                     endpoints: Sequence[str] | None = None) -> pd.DataFrame:
    """The outcome estimates of one data set (one imputation, or the complete-case / indicator design): long
    table endpoint, cohort (matched, iptw, adjusted), measure (log_hr, rmst_diff, surv_diff_<t>), estimate,
    std_error, dfcom. ``spec`` is the params' ``survival`` section (rmst_tau_months, timepoints_months, ties,
    adjust_covariates, categorical); ``missing`` is the adjusted model's design for a data set that still has
    missing covariates (indicator or complete_case). ``endpoints``: only these (default every endpoint)."""
    rows: list[dict[str, Any]] = []
    tau, times = float(spec["rmst_tau_months"]), [float(x) for x in spec["timepoints_months"]]

    def add(ep: str, coh: str, measure: str, est: float, se: float, dfcom: float = math.inf) -> None:
        rows.append({"endpoint": ep, "cohort": coh, "measure": measure, "estimate": est, "std_error": se,
                     "dfcom": dfcom})

    mdf = None if matched is None or not len(matched) else cohort.merge(
        matched[["study_id", "subclass", "match_weight"]], on="study_id", how="inner")
    wdf = None if weights is None else cohort.merge(weights[["study_id", "w_iptw_ate"]], on="study_id",
                                                    how="inner").dropna(subset=["w_iptw_ate"])
    for ep, (time_col, event_col, _) in ENDPOINTS.items():
        if endpoints is not None and ep not in endpoints:
            continue
        if mdf is not None and mdf["arm"].nunique() == 2:
            add(ep, "matched", "log_hr", *_cox_row(mdf, time_col, event_col, cluster_col="subclass"))
            add(ep, "matched", "rmst_diff", *_rmst_row(mdf, time_col, event_col, tau, None))
            for s, d, se in _surv_rows(mdf, time_col, event_col, times, None):
                add(ep, "matched", f"surv_diff_{_time_key(s)}", d, se)
        if wdf is not None and len(wdf):
            add(ep, "iptw", "log_hr", *_cox_row(wdf, time_col, event_col, weights_col="w_iptw_ate"))
            add(ep, "iptw", "rmst_diff", *_rmst_row(wdf, time_col, event_col, tau, "w_iptw_ate"))
        if adjusted and ep == "os":
            data, cols, _ = prepare_covariates(cohort, spec["adjust_covariates"], spec["categorical"], missing)
            add(ep, "adjusted", "log_hr", *_cox_row(data, time_col, event_col, ["arm", *cols]))
    return pd.DataFrame(rows)


def outcomes_one(frames: dict[str, Any], spec: dict[str, Any], centre_col: str = "center_id") -> dict[str, Any]:
    """One imputation: ``matched_outcomes`` and, for OS, the centre models (``steps.centres.centre_models``)."""
    cohort, matched = frames["cohort"], frames.get("matched")
    out = {"outcomes": matched_outcomes(cohort, matched, frames.get("weights"), spec)}
    if matched is not None and len(matched) and centre_col in cohort.columns:
        mdf = cohort.merge(matched[["study_id", "subclass", "match_weight"]], on="study_id", how="inner")
        out["centres"] = centres.centre_models(mdf, "os_months", "os_event", centre_col)
    return out


def _label(r: pd.Series) -> str:
    return f"{r['endpoint']}|{r['cohort']}|{r['measure']}"


def within_survival(frames: list[dict[str, Any]], spec: dict[str, Any], workers: int = 1,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, pd.DataFrame]:
    """``outcomes_one`` in every imputation (``workers`` processes), pooled per quantity by Rubin's rules:
    {"per_imputation": long table with ``.imp``, "pooled": one row per endpoint / cohort / measure with
    ``stats.mi.pool``'s columns, "centres_per_imputation", "centres_pooled"}."""
    res = run_within(frames, functools.partial(outcomes_one, spec=spec), workers=workers, progress=progress)
    per = pd.concat([r["outcomes"].assign(**{".imp": i}) for i, r in enumerate(res, 1)], ignore_index=True)
    per["term"] = per.apply(_label, axis=1)
    pooled = pool(per, dfcom="dfcom", conf_level=float(spec.get("conf_level", 0.95)))
    pooled[["endpoint", "cohort", "measure"]] = pooled["term"].str.split("|", expand=True)
    out = {"per_imputation": per, "pooled": pooled}
    if all("centres" in r for r in res):
        cen = pd.concat([r["centres"].assign(**{".imp": i}) for i, r in enumerate(res, 1)], ignore_index=True)
        cen["term"] = cen["analysis"] + "|" + cen["centre"].astype(str)
        cen["dfcom"] = (cen["n"] - 1).clip(lower=1).astype(float)  # coxph: nobs minus one coefficient (mice)
        cp = pool(cen, dfcom="dfcom", conf_level=float(spec.get("conf_level", 0.95)))
        cp[["analysis", "centre"]] = cp["term"].str.split("|", expand=True)
        out.update({"centres_per_imputation": cen, "centres_pooled": cp})
    return out


def pooled_hr_table(pooled: pd.DataFrame) -> pd.DataFrame:
    """Pooled estimates on the reporting scale: HR = exp(log HR) with its CI, differences as they are (months,
    survival probabilities), with df, riv, lambda and fmi."""
    p = pooled.copy()
    ratio = p["measure"].isin(RATIO_MEASURES)
    for c in ("estimate", "conf_low", "conf_high"):
        p[f"{c}_report"] = np.where(ratio, np.exp(p[c]), p[c])
    return p[["endpoint", "cohort", "measure", "m", "estimate_report", "conf_low_report", "conf_high_report",
              "p_value", "df", "riv", "lambda", "fmi"]].rename(
        columns={"estimate_report": "estimate", "conf_low_report": "lower", "conf_high_report": "upper"})


def design_outcomes(cohort: pd.DataFrame, data_dir: Any, spec: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The single-data-set designs of the sensitivity table, from 04_matching's files in ``data_dir``: ``ind``
    (missing indicator: matched.parquet, weights.parquet, indicator-adjusted Cox) and ``cc`` (complete case:
    matched_cc.parquet, weights_cc.parquet, complete-case adjusted Cox); a design whose files are absent is left
    out."""
    from pathlib import Path

    data = Path(data_dir)
    out = {}
    for name, suffix, missing in (("cc", "_cc", "complete_case"), ("ind", "", "indicator")):
        m, w = data / f"matched{suffix}.parquet", data / f"weights{suffix}.parquet"
        if m.is_file() and w.is_file():
            out[name] = matched_outcomes(cohort, pd.read_parquet(m), pd.read_parquet(w).drop(columns="arm",
                                                                                              errors="ignore"),
                                         spec, missing=missing)
    return out


# ------------------------------------------------------------------------------------------------ tipping point
def tipping_cohorts(cohort: pd.DataFrame, mnar: pd.DataFrame, columns: Sequence[str]
                    ) -> dict[tuple[str, float], list[pd.DataFrame]]:
    """The delta-adjusted completed cohorts of 02_missing_data (imputed_mnar.parquet) per (scenario, delta)."""
    from analysis_utils.steps.imputation import completed_cohorts

    return {(str(s), float(d)): completed_cohorts(cohort, g, columns)
            for (s, d), g in mnar.groupby([".scenario", ".delta"], sort=False)}


def tipping_one(cohort: pd.DataFrame, matching_spec: dict[str, Any], seed: Any, ties: str = "efron"
                ) -> tuple[float, float, float]:
    """One delta-adjusted imputation: the study's propensity model and matching exactly as
    ``steps.matching.run_matching`` (same spec checks, ``estimate_propensity``, the matching step), without the
    weights and balance tables the tipping point does not use, then the matched OS Cox model (pair-clustered):
    (log HR, SE, dfcom)."""
    from analysis_utils.stats.propensity import estimate_propensity
    from analysis_utils.steps.matching import _match_step, check_matching_spec

    s = check_matching_spec(matching_spec)
    data = cohort.reset_index(drop=True)
    prop = estimate_propensity(data, "arm", s["covariates"], categorical=s["categorical"], missing=s["missing"],
                               treated_value=ARM_HAIC)
    used = data.loc[prop.ps.index]
    match = _match_step(s, used, prop.treatment.to_numpy() == 1, prop, seed, [])
    if match is None or not (match.weights > 0).any():
        return np.nan, np.nan, np.nan
    sel = match.weights > 0
    mdf = used.loc[sel].assign(subclass=match.subclass[sel])
    return _cox_row(mdf, "os_months", "os_event", cluster_col="subclass", ties=ties)


def tipping_point(cohorts: dict[tuple[str, float], list[pd.DataFrame]], matching_spec: dict[str, Any],
                  seed: Any, workers: int = 1, conf_level: float = 0.95,
                  progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """The matched OS HR pooled over the delta-adjusted imputations of each (scenario, delta): columns scenario,
    delta, m, hr, lower, upper, p, fmi, significant (CI excludes 1)."""
    keys = list(cohorts)
    flat = [c for k in keys for c in cohorts[k]]
    res = run_within(flat, functools.partial(tipping_one, matching_spec=matching_spec, seed=seed), workers=workers,
                     progress=progress)
    rows, i = [], 0
    for scenario, delta in keys:
        for _ in cohorts[(scenario, delta)]:
            est, se, dfcom = res[i]
            rows.append({"term": f"{scenario}|{delta}", "estimate": est, "std_error": se, "dfcom": dfcom})
            i += 1
    long = pd.DataFrame(rows)
    long["dfcom"] = long.groupby("term")["dfcom"].transform(lambda s: s.dropna().iloc[0] if s.notna().any()
                                                            else np.inf)
    p = pool(long, dfcom="dfcom", conf_level=conf_level)
    p[["scenario", "delta"]] = p["term"].str.split("|", expand=True)
    p["delta"] = p["delta"].astype(float)
    out = pd.DataFrame({"scenario": p["scenario"], "delta": p["delta"], "m": p["m"], "hr": np.exp(p["estimate"]),
                        "lower": np.exp(p["conf_low"]), "upper": np.exp(p["conf_high"]), "p": p["p_value"],
                        "fmi": p["fmi"]})
    out["significant"] = (out["upper"] < 1) | (out["lower"] > 1)
    return out


# ------------------------------------------------------------------------------------------------ sensitivity table
def sensitivity_rows(mi_pooled: pd.DataFrame, designs: dict[str, pd.DataFrame],
                     conf_level: float = 0.95) -> pd.DataFrame:
    """One row per endpoint and analysis (matched HR, IPTW HR, adjusted HR, matched RMST difference), one block of
    columns per missing-data method: the MI-pooled estimate (with fmi) and each single-data-set design in
    ``designs`` (name -> ``matched_outcomes`` table, e.g. complete case, missing indicator), Wald CIs."""
    from scipy.stats import norm

    z = norm.ppf(1 - (1 - conf_level) / 2)
    keep = [("matched", "log_hr"), ("iptw", "log_hr"), ("adjusted", "log_hr"), ("matched", "rmst_diff")]
    rows = []
    for ep in ENDPOINTS:
        for coh, meas in keep:
            sel = (mi_pooled["endpoint"] == ep) & (mi_pooled["cohort"] == coh) & (mi_pooled["measure"] == meas)
            if not sel.any():
                continue
            p = mi_pooled[sel].iloc[0]
            f = np.exp if meas == "log_hr" else (lambda v: v)
            row = {"endpoint": ep, "cohort": coh, "measure": "HR" if meas == "log_hr" else "RMST difference",
                   "mi": f(p["estimate"]), "mi_lower": f(p["conf_low"]), "mi_upper": f(p["conf_high"]),
                   "mi_p": p["p_value"], "mi_fmi": p["fmi"]}
            for name, tab in designs.items():
                s = tab[(tab["endpoint"] == ep) & (tab["cohort"] == coh) & (tab["measure"] == meas)]
                est, se = (s["estimate"].iloc[0], s["std_error"].iloc[0]) if len(s) else (np.nan, np.nan)
                row.update({name: f(est), f"{name}_lower": f(est - z * se), f"{name}_upper": f(est + z * se),
                            f"{name}_p": float(2 * norm.sf(abs(est / se))) if se and np.isfinite(se) else np.nan})
            rows.append(row)
    return pd.DataFrame(rows)


def survival_mi_results(pooled: pd.DataFrame, sensitivity: pd.DataFrame | None = None,
                        tipping: pd.DataFrame | None = None, forest_summary: dict[str, Any] | None = None,
                        centre_pooled: pd.DataFrame | None = None) -> dict[str, Any]:
    """Flat keys for the "survival" section of results.json, prefix ``mi_``: ``mi_{ep}_hr_{cohort}`` (+ _lower,
    _upper, _p, _fmi, _riv, _df, _m), ``mi_{ep}_rmst_diff_{cohort}``, ``mi_{ep}_surv_diff_{t}_{cohort}``; the
    complete-case and indicator columns of the sensitivity table (``cc_...``, ``ind_...``); the tipping point
    (per scenario the smallest delta at which the matched OS CI changes side of 1 relative to the main analysis,
    None when it never does, and the estimate at the largest delta); the centre sensitivity analyses and the
    forest's random-effects summary."""
    out: dict[str, Any] = {}
    for r in pooled.itertuples(index=False):
        name = "hr" if r.measure == "log_hr" else r.measure
        key = f"mi_{r.endpoint}_{name}_{r.cohort}"
        f = math.exp if r.measure == "log_hr" else (lambda v: v)
        ok = np.isfinite(r.estimate)
        out.update({key: f(r.estimate) if ok else None, f"{key}_lower": f(r.conf_low) if ok else None,
                    f"{key}_upper": f(r.conf_high) if ok else None, f"{key}_p": r.p_value if ok else None,
                    f"{key}_fmi": r.fmi if ok else None, f"{key}_riv": r.riv if ok else None,
                    f"{key}_df": r.df if ok else None, f"{key}_m": int(r.m)})
    if sensitivity is not None:
        for r in sensitivity.to_dict("records"):
            stem = f"{r['endpoint']}_{'hr' if r['measure'] == 'HR' else 'rmst_diff'}_{r['cohort']}"
            for design in ("cc", "ind"):
                if design in r:
                    out.update({f"{design}_{stem}": r[design], f"{design}_{stem}_lower": r[f"{design}_lower"],
                                f"{design}_{stem}_upper": r[f"{design}_upper"], f"{design}_{stem}_p": r[f"{design}_p"]})
    if tipping is not None and len(tipping):
        main = pooled[(pooled["endpoint"] == "os") & (pooled["cohort"] == "matched") & (pooled["measure"] == "log_hr")]
        main_sig = bool(len(main) and (main["conf_high"].iloc[0] < 0 or main["conf_low"].iloc[0] > 0))
        out["mi_tipping_main_significant"] = main_sig
        for scen, g in tipping.groupby("scenario"):
            g = g.sort_values("delta")
            flips = g.loc[g["significant"] != main_sig, "delta"]
            out[f"mi_tipping_{scen}_delta"] = float(flips.iloc[0]) if len(flips) else None
            out[f"mi_tipping_{scen}_max_delta"] = float(g["delta"].max())
            last = g.iloc[-1]
            out.update({f"mi_tipping_{scen}_hr_at_max": float(last["hr"]),
                        f"mi_tipping_{scen}_lower_at_max": float(last["lower"]),
                        f"mi_tipping_{scen}_upper_at_max": float(last["upper"])})
    if centre_pooled is not None:
        for analysis, key in (("stratified by centre", "strat_centre"), ("clustered by centre", "cluster_centre")):
            s = centre_pooled[centre_pooled["analysis"] == analysis]
            if len(s) and np.isfinite(s["estimate"].iloc[0]):
                r = s.iloc[0]
                out.update({f"mi_os_hr_matched_{key}": math.exp(r["estimate"]),
                            f"mi_os_hr_matched_{key}_lower": math.exp(r["conf_low"]),
                            f"mi_os_hr_matched_{key}_upper": math.exp(r["conf_high"]),
                            f"mi_os_hr_matched_{key}_p": r["p_value"]})
        loco = centre_pooled[centre_pooled["analysis"] == "leave one centre out"]
        if len(loco) and loco["estimate"].notna().any():
            hr = np.exp(loco["estimate"])
            out.update({"mi_os_hr_loco_min": float(hr.min()), "mi_os_hr_loco_max": float(hr.max()),
                        "mi_os_hr_loco_min_centre": str(loco.loc[hr.idxmin(), "centre"]),
                        "mi_os_hr_loco_max_centre": str(loco.loc[hr.idxmax(), "centre"]),
                        "mi_os_hr_loco_max_upper": float(np.exp(loco["conf_high"]).max())})
    if forest_summary is not None:
        out.update({f"centre_forest_{k}": v for k, v in forest_summary.items()})
    return out
