"""Tests for analysis_utils.steps.matching (run_matching: the study's matching and weighting from the params'
matching section) and of its presentation in analysis_utils.reporting.matching (report, Table 1, figures)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis_utils.reporting import matching as report
from analysis_utils.steps import matching as steps

SPEC = {"covariates": ["b"], "categorical": [], "missing": "indicator", "distance": "logit", "caliper": 0.2,
        "std_caliper": True, "ratio": 1, "replace": False, "m_order": "largest", "exact": [], "discard": "none",
        "estimand": "ATT", "smd_threshold": 0.1, "weighting": {"stabilize": True, "trim_quantile": 0.99}}
HAIC, TKI = "HAIC-TKIs-P", "TKIs-P"


def _saturated_cohort() -> pd.DataFrame:
    """One binary covariate, so the logistic fit is saturated and ps = arm share within b:
    b = 1: t1 t2 t3 treated, c1 control -> ps .75, logit +ln 3;  b = 0: t4 treated, c2 c3 c4 -> ps .25, -ln 3."""
    return pd.DataFrame({"study_id": ["t1", "t2", "t3", "t4", "c1", "c2", "c3", "c4"],
                         "arm": [HAIC] * 4 + [TKI] * 4, "b": [1, 1, 1, 0, 1, 0, 0, 0]})


def test_run_matching_saturated_model_by_hand():
    mo = steps.run_matching(_saturated_cohort(), SPEC)
    w = mo.weights.set_index("study_id")
    assert w["ps"].to_numpy() == pytest.approx([.75, .75, .75, .25, .75, .25, .25, .25])
    assert w["logit_ps"].to_numpy() == pytest.approx(np.log(3) * np.array([1, 1, 1, -1, 1, -1, -1, -1]))
    # caliper: distance is +-a (a = ln 3) on 4 units each, mean 0, SD a sqrt(8/7); width 0.2 a sqrt(8/7) = 0.2349
    assert mo.summary["caliper_raw"] == pytest.approx(0.2 * np.log(3) * np.sqrt(8 / 7))
    # largest first: t1 takes c1 (distance 0); t2 and t3 find only c4 at 2a > width; t4 takes c2 (first in order)
    assert sorted(map(tuple, mo.matched[["study_id", "subclass"]].to_numpy().tolist())) == \
        [("c1", 1), ("c2", 2), ("t1", 1), ("t4", 2)]
    assert (mo.matched["match_weight"] == 1).all()
    um = mo.unmatched.set_index("study_id")["reason"]
    assert um[["t2", "t3"]].tolist() == ["controls within caliper used up by earlier matches"] * 2
    assert um[["c3", "c4"]].tolist() == ["control not selected"] * 2
    # IPTW ATE stabilised (share 1/2 each): treated b=1 .5/.75 = 2/3, t4 .5/.25 = 2; c1 .5/.25 = 2, others 2/3.
    # Trim at .99 (R type 3): n p = 7.92 -> x(8) = 2 = the largest weight: nothing trimmed.
    assert w["w_iptw_ate"].to_numpy() == pytest.approx([2 / 3, 2 / 3, 2 / 3, 2, 2, 2 / 3, 2 / 3, 2 / 3])
    assert mo.summary["iptw_ate_n_trimmed"] == 0
    # ATT: treated 1; controls ps / (1 - ps): c1 3, others 1/3.  Overlap: treated 1 - ps, controls ps.
    assert w["w_iptw_att"].to_numpy() == pytest.approx([1, 1, 1, 1, 3, 1 / 3, 1 / 3, 1 / 3])
    assert w["w_overlap"].to_numpy() == pytest.approx([.25, .25, .25, .75, .75, .25, .25, .25])
    s = mo.summary
    assert (s["n_treated_before"], s["n_control_before"], s["n_treated_matched"], s["n_control_matched"],
            s["n_pairs"]) == (4, 4, 2, 2, 2)
    # SMD before, ATT denominator: (.75 - .25) / sqrt(.75 * .25) = 1.1547; matched: (1 + 0) / 2 in both arms -> 0
    assert s["max_abs_smd_before"] == pytest.approx(0.5 / np.sqrt(0.75 * 0.25))
    assert s["max_abs_smd_matched"] == pytest.approx(0.0)
    # IPTW ATE: treated (3 * 2/3) / 4 = .5, controls 2 / 4 = .5 -> 0; ESS treated 4^2 / (3 * 4/9 + 4) = 3
    assert s["max_abs_smd_iptw_ate"] == pytest.approx(0.0, abs=1e-9)  # IRLS fits ps to ~1e-12
    assert s["ess_iptw_ate_treated"] == pytest.approx(3.0) and s["ess_iptw_ate_control"] == pytest.approx(3.0)
    assert s["balanced"] is True and s["n_covariates_above_threshold_matched"] == 0 and s["covariates"] == ["b"]
    rep = report.matching_report(mo).set_index("item")["value"]
    assert rep[f"{HAIC}: controls within caliper used up by earlier matches"] == "2"
    assert rep[HAIC] == "4 before, 2 matched, 2 unmatched, 0 discarded"
    table1_matched = report.table_ones(mo)[1]
    assert table1_matched.iloc[0][[HAIC, TKI]].tolist() == ["2", "2"]


def _bad_cohort() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 40
    arm = np.where(np.arange(n) < 15, HAIC, TKI)
    return pd.DataFrame({"study_id": [f"p{i}" for i in range(n)], "arm": arm, "x": rng.normal(size=n),
                         "const": "same", "empty": np.nan, "sep": (arm == HAIC).astype(float)})


def test_run_matching_documents_bad_input_instead_of_raising():
    spec = {**SPEC, "covariates": ["x", "const", "empty", "sep"], "categorical": ["const"]}
    mo = steps.run_matching(_bad_cohort(), spec)
    text = " ".join(report.matching_report(mo)["value"])
    assert "const: constant" in text and "empty: entirely missing" in text
    assert "separation" in " ".join(mo.problems)
    # treated and controls sit at opposite ends of the (huge) linear predictor: nobody within the caliper
    assert mo.summary["n_treated_matched"] == 0 and mo.matched.empty
    assert report.matching_report(mo).set_index("item").loc[f"{HAIC}: no control within caliper", "value"] == "15"
    assert mo.summary["balanced"] is False
    assert "no treated unit could be matched" in " ".join(mo.problems)
    assert np.isfinite(mo.weights[["w_iptw_ate", "w_iptw_att", "w_overlap"]].to_numpy()).all()
    assert mo.summary["max_abs_smd_matched"] is None  # JSON-safe
    # 'sep' has no variance within either arm: the SMD before is infinite, None in results.json, 'inf' in the report
    assert mo.summary["max_abs_smd_before"] is None
    assert report.matching_report(mo).set_index("item").loc["Max |SMD| before", "value"] == "inf"


def test_run_matching_treated_unit_without_control_in_caliper():
    # controls x = 0..9; treated 1.5, 2.5 sit among them, treated 30 lies far beyond every control
    df = pd.DataFrame({"study_id": [f"c{i}" for i in range(10)] + ["t1", "t2", "t3"],
                       "arm": [TKI] * 10 + [HAIC] * 3, "x": list(range(10)) + [1.5, 2.5, 30.0]})
    mo = steps.run_matching(df, {**SPEC, "covariates": ["x"]})
    um = mo.unmatched.set_index("study_id")["reason"]
    assert um["t3"] == "no control within caliper"
    assert mo.summary["n_treated_matched"] == 2


def test_run_matching_failed_fit_is_reported(monkeypatch):
    from analysis_utils.stats import propensity

    monkeypatch.setattr(propensity, "_fit_logit", lambda y, design: (None, ["logistic model could not be fitted: X"]))
    mo = steps.run_matching(_saturated_cohort(), SPEC)
    assert mo.match is None and mo.matched.empty and mo.weights["w_iptw_ate"].isna().all()
    assert "propensity score not estimated: no matching or weighting" in mo.problems
    assert set(mo.unmatched["reason"]) == {"matching not done"}
    assert mo.summary["balanced"] is False and mo.summary["max_abs_smd_before"] == pytest.approx(1.1547, abs=1e-4)


def test_run_matching_spec_errors_and_writing(tmp_path):
    from analysis_utils.steps.matching import MATCHED_FILE, WEIGHTS_FILE, run_matching, write_matching_data

    with pytest.raises(ValueError, match="key\\(s\\) missing: \\['caliper'\\]"):
        run_matching(_saturated_cohort(), {k: v for k, v in SPEC.items() if k != "caliper"})
    with pytest.raises(ValueError, match="distance"):
        run_matching(_saturated_cohort(), {**SPEC, "distance": "mahalanobis"})
    with pytest.raises(ValueError, match="other than"):
        run_matching(_saturated_cohort().assign(arm="TACE"), SPEC)
    mo = run_matching(_saturated_cohort(), SPEC)
    write_matching_data(mo, tmp_path)
    m = pd.read_parquet(tmp_path / MATCHED_FILE)
    w = pd.read_parquet(tmp_path / WEIGHTS_FILE)
    assert list(m.columns) == ["study_id", "subclass", "match_weight"] and len(m) == 4
    assert list(w.columns) == ["study_id", "arm", "ps", "logit_ps", "w_iptw_ate", "w_iptw_att", "w_overlap"]


def test_run_matching_ratio_two_uses_weighted_table_one():
    # The logit is linear in x, so a caliper of 0.2 SD of the logit is 0.2 SD of x = 0.2 * 2.819 = 0.564 in x.
    # Treated x 1, 2, 3; controls 1, 1, 2, 2, 3, 10. Round 1: t3 takes the 3, t2 a 2, t1 a 1; round 2: t2 and t1
    # take the other 2 and 1, t3's next control (2, distance 1) is outside the caliper -> t3 has one control.
    # Control weights: c(3) 1, the others 1/2 each; normalised by their mean (1 + 4 * .5) / 5 = .6.
    df = pd.DataFrame({"study_id": ["t1", "t2", "t3", "c1", "c1b", "c2", "c2b", "c3", "c10"],
                       "arm": [HAIC] * 3 + [TKI] * 6, "x": [1.0, 2.0, 3.0, 1.0, 1.0, 2.0, 2.0, 3.0, 10.0]})
    mo = steps.run_matching(df, {**SPEC, "covariates": ["x"], "ratio": 2})
    mw = mo.matched.set_index("study_id")["match_weight"]
    assert mw[["c3", "c1", "c2b"]].to_numpy() == pytest.approx([1 / 0.6, 0.5 / 0.6, 0.5 / 0.6])
    assert mo.summary["n_control_matched"] == 5 and "c10" not in mw.index
    table1_matched = report.table_ones(mo)[1]
    assert "ESS" in table1_matched["Characteristic"].tolist()  # k:1 weights differ from 1: weighted Table 1


def test_matching_figures():
    smd = pd.DataFrame({"term": ["a", "b", "a", "b"], "sample": ["Unadjusted", "Unadjusted", "Matched", "Matched"],
                        "smd": [0.05, -0.4, 0.01, 0.02]})
    fig = report.love_plot(smd)
    ax = fig.axes[0]
    # ordered by unadjusted |SMD|, the largest at the top (highest y): b (0.4) above a (0.05)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert [len(c.get_offsets()) for c in ax.collections] == [2, 2]
    fig = report.ps_distribution(pd.Series([.1, .12, .6, .3]), pd.Series([HAIC, HAIC, TKI, TKI]),
                                  pd.Series([True, False, True, True]))
    before, after = fig.axes
    heights = [sum(p.get_height() for p in ax.patches if p.get_height() > 0) for ax in (before, after)]
    depths = [sum(p.get_height() for p in ax.patches if p.get_height() < 0) for ax in (before, after)]
    assert heights == [2, 1] and depths == [-2, -2]  # treated up, controls down (mirrored)
    plt_close = __import__("matplotlib.pyplot", fromlist=["close"]).close
    plt_close("all")


def test_run_matching_all_covariates_constant_is_documented():
    df = _saturated_cohort().assign(b=1)  # the only covariate is constant: intercept-only model
    mo = steps.run_matching(df, SPEC)
    assert mo.summary["covariates"] == [] and mo.summary["covariates_dropped"] == ["b"]
    assert any("intercept-only" in p for p in mo.problems)
    assert mo.weights["ps"].to_numpy() == pytest.approx([0.5] * 8)  # 4 of 8 treated
    assert report.format_balance(mo.balance_matched).empty and report.love_data(mo).empty
    report.love_plot(report.love_data(mo))
    __import__("matplotlib.pyplot", fromlist=["close"]).close("all")


def test_run_matching_without_balance_tables_gives_the_same_matches_and_weights():
    full = steps.run_matching(_saturated_cohort(), SPEC)
    lean = steps.run_matching(_saturated_cohort(), SPEC, balance_tables=False)
    pd.testing.assert_frame_equal(full.matched, lean.matched)
    pd.testing.assert_frame_equal(full.weights, lean.weights)
    assert not full.balance_matched.empty and lean.balance_matched.empty and lean.balance_weighted.empty
    assert lean.balance_summary is None and lean.summary["max_abs_smd_before"] is None
