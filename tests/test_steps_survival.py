"""Tests for the survival steps of notebook 05_survival (analysis_utils.steps.survival) and their tables and
figures (analysis_utils.reporting.survival): one endpoint per cohort by hand, the flat results keys, the covariate
design of the adjusted models, the landmark re-classification, the Kaplan-Meier plot's risk table, the notebook's
cohorts and models.
Rules: docs/methods/survival.md.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_lung
from scipy import optimize, stats

from analysis_utils.reporting import figures
from analysis_utils.reporting import survival as report
from analysis_utils.stats.cox import cox_ph
from analysis_utils.stats.evalue import evalue_hr
from analysis_utils.stats.kaplan_meier import median_follow_up_reverse_km
from analysis_utils.stats.logrank import logrank_test
from analysis_utils.steps import survival as sv


@pytest.fixture(scope="module")
def lung() -> pd.DataFrame:
    return load_lung()


# ------------------------------------------------------------------------------ notebook orchestration (05_survival)
H, C = sv.TREATMENT_ARM, sv.CONTROL_ARM
SPEC = {"conf_type": "log-log", "conf_level": 0.95, "timepoints_months": [6], "rmst_tau_months": 6, "ties": "efron"}


def _two_arms() -> pd.DataFrame:
    # HAIC: (2,1) (4,0) (6,1) (8,0); control: (1,1) (3,1) (5,1) (7,0); one row with a missing time (dropped)
    return pd.DataFrame({"t": [2, 4, 6, 8, 1, 3, 5, 7, np.nan], "e": [1, 0, 1, 0, 1, 1, 1, 0, 1],
                         "arm": [H] * 4 + [C] * 5, "pair": [1, 2, 3, 4, 1, 2, 3, 4, 4]})


def test_analyse_endpoint_hand_computed():
    res = sv.analyse_endpoint(_two_arms(), "t", "e", SPEC)
    assert res["n_dropped"] == 1 and res["n"] == {H: 4, C: 4} and res["events"] == {H: 2, C: 3}
    # HAIC KM: t=2 n=4 d=1 -> 0.75; t=6 n=2 d=1 -> 0.375: median 6 (first time S <= 0.5)
    # control KM: t=1 -> 0.75, t=3 n=3 d=1 -> 0.5, t=5 n=2 d=1 -> 0.25: S = 0.5 exactly on [3, 5) -> median (3+5)/2 = 4
    assert res["median"].loc[H, "median"] == 6.0 and res["median"].loc[C, "median"] == 4.0
    at = res["survival_at"].set_index("arm")["surv"]
    assert at[H] == pytest.approx(0.375) and at[C] == pytest.approx(0.25)
    # RMST to 6: HAIC 2*1 + 4*0.75 = 5; control 1*1 + 2*0.75 + 2*0.5 + 1*0.25 = 3.75; difference 1.25
    rm = res["rmst"].set_index("quantity")["estimate"]
    assert rm[f"RMST {H}"] == pytest.approx(5.0) and rm[f"RMST {C}"] == pytest.approx(3.75)
    assert rm["RMST difference"] == pytest.approx(1.25)
    data = _two_arms().dropna()
    lr = logrank_test(data["t"], data["e"], data["arm"])
    assert res["test"] == {"label": "Log-rank", "p": lr.p, "chi2": lr.chi2}
    direct = cox_ph(data, "t", "e", ["arm"], reference=sv.ARM_REFERENCE)
    assert res["hr"]["hr"] == pytest.approx(direct.loc[0, "hr"]) and res["hr"]["n"] == 8
    assert res["km"][H].attrs["conf_type"] == "log-log" and not res["notes"]
    # reverse KM (censorings as events): times 4, 7, 8 censored among 8 -> its median is where it reaches 0.5
    assert res["follow_up"]["median"] == median_follow_up_reverse_km(data["t"], data["e"])["median"]


def test_analyse_endpoint_cluster_and_weights():
    data = _two_arms().dropna()
    res = sv.analyse_endpoint(data, "t", "e", SPEC, cluster_col="pair")
    assert res["hr"]["variance"] == "robust (cluster=pair)"
    assert res["hr"]["se"] == pytest.approx(cox_ph(data, "t", "e", ["arm"], cluster_col="pair",
                                                   reference=sv.ARM_REFERENCE).loc[0, "se"])
    # weights all 1: weighted KM and RMST equal the unweighted ones; the test becomes the robust Wald of the Cox model
    w = sv.analyse_endpoint(data.assign(w=1.0), "t", "e", SPEC, weights_col="w")
    plain = sv.analyse_endpoint(data, "t", "e", SPEC)
    assert w["weighted"] and w["test"]["label"].startswith("Robust Wald") and w["test"]["p"] == w["hr"]["p"]
    pd.testing.assert_frame_equal(w["rmst"].iloc[:3].reset_index(drop=True),
                                  plain["rmst"].iloc[:3].reset_index(drop=True), check_exact=False)
    # weights 2 on every row: the KM estimate (not its variance) is unchanged
    w2 = sv.analyse_endpoint(data.assign(w=2.0), "t", "e", SPEC, weights_col="w")
    np.testing.assert_allclose(w2["km"][H]["surv"], plain["km"][H]["surv"])


def test_analyse_endpoint_records_what_is_not_estimable():
    # no events at all: medians not reached, no Cox / Schoenfeld, tau beyond follow-up -> notes, not exceptions
    data = _two_arms().dropna().assign(e=0)
    res = sv.analyse_endpoint(data, "t", "e", {**SPEC, "rmst_tau_months": 24})
    assert res["cox"] is None and res["ph"] is None and res["rmst"] is None and np.isnan(res["hr"]["hr"])
    assert not res["median"].loc[H, "median_reached"] and np.isnan(res["test"]["p"])
    assert any("Cox model" in n for n in res["notes"]) and any("RMST" in n for n in res["notes"])


def test_analyse_endpoint_bad_input():
    data = _two_arms()
    with pytest.raises(ValueError, match="other than"):
        sv.analyse_endpoint(data.assign(arm="HAIC"), "t", "e", SPEC)
    with pytest.raises(ValueError, match="both arms"):
        sv.analyse_endpoint(data[data["arm"] == H], "t", "e", SPEC)
    with pytest.raises(ValueError, match="not in the data"):
        sv.analyse_endpoint(data, "t", "e", SPEC, weights_col="w")


def test_flat_results_keys_and_values():
    res = sv.analyse_endpoint(_two_arms(), "t", "e", SPEC)
    full = sv.flat_results(res, "os")
    assert full["os_median_haic"] == 6.0 and full["os_median_control"] == 4.0 and full["os_median_haic_reached"]
    assert full["os_6m_haic"] == pytest.approx(0.375) and full["os_rmst_diff"] == pytest.approx(1.25)
    assert full["os_hr_unadj"] == res["hr"]["hr"] and full["os_events_control"] == 3
    assert "os_logrank_p" in full and full["os_rmst_tau"] == 6.0
    matched = sv.flat_results(res, "os", "matched")
    assert matched["os_median_haic_matched_lower"] == res["median"].loc[H, "lower"]
    assert matched["os_hr_matched"] == res["hr"]["hr"] and "os_logrank_p_matched" in matched
    weighted = sv.flat_results(sv.analyse_endpoint(_two_arms().assign(w=1.5), "t", "e", SPEC, weights_col="w"),
                               "os", "iptw")
    assert "os_hr_iptw" in weighted and not any(k.startswith("os_logrank") for k in weighted)


def test_prepare_covariates_missing_indicator_design():
    df = pd.DataFrame({"age": [50.0, np.nan, 60, 70], "ecog": [0.0, 1.0, np.nan, 1.0],
                       "sex": ["f", "m", "m", None], "mvi": pd.array([True, False, True, True], dtype="boolean"),
                       "const": [1.0, 1.0, 1.0, 1.0], "size": [5.0, np.nan, 7.0, 9.0]})
    data, cols, notes = sv.prepare_covariates(df, ["age", "ecog", "sex", "mvi", "const", "size"], ["ecog"])
    # age: median of 50, 60, 70 = 60; ecog: mode 1 (two 1s), integer levels 0 < 1; sex: mode "m"; mvi -> 0/1
    assert data["age"].tolist() == [50, 60, 60, 70] and data["age_missing"].tolist() == [0, 1, 0, 0]
    assert list(data["ecog"].cat.categories) == [0, 1] and data["ecog"].tolist() == [0, 1, 1, 1]
    assert data["sex"].tolist() == ["f", "m", "m", "m"] and data["mvi"].tolist() == [1.0, 0.0, 1.0, 1.0]
    assert data["size"].tolist() == [5, 7, 7, 9]  # median of 5, 7, 9
    # size is missing on the same row as age: its indicator would be collinear with age_missing -> left out
    assert cols == ["age", "age_missing", "ecog", "ecog_missing", "sex", "sex_missing", "mvi", "size"]
    assert any("const" in n for n in notes) and any("size_missing: identical to age_missing" in n for n in notes)
    # mode tie (one "f", one "m") -> first level in sorted order
    tie, _, _ = sv.prepare_covariates(pd.DataFrame({"sex": ["m", "f", None]}), ["sex"])
    assert tie["sex"].tolist() == ["m", "f", "f"]
    cc_df = pd.DataFrame({"age": [50.0, 60, np.nan, 70, 80], "sex": ["f", "m", "m", "f", None]})
    cc, cc_cols, cc_notes = sv.prepare_covariates(cc_df, ["age", "sex"], missing="complete_case")
    assert cc.index.tolist() == [0, 1, 3] and cc_cols == ["age", "sex"] and "2 of 5 rows dropped" in cc_notes[0]
    with pytest.raises(ValueError, match="not in the data"):
        sv.prepare_covariates(df, ["albi"])
    with pytest.raises(ValueError, match="missing must be"):
        sv.prepare_covariates(df, ["age"], missing="impute")


def test_adjusted_cox_is_cox_on_the_prepared_design(lung):
    df = lung.assign(arm=np.where(lung["sex"] == 2, H, C), ecog=lung["ph.ecog"]).dropna(subset=["ecog"])
    df.loc[df.index[:10], "age"] = np.nan
    table = sv.adjusted_cox(df, "time", "status", ["age", "ecog"], categorical=["ecog"])
    data, cols, _ = sv.prepare_covariates(df, ["age", "ecog"], ["ecog"])
    direct = cox_ph(data, "time", "status", ["arm", *cols], reference=sv.ARM_REFERENCE)
    np.testing.assert_allclose(table["coef"], direct["coef"])
    assert table["term"].iloc[0] == sv.ARM_TERM and "age_missing" in set(table["term"])
    assert table.attrs["n"] == len(df) and table.attrs["missing"] == "indicator"
    cc = sv.adjusted_cox(df, "time", "status", ["age", "ecog"], ["ecog"], missing="complete_case")
    assert cc.attrs["n"] == len(df) - 10 and cc.attrs["n_input"] == len(df)


def test_landmark_analysis_reclassifies_by_haic_start():
    # L = 3 months = 91.3 days. Rows: (time, event, arm at time zero, days from time zero to the first HAIC): the
    # HAIC-TKIs-P patients had HAIC on day 0; two TKIs-P patients started HAIC later (day 30 and day 100)
    df = pd.DataFrame({"t": [2.0, 5, 6, 7, 8, 9, 10, 4], "e": [1, 1, 0, 1, 1, 0, 1, 1],
                       "arm": [H, H, H, H, C, C, C, C], "off": [0, 0, 0, 0, 30, 100, np.nan, np.nan]})
    lm = sv.landmark_analysis(df, "t", "e", 3, offset_days_col="off")
    # t=2 dies before L -> excluded; HAIC on day 30 <= L -> re-classified to HAIC-TKIs-P; day 100 > L stays TKIs-P
    assert lm["n"] == 7 and lm["n_excluded"] == 1 and lm["n_reclassified"] == 1 and lm["n_events"] == 5
    assert lm["n_reclassified_to_haic"] == 1 and lm["n_reclassified_to_control"] == 0
    d = lm["data"].set_index("t_baseline")
    assert d.loc[8, "arm"] == H and d.loc[8, "arm_baseline"] == C and d.loc[9, "arm"] == C and d.loc[5, "arm"] == H
    assert d["t"].tolist() == [2.0, 3, 4, 5, 6, 7, 1]
    direct = cox_ph(lm["data"], "t", "e", ["arm"], reference=sv.ARM_REFERENCE)
    assert lm["hr_unadj"]["hr"] == pytest.approx(direct.loc[0, "hr"]) and lm["cox_adj"] is None
    with pytest.raises(ValueError, match="not in the data"):
        sv.landmark_analysis(df, "t", "e", 3)


def test_hr_tables_and_formats():
    data = _two_arms().dropna()
    table = sv.hr_summary({"unadjusted": cox_ph(data, "t", "e", ["arm"], reference=sv.ARM_REFERENCE),
                           "missing model": None})
    assert table["analysis"].tolist() == ["unadjusted", "missing model"] and np.isnan(table.loc[1, "hr"])
    f = report.format_hr_summary(table)
    assert f.loc[1, "HR (95% CI)"] == "NE (NE–NE)" and f.loc[1, "N"] == "—" and f.loc[0, "N"] == "8"
    assert f.loc[0, "HR (95% CI)"] == f"{table.loc[0, 'hr']:.2f} ({table.loc[0, 'lower']:.2f}–{table.loc[0, 'upper']:.2f})"
    with pytest.raises(ValueError, match="not in the Cox table"):
        sv.arm_hr(cox_ph(data, "t", "e", ["pair"]))
    notes: list[str] = []
    assert sv.attempt(notes, "cox", sv.cox_ph, data.assign(e=0), "t", "e", ["arm"]) is None
    assert notes and notes[0].startswith("cox: not estimable")


def test_km_and_rmst_summaries():
    # HAIC never drops to 0.5 here (one death among four) -> median "NR"
    data = pd.DataFrame({"t": [2, 4, 6, 8, 1, 3, 5, 7], "e": [1, 0, 0, 0, 1, 1, 1, 0], "arm": [H] * 4 + [C] * 4})
    res = sv.analyse_endpoint(data, "t", "e", SPEC)
    s = sv.km_summary({"full": res})
    assert s["arm"].tolist() == [H, C] and s.loc[0, "s_6m"] == pytest.approx(0.75)
    f = report.format_km_summary(s, "log-log")
    assert f.loc[0, "n (events)"] == "4 (1)" and f.loc[0, "Median, months (95% CI, log-log)"].startswith("NR (")
    assert f.loc[1, "Median, months (95% CI, log-log)"].startswith("4.0 (")
    assert f.loc[0, "6m survival, % (95% CI)"].startswith("75.0 (")
    r = sv.rmst_summary({"full": res, "none": {**res, "rmst": None}})
    # RMST to 6: HAIC 2 + 4*0.75 = 5, control 3.75 -> 1.25
    assert r.loc[0, "diff"] == pytest.approx(1.25) and np.isnan(r.loc[1, "diff"])
    fr = report.format_rmst_summary(r)
    assert fr.loc[0, f"RMST {H}, months"] == "5.0" and fr.loc[1, "P (nominal)"] == "—"
    assert fr.attrs["note"].startswith("Restricted to the first 6 months (tau).")  # one tau: in the note


def test_km_plot_number_at_risk_row_matches_number_at_risk():
    res = sv.analyse_endpoint(_two_arms(), "t", "e", SPEC)
    fig = report.km_plot(res, x_max=9, tick_step=3)
    risk_ax = fig.axes[1]
    # ticks 0, 3, 6, 9: HAIC times 2, 4, 6, 8 -> at risk 4, 3, 2, 0; control 1, 3, 5, 7 -> 4, 3, 1, 0
    # cumulative events (in brackets): HAIC events at 2 and 6 -> 0, 1, 2, 2; control at 1, 3, 5 -> 0, 2, 3, 3
    colour = {t.get_text(): t.get_color() for t in risk_ax.texts}
    by_arm = {}
    for t in risk_ax.texts:
        m = re.fullmatch(r"(\d+) \((\d+)\)", t.get_text())
        if m:
            by_arm.setdefault(t.get_color(), []).append((int(m.group(1)), int(m.group(2))))
    assert by_arm[figures.ARM_COLOURS[H]] == [(4, 0), (3, 1), (2, 2), (0, 2)]
    assert by_arm[figures.ARM_COLOURS[C]] == [(4, 0), (3, 2), (1, 3), (0, 3)]
    assert any(t.get_text().startswith("Number at risk (cumulative events)") for t in risk_ax.texts)
    assert colour[H] == figures.ARM_COLOURS[H]
    box = fig.axes[0].texts[0].get_text()
    assert f"{H}: 6.0 (" in box and f"{C}: 4.0 (" in box and "Log-rank p" in box
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_km_axis_ends_where_about_a_tenth_remain_at_risk():
    # 100 patients, one leaving per month (times 1..100): 10 % (10 patients) remain at risk at t = 91
    data = pd.DataFrame({"t": np.arange(1.0, 101.0), "e": 1, "arm": [H, C] * 50})
    res = sv.analyse_endpoint(data, "t", "e", SPEC)
    x_max, step = report.km_axis_end(res)
    assert step == 12 and x_max == 96  # 91 months rounded to the nearest 12-month tick
    # 8 patients: 10 % is less than one patient, so the axis runs to the end of follow-up (8 months)
    assert report.km_axis_end(sv.analyse_endpoint(_two_arms(), "t", "e", SPEC)) == (8.0, 1.0)
    fig = report.km_plot(res)
    assert fig.axes[0].get_xlim()[1] == pytest.approx(96 * 1.02)
    assert not fig.axes[0].get_title()  # no title in the figure: the caption carries it
    import matplotlib.pyplot as plt
    plt.close(fig)


# ------------------------------------------------------------------ notebook steps (load_cohorts ... survival_results)
def test_load_cohorts_joins_matched_and_weights(tmp_path):
    cohort = pd.DataFrame({"study_id": ["A", "B", "C", "D"], "arm": [H, H, C, C], "age": [50, 60, 70, 80]})
    cohort.to_parquet(tmp_path / "cohort.parquet")
    pd.DataFrame({"study_id": ["A", "C"], "subclass": [1, 1], "match_weight": [1.0, 1.0]}).to_parquet(
        tmp_path / "matched.parquet")
    pd.DataFrame({"study_id": ["A", "B", "C"], "arm": [H, H, C], "w_iptw_ate": [2.0, 2.0, 1.5]}).to_parquet(
        tmp_path / "weights.parquet")
    cohorts, notes = sv.load_cohorts(tmp_path)
    assert list(cohorts) == ["full", "matched", "iptw"] and not notes
    assert cohorts["matched"]["df"]["study_id"].tolist() == ["A", "C"]  # inner join: 2 of 4 patients
    # every match weight is 1 (1:1 without replacement) -> unweighted, variance clustered on the pair
    assert cohorts["matched"]["kw"] == {"cluster_col": "subclass", "weights_col": None}
    iptw = cohorts["iptw"]["df"]  # the weights file's own arm column is dropped, not suffixed
    assert iptw["arm"].tolist() == [H, H, C] and "arm_x" not in iptw and cohorts["iptw"]["kw"]["weights_col"]
    # arms x cohorts: full 2/2, matched 1/1, iptw 2/1
    sizes = sv.cohort_sizes(cohorts)
    assert sizes.loc[H].tolist() == [2, 1, 2] and sizes.loc[C].tolist() == [2, 1, 1]
    assert sv.main_cohort(cohorts) == "matched"
    pd.DataFrame({"study_id": ["A", "C"], "subclass": [1, 1], "match_weight": [2.0, 1.0]}).to_parquet(
        tmp_path / "matched.parquet")
    assert sv.load_cohorts(tmp_path)[0]["matched"]["kw"]["weights_col"] == "match_weight"
    (tmp_path / "matched.parquet").unlink()
    (tmp_path / "weights.parquet").unlink()
    only, notes = sv.load_cohorts(tmp_path)
    assert list(only) == ["full"] and len(notes) == 2 and "matched.parquet not found" in notes[0]
    assert sv.main_cohort(only) == "full"
    with pytest.raises(FileNotFoundError, match="cohort.parquet"):
        sv.load_cohorts(tmp_path / "nowhere")


def _small_cohorts() -> dict[str, dict]:
    # the _two_arms times for all three endpoints; HAIC on day 0 for the HAIC-TKIs-P patients, HAIC on days 20 and
    # 120 for the TKIs-P patients with t = 5 and t = 7 (crossovers); age, pair, subgroup mvi
    d = _two_arms().dropna()
    df = pd.DataFrame({"study_id": list("abcdefgh"), "arm": d["arm"].tolist(),
                       "age": [50.0, 61, 58, 70, 65, 52, 49, 72], "mvi": [1, 0, 1, 0, 0, 1, 0, 1],
                       "subclass": d["pair"].astype(int).tolist(),
                       "haic_offset_days": [0, 0, 0, 0, np.nan, np.nan, 20, 120]})
    for ep, (time_col, event_col, _) in sv.ENDPOINTS.items():
        df[time_col], df[event_col] = d["t"].to_numpy(), d["e"].to_numpy()
    return {"full": {"df": df, "kw": {}, "label": "Full cohort"},
            "matched": {"df": df, "kw": {"cluster_col": "subclass", "weights_col": None}, "label": "Matched cohort"}}


SPEC_NB = {**SPEC, "landmark_months": 3, "adjust_covariates": ["age"], "categorical": [], "missing": "indicator",
           "subgroups": ["mvi"]}


# the OS data of _small_cohorts by group (arm x mvi): (time, event, group); TKIs-P "C", HAIC-TKIs-P "H"
_MVI_DATA = [(1, 1, "C0"), (2, 1, "H1"), (3, 1, "C1"), (4, 0, "H0"), (5, 1, "C0"), (6, 1, "H1"), (7, 0, "C1"),
             (8, 0, "H0")]


def _partial_loglik(weights: dict[str, float]) -> float:
    """Cox partial log-likelihood of _MVI_DATA with relative hazard ``weights[group]`` (no tied death times, so
    Breslow = Efron): sum over deaths of log w(death) - log sum of w over the patients still at risk."""
    return sum(math.log(weights[g]) - math.log(sum(weights[g2] for t2, _, g2 in _MVI_DATA if t2 >= t))
               for t, e, g in _MVI_DATA if e)


def _max_loglik(weights_of) -> float:
    fit = optimize.minimize(lambda x: -_partial_loglik(weights_of(x)), [0.0, 0.0], method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 5000})
    return -fit.fun


# Interaction LRT, arm + mvi versus arm x mvi. Without the interaction the groups' relative hazards are C0 1,
# H0 e^a, C1 e^m, H1 e^(a+m). With it every group has its own; H0 has no death, so its hazard -> 0 at the supremum
# (a coefficient is infinite) and two free ratios remain, C1 = u and H1 = h.
_MVI_LR = 2 * (_max_loglik(lambda x: {"C0": 1.0, "H0": 0.0, "C1": math.exp(x[0]), "H1": math.exp(x[1])})
               - _max_loglik(lambda x: {"C0": 1.0, "H0": math.exp(x[0]), "C1": math.exp(x[1]),
                                        "H1": math.exp(x[0] + x[1])}))
_MVI_INTERACTION_P = float(stats.chi2.sf(_MVI_LR, 1))  # 0.0371


def _check_mvi_subgroups_by_hand(table: pd.DataFrame) -> None:
    """The subgroup table of _small_cohorts (main cohort: matched, the same 8 patients), derived by hand.

    mvi = 0: HAIC (4, censored), (8, censored), TKIs-P deaths at 1 and 5: no HAIC death -> flagged, no HR.
    mvi = 1: HAIC deaths at 2 and 6, TKIs-P death at 3 and censored at 7. With r = HR, the Cox score sums
    z - n1 r / (n1 r + n0) over the deaths: t = 2 (n1 = 2, n0 = 2): 1 - r/(r+1); t = 3 (1, 2): -r/(r+2); t = 6
    (1, 1): 1 - r/(r+1); so 2/(r+1) = r/(r+2), r^2 - r - 4 = 0, r = (1 + sqrt 17)/2 = 2.5616. Information
    sum n1 r n0 / (n1 r + n0)^2 = 2r/(r+1)^2 + 2r/(r+2)^2, SE = I^-1/2 = 1.2403; Wald CI and P from it."""
    sg = table.set_index("level")
    assert sg.index.tolist() == ["0", "1"] and (sg["subgroup"] == "mvi").all()
    assert sg["n"].tolist() == [4, 4] and sg["n_events"].tolist() == [2, 3]
    assert np.isnan(sg.loc["0", "hr"]) and "no events" in sg.loc["0", "flag"]
    r = (1 + math.sqrt(17)) / 2
    se = (2 * r / (r + 1) ** 2 + 2 * r / (r + 2) ** 2) ** -0.5
    z = stats.norm.ppf(0.975)
    assert sg.loc["1", "hr"] == pytest.approx(r, rel=1e-6)
    assert sg.loc["1", "lower"] == pytest.approx(math.exp(math.log(r) - z * se), rel=1e-5)
    assert sg.loc["1", "upper"] == pytest.approx(math.exp(math.log(r) + z * se), rel=1e-5)
    assert sg.loc["1", "p"] == pytest.approx(2 * stats.norm.sf(math.log(r) / se), rel=1e-5)
    assert sg["p_interaction"].tolist() == pytest.approx([_MVI_INTERACTION_P] * 2, rel=1e-5)
    assert "infinite" in sg.loc["1", "interaction_note"]


def test_notebook_steps_structure_and_hand_values():
    cohorts = _small_cohorts()
    res, notes = sv.endpoint_results(cohorts, SPEC_NB)
    assert set(res) == set(sv.ENDPOINTS) and all(list(r) == ["full", "matched"] for r in res.values())
    assert all(n.split(",")[0] in sv.ENDPOINTS for n in notes)
    summary, formatted = report.km_tables(res, cohorts, "os", "log-log")
    # medians by hand (test_analyse_endpoint_hand_computed): HAIC 6, control 4, in both cohorts
    assert summary["median"].tolist() == [6.0, 4.0, 6.0, 4.0] and formatted["Analysis"].iloc[2] == "Matched cohort"
    assert sv.follow_up_table(res, cohorts)["analysis"].tolist() == ["Full cohort", "Matched cohort"]
    cox = sv.cox_models(cohorts, res, SPEC_NB)
    direct = sv.adjusted_cox(cohorts["full"]["df"], "os_months", "os_event", ["age"], ties="efron")
    assert cox["adjusted"]["os"]["coef"].tolist() == pytest.approx(direct["coef"].tolist())
    assert list(cox["models"]["os"]) == ["Full cohort, unadjusted", "Full cohort, adjusted (indicator)",
                                         "Full cohort, adjusted (complete case)",
                                         "Matched, robust SE clustered on pair", "Matched, stratified on pair"]
    assert cox["models"]["os"]["Full cohort, unadjusted"] is res["os"]["full"]["cox"]
    assert cox["notes"][0] == "Adjusted OS model: 8 of 8 patients; complete case: 8."
    table = sv.cox_table(cox["models"])
    assert len(table) == 15 and table.columns[0] == "endpoint" and table["endpoint"].iloc[5] == "PFS (RECIST 1.1)"
    coefs, coefs_fmt = report.coefficient_table(direct)
    assert coefs["term"].tolist() == [sv.ARM_TERM, "age"] and list(coefs_fmt) == ["term", "hr", "p"]
    ph = sv.ph_table(res, cohorts)
    assert ph.shape == (3, 2) and ph.loc["Overall survival", "Full cohort"] == res["os"]["full"]["ph_p"]
    assert sv.arm_coef(res["os"]["full"]) == pytest.approx(res["os"]["full"]["cox"].loc[0, "coef"])
    # RMST to 6 by hand: HAIC 5, control 3.75 -> difference 1.25 in every row
    assert sv.rmst_table(res, cohorts)["diff"].tolist() == pytest.approx([1.25] * 6)
    # landmark at 3 months keeps t > 3: HAIC 4, 6, 8 and control 5, 7 (n 5, 3 excluded, events at 6 and 5);
    # the TKIs-P patient with t = 5 started HAIC on day 20 <= L -> re-classified; t = 7 (day 120 = 3.94 months) not
    assert sv.haic_timing(cohorts["full"]["df"], 3) == {"n_haic": 4, "n_after_index": 2, "n_after_landmark": 1}
    landmarks = sv.landmark_analyses(cohorts["full"]["df"], SPEC_NB)
    lm = report.landmark_table(landmarks)
    assert lm.loc[0, ["n_at_landmark", "n_excluded", "n_reclassified", "events"]].tolist() == [5, 3, 1, 2]
    subgroups, sg_notes = sv.subgroup_analysis(cohorts, SPEC_NB)
    assert not sg_notes
    _check_mvi_subgroups_by_hand(subgroups)
    evalue = sv.matched_os_evalue(res)
    assert evalue["evalue_point"] == evalue_hr(*(res["os"]["matched"]["hr"][k] for k in ("hr", "lower", "upper")),
                                                  rare=False)["evalue_point"]
    assert sv.matched_os_evalue({"os": {"full": res["os"]["full"]}}) is None
    values = sv.survival_results(SPEC_NB, cohorts, res, cox, landmarks, evalue, subgroups)
    assert values["cohorts"] == ["full", "matched"] and values["adjust_missing"] == "indicator"
    assert values["os_median_haic"] == 6.0 and values["pfs_mrecist_median_control_matched"] == 4.0
    assert values["os_rmst_diff"] == pytest.approx(1.25) and values["os_hr_adj_n"] == 8
    assert values["os_hr_adj"] == pytest.approx(direct.loc[0, "hr"])
    assert values["os_landmark_n"] == 5 and values["os_landmark_n_reclassified"] == 1
    assert values["median_follow_up"] == values["os_median_follow_up"] and values["os_evalue"] == evalue["evalue_point"]
    assert "os_hr_matched_strat" in values
    assert values["os_subgroup_mvi_p_interaction"] == pytest.approx(_MVI_INTERACTION_P, rel=1e-5)
    head = sv.headline_results(values)
    assert "os_median_haic" in head and "os_hr_adj" in head and "pfs_recist_median_haic" not in head
    full_only = {"full": cohorts["full"]}
    no_match = sv.survival_results(SPEC_NB, full_only, {ep: {"full": r["full"]} for ep, r in res.items()},
                                   sv.cox_models(full_only, res, SPEC_NB), landmarks)
    assert not any("matched" in k for k in no_match) and "os_evalue" not in no_match


def test_overlap_weighted_cohort_is_an_outcome_sensitivity_analysis(tmp_path):
    cohort = _two_arms().dropna().assign(study_id=[f"S{i}" for i in range(8)])
    cohort.to_parquet(tmp_path / "cohort.parquet")
    assert sv.overlap_cohort(tmp_path)[0] == {}  # no weights yet: skipped with a note
    pd.DataFrame({"study_id": cohort.study_id, "w_iptw_ate": 1.0,
                  "w_overlap": [0.4, 0.6, 0.5, 0.5, 0.3, 0.7, 0.5, 0.5]}).to_parquet(tmp_path / "weights.parquet")
    extra, notes = sv.overlap_cohort(tmp_path)
    assert not notes and extra["overlap"]["kw"] == {"weights_col": "w_overlap"}
    cohorts = {"full": {"df": cohort, "kw": {}, "label": "Full cohort"}, **extra}
    res = {ep: {c: sv.analyse_endpoint(v["df"], "t", "e", SPEC, **v["kw"]) for c, v in cohorts.items()}
           for ep in ("os",)}
    weighted = sv.cox_ph(cohort.merge(pd.read_parquet(tmp_path / "weights.parquet")), "t", "e", ["arm"],
                         weights_col="w_overlap", reference=sv.ARM_REFERENCE)
    assert res["os"]["overlap"]["hr"]["hr"] == pytest.approx(float(weighted["hr"].iloc[0]))
    assert res["os"]["overlap"]["weighted"] and res["os"]["overlap"]["test"]["label"].startswith("Robust Wald")
    flat = sv.flat_results(res["os"]["overlap"], "os", "overlap")
    assert flat["os_hr_overlap"] == pytest.approx(float(weighted["hr"].iloc[0]))
