"""Treatment stage: who is intended for HAIC and when, then each person's HAIC cycles and systemic courses.

Assignment (cal. baseline, confounding by indication): logit P(HAIC) = a0 + centre + ASSIGN_COEF . x (younger,
ECOG 0, no EHS, MVI, larger tumour, multinodular, better ALBI), a0 solved by bisection so the mean propensity is
haic_share; pre-matching SMDs ~0.1-0.3 (seed-dependent) and net favourable prognosis in the HAIC arm, so the crude
OS HR is below the adjusted one. First HAIC relative to index: 27 % after (half within 1-14 days, half 15-90), 73 %
at or before (half 0-14 days before, half 15-90). Whether an intended HAIC is received is decided by the outcomes
(outcomes.py: a person who dies or progresses before a post-index HAIC date stays in TKIs-P, immortal time).

HAIC cycles: 1..8 with P = 10/25/40/12/6/4/2/1 % (HAIC_CYCLE_P; median 3, IQR 2-3, cal. baseline), every 21 +- 3
days, stopped at latent progression, death or censoring; regimen per centre (FOLFOX mostly, cal. HAIC regimen).

Systemic therapy: index = first dose of either class; the other class starts 0-21 days later. TKI/anti-VEGF mix
lenvatinib 75, apatinib 10, donafenib 5, sorafenib 3, bevacizumab 7 %; PD-(L)1 camrelizumab 55, tislelizumab 25,
sintilimab 15, other 5 % (cal. baseline); bevacizumab pairs with atezolizumab or sintilimab. Courses stop at
progression (+0-28 days), death, an AE leading to discontinuation, or 10 % random stop; empty stop_date when still
on treatment at last contact. 30 % of progressors start a second-line TKI.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from analysis_utils.synthetic.config import (ARM_TRIPLE, ASSIGN_COEF, DAYS_PER_MONTH, DRUG_CLASS, HAIC_CYCLE_P,
                                             PD1_AGENTS, PD1_P, TKI_AGENTS, TKI_P)
from analysis_utils.synthetic.population import Centre, expit


# ----------------------------------------------------------------------------------------------------------
# Assignment: intended arm and planned HAIC timing
# ----------------------------------------------------------------------------------------------------------
def model_features(p: pd.DataFrame) -> dict[str, np.ndarray]:
    """Covariates used by the assignment, survival and response models (centred; shared with outcomes.py)."""
    ecog = p["ecog"].to_numpy()
    vp = p["vp_grade"].to_numpy()
    return {
        "age10": (p["age"].to_numpy() - 54.0) / 10.0,
        "ecog0": (ecog == 0).astype(float),
        "ecog1": (ecog == 1).astype(float),
        "ecog2": (ecog >= 2).astype(float),
        "albi": p["albi_score"].to_numpy() + 2.55,
        "mvi": p["mvi"].to_numpy().astype(float),
        "vp1_3": (p["mvi"].to_numpy() & (vp != "Vp4")).astype(float),
        "vp4": (vp == "Vp4").astype(float),
        "ehs": p["ehs"].to_numpy().astype(float),
        "log10_afp": np.log10(p["afp"].to_numpy()) - 2.7,
        "size_cm": p["max_tumour_size"].to_numpy() - 8.5,
        "log_size": np.log(p["max_tumour_size"].to_numpy() / 8.5),
        "multinodular": (p["tumour_number"].to_numpy() >= 4).astype(float),
    }


def linear_predictor(features: dict[str, np.ndarray], coef: dict[str, float]) -> np.ndarray:
    """Sum of coef[k] * features[k] over the keys of `coef`."""
    return sum(coef[k] * features[k] for k in coef)


def bisect(f: Callable[[float], float], lo: float, hi: float, n_iter: int = 50) -> float:
    """Root of an increasing function f on [lo, hi] by bisection (deterministic)."""
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        if f(mid) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass
class HaicPlan:
    """Intended treatment per person: HAIC propensity, intended arm, planned first-HAIC day (days from index)."""
    intercept: float             # a0, solved so that the mean propensity is haic_share
    propensity: np.ndarray
    intended: np.ndarray         # bool: intended for HAIC
    offset_days: np.ndarray      # planned first HAIC relative to index; 0 when not intended


def assign_haic(cfg: dict, p: pd.DataFrame, centres: list[Centre], x: dict[str, np.ndarray],
                rng: np.random.Generator) -> HaicPlan:
    """Intended HAIC by the logistic assignment model (confounding by indication) and the planned first-HAIC day:
    27 % after index (1-14 or 15-90 days), 73 % at or before it (0-14 or 15-90 days before)."""
    n = len(p)
    centre_shift = np.array([centres[i].haic_logit for i in p["centre_idx"]])
    lin = linear_predictor(x, ASSIGN_COEF) + centre_shift
    a0 = bisect(lambda a: float(expit(a + lin).mean()) - cfg["haic_share"], -10.0, 10.0)
    ps = expit(a0 + lin)
    intended = rng.random(n) < ps
    after = rng.random(n) < 0.27
    u = rng.random(n)
    offset = np.where(after, np.where(u < 0.5, rng.integers(1, 15, n), rng.integers(15, 91, n)),
                      np.where(u < 0.5, -rng.integers(0, 15, n), -rng.integers(15, 91, n)))
    offset = np.where(intended, offset, 0)
    return HaicPlan(a0, ps, intended, offset)


# ----------------------------------------------------------------------------------------------------------
# Per-person treatment histories (called by events.simulate_events)
# ----------------------------------------------------------------------------------------------------------
def person_haic(row: Any, centre: Centre, rng: np.random.Generator, out: list[dict]) -> list[int]:
    """HAIC cycles every 21 +- 3 days, stopped at latent progression, death or end of follow-up."""
    if row.realised_arm != ARM_TRIPLE:
        return []
    n_planned = int(rng.choice(np.arange(1, 9), p=HAIC_CYCLE_P))
    first = int(row.haic_offset_days)
    stop = min(row.prog_day, row.end_day)
    days = [first]
    for _ in range(n_planned - 1):
        nxt = days[-1] + 21 + int(rng.integers(-3, 4))
        if nxt >= stop:
            break
        days.append(nxt)
    regimen = centre.regimen if rng.random() < 0.85 else str(
        rng.choice(["folfox", "folfox_46h", "oxaliplatin_raltitrexed", "other"]))
    for k, d in enumerate(days, start=1):
        out.append({"person_id": row.person_id, "cycle_number": k, "day": d, "regimen": regimen})
    return days


def person_courses(row: Any, haic_days: list[int], pd_day: float, disc_day: float, export_day: int,
                   rng: np.random.Generator, out: list[dict]) -> int:
    """TKI/anti-VEGF and PD-(L)1 courses; index = first dose, other class within 0-21 days (cal. baseline mix).
    A course that would start after death or last contact is not written. Returns the number of drug
    classes started (2 = combination)."""
    crits = row.exclusion_criteria_built.split(";")
    tki = str(rng.choice(TKI_AGENTS, p=TKI_P))
    if tki == "bevacizumab":
        pd1 = "atezolizumab" if rng.random() < 0.5 else "sintilimab"
    elif tki == "apatinib" and rng.random() < 0.8:
        pd1 = "camrelizumab"
    else:
        pd1 = str(rng.choice(PD1_AGENTS, p=PD1_P))
    second = int(rng.integers(0, 22))
    tki_first = rng.random() < 0.55
    starts = {tki: 0 if tki_first else second, pd1: second if tki_first else 0}
    agents = [tki, pd1]
    if "no_combination" in crits:
        agents = [tki] if tki_first else [pd1]
    end = int(row.end_day)
    alive_at_end = not row.dead
    agents = [a for a in agents if starts[a] < end or starts[a] == 0]
    for agent in agents:
        start = starts[agent]
        stop_candidates = [end if row.dead else np.inf]
        if np.isfinite(pd_day):
            stop_candidates.append(pd_day + int(rng.integers(0, 29)))
        if np.isfinite(disc_day):
            stop_candidates.append(disc_day + int(rng.integers(0, 8)))
        if rng.random() < 0.10:
            stop_candidates.append(start + int(rng.integers(60, 400)))
        stop = float(min(stop_candidates))
        if "no_systemic_after_haic" in crits and haic_days:
            stop = float(min(stop, haic_days[0] - int(rng.integers(3, 15))))
            stop = max(stop, start + 7)
        elif haic_days and haic_days[0] > 0:   # protocol: >= 1 combination cycle after HAIC
            stop = max(stop, haic_days[0] + 21)
        if row.dead:
            stop = min(stop, end)
        ongoing = (not np.isfinite(stop)) or (alive_at_end and stop >= end) or stop > export_day
        stop_day = None if ongoing else int(max(stop, start))
        span = (stop_day if stop_day is not None else end) - start
        cls = DRUG_CLASS[agent]
        cycles = int(max(1, round(span / 21.0)) if cls in ("pd1", "pdl1", "anti_vegf")
                     else max(1, round(span / DAYS_PER_MONTH)))
        out.append({"person_id": row.person_id, "agent": agent, "drug_class": cls, "start_day": start,
                    "stop_day": stop_day, "cycles": cycles})
    if (np.isfinite(pd_day) and rng.random() < 0.30 and "no_combination" not in crits
            and "no_systemic_after_haic" not in crits):
        start2 = int(pd_day) + int(rng.integers(7, 36))
        if start2 < end:
            agent2 = "regorafenib" if rng.random() < 0.6 else "apatinib"
            out.append({"person_id": row.person_id, "agent": agent2, "drug_class": "tki", "start_day": start2,
                        "stop_day": None if alive_at_end else end, "cycles": max(1, round((end - start2) / 30.4))})
    return len(agents)
