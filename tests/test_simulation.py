"""The Monte Carlo simulation (analysis_utils.simulation; docs/methods/simulation.md): performance measures against
hand arithmetic (Morris, White & Crowther 2019, Table 6), the truth's Cox solver against stats.cox, seeds,
per-replicate storage, resume after an interruption, a replicate rerun alone, failures with their seeds, the
supplement section; and (slow) the operating characteristics: every estimator unbiased with ~95 % coverage when
there is no confounding, the crude one biased when there is.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis_utils.reporting.manuscript import variables_simulation as vs
from analysis_utils.simulation import engine, estimators, performance, report, sources
from analysis_utils.simulation.scenario import generator_problem, load_scenario
from analysis_utils.simulation.truth import cox_binary, cox_breslow, po_truths
from analysis_utils.stats.cox import cox_ph
from analysis_utils.study.project import ParamsError
from analysis_utils.synthetic import SCENARIOS

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------------- measures
def test_measures_match_hand_arithmetic():
    x = np.array([1.0, 2.0, 3.0, 6.0])
    se = np.array([1.0, 1.0, 2.0, 2.0])
    lower, upper = x - 2 * se, x + 2 * se
    m = performance.measures(x, se, lower, upper, theta=2.0, null=0.0)
    # mean 3, var (4 + 1 + 0 + 9) / 3 = 14/3
    assert m["bias"] == pytest.approx(1.0) and m["bias_mcse"] == pytest.approx(math.sqrt(14 / 3 / 4))
    assert m["relative_bias"] == pytest.approx(0.5) and m["relative_bias_mcse"] == pytest.approx(m["bias_mcse"] / 2)
    assert m["empirical_se"] == pytest.approx(math.sqrt(14 / 3))
    assert m["empirical_se_mcse"] == pytest.approx(math.sqrt(14 / 3) / math.sqrt(6))
    # model SE sqrt(mean(1, 1, 4, 4)) = sqrt(2.5); var(s^2) = 3 -> MCSE sqrt(3 / (4 * 4 * 2.5))
    assert m["model_se"] == pytest.approx(math.sqrt(2.5))
    assert m["model_se_mcse"] == pytest.approx(math.sqrt(3 / (16 * 2.5)))
    # squared errors 1, 0, 1, 16: MSE 4.5, MCSE sqrt(((-3.5)^2 + 4.5^2 + 3.5^2 + 11.5^2) / 12)
    assert m["mse"] == pytest.approx(4.5)
    assert m["mse_mcse"] == pytest.approx(math.sqrt((3.5 ** 2 + 4.5 ** 2 + 3.5 ** 2 + 11.5 ** 2) / 12))
    # CIs: [-1, 3], [0, 4], [-1, 7], [2, 10]: all contain 2; exclude 0: only the last
    assert m["coverage"] == 1.0 and m["coverage_mcse"] == 0.0
    assert m["rejection"] == 0.25 and m["rejection_mcse"] == pytest.approx(math.sqrt(0.25 * 0.75 / 4))
    assert not m["rejection_is_type1"]
    ratio = math.sqrt(2.5) / math.sqrt(14 / 3)
    assert m["relative_error_model_se"] == pytest.approx(ratio - 1)
    assert m["relative_error_model_se_mcse"] == pytest.approx(ratio * math.sqrt(3 / (16 * 2.5 ** 2) + 1 / 6))


def test_failed_replicates_are_left_out_and_counted_and_the_null_gives_type1():
    est = pd.DataFrame({"path": "fast", "method": "m", "endpoint": "os", "quantity": "log_hr", "population": "ate",
                        "replicate": [0, 1, 2], "estimate": [0.1, np.nan, -0.1], "se": [0.1, np.nan, 0.1],
                        "lower": [-0.1, np.nan, -0.3], "upper": [0.3, np.nan, 0.1]})
    t = performance.performance_table(est, {"os.log_hr.ate": 0.0}).iloc[0]
    assert t["n_replicates"] == 3 and t["n_valid"] == 2 and t["n_failed"] == 1
    assert t["bias"] == pytest.approx(0.0) and t["rejection"] == 0.0 and t["rejection_is_type1"]
    assert math.isnan(t["relative_bias"])          # undefined at theta = 0


# --------------------------------------------------------------------------------------------------- truth
def test_truth_cox_solver_equals_stats_cox_breslow_with_weights_and_ties():
    rng = np.random.default_rng(3)
    n = 400
    a = rng.random(n) < 0.5
    t = np.round(rng.exponential(np.where(a, 12, 8)), 0) + 1      # heavy ties
    c = rng.uniform(2, 30, n)
    w = rng.uniform(0.2, 2, n)
    time, event = np.minimum(t, c), (t <= c).astype(int)
    df = pd.DataFrame({"t": time, "e": event, "a": a.astype(int), "w": w})
    ref = cox_ph(df, "t", "e", ["a"], ties="breslow", weights_col="w")
    assert cox_binary(time, event, a, w) == pytest.approx(ref["coef"].iloc[0], abs=1e-8)
    # two covariates (the conditional truth: arm + the outcome model's linear predictor)
    df["z"] = rng.normal(size=n)
    ref2 = cox_ph(df, "t", "e", ["a", "z"], ties="breslow", weights_col="w")
    got = cox_breslow(time, event, np.column_stack([a, df["z"]]), w)
    assert got == pytest.approx(ref2["coef"].to_numpy(), abs=1e-8)


def test_po_truths_by_hand():
    t1 = np.array([5.0, 15.0, 30.0, 40.0])
    t0 = np.array([2.0, 10.0, 11.0, 30.0])
    out = po_truths({"os": (t1, t0)}, censor=np.full(4, 100.0), treated=np.array([True, True, False, False]),
                    ps=np.array([0.5, 0.5, 0.5, 0.5]), timepoints=[12.0], tau=24.0, conditional_log_hr={"os": -0.5})
    assert out["os.surv_diff_12m.ate"] == pytest.approx(3 / 4 - 1 / 4)
    assert out["os.surv_diff_12m.att"] == pytest.approx(1 / 2 - 0)
    assert out["os.rmst_diff_24m.ate"] == pytest.approx((5 + 15 + 24 + 24 - 2 - 10 - 11 - 24) / 4)
    assert out["os.log_hr.conditional"] == -0.5
    assert out["os.log_hr.ate"] < 0


# --------------------------------------------------------------------------------------------------- scenarios, seeds
def test_every_scenario_file_loads_and_names_its_own_folder():
    files = sorted((ROOT / "params" / "simulation").glob("*.yaml"))
    names = [load_scenario(f).name for f in files]
    assert len(names) == 8 and len(set(names)) == 8 and "default" in names and "null" in names
    default = load_scenario(ROOT / "params" / "simulation" / "default.yaml")
    assert default.replicates == 200 and default.params["matching"]["caliper"] == 0.2  # the notebooks' settings
    assert generator_problem(default) is None


def test_every_generator_scenario_runs_and_uses_the_generator_presets():
    """Each scenario file sets the knobs of the generator's preset of the same name (synthetic.SCENARIOS), and the
    installed generator accepts them (none is "pending" for a missing knob)."""
    presets = {"missing_mar": "mar_missing", "missing_mnar": "mnar_missing"}
    for f in sorted((ROOT / "params" / "simulation").glob("*.yaml")):
        s = load_scenario(f)
        assert generator_problem(s) is None, f
        preset = SCENARIOS[presets.get(s.name, s.name)]
        assert {k: s.params["synthetic"][k] for k in preset} == preset, f
        cfg = s.generator_config(5)
        assert cfg["seed"] == s.seed and cfg["replicate_seed"] == 5      # one mechanism, replicates drawn from it
        assert cfg["truth_grace_days"] == s.params["target_trial"]["grace_days"]


def test_replicate_seeds_are_spawned_children_and_independent_of_order():
    kids = np.random.SeedSequence(11).spawn(3)
    for r, kid in enumerate(kids):
        gen, methods = kid.spawn(2)
        assert engine.replicate_seeds(11, r) == (int(gen.generate_state(1)[0]), int(methods.generate_state(1)[0]))
    assert len({engine.replicate_seeds(11, r) for r in range(50)}) == 50


def _reference(tmp_path: Path, name: str = "ref", confounding: float = 0.0, replicates: int = 3, n: int = 300,
               methods: list[str] | None = None) -> Path:
    f = tmp_path / f"{name}.yaml"
    f.write_text(yaml.safe_dump({
        "base": str(ROOT / "params" / "simulation" / "default.yaml"), "run_name": f"simulation-{name}",
        "simulation": {"scenario": name, "source": "reference", "replicates": replicates, "truth_n": 20000,
                       "endpoints": ["os"], "methods": methods or ["crude", "adjusted_cox", "psm", "iptw",
                                                                   "overlap"]},
        "reference": {"n": n, "confounding": confounding}}))
    return f


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0")
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


def _blas_env() -> dict:
    import os

    return {k: os.environ.get(k) for k in engine.ONE_BLAS_THREAD}


def test_local_cluster_workers_run_one_blas_thread():
    """The LocalCluster's worker processes start with OMP/OpenBLAS/MKL limited to one thread, even when the dask
    config's nanny defaults are switched off."""
    import dask
    import distributed  # noqa: F401 - its config defaults loaded first, so leaving the context restores them

    with dask.config.set({"distributed.nanny.pre-spawn-environ": {}}):
        c, cluster = engine.open_client(workers=1)
        try:
            assert list(c.run(_blas_env).values()) == [engine.ONE_BLAS_THREAD]
        finally:
            c.close()
            cluster.close()


def _malloc_env() -> str | None:
    import os

    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


@pytest.mark.parametrize("parent_env", [None, "65536"], ids=["clean-parent", "parent-left-by-an-earlier-nanny"])
def test_local_cluster_workers_keep_glibc_malloc_defaults(monkeypatch, parent_env):
    """distributed's default ``MALLOC_TRIM_THRESHOLD_`` (65536) is not set in the local workers: it fixes glibc's
    mmap threshold and made every replicate about a third slower (engine.KEEP_MALLOC_DEFAULTS). That holds also
    when an earlier LocalCluster of the same process (a batch run's) has left it in ``os.environ``, as a nanny
    does. Leaving the LocalCluster's start restores the dask config and the process's environment."""
    import os

    import dask
    import distributed  # noqa: F401 - its config defaults loaded first

    if parent_env is None:
        monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    else:
        monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", parent_env)
    before = dask.config.get("distributed.nanny.pre-spawn-environ")
    assert before.get("MALLOC_TRIM_THRESHOLD_") is not None       # distributed's default, as shipped
    c, cluster = engine.open_client(workers=1)
    try:
        assert list(c.run(_malloc_env).values()) == [None]
        assert list(c.run(_blas_env).values()) == [engine.ONE_BLAS_THREAD]
    finally:
        c.close()
        cluster.close()
    assert dask.config.get("distributed.nanny.pre-spawn-environ") == before
    assert os.environ.get("MALLOC_TRIM_THRESHOLD_") == parent_env


# --------------------------------------------------------------------------------------------------- storage, resume
def test_interrupted_run_resumes_without_redoing_finished_replicates(tmp_path, client):
    s = load_scenario(_reference(tmp_path, replicates=4, methods=["crude"]))
    out = tmp_path / "sim"
    # a run stopped after two replicates: the two stored files, and a half-written temporary file
    engine.run_simulation([s.with_design(replicates=2)], out, client=client, progress=False)
    reps = s.output_dir(out_root=out) / "replicates"
    first = {f.name: f.read_bytes() for f in reps.glob("*.parquet")}
    assert sorted(first) == ["fast-r00000.parquet", "fast-r00001.parquet"]
    (reps / ".fast-r00002.parquet.tmp").write_bytes(b"partial")
    stamps = {f.name: f.stat().st_mtime_ns for f in reps.glob("*.parquet")}
    [summary] = engine.run_simulation([s], out, client=client, progress=False)
    assert summary.ran == 2 and summary.failed == []          # only replicates 2 and 3 ran
    assert sorted(f.name for f in reps.glob("*.parquet")) == [f"fast-r0000{i}.parquet" for i in range(4)]
    assert {f: reps.joinpath(f).stat().st_mtime_ns for f in stamps} == stamps   # untouched
    [again] = engine.run_simulation([s], out, client=client, progress=False)
    assert again.ran == 0
    est = engine.Store(s, s.output_dir(out_root=out)).estimates()
    assert sorted(est["replicate"].unique()) == [0, 1, 2, 3]


def test_a_replicate_rerun_alone_reproduces_its_stored_result_exactly(tmp_path, client):
    s = load_scenario(_reference(tmp_path, replicates=3))
    out = tmp_path / "sim"
    engine.run_simulation([s], out, client=client, progress=False)
    res, stored = engine.rerun_replicate(s, out, 2)
    assert res.ok and stored is not None
    pd.testing.assert_frame_equal(res.rows.reset_index(drop=True), stored, check_exact=True)
    # and it does not depend on the other replicates: the same result in a fresh folder with only this one asked
    other = engine.run_replicate(s, 2)
    pd.testing.assert_frame_equal(other.rows.reset_index(drop=True), stored, check_exact=True)


def test_other_params_in_the_same_folder_are_refused(tmp_path, client):
    out = tmp_path / "sim"
    s = load_scenario(_reference(tmp_path, replicates=1, methods=["crude"]))
    engine.run_simulation([s], out, client=client, progress=False)
    changed = load_scenario(_reference(tmp_path, replicates=1, methods=["crude"], confounding=1.0))
    with pytest.raises(engine.SimulationError, match="other params"):
        engine.run_simulation([changed], out, client=client, progress=False)
    [ok] = engine.run_simulation([changed], out, client=client, progress=False, fresh=True)
    assert ok.ran == 1


def test_a_failed_replicate_is_reported_with_its_seeds(tmp_path, client, monkeypatch):
    s = load_scenario(_reference(tmp_path, replicates=3, methods=["crude"]))
    real = sources.generate

    def flaky(scenario, seed, path="fast", workdir=None):
        if seed == engine.replicate_seeds(scenario.seed, 1)[0]:
            raise RuntimeError("disk full")
        return real(scenario, seed, path, workdir)

    monkeypatch.setattr(sources, "generate", flaky)
    out = tmp_path / "sim"
    [summary] = engine.run_simulation([s], out, client=client, progress=False, log=lambda m: None)
    [fail] = summary.failed
    assert fail["replicate"] == 1 and fail["root_seed"] == s.seed
    assert fail["generator_seed"] == engine.replicate_seeds(s.seed, 1)[0] and "disk full" in fail["error"]
    monkeypatch.setattr(sources, "generate", real)
    [retry] = engine.run_simulation([s], out, client=client, progress=False)
    assert retry.ran == 1 and retry.failed == []          # tried again, and the failure record is gone


def test_a_method_that_fails_is_recorded_and_the_others_still_run():
    frame = pd.DataFrame({"study_id": ["a", "b"], "arm": ["HAIC-TKIs-P", "TKIs-P"], "os_months": [1.0, 2.0],
                          "os_event": [0, 0]})
    s = estimators.Settings(matching={}, survival={"conf_level": 0.95}, endpoints=["os"], timepoints=[12.0],
                            tau=24.0, seed=1)
    rows, secs = estimators.run_methods(frame, ["crude", "psm", "ccw", "mi", "no_such_method"], s)
    assert set(secs) == {"crude", "psm", "ccw", "mi"}            # an unknown method is not run
    assert rows["estimate"].isna().all() and (rows["note"] != "").all()
    assert set(rows["method"]) == {"crude", "psm", "ccw", "mi"}
    assert estimators.unavailable(["crude", "ccw", "naive_ever_haic", "mi", "psm_cc", "no_such_method"]).keys() == {
        "no_such_method"}


# --------------------------------------------------------------------------------------------------- report, manuscript
def test_report_and_supplement_section(tmp_path, client):
    s = load_scenario(_reference(tmp_path, replicates=3))
    out = tmp_path / "outputs" / "simulation"
    engine.run_simulation([s], out, client=client, progress=False)
    summary = report.write_report([s], out, not_run={"params/simulation/x.yaml": "unknown synthetic config key"})
    assert (out / "figures" / "simulation_ref.png").is_file() and (out / "tables" / "simulation_performance.md").is_file()
    assert summary["scenarios"][0]["replicates_done"] == 3 and summary["not_run"][0]["params_file"].endswith("x.yaml")
    run = tmp_path / "outputs" / "default"          # a run beside the simulation
    gen = tmp_path / "generated"
    written = vs.write_section(run, gen)
    text = (gen / vs.SECTION).read_text(encoding="utf-8")
    assert "simulation_ref.png" in written[1] and "#etbl-sim-performance" in text and "not run" in text
    assert "3 replicates" in vs.simulation_variables(run)["status"]
    # no simulation beside the run: the section says so and names the command
    lonely = tmp_path / "elsewhere" / "default"
    vs.write_section(lonely, gen)
    text = (gen / vs.SECTION).read_text(encoding="utf-8")
    assert "No Monte Carlo simulation output exists" in text and vs.COMMAND in text
    assert vs.simulation_variables(lonely)["status"] == text.strip()


def test_supplement_says_what_the_arm_at_time_zero_truths_contrast():
    done = [{"label": "Default cohort", "truth_crossover_share": 0.1525},
            {"label": "Immortal time", "truth_crossover_share": 0.4012}, {"label": "Reference"}]
    text = vs._contrast_text(done)
    assert "TKIs-P at time zero followed by the HAIC a patient goes on to receive" in text
    assert "15.2% to 40.1% of the TKIs-P patients at time zero received HAIC later (the most in the scenario " \
           "Immortal time)" in text
    assert "In the truth cohort 15.2% of" in vs._contrast_text(done[:1])
    assert "received HAIC later" not in vs._contrast_text(done[2:])


@pytest.mark.slow
def test_simulate_command_runs_reruns_and_reports(tmp_path, capsys):
    from analysis_utils.runner.cli import main

    f = _reference(tmp_path, replicates=2, methods=["crude"])
    out = tmp_path / "sim"
    assert main(["simulate", "--params", str(f), "--workers", "1", "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / report.SUMMARY_FILE).read_text())["scenarios"][0]["replicates_done"] == 2
    assert main(["simulate", "--params", str(f), "--out", str(out), "--replicate", "1"]) == 0
    assert "identical to the stored result" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"base": str(ROOT / "params" / "simulation" / "default.yaml"),
                                   "synthetic": {"no_such_knob": 1}}))
    assert main(["simulate", "--params", str(bad), "--out", str(out), "--no-progress"]) == 2
    assert "no_such_knob" in capsys.readouterr().err


def test_simulate_command_on_an_existing_scheduler(tmp_path, capsys):
    """``--scheduler ADDRESS``: the command connects to a cluster started elsewhere (here a LocalCluster standing in
    for a dask-jobqueue one), runs the replicates there, leaves that cluster running and writes the same report."""
    from dask.distributed import Client, LocalCluster

    from analysis_utils.runner.cli import main

    f = _reference(tmp_path, replicates=3, methods=["crude"])
    out = tmp_path / "sim"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        assert main(["simulate", "--params", str(f), "--scheduler", cluster.scheduler_address, "--out", str(out),
                     "--no-progress"]) == 0
        assert f"the dask scheduler at {cluster.scheduler_address}" in capsys.readouterr().out
        with Client(cluster.scheduler_address) as c:                  # still up after the command
            assert len(c.scheduler_info()["workers"]) == 1
    summary = json.loads((out / report.SUMMARY_FILE).read_text())
    assert summary["scenarios"][0]["replicates_done"] == 3 and not summary["scenarios"][0]["failed"]


# --------------------------------------------------------------------------------------------------- validity (slow)
@pytest.mark.slow
def test_without_confounding_every_estimator_is_unbiased_and_covers(tmp_path, client):
    s = load_scenario(_reference(tmp_path, "none", confounding=0.0, replicates=40, n=600))
    out = tmp_path / "sim"
    engine.run_simulation([s], out, client=client, progress=False)
    perf, _, _ = report.scenario_performance(s, engine.Store(s, s.output_dir(out_root=out)))
    assert set(perf["method"]) == {"crude", "adjusted_cox", "psm", "iptw", "overlap"}
    for r in perf.itertuples():
        assert r.n_failed == 0, r
        # unbiased: within 3 Monte Carlo SEs (plus 2 % of the truth for finite-sample bias)
        assert abs(r.bias) <= 3 * r.bias_mcse + 0.02 * abs(r.true_value), r
        # coverage near 95 %: within 3 Monte Carlo SEs of the nominal level
        assert abs(r.coverage - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / r.n_valid), r


@pytest.mark.slow
def test_with_confounding_the_crude_estimator_is_biased_and_adjustment_is_not(tmp_path, client):
    s = load_scenario(_reference(tmp_path, "conf", confounding=1.5, replicates=20, n=600))
    out = tmp_path / "sim"
    engine.run_simulation([s], out, client=client, progress=False)
    perf, _, _ = report.scenario_performance(s, engine.Store(s, s.output_dir(out_root=out)))
    hr = perf[perf["quantity"] == "log_hr"].set_index("method")
    assert hr.loc["crude", "bias"] < -5 * hr.loc["crude", "bias_mcse"]      # favours HAIC, far beyond chance
    for m in ("adjusted_cox", "iptw", "overlap", "psm"):
        assert abs(hr.loc[m, "bias"]) <= 3 * hr.loc[m, "bias_mcse"] + 0.02, m


@pytest.mark.slow
def test_confounded_generator_scenario_crude_is_biased_and_the_exports_path_runs(tmp_path, client):
    """Strong confounding by indication (the generator's preset): the crude log-HR of HAIC at time zero is biased in
    favour of HAIC against the ATE truth; and the exports-and-cleaning path runs on the same seed."""
    s = load_scenario(ROOT / "params" / "simulation" / "strong_confounding.yaml").with_design(
        replicates=12, exports_replicates=1, truth_n=20000, methods=["crude"])
    out = tmp_path / "sim"
    [summary] = engine.run_simulation([s], out, client=client, progress=False)
    assert summary.failed == []
    perf, est, _ = report.scenario_performance(s, engine.Store(s, s.output_dir(out_root=out)))
    crude = perf[(perf["path"] == "fast") & (perf["method"] == "crude") & (perf["quantity"] == "log_hr")
                 & (perf["endpoint"] == "os")].iloc[0]
    assert crude["bias"] < -3 * crude["bias_mcse"]          # confounding by indication, in favour of HAIC
    assert set(est["path"]) == {"fast", "exports"} and est.loc[est["path"] == "exports", "estimate"].notna().all()


# --------------------------------------------------------------------------------------------------- generator path
@pytest.fixture(scope="module")
def small_default():
    return load_scenario(ROOT / "params" / "simulation" / "default.yaml").with_design(truth_n=20000)


def test_generator_fast_path_gives_the_cohort_and_reruns_identically(small_default):
    frame, facts = sources.generate(small_default, 11)
    again, _ = sources.generate(small_default, 11)
    pd.testing.assert_frame_equal(frame, again, check_exact=True)
    other, _ = sources.generate(small_default, 12)
    assert not frame["os_days"].equals(other["os_days"])                  # another replicate, another cohort
    for col in ("combination_day", "eligibility_query", "arm_ever_haic", "haic_offset_days", "os_days",
                "pfs_recist_days", "center_id", "study_id"):
        assert col in frame.columns, col
    assert frame["eligible"].all() and facts["n"] == len(frame) > 700
    haic0 = frame["arm"] == "HAIC-TKIs-P"
    assert (frame.loc[haic0, "haic_offset_days"] == 0).all() and facts["n_treated"] == int(haic0.sum())
    ever = frame["haic_offset_days"] <= small_default.params["cleaning"]["haic_window_days"]
    assert (frame["arm_ever_haic"].eq("HAIC-TKIs-P") == ever).all()
    assert (frame.loc[~haic0, "haic_offset_days"] > 0).any()               # HAIC after time zero exists


def test_ccw_estimator_gives_the_notebooks_estimates_with_a_bootstrap_or_ij_se(small_default):
    from analysis_utils.steps import target_trial as tt

    frame, _ = sources.generate(small_default, 11)
    s = estimators.settings_for(small_default.params, {**small_default.design, "ccw_bootstrap": 8,
                                                       "ccw_variance": "bootstrap"}, 3)
    rows, _ = estimators.run_methods(frame, ["ccw"], s)
    nb = tt.estimate(frame, {**small_default.params, "target_trial": {
        **small_default.params["target_trial"], "endpoints": ["os", "pfs_recist"]}}, seed=3, bootstrap_b=0, workers=1)
    r = rows.set_index(["endpoint", "quantity"])
    assert r.loc[("os", "surv_diff_12m"), "estimate"] == pytest.approx(nb["os_sdiff12m"], abs=1e-12)
    assert r.loc[("os", "surv_diff_24m"), "estimate"] == pytest.approx(nb["os_sdiff24m"], abs=1e-12)
    assert r.loc[("pfs", "rmst_diff_24m"), "estimate"] == pytest.approx(nb["pfs_recist_rmst_diff"], abs=1e-9)
    assert (rows["population"] == "tte").all() and (rows["se"] > 0).all()
    z = 1.959963984540054
    assert np.allclose(rows["upper"] - rows["estimate"], z * rows["se"])
    again, _ = estimators.run_methods(frame, ["ccw"], s)
    pd.testing.assert_frame_equal(rows, again, check_exact=True)             # the bootstrap is seeded
    # the default SE: robust IJ clustered on the patient; same estimates, SEs of the bootstrap's order (B = 8 here,
    # so only loosely), and no dependence on the methods seed
    assert small_default.design["ccw_variance"] == "ij"
    ij, _ = estimators.run_methods(frame, ["ccw"], estimators.settings_for(small_default.params,
                                                                            small_default.design, 3))
    other_seed, _ = estimators.run_methods(frame, ["ccw"], estimators.settings_for(small_default.params,
                                                                                    small_default.design, 4))
    pd.testing.assert_frame_equal(ij, other_seed, check_exact=True)
    assert np.array_equal(ij["estimate"], rows["estimate"]) and (ij["se"] > 0).all()
    assert np.allclose(ij["upper"] - ij["estimate"], z * ij["se"])
    ratio = ij["se"].to_numpy() / rows["se"].to_numpy()
    assert ((ratio > 0.5) & (ratio < 2.0)).all(), ratio


def test_ccw_variance_must_be_ij_or_bootstrap(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump({"base": str(ROOT / "params" / "simulation" / "default.yaml"),
                                 "simulation": {"ccw_variance": "sandwich"}}))
    with pytest.raises(ParamsError, match="ccw_variance"):
        load_scenario(f)


@pytest.mark.slow
def test_generator_truth_has_the_target_trial_contrasts_and_agrees_with_the_generator(small_default):
    from analysis_utils.simulation.truth import scenario_truth

    t = scenario_truth(small_default)
    v, never = t["values"], t["always_vs_never"]
    for ep in ("os", "pfs"):
        for q in ("surv_diff_12m", "surv_diff_24m", "rmst_diff_24m"):
            assert f"{ep}.{q}.tte" in v and f"{ep}.{q}.att" in v
            # two independent cohorts of 20 000 from the same mechanism: the ATE of HAIC from time zero versus
            # never agrees
            tol = 0.35 if q.startswith("rmst") else 0.03
            assert abs(never[f"{ep}.{q}.ate"] - t["check_generator_always_vs_never"][f"{ep}.{q}.ate"]) < tol, (ep, q)
            # against a TKIs-P arm that partly receives HAIC later the benefit of HAIC at time zero is smaller
            for pop in ("ate", "att", "ato"):
                assert 0 < v[f"{ep}.{q}.{pop}"] < never[f"{ep}.{q}.{pop}"], (ep, q, pop)
        # the grace-period contrast is smaller than HAIC from time zero versus never
        assert 0 < v[f"{ep}.rmst_diff_24m.tte"] < t["check_generator_always_vs_never"][f"{ep}.rmst_diff_24m.ate"]
        for pop in ("ate", "att", "ato"):
            assert never[f"{ep}.log_hr.{pop}"] < v[f"{ep}.log_hr.{pop}"] < 0
    assert 0.05 < t["crossover_share"] < 0.5
    assert t["generator_log_hr_current_haic"] == pytest.approx(math.log(0.62))
    assert math.log(0.62) < v["os.log_hr.conditional"] < 0


@pytest.mark.slow
def test_generator_truth_without_crossover_is_haic_from_time_zero_versus_never(tmp_path):
    """When (almost) nobody starts HAIC after time zero, the arm-at-time-zero contrasts equal HAIC from time zero
    versus never, and the conditional log-HR of the arm recovers the generator's log(true_hr_os): the Cox fit
    holds the outcome model's linear predictor and censors the potential outcomes independently of them."""
    from analysis_utils.simulation.truth import scenario_truth

    f = tmp_path / "no_crossover.yaml"
    f.write_text(yaml.safe_dump({
        "base": str(ROOT / "params" / "simulation" / "default.yaml"), "run_name": "simulation-no-crossover",
        "simulation": {"scenario": "no_crossover", "truth_n": 20000}, "synthetic": {"haic_first_share": 0.999}}))
    t = scenario_truth(load_scenario(f))
    v, never = t["values"], t["always_vs_never"]
    assert t["crossover_share"] < 0.002
    for k, value in never.items():
        assert v[k] == pytest.approx(value, abs=0.03 if "rmst" in k else 0.005), k
    assert v["os.log_hr.conditional"] == pytest.approx(math.log(0.62), abs=0.015)


@pytest.mark.slow
def test_generator_scenario_without_confounding_the_crude_estimator_is_unbiased(tmp_path, client):
    """No confounding in the generator: HAIC at time zero independent of the covariates and of the centre, and
    (almost) every HAIC given at time zero, so the arm at time zero is the treatment received. The crude comparison
    is then unbiased for HAIC from time zero versus none (ATE) and its CIs cover."""
    f = tmp_path / "no_confounding.yaml"
    f.write_text(yaml.safe_dump({
        "base": str(ROOT / "params" / "simulation" / "default.yaml"), "run_name": "simulation-no-confounding",
        "simulation": {"scenario": "no_confounding", "replicates": 40, "exports_replicates": 0, "truth_n": 40000,
                       "endpoints": ["os"], "methods": ["crude"]},
        "synthetic": {"confounding_strength": 0.0, "centre_haic_sd": 0.0, "haic_first_share": 0.999}}))
    s = load_scenario(f)
    out = tmp_path / "sim"
    [summary] = engine.run_simulation([s], out, client=client, progress=False)
    assert summary.failed == []
    perf, est, _ = report.scenario_performance(s, engine.Store(s, s.output_dir(out_root=out)))
    perf = perf[perf["population"] == "ate"]
    assert set(perf["quantity"]) == {"log_hr", "surv_diff_12m", "surv_diff_24m", "rmst_diff_24m"}
    for r in perf.itertuples():
        assert r.n_failed == 0, r
        assert abs(r.bias) <= 3 * r.bias_mcse + 0.02 * abs(r.true_value), r
        assert abs(r.coverage - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / r.n_valid), r


# --------------------------------------------------------------------------------------------------- missing-data methods
def test_mi_estimator_runs_in_the_engine_with_pooled_se_and_seeds_from_the_replicate():
    """``mi`` (estimators_mi.py: chained equations, matching within every imputed data set, Rubin's rules) and
    ``psm_cc`` on two tiny replicates of the MAR scenario: an estimate and a model SE for every ATT estimand, a t
    interval on the Barnard-Rubin df (wider than estimate +/- 1.96 SE), and the imputations seeded from the
    replicate's methods stream (a replicate rerun alone gives the same numbers, another replicate others)."""
    from analysis_utils.simulation.scenario import Scenario

    s = load_scenario(ROOT / "params" / "simulation" / "missing_mar.yaml")
    assert "mi" in s.design["methods"] and "psm_cc" in s.design["methods"] and s.params["imputation"]["m"] == 5
    params = {**s.params, "synthetic": {**s.params["synthetic"], "n_records": 260},
              "imputation": {**s.params["imputation"], "m": 2, "maxit": 2}}
    tiny = Scenario("tiny_mar", s.params_file, params, {**s.design, "methods": ["mi", "psm_cc"], "endpoints": ["os"]})
    runs = [engine.run_replicate(tiny, r) for r in (0, 1, 0)]
    assert all(r.ok for r in runs), [r.error for r in runs]
    rows = runs[0].rows
    mi = rows[rows["method"] == "mi"]
    assert set(mi["quantity"]) == {"log_hr", "surv_diff_12m", "surv_diff_24m", "rmst_diff_24m"}
    assert (mi["population"] == "att").all() and mi["estimate"].notna().all() and (mi["se"] > 0).all()
    assert ((mi["upper"] - mi["lower"]) / (2 * mi["se"]) > 1.959964).all()      # t quantile on finite df
    assert (mi["lower"] < mi["estimate"]).all() and (mi["estimate"] < mi["upper"]).all()
    assert rows.loc[rows["method"] == "psm_cc", "estimate"].notna().all()
    pd.testing.assert_frame_equal(rows, runs[2].rows, check_exact=True)        # seeded from the replicate
    other = runs[1].rows
    assert not np.allclose(mi["estimate"], other.loc[other["method"] == "mi", "estimate"])
    # the chains' seed is the replicate's methods seed: the estimator called directly with it gives the same rows
    frame, _ = sources.generate(tiny, runs[0].generator_seed)
    direct, _ = estimators.run_methods(frame, ["mi"], estimators.settings_for(tiny.params, tiny.design,
                                                                             runs[0].method_seed))
    assert np.array_equal(direct["estimate"].to_numpy(), mi["estimate"].to_numpy())


def test_psm_uses_notebook_04s_matching_spec_with_the_centre_term():
    """The simulation's propensity model is notebook 04's: the params' ``matching:`` plus centre as
    ``centres.ps_model`` says (fixed_effect: centre dummies; none: no centre; exact: also matched exactly)."""
    s = load_scenario(ROOT / "params" / "simulation" / "default.yaml")
    assert s.params["centres"]["ps_model"] == "fixed_effect"
    col = s.params["centres"]["column"]
    fe = estimators.settings_for(s.params, s.design, 1).matching
    assert col in fe["covariates"] and col in fe["categorical"] and col not in (fe.get("exact") or [])
    assert [c for c in fe["covariates"] if c != col] == list(s.params["matching"]["covariates"])
    none = estimators.settings_for({**s.params, "centres": {**s.params["centres"], "ps_model": "none"}}, s.design, 1)
    assert col not in none.matching["covariates"]
    exact = estimators.settings_for({**s.params, "centres": {**s.params["centres"], "ps_model": "exact"}}, s.design, 1)
    assert col in exact.matching["exact"]
    assert col not in s.params["matching"]["covariates"]          # the params themselves are not changed
