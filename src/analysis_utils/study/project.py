"""The compendium's folders and params files: where the project root is, how a params file (with its ``base:``)
is read, where a run's outputs go, which key pseudonymises study IDs (and how secrets are kept out of every output),
and what a notebook needs before it can run (:func:`require`).

Every layer above (steps, reporting, runner) and every notebook finds its files through these functions, so a
notebook opened in JupyterLab and the runner agree on paths.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

PSEUDONYM_ENV = "HCC_PSEUDONYM_KEY"
# Params that are secrets: never injected into a notebook, displayed, logged or written (manifest, outputs).
SECRET_PARAMS = ("pseudonym_key",)
REDACTED = "<redacted>"


class ParamsError(Exception):
    """A params file is missing, unreadable or lacks a required key."""


class PreconditionError(Exception):
    """A notebook cannot run yet: a file it reads has not been written. Shown as its one-line message (IPython
    renders ``_render_traceback_`` instead of a traceback), which names the notebook or command that makes it."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


# --------------------------------------------------------------------------------------------------- paths, params
def project_root() -> Path:
    """The compendium's root: the nearest folder above the working directory holding ``params/`` and
    ``notebooks/`` (so notebooks opened in JupyterLab find it), else the source checkout of this package."""
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / "params").is_dir() and (folder / "notebooks").is_dir():
            return folder
    return Path(__file__).resolve().parents[3]


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in override.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


REQUIRED_KEYS = ("run_name", "input_dir", "output_root", "data_cutoff", "seed")


def load_params(path: str | Path) -> dict[str, Any]:
    """Read a params YAML file, following ``base:`` (relative to the project root or to the file)."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found")
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc})") from None
    if "base" in params:
        base = Path(params.pop("base"))
        candidates = [base] if base.is_absolute() else [project_root() / base, path.parent / base]
        found = next((c for c in candidates if c.is_file()), candidates[0])
        params = _deep_merge(load_params(found), params)
    missing = [k for k in REQUIRED_KEYS if k not in params]
    if missing:
        raise ParamsError(f"{path}: required key(s) missing: {', '.join(missing)}")
    return params


def pseudonym_key(params: dict[str, Any]) -> str:
    """The HMAC key for study IDs: environment variable HCC_PSEUDONYM_KEY, else the params' ``pseudonym_key``."""
    return os.environ.get(PSEUDONYM_ENV) or str(params.get("pseudonym_key", ""))


def redact_secrets(value: Any) -> Any:
    """A copy of ``value`` (params, nested dicts and lists) with every secret param replaced by ``<redacted>``."""
    if isinstance(value, dict):
        return {k: (REDACTED if k in SECRET_PARAMS else redact_secrets(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_secrets(v) for v in value]
    return value


def resolve(path: str | Path, root: Path | None = None) -> Path:
    p = Path(path)
    return p if p.is_absolute() else (root or project_root()) / p


def output_dir(params: dict[str, Any], root: Path | None = None) -> Path:
    return resolve(params["output_root"], root) / str(params["run_name"])


def notebooks(root: Path | None = None) -> list[Path]:
    """The analysis notebooks in run order: ``notebooks/NN_*.ipynb`` sorted by name."""
    return sorted((root or project_root()).glob("notebooks/[0-9][0-9]_*.ipynb"))


def relative(path: Path, root: Path | None = None) -> str:
    """``path`` relative to the project root (POSIX), or as given when it lies outside: messages and outputs name
    files the same way wherever the repository lives."""
    try:
        return Path(path).resolve().relative_to((root or project_root()).resolve()).as_posix()
    except ValueError:
        return str(path)


def require(out: Path, needs: dict[str, str], notebook: str, root: Path | None = None) -> None:
    """Check that the files a notebook reads exist before it runs.

    ``needs`` maps a path below the run folder ``out`` (e.g. ``"data/cohort.parquet"``) to the notebook that writes
    it (e.g. ``"01_cleaning"``). Raises :class:`PreconditionError` naming the first missing file, the notebook to
    run first and the command that runs everything."""
    for rel_path, maker in needs.items():
        if not (Path(out) / rel_path).is_file():
            folder = relative(Path(out), root)
            raise PreconditionError(
                f"{notebook} needs {rel_path} in {folder}/, which {maker} writes: run notebooks/{maker}.ipynb "
                f"first with the same run_name, or the whole run: python -m analysis_utils run --params <params file>")
