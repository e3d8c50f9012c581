"""Hand-built cases for every PFS event and censoring rule (study.endpoints.apply_pfs_rules; rules:
docs/methods/pfs-rules.md after FDA 2018, Table 5).

Every case: index date 2024-01-01 = day 0; the default schedule (every 42 days up to day 336, then every 84
days: 42, 84, ..., 336, 420, 504, ...), visit window 7 days, 2 missed assessments. A scheduled day s counts as
missed between the last adequate assessment A and the event E when A + 7 < s and s + 7 < E.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis_utils.study import endpoints as ep

DAY0 = pd.Timestamp("2024-01-01")
CUTOFF = DAY0 + pd.Timedelta(days=1000)
RULES = ep.PfsRules()


def day(d):
    return pd.NaT if d is None else DAY0 + pd.Timedelta(days=d)


def case(visits, death=None, therapy=None):
    return {"visits": visits, "death": death, "therapy": therapy}


def run(cases, cutoff=CUTOFF, **kw):
    sids = list(cases)
    patients = pd.DataFrame({"study_id": sids, "index_date": DAY0,
                             "death_date": [day(cases[s]["death"]) for s in sids],
                             "new_therapy_date": [day(cases[s]["therapy"]) for s in sids]})
    rows = []
    for s in sids:
        rows.append({"study_id": s, "visit": 0, "days_from_index": -7, "overall_response": None})
        rows += [{"study_id": s, "visit": i, "days_from_index": d, "overall_response": r}
                 for i, (d, r) in enumerate(cases[s]["visits"], start=1)]
    tp = pd.DataFrame(rows)
    tp["overall_response"] = pd.Categorical(tp["overall_response"], ["NE", "PD", "SD", "PR", "CR", "non-CR/non-PD"])
    return ep.apply_pfs_rules(patients, tp, cutoff, RULES, **kw).set_index("study_id")


def test_schedule_and_first_window():
    assert RULES.scheduled_days(600).tolist() == [42, 84, 126, 168, 210, 252, 294, 336, 420, 504, 588]
    assert RULES.first_window_end == 49
    r = ep.PfsRules.from_params({"schedule": [{"every_days": 56, "until_day": 112}, {"every_days": 90}],
                                 "missed_assessments": 0, "new_anticancer_therapy": "primary"})
    assert r.scheduled_days(400).tolist() == [56, 112, 202, 292, 382] and r.missed_assessments == 0
    for bad in ({"new_anticancer_therapy": "always"}, {"missed_assessments": -1}, {"tolerance": 3},
                {"schedule": [{"every_days": 42}, {"every_days": 84}]}, {"schedule": [{"every_days": 0}]}):
        with pytest.raises(ValueError, match="pfs_rules"):
            ep.PfsRules.from_params(bad)


def test_scheduled_days_do_not_depend_on_the_horizon():
    """Every 100 days up to day 150 (one scan, day 100), then every 20 days from the last scheduled day: 120, 140,
    160, ... A horizon only cuts this schedule: up to 130 -> 100, 120; up to 150 -> 100, 120, 140 (a block ending
    on the horizon still leaves room for the next); up to 170 -> 100, 120, 140, 160. Every 100 up to day 180 (still
    one scan, day 100), then every 20: up to 170 -> 100, 120, 140, 160 as well."""
    r = ep.PfsRules(schedule=((100, 150), (20, None)))
    assert r.scheduled_days(130).tolist() == [100, 120]
    assert r.scheduled_days(150).tolist() == [100, 120, 140]
    assert r.scheduled_days(170).tolist() == [100, 120, 140, 160]
    assert ep.PfsRules(schedule=((100, 180), (20, None))).scheduled_days(170).tolist() == [100, 120, 140, 160]
    assert r.scheduled_days(99).tolist() == []


def test_events_progression_and_death():
    res = run({
        "A": case([(42, "SD"), (84, "PD"), (126, "PD")]),            # PD at 84 (the later PD is irrelevant)
        "B": case([(42, "SD"), (84, "PR")], death=100),               # death at 100: window of day 126 not over
        "C": case([(42, "SD"), (84, "PD")], death=60),                # death (60) before the PD scan -> death
    })
    assert res.loc["A", ["days", "event", "by_death", "rule", "last_adequate_days", "pd_days"]].tolist() == [
        84, 1, 0, ep.PFS_EVENT_PD, 42, 84]
    assert res.loc["B", ["days", "event", "by_death", "rule", "n_missed"]].tolist() == [
        100, 1, 1, ep.PFS_EVENT_DEATH, 0]
    assert res.loc["C", ["days", "rule"]].tolist() == [60, ep.PFS_EVENT_DEATH]


def test_missed_assessments_boundary():
    # A = 42. PD at 133: day 84 missed (91 < 133), day 126 not yet (133 < 133 false) -> 1 missed -> event.
    # PD at 134: 126 + 7 = 133 < 134 -> 2 missed -> censored at 42. Death at 134 the same.
    res = run({"A": case([(42, "SD"), (133, "PD")]), "B": case([(42, "SD"), (134, "PD")]),
               "C": case([(42, "SD")], death=134)})
    assert res.loc["A", ["days", "event", "rule", "n_missed"]].tolist() == [133, 1, ep.PFS_EVENT_PD, 1]
    assert res.loc["B", ["days", "event", "rule", "n_missed"]].tolist() == [42, 0, ep.PFS_CENSOR_MISSED, 2]
    assert res.loc["C", ["days", "event", "rule"]].tolist() == [42, 0, ep.PFS_CENSOR_MISSED]
    # the same with the rule switched off: every PD or death is an event
    off = run({"B": case([(42, "SD"), (134, "PD")])}, missed_rule=False)
    assert off.loc["B", ["days", "event", "rule"]].tolist() == [134, 1, ep.PFS_EVENT_PD]


def test_inadequate_assessments_count_as_missed_and_schedule_blocks():
    # A: SD 42, NE 84, NE 126, PD 168: the NE visits are not adequate, so A = 42, days 84 and 126 missed
    #    (168 + 7 < 168 false) -> censored at 42.
    # B: last adequate 336, PD 520: days 420 (343 < 420, 427 < 520) and 504 (511 < 520) missed -> censored at 336.
    # C: last adequate 336, PD 511: 504 + 7 < 511 false -> 1 missed -> event at 511.
    v336 = [(d, "SD") for d in range(42, 337, 42)]
    res = run({"A": case([(42, "SD"), (84, "NE"), (126, "NE"), (168, "PD")]),
               "B": case(v336 + [(520, "PD")]), "C": case(v336 + [(511, "PD")])})
    assert res.loc["A", ["days", "rule", "n_missed"]].tolist() == [42, ep.PFS_CENSOR_MISSED, 2]
    assert res.loc["B", ["days", "rule", "n_missed"]].tolist() == [336, ep.PFS_CENSOR_MISSED, 2]
    assert res.loc["C", ["days", "event", "rule", "n_missed"]].tolist() == [511, 1, ep.PFS_EVENT_PD, 1]


def test_no_adequate_assessment():
    # only NE scans: death at 49 (= 42 + 7, the end of the first window) -> event; at 50 -> censored at day 0;
    # alive -> censored at day 0.
    res = run({"A": case([(42, "NE")], death=49), "B": case([(42, "NE")], death=50), "C": case([(42, "NE")])})
    assert res.loc["A", ["days", "event", "by_death", "rule"]].tolist() == [49, 1, 1, ep.PFS_EVENT_EARLY_DEATH]
    assert res.loc["B", ["days", "event", "rule"]].tolist() == [0, 0, ep.PFS_CENSOR_NO_ADEQUATE]
    assert res.loc["C", ["days", "event", "rule", "last_adequate_days"]].tolist() == [
        0, 0, ep.PFS_CENSOR_NO_ADEQUATE, 0]


def test_new_anticancer_therapy_before_progression():
    # A: SD 42, SD 84, new therapy day 90, PD 126 -> censored at 84 (last adequate on or before the start).
    # B: new therapy on the day of the PD scan (126) -> PD documented first: event.
    # C: new therapy day 30, before any adequate scan -> censored at day 0.
    # D: new therapy day 200 while alive without PD (last scan 168) -> censored at 168 (the same day as without
    #    the rule, but under the new-therapy rule).
    cases = {"A": case([(42, "SD"), (84, "SD"), (126, "PD")], therapy=90),
             "B": case([(42, "SD"), (84, "SD"), (126, "PD")], therapy=126),
             "C": case([(42, "SD"), (84, "PD")], therapy=30),
             "D": case([(42, "SD"), (84, "SD"), (126, "PR"), (168, "PR")], therapy=200)}
    res = run(cases, censor_new_therapy=True)
    assert res.loc["A", ["days", "event", "rule"]].tolist() == [84, 0, ep.PFS_CENSOR_NEW_THERAPY]
    assert res.loc["B", ["days", "event", "rule"]].tolist() == [126, 1, ep.PFS_EVENT_PD]
    assert res.loc["C", ["days", "event", "rule"]].tolist() == [0, 0, ep.PFS_CENSOR_NEW_THERAPY]
    assert res.loc["D", ["days", "event", "rule"]].tolist() == [168, 0, ep.PFS_CENSOR_NEW_THERAPY]
    plain = run(cases)  # the rule off (main definition when it is a sensitivity analysis)
    assert plain.loc["A", ["days", "event", "rule"]].tolist() == [126, 1, ep.PFS_EVENT_PD]


def test_alive_without_progression_and_cutoff():
    # A: SD 42, PR 84, NE 126 -> censored at 84. B: PD on day 130 but cut-off on day 120 -> the PD scan is
    # ignored, censored at 84. C: death after the cut-off -> not an event.
    cut = DAY0 + pd.Timedelta(days=120)
    res = run({"A": case([(42, "SD"), (84, "PR"), (126, "NE")]), "B": case([(42, "SD"), (84, "SD"), (130, "PD")]),
               "C": case([(42, "SD"), (84, "SD")], death=150)}, cutoff=cut)
    assert res.loc["A", ["days", "event", "rule"]].tolist() == [84, 0, ep.PFS_CENSOR_NO_EVENT]
    assert res.loc["B", ["days", "event", "rule"]].tolist() == [84, 0, ep.PFS_CENSOR_NO_EVENT]
    assert np.isnan(res.loc["B", "pd_days"])
    assert res.loc["C", ["days", "event", "rule"]].tolist() == [84, 0, ep.PFS_CENSOR_NO_EVENT]
    assert set(res["rule"]) <= set(ep.PFS_RULES)


def test_new_therapy_dates_from_systemic_courses():
    # initial combination lenvatinib + camrelizumab; regorafenib from day 200 is new; a lenvatinib restart is not;
    # a course before the index date is not.
    patients = pd.DataFrame({"study_id": ["A", "B"], "index_date": [DAY0, DAY0], "tki_agent": ["lenvatinib"] * 2,
                             "pd1_agent": ["camrelizumab"] * 2})
    systemic = pd.DataFrame({"study_id": ["A", "A", "A", "B", "B"],
                             "agent": ["lenvatinib", "camrelizumab", "regorafenib", "lenvatinib", "sorafenib"],
                             "start_date": [day(0), day(10), day(200), day(150), day(-30)]})
    got = ep.new_therapy_dates(patients, systemic)
    assert got.loc["A"] == day(200) and pd.isna(got.loc["B"])
