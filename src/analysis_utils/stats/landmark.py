"""Landmark data set (Anderson, Cain & Gelber 1983): the patients still event-free and followed beyond the
landmark, time restarted there, exposure classified by what happened before it. Rules: docs/methods/survival.md.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis_utils.stats.survival_input import survival_data

__all__ = ["landmark"]


def landmark(df: pd.DataFrame, time_col: str, event_col: str, landmark_months: float, arm_col: str | None = None,
             exposure_start_col: str | None = None, exposed_label: object = 1,
             unexposed_label: object = 0) -> pd.DataFrame:
    """Landmark data set: patients alive, event-free and still followed beyond the landmark (time > L), with time
    reset to start at L (original kept in ``<time_col>_baseline``).

    The arm (``arm_col``, checked to exist) stays as defined at baseline. For immortal-time handling,
    ``exposure_start_col`` (e.g. ``exposure_start_months``, time from time zero to the start of the treatment, in
    the unit of ``time_col``) adds ``arm_landmark``: ``exposed_label`` if exposure started at or before L, otherwise
    ``unexposed_label`` (a treatment started after L counts as not exposed; a missing start means never exposed).
    """
    for c in [time_col, event_col, arm_col, exposure_start_col]:
        if c is not None and c not in df.columns:
            raise ValueError(f"column '{c}' is not in the data")
    t, e, _ = survival_data(df[time_col], df[event_col])
    L = float(landmark_months)
    if L < 0:
        raise ValueError("landmark_months must be >= 0")
    out = df.loc[t > L].copy()
    out[f"{time_col}_baseline"] = out[time_col]
    out[time_col] = out[time_col] - L
    if exposure_start_col is not None:
        start = pd.to_numeric(out[exposure_start_col], errors="coerce")
        out["arm_landmark"] = np.where(start.notna() & (start <= L), exposed_label, unexposed_label)
    out.attrs.update({"landmark_months": L, "n_excluded": int((t <= L).sum())})
    return out
