"""The setup cell of every notebook: one call that checks the kernel, finds the run folder, checks that the files the
notebook reads exist, sets the display options, and records a notebook run by hand in the run's manifest.

    try:
        from analysis_utils.runner import session
    except ModuleNotFoundError:  # not the project's kernel
        raise ModuleNotFoundError("this kernel lacks analysis_utils: choose the kernel 'HCC compendium' (Kernel > "
                                  "Change Kernel; to install it: README, 'Working in JupyterLab')") from None
    ...
    nb = session.start("04_matching", {"run_name": run_name, "output_root": output_root, "matching": matching},
                       output_dir=output_dir, needs={"data/cohort.parquet": "01_cleaning"})
    out = nb.out

(the whole pattern, to copy into a new notebook: docs/architecture.md, "Notebooks").

**Kernel.** The notebooks name the kernel ``hcc-compendium``; the project's install puts that kernelspec into its
environment (``share/jupyter/kernels/hcc-compendium``), and the README's ``ipykernel install --user`` makes it
visible to a JupyterLab outside the environment. :func:`check_kernel` stops with one line when the kernel imports
``analysis_utils`` from another checkout than the notebook's.

**Provenance.** The runner starts kernels with ``HCC_RUNNER=1`` and writes ``run_manifest.json`` itself. A notebook
run by hand (JupyterLab, nbval) rewrites results.json, tables and figures of ``outputs/<run_name>/`` but not the
runner's executed copies, so :func:`start` appends an entry to the manifest's ``interactive_runs``: which notebook,
when (UTC), the parameters it ran with (secrets redacted), which of them differ from the manifest's params, the git
commit and the versions. The manifest then never vouches for a folder that another run has changed without saying so;
the next ``python -m analysis_utils run`` replaces the folder and its manifest as a whole.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import analysis_utils
from analysis_utils.runner import pipeline
from analysis_utils.study import project
from analysis_utils.study.project import PreconditionError

KERNEL_NAME = "hcc-compendium"
KERNEL_DISPLAY_NAME = "HCC compendium"
KERNEL_HINT = ("choose the kernel 'HCC compendium' (Kernel > Change Kernel); if it is not listed, run "
               "`.venv/bin/python -m ipykernel install --user --name hcc-compendium --display-name 'HCC compendium'` "
               "in the project folder and reload the page (README, 'Working in JupyterLab')")


@dataclass(frozen=True)
class Session:
    """What a notebook's setup cell learns: the project root, the run folder, whether it runs by hand."""

    notebook: str
    root: Path
    out: Path
    interactive: bool


def check_kernel(root: Path) -> None:
    """Stop when the kernel's ``analysis_utils`` is not this project's ``src/analysis_utils`` (a kernel of another
    checkout would run other code than the notebook's). A copy of the notebooks without ``src/`` is not checked."""
    src = root / "src" / "analysis_utils"
    if not src.is_dir():
        return
    here = Path(analysis_utils.__file__).resolve().parent
    if here != src.resolve():
        raise PreconditionError(f"this kernel imports analysis_utils from {here.parent}, not from this project's "
                                f"src/ ({root}): {KERNEL_HINT}")


def display_options() -> None:
    """pandas display for reading: whole tables up to 500 rows, labels never cut, wide frames on one line."""
    import pandas as pd

    pd.set_option("display.max_rows", 500, "display.min_rows", 500, "display.max_columns", 60,
                  "display.max_colwidth", None, "display.width", 200)


def start(notebook: str, params: dict[str, Any], output_dir: str | Path | None = None,
          needs: dict[str, str] | None = None, quiet: bool = False) -> Session:
    """Set up a notebook: check the kernel, resolve the run folder (``output_dir`` when the runner gives it, else
    ``<output_root>/<run_name>`` of ``params``), set the display options, check that every file of ``needs``
    (path below the run folder -> notebook that writes it) exists, and record a run by hand in the manifest.

    ``params`` holds the notebook's parameters (the names of its ``parameters`` cell): they locate the run folder
    and are what the manifest records. Prints one line saying where the notebook writes."""
    root = project.project_root()
    check_kernel(root)
    display_options()
    out = Path(output_dir) if output_dir else project.output_dir(params, root)
    project.require(out, needs or {}, notebook, root)
    interactive = os.environ.get(pipeline.RUNNER_ENV) != "1"
    line = f"{notebook} · run '{params.get('run_name', out.name)}' · writes to {project.relative(out, root)}/"
    if interactive:
        record_interactive_run(out, notebook, params, root)
        line += f" · run by hand: recorded in {pipeline.MANIFEST_FILE} (interactive_runs)"
    if not quiet:
        print(line)
    return Session(notebook=notebook, root=root, out=out, interactive=interactive)


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def record_interactive_run(out: Path, notebook: str, params: dict[str, Any], root: Path) -> dict[str, Any]:
    """Append this notebook's run by hand to ``<out>/run_manifest.json`` (created when the runner has not made the
    folder: ``status: interactive``) and return the entry."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / pipeline.MANIFEST_FILE
    if path.is_file():
        manifest = json.loads(path.read_text(encoding="utf-8"))
    else:
        manifest = {"run_name": params.get("run_name", out.name), "status": "interactive", "params": {},
                    "notebooks": [], "git": pipeline.git_state(root), "versions": pipeline.package_versions()}
    parameters = project.redact_secrets(params)
    recorded = manifest.get("params", {})
    entry = {
        "notebook": f"{notebook}.ipynb",
        "mode": "interactive",
        "started_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "parameters": parameters,
        "parameters_differing_from_manifest": sorted(k for k in parameters if k in recorded
                                                     and not _same(recorded[k], parameters[k])),
        "git": pipeline.git_state(root),
        "versions": {"python": platform.python_version(), "analysis_utils": analysis_utils.__version__},
        "executed_copy_outdated": (out / "notebooks" / f"{notebook}.ipynb").is_file(),
    }
    manifest.setdefault("interactive_runs", []).append(entry)
    if manifest.get("status") == "interactive":  # no runner run: the params are what the notebooks ran with
        manifest["params"] = {**recorded, **parameters}
    pipeline.save_manifest(out, manifest)
    return entry


def input_folder(params: dict[str, Any], root: Path) -> Path:
    """The centre exports ``input_dir`` of ``params``. When it is missing and the params ask for the synthetic cohort
    (``synthetic.generate``), generate it first (as the runner does); otherwise stop with one line saying what to
    put there."""
    raw = project.resolve(params["input_dir"], root)
    if raw.is_dir():
        return raw
    if params.get("synthetic", {}).get("generate", False):
        pipeline.generate_input(params, root)
        return raw
    raise PreconditionError(f"input_dir {project.relative(raw, root)}/ does not exist: put one folder per centre "
                            "there (manifest.yaml and one file per table; README, 'Running on real centre exports')")
