"""A report document as Markdown: figures linked by their file names beside report.md, every text escaped
(escape_markdown) so names from the results make no markup."""
from __future__ import annotations

from urllib.parse import quote

from i2i_unlearn.evaluation.report.document import Cell, Document, Figure, Paragraph, Section, Table, Tables
from i2i_unlearn.text import escape_markdown as md


def render_markdown(document: Document) -> str:
    lines = [f"# {md(document.title)}", "", md(document.subtitle), ""]
    for section in document.sections:
        lines += _section(section)
    return "\n".join(lines)


def _section(section: Section) -> list[str]:
    lines = [f"{'#' * section.level} {md(section.title)}", ""]
    for block in section.blocks:
        if isinstance(block, Section):
            lines += _section(block)
        elif isinstance(block, Paragraph):
            lines += [md(block.text if block.markdown is None else block.markdown), ""]
        elif isinstance(block, Table):
            lines += _table(block)
        elif isinstance(block, Tables):   # no layout in Markdown: one table after the other
            for table in block.tables:
                lines += _table(table)
        elif isinstance(block, Figure):
            lines += [f"![{md(block.key)}]({quote(block.link)})", ""]
            if block.caption_in_markdown:
                lines += [f"*{md(block.caption)}*", ""]
        else:
            raise TypeError(f"not a block of a report: {block!r}")
    return lines


def _cell(cell: Cell) -> str:
    text = md(cell.joined(" "))
    return f"**{text}**" if {"strong", "missed"} & set(cell.style.split()) else text


def _header_cell(cell: Cell) -> str:
    """A header cell; a forget class's column, shaded in the HTML, says so in words."""
    return _cell(Cell(f"{cell.text} (forget)", arrow=cell.arrow) if "forget" in cell.style.split() else cell)


def _table(table: Table) -> list[str]:
    """The caption in bold above; the columns after the first right-aligned if they hold numbers."""
    alignment = " ---: " if table.numbers else " --- "
    lines = [f"**{md(table.caption)}**", ""] if table.caption else []
    lines += ["| " + " | ".join(_header_cell(c) for c in table.header) + " |",
              "|" + "|".join([" --- "] + [alignment] * (len(table.header) - 1)) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    return lines + [""]
