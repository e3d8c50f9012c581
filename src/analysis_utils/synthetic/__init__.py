"""The synthetic multicentre cohort for NCT06881433 (HAIC-TKIs-P versus TKIs-P): centre exports in the data
contract's format, as messy as real ones, with the ground truth beside them (never read by the pipeline).

`generate_cohort(config, out_dir)` writes messy raw centre exports in the format of the data contract
(src/analysis_utils/study/data/data_dictionary.yaml) plus a ground-truth folder that the pipeline never reads:

    out_dir/raw/<center_id>/manifest.yaml, patients, haic_cycles, systemic_courses, tumour_assessments,
        labs, adverse_events, follow_up  (.csv, or .xlsx for `xlsx_centers` centres; all dates are strings)
    out_dir/ground_truth/truth.yaml          generator version, seed, config, true effects, model, calibration
    out_dir/ground_truth/patients_truth.csv  one row per generated record (latent covariates, times, responses)
    out_dir/ground_truth/defects.csv         every injected defect: center_id, file, row (1-based data row),
                                             column, defect, original_value, written_value

Modules, in the order generate_cohort runs the stages (each stage module's docstring states its assumptions;
`describe()` joins them):
    config.py      DEFAULTS and resolve_config; arms, calibration constants and their sources
    population.py  centres (sizes, languages, units, conventions); persons and baseline covariates; Child-Pugh,
                   ALBI and BCLC computed independently of study/scores.py
    treatment.py   HAIC assignment (confounding by indication) and timing; HAIC cycles and systemic courses
    outcomes.py    latent death and progression (Weibull PH, time-varying HAIC effect), immortal time, censoring,
                   latent response
    exclusions.py  persons built to fail an eligibility criterion; recorded BCLC
    events.py      each person's event history (HAIC, scans, labs, AEs, systemic courses); adverse events
    imaging.py     lesions and scans under RECIST 1.1 and mRECIST; truth BOR
    labs.py        lab schedule and values; CTCAE 5.0 lab grading
    records.py     records (persons + referral duplicates) and fake identifiers
    exports.py     each centre's files as strings in its export conventions; writing raw/
    defects.py     the injected defects and their log
    xlsx.py        deterministic XLSX writer
    truth.py       ground_truth/: truth.yaml (with the calibration summary), patients_truth.csv, defects.csv

Calibration targets and their sources: docs/methods/synthetic-cohort.md (cited as "cal. baseline", "cal. efficacy",
... by topic; config.py lists the primary sources). Clinical rules: docs/methods/liver-scores-and-staging.md,
docs/methods/recist-mrecist.md, docs/methods/ctcae.md. Every number is a module constant or written in the stage
that uses it; ASSUMPTION marks a number no source supports.

Determinism: one numpy Generator per stage, spawned from SeedSequence(seed). XLSX files are written by a small
SpreadsheetML writer (xlsx.py), so the same config gives byte-identical files. The default cohort takes ~6-7 s CPU.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from analysis_utils.synthetic.config import resolve_config
from analysis_utils.synthetic.defects import inject_defects
from analysis_utils.synthetic.events import simulate_events
from analysis_utils.synthetic.exclusions import build_exclusions
from analysis_utils.synthetic.exports import format_centres, load_contract, write_raw
from analysis_utils.synthetic.outcomes import simulate_outcomes
from analysis_utils.synthetic.population import make_centres, simulate_persons
from analysis_utils.synthetic.records import assign_identifiers, make_records
from analysis_utils.synthetic.truth import write_truth

__all__ = ["describe", "generate_cohort"]


def generate_cohort(config: dict | None, out_dir: str | Path, *,
                    progress: Callable[[str], None] | None = None) -> dict:
    """Generate the synthetic multicentre cohort into `out_dir` (raw/ exports and ground_truth/).

    `config` is the `synthetic:` section of params/default.yaml; missing keys take config.DEFAULTS, unknown keys
    raise ValueError. Returns {"n_records", "n_persons", "n_per_center", "files", "out_dir"}.
    """
    cfg = resolve_config(config)
    say = progress or (lambda _msg: None)
    out = Path(out_dir)
    contract = load_contract()
    seeds = np.random.SeedSequence(int(cfg["seed"])).spawn(8)
    rng_centre, rng_person, rng_outcome, rng_events, rng_format, rng_defect, rng_id, rng_dup = (
        np.random.default_rng(s) for s in seeds)

    say("centres")
    centres = make_centres(cfg, rng_centre)
    say("persons and baseline covariates")
    persons = simulate_persons(cfg, centres, rng_person)
    say("treatment and outcomes")
    model = simulate_outcomes(cfg, persons, centres, rng_outcome)
    build_exclusions(cfg, persons, rng_outcome)
    say("events (HAIC, systemic, imaging, labs, AEs)")
    events = simulate_events(cfg, persons, centres, rng_events)
    records = make_records(cfg, persons, centres, rng_dup)
    assign_identifiers(records, persons, centres, rng_id)
    say("formatting centre files and injecting defects")
    files = format_centres(contract, centres, records, persons, events, rng_format)
    defects = inject_defects(cfg, centres, files, records, rng_defect)
    say("writing files")
    written = write_raw(out, centres, files)
    truth_paths = write_truth(out, cfg, model, centres, records, persons, events, defects)
    n_per_center = {c.center_id: int((records["center_id"] == c.center_id).sum()) for c in centres}
    return {"n_records": int(len(records)), "n_persons": int(len(persons)), "n_per_center": n_per_center,
            "files": [str(p.relative_to(out)) for p in written + truth_paths], "out_dir": str(out)}


def describe() -> str:
    """The generator's assumptions and calibration sources: this package's docstring, then each stage module's."""
    from analysis_utils.synthetic import (config, defects, events, exclusions, exports, imaging, labs, outcomes,
                                          population, records, treatment, truth, xlsx)

    stages = (config, population, treatment, outcomes, exclusions, events, imaging, labs, records, exports,
              defects, xlsx, truth)
    return "\n\n".join([__doc__ or ""] + [f"{m.__name__}\n{m.__doc__ or ''}" for m in stages])
