"""The runner: generate the synthetic cohort when asked, execute the notebooks in order with papermill, write the
run manifest.

``python -m analysis_utils run --params params/default.yaml`` runs one params file into
``<output_root>/<run_name>/``; several params files run in parallel on dask.distributed (a LocalCluster of
``--workers`` processes, or an existing cluster with ``--scheduler ADDRESS``). A params
file may name a ``base:`` params file whose values it overrides (deep merge), which keeps sensitivity files short.

Outputs are deterministic: papermill's timestamps are removed from the executed notebooks and the manifest holds no
clock time, so two runs with the same params, code and inputs give identical files.

Secrets (``project.SECRET_PARAMS``: the pseudonymisation key) are never injected into a notebook: the kernel receives
the key through its environment (``HCC_PSEUDONYM_KEY``), and the manifest shows ``<redacted>`` in its place. The
manifest is written when the run starts (``status: running``) and again when it ends (``complete`` or ``failed``),
so a folder the runner made is always recognised as one; notebooks run by hand add themselves to it
(``interactive_runs``, see ``runner/session.py``).
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import nbformat

from analysis_utils.study.project import (PSEUDONYM_ENV, SECRET_PARAMS, ParamsError, load_params, notebooks,
                                           output_dir, project_root, pseudonym_key, redact_secrets, resolve)

RUNNER_ENV = "HCC_RUNNER"  # set to "1" in the kernels the runner starts: a notebook knows it is not run by hand

KEY_PACKAGES = ("analysis_utils", "numpy", "pandas", "scipy", "statsmodels", "scikit-learn", "lifelines",
                "scikit-survival", "matplotlib", "seaborn", "tableone", "pandera", "pyarrow", "papermill", "nbclient",
                "ipykernel")


# --------------------------------------------------------------------------------------------------- synthetic input
def synthetic_config(params: dict[str, Any]) -> dict[str, Any]:
    """Generator config from the params: the ``synthetic`` section (minus ``generate``) plus seed and cut-off."""
    cfg = {k: v for k, v in params.get("synthetic", {}).items() if k != "generate"}
    cfg["seed"] = params["seed"]
    cfg["data_cutoff"] = str(params["data_cutoff"])
    return cfg


def generate_input(params: dict[str, Any], root: Path | None = None,
                   progress: Callable[[str], None] = print) -> Path | None:
    """Generate the synthetic cohort into ``input_dir`` (whose parent also receives ``ground_truth/``) when the
    params ask for it. The raw files are made read-only. Returns the folder generated, or None."""
    if not params.get("synthetic", {}).get("generate", False):
        return None
    from analysis_utils.synthetic import generate_cohort

    raw = resolve(params["input_dir"], root)
    if raw.name != "raw":
        raise ParamsError("input_dir must end in '/raw' when synthetic.generate is true "
                          "(the generator writes raw/ and ground_truth/ side by side)")
    target = raw.parent
    if target.exists():
        if not (target / "ground_truth").is_dir():
            raise ParamsError(f"{target}: exists and was not made by the generator; refusing to overwrite it")
        shutil.rmtree(target)
    progress(f"generating synthetic cohort into {target}")
    generate_cohort(synthetic_config(params), target, progress=progress)
    for f in raw.rglob("*"):
        if f.is_file():
            f.chmod(0o444)
    return target


def input_checksums(input_dir: Path) -> dict[str, str]:
    """SHA-256 of every file below the input folder, keyed by relative path."""
    out = {}
    for f in sorted(p for p in input_dir.rglob("*") if p.is_file()):
        out[f.relative_to(input_dir).as_posix()] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


# --------------------------------------------------------------------------------------------------- manifest
def git_state(root: Path) -> dict[str, Any]:
    """Commit hash and whether tracked files differ from it ('unknown' outside a git checkout)."""
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None
    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit or "unknown", "dirty": bool(status) if status is not None else None}


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in KEY_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


MANIFEST_FILE = "run_manifest.json"


def write_manifest(params: dict[str, Any], params_path: Path, out: Path, root: Path, executed: list[str],
                   status: str = "complete", failed: str | None = None) -> Path:
    """``run_manifest.json``: commit, params (secrets redacted), package versions, seed, SHA-256 of every input file,
    notebooks run, and the run's ``status`` (``running``, ``complete`` or ``failed`` with the ``failed_notebook``)."""
    input_dir = resolve(params["input_dir"], root)
    manifest = {
        "run_name": params["run_name"], "params_file": _rel(params_path, root), "params": redact_secrets(params),
        "seed": params["seed"], "git": git_state(root), "versions": package_versions(),
        "input_dir": _rel(input_dir, root), "input_sha256": input_checksums(input_dir), "notebooks": executed,
        "pseudonym_key_source": "environment" if os.environ.get(PSEUDONYM_ENV) else "params", "status": status,
    }
    if failed:
        manifest["failed_notebook"] = failed
    return save_manifest(out, manifest)


def save_manifest(out: Path, manifest: dict[str, Any]) -> Path:
    """Write ``<out>/run_manifest.json`` atomically (a reader never sees half a file)."""
    path = out / MANIFEST_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


@contextmanager
def kernel_environment(params: dict[str, Any]) -> Iterator[None]:
    """Environment of the kernels started inside the block: ``HCC_RUNNER=1``, and the pseudonymisation key in
    ``HCC_PSEUDONYM_KEY`` (the params' key when the variable is unset), so the key reaches the cleaning step
    without being written into the executed notebook. The previous environment is restored afterwards."""
    saved = {k: os.environ.get(k) for k in (RUNNER_ENV, PSEUDONYM_ENV)}
    os.environ[RUNNER_ENV] = "1"
    key = pseudonym_key(params)
    if key:
        os.environ[PSEUDONYM_ENV] = key
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _rel(p: Path, root: Path) -> str:
    try:
        return p.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(p)


# --------------------------------------------------------------------------------------------------- notebooks
def notebook_parameters(nb_path: Path, params: dict[str, Any], out: Path, params_path: Path,
                        root: Path | None = None) -> dict[str, Any]:
    """Values for the names declared in the notebook's ``parameters`` cell, taken from the params file (secrets
    excepted).

    ``output_dir`` and ``params_file`` are injected relative to the project root ``root`` (the kernel's working
    directory, see ``run_notebooks``) when they lie below it, so that the executed notebooks name no folder of this
    machine and two clones in different folders give byte-identical notebooks."""
    import papermill

    root = root or project_root()
    declared = papermill.inspect_notebook(str(nb_path))
    values: dict[str, Any] = {}
    for name in declared:
        if name in SECRET_PARAMS:
            continue  # secrets reach the kernel through its environment (kernel_environment), never the notebook
        if name == "output_dir":
            values[name] = _rel(out, root)
        elif name == "params_file":
            values[name] = _rel(params_path, root)
        elif name in params:
            values[name] = params[name]
    return values


def merge_consecutive_streams(outputs: list[Any]) -> list[Any]:
    """One stream output where the kernel sent several in a row to the same stream: how a cell's prints are cut
    into messages depends on timing, so identical runs would otherwise store different outputs."""
    merged: list[Any] = []
    for out in outputs:
        prev = merged[-1] if merged else None
        if (out.get("output_type") == "stream" and prev is not None and prev.get("output_type") == "stream"
                and prev.get("name") == out.get("name")):
            prev["text"] += out["text"]
        else:
            merged.append(out)
    return merged


def strip_volatile_metadata(path: Path) -> None:
    """Remove papermill's timestamps and durations and merge consecutive stream outputs, so identical runs give
    identical notebooks."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.get("papermill", {}).pop("start_time", None)
    nb.metadata.get("papermill", {}).pop("end_time", None)
    nb.metadata.get("papermill", {}).pop("duration", None)
    nb.metadata.get("papermill", {}).pop("input_path", None)
    nb.metadata.get("papermill", {}).pop("output_path", None)
    for cell in nb.cells:
        pm = cell.metadata.get("papermill")
        if pm:
            for k in ("start_time", "end_time", "duration"):
                pm.pop(k, None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = merge_consecutive_streams(cell.outputs)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = "injected-parameters"  # papermill gives this cell a random id
    nbformat.write(nb, path)


RUN_STATUS = "run_status.json"


def mark_run(out: Path, status: str, message: str) -> None:
    """Mark a run folder as unfinished (``running``, written when the run starts; ``failed``, with the message, when
    a notebook fails). A folder holding this mark or a ``run_manifest.json`` is a run's own folder, which the next
    run of the same name replaces; a finished run removes the mark when it writes its manifest."""
    (out / RUN_STATUS).write_text(json.dumps({"status": status, "message": message}, indent=2) + "\n",
                                  encoding="utf-8")


@dataclass
class RunResult:
    params_file: str
    run_name: str
    ok: bool
    output_dir: str
    message: str
    seconds: float


def run_notebooks(params_path: Path, *, generate: bool = True, progress_bar: bool = False,
                  log: Callable[[str], None] = print) -> RunResult:
    """Execute every notebook in order for one params file; stop at the first failing cell."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    t0 = time.perf_counter()
    root = project_root()
    params = load_params(params_path)
    out = output_dir(params, root)
    name = str(params["run_name"])

    def say(msg: str) -> None:
        log(f"[{name}] {msg}")

    if generate:
        generate_input(params, root, progress=say)
    input_dir = resolve(params["input_dir"], root)
    if not input_dir.is_dir():
        return RunResult(str(params_path), name, False, str(out), f"input folder {input_dir} does not exist", 0.0)
    if not os.environ.get("MPLBACKEND", "inline").endswith("inline"):
        os.environ.pop("MPLBACKEND")  # kernels must keep the inline backend so figures are stored in the notebooks
    if out.exists():
        if any(out.iterdir()) and not ((out / "run_manifest.json").is_file() or (out / RUN_STATUS).is_file()):
            return RunResult(str(params_path), name, False, str(out),
                             f"{out} exists and is not a previous run's folder; refusing to overwrite it", 0.0)
        shutil.rmtree(out)
    out.mkdir(parents=True)
    mark_run(out, "running", "the run has not finished (or was interrupted)")
    executed: list[str] = []
    write_manifest(params, Path(params_path), out, root, executed, status="running")
    nbs = notebooks(root)
    for i, nb in enumerate(nbs, 1):
        target = out / "notebooks" / nb.name
        target.parent.mkdir(parents=True, exist_ok=True)
        say(f"[{i}/{len(nbs)}] {nb.name} ...")
        t1 = time.perf_counter()
        try:
            # the kernel runs in the project root, against which the injected output_dir is relative
            with kernel_environment(params):
                papermill.execute_notebook(str(nb), str(target),
                                           parameters=notebook_parameters(nb, params, out, params_path, root),
                                           kernel_name="python3", cwd=str(root), progress_bar=progress_bar,
                                           log_output=False, request_save_on_cell_execute=False)
        except PapermillExecutionError as err:
            msg = (f"notebook {nb.relative_to(root)} failed in cell {err.cell_index} (execution count "
                   f"{err.exec_count}): {err.ename}: {err.evalue}. Executed copy: {target}")
            say("FAILED: " + msg)
            mark_run(out, "failed", msg)
            write_manifest(params, Path(params_path), out, root, executed, status="failed", failed=nb.name)
            return RunResult(str(params_path), name, False, str(out), msg, time.perf_counter() - t0)
        strip_volatile_metadata(target)
        executed.append(nb.name)
        say(f"[{i}/{len(nbs)}] {nb.name} done in {time.perf_counter() - t1:.1f} s")
    write_manifest(params, Path(params_path), out, root, executed)
    (out / RUN_STATUS).unlink()
    secs = time.perf_counter() - t0
    say(f"finished in {secs:.1f} s -> {out}")
    return RunResult(str(params_path), name, True, str(out), "ok", secs)


def _run_one(args: tuple[str, bool]) -> RunResult:
    path, progress_bar = args
    try:
        return run_notebooks(Path(path), generate=False, progress_bar=progress_bar)
    except Exception as exc:  # a worker reports its failure instead of killing the batch
        return RunResult(path, Path(path).stem, False, "", f"{type(exc).__name__}: {exc}", 0.0)


def run_many(params_files: list[str | Path], workers: int = 1, progress_bar: bool = False,
             scheduler: str | None = None) -> list[RunResult]:
    """Run several params files, each into its own output folder, as tasks on dask.distributed: a LocalCluster of
    ``workers`` worker processes by default, or the existing cluster whose scheduler is at ``scheduler`` (its
    workers must see this project folder). One params file without a scheduler runs in this process.

    Synthetic inputs are generated first, once per distinct input folder and sequentially, so parallel runs never
    write the same files. Results come back in the order of ``params_files``."""
    root = project_root()
    all_params = [load_params(p) for p in params_files]
    names = [str(p["run_name"]) for p in all_params]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ParamsError(f"several params files share run_name {sorted(dupes)}; each run needs its own output folder")
    generated: set[Path] = set()
    for p in all_params:
        target = resolve(p["input_dir"], root)
        if p.get("synthetic", {}).get("generate") and target not in generated:
            generate_input(p, root)
            generated.add(target)
    jobs = [(str(p), progress_bar) for p in params_files]
    if len(jobs) == 1 and not scheduler:
        return [_run_one(j) for j in jobs]
    return _run_on_dask(jobs, workers, scheduler)


def _run_on_dask(jobs: list[tuple[str, bool]], workers: int, scheduler: str | None) -> list[RunResult]:
    """``_run_one`` for every job on a dask cluster (LocalCluster of single-threaded worker processes, or the
    scheduler at ``scheduler``); a job whose worker died comes back as a failed RunResult."""
    from dask.distributed import Client, LocalCluster

    cluster = None if scheduler else LocalCluster(n_workers=max(1, int(workers)), threads_per_worker=1,
                                                   processes=True, dashboard_address=":0")
    client = Client(scheduler or cluster)
    try:
        futures = client.map(_run_one, jobs, pure=False)
        out = []
        for (path, _), fut in zip(jobs, futures):
            try:
                out.append(fut.result())
            except Exception as exc:  # noqa: BLE001 - a lost worker fails its run, not the batch
                out.append(RunResult(path, Path(path).stem, False, "", f"{type(exc).__name__}: {exc}", 0.0))
        return out
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def summarise(results: list[RunResult]) -> str:
    lines = [f"{'run':<24} {'status':<7} {'seconds':>8}  output / message"]
    for r in results:
        lines.append(f"{r.run_name:<24} {'ok' if r.ok else 'FAILED':<7} {r.seconds:8.1f}  "
                     f"{r.output_dir if r.ok else r.message}")
    return "\n".join(lines)


def main_run(params_files: list[str], workers: int, progress_bar: bool, scheduler: str | None = None) -> int:
    try:
        results = run_many(params_files, workers=workers, progress_bar=progress_bar, scheduler=scheduler)
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summarise(results))
    first_ok = next((r for r in results if r.ok), None)
    if first_ok is not None:  # the manuscript follows the first successful run (analysis_utils.manuscript)
        from analysis_utils.reporting import manuscript

        print()
        try:
            manuscript.build(first_ok.output_dir)
        except (OSError, ValueError, KeyError) as exc:  # the analysis outputs stand; say why the article is not ready
            print(f"manuscript not prepared: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 0 if all(r.ok for r in results) else 1
