"""No machine path in the outputs: a run names folders relative to the project root, so the same params, code and
inputs give byte-identical outputs wherever the repository lives (checked by hand on two clones; here on the end-to-end
run, whose output folder lies outside the repository)."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from analysis_utils.runner import pipeline

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_no_output_file_names_the_repository_folder(small_run):
    hits = []
    for f in sorted(small_run.rglob("*")):
        if f.is_file() and f.suffix not in (".png", ".parquet", ".xlsx"):
            text = f.read_text(encoding="utf-8", errors="replace")
            if str(ROOT) in text:
                hits.append(f.relative_to(small_run).as_posix())
    assert not hits, f"files naming {ROOT}: {hits}"


def test_injected_paths_are_relative_to_the_project_root(tmp_path):
    nb = ROOT / "notebooks" / "01_cleaning.ipynb"
    params = pipeline.load_params(ROOT / "params" / "default.yaml")
    values = pipeline.notebook_parameters(nb, params, ROOT / "outputs" / "default", ROOT / "params" / "default.yaml",
                                          ROOT)
    assert values["output_dir"] == "outputs/default"
    outside = pipeline.notebook_parameters(nb, params, tmp_path / "out", ROOT / "params" / "default.yaml", ROOT)
    assert outside["output_dir"] == (tmp_path / "out").as_posix()  # outside the project: kept as given
    declared = {c.source for c in nbformat.read(nb, as_version=4).cells if "parameters" in c.metadata.get("tags", [])}
    assert any("output_dir = None" in s for s in declared)
