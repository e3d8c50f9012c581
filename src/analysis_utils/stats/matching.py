"""Greedy nearest-neighbour matching with MatchIt 4.x ``method = "nearest"`` semantics, ATT (treated units are
matched, controls are the pool).

Definitions reproduced (read from MatchIt's own source: ``matchit2nearest.R``, ``input_processing.R``, C++
``nn_matchC_vec`` and ``find_control_vec``); method page: docs/methods/matching-and-weighting.md (MatchIt nearest:
caliper, order, ties, k:1).

- Distance as given. With ``link = "linear.logit"`` MatchIt matches on the linear predictor; pass the logit of
  the propensity score here to get that (the usual "0.2 SD of the logit" caliper, Austin 2011).
- Caliper (``process.caliper`` in ``input_processing.R``): with ``std.caliper = TRUE`` the width is
  ``caliper * sd(distance[!discarded])``: R's ``sd`` (denominator n - 1) over all non-discarded units, treated
  and control pooled (not per stratum). A control is acceptable when ``|d_t - d_c| <= width``.
- ``discard`` (``discard()``): ``"both"`` drops units outside the intersection of the treated and control
  distance ranges, ``"control"`` controls outside the treated range, ``"treated"`` treated outside the control
  range. Discarded units are never matched but still take their place in the sorted order.
- Order (``m.order``): ``"largest"`` = ``order(d[treat == 1], decreasing = TRUE)``, ``"smallest"`` increasing,
  ``"data"`` data order (R's ``order`` is stable, so ties keep data order); ``"random"`` is a permutation drawn
  from ``numpy.random.default_rng(seed)`` (R's ``sample.int`` stream cannot be reproduced).
- k:1 without replacement is done in rounds: every treated unit gets its 1st control (in ``m.order``), then
  every treated unit still matched gets its 2nd, ... (``for r in 1..ratio: for t in ord``). A treated unit that
  finds no control in a round gets no further controls.
- Which control: all units are sorted by distance (stable, ties in data order). From the treated unit's
  position (in round r > 1, from the outermost positions of the controls it already has) MatchIt scans
  outwards taking one step left, one step right, alternately; the first available control on each side is a
  candidate if within the caliper. The nearer candidate wins; on an exact distance tie the one reached first
  wins, i.e. the left one when its offset (in positions, counting every unit) is <= the right one's.
- With replacement (and, as in MatchIt, when the sample or an exact stratum holds a single treated unit, since
  then reuse.max >= n_treated), each treated unit takes its k nearest available controls at once: up to k
  candidates are collected on each side in scan order (a side stops at the caliper, or at a candidate farther
  than k already collected), then the k closest are taken with ``std::partial_sort`` (emulated step by step
  from libstdc++ so that exact ties resolve as MatchIt built with g++ resolves them).
- Exact matching: each exact stratum is matched separately, as ``matchit2nearest.R`` does (one C++ call per
  stratum), so the positions that break ties are counted within the stratum. (MatchIt's development C++, which
  scans the strata inside one call, counts them in the whole sample; the two differ only on exact ties.)
- Weights (``weights_matrixC`` then ``normalize = TRUE``): a matched treated unit gets 1; a control gets the sum,
  over the treated units it is matched to, of 1 / (number of controls matched to that treated unit). Nonzero
  weights are then divided by their mean within each treatment group. Subclass (pair) ids are given only
  without replacement, numbered 1, 2, ... in the treated units' data order.

Scale: matching never forms an n_treated x n_control matrix. Controls are kept sorted; used controls are skipped
with two "next available" union-find pointer arrays (left and right), so each search is amortised near O(1) and
the whole match is O(n log n). ``_match_nearest_naive`` is the brute-force all-pairs reference used by the tests
and the benchmark.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = ["MatchResult", "match_nearest", "M_ORDERS", "DISCARDS"]

M_ORDERS = ("largest", "smallest", "random", "data")
DISCARDS = ("none", "both", "control", "treated")


@dataclass
class MatchResult:
    """Output of ``match_nearest`` (indices are 0-based positions in the input vectors).

    ``match_matrix[i, j]`` is the j-th control matched to treated unit ``treated_index[i]`` (-1 = none), the
    order being the order matched. ``subclass`` is the pair id (1, 2, ...) per unit, -1 if unmatched or when
    matching with replacement. ``unmatched`` lists every unit with weight 0 and the reason."""

    treat: np.ndarray
    distance: np.ndarray
    treated_index: np.ndarray
    match_matrix: np.ndarray
    n_controls: np.ndarray
    subclass: np.ndarray
    weights: np.ndarray
    discarded: np.ndarray
    unmatched: pd.DataFrame
    caliper_sd: float | None
    caliper_width: float | None
    settings: dict[str, Any]

    @property
    def matched_index(self) -> np.ndarray:
        """Positions of the units in the matched sample (weight > 0)."""
        return np.flatnonzero(self.weights > 0)

    def pairs(self) -> pd.DataFrame:
        """Long table treated -> control with the pair (subclass) id and the rank of the control."""
        rows, cols = np.nonzero(self.match_matrix >= 0)
        t = self.treated_index[rows]
        return pd.DataFrame({"treated": t, "control": self.match_matrix[rows, cols], "rank": cols + 1,
                             "subclass": self.subclass[t]})

    def counts(self) -> pd.DataFrame:
        """Sample sizes as MatchIt's summary: All, Matched, Unmatched, Discarded per group."""
        t = self.treat.astype(bool)
        m = self.weights > 0
        d = self.discarded
        out = {}
        for name, g in (("Control", ~t), ("Treated", t)):
            out[name] = [int(g.sum()), int((g & m).sum()), int((g & ~m & ~d).sum()), int((g & d).sum())]
        return pd.DataFrame(out, index=["All", "Matched", "Unmatched", "Discarded"])


@dataclass
class _Problem:
    """Validated matching problem shared by the fast and the naive implementations."""

    treat: np.ndarray  # bool
    distance: np.ndarray
    strata: np.ndarray  # int codes, 0 without exact
    discarded: np.ndarray
    width: float  # caliper in distance units (inf = none)
    order: np.ndarray  # treated positions in matching order
    pos: np.ndarray  # rank of each unit in the stable sort by (stratum, distance)
    sort_order: np.ndarray  # the inverse permutation: units in that sorted order
    ratio: int
    replace: bool


def _as_treat(treat: Any) -> np.ndarray:
    """Treatment as a boolean vector (True = treated); accepts 0/1 numbers or booleans."""
    t = np.asarray(treat)
    if t.ndim != 1:
        raise ValueError("treat must be a 1-D vector")
    if t.dtype == bool:
        return t.copy()
    s = pd.Series(t)
    if s.isna().any():
        raise ValueError("treat has missing values (MatchIt: missing values are not allowed in the treatment)")
    vals = set(s.unique().tolist())
    if not vals <= {0, 1}:
        raise ValueError(f"treat must be 0/1 or boolean, found values {sorted(map(str, vals))}")
    return s.to_numpy(dtype=float) == 1


def _exact_codes(exact: Any, n: int) -> np.ndarray:
    """Integer stratum code per unit from one or several exact-matching variables (no missing allowed)."""
    if exact is None:
        return np.zeros(n, dtype=np.int64)
    if isinstance(exact, pd.DataFrame):
        ex = exact.reset_index(drop=True)
    elif isinstance(exact, pd.Series):
        ex = exact.reset_index(drop=True).to_frame()
    else:
        arr = np.asarray(exact, dtype=object)
        if arr.ndim not in (1, 2):
            raise ValueError("exact must be a vector, a 2-D array or a DataFrame")
        ex = pd.DataFrame(arr.reshape(arr.shape[0], -1))
    if len(ex) != n:
        raise ValueError(f"exact has {len(ex)} rows but distance has {n}")
    if ex.isna().any().any():
        raise ValueError("exact: missing values are not allowed in the exact-matching variables")
    ex = ex.astype(str)
    ex.columns = range(ex.shape[1])
    return ex.groupby(list(ex.columns), sort=True).ngroup().to_numpy(dtype=np.int64)


def _discard(distance: np.ndarray, treat: np.ndarray, option: str) -> np.ndarray:
    """MatchIt ``discard()``: common support on the distance's ranges (range comparisons are invariant to the
    monotone ps -> logit map, so ps or logit give the same units)."""
    if option == "none":
        return np.zeros(distance.size, dtype=bool)
    d1, d0 = distance[treat], distance[~treat]
    if option == "both":
        return (distance < max(d0.min(), d1.min())) | (distance > min(d0.max(), d1.max()))
    if option == "control":
        return (distance < d1.min()) | (distance > d1.max())
    return (distance < d0.min()) | (distance > d0.max())  # "treated"


def _treated_order(distance: np.ndarray, treat: np.ndarray, m_order: str, seed: Any) -> np.ndarray:
    """Positions of the treated units in MatchIt's ``m.order`` (stable: ties keep data order)."""
    t_idx = np.flatnonzero(treat)
    d = distance[t_idx]
    if m_order == "largest":
        return t_idx[np.argsort(-d, kind="stable")]
    if m_order == "smallest":
        return t_idx[np.argsort(d, kind="stable")]
    if m_order == "random":
        return np.random.default_rng(seed).permutation(t_idx)
    return t_idx


def _prepare(distance: Any, treat: Any, ratio: int, caliper: float | None, std_caliper: bool, replace: bool,
             m_order: str, exact: Any, discard: str, seed: Any) -> tuple[_Problem, float | None, float | None]:
    d = np.asarray(distance, dtype=float)
    if d.ndim != 1:
        raise ValueError("distance must be a 1-D vector")
    if not np.isfinite(d).all():
        raise ValueError("distance has missing or non-finite values (MatchIt does not allow them)")
    t = _as_treat(treat)
    if t.size != d.size:
        raise ValueError(f"treat has {t.size} values but distance has {d.size}")
    if not t.any() or t.all():
        raise ValueError("treat needs at least one treated and one control unit")
    if isinstance(ratio, bool) or not isinstance(ratio, (int, np.integer)) or ratio < 1:
        raise ValueError(f"ratio must be a whole number >= 1, got {ratio!r}")
    if m_order not in M_ORDERS:
        raise ValueError(f"m_order must be one of {M_ORDERS}, got {m_order!r}")
    if discard not in DISCARDS:
        raise ValueError(f"discard must be one of {DISCARDS}, got {discard!r}")
    strata = _exact_codes(exact, d.size)
    discarded = _discard(d, t, discard)
    caliper_sd = width = None
    if caliper is not None:
        try:
            caliper = float(caliper)
        except (TypeError, ValueError):
            raise ValueError(f"caliper must be a number, got {caliper!r}") from None
    if caliper is not None and np.isfinite(caliper):
        if not caliper > 0:
            raise ValueError(f"caliper must be > 0, got {caliper!r}")
        if std_caliper:
            kept = d[~discarded]
            if kept.size < 2:
                raise ValueError("caliper in SD units needs at least 2 non-discarded units")
            caliper_sd = float(np.std(kept, ddof=1))
            width = float(caliper) * caliper_sd
        else:
            width = float(caliper)
    sort_order = np.lexsort((d, strata))  # stable: ties keep data order, as R's order()
    pos = np.empty(d.size, dtype=np.int64)
    pos[sort_order] = np.arange(d.size)
    order = _treated_order(d, t, m_order, seed)
    prob = _Problem(t, d, strata, discarded, math.inf if width is None else width, order, pos, sort_order,
                    int(ratio), bool(replace))
    return prob, caliper_sd, width


def _sorted_controls(p: _Problem) -> np.ndarray:
    """Positions of the available (non-discarded) controls, in sorted (stratum, distance) order."""
    s = p.sort_order
    return s[~p.treat[s] & ~p.discarded[s]]


def _split_paths(p: _Problem) -> tuple[np.ndarray, np.ndarray]:
    """Treated units (in matching order, discarded ones removed) for the rounds path and for the all-at-once path.
    MatchIt uses all-at-once when reuse.max >= number of treated in the (stratum) call: with replacement, or a
    stratum with a single treated unit (discarded ones included in that count)."""
    order = p.order[~p.discarded[p.order]]
    if p.replace:
        return order[:0], order
    n_treated_in_stratum = np.bincount(p.strata[p.treat], minlength=p.strata.max() + 1)
    single = n_treated_in_stratum[p.strata[order]] == 1
    return order[~single], order[single]


def _rounds_fast(p: _Problem, units: np.ndarray, row_of: np.ndarray, mm: np.ndarray) -> None:
    """Greedy matching without replacement in rounds (MatchIt's reuse.max path), with union-find skipping."""
    if units.size == 0:
        return
    c = _sorted_controls(p)
    nc, nt = c.size, units.size
    if nc == 0:
        return
    c_pos = p.pos[c]
    lstart = (np.searchsorted(c_pos, p.pos[units]) - 1).tolist()  # last control left of the treated unit
    rstart = [j + 1 for j in lstart]
    lo = p.pos[units].tolist()
    hi = list(lo)
    td, ts = p.distance[units].tolist(), p.strata[units].tolist()
    cd, cs, cp = p.distance[c].tolist(), p.strata[c].tolist(), c_pos.tolist()
    left = list(range(nc + 1))  # left[j + 1] == j + 1 <=> control j available; left[0] is the sentinel
    right = list(range(nc + 1))  # right[j] == j <=> control j available; right[nc] is the sentinel
    width = p.width
    active = [True] * nt
    out_k: list[int] = []
    out_r: list[int] = []
    out_j: list[int] = []
    for r in range(p.ratio):
        for k in range(nt):
            if not active[k]:
                continue
            dt, st = td[k], ts[k]
            i = lstart[k] + 1
            while left[i] != i:  # path halving
                left[i] = left[left[i]]
                i = left[i]
            jl = i - 1
            dl = math.inf
            if jl >= 0 and cs[jl] == st:
                dl = abs(dt - cd[jl])
                if dl > width:
                    jl = -1
            else:
                jl = -1
            i = rstart[k]
            while right[i] != i:
                right[i] = right[right[i]]
                i = right[i]
            jr = i
            dr = math.inf
            if jr < nc and cs[jr] == st:
                dr = abs(dt - cd[jr])
                if dr > width:
                    jr = -1
            else:
                jr = -1
            if jl < 0 and jr < 0:
                active[k] = False
                continue
            if jr < 0 or (jl >= 0 and (dl < dr or (dl == dr and lo[k] - cp[jl] <= cp[jr] - hi[k]))):
                j = jl
                lstart[k] = jl - 1
                lo[k] = cp[jl]
            else:
                j = jr
                rstart[k] = jr + 1
                hi[k] = cp[jr]
            left[j + 1] = j
            right[j] = j + 1
            out_k.append(k)
            out_r.append(r)
            out_j.append(j)
    if out_k:
        mm[row_of[units[np.asarray(out_k)]], np.asarray(out_r)] = c[np.asarray(out_j)]


def _rounds_naive(p: _Problem, units: np.ndarray, row_of: np.ndarray, mm: np.ndarray) -> None:
    """Reference for ``_rounds_fast``: for every treated unit, distances to all controls, then the documented
    rule (minimum distance; tie -> smallest scan offset, left before right at equal offsets)."""
    c = np.flatnonzero(~p.treat & ~p.discarded)
    c_pos, c_d, c_s = p.pos[c], p.distance[c], p.strata[c]
    avail = np.ones(c.size, dtype=bool)
    lo, hi = p.pos[units].copy(), p.pos[units].copy()
    active = np.ones(units.size, dtype=bool)
    for r in range(p.ratio):
        for k, u in enumerate(units):
            if not active[k]:
                continue
            d = np.abs(p.distance[u] - c_d)
            ok = avail & (c_s == p.strata[u]) & (d <= p.width)
            if not ok.any():
                active[k] = False
                continue
            cand = np.flatnonzero(ok & (d == d[ok].min()))
            is_left, is_right = c_pos[cand] < lo[k], c_pos[cand] > hi[k]
            if not (is_left | is_right).all():
                raise RuntimeError("an available control lies between a treated unit's matches")
            key = np.where(is_left, 2 * (lo[k] - c_pos[cand]), 2 * (c_pos[cand] - hi[k]) + 1)
            j = cand[np.argmin(key)]
            avail[j] = False
            lo[k], hi[k] = min(lo[k], c_pos[j]), max(hi[k], c_pos[j])
            mm[row_of[u], r] = c[j]


def _std_partial_sort(keys: Sequence[float], middle: int) -> list[int]:
    """Emulates libstdc++ ``std::partial_sort(ind, ind + middle, ind + n, comp)`` on ind = 0..n-1 with
    ``comp(a, b) = keys[a] < keys[b]`` (``__heap_select`` then ``__sort_heap``; bits/stl_heap.h), returning the
    first ``middle`` entries. Needed only to resolve exact distance ties the way MatchIt's ``take_closest`` does."""
    a = list(range(len(keys)))

    def less(x: int, y: int) -> bool:
        return keys[x] < keys[y]

    def adjust_heap(hole: int, length: int, value: int) -> None:
        top = second = hole
        while second < (length - 1) // 2:
            second = 2 * (second + 1)
            if less(a[second], a[second - 1]):
                second -= 1
            a[hole] = a[second]
            hole = second
        if length % 2 == 0 and second == (length - 2) // 2:
            second = 2 * (second + 1)
            a[hole] = a[second - 1]
            hole = second - 1
        parent = (hole - 1) // 2 if hole > 0 else 0  # C++ truncating division
        while hole > top and less(a[parent], value):
            a[hole] = a[parent]
            hole = parent
            parent = (hole - 1) // 2 if hole > 0 else 0
        a[hole] = value

    def pop_heap(last: int, result: int) -> None:
        value = a[result]
        a[result] = a[0]
        adjust_heap(0, last, value)

    if middle >= 2:  # make_heap
        parent = (middle - 2) // 2
        while True:
            adjust_heap(parent, middle, a[parent])
            if parent == 0:
                break
            parent -= 1
    for i in range(middle, len(a)):  # heap_select
        if less(a[i], a[0]):
            pop_heap(middle, i)
    last = middle
    while last > 1:  # sort_heap
        last -= 1
        pop_heap(last, last)
    return a[:middle]


def _take_closest(ids: list[int], dists: list[float], k: int) -> list[int]:
    """MatchIt ``take_closest``: as found if at most k and already sorted; partial_sort if more than k; otherwise
    std::sort (insertion sort for n <= 16, which is stable, so Python's stable sort is the same)."""
    n = len(ids)
    if n <= 1:
        return ids
    if n <= k and not any(dists[i + 1] < dists[i] for i in range(n - 1)):
        return ids
    if n > k:
        return [ids[i] for i in _std_partial_sort(dists, k)]
    return [ids[i] for i in sorted(range(n), key=dists.__getitem__)]


def _collect_and_take(left: list[tuple[int, float, int]], right: list[tuple[int, float, int]], k: int) -> list[int]:
    """One ``find_control_vec`` call with ratio k. ``left``/``right`` are the first eligible controls within the
    caliper on each side as (control, distance, offset), nearest first. Scan order is by offset, left first on
    equal offsets; a candidate is rejected, and its side stops, when k collected ones are strictly closer; a side
    stops after k candidates."""
    events = sorted([(off, 0, i) for i, (_, _, off) in enumerate(left)]
                    + [(off, 1, i) for i, (_, _, off) in enumerate(right)])
    ids: list[int] = []
    dists: list[float] = []
    stopped = [False, False]
    taken = [0, 0]
    for _, side, i in events:
        if stopped[side]:
            continue
        cid, dist, _ = (left, right)[side][i]
        if len(ids) >= k and sum(1 for x in dists if x < dist) >= k:
            stopped[side] = True
            continue
        ids.append(cid)
        dists.append(dist)
        taken[side] += 1
        if taken[side] == k:
            stopped[side] = True
    return _take_closest(ids, dists, k)


def _all_at_once_fast(p: _Problem, units: np.ndarray, row_of: np.ndarray, mm: np.ndarray) -> None:
    """k nearest available controls per treated unit at once (MatchIt's non-reuse.max path), vectorised; rows with
    exact distance ties among their candidates go through ``_collect_and_take``."""
    if units.size == 0:
        return
    c = _sorted_controls(p)
    nc, nt, k = c.size, units.size, p.ratio
    if nc == 0:
        return
    c_pos, c_d, c_s = p.pos[c], p.distance[c], p.strata[c]
    tp, td, ts = p.pos[units], p.distance[units], p.strata[units]
    j0 = np.searchsorted(c_pos, tp) - 1
    steps = np.arange(k)

    def side(j: np.ndarray, sign: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        inside = (j >= 0) & (j < nc)
        jc = np.clip(j, 0, nc - 1)
        d = np.abs(td[:, None] - c_d[jc])
        ok = np.logical_and.accumulate(inside & (c_s[jc] == ts[:, None]) & (d <= p.width), axis=1)
        off = sign * (c_pos[jc] - tp[:, None])
        return jc, np.where(ok, d, np.inf), ok, off

    jl, dl, okl, offl = side(j0[:, None] - steps, -1)
    jr, dr, okr, offr = side(j0[:, None] + 1 + steps, 1)
    dall = np.concatenate([dl, dr], axis=1)
    jall = np.concatenate([jl, jr], axis=1)
    sd = np.sort(dall, axis=1)
    tied = (np.isfinite(sd[:, 1:]) & (sd[:, 1:] == sd[:, :-1])).any(axis=1)
    # rows without ties: the k smallest distances, ascending
    take = np.argsort(dall, axis=1, kind="stable")[:, :k]
    dsel = np.take_along_axis(dall, take, axis=1)
    jsel = np.take_along_axis(jall, take, axis=1)
    plain = ~tied
    rows_p, cols_p = np.nonzero(plain[:, None] & np.isfinite(dsel))
    mm[row_of[units[rows_p]], cols_p] = c[jsel[rows_p, cols_p]]
    for q in np.flatnonzero(tied):
        lft = [(int(jl[q, s]), float(dl[q, s]), int(offl[q, s])) for s in range(k) if okl[q, s]]
        rgt = [(int(jr[q, s]), float(dr[q, s]), int(offr[q, s])) for s in range(k) if okr[q, s]]
        chosen = _collect_and_take(lft, rgt, k)
        mm[row_of[units[q]], :len(chosen)] = c[np.asarray(chosen, dtype=np.int64)]


def _all_at_once_naive(p: _Problem, units: np.ndarray, row_of: np.ndarray, mm: np.ndarray) -> None:
    """Reference for ``_all_at_once_fast``: distances to all controls, each side's first k within the caliper by
    brute-force sorting of positions, then ``_collect_and_take`` for every row."""
    c = np.flatnonzero(~p.treat & ~p.discarded)
    c_pos, c_d, c_s = p.pos[c], p.distance[c], p.strata[c]
    k = p.ratio
    for u in units:
        d = np.abs(p.distance[u] - c_d)
        same = c_s == p.strata[u]
        sides = []
        for mask, sign in ((same & (c_pos < p.pos[u]), -1), (same & (c_pos > p.pos[u]), 1)):
            idx = np.flatnonzero(mask)
            idx = idx[np.argsort(sign * c_pos[idx])]  # nearest position first
            cut = np.flatnonzero(d[idx] > p.width)
            idx = idx[: cut[0] if cut.size else idx.size][:k]
            sides.append([(int(j), float(d[j]), int(abs(c_pos[j] - p.pos[u]))) for j in idx])
        chosen = _collect_and_take(sides[0], sides[1], k)
        if chosen:
            mm[row_of[u], :len(chosen)] = c[np.asarray(chosen, dtype=np.int64)]


def _weights_from_mm(treat: np.ndarray, treated_index: np.ndarray, mm: np.ndarray, normalize: bool) -> np.ndarray:
    """MatchIt ``weights_matrixC``: treated 1 if matched; control sum of 1/(controls of its treated unit); then
    ``normalize``: nonzero weights divided by their mean within each treatment group."""
    w = np.zeros(treat.size)
    n_c = (mm >= 0).sum(axis=1)
    has = n_c > 0
    w[treated_index[has]] = 1.0
    rows, cols = np.nonzero(mm >= 0)
    np.add.at(w, mm[rows, cols], 1.0 / n_c[rows])
    if normalize:
        for g in (treat, ~treat):
            nz = g & (w > 0)
            if nz.any():
                w[nz] /= w[nz].mean()
    return w


def _subclass(n: int, treated_index: np.ndarray, mm: np.ndarray) -> np.ndarray:
    """Pair/subclass id 1.. in treated data order (matched treated units only), shared by their controls."""
    sub = np.full(n, -1, dtype=np.int64)
    has = (mm >= 0).any(axis=1)
    ids = np.cumsum(has)
    sub[treated_index[has]] = ids[has]
    rows, cols = np.nonzero(mm >= 0)
    sub[mm[rows, cols]] = ids[rows]
    return sub


def _unmatched_reasons(p: _Problem, weights: np.ndarray, exact_used: bool) -> pd.DataFrame:
    """Reason for every unit left with weight 0."""
    n = weights.size
    reason = np.full(n, "", dtype=object)
    zero = weights == 0
    reason[zero & p.discarded] = "discarded (outside common support)"
    reason[zero & ~p.treat & ~p.discarded] = "control not selected"
    t_un = np.flatnonzero(zero & p.treat & ~p.discarded)
    if t_un.size:
        c = _sorted_controls(p)
        n_ctrl = np.bincount(p.strata[c], minlength=p.strata.max() + 1)
        empty = n_ctrl[p.strata[t_un]] == 0
        within = np.zeros(t_un.size, dtype=bool)
        if c.size:
            j0 = np.searchsorted(p.pos[c], p.pos[t_un]) - 1
            for j in (j0, j0 + 1):  # nearest controls by distance are the sorted neighbours
                inside = (j >= 0) & (j < c.size)
                jc = c[np.clip(j, 0, c.size - 1)]
                within |= inside & (p.strata[jc] == p.strata[t_un]) & \
                    (np.abs(p.distance[jc] - p.distance[t_un]) <= p.width)
        reason[t_un] = np.where(empty, "no control in exact stratum" if exact_used else "no control available",
                                np.where(within, "controls within caliper used up by earlier matches",
                                         "no control within caliper"))
    idx = np.flatnonzero(zero)
    return pd.DataFrame({"index": idx, "treated": p.treat[idx], "reason": reason[idx]})


def _match(core_rounds: Any, core_once: Any, distance: Any, treat: Any, ratio: int, caliper: float | None,
           std_caliper: bool, replace: bool, m_order: str, exact: Any, discard: str, seed: Any,
           normalize: bool) -> MatchResult:
    p, caliper_sd, width = _prepare(distance, treat, ratio, caliper, std_caliper, replace, m_order, exact,
                                    discard, seed)
    treated_index = np.flatnonzero(p.treat)
    row_of = np.full(p.treat.size, -1, dtype=np.int64)
    row_of[treated_index] = np.arange(treated_index.size)
    mm = np.full((treated_index.size, p.ratio), -1, dtype=np.int64)
    rounds_units, once_units = _split_paths(p)
    core_rounds(p, rounds_units, row_of, mm)
    core_once(p, once_units, row_of, mm)
    weights = _weights_from_mm(p.treat, treated_index, mm, normalize)
    subclass = np.full(p.treat.size, -1, dtype=np.int64) if p.replace else _subclass(p.treat.size, treated_index,
                                                                                       mm)
    settings = {"ratio": p.ratio, "caliper": caliper, "std_caliper": std_caliper, "replace": p.replace,
                "m_order": m_order, "exact": exact is not None, "discard": discard, "seed": seed,
                "normalize": normalize}
    return MatchResult(p.treat.astype(np.int8), p.distance, treated_index, mm, (mm >= 0).sum(axis=1), subclass,
                       weights, p.discarded, _unmatched_reasons(p, weights, exact is not None), caliper_sd, width,
                       settings)


def match_nearest(distance: Any, treat: Any, *, ratio: int = 1, caliper: float | None = None,
                  std_caliper: bool = True, replace: bool = False, m_order: str = "largest", exact: Any = None,
                  discard: str = "none", seed: Any = None, normalize: bool = True) -> MatchResult:
    """Greedy nearest-neighbour matching with MatchIt 4 ``method = "nearest"`` semantics (ATT; see the module
    docstring for each rule and where it comes from).

    distance: one value per unit (ps, or its logit for MatchIt's ``link = "linear.logit"``).
    treat: 0/1 or boolean. caliper: width in SD units of ``distance`` (SD over all non-discarded units, n - 1) when
    ``std_caliper``, else in raw units; the width used is ``result.caliper_width`` (SD in ``result.caliper_sd``).
    m_order: "largest" (MatchIt default with a ps), "smallest", "random" (uses ``seed``) or "data".
    exact: stratum variable(s) (vector, 2-D array or DataFrame); units match only within their stratum.
    discard: "none", "both", "control", "treated" (common support on the distance).
    normalize: MatchIt ``normalize = TRUE`` (nonzero weights have mean 1 in each group).
    Method: docs/methods/matching-and-weighting.md.
    """
    return _match(_rounds_fast, _all_at_once_fast, distance, treat, ratio, caliper, std_caliper, replace, m_order,
                  exact, discard, seed, normalize)


def _match_nearest_naive(distance: Any, treat: Any, *, ratio: int = 1, caliper: float | None = None,
                         std_caliper: bool = True, replace: bool = False, m_order: str = "largest",
                         exact: Any = None, discard: str = "none", seed: Any = None,
                         normalize: bool = True) -> MatchResult:
    """All-pairs reference implementation of ``match_nearest`` (O(n_treated x n_control)); tests and benchmark."""
    return _match(_rounds_naive, _all_at_once_naive, distance, treat, ratio, caliper, std_caliper, replace, m_order,
                  exact, discard, seed, normalize)
