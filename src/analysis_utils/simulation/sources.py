"""Where a replicate's data come from: ``generate(scenario, seed, path)`` -> (analysis-ready frame, facts).

Two paths, the same generator seeds (the scenario's ``seed`` fixes the mechanism: centres, constants, truth; the
replicate's seed is the generator's ``replicate_seed``: one cohort drawn from that mechanism):

- ``"fast"``: the generator's own analysis-ready path, ``synthetic.analysis_ready(config, replicate_seed)``: the
  screened table the cleaning would produce (one row per person, the pipeline's scores, OS and scan-detected PFS per
  RECIST 1.1 and mRECIST in days and months from time zero, blank baseline cells as the scenario's missingness
  mechanism blanks them), without writing or parsing exports. The cohort is its eligible rows (eligibility at time
  zero; a blank criterion field is a query, not a failure). ``fast_frame`` adds the columns the cleaning's cohort
  carries under other names: ``combination_day`` (the day the combination started), ``eligibility_query`` (a blank
  criterion field) and ``arm_ever_haic`` (the naive classification: HAIC within ``cleaning.haic_window_days`` of time
  zero, as ``study.treatment`` derives it).
- ``"exports"``: ``generate_cohort`` writes the messy centre exports of the same replicate into a temporary folder
  and ``study.cleaning.clean`` reads them back as notebook 01 does: the analysis cohort of a real run, so cleaning
  errors show up as differences from the fast path on the same seed.

``facts`` are per-replicate numbers for the log (patients, HAIC at time zero, OS events).
Method: docs/methods/simulation.md.
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


def fast_frame(screened: pd.DataFrame, haic_window_days: int) -> pd.DataFrame:
    """The eligible rows of the generator's screened table, with the cohort's column names (module docstring)."""
    c = screened[screened["eligible"].astype(bool)].reset_index(drop=True)
    c = c.rename(columns={"combination_start_days": "combination_day", "criteria_missing": "eligibility_query"})
    offset = pd.to_numeric(c["haic_offset_days"], errors="coerce")
    c["arm_ever_haic"] = np.where(offset.notna() & (offset <= haic_window_days), ARM_HAIC, ARM_CONTROL)
    return c


def exports_frame(scenario: Scenario, cfg: dict[str, Any], workdir: str | Path | None = None) -> pd.DataFrame:
    """The analysis cohort as notebook 01 derives it: ``generate_cohort`` -> centre exports -> ``clean``."""
    from analysis_utils.study.cleaning import CleaningConfig, clean
    from analysis_utils.study.project import pseudonym_key
    from analysis_utils.synthetic import generate_cohort

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        generate_cohort(cfg, tmp)
        ccfg = CleaningConfig.from_params(scenario.params, pseudonym_key(scenario.params))
        cohort = clean(Path(tmp) / "raw", ccfg).cohort
    return cohort.reset_index(drop=True)


def generate(scenario: Scenario, seed: int, path: str = "fast",
             workdir: str | Path | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One replicate's analysis-ready frame and its facts, from the generator with replicate seed ``seed``."""
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, got {path!r}")
    if scenario.design["source"] == "reference":
        if path != "fast":
            raise ValueError("the reference mechanism has no exports path")
        from analysis_utils.simulation import reference

        frame = reference.generate(scenario.params, seed)
    else:
        cfg = scenario.generator_config(seed)
        if path == "fast":
            from analysis_utils.synthetic import analysis_ready

            screened, _ = analysis_ready(cfg, seed)
            frame = fast_frame(screened, int(scenario.params.get("cleaning", {}).get("haic_window_days", 90)))
        else:
            frame = exports_frame(scenario, cfg, workdir)
    facts = {"n": int(len(frame)), "n_treated": int((frame["arm"] == ARM_HAIC).sum()),
             "os_events": int(pd.to_numeric(frame["os_event"]).sum())}
    return frame, facts
