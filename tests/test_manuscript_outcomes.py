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


DASH = "\u2013"


def test_pfs_missed_assessments_default_is_the_engines():
    """Without missed_assessments in the params the phrase uses the PFS engine's default (PfsRules: 2)."""
    params = {**PARAMS, "pfs_rules": {k: v for k, v in PARAMS["pfs_rules"].items() if k != "missed_assessments"}}
    assert outcomes_variables({}, params, [])["methods"]["pfs_missed"] == "two"
    nine = {**PARAMS, "pfs_rules": {**PARAMS["pfs_rules"], "missed_assessments": 9}}
    assert outcomes_variables({}, nine, [])["methods"]["pfs_missed"] == "9"  # beyond the number words: digits
    # no survival section in the params: the 95% default level, no error
    progression = {"dor_recist_median_haic": 3.25, "dor_recist_median_haic_lower": 2.0,
                   "dor_recist_median_haic_upper": 4.5}
    v = outcomes_variables({"progression": progression}, {}, [])
    assert v["methods"] == {} and v["recist"]["dor_haic"] == f"3.2 months (95% CI 2.0{DASH}4.5)"


def test_every_progression_and_safety_variable_reads_its_own_key():
    """A hand-made results.json in which every key holds its own value (a counter): each variable of the
    progression and safety parts must print the value of its own key, arm and criterion included. Expectations
    are plain f-strings: one decimal for percentages, months and rates, two for ratios, three for P values."""
    results: dict = {"progression": {}, "survival": {}, "safety": {}}
    counter = iter(range(1, 10_000))

    def put(section, key, kind):
        i = next(counter)
        value = {"prop": 0.1 + i / 1000, "ratio": 0.5 + i / 100, "months": 1 + i / 10, "p": 0.1 + i / 1000,
                 "int": 10 + i, "days": 20 + i, "pct": 5 + i / 10}[kind]
        results[section][key] = value
        return value

    def ci(section, key, kind, digits, scale=1.0):
        lo, hi = put(section, key + "_lower", kind), put(section, key + "_upper", kind)
        return f"95% CI {scale * lo:.{digits}f}{DASH}{scale * hi:.{digits}f}"

    def pct_ci(section, key):
        est = put(section, key, "prop")
        return f"{100 * est:.1f}% ({ci(section, key, 'prop', 1, 100.0)})"

    def est_ci(section, key, kind="ratio", digits=2, lower=None, upper=None):
        est = put(section, key, kind)
        lo = put(section, lower or key + "_lower", kind)
        hi = put(section, upper or key + "_upper", kind)
        return f"{est:.{digits}f} (95% CI {lo:.{digits}f}{DASH}{hi:.{digits}f})"

    def p(section, key):
        return f"P = {put(section, key, 'p'):.3f}"

    def n_pct(section, stem):
        return f"{put(section, stem + '_n', 'int'):,} ({put(section, stem + '_pct', 'pct'):.1f}%)"

    want: dict = {}
    for crit in ("recist", "mrecist"):
        w = want[crit] = {}
        for t in ("haic", "control"):
            w[f"censored_missed_{t}"] = f"{put('progression', f'pfs_{crit}_main_rule_censor_missed_{t}', 'int'):,}"
            w[f"ttp_cif_{t}"] = pct_ci("progression", f"ttp_{crit}_cif_12m_{t}")
            w[f"death_cif_{t}"] = pct_ci("progression", f"death_{crit}_cif_12m_{t}")
            w[f"dor_{t}"] = est_ci("progression", f"dor_{crit}_median_{t}", "months", 1).replace(" (", " months (", 1)
            w[f"dor_n_{t}"] = f"{put('progression', f'dor_{crit}_n_{t}', 'int'):,}"
        w["ttp_gray_p"] = p("progression", f"ttp_{crit}_gray_p")
        w["death_gray_p"] = p("progression", f"death_{crit}_gray_p")
        for cause in ("ttp", "death"):
            w[f"{cause}_cs_hr"] = est_ci("progression", f"{cause}_{crit}_cs_hr")
        for d in ("allevents", "newtx"):
            w[f"hr_{d}"] = est_ci("progression", f"pfs_{crit}_{d}_hr_matched")
        w["ic_midpoint_hr"] = est_ci("progression", f"ic_{crit}_midpoint_hr")
        w["rmst_paired"] = est_ci("survival", f"pfs_{crit}_rmst_diff_matched", "months", 1,
                                  f"pfs_{crit}_rmst_diff_matched_paired_lower",
                                  f"pfs_{crit}_rmst_diff_matched_paired_upper").replace(" (", " months (", 1)
    for t in ("haic", "control"):
        want[f"first_scan_{t}"] = f"{put('progression', f'imaging_first_scan_days_{t}', 'days'):.0f} days"
        want[f"scan_interval_{t}"] = f"{put('progression', f'imaging_interval_days_{t}', 'months'):.1f} days"
    want["scan_interval_p"] = p("progression", "imaging_interval_days_p")
    want["os_robust_p"] = p("survival", "os_robust_score_p_matched")
    want["os_rmst_paired"] = est_ci("survival", "os_rmst_diff_matched", "months", 1, "os_rmst_diff_matched_paired_lower",
                                    "os_rmst_diff_matched_paired_upper").replace(" (", " months (", 1)
    for t in ("haic", "control"):
        want[f"g3_eair_{t}"] = est_ci("safety", f"g3_eair_{t}", "months", 1).replace(" (", " per 100 patient-years (", 1)
        want[f"g3_cif_{t}"] = pct_ci("safety", f"g3_cif_12m_{t}")
        want[f"platelet_draws_{t}"] = f"{put('safety', f'platelet_draws_median_{t}', 'days'):.0f}"
        for s in ("all", "common"):
            want[f"plt_g3_{s}_{t}"] = n_pct("safety", f"plt_g3_{s}_{t}")
    want["g3_rate_ratio"] = est_ci("safety", "g3_rate_ratio") + ", " + p("safety", "g3_rate_ratio_p")
    want["g3_gray_p"] = p("safety", "g3_gray_p")
    for s in ("all", "common"):
        want[f"plt_g3_{s}_p"] = p("safety", f"plt_g3_{s}_p")
    for t in ("haic", "control"):
        want[f"related_{t}"] = n_pct("safety", f"related_{t}")
        want[f"attr_missing_{t}"] = n_pct("safety", f"attr_missing_{t}")

    missing: list[str] = []
    got = outcomes_variables(results, PARAMS, missing)
    assert not missing
    got.pop("methods")
    assert got == want
