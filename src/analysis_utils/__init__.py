"""analysis_utils: the library behind the NCT06881433 compendium (HAIC-TKIs-P versus TKIs-P in advanced HCC).

The package is layered; each folder may import only the folders below it (docs/architecture.md,
tests/test_architecture.py):

- :mod:`analysis_utils.stats`: general statistics, each reproducing an R definition (survival, MatchIt, cobalt,
  WeightIt, ...); knows nothing of this study.
- :mod:`analysis_utils.study`: the study's data and derivations (contract, cleaning, time zero and arms,
  eligibility, scores, RECIST 1.1 / mRECIST, CTCAE 5.0).
- :mod:`analysis_utils.synthetic`: the synthetic multicentre cohort in the centres' export format, with its truth.
- :mod:`analysis_utils.steps`: one module per notebook holding that notebook's computations.
- :mod:`analysis_utils.reporting`: tables, figures, results.json and the Quarto manuscript.
- :mod:`analysis_utils.runner`: the papermill runner and the command line (``python -m analysis_utils``).
"""
__version__ = "0.2.0"
