"""Notebook 05_survival's analyses of progression beyond the main PFS comparison (computation only; tables and
figures in ``reporting/survival.py``): the PFS rules applied per arm and the PFS definitions compared, time to
progression with death as a competing event, duration of response, and evaluation-time bias (imaging schedule by arm,
progression treated as interval-censored, midpoint imputation).

Statistics: ``stats.competing_risks`` (cmprsk::cuminc, Gray's test, cause-specific Cox), ``stats.kaplan_meier``
(survfit, quantile.survfit), ``stats.cox`` (coxph), ``stats.interval_censoring`` (Turnbull NPMLE via lifelines,
midpoints). Rules: docs/methods/pfs-rules.md, docs/methods/competing-risks.md, docs/methods/survival.md.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis_utils.stats.competing_risks import cause_specific_cox, cuminc, cuminc_at
from analysis_utils.stats.cox import cox_ph
from analysis_utils.stats.interval_censoring import (midpoint_imputation, npmle_median, npmle_survival_at,
                                                     turnbull_npmle)
from analysis_utils.stats.kaplan_meier import kaplan_meier, median_survival
from analysis_utils.stats.logrank import logrank_test
from analysis_utils.study.endpoints import DAYS_PER_MONTH, PFS_EVENT_PD, PFS_RULES
from analysis_utils.study.treatment import ARM_CONTROL, ARM_HAIC

ARMS = (ARM_HAIC, ARM_CONTROL)
ARM_REFERENCE = {"arm": ARM_CONTROL}
ARM_TERM = f"arm[T.{ARM_HAIC}]"
CRITERIA = {"recist": "RECIST 1.1", "mrecist": "mRECIST"}
PFS_DEFINITIONS = {"": "main", "_newtx": "new anticancer therapy censored", "_allevents": "all events"}
CAUSES = {1: "progression", 2: "death without progression"}


def _arm_hr(table: pd.DataFrame | None) -> dict[str, float]:
    if table is None:
        return {"hr": np.nan, "lower": np.nan, "upper": np.nan, "p": np.nan}
    r = table.set_index("term").loc[ARM_TERM]
    return {"hr": float(r["hr"]), "lower": float(r["lower"]), "upper": float(r["upper"]), "p": float(r["p"])}


def _try(notes: list[str], label: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except (ValueError, np.linalg.LinAlgError) as exc:
        notes.append(f"{label}: not estimable ({exc})")
        return None


# --------------------------------------------------------------------------------------------------------------------
# PFS rules and definitions (docs/methods/pfs-rules.md)
# --------------------------------------------------------------------------------------------------------------------
def pfs_rule_counts(cohort: pd.DataFrame, criteria: Sequence[str] = tuple(CRITERIA),
                    arm_col: str = "arm") -> pd.DataFrame:
    """Patients per PFS rule (``pfs_<criterion><definition>_rule``, in ``study.endpoints.PFS_RULES`` order) and arm,
    for every criterion and definition present: columns criterion, definition, rule, one count per arm, total."""
    rows = []
    for crit in criteria:
        for suffix, label in PFS_DEFINITIONS.items():
            col = f"pfs_{crit}{suffix}_rule"
            if col not in cohort.columns:
                continue
            counts = pd.crosstab(cohort[col], cohort[arm_col]).reindex(index=list(PFS_RULES), columns=list(ARMS),
                                                                      fill_value=0)
            for rule, r in counts.iterrows():
                rows.append({"criterion": crit, "definition": label, "rule": rule,
                             **{arm: int(r[arm]) for arm in ARMS}, "total": int(r.sum())})
    return pd.DataFrame(rows)


def pfs_definitions(cohorts: dict[str, dict], spec: dict) -> tuple[pd.DataFrame, list[str]]:
    """PFS per definition (main, new anticancer therapy censored, all events) and criterion in each cohort: events
    per arm, median per arm (R quantile.survfit) and the Cox HR of arm (robust, pair-clustered in the matched
    cohort; model-based otherwise; IPTW left out). Returns (table, notes)."""
    notes: list[str] = []
    rows = []
    for name, c in cohorts.items():
        if name == "iptw":
            continue
        df, cluster = c["df"], c["kw"].get("cluster_col")
        for crit, crit_label in CRITERIA.items():
            for suffix, label in PFS_DEFINITIONS.items():
                tcol, ecol = f"pfs_{crit}{suffix}_months", f"pfs_{crit}{suffix}_event"
                if tcol not in df.columns:
                    continue
                d = df[df[[tcol, ecol]].notna().all(axis=1)]
                cox = _try(notes, f"{name} {crit}{suffix}", cox_ph, d, tcol, ecol, ["arm"], ties=spec["ties"],
                           cluster_col=cluster, conf_level=spec["conf_level"], reference=ARM_REFERENCE)
                row: dict[str, Any] = {"cohort": c["label"], "criterion": crit_label, "definition": label}
                for arm in ARMS:
                    m = d["arm"] == arm
                    km = kaplan_meier(d.loc[m, tcol], d.loc[m, ecol], conf_type=spec["conf_type"],
                                      conf_level=spec["conf_level"])
                    med = median_survival(km)
                    row.update({f"{arm} events": int(d.loc[m, ecol].sum()), f"{arm} median": med["median"],
                                f"{arm} median lower": med["lower"], f"{arm} median upper": med["upper"]})
                hr = _arm_hr(cox)
                row.update({"hr": hr["hr"], "hr_lower": hr["lower"], "hr_upper": hr["upper"], "hr_p": hr["p"]})
                rows.append(row)
    return pd.DataFrame(rows), notes


# --------------------------------------------------------------------------------------------------------------------
# competing risks: time to progression, death without progression competing (docs/methods/competing-risks.md)
# --------------------------------------------------------------------------------------------------------------------
def progression_status(df: pd.DataFrame, criterion: str) -> pd.DataFrame:
    """Time (months) and cause from the main PFS columns: 1 = progression (rule "event: progression"), 2 = death
    without progression, 0 = censored (the PFS censoring rules apply unchanged)."""
    rule = df[f"pfs_{criterion}_rule"]
    event = df[f"pfs_{criterion}_event"] == 1
    status = np.select([event & (rule == PFS_EVENT_PD), event], [1, 2], 0)
    return pd.DataFrame({"study_id": df["study_id"].to_numpy(), "arm": df["arm"].to_numpy(),
                         "time": df[f"pfs_{criterion}_months"].to_numpy(dtype=float), "status": status},
                        index=df.index)


def competing_progression(df: pd.DataFrame, criterion: str, times: Sequence[float], spec: dict,
                          cluster_col: str | None = None) -> dict[str, Any]:
    """Aalen-Johansen cumulative incidence of progression and of death without progression per arm (cmprsk
    ``cuminc``, log-log limits), Gray's test per cause, and cause-specific Cox HRs of arm (robust, clustered on
    ``cluster_col`` when given). Returns {"data", "cif" (arm, cause, time, est, lower, upper), "gray" (cause ->
    stat/p/df), "cs_hr" (cause -> HR dict), "curves", "n", "notes"}."""
    notes: list[str] = []
    data = progression_status(df, criterion)
    keep = data["time"].notna()
    d = data[keep].assign(**({cluster_col: df.loc[keep, cluster_col].to_numpy()} if cluster_col else {}))
    res = cuminc(d["time"], d["status"], d["arm"])
    at = cuminc_at(res, times, spec["conf_level"]).rename(columns={"group": "arm"})
    gray = {int(r.cause): {"stat": r.stat, "p": r.p, "df": r.df} for r in res.tests.itertuples()}
    cs = {}
    for cause in CAUSES:
        table = _try(notes, f"cause-specific Cox ({CAUSES[cause]})", cause_specific_cox, d, "time", "status", cause,
                     ["arm"], ties=spec["ties"], cluster_col=cluster_col, conf_level=spec["conf_level"],
                     reference=ARM_REFERENCE)
        cs[cause] = _arm_hr(table)
    return {"data": d, "cif": at, "gray": gray, "cs_hr": cs, "curves": res.curves, "notes": notes,
            "n": {arm: int((d["arm"] == arm).sum()) for arm in ARMS},
            "events": {(arm, c): int(((d["arm"] == arm) & (d["status"] == c)).sum()) for arm in ARMS for c in CAUSES}}


# --------------------------------------------------------------------------------------------------------------------
# duration of response (docs/methods/competing-risks.md)
# --------------------------------------------------------------------------------------------------------------------
def duration_of_response(df: pd.DataFrame, criterion: str, spec: dict) -> dict[str, Any]:
    """Duration of response per arm among responders (unconfirmed BOR CR or PR): from the first CR/PR visit
    (``first_response_date_<criterion>``) to progression or death, censored as the main PFS (its date and status):
    Kaplan-Meier per arm (R survfit), median with CI (quantile.survfit). Returns {"data", "km", "median", "n",
    "events"}."""
    bor = df[f"bor_{criterion}"].astype("object")
    first = pd.to_datetime(df[f"first_response_date_{criterion}"])
    resp = bor.isin(["CR", "PR"]) & first.notna() & df[f"pfs_{criterion}_days"].notna()
    d = df.loc[resp]
    start = (first[resp] - pd.to_datetime(d["index_date"])).dt.days
    months = (d[f"pfs_{criterion}_days"] - start).clip(lower=0) / DAYS_PER_MONTH
    data = pd.DataFrame({"study_id": d["study_id"], "arm": d["arm"], "time": months,
                         "event": d[f"pfs_{criterion}_event"].astype(int)})
    km, med = {}, {}
    for arm in ARMS:
        m = data["arm"] == arm
        if m.any():
            km[arm] = kaplan_meier(data.loc[m, "time"], data.loc[m, "event"], conf_type=spec["conf_type"],
                                   conf_level=spec["conf_level"])
            med[arm] = median_survival(km[arm])
    return {"data": data, "km": km, "median": pd.DataFrame(med).T.rename_axis("arm"),
            "n": {arm: int((data["arm"] == arm).sum()) for arm in ARMS},
            "events": {arm: int(data.loc[data["arm"] == arm, "event"].sum()) for arm in ARMS}}


# --------------------------------------------------------------------------------------------------------------------
# evaluation-time bias (docs/methods/competing-risks.md)
# --------------------------------------------------------------------------------------------------------------------
def imaging_schedule(timepoints: pd.DataFrame, cohort: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Imaging schedule by arm from one criterion's time points (the visits are the same for both): per patient
    the days from the index date to the first post-baseline scan, the median interval between consecutive
    post-baseline scans (the first interval counted from the index date) and scans per year of imaging follow-up.
    Returns (per-patient table, summary by arm: median, Q1, Q3 of each, and the nominal two-sided Wilcoxon rank-sum
    p, R ``wilcox.test(correct = TRUE)`` normal approximation)."""
    tp = timepoints[(timepoints["visit"] > 0) & timepoints["study_id"].isin(cohort["study_id"])]
    tp = tp.sort_values(["study_id", "days_from_index"], kind="mergesort")
    day = tp["days_from_index"].astype(float)
    gap = day.groupby(tp["study_id"]).diff().fillna(day)
    per = pd.DataFrame({"first_scan_days": day.groupby(tp["study_id"]).min(),
                        "median_interval_days": gap.groupby(tp["study_id"]).median(),
                        "n_scans": day.groupby(tp["study_id"]).size(),
                        "last_scan_days": day.groupby(tp["study_id"]).max()})
    per["scans_per_year"] = per["n_scans"] / (per["last_scan_days"].clip(lower=1) / 365.25)
    per = per.join(cohort.set_index("study_id")["arm"]).reset_index()
    rows = []
    for col, label in (("first_scan_days", "Days from index date to the first scan"),
                       ("median_interval_days", "Median interval between scans, days"),
                       ("scans_per_year", "Scans per year of imaging follow-up")):
        row: dict[str, Any] = {"measure": label}
        vals = {}
        for arm in ARMS:
            v = per.loc[per["arm"] == arm, col].dropna()
            vals[arm] = v
            row.update({f"{arm} n": len(v), f"{arm} median": float(v.median()), f"{arm} q1": float(v.quantile(0.25)),
                        f"{arm} q3": float(v.quantile(0.75))})
        a, b = vals[ARMS[0]], vals[ARMS[1]]
        row["p"] = float(stats.mannwhitneyu(a, b, use_continuity=True, method="asymptotic").pvalue) \
            if len(a) and len(b) else np.nan
        rows.append(row)
    return per, pd.DataFrame(rows)


def progression_intervals(df: pd.DataFrame, criterion: str) -> pd.DataFrame:
    """(L, R] in months per patient for the interval-censored analysis, from the all-events PFS definition (every
    progression and death an event; docs/methods/pfs-rules.md): progression -> (last adequate assessment before it,
    the scan that showed it]; death without progression -> exact (L = R); censored -> (censoring time, inf)."""
    rule = df[f"pfs_{criterion}_allevents_rule"]
    t = df[f"pfs_{criterion}_allevents_days"].to_numpy(dtype=float)
    last = df[f"pfs_{criterion}_last_adequate_days"].to_numpy(dtype=float)
    event = (df[f"pfs_{criterion}_allevents_event"] == 1).to_numpy()
    pd_event = (rule == PFS_EVENT_PD).to_numpy()
    left = np.where(pd_event, np.fmin(last, t), t)
    right = np.where(event, t, np.inf)
    return pd.DataFrame({"study_id": df["study_id"].to_numpy(), "arm": df["arm"].to_numpy(),
                         "left": left / DAYS_PER_MONTH, "right": right / DAYS_PER_MONTH}, index=df.index)


def interval_censored_pfs(df: pd.DataFrame, criterion: str, times: Sequence[float], spec: dict,
                          cluster_col: str | None = None) -> dict[str, Any]:
    """Evaluation-time sensitivity analysis of PFS: (a) Turnbull NPMLE per arm of the intervals of
    ``progression_intervals`` (S at ``times`` with its bounds, the median's Turnbull interval); (b) midpoint
    imputation: KM median per arm, log-rank p, Cox HR of arm (robust, clustered when ``cluster_col``).
    Returns {"npmle" (arm -> table), "survival_at", "median", "midpoint" (HR dict, medians, log-rank p), "notes"}."""
    notes: list[str] = []
    iv = progression_intervals(df, criterion).dropna(subset=["left", "right"])
    npmle, at, med = {}, [], {}
    for arm in ARMS:
        m = iv["arm"] == arm
        if not m.any():
            continue
        npmle[arm] = turnbull_npmle(iv.loc[m, "left"], iv.loc[m, "right"])
        at.append(npmle_survival_at(npmle[arm], times).assign(arm=arm))
        med[arm] = npmle_median(npmle[arm])
    time, event = midpoint_imputation(iv["left"], iv["right"])
    mid = iv.assign(time=time, event=event)
    if cluster_col:
        mid[cluster_col] = df.loc[iv.index, cluster_col].to_numpy()
    cox = _try(notes, "midpoint Cox", cox_ph, mid, "time", "event", ["arm"], ties=spec["ties"],
               cluster_col=cluster_col, conf_level=spec["conf_level"], reference=ARM_REFERENCE)
    medians = {}
    for arm in ARMS:
        m = mid["arm"] == arm
        medians[arm] = median_survival(kaplan_meier(mid.loc[m, "time"], mid.loc[m, "event"],
                                                    conf_type=spec["conf_type"], conf_level=spec["conf_level"]))
    lr = logrank_test(mid["time"], mid["event"], mid["arm"])
    return {"npmle": npmle, "survival_at": pd.concat(at, ignore_index=True) if at else pd.DataFrame(),
            "median": med, "midpoint": {"hr": _arm_hr(cox), "median": medians, "logrank_p": lr.p},
            "n_interval": int(np.isfinite(iv["right"]).sum() - (iv["left"] == iv["right"]).sum()), "notes": notes}


# --------------------------------------------------------------------------------------------------------------------
# the "progression" section of results.json
# --------------------------------------------------------------------------------------------------------------------
ARM_TAGS = {ARM_HAIC: "haic", ARM_CONTROL: "control"}
RULE_KEYS = dict(zip(PFS_RULES, ("event_pd", "event_death", "event_early_death", "censor_missed", "censor_new_therapy",
                                 "censor_no_adequate", "censor_no_event")))
DEFINITION_KEYS = {"main": "main", "new anticancer therapy censored": "newtx", "all events": "allevents"}


def _tkey(t: float) -> str:
    return f"{int(t)}m" if float(t).is_integer() else f"{t:g}m".replace(".", "p")


def progression_results(rule_counts: pd.DataFrame, definitions: pd.DataFrame, competing: dict[str, dict],
                        dor: dict[str, dict], schedule: pd.DataFrame, interval: dict[str, dict]) -> dict[str, Any]:
    """Flat keys of the ``progression`` section: ``pfs_<c>_<definition>_rule_<rule>_<arm>`` (counts per rule),
    ``pfs_<c>_<definition>_hr[_matched][_lower|_upper|_p]``, ``ttp_<c>_cif_<t>_<arm>`` and ``death_<c>_cif_...``
    (cumulative incidence with limits), ``ttp_<c>_gray_p`` / ``death_<c>_gray_p``, ``ttp_<c>_cs_hr`` /
    ``death_<c>_cs_hr`` (cause-specific HRs), ``dor_<c>_n_<arm>`` / ``_events_`` / ``_median_<arm>[_lower|_upper]``,
    ``imaging_<measure>_<arm>`` medians and ``imaging_<measure>_p``, ``ic_<c>_npmle_median_<arm>_lower|_upper``,
    ``ic_<c>_midpoint_hr[_lower|_upper]``, ``ic_<c>_midpoint_median_<arm>``, ``ic_<c>_n_interval``."""
    out: dict[str, Any] = {}
    for r in rule_counts.to_dict("records"):
        d = DEFINITION_KEYS[r["definition"]]
        for arm, tag in ARM_TAGS.items():
            out[f"pfs_{r['criterion']}_{d}_rule_{RULE_KEYS[r['rule']]}_{tag}"] = int(r[arm])
    crit_of = {v: k for k, v in CRITERIA.items()}
    for r in definitions.to_dict("records"):
        key = f"pfs_{crit_of[r['criterion']]}_{DEFINITION_KEYS[r['definition']]}_hr" + (
            "" if r["cohort"].startswith("Full") else "_matched")
        out.update({key: r["hr"], f"{key}_lower": r["hr_lower"], f"{key}_upper": r["hr_upper"], f"{key}_p": r["hr_p"]})
    for crit, res in competing.items():
        for cause, name in ((1, "ttp"), (2, "death")):
            for t in res["cif"][res["cif"]["cause"] == cause].itertuples(index=False):
                k = f"{name}_{crit}_cif_{_tkey(t.time)}_{ARM_TAGS[t.arm]}"
                out.update({k: t.est, f"{k}_lower": t.lower, f"{k}_upper": t.upper})
            out[f"{name}_{crit}_gray_p"] = res["gray"].get(cause, {}).get("p")
            hr = res["cs_hr"][cause]
            out.update({f"{name}_{crit}_cs_hr": hr["hr"], f"{name}_{crit}_cs_hr_lower": hr["lower"],
                        f"{name}_{crit}_cs_hr_upper": hr["upper"], f"{name}_{crit}_cs_hr_p": hr["p"]})
            for arm, tag in ARM_TAGS.items():
                out[f"{name}_{crit}_events_{tag}"] = res["events"][(arm, cause)]
    for crit, res in dor.items():
        for arm, tag in ARM_TAGS.items():
            out[f"dor_{crit}_n_{tag}"], out[f"dor_{crit}_events_{tag}"] = res["n"][arm], res["events"][arm]
            if arm in res["median"].index:
                m = res["median"].loc[arm]
                out.update({f"dor_{crit}_median_{tag}": m["median"], f"dor_{crit}_median_{tag}_lower": m["lower"],
                            f"dor_{crit}_median_{tag}_upper": m["upper"]})
    names = ("first_scan_days", "interval_days", "scans_per_year")
    for name, r in zip(names, schedule.to_dict("records")):
        for arm, tag in ARM_TAGS.items():
            out[f"imaging_{name}_{tag}"] = r[f"{arm} median"]
        out[f"imaging_{name}_p"] = r["p"]
    for crit, res in interval.items():
        hr = res["midpoint"]["hr"]
        out.update({f"ic_{crit}_midpoint_hr": hr["hr"], f"ic_{crit}_midpoint_hr_lower": hr["lower"],
                    f"ic_{crit}_midpoint_hr_upper": hr["upper"], f"ic_{crit}_n_interval": res["n_interval"]})
        for arm, tag in ARM_TAGS.items():
            lo, hi = res["median"].get(arm, (np.nan, np.nan))
            out.update({f"ic_{crit}_npmle_median_{tag}_lower": lo, f"ic_{crit}_npmle_median_{tag}_upper": hi,
                        f"ic_{crit}_midpoint_median_{tag}": res["midpoint"]["median"][arm]["median"]})
    return out
