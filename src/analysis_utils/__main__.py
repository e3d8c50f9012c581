"""``python -m analysis_utils …``: the command line lives in :mod:`analysis_utils.runner.cli`."""
import sys

from analysis_utils.runner.cli import main

if __name__ == "__main__":
    sys.exit(main())
