"""Response endpoints (analysis_utils.response): every statistic against a hand-computed or published value."""
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from analysis_utils.reporting import figures
from analysis_utils.steps import response as rsp

H, C = rsp.TREATMENT_ARM, rsp.CONTROL_ARM


def _arm_frame(y1: list[int], y0: list[int], w1=None, w0=None) -> pd.DataFrame:
    return pd.DataFrame({"arm": [H] * len(y1) + [C] * len(y0), "y": y1 + y0,
                         "w": (w1 or [1.0] * len(y1)) + (w0 or [1.0] * len(y0))})


def _table_frame(k1: int, n1: int, k0: int, n0: int) -> pd.DataFrame:
    return _arm_frame([1] * k1 + [0] * (n1 - k1), [1] * k0 + [0] * (n0 - k0))


# ---------------------------------------------------------------------------------------------------- one proportion
def test_clopper_pearson_known_values():
    lo, hi = rsp.clopper_pearson_ci(5, 20)
    assert (round(lo, 4), round(hi, 4)) == (0.0866, 0.4910)  # the brief's / R binom.test(5, 20) values
    # k = 0: lower 0, upper solves (1-p)^10 = 0.025 -> 1 - 0.025^(1/10) = 0.30850
    assert rsp.clopper_pearson_ci(0, 10) == (0.0, pytest.approx(1 - 0.025 ** 0.1))
    # k = n: by symmetry lower = 0.025^(1/10) = 0.69150, upper 1
    assert rsp.clopper_pearson_ci(10, 10) == (pytest.approx(0.025 ** 0.1), 1.0)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        rsp.clopper_pearson_ci(3, 2)


def test_wilson_interval_by_hand():
    # 56/70, z = 1.959964, z^2 = 3.841459: centre 56 + 1.920729 = 57.920729;
    # half = z * sqrt(56*14/70 + z^2/4) = 1.959964 * sqrt(11.2 + 0.960365) = 6.834732; denominator 73.841459
    lo, hi = rsp.wilson_ci(56, 70)
    assert lo == pytest.approx((57.920729 - 6.834732) / 73.841459, abs=1e-6)
    assert hi == pytest.approx((57.920729 + 6.834732) / 73.841459, abs=1e-6)


# -------------------------------------------------------------------------------------------------- two proportions
@pytest.mark.parametrize("k1,n1,k0,n0,lower,upper", [
    (56, 70, 48, 80, 0.0524, 0.3339),   # Newcombe 1998 Table II example (a), method 10
    (9, 10, 3, 10, 0.1705, 0.8090),     # (b)
    (5, 56, 0, 29, -0.0381, 0.1926),    # (d)
    (0, 10, 0, 20, -0.1611, 0.2775),    # (e)
    (10, 10, 0, 20, 0.6791, 1.0000),    # (g)
])
def test_newcombe_hybrid_score_published_examples(k1, n1, k0, n0, lower, upper):
    d, lo, hi = rsp.newcombe_risk_difference(k1, n1, k0, n0)
    assert d == pytest.approx(k1 / n1 - k0 / n0)
    assert (round(lo, 4), round(hi, 4)) == (lower, upper)


def test_woolf_odds_ratio_by_hand():
    # [[56, 14], [48, 32]]: OR = 56*32 / (14*48) = 1792/672 = 2.6667
    # SE = sqrt(1/56 + 1/14 + 1/48 + 1/32) = sqrt(0.141369) = 0.375991; exp(0.980829 -+ 1.959964*0.375991)
    or_, lo, hi, p, note = rsp.woolf_odds_ratio(56, 70, 48, 80)
    assert or_ == pytest.approx(1792 / 672)
    assert (lo, hi) == (pytest.approx(math.exp(0.980829 - 0.736929), rel=1e-5),
                        pytest.approx(math.exp(0.980829 + 0.736929), rel=1e-5))
    assert p == pytest.approx(2 * (1 - 0.995456), abs=2e-5)  # z = 0.980829/0.375991 = 2.6087
    assert note == ""
    # a zero cell: 0.5 added everywhere -> (0.5*5.5)/(10.5*5.5) = 0.5/10.5
    or0, *_, note0 = rsp.woolf_odds_ratio(0, 10, 5, 10)
    assert or0 == pytest.approx(0.5 / 10.5) and "Haldane" in note0


def test_chi_square_or_fisher_by_expected_counts():
    # [[56, 14], [48, 32]]: expected 48.533, 21.467, 55.467, 24.533 (all >= 5); |O - E| = 7.4667
    # chi2 = 55.751 * (1/48.533 + 1/21.467 + 1/55.467 + 1/24.533) = 7.0234 -> p = 2 * (1 - Phi(2.6502)) = 0.00804
    p, test = rsp.two_by_two_test(56, 70, 48, 80)
    assert test == "Pearson chi-square" and p == pytest.approx(0.008045, abs=2e-6)
    # [[3, 1], [1, 3]]: expected 2 < 5 -> Fisher. Hypergeometric probs (x70): a=0..4 -> 1, 16, 36, 16, 1;
    # observed a=3 (16/70); two-sided p sums the tables no more likely: (1 + 16 + 16 + 1)/70 = 34/70
    p, test = rsp.two_by_two_test(3, 4, 1, 4)
    assert test == "Fisher exact" and p == pytest.approx(34 / 70)
    assert math.isnan(rsp.two_by_two_test(0, 4, 0, 4)[0])


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
    assert r.at[H, "rate"] == 0.4 and r.at[H, "lower"] == pytest.approx(rsp.clopper_pearson_ci(2, 5)[0])
    counts = rsp.response_counts(df, "bor")
    assert counts.loc[H].tolist() == [1, 1, 1, 0, 2, 5] and counts.loc[C].tolist() == [0, 1, 2, 1, 0, 4]
    with pytest.raises(ValueError, match="arm column"):
        rsp.rate_by_arm(df.assign(arm=["X"] * 9), "bor", "orr")


# ------------------------------------------------------------------------------------------------------- models
def test_logistic_without_covariates_equals_woolf():
    # arm-only logistic regression: exp(coef) = cross-product ratio, model SE = Woolf SE
    est = rsp.logistic_odds_ratio(_table_frame(56, 70, 48, 80), "y")
    or_, lo, hi, p, _ = rsp.woolf_odds_ratio(56, 70, 48, 80)
    assert est.measure == "odds_ratio"
    assert (est.estimate, est.lower, est.upper, est.p) == (pytest.approx(or_, rel=1e-6), pytest.approx(lo, rel=1e-6),
                                                           pytest.approx(hi, rel=1e-6), pytest.approx(p, rel=1e-5))


def test_weighted_odds_ratio_and_risk_difference_hc0_by_hand():
    # treated y = 1,1,0,0 with w = 1,3,1,1 -> p1 = 4/6 = 2/3; control y = 1,0,0,0, w = 1 -> p0 = 1/4
    df = _arm_frame([1, 1, 0, 0], [1, 0, 0, 0], [1.0, 3.0, 1.0, 1.0], [1.0] * 4)
    # OR = (2/3 / 1/3) / (1/4 / 3/4) = 2 * 3 = 6.
    # HC0, treated logit: A = 6 * 2/3 * 1/3 = 4/3; B = 1*(1/3)^2 + 9*(1/3)^2 + 1*(2/3)^2 + 1*(2/3)^2 = 2;
    #   var = B / A^2 = 2 / (16/9) = 9/8. Control: A = 4 * 1/4 * 3/4 = 3/4; B = (3/4)^2 + 3*(1/4)^2 = 3/4;
    #   var = (3/4)/(9/16) = 4/3. var(log OR) = 9/8 + 4/3 = 59/24.
    est = rsp.logistic_odds_ratio(df, "y", weights_col="w")
    assert est.estimate == pytest.approx(6.0, rel=1e-6)
    assert est.se == pytest.approx(math.sqrt(59 / 24), rel=1e-5)
    # RD = 2/3 - 1/4 = 5/12; var = sum w^2 (y - p)^2 / W^2 per arm = 2/36 + (3/4)/16
    rd = rsp.weighted_risk_difference(df, "y", weights_col="w")
    assert rd.estimate == pytest.approx(5 / 12)
    assert rd.se == pytest.approx(math.sqrt(2 / 36 + 3 / 64))
    r1, r0 = rsp.weighted_rates(df, "y", weights_col="w")
    assert (r1.estimate, r1.se) == (pytest.approx(2 / 3), pytest.approx(math.sqrt(2) / 6))
    assert (r0.estimate, r0.se) == (pytest.approx(0.25), pytest.approx(math.sqrt(0.75) / 4))


def test_pair_clustered_estimates_and_conditional_logit_by_hand():
    # 5 pairs (treated y, control y): (1,0), (1,0), (1,1), (0,0), (0,1); d = y_t - y_c = 1, 1, 0, 0, -1
    pairs = [(1, 0), (1, 0), (1, 1), (0, 0), (0, 1)]
    df = pd.DataFrame({"arm": [H, C] * 5, "y": [v for p in pairs for v in p], "pair": np.repeat(range(5), 2),
                       "w": 1.0})
    # RD = 3/5 - 2/5 = 0.2; influence per pair (d - 0.2)/5 -> var = (0.8^2*2 + 0.2^2*2 + 1.2^2)/25 = 2.8/25
    rd = rsp.weighted_risk_difference(df, "y", weights_col="w", cluster_col="pair")
    assert rd.estimate == pytest.approx(0.2) and rd.se == pytest.approx(math.sqrt(2.8 / 25))
    # OR = (3/2)/(2/3) = 2.25; influence of the log OR per pair = (d - 0.2)/(5 * 0.24) -> var = 2.8/1.44
    lo = rsp.logistic_odds_ratio(df, "y", weights_col="w", cluster_col="pair")
    assert lo.estimate == pytest.approx(2.25, rel=1e-6) and lo.se == pytest.approx(math.sqrt(2.8 / 1.44), rel=1e-5)
    # conditional logit with 6 pairs (1,0), 2 pairs (0,1) and 3 concordant: OR = 6/2 = 3, SE = sqrt(1/6 + 1/2)
    pairs = [(1, 0)] * 6 + [(0, 1)] * 2 + [(1, 1)] * 2 + [(0, 0)]
    df = pd.DataFrame({"arm": [H, C] * len(pairs), "y": [v for p in pairs for v in p],
                       "pair": np.repeat(range(len(pairs)), 2)})
    cl = rsp.conditional_logit_odds_ratio(df, "y", "pair")
    assert cl.estimate == pytest.approx(3.0, rel=1e-8) and cl.se == pytest.approx(math.sqrt(2 / 3), rel=1e-8)
    assert cl.p == pytest.approx(0.17846, abs=1e-4)  # 2 * Phi(-ln 3 / 0.81650) = 2 * Phi(-1.34552)
    assert cl.note.startswith("8 of 11 matched sets informative")
    none = rsp.conditional_logit_odds_ratio(df.assign(y=1), "y", "pair")
    assert math.isnan(none.estimate) and "not estimable" in none.note


def test_design_matrix_missing_indicator_levels_and_complete_case():
    df = pd.DataFrame({"age": [50.0, np.nan, 70.0, 60.0, 40.0], "sex": ["m", "f", None, "m", "f"], "k": 1})
    X, keep, notes = rsp.design_matrix(df, ["age", "sex", "k"])
    # age: median of 50, 70, 60, 40 = 55 fills row 1; sex: m and f tie (2 each) -> mode = first sorted = 'f'
    # fills row 2; reference level 'f' (sorted first) -> one dummy sex[m]
    assert X["age"].tolist() == [50.0, 55.0, 70.0, 60.0, 40.0] and X["age_missing"].tolist() == [0, 1, 0, 0, 0]
    assert X["sex[m]"].tolist() == [1, 0, 0, 1, 0] and X["sex_missing"].tolist() == [0, 0, 1, 0, 0]
    assert "k" not in X.columns and any("k: constant" in n for n in notes)
    X, keep, notes = rsp.design_matrix(df, ["age", "sex"], missing="complete_case")
    assert keep.tolist() == [True, False, False, True, True] and list(X.columns) == ["age", "sex[m]"]
    # a column equal to another is aliased and dropped (R: NA coefficient)
    X, _, notes = rsp.design_matrix(df.assign(age2=df.age * 2).dropna(), ["age", "age2"])
    assert list(X.columns) == ["age"] and any("age2: collinear" in n for n in notes)
    with pytest.raises(ValueError, match="not in the data: \\['ecog'\\]"):
        rsp.design_matrix(df, ["ecog"])


def test_adjusted_odds_ratio_flags_separation():
    # covariate level 'z' holds only responders -> quasi-separation named in the note, arm OR still returned
    y1, y0 = [1, 0, 1, 0, 1, 1], [0, 1, 0, 1, 0, 1]
    df = _arm_frame(y1, y0).assign(g=["a", "a", "b", "b", "z", "z", "a", "a", "b", "b", "a", "z"])
    est = rsp.logistic_odds_ratio(df, "y", covariates=["g"])
    assert est.measure == "odds_ratio_adjusted" and np.isfinite(est.estimate)
    assert "g[z]" in est.note


# ---------------------------------------------------------------------------------------------------- agreement
def test_cohen_kappa_and_fleiss_cohen_everitt_se_by_hand():
    # table [[20, 5], [10, 15]], n = 50: p_o = 0.7; rows 0.5/0.5, columns 0.6/0.4 -> p_e = 0.5; kappa = 0.4
    # A = 0.4*(1 - 1.1*0.6)^2 + 0.3*(1 - 0.9*0.6)^2 = 0.04624 + 0.06348 = 0.10972
    # B = 0.6^2 * (0.1*(0.6+0.5)^2 + 0.2*(0.4+0.5)^2) = 0.36 * 0.283 = 0.10188; C = (0.4 - 0.5*0.6)^2 = 0.01
    # ASE^2 = (A + B - C) / (50 * 0.25) = 0.2016 / 12.5 = 0.016128
    a = ["a"] * 25 + ["b"] * 25
    b = ["a"] * 20 + ["b"] * 5 + ["a"] * 10 + ["b"] * 15
    k = rsp.cohen_kappa(a, b, labels=["a", "b"])
    assert k["kappa"] == pytest.approx(0.4) and k["se"] == pytest.approx(math.sqrt(0.016128))
    assert k["lower"] == pytest.approx(0.4 - 1.959964 * math.sqrt(0.016128), abs=1e-6)
    assert (k["observed"], k["expected"], k["n"]) == (pytest.approx(0.7), pytest.approx(0.5), 50)
    perfect = rsp.cohen_kappa(["CR", "PR", "SD"], ["CR", "PR", "SD"])
    assert perfect["kappa"] == pytest.approx(1.0) and perfect["se"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="outside labels"):
        rsp.cohen_kappa(["CR", "XX"], ["CR", "PR"])


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
    assert r["orr_recist_rd_lower"] == pytest.approx(rsp.newcombe_risk_difference(3, 6, 1, 8)[1])
    assert r["orr_recist_test"] == "Fisher exact" and r["orr_recist_p"] == pytest.approx(rsp.two_by_two_test(3, 6, 1, 8)[0])
    assert "orr_recist_or_adj" in r and "orr_recist_or_adj_p" in r
    assert r["matched_available"] is False and "orr_recist_matched_rd" not in r
    assert (r["n_evaluable_recist"], r["n_evaluable_recist_haic"], r["n_evaluable_recist_control"]) == (11, 5, 6)
    # agreement: 11 of 14 identical (S01 PR/CR, S03 SD/PR, S07 SD/PR differ) -> p_o = 11/14
    assert r["kappa_recist_mrecist_agreement"] == pytest.approx(11 / 14)
    assert r["kappa_recist_mrecist"] == pytest.approx(rsp.cohen_kappa(cohort.bor_recist, cohort.bor_mrecist)["kappa"])
    orr = a.table[(a.table.definition == "unconfirmed") & (a.table.criterion == "recist") & (a.table.row == "ORR")].iloc[0]
    assert (orr.n_haic, orr.pct_haic, orr.n_control) == (3, 50.0, 1)
    md = a.table_md
    assert md.iloc[0]["Definition"] == "unconfirmed (primary)" and len(md) == 2 * 2 * 7
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


def test_figures_draw_one_bar_per_patient_and_one_panel_per_arm():
    wf = rsp.waterfall_data(_cohort())
    fig = figures.waterfall_plot(wf)
    assert len(fig.axes) == 2 and len(fig.axes[0].patches) == 11
    plt.close(fig)
    tp = pd.DataFrame({"study_id": np.repeat(["S00", "S06"], 2), "visit": [0, 1, 0, 1], "days_from_index": [0, 40, 0, 40],
                       "pct_change_baseline": [0.0, -40.0, 0.0, 10.0]})
    fig = figures.spider_plot(rsp.spider_data({"recist": tp, "mrecist": tp}, _cohort(), 5, 0))
    assert len(fig.axes) == 4 and all(len(ax.lines) == 4 for ax in fig.axes)  # 1 patient + 3 reference lines
    plt.close(fig)
