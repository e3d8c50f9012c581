"""Analysis-ready path: the screened table the cleaning would produce, without writing or parsing exports.

`analysis_ready(config, seed)` runs the vectorised core (cohort.py) of replicate `seed` of the mechanism that
`config` fixes, and returns (screened, truth): one row per person (no referral duplicates, no typos, no unit
conversions) with the columns and dtypes of the cleaning's screened table for the columns the analyses use, and the
truth of the mechanism (`true_values`, computed once per configuration and cached). The cohort is
screened[screened["eligible"]]. Time zero is T0, the first treatment component (target-trial protocol,
docs/methods/eligibility-and-time-zero.md); the columns and how they agree with the export-and-clean path are listed
in docs/methods/synthetic-cohort.md, section 11 (tests/test_synthetic_analysis_ready.py checks them on a seed).

Derivations follow the pipeline's rules: Child-Pugh points, score and class, ALBI, BCLC B/C and the Vp/Cheng mapping
call study/scores.py (so the analysis-ready values are the pipeline's, not the generator's own); OS runs from T0 to
death or last contact; PFS per RECIST 1.1 and mRECIST = the first scan showing progression (the core's progression
visit, where the generator's lesions show progression under both criteria) or death, else censored at the last scan
(at T0 without one), as study/endpoints.py derives it. Eligibility uses only what is known at T0 and treats a blank
criterion field as missing, not failed (`criteria_missing` flags such records). Response (best overall response) needs
the lesion measurements and is not produced here: use the export path.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analysis_utils.study import scores
from analysis_utils.synthetic.cohort import Core, simulate_core
from analysis_utils.synthetic.config import ARM_DOUBLET, ARM_TRIPLE, DAYS_PER_MONTH, resolve_config
from analysis_utils.synthetic.dgm import mechanism
from analysis_utils.synthetic.truth import truth_document

EXCLUDED_HISTOLOGY = ("cholangiocarcinoma", "fibrolamellar", "sarcomatoid", "combined_hcc_cca")
CONFIRMED_BASES = ("radiology", "histology", "cytology")
T0_CRITERIA = ("duplicate_record", "hcc_not_confirmed", "excluded_histology", "bclc_not_b_or_c",
               "prior_systemic_therapy", "no_measurable_intrahepatic", "child_pugh_c", "ecog_above_2",
               "severe_encephalopathy", "invalid_follow_up")
CRITERION_FIELDS = ("diagnosis_basis", "histology_subtype", "prior_systemic_therapy", "ecog", "encephalopathy",
                    "ascites", "inr", "total_bilirubin", "albumin")
COMBINATION_MAX_GAP_DAYS = 30


def true_values(config: dict | None) -> dict[str, Any]:
    """The truth of the mechanism a configuration fixes (dgm.py, estimands.py), with the configuration."""
    cfg = resolve_config(config)
    mech = mechanism(cfg)
    return {**mech.truth, "config": {k: v for k, v in cfg.items() if k != "replicate_seed"}}


def analysis_ready(config: dict | None, seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(screened table, truth) of replicate `seed` of the mechanism of `config` (see the module docstring)."""
    cfg = resolve_config({**(config or {}), "replicate_seed": int(seed)})
    core = simulate_core(cfg)
    truth = truth_document(core)
    return screened_table(core), truth


def _dates(t0: np.ndarray, days: np.ndarray) -> np.ndarray:
    """T0 (datetime64[D]) + whole days (NaN -> NaT), as datetime64[ns]."""
    d = np.asarray(days, float)
    out = np.full(len(d), np.datetime64("NaT"), dtype="datetime64[D]")
    ok = np.isfinite(d)
    out[ok] = t0[ok] + d[ok].astype(int).astype("timedelta64[D]")
    return out.astype("datetime64[ns]")


def _observed(values: np.ndarray, blank: np.ndarray) -> pd.Series:
    """The value as exported: None (objects) or NaN where the core's missingness mask blanks it."""
    v = np.asarray(values)
    if v.dtype == object or v.dtype.kind in "US":
        return pd.Series(np.where(blank, None, v.astype(object)), dtype=object)
    return pd.Series(np.where(blank, np.nan, v.astype(float)))


def screened_table(core: Core) -> pd.DataFrame:
    """The screened table of a core (one row per person; see the module docstring)."""
    p, masks, centres = core.persons, core.missing, core.mech.centres
    cidx = p["centre_idx"].to_numpy()
    t0 = p["index_date"].to_numpy().astype("datetime64[D]")
    ids = np.array([c.center_id for c in centres], dtype=object)
    c: dict[str, object] = {"center_id": pd.Series(ids[cidx], dtype=object),
                            "study_id": pd.Series([f"{ids[k]}-{i:05d}" for k, i in zip(cidx, p["person_id"])],
                                                  dtype=object),
                            "person_id": p["person_id"].to_numpy()}
    for col in ("sex", "diagnosis_basis", "histology_subtype", "etiology", "ascites", "encephalopathy",
                "prior_local_therapy", "prior_systemic_therapy"):
        c[col] = _observed(p[col].to_numpy(object), masks[col] if col in masks else np.zeros(len(p), bool))
    c["diagnosis_date"] = np.where(masks["diagnosis_date"], np.datetime64("NaT"),
                                   p["diagnosis_date"].to_numpy().astype("datetime64[D]")).astype("datetime64[ns]")
    # HAIC first (T0 before the first systemic dose): the cleaning takes the baseline labs from the labs table's
    # window ending at T0 (study/baseline.py), where the generator's first draw is the exact baseline value (labs.py),
    # so a blank patients-table INR or AFP is not blank after the cleaning
    first_sys = np.fmin(core.systemic.first_tki()[1], core.systemic.pd1_start)
    haic_first = np.nan_to_num(first_sys, nan=0.0) > 0
    for col in ("ecog", "inr", "afp", "pivka_ii", "tumour_number"):
        blank = masks[col] & ~haic_first if col in ("inr", "afp") else masks[col]
        c[col] = _observed(p[col].to_numpy(float), blank)
    c["total_bilirubin"] = p["total_bilirubin"].to_numpy(float)
    c["albumin"] = p["albumin"].to_numpy(float)
    c["bclc_stage"] = _observed(p["bclc_recorded"].to_numpy(object), masks["bclc_stage"])
    mvi = p["mvi"].to_numpy(bool)
    c["mvi"] = pd.array(np.where(masks["mvi"], None, mvi), dtype="boolean")
    cheng = np.array([k.mvi_system == "cheng" for k in centres])[cidx]
    grade = np.where(cheng, p["cheng_grade"].to_numpy(object), p["vp_grade"].to_numpy(object))
    c["mvi_grade"] = pd.Series(np.where((grade == "") | (masks["mvi_grade"] & mvi), None, grade), dtype=object)
    c["ehs"] = pd.array(np.where(masks["ehs"], None, p["ehs"].to_numpy(bool)), dtype="boolean")
    c["duplicate_of"] = pd.Series([None] * len(p), dtype=object)
    c.update(_treatment(core, t0))
    c.update(_baseline(c, p, masks, t0))
    c.update(_endpoints(core, t0))
    out = pd.DataFrame(c)
    return pd.concat([out, _eligibility(out)], axis=1)


def _treatment(core: Core, t0: np.ndarray) -> dict[str, object]:
    """First doses, agents, combination, HAIC timing, the arm at T0 and the naive "ever HAIC" arm."""
    p, sysc = core.persons, core.systemic
    tki_agent, aa_day = sysc.first_tki()      # the first TKI/anti-VEGF course of any line, as the cleaning reads it
    gap = np.abs(aa_day - sysc.pd1_start)
    combo = gap <= COMBINATION_MAX_GAP_DAYS
    combination_days = np.where(combo, np.fmax(aa_day, sysc.pd1_start), np.nan)
    haic = p["first_haic_day"].to_numpy(float)
    at_t0 = haic == 0
    return {
        "first_aa_date": _dates(t0, aa_day), "tki_agent": pd.Series(tki_agent, dtype=object),
        "first_ici_date": _dates(t0, sysc.pd1_start),
        "pd1_agent": pd.Series(np.where(np.isfinite(sysc.pd1_start), sysc.pd1_agent, None), dtype=object),
        "combination_gap_days": gap,
        "first_systemic_date": _dates(t0, np.fmin(aa_day, sysc.pd1_start)),
        "combination_start_date": _dates(t0, combination_days), "combination_start_days": combination_days,
        "index_date": t0.astype("datetime64[ns]"),
        "first_haic_date": _dates(t0, haic), "n_haic_cycles": p["n_haic_cycles"].to_numpy("int64"),
        "haic_offset_days": haic,
        "arm": pd.Series(np.where(at_t0, ARM_TRIPLE, ARM_DOUBLET), dtype=object),
        "haic": at_t0.astype("int64"), "haic_ever": np.isfinite(haic).astype("int64"),
        "arm_ever_haic": pd.Series(np.where(np.isfinite(haic), ARM_TRIPLE, ARM_DOUBLET), dtype=object),
    }


def _baseline(c: dict, p: pd.DataFrame, masks: dict[str, np.ndarray], t0: np.ndarray) -> dict[str, object]:
    """Age at T0 and the pipeline's scores (study/scores.py) on the values as exported."""
    bili, alb = pd.Series(c["total_bilirubin"]), pd.Series(c["albumin"])
    points = scores.child_pugh_points(bili, alb, c["inr"], c["ascites"], c["encephalopathy"])
    # completed years at T0 from the exported birth date (T0 - round(age x 365.25) days), the birthday counting
    at = pd.Series(pd.to_datetime(t0))
    birth = at - pd.to_timedelta(np.round(p["age"].to_numpy() * 365.25), unit="D")
    not_yet = (at.dt.month < birth.dt.month) | ((at.dt.month == birth.dt.month) & (at.dt.day < birth.dt.day))
    out: dict[str, object] = {"age": (at.dt.year - birth.dt.year - not_yet.astype(int)).to_numpy(float)}
    out.update({k: points[k] for k in points.columns})
    cp = points.sum(axis=1, min_count=points.shape[1]).astype("Int64")
    out["child_pugh_score"] = cp
    out["child_pugh_class"] = scores.child_pugh_class(cp)
    albi = scores.albi_score(bili, alb)
    out["albi_score"] = albi
    out["albi_grade"] = scores.albi_grade(albi)
    pv = scores.pvtt_grades(c["mvi_grade"])
    out.update({k: pv[k] for k in pv.columns})
    mvi = pd.Series(c["mvi"])
    vp4 = pv["vp_grade"].eq("Vp4").astype("boolean").where(mvi.notna())
    out["vp4"] = vp4.mask(mvi.eq(False).fillna(False).astype(bool), False)
    derived = scores.bclc_b_or_c(mvi, pd.Series(c["ehs"]), c["ecog"])
    out["bclc_derived"] = derived
    out["bclc_stage"] = c["bclc_stage"].where(c["bclc_stage"].notna(), derived)
    afp = c["afp"]
    out["afp_ge_400"] = (afp >= 400).astype("boolean").where(afp.notna())
    out["log10_afp"] = np.log10(afp.clip(lower=1.0))
    tn = c["tumour_number"]
    out["multiple_tumours"] = (tn > 1).astype("boolean").where(tn.notna())
    out["max_tumour_size_cm"] = _observed(p["max_tumour_size"].to_numpy(float), masks["max_tumour_size"])
    out["baseline_date"] = _dates(t0, p["baseline_scan_day"].to_numpy(float))
    out["baseline_measurable_liver"] = pd.array(np.round(p["max_tumour_size"].to_numpy() * 10) >= 10, dtype="boolean")
    return out


def _endpoints(core: Core, t0: np.ndarray) -> dict[str, object]:
    """OS and PFS (both criteria) as study/endpoints.py derives them from the exports' dates."""
    p = core.persons
    end = p["end_day"].to_numpy(float)
    dead = p["dead"].to_numpy(bool)
    out: dict[str, object] = {
        "n_followup_scans": p["n_post_baseline_scans"].to_numpy(float).astype("int64"),
        "death_date": _dates(t0, np.where(dead, end, np.nan)), "follow_up_end_date": _dates(t0, end),
        "os_days": end.astype("int64"), "os_months": end / DAYS_PER_MONTH, "os_event": dead.astype("int64"),
        "vital_status": pd.Series(np.where(dead, "dead", np.where(p["lost"], "lost", "alive")), dtype=object),
        "follow_up_valid": end > 0,
    }
    pd_day = p["progression_visit_day"].to_numpy(float)
    visits = core.imaging.visits
    last_scan = np.max(np.where(np.isfinite(visits), visits, -np.inf), axis=1)
    censor = np.where(np.isfinite(last_scan) & (last_scan > 0), last_scan, 0.0)
    event_day = np.fmin(pd_day, np.where(dead, end, np.nan))
    days = np.where(np.isfinite(event_day), event_day, censor)
    for crit in ("recist", "mrecist"):
        out[f"first_pd_date_{crit}"] = _dates(t0, pd_day)
        out[f"pfs_{crit}_days"] = days
        out[f"pfs_{crit}_months"] = days / DAYS_PER_MONTH
        out[f"pfs_{crit}_event"] = np.isfinite(event_day).astype("int64")
        out[f"pfs_{crit}_by_death"] = (np.isnan(pd_day) & dead).astype("int64")
    return out


def _eligibility(out: pd.DataFrame) -> pd.DataFrame:
    """fail_<criterion> per T0 criterion, exclusion_reason (first failed), eligible, criteria_missing."""
    def true(s: pd.Series) -> np.ndarray:
        return s.astype("boolean").fillna(False).to_numpy(bool)

    pts = out[["cp_bilirubin_pts", "cp_albumin_pts", "cp_inr_pts", "cp_ascites_pts",
               "cp_encephalopathy_pts"]].astype(float)
    f = {
        "duplicate_record": np.zeros(len(out), bool),
        "hcc_not_confirmed": true(out["diagnosis_basis"].notna() & ~out["diagnosis_basis"].isin(CONFIRMED_BASES)),
        "excluded_histology": true(out["histology_subtype"].isin(EXCLUDED_HISTOLOGY)),
        "bclc_not_b_or_c": true(out["bclc_stage"].notna() & ~out["bclc_stage"].isin(["B", "C"])),
        "prior_systemic_therapy": true(out["prior_systemic_therapy"].eq("yes")),
        "no_measurable_intrahepatic": ~out["baseline_measurable_liver"].to_numpy(bool),
        "child_pugh_c": ((pts.sum(axis=1, min_count=0) + pts.isna().sum(axis=1)) >= 10).to_numpy(),
        "ecog_above_2": true(out["ecog"] > 2),
        "severe_encephalopathy": true(out["encephalopathy"].eq("grade_3_4")),
        "invalid_follow_up": ~out["follow_up_valid"].to_numpy(bool),
    }
    flags = pd.DataFrame({f"fail_{name}": f[name] for name in T0_CRITERIA}, index=out.index)
    res = flags.copy()
    res["exclusion_reason"] = flags.idxmax(axis=1).str.removeprefix("fail_").where(flags.any(axis=1), None)
    res["eligible"] = ~flags.any(axis=1)
    res["criteria_missing"] = out[list(CRITERION_FIELDS)].isna().any(axis=1) | out["bclc_stage"].isna()
    return res
