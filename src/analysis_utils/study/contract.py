"""The data contract: reading centre exports and harmonising them to canonical tables.

The contract lives in ``data/data_dictionary.yaml`` (one entry per table and column: type, unit, allowed values,
synonyms, physical range, required, identifier). This module

1. reads a centre folder (``manifest.yaml`` plus one CSV or XLSX file per table), every cell as text;
2. parses dates with the format the centre declares in its manifest (ISO 8601 accepted as a logged fallback),
   numbers, and category labels through the contract's synonyms (English variants and Chinese);
3. converts units explicitly from the row's declared unit (``*_unit`` columns, the labs ``unit`` column) with the
   factors in the contract; a missing or unknown unit sets the value missing and is logged, never guessed;
4. validates the harmonised table with a pandera schema built from the contract (allowed values, physical ranges,
   non-null keys) and turns every failure case into a located data-quality entry, setting the cell missing.

Problems that make a table unusable (unreadable file, missing required table, no ``mrn`` column) raise
:class:`ContractError` with the file named. Everything else becomes a :class:`~analysis_utils.quality.QualityLog`
entry. Raw files are only ever opened for reading.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import yaml

from analysis_utils.study.quality import REDACTED, QualityLog

MISSING_TOKENS = {"", "na", "n/a", "nan", "null", "unknown", "unk", "-", "--", "/", "未知", "不详", "缺失", "nat"}
ISO_FORMAT = "%Y-%m-%d"


class ContractError(Exception):
    """An export cannot be used at all (unreadable file, missing table or key column); names the file."""


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


@lru_cache(maxsize=1)
def load_contract() -> Contract:
    """Load the packaged data dictionary (``analysis_utils/study/data/data_dictionary.yaml``)."""
    text = resources.files("analysis_utils.study").joinpath("data/data_dictionary.yaml").read_text(encoding="utf-8")
    return Contract(yaml.safe_load(text))


def normalise_label(value: str) -> str:
    """Key used to match category labels: Unicode NFKC, stripped, case-folded, inner spaces collapsed."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", str(value)).strip()).casefold()


def synonym_map(spec: dict[str, Any]) -> dict[str, str]:
    """Map of normalised label -> canonical value for one category column (canonical values map to themselves)."""
    out: dict[str, str] = {}
    for canon in spec.get("allowed", []):
        out[normalise_label(canon)] = str(canon)
    for canon, variants in (spec.get("synonyms") or {}).items():
        for v in variants:
            out[normalise_label(v)] = str(canon)
    return out


# --------------------------------------------------------------------------------------------------- reading
def read_manifest(center_dir: Path) -> dict[str, Any]:
    """Read and check ``manifest.yaml`` of one centre folder (required keys per the contract's ``manifest``)."""
    path = center_dir / "manifest.yaml"
    if not path.is_file():
        raise ContractError(f"{path}: no manifest.yaml in centre folder (contract section 'manifest')")
    try:
        manifest = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ContractError(f"{path}: manifest is not readable YAML ({exc})") from None
    for key, spec in load_contract().spec["manifest"].items():
        if spec.get("required") and not manifest.get(key):
            raise ContractError(f"{path}: required manifest key '{key}' is missing ({spec.get('description', '')})")
    manifest["center_id"] = str(manifest["center_id"])
    return manifest


def find_table_file(center_dir: Path, table: str) -> Path | None:
    """The CSV or XLSX file holding ``table`` in a centre folder, or None."""
    for ext in (".csv", ".xlsx"):
        p = center_dir / f"{table}{ext}"
        if p.is_file():
            return p
    return None


def read_raw_table(path: Path) -> pd.DataFrame:
    """Read one export file with every cell as text (no type guessing). Adds ``source_row`` (1-based data row)."""
    try:
        if path.suffix == ".csv":
            df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        elif path.suffix == ".xlsx":
            df = pd.read_excel(path, dtype=str, keep_default_na=False, engine="calamine")
        else:
            raise ContractError(f"{path}: unsupported file type (CSV or XLSX expected)")
    except ContractError:
        raise
    except Exception as exc:  # any parser failure means the file is unusable
        raise ContractError(f"{path}: file cannot be read as {path.suffix[1:].upper()} ({type(exc).__name__}: {exc})") from None
    df.columns = [str(c).strip() for c in df.columns]
    df = df.apply(lambda s: s.str.strip())
    df.insert(0, "source_row", np.arange(1, len(df) + 1))
    return df


# --------------------------------------------------------------------------------------------------- parsing
def _by_unique(s: pd.Series, func) -> pd.Series:
    """Apply ``func`` once per distinct value (columns repeat values a lot), keeping NaN as NaN."""
    uniques = s.dropna().unique()
    return s.map(dict(zip(uniques, map(func, uniques))))


def is_missing(s: pd.Series) -> pd.Series:
    """True where a text cell holds one of the missing-value tokens (empty, NA, null, -, ...)."""
    return s.isna() | _by_unique(s.astype("object"), lambda v: normalise_label(v) in MISSING_TOKENS).fillna(True).astype(bool)


def parse_dates(s: pd.Series, date_format: str) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Parse text dates with the centre's declared ``strptime`` format.

    Returns (dates, parsed_as_iso, unparseable): values not in the declared format but valid ISO 8601
    (``YYYY-MM-DD``, or ``YYYY-MM-DD HH:MM:SS`` as Excel date cells arrive) are accepted and flagged, since ISO is
    unambiguous; anything else is NaT and flagged. Times of day are dropped (dates only).
    """
    missing = is_missing(s)
    text = s.where(~missing)
    primary = pd.to_datetime(text, format=date_format, errors="coerce")
    iso = pd.to_datetime(text.where(primary.isna()), format="ISO8601", errors="coerce")
    parsed_as_iso = primary.isna() & iso.notna() & (date_format != ISO_FORMAT)
    out = primary.fillna(iso).dt.normalize()
    unparseable = out.isna() & ~missing
    return out, parsed_as_iso, unparseable


def parse_numbers(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse numbers written with '.' or ',' as decimal mark; returns (values, not_a_number flags)."""
    missing = is_missing(s)
    text = s.where(~missing).str.replace(",", ".", regex=False).str.replace(" ", "", regex=False)
    out = pd.to_numeric(text, errors="coerce")
    return out.astype(float), out.isna() & ~missing


def map_categories(s: pd.Series, spec: dict[str, Any]) -> tuple[pd.Series, pd.Series]:
    """Map labels to canonical values through the contract's synonyms; returns (values, unknown-label flags)."""
    missing = is_missing(s)
    mapping = synonym_map(spec)
    out = _by_unique(s.where(~missing), lambda v: mapping.get(normalise_label(v)))
    return out.astype("object").where(out.notna(), None), out.isna() & ~missing


# --------------------------------------------------------------------------------------------------- harmonise
def _locate(df: pd.DataFrame, mask: pd.Series) -> pd.DataFrame:
    return df.loc[mask, ["center_id", "source_file", "source_row"]]


def harmonise_table(raw: pd.DataFrame, table: str, manifest: dict[str, Any], source_file: str,
                    log: QualityLog) -> pd.DataFrame:
    """Turn one raw text table into the canonical table of the contract (types, labels, units), logging problems.

    Column order: ``center_id, source_file, source_row`` then the contract's columns. Columns not in the contract
    are dropped with an ``info`` entry; a missing required column is added empty with an ``error`` entry; a missing
    ``mrn`` column raises :class:`ContractError` (no record could be linked).
    """
    contract = load_contract()
    spec_cols = contract.columns(table)
    center = manifest["center_id"]
    df = raw.copy()
    df.insert(0, "source_file", source_file)
    df.insert(0, "center_id", center)

    for col in [c for c in raw.columns if c not in spec_cols and c != "source_row"]:
        log.add(rule="column not in the data contract", action="column ignored", center_id=center,
                file=source_file, column=col, severity="info")
    for col, spec in spec_cols.items():
        if col in df.columns:
            continue
        if col == "mrn":
            raise ContractError(f"{source_file}: required key column 'mrn' is missing; no row can be linked to a patient")
        if spec.get("required"):
            log.add(rule="required column missing", action="column added as missing for every row",
                    center_id=center, file=source_file, column=col, severity="error")
        df[col] = ""

    out = df[["center_id", "source_file", "source_row"]].copy()
    for col, spec in spec_cols.items():
        s = df[col].astype("object")
        kind = spec["type"]
        redact = bool(spec.get("identifier"))
        if kind == "date":
            values, as_iso, bad = parse_dates(s, manifest["date_format"])
            _log_mask(log, df, as_iso, col, s, "date not in the centre's declared format",
                      "parsed as ISO 8601 (unambiguous)", "info", redact)
            _log_mask(log, df, bad, col, s, f"unparseable date (declared format {manifest['date_format']})",
                      "set to missing", "error", redact)
            out[col] = values
        elif kind in ("number", "integer"):
            values, bad = parse_numbers(s)
            _log_mask(log, df, bad, col, s, "not a number", "set to missing", "error", redact)
            if kind == "integer":
                frac = values.notna() & (values != values.round())
                _log_mask(log, df, frac, col, s, "integer expected", "set to missing", "error", redact)
                values = values.where(~frac)
            out[col] = values
        elif kind == "category":
            if spec.get("allowed") is None:  # free-text unit column of the labs table
                out[col] = s.where(~is_missing(s), None)
                continue
            values, unknown = map_categories(s, spec)
            _log_mask(log, df, unknown, col, s, "unknown category label (not in allowed values or synonyms)",
                      "set to missing", "error", redact)
            out[col] = values
        else:
            out[col] = s.where(~is_missing(s), None)
    out = _convert_units(out, table, log)
    return _validate(out, table, log)


def _log_mask(log: QualityLog, df: pd.DataFrame, mask: pd.Series, col: str, values: pd.Series, rule: str,
              action: str, severity: str, redact: bool) -> None:
    if not mask.any():
        return
    rows = df.loc[mask, ["center_id", "source_file", "source_row"]].assign(_v=values[mask])
    log.add_rows(rows, rule=rule, action=action, column=col, value_col="_v", severity=severity, redact=redact)


def _convert_units(df: pd.DataFrame, table: str, log: QualityLog) -> pd.DataFrame:
    """Convert declared units to canonical ones (contract ``units``/``lab_units``); unknown unit -> missing + log."""
    spec = load_contract().spec
    pairs = {"patients": [("total_bilirubin", "total_bilirubin_unit", "total_bilirubin"),
                          ("albumin", "albumin_unit", "albumin")],
             "tumour_assessments": [(c, "diameter_unit", "diameter") for c in ("ld_mm", "viable_ld_mm", "short_axis_mm")]}
    for value_col, unit_col, key in pairs.get(table, []):
        factors = spec["units"][key]["factors"]
        has_value = df[value_col].notna()
        factor = df[unit_col].map(factors)
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
    """Run the pandera schema lazily; each failure case becomes a log entry and the cell is set to missing."""
    spec_cols = load_contract().columns(table)
    try:
        pandera_schema(table).validate(df, lazy=True)
        failures = pd.DataFrame(columns=["column", "check", "index", "failure_case"])
    except pa.errors.SchemaErrors as err:
        failures = err.failure_cases
    if table == "labs":
        lab_failures = _lab_range_failures(df)
        failures = lab_failures if failures.empty else pd.concat([failures, lab_failures], ignore_index=True)
    for rec in failures.dropna(subset=["index"]).to_dict("records"):
        idx, col = rec["index"], rec["column"]
        spec = spec_cols.get(col, {})
        not_null = "not_nullable" in str(rec["check"])
        row = df.loc[idx]
        log.add(rule=("required value missing" if not_null else f"value outside {rec['check']}"),
                action=("row kept; field missing" if not_null else "set to missing"), center_id=row["center_id"],
                file=row["source_file"], row=row["source_row"], column=col,
                value=REDACTED if spec.get("identifier") else rec["failure_case"], severity="error")
        if not not_null:
            df.loc[idx, col] = np.nan if spec.get("type") in ("number", "integer") else None
    return df


def _lab_range_failures(df: pd.DataFrame) -> pd.DataFrame:
    lab_units = load_contract().spec["lab_units"]
    lo = df["test"].map(lambda t: lab_units.get(t, {}).get("range", [-np.inf, np.inf])[0] if t else -np.inf)
    hi = df["test"].map(lambda t: lab_units.get(t, {}).get("range", [-np.inf, np.inf])[1] if t else np.inf)
    bad = df["value"].notna() & ((df["value"] < lo) | (df["value"] > hi))
    return pd.DataFrame({"column": "value", "check": "physical range for this test", "index": df.index[bad],
                         "failure_case": df.loc[bad, "value"].values})


def read_center(center_dir: Path, log: QualityLog) -> dict[str, pd.DataFrame]:
    """Read and harmonise every contract table of one centre folder; a missing table raises ContractError."""
    manifest = read_manifest(center_dir)
    out: dict[str, pd.DataFrame] = {}
    for table in load_contract().tables:
        path = find_table_file(center_dir, table)
        if path is None:
            raise ContractError(f"{center_dir}: required table '{table}' not found (expected {table}.csv or {table}.xlsx)")
        raw = read_raw_table(path)
        out[table] = harmonise_table(raw, table, manifest, f"{center_dir.name}/{path.name}", log)
    return out


def data_dictionary_markdown() -> str:
    """Human-readable page of the data contract (what ``docs/data-dictionary.md`` is generated from)."""
    spec = load_contract().spec
    lines = [f"# Data dictionary (contract version {spec['version']})", "",
             "Generated from `src/analysis_utils/study/data/data_dictionary.yaml` by "
             "`python -m analysis_utils dictionary`. Do not edit by hand.", "",
             "Each centre sends a folder with `manifest.yaml` and one CSV or XLSX file per table.", "",
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
            lines.append(f"| `{col}` | {s['type']} | {s.get('unit', '')} | {allowed} | {rng} | {req} | "
                         f"{'yes' if s.get('identifier') else ''} | {s.get('description', '')} |")
    lines += ["", "## Unit conversions (canonical = value × factor)", "",
              "| quantity | canonical | accepted units (factor) | physical range (canonical unit) |", "|---|---|---|---|"]
    for name, u in {**spec["units"], **spec["lab_units"]}.items():
        acc = ", ".join(f"{k or '(blank)'} ×{v}" for k, v in u["factors"].items())
        rng = f"{u['range'][0]}–{u['range'][1]}" if "range" in u else "per column above"
        lines.append(f"| {name} | {u['canonical']} | {acc} | {rng} |")
    lines += ["", "## Labels", "", "Category columns accept the allowed values above and the synonyms listed in the "
              "YAML (English variants and Chinese labels), matched case-insensitively after Unicode normalisation. "
              "Empty cells and NA, N/A, null, unknown, -, 未知, 不详, 缺失 are read as missing."]
    return "\n".join(lines) + "\n"
