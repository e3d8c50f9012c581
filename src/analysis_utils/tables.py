"""Tables for the paper: writing (CSV for machines, Markdown pipe tables for the Quarto manuscript) and the one
set of reporting formats every notebook and the manuscript use (p-values, estimates with CIs, n (%), medians
that are not reached)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

NOT_REACHED = "NR"


def _isnan(x: Any) -> bool:
    return x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x))


def fmt_p(p: Any) -> str:
    """P-value as journals print it: '<0.001', else three decimals ('0.046'); '—' when missing."""
    if _isnan(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_num(x: Any, digits: int = 1, missing: str = NOT_REACHED) -> str:
    """A number with fixed decimals; ``missing`` (default 'NR', not reached) when NaN."""
    return missing if _isnan(x) else f"{x:.{digits}f}"


def fmt_est_ci(est: Any, lower: Any, upper: Any, digits: int = 2, missing: str = NOT_REACHED) -> str:
    """'0.62 (0.50–0.77)'; a missing limit prints as ``missing`` (e.g. a median CI whose upper limit is not reached)."""
    return f"{fmt_num(est, digits, missing)} ({fmt_num(lower, digits, missing)}–{fmt_num(upper, digits, missing)})"


def fmt_n_pct(n: int, total: int, digits: int = 1) -> str:
    """'123 (45.6%)'."""
    pct = 100.0 * n / total if total else float("nan")
    return f"{int(n)} ({fmt_num(pct, digits, '—')}%)"


def to_markdown(df: pd.DataFrame) -> str:
    """A pipe table (no index) that Quarto renders in HTML, DOCX and PDF alike."""
    cols = [str(c) for c in df.columns]
    def cell(v: Any) -> str:
        return "" if _isnan(v) else str(v).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_table(df: pd.DataFrame, out_dir: str | Path, name: str, markdown: pd.DataFrame | None = None) -> dict[str, str]:
    """Write ``tables/<name>.csv`` (the numbers) and ``tables/<name>.md`` (``markdown`` if given, e.g. a formatted
    version, else the same frame) under ``out_dir``; returns the relative paths."""
    folder = Path(out_dir) / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / f"{name}.csv", index=False)
    (folder / f"{name}.md").write_text(to_markdown(markdown if markdown is not None else df), encoding="utf-8")
    return {"csv": f"tables/{name}.csv", "md": f"tables/{name}.md"}
