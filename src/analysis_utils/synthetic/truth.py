"""Truth stage: the ground truth written beside raw/, which the pipeline never reads.

    ground_truth/truth.yaml          generator version, seed, config, true effects, model, centres, calibration summary
    ground_truth/patients_truth.csv  one row per generated record (latent covariates, times, responses, eligibility)
    ground_truth/defects.csv         every injected defect: center_id, file, row (1-based data row), column, defect,
                                     original_value, written_value

Everything here comes from the generator's own latent, clean data (scores from population.py, truth BOR from
imaging.py, lab grades from labs.py), independently of the pipeline's derivations. The calibration summary
(shares among eligible persons per arm, SMDs, lab-derived CTCAE rates, defect counts) is what to compare with the
targets of docs/methods/synthetic-cohort.md.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from analysis_utils.synthetic.config import (ARM_DOUBLET, ARM_TRIPLE, ASSIGN_COEF, COPULA_RHO, DAYS_PER_MONTH,
                                             EXCLUSION_WEIGHTS, GENERATOR_VERSION, LATENT_RESPONSE_RATES, OS_COEF,
                                             PFS_COEF, RESPONSE_COEF)
from analysis_utils.synthetic.events import Events
from analysis_utils.synthetic.exports import days_to_dates
from analysis_utils.synthetic.labs import ctcae_lab_grade
from analysis_utils.synthetic.population import Centre


def write_truth(out: Path, cfg: dict, model: dict, centres: list[Centre], rec: pd.DataFrame, p: pd.DataFrame,
                ev: Events, defects: pd.DataFrame) -> list[Path]:
    """Write ground_truth/truth.yaml, patients_truth.csv and defects.csv; returns their paths."""
    gt = out / "ground_truth"
    gt.mkdir(parents=True, exist_ok=True)
    truth = _truth_frame(rec, p, centres)
    truth_path = gt / "patients_truth.csv"
    truth.to_csv(truth_path, index=False, lineterminator="\n", encoding="utf-8")
    defects_path = gt / "defects.csv"
    defects.to_csv(defects_path, index=False, lineterminator="\n", encoding="utf-8")
    summary = _calibration_summary(truth, p, ev, centres, defects)
    doc = {
        "generator": "analysis_utils.synthetic", "generator_version": GENERATOR_VERSION, "seed": cfg["seed"],
        "config": cfg,
        "true_effects": {
            "hr_os": cfg["true_hr_os"], "log_hr_os": round(math.log(cfg["true_hr_os"]), 6),
            "hr_progression": cfg["true_hr_pfs"], "log_hr_progression": round(math.log(cfg["true_hr_pfs"]), 6),
            "note": "conditional log-HR of HAIC (time-varying from the first HAIC) in the Weibull PH models for "
                    "death and latent progression; PFS = min(progression, death)"},
        "model": {
            "weibull_scale_os_months": round(model["scale_os"], 4),
            "weibull_scale_progression_months": round(model["scale_pfs"], 4),
            "weibull_shape_os": cfg["weibull_shape_os"], "weibull_shape_progression": cfg["weibull_shape_pfs"],
            "copula_rho_death_progression": COPULA_RHO, "assignment_intercept": round(model["assign_intercept"], 4),
            "os_coefficients": OS_COEF, "progression_coefficients": PFS_COEF, "assignment_coefficients": ASSIGN_COEF,
            "response_coefficients": RESPONSE_COEF, "latent_response_rates": LATENT_RESPONSE_RATES,
            "exclusion_weights": EXCLUSION_WEIGHTS},
        "centres": [{"center_id": c.center_id, "n_records": c.n_records, "language": c.language,
                     "date_format": c.date_format, "file": c.file_ext, "bilirubin_unit": c.bili_unit,
                     "albumin_unit": c.alb_unit, "diameter_unit": c.diameter_unit, "mvi_system": c.mvi_system,
                     "records_site_bor": c.records_site_bor, "reports_lab_aes": c.reports_lab_aes,
                     "haic_logit_shift": round(c.haic_logit, 4)} for c in centres],
        "calibration_summary": summary,
    }
    truth_yaml = gt / "truth.yaml"
    truth_yaml.write_text(yaml.safe_dump(_plain(doc), allow_unicode=True, sort_keys=False), encoding="utf-8")
    return [truth_yaml, truth_path, defects_path]


def _plain(obj: Any) -> Any:
    """Convert numpy scalars/containers into plain Python for yaml.safe_dump."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return round(float(obj), 6)
    if isinstance(obj, float):
        return round(obj, 6)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _truth_frame(rec: pd.DataFrame, p: pd.DataFrame, centres: list[Centre]) -> pd.DataFrame:
    """patients_truth.csv: one row per record (duplicates included), latent and derived values."""
    df = rec.merge(p.drop(columns=["centre_idx"]), on="person_id", how="left")
    first_rec = rec.drop_duplicates("person_id").set_index("person_id")
    dup_of = [("" if src < 0 else f"{first_rec.at[src, 'center_id']}:{first_rec.at[src, 'mrn']}")
              for src in df["duplicate_of_record"]]
    idx = df["index_date"].to_numpy()
    fails = _fails_criteria(df)
    t = pd.DataFrame({
        "center_id": df["center_id"], "mrn": df["mrn"], "record_id": df["record_id"], "person_id": df["person_id"],
        "duplicate_of": dup_of, "intended_arm": df["intended_arm"], "realised_arm": df["realised_arm"],
        "immortal_time_switch": df["immortal_time_switch"], "exclusion_criterion": df["exclusion_criterion"],
        "exclusion_criteria_built": df["exclusion_criteria_built"], "fails_criteria": fails,
        "eligible": [f == "" for f in fails],
        "index_date": idx.astype("datetime64[D]").astype(str),
        "haic_offset_days": df["haic_offset_days"], "first_haic_day": df["first_haic_day"],
        "n_haic_cycles": df["n_haic_cycles"],
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
        "propensity": df["ps"], "eta_os": df["eta_os"], "eta_progression": df["eta_pfs"],
        "os_latent_months": df["os_latent_months"], "progression_latent_months": df["progression_latent_months"],
        "pfs_latent_months": np.minimum(df["os_latent_months"], df["progression_latent_months"]),
        "os_if_tkis_p_months": df["os_if_tkis_p_months"], "os_if_haic_months": df["os_if_haic_months"],
        "progression_if_tkis_p_months": df["progression_if_tkis_p_months"],
        "progression_if_haic_months": df["progression_if_haic_months"],
        "censor_months": np.round(df["censor_day"] / DAYS_PER_MONTH, 3),
        "os_observed_months": np.round(df["end_day"] / DAYS_PER_MONTH, 3), "os_event": df["dead"],
        "lost_to_follow_up": df["lost"],
        "death_date": np.where(df["dead"], days_to_dates(idx, df["death_day"].to_numpy(float)).astype(str), ""),
        "last_contact_date": days_to_dates(idx, df["end_day"].to_numpy(float)).astype(str),
        "latent_response_recist": df["latent_response_recist"],
        "latent_response_mrecist": df["latent_response_mrecist"],
        "depth_ld": df["depth_ld"], "depth_viable": df["depth_viable"],
        "bor_recist": df["bor_recist"], "bor_mrecist": df["bor_mrecist"],
        "n_post_baseline_scans": df["n_post_baseline_scans"], "n_initial_drug_classes": df["n_initial_drug_classes"],
        "progression_visit_date": np.where(np.isfinite(df["progression_visit_day"]),
                                           days_to_dates(idx, df["progression_visit_day"].to_numpy(float))
                                           .astype(str), ""),
        "progression_mode": df["progression_mode"],
    })
    return t


def _fails_criteria(df: pd.DataFrame) -> list[str]:
    """Every exclusion criterion a record fails on its latent (clean) data, in EXCLUSION_WEIGHTS order; the
    built-only criterion no_systemic_after_haic is taken from the build list."""
    offset = df["haic_offset_days"].to_numpy(float)
    realised = (df["realised_arm"] == ARM_TRIPLE).to_numpy()
    checks = {
        "excluded_histology": df["histology_subtype"].isin(
            ["cholangiocarcinoma", "fibrolamellar", "sarcomatoid", "combined_hcc_cca"]).to_numpy(),
        "diagnosis_basis_other": (df["diagnosis_basis"] == "other").to_numpy(),
        "bclc_a_or_d": df["bclc_recorded"].isin(["A", "D"]).to_numpy(),
        "prior_systemic_therapy": (df["prior_systemic_therapy"] == "yes").to_numpy(),
        "haic_outside_window": realised & (np.abs(np.nan_to_num(offset)) > 90),
        "no_systemic_after_haic": df["exclusion_criteria_built"].str.contains("no_systemic_after_haic").to_numpy(),
        "no_combination": (df["n_initial_drug_classes"] < 2).to_numpy(),
        "no_measurable_lesion": (df["max_tumour_size"] < 1.0).to_numpy(),
        "no_post_baseline_imaging": (df["n_post_baseline_scans"] == 0).to_numpy(),
        "child_pugh_c": (df["child_pugh_score"] >= 10).to_numpy(),
        "ecog_3_4": (df["ecog"] >= 3).to_numpy(),
        "encephalopathy_grade_3_4": (df["encephalopathy"] == "grade_3_4").to_numpy(),
    }
    return [";".join(name for name, fail in checks.items() if fail[i]) for i in range(len(df))]


def _lab_ae_rates(ev: Events, p: pd.DataFrame, centres: list[Centre], el: pd.DataFrame) -> dict:
    """Share of eligible persons per arm with a treatment-emergent lab AE (worst post-baseline CTCAE grade worse
    than the baseline grade), any grade and grade >= 3, from the clean canonical labs (cal. safety)."""
    labs = pd.DataFrame({k: np.concatenate([x[k] for x in ev.labs]) for k in ("person_id", "day", "test", "value")})
    labs = labs[labs["person_id"].isin(el["person_id"])].sort_values(["person_id", "test", "day"], kind="stable")
    cidx = p["centre_idx"].to_numpy()[labs["person_id"].to_numpy()]
    out: dict[str, dict] = {}
    for test in ("platelets", "neutrophils", "wbc", "hemoglobin", "alt", "ast", "bilirubin", "albumin",
                 "creatinine"):
        m = (labs["test"] == test).to_numpy()
        sub = labs[m]
        uln = np.array([centres[c].uln[test] for c in cidx[m]])
        lln = np.array([centres[c].lln[test] for c in cidx[m]])
        base = sub.groupby("person_id")["value"].transform("first").to_numpy()
        g = pd.Series(ctcae_lab_grade(test, sub["value"].to_numpy(), uln, lln, base), index=sub.index)
        first = ~sub["person_id"].duplicated().to_numpy()
        g0 = pd.Series(g.to_numpy()[first], index=sub["person_id"].to_numpy()[first])
        worst = g[~first].groupby(sub["person_id"].to_numpy()[~first]).max()
        emergent = worst.where(worst > g0.reindex(worst.index).fillna(0), 0)
        res = {}
        for a, key in ((ARM_TRIPLE, "triple"), (ARM_DOUBLET, "doublet")):
            ids = el.loc[el["realised_arm"] == a, "person_id"]
            w = emergent.reindex(ids).fillna(0)
            res[key] = {"any": round(float((w > 0).mean()), 4) if len(w) else None,
                        "grade_3_plus": round(float((w >= 3).mean()), 4) if len(w) else None}
        out[test] = res
    return out


def _counterfactual_medians(el: pd.DataFrame) -> dict:
    """Medians of the latent times of all eligible persons under TKIs-P for everyone and under HAIC from
    day 0 for everyone (the causal contrast behind true_hr_os / true_hr_pfs)."""
    if el.empty:
        return {}
    os0, os1 = el["os_if_tkis_p_months"], el["os_if_haic_months"]
    return {"os_if_tkis_p": round(float(os0.median()), 3), "os_if_haic": round(float(os1.median()), 3),
            "pfs_if_tkis_p": round(float(np.minimum(os0, el["progression_if_tkis_p_months"]).median()), 3),
            "pfs_if_haic": round(float(np.minimum(os1, el["progression_if_haic_months"]).median()), 3)}


_PATIENT_BASE_COLUMNS = 23   # non-identifier baseline columns of the patients table (sex ... prior_systemic)


def _missing_share(defects: pd.DataFrame, n_records: int) -> float:
    """Injected 'missing' cells of the patients tables / (records x 23 non-identifier baseline columns);
    the config's missing_rate aims at 3-8 % (cal. data quality)."""
    m = (defects["defect"] == "missing") & defects["file"].str.startswith("patients")
    return round(float(m.sum()) / (n_records * _PATIENT_BASE_COLUMNS), 4) if n_records else 0.0


def _smd_binary(a: np.ndarray, b: np.ndarray) -> float:
    p1, p0 = float(np.mean(a)), float(np.mean(b))
    den = math.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2)
    return (p1 - p0) / den if den > 0 else 0.0


def _smd_cont(a: np.ndarray, b: np.ndarray) -> float:
    den = math.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)
    return (float(np.mean(a)) - float(np.mean(b))) / den if den > 0 else 0.0


def _calibration_summary(truth: pd.DataFrame, p: pd.DataFrame, ev: Events, centres: list[Centre],
                         defects: pd.DataFrame) -> dict:
    """Shares among eligible persons (no duplicates) per arm, to compare with the targets of
    docs/methods/synthetic-cohort.md."""
    el = truth[truth["eligible"] & (truth["duplicate_of"] == "")]
    tri = el[el["realised_arm"] == ARM_TRIPLE]
    dbl = el[el["realised_arm"] == ARM_DOUBLET]

    def share(df: pd.DataFrame, expr: pd.Series) -> float:
        return round(float(expr.mean()), 4) if len(df) else float("nan")

    def block(df: pd.DataFrame) -> dict:
        if df.empty:
            return {}
        return {
            "n": int(len(df)), "age_median": float(df["age"].median()), "male": share(df, df["sex"] == "male"),
            "hbv_any": share(df, df["etiology"].isin(["hbv", "hbv_hcv"])), "ecog0": share(df, df["ecog"] == 0),
            "child_pugh_a": share(df, df["child_pugh_class"] == "A"),
            "albi_grade_1": share(df, df["albi_grade"] == 1), "albi_grade_3": share(df, df["albi_grade"] == 3),
            "bclc_c_derived": share(df, df["bclc_derived"] == "C"), "mvi": share(df, df["mvi"]),
            "vp4_among_mvi": share(df[df["mvi"]], df.loc[df["mvi"], "vp_grade"] == "Vp4"),
            "ehs": share(df, df["ehs"]), "afp_ge_400": share(df, df["afp_ng_ml"] >= 400),
            "multinodular": share(df, df["tumour_number"] > 1),
            "max_size_median_cm": float(df["max_tumour_size_cm"].median()),
            "os_latent_median_months": round(float(df["os_latent_months"].median()), 3),
            "pfs_latent_median_months": round(float(df["pfs_latent_months"].median()), 3),
            "orr_recist": share(df, df["bor_recist"].isin(["CR", "PR"])),
            "orr_mrecist": share(df, df["bor_mrecist"].isin(["CR", "PR"])),
            "cr_mrecist": share(df, df["bor_mrecist"] == "CR"),
            "dcr_recist": share(df, df["bor_recist"].isin(["CR", "PR", "SD"])),
            "deaths": int(df["os_event"].sum()), "lost_to_follow_up": share(df, df["lost_to_follow_up"]),
        }

    smd = {}
    if len(tri) and len(dbl):
        smd = {"age": _smd_cont(tri["age"].to_numpy(float), dbl["age"].to_numpy(float)),
               "ecog0": _smd_binary(tri["ecog"] == 0, dbl["ecog"] == 0),
               "ehs": _smd_binary(tri["ehs"], dbl["ehs"]), "mvi": _smd_binary(tri["mvi"], dbl["mvi"]),
               "max_size": _smd_cont(tri["max_tumour_size_cm"].to_numpy(float),
                                     dbl["max_tumour_size_cm"].to_numpy(float)),
               "albi": _smd_cont(tri["albi_score"].to_numpy(float), dbl["albi_score"].to_numpy(float))}
        smd = {k: round(v, 4) for k, v in smd.items()}
    n_rec = len(truth)
    return {
        "n_records": int(n_rec), "n_duplicate_records": int((truth["duplicate_of"] != "").sum()),
        "n_built_ineligible": int((truth["exclusion_criterion"] != "none").sum()),
        "n_failing_any_criterion": int((~truth["eligible"]).sum()),
        "n_eligible_persons": int(len(el)),
        "haic_share_eligible": round(float((el["realised_arm"] == ARM_TRIPLE).mean()), 4) if len(el) else None,
        "immortal_time_switches": int(truth["immortal_time_switch"].sum()),
        "haic_after_index_share": round(float((tri["first_haic_day"] > 0).mean()), 4) if len(tri) else None,
        "haic_cycles_median": float(tri["n_haic_cycles"].median()) if len(tri) else None,
        "counterfactual_medians_eligible": _counterfactual_medians(el),
        "lab_derived_ctcae_rates": _lab_ae_rates(ev, p, centres, el),
        "triple": block(tri), "doublet": block(dbl), "smd_triple_vs_doublet_pooled_sd": smd,
        "missing_share_patients_table": _missing_share(defects, n_rec),
        "defect_counts": {k: int(v) for k, v in defects["defect"].value_counts().sort_index().items()},
    }
