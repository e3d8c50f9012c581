"""Legacy rules: the eligibility that the pre-target-trial cleaning rules (index date = start of the combination,
HAIC within +-90 days of it; docs/methods/eligibility-and-time-zero.md, sections 1-3 as implemented before issue 12)
give on the generator's clean events. Written to the truth as `eligible` / `fails_criteria` so that the cleaning in
main can still be checked against the truth until the target-trial cleaning lands; `eligible_t0` is the truth of
the target-trial protocol. Computed from the canonical event lists (events.py), independently of study/.

Criteria (names as in the cleaning's flow): the T0 criteria built by exclusions.py (histology, diagnosis basis,
BCLC, prior systemic therapy, Child-Pugh C on the generator's own score, ECOG 3-4, encephalopathy grade 3-4), plus
no_combination (no TKI/anti-VEGF and PD-(L)1 first doses within 30 days of each other), haic_outside_window (first
HAIC more than 90 days from the index date), no_cycle_after_haic (no course of each class still running after the
first HAIC), no_measurable_intrahepatic (the baseline scan, the last scan in the 42 days up to the index date or else
the first in the 7 days after it, shows no liver lesion of >= 10 mm, or no scan follows it) and invalid_follow_up
(death or last contact on or before the index date). The truth BOR under the same legacy baseline rule is computed in
imaging.py (legacy_baseline) and written as `bor_recist` / `bor_mrecist` beside the T0 ones (`bor_*_t0`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis_utils.synthetic.events import Events

ANTI_ANGIOGENIC = ("tki", "anti_vegf")
CHECKPOINT = ("pd1", "pdl1")
COMBINATION_MAX_GAP_DAYS = 30
HAIC_WINDOW_DAYS = 90
BASELINE_WINDOW_DAYS = 42
BASELINE_AFTER_DAYS = 7


def legacy_index_day(p: pd.DataFrame, ev: Events) -> pd.Series:
    """Per person: the legacy index day (first dose of the combination; NaN without one)."""
    courses = pd.DataFrame(ev.courses, columns=["person_id", "agent", "drug_class", "start_day", "stop_day", "cycles"])
    first = {}
    for name, classes in (("aa", ANTI_ANGIOGENIC), ("ici", CHECKPOINT)):
        c = courses[courses["drug_class"].isin(classes)]
        first[name] = c.groupby("person_id")["start_day"].min().reindex(p["person_id"]).to_numpy(float)
    combo = np.abs(first["aa"] - first["ici"]) <= COMBINATION_MAX_GAP_DAYS
    return pd.Series(np.where(combo, np.fmin(first["aa"], first["ici"]), np.nan), index=p["person_id"].to_numpy())


def _combination_after_haic(p: pd.DataFrame, ev: Events, haic: np.ndarray) -> np.ndarray:
    """Both classes have a course with no stop or a stop after the first HAIC day."""
    courses = pd.DataFrame(ev.courses, columns=["person_id", "agent", "drug_class", "start_day", "stop_day", "cycles"])
    h = pd.Series(haic, index=p["person_id"].to_numpy())
    courses["h"] = courses["person_id"].map(h)
    stop = pd.to_numeric(courses["stop_day"], errors="coerce")
    courses["active"] = stop.isna() | (stop > courses["h"])
    ok = np.ones(len(p), bool)
    for classes in (ANTI_ANGIOGENIC, CHECKPOINT):
        c = courses[courses["drug_class"].isin(classes)]
        ok &= c.groupby("person_id")["active"].any().reindex(p["person_id"], fill_value=False).to_numpy(bool)
    return ok


def _baseline_ok(p: pd.DataFrame, ev: Events, index: np.ndarray) -> np.ndarray:
    """The legacy baseline scan exists, shows a liver lesion (not new) of >= 10 mm, and a later scan exists."""
    img = pd.DataFrame(ev.imaging, columns=["person_id", "day", "organ", "lesion_type", "ld_mm"])
    img["index"] = img["person_id"].map(pd.Series(index, index=p["person_id"].to_numpy()))
    scans = img.drop_duplicates(["person_id", "day"])[["person_id", "day", "index"]]
    before = scans[(scans["day"] >= scans["index"] - BASELINE_WINDOW_DAYS) & (scans["day"] <= scans["index"])]
    after = scans[(scans["day"] > scans["index"]) & (scans["day"] <= scans["index"] + BASELINE_AFTER_DAYS)]
    base = before.groupby("person_id")["day"].max()
    base = base.combine_first(after.groupby("person_id")["day"].min())
    img["base"] = img["person_id"].map(base)
    at = img[img["day"] == img["base"]]
    measurable = at[(at["organ"] == "liver") & (at["lesion_type"] != "new")
                    & (pd.to_numeric(at["ld_mm"], errors="coerce") >= 10)]["person_id"].unique()
    later = scans.assign(base=scans["person_id"].map(base))
    followed = later[later["day"] > later["base"]]["person_id"].unique()
    ids = p["person_id"].to_numpy()
    return np.isin(ids, measurable) & np.isin(ids, followed)


def legacy_fails(p: pd.DataFrame, ev: Events) -> list[str]:
    """Per person, the legacy criteria failed on the clean data (';'-joined, empty = eligible)."""
    index = legacy_index_day(p, ev).to_numpy(float)
    haic = p["first_haic_day"].to_numpy(float)
    checks = {
        "excluded_histology": p["histology_subtype"].isin(
            ["cholangiocarcinoma", "fibrolamellar", "sarcomatoid", "combined_hcc_cca"]).to_numpy(),
        "diagnosis_basis_other": (p["diagnosis_basis"] == "other").to_numpy(),
        "bclc_a_or_d": p["bclc_recorded"].isin(["A", "D"]).to_numpy(),
        "prior_systemic_therapy": (p["prior_systemic_therapy"] == "yes").to_numpy(),
        "no_combination": np.isnan(index),
        "haic_outside_window": np.isfinite(haic) & ~(np.abs(haic - index) <= HAIC_WINDOW_DAYS),
        "no_cycle_after_haic": np.isfinite(haic) & ~_combination_after_haic(p, ev, haic),
        "no_measurable_intrahepatic": ~_baseline_ok(p, ev, index),
        "child_pugh_c": (p["child_pugh_score"] >= 10).to_numpy(),
        "ecog_3_4": (p["ecog"] >= 3).to_numpy(),
        "encephalopathy_grade_3_4": (p["encephalopathy"] == "grade_3_4").to_numpy(),
        "invalid_follow_up": ~(p["end_day"].to_numpy(float) - index > 0),
    }
    return [";".join(name for name, fail in checks.items() if fail[i]) for i in range(len(p))]
