"""Generator configuration and calibration constants.

`DEFAULTS` holds every key of the `synthetic:` section of params/default.yaml (the runner adds `seed` and
`data_cutoff` from the params' top level; keys left out of the params file take these defaults; every key is
documented in docs/methods/synthetic-cohort.md, section 10); `resolve_config` merges a config over them and validates
it. scenarios.py holds the simulation's named presets over DEFAULTS. The module
constants are the generator's calibration, shared by the stages; each says its basis: "cal. <topic>" for a target of
docs/methods/synthetic-cohort.md (calibration targets and their sources), ASSUMPTION where no source was found.
Numbers used by one stage only (baseline distributions, LAB_MODEL, defect rates) sit in that stage's module, and
each stage module's docstring lists its assumptions (`analysis_utils.synthetic.describe()` joins them).

Calibration topics cited ("cal. ..."): cohort size (size and allocation), baseline (covariates, treatment mixes,
confounding by indication), efficacy (OS, PFS, response), safety (adverse events, lab toxicity), data quality
(multicentre export defects), HAIC regimen, background population. Main primary sources behind them:
- triple versus doublet comparisons: Mei 2021, doi:10.3389/fonc.2021.618206; Chen 2021,
  doi:10.1186/s12885-021-08858-6; HAIC + lenvatinib + PD-1 in high-risk HCC 2024, doi:10.1186/s12885-024-12233-6;
  Lai 2022 (LTHAIC), doi:10.1016/j.ejca.2022.07.005; pooled OS HR 0.56 and PFS HR 0.63 (meta-analysis of
  10 studies, https://pmc.ncbi.nlm.nih.gov/articles/PMC12416889);
- HAIC sessions per patient (median 3, IQR 2-3): doi:10.3389/fimmu.2024.1303259;
- background Chinese HCC population (aetiology, AFP, diagnosis basis): doi:10.4251/wjgo.v15.i5.859.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np

GENERATOR_VERSION = "2.0.0"
ARM_TRIPLE = "HAIC-TKIs-P"
ARM_DOUBLET = "TKIs-P"
DAYS_PER_MONTH = 30.4375

DEFAULTS: dict[str, Any] = {
    # scenario (structure) seed: centres, their effects and the truth cohort; replicate_seed (null = seed): persons,
    # outcomes, events and exports of one replicate (simulation.py spawns replicate seeds, the mechanism stays fixed)
    "seed": 20261125,
    "replicate_seed": None,
    "n_centers": 14,
    "n_records": 1050,
    "accrual_start": "2023-01-01",
    "accrual_end": "2024-12-31",
    "data_cutoff": "2025-09-30",
    # treatment timing from T0 (the first treatment component; timing.py)
    "haic_share": 0.41,                          # P(natural HAIC start at any time; ~0.40 received)
    "haic_first_share": 0.70,                    # ... of which HAIC is the first component (day 0)
    "haic_delay_windows_days": [14, 90, 180],    # HAIC after a systemic start: windows 1-14, 15-90, 91-180 days
    "haic_delay_shares": [0.30, 0.50, 0.20],     # ... share of the late starters in each window (20 % beyond 90)
    "systemic_delay_windows_days": [0, 14, 42, 90, 150],   # systemic start after a first HAIC: 0, 1-14, 15-42, ...
    "systemic_delay_shares": [0.15, 0.35, 0.30, 0.15, 0.05],
    "confounding_strength": 1.0,                 # multiplies ASSIGN_COEF (0 = HAIC independent of the covariates)
    "centre_haic_sd": 0.5,                       # SD of the centres' HAIC log-odds shifts
    "centre_outcome_sd": 0.15,                   # SD of the centres' log-hazard shifts (death and progression)
    "centre_outcome_haic_correlation": 0.0,      # correlation of a centre's outcome shift with its HAIC shift
    # outcomes (outcomes.py): conditional HRs of current HAIC status, control medians under never-HAIC
    "true_hr_os": 0.62,
    "true_hr_pfs": 0.63,
    "median_os_control_months": 12.0,
    "median_pfs_control_months": 6.0,
    "weibull_shape_os": 1.2,
    "weibull_shape_pfs": 1.1,
    "loss_to_follow_up": 0.07,
    # schedules (schedule.py): year-1 scan interval by current HAIC status; lab draws around HAIC cycles
    "imaging_interval_days_haic": 42,
    "imaging_interval_days_control": 56,
    "labs_around_haic": True,
    # screening, exports and defects
    "ineligible_share": 0.13,
    "missing_rate": 0.05,
    "missing_mechanism": "mcar",                 # mcar, mar (observed covariates, centre, arm) or mnar (the value)
    "missing_strength": 1.0,                     # multiplies the MAR / MNAR log-odds coefficients
    "duplicate_share": 0.007,
    "typo_rate": 0.004,
    "xlsx_centers": 3,
    "chinese_centers": 4,
    # truth (estimands.py): potential outcomes of a large cohort under the grace-period strategies
    "truth_n": 200000,
    "truth_grace_days": 90,
    "truth_times_months": [12, 24],
    "truth_tau_months": 24,
}

# Mix of the criteria that persons built to be ineligible fail (exclusions.py; ASSUMPTION). Only criteria decided
# at T0: treatment after T0 (HAIC timing, the combination, follow-up scans) is adherence, not eligibility.
EXCLUSION_WEIGHTS: dict[str, float] = {
    "excluded_histology": 0.10, "diagnosis_basis_other": 0.06, "bclc_a_or_d": 0.08,
    "prior_systemic_therapy": 0.14, "no_measurable_lesion": 0.08, "child_pugh_c": 0.08, "ecog_3_4": 0.06,
    "encephalopathy_grade_3_4": 0.04,
}
# Persons who receive only one drug class (no combination) and persons without any follow-up scan exported:
# shares of all persons, drawn at random (independent of covariates and outcomes; ASSUMPTION).
NO_COMBINATION_SHARE = 0.02
NO_FOLLOWUP_IMAGING_SHARE = 0.01

# Log-hazard coefficients of death and latent progression (features built in treatment.model_features); ASSUMPTION,
# shaped by the cal. efficacy "shape hints".
OS_COEF = {"age10": 0.10, "ecog1": 0.30, "ecog2": 0.65, "albi": 0.75, "vp1_3": 0.30, "vp4": 0.65,
           "ehs": 0.35, "log10_afp": 0.15, "size_cm": 0.035, "multinodular": 0.15}
PFS_COEF = {"age10": 0.0, "ecog1": 0.20, "ecog2": 0.40, "albi": 0.35, "vp1_3": 0.25, "vp4": 0.45,
            "ehs": 0.35, "log10_afp": 0.25, "size_cm": 0.03, "multinodular": 0.20}
# Log-odds of HAIC initiation (timing.py: at T0 and per day after a systemic start), multiplied by
# confounding_strength: the cal. baseline doublet-arm shifts (confounding by indication); sizes ASSUMPTION.
ASSIGN_COEF = {"age10": -0.30, "ecog0": 0.80, "ehs": -0.55, "mvi": 0.50, "log_size": 0.40, "albi": -0.45,
               "multinodular": 0.20}
# Latent response score (outcomes.py): response depends on AFP, size and MVI (cal. efficacy shape hints); ASSUMPTION.
RESPONSE_COEF = {"log10_afp": -0.10, "size_cm": -0.02, "mvi": -0.15, "ehs": -0.20}
# Gaussian-copula correlation of the death and progression times (ASSUMPTION).
COPULA_RHO = 0.65
# SD minimum duration for the truth BOR: 6 weeks (docs/methods/recist-mrecist.md, best overall response; Eisenhauer
# 2009, doi:10.1016/j.ejca.2008.10.026).
TRUTH_MIN_SD_DAYS = 42
# Intended (latent) shares per realised arm, nested; the derived ORR is lower because some progress first.
LATENT_RESPONSE_RATES = {
    ARM_TRIPLE: {"recist_cr": 0.03, "mrecist_cr": 0.16, "recist_resp": 0.56, "mrecist_resp": 0.66},
    ARM_DOUBLET: {"recist_cr": 0.01, "mrecist_cr": 0.06, "recist_resp": 0.27, "mrecist_resp": 0.35},
}
# Planned HAIC cycles 1..8: median 3, IQR 2-3 (cal. baseline, doi:10.3389/fimmu.2024.1303259).
HAIC_CYCLE_P = np.array([0.10, 0.25, 0.40, 0.12, 0.06, 0.04, 0.02, 0.01])

# Baseline and treatment mixes (cal. baseline; TKI/anti-VEGF mix and "other" PD-(L)1 5 % ASSUMPTION).
ETIOLOGIES = ("hbv", "hcv", "hbv_hcv", "alcohol", "nafld", "other")
ETIOLOGY_P = (0.80, 0.025, 0.01, 0.06, 0.05, 0.055)
TKI_AGENTS = ("lenvatinib", "apatinib", "donafenib", "sorafenib", "bevacizumab")
TKI_P = (0.75, 0.10, 0.05, 0.03, 0.07)
PD1_AGENTS = ("camrelizumab", "tislelizumab", "sintilimab", "toripalimab", "pembrolizumab", "nivolumab",
              "atezolizumab")
PD1_P = (0.55, 0.25, 0.15, 0.02, 0.015, 0.005, 0.01)
DRUG_CLASS = {"lenvatinib": "tki", "apatinib": "tki", "donafenib": "tki", "sorafenib": "tki",
              "regorafenib": "tki", "bevacizumab": "anti_vegf", "camrelizumab": "pd1", "tislelizumab": "pd1",
              "sintilimab": "pd1", "toripalimab": "pd1", "pembrolizumab": "pd1", "nivolumab": "pd1",
              "atezolizumab": "pdl1", "durvalumab": "pdl1"}

# Reported clinical AEs: (any-grade, grade >= 3) per arm, highest grade available; cal. safety (ALL ASSUMPTION).
AE_RATES: dict[str, tuple[float, float, float, float, int]] = {
    #  term key             triple any, >=3, doublet any, >=3, max grade
    "hypertension": (0.35, 0.08, 0.40, 0.10, 4),
    "ppe": (0.25, 0.03, 0.30, 0.04, 3),
    "diarrhea": (0.25, 0.03, 0.25, 0.03, 4),
    "fatigue": (0.35, 0.03, 0.35, 0.03, 3),
    "abdominal_pain": (0.40, 0.03, 0.12, 0.01, 3),
    "nausea": (0.30, 0.01, 0.12, 0.005, 3),
    "vomiting": (0.20, 0.01, 0.08, 0.005, 4),
    "hypothyroidism": (0.15, 0.0, 0.18, 0.0, 4),
    "rash": (0.10, 0.01, 0.12, 0.01, 3),
    "fever": (0.20, 0.01, 0.08, 0.0, 4),
    "proteinuria": (0.25, 0.03, 0.30, 0.04, 3),
}
# Terms whose onset follows a HAIC cycle (mechanism: infusion, oxaliplatin).
HAIC_AE_TERMS = ("abdominal_pain", "nausea", "vomiting", "fever")

LAB_TESTS = ("alt", "ast", "bilirubin", "albumin", "platelets", "neutrophils", "wbc", "hemoglobin",
             "creatinine", "inr", "afp")
# Alternative units (keys of the contract's lab_units) and the share of centres using them (ASSUMPTION).
LAB_ALT_UNITS = {"alt": ("IU/L", 0.3), "ast": ("IU/L", 0.3), "platelets": ("/mm3", 0.12),
                 "neutrophils": ("/mm3", 0.12), "wbc": ("10^3/uL", 0.15), "hemoglobin": ("g/L", 0.5),
                 "creatinine": ("mg/dL", 0.15), "afp": ("IU/mL", 0.1), "inr": ("", 0.5)}


def _window_spec(cfg: dict, windows: str, shares: str, first_start: int) -> None:
    """Validate a (windows, shares) pair: increasing integer upper bounds >= first_start, shares >= 0 summing to 1
    (normalised in place)."""
    w, q = cfg[windows], cfg[shares]
    if not isinstance(w, (list, tuple)) or not isinstance(q, (list, tuple)) or len(w) != len(q) or not w:
        raise ValueError(f"synthetic.{windows} and synthetic.{shares} must be lists of the same length")
    try:
        w = [int(v) for v in w]
        q = [float(v) for v in q]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"synthetic.{windows} / {shares}: numbers expected") from exc
    if w[0] < first_start or any(b <= a for a, b in zip(w, w[1:])):
        raise ValueError(f"synthetic.{windows} must be increasing day bounds starting at >= {first_start}")
    if any(v < 0 for v in q) or abs(sum(q) - 1.0) > 1e-6:
        raise ValueError(f"synthetic.{shares} must be non-negative and sum to 1")
    cfg[windows], cfg[shares] = w, [v / sum(q) for v in q]


def _integer(cfg: dict, key: str, minimum: int) -> None:
    if isinstance(cfg[key], bool) or not isinstance(cfg[key], (int, np.integer)):
        raise ValueError(f"synthetic.{key} must be an integer, got {cfg[key]!r}")
    cfg[key] = int(cfg[key])
    if cfg[key] < minimum:
        raise ValueError(f"synthetic.{key} must be >= {minimum}")


def resolve_config(config: dict | None) -> dict:
    """Merge `config` over DEFAULTS and validate it; unknown keys or bad values raise ValueError naming the key."""
    config = dict(config or {})
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown synthetic config key(s): {', '.join(unknown)}; allowed: {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **config}
    for key, minimum in (("seed", 0), ("n_centers", 1), ("n_records", 1), ("xlsx_centers", 0),
                         ("chinese_centers", 0), ("truth_n", 1000), ("truth_grace_days", 0),
                         ("imaging_interval_days_haic", 21), ("imaging_interval_days_control", 21)):
        _integer(cfg, key, minimum)
    if cfg["replicate_seed"] is not None:
        _integer(cfg, "replicate_seed", 0)
    if cfg["n_records"] < 5 * cfg["n_centers"]:
        raise ValueError("synthetic.n_records must be at least 5 per centre")
    for key in ("xlsx_centers", "chinese_centers"):
        if not 0 <= cfg[key] <= cfg["n_centers"]:
            raise ValueError(f"synthetic.{key} must be between 0 and n_centers ({cfg['n_centers']})")
    for key in ("haic_share", "haic_first_share"):
        if not 0 < float(cfg[key]) < 1:
            raise ValueError(f"synthetic.{key} must be in (0, 1)")
        cfg[key] = float(cfg[key])
    for key in ("ineligible_share", "missing_rate", "duplicate_share", "typo_rate", "loss_to_follow_up"):
        if not 0 <= float(cfg[key]) < 0.5:
            raise ValueError(f"synthetic.{key} must be in [0, 0.5)")
    for key in ("true_hr_os", "true_hr_pfs", "median_os_control_months", "median_pfs_control_months",
                "weibull_shape_os", "weibull_shape_pfs", "truth_tau_months"):
        if not float(cfg[key]) > 0:
            raise ValueError(f"synthetic.{key} must be > 0")
        cfg[key] = float(cfg[key])
    for key in ("confounding_strength", "centre_haic_sd", "centre_outcome_sd", "missing_strength"):
        if not float(cfg[key]) >= 0:
            raise ValueError(f"synthetic.{key} must be >= 0")
        cfg[key] = float(cfg[key])
    if not -1 <= float(cfg["centre_outcome_haic_correlation"]) <= 1:
        raise ValueError("synthetic.centre_outcome_haic_correlation must be in [-1, 1]")
    cfg["centre_outcome_haic_correlation"] = float(cfg["centre_outcome_haic_correlation"])
    if cfg["missing_mechanism"] not in ("mcar", "mar", "mnar"):
        raise ValueError(f"synthetic.missing_mechanism must be mcar, mar or mnar, got {cfg['missing_mechanism']!r}")
    if not isinstance(cfg["labs_around_haic"], bool):
        raise ValueError("synthetic.labs_around_haic must be true or false")
    _window_spec(cfg, "haic_delay_windows_days", "haic_delay_shares", 1)
    _window_spec(cfg, "systemic_delay_windows_days", "systemic_delay_shares", 0)
    times = cfg["truth_times_months"]
    if not isinstance(times, (list, tuple)) or not times or not all(float(t) > 0 for t in times):
        raise ValueError("synthetic.truth_times_months must be a non-empty list of positive months")
    cfg["truth_times_months"] = [float(t) for t in times]
    for key in ("accrual_start", "accrual_end", "data_cutoff"):
        try:
            cfg[key] = _dt.date.fromisoformat(str(cfg[key])).isoformat()
        except ValueError as exc:
            raise ValueError(f"synthetic.{key} must be an ISO date YYYY-MM-DD, got {cfg[key]!r}") from exc
    if not cfg["accrual_start"] < cfg["accrual_end"] < cfg["data_cutoff"]:
        raise ValueError("synthetic dates must satisfy accrual_start < accrual_end < data_cutoff")
    return cfg
