"""Only for the editable install (``pip install -e .``): everything else is in pyproject.toml.

pyproject.toml's ``[tool.setuptools.data-files]`` installs the project's Jupyter kernelspec
(``kernels/hcc-compendium/kernel.json``) into ``<environment>/share/jupyter/kernels/``, so a JupyterLab started
from the environment opens the notebooks on the kernel they name. A regular wheel carries data files, but
setuptools' editable wheel skips them: it asks the distribution for ``has_data()``, which setuptools' Distribution
does not define (it defines ``has_data_files()``). The subclass below answers that question; without it the
kernelspec would be missing after ``pip install -e .`` (tests/test_kernel.py checks that it is there).
"""
from setuptools import setup
from setuptools.dist import Distribution


class _Distribution(Distribution):
    def has_data(self) -> bool:
        return self.has_data_files()


setup(distclass=_Distribution)
