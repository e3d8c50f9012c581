"""Cleaning and eligibility on a hand-built two-centre export: every criterion, duplicates, pseudonymisation,
follow-up corrections and the flow (index date of every hand-built patient: 2023-02-01)."""
import hashlib

import pandas as pd
import pytest

from analysis_utils.study.cleaning import CleaningConfig, clean
from analysis_utils.study.identifiers import study_id
from analysis_utils.study.eligibility import CRITERIA, check_flow
from conftest import patient_tables, write_center

CFG = CleaningConfig(data_cutoff=pd.Timestamp("2025-09-30"), pseudonym_key="test-key")


def _by_mrn(cleaned, center, mrn):
    sid = study_id(pd.Series([center]), pd.Series([mrn]), CFG.pseudonym_key).iloc[0]
    return cleaned.screened.set_index("study_id").loc[sid]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    only_aa = [{"mrn": "F06", "agent": "lenvatinib", "drug_class": "TKI", "start_date": "2023-02-01", "stop_date": "", "cycles": ""}]
    stopped = [{"mrn": "F08", "agent": "lenvatinib", "drug_class": "TKI", "start_date": "2023-02-01", "stop_date": "2023-02-20", "cycles": ""},
               {"mrn": "F08", "agent": "sintilimab", "drug_class": "PD-1", "start_date": "2023-02-01", "stop_date": "2023-02-20", "cycles": ""}]
    no_liver = [{"mrn": "F09", "assessment_date": "2023-01-25", "lesion_id": "P1", "organ": "lung", "lesion_type": "target",
                 "ld_mm": "30", "viable_ld_mm": "", "short_axis_mm": "", "diameter_unit": "mm", "arterial_enhancement": "",
                 "nontarget_status": "", "cytology_confirmed": ""}]
    c01 = [
        patient_tables("OK1", n=1),
        patient_tables("OK2", n=2, haic=["2023-01-20", "2023-02-10"]),                         # HAIC 12 days before index
        patient_tables("F02", n=3, overrides={"diagnosis_basis": "other"}),
        patient_tables("F03", n=4, overrides={"histology_subtype": "combined_hcc_cca", "diagnosis_basis": "histology"}),
        patient_tables("F04", n=5, overrides={"bclc_stage": "A"}),
        patient_tables("F05", n=6, overrides={"prior_systemic_therapy": "yes"}),
        patient_tables("F06", n=7, systemic=only_aa),
        patient_tables("F07", n=8, haic=["2023-05-15"]),                                         # +103 days
        patient_tables("F08", n=9, haic=["2023-03-01"], systemic=stopped),
        patient_tables("F09", n=10, lesions=no_liver),
        # bilirubin 60 umol/L (3 pts) + albumin 25 g/L (3) + INR 2.5 (3) + ascites missing (>= 1) = at least 10
        patient_tables("F10", n=11, overrides={"total_bilirubin": "60", "albumin": "25", "inr": "2.5", "ascites": ""}),
        patient_tables("F11", n=12, overrides={"ecog": "3"}),
        patient_tables("F12", n=13, overrides={"encephalopathy": "grade_3_4"}),
        patient_tables("F13", n=14, follow_up={"vital_status": "dead", "death_date": "2023-01-15"}),
        patient_tables("DTH", n=15, follow_up={"vital_status": "dead", "death_date": "2023-08-02", "last_contact_date": "2023-08-02"}),
        patient_tables("CUT", n=16, follow_up={"vital_status": "dead", "death_date": "2025-12-01", "last_contact_date": "2025-12-01"}),
        patient_tables("NOD", n=17, follow_up={"vital_status": "dead", "death_date": "", "last_contact_date": "2023-06-01"}),
        patient_tables("MISS", n=18, overrides={"ecog": "", "histology_subtype": ""}),
    ]
    # the same person (national ID of OK1) referred to centre C02 under another mrn
    dup = patient_tables("X77", n=1)
    c02 = [dup, patient_tables("B02", n=40)]
    raw = tmp_path_factory.mktemp("export") / "raw"
    write_center(raw, "C01", c01)
    write_center(raw, "C02", c02, "%d.%m.%Y")
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in raw.rglob("*") if p.is_file()}
    cleaned = clean(raw, CFG)
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in raw.rglob("*") if p.is_file()}
    assert before == after, "raw files must never be modified"
    return cleaned


@pytest.mark.parametrize("mrn,reason", [
    ("F02", "hcc_not_confirmed"), ("F03", "excluded_histology"), ("F04", "bclc_not_b_or_c"),
    ("F05", "prior_systemic_therapy"), ("F06", "no_combination"), ("F07", "haic_outside_window"),
    ("F08", "no_cycle_after_haic"), ("F09", "no_measurable_intrahepatic"), ("F10", "child_pugh_c"),
    ("F11", "ecog_above_2"), ("F12", "severe_encephalopathy"), ("F13", "invalid_follow_up"),
])
def test_each_criterion_excludes_its_record(cohort, mrn, reason):
    rec = _by_mrn(cohort, "C01", mrn)
    assert rec["exclusion_reason"] == reason and not rec["eligible"]


def test_every_criterion_is_exercised_and_flow_reconciles(cohort):
    check_flow(cohort.flow)
    exercised = set(cohort.screened["exclusion_reason"].dropna())
    assert exercised == {c.name for c in CRITERIA}
    flow = cohort.flow.set_index(["step", "criterion"])["n"]
    assert flow[("screened", "")] == 20 and flow[("analysed", "")] == 7


def test_missing_values_do_not_exclude_on_exclusion_criteria(cohort):
    assert _by_mrn(cohort, "C01", "MISS")["eligible"]


def test_duplicate_across_centres_is_excluded_and_located(cohort):
    rec = _by_mrn(cohort, "C02", "X77")
    assert rec["exclusion_reason"] == "duplicate_record"
    assert rec["duplicate_of"] == _by_mrn(cohort, "C01", "OK1").name
    dq = cohort.quality.to_frame()
    assert ((dq.center_id == "C02") & (dq.file == "C02/patients.csv") & (dq.row == 1)
            & dq.rule.str.contains("duplicate patient")).any()


def test_arm_index_date_and_haic_timing(cohort):
    ok1, ok2 = _by_mrn(cohort, "C01", "OK1"), _by_mrn(cohort, "C01", "OK2")
    assert ok1["arm"] == "TKIs-P" and ok2["arm"] == "HAIC-TKIs-P"
    # index = earlier of lenvatinib 2023-02-01 and camrelizumab 2023-02-03; first HAIC 2023-01-20 -> -12 days
    assert ok2["index_date"] == pd.Timestamp("2023-02-01") and ok2["haic_offset_days"] == -12
    assert ok2["n_haic_cycles"] == 2 and ok1["age"] == 53  # born 1970-01-01, index 2023-02-01


def test_overall_survival_and_corrections(cohort):
    dth, cut, nod, ok1 = (_by_mrn(cohort, "C01", m) for m in ("DTH", "CUT", "NOD", "OK1"))
    # death 2023-08-02: 182 days after 2023-02-01 = 182 / 30.4375 = 5.979 months, event
    assert dth["os_days"] == 182 and dth["os_event"] == 1 and dth["os_months"] == pytest.approx(182 / 30.4375)
    # death after the cut-off 2025-09-30 -> censored at the cut-off (972 days)
    assert cut["os_event"] == 0 and cut["os_days"] == (pd.Timestamp("2025-09-30") - pd.Timestamp("2023-02-01")).days
    # dead without a date -> death at the last contact 2023-06-01 (120 days), logged
    assert nod["os_event"] == 1 and nod["os_days"] == 120
    assert ok1["os_event"] == 0 and ok1["os_days"] == 365
    dq = cohort.quality.to_frame()
    assert (dq.rule == "vital status dead without a death date").sum() == 1
    assert (dq.rule == "death or last contact on or before the index date").sum() == 1


def test_no_identifier_column_or_value_survives(cohort):
    from analysis_utils.study.contract import load_contract
    ids = load_contract().identifier_columns()
    for name, df in {"screened": cohort.screened, **cohort.tables}.items():
        assert not ids & set(df.columns), name
    text = cohort.screened.to_csv() + "".join(t.to_csv() for t in cohort.tables.values()) + cohort.quality.to_frame().to_csv()
    for value in ("OK1", "Name OK1", "13800000001", "110101197001010001", "1970-01-01"):
        assert value not in text


def test_written_tables_and_results_summary(cohort, tmp_path):
    from analysis_utils.steps import cleaning as steps

    steps.write_cleaned(cohort, tmp_path)
    s = steps.results_summary(cohort)
    # 20 records from 2 centres, 13 excluded (12 criteria + the duplicate X77), 7 analysed: OK2 (HAIC) and OK1, DTH,
    # CUT, NOD, MISS, B02; OS events: DTH and NOD (CUT dies after the cut-off: censored)
    assert (s["n_screened"], s["n_centers"], s["n_excluded"], s["n_analysed"]) == (20, 2, 13, 7)
    assert (s["n_haic"], s["n_control"], s["n_os_events"]) == (1, 6, 2)
    assert s["pct_haic"] == pytest.approx(100 / 7) and sum(s["exclusions"].values()) == 13
    assert s["exclusions"]["duplicate_record"] == 1 and s["haic_after_index_n"] == 0  # OK2's HAIC is 12 days before
    assert s["index_date_min"] == s["index_date_max"] == pd.Timestamp("2023-02-01")
    written = pd.read_parquet(tmp_path / "data" / "cohort.parquet")
    assert len(written) == 7 and not {"source_file", "source_row"} & set(written.columns)
    assert len(pd.read_csv(tmp_path / "tables" / "data_quality.csv")) == s["n_quality_entries"] > 0
    assert pd.read_csv(tmp_path / "tables" / "flow.csv")["n"].tolist() == cohort.flow["n"].tolist()
    overview = steps.crude_overview(cohort.cohort)
    assert overview["n"].to_dict() == {"HAIC-TKIs-P": 1, "TKIs-P": 6} and overview["os_events"].sum() == 2


def test_study_id_known_answer():
    """Known-answer test of the pseudonym: 'S' + the first 10 hex digits (upper case) of HMAC-SHA256(key,
    'centre|mrn'). Expected values computed outside Python with
    ``printf '%s' 'C03|0012345' | openssl dgst -sha256 -hmac 'test-key-for-known-answer'`` (-> ed0c3958e0...) and
    ``printf '%s' 'C11|MRN-88' | openssl dgst -sha256 -hmac 'another key, 含中文'`` (-> aacb18550d...)."""
    ids = study_id(pd.Series(["C03"]), pd.Series(["0012345"]), "test-key-for-known-answer")
    assert ids.iloc[0] == "SED0C3958E0"
    ids = study_id(pd.Series(["C11"]), pd.Series(["MRN-88"]), "another key, 含中文")
    assert ids.iloc[0] == "SAACB18550D"


def test_study_ids_are_stable_and_keyed():
    a = study_id(pd.Series(["C01"]), pd.Series(["A1"]), "k1").iloc[0]
    assert a == study_id(pd.Series(["C01"]), pd.Series(["A1"]), "k1").iloc[0]
    assert a != study_id(pd.Series(["C01"]), pd.Series(["A1"]), "k2").iloc[0]
    assert a != study_id(pd.Series(["C02"]), pd.Series(["A1"]), "k1").iloc[0]
    assert a.startswith("S") and len(a) == 11


def test_exact_duplicate_rows_removed_and_logged(make_export):
    p = patient_tables("A1")
    p["labs"] = p["labs"] + p["labs"][:1]
    cleaned = clean(make_export({"C01": [p]}), CFG)
    assert len(cleaned.tables["labs"]) == 2
    dq = cleaned.quality.to_frame()
    assert ((dq.rule == "exact duplicate row in the file") & (dq.file == "C01/labs.csv") & (dq.row == 3)).all()
