"""Reading the centre exports: every centre folder through the contract, stacked per table; exact duplicate rows
within a file removed (logged)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis_utils.study.contract import ContractError, load_contract, read_center
from analysis_utils.study.quality import QualityLog


def load_exports(input_dir: str | Path, log: QualityLog) -> dict[str, pd.DataFrame]:
    """Read every centre folder below ``input_dir`` and stack each table across centres."""
    root = Path(input_dir)
    if not root.is_dir():
        raise ContractError(f"{root}: input folder does not exist")
    centers = sorted(p for p in root.iterdir() if p.is_dir())
    if not centers:
        raise ContractError(f"{root}: no centre folders found (expected one folder per centre with manifest.yaml)")
    per_center = [read_center(c, log) for c in centers]
    ids = [t["patients"]["center_id"].iloc[0] for t in per_center if len(t["patients"])]
    if len(ids) != len(set(ids)):
        raise ContractError(f"{root}: two centre folders declare the same center_id in manifest.yaml")
    return {name: pd.concat([t[name] for t in per_center], ignore_index=True) for name in load_contract().tables}


def drop_exact_duplicate_rows(tables: dict[str, pd.DataFrame], log: QualityLog) -> dict[str, pd.DataFrame]:
    """Remove rows identical in every contract column to an earlier row of the same file (logged)."""
    out = {}
    for name, df in tables.items():
        content = [c for c in df.columns if c not in ("source_row",)]
        dup = df.duplicated(subset=content, keep="first")
        if dup.any():
            log.add_rows(df.loc[dup], rule="exact duplicate row in the file", action="row removed", severity="warning")
        out[name] = df.loc[~dup].reset_index(drop=True)
    return out
