"""Baseline imaging: the baseline scan, measurable intrahepatic disease at baseline and the number of follow-up
scans; the lesion table in the form the RECIST engine expects."""
from __future__ import annotations

import pandas as pd

from analysis_utils.study import recist
from analysis_utils.study.config import CleaningConfig


def baseline_imaging(lesions: pd.DataFrame, index: pd.DataFrame, cfg: CleaningConfig) -> pd.DataFrame:
    """Per study ID: the baseline scan (as :func:`analysis_utils.recist.find_baseline` defines it) shows a
    measurable intrahepatic lesion (LD >= 10 mm, RECIST 1.1 measurability) and how many follow-up scans exist."""
    idx = index.dropna(subset=["study_id", "index_date"])
    les = lesions_for_engine(lesions[lesions["study_id"].isin(idx["study_id"])])
    base = recist.find_baseline(les, idx[["study_id", "index_date"]], cfg.baseline_imaging_window_days,
                                cfg.baseline_imaging_after_days)[["study_id", "baseline_date"]]
    les = les.merge(base, on="study_id")
    at_base = les[les["assessment_date"] == les["baseline_date"]]
    measurable = at_base[(at_base["organ"] == "liver") & (at_base["lesion_type"] != "new") & (at_base["ld_mm"] >= 10)]
    n_follow = les[les["assessment_date"] > les["baseline_date"]].groupby("study_id")["assessment_date"].nunique()
    out = base.set_index("study_id")
    out["baseline_measurable_liver"] = out.index.isin(measurable["study_id"])
    out["n_followup_scans"] = n_follow.reindex(out.index).fillna(0).astype(int)
    return out.reset_index()


def lesions_for_engine(lesions: pd.DataFrame) -> pd.DataFrame:
    """The harmonised lesion table with yes/no columns as nullable booleans, as the RECIST engine expects."""
    out = lesions.copy()
    for col in ("arterial_enhancement", "cytology_confirmed"):
        out[col] = out[col].map({"yes": True, "no": False}).astype("boolean")
    return out
