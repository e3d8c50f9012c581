"""The corpus of broken exports (tests/corpus_cases.py), judged by the oracle of tests/broken_exports.py: each defect
located in the data-quality log at its centre, file, row and column, or the run stopped with a message naming the
centre, file and cause; no value, row, record, arm or outcome changed without a located entry; no identifier in any
output; raw files untouched. Run with ``-s`` to see the tally."""
from __future__ import annotations

import pytest

from broken_exports import _patient_rows, build_base, copy_export, judge, run_export
from corpus_cases import CASES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    base_raw = build_base(root / "base")
    base = run_export(base_raw, root / "base_out")
    assert base.cleaned is not None, base.error
    rows = _patient_rows(base_raw)
    out = {}
    for case in CASES:
        ex = copy_export(base_raw, root / case.name)
        expect = case.mutate(ex)
        run = run_export(ex.raw, root / case.name / "out")
        out[case.name] = judge(case.name, expect, run, base, ex, base_raw, rows)
    return out


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_case_is_located_or_stopped_and_changes_nothing_silently(verdicts, name):
    v = verdicts[name]
    assert v.outcome in ("located", "stopped") and not v.problems, "\n".join(v.problems[:20])


def test_corpus_tally(verdicts):
    tally = {k: sum(v.outcome == k for v in verdicts.values()) for k in ("located", "stopped", "missed")}
    print(f"\ncorpus: {len(verdicts)} cases, {tally['located']} located, {tally['stopped']} stopped, "
          f"{tally['missed']} missed")
    for v in verdicts.values():
        print(f"  {v.case:40s} {v.outcome:8s} entries={v.n_entries:5d} changed cells={v.n_changed_cells:5d} "
              f"changed patients={v.n_changed_patients:3d} consequence entries={v.n_consequence_entries}")
    assert tally["missed"] == 0
    assert len(verdicts) >= 39


