"""Parameters of the cleaning and derivation steps (the ``cleaning:`` section of the params file) and of the
target-trial emulation (the ``target_trial:`` section). Rules: docs/methods/eligibility-and-time-zero.md,
docs/methods/target-trial.md."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import pandas as pd

from analysis_utils.study.project import REDACTED, SECRET_PARAMS


@dataclass
class CleaningConfig:
    """Parameters of the cleaning step (``cleaning:`` section of the params file).

    ``haic_window_days`` only defines the naive ever-HAIC comparison (HAIC within this many days of time zero);
    the baseline scan is the last within ``baseline_imaging_window_days`` before time zero (or the first within
    ``baseline_imaging_after_days`` after it; 0 = no look into the future); baseline laboratory values are the last
    within ``baseline_lab_window_days`` before or on time zero.
    ``pseudonym_key`` is a secret (with it, study IDs can be recomputed from record numbers): the repr shows
    ``<redacted>`` in its place, so displaying or logging a config never writes the key."""

    data_cutoff: pd.Timestamp
    pseudonym_key: str
    haic_window_days: int = 90
    combination_max_gap_days: int = 30
    baseline_imaging_window_days: int = 42
    baseline_imaging_after_days: int = 0
    baseline_lab_window_days: int = 30
    min_sd_days: int = 42
    confirm_min_days: int = 28
    pfs_rules: dict[str, Any] = field(default_factory=dict)  # the ``pfs_rules`` section (study.endpoints.PfsRules)

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={REDACTED if f.name in SECRET_PARAMS else repr(getattr(self, f.name))}"
                          for f in fields(self))
        return f"{type(self).__name__}({shown})"

    __str__ = __repr__

    @classmethod
    def from_params(cls, params: dict[str, Any], key: str) -> "CleaningConfig":
        c = params.get("cleaning", {})
        return cls(data_cutoff=pd.Timestamp(params["data_cutoff"]), pseudonym_key=key,
                   haic_window_days=int(c.get("haic_window_days", 90)),
                   combination_max_gap_days=int(c.get("combination_max_gap_days", 30)),
                   baseline_imaging_window_days=int(c.get("baseline_imaging_window_days", 42)),
                   baseline_imaging_after_days=int(c.get("baseline_imaging_after_days", 0)),
                   baseline_lab_window_days=int(c.get("baseline_lab_window_days", 30)),
                   min_sd_days=int(c.get("min_sd_days", 42)), confirm_min_days=int(c.get("confirm_min_days", 28)),
                   pfs_rules=dict(params.get("pfs_rules") or {}))


ENDPOINT_KEYS = ("os", "pfs_recist", "pfs_mrecist")
TIME_MODELS = ("indicators", "quadratic")
CENTRE_TERMS = ("fixed", "none")


@dataclass
class TargetTrialConfig:
    """The ``target_trial:`` section: protocol (grace period), the deviation models (interval length, covariates,
    centre term, missing-value handling, time model), the weights (stabilisation, truncation quantiles), the
    contrasts (timepoints, RMST tau, curve range) and the inference (bootstrap replicates, workers, CI level)."""

    grace_days: int = 90
    interval_days: int = 7
    covariates: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    centre: str = "fixed"
    missing: str = "indicator"
    time_model: str = "indicators"
    stabilize: bool = True
    truncate_quantiles: tuple[float, float] | None = None
    truncate_quantiles_sensitivity: tuple[float, float] | None = (0.01, 0.99)
    timepoints_months: list[float] = field(default_factory=lambda: [12.0, 24.0])
    rmst_tau_months: float = 24.0
    plot_months: float = 36.0
    endpoints: list[str] = field(default_factory=lambda: list(ENDPOINT_KEYS))
    bootstrap: int = 200
    workers: int = 2
    conf_level: float = 0.95

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "TargetTrialConfig":
        """Read and check the section; a wrong value raises ValueError naming the key."""
        t = dict(params.get("target_trial", {}))
        trunc = t.get("truncate_quantiles")
        trunc_sens = t.get("truncate_quantiles_sensitivity", [0.01, 0.99])
        cfg = cls(grace_days=int(t.get("grace_days", 90)), interval_days=int(t.get("interval_days", 7)),
                  covariates=list(t.get("covariates", [])), categorical=list(t.get("categorical", [])),
                  centre=str(t.get("centre", "fixed")), missing=str(t.get("missing", "indicator")),
                  time_model=str(t.get("time_model", "indicators")), stabilize=bool(t.get("stabilize", True)),
                  truncate_quantiles=None if trunc is None else (float(trunc[0]), float(trunc[1])),
                  truncate_quantiles_sensitivity=(None if trunc_sens is None else
                                                  (float(trunc_sens[0]), float(trunc_sens[1]))),
                  timepoints_months=[float(x) for x in t.get("timepoints_months", [12, 24])],
                  rmst_tau_months=float(t.get("rmst_tau_months", 24)), plot_months=float(t.get("plot_months", 36)),
                  endpoints=list(t.get("endpoints", ENDPOINT_KEYS)), bootstrap=int(t.get("bootstrap", 200)),
                  workers=int(t.get("workers", 2)), conf_level=float(t.get("conf_level", 0.95)))
        cfg.check()
        return cfg

    def check(self) -> None:
        def bad(key: str, why: str) -> ValueError:
            return ValueError(f"params target_trial.{key}: {why}")

        if self.grace_days < 0:
            raise bad("grace_days", "must be >= 0 days")
        if self.interval_days < 1:
            raise bad("interval_days", "must be >= 1 day")
        if self.centre not in CENTRE_TERMS:
            raise bad("centre", f"must be one of {CENTRE_TERMS} (got {self.centre!r})")
        if self.missing != "indicator":
            raise bad("missing", "only 'indicator' is implemented for the deviation models")
        if self.time_model not in TIME_MODELS:
            raise bad("time_model", f"must be one of {TIME_MODELS} (got {self.time_model!r})")
        for key in ("truncate_quantiles", "truncate_quantiles_sensitivity"):
            q = getattr(self, key)
            if q is not None and not 0 <= q[0] < q[1] <= 1:
                raise bad(key, "must be [lower, upper] with 0 <= lower < upper <= 1, or null")
        unknown = sorted(set(self.endpoints) - set(ENDPOINT_KEYS))
        if unknown or not self.endpoints:
            raise bad("endpoints", f"must be a non-empty subset of {ENDPOINT_KEYS} (unknown: {unknown})")
        if self.bootstrap < 0 or self.workers < 1:
            raise bad("bootstrap/workers", "bootstrap must be >= 0 and workers >= 1")
        if not 0 < self.conf_level < 1:
            raise bad("conf_level", "must lie strictly between 0 and 1")
        if self.rmst_tau_months <= 0 or any(t <= 0 for t in self.timepoints_months):
            raise bad("timepoints_months/rmst_tau_months", "must be positive")
