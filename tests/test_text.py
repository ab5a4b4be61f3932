"""text.py: the one Markdown escaper and the one number formatter, as the report and the model cards use them."""
import re

from i2i_unlearn.evaluation.results import MISSING as RESULTS_MISSING
from i2i_unlearn.model_card import _md as card_md
from i2i_unlearn.text import MARKDOWN_SPECIAL, MISSING, escape_markdown, format_fixed


def test_every_special_character_gets_a_backslash_and_nothing_else_changes():
    for char in MARKDOWN_SPECIAL:
        assert escape_markdown(f"a{char}b") == f"a\\{char}b"
    plain = "Cat, dog (2) · é ✓ #1 ~x~ {} = + - ! ' \" \t\u00a0"
    assert escape_markdown(plain) == plain


def test_escaped_text_is_inert_in_markdown_and_one_line():
    text = escape_markdown("**bold** _it_ `code` [link](http://x) <script> a|b &amp; back\\slash\nnext line")
    assert text == ("\\*\\*bold\\*\\* \\_it\\_ \\`code\\` \\[link\\](http://x) \\<script\\> a\\|b \\&amp; "
                    "back\\\\slash next line")
    assert "\n" not in text and re.search(r"(?<!\\)[<|*_`\[]", text) is None


def test_another_set_of_special_characters():
    assert escape_markdown("# a~b & c_d", special="#~") == "\\# a\\~b & c_d"
    assert escape_markdown("]^-\\", special="]^-\\") == "\\]\\^\\-\\\\"   # characters special in a regex class


def test_a_model_card_escapes_with_the_same_function_and_its_own_characters():
    # one line, whitespace runs as one space, & as an entity, # and ~ escaped too; any value, not only text
    assert card_md("a  b\n\tc & #1 ~x~ |y| <i>") == "a b c &amp; \\#1 \\~x\\~ \\|y\\| \\<i\\>"
    assert card_md(None) == "None" and card_md(1.5) == "1.5"


def test_the_results_page_escapes_with_the_same_function():
    # issue 31: bench_targets had an escaper of its own (all of these but &); the page came out byte-identical
    from i2i_unlearn.bench.page import sections, tables
    from i2i_unlearn.evaluation import bench_targets
    assert bench_targets.md is tables.md is sections.md is escape_markdown
    assert escape_markdown(None) == "None" and escape_markdown(1.5) == "1.5"   # any value, as its text
    assert escape_markdown("ours & co") == "ours \\& co"


def test_fixed_numbers_and_the_missing_dash():
    assert MISSING == RESULTS_MISSING == "–"
    assert format_fixed(None) == MISSING and format_fixed(None, 2) == MISSING
    assert format_fixed(0.12345) == "0.123" and format_fixed(2, 2) == "2.00" and format_fixed(-0.5, 1) == "-0.5"
    assert format_fixed(0.0001) == "0.000"   # fixed decimals: no switch to exponent notation
