"""Time zero, the arm at time zero, the strategies of the target trial and their deviation days, the baseline windows
and the eligibility states, each at and one step past its limit (grace period, combination gap, baseline scan and
laboratory windows); bad treatment dates located in the data-quality log; the CCW estimator on an analysis-ready
frame. Rules: docs/methods/target-trial.md, docs/methods/eligibility-and-time-zero.md."""
import numpy as np
import pandas as pd
import pytest

from analysis_utils.steps import target_trial as tt
from analysis_utils.study.baseline import apply_baseline_labs, baseline_imaging
from analysis_utils.study.config import CleaningConfig, TargetTrialConfig
from analysis_utils.study.eligibility import child_pugh_c_state
from analysis_utils.study.quality import QualityLog
from analysis_utils.study.treatment import ARM_CONTROL, ARM_HAIC, strategy_deviation_days, treatment_timing

CFG = CleaningConfig(data_cutoff=pd.Timestamp("2025-09-30"), pseudonym_key="k")
D0 = pd.Timestamp("2023-03-01")


def _day(n: int | None) -> pd.Timestamp:
    return pd.NaT if n is None else D0 + pd.Timedelta(days=n)


def _timing(rows: list[dict], log: QualityLog | None = None, cfg: CleaningConfig = CFG) -> pd.DataFrame:
    """rows: {id, aa, ici, haic: [days or None], stop (of the TKI course)}; dates as days from D0."""
    systemic, haic = [], []
    for r in rows:
        for cls, agent, key in (("tki", "lenvatinib", "aa"), ("pd1", "camrelizumab", "ici")):
            if key in r:
                systemic.append({"study_id": r["id"], "agent": agent, "drug_class": cls, "start_date": _day(r[key]),
                                 "stop_date": _day(r.get("stop")) if key == "aa" else pd.NaT, "center_id": "C01",
                                 "source_file": "C01/systemic_courses.csv", "source_row": len(systemic) + 1})
        for k, d in enumerate(r.get("haic", []), 1):
            haic.append({"study_id": r["id"], "cycle_number": r.get("cycles", list(range(1, 99)))[k - 1],
                         "haic_date": _day(d), "regimen": "folfox", "center_id": "C01",
                         "source_file": "C01/haic_cycles.csv", "source_row": len(haic) + 1})
    cols_s = ["study_id", "agent", "drug_class", "start_date", "stop_date", "center_id", "source_file", "source_row"]
    cols_h = ["study_id", "cycle_number", "haic_date", "regimen", "center_id", "source_file", "source_row"]
    return treatment_timing(pd.DataFrame({"study_id": [r["id"] for r in rows]}), pd.DataFrame(systemic, columns=cols_s),
                            pd.DataFrame(haic, columns=cols_h), cfg, log).set_index("study_id")


def test_time_zero_is_the_first_component_and_the_arm_is_known_at_it():
    t = _timing([{"id": "before", "aa": 10, "ici": 12, "haic": [0, 21]},
                 {"id": "same", "aa": 0, "ici": 3, "haic": [0]},
                 {"id": "after", "aa": 0, "ici": 0, "haic": [40]},
                 {"id": "none", "aa": 0, "ici": 5},
                 {"id": "haic_only", "haic": [0]}])
    assert t.loc["before", "index_date"] == D0 and t.loc["before", "first_component"] == "HAIC"
    assert t.loc["before", "systemic_start_day"] == 10 and t.loc["before", "combination_day"] == 12
    assert t.loc["same", "first_component"] == "HAIC and systemic"
    assert t.loc[["before", "same", "haic_only"], "arm"].eq(ARM_HAIC).all()
    assert t.loc[["after", "none"], "arm"].eq(ARM_CONTROL).all()
    assert t.loc["after", "haic_offset_days"] == 40 and t.loc["before", "haic_offset_systemic_days"] == -10
    assert np.isnan(t.loc["haic_only", "combination_day"])


@pytest.mark.parametrize("ici_day,combo_day", [(30, 30), (31, None)])
def test_combination_gap_at_and_past_the_limit(ici_day, combo_day):
    t = _timing([{"id": "p", "aa": 0, "ici": ici_day}])
    got = t.loc["p", "combination_day"]
    assert (np.isnan(got) if combo_day is None else got == combo_day)


@pytest.mark.parametrize("haic_day,combo_day,dev_a,dev_b", [
    (None, 5, 90, np.inf),     # no HAIC: A deviates at G, B adheres
    (0, 5, np.inf, 0),         # HAIC first: B deviates on day 0
    (90, 5, np.inf, 90),       # HAIC exactly on day G: A adheres, B deviates on day G
    (91, 5, 90, np.inf),       # one day past G: A deviates at G, B adheres (HAIC after G is allowed in B)
    (30, 90, np.inf, 30),      # combination exactly by day G
    (30, 91, 90, 30),          # combination one day late: A deviates at G; B has already deviated at the HAIC
    (None, 91, 90, 90),        # no HAIC and the combination late: both deviate at G
    (None, None, 90, 90),      # never the combination
])
def test_strategy_deviation_days_at_and_past_the_grace_period(haic_day, combo_day, dev_a, dev_b):
    df = pd.DataFrame({"haic_offset_days": [haic_day], "combination_day": [combo_day]}, dtype=float)
    dev = strategy_deviation_days(df, 90).iloc[0]
    assert dev["deviation_day_haic"] == dev_a and dev["deviation_day_control"] == dev_b


@pytest.mark.parametrize("haic_day,arm", [(90, ARM_HAIC), (91, ARM_CONTROL)])
def test_naive_ever_haic_window_at_and_past_its_limit(haic_day, arm):
    t = _timing([{"id": "p", "aa": 0, "ici": 0, "haic": [haic_day]}])
    assert t.loc["p", "arm_ever_haic"] == arm and t.loc["p", "arm"] == ARM_CONTROL


def test_undated_haic_sessions_are_located_with_their_handling():
    log = QualityLog()
    t = _timing([{"id": "first_unknown", "aa": 0, "ici": 0, "haic": [None, 20], "cycles": [1, 2]},
                 {"id": "later_undated", "aa": 0, "ici": 0, "haic": [20, None], "cycles": [1, 2]},
                 {"id": "only_undated", "aa": 0, "ici": 0, "haic": [None]}], log)
    assert t.loc["first_unknown", "treatment_date_unknown"] and t.loc["only_undated", "treatment_date_unknown"]
    assert not t.loc["later_undated", "treatment_date_unknown"] and t.loc["later_undated", "haic_offset_days"] == 20
    dq = log.to_frame()
    assert set(dq[dq.rule.str.contains("may be the first HAIC")]["row"]) == {1, 5}
    ignored = dq[dq.rule.str.contains("numbered after a dated session")]
    assert ignored["row"].tolist() == [4] and (ignored["file"] == "C01/haic_cycles.csv").all()


def test_systemic_course_stopping_before_it_starts_is_located_and_start_kept():
    log = QualityLog()
    t = _timing([{"id": "p", "aa": 10, "ici": 10, "stop": 5}], log)
    assert t.loc["p", "index_date"] == _day(10)
    hit = log.to_frame().query("column == 'stop_date'")
    assert len(hit) == 1 and hit.iloc[0]["row"] == 1 and "start date kept" in hit.iloc[0]["action"]


def _lesions(days: list[int], ld: float | None = 30.0) -> pd.DataFrame:
    return pd.DataFrame({"study_id": "p", "assessment_date": [_day(d) for d in days], "lesion_id": "L1",
                         "organ": "liver", "lesion_type": "target", "ld_mm": ld, "viable_ld_mm": ld,
                         "short_axis_mm": np.nan, "arterial_enhancement": "yes", "nontarget_status": None,
                         "cytology_confirmed": None})


@pytest.mark.parametrize("scan_day,after_days,found", [
    (-42, 0, True), (-43, 0, False), (0, 0, True), (1, 0, False), (7, 7, True), (8, 7, False)])
def test_baseline_scan_window_ends_at_time_zero(scan_day, after_days, found):
    cfg = CleaningConfig(data_cutoff=CFG.data_cutoff, pseudonym_key="k", baseline_imaging_after_days=after_days)
    out = baseline_imaging(_lesions([scan_day, 60]), pd.DataFrame({"study_id": ["p"], "index_date": [D0]}), cfg)
    row = out.iloc[0]
    assert (row["baseline_date"] == _day(scan_day)) is found and bool(row["baseline_measurable_liver"]) is found


def test_blank_baseline_diameter_is_a_query_not_a_failure():
    out = baseline_imaging(_lesions([-5, 60], ld=None), pd.DataFrame({"study_id": ["p"], "index_date": [D0]}), CFG)
    assert pd.isna(out.iloc[0]["baseline_measurable_liver"])


@pytest.mark.parametrize("lab_day,used", [(-30, True), (-31, False), (0, True), (1, False)])
def test_baseline_labs_window_ends_at_time_zero(lab_day, used):
    """HAIC first (time zero before the first systemic dose): the patients table's values were recorded later, so
    the last labs-table value in [T0 - 30 days, T0] replaces them; without one they are kept and flagged."""
    p = pd.DataFrame({"study_id": ["p"], "center_id": ["C01"], "source_file": ["C01/patients.csv"], "source_row": [1],
                      "index_date": [D0], "first_systemic_date": [_day(20)], "total_bilirubin": [30.0],
                      "albumin": [35.0], "inr": [1.2], "afp": [100.0]})
    labs = pd.DataFrame({"study_id": "p", "lab_date": [_day(lab_day)] * 2, "test": ["albumin", "bilirubin"],
                         "value": [40.0, 12.0]})
    log = QualityLog()
    out = apply_baseline_labs(p, labs, CFG, log).iloc[0]
    assert bool(out["albumin"] == 40.0) is used and bool(out["total_bilirubin"] == 12.0) is used
    assert out["inr"] == 1.2 and bool(out["baseline_labs_after_t0"]) is (not used)
    assert len(log.entries) == (2 if used else 1)


def test_child_pugh_c_three_states():
    pts = pd.DataFrame({"a": [3, 3, 2, 1], "b": [3, 3, 2, 1], "c": [3, 2, 2, 1], "d": [np.nan, np.nan, np.nan, 1],
                        "e": [1, 1, 1, 1]}, dtype=float)
    # known 10 + 1 -> certain C; known 9 + >= 1 -> certain C; known 7, upper 10 -> query; all known, 5 -> not C
    assert child_pugh_c_state(pts).tolist() == [True, True, pd.NA, False]
    low = pd.DataFrame({"a": [1.0], "b": [1.0], "c": [1.0], "d": [np.nan], "e": [1.0]})
    assert child_pugh_c_state(low).tolist() == [False]  # known 4 + 3 = 7 < 10: C impossible


# ---------------------------------------------------------------------------------------------------- steps layer
def _hand_frame() -> pd.DataFrame:
    """The hand cohort of tests/test_stats_ccw.py as an analysis-ready frame (grace period 10 days)."""
    return pd.DataFrame({
        "study_id": [f"S{i}" for i in range(8)], "center_id": "C01",
        "os_days": [20, 7, 30, 15, 6, 25, 10, 40], "os_event": [1, 1, 0, 1, 1, 0, 1, 0],
        "haic_offset_days": [0, np.nan, np.nan, 4, 6, np.nan, np.nan, 10],
        "combination_day": [3, 0, 2, 0, 0, np.nan, 1, 0], "x": [1.0, 0, 1, 0, 1, 0, 0, 1],
        "arm": [ARM_HAIC] + [ARM_CONTROL] * 7, "arm_ever_haic": [ARM_HAIC, ARM_CONTROL, ARM_CONTROL, ARM_HAIC,
                                                                  ARM_HAIC, ARM_CONTROL, ARM_CONTROL, ARM_HAIC],
        "eligibility_query": [False] * 7 + [True]})


def _hand_params(**over):
    tp = {"grace_days": 10, "interval_days": 5, "covariates": ["x"], "categorical": [], "centre": "none",
          "truncate_quantiles": None, "timepoints_months": [15 / tt.DAYS_PER_MONTH], "rmst_tau_months":
          20 / tt.DAYS_PER_MONTH, "plot_months": 1, "endpoints": ["os"], "bootstrap": 0, "workers": 1}
    tp.update(over)
    return {"seed": 1, "target_trial": tp}


def test_steps_reproduce_the_hand_arithmetic_from_the_cohort_frame():
    cohort = _hand_frame()
    cfg = TargetTrialConfig.from_params(_hand_params())
    d = tt.prepare(cohort, cfg)
    assert d.ccw.deviation.tolist() == [[np.inf, 0], [10, np.inf], [10, np.inf], [np.inf, 4], [np.inf, 6], [10, 10],
                                        [10, np.inf], [np.inf, 10]]
    point, _ = tt.analysis_statistics(d, keep_details=True)
    t15 = 15.0
    assert point[tt.stat_name("ccw", "os", "S", t15, ARM_HAIC)] == pytest.approx(0.375, abs=1e-6)
    assert point[tt.stat_name("ccw_unweighted", "os", "S", t15, ARM_HAIC)] == pytest.approx(5 / 12)
    # the naive comparison puts units 1, 4, 5, 8 in the HAIC group from time zero: deaths on days 6 (4 at risk) and
    # 15 (3 at risk) -> S(15) = 3/4 * 2/3
    assert point[tt.stat_name("naive", "os", "S", t15, ARM_HAIC)] == pytest.approx(0.5)
    # complete eligibility data: unit 8 (query) left out
    comp = tt.ccw_estimate(d.ccw.take(np.arange(7)), d.design_sens).stats
    assert point[tt.stat_name("ccw_complete", "os", "rmst_diff")] == pytest.approx(comp["os_rmst_diff"])


def test_truncated_weights_sensitivity_analysis_runs_beside_the_main_one():
    cohort = _hand_frame()
    cfg = TargetTrialConfig.from_params(_hand_params(truncate_quantiles_sensitivity=[0.1, 0.9]))
    d = tt.prepare(cohort, cfg)
    assert d.design.truncate is None and d.design_truncated.truncate == (0.1, 0.9)
    point, main = tt.analysis_statistics(d, keep_details=True)
    ref = tt.ccw_estimate(d.ccw, d.design_truncated).stats    # refitted models, the same truncation
    assert point[tt.stat_name("ccw_truncated", "os", "S", 15.0, ARM_HAIC)] == pytest.approx(ref[f"os_S15_{ARM_HAIC}"])
    assert point[tt.stat_name("ccw_truncated", "os", "rmst_diff")] == pytest.approx(ref["os_rmst_diff"])
    assert point[tt.stat_name("ccw", "os", "rmst_diff")] == pytest.approx(main.stats["os_rmst_diff"])
    assert tt.analysis_labels(cfg)["ccw_truncated"].endswith("percentiles 10 and 90")
    off = TargetTrialConfig.from_params(_hand_params(truncate_quantiles_sensitivity=None))
    d_off = tt.prepare(cohort, off)
    assert d_off.design_truncated is None and "ccw_truncated" not in tt.analysis_labels(off)
    assert not any(k.startswith("ccw_truncated:") for k in tt.analysis_statistics(d_off)[0])
    out = tt.estimate(cohort, _hand_params(bootstrap=5, truncate_quantiles_sensitivity=[0.1, 0.9]), seed=3)
    assert out["truncate_quantiles_sensitivity"] == (0.1, 0.9) and "ccw_truncated_os_rmst_diff" in out


def test_estimate_is_callable_on_a_frame_with_bootstrap_cis():
    out = tt.estimate(_hand_frame(), _hand_params(bootstrap=40), seed=3)
    assert out["n_eligible"] == 8 and out["bootstrap"] == 40 and out["os_clones_haic"] == 8
    assert out["os_censored_haic"] == 2 and out["os_censored_control"] == 4 and out["os_censored_day0_control"] == 1
    lo, est, hi = out["os_rmst_diff_lower"], out["os_rmst_diff"], out["os_rmst_diff_upper"]
    assert np.isfinite([lo, est, hi]).all() and lo <= hi
    again = tt.estimate(_hand_frame(), _hand_params(bootstrap=40, workers=2), seed=3)
    assert again["os_rmst_diff_lower"] == lo and again["os_rmst_diff_upper"] == hi


def test_bad_target_trial_params_name_the_key():
    with pytest.raises(ValueError, match="target_trial.time_model"):
        TargetTrialConfig.from_params({"target_trial": {"time_model": "spline"}})
    with pytest.raises(ValueError, match="target_trial.endpoints"):
        TargetTrialConfig.from_params({"target_trial": {"endpoints": ["orr"]}})
