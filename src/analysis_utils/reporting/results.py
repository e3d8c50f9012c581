"""The run's machine-readable results: one JSON file, one section per notebook.

Every number the manuscript quotes is read from ``results.json``; notebooks write their section with
:func:`write_section`. Keys are sorted and floats kept as computed, so two identical runs give identical files.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

RESULTS_FILE = "results.json"


def _plain(value: Any) -> Any:
    """Convert numpy/pandas scalars and containers to JSON types; NaN and NA become None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, pd.DataFrame):
        return [_plain(r) for r in value.to_dict("records")]
    if isinstance(value, (pd.Timestamp,)):
        return None if pd.isna(value) else value.strftime("%Y-%m-%d")
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else float(value)
    return value


def load_results(output_dir: str | Path) -> dict[str, Any]:
    """All sections written so far (empty dict if none)."""
    path = Path(output_dir) / RESULTS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def write_section(output_dir: str | Path, section: str, values: dict[str, Any]) -> dict[str, Any]:
    """Replace one section of ``results.json`` and return the whole results."""
    results = load_results(output_dir)
    results[section] = _plain(values)
    path = Path(output_dir) / RESULTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return results


def update_section(output_dir: str | Path, section: str, values: dict[str, Any]) -> dict[str, Any]:
    """Add ``values`` to one section of ``results.json`` (keys already there are replaced, others kept): for a
    notebook's later cells (e.g. its multiple-imputation analyses) that add to the section its main cells wrote."""
    return write_section(output_dir, section, {**load_results(output_dir).get(section, {}), **values})
def _shown(value: Any) -> str:
    """One results value as a reader sees it: floats to 4 significant digits, None as an em dash, lists joined."""
    value = _plain(value)
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_shown(v)}" for k, v in value.items())
    return str(value)


def summary_table(values: dict[str, Any], keys: Any = None, exclude: tuple[str, ...] = ()) -> pd.DataFrame:
    """A results section (or part of it: ``keys``, minus ``exclude``) as a two-column table for the notebook's last
    cell: ``result`` (the results.json key) and ``value`` (as read, see :func:`_shown`); results.json keeps the
    full precision."""
    names = [k for k in (values if keys is None else keys) if k not in exclude]
    return pd.DataFrame({"value": [_shown(values[k]) for k in names]}, index=pd.Index(names, name="result"))
