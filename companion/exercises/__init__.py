"""Checks for the exercises of the book's chapters: call one with your answer.

Each check raises ``AssertionError`` with a hint when the answer is wrong and prints a short
confirmation when it is right, so it can be run in a notebook cell as it is::

    from companion.exercises import maml
    maml.check_first_order_gradient(2.892)

One module per chapter: :mod:`~companion.exercises.concepts`,
:mod:`~companion.exercises.maml`, :mod:`~companion.exercises.reptile`,
:mod:`~companion.exercises.metric`, :mod:`~companion.exercises.model_based`.
"""

from companion.exercises import concepts, maml, metric, model_based, reptile

__all__ = ["concepts", "maml", "metric", "model_based", "reptile"]
