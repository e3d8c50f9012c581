"""Where a replicate's data come from: ``generate(scenario, seed, path)`` -> (analysis-ready frame, facts).

Two paths, the same generator seed:

- ``"fast"``: analysis-ready data straight from the generator's stages, without writing exports. Until the
  generator offers its own fast path (issue #12), this module builds it from the stages ``generate_cohort`` runs
  first (centres, persons, outcomes, exclusions, with the same SeedSequence streams, so the persons are those of
  ``generate_cohort`` with the same seed): eligible persons are those not built to fail a criterion (eligibility
  at time zero, no criterion about the future); covariates are the clean latent values (no missing values); OS is
  the latent death or censoring day. The frame carries the columns the estimators read (``ANALYSIS_COLUMNS``).
  PFS needs the imaging schedule, which only the export path simulates, so the interim fast frame has OS only.
- ``"exports"``: ``generate_cohort`` writes the messy centre exports into a temporary folder and
  ``study.cleaning.clean`` reads them back as notebook 01 does: the analysis cohort of a real run, so cleaning
  errors show up as differences from the fast path on the same seed.

``facts`` are per-replicate numbers for the log (patients, treated, events).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis_utils.simulation.scenario import Scenario
from analysis_utils.study.treatment import ARM_CONTROL, ARM_HAIC

PATHS = ("fast", "exports")
DAYS_PER_MONTH = 365.25 / 12
#: columns of an analysis-ready frame that the estimators may read (those present are used).
ANALYSIS_COLUMNS = ("study_id", "center_id", "arm", "haic_offset_days", "age", "sex", "etiology", "ecog",
                    "child_pugh_class", "albi_score", "bclc_stage", "multiple_tumours", "max_tumour_size_cm", "mvi",
                    "ehs", "afp_ge_400", "os_months", "os_event", "pfs_recist_months", "pfs_recist_event",
                    "pfs_mrecist_months", "pfs_mrecist_event")


def generator_stages(cfg: dict[str, Any]) -> tuple[pd.DataFrame, list, dict]:
    """The persons of ``synthetic.generate_cohort(cfg)`` up to the exclusions stage (same streams), with their
    centres and the solved model constants; no events, exports or defects."""
    from analysis_utils.synthetic.config import resolve_config
    from analysis_utils.synthetic.exclusions import build_exclusions
    from analysis_utils.synthetic.outcomes import simulate_outcomes
    from analysis_utils.synthetic.population import make_centres, simulate_persons

    c = resolve_config(cfg)
    rng_centre, rng_person, rng_outcome = (np.random.default_rng(s)
                                           for s in np.random.SeedSequence(int(c["seed"])).spawn(8)[:3])
    centres = make_centres(c, rng_centre)
    persons = simulate_persons(c, centres, rng_person)
    model = simulate_outcomes(c, persons, centres, rng_outcome)
    build_exclusions(c, persons, rng_outcome)
    return persons, centres, {**model, "config": c}


def _bool(x: pd.Series) -> pd.Series:
    return x.astype("boolean")


def fast_frame(persons: pd.DataFrame, centres: list) -> pd.DataFrame:
    """Analysis-ready frame of the eligible persons from the generator's latent data (interim fast path)."""
    p = persons[persons["exclusion_criterion"] == "none"]
    arm = np.where(p["realised_arm"].to_numpy() == ARM_HAIC, ARM_HAIC, ARM_CONTROL)
    return pd.DataFrame({
        "study_id": [f"P{i:07d}" for i in p["person_id"]],
        "center_id": [centres[i].center_id for i in p["centre_idx"]],
        "arm": arm,
        "haic_offset_days": np.where(arm == ARM_HAIC, p["haic_offset_days"].to_numpy(float), np.nan),
        "age": np.floor(p["age"].to_numpy(float)),
        "sex": p["sex"].to_numpy(), "etiology": p["etiology"].to_numpy(),
        "ecog": p["ecog"].to_numpy(float),
        "child_pugh_class": p["child_pugh_class"].to_numpy(), "albi_score": p["albi_score"].to_numpy(float),
        "bclc_stage": p["bclc_derived"].to_numpy(),
        "multiple_tumours": _bool(p["tumour_number"] > 1).to_numpy(),
        "max_tumour_size_cm": p["max_tumour_size"].to_numpy(float),
        "mvi": _bool(p["mvi"]).to_numpy(), "ehs": _bool(p["ehs"]).to_numpy(),
        "afp_ge_400": _bool(p["afp"] >= 400).to_numpy(),
        "os_months": p["end_day"].to_numpy(float) / DAYS_PER_MONTH,
        "os_event": p["dead"].to_numpy(bool).astype(int),
    }).reset_index(drop=True)


def exports_frame(scenario: Scenario, cfg: dict[str, Any], workdir: str | Path | None = None) -> pd.DataFrame:
    """The analysis cohort as notebook 01 derives it: ``generate_cohort`` -> centre exports -> ``clean``."""
    from analysis_utils.study.cleaning import CleaningConfig, clean
    from analysis_utils.study.project import pseudonym_key
    from analysis_utils.synthetic import generate_cohort

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        generate_cohort(cfg, tmp)
        ccfg = CleaningConfig.from_params(scenario.params, pseudonym_key(scenario.params))
        cohort = clean(Path(tmp) / "raw", ccfg).cohort
    keep = [c for c in ANALYSIS_COLUMNS if c in cohort.columns]
    return cohort[keep].reset_index(drop=True)


def generate(scenario: Scenario, seed: int, path: str = "fast",
             workdir: str | Path | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One replicate's analysis-ready frame and its facts, from the generator with ``seed``."""
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, got {path!r}")
    if scenario.design["source"] == "reference":
        if path != "fast":
            raise ValueError("the reference mechanism has no exports path")
        from analysis_utils.simulation import reference

        frame = reference.generate(scenario.params, seed)
        return frame, {"n": int(len(frame)), "n_treated": int((frame["arm"] == ARM_HAIC).sum()),
                       "os_events": int(frame["os_event"].sum())}
    cfg = scenario.generator_config(seed)
    if path == "fast":
        persons, centres, _ = generator_stages(cfg)
        frame = fast_frame(persons, centres)
    else:
        frame = exports_frame(scenario, cfg, workdir)
    treated = frame["arm"] == ARM_HAIC
    facts = {"n": int(len(frame)), "n_treated": int(treated.sum()), "os_events": int(frame["os_event"].sum())}
    return frame, facts
