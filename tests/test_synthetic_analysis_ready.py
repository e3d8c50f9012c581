"""The analysis-ready fast path (analysis_utils.synthetic.analysis_ready) against the export-and-clean path.

One cohort is generated and cleaned (study.cleaning, the rules in main), and the same replicate is produced by
analysis_ready. For records without an injected defect that can change a compared column (blank patients-table cells,
the recorded BCLC and the site-recorded response are the same in both paths; labs and adverse events are not
compared; any other defect or a referral duplicate excludes the record) the columns listed in
docs/methods/synthetic-cohort.md, section 11, agree. Both paths now date time zero at the first treatment component
(the target-trial cleaning is merged): time zero, the arm at time zero, eligibility and OS days agree record by record;
baseline-dependent PFS dates are compared where both paths chose the same baseline scan.
"""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from analysis_utils.study.cleaning import CleaningConfig, clean
from analysis_utils.study.export_files import read_raw_table
from analysis_utils.study.identifiers import study_id
from analysis_utils.synthetic import analysis_ready, generate_cohort, true_values
from analysis_utils.synthetic.config import ARM_TRIPLE

KEY = "test-key"
CFG = {"seed": 11, "n_records": 600, "n_centers": 6, "xlsx_centers": 1, "chinese_centers": 2, "truth_n": 20000}


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("fast_path")
    generate_cohort(CFG, out)
    cleaned = clean(out / "raw", CleaningConfig(data_cutoff=pd.Timestamp("2025-09-30"), pseudonym_key=KEY))
    truth = pd.read_csv(out / "ground_truth" / "patients_truth.csv", dtype={"mrn": str})
    truth["study_id"] = study_id(truth["center_id"], truth["mrn"], KEY)
    defects = pd.read_csv(out / "ground_truth" / "defects.csv", dtype=str)
    fast, fast_truth = analysis_ready(CFG, CFG["seed"])
    # records touched by a defect that the fast path does not reproduce, in a table it derives columns from
    reproduced = (defects["file"].str.startswith("patients")
                  & defects["defect"].isin(["missing", "bclc_inconsistent", "site_bor_discordant"]))
    other = defects[~reproduced & ~defects["file"].str.startswith(("labs", "adverse_events"))]
    touched: set[tuple[str, str]] = set()
    for (center, file), rows in other.groupby(["center_id", "file"]):
        raw = read_raw_table(out / "raw" / center / file).set_index("source_row")
        touched |= {(center, m) for m in raw.loc[rows["row"].astype(int), "mrn"]}
    pairs = set(truth["duplicate_of"].dropna()) | set(
        (truth["center_id"] + ":" + truth["mrn"])[truth["duplicate_of"].notna()])
    ok = [(c, m) not in touched and f"{c}:{m}" not in pairs for c, m in zip(truth["center_id"], truth["mrn"])]
    keep = truth.loc[ok, ["study_id", "person_id"]]
    both = cleaned.screened.merge(keep, on="study_id").merge(fast, on="person_id", suffixes=("_c", "_f"))
    return {"cleaned": cleaned, "fast": fast, "fast_truth": fast_truth, "both": both, "truth": truth}


def _agree(both: pd.DataFrame, col: str) -> pd.Series:
    a, b = both[f"{col}_c"], both[f"{col}_f"]
    return (a == b).fillna(False).astype(bool) | (a.isna() & b.isna())


def test_columns_and_dtypes_match_the_cleaning(paths: dict) -> None:
    fast, screened = paths["fast"], paths["cleaned"].screened
    shared = [c for c in fast.columns if c in screened.columns]
    assert len(shared) >= 80
    differ = {c: (str(screened[c].dtype), str(fast[c].dtype)) for c in shared if screened[c].dtype != fast[c].dtype}
    assert not differ, differ
    # the columns the analyses use are all there
    for col in ("study_id", "center_id", "index_date", "arm", "haic", "first_haic_date", "haic_offset_days",
                "age", "sex", "etiology", "ecog", "child_pugh_class", "albi_score", "bclc_stage", "multiple_tumours",
                "max_tumour_size_cm", "mvi", "ehs", "afp_ge_400", "vp4", "afp", "pivka_ii", "tki_agent", "pd1_agent",
                "os_months", "os_event", "pfs_recist_months", "pfs_recist_event", "pfs_mrecist_months",
                "pfs_mrecist_event", "eligible", "exclusion_reason"):
        assert col in fast.columns, col
    for col in ("combination_start_date", "first_systemic_date", "arm_ever_haic", "criteria_missing"):
        assert col in fast.columns, col


def test_values_agree_with_the_export_and_clean_path(paths: dict) -> None:
    both = paths["both"]
    assert len(both) >= 200
    exact = ("sex", "etiology", "ecog", "ascites", "encephalopathy", "inr", "afp", "pivka_ii", "tumour_number",
             "max_tumour_size_cm", "mvi", "ehs", "mvi_grade", "vp_grade", "bclc_stage", "diagnosis_basis",
             "histology_subtype", "prior_systemic_therapy", "first_haic_date", "n_haic_cycles", "first_aa_date",
             "first_ici_date", "tki_agent", "pd1_agent", "death_date", "follow_up_end_date", "os_event",
             "vital_status", "afp_ge_400", "multiple_tumours", "age")
    bad = {c: int((~_agree(both, c)).sum()) for c in exact if (~_agree(both, c)).any()}
    assert not bad, bad
    # bilirubin and albumin pass through the centre's units (mg/dL, g/dL with 2 decimals): equal to that precision
    # (half a unit of the last decimal: 0.005 mg/dL = 0.0855 umol/L, 0.005 g/dL = 0.05 g/L)
    for col, atol in (("total_bilirubin", 0.0856), ("albumin", 0.0501)):
        np.testing.assert_allclose(both[f"{col}_c"], both[f"{col}_f"], rtol=0, atol=atol)
    assert _agree(both, "child_pugh_class").mean() >= 0.98
    # time zero is the first treatment component in both paths (this compared only systemic-first records while the
    # cleaning in main still dated the index at the systemic start)
    for col in ("index_date", "arm", "eligible", "os_days"):
        assert _agree(both, col).all(), col
    # progression dates where both paths chose the same baseline scan
    same_base = both["baseline_date_c"] == both["baseline_date_f"]
    assert same_base.mean() > 0.8
    for crit in ("recist", "mrecist"):
        assert _agree(both[same_base], f"first_pd_date_{crit}").all(), crit
    # eligibility criteria decided at T0 agree (blank fields excluded: legacy fails them, T0 keeps them)
    filled = ~both["criteria_missing"]
    for crit in ("excluded_histology", "bclc_not_b_or_c", "prior_systemic_therapy", "child_pugh_c", "ecog_above_2",
                 "severe_encephalopathy", "hcc_not_confirmed"):
        assert (both.loc[filled, f"fail_{crit}_c"] == both.loc[filled, f"fail_{crit}_f"]).all(), crit


def test_arm_at_t0_and_the_naive_arm(paths: dict) -> None:
    fast, truth = paths["fast"], paths["truth"]
    t = truth[truth["duplicate_of"].isna()].set_index("person_id")
    f = fast.set_index("person_id")
    assert (f["arm"] == t.loc[f.index, "arm_t0"]).all()
    assert (f["arm_ever_haic"] == t.loc[f.index, "realised_arm"]).all()
    assert ((f["arm"] == ARM_TRIPLE) == (f["haic_offset_days"] == 0)).all()
    # eligibility under the target-trial protocol agrees with the truth's latent decision, except where a blank
    # field hides a failed criterion
    el = f["eligible"] == t.loc[f.index, "eligible_t0"]
    assert el[~f["criteria_missing"]].all()


def test_fast_path_is_deterministic_and_returns_the_truth(paths: dict) -> None:
    again, truth = analysis_ready(CFG, CFG["seed"])
    pd.testing.assert_frame_equal(again, paths["fast"])
    other, _ = analysis_ready(CFG, CFG["seed"] + 1)
    assert not other["age"].equals(paths["fast"]["age"])
    ref = true_values(CFG)
    assert truth["os"]["A_vs_B"] == ref["os"]["A_vs_B"]
    assert truth["config"]["seed"] == CFG["seed"] and "replicate_seed" not in truth["config"]
