"""Notebook 07_safety: treatment-emergent adverse events, one worst grade per patient and term, tables by arm.

Rules: docs/methods/ctcae.md (NCI CTCAE v5.0, 2017). The CTCAE rules themselves (term table, synonym mapping, lab
grading with the baseline-abnormal rule) are in :mod:`analysis_utils.study.ctcae`; this module applies them to the
cohort.

- Treatment-emergent (TE): a lab value after ``baseline_day`` whose grade is worse than the baseline-derived
  grade (:func:`~analysis_utils.study.ctcae.grade_lab_values`); a reported AE whose onset lies in
  [index, index + window_days] (days 0..window_days inclusive).
- Onset before index: not treatment-emergent, excluded. Onset (or lab value) after death: impossible, excluded.
  Onset unknown: excluded (emergence cannot be established). Onset after the window: not TE, excluded without a
  dq entry (not a data error). Each other case writes a data-quality entry (columns
  ``analysis_utils.study.ctcae.DQ_COLUMNS``).
- Reported and lab-derived events of the same patient and term are one event with the worse grade
  (``source = "reported+lab"``). Lab-derived events carry no attribution/seriousness/action: they count as not
  treatment-related, not serious and not leading to discontinuation unless a centre reported the same term so.
- Tables by arm: patients with at least one event per category or term, n and % of the arm; two-sided Fisher
  exact test between two arms (``scipy.stats.fisher_exact``, the same two-sided p as R ``fisher.test``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact

from analysis_utils.stats.competing_risks import cuminc, cuminc_at
from analysis_utils.stats.poisson import poisson_rate_ci, poisson_rate_ratio
from analysis_utils.study.treatment import ARM_CONTROL, ARM_HAIC
from analysis_utils.study.ctcae import (CtcaeTerms, SafetyResult, concat_dq, dq_entries, grade_lab_values,
                                        load_ctcae_terms, map_terms, require_columns, row_ids)


def _truthy(s: pd.Series) -> pd.Series:
    """True for True/1/'yes'/'y'/'true'/'sae'; everything else (incl. NA) False."""
    as_text = s.astype("string").str.strip().str.casefold()
    return as_text.isin(["true", "1", "1.0", "yes", "y", "sae"]).fillna(False).astype(bool)


# ----------------------------------------------------------------------------------------------- merge


def merge_adverse_events(reported: pd.DataFrame | None, lab_graded: pd.DataFrame | None, window_days: float,
                         *, cohort: pd.DataFrame | None = None, terms: CtcaeTerms | None = None) -> SafetyResult:
    """One worst-grade treatment-emergent event per patient and CTCAE term, from reports and labs.

    ``reported`` is the output of :func:`~analysis_utils.study.ctcae.map_terms`; ``lab_graded`` of
    :func:`~analysis_utils.study.ctcae.grade_lab_values`. The TE window is days 0..``window_days`` after index
    (inclusive). With ``cohort`` (study_id, index_date, optional death_date) missing onset days are filled from
    ``onset_date - index_date``, events after death and patients outside the cohort are excluded with dq entries.
    Returns columns study_id, ctcae_term, soc, lab_derived, worst_grade (Int64; missing when no valid grade),
    source (reported / lab / reported+lab), first_onset_day, n_records, related, serious, discontinued,
    attribution_recorded (a reported record of the term carries an attribution, related or unrelated; lab-derived
    events never do) and the first day of a record of each kind: first_g3_day, first_related_day,
    first_serious_day, first_discontinued_day, first_g5_day (NaN when none).
    """
    if not isinstance(window_days, (int, float, np.integer, np.floating)) or not np.isfinite(window_days) \
            or window_days < 0:
        raise ValueError(f"window_days must be a finite number >= 0, got {window_days!r}")
    terms = terms or load_ctcae_terms()
    index_date, death_day = _cohort_days(cohort)
    dq: list[pd.DataFrame] = []
    parts = []
    if reported is not None and len(reported):
        rep, rep_dq = _reported_events(reported, window_days, index_date, death_day)
        parts.append(rep)
        dq.append(rep_dq)
    if lab_graded is not None and len(lab_graded):
        lab, lab_dq = _lab_events(lab_graded, window_days, death_day)
        parts.append(lab)
        dq.append(lab_dq)
    cols = ["study_id", "ctcae_term", "soc", "lab_derived", "worst_grade", "source", "first_onset_day",
            "n_records", "related", "serious", "discontinued", "attribution_recorded", "first_g3_day",
            "first_related_day", "first_serious_day", "first_discontinued_day", "first_g5_day"]
    if not parts or all(p.empty for p in parts):
        return SafetyResult(pd.DataFrame(columns=cols), concat_dq(dq))
    ev = pd.concat([p for p in parts if not p.empty], ignore_index=True)
    ev["grade"] = ev["grade"].astype("Int64")
    grade = ev["grade"].astype("Float64")
    for name, flag in (("g3", (grade >= 3).fillna(False)), ("g5", (grade == 5).fillna(False)),
                       ("related", ev["related"]), ("serious", ev["serious"]), ("discontinued", ev["discontinued"])):
        ev[f"day_{name}"] = ev["day"].where(flag.astype(bool))
    out = (ev.groupby(["study_id", "ctcae_term"], sort=True)
           .agg(worst_grade=("grade", "max"), first_onset_day=("day", "min"), n_records=("grade", "size"),
                related=("related", "any"), serious=("serious", "any"), discontinued=("discontinued", "any"),
                attribution_recorded=("attributed", "any"), first_g3_day=("day_g3", "min"),
                first_related_day=("day_related", "min"), first_serious_day=("day_serious", "min"),
                first_discontinued_day=("day_discontinued", "min"), first_g5_day=("day_g5", "min"),
                has_reported=("is_reported", "any"), has_lab=("is_lab", "any"))
           .reset_index())
    out["source"] = np.select([out["has_reported"] & out["has_lab"], out["has_lab"]], ["reported+lab", "lab"],
                              "reported")
    known = out["ctcae_term"].isin(terms.table.index)
    out["soc"] = out["ctcae_term"].map(terms.table["soc"]).astype(object).where(known, None)
    out["lab_derived"] = out["ctcae_term"].map(terms.table["lab_test"].notna()).eq(True)
    out["worst_grade"] = out["worst_grade"].astype("Int64")
    return SafetyResult(out[cols], concat_dq(dq))


def _cohort_days(cohort: pd.DataFrame | None) -> tuple[pd.Series | None, pd.Series | None]:
    """index_date and death day (days from index) per study_id, or (None, None) without a cohort."""
    if cohort is None:
        return None, None
    require_columns(cohort, ["study_id", "index_date"], "cohort")
    if cohort["study_id"].duplicated().any():
        dup = cohort.loc[cohort["study_id"].duplicated(), "study_id"].tolist()[:5]
        raise ValueError(f"cohort: study_id must be unique; duplicated e.g. {dup}")
    c = cohort.set_index("study_id")
    index_date = pd.to_datetime(c["index_date"])
    death = pd.to_datetime(c["death_date"]) if "death_date" in c.columns else pd.Series(pd.NaT, index=c.index)
    return index_date, (death - index_date).dt.days


def _reported_events(rep: pd.DataFrame, window_days: float, index_date: pd.Series | None,
                     death_day: pd.Series | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reported AEs inside the TE window (one row per mapped record) plus dq entries for excluded records."""
    require_columns(rep, ["study_id", "ctcae_term", "grade"], "adverse_events (run map_terms first)")
    df = rep.copy()
    if "ae_row" not in df.columns:
        df["ae_row"] = row_ids(df).to_numpy()
    day = (pd.to_numeric(df["days_from_index"], errors="coerce") if "days_from_index" in df.columns
           else pd.Series(np.nan, index=df.index))
    if index_date is not None and "onset_date" in df.columns:
        from_dates = (pd.to_datetime(df["onset_date"]) - df["study_id"].map(index_date)).dt.days
        day = day.fillna(from_dates)
    df["day"] = day.astype(float)
    in_cohort = df["study_id"].isin(index_date.index) if index_date is not None else pd.Series(True, df.index)
    dday = df["study_id"].map(death_day) if death_day is not None else pd.Series(np.nan, index=df.index)
    after_death = (df["day"] > dday).fillna(False) & in_cohort
    no_day = df["day"].isna() & in_cohort
    before = (df["day"] < 0).fillna(False) & in_cohort & ~after_death
    t = "adverse_events"
    dq = [
        dq_entries(df, ~in_cohort, t, "study_id", "study_id_not_in_cohort", "event excluded", row_col="ae_row"),
        dq_entries(df, no_day, t, "days_from_index", "missing_onset",
                   "excluded: treatment-emergence cannot be established", row_col="ae_row"),
        dq_entries(df, before, t, "days_from_index", "onset_before_index",
                   "not treatment-emergent; excluded from TEAE counts", value=df["day"], row_col="ae_row"),
        dq_entries(df, after_death, t, "days_from_index", "onset_after_death", "flagged and excluded", value=df["day"],
            row_col="ae_row"),
    ]
    if death_day is not None:
        g5_alive = (df["grade"] == 5).fillna(False) & dday.isna() & in_cohort
        dq.append(dq_entries(df, g5_alive, t, "grade", "grade5_without_death_date", "kept as reported",
                             row_col="ae_row"))
    te = in_cohort & ~no_day & ~before & ~after_death & (df["day"] <= window_days).fillna(False)
    df = df.loc[te]
    action = df["action_taken"] if "action_taken" in df.columns else pd.Series(pd.NA, index=df.index)
    attribution = df["attribution"] if "attribution" in df.columns else pd.Series(pd.NA, index=df.index)
    serious = df["serious"] if "serious" in df.columns else pd.Series(pd.NA, index=df.index)
    attribution_text = attribution.astype("string").str.strip().str.casefold()
    ev = pd.DataFrame({
        "study_id": df["study_id"], "ctcae_term": df["ctcae_term"], "grade": df["grade"].astype("Int64"),
        "day": df["day"], "attributed": attribution_text.isin(["related", "unrelated"]).fillna(False),
        "related": attribution_text.eq("related").fillna(False),
        "serious": _truthy(serious),
        "discontinued": action.astype("string").str.strip().str.casefold().eq("discontinued").fillna(False),
        "is_reported": True, "is_lab": False})
    return ev, concat_dq(dq)


def _lab_events(lab: pd.DataFrame, window_days: float,
                death_day: pd.Series | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Treatment-emergent lab grades >= 1 inside the TE window plus dq entries for values after death."""
    require_columns(lab, ["study_id", "ctcae_term", "grade", "days_from_index", "treatment_emergent"],
                     "lab_graded (run grade_lab_values first)")
    df = lab.copy()
    if "lab_row" not in df.columns:
        df["lab_row"] = row_ids(df).to_numpy()
    day = pd.to_numeric(df["days_from_index"], errors="coerce")
    in_cohort = df["study_id"].isin(death_day.index) if death_day is not None else pd.Series(True, df.index)
    dday = df["study_id"].map(death_day) if death_day is not None else pd.Series(np.nan, index=df.index)
    after_death = (day > dday).fillna(False) & in_cohort
    dq = [
        dq_entries(df, ~in_cohort & df["treatment_emergent"], "labs", "study_id", "study_id_not_in_cohort",
            "lab event excluded", row_col="lab_row"),
        dq_entries(df, after_death, "labs", "days_from_index", "lab_after_death", "flagged and excluded", value=day,
            row_col="lab_row"),
    ]
    te = (df["treatment_emergent"].astype(bool) & (df["grade"] >= 1) & in_cohort & ~after_death
          & day.between(0, window_days).fillna(False))
    df, day = df.loc[te], day[te]
    ev = pd.DataFrame({"study_id": df["study_id"], "ctcae_term": df["ctcae_term"],
                       "grade": df["grade"].astype("Int64"), "day": day.astype(float), "attributed": False,
                       "related": False, "serious": False, "discontinued": False, "is_reported": False,
                       "is_lab": True})
    return ev, concat_dq(dq)


# ----------------------------------------------------------------------------------------------- tables


SUMMARY_CATEGORIES = (
    "Any TEAE",
    "Grade >=3 TEAE",
    "Treatment-related TEAE",
    "Treatment-related grade >=3 TEAE",
    "TEAE with attribution not recorded",
    "Grade >=3 TEAE with attribution not recorded",
    "Serious TEAE",
    "TEAE leading to discontinuation",
    "Grade 5 TEAE",
)
#: how to read the attribution rows (printed under the safety tables)
ATTRIBUTION_NOTE = ("Treatment-related: an event a centre reported with attribution 'related'. Laboratory-derived "
                    "events and reports without an attribution are 'attribution not recorded', not 'not related'.")


def _arm_setup(cohort: pd.DataFrame, arm_col: str, arms: Sequence[str] | None) -> tuple[pd.Series, list[str]]:
    """study_id -> arm, and the arm order (default: sorted)."""
    require_columns(cohort, ["study_id", arm_col], "cohort")
    if cohort["study_id"].duplicated().any():
        raise ValueError("cohort: study_id must be unique")
    if cohort[arm_col].isna().any():
        raise ValueError(f"cohort: column '{arm_col}' has missing values")
    arm_of = cohort.set_index("study_id")[arm_col]
    present = sorted(arm_of.unique().tolist())
    order = list(arms) if arms is not None else present
    absent = [a for a in order if a not in present]
    if absent:
        raise ValueError(f"cohort: arm(s) {absent} not found in column '{arm_col}' (found {present})")
    return arm_of, order


def fisher_p(n1: int, total1: int, n2: int, total2: int) -> float:
    """Two-sided Fisher exact p for the 2x2 table [[n1, total1-n1], [n2, total2-n2]] (scipy.stats.fisher_exact)."""
    return float(fisher_exact([[n1, total1 - n1], [n2, total2 - n2]], alternative="two-sided").pvalue)


def _patients_per_arm(ids: pd.Series, arm_of: pd.Series, order: list[str]) -> pd.Series:
    ids = pd.Series(ids.unique())
    ids = ids[ids.isin(arm_of.index)]
    return arm_of.loc[ids].value_counts().reindex(order, fill_value=0)


def _count_columns(counts: pd.DataFrame, denom: pd.Series, order: list[str], label: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for arm in order:
        out[f"{arm} {label}n"] = counts[arm].astype(int)
        out[f"{arm} {label}%"] = 100.0 * counts[arm] / denom[arm] if denom[arm] else np.nan
    return out


def ae_summary_table(events: pd.DataFrame, cohort: pd.DataFrame, arm_col: str = "arm",
                     arms: Sequence[str] | None = None) -> pd.DataFrame:
    """Patients per arm with any TEAE, grade >=3, treatment-related (any, >=3; attribution recorded as related),
    attribution not recorded (any, >=3; lab-derived or a report without attribution), serious, leading to
    discontinuation, grade 5: n and % of the arm's patients in ``cohort``; two-sided Fisher exact p (only with
    exactly two arms, else NaN). Events of patients not in ``cohort`` are ignored. Denominators in
    ``result.attrs["N"]``.
    """
    require_columns(events, ["study_id", "worst_grade", "related", "serious", "discontinued",
                             "attribution_recorded"], "events")
    arm_of, order = _arm_setup(cohort, arm_col, arms)
    denom = arm_of.value_counts().reindex(order, fill_value=0)
    grade = events["worst_grade"].astype("Float64")
    flags = {
        "Any TEAE": pd.Series(True, index=events.index),
        "Grade >=3 TEAE": (grade >= 3).fillna(False),
        "Treatment-related TEAE": events["related"].astype(bool),
        "Treatment-related grade >=3 TEAE": events["related"].astype(bool) & (grade >= 3).fillna(False),
        "TEAE with attribution not recorded": ~events["attribution_recorded"].astype(bool),
        "Grade >=3 TEAE with attribution not recorded": ~events["attribution_recorded"].astype(bool)
                                                        & (grade >= 3).fillna(False),
        "Serious TEAE": events["serious"].astype(bool),
        "TEAE leading to discontinuation": events["discontinued"].astype(bool),
        "Grade 5 TEAE": (grade == 5).fillna(False),
    }
    counts = pd.DataFrame({cat: _patients_per_arm(events.loc[flags[cat].to_numpy(dtype=bool), "study_id"],
                                                  arm_of, order) for cat in SUMMARY_CATEGORIES}).T
    table = pd.DataFrame({"category": list(SUMMARY_CATEGORIES), **_count_columns(counts, denom, order, "")})
    table = table.reset_index(drop=True)
    table["p_value"] = _fisher_column(counts, denom, order)
    table.attrs["N"] = {arm: int(denom[arm]) for arm in order}
    table.attrs["test"] = "Fisher exact, two-sided (scipy.stats.fisher_exact)"
    return table


def _fisher_column(counts: pd.DataFrame, denom: pd.Series, order: list[str]) -> np.ndarray:
    if len(order) != 2:
        return np.full(len(counts), np.nan)
    a, b = order
    return np.array([fisher_p(int(x), int(denom[a]), int(y), int(denom[b]))
                     for x, y in zip(counts[a], counts[b])])


def ae_by_term_table(events: pd.DataFrame, cohort: pd.DataFrame, top: int | None = None, arm_col: str = "arm",
                     arms: Sequence[str] | None = None) -> pd.DataFrame:
    """Per CTCAE term: patients with the term at any grade and at grade >= 3 per arm (n, %), two-sided Fisher p
    for each (two arms only), sorted by overall any-grade frequency (then term). ``top`` keeps the first rows.
    """
    require_columns(events, ["study_id", "ctcae_term", "worst_grade"], "events")
    if top is not None and (not isinstance(top, (int, np.integer)) or top < 1):
        raise ValueError(f"top must be a positive integer or None, got {top!r}")
    arm_of, order = _arm_setup(cohort, arm_col, arms)
    denom = arm_of.value_counts().reindex(order, fill_value=0)
    ev = events.loc[events["study_id"].isin(arm_of.index)].copy()
    ev["arm"] = ev["study_id"].map(arm_of)
    ev["g3"] = (ev["worst_grade"].astype("Float64") >= 3).fillna(False).astype(bool)
    term_list = sorted(ev["ctcae_term"].unique().tolist())

    def per_term(sub: pd.DataFrame) -> pd.DataFrame:
        n = sub.groupby(["ctcae_term", "arm"])["study_id"].nunique().unstack("arm")
        return n.reindex(index=term_list, columns=order).fillna(0).astype(int)

    any_n, g3_n = per_term(ev), per_term(ev.loc[ev["g3"]])
    soc = ev.drop_duplicates("ctcae_term").set_index("ctcae_term")["soc"] if "soc" in ev.columns else None
    table = pd.DataFrame({"ctcae_term": term_list,
                          "soc": soc.reindex(term_list).to_numpy() if soc is not None else None})
    for label, counts in (("any ", any_n), (">=3 ", g3_n)):
        for key, col in _count_columns(counts, denom, order, label).items():
            table[key] = np.asarray(col)
    table["p any"] = _fisher_column(any_n, denom, order)
    table["p >=3"] = _fisher_column(g3_n, denom, order)
    table["total any n"] = any_n.sum(axis=1).to_numpy()
    table = table.sort_values(["total any n", "ctcae_term"], ascending=[False, True], kind="stable")
    table = table.reset_index(drop=True)
    table.attrs["N"] = {arm: int(denom[arm]) for arm in order}
    return table.head(top) if top is not None else table


# --------------------------------------------------------------------------------------------------- notebook 07_safety
def teae_events(adverse_events: pd.DataFrame, labs: pd.DataFrame, cohort: pd.DataFrame, window_days: float,
                terms: CtcaeTerms | None = None) -> SafetyResult:
    """Treatment-emergent events of the cohort's patients: reported AEs mapped to CTCAE terms
    (:func:`~analysis_utils.study.ctcae.map_terms`, column ``ae_term`` of the cleaned table) merged with lab-derived
    grades (:func:`~analysis_utils.study.ctcae.grade_lab_values`) by :func:`merge_adverse_events`. Days are counted
    from the cohort's ``index_date`` (time zero, :func:`days_from_time_zero`), so the treatment-emergent window and
    the lab baseline follow whatever time zero the cohort defines (e.g. the first treatment component, HAIC cycles
    before the systemic start included). Data-quality entries of all three steps are returned together."""
    ids = set(cohort["study_id"])
    ae = days_from_time_zero(adverse_events[adverse_events["study_id"].isin(ids)], cohort, "onset_date")
    lab = days_from_time_zero(labs[labs["study_id"].isin(ids) & labs["value"].notna()], cohort, "lab_date")
    mapped = map_terms(ae, terms, term_col="ae_term")
    graded = grade_lab_values(lab, terms=terms)
    merged = merge_adverse_events(mapped.data, graded.data, window_days,
                                  cohort=cohort[["study_id", "index_date", "death_date"]], terms=terms)
    return SafetyResult(merged.data, concat_dq([mapped.dq, graded.dq, merged.dq]))


#: results.json key of each row of :func:`ae_summary_table` (the manuscript reads ``<key>_<arm tag>_n`` etc.)
SUMMARY_KEYS = {"Any TEAE": "any", "Grade >=3 TEAE": "g3", "Treatment-related TEAE": "related",
                "Treatment-related grade >=3 TEAE": "related_g3",
                "TEAE with attribution not recorded": "attr_missing",
                "Grade >=3 TEAE with attribution not recorded": "attr_missing_g3", "Serious TEAE": "serious",
                "TEAE leading to discontinuation": "discontinued", "Grade 5 TEAE": "g5"}
RESULT_ARM_TAGS = {ARM_HAIC: "haic", ARM_CONTROL: "control"}


def results_section(events: SafetyResult, summary: pd.DataFrame, summary_matched: pd.DataFrame | None,
                    top_terms: Sequence[str], window_days: float) -> dict[str, Any]:
    """The ``safety`` section of results.json: the TE window, the numbers of events and data-quality entries, per
    :func:`ae_summary_table` category and arm ``<key>_<tag>_n`` and ``<key>_<tag>_pct`` and the Fisher
    ``<key>_p`` (keys ``SUMMARY_KEYS``, tags ``RESULT_ARM_TAGS``; suffix ``_matched`` for the matched cohort when
    ``summary_matched`` is given), and the most frequent terms."""
    values: dict[str, Any] = {"window_days": window_days, "n_events": len(events.data),
                              "n_dq_entries": len(events.dq)}
    for suffix, frame in (("", summary), ("_matched", summary_matched)):
        if frame is None:
            continue
        for _, row in frame.iterrows():
            key = SUMMARY_KEYS[row["category"]]
            for arm, tag in RESULT_ARM_TAGS.items():
                values[f"{key}_{tag}_n{suffix}"] = row[f"{arm} n"]
                values[f"{key}_{tag}_pct{suffix}"] = row[f"{arm} %"]
            values[f"{key}_p{suffix}"] = row["p_value"]
    values["top_terms"] = list(top_terms)
    return values


def days_from_time_zero(table: pd.DataFrame, cohort: pd.DataFrame, date_col: str) -> pd.DataFrame:
    """``table`` with ``days_from_index`` recomputed as ``date_col`` minus the cohort's ``index_date`` (time zero),
    whatever the column held before; rows of patients outside the cohort keep no day (NaN)."""
    index = cohort.set_index("study_id")["index_date"]
    days = (pd.to_datetime(table[date_col]) - pd.to_datetime(table["study_id"].map(index))).dt.days
    return table.assign(days_from_index=days.astype("Float64").astype(float))


# --------------------------------------------------------------------------------------------------------------------
# exposure-adjusted incidence, time to the first grade >= 3 event, detection bias (docs/methods/ctcae.md, section 7)
# --------------------------------------------------------------------------------------------------------------------
#: summary category -> first-day column of the merged events (the event's first record of that kind)
EAIR_CATEGORIES = {"Any TEAE": "first_onset_day", "Grade >=3 TEAE": "first_g3_day",
                   "Treatment-related TEAE": "first_related_day", "Serious TEAE": "first_serious_day",
                   "TEAE leading to discontinuation": "first_discontinued_day", "Grade 5 TEAE": "first_g5_day"}
DAYS_PER_YEAR = 365.25


def exposure_days(cohort: pd.DataFrame, window_days: float) -> pd.Series:
    """Days at risk in the treatment-emergent window per study_id: from the index date to the earliest of the window
    end (``window_days``) and the end of follow-up (``follow_up_end_date``: death, last contact or the data
    cut-off); 0 when follow-up ends on the index date."""
    require_columns(cohort, ["study_id", "index_date", "follow_up_end_date"], "cohort")
    fu = (pd.to_datetime(cohort["follow_up_end_date"]) - pd.to_datetime(cohort["index_date"])).dt.days
    return pd.Series(np.clip(np.fmin(fu.to_numpy(dtype=float), float(window_days)), 0, None),
                     index=cohort["study_id"].to_numpy(), name="exposure_days")


def first_event_days(events: pd.DataFrame, day_col: str) -> pd.Series:
    """First day (from the index date) of an event of a kind per study_id: the minimum of ``day_col`` over the
    patient's events (NaN columns, i.e. no record of that kind, are skipped)."""
    return events.groupby("study_id")[day_col].min().dropna()


def eair_table(events: pd.DataFrame, cohort: pd.DataFrame, window_days: float, conf_level: float = 0.95,
               arm_col: str = "arm", arms: Sequence[str] = (ARM_HAIC, ARM_CONTROL),
               categories: dict[str, str] | None = None) -> pd.DataFrame:
    """Exposure-adjusted incidence rate (EAIR) beside the crude proportion, per category (``EAIR_CATEGORIES``)
    and arm: patients with the event (n, % of the arm), patient-years at risk (index date to the first such event,
    else to the end of exposure, ``exposure_days``; / 365.25), EAIR per 100 patient-years with the exact Poisson
    interval (R ``poisson.test(n, PY)``), and the rate ratio of the first arm to the second with the exact
    conditional interval and p (R ``poisson.test(c(n1, n0), c(PY1, PY0))``)."""
    categories = categories or EAIR_CATEGORIES
    arm_of = cohort.set_index("study_id")[arm_col]
    exposure = exposure_days(cohort, window_days)
    rows = []
    for label, day_col in categories.items():
        first = first_event_days(events, day_col)
        first = first[first.index.isin(arm_of.index) & (first <= exposure.reindex(first.index))]
        at_risk = exposure.copy()
        at_risk.loc[first.index] = first.clip(lower=0)
        row: dict[str, Any] = {"category": label}
        counts = {}
        for arm in arms:
            ids = arm_of.index[arm_of == arm]
            n, py = int(first.index.isin(ids).sum()), float(at_risk.reindex(ids).sum()) / DAYS_PER_YEAR
            rate, lo, hi = poisson_rate_ci(n, py, conf_level, per=100.0) if py > 0 else (np.nan,) * 3
            row.update({f"{arm} n": n, f"{arm} N": len(ids), f"{arm} %": 100.0 * n / len(ids) if len(ids) else np.nan,
                        f"{arm} PY": py, f"{arm} EAIR": rate, f"{arm} EAIR lower": lo, f"{arm} EAIR upper": hi})
            counts[arm] = (n, py)
        (n1, py1), (n0, py0) = counts[arms[0]], counts[arms[1]]
        rr = poisson_rate_ratio(n1, py1, n0, py0, conf_level) if py1 > 0 and py0 > 0 else \
            {"rate_ratio": np.nan, "lower": np.nan, "upper": np.nan, "p": np.nan}
        row.update({"rate ratio": rr["rate_ratio"], "rate ratio lower": rr["lower"],
                    "rate ratio upper": rr["upper"], "p": rr["p"]})
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs.update({"window_days": window_days, "conf_level": conf_level,
                        "method": "EAIR per 100 patient-years, exact Poisson CI (R poisson.test); rate ratio "
                                  "with the exact conditional CI and p (nominal)"})
    return table


def time_to_first_grade3(events: pd.DataFrame, cohort: pd.DataFrame, window_days: float) -> pd.DataFrame:
    """Per patient of ``cohort``: time (months) to the first grade >= 3 TEAE with death as a competing event:
    status 1 = a grade >= 3 event first (its first record's day), 2 = death first (within the exposure window),
    0 = censored at the end of exposure (``exposure_days``). Columns study_id, arm, time_months, status."""
    exposure = exposure_days(cohort, window_days)
    first = first_event_days(events, "first_g3_day").reindex(exposure.index)
    death = ((pd.to_datetime(cohort["death_date"]) - pd.to_datetime(cohort["index_date"])).dt.days
             .to_numpy(dtype=float))
    g3 = first.to_numpy(dtype=float) <= exposure.to_numpy()
    died = ~g3 & (death <= exposure.to_numpy())
    days = np.where(g3, first.to_numpy(dtype=float), np.where(died, death, exposure.to_numpy()))
    return pd.DataFrame({"study_id": exposure.index, "arm": cohort[ARM_COLUMN].to_numpy(),
                         "time_months": np.clip(days, 0, None) / (DAYS_PER_YEAR / 12),
                         "status": np.select([g3, died], [1, 2], 0)})


ARM_COLUMN = "arm"


def first_grade3_cumulative_incidence(events: pd.DataFrame, cohort: pd.DataFrame, window_days: float,
                                      times_months: Sequence[float], conf_level: float = 0.95
                                      ) -> dict[str, Any]:
    """Cumulative incidence of the first grade >= 3 TEAE per arm with death as a competing event (Aalen-Johansen,
    R ``cmprsk::cuminc``): {"data" (``time_to_first_grade3``), "cif" (per arm at ``times_months``, with log-log
    limits), "gray" (Gray's test of the grade >= 3 incidence between arms: stat, df, p), "curves"}."""
    data = time_to_first_grade3(events, cohort, window_days)
    res = cuminc(data["time_months"], data["status"], data["arm"])
    at = cuminc_at(res, times_months, conf_level).rename(columns={"group": "arm"})
    gray = res.tests.set_index("cause").loc[1].to_dict() if 1 in set(res.tests["cause"]) else \
        {"stat": np.nan, "p": np.nan, "df": np.nan}
    return {"data": data, "cif": at[at["cause"] == 1].drop(columns="cause").reset_index(drop=True),
            "gray": gray, "curves": res.curves}


def lab_draws_per_patient(labs: pd.DataFrame, cohort: pd.DataFrame, months: float = 6.0,
                          tests: Sequence[str] = ("platelets", "alt", "neutrophils")) -> pd.DataFrame:
    """Detection-bias diagnostic: lab values per patient after the index date and up to ``months`` months, per
    test and arm (median, quartiles, mean), counting patients without any value as 0."""
    lab = days_from_time_zero(labs[labs["study_id"].isin(cohort["study_id"])], cohort, "lab_date")
    horizon = months * DAYS_PER_YEAR / 12
    lab = lab[(lab["days_from_index"] > 0) & (lab["days_from_index"] <= horizon) & lab["test"].isin(tests)]
    counts = lab.groupby(["study_id", "test"]).size().unstack("test").reindex(
        index=cohort["study_id"], columns=list(tests)).fillna(0)
    counts[ARM_COLUMN] = cohort[ARM_COLUMN].to_numpy()
    rows = []
    for (arm, test), v in counts.melt(id_vars=ARM_COLUMN, var_name="test").groupby([ARM_COLUMN, "test"])["value"]:
        rows.append({"arm": arm, "test": test, "n_patients": len(v), "median": float(v.median()),
                     "q1": float(v.quantile(0.25)), "q3": float(v.quantile(0.75)), "mean": float(v.mean())})
    return pd.DataFrame(rows)


def common_schedule_labs(labs: pd.DataFrame, cohort: pd.DataFrame, every_days: int) -> pd.DataFrame:
    """Detection-bias sensitivity: one value per patient, test and scheduled window. After the index date the
    windows are centred on the scheduled days every_days, 2 every_days, ... (day d belongs to the window of the
    nearest scheduled day, round(d / every_days), ties to the earlier window); within a window the value closest
    to the scheduled day is kept (ties: the earlier, then the first row), not the worst, so that more frequent
    draws in one arm cannot find more abnormal values. Values on or before day 0 (the baseline) are all kept."""
    if every_days <= 0:
        raise ValueError("every_days must be > 0")
    lab = days_from_time_zero(labs[labs["study_id"].isin(cohort["study_id"])], cohort, "lab_date")
    day = lab["days_from_index"]
    post = lab[day > 0].copy()
    k = np.ceil(post["days_from_index"] / every_days - 0.5)
    post["_window"] = np.maximum(k, 1)
    post["_distance"] = (post["days_from_index"] - post["_window"] * every_days).abs()
    post["_order"] = np.arange(len(post))
    post = post.sort_values(["study_id", "test", "_window", "_distance", "days_from_index", "_order"], kind="mergesort")
    kept = post.drop_duplicates(["study_id", "test", "_window"], keep="first")
    out = pd.concat([lab[~(day > 0)], kept.drop(columns=["_window", "_distance", "_order"])])
    return out.sort_index(kind="mergesort")


def lab_event_sensitivity(adverse_events: pd.DataFrame, labs: pd.DataFrame, cohort: pd.DataFrame,
                          window_days: float, every_days: int, arms: Sequence[str] = (ARM_HAIC, ARM_CONTROL),
                          terms: CtcaeTerms | None = None) -> pd.DataFrame:
    """Laboratory-derived TEAEs with every value (main) and with one value per test and scheduled window
    (``common_schedule_labs``): per lab-derived CTCAE term, patients with the term at any grade and at grade >= 3
    per arm under each, and the two-sided Fisher p of grade >= 3 under each."""
    rows = []
    for label, lab in (("all values", labs), (f"common schedule ({every_days} days)",
                                              common_schedule_labs(labs, cohort, every_days))):
        ev = teae_events(adverse_events.iloc[0:0], lab, cohort, window_days, terms).data
        table = ae_by_term_table(ev, cohort, arms=arms)
        rows.append(table.assign(labs=label))
    out = pd.concat(rows, ignore_index=True)
    keep = [c for c in out.columns if c.startswith(tuple(arms)) or c in ("ctcae_term", "labs", "p >=3")]
    return out[keep]


def exposure_results(eair: pd.DataFrame, first_g3: dict[str, Any], draws: pd.DataFrame,
                     lab_sensitivity: pd.DataFrame) -> dict[str, Any]:
    """More keys of the ``safety`` section: per ``eair_table`` category ``<key>_eair_<tag>`` (per 100 patient-years)
    with ``_lower`` / ``_upper``, ``<key>_py_<tag>``, ``<key>_rate_ratio`` (with limits and ``_p``); the first grade
    >= 3 event's cumulative incidence ``g3_cif_<t>m_<tag>`` (with limits) and ``g3_gray_p``; median platelet
    draws per patient ``platelet_draws_median_<tag>``; grade >= 3 platelet count decreased under every value and
    under the common schedule, ``plt_g3_all_<tag>_n`` / ``plt_g3_common_<tag>_n`` and their ``_p``."""
    out: dict[str, Any] = {}
    for r in eair.to_dict("records"):
        key = SUMMARY_KEYS[r["category"]]
        for arm, tag in RESULT_ARM_TAGS.items():
            out.update({f"{key}_eair_{tag}": r[f"{arm} EAIR"], f"{key}_eair_{tag}_lower": r[f"{arm} EAIR lower"],
                        f"{key}_eair_{tag}_upper": r[f"{arm} EAIR upper"], f"{key}_py_{tag}": r[f"{arm} PY"]})
        out.update({f"{key}_rate_ratio": r["rate ratio"], f"{key}_rate_ratio_lower": r["rate ratio lower"],
                    f"{key}_rate_ratio_upper": r["rate ratio upper"], f"{key}_rate_ratio_p": r["p"]})
    for r in first_g3["cif"].to_dict("records"):
        k = f"g3_cif_{r['time']:g}m_{RESULT_ARM_TAGS[r['arm']]}".replace(".", "p")
        out.update({k: r["est"], f"{k}_lower": r["lower"], f"{k}_upper": r["upper"]})
    out["g3_gray_p"] = first_g3["gray"].get("p")
    plt = draws[draws["test"] == "platelets"].set_index("arm")
    for arm, tag in RESULT_ARM_TAGS.items():
        if arm in plt.index:
            out[f"platelet_draws_median_{tag}"] = plt.loc[arm, "median"]
    term = "Platelet count decreased"
    for lab, short in zip(dict.fromkeys(lab_sensitivity["labs"]), ("all", "common")):
        row = lab_sensitivity[(lab_sensitivity["labs"] == lab) & (lab_sensitivity["ctcae_term"] == term)]
        if row.empty:
            continue
        for arm, tag in RESULT_ARM_TAGS.items():
            out[f"plt_g3_{short}_{tag}_n"] = int(row[f"{arm} >=3 n"].iloc[0])
            out[f"plt_g3_{short}_{tag}_pct"] = float(row[f"{arm} >=3 %"].iloc[0])
        out[f"plt_g3_{short}_p"] = float(row["p >=3"].iloc[0])
    return out
