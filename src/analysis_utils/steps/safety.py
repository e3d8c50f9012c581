"""Adverse events per CTCAE v5.0: term mapping, lab grading, treatment-emergent merge, summary tables.

Rules followed
- Terms, MedDRA SOCs, defined grades and synonyms: ``data/ctcae_terms.yaml`` (versioned; CTCAE v5.0, NCI 2017).
- Lab grades: /work/shared/reference/clinical-rules.md section 3.1, boundaries exactly as printed
  (">ULN - 3.0 x ULN" = grade 1 when ULN < v <= 3 x ULN; "<LLN - 75,000" = grade 1 when 75 <= v < LLN).
  Boundaries are compared with a relative tolerance of 1e-9 so that a value typed as exactly 3.0 x ULN is not
  pushed over the boundary by float rounding.
- Treatment-emergent (TE): a lab value after ``baseline_day`` whose grade is worse than the baseline-derived
  grade; a reported AE whose onset lies in [index, index + window_days] (days 0..window_days inclusive).

Documented handling (each case also writes a data-quality entry, columns ``DQ_COLUMNS``)
- Unknown AE term: kept, ``ctcae_term`` = raw text, SOC missing, ``term_status = "unknown"``.
  Ambiguous terms listed in the YAML (e.g. 肝功能异常) are kept the same way with ``"ambiguous"``.
- Invalid grade (missing, not an integer 1-5, or a grade the term does not have, e.g. fatigue 4): the grade is
  set to missing and the event kept; it counts in "any grade" rows only, never in grade >= 3 or grade 5 rows.
  Why: the event is documented, so dropping it under-counts any-grade incidence, while capping or guessing a
  grade invents severity. The dq table lists every such row for a sensitivity check.
- Onset before index: not treatment-emergent, excluded. Onset (or lab value) after death: impossible, excluded.
  Onset unknown: excluded (emergence cannot be established). Onset after the window: not TE, excluded without a
  dq entry (not a data error).
- Reported and lab-derived events of the same patient and term are one event with the worse grade
  (``source = "reported+lab"``). Lab-derived events carry no attribution/seriousness/action: they count as not
  treatment-related, not serious and not leading to discontinuation unless a centre reported the same term so.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd
import yaml
from scipy.stats import fisher_exact

TERMS_PATH = Path(__file__).resolve().parents[1] / "study" / "data" / "ctcae_terms.yaml"
DQ_COLUMNS = ["study_id", "table", "row", "column", "value", "rule", "action"]
GRADES = (1, 2, 3, 4, 5)
MISSING_TERM = "Unspecified (term missing)"

# clinical-rules.md 3.1. High tests are graded on multiples of ULN (or baseline); low tests on LLN then absolute
# cut-offs in the canonical unit (10^9/L = cells/mm3 / 1000; Hb g/dL; albumin g/L = g/dL x 10).
HIGH_TESTS = ("alt", "ast", "bilirubin", "creatinine")
LOW_CUTOFFS: dict[str, tuple[float, ...]] = {
    "platelets": (75.0, 50.0, 25.0),  # <75,000 / <50,000 / <25,000 per mm3 -> grades 2 / 3 / 4
    "neutrophils": (1.5, 1.0, 0.5),  # <1,500 / <1,000 / <500 per mm3
    "wbc": (3.0, 2.0, 1.0),  # <3,000 / <2,000 / <1,000 per mm3
    "hemoglobin": (10.0, 8.0),  # <10.0 / <8.0 g/dL (grade 4-5 need clinical data)
    "albumin": (30.0, 20.0),  # <3.0 / <2.0 g/dL (grade 4-5 need clinical data)
}
GRADED_TESTS = HIGH_TESTS + tuple(LOW_CUTOFFS)
UNGRADED_TESTS = ("inr", "afp")  # valid lab tests with no CTCAE rule in clinical-rules.md 3.1: ignored
_RTOL = 1e-9


class SafetyResult(NamedTuple):
    """A result table plus its data-quality entries (columns ``DQ_COLUMNS``)."""

    data: pd.DataFrame
    dq: pd.DataFrame


@dataclass(frozen=True)
class CtcaeTerms:
    """The parsed term table: ``table`` is indexed by canonical term (soc, grades, lab_test, lab_grades)."""

    version: str
    ctcae_version: str
    table: pd.DataFrame
    lookup: Mapping[str, tuple[str, ...]]
    ambiguous: Mapping[str, str]
    default_limits: Mapping[str, Mapping[str, Any]]

    def term_for_test(self) -> dict[str, str]:
        """Lab test -> canonical CTCAE term, e.g. ``"platelets" -> "Platelet count decreased"``."""
        lab = self.table["lab_test"].dropna()
        return {test: term for term, test in lab.items()}


# ----------------------------------------------------------------------------------------------- term table


_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015_/,、()\[\]]+")


def normalise_term(text: object) -> str:
    """Lookup key of a free-text term: NFKC, case-folded, separators (space - _ / , 、 brackets) removed."""
    if text is None or (not isinstance(text, str) and bool(pd.isna(text))):
        return ""
    s = unicodedata.normalize("NFKC", str(text)).casefold().strip()
    s = s.rstrip(".。;；:：").strip()
    return _SEPARATORS.sub("", s)


def load_ctcae_terms(path: str | Path | None = None) -> CtcaeTerms:
    """Load and check ``ctcae_terms.yaml`` (default: the packaged file, cached)."""
    if path is None:
        return _load_default_terms()
    return _parse_terms(Path(path))


@lru_cache(maxsize=1)
def _load_default_terms() -> CtcaeTerms:
    return _parse_terms(TERMS_PATH)


def _parse_terms(path: Path) -> CtcaeTerms:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key in ("version", "ctcae_version", "terms", "default_reference_limits"):
        if key not in raw:
            raise ValueError(f"{path.name}: missing top-level key '{key}'")
    rows, lookup = [], {}

    def add(synonym: str, targets: tuple[str, ...], owner: str) -> None:
        key = normalise_term(synonym)
        if key in lookup and lookup[key] != targets:
            raise ValueError(f"{path.name}: synonym '{synonym}' of '{owner}' already maps to {lookup[key]}")
        lookup[key] = targets

    for term, spec in raw["terms"].items():
        grades = tuple(spec.get("grades") or ())
        lab_grades = tuple(spec.get("lab_grades") or ())
        if not spec.get("soc"):
            raise ValueError(f"{path.name}: term '{term}' has no soc")
        if not grades or not set(grades) <= set(GRADES):
            raise ValueError(f"{path.name}: term '{term}' grades {grades} must be a non-empty subset of 1-5")
        if not set(lab_grades) <= set(grades):
            raise ValueError(f"{path.name}: term '{term}' lab_grades {lab_grades} not within grades {grades}")
        rows.append({"ctcae_term": term, "soc": spec["soc"], "grades": grades,
                     "lab_test": spec.get("lab_test"), "lab_grades": lab_grades})
        for syn in [term, *spec.get("abbreviations", []), *spec.get("synonyms", [])]:
            add(str(syn), (term,), term)
    table = pd.DataFrame(rows).set_index("ctcae_term")
    for group in raw.get("multi_term_synonyms", []):
        targets = tuple(group["terms"])
        unknown = [t for t in targets if t not in table.index]
        if unknown:
            raise ValueError(f"{path.name}: multi_term_synonyms target(s) {unknown} are not defined terms")
        for syn in group["synonyms"]:
            add(str(syn), targets, " + ".join(targets))
    ambiguous = {normalise_term(k): str(v) for k, v in (raw.get("ambiguous_terms") or {}).items()}
    clash = sorted(set(ambiguous) & set(lookup))
    if clash:
        raise ValueError(f"{path.name}: ambiguous term(s) {clash} are also synonyms")
    limits = raw["default_reference_limits"]
    for test in GRADED_TESTS:
        need = "uln" if test in HIGH_TESTS else "lln"
        if test not in limits or not limits[test].get(need, 0) > 0:
            raise ValueError(f"{path.name}: default_reference_limits.{test}.{need} must be a positive number")
    return CtcaeTerms(str(raw["version"]), str(raw["ctcae_version"]), table, lookup, ambiguous, limits)


# ----------------------------------------------------------------------------------------------- helpers


def _require_columns(df: pd.DataFrame, columns: Sequence[str], table: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{table}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{table}: missing required column(s) {missing}")


def _row_ids(df: pd.DataFrame) -> pd.Series:
    """Original row number: ``source_row`` when present, else the DataFrame index label."""
    if "source_row" in df.columns:
        return df["source_row"]
    return pd.Series(df.index, index=df.index)


def _dq(df: pd.DataFrame, mask: Any, table: str, column: str, rule: str, action: str,
        value: Any = None, row_col: str | None = None) -> pd.DataFrame:
    """Data-quality entries for the rows of ``df`` selected by ``mask``."""
    sub = df.loc[np.asarray(mask, dtype=bool)]
    if sub.empty:
        return pd.DataFrame(columns=DQ_COLUMNS)
    if value is None:
        values = sub[column] if column in sub.columns else pd.Series(pd.NA, index=sub.index)
    else:
        values = pd.Series(value, index=df.index).loc[sub.index]
    rows = sub[row_col] if row_col else _row_ids(sub)
    actions = action if isinstance(action, str) else pd.Series(action, index=df.index).loc[sub.index].to_numpy()
    return pd.DataFrame({"study_id": sub["study_id"].to_numpy(), "table": table, "row": rows.to_numpy(),
                         "column": column, "value": values.to_numpy(dtype=object), "rule": rule,
                         "action": actions})[DQ_COLUMNS]


def _concat_dq(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=DQ_COLUMNS)
    return pd.concat(parts, ignore_index=True).astype({"value": object}).reset_index(drop=True)


def _gt(v: np.ndarray, thr: np.ndarray) -> np.ndarray:
    """v > thr, ignoring float noise below 1e-9 relative (a value of exactly thr is not greater)."""
    return (v - thr) > _RTOL * np.abs(thr)


def _ge(v: np.ndarray, thr: np.ndarray) -> np.ndarray:
    return (v - thr) >= -_RTOL * np.abs(thr)


def _lt(v: np.ndarray, thr: np.ndarray) -> np.ndarray:
    return (thr - v) > _RTOL * np.abs(thr)


def _truthy(s: pd.Series) -> pd.Series:
    """True for True/1/'yes'/'y'/'true'/'sae'; everything else (incl. NA) False."""
    as_text = s.astype("string").str.strip().str.casefold()
    return as_text.isin(["true", "1", "1.0", "yes", "y", "sae"]).fillna(False).astype(bool)


# ----------------------------------------------------------------------------------------------- map_terms


def map_terms(ae: pd.DataFrame, terms: CtcaeTerms | None = None, *, term_col: str = "ae_term_raw",
              grade_col: str = "grade") -> SafetyResult:
    """Map free-text AE terms (English/Chinese) to CTCAE v5.0 terms and SOCs; check grades.

    Adds ``ae_row`` (original row number), ``ctcae_term``, ``soc``, ``lab_derived`` (term has a lab rule),
    ``term_status`` (mapped / multi_mapped / ambiguous / unknown / missing), ``grade_raw``, ``grade`` (Int64,
    missing when invalid) and ``grade_status`` (valid / missing / outside_1_5 / not_defined_for_term).
    A multi-term synonym ("transaminase elevation") yields one row per target term with the same ``ae_row``.
    """
    _require_columns(ae, ["study_id", term_col, grade_col], "adverse_events")
    terms = terms or load_ctcae_terms()
    df = ae.copy()
    df["ae_row"] = _row_ids(df).to_numpy()
    keys = df[term_col].map(normalise_term)
    targets = keys.map(terms.lookup.get)
    raw_text = df[term_col].astype("string").str.strip()
    status = np.select(
        [keys.eq(""), targets.notna() & targets.map(lambda t: isinstance(t, tuple) and len(t) > 1),
         targets.notna(), keys.isin(list(terms.ambiguous))],
        ["missing", "multi_mapped", "mapped", "ambiguous"], "unknown")
    df["term_status"] = status
    fallback = raw_text.fillna(MISSING_TERM).where(keys.ne(""), MISSING_TERM)
    df["ctcae_term"] = [list(t) if isinstance(t, tuple) else [f] for t, f in zip(targets, fallback)]
    dq = [
        _dq(df, status == "unknown", "adverse_events", term_col, "unknown_ae_term",
            "kept with ctcae_term = raw text and soc missing; counted in any-AE rows", row_col="ae_row"),
        _dq(df, status == "ambiguous", "adverse_events", term_col, "ambiguous_ae_term",
            keys.map(lambda k: f"kept unmapped ({terms.ambiguous.get(k, '')}); re-code from the chart"),
            row_col="ae_row"),
        _dq(df, status == "missing", "adverse_events", term_col, "missing_ae_term",
            f"kept with ctcae_term = '{MISSING_TERM}'", row_col="ae_row"),
    ]
    df = df.explode("ctcae_term", ignore_index=True)
    known = df["ctcae_term"].isin(terms.table.index)
    df["soc"] = df["ctcae_term"].map(terms.table["soc"]).astype(object).where(known, None)
    df["lab_derived"] = df["ctcae_term"].map(terms.table["lab_test"].notna()).eq(True)
    df, grade_dq = _check_grades(df, terms, grade_col)
    return SafetyResult(df, _concat_dq(dq + [grade_dq]).drop_duplicates(ignore_index=True))


def _check_grades(df: pd.DataFrame, terms: CtcaeTerms, grade_col: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Grade must be an integer 1-5 defined for the term (CTCAE: a dash = grade does not exist)."""
    raw = df[grade_col]
    num = pd.to_numeric(raw, errors="coerce").astype(float)
    missing = raw.isna().to_numpy()
    integer_1_5 = (num.notna() & (num == np.round(num)) & num.between(1, 5)).to_numpy()
    defined_sets = df["ctcae_term"].map(terms.table["grades"])
    # unknown terms have no grade list: any integer 1-5 is accepted for them
    defined = np.array([(v in g) if isinstance(g, tuple) else True for g, v in zip(defined_sets, num)],
                       dtype=bool)
    status = np.select([missing, ~integer_1_5, ~defined], ["missing", "outside_1_5", "not_defined_for_term"],
                       "valid")
    out = df.copy()
    out["grade_raw"] = raw
    out["grade_status"] = status
    out["grade"] = pd.array(np.where(status == "valid", num, np.nan), dtype="Float64").astype("Int64")
    action = "grade set to missing; event kept and counted in any-grade rows only"
    dq = [
        _dq(out, status == "missing", "adverse_events", grade_col, "missing_grade", action, value=raw,
            row_col="ae_row"),
        _dq(out, status == "outside_1_5", "adverse_events", grade_col, "grade_outside_1_5", action, value=raw,
            row_col="ae_row"),
        _dq(out, status == "not_defined_for_term", "adverse_events", grade_col, "grade_not_defined_for_term",
            out["ctcae_term"].map(lambda t: f"{action} ({t} has grades "
                                            f"{list(terms.table['grades'].get(t, ()))})"),
            value=raw, row_col="ae_row"),
    ]
    return out.drop(columns=[grade_col]) if grade_col != "grade" else out, _concat_dq(dq)


# ----------------------------------------------------------------------------------------------- lab grading


def ctcae_lab_grade(test: str, value: Any, limit: Any, baseline: Any = np.nan,
                    baseline_limit: Any = np.nan) -> np.ndarray:
    """CTCAE v5.0 grade (0-4) of lab values, clinical-rules.md 3.1 (vectorised over arrays).

    ``limit`` is the ULN for alt/ast/bilirubin/creatinine and the LLN for the low tests; ``baseline`` and
    ``baseline_limit`` are the baseline value and the limit on the baseline row (NaN = no baseline).
    - ALT/AST, baseline <= ULN: >1, >3, >5, >20 x ULN -> 1-4. Baseline > ULN: >=1.5, >3, >5, >20 x baseline -> 1-4
      (values below 1.5 x baseline are grade 0).
    - Bilirubin: >1, >1.5, >3, >10 x ULN, or x baseline when baseline > ULN -> 1-4.
    - Creatinine: max of (>1, >1.5, >3, >6 x ULN -> 1-4) and (>1.5 x baseline -> 2, >3 x baseline -> 3).
    - Platelets / neutrophils / WBC / hemoglobin / albumin: <LLN -> 1, then below each absolute cut-off in
      ``LOW_CUTOFFS`` -> 2, 3 (, 4).
    """
    if test not in GRADED_TESTS:
        raise ValueError(f"ctcae_lab_grade: test '{test}' has no CTCAE rule; expected one of {GRADED_TESTS}")
    v = np.asarray(value, dtype=float)
    lim, base, base_lim = (np.broadcast_to(np.asarray(x, dtype=float), v.shape)
                           for x in (limit, baseline, baseline_limit))
    grade = np.zeros(v.shape, dtype=int)

    def up(ref: np.ndarray, multiples: Sequence[float], first: int = 1) -> np.ndarray:
        """Highest grade k (counting from ``first``) with v strictly above multiples[k] x ref."""
        g = np.zeros(v.shape, dtype=int)
        for k, m in enumerate(multiples, start=first):
            g = np.maximum(g, np.where(_gt(v, m * ref), k, 0))
        return g

    with np.errstate(invalid="ignore"):
        if test in ("alt", "ast"):
            abnormal = base > base_lim
            vs_uln = up(lim, (1.0, 3.0, 5.0, 20.0))
            vs_base = np.maximum(np.where(_ge(v, 1.5 * base), 1, 0), up(base, (3.0, 5.0, 20.0), first=2))
            grade = np.where(abnormal, vs_base, vs_uln)
        elif test == "bilirubin":
            ref = np.where(base > base_lim, base, lim)
            grade = up(ref, (1.0, 1.5, 3.0, 10.0))
        elif test == "creatinine":
            vs_base = up(base, (1.5, 3.0), first=2)
            grade = np.maximum(up(lim, (1.0, 1.5, 3.0, 6.0)), vs_base)
        else:
            grade = np.where(_lt(v, lim), 1, 0)
            for k, cut in enumerate(LOW_CUTOFFS[test], start=2):
                grade = np.maximum(grade, np.where(_lt(v, cut), k, 0))
    return grade.astype(int)


def grade_lab_values(labs: pd.DataFrame, baseline_day: int = 0, terms: CtcaeTerms | None = None) -> SafetyResult:
    """Grade post-baseline lab values per CTCAE v5.0 (clinical-rules.md 3.1) and flag treatment-emergence.

    Baseline = last value with ``days_from_index <= baseline_day`` (ties: latest ``lab_date``, then row order);
    only values after ``baseline_day`` are returned. ``baseline_grade`` grades the baseline value by the same rule
    (for ALT/AST/bilirubin this is 0, since an abnormal baseline becomes its own reference);
    ``treatment_emergent = grade > baseline_grade``. Without a baseline value the test is graded against ULN/LLN
    and the baseline grade taken as 0 (dq entry ``no_baseline_value``). A missing or non-positive local ULN/LLN
    is replaced by the YAML default (``limit_source = "default"``, dq entry ``missing_reference_limit``).
    Tests inr/afp have no rule in 3.1 and are ignored.
    """
    _require_columns(labs, ["study_id", "test", "value", "days_from_index"], "labs")
    terms = terms or load_ctcae_terms()
    df = labs.copy()
    df["lab_row"] = _row_ids(df).to_numpy()
    for col in ("uln", "lln"):
        df[col] = pd.to_numeric(df[col], errors="coerce") if col in df.columns else np.nan
    if "lab_date" not in df.columns:
        df["lab_date"] = pd.NaT
    df["test"] = df["test"].astype("string").str.strip().str.casefold()
    num_value = pd.to_numeric(df["value"], errors="coerce")
    day = pd.to_numeric(df["days_from_index"], errors="coerce")
    unknown = ~df["test"].isin(GRADED_TESTS + UNGRADED_TESTS).fillna(False).to_numpy()
    graded = df["test"].isin(GRADED_TESTS).fillna(False).to_numpy()
    dq = [
        _dq(df, unknown, "labs", "test", "unknown_lab_test", "row ignored", row_col="lab_row"),
        _dq(df, graded & num_value.isna().to_numpy(), "labs", "value", "missing_value", "row ignored",
            row_col="lab_row"),
        _dq(df, graded & num_value.notna().to_numpy() & day.isna().to_numpy(), "labs", "days_from_index",
            "missing_days_from_index", "row ignored", row_col="lab_row"),
    ]
    keep = graded & num_value.notna().to_numpy() & day.notna().to_numpy()
    df = df.loc[keep].assign(value=num_value[keep], days_from_index=day[keep])
    df, limit_dq = _fill_limits(df, terms)
    dq.append(limit_dq)

    df = df.sort_values(["study_id", "test", "days_from_index", "lab_date"], kind="stable", na_position="first")
    is_base = df["days_from_index"] <= baseline_day
    base = (df.loc[is_base].groupby(["study_id", "test"], sort=False).tail(1)
            .loc[:, ["study_id", "test", "value", "limit"]]
            .rename(columns={"value": "baseline_value", "limit": "baseline_limit"}))
    post = df.loc[~is_base].merge(base, on=["study_id", "test"], how="left")
    post["grade"] = 0
    post["baseline_grade"] = 0
    for test, idx in post.groupby("test").groups.items():
        sub = post.loc[idx]
        post.loc[idx, "grade"] = ctcae_lab_grade(test, sub["value"], sub["limit"], sub["baseline_value"],
                                                 sub["baseline_limit"])
        has_base = sub["baseline_value"].notna()
        post.loc[idx, "baseline_grade"] = np.where(
            has_base, ctcae_lab_grade(test, sub["baseline_value"].fillna(0), sub["baseline_limit"].fillna(1),
                                      sub["baseline_value"], sub["baseline_limit"]), 0)
    high = post["test"].isin(HIGH_TESTS)
    abnormal = np.where(high, post["baseline_value"] > post["baseline_limit"],
                        post["baseline_value"] < post["baseline_limit"])
    post["baseline_abnormal"] = pd.array(abnormal, dtype="boolean")
    post.loc[post["baseline_value"].isna(), "baseline_abnormal"] = pd.NA
    post["treatment_emergent"] = post["grade"] > post["baseline_grade"]
    post["ctcae_term"] = post["test"].map(terms.term_for_test())
    no_base = post.loc[post["baseline_value"].isna()].drop_duplicates(["study_id", "test"])
    dq.append(_dq(no_base, np.ones(len(no_base), bool), "labs", "test", "no_baseline_value",
                  f"no value on or before day {baseline_day}: graded against ULN/LLN, baseline grade taken as 0",
                  value=no_base["test"], row_col="lab_row").assign(row=pd.NA))
    cols = ["study_id", "test", "ctcae_term", "lab_date", "days_from_index", "value", "uln", "lln", "limit",
            "limit_source", "baseline_value", "baseline_limit", "baseline_abnormal", "baseline_grade", "grade",
            "treatment_emergent", "lab_row"]
    out = post[cols].astype({"grade": int, "baseline_grade": int}).reset_index(drop=True)
    return SafetyResult(out, _concat_dq(dq))


def _fill_limits(df: pd.DataFrame, terms: CtcaeTerms) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``limit`` = the ULN (high tests) or LLN (low tests) of the row, or the YAML default when missing/<= 0."""
    high = df["test"].isin(HIGH_TESTS).to_numpy()
    local = np.where(high, df["uln"], df["lln"]).astype(float)
    need = {t: ("uln" if t in HIGH_TESTS else "lln") for t in GRADED_TESTS}
    spec = terms.default_limits
    default = df["test"].map({t: float(spec[t][n]) for t, n in need.items()}).to_numpy(dtype=float)
    use_default = ~(local > 0)
    out = df.assign(limit=np.where(use_default, default, local),
                    limit_source=np.where(use_default, "default", "local"))
    actions = df["test"].map({t: f"default {n.upper()} {float(spec[t][n]):g} {spec[t].get('unit', '')} "
                                 f"(ctcae_terms.yaml) used" for t, n in need.items()})
    dq = [_dq(df, use_default & (high == (col == "uln")), "labs", col, "missing_reference_limit", actions,
              row_col="lab_row") for col in ("uln", "lln")]
    return out, _concat_dq(dq)


# ----------------------------------------------------------------------------------------------- merge


def merge_adverse_events(reported: pd.DataFrame | None, lab_graded: pd.DataFrame | None, window_days: float,
                         *, cohort: pd.DataFrame | None = None, terms: CtcaeTerms | None = None) -> SafetyResult:
    """One worst-grade treatment-emergent event per patient and CTCAE term, from reports and labs.

    ``reported`` is the output of :func:`map_terms`; ``lab_graded`` of :func:`grade_lab_values`. The TE window is
    days 0..``window_days`` after index (inclusive). With ``cohort`` (study_id, index_date, optional death_date)
    missing onset days are filled from ``onset_date - index_date``, events after death and patients outside the
    cohort are excluded with dq entries. Returns columns study_id, ctcae_term, soc, lab_derived, worst_grade
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
        return SafetyResult(pd.DataFrame(columns=cols), _concat_dq(dq))
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
    return SafetyResult(out[cols], _concat_dq(dq))


def _cohort_days(cohort: pd.DataFrame | None) -> tuple[pd.Series | None, pd.Series | None]:
    """index_date and death day (days from index) per study_id, or (None, None) without a cohort."""
    if cohort is None:
        return None, None
    _require_columns(cohort, ["study_id", "index_date"], "cohort")
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
    _require_columns(rep, ["study_id", "ctcae_term", "grade"], "adverse_events (run map_terms first)")
    df = rep.copy()
    if "ae_row" not in df.columns:
        df["ae_row"] = _row_ids(df).to_numpy()
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
        _dq(df, ~in_cohort, t, "study_id", "study_id_not_in_cohort", "event excluded", row_col="ae_row"),
        _dq(df, no_day, t, "days_from_index", "missing_onset", "excluded: treatment-emergence cannot be established",
            row_col="ae_row"),
        _dq(df, before, t, "days_from_index", "onset_before_index", "not treatment-emergent; excluded from TEAE counts",
            value=df["day"], row_col="ae_row"),
        _dq(df, after_death, t, "days_from_index", "onset_after_death", "flagged and excluded", value=df["day"],
            row_col="ae_row"),
    ]
    if death_day is not None:
        g5_alive = (df["grade"] == 5).fillna(False) & dday.isna() & in_cohort
        dq.append(_dq(df, g5_alive, t, "grade", "grade5_without_death_date", "kept as reported", row_col="ae_row"))
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
    return ev, _concat_dq(dq)


def _lab_events(lab: pd.DataFrame, window_days: float,
                death_day: pd.Series | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Treatment-emergent lab grades >= 1 inside the TE window plus dq entries for values after death."""
    _require_columns(lab, ["study_id", "ctcae_term", "grade", "days_from_index", "treatment_emergent"],
                     "lab_graded (run grade_lab_values first)")
    df = lab.copy()
    if "lab_row" not in df.columns:
        df["lab_row"] = _row_ids(df).to_numpy()
    day = pd.to_numeric(df["days_from_index"], errors="coerce")
    in_cohort = df["study_id"].isin(death_day.index) if death_day is not None else pd.Series(True, df.index)
    dday = df["study_id"].map(death_day) if death_day is not None else pd.Series(np.nan, index=df.index)
    after_death = (day > dday).fillna(False) & in_cohort
    dq = [
        _dq(df, ~in_cohort & df["treatment_emergent"], "labs", "study_id", "study_id_not_in_cohort",
            "lab event excluded", row_col="lab_row"),
        _dq(df, after_death, "labs", "days_from_index", "lab_after_death", "flagged and excluded", value=day,
            row_col="lab_row"),
    ]
    te = (df["treatment_emergent"].astype(bool) & (df["grade"] >= 1) & in_cohort & ~after_death
          & day.between(0, window_days).fillna(False))
    df, day = df.loc[te], day[te]
    ev = pd.DataFrame({"study_id": df["study_id"], "ctcae_term": df["ctcae_term"],
                       "grade": df["grade"].astype("Int64"), "day": day.astype(float), "related": False,
                       "serious": False, "discontinued": False, "is_reported": False, "is_lab": True})
    return ev, _concat_dq(dq)


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
    _require_columns(cohort, ["study_id", arm_col], "cohort")
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
    _require_columns(events, ["study_id", "worst_grade", "related", "serious", "discontinued"], "events")
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
    _require_columns(events, ["study_id", "ctcae_term", "worst_grade"], "events")
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


# --------------------------------------------------------------------------------------------------- pipeline use
def teae_events(adverse_events: pd.DataFrame, labs: pd.DataFrame, cohort: pd.DataFrame, window_days: float,
                terms: CtcaeTerms | None = None) -> SafetyResult:
    """Treatment-emergent events of the cohort's patients: reported AEs mapped to CTCAE terms
    (:func:`map_terms`, column ``ae_term`` of the cleaned table) merged with lab-derived grades
    (:func:`grade_lab_values`) by :func:`merge_adverse_events`. Data-quality entries of all three steps are
    returned together."""
    ids = set(cohort["study_id"])
    ae = adverse_events[adverse_events["study_id"].isin(ids)]
    lab = labs[labs["study_id"].isin(ids) & labs["value"].notna()]
    mapped = map_terms(ae, terms, term_col="ae_term")
    graded = grade_lab_values(lab, terms=terms)
    merged = merge_adverse_events(mapped.data, graded.data, window_days,
                                  cohort=cohort[["study_id", "index_date", "death_date"]], terms=terms)
    return SafetyResult(merged.data, _concat_dq([mapped.dq, graded.dq, merged.dq]))


def format_counts(table: pd.DataFrame, label_col: str, groups: Sequence[str] = ("",)) -> pd.DataFrame:
    """Manuscript version of :func:`ae_summary_table` (``groups=("",)``) or :func:`ae_by_term_table`
    (``groups=("any ", ">=3 ")``): 'n (%)' per arm and group, p-values formatted."""
    from analysis_utils.reporting.tables import fmt_p

    arms = list(table.attrs.get("N", {}))
    out = pd.DataFrame({label_col: table[label_col].astype(str).str.replace(">=", "≥", regex=False)})
    for g in groups:
        for arm in arms:
            head = f"{arm} (N = {table.attrs['N'][arm]})" + (f", grade {g.strip().replace('>=', '≥')}" if g else "")
            out[head] = [f"{int(n)} ({p:.1f}%)" for n, p in zip(table[f"{arm} {g}n"], table[f"{arm} {g}%"])]
        pcol = "p_value" if not g else f"p {g.strip()}"
        out["P" + (f" (grade {g.strip().replace('>=', '≥')})" if g else "")] = table[pcol].map(fmt_p)
    return out
