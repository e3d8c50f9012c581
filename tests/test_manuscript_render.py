"""The manuscript rendered by a real Quarto from a small pipeline run, read back as an editorial office would: the
four files exist; the text of the HTML, the Word file (python-docx) and the PDF (pypdf) holds the headline numbers
of _variables.yml; no reference is left unresolved and no shortcode unrendered; every figure is embedded; no
library warning stands in a table; and no text of the PDF runs past the page's bottom margin (a table that does
not break across pages prints its rows over the foot of the page). Skipped, with the reason, without Quarto."""
from __future__ import annotations

import hashlib
import html
import re
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from analysis_utils.reporting import manuscript as ms
from analysis_utils.reporting.manuscript import checks, quarto
from test_manuscript import ROOT, project_copy

QUARTO = shutil.which("quarto")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(QUARTO is None, reason="Quarto is not on the PATH, so the render is not tested "
                                                        "(install Quarto 1.7, quarto.org; .ci/run installs it when it can)")]
HEADLINES = ("cohort.n_screened", "cohort.n_analysed", "cohort.n_haic", "matching.n_pairs", "survival.os.hr",
             "survival.os.median_haic", "survival.pfs_recist.hr", "response.mrecist.orr_haic", "safety.full.g3.haic")
UNRESOLVED = (re.compile(r"\?@[\w-]+"), re.compile(r"\?\?"), re.compile(r"\{\{<"), re.compile(r">\}\}"))
LIBRARY_WARNINGS = ("warning: expected count", "RuntimeWarning", "FutureWarning", "UserWarning")


@pytest.fixture(scope="module")
def rendered(small_run, tmp_path_factory):
    """prepare + check + render of a copy of the project against the small run; the rendered folder and the
    project root."""
    tmp = tmp_path_factory.mktemp("render")
    root = project_copy(tmp / "project")
    ms.prepare(small_run, root)
    assert ms.check_references(root) == []
    outcome = ms.render(root, tmp / "run")
    assert outcome.rendered, outcome.message
    return outcome.output_dir, root


def _squash(text: str) -> str:
    """Whitespace collapsed (line breaks of the PDF), soft hyphens and non-breaking spaces normalised; a line break
    right after a dash (the PDF may break a range such as '0.58–1.39' after its en dash) joined."""
    text = re.sub(r"([\u2013-])[ \t]*\n\s*", r"\1", text)
    return re.sub(r"\s+", " ", text.replace("\u00ad", "").replace("\u00a0", " ").replace("\u2212", "-"))


def _html_text(out: Path) -> str:
    page = (out / "index.html").read_text(encoding="utf-8")
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return _squash(html.unescape(re.sub(r"<[^>]+>", " ", page)))


def _docx_text(out: Path) -> str:
    """Every paragraph of the Word file (python-docx), those of tables nested in Quarto's float tables included."""
    import docx
    from docx.oxml.ns import qn

    doc = docx.Document(str(out / "index.docx"))
    return _squash("\n".join("".join(t.text or "" for t in p.iter(qn("w:t"))) for p in doc.element.body.iter(qn("w:p"))))


def _pdf_text(out: Path) -> str:
    from pypdf import PdfReader

    return _squash("\n".join(page.extract_text() or "" for page in PdfReader(str(out / "index.pdf")).pages))


def _variables(root: Path) -> dict:
    return yaml.safe_load((root / ms.VARIABLES_FILE).read_text(encoding="utf-8"))


def test_the_four_files_are_written(rendered):
    out, _ = rendered
    for name in quarto.DELIVERABLES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    with zipfile.ZipFile(out / "index-meca.zip") as meca:
        names = meca.namelist()
    assert "manifest.xml" in names and any(n.endswith(".xml") and "index" in n for n in names), names


@pytest.mark.parametrize("fmt", ["html", "docx", "pdf"])
def test_headline_numbers_and_nothing_unresolved(rendered, fmt):
    out, root = rendered
    text = {"html": _html_text, "docx": _docx_text, "pdf": _pdf_text}[fmt](out)
    variables = _variables(root)
    for key in HEADLINES:
        value = _squash(str(checks._lookup(variables, key))).replace("\u2212", "-")
        assert value in text, f"{fmt}: {key} = {value!r} not found"
    for rx in UNRESOLVED:
        assert not rx.search(text), f"{fmt}: unresolved {rx.pattern}: {rx.search(text).group(0)!r}"
    for warning in LIBRARY_WARNINGS:
        assert warning not in text, f"{fmt}: library warning {warning!r} printed"
    assert "Figure 1" in text and "eTable 1" in text and re.search(r"Section \d+\.\d+", text)
    assert "Characteristic" in text and "Missing, n" in text  # the tables are read too (nested in Word)


def _figures_in_sources(root: Path) -> list[str]:
    """Image paths of the article and its included hand-written files, in order."""
    scan = checks._Scan()
    article = root / ms.QUARTO_PROJECT / "index.qmd"
    checks._scan_file(article, root, article.parent, scan, checks.BUILTIN_XREF + ("etbl", "efig"), {})
    images = []
    for f in scan.files:
        if (root / ms.GENERATED_DIR) not in f.parents:
            images += checks.IMAGE_RE.findall(checks._strip_code(ms.SHORTCODE_RE.sub(" ", f.read_text("utf-8"))))
    return images


def test_every_figure_is_embedded(rendered):
    from pypdf import PdfReader
    import docx

    out, root = rendered
    figures = _figures_in_sources(root)
    assert len(figures) >= 10
    page = (out / "index.html").read_text(encoding="utf-8")
    for fig in figures:
        assert f'src="{fig}"' in page, fig
        assert (out / fig).is_file(), f"{fig} is not in the rendered folder"
    doc = docx.Document(str(out / "index.docx"))
    assert len(doc.inline_shapes) == len(figures)
    # Typst shares one resource dictionary among the pages: count the distinct images
    images = {hashlib.sha256(img.data).hexdigest() for p in PdfReader(str(out / "index.pdf")).pages for img in p.images}
    assert len(images) == len(set(figures))


def _text_positions(page) -> list[tuple[float, float, str]]:
    """(x, y, text) of every text run of a PDF page (pypdf's text matrix: y from the bottom edge, in points)."""
    runs: list[tuple[float, float, str]] = []

    def visit(text, cm, tm, font_dict, font_size):
        if text.strip():
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            runs.append((x, y, text.strip()))

    page.extract_text(visitor_text=visit)
    return runs


def test_pdf_tables_stay_within_the_page(rendered):
    from pypdf import PdfReader

    out, root = rendered
    cfg = yaml.safe_load((root / ms.QUARTO_CONFIG).read_text(encoding="utf-8"))
    margin_cm = float(str(cfg["format"]["typst"]["margin"]["y"]).removesuffix("cm"))
    bottom = margin_cm / 2.54 * 72 - 4  # the lowest a line of the text block may sit, in points (4 pt tolerance)
    reader = PdfReader(str(out / "index.pdf"))
    assert len(reader.pages) >= 10
    overflow = []
    for number, page in enumerate(reader.pages, 1):
        width = float(page.mediabox.width)
        for x, y, text in _text_positions(page):
            if text == str(number):
                continue  # the page number sits in the footer, below the text block
            if y < bottom or x > width - 10:
                overflow.append(f"page {number}: {text[:40]!r} at ({x:.0f}, {y:.0f})")
    assert not overflow, "text outside the page's text block:\n" + "\n".join(overflow[:20])
