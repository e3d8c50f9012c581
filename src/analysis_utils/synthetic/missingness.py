"""Missingness stage: which baseline cells of each person's patients-table row are left blank.

Decided per person in the core (cohort.py), so that the exports (defects.py blanks the cell and logs it as
"missing") and the analysis-ready table (analysis_ready.py: NaN) agree. Rates at missing_rate = 0.05, scaled by
missing_rate / 0.05 (cal. data quality, ASSUMPTION): PIVKA-II per centre (25-70 %), ECOG 6.5 %, AFP 3.5 %, ascites and
encephalopathy 7 % each (so Child-Pugh is missing while ALBI is complete), Vp/Cheng grade 12 % of those with MVI,
1-3 % for the other baseline fields. Referral-duplicate records get their own independent (MCAR) blanks in
defects.py.

Mechanism (`missing_mechanism`, strength `missing_strength` = s) for ECOG, ascites, encephalopathy, AFP and
PIVKA-II; every other field is always MCAR:
- mcar: P(missing) = rate.
- mar:  logit P = a_v + s (0.5 age_z + 0.6 EHS - 0.6 HAIC-at-T0 + u_c), depending only on always-observed variables
        (age from the birth date, extrahepatic spread, the arm at T0, the centre; u_c ~ N(0, 0.7) per centre and
        variable from the scenario seed).
- mnar: logit P = a_v + s g_v z_v with z_v the value itself: ECOG 0/1/2+ (g = 1.0 per level), ascites none/mild/
        moderate-severe (1.0 per level), encephalopathy none/grade 1-2/grade 3-4 (1.5 per level), log10 AFP and
        log10 PIVKA-II standardised (0.8 per SD): worse values are missing more often.
The intercepts a_v (per centre for PIVKA-II) are solved per mechanism (dgm.py) on the calibration cohort so that the
mean rate equals the MCAR rate: the mechanisms change who is missing, not how many (all coefficients ASSUMPTION).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis_utils.synthetic.population import Centre
from analysis_utils.synthetic.timing import expit, solve_increasing

# Base rates at missing_rate = 0.05 of the patients-table fields (None: per centre, Centre.pivka_missing).
PATIENT_MISSING_RATES: dict[str, float | None] = {
    "pivka_ii": None, "ecog": 0.065, "afp": 0.035, "mvi_grade": 0.12, "ascites": 0.07, "encephalopathy": 0.07,
    "diagnosis_date": 0.02, "diagnosis_basis": 0.02, "histology_subtype": 0.02, "etiology": 0.02, "inr": 0.03,
    "tumour_number": 0.02, "max_tumour_size": 0.02, "prior_local_therapy": 0.02, "prior_systemic_therapy": 0.02,
    "bclc_stage": 0.02, "ehs": 0.02, "mvi": 0.01,
}
MECHANISM_FIELDS = ("ecog", "ascites", "encephalopathy", "afp", "pivka_ii")
MAR_COEF = {"age_z": 0.5, "ehs": 0.6, "haic_t0": -0.6}
MAR_CENTRE_SD = 0.7
MNAR_COEF = {"ecog": 1.0, "ascites": 1.0, "encephalopathy": 1.5, "afp": 0.8, "pivka_ii": 0.8}


@dataclass
class MissingModel:
    """Solved intercepts per mechanism field ({centre index: a} for PIVKA-II, {-1: a} otherwise) and the MAR
    centre shifts (n_fields x n_centres)."""
    intercepts: dict[str, dict[int, float]] = field(default_factory=dict)
    centre_shift: dict[str, np.ndarray] = field(default_factory=dict)


def base_rates(cfg: dict, centres: list[Centre], centre_idx: np.ndarray, column: str) -> np.ndarray:
    """Per person MCAR rate of `column`, scaled by missing_rate / 0.05 and capped at 0.95."""
    base = PATIENT_MISSING_RATES[column]
    scale = cfg["missing_rate"] / 0.05
    rate = (np.array([c.pivka_missing for c in centres])[centre_idx] if base is None
            else np.full(len(centre_idx), float(base)))
    return np.minimum(0.95, rate * scale)


def _score(cfg: dict, p: pd.DataFrame, column: str, shift: np.ndarray | None) -> np.ndarray:
    """The mechanism's log-odds term (without intercept) of `column` per person."""
    s = cfg["missing_strength"]
    if cfg["missing_mechanism"] == "mar":
        age_z = (p["age"].to_numpy(float) - 54.0) / 11.0
        terms = (MAR_COEF["age_z"] * age_z + MAR_COEF["ehs"] * p["ehs"].to_numpy(float)
                 + MAR_COEF["haic_t0"] * (p["haic_natural_day"].to_numpy(float) == 0))
        return s * (terms + (shift[p["centre_idx"].to_numpy()] if shift is not None else 0.0))
    if cfg["missing_mechanism"] == "mnar":
        if column == "ecog":
            z = np.minimum(p["ecog"].to_numpy(float), 2.0) - 1.0
        elif column == "ascites":
            z = p["ascites"].map({"none": 0.0, "mild": 1.0, "moderate_severe": 2.0}).to_numpy(float)
        elif column == "encephalopathy":
            z = p["encephalopathy"].map({"none": 0.0, "grade_1_2": 1.0, "grade_3_4": 2.0}).to_numpy(float)
        elif column == "afp":
            z = (np.log10(p["afp"].to_numpy(float)) - 2.7) / 1.25
        else:
            z = (np.log10(p["pivka_ii"].to_numpy(float)) - 3.0) / 1.0
        return s * MNAR_COEF[column] * z
    return np.zeros(len(p))


def calibrate_missing(cfg: dict, p: pd.DataFrame, centres: list[Centre], rng: np.random.Generator) -> MissingModel:
    """Intercepts so that each mechanism field's mean missing rate equals its MCAR rate on the cohort `p`."""
    model = MissingModel()
    if cfg["missing_mechanism"] == "mcar" or cfg["missing_rate"] <= 0:
        return model
    cidx = p["centre_idx"].to_numpy()
    for column in MECHANISM_FIELDS:
        shift = rng.normal(0.0, MAR_CENTRE_SD, len(centres)) if cfg["missing_mechanism"] == "mar" else None
        if shift is not None:
            model.centre_shift[column] = shift
        score = _score(cfg, p, column, shift)
        rate = base_rates(cfg, centres, cidx, column)
        groups = range(len(centres)) if PATIENT_MISSING_RATES[column] is None else [-1]
        model.intercepts[column] = {}
        for g in groups:
            m = np.ones(len(p), bool) if g < 0 else cidx == g
            if not m.any():
                model.intercepts[column][g] = float(np.log(rate[0] / (1 - rate[0]))) if len(rate) else 0.0
                continue
            target, sc = float(rate[m].mean()), score[m]

            def slope(a: float, sc: np.ndarray = sc) -> float:
                q = expit(a + sc)
                return float((q * (1 - q)).mean())

            model.intercepts[column][g] = solve_increasing(lambda a, sc=sc: float(expit(a + sc).mean()) - target,
                                                           slope, -30.0, 30.0)
    return model


def missing_masks(cfg: dict, p: pd.DataFrame, centres: list[Centre], model: MissingModel,
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per patients-table field, a boolean per person: the cell is left blank (if it has a value). One uniform
    draw per person and field, in PATIENT_MISSING_RATES order."""
    cidx = p["centre_idx"].to_numpy()
    masks = {}
    for column in PATIENT_MISSING_RATES:
        u = rng.random(len(p))
        rate = base_rates(cfg, centres, cidx, column)
        if column in model.intercepts:
            a = model.intercepts[column]
            a_i = np.array([a.get(int(c), a.get(-1, 0.0)) for c in range(len(centres))])[cidx] \
                if -1 not in a else np.full(len(p), a[-1])
            prob = expit(a_i + _score(cfg, p, column, model.centre_shift.get(column)))
        else:
            prob = rate
        masks[column] = u < prob
    return masks
