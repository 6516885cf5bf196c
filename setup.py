"""Packaging beyond pyproject.toml: the stored results and benchmark tables go into the wheel.

The chapters load results of long runs (``results/``) and benchmark tables
(``benchmarks/results/``). Outside a checkout (``pip install``, Colab, Binder) those folders
are not there, so the package carries copies: each folder is mapped onto a subpackage of
``companion._stored`` (same layout as the repository) and its files are package data. An
editable install maps the same names onto the repository's folders.
"""

from setuptools import find_packages, setup

STORED = {  # package -> repository folder whose files it ships
    "companion._stored.results": "results",
    "companion._stored.benchmarks.results": "benchmarks/results",
}

setup(
    packages=[*find_packages(include=["companion", "companion.*"]), *STORED],
    package_dir=STORED,
    package_data={package: ["*.json", "*.pt"] for package in STORED},
)
