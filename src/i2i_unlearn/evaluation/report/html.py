"""A report document as one self-contained HTML file: images inlined as data URIs, no external CSS, scripts,
fonts or URLs, so it opens offline anywhere. Every text is escaped: class and model names are user input."""
from __future__ import annotations

import base64
import html

from i2i_unlearn.evaluation.report.document import Cell, Document, Figure, Paragraph, Section, Table, Tables

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: #222; max-width: 1100px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
h3 { font-size: 1em; margin: 1.2em 0 .3em; }
.sub, .note, figcaption { color: #555; }
.note { max-width: 85ch; }
/* each table in a box of its own that scrolls sideways: a table wider than the page stays inside it */
.table-box { overflow-x: auto; margin: .4em 0 1.4em; }
/* narrow tables of one kind in a row, wrapping to the next line where the page is too narrow */
.side-by-side { display: flex; flex-wrap: wrap; gap: 0 2.5em; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding-bottom: .3em; }
th, td { padding: .25em .75em; text-align: left; white-space: nowrap; }
table.numbers th:not(:first-child), table.numbers td:not(:first-child) { text-align: right; }
td.text { white-space: normal; overflow-wrap: anywhere; }
/* headers wrap (a long header such as "steps back to the original's" would otherwise push the table past the page);
   the numbers under them do not */
thead th { border-top: 2px solid #222; border-bottom: 1px solid #222; font-weight: 600; vertical-align: bottom;
           white-space: normal; min-width: 5em; }
/* both sets' tables get the same <col> widths (the widest cell of either), so their columns line up where the page
   has room for them; on a narrower page the model names wrap first, but a column never gets narrower than its
   numbers (they never spill into the next column): the table scrolls in its box */
table.results { width: 100%; }
table.results th, table.results td:first-child { white-space: normal; }
table.results th, table.results td { padding: .25em .6em; }
tbody tr:last-child td { border-bottom: 2px solid #222; }
tr.ref td { color: #666; font-style: italic; }
tr.first-ref td { border-top: 1px solid #bbb; }
.forget { background: #fdeceb; }
.strong { font-weight: 700; }
.met { color: #1a7f37; font-weight: 600; }
.missed { color: #c62828; font-weight: 600; }
.unjudged { color: #777; }
.hash { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
figure { margin: 1em 0 1.6em; }
figure img { max-width: 100%; image-rendering: pixelated; border: 1px solid #ddd; }
figcaption { font-size: .9em; margin-top: .3em; }
"""
NO_BREAK = "\u00a0"   # between a header's label and its arrow: the arrow never wraps onto a line of its own
e = html.escape


def render_html(document: Document) -> str:
    parts = [f"<h1>{e(document.title)}</h1>", f'<p class="sub">{e(document.subtitle)}</p>']
    for section in document.sections:
        parts += _section(section)
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{e(document.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def _section(section: Section) -> list[str]:
    parts = [f"<h{section.level}>{e(section.title)}</h{section.level}>"]
    for block in section.blocks:
        if isinstance(block, Section):
            parts += _section(block)
        elif isinstance(block, Paragraph):
            parts.append(f'<p class="{e(block.style)}">{e(block.text)}</p>')
        elif isinstance(block, Table):
            parts.append(_table(block, "numbers" if block.numbers else ""))
        elif isinstance(block, Tables) and block.layout == "aligned":   # one grid, across the page
            widths = _column_widths(block.tables)
            parts += [_table(table, "numbers results", widths) for table in block.tables]
        elif isinstance(block, Tables):
            parts += ['<div class="side-by-side">', *(_table(table, "numbers") for table in block.tables), "</div>"]
        elif isinstance(block, Figure):
            parts.append(_figure(block))
        else:
            raise TypeError(f"not a block of a report: {block!r}")
    return parts


def _cell(tag: str, cell: Cell) -> str:
    attribute = f' class="{e(cell.style)}"' if cell.style else ""
    return f"<{tag}{attribute}>{e(cell.joined(NO_BREAK))}</{tag}>"


def _column_widths(tables: list[Table]) -> list[int]:
    """One width (in ch) per column that fits every cell of that column in all of `tables`: the longest cell, or
    a header's longest word (headers wrap at spaces, not at the no-break space before an arrow), plus the cell
    padding. A digit is 1ch wide and most other characters are narrower, so the widths fit; tables given the
    same widths line up."""
    def fits(table: Table) -> list[int]:
        return [max([len(word) for word in cells[0].joined(NO_BREAK).split(" ")]
                    + [len(cell.joined(NO_BREAK)) for cell in cells[1:]]) + 2
                for cells in zip(table.header, *table.rows)]
    return [max(column) for column in zip(*(fits(table) for table in tables))]


def _table(table: Table, style: str, widths: list[int] | None = None) -> str:
    """style "numbers": right-aligned columns after the first; "numbers results": also the results grid.
    `widths`: the columns' widths in ch (_column_widths). The table comes in a box that scrolls sideways."""
    lines = ['<div class="table-box">' + (f'<table class="{style}">' if style else "<table>")]
    if table.caption:
        lines.append(f"<caption>{e(table.caption)}</caption>")
    if widths:
        lines.append("<colgroup>" + "".join(f'<col style="width: {width}ch">' for width in widths) + "</colgroup>")
    lines.append("<thead><tr>" + "".join(_cell("th", c) for c in table.header) + "</tr></thead><tbody>")
    for i, row in enumerate(table.rows):
        row_style = table.row_styles[i] if table.row_styles else ""
        opening = f'<tr class="{row_style}">' if row_style else "<tr>"
        lines.append(opening + "".join(_cell("td", c) for c in row) + "</tr>")
    lines.append("</tbody></table></div>")
    return "\n".join(lines)


def _figure(figure: Figure) -> str:
    data = base64.b64encode(figure.path.read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{e(figure.caption)}">'
            f"<figcaption>{e(figure.caption)}</figcaption></figure>")
