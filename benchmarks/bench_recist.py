"""Benchmark of analysis_utils.study.recist.derive_response (RECIST 1.1 and mRECIST).

Synthesises N patients x 8 imaging visits (baseline + 7 follow-ups every ~6 weeks) x 1-5 baseline lesions,
plus occasional new lesions, missing values and missing rows (numpy, seeded), then times derive_response for
both criteria. Baseline for the ratio: the same engine on 10,000 patients in the same run.
Target: 100,000 patients, both criteria, under 30 s on a 2-core machine.

Peak memory is the tracemalloc peak of a second, traced call (numpy and pandas buffers are traced); the
timed call runs untraced. Usage: python benchmarks/bench_recist.py [--patients 100000] [--baseline 10000]
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

try:
    from analysis_utils.study.recist import CRITERIA, derive_response
except ImportError:  # package not installed: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from analysis_utils.study.recist import CRITERIA, derive_response

ORGANS = np.array(["liver", "lung", "lymph_node", "bone", "adrenal", "peritoneum", "portal_vein", "ascites",
                   "pleural_effusion", "other"], dtype=object)
ORGAN_P = np.array([0.45, 0.12, 0.12, 0.05, 0.04, 0.04, 0.10, 0.04, 0.02, 0.02])
N_VISITS = 8
TARGET_SECONDS = 30.0


def synthesise(n_patients: int, seed: int = 20240101) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lesion table and index table for ``n_patients`` (deterministic for a given seed)."""
    rng = np.random.default_rng(seed)
    sid = np.array([f"P{i:07d}" for i in range(n_patients)], dtype=object)
    index_day = rng.integers(np.datetime64("2019-01-01").astype(int), np.datetime64("2023-12-31").astype(int),
                             n_patients)
    # visit days relative to index: baseline -35..0, then 42*k +- 7
    vday = np.empty((n_patients, N_VISITS), dtype=np.int64)
    vday[:, 0] = -rng.integers(0, 36, n_patients)
    vday[:, 1:] = 42 * np.arange(1, N_VISITS) + rng.integers(-7, 8, (n_patients, N_VISITS - 1))
    # patient-level trajectory of tumour size (log scale random walk with a drift) and of viability
    drift = rng.normal(-0.05, 0.15, n_patients)
    logf = np.zeros((n_patients, N_VISITS))
    logf[:, 1:] = np.cumsum(drift[:, None] + rng.normal(0, 0.05, (n_patients, N_VISITS - 1)), axis=1)
    logv = logf + np.hstack([np.zeros((n_patients, 1)),
                             np.cumsum(rng.normal(-0.08, 0.10, (n_patients, N_VISITS - 1)), axis=1)])

    n_les = rng.integers(1, 6, n_patients)
    pl_pid = np.repeat(np.arange(n_patients), n_les)
    pl_k = np.arange(len(pl_pid)) - np.repeat(np.cumsum(n_les) - n_les, n_les)
    organ = rng.choice(len(ORGANS), len(pl_pid), p=ORGAN_P)
    organ[pl_k == 0] = 0  # every patient has an intrahepatic lesion
    liver, node = organ == 0, organ == 2
    effusion = (organ == 7) | (organ == 8)
    ld0 = np.where(liver, rng.uniform(8, 90, len(pl_pid)), rng.uniform(6, 40, len(pl_pid)))
    sa0 = np.where(node, rng.uniform(8, 30, len(pl_pid)), np.nan)
    ld0 = np.where(node, sa0 * 1.5, np.where(effusion, np.nan, ld0))
    via0 = np.where(liver, ld0 * rng.uniform(0.5, 1.0, len(pl_pid)), np.nan)
    ae = np.where(liver, rng.random(len(pl_pid)) < 0.85, False)

    # lesion x visit rows
    n_pl = len(pl_pid)
    r_pl = np.repeat(np.arange(n_pl), N_VISITS)
    r_v = np.tile(np.arange(N_VISITS), n_pl)
    r_pid = pl_pid[r_pl]
    noise = np.exp(rng.normal(0, 0.05, len(r_pl)))
    ld = ld0[r_pl] * np.exp(logf[r_pid, r_v]) * noise
    sa = sa0[r_pl] * np.exp(logf[r_pid, r_v]) * noise
    via = np.minimum(via0[r_pl] * np.exp(logv[r_pid, r_v]) * noise, ld)
    ld = np.where(ld < 4, 0.0, np.round(ld, 1))
    via = np.where(via < 4, 0.0, np.round(via, 1))
    sa = np.round(sa, 1)
    u = rng.random(len(r_pl))
    status = np.where(u < 0.02, "unequivocal_progression",
                      np.where(u < 0.07, "absent", np.where(u < 0.08, "not_assessed", "present"))).astype(object)
    status[u > 0.99] = None
    status[r_v == 0] = "present"
    ld[rng.random(len(r_pl)) < 0.01] = np.nan
    keep = (r_v == 0) | (rng.random(len(r_pl)) > 0.005)  # 0.5 % of follow-up rows missing

    rows = pd.DataFrame({
        "study_id": sid[r_pid],
        "assessment_date": (index_day[r_pid] + vday[r_pid, r_v]).astype("datetime64[D]").astype("datetime64[ns]"),
        "lesion_id": np.array([f"L{k + 1}" for k in range(5)], dtype=object)[pl_k[r_pl]],
        "organ": ORGANS[organ[r_pl]],
        "lesion_type": np.where(pl_k[r_pl] < 3, "target", "non_target").astype(object),
        "ld_mm": ld, "viable_ld_mm": via, "short_axis_mm": sa,
        "arterial_enhancement": pd.array(np.where(liver[r_pl], ae[r_pl], False), dtype="boolean"),
        "nontarget_status": status,
        "cytology_confirmed": pd.array(np.full(len(r_pl), None), dtype="boolean"),
    })[keep]
    rows.loc[~liver[r_pl][keep], "arterial_enhancement"] = pd.NA

    # new lesions: 3 % per patient per follow-up visit
    nv_pid, nv_v = np.nonzero(rng.random((n_patients, N_VISITS - 1)) < 0.03)
    nv_v = nv_v + 1
    n_new = len(nv_pid)
    new_organ = rng.choice([0, 1, 2, 7], n_new, p=[0.6, 0.2, 0.1, 0.1])
    new_ld = np.round(rng.uniform(5, 25, n_new), 1)
    new = pd.DataFrame({
        "study_id": sid[nv_pid],
        "assessment_date": (index_day[nv_pid] + vday[nv_pid, nv_v]).astype("datetime64[D]").astype("datetime64[ns]"),
        "lesion_id": np.array([f"NEW{v}" for v in range(N_VISITS)], dtype=object)[nv_v],
        "organ": ORGANS[new_organ],
        "lesion_type": "new",
        "ld_mm": np.where(new_organ == 7, np.nan, new_ld),
        "viable_ld_mm": np.where(new_organ == 0, new_ld, np.nan),
        "short_axis_mm": np.where(new_organ == 2, new_ld, np.nan),
        "arterial_enhancement": pd.array(np.where(new_organ == 0, rng.random(n_new) < 0.6, False),
                                         dtype="boolean"),
        "nontarget_status": None,
        "cytology_confirmed": pd.array(np.where(new_organ == 7, rng.random(n_new) < 0.3, False),
                                       dtype="boolean"),
    })
    lesions = pd.concat([rows, new], ignore_index=True)
    index = pd.DataFrame({"study_id": sid,
                          "index_date": index_day.astype("datetime64[D]").astype("datetime64[ns]")})
    return lesions, index


def time_both(lesions: pd.DataFrame, index: pd.DataFrame) -> tuple[float, dict[str, object]]:
    """Seconds for derive_response under both criteria (untraced) and the results."""
    t0 = time.perf_counter()
    results = {c: derive_response(lesions, index, c) for c in CRITERIA}
    return time.perf_counter() - t0, results


def peak_mb(lesions: pd.DataFrame, index: pd.DataFrame) -> float:
    """tracemalloc peak (MB) of one derive_response call (the larger of the two criteria)."""
    peaks = []
    for c in CRITERIA:
        tracemalloc.start()
        derive_response(lesions, index, c)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return max(peaks) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--baseline", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=20240101)
    args = ap.parse_args()

    figures = {}
    for n in (args.baseline, args.patients):
        t0 = time.perf_counter()
        lesions, index = synthesise(n, args.seed)
        gen = time.perf_counter() - t0
        secs, res = time_both(lesions, index)
        mem = peak_mb(lesions, index)
        figures[n] = secs
        print(f"patients={n:,} lesion_rows={len(lesions):,} (synthesised in {gen:.1f} s)")
        for c, r in res.items():
            bor = r.summary["bor"].value_counts().reindex(["CR", "PR", "SD", "PD", "NE"]).to_dict()
            print(f"  {c:8s} timepoints={len(r.timepoints):,} dq_entries={len(r.data_quality):,} BOR={bor}")
        print(f"  derive_response, both criteria: {secs:.2f} s; peak traced memory per call: {mem:.0f} MB")
    ratio = figures[args.patients] / figures[args.baseline]
    print(f"scaling ratio {args.patients:,} vs {args.baseline:,} patients: {ratio:.1f}x "
          f"(linear would be {args.patients / args.baseline:.0f}x)")
    met = figures[args.patients] < TARGET_SECONDS
    print(f"target < {TARGET_SECONDS:.0f} s for {args.patients:,} patients, both criteria: "
          f"{'MET' if met else 'NOT MET'} ({figures[args.patients]:.2f} s)")


if __name__ == "__main__":
    main()
