"""Check that the built website can be read offline.

Fails if any page loads a script, stylesheet, image or frame from another host, if a
stylesheet pulls fonts or imports from another host, if a page with math does not load the
vendored MathJax, or if a referenced local file is missing. With ``--executed`` it also checks
that every page built from a notebook shows cell outputs and every numbered chapter at least
one figure (the site must show
what the code produced).

Usage: python tools/check_site.py _build/html [--executed]
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])([^'")\s]+)""", re.IGNORECASE)


class _Resources(HTMLParser):
    """Collects the URLs a browser fetches to render the page (not the links a reader follows)."""

    def __init__(self) -> None:
        super().__init__()
        self.fetched: list[str] = []
        self.has_math = False
        self.images = 0  # figures produced by notebook cells

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("script", "img", "iframe", "source", "video", "audio") and a.get("src"):
            self.fetched.append(a["src"])
        if tag == "link" and set(a.get("rel", "").split()) & {"stylesheet", "preload", "icon"}:
            self.fetched.append(a.get("href", ""))
        if tag == "img" and ("_images/" in a.get("src", "")
                             or a.get("src", "").startswith("data:image")):
            self.images += 1  # a figure produced by a cell (not a theme icon)
        if "math" in a.get("class", "").split():
            self.has_math = True


def _pages(site: Path) -> list[Path]:
    """The site's pages (not the theme's Jinja templates that ship inside _static/)."""
    skip = {"_static", "_sources", "_images"}
    return [p for p in sorted(site.rglob("*.html"))
            if not skip & set(p.relative_to(site).parts)]


CHAPTER = re.compile(r"^\d\d_.*\.html$")  # numbered chapters (appendix notebooks need no figure)


def check(site: Path, executed: bool) -> list[str]:
    problems: list[str] = []
    mathjax = site / "_static" / "mathjax" / "tex-chtml.js"
    if not mathjax.is_file():
        problems.append(f"vendored MathJax missing: {mathjax}")
    for page in _pages(site):
        parser = _Resources()
        parser.feed(page.read_text(encoding="utf-8"))
        rel = page.relative_to(site)
        for url in parser.fetched:
            if EXTERNAL.match(url):
                problems.append(f"{rel}: loads {url} from another host")
            elif url and not url.startswith(("data:", "#")):
                target = (page.parent / unquote(urlsplit(url).path)).resolve()
                if not target.exists():
                    problems.append(f"{rel}: references missing file {url}")
        if parser.has_math and "_static/mathjax/tex-chtml.js" not in page.read_text():
            problems.append(f"{rel}: has math but does not load the vendored MathJax")
        notebook_source = site / "_sources" / rel.with_suffix(".ipynb")
        if executed and notebook_source.exists():
            if "cell_output" not in page.read_text(encoding="utf-8"):
                problems.append(f"{rel}: notebook page shows no cell output (was it executed?)")
            elif CHAPTER.match(rel.name) and parser.images == 0:
                problems.append(f"{rel}: chapter page shows no figure (was it executed?)")
    for css in sorted(site.rglob("*.css")):
        for url in CSS_URL.findall(css.read_text(encoding="utf-8", errors="replace")):
            if EXTERNAL.match(url):
                problems.append(f"{css.relative_to(site)}: pulls {url} from another host")
    return problems


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 1 or not Path(args[0]).is_dir():
        print(__doc__)
        return 2
    site = Path(args[0])
    problems = check(site, executed="--executed" in argv)
    pages = len(_pages(site))
    if problems:
        print(f"check_site: {len(problems)} problem(s) in {pages} pages:")
        print("\n".join(f"  - {p}" for p in problems))
        return 1
    print(f"check_site: {pages} pages render offline (no external resources, MathJax vendored)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
