"""Scenario presets: named sets of generator keys over DEFAULTS, for the Monte Carlo simulation (issue 15). The
simulation writes params/simulation/<scenario>.yaml files whose `synthetic:` section starts from these; every key
is documented in docs/methods/synthetic-cohort.md (section 10). The values are design choices of the simulation
(ASSUMPTION), chosen so that each bias is visible at the study's size (~900 eligible persons):

- default            the generator's defaults (modest confounding, modest centre effects, HAIC before and after the
                     systemic start, HAIC patients imaged and sampled more often, MCAR missing covariates)
- strong_confounding confounding_strength 2: twice the log-odds of HAIC per covariate (confounding by indication)
- centre_effects     centre log-hazard SD 0.4 (hazard ratios ~0.45-2.2 between centres), correlated 0.6 with the
                     centres' HAIC propensity (SD 0.8): centre confounds the treatment-outcome relation
- immortal_time      half of the HAIC patients start HAIC after the systemic start (a quarter of them beyond the
                     grace period) and the systemic start after a first HAIC is later: more deaths between the
                     components and more immortal time in the naive "ever HAIC" comparison
- mar_missing        missing_rate 0.12 (ECOG ~16 %, ascites and encephalopathy ~17 %, AFP ~8 %), missing at random
                     given age, extrahepatic spread, the arm at T0 and the centre
- mnar_missing       the same rates, missing not at random (worse values missing more often), strength 1.5
- imaging_by_arm     scans every 42 days on HAIC and every 84 days without it in the first year (evaluation-time bias
                     of PFS)
- null               no treatment effect on death or progression (HR 1): every true contrast is 0 (ratios 1)
"""
from __future__ import annotations

from typing import Any

SCENARIOS: dict[str, dict[str, Any]] = {
    "default": {},
    "strong_confounding": {"confounding_strength": 2.0},
    "centre_effects": {"centre_outcome_sd": 0.4, "centre_outcome_haic_correlation": 0.6, "centre_haic_sd": 0.8},
    "immortal_time": {"haic_first_share": 0.50, "haic_delay_shares": [0.20, 0.55, 0.25],
                      "systemic_delay_shares": [0.10, 0.25, 0.30, 0.25, 0.10]},
    "mar_missing": {"missing_mechanism": "mar", "missing_rate": 0.12},
    "mnar_missing": {"missing_mechanism": "mnar", "missing_rate": 0.12, "missing_strength": 1.5},
    "imaging_by_arm": {"imaging_interval_days_haic": 42, "imaging_interval_days_control": 84},
    "null": {"true_hr_os": 1.0, "true_hr_pfs": 1.0},
}


def scenario_config(name: str, **overrides: Any) -> dict[str, Any]:
    """The generator keys of scenario `name` (SCENARIOS) with `overrides` on top (e.g. seed, n_records)."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    return {**SCENARIOS[name], **overrides}
