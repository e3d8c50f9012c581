"""Treatment: the index date (time zero), the drug classes of the combination, HAIC timing and the arm.

Rules: docs/methods/eligibility-and-time-zero.md.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis_utils.study.config import CleaningConfig

ANTI_ANGIOGENIC = ("tki", "anti_vegf")
CHECKPOINT = ("pd1", "pdl1")
ARM_HAIC, ARM_CONTROL = "HAIC-TKIs-P", "TKIs-P"


def treatment_timing(patients: pd.DataFrame, systemic: pd.DataFrame, haic: pd.DataFrame,
                     cfg: CleaningConfig) -> pd.DataFrame:
    """Per study ID: the index date (start of the combination: first dose of the earlier of the two drug classes,
    the other class starting within ``combination_max_gap_days``), the first agents, HAIC timing relative to the
    index date, whether the combination continued after the first HAIC, and the arm (HAIC-TKIs-P when HAIC is
    recorded, else TKIs-P)."""
    sysc = systemic.dropna(subset=["study_id", "start_date"])
    aa = sysc[sysc["drug_class"].isin(ANTI_ANGIOGENIC)].sort_values(["study_id", "start_date", "agent"], kind="mergesort")
    ici = sysc[sysc["drug_class"].isin(CHECKPOINT)].sort_values(["study_id", "start_date", "agent"], kind="mergesort")
    first_aa = aa.groupby("study_id").agg(first_aa_date=("start_date", "first"), tki_agent=("agent", "first"))
    first_ici = ici.groupby("study_id").agg(first_ici_date=("start_date", "first"), pd1_agent=("agent", "first"))
    t = pd.DataFrame(index=pd.Index(patients["study_id"], name="study_id")).join(first_aa).join(first_ici)
    gap = (t["first_aa_date"] - t["first_ici_date"]).dt.days.abs()
    combo = gap <= cfg.combination_max_gap_days
    t["combination_gap_days"] = gap
    t["index_date"] = t[["first_aa_date", "first_ici_date"]].min(axis=1).where(combo)

    h = haic.dropna(subset=["study_id", "haic_date"]).sort_values(["study_id", "haic_date"], kind="mergesort")
    hagg = h.groupby("study_id").agg(first_haic_date=("haic_date", "first"), n_haic_cycles=("haic_date", "size"),
                                     haic_regimen=("regimen", "first"))
    t = t.join(hagg)
    t["n_haic_cycles"] = t["n_haic_cycles"].fillna(0).astype(int)
    t["haic_offset_days"] = (t["first_haic_date"] - t["index_date"]).dt.days

    def active_after(df: pd.DataFrame) -> pd.Series:
        d = df.merge(t[["first_haic_date"]], left_on="study_id", right_index=True)
        ok = d["stop_date"].isna() | (d["stop_date"] > d["first_haic_date"])
        return ok.groupby(d["study_id"]).any()

    t["combination_after_haic"] = (active_after(aa).reindex(t.index, fill_value=False)
                                   & active_after(ici).reindex(t.index, fill_value=False))
    t["arm"] = np.where(t["n_haic_cycles"] > 0, ARM_HAIC, ARM_CONTROL)
    t["haic"] = (t["n_haic_cycles"] > 0).astype(int)
    return t.reset_index()
