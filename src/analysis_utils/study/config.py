"""Parameters of the cleaning and derivation steps (the ``cleaning:`` section of the params file)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class CleaningConfig:
    """Parameters of the cleaning step (``cleaning:`` section of the params file)."""

    data_cutoff: pd.Timestamp
    pseudonym_key: str
    haic_window_days: int = 90
    combination_max_gap_days: int = 30
    baseline_imaging_window_days: int = 42
    baseline_imaging_after_days: int = 7
    min_sd_days: int = 42
    confirm_min_days: int = 28
    pfs_rules: dict[str, Any] = field(default_factory=dict)  # the ``pfs_rules`` section (study.endpoints.PfsRules)

    @classmethod
    def from_params(cls, params: dict[str, Any], key: str) -> "CleaningConfig":
        c = params.get("cleaning", {})
        return cls(data_cutoff=pd.Timestamp(params["data_cutoff"]), pseudonym_key=key,
                   haic_window_days=int(c.get("haic_window_days", 90)),
                   combination_max_gap_days=int(c.get("combination_max_gap_days", 30)),
                   baseline_imaging_window_days=int(c.get("baseline_imaging_window_days", 42)),
                   baseline_imaging_after_days=int(c.get("baseline_imaging_after_days", 7)),
                   min_sd_days=int(c.get("min_sd_days", 42)), confirm_min_days=int(c.get("confirm_min_days", 28)),
                   pfs_rules=dict(params.get("pfs_rules") or {}))
