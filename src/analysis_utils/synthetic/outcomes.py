"""Outcomes stage: natural treatment timing, latent death and progression times, censoring and the latent response.

Survival (cal. efficacy): Weibull proportional hazards from T0, H(t) = (t / scale)^shape * exp(eta), with
eta = OS_COEF . x + the centre's outcome effect (age, ECOG, ALBI, Vp1-3/Vp4, EHS, log10 AFP, size, multinodular;
centre_outcome_sd). HAIC multiplies the hazard by true_hr_os from the day it starts on: the hazard depends on the
CURRENT HAIC status only (Markov in HAIC), so each person's time under any HAIC start day s follows from one latent
Exp(1) draw by inverting the cumulative hazard (weibull_time_with_switch), and the potential outcomes under every
treatment strategy of the truth (estimands.py) are exact. The baseline scales are fixed per mechanism (dgm.py): the
OS scale so that the median OS under never-HAIC of the calibration cohort is median_os_control_months (12), the
progression scale so that the median of min(progression, death) under never-HAIC is median_pfs_control_months (6).
With HR 0.62 the always-HAIC median is ~17-18 months (cal. efficacy: 12 vs 17). Latent progression: same
construction with PFS_COEF and true_hr_pfs. Death and progression are linked by a Gaussian copula (COPULA_RHO = 0.65).

Treatment actually received (timing.py): the natural HAIC day H is received if the person is alive and under
follow-up on day H (HAIC on day 0 always is: it defines T0); otherwise the person is recorded without HAIC
(immortal_time_switch in the truth). The systemic start of a HAIC-first person is received if before death or loss.

Censoring: administrative at data_cutoff (last contact 0-45 days before), and loss to follow-up: a random share of
persons (solved per mechanism so that about `loss_to_follow_up` of persons are lost) has a loss day uniform on 31-730
days after T0 and is lost if alive and not administratively censored by then; independent of covariates and
outcomes (non-informative).

Response (cal. efficacy): latent score R = 0.75 * W + RESPONSE_COEF . x + 0.55 * noise, W the normal score of the
progression copula (responders live longer). Persons who receive HAIC before their latent progression form the
HAIC response group; within each group the top quantiles of R are the latent categories (nested: RECIST CR within
mRECIST CR within RECIST responders within mRECIST responders; LATENT_RESPONSE_RATES). imaging.py turns the
categories into lesion measurements.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
from scipy.special import log_ndtr

from analysis_utils.synthetic.config import (ARM_DOUBLET, ARM_TRIPLE, COPULA_RHO, DAYS_PER_MONTH,
                                             LATENT_RESPONSE_RATES, OS_COEF, PFS_COEF, RESPONSE_COEF)
from analysis_utils.synthetic.population import Centre, day_diff, index_days
from analysis_utils.synthetic.timing import (HaicProcess, expit, haic_linear_predictor, linear_predictor,
                                             model_features, sample_haic_day, systemic_delay)


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
    if hr == 1.0:       # no effect: exactly the untreated time (the null scenario's potential outcomes are equal)
        return t_untreated
    return np.where(base <= h_s, t_untreated, t_treated)


def weibull_median(scale: float, shape: float) -> float:
    """Median of S(t) = exp(-(t/scale)^shape): scale * ln(2)^(1/shape)."""
    return scale * math.log(2.0) ** (1.0 / shape)


@dataclass
class Latent:
    """A cohort's latent outcome ingredients: Exp(1) draws of death and progression (Gaussian copula), the normal
    score of progression, and the linear predictors (covariates + centre effect)."""
    e_os: np.ndarray
    e_pfs: np.ndarray
    w_pfs: np.ndarray
    eta_os: np.ndarray
    eta_pfs: np.ndarray


def latent_draws(x: dict[str, np.ndarray], centre_effect: np.ndarray, rng: np.random.Generator) -> Latent:
    """Copula draws (rho = COPULA_RHO; larger normal score -> longer time) and the linear predictors."""
    n = len(centre_effect)
    z1, z2 = rng.normal(size=n), rng.normal(size=n)
    w_os = COPULA_RHO * z1 + math.sqrt(1 - COPULA_RHO ** 2) * z2
    return Latent(e_os=-log_ndtr(-w_os), e_pfs=-log_ndtr(-z1), w_pfs=z1,
                  eta_os=linear_predictor(x, OS_COEF) + centre_effect,
                  eta_pfs=linear_predictor(x, PFS_COEF) + centre_effect)


def potential_months(cfg: dict, lat: Latent, scales: tuple[float, float], switch_days: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Latent (death, progression) times in months from T0 when HAIC starts on `switch_days` (inf = never)."""
    sw = np.asarray(switch_days, float) / DAYS_PER_MONTH
    return (weibull_time_with_switch(lat.e_os, lat.eta_os, scales[0], cfg["weibull_shape_os"], cfg["true_hr_os"], sw),
            weibull_time_with_switch(lat.e_pfs, lat.eta_pfs, scales[1], cfg["weibull_shape_pfs"], cfg["true_hr_pfs"],
                                     sw))


def to_days(months: np.ndarray) -> np.ndarray:
    """Event day of a continuous time in months: ceil(t x 30.4375) (an event during day d is dated on day d)."""
    return np.ceil(np.asarray(months, float) * DAYS_PER_MONTH)


# ----------------------------------------------------------------------------------------------------------
# Treatment and outcomes of every person of a cohort
# ----------------------------------------------------------------------------------------------------------
def centre_arrays(p: pd.DataFrame, centres: list[Centre]) -> tuple[np.ndarray, np.ndarray]:
    """Per person: the centre's HAIC log-odds shift and its outcome log-hazard effect."""
    idx = p["centre_idx"].to_numpy()
    return (np.array([c.haic_logit for c in centres])[idx], np.array([c.outcome_loghr for c in centres])[idx])


class MechanismLike(Protocol):
    """What simulate_outcomes needs of the mechanism (dgm.Mechanism)."""
    haic: HaicProcess
    scale_os: float
    scale_pfs: float
    loss_prone_share: float


def simulate_outcomes(cfg: dict, p: pd.DataFrame, centres: list[Centre], mech: MechanismLike,
                      rng: np.random.Generator) -> pd.DataFrame:
    """Natural HAIC day and systemic start (timing.py), latent death / progression given the HAIC actually
    received, censoring, the potential outcomes of the truth and the latent response: a frame of new columns
    aligned with `p`."""
    n = len(p)
    x = model_features(p)
    haic_shift, outcome_shift = centre_arrays(p, centres)
    lp = haic_linear_predictor(cfg, x, haic_shift)
    h_nat, h_not_t0 = sample_haic_day(mech.haic, lp, rng, with_day_if_not_day0=True)
    sys_day = np.where(h_nat == 0, systemic_delay(cfg, n, rng), 0)
    lat = latent_draws(x, outcome_shift, rng)
    scales = (mech.scale_os, mech.scale_pfs)
    t_os, t_prog = potential_months(cfg, lat, scales, h_nat)

    # censoring (days from T0): administrative at the cut-off (last contact 0-45 days before), loss to follow-up
    admin = np.maximum(day_diff(np.datetime64(cfg["data_cutoff"]), index_days(p)) - rng.integers(0, 46, n), 1)
    prone = rng.random(n) < mech.loss_prone_share
    loss_day = rng.integers(31, 731, n)
    death_day = to_days(t_os).astype(int)
    prog_day = to_days(t_prog).astype(int)
    lost = prone & (loss_day < np.minimum(death_day, admin))
    censor_day = np.where(lost, loss_day, admin)
    dead = death_day <= censor_day
    end_day = np.where(dead, death_day, censor_day)
    received = (h_nat == 0) | (np.isfinite(h_nat) & (h_nat < end_day))
    first_haic = np.where(received, h_nat, np.nan)

    # potential outcomes of the truth strategies (estimands.py): B continues the natural process after G;
    # "if_not_t0": no HAIC at T0, the natural process from day 1 on (the TKIs-P arm at T0 and its later HAIC)
    grace = cfg["truth_grace_days"]
    h_after = sample_haic_day(mech.haic, lp, rng, from_day=grace + 1)
    potential = {"if_tkis_p": np.full(n, np.inf), "if_haic": np.zeros(n),
                 "if_strategy_a": np.minimum(h_nat, grace), "if_strategy_b": np.where(h_nat > grace, h_nat, h_after),
                 "if_not_t0": h_not_t0}
    cols: dict[str, np.ndarray] = {}
    for name, switch in potential.items():
        os_, prog = potential_months(cfg, lat, scales, switch)
        cols[f"os_{name}_months"] = np.round(os_, 3)
        cols[f"progression_{name}_months"] = np.round(prog, 3)

    # latent response: categories by quantiles within the response group (HAIC received before progression)
    group = np.where(received & (np.nan_to_num(first_haic, nan=np.inf) < prog_day), ARM_TRIPLE, ARM_DOUBLET)
    score = 0.75 * lat.w_pfs + linear_predictor(x, RESPONSE_COEF) + 0.55 * rng.normal(size=n)
    cat_r, cat_m = _response_categories(score, group)

    cols.update({
        "haic_lp": np.round(lp, 4), "ps": np.round(expit(mech.haic.a0 + lp), 4),    # P(HAIC at T0 | x, centre)
        "haic_natural_day": h_nat, "haic_received": received, "first_haic_day": first_haic,
        "systemic_start_day": sys_day, "intended_arm": np.where(np.isfinite(h_nat), ARM_TRIPLE, ARM_DOUBLET),
        "realised_arm": np.where(received, ARM_TRIPLE, ARM_DOUBLET),
        "arm_t0": np.where(h_nat == 0, ARM_TRIPLE, ARM_DOUBLET),
        "immortal_time_switch": np.isfinite(h_nat) & ~received,
        "eta_os": np.round(lat.eta_os, 4), "eta_pfs": np.round(lat.eta_pfs, 4),
        "os_latent_months": np.round(t_os, 3), "progression_latent_months": np.round(t_prog, 3),
        "death_day": death_day, "prog_day": prog_day, "censor_day": censor_day, "end_day": end_day, "dead": dead,
        # the censoring day had the person not died (independent of every outcome): censors potential outcomes
        "censor_day_if_alive": np.where(prone & (loss_day < admin), loss_day, admin),
        "lost": lost & ~dead, "response_group": group, "latent_response_recist": cat_r,
        "latent_response_mrecist": cat_m})
    return pd.DataFrame(cols, index=p.index)


def _response_categories(score: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nested latent categories by quantiles of the score within each response group."""
    n = len(score)
    cat_r = np.full(n, "SD", dtype=object)
    cat_m = np.full(n, "SD", dtype=object)
    for a, rates in LATENT_RESPONSE_RATES.items():
        m = group == a
        if not m.any():
            continue

        def q(share: float) -> float:
            return float(np.quantile(score[m], 1 - share))

        cat_m[m & (score > q(rates["mrecist_resp"]))] = "PR"
        cat_m[m & (score > q(rates["mrecist_cr"]))] = "CR"
        cat_r[m & (score > q(rates["recist_resp"]))] = "PR"
        cat_r[m & (score > q(rates["recist_cr"]))] = "CR"
    cat_m[cat_r == "CR"] = "CR"
    cat_m[(cat_r == "PR") & (cat_m == "SD")] = "PR"
    return cat_r, cat_m

