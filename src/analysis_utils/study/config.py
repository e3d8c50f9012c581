"""Parameters of the cleaning and derivation steps (the ``cleaning:`` section of the params file)."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import pandas as pd

from analysis_utils.study.project import REDACTED, SECRET_PARAMS


@dataclass
class CleaningConfig:
    """Parameters of the cleaning step (``cleaning:`` section of the params file).

    ``pseudonym_key`` is a secret (with it, study IDs can be recomputed from record numbers): the repr shows
    ``<redacted>`` in its place, so displaying or logging a config never writes the key."""

    data_cutoff: pd.Timestamp
    pseudonym_key: str
    haic_window_days: int = 90
    combination_max_gap_days: int = 30
    baseline_imaging_window_days: int = 42
    baseline_imaging_after_days: int = 7
    min_sd_days: int = 42
    confirm_min_days: int = 28

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
                   baseline_imaging_after_days=int(c.get("baseline_imaging_after_days", 7)),
                   min_sd_days=int(c.get("min_sd_days", 42)), confirm_min_days=int(c.get("confirm_min_days", 28)))
