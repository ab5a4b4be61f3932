"""Text formatting shared by the report and the model cards: the one Markdown escaper and the one number
formatter of the package. Kept free of imports from the rest of the package, so any module can use it."""
from __future__ import annotations

import re

MISSING = "–"   # shown for a null number (the same dash as evaluation.results.MISSING)
MARKDOWN_SPECIAL = "\\`*_[]<>|&"   # what the report escapes: code, emphasis, links, raw HTML, cell breaks, entities


def escape_markdown(text, special: str = MARKDOWN_SPECIAL) -> str:
    """`text` (any value, as its str) as literal Markdown on one line: a backslash before every character of
    `special` and a space for every newline, so user data (class, model and folder names) makes no emphasis,
    link, raw HTML, entity or table cell break."""
    return re.sub(f"([{re.escape(special)}])", r"\\\1", str(text)).replace("\n", " ")


def format_fixed(value: float | None, digits: int = 3) -> str:
    """A number with `digits` decimals, or MISSING for None."""
    return MISSING if value is None else f"{value:.{digits}f}"
