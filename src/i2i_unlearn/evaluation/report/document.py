"""The report as one document: a title, a subtitle and sections of paragraphs, tables and figures.

build.py decides what goes in it and in which order; html.py and markdown.py render the same document, each
in its own markup, so the two formats can not drift apart. All text here is plain (unescaped): each renderer
escapes it for its format.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Union


@dataclass(frozen=True)
class Cell:
    """One table cell. `style`: space-separated marks, of strong, forget, met, missed, unjudged, hash, text (HTML
    classes; Markdown shows strong and missed in bold and names a forget column in its header). `arrow`: a
    metric's better direction after its label, kept beside it where an HTML header wraps."""
    text: str
    style: str = ""
    arrow: str = ""

    @classmethod
    def of(cls, value: Union[Cell, str, tuple[str, str]]) -> Cell:
        """A cell from its text, or from (text, style)."""
        if isinstance(value, Cell):
            return value
        if isinstance(value, tuple):
            return cls(*value)
        return cls(value)

    def joined(self, space: str) -> str:
        """The text, with the arrow after `space` if there is one."""
        return f"{self.text}{space}{self.arrow}" if self.arrow else self.text


@dataclass(frozen=True)
class Table:
    """A header and rows of cells (given as Cell, text or (text, style)), with an optional caption.
    `numbers`: the columns after the first are numbers (right-aligned). `row_styles`: an HTML class per row
    (ref, first-ref: reference rows, set apart)."""
    header: list
    rows: list
    caption: str = ""
    numbers: bool = True
    row_styles: list = field(default_factory=list)

    def __post_init__(self):
        object.__setattr__(self, "header", [Cell.of(cell) for cell in self.header])
        object.__setattr__(self, "rows", [[Cell.of(cell) for cell in row] for row in self.rows])


@dataclass(frozen=True)
class Tables:
    """Tables of one kind shown together. layout "aligned": one grid (the same column widths) across the page,
    for tables to be read against each other; "side-by-side": narrow tables in a row that wraps."""
    tables: list
    layout: str


@dataclass(frozen=True)
class Paragraph:
    """Text. `style`: its HTML class (note: an explanation; sub: a line under a heading). `markdown`: the text
    in Markdown where it has to differ (it explains markup Markdown lacks), else None."""
    text: str
    style: str = "note"
    markdown: str | None = None


@dataclass(frozen=True)
class Figure:
    """A PNG: `path`, inlined into the HTML; `link`, its file name beside report.md; `key`, its Markdown alt text.
    `caption_in_markdown`: False where the Markdown has the caption just above it already."""
    key: str
    path: Path
    link: str
    caption: str
    caption_in_markdown: bool = True


Block = Union[Paragraph, Table, Tables, Figure, "Section"]


@dataclass(frozen=True)
class Section:
    """A heading (level 2, or 3 inside a section) and its blocks, in order."""
    title: str
    blocks: list[Block]
    level: int = 2


@dataclass(frozen=True)
class Document:
    title: str
    subtitle: str
    sections: list[Section]
