"""Rules every chapter follows, checked without executing anything (nbval executes them)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part["chapters"]]
    return files


def _cells(nb: Path) -> list[dict]:
    return json.loads(nb.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def test_there_are_chapters():
    assert NOTEBOOKS, "book/ holds no notebooks"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(nb):
    dirty = [i for i, c in enumerate(_cells(nb)) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{nb.name}: cells {dirty} carry outputs; run `make strip`"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_every_cell_has_a_unique_id(nb):
    """nbformat 4.5 requires cell ids; nbval refuses a notebook whose cells lack them."""
    ids = [c.get("id") for c in _cells(nb)]
    missing = [i for i, cell_id in enumerate(ids) if not cell_id]
    assert not missing, f"{nb.name}: cells {missing} have no id (give each a unique one)"
    assert len(set(ids)) == len(ids), f"{nb.name}: repeated cell ids"


def test_every_page_is_in_the_toc_and_every_toc_entry_exists():
    toc = _toc_files()
    pages = sorted(str(p.relative_to(ROOT).with_suffix(""))
                   for p in (ROOT / "book").iterdir() if p.suffix in (".ipynb", ".md"))
    assert sorted(toc) == pages


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_structure(nb):
    cells = _cells(nb)
    code = "\n".join(_source(c) for c in cells if c["cell_type"] == "code")
    text = "\n".join(_source(c) for c in cells if c["cell_type"] == "markdown")
    assert re.search(r"^import companion|^from companion", code, re.M), "must import companion"
    assert "sys.path" not in code and "%cd" not in code, "no path hacks: install the package"
    assert re.search(r"^\s*assert ", code, re.M), "a chapter asserts its key results"
    for heading in ("Summary", "Exercises", "References"):
        assert re.search(rf"^#+ .*{heading}", text, re.M), f"missing a '{heading}' section"
    assert "{bibliography}" in text and ":keyprefix:" in text and ":labelprefix:" in text


def test_citation_keys_exist_and_use_the_chapter_prefix():
    bib = set(re.findall(r"^@\w+\{([^,]+),", (ROOT / "references.bib").read_text(), re.M))
    for page in [*NOTEBOOKS, *sorted((ROOT / "book").glob("*.md"))]:
        text = (page.read_text(encoding="utf-8") if page.suffix == ".md"
                else "\n".join(_source(c) for c in _cells(page)))
        prefixes = re.findall(r":keyprefix: (\S+)", text)
        if not prefixes:
            continue
        for key in re.findall(r"\{cite:[a-z]+\}`([^`]+)`", text):
            for k in key.split(","):
                k = k.strip()
                assert k.startswith(prefixes[0]), f"{page.name}: {k} lacks {prefixes[0]}"
                assert k[len(prefixes[0]):] in bib, f"{page.name}: {k} is not in references.bib"


def test_no_control_characters_in_notebook_sources():
    """A TeX macro written in a non-raw Python string ('\\approx' -> BEL + 'pprox') breaks
    MathJax on the page; no cell may carry such characters."""
    bad = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            found = bad.search("".join(cell["source"]))
            assert found is None, f"{path.name} cell {i}: control character {found.group()!r}"
