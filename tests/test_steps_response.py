"""Notebook 06_response's steps (analysis_utils.steps.response): responders and denominators, the whole analysis of the
full, matched and weighted cohorts, its inputs and the plot data, against hand-computed values."""
import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from analysis_utils.reporting import figures
from analysis_utils.reporting import response as report
from analysis_utils.stats import binomial
from analysis_utils.steps import response as rsp

H, C = rsp.TREATMENT_ARM, rsp.CONTROL_ARM


# --------------------------------------------------------------------------------------------------- per patient
def test_responder_counts_ne_and_missing_as_non_responders():
    bor = pd.Series(["CR", "PR", "SD", "PD", "NE", None], name="bor_recist")
    assert rsp.responder(bor, "orr").tolist() == [1, 1, 0, 0, 0, 0]
    assert rsp.responder(bor, "dcr").tolist() == [1, 1, 1, 0, 0, 0]
    with pytest.raises(ValueError, match="bor_recist.*'XX'"):
        rsp.responder(pd.Series(["CR", "XX"], name="bor_recist"), "orr")
    with pytest.raises(ValueError, match="endpoint"):
        rsp.responder(bor, "pfs")


def test_rate_by_arm_denominator_is_all_patients():
    # HAIC: CR, PR, NE, NE, SD -> ORR 2/5 (NE stays in the denominator); control: PR, PD, SD, SD -> 1/4
    df = pd.DataFrame({"arm": [H] * 5 + [C] * 4, "bor": ["CR", "PR", "NE", "NE", "SD", "PR", "PD", "SD", "SD"]})
    r = rsp.rate_by_arm(df, "bor", "orr").set_index("arm")
    assert (r.at[H, "events"], r.at[H, "n"], r.at[C, "events"], r.at[C, "n"]) == (2, 5, 1, 4)
    assert r.at[H, "rate"] == 0.4 and r.at[H, "lower"] == pytest.approx(binomial.clopper_pearson_ci(2, 5)[0])
    counts = rsp.response_counts(df, "bor")
    assert counts.loc[H].tolist() == [1, 1, 1, 0, 2, 5] and counts.loc[C].tolist() == [0, 1, 2, 1, 0, 4]
    with pytest.raises(ValueError, match="arm column"):
        rsp.rate_by_arm(df.assign(arm=["X"] * 9), "bor", "orr")


def test_agreement_table_totals():
    df = pd.DataFrame({"r": ["CR", "PR", "PR", "SD", None], "m": ["CR", "CR", "PR", "SD", "NE"]})
    t = rsp.agreement_table(df, "r", "m")
    assert t.loc["PR", "CR"] == 1 and t.loc["NE", "NE"] == 1 and t.loc["Total", "Total"] == 5
    assert t.loc["Total", "CR"] == 2 and t.loc["PR", "Total"] == 2



# ------------------------------------------------------------------------------------------ whole analysis and I/O
def _cohort() -> pd.DataFrame:
    # HAIC (6): CR PR PR SD PD NE; control (8): PR SD SD SD PD PD NE NE (mRECIST one step better for S01, S03, S07)
    rec = ["CR", "PR", "PR", "SD", "PD", "NE", "PR", "SD", "SD", "SD", "PD", "PD", "NE", "NE"]
    mrec = ["CR", "CR", "PR", "PR", "PD", "NE", "PR", "PR", "SD", "SD", "PD", "PD", "NE", "NE"]
    rng = np.random.default_rng(1)
    return pd.DataFrame({
        "study_id": [f"S{i:02d}" for i in range(14)], "arm": [H] * 6 + [C] * 8,
        "bor_recist": rec, "bor_recist_confirmed": ["PR" if v == "CR" else v for v in rec],
        "bor_mrecist": mrec, "bor_mrecist_confirmed": mrec, "age": rng.normal(55, 10, 14).round(),
        "best_pct_change_recist": [-100, -40, -35, -5, 30, np.nan, -50, 0, 5, -10, 25, 40, np.nan, np.nan],
        "best_pct_change_mrecist": [-100, -100, -35, -40, 30, np.nan, -50, -31, 5, -10, 25, 40, np.nan, np.nan]})


def test_analyse_response_full_cohort_keys_and_values():
    cohort = _cohort()
    cfg = rsp.ResponseConfig(adjust_covariates=("age",))
    a = rsp.analyse_response(cohort, cfg)
    r = a.results
    assert r["orr_recist_haic"] == pytest.approx(3 / 6) and r["orr_recist_control"] == pytest.approx(1 / 8)
    assert r["dcr_mrecist_haic"] == pytest.approx(4 / 6) and r["orr_recist_confirmed_haic"] == pytest.approx(3 / 6)
    assert r["orr_recist_rd_lower"] == pytest.approx(binomial.newcombe_risk_difference(3, 6, 1, 8)[1])
    assert r["orr_recist_test"] == "Fisher exact" and r["orr_recist_p"] == pytest.approx(binomial.two_by_two_test(3, 6, 1, 8)[0])
    assert "orr_recist_or_adj" in r and "orr_recist_or_adj_p" in r
    assert r["matched_available"] is False and "orr_recist_matched_rd" not in r
    assert (r["n_evaluable_recist"], r["n_evaluable_recist_haic"], r["n_evaluable_recist_control"]) == (11, 5, 6)
    # agreement: 11 of 14 identical (S01 PR/CR, S03 SD/PR, S07 SD/PR differ) -> p_o = 11/14
    assert r["kappa_recist_mrecist_agreement"] == pytest.approx(11 / 14)
    assert r["kappa_recist_mrecist"] == pytest.approx(binomial.cohen_kappa(cohort.bor_recist, cohort.bor_mrecist, rsp.RESPONSE_LEVELS)["kappa"])
    orr = a.table[(a.table.definition == "unconfirmed") & (a.table.criterion == "recist") & (a.table.row == "ORR")].iloc[0]
    assert (orr.n_haic, orr.pct_haic, orr.n_control) == (3, 50.0, 1)
    md = report.format_response_table(a, cfg)
    # one bold group row per criterion and definition, then its 7 rows
    assert md.iloc[0]["Response"] == "**RECIST 1.1, unconfirmed responses (main)**" and len(md) == 2 * 2 * (1 + 7)
    # primary = confirmed swaps the suffixes
    r2 = rsp.analyse_response(cohort, rsp.ResponseConfig(primary_definition="confirmed")).results
    assert r2["orr_recist_haic"] == pytest.approx(3 / 6) and r2["orr_recist_unconfirmed_haic"] == pytest.approx(3 / 6)
    assert r2["dcr_recist_unconfirmed_haic"] == r["dcr_recist_haic"]


def test_matched_and_weighted_inputs(tmp_path):
    cohort = _cohort()
    design = rsp.load_design_inputs(tmp_path)
    assert design.matched is None and design.weights is None and design.notes["matched"].startswith("not available")
    matched = pd.DataFrame({"study_id": [f"S{i:02d}" for i in (0, 6, 1, 7, 2, 8, 3, 9)],
                            "subclass": [1, 1, 2, 2, 3, 3, 4, 4], "match_weight": 1.0})
    weights = pd.DataFrame({"study_id": cohort.study_id, "w_iptw_ate": np.linspace(0.5, 2.0, 14)})
    matched.to_parquet(tmp_path / "matched.parquet")
    weights.to_parquet(tmp_path / "weights.parquet")
    design = rsp.load_design_inputs(tmp_path)
    a = rsp.analyse_response(cohort, rsp.ResponseConfig(), design)
    r = a.results
    # matched ORR (RECIST): HAIC S00..S03 = CR PR PR SD -> 3/4; controls S06..S09 = PR SD SD SD -> 1/4
    assert r["orr_recist_matched_haic"] == pytest.approx(0.75) and r["orr_recist_matched_control"] == pytest.approx(0.25)
    assert r["n_matched_sets"] == 4 and r["orr_recist_matched_rd"] == pytest.approx(0.5)
    # ORR pairs: (S00, S06) = (CR, PR) and (S03, S09) = (SD, SD) concordant; (S01, S07) and (S02, S08) = (PR, SD)
    # discordant, both favouring HAIC (n10 = 2, n01 = 0) -> conditional OR infinite, reported NaN with a note
    assert math.isnan(r["orr_recist_matched_or_clogit"]) and r["weighted_available"] is True
    clogit = a.models[(a.models.cohort == "matched") & (a.models.measure == "odds_ratio_conditional")].iloc[0]
    assert "infinite" in clogit.note
    w = weights.w_iptw_ate.to_numpy()
    y = rsp.responder(cohort.bor_recist, "orr").to_numpy()
    assert r["orr_recist_weighted_haic"] == pytest.approx((w[:6] * y[:6]).sum() / w[:6].sum())
    # matching with replacement: no pair ids -> the matched analyses are "not available", the rest runs
    no_pairs = matched.assign(subclass=pd.array([pd.NA] * 8, dtype="Int64"))
    r = rsp.analyse_response(cohort, rsp.ResponseConfig(), rsp.DesignInputs(no_pairs, None, {})).results
    assert r["matched_available"] is False and "no matched pairs" in r["matched_note"]
    pd.DataFrame({"study_id": ["S00"], "subclass": [1]}).to_parquet(tmp_path / "matched.parquet")
    with pytest.raises(ValueError, match="match_weight"):
        rsp.load_design_inputs(tmp_path)
    with pytest.raises(ValueError, match="absent from the cohort"):
        rsp.matched_cohort(cohort, matched.assign(study_id="S99"))


def test_config_from_params():
    cfg = rsp.ResponseConfig.from_params({"seed": 7, "response": {"primary_definition": "confirmed",
                                                                   "adjust_covariates": ["age"]}})
    assert cfg.seed == 7 and cfg.adjust_covariates == ("age",) and cfg.definitions == ("confirmed", "unconfirmed")
    with pytest.raises(ValueError, match="unknown key"):
        rsp.ResponseConfig.from_params({"response": {"confirm": True}})
    with pytest.raises(ValueError, match="primary_definition"):
        rsp.ResponseConfig(primary_definition="both")



# ------------------------------------------------------------------------------------------------------ plot data
def test_waterfall_data_sorted_without_missing():
    wf = rsp.waterfall_data(_cohort())
    rec = wf[wf.criterion == "recist"]
    assert len(rec) == 11  # 3 patients without a measured follow-up value are left out
    assert rec.best_pct_change.tolist()[:2] == [40, 30] and rec.best_pct_change.iloc[-1] == -100
    assert rec["rank"].tolist() == list(range(11))


def test_spider_data_is_deterministic_and_sized():
    tp = pd.DataFrame({"study_id": np.repeat([f"S{i:02d}" for i in range(14)], 3), "visit": np.tile([0, 1, 2], 14),
                       "days_from_index": np.tile([-5, 42, 84], 14),
                       "pct_change_baseline": np.tile([0.0, -10.0, np.nan], 14)})
    tp.loc[tp.study_id == "S13", "pct_change_baseline"] = [0.0, np.nan, np.nan]  # no follow-up value: never drawn
    a = rsp.spider_data({"recist": tp}, _cohort(), n_per_arm=3, seed=11)
    b = rsp.spider_data({"recist": tp}, _cohort(), n_per_arm=3, seed=11)
    pd.testing.assert_frame_equal(a, b)
    assert a.groupby("arm").study_id.nunique().to_dict() == {H: 3, C: 3} and "S13" not in set(a.study_id)
    assert set(a.months.round(4)) == {0.0, round(42 / (365.25 / 12), 4)}  # baseline at month 0, visit 2 skipped (NaN)
    big = rsp.spider_data({"recist": tp}, _cohort(), n_per_arm=100, seed=11)
    assert big.study_id.nunique() == 13


# ------------------------------------------------------------------- tables and figures of reporting.response
def test_formatted_tables_follow_the_numbers():
    cohort = _cohort()
    cfg = rsp.ResponseConfig()
    a = rsp.analyse_response(cohort, cfg)
    md = report.format_response_table(a, cfg)
    orr = md[md.Response.str.endswith("ORR (95% CI)")].iloc[0]  # the first: RECIST 1.1, primary definition
    lo, hi = binomial.clopper_pearson_ci(3, 6)
    assert orr[f"{H} (n = 6)"] == f"3 (50.0%; {100 * lo:.1f}–{100 * hi:.1f})" and orr["P (nominal)"].endswith("\u2020")
    assert "\u2020 Fisher's exact test" in md.attrs["note"]  # the test named once, in the note under the table
    assert md.iloc[1][f"{C} (n = 8)"] == "0 (0.0%)"  # CR in the control arm
    ag = report.format_agreement(a, cfg)
    assert len(ag) == 2 * (6 + 2) and ag.iloc[6]["RECIST 1.1 (row) × mRECIST (column)"].startswith("Cohen's kappa")
    fm = report.format_models(a.models, cfg.conf_level)
    assert len(fm) == len(a.models) and set(fm.Criterion) == {"RECIST 1.1", "mRECIST"}


def test_figures_draw_one_bar_per_patient_and_one_panel_per_arm():
    wf = rsp.waterfall_data(_cohort())
    fig = report.waterfall_plot(wf)
    # panels: criterion (rows) x arm (columns); every patient with a value once, in the panel of its arm
    assert len(fig.axes) == 4
    for ax, (crit, arm) in zip(fig.axes, [(c, a) for c in ("recist", "mrecist") for a in figures.ARM_ORDER]):
        assert len(ax.patches) == ((wf.criterion == crit) & (wf.arm == arm)).sum()
        colours = {tuple(round(v, 3) for v in p.get_facecolor()[:3]) for p in ax.patches}
        expected = {tuple(round(v, 3) for v in matplotlib.colors.to_rgb(report.RESPONSE_COLOURS[b]))
                    for b in wf[(wf.criterion == crit) & (wf.arm == arm)].bor}
        assert colours == expected  # coloured by best overall response
    plt.close(fig)
    # PD from a new lesion: the first PD time point has new_lesion set
    tp_pd = pd.DataFrame({"study_id": ["S00", "S00", "S01"], "days_from_index": [40, 80, 40],
                          "overall_response": ["PD", "PD", "PD"], "new_lesion": [True, False, False]})
    nl = rsp.new_lesion_progression({"recist": tp_pd})
    assert dict(zip(nl.study_id, nl.pd_new_lesion)) == {"S00": True, "S01": False}
    tp = pd.DataFrame({"study_id": np.repeat(["S00", "S06"], 2), "visit": [0, 1, 0, 1], "days_from_index": [0, 40, 0, 40],
                       "pct_change_baseline": [0.0, -40.0, 0.0, 10.0]})
    fig = report.spider_plot(rsp.spider_data({"recist": tp, "mrecist": tp}, _cohort(), 5, 0))
    assert len(fig.axes) == 4 and all(len(ax.lines) == 4 for ax in fig.axes)  # 1 patient + 3 reference lines
    plt.close(fig)
