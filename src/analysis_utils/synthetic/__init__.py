"""The synthetic multicentre cohort: centre exports in the contract's format, as messy as real ones, with the
ground truth beside them (never read by the pipeline)."""
from analysis_utils.synthetic.generator import generate_cohort

__all__ = ["generate_cohort"]
