"""The Quarto manuscript: every number of the article comes from a pipeline run, none is typed by hand.

How numbers get in (the Quarto manuscript project is the folder ``manuscript/``, its ``_quarto.yml`` there; the
whole flow is drawn in docs/architecture.md, "The manuscript"), one module per step:

- ``variables``: ``build_variables(out)`` reads ``<out>/results.json`` (one section per notebook) and
  ``<out>/run_manifest.json`` (params actually used, versions, commit, seed, input checksums) and returns nested,
  *formatted* strings (``text``: counts, percentages, estimates with CIs, P values, medians, dates in words);
  Methods prose pieces are generated from the params. Every ``variables_<topic>.py`` module of this package adds
  its own block (``values.topic_modules``: the registry a new analysis plugs into without editing this package).
- ``values``: ``Reader`` and ``collect``, shared by the variables modules, and the registry.
- ``generated``: ``prepare(out, root)`` writes them to ``manuscript/_variables.yml`` (read by Quarto's
  ``{{< var key >}}`` shortcode) and copies the run's executed notebooks, figures (PNG), Markdown pipe tables and
  environment files into ``manuscript/_generated/`` (git-ignored); paths written are relative to the project.
- ``checks``: ``check_references(root)`` lists every shortcode, include, embed, image, cross-reference label and
  citation that does not resolve, every variable value not formatted for reading, every number typed by hand in
  the prose (``hand_typed_numbers``) and every fig-/tbl- labelled notebook cell without exactly one output; it
  follows the includes. The tests use it; so can authors before rendering.
- ``quarto``: ``render(root, out)`` runs ``quarto render manuscript`` when Quarto is on the PATH, checks the four
  files and Quarto's warnings, and copies ``manuscript/_manuscript/`` into ``<out>/manuscript/``; otherwise it
  says what was prepared and how to render.
- ``polish``: journal-sized tables in the Word file, fixed timestamps in the Word file and the MECA bundle.
- ``layout``: where these files are, relative to the project root.

:func:`build` runs prepare, check_references and render with a readable report (the ``manuscript`` command and the
end of a pipeline run).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from analysis_utils.reporting.manuscript.checks import (ALLOWED_NUMBER_TERMS, AT_RE, BIB_KEY_RE, BUILTIN_XREF,
                                                        CHECKLIST_FILES, SHORTCODE_RE, check_references,
                                                        hand_typed_numbers, resolve_text)
from analysis_utils.reporting.manuscript.generated import Prepared, prepare
from analysis_utils.reporting.manuscript.layout import (ARTICLE_DIR, GENERATED_DIR, QUARTO_CONFIG, QUARTO_OUTPUT_DIR,
                                                        QUARTO_PROJECT, VARIABLES_FILE)
from analysis_utils.reporting.manuscript.quarto import RenderOutcome, render
from analysis_utils.reporting.manuscript.text import (ci_text, covariate_text, date_text, days_text, est_ci_text,
                                                      fmt_count_pct, fmt_int, fmt_pct, human_list, level_text,
                                                      median_text, months_list_text, p_text)
from analysis_utils.reporting.manuscript.variables import build_variables, variables_report

__all__ = ["ALLOWED_NUMBER_TERMS", "ARTICLE_DIR", "AT_RE", "BIB_KEY_RE", "BUILTIN_XREF", "CHECKLIST_FILES",
           "GENERATED_DIR", "Prepared", "QUARTO_CONFIG", "QUARTO_OUTPUT_DIR", "QUARTO_PROJECT", "RenderOutcome", "SHORTCODE_RE",
           "VARIABLES_FILE", "build", "build_variables", "check_references", "ci_text", "covariate_text", "date_text",
           "days_text", "est_ci_text", "fmt_count_pct", "fmt_int", "fmt_pct", "hand_typed_numbers", "human_list",
           "level_text", "median_text", "months_list_text", "p_text", "prepare", "render", "resolve_text",
           "variables_report"]


def build(out_dir: str | Path, root: str | Path | None = None, render_it: bool = True,
          log: Callable[[str], None] = print) -> bool:
    """prepare + check_references + render, with a readable report. True when nothing is unresolved (and, with
    Quarto on the PATH, the render succeeded)."""
    from analysis_utils.study.project import project_root

    root = Path(root) if root is not None else project_root()
    prep = prepare(out_dir, root)
    log(f"Manuscript prepared from {out_dir}:\n{prep.summary()}")
    problems = check_references(root)
    if problems:
        log(f"{len(problems)} manuscript reference problem(s):\n" + "\n".join(f"  - {p}" for p in problems))
    else:
        log("  every variable, include, figure, cross-reference and citation of the manuscript resolves")
    if not render_it:
        return not problems
    outcome = render(root, out_dir)
    log(outcome.message)
    return not problems and (outcome.rendered or shutil.which("quarto") is None)
