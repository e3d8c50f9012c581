"""One module per notebook, holding that notebook's computations (no formatting, no plotting): the notebook calls
them and shows the result; :mod:`analysis_utils.reporting` formats and plots.

:mod:`.cleaning` (01_cleaning), :mod:`.matching` (04_matching), :mod:`.survival` (05_survival),
:mod:`.response` (06_response), :mod:`.safety` (07_safety).
"""
