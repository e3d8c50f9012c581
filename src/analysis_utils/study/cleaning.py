"""Cleaning: from harmonised centre tables to pseudonymised, analysis-ready tables.

Steps (each problem goes to the data-quality log with its centre, file, row and column):
1. read every centre folder through the contract (:mod:`analysis_utils.contract`);
2. remove exact duplicate rows within a file; mark duplicate patient records (same ``mrn`` twice in a centre, or the
   same person exported by two centres: same national ID, or same name and birth date). The first record in
   (centre, row) order is kept; the others stay in the screened table as ``duplicate_record`` exclusions;
3. pseudonymise: a stable study ID per (centre, mrn) = ``S`` + the first 10 hex digits of HMAC-SHA256(key,
   "centre|mrn"), then drop every identifier column of the contract;
4. derive per record: index date (start of the combination = first dose of the earlier of the two drug classes,
   the other class starting within ``combination_max_gap_days``), arm (HAIC-TKIs-P when HAIC is recorded, else
   TKIs-P), HAIC timing relative to the index date, combination cycles after HAIC, age at index, Child-Pugh points,
   score and class, ALBI score and grade, BCLC 2022 stage (checked against the recorded one), PVTT grades,
   baseline measurable intrahepatic disease, OS time and event.

Time is measured in days from the index date; months are days / (365.25 / 12).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis_utils.study import scores
from analysis_utils.study.baseline import baseline_imaging
from analysis_utils.study.centre_report import centre_losses
from analysis_utils.study.config import CleaningConfig
from analysis_utils.study.eligibility import apply_criteria, check_flow, flow_table
from analysis_utils.study.endpoints import derive_response_endpoints, overall_survival
from analysis_utils.study.identifiers import pseudonymise
from analysis_utils.study.quality import QualityLog
from analysis_utils.study.reading import drop_exact_duplicate_rows, load_exports
from analysis_utils.study.treatment import ARM_CONTROL, ARM_HAIC, treatment_timing

__all__ = ["ARM_CONTROL", "ARM_HAIC", "CleanedData", "CleaningConfig", "add_days_from_index", "clean", "derive_patients"]


@dataclass
class CleanedData:
    """Analysis-ready tables (no identifiers) plus the flow and the data-quality log."""

    screened: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    flow: pd.DataFrame
    quality: QualityLog = field(default_factory=QualityLog)

    @property
    def cohort(self) -> pd.DataFrame:
        """Eligible patients only: the analysis cohort."""
        return self.screened[self.screened["eligible"]].reset_index(drop=True)


def derive_patients(tables: dict[str, pd.DataFrame], cfg: CleaningConfig, log: QualityLog) -> pd.DataFrame:
    """One row per screened record with every derived variable and the eligibility flags."""
    p = tables["patients"].copy()
    timing = treatment_timing(p, tables["systemic_courses"], tables["haic_cycles"], cfg)
    p = p.merge(timing, on="study_id", how="left")
    age = np.floor((p["index_date"] - p.pop("_birth_date")).dt.days / 365.25)
    bad_age = age.notna() & ((age < 18) | (age > 100))
    if bad_age.any():
        log.add_rows(p.loc[bad_age], rule="age at index outside 18-100 years (birth date implausible)", column="birth_date",
                     action="age set to missing", redact=True, severity="error")
    p["age"] = age.where(~bad_age)

    points = scores.child_pugh_points(p["total_bilirubin"], p["albumin"], p["inr"], p["ascites"], p["encephalopathy"])
    p[list(points.columns)] = points
    p["child_pugh_score"] = points.sum(axis=1, min_count=points.shape[1]).astype("Int64")
    p["child_pugh_class"] = scores.child_pugh_class(p["child_pugh_score"])
    p["albi_score"] = scores.albi_score(p["total_bilirubin"], p["albumin"])
    p["albi_grade"] = scores.albi_grade(p["albi_score"])

    p["mvi"] = p["mvi"].map({"yes": True, "no": False}).astype("boolean")
    p["ehs"] = p["ehs"].map({"yes": True, "no": False}).astype("boolean")
    p = pd.concat([p, scores.pvtt_grades(p["mvi_grade"])], axis=1)
    inconsistent_grade = (p["mvi"] == False) & p["mvi_grade"].notna()  # noqa: E712
    if inconsistent_grade.any():
        log.add_rows(p.loc[inconsistent_grade], rule="PVTT grade recorded while macrovascular invasion is 'no'",
                     column="mvi_grade", action="grade kept; MVI kept as recorded", severity="warning")
    p["vp4"] = p["vp_grade"].eq("Vp4").astype("boolean").where(p["mvi"].notna())
    p.loc[p["mvi"] == False, "vp4"] = False  # noqa: E712

    p["bclc_derived"] = scores.bclc_b_or_c(p["mvi"], p["ehs"], p["ecog"])
    recorded = p["bclc_stage"].copy()
    differ = recorded.isin(["B", "C"]) & p["bclc_derived"].notna() & (recorded != p["bclc_derived"])
    if differ.any():
        log.add_rows(p.loc[differ].assign(_v=p.loc[differ, "bclc_derived"]), column="bclc_stage",
                     rule="recorded BCLC stage differs from the BCLC 2022 derivation (value = derived)",
                     action="recorded stage kept", value_col="_v", severity="info")
    fill = recorded.isna() & p["bclc_derived"].notna()
    if fill.any():
        log.add_rows(p.loc[fill], rule="BCLC stage missing", column="bclc_stage",
                     action="BCLC 2022 derivation used", severity="warning")
    p["bclc_stage"] = recorded.where(recorded.notna(), p["bclc_derived"])
    p["afp_ge_400"] = (p["afp"] >= 400).astype("boolean").where(p["afp"].notna())
    p["log10_afp"] = np.log10(p["afp"].clip(lower=1.0))
    p["multiple_tumours"] = (p["tumour_number"] > 1).astype("boolean").where(p["tumour_number"].notna())
    p["max_tumour_size_cm"] = p.pop("max_tumour_size")

    img = baseline_imaging(tables["tumour_assessments"], p[["study_id", "index_date"]], cfg)
    p = p.merge(img, on="study_id", how="left")
    os_ = overall_survival(p, tables["follow_up"], cfg, log)
    p = p.merge(os_, on="study_id", how="left")
    p = apply_criteria(p, cfg.haic_window_days)
    return p


def add_days_from_index(df: pd.DataFrame, index: pd.DataFrame, date_col: str) -> pd.DataFrame:
    """Attach ``days_from_index`` (date minus the patient's index date) to a child table."""
    out = df.merge(index[["study_id", "index_date"]], on="study_id", how="left")
    out["days_from_index"] = (out[date_col] - out["index_date"]).dt.days.astype("Int64")
    return out.drop(columns=["index_date"])


def clean(input_dir: str | Path, cfg: CleaningConfig, log: QualityLog | None = None) -> CleanedData:
    """Run the whole cleaning step on a folder of centre exports (never writes to it)."""
    log = log or QualityLog()
    tables = load_exports(input_dir, log)
    tables = drop_exact_duplicate_rows(tables, log)
    tables, _ = pseudonymise(tables, cfg.pseudonym_key, log)
    screened = derive_patients(tables, cfg, log)
    screened, response_tables = derive_response_endpoints(screened, tables["tumour_assessments"], cfg, log)
    index = screened[["study_id", "index_date"]]
    date_cols = {"haic_cycles": "haic_date", "systemic_courses": "start_date", "tumour_assessments": "assessment_date",
                 "labs": "lab_date", "adverse_events": "onset_date", "follow_up": "last_contact_date"}
    out_tables = {name: add_days_from_index(tables[name], index, col) for name, col in date_cols.items()}
    out_tables.update(response_tables)
    flow = flow_table(screened)
    check_flow(flow)
    centre_losses(screened, log)  # a centre losing most of its records: one entry naming the likely cause
    return CleanedData(screened=screened, tables=out_tables, flow=flow, quality=log)
