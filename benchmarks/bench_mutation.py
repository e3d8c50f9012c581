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
    # a random sample of 40 mutants per derivation area (GROUPS), share killed with a Clopper-Pearson interval;
    # then, after adding tests, the same sample's survivors again (see run_sample and benchmarks/mutation.md)
    nice -n 19 .venv/bin/python benchmarks/bench_mutation.py --sample 40 --keep /tmp/mut_sample --results before.json
    nice -n 19 .venv/bin/python benchmarks/bench_mutation.py --sample 40 --keep /tmp/mut_sample --rerun before.json \
        --results after.json

Status and results: benchmarks/mutation.md. Survivors can be shown with ``mutmut show <name>`` inside the
kept copy.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import random
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
COPY = ("src", "tests", "params", "docs", "notebooks", "manuscript", ".gitignore", "pyproject.toml", "setup.py")
MODULES = {"endpoints": "src/analysis_utils/study/endpoints.py", "eligibility": "src/analysis_utils/study/eligibility.py",
           "treatment": "src/analysis_utils/study/treatment.py", "recist": "src/analysis_utils/study/recist.py",
           "ctcae": "src/analysis_utils/study/ctcae.py", "safety": "src/analysis_utils/steps/safety.py",
           "variables": "src/analysis_utils/reporting/manuscript/variables.py",
           "cleaning": "src/analysis_utils/study/cleaning.py", "recist_rules": "src/analysis_utils/study/recist_rules.py",
           "variables_outcomes": "src/analysis_utils/reporting/manuscript/variables_outcomes.py"}
# The fast test files that exercise each module (the cleaning tests run the whole cleaning step on small cohorts).
CLEANING_TESTS = ["tests/test_derivations_by_hand.py", "tests/test_eligibility_by_hand.py", "tests/test_pfs_rules.py",
                  "tests/test_cleaning.py"]
TESTS_BY_MODULE = {"endpoints": CLEANING_TESTS, "eligibility": CLEANING_TESTS, "treatment": CLEANING_TESTS,
                   "recist": ["tests/test_recist.py"], "ctcae": ["tests/test_ctcae.py", "tests/test_safety.py"],
                   "safety": ["tests/test_safety.py", "tests/test_ctcae.py"],
                   "variables": ["tests/test_manuscript_mapping.py"]}
# --sample: the derivation areas of issue #18, each a set of modules and the fast test files that exercise them.
GROUPS = {"cleaning": (["cleaning", "endpoints"], CLEANING_TESTS),
          "eligibility": (["eligibility"], CLEANING_TESTS),
          "recist": (["recist", "recist_rules"], ["tests/test_recist.py", "tests/test_derivations_by_hand.py"]),
          "safety": (["ctcae", "safety"], ["tests/test_ctcae.py", "tests/test_safety.py", "tests/test_safety_exposure.py"]),
          "manuscript": (["variables", "variables_outcomes"],
                         ["tests/test_manuscript_mapping.py", "tests/test_manuscript_outcomes.py",
                          "tests/test_manuscript.py"])}


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
            'also_copy = ["params", "docs", "notebooks", "manuscript", ".gitignore"]\n'
            'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-m", "not slow"]\n'
            # mutmut's wall-clock limit is (estimated test time + 1 s) x multiplier (15 by default); at nice 19 on a
            # shared machine a surviving mutant running whole test files exceeds it and would count as a timeout
            "timeout_multiplier = 60.0\n")


def make_copy(tmp: Path, modules: list[str], tests: list[str], root: Path = ROOT) -> None:
    """Copy the project at ``root`` into ``tmp`` and append the ``[tool.mutmut]`` section for these modules and test
    files."""
    tmp.mkdir(parents=True, exist_ok=True)
    for name in COPY:
        src, dest = root / name, tmp / name
        if src.is_dir():
            shutil.copytree(src, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.exists():
            shutil.copy2(src, dest)
    with open(tmp / "pyproject.toml", "a", encoding="utf-8") as f:
        f.write(config_section(modules, tests))


def module_of(name: str) -> str:
    """The MODULES key of a mutant name (longest dotted prefix wins: ``recist_rules`` before ``recist``)."""
    hits = [k for k in MODULES if name.startswith(dotted(k) + ".")]
    return max(hits, key=lambda k: len(dotted(k))) if hits else "other"


def mutant_statuses(mutmut: str, tmp: Path) -> dict[str, str]:
    """Every mutant of the copy and its status (``mutmut results --all true``; "not checked" before a run)."""
    res = subprocess.run([mutmut, "results", "--all", "true"], cwd=tmp, capture_output=True, text=True)
    (tmp / "mutmut_results.txt").write_text(res.stdout + res.stderr, encoding="utf-8")
    out = {}
    for line in res.stdout.splitlines():
        m = re.match(r"\s*(\S+): (\S.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


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


# mutmut passes a mutant's tests to pytest as node IDs. Given ~160 node IDs of hand-cohort tests, pytest takes 107 s
# of CPU where the same tests given as their 4 files take 14 s (measured on this machine, nice 19): the module-scoped
# cohorts are rebuilt. After widen_to_test_files every selection is made of whole test files, so this driver runs
# mutmut with the node IDs of a run replaced by their files (same tests, same -m "not slow" filter).
BY_FILE_DRIVER = """
import sys
from mutmut.runners import harness
_by_id = harness.PytestRunner._pytest_args_regular_run
harness.PytestRunner._pytest_args_regular_run = lambda self, tests: _by_id(self, sorted({t.split('::')[0] for t in tests}))
from mutmut.__main__ import cli
sys.argv[0] = 'mutmut'
sys.exit(cli())
"""


def run_mutmut(mutmut: str, tmp: Path, names: list[str], workers: int, max_minutes: float | None,
               log_name: str = "mutmut_run.log", by_file: bool = False) -> int:
    """``mutmut run [names]`` in ``tmp`` (log in ``tmp/log_name``); stopped after ``max_minutes`` (exit code -1).
    ``by_file``: through BY_FILE_DRIVER (only for widened statistics, where selections are whole files)."""
    cmd = [sys.executable, "-c", BY_FILE_DRIVER] if by_file else [mutmut]
    with open(tmp / log_name, "w", encoding="utf-8") as log:
        run = subprocess.Popen([*cmd, "run", "--max-children", str(workers), *names], cwd=tmp, stdout=log,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            return run.wait(timeout=max_minutes * 60 if max_minutes else None)
        except subprocess.TimeoutExpired:  # a partial run: the unchecked mutants stay "not checked"
            os.killpg(run.pid, signal.SIGTERM)
            run.wait()
            print(f"stopped after --max-minutes {max_minutes}: a PARTIAL run", flush=True)
            return -1


def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    """Exact (Clopper-Pearson) 95 % interval of a binomial share: statsmodels ``proportion_confint(method="beta")``,
    the interval of R's ``binom.test``."""
    from statsmodels.stats.proportion import proportion_confint
    lo, hi = proportion_confint(k, n, alpha=0.05, method="beta")
    return float(lo), float(hi)


def draw_sample(names: list[str], n: int, seed: int, group: str) -> list[str]:
    """A simple random sample (without replacement) of ``n`` mutant names; the same names, seed and group give the
    same sample (mutmut names its mutants deterministically from the source, so the same source gives the same
    names)."""
    rng = random.Random(f"{seed}:{group}")
    return sorted(rng.sample(sorted(names), min(n, len(names))))


def peak_child_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def write_results(args: argparse.Namespace, results: dict[str, dict]) -> float:
    """Write the per-area results of ``--sample`` to ``args.results`` (JSON); returns the peak child memory (MB)."""
    peak_mb = peak_child_mb()
    doc = {"mutmut": "3.8", "sample_per_group": args.sample, "seed": args.seed, "rerun_of": args.rerun,
           "root": "this checkout" if Path(args.root) == ROOT else "an export (--root)",
           "peak_child_rss_mb": round(peak_mb), "groups": results}
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return peak_mb


def run_sample(args: argparse.Namespace, mutmut: str, out: Path) -> int:
    """``--sample N``: per group of GROUPS, generate every mutant, draw N at random and run only those.

    Each group runs in its own copy (``out/<group>``) with its own test files and mutmut statistics, widened to whole
    test files (widen_to_test_files). Generating the mutants and collecting the statistics without running any
    mutant: ``mutmut run`` with a name that matches no mutant, which stops (an assertion in mutmut 3.8) after both
    steps; the statistics file is checked afterwards. With ``--rerun FILE`` (the JSON of an earlier sample run on the
    same source) only its survivors and no-test mutants are run again and the other statuses are carried over: a
    before -> after comparison on the same sample (pass the same ``--keep`` folder: mutmut then collects the
    statistics of the new tests only). Without ``--rerun`` a kept folder resumes: sampled mutants already killed or
    survived there are not run again (``wall_s`` then covers the resumed part only)."""
    before = json.loads(Path(args.rerun).read_text(encoding="utf-8")) if args.rerun else None
    results: dict[str, dict] = {}
    for group in args.groups:
        modules, tests = GROUPS[group]
        tmp = out / group
        t0 = time.perf_counter()
        make_copy(tmp, modules, tests, Path(args.root))
        run_mutmut(mutmut, tmp, ["__generate_and_collect_stats_only__"], args.workers, None, "mutmut_generate.log",
                   by_file=True)
        stats = tmp / "mutants" / "mutmut-stats.json"
        if not stats.exists():
            raise SystemExit(f"{group}: mutmut did not collect its statistics; see {tmp / 'mutmut_generate.log'}")
        widen_to_test_files(stats)
        everything = {n: st for n, st in mutant_statuses(mutmut, tmp).items() if module_of(n) in modules}
        sample = draw_sample(list(everything), args.sample, args.seed, group)
        if before is not None:
            prev = before["groups"][group]
            if prev["sample"] != sample:
                raise SystemExit(f"{group}: the sample differs from the one in {args.rerun} (source changed?)")
            # a re-run resumes too: a mutant the new tests already killed in this folder is not run again
            to_run = [n for n in sample if prev["status"][n] in ("survived", "no tests") and everything[n] != "killed"]
        else:  # a kept folder resumes: mutants already killed or survived there are not run again
            to_run = [n for n in sample if everything[n] not in ("killed", "survived")]
        if args.only:
            to_run = [n for n in to_run if any(fnmatch.fnmatch(n, g) for g in args.only)]
        tests_by_fn = json.loads(stats.read_text(encoding="utf-8"))["tests_by_mangled_function_name"]
        no_tests = [n for n in to_run if not tests_by_fn.get(n.partition("__mutmut_")[0])]
        run = [n for n in to_run if n not in no_tests]
        print(f"{group}: {len(everything)} mutants, sample {len(sample)}, running {len(run)} "
              f"({len(no_tests)} without tests) in {tmp}", flush=True)
        code = run_mutmut(mutmut, tmp, run, args.workers, args.max_minutes, by_file=True) if run else 0
        now = mutant_statuses(mutmut, tmp)
        # before survivors and no-test mutants: their status in the folder now (re-run here or earlier); the others
        # keep their before status (a killed mutant stays killed)
        again = set(sample) if before is None else {n for n in sample if prev["status"][n] in ("survived", "no tests")}
        status = {n: "no tests" if n in no_tests else now[n] if n in again else prev["status"][n] for n in sample}
        c = Counter(status.values())
        k, n = c["killed"], len(sample)
        lo, hi = clopper_pearson(k, n)
        results[group] = {
            "modules": {m: MODULES[m] for m in modules}, "tests": tests,
            "generated": dict(Counter(module_of(x) for x in everything)), "n_generated": len(everything),
            "sample": sample, "status": status, "run": len(run), "counts": dict(c), "killed": k, "n": n,
            "share_killed": k / n, "ci95": [lo, hi], "wall_s": round(time.perf_counter() - t0, 1), "mutmut_exit": code,
            "before": None if before is None else {key: before["groups"][group][key]
                                                   for key in ("killed", "n", "share_killed", "ci95", "counts")}}
        if args.results:  # after every area, so that a run stopped early keeps the areas it finished
            write_results(args, results)
    peak_mb = write_results(args, results) if args.results else peak_child_mb()
    print(f"seed {args.seed}, {args.sample} mutants per group; peak memory of a child process {peak_mb:.0f} MB")
    print("| Group | Generated | Sampled | Run | Killed | Survived | Timeout | No tests | Other | Killed share (95 % CI) "
          "| Before | Wall |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for group, r in results.items():
        c = Counter(r["counts"])
        other = r["n"] - c["killed"] - c["survived"] - c["timeout"] - c["no tests"]
        gen = ", ".join(f"{m} {k}" for m, k in sorted(r["generated"].items()))
        b = r["before"]
        was = "" if b is None else f"{b['share_killed']:.1%} ({b['ci95'][0]:.1%}–{b['ci95'][1]:.1%})"
        print(f"| {group} | {r['n_generated']} ({gen}) | {r['n']} | {r['run']} | {c['killed']} | {c['survived']} "
              f"| {c['timeout']} | {c['no tests']} | {other} | {r['share_killed']:.1%} ({r['ci95'][0]:.1%}–"
              f"{r['ci95'][1]:.1%}) | {was} | {r['wall_s']:.0f} s |")
        for name in (x for x, st in r["status"].items() if st not in ("killed",)):
            print(f"    {r['status'][name]}: {name}")
    return 0


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
    ap.add_argument("--sample", type=int,
                    help="run a simple random sample of this many mutants per group of GROUPS (see run_sample)")
    ap.add_argument("--seed", type=int, default=20261201, help="seed of --sample")
    ap.add_argument("--groups", nargs="*", default=list(GROUPS), choices=list(GROUPS), help="groups of --sample")
    ap.add_argument("--rerun", help="with --sample: JSON of an earlier sample run; re-run its survivors only")
    ap.add_argument("--root", default=str(ROOT),
                    help="project folder to copy (default: this checkout); e.g. a `git archive` export of an earlier "
                         "commit, to measure its tests")
    ap.add_argument("--results", help="with --sample: write the per-group results (JSON) here")
    args = ap.parse_args()
    tests = args.tests or sorted({t for m in args.modules for t in TESTS_BY_MODULE[m]})
    if shutil.which("mutmut", path=str(Path(sys.executable).parent)) is None:
        raise SystemExit("mutmut is not installed in this environment: pip install mutmut")
    mutmut = str(Path(sys.executable).parent / "mutmut")
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mutation_"))
    if args.sample:
        return run_sample(args, mutmut, tmp)
    make_copy(tmp, args.modules, tests)
    t = time.perf_counter()
    if args.widen:  # widen the stats of a previous run in the same --keep folder (re-run its survivors with --only)
        stats = tmp / "mutants" / "mutmut-stats.json"
        if not stats.exists():
            raise SystemExit("--widen needs the --keep folder of a previous run (its mutants/mutmut-stats.json)")
        print(f"--widen: {widen_to_test_files(stats)} test selections added", flush=True)
    print(f"mutmut run in {tmp} (progress: {tmp / 'mutmut_run.log'})", flush=True)
    code = run_mutmut(mutmut, tmp, args.only, args.workers, args.max_minutes)
    status_by_module: dict[str, Counter] = {}
    for name, status in mutant_statuses(mutmut, tmp).items():
        status_by_module.setdefault(module_of(name), Counter())[status] += 1
    print(f"mutmut run: {time.perf_counter() - t:.0f} s wall in {tmp} (exit {code}); tests: {' '.join(tests)}")
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
    return 0 if code == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
