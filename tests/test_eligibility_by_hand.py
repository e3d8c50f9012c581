"""Eligibility at and one step past every limit, time zero, the arm at time zero, HAIC timing against the grace
period and bad treatment dates, on a hand-built export cleaned by ``study.cleaning.clean`` (issue #18).

Rules: docs/methods/eligibility-and-time-zero.md (sections 1-4), docs/methods/target-trial.md (section 3),
docs/methods/liver-scores-and-staging.md (Child-Pugh). Set-up: tests/hand_cohort.py (T0 = 2023-02-01 = day 0 unless
HAIC comes first; parameters of params/default.yaml: combination gap 30 days, naive HAIC window 90 days, baseline
scan window 42 days, grace period G = 90 days).

Child-Pugh points (Pugh 1973; bilirubin umol/L / 17.1 = mg/dL): bilirubin < 2 mg/dL 1, 2-3 2, > 3 3; albumin
> 3.5 g/dL 1, 2.8-3.5 2, < 2.8 3; INR < 1.7 1, 1.7-2.3 2, > 2.3 3; ascites none 1, mild 2, moderate/severe 3;
encephalopathy none 1, grade 1-2 2, grade 3-4 3. Class C = 10-15 points. The default patient (bilirubin 15 umol/L =
0.88 mg/dL, albumin 40 g/L, INR 1.1, no ascites, no encephalopathy) has 5 points.
"""
from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from analysis_utils.study.config import TargetTrialConfig
from analysis_utils.study.eligibility import CRITERIA, check_flow, flow_by_arm, flow_table
from analysis_utils.study.project import load_params
from analysis_utils.study.treatment import ARM_CONTROL, ARM_HAIC, strategy_deviation_days
from conftest import patient_tables
from hand_cohort import ROOT, by_mrn, combination, config, dead, day, run_clean, scans, therapy

NONE = ()


def pt(mrn, overrides=None, haic=None, systemic=None, lesions=None, follow_up=None):
    return {"mrn": mrn, "overrides": overrides or {}, "haic": haic, "systemic": systemic,
            "lesions": lesions if lesions is not None else scans(mrn, [(42, 60, 30)]), "follow_up": follow_up}


# mrn -> (patient, expected exclusion reason (None: eligible), expected blank criteria (queries))
CASES = {
    # --- Child-Pugh: class C (>= 10 points) excluded, B9 kept
    # bilirubin 60 umol/L = 3.51 mg/dL -> 3, albumin 30 g/L = 3.0 g/dL -> 2, INR 1.1 -> 1, mild ascites 2, none 1 = 9
    "CPB9": (pt("CPB9", {"total_bilirubin": "60", "albumin": "30", "inr": "1.1", "ascites": "mild"}), None, NONE),
    # the same with INR 1.8 -> 2 points: 10 = C
    "CPC10": (pt("CPC10", {"total_bilirubin": "60", "albumin": "30", "inr": "1.8", "ascites": "mild"}),
              "child_pugh_c", NONE),
    # ascites blank. Known: bilirubin 40 = 2.34 mg/dL -> 2, albumin 30 -> 2, INR 1.8 -> 2, encephalopathy 1 = 7;
    # minimum 7 + 1 = 8 < 10, maximum 7 + 3 = 10 >= 10 -> cannot be decided: query
    "CPQ": (pt("CPQ", {"total_bilirubin": "40", "albumin": "30", "inr": "1.8", "ascites": ""}), None,
            ("child_pugh_c",)),
    # ascites blank, known bilirubin 15 -> 1, albumin 30 -> 2, INR 1.8 -> 2, encephalopathy 1 = 6; maximum 9 < 10: passes
    "CPP": (pt("CPP", {"albumin": "30", "inr": "1.8", "ascites": ""}), None, NONE),
    # ascites blank, known bilirubin 60 -> 3, albumin 25 = 2.5 g/dL -> 3, INR 1.8 -> 2, encephalopathy 1 = 9;
    # minimum 9 + 1 = 10: C is certain -> fails
    "CPF": (pt("CPF", {"total_bilirubin": "60", "albumin": "25", "inr": "1.8", "ascites": ""}), "child_pugh_c", NONE),
    # --- ECOG: 2 kept, 3 excluded, blank a query
    "ECOG2": (pt("ECOG2", {"ecog": "2"}), None, NONE),
    "ECOG3": (pt("ECOG3", {"ecog": "3"}), "ecog_above_2", NONE),
    "ECOGB": (pt("ECOGB", {"ecog": ""}), None, ("ecog_above_2",)),
    # two criteria blank in one record: both queries, in CRITERIA order (prior systemic therapy before ECOG)
    "Q2": (pt("Q2", {"ecog": "", "prior_systemic_therapy": ""}), None, ("prior_systemic_therapy", "ecog_above_2")),
    # --- BCLC: B and C kept, A and D (and 0) excluded; blank: the BCLC 2022 derivation when it decides, else query
    "BCB": (pt("BCB", {"bclc_stage": "B"}), None, NONE),
    "BCC": (pt("BCC", {"bclc_stage": "C"}), None, NONE),
    "BCA": (pt("BCA", {"bclc_stage": "A"}), "bclc_not_b_or_c", NONE),
    "BCD": (pt("BCD", {"bclc_stage": "D"}), "bclc_not_b_or_c", NONE),
    "BC0": (pt("BC0", {"bclc_stage": "0"}), "bclc_not_b_or_c", NONE),
    "BCX": (pt("BCX", {"bclc_stage": ""}), None, NONE),  # MVI yes -> derived C
    # MVI "no", EHS "no", ECOG 0, all known: none of the C features -> derived B (kept, no query)
    "BCN": (pt("BCN", {"bclc_stage": "", "mvi": "no", "mvi_grade": "", "ecog": "0"}), None, NONE),
    # MVI "no" with a PVTT grade (Vp3) recorded: kept as recorded, logged
    "MVG": (pt("MVG", {"mvi": "no"}), None, NONE),
    # EHS "yes" (MVI "no", ECOG 0, BCLC blank): extrahepatic spread makes the derived stage C
    "EHY": (pt("EHY", {"bclc_stage": "", "mvi": "no", "mvi_grade": "", "ehs": "yes", "ecog": "0"}), None, NONE),
    # MVI, EHS blank and ECOG 0: nothing makes it C and not everything is known -> not derivable -> query
    "BCQ": (pt("BCQ", {"bclc_stage": "", "mvi": "", "mvi_grade": "", "ehs": "", "ecog": "0"}), None,
            ("bclc_not_b_or_c",)),
    # --- prior systemic therapy
    "PSN": (pt("PSN", {"prior_systemic_therapy": "no"}), None, NONE),
    "PSY": (pt("PSY", {"prior_systemic_therapy": "yes"}), "prior_systemic_therapy", NONE),
    "PSB": (pt("PSB", {"prior_systemic_therapy": ""}), None, ("prior_systemic_therapy",)),
    # --- histology: each excluded subtype, HCC kept, blank a query
    **{f"H_{h[:6]}": (pt(f"H_{h[:6]}", {"histology_subtype": h, "diagnosis_basis": "histology"}),
                      "excluded_histology", NONE)
       for h in ("cholangiocarcinoma", "fibrolamellar", "sarcomatoid", "combined_hcc_cca")},
    "HHCC": (pt("HHCC", {"histology_subtype": "hcc", "diagnosis_basis": "histology"}), None, NONE),
    "HBL": (pt("HBL", {"histology_subtype": ""}), None, ("excluded_histology",)),
    # --- diagnosis basis
    "DXC": (pt("DXC", {"diagnosis_basis": "cytology"}), None, NONE),
    "DXO": (pt("DXO", {"diagnosis_basis": "other"}), "hcc_not_confirmed", NONE),
    "DXB": (pt("DXB", {"diagnosis_basis": ""}), None, ("hcc_not_confirmed",)),
    # --- encephalopathy: grade 3-4 (Child-Pugh 1+1+1+1+3 = 7, not C; ECOG 1) excluded under its own criterion;
    # grade 1-2 kept; blank: a query of this criterion only (Child-Pugh: known 4 + 3 = 7 < 10 passes)
    "EN34": (pt("EN34", {"encephalopathy": "grade_3_4"}), "severe_encephalopathy", NONE),
    "EN12": (pt("EN12", {"encephalopathy": "grade_1_2"}), None, NONE),
    "ENB": (pt("ENB", {"encephalopathy": ""}), None, ("severe_encephalopathy",)),
    # --- measurable intrahepatic lesion on the baseline scan (LD >= 10 mm) in [T0 - 42, T0]
    "LD10": (pt("LD10", lesions=scans("LD10", [(42, 10, 8)], baseline=(-22, 10, 8))), None, NONE),
    "LD9": (pt("LD9", lesions=scans("LD9", [(42, 9, 8)], baseline=(-22, 9, 8))), "no_measurable_intrahepatic", NONE),
    "LDB": (pt("LDB", lesions=scans("LDB", [(42, 60, 30)], baseline=(-22, "", ""))), None,
            ("no_measurable_intrahepatic",)),
    "BW42": (pt("BW42", lesions=scans("BW42", [(42, 60, 30)], baseline=(-42, 60, 30))), None, NONE),
    "BW43": (pt("BW43", lesions=scans("BW43", [(42, 60, 30)], baseline=(-43, 60, 30))),
             "no_measurable_intrahepatic", NONE),
    # --- follow-up after time zero: death on day 1 kept, on day 0 not valid
    "FU1": (pt("FU1", follow_up=dead(1)), None, NONE),
    "FU0": (pt("FU0", follow_up=dead(0)), "invalid_follow_up", NONE),
    # --- first treatment after the cut-off (2023-12-31 = day 333): start day 334 fails; start on day 333 passes that
    # criterion but leaves no follow-up (censored at the cut-off on day 0). Baseline scan day 320 (in the window).
    "SAC": (pt("SAC", systemic=combination("SAC", 334, 336), lesions=scans("SAC", [], baseline=(320, 60, 30))),
            "start_after_death_or_cutoff", NONE),
    "SAE": (pt("SAE", systemic=combination("SAE", 333, 335), lesions=scans("SAE", [], baseline=(320, 60, 30))),
            "invalid_follow_up", NONE),
    # death recorded on day -10, before the first dose (day 0), and no last-contact date: fails on the death date
    "SAD": (pt("SAD", follow_up={**dead(-10), "last_contact_date": ""}), "start_after_death_or_cutoff", NONE),
    # --- age at T0 in completed years (no criterion; < 18 or > 100 is implausible: set to missing and logged)
    "AGE53": (pt("AGE53", {"birth_date": "1970-02-01"}), None, NONE),   # 53rd birthday on T0 -> 53
    "AGE52": (pt("AGE52", {"birth_date": "1970-02-02"}), None, NONE),   # birthday the day after T0 -> 52
    "AGE18": (pt("AGE18", {"birth_date": "2005-02-01"}), None, NONE),   # 18 on T0 -> kept
    "AGE17": (pt("AGE17", {"birth_date": "2005-02-02"}), None, NONE),   # 17 -> set to missing
    "AGE100": (pt("AGE100", {"birth_date": "1923-02-01"}), None, NONE),  # 100 on T0 -> kept
    "AGE101": (pt("AGE101", {"birth_date": "1922-02-01"}), None, NONE),  # 101 -> set to missing
    "AGELP": (pt("AGELP", {"birth_date": "1972-02-29"}), None, NONE),   # born on 29 February: 50 on 2023-02-01
    # --- time zero and the arm at time zero
    "HBF": (pt("HBF", haic=[day(-12)]), None, NONE),          # HAIC 2023-01-20 before the systemic start
    "HON": (pt("HON", haic=[day(0)]), None, NONE),            # HAIC on the day of the first systemic dose
    "HD1": (pt("HD1", haic=[day(1)]), None, NONE),            # HAIC the day after
    "H80": (pt("H80", haic=[day(80), day(101)]), None, NONE),
    "H90": (pt("H90", haic=[day(90)]), None, NONE),           # HAIC on day G
    "H91": (pt("H91", haic=[day(91)]), None, NONE),           # HAIC on day G + 1
    "NOH": (pt("NOH"), None, NONE),
    # --- the combination: second class within 30 days of the first
    "G30": (pt("G30", systemic=combination("G30", 0, 30)), None, NONE),
    "G31": (pt("G31", systemic=combination("G31", 0, 31)), None, NONE),
    "G30R": (pt("G30R", systemic=combination("G30R", 30, 0)), None, NONE),   # PD-1 first
    "G31R": (pt("G31R", systemic=combination("G31R", 31, 0)), None, NONE),
    "TKO": (pt("TKO", systemic=[therapy("TKO", "lenvatinib", "TKI", day(0))]), None, NONE),  # one class only
    # chemotherapy 10 days before: plays no part in time zero
    "CHM": (pt("CHM", systemic=[therapy("CHM", "oxaliplatin", "chemotherapy", day(-10))] + combination("CHM")), None,
            NONE),
    # a course whose stop date (day -10) precedes its start (day 0): logged, the start date kept
    "SBS": (pt("SBS", systemic=[therapy("SBS", "lenvatinib", "TKI", day(0), day(-10)),
                                therapy("SBS", "camrelizumab", "PD-1", day(2))]), None, NONE),
    # --- HAIC sessions without a readable date
    "UH1": (pt("UH1", haic=[""]), "treatment_date_unknown", NONE),                # the only session, blank
    "UH2": (pt("UH2", haic=["", day(0)]), "treatment_date_unknown", NONE),        # cycle 1 blank, cycle 2 dated
    "UH3": (pt("UH3", haic=[day(0), ""]), None, NONE),                            # cycle 2 blank: ignored, logged
    "UHX": (pt("UHX", haic=["2023-02-31"]), "treatment_date_unknown", NONE),      # unreadable date
}


def _tables():
    return [patient_tables(c[0]["mrn"], n=i + 1, overrides=c[0]["overrides"], haic=c[0]["haic"],
                           systemic=c[0]["systemic"], lesions=c[0]["lesions"], follow_up=c[0]["follow_up"])
            for i, c in enumerate(CASES.values())]


@pytest.fixture(scope="module")
def tables():
    return _tables()


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, tables):
    return run_clean(tmp_path_factory.mktemp("elig"), tables)


def _row(tables, table, mrn, pred=lambda r: True):
    """1-based data row of the first row of ``table`` for ``mrn`` matching ``pred`` (the order they are written)."""
    rows = [r for p in tables for r in p[table]]
    return next(i for i, r in enumerate(rows, start=1) if r["mrn"] == mrn and pred(r))


@pytest.mark.parametrize("mrn", list(CASES))
def test_exclusion_reason_and_queries(cohort, mrn):
    _, reason, queries = CASES[mrn]
    rec = by_mrn(cohort, mrn)
    assert rec["exclusion_reason"] == reason
    assert bool(rec["eligible"]) == (reason is None)
    assert rec["blank_criteria"] == (";".join(queries) or None)
    assert bool(rec["eligibility_query"]) == bool(queries)


# criterion -> (column, value) of its query entry: the column names every field the criterion reads from the patients
# table; the value names the blank ones of this record. ld_mm is a field of the lesions table, not of the patients
# table, so a blank diameter names no field in the value (its lesion rows are logged by the lesion checks).
QUERY_TEXT = {
    "hcc_not_confirmed": ("diagnosis_basis", "diagnosis_basis"),
    "excluded_histology": ("histology_subtype", "histology_subtype"),
    "bclc_not_b_or_c": ("bclc_stage", "bclc_stage"),
    "prior_systemic_therapy": ("prior_systemic_therapy", "prior_systemic_therapy"),
    "no_measurable_intrahepatic": ("ld_mm", ""),
    "child_pugh_c": ("total_bilirubin,albumin,inr,ascites,encephalopathy", "ascites"),  # CPQ: ascites blank
    "ecog_above_2": ("ecog", "ecog"),
    "severe_encephalopathy": ("encephalopathy", "encephalopathy"),
}


@pytest.mark.parametrize("mrn", [m for m, c in CASES.items() if c[2]])
def test_blank_field_is_a_located_query(cohort, tables, mrn):
    """Each blank criterion field: one located entry (patients file, the patient's row, the criterion's columns,
    the blank field as its value) saying it is kept."""
    dq = cohort.quality.to_frame()
    row = _row(tables, "patients", mrn)
    for crit in CASES[mrn][2]:
        label = next(c.label for c in CRITERIA if c.name == crit)
        hit = dq[(dq.rule == f"blank eligibility field: '{label}' cannot be assessed") & (dq.row == row)
                 & (dq.file == "C01/patients.csv")]
        assert len(hit) == 1 and hit.iloc[0]["action"] == ("kept as missing (eligibility query); excluded in the "
                                                           "sensitivity analysis with complete eligibility data")
        assert (hit.iloc[0]["column"], hit.iloc[0]["value"]) == QUERY_TEXT[crit]
        assert hit.iloc[0]["center_id"] == "C01"


def test_child_pugh_scores(cohort):
    assert by_mrn(cohort, "CPB9")[["child_pugh_score", "child_pugh_class"]].tolist() == [9, "B"]
    assert by_mrn(cohort, "CPC10")[["child_pugh_score", "child_pugh_class"]].tolist() == [10, "C"]
    assert by_mrn(cohort, "NOH")[["child_pugh_score", "child_pugh_class"]].tolist() == [5, "A"]
    assert pd.isna(by_mrn(cohort, "CPQ")["child_pugh_score"])  # a component missing: no score, never a guess


def test_flow_reconciles_and_counts_queries(cohort):
    check_flow(cohort.flow)
    flow = cohort.flow.set_index(["step", "criterion"])["n"]
    n_excluded = sum(c[1] is not None for c in CASES.values())
    assert flow[("screened", "")] == len(CASES) and flow[("analysed", "")] == len(CASES) - n_excluded
    n_query = sum(bool(c[2]) for c in CASES.values() if c[1] is None)
    assert flow[("query_total", "")] == n_query


def test_bclc_blank_derived(cohort):
    assert by_mrn(cohort, "BCX")["bclc_stage"] == "C"        # MVI yes -> C (BCLC 2022)
    assert by_mrn(cohort, "BCN")["bclc_stage"] == "B"        # MVI no, EHS no, ECOG 0 -> B
    assert by_mrn(cohort, "EHY")["bclc_stage"] == "C" and bool(by_mrn(cohort, "EHY")["ehs"])  # EHS yes -> C
    assert pd.isna(by_mrn(cohort, "BCQ")["bclc_stage"])
    assert by_mrn(cohort, "BCB")["bclc_stage"] == "B"        # recorded stage kept (the derivation says C: logged)


def test_mvi_no_and_a_pvtt_grade_recorded_with_it(cohort, tables):
    """MVI "no" reads as False and Vp4 as False (no invasion, so no Vp4), with or without a grade; a grade recorded
    with MVI "no" (MVG: Vp3) is kept and logged at the patient's row; MVI "yes" with Vp3 (NOH) is Vp3, not Vp4."""
    for mrn in ("BCN", "MVG"):
        rec = by_mrn(cohort, mrn)
        assert not pd.isna(rec["mvi"]) and not rec["mvi"]
        assert not pd.isna(rec["vp4"]) and not rec["vp4"]
    assert by_mrn(cohort, "MVG")["vp_grade"] == "Vp3" and bool(by_mrn(cohort, "NOH")["mvi"])
    dq = cohort.quality.to_frame()
    hit = dq[dq.rule == "PVTT grade recorded while macrovascular invasion is 'no'"]
    assert hit[["file", "row", "column", "action"]].values.tolist() == [
        ["C01/patients.csv", _row(tables, "patients", "MVG"), "mvi_grade", "grade kept; MVI kept as recorded"]]


# --- time zero, arm at T0, HAIC timing. haic offset = first HAIC - T0; G = 90 (params target_trial.grace_days)
TIMING = {  # mrn: (T0, first component, arm at T0, haic_offset_days, naive ever-HAIC arm)
    "HBF": ("2023-01-20", "HAIC", ARM_HAIC, 0, ARM_HAIC),
    "HON": ("2023-02-01", "HAIC and systemic", ARM_HAIC, 0, ARM_HAIC),
    "HD1": ("2023-02-01", "systemic", ARM_CONTROL, 1, ARM_HAIC),      # crossover within the grace period
    "H80": ("2023-02-01", "systemic", ARM_CONTROL, 80, ARM_HAIC),     # first HAIC day 80 (second day 101)
    "H90": ("2023-02-01", "systemic", ARM_CONTROL, 90, ARM_HAIC),     # 90 <= 90: within the naive window
    "H91": ("2023-02-01", "systemic", ARM_CONTROL, 91, ARM_CONTROL),  # 91 > 90
    "NOH": ("2023-02-01", "systemic", ARM_CONTROL, None, ARM_CONTROL),
    "UH3": ("2023-02-01", "HAIC and systemic", ARM_HAIC, 0, ARM_HAIC),
    "CHM": ("2023-02-01", "systemic", ARM_CONTROL, None, ARM_CONTROL),
    "SBS": ("2023-02-01", "systemic", ARM_CONTROL, None, ARM_CONTROL),
    "G30R": ("2023-02-01", "systemic", ARM_CONTROL, None, ARM_CONTROL),
}


@pytest.mark.parametrize("mrn", list(TIMING))
def test_time_zero_and_arm(cohort, mrn):
    t0, first, arm, offset, ever = TIMING[mrn]
    rec = by_mrn(cohort, mrn)
    assert rec["index_date"] == pd.Timestamp(t0) and rec["first_component"] == first
    assert rec["arm"] == arm and rec["arm_ever_haic"] == ever
    assert (pd.isna(rec["haic_offset_days"]) if offset is None else rec["haic_offset_days"] == offset)


def test_haic_before_systemic_start(cohort):
    # T0 = HAIC 2023-01-20; lenvatinib 2023-02-01 (day 12), camrelizumab 2023-02-03 (day 14); age at T0: born
    # 1970-01-01 -> 53 whole years; baseline scan 2023-01-10 is 10 days before T0
    hbf = by_mrn(cohort, "HBF")
    assert hbf[["haic_offset_systemic_days", "systemic_start_day", "combination_day", "n_haic_cycles"]].tolist() == [
        -12, 12, 14, 1]
    assert hbf["baseline_date"] == pd.Timestamp("2023-01-10") and hbf["age"] == 53


AGES = {"AGE53": 53, "AGE52": 52, "AGE18": 18, "AGE17": None, "AGE100": 100, "AGE101": None, "AGELP": 50}


def test_age_at_time_zero_in_completed_years(cohort, tables):
    """Age at T0 = completed years: the birthday itself counts (1970-02-01 -> 53 on 2023-02-01, although
    19358 days / 365.25 = 52.9993). Implausible ages (< 18, > 100) are set to missing with a located entry."""
    got = {m: (None if pd.isna(by_mrn(cohort, m)["age"]) else by_mrn(cohort, m)["age"]) for m in AGES}
    assert got == AGES
    dq = cohort.quality.to_frame()
    bad = dq[dq.rule.str.startswith("age at index outside 18-100 years")]
    assert sorted(bad["row"]) == sorted(_row(tables, "patients", m) for m in ("AGE17", "AGE101"))


COMBINATION = {  # mrn: (gap, combination day from T0 or None, T0)
    "G30": (30, 30, "2023-02-01"), "G31": (31, None, "2023-02-01"),
    "G30R": (30, 30, "2023-02-01"), "G31R": (31, None, "2023-02-01"),
    "TKO": (None, None, "2023-02-01"), "NOH": (2, 2, "2023-02-01"),
}


@pytest.mark.parametrize("mrn", list(COMBINATION))
def test_combination_gap(cohort, mrn):
    gap, combo, t0 = COMBINATION[mrn]
    rec = by_mrn(cohort, mrn)
    assert rec["index_date"] == pd.Timestamp(t0)
    assert pd.isna(rec["combination_gap_days"]) if gap is None else rec["combination_gap_days"] == gap
    assert pd.isna(rec["combination_day"]) if combo is None else rec["combination_day"] == combo


DEVIATION = {  # mrn: (deviation from A "HAIC within G", from B "no HAIC within G"), G = 90; inf = never
    "HON": (math.inf, 0),        # HAIC day 0, combination day 2: follows A; B deviates on day 0
    "HD1": (math.inf, 1),
    "H80": (math.inf, 80),
    "H90": (math.inf, 90),       # HAIC on day G complies with A and deviates from B on day G
    "H91": (90, math.inf),       # HAIC on day G + 1 deviates from A at G and complies with B
    "NOH": (90, math.inf),
    "G30": (90, math.inf),       # combination on day 30 <= 90, no HAIC
    "G31": (90, 90),             # no combination (gap 31): both deviate at G
    "TKO": (90, 90),
}


def test_grace_period_deviation_days(cohort):
    grace = TargetTrialConfig.from_params(load_params(ROOT / "params" / "default.yaml")).grace_days
    assert grace == 90
    recs = pd.DataFrame([by_mrn(cohort, m) for m in DEVIATION])
    dev = strategy_deviation_days(recs, grace)
    got = {m: (a, b) for m, a, b in zip(DEVIATION, dev["deviation_day_haic"], dev["deviation_day_control"])}
    assert got == DEVIATION


@pytest.mark.parametrize("mrn,cycle_blank,excluded", [("UH1", "1", True), ("UH2", "1", True), ("UH3", "2", False),
                                                      ("UHX", "1", True)])
def test_undated_haic_never_changes_the_arm_silently(cohort, tables, mrn, cycle_blank, excluded):
    """An undated or unreadable HAIC session that may be the first: the record fails treatment_date_unknown with an
    error located at the session's row; a later undated session is ignored with a located warning."""
    rec = by_mrn(cohort, mrn)
    assert rec["treatment_date_unknown"] == excluded
    assert rec["n_haic_cycles"] == (2 if mrn in ("UH2", "UH3") else 1)
    row = _row(tables, "haic_cycles", mrn, lambda r: r["cycle_number"] == cycle_blank)
    dq = cohort.quality.to_frame()
    hit = dq[(dq.file == "C01/haic_cycles.csv") & (dq.row == row) & (dq.column == "haic_date")
             & dq.rule.str.startswith("HAIC session without a date")]
    assert len(hit) == 1
    assert hit.iloc[0]["severity"] == ("error" if excluded else "warning")
    assert ("treatment_date_unknown" in hit.iloc[0]["action"]) == excluded
    if mrn == "UHX":
        assert ((dq.row == row) & (dq.file == "C01/haic_cycles.csv") & dq.rule.str.startswith("unparseable date")).any()


def test_stop_before_start_is_logged_and_start_kept(cohort, tables):
    row = _row(tables, "systemic_courses", "SBS")
    dq = cohort.quality.to_frame()
    hit = dq[(dq.file == "C01/systemic_courses.csv") & (dq.row == row)
             & (dq.rule == "systemic course stops before it starts (start > stop)")]
    assert len(hit) == 1 and hit.iloc[0]["column"] == "stop_date"
    assert hit.iloc[0]["value"] == "2023-02-01 > 2023-01-22"
    sbs = by_mrn(cohort, "SBS")
    assert sbs["eligible"] and sbs["index_date"] == pd.Timestamp("2023-02-01") and sbs["combination_day"] == 2


def test_start_after_cutoff_located_at_treatment_row(cohort, tables):
    dq = cohort.quality.to_frame()
    hit = dq[dq.rule == "first treatment component after the data cut-off"]
    assert len(hit) == 1 and hit.iloc[0]["file"] == "C01/systemic_courses.csv"
    assert hit.iloc[0]["row"] == _row(tables, "systemic_courses", "SAC") and hit.iloc[0]["column"] == "start_date"
    assert hit.iloc[0]["study_id"] == by_mrn(cohort, "SAC").name and hit.iloc[0]["severity"] == "error"
    dead_first = dq[dq.rule == "first treatment component after the death date"]
    assert dead_first[["file", "row", "column", "value", "study_id"]].values.tolist() == [
        ["C01/systemic_courses.csv", _row(tables, "systemic_courses", "SAD"), "start_date", "2023-02-01",
         by_mrn(cohort, "SAD").name]]


def test_protocol_parameters_match_the_method_page():
    """The limits used above are the study's: params/default.yaml holds the values the method page states
    (docs/methods/eligibility-and-time-zero.md, section 4)."""
    page = (ROOT / "docs" / "methods" / "eligibility-and-time-zero.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(\w+(?:\.\w+)?)` \| ([^|]+?) \|", page, flags=re.M))
    params = load_params(ROOT / "params" / "default.yaml")
    assert len(rows) >= 7
    for key, value in rows.items():
        section, _, name = key.rpartition(".")
        got = params[section][name] if section else params[name]
        assert str(got) == value.strip(), key
    cfg = config()
    assert (cfg.combination_max_gap_days, cfg.haic_window_days, cfg.baseline_imaging_window_days) == (30, 90, 42)


def test_flow_table_rows_labels_and_failing_counts_by_hand():
    """flow_table on three hand-made screened records: R1 fails Child-Pugh C and ECOG (first failing: child_pugh_c,
    which comes before ecog_above_2 in CRITERIA), R2 is eligible in the HAIC arm with a blank ECOG (query), R3 is
    eligible in the control arm. Every row, label and count is written out here."""
    names = [c.name for c in CRITERIA]
    fails = {"R1": {"child_pugh_c", "ecog_above_2"}, "R2": set(), "R3": set()}
    screened = pd.DataFrame({"study_id": ["R1", "R2", "R3"], "arm": [ARM_HAIC, ARM_HAIC, ARM_CONTROL],
                             "exclusion_reason": ["child_pugh_c", None, None], "eligible": [False, True, True],
                             "eligibility_query": [False, True, False],
                             **{f"fail_{n}": [n in fails[r] for r in ("R1", "R2", "R3")] for n in names},
                             **{f"query_{n}": [False, n == "ecog_above_2", False] for n in names}})
    labels = {c.name: c.label for c in CRITERIA}
    want = [["screened", "", "Records screened", 3, None]]
    want += [["excluded", n, labels[n], int(n == "child_pugh_c"), int(n in ("child_pugh_c", "ecog_above_2"))]
             for n in names]
    want += [["analysed", "", "Patients analysed", 2, None],
             ["arm", "HAIC-TKIs-P", "Arm HAIC-TKIs-P (at time zero)", 1, None],
             ["arm", "TKIs-P", "Arm TKIs-P (at time zero)", 1, None],
             ["query", "ecog_above_2", "Blank field: ECOG performance status > 2", 1, None],
             ["query_total", "", "Patients analysed with a blank eligibility field (kept; excluded in a sensitivity "
                                 "analysis)", 1, None]]
    flow = flow_table(screened)
    assert flow.columns.tolist() == ["step", "criterion", "label", "n", "n_failing_any"]
    got = [[r.step, r.criterion, r.label, r.n, None if pd.isna(r.n_failing_any) else r.n_failing_any]
           for r in flow.itertuples()]
    assert got == want
    assert str(flow["n_failing_any"].dtype) == "Int64"
    check_flow(flow)
    # the same records by arm (flow_by_arm): HAIC-TKIs-P holds R1 (excluded, child_pugh_c) and R2; TKIs-P holds R3
    by_arm = flow_by_arm(screened)
    assert by_arm.columns.tolist() == ["step", "criterion", "label", "arm", "n"]
    want_arm = []
    for arm, n_screened, n_cp in ((ARM_HAIC, 2, 1), (ARM_CONTROL, 1, 0)):
        want_arm += [["screened", "", "Records screened", arm, n_screened]]
        want_arm += [["excluded", n, labels[n], arm, n_cp if n == "child_pugh_c" else 0] for n in names]
        want_arm += [["analysed", "", "Patients analysed", arm, 1]]
    assert by_arm.values.tolist() == want_arm
