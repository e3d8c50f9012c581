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
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPY = ("src", "tests", "params", "docs", "notebooks", "pyproject.toml", "setup.py")
MODULES = {"endpoints": "src/analysis_utils/study/endpoints.py", "eligibility": "src/analysis_utils/study/eligibility.py",
           "treatment": "src/analysis_utils/study/treatment.py", "recist": "src/analysis_utils/study/recist.py",
           "ctcae": "src/analysis_utils/study/ctcae.py", "safety": "src/analysis_utils/steps/safety.py",
           "variables": "src/analysis_utils/reporting/manuscript/variables.py"}
# The fast test files that exercise each module (the cleaning tests run the whole cleaning step on small cohorts).
CLEANING_TESTS = ["tests/test_derivations_by_hand.py", "tests/test_eligibility_by_hand.py", "tests/test_pfs_rules.py",
                  "tests/test_cleaning.py"]
TESTS_BY_MODULE = {"endpoints": CLEANING_TESTS, "eligibility": CLEANING_TESTS, "treatment": CLEANING_TESTS,
                   "recist": ["tests/test_recist.py"], "ctcae": ["tests/test_ctcae.py", "tests/test_safety.py"],
                   "safety": ["tests/test_safety.py", "tests/test_ctcae.py"],
                   "variables": ["tests/test_manuscript_mapping.py"]}


def dotted(module: str) -> str:
    """``src/analysis_utils/study/endpoints.py`` -> ``analysis_utils.study.endpoints`` (mutmut's mutant-name prefix)."""
    return MODULES[module].removeprefix("src/").removesuffix(".py").replace("/", ".")


def config_section(modules: list[str], tests: list[str]) -> str:
    def toml_list(xs: list[str]) -> str:
        return "[" + ", ".join(f'"{x}"' for x in xs) + "]"
    return ("\n[tool.mutmut]\n"
            'source_paths = ["src"]\n'
            f"only_mutate = {toml_list([MODULES[m] for m in modules])}\n"
            f"pytest_add_cli_args_test_selection = {toml_list(tests)}\n"
            'also_copy = ["params", "docs", "notebooks"]\n'
            'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n')


def widen_to_test_files(stats_path: Path) -> int:
    """Give every mutated function all tests of the test files that reach it (returns the tests added).

    mutmut runs, for each mutant, only the tests that called the mutated function while it collected its stats. A
    function called while a module-scoped fixture is built (the hand-built cohorts are cleaned once per test module)
    is recorded for the first test that requested the fixture only, so the tests that check its output (OS, PFS,
    eligibility of every hand-built patient) never run against its mutants, which then "survive" falsely. This
    widens the selection to whole test files."""
    data = json.loads(stats_path.read_text(encoding="utf-8"))
    by_file: dict[str, set[str]] = {}
    for test in data["duration_by_test"]:
        by_file.setdefault(test.split("::")[0], set()).add(test)
    added = 0
    for name, tests in data["tests_by_mangled_function_name"].items():
        wide = set(tests).union(*(by_file.get(t.split("::")[0], set()) for t in tests))
        added += len(wide) - len(tests)
        data["tests_by_mangled_function_name"][name] = sorted(wide)
    stats_path.write_text(json.dumps(data, indent=4), encoding="utf-8")
    return added


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modules", nargs="*", default=["endpoints", "eligibility"], choices=list(MODULES))
    ap.add_argument("--tests", nargs="*", help="test files (default: those of TESTS_BY_MODULE for the modules)")
    ap.add_argument("--workers", type=int, default=1, help="mutmut --max-children")
    ap.add_argument("--max-minutes", type=float, help="stop mutmut after this long and report the partial run")
    ap.add_argument("--only", nargs="*", default=[],
                    help="mutant-name globs passed to `mutmut run` (e.g. 'analysis_utils.study.endpoints.x_apply_pfs_rules*')")
    ap.add_argument("--widen", action="store_true",
                    help="with --keep of a previous run: run mutants against every test of the test files reaching "
                         "them (see widen_to_test_files); pass the survivors with --only to re-run them")
    ap.add_argument("--keep", help="run in this folder (kept) instead of a temporary one")
    args = ap.parse_args()
    tests = args.tests or sorted({t for m in args.modules for t in TESTS_BY_MODULE[m]})
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
        f.write(config_section(args.modules, tests))
    t = time.perf_counter()
    if args.widen:  # widen the stats of a previous run in the same --keep folder (re-run its survivors with --only)
        stats = tmp / "mutants" / "mutmut-stats.json"
        if not stats.exists():
            raise SystemExit("--widen needs the --keep folder of a previous run (its mutants/mutmut-stats.json)")
        print(f"--widen: {widen_to_test_files(stats)} test selections added", flush=True)
    print(f"mutmut run in {tmp} (progress: {tmp / 'mutmut_run.log'})", flush=True)
    with open(tmp / "mutmut_run.log", "w", encoding="utf-8") as log:
        run = subprocess.Popen([mutmut, "run", "--max-children", str(args.workers), *args.only], cwd=tmp, stdout=log,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            run.wait(timeout=args.max_minutes * 60 if args.max_minutes else None)
        except subprocess.TimeoutExpired:  # a partial run: the unchecked mutants are reported as "not checked"
            os.killpg(run.pid, signal.SIGTERM)
            run.wait()
            print(f"stopped after --max-minutes {args.max_minutes}: a PARTIAL run", flush=True)
    res = subprocess.run([mutmut, "results", "--all", "true"], cwd=tmp, capture_output=True, text=True)
    (tmp / "mutmut_results.txt").write_text(res.stdout + res.stderr, encoding="utf-8")
    status_by_module: dict[str, Counter] = {}
    for line in res.stdout.splitlines():
        m = re.match(r"\s*(\S+): (\S.*)$", line)
        if not m:
            continue
        name, status = m.groups()
        module = next((k for k in MODULES if name.startswith(dotted(k) + ".")), "other")
        status_by_module.setdefault(module, Counter())[status.strip()] += 1
    print(f"mutmut run: {time.perf_counter() - t:.0f} s wall in {tmp} (exit {run.returncode}); tests: {' '.join(tests)}")
    print("| Module | Mutants | Killed | Survived | Timeout | No tests | Other | Share killed | Killed of checked |")
    print("|---|---|---|---|---|---|---|---|---|")
    for module, c in sorted(status_by_module.items()):
        n = sum(c.values())
        other = n - c["killed"] - c["survived"] - c["timeout"] - c["no tests"]  # e.g. "not checked"
        print(f"| {module} | {n} | {c['killed']} | {c['survived']} | {c['timeout']} | {c['no tests']} | {other} "
              f"| {c['killed'] / n:.1%} | {c['killed'] / max(n - c['not checked'], 1):.1%} |")
        if other:
            print(f"  other statuses of {module}: {dict(c)}")
    if not args.keep:
        print(f"(copy left in {tmp} for `mutmut show <name>`; delete it when done)")
    return 0 if run.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
