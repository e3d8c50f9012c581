"""Core stage: one replicate's persons with everything the analyses use, vectorised, shared by the export path
(generate_cohort) and the analysis-ready path (analysis_ready.py).

Order and random streams (SeedSequence(replicate_seed).spawn, one stream per name of REPLICATE_STREAMS, so a stage
never shifts another stage's draws): persons and baseline covariates (population.py), treatment timing and outcomes
(outcomes.py, with the mechanism's constants from dgm.py), built exclusions (exclusions.py), core event days (HAIC
cycles, systemic first doses, scans; schedule.py), missing baseline cells (missingness.py). The remaining streams
serve the export path only (events, formatting, defects, identifiers, duplicates).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis_utils.synthetic.dgm import Mechanism, mechanism
from analysis_utils.synthetic.exclusions import build_exclusions
from analysis_utils.synthetic.missingness import missing_masks
from analysis_utils.synthetic.outcomes import simulate_outcomes
from analysis_utils.synthetic.population import simulate_persons
from analysis_utils.synthetic.schedule import (Imaging, SystemicStarts, haic_cycle_days, imaging_days,
                                               systemic_starts)

REPLICATE_STREAMS = ("persons", "outcomes", "exclusions", "schedule", "missing", "events", "format", "defects",
                     "identifiers", "duplicates")


def replicate_rngs(cfg: dict) -> dict[str, np.random.Generator]:
    """One generator per REPLICATE_STREAMS name, from replicate_seed (the scenario seed when it is null)."""
    seed = cfg["seed"] if cfg.get("replicate_seed") is None else cfg["replicate_seed"]
    children = np.random.SeedSequence(int(seed)).spawn(len(REPLICATE_STREAMS))
    return {name: np.random.default_rng(s) for name, s in zip(REPLICATE_STREAMS, children)}


@dataclass
class Core:
    """One replicate: the mechanism, the persons frame (one row per person, days from T0) and the core events."""
    cfg: dict
    mech: Mechanism
    persons: pd.DataFrame
    haic_cycles: np.ndarray          # persons x 8 cycle days, NaN-padded
    systemic: SystemicStarts
    imaging: Imaging
    missing: dict[str, np.ndarray]   # patients-table field -> blank per person
    rngs: dict[str, np.random.Generator]


def simulate_core(cfg: dict) -> Core:
    """The core of one replicate of a resolved configuration (see the module docstring)."""
    mech = mechanism(cfg)
    rngs = replicate_rngs(cfg)
    p = simulate_persons(cfg, mech.centres, rngs["persons"])
    p = pd.concat([p, simulate_outcomes(cfg, p, mech.centres, mech, rngs["outcomes"])], axis=1)
    build_exclusions(cfg, p, rngs["exclusions"])
    cycles = haic_cycle_days(p, rngs["schedule"])
    imaging = imaging_days(cfg, p, rngs["schedule"])
    systemic = systemic_starts(p, imaging.progression_visit_day, rngs["schedule"])
    masks = missing_masks(cfg, p, mech.centres, mech.missing, rngs["missing"])
    events = pd.DataFrame({
        "n_haic_cycles": np.isfinite(cycles).sum(axis=1), "tki_agent": systemic.tki_agent,
        "pd1_agent": systemic.pd1_agent, "tki_start_day": systemic.tki_start, "pd1_start_day": systemic.pd1_start,
        "n_initial_drug_classes": np.isfinite(systemic.tki_start).astype(int) + np.isfinite(systemic.pd1_start),
        "baseline_scan_day": imaging.baseline_day, "n_post_baseline_scans": np.isfinite(imaging.visits).sum(axis=1),
        "progression_visit_day": imaging.progression_visit_day}, index=p.index)
    return Core(cfg, mech, pd.concat([p, events], axis=1), cycles, systemic, imaging, masks, rngs)
