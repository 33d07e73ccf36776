"""When a given answer counts as the card's answer (race.md's matching rule).

Both sides are trimmed, Unicode-NFKC-normalized, case-folded and have their
inner whitespace collapsed; they match when those texts are equal, or when
both read as exact rationals (``fractions.Fraction``: ``"4"``, ``"4.0"``,
``"8/2"`` and ``4`` are all 4) that are equal. A JSON number is read through
its shortest decimal form, so ``0.1`` is 1/10, not the binary float nearest
to it. A decimal exponent beyond ±20 is compared as text only: the exact
rational of ``1e999999999`` would take the server minutes to build.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Final

MAX_EXPONENT: Final = 20

_EXPONENT = re.compile(r"e[+-]?0*([0-9_]*)")


@dataclass(frozen=True)
class Expected:
    """A card's answer, prepared once per race so that checking is cheap."""

    text: str = field(repr=False)
    rational: Fraction | None = field(repr=False)


def as_text(value: str | int | float) -> str:
    """The text of an answer: a string as it is, a number in its shortest decimal form."""
    if isinstance(value, str):
        return value
    return repr(value) if isinstance(value, float) else str(value)


def normalized(text: str) -> str:
    """Trimmed, NFKC-normalized, case-folded, inner whitespace collapsed to one space."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def rational(text: str) -> Fraction | None:
    """``text`` (already normalized) as an exact rational, or None."""
    for match in _EXPONENT.finditer(text):
        digits = match.group(1).replace("_", "")
        if len(digits) > 2 or (digits and int(digits) > MAX_EXPONENT):
            return None  # text only: see the module docstring
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def expected(answer: str | int | float) -> Expected:
    text = normalized(as_text(answer))
    if isinstance(answer, int):
        return Expected(text, Fraction(answer))
    return Expected(text, rational(text))


def is_correct(card: Expected, given: str | int | float) -> bool:
    """Whether ``given`` matches the card's answer under race.md's rule."""
    if isinstance(given, int) and card.rational is not None:
        return card.rational == given  # exact, and no text for a huge integer
    text = normalized(as_text(given))
    if text == card.text:
        return True
    if card.rational is None:
        return False
    return rational(text) == card.rational
