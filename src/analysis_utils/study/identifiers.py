"""Identifiers: stable pseudonymous study IDs (HMAC), duplicate patient records, rows linking to no patient, and
dropping every identifier column of the contract before anything is written (identifiers typed into other columns
are masked earlier, at reading: :mod:`analysis_utils.study.masking`)."""
from __future__ import annotations

import hashlib
import hmac

import pandas as pd

from analysis_utils.study.contract import load_contract
from analysis_utils.study.quality import QualityLog

CHILD_TABLES = ("haic_cycles", "systemic_courses", "tumour_assessments", "labs", "adverse_events", "follow_up")


def study_id(center_id: pd.Series, mrn: pd.Series, key: str) -> pd.Series:
    """Stable pseudonym: 'S' + first 10 hex digits of HMAC-SHA256(key, 'centre|mrn')."""
    k = key.encode("utf-8")
    pairs = center_id.astype(str) + "|" + mrn.astype(str)
    ids = {p: "S" + hmac.new(k, p.encode("utf-8"), hashlib.sha256).hexdigest()[:10].upper() for p in pairs.unique()}
    return pairs.map(ids).astype("object")


def mark_duplicate_patients(patients: pd.DataFrame, log: QualityLog) -> pd.Series:
    """Return ``duplicate_of`` (study ID of the kept record, or None) for each patient row.

    Duplicates: the same mrn twice in one centre, or the same person in two centres (same national ID, or same
    name and birth date). The first record in (centre, row) order is kept.
    """
    dup_of = pd.Series(None, index=patients.index, dtype="object")
    order = patients.sort_values(["center_id", "source_row"], kind="mergesort")
    keys = [["center_id", "mrn"], ["national_id"], ["patient_name", "birth_date"]]
    for key in keys:
        sub = order.dropna(subset=key)
        sub = sub[sub["study_id"].notna()]
        first = sub.groupby(key, sort=False)["study_id"].transform("first")
        is_dup = (first != sub["study_id"]) | sub.duplicated(subset=key + ["study_id"], keep="first")
        newly = is_dup & dup_of.loc[sub.index].isna()
        dup_of.loc[newly[newly].index] = first[newly]
    rows = patients.loc[dup_of.notna()].assign(_v=dup_of[dup_of.notna()])
    log.add_rows(rows, rule="duplicate patient record (same mrn, national ID, or name and birth date)",
                 action="excluded as duplicate of the study ID in 'value'", column="mrn", value_col="_v", severity="warning")
    return dup_of


def pseudonymise(tables: dict[str, pd.DataFrame], key: str, log: QualityLog) -> tuple[dict[str, pd.DataFrame], pd.Series]:
    """Add ``study_id`` to every table, mark duplicate patients, then drop every identifier column."""
    identifiers = load_contract().identifier_columns()
    out = {}
    for name, df in tables.items():
        df = df.copy()
        df.insert(1, "study_id", study_id(df["center_id"], df["mrn"], key).where(df["mrn"].notna(), None))
        out[name] = df
    patients = out["patients"]
    dup_of = mark_duplicate_patients(patients, log)
    # the same mrn twice in one centre shares one study ID: give the duplicate row its own suffixed ID
    repeat = patients.duplicated(subset=["study_id"], keep="first") & patients["study_id"].notna()
    patients.loc[repeat, "study_id"] = patients.loc[repeat, "study_id"] + "-D" + patients.loc[repeat, "source_row"].astype(str)
    known = set(patients["study_id"].dropna())
    for name in CHILD_TABLES:
        df = out[name]
        orphan = df["study_id"].notna() & ~df["study_id"].isin(known)
        if orphan.any():
            _orphan_files(df, orphan, log)
            log.add_rows(df.loc[orphan], rule="row refers to an mrn that is not in the centre's patients table",
                         action="row removed", column="mrn", redact=True, severity="error", affects="row")
        out[name] = df.loc[~orphan].reset_index(drop=True)
    birth = patients["birth_date"].copy()
    for name, df in out.items():
        out[name] = df.drop(columns=[c for c in df.columns if c in identifiers])
    out["patients"]["duplicate_of"] = dup_of.values
    out["patients"]["_birth_date"] = birth.values  # used for age at index, dropped in derive_patients
    return out, dup_of


def _orphan_files(df: pd.DataFrame, orphan: pd.Series, log: QualityLog, share: float = 0.5) -> None:
    """One entry per file where most rows link to no patient: the cause, named once above the row entries."""
    for file, n in df.loc[orphan].groupby("source_file").size().items():
        total = int((df["source_file"] == file).sum())
        if n >= 10 and n >= share * total:
            center = df.loc[df["source_file"] == file, "center_id"].iloc[0]
            log.add(rule=f"{n} of {total} rows refer to MRNs absent from {center}'s patients table (wrong file, "
                         "MRNs written differently, or patients missing)", action="rows removed (each listed)",
                    center_id=center, file=file, column="mrn", severity="error", affects="row")
