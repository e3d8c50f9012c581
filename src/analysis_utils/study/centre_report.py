"""Centres as a data manager reads them: the flow per centre, and a centre that loses most of its records, or
whose records mostly cannot be assessed, named with its likely cause.

A broken export rarely shows as an error: an HAIC table with unusable dates sends its patients to the control arm,
a treatment file without dates sends every record to "treatment without a date". Since a blank eligibility field is
missing, not failed (docs/methods/eligibility-and-time-zero.md), a required column left out of one centre's patients
file no longer excludes its records: they stay, each with an eligibility query, and leave the analysis only in the
sensitivity analysis with complete eligibility data. Either way the flow looks plausible and the cause hides among
thousands of cell entries. :func:`centre_losses` compares each centre's share of excluded records, and of records
kept with an eligibility query, with the other centres'; a centre reaching at least :data:`LOSS_SHARE` of its
records, and at least :data:`LOSS_RATIO` times the other centres' share, gets one error entry (``affects =
'centre'``) naming how many records it lost (or kept unassessed), the criterion most of them failed first (or could
not be assessed on), and the likely cause: the file- or column-level entry of that centre about the criterion's input
columns (:data:`CRITERION_INPUTS`), else the most frequent cell-level error on them. :func:`flow_by_centre` is the
STROBE flow with one row per centre.
"""
from __future__ import annotations

import pandas as pd

from analysis_utils.study.eligibility import CRITERIA, query_name
from analysis_utils.study.quality import QualityLog, entry_level

LOSS_SHARE = 0.5
LOSS_RATIO = 2.0
MIN_RECORDS = 10

#: criterion -> (table, input columns; empty = any column of the table) whose problems can make records fail it
CRITERION_INPUTS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "duplicate_record": [("patients", ("mrn", "national_id", "patient_name", "birth_date"))],
    "no_treatment_start": [("haic_cycles", ()), ("systemic_courses", ())],
    "treatment_date_unknown": [("haic_cycles", ("haic_date",)), ("systemic_courses", ("start_date",))],
    "hcc_not_confirmed": [("patients", ("diagnosis_basis",))],
    "excluded_histology": [("patients", ("histology_subtype",))],
    "bclc_not_b_or_c": [("patients", ("bclc_stage", "mvi", "ehs", "ecog"))],
    "prior_systemic_therapy": [("patients", ("prior_systemic_therapy",))],
    "no_measurable_intrahepatic": [("tumour_assessments", ())],
    "child_pugh_c": [("patients", ("total_bilirubin", "total_bilirubin_unit", "albumin", "albumin_unit", "inr",
                                   "ascites", "encephalopathy"))],
    "ecog_above_2": [("patients", ("ecog",))],
    "severe_encephalopathy": [("patients", ("encephalopathy",))],
    "start_after_death_or_cutoff": [("haic_cycles", ("haic_date",)), ("systemic_courses", ("start_date",)),
                                    ("follow_up", ("death_date", "vital_status"))],
    "invalid_follow_up": [("follow_up", ())],
}


def flow_by_centre(screened: pd.DataFrame) -> pd.DataFrame:
    """Records screened, excluded by first failing criterion, analysed (and of them, those kept with an eligibility
    query, ``analysed_with_query``) and per arm, one row per centre (plus ``pct_analysed``). Columns of criteria
    nobody fails are kept, so every centre's row reconciles: screened = sum of exclusions + analysed."""
    rows = []
    for center, s in screened.groupby("center_id", sort=True):
        row = {"center_id": center, "screened": len(s)}
        for c in CRITERIA:
            row[f"excluded_{c.name}"] = int((s["exclusion_reason"] == c.name).sum())
        row["analysed"] = int(s["eligible"].sum())
        if "eligibility_query" in s.columns:
            row["analysed_with_query"] = int((s["eligible"] & s["eligibility_query"]).sum())
        for arm, n in s.loc[s["eligible"], "arm"].value_counts().sort_index().items():
            row[f"arm_{arm}"] = int(n)
        row["pct_analysed"] = round(100.0 * row["analysed"] / max(len(s), 1), 1)
        rows.append(row)
    out = pd.DataFrame(rows)
    arm_cols = sorted(c for c in out.columns if c.startswith("arm_"))
    out[arm_cols] = out[arm_cols].fillna(0).astype(int)
    return out


def _cause(entries: pd.DataFrame, center: str, criterion: str) -> dict[str, str]:
    """The likely cause of a centre's loss: its entries about the criterion's inputs (file-level first, errors
    before warnings)."""
    mine = entries[(entries["center_id"] == center) & entries["severity"].isin(["error", "warning"])]
    if mine.empty:
        return {}
    table = mine["file"].str.split("/").str[-1].str.rsplit(".", n=1).str[0]
    about = pd.Series(False, index=mine.index)
    for tname, cols in CRITERION_INPUTS.get(criterion, []):
        about |= (table == tname) & ((mine["column"].isin(cols) | (mine["column"] == "")) if cols else True)
    mine = mine[about]
    if mine.empty:
        return {}
    level = entry_level(mine)
    top = mine[level == "file"].sort_values("severity", key=lambda v: v.ne("error"), kind="mergesort")
    if len(top):  # an error (a column or file lost) before a warning (e.g. an HAIC table without rows)
        r = top.iloc[0]
        return {"file": r["file"], "column": r["column"], "text": f"{r['file']} {r['column']}: {r['rule']}".replace(" :", ":")}
    counts = mine.groupby(["file", "column", "rule"]).size().sort_values(ascending=False, kind="mergesort")
    (file, column, rule), n = counts.index[0], int(counts.iloc[0])
    return {"file": file, "column": column, "text": f"{file} {column}: {n} cells - {rule}"}


def _alerts(screened: pd.DataFrame) -> list[dict]:
    """Per centre over the thresholds (module docstring): kind 'excluded' (records excluded; criterion = the most
    frequent first failing one) or 'query' (records kept with an eligibility query; criterion = the most frequent
    blank criterion among them)."""
    out = []
    kinds = [("excluded", ~screened["eligible"].astype(bool))]
    if "eligibility_query" in screened.columns:
        kinds.append(("query", screened["eligible"].astype(bool) & screened["eligibility_query"].astype(bool)))
    for kind, hit in kinds:
        for center, s in screened.groupby("center_id", sort=True):
            n, k_hit = len(s), int(hit[s.index].sum())
            others = hit[screened["center_id"] != center]
            other_share = float(others.mean()) if len(others) else 0.0
            if n < MIN_RECORDS or k_hit < LOSS_SHARE * n or k_hit / n < LOSS_RATIO * other_share:
                continue
            if kind == "excluded":
                reasons = s["exclusion_reason"].value_counts()
            else:
                reasons = pd.Series({c.name: int(s.loc[hit[s.index], query_name(c.name)].sum()) for c in CRITERIA
                                     if query_name(c.name) in s.columns})
                reasons = reasons[reasons > 0].sort_values(ascending=False, kind="mergesort")
            out.append({"center_id": center, "kind": kind, "screened": n, "n": k_hit, "other_share": other_share,
                        "criterion": str(reasons.index[0]), "n_criterion": int(reasons.iloc[0])})
    return out


def centre_losses(screened: pd.DataFrame, log: QualityLog) -> pd.DataFrame:
    """Centres that lose most of their records, or keep most of them only with an eligibility query (module
    docstring); one error entry each. Returns them (columns center_id, kind ('excluded' or 'query'), screened,
    excluded (records excluded, or kept with a query, by kind), share, share_other_centres, criterion, n_criterion,
    cause)."""
    cols = ["center_id", "kind", "screened", "excluded", "share", "share_other_centres", "criterion", "n_criterion",
            "cause"]
    entries = log.to_frame()
    rows = []
    for a in _alerts(screened):
        center, n, k, other_share, criterion = a["center_id"], a["screened"], a["n"], a["other_share"], a["criterion"]
        cause = _cause(entries, center, criterion) if len(entries) else {}
        label = next((c.label for c in CRITERIA if c.name == criterion), criterion)
        if a["kind"] == "excluded":
            what = (f"centre loses most of its records: {k} of {n} excluded ({100 * k / n:.0f} %; other centres "
                    f"{100 * other_share:.0f} %), {a['n_criterion']} first failing '{criterion}' ({label})")
            action = "records kept in the flow as excluded; check the centre's export and rerun"
        else:
            what = (f"centre's records mostly cannot be assessed: {k} of {n} kept with a blank eligibility field "
                    f"({100 * k / n:.0f} %; other centres {100 * other_share:.0f} %), {a['n_criterion']} on "
                    f"'{criterion}' ({label})")
            action = ("records kept as eligible with an eligibility query (excluded in the sensitivity analysis "
                      "with complete eligibility data); check the centre's export and rerun")
        log.add(rule=what + (f"; likely cause: {cause['text']}" if cause else "; no file-level cause found in the log"),
                action=action, center_id=center, file=cause.get("file", ""), column=cause.get("column", ""),
                value=f"{k} of {n} records", severity="error", affects="centre")
        rows.append([center, a["kind"], n, k, round(k / n, 3), round(other_share, 3), criterion, a["n_criterion"],
                     cause.get("text", "")])
    return pd.DataFrame(rows, columns=cols)
