"""Notebook 02_missing_data's steps: the missing baseline covariates of the analysis cohort, multiple imputation by
chained equations (``stats.mice``, R mice semantics on statsmodels' MICEData), the completed data sets the later
notebooks analyse ("within" approach), and the delta-adjusted (MNAR) imputations of the tipping-point analysis.
Computation only; tables and figures are in ``reporting/imputation.py``. Method: docs/methods/missing-data.md.

The imputation model of every incomplete variable holds every other imputation variable, the treatment (``haic``),
the centre (fixed effects), and for each time-to-event endpoint the event indicator and the Nelson-Aalen cumulative
hazard at the patient's own time (White & Royston 2009). Child-Pugh class is imputed passively: its five component
points are imputed (ordered factors, ``polyreg``), then the class follows from their sum by the study's rule
(``study.scores.child_pugh_class``: A 5-6, B 7-9, C 10-15), so a patient with four known components keeps their
information. The ALBI score is imputed directly (PMM).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from analysis_utils.stats.mice import MiceResult, mice, nelson_aalen
from analysis_utils.study.scores import child_pugh_class
from analysis_utils.study.treatment import ARM_CONTROL, ARM_HAIC

__all__ = ["IMPUTED_FILE", "IMPUTED_MNAR_FILE", "CP_POINTS", "ImputationConfig", "ImputationOutput",
           "missingness_table", "imputation_frame", "impute_cohort", "tipping_imputations", "completed_cohorts",
           "write_imputed", "read_imputed", "imputation_results"]

IMPUTED_FILE = "data/imputed.parquet"          # .imp (1..m), study_id, the imputed analysis covariates
IMPUTED_MNAR_FILE = "data/imputed_mnar.parquet"  # .scenario, .delta, .imp, study_id, covariates
CP_POINTS = ("cp_bilirubin_pts", "cp_albumin_pts", "cp_inr_pts", "cp_ascites_pts", "cp_encephalopathy_pts")
PASSIVE = {"child_pugh_class": CP_POINTS}  # derived column -> the imputed columns it is computed from
ENDPOINT_COLUMNS = {"os": ("os_months", "os_event"), "pfs_recist": ("pfs_recist_months", "pfs_recist_event"),
                    "pfs_mrecist": ("pfs_mrecist_months", "pfs_mrecist_event")}


@dataclass(frozen=True)
class ImputationConfig:
    """The params' ``imputation:`` section (plus the run's ``seed``)."""

    enabled: bool = True
    m: int = 20
    maxit: int = 5
    donors: int = 5
    workers: int = 2
    variables: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    centre: bool = True
    endpoints: tuple[str, ...] = ("os", "pfs_recist", "pfs_mrecist")
    tipping_point: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.m < 2:
            raise ValueError(f"imputation.m must be >= 2 for Rubin's rules, got {self.m}")
        if self.maxit < 1 or self.donors < 1 or self.workers < 1:
            raise ValueError("imputation.maxit, donors and workers must be >= 1")
        unknown = set(self.endpoints) - set(ENDPOINT_COLUMNS)
        if unknown:
            raise ValueError(f"imputation.endpoints: unknown {sorted(unknown)}; known {sorted(ENDPOINT_COLUMNS)}")
        tp = self.tipping_point
        if tp and not {"variables", "deltas", "m", "maxit"} <= set(tp):
            raise ValueError("imputation.tipping_point needs variables, deltas, m and maxit")
        if tp and set(tp) - {"variables", "deltas", "m", "maxit", "propagate"}:
            raise ValueError(f"imputation.tipping_point: unknown key(s) "
                             f"{sorted(set(tp) - {'variables', 'deltas', 'm', 'maxit', 'propagate'})}")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "ImputationConfig":
        sec = dict(params.get("imputation") or {})
        known = {f for f in cls.__dataclass_fields__ if f != "seed"}
        unknown = set(sec) - known
        if unknown:
            raise ValueError(f"unknown key(s) in the imputation section: {sorted(unknown)}")
        for key in ("variables", "categorical", "endpoints"):
            if key in sec:
                sec[key] = tuple(sec[key] or ())
        return cls(**sec, seed=int(params.get("seed", 0)))

    def analysis_columns(self) -> list[str]:
        """Columns an analysis reads from a completed data set: the imputed variables and the passive ones."""
        passive = [p for p, parts in PASSIVE.items() if set(parts) <= set(self.variables)]
        return [*self.variables, *passive]


@dataclass
class ImputationOutput:
    """``impute_cohort``'s result: ``completed`` (``.imp``, study_id, the analysis columns of every imputed data
    set), the chains' ``trace``, the ``methods`` per variable, the ``notes`` (fallbacks, levels seen only in imputed
    data, what could not be imputed), the ``observed`` frame given to the chains and the ``config``."""

    completed: pd.DataFrame
    trace: pd.DataFrame
    methods: dict[str, str]
    notes: list[str]
    observed: pd.DataFrame
    config: ImputationConfig


def missingness_table(cohort: pd.DataFrame, variables: Sequence[str], arm_col: str = "arm",
                      centre_col: str = "center_id") -> pd.DataFrame:
    """Missing values per variable: n and % overall and per arm, and the number of centres with any missing and
    the largest centre share missing (missingness that differs by centre or arm is a sign it is not MCAR)."""
    rows = []
    for v in variables:
        miss = cohort[v].isna()
        row = {"variable": v, "n_missing": int(miss.sum()), "pct_missing": 100 * float(miss.mean())}
        for arm, tag in ((ARM_HAIC, "haic"), (ARM_CONTROL, "control")):
            m = cohort[arm_col] == arm
            row[f"n_missing_{tag}"] = int(miss[m].sum())
            row[f"pct_missing_{tag}"] = 100 * float(miss[m].mean()) if m.any() else np.nan
        by_centre = miss.groupby(cohort[centre_col]).mean()
        row["n_centres_with_missing"] = int((by_centre > 0).sum())
        row["max_centre_pct_missing"] = 100 * float(by_centre.max())
        rows.append(row)
    return pd.DataFrame(rows)


def imputation_frame(cohort: pd.DataFrame, cfg: ImputationConfig, arm_col: str = "arm",
                     centre_col: str = "center_id") -> tuple[pd.DataFrame, list[str]]:
    """The frame the chains see: the imputation variables (Child-Pugh points as numbers 1-3), ``haic`` (0/1),
    the centre when ``cfg.centre``, and per endpoint its event indicator and Nelson-Aalen cumulative hazard
    (``<ep>_event``, ``<ep>_cumhaz``; ``stats.mice.nelson_aalen``). Returns (frame, categorical columns)."""
    absent = [c for c in (*cfg.variables, arm_col, centre_col) if c not in cohort.columns]
    if absent:
        raise ValueError(f"imputation: column(s) not in the cohort: {absent}")
    f = pd.DataFrame(index=range(len(cohort)))
    for v in cfg.variables:
        x = cohort[v].reset_index(drop=True)
        f[v] = x.astype("Float64").astype(float) if isinstance(x.dtype, pd.Int64Dtype) else x
    f["haic"] = (cohort[arm_col].reset_index(drop=True) == ARM_HAIC).astype(float)
    categorical = [c for c in cfg.categorical if c in cfg.variables]
    if cfg.centre:
        f[centre_col] = cohort[centre_col].reset_index(drop=True).astype(str)
        categorical.append(centre_col)
    for ep in cfg.endpoints:
        time_col, event_col = ENDPOINT_COLUMNS[ep]
        t, e = cohort[time_col].to_numpy(dtype=float), cohort[event_col].to_numpy(dtype=float)
        f[f"{ep}_event"] = e
        f[f"{ep}_cumhaz"] = nelson_aalen(t, e)
    return f, categorical


def _passive(completed: pd.DataFrame, notes: list[str], m: int) -> pd.DataFrame:
    """Child-Pugh class from the imputed points (study rule); a class C, which no patient of the cohort has
    observed (class C is an exclusion criterion), is a level seen only in imputed data: it is counted and set to
    B, the worst class the analysis models know."""
    if not set(CP_POINTS) <= set(completed.columns):
        return completed
    score = completed[list(CP_POINTS)].astype(float).sum(axis=1, min_count=len(CP_POINTS))
    cls = child_pugh_class(score)
    n_c = int((cls == "C").sum())
    if n_c:
        notes.append(f"child_pugh_class: {n_c} imputed value(s) over the {m} data sets came out as class C "
                     f"(points >= 10), a level no patient of the cohort has (class C is excluded); set to B")
        cls = cls.where(cls != "C", "B")
    return completed.assign(child_pugh_class=cls)


def _completed(res: MiceResult, cohort: pd.DataFrame, cfg: ImputationConfig, notes: list[str],
               m: int) -> pd.DataFrame:
    ids = cohort["study_id"].reset_index(drop=True)
    out = res.completed[[".imp", ".id", *cfg.variables]].copy()
    out.insert(1, "study_id", ids.to_numpy()[out[".id"].to_numpy()])
    out = _passive(out.drop(columns=".id"), notes, m)
    for c in CP_POINTS:
        if c in out.columns:
            out[c] = out[c].astype(float)
    return out.reset_index(drop=True)


def impute_cohort(cohort: pd.DataFrame, cfg: ImputationConfig,
                  progress: Callable[[int, int], None] | None = None) -> ImputationOutput:
    """``cfg.m`` imputations of the cohort's incomplete analysis covariates (``stats.mice.mice``, ``cfg.maxit``
    iterations, ``cfg.donors`` PMM donors, ``cfg.workers`` processes, seeded by ``cfg.seed``), the passive
    Child-Pugh class added. Problems become notes, never exceptions: a variable missing for everyone stays missing
    (the propensity and outcome models then drop it, as they do without imputation)."""
    frame, categorical = imputation_frame(cohort, cfg)
    res = mice(frame, categorical=categorical, m=cfg.m, maxit=cfg.maxit, donors=cfg.donors, seed=cfg.seed,
               workers=cfg.workers, progress=progress)
    notes = list(res.notes)
    completed = _completed(res, cohort, cfg, notes, cfg.m)
    return ImputationOutput(completed, res.trace, {v: res.methods[v] for v in cfg.variables}, notes, frame, cfg)


def tipping_imputations(cohort: pd.DataFrame, imp: ImputationOutput,
                        progress: Callable[[str], None] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Delta-adjusted (MNAR) imputations for the tipping-point analysis (params ``imputation.tipping_point``):
    for each scenario (a named list of variables, e.g. ``ecog: [ecog]`` or ``child_pugh: [<the five points>]``)
    and each delta, the first ``m`` MAR chains are continued for ``maxit`` iterations with the imputed values of
    the scenario's variables shifted toward their later (worse) levels by ``delta`` on the logit scale
    (``stats.mice``). By default only the scenario's variables are re-drawn (from their imputation models, the
    other variables at their MAR-imputed values); with ``propagate: true`` every variable is updated in each
    iteration, so the shift also moves the other imputations (slower). Returns the long frame (``.scenario``,
    ``.delta``, ``.imp``, study_id, covariates) and notes."""
    cfg, tp = imp.config, imp.config.tipping_point
    if not tp:
        return pd.DataFrame(), []
    m = min(int(tp["m"]), cfg.m)
    frame, categorical = imputation_frame(cohort, cfg)
    init = _init_frame(imp, frame, m)
    parts, notes = [], []
    for scenario, variables in tp["variables"].items():
        absent = [v for v in variables if v not in cfg.variables]
        if absent:
            notes.append(f"tipping point {scenario}: {absent} not imputed; scenario skipped")
            continue
        for delta in tp["deltas"]:
            if progress:
                progress(f"{scenario}, delta {delta:g}")
            res = mice(frame, categorical=categorical, m=m, maxit=int(tp["maxit"]), donors=cfg.donors,
                       seed=cfg.seed + 1, delta={v: float(delta) for v in variables}, init=init,
                       visit=None if tp.get("propagate", False) else list(variables), workers=cfg.workers)
            part_notes: list[str] = []
            done = _completed(res, cohort, cfg, part_notes, m)
            notes += [f"tipping point {scenario}, delta {delta:g}: {n}" for n in part_notes]
            parts.append(done.assign(**{".scenario": scenario, ".delta": float(delta)}))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if len(out):
        out = out[[".scenario", ".delta", *[c for c in out.columns if c not in (".scenario", ".delta")]]]
    return out, notes


def _init_frame(imp: ImputationOutput, frame: pd.DataFrame, m: int) -> pd.DataFrame:
    """The first ``m`` MAR-completed data sets in the chains' frame layout (labels as in ``frame``)."""
    parts = []
    for i in range(1, m + 1):
        done = imp.completed.loc[imp.completed[".imp"] == i].reset_index(drop=True)
        f = frame.copy()
        for v in imp.config.variables:
            if pd.api.types.is_bool_dtype(f[v]):
                f[v] = done[v].astype("boolean").to_numpy()
            else:
                f[v] = done[v].to_numpy() if f[v].dtype == object else done[v].astype(float).to_numpy()
        parts.append(f.assign(**{".imp": i}))
    return pd.concat(parts, ignore_index=True)


def completed_cohorts(cohort: pd.DataFrame, completed: pd.DataFrame, columns: Sequence[str],
                      group: str = ".imp") -> list[pd.DataFrame]:
    """The cohort with ``columns`` replaced by each imputed data set's values (matched on study_id), one frame per
    value of ``group`` in order: the inputs of the within analyses."""
    base = cohort.set_index("study_id")
    out = []
    for _, d in completed.groupby(group, sort=True):
        c = base.copy()
        vals = d.set_index("study_id")[list(columns)].reindex(c.index)
        for col in columns:
            if pd.api.types.is_bool_dtype(c[col]):
                c[col] = vals[col].astype("boolean")
            elif col in CP_POINTS:
                c[col] = vals[col].astype("Float64").round().astype("Int64")
            else:
                c[col] = vals[col].to_numpy()
        out.append(c.reset_index())
    return out


def write_imputed(out_dir: str | Path, imp: ImputationOutput, mnar: pd.DataFrame | None = None) -> dict[str, str]:
    """``data/imputed.parquet`` (``.imp``, study_id, analysis columns) and, when given, ``data/imputed_mnar.parquet``
    under ``out_dir``; returns the relative paths written."""
    written = {}
    for rel, frame in ((IMPUTED_FILE, imp.completed), (IMPUTED_MNAR_FILE, mnar)):
        if frame is None or not len(frame):
            continue
        path = Path(out_dir) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
        written[Path(rel).stem] = rel
    return written


def read_imputed(data_dir: str | Path, mnar: bool = False) -> pd.DataFrame | None:
    """The imputed data sets written by 02_missing_data (None when the file is absent: notebook not run)."""
    path = Path(data_dir) / Path(IMPUTED_MNAR_FILE if mnar else IMPUTED_FILE).name
    return pd.read_parquet(path) if path.is_file() else None


def imputation_results(imp: ImputationOutput, missing: pd.DataFrame, n_cohort: int,
                       mnar: pd.DataFrame | None = None) -> dict[str, Any]:
    """The flat ``results.json`` "imputation" section: settings, missing counts per variable, patients with any
    imputed value, notes."""
    cfg = imp.config
    obs = imp.observed[list(cfg.variables)]
    res: dict[str, Any] = {
        "m": cfg.m, "maxit": cfg.maxit, "donors": cfg.donors, "seed": cfg.seed, "centre_in_model": cfg.centre,
        "endpoints": list(cfg.endpoints), "variables": list(cfg.variables), "n_cohort": n_cohort,
        "n_patients_any_missing": int(obs.isna().any(axis=1).sum()),
        "n_complete_cases": int((~obs.isna().any(axis=1)).sum()),
        "methods": {k: v for k, v in imp.methods.items() if v},
        "n_notes": len(imp.notes), "notes": list(imp.notes),
    }
    for r in missing.itertuples(index=False):
        res[f"n_missing_{r.variable}"] = r.n_missing
        res[f"pct_missing_{r.variable}"] = r.pct_missing
    tp = cfg.tipping_point
    if tp and mnar is not None and len(mnar):
        res.update({"tipping_deltas": [float(d) for d in tp["deltas"]], "tipping_m": int(mnar[".imp"].max()),
                    "tipping_scenarios": sorted(mnar[".scenario"].unique().tolist())})
    return res
