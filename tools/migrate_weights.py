"""One-off migration: wrap plain state dicts in results/*.pt as {"key", "state_dict"}, with the
key taken from the JSON record beside each file (the weights themselves are unchanged).
Usage: python tools/migrate_weights.py results
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from companion.utils import atomic_write, read_record


def main(folder: str) -> None:
    for pt in sorted(Path(folder).glob("*.pt")):
        stored = torch.load(pt, map_location="cpu", weights_only=True)
        if isinstance(stored, dict) and set(stored) == {"key", "state_dict"}:
            continue
        key = read_record(pt.with_suffix(".json"))["key"]
        with atomic_write(pt) as tmp:
            torch.save({"key": key, "state_dict": stored}, tmp)
        print(f"migrated {pt}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results")
