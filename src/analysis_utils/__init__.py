"""analysis_utils: the library behind the NCT06881433 compendium (HAIC-TKIs-P versus TKIs-P in advanced HCC).

One module per concept: contract (data dictionary, reading and harmonising exports), quality (data-quality log),
synthetic (synthetic multicenter cohort), scores (Child-Pugh, ALBI, BCLC, Vp/Cheng), cleaning (de-duplication,
pseudonymisation, derivations), eligibility (criteria and flow), recist (RECIST 1.1 / mRECIST), matching and
balance (propensity scores, MatchIt-style matching, weights, SMDs), survival, response, safety, tables, figures,
results (the run's machine-readable results), pipeline (the papermill runner).
"""
__version__ = "0.1.0"
