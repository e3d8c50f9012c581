"""The package's layers, drawn from the code's own imports (docs/architecture.md).

Each top-level folder of ``analysis_utils`` is a layer and may import only the layers listed for it below; the
import graph between modules has no cycle; no module grows past the size limit; no docstring or data file points
to a path outside the repository.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "analysis_utils"
ROOT = PKG.parents[1]

#: layer -> the layers it may import (besides itself). Study-independent statistics at the bottom, the runner on top.
ALLOWED = {
    "stats": set(),
    "study": {"stats"},
    "synthetic": {"study"},
    "steps": {"stats", "study"},
    "reporting": {"stats", "study", "steps"},
    "simulation": {"stats", "study", "synthetic", "steps", "reporting"},
    "runner": {"stats", "study", "synthetic", "steps", "reporting", "simulation"},
}
MAX_LINES = 800


def _modules() -> dict[str, Path]:
    out = {}
    for f in sorted(PKG.rglob("*.py")):
        rel = f.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of this package imported anywhere in the file (also inside functions), resolved to known modules."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" for a in node.names] + [mod]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t.startswith("analysis_utils") and t != name:
                found.add(t)
    return found


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {m: _imports(m, p, known) for m, p in mods.items()}


def test_every_module_sits_in_a_layer():
    top = {m for m in _modules() if _layer(m) is None}
    assert top <= {"analysis_utils", "analysis_utils.__main__"}, (
        f"modules outside the layer folders {sorted(ALLOWED)}: {sorted(top - {'analysis_utils', 'analysis_utils.__main__'})}")


def test_imports_point_down_the_layers(graph):
    bad = []
    for mod, deps in graph.items():
        src = _layer(mod)
        if src is None:
            continue
        for dep in deps:
            dst = _layer(dep)
            if dst is not None and dst != src and dst not in ALLOWED[src]:
                bad.append(f"{mod} -> {dep} ({src} may import only {sorted(ALLOWED[src]) or 'nothing'})")
    assert not bad, "imports that point up or sideways:\n" + "\n".join(sorted(bad))


def test_no_import_cycles(graph):
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if dep.startswith(node + ".") or node.startswith(dep + "."):
                continue  # a package and its own submodules
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep] if dep in stack else [node, dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_modules_stay_small():
    big = {str(p.relative_to(ROOT)): n for p in PKG.rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines (split them by concept): {big}"


def test_stats_knows_nothing_of_this_study():
    """stats/ is general: no arm names, no study columns, no study files."""
    words = re.compile(r"HAIC|TKIs-P|study_id|center_id|recist|mrecist|ctcae|child_pugh|bclc", re.IGNORECASE)
    hits = []
    for f in sorted((PKG / "stats").rglob("*.py")):
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if words.search(line):
                hits.append(f"{f.relative_to(ROOT)}:{i}: {line.strip()[:100]}")
    assert not hits, "study-specific names in stats/:\n" + "\n".join(hits)


def test_no_reference_outside_the_repository():
    """Docstrings, data files and docs cite the repository's own pages (docs/methods/), never ../shared."""
    pattern = re.compile(r"\.\./shared|shared/reference|clinical-rules\.md|clinical-calibration\.md|"
                         r"conventions-and-pitfalls\.md")
    files = [*PKG.rglob("*.py"), *PKG.rglob("*.yaml"), *(ROOT / "docs").rglob("*.md"), *(ROOT / "notebooks").glob("*.ipynb"),
             *(ROOT / "manuscript").glob("*.qmd"), ROOT / "README.md",
             *(f for f in (ROOT / "tests").rglob("*.py") if f.name != Path(__file__).name)]
    hits = [f"{f.relative_to(ROOT)}:{i}" for f in files if f.is_file()
            for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert not hits, "references to files outside the repository:\n" + "\n".join(hits)


def test_cited_method_pages_exist():
    """Every ``docs/methods/<page>.md`` cited in the package exists."""
    cited = set()
    for f in [*PKG.rglob("*.py"), *PKG.rglob("*.yaml")]:
        cited |= set(re.findall(r"docs/methods/[\w\-]+\.md", f.read_text(encoding="utf-8")))
    missing = sorted(c for c in cited if not (ROOT / c).is_file())
    assert not missing, f"cited method pages that do not exist: {missing}"
