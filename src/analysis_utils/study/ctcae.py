"""CTCAE v5.0 rules of the study: the term table, free-text term mapping and lab grading.

Rules: docs/methods/ctcae.md (NCI Common Terminology Criteria for Adverse Events v5.0, 27 Nov 2017).
- Terms, MedDRA SOCs, defined grades and synonyms: ``data/ctcae_terms.yaml`` (versioned; read by
  :func:`load_ctcae_terms`, English and Chinese synonyms normalised by :func:`normalise_term`).
- Lab grades (:func:`ctcae_lab_grade`): boundaries exactly as printed in CTCAE v5.0
  (">ULN - 3.0 x ULN" = grade 1 when ULN < v <= 3 x ULN; "<LLN - 75,000" = grade 1 when 75 <= v < LLN).
  Boundaries are compared with a relative tolerance of 1e-9 so that a value typed as exactly 3.0 x ULN is not
  pushed over the boundary by float rounding. Baseline-abnormal rule: ALT/AST and bilirubin with an abnormal
  baseline are graded on multiples of the baseline value instead of the ULN.
- Treatment-emergent lab value (:func:`grade_lab_values`): a value after ``baseline_day`` whose grade is worse
  than the baseline-derived grade.

Documented handling (each case also writes a data-quality entry, columns ``DQ_COLUMNS``)
- Unknown AE term: kept, ``ctcae_term`` = raw text, SOC missing, ``term_status = "unknown"``.
  Ambiguous terms listed in the YAML (e.g. 肝功能异常) are kept the same way with ``"ambiguous"``.
- Invalid grade (missing, not an integer 1-5, or a grade the term does not have, e.g. fatigue 4): the grade is
  set to missing and the event kept; it counts in "any grade" rows only, never in grade >= 3 or grade 5 rows.
  Why: the event is documented, so dropping it under-counts any-grade incidence, while capping or guessing a
  grade invents severity. The dq table lists every such row for a sensitivity check.
- Lab rows: unknown test, missing value or day -> ignored; missing or non-positive local ULN/LLN -> the YAML
  default; no baseline value -> graded against ULN/LLN with baseline grade 0.

The treatment-emergent merge of reported and lab-derived events and the tables by arm are notebook 07_safety's steps
(:mod:`analysis_utils.steps.safety`).
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

TERMS_PATH = Path(__file__).resolve().parent / "data" / "ctcae_terms.yaml"
#: every entry is located: centre, file (the centre's export file when the table carries ``source_file``, else the
#: table name), source row (1-based data row of that file when the table carries ``source_row``) and column
DQ_COLUMNS = ["center_id", "file", "row", "study_id", "table", "column", "value", "rule", "action"]
GRADES = (1, 2, 3, 4, 5)
MISSING_TERM = "Unspecified (term missing)"

# docs/methods/ctcae.md (lab grading). High tests are graded on multiples of ULN (or baseline); low tests on LLN
# then absolute cut-offs in the canonical unit (10^9/L = cells/mm3 / 1000; Hb g/dL; albumin g/L = g/dL x 10).
HIGH_TESTS = ("alt", "ast", "bilirubin", "creatinine")
LOW_CUTOFFS: dict[str, tuple[float, ...]] = {
    "platelets": (75.0, 50.0, 25.0),  # <75,000 / <50,000 / <25,000 per mm3 -> grades 2 / 3 / 4
    "neutrophils": (1.5, 1.0, 0.5),  # <1,500 / <1,000 / <500 per mm3
    "wbc": (3.0, 2.0, 1.0),  # <3,000 / <2,000 / <1,000 per mm3
    "hemoglobin": (10.0, 8.0),  # <10.0 / <8.0 g/dL (grade 4-5 need clinical data)
    "albumin": (30.0, 20.0),  # <3.0 / <2.0 g/dL (grade 4-5 need clinical data)
}
GRADED_TESTS = HIGH_TESTS + tuple(LOW_CUTOFFS)
UNGRADED_TESTS = ("inr", "afp")  # valid lab tests without a CTCAE lab rule: ignored
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
# (the data-quality table format shared with analysis_utils.steps.safety)


def require_columns(df: pd.DataFrame, columns: Sequence[str], table: str) -> None:
    """Raise a ValueError naming ``table`` when ``df`` is not a DataFrame or lacks one of ``columns``."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{table}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{table}: missing required column(s) {missing}")


def row_ids(df: pd.DataFrame) -> pd.Series:
    """Original row number: ``source_row`` when present, else the DataFrame index label."""
    if "source_row" in df.columns:
        return df["source_row"]
    return pd.Series(df.index, index=df.index)


def dq_entries(df: pd.DataFrame, mask: Any, table: str, column: str, rule: str, action: str,
               value: Any = None, row_col: str | None = None) -> pd.DataFrame:
    """Data-quality entries (columns ``DQ_COLUMNS``) for the rows of ``df`` selected by ``mask``."""
    sub = df.loc[np.asarray(mask, dtype=bool)]
    if sub.empty:
        return pd.DataFrame(columns=DQ_COLUMNS)
    if value is None:
        values = sub[column] if column in sub.columns else pd.Series(pd.NA, index=sub.index)
    else:
        values = pd.Series(value, index=df.index).loc[sub.index]
    rows = sub[row_col] if row_col else row_ids(sub)
    actions = action if isinstance(action, str) else pd.Series(action, index=df.index).loc[sub.index].to_numpy()
    centre = sub["center_id"].to_numpy(dtype=object) if "center_id" in sub.columns else ""
    file = sub["source_file"].to_numpy(dtype=object) if "source_file" in sub.columns else table
    return pd.DataFrame({"center_id": centre, "file": file, "row": rows.to_numpy(),
                         "study_id": sub["study_id"].to_numpy(), "table": table, "column": column,
                         "value": values.to_numpy(dtype=object), "rule": rule, "action": actions})[DQ_COLUMNS]


def concat_dq(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Stack data-quality tables (an empty table with ``DQ_COLUMNS`` when there is none)."""
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



# ----------------------------------------------------------------------------------------------- map_terms


def map_terms(ae: pd.DataFrame, terms: CtcaeTerms | None = None, *, term_col: str = "ae_term_raw",
              grade_col: str = "grade") -> SafetyResult:
    """Map free-text AE terms (English/Chinese) to CTCAE v5.0 terms and SOCs; check grades.

    Adds ``ae_row`` (original row number), ``ctcae_term``, ``soc``, ``lab_derived`` (term has a lab rule),
    ``term_status`` (mapped / multi_mapped / ambiguous / unknown / missing), ``grade_raw``, ``grade`` (Int64,
    missing when invalid) and ``grade_status`` (valid / missing / outside_1_5 / not_defined_for_term).
    A multi-term synonym ("transaminase elevation") yields one row per target term with the same ``ae_row``.
    """
    require_columns(ae, ["study_id", term_col, grade_col], "adverse_events")
    terms = terms or load_ctcae_terms()
    df = ae.copy()
    df["ae_row"] = row_ids(df).to_numpy()
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
        dq_entries(df, status == "unknown", "adverse_events", term_col, "unknown_ae_term",
            "kept with ctcae_term = raw text and soc missing; counted in any-AE rows", row_col="ae_row"),
        dq_entries(df, status == "ambiguous", "adverse_events", term_col, "ambiguous_ae_term",
            keys.map(lambda k: f"kept unmapped ({terms.ambiguous.get(k, '')}); re-code from the chart"),
            row_col="ae_row"),
        dq_entries(df, status == "missing", "adverse_events", term_col, "missing_ae_term",
            f"kept with ctcae_term = '{MISSING_TERM}'", row_col="ae_row"),
    ]
    df = df.explode("ctcae_term", ignore_index=True)
    known = df["ctcae_term"].isin(terms.table.index)
    df["soc"] = df["ctcae_term"].map(terms.table["soc"]).astype(object).where(known, None)
    df["lab_derived"] = df["ctcae_term"].map(terms.table["lab_test"].notna()).eq(True)
    df, grade_dq = _check_grades(df, terms, grade_col)
    return SafetyResult(df, concat_dq(dq + [grade_dq]).drop_duplicates(ignore_index=True))


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
        dq_entries(out, status == "missing", "adverse_events", grade_col, "missing_grade", action, value=raw,
            row_col="ae_row"),
        dq_entries(out, status == "outside_1_5", "adverse_events", grade_col, "grade_outside_1_5", action, value=raw,
            row_col="ae_row"),
        dq_entries(out, status == "not_defined_for_term", "adverse_events", grade_col, "grade_not_defined_for_term",
            out["ctcae_term"].map(lambda t: f"{action} ({t} has grades "
                                            f"{list(terms.table['grades'].get(t, ()))})"),
            value=raw, row_col="ae_row"),
    ]
    return out.drop(columns=[grade_col]) if grade_col != "grade" else out, concat_dq(dq)


# ----------------------------------------------------------------------------------------------- lab grading


def ctcae_lab_grade(test: str, value: Any, limit: Any, baseline: Any = np.nan,
                    baseline_limit: Any = np.nan) -> np.ndarray:
    """CTCAE v5.0 grade (0-4) of lab values, docs/methods/ctcae.md (vectorised over arrays).

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
    """Grade post-baseline lab values per CTCAE v5.0 (docs/methods/ctcae.md) and flag treatment-emergence.

    Baseline = last value with ``days_from_index <= baseline_day`` (ties: latest ``lab_date``, then row order);
    only values after ``baseline_day`` are returned. ``baseline_grade`` grades the baseline value by the same rule
    (for ALT/AST/bilirubin this is 0, since an abnormal baseline becomes its own reference);
    ``treatment_emergent = grade > baseline_grade``. Without a baseline value the test is graded against ULN/LLN
    and the baseline grade taken as 0 (dq entry ``no_baseline_value``). A missing or non-positive local ULN/LLN
    is replaced by the YAML default (``limit_source = "default"``, dq entry ``missing_reference_limit``).
    Tests inr/afp have no CTCAE lab rule and are ignored.
    """
    require_columns(labs, ["study_id", "test", "value", "days_from_index"], "labs")
    terms = terms or load_ctcae_terms()
    df = labs.copy()
    df["lab_row"] = row_ids(df).to_numpy()
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
        dq_entries(df, unknown, "labs", "test", "unknown_lab_test", "row ignored", row_col="lab_row"),
        dq_entries(df, graded & num_value.isna().to_numpy(), "labs", "value", "missing_value", "row ignored",
            row_col="lab_row"),
        dq_entries(df, graded & num_value.notna().to_numpy() & day.isna().to_numpy(), "labs", "days_from_index",
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
    dq.append(dq_entries(no_base, np.ones(len(no_base), bool), "labs", "test", "no_baseline_value",
                  f"no value on or before day {baseline_day}: graded against ULN/LLN, baseline grade taken as 0",
                  value=no_base["test"], row_col="lab_row").assign(row=pd.NA))
    cols = ["study_id", "test", "ctcae_term", "lab_date", "days_from_index", "value", "uln", "lln", "limit",
            "limit_source", "baseline_value", "baseline_limit", "baseline_abnormal", "baseline_grade", "grade",
            "treatment_emergent", "lab_row"]
    out = post[cols].astype({"grade": int, "baseline_grade": int}).reset_index(drop=True)
    return SafetyResult(out, concat_dq(dq))


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
    dq = [dq_entries(df, use_default & (high == (col == "uln")), "labs", col, "missing_reference_limit", actions,
              row_col="lab_row") for col in ("uln", "lln")]
    return out, concat_dq(dq)
