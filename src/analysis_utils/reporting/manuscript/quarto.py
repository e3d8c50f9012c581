"""Render the prepared manuscript with Quarto and copy the result into the run's output folder."""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from analysis_utils.reporting.manuscript.layout import ARTICLE_DIR, GENERATED_DIR, QUARTO_OUTPUT_DIR, VARIABLES_FILE

@dataclass
class RenderOutcome:
    rendered: bool
    message: str
    output_dir: Path | None = None


def _params_file(out: Path) -> str:
    """The params file of a run, from its manifest (for the messages)."""
    try:
        return str(json.loads((out / "run_manifest.json").read_text(encoding="utf-8"))["params_file"])
    except (OSError, ValueError, KeyError):
        return "<params file>"


def _run_quarto(exe: str, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([exe, "render"], cwd=root, capture_output=True, text=True)


def render(root: str | Path, out_dir: str | Path) -> RenderOutcome:
    """``quarto render`` in ``root`` when Quarto is on the PATH, then copy ``_manuscript/`` (HTML site, DOCX, PDF
    via Typst, MECA bundle) into ``<out>/manuscript/``. Without Quarto, say what was prepared and how to render."""
    root, out = Path(root), Path(out_dir)
    exe = shutil.which("quarto")
    if exe is None:
        return RenderOutcome(False, (
            "Quarto is not on the PATH, so the manuscript was prepared but not rendered.\n"
            f"  article    {root / ARTICLE_DIR / 'index.qmd'} (supplement: {root / ARTICLE_DIR / '_supplement.qmd'})\n"
            f"  numbers    {root / VARIABLES_FILE}, figures and tables in {root / GENERATED_DIR}/\n"
            "To render HTML, Word, PDF (Typst, no LaTeX needed) and the MECA bundle, install Quarto >= 1.4\n"
            "(https://quarto.org/docs/get-started/) and run in the project root:\n"
            "  quarto render\n"
            f"The result goes to {root / QUARTO_OUTPUT_DIR}/ (index.html, index.docx, index.pdf, index-meca.zip). "
            f"With Quarto installed, `python -m analysis_utils manuscript --params {_params_file(out)}` renders it "
            f"and copies it into {out / 'manuscript'}/."))
    proc = _run_quarto(exe, root)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-20:])
        return RenderOutcome(False, f"quarto render failed (exit code {proc.returncode}) in {root}:\n{tail}")
    site = root / QUARTO_OUTPUT_DIR
    if not site.is_dir():
        return RenderOutcome(False, f"quarto render finished but {site} does not exist")
    dest = out / "manuscript"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(site, dest)
    return RenderOutcome(True, f"Manuscript rendered with {exe}: {site}/ copied to {dest}/", dest)
