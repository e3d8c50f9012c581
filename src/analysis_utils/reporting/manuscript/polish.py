"""Finishing touches on Quarto's Word file and MECA bundle, so that they read like a submission and are
byte-identical from one render to the next.

- ``polish_docx``: pandoc writes every table cell in the body font size; a journal's Word tables use a smaller one.
  The data tables of the document (tables of two or more columns: Quarto also wraps each float in a one-cell layout
  table, left alone) get 8.5-point text and rows that do not split across pages; pandoc already repeats their
  header row (``w:tblHeader``).
- ``normalise_zip``: Quarto zips the MECA bundle with the time of the render; the entries are rewritten with a
  fixed timestamp (and, with ``replace``, new contents), in the same order.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

from lxml import etree

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
NS = {"w": W}
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
TABLE_FONT_HALF_POINTS = 17  # 8.5 pt


def _w(tag: str) -> str:
    return f"{{{W}}}{tag}"


def _child(parent: etree._Element, tag: str, first: bool = False) -> etree._Element:
    """The ``w:<tag>`` child of ``parent``, created (first or last) when absent."""
    found = parent.find(f"w:{tag}", NS)
    if found is None:
        found = etree.Element(_w(tag))
        if first:
            parent.insert(0, found)
        else:
            parent.append(found)
    return found


def polish_document_xml(xml: bytes, half_points: int = TABLE_FONT_HALF_POINTS) -> bytes:
    """``word/document.xml`` with the data tables' runs at ``half_points`` / 2 points and their rows kept whole."""
    root = etree.fromstring(xml)
    for tbl in root.iter(_w("tbl")):
        if len(tbl.findall("w:tblGrid/w:gridCol", NS)) < 2:
            continue  # Quarto's one-cell layout table around a float
        for tr in tbl.findall("w:tr", NS):
            tr_pr = _child(tr, "trPr", first=True)
            _child(tr_pr, "cantSplit")
        for run in tbl.iter(_w("r")):
            r_pr = _child(run, "rPr", first=True)
            for tag in ("sz", "szCs"):
                _child(r_pr, tag).set(_w("val"), str(half_points))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def normalise_zip(path: str | Path, replace: dict[str, bytes] | None = None) -> None:
    """Rewrite the zip at ``path`` entry by entry, in the same order and with the same compression, with the fixed
    timestamp ``FIXED_TIME``; ``replace`` gives new contents for some entries (by name)."""
    path = Path(path)
    with zipfile.ZipFile(path) as src:
        entries = [(info, src.read(info.filename)) for info in src.infolist()]
    tmp = path.with_suffix(path.suffix + ".tmp")
    with zipfile.ZipFile(tmp, "w") as dst:
        for info, data in entries:
            new = zipfile.ZipInfo(info.filename, FIXED_TIME)
            new.compress_type = info.compress_type
            new.external_attr = info.external_attr
            dst.writestr(new, (replace or {}).get(info.filename, data))
    tmp.replace(path)


def polish_docx(path: str | Path) -> None:
    """``polish_document_xml`` applied to a .docx, rewritten with ``normalise_zip``."""
    path = Path(path)
    with zipfile.ZipFile(path) as z:
        xml = z.read("word/document.xml")
    normalise_zip(path, {"word/document.xml": polish_document_xml(xml)})
