"""Shared helpers of the exercise checks: one way to fail, one way to confirm.

Chapter: every chapter's Exercises section.
"""

from __future__ import annotations

import math

__all__ = ["confirm", "require", "require_close"]


def require(condition: bool, message: str) -> None:
    """Fail the check with ``message`` unless ``condition`` holds.

    Args:
        condition: what a right answer satisfies.
        message: the hint shown for a wrong answer.

    Raises:
        AssertionError: ``condition`` is false.
    """
    if not condition:
        raise AssertionError(message)


def require_close(answer: float, expected: float, *, name: str, rel: float = 1e-4,
                  hint: str = "") -> None:
    """Fail unless ``answer`` is a finite number within relative tolerance ``rel`` of
    ``expected``.

    Args:
        answer: the reader's number.
        expected: the right number.
        name: what the number is, for the message.
        rel: relative tolerance.
        hint: appended to the message on failure.

    Raises:
        AssertionError: the answer is not finite or not close enough.
    """
    value = float(answer)
    require(math.isfinite(value), f"{name}: got {answer!r}, which is not a finite number.")
    require(math.isclose(value, expected, rel_tol=rel, abs_tol=1e-12),
            f"{name}: got {value:.6g}, which is not right. {hint}".rstrip())


def confirm(message: str) -> None:
    """Tell the reader the answer is right (the one place the checks print)."""
    print(f"Correct: {message}")
