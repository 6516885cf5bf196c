"""The data cards of the transfer-learning domains exist and state what the loaders do."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "data"


def test_cards_exist_and_name_their_loader():
    for folder, loader in (("digits", "load_digits"), ("shifted_mnist", "load_shifted_mnist")):
        card = (DATA / folder / "README.md").read_text()
        assert card.startswith("# Data card") and loader in card and "licence" in card.lower()
