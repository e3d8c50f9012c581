"""The data contract: the data dictionary, and harmonising one raw export table to its canonical form.

The contract lives in ``data/data_dictionary.yaml`` (one entry per table and column: type, unit, allowed values,
synonyms, header aliases, physical range, required, identifier; the manifest keys). This module

1. parses dates with the format the centre declares (ISO 8601 accepted as a logged fallback; an Excel serial day
   number is named as such, never converted), numbers (decimal mark inferred per file from the unambiguous numbers,
   so that ``12,345`` is twelve thousand in a file writing ``12.5`` and twelve in a file writing ``12,5``; an
   ambiguous number is set missing, never guessed) and category labels through the contract's synonyms;
2. converts units explicitly from the row's declared unit (``*_unit`` columns, the labs ``unit`` column) with the
   contract's factors; a missing or unknown unit sets the value missing and is logged, never guessed;
3. sets impossible dates missing (after the centre's ``export_date``, before 1900);
4. validates the harmonised table with a pandera schema built from the contract (allowed values, physical ranges,
   non-null keys); every failure becomes a located entry and the cell is set missing; when most values of a column
   are outside the physical range the whole column is suspected to be in another unit and set missing. A row of a
   child table missing a non-empty column of its ``key`` (a lesion measurement without its date, a lab result
   without its date) cannot be placed: it is removed, located. A patients row is never removed.

Reading the files themselves (manifest, file discovery, encodings, sheets, header rows, footers) is in
:mod:`analysis_utils.study.export_files`; a whole centre and the whole export in :mod:`analysis_utils.study.reading`.
A problem that makes an export unusable raises :class:`ContractError`, which lists every such problem found.
Everything else becomes a :class:`~analysis_utils.study.quality.QualityLog` entry (docs/data-quality.md).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import yaml

from analysis_utils.study.quality import REDACTED, QualityLog

MISSING_TOKENS = {"", "na", "n/a", "nan", "null", "unknown", "unk", "-", "--", "/", "未知", "不详", "缺失", "nat"}
ISO_FORMAT = "%Y-%m-%d"
EARLIEST_DATE = pd.Timestamp("1900-01-01")
COLUMN_WIDE_MIN = 20          # at least this many failing cells, all of a column's values: one entry for the column
UNIT_SUSPECT_MIN, UNIT_SUSPECT_SHARE = 10, 0.3   # range failures that make a whole column suspect


class ContractError(Exception):
    """An export cannot be used at all. ``problems`` lists every unusable file or key found, each naming the centre,
    the file (or manifest key) and the cause."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems if problems is not None else [message]

    @classmethod
    def from_problems(cls, problems: list[str]) -> "ContractError":
        head = (f"the centre exports cannot be used: {len(problems)} problem(s) found; fix them (or declare the "
                "layout in the centre's manifest.yaml, see docs/data-dictionary.md) and rerun:")
        return cls("\n".join([head] + [f"  - {p}" for p in problems]), problems)


@dataclass(frozen=True)
class Contract:
    """The parsed data dictionary."""

    spec: dict[str, Any]

    @property
    def tables(self) -> dict[str, Any]:
        return self.spec["tables"]

    def columns(self, table: str) -> dict[str, dict[str, Any]]:
        return self.tables[table]["columns"]

    def identifier_columns(self) -> set[str]:
        """Every column flagged ``identifier: true`` in any table."""
        return {c for t in self.tables for c, s in self.columns(t).items() if s.get("identifier")}

    def header_names(self, table: str) -> dict[str, str]:
        """Normalised header text -> contract column: the column's name and its ``aliases``."""
        out: dict[str, str] = {}
        for col, spec in self.columns(table).items():
            for name in [col, *(spec.get("aliases") or [])]:
                out[normalise_header(name)] = col
        return out


@lru_cache(maxsize=1)
def load_contract() -> Contract:
    """Load the packaged data dictionary (``analysis_utils/study/data/data_dictionary.yaml``)."""
    text = resources.files("analysis_utils.study").joinpath("data/data_dictionary.yaml").read_text(encoding="utf-8")
    return Contract(yaml.safe_load(text))


def normalise_label(value: str) -> str:
    """Key used to match category labels: Unicode NFKC, stripped, case-folded, inner spaces collapsed."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", str(value)).strip()).casefold()


def normalise_header(value: str) -> str:
    """Key used to match column headers: as :func:`normalise_label`, spaces and hyphens as underscores."""
    return re.sub(r"[\s\-]+", "_", normalise_label(value))


def synonym_map(spec: dict[str, Any]) -> dict[str, str]:
    """Map of normalised label -> canonical value for one category column (canonical values map to themselves)."""
    out: dict[str, str] = {}
    for canon in spec.get("allowed", []):
        out[normalise_label(canon)] = str(canon)
    for canon, variants in (spec.get("synonyms") or {}).items():
        for v in variants:
            out[normalise_label(v)] = str(canon)
    return out


# --------------------------------------------------------------------------------------------------- parsing
def _by_unique(s: pd.Series, func) -> pd.Series:
    """Apply ``func`` once per distinct value (columns repeat values a lot), keeping NaN as NaN."""
    codes, uniques = pd.factorize(s)
    mapped = np.array([func(u) for u in uniques] + [np.nan], dtype=object)
    return pd.Series(mapped[codes], index=s.index)


def is_missing(s: pd.Series) -> pd.Series:
    """True where a text cell holds one of the missing-value tokens (empty, NA, null, -, ...)."""
    codes, uniques = pd.factorize(s)
    missing = np.array([normalise_label(u) in MISSING_TOKENS for u in uniques] + [True], dtype=bool)
    return pd.Series(missing[codes], index=s.index)


def parse_dates(s: pd.Series, date_format: str,
                missing: pd.Series | None = None) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Parse text dates with the centre's declared ``strptime`` format.

    Returns (dates, parsed_as_iso, unparseable): values not in the declared format but valid ISO 8601
    (``YYYY-MM-DD``, or ``YYYY-MM-DD HH:MM:SS`` as Excel date cells arrive) are accepted and flagged, since ISO is
    unambiguous; anything else is NaT and flagged. Times of day are dropped (dates only). ``missing``: the cells'
    :func:`is_missing` flags, when already known.
    """
    missing = is_missing(s) if missing is None else missing
    text = s.where(~missing)
    primary = pd.to_datetime(text, format=date_format, errors="coerce")
    iso = pd.to_datetime(text.where(primary.isna()), format="ISO8601", errors="coerce")
    parsed_as_iso = primary.isna() & iso.notna() & (date_format != ISO_FORMAT)
    out = primary.fillna(iso).dt.normalize()
    unparseable = out.isna() & ~missing
    return out, parsed_as_iso, unparseable


def excel_serial_date(text: str) -> pd.Timestamp | None:
    """The date an Excel serial day number would stand for in the 1900 date system (20000-80000, i.e. 1954-2119),
    or None. Used only to say what an unparseable date looks like; never to convert it."""
    if re.fullmatch(r"\d{5}(\.0+)?", text.strip()):
        n = float(text)
        if 20000 <= n <= 80000:
            return pd.Timestamp("1899-12-30") + pd.Timedelta(days=int(n))
    return None


_SIGN = r"[+-]?"
_NUMBER_FORMS = [  # (form, pattern); first match wins
    ("plain", re.compile(rf"{_SIGN}\d+(?:[eE][+-]?\d+)?")),
    ("dot3", re.compile(rf"{_SIGN}[1-9]\d{{0,2}}\.\d{{3}}")),          # 12.345: decimal, or '.' thousands
    ("comma3", re.compile(rf"{_SIGN}[1-9]\d{{0,2}},\d{{3}}")),         # 12,345: ',' thousands, or decimal comma
    ("dot", re.compile(rf"{_SIGN}\d*\.\d+(?:[eE][+-]?\d+)?")),         # 12.5, 0.345, 1234.5: decimal dot
    ("comma", re.compile(rf"{_SIGN}\d+,\d+")),                          # 12,5, 0,345, 1234,5: decimal comma
    ("grouped_dot", re.compile(rf"{_SIGN}[1-9]\d{{0,2}}(?:,\d{{3}})+(?:\.\d+)?")),     # 1,234,567 / 1,234.5
    ("grouped_comma", re.compile(rf"{_SIGN}[1-9]\d{{0,2}}(?:\.\d{{3}})+(?:,\d+)?")),   # 1.234.567 / 1.234,5
    ("grouped_space", re.compile(rf"{_SIGN}[1-9]\d{{0,2}}(?:[ \u00a0\u202f']\d{{3}})+(?:[.,]\d+)?")),
]


def number_form(text: str) -> str | None:
    """The written form of a number (see ``_NUMBER_FORMS``), or None when the text is not a number."""
    t = unicodedata.normalize("NFKC", text).strip()
    for form, pattern in _NUMBER_FORMS:
        if pattern.fullmatch(t):
            return form
    return None


def _number_value(text: str, form: str, mark: str | None) -> float:
    t = unicodedata.normalize("NFKC", text).strip()
    if form in ("plain", "dot"):
        return float(t)
    if form == "comma":
        return float(t.replace(",", "."))
    if form == "dot3":
        return float(t.replace(".", "")) if mark == "," else float(t)
    if form == "comma3":
        return float(t.replace(",", "")) if mark == "." else float(t.replace(",", "."))
    if form == "grouped_dot":
        return float(t.replace(",", ""))
    if form == "grouped_comma":
        return float(t.replace(".", "").replace(",", "."))
    return float(re.sub(r"[ \u00a0\u202f']", "", t).replace(",", "."))  # grouped_space


def decimal_mark(texts: pd.Series, declared: str | None = None) -> str | None:
    """The decimal mark of a file: the declared one, else '.' or ',' from the unambiguous numbers (90 % majority),
    'mixed' when both are used, None when no number shows it."""
    if declared in (".", ","):
        return declared
    uniques = pd.Series(pd.unique(texts.dropna()), dtype=object).astype(str)
    has_comma = uniques.str.contains(",", regex=False)
    has_dot = uniques.str.contains(".", regex=False)
    if not has_comma.any():  # no comma anywhere: a dot can only be a decimal mark
        return "." if has_dot.any() else None
    forms = pd.Series([number_form(t) for t in uniques[has_comma | has_dot]], dtype=object)
    dot = int(forms.isin(["dot", "grouped_dot"]).sum())
    comma = int(forms.isin(["comma", "grouped_comma"]).sum())
    if dot == comma == 0:
        return None
    if dot >= 0.9 * (dot + comma):
        return "."
    if comma >= 0.9 * (dot + comma):
        return ","
    return "mixed"


def _read_number(u: str, mark: str | None) -> tuple[float, tuple | None]:
    """(value, note) of one distinct text; note = (rule, action, severity, set missing?) or None."""
    form = number_form(u)
    if form is None:
        return np.nan, None
    if (form == "comma3" and mark not in (".", ",")) or (form == "dot3" and mark == "mixed"):
        return np.nan, ("separator is either a decimal mark or a thousands separator (the file does not show "
                        "which)", "set to missing (never guessed)", "error", True)
    value = _number_value(u, form, mark)
    if (form == "comma3" and mark == ".") or (form == "dot3" and mark == ","):
        sep = "," if form == "comma3" else "."
        return value, (f"'{sep}' read as a thousands separator (the file writes decimals with '{mark}')",
                       f"read as {value:g}", "warning", False)
    if form in ("grouped_dot", "grouped_comma", "grouped_space"):
        return value, ("number written with thousands separators", f"read as {value:g}", "info", False)
    if (form == "comma" and mark == ".") or (form == "dot" and mark == ","):
        return value, (f"decimal mark '{',' if form == 'comma' else '.'}' in a file that writes decimals with "
                       f"'{mark}'", f"read as {value:g}", "info", False)
    return value, None


def read_numbers(s: pd.Series, mark: str | None,
                 missing: pd.Series | None = None) -> tuple[pd.Series, pd.Series, pd.DataFrame]:
    """Parse text numbers given the file's decimal mark (:func:`decimal_mark`).

    Returns (values, not_a_number, notes). ``notes`` has one row per cell whose reading needs saying, with columns
    ``rule``, ``action``, ``severity`` and ``bad`` (True when the cell is set missing): a thousands separator (read
    as such), a decimal mark other than the file's, and ``12,345`` / ``12.345`` when the file does not tell whether
    the separator is a decimal mark or a thousands separator (set missing, never guessed)."""
    missing = is_missing(s) if missing is None else missing
    codes, uniques = pd.factorize(s.where(~missing))
    uniques = pd.Series(uniques, dtype=object).astype(str)
    values = pd.to_numeric(uniques, errors="coerce").to_numpy(dtype=float)  # plain numbers, at C speed
    special = ~np.isfinite(values) | uniques.str.contains(",", regex=False).to_numpy()
    if mark in (",", "mixed"):
        special |= uniques.str.contains(".", regex=False).to_numpy()
    notes_u: list = [None] * len(uniques)
    for i in np.flatnonzero(special):
        values[i], notes_u[i] = _read_number(uniques.iloc[i], mark)
    cell_values = pd.Series(np.append(values, np.nan)[codes], index=s.index)
    noted_u = np.array([n is not None for n in notes_u] + [False])
    noted = noted_u[codes]
    notes = pd.DataFrame([notes_u[c] for c in codes[noted]], index=s.index[noted],
                         columns=["rule", "action", "severity", "bad"])
    bad_u = np.array([n is not None and n[3] for n in notes_u] + [False])
    return cell_values, pd.Series(cell_values.isna().to_numpy() & ~missing.to_numpy() & ~bad_u[codes], index=s.index), notes


def parse_numbers(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse numbers of one column, the decimal mark inferred from that column; returns (values, not-a-number or
    ambiguous flags). :func:`harmonise_table` infers the mark from the whole file instead."""
    values, bad, notes = read_numbers(s, decimal_mark(s.where(~is_missing(s))))
    if len(notes):
        bad = bad | notes["bad"].reindex(s.index, fill_value=False).astype(bool)
    return values, bad


def map_categories(s: pd.Series, spec: dict[str, Any],
                   missing: pd.Series | None = None) -> tuple[pd.Series, pd.Series]:
    """Map labels to canonical values through the contract's synonyms; returns (values, unknown-label flags)."""
    missing = is_missing(s) if missing is None else missing
    mapping = synonym_map(spec)
    out = _by_unique(s.where(~missing), lambda v: mapping.get(normalise_label(v)))
    return out.astype("object").where(out.notna(), None), out.isna() & ~missing


# --------------------------------------------------------------------------------------------------- harmonise
def _locate(df: pd.DataFrame, mask: pd.Series) -> pd.DataFrame:
    return df.loc[mask, ["center_id", "source_file", "source_row"]]


def harmonise_table(raw: pd.DataFrame, table: str, manifest: dict[str, Any], source_file: str,
                    log: QualityLog, *, date_format: str | None = None) -> pd.DataFrame:
    """Turn one raw text table into the canonical table of the contract (types, labels, units), logging problems.

    ``raw`` holds text cells under contract column names plus ``source_row``; columns starting with ``_`` are
    carried through unchanged (the reader's row hash). ``date_format`` overrides the manifest's ``date_format``.
    Column order: ``center_id, source_file, source_row`` then the contract's columns. Columns not in the contract
    are dropped with an ``info`` entry; a missing required column is added empty with an ``error`` entry; a missing
    ``mrn`` column raises :class:`ContractError` (no record could be linked).
    """
    contract = load_contract()
    spec_cols = contract.columns(table)
    center = manifest["center_id"]
    fmt = date_format or manifest["date_format"]
    df = raw.copy()
    df.insert(0, "source_file", source_file)
    df.insert(0, "center_id", center)

    for col in [c for c in raw.columns if c not in spec_cols and c != "source_row" and not c.startswith("_")]:
        log.add(rule="column not in the data contract", action="column ignored", center_id=center,
                file=source_file, column=col, severity="info")
    for col, spec in spec_cols.items():
        if col in df.columns:
            continue
        if col == "mrn":
            raise ContractError(f"{source_file}: required key column 'mrn' is missing; no row can be linked to a "
                                f"patient (columns found: {', '.join(c for c in raw.columns if c != 'source_row')})")
        if spec.get("required"):
            log.add(rule="required column missing", action="column added as missing for every row",
                    center_id=center, file=source_file, column=col, severity="error")
        df[col] = ""

    number_cols = [c for c, sp in spec_cols.items() if sp["type"] in ("number", "integer")]
    mark = decimal_mark(pd.concat([df[c] for c in number_cols]) if number_cols else pd.Series(dtype=object),
                        manifest.get("decimal_mark"))
    export_date = _export_date(manifest)
    out = df[["center_id", "source_file", "source_row"] + [c for c in raw.columns if c.startswith("_")]].copy()
    for col, spec in spec_cols.items():
        s = df[col].astype("object")
        kind = spec["type"]
        redact = bool(spec.get("identifier"))
        missing = is_missing(s)
        if kind == "date":
            out[col] = _harmonise_dates(df, col, s, fmt, export_date, log, redact, missing)
        elif kind in ("number", "integer"):
            values, bad, notes = read_numbers(s, mark, missing)
            _log_mask(log, df, bad, col, s, "not a number", "set to missing", "error", redact)
            groups = notes.groupby(list(notes.columns)).groups if len(notes) else {}
            for (rule, action, severity, _), idx in groups.items():
                _log_mask(log, df, pd.Series(s.index.isin(idx), index=s.index), col, s, rule, action, severity, redact)
            if kind == "integer":
                frac = values.notna() & (values != values.round())
                _log_mask(log, df, frac, col, s, "integer expected", "set to missing", "error", redact)
                values = values.where(~frac)
            out[col] = values
        elif kind == "category":
            if spec.get("allowed") is None:  # free-text unit column of the labs table
                out[col] = s.where(~missing, None)
                continue
            values, unknown = map_categories(s, spec, missing)
            _log_mask(log, df, unknown, col, s, "unknown category label (not in allowed values or synonyms)",
                      "set to missing", "error", redact)
            out[col] = values
        else:
            out[col] = s.where(~missing, None)
    out = _convert_units(out, table, log)
    return _validate(out, table, log)


def _export_date(manifest: dict[str, Any]) -> pd.Timestamp | None:
    value = manifest.get("export_date")
    stamp = pd.to_datetime(str(value), format="ISO8601", errors="coerce") if value else pd.NaT
    return None if pd.isna(stamp) else stamp


def _harmonise_dates(df: pd.DataFrame, col: str, s: pd.Series, fmt: str, export_date: pd.Timestamp | None,
                     log: QualityLog, redact: bool, missing: pd.Series) -> pd.Series:
    values, as_iso, bad = parse_dates(s, fmt, missing)
    _log_mask(log, df, as_iso, col, s, "date not in the centre's declared format", "parsed as ISO 8601 (unambiguous)",
              "info", redact)
    serial = pd.Series(False, index=s.index)
    if bad.any():
        serial[bad] = [excel_serial_date(str(v)) is not None for v in s[bad]]
    _log_mask(log, df, serial, col, s, "unparseable date: looks like an Excel serial day number (not converted: the "
              "date system is unknown)", "set to missing", "error", redact)
    _log_mask(log, df, bad & ~serial, col, s, f"unparseable date (declared format {fmt})", "set to missing", "error",
              redact)
    if export_date is not None:
        late = values > export_date
        _log_mask(log, df, late, col, s, f"date after the centre's export date ({export_date:%Y-%m-%d})",
                  "set to missing", "error", redact)
        values = values.where(~late)
    early = values < EARLIEST_DATE
    _log_mask(log, df, early, col, s, "date before 1900", "set to missing", "error", redact)
    return values.where(~early)


def _log_mask(log: QualityLog, df: pd.DataFrame, mask: pd.Series, col: str, values: pd.Series, rule: str,
              action: str, severity: str, redact: bool) -> None:
    """One entry per flagged cell; when every non-missing value of the column is flagged (and there are at least
    :data:`COLUMN_WIDE_MIN`), one entry for the column instead (the cause, named once)."""
    n = int(mask.sum())
    if not n:
        return
    if n >= COLUMN_WIDE_MIN and n == int((~is_missing(values)).sum()):
        first = df.loc[mask, "source_row"].iloc[0]
        example = REDACTED if redact else values[mask].iloc[0]
        log.add(rule=f"every value of the column ({n} values): {rule}", action=action, center_id=df["center_id"].iloc[0],
                file=df["source_file"].iloc[0], column=col, value=f"e.g. row {first}: {example}", severity=severity)
        return
    rows = df.loc[mask, ["center_id", "source_file", "source_row"]].assign(_v=values[mask])
    log.add_rows(rows, rule=rule, action=action, column=col, value_col="_v", severity=severity, redact=redact)


UNIT_PAIRS = {"patients": [("total_bilirubin", "total_bilirubin_unit", "total_bilirubin"),
                           ("albumin", "albumin_unit", "albumin")],
              "tumour_assessments": [(c, "diameter_unit", "diameter") for c in ("ld_mm", "viable_ld_mm", "short_axis_mm")]}


def declared_unit_column(unit_col: str) -> str:
    """Hidden column keeping a row's unit as the centre declared it (read by the cross-centre unit check)."""
    return f"_declared_{unit_col}"


def _convert_units(df: pd.DataFrame, table: str, log: QualityLog) -> pd.DataFrame:
    """Convert declared units to canonical ones (contract ``units``/``lab_units``); unknown unit -> missing + log."""
    spec = load_contract().spec
    for value_col, unit_col, key in UNIT_PAIRS.get(table, []):
        factors = spec["units"][key]["factors"]
        declared = declared_unit_column(unit_col)
        if declared not in df.columns:  # several value columns share one unit column: keep what was declared
            df[declared] = df[unit_col]
        has_value = df[value_col].notna()
        factor = df[declared].map(factors)
        bad = has_value & factor.isna()
        if bad.any():
            log.add_rows(_locate(df, bad).assign(_v=df.loc[bad, unit_col]), rule="unit missing or not declared in the contract",
                         action=f"{value_col} set to missing (unit never guessed)", column=unit_col, value_col="_v",
                         severity="error")
        df[value_col] = df[value_col] * factor
        df[unit_col] = df[unit_col].where(~has_value | bad, spec["units"][key]["canonical"])
    if table == "labs":
        df = _convert_lab_units(df, log)
    return df


def _convert_lab_units(df: pd.DataFrame, log: QualityLog) -> pd.DataFrame:
    lab_units = load_contract().spec["lab_units"]
    factor = pd.Series(np.nan, index=df.index)
    canonical = pd.Series(None, index=df.index, dtype="object")
    unit_key = df["unit"].fillna("").map(lambda u: unicodedata.normalize("NFKC", u).strip())
    for test, spec in lab_units.items():
        is_test = df["test"] == test
        norm = {unicodedata.normalize("NFKC", k).casefold(): v for k, v in spec["factors"].items()}
        factor[is_test] = unit_key[is_test].str.casefold().map(norm)
        canonical[is_test] = spec["canonical"]
    bad = df["value"].notna() & df["test"].notna() & factor.isna()
    if bad.any():
        log.add_rows(_locate(df, bad).assign(_v=df.loc[bad, "unit"].fillna("")), rule="lab unit missing or not declared for this test",
                     action="value set to missing (unit never guessed)", column="unit", value_col="_v", severity="error")
    for col in ("value", "uln", "lln"):
        df[col] = df[col] * factor
    df[declared_unit_column("unit")] = unit_key
    df["unit"] = canonical.where(~bad, None)
    return df


@lru_cache(maxsize=None)
def pandera_schema(table: str) -> pa.DataFrameSchema:
    """pandera schema of a harmonised table, built from the contract (allowed values, ranges, non-null keys)."""
    contract = load_contract()
    cols: dict[str, pa.Column] = {}
    for col, spec in contract.columns(table).items():
        checks = []
        if spec.get("allowed") is not None:
            allowed = [int(a) for a in spec["allowed"]] if spec["type"] == "integer" else [str(a) for a in spec["allowed"]]
            checks.append(pa.Check.isin(allowed, name=f"allowed values {allowed}"))
        if spec.get("range") is not None:
            lo, hi = spec["range"]
            checks.append(pa.Check.in_range(lo, hi, name=f"physical range [{lo}, {hi}] {spec.get('unit', '')}".strip()))
        cols[col] = pa.Column(nullable=spec.get("nullable", True) is not False, checks=checks, required=True, coerce=False)
    if table == "labs":  # lab ranges depend on the test: checked per test in _validate
        cols["value"] = pa.Column(nullable=True)
    return pa.DataFrameSchema(cols, strict=False, name=table)


def _validate(df: pd.DataFrame, table: str, log: QualityLog) -> pd.DataFrame:
    """Run the pandera schema lazily; each failure case becomes a log entry and the cell is set to missing. When
    most values of a column (of a lab test) are outside the physical range, the column is suspected to be in
    another unit: its remaining values are set missing too, each located, under one entry naming the cause."""
    spec_cols = load_contract().columns(table)
    try:
        pandera_schema(table).validate(df, lazy=True)
        failures = pd.DataFrame(columns=["column", "check", "index", "failure_case"])
    except pa.errors.SchemaErrors as err:
        failures = err.failure_cases
    if table == "labs":
        lab_failures = _lab_range_failures(df)
        failures = lab_failures if failures.empty else pd.concat([failures, lab_failures], ignore_index=True)
    failures = failures.dropna(subset=["index"])
    key = set(load_contract().tables[table].get("key", [])) if table != "patients" else set()
    unplaced = []
    for rec in failures.to_dict("records"):
        idx, col = rec["index"], rec["column"]
        spec = spec_cols.get(col, {})
        not_null = "not_nullable" in str(rec["check"])
        row = df.loc[idx]
        if not_null and col in key:
            unplaced.append(idx)
        log.add(rule=("required value missing" if not_null else f"value outside {_check_words(rec['check'], spec)}"),
                action=("row removed: it cannot be placed without this key value" if not_null and col in key
                        else "row kept; field missing" if not_null else "set to missing"),
                center_id=row["center_id"], file=row["source_file"], row=row["source_row"], column=col,
                value=REDACTED if spec.get("identifier") else rec["failure_case"], severity="error",
                affects="row" if not_null and col in key else "")
        if not not_null:
            df.loc[idx, col] = np.nan if spec.get("type") in ("number", "integer") else None
    ranges = failures[failures["check"].astype(str).str.contains("range")]
    if len(ranges):
        _suspect_units(df, ranges, log)
    return df.drop(index=list(dict.fromkeys(unplaced))) if unplaced else df


def _check_words(check: Any, spec: dict[str, Any]) -> str:
    """A pandera check as a reader says it: 'the allowed values [0, 1, 2]', 'the physical range [5, 70] g/L'."""
    text = str(check)
    if m := re.fullmatch(r"isin\((.*)\)", text):
        return f"the allowed values {m.group(1)}"
    if m := re.fullmatch(r"in_range\((.*), (.*)\)", text):
        return f"the physical range [{m.group(1)}, {m.group(2)}] {spec.get('unit', '')}".rstrip()
    return text


def _suspect_units(df: pd.DataFrame, ranges: pd.DataFrame, log: QualityLog) -> None:
    """Columns (lab tests) where at least :data:`UNIT_SUSPECT_SHARE` of the values broke the physical range."""
    group = df["test"] if "test" in df.columns else pd.Series("", index=df.index)
    failed = ranges.assign(_g=group.loc[ranges["index"]].to_numpy()).groupby(["column", "_g"])["index"].size()
    for (col, g), n in failed.items():
        in_group = (group == g) if g else pd.Series(True, index=df.index)
        total = n + int((df[col].notna() & in_group).sum())
        if n < UNIT_SUSPECT_MIN or n < UNIT_SUSPECT_SHARE * total:
            continue
        rest = df[col].notna() & in_group
        what = f"{g} values" if g else f"values of {col}"
        log.add(rule=f"{n} of {total} {what} outside the physical range: the column is probably in another unit "
                     "than the one declared", action="every value of the column set to missing",
                center_id=df["center_id"].iloc[0], file=df["source_file"].iloc[0], column=col, severity="error")
        if rest.any():
            log.add_rows(_locate(df, rest).assign(_v=df.loc[rest, col]), column=col, value_col="_v", severity="error",
                         rule="value of a column whose values are mostly outside the physical range (unit suspected)",
                         action="set to missing")
            df.loc[rest, col] = np.nan


def _lab_range_failures(df: pd.DataFrame) -> pd.DataFrame:
    lab_units = load_contract().spec["lab_units"]
    lo = df["test"].map(lambda t: lab_units.get(t, {}).get("range", [-np.inf, np.inf])[0] if t else -np.inf)
    hi = df["test"].map(lambda t: lab_units.get(t, {}).get("range", [-np.inf, np.inf])[1] if t else np.inf)
    bad = df["value"].notna() & ((df["value"] < lo) | (df["value"] > hi))
    return pd.DataFrame({"column": "value", "check": "physical range for this test", "index": df.index[bad],
                         "failure_case": df.loc[bad, "value"].values})


def data_dictionary_markdown() -> str:
    """Human-readable page of the data contract (what ``docs/data-dictionary.md`` is generated from)."""
    spec = load_contract().spec
    lines = [f"# Data dictionary (contract version {spec['version']})", "",
             "Generated from `src/analysis_utils/study/data/data_dictionary.yaml` by "
             "`python -m analysis_utils dictionary`. Do not edit by hand.", "",
             "Each centre sends a folder with `manifest.yaml` and one CSV or XLSX file per table. How the files "
             "are read, what is checked and what stops a run: [data-quality.md](data-quality.md).", "",
             "## manifest.yaml", "", "| key | required | description |", "|---|---|---|"]
    for key, s in spec["manifest"].items():
        lines.append(f"| `{key}` | {'yes' if s.get('required') else 'no'} | {s.get('description', '')} |")
    for table, t in spec["tables"].items():
        lines += ["", f"## {table}", "", t.get("description", ""), "",
                  "| column | type | unit | allowed values | range | required | identifier | description |",
                  "|---|---|---|---|---|---|---|---|"]
        for col, s in t["columns"].items():
            allowed = ", ".join(str(a) for a in s.get("allowed", []) or [])
            rng = "" if s.get("range") is None else f"{s['range'][0]}–{s['range'][1]}"
            req = "yes" if s.get("required") else "no"
            if s.get("nullable") is False:
                req += " (non-empty)"
            desc = s.get("description", "")
            if s.get("aliases"):
                desc = (desc + " " if desc else "") + "(header also read from: " + ", ".join(s["aliases"]) + ")"
            lines.append(f"| `{col}` | {s['type']} | {s.get('unit', '')} | {allowed} | {rng} | {req} | "
                         f"{'yes' if s.get('identifier') else ''} | {desc} |")
    lines += ["", "## Unit conversions (canonical = value × factor)", "",
              "| quantity | canonical | accepted units (factor) | physical range (canonical unit) |", "|---|---|---|---|"]
    for name, u in {**spec["units"], **spec["lab_units"]}.items():
        acc = ", ".join(f"{k or '(blank)'} ×{v}" for k, v in u["factors"].items())
        rng = f"{u['range'][0]}–{u['range'][1]}" if "range" in u else "per column above"
        lines.append(f"| {name} | {u['canonical']} | {acc} | {rng} |")
    lines += ["", "## Labels", "", "Category columns accept the allowed values above and the synonyms listed in the "
              "YAML (English variants and Chinese labels), matched case-insensitively after Unicode normalisation. "
              "Empty cells and NA, N/A, null, unknown, -, 未知, 不详, 缺失 are read as missing. Column headers "
              "are matched ignoring case, spaces and hyphens, and through the aliases above."]
    return "\n".join(lines) + "\n"
