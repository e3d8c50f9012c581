"""Tests for analysis_utils.safety (CTCAE v5.0 grading, term mapping, TEAE merge, tables).

Every expected value is hand-computed in the comment next to it (clinical-rules.md section 3.1 thresholds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact

from analysis_utils.steps import safety
from analysis_utils.steps.safety import (ae_by_term_table, ae_summary_table, ctcae_lab_grade, grade_lab_values,
                                   load_ctcae_terms, map_terms, merge_adverse_events)

ALT = "Alanine aminotransferase increased"
AST = "Aspartate aminotransferase increased"
PLT = "Platelet count decreased"


def labs_frame(rows: list[tuple]) -> pd.DataFrame:
    """rows: (study_id, test, day, value, uln, lln)."""
    df = pd.DataFrame(rows, columns=["study_id", "test", "days_from_index", "value", "uln", "lln"])
    df["lab_date"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(df["days_from_index"], unit="D")
    return df


def ae_frame(rows: list[tuple]) -> pd.DataFrame:
    """rows: (study_id, ae_term_raw, grade, days_from_index, attribution, serious, action_taken)."""
    return pd.DataFrame(rows, columns=["study_id", "ae_term_raw", "grade", "days_from_index", "attribution",
                                       "serious", "action_taken"])


# ---------------------------------------------------------------------------------------------- lab grades


def test_alt_abnormal_baseline_graded_on_multiples_of_baseline():
    # baseline 80 > ULN 40 -> reference = 80. 110/80 = 1.375 (<1.5 -> 0); 120 = 1.5x (closed "1.5-3.0" -> 1);
    # 130 = 1.625x -> 1; 240 = 3.0x -> 1; 250 = 3.125x -> 2; 400 = 5.0x -> 2; 401 = 5.0125x -> 3;
    # 1600 = 20x -> 3; 1601 -> 4
    values = [110, 120, 130, 240, 250, 400, 401, 1600, 1601]
    got = ctcae_lab_grade("alt", values, limit=40, baseline=80, baseline_limit=40)
    assert got.tolist() == [0, 1, 1, 1, 2, 2, 3, 3, 4]


def test_alt_normal_baseline_boundaries_are_right_closed():
    # ULN 40: 40 -> 0; 41 -> 1; 120 = exactly 3.0x ULN -> 1 (">ULN-3.0xULN"); 121 -> 2; 200 = 5.0x -> 2;
    # 201 -> 3; 800 = 20x -> 3; 801 -> 4
    values = [40, 41, 120, 121, 200, 201, 800, 801]
    assert ctcae_lab_grade("ast", values, limit=40, baseline=30, baseline_limit=40).tolist() == \
        [0, 1, 1, 2, 2, 3, 3, 4]
    # no baseline at all -> graded against ULN as well
    assert ctcae_lab_grade("alt", values, limit=40).tolist() == [0, 1, 1, 2, 2, 3, 3, 4]


def test_boundary_survives_float_rounding():
    # ULN 17.1 umol/L: 3.0 x 17.1 = 51.3 typed as 51.3 must stay grade 2 (">1.5-3.0 x ULN"), 51.31 -> 3
    assert ctcae_lab_grade("bilirubin", [51.3, 51.31], limit=17.1).tolist() == [2, 3]


def test_bilirubin_abnormal_baseline_any_rise_is_grade_1():
    # baseline 30 > ULN 20 -> reference 30: 30 (1.0x) -> 0; 31 (>1.0x) -> 1; 45 (1.5x) -> 1; 46 -> 2;
    # 90 (3.0x) -> 2; 91 -> 3; 300 (10x) -> 3; 301 -> 4
    values = [30, 31, 45, 46, 90, 91, 300, 301]
    assert ctcae_lab_grade("bilirubin", values, 20, 30, 20).tolist() == [0, 1, 1, 2, 2, 3, 3, 4]
    # baseline normal (15 <= 20) -> multiples of ULN: 20 -> 0; 21 -> 1; 30 (1.5x) -> 1; 31 -> 2
    assert ctcae_lab_grade("bilirubin", [20, 21, 30, 31], 20, 15, 20).tolist() == [0, 1, 1, 2]


def test_low_counts_thresholds_in_canonical_units():
    # platelets (10^9/L; 75,000/mm3 = 75): LLN 125: 125 -> 0; 124 -> 1; 75 -> 1; 74.9 -> 2; 50 -> 2;
    # 49 -> 3; 25 -> 3; 24.9 -> 4
    assert ctcae_lab_grade("platelets", [125, 124, 75, 74.9, 50, 49, 25, 24.9], 125).tolist() == \
        [0, 1, 1, 2, 2, 3, 3, 4]
    # neutrophils LLN 1.8: 1.5 -> 1; 1.49 -> 2; 1.0 -> 2; 0.99 -> 3; 0.5 -> 3; 0.49 -> 4
    assert ctcae_lab_grade("neutrophils", [1.5, 1.49, 1.0, 0.99, 0.5, 0.49], 1.8).tolist() == [1, 2, 2, 3, 3, 4]
    # WBC LLN 3.5: 3.0 -> 1; 2.9 -> 2; 1.9 -> 3; 0.9 -> 4
    assert ctcae_lab_grade("wbc", [3.0, 2.9, 1.9, 0.9], 3.5).tolist() == [1, 2, 3, 4]
    # Hb g/dL LLN 13: 12.9 -> 1; 10.0 -> 1; 9.9 -> 2; 8.0 -> 2; 7.9 -> 3; 5.0 -> 3 (4/5 need clinical data)
    assert ctcae_lab_grade("hemoglobin", [12.9, 10.0, 9.9, 8.0, 7.9, 5.0], 13).tolist() == [1, 1, 2, 2, 3, 3]
    # albumin g/L vs 30 / 20 (3.0 / 2.0 g/dL), LLN 40: 39 -> 1; 30 -> 1; 29.9 -> 2; 20 -> 2; 19.9 -> 3
    assert ctcae_lab_grade("albumin", [39, 30, 29.9, 20, 19.9], 40).tolist() == [1, 1, 2, 2, 3]


def test_creatinine_takes_higher_of_uln_and_baseline_grade():
    # ULN 100, baseline 50:
    #  90: ULN-based 0 (<= ULN); 90/50 = 1.8x baseline -> 2; max 2
    #  75: 1.5x baseline exactly -> 0; ULN-based 0 -> 0
    # 160: 1.6x ULN -> 2; 3.2x baseline -> 3; max 3
    # 700: 7x ULN -> 4; 14x baseline -> 3; max 4
    assert ctcae_lab_grade("creatinine", [90, 75, 160, 700], 100, 50, 100).tolist() == [2, 0, 3, 4]


def test_unknown_test_raises():
    with pytest.raises(ValueError, match="inr"):
        ctcae_lab_grade("inr", [1.5], 1.2)


def test_grade_lab_values_baseline_and_treatment_emergence():
    labs = labs_frame([
        # ALT: day -10 value 30, day 0 value 80 -> baseline = day-0 value 80 (> ULN 40, abnormal)
        ("P1", "alt", -10, 30, 40, np.nan),
        ("P1", "alt", 0, 80, 40, np.nan),
        ("P1", "alt", 14, 110, 40, np.nan),  # 1.375x baseline -> 0, not TE
        ("P1", "alt", 28, 250, 40, np.nan),  # 3.125x baseline -> 2, TE (baseline grade 0)
        # platelets: baseline 70 (< 75 -> grade 2 at baseline); 60 -> 2 (not worse); 45 -> 3 (TE)
        ("P1", "platelets", -2, 70, np.nan, 125),
        ("P1", "platelets", 10, 60, np.nan, 125),
        ("P1", "platelets", 20, 45, np.nan, 125),
        # creatinine: baseline 150 with ULN 100 -> 1.5x ULN -> baseline grade 1
        ("P1", "creatinine", -1, 150, 100, np.nan),
        ("P1", "creatinine", 7, 140, 100, np.nan),  # 1.4x ULN -> 1; 0.93x baseline -> 0; grade 1 = baseline
        ("P1", "creatinine", 9, 160, 100, np.nan),  # 1.6x ULN -> 2 > 1 -> TE
        ("P1", "inr", 5, 1.8, 1.2, np.nan),  # no CTCAE rule in 3.1 -> ignored
    ])
    res = grade_lab_values(labs)
    out = res.data.set_index(["test", "days_from_index"])
    assert out.loc[("alt", 14), "grade"] == 0 and not out.loc[("alt", 14), "treatment_emergent"]
    assert out.loc[("alt", 28), "grade"] == 2 and out.loc[("alt", 28), "treatment_emergent"]
    assert out.loc[("alt", 28), "baseline_value"] == 80 and out.loc[("alt", 28), "baseline_grade"] == 0
    assert bool(out.loc[("alt", 28), "baseline_abnormal"]) is True
    assert out.loc[("platelets", 10), "baseline_grade"] == 2
    assert out.loc[("platelets", 10), "grade"] == 2 and not out.loc[("platelets", 10), "treatment_emergent"]
    assert out.loc[("platelets", 20), "grade"] == 3 and out.loc[("platelets", 20), "treatment_emergent"]
    assert out.loc[("creatinine", 7), "baseline_grade"] == 1
    assert out.loc[("creatinine", 7), "grade"] == 1 and not out.loc[("creatinine", 7), "treatment_emergent"]
    assert out.loc[("creatinine", 9), "grade"] == 2 and out.loc[("creatinine", 9), "treatment_emergent"]
    # only post-baseline values of graded tests come back: 2 alt + 2 platelets + 2 creatinine
    assert len(res.data) == 6 and (res.data["days_from_index"] > 0).all()
    assert set(res.data["ctcae_term"]) == {ALT, PLT, "Creatinine increased"}
    assert res.dq.empty


def test_missing_limits_use_yaml_default_and_are_recorded():
    terms = load_ctcae_terms()
    default_plt = terms.default_limits["platelets"]["lln"]  # 125 x10^9/L (documented in the YAML)
    labs = labs_frame([
        ("P2", "platelets", 0, 200, np.nan, np.nan),
        ("P2", "platelets", 7, default_plt - 1, np.nan, np.nan),  # just below the default LLN -> grade 1
    ])
    labs["source_row"] = [101, 102]
    res = grade_lab_values(labs)
    row = res.data.iloc[0]
    assert row["limit_source"] == "default" and row["limit"] == default_plt and row["grade"] == 1
    assert set(res.dq["rule"]) == {"missing_reference_limit"}
    assert sorted(res.dq["row"]) == [101, 102] and set(res.dq["column"]) == {"lln"}


def test_no_baseline_graded_against_limits_and_flagged():
    labs = labs_frame([("P3", "hemoglobin", 10, 7.9, np.nan, 12.0)])  # 7.9 g/dL -> grade 3
    res = grade_lab_values(labs)
    assert res.data["grade"].tolist() == [3] and res.data["treatment_emergent"].tolist() == [True]
    assert res.dq["rule"].tolist() == ["no_baseline_value"]


def test_grade_lab_values_bad_input():
    with pytest.raises(ValueError, match=r"labs: missing required column\(s\) \['days_from_index'\]"):
        grade_lab_values(pd.DataFrame({"study_id": ["P1"], "test": ["alt"], "value": [1.0]}))
    labs = labs_frame([("P1", "alt", 5, np.nan, 40, np.nan), ("P1", "ggt", 5, 80, 50, np.nan)])
    res = grade_lab_values(labs)
    assert res.data.empty and sorted(res.dq["rule"]) == ["missing_value", "unknown_lab_test"]


# ---------------------------------------------------------------------------------------------- term mapping


def test_map_terms_synonyms_english_chinese_and_variants():
    ae = ae_frame([
        ("P1", "  Hand-Foot Skin Reaction ", 2, 5, "related", False, "none"),
        ("P1", "手足综合征", 1, 6, "related", False, "none"),
        ("P1", "thrombocytopenia", 2, 7, "related", False, "none"),
        ("P1", "血小板减少", 3, 8, "related", False, "none"),
        ("P1", "ALT increased", 1, 9, "related", False, "none"),
        ("P1", "Hypertension", 2, 9, "related", False, "none"),
        ("P1", "高血压", 3, 9, "related", False, "none"),
        ("P1", "abdominal pain", 1, 9, "unrelated", False, "none"),
        ("P1", "腹痛", 1, 9, "unrelated", False, "none"),
        ("P1", "FEVER", 1, 9, "related", False, "none"),
        ("P1", "发热", 1, 9, "related", False, "none"),
        ("P1", "食欲下降", 1, 9, "related", False, "none"),
    ])
    res = map_terms(ae)
    expected = ["Palmar-plantar erythrodysesthesia syndrome"] * 2 + [PLT] * 2 + [ALT] + ["Hypertension"] * 2 + \
        ["Abdominal pain"] * 2 + ["Fever"] * 2 + ["Anorexia"]
    assert res.data["ctcae_term"].tolist() == expected
    assert res.data.loc[0, "soc"] == "Skin and subcutaneous tissue disorders"
    assert res.data.loc[2, "soc"] == "Investigations" and res.data.loc[2, "lab_derived"]
    assert (res.data["term_status"] == "mapped").all() and res.dq.empty


def test_transaminase_elevation_maps_to_alt_and_ast():
    ae = ae_frame([("P1", "transaminase elevation", 2, 10, "related", False, "none"),
                   ("P2", "转氨酶升高", 3, 12, "related", False, "none")])
    ae["source_row"] = [7, 8]
    res = map_terms(ae)
    assert res.data["ctcae_term"].tolist() == [ALT, AST, ALT, AST]
    assert res.data["ae_row"].tolist() == [7, 7, 8, 8]
    assert res.data["grade"].tolist() == [2, 2, 3, 3]
    assert (res.data["term_status"] == "multi_mapped").all()


def test_unknown_and_ambiguous_terms_are_kept_and_flagged():
    ae = ae_frame([("P1", "spontaneous levitation", 2, 3, "NA", False, "none"),
                   ("P1", "肝功能异常", 2, 3, "related", False, "none")])
    ae["source_row"] = [41, 42]
    res = map_terms(ae)
    assert res.data["ctcae_term"].tolist() == ["spontaneous levitation", "肝功能异常"]
    assert res.data["soc"].isna().all() and res.data["term_status"].tolist() == ["unknown", "ambiguous"]
    dq = res.dq.set_index("rule")
    assert dq.loc["unknown_ae_term", "row"] == 41 and dq.loc["unknown_ae_term", "table"] == "adverse_events"
    assert dq.loc["unknown_ae_term", "value"] == "spontaneous levitation"
    assert dq.loc["ambiguous_ae_term", "row"] == 42
    assert list(res.dq.columns) == safety.DQ_COLUMNS


def test_invalid_grades_set_missing_and_flagged():
    ae = ae_frame([
        ("P1", "fatigue", 4, 3, "related", False, "none"),  # fatigue has grades 1-3 only
        ("P1", "PPE", 4, 3, "related", False, "none"),  # PPE max 3
        ("P1", "diarrhea", 7, 3, "related", False, "none"),  # outside 1-5
        ("P1", "nausea", np.nan, 3, "related", False, "none"),  # missing
        ("P1", "hypertension", 5, 3, "related", False, "none"),  # hypertension 1-5: valid
        ("P1", "vomiting", 2.5, 3, "related", False, "none"),  # not an integer
    ])
    res = map_terms(ae)
    assert res.data["grade_status"].tolist() == ["not_defined_for_term", "not_defined_for_term", "outside_1_5",
                                                 "missing", "valid", "outside_1_5"]
    assert res.data["grade"].isna().tolist() == [True, True, True, True, False, True]
    assert res.data["grade"].iloc[4] == 5
    assert sorted(res.dq["rule"]) == ["grade_not_defined_for_term"] * 2 + ["grade_outside_1_5"] * 2 + \
        ["missing_grade"]


def test_map_terms_requires_columns():
    with pytest.raises(ValueError, match="adverse_events: missing required column"):
        map_terms(pd.DataFrame({"study_id": ["P1"], "grade": [1]}))


def test_yaml_covers_calibration_terms_and_grade_ranges():
    terms = load_ctcae_terms()
    assert terms.version and terms.ctcae_version == "5.0"
    # clinical-calibration.md section 3b, names as written there
    calib = ["Platelet count decreased", "AST increased", "ALT increased", "Blood bilirubin increased",
             "Neutrophil count decreased", "White blood cell decreased", "Anemia", "Hypoalbuminemia",
             "Creatinine increased", "Proteinuria", "Hypertension", "Palmar-plantar erythrodysesthesia",
             "Diarrhea", "Fatigue", "Abdominal pain", "Nausea", "Vomiting", "Hypothyroidism",
             "Rash (maculo-papular)", "Fever"]
    mapped = map_terms(ae_frame([("P", t, 1, 1, "NA", False, "none") for t in calib])).data
    assert (mapped["term_status"] == "mapped").all()
    table = terms.table
    assert table.loc["Fatigue", "grades"] == (1, 2, 3)
    assert table.loc["Palmar-plantar erythrodysesthesia syndrome", "grades"] == (1, 2, 3)
    assert table.loc["Hypertension", "grades"] == (1, 2, 3, 4, 5)
    assert table.loc["Hepatic failure", "grades"] == (3, 4, 5)


def test_yaml_loader_rejects_conflicting_synonym(tmp_path):
    bad = tmp_path / "terms.yaml"
    limits = "\n".join(f"  {t}: {{{'uln' if t in safety.HIGH_TESTS else 'lln'}: 1}}" for t in safety.GRADED_TESTS)
    bad.write_text("version: '0'\nctcae_version: '5.0'\nterms:\n"
                   "  Nausea: {soc: GI, grades: [1, 2, 3], synonyms: [sick]}\n"
                   "  Vomiting: {soc: GI, grades: [1, 2, 3, 4, 5], synonyms: [Sick]}\n"
                   f"default_reference_limits:\n{limits}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="synonym 'Sick' of 'Vomiting' already maps"):
        load_ctcae_terms(bad)


# ---------------------------------------------------------------------------------------------- merge


def make_cohort() -> pd.DataFrame:
    return pd.DataFrame({
        "study_id": ["A1", "A2", "A3", "A4", "B1", "B2", "B3"],
        "arm": ["HAIC-TKIs-P"] * 4 + ["TKIs-P"] * 3,
        "index_date": pd.to_datetime(["2024-01-01"] * 7),
        "death_date": pd.to_datetime([None, None, "2024-01-21", None, None, None, None]),
    })


def test_worst_grade_per_patient_term_and_no_double_counting():
    ae = ae_frame([
        ("A1", "高血压", 3, 20, "related", True, "dose_reduced"),  # same term, worse, listed first ...
        ("A1", "Hypertension", 1, 5, "related", False, "none"),  # ... -> one event, grade 3
        ("A1", "thrombocytopenia", 2, 10, "related", False, "none"),  # reported G2 ...
        ("A4", "血小板减少", 3, 12, "unrelated", False, "none"),  # reported G3 beats lab G2 below
    ])
    labs = labs_frame([
        ("A1", "platelets", 0, 150, np.nan, 125),
        ("A1", "platelets", 12, 45, np.nan, 125),  # ... lab G3 (45 < 50) -> one event, grade 3
        ("A2", "platelets", 0, 150, np.nan, 125),
        ("A2", "platelets", 12, 70, np.nan, 125),  # lab-only event, G2 (70 < 75)
        ("A4", "platelets", 0, 150, np.nan, 125),
        ("A4", "platelets", 12, 70, np.nan, 125),  # lab G2 < reported G3 -> worst 3
    ])
    mapped = map_terms(ae).data
    lab = grade_lab_values(labs).data
    res = merge_adverse_events(mapped, lab, 30, cohort=make_cohort())
    ev = res.data.set_index(["study_id", "ctcae_term"])
    assert len(ev) == 4
    assert ev.loc[("A4", PLT), "worst_grade"] == 3 and ev.loc[("A4", PLT), "source"] == "reported+lab"
    assert ev.loc[("A1", "Hypertension"), "worst_grade"] == 3 and ev.loc[("A1", "Hypertension"), "n_records"] == 2
    assert ev.loc[("A1", "Hypertension"), "serious"] and ev.loc[("A1", "Hypertension"), "source"] == "reported"
    plt_a1 = ev.loc[("A1", PLT)]
    assert plt_a1["worst_grade"] == 3 and plt_a1["source"] == "reported+lab" and plt_a1["related"]
    plt_a2 = ev.loc[("A2", PLT)]
    assert plt_a2["worst_grade"] == 2 and plt_a2["source"] == "lab" and not plt_a2["related"]
    assert ev.loc[("A1", PLT), "first_onset_day"] == 10


def test_transaminase_report_merges_with_lab_alt_per_term():
    # reported "transaminase elevation" G1 -> ALT G1 and AST G1; lab ALT G3 (baseline 30, ULN 40, day 14 value
    # 210 > 5x ULN = 200) -> ALT worst 3 (reported+lab), AST stays 1 (reported)
    ae = ae_frame([("A4", "transaminase elevation", 1, 14, "related", False, "none")])
    labs = labs_frame([("A4", "alt", 0, 30, 40, np.nan), ("A4", "alt", 14, 210, 40, np.nan)])
    res = merge_adverse_events(map_terms(ae).data, grade_lab_values(labs).data, 30, cohort=make_cohort())
    ev = res.data.set_index("ctcae_term")
    assert ev.loc[ALT, "worst_grade"] == 3 and ev.loc[ALT, "source"] == "reported+lab"
    assert ev.loc[AST, "worst_grade"] == 1 and ev.loc[AST, "source"] == "reported"


def test_onset_outside_window_before_index_and_after_death():
    ae = ae_frame([
        ("A3", "fatigue", 2, -3, "related", False, "none"),  # before index -> excluded, dq
        ("A3", "diarrhea", 2, 25, "related", False, "none"),  # A3 died day 20 -> excluded, dq
        ("A4", "nausea", 1, 40, "related", False, "none"),  # alive, after 30-day window -> excluded, no dq
        ("A3", "vomiting", 2, np.nan, "related", False, "none"),  # day from onset_date 2024-01-11 -> day 10
        ("ZZ", "fever", 1, 3, "related", False, "none"),  # not in cohort -> excluded, dq
    ])
    ae["onset_date"] = pd.to_datetime([None, None, None, "2024-01-11", None])
    ae["source_row"] = [1, 2, 3, 4, 5]
    labs = labs_frame([("A3", "wbc", 0, 5.0, np.nan, 3.5), ("A3", "wbc", 21, 1.5, np.nan, 3.5)])  # after death
    res = merge_adverse_events(map_terms(ae).data, grade_lab_values(labs).data, 30, cohort=make_cohort())
    assert res.data[["study_id", "ctcae_term", "first_onset_day"]].values.tolist() == [["A3", "Vomiting", 10.0]]
    dq = res.dq.set_index("rule")
    assert dq.loc["onset_before_index", "row"] == 1 and dq.loc["onset_after_death", "row"] == 2
    assert dq.loc["study_id_not_in_cohort", "row"] == 5 and dq.loc["lab_after_death", "table"] == "labs"
    assert len(res.dq) == 4  # nothing for the out-of-window nausea (not a data error)


def test_merge_validates_window():
    with pytest.raises(ValueError, match="window_days"):
        merge_adverse_events(None, None, -1)


# ---------------------------------------------------------------------------------------------- tables


def tiny_events() -> pd.DataFrame:
    """Hand-built events on make_cohort(): arm HAIC (A1-A4, N=4), arm TKIs (B1-B3, N=3)."""
    ae = ae_frame([
        ("A1", "hypertension", 3, 5, "related", True, "discontinued"),
        ("A1", "fatigue", 2, 6, "related", False, "none"),
        ("A2", "fatigue", 1, 7, "unrelated", False, "none"),
        ("A3", "腹痛", 5, 8, "related", True, "none"),  # abdominal pain has no grade 5 -> grade missing
        ("A3", "hepatic failure", 5, 9, "unrelated", True, "none"),
        ("B1", "hypertension", 2, 5, "related", False, "dose_reduced"),
    ])
    cohort = make_cohort().assign(death_date=pd.NaT)
    return merge_adverse_events(map_terms(ae).data, None, 30, cohort=cohort).data


def test_ae_summary_table_counts_and_fisher():
    cohort = make_cohort()
    table = ae_summary_table(tiny_events(), cohort).set_index("category")
    h, t = "HAIC-TKIs-P", "TKIs-P"
    # any TEAE: HAIC A1, A2, A3 = 3/4; TKIs B1 = 1/3
    assert table.loc["Any TEAE", [f"{h} n", f"{t} n"]].tolist() == [3, 1]
    assert table.loc["Any TEAE", f"{h} %"] == pytest.approx(75.0)
    assert table.loc["Any TEAE", f"{t} %"] == pytest.approx(100 / 3)
    # grade >= 3: A1 (hypertension 3), A3 (hepatic failure 5; abdominal pain grade-5 report is invalid) -> 2/4; 0/3
    assert table.loc["Grade >=3 TEAE", [f"{h} n", f"{t} n"]].tolist() == [2, 0]
    # related: A1, A2? no (unrelated), A3 (abdominal pain related) -> 2/4; B1 -> 1/3
    assert table.loc["Treatment-related TEAE", [f"{h} n", f"{t} n"]].tolist() == [2, 1]
    # related grade >= 3: A1 only (A3's related event has a missing grade) -> 1/4
    assert table.loc["Treatment-related grade >=3 TEAE", [f"{h} n", f"{t} n"]].tolist() == [1, 0]
    assert table.loc["Serious TEAE", [f"{h} n", f"{t} n"]].tolist() == [2, 0]
    assert table.loc["TEAE leading to discontinuation", [f"{h} n", f"{t} n"]].tolist() == [1, 0]
    assert table.loc["Grade 5 TEAE", [f"{h} n", f"{t} n"]].tolist() == [1, 0]
    # Fisher, any TEAE: [[3, 1], [1, 2]] -> same 2x2 in scipy
    assert table.loc["Any TEAE", "p_value"] == pytest.approx(fisher_exact([[3, 1], [1, 2]]).pvalue)
    assert table.attrs["N"] == {h: 4, t: 3}


def test_fisher_p_hand_computed():
    # [[3, 1], [0, 3]]: margins 4/3 rows, 3/4 columns; P(k) = C(4,k) C(3,3-k) / C(7,3) = 1, 12, 18, 4 (/35)
    # for k = 0..3; observed k = 3 (4/35); two-sided sums tables with P <= 4/35: k=0 and k=3 -> 5/35
    assert safety.fisher_p(3, 4, 0, 3) == pytest.approx(5 / 35)


def test_ae_by_term_table_sorted_by_frequency():
    table = ae_by_term_table(tiny_events(), make_cohort())
    # any-grade totals: Hypertension 2 (A1, B1), Fatigue 2 (A1, A2), Abdominal pain 1, Hepatic failure 1;
    # ties broken alphabetically
    assert table["ctcae_term"].tolist() == ["Fatigue", "Hypertension", "Abdominal pain", "Hepatic failure"]
    row = table.set_index("ctcae_term").loc["Hypertension"]
    assert row["HAIC-TKIs-P any n"] == 1 and row["TKIs-P any n"] == 1
    assert row["HAIC-TKIs-P >=3 n"] == 1 and row["TKIs-P >=3 n"] == 0
    assert row["p any"] == pytest.approx(fisher_exact([[1, 3], [1, 2]]).pvalue)
    assert row["soc"] == "Vascular disorders"
    # Abdominal pain (grade missing) counts at any grade only
    assert table.set_index("ctcae_term").loc["Abdominal pain", "HAIC-TKIs-P >=3 n"] == 0
    assert ae_by_term_table(tiny_events(), make_cohort(), top=2)["ctcae_term"].tolist() == ["Fatigue",
                                                                                           "Hypertension"]


def test_tables_reject_bad_cohort():
    cohort = make_cohort().drop(columns="arm")
    with pytest.raises(ValueError, match=r"cohort: missing required column\(s\) \['arm'\]"):
        ae_summary_table(tiny_events(), cohort)
