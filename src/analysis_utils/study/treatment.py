"""Treatment: time zero, the arm known at time zero, the treatment strategies of the target trial and the day each
patient's observed treatment deviates from them; the naive ever-HAIC classification kept for comparison.

Time zero (T0, ``index_date``) is the first treatment component: the earlier of the first HAIC session and the
first dose of a TKI/anti-VEGF or PD-(L)1 drug. Every day below counts from T0 (day 0 = T0).

- Arm at T0 (``arm``, for the secondary analyses): HAIC-TKIs-P when HAIC is given on day 0 (HAIC is the first
  component or on the day of the first systemic dose), else TKIs-P. A TKIs-P patient whose HAIC started later is a
  crossover (within the grace period or after it); the arm is never changed by what happens after T0.
- Combination: both drug classes started, the second within ``combination_max_gap_days`` of the first; its day is
  the day the second class started (``combination_day``).
- Strategies with grace period G (:func:`strategy_deviation_days`): A "HAIC-TKIs-P" = HAIC started by day G and the
  combination started by day G; B "TKIs-P" = the combination started by day G and no HAIC by day G. A deviates at
  day G when not (HAIC by G and combination by G); B deviates at the first HAIC day when that is <= G, otherwise at
  day G when the combination has not started by then. A deviation takes effect just after its day, so an event on
  that day counts.
- Naive comparison (``arm_ever_haic``): HAIC-TKIs-P when the first HAIC is within ``haic_window_days`` of T0,
  classified with information from after T0 (immortal-time biased); reported only as a labelled comparison.

Bad input (each located in the data-quality log with centre, file, row and column, and a stated handling): a HAIC
session without a date that may be the first one (the first HAIC date is unknown), a TKI/anti-VEGF or PD-(L)1
course without a start date (T0 or the combination unknown): the record fails the data criterion
``treatment_date_unknown``; a systemic course whose stop date precedes its start date: the start date is kept, the
stop date is not used by any derivation. Rules: docs/methods/eligibility-and-time-zero.md,
docs/methods/target-trial.md.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis_utils.study.config import CleaningConfig
from analysis_utils.study.quality import QualityLog

ANTI_ANGIOGENIC = ("tki", "anti_vegf")
CHECKPOINT = ("pd1", "pdl1")
ARM_HAIC, ARM_CONTROL = "HAIC-TKIs-P", "TKIs-P"
STRATEGIES = (ARM_HAIC, ARM_CONTROL)  # strategy A (HAIC within the grace period), strategy B (no HAIC within it)


def _first_by_patient(df: pd.DataFrame, date_col: str, extra: dict[str, str]) -> pd.DataFrame:
    """Per study ID the earliest dated row (ties: agent / cycle order as given) with its location."""
    d = df.dropna(subset=[date_col]).sort_values(["study_id", date_col, *extra], kind="mergesort")
    agg = {"_date": (date_col, "first"), "_file": ("source_file", "first"), "_row": ("source_row", "first")}
    agg.update({v: (k, "first") for k, v in extra.items()})
    return d.groupby("study_id").agg(**agg)


def undated_haic(haic: pd.DataFrame, log: QualityLog) -> pd.Series:
    """Per study ID: True when an undated HAIC session may be the first one (no dated session, or an undated
    session whose cycle number is missing or not higher than that of the earliest dated session). Every undated
    session is logged with its handling."""
    h = haic.dropna(subset=["study_id"])
    undated = h[h["haic_date"].isna()]
    if undated.empty:
        return pd.Series(False, index=pd.Index([], name="study_id"))
    dated = h.dropna(subset=["haic_date"]).sort_values(["study_id", "haic_date", "cycle_number"], kind="mergesort")
    first_cycle = dated.groupby("study_id")["cycle_number"].first()
    ref = undated["study_id"].map(first_cycle)
    later = undated["cycle_number"].notna() & ref.notna() & (undated["cycle_number"] > ref)
    if later.any():
        log.add_rows(undated[later], rule="HAIC session without a date, numbered after a dated session",
                     column="haic_date", action="session ignored; the first HAIC date is that of the dated session")
    if (~later).any():
        log.add_rows(undated[~later], rule="HAIC session without a date that may be the first HAIC",
                     column="haic_date", severity="error",
                     action="first HAIC date unknown: record fails 'treatment_date_unknown'")
    return (~later).groupby(undated["study_id"]).any()


def undated_systemic(systemic: pd.DataFrame, log: QualityLog) -> pd.Series:
    """Per study ID: True when a TKI/anti-VEGF or PD-(L)1 course has no start date (T0 or the combination cannot
    be dated); logged. Undated courses of other classes play no part and are logged as such."""
    s = systemic.dropna(subset=["study_id"])
    undated = s[s["start_date"].isna()]
    if undated.empty:
        return pd.Series(False, index=pd.Index([], name="study_id"))
    used = undated["drug_class"].isin(ANTI_ANGIOGENIC + CHECKPOINT)
    if used.any():
        log.add_rows(undated[used], rule="TKI/anti-VEGF or PD-(L)1 course without a start date", column="start_date",
                     severity="error", action="time zero or combination start unknown: record fails "
                                                 "'treatment_date_unknown'")
    if (~used).any():
        log.add_rows(undated[~used], rule="systemic course of another class without a start date",
                     column="start_date", action="course not used (only TKI/anti-VEGF and PD-(L)1 define time zero)")
    return used.groupby(undated["study_id"]).any()


def check_course_dates(systemic: pd.DataFrame, log: QualityLog) -> None:
    """A course whose stop date precedes its start date is logged; the start date is kept (time zero), the stop date
    is not used by any derivation."""
    bad = systemic["stop_date"].notna() & systemic["start_date"].notna() & (systemic["stop_date"] < systemic["start_date"])
    if bad.any():
        rows = systemic.loc[bad].assign(_v=systemic.loc[bad, "start_date"].dt.strftime("%Y-%m-%d") + " > "
                                        + systemic.loc[bad, "stop_date"].dt.strftime("%Y-%m-%d"))
        log.add_rows(rows, rule="systemic course stops before it starts (start > stop)", column="stop_date",
                     value_col="_v", action="start date kept for time zero; stop date not used by any derivation")


def treatment_timing(patients: pd.DataFrame, systemic: pd.DataFrame, haic: pd.DataFrame, cfg: CleaningConfig,
                     log: QualityLog | None = None) -> pd.DataFrame:
    """Per study ID: first doses of the two drug classes (date, agent), the combination (gap, date), the first HAIC
    (date, sessions, regimen), time zero (``index_date``) and which component started it, the days from T0 to the
    first HAIC (``haic_offset_days``), the systemic start and the combination, the arm at T0, the naive ever-HAIC
    classification and ``treatment_date_unknown`` (module docstring). ``_t0_file``/``_t0_row``/``_t0_column``
    locate the row that set time zero (for data-quality entries; dropped before output)."""
    log = log if log is not None else QualityLog()
    check_course_dates(systemic, log)
    unknown = undated_haic(haic, log).astype(bool)
    unknown = unknown.combine(undated_systemic(systemic, log).astype(bool), lambda a, b: a or b, fill_value=False)
    sysc = systemic.dropna(subset=["study_id"])
    first_aa = _first_by_patient(sysc[sysc["drug_class"].isin(ANTI_ANGIOGENIC)], "start_date", {"agent": "tki_agent"})
    first_ici = _first_by_patient(sysc[sysc["drug_class"].isin(CHECKPOINT)], "start_date", {"agent": "pd1_agent"})
    h = haic.dropna(subset=["study_id"])
    first_h = _first_by_patient(h, "haic_date", {"cycle_number": "_cycle", "regimen": "haic_regimen"})
    t = pd.DataFrame(index=pd.Index(patients["study_id"], name="study_id"))
    t["first_aa_date"] = pd.to_datetime(first_aa["_date"].reindex(t.index))
    t["tki_agent"] = first_aa["tki_agent"].reindex(t.index)
    t["first_ici_date"] = pd.to_datetime(first_ici["_date"].reindex(t.index))
    t["pd1_agent"] = first_ici["pd1_agent"].reindex(t.index)
    gap = (t["first_aa_date"] - t["first_ici_date"]).dt.days.abs()
    t["combination_gap_days"] = gap
    t["combination_date"] = t[["first_aa_date", "first_ici_date"]].max(axis=1).where(gap <= cfg.combination_max_gap_days)
    t["first_systemic_date"] = t[["first_aa_date", "first_ici_date"]].min(axis=1)
    t["first_haic_date"] = pd.to_datetime(first_h["_date"].reindex(t.index))
    t["haic_regimen"] = first_h["haic_regimen"].reindex(t.index)
    t["n_haic_cycles"] = h.groupby("study_id").size().reindex(t.index).fillna(0).astype(int)
    t["treatment_date_unknown"] = unknown.reindex(t.index, fill_value=False).astype(bool)
    t0 = t[["first_haic_date", "first_systemic_date"]].min(axis=1)
    t["index_date"] = t0
    haic_first = t["first_haic_date"].notna() & (t["first_haic_date"] == t0)
    sys_first = t["first_systemic_date"].notna() & (t["first_systemic_date"] == t0)
    t["first_component"] = np.select([haic_first & sys_first, haic_first, sys_first],
                                     ["HAIC and systemic", "HAIC", "systemic"], default=None)
    t["haic_offset_days"] = (t["first_haic_date"] - t0).dt.days
    t["haic_offset_systemic_days"] = (t["first_haic_date"] - t["first_systemic_date"]).dt.days
    t["systemic_start_day"] = (t["first_systemic_date"] - t0).dt.days
    t["combination_day"] = (t["combination_date"] - t0).dt.days
    has_t0 = t0.notna()
    t["arm"] = np.where(t["haic_offset_days"].eq(0), ARM_HAIC, ARM_CONTROL)
    t["arm"] = t["arm"].where(has_t0, None)
    t["haic"] = t["arm"].eq(ARM_HAIC).astype(int)
    ever = t["haic_offset_days"].notna() & (t["haic_offset_days"] <= cfg.haic_window_days)
    t["arm_ever_haic"] = pd.Series(np.where(ever, ARM_HAIC, ARM_CONTROL), index=t.index).where(has_t0, None)
    loc_h = first_h.reindex(t.index)
    loc_s = pd.concat([first_aa, first_ici]).sort_values("_date", kind="mergesort")
    loc_s = loc_s[~loc_s.index.duplicated(keep="first")].reindex(t.index)
    t["_t0_file"] = np.where(haic_first, loc_h["_file"], loc_s["_file"])
    t["_t0_row"] = np.where(haic_first, loc_h["_row"], loc_s["_row"])
    t["_t0_column"] = np.where(haic_first, "haic_date", "start_date")
    return t.reset_index()


def crossover_counts(df: pd.DataFrame, grace_days: int) -> dict[str, int]:
    """Patients by arm at T0, and the TKIs-P-at-T0 patients whose first HAIC came later: within the grace period
    (day 1 to G) and after it."""
    control = df["arm"].eq(ARM_CONTROL)
    off = pd.to_numeric(df["haic_offset_days"], errors="coerce")
    first = df["first_component"] if "first_component" in df.columns else pd.Series(None, index=df.index, dtype=object)
    return {"n_haic_t0": int(df["arm"].eq(ARM_HAIC).sum()), "n_control_t0": int(control.sum()),
            "n_crossover_within_grace": int((control & (off > 0) & (off <= grace_days)).sum()),
            "n_crossover_after_grace": int((control & (off > grace_days)).sum()),
            "n_haic_first_component": int(first.eq("HAIC").sum()),
            "n_haic_same_day": int(first.eq("HAIC and systemic").sum())}


def strategy_deviation_days(df: pd.DataFrame, grace_days: int) -> pd.DataFrame:
    """Day (from T0) on which each patient's observed treatment deviates from strategy A (HAIC-TKIs-P) and B
    (TKIs-P) of the target trial; ``inf`` = never (module docstring). Needs ``haic_offset_days`` (first HAIC,
    missing = none) and ``combination_day`` (missing = no combination)."""
    g = float(grace_days)
    haic_day = pd.to_numeric(df["haic_offset_days"], errors="coerce").to_numpy(float)
    combo_day = pd.to_numeric(df["combination_day"], errors="coerce").to_numpy(float)
    haic_by_g = np.nan_to_num(haic_day, nan=np.inf) <= g
    combo_by_g = np.nan_to_num(combo_day, nan=np.inf) <= g
    dev_a = np.where(haic_by_g & combo_by_g, np.inf, g)
    dev_b = np.minimum(np.where(haic_by_g, haic_day, np.inf), np.where(combo_by_g, np.inf, g))
    return pd.DataFrame({"deviation_day_haic": dev_a, "deviation_day_control": dev_b}, index=df.index)
