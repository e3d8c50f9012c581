"""Render the prepared manuscript with Quarto and copy the result into the run's output folder."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from analysis_utils.reporting.manuscript.layout import (ARTICLE_DIR, GENERATED_DIR, QUARTO_OUTPUT_DIR, QUARTO_PROJECT,
                                                        VARIABLES_FILE)
from analysis_utils.reporting.manuscript.polish import normalise_zip, polish_docx

DELIVERABLES = ("index.html", "index.docx", "index.pdf", "index-meca.zip")  # what a render must produce
# Quarto warnings that mean the article is wrong although the render "succeeded": a number, figure or reference
# missing from the output. A render with any of them counts as failed.
FATAL_WARNINGS = ("Unknown var", "Could not fetch resource", "Unable to resolve crossref", "unable to resolve",
                  "Unknown meta")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class RenderOutcome:
    rendered: bool
    message: str
    output_dir: Path | None = None
    seconds: float = 0.0


def _params_file(out: Path) -> str:
    """The params file of a run, from its manifest (for the messages)."""
    try:
        return str(json.loads((out / "run_manifest.json").read_text(encoding="utf-8"))["params_file"])
    except (OSError, ValueError, KeyError):
        return "<params file>"


def _source_date_epoch(out: Path) -> str:
    """SOURCE_DATE_EPOCH for Quarto (pandoc dates the Word file and its zip entries with it, Typst the PDF): the
    run's data cut-off at midnight UTC, so a render of the same run is the same file whenever it is made."""
    try:
        cutoff = json.loads((out / "run_manifest.json").read_text(encoding="utf-8"))["params"]["data_cutoff"]
        return str(int(datetime.fromisoformat(str(cutoff)[:10]).replace(tzinfo=timezone.utc).timestamp()))
    except (OSError, ValueError, KeyError):
        return "0"


def _run_quarto(exe: str, project: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([exe, "render"], cwd=project, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def not_installed_message(root: Path, out: Path) -> str:
    """What was prepared and how to render it, when Quarto is not on the PATH."""
    return ("Quarto is not on the PATH, so the manuscript was prepared but not rendered.\n"
            f"  article    {root / ARTICLE_DIR / 'index.qmd'} (supplement: {root / ARTICLE_DIR / '_supplement.qmd'})\n"
            f"  numbers    {root / VARIABLES_FILE}, figures and tables in {root / GENERATED_DIR}/\n"
            "To render HTML, Word, PDF (Typst, no LaTeX needed) and the MECA bundle, install Quarto >= 1.7\n"
            "(https://quarto.org/docs/get-started/) and run in the project root:\n"
            f"  quarto render {QUARTO_PROJECT}\n"
            f"The result goes to {root / QUARTO_OUTPUT_DIR}/ ({', '.join(DELIVERABLES)}). With Quarto installed, "
            f"`python -m analysis_utils manuscript --params {_params_file(out)}` renders it and copies it into "
            f"{out / 'manuscript'}/.")


def quarto_warnings(output: str) -> list[str]:
    """The distinct WARNING lines of Quarto's output (colour codes removed), in order."""
    seen: list[str] = []
    for line in _ANSI.sub("", output).splitlines():
        line = line.strip()
        if "WARNING" in line and line not in seen:
            seen.append(line)
    return seen


def render(root: str | Path, out_dir: str | Path) -> RenderOutcome:
    """``quarto render`` of the Quarto project ``<root>/manuscript`` when Quarto is on the PATH, then copy its output
    folder (HTML with the notebook pages, DOCX, PDF via Typst, MECA bundle) into ``<out>/manuscript/``. The earlier
    output folder is removed first, so nothing stale is copied. Without Quarto, say what was prepared and how to
    render. The Word file gets journal-sized tables and the MECA bundle fixed timestamps (``polish``); Quarto runs
    with SOURCE_DATE_EPOCH set to the run's data cut-off. A render that does not produce every file of
    ``DELIVERABLES``, or warns of a missing variable, image or
    cross-reference (``FATAL_WARNINGS``), counts as failed; other warnings are listed in the message."""
    root, out = Path(root), Path(out_dir)
    exe = shutil.which("quarto")
    if exe is None:
        return RenderOutcome(False, not_installed_message(root, out))
    site = root / QUARTO_OUTPUT_DIR
    if site.exists():
        shutil.rmtree(site)
    t0 = time.perf_counter()
    proc = _run_quarto(exe, root / QUARTO_PROJECT, {"SOURCE_DATE_EPOCH": _source_date_epoch(out)})
    secs = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-20:])
        return RenderOutcome(False, f"quarto render failed (exit code {proc.returncode}) in {root / QUARTO_PROJECT}:"
                                    f"\n{tail}", seconds=secs)
    if not site.is_dir():
        return RenderOutcome(False, f"quarto render finished but {site} does not exist", seconds=secs)
    warnings = quarto_warnings((proc.stderr or "") + "\n" + (proc.stdout or ""))
    fatal = [w for w in warnings if any(f in w for f in FATAL_WARNINGS)]
    if fatal:
        return RenderOutcome(False, "quarto render finished with warnings that leave the article incomplete:\n"
                                    + "\n".join(f"  {w}" for w in fatal), seconds=secs)
    absent = [f for f in DELIVERABLES if not (site / f).is_file()]
    if absent:
        return RenderOutcome(False, f"quarto render finished but {site} lacks {', '.join(absent)}", seconds=secs)
    if zipfile.is_zipfile(site / "index.docx") and zipfile.is_zipfile(site / "index-meca.zip"):
        polish_docx(site / "index.docx")
        normalise_zip(site / "index-meca.zip", {"index.docx": (site / "index.docx").read_bytes()})
    dest = out / "manuscript"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(site, dest)
    note = ("\n  Quarto warnings:\n" + "\n".join(f"    {w}" for w in warnings)) if warnings else ""
    return RenderOutcome(True, f"Manuscript rendered with {exe} in {secs:.0f} s: {site}/ copied to {dest}/ "
                               f"({', '.join(DELIVERABLES)}){note}", dest, secs)
