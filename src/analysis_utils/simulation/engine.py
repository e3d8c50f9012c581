"""Replicates: seeds, running one, storing each as it finishes, resuming, and running many on dask.distributed.

Seeds. Replicate r of a scenario uses ``SeedSequence(seed, spawn_key=(r,))``, the r-th child of
``SeedSequence(seed).spawn(...)``; it spawns two streams, the generator's (an integer seed for the generator) and
the methods' (e.g. a random matching order). A replicate's result therefore depends only on (params, r): any
replicate can be rerun alone (``rerun_replicate``) and the results do not depend on which worker ran what, in
which order. The exports-and-cleaning path of replicate r uses the same generator seed as its fast path, so the
two differ only by what the exports and cleaning do.

Storage, under ``<output_root>/simulation/<scenario>/``: ``scenario.json`` (name, params file, fingerprint,
design), ``truth.json``, ``replicates/<path>-r<NNNNN>.parquet`` (one file per finished replicate, written
atomically: a temporary name, then renamed), ``failures/<path>-r<NNNNN>.json`` (a replicate that failed, with its
seeds and the traceback), ``logs/timings.csv`` (seconds per replicate and method; the only file that changes
between identical runs). A run skips every replicate whose file exists, so an interrupted run resumes where it
stopped; a failed replicate is tried again. A folder written for other params (fingerprint) is refused unless the
run is started afresh. Method: docs/methods/simulation.md.
"""
from __future__ import annotations

import json
import os
import time
import traceback
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pandas as pd

from analysis_utils.simulation import estimators, sources
from analysis_utils.simulation.scenario import Scenario
from analysis_utils.simulation.truth import scenario_truth

RESULT_COLUMNS = ["scenario", "path", "replicate", "generator_seed", "method_seed", "n", "n_treated", "os_events",
                  *estimators.ROW_COLUMNS]


class SimulationError(Exception):
    """A scenario's outputs cannot be written or resumed (e.g. written for other params)."""


# --------------------------------------------------------------------------------------------------- seeds
def replicate_seeds(root_seed: int, replicate: int) -> tuple[int, int]:
    """(generator seed, methods seed) of replicate ``replicate`` (0-based)."""
    gen, methods = np.random.SeedSequence(int(root_seed), spawn_key=(int(replicate),)).spawn(2)
    return int(gen.generate_state(1)[0]), int(methods.generate_state(1)[0])


# --------------------------------------------------------------------------------------------------- one replicate
@dataclass
class ReplicateResult:
    scenario: str
    path: str
    replicate: int
    generator_seed: int
    method_seed: int
    rows: pd.DataFrame | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def run_replicate(scenario: Scenario, replicate: int, path: str = "fast") -> ReplicateResult:
    """Generate replicate ``replicate`` of ``scenario`` along ``path`` and run every available method on it. Never
    raises: a failure comes back as ``error`` (with the traceback) and the seeds, so it can be rerun."""
    gen_seed, method_seed = replicate_seeds(scenario.seed, replicate)
    res = ReplicateResult(scenario.name, path, replicate, gen_seed, method_seed)
    with _one_blas_thread():
        return _run_replicate(scenario, path, res)


def _one_blas_thread() -> Any:
    """One BLAS thread while a replicate runs: its matrices are small, and BLAS threads of several workers on shared
    cores only compete (measured: the pooled logistic fits of a CCW replicate ran 40 times slower with the default
    threads on a loaded 2-core machine). Results do not depend on it."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _run_replicate(scenario: Scenario, path: str, res: ReplicateResult) -> ReplicateResult:
    gen_seed, method_seed, replicate = res.generator_seed, res.method_seed, res.replicate
    try:
        t0 = time.perf_counter()
        frame, facts = sources.generate(scenario, gen_seed, path)
        res.seconds["generate"] = time.perf_counter() - t0
        s = estimators.settings_for(scenario.params, scenario.design, method_seed)
        rows, secs = estimators.run_methods(frame, list(scenario.design["methods"]), s)
        res.seconds.update(secs)
        front = {"scenario": scenario.name, "path": path, "replicate": replicate, "generator_seed": gen_seed,
                 "method_seed": method_seed, **facts}
        for k, v in reversed(front.items()):
            rows.insert(0, k, v)
        res.rows = rows[RESULT_COLUMNS]
    except Exception:  # noqa: BLE001 - reported with its seeds, never lost
        res.error = traceback.format_exc()
    return res


# --------------------------------------------------------------------------------------------------- storage
class Store:
    """The scenario's folder: replicate files, failures, timings, the scenario record."""

    def __init__(self, scenario: Scenario, folder: Path):
        self.scenario, self.folder = scenario, folder
        self.replicates, self.failures, self.logs = folder / "replicates", folder / "failures", folder / "logs"

    def name(self, path: str, replicate: int) -> str:
        return f"{path}-r{replicate:05d}"

    def open(self, fresh: bool = False) -> None:
        """Create the folder, or check that it was written for the same scenario (fingerprint); ``fresh`` empties
        it first."""
        record = self.folder / "scenario.json"
        if fresh and self.folder.exists():
            import shutil

            if any(self.folder.iterdir()) and not record.is_file():
                raise SimulationError(f"{self.folder} exists and is not a simulation folder; refusing to empty it")
            shutil.rmtree(self.folder)
        if record.is_file():
            stored = json.loads(record.read_text(encoding="utf-8"))
            if stored.get("fingerprint") != self.scenario.fingerprint():
                raise SimulationError(
                    f"{self.folder} holds replicates of other params for scenario {self.scenario.name!r} "
                    f"(params file {stored.get('params_file')}); rerun with --fresh to discard them")
        for d in (self.replicates, self.failures, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        doc = {"scenario": self.scenario.name, "label": self.scenario.label, "params_file": self.scenario.params_file,
               "fingerprint": self.scenario.fingerprint(), "seed": self.scenario.seed,
               "design": self.scenario.design}
        _write_atomic(record, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")

    def done(self, path: str) -> set[int]:
        """Replicates of ``path`` whose result file exists."""
        prefix = f"{path}-r"
        return {int(f.stem[len(prefix):]) for f in self.replicates.glob(f"{prefix}*.parquet")}

    def write(self, res: ReplicateResult) -> None:
        """Store a finished replicate (or its failure) as soon as it arrives."""
        stem = self.name(res.path, res.replicate)
        failure = self.failures / f"{stem}.json"
        if res.ok:
            tmp = self.replicates / f".{stem}.parquet.tmp"
            res.rows.to_parquet(tmp, index=False)
            os.replace(tmp, self.replicates / f"{stem}.parquet")
            failure.unlink(missing_ok=True)
        else:
            _write_atomic(failure, json.dumps({
                "scenario": res.scenario, "path": res.path, "replicate": res.replicate,
                "root_seed": self.scenario.seed, "generator_seed": res.generator_seed,
                "method_seed": res.method_seed, "error": res.error}, indent=2) + "\n")
        if res.seconds:
            line = ",".join([res.path, str(res.replicate)] + [f"{k}={v:.4f}" for k, v in res.seconds.items()])
            with (self.logs / "timings.csv").open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    def failed(self) -> list[dict[str, Any]]:
        return [json.loads(f.read_text(encoding="utf-8")) for f in sorted(self.failures.glob("*.json"))]

    def estimates(self) -> pd.DataFrame:
        """Every stored replicate's rows, in (path, replicate) order."""
        files = sorted(self.replicates.glob("*.parquet"))
        if not files:
            return pd.DataFrame(columns=RESULT_COLUMNS)
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)

    def read(self, path: str, replicate: int) -> pd.DataFrame | None:
        f = self.replicates / f"{self.name(path, replicate)}.parquet"
        return pd.read_parquet(f) if f.is_file() else None


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------- many, on dask
@dataclass(frozen=True)
class Task:
    scenario: Scenario
    path: str
    replicate: int


def pending_tasks(scenario: Scenario, store: Store) -> list[Task]:
    """The replicates not yet stored: exports-path ones first (the long tasks start first and do not trail)."""
    tasks = []
    for path, count in (("exports", scenario.exports_replicates), ("fast", scenario.replicates)):
        done = store.done(path)
        tasks += [Task(scenario, path, r) for r in range(count) if r not in done]
    return tasks


def _execute(task: Task) -> ReplicateResult:
    return run_replicate(task.scenario, task.replicate, task.path)


def _truth_task(scenario: Scenario, folder: str) -> dict[str, Any]:
    return scenario_truth(scenario, Path(folder))


#: environment of a local worker process: one BLAS / OpenMP thread (set before numpy loads; distributed's nanny
#: sets the same by default, ``distributed.nanny.pre-spawn-environ``, unless a user's dask config changes it).
ONE_BLAS_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


#: dask config for local workers: do not set glibc's ``MALLOC_TRIM_THRESHOLD_`` (distributed's default
#: ``distributed.nanny.pre-spawn-environ`` sets 65536 to hand freed memory back to the system). Setting it fixes the
#: mmap threshold too (glibc mallopt), so every array above 128 KiB is mapped afresh and its pages faulted in on each
#: allocation: a replicate, which allocates many mid-sized pandas and numpy arrays, took 0.92 s with it against 0.68
#: s without (benchmarks/results/bench_simulation.txt). A replicate's worker holds well under 1 GB, so the memory
#: trimming is not needed here. For a cluster of your own, set the same key to null in its dask config (README).
KEEP_MALLOC_DEFAULTS = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


@contextmanager
def _without_environ(name: str) -> Iterator[None]:
    """``os.environ`` without ``name`` inside the block, as it was after it. A nanny writes its pre-spawn
    environment into the *parent's* ``os.environ`` (distributed ``WorkerProcess.start``) and never takes it back,
    so any LocalCluster started earlier in the process (e.g. a batch run's) leaves ``MALLOC_TRIM_THRESHOLD_=65536``
    behind for every worker spawned later; the dask config alone cannot keep it out of our workers."""
    saved = os.environ.pop(name, None)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


def open_client(workers: int | None = None, scheduler: str | None = None) -> tuple[Any, Any]:
    """A dask.distributed client: on the scheduler at ``scheduler`` (an existing cluster, e.g. started with
    dask-jobqueue), else on a new ``LocalCluster`` of ``workers`` single-threaded worker processes (default: the
    machine's cores) with one BLAS thread each (``ONE_BLAS_THREAD``; on any cluster every replicate also runs
    under ``threadpool_limits(1)``) and glibc's default malloc tuning (``KEEP_MALLOC_DEFAULTS``: no
    ``MALLOC_TRIM_THRESHOLD_``, from the dask config or from this process's environment). Returns (client, cluster
    or None); close both when done."""
    import dask
    from dask.distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    n = int(workers or os.cpu_count() or 1)
    with dask.config.set(KEEP_MALLOC_DEFAULTS), _without_environ("MALLOC_TRIM_THRESHOLD_"):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                               env=dict(ONE_BLAS_THREAD))
    return Client(cluster), cluster


@dataclass
class RunSummary:
    scenario: str
    folder: Path
    ran: int
    failed: list[dict[str, Any]]
    seconds: float


def run_simulation(scenarios: list[Scenario], out_root: Path, *, workers: int | None = None,
                   scheduler: str | None = None, fresh: bool = False, progress: bool = True,
                   client: Any = None, log: Callable[[str], None] = print) -> list[RunSummary]:
    """Run every pending replicate of every scenario on dask, storing each as it finishes; then the truths.

    The truths (one very large cohort per scenario) are computed on the cluster too, alongside the replicates.
    ``client``: an open dask client to use (tests); otherwise one is opened (``open_client``) and closed."""
    from dask.distributed import as_completed

    stores = {s.name: Store(s, s.output_dir(out_root=out_root)) for s in scenarios}
    if len(stores) != len(scenarios):
        raise SimulationError("two scenario files share a scenario name; each needs its own folder")
    for st in stores.values():
        st.open(fresh=fresh)
    tasks = [t for s in scenarios for t in pending_tasks(s, stores[s.name])]
    own = client is None
    cluster = None
    if own:
        client, cluster = open_client(workers, scheduler)
    t0 = time.perf_counter()
    counts = {s.name: 0 for s in scenarios}
    try:
        truth_futures = [client.submit(_truth_task, s, str(stores[s.name].folder), pure=False) for s in scenarios]
        run_id = uuid.uuid4().hex[:8]   # keys unique per run: a cluster never hands back an earlier run's result
        by_key = {f"{t.scenario.name}-{t.path}-r{t.replicate:05d}-{run_id}": t for t in tasks}
        futures = client.map(_execute, tasks, pure=False, key=list(by_key)) if tasks else []
        bar = _progress(len(futures), progress)
        for fut in as_completed(futures):
            res = _result(fut, by_key)
            stores[res.scenario].write(res)
            counts[res.scenario] += 1
            bar.update(1)
            if not res.ok:
                log(f"[{res.scenario}] replicate {res.replicate} ({res.path}) FAILED (generator seed "
                    f"{res.generator_seed}); see {stores[res.scenario].failures}")
        bar.close()
        for fut in truth_futures:
            fut.result()
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
    secs = time.perf_counter() - t0
    return [RunSummary(name, st.folder, counts[name], st.failed(), secs) for name, st in stores.items()]


def _result(fut: Any, by_key: dict[str, Task]) -> ReplicateResult:
    """A finished future's result; a worker that died (or a task lost) becomes a failure with the task's seeds."""
    try:
        return fut.result()
    except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: reported with the seeds, not lost
        task = by_key[fut.key]
        return ReplicateResult(task.scenario.name, task.path, task.replicate,
                               *replicate_seeds(task.scenario.seed, task.replicate),
                               error=f"{type(exc).__name__}: {exc}")


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, show: bool) -> Any:
    """A tqdm bar: replicates done of total, rate and estimated time left."""
    if not show or total == 0:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="replicate", desc="simulation", smoothing=0.05, mininterval=1.0)


# --------------------------------------------------------------------------------------------------- rerun one alone
def rerun_replicate(scenario: Scenario, out_root: Path, replicate: int, path: str = "fast") -> tuple[
        ReplicateResult, pd.DataFrame | None]:
    """Run one replicate alone, in this process, and return it with its stored rows (None if not stored), so that
    a reader can check that the rerun reproduces the stored result exactly."""
    store = Store(scenario, scenario.output_dir(out_root=out_root))
    return run_replicate(scenario, replicate, path), store.read(path, replicate)


def iter_scenario_estimates(scenarios: Iterable[Scenario], out_root: Path) -> Iterable[tuple[Scenario, Store]]:
    for s in scenarios:
        yield s, Store(s, s.output_dir(out_root=out_root))
