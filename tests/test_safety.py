"""Tests for analysis_utils.steps.safety (notebook 07_safety): treatment-emergent merge of reported and lab-derived events,
tables by arm with Fisher's exact test, the results section; and analysis_utils.reporting.safety (tables as printed).

Every expected value is hand-computed in the comment next to it (rules: docs/methods/ctcae.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact

from analysis_utils.steps import safety
from analysis_utils.steps.safety import ae_by_term_table, ae_summary_table, merge_adverse_events
from analysis_utils.study.ctcae import grade_lab_values, map_terms
from test_ctcae import ALT, AST, PLT, ae_frame, labs_frame


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


# ---------------------------------------------------------------------------------------------- results and print


def test_results_section_keys_follow_the_summary_rows():
    events = safety.SafetyResult(tiny_events(), pd.DataFrame({"rule": ["x", "y"]}))
    summary = ae_summary_table(events.data, make_cohort(), arms=["HAIC-TKIs-P", "TKIs-P"])
    values = safety.results_section(events, summary, None, ["Fatigue", "Hypertension"], 30)
    # counts of test_ae_summary_table_counts_and_fisher: any TEAE 3/4 vs 1/3; grade 5 1/4 vs 0/3
    assert values["any_haic_n"] == 3 and values["any_control_n"] == 1
    assert values["any_haic_pct"] == pytest.approx(75.0) and values["any_control_pct"] == pytest.approx(100 / 3)
    assert values["g5_haic_n"] == 1 and values["g5_control_n"] == 0
    assert values["any_p"] == pytest.approx(fisher_exact([[3, 1], [1, 2]]).pvalue)
    assert values["window_days"] == 30 and values["n_events"] == len(events.data) and values["n_dq_entries"] == 2
    assert values["top_terms"] == ["Fatigue", "Hypertension"]
    # 3 run values + 9 categories x (n and % for two arms + p) + the top terms; no matched keys without a matched table
    assert len(values) == 3 + 9 * 5 + 1 and not any(k.endswith("_matched") for k in values)
    both = safety.results_section(events, summary, summary, [], 30)
    assert both["related_g3_haic_n_matched"] == 1 and both["g3_p_matched"] == values["g3_p"]


def test_format_counts_prints_n_pct_and_p():
    from analysis_utils.reporting.safety import format_counts

    summary = format_counts(ae_summary_table(tiny_events(), make_cohort()), "category")
    assert list(summary.columns) == ["Patients with", "HAIC-TKIs-P (N = 4)", "TKIs-P (N = 3)", "P (nominal)"]
    # any TEAE 3/4 = 75.0%, 1/3 = 33.3%; Fisher [[3, 1], [1, 2]]: tables with k = 1, 3, 4 of P <= 12/35 -> 17/35
    assert summary.loc[0].tolist() == ["Any TEAE", "3 (75.0%)", "1 (33.3%)", "0.486"]
    assert summary.loc[1, "Patients with"] == "Grade ≥3 TEAE"
    by_term = format_counts(ae_by_term_table(tiny_events(), make_cohort()), "ctcae_term", ("any ", ">=3 "))
    assert list(by_term.columns) == ["CTCAE term", "HAIC-TKIs-P (N = 4), grade any", "TKIs-P (N = 3), grade any",
                                     "P (nominal, grade any)", "HAIC-TKIs-P (N = 4), grade ≥3", "TKIs-P (N = 3), grade ≥3",
                                     "P (nominal, grade ≥3)"]
