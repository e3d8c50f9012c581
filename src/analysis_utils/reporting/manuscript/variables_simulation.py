"""The supplement's simulation section (``manuscript/_simulation.qmd``): its variable and its generated include.

The simulation (``python -m analysis_utils simulate``) writes ``<output_root>/simulation/simulation_results.json``
with its tables and figures beside it; a run's outputs are ``<output_root>/<run_name>/``, so the simulation that
belongs with a run is ``<run folder>/../simulation/``. ``simulation_variables(out)`` gives the ``simulation``
block of ``_variables.yml`` (``status``: one sentence saying what was simulated, or that nothing was and which
command does it); ``write_section(out, generated)`` writes ``_generated/simulation/section.md`` (design, results
table, one figure per scenario, the exports-versus-fast table) and copies the figures, or, when no simulation
output exists, a section that says so and names the command. Nothing is asserted that the simulation did not
compute. Method: docs/methods/simulation.md.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from analysis_utils.reporting.manuscript.text import fmt_int, fmt_pct, human_list
from analysis_utils.reporting.manuscript.values import Reader

VARIABLES_KEY = "simulation"  # quoted as {{< var simulation.status >}} (manuscript/_simulation.qmd)
RESULTS_SECTION = None  # not in results.json: the simulation folder beside the run folder
SUMMARY_FILE = "simulation_results.json"
COMMAND = "python -m analysis_utils simulate"
SECTION = "simulation/section.md"


def simulation_dir(out_dir: str | Path) -> Path:
    """The simulation folder that goes with the run in ``out_dir``: ``<output_root>/simulation``."""
    return Path(out_dir).resolve().parent / "simulation"


def load_summary(out_dir: str | Path) -> dict[str, Any] | None:
    path = simulation_dir(out_dir) / SUMMARY_FILE
    if not path.is_file():
        return None
    summary = json.loads(path.read_text(encoding="utf-8"))
    return summary if any(s.get("replicates_done") for s in summary.get("scenarios", [])) else None


def _not_run_text() -> str:
    return (f"No Monte Carlo simulation output exists for this run (no `simulation/{SUMMARY_FILE}` beside its "
            f"output folder), so no operating characteristics are reported; `{COMMAND}` runs the simulation of "
            "every scenario in `params/simulation/` and fills this section.")


def simulation_variables(out_dir: str | Path) -> dict[str, Any]:
    """``simulation.status``: what the stored simulation covers, or that there is none and how to make one."""
    summary = load_summary(out_dir)
    if summary is None:
        return {"status": _not_run_text()}
    done = [s for s in summary["scenarios"] if s.get("replicates_done")]
    reps = sorted({s["replicates_done"] for s in done})
    rep_text = fmt_int(reps[0]) if len(reps) == 1 else f"{fmt_int(reps[0])} to {fmt_int(reps[-1])}"
    methods = human_list(v["label"] for v in summary.get("methods", {}).values())
    return {"status": f"The simulation stored with this run covers {fmt_int(len(done))} scenario"
                      f"{'s' if len(done) != 1 else ''} with {rep_text} replicates each; the methods were "
                      f"{methods}."}


def variables(r: Reader, params: dict[str, Any], missing: list[str]) -> dict[str, Any]:
    """The topic interface (:mod:`analysis_utils.reporting.manuscript.values`): :func:`simulation_variables` of the
    run folder."""
    return simulation_variables(r.out_dir)


def _scenario_rows(summary: dict[str, Any]) -> str:
    from analysis_utils.reporting.tables import to_markdown
    import pandas as pd

    rows = []
    for s in summary["scenarios"]:
        knobs = ", ".join(f"`{k}: {v}`" for k, v in sorted(s.get("generator_changes", {}).items()))
        rows.append({"Scenario": s["label"], "Aim": s["aim"], "Generator settings changed": knobs or "none",
                     "Replicates (fast / exports)": f"{s['replicates_done']} / {s['exports_replicates_done']}",
                     "Failed": str(len(s["failed"]))})
    for nr in summary.get("not_run", []):
        rows.append({"Scenario": f"`{nr['params_file']}`", "Aim": "not run: " + nr["reason"].split(";")[0],
                     "Generator settings changed": "", "Replicates (fast / exports)": "0 / 0", "Failed": ""})
    return to_markdown(pd.DataFrame(rows))


def _population(pop: str) -> str:
    return "conditional" if pop == "conditional" else pop.upper()


def _contrast_text(done: list[dict[str, Any]]) -> str:
    """What the ATE, ATT, ATO and conditional truths contrast, with the crossover shares of the scenarios' truth
    cohorts (the TKIs-P patients at time zero who received HAIC later)."""
    text = ("For the methods that fix the arm at time zero, the contrast is HAIC at time zero versus TKIs-P at "
            "time zero followed by the HAIC a patient goes on to receive, as in those analyses, where a patient who "
            "starts HAIC later stays in the TKIs-P arm; the clone-censor-weight analysis targets the grace-period "
            "strategies of the target trial (TTE).")
    shares = sorted((s["truth_crossover_share"], s["label"]) for s in done
                    if s.get("truth_crossover_share") is not None)
    if len(shares) == 1:
        text += (f" In the truth cohort {fmt_pct(100 * shares[0][0])} of the TKIs-P patients at time zero received "
                 "HAIC later.")
    elif shares:
        (lo, _), (hi, hi_label) = shares[0], shares[-1]
        text += (f" In the truth cohorts {fmt_pct(100 * lo)} to {fmt_pct(100 * hi)} of the TKIs-P patients at time "
                 f"zero received HAIC later (the most in the scenario {hi_label}).")
    return text


def _section(summary: dict[str, Any], sim: Path) -> tuple[str, list[Path]]:
    done = [s for s in summary["scenarios"] if s.get("replicates_done")]
    level = summary.get("conf_level") or 0.95
    unavailable = {m: why for s in summary["scenarios"] for m, why in s.get("methods_unavailable", {}).items()}
    truth = done[0]
    parts = [
        "**Data-generating mechanisms.** Each scenario is a params file of `params/simulation/` over the synthetic "
        "cohort generator; each replicate is a new cohort from its own random stream, analysed along the fast path "
        "(analysis-ready data straight from the generator), and the first replicates also along the exports-and-"
        "cleaning path of notebook 01 (@etbl-sim-scenarios).",
        "",
        "::: {#etbl-sim-scenarios}",
        "",
        _scenario_rows(summary),
        "Simulation scenarios: aim, generator settings that differ from the study's cohort, replicates analysed "
        "and replicates that failed.",
        "",
        ":::",
        "",
        f"**Estimands.** Survival differences, RMST differences and hazard ratios (HAIC-TKIs-P versus TKIs-P) in the "
        f"population each method targets (all patients, ATE; patients with HAIC at time zero, ATT; the overlap "
        f"population, ATO; conditional on the generator's covariates); true values from the potential outcomes of "
        f"{fmt_int(truth.get('truth_n_persons') or 0)} simulated eligible patients per scenario "
        f"({truth.get('truth_source')}). " + _contrast_text(done),
        "",
        "**Methods.** " + "; ".join(f"{v['label']} ({_population(v['population'])}): {v['description']}"
                                    for v in summary.get("methods", {}).values()) + "."
        + (" Not available in this version: " + "; ".join(f"{m} ({why})" for m, why in unavailable.items()) + "."
           if unavailable else ""),
        "",
        f"**Performance measures** (@etbl-sim-performance): bias, empirical and model-based SE, coverage of the "
        f"{round(100 * level)} % confidence intervals and the rate of rejecting no effect (power, or type I error "
        "where there is no effect), each with its Monte Carlo SE in brackets.",
        "",
        "::: {#etbl-sim-performance}",
        "",
        (sim / "tables" / "simulation_performance.md").read_text(encoding="utf-8"),
        "Operating characteristics of every method per scenario and estimand (fast path; Monte Carlo SE in "
        "brackets).",
        "",
        ":::",
        "",
    ]
    figures = []
    for s in done:
        fig = sim / "figures" / f"simulation_{s['name']}.png"
        if not fig.is_file():
            continue
        figures.append(fig)
        label = f"efig-sim-{s['name'].replace('_', '-')}"
        parts += [f"::: {{#{label}}}", "", f"![](_generated/simulation/{fig.name}){{width=95%}}", "",
                  f"{s['label']}: estimates of every method (points and box) with the true value of its estimand "
                  "(black bar), and coverage with 1.96 Monte Carlo SE (dashed: nominal level).", "", ":::", ""]
    if figures:
        refs = human_list(f"@efig-sim-{s['name'].replace('_', '-')}" for s in done
                          if (sim / "figures" / f"simulation_{s['name']}.png").is_file())
        parts.insert(parts.index("::: {#etbl-sim-performance}"), f"The distributions of the estimates and the "
                     f"coverage per scenario are in {refs}.\n")
    evf = sim / "tables" / "simulation_exports_vs_fast.md"
    if evf.is_file() and evf.read_text(encoding="utf-8").count("\n") > 2:
        parts += ["The same simulated populations analysed along the exports-and-cleaning path and along the fast path "
                  "differ as shown in @etbl-sim-exports; a difference comes from what reading, de-duplication, "
                  "derivation and eligibility do to the data.", "", "::: {#etbl-sim-exports}", "",
                  evf.read_text(encoding="utf-8"),
                  "Exports-and-cleaning path minus fast path, same replicates and seeds.", "", ":::", ""]
    return "\n".join(parts), figures


def write_section(out_dir: str | Path, generated: str | Path) -> list[str]:
    """Write ``<generated>/simulation/section.md`` (and copy the figures it shows); returns the files written,
    relative to ``generated``."""
    gen = Path(generated)
    target = gen / SECTION
    target.parent.mkdir(parents=True, exist_ok=True)
    summary = load_summary(out_dir)
    if summary is None:
        target.write_text(_not_run_text() + "\n", encoding="utf-8")
        return [SECTION]
    sim = simulation_dir(out_dir)
    text, figures = _section(summary, sim)
    target.write_text(text, encoding="utf-8")
    written = [SECTION]
    for f in figures:
        shutil.copyfile(f, target.parent / f.name)
        written.append(f"simulation/{f.name}")
    return written
