"""A small deterministic XLSX writer for the centres that export spreadsheets.

Single-sheet SpreadsheetML with inline strings, fixed docProps created/modified and zip entries dated 1980-01-01,
so the same table gives byte-identical files. Reading them back (pandas/openpyxl) gives the strings written.
"""
from __future__ import annotations

import datetime as _dt
import zipfile
from pathlib import Path

import pandas as pd

_XLSX_FIXED_TIME = _dt.datetime(2025, 10, 1, 0, 0, 0)  # docProps created/modified of every XLSX
_XLSX_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def xlsx_column(i: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    name = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        name = chr(65 + r) + name
    return name


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def write_xlsx(path: Path, sheet: str, df: pd.DataFrame, numeric: tuple[str, ...]) -> None:
    """Deterministic single-sheet XLSX (SpreadsheetML, inline strings): numbers in `numeric` columns as numeric
    cells, everything else (dates included) as text; fixed document properties and zip entry times
    (1980-01-01), so identical input gives identical bytes. openpyxl is not used for writing: it needed
    10-20 s for the default cohort."""
    cols = [xlsx_column(i) for i in range(len(df.columns))]
    num = [c in numeric for c in df.columns]
    rows = [f'<row r="1">' + "".join(f'<c r="{cols[i]}1" t="inlineStr"><is><t>{_xml_escape(str(c))}</t></is></c>'
                                     for i, c in enumerate(df.columns)) + "</row>"]
    for r, values in enumerate(df.itertuples(index=False, name=None), start=2):
        cells = []
        for i, v in enumerate(values):
            if v is None or v == "":
                continue
            if num[i] and is_number(v):
                cells.append(f'<c r="{cols[i]}{r}"><v>{v}</v></c>')
            else:
                cells.append(f'<c r="{cols[i]}{r}" t="inlineStr"><is><t>{_xml_escape(str(v))}</t></is></c>')
        rows.append(f'<row r="{r}">' + "".join(cells) + "</row>")
    sheet_xml = (_XML_HEAD + f'<worksheet xmlns="{_XLSX_NS}"><sheetData>' + "".join(rows)
                 + "</sheetData></worksheet>")
    stamp = _XLSX_FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
    parts = {
        "[Content_Types].xml": _XML_HEAD + (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.worksheet+xml"/>'
            '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.styles+xml"/>'
            '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.'
            'core-properties+xml"/>'
            '<Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'extended-properties+xml"/></Types>'),
        "_rels/.rels": _XML_HEAD + (
            f'<Relationships xmlns="{_REL_NS}">'
            f'<Relationship Id="rId1" Type="{_DOC_REL}/officeDocument" Target="xl/workbook.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/'
            'core-properties" Target="docProps/core.xml"/>'
            f'<Relationship Id="rId3" Type="{_DOC_REL}/extended-properties" Target="docProps/app.xml"/>'
            '</Relationships>'),
        "docProps/core.xml": _XML_HEAD + (
            '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:creator>analysis_utils.synthetic</dc:creator>'
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified></cp:coreProperties>'),
        "docProps/app.xml": _XML_HEAD + (
            '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
            '<Application>analysis_utils.synthetic</Application></Properties>'),
        "xl/workbook.xml": _XML_HEAD + (
            f'<workbook xmlns="{_XLSX_NS}" xmlns:r="{_DOC_REL}"><sheets>'
            f'<sheet name="{_xml_escape(sheet)}" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": _XML_HEAD + (
            f'<Relationships xmlns="{_REL_NS}">'
            f'<Relationship Id="rId1" Type="{_DOC_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{_DOC_REL}/styles" Target="styles.xml"/></Relationships>'),
        "xl/styles.xml": _XML_HEAD + (
            f'<styleSheet xmlns="{_XLSX_NS}"><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font>'
            '</fonts><fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill '
            'patternType="gray125"/></fill></fills><borders count="1"><border><left/><right/><top/><bottom/>'
            '<diagonal/></border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" '
            'borderId="0"/></cellStyleXfs><cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" '
            'xfId="0"/></cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
            '</cellStyles></styleSheet>'),
        "xl/worksheets/sheet1.xml": sheet_xml,
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name, text in parts.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            zf.writestr(info, text.encode("utf-8"))


def is_number(text: str) -> bool:
    """True when `text` parses as a float (written as a numeric cell)."""
    try:
        float(text)
    except ValueError:
        return False
    return True
