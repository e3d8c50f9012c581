"""The corpus of broken exports (tests/corpus_cases.py), judged by the oracle of tests/broken_exports.py: each defect
located in the data-quality log at its centre, file, row and column, or the run stopped with a message naming the
centre, file and cause; no value, row, record, arm or outcome changed without a located entry; no identifier in any
output; raw files untouched. Run with ``-s`` to see each case's verdict and counts."""
from __future__ import annotations

import pytest

from broken_exports import _patient_rows, build_base, copy_export, judge, run_export
from corpus_cases import CASES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus_base(tmp_path_factory):
    """The clean base export and its run, built once per test process (under pytest-xdist the cases are shared
    out between the workers; each worker builds its own base)."""
    root = tmp_path_factory.mktemp("corpus")
    base_raw = build_base(root / "base")
    base = run_export(base_raw, root / "base_out")
    assert base.cleaned is not None, base.error
    return root, base_raw, base, _patient_rows(base_raw)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_is_located_or_stopped_and_changes_nothing_silently(corpus_base, case):
    root, base_raw, base, rows = corpus_base
    ex = copy_export(base_raw, root / case.name)
    expect = case.mutate(ex)
    run = run_export(ex.raw, root / case.name / "out")
    v = judge(case.name, expect, run, base, ex, base_raw, rows)
    print(f"\n  {v.case:40s} {v.outcome:8s} entries={v.n_entries:5d} changed cells={v.n_changed_cells:5d} "
          f"changed patients={v.n_changed_patients:3d} consequence entries={v.n_consequence_entries}")
    assert v.outcome in ("located", "stopped") and not v.problems, "\n".join(v.problems[:20])


def test_corpus_size_and_names():
    """The corpus keeps its breadth (each case above passes only as "located" or "stopped", never "missed")."""
    names = [c.name for c in CASES]
    assert len(names) >= 39 and len(set(names)) == len(names)
