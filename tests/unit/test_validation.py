"""What names and texts may hold: a pure check, the same for every field that takes one."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.validation import (
    MULTI_LINE,
    SEPARATORS_AND_BIDI,
    SINGLE_LINE,
    check_text,
    forbidden_character,
)

KEPT_EVERYWHERE = [
    "Claire Martin",
    "Élodie Dupont-Sainte-Marie",
    "O’Brien & Fils (conseil)",
    "Ωμέγα",
    "محمد\u200f",  # a right-to-left mark, as right-to-left writing needs
    "👩\u200d💼 Consultante",  # an emoji sequence joined by ZWJ
    "+33 6 12 34 56 78",
    "\u00a0Prix\u202f: 10\u00a0€",  # no-break spaces of French typography
]
REFUSED_EVERYWHERE = [
    "X\x00Y",
    "\x1b[31mrouge",
    "bell\x07",
    "del\x7f",
    "C1\x85next line",
    "C1\x9b",
    "line\u2028separator",
    "para\u2029separator",
    "evil\u202egpj.exe",  # a right-to-left override
    "isolate\u2066x\u2069",
    "embed\u202ax\u202c",
]
# (text, kept in a text of several lines)
LINE_BREAKS = [
    ("X\r\nBcc: someone@example.org", True),
    ("a\nb", True),
    ("a\rb", True),
    ("tab\there", True),
    ("vertical tab\x0b", False),
    ("form feed\x0c", False),
]


@pytest.mark.parametrize("text", KEPT_EVERYWHERE)
def test_ordinary_names_are_kept(text: str) -> None:
    assert forbidden_character(text) is None
    assert forbidden_character(text, multiline=True) is None


@pytest.mark.parametrize("text", REFUSED_EVERYWHERE)
def test_control_characters_are_refused_on_one_line_or_many(text: str) -> None:
    assert forbidden_character(text) is not None
    assert forbidden_character(text, multiline=True) is not None


@pytest.mark.parametrize(("text", "kept_on_several_lines"), LINE_BREAKS)
def test_line_breaks_and_tabs_only_where_lines_are_expected(
    text: str, kept_on_several_lines: bool
) -> None:
    assert forbidden_character(text) is not None
    assert (forbidden_character(text, multiline=True) is None) == kept_on_several_lines


def test_every_control_character_is_refused() -> None:
    """All of Unicode's category Cc, checked against the Unicode database itself."""
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if unicodedata.category(char) == "Cc":
            assert forbidden_character(f"a{char}b") == char
            assert (forbidden_character(f"a{char}b", multiline=True) is None) == (char in "\n\r\t")


@given(st.text(alphabet=st.characters(exclude_categories=("Cc", "Cs"))))
def test_text_without_controls_is_kept_unless_it_reorders_or_separates(text: str) -> None:
    found = forbidden_character(text)
    assert found is None or found in SEPARATORS_AND_BIDI


def test_the_message_names_the_field_once() -> None:
    errors = {"name": "already wrong"}
    check_text(errors, "name", "a\nb")
    check_text(errors, "headline", "a\nb")
    check_text(errors, "bio", "a\nb", multiline=True)
    check_text(errors, "intro", "a\x1bb", multiline=True)
    assert errors == {"name": "already wrong", "headline": SINGLE_LINE, "intro": MULTI_LINE}
