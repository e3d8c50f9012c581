"""Generator configuration and calibration constants.

`DEFAULTS` holds every key of the `synthetic:` section of params/default.yaml (the runner adds `seed` and
`data_cutoff` from the params' top level); `resolve_config` merges a config over them and validates it. The module
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

GENERATOR_VERSION = "1.0.0"
ARM_TRIPLE = "HAIC-TKIs-P"
ARM_DOUBLET = "TKIs-P"
DAYS_PER_MONTH = 30.4375

DEFAULTS: dict[str, Any] = {
    "seed": 20261125,
    "n_centers": 14,
    "n_records": 1050,
    "haic_share": 0.40,
    "accrual_start": "2023-01-01",
    "accrual_end": "2024-12-31",
    "data_cutoff": "2025-09-30",
    "true_hr_os": 0.62,
    "true_hr_pfs": 0.63,
    "median_os_control_months": 12.0,
    "median_pfs_control_months": 6.0,
    "weibull_shape_os": 1.2,
    "weibull_shape_pfs": 1.1,
    "ineligible_share": 0.13,
    "missing_rate": 0.05,
    "duplicate_share": 0.007,
    "typo_rate": 0.004,
    "loss_to_follow_up": 0.07,
    "xlsx_centers": 3,
    "chinese_centers": 4,
}

# Mix of the criteria that persons built to be ineligible fail (exclusions.py; ASSUMPTION).
EXCLUSION_WEIGHTS: dict[str, float] = {
    "excluded_histology": 0.10, "diagnosis_basis_other": 0.06, "bclc_a_or_d": 0.08,
    "prior_systemic_therapy": 0.14, "haic_outside_window": 0.10, "no_systemic_after_haic": 0.06,
    "no_combination": 0.12, "no_measurable_lesion": 0.08, "no_post_baseline_imaging": 0.08,
    "child_pugh_c": 0.08, "ecog_3_4": 0.06, "encephalopathy_grade_3_4": 0.04,
}

# Log-hazard coefficients of death and latent progression (features built in treatment.model_features); ASSUMPTION,
# shaped by the cal. efficacy "shape hints".
OS_COEF = {"age10": 0.10, "ecog1": 0.30, "ecog2": 0.65, "albi": 0.75, "vp1_3": 0.30, "vp4": 0.65,
           "ehs": 0.35, "log10_afp": 0.15, "size_cm": 0.035, "multinodular": 0.15}
PFS_COEF = {"age10": 0.0, "ecog1": 0.20, "ecog2": 0.40, "albi": 0.35, "vp1_3": 0.25, "vp4": 0.45,
            "ehs": 0.35, "log10_afp": 0.25, "size_cm": 0.03, "multinodular": 0.20}
# Log-odds of intended HAIC (treatment.assign_haic): the cal. baseline doublet-arm shifts (confounding by
# indication); sizes ASSUMPTION.
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


def resolve_config(config: dict | None) -> dict:
    """Merge `config` over DEFAULTS and validate it; unknown keys or bad values raise ValueError naming the key."""
    config = dict(config or {})
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown synthetic config key(s): {', '.join(unknown)}; allowed: {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **config}
    for key in ("seed", "n_centers", "n_records", "xlsx_centers", "chinese_centers"):
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], (int, np.integer)):
            raise ValueError(f"synthetic.{key} must be an integer, got {cfg[key]!r}")
        cfg[key] = int(cfg[key])
    if cfg["n_centers"] < 1:
        raise ValueError("synthetic.n_centers must be >= 1")
    if cfg["n_records"] < 5 * cfg["n_centers"]:
        raise ValueError("synthetic.n_records must be at least 5 per centre")
    for key in ("xlsx_centers", "chinese_centers"):
        if not 0 <= cfg[key] <= cfg["n_centers"]:
            raise ValueError(f"synthetic.{key} must be between 0 and n_centers ({cfg['n_centers']})")
    for key in ("haic_share",):
        if not 0 < float(cfg[key]) < 1:
            raise ValueError(f"synthetic.{key} must be in (0, 1)")
    for key in ("ineligible_share", "missing_rate", "duplicate_share", "typo_rate", "loss_to_follow_up"):
        if not 0 <= float(cfg[key]) < 0.5:
            raise ValueError(f"synthetic.{key} must be in [0, 0.5)")
    for key in ("true_hr_os", "true_hr_pfs", "median_os_control_months", "median_pfs_control_months",
                "weibull_shape_os", "weibull_shape_pfs"):
        if not float(cfg[key]) > 0:
            raise ValueError(f"synthetic.{key} must be > 0")
        cfg[key] = float(cfg[key])
    for key in ("accrual_start", "accrual_end", "data_cutoff"):
        try:
            cfg[key] = _dt.date.fromisoformat(str(cfg[key])).isoformat()
        except ValueError as exc:
            raise ValueError(f"synthetic.{key} must be an ISO date YYYY-MM-DD, got {cfg[key]!r}") from exc
    if not cfg["accrual_start"] < cfg["accrual_end"] < cfg["data_cutoff"]:
        raise ValueError("synthetic dates must satisfy accrual_start < accrual_end < data_cutoff")
    return cfg
