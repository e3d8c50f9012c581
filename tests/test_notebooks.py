"""The committed notebooks run top to bottom with their own defaults, as a researcher would run them in
JupyterLab (nbval in lax mode: every cell must run without error; the committed notebooks are stripped, so there are no
outputs to compare). They run in a copy of the project so the real outputs/ is not touched, on the
small synthetic cohort generated in advance where the default parameters look for their input."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analysis_utils.runner import pipeline

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_notebooks_run_top_to_bottom_with_nbval(tmp_path):
    proj = tmp_path / "proj"
    shutil.copytree(ROOT / "notebooks", proj / "notebooks")
    shutil.copytree(ROOT / "params", proj / "params")
    small = pipeline.load_params(ROOT / "params" / "small.yaml")
    small["input_dir"] = "data/synthetic/default/raw"  # where the notebooks' default parameters look
    pipeline.generate_input(small, proj, progress=lambda m: None)
    run = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider",
                          "--rootdir", str(proj), str(proj / "notebooks")],
                         cwd=proj, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert (proj / "outputs" / "default" / "results.json").is_file()
