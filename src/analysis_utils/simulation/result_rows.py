"""One estimate as a result row of the simulation (endpoint, quantity, population, estimate, se, lower, upper,
note), shared by the estimator modules (``estimators.py``, ``estimators_tte.py``). Method: docs/methods/simulation.md.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def row(endpoint: str, quantity: str, population: str, est: float, se: float, lower: float, upper: float,
        note: str = "") -> dict[str, Any]:
    return {"endpoint": endpoint, "quantity": quantity, "population": population, "estimate": float(est),
            "se": float(se), "lower": float(lower), "upper": float(upper), "note": note}


def failed(endpoint: str, quantity: str, population: str, note: str) -> dict[str, Any]:
    """A row without estimate: the method could not estimate this estimand on this replicate (``note`` says why)."""
    return row(endpoint, quantity, population, np.nan, np.nan, np.nan, np.nan, note)
