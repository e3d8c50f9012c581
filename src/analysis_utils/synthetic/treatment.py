"""Treatment stage: each person's HAIC regimen and systemic courses as exported (the days come from the core:
timing.py, schedule.py).

HAIC regimen per centre (FOLFOX mostly, cal. HAIC regimen; 15 % of persons another regimen). Systemic courses: the
agents and first doses of schedule.systemic_starts; a course stops at progression (+0-28 days), death, an AE leading
to discontinuation (+0-7 days), or for 10 % at random 60-400 days after its start; empty stop_date when still on
treatment at the last contact or the export (ASSUMPTION). Cycles: every 3 weeks for PD-(L)1 and anti-VEGF, monthly
packs for TKIs. A second-line TKI (schedule.py) runs from its start to the end of follow-up.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from analysis_utils.synthetic.config import DAYS_PER_MONTH, DRUG_CLASS
from analysis_utils.synthetic.population import Centre

HAIC_REGIMENS = ("folfox", "folfox_46h", "oxaliplatin_raltitrexed", "other")


def haic_regimens(centre_regimen: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per person: the centre's regimen (85 %) or one of HAIC_REGIMENS."""
    n = len(centre_regimen)
    other = np.asarray(HAIC_REGIMENS, dtype=object)[rng.integers(0, len(HAIC_REGIMENS), n)]
    return np.where(rng.random(n) < 0.85, np.asarray(centre_regimen, dtype=object), other)


def person_courses(row: Any, first_doses: list[tuple[str, int]], second_line: tuple[str, float], pd_day: float,
                   disc_day: float, export_day: int, rng: np.random.Generator, out: list[dict]) -> None:
    """The person's systemic courses: the combination classes received (agent, first-dose day) with their stops,
    then the second-line TKI (agent, start day; NaN = none) of the core."""
    end = int(row.end_day)
    alive_at_end = not row.dead
    for agent, start in first_doses:
        stop_candidates = [end if row.dead else np.inf]
        if np.isfinite(pd_day):
            stop_candidates.append(pd_day + int(rng.integers(0, 29)))
        if np.isfinite(disc_day):
            stop_candidates.append(disc_day + int(rng.integers(0, 8)))
        if rng.random() < 0.10:
            stop_candidates.append(start + int(rng.integers(60, 400)))
        stop = float(min(stop_candidates))
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
    agent2, start2 = second_line
    if np.isfinite(start2):
        out.append({"person_id": row.person_id, "agent": agent2, "drug_class": "tki", "start_day": int(start2),
                    "stop_day": None if alive_at_end else end, "cycles": max(1, round((end - start2) / 30.4))})


def centre_regimen(centres: list[Centre], centre_idx: np.ndarray) -> np.ndarray:
    """Per person: the centre's usual HAIC regimen."""
    return np.array([c.regimen for c in centres], dtype=object)[np.asarray(centre_idx)]
