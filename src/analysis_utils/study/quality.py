"""Data-quality log: every problem found in the centre exports, located and with the action taken.

Each entry names the centre, file, 1-based data row (the spreadsheet row under the header), column, the rule that
was broken and what the pipeline did about it (``set to missing``, ``excluded``, ``converted``...). Values of
identifier columns are never stored: the log is an output, and outputs carry no patient identifiers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

COLUMNS = ["center_id", "file", "row", "study_id", "column", "value", "rule", "action", "severity"]
REDACTED = "<identifier>"


@dataclass
class QualityLog:
    """Append-only list of located data-quality entries (see module docstring)."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def add(self, *, rule: str, action: str, center_id: str = "", file: str = "", row: Any = None,
            column: str = "", value: Any = None, study_id: str = "", severity: str = "warning") -> None:
        """Record one problem. ``severity`` is ``info``, ``warning`` (corrected) or ``error`` (data lost/excluded)."""
        self.entries.append({
            "center_id": center_id, "file": file, "row": None if row is None else int(row), "study_id": study_id,
            "column": column, "value": "" if value is None or value is pd.NA else str(value),
            "rule": rule, "action": action, "severity": severity,
        })

    def add_rows(self, rows: pd.DataFrame, *, rule: str, action: str, column: str = "",
                 value_col: str | None = None, severity: str = "warning", redact: bool = False) -> None:
        """Record one entry per row of ``rows``, located by its ``center_id``, ``source_file`` and ``source_row``."""
        for rec in rows.to_dict("records"):
            value = REDACTED if redact else (rec.get(value_col) if value_col else None)
            self.add(rule=rule, action=action, center_id=rec.get("center_id", ""), file=rec.get("source_file", ""),
                     row=rec.get("source_row"), column=column, value=value, study_id=rec.get("study_id", "") or "",
                     severity=severity)

    def to_frame(self) -> pd.DataFrame:
        """The log as a table, in a stable order (centre, file, row, column, rule)."""
        df = pd.DataFrame(self.entries, columns=COLUMNS)
        if df.empty:
            return df
        df["row"] = df["row"].astype("Int64")
        return df.sort_values(["center_id", "file", "row", "column", "rule"], na_position="first",
                              kind="mergesort").reset_index(drop=True)

    def summary(self) -> pd.DataFrame:
        """Counts of entries by rule and action."""
        df = self.to_frame()
        if df.empty:
            return pd.DataFrame(columns=["rule", "action", "severity", "n"])
        return (df.groupby(["rule", "action", "severity"], dropna=False).size().rename("n").reset_index()
                  .sort_values("n", ascending=False, kind="mergesort").reset_index(drop=True))
