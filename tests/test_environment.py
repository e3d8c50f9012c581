"""environment.yml (conda) and pyproject.toml (pip) declare the same dependencies; the lock pins each of them."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ \[]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {_name(d): d.replace(" ", "") for d in deps}


def _conda() -> dict[str, str]:
    deps = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    return {_name(d): d.replace(" ", "") for d in deps if isinstance(d, str) and _name(d) not in ("python", "pip")}


def test_conda_and_pip_declare_the_same_packages_and_bounds():
    assert _pyproject() == _conda()


def test_lock_pins_every_declared_dependency():
    lock = {}
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            lock[_name(name)] = version
    missing = [n for n in _pyproject() if n not in lock]
    assert not missing, f"requirements-lock.txt lacks pins for {missing}"


def test_ci_runs_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    main_cmd, test_cmd = blocks[0].strip(), blocks[1].strip()
    assert "analysis_utils run" in main_cmd and "pytest" in test_cmd
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_cmd in ci and main_cmd in ci
