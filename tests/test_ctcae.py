"""Tests for analysis_utils.study.ctcae: CTCAE v5.0 lab grading (incl. the baseline-abnormal rule), term mapping,
the term table.

Every expected value is hand-computed in the comment next to it (thresholds: docs/methods/ctcae.md, NCI CTCAE v5.0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis_utils.study import ctcae
from analysis_utils.study.ctcae import ctcae_lab_grade, grade_lab_values, load_ctcae_terms, map_terms

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
        ("P1", "inr", 5, 1.8, 1.2, np.nan),  # no CTCAE lab rule -> ignored
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
    assert list(res.dq.columns) == ctcae.DQ_COLUMNS


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
    # the short names of the synthetic cohort's calibration targets, as written there
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
    limits = "\n".join(f"  {t}: {{{'uln' if t in ctcae.HIGH_TESTS else 'lln'}: 1}}" for t in ctcae.GRADED_TESTS)
    bad.write_text("version: '0'\nctcae_version: '5.0'\nterms:\n"
                   "  Nausea: {soc: GI, grades: [1, 2, 3], synonyms: [sick]}\n"
                   "  Vomiting: {soc: GI, grades: [1, 2, 3, 4, 5], synonyms: [Sick]}\n"
                   f"default_reference_limits:\n{limits}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="synonym 'Sick' of 'Vomiting' already maps"):
        load_ctcae_terms(bad)


def test_yaml_loader_rejects_lab_grades_outside_the_grades(tmp_path):
    bad = tmp_path / "terms.yaml"
    limits = "\n".join(f"  {t}: {{{'uln' if t in ctcae.HIGH_TESTS else 'lln'}: 1}}" for t in ctcae.GRADED_TESTS)
    bad.write_text("version: '0'\nctcae_version: '5.0'\nterms:\n"
                   "  Anemia: {soc: Blood, grades: [1, 2, 3], lab_grades: [3, 4], lab_test: hemoglobin}\n"
                   f"default_reference_limits:\n{limits}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"^terms\.yaml: term 'Anemia' lab_grades \(3, 4\) not within grades "
                                         r"\(1, 2, 3\)$"):
        load_ctcae_terms(bad)


def test_packaged_terms_read_by_path_equal_the_cached_default():
    """load_ctcae_terms(path) parses the file again (no cache); on the packaged file it gives the default's synonym
    lookup, ambiguous terms and default limits. By hand: 'Fatigue' maps to itself, case and spaces normalised."""
    fresh, cached = load_ctcae_terms(ctcae.TERMS_PATH), load_ctcae_terms()
    assert fresh is not cached
    assert dict(fresh.lookup) == dict(cached.lookup) and fresh.ambiguous == cached.ambiguous
    assert fresh.default_limits == cached.default_limits and fresh.table.equals(cached.table)
    assert fresh.lookup[ctcae.normalise_term("  FATIGUE ")] == ("Fatigue",)


def test_dq_entries_follow_the_row_labels_of_the_table():
    """dq_entries on a table whose index is not 0..n-1 (a filtered table): per-row actions and values are taken
    by row label. Rows 10 and 12 of three are selected: their study IDs A and C, source rows 5 and 7, values 70
    and 90, actions 'a' and 'c'."""
    df = pd.DataFrame({"study_id": ["A", "B", "C"], "grade": [7, 2, 9], "center_id": "C01",
                       "source_file": "C01/adverse_events.csv", "source_row": [5, 6, 7]}, index=[10, 11, 12])
    got = ctcae.dq_entries(df, [True, False, True], "adverse_events", "grade", "bad_grade", ["a", "b", "c"],
                           value=[70, 20, 90], row_col="source_row")
    assert got.columns.tolist() == ctcae.DQ_COLUMNS
    assert got.values.tolist() == [["C01", "C01/adverse_events.csv", 5, "A", "adverse_events", "grade", 70, "bad_grade",
                                    "a"],
                                   ["C01", "C01/adverse_events.csv", 7, "C", "adverse_events", "grade", 90, "bad_grade",
                                    "c"]]
