"""Multiple testing: a prespecified fixed-sequence (hierarchical) testing procedure.

``fixed_sequence``: hypotheses are tested in their prespecified order, each at the full family-wise level alpha; the
procedure stops at the first hypothesis not rejected, and every later one is not tested (Maurer, Hothorn &
Lehmacher 1995; Westfall & Krishen 2001). It controls the family-wise error rate strongly at alpha. Adjusted
p-values are the running maxima p~_i = max(p_1, ..., p_i), so H_i is rejected exactly when p~_i <= alpha; they are
the adjusted p-values of the graphical procedure with the chain graph H_1 -> H_2 -> ... (weight 1 on H_1, every
transition weight 1; Bretz et al. 2009, R ``gMCP``). A missing p-value stops the sequence (not rejected, the rest
not tested). Rules: docs/methods/survival.md (multiplicity). Tests: hand cases.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

__all__ = ["fixed_sequence"]


def fixed_sequence(names: Sequence[str], p_values: Sequence[float], alpha: float = 0.05) -> pd.DataFrame:
    """One row per hypothesis in the given order: order (1-based), hypothesis, p, adjusted_p (running maximum; NaN
    from the first missing p on), tested (bool: reached by the sequence), rejected (bool)."""
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    if len(names) != len(p_values):
        raise ValueError("names and p_values differ in length")
    p = np.asarray(p_values, dtype=float)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    missing = ~np.isfinite(p)
    stop = int(np.argmax(missing)) if missing.any() else len(p)
    adjusted = np.full(len(p), np.nan)
    adjusted[:stop] = np.maximum.accumulate(p[:stop])
    rejected = np.zeros(len(p), dtype=bool)
    rejected[:stop] = adjusted[:stop] <= alpha
    tested = np.zeros(len(p), dtype=bool)
    first_kept = int(np.argmin(rejected)) if not rejected.all() else len(p)
    tested[: min(first_kept + 1, len(p))] = True
    rejected &= np.arange(len(p)) < first_kept
    return pd.DataFrame({"order": np.arange(1, len(p) + 1), "hypothesis": list(names), "p": p,
                         "adjusted_p": adjusted, "tested": tested, "rejected": rejected})
