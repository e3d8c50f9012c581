"""The target-trial (clone-censor-weight) analysis under multiple imputation: per-imputation contrasts with the
clustered IJ standard error, pooled by Rubin's rules (steps/target_trial_mi.py)."""
from __future__ import annotations

import numpy as np
import pytest

from analysis_utils.reporting.target_trial import format_sensitivity
from analysis_utils.steps import target_trial as tt
from analysis_utils.steps import target_trial_mi as tmi
from analysis_utils.study.config import TargetTrialConfig
from test_target_trial import _hand_frame, _hand_params


def _cfg():
    return TargetTrialConfig.from_params(_hand_params())


def test_per_imputation_estimates_are_the_ccw_contrasts_of_that_data_set():
    cohort, cfg = _hand_frame(), _cfg()
    one = tmi.ccw_one_imputation(cohort, cfg).set_index("quantity")
    d = tt.prepare(cohort, cfg)
    ref = tt.ccw_estimate(d.ccw, tt.design(cfg, grid=False)).stats
    assert one.loc["rmst_diff", "estimate"] == pytest.approx(ref["os_rmst_diff"] / tt.DAYS_PER_MONTH)
    sq = [q for q in one.index if q.startswith("sdiff")][0]
    assert one.loc[sq, "estimate"] == pytest.approx(ref["os_Sdiff15"])
    assert (one["std_error"] > 0).all() and (one["n_indicator_columns"] == 0).all()


def test_pooled_estimate_is_the_mean_and_identical_imputations_give_the_ij_se():
    cfg = _cfg()
    a = _hand_frame()
    b = a.copy()
    b["x"] = [0.0, 1, 1, 0, 0, 1, 0, 1]            # a second "imputation" with other covariate values
    out = tmi.ccw_within([a, b, a], cfg)
    per, pooled = out["per_imputation"], out["pooled"].set_index("term")
    for term, g in per.groupby("term"):
        assert pooled.loc[term, "estimate"] == pytest.approx(g["estimate"].mean())
        assert pooled.loc[term, "m"] == 3
    # m identical imputations: B = 0, so T = ubar + (1 + 1/m) B = ubar and the pooled SE is the IJ SE
    single = tmi.ccw_one_imputation(a, cfg).set_index("term")
    same = tmi.ccw_within([a] * 4, cfg)["pooled"].set_index("term")
    for term in single.index:
        assert same.loc[term, "b"] == pytest.approx(0.0, abs=1e-15)
        assert same.loc[term, "std_error"] == pytest.approx(single.loc[term, "std_error"])
        assert same.loc[term, "estimate"] == pytest.approx(single.loc[term, "estimate"])
    keys = tmi.results_keys(out["pooled"], 3)
    assert keys["mi_m"] == 3 and np.isfinite(keys["mi_os_rmst_diff_se"])
    assert keys["mi_os_rmst_diff_lower"] <= keys["mi_os_rmst_diff"] <= keys["mi_os_rmst_diff_upper"]
    rows = tmi.sensitivity_rows(out["pooled"], cfg, 8)
    assert rows.loc[0, "rmst_diff"] == pytest.approx(pooled.loc["os_rmst_diff", "estimate"])
    assert rows.loc[0, "key"] == "ccw_mi" and rows.loc[0, "n"] == 8
    shown = format_sensitivity(rows, [15 / tt.DAYS_PER_MONTH])  # the formatter of the sensitivity table
    assert shown.loc[0, "Analysis"] == tmi.LABEL and shown.loc[0, "HR"] == "not estimated"


def test_fewer_than_two_imputations_is_refused():
    with pytest.raises(ValueError, match="at least 2 imputed"):
        tmi.ccw_within([_hand_frame()], _cfg())
