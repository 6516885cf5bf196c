"""Remove outputs, execution counts and volatile metadata from notebooks (in place).

Notebooks are committed without outputs so the website always shows what the current code
produces; tests/test_notebooks.py fails if a notebook in book/ carries outputs.
Usage: python tools/strip_notebooks.py book [more paths ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

KEEP_NOTEBOOK_METADATA = ("kernelspec", "language_info", "jupytext", "mystnb")
KEEP_CELL_METADATA = ("tags", "mystnb")


def strip(nb: dict) -> dict:
    nb["metadata"] = {k: v for k, v in nb.get("metadata", {}).items()
                      if k in KEEP_NOTEBOOK_METADATA}
    for cell in nb.get("cells", []):
        cell["metadata"] = {k: v for k, v in cell.get("metadata", {}).items()
                            if k in KEEP_CELL_METADATA}
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return nb


def main(paths: list[str]) -> int:
    files = [f for p in paths for f in (sorted(Path(p).rglob("*.ipynb")) if Path(p).is_dir()
                                        else [Path(p)])
             if ".ipynb_checkpoints" not in f.parts]
    for f in files:
        before = f.read_text(encoding="utf-8")
        after = json.dumps(strip(json.loads(before)), indent=1, ensure_ascii=False) + "\n"
        if after != before:
            f.write_text(after, encoding="utf-8")
            print(f"stripped {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["book"]))
