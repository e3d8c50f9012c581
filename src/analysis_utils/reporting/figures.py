"""Figures: one consistent look for the whole paper, saved as 300-dpi PNG and SVG.

No backend is forced: in a notebook kernel figures show inline (and so are stored in the executed notebooks that
the manuscript embeds); without a display matplotlib falls back to Agg by itself.

``save_figure`` strips the creation date from vector output and fixes the SVG hash salt, so identical runs give
identical files. Arm colours are fixed here and used by every figure (colour-blind-safe Okabe-Ito pair).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from analysis_utils.study.treatment import ARM_CONTROL, ARM_HAIC

ARM_COLOURS = {ARM_HAIC: "#D55E00", ARM_CONTROL: "#0072B2"}
ARM_ORDER = [ARM_HAIC, ARM_CONTROL]
plt.rcParams.update({"svg.hashsalt": "nct06881433", "font.size": 9, "axes.spines.top": False,
                     "axes.spines.right": False, "figure.dpi": 100})


def save_figure(fig: plt.Figure, out_dir: str | Path, name: str) -> dict[str, str]:
    """Save ``fig`` as ``<out_dir>/figures/<name>.png`` (300 dpi) and ``.svg``; returns the relative paths."""
    folder = Path(out_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / f"{name}.png", dpi=300, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(folder / f"{name}.svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    return {"png": f"figures/{name}.png", "svg": f"figures/{name}.svg"}
