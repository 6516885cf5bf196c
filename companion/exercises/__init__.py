"""Checks for the exercises of the book's chapters: call one with your answer.

Each check raises ``AssertionError`` with a hint when the answer is wrong and prints a short
confirmation when it is right, so it can be run in a notebook cell as it is::

    from companion.exercises import maml
    maml.check_first_order_gradient(2.892)

One module per chapter: :mod:`~companion.exercises.concepts`,
:mod:`~companion.exercises.maml`, :mod:`~companion.exercises.reptile`,
:mod:`~companion.exercises.metric`, :mod:`~companion.exercises.multitask`,
:mod:`~companion.exercises.transfer`, :mod:`~companion.exercises.model_based`,
:mod:`~companion.exercises.applications`.
"""

from companion.exercises import (
    applications,
    concepts,
    maml,
    metric,
    model_based,
    multitask,
    reptile,
    transfer,
)

__all__ = ["applications", "concepts", "maml", "metric", "model_based", "multitask", "reptile",
           "transfer"]
