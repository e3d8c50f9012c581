"""A corpus of broken centre exports, each made by mutating a copy of a clean synthetic export (one defect per case),
and the oracle that judges what the cleaning did with it.

The base export is generated with the synthetic generator (no injected defects) and laid out in four centre roles:
``iso`` (CSV, dates %Y-%m-%d), ``dmy`` (CSV, %d/%m/%Y), ``mdy`` (CSV, %m/%d/%Y) and ``zh`` (XLSX, Chinese labels).
A case mutates a copy and states what must happen: ``located`` (an entry of the data-quality log at the centre,
file, and where given row and column, whose rule or action matches ``cause``) or ``stopped`` (a ContractError whose
message names the centre, the file and matches ``cause``). Whatever the outcome, :func:`judge` also checks:

- every cell of every table that differs from the base run has a located entry (same centre, file and row; or an
  entry about the whole file, column or centre);
- no record (patients row) or table row is invented or lost without an entry;
- every patient whose arm, eligibility, exclusion reason or outcome differs from the base run has an entry on one
  of their rows (or about their centre or file);
- no identifier of the mutated centre, and no identifier the case typed in, appears in any written output;
- the raw files are byte-identical before and after the run.
"""
from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import openpyxl
import pandas as pd
import yaml

from analysis_utils.study.cleaning import CleaningConfig, clean
from analysis_utils.study.contract import ContractError, load_contract
from analysis_utils.study.export_files import read_raw_table
from analysis_utils.synthetic import generate_cohort
from analysis_utils.synthetic.xlsx import write_xlsx

CFG = CleaningConfig(data_cutoff=pd.Timestamp("2025-09-30"), pseudonym_key="corpus-key")
BASE_CONFIG = {"seed": 11, "n_records": 200, "n_centers": 4, "xlsx_centers": 1, "chinese_centers": 1,
               "typo_rate": 0.0, "missing_rate": 0.0, "duplicate_share": 0.0}
ROLE_FORMATS = {"iso": "%Y-%m-%d", "dmy": "%d/%m/%Y", "mdy": "%m/%d/%Y", "zh": "%Y年%m月%d日"}
TABLES = list(load_contract().tables)
DERIVED = ["arm", "eligible", "exclusion_reason", "os_event", "os_days", "pfs_recist_event", "pfs_mrecist_event",
           "bor_recist", "bor_mrecist"]


def _date_columns(table: str) -> list[str]:
    return [c for c, s in load_contract().columns(table).items() if s["type"] == "date"]


def _numeric_columns(table: str) -> tuple[str, ...]:
    return tuple(c for c, s in load_contract().columns(table).items() if s["type"] in ("number", "integer"))


def reformat_dates(df: pd.DataFrame, table: str, old: str, new: str) -> pd.DataFrame:
    """The table with every date column re-written from format ``old`` to ``new`` (unparseable cells kept)."""
    out = df.copy()
    for col in _date_columns(table):
        if col in out.columns:
            d = pd.to_datetime(out[col], format=old, errors="coerce")
            out[col] = [x.strftime(new) if pd.notna(x) else v for x, v in zip(d, out[col])]
    return out


class Export:
    """A raw export folder whose centres are addressed by role (see module docstring)."""

    def __init__(self, raw: Path) -> None:
        self.raw = raw
        self.roles: dict[str, str] = yaml.safe_load((raw.parent / "roles.yaml").read_text())

    def folder(self, role: str) -> Path:
        return self.raw / self.roles[role]

    def path(self, role: str, table: str) -> Path:
        hits = [p for p in self.folder(role).iterdir() if p.stem == table]
        assert len(hits) == 1, hits
        return hits[0]

    def read(self, role: str, table: str) -> pd.DataFrame:
        return read_raw_table(self.path(role, table)).drop(columns=["source_row"])

    def manifest(self, role: str) -> dict:
        return yaml.safe_load((self.folder(role) / "manifest.yaml").read_text(encoding="utf-8"))

    def write_manifest(self, role: str, manifest: dict) -> None:
        (self.folder(role) / "manifest.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")

    def write(self, role: str, table: str, df: pd.DataFrame, *, name: str | None = None, sep: str = ",",
              encoding: str = "utf-8", numeric: tuple[str, ...] | None = None, replace: bool = True) -> Path:
        """Write a table (CSV, or XLSX when ``name`` ends .xlsx), replacing the table's current file."""
        if replace:
            self.path(role, table).unlink()
        target = self.folder(role) / (name or self.path_name(role, table))
        if target.suffix == ".xlsx":
            write_xlsx(target, table, df, _numeric_columns(table) if numeric is None else numeric)
        else:
            target.write_bytes(df.to_csv(index=False, sep=sep).encode(encoding))
        return target

    def path_name(self, role: str, table: str) -> str:
        return "{}.{}".format(table, "xlsx" if role == "zh" else "csv")

    def identifiers(self, role: str) -> set[str]:
        p = self.read(role, "patients")
        return {v for c in ("patient_name", "phone", "national_id", "mrn") for v in p[c] if len(v) >= 5}


def build_base(out: Path) -> Path:
    """Generate the clean synthetic export and lay it out in the four roles; returns the raw folder."""
    generate_cohort(BASE_CONFIG, out)
    raw = out / "raw"
    manifests = {c.name: yaml.safe_load((c / "manifest.yaml").read_text(encoding="utf-8")) for c in sorted(raw.iterdir())}
    zh = [c for c, m in manifests.items() if m["language"] == "zh"][0]
    en = [c for c in manifests if c != zh]
    roles = dict(zip(("iso", "dmy", "mdy"), en)) | {"zh": zh}
    for role, center in roles.items():
        folder = raw / center
        m = manifests[center]
        for table in TABLES:
            path = next(p for p in folder.iterdir() if p.stem == table)
            df = read_raw_table(path).drop(columns=["source_row"])
            df = reformat_dates(df, table, m["date_format"], ROLE_FORMATS[role])
            path.chmod(0o644)
            path.unlink()
            ext = "xlsx" if role == "zh" else "csv"
            if ext == "xlsx":
                write_xlsx(folder / f"{table}.xlsx", table, df, _numeric_columns(table))
            else:
                df.to_csv(folder / f"{table}.csv", index=False)
        m["date_format"] = ROLE_FORMATS[role]
        (folder / "manifest.yaml").write_text(yaml.safe_dump(m, allow_unicode=True), encoding="utf-8")
    (out / "roles.yaml").write_text(yaml.safe_dump(roles))
    return raw


# --------------------------------------------------------------------------------------------------- cases
@dataclass
class Expect:
    outcome: str                      # "located" or "stopped"
    role: str
    file: str                         # file name, or "manifest.yaml"
    cause: str                        # regex: rule/action of the entry, or the stop message
    row: int | None = None
    column: str | None = None
    added: set = field(default_factory=set)        # (file stem, row) the mutation appended
    identifiers: tuple[str, ...] = ()             # typed-in identifiers that must reach no output
    check: Callable | None = None                  # check(result, base) -> list of problems


@dataclass
class Case:
    name: str
    mutate: Callable[[Export], Expect]


@dataclass
class Run:
    """One cleaning run on an export: the cleaned data, or the stop message; the written outputs' text."""

    cleaned: object | None
    error: str | None
    output_text: str
    raw_changed: list[str]


def _hashes(raw: Path) -> dict[str, str]:
    return {p.relative_to(raw).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(raw.rglob("*")) if p.is_file()}


def run_export(raw: Path, out: Path) -> Run:
    from analysis_utils.steps import cleaning as steps

    before = _hashes(raw)
    try:
        cleaned = clean(raw, CFG)
        error = None
    except ContractError as exc:
        cleaned, error = None, str(exc)
    text = ""
    if cleaned is not None:
        steps.write_cleaned(cleaned, out)
        parts = []
        for f in sorted(out.rglob("*")):
            if f.suffix == ".parquet":
                parts.append(pd.read_parquet(f).to_csv())
            elif f.suffix in (".csv", ".md", ".json"):
                parts.append(f.read_text(encoding="utf-8"))
        text = "\n".join(parts)
    after = _hashes(raw)
    return Run(cleaned, error, text, sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)))


def _stem(file: pd.Series) -> pd.Series:
    return file.astype(str).str.split("/").str[-1].str.rsplit(".", n=1).str[0]


def _frames(cleaned) -> dict[str, pd.DataFrame]:
    """Contract columns of every table, keyed by (center_id, file stem, source_row)."""
    ids = load_contract().identifier_columns()
    out = {}
    for table in TABLES:
        df = cleaned.screened.rename(columns={"max_tumour_size_cm": "max_tumour_size"}) if table == "patients" \
            else cleaned.tables[table]
        cols = [c for c in load_contract().columns(table) if c not in ids and c in df.columns]
        key = pd.MultiIndex.from_arrays([df["center_id"], _stem(df["source_file"]), df["source_row"].astype(int)])
        out[table] = df[cols].set_axis(key)
    return out


def _equal(a, b) -> bool:
    if pd.isna(a) and pd.isna(b):
        return True
    if pd.isna(a) or pd.isna(b):
        return False
    if isinstance(a, (float, np.floating)) or isinstance(b, (float, np.floating)):
        return bool(np.isclose(float(a), float(b), rtol=1e-9, atol=1e-12))
    return a == b


def _patient_rows(raw: Path) -> dict[tuple[str, str, int], tuple[str, int]]:
    """(centre, file stem, row) of every row of the base export -> (centre, row of the patient in patients)."""
    out = {}
    for folder in sorted(p for p in raw.iterdir() if p.is_dir()):
        center = yaml.safe_load((folder / "manifest.yaml").read_text(encoding="utf-8"))["center_id"]
        files = {p.stem: p for p in folder.iterdir() if p.stem in TABLES}
        pat = read_raw_table(files["patients"])
        where = dict(zip(pat["mrn"], pat["source_row"]))
        for table, path in files.items():
            df = read_raw_table(path)
            for r, m in zip(df["source_row"], df["mrn"]):
                if m in where:
                    out[(center, table, int(r))] = (center, int(where[m]))
    return out


@dataclass
class Verdict:
    case: str
    outcome: str            # located / stopped / missed
    problems: list[str]
    n_entries: int = 0
    n_changed_cells: int = 0
    n_changed_patients: int = 0
    n_consequence_entries: int = 0


def judge(case: str, expect: Expect, run: Run, base: Run, ex: Export, base_raw: Path,
          patient_rows: dict) -> Verdict:
    center = ex.roles[expect.role]
    problems: list[str] = []
    if run.raw_changed:
        problems.append(f"raw files modified: {run.raw_changed}")
    if run.cleaned is None:
        ok = (expect.outcome == "stopped" and center in run.error and expect.file.split(".")[0] in run.error
              and re.search(expect.cause, run.error, re.IGNORECASE))
        if not ok:
            problems.append(f"stopped, but expected {expect.outcome} ({expect.file}, {expect.cause}): {run.error[:400]}")
        return Verdict(case, "stopped" if ok else "missed", problems)
    dq = run.cleaned.quality.to_frame()
    dq["stem"] = _stem(dq["file"])
    outcome = "missed"
    if expect.outcome == "stopped":
        problems.append(f"expected a stop ({expect.cause}) but the run went through")
    else:
        hit = dq[(dq["center_id"] == center) & dq["file"].str.endswith(f"/{expect.file}")]
        if expect.row is not None:
            hit = hit[hit["row"] == expect.row]
        if expect.column is not None:
            hit = hit[hit["column"] == expect.column]
        hit = hit[(hit["rule"] + " " + hit["action"]).str.contains(expect.cause, case=False, regex=True)]
        if len(hit):
            outcome = "located"
        else:
            problems.append(f"no entry at {center}/{expect.file} row {expect.row} column {expect.column} "
                            f"matching '{expect.cause}'")
    # every changed cell, lost or invented row located
    rowlevel = set(zip(dq["center_id"], dq["stem"], dq["row"].astype("float")))
    filelevel = dq[dq["row"].isna()]
    file_cols = set(zip(filelevel["center_id"], filelevel["stem"], filelevel["column"]))
    centre_level = set(dq.loc[(dq["affects"] == "centre") | (dq["file"] == ""), "center_id"])

    def explained(c: str, stem: str, row: int, column: str | None) -> bool:
        return ((c, stem, float(row)) in rowlevel or (c, stem, column) in file_cols or (c, stem, "") in file_cols
                or c in centre_level)

    a_frames, b_frames = _frames(run.cleaned), _frames(base.cleaned)
    changed_cells = 0
    for table in TABLES:
        a, b = a_frames[table], b_frames[table]
        for key in b.index.difference(a.index):
            if not explained(*key, None):
                problems.append(f"row lost without an entry: {key}")
        for key in a.index.difference(b.index):
            if (key[1], key[2]) not in expect.added:
                problems.append(f"row invented: {key}")
        both = a.index.intersection(b.index)
        aa, bb = a.loc[both], b.loc[both]
        for col in a.columns:
            for key, x, y in zip(both, aa[col], bb[col]):
                if not _equal(x, y):
                    changed_cells += 1
                    if not explained(*key, col):
                        problems.append(f"value changed without an entry: {key} {col}: {y!r} -> {x!r}")
    # consequences for patients
    sa = run.cleaned.screened.set_index(["center_id", "source_row"])[DERIVED]
    sb = base.cleaned.screened.set_index(["center_id", "source_row"])[DERIVED]
    by_patient: dict[tuple[str, int], bool] = {}
    for (c, stem, row) in rowlevel:
        if row == row and (c, stem, int(row)) in patient_rows:
            by_patient[patient_rows[(c, stem, int(row))]] = True
    files_with_entries = set(filelevel.loc[filelevel["severity"].isin(["error", "warning"]), "center_id"])
    changed_patients = 0
    for key in sa.index.intersection(sb.index):
        if any(not _equal(x, y) for x, y in zip(sa.loc[key], sb.loc[key])):
            changed_patients += 1
            if not (by_patient.get(key) or key[0] in centre_level or key[0] in files_with_entries):
                problems.append(f"patient {key}: derived values changed without any entry on their rows: "
                                + ", ".join(f"{c} {sb.loc[key, c]!r}->{sa.loc[key, c]!r}" for c in DERIVED
                                            if not _equal(sa.loc[key, c], sb.loc[key, c])))
    # identifiers
    for v in sorted(set(expect.identifiers) | ex.identifiers(expect.role)):
        if v in run.output_text:
            problems.append(f"identifier reached an output: {v[:3]}...")
    if expect.check is not None:
        problems += expect.check(run, base)
    n_conseq = int(dq["affects"].isin(["arm", "eligibility", "outcome"]).sum())
    return Verdict(case, outcome if not problems else "missed", problems, len(dq), changed_cells, changed_patients,
                   n_conseq)


def copy_export(base_raw: Path, target: Path) -> Export:
    shutil.copytree(base_raw.parent, target, ignore=shutil.ignore_patterns("ground_truth"))
    for p in (target / "raw").rglob("*"):
        if p.is_file():
            p.chmod(0o644)
    return Export(target / "raw")


def xlsx_with(path: Path, sheets: list[tuple[str, list[list]]]) -> None:
    """Write an XLSX with the given sheets (rows of cells) using openpyxl."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets:
        ws = wb.create_sheet(name)
        for r in rows:
            ws.append(r)
    wb.save(path)
