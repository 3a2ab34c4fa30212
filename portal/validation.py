"""What a name or a text may hold, checked the same way wherever one is written.

Names and other texts of one line (user and expert names, a headline, pack names, phone
numbers, notes, calendar names, addresses) refuse every control character (Unicode
category Cc: NUL, escape, tab, CR and LF, the C1 controls), the line and paragraph
separators U+2028 and U+2029, and the bidirectional embeddings, overrides and isolates
(U+202A to U+202E, U+2066 to U+2069), which make a text display in another order than it
is written. Such characters break email headers and files, or hide what a text says.
Texts of several lines (a biography, the charter's texts, questions and answers) keep line
breaks and tabs (LF, CR, tab) and refuse the rest. The right-to-left and left-to-right
marks (U+200E, U+200F) and the zero-width joiners stay allowed: right-to-left writing and
emoji need them.
"""

from __future__ import annotations

import re

from portal.errors import N_

MAX_ID = 2**31 - 1  # ids (and amounts) are 32-bit integers in the database
DIGITS = frozenset("0123456789")  # str.isdigit() also takes "²" and other scripts' digits

# Refused besides the control characters (category Cc, exactly U+0000-U+001F and
# U+007F-U+009F since Unicode 1.1): the separators, the bidirectional controls.
SEPARATORS_AND_BIDI = "\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_ONE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{SEPARATORS_AND_BIDI}]")
_SEVERAL_LINES = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{SEPARATORS_AND_BIDI}]")

SINGLE_LINE = N_("Line breaks and invisible control characters are not allowed here.")
MULTI_LINE = N_("This text holds an invisible control character: remove it (line breaks are fine).")


def forbidden_character(text: str, *, multiline: bool = False) -> str | None:
    """The first character `text` may not hold, or None when it holds none."""
    found = (_SEVERAL_LINES if multiline else _ONE_LINE).search(text)
    return found.group() if found else None


def check_text(errors: dict[str, str], field: str, text: str, *, multiline: bool = False) -> None:
    """Add a message for `field` to `errors` (unless it has one) if `text` holds a character
    it may not."""
    if field not in errors and forbidden_character(text, multiline=multiline) is not None:
        errors[field] = MULTI_LINE if multiline else SINGLE_LINE


def whole_number(text: object, most: int = MAX_ID) -> int | None:
    """A whole number written in ASCII digits, from 0 to `most` (an id at most by default),
    or None: "²" or "١" are digits to Python but not numbers anyone means here."""
    if not (isinstance(text, str) and text and len(text) <= len(str(most))):
        return None
    if not all(c in DIGITS for c in text):
        return None
    number = int(text)
    return number if number <= most else None
