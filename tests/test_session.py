"""Working in JupyterLab (issue 17): secrets stay out of every display, the notebooks' setup helper
(runner/session.py: kernel check, preconditions, record of a run by hand in the manifest), the rendering of the
parameters cells (runner/parameters.py), the tidy summary tables, and the project's Jupyter kernel."""
import ast
import json
import os
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

import analysis_utils
from analysis_utils.reporting import results
from analysis_utils.runner import parameters, pipeline, session
from analysis_utils.study import project
from analysis_utils.study.config import CleaningConfig
from analysis_utils.study.project import PreconditionError

ROOT = Path(__file__).resolve().parents[1]
SENTINEL = "sentinel-key-7f3a9c1e-do-not-print"


# ------------------------------------------------------------------------------------------------- secrets
def test_cleaning_config_repr_and_str_hide_the_key():
    cfg = CleaningConfig(data_cutoff=pd.Timestamp("2025-09-30"), pseudonym_key=SENTINEL)
    from IPython.lib.pretty import pretty

    for shown in (repr(cfg), str(cfg), f"{cfg}", pretty(cfg)):
        assert SENTINEL not in shown and "pseudonym_key=<redacted>" in shown
    assert "haic_window_days=90" in repr(cfg) and cfg.pseudonym_key == SENTINEL  # the value itself is kept


def test_redact_secrets_reaches_nested_params():
    params = {"pseudonym_key": SENTINEL, "run_name": "x", "nested": [{"pseudonym_key": SENTINEL, "a": 1}]}
    red = project.redact_secrets(params)
    assert SENTINEL not in json.dumps(red) and red["run_name"] == "x" and red["nested"][0]["a"] == 1
    assert params["pseudonym_key"] == SENTINEL  # the input is not changed


def test_runner_never_injects_the_key_and_passes_it_through_the_kernel_environment(tmp_path, monkeypatch):
    params = pipeline.load_params(ROOT / "params" / "default.yaml")
    params["pseudonym_key"] = SENTINEL
    injected = pipeline.notebook_parameters(ROOT / "notebooks" / "01_cleaning.ipynb", params, tmp_path, Path("p.yaml"))
    assert "pseudonym_key" not in injected and injected["run_name"] == "default"
    monkeypatch.delenv(project.PSEUDONYM_ENV, raising=False)
    monkeypatch.delenv(pipeline.RUNNER_ENV, raising=False)
    with pipeline.kernel_environment(params):
        assert os.environ[project.PSEUDONYM_ENV] == SENTINEL and os.environ[pipeline.RUNNER_ENV] == "1"
    assert project.PSEUDONYM_ENV not in os.environ and pipeline.RUNNER_ENV not in os.environ
    monkeypatch.setenv(project.PSEUDONYM_ENV, "from-the-environment")
    with pipeline.kernel_environment(params):  # the environment's key wins, as in project.pseudonym_key
        assert os.environ[project.PSEUDONYM_ENV] == "from-the-environment"
    assert os.environ[project.PSEUDONYM_ENV] == "from-the-environment"


def test_manifest_redacts_the_key_and_records_status(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.csv").write_text("x\n1\n")
    params = {"run_name": "r", "input_dir": str(raw), "output_root": str(tmp_path), "data_cutoff": "2025-09-30",
              "seed": 1, "pseudonym_key": SENTINEL}
    path = pipeline.write_manifest(params, tmp_path / "p.yaml", tmp_path, ROOT, [], status="failed", failed="01_x.ipynb")
    text = path.read_text()
    manifest = json.loads(text)
    assert SENTINEL not in text and manifest["params"]["pseudonym_key"] == "<redacted>"
    assert manifest["status"] == "failed" and manifest["failed_notebook"] == "01_x.ipynb"


# ------------------------------------------------------------------------------------------------- preconditions
def test_require_names_the_missing_file_and_the_notebook_that_writes_it(tmp_path):
    out = tmp_path / "outputs" / "default"
    (out / "data").mkdir(parents=True)
    (out / "data" / "cohort.parquet").write_bytes(b"")
    project.require(out, {"data/cohort.parquet": "01_cleaning"}, "04_matching", root=tmp_path)  # present: silent
    with pytest.raises(PreconditionError) as err:
        project.require(out, {"data/cohort.parquet": "01_cleaning", "data/matched.parquet": "04_matching"},
                        "05_survival", root=tmp_path)
    msg = str(err.value)
    assert "05_survival needs data/matched.parquet in outputs/default/, which 04_matching writes" in msg
    assert "notebooks/04_matching.ipynb" in msg and "python -m analysis_utils run" in msg
    assert str(tmp_path) not in msg and "\n" not in msg
    assert err.value._render_traceback_() == [f"PreconditionError: {msg}"]  # IPython shows this one line only


def test_input_folder_generates_or_says_what_to_put_there(tmp_path):
    params = {"input_dir": "data/real", "synthetic": {"generate": False}}
    with pytest.raises(PreconditionError, match=r"input_dir data/real/ does not exist: put one folder per centre"):
        session.input_folder(params, tmp_path)
    (tmp_path / "data" / "real").mkdir(parents=True)
    assert session.input_folder(params, tmp_path) == tmp_path / "data" / "real"


def test_kernel_check_accepts_this_checkout_and_rejects_another(tmp_path):
    session.check_kernel(ROOT)  # the tests import this checkout's package
    session.check_kernel(tmp_path)  # a copy of the notebooks without src/: nothing to compare
    (tmp_path / "src" / "analysis_utils").mkdir(parents=True)
    with pytest.raises(PreconditionError, match="not from this project's src/.*choose the kernel 'HCC compendium'"):
        session.check_kernel(tmp_path)


# ------------------------------------------------------------------------------------------------- provenance
def _start(tmp_path, monkeypatch, **params):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params").mkdir(exist_ok=True)
    (tmp_path / "notebooks").mkdir(exist_ok=True)
    return session.start("04_matching", {"run_name": "r", "output_root": "outputs", **params}, quiet=True)


def test_run_by_hand_without_a_runner_run_creates_a_manifest(tmp_path, monkeypatch):
    monkeypatch.delenv(pipeline.RUNNER_ENV, raising=False)
    nb = _start(tmp_path, monkeypatch, seed=3, pseudonym_key=SENTINEL)
    assert nb.interactive and nb.out == tmp_path / "outputs" / "r"
    text = (nb.out / "run_manifest.json").read_text()
    manifest = json.loads(text)
    assert SENTINEL not in text
    assert manifest["status"] == "interactive" and manifest["params"]["seed"] == 3
    (entry,) = manifest["interactive_runs"]
    assert entry["notebook"] == "04_matching.ipynb" and entry["mode"] == "interactive"
    assert entry["parameters"]["seed"] == 3 and entry["parameters"]["pseudonym_key"] == "<redacted>"
    assert entry["started_utc"].endswith("Z") and entry["executed_copy_outdated"] is False
    assert entry["versions"]["analysis_utils"] == analysis_utils.__version__


def test_run_by_hand_after_a_runner_run_is_appended_with_the_differing_params(tmp_path, monkeypatch):
    monkeypatch.delenv(pipeline.RUNNER_ENV, raising=False)
    out = tmp_path / "outputs" / "r"
    (out / "notebooks").mkdir(parents=True)
    (out / "notebooks" / "04_matching.ipynb").write_text("{}")
    runner_manifest = {"run_name": "r", "status": "complete", "params": {"run_name": "r", "output_root": "outputs",
                                                                         "seed": 1}, "notebooks": ["04_matching.ipynb"]}
    (out / "run_manifest.json").write_text(json.dumps(runner_manifest))
    _start(tmp_path, monkeypatch, seed=2)
    _start(tmp_path, monkeypatch, seed=1)
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["params"]["seed"] == 1  # the runner's record is kept
    first, second = manifest["interactive_runs"]
    assert first["parameters_differing_from_manifest"] == ["seed"] and first["executed_copy_outdated"] is True
    assert second["parameters_differing_from_manifest"] == []


def test_runner_kernels_do_not_record_themselves(tmp_path, monkeypatch):
    monkeypatch.setenv(pipeline.RUNNER_ENV, "1")
    nb = _start(tmp_path, monkeypatch)
    assert not nb.interactive and not (nb.out / "run_manifest.json").exists()


def test_start_checks_preconditions_before_recording(tmp_path, monkeypatch):
    monkeypatch.delenv(pipeline.RUNNER_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params").mkdir()
    (tmp_path / "notebooks").mkdir()
    with pytest.raises(PreconditionError, match="which 01_cleaning writes"):
        session.start("04_matching", {"run_name": "r", "output_root": "outputs"},
                      needs={"data/cohort.parquet": "01_cleaning"})
    assert not (tmp_path / "outputs" / "r" / "run_manifest.json").exists()


def test_start_prints_one_relative_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(pipeline.RUNNER_ENV, "1")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params").mkdir()
    (tmp_path / "notebooks").mkdir()
    session.start("07_safety", {"run_name": "r", "output_root": "outputs"})
    assert capsys.readouterr().out == "07_safety · run 'r' · writes to outputs/r/\n"
    assert pd.get_option("display.max_rows") >= 500 and pd.get_option("display.max_colwidth") is None


# ------------------------------------------------------------------------------------------------- parameters cells
YAML = """\
run_name: demo
seed: 7                  # every random step uses it
note: "a # inside quotes"   # the comment
section:                 # the section's comment
  flag: true             # a flag
  items: [a, b]
  sub:
    x: 0.5               # deep
  long: [aaaaaaaaaa, bbbbbbbbbb, cccccccccc, dddddddddd, eeeeeeeeee, ffffffffff, gggggggggg, hhhhhhhhhh, iiiiiiiiii]
"""


def test_yaml_comments_by_key_path():
    comments = parameters.yaml_comments(YAML)
    assert comments[("seed",)] == "every random step uses it"
    assert comments[("note",)] == "the comment"
    assert comments[("section",)] == "the section's comment"
    assert comments[("section", "flag")] == "a flag" and comments[("section", "sub", "x")] == "deep"
    assert ("section", "items") not in comments


def test_rendered_cell_is_one_setting_per_line_and_evaluates_to_the_params():
    params = yaml.safe_load(YAML)
    cell = parameters.render_cell(["section", "seed", "note", "output_dir"], params, parameters.yaml_comments(YAML))
    lines = cell.splitlines()
    assert lines[0] == parameters.HEADER and lines[-1].startswith("output_dir = None  # set by the runner")
    assert lines[1] == "seed = 7  # every random step uses it"  # the params file's order, not the cell's
    assert 'section = {  # the section\'s comment' in lines and '    "flag": True,  # a flag' in lines
    assert '        "x": 0.5,  # deep' in lines and '    "items": ["a", "b"],' in lines
    assert all(len(line) <= parameters.WIDTH for line in lines)
    assert '    "long": [' in lines  # too long for one line: wrapped
    values = parameters.declared(cell)
    assert values == {"seed": 7, "note": "a # inside quotes", "section": params["section"], "output_dir": None}


def test_render_refuses_unknown_names():
    with pytest.raises(parameters.ParametersError, match="not in params/default.yaml"):
        parameters.render_cell(["nope"], {"run_name": "x"})


def test_regenerating_the_cells_is_a_no_op_on_the_committed_notebooks(tmp_path):
    (tmp_path / "notebooks").mkdir()
    for nb in project.notebooks(ROOT):
        (tmp_path / "notebooks" / nb.name).write_bytes(nb.read_bytes())
    assert parameters.update_notebooks(tmp_path, ROOT / "params" / "default.yaml", write=False) == []
    # a new param in the params file: the cell that declares its section is rewritten with it
    default = yaml.safe_load((ROOT / "params" / "default.yaml").read_text())
    default["safety"]["new_setting"] = 3
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(default, sort_keys=False))
    changed = parameters.update_notebooks(tmp_path, tmp_path / "p.yaml")
    assert [p.name for p in changed if p.name.startswith("07")] == ["07_safety.ipynb"]
    source = parameters.parameters_cell(nbformat.read(tmp_path / "notebooks" / "07_safety.ipynb", as_version=4)).source
    assert '    "new_setting": 3,' in source


# ------------------------------------------------------------------------------------------------- readability
def test_summary_table_is_tidy():
    import numpy as np

    table = results.summary_table({"hr": np.float64(0.623456), "n": np.int64(12), "median": None, "ok": np.bool_(True),
                                   "terms": ["a", "b"], "skip": {"x": 1}}, exclude=("skip",))
    assert list(table.index) == ["hr", "n", "median", "ok", "terms"] and table.index.name == "result"
    assert list(table["value"]) == ["0.6235", "12", "—", "yes", "a, b"]
    assert "np.float64" not in table.to_string()


# ------------------------------------------------------------------------------------------------- kernel
def test_the_project_kernel_is_installed_in_this_environment():
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec(session.KERNEL_NAME)
    assert spec.display_name == session.KERNEL_DISPLAY_NAME and spec.language == "python"
    # "python" is replaced by the interpreter of the JupyterLab that starts the kernel: the environment's own
    assert spec.argv[:3] == ["python", "-m", "ipykernel_launcher"]
    shipped = json.loads((ROOT / "kernels" / "hcc-compendium" / "kernel.json").read_text())
    assert shipped["argv"] == spec.argv


@pytest.mark.parametrize("nb", project.notebooks(ROOT), ids=lambda p: p.name)
def test_notebooks_name_the_project_kernel_and_use_the_setup_helper(nb):
    book = nbformat.read(nb, as_version=4)
    assert book.metadata.kernelspec == {"display_name": session.KERNEL_DISPLAY_NAME, "language": "python",
                                        "name": session.KERNEL_NAME}
    code = [c for c in book.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    setup = code[1].source
    assert setup.startswith("try:\n    from analysis_utils.runner import session\nexcept ModuleNotFoundError:")
    assert f'session.start("{nb.stem}"' in setup
    tree = ast.parse(setup)
    shown = [n for n in tree.body if isinstance(n, ast.Expr) and not isinstance(n.value, ast.Call)]
    assert not shown, f"{nb.name}: the setup cell displays a value (the config once displayed the key)"
    for cell in code:
        assert 'print("\\n".join' not in cell.source, f"{nb.name}: prints a blank line when the list is empty"
    # the manifest records every name of the parameters cell (docs/architecture.md, "Notebooks", item 3)
    start = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "start")
    given = start.args[1]
    if isinstance(given, ast.Name):  # params = {...}; session.start(..., params, ...)
        given = next(n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == given.id)
    declared = set(parameters.declared(code[0].source)) - set(parameters.RUNNER_SET)
    assert {k.value for k in given.keys} == declared, f"{nb.name}: session.start params differ from the parameters cell"
    # the last cell writes the results section and shows the headline numbers as a table (item 5)
    assert "results.write_section(" in code[-1].source and "results.summary_table(" in code[-1].source, nb.name


def test_ci_installs_chromium_for_the_browser_test():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "apt-get install" in ci and "chromium" in ci
    assert (ROOT / "tests" / "test_browser.py").is_file()


def test_consecutive_stream_outputs_are_merged_for_identical_executed_copies(tmp_path):
    """Two prints of a cell arrive as one or two stream messages depending on timing (06_response once differed
    between two identical runs): the executed copy stores them as one."""
    cell = nbformat.v4.new_code_cell("print(1)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="a\n"),
                    nbformat.v4.new_output("stream", name="stdout", text="b\n"),
                    nbformat.v4.new_output("display_data", data={"text/plain": "x"}),
                    nbformat.v4.new_output("stream", name="stdout", text="c\n"),
                    nbformat.v4.new_output("stream", name="stderr", text="w\n")]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    pipeline.strip_volatile_metadata(path)
    outs = nbformat.read(path, as_version=4).cells[0].outputs
    assert [(o.output_type, o.get("name"), o.get("text")) for o in outs] == [
        ("stream", "stdout", "a\nb\n"), ("display_data", None, None), ("stream", "stdout", "c\n"),
        ("stream", "stderr", "w\n")]
