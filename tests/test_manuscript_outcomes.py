"""reporting/manuscript/variables_outcomes.py: the 'outcomes' block of _variables.yml from hand-made results."""
from __future__ import annotations

from analysis_utils.reporting.manuscript import checks
from analysis_utils.reporting.manuscript.variables_outcomes import outcomes_variables

PARAMS = {"pfs_rules": {"schedule": [{"every_days": 42, "until_day": 336}, {"every_days": 84}],
                        "visit_window_days": 7, "missed_assessments": 2, "new_anticancer_therapy": "sensitivity"},
          "survival": {"conf_level": 0.95, "timepoints_months": [6, 12], "bootstrap_replicates": 2000},
          "multiplicity": {"alpha": 0.05, "hierarchy": ["os", "pfs_recist", "pfs_mrecist", "orr_mrecist"]},
          "safety": {"conf_level": 0.95, "common_schedule_days": 21}}


def _mult(rejected, tested):
    out = {"hierarchy": PARAMS["multiplicity"]["hierarchy"]}
    for h, rej, tst in zip(out["hierarchy"], rejected, tested):
        out.update({f"{h}_rejected": rej, f"{h}_tested": tst, f"{h}_p": 0.01})
    return out


def test_methods_phrases_and_hierarchy_text():
    missing: list[str] = []
    v = outcomes_variables({"multiplicity": _mult([True] * 4, [True] * 4)}, PARAMS, missing)
    m = v["methods"]
    assert m["pfs_schedule"] == "every 42 days up to day 336, then every 84 days"
    assert m["pfs_missed"] == "two" and m["pfs_first_window"] == "49 days (7 weeks)"
    assert m["hierarchy"] == "overall survival, then PFS per RECIST 1.1, then PFS per mRECIST, then the ORR per mRECIST"
    assert v["hierarchy_result"].startswith("all four hypotheses were rejected")
    v = outcomes_variables({"multiplicity": _mult([True, True, False, False], [True, True, True, False])}, PARAMS,
                           missing)
    assert v["hierarchy_result"] == ("the hypotheses of no difference in overall survival and PFS per RECIST 1.1 were "
                                     "rejected; the one for PFS per mRECIST was not, so the sequence stopped there and "
                                     "the ORR per mRECIST was not tested")
    v = outcomes_variables({"multiplicity": _mult([True, False, False, False], [True, True, False, False])}, PARAMS, [])
    assert v["hierarchy_result"] == ("the hypothesis of no difference in overall survival was rejected; the one for PFS "
                                     "per RECIST 1.1 was not, so the sequence stopped there and PFS per mRECIST and the "
                                     "ORR per mRECIST were not tested")
    assert not checks.NOT_FORMATTED_RE.search(v["hierarchy_result"])
    assert v["os_hierarchy_p"] == "P = 0.010" and not missing


def test_missing_results_are_reported_not_invented():
    missing: list[str] = []
    v = outcomes_variables({"progression": {}}, PARAMS, missing)
    assert "recist" in v and "ttp_cif_haic" not in v["recist"]
    assert any("progression.ttp_recist_cif_12m_haic" in m for m in missing)


def test_a_duration_of_response_not_reached_is_worded_not_missing():
    """A median or CI limit that the KM curve never reaches is stored as None: 'not reached' / 'NR', not a gap."""
    progression = {"dor_recist_median_haic": None, "dor_recist_median_haic_lower": 15.47,
                   "dor_recist_median_haic_upper": None, "dor_recist_n_haic": 21}
    missing: list[str] = []
    v = outcomes_variables({"progression": progression}, PARAMS, missing)
    assert v["recist"]["dor_haic"] == "not reached (95% CI 15.5–NR)" and v["recist"]["dor_n_haic"] == "21"
    assert not [m for m in missing if "dor_recist_median_haic" in m]
