"""Schedule stage: the core event days that the export and the analysis-ready paths share, vectorised over persons
(days from T0).

HAIC cycles (cal. baseline, HAIC_CYCLE_P: 1-8 planned, median 3, IQR 2-3): the first on the received HAIC day, then
every 21 +- 3 days, stopped at death or end of follow-up and at the latent progression when it comes after the first
cycle (HAIC started after progression runs its planned cycles).

Systemic therapy (cal. baseline mixes): a TKI/anti-VEGF (lenvatinib 75, apatinib 10, donafenib 5, sorafenib 3,
bevacizumab 7 %) and a PD-(L)1 inhibitor (camrelizumab 55, tislelizumab 25, sintilimab 15, other 5 %; bevacizumab with
atezolizumab or sintilimab, apatinib mostly with camrelizumab). The first class starts on the systemic start day
(timing.py), the other 0-21 days later (TKI first 55 %); NO_COMBINATION_SHARE of persons receive only the first
class. A class is received only if it starts before death or the end of follow-up. 30 % of persons with a
progression visit and a first-line course start a second-line TKI (regorafenib 60 %, apatinib) 7-35 days after it.

Imaging (docs/methods/synthetic-cohort.md, section 5; cadence ASSUMPTION): a baseline scan 0-28 days before T0;
follow-up scans while untreated by HAIC every `imaging_interval_days_control` (default 56) days from T0, and from the
HAIC start every `imaging_interval_days_haic` (42) days, each +- 7 days, through the first year; then every 63-84
days. The first follow-up scan is never skipped; 8 % of the later ones are missing and 7 % off schedule by 8-14 days.
Scans stop at the first scan on or after the latent progression (the progression visit, inclusive), at death and at
the last contact. NO_FOLLOWUP_IMAGING_SHARE of persons have no follow-up scan exported.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis_utils.synthetic.config import (HAIC_CYCLE_P, NO_COMBINATION_SHARE, NO_FOLLOWUP_IMAGING_SHARE,
                                             PD1_AGENTS, PD1_P, TKI_AGENTS, TKI_P)
from analysis_utils.synthetic.population import draw_categories

_LATER_STEPS = 20          # scans after the first year: enough for the longest follow-up (about 7 years)


def haic_cycle_days(p: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """(persons x 8) HAIC cycle days, NaN-padded; empty rows for persons without HAIC received."""
    n = len(p)
    planned = rng.choice(np.arange(1, 9), n, p=HAIC_CYCLE_P)
    gaps = 21 + rng.integers(-3, 4, (n, 7))
    first = p["first_haic_day"].to_numpy(float)
    days = first[:, None] + np.concatenate([np.zeros((n, 1)), np.cumsum(gaps, axis=1)], axis=1)
    prog, end = p["prog_day"].to_numpy(float), p["end_day"].to_numpy(float)
    stop = np.where(prog <= first, end, np.minimum(prog, end))
    k = np.arange(8)[None, :]
    keep = np.isfinite(first)[:, None] & (k < planned[:, None]) & ((k == 0) | (days < stop[:, None]))
    return np.where(keep, days, np.nan)


@dataclass
class SystemicStarts:
    """Per person: agents and first-dose days of the two classes of the first-line combination and of a second-line
    TKI (NaN = not received)."""
    tki_agent: np.ndarray
    pd1_agent: np.ndarray
    tki_start: np.ndarray
    pd1_start: np.ndarray
    second_agent: np.ndarray
    second_start: np.ndarray

    def first_tki(self) -> tuple[np.ndarray, np.ndarray]:
        """The first TKI/anti-VEGF course of any line: (agent or None, first-dose day or NaN)."""
        second_first = np.isfinite(self.second_start) & ~(self.tki_start <= self.second_start)
        day = np.where(second_first, self.second_start, self.tki_start)
        agent = np.where(second_first, self.second_agent, self.tki_agent)
        return np.where(np.isfinite(day), agent, None), day

    def legacy_index(self, max_gap: int = 30) -> np.ndarray:
        """First dose of the combination as the legacy cleaning dates it: the earlier of the first TKI/anti-VEGF
        and the first PD-(L)1 course when at most `max_gap` days apart (NaN otherwise)."""
        _, aa = self.first_tki()
        return np.where(np.abs(aa - self.pd1_start) <= max_gap, np.fmin(aa, self.pd1_start), np.nan)


def systemic_starts(p: pd.DataFrame, progression_visit_day: np.ndarray, rng: np.random.Generator) -> SystemicStarts:
    """Agents and first doses of the combination and of a second-line TKI (see the module docstring)."""
    n = len(p)
    tki = draw_categories(rng, TKI_AGENTS, TKI_P, n)
    u_pair, u_bev = rng.random(n), rng.random(n)
    pd1 = draw_categories(rng, PD1_AGENTS, PD1_P, n)
    pd1 = np.where(tki == "bevacizumab", np.where(u_bev < 0.5, "atezolizumab", "sintilimab"),
                   np.where((tki == "apatinib") & (u_pair < 0.8), "camrelizumab", pd1)).astype(object)
    gap = rng.integers(0, 22, n)
    tki_first = rng.random(n) < 0.55
    mono = rng.random(n) < NO_COMBINATION_SHARE
    start = p["systemic_start_day"].to_numpy(float)
    tki_day = np.where(tki_first, start, start + gap)
    pd1_day = np.where(tki_first, start + gap, start)
    tki_day = np.where(mono & ~tki_first, np.nan, tki_day)
    pd1_day = np.where(mono & tki_first, np.nan, pd1_day)
    end = p["end_day"].to_numpy(float)
    tki_day = np.where(tki_day < end, tki_day, np.nan)
    pd1_day = np.where(pd1_day < end, pd1_day, np.nan)
    second = np.where(rng.random(n) < 0.6, "regorafenib", "apatinib").astype(object)
    second_day = progression_visit_day + rng.integers(7, 36, n)
    takes = ((np.isfinite(tki_day) | np.isfinite(pd1_day)) & np.isfinite(second_day) & (rng.random(n) < 0.30)
             & (second_day < end))
    return SystemicStarts(tki, pd1, tki_day, pd1_day, second, np.where(takes, second_day, np.nan))


@dataclass
class Imaging:
    """Per person: baseline scan day (<= 0), follow-up scan days (persons x K, sorted, NaN-padded; the last one is
    the progression visit when there is one) and the progression visit day (NaN = none)."""
    baseline_day: np.ndarray
    visits: np.ndarray
    progression_visit_day: np.ndarray

    def person(self, i: int) -> np.ndarray:
        row = self.visits[i]
        return row[np.isfinite(row)].astype(int)


def _grid(origin: np.ndarray, interval: int, upto: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Planned days origin + k x interval (k >= 1) below `upto`, and their +- 7-day jittered days."""
    k = np.arange(1, 365 // interval + 2)[None, :]
    planned = origin[:, None] + k * interval
    jitter = rng.integers(-7, 8, planned.shape)
    ok = planned < upto[:, None]
    return np.where(ok, planned, np.nan), np.where(ok, planned + jitter, np.nan)


def imaging_days(cfg: dict, p: pd.DataFrame, rng: np.random.Generator) -> Imaging:
    """Scan days per person (see the module docstring), vectorised."""
    n = len(p)
    base = -rng.integers(0, 29, n).astype(float)
    haic = p["first_haic_day"].to_numpy(float)
    h0 = np.nan_to_num(haic, nan=np.inf)
    year = 365.0
    pc, dc = _grid(np.zeros(n), cfg["imaging_interval_days_control"], np.minimum(h0, year + 1), rng)
    ph, dh = _grid(np.where(np.isfinite(h0), h0, 0.0), cfg["imaging_interval_days_haic"],
                   np.where(np.isfinite(h0), year + 1, -np.inf), rng)
    planned = np.concatenate([pc, ph], axis=1)
    days = np.concatenate([dc, dh], axis=1)
    order = np.argsort(np.nan_to_num(planned, nan=np.inf), axis=1, kind="stable")
    planned = np.take_along_axis(planned, order, axis=1)
    days = np.take_along_axis(days, order, axis=1)
    last_planned = np.nanmax(np.where(np.isfinite(planned), planned, -np.inf), axis=1)
    last_planned = np.where(np.isfinite(last_planned), last_planned, 0.0)
    later_planned = last_planned[:, None] + np.cumsum(rng.integers(63, 85, (n, _LATER_STEPS)), axis=1)
    days = np.concatenate([days, later_planned + rng.integers(-7, 8, later_planned.shape)], axis=1)
    # the first scan (column 0 after sorting) is kept as planned; later ones missing 8 %, off schedule 7 %
    u = rng.random(days.shape)
    off = rng.integers(8, 15, days.shape) * rng.choice([-1, 1], days.shape)
    col = np.arange(days.shape[1])[None, :]
    days = np.where((col > 0) & (u >= 0.08) & (u < 0.15), days + off, days)
    days = np.where((col > 0) & (u < 0.08), np.nan, days)
    first = days[:, :1]
    days = np.where((col > 0) & (days <= first + 14), np.nan, days)
    days = np.sort(days, axis=1)
    days = np.where(np.concatenate([np.zeros((n, 1), bool), days[:, 1:] == days[:, :-1]], axis=1), np.nan, days)
    days = np.sort(days, axis=1)
    end = p["end_day"].to_numpy(float)
    days = np.where((days > 0) & (days < end[:, None]), days, np.nan)
    days[rng.random(n) < NO_FOLLOWUP_IMAGING_SHARE] = np.nan
    days = np.sort(days, axis=1)
    prog = p["prog_day"].to_numpy(float)
    at_or_after = np.isfinite(days) & (days >= prog[:, None])
    has_pd = at_or_after.any(axis=1)
    pd_col = np.argmax(at_or_after, axis=1)
    pd_day = np.where(has_pd, days[np.arange(n), pd_col], np.nan)
    days = np.where(has_pd[:, None] & (col[:, :days.shape[1]] > pd_col[:, None]), np.nan, days)
    width = int(np.isfinite(days).sum(axis=1).max()) if n else 0
    return Imaging(base, days[:, :max(width, 1)], pd_day)
