"""The runner: params files, notebook parameters, and an end-to-end run on a hand-built export
(deterministic outputs, no identifier in any output file, raw files untouched)."""
import ast
import hashlib
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from analysis_utils import pipeline
from conftest import patient_tables, write_center

ROOT = Path(__file__).resolve().parents[1]


def _parameters_cell(nb_path: Path) -> dict:
    nb = nbformat.read(nb_path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{nb_path.name}: exactly one cell tagged 'parameters'"
    values = {}
    for node in ast.parse(cells[0].source).body:
        assert isinstance(node, ast.Assign), f"{nb_path.name}: parameters cell holds only assignments"
        values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


@pytest.mark.parametrize("nb", pipeline.notebooks(ROOT), ids=lambda p: p.name)
def test_parameters_cell_mirrors_default_params(nb):
    default = pipeline.load_params(ROOT / "params" / "default.yaml")
    for name, value in _parameters_cell(nb).items():
        if name == "output_dir":
            assert value is None
            continue
        assert name in default, f"{nb.name}: parameter '{name}' is not in params/default.yaml"
        assert value == default[name], f"{nb.name}: parameter '{name}' = {value!r}, params/default.yaml has {default[name]!r}"


def test_notebooks_committed_without_outputs():
    for nb_path in pipeline.notebooks(ROOT):
        nb = nbformat.read(nb_path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, nb_path.name


def test_params_base_is_merged(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text(yaml.safe_dump({"base": str(ROOT / "params" / "default.yaml"), "run_name": "child",
                                     "cleaning": {"haic_window_days": 60}}))
    p = pipeline.load_params(child)
    assert p["run_name"] == "child" and p["cleaning"]["haic_window_days"] == 60
    assert p["cleaning"]["combination_max_gap_days"] == 30 and p["seed"] == 20261125


def test_params_errors_are_clear(tmp_path):
    with pytest.raises(pipeline.ParamsError, match="not found"):
        pipeline.load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("run_name: x\n")
    with pytest.raises(pipeline.ParamsError, match="input_dir"):
        pipeline.load_params(bad)


def _identifier_values(raw: Path) -> set[str]:
    from analysis_utils.contract import load_contract
    ids = load_contract().identifier_columns()
    values = set()
    for f in raw.rglob("*.csv"):
        df = pd.read_csv(f, dtype=str, keep_default_na=False)
        for c in ids & set(df.columns):
            values |= {v for v in df[c] if len(v) >= 4}
    return values


def output_text(out: Path) -> str:
    """All text of a run's outputs; parquet tables are read back (their bytes are compressed)."""
    parts = []
    for f in sorted(out.rglob("*")):
        if not f.is_file():
            continue
        if f.suffix == ".parquet":
            parts.append(pd.read_parquet(f).to_csv())
        elif f.suffix in (".png",):
            continue
        else:
            parts.append(f.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


def _hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_end_to_end_on_a_hand_built_export(tmp_path):
    raw = tmp_path / "raw"
    write_center(raw, "C01", [patient_tables(f"A{i:03d}", n=i, haic=(["2023-02-10"] if i % 2 else None))
                              for i in range(1, 9)], "%d/%m/%Y")
    write_center(raw, "C02", [patient_tables("B001", n=30)], "%Y年%m月%d日", "xlsx")
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump({"base": str(ROOT / "params" / "default.yaml"), "run_name": "e2e",
                                      "input_dir": str(raw), "output_root": str(tmp_path / "out"),
                                      "synthetic": {"generate": False}}))
    raw_before = _hashes(raw)
    first = pipeline.run_notebooks(params, log=lambda m: None)
    assert first.ok, first.message
    out = Path(first.output_dir)
    h1 = _hashes(out)
    second = pipeline.run_notebooks(params, log=lambda m: None)
    assert second.ok and _hashes(out) == h1, "two runs with the same params must give identical outputs"
    assert _hashes(raw) == raw_before
    for f in ("results.json", "run_manifest.json", "figures/flow_diagram.png", "figures/flow_diagram.svg",
              "tables/flow.csv", "tables/data_quality.csv", "data/cohort.parquet", "notebooks/01_cleaning.ipynb"):
        assert (out / f).is_file(), f
    text = output_text(out)
    leaked = [v for v in _identifier_values(raw) if v in text]
    assert not leaked, f"identifier values in outputs: {leaked[:5]}"
    manifest = yaml.safe_load((out / "run_manifest.json").read_text())
    assert set(manifest["input_sha256"]) == {p for p in raw_before}


@pytest.mark.slow
def test_failure_names_notebook_and_cell(tmp_path):
    params = tmp_path / "p.yaml"
    raw = tmp_path / "raw"
    write_center(raw, "C01", [patient_tables("A1")])
    (raw / "C01" / "labs.csv").unlink()  # a missing required table stops the run
    params.write_text(yaml.safe_dump({"base": str(ROOT / "params" / "default.yaml"), "run_name": "fail",
                                      "input_dir": str(raw), "output_root": str(tmp_path / "out"),
                                      "synthetic": {"generate": False}}))
    res = pipeline.run_notebooks(params, log=lambda m: None)
    assert not res.ok
    assert "01_cleaning.ipynb failed in cell" in res.message and "ContractError" in res.message
    assert "'labs' not found" in res.message
