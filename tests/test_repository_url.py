"""The repository URL is set once (_config.yml `repository.url`) and everything agrees with it:
the launch buttons (built from it by Jupyter Book; tests/site checks the built pages), the
chapters' Colab install cell, the README, the citation file and the workflows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
URL = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")
GITHUB = re.compile(r"https://github\.com/[\w.-]+/[\w.-]+")


def test_the_url_is_a_github_repository():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", URL), URL


def test_colab_install_cells_install_from_the_repository():
    installs = []
    for nb in sorted((ROOT / "book").glob("*.ipynb")):
        for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
            source = "".join(cell["source"])
            for found in re.findall(r"git\+(https://[^\s\"'@#]+)", source):
                installs.append((nb.name, found.removesuffix(".git").rstrip("/")))
    assert installs, "no chapter installs companion from the repository (the Colab cell)"
    wrong = [(name, url) for name, url in installs if url != URL]
    assert wrong == [], f"install lines that disagree with _config.yml ({URL}): {wrong}"


def test_readme_and_citation_use_the_repository_url():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert URL in readme
    others = {u for u in GITHUB.findall(readme) if u.rstrip("/") != URL}
    assert not {u for u in others if u.split("/")[3] == URL.split("/")[3]}, (
        f"README links another repository of the book's owner: {others}")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["repository-code"] == URL
    assert cff["preferred-citation"]["repository-code"] == URL


def test_workflows_do_not_hard_code_another_repository():
    for workflow in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        for url in GITHUB.findall(workflow.read_text(encoding="utf-8")):
            assert url.rstrip("/") == URL, f"{workflow.name}: {url}"


def test_citation_file_has_the_cff_1_2_0_required_fields():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0"
    assert cff["message"] and cff["title"]
    assert cff["authors"] and all("name" in a or "family-names" in a for a in cff["authors"])
    assert cff["type"] in ("software", "dataset")
    pref = cff["preferred-citation"]
    assert pref["type"] and pref["title"] and pref["authors"]
    allowed = {"cff-version", "message", "title", "authors", "abstract", "commit",
               "contact", "date-released", "doi", "identifiers", "keywords", "license",
               "license-url", "preferred-citation", "references", "repository",
               "repository-artifact", "repository-code", "type", "url", "version"}
    assert set(cff) <= allowed, set(cff) - allowed
