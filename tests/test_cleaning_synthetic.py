"""Cleaning against the generator's ground truth: every injected defect the contract can detect is located in the
data-quality log at its centre, file, row and column; every record built to fail a criterion is excluded; arms and
eligibility agree with the truth apart from what injected defects change."""
from pathlib import Path

import pandas as pd
import pytest

from analysis_utils.study.cleaning import CleaningConfig, clean
from analysis_utils.study.identifiers import study_id
from analysis_utils.study.contract import load_contract, normalise_label, synonym_map
from analysis_utils.study.export_files import read_raw_table
from analysis_utils.synthetic import generate_cohort

KEY = "test-key"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    generate_cohort({"seed": 7, "n_records": 420, "n_centers": 6, "xlsx_centers": 2, "chinese_centers": 2,
                     "typo_rate": 0.01, "duplicate_share": 0.02}, out)
    cleaned = clean(out / "raw", CleaningConfig(data_cutoff=pd.Timestamp("2025-09-30"), pseudonym_key=KEY))
    truth = pd.read_csv(out / "ground_truth" / "patients_truth.csv", dtype={"mrn": str})
    truth["study_id"] = study_id(truth["center_id"], truth["mrn"], KEY)
    defects = pd.read_csv(out / "ground_truth" / "defects.csv", dtype=str)
    return cleaned, truth, defects, out / "raw"


# defect type -> (data-quality columns that must locate it); the contract's own checks find these
LOCATABLE = {
    "unknown_label": None, "undeclared_unit": "unit", "decimal_slip": None, "negative_value": None,
    "out_of_range_category": None, "future_birth_date": "birth_date", "missing_unit": None,
}


def _table_of(file: str) -> str:
    return file.split(".")[0]


def _harmless(d, raw_dir: Path) -> bool:
    """Defects that lose no information: a label the contract now lists as a synonym (e.g. 'trace' ascites =
    mild), or a missing diameter unit on a row without any diameter."""
    table = _table_of(d.file)
    if d.defect == "unknown_label" and table != "adverse_events":
        spec = load_contract().columns(table)[d.column]
        return normalise_label(d.written_value) in synonym_map(spec)
    if d.defect == "missing_unit" and table == "tumour_assessments":
        raw = read_raw_table(raw_dir / d.center_id / d.file).set_index("source_row").loc[int(d.row)]
        return all(raw[c] == "" for c in ("ld_mm", "viable_ld_mm", "short_axis_mm"))
    return False


def test_every_locatable_defect_is_in_the_quality_log(generated):
    cleaned, _, defects, raw_dir = generated
    dq = cleaned.quality.to_frame()
    located = set(zip(dq.center_id, dq.file.str.split("/").str[1].str.split(".").str[0], dq.row.astype("Int64")))
    missed = []
    for d in defects[defects.defect.isin(list(LOCATABLE))].itertuples():
        if d.defect in ("unknown_label", "out_of_range_category") and _table_of(d.file) == "adverse_events":
            continue  # AE grades and attributions are checked by the safety step (its own data-quality table)
        if d.defect == "decimal_slip" and _table_of(d.file) == "labs":
            continue  # a x10 platelet count can stay within the physical range: not detectable by a range rule
        if (d.center_id, _table_of(d.file), int(d.row)) not in located and not _harmless(d, raw_dir):
            missed.append((d.defect, d.center_id, d.file, d.row, d.column))
    assert not missed, f"{len(missed)} injected defects not located, e.g. {missed[:5]}"


def _touched_records(defects: pd.DataFrame, raw_dir: Path) -> set[tuple[str, str]]:
    """(centre, mrn) of every record with an injected defect that can change its eligibility or arm: in an
    eligibility field of the patients table, the treatment and follow-up tables, or a RECIST diameter."""
    imaging = defects["file"].str.startswith("tumour") & defects["column"].isin(["ld_mm", "diameter_unit", "mrn"])
    eligibility_fields = ["mrn", "diagnosis_basis", "histology_subtype", "bclc_stage", "prior_systemic_therapy", "ecog",
                          "ascites", "encephalopathy", "total_bilirubin", "total_bilirubin_unit", "albumin",
                          "albumin_unit", "inr", "mvi", "ehs"]
    patients = defects["file"].str.startswith("patients") & defects["column"].isin(eligibility_fields)
    relevant = defects[defects["file"].str.startswith(("haic", "systemic", "follow_up")) | imaging | patients]
    touched = set()
    for (center, file), rows in relevant.groupby(["center_id", "file"]):
        raw = read_raw_table(raw_dir / center / file).set_index("source_row")
        touched |= {(center, m) for m in raw.loc[rows["row"].astype(int), "mrn"]}
    return touched


def test_duplicates_are_removed_or_excluded(generated):
    cleaned, truth, defects, _ = generated
    dups = truth[truth["duplicate_of"].notna()]
    assert len(dups) > 0
    reason = cleaned.screened.set_index("study_id")["exclusion_reason"]
    sid_of = {(c, m): sid for c, m, sid in zip(truth["center_id"], truth["mrn"], truth["study_id"])}
    for dup in dups.itertuples():
        pair = [dup.study_id, sid_of[tuple(dup.duplicate_of.split(":", 1))]]
        # the same person twice: exactly one of the two records is excluded as the duplicate
        assert sum(reason.get(s) == "duplicate_record" for s in pair) == 1, pair
    rows = defects[defects.defect == "duplicate_row"]
    dq = cleaned.quality.to_frame()
    dup_rows = dq[dq.rule == "exact duplicate row in the file"]
    located = set(zip(dup_rows.center_id, dup_rows.file.str.split("/").str[1].str.split(".").str[0], dup_rows.row))
    for d in rows.itertuples():
        assert (d.center_id, _table_of(d.file), int(d.row)) in located


#: the generator's criteria that are assessed at time zero (the others -- HAIC timing, the combination, follow-up
#: imaging -- are strategy adherence or analysis populations, never eligibility: docs/methods/target-trial.md)
BASELINE_CRITERIA = {"excluded_histology", "diagnosis_basis_other", "bclc_a_or_d", "prior_systemic_therapy",
                     "no_measurable_lesion", "child_pugh_c", "ecog_3_4", "encephalopathy_grade_3_4"}


def _fails_at_baseline(fails: pd.Series) -> pd.Series:
    return fails.fillna("").map(lambda f: bool(set(filter(None, f.split(";"))) & BASELINE_CRITERIA))


def test_records_built_to_fail_a_criterion_are_excluded(generated):
    cleaned, truth, defects, raw_dir = generated
    touched = _touched_records(defects, raw_dir)
    clean_rec = pd.Series([(c, m) not in touched for c, m in zip(truth["center_id"], truth["mrn"])], index=truth.index)
    built = truth[truth["exclusion_criterion"].isin(BASELINE_CRITERIA) & clean_rec]
    assert len(built) >= 5
    elig = cleaned.screened.set_index("study_id").reindex(built["study_id"])["eligible"]
    assert not elig.any(), built.loc[elig.values, ["center_id", "exclusion_criterion"]].head()


def test_eligibility_and_arm_agree_with_the_truth(generated):
    """Records without injected defects whose time zero is the generator's index date (no HAIC before the systemic
    start): eligible exactly when they fail no criterion assessed at time zero; the arm at time zero is HAIC-TKIs-P
    exactly when HAIC started on that day."""
    cleaned, truth, defects, raw_dir = generated
    touched = _touched_records(defects, raw_dir)
    untouched = pd.Series([(c, m) not in touched for c, m in zip(truth["center_id"], truth["mrn"])], index=truth.index)
    s = cleaned.screened.set_index("study_id")
    originals = set(truth["duplicate_of"].dropna())  # "centre:mrn" of the other record of each duplicate pair
    in_pair = truth["duplicate_of"].notna() | (truth["center_id"] + ":" + truth["mrn"]).isin(originals)
    haic_day = pd.to_numeric(truth["first_haic_day"], errors="coerce")
    systemic_first = haic_day.isna() | (haic_day >= 0)
    t = truth[untouched & ~in_pair & systemic_first].set_index("study_id")
    both = t.index.intersection(s.index)
    assert len(both) > 100
    expected = ~_fails_at_baseline(t.loc[both, "fails_criteria"])
    disagree = both[expected.to_numpy() != s.loc[both, "eligible"].to_numpy()]
    assert len(disagree) / len(both) <= 0.01, s.loc[disagree, "exclusion_reason"].value_counts().to_dict()
    eligible = both[s.loc[both, "eligible"].to_numpy() & expected.to_numpy()]
    arm_t0 = pd.Series("TKIs-P", index=eligible).where(haic_day.set_axis(truth["study_id"]).reindex(eligible) != 0,
                                                       "HAIC-TKIs-P")
    assert (arm_t0 == s.loc[eligible, "arm"]).mean() >= 0.99


def test_derived_best_response_matches_the_latent_truth(generated):
    """The RECIST engine, run on the generated lesion measurements, recovers the response the generator built them
    to show (differences: injected missing or negative diameters and, under mRECIST, a CR whose viable diameter was
    not recorded at every scan)."""
    cleaned, truth, _, _ = generated
    m = cleaned.cohort.merge(truth[["study_id", "bor_recist", "bor_mrecist"]], on="study_id", suffixes=("", "_truth"))
    assert (m["bor_recist"] == m["bor_recist_truth"]).mean() >= 0.97
    assert (m["bor_mrecist"] == m["bor_mrecist_truth"]).mean() >= 0.90
