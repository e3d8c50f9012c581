"""Time-to-event endpoints from the index date: overall survival, best overall response and progression-free
survival per RECIST 1.1 and mRECIST, and the site-versus-derived response agreement.

Time is measured in days from the index date; months are days / (365.25 / 12).
"""
from __future__ import annotations

import pandas as pd

from analysis_utils.study import recist
from analysis_utils.study.baseline import lesions_for_engine
from analysis_utils.study.config import CleaningConfig
from analysis_utils.study.quality import QualityLog

DAYS_PER_MONTH = 365.25 / 12


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
        # the entries common to both criteria (input problems) are logged once, under the first criterion
        dq = res.data_quality.drop_duplicates()
        if crit != recist.CRITERIA[0]:
            dq = dq.merge(logged, how="left", indicator=True).query("_merge == 'left_only'").drop(columns="_merge")
        logged = dq if crit == recist.CRITERIA[0] else pd.concat([logged, dq], ignore_index=True)
        if len(dq):
            for rec in dq.to_dict("records"):
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
