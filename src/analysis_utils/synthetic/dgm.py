"""Mechanism stage: the data-generating mechanism that a configuration fixes, and its truth.

A configuration's scenario seed (`seed`) fixes the mechanism; `replicate_seed` (null = seed) only draws one cohort
from it, so every replicate of a simulation shares the same centres, constants and truth. `mechanism(cfg)` (cached
per configuration, replicate_seed excluded) builds:

- the centres (population.make_centres: conventions, HAIC shifts, outcome effects), from the scenario seed;
- the calibration cohort: truth_n persons (default 200 000) drawn like the study's persons (same centres in
  proportion to their sizes, same covariate model; no exclusions: the persons built to be ineligible are a random
  subset, so the eligible population has this covariate distribution), from the scenario seed;
- on it, the constants every replicate uses: the HAIC intercepts (timing.calibrate_haic), the Weibull scales (OS: the
  never-HAIC median is median_os_control_months, in closed form because the median scales with the scale; progression:
  bisection so that the never-HAIC median of min(progression, death) is median_pfs_control_months), the share of
  loss-prone persons (so that about loss_to_follow_up of persons are lost under the natural treatment process) and
  the missingness intercepts (missingness.calibrate_missing);
- the truth (estimands.py): potential outcomes of the calibration cohort under the grace-period strategies A and B,
  always and never HAIC.

Random streams: the scenario streams are SeedSequence(seed, spawn_key=(1000 + k,)); the replicate streams
SeedSequence(replicate_seed).spawn(...) (cohort.py), so the two never overlap.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis_utils.synthetic.config import DAYS_PER_MONTH, GENERATOR_VERSION
from analysis_utils.synthetic.estimands import STRATEGY_LABELS, strategy_switch_days, true_values
from analysis_utils.synthetic.missingness import MissingModel, calibrate_missing
from analysis_utils.synthetic.outcomes import centre_arrays, latent_draws, potential_months, to_days
from analysis_utils.synthetic.population import Centre, day_diff, index_days, make_centres, simulate_persons
from analysis_utils.synthetic.timing import (HaicProcess, bisect, calibrate_haic, haic_linear_predictor,
                                             haic_timing_shares, model_features, sample_haic_day)

SCENARIO_STREAMS = ("centres", "persons", "outcomes", "missing")


def scenario_rng(cfg: dict, name: str) -> np.random.Generator:
    """The scenario stream `name` (SCENARIO_STREAMS) of the configuration's seed."""
    key = 1000 + SCENARIO_STREAMS.index(name)
    return np.random.default_rng(np.random.SeedSequence(cfg["seed"], spawn_key=(key,)))


@dataclass
class Mechanism:
    """The fixed parts of the data-generating mechanism of one configuration (see the module docstring)."""
    centres: list[Centre]
    haic: HaicProcess
    scale_os: float
    scale_pfs: float
    loss_prone_share: float
    missing: MissingModel
    truth: dict[str, Any] = field(default_factory=dict)


_CACHE: dict[str, Mechanism] = {}
_CACHE_SIZE = 8


def cache_key(cfg: dict) -> str:
    """The configuration without replicate_seed, as canonical JSON."""
    return json.dumps({k: v for k, v in cfg.items() if k != "replicate_seed"}, sort_keys=True, default=str)


def mechanism(cfg: dict) -> Mechanism:
    """The mechanism of a resolved configuration (cached; a few seconds for truth_n = 200 000 on first use)."""
    key = cache_key(cfg)
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _build(cfg)
    return _CACHE[key]


def _build(cfg: dict) -> Mechanism:
    centres = make_centres(cfg, scenario_rng(cfg, "centres"))
    p = simulate_persons(cfg, centres, scenario_rng(cfg, "persons"), n=cfg["truth_n"])
    rng = scenario_rng(cfg, "outcomes")
    x = model_features(p)
    haic_shift, outcome_shift = centre_arrays(p, centres)
    lp = haic_linear_predictor(cfg, x, haic_shift)
    haic = calibrate_haic(cfg, lp)
    h_nat = sample_haic_day(haic, lp, rng)
    h_after = sample_haic_day(haic, lp, rng, from_day=cfg["truth_grace_days"] + 1)
    lat = latent_draws(x, outcome_shift, rng)
    never_base_os = (lat.e_os * np.exp(-lat.eta_os)) ** (1.0 / cfg["weibull_shape_os"])
    scale_os = cfg["median_os_control_months"] / float(np.median(never_base_os))
    t_os_never = scale_os * never_base_os
    never_base_pfs = (lat.e_pfs * np.exp(-lat.eta_pfs)) ** (1.0 / cfg["weibull_shape_pfs"])
    scale_pfs = bisect(lambda s: float(np.median(np.minimum(t_os_never, s * never_base_pfs)))
                       - cfg["median_pfs_control_months"], 0.01, 1000.0, n_iter=45)
    scales = (scale_os, scale_pfs)
    switches = strategy_switch_days(h_nat, h_after, cfg["truth_grace_days"])
    potential = {}
    for name, sw in switches.items():
        os_, prog = potential_months(cfg, lat, scales, sw)
        potential[name] = {"os": os_, "progression": prog}

    # loss to follow-up under the natural treatment process: P(loss day < min(death, administrative censoring))
    natural_death = to_days(potential_months(cfg, lat, scales, h_nat)[0])
    admin = day_diff(np.datetime64(cfg["data_cutoff"]), index_days(p)) - rng.integers(0, 46, len(p))
    exposed = float((rng.integers(31, 731, len(p)) < np.minimum(natural_death, admin)).mean())
    loss_prone = min(1.0, cfg["loss_to_follow_up"] / exposed) if exposed > 0 else 0.0
    p["haic_natural_day"] = h_nat
    missing = calibrate_missing(cfg, p, centres, scenario_rng(cfg, "missing"))

    truth = {
        "generator_version": GENERATOR_VERSION,
        "n_potential_outcomes": int(len(p)),
        "grace_days": cfg["truth_grace_days"], "times_months": cfg["truth_times_months"],
        "tau_months": cfg["truth_tau_months"], "days_per_month": DAYS_PER_MONTH,
        "conditional_hr": {"os": cfg["true_hr_os"], "progression": cfg["true_hr_pfs"],
                           "note": "hazard ratio of current HAIC status (from the first HAIC on) in the Weibull PH "
                                   "models of death and latent progression given the covariates and the centre; "
                                   "PFS = min(progression, death)"},
        "strategies": STRATEGY_LABELS,
        "natural_haic_timing": haic_timing_shares(haic, lp),
        **true_values(cfg, potential),
    }
    return Mechanism(centres=centres, haic=haic, scale_os=float(scale_os), scale_pfs=float(scale_pfs),
                     loss_prone_share=float(loss_prone), missing=missing, truth=truth)
