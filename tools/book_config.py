"""Write a copy of _config.yml with notebook execution turned off.

`make test` builds the book from this copy with warnings as errors: nbval has already executed
every chapter, so the build only checks structure, cross-references and citations.
Usage: python tools/book_config.py OUT.yml
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml


def main(out: str) -> None:
    config = yaml.safe_load(Path("_config.yml").read_text())
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(yaml.safe_dump(config, sort_keys=False))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tools/book_config.py OUT.yml")
    main(sys.argv[1])
