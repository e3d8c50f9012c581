"""Helpers for the hand-built derivation tests (tests/test_derivations_by_hand.py, tests/test_eligibility_by_hand.py).

Every hand-built patient starts from ``conftest.patient_tables``: lenvatinib (TKI) from 2023-02-01 and camrelizumab
(PD-1) from 2023-02-03, so time zero T0 = 2023-02-01 (the first treatment component) unless a HAIC session comes
first. Days below are counted from T0 = 2023-02-01 and turned into ISO dates with :func:`day` (plain calendar
arithmetic, independent of the code under test). The cleaning parameters are those of params/default.yaml (the
study's protocol values) with the data cut-off moved to 2023-12-31 = day 333 (Feb 1 -> Dec 31: 27 + 31 + 30 + 31 +
30 + 31 + 31 + 30 + 31 + 30 + 31 = 333 days) so that cut-off rules can be exercised within one year.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd

from analysis_utils.study.cleaning import CleaningConfig, clean
from analysis_utils.study.identifiers import study_id
from analysis_utils.study.project import load_params
from conftest import write_center

ROOT = Path(__file__).resolve().parents[1]
T0 = dt.date(2023, 2, 1)
CUTOFF = "2023-12-31"          # day 333
CUTOFF_DAY = 333
BASELINE_SCAN_DAY = -22        # 2023-01-10: within [T0 - 42, T0] and before a HAIC on 2023-01-20
KEY = "hand-built-key"


def day(n: int) -> str:
    """ISO date of day ``n`` from T0 = 2023-02-01."""
    return (T0 + dt.timedelta(days=n)).isoformat()


def config(**pfs_rules: Any) -> CleaningConfig:
    """The study's cleaning parameters (params/default.yaml) with the cut-off of this module."""
    params = load_params(ROOT / "params" / "default.yaml")
    params["data_cutoff"] = CUTOFF
    params["pfs_rules"] = {**(params.get("pfs_rules") or {}), **pfs_rules}
    return CleaningConfig.from_params(params, KEY)


def liver_row(mrn: str, n: int, ld: Any, viable: Any, lesion_type: str = "target", lesion_id: str = "L1",
              enhancing: str = "yes") -> dict[str, Any]:
    """One liver lesion row on day ``n`` (blank diameters: pass "")."""
    return {"mrn": mrn, "assessment_date": day(n), "lesion_id": lesion_id, "organ": "liver",
            "lesion_type": lesion_type, "ld_mm": str(ld), "viable_ld_mm": str(viable), "short_axis_mm": "",
            "diameter_unit": "mm", "arterial_enhancement": enhancing, "nontarget_status": "", "cytology_confirmed": ""}


def scans(mrn: str, visits: list[tuple[int, Any, Any]], baseline: tuple[int, Any, Any] = (BASELINE_SCAN_DAY, 60, 30)
          ) -> list[dict[str, Any]]:
    """One enhancing liver target L1: the baseline scan (day, longest diameter, viable diameter) and the follow-up
    visits (day, LD, viable LD). RECIST 1.1 sums the LD, mRECIST the viable LD."""
    return [liver_row(mrn, d, ld, v) for d, ld, v in [baseline, *visits]]


def therapy(mrn: str, agent: str, drug_class: str, start: str, stop: str = "") -> dict[str, Any]:
    return {"mrn": mrn, "agent": agent, "drug_class": drug_class, "start_date": start, "stop_date": stop, "cycles": ""}


def combination(mrn: str, tki_day: int = 0, pd1_day: int = 2) -> list[dict[str, Any]]:
    """Lenvatinib from day ``tki_day`` and camrelizumab from day ``pd1_day``."""
    return [therapy(mrn, "lenvatinib", "TKI", day(tki_day)), therapy(mrn, "camrelizumab", "PD-1", day(pd1_day))]


def alive(last_contact_day: int) -> dict[str, str]:
    return {"vital_status": "alive", "death_date": "", "last_contact_date": day(last_contact_day)}


def dead(death_day: int) -> dict[str, str]:
    return {"vital_status": "dead", "death_date": day(death_day), "last_contact_date": day(death_day)}


def run_clean(tmp: Path, patients: list[dict[str, list[dict[str, Any]]]], cfg: CleaningConfig | None = None):
    """Write one centre C01 with ``patients`` and clean it; returns the CleanedData."""
    write_center(tmp / "raw", "C01", patients)
    return clean(tmp / "raw", cfg or config())


def by_mrn(cleaned, mrn: str, center: str = "C01") -> pd.Series:
    """The screened record of (centre, mrn)."""
    sid = study_id(pd.Series([center]), pd.Series([mrn]), KEY).iloc[0]
    return cleaned.screened.set_index("study_id").loc[sid]
