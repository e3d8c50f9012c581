"""Outcomes stage: latent death and progression times, the realised arm, censoring and the latent response.

Survival (cal. efficacy): Weibull proportional hazards, H(t) = (t / scale)^shape * exp(eta), eta = OS_COEF . x (age,
ECOG, ALBI, Vp1-3/Vp4, EHS, log10 AFP, size, multinodular). HAIC multiplies the hazard by true_hr_os from the first
HAIC on (time-varying when HAIC is after index). The baseline scale is solved by bisection so that the
COUNTERFACTUAL median OS (every person alive at the first scan, all under TKIs-P) equals median_os_control_months;
under HR 0.62 the counterfactual HAIC median is then ~17-18 months (cal. efficacy: 12 vs 17 months). The observed
arms are further apart (confounding, immortal time): that is the bias the pipeline must remove. Latent
progression: same construction with PFS_COEF and true_hr_pfs, scale solved so the counterfactual median of
min(progression, death) is median_pfs_control_months. Truth keeps both counterfactual times per person. Death and
progression are linked by a Gaussian copula (COPULA_RHO = 0.65). With a Weibull shape of 1.1 few progress before
the first scan: derived DCR ~90 % (triple) and ~83 % (doublet) against cal. efficacy 88 / 72 % (a lower doublet
DCR would need a shape < 1). IMMORTAL TIME: a person intended for HAIC after index who dies or progresses (latent)
before the planned HAIC date never receives HAIC and is in the TKIs-P arm (truth: immortal_time_switch).
Censoring: administrative at data_cutoff (last contact 0-45 days before), plus loss to follow-up for
`loss_to_follow_up` of persons, at a uniform 1-24 months while alive.

Response (cal. efficacy): latent score R = 0.75 * W + RESPONSE_COEF . x + 0.55 * noise, W the normal score of the
progression copula (responders live longer). Per realised arm the top quantiles of R are the latent categories
(nested: RECIST CR within mRECIST CR within RECIST responders within mRECIST responders; LATENT_RESPONSE_RATES).
imaging.py turns the categories into lesion measurements.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis_utils.synthetic.config import (ARM_DOUBLET, ARM_TRIPLE, COPULA_RHO, DAYS_PER_MONTH,
                                             LATENT_RESPONSE_RATES, OS_COEF, PFS_COEF, RESPONSE_COEF)
from analysis_utils.synthetic.population import Centre, day_diff, index_days
from analysis_utils.synthetic.treatment import assign_haic, bisect, linear_predictor, model_features


# ----------------------------------------------------------------------------------------------------------
# Weibull proportional hazards with a treatment switch
# ----------------------------------------------------------------------------------------------------------
def weibull_time_with_switch(e: np.ndarray, eta: np.ndarray, scale: float, shape: float, hr: float,
                             switch: np.ndarray) -> np.ndarray:
    """Invert H(t) = E for H(t) = (t/scale)^shape exp(eta), multiplied by `hr` from time `switch` on.

    For t < s: H = (t/scale)^k e^eta; for t >= s: H = e^eta [(s/scale)^k + hr ((t/scale)^k - (s/scale)^k)].
    `switch` = inf means never treated (plain Weibull PH), 0 means treated from time zero.
    """
    base = np.asarray(e, float) * np.exp(-np.asarray(eta, float))   # required baseline cumulative hazard
    s = np.asarray(switch, float)
    with np.errstate(over="ignore", invalid="ignore"):
        h_s = np.where(np.isinf(s), np.inf, (np.maximum(s, 0.0) / scale) ** shape)
        t_untreated = scale * base ** (1.0 / shape)
        t_treated = scale * (h_s + (base - h_s) / hr) ** (1.0 / shape)
    return np.where(base <= h_s, t_untreated, t_treated)


def weibull_median(scale: float, shape: float) -> float:
    """Median of S(t) = exp(-(t/scale)^shape): scale * ln(2)^(1/shape)."""
    return scale * math.log(2.0) ** (1.0 / shape)


def _normal_sf(z: np.ndarray) -> np.ndarray:
    """Standard normal survival function 0.5 erfc(z / sqrt 2) (math.erfc; avoids importing scipy.stats)."""
    return np.array([0.5 * math.erfc(v / math.sqrt(2.0)) for v in np.asarray(z, float)])


# ----------------------------------------------------------------------------------------------------------
# Treatment and outcomes of every person
# ----------------------------------------------------------------------------------------------------------
def simulate_outcomes(cfg: dict, p: pd.DataFrame, centres: list[Centre], rng: np.random.Generator) -> dict:
    """Latent OS/progression (Weibull PH with HAIC switch) given the intended arm and HAIC timing
    (treatment.assign_haic), realised arm, censoring and latent response; adds their columns to `p`. Returns the
    solved model constants {"assign_intercept", "scale_os", "scale_pfs"}."""
    n = len(p)
    x = model_features(p)
    first_scan_day = 42 + rng.integers(-7, 8, n)   # first post-baseline scan, never skipped
    plan = assign_haic(cfg, p, centres, x, rng)    # intended arm and planned HAIC day, from the same stream
    a0, ps, intended, offset = plan.intercept, plan.propensity, plan.intended, plan.offset_days
    switch_m = np.where(intended, np.maximum(offset, 0) / DAYS_PER_MONTH, np.inf)

    z1 = rng.normal(size=n)
    z2 = rng.normal(size=n)
    w_pfs = z1
    w_os = COPULA_RHO * z1 + math.sqrt(1 - COPULA_RHO ** 2) * z2
    e_os = -np.log(_normal_sf(w_os))        # Exp(1); larger W -> longer time
    e_pfs = -np.log(_normal_sf(w_pfs))
    eta_os = linear_predictor(x, OS_COEF)
    eta_pfs = linear_predictor(x, PFS_COEF)
    k_os, k_pfs = cfg["weibull_shape_os"], cfg["weibull_shape_pfs"]
    hr_os, hr_pfs = cfg["true_hr_os"], cfg["true_hr_pfs"]

    def times(scale_os: float, scale_pfs: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t0_os = weibull_time_with_switch(e_os, eta_os, scale_os, k_os, 1.0, np.full(n, np.inf))
        t0_pfs = weibull_time_with_switch(e_pfs, eta_pfs, scale_pfs, k_pfs, 1.0, np.full(n, np.inf))
        realised = intended & (np.minimum(t0_os, t0_pfs) > switch_m)
        sw = np.where(realised, switch_m, np.inf)
        return (weibull_time_with_switch(e_os, eta_os, scale_os, k_os, hr_os, sw),
                weibull_time_with_switch(e_pfs, eta_pfs, scale_pfs, k_pfs, hr_pfs, sw), realised)

    # The control medians are COUNTERFACTUAL: every person alive at the first scan, all under TKIs-P
    # (no HAIC). The observed TKIs-P arm is then a little shorter-lived and the observed HAIC arm longer-lived
    # than the counterfactual medians (confounding by indication, immortal time).
    first_scan_m = first_scan_day / DAYS_PER_MONTH
    never = np.full(n, np.inf)
    always = np.zeros(n)

    def os_gap(s: float) -> float:
        t0 = weibull_time_with_switch(e_os, eta_os, s, k_os, 1.0, never)
        return float(np.median(t0[t0 > first_scan_m])) - cfg["median_os_control_months"]

    scale_os = bisect(os_gap, 0.5, 500.0)
    t0_os = weibull_time_with_switch(e_os, eta_os, scale_os, k_os, 1.0, never)
    analysable = t0_os > first_scan_m

    def pfs_gap(s: float) -> float:
        t0 = weibull_time_with_switch(e_pfs, eta_pfs, s, k_pfs, 1.0, never)
        return float(np.median(np.minimum(t0_os, t0)[analysable])) - cfg["median_pfs_control_months"]

    scale_pfs = bisect(pfs_gap, 0.2, 500.0)
    t_os, t_prog, realised = times(scale_os, scale_pfs)
    cf = {"os_if_tkis_p": t0_os,
          "os_if_haic": weibull_time_with_switch(e_os, eta_os, scale_os, k_os, hr_os, always),
          "progression_if_tkis_p": weibull_time_with_switch(e_pfs, eta_pfs, scale_pfs, k_pfs, 1.0, never),
          "progression_if_haic": weibull_time_with_switch(e_pfs, eta_pfs, scale_pfs, k_pfs, hr_pfs, always)}
    for k, v in cf.items():
        p[f"{k}_months"] = np.round(v, 3)

    # censoring (days from index): administrative at cutoff (last contact 0-45 days before), loss to follow-up
    cutoff = np.datetime64(cfg["data_cutoff"])
    admin = day_diff(cutoff, index_days(p)) - rng.integers(0, 46, n)
    death_day = np.ceil(t_os * DAYS_PER_MONTH).astype(int)
    prog_day = np.ceil(t_prog * DAYS_PER_MONTH).astype(int)
    haic_day = np.where(realised, np.maximum(offset, 0), 0)
    ltfu_day = rng.integers(31, 731, n) + haic_day
    candidates = np.flatnonzero((ltfu_day < np.minimum(death_day, admin)))
    n_lost = min(len(candidates), int(round(cfg["loss_to_follow_up"] * n)))
    lost = np.zeros(n, bool)
    lost[rng.choice(candidates, n_lost, replace=False)] = True
    censor_day = np.where(lost, ltfu_day, admin)
    dead = death_day <= censor_day
    end_day = np.where(dead, death_day, censor_day)

    # latent response score, nested categories by quantiles within the realised arm
    arm = np.where(realised, ARM_TRIPLE, ARM_DOUBLET)
    score = 0.75 * w_pfs + linear_predictor(x, RESPONSE_COEF) + 0.55 * rng.normal(size=n)
    cat_r = np.full(n, "SD", dtype=object)
    cat_m = np.full(n, "SD", dtype=object)
    for a, rates in LATENT_RESPONSE_RATES.items():
        m = arm == a
        if not m.any():
            continue
        q = lambda share: np.quantile(score[m], 1 - share)  # noqa: E731
        s = score
        cat_m[m & (s > q(rates["mrecist_resp"]))] = "PR"
        cat_m[m & (s > q(rates["mrecist_cr"]))] = "CR"
        cat_r[m & (s > q(rates["recist_resp"]))] = "PR"
        cat_r[m & (s > q(rates["recist_cr"]))] = "CR"
    cat_m[cat_r == "CR"] = "CR"
    cat_m[(cat_r == "PR") & (cat_m == "SD")] = "PR"

    p["ps"] = np.round(ps, 4)
    p["intended_arm"] = np.where(intended, ARM_TRIPLE, ARM_DOUBLET)
    p["realised_arm"] = arm
    p["immortal_time_switch"] = intended & ~realised
    p["haic_offset_days"] = np.where(intended, offset, np.nan)
    p["eta_os"] = np.round(eta_os, 4)
    p["eta_pfs"] = np.round(eta_pfs, 4)
    p["os_latent_months"] = np.round(t_os, 3)
    p["progression_latent_months"] = np.round(t_prog, 3)
    p["death_day"] = death_day
    p["prog_day"] = prog_day
    p["censor_day"] = censor_day
    p["end_day"] = end_day
    p["dead"] = dead
    p["first_scan_day"] = first_scan_day
    p["lost"] = lost & ~dead
    p["latent_response_recist"] = cat_r
    p["latent_response_mrecist"] = cat_m
    return {"assign_intercept": a0, "scale_os": scale_os, "scale_pfs": scale_pfs}
