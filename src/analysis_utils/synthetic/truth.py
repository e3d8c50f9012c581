"""Truth stage: the ground truth written beside raw/, which the pipeline never reads.

    ground_truth/truth.json          the estimands: potential-outcome truths of the target-trial contrasts
                                     (estimands.py, computed once per mechanism by dgm.py), conditional HRs, the
                                     configuration (scenario) and the mechanism's solved constants
    ground_truth/truth.yaml          generator version, seed, config, true effects, model, centres, calibration summary
    ground_truth/patients_truth.csv  one row per generated record (latent covariates, treatment timing, times,
                                     potential outcomes, responses, eligibility under the target-trial protocol and
                                     under the legacy cleaning rules)
    ground_truth/defects.csv         every injected defect: center_id, file, row (1-based data row), column, defect,
                                     original_value, written_value

Everything here comes from the generator's own latent, clean data (scores from population.py, truth BOR from
imaging.py, lab grades from labs.py, potential outcomes from outcomes.py), independently of the pipeline's
derivations. Eligibility: `eligible_t0` / `fails_criteria_t0` follow the target-trial protocol (only what is known at
T0: the built exclusions); `eligible` / `fails_criteria` follow the legacy cleaning rules (legacy.py) as long as the
cleaning in main uses them. Arms: `arm_t0` (HAIC on day 0 = T0), `realised_arm` (HAIC received at any time: the naive
"ever HAIC" classification). The calibration summary (calibration.py) is what to compare with the targets of
docs/methods/synthetic-cohort.md.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from analysis_utils.synthetic.calibration import calibration_summary
from analysis_utils.synthetic.cohort import Core
from analysis_utils.synthetic.config import (ASSIGN_COEF, COPULA_RHO, DAYS_PER_MONTH, EXCLUSION_WEIGHTS,
                                             GENERATOR_VERSION, LATENT_RESPONSE_RATES, OS_COEF, PFS_COEF,
                                             RESPONSE_COEF)
from analysis_utils.synthetic.events import Events
from analysis_utils.synthetic.exports import days_to_dates
from analysis_utils.synthetic.legacy import legacy_fails, legacy_index_day


def mechanism_summary(core: Core) -> dict:
    """The mechanism's solved constants and model coefficients (truth.yaml `model`, truth.json `mechanism`)."""
    cfg, mech = core.cfg, core.mech
    return {
        "weibull_scale_os_months": round(mech.scale_os, 4), "weibull_scale_progression_months": round(mech.scale_pfs, 4),
        "weibull_shape_os": cfg["weibull_shape_os"], "weibull_shape_progression": cfg["weibull_shape_pfs"],
        "copula_rho_death_progression": COPULA_RHO, "haic_process": mech.haic.as_dict(),
        "loss_prone_share": round(mech.loss_prone_share, 4),
        "os_coefficients": OS_COEF, "progression_coefficients": PFS_COEF,
        "haic_coefficients": {k: v * cfg["confounding_strength"] for k, v in ASSIGN_COEF.items()},
        "response_coefficients": RESPONSE_COEF, "latent_response_rates": LATENT_RESPONSE_RATES,
        "exclusion_weights": EXCLUSION_WEIGHTS,
        "missing_intercepts": {k: {str(g): a for g, a in v.items()} for k, v in mech.missing.intercepts.items()},
        "centre_outcome_log_hr": {c.center_id: round(c.outcome_loghr, 4) for c in mech.centres},
        "centre_haic_log_odds": {c.center_id: round(c.haic_logit, 4) for c in mech.centres},
    }


def truth_document(core: Core) -> dict:
    """truth.json: the estimands of the mechanism with the configuration that defines it."""
    cfg = {k: v for k, v in core.cfg.items() if k != "replicate_seed"}
    return {**core.mech.truth, "config": cfg, "mechanism": mechanism_summary(core)}


def write_truth(out: Path, core: Core, rec: pd.DataFrame, ev: Events, defects: pd.DataFrame) -> list[Path]:
    """Write ground_truth/truth.json, truth.yaml, patients_truth.csv and defects.csv; returns their paths."""
    gt = out / "ground_truth"
    gt.mkdir(parents=True, exist_ok=True)
    cfg, p, centres = core.cfg, core.persons, core.mech.centres
    truth = truth_frame(rec, p, ev)
    truth_path = gt / "patients_truth.csv"
    truth.to_csv(truth_path, index=False, lineterminator="\n", encoding="utf-8")
    defects_path = gt / "defects.csv"
    defects.to_csv(defects_path, index=False, lineterminator="\n", encoding="utf-8")
    json_path = gt / "truth.json"
    json_path.write_text(json.dumps(_plain(truth_document(core)), indent=1, ensure_ascii=False, allow_nan=False)
                         + "\n", encoding="utf-8")
    doc = {
        "generator": "analysis_utils.synthetic", "generator_version": GENERATOR_VERSION, "seed": cfg["seed"],
        "config": cfg,
        "true_effects": {
            "hr_os": cfg["true_hr_os"], "log_hr_os": round(math.log(cfg["true_hr_os"]), 6),
            "hr_progression": cfg["true_hr_pfs"], "log_hr_progression": round(math.log(cfg["true_hr_pfs"]), 6),
            "note": "conditional log-HR of current HAIC status (from the first HAIC on) in the Weibull PH models for "
                    "death and latent progression given the covariates and the centre; PFS = min(progression, "
                    "death). Target-trial truths (grace-period strategies): truth.json"},
        "model": mechanism_summary(core),
        "centres": [{"center_id": c.center_id, "n_records": c.n_records, "language": c.language,
                     "date_format": c.date_format, "file": c.file_ext, "bilirubin_unit": c.bili_unit,
                     "albumin_unit": c.alb_unit, "diameter_unit": c.diameter_unit, "mvi_system": c.mvi_system,
                     "records_site_bor": c.records_site_bor, "reports_lab_aes": c.reports_lab_aes,
                     "haic_logit_shift": round(c.haic_logit, 4), "outcome_log_hr": round(c.outcome_loghr, 4)}
                    for c in centres],
        "calibration_summary": calibration_summary(cfg, truth, p, ev, centres, defects),
    }
    truth_yaml = gt / "truth.yaml"
    truth_yaml.write_text(yaml.safe_dump(_plain(doc), allow_unicode=True, sort_keys=False), encoding="utf-8")
    return [json_path, truth_yaml, truth_path, defects_path]


def _plain(obj: Any) -> Any:
    """Convert numpy scalars/containers into plain Python for yaml.safe_dump / json.dumps (floats to 6 places)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return round(float(obj), 6) if math.isfinite(obj) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _date_or_blank(idx: np.ndarray, days: np.ndarray) -> np.ndarray:
    d = np.asarray(days, float)
    return np.where(np.isfinite(d), days_to_dates(idx, d).astype(str), "")


def truth_frame(rec: pd.DataFrame, p: pd.DataFrame, ev: Events) -> pd.DataFrame:
    """patients_truth.csv: one row per record (duplicates included), latent and derived values; days from T0."""
    legacy = pd.Series(legacy_fails(p, ev), index=p["person_id"].to_numpy())
    legacy_index = legacy_index_day(p, ev)
    df = rec.merge(p.drop(columns=["centre_idx"]), on="person_id", how="left")
    first_rec = rec.drop_duplicates("person_id").set_index("person_id")
    dup_of = [("" if src < 0 else f"{first_rec.at[src, 'center_id']}:{first_rec.at[src, 'mrn']}")
              for src in df["duplicate_of_record"]]
    idx = df["index_date"].to_numpy()
    fails_t0 = df["exclusion_criteria_built"].to_numpy()
    fails = df["person_id"].map(legacy).to_numpy()
    combination = np.where(np.abs(df["tki_start_day"] - df["pd1_start_day"]) <= 30,
                           np.fmax(df["tki_start_day"], df["pd1_start_day"]), np.nan)
    first_systemic = np.fmin(df["tki_start_day"], df["pd1_start_day"])
    pfs_latent = np.minimum(df["os_latent_months"], df["progression_latent_months"])
    t = pd.DataFrame({
        "center_id": df["center_id"], "mrn": df["mrn"], "record_id": df["record_id"], "person_id": df["person_id"],
        "duplicate_of": dup_of, "arm_t0": df["arm_t0"], "realised_arm": df["realised_arm"],
        "intended_arm": df["intended_arm"], "immortal_time_switch": df["immortal_time_switch"],
        "exclusion_criterion": df["exclusion_criterion"], "exclusion_criteria_built": df["exclusion_criteria_built"],
        "fails_criteria_t0": fails_t0, "eligible_t0": fails_t0 == "",
        "fails_criteria": fails, "eligible": fails == "",
        "t0_date": idx.astype("datetime64[D]").astype(str),
        "haic_natural_day": np.where(np.isfinite(df["haic_natural_day"]), df["haic_natural_day"], np.nan),
        "first_haic_day": df["first_haic_day"], "n_haic_cycles": df["n_haic_cycles"],
        "systemic_start_day_natural": df["systemic_start_day"], "first_systemic_day": first_systemic,
        "tki_start_day": df["tki_start_day"], "pd1_start_day": df["pd1_start_day"],
        "combination_start_day": combination, "legacy_index_day": df["person_id"].map(legacy_index).to_numpy(),
        "n_initial_drug_classes": df["n_initial_drug_classes"],
        "age": df["age"], "sex": df["sex"], "etiology": df["etiology"], "ecog": df["ecog"],
        "ascites": df["ascites"], "encephalopathy": df["encephalopathy"],
        "total_bilirubin_umol_l": df["total_bilirubin"], "albumin_g_l": df["albumin"], "inr": df["inr"],
        "child_pugh_score": df["child_pugh_score"], "child_pugh_class": df["child_pugh_class"],
        "albi_score": df["albi_score"], "albi_grade": df["albi_grade"], "afp_ng_ml": df["afp"],
        "pivka_ii": df["pivka_ii"], "tumour_number": df["tumour_number"], "max_tumour_size_cm": df["max_tumour_size"],
        "mvi": df["mvi"], "vp_grade": df["vp_grade"], "cheng_grade": df["cheng_grade"], "ehs": df["ehs"],
        "bclc_derived": df["bclc_derived"], "bclc_recorded": df["bclc_recorded"],
        "prior_local_therapy": df["prior_local_therapy"], "prior_systemic_therapy": df["prior_systemic_therapy"],
        "diagnosis_basis": df["diagnosis_basis"], "histology_subtype": df["histology_subtype"],
        "propensity": df["ps"], "haic_lp": df["haic_lp"], "eta_os": df["eta_os"], "eta_progression": df["eta_pfs"],
        "os_latent_months": df["os_latent_months"], "progression_latent_months": df["progression_latent_months"],
        "pfs_latent_months": pfs_latent, "progression_latent_day": df["prog_day"],
        "os_if_tkis_p_months": df["os_if_tkis_p_months"], "os_if_haic_months": df["os_if_haic_months"],
        "progression_if_tkis_p_months": df["progression_if_tkis_p_months"],
        "progression_if_haic_months": df["progression_if_haic_months"],
        "os_if_strategy_a_months": df["os_if_strategy_a_months"],
        "os_if_strategy_b_months": df["os_if_strategy_b_months"],
        "progression_if_strategy_a_months": df["progression_if_strategy_a_months"],
        "progression_if_strategy_b_months": df["progression_if_strategy_b_months"],
        "censor_months": np.round(df["censor_day"] / DAYS_PER_MONTH, 3),
        "os_observed_months": np.round(df["end_day"] / DAYS_PER_MONTH, 3), "os_event": df["dead"],
        "lost_to_follow_up": df["lost"],
        "death_date": np.where(df["dead"], days_to_dates(idx, df["death_day"].to_numpy(float)).astype(str), ""),
        "last_contact_date": days_to_dates(idx, df["end_day"].to_numpy(float)).astype(str),
        "latent_response_recist": df["latent_response_recist"],
        "latent_response_mrecist": df["latent_response_mrecist"],
        "depth_ld": df["depth_ld"], "depth_viable": df["depth_viable"],
        "bor_recist": df["bor_recist"], "bor_mrecist": df["bor_mrecist"],
        "bor_recist_t0": df["bor_recist_t0"], "bor_mrecist_t0": df["bor_mrecist_t0"],
        "baseline_scan_date": _date_or_blank(idx, df["baseline_scan_day"].to_numpy(float)),
        "n_post_baseline_scans": df["n_post_baseline_scans"],
        "progression_visit_date": _date_or_blank(idx, df["progression_visit_day"].to_numpy(float)),
        "progression_mode": df["progression_mode"],
    })
    return t
