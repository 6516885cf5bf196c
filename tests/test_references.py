"""references.bib parses, has no duplicate keys, and holds every key the library cites."""

from __future__ import annotations

import re
from pathlib import Path

from pybtex.database import parse_file

ROOT = Path(__file__).resolve().parents[1]


def test_bibliography_parses_with_unique_keys():
    text = (ROOT / "references.bib").read_text()
    keys = re.findall(r"^@\w+\{([^,]+),", text, re.M)
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    assert sorted(parse_file(ROOT / "references.bib").entries) == sorted(keys)


def test_every_key_cited_in_the_library_exists():
    known = set(parse_file(ROOT / "references.bib").entries)
    cited = {key for path in (ROOT / "companion").rglob("*.py")
             for group in re.findall(r":cite:[tp]:`([^`]+)`", path.read_text())
             for key in group.split(",")}
    assert cited <= known, sorted(cited - known)


def test_every_chapter_has_its_own_bibliography_label_prefix():
    """Two chapters with one :labelprefix: give duplicate labels (a -W build error)."""
    import json

    prefixes: dict[str, str] = {}
    for path in sorted((Path(__file__).resolve().parents[1] / "book").glob("*.ipynb")):
        text = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
        for prefix in re.findall(r":labelprefix: (\S+)", text):
            assert prefix not in prefixes, f"{path.name} reuses {prefix} of {prefixes[prefix]}"
            prefixes[prefix] = path.name
