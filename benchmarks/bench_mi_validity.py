"""Validity benchmark: bias and coverage of the matched OS hazard ratio under multiple imputation (the main
analysis), the missing-indicator method and complete cases, over generator seeds, with baseline covariates missing
at random (MAR) and not at random (MNAR).

The missingness mechanism comes from the generator's own config (``synthetic.missing_mechanism``: mcar, mar or
mnar, and ``missing_strength``), so this script only sets it per scenario; if the generator in use has no such key,
it says the benchmark is pending and exits. For every seed and mechanism: generate the cohort (params/default.yaml's
``synthetic`` section with that seed), clean it (study.cleaning), then estimate the matched OS log HR three ways
with the run's params (centre as the params say): MI (``steps.imputation`` + ``steps.matching_mi`` +
``steps.survival_mi``, pooled by Rubin's rules), missing indicator and complete case (``steps.matching.run_matching``
+ the pair-clustered Cox model). Truth: the key ``--truth-key`` of the generator's ground_truth/truth.yaml (a dotted
path; by default the first present of the marginal ATT estimands the generator may write, else the conditional
log HR of the generating model, which a marginal matched HR is not expected to equal: non-collapsibility). Reported
per mechanism and method: mean bias of the log HR, empirical SE, mean model SE, coverage of the 95% CI, mean CI
width, and MI's mean fraction of missing information.

Run: python benchmarks/bench_mi_validity.py [--seeds 10] [--m 20] [--n-records 1050] [--out results.csv]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
TRUTH_KEYS = ("estimands.os.log_hr_att", "estimands.os.log_hr_marginal", "true_effects.log_hr_os")


def _dig(d: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            raise KeyError(dotted)
        d = d[part]
    return d


def _matched_log_hr(cohort: pd.DataFrame, spec: dict, seed: int) -> tuple[float, float]:
    from analysis_utils.steps.matching import run_matching
    from analysis_utils.steps.survival_mi import _cox_row

    mo = run_matching(cohort, spec, seed=seed)
    mdf = cohort.merge(mo.matched, on="study_id", how="inner")
    est, se, _ = _cox_row(mdf, "os_months", "os_event", cluster_col="subclass")
    return est, se


def replicate(seed: int, mechanism: str, args: argparse.Namespace, params: dict) -> list[dict]:
    from analysis_utils.runner.pipeline import synthetic_config
    from analysis_utils.stats.mi import pool
    from analysis_utils.steps import centres, imputation, matching_mi, survival_mi
    from analysis_utils.study.cleaning import clean
    from analysis_utils.study.config import CleaningConfig
    from analysis_utils.synthetic import generate_cohort

    gen = {**synthetic_config({**params, "seed": seed}), "missing_mechanism": mechanism,
           "n_records": args.n_records}
    with tempfile.TemporaryDirectory() as tmp:
        generate_cohort(gen, Path(tmp))
        truth_doc = yaml.safe_load((Path(tmp) / "ground_truth" / "truth.yaml").read_text())
        key = args.truth_key or next(k for k in TRUTH_KEYS if _has(truth_doc, k))
        truth = float(_dig(truth_doc, key))
        cleaned = clean(Path(tmp) / "raw", CleaningConfig.from_params({**params, "seed": seed},
                                                                       params["pseudonym_key"]))
    cohort = cleaned.cohort
    spec = centres.matching_spec(params["matching"], centres.CentreConfig.from_params(params))
    rows = []
    for name, design in (("indicator", "indicator"), ("complete case", "complete_case")):
        est, se = _matched_log_hr(cohort, {**spec, "missing": design}, seed)
        rows.append({"method": name, "estimate": est, "se": se, "fmi": np.nan})
    cfg = imputation.ImputationConfig.from_params({"imputation": {**params["imputation"], "m": args.m,
                                                                  "tipping_point": {}}, "seed": seed})
    imp = imputation.impute_cohort(cohort, cfg)
    cohorts = imputation.completed_cohorts(cohort, imp.completed, cfg.analysis_columns())
    w = matching_mi.within_matching(cohorts, spec, seed=seed, workers=cfg.workers)
    ests = []
    for i, c in enumerate(cohorts, 1):
        mdf = c.merge(w.matched.loc[w.matched[".imp"] == i].drop(columns=".imp"), on="study_id", how="inner")
        ests.append(survival_mi._cox_row(mdf, "os_months", "os_event", cluster_col="subclass"))
    p = pool(pd.DataFrame({"term": "os", "estimate": [e[0] for e in ests], "std_error": [e[1] for e in ests],
                           "dfcom": [e[2] for e in ests]}), dfcom="dfcom").iloc[0]
    rows.append({"method": "multiple imputation", "estimate": p["estimate"], "se": p["std_error"], "fmi": p["fmi"],
                 "conf_low": p["conf_low"], "conf_high": p["conf_high"]})
    for r in rows:
        r.setdefault("conf_low", r["estimate"] - 1.959964 * r["se"])
        r.setdefault("conf_high", r["estimate"] + 1.959964 * r["se"])
        r.update({"seed": seed, "mechanism": mechanism, "truth": truth, "truth_key": key,
                  "covered": r["conf_low"] <= truth <= r["conf_high"]})
    return rows


def _has(d: dict, dotted: str) -> bool:
    try:
        _dig(d, dotted)
        return True
    except KeyError:
        return False


def summarise(res: pd.DataFrame) -> pd.DataFrame:
    g = res.assign(err=res["estimate"] - res["truth"], width=res["conf_high"] - res["conf_low"]).groupby(
        ["mechanism", "method"])
    return pd.DataFrame({"replicates": g.size(), "bias_log_hr": g["err"].mean(), "empirical_se": g["estimate"].std(),
                         "mean_model_se": g["se"].mean(), "coverage": g["covered"].mean(),
                         "mean_ci_width": g["width"].mean(), "mean_fmi": g["fmi"].mean()}).reset_index()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--m", type=int, default=20)
    ap.add_argument("--n-records", type=int, default=1050)
    ap.add_argument("--mechanisms", nargs="+", default=["mar", "mnar"])
    ap.add_argument("--truth-key", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from analysis_utils.runner.pipeline import load_params
    from analysis_utils.synthetic import config as gen_config

    defaults = getattr(gen_config, "DEFAULTS", {})
    if "missing_mechanism" not in defaults:
        print("PENDING: this generator has no synthetic.missing_mechanism (the MAR/MNAR mechanisms of branch "
              "p2-generator are not in this checkout); nothing to benchmark.")
        return 0
    params = load_params(ROOT / "params" / "default.yaml")
    rows = []
    for mech in args.mechanisms:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            print(f"{mech}, seed {seed} ...", flush=True)
            rows += replicate(seed, mech, args, params)
    res = pd.DataFrame(rows)
    if args.out:
        res.to_csv(args.out, index=False)
    with pd.option_context("display.width", 160):
        print(summarise(res).round(3).to_string(index=False))
        print(f"truth: {res['truth_key'].iloc[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
