"""Tests for analysis_utils.stats.matching: MatchIt-equivalent nearest-neighbour matching.

The matching examples are worked by hand below; ``_matchit_port`` is a line-by-line Python port of MatchIt's C++
scan (nn_matchC_vec + find_control_vec, MatchIt 4.6/4.7) used as an independent oracle on random tie-heavy data.
"""
from __future__ import annotations

import shutil
import statistics
import subprocess

import numpy as np
import pytest

from analysis_utils.stats.matching import (
    _match_nearest_naive,
    _prepare,
    _std_partial_sort,
    _take_closest,
    match_nearest,
)

# ------------------------------------------------------------------------------------------------------------------
# Hand-worked example: 5 treated, 8 controls, raw caliper 0.15
#
#   idx unit group distance        controls sorted: c8 .05(12) c5 .20(8) c2 .45(3) c1 .53(1) c3 .62(5)
#    0   D    T     0.38                            c6 .80(10) c4 .95(7) c7 1.10(11)
#    1   c1   C     0.53
#    2   B    T     0.56
#    3   c2   C     0.45
#    4   A    T     0.50
#    5   c3   C     0.62
#    6   C    T     0.90
#    7   c4   C     0.95
#    8   c5   C     0.20
#    9   E    T     1.50
#   10   c6   C     0.80
#   11   c7   C     1.10
#   12   c8   C     0.05
# ------------------------------------------------------------------------------------------------------------------
D5 = np.array([0.38, 0.53, 0.56, 0.45, 0.50, 0.62, 0.90, 0.95, 0.20, 1.50, 0.80, 1.10, 0.05])
T5 = np.array([1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0])
D_, c1, B_, c2, A_, c3, C_, c4, c5, E_, c6, c7, c8 = range(13)


def pairs_of(res) -> dict[int, list[int]]:
    return {int(t): [int(c) for c in row if c >= 0] for t, row in zip(res.treated_index, res.match_matrix)}


def reason_of(res, idx: int) -> str:
    u = res.unmatched
    return u.loc[u["index"] == idx, "reason"].item()


def test_hand_example_largest():
    # order E(1.50), C(.90), B(.56), A(.50), D(.38)
    # E: nearest c7 at |1.50-1.10| = .40 > .15 -> unmatched (no control within caliper)
    # C: c4 |.90-.95| = .05 beats c6 .10 -> c4;  B: c1 .03 beats c3 .06 -> c1
    # A: c1 gone; c2 .05 beats c3 .12 -> c2;  D: c2 gone, c5 .18 and c3 .24 are outside -> unmatched
    #    (c2 was within its caliper but used by A -> "used up")
    res = match_nearest(D5, T5, caliper=0.15, std_caliper=False, m_order="largest")
    assert pairs_of(res) == {D_: [], B_: [c1], A_: [c2], C_: [c4], E_: []}
    assert reason_of(res, E_) == "no control within caliper"
    assert reason_of(res, D_) == "controls within caliper used up by earlier matches"
    assert reason_of(res, c3) == "control not selected"
    # subclasses numbered in treated data order among matched treated: B=1, A=2, C=3
    assert res.subclass[[B_, c1, A_, c2, C_, c4]].tolist() == [1, 1, 2, 2, 3, 3]
    assert res.subclass[[D_, E_, c3]].tolist() == [-1, -1, -1]
    assert res.caliper_width == 0.15 and res.caliper_sd is None


def test_hand_example_smallest():
    # order D(.38), A(.50), B(.56), C(.90), E(1.50)
    # D: c5 .18 out, c2 .07 -> c2;  A: c2 gone, c1 .03 -> c1;  B: c1, c2 gone; c3 .06 (left c5 .36) -> c3
    # C: c4;  E: none
    res = match_nearest(D5, T5, caliper=0.15, std_caliper=False, m_order="smallest")
    assert pairs_of(res) == {D_: [c2], B_: [c3], A_: [c1], C_: [c4], E_: []}


def test_hand_example_data_order():
    # order D, B, A, C, E (data order)
    # D -> c2 (.07);  B -> c1 (.03);  A: c1, c2 gone, left c5 .30 out, right c3 .12 in -> c3;  C -> c4;  E none
    res = match_nearest(D5, T5, caliper=0.15, std_caliper=False, m_order="data")
    assert pairs_of(res) == {D_: [c2], B_: [c1], A_: [c3], C_: [c4], E_: []}


def test_random_order_is_data_order_of_the_seeded_permutation():
    # "random" processes the treated units in np.random.default_rng(seed).permutation(treated positions)
    seed = 11
    perm = np.random.default_rng(seed).permutation(np.flatnonzero(T5))
    res = match_nearest(D5, T5, caliper=0.15, std_caliper=False, m_order="random", seed=seed)
    # rebuild the same problem with the treated units reordered so that data order == that permutation
    new_order = np.concatenate([perm, np.flatnonzero(T5 == 0)])
    ref = match_nearest(D5[new_order], T5[new_order], caliper=0.15, std_caliper=False, m_order="data")
    expected = {int(new_order[t]): [int(new_order[c]) for c in cs] for t, cs in pairs_of(ref).items()}
    assert pairs_of(res) == expected
    assert pairs_of(match_nearest(D5, T5, caliper=0.15, std_caliper=False, m_order="random", seed=seed)) \
        == pairs_of(res)


def test_ratio_two_rounds_and_weights():
    # round 1 as in the largest example: C->c4, B->c1, A->c2 (E, D get nothing and drop out)
    # round 2 (same order): C: left from C, c6 .10 -> c6 (right of c4: c7 .20 out)
    #                       B: left of c1: c2 gone, c5 .36 out; right: c3 .06 -> c3
    #                       A: left of c2: c5 .30 out; right: c1, c3, c6, c4 gone, c7 .60 out -> nothing
    res = match_nearest(D5, T5, ratio=2, caliper=0.15, std_caliper=False)
    assert pairs_of(res) == {D_: [], B_: [c1, c3], A_: [c2], C_: [c4, c6], E_: []}
    assert res.n_controls.tolist() == [0, 2, 1, 2, 0]
    # raw weights: treated 1; c4, c6, c1, c3 = 1/2; c2 = 1; normalised by mean of nonzero control weights
    # (4 * 0.5 + 1) / 5 = 0.6 -> 0.5 / 0.6 = 5/6 and 1 / 0.6 = 5/3; control weights then sum to 5
    w = res.weights
    assert w[[B_, A_, C_]].tolist() == [1.0, 1.0, 1.0]
    assert w[[c4, c6, c1, c3]] == pytest.approx([5 / 6] * 4)
    assert w[c2] == pytest.approx(5 / 3)
    assert w[[D_, E_, c5, c7, c8]].tolist() == [0.0] * 5


def test_ratio_two_is_done_in_rounds_not_per_treated():
    # T1 = .50 (data order first), T2 = .56; controls a .51, b .54, c .60, d .45; caliper .15
    # Rounds: r1 T1 -> a (.01), T2 -> b (.02); r2 T1: b gone, d .05 < c .10 -> d; T2: c .04 -> c
    # (taking both controls of T1 first would give T1 [a, b], T2 [c, d] instead)
    d = np.array([0.50, 0.56, 0.51, 0.54, 0.60, 0.45])
    t = np.array([1, 1, 0, 0, 0, 0])
    res = match_nearest(d, t, ratio=2, caliper=0.15, std_caliper=False, m_order="data")
    assert pairs_of(res) == {0: [2, 5], 1: [3, 4]}


def test_with_replacement_weights():
    # each treated unit takes its nearest control independently:
    # D .38 -> c2 (.07); B .56 -> c1 (.03); A .50 -> c1 (.03 beats c2 .05); C -> c4; E none
    # raw control weights c1 = 2, c2 = 1, c4 = 1; mean of nonzero = 4/3 -> 1.5, 0.75, 0.75
    res = match_nearest(D5, T5, caliper=0.15, std_caliper=False, replace=True)
    assert pairs_of(res) == {D_: [c2], B_: [c1], A_: [c1], C_: [c4], E_: []}
    assert res.weights[[c1, c2, c4]] == pytest.approx([1.5, 0.75, 0.75])
    assert (res.subclass == -1).all()  # MatchIt gives no subclass with replacement


def test_exact_matching_and_reasons():
    # strata: x = {D, A, c2, c5, c8}, y = {B, C, c1, c3, c4, c6, c7}, z = {E} (no control)
    # largest: E (z) has no control in its stratum; C -> c4; B -> c1;
    # A (x): x-controls c8 .05, c5 .20, c2 .45 -> c2 (.05);  D (x): c2 gone, c5 .18 out -> unmatched (used up)
    ex = np.array(["x", "y", "y", "x", "x", "y", "y", "y", "x", "z", "y", "y", "x"])
    res = match_nearest(D5, T5, caliper=0.15, std_caliper=False, exact=ex)
    assert pairs_of(res) == {D_: [], B_: [c1], A_: [c2], C_: [c4], E_: []}
    assert reason_of(res, E_) == "no control in exact stratum"
    assert reason_of(res, D_) == "controls within caliper used up by earlier matches"
    # exact on stratum y only keeps B away from c2 even without a caliper: B takes c1, and A (x) takes c2
    res2 = match_nearest(D5, T5, exact=ex, m_order="smallest")
    for t, cs in pairs_of(res2).items():
        assert all(ex[c] == ex[t] for c in cs)


def test_discard_common_support():
    # treated range [.38, 1.50], control range [.05, 1.10]
    # both: keep [.38, 1.10] -> E (1.50), c5 (.20), c8 (.05) discarded; control: c5, c8; treated: E
    both = match_nearest(D5, T5, discard="both")
    assert np.flatnonzero(both.discarded).tolist() == [c5, E_, c8]
    assert reason_of(both, E_) == "discarded (outside common support)"
    assert np.flatnonzero(match_nearest(D5, T5, discard="control").discarded).tolist() == [c5, c8]
    assert np.flatnonzero(match_nearest(D5, T5, discard="treated").discarded).tolist() == [E_]
    # the caliper SD is R's sd() (n - 1) over the non-discarded units, treated and control pooled
    res = match_nearest(D5, T5, discard="both", caliper=0.2)
    kept = [v for i, v in enumerate(D5) if i not in (c5, E_, c8)]
    assert res.caliper_sd == pytest.approx(statistics.stdev(kept))
    assert res.caliper_width == pytest.approx(0.2 * statistics.stdev(kept))
    assert match_nearest(D5, T5, caliper=0.2).caliper_sd == pytest.approx(statistics.stdev(D5.tolist()))


def test_ties_follow_matchit_scan_order():
    # exact distance tie (binary fractions): t .50 between a .25 and b .75, nothing in between:
    # offsets left 1, right 1 -> the left one is reached first -> a
    assert pairs_of(match_nearest([0.25, 0.5, 0.75], [0, 1, 0])) == {1: [0]}
    # a treated unit at .30 sits between a and t in the sorted order: offsets left 2, right 1 -> b first;
    # t (.50, largest first) takes b, then the unit at .30 takes a
    res = match_nearest([0.25, 0.30, 0.50, 0.75], [0, 1, 1, 0])
    assert pairs_of(res) == {1: [0], 2: [3]}
    # equal distance values keep data order in the sort: c(0) t(1) c(2) all .5 -> offsets 1 and 1 -> c(0)
    assert pairs_of(match_nearest([0.5, 0.5, 0.5], [0, 1, 0])) == {1: [0]}
    # ... and with the treated unit first in data order: t(0) c(1) c(2) -> only right side, offset 1 -> c(1)
    assert pairs_of(match_nearest([0.5, 0.5, 0.5], [1, 0, 0])) == {0: [1]}


def test_partial_sort_emulation_on_ties():
    # libstdc++ partial_sort(ind, ind + 2, ind + 4) on keys (3, 2, 2, 1):
    # make_heap([0, 1]) -> root 0 (key 3); i=2 (key 2 < 3): pop root -> heap [1, 2] (root 1, key 2);
    # i=3 (key 1 < 2): pop root 1 -> heap [2, 3]; sort_heap -> [3, 2].  A stable sort would give [3, 1].
    assert _std_partial_sort([3.0, 2.0, 2.0, 1.0], 2) == [3, 2]
    assert sorted(range(4), key=[3.0, 2.0, 2.0, 1.0].__getitem__)[:2] == [3, 1]
    assert _take_closest([10, 11, 12, 13], [3.0, 2.0, 2.0, 1.0], 2) == [13, 12]
    assert _take_closest([10, 11], [1.0, 1.0], 2) == [10, 11]  # n <= k and sorted: kept as found
    assert _take_closest([10, 11], [2.0, 1.0], 2) == [11, 10]  # n <= k, unsorted: std::sort


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ to compile the libstdc++ reference")
def test_partial_sort_emulation_equals_gcc_libstdcxx(tmp_path):
    src = tmp_path / "ps.cpp"
    src.write_text(
        "#include <algorithm>\n#include <vector>\n#include <numeric>\n#include <iostream>\n"
        "int main(){int n,k;while(std::cin>>n>>k){std::vector<double> d(n);for(auto&x:d)std::cin>>x;"
        "std::vector<int> ind(n);std::iota(ind.begin(),ind.end(),0);"
        "std::partial_sort(ind.begin(),ind.begin()+k,ind.end(),[&d](int a,int b){return d[a]<d[b];});"
        "for(int i=0;i<k;i++)std::cout<<ind[i]<<(i+1<k?' ':'\\n');}}\n")
    exe = tmp_path / "ps"
    subprocess.run(["g++", "-O1", "-o", str(exe), str(src)], check=True, capture_output=True)
    rng = np.random.default_rng(0)
    cases = []
    for _ in range(3000):
        n = int(rng.integers(2, 14))
        cases.append((n, int(rng.integers(1, n)), rng.integers(0, 4, n).astype(float).tolist()))
    inp = "".join(f"{n} {k} {' '.join(map(str, keys))}\n" for n, k, keys in cases)
    out = subprocess.run([str(exe)], input=inp, capture_output=True, text=True, check=True).stdout.split("\n")
    for (n, k, keys), line in zip(cases, out):
        assert _std_partial_sort(keys, k) == [int(v) for v in line.split()], (keys, k)


# ------------------------------------------------------------------------------------------------------------------
# Line-by-line port of MatchIt's C++ scan, per exact stratum as matchit2nearest.R calls it (oracle)
# ------------------------------------------------------------------------------------------------------------------

def _find_control_vec(t_id, ind_d_ord, match_d_ord, treat, distance, eligible, r, mm_row, caliper, ratio):
    ii = match_d_ord[t_id]
    if r > 1:
        starts = [match_d_ord[m] for m in mm_row] + [ii]
        iil, iir = min(starts), max(starts)
        if iil == ii:
            min_dist = abs(distance[t_id] - distance[ind_d_ord[iir]])
        elif iir == ii:
            min_dist = abs(distance[t_id] - distance[ind_d_ord[iil]])
        else:
            min_dist = max(abs(distance[t_id] - distance[ind_d_ord[iil]]),
                           abs(distance[t_id] - distance[ind_d_ord[iir]]))
    else:
        iil = iir = ii
        min_dist = 0.0
    min_ii, max_ii = 0, len(ind_d_ord) - 1
    l_stop = r_stop = left = False
    pid, pdist = [], []
    nl = nr = 0
    while not l_stop or not r_stop:
        left = False if l_stop else True if r_stop else not left
        if left:
            if iil <= min_ii or nl == ratio:
                l_stop = True
                continue
            iil -= 1
            iz = ind_d_ord[iil]
        else:
            if iir >= max_ii or nr == ratio:
                r_stop = True
                continue
            iir += 1
            iz = ind_d_ord[iir]
        if not eligible[iz] or treat[iz] != 0 or (r > 1 and iz in mm_row):
            continue
        dist_c = abs(distance[t_id] - distance[iz])
        if dist_c > caliper:
            l_stop, r_stop = (True, r_stop) if left else (l_stop, True)
            continue
        if dist_c < min_dist:
            continue
        if len(pid) >= ratio and sum(1 for d in pdist if d < dist_c) >= ratio:
            l_stop, r_stop = (True, r_stop) if left else (l_stop, True)
            continue
        pid.append(iz)
        pdist.append(dist_c)
        if left:
            nl += 1
            l_stop = l_stop or nl == ratio
        else:
            nr += 1
            r_stop = r_stop or nr == ratio
    return _take_closest(pid, pdist, ratio)


def _nn_match_stratum(treat, ord_, ratio, discarded, reuse_max, distance, caliper):
    n = len(treat)
    ind_d_ord = [int(i) for i in np.argsort(distance, kind="stable")]
    match_d_ord = [0] * n
    for i, u in enumerate(ind_d_ord):
        match_d_ord[u] = i
    eligible = [not x for x in discarded]
    times = [0] * n
    allowed = [ratio if treat[i] else reuse_max for i in range(n)]
    mm = {t: [] for t in range(n) if treat[t]}
    if reuse_max < sum(treat):
        for r in range(1, ratio + 1):
            for t in ord_:
                if not any(eligible[i] and not treat[i] for i in range(n)):
                    break
                if not eligible[t]:
                    continue
                k = _find_control_vec(t, ind_d_ord, match_d_ord, treat, distance, eligible, r, mm[t], caliper, 1)
                if not k:
                    eligible[t] = False
                    continue
                mm[t].append(k[0])
                for ck in (k[0], t):
                    if eligible[ck]:
                        times[ck] += 1
                        eligible[ck] = times[ck] < allowed[ck]
    else:
        for t in ord_:
            if eligible[t]:
                mm[t].extend(_find_control_vec(t, ind_d_ord, match_d_ord, treat, distance, eligible, 1, mm[t],
                                               caliper, ratio))
    return mm


def _matchit_port(distance, treat, order, discarded, strata, ratio, replace, width):
    treat = np.asarray(treat).astype(int)
    out = {int(t): [] for t in np.flatnonzero(treat)}
    for e in np.unique(strata):
        units = np.flatnonzero(strata == e)
        tr = treat[units]
        if tr.all() or not tr.any():
            continue
        local = {int(u): i for i, u in enumerate(units)}
        ord_ = [local[int(u)] for u in order if int(u) in local]
        mm = _nn_match_stratum(tr.tolist(), ord_, ratio, discarded[units].tolist(), 2**31 - 1 if replace else 1,
                               distance[units].tolist(), width)
        for t, cs in mm.items():
            out[int(units[t])] = [int(units[c]) for c in cs]
    return out


def _random_case(rng):
    n = int(rng.integers(4, 60))
    t = rng.random(n) < rng.uniform(0.15, 0.6)
    if t.all() or not t.any():
        t[0], t[-1] = True, False
    d = np.round(rng.normal(size=n), int(rng.integers(0, 2)))  # coarse grid: many exact ties
    kw = dict(ratio=int(rng.integers(1, 4)), caliper=[None, 0.2, 0.5, 1.0][rng.integers(4)],
              replace=bool(rng.integers(2)), m_order=["largest", "smallest", "data", "random"][rng.integers(4)],
              exact=rng.integers(0, 3, n) if rng.random() < 0.4 else None,
              discard=["none", "both", "control", "treated"][rng.integers(4)], seed=5)
    return d, t, kw


def test_fast_equals_naive_on_random_data_with_ties():
    rng = np.random.default_rng(2024)
    checked = 0
    for _ in range(250):
        d, t, kw = _random_case(rng)
        try:
            fast = match_nearest(d, t, **kw)
        except ValueError:  # e.g. discard removing every control's SD basis
            continue
        naive = _match_nearest_naive(d, t, **kw)
        assert np.array_equal(fast.match_matrix, naive.match_matrix), kw
        assert np.allclose(fast.weights, naive.weights)
        assert np.array_equal(fast.subclass, naive.subclass)
        checked += 1
    assert checked > 200


def test_fast_equals_literal_matchit_port():
    rng = np.random.default_rng(99)
    checked = 0
    for _ in range(250):
        d, t, kw = _random_case(rng)
        try:
            fast = match_nearest(d, t, **kw)
        except ValueError:
            continue
        p, _, _ = _prepare(d, t, kw["ratio"], kw["caliper"], True, kw["replace"], kw["m_order"], kw["exact"],
                           kw["discard"], kw["seed"])
        port = _matchit_port(d, t, p.order, p.discarded, p.strata, kw["ratio"], kw["replace"], p.width)
        assert pairs_of(fast) == port, kw
        checked += 1
    assert checked > 200


def test_fast_equals_naive_larger_sample():
    rng = np.random.default_rng(3)
    n = 3000
    d = np.round(rng.normal(size=n), 2)
    t = rng.random(n) < 0.3
    for kw in (dict(caliper=0.2), dict(ratio=2, caliper=0.1), dict(ratio=2, replace=True, caliper=0.2),
               dict(exact=rng.integers(0, 4, n), caliper=0.3, m_order="smallest")):
        assert np.array_equal(match_nearest(d, t, **kw).match_matrix,
                              _match_nearest_naive(d, t, **kw).match_matrix), kw


def test_matching_bad_input():
    with pytest.raises(ValueError, match="non-finite"):
        match_nearest([0.1, np.nan, 0.3], [1, 0, 0])
    with pytest.raises(ValueError, match="0/1"):
        match_nearest([0.1, 0.2, 0.3], [1, 2, 0])
    with pytest.raises(ValueError, match="treated and one control"):
        match_nearest([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="ratio"):
        match_nearest(D5, T5, ratio=0)
    with pytest.raises(ValueError, match="caliper"):
        match_nearest(D5, T5, caliper=-0.1)
    with pytest.raises(ValueError, match="m_order"):
        match_nearest(D5, T5, m_order="closest")
    with pytest.raises(ValueError, match="exact: missing"):
        match_nearest(D5, T5, exact=[None] + ["a"] * 12)
    with pytest.raises(ValueError, match="13"):
        match_nearest(D5, T5[:-1])


def test_counts_and_pairs_table():
    res = match_nearest(D5, T5, caliper=0.15, std_caliper=False)
    counts = res.counts()
    assert counts.loc["Matched"].tolist() == [3, 3]
    assert counts.loc["Unmatched"].tolist() == [5, 2]  # controls c3 c5 c6 c7 c8; treated D, E
    pt = res.pairs()
    assert sorted(zip(pt["treated"], pt["control"])) == [(B_, c1), (A_, c2), (C_, c4)]
    assert res.matched_index.tolist() == sorted([B_, c1, A_, c2, C_, c4])
