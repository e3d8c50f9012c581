"""Time-to-event endpoints from the index date: overall survival, best overall response and progression-free
survival per RECIST 1.1 and mRECIST, and the site-versus-derived response agreement.

PFS follows stated event and censoring rules (FDA 2018, "Clinical trial endpoints for the approval of cancer drugs
and biologics", Table 5 / Appendix; rules: docs/methods/pfs-rules.md): ``PfsRules`` holds the ``pfs_rules`` section
of the params, ``apply_pfs_rules`` applies it to one criterion's time points.

Time is measured in days from the index date; months are days / (365.25 / 12).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd

from analysis_utils.study import recist
from analysis_utils.study.baseline import lesions_for_engine
from analysis_utils.study.config import CleaningConfig
from analysis_utils.study.quality import QualityLog

DAYS_PER_MONTH = 365.25 / 12

# PFS rules: the situation each patient falls in (column pfs_<criterion>_rule), in the order they are checked
PFS_CENSOR_NEW_THERAPY: Final = "censored: new anticancer therapy before progression"
PFS_CENSOR_NO_ADEQUATE: Final = "censored at time zero: no adequate post-baseline assessment"
PFS_EVENT_EARLY_DEATH: Final = "event: death within the first assessment window, no adequate assessment"
PFS_CENSOR_MISSED: Final = "censored: progression or death after missed assessments"
PFS_EVENT_PD: Final = "event: progression"
PFS_EVENT_DEATH: Final = "event: death without progression"
PFS_CENSOR_NO_EVENT: Final = "censored: alive without progression"
PFS_RULES: Final = (PFS_EVENT_PD, PFS_EVENT_DEATH, PFS_EVENT_EARLY_DEATH, PFS_CENSOR_MISSED, PFS_CENSOR_NEW_THERAPY,
                    PFS_CENSOR_NO_ADEQUATE, PFS_CENSOR_NO_EVENT)
NEW_THERAPY_OPTIONS: Final = ("primary", "sensitivity", "none")


@dataclass(frozen=True)
class PfsRules:
    """The ``pfs_rules`` section of the params (docs/methods/pfs-rules.md).

    schedule: the planned imaging schedule from the index date as blocks ``{"every_days": d, "until_day": u}``
    (the last block without ``until_day`` runs on): scheduled assessments at d, 2d, ... up to u, then on from the
    last of them with the next block's interval. visit_window_days: an assessment within +-w days of a scheduled day is that
    visit. missed_assessments: PD or death after at least this many consecutive missed scheduled assessments is
    censored at the last adequate assessment (0 switches the rule off). new_anticancer_therapy: "primary" (the
    main PFS censors at the last adequate assessment before a new anticancer therapy started before PD),
    "sensitivity" (only the sensitivity definition does) or "none".
    """

    schedule: tuple[tuple[int, int | None], ...] = ((42, 336), (84, None))
    visit_window_days: int = 7
    missed_assessments: int = 2
    new_anticancer_therapy: str = "sensitivity"

    @classmethod
    def from_params(cls, section: dict[str, Any] | None) -> "PfsRules":
        """From the ``pfs_rules`` section (missing keys take the defaults above); bad values raise ValueError."""
        sec = dict(section or {})
        unknown = set(sec) - {"schedule", "visit_window_days", "missed_assessments", "new_anticancer_therapy"}
        if unknown:
            raise ValueError(f"pfs_rules: unknown key(s) {sorted(unknown)}")
        blocks = sec.get("schedule")
        schedule = cls.schedule if blocks is None else tuple(
            (int(b["every_days"]), None if b.get("until_day") is None else int(b["until_day"])) for b in blocks)
        rules = cls(schedule=schedule, visit_window_days=int(sec.get("visit_window_days", cls.visit_window_days)),
                    missed_assessments=int(sec.get("missed_assessments", cls.missed_assessments)),
                    new_anticancer_therapy=str(sec.get("new_anticancer_therapy", cls.new_anticancer_therapy)))
        rules.check()
        return rules

    def check(self) -> None:
        if not self.schedule or any(every <= 0 for every, _ in self.schedule):
            raise ValueError("pfs_rules.schedule: every block needs every_days > 0")
        untils = [u for _, u in self.schedule[:-1]]
        if any(u is None for u in untils) or untils != sorted(untils):
            raise ValueError("pfs_rules.schedule: every block but the last needs an increasing until_day")
        if self.visit_window_days < 0 or self.missed_assessments < 0:
            raise ValueError("pfs_rules: visit_window_days and missed_assessments must be >= 0")
        if self.new_anticancer_therapy not in NEW_THERAPY_OPTIONS:
            raise ValueError(f"pfs_rules.new_anticancer_therapy must be one of {NEW_THERAPY_OPTIONS}")

    def scheduled_days(self, horizon: int) -> np.ndarray:
        """Scheduled assessment days (from the index date) up to ``horizon``: each block steps by its every_days
        from the last scheduled day of the block before (day 0 for the first) up to its until_day."""
        days: list[int] = []
        last = 0
        for every, until in self.schedule:
            start, end = last + every, horizon if until is None else until
            if end >= start:
                days += range(start, min(end, horizon) + 1, every)
                last = start + (end - start) // every * every  # the block's last day, past the horizon or not
            # the next block steps on from ``last``; it can still add days up to the horizon unless last reached it
            # (a block ending on the horizon, until_day == horizon, may leave room for the next one)
            if until is None or last >= horizon:
                break
        return np.asarray(days, dtype=np.int64)

    @property
    def first_window_end(self) -> int:
        """Last day of the first assessment's window (first scheduled day + visit window)."""
        return self.schedule[0][0] + self.visit_window_days


def new_therapy_dates(patients: pd.DataFrame, systemic: pd.DataFrame | None) -> pd.Series:
    """First start of a new anticancer therapy per study ID (NaT if none): a systemic course starting after the
    index date with an agent that is neither of the initial combination's agents (``tki_agent``, ``pd1_agent``).
    HAIC cycles belong to the HAIC-TKIs-P strategy and local therapies are not in the export, so neither counts."""
    ids = patients["study_id"]
    if systemic is None or systemic.empty:
        return pd.Series(pd.NaT, index=ids, dtype="datetime64[ns]")
    initial = patients.set_index("study_id")[["index_date", "tki_agent", "pd1_agent"]]
    c = systemic.dropna(subset=["study_id", "start_date"]).join(initial, on="study_id", how="inner")
    new = c[(c["start_date"] > c["index_date"]) & (c["agent"] != c["tki_agent"]) & (c["agent"] != c["pd1_agent"])]
    return new.groupby("study_id")["start_date"].min().reindex(ids).astype("datetime64[ns]")


def apply_pfs_rules(patients: pd.DataFrame, timepoints: pd.DataFrame, cutoff: pd.Timestamp, rules: PfsRules, *,
                    censor_new_therapy: bool = False, missed_rule: bool = True) -> pd.DataFrame:
    """PFS of one criterion by the stated rules (docs/methods/pfs-rules.md; FDA 2018, Table 5).

    ``patients``: study_id, index_date, death_date (NaT: alive or death after the cut-off), new_therapy_date
    (NaT: none). ``timepoints``: the criterion's time points (study_id, visit, days_from_index, overall_response;
    visit 0 = baseline). Assessments after the data cut-off are ignored; an assessment is adequate when its
    overall response is not NE (a PD visit is adequate). With E = the earlier of the first PD and death, A = the
    last adequate assessment before E (or before the cut-off when there is no E), the first rule that applies:

    1. ``censor_new_therapy`` and a new anticancer therapy started before E (or without E): censored at the last
       adequate assessment on or before its start (day 0 if none);
    2. no adequate post-baseline assessment at all: an event at death if death falls in the first assessment
       window (``rules.first_window_end``), otherwise censored at day 0;
    3. ``missed_rule`` and at least ``rules.missed_assessments`` scheduled assessments missed between A and E
       (scheduled days s with A + w < s and s + w < E): censored at A;
    4. an event at E (progression, or death without progression);
    5. censored at A (alive without progression by the cut-off).

    Returns one row per patient (in ``patients`` order): study_id, days, event (0/1), by_death (0/1), rule (one of
    ``PFS_RULES``), last_adequate_days (A, or the censoring day of rules 1 and 2), pd_days (first PD, NaN if none or
    after the cut-off), n_missed (scheduled assessments missed between A and E).
    """
    ids = patients["study_id"].to_numpy()
    index = pd.to_datetime(patients["index_date"])
    cut = ((pd.Timestamp(cutoff) - index).dt.days).to_numpy(dtype=float)
    death = (pd.to_datetime(patients["death_date"]) - index).dt.days.to_numpy(dtype=float)
    therapy = (pd.to_datetime(patients["new_therapy_date"]) - index).dt.days.to_numpy(dtype=float)
    death = np.where(death <= cut, death, np.nan)
    pos = pd.Index(ids).get_indexer(timepoints["study_id"])
    fu = (timepoints["visit"].to_numpy() > 0) & (pos >= 0)
    tp_pos, day = pos[fu], timepoints["days_from_index"].to_numpy(dtype=float)[fu]
    resp = timepoints["overall_response"].astype("object").to_numpy()[fu]
    keep = day <= cut[tp_pos]
    tp_pos, day, resp = tp_pos[keep], day[keep], resp[keep]
    n = len(ids)

    first_pd = np.full(n, np.inf)
    np.minimum.at(first_pd, tp_pos[resp == "PD"], day[resp == "PD"])
    first_pd = np.where(np.isinf(first_pd), np.nan, first_pd)
    end = np.fmin(first_pd, death)                                   # E (NaN: no event by the cut-off)
    adequate = (resp != "NE") & pd.notna(resp) & ~(day > first_pd[tp_pos])

    def last_adequate(before: np.ndarray, strict: bool) -> np.ndarray:
        """Last adequate assessment day before ``before`` (NaN: no limit) per patient; 0 when there is none."""
        lim = before[tp_pos]
        ok = adequate & (np.isnan(lim) | ((day < lim) if strict else (day <= lim)))
        out = np.zeros(n)
        np.maximum.at(out, tp_pos[ok], day[ok])
        return out

    any_adequate = np.bincount(tp_pos[adequate], minlength=n) > 0
    a_end = last_adequate(end, strict=True)
    sched = rules.scheduled_days(int(np.nanmax(np.append(cut, 0))) + rules.visit_window_days + 1)
    w = rules.visit_window_days
    lower = np.searchsorted(sched, a_end + w, side="right")
    upper = np.searchsorted(sched, np.where(np.isnan(end), -np.inf, end - w), side="left")
    n_missed = np.where(np.isnan(end), 0, np.maximum(upper - lower, 0))

    new_tx = censor_new_therapy & ~np.isnan(therapy) & (np.isnan(end) | (therapy < end))
    early_death = ~np.isnan(death) & (death <= rules.first_window_end)
    missed = missed_rule & (rules.missed_assessments > 0) & ~np.isnan(end) & (n_missed >= rules.missed_assessments)
    is_pd = ~np.isnan(first_pd) & ~(death < first_pd)
    conditions = [new_tx, ~any_adequate & early_death, ~any_adequate, missed, ~np.isnan(end) & is_pd,
                  ~np.isnan(end)]
    rule = np.select(conditions, [PFS_CENSOR_NEW_THERAPY, PFS_EVENT_EARLY_DEATH, PFS_CENSOR_NO_ADEQUATE,
                                  PFS_CENSOR_MISSED, PFS_EVENT_PD, PFS_EVENT_DEATH], PFS_CENSOR_NO_EVENT)
    days = np.select(conditions, [last_adequate(therapy, strict=False), death, np.zeros(n), a_end, end, end],
                     last_adequate(np.full(n, np.nan), strict=False))
    event = np.isin(rule, [PFS_EVENT_PD, PFS_EVENT_DEATH, PFS_EVENT_EARLY_DEATH])
    valid = index.notna().to_numpy()
    return pd.DataFrame({
        "study_id": ids, "days": np.where(valid, days, np.nan),
        "event": pd.Series(event.astype(int)).where(valid).astype("Int64").to_numpy(),
        "by_death": pd.Series(np.isin(rule, [PFS_EVENT_DEATH, PFS_EVENT_EARLY_DEATH]).astype(int)).where(valid)
                      .astype("Int64").to_numpy(),
        "rule": np.where(valid, rule, None), "last_adequate_days": np.where(valid, np.where(
            rule == PFS_CENSOR_NEW_THERAPY, days, np.where(rule == PFS_CENSOR_NO_ADEQUATE, 0.0, a_end)), np.nan),
        "pd_days": first_pd, "n_missed": np.where(valid, n_missed, 0)})


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
                              log: QualityLog, systemic: pd.DataFrame | None = None
                              ) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Best overall response and PFS per RECIST 1.1 and per mRECIST (:mod:`analysis_utils.study.recist`).

    For each criterion: ``bor_<c>`` (unconfirmed, the main definition), ``bor_<c>_confirmed`` (CR/PR confirmed
    >= ``confirm_min_days`` later, sensitivity), ``best_pct_change_<c>``, ``first_pd_date_<c>``,
    ``first_response_date_<c>`` (first CR/PR up to the first PD) and PFS by the rules of ``cfg.pfs_rules``
    (``apply_pfs_rules``; docs/methods/pfs-rules.md): ``pfs_<c>_days / _months / _event / _by_death / _rule /
    _last_adequate_days / _n_missed`` (main definition), ``pfs_<c>_newtx_*`` (new anticancer therapy before PD
    censored, when that is the sensitivity definition) and ``pfs_<c>_allevents_*`` (every PD or death an event,
    whatever was missed). ``new_therapy_date`` comes from ``systemic`` (``new_therapy_dates``). Returns the
    screened table with these columns and, per criterion, the time-point table, the per-patient summary and the
    site-versus-derived agreement table.
    """
    out = screened.copy()
    rules = PfsRules.from_params(cfg.pfs_rules)
    idx = out.loc[out["index_date"].notna(), ["study_id", "index_date"]]
    les = lesions_for_engine(lesions[lesions["study_id"].isin(idx["study_id"])])
    extra: dict[str, pd.DataFrame] = {}
    center_of = out.set_index("study_id")["center_id"]
    out["new_therapy_date"] = new_therapy_dates(out, systemic).to_numpy() if "tki_agent" in out.columns else pd.NaT
    pts = out[["study_id", "index_date", "death_date", "new_therapy_date"]]
    logged = pd.DataFrame()
    for crit in recist.CRITERIA:
        kw = dict(min_sd_days=cfg.min_sd_days, confirm_min_days=cfg.confirm_min_days,
                  baseline_window_days=cfg.baseline_imaging_window_days,
                  grace_days_after_index=cfg.baseline_imaging_after_days)
        res = recist.derive_response(les, idx, crit, confirm=False, **kw)
        conf = recist.derive_response(les, idx, crit, confirm=True, **kw)
        # the entries common to both criteria (input problems) are logged once, under the first criterion
        dq = res.data_quality.drop_duplicates()
        if len(logged) and len(dq):
            dq = dq.merge(logged, how="left", indicator=True).query("_merge == 'left_only'").drop(columns="_merge")
        logged = pd.concat([logged, dq], ignore_index=True)
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
        out[f"first_pd_date_{crit}"] = pd_date.where(pd_date <= cfg.data_cutoff)
        out[f"first_response_date_{crit}"] = out["study_id"].map(first_response_dates(res.timepoints))
        definitions = {"": dict(censor_new_therapy=rules.new_anticancer_therapy == "primary"),
                       "_allevents": dict(missed_rule=False)}
        if rules.new_anticancer_therapy == "sensitivity":
            definitions["_newtx"] = dict(censor_new_therapy=True)
        for suffix, opts in definitions.items():
            pfs = apply_pfs_rules(pts, res.timepoints, cfg.data_cutoff, rules, **opts)
            name = f"pfs_{crit}{suffix}"
            out[f"{name}_days"] = pfs["days"].to_numpy()
            out[f"{name}_months"] = pfs["days"].to_numpy() / DAYS_PER_MONTH
            out[f"{name}_event"] = pfs["event"].to_numpy()
            out[f"{name}_by_death"] = pfs["by_death"].to_numpy()
            out[f"{name}_rule"] = pfs["rule"].to_numpy()
            if not suffix:
                out[f"{name}_last_adequate_days"] = pfs["last_adequate_days"].to_numpy()
                out[f"{name}_n_missed"] = pfs["n_missed"].to_numpy()
        extra[f"response_timepoints_{crit}"] = res.timepoints
        extra[f"response_summary_{crit}"] = res.summary.merge(
            conf.summary[["study_id", "bor"]].rename(columns={"bor": "bor_confirmed"}), on="study_id", how="left")
        extra[f"site_agreement_{crit}"] = site_agreement(out, crit, log)
    return out, extra


def first_response_dates(timepoints: pd.DataFrame) -> pd.Series:
    """Date of the first CR or PR time point up to and including the first PD, per study ID (the start of the
    duration of response; unconfirmed, as the main response definition)."""
    tp = timepoints[timepoints["visit"] > 0].sort_values(["study_id", "assessment_date"], kind="mergesort")
    resp = tp["overall_response"].astype("object")
    after_pd = (resp == "PD").groupby(tp["study_id"]).cumsum() - (resp == "PD")
    hit = tp[resp.isin(["CR", "PR"]) & (after_pd == 0)]
    return hit.groupby("study_id")["assessment_date"].min()


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
