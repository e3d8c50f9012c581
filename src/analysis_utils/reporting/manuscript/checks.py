"""Check that the manuscript resolves against a prepared run, before (and without) rendering it.

``check_references(root)`` lists every shortcode, include, embed, image, cross-reference label and citation key
that does not resolve, every variable value that is not formatted for reading, and every number typed by hand in
the article's prose (``hand_typed_numbers``). The tests use it; so can authors before rendering.
``resolve_text`` shows the article with its variables filled in, for proof-reading without Quarto.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from analysis_utils.reporting.manuscript.layout import GENERATED_DIR, QUARTO_CONFIG, QUARTO_PROJECT, VARIABLES_FILE

SHORTCODE_RE = re.compile(r"\{\{<\s*([\w-]+)\s*(.*?)\s*>\}\}", re.S)
LABEL_DEF_RE = re.compile(r"\{#([A-Za-z][\w-]*)[\s}]")
AT_RE = re.compile(r"(?<![\w@.`])-?@([A-Za-z0-9_][\w:.#$%&+?<>~/-]*)")
IMAGE_RE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)")
FENCE_RE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
INLINE_CODE_RE = re.compile(r"`[^`\n]*`")
COMMENT_RE = re.compile(r"<!--.*?-->", re.S)
BIB_KEY_RE = re.compile(r"@\w+\s*\{\s*([^,\s]+)\s*,")
BUILTIN_XREF = ("fig", "tbl", "sec", "lst", "eq", "thm", "lem", "cor", "prp", "cnj", "def", "exm", "exr", "sol",
                "rem")
FLOAT_XREF = ("fig", "tbl")
OTHER_SHORTCODES = ("pagebreak", "lipsum", "placeholder", "kbd", "video", "env", "version", "contents")
NOT_FORMATTED_RE = re.compile(r"\b(nan|NaN|None|inf|null)\b|\d\.\d{4,}")


def _front_matter(text: str) -> tuple[dict[str, Any], str]:
    """YAML front matter (or {}) and the body."""
    m = re.match(r"^---\s*\n(.*?)\n---\s*\n", text, re.S)
    if not m:
        return {}, text
    return yaml.safe_load(m.group(1)) or {}, text[m.end():]


def _strip_code(text: str) -> str:
    return INLINE_CODE_RE.sub(" ", FENCE_RE.sub(" ", COMMENT_RE.sub(" ", text)))


def _lookup(variables: dict[str, Any], dotted: str) -> Any:
    node: Any = variables
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def _notebook_cells(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8")).get("cells", [])


def _cell_label(cell: dict[str, Any]) -> str | None:
    src = "".join(cell.get("source", []))
    m = re.search(r"^#\|\s*label:\s*(\S+)", src, re.M)
    return m.group(1) if m else None


def _find_cells(path: Path, ident: str) -> list[dict[str, Any]]:
    """Quarto's embed lookup order: cell id, then ``#| label``, then tag."""
    cells = _notebook_cells(path)
    for match in (lambda c: c.get("id") == ident, lambda c: _cell_label(c) == ident,
                  lambda c: ident in c.get("metadata", {}).get("tags", [])):
        hits = [c for c in cells if match(c)]
        if hits:
            return hits
    return []


@dataclass
class _Scan:
    """Everything the manuscript sources use or define, gathered while following includes."""
    files: list[Path] = field(default_factory=list)
    vars_used: dict[str, list[str]] = field(default_factory=dict)
    labels: dict[str, list[str]] = field(default_factory=dict)
    refs: dict[str, list[str]] = field(default_factory=dict)
    cites: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _scan_file(path: Path, root: Path, doc_dir: Path, scan: _Scan, xref_types: tuple[str, ...],
               front: dict[str, Any]) -> None:
    """Shortcodes (var, include, embed, meta, built-ins), images, labels, cross-references and citations of one
    source file; includes of hand-written sources are followed, generated includes only checked to exist."""
    where = path.relative_to(root).as_posix()
    if path in scan.files:
        return
    scan.files.append(path)
    text = path.read_text(encoding="utf-8")
    generated = (root / GENERATED_DIR) in path.parents
    for m in SHORTCODE_RE.finditer(text):
        name, args = m.group(1), m.group(2).split()
        arg = args[0] if args else ""
        if name == "var":
            scan.vars_used.setdefault(arg, []).append(where)
        elif name == "include":
            target = (root / QUARTO_PROJECT / arg.lstrip("/")) if arg.startswith("/") else path.parent / arg
            if not target.is_file():
                scan.problems.append(f"{where}: include {arg} does not exist ({target})")
            elif target.suffix in (".qmd", ".md") and not generated:
                _scan_file(target, root, doc_dir, scan, xref_types, front)
        elif name == "embed":
            nb_rel, _, ident = arg.partition("#")
            nb = doc_dir / nb_rel
            if not nb.is_file():
                scan.problems.append(f"{where}: embed {arg}: notebook {nb} does not exist")
                continue
            cells = _find_cells(nb, ident) if ident else _notebook_cells(nb)
            if not cells:
                scan.problems.append(f"{where}: embed {arg}: no cell with id, label or tag '{ident}' in {nb.name}")
            elif not any(c.get("outputs") for c in cells if c.get("cell_type") == "code"):
                scan.problems.append(f"{where}: embed {arg}: the cell has no stored output (Quarto shows stored "
                                     "outputs only: embed the executed copy)")
            for c in cells:
                label = _cell_label(c)
                if label:
                    scan.labels.setdefault(label, []).append(f"{where} (embedded from {nb.name})")
        elif name == "meta":
            if arg.split(".")[0] not in front:
                scan.problems.append(f"{where}: meta {arg} is not in the document or project metadata")
        elif name not in OTHER_SHORTCODES:
            scan.problems.append(f"{where}: unknown shortcode '{name}'")
    if generated:
        return
    body = _strip_code(SHORTCODE_RE.sub(" ", text))
    for m in IMAGE_RE.finditer(body):
        target = m.group(1)
        if re.match(r"^[a-z]+://", target):
            continue
        if not (doc_dir / target).is_file():
            scan.problems.append(f"{where}: image {target} does not exist ({doc_dir / target})")
    for m in LABEL_DEF_RE.finditer(body):
        scan.labels.setdefault(m.group(1), []).append(where)
    for m in AT_RE.finditer(body):
        key = re.sub(r"[:.#$%&+?<>~/-]+$", "", m.group(1))
        prefix = key.split("-", 1)[0]
        if "-" in key and prefix in xref_types:
            scan.refs.setdefault(key, []).append(where)
            if body[m.end():m.end() + 1] == ";" and m.group(1) == key:
                scan.problems.append(f"{where}: @{key}; the PDF (Typst) swallows a ';' right after a cross-reference "
                                     "(write ',' or 'and', or end the sentence)")
        else:
            scan.cites.setdefault(key, []).append(where)


def _labelled_cell_outputs(path: Path, root: Path) -> list[str]:
    """A code cell labelled ``fig-...`` or ``tbl-...`` must hold exactly one stored output: Quarto 1.7 fails on
    more ('Block, list of Blocks, or compatible element expected, got table', quarto-cli #11883)."""
    where = path.relative_to(root).as_posix() if root in path.parents else path.name
    problems = []
    for cell in _notebook_cells(path):
        label = _cell_label(cell)
        if cell.get("cell_type") == "code" and label and label.split("-", 1)[0] in FLOAT_XREF:
            n = len(cell.get("outputs", []))
            if n != 1:
                problems.append(f"{where}: cell {label} has {n} outputs; a fig-/tbl- labelled cell must produce "
                                "exactly one (move prints and extra displays to an unlabelled cell)")
    return problems


def _bib_braces(text: str, name: str) -> list[str]:
    """An entry of a BibTeX file whose braces are still open where the next entry starts (or at the end): Pandoc
    stops the whole bibliography there ("unexpected '@'"), so every citation of the article fails."""
    problems, depth, start = [], 0, 0
    for i, line in enumerate(text.splitlines(), 1):
        if line.startswith("@"):
            if depth:
                problems.append(f"bibliography {name}:{start}: entry not closed before the next one (line {i})")
            depth, start = 0, i
        depth += line.count("{") - line.count("}")
    if depth:
        problems.append(f"bibliography {name}:{start}: entry not closed at the end of the file")
    return problems


def _as_list(x: Any) -> list[str]:
    return [] if x is None else [x] if isinstance(x, str) else [str(v) for v in x]


def check_references(root: str | Path) -> list[str]:
    """Every way the manuscript under ``root`` can fail to resolve against a prepared run, as readable problems:

    project config (article, notebooks, bibliography, CSL); ``{{< var >}}`` keys missing from ``_variables.yml`` or
    whose value is not formatted for reading (NaN, None, raw floats); ``{{< include >}}`` / ``{{< embed >}}``
    targets (embedded cells must exist and hold stored outputs); unknown shortcodes; image paths; duplicate labels;
    cross-references to undefined labels; figures and tables never cross-referenced; citation keys not in the
    bibliography; numbers typed by hand in the prose (``hand_typed_numbers``). An empty list means it resolves."""
    root = Path(root)
    proj = root / QUARTO_PROJECT
    problems: list[str] = []
    cfg_path = root / QUARTO_CONFIG
    if not cfg_path.is_file():
        return [f"{cfg_path} does not exist"]
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
    ms = cfg.get("manuscript", {}) or {}
    article = proj / str(ms.get("article", "index.qmd"))
    if not article.is_file():
        return [f"{QUARTO_CONFIG}: article {article} does not exist"]
    listed: set[str] = set()
    for nb in ms.get("notebooks", []) or []:
        nb_path = nb["notebook"] if isinstance(nb, dict) else nb
        listed.add(Path(nb_path).name)
        if not (proj / nb_path).is_file():
            problems.append(f"{QUARTO_CONFIG}: notebook {nb_path} does not exist (run prepare after a pipeline run)")
        else:
            problems += _labelled_cell_outputs(proj / nb_path, root)
    for nb in sorted((root / GENERATED_DIR / "notebooks").glob("*.ipynb")):
        if nb.name not in listed:
            problems.append(f"{QUARTO_CONFIG}: executed notebook {nb.name} is not listed under manuscript.notebooks "
                            f"(add '- notebook: _generated/notebooks/{nb.name}' with its title)")
    front, _ = _front_matter(article.read_text(encoding="utf-8"))
    meta = {**cfg, **front}
    bib_keys: set[str] = set()
    bibs = [(proj, b) for b in _as_list(cfg.get("bibliography"))] + \
           [(article.parent, b) for b in _as_list(front.get("bibliography"))]
    if not bibs:
        problems.append("no bibliography declared")
    for base, b in bibs:
        if not (base / b).is_file():
            problems.append(f"bibliography {b} does not exist")
        else:
            text = (base / b).read_text(encoding="utf-8")
            bib_keys |= set(BIB_KEY_RE.findall(text))
            problems += _bib_braces(text, b)
    for base, c in [(proj, cfg.get("csl")), (article.parent, front.get("csl"))]:
        if c and not (base / c).is_file():
            problems.append(f"CSL style {c} does not exist")
    custom = tuple(str(c.get("ref-type") or c.get("key")) for c in (cfg.get("crossref", {}) or {}).get("custom", [])
                   if c.get("kind") == "float")
    var_path = root / VARIABLES_FILE
    variables: dict[str, Any] = {}
    if var_path.is_file():
        variables = yaml.safe_load(var_path.read_text(encoding="utf-8")) or {}
    scan = _Scan()
    _scan_file(article, root, article.parent, scan, BUILTIN_XREF + custom, meta)
    problems += scan.problems
    if scan.vars_used and not var_path.is_file():
        problems.append(f"{VARIABLES_FILE} does not exist: run prepare (python -m analysis_utils manuscript)")
    elif scan.vars_used:
        for key, where in sorted(scan.vars_used.items()):
            try:
                value = _lookup(variables, key)
            except KeyError:
                problems.append(f"{where[0]}: var {key} is not in {VARIABLES_FILE}")
                continue
            if isinstance(value, (dict, list)):
                problems.append(f"{where[0]}: var {key} is a {type(value).__name__}, not a value")
            elif not str(value).strip():
                problems.append(f"{where[0]}: var {key} is empty")
            elif NOT_FORMATTED_RE.search(str(value)):
                problems.append(f"{where[0]}: var {key} = {value!r} is not formatted for reading")
            elif re.search(r"@[a-z]+-\w", str(value)):
                problems.append(f"{where[0]}: var {key} holds a cross-reference ({value!r}): Quarto does not resolve "
                                "it everywhere (the notebook pages warn); put the @-reference in the text")
    for label, where in sorted(scan.labels.items()):
        if len(where) > 1:
            problems.append(f"label {label} is defined {len(where)} times ({', '.join(where)})")
    for key, where in sorted(scan.refs.items()):
        if key not in scan.labels:
            problems.append(f"{where[0]}: cross-reference @{key} has no matching label")
    for label, where in sorted(scan.labels.items()):
        if label.split("-", 1)[0] in FLOAT_XREF + custom and label not in scan.refs:
            problems.append(f"{where[0]}: {label} is never cross-referenced in the text")
    for key, where in sorted(scan.cites.items()):
        if key not in bib_keys:
            problems.append(f"{where[0]}: citation @{key} is not in the bibliography")
    for f in scan.files:
        if (root / GENERATED_DIR) in f.parents:
            continue
        for line, snippet in hand_typed_numbers(f.read_text(encoding="utf-8"), checklist=f.name in CHECKLIST_FILES):
            problems.append(f"{f.relative_to(root).as_posix()}:{line}: number typed by hand: {snippet!r}")
    return problems


# --------------------------------------------------------------------------------------------------- hand-typed
# Names that contain digits but are not results: criteria versions, drug classes, the registration number, Vp
# grades, and the CTCAE grade thresholds that define the safety categories.
ALLOWED_NUMBER_TERMS = (r"RECIST 1\.1", r"CTCAE (v|version )?5\.0", r"PD-L?1", r"NCT06881433", r"\bVp[1-4]\b",
                        r"[Gg]rade ≥ ?3", r"[Gg]rade 5\b", r"SHA-256", r"ICH E9\(R1\)")
CHECKLIST_FILES = ("_strobe.qmd",)  # the STROBE checklist: item numbers allowed in the first column only
_ALLOWED_RE = re.compile("|".join(ALLOWED_NUMBER_TERMS))


def hand_typed_numbers(text: str, checklist: bool = False) -> list[tuple[int, str]]:
    """(line, snippet) of every digit in the prose that does not come from a variable, include or embed.

    Ignored: shortcodes, code, comments, labels and attributes ``{...}``, cross-references and citations, link and
    image targets, URLs, YAML front matter other than title, subtitle and abstract, ``ALLOWED_NUMBER_TERMS``, and in
    a checklist file the first cell of each table row (the STROBE item number)."""
    front, body = _front_matter(text)
    offset = text[: len(text) - len(body)].count("\n")
    prose = [(offset + i + 1, line) for i, line in enumerate(_strip_keep_lines(body).split("\n"))]
    for key in ("title", "subtitle", "abstract"):
        if isinstance(front.get(key), str):
            prose += [(1, line) for line in _strip_keep_lines(front[key]).split("\n")]
    found = []
    for n, line in prose:
        if checklist and line.lstrip().startswith("|"):
            line = re.sub(r"^\s*\|[^|]*\|", "|", line)
        clean = _ALLOWED_RE.sub(" ", line)
        clean = re.sub(r"\{[^{}]*\}", " ", clean)
        clean = re.sub(r"\]\([^)]*\)", "]", clean)
        clean = re.sub(r"https?://\S+", " ", clean)
        clean = AT_RE.sub(" ", clean)
        for m in re.finditer(r"\d", clean):
            found.append((n, clean[max(0, m.start() - 25): m.end() + 25].strip()))
            break
    return found


def _strip_keep_lines(text: str) -> str:
    """Remove shortcodes, code and comments but keep the line count (for line numbers in messages)."""
    blank = lambda m: re.sub(r"[^\n]", " ", m.group(0))  # noqa: E731
    for rx in (COMMENT_RE, FENCE_RE, SHORTCODE_RE, INLINE_CODE_RE):
        text = rx.sub(blank, text)
    return text


def resolve_text(root: str | Path, path: str | Path | None = None, includes: bool = False) -> str:
    """The article (or ``path``) with every ``{{< var >}}`` replaced by its value from ``_variables.yml``: what a
    reader sees, for tests and proof-reading without Quarto. With ``includes`` the hand-written include files
    (``_supplement.qmd``, ``_<topic>.qmd``) are inlined, resolved the same way; generated includes stay as
    shortcodes. Unknown keys are left as they are."""
    root = Path(root)
    cfg = yaml.safe_load((root / QUARTO_CONFIG).read_text(encoding="utf-8")) or {}
    target = Path(path) if path else root / QUARTO_PROJECT / str((cfg.get("manuscript") or {}).get("article",
                                                                                                    "index.qmd"))
    variables = yaml.safe_load((root / VARIABLES_FILE).read_text(encoding="utf-8")) or {}

    def resolve(file: Path, seen: tuple[Path, ...]) -> str:
        def sub(m: re.Match[str]) -> str:
            arg = m.group(2).split()[0] if m.group(2).split() else ""
            if m.group(1) == "var":
                try:
                    return str(_lookup(variables, arg))
                except KeyError:
                    return m.group(0)
            if m.group(1) == "include" and includes:
                inc = (root / QUARTO_PROJECT / arg.lstrip("/")) if arg.startswith("/") else file.parent / arg
                if inc.suffix in (".qmd", ".md") and inc.is_file() and inc not in seen and \
                        (root / GENERATED_DIR) not in inc.parents:
                    return resolve(inc, (*seen, inc))
            return m.group(0)
        return SHORTCODE_RE.sub(sub, file.read_text(encoding="utf-8"))
    return resolve(target, (target,))
