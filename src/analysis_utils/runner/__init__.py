"""The top layer: :mod:`.pipeline` executes the notebooks in order with papermill for one or several params files
and writes the run manifest; :mod:`.cli` is ``python -m analysis_utils``."""
