"""A simulated Ctrl-C in the middle of MAML training (for the resume and park tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def crashing_training_step(real: Callable[..., Any], on_call: int = 3) -> Callable[..., Any]:
    """MAML's ``training_step`` ``real``, raising KeyboardInterrupt on its ``on_call``-th call
    instead (what fit calls every step; the checkpoint before that step stays)."""
    calls = {"n": 0}

    def crashing_step(self: Any, batch: Any, optimizer: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == on_call:
            raise KeyboardInterrupt("simulated interruption")
        return real(self, batch, optimizer)

    return crashing_step
