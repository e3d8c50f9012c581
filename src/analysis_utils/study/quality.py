"""Data-quality log: every problem found in the centre exports, located, with the rule broken and the action taken.

An entry names the centre, the file (``C05/patients.csv``), the 1-based data row (the row under the header line,
blank rows counted), the column, the rule that was broken and what the pipeline did about it (``set to missing``,
``row ignored``, ``converted``...). ``severity`` is ``error`` (a value or row lost or unusable), ``warning`` (read
or corrected in a stated way) or ``info`` (how a file was read). Columns of the log (``tables/data_quality.csv``):

========== ==========================================================================================================
center_id  centre of the file (``manifest.yaml`` ``center_id``)
file       ``<centre folder>/<file name>``; empty only for entries about the whole export
row        1-based data row; empty for an entry about a whole file, column, centre or manifest key
study_id   pseudonymous study ID when the entry is made after pseudonymisation
column     the column (contract name) or manifest key
value      the value as read, after identifier masking (never an identifier: see below)
rule       the rule broken, in words
action     what was done
severity   error / warning / info
affects    what the entry changed beyond the cell: ``''`` (the cell itself), ``row`` (a row ignored, merged or
           removed), ``arm``, ``eligibility`` or ``outcome`` (a consequence for a patient), ``centre`` (a centre-level
           finding, e.g. a centre losing most of its records)
========== ==========================================================================================================

Identifiers never enter the log: values of identifier columns are written as ``<identifier>``, and every value,
column and file name passes through the log's ``masker`` (set by :func:`analysis_utils.study.reading.load_exports`
to the export's :class:`~analysis_utils.study.masking.IdentifierMasker`) before it is stored.

Consequences. When a derivation changes a patient's arm, eligibility or outcome because of a bad value (a HAIC date
that does not parse, a death date after the export...), it records the consequence with :meth:`QualityLog.consequence`,
located at the row that caused it (or at the patient's record)::

    bad = haic["haic_date"].isna()                     # rows of the pseudonymised haic_cycles table
    log.consequence(haic[bad], affects="arm", column="haic_date",
                    rule="HAIC recorded but its date is unusable", action="patient kept in the HAIC arm; ...")

:meth:`QualityLog.consequences` counts them per centre, kind and rule (entries and distinct patients), and the
summary tables list them. See docs/data-quality.md for the stop conditions and the whole list of checks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

COLUMNS = ["center_id", "file", "row", "study_id", "column", "value", "rule", "action", "severity", "affects"]
REDACTED = "<identifier>"
SEVERITIES = ("error", "warning", "info")
CONSEQUENCES = ("arm", "eligibility", "outcome")
AFFECTS = ("", "row", "centre") + CONSEQUENCES
MAX_VALUE_CHARS = 120


@dataclass
class QualityLog:
    """Append-only list of located data-quality entries (see module docstring)."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    masker: Callable[[str], str] | None = None

    def set_masker(self, masker: Callable[[str], str]) -> None:
        """Mask every later entry with ``masker``, and the entries already recorded."""
        self.masker = masker
        for e in self.entries:
            for key in ("file", "column", "value"):
                e[key] = self._mask(e[key])

    def _mask(self, text: str) -> str:
        return self.masker(text) if (self.masker is not None and text) else text

    def add(self, *, rule: str, action: str, center_id: str = "", file: str = "", row: Any = None,
            column: str = "", value: Any = None, study_id: str = "", severity: str = "warning",
            affects: str = "") -> None:
        """Record one problem (``severity`` in :data:`SEVERITIES`, ``affects`` in :data:`AFFECTS`)."""
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
        if affects not in AFFECTS:
            raise ValueError(f"affects must be one of {AFFECTS}, not {affects!r}")
        text = "" if value is None or value is pd.NA or (isinstance(value, float) and value != value) else str(value)
        if len(text) > MAX_VALUE_CHARS:
            text = text[:MAX_VALUE_CHARS] + "…"
        self.entries.append({
            "center_id": str(center_id or ""), "file": self._mask(str(file or "")),
            "row": None if row is None or row is pd.NA or row != row else int(row), "study_id": study_id or "",
            "column": self._mask(str(column or "")), "value": self._mask(text), "rule": rule, "action": action,
            "severity": severity, "affects": affects,
        })

    def add_rows(self, rows: pd.DataFrame, *, rule: str, action: str, column: str = "",
                 value_col: str | None = None, severity: str = "warning", redact: bool = False,
                 affects: str = "") -> None:
        """Record one entry per row of ``rows``, located by its ``center_id``, ``source_file`` and ``source_row``
        (and ``study_id`` when present); ``value_col`` names the column of ``rows`` holding the value to quote."""
        for rec in rows.to_dict("records"):
            value = REDACTED if redact else (rec.get(value_col) if value_col else None)
            self.add(rule=rule, action=action, center_id=rec.get("center_id", ""), file=rec.get("source_file", ""),
                     row=rec.get("source_row"), column=column, value=value, study_id=rec.get("study_id", "") or "",
                     severity=severity, affects=affects)

    def consequence(self, rows: pd.DataFrame, *, affects: str, rule: str, action: str, column: str = "",
                    value_col: str | None = None, severity: str = "warning") -> int:
        """Record that a bad value changed a patient's arm, eligibility or outcome (``affects`` in
        :data:`CONSEQUENCES`), one entry per row of ``rows`` (located as in :meth:`add_rows`: the row holding the
        bad value, or the patient's record). Returns the number of entries written."""
        if affects not in CONSEQUENCES:
            raise ValueError(f"a consequence affects one of {CONSEQUENCES}, not {affects!r}")
        self.add_rows(rows, rule=rule, action=action, column=column, value_col=value_col, severity=severity,
                      affects=affects)
        return len(rows)

    # ------------------------------------------------------------------------------------------- reading the log
    def to_frame(self) -> pd.DataFrame:
        """The log as a table, in a stable order (centre, file, row, column, rule)."""
        df = pd.DataFrame(self.entries, columns=COLUMNS)
        if df.empty:
            return df
        df["row"] = df["row"].astype("Int64")
        return df.sort_values(["center_id", "file", "row", "column", "rule"], na_position="first",
                              kind="mergesort").reset_index(drop=True)

    def consequences(self) -> pd.DataFrame:
        """Counts of consequence entries per centre, kind (``affects``) and rule: entries and distinct patients."""
        df = self.to_frame()
        df = df[df["affects"].isin(CONSEQUENCES)] if not df.empty else df
        cols = ["center_id", "affects", "rule", "action", "n_entries", "n_patients"]
        if df.empty:
            return pd.DataFrame(columns=cols)
        g = df.groupby(["center_id", "affects", "rule", "action"], sort=True)
        out = g.size().rename("n_entries").to_frame()
        out["n_patients"] = g["study_id"].agg(lambda s: s[s != ""].nunique())
        return out.reset_index()[cols]

    def summary(self) -> pd.DataFrame:
        """Counts of entries by level, rule, action and severity, causes first.

        ``level`` says what an entry is about: ``centre`` (a centre-level finding or an entry about the whole
        export), ``file`` (a whole file, column or manifest key: usually the cause of the cell entries below it)
        or ``cell`` (one row, or one patient). Sorted by level, then severity (error first), then count. ``centres`` lists the
        centres concerned."""
        df = self.to_frame()
        cols = ["level", "rule", "action", "severity", "affects", "n", "n_centres", "centres"]
        if df.empty:
            return pd.DataFrame(columns=cols)
        df["level"] = entry_level(df)
        g = df.groupby(["level", "rule", "action", "severity", "affects"], dropna=False, sort=False)
        out = g.size().rename("n").to_frame()
        out["n_centres"] = g["center_id"].agg(lambda s: s[s != ""].nunique())
        out["centres"] = g["center_id"].agg(lambda s: ", ".join(sorted(set(s) - {""})))
        out = out.reset_index()
        out["_l"] = out["level"].map({"centre": 0, "file": 1, "cell": 2})
        out["_s"] = out["severity"].map({s: i for i, s in enumerate(SEVERITIES)})
        out = out.sort_values(["_l", "_s", "n", "rule"], ascending=[True, True, False, True], kind="mergesort")
        return out[cols].reset_index(drop=True)

    def centre_summary(self, screened: pd.DataFrame | None = None) -> pd.DataFrame:
        """One row per centre: entries by severity, consequences, and the centre- and file-level findings (the
        causes, in words); with ``screened`` (one row per record, ``center_id`` and ``eligible``) also the records
        screened and eligible."""
        df = self.to_frame()
        centres = sorted(set(df["center_id"]) - {""}) if not df.empty else []
        if screened is not None:
            centres = sorted(set(centres) | set(screened["center_id"].astype(str)))
        rows = []
        for c in centres:
            mine = df[df["center_id"] == c] if not df.empty else df
            level = entry_level(mine) if len(mine) else pd.Series(dtype=object)
            causes = mine[(level != "cell") & mine["severity"].isin(["error", "warning"])]
            row: dict[str, Any] = {"center_id": c}
            if screened is not None:
                s = screened[screened["center_id"].astype(str) == c]
                row.update(n_records=len(s), n_eligible=int(s["eligible"].sum()),
                           pct_eligible=round(100.0 * s["eligible"].mean(), 1) if len(s) else None)
            for sev in SEVERITIES:
                row[f"n_{sev}"] = int((mine["severity"] == sev).sum()) if len(mine) else 0
            for kind in CONSEQUENCES:
                row[f"n_{kind}_consequences"] = int((mine["affects"] == kind).sum()) if len(mine) else 0
            row["findings"] = " | ".join(dict.fromkeys(
                f"{r.file}{' ' + r.column if r.column else ''}: {r.rule}" for r in causes.itertuples()))
            rows.append(row)
        return pd.DataFrame(rows)


def entry_level(df: pd.DataFrame) -> pd.Series:
    """``centre``, ``file`` or ``cell`` for each entry of a log frame (see :meth:`QualityLog.summary`)."""
    level = pd.Series("cell", index=df.index, dtype=object)
    level[df["row"].isna() & (df["study_id"] == "")] = "file"
    level[(df["affects"] == "centre") | (df["file"] == "")] = "centre"
    return level
