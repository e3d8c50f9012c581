"""Calibration summary of the realised cohort (truth.yaml `calibration_summary`): shares among the eligible persons
(target-trial protocol, no duplicates) per arm, treatment timing, SMDs, lab-derived CTCAE rates and defect counts, to
compare with the targets of docs/methods/synthetic-cohort.md. They depend on the seed; the page gives the targets.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis_utils.synthetic.config import ARM_DOUBLET, ARM_TRIPLE
from analysis_utils.synthetic.events import Events
from analysis_utils.synthetic.labs import ctcae_lab_grade
from analysis_utils.synthetic.population import Centre


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
    day 0 for everyone (the causal contrast behind true_hr_os / true_hr_pfs), and under the strategies A and B."""
    if el.empty:
        return {}
    out = {}
    for name in ("tkis_p", "haic", "strategy_a", "strategy_b"):
        os_ = el[f"os_if_{name}_months"]
        out[f"os_if_{name}"] = round(float(os_.median()), 3)
        out[f"pfs_if_{name}"] = round(float(np.minimum(os_, el[f"progression_if_{name}_months"]).median()), 3)
    return out


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


def _timing(cfg: dict, el: pd.DataFrame) -> dict:
    """Treatment timing among the eligible persons: HAIC received, HAIC-first, after the systemic start, beyond the
    grace period; the systemic start after a first HAIC (cal. baseline targets: ~40 % HAIC, ~70 % of it HAIC-first,
    20-30 % after the systemic start)."""
    if el.empty:
        return {}
    grace = cfg["truth_grace_days"]
    h = el["first_haic_day"].astype(float)
    got = h.notna()
    first = got & (h == 0)
    sys_day = el["first_systemic_day"].astype(float)

    def ratio(a: pd.Series, b: pd.Series) -> float | None:
        return round(float(a.sum() / b.sum()), 4) if b.sum() else None

    return {
        "haic_received_share": round(float(got.mean()), 4), "haic_at_t0_share": round(float(first.mean()), 4),
        "haic_first_among_haic": ratio(first, got), "haic_after_systemic_among_haic": ratio(got & (h > 0), got),
        "haic_beyond_grace_among_haic": ratio(got & (h > grace), got),
        "haic_natural_not_received": int(el["immortal_time_switch"].sum()),
        "haic_first_without_systemic": int((first & sys_day.isna()).sum()),
        "haic_first_systemic_same_day": ratio(first & (sys_day == 0), first),
        "haic_first_systemic_beyond_grace": ratio(first & (sys_day > grace), first),
        "systemic_delay_median_days_haic_first": float(sys_day[first].median()) if first.any() else None,
        "haic_delay_median_days_systemic_first": float(h[got & (h > 0)].median()) if (got & (h > 0)).any() else None,
        "without_combination_share": round(float(el["combination_start_day"].isna().mean()), 4),
    }


def calibration_summary(cfg: dict, truth: pd.DataFrame, p: pd.DataFrame, ev: Events, centres: list[Centre],
                        defects: pd.DataFrame) -> dict:
    """Shares among eligible persons (target-trial protocol, no duplicates) per arm (HAIC received at any time),
    to compare with the targets of docs/methods/synthetic-cohort.md."""
    el = truth[truth["eligible_t0"] & (truth["duplicate_of"] == "")]
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
            "orr_recist": share(df, df["bor_recist_t0"].isin(["CR", "PR"])),
            "orr_mrecist": share(df, df["bor_mrecist_t0"].isin(["CR", "PR"])),
            "cr_mrecist": share(df, df["bor_mrecist_t0"] == "CR"),
            "dcr_recist": share(df, df["bor_recist_t0"].isin(["CR", "PR", "SD"])),
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
        "n_failing_any_criterion": int((~truth["eligible_t0"]).sum()),
        "n_eligible_persons": int(len(el)),
        "n_failing_any_legacy_criterion": int((~truth["eligible"]).sum()),
        "n_eligible_legacy_persons": int((truth["eligible"] & (truth["duplicate_of"] == "")).sum()),
        "haic_share_eligible": round(float((el["realised_arm"] == ARM_TRIPLE).mean()), 4) if len(el) else None,
        "immortal_time_switches": int(truth["immortal_time_switch"].sum()),
        "treatment_timing_eligible": _timing(cfg, el),
        "haic_cycles_median": float(tri["n_haic_cycles"].median()) if len(tri) else None,
        "counterfactual_medians_eligible": _counterfactual_medians(el),
        "lab_derived_ctcae_rates": _lab_ae_rates(ev, p, centres, el),
        "triple": block(tri), "doublet": block(dbl), "smd_triple_vs_doublet_pooled_sd": smd,
        "missing_share_patients_table": _missing_share(defects, n_rec),
        "defect_counts": {k: int(v) for k, v in defects["defect"].value_counts().sort_index().items()},
    }
