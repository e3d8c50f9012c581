"""What every variables module of the manuscript shares: reading a results section, collecting a value or recording
why it is missing, and the registry of topic modules.

A new analysis adds its numbers to the article with one module, ``reporting/manuscript/variables_<topic>.py``
(docs/architecture.md, "The manuscript"), defining

    VARIABLES_KEY = "target_trial"     # top-level key of _variables.yml: the text quotes {{< var target_trial.hr >}}
    RESULTS_SECTION = "target_trial"   # the notebook's section of results.json

    def variables(r: Reader, params: dict, missing: list[str]) -> dict:
        out = {}
        collect(out, "hr", lambda: est_ci_text(r("hr"), r("hr_lower"), r("hr_upper")), missing)
        return out

``topic_modules()`` finds every such module by its file name, so no other file changes: ``build_variables``
calls ``variables`` with a ``Reader`` of ``results[RESULTS_SECTION]`` and the params of the run, and writes the
returned (nested) strings under ``VARIABLES_KEY`` (left out when empty). When the run has no such section the block is
left out and the missing section reported. A topic that combines sections reads the others from ``r.results`` (all
of results.json: ``variables_outcomes``, ``variables_imputation``); one that needs no section of results.json
sets ``RESULTS_SECTION = None`` and reads the run folder ``r.out_dir`` (``variables_simulation``). A
``variables_*.py`` module lacking part of the interface is an error, not skipped; the article's own blocks (run,
methods, cohort, matching, survival, response, safety) are built in ``variables.py``.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

TOPIC_PREFIX = "variables_"
TOPIC_API = ("VARIABLES_KEY", "RESULTS_SECTION", "variables")


@dataclass
class Reader:
    """Reads one results section; a missing key raises KeyError('<section>.<key>'), which ``collect`` records.

    ``results`` is the whole of results.json (for a topic combining sections), ``out_dir`` the run folder."""
    section: str
    values: dict[str, Any]
    results: dict[str, Any] = field(default_factory=dict, repr=False)
    out_dir: Path | None = None

    def __call__(self, key: str) -> Any:
        if key not in self.values:
            raise KeyError(f"{self.section}.{key}")
        return self.values[key]


def collect(out: dict[str, Any], name: str, make: Callable[[], Any], missing: list[str], *, prefix: str = "",
            keep_none: bool = False) -> None:
    """Set ``out[name] = make()``, or record which results key was missing (the variable is then left out); the
    record names the variable as ``prefix + name``. A ``None`` value is left out unless ``keep_none``."""
    try:
        value = make()
    except KeyError as exc:
        missing.append(f"{prefix}{name}: results key {exc.args[0]} not found")
        return
    except (TypeError, ValueError) as exc:
        missing.append(f"{prefix}{name}: {exc}")
        return
    if value is not None or keep_none:
        out[name] = value


def topic_modules() -> list[ModuleType]:
    """Every ``reporting/manuscript/variables_<topic>.py``, in name order. Each must define ``VARIABLES_KEY``,
    ``RESULTS_SECTION`` and ``variables``: one lacking any raises TypeError naming what it lacks (a misspelt module
    would otherwise vanish from the article; there is no second way to register a topic)."""
    package = __name__.rpartition(".")[0]
    found = []
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
        if not info.name.startswith(TOPIC_PREFIX):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        lacking = [a for a in TOPIC_API if not hasattr(module, a)]
        if lacking:
            raise TypeError(f"{module.__name__}: a manuscript variables module must define {', '.join(TOPIC_API)}; "
                            f"it lacks {', '.join(lacking)} (see analysis_utils.reporting.manuscript.values)")
        found.append(module)
    return found
