"""No secret in any output (issue 17): a run of the command line with a sentinel pseudonymisation key in the
environment, another sentinel key in the params file and a sentinel token in an unrelated environment variable;
none of the three may appear in any file the run or the manuscript step writes (executed notebooks, manifest,
results, tables, figures, data read back, _variables.yml, the manuscript's generated files) nor in the run's log."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENV_KEY = "sentinel-env-key-5b1d0e8a"
PARAMS_KEY = "sentinel-params-key-c29f47d3"
TOKEN = "sentinel-token-8e6a2b71"


def _copy_project(dest: Path) -> Path:
    for folder in ("notebooks", "params", "manuscript"):  # the Quarto project is manuscript/ (its _quarto.yml)
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("_generated", "_manuscript",
                                                                                     "_variables.yml", "*.html"))
    return dest


def _text_of_every_file(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` as text (parquet read back to CSV; zipped XLSX inputs and PNG rasters skipped)."""
    out = {}
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        if f.suffix in (".png", ".xlsx"):
            continue
        if f.suffix == ".parquet":
            out[str(f.relative_to(folder))] = pd.read_parquet(f).to_csv()
        else:
            out[str(f.relative_to(folder))] = f.read_text(encoding="utf-8", errors="replace")
    return out


def _leaks(texts: dict[str, str]) -> list[str]:
    return [f"{name}: {secret}" for name, text in texts.items() for secret in (ENV_KEY, PARAMS_KEY, TOKEN)
            if secret in text]


@pytest.mark.slow
def test_a_run_with_sentinel_secrets_writes_them_nowhere(tmp_path):
    proj = _copy_project(tmp_path / "proj")
    (proj / "params" / "secret.yaml").write_text(yaml.safe_dump(
        {"base": "params/small.yaml", "run_name": "secret", "pseudonym_key": PARAMS_KEY,
         "input_dir": "data/synthetic/secret/raw"}))
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and not (Path(p) / "quarto").exists())  # no rendering: the prepared files are checked
    env = {**os.environ, "PATH": path, "HCC_PSEUDONYM_KEY": ENV_KEY, "HCC_TEST_SERVICE_TOKEN": TOKEN, "CI": "true"}
    run = subprocess.run([sys.executable, "-m", "analysis_utils", "run", "--params", "params/secret.yaml"], cwd=proj,
                         env=env, capture_output=True, text=True, timeout=1500)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-4000:]
    out = proj / "outputs" / "secret"
    assert (out / "notebooks" / "01_cleaning.ipynb").is_file() and (out / "run_manifest.json").is_file()
    assert (proj / "manuscript" / "_variables.yml").is_file() and (proj / "manuscript" / "_generated").is_dir()
    texts = _text_of_every_file(proj)
    assert PARAMS_KEY in texts.pop("params/secret.yaml")  # the input written above, the one place the key may be
    texts["<log of the run>"] = log
    assert not _leaks(texts), f"secrets written: {_leaks(texts)}"
    manifest = yaml.safe_load((out / "run_manifest.json").read_text())
    assert manifest["pseudonym_key_source"] == "environment" and manifest["params"]["pseudonym_key"] == "<redacted>"
    # the environment's key reached the cleaning step although no notebook holds it: the study IDs are its HMACs
    from analysis_utils.study.identifiers import study_id

    truth = pd.read_csv(proj / "data" / "synthetic" / "secret" / "ground_truth" / "patients_truth.csv",
                        dtype={"center_id": str, "mrn": str}, usecols=["center_id", "mrn"])
    ids = set(pd.read_parquet(out / "data" / "cohort.parquet")["study_id"])
    assert len(ids & set(study_id(truth["center_id"], truth["mrn"], ENV_KEY))) == len(ids) > 100
    assert not ids & set(study_id(truth["center_id"], truth["mrn"], PARAMS_KEY))
