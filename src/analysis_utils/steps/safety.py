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
    ``onset_date - index_date``, events after death and patients outside the cohort are excluded with dq entries. Returns columns study_id, ctcae_term, soc, lab_derived, worst_grade
    (Int64; missing when no valid grade), source (reported / lab / reported+lab), first_onset_day, n_records,
    related, serious, discontinued.
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
            "n_records", "related", "serious", "discontinued"]
    if not parts or all(p.empty for p in parts):
        return SafetyResult(pd.DataFrame(columns=cols), concat_dq(dq))
    ev = pd.concat([p for p in parts if not p.empty], ignore_index=True)
    ev["grade"] = ev["grade"].astype("Int64")
    out = (ev.groupby(["study_id", "ctcae_term"], sort=True)
           .agg(worst_grade=("grade", "max"), first_onset_day=("day", "min"), n_records=("grade", "size"),
                related=("related", "any"), serious=("serious", "any"), discontinued=("discontinued", "any"),
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
    ev = pd.DataFrame({
        "study_id": df["study_id"], "ctcae_term": df["ctcae_term"], "grade": df["grade"].astype("Int64"),
        "day": df["day"],
        "related": attribution.astype("string").str.strip().str.casefold().eq("related").fillna(False),
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
                       "grade": df["grade"].astype("Int64"), "day": day.astype(float), "related": False,
                       "serious": False, "discontinued": False, "is_reported": False, "is_lab": True})
    return ev, concat_dq(dq)


# ----------------------------------------------------------------------------------------------- tables


SUMMARY_CATEGORIES = (
    "Any TEAE",
    "Grade >=3 TEAE",
    "Treatment-related TEAE",
    "Treatment-related grade >=3 TEAE",
    "Serious TEAE",
    "TEAE leading to discontinuation",
    "Grade 5 TEAE",
)


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
    """Patients per arm with any TEAE, grade >=3, treatment-related (any, >=3), serious, leading to
    discontinuation, grade 5: n and % of the arm's patients in ``cohort``; two-sided Fisher exact p (only with
    exactly two arms, else NaN). Events of patients not in ``cohort`` are ignored. Denominators in
    ``result.attrs["N"]``.
    """
    require_columns(events, ["study_id", "worst_grade", "related", "serious", "discontinued"], "events")
    arm_of, order = _arm_setup(cohort, arm_col, arms)
    denom = arm_of.value_counts().reindex(order, fill_value=0)
    grade = events["worst_grade"].astype("Float64")
    flags = {
        "Any TEAE": pd.Series(True, index=events.index),
        "Grade >=3 TEAE": (grade >= 3).fillna(False),
        "Treatment-related TEAE": events["related"].astype(bool),
        "Treatment-related grade >=3 TEAE": events["related"].astype(bool) & (grade >= 3).fillna(False),
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
    grades (:func:`~analysis_utils.study.ctcae.grade_lab_values`) by :func:`merge_adverse_events`. Data-quality
    entries of all three steps are returned together."""
    ids = set(cohort["study_id"])
    ae = adverse_events[adverse_events["study_id"].isin(ids)]
    lab = labs[labs["study_id"].isin(ids) & labs["value"].notna()]
    mapped = map_terms(ae, terms, term_col="ae_term")
    graded = grade_lab_values(lab, terms=terms)
    merged = merge_adverse_events(mapped.data, graded.data, window_days,
                                  cohort=cohort[["study_id", "index_date", "death_date"]], terms=terms)
    return SafetyResult(merged.data, concat_dq([mapped.dq, graded.dq, merged.dq]))


#: results.json key of each row of :func:`ae_summary_table` (the manuscript reads ``<key>_<arm tag>_n`` etc.)
SUMMARY_KEYS = {"Any TEAE": "any", "Grade >=3 TEAE": "g3", "Treatment-related TEAE": "related",
                "Treatment-related grade >=3 TEAE": "related_g3", "Serious TEAE": "serious",
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
