"""A report page as a browser renders it: headless Chromium loads the file and hands back its DOM.

Tests assert on what a reader's browser builds from the page (the headings, the text, the elements), not on
the HTML string the report wrote: a completion that broke out of its `<pre>` would show up here as an element.
Where no Chromium is installed (Debian: `apt-get install chromium`) the test skips and says so.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
HEADINGS = ("h1", "h2", "h3", "h4")


@dataclass
class Rendered:
    """What the browser built: every element's tag counted, the headings, and the text under each heading."""

    tags: Counter = field(default_factory=Counter)
    headings: list[tuple[str, str]] = field(default_factory=list)  # (tag, text) in page order
    summaries: list[str] = field(default_factory=list)  # the text of every <details>' <summary>
    parts: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (h2, h3) -> the text under them

    @property
    def text(self) -> str:
        return "".join(piece for pieces in self.parts.values() for piece in pieces)

    def under(self, chapter: str, section: str | None = None) -> str:
        """The text under the h2 `chapter` (all of it, or only under its h3 `section`)."""
        return "".join(piece for (h2, h3), pieces in self.parts.items()
                       if h2 == chapter and section in (None, h3) for piece in pieces)


class _DomReader(HTMLParser):
    BREAKS = (*HEADINGS, "p", "pre", "tr", "li", "summary", "figcaption")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Rendered()
        self.open: list[str] = []
        self.chapter = self.section = ""
        self.collecting: list[str] | None = None  # the text of the heading or summary being read

    def _add(self, text: str) -> None:
        self.page.parts.setdefault((self.chapter, self.section), []).append(text)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.page.tags[tag] += 1
        self.open.append(tag)
        if tag in self.BREAKS:
            self._add("\n")
        if tag in HEADINGS or tag == "summary":
            self.collecting = []

    def handle_endtag(self, tag: str) -> None:
        if tag in self.open:
            while self.open.pop() != tag:
                pass
        if (tag in HEADINGS or tag == "summary") and self.collecting is not None:
            text, self.collecting = "".join(self.collecting).strip(), None
            if tag == "summary":
                self.page.summaries.append(text)
            else:
                self.page.headings.append((tag, text))
                if tag == "h2":
                    self.chapter, self.section = text, ""
                elif tag == "h3":
                    self.section = text
        if tag in self.BREAKS or tag in ("td", "th"):
            self._add(" " if tag in ("td", "th") else "\n")

    def handle_data(self, text: str) -> None:
        if {"style", "title", "script"} & set(self.open):
            return
        if self.collecting is not None:
            self.collecting.append(text)
        self._add(text)


def chromium() -> str:
    """The headless browser to render with; skips the test where there is none."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium), so the report cannot be "
                "checked as a browser renders it")


def render(page: Path) -> Rendered:
    """`page` loaded by headless Chromium (no network, a throw-away profile); its DOM, read back."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        # --no-sandbox: Chromium's own sandbox refuses to start as root, which CI containers often are.
        result = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                 f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "<body" in result.stdout, result.stderr[-2000:]
    reader = _DomReader()
    reader.feed(result.stdout)
    reader.close()
    return reader.page
