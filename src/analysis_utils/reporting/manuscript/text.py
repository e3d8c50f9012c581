"""Numbers, intervals, lists and dates in words, as the manuscript's running text prints them.

Counts with thousands separators, percentages to one decimal, estimates with their CI, P as "P = 0.046" or
"P < 0.001" (``tables.fmt_p``), medians "not reached" / "NR" (``tables.NOT_REACHED``), dates in words, windows in
days with weeks or months, covariate names in prose.
"""
from __future__ import annotations

import math
from datetime import date
from typing import Any, Iterable

from analysis_utils.reporting import tables

DAYS_PER_MONTH = 30.4375
DASH = "\u2013"  # en dash for ranges, as journals print them

# Readable names of the covariates in running text (Methods); tables keep tables.COVARIATE_LABELS.
PROSE_LABELS = {
    "age": "age", "sex": "sex", "etiology": "aetiology", "ecog": "ECOG performance status",
    "child_pugh_class": "Child-Pugh class", "child_pugh_score": "Child-Pugh score", "albi_grade": "ALBI grade",
    "albi_score": "ALBI score", "bclc_stage": "BCLC stage", "tumour_number": "number of tumours",
    "multiple_tumours": "multiple tumours", "max_tumour_size_cm": "largest tumour diameter",
    "mvi": "macrovascular invasion", "vp_grade": "portal vein tumour thrombus grade", "vp4": "Vp4 thrombus",
    "ehs": "extrahepatic spread", "afp": "AFP", "afp_ge_400": "AFP of 400 ng/mL or more", "log10_afp": "log AFP",
    "pivka_ii": "PIVKA-II", "tki_agent": "TKI or anti-VEGF agent", "pd1_agent": "PD-1/PD-L1 inhibitor",
    "center_id": "centre",
}


def is_missing(x: Any) -> bool:
    """None or NaN."""
    return x is None or (isinstance(x, float) and math.isnan(x))


def fmt_int(n: Any) -> str:
    """A count with a thousands separator: 1050 -> '1,050'."""
    if is_missing(n):
        raise ValueError("fmt_int: count is missing")
    return f"{int(round(float(n))):,}"


def fmt_pct(x: Any, digits: int = 1) -> str:
    """A percentage already on the 0-100 scale: 40.525 -> '40.5%'."""
    if is_missing(x):
        raise ValueError("fmt_pct: percentage is missing")
    return f"{tables.fmt_num(float(x), digits)}%"


def fmt_count_pct(n: Any, pct: Any, digits: int = 1) -> str:
    """'253 (71.3%)' from a count and its percentage (0-100)."""
    return f"{fmt_int(n)} ({fmt_pct(pct, digits)})"


def p_text(p: Any) -> str:
    """'P = 0.046' or 'P < 0.001' (``tables.fmt_p`` thresholds), for running text."""
    if is_missing(p):
        return "P not estimable"
    s = tables.fmt_p(float(p))
    return f"P {s[0]} {s[1:]}" if s.startswith("<") else f"P = {s}"


def level_text(conf_level: float) -> str:
    """0.95 -> '95%'."""
    pct = 100 * float(conf_level)
    return f"{pct:.0f}%" if float(pct).is_integer() else f"{pct:g}%"


def ci_text(lower: Any, upper: Any, conf_level: float = 0.95, digits: int = 2) -> str:
    """'95% CI 0.50–0.77'; a limit that is not reached prints as 'NR'."""
    return (f"{level_text(conf_level)} CI {tables.fmt_num(lower, digits)}{DASH}"
            f"{tables.fmt_num(upper, digits)}")


def est_ci_text(est: Any, lower: Any, upper: Any, conf_level: float = 0.95, digits: int = 2) -> str:
    """'0.62 (95% CI 0.50–0.77)'."""
    if is_missing(est):
        raise ValueError("est_ci_text: estimate is missing")
    return f"{tables.fmt_num(est, digits)} ({ci_text(lower, upper, conf_level, digits)})"


def median_text(median: Any, lower: Any, upper: Any, conf_level: float = 0.95, unit: str = "months") -> str:
    """'14.2 months (95% CI 12.0–16.9)'; 'not reached (95% CI 20.1–NR)' when the KM curve stays above 0.5."""
    head = "not reached" if is_missing(median) else f"{tables.fmt_num(median, 1)} {unit}"
    return f"{head} ({ci_text(lower, upper, conf_level, 1)})"


def human_list(items: Iterable[str], conjunction: str = "and") -> str:
    """'a', 'a and b', 'a, b, and c' (serial comma, AMA style)."""
    xs = [str(x) for x in items]
    if len(xs) <= 2:
        return f" {conjunction} ".join(xs)
    return ", ".join(xs[:-1]) + f", {conjunction} {xs[-1]}"


def date_text(iso: Any, day: bool = True) -> str:
    """'2025-09-30' -> 'September 30, 2025' (or 'September 2025' with ``day=False``)."""
    d = date.fromisoformat(str(iso)[:10])
    return f"{d.strftime('%B')} {d.day}, {d.year}" if day else f"{d.strftime('%B')} {d.year}"


def days_text(days: Any) -> str:
    """A window in days as read in Methods: 42 -> '42 days (6 weeks)', 730 -> '730 days (about 24 months)'."""
    d = int(days)
    if d % 7 == 0 and d <= 98:
        w = d // 7
        return f"{d} days ({w} week{'s' if w != 1 else ''})"
    months = d / DAYS_PER_MONTH
    if d >= 60:
        return f"{d} days (about {round(months)} months)"
    return f"{d} days"


def covariate_text(names: Iterable[str]) -> str:
    """The covariate list of a model as running text (``PROSE_LABELS``, else the column name)."""
    return human_list(PROSE_LABELS.get(n, n.replace("_", " ")) for n in names)


def months_list_text(values: Iterable[float]) -> str:
    """[6, 12, 18, 24] -> '6, 12, 18, and 24 months'."""
    return human_list(f"{v:g}" for v in values) + " months"
