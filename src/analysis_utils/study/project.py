"""The compendium's folders and params files: where the project root is, how a params file (with its ``base:``)
is read, where a run's outputs go, which key pseudonymises study IDs.

Every layer above (steps, reporting, runner) and every notebook finds its files through these functions, so a
notebook opened in JupyterLab and the runner agree on paths.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

PSEUDONYM_ENV = "HCC_PSEUDONYM_KEY"


class ParamsError(Exception):
    """A params file is missing, unreadable or lacks a required key."""


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


def resolve(path: str | Path, root: Path | None = None) -> Path:
    p = Path(path)
    return p if p.is_absolute() else (root or project_root()) / p


def output_dir(params: dict[str, Any], root: Path | None = None) -> Path:
    return resolve(params["output_root"], root) / str(params["run_name"])


def notebooks(root: Path | None = None) -> list[Path]:
    """The analysis notebooks in run order: ``notebooks/NN_*.ipynb`` sorted by name."""
    return sorted((root or project_root()).glob("notebooks/[0-9][0-9]_*.ipynb"))
