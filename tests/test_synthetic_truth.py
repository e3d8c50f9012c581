"""The generator's data-generating mechanism and its truth (analysis_utils.synthetic: timing, outcomes, dgm,
estimands, missingness, scenarios; docs/methods/synthetic-cohort.md, sections 4, 5, 8 and 10).

Hand cases for the HAIC initiation process, the Cox estimator of the truth and the strategies; properties that make
the clone-censor-weight estimand identified (HAIC initiation depends on covariates, centre and time only; outcomes
are Markov in HAIC status); the truth against a replicate's own potential outcomes; the knobs of the simulation
scenarios. Mechanisms with truth_n = 20 000 keep the tests fast where the truth's precision does not matter.
"""
from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis_utils.stats.cox import cox_ph
from analysis_utils.synthetic import SCENARIOS, scenario_config, true_values
from analysis_utils.synthetic.cohort import simulate_core
from analysis_utils.synthetic.config import resolve_config
from analysis_utils.synthetic.dgm import mechanism
from analysis_utils.synthetic.estimands import cox_hr_binary, strategy_switch_days, survival_summary
from analysis_utils.synthetic.missingness import PATIENT_MISSING_RATES
from analysis_utils.synthetic.timing import (HaicProcess, calibrate_haic, haic_timing_shares, sample_haic_day,
                                             systemic_delay)

SYNTHETIC = Path(__file__).resolve().parents[1] / "src" / "analysis_utils" / "synthetic"
FAST = {"truth_n": 20000}


def core(**cfg):
    return simulate_core(resolve_config({**FAST, **cfg}))


# ----------------------------------------------------------------------------------------------------------
# HAIC initiation process (timing.py)
# ----------------------------------------------------------------------------------------------------------
def test_haic_process_hand_case_geometric_days() -> None:
    # no HAIC at day 0; one window 1-10 with daily hazard expit(0) = 1/2: P(H = d) = 2^-d for d <= 10,
    # P(never) = 2^-10; continuation from day 4: P(H = 4 + k | H >= 4) = 2^-(k+1)
    proc = HaicProcess(a0=-math.inf, starts=(1,), ends=(10,), alphas=(0.0,))
    h = sample_haic_day(proc, np.zeros(400_000), np.random.default_rng(3))
    for d in (1, 2, 3, 5):
        assert (h == d).mean() == pytest.approx(0.5 ** d, abs=4 * math.sqrt(0.5 ** d / 400_000))
    assert (h == np.inf).mean() == pytest.approx(0.5 ** 10, abs=0.0005)
    assert np.all(np.isin(h[np.isfinite(h)], np.arange(1, 11)))
    later = sample_haic_day(proc, np.zeros(400_000), np.random.default_rng(4), from_day=4)
    assert later[np.isfinite(later)].min() == 4
    assert (later == 4).mean() == pytest.approx(0.5, abs=0.004)
    assert (later == 6).mean() == pytest.approx(0.125, abs=0.003)


def test_haic_day_if_not_day0_uses_the_same_draws_and_continues_the_process() -> None:
    """The day had HAIC not started on day 0: the natural day for everyone not treated on day 0, for the others the
    continuation from day 1 (same exponential draw), and no draw more, so the natural days are unchanged."""
    proc = HaicProcess(a0=0.0, starts=(1,), ends=(10,), alphas=(0.0,))      # P(day 0) = 1/2, then 2^-d
    n = 400_000
    h, later = sample_haic_day(proc, np.zeros(n), np.random.default_rng(3), with_day_if_not_day0=True)
    assert np.array_equal(h, sample_haic_day(proc, np.zeros(n), np.random.default_rng(3)))
    assert (h == 0).mean() == pytest.approx(0.5, abs=0.003)
    assert np.array_equal(later[h > 0], h[h > 0]) and np.all(later >= 1)
    day0 = later[h == 0]                                   # the continuation for those treated on day 0
    for d in (1, 2, 3):
        assert (day0 == d).mean() == pytest.approx(0.5 ** d, abs=4 * math.sqrt(0.5 ** d / day0.size))
    assert (day0 == np.inf).mean() == pytest.approx(0.5 ** 10, abs=0.0006)


def test_haic_process_calibrates_to_the_configured_shares() -> None:
    cfg = resolve_config({})
    lp = np.random.default_rng(1).normal(0.0, 0.9, 100_000)
    proc = calibrate_haic(cfg, lp)
    shares = haic_timing_shares(proc, lp)
    late = cfg["haic_share"] * (1 - cfg["haic_first_share"])
    assert shares["day_0"] == pytest.approx(cfg["haic_share"] * cfg["haic_first_share"], abs=1e-9)
    assert shares["days_1_14"] == pytest.approx(late * 0.30, abs=1e-9)
    assert shares["days_15_90"] == pytest.approx(late * 0.50, abs=1e-9)
    assert shares["days_91_180"] == pytest.approx(late * 0.20, abs=1e-9)
    h = sample_haic_day(proc, lp, np.random.default_rng(2))
    assert (h == 0).mean() == pytest.approx(shares["day_0"], abs=0.006)
    assert ((h >= 15) & (h <= 90)).mean() == pytest.approx(shares["days_15_90"], abs=0.004)
    # the hazard rises with the linear predictor (confounding by indication)
    assert (h[lp > 0.5] == 0).mean() > (h[lp < -0.5] == 0).mean() + 0.1


def test_systemic_delay_windows() -> None:
    cfg = resolve_config({"systemic_delay_windows_days": [0, 30], "systemic_delay_shares": [0.25, 0.75]})
    d = systemic_delay(cfg, 100_000, np.random.default_rng(5))
    assert (d == 0).mean() == pytest.approx(0.25, abs=0.006)
    assert d.min() == 0 and d.max() == 30 and (d[d > 0] >= 1).all()
    assert (d == 17).mean() == pytest.approx(0.75 / 30, abs=0.002)      # uniform within 1-30


def test_haic_initiation_does_not_depend_on_the_outcome_given_covariates() -> None:
    """Identification of clone-censor-weight: given the covariates and the centre (the propensity of HAIC at T0,
    `ps`), HAIC at T0 is independent of the person's latent survival (binned never-HAIC OS time)."""
    p = core(n_records=20000, n_centers=14).persons
    resid = (p["haic_natural_day"] == 0).astype(float) - p["ps"]
    bins = pd.qcut(p["os_if_tkis_p_months"], 5, labels=False)
    means = resid.groupby(bins).mean()
    assert np.abs(means).max() < 4 * math.sqrt(0.25 / (len(p) / 5))
    # whereas the outcome does depend on the covariates HAIC depends on (confounding)
    assert p.groupby(p["haic_natural_day"] == 0)["eta_os"].mean().diff().iloc[-1] < -0.1


# ----------------------------------------------------------------------------------------------------------
# Outcomes Markov in HAIC status, strategies and potential outcomes
# ----------------------------------------------------------------------------------------------------------
def test_strategy_switch_days_hand_case() -> None:
    h = np.array([0.0, 30.0, 90.0, 91.0, 150.0, np.inf])
    after = np.array([100.0, np.inf, 120.0, 200.0, 95.0, 130.0])
    sw = strategy_switch_days(h, after, 90)
    np.testing.assert_array_equal(sw["A"], [0, 30, 90, 90, 90, 90])
    np.testing.assert_array_equal(sw["B"], [100, np.inf, 120, 91, 150, np.inf])
    np.testing.assert_array_equal(sw["B_no_haic_after_grace"], [np.inf, np.inf, np.inf, 91, 150, np.inf])


def test_potential_outcomes_are_ordered_and_consistent_with_the_observed() -> None:
    p = core(n_records=3000).persons
    a, b = p["os_if_strategy_a_months"], p["os_if_strategy_b_months"]
    # HR < 1 and HAIC starts no later under always than A, under A than B, under B than never
    assert (p["os_if_haic_months"] >= a - 1e-9).all() and (a >= b - 1e-9).all()
    assert (b >= p["os_if_tkis_p_months"] - 1e-9).all()
    # consistency: a person whose natural HAIC day is within the grace period lives under A as observed, one
    # whose natural day is beyond it (or never) lives under B as observed
    within = p["haic_natural_day"] <= 90
    np.testing.assert_allclose(a[within], p.loc[within, "os_latent_months"])
    np.testing.assert_allclose(b[~within], p.loc[~within, "os_latent_months"])
    # HAIC is received only by the living: nobody dies on or before a HAIC day they received
    got = p["first_haic_day"].notna()
    assert (p.loc[got, "first_haic_day"] < p.loc[got, "end_day"]).all()
    assert (p["immortal_time_switch"] == (np.isfinite(p["haic_natural_day"]) & ~got)).all()


def test_deaths_between_the_first_component_and_the_systemic_start() -> None:
    p = core(n_records=3000).persons
    haic_first = p["haic_natural_day"] == 0
    no_systemic = p["tki_start_day"].isna() & p["pd1_start_day"].isna()
    died_between = haic_first & no_systemic & p["dead"] & (p["death_day"] <= p["systemic_start_day"])
    assert died_between.sum() >= 3
    assert (p.loc[died_between, "n_haic_cycles"] >= 1).all()
    # systemic-first persons always have their first dose at T0
    sys_first = ~haic_first
    assert (np.fmin(p.loc[sys_first, "tki_start_day"], p.loc[sys_first, "pd1_start_day"]) == 0).all()


def test_survival_summary_and_cox_hand_cases() -> None:
    # times in months 1, 2, 3, 4 -> event days ceil(t x 30.4375) = 31, 61, 92, 122 -> months 1.0185, 2.0041, ...
    s = survival_summary(np.array([1.0, 2.0, 3.0, 4.0]), [2.5], tau=3.0)
    assert s["S_2.5"] == 0.5
    assert s["RMST_3"] == pytest.approx((31 + 61) / 30.4375 / 4 + 2 * 3.0 / 4)
    assert s["median"] == pytest.approx(61 / 30.4375)
    rng = np.random.default_rng(9)
    t1, t0 = rng.exponential(2.0, 300), rng.exponential(1.0, 300)
    hr = cox_hr_binary(t1, t0, tau=2.5)
    df = pd.DataFrame({"t": np.minimum(np.r_[t1, t0], 2.5), "e": (np.r_[t1, t0] <= 2.5).astype(int),
                       "g": np.r_[np.ones(300), np.zeros(300)]})
    ref = cox_ph(df, "t", "e", ["g"], ties="breslow")     # R coxph; no ties in continuous time
    assert hr == pytest.approx(float(ref["hr"].iloc[0]), rel=1e-6)


def test_truth_is_computed_without_the_pipeline() -> None:
    """The truth modules import nothing from study/ or stats/ (plain numpy on potential times)."""
    for name in ("estimands", "dgm", "outcomes", "timing", "population", "missingness"):
        tree = ast.parse((SYNTHETIC / f"{name}.py").read_text(encoding="utf-8"))
        mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        mods |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not {m for m in mods if m.startswith(("analysis_utils.study", "analysis_utils.stats"))}, name


# ----------------------------------------------------------------------------------------------------------
# The truth
# ----------------------------------------------------------------------------------------------------------
def test_default_truth_orders_the_strategies() -> None:
    t = true_values({})
    assert t["n_potential_outcomes"] >= 200_000 and t["grace_days"] == 90
    for ep in ("os", "pfs"):
        for key in ("S_12", "S_24", "RMST_24"):
            vals = [t[ep][s][key] for s in ("always", "A", "B", "never")]
            assert vals == sorted(vals, reverse=True), (ep, key, vals)
        c = t[ep]["A_vs_B"]
        assert c["S_12_difference"] > 0.05 and c["RMST_24_difference"] > 1.0
        assert c["S_12_difference_mcse"] < 0.002
        assert t[ep]["A_vs_B"]["S_24_ratio"] == pytest.approx(t[ep]["A"]["S_24"] / t[ep]["B"]["S_24"])
    # non-collapsibility: the marginal HR of always versus never lies between the conditional HR and 1
    assert 0.62 < t["os"]["always_vs_never"]["cox_hr_tau"] < 1
    # calibration: median OS under never-HAIC is median_os_control_months
    assert t["os"]["never"]["median"] == pytest.approx(12.0, abs=0.05)


def test_null_scenario_truth_is_exactly_null() -> None:
    t = true_values({**scenario_config("null"), **FAST})
    for ep in ("os", "pfs"):
        c = t[ep]["A_vs_B"]
        assert c["S_12_difference"] == 0 and c["S_24_difference"] == 0 and c["RMST_24_difference"] == 0
        assert c["S_12_ratio"] == 1 and c["cox_hr_tau"] == pytest.approx(1.0, abs=1e-9)


def test_truth_agrees_with_a_replicates_potential_outcomes() -> None:
    """S_A(12), S_B(12) and the RMST difference of the truth cohort against those of one replicate's persons (own
    potential outcomes, independent draws): equal within 4 Monte Carlo SEs."""
    cfg = {"n_records": 6000, "n_centers": 14}
    truth = true_values(cfg)["os"]
    p = simulate_core(resolve_config({**cfg, "replicate_seed": 77})).persons
    n = len(p)
    for col, strat in (("os_if_strategy_a_months", "A"), ("os_if_strategy_b_months", "B")):
        s12 = float((np.ceil(p[col] * 30.4375) / 30.4375 > 12).mean())
        assert abs(s12 - truth[strat]["S_12"]) < 4 * math.sqrt(0.25 / n), strat
    d = np.minimum(p["os_if_strategy_a_months"], 24) - np.minimum(p["os_if_strategy_b_months"], 24)
    assert abs(d.mean() - truth["A_vs_B"]["RMST_24_difference"]) < 4 * d.std() / math.sqrt(n) + 0.01


def test_replicate_seed_changes_the_persons_not_the_mechanism() -> None:
    a = simulate_core(resolve_config({**FAST, "replicate_seed": 1}))
    b = simulate_core(resolve_config({**FAST, "replicate_seed": 2}))
    assert a.mech is b.mech
    assert [c.haic_logit for c in a.mech.centres] == [c.haic_logit for c in b.mech.centres]
    assert not a.persons["age"].equals(b.persons["age"])
    # replicate_seed null is replicate_seed = seed
    c = simulate_core(resolve_config({**FAST}))
    d = simulate_core(resolve_config({**FAST, "replicate_seed": resolve_config({})["seed"]}))
    pd.testing.assert_frame_equal(c.persons, d.persons)


# ----------------------------------------------------------------------------------------------------------
# Knobs of the scenarios
# ----------------------------------------------------------------------------------------------------------
def _smd_age(p: pd.DataFrame) -> float:
    t = p["haic_natural_day"] == 0
    a, b = p.loc[t, "age"], p.loc[~t, "age"]
    return float((a.mean() - b.mean()) / math.sqrt((a.var() + b.var()) / 2))


def test_confounding_strength_scales_the_treatment_assignment() -> None:
    smd = {s: _smd_age(core(n_records=8000, confounding_strength=s).persons) for s in (0.0, 1.0, 2.0)}
    assert abs(smd[0.0]) < 0.08
    assert smd[2.0] < smd[1.0] < -0.15


def test_centre_effect_knobs() -> None:
    none = mechanism(resolve_config({**FAST, "centre_outcome_sd": 0.0}))
    assert all(c.outcome_loghr == 0 for c in none.centres)
    tied = mechanism(resolve_config({**FAST, "centre_outcome_sd": 0.3, "centre_outcome_haic_correlation": 1.0,
                                     "centre_haic_sd": 0.5}))
    np.testing.assert_allclose([c.outcome_loghr for c in tied.centres],
                               [0.3 * c.haic_logit / 0.5 for c in tied.centres])
    # the knobs change nothing else about the centres
    assert [c.center_id + c.date_format for c in none.centres] == [c.center_id + c.date_format for c in tied.centres]


@pytest.mark.parametrize("mechanism_name", ["mcar", "mar", "mnar"])
def test_missingness_mechanisms(mechanism_name: str) -> None:
    c = core(n_records=20000, missing_rate=0.15, missing_mechanism=mechanism_name)
    p, blank = c.persons, c.missing["ecog"]
    base = PATIENT_MISSING_RATES["ecog"] * 3
    assert blank.mean() == pytest.approx(base, abs=0.015)            # the mechanisms keep the rate
    worse = p["ecog"].to_numpy() >= 1
    ehs = p["ehs"].to_numpy(bool)
    gap_value = blank[worse].mean() - blank[~worse].mean()
    gap_ehs = blank[ehs].mean() - blank[~ehs].mean()
    if mechanism_name == "mcar":
        assert abs(gap_value) < 0.02 and abs(gap_ehs) < 0.02
    elif mechanism_name == "mar":
        assert gap_ehs > 0.04
        # given the observed drivers (EHS, arm at T0), the value itself does not matter
        arm = (p["haic_natural_day"] == 0).to_numpy()
        for e in (False, True):
            for a in (False, True):
                m = (ehs == e) & (arm == a)
                assert abs(blank[m & worse].mean() - blank[m & ~worse].mean()) < 0.03
    else:
        assert gap_value > 0.05


def test_scenarios_resolve_and_change_their_keys() -> None:
    for name, keys in SCENARIOS.items():
        cfg = resolve_config(scenario_config(name))
        for k, v in keys.items():
            assert cfg[k] == pytest.approx(v) if not isinstance(v, str) else cfg[k] == v
    with pytest.raises(ValueError, match="unknown scenario"):
        scenario_config("nope")


def test_imaging_schedule_by_current_haic_status() -> None:
    for haic_days, control_days in ((42, 56), (42, 84), (56, 56)):
        c = core(n_records=3000, imaging_interval_days_haic=haic_days, imaging_interval_days_control=control_days)
        p, first = c.persons, c.imaging.visits[:, 0]
        haic_first = (p["haic_natural_day"] == 0).to_numpy()
        never = p["first_haic_day"].isna().to_numpy()
        ok = np.isfinite(first)
        assert np.median(first[ok & haic_first]) == pytest.approx(haic_days, abs=2)
        assert np.median(first[ok & never]) == pytest.approx(control_days, abs=2)
        gaps = np.diff(c.imaging.visits, axis=1)[:, :3]
        assert np.nanmedian(gaps[haic_first]) == pytest.approx(haic_days, abs=4)
        assert np.nanmedian(gaps[never]) == pytest.approx(control_days, abs=4)
