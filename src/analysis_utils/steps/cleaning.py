"""Notebook 01_cleaning: what the notebook does with the cleaned data beyond the study's derivations.

The derivations themselves (reading the centre exports through the contract, de-duplication, pseudonymisation,
index date and arm, scores, overall survival, eligibility) are in :mod:`analysis_utils.study.cleaning`. Here:
writing the analysis-ready tables the later notebooks read, the ``cleaning`` section of results.json, and the crude
(unadjusted) overview of the analysis cohort by arm.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from analysis_utils.study.centre_report import flow_by_centre
from analysis_utils.study.cleaning import CleanedData
from analysis_utils.study.treatment import ARM_CONTROL, ARM_HAIC


def write_cleaned(cleaned: CleanedData, out_dir: str | Path) -> None:
    """Write the analysis-ready tables (parquet: ``data/screened``, ``data/cohort`` and every child table), the site
    agreement, flow (overall and per centre) and data-quality tables (CSV, ``tables/``: every entry, the summary by
    rule, and one row per centre) under ``out_dir``. Source row numbers are dropped from the parquet tables (the
    data-quality log keeps its located entries), except in ``adverse_events`` and ``labs``, whose problems the safety
    notebook finds and locates by centre, file and row."""
    out = Path(out_dir)
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    screened = cleaned.screened.drop(columns=["source_file", "source_row"], errors="ignore")
    screened.to_parquet(out / "data" / "screened.parquet", index=False)
    screened[screened["eligible"]].to_parquet(out / "data" / "cohort.parquet", index=False)
    for name, df in cleaned.tables.items():
        if name.startswith("site_agreement"):
            df.to_csv(out / "tables" / f"{name}.csv", index=False)
        else:
            keep_rows = name in ("adverse_events", "labs")
            df.drop(columns=[] if keep_rows else ["source_row"], errors="ignore").to_parquet(
                out / "data" / f"{name}.parquet", index=False)
    cleaned.flow.to_csv(out / "tables" / "flow.csv", index=False)
    flow_by_centre(cleaned.screened).to_csv(out / "tables" / "flow_by_centre.csv", index=False)
    cleaned.quality.to_frame().to_csv(out / "tables" / "data_quality.csv", index=False)
    cleaned.quality.summary().to_csv(out / "tables" / "data_quality_summary.csv", index=False)
    cleaned.quality.centre_summary(cleaned.screened).to_csv(out / "tables" / "data_quality_by_centre.csv", index=False)


def results_summary(cleaned: CleanedData) -> dict[str, Any]:
    """The ``cleaning`` section of results.json: records screened, centres, exclusions (total and by first failing
    criterion), patients analysed per arm, data-quality entries, OS events, the range of index dates and how many
    HAIC courses started after the index date."""
    cohort = cleaned.cohort
    arms = cohort["arm"].value_counts()
    return {
        "n_screened": len(cleaned.screened), "n_centers": int(cleaned.screened["center_id"].nunique()),
        "n_excluded": int((~cleaned.screened["eligible"]).sum()), "n_analysed": len(cohort),
        "n_haic": int(arms.get(ARM_HAIC, 0)), "n_control": int(arms.get(ARM_CONTROL, 0)),
        "pct_haic": 100.0 * arms.get(ARM_HAIC, 0) / max(len(cohort), 1),
        "exclusions": {r.criterion: int(r.n) for r in cleaned.flow[cleaned.flow.step == "excluded"].itertuples()},
        "n_quality_entries": len(cleaned.quality.entries), "n_os_events": int(cohort["os_event"].sum()),
        "index_date_min": cohort["index_date"].min(), "index_date_max": cohort["index_date"].max(),
        "haic_after_index_n": int((cohort["haic_offset_days"] > 0).sum()),
    }


def crude_overview(cohort: pd.DataFrame) -> pd.DataFrame:
    """Unadjusted characteristics of the analysis cohort by arm: patients, median age, % ECOG 0, % macrovascular
    invasion, % extrahepatic spread, % Child-Pugh A, median largest tumour diameter (cm), OS events. Denominators
    differ: % ECOG 0 and % Child-Pugh A are of all patients of the arm (a missing value counts as not 0 / not A),
    % MVI and % EHS of the patients with the value recorded (``mean`` of a nullable boolean skips missing values);
    medians skip missing values."""
    return cohort.groupby("arm").agg(
        n=("study_id", "size"), age_median=("age", "median"), ecog0_pct=("ecog", lambda s: 100 * (s == 0).mean()),
        mvi_pct=("mvi", lambda s: 100 * s.mean()), ehs_pct=("ehs", lambda s: 100 * s.mean()),
        child_pugh_a_pct=("child_pugh_class", lambda s: 100 * (s == "A").mean()),
        max_size_median_cm=("max_tumour_size_cm", "median"), os_events=("os_event", "sum"))
