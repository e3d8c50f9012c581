"""Mutation testing of the derivation modules with mutmut (issue #18; a benchmark, not a CI test).

mutmut (https://github.com/boxed/mutmut, version 3) rewrites each function of a module into many small variants
(``<=`` -> ``<``, ``+ 1`` -> ``+ 2``, ``"x"`` -> ``"XXxXX"``, a removed argument, ...) and runs the tests that reach
that function against each one; a mutant that no test notices "survives". The share killed measures how much of
the module's behaviour the tests pin down.

The run happens in a temporary copy of the project (src/, tests/, params/, docs/, pyproject.toml with a
``[tool.mutmut]`` section added there), so the working tree never gets a mutants/ folder. mutmut is not a
dependency of the package: ``pip install mutmut`` (3.x) first.

    .venv/bin/pip install mutmut
    .venv/bin/python benchmarks/bench_mutation.py                               # endpoints.py and eligibility.py
    .venv/bin/python benchmarks/bench_mutation.py --modules eligibility --keep /tmp/mut   # keep the copy to inspect

Status and results: benchmarks/mutation.md. Survivors can be shown with ``mutmut show <name>`` inside the
kept copy.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPY = ("src", "tests", "params", "docs", "pyproject.toml", "setup.py")
MODULES = {"endpoints": "src/analysis_utils/study/endpoints.py", "eligibility": "src/analysis_utils/study/eligibility.py",
           "treatment": "src/analysis_utils/study/treatment.py"}
TESTS = ["tests/test_derivations_by_hand.py", "tests/test_eligibility_by_hand.py", "tests/test_pfs_rules.py",
         "tests/test_cleaning.py"]


def config_section(modules: list[str], tests: list[str], workers: int) -> str:
    def toml_list(xs: list[str]) -> str:
        return "[" + ", ".join(f'"{x}"' for x in xs) + "]"
    return ("\n[tool.mutmut]\n"
            'source_paths = ["src"]\n'
            f"only_mutate = {toml_list([MODULES[m] for m in modules])}\n"
            f"tests_dir = {toml_list(tests)}\n"
            'also_copy = ["params", "docs"]\n'
            'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n')


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modules", nargs="*", default=["endpoints", "eligibility"], choices=list(MODULES))
    ap.add_argument("--tests", nargs="*", default=TESTS)
    ap.add_argument("--workers", type=int, default=1, help="mutmut --max-children")
    ap.add_argument("--keep", help="run in this folder (kept) instead of a temporary one")
    args = ap.parse_args()
    if shutil.which("mutmut", path=str(Path(sys.executable).parent)) is None:
        raise SystemExit("mutmut is not installed in this environment: pip install mutmut")
    mutmut = str(Path(sys.executable).parent / "mutmut")
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mutation_"))
    tmp.mkdir(parents=True, exist_ok=True)
    for name in COPY:
        src, dest = ROOT / name, tmp / name
        if src.is_dir():
            shutil.copytree(src, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.exists():
            shutil.copy2(src, dest)
    with open(tmp / "pyproject.toml", "a", encoding="utf-8") as f:
        f.write(config_section(args.modules, args.tests, args.workers))
    t = time.perf_counter()
    run = subprocess.run([mutmut, "run", "--max-children", str(args.workers)], cwd=tmp, capture_output=True, text=True)
    (tmp / "mutmut_run.log").write_text(run.stdout + run.stderr, encoding="utf-8")
    res = subprocess.run([mutmut, "results", "--all", "true"], cwd=tmp, capture_output=True, text=True)
    (tmp / "mutmut_results.txt").write_text(res.stdout + res.stderr, encoding="utf-8")
    status_by_module: dict[str, Counter] = {}
    for line in res.stdout.splitlines():
        m = re.match(r"\s*(\S+): (\S.*)$", line)
        if not m:
            continue
        name, status = m.groups()
        module = next((k for k in MODULES if f".study.{k}." in name or name.startswith(f"analysis_utils.study.{k}")),
                      "other")
        status_by_module.setdefault(module, Counter())[status.strip()] += 1
    print(f"mutmut run: {time.perf_counter() - t:.0f} s in {tmp} (exit {run.returncode})")
    print("| Module | Mutants | Killed | Survived | Other (timeout, suspicious, no tests) | Share killed |")
    print("|---|---|---|---|---|---|")
    for module, c in sorted(status_by_module.items()):
        n = sum(c.values())
        other = n - c["killed"] - c["survived"]
        print(f"| {module} | {n} | {c['killed']} | {c['survived']} | {other} | {c['killed'] / n:.1%} |")
    if not args.keep:
        print(f"(copy left in {tmp} for `mutmut show <name>`; delete it when done)")
    return 0 if run.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
