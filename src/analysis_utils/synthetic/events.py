"""Events stage: every person's history after index, as event lists that exports.py turns into the centre tables.

`simulate_events` walks the persons (days relative to index): HAIC cycles (treatment.py) and scans (imaging.py) per
person, labs for all persons at once (labs.py), then the reported adverse events (here; they read the person's
labs) and the systemic courses (treatment.py; they stop at an AE leading to discontinuation). It adds the
per-person truth columns (truth BOR, progression visit, HAIC cycles, drug classes started) to the persons frame.

Adverse events (cal. safety, ALL ASSUMPTION): clinical terms drawn per arm with AE_RATES (any / grade >= 3), onset
by mechanism (HAIC terms at a HAIC cycle, TKI terms ~4 weeks after start), English or Chinese term variants
(exports.AE_TERM_VARIANTS); centres with `reports_lab_aes` also report CTCAE lab AEs derived from the labs (70 %
reporting; docs/methods/ctcae.md). 1 % of deaths get a grade 5 AE. AEs with action "discontinued" stop the course.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis_utils.synthetic.config import AE_RATES, ARM_TRIPLE, HAIC_AE_TERMS
from analysis_utils.synthetic.imaging import person_imaging
from analysis_utils.synthetic.labs import simulate_labs, worst_lab_grades
from analysis_utils.synthetic.population import Centre, day_diff, index_days
from analysis_utils.synthetic.treatment import person_courses, person_haic


@dataclass
class Events:
    """Event lists of all persons (days from index); `labs` holds one dict of arrays for everyone."""
    courses: list[dict] = field(default_factory=list)
    haic: list[dict] = field(default_factory=list)
    imaging: list[dict] = field(default_factory=list)
    labs: list[dict[str, np.ndarray]] = field(default_factory=list)
    aes: list[dict] = field(default_factory=list)


def simulate_events(cfg: dict, p: pd.DataFrame, centres: list[Centre], rng: np.random.Generator) -> Events:
    """Per-person event histories (days relative to index): HAIC and imaging per person, labs vectorised over
    all persons, then AEs (which read the person's labs) and systemic courses (which stop at AEs)."""
    ev = Events()
    truth_cols: dict[str, list] = {k: [] for k in (
        "bor_recist", "bor_mrecist", "progression_visit_day", "progression_mode", "depth_ld", "depth_viable",
        "n_post_baseline_scans", "n_haic_cycles", "first_haic_day", "n_initial_drug_classes")}
    export_day = np.array([int(day_diff(centres[c].export_date, d))
                           for c, d in zip(p["centre_idx"], index_days(p))])
    rows = list(p.itertuples(index=False))
    haic_days, images = [], []
    for row in rows:
        centre = centres[row.centre_idx]
        haic_days.append(person_haic(row, centre, rng, ev.haic))
        images.append(person_imaging(row, centre, rng, ev.imaging))
    labs = simulate_labs(p, haic_days, rng)
    bounds = np.searchsorted(labs["person_id"], np.arange(len(p) + 1))
    for i, row in enumerate(rows):
        centre, img, hd = centres[row.centre_idx], images[i], haic_days[i]
        mine = {k: v[bounds[i]:bounds[i + 1]] for k, v in labs.items()}
        disc_day = _person_aes(row, centre, hd, mine, rng, ev.aes)
        n_classes = person_courses(row, hd, img["progression_visit_day"], disc_day, int(export_day[i]), rng,
                                   ev.courses)
        for k in truth_cols:
            if k in img:
                truth_cols[k].append(img[k])
        truth_cols["n_haic_cycles"].append(len(hd))
        truth_cols["first_haic_day"].append(hd[0] if hd else np.nan)
        truth_cols["n_initial_drug_classes"].append(n_classes)
    ev.labs = [labs]
    for k, v in truth_cols.items():
        p[k] = v
    return ev


# ----------------------------------------------------------------------------------------------------------
# Adverse events
# ----------------------------------------------------------------------------------------------------------
def _person_aes(row: Any, centre: Centre, haic_days: list[int], labs: dict[str, np.ndarray], rng: np.random.Generator,
                out: list[dict]) -> float:
    """Reported AEs; returns the earliest day of an AE leading to discontinuation (inf when none)."""
    triple = row.realised_arm == ARM_TRIPLE
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
        if term in HAIC_AE_TERMS and haic_days:
            onset = int(rng.choice(haic_days)) + int(rng.integers(0, 3))
        elif term in ("hypertension", "ppe", "diarrhea", "proteinuria"):
            onset = int(rng.gamma(2.0, 14.0)) + 1
        elif term == "hypothyroidism":
            onset = int(rng.integers(42, 181))
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
