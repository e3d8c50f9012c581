"""The committed notebooks run top to bottom with their own defaults, as a researcher would run them in
JupyterLab (nbval in lax mode: every cell must run without error; the committed notebooks are stripped, so there are no
outputs to compare). They run in a copy of the project so the real outputs/ is not touched, on the
small synthetic cohort generated in advance where the default parameters look for their input. Run by hand, each
notebook records itself in the run's manifest (``interactive_runs``), and a sentinel pseudonymisation key in the
environment is written nowhere."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analysis_utils.runner import pipeline
from conftest import notebook_project

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_notebooks_run_top_to_bottom_with_nbval(tmp_path):
    proj = tmp_path / "proj"
    notebook_project(proj)
    sentinel = "sentinel-nbval-key-41c7e2"
    env = {**os.environ, "HCC_PSEUDONYM_KEY": sentinel}
    env.pop(pipeline.RUNNER_ENV, None)
    # --nbval-current-env: this interpreter's kernel (the notebooks name "hcc-compendium", which is the same here)
    run = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-q",
                          "-p", "no:cacheprovider", "--rootdir", str(proj), str(proj / "notebooks")],
                         cwd=proj, capture_output=True, text=True, timeout=1800, env=env)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    out = proj / "outputs" / "default"
    assert (out / "results.json").is_file()
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["status"] == "interactive"
    assert [e["notebook"] for e in manifest["interactive_runs"]] == [p.name for p in pipeline.notebooks(proj)]
    leaked = [str(f) for f in out.rglob("*") if f.is_file() and f.suffix != ".parquet"
              and sentinel in f.read_text(encoding="utf-8", errors="replace")]
    assert not leaked and sentinel not in run.stdout + run.stderr, leaked
