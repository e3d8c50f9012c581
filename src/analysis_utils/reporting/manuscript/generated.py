"""Point the manuscript project at one run: ``_variables.yml`` and ``manuscript/_generated/``.

``prepare(out, root)`` writes the variables to ``manuscript/_variables.yml``, which Quarto reads for the
``{{< var key >}}`` shortcode (quarto.org/docs/authoring/variables.html: the file sits beside ``_quarto.yml``), and
copies the run's executed notebooks, figures (PNG) and Markdown pipe tables, and the environment files the MECA
bundle lists, into ``manuscript/_generated/`` (git-ignored; files starting with ``_`` are not rendered by Quarto on
their own). Nothing written names a folder of this machine: paths are relative to the project root, so two clones
in different folders prepare byte-identical files. Tables are included as pipe
tables, not rich HTML (conventions: rich HTML tables are dropped in manuscript projects, quarto-cli #14176).
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from analysis_utils.reporting import tables
from analysis_utils.reporting.manuscript.layout import GENERATED_DIR, QUARTO_CONFIG, VARIABLES_FILE
from analysis_utils.reporting.manuscript.variables import variables_report
from analysis_utils.reporting.manuscript.variables_simulation import write_section

ENVIRONMENT_FILES = ("requirements-lock.txt", "environment.yml")  # manuscript.environment in _quarto.yml
REDACTED_PARAMS = ("pseudonym_key",)  # never published: with it, study IDs could be recomputed from MRNs


@dataclass
class Prepared:
    """What ``prepare`` wrote: the variables file, the generated folder and its contents, unresolved variables."""
    variables_file: Path
    generated_dir: Path
    notebooks: list[str]
    figures: list[str]
    tables: list[str]
    missing: list[str]
    n_values: int

    def summary(self) -> str:
        lines = [f"  variables  {self.variables_file} ({self.n_values} values)",
                 f"  generated  {self.generated_dir}/ ({len(self.notebooks)} executed notebooks, "
                 f"{len(self.figures)} figures, {len(self.tables)} tables)"]
        if self.missing:
            lines.append(f"  {len(self.missing)} variable(s) could not be built from this run:")
            lines += [f"    - {m}" for m in self.missing]
        return "\n".join(lines)


def _count_values(d: Any) -> int:
    return sum(_count_values(v) for v in d.values()) if isinstance(d, dict) else 1


def _executed_notebooks(out: Path) -> list[Path]:
    """The run's executed notebooks: ``<out>/notebooks/NN_*.ipynb`` (the runner), else ``<out>/NN_*.ipynb``."""
    found = sorted((out / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    return found or sorted(out.glob("[0-9][0-9]_*.ipynb"))


def input_digests(sha: dict[str, str]) -> list[tuple[str, int, str]]:
    """(centre folder, number of files, SHA-256 of its files' checksum lines) from the manifest's ``input_sha256``
    (path relative to the input folder -> SHA-256). The lines are '<sha256>  <path>\\n' in path order, as
    ``sha256sum`` prints them, so anyone can recompute the digest from the files."""
    by_centre: dict[str, list[str]] = {}
    for path in sorted(sha):
        by_centre.setdefault(path.split("/", 1)[0] if "/" in path else ".", []).append(f"{sha[path]}  {path}\n")
    return [(centre, len(lines), hashlib.sha256("".join(lines).encode("utf-8")).hexdigest())
            for centre, lines in by_centre.items()]


def _write_run_files(manifest: dict[str, Any], folder: Path) -> list[str]:
    """Supplement pieces from the manifest: versions and per-centre input digests as pipe tables, the params as
    compact YAML (lists on one line, so the listing fits a page)."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    versions = manifest.get("versions", {})
    (folder / "versions.md").write_text(tables.to_markdown(pd.DataFrame(
        {"Software": list(versions), "Version": [str(v) for v in versions.values()]})), encoding="utf-8")
    digests = input_digests(manifest.get("input_sha256", {}))
    (folder / "inputs.md").write_text(tables.to_markdown(pd.DataFrame(
        {"Centre": [c for c, _, _ in digests], "Files": [str(n) for _, n, _ in digests],
         "SHA-256 of the centre's files": [f"`{d}`" for _, _, d in digests]}), align=["l", "c", "l"]),
        encoding="utf-8")
    params = {k: ("<redacted>" if k in REDACTED_PARAMS else v) for k, v in manifest["params"].items()}
    text = yaml.safe_dump(params, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None)
    (folder / "params.md").write_text(f"```yaml\n{text}```\n", encoding="utf-8")
    return ["run/versions.md", "run/inputs.md", "run/params.md"]


def _rel(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it lies below it (the usual case), else as given."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def prepare(out_dir: str | Path, root: str | Path | None = None) -> Prepared:
    """Make the manuscript project under ``root`` point at one run: write ``<root>/manuscript/_variables.yml`` and refresh
    ``<root>/manuscript/_generated/`` (executed notebooks, figures, Markdown tables, run manifest pieces).

    ``root`` defaults to the project root; tests pass a temporary copy of the project tree. The generated folder is
    emptied first, so nothing from an earlier run survives. The environment files are copied from ``root`` when
    present, else from the project root."""
    from analysis_utils.study.project import project_root

    out = Path(out_dir)
    root = Path(root) if root is not None else project_root()
    if not (root / QUARTO_CONFIG).is_file():
        raise FileNotFoundError(f"{root / QUARTO_CONFIG}: not a Quarto project root")
    variables, missing = variables_report(out)
    manifest = json.loads((out / "run_manifest.json").read_text(encoding="utf-8"))
    var_file = root / VARIABLES_FILE
    header = (f"# Generated by analysis_utils.reporting.manuscript.prepare from {_rel(out, root)} -- do not edit "
              "by hand;\n"
              f"# re-run the pipeline or `python -m analysis_utils manuscript` instead.\n")
    var_file.write_text(header + yaml.safe_dump(variables, sort_keys=True, allow_unicode=True, width=1000),
                        encoding="utf-8")
    gen = root / GENERATED_DIR
    if gen.exists():
        shutil.rmtree(gen)
    copied: dict[str, list[str]] = {"notebooks": [], "figures": [], "tables": []}
    for nb in _executed_notebooks(out):
        _copy(nb, gen / "notebooks" / nb.name)
        copied["notebooks"].append(nb.name)
    for f in sorted((out / "figures").glob("*")):
        if f.suffix in (".png", ".svg"):
            _copy(f, gen / "figures" / f.name)
            if f.suffix == ".png":
                copied["figures"].append(f.name)
    for f in sorted((out / "tables").glob("*.md")):
        _copy(f, gen / "tables" / f.name)
        copied["tables"].append(f.name)
    copied["tables"] += _write_run_files(manifest, gen / "run")
    copied["tables"] += write_section(out, gen)  # supplement: the simulation (or that none was run)
    for name in ENVIRONMENT_FILES:
        src = next((f for f in (root / name, project_root() / name) if f.is_file()), None)
        if src is not None:
            _copy(src, gen / "environment" / name)
    return Prepared(var_file, gen, copied["notebooks"], copied["figures"], copied["tables"], missing,
                    _count_values(variables))


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
