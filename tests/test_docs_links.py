"""The README and the docs/ pages: every relative link points at a file (and heading) that exists.

Links are the inline Markdown ones, `[text](target)`, outside code; a `#anchor` must name a heading
of the target page, by GitHub's rule (lower case, punctuation dropped, spaces to hyphens).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])
DOCS_PAGES = sorted((REPO / "docs").glob("*.md"))
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
EXTERNAL = ("http://", "https://", "mailto:")


def prose(text: str) -> str:
    """The page without its fenced code blocks."""
    return FENCE.sub("", text)


def links(page: Path) -> list[str]:
    """The targets of the page's inline links, outside code."""
    return LINK.findall(INLINE_CODE.sub("", prose(page.read_text(encoding="utf-8"))))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, only word characters, hyphens and spaces, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a page (a repeated heading gets -1, -2... as on GitHub)."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(prose(page.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return found


def test_the_pages_are_found():
    names = {page.relative_to(REPO).as_posix() for page in PAGES}
    assert {"README.md", "docs/images.md", "docs/tables.md", "docs/install.md"} <= names


def test_slug_follows_githubs_rule():
    assert slug("Tables from `s3a://`") == "tables-from-s3a"
    assert slug("Parquet: `export_parquet`") == "parquet-export_parquet"
    assert slug("Today's folder format") == "todays-folder-format"
    assert slug("How the job is built, and why") == "how-the-job-is-built-and-why"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO).as_posix())
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        if target.startswith(EXTERNAL):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.relative_to(REPO)}")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("page", DOCS_PAGES, ids=lambda page: page.name)
def test_every_docs_page_says_what_it_covers_and_links_back(page):
    lines = [line for line in page.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert lines[0].startswith("# "), f"{page.name} does not start with its title"
    assert "](../README.md)" in lines[1], f"{page.name}: the line under the title must link back to the README"
