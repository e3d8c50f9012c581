"""Issue 14 additions to analysis_utils.steps.safety: time zero from the cohort's index date, attribution not
recorded, exposure-adjusted incidence (exact Poisson), time to the first grade >= 3 event with death competing,
the common-schedule laboratory sensitivity, located data-quality entries. Expected values by hand (rules:
docs/methods/ctcae.md, sections 6-7)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis_utils.steps import safety
from analysis_utils.study.ctcae import DQ_COLUMNS, map_terms

H, T = "HAIC-TKIs-P", "TKIs-P"
DAY0 = pd.Timestamp("2024-01-01")


def cohort() -> pd.DataFrame:
    # A1, A2: HAIC; B1, B2: TKIs-P. Follow-up ends (death or last contact) on the given day.
    return pd.DataFrame({"study_id": ["A1", "A2", "B1", "B2"], "arm": [H, H, T, T], "index_date": DAY0,
                         "death_date": [pd.NaT, DAY0 + pd.Timedelta(days=100), pd.NaT, pd.NaT],
                         "follow_up_end_date": DAY0 + pd.to_timedelta([365, 100, 730, 200], unit="D")})


def ae(rows):
    """rows: (study_id, term, grade, onset day, attribution)."""
    df = pd.DataFrame(rows, columns=["study_id", "ae_term", "grade", "day", "attribution"])
    return df.assign(onset_date=DAY0 + pd.to_timedelta(df.pop("day"), unit="D"), serious="no", action_taken="none",
                     days_from_index=-999, center_id="C01", source_file="C01/adverse_events.csv",
                     source_row=np.arange(2, len(df) + 2))


def empty_labs():
    return pd.DataFrame(columns=["study_id", "test", "value", "lab_date", "uln", "lln", "center_id", "source_file",
                                 "source_row"])


def test_days_are_counted_from_the_cohort_index_date_not_a_stale_column():
    # days_from_index in the table says -999 (stale); the onset dates are days 10 and 20 from the index date.
    ev = safety.teae_events(ae([("A1", "fatigue", 2, 10, "related"), ("B1", "fatigue", 1, 20, "related")]),
                            empty_labs(), cohort(), 730).data
    assert ev.set_index("study_id")["first_onset_day"].to_dict() == {"A1": 10.0, "B1": 20.0}
    # moving time zero 30 days earlier (e.g. to a HAIC cycle before the systemic start) moves the days with it
    early = cohort().assign(index_date=DAY0 - pd.Timedelta(days=30))
    ev2 = safety.teae_events(ae([("A1", "fatigue", 2, 10, "related")]), empty_labs(), early, 730).data
    assert ev2["first_onset_day"].tolist() == [40.0]


def test_attribution_not_recorded_is_its_own_row():
    # A1: related fatigue; A2: fatigue without attribution; B1: unrelated; B2: nothing.
    events = safety.teae_events(ae([("A1", "fatigue", 1, 5, "related"), ("A2", "fatigue", 3, 5, None),
                                    ("B1", "fatigue", 1, 5, "unrelated")]), empty_labs(), cohort(), 730).data
    t = safety.ae_summary_table(events, cohort(), arms=[H, T]).set_index("category")
    assert t.loc["Treatment-related TEAE", [f"{H} n", f"{T} n"]].tolist() == [1, 0]
    assert t.loc["TEAE with attribution not recorded", [f"{H} n", f"{T} n"]].tolist() == [1, 0]
    assert t.loc["Grade >=3 TEAE with attribution not recorded", f"{H} n"] == 1


def test_eair_by_hand():
    # Grade >= 3: A1 first G3 on day 73 (73 days at risk), A2 none (exposure = follow-up end 100 days),
    # B1 first G3 day 146 (146), B2 none (200). HAIC: 1 event / (173 / 365.25) PY; TKIs-P: 1 / (346 / 365.25).
    events = safety.teae_events(ae([("A1", "hypertension", 3, 73, "related"), ("A1", "fatigue", 1, 10, "related"),
                                    ("B1", "diarrhea", 3, 146, "unrelated")]), empty_labs(), cohort(), 730).data
    t = safety.eair_table(events, cohort(), 730).set_index("category")
    g3 = t.loc["Grade >=3 TEAE"]
    assert g3[f"{H} PY"] == pytest.approx(173 / 365.25) and g3[f"{T} PY"] == pytest.approx(346 / 365.25)
    assert g3[f"{H} EAIR"] == pytest.approx(100 * 365.25 / 173)
    assert g3[f"{H} EAIR lower"] == pytest.approx(100 * stats.gamma.ppf(0.025, 1) / (173 / 365.25))
    assert g3[f"{H} EAIR upper"] == pytest.approx(100 * stats.gamma.ppf(0.975, 2) / (173 / 365.25))
    assert g3["rate ratio"] == pytest.approx((1 / 173) / (1 / 346))
    # any TEAE: A1 day 10, A2 none (100), B1 146, B2 none (200)
    assert t.loc["Any TEAE", f"{H} PY"] == pytest.approx(110 / 365.25)
    assert t.loc["Any TEAE", f"{H} %"] == pytest.approx(50.0)


def test_first_grade3_with_death_competing():
    # A1 G3 day 73 -> cause 1 at 73/30.4375 months; A2 dies day 100 without G3 -> cause 2;
    # B1 G3 day 146 -> cause 1; B2 censored at day 200.
    events = safety.teae_events(ae([("A1", "hypertension", 3, 73, "related"), ("B1", "diarrhea", 3, 146, None)]),
                                empty_labs(), cohort(), 730).data
    d = safety.time_to_first_grade3(events, cohort(), 730).set_index("study_id")
    assert d["status"].to_dict() == {"A1": 1, "A2": 2, "B1": 1, "B2": 0}
    np.testing.assert_allclose(d["time_months"] * 30.4375, [73, 100, 146, 200])
    res = safety.first_grade3_cumulative_incidence(events, cohort(), 730, [3, 6])
    cif = res["cif"].set_index(["arm", "time"])["est"]
    assert cif[(H, 3.0)] == pytest.approx(0.5) and cif[(T, 6.0)] == pytest.approx(0.5)


def test_common_schedule_keeps_the_value_closest_to_the_scheduled_day():
    # every 21 days: days 15, 20, 25 fall in the window of day 21 (nearest scheduled day); 20 is the closest;
    # day 31 is nearer 21 than 42 (31/21 = 1.48 -> window 1) so it competes too; day 32 (1.52) goes to 42.
    # Baseline (day 0) is kept.
    labs = pd.DataFrame({"study_id": "A1", "test": "platelets", "value": [150, 60, 100, 40, 30, 20],
                         "lab_date": DAY0 + pd.to_timedelta([0, 15, 20, 25, 31, 32], unit="D")})
    kept = safety.common_schedule_labs(labs, cohort(), 21)
    days = ((kept["lab_date"] - DAY0).dt.days).tolist()
    assert days == [0, 20, 32]


def test_safety_data_quality_entries_are_located():
    # a grade outside 1-5 -> entry with centre, file, source row, column
    res = map_terms(ae([("A1", "fatigue", 7, 10, "related")]).rename(columns={"ae_term": "ae_term_raw"}))
    dq = res.dq
    assert list(dq.columns) == DQ_COLUMNS
    assert dq[["center_id", "file", "row", "column"]].values.tolist() == [["C01", "C01/adverse_events.csv", 2,
                                                                          "grade"]]


def test_journal_versions_of_the_rate_and_schedule_tables_have_readable_first_columns():
    """The EAIR and common-schedule tables reach the supplement with reader-facing headers, not column names."""
    from analysis_utils.reporting import safety as report

    arms = ["HAIC-TKIs-P", "TKIs-P"]
    eair = pd.DataFrame({"category": ["any grade >= 3 TEAE"], "rate ratio": [1.5], "rate ratio lower": [1.0],
                         "rate ratio upper": [2.2], "p": [0.04],
                         **{f"{a} {k}": [v] for a in arms for k, v in
                            (("N", 10), ("n", 4), ("%", 40.0), ("PY", 8.0), ("EAIR", 50.0), ("EAIR lower", 13.6),
                             ("EAIR upper", 128.0))}})
    out = report.format_eair(eair)
    assert out.columns[0] == "Patients with" and out.iloc[0, 0] == "any grade ≥ 3 TEAE"
    lab = pd.DataFrame({"labs": ["all draws", "common schedule"], "ctcae_term": ["ALT increased"] * 2,
                        "p >=3": [0.5, 0.7],
                        **{f"{a} >=3 {k}": [1, 1] if k == "n" else [10.0, 10.0] for a in arms for k in ("n", "%")}})
    wide = report.format_lab_sensitivity(lab, arms)
    assert wide.columns[0] == "CTCAE term" and wide.iloc[0, 0] == "ALT increased"


def test_lab_draws_per_patient_by_hand():
    """Detection-bias diagnostic: values per patient after day 0 and up to 6 months (6 x 365.25 / 12 = 182.625
    days) of platelets, ALT and neutrophils; a patient without a value counts 0.
    A1 (HAIC): platelets days 10, 30 (day 200 is after 6 months; ALT on day 0 is not after day 0) -> platelets 2.
    A2 (HAIC): platelets day 182 (kept), day -5 (before) -> 1. B1 (TKIs-P): platelets day 50, ALT day 60 (albumin
    is not a counted test) -> 1 and 1. B2: nothing. Z9 is not in the cohort.
    HAIC platelets [2, 1]: median 1.5, quartiles 1.25 and 1.75 (linear), mean 1.5; TKIs-P platelets [1, 0] and
    ALT [1, 0]: median 0.5, quartiles 0.25 and 0.75, mean 0.5; the rest [0, 0]."""
    rows = [("A1", "platelets", 10), ("A1", "platelets", 30), ("A1", "platelets", 200), ("A1", "alt", 0),
            ("A2", "platelets", 182), ("A2", "platelets", -5), ("B1", "platelets", 50), ("B1", "alt", 60),
            ("B1", "albumin", 20), ("Z9", "platelets", 10)]
    labs = pd.DataFrame(rows, columns=["study_id", "test", "day"])
    labs = labs.assign(lab_date=DAY0 + pd.to_timedelta(labs.pop("day"), unit="D"), value=1.0)
    got = safety.lab_draws_per_patient(labs, cohort())
    zero = [2, 0.0, 0.0, 0.0, 0.0]
    half = [2, 0.5, 0.25, 0.75, 0.5]
    assert got.columns.tolist() == ["arm", "test", "n_patients", "median", "q1", "q3", "mean"]
    assert got.values.tolist() == [[H, "alt", *zero], [H, "neutrophils", *zero], [H, "platelets", 2, 1.5, 1.25, 1.75, 1.5],
                                   [T, "alt", *half], [T, "neutrophils", *zero], [T, "platelets", *half]]


def test_lab_event_sensitivity_by_hand():
    """Platelets (LLN 150 x 10^9/L): A1 40 on day -3 (baseline) and 200 on day 10 (normal, no event); B1 30 on day 20
    without a baseline (graded against the limits: < 50-25 is grade 3). HAIC 0 of 2, TKIs-P 1 of 2 (50.0%) at any
    grade and at grade >= 3; Fisher's p of [[0, 2], [1, 1]] is 1. The common 21-day schedule keeps both values
    (days 10 and 20 fall in window 1, one value each): the same row, labelled by the labs used."""
    labs = pd.DataFrame({"study_id": ["A1", "A1", "B1"], "test": "platelets", "value": [40.0, 200.0, 30.0],
                         "lab_date": DAY0 + pd.to_timedelta([-3, 10, 20], unit="D"), "uln": np.nan, "lln": 150.0,
                         "center_id": "C01", "source_file": "C01/labs.csv", "source_row": [2, 3, 4]})
    out = safety.lab_event_sensitivity(ae([]), labs, cohort(), 730, 21)
    assert out["labs"].tolist() == ["all values", "common schedule (21 days)"]
    for _, row in out.iterrows():
        assert row["ctcae_term"] == "Platelet count decreased"
        assert [row[f"{H} any n"], row[f"{T} any n"], row[f"{H} >=3 n"], row[f"{T} >=3 n"]] == [0, 1, 0, 1]
        assert [row[f"{T} any %"], row[f"{T} >=3 %"], row["p >=3"]] == [50.0, 50.0, 1.0]


def test_lab_grades_use_the_terms_passed(tmp_path):
    """B1: platelets 200 x 10^9/L on day 20, no limit recorded, so the terms file's default LLN applies. Packaged
    file: LLN 125, 200 is normal (no event). A terms file with LLN 300: 200 < 300 and >= 75 is grade 1."""
    import yaml
    from analysis_utils.study import ctcae
    raw = yaml.safe_load(ctcae.TERMS_PATH.read_text(encoding="utf-8"))
    raw["default_reference_limits"]["platelets"]["lln"] = 300.0
    (tmp_path / "terms.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    custom = ctcae.load_ctcae_terms(tmp_path / "terms.yaml")
    labs = pd.DataFrame({"study_id": ["B1"], "test": ["platelets"], "value": [200.0],
                         "lab_date": [DAY0 + pd.Timedelta(days=20)], "uln": [np.nan], "lln": [np.nan],
                         "center_id": "C01", "source_file": "C01/labs.csv", "source_row": [2]})
    assert safety.teae_events(ae([]), labs, cohort(), 730).data.empty
    ev = safety.teae_events(ae([]), labs, cohort(), 730, terms=custom).data
    assert ev[["study_id", "ctcae_term", "worst_grade"]].values.tolist() == [["B1", "Platelet count decreased", 1]]
