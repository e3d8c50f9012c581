"""Tumour response per RECIST 1.1 and mRECIST (HCC), vectorised over patients: the engine that prepares the lesion
table, finds the baseline scan, builds the time points and derives the best overall response.

Rules: docs/methods/recist-mrecist.md (Eisenhauer et al. 2009, RECIST 1.1, doi:10.1016/j.ejca.2008.10.026;
Lencioni & Llovet 2010, mRECIST, doi:10.1055/s-0030-1247132). Each rule is a named function of
:mod:`analysis_utils.study.recist_rules`, importable from here too; "§1.3" etc. are the rule marks listed there
(§1.x RECIST 1.1, §2.x mRECIST).

Input
-----
``lesions``: one row per lesion per imaging visit (cleaned), columns ``study_id, assessment_date, lesion_id,
organ, lesion_type, ld_mm, viable_ld_mm, short_axis_mm, arterial_enhancement, nontarget_status,
cytology_confirmed``. ``index``: ``study_id, index_date`` (time zero). Dates are compared at day resolution.

Public API
----------
``find_baseline``, ``select_targets``, ``timepoint_responses``, ``best_overall_response``,
``derive_response`` (returns a ``ResponseResult``); the rule functions (``target_response``,
``nontarget_response``, ``overall_response`` ...) of :mod:`analysis_utils.study.recist_rules`.

Documented choices of the engine (the rules' own are listed in recist_rules)
-----------------------------------------------------------------------------
* Baseline scan: the last assessment date in ``[index - baseline_window_days, index]``; if there is none,
  the first date in ``(index, index + grace_days_after_index]`` (default 7 days: imaging just after the first
  dose still shows untreated disease). Earlier scans are ignored and logged.
* Target selection is re-derived by the engine (largest first, at most 2 per organ and 5 in total); the site's
  ``lesion_type`` is used only to recognise new lesions ("new" at a follow-up visit).
* Nadir: the smallest sum over earlier visits (baseline included) at which all targets were measured.
* Best overall response (§1.6): time points up to and including the first PD. CR/PR unconfirmed by default.
  With ``confirm=True`` the confirming assessment is the first later assessment >= ``confirm_min_days`` later
  that is not NE (or the first PD if it comes sooner); none -> NE row of the table. CR followed by PR is read
  as PR ("first CR re-read as PR"). SD (and "non-CR/non-PD") counts only if assessed >= ``min_sd_days`` after
  index; otherwise it becomes PD if the next assessment is PD, else NE.
* Best % change of the target sum (waterfall): the minimum over visits up to first PD with all targets
  measured.
* Data problems are returned, never dropped silently: negative diameters are set to NaN (not measured);
  duplicate (study, date, lesion) rows keep the row with the largest ld_mm, then viable_ld_mm, then
  short_axis_mm (conservative for progression); missing rows of baseline lesions make them not measured;
  new lesions without any size are logged with what each criterion did; rows of lesions absent at baseline
  and not annotated "new" are ignored and logged; studies absent from ``index`` are excluded and logged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

import numpy as np
import pandas as pd

from analysis_utils.study.recist_rules import (
    BOR_RANK, CR, CRITERIA, EFFUSION, LD, LESION_TYPES, LIVER, MEASURE_COLUMNS, NE, NEW, NODE, NONE,
    NEVER_TARGET, NONTARGET_STATUSES, ORGANS, PD, PR, PROGRESSED, RANK_TO_CODE, RESOLVED, RESPONSES, SA, SD,
    UNASSESSED, VIABLE, apply_sd_minimum, apply_target_limits, check_criterion, confirm_responses,
    is_baseline_lesion, is_target_candidate, lesion_measure, measured_lesion_state, new_lesion_qualifies,
    nontarget_lesion_state, nontarget_response, overall_response, recover_mrecist_measurements, target_response,
)

__all__ = [
    "CRITERIA",
    "RESPONSES",
    "ResponseResult",
    "find_baseline",
    "select_targets",
    "timepoint_responses",
    "best_overall_response",
    "derive_response",
    "lesion_measure",
    "is_baseline_lesion",
    "is_target_candidate",
    "apply_target_limits",
    "recover_mrecist_measurements",
    "measured_lesion_state",
    "target_response",
    "nontarget_lesion_state",
    "nontarget_response",
    "new_lesion_qualifies",
    "overall_response",
    "apply_sd_minimum",
    "confirm_responses",
]

_NO_DAY: Final = np.iinfo(np.int64).min  # reads as NaT when cast to datetime64
_MAX_DAY: Final = np.iinfo(np.int64).max

LESION_COLUMNS: Final = (
    "study_id", "assessment_date", "lesion_id", "organ", "lesion_type", "ld_mm", "viable_ld_mm",
    "short_axis_mm", "arterial_enhancement", "nontarget_status", "cytology_confirmed",
)
DQ_COLUMNS: Final = ("study_id", "assessment_date", "lesion_id", "column", "rule", "action")

R_NO_INDEX: Final = "missing index_date"
R_NO_BASELINE: Final = "no baseline assessment within the baseline window"
R_NO_TARGET: Final = "no measurable target lesion at baseline"
R_NO_TARGET_UNRECORDED: Final = "no target lesion: a baseline diameter the criterion needs was not recorded"
R_NO_FOLLOW_UP: Final = "no post-baseline assessment"
R_ALL_NE: Final = "every post-baseline time point NE (a target not measured)"
R_EARLY_SD: Final = "SD (or non-CR/non-PD) only before min_sd_days, not followed by PD"
R_UNCONFIRMED: Final = "CR/PR not confirmed and SD minimum not met"
#: every reason a BOR can be NE, in the order they are checked
NE_REASONS: Final = (R_NO_INDEX, R_NO_BASELINE, R_NO_TARGET_UNRECORDED, R_NO_TARGET, R_NO_FOLLOW_UP, R_ALL_NE,
                     R_UNCONFIRMED, R_EARLY_SD)


@dataclass(frozen=True)
class ResponseResult:
    """Output of :func:`derive_response` for one criterion.

    timepoints: one row per study_id x visit (visit 0 = baseline; responses NA there).
    summary: one row per study_id of ``index`` (BOR, first PD date, last adequate assessment, ...).
    targets: one row per baseline lesion with its role (target / non_target / not_a_lesion).
    data_quality: columns study_id, assessment_date, lesion_id, column, rule, action.
    """

    criterion: str
    timepoints: pd.DataFrame
    summary: pd.DataFrame
    targets: pd.DataFrame
    data_quality: pd.DataFrame


# ----------------------------------------------------------------------------------------------------------
# Input preparation
# ----------------------------------------------------------------------------------------------------------

@dataclass
class _Prepared:
    """Validated lesion rows as numpy arrays, sorted by (lesion, day); patients are rows of ``index``."""

    study_ids: np.ndarray      # per patient
    anchor_day: np.ndarray     # per patient, index (or baseline) day; _NO_DAY when missing
    pid: np.ndarray            # per row
    lid: np.ndarray            # per row, compact (patient, lesion_id) id
    day: np.ndarray
    organ: np.ndarray
    ltype: np.ndarray
    status: np.ndarray         # -1 = NA
    meas: np.ndarray           # (n, 3): ld_mm, viable_ld_mm, short_axis_mm
    ae_true: np.ndarray
    ae_false: np.ndarray
    cyto_true: np.ndarray
    key: np.ndarray            # sorted, unique: lid * span + day - dmin
    lid_name: np.ndarray       # per lid: lesion_id
    lid_rank: np.ndarray       # per lid: lexicographic rank of lesion_id (tie-break)
    dmin: int
    span: int
    dq: list[pd.DataFrame]


def _to_days(values: pd.Series, name: str, allow_nat: bool) -> np.ndarray:
    try:
        dt = pd.to_datetime(values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"column {name!r} must hold dates: {err}") from err
    if isinstance(dt.dtype, pd.DatetimeTZDtype):
        dt = dt.dt.tz_convert(None)
    if not allow_nat and dt.isna().any():
        raise ValueError(f"column {name!r} has {int(dt.isna().sum())} missing date(s)")
    return dt.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)


def _days_to_datetime(days: np.ndarray) -> np.ndarray:
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[ns]")


def _codes(values: pd.Series, allowed: tuple[str, ...], name: str, allow_na: bool) -> np.ndarray:
    codes = pd.Categorical(values, categories=list(allowed)).codes.astype(np.int8)
    na = values.isna().to_numpy()
    bad = (codes < 0) & ~na
    if bad.any():
        shown = sorted(map(str, pd.unique(values[bad])))[:5]
        raise ValueError(f"column {name!r} has values outside {list(allowed)}: {shown}")
    if not allow_na and na.any():
        raise ValueError(f"column {name!r} has {int(na.sum())} missing value(s)")
    return codes


def _flags(values: pd.Series, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(is True, is False) masks of a boolean column that may hold NA."""
    try:
        b = values.astype("boolean")
    except (TypeError, ValueError) as err:
        raise ValueError(f"column {name!r} must be boolean (True/False/NA): {err}") from err
    return b.fillna(False).to_numpy(dtype=bool), (~b).fillna(False).to_numpy(dtype=bool)


def _numeric(values: pd.Series, name: str) -> np.ndarray:
    try:
        return pd.to_numeric(values).to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as err:
        raise ValueError(f"column {name!r} must be numeric (mm): {err}") from err


def _dq_frame(study_id: np.ndarray, day: np.ndarray, lesion_id: np.ndarray | None,
              column: str | np.ndarray, rule: str, action: str | np.ndarray) -> pd.DataFrame:
    n = len(study_id)
    return pd.DataFrame({
        "study_id": study_id,
        "assessment_date": _days_to_datetime(day),
        "lesion_id": lesion_id if lesion_id is not None else np.full(n, None, dtype=object),
        "column": np.broadcast_to(np.asarray(column, dtype=object), (n,)),
        "rule": rule,
        "action": np.broadcast_to(np.asarray(action, dtype=object), (n,)),
    })


def _check_index(index: pd.DataFrame, date_col: str) -> pd.Index:
    if not isinstance(index, pd.DataFrame):
        raise ValueError("index must be a pandas DataFrame")
    missing = [c for c in ("study_id", date_col) if c not in index.columns]
    if missing:
        raise ValueError(f"index table is missing column(s) {missing}")
    ids = pd.Index(index["study_id"])
    if ids.hasnans:
        raise ValueError("index column 'study_id' has missing values")
    if ids.has_duplicates:
        raise ValueError(f"index column 'study_id' has duplicates, e.g. {ids[ids.duplicated()][:3].tolist()}")
    return ids


def _prepare(lesions: pd.DataFrame, study_ids: pd.Index, anchor: pd.Series) -> _Prepared:
    """Validate the lesion table, map it to patients of ``study_ids``, log and fix data problems."""
    if not isinstance(lesions, pd.DataFrame):
        raise ValueError("lesions must be a pandas DataFrame")
    missing = [c for c in LESION_COLUMNS if c not in lesions.columns]
    if missing:
        raise ValueError(f"lesion table is missing column(s) {missing}")
    for col in ("study_id", "lesion_id"):
        if lesions[col].isna().any():
            raise ValueError(f"column {col!r} has {int(lesions[col].isna().sum())} missing value(s)")
    anchor_day = _to_days(anchor, "index_date", allow_nat=True)
    anchor_day = np.where(pd.isna(anchor).to_numpy(), _NO_DAY, anchor_day)
    dq: list[pd.DataFrame] = []

    pid_all = study_ids.get_indexer(lesions["study_id"])
    outside = pid_all < 0
    if outside.all() and len(lesions) and len(study_ids):
        raise ValueError("no study_id of the lesion table is in the index table (check both id columns' types)")
    day_all = _to_days(lesions["assessment_date"], "assessment_date", allow_nat=False)
    if outside.any():
        ids = np.asarray(lesions["study_id"], dtype=object)[outside]
        uniq, first = np.unique(ids.astype(str), return_index=True)
        dq.append(_dq_frame(ids[first], np.full(len(uniq), _NO_DAY), None, "study_id", "study_not_in_index",
                            "all rows of this study_id excluded (no index_date)"))
    lz = lesions.loc[~outside] if outside.any() else lesions
    pid = pid_all[~outside]
    day = day_all[~outside]

    organ = _codes(lz["organ"], ORGANS, "organ", allow_na=False)
    ltype = _codes(lz["lesion_type"], LESION_TYPES, "lesion_type", allow_na=False)
    status = _codes(lz["nontarget_status"], NONTARGET_STATUSES, "nontarget_status", allow_na=True)
    meas = np.column_stack([_numeric(lz[c], c) for c in MEASURE_COLUMNS]) if len(lz) else np.empty((0, 3))
    ae_true, ae_false = _flags(lz["arterial_enhancement"], "arterial_enhancement")
    cyto_true, _ = _flags(lz["cytology_confirmed"], "cytology_confirmed")

    lcode, lnames = pd.factorize(lz["lesion_id"], sort=True)
    pair = pid.astype(np.int64) * max(len(lnames), 1) + lcode
    lid, lid_pair = pd.factorize(pair)
    lid_lcode = np.asarray(lid_pair) % max(len(lnames), 1)
    lid_name = np.asarray(lnames, dtype=object)[lid_lcode]
    dmin = int(day.min()) if len(day) else 0
    span = int(day.max()) - dmin + 2 if len(day) else 2

    for j, col in enumerate(MEASURE_COLUMNS):
        neg = meas[:, j] < 0
        if neg.any():
            dq.append(_dq_frame(study_ids.to_numpy()[pid[neg]], day[neg], lid_name[lid[neg]], col,
                                "negative_diameter", "set to NaN (not measured)"))
            meas[neg, j] = np.nan

    key = lid.astype(np.int64) * span + (day - dmin)
    order = np.argsort(key, kind="stable")
    dup = np.zeros(len(key), dtype=bool)
    dup[1:] = key[order][1:] == key[order][:-1]
    if dup.any():  # re-sort so that the preferred row (largest diameters) comes first in its group
        neg_fill = np.where(np.isnan(meas), np.inf, -meas)
        order = np.lexsort((np.arange(len(key)), neg_fill[:, 2], neg_fill[:, 1], neg_fill[:, 0], key))
        d = order[dup]
        dq.append(_dq_frame(study_ids.to_numpy()[pid[d]], day[d], lid_name[lid[d]], "lesion_id",
                            "duplicate_lesion_assessment",
                            "row dropped; kept the row with the largest ld_mm, viable_ld_mm, short_axis_mm"))
    keep = order[~dup]
    return _Prepared(
        study_ids=study_ids.to_numpy(dtype=object), anchor_day=anchor_day,
        pid=pid[keep], lid=lid[keep], day=day[keep], organ=organ[keep], ltype=ltype[keep],
        status=status[keep], meas=meas[keep], ae_true=ae_true[keep], ae_false=ae_false[keep],
        cyto_true=cyto_true[keep], key=key[keep], lid_name=lid_name, lid_rank=lid_lcode,
        dmin=dmin, span=span, dq=dq,
    )


# ----------------------------------------------------------------------------------------------------------
# Baseline and visits
# ----------------------------------------------------------------------------------------------------------

@dataclass
class _Visits:
    pid: np.ndarray          # per visit (unique patient x day), sorted
    day: np.ndarray
    row_visit: np.ndarray    # per lesion row: its visit
    baseline_day: np.ndarray  # per patient (_NO_DAY: none)
    after_index: np.ndarray  # per patient: baseline taken from the post-index grace window


def _baseline_visits(prep: _Prepared, window: int, grace: int) -> _Visits:
    """Baseline = last scan in [index - window, index], else first in (index, index + grace]."""
    if window < 0 or grace < 0:
        raise ValueError("baseline_window_days and grace_days_after_index must be >= 0")
    n_pat = len(prep.study_ids)
    vkey = prep.pid.astype(np.int64) * prep.span + (prep.day - prep.dmin)
    uniq, row_visit = np.unique(vkey, return_inverse=True)
    v_pid = uniq // prep.span
    v_day = uniq % prep.span + prep.dmin
    idx = prep.anchor_day[v_pid]
    valid = idx != _NO_DAY
    idx = np.where(valid, idx, 0)
    pre = valid & (v_day <= idx) & (v_day >= idx - window)
    post = valid & (v_day > idx) & (v_day <= idx + grace)
    base = np.full(n_pat, _NO_DAY)
    np.maximum.at(base, v_pid[pre], v_day[pre])
    post_day = np.full(n_pat, _MAX_DAY)
    np.minimum.at(post_day, v_pid[post], v_day[post])
    after = (base == _NO_DAY) & (post_day != _MAX_DAY)
    base = np.where(after, post_day, base)
    return _Visits(v_pid, v_day, row_visit.reshape(-1), base, after)


def _cross(item_pid: np.ndarray, first: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (item, visit row) pairs of each item with its patient's visits (visits contiguous per patient)."""
    n = count[item_pid]
    item = np.repeat(np.arange(len(item_pid)), n)
    offset = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    return item, np.repeat(first[item_pid], n) + offset


def _lookup(keys: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row position of each query key in the sorted unique ``keys`` and whether it was found."""
    if len(keys) == 0:
        return np.zeros(len(query), dtype=np.int64), np.zeros(len(query), dtype=bool)
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return pos, keys[pos] == query


def _group_cumsum(values: np.ndarray, first: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Inclusive cumulative sum of ``values`` within contiguous groups (``first`` = group start rows)."""
    c = np.cumsum(values)
    start = first[group]
    return c - c[start] + values[start]


def _baseline_roles(prep: _Prepared, rows: np.ndarray, criterion: str) -> dict[str, np.ndarray]:
    """Role of each baseline row: target / non-target / not a lesion, with the criterion's size."""
    organ, meas = prep.organ[rows], prep.meas[rows]
    kind = lesion_measure(organ, criterion)
    size = meas[np.arange(len(rows)), kind]
    lesion = is_baseline_lesion(organ, meas[:, SA], prep.cyto_true[rows], criterion)
    candidate = lesion & is_target_candidate(organ, meas[:, LD], meas[:, VIABLE], meas[:, SA],
                                             prep.ae_true[rows], criterion)
    lid = prep.lid[rows]
    target = apply_target_limits(prep.pid[rows], organ, size, prep.lid_rank[lid], candidate)
    # measurability unknown: the diameter the criterion needs is not recorded (bone lesions are often not
    # measured at all and never-target sites have no diameter, so neither counts)
    unrecorded = (lesion & ~candidate & np.isnan(size) & ~NEVER_TARGET[organ]
                  & (organ != ORGANS.index("bone")))
    return {"rows": rows, "kind": kind, "size": size, "lesion": lesion, "candidate": candidate,
            "target": target, "nontarget": lesion & ~target, "unrecorded": unrecorded}


def _roles_frame(prep: _Prepared, roles: dict[str, np.ndarray], criterion: str) -> pd.DataFrame:
    rows = roles["rows"]
    role = np.where(roles["target"], "target", np.where(roles["nontarget"], "non_target", "not_a_lesion"))
    out = pd.DataFrame({
        "study_id": prep.study_ids[prep.pid[rows]],
        "criterion": criterion,
        "baseline_date": _days_to_datetime(prep.day[rows]),
        "lesion_id": prep.lid_name[prep.lid[rows]],
        "organ": np.asarray(ORGANS, dtype=object)[prep.organ[rows]],
        "role": role,
        "measurable": roles["candidate"],
        "measure": np.asarray(MEASURE_COLUMNS, dtype=object)[roles["kind"]],
        "baseline_mm": roles["size"],
    })
    return out.sort_values(["study_id", "lesion_id"], kind="stable", ignore_index=True)


def _for_criterion(prep: _Prepared, criterion: str) -> tuple[_Prepared, list[pd.DataFrame]]:
    """The prepared rows as the criterion reads them: under mRECIST, liver rows completed by
    ``recover_mrecist_measurements`` (each completed row logged); RECIST reads the rows as recorded."""
    if criterion != "mrecist" or not len(prep.pid):
        return prep, []
    viable, ae_true, enhancing, no_viable = recover_mrecist_measurements(
        prep.organ, prep.meas[:, LD], prep.meas[:, VIABLE], prep.ae_true, prep.ae_false)
    meas = prep.meas.copy()
    meas[:, VIABLE] = viable
    sid = prep.study_ids
    dq = []
    for mask, column, rule, action in (
            (enhancing, "arterial_enhancement", "mrecist_enhancement_from_viable_diameter",
             "mRECIST: arterial enhancement not recorded, read as present (viable diameter > 0) at this and "
             "every later such row of the lesion"),
            (no_viable, "viable_ld_mm", "mrecist_viable_zero_without_enhancement",
             "mRECIST: viable diameter not recorded, read as 0 (no arterial enhancement, or LD 0 mm) at this and "
             "every later such row of the lesion")):
        if mask.any():  # one entry per lesion, at its first such row (rows are sorted by lesion and day)
            r = np.flatnonzero(mask)
            r = r[np.unique(prep.lid[r], return_index=True)[1]]
            dq.append(_dq_frame(sid[prep.pid[r]], prep.day[r], prep.lid_name[prep.lid[r]], column, rule, action))
    return replace(prep, meas=meas, ae_true=ae_true), dq


# ----------------------------------------------------------------------------------------------------------
# Time points
# ----------------------------------------------------------------------------------------------------------

def _derive_timepoints(prep: _Prepared, criterion: str, window: int,
                       grace: int) -> tuple[pd.DataFrame, pd.DataFrame, list[pd.DataFrame]]:
    prep, completed = _for_criterion(prep, criterion)
    dq = list(prep.dq) + completed
    sid = prep.study_ids
    n_pat = len(sid)
    vis = _baseline_visits(prep, window, grace)
    has_base = vis.baseline_day != _NO_DAY
    vbase = vis.baseline_day[vis.pid]
    in_tp = has_base[vis.pid] & (vis.day >= vbase)
    before = has_base[vis.pid] & (vis.day < vbase)
    if before.any():
        dq.append(_dq_frame(sid[vis.pid[before]], vis.day[before], None, "assessment_date",
                            "assessment_before_baseline",
                            "visit ignored: earlier than the baseline scan (superseded or outside the window)"))

    tp_v = np.flatnonzero(in_tp)
    n_tp = len(tp_v)
    tp_pid, tp_day = vis.pid[tp_v], vis.day[tp_v]
    tp_count = np.bincount(tp_pid, minlength=n_pat)
    tp_first = np.cumsum(tp_count) - tp_count
    visit_no = np.arange(n_tp) - tp_first[tp_pid]
    v2tp = np.full(len(vis.pid), -1)
    v2tp[tp_v] = np.arange(n_tp)
    row_tp = v2tp[vis.row_visit]
    row_vno = np.where(row_tp >= 0, visit_no[np.maximum(row_tp, 0)], -1) if n_tp else np.full(len(row_tp), -1)
    base_rows = np.flatnonzero(row_vno == 0)
    fu_row = row_vno > 0

    roles = _baseline_roles(prep, base_rows, criterion)
    new_at_base = base_rows[prep.ltype[base_rows] == NEW]
    if len(new_at_base):
        dq.append(_dq_frame(sid[prep.pid[new_at_base]], prep.day[new_at_base], prep.lid_name[prep.lid[new_at_base]],
                            "lesion_type", "new_lesion_at_baseline",
                            "treated as a baseline lesion (the engine selects targets itself)"))
    n_lid = len(prep.lid_name)
    at_base = np.zeros(n_lid, dtype=bool)
    at_base[prep.lid[base_rows]] = True

    # ---- targets: sum of diameters per visit (§1.2, §2.1) ----
    t_rows = base_rows[roles["target"]]
    t_pid, t_lid, t_kind = prep.pid[t_rows], prep.lid[t_rows], roles["kind"][roles["target"]]
    t_node = prep.organ[t_rows] == NODE
    n_targets = np.bincount(t_pid, minlength=n_pat)
    item, vrow = _cross(t_pid, tp_first, tp_count)
    pos, found = _lookup(prep.key, t_lid[item].astype(np.int64) * prep.span + (tp_day[vrow] - prep.dmin))
    val = np.where(found, prep.meas[pos, t_kind[item]], np.nan)
    measured = ~np.isnan(val)
    cr_ok = measured & np.where(t_node[item], val < 10.0, val == 0.0)
    gone = ~found & (visit_no[vrow] > 0)
    if gone.any():
        dq.append(_dq_frame(sid[t_pid[item[gone]]], tp_day[vrow[gone]], prep.lid_name[t_lid[item[gone]]],
                            np.asarray(MEASURE_COLUMNS, dtype=object)[t_kind[item[gone]]],
                            "target_missing_at_visit",
                            "target not measured at this visit: target response NE unless the measured "
                            "targets already meet PD"))
    sum_mm = np.bincount(vrow, weights=np.where(measured, val, 0.0), minlength=n_tp)
    n_measured = np.bincount(vrow, weights=measured, minlength=n_tp).astype(np.int64)
    n_cr = np.bincount(vrow, weights=cr_ok, minlength=n_tp).astype(np.int64)
    nt_visit = n_targets[tp_pid]
    has_t = nt_visit > 0
    n_missing = nt_visit - n_measured
    complete_sum = np.where(has_t & (n_missing == 0), sum_mm, np.nan)
    baseline_sum = np.where(has_t, sum_mm[tp_first[tp_pid]] if n_tp else sum_mm, np.nan)
    nadir = (pd.Series(complete_sum).groupby(tp_pid).cummin().groupby(tp_pid).ffill()
             .groupby(tp_pid).shift(1).to_numpy(dtype=np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        t_resp = target_response(sum_mm, n_missing, baseline_sum, nadir, n_cr == nt_visit, criterion)
        pct_base = (complete_sum - baseline_sum) / baseline_sum * 100.0
        pct_nadir = np.where(nadir > 0, (complete_sum - nadir) / nadir * 100.0, np.nan)
    t_resp = np.where(has_t, t_resp, NONE)

    # ---- non-targets (§1.4, §2.3) ----
    nt_rows = base_rows[roles["nontarget"]]
    n_pid, n_lid_ = prep.pid[nt_rows], prep.lid[nt_rows]
    n_nontargets = np.bincount(n_pid, minlength=n_pat)
    item, vrow = _cross(n_pid, tp_first, tp_count)
    pos, found = _lookup(prep.key, n_lid_[item].astype(np.int64) * prep.span + (tp_day[vrow] - prep.dmin))
    status = np.where(found, prep.status[pos], -1)
    state = nontarget_lesion_state(found, status, prep.organ[nt_rows][item], prep.meas[pos, SA],
                                   prep.meas[pos, VIABLE], prep.ae_false[pos], criterion, ld_mm=prep.meas[pos, LD],
                                   arterial_true=prep.ae_true[pos])
    read = found & (status < 0) & (visit_no[vrow] > 0)
    if read.any():  # one entry per lesion: its first follow-up visit without a status
        r = np.flatnonzero(read)
        r = r[np.unique(n_lid_[item[r]], return_index=True)[1]]
        dq.append(_dq_frame(sid[n_pid[item[r]]], tp_day[vrow[r]], prep.lid_name[n_lid_[item[r]]],
                            "nontarget_status", "nontarget_status_from_measurements",
                            f"{criterion}: non-target without a status, read from its diameters at every such visit "
                            "(0 mm / no viable tissue = resolved, a measured size = present, none = not assessed)"))
    gone = ~found & (visit_no[vrow] > 0)
    if gone.any():
        dq.append(_dq_frame(sid[n_pid[item[gone]]], tp_day[vrow[gone]], prep.lid_name[n_lid_[item[gone]]],
                            "nontarget_status", "nontarget_missing_at_visit",
                            "non-target treated as not assessed (non-target response NE unless PD)"))
    nt_resp = nontarget_response(
        n_nontargets[tp_pid],
        np.bincount(vrow, weights=state == PROGRESSED, minlength=n_tp),
        np.bincount(vrow, weights=state == UNASSESSED, minlength=n_tp),
        np.bincount(vrow, weights=state == RESOLVED, minlength=n_tp),
    )

    # ---- new lesions (§1.4, §2.4) ----
    new_row = fu_row & (prep.ltype == NEW)
    first_new = np.full(n_lid, _MAX_DAY)
    np.minimum.at(first_new, prep.lid[new_row], prep.day[new_row])
    is_new_lid = first_new != _MAX_DAY
    nl = np.flatnonzero(fu_row & is_new_lid[prep.lid] & (prep.day >= first_new[prep.lid]))  # sorted by lid, day
    size = np.fmax(prep.meas[nl, LD], prep.meas[nl, VIABLE])
    g = pd.DataFrame({
        "lid": prep.lid[nl], "organ": prep.organ[nl], "tp": row_tp[nl], "size": size,
        "typical": (size >= 10.0) & prep.ae_true[nl], "sa": prep.meas[nl, SA], "cyto": prep.cyto_true[nl],
    }).groupby("lid", sort=False)
    agg = g.agg(organ=("organ", "first"), tp=("tp", "first"), first_size=("size", "first"),
                max_size=("size", "max"), typical=("typical", "any"), sa=("sa", "max"), cyto=("cyto", "any"))
    qualifies = new_lesion_qualifies(agg["organ"].to_numpy(), agg["first_size"].to_numpy(dtype=float),
                                     agg["max_size"].to_numpy(dtype=float), agg["typical"].to_numpy(dtype=bool),
                                     agg["sa"].to_numpy(dtype=float), agg["cyto"].to_numpy(dtype=bool), criterion)
    new_first = np.bincount(agg["tp"].to_numpy()[qualifies].astype(np.int64), minlength=n_tp) > 0
    new_flag = _group_cumsum(new_first.astype(np.int64), tp_first, tp_pid) > 0 if n_tp else new_first

    no_size = new_row & np.isnan(prep.meas).all(axis=1) & ~EFFUSION[prep.organ]
    if no_size.any():
        r = np.flatnonzero(no_size)
        counted = "counted as a new lesion (PD at first appearance; size not needed)"
        if criterion == "mrecist":
            waits = (prep.organ[r] == LIVER) | (prep.organ[r] == NODE)
            action = np.where(waits, "not counted as PD unless a later scan of this lesion qualifies (mRECIST "
                                     "size rule)", counted)
        else:
            action = counted
        dq.append(_dq_frame(sid[prep.pid[r]], prep.day[r], prep.lid_name[prep.lid[r]], "ld_mm",
                            "new_lesion_without_size", action))
    stray = fu_row & ~at_base[prep.lid] & ~(is_new_lid[prep.lid] & (prep.day >= first_new[prep.lid]))
    if stray.any():
        r = np.flatnonzero(stray)
        dq.append(_dq_frame(sid[prep.pid[r]], prep.day[r], prep.lid_name[prep.lid[r]], "lesion_type",
                            "lesion_not_at_baseline",
                            "row ignored: lesion absent from the baseline scan and not annotated 'new'"))

    # ---- overall (§1.5) ----
    overall = overall_response(t_resp, nt_resp, new_flag)
    is_base = visit_no == 0
    labels = list(RESPONSES)

    def cat(codes: np.ndarray) -> pd.Categorical:
        return pd.Categorical.from_codes(np.where(is_base, -1, codes), categories=labels)

    n_unrecorded = np.bincount(prep.pid[base_rows[roles["unrecorded"]]], minlength=n_pat)
    tp = pd.DataFrame({
        "study_id": sid[tp_pid],
        "criterion": criterion,
        "assessment_date": _days_to_datetime(tp_day),
        "visit": visit_no,
        "days_from_index": tp_day - prep.anchor_day[tp_pid] if n_tp else tp_day,
        "n_targets": nt_visit,
        "n_unrecorded_baseline": np.where(is_base, n_unrecorded[tp_pid], 0),
        "n_targets_measured": n_measured,
        "sum_mm": np.where(has_t, sum_mm, np.nan),
        "baseline_sum_mm": baseline_sum,
        "nadir_mm": nadir,
        "pct_change_baseline": pct_base,
        "pct_change_nadir": pct_nadir,
        "target_response": cat(t_resp),
        "nontarget_response": cat(nt_resp),
        "new_lesion": np.where(is_base, False, new_flag),
        "overall_response": cat(overall),
    })
    return tp, _roles_frame(prep, roles, criterion), dq


def _dq_concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c == "assessment_date" else object)
                             for c in DQ_COLUMNS})
    return pd.concat(parts, ignore_index=True)


# ----------------------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------------------

def find_baseline(lesions: pd.DataFrame, index: pd.DataFrame, baseline_window_days: int = 42,
                  grace_days_after_index: int = 7) -> pd.DataFrame:
    """Baseline scan per patient: the last assessment in [index - window, index]; if none, the first one in
    (index, index + grace]. Columns study_id, index_date, baseline_date (NaT if none), baseline_after_index."""
    ids = _check_index(index, "index_date")
    prep = _prepare(lesions, ids, index["index_date"])
    vis = _baseline_visits(prep, baseline_window_days, grace_days_after_index)
    return pd.DataFrame({
        "study_id": prep.study_ids,
        "index_date": _days_to_datetime(prep.anchor_day),
        "baseline_date": _days_to_datetime(vis.baseline_day),
        "baseline_after_index": vis.after_index,
    })


def select_targets(lesions: pd.DataFrame, baseline: pd.DataFrame, criterion: str) -> pd.DataFrame:
    """Baseline lesion roles for one criterion (RECIST §1.1-1.2; mRECIST §2.1, §2.4).

    ``baseline``: study_id, baseline_date (e.g. from :func:`find_baseline`). Returns one row per lesion
    recorded on the baseline date: study_id, criterion, baseline_date, lesion_id, organ,
    role (target / non_target / not_a_lesion), measurable, measure (column used), baseline_mm.
    Data-quality fixes (negative -> NaN, duplicates) are applied; see :func:`derive_response` for the log.
    """
    check_criterion(criterion)
    ids = _check_index(baseline, "baseline_date")
    prep = _prepare(lesions, ids, baseline["baseline_date"])
    rows = np.flatnonzero((prep.anchor_day[prep.pid] != _NO_DAY) & (prep.day == prep.anchor_day[prep.pid]))
    return _roles_frame(prep, _baseline_roles(prep, rows, criterion), criterion)


def timepoint_responses(lesions: pd.DataFrame, index: pd.DataFrame, criterion: str, *,
                        baseline_window_days: int = 42, grace_days_after_index: int = 7) -> pd.DataFrame:
    """Per study_id x visit table (visit 0 = baseline): sums, % changes, target / non-target / new-lesion and
    overall responses (RECIST §1.3-1.5; mRECIST §2.2-2.4). See :func:`derive_response` for the DQ log."""
    check_criterion(criterion)
    ids = _check_index(index, "index_date")
    prep = _prepare(lesions, ids, index["index_date"])
    return _derive_timepoints(prep, criterion, baseline_window_days, grace_days_after_index)[0]


TIMEPOINT_COLUMNS: Final = ("study_id", "assessment_date", "visit", "days_from_index", "n_targets",
                            "pct_change_baseline", "overall_response")


def best_overall_response(timepoints: pd.DataFrame, index: pd.DataFrame, confirm: bool = False,
                          min_sd_days: int = 42, confirm_min_days: int = 28) -> pd.DataFrame:
    """Per-patient best overall response and PFS dates (RECIST §1.6; mRECIST uses the same rules).

    Uses time points up to and including the first overall PD. ``confirm``: apply the confirmation table
    (CR/PR seen again >= ``confirm_min_days`` later); ``min_sd_days``: SD minimum duration from index.
    One row per study_id of ``index``: criterion, index_date, baseline_date, n_targets, baseline_sum_mm,
    n_post_baseline, bor, bor_reason (why NE), first_pd_date, last_adequate_date (last non-NE time point up to
    and including first PD), best_pct_change (min % change of the target sum from baseline up to first PD).
    """
    if min_sd_days < 0 or confirm_min_days < 0:
        raise ValueError("min_sd_days and confirm_min_days must be >= 0")
    ids = _check_index(index, "index_date")
    missing = [c for c in TIMEPOINT_COLUMNS if c not in timepoints.columns]
    if missing:
        raise ValueError(f"timepoints table is missing column(s) {missing}")
    n_pat = len(ids)
    p_all = ids.get_indexer(timepoints["study_id"])
    if (p_all < 0).any():
        raise ValueError("timepoints contain study_id values absent from index")
    day_all = _to_days(timepoints["assessment_date"], "assessment_date", allow_nat=False)
    order = np.lexsort((day_all, p_all))
    tp = timepoints.iloc[order]
    p_all, day_all = p_all[order], day_all[order]
    visit = tp["visit"].to_numpy()
    base = visit == 0
    fu = ~base

    baseline_day = np.full(n_pat, _NO_DAY)
    baseline_day[p_all[base]] = day_all[base]
    n_targets = np.zeros(n_pat, dtype=np.int64)
    n_targets[p_all[base]] = tp["n_targets"].to_numpy()[base]
    base_sum = np.full(n_pat, np.nan)
    if "baseline_sum_mm" in tp.columns:
        base_sum[p_all[base]] = tp["baseline_sum_mm"].to_numpy(dtype=float)[base]
    n_unrecorded = np.zeros(n_pat, dtype=np.int64)
    if "n_unrecorded_baseline" in tp.columns:
        n_unrecorded[p_all[base]] = tp["n_unrecorded_baseline"].to_numpy()[base]

    p, day = p_all[fu], day_all[fu]
    resp = pd.Categorical(tp["overall_response"].to_numpy()[fu], categories=list(RESPONSES)).codes.astype(np.int64)
    resp = np.where(resp < 0, NE, resp)
    days_idx = tp["days_from_index"].to_numpy(dtype=float)[fu]
    pct = tp["pct_change_baseline"].to_numpy(dtype=float)[fu]
    n_fu = np.bincount(p, minlength=n_pat)
    first = np.cumsum(n_fu) - n_fu
    is_pd = (resp == PD).astype(np.int64)
    in_win = (_group_cumsum(is_pd, first, p) - is_pd) == 0 if len(p) else np.zeros(0, dtype=bool)

    w = np.flatnonzero(in_win)
    wp, wday, wresp = p[w], day[w], resp[w]
    same_next = np.zeros(len(w), dtype=bool)
    same_next[:-1] = wp[1:] == wp[:-1]
    next_resp = np.full(len(w), -1)
    next_resp[:-1] = np.where(same_next[:-1], wresp[1:], -1)
    sd_ok = days_idx[w] >= min_sd_days
    adj = apply_sd_minimum(wresp, sd_ok, next_resp)
    if confirm and len(w):
        has_pd = np.zeros(n_pat, dtype=bool)
        has_pd[wp[wresp == PD]] = True
        ev = np.flatnonzero(wresp != NE)
        dmin = int(wday.min())
        span = int(wday.max()) - dmin + confirm_min_days + 2
        ev_key = wp[ev].astype(np.int64) * span + (wday[ev] - dmin)
        q = wp.astype(np.int64) * span + (wday - dmin + confirm_min_days)
        k = np.searchsorted(ev_key, q)
        k_c = np.minimum(k, max(len(ev) - 1, 0))
        hit = (k < len(ev)) & (wp[ev[k_c]] == wp) if len(ev) else np.zeros(len(w), dtype=bool)
        subsequent = np.where(hit, wresp[ev[k_c]] if len(ev) else NE,
                              np.where(has_pd[wp] & (wresp != PD), PD, NE))
        adj = np.where((wresp == CR) | (wresp == PR), confirm_responses(wresp, subsequent, sd_ok), adj)

    best_rank = np.full(n_pat, -1)
    np.maximum.at(best_rank, wp, BOR_RANK[adj])
    bor = np.where(best_rank >= 0, RANK_TO_CODE[np.maximum(best_rank, 0)], NE)
    first_pd = np.full(n_pat, _MAX_DAY)
    np.minimum.at(first_pd, p[resp == PD], day[resp == PD])
    first_pd = np.where(first_pd == _MAX_DAY, _NO_DAY, first_pd)
    adequate = (wresp != NE) & (wresp != NONE)
    last_ok = np.full(n_pat, _NO_DAY)
    np.maximum.at(last_ok, wp[adequate], wday[adequate])
    best_pct = np.full(n_pat, np.nan)
    np.fmin.at(best_pct, wp, pct[w])

    index_day = _to_days(index["index_date"], "index_date", allow_nat=True)
    index_missing = index["index_date"].isna().to_numpy()
    no_base = baseline_day == _NO_DAY
    any_assessed = np.zeros(n_pat, dtype=bool)
    any_assessed[wp[wresp != NE]] = True
    any_response = np.zeros(n_pat, dtype=bool)
    any_response[wp[(wresp == CR) | (wresp == PR)]] = True
    reason = np.select(
        [index_missing, no_base, (n_targets == 0) & (n_unrecorded > 0), n_targets == 0, n_fu == 0,
         bor != NE, ~any_assessed, any_response & confirm],
        [R_NO_INDEX, R_NO_BASELINE, R_NO_TARGET_UNRECORDED, R_NO_TARGET, R_NO_FOLLOW_UP, "", R_ALL_NE,
         R_UNCONFIRMED], R_EARLY_SD,
    ).astype(object)
    bor = np.where(reason != "", NE, bor)
    reason[reason == ""] = None
    crit = timepoints["criterion"].iloc[0] if ("criterion" in timepoints.columns and len(timepoints)) else None
    return pd.DataFrame({
        "study_id": ids.to_numpy(dtype=object),
        "criterion": crit,
        "index_date": _days_to_datetime(np.where(index_missing, _NO_DAY, index_day)),
        "baseline_date": _days_to_datetime(baseline_day),
        "n_targets": n_targets,
        "baseline_sum_mm": base_sum,
        "n_post_baseline": n_fu,
        "bor": pd.Categorical(np.asarray(RESPONSES, dtype=object)[bor], categories=["CR", "PR", "SD", "PD", "NE"]),
        "bor_reason": reason,
        "first_pd_date": _days_to_datetime(first_pd),
        "last_adequate_date": _days_to_datetime(last_ok),
        "best_pct_change": best_pct,
    })


def derive_response(lesions: pd.DataFrame, index: pd.DataFrame, criterion: str, *, confirm: bool = False,
                    min_sd_days: int = 42, confirm_min_days: int = 28, baseline_window_days: int = 42,
                    grace_days_after_index: int = 7) -> ResponseResult:
    """Full derivation for one criterion ("recist" = RECIST 1.1 §1, "mrecist" = mRECIST §2).

    Returns a :class:`ResponseResult` with time points, per-patient summary (BOR, first PD date, last adequate
    assessment, best % change, number of post-baseline assessments), baseline lesion roles and the
    data-quality log. Patients without a measurable target get BOR "NE" with ``bor_reason``.
    """
    check_criterion(criterion)
    ids = _check_index(index, "index_date")
    prep = _prepare(lesions, ids, index["index_date"])
    tp, roles, dq = _derive_timepoints(prep, criterion, baseline_window_days, grace_days_after_index)
    summary = best_overall_response(tp, index, confirm=confirm, min_sd_days=min_sd_days,
                                    confirm_min_days=confirm_min_days)
    summary["criterion"] = criterion
    return ResponseResult(criterion, tp, summary, roles, _dq_concat(dq))
