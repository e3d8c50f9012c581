"""Baseline at time zero: the baseline scan and measurable intrahepatic disease on it, the number of follow-up scans
(for the response-evaluable population, never for eligibility), baseline laboratory values from a window ending at
time zero, and the lesion table in the form the RECIST engine expects.

Windows (``cleaning`` params; docs/methods/eligibility-and-time-zero.md):
- baseline scan: the last scan in [T0 - ``baseline_imaging_window_days``, T0], else the first in
  (T0, T0 + ``baseline_imaging_after_days``] (0 by default: nothing after time zero);
- baseline laboratory values (bilirubin, albumin, INR, AFP): the last value of the labs table in
  [T0 - ``baseline_lab_window_days``, T0].
"""
from __future__ import annotations

import pandas as pd

from analysis_utils.study import recist
from analysis_utils.study.config import CleaningConfig
from analysis_utils.study.quality import QualityLog

#: labs-table test -> patients-table column of the same baseline value (same canonical unit in the contract)
BASELINE_LAB_COLUMNS = {"bilirubin": "total_bilirubin", "albumin": "albumin", "inr": "inr", "afp": "afp"}


def baseline_imaging(lesions: pd.DataFrame, index: pd.DataFrame, cfg: CleaningConfig) -> pd.DataFrame:
    """Per study ID: the baseline scan (as :func:`analysis_utils.study.recist.find_baseline` defines it), whether it
    shows a measurable intrahepatic lesion (LD >= 10 mm, RECIST 1.1 measurability; not annotated new), and how many
    follow-up scans exist.

    ``baseline_measurable_liver`` is True (a liver lesion >= 10 mm), False (liver lesions all measured < 10 mm, or
    no liver lesion, or no baseline scan) or missing (no liver lesion measured >= 10 mm but at least one whose
    diameter is blank: the criterion cannot be assessed, a blank field is not a failed criterion)."""
    idx = index.dropna(subset=["study_id", "index_date"])
    les = lesions_for_engine(lesions[lesions["study_id"].isin(idx["study_id"])])
    base = recist.find_baseline(les, idx[["study_id", "index_date"]], cfg.baseline_imaging_window_days,
                                cfg.baseline_imaging_after_days)[["study_id", "baseline_date"]]
    les = les.merge(base, on="study_id")
    at_base = les[(les["assessment_date"] == les["baseline_date"]) & (les["organ"] == "liver")
                  & (les["lesion_type"] != "new")]
    measurable = at_base[at_base["ld_mm"] >= 10]
    blank = at_base[at_base["ld_mm"].isna()]
    n_follow = les[les["assessment_date"] > les["baseline_date"]].groupby("study_id")["assessment_date"].nunique()
    out = base.set_index("study_id")
    value = pd.Series(out.index.isin(measurable["study_id"]), index=out.index).astype("boolean")
    value[~value & out.index.isin(blank["study_id"])] = pd.NA
    out["baseline_measurable_liver"] = value
    out["n_followup_scans"] = n_follow.reindex(out.index).fillna(0).astype(int)
    return out.reset_index()


def baseline_labs(labs: pd.DataFrame, index: pd.DataFrame, window_days: int,
                  tests: tuple[str, ...] = tuple(BASELINE_LAB_COLUMNS)) -> pd.DataFrame:
    """Per study ID and test: the last labs-table value in [T0 - window_days, T0] (ties on the date: the last row),
    wide: ``<test>`` value and ``<test>_date``; patients without one are absent."""
    d = labs[labs["test"].isin(tests)].dropna(subset=["study_id", "lab_date", "value"])
    d = d.merge(index[["study_id", "index_date"]], on="study_id")
    days = (d["index_date"] - d["lab_date"]).dt.days
    d = d[(days >= 0) & (days <= window_days)].sort_values(["study_id", "test", "lab_date"], kind="mergesort")
    last = d.groupby(["study_id", "test"]).last()
    wide = last["value"].unstack("test")
    dates = last["lab_date"].unstack("test").add_suffix("_date")
    return wide.join(dates)


def apply_baseline_labs(p: pd.DataFrame, labs: pd.DataFrame, cfg: CleaningConfig, log: QualityLog) -> pd.DataFrame:
    """Baseline bilirubin, albumin, INR and AFP as of time zero.

    The patients table records its baseline at or before the first systemic dose. Where that dose is time zero the
    recorded values are used as they are. Where HAIC came first (time zero before the first systemic dose) the
    recorded values may postdate time zero: each is replaced by the last labs-table value in the window ending at
    time zero when there is one (logged when it differs or fills a blank), and otherwise kept and flagged
    (``baseline_labs_after_t0`` True, one data-quality entry per record). ``baseline_labs_source`` says which."""
    out = p.copy()
    early = out["index_date"].notna() & out["first_systemic_date"].notna() & (out["index_date"] < out["first_systemic_date"])
    found = baseline_labs(labs, out.loc[early, ["study_id", "index_date"]], cfg.baseline_lab_window_days)
    src = pd.Series("patients table", index=out.index, dtype=object)
    any_found = pd.Series(False, index=out.index)
    for test, col in BASELINE_LAB_COLUMNS.items():
        if test not in found.columns:
            continue
        lab = out["study_id"].map(found[test])
        use = early & lab.notna()
        differ = use & out[col].notna() & ((lab - out[col]).abs() > 1e-9 * lab.abs().clip(lower=1.0))
        if differ.any():
            rows = out.loc[differ].assign(_v=out.loc[differ, col].astype(str) + " -> " + lab[differ].astype(str))
            log.add_rows(rows, column=col, value_col="_v", severity="info",
                         rule="baseline value recorded at the first systemic dose, after time zero (HAIC first)",
                         action="replaced by the last labs-table value in the window ending at time zero")
        filled = use & out[col].isna()
        if filled.any():
            rows = out.loc[filled].assign(_v="blank -> " + lab[filled].astype(str))
            log.add_rows(rows, column=col, value_col="_v", severity="info",
                         rule="baseline value blank in the patients table (HAIC first)",
                         action="taken from the last labs-table value in the window ending at time zero")
        out[col] = out[col].where(~use, lab)
        any_found |= use
    src[early & any_found] = "labs table (window ending at time zero)"
    after = early & ~any_found
    src[after] = "patients table (recorded after time zero)"
    if after.any():
        log.add_rows(out.loc[after], column="total_bilirubin", severity="info",
                     rule="baseline labs recorded at the first systemic dose, after time zero (HAIC first), and "
                          "no labs-table value in the window ending at time zero",
                     action="recorded values kept; record flagged baseline_labs_after_t0")
    out["baseline_labs_source"] = src.where(out["index_date"].notna(), None)
    out["baseline_labs_after_t0"] = after
    return out


def lesions_for_engine(lesions: pd.DataFrame) -> pd.DataFrame:
    """The harmonised lesion table with yes/no columns as nullable booleans, as the RECIST engine expects."""
    out = lesions.copy()
    for col in ("arterial_enhancement", "cytology_confirmed"):
        out[col] = out[col].map({"yes": True, "no": False}).astype("boolean")
    return out
