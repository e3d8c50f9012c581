"""A reference data-generating mechanism whose answer is known, for checking the simulation itself.

Morris et al. (2019, section 5) advise checking simulation code on a mechanism where the methods' behaviour is known
before trusting it on the real one. This mechanism draws an analysis-ready cohort directly (the study's column
names, no exports): baseline covariates like the study's, a treatment assigned by a logistic model whose covariate
coefficients are multiplied by ``confounding`` (0: randomised, every method unbiased for its estimand), and Weibull
proportional-hazards OS with a conditional log-HR ``log_hr`` given exactly the covariates the adjusted Cox model of
params/default.yaml uses (so that model is correctly specified), administrative censoring uniform on 12-40 months
and 5 % loss to follow-up. Both potential outcomes come from the same exponential draw, so ``truth`` can score
every estimand. Knobs: the ``reference:`` section of a scenario with ``simulation.source: reference``.
Method: docs/methods/simulation.md.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analysis_utils.study.treatment import ARM_CONTROL, ARM_HAIC

DEFAULTS: dict[str, Any] = {"n": 900, "confounding": 0.0, "log_hr": math.log(0.62), "treated_share": 0.4,
                            "weibull_shape": 1.2, "weibull_scale_months": 18.0}
OUTCOME_COEF = {"age10": 0.25, "ecog1": 0.3, "ecog2": 0.6, "albi": 0.6, "mvi": 0.4, "ehs": 0.35, "afp": 0.3,
                "size": 0.03}
ASSIGN_COEF = {"ecog_any": -0.6, "mvi": 0.6, "ehs": -0.6, "size": 0.1, "albi": -0.6, "age10": -0.3}


def config(scenario_params: dict[str, Any]) -> dict[str, Any]:
    cfg = {**DEFAULTS, **(scenario_params.get("reference") or {})}
    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown reference key(s) {unknown}; allowed: {sorted(DEFAULTS)}")
    return cfg


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def draw(cfg: dict[str, Any], seed: int, n: int | None = None) -> dict[str, Any]:
    """Covariates, true propensity, treatment, both potential OS times and the censoring time of n persons."""
    rng = np.random.default_rng(int(seed))
    n = int(n or cfg["n"])
    age = np.clip(np.round(rng.normal(55, 10, n)), 22, 85)
    ecog = rng.choice([0, 1, 2], n, p=[0.35, 0.55, 0.10])
    albi = rng.normal(-2.5, 0.6, n)
    mvi = rng.random(n) < 0.6
    ehs = rng.random(n) < 0.3
    afp = rng.random(n) < 0.5
    size = np.round(np.exp(rng.normal(np.log(9), 0.4, n)), 1)
    x = {"age10": (age - 55) / 10, "ecog1": (ecog == 1) * 1.0, "ecog2": (ecog == 2) * 1.0, "ecog_any": (ecog > 0) * 1.0,
         "albi": albi + 2.5, "mvi": mvi * 1.0, "ehs": ehs * 1.0, "afp": afp * 1.0, "size": size - 9}
    lin = float(cfg["confounding"]) * sum(c * x[k] for k, c in ASSIGN_COEF.items())
    lo, hi = -10.0, 10.0
    for _ in range(60):   # intercept so that the mean propensity is treated_share
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _expit(mid + lin).mean() < cfg["treated_share"] else (lo, mid)
    ps = _expit((lo + hi) / 2 + lin)
    treated = rng.random(n) < ps
    eta = sum(c * x[k] for k, c in OUTCOME_COEF.items())
    e = rng.exponential(1.0, n)
    k, scale = float(cfg["weibull_shape"]), float(cfg["weibull_scale_months"])
    t0 = scale * (e * np.exp(-eta)) ** (1 / k)
    t1 = scale * (e * np.exp(-eta - float(cfg["log_hr"]))) ** (1 / k)
    censor = rng.uniform(12, 40, n)
    lost = rng.random(n) < 0.05
    censor = np.where(lost, np.minimum(censor, rng.uniform(1, 24, n)), censor)
    covariates = pd.DataFrame({
        "age": age, "sex": np.where(rng.random(n) < 0.87, "male", "female"),
        "etiology": np.where(rng.random(n) < 0.8, "hbv", "other"), "ecog": ecog.astype(float),
        "child_pugh_class": np.where(rng.random(n) < 0.85, "A", "B"), "albi_score": albi,
        "bclc_stage": np.where(mvi | ehs | (ecog > 0), "C", "B"),
        "multiple_tumours": pd.array(rng.random(n) < 0.6, dtype="boolean"), "max_tumour_size_cm": size,
        "mvi": pd.array(mvi, dtype="boolean"), "ehs": pd.array(ehs, dtype="boolean"),
        "afp_ge_400": pd.array(afp, dtype="boolean")})
    return {"covariates": covariates, "ps": ps, "treated": treated, "t1": t1, "t0": t0, "censor": censor}


def generate(scenario_params: dict[str, Any], seed: int) -> pd.DataFrame:
    """One analysis-ready cohort (columns as ``sources.ANALYSIS_COLUMNS``)."""
    d = draw(config(scenario_params), seed)
    t = np.where(d["treated"], d["t1"], d["t0"])
    frame = d["covariates"]
    n = len(frame)
    frame.insert(0, "study_id", [f"R{i:07d}" for i in range(n)])
    frame.insert(1, "center_id", "C01")
    frame.insert(2, "arm", np.where(d["treated"], ARM_HAIC, ARM_CONTROL))
    frame["os_months"] = np.minimum(t, d["censor"])
    frame["os_event"] = (t <= d["censor"]).astype(int)
    return frame


def truth_inputs(scenario_params: dict[str, Any], seed: int, n: int) -> dict[str, Any]:
    """Potential outcomes of a large cohort for ``truth.po_truths``."""
    cfg = config(scenario_params)
    d = draw(cfg, seed, n)
    return {"po": {"os": (d["t1"], d["t0"])}, "censor": d["censor"], "treated": d["treated"], "ps": d["ps"],
            "conditional": {"os": float(cfg["log_hr"])}, "n_persons": n, "n_treated": int(d["treated"].sum())}
