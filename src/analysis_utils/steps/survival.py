"""Notebook 05_survival's steps: OS and PFS (RECIST 1.1, mRECIST), HAIC-TKIs-P versus TKIs-P, in the full,
matched and IPTW cohorts (computation only; tables and figures are in ``reporting/survival.py``). Time in months.

The statistics are the general estimators of ``stats/`` (each reproducing R's survival / survRM2 / EValue; see their
docstrings): ``stats.kaplan_meier`` (survfit, quantile.survfit, reverse KM), ``stats.logrank`` (survdiff),
``stats.cox`` (coxph with robust/cluster variance, subgroup interaction LRT), ``stats.cox_zph`` (cox.zph),
``stats.rmst`` (survRM2::rmst2), ``stats.evalue`` (EValue::evalues.HR) and ``stats.landmark``. This module adds the
study: the arms (TKIs-P is the reference level of every Cox model, so HRs are HAIC-TKIs-P versus TKIs-P), the
endpoints, the cohorts written by 04_matching, the adjusted and landmark models, and the flat ``results.json``
section. The arm is the arm known at time zero (HAIC on day 0) and the index date is time zero, the first treatment
component (``study.treatment``); the landmark analysis reclassifies by HAIC started by the landmark. Rules:
docs/methods/survival.md (methods), docs/methods/eligibility-and-time-zero.md (arms, time zero, immortal time).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from analysis_utils.stats.clustered import rmst_difference_cluster_bootstrap, robust_score_test
from analysis_utils.stats.cox import Ties, cox_interaction_p, cox_ph
from analysis_utils.stats.cox_zph import schoenfeld_test
from analysis_utils.stats.evalue import evalue_hr
from analysis_utils.stats.kaplan_meier import kaplan_meier, median_follow_up_reverse_km, median_survival, survival_at
from analysis_utils.stats.landmark import landmark
from analysis_utils.stats.logrank import logrank_test
from analysis_utils.stats.rmst import rmst_difference, weighted_rmst_difference
from analysis_utils.stats.survival_input import survival_data
from analysis_utils.study.treatment import ARM_CONTROL, ARM_HAIC

TREATMENT_ARM, CONTROL_ARM = ARM_HAIC, ARM_CONTROL
ARM_REFERENCE = {"arm": CONTROL_ARM}  # Cox reference level of the arm column: HRs are HAIC-TKIs-P versus TKIs-P
ARM_TERM = f"arm[T.{TREATMENT_ARM}]"  # the arm coefficient's name in cox_ph tables (HAIC-TKIs-P vs TKIs-P)
ARM_TAGS = {TREATMENT_ARM: "haic", CONTROL_ARM: "control"}  # arm -> short tag used in flat result keys
LANDMARK_TIMES = (6.0, 12.0, 18.0, 24.0)  # default timepoints (months) of S(t)
DAYS_PER_MONTH = 365.25 / 12  # as cleaning: months = days / 30.4375
ENDPOINTS = {"os": ("os_months", "os_event", "Overall survival"),                # key -> (time, event, label)
             "pfs_recist": ("pfs_recist_months", "pfs_recist_event", "PFS (RECIST 1.1)"),
             "pfs_mrecist": ("pfs_mrecist_months", "pfs_mrecist_event", "PFS (mRECIST)")}


# --------------------------------------------------------------------------------------------------------------------
# one endpoint in one cohort: adjusted and landmark models, flat results
# --------------------------------------------------------------------------------------------------------------------

def prepare_covariates(df: pd.DataFrame, covariates: Sequence[str], categorical: Sequence[str] = (),
                       missing: str = "indicator") -> tuple[pd.DataFrame, list[str], list[str]]:
    """Covariates ready for ``cox_ph``: returns (data, model columns, notes).

    ``missing="indicator"``: the same design as ``matching.estimate_propensity(missing="indicator")`` -- a missing
    numeric value is set to the median, a missing categorical value to the mode (first level in sorted order on a
    tie), and a 0/1 column ``<col>_missing`` is added; every row is kept. ``"complete_case"``: rows with any missing
    covariate are dropped (R coxph's na.action = na.omit), the number in the notes. Columns in ``categorical`` (and
    text columns) become pandas Categoricals of the observed levels, sorted, so the first level is the reference
    (e.g. ECOG 0); booleans become 0/1. A covariate or indicator that is constant in the data, or an indicator
    identical to an earlier one, is left out with a note (R would report an NA coefficient).
    """
    if missing not in ("indicator", "complete_case"):
        raise ValueError(f"missing must be 'indicator' or 'complete_case' (got {missing!r})")
    absent = [c for c in covariates if c not in df.columns]
    if absent:
        raise ValueError(f"covariate column(s) not in the data: {absent}")
    data = df.copy()
    notes: list[str] = []
    if missing == "complete_case":
        keep = data[list(covariates)].notna().all(axis=1)
        if (~keep).any():
            notes.append(f"complete case: {int((~keep).sum())} of {len(data)} rows dropped for missing covariates")
        data = data.loc[keep].copy()
    columns: list[str] = []
    for c in covariates:
        x = data[c]
        is_cat = c in categorical or not (pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x))
        miss = x.isna()
        obs = x[~miss]
        if obs.nunique() < 2:
            notes.append(f"{c}: constant or empty in these data, left out")
            continue
        if miss.any():
            if is_cat:
                counts = obs.value_counts()
                fill = sorted(counts.index[counts == counts.max()].tolist(), key=str)[0]
            else:
                fill = float(pd.to_numeric(obs).median())
            notes.append(f"{c}: {int(miss.sum())} missing set to the {'mode' if is_cat else 'median'} ({fill!r}), "
                         f"indicator {c}_missing added")
            x = x.astype(object).where(~miss, fill) if is_cat else pd.to_numeric(x).astype(float).fillna(fill)
        if is_cat:
            vals = x.astype(object)
            if pd.api.types.is_numeric_dtype(obs) and np.all(np.mod(obs.astype(float), 1) == 0):
                vals = vals.map(int)  # ECOG 0/1/2 stored as floats -> level names "0", "1", "2"
            data[c] = pd.Categorical(vals, categories=sorted(pd.unique(vals), key=lambda v: (str(type(v)), v)))
        else:
            data[c] = pd.to_numeric(x).astype(float)
        columns.append(c)
        if miss.any():
            ind = miss.astype(float)
            same = [k for k in columns if k.endswith("_missing") and data[k].equals(ind)]
            if ind.nunique() < 2 or same:
                notes.append(f"{c}_missing: {'constant' if ind.nunique() < 2 else 'identical to ' + same[0]}, "
                             "left out")
            else:
                data[f"{c}_missing"] = ind
                columns.append(f"{c}_missing")
    return data, columns, notes


def arm_hr(cox_table: pd.DataFrame | None, term: str = ARM_TERM) -> dict[str, object]:
    """The arm row of a ``cox_ph`` table as a flat dict (hr, lower, upper, p, se, n, n_events, variance, flag);
    NaN values when the model is missing (not estimable)."""
    out: dict[str, object] = {"hr": np.nan, "lower": np.nan, "upper": np.nan, "p": np.nan, "se": np.nan,
                              "n": np.nan, "n_events": np.nan, "variance": "", "flag": "not estimable"}
    if cox_table is None:
        return out
    row = cox_table.loc[cox_table["term"] == term]
    if row.empty:
        raise ValueError(f"term {term!r} is not in the Cox table (terms: {cox_table['term'].tolist()})")
    r = row.iloc[0]
    out.update({k: r[k] for k in ("hr", "lower", "upper", "p", "se", "flag")})
    out.update({k: cox_table.attrs.get(k) for k in ("n", "n_events", "variance")})
    return out


def adjusted_cox(df: pd.DataFrame, time_col: str, event_col: str, covariates: Sequence[str],
                 categorical: Sequence[str] = (), missing: str = "indicator", arm_col: str = "arm",
                 ties: Ties = "efron", conf_level: float = 0.95, weights_col: str | None = None,
                 cluster_col: str | None = None, strata_col: str | None = None) -> pd.DataFrame:
    """Multivariable Cox model ``arm + covariates`` (R ``coxph``), covariates prepared by ``prepare_covariates``
    (missing-indicator or complete-case design). The arm is the first term (HAIC-TKIs-P vs TKIs-P); ``.attrs`` adds
    ``missing``, ``n_input`` (rows given), ``n`` (rows used) and ``covariate_notes``."""
    data, cols, notes = prepare_covariates(df, [c for c in covariates if c != arm_col], categorical, missing)
    table = cox_ph(data, time_col, event_col, [arm_col, *cols], ties=ties, weights_col=weights_col,
                   cluster_col=cluster_col, strata_col=strata_col, conf_level=conf_level,
                   reference={arm_col: CONTROL_ARM})
    table.attrs.update({"missing": missing, "n_input": len(df), "covariate_notes": notes})
    return table


def attempt(notes: list[str], label: str, fn, *args, **kwargs):  # noqa: ANN001, ANN201 - any statistic
    """``fn(*args, **kwargs)``, or None with a note appended to ``notes`` when it raises ValueError or LinAlgError
    (not estimable: no events, an arm without patients, tau beyond follow-up, singular information, ...)."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, np.linalg.LinAlgError) as exc:
        notes.append(f"{label}: not estimable ({exc})")
        return None


def analyse_endpoint(df: pd.DataFrame, time_col: str, event_col: str, spec: dict, weights_col: str | None = None,
                     cluster_col: str | None = None, arm_col: str = "arm") -> dict[str, object]:
    """Everything reported for one time-to-event endpoint in one cohort, arm HAIC-TKIs-P versus TKIs-P.

    ``spec`` is the ``survival`` section of the params: conf_type, conf_level, timepoints_months, rmst_tau_months,
    ties. Returns a dict with
      km (arm -> ``kaplan_meier`` table; weighted when ``weights_col``), times (arm -> follow-up times, for the
      number-at-risk table), event_times (arm -> times of the events, for the cumulative events under the plot),
      n / events (arm -> unweighted counts), median (``median_survival`` per arm, indexed by
      arm), survival_at (``survival_at`` per arm at the timepoints), follow_up (``median_follow_up_reverse_km``,
      both arms together), test ({label, p, chi2}: log-rank ``survdiff``; with weights, where no weighted log-rank
      is offered, the robust Wald test of the weighted Cox model; with ``cluster_col``, e.g. matched pairs, the
      pair-clustered robust score test of ``coxph(..., cluster =)``, which honours the pairing, while the
      unstratified log-rank stays in ``logrank``), cox (``cox_ph`` of arm alone: robust on
      ``cluster_col`` if given, robust for non-integer weights), hr (``arm_hr`` of it), ph (``schoenfeld_test`` of
      that model) and ph_p, rmst (``rmst_difference``, or the weighted version, at rmst_tau_months), rmst_paired
      (with ``cluster_col`` and ``spec["bootstrap_replicates"]`` > 0: the RMST difference with a bootstrap over
      clusters, seed ``spec["bootstrap_seed"]``), notes (what
      could not be estimated and why; those parts are None/NaN), weighted (bool).
    Rows with a missing time, event, arm or weight are dropped and counted in ``n_dropped``.
    """
    needed = [time_col, event_col, arm_col] + [c for c in (weights_col, cluster_col) if c]
    absent = [c for c in needed if c not in df.columns]
    if absent:
        raise ValueError(f"column(s) not in the data: {absent}")
    unknown = set(df[arm_col].dropna().unique()) - {TREATMENT_ARM, CONTROL_ARM}
    if unknown:
        raise ValueError(f"{arm_col} has values other than {TREATMENT_ARM!r} and {CONTROL_ARM!r}: {sorted(unknown)}")
    data = df.loc[df[needed].notna().all(axis=1)].copy()
    arms = [a for a in (TREATMENT_ARM, CONTROL_ARM) if (data[arm_col] == a).any()]
    if len(arms) < 2:
        raise ValueError(f"both arms are needed; found only {arms} in '{arm_col}'")
    conf_type, conf_level = spec.get("conf_type", "log-log"), float(spec.get("conf_level", 0.95))
    ties, tau = spec.get("ties", "efron"), float(spec.get("rmst_tau_months", 24))
    timepoints = [float(x) for x in spec.get("timepoints_months", LANDMARK_TIMES)]
    t_all, e_all, w_all = survival_data(data[time_col], data[event_col],
                                        None if weights_col is None else data[weights_col])
    arm_all = data[arm_col].to_numpy()
    notes: list[str] = []
    res: dict[str, object] = {"time_col": time_col, "event_col": event_col, "weighted": weights_col is not None,
                              "n_dropped": int(len(df) - len(data)), "conf_type": conf_type,
                              "conf_level": conf_level, "notes": notes}
    km, times, medians, at = {}, {}, {}, []
    for a in arms:
        m = arm_all == a
        km[a] = kaplan_meier(t_all[m], e_all[m], weights=None if weights_col is None else w_all[m],
                             conf_type=conf_type, conf_level=conf_level)
        times[a] = t_all[m]
        medians[a] = median_survival(km[a])
        at.append(survival_at(km[a], timepoints).assign(arm=a))
    res.update({"km": km, "times": times, "n": {a: int((arm_all == a).sum()) for a in arms},
                "event_times": {a: t_all[(arm_all == a) & (e_all > 0)] for a in arms},
                "events": {a: int(e_all[arm_all == a].sum()) for a in arms},
                "median": pd.DataFrame(medians).T.rename_axis("arm"),
                "survival_at": pd.concat(at, ignore_index=True),
                "follow_up": median_follow_up_reverse_km(t_all, e_all, conf_type=conf_type, conf_level=conf_level)})
    reference = {arm_col: CONTROL_ARM}
    cox = attempt(notes, "Cox model", cox_ph, data, time_col, event_col, [arm_col], ties=ties,
                  weights_col=weights_col, cluster_col=cluster_col, conf_level=conf_level, reference=reference)
    res["cox"], res["hr"] = cox, arm_hr(cox)
    if weights_col is None:
        lr = logrank_test(t_all, e_all, arm_all)
        if lr.note:
            notes.append(f"log-rank: {lr.note}")
        res["logrank"] = res["test"] = {"label": "Log-rank", "p": lr.p, "chi2": lr.chi2}
    else:
        res["test"] = {"label": "Robust Wald (weighted Cox)", "p": res["hr"]["p"], "chi2": np.nan}
    if cluster_col is not None:  # matched pairs: the test that honours the pairing (survival.md, paired data)
        rs = attempt(notes, "robust score test", robust_score_test, data, time_col, event_col, [arm_col],
                     cluster_col, ties=ties, weights_col=weights_col, reference=reference)
        if rs is not None:
            res["test"] = {"label": "Robust score test, pair-clustered", "p": rs["p"], "chi2": rs["stat"]}
    zph = attempt(notes, "Schoenfeld test", schoenfeld_test, data, time_col, event_col, [arm_col], ties=ties,
                  weights_col=weights_col, reference=reference)
    res["ph"] = zph
    res["ph_p"] = float(zph.table.loc[zph.table["term"] == arm_col, "p"].iloc[0]) if zph is not None else np.nan
    if weights_col is None:
        res["rmst"] = attempt(notes, f"RMST at tau = {tau:g}", rmst_difference, t_all, e_all, arm_all, tau=tau,
                              treatment=TREATMENT_ARM, conf_level=conf_level)
    else:
        res["rmst"] = attempt(notes, f"RMST at tau = {tau:g}", weighted_rmst_difference, t_all, e_all, w_all,
                              arm_all, tau, treatment=TREATMENT_ARM, conf_level=conf_level)
    n_boot = int(spec.get("bootstrap_replicates", 0))
    if cluster_col is not None and res["rmst"] is not None and n_boot > 0:
        res["rmst_paired"] = attempt(notes, "RMST pair bootstrap", rmst_difference_cluster_bootstrap, t_all, e_all,
                                     arm_all, data[cluster_col].to_numpy(), tau, TREATMENT_ARM, n_boot=n_boot,
                                     seed=int(spec.get("bootstrap_seed", 0)), conf_level=conf_level)
    return res


def _time_key(t: float) -> str:
    return f"{int(t)}m" if float(t).is_integer() else f"{t:g}m".replace(".", "p")


def flat_results(res: dict, prefix: str, cohort: str = "") -> dict[str, object]:
    """Flat ``results.json`` keys from ``analyse_endpoint``: ``{prefix}_{statistic}[_{arm}][_{cohort}][_bound]``.

    E.g. os_median_haic, os_median_haic_lower, os_12m_control_upper, os_events_haic, os_logrank_p, os_rmst_diff,
    os_ph_p_arm, os_median_follow_up; the arm HR is ``{prefix}_hr_{cohort}`` (``_unadj`` for the full cohort,
    ``cohort=""``). Medians / limits not reached are None (NaN) with ``..._reached`` False.
    """
    c = f"_{cohort}" if cohort else ""
    out: dict[str, object] = {}
    med = res["median"]
    for arm, tag in ARM_TAGS.items():
        out[f"{prefix}_n_{tag}{c}"] = res["n"].get(arm)
        out[f"{prefix}_events_{tag}{c}"] = res["events"].get(arm)
        if arm in med.index:
            r = med.loc[arm]
            out[f"{prefix}_median_{tag}{c}"] = r["median"]
            out[f"{prefix}_median_{tag}{c}_lower"] = r["lower"]
            out[f"{prefix}_median_{tag}{c}_upper"] = r["upper"]
            out[f"{prefix}_median_{tag}{c}_reached"] = bool(r["median_reached"])
    for r in res["survival_at"].itertuples(index=False):
        key = f"{prefix}_{_time_key(r.time)}_{ARM_TAGS[r.arm]}{c}"
        out[key], out[f"{key}_lower"], out[f"{key}_upper"] = r.surv, r.lower, r.upper
    hr, name = res["hr"], f"{prefix}_hr_{cohort or 'unadj'}"
    out[name], out[f"{name}_lower"], out[f"{name}_upper"], out[f"{name}_p"] = (hr["hr"], hr["lower"], hr["upper"],
                                                                               hr["p"])
    if not res["weighted"]:
        out[f"{prefix}_logrank_p{c}"] = res.get("logrank", res["test"])["p"]
    if res["test"]["label"].startswith("Robust score"):
        out[f"{prefix}_robust_score_p{c}"] = res["test"]["p"]
    out[f"{prefix}_ph_p_arm{c}"] = res["ph_p"]
    fu = res["follow_up"]
    out[f"{prefix}_median_follow_up{c}"] = fu["median"]
    out[f"{prefix}_median_follow_up{c}_lower"] = fu["lower"]
    out[f"{prefix}_median_follow_up{c}_upper"] = fu["upper"]
    rm = res["rmst"]
    if rm is not None:
        by = rm.set_index("quantity")
        for arm, tag in ARM_TAGS.items():
            r = by.loc[f"RMST {arm}"]
            out[f"{prefix}_rmst_{tag}{c}"], out[f"{prefix}_rmst_{tag}{c}_lower"] = r["estimate"], r["lower"]
            out[f"{prefix}_rmst_{tag}{c}_upper"] = r["upper"]
        r = by.loc["RMST difference"]
        out[f"{prefix}_rmst_diff{c}"], out[f"{prefix}_rmst_diff{c}_lower"] = r["estimate"], r["lower"]
        out[f"{prefix}_rmst_diff{c}_upper"], out[f"{prefix}_rmst_diff{c}_p"] = r["upper"], r["p"]
        out[f"{prefix}_rmst_tau{c}"] = rm.attrs["tau"]
    bs = res.get("rmst_paired")
    if bs is not None:
        out[f"{prefix}_rmst_diff{c}_paired_lower"], out[f"{prefix}_rmst_diff{c}_paired_upper"] = bs["lower"], bs["upper"]
        out[f"{prefix}_rmst_diff{c}_paired_p"], out[f"{prefix}_rmst_diff{c}_paired_se"] = bs["p"], bs["se"]
    return out


def landmark_analysis(df: pd.DataFrame, time_col: str, event_col: str, landmark_months: float,
                      offset_days_col: str = "haic_offset_days", covariates: Sequence[str] = (),
                      categorical: Sequence[str] = (), missing: str = "indicator", ties: Ties = "efron",
                      conf_level: float = 0.95) -> dict[str, object]:
    """Immortal-time sensitivity analysis: landmark at L months after time zero (Anderson, Cain & Gelber 1983).

    Patients still event-free (OS: alive; PFS: progression-free) and followed beyond L (``landmark``) enter, with
    time restarted at L; the arm is HAIC by L: HAIC-TKIs-P when the first HAIC (``offset_days_col`` days from time
    zero, converted with 30.4375 days per month; missing = never) was at or before L, else TKIs-P. The arm at time
    zero (``arm``: HAIC on day 0) is kept as ``arm_baseline``; ``n_reclassified`` counts the patients whose arm at L
    differs from it (``n_reclassified_to_haic``: TKIs-P at time zero who started HAIC by L; the other direction
    cannot occur). Cox HR of the arm at L from L: unadjusted and, if ``covariates``, adjusted (``adjusted_cox``).
    Returns data, n, n_excluded, n_reclassified (and by direction), cox_unadj / cox_adj tables, hr_unadj / hr_adj
    (``arm_hr``) and notes. Rules: docs/methods/eligibility-and-time-zero.md, docs/methods/target-trial.md.
    """
    if offset_days_col not in df.columns:
        raise ValueError(f"column '{offset_days_col}' is not in the data")
    data = df.assign(_haic_start_months=pd.to_numeric(df[offset_days_col], errors="coerce") / DAYS_PER_MONTH)
    data = data.loc[data[[time_col, event_col]].notna().all(axis=1)]
    lm = landmark(data, time_col, event_col, landmark_months, arm_col="arm", exposure_start_col="_haic_start_months",
                  exposed_label=TREATMENT_ARM, unexposed_label=CONTROL_ARM)
    lm = lm.drop(columns="arm").rename(columns={"arm_landmark": "arm"}).assign(arm_baseline=data.loc[lm.index, "arm"])
    notes: list[str] = []
    out: dict[str, object] = {"landmark_months": float(landmark_months), "data": lm, "n": len(lm),
                              "n_excluded": lm.attrs["n_excluded"],
                              "n_reclassified": int((lm["arm"] != lm["arm_baseline"]).sum()),
                              "n_reclassified_to_haic": int(((lm["arm"] == TREATMENT_ARM)
                                                             & (lm["arm_baseline"] != TREATMENT_ARM)).sum()),
                              "n_reclassified_to_control": int(((lm["arm"] == CONTROL_ARM)
                                                                & (lm["arm_baseline"] != CONTROL_ARM)).sum()),
                              "n_events": int(lm[event_col].sum()) if len(lm) else 0, "notes": notes}
    fits = {"unadj": lambda: cox_ph(lm, time_col, event_col, ["arm"], ties=ties, conf_level=conf_level,
                                    reference=ARM_REFERENCE)}
    if covariates:
        fits["adj"] = lambda: adjusted_cox(lm, time_col, event_col, covariates, categorical, missing, ties=ties,
                                           conf_level=conf_level)
    for key in ("unadj", "adj"):  # without covariates the adjusted model is absent (None, NaN HR)
        table = attempt(notes, f"landmark Cox ({key})", fits[key]) if len(lm) and key in fits else None
        out[f"cox_{key}"], out[f"hr_{key}"] = table, arm_hr(table)
    return out


def hr_summary(models: dict[str, pd.DataFrame | None], term: str = ARM_TERM) -> pd.DataFrame:
    """One row per model (label -> ``cox_ph`` table or None): n, events, HR, CI, p, variance, flag, for the arm."""
    rows = [{"analysis": label, **arm_hr(table, term)} for label, table in models.items()]
    return pd.DataFrame(rows, columns=["analysis", "n", "n_events", "hr", "lower", "upper", "p", "se", "variance",
                                       "flag"])


def km_summary(results: dict[str, dict]) -> pd.DataFrame:
    """Numbers table from several ``analyse_endpoint`` results (label -> result): one row per label and arm with n,
    events, median and CI, S(t) and CI at each timepoint (columns ``s_<t>m``, ``s_<t>m_lower``, ...), and RMST."""
    rows = []
    for label, res in results.items():
        at = res["survival_at"]
        rm = None if res["rmst"] is None else res["rmst"].set_index("quantity")
        for arm in res["km"]:
            med = res["median"].loc[arm]
            row = {"analysis": label, "arm": arm, "n": res["n"][arm], "events": res["events"][arm],
                   "median": med["median"], "median_lower": med["lower"], "median_upper": med["upper"]}
            for r in at[at["arm"] == arm].itertuples(index=False):
                k = f"s_{_time_key(r.time)}"
                row.update({k: r.surv, f"{k}_lower": r.lower, f"{k}_upper": r.upper})
            if rm is not None:
                r = rm.loc[f"RMST {arm}"]
                row.update({"rmst": r["estimate"], "rmst_lower": r["lower"], "rmst_upper": r["upper"]})
            rows.append(row)
    return pd.DataFrame(rows)


def flat_hr(hr: dict, key: str) -> dict[str, object]:
    """``{key: hr, key_lower, key_upper, key_p}`` from an ``arm_hr`` dict, for ``results.json``."""
    return {key: hr["hr"], f"{key}_lower": hr["lower"], f"{key}_upper": hr["upper"], f"{key}_p": hr["p"]}


def rmst_summary(results: dict[str, dict]) -> pd.DataFrame:
    """RMST difference (HAIC-TKIs-P minus TKIs-P) per ``analyse_endpoint`` result (label -> result): tau, RMST per
    arm, difference with CI and p (survRM2's normal CI; in the matched cohort the bootstrap over pairs, column
    ``ci`` says which); NaN where it was not estimable (see the result's notes)."""
    rows = []
    for label, res in results.items():
        row = {"analysis": label, "tau": np.nan, "rmst_haic": np.nan, "rmst_control": np.nan, "diff": np.nan,
               "lower": np.nan, "upper": np.nan, "p": np.nan, "ci": "normal (survRM2)"}
        if res.get("rmst_paired") is not None:  # matched pairs: the bootstrap over pairs replaces survRM2's CI
            bs = res["rmst_paired"]
            row.update({"ci": f"bootstrap over pairs ({bs['n_boot']} replicates, percentile)"})
        if res["rmst"] is not None:
            by = res["rmst"].set_index("quantity")
            d = by.loc["RMST difference"]
            row.update({"tau": res["rmst"].attrs["tau"], "rmst_haic": by.loc[f"RMST {TREATMENT_ARM}", "estimate"],
                        "rmst_control": by.loc[f"RMST {CONTROL_ARM}", "estimate"], "diff": d["estimate"],
                        "lower": d["lower"], "upper": d["upper"], "p": d["p"]})
            if res.get("rmst_paired") is not None:
                bs = res["rmst_paired"]
                row.update({"lower": bs["lower"], "upper": bs["upper"], "p": bs["p"]})
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------------------------
# notebook steps (05_survival): cohorts, models per endpoint, tables and the flat results section
# --------------------------------------------------------------------------------------------------------------------
COHORT_LABELS = {"full": "Full cohort", "matched": "Matched cohort", "iptw": "IPTW (ATE) cohort",
                 "overlap": "Overlap-weighted (ATO) cohort"}
OVERLAP_WEIGHTS = "w_overlap"  # column of data/weights.parquet (04_matching; WeightIt estimand = "ATO")


def load_cohorts(data_dir: str | Path) -> tuple[dict[str, dict], list[str]]:
    """The analysis cohorts from the run's ``data`` folder, as (cohorts, notes).

    ``cohorts``: name -> {"df", "kw" (keyword arguments for ``analyse_endpoint``), "label"}: ``full`` (cohort.parquet);
    ``matched`` (cohort inner-joined with matched.parquet's subclass and match_weight; Cox variance clustered on the
    pair, R ``coxph(..., cluster = subclass)``; weights only if some match_weight differs from 1, since 1:1 matching
    without replacement gives weight 1); ``iptw`` (cohort inner-joined with weights.parquet, weights
    ``w_iptw_ate``). A missing matched/weights file (04_matching did not write it) leaves that cohort out with a note.
    """
    data = Path(data_dir)
    cohort_path = data / "cohort.parquet"
    if not cohort_path.is_file():
        raise FileNotFoundError(f"{cohort_path} does not exist (01_cleaning writes it)")
    cohort = pd.read_parquet(cohort_path)
    cohorts: dict[str, dict] = {"full": {"df": cohort, "kw": {}, "label": COHORT_LABELS["full"]}}
    notes: list[str] = []
    if (data / "matched.parquet").is_file():
        matched = cohort.merge(pd.read_parquet(data / "matched.parquet")[["study_id", "subclass", "match_weight"]],
                               on="study_id", how="inner")
        match_w = None if (matched["match_weight"] == 1).all() else "match_weight"
        cohorts["matched"] = {"df": matched, "kw": {"cluster_col": "subclass", "weights_col": match_w},
                              "label": COHORT_LABELS["matched"]}
    else:
        notes.append("No matched cohort: data/matched.parquet not found (04_matching has not written it); "
                     "matched analyses skipped.")
    if (data / "weights.parquet").is_file():
        weighted = cohort.merge(pd.read_parquet(data / "weights.parquet").drop(columns="arm", errors="ignore"),
                                on="study_id", how="inner")
        cohorts["iptw"] = {"df": weighted, "kw": {"weights_col": "w_iptw_ate"}, "label": COHORT_LABELS["iptw"]}
    else:
        notes.append("No weights: data/weights.parquet not found (04_matching has not written it); "
                     "weighted analyses skipped.")
    return cohorts, notes


def overlap_cohort(data_dir: str | Path, weights_col: str = OVERLAP_WEIGHTS) -> tuple[dict[str, dict], list[str]]:
    """The overlap-weighted cohort, an outcome sensitivity analysis (Li, Morgan & Zaslavsky 2018): the cohort
    inner-joined with ``weights.parquet`` and weighted by ``w_overlap`` (treated 1 - ps, controls ps; WeightIt
    ``estimand = "ATO"``), analysed like the IPTW cohort (weighted KM with IJ variance, Cox with robust variance,
    robust Wald p). Returns ({"overlap": cohort} or {}, notes); add it to ``load_cohorts``' result and every
    per-cohort step (``endpoint_results``, ``cox_models``, ``rmst_table``, ``survival_results``) includes it.
    Rules: docs/methods/matching-and-weighting.md."""
    data = Path(data_dir)
    path = data / "weights.parquet"
    if not path.is_file():
        return {}, ["No overlap weights: data/weights.parquet not found; overlap-weighted analyses skipped."]
    weights = pd.read_parquet(path)
    if weights_col not in weights.columns:
        return {}, [f"No overlap weights: data/weights.parquet has no column {weights_col!r}; overlap-weighted "
                    "analyses skipped."]
    cohort = pd.read_parquet(data / "cohort.parquet")
    weighted = cohort.merge(weights[["study_id", weights_col]], on="study_id", how="inner")
    return {"overlap": {"df": weighted, "kw": {"weights_col": weights_col}, "label": COHORT_LABELS["overlap"]}}, []


def cohort_sizes(cohorts: dict[str, dict]) -> pd.DataFrame:
    """Patients per arm (rows) and cohort (columns)."""
    return pd.DataFrame({name: c["df"]["arm"].value_counts() for name, c in cohorts.items()})


def main_cohort(cohorts: dict[str, dict]) -> str:
    """The cohort of the main analysis: ``matched`` when there is one, else ``full``."""
    return "matched" if "matched" in cohorts else "full"


def endpoint_results(cohorts: dict[str, dict], spec: dict) -> tuple[dict[str, dict[str, dict]], list[str]]:
    """``analyse_endpoint`` for every endpoint (``ENDPOINTS``) and cohort: (res[endpoint][cohort], notes), the notes
    prefixed '<endpoint>, <cohort>: '."""
    res = {ep: {name: analyse_endpoint(c["df"], time_col, event_col, spec, **c["kw"]) for name, c in cohorts.items()}
           for ep, (time_col, event_col, _) in ENDPOINTS.items()}
    notes = [f"{ep}, {name}: {note}" for ep, by in res.items() for name, r in by.items() for note in r["notes"]]
    return res, notes


def follow_up_table(res: dict[str, dict[str, dict]], cohorts: dict[str, dict]) -> pd.DataFrame:
    """Median follow-up (reverse Kaplan-Meier of the OS times, Schemper & Smith 1996) with its CI per cohort."""
    return pd.DataFrame([{"analysis": cohorts[c]["label"], **r["follow_up"][["median", "lower", "upper"]].to_dict()}
                         for c, r in res["os"].items()])


def cox_models(cohorts: dict[str, dict], res: dict[str, dict[str, dict]], spec: dict) -> dict[str, object]:
    """The Cox models of arm reported per endpoint (R ``coxph``, ties and conf_level from ``spec``).

    Full cohort: unadjusted (from ``res``), adjusted for ``spec["adjust_covariates"]`` with the ``spec["missing"]``
    design and complete case (``adjusted_cox``); matched: robust SE clustered on the pair (from ``res``) and
    stratified on the pair (``strata(subclass)``, conditional on the pair); IPTW and, when ``overlap_cohort`` added
    it, overlap weights: robust SE (from ``res``). Returns
    {"adjusted", "adjusted_cc", "stratified": endpoint -> table or None, "models": endpoint -> {row label -> table},
    "notes": what was not estimable plus the patients and covariate notes of the adjusted OS model}.
    """
    cohort = cohorts["full"]["df"]
    notes: list[str] = []
    adjusted, adjusted_cc, stratified, models = {}, {}, {}, {}
    adj_kw = dict(covariates=spec["adjust_covariates"], categorical=spec["categorical"], ties=spec["ties"],
                  conf_level=spec["conf_level"])
    for ep, (time_col, event_col, _) in ENDPOINTS.items():
        adjusted[ep] = attempt(notes, f"{ep} adjusted", adjusted_cox, cohort, time_col, event_col,
                               missing=spec["missing"], **adj_kw)
        adjusted_cc[ep] = attempt(notes, f"{ep} adjusted, complete case", adjusted_cox, cohort, time_col,
                                  event_col, missing="complete_case", **adj_kw)
        m = {"Full cohort, unadjusted": res[ep]["full"]["cox"],
             f"Full cohort, adjusted ({spec['missing'].replace('_', ' ')})": adjusted[ep],
             "Full cohort, adjusted (complete case)": adjusted_cc[ep]}
        if "matched" in cohorts:
            stratified[ep] = attempt(notes, f"{ep} stratified on pair", cox_ph, cohorts["matched"]["df"], time_col,
                                     event_col, ["arm"], ties=spec["ties"], strata_col="subclass",
                                     weights_col=cohorts["matched"]["kw"]["weights_col"],
                                     conf_level=spec["conf_level"], reference=ARM_REFERENCE)
            m["Matched, robust SE clustered on pair"] = res[ep]["matched"]["cox"]
            m["Matched, stratified on pair"] = stratified[ep]
        if "iptw" in cohorts:
            m["IPTW (ATE), robust SE"] = res[ep]["iptw"]["cox"]
        if "overlap" in cohorts:
            m["Overlap weights (ATO), robust SE"] = res[ep]["overlap"]["cox"]
        models[ep] = m
    if adjusted["os"] is not None:
        notes.append(f"Adjusted OS model: {adjusted['os'].attrs['n']} of {adjusted['os'].attrs['n_input']} patients; "
                     f"complete case: {adjusted_cc['os'].attrs['n'] if adjusted_cc['os'] is not None else 0}.")
        notes.extend(adjusted["os"].attrs["covariate_notes"])
    return {"adjusted": adjusted, "adjusted_cc": adjusted_cc, "stratified": stratified, "models": models,
            "notes": notes}


def cox_table(models: dict[str, dict[str, pd.DataFrame | None]]) -> pd.DataFrame:
    """``hr_summary`` of every endpoint's models (``cox_models(...)["models"]``) stacked, endpoint label first."""
    parts = []
    for ep, (_, _, label) in ENDPOINTS.items():
        d = hr_summary(models[ep]).assign(endpoint=label)
        parts.append(d[["endpoint"] + [c for c in d.columns if c != "endpoint"]])
    return pd.concat(parts, ignore_index=True)


def ph_table(res: dict[str, dict[str, dict]], cohorts: dict[str, dict]) -> pd.DataFrame:
    """Schoenfeld (``cox.zph``) p of the arm: one row per endpoint label, one column per cohort label."""
    return pd.DataFrame({cohorts[c]["label"]: {label: res[ep][c]["ph_p"] for ep, (_, _, label) in ENDPOINTS.items()}
                         for c in cohorts})


def arm_coef(result: dict) -> float:
    """log HR of the arm in an ``analyse_endpoint`` result (the Cox coefficient, for the Schoenfeld plot)."""
    return float(np.log(result["hr"]["hr"]))


def rmst_table(res: dict[str, dict[str, dict]], cohorts: dict[str, dict]) -> pd.DataFrame:
    """``rmst_summary`` for every endpoint and cohort, rows labelled '<endpoint label>, <cohort label>'."""
    return pd.concat([rmst_summary({f"{label}, {cohorts[c]['label']}": res[ep][c] for c in cohorts})
                      for ep, (_, _, label) in ENDPOINTS.items()], ignore_index=True)


def subgroup_analysis(cohorts: dict[str, dict], spec: dict) -> tuple[pd.DataFrame | None, list[str]]:
    """OS subgroups (``cox_interaction_p``, subgroups ``spec["subgroups"]``) in the main cohort (``main_cohort``):
    (table or None when not estimable, notes)."""
    notes: list[str] = []
    table = attempt(notes, "subgroups", cox_interaction_p, cohorts[main_cohort(cohorts)]["df"], "os_months",
                    "os_event", "arm", spec["subgroups"], ties=spec["ties"], conf_level=spec["conf_level"],
                    reference=ARM_REFERENCE)
    return table, notes


def subgroup_counts(cohorts: dict[str, dict], spec: dict, time_col: str = "os_months",
                    event_col: str = "os_event") -> pd.DataFrame:
    """Patients and events per arm in each level of each subgroup of ``spec["subgroups"]``, in the cohort
    ``subgroup_analysis`` uses (``main_cohort``), plus the row subgroup "" / level "" for all its patients: columns
    subgroup, level (as text, as ``cox_interaction_p`` labels it), arm, n, events. Patients with the subgroup
    variable missing are left out of that subgroup, as in ``subgroup_analysis``."""
    df = cohorts[main_cohort(cohorts)]["df"]
    df = df.loc[df[[time_col, event_col]].notna().all(axis=1)]
    rows = []
    for sg in ["", *spec["subgroups"]]:
        part = df if not sg else df.loc[df[sg].notna()].assign(_level=lambda d: d[sg].astype(str))
        groups = [("", part)] if not sg else list(part.groupby("_level", sort=True))
        for level, g in groups:
            for arm in (TREATMENT_ARM, CONTROL_ARM):
                a = g.loc[g["arm"] == arm]
                rows.append({"subgroup": sg, "level": level, "arm": arm, "n": len(a),
                             "events": int(a[event_col].sum())})
    return pd.DataFrame(rows)


def matched_os_evalue(res: dict[str, dict[str, dict]]) -> pd.Series | None:
    """``evalue_hr`` (common outcome, ``rare=False``) of the matched-cohort OS HR; None without a matched cohort or
    a finite HR."""
    if "matched" not in res["os"] or not np.isfinite(res["os"]["matched"]["hr"]["hr"]):
        return None
    h = res["os"]["matched"]["hr"]
    return evalue_hr(h["hr"], h["lower"], h["upper"], rare=False)


def haic_timing(cohort: pd.DataFrame, landmark_months: float,
                offset_days_col: str = "haic_offset_days") -> dict[str, int]:
    """HAIC timing from time zero at a glance: patients in HAIC-TKIs-P at time zero (HAIC on day 0), patients whose
    first HAIC came after time zero (all TKIs-P at time zero: crossovers) and after the landmark L (offset / 30.4375
    > L months)."""
    offset = pd.to_numeric(cohort[offset_days_col], errors="coerce")
    return {"n_haic": int((offset == 0).sum()), "n_after_index": int((offset > 0).sum()),
            "n_after_landmark": int((offset / DAYS_PER_MONTH > landmark_months).sum())}


def landmark_analyses(cohort: pd.DataFrame, spec: dict) -> dict[str, dict]:
    """``landmark_analysis`` at ``spec["landmark_months"]`` for every endpoint, unadjusted and adjusted as the main
    adjusted model (covariates, categorical, missing, ties, conf_level from ``spec``)."""
    return {ep: landmark_analysis(cohort, time_col, event_col, spec["landmark_months"],
                                  covariates=spec["adjust_covariates"], categorical=spec["categorical"],
                                  missing=spec["missing"], ties=spec["ties"], conf_level=spec["conf_level"])
            for ep, (time_col, event_col, _) in ENDPOINTS.items()}


def survival_results(spec: dict, cohorts: dict[str, dict], res: dict[str, dict[str, dict]], cox: dict,
                     landmarks: dict[str, dict], evalue: pd.Series | None = None,
                     subgroups: pd.DataFrame | None = None) -> dict[str, object]:
    """The flat ``results.json`` "survival" section: settings, then per endpoint ``flat_results`` of every cohort,
    ``{ep}_hr_adj`` / ``_hr_adj_cc`` (with ``_n``), ``_hr_matched_strat``, ``_hr_landmark`` (adjusted) /
    ``_hr_landmark_unadj`` and the landmark counts; median_follow_up (= the full-cohort OS reverse KM), the OS
    E-value and the subgroup interaction p values when given."""
    values: dict[str, object] = {"conf_type": spec["conf_type"], "conf_level": spec["conf_level"],
                                 "rmst_tau_months": spec["rmst_tau_months"],
                                 "landmark_months": spec["landmark_months"], "adjust_missing": spec["missing"],
                                 "cohorts": list(cohorts)}
    for ep in ENDPOINTS:
        for c in cohorts:
            values.update(flat_results(res[ep][c], ep, "" if c == "full" else c))
        for kind, key in (("adjusted", "adj"), ("adjusted_cc", "adj_cc")):
            table = cox[kind][ep]
            values.update(flat_hr(arm_hr(table), f"{ep}_hr_{key}"))
            values[f"{ep}_hr_{key}_n"] = table.attrs["n"] if table is not None else None
        if "matched" in cohorts:
            values.update(flat_hr(arm_hr(cox["stratified"][ep]), f"{ep}_hr_matched_strat"))
        lm = landmarks[ep]
        values.update(flat_hr(lm["hr_adj"], f"{ep}_hr_landmark"))
        values.update(flat_hr(lm["hr_unadj"], f"{ep}_hr_landmark_unadj"))
        values.update({f"{ep}_landmark_n": lm["n"], f"{ep}_landmark_n_reclassified": lm["n_reclassified"],
                       f"{ep}_landmark_n_reclassified_to_haic": lm["n_reclassified_to_haic"]})
    values.update({f"median_follow_up{b}": values[f"os_median_follow_up{b}"] for b in ("", "_lower", "_upper")})
    if evalue is not None:
        values.update({"os_evalue": evalue["evalue_point"], "os_evalue_ci": evalue["evalue_ci"]})
    if subgroups is not None:
        for sg, p in subgroups.groupby("subgroup")["p_interaction"].first().items():
            values[f"os_subgroup_{sg}_p_interaction"] = p
    return values


def headline_results(values: dict[str, object]) -> dict[str, object]:
    """The OS medians and hazard ratios of the results section (keys os_*, with '_hr_' or 'median', <= 4 '_')."""
    return {k: v for k, v in values.items() if k.startswith("os_") and ("_hr_" in k or "median" in k)
            and k.count("_") <= 4}

