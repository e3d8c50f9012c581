"""Finishing touches on Quarto's Word file and MECA bundle, so that they read like a submission and are
byte-identical from one render to the next.

- ``polish_docx``: pandoc writes every table cell in the body font size; a journal's Word tables use a smaller one.
  The data tables of the document (tables of two or more columns: Quarto also wraps each float in a one-cell layout
  table) get 8.5-point text and rows that do not split across pages; pandoc already repeats their header row
  (``w:tblHeader``). Pages are A4 like the PDF's (pandoc's default is US Letter, Quarto's landscape sections A4),
  every table spans the text width of its section (landscape pages included), a paragraph keeps one alignment
  (Quarto adds a second, centred one to the cells of a table float, which is invalid and centres every cell) and
  the alignment values 'start' / 'end' become 'left' / 'right', which every word processor reads. The note under a
  table (tests, abbreviations) gets the table's small type, left-aligned; a caption above a table is kept with it.
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
A4_TWIPS = (11906, 16838)    # width, height of an A4 page in portrait, in twentieths of a point
DEFAULT_MARGIN_TWIPS = 1440  # pandoc's reference document: one inch


def _w(tag: str) -> str:
    return f"{{{W}}}{tag}"


# Child order of the property elements touched here (ECMA-376 part 1, CT_PPrBase, CT_RPr, CT_TrPrBase, CT_SectPr):
# Word rejects a file whose properties come in another order, so every edit keeps (and restores) this order.
SCHEMA_ORDER = {
    "pPr": ("pStyle", "keepNext", "keepLines", "pageBreakBefore", "framePr", "widowControl", "numPr",
            "suppressLineNumbers", "pBdr", "shd", "tabs", "suppressAutoHyphens", "kinsoku", "wordWrap",
            "overflowPunct", "topLinePunct", "autoSpaceDE", "autoSpaceDN", "bidi", "adjustRightInd", "snapToGrid",
            "spacing", "ind", "contextualSpacing", "mirrorIndents", "suppressOverlap", "jc", "textDirection",
            "textAlignment", "textboxTightWrap", "outlineLvl", "divId", "cnfStyle", "rPr", "sectPr", "pPrChange"),
    "rPr": ("rStyle", "rFonts", "b", "bCs", "i", "iCs", "caps", "smallCaps", "strike", "dstrike", "outline",
            "shadow", "emboss", "imprint", "noProof", "snapToGrid", "vanish", "webHidden", "color", "spacing", "w",
            "kern", "position", "sz", "szCs", "highlight", "u", "effect", "bdr", "shd", "fitText", "vertAlign",
            "rtl", "cs", "em", "lang", "eastAsianLayout", "specVanish", "oMath"),
    "trPr": ("cnfStyle", "divId", "gridBefore", "gridAfter", "wBefore", "wAfter", "cantSplit", "trHeight",
             "tblHeader", "tblCellSpacing", "jc", "hidden"),
    "sectPr": ("headerReference", "footerReference", "footnotePr", "endnotePr", "type", "pgSz", "pgMar",
               "paperSrc", "pgBorders", "lnNumType", "pgNumType", "cols", "formProt", "vAlign", "noEndnote",
               "titlePg", "textDirection", "bidi", "rtlGutter", "docGrid", "printerSettings", "sectPrChange"),
}


def _reorder(element: etree._Element) -> None:
    """Sort the children of a property element into the schema's order (unknown children keep their place at the
    end, in their order)."""
    order = SCHEMA_ORDER[etree.QName(element).localname]
    rank = {_w(t): i for i, t in enumerate(order)}
    children = list(element)
    for c in children:
        element.remove(c)
    for c in sorted(children, key=lambda c: rank.get(c.tag, len(order))):
        element.append(c)


def _child(parent: etree._Element, tag: str, first: bool = False) -> etree._Element:
    """The ``w:<tag>`` child of ``parent``, created when absent: in schema order inside a property element, else
    first (``first``) or last."""
    found = parent.find(f"w:{tag}", NS)
    if found is None:
        found = etree.Element(_w(tag))
        if first:
            parent.insert(0, found)
        else:
            parent.append(found)
        if etree.QName(parent).localname in SCHEMA_ORDER:
            _reorder(parent)
    return found


def _section_width(sect_pr: etree._Element | None) -> int:
    """Text width (twips) of a section: A4 (portrait, or landscape when the section says so) less its margins;
    sets the page size on the section properties."""
    landscape = sect_pr is not None and sect_pr.find("w:pgSz", NS) is not None and \
        sect_pr.find("w:pgSz", NS).get(_w("orient")) == "landscape"
    width, height = (A4_TWIPS[1], A4_TWIPS[0]) if landscape else A4_TWIPS
    if sect_pr is not None:
        pg = _child(sect_pr, "pgSz", first=True)
        pg.set(_w("w"), str(width))
        pg.set(_w("h"), str(height))
        margins = sect_pr.find("w:pgMar", NS)
        if margins is not None:
            return width - int(margins.get(_w("left"), DEFAULT_MARGIN_TWIPS)) - \
                int(margins.get(_w("right"), DEFAULT_MARGIN_TWIPS))
    return width - 2 * DEFAULT_MARGIN_TWIPS


def _fit_width(tbl: etree._Element, width: int) -> None:
    """Scale the grid columns of ``tbl`` (and of the tables nested in it, to its cells' width) to ``width``."""
    cols = tbl.findall("w:tblGrid/w:gridCol", NS)
    total = sum(int(c.get(_w("w"), "0")) for c in cols)
    if not cols or total <= 0:
        return
    for c in cols:
        c.set(_w("w"), str(int(round(int(c.get(_w("w"))) * width / total))))
    if len(cols) == 1:
        for inner in tbl.findall("w:tr/w:tc/w:tbl", NS):
            _fit_width(inner, width - 2 * 108)  # less the cell's default margins


def polish_document_xml(xml: bytes, half_points: int = TABLE_FONT_HALF_POINTS) -> bytes:
    """``word/document.xml`` with A4 pages, the tables at the text width of their section, the data tables' runs at
    ``half_points`` / 2 points and their rows kept whole, and 'start' / 'end' alignments as 'left' / 'right'."""
    root = etree.fromstring(xml)
    for para in root.iter(_w("p")):  # Quarto writes some captions with two w:pPr: merged, the later one wins
        props = para.findall("w:pPr", NS)
        for extra in props[1:]:
            for c in list(extra):
                for old in props[0].findall(c.tag):
                    props[0].remove(old)
                props[0].append(c)
            para.remove(extra)
    body = root.find("w:body", NS)
    pending: list[etree._Element] = []
    for child in list(body) if body is not None else []:
        if child.tag == _w("tbl"):
            pending.append(child)
        sect_pr = child.find("w:pPr/w:sectPr", NS) if child.tag == _w("p") else \
            (child if child.tag == _w("sectPr") else None)
        if sect_pr is not None:  # a section ends here: its tables get its width
            width = _section_width(sect_pr)
            for tbl in pending:
                _fit_width(tbl, width)
            pending = []
    for tbl in pending:
        _fit_width(tbl, _section_width(None))
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
    for para in root.iter(_w("p")):  # a caption above a table stays on the page of the table's first rows
        nxt = para.getnext()
        if nxt is not None and nxt.tag == _w("tbl") and "Caption" in "".join(
                st.get(_w("val"), "") for st in para.findall("w:pPr/w:pStyle", NS)):
            _child(_child(para, "pPr", first=True), "keepNext")
    for cell in root.iter(_w("tc")):  # the note under a table float: small type, left-aligned, like the table
        seen_table = False
        for child in cell:
            seen_table |= child.tag == _w("tbl")
            if seen_table and child.tag == _w("p") and "Caption" not in "".join(
                    st.get(_w("val"), "") for st in child.findall("w:pPr/w:pStyle", NS)):
                p_pr = _child(child, "pPr", first=True)
                for jc in p_pr.findall("w:jc", NS):
                    p_pr.remove(jc)
                _child(p_pr, "jc").set(_w("val"), "left")
                for run in child.iter(_w("r")):
                    r_pr = _child(run, "rPr", first=True)
                    for tag in ("sz", "szCs"):
                        _child(r_pr, tag).set(_w("val"), str(half_points))
    for p_pr in root.iter(_w("pPr")):  # Quarto adds a second w:jc (centre) after pandoc's: the first one counts
        for extra in p_pr.findall("w:jc", NS)[1:]:
            p_pr.remove(extra)
    for jc in root.iter(_w("jc")):
        jc.set(_w("val"), {"start": "left", "end": "right"}.get(jc.get(_w("val")), jc.get(_w("val"))))
    for tag in SCHEMA_ORDER:
        for element in root.iter(_w(tag)):
            _reorder(element)
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
