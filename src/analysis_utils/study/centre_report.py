"""Centres as a data manager reads them: the flow per centre, and a centre that loses most of its records named
with its likely cause.

A broken export rarely shows as an error: a required column left out of one centre's patients file sends all its
records to "HCC not confirmed"; an HAIC table with unusable dates sends its patients to the control arm. The flow
then looks plausible and the cause hides among thousands of cell entries. :func:`centre_losses` compares each
centre's share of excluded records with the other centres'; a centre losing at least :data:`LOSS_SHARE` of its
records, and at least :data:`LOSS_RATIO` times the other centres' share, gets one error entry (``affects =
'centre'``) naming how many records it lost, the criterion most of them failed first, and the likely cause: the
file- or column-level entry of that centre about the criterion's input columns (:data:`CRITERION_INPUTS`), else
the most frequent cell-level error on them. :func:`flow_by_centre` is the STROBE flow with one row per centre.
"""
from __future__ import annotations

import pandas as pd

from analysis_utils.study.eligibility import CRITERIA
from analysis_utils.study.quality import QualityLog, entry_level

LOSS_SHARE = 0.5
LOSS_RATIO = 2.0
MIN_RECORDS = 10

#: criterion -> (table, input columns; empty = any column of the table) whose problems can make records fail it
CRITERION_INPUTS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "duplicate_record": [("patients", ("mrn", "national_id", "patient_name", "birth_date"))],
    "hcc_not_confirmed": [("patients", ("diagnosis_basis",))],
    "excluded_histology": [("patients", ("histology_subtype",))],
    "bclc_not_b_or_c": [("patients", ("bclc_stage", "mvi", "ehs", "ecog"))],
    "prior_systemic_therapy": [("patients", ("prior_systemic_therapy",))],
    "no_combination": [("systemic_courses", ())],
    "haic_outside_window": [("haic_cycles", ("haic_date",)), ("systemic_courses", ("start_date",))],
    "no_cycle_after_haic": [("systemic_courses", ("stop_date", "start_date")), ("haic_cycles", ("haic_date",))],
    "no_measurable_intrahepatic": [("tumour_assessments", ())],
    "child_pugh_c": [("patients", ("total_bilirubin", "total_bilirubin_unit", "albumin", "albumin_unit", "inr",
                                   "ascites", "encephalopathy"))],
    "ecog_above_2": [("patients", ("ecog",))],
    "severe_encephalopathy": [("patients", ("encephalopathy",))],
    "invalid_follow_up": [("follow_up", ())],
}


def flow_by_centre(screened: pd.DataFrame) -> pd.DataFrame:
    """Records screened, excluded by first failing criterion, analysed and per arm, one row per centre (plus
    ``pct_analysed``). Columns of criteria nobody fails are kept, so every centre's row reconciles:
    screened = sum of exclusions + analysed."""
    rows = []
    for center, s in screened.groupby("center_id", sort=True):
        row = {"center_id": center, "screened": len(s)}
        for c in CRITERIA:
            row[f"excluded_{c.name}"] = int((s["exclusion_reason"] == c.name).sum())
        row["analysed"] = int(s["eligible"].sum())
        for arm, n in s.loc[s["eligible"], "arm"].value_counts().sort_index().items():
            row[f"arm_{arm}"] = int(n)
        row["pct_analysed"] = round(100.0 * row["analysed"] / max(len(s), 1), 1)
        rows.append(row)
    out = pd.DataFrame(rows)
    arm_cols = sorted(c for c in out.columns if c.startswith("arm_"))
    out[arm_cols] = out[arm_cols].fillna(0).astype(int)
    return out


def _cause(entries: pd.DataFrame, center: str, criterion: str) -> dict[str, str]:
    """The likely cause of a centre's loss: its entries about the criterion's inputs (file-level first)."""
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
    top = mine[level == "file"]
    if len(top):
        r = top.iloc[0]
        return {"file": r["file"], "column": r["column"], "text": f"{r['file']} {r['column']}: {r['rule']}".replace(" :", ":")}
    counts = mine.groupby(["file", "column", "rule"]).size().sort_values(ascending=False, kind="mergesort")
    (file, column, rule), n = counts.index[0], int(counts.iloc[0])
    return {"file": file, "column": column, "text": f"{file} {column}: {n} cells - {rule}"}


def centre_losses(screened: pd.DataFrame, log: QualityLog) -> pd.DataFrame:
    """Centres that lose most of their records (module docstring); one error entry each. Returns them (columns
    center_id, screened, excluded, share, share_other_centres, criterion, n_criterion, cause)."""
    cols = ["center_id", "screened", "excluded", "share", "share_other_centres", "criterion", "n_criterion", "cause"]
    entries = log.to_frame()
    rows = []
    excluded = ~screened["eligible"].astype(bool)
    for center, s in screened.groupby("center_id", sort=True):
        n, lost = len(s), int(excluded[s.index].sum())
        others = excluded[screened["center_id"] != center]
        other_share = float(others.mean()) if len(others) else 0.0
        if n < MIN_RECORDS or lost < LOSS_SHARE * n or lost / n < LOSS_RATIO * other_share:
            continue
        reasons = s["exclusion_reason"].value_counts()
        criterion, k = str(reasons.index[0]), int(reasons.iloc[0])
        cause = _cause(entries, center, criterion) if len(entries) else {}
        label = next((c.label for c in CRITERIA if c.name == criterion), criterion)
        log.add(rule=f"centre loses most of its records: {lost} of {n} excluded ({100 * lost / n:.0f} %; other "
                     f"centres {100 * other_share:.0f} %), {k} first failing '{criterion}' ({label})"
                     + (f"; likely cause: {cause['text']}" if cause else "; no file-level cause found in the log"),
                action="records kept in the flow as excluded; check the centre's export and rerun",
                center_id=center, file=cause.get("file", ""), column=cause.get("column", ""),
                value=f"{lost} of {n} records", severity="error", affects="centre")
        rows.append([center, n, lost, round(lost / n, 3), round(other_share, 3), criterion, k, cause.get("text", "")])
    return pd.DataFrame(rows, columns=cols)
