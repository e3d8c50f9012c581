"""The study's multiple-imputation steps (steps.imputation, steps.matching_mi, steps.survival_mi,
steps.response_mi) and centre steps (steps.centres) on a small simulated cohort: passive Child-Pugh class, bad
input (a covariate missing for everyone, a level seen only in imputed data), the within analyses pooled by Rubin's
rules, the tipping point and the centre analyses. docs/methods/missing-data.md, docs/methods/multicentre.md."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis_utils.stats import meta
from analysis_utils.steps import centres, imputation, matching_mi, survival_mi
from analysis_utils.study.treatment import ARM_CONTROL, ARM_HAIC

VARIABLES = ("age", "sex", "ecog", "mvi", *imputation.CP_POINTS)
CATEGORICAL = ("sex", "ecog", *imputation.CP_POINTS)
SPEC = {"covariates": ["age", "sex", "ecog", "mvi", "child_pugh_class"], "categorical": ["sex", "ecog",
        "child_pugh_class"], "missing": "indicator", "distance": "logit", "caliper": 0.2, "std_caliper": True,
        "ratio": 1, "replace": False, "m_order": "largest", "exact": [], "discard": "none", "estimand": "ATT",
        "smd_threshold": 0.1, "weighting": {"stabilize": True, "trim_quantile": 0.99}}
SURVIVAL = {"rmst_tau_months": 12, "timepoints_months": [6, 12], "ties": "efron", "conf_level": 0.95,
            "adjust_covariates": ["age", "sex", "ecog", "mvi", "child_pugh_class"],
            "categorical": ["sex", "ecog", "child_pugh_class"]}


def _cohort(n: int = 240, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(55, 10, n).round()
    ecog = rng.choice([0.0, 1.0, 2.0], n, p=[0.35, 0.55, 0.10])
    treat = rng.random(n) < 1 / (1 + np.exp(-(-0.3 + 0.02 * (age - 55) - 0.5 * (ecog == 2))))
    pts = {c: rng.choice([1, 2], n, p=[0.85, 0.15]).astype(float) for c in imputation.CP_POINTS}
    hazard = 0.05 * np.exp(-0.5 * treat + 0.4 * ecog)
    t = rng.exponential(1 / hazard)
    cens = rng.uniform(6, 30, n)
    df = pd.DataFrame({"study_id": [f"P{i:03d}" for i in range(n)], "center_id": rng.choice(["C1", "C2", "C3"], n),
                       "arm": np.where(treat, ARM_HAIC, ARM_CONTROL), "age": age,
                       "sex": rng.choice(["male", "female"], n, p=[0.8, 0.2]), "ecog": ecog,
                       "mvi": pd.array(rng.random(n) < 0.4, dtype="boolean"), **pts,
                       "os_months": np.minimum(t, cens), "os_event": (t <= cens).astype(int)})
    for ep in ("pfs_recist", "pfs_mrecist"):
        df[f"{ep}_months"], df[f"{ep}_event"] = df["os_months"] * 0.6, df["os_event"].astype(float)
    for col, frac in (("age", 0.03), ("ecog", 0.12), ("cp_ascites_pts", 0.10), ("mvi", 0.05)):
        df.loc[rng.random(n) < frac, col] = np.nan if col != "mvi" else pd.NA
    for c in imputation.CP_POINTS:
        df[c] = df[c].astype("Float64").round().astype("Int64")
    score = df[list(imputation.CP_POINTS)].astype(float).sum(axis=1, min_count=5)
    df["child_pugh_class"] = np.where(score.isna(), None, np.where(score <= 6, "A", "B"))
    return df


def _cfg(**kw) -> imputation.ImputationConfig:
    base = dict(m=3, maxit=2, workers=1, variables=VARIABLES, categorical=CATEGORICAL, seed=5)
    return imputation.ImputationConfig(**{**base, **kw})


def test_config_is_checked():
    with pytest.raises(ValueError, match="m must be >= 2"):
        _cfg(m=1)
    with pytest.raises(ValueError, match="unknown key"):
        imputation.ImputationConfig.from_params({"imputation": {"m": 5, "mm": 1}})
    with pytest.raises(ValueError, match="endpoints"):
        _cfg(endpoints=("os", "dfs"))


def test_passive_child_pugh_and_missingness_table():
    c = _cohort()
    imp = imputation.impute_cohort(c, _cfg())
    done = imp.completed
    assert len(done) == 3 * len(c) and done[list(VARIABLES)].notna().all().all()
    score = done[list(imputation.CP_POINTS)].sum(axis=1)
    assert ((score <= 6) == (done["child_pugh_class"] == "A")).all()
    observed = c["child_pugh_class"].notna().to_numpy()
    for _, g in done.groupby(".imp"):
        assert (g["child_pugh_class"].to_numpy()[observed] == c["child_pugh_class"].to_numpy()[observed]).all()
    t = imputation.missingness_table(c, ["ecog", "child_pugh_class"]).set_index("variable")
    assert t.loc["ecog", "n_missing"] == c["ecog"].isna().sum()
    assert t.loc["ecog", "n_missing_haic"] + t.loc["ecog", "n_missing_control"] == t.loc["ecog", "n_missing"]
    assert imp.methods["ecog"] == "polyreg" and imp.methods["age"] == "pmm" and imp.methods["mvi"] == "logreg"


def test_bad_input_missing_for_everyone_and_level_only_imputed():
    c = _cohort()
    c["age"] = np.nan                                       # a covariate missing for everyone
    rows = c.index[c["cp_ascites_pts"].isna()][:4]          # known points already sum to 10: class C if imputed
    for col in ("cp_bilirubin_pts", "cp_albumin_pts", "cp_inr_pts"):
        c.loc[rows, col] = 3
    imp = imputation.impute_cohort(c, _cfg())
    assert any(n.startswith("age: no observed value") for n in imp.notes)
    assert imp.completed["age"].isna().all()
    assert any("class C" in n and "set to B" in n for n in imp.notes)
    assert set(imp.completed["child_pugh_class"]) == {"A", "B"}
    cohorts = imputation.completed_cohorts(c, imp.completed, _cfg().analysis_columns())
    w = matching_mi.within_matching(cohorts, SPEC, seed=1)  # the ps model drops the empty covariate, no crash
    assert any("'age' dropped: entirely missing" in p for p in w.problems["problem"])
    assert w.m == 3 and set(w.matched[".imp"]) == {1, 2, 3}


def test_within_survival_pooled_and_sensitivity_rows():
    c = _cohort()
    imp = imputation.impute_cohort(c, _cfg())
    cohorts = imputation.completed_cohorts(c, imp.completed, _cfg().analysis_columns())
    w = matching_mi.within_matching(cohorts, SPEC, seed=1)
    res = survival_mi.within_survival(survival_mi.imputation_frames(cohorts, w.matched, w.weights), SURVIVAL)
    per, pooled = res["per_imputation"], res["pooled"].set_index("term")
    row = pooled.loc["os|matched|log_hr"]
    est = per.loc[per["term"] == "os|matched|log_hr", "estimate"]
    assert row["m"] == 3 and row["estimate"] == pytest.approx(est.mean())
    assert row["b"] == pytest.approx(est.var(ddof=1)) and 0 <= row["fmi"] <= 1
    assert np.exp(row["estimate"]) < 1  # the simulated treatment effect is protective (log HR -0.5)
    designs = {"ind": survival_mi.matched_outcomes(c, w.matched[w.matched[".imp"] == 1].drop(columns=".imp"),
                                                   w.weights[w.weights[".imp"] == 1].drop(columns=[".imp", "arm"]),
                                                   SURVIVAL)}
    sens = survival_mi.sensitivity_rows(res["pooled"], designs)
    first = sens[(sens["endpoint"] == "os") & (sens["cohort"] == "matched") & (sens["measure"] == "HR")].iloc[0]
    assert first["mi"] == pytest.approx(np.exp(row["estimate"])) and first["ind_lower"] < first["ind"] < first["ind_upper"]
    flat = survival_mi.survival_mi_results(res["pooled"], sens, centre_pooled=res["centres_pooled"])
    assert flat["mi_os_hr_matched"] == pytest.approx(np.exp(row["estimate"])) and flat["mi_os_hr_matched_m"] == 3


def test_tipping_point_shifts_ecog_toward_worse():
    c = _cohort()
    cfg = _cfg(tipping_point={"variables": {"ecog": ["ecog"]}, "deltas": [4.0], "m": 2, "maxit": 1, "propagate": False})
    imp = imputation.impute_cohort(c, cfg)
    mnar, notes = imputation.tipping_imputations(c, imp)
    assert set(mnar[".scenario"]) == {"ecog"} and set(mnar[".imp"]) == {1, 2} and not notes
    miss = c["ecog"].isna().to_numpy()
    mar = np.mean([g["ecog"].to_numpy()[miss].mean() for _, g in imp.completed[imp.completed[".imp"] <= 2]
                   .groupby(".imp")])
    shifted = np.mean([g["ecog"].to_numpy()[miss].mean() for _, g in mnar.groupby(".imp")])
    assert shifted > mar + 0.3
    tp = survival_mi.tipping_point(survival_mi.tipping_cohorts(c, mnar, cfg.analysis_columns()), SPEC, seed=1)
    assert list(tp.columns[:3]) == ["scenario", "delta", "m"] and tp["m"].iloc[0] == 2 and tp["hr"].iloc[0] > 0


def test_centre_spec_table_and_forest():
    s = centres.matching_spec(SPEC, centres.CentreConfig(ps_model="fixed_effect"))
    assert s["covariates"][-1] == "center_id" and "center_id" in s["categorical"] and s["exact"] == []
    s = centres.matching_spec(SPEC, centres.CentreConfig(ps_model="exact"))
    assert s["exact"] == ["center_id"] and "center_id" not in SPEC["covariates"]  # the params are not changed
    with pytest.raises(ValueError, match="ps_model"):
        centres.CentreConfig(ps_model="random")
    c = _cohort()
    t = centres.centre_table(c).set_index("centre")
    for k in ("C1", "C2", "C3"):
        g = c[c["center_id"] == k]
        assert t.loc[k, "n"] == len(g) and t.loc[k, "os_events"] == g["os_event"].sum()
        assert t.loc[k, "haic_pct"] == pytest.approx(100 * (g["arm"] == ARM_HAIC).mean())
    assert t.loc["All centres", "n"] == len(c)
    per = pd.DataFrame({"centre": ["C1", "C2", "C3", "C4"], "estimate": [-0.5, -0.2, -0.8, np.nan],
                        "std_error": [0.3, 0.25, 0.4, np.nan]})
    est, summary = centres.forest(per, "REML")
    ref = meta.random_effects([-0.5, -0.2, -0.8], [0.09, 0.0625, 0.16], "REML")
    assert summary["hr"] == pytest.approx(np.exp(ref.estimate)) and summary["i2"] == pytest.approx(ref.i2)
    assert summary["centres_left_out"] == ["C4"] and len(est) == 3


def test_manuscript_variables_of_the_imputation_block():
    from analysis_utils.reporting.manuscript import variables_imputation as vi
    results = {"imputation": {"enabled": True, "m": 20, "maxit": 5, "donors": 5, "n_patients_any_missing": 283,
                              "n_cohort": 872, "n_complete_cases": 589},
               "survival": {"mi_os_hr_matched": 0.6, "mi_os_hr_matched_lower": 0.5, "mi_os_hr_matched_upper": 0.72,
                            "mi_os_hr_matched_p": 0.0001, "mi_os_hr_matched_fmi": 0.21,
                            "mi_tipping_main_significant": True, "mi_tipping_ecog_delta": None,
                            "mi_tipping_ecog_max_delta": 3.0, "mi_tipping_ecog_hr_at_max": 0.63,
                            "mi_tipping_ecog_lower_at_max": 0.52, "mi_tipping_ecog_upper_at_max": 0.76,
                            "mi_tipping_child_pugh_delta": 2.0, "mi_tipping_child_pugh_max_delta": 3.0,
                            "mi_tipping_child_pugh_hr_at_max": 0.8, "mi_tipping_child_pugh_lower_at_max": 0.6,
                            "mi_tipping_child_pugh_upper_at_max": 1.05}}
    params = {"imputation": {"tipping_point": {"variables": {"ecog": ["ecog"], "child_pugh": ["cp"]},
                                               "deltas": [1.0, 2.0, 3.0]}}, "centres": {"ps_model": "exact"}}
    missing: list[str] = []
    v = vi.build(results, params, missing)
    assert v["m"] == "20" and v["n_any_missing"] == "283 of 872 (32.5%)"
    assert v["os_hr_matched"].startswith("0.60 (95% CI 0.50") and v["tipping_deltas"] == "1, 2, and 3"
    assert "still excluded 1 with ECOG performance status imputed worse by up to 3" in v["tipping"]
    assert "included 1 once the Child-Pugh component points were imputed worse by 2" in v["tipping"]
    assert v["centre_ps"].startswith("Patients were matched within centre")
    assert any("cc_os_hr_matched" in m for m in missing)  # absent keys are reported, not typed
    assert vi.build({"imputation": {"enabled": False}}, params, []) == {}
