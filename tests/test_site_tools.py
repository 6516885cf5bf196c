"""The site's build tools: the reproduction table, the test-build config, nbval's output cache,
and the rule that the browser tests stay out of the unit run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import book_config  # noqa: E402
import nbval_cache  # noqa: E402
import reproduction_table as rt  # noqa: E402

PAPERS = ROOT / "tools" / "paper_numbers.json"
BIB = ROOT / "references.bib"
RESULTS = sorted((ROOT / "results").glob("*-seed*.json"))


def test_every_result_file_gives_rows_and_every_run_is_listed():
    text = rt.build(ROOT / "results", PAPERS, BIB)
    assert RESULTS
    for path in RESULTS:
        assert f"`{path.stem}`" in text, f"{path.name} missing from the appendix table"
    # every row of the results table has our number with a CI and a protocol
    rows = [line for line in text.splitlines() if line.startswith("| ") and "±" in line]
    assert len(rows) >= len(RESULTS)


def test_every_paper_number_cites_a_bibliography_key():
    bib = set(re.findall(r"^@\w+\{([^,\s]+),", BIB.read_text(encoding="utf-8"), re.M))
    numbers = json.loads(PAPERS.read_text(encoding="utf-8"))["numbers"]
    assert numbers
    for entry in numbers:
        assert entry["cite"] in bib, entry
        assert entry["table"] and isinstance(entry["verified"], bool), entry
        assert 0 < entry["mean"] <= 100
    assert len(rt.load_paper_numbers(PAPERS, BIB)) == len(numbers)


def test_a_paper_number_without_citation_is_an_error(tmp_path):
    numbers = json.loads(PAPERS.read_text(encoding="utf-8"))
    numbers["numbers"][0]["cite"] = ""
    bad = tmp_path / "papers.json"
    bad.write_text(json.dumps(numbers))
    with pytest.raises(ValueError, match="citation"):
        rt.load_paper_numbers(bad, BIB)
    numbers["numbers"][0]["cite"] = "nobody2099"
    bad.write_text(json.dumps(numbers))
    with pytest.raises(ValueError, match=r"nobody2099.*not in references\.bib"):
        rt.load_paper_numbers(bad, BIB)


@pytest.mark.parametrize("field", ["device", "command", "train_seconds", "protocol"])
def test_a_result_file_missing_a_field_is_an_error(tmp_path, field):
    source = ROOT / "results" / "protonet-omniglot-1shot-seed0.json"
    record = json.loads(source.read_text(encoding="utf-8"))
    del record["result"][field]
    (tmp_path / source.name).write_text(json.dumps(record))
    with pytest.raises(ValueError, match=rf"{source.name}: result file lacks the field "
                                         rf"'result\.{field}"):
        rt.build(tmp_path, PAPERS, BIB)


def test_a_run_resumed_with_other_threads_lists_every_count(tmp_path):
    source = ROOT / "results" / "protonet-omniglot-1shot-seed0.json"
    record = json.loads(source.read_text(encoding="utf-8"))
    (tmp_path / source.name).write_text(json.dumps(record))
    papers = rt.load_paper_numbers(PAPERS, BIB)
    run, _ = rt.rows_for(tmp_path / source.name, papers)
    assert run.device == record["result"]["device"]  # one count: the device says it
    record["result"].update(device="cpu (2 threads, x86_64)", threads=2, training_segments=[
        {"first": 1, "last": 415, "threads": 1, "processes": 1},
        {"first": 416, "last": 1500, "threads": 2, "processes": 1}])
    (tmp_path / source.name).write_text(json.dumps(record))
    run, _ = rt.rows_for(tmp_path / source.name, papers)
    assert run.device == ("cpu (2 threads, x86_64); trained with 1 thread (415 steps), then "
                          "2 threads (1085 steps)")
    record["result"].update(device="cuda (NVIDIA H200)", threads=1, training_segments=[
        {"first": 1, "last": 1500, "threads": 1, "processes": 1}])
    (tmp_path / source.name).write_text(json.dumps(record))
    run, _ = rt.rows_for(tmp_path / source.name, papers)
    assert run.device == "cuda (NVIDIA H200), 1 thread"  # the GPU's name is kept


def test_paper_numbers_land_in_the_matching_rows():
    papers = rt.load_paper_numbers(PAPERS, BIB)
    _, rows = rt.rows_for(ROOT / "results" / "protonet-omniglot-1shot-seed0.json", papers)
    by_setting = {r.setting: r for r in rows}
    assert by_setting["5-way 1-shot, omniglot"].paper.startswith(
        "98.8 {cite:p}`repro-snell2017prototypical`")
    assert by_setting["20-way 1-shot, omniglot"].paper.startswith("96.0 ")
    assert by_setting["5-way 1-shot, omniglot"].ours == "97.3 ± 0.3"  # 0.97327 ± 0.00292


def test_each_protocol_meets_the_papers_number_for_that_protocol():
    papers = rt.load_paper_numbers(PAPERS, BIB)
    _, rows = rt.rows_for(ROOT / "results" / "reptile-omniglot-5w1s-seed0.json", papers)
    by_protocol = {r.protocol.split(",")[0]: r.paper for r in rows if "omniglot" in r.setting}
    assert by_protocol["transductive"].startswith("97.68 ± 0.04 ")
    assert by_protocol["transductive"].endswith(", transductive")
    assert by_protocol["non-transductive"].startswith("95.39 ± 0.09 ")
    assert by_protocol["non-transductive"].endswith(", non-transductive")
    # a setting the paper reports under one protocol only: both rows show it, labelled
    _, rows = rt.rows_for(ROOT / "results" / "fomaml-omniglot-5w1s-seed0.json", papers)
    assert len(rows) == 2 and rows[0].paper == rows[1].paper
    assert rows[0].paper.startswith("98.3 ± 0.5 ") and rows[0].paper.endswith(", transductive")


def test_a_paper_number_with_an_unknown_protocol_is_an_error(tmp_path):
    numbers = json.loads(PAPERS.read_text(encoding="utf-8"))
    numbers["numbers"][0]["transductive"] = "yes"
    bad = tmp_path / "papers.json"
    bad.write_text(json.dumps(numbers))
    with pytest.raises(ValueError, match=r"transductive='yes'; allowed: true, false or null"):
        rt.load_paper_numbers(bad, BIB)


def test_appendix_page_includes_the_generated_table_with_its_key_prefix():
    page = (ROOT / "book" / "appendix_reproduction.md").read_text(encoding="utf-8")
    assert "{include} ../_build/generated/reproduction.md" in page
    assert f":keyprefix: {rt.KEY_PREFIX}" in page
    assert "_build/generated/reproduction.md" in (ROOT / "Makefile").read_text()


def test_test_build_config_uses_the_cache_or_no_execution(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "config.yml"
    book_config.main(str(out))
    config = yaml.safe_load(out.read_text())
    assert config["execute"]["execute_notebooks"] == "cache"
    assert config["execute"]["stderr_output"] == "remove"
    assert config["repository"] == yaml.safe_load((ROOT / "_config.yml").read_text())[
        "repository"]
    book_config.main(str(out), execute=False)
    assert yaml.safe_load(out.read_text())["execute"]["execute_notebooks"] == "off"


def _notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# A page"),
                nbformat.v4.new_code_cell("print('hello')"),
                nbformat.v4.new_code_cell("1 + 1")]
    nbformat.write(nb, str(path))
    return path


def test_stored_outputs_are_what_jupyter_book_finds_in_the_cache(tmp_path):
    from jupyter_cache import get_cache

    nb = _notebook(tmp_path / "page.ipynb")
    hello = nbformat.from_dict({"output_type": "stream", "name": "stdout", "text": "hello\n"})
    two = nbformat.from_dict({"output_type": "execute_result", "execution_count": 2,
                              "metadata": {}, "data": {"text/plain": "2"}})
    assert not nbval_cache.store(nb, {0: [hello]}, tmp_path / "cache")  # a cell did not run
    assert nbval_cache.store(nb, {0: [hello], 1: [two]}, tmp_path / "cache")
    # what myst-nb's cache mode does with the committed (output-free) notebook:
    cache = get_cache(str(tmp_path / "cache"))
    source = nbformat.read(str(nb), as_version=4)
    assert cache.match_cache_notebook(source) is not None
    _, merged = cache.merge_match_into_notebook(source)
    code = [c for c in merged.cells if c.cell_type == "code"]
    assert code[0].outputs[0]["text"] == "hello\n"
    assert code[1].outputs[0]["data"]["text/plain"] == "2"
    # an edited chapter no longer matches: the build executes it instead of showing stale output
    source.cells[1].source = "print('changed')"
    with pytest.raises(KeyError):
        cache.match_cache_notebook(source)


@pytest.mark.slow
def test_nbval_run_with_the_plugin_fills_the_cache(tmp_path):
    from jupyter_cache import get_cache

    nb = _notebook(tmp_path / "page.ipynb")
    env = {**__import__("os").environ, nbval_cache.ENV: str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, "-m", "pytest", str(nb), "--nbval-lax",
                          "--nbval-current-env", "-p", "tools.nbval_cache", "-q",
                          "-p", "no:cacheprovider", f"--rootdir={tmp_path}", "-W", "error"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "stored 1 executed notebook" in run.stdout
    _, merged = get_cache(str(tmp_path / "cache")).merge_match_into_notebook(
        nbformat.read(str(nb), as_version=4))
    outputs = [c.outputs for c in merged.cells if c.cell_type == "code"]
    assert outputs[0][0]["text"] == "hello\n" and outputs[1][0]["data"]["text/plain"] == "2"


def test_browser_tests_are_collected_only_when_asked_for():
    from tests.site import conftest as site

    class Config:
        def __init__(self, *args: str) -> None:
            self.args = list(args)

    inside = site.HERE / "test_pages.py"
    assert site.pytest_ignore_collect(inside, Config(str(ROOT / "tests"))) is True
    assert site.pytest_ignore_collect(inside, Config(str(ROOT / "tests" / "site"))) is None
    assert site.pytest_ignore_collect(inside, Config(f"{inside}::test_the_site_was_built")) is None
