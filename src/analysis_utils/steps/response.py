"""Notebook 06_response (tumour response): ORR and DCR per arm, between-arm comparisons in the full, matched and weighted
cohorts, RECIST 1.1 versus mRECIST agreement, and the data of the waterfall and spider plots (no formatting:
tables and figures are in :mod:`analysis_utils.reporting.response`).

Input is the analysis cohort of ``01_cleaning`` (``cohort.parquet``: one row per eligible patient with ``arm`` and the
best overall responses ``bor_<criterion>`` (unconfirmed, the main definition) and ``bor_<criterion>_confirmed``
(sensitivity), derived by :mod:`analysis_utils.study.recist`; rules: docs/methods/recist-mrecist.md). Conventions:

- ORR = (CR + PR) / N and DCR = (CR + PR + SD) / N, where **N = all patients of the analysis cohort in that arm**.
  NE (not evaluable: no measurable target, no post-baseline scan, SD too early, unconfirmed CR/PR ...) counts as a
  non-responder and stays in the denominator; a missing best response is read as NE (Eisenhauer 2009, best
  overall response; docs/methods/recist-mrecist.md).
- The statistics are general and live in :mod:`analysis_utils.stats.binomial` (Clopper-Pearson, Newcombe hybrid
  score risk difference, Woolf odds ratio, chi-square or Fisher test, Cohen's kappa) and
  :mod:`analysis_utils.stats.logistic` (logistic odds ratio with model or sandwich variance, weighted rates and
  risk difference, conditional logistic regression); each names the R function it reproduces. Methods:
  docs/methods/binary-outcomes.md.
- Full cohort: rates with exact CIs, Newcombe risk difference, Woolf and covariate-adjusted (logistic) odds ratios,
  the 2 x 2 test. Matched cohort: conditional logistic regression on the matched sets, and logistic regression /
  linear risk difference with matching weights and a sandwich variance clustered by pair. Weighted cohort:
  weighted proportions, risk difference and odds ratio with the per-patient HC0 sandwich variance.
- Agreement: Cohen's unweighted kappa of the two criteria, on the five categories and on responder yes / no.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from analysis_utils.stats import binomial
from analysis_utils.stats.logistic import (Estimate, conditional_logit_odds_ratio, logistic_odds_ratio,
                                           weighted_rates, weighted_risk_difference)
from analysis_utils.stats.multiplicity import fixed_sequence
from analysis_utils.study.treatment import ARM_CONTROL, ARM_HAIC

__all__ = [
    "RESPONSE_LEVELS", "ENDPOINTS", "CRITERIA", "DEFINITIONS", "TREATMENT_ARM", "CONTROL_ARM",
    "ResponseConfig", "ResponseAnalysis", "DesignInputs",
    "bor_column", "responder", "treatment_indicator", "response_counts", "rate_by_arm", "agreement_table",
    "load_design_inputs", "matched_cohort", "weighted_cohort", "compare_arms", "compare_matched", "compare_weighted",
    "response_table", "kappa_table", "agreement_counts", "analyse_response", "waterfall_data", "spider_data",
    "ne_reasons", "orr_by_definition", "testing_hierarchy", "hierarchy_results",
]

RESPONSE_LEVELS = ("CR", "PR", "SD", "PD", "NE")
ENDPOINTS = {"orr": ("CR", "PR"), "dcr": ("CR", "PR", "SD")}
CRITERIA = ("recist", "mrecist")
DEFINITIONS = ("unconfirmed", "confirmed")
TREATMENT_ARM, CONTROL_ARM = ARM_HAIC, ARM_CONTROL
DAYS_PER_MONTH = 365.25 / 12
MATCHED_COLUMNS = ("study_id", "subclass", "match_weight")
WEIGHT_COLUMNS = ("study_id", "arm", "ps", "logit_ps", "w_iptw_ate", "w_iptw_att", "w_overlap")
# short names of the measures in the flat results keys
MEASURE_KEYS = {"rate_haic": "haic", "rate_control": "control", "risk_difference": "rd", "odds_ratio": "or",
                "odds_ratio_adjusted": "or_adj", "odds_ratio_conditional": "or_clogit", "test": "p"}
RATE_MEASURES = ("rate_haic", "rate_control")  # group 1 (HAIC-TKIs-P), group 0 (TKIs-P)
_T = "_treat"  # temporary 0/1 column: 1 = HAIC-TKIs-P (the numerator of every comparison), 0 = TKIs-P
_Y = "_y"      # temporary 0/1 column: responder for the endpoint


# --------------------------------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResponseConfig:
    """The ``response:`` section of the params file (plus the run's ``seed``)."""

    primary_definition: str = "unconfirmed"
    conf_level: float = 0.95
    adjust_covariates: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    missing: str = "indicator"
    weight_column: str = "w_iptw_ate"
    spider_n_per_arm: int = 40
    waterfall_cap_pct: float = 100.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.primary_definition not in DEFINITIONS:
            raise ValueError(f"response.primary_definition must be one of {DEFINITIONS}, got {self.primary_definition!r}")
        if self.missing not in ("indicator", "complete_case"):
            raise ValueError(f"response.missing must be 'indicator' or 'complete_case', got {self.missing!r}")
        binomial.normal_quantile(self.conf_level)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "ResponseConfig":
        sec = dict(params.get("response", {}))
        known = {f for f in cls.__dataclass_fields__ if f != "seed"}
        unknown = set(sec) - known
        if unknown:
            raise ValueError(f"unknown key(s) in the response section: {sorted(unknown)}")
        for key in ("adjust_covariates", "categorical"):
            if key in sec:
                sec[key] = tuple(sec[key] or ())
        return cls(**sec, seed=int(params.get("seed", 0)))

    @property
    def definitions(self) -> tuple[str, str]:
        """Primary definition first, then the sensitivity one."""
        other = [d for d in DEFINITIONS if d != self.primary_definition][0]
        return self.primary_definition, other


# --------------------------------------------------------------------------------------------------------------------
# per-patient response
# --------------------------------------------------------------------------------------------------------------------
def bor_column(criterion: str, definition: str = "unconfirmed") -> str:
    """Cohort column of the best overall response: ``bor_recist`` or ``bor_recist_confirmed`` (same for mrecist)."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    if definition not in DEFINITIONS:
        raise ValueError(f"definition must be one of {DEFINITIONS}, got {definition!r}")
    return f"bor_{criterion}" + ("_confirmed" if definition == "confirmed" else "")


def _bor_values(bor: pd.Series) -> pd.Series:
    """BOR as plain strings; missing -> "NE" (not evaluable); any label outside CR/PR/SD/PD/NE raises."""
    values = bor.astype("object").where(bor.notna(), "NE")
    bad = sorted(set(values) - set(RESPONSE_LEVELS), key=str)
    if bad:
        raise ValueError(f"best overall response column {bor.name!r} has labels outside {RESPONSE_LEVELS}: {bad}")
    return values


def responder(bor: pd.Series, endpoint: str) -> pd.Series:
    """1 if the best overall response counts for the endpoint (ORR: CR or PR; DCR: CR, PR or SD), else 0.
    NE and missing responses count as 0 (non-responder, kept in the denominator; docs/methods/recist-mrecist.md)."""
    if endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint must be one of {tuple(ENDPOINTS)}, got {endpoint!r}")
    return _bor_values(bor).isin(ENDPOINTS[endpoint]).astype(int)


def treatment_indicator(df: pd.DataFrame, arm_col: str = "arm") -> pd.Series:
    """1 for HAIC-TKIs-P, 0 for TKIs-P (the coding every comparison of :mod:`analysis_utils.stats` takes); any
    other or missing arm raises."""
    if arm_col not in df.columns:
        raise ValueError(f"arm column {arm_col!r} is not in the data")
    bad = sorted(set(df[arm_col].astype("object").fillna("<missing>")) - {TREATMENT_ARM, CONTROL_ARM})
    if bad:
        raise ValueError(f"arm column {arm_col!r} must hold {TREATMENT_ARM!r} or {CONTROL_ARM!r}; found {bad}")
    return (df[arm_col] == TREATMENT_ARM).astype(int)


def response_counts(df: pd.DataFrame, bor_col: str, arm_col: str = "arm") -> pd.DataFrame:
    """Counts of CR, PR, SD, PD, NE per arm (rows HAIC-TKIs-P, TKIs-P; column ``n`` = arm size; missing BOR = NE)."""
    if bor_col not in df.columns:
        raise ValueError(f"best-response column {bor_col!r} is not in the data")
    treatment_indicator(df, arm_col)
    bor = pd.Categorical(_bor_values(df[bor_col]), categories=RESPONSE_LEVELS)
    arm = pd.Categorical(df[arm_col], categories=[TREATMENT_ARM, CONTROL_ARM])
    counts = pd.crosstab(arm, bor, dropna=False).reindex(index=[TREATMENT_ARM, CONTROL_ARM],
                                                        columns=list(RESPONSE_LEVELS), fill_value=0)
    counts.index.name, counts.columns.name = "arm", None
    counts["n"] = counts.sum(axis=1)
    return counts


# --------------------------------------------------------------------------------------------------------------------
# rates per arm
# --------------------------------------------------------------------------------------------------------------------
def rate_by_arm(df: pd.DataFrame, bor_col: str, endpoint: str, arm_col: str = "arm",
                conf_level: float = 0.95) -> pd.DataFrame:
    """ORR or DCR per arm with the exact Clopper-Pearson CI; denominator = all patients of the arm (NE included).
    Columns arm, n, events, rate, lower, upper."""
    y = responder(df[bor_col], endpoint)
    treat = treatment_indicator(df, arm_col)
    rows = []
    for arm, flag in ((TREATMENT_ARM, 1), (CONTROL_ARM, 0)):
        n, k = int((treat == flag).sum()), int(y[treat == flag].sum())
        lo, hi = binomial.clopper_pearson_ci(k, n, conf_level) if n else (np.nan, np.nan)
        rows.append({"arm": arm, "n": n, "events": k, "rate": k / n if n else np.nan, "lower": lo, "upper": hi})
    return pd.DataFrame(rows)


def agreement_table(df: pd.DataFrame, row_col: str, col_col: str,
                    labels: Sequence[str] = RESPONSE_LEVELS) -> pd.DataFrame:
    """Cross-tabulation of two best-response columns (rows ``row_col``, columns ``col_col``, missing = NE), with
    row and column totals (:func:`analysis_utils.stats.binomial.agreement_table`)."""
    data = pd.DataFrame({row_col: _bor_values(df[row_col]), col_col: _bor_values(df[col_col])})
    return binomial.agreement_table(data, row_col, col_col, labels)


# --------------------------------------------------------------------------------------------------------------------
# matched and weighted cohorts (outputs of 04_matching, possibly absent)
# --------------------------------------------------------------------------------------------------------------------
@dataclass
class DesignInputs:
    """``matched`` / ``weights`` tables of 04_matching, or None with the reason in ``notes``."""

    matched: pd.DataFrame | None
    weights: pd.DataFrame | None
    notes: dict[str, str] = field(default_factory=dict)


def _read_optional(path: Path, required: Sequence[str], what: str) -> tuple[pd.DataFrame | None, str]:
    if not path.is_file():
        return None, f"not available: {path.name} not found (matching notebook not run)"
    df = pd.read_parquet(path)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: the {what} table lacks column(s) {missing}")
    return df, f"available: {path.name} ({len(df)} rows)"


def load_design_inputs(data_dir: str | Path, weight_column: str = "w_iptw_ate") -> DesignInputs:
    """Read ``matched.parquet`` (study_id, subclass, match_weight) and ``weights.parquet`` (study_id and
    ``weight_column``) from ``data_dir``. A missing file gives None and a "not available" note; a file without
    the required columns raises ValueError naming them."""
    data_dir = Path(data_dir)
    matched, m_note = _read_optional(data_dir / "matched.parquet", MATCHED_COLUMNS, "matched")
    weights, w_note = _read_optional(data_dir / "weights.parquet", ("study_id", weight_column), "weights")
    return DesignInputs(matched, weights, {"matched": m_note, "weighted": w_note})


def matched_cohort(cohort: pd.DataFrame, matched: pd.DataFrame) -> pd.DataFrame:
    """Cohort rows of the matched patients (match_weight > 0 and a subclass; matching with replacement has no
    subclass, so it gives an empty frame) with ``subclass`` and ``match_weight``; a matched study_id absent from the
    cohort raises."""
    m = matched.loc[(pd.to_numeric(matched["match_weight"]) > 0) & matched["subclass"].notna(),
                    ["study_id", "subclass", "match_weight"]]
    unknown = sorted(set(m["study_id"]) - set(cohort["study_id"]))
    if unknown:
        raise ValueError(f"matched.parquet holds {len(unknown)} study_id(s) absent from the cohort, e.g. {unknown[:3]}")
    if m["study_id"].duplicated().any():
        raise ValueError("matched.parquet holds duplicated study_id values (matching with replacement is not supported)")
    return cohort.drop(columns=["subclass", "match_weight"], errors="ignore").merge(m, on="study_id", how="inner")


def weighted_cohort(cohort: pd.DataFrame, weights: pd.DataFrame, weight_column: str) -> pd.DataFrame:
    """Cohort rows with column ``weight`` = ``weight_column`` of weights.parquet; patients without a weight
    (missing or absent) are dropped; a weighted study_id absent from the cohort raises."""
    w = weights[["study_id", weight_column]].rename(columns={weight_column: "weight"})
    unknown = sorted(set(w["study_id"]) - set(cohort["study_id"]))
    if unknown:
        raise ValueError(f"weights.parquet holds {len(unknown)} study_id(s) absent from the cohort, e.g. {unknown[:3]}")
    out = cohort.drop(columns=["weight"], errors="ignore").merge(w, on="study_id", how="inner")
    return out[out["weight"].notna()].reset_index(drop=True)


# --------------------------------------------------------------------------------------------------------------------
# comparisons per cohort
# --------------------------------------------------------------------------------------------------------------------
def _endpoint_frame(df: pd.DataFrame, bor_col: str, endpoint: str, arm_col: str) -> pd.DataFrame:
    """``df`` with the 0/1 responder column ``_y`` for the endpoint and the 0/1 arm column ``_treat``."""
    return df.assign(**{_Y: responder(df[bor_col], endpoint), _T: treatment_indicator(df, arm_col)})


def compare_arms(df: pd.DataFrame, bor_col: str, endpoint: str, cfg: ResponseConfig,
                 arm_col: str = "arm") -> list[Estimate]:
    """Full cohort: rate per arm (Clopper-Pearson), risk difference (Newcombe hybrid score), unadjusted OR
    (Woolf), adjusted OR (logistic, ``cfg.adjust_covariates``) and the 2 x 2 test (chi-square or Fisher)."""
    rates = rate_by_arm(df, bor_col, endpoint, arm_col, cfg.conf_level).set_index("arm")
    (k1, n1), (k0, n0) = [(int(rates.at[a, "events"]), int(rates.at[a, "n"])) for a in (TREATMENT_ARM, CONTROL_ARM)]
    if n1 == 0 or n0 == 0:
        raise ValueError(f"both arms are needed to compare {endpoint}: n({TREATMENT_ARM}) = {n1}, n({CONTROL_ARM}) = {n0}")
    out = [Estimate(m, float(rates.at[a, "rate"]), float(rates.at[a, "lower"]), float(rates.at[a, "upper"]),
                    n=int(rates.at[a, "n"]), method="proportion, exact Clopper-Pearson CI; denominator all patients")
           for m, a in zip(RATE_MEASURES, (TREATMENT_ARM, CONTROL_ARM))]
    rd, lo, hi = binomial.newcombe_risk_difference(k1, n1, k0, n0, cfg.conf_level)
    out.append(Estimate("risk_difference", rd, lo, hi, n=n1 + n0, method="Newcombe hybrid score (method 10)"))
    or_, lo, hi, p, note = binomial.woolf_odds_ratio(k1, n1, k0, n0, cfg.conf_level)
    out.append(Estimate("odds_ratio", or_, lo, hi, p, n=n1 + n0, method="Woolf logit CI", note=note))
    adj = logistic_odds_ratio(_endpoint_frame(df, bor_col, endpoint, arm_col), _Y, _T, cfg.adjust_covariates,
                              cfg.categorical, cfg.missing, conf_level=cfg.conf_level)
    adj.measure = "odds_ratio_adjusted"
    out.append(adj)
    p, test = binomial.two_by_two_test(k1, n1, k0, n0)
    out.append(Estimate("test", np.nan, p=p, n=n1 + n0, method=test))
    return out


def compare_matched(df: pd.DataFrame, bor_col: str, endpoint: str, cfg: ResponseConfig,
                    arm_col: str = "arm") -> list[Estimate]:
    """Matched cohort (from :func:`matched_cohort`): rates per arm (match weights), conditional OR (conditional
    logistic on ``subclass``), OR and risk difference with match weights and pair-clustered HC0 sandwich SE."""
    data = _endpoint_frame(df, bor_col, endpoint, arm_col)
    out = weighted_rates(data, _Y, _T, "match_weight", cfg.conf_level, RATE_MEASURES)
    out.append(weighted_risk_difference(data, _Y, _T, "match_weight", "subclass", cfg.conf_level))
    out.append(logistic_odds_ratio(data, _Y, _T, weights_col="match_weight", cluster_col="subclass",
                                   conf_level=cfg.conf_level))
    out.append(conditional_logit_odds_ratio(data, _Y, "subclass", _T, cfg.conf_level))
    return out


def compare_weighted(df: pd.DataFrame, bor_col: str, endpoint: str, cfg: ResponseConfig,
                     arm_col: str = "arm") -> list[Estimate]:
    """Weighted cohort (from :func:`weighted_cohort`, column ``weight``): weighted rates, risk difference and
    OR with HC0 sandwich SE per patient (marginal estimates; the weights carry the adjustment)."""
    data = _endpoint_frame(df, bor_col, endpoint, arm_col)
    out = weighted_rates(data, _Y, _T, "weight", cfg.conf_level, RATE_MEASURES)
    out.append(weighted_risk_difference(data, _Y, _T, "weight", None, cfg.conf_level))
    out.append(logistic_odds_ratio(data, _Y, _T, weights_col="weight", conf_level=cfg.conf_level))
    return out


# --------------------------------------------------------------------------------------------------------------------
# the whole analysis
# --------------------------------------------------------------------------------------------------------------------
@dataclass
class ResponseAnalysis:
    """Everything 06_response computes (the numbers; :mod:`analysis_utils.reporting.response` formats them)."""

    table: pd.DataFrame
    models: pd.DataFrame
    agreement: pd.DataFrame
    kappa: pd.DataFrame
    results: dict[str, Any]


def _key_prefix(endpoint: str, criterion: str, definition: str, cohort: str, primary: str) -> str:
    parts = [endpoint, criterion]
    if definition != primary:
        parts.append(definition)
    if cohort != "full":
        parts.append(cohort)
    return "_".join(parts)


def _results_from_models(models: pd.DataFrame, primary: str) -> dict[str, Any]:
    """Flat keys, e.g. orr_recist_haic(_lower/_upper), orr_recist_rd, orr_recist_or_adj(_p), orr_recist_p (test)
    and orr_recist_test; the sensitivity definition adds its name (orr_recist_confirmed_...) and the matched /
    weighted cohorts theirs (orr_recist_matched_or_clogit)."""
    out: dict[str, Any] = {}
    for r in models.itertuples(index=False):
        prefix = _key_prefix(r.endpoint, r.criterion, r.definition, r.cohort, primary)
        key = f"{prefix}_{MEASURE_KEYS[r.measure]}"
        if r.measure == "test":
            out[key], out[f"{prefix}_test"] = r.p, r.method
            continue
        out[key], out[f"{key}_lower"], out[f"{key}_upper"] = r.estimate, r.lower, r.upper
        if r.measure.startswith("rate"):
            out[f"{key}_n"] = r.n
        if r.measure.startswith("odds_ratio") or (r.measure == "risk_difference" and r.cohort != "full"):
            out[f"{key}_p"] = r.p
    return out


def _model_rows(estimates: list[Estimate], **labels: str) -> list[dict[str, Any]]:
    return [{**labels, **e.to_dict()} for e in estimates]


def response_table(cohort: pd.DataFrame, models: pd.DataFrame, cfg: ResponseConfig,
                   arm_col: str = "arm") -> pd.DataFrame:
    """Numbers of the manuscript's response table, full cohort: per definition (primary first) and criterion,
    CR/PR/SD/PD/NE n (%) per arm, then ORR and DCR with exact CIs, risk difference (percentage points),
    unadjusted and adjusted OR and P (one row each)."""
    full = models[models["cohort"] == "full"].set_index(["definition", "criterion", "endpoint", "measure"]).sort_index()
    rows = []
    n1, n0 = int((cohort[arm_col] == TREATMENT_ARM).sum()), int((cohort[arm_col] == CONTROL_ARM).sum())
    for definition in cfg.definitions:
        for crit in CRITERIA:
            counts = response_counts(cohort, bor_column(crit, definition), arm_col)
            for lev in RESPONSE_LEVELS:
                k1, k0 = int(counts.at[TREATMENT_ARM, lev]), int(counts.at[CONTROL_ARM, lev])
                rows.append({"definition": definition, "criterion": crit, "row": lev, "n_haic": k1,
                             "pct_haic": 100 * k1 / n1 if n1 else np.nan, "n_control": k0,
                             "pct_control": 100 * k0 / n0 if n0 else np.nan})
            for ep in ENDPOINTS:
                g = full.loc[(definition, crit, ep)]
                r1, r0 = g.loc["rate_haic"], g.loc["rate_control"]
                rd, or_, adj, test = g.loc["risk_difference"], g.loc["odds_ratio"], g.loc["odds_ratio_adjusted"], g.loc["test"]
                e1, e0 = (int(counts.loc[arm, list(ENDPOINTS[ep])].sum()) for arm in (TREATMENT_ARM, CONTROL_ARM))
                rows.append({"definition": definition, "criterion": crit, "row": ep.upper(),
                             "n_haic": e1, "pct_haic": 100 * r1.estimate,
                             "lower_haic": 100 * r1.lower, "upper_haic": 100 * r1.upper,
                             "n_control": e0, "pct_control": 100 * r0.estimate,
                             "lower_control": 100 * r0.lower, "upper_control": 100 * r0.upper,
                             "rd_pct": 100 * rd.estimate, "rd_lower": 100 * rd.lower, "rd_upper": 100 * rd.upper,
                             "or": or_.estimate, "or_lower": or_.lower, "or_upper": or_.upper,
                             "or_adj": adj.estimate, "or_adj_lower": adj.lower, "or_adj_upper": adj.upper,
                             "or_adj_p": adj.p, "p": test.p, "test": test.method})
    return pd.DataFrame(rows)


def kappa_table(cohort: pd.DataFrame, cfg: ResponseConfig) -> pd.DataFrame:
    """Cohen's kappa of RECIST 1.1 versus mRECIST per definition, on the five categories CR/PR/SD/PD/NE and on
    responder (CR/PR) yes / no (:func:`analysis_utils.stats.binomial.cohen_kappa`)."""
    rows = []
    for definition in cfg.definitions:
        a = _bor_values(cohort[bor_column("recist", definition)])
        b = _bor_values(cohort[bor_column("mrecist", definition)])
        k5 = binomial.cohen_kappa(a, b, RESPONSE_LEVELS, cfg.conf_level)
        rows.append({"definition": definition, "categories": "CR/PR/SD/PD/NE", **k5})
        orr = [responder(s, "orr").map({1: "responder", 0: "non-responder"}) for s in (a, b)]
        k2 = binomial.cohen_kappa(orr[0], orr[1], ("responder", "non-responder"), cfg.conf_level)
        rows.append({"definition": definition, "categories": "responder (CR/PR) vs not", **k2})
    return pd.DataFrame(rows)


def agreement_counts(cohort: pd.DataFrame, cfg: ResponseConfig) -> pd.DataFrame:
    """RECIST 1.1 (rows, column ``recist``) x mRECIST (columns) best responses with totals, one block per
    definition (column ``definition``, primary first)."""
    parts = []
    for definition in cfg.definitions:
        tab = agreement_table(cohort, bor_column("recist", definition), bor_column("mrecist", definition))
        t = tab.reset_index().rename(columns={tab.index.name: "recist"})
        t.insert(0, "definition", definition)
        parts.append(t)
    return pd.concat(parts, ignore_index=True)


def analyse_response(cohort: pd.DataFrame, cfg: ResponseConfig, design: DesignInputs | None = None,
                     arm_col: str = "arm") -> ResponseAnalysis:
    """All response analyses for both criteria and both definitions: the full cohort (always), the matched and
    the weighted cohorts when their inputs exist (otherwise reported "not available" in the results)."""
    design = design or DesignInputs(None, None, {"matched": "not available", "weighted": "not available"})
    cohorts: dict[str, tuple[pd.DataFrame, Any]] = {"full": (cohort, compare_arms)}
    notes = dict(design.notes)
    if design.matched is not None:
        m = matched_cohort(cohort, design.matched)
        if m[arm_col].nunique() == 2:
            cohorts["matched"] = (m, compare_matched)
        else:  # e.g. matching with replacement (no pair ids) or nobody matched
            notes["matched"] = "not available: the matched table has no matched pairs with both arms"
    if design.weights is not None:
        cohorts["weighted"] = (weighted_cohort(cohort, design.weights, cfg.weight_column), compare_weighted)
    rows: list[dict[str, Any]] = []
    for name, (data, compare) in cohorts.items():
        for definition in cfg.definitions:
            for crit in CRITERIA:
                for ep in ENDPOINTS:
                    est = compare(data, bor_column(crit, definition), ep, cfg, arm_col)
                    rows += _model_rows(est, cohort=name, definition=definition, criterion=crit, endpoint=ep)
    models = pd.DataFrame(rows)
    table = response_table(cohort, models, cfg, arm_col)
    kappa = kappa_table(cohort, cfg)
    agreement = agreement_counts(cohort, cfg)

    res: dict[str, Any] = {"primary_definition": cfg.primary_definition, "conf_level": cfg.conf_level,
                           "denominator": "all patients of the analysis cohort (NE = non-responder)",
                           "scale": "rates and risk differences are proportions (0-1), not percentages",
                           "n_analysed": len(cohort), "n_haic": int((cohort[arm_col] == TREATMENT_ARM).sum()),
                           "n_control": int((cohort[arm_col] == CONTROL_ARM).sum()),
                           "matched_available": "matched" in cohorts, "matched_note": notes.get("matched", ""),
                           "weighted_available": "weighted" in cohorts, "weighted_note": notes.get("weighted", ""),
                           "weight_column": cfg.weight_column, "adjust_covariates": list(cfg.adjust_covariates)}
    for crit in CRITERIA:
        for definition in cfg.definitions:
            sfx = "" if definition == cfg.primary_definition else f"_{definition}"
            ev = _bor_values(cohort[bor_column(crit, definition)]) != "NE"
            res[f"n_evaluable_{crit}{sfx}"] = int(ev.sum())
            res[f"n_evaluable_{crit}{sfx}_haic"] = int((ev & (cohort[arm_col] == TREATMENT_ARM)).sum())
            res[f"n_evaluable_{crit}{sfx}_control"] = int((ev & (cohort[arm_col] == CONTROL_ARM)).sum())
    if "matched" in cohorts:
        m = cohorts["matched"][0]
        res.update({"n_matched": len(m), "n_matched_sets": int(m["subclass"].nunique()),
                    "n_matched_haic": int((m[arm_col] == TREATMENT_ARM).sum()),
                    "n_matched_control": int((m[arm_col] == CONTROL_ARM).sum())})
    if "weighted" in cohorts:
        res["n_weighted"] = len(cohorts["weighted"][0])
    res.update(_results_from_models(models, cfg.primary_definition))
    for k in kappa.itertuples():
        key = "kappa_recist_mrecist" + ("" if k.definition == cfg.primary_definition else f"_{k.definition}")
        key += "" if k.categories.startswith("CR/") else "_orr"
        res.update({key: k.kappa, f"{key}_lower": k.lower, f"{key}_upper": k.upper, f"{key}_se": k.se,
                    f"{key}_agreement": k.observed, f"{key}_n": k.n})
    return ResponseAnalysis(table, models, agreement, kappa, res)


# --------------------------------------------------------------------------------------------------------------------
# data for the waterfall and spider plots
# --------------------------------------------------------------------------------------------------------------------
def waterfall_data(cohort: pd.DataFrame, criteria: Sequence[str] = CRITERIA, arm_col: str = "arm") -> pd.DataFrame:
    """Best % change of the target sum from baseline (up to first PD, as
    :func:`analysis_utils.study.recist.best_overall_response` computes it) per patient and criterion, sorted from
    largest increase to largest decrease (ties by study_id). Patients without a value (no post-baseline scan with
    all targets measured) are left out. Columns criterion, study_id, arm, best_pct_change,
    bor, rank."""
    parts = []
    for crit in criteria:
        col = f"best_pct_change_{crit}"
        if col not in cohort.columns:
            raise ValueError(f"column {col!r} is not in the cohort")
        d = cohort.loc[cohort[col].notna(), ["study_id", arm_col, col, bor_column(crit)]]
        d = d.rename(columns={col: "best_pct_change", bor_column(crit): "bor", arm_col: "arm"})
        d = d.sort_values(["best_pct_change", "study_id"], ascending=[False, True]).reset_index(drop=True)
        d.insert(0, "criterion", crit)
        d["rank"] = np.arange(len(d))
        parts.append(d)
    return pd.concat(parts, ignore_index=True)


def new_lesion_progression(timepoints: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Patients whose first progression (time-point response PD) came with a new lesion, per criterion: columns
    criterion, study_id, pd_new_lesion (True when ``new_lesion`` is set at the first PD time point). A new lesion
    is PD whatever the target sum does (RECIST 1.1 section 4.3.2, mRECIST alike; docs/methods/recist-mrecist.md),
    so these are the PD bars of a waterfall that can lie below zero. ``timepoints[criterion]`` =
    response_timepoints_<criterion>."""
    parts = []
    for crit, tp in timepoints.items():
        pd_rows = tp.loc[tp["overall_response"] == "PD"].sort_values(["study_id", "days_from_index"])
        first = pd_rows.groupby("study_id", sort=True).head(1)
        parts.append(pd.DataFrame({"criterion": crit, "study_id": first["study_id"].to_numpy(),
                                   "pd_new_lesion": first["new_lesion"].fillna(False).astype(bool).to_numpy()}))
    if not parts:
        return pd.DataFrame(columns=["criterion", "study_id", "pd_new_lesion"])
    return pd.concat(parts, ignore_index=True)


def spider_data(timepoints: dict[str, pd.DataFrame], cohort: pd.DataFrame, n_per_arm: int, seed: int,
                arm_col: str = "arm") -> pd.DataFrame:
    """% change of the target sum from baseline over time for a random subsample of ``n_per_arm`` patients per arm
    and criterion (patients with >= 1 post-baseline value), drawn with ``numpy.random.default_rng(seed)`` from the
    sorted study_ids, so the sample is reproducible. ``timepoints[criterion]`` = response_timepoints_<criterion>.
    Baseline is drawn at month 0 (0%); visits without all targets measured are skipped. Columns criterion,
    study_id, arm, months, pct_change."""
    if n_per_arm < 1:
        raise ValueError(f"n_per_arm must be >= 1, got {n_per_arm}")
    arms = cohort.set_index("study_id")[arm_col]
    parts = []
    for crit, tp in timepoints.items():
        need = {"study_id", "visit", "days_from_index", "pct_change_baseline"}
        if need - set(tp.columns):
            raise ValueError(f"timepoints for {crit!r} lack column(s) {sorted(need - set(tp.columns))}")
        d = tp.loc[tp["study_id"].isin(arms.index) & tp["pct_change_baseline"].notna(),
                   ["study_id", "visit", "days_from_index", "pct_change_baseline"]].copy()
        d["arm"] = d["study_id"].map(arms)
        d["months"] = np.where(d["visit"] == 0, 0.0, d["days_from_index"] / DAYS_PER_MONTH)
        has_fu = d.loc[d["visit"] > 0, "study_id"].unique()
        d = d[d["study_id"].isin(has_fu)]
        rng = np.random.default_rng(seed)
        chosen = []
        for arm in (TREATMENT_ARM, CONTROL_ARM):
            ids = np.sort(d.loc[d["arm"] == arm, "study_id"].unique())
            chosen += list(rng.choice(ids, size=min(n_per_arm, len(ids)), replace=False)) if len(ids) else []
        d = d[d["study_id"].isin(chosen)].sort_values(["arm", "study_id", "months"])
        parts.append(d.assign(criterion=crit).rename(columns={"pct_change_baseline": "pct_change"})
                     [["criterion", "study_id", "arm", "months", "pct_change"]])
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------------------------------------------------
# NE reasons, ORR by definition, the testing hierarchy (docs/methods/recist-mrecist.md; docs/methods/survival.md)
# --------------------------------------------------------------------------------------------------------------------
def ne_reasons(cohort: pd.DataFrame, summaries: dict[str, pd.DataFrame], arm_col: str = "arm") -> pd.DataFrame:
    """Patients with best overall response NE per criterion, reason (``bor_reason`` of the engine's summary, the
    unconfirmed definition; ``analysis_utils.study.recist.NE_REASONS``) and arm. ``summaries``: criterion ->
    ``response_summary_<criterion>`` table of 01_cleaning."""
    rows = []
    for crit, summ in summaries.items():
        s = summ[summ["study_id"].isin(cohort["study_id"])].merge(cohort[["study_id", arm_col]], on="study_id")
        s = s[s["bor"].astype("object") == "NE"]
        counts = pd.crosstab(s["bor_reason"], s[arm_col]).reindex(columns=[TREATMENT_ARM, CONTROL_ARM], fill_value=0)
        for reason, r in counts.iterrows():
            rows.append({"criterion": crit, "reason": reason, TREATMENT_ARM: int(r[TREATMENT_ARM]),
                         CONTROL_ARM: int(r[CONTROL_ARM]), "total": int(r.sum())})
    return pd.DataFrame(rows, columns=["criterion", "reason", TREATMENT_ARM, CONTROL_ARM, "total"])


def orr_by_definition(analysis: ResponseAnalysis) -> pd.DataFrame:
    """ORR per criterion and arm under the unconfirmed (main) and the confirmed (co-definition: CR/PR seen again
    >= 4 weeks later, RECIST 1.1 section 4.3.5) definitions, from the full-cohort response table: n, %, exact CI,
    risk difference with its CI and the nominal P."""
    t = analysis.table[analysis.table["row"] == "ORR"]
    cols = ["definition", "criterion", "n_haic", "pct_haic", "lower_haic", "upper_haic", "n_control", "pct_control",
            "lower_control", "upper_control", "rd_pct", "rd_lower", "rd_upper", "p"]
    return t[cols].reset_index(drop=True)


#: where each hypothesis of the hierarchy takes its p-value: the main analysis (matched cohort) honouring the
#: pairing, else the full cohort. Survival: the pair-clustered robust score test (R coxph(cluster =) "Robust"),
#: else the log-rank test; response: conditional logistic regression on the matched sets, else the 2 x 2 test.
HIERARCHY_SOURCES = {
    "os": ("survival", ["os_robust_score_p_matched", "os_logrank_p"]),
    "pfs_recist": ("survival", ["pfs_recist_robust_score_p_matched", "pfs_recist_logrank_p"]),
    "pfs_mrecist": ("survival", ["pfs_mrecist_robust_score_p_matched", "pfs_mrecist_logrank_p"]),
    "orr_recist": ("response", ["orr_recist_matched_or_clogit_p", "orr_recist_p"]),
    "orr_mrecist": ("response", ["orr_mrecist_matched_or_clogit_p", "orr_mrecist_p"]),
    "dcr_recist": ("response", ["dcr_recist_matched_or_clogit_p", "dcr_recist_p"]),
    "dcr_mrecist": ("response", ["dcr_mrecist_matched_or_clogit_p", "dcr_mrecist_p"]),
}
HIERARCHY_LABELS = {"os": "Overall survival", "pfs_recist": "PFS (RECIST 1.1)", "pfs_mrecist": "PFS (mRECIST)",
                    "orr_recist": "ORR (RECIST 1.1)", "orr_mrecist": "ORR (mRECIST)", "dcr_recist": "DCR (RECIST 1.1)",
                    "dcr_mrecist": "DCR (mRECIST)"}
TEST_LABELS = {"robust_score_p_matched": "robust score test, pair-clustered (matched)",
               "logrank_p": "log-rank (full cohort)", "matched_or_clogit_p": "conditional logistic (matched)",
               "p": "2 x 2 test (full cohort)"}


def testing_hierarchy(results: dict[str, dict[str, Any]], spec: dict[str, Any]) -> pd.DataFrame:
    """The prespecified fixed-sequence test (``stats.multiplicity.fixed_sequence``) of ``spec["hierarchy"]`` at the
    family-wise ``spec["alpha"]``, with the p-values of the run's results (``HIERARCHY_SOURCES``: the first key
    present wins). Columns order, hypothesis, label, test, p, adjusted_p, tested, rejected."""
    names, ps, tests = [], [], []
    for h in spec["hierarchy"]:
        if h not in HIERARCHY_SOURCES:
            raise ValueError(f"multiplicity.hierarchy: unknown hypothesis {h!r}; known: {sorted(HIERARCHY_SOURCES)}")
        section, keys = HIERARCHY_SOURCES[h]
        sec = results.get(section, {})
        key = next((k for k in keys if sec.get(k) is not None), None)
        names.append(h)
        ps.append(np.nan if key is None else float(sec[key]))
        tests.append("not available" if key is None else TEST_LABELS[key[len(h) + 1:]])
    table = fixed_sequence(names, ps, float(spec["alpha"]))
    table.insert(2, "label", [HIERARCHY_LABELS[h] for h in names])
    table.insert(3, "test", tests)
    table.attrs["alpha"] = float(spec["alpha"])
    return table


def hierarchy_results(table: pd.DataFrame) -> dict[str, Any]:
    """The ``multiplicity`` section of results.json: alpha, the order, and per hypothesis p, adjusted p, tested and
    rejected."""
    out: dict[str, Any] = {"alpha": table.attrs.get("alpha"), "hierarchy": table["hypothesis"].tolist(),
                           "n_rejected": int(table["rejected"].sum())}
    for r in table.itertuples(index=False):
        out.update({f"{r.hypothesis}_p": r.p, f"{r.hypothesis}_adjusted_p": r.adjusted_p,
                    f"{r.hypothesis}_tested": bool(r.tested), f"{r.hypothesis}_rejected": bool(r.rejected),
                    f"{r.hypothesis}_test": r.test})
    return out
