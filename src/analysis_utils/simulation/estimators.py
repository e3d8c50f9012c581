"""The methods compared (ADEMP: M): a registry name -> estimator, each run through the library functions the
notebooks use, with the settings of the params file (``matching:``, ``survival:``).

An estimator takes the analysis-ready frame and the ``Settings`` and returns rows
(endpoint, quantity, population, estimate, se, lower, upper): its estimates of the estimands it targets
(``truth.py`` names them). The registered methods, as notebooks 04 and 05 compute them:

- ``crude``: ``stats.cox.cox_ph(arm)`` on the full cohort; Kaplan-Meier per arm (``stats.kaplan_meier``) for the
  survival differences (SE from the two arms' standard errors); ``stats.rmst.rmst_difference`` (survRM2). Targets
  the population (ATE) contrasts: what an unadjusted comparison is read as.
- ``adjusted_cox``: ``steps.survival.adjusted_cox`` (arm + the params' covariates, missing-data design from
  params). Targets the conditional log-HR.
- ``psm``: ``steps.matching.run_matching`` (propensity model with centre as ``centres.ps_model`` says, MatchIt
  nearest matching with caliper, as notebook 04), then on the matched cohort ``cox_ph(arm)`` with the variance
  clustered on the pair, KM and survRM2 differences. Targets the ATT.
- ``iptw``: the stabilised, trimmed IPTW (ATE) weights of the same ``run_matching``; weighted ``cox_ph`` (robust
  variance), weighted KM (infinitesimal-jackknife SE) and ``weighted_rmst_difference``. Targets the ATE.
- ``overlap``: the overlap weights of ``run_matching``, as IPTW. Targets the ATO.
- ``ccw`` (``estimators_tte.py``): the clone-censor-weight emulation of the grace-period target trial (notebook 03's
  main analysis) with the robust (infinitesimal-jackknife) SE clustered on the patient, or a bootstrap SE
  (``simulation.ccw_variance``); ``naive_ever_haic``: HAIC within the window of time zero versus not, from time
  zero (immortal-time biased), by the crude estimators. Both target the ``tte`` contrasts.
- ``psm_cc`` and ``mi`` (``estimators_mi.py``): ``psm`` among complete cases, and multiple imputation with matching
  within every imputed data set pooled by Rubin's rules (notebooks 02, 04, 05). Both target the ATT.
Methods named in a scenario but not available in this version are reported as such, never silently dropped
(``unavailable``). A new method plugs in with ``register``. Log-HR estimates and CIs are on the log scale; differences on the natural scale.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis_utils.simulation.estimators_mi import complete_case, mi
from analysis_utils.simulation.estimators_tte import POPULATION as TTE, ccw
from analysis_utils.simulation.result_rows import failed as _failed
from analysis_utils.simulation.result_rows import row as _row
from analysis_utils.simulation.truth import rmst_key, surv_key
from analysis_utils.stats.cox import cox_ph
from analysis_utils.stats.kaplan_meier import kaplan_meier, survival_at
from analysis_utils.stats.rmst import rmst_difference, weighted_rmst_difference
from analysis_utils.steps import matching as matching_steps
from analysis_utils.steps import survival as survival_steps
from analysis_utils.study.treatment import ARM_CONTROL, ARM_HAIC

#: endpoint -> (time column, event column) of the analysis-ready frame.
ENDPOINT_COLUMNS = {"os": ("os_months", "os_event"), "pfs": ("pfs_recist_months", "pfs_recist_event")}
ROW_COLUMNS = ["method", "endpoint", "quantity", "population", "estimate", "se", "lower", "upper", "note"]


@dataclass
class Settings:
    """What every estimator of one replicate needs: the params' analysis sections, the estimand times, the
    replicate's seed for random steps, and a cache shared by the methods of the replicate (e.g. the matching)."""

    matching: dict[str, Any]
    survival: dict[str, Any]
    endpoints: list[str]
    timepoints: list[float]
    tau: float
    seed: int
    target_trial: dict[str, Any] = field(default_factory=dict)
    ccw_bootstrap: int = 50
    imputation: dict[str, Any] = field(default_factory=dict)
    ccw_variance: str = "ij"
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def conf_level(self) -> float:
        return float(self.survival.get("conf_level", 0.95))

    def endpoints_in(self, frame: pd.DataFrame) -> list[str]:
        """The requested endpoints whose columns the frame carries."""
        return [ep for ep in self.endpoints if set(ENDPOINT_COLUMNS[ep]) <= set(frame.columns)]


@dataclass(frozen=True)
class Estimator:
    name: str
    label: str
    fn: Callable[[pd.DataFrame, Settings], list[dict[str, Any]]]
    population: str        # the population whose contrasts it targets (truth.POPULATIONS)
    description: str


REGISTRY: dict[str, Estimator] = {}
#: methods that later issues add: name -> why they are not in this version.
PENDING: dict[str, str] = {}


def register(est: Estimator) -> Estimator:
    REGISTRY[est.name] = est
    return est


def unavailable(methods: list[str]) -> dict[str, str]:
    """Requested methods that this version cannot run, with the reason."""
    return {m: PENDING.get(m, "no such method") for m in methods if m not in REGISTRY}


# --------------------------------------------------------------------------------------------------- building blocks
def _cox_row(table: pd.DataFrame, endpoint: str, population: str, conf_level: float) -> dict[str, Any]:
    """The arm coefficient of a ``cox_ph`` table as a log-HR row (CI on the log scale, from the SE used)."""
    r = table.loc[table["term"] == survival_steps.ARM_TERM].iloc[0]
    if r["flag"]:
        return _failed(endpoint, "log_hr", population, str(r["flag"]))
    z = sps.norm.ppf(1 - (1 - conf_level) / 2)
    return _row(endpoint, "log_hr", population, r["coef"], r["se"], r["coef"] - z * r["se"],
                r["coef"] + z * r["se"])


def _km_rows(frame: pd.DataFrame, endpoint: str, population: str, s: Settings,
             weights_col: str | None) -> list[dict[str, Any]]:
    """Survival differences at the timepoints from the per-arm KM (as notebook 05: conf_type from params; weighted
    KM with the IJ standard error when weighted): S_HAIC(t) - S_TKIs-P(t), SE sqrt(se1^2 + se0^2), Wald CI."""
    time_col, event_col = ENDPOINT_COLUMNS[endpoint]
    z = sps.norm.ppf(1 - (1 - s.conf_level) / 2)
    at = {}
    for arm in (ARM_HAIC, ARM_CONTROL):
        d = frame[frame["arm"] == arm]
        km = kaplan_meier(d[time_col], d[event_col], weights=None if weights_col is None else d[weights_col],
                          conf_type=s.survival.get("conf_type", "log-log"), conf_level=s.conf_level)
        at[arm] = survival_at(km, s.timepoints).set_index("time")
    rows = []
    for t in s.timepoints:
        a, b = at[ARM_HAIC].loc[t], at[ARM_CONTROL].loc[t]
        if a["beyond_follow_up"] or b["beyond_follow_up"]:
            rows.append(_failed(endpoint, surv_key(t), population, f"{t:g} months beyond follow-up"))
            continue
        diff, se = a["surv"] - b["surv"], math.sqrt(a["std_err"] ** 2 + b["std_err"] ** 2)
        rows.append(_row(endpoint, surv_key(t), population, diff, se, diff - z * se, diff + z * se))
    return rows


def _rmst_row(frame: pd.DataFrame, endpoint: str, population: str, s: Settings,
              weights_col: str | None) -> dict[str, Any]:
    time_col, event_col = ENDPOINT_COLUMNS[endpoint]
    try:
        if weights_col is None:
            table = rmst_difference(frame[time_col], frame[event_col], frame["arm"], tau=s.tau, treatment=ARM_HAIC,
                                    conf_level=s.conf_level)
        else:
            table = weighted_rmst_difference(frame[time_col], frame[event_col], frame[weights_col], frame["arm"],
                                             s.tau, treatment=ARM_HAIC, conf_level=s.conf_level)
    except ValueError as exc:
        return _failed(endpoint, rmst_key(s.tau), population, str(exc))
    r = table.set_index("quantity").loc["RMST difference"]
    return _row(endpoint, rmst_key(s.tau), population, r["estimate"], r["se"], r["lower"], r["upper"])


def _marginal(frame: pd.DataFrame, s: Settings, population: str, weights_col: str | None = None,
              cluster_col: str | None = None) -> list[dict[str, Any]]:
    """Cox log-HR of arm, survival and RMST differences for every endpoint of ``frame`` (one cohort)."""
    rows = []
    for ep in s.endpoints_in(frame):
        time_col, event_col = ENDPOINT_COLUMNS[ep]
        try:
            table = cox_ph(frame, time_col, event_col, ["arm"], ties=s.survival.get("ties", "efron"),
                           weights_col=weights_col, cluster_col=cluster_col, conf_level=s.conf_level,
                           reference=survival_steps.ARM_REFERENCE)
            rows.append(_cox_row(table, ep, population, s.conf_level))
        except (ValueError, np.linalg.LinAlgError) as exc:
            rows.append(_failed(ep, "log_hr", population, str(exc)))
        rows += _km_rows(frame, ep, population, s, weights_col)
        rows.append(_rmst_row(frame, ep, population, s, weights_col))
    return rows


def matching_output(frame: pd.DataFrame, s: Settings) -> Any:
    """``steps.matching.run_matching`` with the params' spec, once per replicate (cached for psm/iptw/overlap),
    without the balance tables (diagnostics no method here reads)."""
    if "matching" not in s.cache:
        s.cache["matching"] = matching_steps.run_matching(frame, s.matching, seed=s.seed, balance_tables=False)
    return s.cache["matching"]


# --------------------------------------------------------------------------------------------------- the methods
def crude(frame: pd.DataFrame, s: Settings) -> list[dict[str, Any]]:
    return _marginal(frame, s, "ate")


def adjusted_cox(frame: pd.DataFrame, s: Settings) -> list[dict[str, Any]]:
    rows = []
    sv = s.survival
    for ep in s.endpoints_in(frame):
        time_col, event_col = ENDPOINT_COLUMNS[ep]
        try:
            table = survival_steps.adjusted_cox(frame, time_col, event_col, sv["adjust_covariates"],
                                                sv.get("categorical", ()), missing=sv.get("missing", "indicator"),
                                                ties=sv.get("ties", "efron"), conf_level=s.conf_level)
            rows.append(_cox_row(table, ep, "conditional", s.conf_level))
        except (ValueError, np.linalg.LinAlgError) as exc:
            rows.append(_failed(ep, "log_hr", "conditional", str(exc)))
    return rows


def psm(frame: pd.DataFrame, s: Settings) -> list[dict[str, Any]]:
    mo = matching_output(frame, s)
    if mo.matched.empty:
        return [_failed(ep, q, "att", "; ".join(mo.problems) or "no matched pairs")
                for ep in s.endpoints_in(frame) for q in ["log_hr", *map(surv_key, s.timepoints), rmst_key(s.tau)]]
    matched = frame.merge(mo.matched[["study_id", "subclass", "match_weight"]], on="study_id", how="inner")
    weights = None if (matched["match_weight"] == 1).all() else "match_weight"   # as steps.survival.load_cohorts
    return _marginal(matched, s, "att", weights_col=weights, cluster_col="subclass")


def _weighted(frame: pd.DataFrame, s: Settings, column: str, population: str) -> list[dict[str, Any]]:
    mo = matching_output(frame, s)
    w = frame.merge(mo.weights[["study_id", column]], on="study_id", how="inner")
    w = w[w[column].notna()]
    if w.empty:
        return [_failed(ep, "log_hr", population, "; ".join(mo.problems) or "no weights")
                for ep in s.endpoints_in(frame)]
    return _marginal(w, s, population, weights_col=column)


def iptw(frame: pd.DataFrame, s: Settings) -> list[dict[str, Any]]:
    return _weighted(frame, s, "w_iptw_ate", "ate")


def overlap(frame: pd.DataFrame, s: Settings) -> list[dict[str, Any]]:
    return _weighted(frame, s, "w_overlap", "ato")


register(Estimator("crude", "Crude", crude, "ate",
                   "Cox model of arm alone, Kaplan-Meier and RMST differences on the full cohort"))
register(Estimator("adjusted_cox", "Adjusted Cox", adjusted_cox, "conditional",
                   "Cox model of arm and the pre-specified covariates (missing-indicator design)"))
register(Estimator("psm", "PS matching", psm, "att",
                   "1:1 nearest-neighbour matching on the logit of the propensity score (centre in the model as "
                   "in notebook 04) with a caliper; Cox "
                   "model with variance clustered on the pair; Kaplan-Meier and RMST on the matched cohort"))
register(Estimator("iptw", "IPTW", iptw, "ate",
                   "stabilised, trimmed inverse-probability-of-treatment weights; weighted Cox (robust variance), "
                   "weighted Kaplan-Meier and RMST"))
def naive_ever_haic(frame: pd.DataFrame, s: Settings) -> list[dict[str, Any]]:
    """The classification the target trial replaces: HAIC-TKIs-P when the first HAIC is within
    ``cleaning.haic_window_days`` of time zero (``arm_ever_haic``), follow-up from time zero, then the crude
    estimators; immortal-time biased in favour of HAIC (a patient must survive to the HAIC to count as HAIC)."""
    if "arm_ever_haic" not in frame.columns:
        raise ValueError("the frame has no arm_ever_haic column (the naive classification)")
    f = frame.copy()
    f["arm"] = np.where(f["arm_ever_haic"].eq(ARM_HAIC), ARM_HAIC, ARM_CONTROL)
    return _marginal(f, s, TTE)


register(Estimator("overlap", "Overlap weights", overlap, "ato",
                   "overlap weights; weighted Cox (robust variance), weighted Kaplan-Meier and RMST"))
register(Estimator("ccw", "Clone-censor-weight", ccw, TTE,
                   "clones of every patient under both grace-period strategies, censored at deviation, IPC-weighted "
                   "(pooled logistic models); weighted Kaplan-Meier and RMST; robust (IJ) SE clustered on the patient, "
                   "weights treated as fixed, or a bootstrap SE refitting the weights (simulation.ccw_variance)"))
register(Estimator("naive_ever_haic", "Naive ever-HAIC", naive_ever_haic, TTE,
                   "HAIC within the window of time zero versus not, follow-up from time zero (immortal-time "
                   "biased); Kaplan-Meier, RMST and Cox as the crude comparison"))
register(Estimator("psm_cc", "PS matching, complete cases", complete_case(psm), "att",
                   "PS matching as psm among the patients with every matching covariate observed"))
register(Estimator("mi", "Multiple imputation", mi, "att",
                   "chained-equations imputation (m from the scenario's imputation section), PS matching and the "
                   "matched Cox, Kaplan-Meier and RMST analyses within every imputed data set, Rubin's rules"))


def settings_for(params: dict[str, Any], design: dict[str, Any], seed: int) -> Settings:
    """``Settings`` of one replicate from a scenario's params and simulation design. The matching spec is the one
    notebook 04 uses: the params' ``matching:`` with centre added as ``centres.ps_model`` says
    (``steps.centres.matching_spec``; the default ``fixed_effect`` puts centre dummies in the propensity model)."""
    from analysis_utils.steps.centres import CentreConfig, matching_spec

    matching = matching_spec(dict(params["matching"]), CentreConfig.from_params(params))
    return Settings(matching=matching, survival=dict(params["survival"]),
                    endpoints=[e for e in design["endpoints"] if e in ENDPOINT_COLUMNS],
                    timepoints=[float(t) for t in design["timepoints_months"]],
                    tau=float(design["rmst_tau_months"]), seed=int(seed),
                    target_trial=dict(params.get("target_trial") or {}),
                    ccw_bootstrap=int(design.get("ccw_bootstrap", 50)),
                    imputation=dict(params.get("imputation") or {}),
                    ccw_variance=str(design.get("ccw_variance", "ij")))


def run_methods(frame: pd.DataFrame, methods: list[str], s: Settings,
                clock: Callable[[], float] | None = None) -> tuple[pd.DataFrame, dict[str, float]]:
    """Every available method of ``methods`` on one frame: (rows, seconds per method). A method that raises is
    recorded as failed rows with the error, and the others still run."""
    import time

    clock = clock or time.perf_counter
    rows, seconds = [], {}
    for name in methods:
        est = REGISTRY.get(name)
        if est is None:
            continue
        t0 = clock()
        try:
            out = est.fn(frame, s)
        except Exception as exc:  # noqa: BLE001 - a failing method is a result of the simulation, not a crash
            out = [_failed(ep, "log_hr", est.population, f"{type(exc).__name__}: {exc}")
                   for ep in s.endpoints_in(frame)]
        seconds[name] = clock() - t0
        rows += [{"method": name, **r} for r in out]
    return pd.DataFrame(rows, columns=ROW_COLUMNS), seconds

