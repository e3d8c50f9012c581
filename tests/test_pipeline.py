"""The runner: params files, notebook parameters, and an end-to-end run on a hand-built export
(deterministic outputs, no identifier in any output file, raw files untouched)."""
import hashlib
import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from analysis_utils.runner import parameters, pipeline
from conftest import patient_tables, write_center

ROOT = Path(__file__).resolve().parents[1]


def _parameters_cell(nb_path: Path) -> dict:
    nb = nbformat.read(nb_path, as_version=4)
    return parameters.declared(parameters.parameters_cell(nb, nb_path.name).source, nb_path.name)


@pytest.mark.parametrize("nb", pipeline.notebooks(ROOT), ids=lambda p: p.name)
def test_parameters_cell_mirrors_default_params(nb):
    """The cell is exactly its rendering from params/default.yaml (one setting per line, the YAML's comments), and
    its values equal the file's."""
    current, rendered = parameters.expected_source(nb, ROOT / "params" / "default.yaml")
    assert current == rendered, (f"{nb.name}: the parameters cell differs from params/default.yaml; regenerate it with "
                                 "`python -m analysis_utils.runner.parameters`")
    default = pipeline.load_params(ROOT / "params" / "default.yaml")
    for name, value in _parameters_cell(nb).items():
        if name in parameters.RUNNER_SET:
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
    # the failed run's folder is marked as such, so that the next run of the same name replaces it
    status = json.loads((Path(res.output_dir) / "run_status.json").read_text())
    assert status["status"] == "failed" and "'labs' not found" in status["message"]
    again = pipeline.run_notebooks(params, log=lambda m: None)
    assert not again.ok and "refusing" not in again.message and "'labs' not found" in again.message


def _all_identifier_values(raw: Path) -> set[str]:
    """Identifier values of every CSV and XLSX file of a raw export (only values of >= 5 characters, so that
    the search cannot hit by chance)."""
    from analysis_utils.study.contract import load_contract
    from analysis_utils.study.export_files import read_raw_table
    ids = load_contract().identifier_columns() - {"birth_date"}
    values = set()
    for f in list(raw.rglob("*.csv")) + list(raw.rglob("*.xlsx")):
        df = read_raw_table(f)
        for c in ids & set(df.columns):
            values |= {v for v in df[c] if len(v) >= 5}
    return values


@pytest.mark.slow
def test_full_run_on_small_synthetic_cohort_leaks_no_identifier(small_run):
    raw = small_run.parents[1] / "synthetic" / "raw"
    values = _all_identifier_values(raw)
    assert len(values) > 500  # names, phones, national IDs and record numbers of every patient
    text = output_text(small_run)
    leaked = sorted(v for v in values if v in text)
    assert not leaked, f"identifier values found in outputs: {leaked[:5]}"
    for f in ("notebooks/01_cleaning.ipynb", "results.json", "run_manifest.json", "tables/flow.csv"):
        assert (small_run / f).is_file()


@pytest.mark.slow
def test_full_run_is_deterministic(small_run):
    before = _hashes(small_run)
    params = small_run.parents[1] / "small.yaml"
    again = pipeline.run_notebooks(params, log=lambda m: None)
    assert again.ok, again.message
    after = _hashes(small_run)
    differ = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not differ, f"files differ between two identical runs: {differ}"


@pytest.mark.slow
def test_batch_runs_in_parallel_and_reports_each_run(tmp_path):
    raw = tmp_path / "raw"
    write_center(raw, "C01", [patient_tables("A1")])
    (raw / "C01" / "follow_up.csv").unlink()
    files = []
    for name, input_dir in (("broken-table", raw), ("no-input", tmp_path / "nowhere")):
        f = tmp_path / f"{name}.yaml"
        f.write_text(yaml.safe_dump({"base": str(ROOT / "params" / "default.yaml"), "run_name": name,
                                     "input_dir": str(input_dir), "output_root": str(tmp_path / "out"),
                                     "synthetic": {"generate": False}}))
        files.append(f)
    results = pipeline.run_many(files, workers=2)
    by_name = {r.run_name: r for r in results}
    assert not by_name["broken-table"].ok and "'follow_up' not found" in by_name["broken-table"].message
    assert not by_name["no-input"].ok and "does not exist" in by_name["no-input"].message
    summary = pipeline.summarise(results)
    assert "broken-table" in summary and "FAILED" in summary
    with pytest.raises(pipeline.ParamsError, match="share run_name"):
        pipeline.run_many([files[0], files[0]], workers=2)
