"""Turning chapters of blocks into one self-contained HTML page and a GitHub-flavoured Markdown file.

This is the only place that escapes text. HTML goes through `html.escape`; Markdown escapes the characters
that would start markup, `|` in table cells, and puts preformatted text in a fence longer than any run of
backticks inside it, so a drop sample or a completion can never break out of its box in either format. A
`Details` block is a `<details>` element in both (GitHub renders the Markdown inside one).
"""

from __future__ import annotations

import base64
import html
import re
from functools import partial
from typing import Callable

from textbooks.report.blocks import Block, Chapter, Details, Figure, Paragraph, Subheading, Table

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       max-width: 1040px; margin: 2em auto; padding: 0 1.2em; }
h1 { border-bottom: 2px solid #d0d7de; padding-bottom: .3em; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2em; margin-top: 2em; }
h4 { margin-bottom: .3em; }
table { border-collapse: collapse; margin: .8em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: .25em .7em; vertical-align: top; }
th { background: #f6f8fa; }
td.r, th.r { text-align: right; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: .6em .8em; overflow-x: auto;
      font-size: 13px; line-height: 1.4; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; }
figcaption { color: #59636e; font-size: 13px; }
details { margin: .6em 0; }
details > summary { cursor: pointer; color: #59636e; }
details[open] > summary { margin-bottom: .4em; }
nav ol { columns: 2; }
"""

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")
_BLOCK_START = re.compile(r"^(\s*)([#+-])")  # a heading, a list item, a rule
_NUMBERED_ITEM = re.compile(r"^(\s*\d+)([.)])(?=\s|$)")


def _md(text: str) -> str:
    """Plain text as Markdown that renders as exactly that text, on one line."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).splitlines()))
    for pattern in (_BLOCK_START, _NUMBERED_ITEM):
        escaped = pattern.sub(r"\1\\\2", escaped)
    return escaped


def _fence(text: str) -> str:
    runs = [len(run) for run in re.findall(r"`+", text)]
    return "`" * max(3, max(runs, default=0) + 1)


def _md_table(table: Table) -> str:
    align = table.align.ljust(len(table.columns), "l")
    lines = ["| " + " | ".join(_md(column) for column in table.columns) + " |",
             "|" + "|".join("---:" if side == "r" else ":---" for side in align) + "|"]
    lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in table.rows]
    return "\n".join(lines)


def _md_block(block: Block, image: Callable[[Figure], str]) -> str:
    if isinstance(block, Details):
        # GitHub renders Markdown inside <details> when blank lines set it apart; the summary is HTML.
        inner = "\n\n".join(_md_block(inner, image) for inner in block.blocks)
        return f"<details><summary>{html.escape(block.summary)}</summary>\n\n{inner}\n\n</details>"
    if isinstance(block, Paragraph):
        return _md(block.text)
    if isinstance(block, Subheading):
        return f"#### {_md(block.text)}"
    if isinstance(block, Table):
        return _md_table(block)
    if isinstance(block, Figure):
        return f"![{_md(block.caption)}]({image(block)})\n\n*{_md(block.caption)}*"
    fence = _fence(block.text)
    return f"{fence}text\n{block.text.rstrip(chr(10))}\n{fence}"


def to_markdown(title: str, intro: str, chapters: list[Chapter],
                image_path: Callable[[Chapter, Figure], str]) -> str:
    """The report as GitHub-flavoured Markdown; `image_path` gives each figure's relative file path."""
    parts = [f"# {_md(title)}", _md(intro)]
    for chapter in chapters:
        parts.append(f"## {_md(chapter.title)}")
        for section in chapter.sections:
            parts.append(f"### {_md(section.title)}")
            parts += [_md_block(block, partial(image_path, chapter)) for block in section.blocks]
    return "\n\n".join(parts) + "\n"


def _html_table(table: Table) -> str:
    align = table.align.ljust(len(table.columns), "l")

    def cells(tag: str, values: list[str]) -> str:
        return "".join(f'<{tag} class="{side}">{html.escape(str(value))}</{tag}>'
                       for side, value in zip(align, values))

    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in table.rows)
    return f"<table><thead><tr>{cells('th', table.columns)}</tr></thead><tbody>{body}</tbody></table>"


def _html_block(block: Block) -> str:
    if isinstance(block, Details):
        inner = "\n".join(_html_block(inner) for inner in block.blocks)
        return f"<details><summary>{html.escape(block.summary)}</summary>\n{inner}\n</details>"
    if isinstance(block, Paragraph):
        return f"<p>{html.escape(block.text)}</p>"
    if isinstance(block, Subheading):
        return f"<h4>{html.escape(block.text)}</h4>"
    if isinstance(block, Table):
        return _html_table(block)
    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        caption = html.escape(block.caption)
        return (f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
                f"<figcaption>{caption}</figcaption></figure>")
    return f"<pre><code>{html.escape(block.text)}</code></pre>"


def to_html(title: str, intro: str, chapters: list[Chapter]) -> str:
    """The report as one HTML page with inline CSS and images as data: URIs: no other file, no script."""
    contents = "".join(f'<li><a href="#{html.escape(chapter.key)}">{html.escape(chapter.title)}</a></li>'
                       for chapter in chapters)
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(intro)}</p>", f"<nav><ol>{contents}</ol></nav>"]
    for chapter in chapters:
        parts.append(f'<h2 id="{html.escape(chapter.key)}">{html.escape(chapter.title)}</h2>')
        for section in chapter.sections:
            parts.append(f"<h3>{html.escape(section.title)}</h3>")
            parts += [_html_block(block) for block in section.blocks]
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
