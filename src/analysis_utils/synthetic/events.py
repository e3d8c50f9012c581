"""Events stage: every person's history after T0 as event lists that exports.py turns into the centre tables.

`simulate_events` takes the core (cohort.py: HAIC cycle days, systemic first doses, scan days, all vectorised) and
adds what only the exports need: the HAIC regimen, lesion measurements per scan (imaging.py), labs for all persons at
once (labs.py), then per person the reported adverse events (here; they read the person's labs) and the systemic
course stops (treatment.py; a course stops at an AE leading to discontinuation). It adds the per-person truth
columns (truth BOR, progression mode, depths) to the persons frame.

Adverse events (cal. safety, ALL ASSUMPTION): clinical terms drawn per arm with AE_RATES (any / grade >= 3; the HAIC
rates for persons who received HAIC), onset by mechanism (HAIC terms at a HAIC cycle, TKI terms ~4 weeks after the
systemic start, hypothyroidism 6-26 weeks after it), English or Chinese term variants (exports.AE_TERM_VARIANTS);
centres with `reports_lab_aes` also report CTCAE lab AEs derived from the labs (70 % reporting;
docs/methods/ctcae.md). 1 % of deaths get a grade 5 AE. AEs with action "discontinued" stop the course.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis_utils.synthetic.cohort import Core
from analysis_utils.synthetic.config import AE_RATES, ARM_TRIPLE, HAIC_AE_TERMS
from analysis_utils.synthetic.imaging import person_imaging
from analysis_utils.synthetic.labs import simulate_labs, worst_lab_grades
from analysis_utils.synthetic.population import Centre, day_diff, index_days
from analysis_utils.synthetic.treatment import centre_regimen, haic_regimens, person_courses


@dataclass
class Events:
    """Event lists of all persons (days from T0); `labs` holds one dict of arrays for everyone."""
    courses: list[dict] = field(default_factory=list)
    haic: list[dict] = field(default_factory=list)
    imaging: list[dict] = field(default_factory=list)
    labs: list[dict[str, np.ndarray]] = field(default_factory=list)
    aes: list[dict] = field(default_factory=list)


def simulate_events(core: Core, rng: np.random.Generator) -> Events:
    """Per-person event histories (days from T0): HAIC rows from the core's cycle days, lesion measurements per
    scan, labs vectorised over all persons, then AEs (which read the person's labs) and systemic courses (which
    stop at AEs)."""
    p, centres, cfg = core.persons, core.mech.centres, core.cfg
    ev = Events()
    truth_cols: dict[str, list] = {k: [] for k in (
        "bor_recist", "bor_mrecist", "bor_recist_t0", "bor_mrecist_t0", "progression_mode", "depth_ld",
        "depth_viable")}
    export_day = np.array([int(day_diff(centres[c].export_date, d))
                           for c, d in zip(p["centre_idx"], index_days(p))])
    regimen = haic_regimens(centre_regimen(centres, p["centre_idx"].to_numpy()), rng)
    haic_days = [[int(d) for d in row[np.isfinite(row)]] for row in core.haic_cycles]
    for pid, days, reg in zip(p["person_id"], haic_days, regimen):
        ev.haic.extend({"person_id": pid, "cycle_number": k, "day": d, "regimen": reg}
                       for k, d in enumerate(days, start=1))
    rows = list(p.itertuples(index=False))
    sysc = core.systemic
    legacy_index = sysc.legacy_index()
    images = [person_imaging(row, centres[row.centre_idx], core.imaging.person(i), int(core.imaging.baseline_day[i]),
                             float(legacy_index[i]), rng, ev.imaging) for i, row in enumerate(rows)]
    labs = simulate_labs(p, haic_days, rng, around_haic=cfg["labs_around_haic"])
    bounds = np.searchsorted(labs["person_id"], np.arange(len(p) + 1))
    for i, row in enumerate(rows):
        centre, img, hd = centres[row.centre_idx], images[i], haic_days[i]
        mine = {k: v[bounds[i]:bounds[i + 1]] for k, v in labs.items()}
        first = sorted((int(day), agent) for agent, day in ((sysc.tki_agent[i], sysc.tki_start[i]),
                                                             (sysc.pd1_agent[i], sysc.pd1_start[i]))
                       if np.isfinite(day))
        disc_day = _person_aes(row, centre, hd, first[0][0] if first else None, mine, rng, ev.aes)
        person_courses(row, [(agent, day) for day, agent in first], (sysc.second_agent[i], sysc.second_start[i]),
                       row.progression_visit_day, disc_day, int(export_day[i]), rng, ev.courses)
        for k in truth_cols:
            truth_cols[k].append(img[k])
    ev.labs = [labs]
    for k, v in truth_cols.items():
        p[k] = v
    return ev


# ----------------------------------------------------------------------------------------------------------
# Adverse events
# ----------------------------------------------------------------------------------------------------------
def _person_aes(row: Any, centre: Centre, haic_days: list[int], systemic_day: int | None,
                labs: dict[str, np.ndarray], rng: np.random.Generator, out: list[dict]) -> float:
    """Reported AEs; returns the earliest day of an AE leading to discontinuation (inf when none)."""
    triple = row.realised_arm == ARM_TRIPLE
    sys0 = 0 if systemic_day is None else systemic_day
    end = int(row.end_day)
    disc = np.inf
    for term, (pa_t, p3_t, pa_d, p3_d, gmax) in AE_RATES.items():
        pa, p3 = (pa_t, p3_t) if triple else (pa_d, p3_d)
        u = rng.random()
        if u >= pa:
            continue
        if u < p3:
            grade = 4 if (gmax >= 4 and rng.random() < 0.08) else 3
        else:
            grade = 1 if rng.random() < 0.55 else 2
        if systemic_day is None and term in _SYSTEMIC_TERMS:
            continue
        if term in HAIC_AE_TERMS and haic_days:
            onset = int(rng.choice(haic_days)) + int(rng.integers(0, 3))
        elif term in ("hypertension", "ppe", "diarrhea", "proteinuria"):
            onset = sys0 + int(rng.gamma(2.0, 14.0)) + 1
        elif term == "hypothyroidism":
            onset = sys0 + int(rng.integers(42, 181))
        else:
            onset = int(rng.integers(3, 121))
        if onset < 1 or onset > end:
            continue
        action = _ae_action(grade, rng)
        if action == "discontinued":
            disc = min(disc, onset)
        out.append(_ae_record(row.person_id, term, grade, onset, action, rng))
    if centre.reports_lab_aes:
        for test, (grade, day) in worst_lab_grades(labs, centre.uln, centre.lln).items():
            if rng.random() < 0.70 and day > 0:
                action = _ae_action(grade, rng)
                out.append(_ae_record(row.person_id, test, grade, day, action, rng))
    if row.dead and row.death_day <= end and rng.random() < 0.006 / 0.6:
        term = str(rng.choice(["grade5_liver", "grade5_bleed", "grade5_hepatitis"]))
        day = max(1, int(row.death_day) - int(rng.integers(0, 8)))
        out.append({"person_id": row.person_id, "term": term, "grade": 5, "day": day, "attribution":
                    "related", "serious": "yes", "action_taken": "discontinued"})
    return disc


_SYSTEMIC_TERMS = ("hypertension", "ppe", "diarrhea", "proteinuria", "hypothyroidism", "rash")
_AE_ACTIONS = ("none", "dose_reduced", "interrupted", "discontinued")
_AE_ACTION_CUM = {1: (0.9, 0.95, 1.0, 1.0), 2: (0.6, 0.85, 1.0, 1.0), 3: (0.1, 0.45, 0.85, 1.0),
                  4: (0.0, 0.1, 0.4, 1.0)}   # cumulative P(none, dose_reduced, interrupted, discontinued)


def _ae_action(grade: int, rng: np.random.Generator) -> str:
    """Action taken by grade (ASSUMPTION): G1 mostly none ... G4 mostly discontinued."""
    u = rng.random()
    cum = _AE_ACTION_CUM[min(grade, 4)]
    return _AE_ACTIONS[next(i for i, c in enumerate(cum) if u < c)]


def _ae_record(person_id: int, term: str, grade: int, day: int, action: str, rng: np.random.Generator) -> dict:
    """One reported AE: attribution related 85 %, serious for half of grade >= 3 (ASSUMPTION)."""
    return {"person_id": person_id, "term": term, "grade": grade, "day": day,
            "attribution": "related" if rng.random() < 0.85 else "unrelated",
            "serious": "yes" if grade >= 3 and rng.random() < 0.5 else "no", "action_taken": action}
