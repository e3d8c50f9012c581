"""Linking a centre's rows to its patients when the export broke the key, and one follow-up row per patient.

- **MRNs that lost their leading zeros.** A spreadsheet that stores ``008102`` as a number writes ``8102``; the
  centre's other files keep ``008102`` and no row would link. Within a centre, an all-digit MRN without leading
  zeros whose zero-padded form is written in another of the centre's files (one such form only) is read as that
  form; one entry per file names the cause and counts the rows. An MRN in scientific notation (``1.23457E+11``) has
  lost digits and cannot be restored: one error entry per file.
- **Several follow-up rows for one patient** (the table holds one row per patient: vital status at the last
  contact). Keeping the first row would lose a death recorded in a later one. The row kept is the one recording the
  death (the earliest death date when rows disagree, each disagreement an error entry), else the row with the latest
  contact; every other row is located with the row kept. A contact after the death date kept is an error entry.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from analysis_utils.study.quality import QualityLog

_DIGITS = re.compile(r"\d+(?:\.0+)?")
_SCIENTIFIC = re.compile(r"\d(?:\.\d+)?[eE]\+?\d+")


def restore_mrn_zeros(tables: dict[str, pd.DataFrame], numeric: dict[str, pd.Series | None],
                      log: QualityLog) -> dict[str, pd.DataFrame]:
    """One centre's harmonised tables with MRNs that lost their leading zeros restored (see module docstring).
    ``numeric``: per table, True where a spreadsheet stored the row's mrn as a number."""
    forms = pd.concat([t["mrn"] for t in tables.values()]).dropna().astype(str).unique()
    padded: dict[str, set[str]] = {}
    for m in forms:
        if m.isdigit() and m.startswith("0") and len(m) > 1:
            padded.setdefault(m.lstrip("0") or "0", set()).add(m)
    out = {}
    for name, df in tables.items():
        text = df["mrn"].fillna("").astype(str)
        sci = text.str.fullmatch(_SCIENTIFIC.pattern)
        if sci.any():
            log.add(rule="mrn written in scientific notation (stored as a number; digits lost)",
                    action=f"{int(sci.sum())} rows cannot be linked to a patient", center_id=df["center_id"].iloc[0],
                    file=df["source_file"].iloc[0], row=int(df.loc[sci, "source_row"].iloc[0]), column="mrn",
                    value=f"{int(sci.sum())} rows", severity="error")
        if not padded:
            out[name] = df
            continue
        candidate = text.str.fullmatch(_DIGITS.pattern) & ~text.str.startswith("0")
        key = text.where(candidate).str.split(".").str[0]
        target = key.map({k: next(iter(v)) for k, v in padded.items() if len(v) == 1})
        ambiguous = key.isin([k for k, v in padded.items() if len(v) > 1])
        fix = target.notna()
        if fix.any():
            df = df.copy()
            df.loc[fix, "mrn"] = target[fix]
            stored = numeric.get(name)
            how = " (stored as numbers in the spreadsheet)" if stored is not None and len(stored) == len(df) \
                and bool(np.asarray(stored)[fix.to_numpy()].all()) else ""
            log.add(rule=f"mrn written without its leading zeros{how}", column="mrn", severity="warning",
                    action=f"{int(fix.sum())} rows linked by the MRN with its zeros, as the centre's other files "
                           "write it", center_id=df["center_id"].iloc[0], file=df["source_file"].iloc[0],
                    row=int(df.loc[fix, "source_row"].iloc[0]), value=f"{int(fix.sum())} rows")
        if ambiguous.any():
            log.add(rule="mrn written without leading zeros matches several zero-padded MRNs of the centre",
                    action=f"{int(ambiguous.sum())} rows not linked (never guessed)", column="mrn", severity="error",
                    center_id=df["center_id"].iloc[0], file=df["source_file"].iloc[0],
                    row=int(df.loc[ambiguous, "source_row"].iloc[0]), value=f"{int(ambiguous.sum())} rows")
        out[name] = df
    return out


def one_follow_up_row(fu: pd.DataFrame, log: QualityLog) -> pd.DataFrame:
    """The follow-up table with one row per (centre, mrn) (see module docstring)."""
    keyed = fu[fu["mrn"].notna()]
    multi = keyed[keyed.duplicated(["center_id", "mrn"], keep=False)]
    if multi.empty:
        return fu
    drop: list[int] = []
    dead_all = multi["vital_status"].eq("dead") | multi["death_date"].notna()
    for _, g in multi.groupby(["center_id", "mrn"], sort=False):
        dead = g[dead_all.loc[g.index]]
        if len(dead):
            dated = dead[dead["death_date"].notna()].sort_values(["death_date", "source_row"], kind="mergesort")
            keep = dated.index[0] if len(dated) else dead.sort_values("last_contact_date", na_position="first",
                                                                                     kind="mergesort").index[-1]
        else:
            keep = g.sort_values(["last_contact_date", "source_row"], na_position="first", kind="mergesort").index[-1]
        k = g.loc[keep]
        status = f"{k['vital_status'] or 'status missing'}" + (f", died {k['death_date']:%Y-%m-%d}"
                                                               if pd.notna(k["death_date"]) else "")
        for i, r in g.drop(index=keep).iterrows():
            where = dict(center_id=r["center_id"], file=r["source_file"], row=r["source_row"])
            log.add(rule="several follow-up rows for one patient", action=f"row not used: row {k['source_row']} "
                    f"kept ({status})", column="vital_status", severity="warning", affects="row",
                    value=f"{r['vital_status'] or ''} {'' if pd.isna(r['last_contact_date']) else format(r['last_contact_date'], '%Y-%m-%d')}".strip(),
                    **where)
            if pd.notna(r["death_date"]) and pd.notna(k["death_date"]) and r["death_date"] != k["death_date"]:
                log.add(rule="another row of this patient records a different death date", column="death_date",
                        action=f"the earliest death date kept (row {k['source_row']})", severity="error",
                        value=f"{r['death_date']:%Y-%m-%d}", **where)
            if pd.notna(k["death_date"]) and pd.notna(r["last_contact_date"]) and r["last_contact_date"] > k["death_date"] \
                    and pd.isna(r["death_date"]):
                log.add(rule="contact recorded after the patient's death date", column="last_contact_date",
                        action=f"death kept (row {k['source_row']})", severity="error",
                        value=f"{r['last_contact_date']:%Y-%m-%d}", **where)
            drop.append(i)
    return fu.drop(index=drop).reset_index(drop=True)
