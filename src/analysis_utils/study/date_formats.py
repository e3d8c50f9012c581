"""The date format a centre declares, checked against the dates it wrote, before any date is parsed.

A wrong ``date_format`` in ``manifest.yaml`` would otherwise make every date unparseable (thousands of cell
entries and no word about the cause) or, worse, read day-first dates month-first without a word (03/04/2023 is
3 April or 4 March). Per centre and file:

- a format written as ``YYYY-MM-DD``, ``DD/MM/YYYY``... is translated to ``strptime`` (info entry); a format that
  names no year, month or day, or does not round-trip, stops the run naming the manifest key;
- when fewer than half of a file's date cells parse with the format (ISO 8601 counted as parsed), the run stops
  naming the manifest key and the formats the dates do fit;
- the unambiguous dates (day > 12) decide the day/month order: when at least 3 of them, and 10 % of the decisive
  ones, parse only with day and month swapped, the run stops: the dates with a day <= 12 cannot be read safely.

When every file of a centre fails the same way, the problem is named once, at ``<centre>/manifest.yaml``.
Per-table formats (manifest key ``date_formats``) override ``date_format``.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from analysis_utils.study.contract import is_missing, load_contract
from analysis_utils.study.quality import QualityLog

COMMON_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y",
                  "%d-%m-%Y", "%m-%d-%Y", "%d/%m/%y", "%m/%d/%y", "%d-%b-%Y", "%d %b %Y", "%b %d, %Y")
_HUMAN = (("YYYY", "%Y"), ("yyyy", "%Y"), ("MMM", "%b"), ("MM", "%m"), ("mm", "%m"), ("DD", "%d"), ("dd", "%d"),
          ("YY", "%y"), ("yy", "%y"))
MIN_CELLS, MIN_FIT = 5, 0.5
MIN_SWAPPED, SWAPPED_SHARE = 3, 0.1


def strptime_format(declared: str) -> tuple[str | None, bool]:
    """(``strptime`` format, translated?) for a declared date format; (None, False) when it is not usable."""
    fmt, translated = str(declared), False
    if "%" not in fmt:
        for token, directive in _HUMAN:
            fmt = fmt.replace(token, directive)
        translated = fmt != declared
    has = lambda *ds: any(d in fmt for d in ds)  # noqa: E731
    if not (has("%Y", "%y") and has("%m", "%b", "%B") and has("%d")):
        return None, False
    probe = dt.date(2023, 4, 25)
    try:
        back = dt.datetime.strptime(probe.strftime(fmt), fmt).date()
    except ValueError:
        return None, False
    return (fmt, translated) if back == probe else (None, False)


def swapped(fmt: str) -> str | None:
    """The format with day and month exchanged (None when it has no numeric day and month)."""
    if "%d" in fmt and "%m" in fmt:
        return fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")
    return None


def _parses(texts: pd.Series, fmt: str) -> pd.Series:
    return pd.to_datetime(texts, format=fmt, errors="coerce").notna()


def _date_cells(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Non-missing date cells of a raw table: text, column, row, whether the column is an identifier."""
    spec = load_contract().columns(table)
    parts = []
    for col, s in spec.items():
        if s["type"] == "date" and col in frame.columns:
            keep = ~is_missing(frame[col]).to_numpy()
            parts.append(pd.DataFrame({"text": frame[col].to_numpy()[keep], "column": col,
                                       "row": frame["source_row"].to_numpy()[keep],
                                       "identifier": bool(s.get("identifier"))}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["text", "column", "row", "identifier"])


def _example(cells: pd.DataFrame, mask: pd.Series, source_file: str) -> str:
    pick = cells[mask.to_numpy() & ~cells["identifier"].to_numpy(dtype=bool)]
    if pick.empty:
        return f"{source_file} (birth dates only; values not shown)"
    r = pick.iloc[0]
    return f"{source_file} row {r['row']} column {r['column']}: '{r['text']}'"


def check_date_formats(folder: str, manifest: dict[str, Any], frames: dict[str, tuple[str, pd.DataFrame]],
                       log: QualityLog, problems: list[str]) -> dict[str, str]:
    """The ``strptime`` format of each table's dates (see module docstring). ``frames``: table -> (source file, raw
    text frame). Problems are appended to ``problems``; returns the formats to parse with."""
    center = manifest["center_id"]
    declared_per_table = {t: manifest.get("date_formats", {}).get(t, manifest["date_format"]) for t in frames} \
        if isinstance(manifest.get("date_formats"), dict) else {t: manifest["date_format"] for t in frames}
    formats: dict[str, str] = {}
    for table, declared in declared_per_table.items():
        key = f"date_formats: {table}" if declared != manifest["date_format"] else "date_format"
        fmt, translated = strptime_format(declared)
        if fmt is None:
            problems.append(f"{folder}/manifest.yaml: key {key} '{declared}' is not a date format (use strptime "
                            "directives, e.g. '%d/%m/%Y', or the form DD/MM/YYYY)")
            continue
        if translated:
            log.add(rule=f"date format '{declared}' is not written as a strptime format", action=f"read as '{fmt}'",
                    center_id=center, file=f"{folder}/manifest.yaml", column=key.split(":")[0], severity="info")
        formats[table] = fmt
    misfit: dict[str, str] = {}
    swap: dict[str, str] = {}
    with_dates = []
    n_cells = n_fit = 0
    example = ""
    for table, (source_file, frame) in frames.items():
        fmt = formats.get(table)
        cells = _date_cells(frame, table)
        if fmt is None or cells.empty:
            continue
        codes, uniques = pd.factorize(cells["text"])
        uniq = pd.Series(uniques, dtype=object)
        iso = _parses(uniq, "ISO8601").to_numpy()
        declared = _parses(uniq, fmt).to_numpy()
        fits = pd.Series((declared | iso)[codes])
        n_cells, n_fit = n_cells + len(cells), n_fit + int(fits.sum())
        if not example and not fits.all():
            example = _example(cells, ~fits, source_file)
        if len(cells) < MIN_CELLS:
            continue
        with_dates.append(table)
        other = swapped(fmt)
        if other is not None:  # the day/month order first: a swapped file also fails the declared format
            alt = _parses(uniq, other).to_numpy()
            contra, pro = pd.Series((~declared & alt & ~iso)[codes]), pd.Series((declared & ~alt)[codes])
            if contra.sum() >= MIN_SWAPPED and contra.sum() >= SWAPPED_SHARE * (contra.sum() + pro.sum()):
                swap[table] = (f"{int(contra.sum())} dates are valid only as '{other}' and {int(pro.sum())} only as "
                               f"'{fmt}' (e.g. {_example(cells, contra, source_file)}); the dates with a day of 12 "
                               "or less cannot be read safely")
                continue
        if fits.mean() < MIN_FIT:
            fitting = [f for f in COMMON_FORMATS if _parses(uniq, f).mean() >= 0.9]
            hint = (f"; the dates fit {' or '.join(repr(f) for f in fitting)}" if fitting else "")
            if len(fitting) > 1 and any(swapped(f) in fitting for f in fitting):
                hint += " (the day/month order cannot be told from these dates)"
            misfit[table] = (f"{int(fits.sum())} of {len(cells)} date cells parse with it (e.g. "
                             f"{_example(cells, ~fits, source_file)}){hint}")
    if not misfit and not swap and n_cells >= MIN_CELLS and n_fit < MIN_FIT * n_cells and "date_format" in \
            {("date_format" if declared_per_table[t] == manifest["date_format"] else t) for t in formats}:
        problems.append(f"{folder}/manifest.yaml: the dates are not written as declared by key date_format "
                        f"'{manifest['date_format']}': {n_fit} of {n_cells} date cells of {center} parse with it "
                        f"(e.g. {example}). Correct date_format")
    for found, what in ((misfit, "the dates are not written as declared by"),
                        (swap, "the day/month order of the dates contradicts")):
        if not found:
            continue
        if len(found) == len(with_dates) and len(found) > 1 and len({declared_per_table[t] for t in found}) == 1:
            first = next(iter(found))
            problems.append(f"{folder}/manifest.yaml: {what} key date_format '{manifest['date_format']}' in all "
                            f"{len(found)} files of {center} with dates (e.g. {frames[first][0]}: {found[first]}). "
                            "Correct date_format")
            continue
        for table, msg in found.items():
            key = f"date_formats: {table}" if declared_per_table[table] != manifest["date_format"] else "date_format"
            problems.append(f"{frames[table][0]}: {what} manifest.yaml key {key} '{declared_per_table[table]}': "
                            f"{msg}. Correct the key (date_formats: {{{table}: ...}} sets one file's format)")
    return formats
