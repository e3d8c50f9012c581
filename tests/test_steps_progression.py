"""analysis_utils.steps.progression (PFS rules per arm, competing risks, duration of response, evaluation-time
bias) and the issue-14 additions of analysis_utils.steps.response (NE reasons, the testing hierarchy), on
hand-built cohorts; expected values by hand (docs/methods/competing-risks.md, docs/methods/survival.md)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis_utils.steps import progression as pr
from analysis_utils.steps import response as rs
from analysis_utils.study import endpoints as ep

H, T = "HAIC-TKIs-P", "TKIs-P"
DAY0 = pd.Timestamp("2024-01-01")
SPEC = {"conf_type": "log-log", "conf_level": 0.95, "ties": "efron"}
M = ep.DAYS_PER_MONTH


def cohort() -> pd.DataFrame:
    """Six patients; PFS per RECIST in days: A1 PD 84 (last adequate 42), A2 death 120 (last adequate 84), A3 censored
    200; B1 PD 42 (last adequate 0), B2 PD 126 after missed scans (main: censored at 42), B3 censored 90."""
    rule = [ep.PFS_EVENT_PD, ep.PFS_EVENT_DEATH, ep.PFS_CENSOR_NO_EVENT, ep.PFS_EVENT_PD, ep.PFS_CENSOR_MISSED,
            ep.PFS_CENSOR_NO_EVENT]
    days = np.array([84, 120, 200, 42, 42, 90.0])
    df = pd.DataFrame({"study_id": ["A1", "A2", "A3", "B1", "B2", "B3"], "arm": [H, H, H, T, T, T],
                       "index_date": DAY0, "pfs_recist_rule": rule, "pfs_recist_days": days,
                       "pfs_recist_months": days / M, "pfs_recist_event": [1, 1, 0, 1, 0, 0],
                       "pfs_recist_last_adequate_days": [42, 84, 200, 0, 42, 90.0],
                       "pfs_recist_allevents_rule": rule[:4] + [ep.PFS_EVENT_PD, ep.PFS_CENSOR_NO_EVENT],
                       "pfs_recist_allevents_days": [84, 120, 200, 42, 126, 90.0],
                       "pfs_recist_allevents_event": [1, 1, 0, 1, 1, 0],
                       "bor_recist": ["PR", "CR", "SD", "PD", "PR", "NE"],
                       "first_response_date_recist": [DAY0 + pd.Timedelta(days=42), DAY0 + pd.Timedelta(days=84),
                                                      pd.NaT, pd.NaT, DAY0 + pd.Timedelta(days=20), pd.NaT]})
    return df


def test_rule_counts_per_arm():
    t = pr.pfs_rule_counts(cohort(), criteria=["recist"])
    main = t[t["definition"] == "main"].set_index("rule")
    assert main.loc[ep.PFS_EVENT_PD, [H, T, "total"]].tolist() == [1, 1, 2]
    assert main.loc[ep.PFS_CENSOR_MISSED, [H, T]].tolist() == [0, 1]
    assert list(main.index) == list(ep.PFS_RULES)


def test_progression_status_and_intervals():
    s = pr.progression_status(cohort(), "recist").set_index("study_id")["status"]
    assert s.to_dict() == {"A1": 1, "A2": 2, "A3": 0, "B1": 1, "B2": 0, "B3": 0}
    iv = pr.progression_intervals(cohort(), "recist").set_index("study_id")
    # PD: (last adequate, PD scan]; death exact; censored (t, inf); B2 (missed scans) is a progression in (42, 126]
    np.testing.assert_allclose(iv["left"] * M, [42, 120, 200, 0, 42, 90])
    np.testing.assert_allclose(iv["right"] * M, [84, 120, np.inf, 42, 126, np.inf])


def test_competing_progression_cif_by_hand():
    # HAIC: A1 progression at 84 d, A2 death at 120 d, A3 censored: CIF of progression = 1/3 from 84 d,
    # of death = S(120-) * 1/2 = 2/3 * 1/2 = 1/3 from 120 d.
    r = pr.competing_progression(cohort(), "recist", [3.0, 5.0], SPEC)
    cif = r["cif"].set_index(["arm", "cause", "time"])["est"]
    assert cif[(H, 1, 3.0)] == pytest.approx(1 / 3) and cif[(H, 2, 5.0)] == pytest.approx(1 / 3)
    assert r["events"][(H, 1)] == 1 and r["events"][(T, 2)] == 0


def test_duration_of_response():
    # responders (CR/PR with a first response date): A1 PR from day 42, PD day 84 -> 42 days, event;
    # A2 CR from day 84, death day 120 -> 36 days, event; B2 PR from day 20, censored at day 42 -> 22 days.
    d = pr.duration_of_response(cohort(), "recist", SPEC)
    data = d["data"].set_index("study_id")
    np.testing.assert_allclose(data["time"] * M, [42, 36, 22])
    assert data["event"].tolist() == [1, 1, 0] and d["n"] == {H: 2, T: 1}


def test_imaging_schedule():
    # A1: scans on days 40, 90 -> first 40, intervals 40, 50 -> median 45; B1: 44, 86, 128 -> 44, median 42.
    tp = pd.DataFrame({"study_id": ["A1", "A1", "A1", "B1", "B1", "B1", "B1"], "visit": [0, 1, 2, 0, 1, 2, 3],
                       "days_from_index": [-5, 40, 90, -3, 44, 86, 128]})
    per, summary = pr.imaging_schedule(tp, cohort())
    per = per.set_index("study_id")
    assert per.loc["A1", ["first_scan_days", "median_interval_days"]].tolist() == [40, 45]
    assert per.loc["B1", ["first_scan_days", "median_interval_days", "n_scans"]].tolist() == [44, 42, 3]


def test_ne_reasons_and_testing_hierarchy():
    c = cohort()
    summ = pd.DataFrame({"study_id": ["A1", "B3", "B2"], "bor": ["PR", "NE", "NE"],
                         "bor_reason": [None, "reason x", "reason x"]})
    ne = rs.ne_reasons(c, {"recist": summ})
    assert ne[[H, T, "total"]].values.tolist() == [[0, 2, 2]]
    results = {"survival": {"os_robust_score_p_matched": 0.001, "pfs_recist_robust_score_p_matched": 0.03,
                            "pfs_mrecist_robust_score_p_matched": 0.2, "pfs_mrecist_logrank_p": 0.0001},
               "response": {"orr_mrecist_matched_or_clogit_p": 0.0001}}
    h = rs.testing_hierarchy(results, {"alpha": 0.05, "hierarchy": ["os", "pfs_recist", "pfs_mrecist",
                                                                      "orr_mrecist"]})
    assert h["rejected"].tolist() == [True, True, False, False] and h["tested"].tolist() == [True, True, True, False]
    assert h["test"].tolist()[2] == "robust score test, pair-clustered (matched)"   # the matched key wins
    res = rs.hierarchy_results(h)
    assert res["n_rejected"] == 2 and res["orr_mrecist_tested"] is False
    # without a matched cohort the full cohort's log-rank is used
    h2 = rs.testing_hierarchy({"survival": {"os_logrank_p": 0.04}}, {"alpha": 0.05, "hierarchy": ["os"]})
    assert h2["rejected"].tolist() == [True] and h2["test"].tolist() == ["log-rank (full cohort)"]
    with pytest.raises(ValueError, match="unknown hypothesis"):
        rs.testing_hierarchy(results, {"alpha": 0.05, "hierarchy": ["qol"]})
