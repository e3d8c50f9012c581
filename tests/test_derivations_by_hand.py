"""PFS per RECIST 1.1 and mRECIST, and OS, derived by the whole cleaning step (``study.cleaning.clean``) from a
hand-built export, against expectations worked out by hand (issue #18).

Rules: docs/methods/pfs-rules.md (FDA 2018, Table 5), docs/methods/recist-mrecist.md (sections 5, 9, 12),
docs/methods/eligibility-and-time-zero.md (section 1, overall survival). Set-up: tests/hand_cohort.py. Every
patient here starts lenvatinib on T0 = 2023-02-01 (day 0); the data cut-off is 2023-12-31 = day 333.

Tumour: one enhancing liver target L1, baseline scan on day -22 with longest diameter (LD) 60 mm and viable LD 30 mm.
- RECIST 1.1 (sum of LD): PD when >= 20 % and >= 5 mm above the nadir; PR when >= 30 % below baseline (60 -> <= 42).
- mRECIST (sum of viable LD): PD when >= 20 % above the nadir (30 -> >= 36); PR when >= 30 % below (30 -> <= 21).
PFS schedule (params/default.yaml): scheduled days 42, 84, 126, ... 336, then every 84; window w = 7; a scheduled
day s is missed between the last adequate assessment A and the event E when A + 7 < s and s + 7 < E; >= 2 missed
-> censored at A. No adequate post-baseline assessment: event only for death by day 49 (42 + 7), else censored at 0.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis_utils.study import endpoints as ep
from conftest import patient_tables
from hand_cohort import CUTOFF_DAY, alive, by_mrn, combination, config, day, dead, run_clean, scans, therapy

SD = (60, 30)      # LD, viable LD unchanged: SD under both criteria
PD_BOTH = (80, 45)  # RECIST 80 vs nadir 60: +33 % and +20 mm -> PD; mRECIST 45 vs 30: +50 % -> PD


def v(d, lesion=SD):
    return (d, *lesion)


#: mrn -> (follow-up visits, follow-up record, systemic courses or None for the default combination)
CASES = {
    # PD on day 84 under both criteria; alive, last contact 2024-02-01 (after the cut-off)
    "PRG": ([v(42), v(84, PD_BOTH)], {}, None),
    # RECIST: 66 vs nadir 60 = +10 % -> SD on days 84 and 126, no PD; mRECIST: 40 vs 30 = +33 % -> PD on day 84
    "MRD": ([v(42), v(84, (66, 40)), v(126, (66, 40))], alive(242), None),
    # SD on days 42 and 84, death on day 100: no scheduled day missed (A = 84; day 126: 126 + 7 < 100 false)
    "DTH": ([v(42), v(84)], dead(100), None),
    # SD on day 42 (A = 42), death on day 134: days 84 (49 < 84, 91 < 134) and 126 (49 < 126, 133 < 134) missed
    "MIS": ([v(42)], dead(134), None),
    # the same with death on day 133: day 126 not missed (133 < 133 false) -> 1 missed -> event
    "MI1": ([v(42)], dead(133), None),
    # SD day 42, SD day 84 (55/60 = -8 %, 25/30 = -17 %), NE day 126 (diameters blank): censored at A = 84
    "CEN": ([v(42), v(84, (55, 25)), v(126, ("", ""))], alive(273), None),
    # no follow-up scan: alive -> censored at day 0
    "NOA": ([], alive(273), None),
    # no follow-up scan, death on day 45 / 49 (in the first window, <= 49) -> event; day 50 -> censored at 0
    "ED45": ([], dead(45), None),
    "ED49": ([], dead(49), None),
    "ED50": ([], dead(50), None),
    # SD every 42 days up to day 294; PD on day 340 and death on day 350, both after the cut-off (day 333):
    # neither counts -> censored at A = 294 (the last adequate assessment on or before the cut-off)
    "PAC": ([v(d) for d in range(42, 295, 42)] + [v(340, PD_BOTH)], dead(350), None),
    # the same with PD on the cut-off day 333: counted (after 294 no scheduled day is missed: 336 > 333)
    "PON": ([v(d) for d in range(42, 295, 42)] + [v(333, PD_BOTH)], alive(333), None),
    # new anticancer therapy (regorafenib, not an agent of the initial combination) from day 90, PD on day 126
    "NTX": ([v(42), v(84), v(126, PD_BOTH)], alive(273),
            combination("NTX") + [therapy("NTX", "regorafenib", "TKI", "2023-05-02")]),  # day 90
    # a chemotherapy course started on time zero is not a new therapy (only courses starting after T0 are)
    "NT0": ([v(42), v(84, PD_BOTH)], alive(273),
            combination("NT0") + [therapy("NT0", "oxaliplatin", "chemotherapy", "2023-02-01")]),
    # death on the cut-off day (day 333) is counted; PD never documented (SD up to 294)
    "DOC": ([v(d) for d in range(42, 295, 42)], dead(333), None),
}


def _patients():
    return [patient_tables(mrn, n=i + 1, lesions=scans(mrn, visits), follow_up=fu, systemic=sysc)
            for i, (mrn, (visits, fu, sysc)) in enumerate(CASES.items())]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return run_clean(tmp_path_factory.mktemp("pfs"), _patients())


def pfs(rec, crit, suffix=""):
    """(days, event, by_death, rule) of one PFS definition."""
    name = f"pfs_{crit}{suffix}"
    return (rec[f"{name}_days"], rec[f"{name}_event"], rec[f"{name}_by_death"], rec[f"{name}_rule"])


# (mrn, RECIST 1.1 expectation, mRECIST expectation): (days, event, by_death, rule)
EXPECTED = [
    ("PRG", (84, 1, 0, ep.PFS_EVENT_PD), (84, 1, 0, ep.PFS_EVENT_PD)),
    ("MRD", (126, 0, 0, ep.PFS_CENSOR_NO_EVENT), (84, 1, 0, ep.PFS_EVENT_PD)),
    ("DTH", (100, 1, 1, ep.PFS_EVENT_DEATH), (100, 1, 1, ep.PFS_EVENT_DEATH)),
    ("MIS", (42, 0, 0, ep.PFS_CENSOR_MISSED), (42, 0, 0, ep.PFS_CENSOR_MISSED)),
    ("MI1", (133, 1, 1, ep.PFS_EVENT_DEATH), (133, 1, 1, ep.PFS_EVENT_DEATH)),
    ("CEN", (84, 0, 0, ep.PFS_CENSOR_NO_EVENT), (84, 0, 0, ep.PFS_CENSOR_NO_EVENT)),
    ("NOA", (0, 0, 0, ep.PFS_CENSOR_NO_ADEQUATE), (0, 0, 0, ep.PFS_CENSOR_NO_ADEQUATE)),
    ("ED45", (45, 1, 1, ep.PFS_EVENT_EARLY_DEATH), (45, 1, 1, ep.PFS_EVENT_EARLY_DEATH)),
    ("ED49", (49, 1, 1, ep.PFS_EVENT_EARLY_DEATH), (49, 1, 1, ep.PFS_EVENT_EARLY_DEATH)),
    ("ED50", (0, 0, 0, ep.PFS_CENSOR_NO_ADEQUATE), (0, 0, 0, ep.PFS_CENSOR_NO_ADEQUATE)),
    ("PAC", (294, 0, 0, ep.PFS_CENSOR_NO_EVENT), (294, 0, 0, ep.PFS_CENSOR_NO_EVENT)),
    ("PON", (333, 1, 0, ep.PFS_EVENT_PD), (333, 1, 0, ep.PFS_EVENT_PD)),
    ("NTX", (126, 1, 0, ep.PFS_EVENT_PD), (126, 1, 0, ep.PFS_EVENT_PD)),
    ("DOC", (333, 1, 1, ep.PFS_EVENT_DEATH), (333, 1, 1, ep.PFS_EVENT_DEATH)),
]


@pytest.mark.parametrize("mrn,recist,mrecist", EXPECTED, ids=[e[0] for e in EXPECTED])
def test_pfs_main_definition_by_hand(cohort, mrn, recist, mrecist):
    rec = by_mrn(cohort, mrn)
    assert rec["eligible"], rec["exclusion_reason"]
    assert pfs(rec, "recist") == recist
    assert pfs(rec, "mrecist") == mrecist
    # months are days / 30.4375
    assert rec["pfs_recist_months"] == pytest.approx(recist[0] / 30.4375)
    assert rec["pfs_mrecist_months"] == pytest.approx(mrecist[0] / 30.4375)


def test_pfs_last_adequate_assessment_and_missed_counts(cohort):
    # A (last adequate before E, or on/before the cut-off without E) and the missed scheduled days between A and E
    got = {m: (by_mrn(cohort, m)["pfs_recist_last_adequate_days"], by_mrn(cohort, m)["pfs_recist_n_missed"])
           for m in ("PRG", "DTH", "MIS", "MI1", "CEN", "PAC")}
    assert got == {"PRG": (42, 0), "DTH": (84, 0), "MIS": (42, 2), "MI1": (42, 1), "CEN": (84, 0), "PAC": (294, 0)}
    # mRECIST PD of MRD on day 84: A = 42, and RECIST has no PD, so its first-PD date is empty
    mrd = by_mrn(cohort, "MRD")
    assert mrd["pfs_mrecist_last_adequate_days"] == 42 and pd.isna(mrd["first_pd_date_recist"])
    assert mrd["first_pd_date_mrecist"] == pd.Timestamp("2023-04-26")  # day 84


def test_progression_after_cutoff_is_not_dated(cohort):
    pac = by_mrn(cohort, "PAC")
    assert pd.isna(pac["first_pd_date_recist"]) and pd.isna(pac["first_pd_date_mrecist"])
    assert by_mrn(cohort, "PON")["first_pd_date_recist"] == pd.Timestamp("2023-12-31")


def test_all_events_definition_ignores_missed_assessments(cohort):
    # MIS: death on day 134 after 2 missed assessments is an event in the "all events" sensitivity definition
    assert pfs(by_mrn(cohort, "MIS"), "recist", "_allevents") == (134, 1, 1, ep.PFS_EVENT_DEATH)
    assert pfs(by_mrn(cohort, "MIS"), "mrecist", "_allevents") == (134, 1, 1, ep.PFS_EVENT_DEATH)
    # otherwise the same as the main definition
    assert pfs(by_mrn(cohort, "PRG"), "recist", "_allevents") == (84, 1, 0, ep.PFS_EVENT_PD)


def test_new_anticancer_therapy_sensitivity_definition(cohort):
    ntx = by_mrn(cohort, "NTX")
    assert ntx["new_therapy_date"] == pd.Timestamp("2023-05-02")           # day 90
    # default new_anticancer_therapy: sensitivity -> main PFS an event at 126 (above); the _newtx definition censors
    # at the last adequate assessment on or before day 90: SD on day 84
    assert pfs(ntx, "recist", "_newtx") == (84, 0, 0, ep.PFS_CENSOR_NEW_THERAPY)
    assert pfs(ntx, "mrecist", "_newtx") == (84, 0, 0, ep.PFS_CENSOR_NEW_THERAPY)
    # no new therapy: the _newtx definition equals the main one
    assert pfs(by_mrn(cohort, "PRG"), "recist", "_newtx") == (84, 1, 0, ep.PFS_EVENT_PD)
    assert pd.isna(by_mrn(cohort, "PRG")["new_therapy_date"])
    nt0 = by_mrn(cohort, "NT0")
    assert pd.isna(nt0["new_therapy_date"]) and pfs(nt0, "recist", "_newtx") == (84, 1, 0, ep.PFS_EVENT_PD)


def test_new_anticancer_therapy_primary(tmp_path):
    """With ``pfs_rules.new_anticancer_therapy: primary`` the main PFS of NTX is censored at day 84."""
    visits, fu, sysc = CASES["NTX"]
    cleaned = run_clean(tmp_path, [patient_tables("NTX", n=1, lesions=scans("NTX", visits), follow_up=fu,
                                                  systemic=sysc)], config(new_anticancer_therapy="primary"))
    ntx = by_mrn(cleaned, "NTX")
    assert pfs(ntx, "recist") == (84, 0, 0, ep.PFS_CENSOR_NEW_THERAPY)
    assert pfs(ntx, "mrecist") == (84, 0, 0, ep.PFS_CENSOR_NEW_THERAPY)
    assert "pfs_recist_newtx_days" not in cleaned.screened.columns


# OS: (days, event). Cut-off day 333; default follow-up: alive with last contact 2024-02-01 (day 365) -> capped.
OS_EXPECTED = {
    "PRG": (CUTOFF_DAY, 0),   # last contact day 365 after the cut-off -> censored at day 333
    "MRD": (242, 0),          # alive, last contact 2023-10-01 = day 242 -> censored there
    "DTH": (100, 1),          # died day 100 -> event
    "MIS": (134, 1),          # PFS censored, but OS counts the death
    "ED45": (45, 1),
    "PAC": (CUTOFF_DAY, 0),   # died day 350, after the cut-off -> censored at day 333, not an event
    "DOC": (CUTOFF_DAY, 1),   # died on the cut-off day -> an event
    "NOA": (273, 0),          # alive, last contact 2023-11-01 = day 273
}


@pytest.mark.parametrize("mrn", list(OS_EXPECTED))
def test_overall_survival_by_hand(cohort, mrn):
    rec = by_mrn(cohort, mrn)
    assert (rec["os_days"], rec["os_event"]) == OS_EXPECTED[mrn]
    assert rec["os_months"] == pytest.approx(OS_EXPECTED[mrn][0] / 30.4375)


def test_death_after_cutoff_logged_and_not_dated(cohort):
    pac = by_mrn(cohort, "PAC")
    assert pd.isna(pac["death_date"]) and pac["follow_up_end_date"] == pd.Timestamp("2023-12-31")
    dq = cohort.quality.to_frame()
    hit = dq[dq.rule == "death after the data cut-off"]
    assert len(hit) == 1 and hit.iloc[0]["file"] == "C01/follow_up.csv"
    assert hit.iloc[0]["row"] == list(CASES).index("PAC") + 1
    assert hit.iloc[0]["column"] == "death_date" and hit.iloc[0]["study_id"] == pac.name


def test_pfs_rules_unit_one_case_per_rule():
    """``apply_pfs_rules`` on its own, one patient per rule, with a cut-off on day 200 and ``censor_new_therapy``."""
    day0 = pd.Timestamp("2024-01-01")
    cases = {  # visits (day, response), death day, new therapy day
        "E": ([(42, "SD"), (84, "PD")], None, None),          # PD 84 -> event 84
        "D": ([(42, "PR")], 70, None),                        # death 70, A 42, day 84 not missed (84 + 7 < 70 no)
        "M": ([(42, "SD"), (84, "NE"), (126, "NE")], 140, None),  # A 42: 84, 126 missed (126 + 7 = 133 < 140)
        "N": ([(42, "SD"), (84, "SD"), (126, "PD")], None, 100),   # therapy 100 before PD 126 -> censored 84
        "Z": ([(42, "NE")], None, None),                      # no adequate -> censored 0
        "C": ([(42, "SD"), (84, "SD"), (210, "PD")], 220, None),   # PD 210 and death 220 after cut-off 200 -> A 84
    }
    patients = pd.DataFrame({"study_id": list(cases), "index_date": day0,
                             "death_date": [day0 + pd.Timedelta(days=c[1]) if c[1] else pd.NaT for c in cases.values()],
                             "new_therapy_date": [day0 + pd.Timedelta(days=c[2]) if c[2] else pd.NaT
                                                  for c in cases.values()]})
    tp = pd.DataFrame([{"study_id": s, "visit": i, "days_from_index": d, "overall_response": r}
                       for s, c in cases.items() for i, (d, r) in enumerate([(-5, None), *c[0]])])
    got = ep.apply_pfs_rules(patients, tp, day0 + pd.Timedelta(days=200), ep.PfsRules(), censor_new_therapy=True)
    got = got.set_index("study_id")
    assert got.loc["E", ["days", "event", "by_death"]].tolist() == [84, 1, 0]
    assert got.loc["D", ["days", "event", "by_death"]].tolist() == [70, 1, 1]
    assert got.loc["M", ["days", "event", "rule"]].tolist() == [42, 0, ep.PFS_CENSOR_MISSED]
    assert got.loc["N", ["days", "event", "rule"]].tolist() == [84, 0, ep.PFS_CENSOR_NEW_THERAPY]
    assert got.loc["Z", ["days", "event", "rule"]].tolist() == [0, 0, ep.PFS_CENSOR_NO_ADEQUATE]
    assert got.loc["C", ["days", "event", "rule"]].tolist() == [84, 0, ep.PFS_CENSOR_NO_EVENT]
    assert np.isnan(got.loc["C", "pd_days"])


def test_overall_survival_corrections_and_time_zero_boundary(tmp_path):
    """OS corrections of ``endpoints.overall_survival`` (docs/methods/eligibility-and-time-zero.md, section 1), one
    patient each, expectations by hand (T0 = day 0, cut-off day 333):

    - DND: vital status dead, death date blank, last contact day 150 -> death dated at the last contact: (150, event);
    - ALD: vital status alive but a death date on day 120 -> the death date is used: (120, event);
    - DUP: two follow-up records, the first alive at day 200, the second dead on day 100 -> reading keeps the death
      row (``study.linking.one_follow_up_row``, logged), so OS is (100, event);
    - D00: death on day 0 (the index date) -> no valid follow-up, excluded as ``invalid_follow_up``;
    - D01: death on day 1 -> valid follow-up, (1, event), eligible.
    Found by mutation testing (benchmarks/mutation.md): none of these was exercised before."""
    rows = [patient_tables("DND", n=1, follow_up={"vital_status": "dead", "death_date": "",
                                                   "last_contact_date": day(150)}),
            patient_tables("ALD", n=2, follow_up={"vital_status": "alive", "death_date": day(120),
                                                   "last_contact_date": day(120)}),
            patient_tables("DUP", n=3, follow_up=alive(200)),
            patient_tables("D00", n=4, follow_up=dead(0)),
            patient_tables("D01", n=5, follow_up=dead(1))]
    rows[2]["follow_up"].append({"mrn": "DUP", **dead(100)})
    cleaned = run_clean(tmp_path, rows)
    got = {m: by_mrn(cleaned, m) for m in ("DND", "ALD", "DUP", "D00", "D01")}
    assert (got["DND"]["os_days"], got["DND"]["os_event"]) == (150, 1)
    assert (got["ALD"]["os_days"], got["ALD"]["os_event"]) == (120, 1)
    assert (got["DUP"]["os_days"], got["DUP"]["os_event"]) == (100, 1)
    assert (got["D01"]["os_days"], got["D01"]["os_event"]) == (1, 1)
    assert got["D01"]["os_months"] == pytest.approx(1 / 30.4375)
    assert bool(got["D01"]["follow_up_valid"]) and bool(got["D01"]["eligible"])
    assert not bool(got["D00"]["follow_up_valid"]) and got["D00"]["exclusion_reason"] == "invalid_follow_up"
    for mrn in ("DND", "ALD", "DUP"):
        assert bool(got[mrn]["eligible"]), mrn
    dq = cleaned.quality.to_frame()
    assert len(dq[dq.rule == "vital status dead without a death date"]) == 1
    assert len(dq[dq.rule == "death date recorded but vital status not dead"]) == 1
    assert len(dq[dq.rule == "death or last contact on or before the index date"]) == 1
