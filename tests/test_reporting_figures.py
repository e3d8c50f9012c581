"""The manuscript's figures carry what a journal asks of them, checked on hand-built inputs: the study flow by arm
with the matching step, the forest plot with events/patients per arm and the reason a level or an interaction is not
estimable, the journal layouts of the balance and propensity-model tables, and generated (not asserted) sentences."""
from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from analysis_utils.reporting import cleaning as rc
from analysis_utils.reporting import matching as rm
from analysis_utils.reporting import survival as rs
from analysis_utils.study import eligibility
from analysis_utils.study.treatment import ARM_CONTROL as C, ARM_HAIC as H

matplotlib.use("Agg")


def _screened() -> pd.DataFrame:
    # 6 records with HAIC at time zero (2 excluded: duplicate, no measurable lesion), 5 without (1 excluded: Child-Pugh
    # C). The manuscript branch used 'no_combination' here, a criterion the target-trial branch removed (the
    # combination after time zero is strategy adherence, not eligibility: docs/methods/eligibility-and-time-zero.md).
    reasons = [None, None, None, None, "duplicate_record", "no_measurable_intrahepatic", None, None, None, None,
               "child_pugh_c"]
    return pd.DataFrame({"arm": [H] * 6 + [C] * 5, "exclusion_reason": reasons,
                         "eligible": [r is None for r in reasons]})


def _with_records_without_time_zero() -> pd.DataFrame:
    extra = pd.DataFrame({"arm": [None, None], "exclusion_reason": ["no_treatment_start", "treatment_date_unknown"],
                          "eligible": [False, False]})
    return pd.concat([_screened(), extra], ignore_index=True)


def test_flow_by_arm_accounts_for_every_record():
    f = eligibility.flow_by_arm(_screened())
    for arm, screened, analysed in ((H, 6, 4), (C, 5, 4)):
        part = f[f.arm == arm]
        assert part.loc[part.step == "screened", "n"].item() == screened
        assert part.loc[part.step == "analysed", "n"].item() == analysed
        assert part.loc[part.step == "excluded", "n"].sum() == screened - analysed
    assert f.loc[(f.arm == H) & (f.criterion == "duplicate_record"), "n"].item() == 1
    with pytest.raises(ValueError, match="without an arm"):  # an eligible record must have an arm
        eligibility.flow_by_arm(_screened().assign(arm=[None] + [H] * 10))


def test_flow_by_arm_counts_records_without_time_zero_apart():
    """A record without a dated treatment has no time zero and no arm: counted, excluded, under NO_ARM."""
    f = eligibility.flow_by_arm(_with_records_without_time_zero())
    part = f[f.arm == eligibility.NO_ARM]
    assert part.loc[part.step == "screened", "n"].item() == 2 and part.loc[part.step == "analysed", "n"].item() == 0
    assert part.loc[part.step == "excluded", "n"].sum() == 2
    assert f.loc[f.step == "screened", "n"].sum() == 13
    assert set(rc.SHORT_CRITERIA) == {c.name for c in eligibility.CRITERIA}


def test_study_flow_diagram_shows_exclusions_per_arm_and_the_matching_step():
    matching = {"method": "1:1 nearest neighbour, caliper 0.2 SD of the logit of the score", "n_pairs": 3,
                "arms": {H: {"matched": 3, "unmatched": {"No control within caliper": 1}},
                         C: {"matched": 3, "unmatched": {"Control not selected": 1}}}}
    fig = rc.study_flow_diagram(eligibility.flow_by_arm(_screened()), matching, n_centers=2)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "Records screened at 2 centres\nn = 11" in texts
    excluded = [t for t in texts if t.startswith("Excluded")]
    assert len(excluded) == 2 and "Excluded, n = 2" in excluded[0] and "Duplicate record: 1" in excluded[0]
    assert "No measurable liver lesion: 1" in excluded[0] and "Child-Pugh class C: 0" in excluded[0]
    assert "Excluded, n = 1" in excluded[1] and "Child-Pugh class C: 1" in excluded[1]
    assert f"HAIC at time zero\nn = 6" in texts and not any(t.startswith("No time zero") for t in texts)
    assert any("3 matched pairs" in t for t in texts)
    assert "Unmatched, n = 1\n  No control within caliper: 1" in texts and f"Matched {C}\nn = 3" in texts
    assert not fig.axes[0].get_title()
    plt.close(fig)
    fig = rc.study_flow_diagram(eligibility.flow_by_arm(_with_records_without_time_zero()), matching, n_centers=2)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "Records screened at 2 centres\nn = 13" in texts
    assert "No time zero (no arm), n = 2\n  No treatment recorded: 1\n  Treatment date unknown: 1" in texts
    excluded = [t for t in texts if t.startswith("Excluded")]
    assert "No treatment recorded" not in excluded[0] and "Excluded, n = 2" in excluded[0]
    plt.close(fig)


def test_forest_plot_counts_per_arm_and_reasons_for_what_is_not_estimable():
    table = pd.DataFrame([
        {"subgroup": "mvi", "level": "False", "n": 6, "n_events": 4, "hr": 0.5, "lower": 0.3, "upper": 0.9,
         "p_interaction": 0.4, "interaction_note": "likelihood-ratio test", "flag": ""},
        {"subgroup": "tki_agent", "level": "a", "n": 5, "n_events": 3, "hr": 0.7, "lower": 0.4, "upper": 1.2,
         "p_interaction": np.nan, "interaction_note": "not estimable: covariate column 'x' is constant", "flag": ""},
        {"subgroup": "tki_agent", "level": "b", "n": 1, "n_events": 1, "hr": np.nan, "lower": np.nan,
         "upper": np.nan, "p_interaction": np.nan, "interaction_note": "not estimable: ...",
         "flag": "an arm is absent or has no events in this subgroup"}])
    counts = pd.DataFrame([
        {"subgroup": "", "level": "", "arm": H, "n": 7, "events": 5}, {"subgroup": "", "level": "", "arm": C, "n": 5,
                                                                       "events": 3},
        {"subgroup": "mvi", "level": "False", "arm": H, "n": 3, "events": 2},
        {"subgroup": "mvi", "level": "False", "arm": C, "n": 3, "events": 2},
        {"subgroup": "tki_agent", "level": "a", "arm": H, "n": 3, "events": 2},
        {"subgroup": "tki_agent", "level": "a", "arm": C, "n": 2, "events": 1},
        {"subgroup": "tki_agent", "level": "b", "arm": H, "n": 0, "events": 0},
        {"subgroup": "tki_agent", "level": "b", "arm": C, "n": 1, "events": 1}])
    overall = {"hr": 0.6, "lower": 0.4, "upper": 0.9, "n": 12, "n_events": 8}
    fig = rs.forest_plot(table, overall=overall, counts=counts)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "5/7" in texts and "3/5" in texts and "2/3" in texts  # events/patients per arm, overall and per level
    assert "NE: a level lacks an arm" in texts and "NE: an arm has no patients" in texts
    assert "0.400" in texts and "Events/patients" in texts
    plt.close(fig)


def test_balance_and_propensity_tables_for_the_journal():
    bal = pd.DataFrame({"weighting": ["iptw_ate", "overlap"], "term": ["age", "age"], "variable": ["age", "age"],
                        "level": [None, None], "mean_treated_adj": [52.7, 52.5], "mean_control_adj": [53.3, 52.5],
                        "smd_adj": [-0.0533, 0.0], "var_ratio_adj": [0.83, 0.9], "ecdf_max_adj": [0.048, 0.02],
                        "smd_un": [-0.16, -0.16]})
    f = rm.format_balance(bal)
    assert f["Covariate"].tolist() == ["**IPTW (ATE)**", "\u00a0\u00a0\u00a0Age, years", "**Overlap weights (ATO)**",
                                       "\u00a0\u00a0\u00a0Age, years"]
    assert list(f.columns) == ["Covariate", f"{H} mean", f"{C} mean", "SMD", "Variance ratio", "eCDF max"]
    ps = pd.DataFrame({"term": ["(Intercept)", "ecog[1.0]", "etiology[hbv]", "age_missing"],
                       "estimate": [-1.8369, -0.872, 0.675, 2.038], "std_error": [0.73, 0.2, 0.34, 1.28],
                       "p_value": [0.0116, 1e-5, 0.046, 0.112], "conf_low": [-3.2632, -1.268, 0.013, -0.475],
                       "conf_high": [-0.4107, -0.476, 1.337, 4.551]})
    p = rm.format_ps_model(ps)
    assert p["Term"].tolist() == ["Intercept", "ECOG performance status: 1", "Aetiology: HBV", "Age, years (missing)"]
    assert p.loc[0, "Coefficient (95% CI)"] == "-1.837 (-3.263 to -0.411)" and p.loc[1, "P"] == "<0.001"


def test_hr_direction_is_counted_from_the_table():
    t = pd.DataFrame({"hr": [0.5, 0.9, 1.2, np.nan], "lower": [0.4, 0.7, 1.05, np.nan],
                      "upper": [0.7, 1.1, 1.4, np.nan]})
    assert rs.hr_direction_text(t) == ("Of the 3 estimable hazard ratios, 2 are below 1 and 1 above 1; the confidence "
                                       "interval lies entirely below 1 for 1 and entirely above 1 for 1; 1 model could "
                                       "not be estimated.")
