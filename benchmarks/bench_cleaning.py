"""Benchmark (not a timed test): the cleaning step on the default synthetic cohort.

Prints wall time and peak memory of `analysis_utils.cleaning.clean` (read, harmonise, validate, de-duplicate,
pseudonymise, derive, eligibility, RECIST/mRECIST responses and PFS) next to a baseline run in the same process:
only reading every raw file as text (the I/O floor). Target: cleaning under 20 s on a 2-core machine.

    python benchmarks/bench_cleaning.py [--params params/default.yaml]
"""
from __future__ import annotations

import argparse
import time
import resource
import warnings

import pandas as pd

from analysis_utils.runner import pipeline
from analysis_utils.study.cleaning import CleaningConfig, clean
from analysis_utils.study.export_files import read_raw_table


def measure(func):
    """Wall time and the process's peak resident memory after the call (tracemalloc would slow pandas
    several-fold, so the peak RSS of the whole process is reported instead)."""
    t0 = time.perf_counter()
    result = func()
    seconds = time.perf_counter() - t0
    return result, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params/default.yaml")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    params = pipeline.load_params(args.params)
    raw = pipeline.resolve(params["input_dir"])
    if not raw.is_dir():
        print(f"generating the synthetic input into {raw} first")
        pipeline.generate_input(params)
    files = sorted(p for p in raw.rglob("*") if p.suffix in (".csv", ".xlsx"))
    _, t_read, m_read = measure(lambda: [read_raw_table(f) for f in files])
    cfg = CleaningConfig.from_params(params, pipeline.pseudonym_key(params))
    cleaned, t_clean, m_clean = measure(lambda: clean(raw, cfg))
    print(f"input: {len(files)} files, {len(cleaned.screened)} screened records, {len(cleaned.cohort)} eligible")
    print(f"{'step':<28}{'seconds':>10}{'peak RSS MiB':>14}")
    print(f"{'baseline: read files only':<28}{t_read:>10.2f}{m_read:>14.0f}")
    print(f"{'cleaning (all steps)':<28}{t_clean:>10.2f}{m_clean:>14.0f}")
    print(f"ratio cleaning / read-only: {t_clean / t_read:.1f}x; target < 20 s: {'met' if t_clean < 20 else 'NOT met'}")


if __name__ == "__main__":
    main()
