"""Cleaning: from harmonised centre tables to pseudonymised, analysis-ready tables.

Steps (each problem goes to the data-quality log with its centre, file, row and column):
1. read every centre folder through the contract (:mod:`analysis_utils.contract`);
2. remove exact duplicate rows within a file; mark duplicate patient records (same ``mrn`` twice in a centre, or the
   same person exported by two centres: same national ID, or same name and birth date). The first record in
   (centre, row) order is kept; the others stay in the screened table as ``duplicate_record`` exclusions;
3. pseudonymise: a stable study ID per (centre, mrn) = ``S`` + the first 10 hex digits of HMAC-SHA256(key,
   "centre|mrn"), then drop every identifier column of the contract;
4. derive per record: index date (start of the combination = first dose of the earlier of the two drug classes,
   the other class starting within ``combination_max_gap_days``), arm (HAIC-TKIs-P when HAIC is recorded, else
   TKIs-P), HAIC timing relative to the index date, combination cycles after HAIC, age at index, Child-Pugh points,
   score and class, ALBI score and grade, BCLC 2022 stage (checked against the recorded one), PVTT grades,
   baseline measurable intrahepatic disease, OS time and event.

Time is measured in days from the index date; months are days / (365.25 / 12).
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis_utils.study import recist

from analysis_utils.study import scores
from analysis_utils.study.contract import ContractError, load_contract, read_center
from analysis_utils.study.eligibility import apply_criteria, check_flow, flow_table
from analysis_utils.study.quality import QualityLog

DAYS_PER_MONTH = 365.25 / 12
ANTI_ANGIOGENIC = ("tki", "anti_vegf")
CHECKPOINT = ("pd1", "pdl1")
ARM_HAIC, ARM_CONTROL = "HAIC-TKIs-P", "TKIs-P"
CHILD_TABLES = ("haic_cycles", "systemic_courses", "tumour_assessments", "labs", "adverse_events", "follow_up")


@dataclass
class CleaningConfig:
    """Parameters of the cleaning step (``cleaning:`` section of the params file)."""

    data_cutoff: pd.Timestamp
    pseudonym_key: str
    haic_window_days: int = 90
    combination_max_gap_days: int = 30
    baseline_imaging_window_days: int = 42
    baseline_imaging_after_days: int = 7
    min_sd_days: int = 42
    confirm_min_days: int = 28

    @classmethod
    def from_params(cls, params: dict[str, Any], key: str) -> "CleaningConfig":
        c = params.get("cleaning", {})
        return cls(data_cutoff=pd.Timestamp(params["data_cutoff"]), pseudonym_key=key,
                   haic_window_days=int(c.get("haic_window_days", 90)),
                   combination_max_gap_days=int(c.get("combination_max_gap_days", 30)),
                   baseline_imaging_window_days=int(c.get("baseline_imaging_window_days", 42)),
                   baseline_imaging_after_days=int(c.get("baseline_imaging_after_days", 7)),
                   min_sd_days=int(c.get("min_sd_days", 42)), confirm_min_days=int(c.get("confirm_min_days", 28)))


@dataclass
class CleanedData:
    """Analysis-ready tables (no identifiers) plus the flow and the data-quality log."""

    screened: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    flow: pd.DataFrame
    quality: QualityLog = field(default_factory=QualityLog)

    @property
    def cohort(self) -> pd.DataFrame:
        """Eligible patients only: the analysis cohort."""
        return self.screened[self.screened["eligible"]].reset_index(drop=True)


# --------------------------------------------------------------------------------------------------- loading
def load_exports(input_dir: str | Path, log: QualityLog) -> dict[str, pd.DataFrame]:
    """Read every centre folder below ``input_dir`` and stack each table across centres."""
    root = Path(input_dir)
    if not root.is_dir():
        raise ContractError(f"{root}: input folder does not exist")
    centers = sorted(p for p in root.iterdir() if p.is_dir())
    if not centers:
        raise ContractError(f"{root}: no centre folders found (expected one folder per centre with manifest.yaml)")
    per_center = [read_center(c, log) for c in centers]
    ids = [t["patients"]["center_id"].iloc[0] for t in per_center if len(t["patients"])]
    if len(ids) != len(set(ids)):
        raise ContractError(f"{root}: two centre folders declare the same center_id in manifest.yaml")
    return {name: pd.concat([t[name] for t in per_center], ignore_index=True) for name in load_contract().tables}


def drop_exact_duplicate_rows(tables: dict[str, pd.DataFrame], log: QualityLog) -> dict[str, pd.DataFrame]:
    """Remove rows identical in every contract column to an earlier row of the same file (logged)."""
    out = {}
    for name, df in tables.items():
        content = [c for c in df.columns if c not in ("source_row",)]
        dup = df.duplicated(subset=content, keep="first")
        if dup.any():
            log.add_rows(df.loc[dup], rule="exact duplicate row in the file", action="row removed", severity="warning")
        out[name] = df.loc[~dup].reset_index(drop=True)
    return out


def study_id(center_id: pd.Series, mrn: pd.Series, key: str) -> pd.Series:
    """Stable pseudonym: 'S' + first 10 hex digits of HMAC-SHA256(key, 'centre|mrn')."""
    k = key.encode("utf-8")
    pairs = center_id.astype(str) + "|" + mrn.astype(str)
    ids = {p: "S" + hmac.new(k, p.encode("utf-8"), hashlib.sha256).hexdigest()[:10].upper() for p in pairs.unique()}
    return pairs.map(ids).astype("object")


def mark_duplicate_patients(patients: pd.DataFrame, log: QualityLog) -> pd.Series:
    """Return ``duplicate_of`` (study ID of the kept record, or None) for each patient row.

    Duplicates: the same mrn twice in one centre, or the same person in two centres (same national ID, or same
    name and birth date). The first record in (centre, row) order is kept.
    """
    dup_of = pd.Series(None, index=patients.index, dtype="object")
    order = patients.sort_values(["center_id", "source_row"], kind="mergesort")
    keys = [["center_id", "mrn"], ["national_id"], ["patient_name", "birth_date"]]
    for key in keys:
        sub = order.dropna(subset=key)
        sub = sub[sub["study_id"].notna()]
        first = sub.groupby(key, sort=False)["study_id"].transform("first")
        is_dup = (first != sub["study_id"]) | sub.duplicated(subset=key + ["study_id"], keep="first")
        newly = is_dup & dup_of.loc[sub.index].isna()
        dup_of.loc[newly[newly].index] = first[newly]
    rows = patients.loc[dup_of.notna()].assign(_v=dup_of[dup_of.notna()])
    log.add_rows(rows, rule="duplicate patient record (same mrn, national ID, or name and birth date)",
                 action="excluded as duplicate of the study ID in 'value'", column="mrn", value_col="_v", severity="warning")
    return dup_of


def pseudonymise(tables: dict[str, pd.DataFrame], key: str, log: QualityLog) -> tuple[dict[str, pd.DataFrame], pd.Series]:
    """Add ``study_id`` to every table, mark duplicate patients, then drop every identifier column."""
    identifiers = load_contract().identifier_columns()
    out = {}
    for name, df in tables.items():
        df = df.copy()
        df.insert(1, "study_id", study_id(df["center_id"], df["mrn"], key).where(df["mrn"].notna(), None))
        out[name] = df
    patients = out["patients"]
    dup_of = mark_duplicate_patients(patients, log)
    # the same mrn twice in one centre shares one study ID: give the duplicate row its own suffixed ID
    repeat = patients.duplicated(subset=["study_id"], keep="first") & patients["study_id"].notna()
    patients.loc[repeat, "study_id"] = patients.loc[repeat, "study_id"] + "-D" + patients.loc[repeat, "source_row"].astype(str)
    known = set(patients["study_id"].dropna())
    for name in CHILD_TABLES:
        df = out[name]
        orphan = df["study_id"].notna() & ~df["study_id"].isin(known)
        if orphan.any():
            log.add_rows(df.loc[orphan], rule="row refers to an mrn that is not in the centre's patients table",
                         action="row removed", column="mrn", redact=True, severity="error")
        out[name] = df.loc[~orphan].reset_index(drop=True)
    birth = patients["birth_date"].copy()
    for name, df in out.items():
        out[name] = df.drop(columns=[c for c in df.columns if c in identifiers])
    out["patients"]["duplicate_of"] = dup_of.values
    out["patients"]["_birth_date"] = birth.values  # used for age at index, dropped in derive_patients
    return out, dup_of


# --------------------------------------------------------------------------------------------------- derivations
def treatment_timing(patients: pd.DataFrame, systemic: pd.DataFrame, haic: pd.DataFrame,
                     cfg: CleaningConfig) -> pd.DataFrame:
    """Index date, agents, HAIC timing and combination-after-HAIC per study ID (see module docstring)."""
    sysc = systemic.dropna(subset=["study_id", "start_date"])
    aa = sysc[sysc["drug_class"].isin(ANTI_ANGIOGENIC)].sort_values(["study_id", "start_date", "agent"], kind="mergesort")
    ici = sysc[sysc["drug_class"].isin(CHECKPOINT)].sort_values(["study_id", "start_date", "agent"], kind="mergesort")
    first_aa = aa.groupby("study_id").agg(first_aa_date=("start_date", "first"), tki_agent=("agent", "first"))
    first_ici = ici.groupby("study_id").agg(first_ici_date=("start_date", "first"), pd1_agent=("agent", "first"))
    t = pd.DataFrame(index=pd.Index(patients["study_id"], name="study_id")).join(first_aa).join(first_ici)
    gap = (t["first_aa_date"] - t["first_ici_date"]).dt.days.abs()
    combo = gap <= cfg.combination_max_gap_days
    t["combination_gap_days"] = gap
    t["index_date"] = t[["first_aa_date", "first_ici_date"]].min(axis=1).where(combo)

    h = haic.dropna(subset=["study_id", "haic_date"]).sort_values(["study_id", "haic_date"], kind="mergesort")
    hagg = h.groupby("study_id").agg(first_haic_date=("haic_date", "first"), n_haic_cycles=("haic_date", "size"),
                                     haic_regimen=("regimen", "first"))
    t = t.join(hagg)
    t["n_haic_cycles"] = t["n_haic_cycles"].fillna(0).astype(int)
    t["haic_offset_days"] = (t["first_haic_date"] - t["index_date"]).dt.days

    def active_after(df: pd.DataFrame) -> pd.Series:
        d = df.merge(t[["first_haic_date"]], left_on="study_id", right_index=True)
        ok = d["stop_date"].isna() | (d["stop_date"] > d["first_haic_date"])
        return ok.groupby(d["study_id"]).any()

    t["combination_after_haic"] = (active_after(aa).reindex(t.index, fill_value=False)
                                   & active_after(ici).reindex(t.index, fill_value=False))
    t["arm"] = np.where(t["n_haic_cycles"] > 0, ARM_HAIC, ARM_CONTROL)
    t["haic"] = (t["n_haic_cycles"] > 0).astype(int)
    return t.reset_index()


def baseline_imaging(lesions: pd.DataFrame, index: pd.DataFrame, cfg: CleaningConfig) -> pd.DataFrame:
    """Per study ID: the baseline scan (as :func:`analysis_utils.recist.find_baseline` defines it) shows a
    measurable intrahepatic lesion (LD >= 10 mm, RECIST 1.1 measurability) and how many follow-up scans exist."""
    idx = index.dropna(subset=["study_id", "index_date"])
    les = lesions_for_engine(lesions[lesions["study_id"].isin(idx["study_id"])])
    base = recist.find_baseline(les, idx[["study_id", "index_date"]], cfg.baseline_imaging_window_days,
                                cfg.baseline_imaging_after_days)[["study_id", "baseline_date"]]
    les = les.merge(base, on="study_id")
    at_base = les[les["assessment_date"] == les["baseline_date"]]
    measurable = at_base[(at_base["organ"] == "liver") & (at_base["lesion_type"] != "new") & (at_base["ld_mm"] >= 10)]
    n_follow = les[les["assessment_date"] > les["baseline_date"]].groupby("study_id")["assessment_date"].nunique()
    out = base.set_index("study_id")
    out["baseline_measurable_liver"] = out.index.isin(measurable["study_id"])
    out["n_followup_scans"] = n_follow.reindex(out.index).fillna(0).astype(int)
    return out.reset_index()


def lesions_for_engine(lesions: pd.DataFrame) -> pd.DataFrame:
    """The harmonised lesion table with yes/no columns as nullable booleans, as the RECIST engine expects."""
    out = lesions.copy()
    for col in ("arterial_enhancement", "cytology_confirmed"):
        out[col] = out[col].map({"yes": True, "no": False}).astype("boolean")
    return out


def overall_survival(patients: pd.DataFrame, follow_up: pd.DataFrame, cfg: CleaningConfig,
                     log: QualityLog) -> pd.DataFrame:
    """OS from the index date to death from any cause; censored at the last contact or at the data cut-off.

    Corrections (logged): death recorded without a date -> death at the last contact date; an event or contact
    after the data cut-off -> censored at the cut-off; death or last contact before the index date -> no valid
    follow-up (the record fails ``invalid_follow_up``)."""
    fu = follow_up.dropna(subset=["study_id"]).drop_duplicates("study_id", keep="first")
    df = patients[["study_id", "center_id", "source_file", "source_row", "index_date"]].merge(
        fu[["study_id", "last_contact_date", "vital_status", "death_date", "source_file", "source_row"]],
        on="study_id", how="left", suffixes=("", "_fu"))
    loc = df.rename(columns={"source_file": "_pf", "source_row": "_pr", "source_file_fu": "source_file",
                             "source_row_fu": "source_row"})
    dead = df["vital_status"].eq("dead") | df["death_date"].notna()
    no_date = df["vital_status"].eq("dead") & df["death_date"].isna()
    if no_date.any():
        log.add_rows(loc[no_date], rule="vital status dead without a death date", column="death_date",
                     action="death dated at the last contact date")
    alive_with_date = df["vital_status"].isin(["alive", "lost"]) & df["death_date"].notna()
    if alive_with_date.any():
        log.add_rows(loc[alive_with_date], rule="death date recorded but vital status not dead", column="vital_status",
                     action="death date used (event)")
    end = df["death_date"].where(df["death_date"].notna(), df["last_contact_date"])
    end = end.where(dead | df["last_contact_date"].notna())
    after_cut = end > cfg.data_cutoff
    if after_cut.any():
        log.add_rows(loc[after_cut & dead], rule="death after the data cut-off", column="death_date",
                     action="censored at the data cut-off", severity="info")
    event = dead & ~after_cut
    end = end.where(~after_cut, cfg.data_cutoff)
    days = (end - df["index_date"]).dt.days
    no_fu = df["index_date"].notna() & (end.isna())
    before = df["index_date"].notna() & (days <= 0)
    if no_fu.any():
        log.add_rows(loc[no_fu], rule="no follow-up record or date", column="last_contact_date",
                     action="record fails 'invalid_follow_up'", severity="error")
    if before.any():
        log.add_rows(loc[before], rule="death or last contact on or before the index date", column="death_date",
                     action="record fails 'invalid_follow_up'", severity="error")
    return pd.DataFrame({"study_id": df["study_id"], "death_date": df["death_date"].where(event),
                         "follow_up_end_date": end, "os_days": days, "os_months": days / DAYS_PER_MONTH,
                         "os_event": event.astype(int), "vital_status": df["vital_status"],
                         "follow_up_valid": (days > 0) & df["index_date"].notna()})


def derive_patients(tables: dict[str, pd.DataFrame], cfg: CleaningConfig, log: QualityLog) -> pd.DataFrame:
    """One row per screened record with every derived variable and the eligibility flags."""
    p = tables["patients"].copy()
    timing = treatment_timing(p, tables["systemic_courses"], tables["haic_cycles"], cfg)
    p = p.merge(timing, on="study_id", how="left")
    age = np.floor((p["index_date"] - p.pop("_birth_date")).dt.days / 365.25)
    bad_age = age.notna() & ((age < 18) | (age > 100))
    if bad_age.any():
        log.add_rows(p.loc[bad_age], rule="age at index outside 18-100 years (birth date implausible)", column="birth_date",
                     action="age set to missing", redact=True, severity="error")
    p["age"] = age.where(~bad_age)

    points = scores.child_pugh_points(p["total_bilirubin"], p["albumin"], p["inr"], p["ascites"], p["encephalopathy"])
    p[list(points.columns)] = points
    p["child_pugh_score"] = points.sum(axis=1, min_count=points.shape[1]).astype("Int64")
    p["child_pugh_class"] = scores.child_pugh_class(p["child_pugh_score"])
    p["albi_score"] = scores.albi_score(p["total_bilirubin"], p["albumin"])
    p["albi_grade"] = scores.albi_grade(p["albi_score"])

    p["mvi"] = p["mvi"].map({"yes": True, "no": False}).astype("boolean")
    p["ehs"] = p["ehs"].map({"yes": True, "no": False}).astype("boolean")
    p = pd.concat([p, scores.pvtt_grades(p["mvi_grade"])], axis=1)
    inconsistent_grade = (p["mvi"] == False) & p["mvi_grade"].notna()  # noqa: E712
    if inconsistent_grade.any():
        log.add_rows(p.loc[inconsistent_grade], rule="PVTT grade recorded while macrovascular invasion is 'no'",
                     column="mvi_grade", action="grade kept; MVI kept as recorded", severity="warning")
    p["vp4"] = p["vp_grade"].eq("Vp4").astype("boolean").where(p["mvi"].notna())
    p.loc[p["mvi"] == False, "vp4"] = False  # noqa: E712

    p["bclc_derived"] = scores.bclc_b_or_c(p["mvi"], p["ehs"], p["ecog"])
    recorded = p["bclc_stage"].copy()
    differ = recorded.isin(["B", "C"]) & p["bclc_derived"].notna() & (recorded != p["bclc_derived"])
    if differ.any():
        log.add_rows(p.loc[differ].assign(_v=p.loc[differ, "bclc_derived"]), column="bclc_stage",
                     rule="recorded BCLC stage differs from the BCLC 2022 derivation (value = derived)",
                     action="recorded stage kept", value_col="_v", severity="info")
    fill = recorded.isna() & p["bclc_derived"].notna()
    if fill.any():
        log.add_rows(p.loc[fill], rule="BCLC stage missing", column="bclc_stage",
                     action="BCLC 2022 derivation used", severity="warning")
    p["bclc_stage"] = recorded.where(recorded.notna(), p["bclc_derived"])
    p["afp_ge_400"] = (p["afp"] >= 400).astype("boolean").where(p["afp"].notna())
    p["log10_afp"] = np.log10(p["afp"].clip(lower=1.0))
    p["multiple_tumours"] = (p["tumour_number"] > 1).astype("boolean").where(p["tumour_number"].notna())
    p["max_tumour_size_cm"] = p.pop("max_tumour_size")

    img = baseline_imaging(tables["tumour_assessments"], p[["study_id", "index_date"]], cfg)
    p = p.merge(img, on="study_id", how="left")
    os_ = overall_survival(p, tables["follow_up"], cfg, log)
    p = p.merge(os_, on="study_id", how="left")
    p = apply_criteria(p, cfg.haic_window_days)
    return p


def derive_response_endpoints(screened: pd.DataFrame, lesions: pd.DataFrame, cfg: CleaningConfig,
                              log: QualityLog) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Best overall response and PFS per RECIST 1.1 and per mRECIST (:mod:`analysis_utils.recist`).

    For each criterion: ``bor_<c>`` (unconfirmed, the main definition), ``bor_<c>_confirmed`` (CR/PR confirmed
    >= ``confirm_min_days`` later, sensitivity), ``best_pct_change_<c>``, ``first_pd_date_<c>`` and PFS:
    event = first scan documenting PD or death from any cause, whichever comes first; otherwise censored at the
    last adequate assessment (rules file 1.6), or at the index date when there is none. Events after the data
    cut-off are censored at the cut-off. Returns the screened table with these columns and, per criterion, the
    time-point table, the per-patient summary and the site-versus-derived agreement table.
    """
    out = screened.copy()
    idx = out.loc[out["index_date"].notna(), ["study_id", "index_date"]]
    les = lesions_for_engine(lesions[lesions["study_id"].isin(idx["study_id"])])
    extra: dict[str, pd.DataFrame] = {}
    center_of = out.set_index("study_id")["center_id"]
    for crit in recist.CRITERIA:
        kw = dict(min_sd_days=cfg.min_sd_days, confirm_min_days=cfg.confirm_min_days,
                  baseline_window_days=cfg.baseline_imaging_window_days,
                  grace_days_after_index=cfg.baseline_imaging_after_days)
        res = recist.derive_response(les, idx, crit, confirm=False, **kw)
        conf = recist.derive_response(les, idx, crit, confirm=True, **kw)
        if crit == recist.CRITERIA[0]:  # the engine's data-quality entries are the same for both criteria
            for rec in res.data_quality.to_dict("records"):
                date = rec["assessment_date"].strftime("%Y-%m-%d") if pd.notna(rec["assessment_date"]) else ""
                log.add(rule=f"tumour assessment: {rec['rule']}", action=rec["action"],
                        center_id=center_of.get(rec["study_id"], ""), file="tumour_assessments",
                        study_id=rec["study_id"], column=rec["column"], value=f"{date} {rec['lesion_id'] or ''}".strip())
        summ = res.summary.set_index("study_id")
        csum = conf.summary.set_index("study_id")
        out[f"bor_{crit}"] = out["study_id"].map(summ["bor"].astype("object"))
        out[f"bor_{crit}_confirmed"] = out["study_id"].map(csum["bor"].astype("object"))
        out[f"best_pct_change_{crit}"] = out["study_id"].map(summ["best_pct_change"])
        out[f"n_targets_{crit}"] = out["study_id"].map(summ["n_targets"])
        pd_date = out["study_id"].map(summ["first_pd_date"])
        pd_date = pd_date.where(pd_date <= cfg.data_cutoff)
        last_ok = out["study_id"].map(summ["last_adequate_date"])
        death = out["death_date"]  # already NaT when after the cut-off (overall_survival)
        event_date = pd.concat([pd_date, death], axis=1).min(axis=1)
        censor_date = last_ok.where(last_ok.notna() & (last_ok > out["index_date"]), out["index_date"])
        censor_date = censor_date.where(censor_date <= cfg.data_cutoff, cfg.data_cutoff)
        end = event_date.where(event_date.notna(), censor_date)
        days = (end - out["index_date"]).dt.days
        out[f"first_pd_date_{crit}"] = pd_date
        out[f"pfs_{crit}_days"] = days
        out[f"pfs_{crit}_months"] = days / DAYS_PER_MONTH
        out[f"pfs_{crit}_event"] = event_date.notna().astype(int).where(out["index_date"].notna())
        out[f"pfs_{crit}_by_death"] = (pd_date.isna() & death.notna()).astype(int).where(out["index_date"].notna())
        extra[f"response_timepoints_{crit}"] = res.timepoints
        extra[f"response_summary_{crit}"] = res.summary.merge(
            conf.summary[["study_id", "bor"]].rename(columns={"bor": "bor_confirmed"}), on="study_id", how="left")
        extra[f"site_agreement_{crit}"] = site_agreement(out, crit, log)
    return out, extra


def site_agreement(screened: pd.DataFrame, crit: str, log: QualityLog) -> pd.DataFrame:
    """Cross-table of the site-recorded best response against the derived one (unconfirmed); each discordant
    record is listed in the data-quality log. Site values are compared, never used."""
    site, derived = screened[f"site_bor_{crit}"], screened[f"bor_{crit}"]
    both = site.notna() & derived.notna()
    order = ["CR", "PR", "SD", "PD", "NE"]
    table = pd.crosstab(pd.Categorical(site[both], order), pd.Categorical(derived[both], order), dropna=False)
    table.index.name, table.columns.name = f"site_{crit}", f"derived_{crit}"
    differ = both & (site != derived)
    if differ.any():
        rows = screened.loc[differ].assign(_v=site[differ] + " (site) vs " + derived[differ] + " (derived)")
        log.add_rows(rows, rule=f"site-recorded best response per {crit} differs from the derived one",
                     action="derived response used", column=f"site_bor_{crit}", value_col="_v", severity="info")
    return table.reset_index()


def add_days_from_index(df: pd.DataFrame, index: pd.DataFrame, date_col: str) -> pd.DataFrame:
    """Attach ``days_from_index`` (date minus the patient's index date) to a child table."""
    out = df.merge(index[["study_id", "index_date"]], on="study_id", how="left")
    out["days_from_index"] = (out[date_col] - out["index_date"]).dt.days.astype("Int64")
    return out.drop(columns=["index_date"])


def clean(input_dir: str | Path, cfg: CleaningConfig, log: QualityLog | None = None) -> CleanedData:
    """Run the whole cleaning step on a folder of centre exports (never writes to it)."""
    log = log or QualityLog()
    tables = load_exports(input_dir, log)
    tables = drop_exact_duplicate_rows(tables, log)
    tables, _ = pseudonymise(tables, cfg.pseudonym_key, log)
    screened = derive_patients(tables, cfg, log)
    screened, response_tables = derive_response_endpoints(screened, tables["tumour_assessments"], cfg, log)
    index = screened[["study_id", "index_date"]]
    date_cols = {"haic_cycles": "haic_date", "systemic_courses": "start_date", "tumour_assessments": "assessment_date",
                 "labs": "lab_date", "adverse_events": "onset_date", "follow_up": "last_contact_date"}
    out_tables = {name: add_days_from_index(tables[name], index, col) for name, col in date_cols.items()}
    out_tables.update(response_tables)
    flow = flow_table(screened)
    check_flow(flow)
    return CleanedData(screened=screened, tables=out_tables, flow=flow, quality=log)
