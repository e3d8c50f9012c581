"""The target_trial block of _variables.yml: wording that follows the numbers (signs, directions), values read from
a hand-built results section, and a missing key reported rather than invented."""
import pytest

from analysis_utils.reporting.manuscript.values import Reader
from analysis_utils.reporting.manuscript.variables_target_trial import (conclusion, longer_shorter, signed_ci,
                                                                         variables)

PARAMS = {"cleaning": {"baseline_imaging_window_days": 42, "baseline_imaging_after_days": 0,
                       "baseline_lab_window_days": 30},
          "target_trial": {"grace_days": 90, "interval_days": 7, "covariates": ["age", "ecog"], "centre": "fixed",
                           "time_model": "indicators", "truncate_quantiles": None,
                           "truncate_quantiles_sensitivity": [0.01, 0.99], "timepoints_months": [12, 24],
                           "rmst_tau_months": 24, "bootstrap": 200, "conf_level": 0.95}}


def _results() -> dict:
    r = {"n_eligible": 824, "n_haic_t0": 112, "n_control_t0": 712, "n_crossover_within_grace": 106,
         "n_crossover_after_grace": 5, "n_haic_first_component": 105, "n_eligibility_query": 170,
         "n_complete_eligibility": 654, "n_ever_haic": 218, "os_censored_haic": 508, "os_clones_haic": 824,
         "os_censored_control": 228, "os_clones_control": 824, "os_censored_day0_control": 112,
         "weight_max_haic": 2.854, "weight_max_control": 2.282, "endpoints": ["os"]}
    base = {"os_s12m_haic": 0.589, "os_s12m_control": 0.452, "os_s24m_haic": 0.363, "os_s24m_control": 0.208,
            "os_sdiff12m": 0.137, "os_sdiff24m": 0.156, "os_sratio12m": 1.30, "os_sratio24m": 1.75,
            "os_rmst_haic": 14.85, "os_rmst_control": 12.14, "os_rmst_diff": 2.71, "os_hr": 0.72}
    for k, v in base.items():
        r[k], r[f"{k}_lower"], r[f"{k}_upper"] = v, v - 0.05, v + 0.05
    for key in ("naive", "ccw_truncated", "ccw_unweighted", "ccw_complete", "arm_t0"):
        r.update({f"{key}_os_sdiff_24": 0.2, f"{key}_os_sdiff_24_lower": -0.01, f"{key}_os_sdiff_24_upper": 0.3})
    r.update({"naive_os_hr": 0.52, "naive_os_hr_lower": 0.43, "naive_os_hr_upper": 0.62})
    r.update({"mi_m": 20, "mi_os_sdiff24m": 0.141, "mi_os_sdiff24m_lower": 0.012, "mi_os_sdiff24m_upper": 0.27,
              "mi_os_rmst_diff": 2.5, "mi_os_rmst_diff_lower": -0.2, "mi_os_rmst_diff_upper": 5.1})
    return r


def _reader(values: dict) -> Reader:
    return Reader("target_trial", values)


def test_signed_wording():
    assert signed_ci(15.6, -0.2, 27.2, 0.95, 1, "percentage points") == \
        "15.6 percentage points (95% CI -0.2 to 27.2)"
    assert longer_shorter(2.71, 1.72, 3.72, 0.95) == "2.7 months (95% CI 1.7 to 3.7) longer"
    assert longer_shorter(-1.2, -2.0, -0.4, 0.95) == "1.2 months (95% CI 0.4 to 2.0) shorter"


def test_conclusion_follows_the_confidence_intervals():
    r = _reader({"os_sdiff24m_lower": 0.06, "os_sdiff24m_upper": 0.27, "pfs_recist_sdiff24m_lower": -0.02,
                 "pfs_recist_sdiff24m_upper": 0.2})
    assert conclusion(r, ["os", "pfs_recist"], "24m") == (
        "was associated with higher overall survival and was not clearly associated with progression-free survival "
        "per RECIST 1.1 at 24 months")


def test_variables_from_a_hand_built_section():
    missing: list[str] = []
    v = variables(_reader(_results()), PARAMS, missing)
    assert v["grace"] == "90 days (about 3 months)" and v["interval"] == "7 days (1 week)"
    assert v["truncation"] == "not truncated" and v["bootstrap"] == "200"
    assert v["truncation_sensitivity"] == "truncated at the 1st and 99th percentiles"
    assert v["scan_rule"] == "the last within 42 days (6 weeks) before time zero"
    assert v["n_eligible"] == "824" and v["censored_haic"] == "508 of 824" and v["censored_day0"] == "112"
    os_ = v["os"]
    assert os_["s_main_haic"] == "36.3% (95% CI 31.3–41.3)"
    assert os_["sdiff_main"] == "15.6 percentage points (95% CI 10.6 to 20.6)" and os_["direction"] == "higher"
    assert os_["rmst_comparison"] == "2.7 months (95% CI 2.7 to 2.8) longer"
    assert os_["sdiff_main_naive"] == "20.0 percentage points (95% CI -1.0 to 30.0)"
    assert os_["sdiff_main_truncated"] == "20.0 percentage points (95% CI -1.0 to 30.0)"
    assert v["mi_m"] == "20" and os_["sdiff_main_mi"] == "14.1 percentage points (95% CI 1.2 to 27.0)"
    assert os_["rmst_comparison_mi"] == "2.5 months (95% CI -0.2 to 5.1) longer"
    assert os_["hr"] == "0.72 (95% CI 0.67–0.77)" and v["conclusion"].startswith("was associated with higher")
    assert not missing


def test_a_missing_key_is_reported_not_invented():
    values = _results()
    del values["os_hr"]
    missing: list[str] = []
    v = variables(_reader(values), PARAMS, missing)
    assert "hr" not in v["os"] and any("target_trial.os_hr" in m for m in missing)


@pytest.mark.parametrize("after,expected", [(0, "before time zero"), (7, "or the first within 7 days (1 week) after it")])
def test_scan_rule_follows_the_params(after, expected):
    params = {**PARAMS, "cleaning": {**PARAMS["cleaning"], "baseline_imaging_after_days": after}}
    v = variables(_reader(_results()), params, [])
    assert v["scan_rule"].endswith(expected)


def test_conclusion_names_both_pfs_criteria_once_when_they_agree():
    from analysis_utils.reporting.manuscript.variables_target_trial import conclusion

    ci = {"os": (0.01, 0.2), "pfs_recist": (-0.1, 0.1), "pfs_mrecist": (-0.05, 0.12)}
    values = {f"{ep}_sdiff24m_{end}": v for ep, (lo, hi) in ci.items() for end, v in (("lower", lo), ("upper", hi))}
    text = conclusion(values.__getitem__, ["os", "pfs_recist", "pfs_mrecist"], "24m")
    assert text == ("was associated with higher overall survival and was not clearly associated with "
                    "progression-free survival per RECIST 1.1 and per mRECIST at 24 months")
    values["pfs_mrecist_sdiff24m_lower"] = 0.01  # the criteria disagree: each is named
    assert "per RECIST 1.1" in conclusion(values.__getitem__, ["os", "pfs_recist", "pfs_mrecist"], "24m") and \
        "survival per mRECIST" in conclusion(values.__getitem__, ["os", "pfs_recist", "pfs_mrecist"], "24m")


def test_no_truncated_sensitivity_analysis_is_reported_as_missing_not_invented():
    params = {**PARAMS, "target_trial": {**PARAMS["target_trial"], "truncate_quantiles": [0.02, 0.98],
                                         "truncate_quantiles_sensitivity": None}}
    missing: list[str] = []
    v = variables(_reader(_results()), params, missing)
    assert v["truncation"] == "truncated at the 2nd and 98th percentiles" and "truncation_sensitivity" not in v
    assert any(m.startswith("truncation_sensitivity:") for m in missing)
