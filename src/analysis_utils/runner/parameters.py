"""The notebooks' ``parameters`` cells, rendered from ``params/default.yaml``: one setting per line, nested sections
indented, long lists wrapped, and each setting's comment from the YAML file at the end of its line.

A notebook declares which params it uses by the names assigned in its ``parameters`` cell (``run_name``,
``matching``, ...); :func:`render_cell` writes those names with the values of the default params file, in the file's
order, ``output_dir = None`` last (the runner sets it). ``tests/test_pipeline.py`` requires every notebook's cell to
equal its rendering, so after adding a param to ``params/default.yaml`` (or a name to a cell) regenerate the cells:

    python -m analysis_utils.runner.parameters            # rewrite the parameters cells of notebooks/NN_*.ipynb
    python -m analysis_utils.runner.parameters --check    # list the cells that differ, change nothing
"""
from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import Any

import nbformat
import yaml

from analysis_utils.study import project

HEADER = "# Parameters (mirror params/default.yaml; the runner injects the values of the params file in use)"
RUNNER_SET = {  # names the runner fills in itself, rendered as None
    "output_dir": "set by the runner; defaults to <output_root>/<run_name>",
    "params_file": "set by the runner: the params file in use",
}
SECRET_NOTE = "a secret: HCC_PSEUDONYM_KEY overrides it; never displayed, injected or written"
WIDTH = 120
_KEY = re.compile(r"^(\s*)([A-Za-z_][\w-]*)\s*:(.*)$")


class ParametersError(ValueError):
    """A notebook's parameters cell cannot be rendered (missing, not plain assignments, unknown name)."""


# ----------------------------------------------------------------------------------------------- YAML comments
def _trailing_comment(text: str) -> str | None:
    """The comment after a YAML value (a '#' after whitespace, outside quotes), without the '#'."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            return text[i + 1:].strip() or None
    return None


def yaml_comments(text: str) -> dict[tuple[str, ...], str]:
    """Trailing comment of every block-style key of a YAML text, keyed by its path (``("matching", "caliper")``)."""
    out: dict[tuple[str, ...], str] = {}
    stack: list[tuple[int, str]] = []
    for line in text.splitlines():
        m = _KEY.match(line)
        if not m or line.lstrip().startswith("#"):
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, m.group(2)))
        comment = _trailing_comment(m.group(3))
        if comment:
            out[tuple(k for _, k in stack)] = comment
    return out


# ----------------------------------------------------------------------------------------------- rendering
def _scalar(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return json.dumps(value.isoformat())
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise ParametersError(f"cannot write {value!r} ({type(value).__name__}) as a notebook parameter")


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(str(k))}: {_inline(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return _scalar(value)


def _with_comment(lines: list[str], comment: str | None, indent: int) -> list[str]:
    """Put ``comment`` at the end of the first line, or on a line of its own above when that would be too long."""
    if not comment:
        return lines
    if len(lines[0]) + 4 + len(comment) <= WIDTH:
        return [f"{lines[0]}  # {comment}", *lines[1:]]
    return [" " * indent + f"# {comment}", *lines]


def _render(prefix: str, value: Any, suffix: str, indent: int, path: tuple[str, ...],
            comments: dict[tuple[str, ...], str]) -> list[str]:
    """Lines for ``<prefix><value><suffix>`` at ``indent``: dicts one key per line, lists inline or wrapped."""
    pad, inner = " " * indent, " " * (indent + 4)
    if isinstance(value, dict) and value:
        lines = [f"{pad}{prefix}{{"]
        for k, v in value.items():
            lines += _with_comment(_render(f"{_scalar(str(k))}: ", v, ",", indent + 4, (*path, str(k)), comments),
                                   comments.get((*path, str(k))), indent + 4)
        return lines + [f"{pad}}}{suffix}"]
    one_line = f"{pad}{prefix}{_inline(value)}{suffix}"
    if not isinstance(value, (list, tuple)) or len(one_line) <= WIDTH:
        return [one_line]
    lines, current = [f"{pad}{prefix}["], inner
    for item in (_inline(v) + "," for v in value):
        if current != inner and len(current) + 1 + len(item) > WIDTH:
            lines.append(current)
            current = inner
        current = f"{current}{'' if current == inner else ' '}{item}"
    return [*lines, current, f"{pad}]{suffix}"]


def render_cell(names: list[str], params: dict[str, Any], comments: dict[tuple[str, ...], str] | None = None) -> str:
    """The source of a ``parameters`` cell assigning ``names`` from ``params`` (in the params' order; runner-set
    names last), each setting on its own line with its YAML comment."""
    comments = comments or {}
    unknown = [n for n in names if n not in params and n not in RUNNER_SET]
    if unknown:
        raise ParametersError(f"parameter(s) {', '.join(unknown)} not in params/default.yaml: add them there first")
    lines = [HEADER]
    for name in [k for k in params if k in names]:
        comment = comments.get((name,)) or (SECRET_NOTE if name in project.SECRET_PARAMS else None)
        lines += _with_comment(_render(f"{name} = ", params[name], "", 0, (name,), comments), comment, 0)
    lines += [f"{name} = None  # {note}" for name, note in RUNNER_SET.items() if name in names]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- notebooks
def parameters_cell(nb: nbformat.NotebookNode, label: str = "notebook") -> nbformat.NotebookNode:
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ParametersError(f"{label}: {len(cells)} cells tagged 'parameters' (exactly one expected)")
    return cells[0]


def declared(source: str, label: str = "notebook") -> dict[str, Any]:
    """The names a parameters cell assigns, with their values (the cell must hold only ``name = literal`` lines)."""
    values: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise ParametersError(f"{label}: the parameters cell may hold only 'name = value' assignments")
        values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def expected_source(nb_path: Path, params_path: Path) -> tuple[str, str]:
    """(current source, rendered source) of a notebook's parameters cell."""
    cell = parameters_cell(nbformat.read(nb_path, as_version=4), nb_path.name)
    params = project.load_params(params_path)
    comments = yaml_comments(Path(params_path).read_text(encoding="utf-8"))
    return cell.source, render_cell(list(declared(cell.source, nb_path.name)), params, comments)


def update_notebooks(root: Path, params_path: Path, write: bool = True) -> list[Path]:
    """Notebooks whose parameters cell differs from its rendering; rewritten (only that cell) when ``write``."""
    changed = []
    for nb_path in project.notebooks(root):
        current, rendered = expected_source(nb_path, params_path)
        if current == rendered:
            continue
        changed.append(nb_path)
        if write:
            nb = nbformat.read(nb_path, as_version=4)
            parameters_cell(nb, nb_path.name).source = rendered
            nbformat.write(nb, nb_path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis_utils.runner.parameters", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params/default.yaml", help="params file the cells mirror")
    parser.add_argument("--check", action="store_true", help="only list the notebooks whose cell differs")
    args = parser.parse_args(argv)
    root = project.project_root()
    try:
        changed = update_notebooks(root, project.resolve(args.params, root), write=not args.check)
    except (ParametersError, project.ParamsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    verb = "differs" if args.check else "rewritten"
    for p in changed:
        print(f"{p.relative_to(root).as_posix()}: parameters cell {verb}")
    if not changed:
        print("every parameters cell mirrors " + args.params)
    return 1 if changed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
