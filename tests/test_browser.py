"""The notebooks in JupyterLab, driven in a real browser as a researcher works (issue 17): Playwright for Python
drives Debian's Chromium (``/usr/bin/chromium``; Playwright's own browser downloads are not used), JupyterLab runs
from this environment on a copy of the project with the small synthetic cohort where the default parameters look.
The test opens ``01_cleaning`` and ``04_matching``, checks that each lands on the project's kernel without a kernel
dialog, runs all cells, saves, and fails on any error output or cell left unexecuted. It also checks that each run by
hand recorded itself in the run's manifest and that a sentinel pseudonymisation key reached no file.

Skipped, with the reason, when Playwright or Chromium is missing; ``.ci/run`` installs Chromium so CI runs it.
Two environment variables serve a person checking by hand:

- ``HCC_BROWSER_JUPYTER``: the ``jupyter`` executable of another environment (e.g. a JupyterLab installed outside
  the project's venv); the project's kernel is then installed for it with ``ipykernel install --user`` into a
  temporary Jupyter data folder, as the README tells a researcher to do.
- ``HCC_BROWSER_SCREENSHOTS``: a folder that keeps a full-page screenshot of each notebook after its run.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from analysis_utils.runner import pipeline, session
from conftest import notebook_project

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("HCC_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NOTEBOOKS = ("01_cleaning", "04_matching")
SENTINEL = "sentinel-browser-key-93d0b6"

pytestmark = pytest.mark.slow

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None


def _skip_reason() -> str | None:
    if sync_playwright is None:
        return "Playwright for Python is not installed (it is in requirements-lock.txt)"
    if not CHROMIUM.is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a copy of the project; yields (base URL with token, project folder)."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("browser")
    proj = tmp / "proj"
    notebook_project(proj)

    jupyter = os.environ.get("HCC_BROWSER_JUPYTER")
    env = {k: v for k, v in os.environ.items() if k not in (pipeline.RUNNER_ENV, "JUPYTER_PATH")}
    env.update({"JUPYTER_CONFIG_DIR": str(tmp / "config"), "JUPYTER_DATA_DIR": str(tmp / "data"),
                "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"),
                "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"), "HCC_PSEUDONYM_KEY": SENTINEL})
    news = tmp / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false"}')  # no "notified about Jupyter news?" toast (the network is closed anyway)
    if jupyter:  # a JupyterLab outside this environment: install the kernel as the README says
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--user", "--name", session.KERNEL_NAME,
                        "--display-name", session.KERNEL_DISPLAY_NAME], env=env, check=True, capture_output=True)
        command = [jupyter, "lab"]
    else:
        command = [sys.executable, "-m", "jupyterlab"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI runs as root
    port, token = _free_port(), secrets.token_hex(16)
    log = (tmp / "jupyterlab.log").open("w")
    server = subprocess.Popen([*command, "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={proj}",
                               "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
                              cwd=proj, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail("JupyterLab exited: " + (tmp / "jupyterlab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield base, token, proj, tmp / "jupyterlab.log"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def run_in_browser(page, base: str, token: str, name: str, timeout_s: float = 900) -> str:
    """Open notebooks/<name>.ipynb, wait for its kernel, run all cells, wait until done, save; returns the kernel's
    display name as JupyterLab shows it in the notebook's toolbar."""
    page.goto(f"{base}/lab/tree/notebooks/{name}.ipynb?reset&token={token}")
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").last
    panel.locator(".jp-Notebook-cell").first.wait_for(timeout=120_000)
    kernel = panel.locator(".jp-Toolbar-kernelName")
    deadline = time.time() + 120
    while time.time() < deadline:  # the kernel has started: its name is shown and the status is idle
        if page.locator(".jp-Dialog").count():
            raise AssertionError(f"{name}: JupyterLab asks for a kernel: {page.locator('.jp-Dialog').inner_text()}")
        if kernel.count() and kernel.inner_text().strip() not in ("", "No Kernel", "Kernel") and \
                panel.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count():
            break
        time.sleep(0.5)
    shown = kernel.inner_text().strip()
    page.locator("#jp-MainMenu").get_by_text("Run", exact=True).click()
    page.locator(".lm-Menu-content").get_by_text("Run All Cells", exact=True).click()
    deadline = time.time() + timeout_s
    time.sleep(2)
    while time.time() < deadline:  # every cell done: no "[*]" prompt left and the kernel idle
        busy = panel.locator(".jp-InputPrompt").filter(has_text="[*]").count()
        if not busy and panel.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count():
            break
        time.sleep(1)
    else:
        raise AssertionError(f"{name}: cells still running after {timeout_s:.0f} s")
    panel.locator(".jp-Notebook").click()
    page.keyboard.press("Control+s")
    time.sleep(2)
    return shown


def _errors(nb_path: Path) -> list[str]:
    nb = nbformat.read(nb_path, as_version=4)
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.execution_count is None:
            problems.append(f"cell {i} was not executed")
        for out in cell.outputs:
            if out.output_type == "error":
                problems.append(f"cell {i}: {out.ename}: {out.evalue}")
    return problems


def test_notebooks_run_in_jupyterlab_in_chromium(lab):
    base, token, proj, log = lab
    shots = os.environ.get("HCC_BROWSER_SCREENSHOTS")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(proj.parent / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        try:
            page = context.new_page()
            for name in NOTEBOOKS:
                shown = run_in_browser(page, base, token, name)
                if shots:
                    Path(shots).mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(Path(shots) / f"{name}.png"), full_page=True)
                assert shown == session.KERNEL_DISPLAY_NAME, f"{name}: opened on kernel {shown!r}"
                problems = _errors(proj / "notebooks" / f"{name}.ipynb")
                assert not problems, f"{name} in JupyterLab: " + "; ".join(problems)
        finally:
            context.close()
    out = proj / "outputs" / "default"
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert [e["notebook"] for e in manifest["interactive_runs"]] == [f"{n}.ipynb" for n in NOTEBOOKS]
    saved = [proj / "notebooks" / f"{n}.ipynb" for n in NOTEBOOKS]
    files = [f for f in [*saved, *out.rglob("*"), log] if f.is_file() and f.suffix not in (".parquet", ".png")]
    leaked = [str(f.relative_to(proj.parent)) for f in files if SENTINEL in f.read_text(errors="replace")]
    assert not leaked, f"the pseudonymisation key was written to {leaked}"
