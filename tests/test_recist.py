"""Hand-computed cases for analysis_utils.study.recist (the engine) and analysis_utils.study.recist_rules (the rule
functions). Rules: docs/methods/recist-mrecist.md (RECIST 1.1, Eisenhauer 2009, doi:10.1016/j.ejca.2008.10.026;
mRECIST, Lencioni & Llovet 2010, doi:10.1055/s-0030-1247132); §1.x (RECIST 1.1) and §2.x (mRECIST) are the rule
marks listed in recist_rules.

Convention in every case: index date = 2024-01-01 (day 0); baseline scan on day -7 unless stated;
follow-up scans on the days given. Arithmetic is in the comments.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

try:
    from analysis_utils.study import recist as rc
    from analysis_utils.study import recist_rules as rules
except ImportError:  # package not installed: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from analysis_utils.study import recist as rc
    from analysis_utils.study import recist_rules as rules

DAY0 = pd.Timestamp("2024-01-01")
NA = pd.NA


def L(sid, day, lid, organ="liver", ltype="target", ld=np.nan, viable=np.nan, sa=np.nan, ae=NA,
      status=NA, cyto=NA):
    """One lesion row; ``day`` is days from index."""
    return dict(study_id=sid, assessment_date=DAY0 + pd.Timedelta(days=day), lesion_id=lid, organ=organ,
                lesion_type=ltype, ld_mm=ld, viable_ld_mm=viable, short_axis_mm=sa, arterial_enhancement=ae,
                nontarget_status=status, cytology_confirmed=cyto)


def frame(rows):
    df = pd.DataFrame(rows)
    df["arterial_enhancement"] = df["arterial_enhancement"].astype("boolean")
    df["cytology_confirmed"] = df["cytology_confirmed"].astype("boolean")
    df["nontarget_status"] = df["nontarget_status"].astype("string")
    return df


def index_for(*sids, dates=None):
    return pd.DataFrame({"study_id": list(sids), "index_date": dates or [DAY0] * len(sids)})


def liver_series(sid, lid, days_sizes, ae=True):
    """A liver lesion with ld == viable at each (day, size)."""
    return [L(sid, d, lid, ld=s, viable=s, ae=ae) for d, s in days_sizes]


def run(rows, sids, criterion, **kw):
    return rc.derive_response(frame(rows), index_for(*sids), criterion, **kw)


def visit_resp(res, sid, visit, col="overall_response"):
    tp = res.timepoints
    return tp.loc[(tp.study_id == sid) & (tp.visit == visit), col].item()


def bor(res, sid):
    return res.summary.set_index("study_id").loc[sid, "bor"]


# ---------------------------------------------------------------------------------------------------------
# Target response
# ---------------------------------------------------------------------------------------------------------

def test_nadir_pd_needs_5mm_under_recist_only():
    # baseline 30 -> day 42: 20 (-33.3% vs 30: PR) -> day 84: 24.
    # vs nadir 20: +4 mm = +20% -> RECIST needs +5 mm: not PD; vs baseline (24-30)/30 = -20% -> SD.
    # mRECIST has no 5 mm rule: +20% -> PD.
    rows = liver_series("A", "L1", [(-7, 30), (42, 20), (84, 24)])
    r = run(rows, ["A"], "recist")
    m = run(rows, ["A"], "mrecist")
    assert visit_resp(r, "A", 1, "target_response") == "PR"
    assert visit_resp(r, "A", 2, "target_response") == "SD"
    assert visit_resp(m, "A", 2, "target_response") == "PD"
    tp = r.timepoints.query("study_id == 'A' and visit == 2")
    assert tp.nadir_mm.item() == 20 and tp.pct_change_nadir.item() == pytest.approx(20.0)
    assert tp.pct_change_baseline.item() == pytest.approx(-20.0)
    # RECIST with 25 mm: +5 mm = +25% vs nadir 20 -> PD, first PD on day 84.
    r25 = run(liver_series("A", "L1", [(-7, 30), (42, 20), (84, 25)]), ["A"], "recist")
    assert visit_resp(r25, "A", 2, "target_response") == "PD"
    assert r25.summary.first_pd_date.item() == DAY0 + pd.Timedelta(days=84)
    assert bor(r25, "A") == "PR"  # best before PD


def test_pd_against_nadir_not_baseline():
    # 50 -> 30 (-40%: PR) -> 37: +7 mm, 7/30 = +23.3% vs nadir -> PD although -26% vs baseline.
    res = run(liver_series("A", "L1", [(-7, 50), (42, 30), (84, 37)]), ["A"], "recist")
    assert visit_resp(res, "A", 2, "target_response") == "PD"


def test_lymph_node_under_10mm_is_cr_with_positive_sum():
    # RECIST targets: liver 15 mm, node SA 20 mm -> baseline sum 35.
    # day 42: liver 0, node SA 8 (<10) -> CR although sum = 8; % change (8-35)/35 = -77.1%.
    rows = [L("A", -7, "L1", ld=15, viable=15, ae=True), L("A", -7, "N1", "lymph_node", sa=20),
            L("A", 42, "L1", ld=0, viable=0, ae=False), L("A", 42, "N1", "lymph_node", sa=8)]
    res = run(rows, ["A"], "recist")
    tp = res.timepoints.query("visit == 1")
    assert tp.sum_mm.item() == 8
    assert tp.pct_change_baseline.item() == pytest.approx((8 - 35) / 35 * 100)
    assert tp.target_response.item() == "CR"
    assert tp.nontarget_response.item() == "none" and tp.overall_response.item() == "CR"


def test_missing_target_makes_visit_ne_and_is_logged():
    # targets liver 40 + lung 20 = 60. day 42: lung row absent, liver 30.
    # measured sum 30 vs nadir 60: no PD -> target NE -> overall NE.
    rows = [L("A", -7, "L1", ld=40, viable=40, ae=True), L("A", -7, "P1", "lung", ld=20),
            L("A", 42, "L1", ld=30, viable=30, ae=True)]
    res = run(rows, ["A"], "recist")
    assert visit_resp(res, "A", 1, "target_response") == "NE"
    assert visit_resp(res, "A", 1) == "NE"
    dq = res.data_quality
    hit = dq[(dq.rule == "target_missing_at_visit") & (dq.lesion_id == "P1")]
    assert len(hit) == 1 and hit.column.item() == "ld_mm"
    assert hit.assessment_date.item() == DAY0 + pd.Timedelta(days=42)
    assert bor(res, "A") == "NE"


def test_missing_target_when_measured_ones_already_pd():
    # liver 40 + lung 20 = 60; day 42: lung missing, liver 75 -> 75-60 = +15 mm >= 5 and 15/60 = 25% >= 20%.
    rows = [L("A", -7, "L1", ld=40, viable=40, ae=True), L("A", -7, "P1", "lung", ld=20),
            L("A", 42, "L1", ld=75, viable=75, ae=True)]
    res = run(rows, ["A"], "recist")
    assert visit_resp(res, "A", 1, "target_response") == "PD"
    assert bor(res, "A") == "PD"


def test_recist_sd_mrecist_pr_when_only_viable_part_shrinks():
    # ld 50 -> 48: (48-50)/50 = -4% -> RECIST SD; viable 50 -> 20: (20-50)/50 = -60% -> mRECIST PR.
    rows = [L("A", -7, "L1", ld=50, viable=50, ae=True), L("A", 56, "L1", ld=48, viable=20, ae=True)]
    assert visit_resp(run(rows, ["A"], "recist"), "A", 1) == "SD"
    m = run(rows, ["A"], "mrecist")
    assert visit_resp(m, "A", 1) == "PR"
    assert m.summary.best_pct_change.item() == pytest.approx(-60.0)


def test_mrecist_cr_when_viable_zero():
    # viable 30 -> 0 while ld 30 -> 25: mRECIST CR (all viable 0), RECIST (25-30)/30 = -16.7% -> SD.
    rows = [L("A", -7, "L1", ld=30, viable=30, ae=True), L("A", 56, "L1", ld=25, viable=0, ae=False)]
    assert visit_resp(run(rows, ["A"], "mrecist"), "A", 1) == "CR"
    assert visit_resp(run(rows, ["A"], "recist"), "A", 1) == "SD"


# ---------------------------------------------------------------------------------------------------------
# Non-target and new lesions
# ---------------------------------------------------------------------------------------------------------

def test_new_lesion_forces_pd():
    # liver 40 -> 20 (-50%: target PR) but a new lung nodule on day 42 -> overall PD under both criteria.
    rows = liver_series("A", "L1", [(-7, 40), (42, 20)]) + [L("A", 42, "NEW1", "lung", "new", ld=12)]
    for crit in rc.CRITERIA:
        res = run(rows, ["A"], crit)
        assert visit_resp(res, "A", 1, "target_response") == "PR"
        assert visit_resp(res, "A", 1, "new_lesion")
        assert visit_resp(res, "A", 1) == "PD"
        assert bor(res, "A") == "PD"


def test_unequivocal_nontarget_progression_is_pd():
    # target 40 -> 38 (-5%: SD); portal-vein thrombus (never a target) -> unequivocal progression -> PD.
    rows = liver_series("A", "L1", [(-7, 40), (56, 38)]) + [
        L("A", -7, "V1", "portal_vein", "target", ld=25, status="present"),
        L("A", 56, "V1", "portal_vein", "non_target", ld=35, status="unequivocal_progression")]
    res = run(rows, ["A"], "recist")
    assert res.targets.set_index("lesion_id").loc["V1", "role"] == "non_target"
    assert visit_resp(res, "A", 1, "target_response") == "SD"
    assert visit_resp(res, "A", 1, "nontarget_response") == "PD"
    assert visit_resp(res, "A", 1) == "PD"


def test_target_cr_with_persisting_nontarget_is_pr():
    # §1.5: target CR + non-target non-CR/non-PD -> PR; non-target absent -> CR.
    rows = liver_series("A", "L1", [(-7, 20), (56, 0)]) + [
        L("A", -7, "P1", "lung", ld=6, status="present"), L("A", 56, "P1", "lung", ld=6, status="present")]
    rows_b = [dict(r, study_id="B") for r in rows[:2]] + [
        L("B", -7, "P1", "lung", ld=6, status="present"), L("B", 56, "P1", "lung", ld=0, status="absent")]
    res = run(rows + rows_b, ["A", "B"], "recist")
    assert visit_resp(res, "A", 1, "nontarget_response") == "non-CR/non-PD"
    assert visit_resp(res, "A", 1) == "PR"
    assert visit_resp(res, "B", 1) == "CR"


def test_new_atypical_liver_lesion_under_mrecist():
    # Target liver 40 -> 40 (SD) -> 40 (SD). New liver nodules from day 42, no arterial enhancement:
    #  A: 8 mm -> 19 mm on day 84: growth 11 >= 10 -> mRECIST PD dated to day 42 (first appearance).
    #  B: 8 mm -> 15 mm: growth 7 < 10, atypical -> not PD under mRECIST.
    #  C: 12 mm with typical enhancement on day 42 -> PD on day 42.
    # RECIST: every new lesion is PD on day 42.
    rows = []
    for sid in "ABC":
        rows += liver_series(sid, "L1", [(-7, 40), (42, 40), (84, 40)])
    rows += [L("A", 42, "NEW1", ltype="new", ld=8, ae=False), L("A", 84, "NEW1", ltype="new", ld=19, ae=False),
             L("B", 42, "NEW1", ltype="new", ld=8, ae=False), L("B", 84, "NEW1", ltype="new", ld=15, ae=False),
             L("C", 42, "NEW1", ltype="new", ld=12, viable=12, ae=True)]
    m = run(rows, ["A", "B", "C"], "mrecist").summary.set_index("study_id")
    d42 = DAY0 + pd.Timedelta(days=42)
    assert m.loc["A", "first_pd_date"] == d42 and m.loc["A", "bor"] == "PD"
    assert pd.isna(m.loc["B", "first_pd_date"]) and m.loc["B", "bor"] == "SD"  # SD on day 84 >= 42
    assert m.loc["C", "first_pd_date"] == d42
    r = run(rows, ["A", "B", "C"], "recist").summary.set_index("study_id")
    assert (r.first_pd_date == d42).all()


def test_new_effusion_pd_only_with_cytology_under_mrecist():
    # Target SD (40 -> 39). New ascites on day 56: A without cytology, B cytology-confirmed.
    # mRECIST: A not PD (SD), B PD. RECIST (documented choice): new effusion is a new lesion -> PD for both.
    rows = []
    for sid, cyto in (("A", False), ("B", True)):
        rows += liver_series(sid, "L1", [(-7, 40), (56, 39)])
        rows.append(L(sid, 56, "E1", "ascites", "new", cyto=cyto))
    m = run(rows, ["A", "B"], "mrecist")
    assert visit_resp(m, "A", 1) == "SD" and visit_resp(m, "B", 1) == "PD"
    r = run(rows, ["A", "B"], "recist")
    assert visit_resp(r, "A", 1) == "PD" and visit_resp(r, "B", 1) == "PD"


# ---------------------------------------------------------------------------------------------------------
# Target selection
# ---------------------------------------------------------------------------------------------------------

def test_target_selection_limits_and_mrecist_enhancement():
    # Baseline lesions (size used for ranking):
    #  liver L1 50 (no arterial enhancement), L2 40, L3 30; lung P1 24, P2 20; node N1 SA 25, N2 SA 18;
    #  adrenal A1 20; bone B1 11; portal vein V1 30; ascites E1.
    # RECIST: per organ <= 2 -> candidates by size L1 50, L2 40, N1 25, P1 24, A1 20, P2 20, N2 18, B1 11;
    #   first 5: L1, L2, N1, P1 and the 20 mm tie A1 vs P2 -> lesion_id "A1" < "P2" -> A1.
    #   L3 (3rd liver), P2, N2, B1, V1, E1 are non-targets.
    # mRECIST: L1 not enhancing -> non-target; liver targets L2, L3; N2 SA 18 < 20 -> not a lesion;
    #   ascites without cytology -> not a lesion; by size L2 40, L3 30, N1 25, P1 24, A1/P2 20 -> A1.
    rows = [L("A", -7, "L1", ld=50, viable=50, ae=False), L("A", -7, "L2", ld=40, viable=40, ae=True),
            L("A", -7, "L3", ld=30, viable=30, ae=True), L("A", -7, "P1", "lung", ld=24),
            L("A", -7, "P2", "lung", ld=20), L("A", -7, "N1", "lymph_node", sa=25),
            L("A", -7, "N2", "lymph_node", sa=18), L("A", -7, "A1", "adrenal", ld=20),
            L("A", -7, "B1", "bone", ld=11), L("A", -7, "V1", "portal_vein", ld=30, status="present"),
            L("A", -7, "E1", "ascites", status="present")]
    base = pd.DataFrame({"study_id": ["A"], "baseline_date": [DAY0 - pd.Timedelta(days=7)]})
    r = rc.select_targets(frame(rows), base, "recist").set_index("lesion_id").role
    assert sorted(r[r == "target"].index) == ["A1", "L1", "L2", "N1", "P1"]
    assert sorted(r[r == "non_target"].index) == ["B1", "E1", "L3", "N2", "P2", "V1"]
    m = rc.select_targets(frame(rows), base, "mrecist").set_index("lesion_id").role
    assert sorted(m[m == "target"].index) == ["A1", "L2", "L3", "N1", "P1"]
    assert m["L1"] == "non_target"
    assert m["N2"] == "not_a_lesion" and m["E1"] == "not_a_lesion"


def test_mrecist_node_threshold_20mm():
    # node SA 17: RECIST measurable (>= 15) and a target; mRECIST (porta hepatis, < 20) not a lesion.
    rows = liver_series("A", "L1", [(-7, 30)]) + [L("A", -7, "N1", "lymph_node", sa=17)]
    base = pd.DataFrame({"study_id": ["A"], "baseline_date": [DAY0 - pd.Timedelta(days=7)]})
    assert rc.select_targets(frame(rows), base, "recist").set_index("lesion_id").role["N1"] == "target"
    assert rc.select_targets(frame(rows), base, "mrecist").set_index("lesion_id").role["N1"] == "not_a_lesion"


# ---------------------------------------------------------------------------------------------------------
# Best overall response
# ---------------------------------------------------------------------------------------------------------

def test_confirmation_table():
    # A: 50 -> 30 (day 42, -40% PR) -> 30 (day 77, 35 days = 5 weeks later, PR): confirmed PR.
    # B: 50 -> 34 (day 42, -32%: PR) -> 38 (day 84): (38-50)/50 = -24%, +4 mm = +11.8% vs nadir 34 -> SD.
    #    PR then SD: confirm=True -> SD; confirm=False -> PR.
    # C: PR on day 42, PR on day 63 (21 days < 28: cannot confirm), nothing after: PR->NE row,
    #    SD minimum met (day 42 >= 42) -> SD.
    rows = (liver_series("A", "L1", [(-7, 50), (42, 30), (77, 30)])
            + liver_series("B", "L1", [(-7, 50), (42, 34), (84, 38)])
            + liver_series("C", "L1", [(-7, 50), (42, 30), (63, 30)]))
    confirmed = run(rows, "ABC", "recist", confirm=True)
    unconfirmed = run(rows, "ABC", "recist", confirm=False)
    assert visit_resp(confirmed, "B", 2) == "SD"
    assert [bor(confirmed, s) for s in "ABC"] == ["PR", "SD", "SD"]
    assert [bor(unconfirmed, s) for s in "ABC"] == ["PR", "PR", "PR"]


def test_confirmation_never_borrows_the_next_patients_scan():
    # D: 50 -> 30 on day 42 (-40%: PR) and no later scan: not confirmed; day 42 >= 42 meets the SD minimum -> SD.
    # E: 50 -> 30 on day 42 and 30 on day 77 (35 days later >= 28): confirmed PR. Alone, E is PR as well; D's
    # confirming scan must not be looked for in E's scans (the next patient in the sorted visits).
    rows = liver_series("D", "L1", [(-7, 50), (42, 30)]) + liver_series("E", "L1", [(-7, 50), (42, 30), (77, 30)])
    res = run(rows, "DE", "recist", confirm=True)
    assert [bor(res, s) for s in "DE"] == ["SD", "PR"]
    alone = run(liver_series("E", "L1", [(-7, 50), (42, 30), (77, 30)]), ["E"], "recist", confirm=True)
    assert bor(alone, "E") == "PR"


def test_confirmation_pr_then_pd_before_sd_minimum():
    # PR on day 28 (< 42) then PD on day 70: PR->PD without SD minimum -> PD (confirm=True).
    # 50 -> 30 (PR) -> 40: +10 mm, +33% vs nadir 30 -> PD.
    rows = liver_series("A", "L1", [(-7, 50), (28, 30), (70, 40)])
    assert bor(run(rows, ["A"], "recist", confirm=True), "A") == "PD"
    assert bor(run(rows, ["A"], "recist", confirm=False), "A") == "PR"


def test_sd_minimum_duration():
    # SD = 40 -> 38 (-5%). Index day 0, min_sd_days 42.
    # A: SD day 28, PD day 56 (38 -> 48: +10 mm, +26%) -> early SD then PD -> BOR PD.
    # B: SD day 28 only -> NE. C: SD day 28, SD day 70 -> SD (day 70 >= 42).
    rows = (liver_series("A", "L1", [(-7, 40), (28, 38), (56, 48)])
            + liver_series("B", "L1", [(-7, 40), (28, 38)])
            + liver_series("C", "L1", [(-7, 40), (28, 38), (70, 38)]))
    res = run(rows, "ABC", "recist")
    assert [bor(res, s) for s in "ABC"] == ["PD", "NE", "SD"]
    assert res.summary.set_index("study_id").loc["B", "bor_reason"] == rc.R_EARLY_SD
    # with min_sd_days = 21 the day-28 SD counts: A and B become SD.
    res21 = run(rows, "ABC", "recist", min_sd_days=21)
    assert [bor(res21, s) for s in "ABC"] == ["SD", "SD", "SD"]


def test_summary_dates_and_counts():
    # 40 -> 30 (day 42: -25% SD) -> NE (day 84, row missing) -> 45 (day 126: +15 vs nadir 30 -> PD)
    # -> day 168 (after PD). first PD day 126; last adequate = day 126; 4 post-baseline scans;
    # best % change (30-40)/40 = -25%.
    # The only row on day 84 is a lung lesion absent at baseline and not annotated "new": it is ignored
    # and logged, and the liver target has no row that day.
    rows = liver_series("A", "L1", [(-7, 40), (42, 30), (126, 45), (168, 50)]) + [
        L("A", 84, "P9", "lung", "non_target", ld=8)]
    res = run(rows, ["A"], "recist")
    s = res.summary.iloc[0]
    assert s.n_post_baseline == 4
    assert visit_resp(res, "A", 2) == "NE"
    assert s.first_pd_date == DAY0 + pd.Timedelta(days=126)
    assert s.last_adequate_date == DAY0 + pd.Timedelta(days=126)
    assert s.best_pct_change == pytest.approx(-25.0)
    assert s.bor == "SD"
    assert (res.data_quality.rule == "lesion_not_at_baseline").sum() == 1


def test_no_measurable_target_gives_ne_with_reason():
    # only a 6 mm liver lesion (not measurable) and a 12 mm node (RECIST non-target, mRECIST not a lesion).
    rows = [L("A", -7, "L1", ld=6, viable=6, ae=True, status="present"),
            L("A", -7, "N1", "lymph_node", sa=12, status="present"),
            L("A", 56, "L1", ld=6, viable=6, ae=True, status="present"),
            L("A", 56, "N1", "lymph_node", sa=12, status="present")]
    for crit in rc.CRITERIA:
        res = run(rows, ["A", "Z"], crit)  # Z has no lesion rows at all
        s = res.summary.set_index("study_id")
        assert s.loc["A", "bor"] == "NE" and s.loc["A", "bor_reason"] == rc.R_NO_TARGET
        assert s.loc["Z", "bor"] == "NE" and s.loc["Z", "bor_reason"] == rc.R_NO_BASELINE
        assert visit_resp(res, "A", 1, "target_response") == "none"
    assert visit_resp(run(rows, ["A"], "recist"), "A", 1) == "non-CR/non-PD"


def test_baseline_window_and_grace():
    # A: scans day -60 (outside 42-day window) and day +5 (grace) -> baseline day +5; day -60 logged.
    # B: scans day -30 and day -10 -> baseline -10; -30 logged as before baseline.
    # C: only day -60 and day +10 (beyond 7-day grace) -> no baseline.
    rows = []
    for sid, days in (("A", (-60, 5, 60)), ("B", (-30, -10, 60)), ("C", (-60, 10, 60))):
        rows += liver_series(sid, "L1", [(d, 30) for d in days])
    idx = index_for("A", "B", "C")
    fb = rc.find_baseline(frame(rows), idx).set_index("study_id")
    assert fb.loc["A", "baseline_date"] == DAY0 + pd.Timedelta(days=5) and fb.loc["A", "baseline_after_index"]
    assert fb.loc["B", "baseline_date"] == DAY0 - pd.Timedelta(days=10)
    assert pd.isna(fb.loc["C", "baseline_date"])
    res = rc.derive_response(frame(rows), idx, "recist")
    before = res.data_quality[res.data_quality.rule == "assessment_before_baseline"]
    assert sorted(before.study_id) == ["A", "B"]
    assert res.summary.set_index("study_id").loc["C", "bor_reason"] == rc.R_NO_BASELINE


# ---------------------------------------------------------------------------------------------------------
# Data quality and bad input
# ---------------------------------------------------------------------------------------------------------

def test_data_quality_entries():
    # - negative ld on day 42 -> set NaN -> target not measured -> NE.
    # - two rows of L1 on day 84 (30 and 35) -> keep the larger (35), log the other.
    #   40 -> 35: -12.5% -> SD.
    # - new lung lesion on day 84 without any size -> logged; RECIST still counts it -> PD.
    rows = liver_series("A", "L1", [(-7, 40), (84, 30), (84, 35)]) + [
        L("A", 42, "L1", ld=-5, viable=20, ae=True), L("A", 84, "NEW1", "lung", "new")]
    res = run(rows, ["A"], "recist")
    dq = res.data_quality.set_index("rule")
    assert list(res.data_quality.columns) == list(rc.DQ_COLUMNS)
    assert dq.loc["negative_diameter", "column"] == "ld_mm"
    assert dq.loc["negative_diameter", "action"] == "set to NaN (not measured)"
    # exactly these three entries: L1 has a row on every visit (day 42's is unmeasured, not missing), so no
    # target_missing_at_visit entry
    assert sorted(res.data_quality.rule) == ["duplicate_lesion_assessment", "negative_diameter",
                                             "new_lesion_without_size"]
    assert dq.loc["negative_diameter", "assessment_date"] == DAY0 + pd.Timedelta(days=42)
    assert dq.loc["duplicate_lesion_assessment", "lesion_id"] == "L1"
    assert dq.loc["new_lesion_without_size", "lesion_id"] == "NEW1"
    assert visit_resp(res, "A", 1, "target_response") == "NE"
    tp2 = res.timepoints.query("visit == 2")
    assert tp2.sum_mm.item() == 35 and tp2.target_response.item() == "SD"
    assert tp2.overall_response.item() == "PD"


def test_bad_input_raises_clear_errors():
    rows = frame(liver_series("A", "L1", [(-7, 30)]))
    with pytest.raises(ValueError, match="ld_mm"):
        rc.derive_response(rows.drop(columns="ld_mm"), index_for("A"), "recist")
    with pytest.raises(ValueError, match="organ"):
        rc.derive_response(rows.assign(organ="spleen"), index_for("A"), "recist")
    with pytest.raises(ValueError, match="criterion"):
        rc.derive_response(rows, index_for("A"), "irecist")
    with pytest.raises(ValueError, match="duplicates"):
        rc.derive_response(rows, index_for("A", "A"), "recist")
    with pytest.raises(ValueError, match="^lesions must be a pandas DataFrame$"):
        rc.derive_response(rows.to_dict("records"), index_for("A"), "recist")


def test_rule_functions_directly():
    # sums vs baseline 100 / nadir 40: 47 -> +7 mm, 17.5% (SD: -53% vs baseline is PR!) -> PR;
    # 48 -> +8 mm, +20% -> PD; 20 with one target missing -> NE; 60 with one missing -> +20 mm, +50% -> PD.
    out = rules.target_response(np.array([47.0, 48.0, 20.0, 60.0]), np.array([0, 0, 1, 1]),
                                np.full(4, 100.0), np.full(4, 40.0), np.zeros(4, bool), "recist")
    assert [rules.RESPONSES[c] for c in out] == ["PR", "PD", "NE", "PD"]
    ov = rules.overall_response(np.array([rules.CR, rules.CR, rules.SD, rules.NE]),
                                np.array([rules.NONE, rules.NE, rules.NON_CR_NON_PD, rules.NON_CR_NON_PD]),
                                np.array([False, False, False, False]))
    assert [rules.RESPONSES[c] for c in ov] == ["CR", "PR", "SD", "NE"]
    # the engine module re-exports the rule functions under the same names
    assert rc.target_response is rules.target_response and rc.CRITERIA is rules.CRITERIA


def test_study_not_in_index_and_baseline_only_patient():
    # X has rows but no index row -> excluded and logged once; A has only its baseline scan -> NE,
    # "no post-baseline assessment", 0 post-baseline scans.
    rows = liver_series("A", "L1", [(-7, 30)]) + liver_series("X", "L1", [(-7, 30), (42, 10)])
    res = run(rows, ["A"], "recist")
    dq = res.data_quality
    assert dq.loc[dq.rule == "study_not_in_index", "study_id"].tolist() == ["X"]
    s = res.summary.iloc[0]
    assert list(res.summary.study_id) == ["A"]
    assert s.bor == "NE" and s.bor_reason == rc.R_NO_FOLLOW_UP and s.n_post_baseline == 0


# ---------------------------------------------------------------------------------------------------------
# A lesion with measurements is assessable from them (issue 14): an empty non-target status is read from the
# diameters; what the recorded values imply under mRECIST; why a BOR is NE
# ---------------------------------------------------------------------------------------------------------

def test_site_target_that_is_an_mrecist_non_target_is_read_from_its_diameters():
    # The centre labels both liver lesions "target" (so neither row has a non-target status). L1 enhances
    # (viable 40 -> 10 -> 0); L3 never enhances (arterial_enhancement False, no viable diameter): under mRECIST
    # L3 is not measurable, hence a non-target without a status. Its diameters decide: no arterial enhancement
    # means no viable tissue -> resolved, so day 84 is target CR + non-target CR = CR (before: NE -> PR).
    # RECIST: both are targets (LD 50 and 30); day 84 LD 0 + 0 -> CR as well.
    rows = [L("A", -7, "L1", ld=50, viable=40, ae=True), L("A", -7, "L3", ld=30, ae=False),
            L("A", 42, "L1", ld=20, viable=10, ae=True), L("A", 42, "L3", ld=9, ae=False),
            L("A", 84, "L1", ld=0, viable=0, ae=False), L("A", 84, "L3", ld=0, ae=False)]
    m = run(rows, ["A"], "mrecist")
    assert m.targets.set_index("lesion_id")["role"].to_dict() == {"L1": "target", "L3": "non_target"}
    assert visit_resp(m, "A", 1, "nontarget_response") == "CR"    # L3 9 mm but not enhancing: no viable tissue
    assert visit_resp(m, "A", 1) == "PR"                            # target 40 -> 10: -75 %, PR
    assert visit_resp(m, "A", 2, "target_response") == "CR"
    assert visit_resp(m, "A", 2, "nontarget_response") == "CR"
    assert bor(m, "A") == "CR"
    dq = m.data_quality
    assert dq.loc[dq.rule == "nontarget_status_from_measurements", "lesion_id"].tolist() == ["L3"]  # once
    r = run(rows, ["A"], "recist")
    assert visit_resp(r, "A", 2) == "CR" and bor(r, "A") == "CR"


def test_third_liver_target_of_the_site_is_a_recist_non_target_read_from_its_diameters():
    # Three liver lesions labelled "target" by the centre (LD 60, 40, 20): the engine keeps 2 per organ, so L3
    # is a non-target without a status. B: L3 measured 0 on day 84 -> resolved -> CR.
    # C: L3 measured 6 mm -> present -> non-CR/non-PD -> target CR + non-target persisting = PR (§1.5).
    # D: L3 without any diameter on day 84 -> not assessed -> non-target NE -> target CR + NE = PR.
    rows = []
    for sid, l3 in (("B", 0.0), ("C", 6.0), ("D", np.nan)):
        rows += [L(sid, -7, "L1", ld=60, viable=60, ae=True), L(sid, -7, "L2", ld=40, viable=40, ae=True),
                 L(sid, -7, "L3", ld=20, viable=20, ae=True),
                 L(sid, 84, "L1", ld=0, viable=0, ae=False), L(sid, 84, "L2", ld=0, viable=0, ae=False),
                 L(sid, 84, "L3", ld=l3, viable=l3)]
    res = run(rows, "BCD", "recist")
    assert res.targets.query("study_id == 'B'").set_index("lesion_id")["role"].to_dict() == {
        "L1": "target", "L2": "target", "L3": "non_target"}
    assert [visit_resp(res, s, 1, "nontarget_response") for s in "BCD"] == ["CR", "non-CR/non-PD", "NE"]
    assert [visit_resp(res, s, 1) for s in "BCD"] == ["CR", "PR", "PR"]


def test_explicit_status_wins_over_the_diameters():
    # A recorded "not_assessed" stays not assessed even with a diameter (lung nodule 8 mm: a non-target);
    # "absent" stays resolved whatever diameter is recorded beside it.
    rows = liver_series("A", "L1", [(-7, 40), (56, 0)]) + [
        L("A", -7, "P1", "lung", "non_target", ld=8, status="present"),
        L("A", 56, "P1", "lung", "non_target", ld=8, status="not_assessed")]
    rows_b = [dict(r, study_id="B") for r in rows[:3]] + [L("B", 56, "P1", "lung", "non_target", ld=8, status="absent")]
    res = run(rows + rows_b, "AB", "recist")
    assert visit_resp(res, "A", 1, "nontarget_response") == "NE"
    assert visit_resp(res, "A", 1) == "PR"
    assert visit_resp(res, "B", 1) == "CR"


def test_measured_lesion_state_table():
    # organ, ld, sa, viable, ae_true, ae_false -> RECIST state, mRECIST state
    liver, lung, node = rules.ORGANS.index("liver"), rules.ORGANS.index("lung"), rules.NODE
    R, P, U = rules.RESOLVED, rules.PERSISTS, rules.UNASSESSED
    cases = [  # organ   ld      sa      viable  ae_t   ae_f     recist mrecist
        (liver, 0.0, np.nan, np.nan, False, False, R, R),      # LD 0: gone
        (liver, 25.0, np.nan, np.nan, False, True, P, R),      # present, but no viable tissue (mRECIST)
        (liver, 25.0, np.nan, 0.0, False, False, P, R),        # viable 0
        (liver, 25.0, np.nan, 8.0, False, False, P, P),        # viable 8
        (liver, 25.0, np.nan, np.nan, True, False, P, P),      # enhancing LD 25
        (liver, 25.0, np.nan, np.nan, False, False, P, U),     # mRECIST: viable part unknown
        (liver, np.nan, np.nan, 12.0, False, False, P, P),     # RECIST: viable 12 lies inside LD > 0
        (liver, np.nan, np.nan, np.nan, False, False, U, U),   # nothing recorded
        (lung, 0.0, np.nan, np.nan, False, False, R, R),
        (lung, 7.0, np.nan, np.nan, False, False, P, P),
        (node, 30.0, 9.9, np.nan, False, False, R, R),         # node: short axis < 10 mm
        (node, 30.0, 10.0, np.nan, False, False, P, P),
        (node, 30.0, np.nan, np.nan, False, False, U, U),      # node needs its short axis
    ]
    cols = list(zip(*cases))
    arr = [np.array(c) for c in cols[:6]]
    for crit, expect in (("recist", cols[6]), ("mrecist", cols[7])):
        got = rules.measured_lesion_state(arr[0], arr[1], arr[2], arr[3], arr[4].astype(bool),
                                          arr[5].astype(bool), crit)
        assert got.tolist() == list(expect), crit


def test_mrecist_recovers_what_the_recorded_values_imply():
    # A: baseline LD not recorded, viable 79 (enhancing): viable >= 10 shows LD >= 10 -> mRECIST target
    #    (before: not measurable, BOR NE). Viable 79 -> 20 (-75 %) -> PR.
    # B: arterial enhancement not recorded at baseline but viable 60 > 0 -> enhancing -> target; logged.
    #    Day 56: viable not recorded, no enhancement -> viable 0 -> CR; logged.
    # C: viable diameter never recorded (a centre recording RECIST only): mRECIST cannot measure the target ->
    #    NE with the reason "diameter not recorded"; RECIST is unaffected (LD 50 -> 45: SD).
    rows = [L("A", -7, "L1", ld=np.nan, viable=79, ae=True), L("A", 56, "L1", ld=np.nan, viable=20, ae=True),
            L("B", -7, "L1", ld=70, viable=60, ae=NA), L("B", 56, "L1", ld=30, viable=np.nan, ae=False),
            L("C", -7, "L1", ld=50, ae=True), L("C", 56, "L1", ld=45, ae=True)]
    m = run(rows, "ABC", "mrecist")
    s = m.summary.set_index("study_id")
    assert s.loc["A", "n_targets"] == 1 and s.loc["A", "bor"] == "PR"
    assert s.loc["B", "bor"] == "CR"
    assert s.loc["C", "bor"] == "NE" and s.loc["C", "bor_reason"] == rc.R_NO_TARGET_UNRECORDED
    dq = m.data_quality.set_index("rule")
    assert dq.loc["mrecist_enhancement_from_viable_diameter", "study_id"] == "B"
    assert dq.loc["mrecist_viable_zero_without_enhancement", "assessment_date"] == DAY0 + pd.Timedelta(days=56)
    r = run(rows, "ABC", "recist").summary.set_index("study_id")
    assert r.loc["C", "bor"] == "SD"
    assert r.loc["A", "bor"] == "NE" and r.loc["A", "bor_reason"] == rc.R_NO_TARGET_UNRECORDED  # LD not recorded
    assert "mrecist_viable_zero_without_enhancement" not in set(run(rows, "ABC", "recist").data_quality.rule)


def test_ne_reasons():
    # A: the only target is not measured at any follow-up visit -> every time point NE.
    # B: CR on day 28 only, confirmation asked, nothing later, day 28 < min_sd_days -> unconfirmed.
    rows = [L("A", -7, "L1", ld=40, viable=40, ae=True), L("A", 56, "L1", ae=True),
            L("B", -7, "L1", ld=40, viable=40, ae=True), L("B", 28, "L1", ld=0, viable=0, ae=False)]
    s = run(rows, "AB", "recist", confirm=True).summary.set_index("study_id")
    assert s.loc["A", "bor_reason"] == rc.R_ALL_NE
    assert s.loc["B", "bor"] == "NE" and s.loc["B", "bor_reason"] == rc.R_UNCONFIRMED
    assert set(rc.NE_REASONS) >= set(s["bor_reason"].dropna())


def test_missing_nontarget_is_logged_and_counts_are_integers():
    # baseline: liver target L1 40 mm, lung non-target P2 (present); day 42: L1 30 mm (-25%: SD), no row for P2 ->
    # one entry 'nontarget_missing_at_visit' for P2 on day 42 (column nontarget_status), nothing else.
    rows = [L("A", -7, "L1", ld=40, viable=40, ae=True), L("A", -7, "P2", "lung", "non_target", ld=8, status="present"),
            L("A", 42, "L1", ld=30, viable=30, ae=True)]
    res = run(rows, ["A"], "recist")
    dq = res.data_quality
    assert dq[["lesion_id", "column", "rule"]].values.tolist() == [["P2", "nontarget_status",
                                                                     "nontarget_missing_at_visit"]]
    assert dq.assessment_date.tolist() == [DAY0 + pd.Timedelta(days=42)]
    # counts stay integers in the exported summary and time points (1 target)
    assert res.summary["n_targets"].tolist() == [1] and res.summary["n_targets"].dtype == np.int64
    assert res.timepoints["n_targets"].dtype == np.int64


def test_best_overall_response_names_a_missing_assessment_date():
    res = run(liver_series("A", "L1", [(-7, 40), (42, 30)]), ["A"], "recist")
    tp = res.timepoints.copy()
    tp.loc[tp.visit == 1, "assessment_date"] = pd.NaT
    with pytest.raises(ValueError, match=r"^column 'assessment_date' has 1 missing date\(s\)$"):
        rc.best_overall_response(tp, index_for("A"))


def test_timepoint_responses_alone():
    # 50 -> 30 on day 42: -40% -> PR; day 42 is 42 days after the index date (day 0)
    tp = rc.timepoint_responses(frame(liver_series("A", "L1", [(-7, 50), (42, 30)])), index_for("A"), "recist")
    v1 = tp[tp.visit == 1].iloc[0]
    assert (v1.overall_response, v1.days_from_index, v1.pct_change_baseline) == ("PR", 42, pytest.approx(-40.0))
    assert tp[tp.visit == 0].iloc[0].days_from_index == -7
