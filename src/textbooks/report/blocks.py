"""What a report section is made of: a title and a list of plain blocks.

Sections build blocks, never HTML or Markdown, so that `render.py` is the one place that escapes text and
both report formats always say the same thing. Every string in a block is plain text (a drop sample may hold
`<script>`, a `|` or a code fence); the renderers escape it for their format.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Subheading:
    text: str


@dataclass(frozen=True)
class Table:
    """Rows of cells under `columns`; `align` holds one `l` or `r` per column (numbers read best on the right)."""

    columns: list[str]
    rows: list[list[str]]
    align: str = ""


@dataclass(frozen=True)
class Figure:
    """A PNG image; `name` becomes part of its file name in `report_files/`: unique within a stage's chapter."""

    name: str
    png: bytes
    caption: str


@dataclass(frozen=True)
class Preformatted:
    """Text shown as is, in a fixed-width font (code, config, drop samples)."""

    text: str


@dataclass(frozen=True)
class Details:
    """Blocks folded away under a one-line `summary` that a reader opens when they want them (settings, prompts)."""

    summary: str
    blocks: list[Block]


Block = Paragraph | Subheading | Table | Figure | Preformatted | Details


def flatten(blocks: list[Block]) -> list[Block]:
    """`blocks` with the contents of every `Details` in place, depth first: where to look for figures."""
    found: list[Block] = []
    for block in blocks:
        found.append(block)
        if isinstance(block, Details):
            found += flatten(block.blocks)
    return found


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Chapter:
    """A top-level part of the report (the overview, or one stage); `key` names its anchor and image files."""

    title: str
    key: str
    sections: list[Section]
