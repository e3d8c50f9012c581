"""Monte Carlo simulation of the study's estimators over the synthetic-cohort generator, designed by the ADEMP
structure (Morris, White & Crowther 2019, Stat Med, doi:10.1002/sim.8086), run on dask.distributed.

- A (aims) and D (data-generating mechanisms): one scenario per params file of ``params/simulation/``
  (``scenario.py``); each replicate's analysis-ready data come from the generator (``sources.py``: a fast path
  straight from the generator, and for a few replicates the exports-and-cleaning path).
- E (estimands): marginal survival and RMST differences at fixed times and marginal / conditional hazard ratios,
  true values from the potential outcomes of a very large simulated cohort (``truth.py``).
- M (methods): every estimator the paper reports, through the library functions the notebooks use
  (``estimators.py``, a registry that later methods plug into).
- P (performance measures): bias, relative bias, empirical and model SE, MSE, coverage, power / type I error, each
  with its Monte Carlo SE (``performance.py``).
``engine.py`` runs the replicates (independent SeedSequence streams, stored one file per replicate as they finish,
resumable, failures kept with their seeds) on a dask LocalCluster or an existing cluster; ``report.py`` writes the
results table, one figure per scenario and the summary the manuscript's supplement reads.
Command: ``python -m analysis_utils simulate``. Method: docs/methods/simulation.md.
"""
