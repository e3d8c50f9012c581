"""Reading the centre exports: every centre folder through the contract, every problem of every centre in one pass.

For each centre folder (sorted): the manifest, the file of each table, each file as text
(:mod:`~analysis_utils.study.export_files`), the declared date format checked against the dates
(:mod:`~analysis_utils.study.date_formats`). Then, once the identifiers of the whole export are known: identifiers
typed into ordinary columns masked (:mod:`~analysis_utils.study.masking`), each table harmonised
(:mod:`~analysis_utils.study.contract`), MRNs that lost their leading zeros restored
(:mod:`~analysis_utils.study.linking`). Every problem that makes a file unusable is collected across all centres
and raised at the end as one :class:`~analysis_utils.study.contract.ContractError` listing them all. Then, over the
stacked tables: exact duplicate rows within a file removed (compared on the raw text, so that values set missing
never make two rows equal), one follow-up row per patient, and the cross-centre unit check
(:mod:`~analysis_utils.study.plausibility`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis_utils.study.contract import ContractError, harmonise_table, load_contract
from analysis_utils.study.date_formats import check_date_formats
from analysis_utils.study.export_files import RawTable, read_manifest, read_table, table_files
from analysis_utils.study.linking import one_follow_up_row, restore_mrn_zeros
from analysis_utils.study.masking import IdentifierMasker, build_masker, mask_frame
from analysis_utils.study.plausibility import check_centre_units
from analysis_utils.study.quality import QualityLog

ROW_HASH = "_row_hash"


@dataclass
class CentreFiles:
    """A centre folder read as text: its manifest and one raw table per contract table found."""

    folder: str
    manifest: dict[str, Any]
    raws: dict[str, RawTable] = field(default_factory=dict)


def read_center_files(center_dir: Path, log: QualityLog, problems: list[str]) -> CentreFiles | None:
    """Read one centre folder as text; unusable files are appended to ``problems`` (None without a manifest)."""
    try:
        manifest = read_manifest(center_dir)
    except ContractError as exc:
        problems.extend(exc.problems)
        return None
    cf = CentreFiles(center_dir.name, manifest)
    for table, path in table_files(center_dir, manifest, log, problems).items():
        try:
            cf.raws[table] = read_table(path, table, manifest, f"{center_dir.name}/{path.name}", log)
        except ContractError as exc:
            problems.extend(exc.problems)
    patients = cf.raws.get("patients")
    others = sum(len(r.frame) for t, r in cf.raws.items() if t != "patients")
    if patients is not None and patients.frame.empty:
        problems.append(f"{patients.source_file}: no data rows (header only); "
                        + (f"the {others:,} rows of {manifest['center_id']}'s other tables cannot be linked to any "
                           "patient" if others else f"centre {manifest['center_id']} has no records"))
    for table, raw in cf.raws.items():
        if table != "patients" and raw.frame.empty:
            log.add(rule="table has no data rows (header only)", action=f"no {table.replace('_', ' ')} recorded for "
                    f"any patient of {manifest['center_id']}", center_id=manifest["center_id"],
                    file=raw.source_file, severity="warning")
    return cf


def harmonise_centre(cf: CentreFiles, masker: IdentifierMasker, log: QualityLog,
                     problems: list[str]) -> dict[str, pd.DataFrame]:
    """Mask, check the date format and harmonise every table of a centre read by :func:`read_center_files`."""
    center = cf.manifest["center_id"]
    masked = {t: mask_frame(r.frame, t, masker, log, center, r.source_file) for t, r in cf.raws.items()}
    n_before = len(problems)
    formats = check_date_formats(cf.folder, cf.manifest, {t: (cf.raws[t].source_file, f) for t, f in masked.items()},
                                 log, problems)
    out: dict[str, pd.DataFrame] = {}
    if len(problems) > n_before:
        return out  # dates would be read wrong: nothing of this centre is harmonised
    for table, frame in masked.items():
        try:
            out[table] = harmonise_table(frame, table, cf.manifest, cf.raws[table].source_file, log,
                                         date_format=formats.get(table))
        except ContractError as exc:
            problems.extend(exc.problems)
    if len(out) == len(load_contract().tables):
        out = restore_mrn_zeros(out, {t: r.numeric_mrn for t, r in cf.raws.items()}, log)
    return out


def _masker_of(files: list[CentreFiles]) -> IdentifierMasker:
    patients = [cf.raws["patients"].frame for cf in files if "patients" in cf.raws]
    mrns = {m for cf in files for r in cf.raws.values() if "mrn" in r.frame.columns for m in r.frame["mrn"].unique()}
    return build_masker(patients, mrns)


def read_center(center_dir: str | Path, log: QualityLog) -> dict[str, pd.DataFrame]:
    """Read and harmonise every contract table of one centre folder; unusable files raise one ContractError."""
    problems: list[str] = []
    cf = read_center_files(Path(center_dir), log, problems)
    tables: dict[str, pd.DataFrame] = {}
    if cf is not None:
        masker = _masker_of([cf])
        log.set_masker(masker.mask)
        tables = harmonise_centre(cf, masker, log, problems)
    if problems:
        raise ContractError.from_problems(problems)
    return tables


def load_exports(input_dir: str | Path, log: QualityLog) -> dict[str, pd.DataFrame]:
    """Read every centre folder below ``input_dir``, stack each table across centres, remove exact duplicate rows,
    keep one follow-up row per patient and check units across centres (see module docstring)."""
    root = Path(input_dir)
    if not root.is_dir():
        raise ContractError(f"{root}: input folder does not exist")
    centers = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not centers:
        raise ContractError(f"{root}: no centre folders found (expected one folder per centre with manifest.yaml)")
    for p in sorted(root.iterdir()):
        if p.is_file() and not p.name.startswith("."):
            log.add(rule="file outside any centre folder", action="ignored", file=p.name, severity="info")
    problems: list[str] = []
    files = [cf for c in centers if (cf := read_center_files(c, log, problems)) is not None]
    masker = _masker_of(files)
    log.set_masker(masker.mask)
    seen: dict[str, str] = {}
    per_center = []
    for cf in files:
        center = cf.manifest["center_id"]
        if center in seen:
            problems.append(f"{cf.folder}/manifest.yaml: center_id '{center}' is also declared by {seen[center]}/"
                            "manifest.yaml; each centre folder needs its own center_id")
        seen[center] = cf.folder
        per_center.append(harmonise_centre(cf, masker, log, problems))
    if problems:
        raise ContractError.from_problems(problems)
    tables = {name: pd.concat([t[name] for t in per_center], ignore_index=True) for name in load_contract().tables}
    tables = drop_exact_duplicate_rows(tables, log)
    tables["follow_up"] = one_follow_up_row(tables["follow_up"], log)
    return check_centre_units(tables, log)


def drop_exact_duplicate_rows(tables: dict[str, pd.DataFrame], log: QualityLog) -> dict[str, pd.DataFrame]:
    """Remove rows whose raw text is identical, cell for cell, to an earlier row of the same file (logged).

    Rows are compared on the hash of their raw cells (``_row_hash``, added by the reader), never on harmonised
    values: two rows that differ only in values set missing are not duplicates. Tables without the hash (already
    de-duplicated, or not read from files) are returned unchanged."""
    out = {}
    for name, df in tables.items():
        if ROW_HASH not in df.columns:
            out[name] = df
            continue
        dup = df.duplicated(subset=["center_id", "source_file", ROW_HASH], keep="first")
        if dup.any():
            log.add_rows(df.loc[dup], rule="exact duplicate row in the file", action="row removed", severity="warning",
                         affects="row")
        out[name] = df.loc[~dup].drop(columns=[ROW_HASH]).reset_index(drop=True)
    return out
