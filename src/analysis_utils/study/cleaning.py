"""Cleaning: from harmonised centre tables to pseudonymised, analysis-ready tables.

Steps (each problem goes to the data-quality log with its centre, file, row and column):
1. read every centre folder through the contract (:mod:`analysis_utils.contract`);
2. remove exact duplicate rows within a file; mark duplicate patient records (same ``mrn`` twice in a centre, or the
   same person exported by two centres: same national ID, or same name and birth date). The first record in
   (centre, row) order is kept; the others stay in the screened table as ``duplicate_record`` exclusions;
3. pseudonymise: a stable study ID per (centre, mrn) = ``S`` + the first 10 hex digits of HMAC-SHA256(key,
   "centre|mrn"), then drop every identifier column of the contract;
4. derive per record (:func:`derive_patients`): time zero (``index_date``: the first treatment component, HAIC or
   the first TKI/anti-VEGF or PD-(L)1 dose), the arm known at time zero, the combination, HAIC timing and
   crossover, the naive ever-HAIC classification (:mod:`analysis_utils.study.treatment`), baseline laboratory
   values as of time zero, age at time zero, Child-Pugh points, score and class, ALBI score and grade, BCLC 2022
   stage (checked against the recorded one), PVTT grades, the baseline scan in the window ending at time zero and
   measurable intrahepatic disease on it (:mod:`analysis_utils.study.baseline`), OS time and event, the
   response-evaluable population (a measurable baseline lesion and at least one follow-up scan), then the
   eligibility criteria at time zero (:mod:`analysis_utils.study.eligibility`).

Time is measured in days from time zero (``index_date``); months are days / (365.25 / 12).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis_utils.study import scores
from analysis_utils.study.baseline import apply_baseline_labs, baseline_imaging
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
    """One row per screened record with every derived variable and the eligibility flags (module docstring, step 4)."""
    p = tables["patients"].copy()
    timing = treatment_timing(p, tables["systemic_courses"], tables["haic_cycles"], cfg, log)
    p = p.merge(timing, on="study_id", how="left")
    p = apply_baseline_labs(p, tables["labs"], cfg, log)
    age = age_in_years(p.pop("_birth_date"), p["index_date"])
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
    p["response_evaluable"] = (p["baseline_measurable_liver"].astype("boolean").fillna(False).astype(bool)
                               & (p["n_followup_scans"].fillna(0) >= 1))
    os_ = overall_survival(p, tables["follow_up"], cfg, log)
    p = p.merge(os_, on="study_id", how="left")
    p = check_start_dates(p, tables["follow_up"], tables["haic_cycles"], cfg, log)
    p = apply_criteria(p, log)
    return p.drop(columns=["_t0_file", "_t0_row", "_t0_column"])


def age_in_years(birth: pd.Series, at: pd.Series) -> pd.Series:
    """Completed years from ``birth`` to ``at`` (the birthday itself counts; born on 29 February: the birthday is
    1 March in other years); missing where either date is. Days / 365.25 is off by one on some birthdays."""
    before_birthday = (at.dt.month < birth.dt.month) | ((at.dt.month == birth.dt.month) & (at.dt.day < birth.dt.day))
    return (at.dt.year - birth.dt.year - before_birthday.astype(int)).astype(float)


def check_start_dates(p: pd.DataFrame, follow_up: pd.DataFrame, haic: pd.DataFrame, cfg: CleaningConfig,
                      log: QualityLog) -> pd.DataFrame:
    """First treatment component after the recorded death or after the data cut-off: located at the row that set
    time zero; the record fails ``start_after_death_or_cutoff``. HAIC sessions dated after death are logged (they
    lie after the end of follow-up and play no part)."""
    fu = follow_up.dropna(subset=["study_id"]).drop_duplicates("study_id", keep="first").set_index("study_id")
    death = p["study_id"].map(fu["death_date"])
    after_death = p["index_date"].notna() & death.notna() & (p["index_date"] > death)
    after_cut = p["index_date"].notna() & (p["index_date"] > cfg.data_cutoff)
    bad = after_death | after_cut
    if bad.any():
        loc = p.loc[bad, ["center_id", "study_id", "_t0_file", "_t0_row", "_t0_column", "index_date"]]
        for rec, dead in zip(loc.to_dict("records"), after_death[bad]):
            log.add(rule=("first treatment component after the death date" if dead
                          else "first treatment component after the data cut-off"),
                    action="record fails 'start_after_death_or_cutoff'", center_id=rec["center_id"],
                    file=rec["_t0_file"], row=rec["_t0_row"], column=rec["_t0_column"], study_id=rec["study_id"],
                    value=rec["index_date"].strftime("%Y-%m-%d"), severity="error")
    out = p.assign(start_after_death_or_cutoff=bad)
    h = haic.dropna(subset=["study_id", "haic_date"])
    late = h["haic_date"] > h["study_id"].map(fu["death_date"])
    if late.any():
        log.add_rows(h[late], rule="HAIC session dated after the death date", column="haic_date",
                     action="kept; it lies after the end of follow-up and plays no part", severity="warning")
    return out


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
    screened, response_tables = derive_response_endpoints(screened, tables["tumour_assessments"], cfg, log,
                                                          systemic=tables["systemic_courses"])
    index = screened[["study_id", "index_date"]]
    date_cols = {"haic_cycles": "haic_date", "systemic_courses": "start_date", "tumour_assessments": "assessment_date",
                 "labs": "lab_date", "adverse_events": "onset_date", "follow_up": "last_contact_date"}
    out_tables = {name: add_days_from_index(tables[name], index, col) for name, col in date_cols.items()}
    out_tables.update(response_tables)
    flow = flow_table(screened)
    check_flow(flow)
    centre_losses(screened, log)  # a centre losing (or keeping unassessed) most of its records: one entry, the cause
    return CleanedData(screened=screened, tables=out_tables, flow=flow, quality=log)
