"""The repository's tools: the offline check of the built site, notebook stripping, the
per-notebook time limit; and the test suite's own guard against leaked global state."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
    site = _site(tmp_path, '<div class="cell_output"></div>'
                           '<img src="_static/images/logo_binder.svg">')
    (site / "_static" / "images").mkdir()
    (site / "_static" / "images" / "logo_binder.svg").write_text("<svg/>")
    (site / "_sources").mkdir()
    (site / "index.html").rename(site / "01_intro.html")
    (site / "_sources" / "01_intro.ipynb").write_text("{}")
    assert "shows no figure" in "\n".join(check_site.check(site, executed=True))
    (site / "_images").mkdir()
    (site / "_images" / "fig.png").write_bytes(b"png")
    (site / "01_intro.html").write_text('<html><div class="cell_output"></div>'
                                        '<img src="_images/fig.png"></html>')
    assert check_site.check(site, executed=True) == []


def test_an_executed_appendix_needs_outputs_but_no_figure(tmp_path):
    site = _site(tmp_path, "<p>code, no output</p>")
    (site / "_sources").mkdir()
    (site / "index.html").rename(site / "appendix.html")
    (site / "_sources" / "appendix.ipynb").write_text("{}")
    assert "no cell output" in "\n".join(check_site.check(site, executed=True))
    (site / "appendix.html").write_text('<html><div class="cell_output">3</div></html>')
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


def _book_plugin():
    spec = importlib.util.spec_from_file_location("book_conftest", ROOT / "book" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_notebook_limit_defaults_to_300_s_and_reads_the_environment():
    plugin = _book_plugin()
    assert plugin.notebook_limit({}) == 300.0
    assert plugin.notebook_limit({"COMPANION_NOTEBOOK_LIMIT_S": "420"}) == 420.0
    for bad in ("soon", "0", "-5", "nan", "inf"):
        with pytest.raises(pytest.UsageError, match="COMPANION_NOTEBOOK_LIMIT_S"):
            plugin.notebook_limit({"COMPANION_NOTEBOOK_LIMIT_S": bad})
    seconds = {"book/a.ipynb": 120.0, "book/b.ipynb": 301.5, "book/c.ipynb": 400.0}
    messages = plugin.over_limit(seconds, 300.0)
    assert [m.split()[0] for m in messages] == ["book/c.ipynb", "book/b.ipynb"]
    assert "took 301.5 s, over the hard limit of 300 s" in messages[1]


def test_notebook_limit_scales_with_a_slower_machine_never_down():
    plugin = _book_plugin()
    reference = plugin.REFERENCE_S
    assert plugin.speed_factor(2.5 * reference) == pytest.approx(2.5)
    assert plugin.speed_factor(0.5 * reference) == 1.0  # a faster machine keeps 300 s
    assert plugin.speed_factor(50 * reference) == plugin.MAX_FACTOR == 4.0  # a crowded one: 1200 s
    assert plugin.notebook_limit({}, plugin.speed_factor(2 * reference)) == pytest.approx(600.0)
    assert plugin.notebook_limit({"COMPANION_NOTEBOOK_LIMIT_S": "420"}, 3.0) == 420.0  # absolute
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="measured_s"):
            plugin.speed_factor(bad)
    seconds = plugin.calibration_seconds(repeats=1)
    assert 0 < seconds < 60 and seconds == seconds


def _notebook(source: str) -> dict:
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
            "source": source}
    return {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


@pytest.mark.slow
def test_a_notebook_over_the_hard_limit_fails_the_run(tmp_path):
    """nbval on a generated notebook that sleeps 2 s: it fails under a 1 s limit, naming the
    notebook and its time, and passes under the default (calibrated) limit."""
    shutil.copy(ROOT / "book" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "sleepy.ipynb").write_text(json.dumps(_notebook("import time\ntime.sleep(2)")))
    command = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p",
               "no:cacheprovider", "sleepy.ipynb"]
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}

    def run(**extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(command, cwd=tmp_path, env={**env, **extra}, capture_output=True,
                              text=True, timeout=300)

    over = run(COMPANION_NOTEBOOK_LIMIT_S="1")
    assert over.returncode == 1, over.stdout
    assert re.search(r"FAILED \(time\): sleepy\.ipynb took \d+\.\d s, over the hard limit of "
                     r"1 s", over.stdout), over.stdout
    assert "1 passed" in over.stdout  # the cells themselves passed: only the time fails
    within = run()
    assert within.returncode == 0, within.stdout
    assert "sleepy.ipynb" in within.stdout and "FAILED" not in within.stdout
    assert re.search(r"hard limit: 300 s x \d+\.\d\d \(this machine ran the calibration",
                     within.stdout), within.stdout  # the machine-relative limit, explained
    assert "calibration" not in over.stdout  # an absolute limit is not calibrated


LEAKY_TESTS = """
import os
import torch

THREADS = torch.get_num_threads()
CWD = os.getcwd()


def test_threads():
    torch.set_num_threads(THREADS + 1)


def test_environment():
    os.environ["COMPANION_TEST_LEAK"] = "1"


def test_cwd(tmp_path):
    os.chdir(tmp_path)


def test_dtype():
    torch.set_default_dtype(torch.float64)


def test_clean(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPANION_TEST_LEAK", "1")
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(5)


def test_nothing_leaked():
    assert torch.get_num_threads() == THREADS and os.getcwd() == CWD
    assert "COMPANION_TEST_LEAK" not in os.environ
    assert torch.get_default_dtype() == torch.float32
    assert not torch.equal(torch.get_rng_state(), torch.Generator().manual_seed(5).get_state())
"""


def test_the_suite_fails_a_test_that_leaves_global_state_behind(pytester):
    """tests/conftest.py's guard, run on tests that leak: each leak is an error naming the test
    and the setting, and the next test sees the settings restored."""
    pytester.makeconftest((ROOT / "tests" / "conftest.py").read_text())
    pytester.makepyfile(test_leaky=LEAKY_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
    result.assert_outcomes(passed=6, errors=4)
    out = result.stdout.str()
    for name, what in (("threads", "torch threads"), ("environment", "COMPANION_TEST_LEAK"),
                       ("cwd", "working directory"), ("dtype", "torch default dtype")):
        assert re.search(rf"test_leaky\.py::test_{name} left process-wide state behind "
                         rf"\(now restored\): [^\n]*{what}", out), out
