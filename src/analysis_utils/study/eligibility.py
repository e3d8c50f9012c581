"""Eligibility criteria of NCT06881433 as named flags, and the STROBE flow that accounts for every screened record.

Each criterion is a boolean column ``fail_<name>`` on the screened-record table (True = the record fails it). The
flow assigns each record to the FIRST criterion it fails in :data:`CRITERIA` order, so that
``screened = sum(excluded by first failing criterion) + analysed`` holds by construction (STROBE item 13).

Missing data (stated in the manuscript's Methods): an inclusion criterion needs positive evidence (a record
without a documented diagnosis basis, BCLC stage, combination start or baseline measurable lesion fails it); an
exclusion criterion needs positive evidence too (a missing ECOG, histology subtype or encephalopathy grade does not
exclude). Child-Pugh C is decided on the points that are known when a component is missing: the record fails when
the known points plus one point per missing component already reach 10.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Criterion:
    name: str
    label: str
    kind: str  # "data", "inclusion" or "exclusion"


CRITERIA: tuple[Criterion, ...] = (
    Criterion("duplicate_record", "Duplicate record (same patient exported twice)", "data"),
    Criterion("hcc_not_confirmed", "HCC not confirmed by radiology, histology or cytology", "inclusion"),
    Criterion("excluded_histology", "Cholangiocarcinoma, fibrolamellar, sarcomatoid or combined HCC-CCA", "exclusion"),
    Criterion("bclc_not_b_or_c", "BCLC stage not B or C", "inclusion"),
    Criterion("prior_systemic_therapy", "Prior systemic therapy", "exclusion"),
    Criterion("no_combination", "No TKI/anti-VEGF plus PD-1/PD-L1 combination", "inclusion"),
    Criterion("haic_outside_window", "HAIC not within 3 months of the first systemic dose", "inclusion"),
    Criterion("no_cycle_after_haic", "No combination cycle after HAIC", "inclusion"),
    Criterion("no_measurable_intrahepatic", "No measurable intrahepatic lesion with repeat imaging", "inclusion"),
    Criterion("child_pugh_c", "Child-Pugh class C", "exclusion"),
    Criterion("ecog_above_2", "ECOG performance status > 2", "exclusion"),
    Criterion("severe_encephalopathy", "Severe (grade 3-4) hepatic encephalopathy", "exclusion"),
    Criterion("invalid_follow_up", "No valid follow-up after the index date", "data"),
)
EXCLUDED_HISTOLOGY = ("cholangiocarcinoma", "fibrolamellar", "sarcomatoid", "combined_hcc_cca")
CONFIRMED_BASES = ("radiology", "histology", "cytology")


def _true(s: pd.Series) -> pd.Series:
    """Nullable boolean -> plain bool with missing as False."""
    return s.astype("boolean").fillna(False).astype(bool)


def flag_name(name: str) -> str:
    return f"fail_{name}"


def child_pugh_c_lower_bound(points: pd.DataFrame) -> pd.Series:
    """True where Child-Pugh C (>= 10) is certain: known points + 1 per missing component >= 10."""
    return (points.sum(axis=1, min_count=0) + points.isna().sum(axis=1)) >= 10


def apply_criteria(df: pd.DataFrame, haic_window_days: int) -> pd.DataFrame:
    """Add one ``fail_<criterion>`` column per criterion, then ``exclusion_reason`` (first failing) and ``eligible``.

    Expects the derived columns of :func:`analysis_utils.cleaning.derive_patients`.
    """
    out = df.copy()
    f = {}
    f["duplicate_record"] = out["duplicate_of"].notna()
    f["hcc_not_confirmed"] = ~out["diagnosis_basis"].isin(CONFIRMED_BASES)
    f["excluded_histology"] = out["histology_subtype"].isin(EXCLUDED_HISTOLOGY)
    f["bclc_not_b_or_c"] = ~out["bclc_stage"].isin(["B", "C"])
    f["prior_systemic_therapy"] = out["prior_systemic_therapy"].eq("yes")
    f["no_combination"] = out["index_date"].isna()
    f["haic_outside_window"] = out["first_haic_date"].notna() & ~(out["haic_offset_days"].abs() <= haic_window_days)
    f["no_cycle_after_haic"] = out["first_haic_date"].notna() & ~_true(out["combination_after_haic"])
    f["no_measurable_intrahepatic"] = ~(_true(out["baseline_measurable_liver"])
                                        & (out["n_followup_scans"].fillna(0) >= 1))
    f["child_pugh_c"] = child_pugh_c_lower_bound(out[["cp_bilirubin_pts", "cp_albumin_pts", "cp_inr_pts",
                                                      "cp_ascites_pts", "cp_encephalopathy_pts"]].astype(float))
    f["ecog_above_2"] = pd.to_numeric(out["ecog"], errors="coerce") > 2
    f["severe_encephalopathy"] = out["encephalopathy"].eq("grade_3_4")
    f["invalid_follow_up"] = ~_true(out["follow_up_valid"])
    for c in CRITERIA:
        out[flag_name(c.name)] = _true(f[c.name]).values
    flags = out[[flag_name(c.name) for c in CRITERIA]]
    first = flags.idxmax(axis=1).str.removeprefix("fail_")
    out["exclusion_reason"] = first.where(flags.any(axis=1), None)
    out["eligible"] = ~flags.any(axis=1)
    return out


def flow_table(screened: pd.DataFrame, arm_col: str = "arm") -> pd.DataFrame:
    """STROBE flow: screened, excluded by first failing criterion (and the number failing it at all), analysed by arm."""
    rows = [{"step": "screened", "criterion": "", "label": "Records screened", "n": len(screened), "n_failing_any": None}]
    for c in CRITERIA:
        rows.append({"step": "excluded", "criterion": c.name, "label": c.label,
                     "n": int((screened["exclusion_reason"] == c.name).sum()),
                     "n_failing_any": int(screened[flag_name(c.name)].sum())})
    eligible = screened[screened["eligible"]]
    rows.append({"step": "analysed", "criterion": "", "label": "Patients analysed", "n": len(eligible), "n_failing_any": None})
    for arm, n in eligible[arm_col].value_counts().sort_index().items():
        rows.append({"step": "arm", "criterion": arm, "label": f"Arm {arm}", "n": int(n), "n_failing_any": None})
    table = pd.DataFrame(rows)
    table["n_failing_any"] = table["n_failing_any"].astype("Int64")
    return table


def check_flow(flow: pd.DataFrame) -> None:
    """Raise if the flow does not reconcile: screened = excluded + analysed, and analysed = sum over arms."""
    screened = int(flow.loc[flow.step == "screened", "n"].iloc[0])
    excluded = int(flow.loc[flow.step == "excluded", "n"].sum())
    analysed = int(flow.loc[flow.step == "analysed", "n"].iloc[0])
    arms = int(flow.loc[flow.step == "arm", "n"].sum())
    if screened != excluded + analysed or analysed != arms:
        raise AssertionError(f"flow does not reconcile: screened {screened} != excluded {excluded} + analysed "
                             f"{analysed}, or analysed != sum of arms {arms}")


def flow_by_arm(screened: pd.DataFrame, arm_col: str = "arm") -> pd.DataFrame:
    """The STROBE flow of ``flow_table`` split by the arm the record would join (``treatment.treatment_timing``:
    HAIC-TKIs-P when any HAIC cycle is recorded, else TKIs-P; excluded records keep the arm their treatment data
    give): columns step ('screened', 'excluded', 'analysed'), criterion, label, arm, n. Each record is counted once, under its first failing
    criterion, so per arm screened = excluded + analysed; summed over the arms it is ``flow_table``."""
    if screened[arm_col].isna().any():
        raise ValueError(f"{int(screened[arm_col].isna().sum())} screened record(s) without an arm: the flow by arm "
                         "would not account for every record")
    rows = []
    arms = sorted(screened[arm_col].unique().tolist())
    for arm in arms:
        part = screened[screened[arm_col] == arm]
        rows.append({"step": "screened", "criterion": "", "label": "Records screened", "arm": arm, "n": len(part)})
        for c in CRITERIA:
            rows.append({"step": "excluded", "criterion": c.name, "label": c.label, "arm": arm,
                         "n": int((part["exclusion_reason"] == c.name).sum())})
        rows.append({"step": "analysed", "criterion": "", "label": "Patients analysed", "arm": arm,
                     "n": int(part["eligible"].sum())})
    return pd.DataFrame(rows)
