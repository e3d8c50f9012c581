"""Reading a centre folder's files as text: the manifest, which file holds which table, and each file's encoding,
delimiter, sheet, header row, blank rows and footer rows.

Every decision that is not the plain default (UTF-8, comma, first sheet, header on the first line) is said in an
``info`` entry of the data-quality log, and the centre's ``manifest.yaml`` can state it instead (keys ``files``,
``sheets``, ``header_rows``, ``encoding``, ``delimiter``: docs/data-dictionary.md). A file that cannot be read
unambiguously raises :class:`~analysis_utils.study.contract.ContractError` naming the centre, file and cause:
another encoding than UTF-8 or GB18030 not declared, a table present twice (``patients.csv`` and ``patients.xlsx``,
or on two sheets), no header row with the contract's columns. Raw files are only ever opened for reading.

Rows are numbered 1, 2, ... from the first line under the header (blank lines counted), as in the data-quality log.
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from analysis_utils.study.contract import ContractError, load_contract, normalise_header
from analysis_utils.study.quality import QualityLog

DELIMITED = (".csv", ".tsv")
SPREADSHEETS = (".xlsx", ".xlsm", ".xls", ".ods")
HEADER_SEARCH_ROWS = 30
DELIMITERS = (",", ";", "\t", "|")
FOOTER_WORDS = re.compile(r"合计|总计|小计|共\s*\d+\s*[例人条行]|总数|例数|制表|导出|打印|审核|备注|截止|"
                          r"\btotal\b|\bsum\b|\bcount\b|export|printed|generated|\breport\b|\brecords?\b|\bpage\b",
                          re.IGNORECASE)
MRN_LIKE = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-_/.]{0,29}")


@dataclass
class RawTable:
    """One export file read as text: ``frame`` has the contract's column names (unknown headers kept as written),
    ``source_row`` and ``_row_hash`` (hash of the row's cells, for exact-duplicate detection); ``numeric_mrn`` is
    True where a spreadsheet stored the row's ``mrn`` as a number (leading zeros lost)."""

    table: str
    source_file: str
    frame: pd.DataFrame
    numeric_mrn: pd.Series | None = None


def read_manifest(center_dir: Path) -> dict[str, Any]:
    """Read and check ``manifest.yaml`` of one centre folder (required keys per the contract's ``manifest``)."""
    path = center_dir / "manifest.yaml"
    if not path.is_file():
        raise ContractError(f"{center_dir.name}/manifest.yaml: no manifest.yaml in centre folder {center_dir.name} "
                            "(contract section 'manifest')")
    try:
        manifest = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ContractError(f"{center_dir.name}/manifest.yaml: manifest is not readable YAML ({exc})") from None
    if not isinstance(manifest, dict):
        raise ContractError(f"{center_dir.name}/manifest.yaml: manifest is not a mapping of keys to values")
    missing = [k for k, s in load_contract().spec["manifest"].items() if s.get("required") and not manifest.get(k)]
    if missing:
        raise ContractError(f"{center_dir.name}/manifest.yaml: required manifest key(s) {', '.join(map(repr, missing))} "
                            "missing (see docs/data-dictionary.md)")
    for key in ("files", "sheets", "header_rows", "date_formats"):
        if manifest.get(key) is not None and not isinstance(manifest[key], dict):
            raise ContractError(f"{center_dir.name}/manifest.yaml: key '{key}' must map table names to values, "
                                f"e.g. {key}: {{patients: ...}}")
    manifest["center_id"] = str(manifest["center_id"])
    return manifest


# --------------------------------------------------------------------------------------------------- which file
def table_files(center_dir: Path, manifest: dict[str, Any], log: QualityLog, problems: list[str]) -> dict[str, Path]:
    """The file of each contract table in a centre folder (manifest ``files``, else ``<table>.<csv|xlsx|...>``,
    matched ignoring case). A table found twice, or not at all, is a problem; a file matching no table is logged."""
    center, folder = manifest["center_id"], center_dir.name
    declared = manifest.get("files") or {}
    tables = list(load_contract().tables)
    for key in declared:
        if key not in tables:
            problems.append(f"{folder}/manifest.yaml: key files names '{key}', which is not a table of the contract "
                            f"({', '.join(tables)})")
    entries = sorted(center_dir.iterdir())
    out: dict[str, Path] = {}
    for table in tables:
        if table in declared:
            path = center_dir / str(declared[table])
            if path.is_file():
                out[table] = path
            else:
                problems.append(f"{folder}/{declared[table]}: named for table '{table}' in manifest.yaml key files, "
                                "but no such file")
            continue
        hits = [p for p in entries if p.is_file() and p.suffix.lower() in DELIMITED + SPREADSHEETS
                and normalise_header(p.stem) == table]
        if len(hits) > 1:
            problems.append(f"{folder}: table '{table}' is present as {' and '.join(p.name for p in hits)}; keep one "
                            f"file, or name the one to use in manifest.yaml key files")
        elif not hits:
            near = [p.name for p in entries if p.is_file() and table.split("_")[0] in p.name.casefold()]
            problems.append(f"{folder}: required table '{table}' not found (expected {table}.csv or {table}.xlsx"
                            + (f"; files with a similar name: {', '.join(near)} - name the file in manifest.yaml "
                               "key files" if near else "") + ")")
        else:
            out[table] = hits[0]
            if hits[0].stem != table:
                log.add(rule=f"file name differs from the table name '{table}' in case or spacing",
                        action=f"read as table '{table}'", center_id=center, file=f"{folder}/{hits[0].name}",
                        severity="info")
    used = set(out.values())
    for p in entries:
        if p in used or p.name == "manifest.yaml":
            continue
        if p.name.startswith((".", "~$")):
            log.add(rule="hidden or lock file", action="ignored", center_id=center, file=f"{folder}/{p.name}",
                    severity="info")
        else:
            log.add(rule="file or folder matches no table of the contract", action="ignored (name it in manifest.yaml "
                    "key files if it holds a table)", center_id=center, file=f"{folder}/{p.name}", severity="warning")
    return out


# --------------------------------------------------------------------------------------------------- grids
@lru_cache(maxsize=4096)
def _header_key(cell: str) -> str:
    return normalise_header(cell)


def _header_score(cells: list[str], names: dict[str, str]) -> int:
    return len({names[h] for h in (_header_key(c) for c in cells if c and len(c) < 80) if h in names})


def _decode(path: Path, manifest: dict[str, Any], source_file: str, log: QualityLog) -> str:
    data = path.read_bytes()
    center = manifest["center_id"]
    declared = manifest.get("encoding")
    if declared:
        try:
            return data.decode(str(declared))
        except (UnicodeDecodeError, LookupError) as exc:
            raise ContractError(f"{source_file}: not readable with the encoding '{declared}' declared in manifest.yaml "
                                f"({type(exc).__name__})") from None
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8", errors="strict")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        log.add(rule="file encoded as UTF-16", action="read as UTF-16 (byte-order mark)", center_id=center,
                file=source_file, severity="info")
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        raise ContractError(f"{source_file}: file is neither UTF-8 nor GB18030/GBK text; declare its encoding in "
                            "manifest.yaml key encoding") from None
    log.add(rule="file is not UTF-8", action="read as GB18030 (which includes GBK and GB2312)", center_id=center,
            file=source_file, severity="info")
    return text


def _csv_grid(path: Path, table: str, manifest: dict[str, Any], source_file: str,
              log: QualityLog) -> list[list[str]]:
    text = _decode(path, manifest, source_file, log)
    names = load_contract().header_names(table)
    delim = manifest.get("delimiter")
    if not delim:
        head = text.splitlines()[:HEADER_SEARCH_ROWS]
        scores = {d: max((_header_score(r, names) for r in csv.reader(head, delimiter=d)), default=0) for d in DELIMITERS}
        delim = max(DELIMITERS, key=lambda d: (scores[d], -DELIMITERS.index(d)))
        if delim != ",":
            log.add(rule=f"CSV delimited by {'tab' if delim == chr(9) else repr(delim)}, not by commas",
                    action="delimiter detected from the header line", center_id=manifest["center_id"],
                    file=source_file, severity="info")
    try:  # the C parser when every line has as many cells as the first; else the csv module (ragged lines)
        df = pd.read_csv(io.StringIO(text), sep=str(delim), header=None, dtype=str, keep_default_na=False,
                         skip_blank_lines=False, engine="c")
        return [[c.strip() for c in r] for r in df.itertuples(index=False, name=None)]
    except pd.errors.ParserError:
        pass
    try:
        return [[c.strip() for c in r] for r in csv.reader(io.StringIO(text, newline=""), delimiter=str(delim))]
    except csv.Error as exc:
        raise ContractError(f"{source_file}: file cannot be read as CSV ({exc})") from None


def _cell_text(v: Any) -> str:
    if v is None or v == "":
        return ""
    if isinstance(v, bool):
        return str(v).upper()
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else format(v, ".15g")
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d") if v.time() == dt.time(0) else v.isoformat(sep=" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v).strip()


def _sheet_grid(path: Path, table: str, manifest: dict[str, Any], source_file: str,
                log: QualityLog) -> tuple[list[list[str]], list[list[bool]]]:
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
        sheets = {name: book.get_sheet_by_name(name).to_python(skip_empty_area=False) for name in book.sheet_names}
    except Exception as exc:  # any parser failure means the file is unusable
        raise ContractError(f"{source_file}: file cannot be read as a spreadsheet ({type(exc).__name__}: {exc})") from None
    if not sheets:
        raise ContractError(f"{source_file}: the workbook has no sheet")
    wanted = (manifest.get("sheets") or {}).get(table)
    names = load_contract().header_names(table)
    if wanted is not None:
        if str(wanted) not in sheets:
            raise ContractError(f"{source_file}: sheet '{wanted}' named in manifest.yaml key sheets not found "
                                f"(sheets: {', '.join(sheets)})")
        chosen = str(wanted)
    else:
        scores = {n: max((_header_score([_cell_text(c) for c in r], names) for r in g[:HEADER_SEARCH_ROWS]), default=0)
                  for n, g in sheets.items()}
        full = [n for n, s in scores.items() if s >= max(2, len(load_contract().columns(table)) // 2)]
        if len(full) > 1:
            raise ContractError(f"{source_file}: the table is on several sheets ({', '.join(full)}); name the one to "
                                "use in manifest.yaml key sheets")
        chosen = max(sheets, key=lambda n: (scores[n], -list(sheets).index(n)))
        first = next(iter(sheets))
        if chosen != first:
            log.add(rule=f"table not on the first sheet ('{first}' holds no header with the contract's columns)",
                    action=f"read from sheet '{chosen}'", center_id=manifest["center_id"], file=source_file,
                    severity="info")
    grid = sheets[chosen]
    return [[_cell_text(c) for c in r] for r in grid], [[isinstance(c, (int, float)) and not isinstance(c, bool)
                                                           for c in r] for r in grid]


# --------------------------------------------------------------------------------------------------- one file
def read_table(path: Path, table: str, manifest: dict[str, Any], source_file: str, log: QualityLog) -> RawTable:
    """Read one export file as text under the contract's column names (see module docstring)."""
    center = manifest["center_id"]
    suffix = path.suffix.lower()
    numeric: list[list[bool]] | None = None
    if suffix in DELIMITED:
        grid = _csv_grid(path, table, manifest, source_file, log)
    elif suffix in SPREADSHEETS:
        grid, numeric = _sheet_grid(path, table, manifest, source_file, log)
    else:
        raise ContractError(f"{source_file}: unsupported file type {path.suffix} (CSV or XLSX expected)")
    names = load_contract().header_names(table)
    h = _header_index(grid, table, manifest, source_file, names)
    if h > 0:
        log.add(rule=f"header on line {h + 1}, not on the first line", action=f"{h} line(s) above it skipped "
                "(title or notes)", center_id=center, file=source_file, severity="info")
    header = grid[h]
    width = max([len(header)] + [len(r) for r in grid[h + 1:]]) if len(grid) > h + 1 else len(header)
    columns = _columns(header + [""] * (width - len(header)), names, center, source_file, log)
    body = [r + [""] * (width - len(r)) for r in grid[h + 1:]]
    frame = pd.DataFrame(body, columns=range(width), dtype=object) if body else pd.DataFrame(columns=range(width), dtype=object)
    frame = _drop_extra_cells(frame, columns, center, source_file, log)
    frame.columns = [columns[i] for i in frame.columns]
    frame.insert(0, "source_row", np.arange(1, len(frame) + 1))
    numeric_mrn = None
    if numeric is not None and "mrn" in frame.columns:
        pos = columns.index("mrn")
        numeric_mrn = pd.Series([bool(r[pos]) if pos < len(r) else False for r in numeric[h + 1:]], dtype=bool)
    keep = _non_records(frame, table, center, source_file, log)
    frame = frame[keep].reset_index(drop=True)
    if numeric_mrn is not None:
        numeric_mrn = numeric_mrn[keep.to_numpy()].reset_index(drop=True)
    data_cols = [c for c in frame.columns if c != "source_row"]
    frame["_row_hash"] = pd.util.hash_pandas_object(frame[data_cols], index=False).to_numpy() if data_cols else 0
    return RawTable(table, source_file, frame, numeric_mrn)


def _header_index(grid: list[list[str]], table: str, manifest: dict[str, Any], source_file: str,
                  names: dict[str, str]) -> int:
    declared = (manifest.get("header_rows") or {}).get(table)
    if declared is not None:
        h = int(declared) - 1
        if not 0 <= h < len(grid):
            raise ContractError(f"{source_file}: header line {declared} declared in manifest.yaml key header_rows is "
                                f"outside the file ({len(grid)} lines)")
        return h
    scores = [_header_score(r, names) for r in grid[:HEADER_SEARCH_ROWS]]
    if not scores or max(scores) == 0:
        raise ContractError(f"{source_file}: no header line with the contract's column names in the first "
                            f"{HEADER_SEARCH_ROWS} lines (expected e.g. {', '.join(list(names.values())[:4])}); "
                            "declare it in manifest.yaml key header_rows if it is further down")
    best = max(scores)
    return scores.index(best)


def _columns(header: list[str], names: dict[str, str], center: str, source_file: str,
             log: QualityLog) -> list[str]:
    """Contract column per header cell; other headers kept as written, empty ones named by position."""
    out: list[str] = []
    seen: dict[str, str] = {}
    for i, cell in enumerate(header):
        col = names.get(normalise_header(cell)) if cell else None
        if col is None:
            out.append(cell if cell else f"(column {i + 1} without header)")
            continue
        if col in seen:
            log.add(rule=f"two columns hold '{col}' (headers '{seen[col]}' and '{cell}')",
                    action=f"the first is used; column {i + 1} ignored", center_id=center, file=source_file,
                    column=col, severity="error")
            out.append(f"{cell} (column {i + 1}, duplicate)")
            continue
        seen[col] = cell
        if cell != col:
            log.add(rule=f"header '{cell}' is not the contract's column name", action=f"read as column '{col}'",
                    center_id=center, file=source_file, column=col, severity="info")
        out.append(col)
    return out


def _drop_extra_cells(frame: pd.DataFrame, columns: list[str], center: str, source_file: str,
                      log: QualityLog) -> pd.DataFrame:
    """Cells under an empty header. A column filled in most rows is an unnamed column (kept; dropped later as not in
    the contract); cells filled in a few rows only mean those rows have more cells than the header (a delimiter
    inside a cell?): their cells cannot be aligned with the columns, so every cell but the mrn is set missing."""
    extra = [i for i, c in enumerate(columns) if c.endswith("without header)")]
    if not extra or frame.empty:
        return frame.drop(columns=[i for i in extra if frame.empty])
    share = (frame[extra] != "").mean()
    stray = [i for i in extra if 0 < share[i] < 0.5]
    if stray:
        ragged = (frame[stray] != "").any(axis=1)
        mrn = columns.index("mrn") if "mrn" in columns else None
        for r in np.flatnonzero(ragged.to_numpy()):
            log.add(rule="row has more cells than the header (a delimiter inside a cell?): its cells cannot be "
                         "aligned with the columns", action="every cell but mrn set to missing; record kept",
                    center_id=center, file=source_file, row=r + 1, severity="error")
        keep = frame[mrn].copy() if mrn is not None else None
        frame.loc[ragged, :] = ""
        if keep is not None:
            frame[mrn] = keep
    return frame.drop(columns=[i for i in extra if share[i] < 0.5])


def _non_records(frame: pd.DataFrame, table: str, center: str, source_file: str, log: QualityLog) -> pd.Series:
    """False for blank rows and for footer, total or note rows; each is logged (blank rows once per file).

    A footer row has at most two filled cells and either an ``mrn`` that is no MRN (``合计: 97 例``, ``Exported by
    ...``), or no ``mrn`` and footer words or a place after the last full row, or a place after the last full row
    and an ``mrn`` of another shape than the file's (``97`` under ``PLC-008102``). A sparse row with a plausible MRN
    among the data stays a record."""
    cols = [c for c in frame.columns if c != "source_row"]
    if frame.empty or not cols:
        return pd.Series(True, index=frame.index)
    filled = (frame[cols] != "").sum(axis=1)
    blank = filled == 0
    if blank.any():
        rows = frame.loc[blank, "source_row"]
        log.add(rule="empty row(s)", action="ignored", center_id=center, file=source_file, row=int(rows.iloc[0]),
                value=f"{len(rows)} empty row(s), the first at row {int(rows.iloc[0])}", severity="info")
    sparse = filled.between(1, 2)
    footer = pd.Series(False, index=frame.index)
    if sparse.any():
        mrn = frame["mrn"] if "mrn" in frame.columns else pd.Series("", index=frame.index)
        full = ~sparse & ~blank
        last_full = full[full].index.max() if full.any() else -1
        shape = mrn.str.replace(r"\d", "9", regex=True).str.replace(r"[^\W\d_]", "A", regex=True)
        seen = set(shape[full])
        for i in sparse[sparse].index:
            text = " ".join(v for v in frame.loc[i, cols] if v)
            trailing = i > last_full
            m = mrn[i]
            if ((m and not MRN_LIKE.fullmatch(m)) or (not m and (trailing or FOOTER_WORDS.search(text)))
                    or (m and trailing and seen and shape[i] not in seen)):
                footer[i] = True
                column = next(c for c in cols if frame.at[i, c])
                log.add(rule="footer, total or note row (not a record)", action="row ignored", center_id=center,
                        file=source_file, row=int(frame.at[i, "source_row"]), column=column, value=text,
                        severity="warning", affects="row")
    return ~(blank | footer)


def read_raw_table(path: Path, table: str | None = None, manifest: dict[str, Any] | None = None) -> pd.DataFrame:
    """One export file read as text (as :func:`read_table`, logging nowhere): the table name defaults to the file's
    stem and the manifest to the one of the file's folder when present."""
    table = table or normalise_header(path.stem)
    if manifest is None:
        manifest = {"center_id": path.parent.name}
        if (path.parent / "manifest.yaml").is_file():
            manifest = {**(yaml.safe_load((path.parent / "manifest.yaml").read_text(encoding="utf-8")) or {}),
                        "center_id": path.parent.name}
    raw = read_table(path, table, manifest, f"{path.parent.name}/{path.name}", QualityLog())
    return raw.frame.drop(columns=["_row_hash"])
