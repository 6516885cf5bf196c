"""The repository's tools: the offline check of the built site, notebook stripping."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import check_site  # noqa: E402
import strip_notebooks  # noqa: E402


def _site(tmp_path: Path, body: str, mathjax: bool = True) -> Path:
    site = tmp_path / "html"
    (site / "_static" / "mathjax").mkdir(parents=True)
    if mathjax:
        (site / "_static" / "mathjax" / "tex-chtml.js").write_text("//")
    (site / "_static" / "style.css").write_text("body { color: black; }")
    (site / "index.html").write_text(f"<html><head>{body}</head><body></body></html>")
    return site


def test_clean_site_passes(tmp_path):
    site = _site(tmp_path, '<link rel="stylesheet" href="_static/style.css">'
                           '<a href="https://example.org">a link is fine</a>')
    assert check_site.check(site, executed=False) == []


def test_external_script_stylesheet_font_and_missing_files_fail(tmp_path):
    site = _site(tmp_path, '<script src="https://cdn.example.org/x.js"></script>'
                           '<link rel="stylesheet" href="//fonts.example.org/f.css">'
                           '<script src="_static/missing.js"></script>')
    (site / "_static" / "style.css").write_text("@font-face { src: url(https://x.org/f.woff) }")
    problems = "\n".join(check_site.check(site, executed=False))
    assert "cdn.example.org" in problems and "fonts.example.org" in problems
    assert "missing.js" in problems and "x.org/f.woff" in problems


def test_executed_chapter_needs_a_figure_not_just_icons(tmp_path):
    site = _site(tmp_path, '<img src="_static/images/logo_binder.svg">')
    (site / "_static" / "images").mkdir()
    (site / "_static" / "images" / "logo_binder.svg").write_text("<svg/>")
    (site / "_sources").mkdir()
    (site / "_sources" / "index.ipynb").write_text("{}")
    assert "shows no figure" in "\n".join(check_site.check(site, executed=True))
    (site / "_images").mkdir()
    (site / "_images" / "fig.png").write_bytes(b"png")
    (site / "index.html").write_text('<html><img src="_images/fig.png"></html>')
    assert check_site.check(site, executed=True) == []


def test_math_without_vendored_mathjax_fails(tmp_path):
    site = _site(tmp_path, '<span class="math">x</span>', mathjax=False)
    problems = "\n".join(check_site.check(site, executed=False))
    assert "MathJax missing" in problems and "does not load the vendored MathJax" in problems


def test_strip_notebook(tmp_path):
    nb = tmp_path / "a.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "execution_count": 3,
                                         "metadata": {"tags": ["x"], "collapsed": True},
                                         "outputs": [{"output_type": "stream"}],
                                         "source": ["1"]}],
                              "metadata": {"kernelspec": {}, "widgets": {}},
                              "nbformat": 4, "nbformat_minor": 5}))
    subprocess.run([sys.executable, str(ROOT / "tools" / "strip_notebooks.py"), str(nb)],
                   check=True, capture_output=True)
    cell = json.loads(nb.read_text())["cells"][0]
    assert cell["outputs"] == [] and cell["execution_count"] is None
    assert cell["metadata"] == {"tags": ["x"]}
    assert json.loads(nb.read_text())["metadata"] == {"kernelspec": {}}
    assert strip_notebooks.strip({"cells": []}) == {"cells": [], "metadata": {}}
