"""Imaging stage: each person's lesions and scans, consistent with the latent response and progression under
RECIST 1.1 (Eisenhauer 2009, doi:10.1016/j.ejca.2008.10.026) and mRECIST (Lencioni & Llovet 2010,
doi:10.1055/s-0030-1247132); rules: docs/methods/recist-mrecist.md.

Depth (cal. efficacy) by latent category (outcomes.py): LD change PR -0.34 to -0.80, SD -0.26 to +0.14; viable
(enhancing) diameter shrinks faster (70 % of the time) and deeper (mRECIST CR: viable 0, extrahepatic and
non-target disease gone). Depth is reached at 1.8-4 months along 1 + d * (t/t_d)^0.6; per-visit noise +-2.5 %
(capped 5 %) with a running minimum, so no spurious progression; non-CR lesions keep >= 5 mm (RECIST 1.1 default
size of a lesion too small to measure).

Scan days come from the core (schedule.imaging_days: a baseline scan 0-28 days before T0, follow-up scans by current
HAIC status, stopping at the progression visit, death or last contact). Depth is reached 1.8-4 months after T0.
Progression is shown at the first visit after the latent progression time by a new lesion (60 %, forced when the
viable nadir is 0: liver, typical enhancement, 10-30 mm) or by growth of every measured lesion by
g = max(U(1.3, 1.6), 1 + 7 mm / largest-lesion nadir) (RECIST: >= 20 % and >= 5 mm; mRECIST: >= 20 % of viable).
Baseline lesions: 1-4 liver lesions (largest = max_tumour_size, the others 15-60 % of it, 10 % of non-largest
atypical = no arterial enhancement), lung and lymph-node lesions with EHS, a portal_vein non-target with MVI, an
ascites non-target in half of those with ascites. Truth BOR per criterion is derived from the clean measurements
(targets: <= 2 per organ, <= 5 in total; mRECIST liver targets must enhance; SD counts from day 42 =
TRUTH_MIN_SD_DAYS; unconfirmed).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from analysis_utils.synthetic.config import DAYS_PER_MONTH, TRUTH_MIN_SD_DAYS
from analysis_utils.synthetic.population import Centre


def _ratio(t_m: np.ndarray, depth: float, t_depth: float) -> np.ndarray:
    """Fraction of baseline diameter: 1 + depth * min(t/t_depth, 1)^0.6 (depth reached at t_depth months)."""
    return 1.0 + depth * np.minimum(np.maximum(t_m, 0) / t_depth, 1.0) ** 0.6


def _person_lesions(row: Any, rng: np.random.Generator) -> list[dict]:
    """Baseline lesions: liver (largest = max_tumour_size), lung/nodes/bone with EHS, PVTT with MVI, ascites."""
    size_mm = row.max_tumour_size * 10.0
    lesions: list[dict] = []
    n_liver = row.tumour_number if row.tumour_number <= 4 else int(rng.integers(3, 5))
    no_meas = "no_measurable_lesion" in row.exclusion_criteria_built.split(";")
    for k in range(n_liver):
        if k == 0:
            ld = round(size_mm)
            typical = True
        else:
            ld = max(6, round(size_mm * rng.uniform(0.15, 0.6)))
            typical = rng.random() >= 0.10
        if no_meas and k:
            ld = min(int(rng.integers(5, 10)), round(size_mm))
        viable = round(ld * rng.uniform(0.8, 1.0)) if typical else None
        lesions.append({"id": f"L{k + 1}", "organ": "liver", "ld0": float(ld), "v0": viable, "sa0": None,
                        "typical": typical})
    if row.ehs:
        kinds = []
        if rng.random() < 0.6:
            kinds += ["lung"] * int(rng.integers(1, 3))
        if rng.random() < 0.45:
            kinds += ["lymph_node"] * int(rng.integers(1, 3))
        if rng.random() < 0.15 or not kinds:
            kinds.append("bone" if rng.random() < 0.6 else "lymph_node")
        for j, kind in enumerate(kinds, start=1):
            if kind == "lung":
                ld = float(rng.integers(8, 31))
                lesions.append({"id": f"E{j}", "organ": "lung", "ld0": ld, "v0": ld, "sa0": None, "typical": True})
            elif kind == "lymph_node":
                sa = float(rng.integers(12, 29))
                ld = float(round(sa * rng.uniform(1.2, 1.6)))
                lesions.append({"id": f"N{j}", "organ": "lymph_node", "ld0": ld, "v0": ld, "sa0": sa,
                                "typical": True})
            else:
                lesions.append({"id": f"E{j}", "organ": "bone", "ld0": None, "v0": None, "sa0": None,
                                "typical": True})
    if row.mvi:
        lesions.append({"id": "PV1", "organ": "portal_vein", "ld0": None, "v0": None, "sa0": None, "typical": True})
    if row.ascites != "none" and rng.random() < 0.5:
        lesions.append({"id": "A1", "organ": "ascites", "ld0": None, "v0": None, "sa0": None, "typical": True})
    return lesions


def _select_targets(lesions: list[dict], criterion: str) -> list[int]:
    """Targets: measurable (LD >= 10 mm; nodes SA >= 15 mm; mRECIST liver must enhance with viable >= 10 mm),
    at most 2 per organ and 5 in total, largest first (docs/methods/recist-mrecist.md, target and non-target
    lesions)."""
    cands = []
    for i, les in enumerate(lesions):
        if les["organ"] == "liver":
            size = les["v0"] if criterion == "mrecist" else les["ld0"]
            if criterion == "mrecist" and not les["typical"]:
                continue
            if size is not None and size >= 10:
                cands.append((size, i, "liver"))
        elif les["organ"] == "lung" and les["ld0"] >= 10:
            cands.append((les["ld0"], i, "lung"))
        elif les["organ"] == "lymph_node" and les["sa0"] >= 15:
            cands.append((les["sa0"], i, "lymph_node"))
    per_organ: dict[str, int] = {}
    chosen = []
    for size, i, organ in sorted(cands, key=lambda c: (-c[0], c[1])):
        if per_organ.get(organ, 0) < 2 and len(chosen) < 5:
            chosen.append(i)
            per_organ[organ] = per_organ.get(organ, 0) + 1
    return chosen


def _depths(cat_r: str, cat_m: str, rng: np.random.Generator) -> tuple[float, float]:
    """Depth of LD change and of viable-diameter change for the nested latent categories (cal. efficacy)."""
    if cat_r == "CR":
        return -1.0, -1.0
    # Margins of a few points around the -30 % (PR) and +20 % (PD) thresholds keep the derived response on the
    # latent category's side despite whole-millimetre measurements, while the waterfall stays nearly continuous.
    if cat_r == "PR":
        d_r = rng.uniform(-0.80, -0.34)
    elif cat_m in ("CR", "PR"):
        d_r = rng.uniform(-0.26, -0.05)
    else:
        d_r = rng.uniform(-0.26, 0.14)
    if cat_m == "CR":
        return d_r, -1.0
    if cat_m == "PR":
        if d_r < -0.34:      # RECIST PR too: viable 5-20 points deeper, kept above -0.95 (not a CR)
            return d_r, float(np.clip(d_r - rng.uniform(0.05, 0.2), -0.95, -0.34))
        return d_r, float(rng.uniform(-0.80, -0.34))
    return d_r, float(np.clip(d_r - rng.uniform(0.0, 0.04), -0.26, 0.14))


def person_imaging(row: Any, centre: Centre, days: np.ndarray, base_day: int, legacy_index: float,
                   rng: np.random.Generator, out: list[dict]) -> dict:
    """Lesion-level scans on the core's scan days (the last one is the progression visit when
    row.progression_visit_day is set), consistent with the latent response and progression under RECIST 1.1 and
    mRECIST. Returns the truth BOR per criterion from the T0 baseline scan (`bor_<c>_t0`) and from the baseline
    that the legacy rules pick around `legacy_index` (the combination start; `bor_<c>`, see legacy_baseline)."""
    lesions = _person_lesions(row, rng)
    pd_visit = len(days) - 1 if np.isfinite(row.progression_visit_day) else None
    t = days / DAYS_PER_MONTH
    d_r, d_m = _depths(row.latent_response_recist, row.latent_response_mrecist, rng)
    t_d = rng.uniform(1.8, 4.0)
    cr_all = row.latent_response_mrecist == "CR"
    r_ld = _ratio(t, d_r, t_d)
    r_v = _ratio(t, d_m, 0.7 * t_d)
    r_gone = _ratio(t, -1.0, 0.7 * t_d)
    nv = len(days)

    def noisy(base: float, ratio: np.ndarray, floor: float) -> np.ndarray:
        eps = np.clip(rng.normal(0, 0.025, nv), -0.05, 0.05)
        if ratio.size and ratio[-1] > 1.0:   # slowly growing stable disease: smooth, no noise
            vals = base * ratio
        else:
            vals = np.minimum.accumulate(base * ratio * (1 + eps)) if nv else base * ratio
        vals = np.round(vals)
        return np.where(ratio <= 0, 0.0, np.maximum(vals, min(floor, base)))

    # liver targets under either criterion keep their LD (unless RECIST CR); with mRECIST CR every other
    # lesion disappears, so the overall mRECIST response is CR whatever target set an engine picks
    liver_targets = {j for j in _select_targets(lesions, "recist") + _select_targets(lesions, "mrecist")
                     if lesions[j]["organ"] == "liver"}
    series: list[dict] = []
    for j, les in enumerate(lesions):
        s: dict[str, Any] = {"ld": None, "v": None, "sa": None, "status": None}
        organ = les["organ"]
        if organ == "liver":
            if d_r <= -1 or (cr_all and j not in liver_targets):
                s["ld"] = noisy(les["ld0"], r_gone, 0)
            else:
                s["ld"] = noisy(les["ld0"], r_ld, 5.0)
            if les["v0"] is not None:
                if cr_all or d_m <= -1:
                    s["v"] = noisy(les["v0"], r_gone, 0)
                else:
                    s["v"] = noisy(les["v0"], r_v, 2.0)
                s["v"] = np.minimum(s["v"], s["ld"])
        elif organ == "lung":
            s["ld"] = noisy(les["ld0"], r_gone if cr_all else r_ld, 0 if cr_all else 5.0)
            s["v"] = s["ld"].copy()
        elif organ == "lymph_node":
            if cr_all:
                s["sa"] = np.round(les["sa0"] - (les["sa0"] - 8.0) * (1 - r_gone) if nv else np.array([]))
                s["sa"] = np.minimum(s["sa"], les["sa0"])
            else:
                s["sa"] = noisy(les["sa0"], r_ld, 5.0)
            s["ld"] = np.round(s["sa"] * les["ld0"] / les["sa0"])
            s["v"] = s["ld"].copy()
        else:
            s["status"] = np.where(cr_all & (r_gone <= 0), "absent", "present") if nv else np.array([])
        series.append(s)

    mode = "none"
    new_lesions: list[dict] = []
    if pd_visit is not None:
        viable_nadir = sum(float(s["v"][:-1].min()) if nv > 1 and s["v"] is not None else
                           (lesions[j]["v0"] or 0.0) for j, s in enumerate(series)
                           if lesions[j]["organ"] == "liver" and lesions[j]["v0"] is not None)
        if cr_all or viable_nadir <= 0 or rng.random() < 0.6:
            mode = "new_lesion"
            organ = "lung" if (row.ehs and rng.random() < 0.25) else "liver"
            ld = float(rng.integers(10, 31))
            new_lesions.append({"id": "NEW1", "organ": organ, "ld": ld,
                                "v": round(ld * rng.uniform(0.8, 1.0)) if organ == "liver" else ld})
        else:
            mode = "growth"
            liver0 = series[0]
            nadir_l1 = float(np.concatenate([[lesions[0]["ld0"]], liver0["ld"][:-1]]).min())
            g = max(rng.uniform(1.3, 1.6), 1.0 + 7.0 / max(nadir_l1, 1.0))
            for j, s in enumerate(series):
                for key, base_key in (("ld", "ld0"), ("v", "v0"), ("sa", "sa0")):
                    if s[key] is not None and lesions[j][base_key] is not None:
                        prev = np.concatenate([[lesions[j][base_key]], s[key][:-1]])
                        s[key][-1] = math.ceil(prev.min() * g)
                if s["v"] is not None and s["ld"] is not None:
                    s["v"][-1] = min(s["v"][-1], s["ld"][-1]) if lesions[j]["organ"] == "liver" else s["ld"][-1]

    # rows: baseline + visits
    targets_site = set(_select_targets(lesions, "recist"))
    if centre.all_measurable_target:
        targets_site = {j for j, les in enumerate(lesions) if (les["ld0"] or 0) >= 10}
    for v in range(-1, nv):
        day = base_day if v < 0 else int(days[v])
        for j, (les, s) in enumerate(zip(lesions, series)):
            rec = {"person_id": row.person_id, "day": day, "lesion_id": les["id"], "organ": les["organ"],
                   "lesion_type": "target" if j in targets_site else "non_target",
                   "ld_mm": None, "viable_ld_mm": None, "short_axis_mm": None, "arterial_enhancement": None,
                   "nontarget_status": None, "cytology_confirmed": None}
            if les["ld0"] is not None:
                rec["ld_mm"] = les["ld0"] if v < 0 else float(s["ld"][v])
            if les["organ"] in ("liver", "lung", "lymph_node") and les["v0"] is not None:
                rec["viable_ld_mm"] = float(les["v0"] if v < 0 else s["v"][v])
            if les["organ"] == "lymph_node":
                rec["short_axis_mm"] = les["sa0"] if v < 0 else float(s["sa"][v])
            if les["organ"] == "liver":
                enh = les["typical"] and (v < 0 or rec["viable_ld_mm"] > 0)
                rec["arterial_enhancement"] = "yes" if enh else "no"
            if j not in targets_site:
                if les["ld0"] is None:
                    rec["nontarget_status"] = "present" if v < 0 else str(s["status"][v])
                elif les["organ"] == "lymph_node":
                    gone = v >= 0 and rec["short_axis_mm"] < 10
                    rec["nontarget_status"] = "absent" if gone else "present"
                else:
                    gone = v >= 0 and rec["ld_mm"] == 0
                    rec["nontarget_status"] = "absent" if gone else "present"
            if les["organ"] == "ascites":
                rec["cytology_confirmed"] = "no"
            out.append(rec)
        if v == nv - 1 and pd_visit is not None:
            for les in new_lesions:
                out.append({"person_id": row.person_id, "day": day, "lesion_id": les["id"], "organ": les["organ"],
                            "lesion_type": "new", "ld_mm": les["ld"], "viable_ld_mm": float(les["v"]),
                            "short_axis_mm": None,
                            "arterial_enhancement": "yes" if les["organ"] == "liver" else None,
                            "nontarget_status": None, "cytology_confirmed": None})

    res = {"progression_mode": mode, "depth_ld": round(d_r, 3), "depth_viable": round(d_m, 3)}
    b = legacy_baseline(base_day, days, legacy_index)
    for crit in ("recist", "mrecist"):
        res[f"bor_{crit}_t0"] = _truth_bor(lesions, series, days, pd_visit, crit)
        if b is None:
            res[f"bor_{crit}"] = "NE"
        else:
            les_b, ser_b, days_b, pd_b = _rebase(lesions, series, days, pd_visit, b)
            res[f"bor_{crit}"] = _truth_bor(les_b, ser_b, days_b - legacy_index, pd_b, crit)
    return res


def legacy_baseline(base_day: int, days: np.ndarray, index: float) -> int | None:
    """The scan the legacy rules take as baseline for an index day: the last scan in [index - 42, index], else the
    first in (index, index + 7] (docs/methods/recist-mrecist.md); -1 = the T0 baseline scan, k = follow-up scan k,
    None = none (or no index)."""
    if not np.isfinite(index):
        return None
    scans = np.concatenate([[base_day], days])
    before = np.flatnonzero((scans >= index - 42) & (scans <= index))
    if len(before):
        return int(before[-1]) - 1
    after = np.flatnonzero((scans > index) & (scans <= index + 7))
    return int(after[0]) - 1 if len(after) else None


def _rebase(lesions: list[dict], series: list[dict], days: np.ndarray, pd_visit: int | None, b: int
            ) -> tuple[list[dict], list[dict], np.ndarray, int | None]:
    """Lesions, series, scan days and progression visit re-expressed with follow-up scan `b` as the baseline
    (b = -1: unchanged)."""
    if b < 0:
        return lesions, series, days, pd_visit
    new_lesions, new_series = [], []
    for les, ser in zip(lesions, series):
        les2 = dict(les)
        for key, base_key in (("ld", "ld0"), ("v", "v0"), ("sa", "sa0")):
            if ser[key] is not None and les[base_key] is not None:
                les2[base_key] = float(ser[key][b])
        new_lesions.append(les2)
        new_series.append({k: (None if v is None else v[b + 1:]) for k, v in ser.items()})
    pd_b = None if pd_visit is None or pd_visit <= b else pd_visit - b - 1
    return new_lesions, new_series, days[b + 1:], pd_b


def _truth_bor(lesions: list[dict], series: list[dict], days: np.ndarray, pd_visit: int | None,
               criterion: str) -> str:
    """Truth BOR from the clean measurements (docs/methods/recist-mrecist.md: target, non-target, overall and best
    overall response; unconfirmed; SD counts from TRUTH_MIN_SD_DAYS; an early SD followed by PD gives PD, with
    nothing after it NE)."""
    if len(days) == 0:
        return "NE"
    targets = _select_targets(lesions, criterion)
    if not targets:
        return "NE"

    def target_value(j: int, v: int | None) -> float:
        les, s = lesions[j], series[j]
        if les["organ"] == "lymph_node":
            return les["sa0"] if v is None else float(s["sa"][v])
        if les["organ"] == "liver" and criterion == "mrecist":
            return les["v0"] if v is None else float(s["v"][v])
        return les["ld0"] if v is None else float(s["ld"][v])

    base = sum(target_value(j, None) for j in targets)
    best = "NE"
    rank = {"CR": 4, "PR": 3, "SD": 2, "PD": 1, "NE": 0}
    for v in range(len(days)):
        if pd_visit is not None and v == pd_visit:
            resp = "PD"
        else:
            vals = [target_value(j, v) for j in targets]
            nodal_ok = all(target_value(j, v) < 10 for j in targets if lesions[j]["organ"] == "lymph_node")
            nonnodal_zero = all(target_value(j, v) == 0 for j in targets if lesions[j]["organ"] != "lymph_node")
            non_targets_gone = True
            for j, les in enumerate(lesions):
                if j in targets:
                    continue
                s = series[j]
                if les["organ"] == "lymph_node":
                    non_targets_gone &= float(s["sa"][v]) < 10
                elif les["organ"] == "liver":
                    val = s["v"][v] if (criterion == "mrecist" and s["v"] is not None) else s["ld"][v]
                    if criterion == "mrecist" and not les["typical"]:
                        val = 0.0
                    non_targets_gone &= float(val) == 0
                elif les["ld0"] is not None:
                    non_targets_gone &= float(s["ld"][v]) == 0
                else:
                    non_targets_gone &= str(s["status"][v]) == "absent"
            if nodal_ok and nonnodal_zero:
                resp = "CR" if non_targets_gone else "PR"
            elif sum(vals) <= 0.7 * base:
                resp = "PR"
            else:
                resp = "SD" if days[v] >= TRUTH_MIN_SD_DAYS else "NE"
        if rank[resp] > rank[best]:
            best = resp
        if resp == "PD":
            break
    return best
