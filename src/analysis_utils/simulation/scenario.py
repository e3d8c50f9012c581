"""A simulation scenario: one params file of ``params/simulation/`` (ADEMP: its aim and data-generating mechanism).

A scenario file is an ordinary params file (``base:`` chain up to ``params/default.yaml``), so the analysis
settings it inherits (``matching:``, ``survival:``) are exactly those of the notebooks; its ``synthetic:`` section
sets the generator's knobs (the data-generating mechanism) and its ``simulation:`` section the design of the
simulation (replicates, estimands, methods). Method: docs/methods/simulation.md.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis_utils.study.project import ParamsError, load_params, project_root, resolve

#: keys of the ``simulation:`` section and their defaults (params/simulation/default.yaml sets them all).
SIMULATION_DEFAULTS: dict[str, Any] = {
    "scenario": None,                 # short name, default the file name; output folder <output_root>/simulation/<name>
    "source": "generator",            # generator (the study's synthetic cohort) or reference (simulation/reference.py)
    "label": None,                    # one line for tables and figures
    "aim": "",                        # ADEMP aim: what the scenario shows
    "replicates": 200,                # fast-path replicates (analysis-ready data straight from the generator)
    "exports_replicates": 1,          # of which the first k also go through the exports and cleaning path
    "truth_n": 200_000,               # persons of the very large cohort whose potential outcomes give the truths
    "endpoints": ["os", "pfs"],       # endpoints evaluated where the analysis-ready data carry them
    "timepoints_months": [12, 24],    # survival differences at these times
    "rmst_tau_months": 24,            # RMST difference up to tau
    "methods": ["crude", "adjusted_cox", "psm", "iptw", "overlap", "ccw", "naive_ever_haic"],
    "ccw_variance": "ij",             # CCW standard error: ij (robust, clustered on the patient) or bootstrap
    "ccw_bootstrap": 50,              # bootstrap replicates over patients per replicate (ccw_variance: bootstrap)
}
#: keys that do not change any replicate's result (how many were run, how); left out of the fingerprint.
NOT_IN_FINGERPRINT = ("replicates", "exports_replicates", "label", "aim")


@dataclass(frozen=True)
class Scenario:
    """One scenario: name, the resolved params (analysis settings, generator knobs) and the simulation design."""

    name: str
    params_file: str
    params: dict[str, Any] = field(repr=False)
    design: dict[str, Any] = field(repr=False)

    # ------------------------------------------------------------------------------------------------ design
    @property
    def label(self) -> str:
        return str(self.design["label"] or self.name)

    @property
    def seed(self) -> int:
        """Root seed of the scenario's replicates (params ``seed``: the same across scenarios, so scenarios share
        common random numbers replicate by replicate)."""
        return int(self.params["seed"])

    @property
    def replicates(self) -> int:
        return int(self.design["replicates"])

    @property
    def exports_replicates(self) -> int:
        """Replicates also run through the exports and cleaning path (none for the reference mechanism, which has
        no exports)."""
        if self.design["source"] != "generator":
            return 0
        return min(int(self.design["exports_replicates"]), self.replicates)

    @property
    def conf_level(self) -> float:
        return float(self.params.get("survival", {}).get("conf_level", 0.95))

    def generator_config(self, replicate_seed: int | None = None) -> dict[str, Any]:
        """The generator config of one replicate: the ``synthetic:`` section (minus ``generate``), the params'
        ``seed`` as the scenario seed (it fixes the mechanism: centres, solved constants and the truth, shared by
        every replicate), ``replicate_seed`` (one cohort drawn from that mechanism; None = the scenario seed), the
        params' data cut-off (as the runner builds it for a run), and the truth's design from the simulation
        section: ``truth_n`` persons, the timepoints and tau of the estimands, and the grace period of
        ``target_trial.grace_days``."""
        cfg = {k: v for k, v in self.params.get("synthetic", {}).items() if k != "generate"}
        cfg["seed"] = self.seed
        cfg["replicate_seed"] = None if replicate_seed is None else int(replicate_seed)
        cfg["data_cutoff"] = str(self.params["data_cutoff"])
        cfg["truth_n"] = int(self.design["truth_n"])
        cfg["truth_times_months"] = [float(t) for t in self.design["timepoints_months"]]
        cfg["truth_tau_months"] = float(self.design["rmst_tau_months"])
        cfg["truth_grace_days"] = int(self.params.get("target_trial", {}).get("grace_days", 90))
        return cfg

    def fingerprint(self) -> str:
        """SHA-256 of everything that determines a replicate's result (params and design, not the counts), so a
        resumed run never mixes replicates of different scenarios."""
        design = {k: v for k, v in self.design.items() if k not in NOT_IN_FINGERPRINT}
        params = {k: v for k, v in self.params.items() if k not in ("simulation", "run_name")}
        blob = json.dumps({"params": params, "design": design}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def output_dir(self, root: Path | None = None, out_root: str | Path | None = None) -> Path:
        """``<out_root or output_root>/simulation/<name>/``."""
        base = Path(out_root) if out_root is not None else resolve(self.params["output_root"], root) / "simulation"
        return base / self.name

    def with_design(self, **changes: Any) -> "Scenario":
        """A copy with some design values changed (e.g. the replicates asked for on the command line)."""
        return Scenario(self.name, self.params_file, self.params, {**self.design, **changes})


def _check_design(design: dict[str, Any], path: Path) -> dict[str, Any]:
    unknown = sorted(set(design) - set(SIMULATION_DEFAULTS))
    if unknown:
        raise ParamsError(f"{path}: unknown simulation key(s) {unknown}; allowed: {sorted(SIMULATION_DEFAULTS)}")
    d = {**SIMULATION_DEFAULTS, **design}
    for key in ("replicates", "exports_replicates", "truth_n", "ccw_bootstrap"):
        if isinstance(d[key], bool) or not isinstance(d[key], int) or d[key] < 0:
            raise ParamsError(f"{path}: simulation.{key} must be a non-negative integer, got {d[key]!r}")
    if d["replicates"] < 1:
        raise ParamsError(f"{path}: simulation.replicates must be >= 1")
    if d["truth_n"] < 1000:
        raise ParamsError(f"{path}: simulation.truth_n must be >= 1000 (the truths come from a very large cohort)")
    if d["ccw_variance"] not in ("ij", "bootstrap"):
        raise ParamsError(f"{path}: simulation.ccw_variance must be 'ij' or 'bootstrap', got {d['ccw_variance']!r}")
    if d["source"] not in ("generator", "reference"):
        raise ParamsError(f"{path}: simulation.source must be 'generator' or 'reference', got {d['source']!r}")
    for key in ("endpoints", "timepoints_months", "methods"):
        if not isinstance(d[key], list) or not d[key]:
            raise ParamsError(f"{path}: simulation.{key} must be a non-empty list")
    if not float(d["rmst_tau_months"]) > 0 or any(not float(t) > 0 for t in d["timepoints_months"]):
        raise ParamsError(f"{path}: simulation times must be > 0 months")
    return d


def load_scenario(path: str | Path, root: Path | None = None) -> Scenario:
    """Read a scenario params file (``base:`` followed) and validate its ``simulation:`` section."""
    root = root or project_root()
    p = Path(path)
    params = load_params(p if p.is_absolute() or p.is_file() else root / p)
    design = _check_design(dict(params.get("simulation") or {}), p)
    name = str(design["scenario"] or p.stem)
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ParamsError(f"{p}: scenario name {name!r} must be letters, digits, '-' or '_' (it names a folder)")
    design["scenario"] = name
    try:
        rel = p.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        rel = str(p)
    return Scenario(name, rel, params, design)


def default_scenario_files(root: Path | None = None) -> list[Path]:
    """Every scenario of the default simulation: ``params/simulation/*.yaml`` in name order."""
    return sorted((root or project_root()).glob("params/simulation/*.yaml"))


def generator_problem(scenario: Scenario) -> str | None:
    """Why this generator version cannot simulate the scenario (e.g. a knob it does not have), or None."""
    from analysis_utils.simulation import reference
    from analysis_utils.synthetic.config import resolve_config

    try:
        if scenario.design["source"] == "reference":
            reference.config(scenario.params)
        else:
            resolve_config(scenario.generator_config())
    except ValueError as exc:
        return str(exc)
    return None
