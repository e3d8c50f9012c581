"""Shared fixtures: a tiny hand-built centre export in the contract format (see data_dictionary.yaml)."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

BASE_PATIENT: dict[str, Any] = {
    "mrn": "A001", "patient_name": "Zhang Wei", "phone": "13800000001", "national_id": "110101197001010011",
    "birth_date": "1970-01-01", "sex": "M", "diagnosis_date": "2023-01-01", "diagnosis_basis": "radiology",
    "histology_subtype": "not_examined", "etiology": "HBV", "ecog": "1", "ascites": "none", "encephalopathy": "none",
    "total_bilirubin": "15", "total_bilirubin_unit": "umol/L", "albumin": "40", "albumin_unit": "g/L", "inr": "1.1",
    "afp": "500", "pivka_ii": "", "bclc_stage": "C", "tumour_number": "2", "max_tumour_size": "8", "mvi": "yes",
    "mvi_grade": "Vp3", "ehs": "no", "prior_local_therapy": "none", "prior_systemic_therapy": "no",
}


def patient_tables(mrn: str, *, haic: list[str] | None = None, overrides: dict[str, Any] | None = None,
                   systemic: list[dict[str, Any]] | None = None, lesions: list[dict[str, Any]] | None = None,
                   follow_up: dict[str, Any] | None = None, n: int = 1) -> dict[str, list[dict[str, Any]]]:
    """Rows of every table for one hand-built patient (ISO dates; index date 2023-02-01)."""
    p = copy.deepcopy(BASE_PATIENT)
    p.update({"mrn": mrn, "patient_name": f"Name {mrn}", "phone": f"1380000{n:04d}", "national_id": f"11010119700101{n:04d}"})
    p.update(overrides or {})
    sysc = systemic if systemic is not None else [
        {"mrn": mrn, "agent": "lenvatinib", "drug_class": "TKI", "start_date": "2023-02-01", "stop_date": "", "cycles": "8"},
        {"mrn": mrn, "agent": "camrelizumab", "drug_class": "PD-1", "start_date": "2023-02-03", "stop_date": "", "cycles": "8"}]
    les = lesions if lesions is not None else [
        {"mrn": mrn, "assessment_date": "2023-01-25", "lesion_id": "L1", "organ": "liver", "lesion_type": "target",
         "ld_mm": "60", "viable_ld_mm": "50", "short_axis_mm": "", "diameter_unit": "mm", "arterial_enhancement": "yes",
         "nontarget_status": "", "cytology_confirmed": ""},
        {"mrn": mrn, "assessment_date": "2023-03-15", "lesion_id": "L1", "organ": "liver", "lesion_type": "target",
         "ld_mm": "40", "viable_ld_mm": "20", "short_axis_mm": "", "diameter_unit": "mm", "arterial_enhancement": "yes",
         "nontarget_status": "", "cytology_confirmed": ""}]
    fu = {"mrn": mrn, "last_contact_date": "2024-02-01", "vital_status": "alive", "death_date": ""}
    fu.update(follow_up or {})
    return {
        "patients": [p],
        "haic_cycles": [{"mrn": mrn, "cycle_number": str(i + 1), "haic_date": d, "regimen": "FOLFOX"} for i, d in enumerate(haic or [])],
        "systemic_courses": sysc,
        "tumour_assessments": les,
        "labs": [{"mrn": mrn, "lab_date": "2023-01-30", "test": "ALT", "value": "35", "unit": "U/L", "uln": "40", "lln": ""},
                 {"mrn": mrn, "lab_date": "2023-01-30", "test": "PLT", "value": "150000", "unit": "/mm3", "uln": "", "lln": "100000"}],
        "adverse_events": [{"mrn": mrn, "ae_term": "fatigue", "grade": "1", "onset_date": "2023-02-20",
                            "attribution": "related", "serious": "no", "action_taken": "none"}],
        "follow_up": [fu],
    }


def write_center(root: Path, center_id: str, patients: list[dict[str, list[dict[str, Any]]]],
                 date_format: str = "%Y-%m-%d", fmt: str = "csv") -> Path:
    """Write one centre folder; dates in the rows are ISO and re-formatted with ``date_format``."""
    from analysis_utils.study.contract import load_contract

    folder = root / center_id
    folder.mkdir(parents=True)
    (folder / "manifest.yaml").write_text(yaml.safe_dump(
        {"center_id": center_id, "center_name": f"Hospital {center_id}", "date_format": date_format, "language": "en"}))
    contract = load_contract()
    for table, spec in contract.tables.items():
        rows = [r for p in patients for r in p[table]]
        df = pd.DataFrame(rows, columns=list(spec["columns"]))
        for col, cs in spec["columns"].items():
            if cs["type"] == "date":
                d = pd.to_datetime(df[col], format="%Y-%m-%d", errors="coerce")
                df[col] = [x.strftime(date_format) if pd.notna(x) else (v if v is not None else "")
                           for x, v in zip(d, df[col])]
        df = df.fillna("")
        if fmt == "csv":
            df.to_csv(folder / f"{table}.csv", index=False)
        else:
            df.to_excel(folder / f"{table}.xlsx", index=False)
    return folder


@pytest.fixture
def make_export(tmp_path):
    """Factory: make_export({"C01": [patient_tables(...), ...]}, date_formats={"C01": "%d/%m/%Y"}) -> raw folder."""
    def _make(centers: dict[str, list[dict[str, list[dict[str, Any]]]]], date_formats: dict[str, str] | None = None,
              formats: dict[str, str] | None = None) -> Path:
        raw = tmp_path / "raw"
        for cid, pts in centers.items():
            write_center(raw, cid, pts, (date_formats or {}).get(cid, "%Y-%m-%d"), (formats or {}).get(cid, "csv"))
        return raw
    return _make


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """One full pipeline run (every notebook) on the small synthetic cohort of params/small.yaml, into a temporary
    output root; shared by the end-to-end tests. Returns the output folder."""
    from analysis_utils.runner import pipeline

    root = Path(__file__).resolve().parents[1]
    tmp = tmp_path_factory.mktemp("small_run")
    params = tmp / "small.yaml"
    params.write_text(yaml.safe_dump({"base": str(root / "params" / "small.yaml"), "output_root": str(tmp / "outputs"),
                                      "input_dir": str(tmp / "synthetic" / "raw")}))
    result = pipeline.run_notebooks(params, log=lambda m: None)
    assert result.ok, result.message
    return Path(result.output_dir)


def notebook_project(proj: Path) -> Path:
    """A copy of the notebooks and params in ``proj`` (no src/: the installed package is used) with the small
    synthetic cohort generated where the notebooks' default parameters look for their input, as a researcher who
    opens the notebooks in JupyterLab has it; the real outputs/ is not touched."""
    import shutil

    from analysis_utils.runner import pipeline

    root = Path(__file__).resolve().parents[1]
    shutil.copytree(root / "notebooks", proj / "notebooks")
    shutil.copytree(root / "params", proj / "params")
    small = pipeline.load_params(root / "params" / "small.yaml")
    small["input_dir"] = "data/synthetic/default/raw"  # where the notebooks' default parameters look
    pipeline.generate_input(small, proj, progress=lambda m: None)
    return proj


# --------------------------------------------------------------------------------------------------------------------
# Parallel runs. pyproject.toml runs the suite on pytest-xdist workers (`-n auto`; `-n 0` runs it in one process).
# Work is shared out in groups by the scheduler below (a function of the test's id only, since the controller does
# not collect): the files whose tests use the session's small pipeline run (`small_run`, `second_run`) form one group
# on one worker, so that run is made once; any other file is a group of its own, so its module-scoped fixtures are
# built once; the corpus of broken exports is shared out case by case (each case is independent; each worker builds
# the small clean base once). The longest groups are handed out first so that the workers finish together; a slow file
# not named in LONGEST_FIRST runs after them, in file order. (xdist's own `--dist loadgroup` cannot be used: with
# pytest 9 its `xdist_group` marks no longer reach the test ids.)
# --------------------------------------------------------------------------------------------------------------------
SHARED_RUN_FIXTURES = {"small_run", "second_run"}
SHARED_RUN_FILES = {"tests/test_manuscript.py", "tests/test_manuscript_render.py", "tests/test_paths.py",
                    "tests/test_pipeline.py"}
PER_TEST_FILES = {"tests/test_broken_exports.py"}
LONGEST_FIRST = ["small_run", "tests/test_notebooks.py", "tests/test_secrets.py", "tests/test_browser.py",
                 "tests/test_broken_exports.py", "tests/test_survival_truth.py", "tests/test_simulation.py"]


def work_group(nodeid: str) -> str:
    """The group of a test id: 'small_run', the test id itself (PER_TEST_FILES) or its file."""
    path = nodeid.split("::")[0]
    if path in SHARED_RUN_FILES:
        return "small_run"
    if path in PER_TEST_FILES:
        return nodeid
    return path


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        """xdist's LoadScopeScheduling with :func:`work_group` as the scope (order kept: --no-loadscope-reorder)."""

        def _split_scope(self, nodeid: str) -> str:
            return work_group(nodeid)

    return GroupScheduling(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    stray = sorted({item.nodeid.split("::")[0] for item in items if SHARED_RUN_FIXTURES & set(item.fixturenames)}
                   - SHARED_RUN_FILES)
    if stray:
        raise pytest.UsageError(f"tests/conftest.py: add {stray} to SHARED_RUN_FILES (they use the shared small run)")
    keys = [work_group(item.nodeid) for item in items]
    keys = [k if k == "small_run" or "::" not in k else k.split("::")[0] for k in keys]  # order: per file
    first: dict[str, int] = {}
    slow: set[str] = set()
    for i, (item, key) in enumerate(zip(items, keys)):
        first.setdefault(key, i)
        if item.get_closest_marker("slow"):
            slow.add(key)

    def rank(key: str) -> tuple[int, int, int]:
        if key in LONGEST_FIRST:
            return (0, LONGEST_FIRST.index(key), 0)
        return (1 if key in slow else 2, 0, first[key])

    order = sorted(range(len(items)), key=lambda i: (rank(keys[i]), i))  # each group stays together, in its order
    items[:] = [items[i] for i in order]
