"""Fixtures of the experiment tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from companion.meta.maml import MAML
from tests.experiments.interrupt import crashing_training_step


@pytest.fixture
def crash_on_third_step(monkeypatch) -> Callable[[], Callable[[], None]]:
    """Calling it makes MAML's training step raise KeyboardInterrupt on its third call from
    then on (a Ctrl-C); it returns the function that puts the real step back."""
    real = MAML.training_step  # what fit calls every step

    def arm() -> Callable[[], None]:
        monkeypatch.setattr(MAML, "training_step", crashing_training_step(real))
        return lambda: monkeypatch.setattr(MAML, "training_step", real)

    return arm
