"""Planted-bug benchmark of the derivation tests (issue #18; not a CI test).

Each bug below is a one-line text patch of the package (or of params/default.yaml) that a reviewer might plant to
see whether the test suite notices a change that would alter the paper. For each bug the script copies the project
(src/, tests/, params/, docs/, pyproject.toml) to a temporary folder, applies the patch there (the working tree is
never touched), runs the hand-built derivation tests and the older derivation tests against the copy
(``PYTHONPATH`` puts the copy's src/ before the editable install) and prints whether each set **killed** the bug
(at least one test failed) or let it **survive**. Results and their reading: benchmarks/planted_bugs.md.

    .venv/bin/python benchmarks/bench_planted_bugs.py                 # every bug, both test sets (~15 min)
    .venv/bin/python benchmarks/bench_planted_bugs.py --only pfs_death_not_event --sets new
    .venv/bin/python benchmarks/bench_planted_bugs.py --markdown      # the table of benchmarks/planted_bugs.md
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPY = ("src", "tests", "params", "docs", "pyproject.toml", "setup.py")
TEST_SETS = {
    "new": ["tests/test_derivations_by_hand.py", "tests/test_eligibility_by_hand.py"],
    "old": ["tests/test_cleaning.py", "tests/test_pfs_rules.py"],
}
EP, EL, TR, OS_ = ("src/analysis_utils/study/endpoints.py", "src/analysis_utils/study/eligibility.py",
                   "src/analysis_utils/study/treatment.py", "src/analysis_utils/study/endpoints.py")


@dataclass(frozen=True)
class Bug:
    name: str
    what: str
    path: str  # relative to the project root
    old: str   # must occur exactly once in the file
    new: str
    listed: bool = False  # one of the bugs named in issue #18


BUGS: tuple[Bug, ...] = (
    # --- the bugs of issue #18
    Bug("pfs_death_not_event", "death not counted as a PFS event (E = first PD only)", EP,
        "end = np.fmin(first_pd, death)", "end = first_pd.copy()", True),
    Bug("pfs_censor_at_t0", "PFS censoring always at time zero (alive without PD censored at day 0)", EP,
        "last_adequate(np.full(n, np.nan), strict=False))", "np.zeros(n))", True),
    Bug("pfs_pd_after_cutoff", "progression after the data cut-off counted", EP,
        "keep = day <= cut[tp_pos]", "keep = day == day", True),
    Bug("cp_c_at_11", "Child-Pugh C at >= 11 points instead of >= 10", EL,
        "out[(known + n_miss) >= 10] = True", "out[(known + n_miss) >= 11] = True", True),
    Bug("haic_window_lt_90", "naive HAIC window < 90 instead of <= 90 days", TR,
        't["haic_offset_days"] <= cfg.haic_window_days', 't["haic_offset_days"] < cfg.haic_window_days', True),
    Bug("grace_lt_g", "grace period: HAIC < G instead of <= G (deviation days)", TR,
        "haic_by_g = np.nan_to_num(haic_day, nan=np.inf) <= g", "haic_by_g = np.nan_to_num(haic_day, nan=np.inf) < g",
        True),
    Bug("combination_gap_90_code", "combination gap 30 -> 90 days (in the code)", TR,
        ".where(gap <= cfg.combination_max_gap_days)", ".where(gap <= 90)", True),
    Bug("combination_gap_90_params", "combination gap 30 -> 90 days (in params/default.yaml)", "params/default.yaml",
        "combination_max_gap_days: 30 ", "combination_max_gap_days: 90 ", True),
    Bug("haic_after_75_control", "first HAIC more than 75 days after T0 sent to TKIs-P (naive classification)", TR,
        't["haic_offset_days"] <= cfg.haic_window_days', 't["haic_offset_days"] <= min(cfg.haic_window_days, 75)',
        True),
    Bug("haic_after_75_grace", "first HAIC more than 75 days after T0 counted as no HAIC (deviation days)", TR,
        "haic_by_g = np.nan_to_num(haic_day, nan=np.inf) <= g",
        "haic_by_g = np.nan_to_num(haic_day, nan=np.inf) <= min(g, 75)", True),
    Bug("blank_haic_dropped", "HAIC session with a blank/unreadable date dropped silently", TR,
        "unknown = undated_haic(haic, log).astype(bool)",
        'unknown = undated_haic(haic.dropna(subset=["haic_date"]), log).astype(bool)', True),
    Bug("mrecist_from_recist", "mRECIST PFS derived from the RECIST 1.1 time points", EP,
        "pfs = apply_pfs_rules(pts, res.timepoints, cfg.data_cutoff, rules, **opts)",
        'pfs = apply_pfs_rules(pts, extra.get("response_timepoints_recist", res.timepoints), cfg.data_cutoff, '
        "rules, **opts)", True),
    # --- further bugs of the same kind
    Bug("pfs_death_event_flag", "death without PD censored (event flag only for PD)", EP,
        "event = np.isin(rule, [PFS_EVENT_PD, PFS_EVENT_DEATH, PFS_EVENT_EARLY_DEATH])",
        "event = np.isin(rule, [PFS_EVENT_PD, PFS_EVENT_EARLY_DEATH])"),
    Bug("pfs_death_after_cutoff", "death after the data cut-off counted as a PFS event", EP,
        "death = np.where(death <= cut, death, np.nan)", "death = death"),
    Bug("pfs_missed_gt", "missed-assessment rule needs > 2 instead of >= 2 missed", EP,
        "(n_missed >= rules.missed_assessments)", "(n_missed > rules.missed_assessments)"),
    Bug("pfs_missed_window", "a scheduled day counts as missed when s + w <= E (not s + w < E)", EP,
        'end - w), side="left")', 'end - w), side="right")'),
    Bug("pfs_early_death_lt", "early death window < 49 instead of <= 49 days", EP,
        "(death <= rules.first_window_end)", "(death < rules.first_window_end)"),
    Bug("pfs_a_includes_pd", "last adequate assessment A may be the PD visit itself", EP,
        "a_end = last_adequate(end, strict=True)", "a_end = last_adequate(end, strict=False)"),
    Bug("pfs_newtx_any_agent", "a restart of the initial PD-1 agent counted as a new anticancer therapy", EP,
        '(c["agent"] != c["tki_agent"]) & (c["agent"] != c["pd1_agent"])', '(c["agent"] != c["tki_agent"])'),
    Bug("pfs_newtx_on_t0", "a course of a new agent started on time zero counted as a new therapy", EP,
        'c["start_date"] > c["index_date"]', 'c["start_date"] >= c["index_date"]'),
    Bug("os_death_on_cutoff_censored", "OS: a death on the cut-off day censored", OS_,
        'after_cut = end > cfg.data_cutoff', 'after_cut = end >= cfg.data_cutoff'),
    Bug("os_alive_at_cutoff", "OS: patients alive censored at the cut-off instead of the last contact", OS_,
        'end = df["death_date"].where(df["death_date"].notna(), df["last_contact_date"])',
        'end = df["death_date"].where(df["death_date"].notna(), cfg.data_cutoff)'),
    Bug("cp_max_2_per_missing", "Child-Pugh: a missing component counted as at most 2 points", EL,
        "out[(known + 3 * n_miss) < 10] = False", "out[(known + 2 * n_miss) < 10] = False"),
    Bug("blank_fails", "a blank eligibility field fails its criterion", EL,
        "out[blank.to_numpy(bool)] = pd.NA", "out[blank.to_numpy(bool)] = True"),
    Bug("ecog_ge_2", "ECOG 2 excluded (>= 2 instead of > 2)", EL,
        'f["ecog_above_2"] = _state(ecog > 2,', 'f["ecog_above_2"] = _state(ecog >= 2,'),
    Bug("encephalopathy_any", "any encephalopathy excluded (grade 1-2 too)", EL,
        'f["severe_encephalopathy"] = _state(enc.eq("grade_3_4"),',
        'f["severe_encephalopathy"] = _state(enc.isin(["grade_1_2", "grade_3_4"]),'),
    Bug("bclc_only_d", "BCLC: only D excluded (A kept)", EL,
        'bclc.notna() & ~bclc.isin(["B", "C"])', 'bclc.eq("D")'),
    Bug("histology_list", "fibrolamellar histology not excluded", EL,
        'EXCLUDED_HISTOLOGY = ("cholangiocarcinoma", "fibrolamellar", "sarcomatoid"',
        'EXCLUDED_HISTOLOGY = ("cholangiocarcinoma", "sarcomatoid"'),
    Bug("t0_first_systemic", "time zero = first systemic dose (HAIC before it ignored)", TR,
        't0 = t[["first_haic_date", "first_systemic_date"]].min(axis=1)', 't0 = t["first_systemic_date"]'),
    Bug("arm_haic_within_90", "arm HAIC-TKIs-P for any HAIC within 90 days (immortal time)", TR,
        't["arm"] = np.where(t["haic_offset_days"].eq(0), ARM_HAIC, ARM_CONTROL)',
        't["arm"] = np.where(t["haic_offset_days"].between(0, 90), ARM_HAIC, ARM_CONTROL)'),
    Bug("combination_gap_signed", "combination gap signed (PD-1 first always a combination)", TR,
        'gap = (t["first_aa_date"] - t["first_ici_date"]).dt.days.abs()',
        'gap = (t["first_aa_date"] - t["first_ici_date"]).dt.days'),
    Bug("baseline_window_41", "baseline scan window [T0 - 41, T0] instead of [T0 - 42, T0]",
        "src/analysis_utils/study/recist.py", "(v_day >= idx - window)", "(v_day > idx - window)"),
    Bug("measurable_gt_10", "measurable lesion > 10 mm instead of >= 10 mm", "src/analysis_utils/study/baseline.py",
        'at_base[at_base["ld_mm"] >= 10]', 'at_base[at_base["ld_mm"] > 10]'),
    Bug("age_days_365", "age at T0 as floor(days / 365.25) (one year short on some birthdays)",
        "src/analysis_utils/study/cleaning.py",
        "return (at.dt.year - birth.dt.year - before_birthday.astype(int)).astype(float)",
        "return np.floor((at - birth).dt.days / 365.25)"),
    Bug("start_on_cutoff_fails", "treatment started on the cut-off day fails start_after_death_or_cutoff",
        "src/analysis_utils/study/cleaning.py", 'after_cut = p["index_date"].notna() & (p["index_date"] > cfg.data_cutoff)',
        'after_cut = p["index_date"].notna() & (p["index_date"] >= cfg.data_cutoff)'),
)


def make_copy(dest: Path, source: Path = ROOT) -> None:
    for name in COPY:
        src = source / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
        elif src.exists():
            shutil.copy2(src, dest / name)


def plant(dest: Path, bug: Bug) -> None:
    path = dest / bug.path
    text = path.read_text(encoding="utf-8")
    if text.count(bug.old) != 1:
        raise SystemExit(f"{bug.name}: the text to patch occurs {text.count(bug.old)} times in {bug.path} "
                         "(the code moved: update the bug)")
    path.write_text(text.replace(bug.old, bug.new), encoding="utf-8")


def run_tests(dest: Path, tests: list[str]) -> tuple[str, str]:
    env = dict(os.environ, PYTHONPATH=str(dest / "src"), PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    proc = subprocess.run(cmd, cwd=dest, env=env, capture_output=True, text=True, timeout=1200)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("FAILED") or ln.startswith("ERROR")]
    if proc.returncode == 0:
        return "survived", ""
    if proc.returncode == 1:
        return "killed", (lines[0].split(" - ")[0].removeprefix("FAILED ") if lines else "")
    return "error", (proc.stdout + proc.stderr)[-400:]


def check_copy_is_used(dest: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(dest / "src"))
    out = subprocess.run([sys.executable, "-c", "import analysis_utils; print(analysis_utils.__file__)"], cwd=dest,
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    if not out.startswith(str(dest)):
        raise SystemExit(f"the temporary copy is not imported ({out}): the benchmark would test the working tree")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", help="bug names (default: all)")
    ap.add_argument("--sets", nargs="*", default=list(TEST_SETS), choices=list(TEST_SETS))
    ap.add_argument("--markdown", action="store_true", help="print a markdown table at the end")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unpatched sanity run")
    args = ap.parse_args()
    bugs = [b for b in BUGS if not args.only or b.name in args.only]
    results = []
    with tempfile.TemporaryDirectory(prefix="planted_") as tmp:
        base = Path(tmp) / "baseline"   # one snapshot: edits to the working tree during the run change nothing
        make_copy(base)
        check_copy_is_used(base)
        if not args.no_baseline:
            for s in args.sets:
                status, detail = run_tests(base, TEST_SETS[s])
                if status != "survived":
                    raise SystemExit(f"unpatched copy: test set {s!r} does not pass ({detail}); fix that first")
            print("unpatched copy: every test set passes", flush=True)
        for i, bug in enumerate(bugs, 1):
            dest = Path(tmp) / bug.name
            make_copy(dest, base)
            plant(dest, bug)
            row = {"bug": bug}
            t = time.perf_counter()
            for s in args.sets:
                row[s] = run_tests(dest, TEST_SETS[s])
            shutil.rmtree(dest)
            results.append(row)
            shown = "  ".join(f"{s}: {row[s][0]:8s}" for s in args.sets)
            first = next((row[s][1] for s in args.sets if row[s][0] == "killed"), "")
            print(f"[{i:2d}/{len(bugs)}] {bug.name:28s} {shown} ({time.perf_counter() - t:4.0f} s) {first}", flush=True)
    killed = {s: sum(r[s][0] == "killed" for r in results) for s in args.sets}
    print("killed: " + ", ".join(f"{s} {killed[s]}/{len(results)}" for s in args.sets))
    if args.markdown:
        print("\n| Bug | Issue #18 | Where | " + " | ".join(f"{s} tests" for s in args.sets) + " | First failing test |")
        print("|---|---|---|" + "---|" * len(args.sets) + "---|")
        for r in results:
            b = r["bug"]
            first = next((r[s][1] for s in args.sets if r[s][0] == "killed"), "")
            print(f"| {b.what} (`{b.name}`) | {'yes' if b.listed else ''} | `{b.path.removeprefix('src/analysis_utils/')}` | "
                  + " | ".join(r[s][0] for s in args.sets) + f" | `{first}` |")
    return 0 if all(r[s][0] != "error" for r in results for s in args.sets) else 1


if __name__ == "__main__":
    raise SystemExit(main())
