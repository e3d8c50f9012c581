"""Validity benchmark of multiple imputation against the missing-indicator and complete-case designs (issue #13,
"Validity"; not a timed test).

Runs the simulation engine (``analysis_utils.simulation``) on the scenarios params/simulation/missing_mar.yaml
(baseline covariates missing at random: the chance of a blank depends on age, extrahepatic spread, the arm at time
zero and the centre) and missing_mnar.yaml (missing not at random: worse ECOG, ascites, encephalopathy, AFP are
blank more often), ``--replicates`` generator replicates each (replicate r: ``SeedSequence(seed, spawn_key=(r,))``,
the generator's fast path), with the estimators of ``simulation/estimators.py`` and ``estimators_mi.py``:

- ``psm``: the paper's matching with the missing-indicator design (median / mode fill plus a 0/1 indicator per
  incomplete covariate in the propensity model), Cox model of arm in the matched cohort clustered on the pair,
  Kaplan-Meier survival differences, survRM2 RMST difference;
- ``psm_cc``: the same among complete cases (every matching covariate observed);
- ``mi``: multiple imputation by chained equations (the params' imputation model, ``imputation.m`` imputations:
  5 in the scenario files, ``--m`` overrides), the same matching and outcome analyses within every imputed data
  set, Rubin's rules (t interval on the Barnard-Rubin df);
- ``psm_no_missing``: ``psm`` on the same replicate generated with ``missing_rate: 0`` (the generator draws the
  blanks from their own random stream, so the patients, treatments and outcomes are the same; the cohort differs
  only by the few patients whose failing eligibility criterion a blank hides): what the matched analysis gives
  without missing data, so that the bias the missing-data designs add can be told apart from the bias the matched
  analysis has anyway.

Every method targets the ATT contrasts of "HAIC at time zero" versus "TKIs-P at time zero, with the HAIC the patient
goes on to receive" (the arm at time zero, crossovers staying TKIs-P) in the patients with HAIC at time zero
(``simulation/truth.py``, ``generator_truth``): the marginal log hazard ratio (the weighted Cox estimate on the
treated patients' two potential outcomes, each censored at the patient's censoring time had the patient not died:
the HR a trial in that population with that follow-up would estimate), the differences of S(12 m) and S(24 m), and
the RMST(24 m) difference, for OS and latent PFS. The truths are those of the missing scenario's mechanism
(``truth_n`` = 200 000 generated persons; the scenario's missingness does not enter the potential outcomes). The complete-case
design estimates the ATT among complete-case treated patients, which differs from the ATT when missingness
depends on the arm or on effect modifiers: scored against the full ATT, that shows as bias. PFS in the data is
scan-detected and the truth is latent, so PFS biases include assessment-time bias for every method.

Reported per mechanism, method and estimand, with Monte Carlo SEs (Morris, White & Crowther 2019,
``simulation.performance``): bias, empirical SE, model SE, coverage of the 95 % CI; and the seconds per replicate
of each method (ratio: ``mi`` against ``psm``, the analysis it repeats m times). Output:
``benchmarks/results/mi_validity_<mechanism>.json`` and ``.md`` (quoted by docs/methods/missing-data.md).

Run (one mechanism per locked job):
    flock /work/cpu.lock nice -n 5 .venv/bin/python benchmarks/bench_mi_validity.py --mechanism mar
        [--replicates 30] [--m 5] [--workers 2] [--out DIR]
``--out`` keeps the replicate files (default a temporary folder); a rerun with the same ``--out`` resumes.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = {"mar": "params/simulation/missing_mar.yaml", "mnar": "params/simulation/missing_mnar.yaml"}
METHODS = ["psm", "psm_cc", "mi"]
NO_MISSING = "psm_no_missing"
ORDER = {"psm_no_missing": 0, "psm": 1, "psm_cc": 2, "mi": 3}
LABELS = {"psm_no_missing": "PSM, no missing data", "psm": "PSM, missing indicator", "psm_cc": "PSM, complete cases",
          "mi": "MI + PSM within (Rubin)"}


def scenarios(mechanism: str, replicates: int, m: int | None) -> tuple:
    """(the missing scenario with the three methods, its no-missing twin with ``psm``)."""
    from analysis_utils.simulation.scenario import Scenario, load_scenario

    s = load_scenario(ROOT / SCENARIOS[mechanism]).with_design(replicates=replicates, exports_replicates=0,
                                                               methods=METHODS)
    if m is not None:
        s = Scenario(s.name, s.params_file, {**s.params, "imputation": {**s.params["imputation"], "m": int(m)}},
                     s.design)
    twin = Scenario(f"{s.name}_no_missing", s.params_file,
                    {**s.params, "synthetic": {**s.params["synthetic"], "missing_rate": 0.0}},
                    {**s.design, "scenario": f"{s.name}_no_missing", "methods": ["psm"]})
    return s, twin


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mechanism", choices=sorted(SCENARIOS), required=True)
    ap.add_argument("--replicates", type=int, default=30)
    ap.add_argument("--m", type=int, default=None, help="imputations per replicate (default: the scenario file's)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--results", type=Path, default=None)
    a = ap.parse_args(argv)
    import pandas as pd

    from analysis_utils.simulation import engine, report
    from analysis_utils.simulation.performance import performance_table
    from bench_ccw_validity import _timings   # mean seconds per replicate and step, from the engine's timings.csv

    s, twin = scenarios(a.mechanism, a.replicates, a.m)
    results = a.results or ROOT / "benchmarks" / "results" / f"mi_validity_{a.mechanism}"
    tmp = None
    if a.out is None:
        tmp = tempfile.TemporaryDirectory()
        a.out = Path(tmp.name)
    t0 = time.perf_counter()
    summaries = engine.run_simulation([s, twin], a.out, workers=a.workers)
    wall = time.perf_counter() - t0
    _, est, truth = report.scenario_performance(s, engine.Store(s, s.output_dir(out_root=a.out)))
    _, est_nm, truth_nm = report.scenario_performance(twin, engine.Store(twin, twin.output_dir(out_root=a.out)))
    est_nm = est_nm.assign(method=NO_MISSING)
    both = pd.concat([est, est_nm], ignore_index=True)
    perf = performance_table(both, truth["values"])           # every method against the missing scenario's truth
    perf = perf[perf["population"] == "att"]
    shift = _paired_shift(est, est_nm)
    rows = [{**_row(r), **shift.get((r.method, r.estimand), {})} for r in perf.itertuples(index=False)]
    rows.sort(key=lambda r: (r["endpoint"], r["quantity"], ORDER[r["method"]]))
    secs = {**_timings(s.output_dir(out_root=a.out) / "logs" / "timings.csv"),
            **{f"{k} (no-missing twin)": v
               for k, v in _timings(twin.output_dir(out_root=a.out) / "logs" / "timings.csv").items()}}
    truth_gap = max(abs(truth["values"][k] - truth_nm["values"][k]) for k in truth["values"]
                    if k.endswith(".att") and k in truth_nm["values"])
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    doc = {"mechanism": a.mechanism, "scenario": s.name, "params_file": s.params_file,
           "generator": {k: v for k, v in s.params["synthetic"].items() if k.startswith("missing")},
           "replicates": a.replicates, "replicates_done": {x.scenario: x.ran for x in summaries},
           "failed": [f for x in summaries for f in x.failed], "m": int(s.params["imputation"]["m"]),
           "maxit": int(s.params["imputation"]["maxit"]), "conf_level": s.conf_level, "workers": a.workers,
           "wall_seconds": round(wall, 1), "peak_rss_mb": round(peak / 1024, 1),
           "mean_seconds_per_replicate": secs,
           "mi_over_psm_seconds": round(secs["mi"] / secs["psm"], 1) if secs.get("psm") else None,
           "patients_per_replicate_mean": float(est.groupby("replicate")["n"].first().mean()),
           "patients_no_missing_twin_mean": float(est_nm.groupby("replicate")["n"].first().mean()),
           "missing_share_by_variable": _missing_shares(s, min(a.replicates, 3)),
           "truth_source": truth.get("source"), "truth_n_persons": truth.get("n_persons"),
           "truth_max_abs_difference_no_missing_twin": truth_gap,
           "truth_att": {k: v for k, v in truth["values"].items() if k.endswith(".att")},
           "performance": rows, "python": platform.python_version()}
    results.parent.mkdir(parents=True, exist_ok=True)
    results.with_suffix(".json").write_text(json.dumps(doc, indent=2, default=float) + "\n", encoding="utf-8")
    results.with_suffix(".md").write_text(_markdown(doc), encoding="utf-8")
    print(_markdown(doc))
    if tmp is not None:
        tmp.cleanup()
    return 0


def _row(r) -> dict:
    return {"method": r.method, "endpoint": r.endpoint, "quantity": r.quantity, "estimand": r.estimand,
            "n_valid": int(r.n_valid), "n_failed": int(r.n_failed), "true_value": r.true_value,
            "mean_estimate": r.mean_estimate, "bias": r.bias, "bias_mcse": r.bias_mcse,
            "empirical_se": r.empirical_se, "model_se": r.model_se, "coverage": r.coverage,
            "coverage_mcse": r.coverage_mcse, "mse": r.mse}


def _paired_shift(est, est_nm) -> dict:
    """Per (method, estimand): the mean over replicates of (estimate - the no-missing twin's ``psm`` estimate of the
    same replicate) and its Monte Carlo SE (sd / sqrt(n)): the bias the missing data add to the matched analysis,
    with the sampling variation the two share taken out."""
    keys = ["replicate", "endpoint", "quantity", "population"]
    ref = est_nm[keys + ["estimate"]].rename(columns={"estimate": "ref"})
    d = est.merge(ref, on=keys, how="inner")
    d["diff"] = d["estimate"] - d["ref"]
    out = {}
    for (method, ep, q, pop), g in d.groupby(["method", "endpoint", "quantity", "population"]):
        x = g["diff"].dropna().to_numpy(float)
        if x.size > 1:
            out[(method, f"{ep}.{q}.{pop}")] = {"shift_vs_no_missing": float(x.mean()),
                                                "shift_mcse": float(x.std(ddof=1) / math.sqrt(x.size))}
    return out


def _missing_shares(s, k: int) -> dict[str, float]:
    """Share of blank values per imputation variable over the first ``k`` replicates' cohorts (what MI fills)."""
    import pandas as pd

    from analysis_utils.simulation import engine, sources

    frames = [sources.generate(s, engine.replicate_seeds(s.seed, r)[0])[0] for r in range(k)]
    f = pd.concat(frames, ignore_index=True)
    cols = [*s.params["imputation"]["variables"]]
    shares = f[cols].isna().mean()
    return {c: round(float(v), 4) for c, v in shares.items() if v > 0} | {
        "any_matching_covariate": round(float(f[[c for c in s.params["matching"]["covariates"]]].isna()
                                              .any(axis=1).mean()), 4)}


def _fmt(v: float, nd: int = 3) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:.{nd}f}"


def _markdown(doc: dict) -> str:
    mech = {"mar": "missing at random (MAR)", "mnar": "missing not at random (MNAR)"}[doc["mechanism"]]
    done = ", ".join(f"{k} {v}" for k, v in doc["replicates_done"].items())
    lines = [f"# MI validity benchmark: covariates {mech}, scenario `{doc['scenario']}`", "",
             f"`{doc['params_file']}` (generator: {doc['generator']}); {doc['replicates']} replicates per scenario "
             f"(new this run: {done}; {len(doc['failed'])} failed); about {doc['patients_per_replicate_mean']:.0f} "
             f"eligible patients per replicate ({doc['patients_no_missing_twin_mean']:.0f} in the no-missing twin); "
             f"MI with m = {doc['m']} imputations, maxit = {doc['maxit']}; {doc['workers']} workers, "
             f"{doc['wall_seconds']:.0f} s wall, peak RSS {doc['peak_rss_mb']:.0f} MB.", "",
             "Blank share per variable (first replicates' cohorts): "
             + ", ".join(f"{k} {100 * v:.1f} %" for k, v in doc["missing_share_by_variable"].items()) + ".", "",
             "Truth: ATT contrasts of HAIC at time zero versus TKIs-P at time zero with later HAIC as it happens "
             "(simulation/truth.py, "
             f"{doc['truth_n_persons']} eligible persons of the potential-outcome cohort); the no-missing twin's "
             f"truth differs by at most {doc['truth_max_abs_difference_no_missing_twin']:.2g} (scores use the first).", "",
             "Shift vs no missing: mean over replicates of the estimate minus the no-missing twin's PSM estimate "
             "of the same replicate (paired; the bias the missing data add).", "",
             "| estimand | method | n | truth | mean estimate | bias (MCSE) | shift vs no missing (MCSE) "
             "| empirical SE | model SE | coverage % (MCSE) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["performance"]:
        lines.append(f"| {r['estimand']} | {LABELS[r['method']]} | {r['n_valid']} | {_fmt(r['true_value'])} | "
                     f"{_fmt(r['mean_estimate'])} | {_fmt(r['bias'])} ({_fmt(r['bias_mcse'])}) | "
                     f"{_fmt(r.get('shift_vs_no_missing'))} ({_fmt(r.get('shift_mcse'))}) | "
                     f"{_fmt(r['empirical_se'])} | {_fmt(r['model_se'])} | "
                     f"{_fmt(100 * r['coverage'], 1)} ({_fmt(100 * r['coverage_mcse'], 1)}) |")
    lines += ["", "Mean seconds per replicate: " + ", ".join(f"{k} {v:.2f}" for k, v in
                                                             doc["mean_seconds_per_replicate"].items())
              + (f"; MI / PSM cost ratio {doc['mi_over_psm_seconds']}." if doc["mi_over_psm_seconds"] else "."), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
