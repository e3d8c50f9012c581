"""The synthetic multicentre cohort for NCT06881433 (HAIC-TKIs-P versus TKIs-P): centre exports in the data
contract's format, as messy as real ones, the ground truth beside them (never read by the pipeline), and a fast
analysis-ready path for the Monte Carlo simulation.

`generate_cohort(config, out_dir)` writes messy raw centre exports in the format of the data contract
(src/analysis_utils/study/data/data_dictionary.yaml) plus a ground-truth folder that the pipeline never reads:

    out_dir/raw/<center_id>/manifest.yaml, patients, haic_cycles, systemic_courses, tumour_assessments,
        labs, adverse_events, follow_up  (.csv, or .xlsx for `xlsx_centers` centres; all dates are strings)
    out_dir/ground_truth/truth.json          target-trial truths (potential outcomes under the grace-period
                                             strategies), conditional HRs, configuration, mechanism constants
    out_dir/ground_truth/truth.yaml          generator version, seed, config, true effects, model, calibration
    out_dir/ground_truth/patients_truth.csv  one row per generated record (latent covariates, timing, times,
                                             potential outcomes, responses, eligibility)
    out_dir/ground_truth/defects.csv         every injected defect: center_id, file, row (1-based data row),
                                             column, defect, original_value, written_value

`analysis_ready(config, seed)` returns (screened table, truth) of replicate `seed` without writing or parsing
exports; `true_values(config)` the truth alone; `SCENARIOS` / `scenario_config(name)` the simulation's presets.

Time zero (T0) is each person's first treatment component (first HAIC or first systemic dose); every day counts
from it. Modules, in the order the stages run (each stage module's docstring states its assumptions; `describe()`
joins them):
    config.py        DEFAULTS and resolve_config; arms, calibration constants and their sources
    scenarios.py     named presets of the simulation (strong confounding, centre effects, immortal time, ...)
    dgm.py           the mechanism a configuration fixes: centres, solved constants, truth (cached)
    population.py    centres (sizes, languages, units, conventions, HAIC and outcome effects); persons and
                     baseline covariates; Child-Pugh, ALBI and BCLC computed independently of study/scores.py
    timing.py        T0, the natural HAIC initiation process (discrete-time hazard on covariates, centre, time),
                     the systemic start
    outcomes.py      latent death and progression (Weibull PH, Markov in HAIC status), treatment received,
                     censoring, potential outcomes, latent response
    exclusions.py    persons built to fail a criterion known at T0; recorded BCLC
    schedule.py      the core event days, vectorised: HAIC cycles, systemic first doses, scans by HAIC status
    missingness.py   blank baseline cells: MCAR, MAR or MNAR
    cohort.py        the core of one replicate (the stages above, one random stream each)
    estimands.py     the true values of the target-trial contrasts from potential outcomes
    analysis_ready.py the screened table the cleaning would produce, from the core
    treatment.py     HAIC regimen and systemic course stops as exported
    events.py        each person's event history (HAIC, scans, labs, AEs, systemic courses); adverse events
    imaging.py       lesions and scans under RECIST 1.1 and mRECIST; truth BOR
    labs.py          lab schedule and values; CTCAE 5.0 lab grading
    records.py       records (persons + referral duplicates) and fake identifiers
    exports.py       each centre's files as strings in its export conventions; writing raw/
    defects.py       the injected defects and their log
    xlsx.py          deterministic XLSX writer
    legacy.py        eligibility under the pre-target-trial cleaning rules (for the truth)
    calibration.py   the calibration summary of truth.yaml
    truth.py         ground_truth/: truth.json, truth.yaml, patients_truth.csv, defects.csv

Calibration targets and their sources: docs/methods/synthetic-cohort.md (cited as "cal. baseline", "cal. efficacy",
... by topic; config.py lists the primary sources). Clinical rules: docs/methods/liver-scores-and-staging.md,
docs/methods/recist-mrecist.md, docs/methods/ctcae.md. Every number is a module constant or written in the stage
that uses it; ASSUMPTION marks a number no source supports.

Determinism: one numpy Generator per stage, spawned from SeedSequence(replicate_seed) (the scenario's centres and
truth from SeedSequence(seed)). XLSX files are written by a small SpreadsheetML writer (xlsx.py), so the same config
gives byte-identical files. The default cohort takes ~6-7 s CPU, of which ~1.5 s build the mechanism and its truth
(200 000 persons); analysis_ready takes ~0.2-0.3 s per replicate of 1 050 records once the mechanism is cached.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from analysis_utils.synthetic.analysis_ready import analysis_ready, true_values
from analysis_utils.synthetic.cohort import simulate_core
from analysis_utils.synthetic.config import resolve_config
from analysis_utils.synthetic.defects import inject_defects
from analysis_utils.synthetic.events import simulate_events
from analysis_utils.synthetic.exports import format_centres, load_contract, write_raw
from analysis_utils.synthetic.records import assign_identifiers, make_records
from analysis_utils.synthetic.scenarios import SCENARIOS, scenario_config
from analysis_utils.synthetic.truth import write_truth

__all__ = ["SCENARIOS", "analysis_ready", "describe", "generate_cohort", "scenario_config", "true_values"]


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
    say("mechanism, persons, treatment timing and outcomes")
    core = simulate_core(cfg)
    centres, persons, rngs = core.mech.centres, core.persons, core.rngs
    say("events (HAIC, systemic, imaging, labs, AEs)")
    events = simulate_events(core, rngs["events"])
    records = make_records(cfg, persons, centres, rngs["duplicates"])
    assign_identifiers(records, persons, centres, rngs["identifiers"])
    say("formatting centre files and injecting defects")
    files = format_centres(contract, centres, records, persons, events, rngs["format"])
    defects = inject_defects(cfg, centres, files, records, core.missing, rngs["defects"])
    say("writing files")
    written = write_raw(out, centres, files)
    truth_paths = write_truth(out, core, records, events, defects)
    n_per_center = {c.center_id: int((records["center_id"] == c.center_id).sum()) for c in centres}
    return {"n_records": int(len(records)), "n_persons": int(len(persons)), "n_per_center": n_per_center,
            "files": [str(p.relative_to(out)) for p in written + truth_paths], "out_dir": str(out)}


STAGES = ("config", "scenarios", "dgm", "population", "timing", "outcomes", "exclusions", "schedule", "missingness",
          "cohort", "estimands", "analysis_ready", "treatment", "events", "imaging", "labs", "records", "exports",
          "defects", "xlsx", "legacy", "calibration", "truth")


def describe() -> str:
    """The generator's assumptions and calibration sources: this package's docstring, then each stage module's."""
    stages = [importlib.import_module(f"{__name__}.{name}") for name in STAGES]
    return "\n\n".join([__doc__ or ""] + [f"{m.__name__}\n{m.__doc__ or ''}" for m in stages])
