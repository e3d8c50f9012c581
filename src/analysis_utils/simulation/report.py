"""The simulation's report: performance tables, one figure per scenario and the summary the manuscript reads.

Written under ``<output_root>/simulation/``:
- ``<scenario>/performance.csv``: every measure with its MCSE, per path, method and estimand;
- ``tables/simulation_performance.{csv,md}``: all scenarios (fast path), the measures a reader needs, formatted;
- ``tables/simulation_exports_vs_fast.{csv,md}``: replicates run through both paths (same generator seed): the
  difference exports-and-cleaning minus fast path, per method and estimand (cleaning errors show up here);
- ``figures/simulation_<scenario>.{png,svg}``: per estimand, the distribution of the estimates by method with the
  true value marked, and coverage with 95 % Monte Carlo intervals (1.96 MCSE);
- ``simulation_results.json``: what was run (scenarios, replicates, failures, methods not available, truth
  source) and the measures, for ``reporting/manuscript/variables_simulation.py``.
Method: docs/methods/simulation.md.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis_utils.reporting import tables
from analysis_utils.simulation import estimators
from analysis_utils.simulation.engine import Store
from analysis_utils.simulation.performance import performance_table
from analysis_utils.simulation.scenario import Scenario
from analysis_utils.simulation.truth import scenario_truth

SUMMARY_FILE = "simulation_results.json"
QUANTITY_LABELS = {"log_hr": "log HR"}
POPULATION_LABELS = {"ate": "ATE", "att": "ATT", "ato": "ATO", "conditional": "conditional", "tte": "target trial"}
ENDPOINT_LABELS = {"os": "OS", "pfs": "PFS"}


def quantity_label(quantity: str) -> str:
    """'log HR', 'S(12 m) difference', 'RMST(24 m) difference'."""
    if quantity in QUANTITY_LABELS:
        return QUANTITY_LABELS[quantity]
    kind, t = quantity.rsplit("_", 1)
    t = t.rstrip("m").replace("p", ".")
    return f"S({t} m) difference" if kind.startswith("surv") else f"RMST({t} m) difference"


def estimand_label(endpoint: str, quantity: str, population: str | None = None) -> str:
    tail = f", {POPULATION_LABELS.get(population, population)}" if population else ""
    return f"{ENDPOINT_LABELS.get(endpoint, endpoint)} {quantity_label(quantity)}{tail}"


def method_label(name: str) -> str:
    est = estimators.REGISTRY.get(name)
    return est.label if est else name


# --------------------------------------------------------------------------------------------------- tables
def _pm(x: float, mcse: float, digits: int) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    return f"{x:.{digits}f} ({mcse:.{digits}f})" if mcse is not None and math.isfinite(mcse) else f"{x:.{digits}f}"


def readable_performance(perf: pd.DataFrame) -> pd.DataFrame:
    """The fast-path measures as a reader wants them: estimand, method, n, truth, bias (MCSE), empirical SE,
    model SE, coverage % (MCSE), rejection % (power or type I error)."""
    p = perf[perf["path"] == "fast"]
    rows = []
    for r in p.itertuples(index=False):
        rows.append({
            "Scenario": r.scenario_label, "Estimand": estimand_label(r.endpoint, r.quantity, r.population),
            "Method": method_label(r.method), "n": f"{r.n_valid}/{r.n_replicates}",
            "True value": "—" if not math.isfinite(r.true_value) else f"{r.true_value:.3f}",
            "Bias (MCSE)": _pm(r.bias, r.bias_mcse, 3), "Empirical SE": _pm(r.empirical_se, np.nan, 3),
            "Model SE": _pm(r.model_se, np.nan, 3),
            "Coverage % (MCSE)": _pm(100 * r.coverage, 100 * r.coverage_mcse, 1),
            ("Type I error % (MCSE)" if r.rejection_is_type1 else "Power % (MCSE)"):
                _pm(100 * r.rejection, 100 * r.rejection_mcse, 1)})
    out = pd.DataFrame(rows)
    if "Type I error % (MCSE)" in out and "Power % (MCSE)" in out:
        out["Power / type I error % (MCSE)"] = out.pop("Power % (MCSE)").fillna(out.pop("Type I error % (MCSE)"))
    return out


def exports_vs_fast(estimates: pd.DataFrame) -> pd.DataFrame:
    """Replicates run through both paths: exports-and-cleaning estimate minus fast-path estimate, same seed."""
    keys = ["scenario", "replicate", "method", "endpoint", "quantity", "population"]
    ex = estimates[estimates["path"] == "exports"]
    fa = estimates[estimates["path"] == "fast"]
    both = ex.merge(fa, on=keys, suffixes=("_exports", "_fast"))
    if both.empty:
        return pd.DataFrame(columns=["scenario", "method", "endpoint", "quantity", "population", "n_pairs",
                                     "mean_difference", "max_abs_difference", "n_exports", "n_fast"])
    both["difference"] = both["estimate_exports"] - both["estimate_fast"]
    g = both.groupby(keys[:1] + keys[2:], sort=True)
    return g.agg(n_pairs=("difference", "size"), mean_difference=("difference", "mean"),
                 max_abs_difference=("difference", lambda d: float(np.nanmax(np.abs(d))) if d.notna().any()
                                     else float("nan")),
                 n_exports=("n_exports", "mean"), n_fast=("n_fast", "mean")).reset_index()


# --------------------------------------------------------------------------------------------------- figure
def scenario_figure(perf: pd.DataFrame, estimates: pd.DataFrame, title: str) -> Any:
    """Per estimand (rows): the estimates by method (points, box) with each method's true value marked (black
    tick), and coverage with 1.96 MCSE bars against the nominal level (dashed)."""
    import matplotlib.pyplot as plt

    p = perf[perf["path"] == "fast"]
    combos = p[["endpoint", "quantity"]].drop_duplicates().to_numpy().tolist()
    methods = [m for m in estimators.REGISTRY if m in set(p["method"])]
    fig, axes = plt.subplots(len(combos), 2, figsize=(8.5, 1.0 + 0.5 * len(methods) * len(combos)),
                             gridspec_kw={"width_ratios": [3, 1.3]}, squeeze=False)
    est = estimates[estimates["path"] == "fast"]
    for row, (ep, q) in enumerate(combos):
        ax, axc = axes[row]
        here = [m for m in methods if ((p["method"] == m) & (p["endpoint"] == ep) & (p["quantity"] == q)).any()]
        ys = np.arange(len(here))[::-1]
        for y, m in zip(ys, here):
            x = est.loc[(est["method"] == m) & (est["endpoint"] == ep) & (est["quantity"] == q), "estimate"]
            x = x[np.isfinite(x)].to_numpy()
            pr = p[(p["method"] == m) & (p["endpoint"] == ep) & (p["quantity"] == q)]
            if x.size:
                ax.boxplot(x, positions=[y], orientation="horizontal", widths=0.5, showfliers=False,
                           medianprops={"color": "#555555"}, boxprops={"color": "#888888"},
                           whiskerprops={"color": "#888888"}, capprops={"color": "#888888"})
                jitter = (np.random.default_rng(row * 100 + y).random(x.size) - 0.5) * 0.3
                ax.scatter(x, y + jitter, s=4, alpha=0.35, color="#0072B2", linewidths=0)
            if len(pr) and math.isfinite(pr["true_value"].iloc[0]):
                ax.plot([pr["true_value"].iloc[0]] * 2, [y - 0.38, y + 0.38], color="black", lw=2)
            if len(pr) and math.isfinite(pr["coverage"].iloc[0]):
                c, se = 100 * pr["coverage"].iloc[0], 100 * pr["coverage_mcse"].iloc[0]
                axc.errorbar([c], [y], xerr=[[1.96 * se], [1.96 * se]], fmt="o", color="#D55E00", ms=4, capsize=2)
        labels = [f"{method_label(m)} [{POPULATION_LABELS.get(_pop(p, m, ep, q), '')}]" for m in here]
        ax.set_yticks(ys, labels)
        ax.set_title(f"{ENDPOINT_LABELS.get(ep, ep)}: {quantity_label(q)}", loc="left", fontsize=9)
        ax.axvline(0, color="#bbbbbb", lw=0.8, ls=":")
        nominal = 100 * float(perf.attrs.get("conf_level", 0.95))
        axc.axvline(nominal, color="black", lw=0.8, ls="--")
        axc.set_yticks(ys, [""] * len(ys))
        axc.set_xlim(min(50, axc.get_xlim()[0]), 102)
        ax.set_ylim(-0.6, len(here) - 0.4)
        axc.set_ylim(-0.6, len(here) - 0.4)
        axc.set_title("Coverage %", loc="left", fontsize=9)
    fig.suptitle(title, x=0.01, ha="left", fontsize=10)
    fig.tight_layout()
    return fig


def _pop(p: pd.DataFrame, method: str, ep: str, q: str) -> str:
    r = p[(p["method"] == method) & (p["endpoint"] == ep) & (p["quantity"] == q)]
    return str(r["population"].iloc[0]) if len(r) else ""


# --------------------------------------------------------------------------------------------------- the report
def scenario_performance(scenario: Scenario, store: Store) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(performance, estimates, truth) of one scenario from its stored replicates."""
    truth = scenario_truth(scenario, store.folder)
    est = store.estimates()
    perf = performance_table(est, truth["values"]) if len(est) else pd.DataFrame()
    if len(perf):
        perf.insert(0, "scenario", scenario.name)
        perf.insert(1, "scenario_label", scenario.label)
        perf.attrs["conf_level"] = scenario.conf_level
    return perf, est, truth


def write_report(scenarios: list[Scenario], out_root: Path,
                 not_run: dict[str, str] | None = None) -> dict[str, Any]:
    """Performance per scenario, the combined tables, one figure per scenario and the summary JSON; ``not_run``:
    scenario params files that could not be simulated, with the reason (listed in the summary)."""
    from analysis_utils.reporting.figures import save_figure
    import matplotlib.pyplot as plt

    perfs, ests, summary_scenarios = [], [], []
    for s in scenarios:
        store = Store(s, s.output_dir(out_root=out_root))
        perf, est, truth = scenario_performance(s, store)
        failed = store.failed()
        info = {"name": s.name, "label": s.label, "aim": " ".join(str(s.design["aim"]).split()),
                "params_file": s.params_file, "replicates_planned": s.replicates,
                "exports_replicates_planned": s.exports_replicates,
                "replicates_done": int(est.loc[est["path"] == "fast", "replicate"].nunique()) if len(est) else 0,
                "exports_replicates_done": int(est.loc[est["path"] == "exports", "replicate"].nunique())
                if len(est) else 0,
                "failed": [{k: f[k] for k in ("path", "replicate", "root_seed", "generator_seed")} for f in failed],
                "methods_unavailable": estimators.unavailable(list(s.design["methods"])),
                "truth_source": truth.get("source"), "truth_n_persons": truth.get("n_persons"),
                "truth_crossover_share": truth.get("crossover_share"),
                "generator_changes": _generator_changes(s)}
        summary_scenarios.append(info)
        if not len(perf):
            continue
        perf.to_csv(store.folder / "performance.csv", index=False)
        perfs.append(perf)
        ests.append(est)
        fig = scenario_figure(perf, est, f"{s.label}: {info['replicates_done']} replicates")
        save_figure(fig, out_root, f"simulation_{s.name}")
        plt.close(fig)
    perf_all = pd.concat(perfs, ignore_index=True) if perfs else pd.DataFrame()
    if len(perf_all):
        fast = perf_all[perf_all["path"] == "fast"]
        tables.write_table(perf_all, out_root, "simulation_performance", markdown=readable_performance(fast))
        evf = exports_vs_fast(pd.concat(ests, ignore_index=True))
        tables.write_table(evf, out_root, "simulation_exports_vs_fast", markdown=_readable_evf(evf))
    first = scenarios[0] if scenarios else None
    summary = {
        "scenarios": summary_scenarios,
        "not_run": [{"params_file": k, "reason": v} for k, v in sorted((not_run or {}).items())],
        "methods": {m: {"label": e.label, "population": e.population, "description": e.description}
                    for m, e in estimators.REGISTRY.items()},
        "conf_level": first.conf_level if first else None,
        "performance": _records(perf_all),
    }
    out_root.mkdir(parents=True, exist_ok=True)
    (out_root / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True, default=_json_default)
                                         + "\n", encoding="utf-8")
    return summary


def _generator_changes(s: Scenario) -> dict[str, Any]:
    """The scenario's generator settings that differ from the study's cohort (params/default.yaml)."""
    from analysis_utils.study.project import load_params, project_root

    try:
        base = load_params(project_root() / "params" / "default.yaml").get("synthetic", {})
    except Exception:  # noqa: BLE001 - without the study's params every setting is shown
        base = {}
    return {k: v for k, v in s.params.get("synthetic", {}).items() if k != "generate" and base.get(k) != v}


def _readable_evf(evf: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "Scenario": evf["scenario"], "Method": evf["method"].map(method_label),
        "Estimand": [estimand_label(e, q, p) for e, q, p in zip(evf["endpoint"], evf["quantity"], evf["population"])],
        "Pairs": evf["n_pairs"], "Mean difference": evf["mean_difference"].map(lambda v: f"{v:.3f}"),
        "Largest |difference|": evf["max_abs_difference"].map(lambda v: f"{v:.3f}"),
        "Patients (exports / fast)": [f"{a:.0f} / {b:.0f}" for a, b in zip(evf["n_exports"], evf["n_fast"])]})


def _records(perf: pd.DataFrame) -> list[dict[str, Any]]:
    if not len(perf):
        return []
    cols = ["scenario", "path", "method", "endpoint", "quantity", "population", "estimand", "n_replicates",
            "n_valid", "n_failed", "true_value", "mean_estimate", "bias", "bias_mcse", "relative_bias",
            "relative_bias_mcse", "empirical_se", "empirical_se_mcse", "model_se", "model_se_mcse", "mse", "mse_mcse",
            "coverage", "coverage_mcse", "rejection", "rejection_mcse", "rejection_is_type1"]
    return [{k: _json_default(v) for k, v in r.items()} for r in perf[cols].to_dict(orient="records")]


def _json_default(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return None if not math.isfinite(float(v)) else round(float(v), 10)
    if isinstance(v, np.bool_):
        return bool(v)
    return v
