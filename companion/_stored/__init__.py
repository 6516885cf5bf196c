"""Copies of the repository's stored results and benchmark tables, shipped inside the package.

An installed ``companion`` (pip, Colab, Binder) has no repository beside it, so the wheel
carries ``results/*.json``, ``results/*.pt`` and ``benchmarks/results/*.json`` here, in the
repository's layout (``setup.py`` maps the folders onto this package):
``companion/_stored/results/`` and ``companion/_stored/benchmarks/results/``. In a checkout
(and an editable install) this folder holds only this file, and the repository's folders are
used directly. :func:`companion.experiments.results_dir` chooses.

Chapter: MAML (the results tables), and every chapter that loads a stored result.
"""
