"""Identifiers typed where they do not belong: found in every non-identifier column and masked before any value is
parsed, logged or written.

Identifier columns (``identifier: true`` in the contract) are dropped at pseudonymisation. But people also type
identifiers into ordinary columns: a name and a phone number in an AE term, a national ID in the histology field, a
name as a lesion id. Every cell of every other column is scanned for

- Chinese resident identity card numbers: 18 characters (17 digits and a check digit or X) whose GB 11643-1999
  check character is right and whose digits 7-14 are a valid birth date;
- mainland mobile numbers: 1[3-9] and 9 more digits, optionally after +86 / 86 and with spaces or hyphens;
- the identifiers of the same export's identifier columns: patient names (anywhere in text; CJK names of 2+
  characters, Latin ones of 5+ characters at word boundaries), phone numbers and national IDs as written (any
  column), medical record numbers of 6+ characters with a digit (as a whole token, in text and code columns only,
  so that a lab value never matches an MRN made of digits).

A match is replaced by ``<masked:N>`` (N numbers the distinct masked strings of the export in reading order, so two
different identifiers used as lesion ids stay two lesions) and the cell is logged with its centre, file, row and
column, never its value. The data-quality log runs every value through the same masker
(:attr:`analysis_utils.study.quality.QualityLog.masker`), so no report quotes an identifier.
"""
from __future__ import annotations

import re
from typing import Iterable

import pandas as pd

from analysis_utils.study.contract import load_contract, normalise_label, synonym_map
from analysis_utils.study.quality import QualityLog

NATIONAL_ID = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{16}[0-9Xx](?![0-9A-Za-z])")
MOBILE = re.compile(r"(?<![0-9])(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?![0-9])")
TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-_/.]*[A-Za-z0-9]")
_WEIGHTS = [2 ** (17 - i) % 11 for i in range(17)]


def national_id_valid(text: str) -> bool:
    """True for an 18-character PRC resident ID with a valid birth date and GB 11643-1999 check character."""
    t = text.upper()
    if not re.fullmatch(r"\d{17}[0-9X]", t):
        return False
    check = "10X98765432"[sum(int(d) * w for d, w in zip(t[:17], _WEIGHTS)) % 11]
    return check == t[17] and not pd.isna(pd.to_datetime(t[6:14], format="%Y%m%d", errors="coerce"))


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


class IdentifierMasker:
    """Finds and masks identifiers in text (see module docstring). ``names``: patient names of the export;
    ``long_tokens``: phone numbers and national IDs as written (any column); ``codes``: MRNs (text columns only)."""

    def __init__(self, names: Iterable[str] = (), long_tokens: Iterable[str] = (), codes: Iterable[str] = ()) -> None:
        self.names: dict[str, dict[int, set[str]]] = {}
        for n in {re.sub(r"\s+", " ", str(n)).strip().casefold() for n in names}:
            cjk = any(_is_cjk(c) for c in n)
            if (cjk and len(n) >= 2) or (not cjk and len(n) >= 5):
                self.names.setdefault(n[0], {}).setdefault(len(n), set()).add(n)
        self.long_tokens = {t.strip() for t in long_tokens if len(str(t).strip()) >= 11}
        self.codes = {c.strip() for c in codes if len(str(c).strip()) >= 6 and re.search(r"\d", str(c))}
        self.numbers: dict[str, int] = {}
        self._cache: dict[tuple[str, bool], tuple[str, tuple[str, ...]]] = {}

    def _tag(self, found: str) -> str:
        if found not in self.numbers:
            self.numbers[found] = len(self.numbers) + 1
        return f"<masked:{self.numbers[found]}>"

    def _name_spans(self, text: str) -> list[tuple[int, int]]:
        low = text.casefold()
        spans = []
        i = 0
        while i < len(low):
            hit = 0
            for length, names in sorted(self.names.get(low[i], {}).items(), reverse=True):
                piece = low[i:i + length]
                if piece in names and (_is_cjk(piece[0]) or (
                        (i == 0 or not low[i - 1].isalnum()) and (i + length == len(low) or not low[i + length].isalnum()))):
                    hit = length
                    break
            if hit:
                spans.append((i, i + hit))
                i += hit
            else:
                i += 1
        return spans

    def scan(self, text: str, text_column: bool = True) -> tuple[str, tuple[str, ...]]:
        """(masked text, kinds found): kinds among ``national ID``, ``mobile number``, ``name``, ``phone or ID of
        the export``, ``medical record number``. ``text_column`` False (numbers, dates): names and MRNs not sought."""
        key = (text, text_column)
        if key in self._cache:
            return self._cache[key]
        spans: list[tuple[int, int, str]] = []
        digits = sum(c.isdigit() for c in text)
        if digits >= 11:
            spans += [(m.start(), m.end(), "national ID") for m in NATIONAL_ID.finditer(text) if national_id_valid(m.group())]
            spans += [(m.start(), m.end(), "mobile number") for m in MOBILE.finditer(text)]
            for tok in self.long_tokens:
                start = text.find(tok)
                while start >= 0:
                    spans.append((start, start + len(tok), "phone or ID of the export"))
                    start = text.find(tok, start + 1)
        if text_column and self.names and (not text.isascii() or re.search(r"[A-Za-z]", text)):
            spans += [(a, b, "name") for a, b in self._name_spans(text)]
        if text_column and self.codes and digits:
            spans += [(m.start(), m.end(), "medical record number") for m in TOKEN.finditer(text)
                      if m.group() in self.codes]
        if not spans:
            self._cache[key] = (text, ())
            return self._cache[key]
        spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
        out, kinds, pos = [], [], 0
        for a, b, kind in spans:
            if a < pos:
                continue
            out += [text[pos:a], self._tag(text[a:b])]
            kinds.append(kind)
            pos = b
        out.append(text[pos:])
        self._cache[key] = ("".join(out), tuple(dict.fromkeys(kinds)))
        return self._cache[key]

    def mask(self, text: str) -> str:
        """The text with every identifier masked (used by the data-quality log for every value it stores)."""
        return self.scan(text)[0] if text else text


def build_masker(patients: Iterable[pd.DataFrame], all_mrns: Iterable[str] = ()) -> IdentifierMasker:
    """The masker of an export, from the raw text of its patients tables (names, phones, national IDs, MRNs) and
    the MRNs written in its other tables."""
    names, longs, codes = set(), set(), set(all_mrns)
    for df in patients:
        for col, bucket in (("patient_name", names), ("phone", longs), ("national_id", longs), ("mrn", codes)):
            if col in df.columns:
                bucket |= {v for v in df[col].dropna().astype(str) if v.strip()}
    return IdentifierMasker(names, longs, codes)


def mask_frame(frame: pd.DataFrame, table: str, masker: IdentifierMasker, log: QualityLog, center: str,
               source_file: str) -> pd.DataFrame:
    """Mask identifiers in every non-identifier column of a raw text table (in place on a copy); each masked cell is
    logged (centre, file, row, column; never the value). A cell that is exactly an allowed label or synonym of its
    column is never touched."""
    spec_cols = load_contract().columns(table)
    out = frame.copy()
    for col in frame.columns:
        if col == "source_row" or col.startswith("_") or spec_cols.get(col, {}).get("identifier"):
            continue
        spec = spec_cols.get(col, {"type": "string"})
        text_column = spec["type"] in ("string", "category")
        labels = set(synonym_map(spec)) if spec["type"] == "category" else set()
        s = frame[col]
        changed = {}
        uniques = pd.Series(s.dropna().unique(), dtype=object).astype(str)
        candidate = uniques.str.count(r"\d") >= 11
        if text_column:
            candidate |= uniques.str.contains(r"[^\x00-\x40\x5b-\x60\x7b-\x7f]", regex=True)  # letters, CJK...
        for u in uniques[candidate]:
            if normalise_label(u) in labels:
                continue
            masked, kinds = masker.scan(u, text_column)
            if kinds:
                changed[u] = (masked, kinds)
        if not changed:
            continue
        hit = s.isin(list(changed))
        out.loc[hit, col] = s[hit].map(lambda v: changed[v][0])
        for row, v in zip(frame.loc[hit, "source_row"], s[hit]):
            log.add(rule=f"identifier ({', '.join(changed[v][1])}) typed into a non-identifier column",
                    action="masked before any use (value not shown)", center_id=center, file=source_file, row=row,
                    column=col, severity="warning")
    return out
