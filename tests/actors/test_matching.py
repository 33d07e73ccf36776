"""race.md's answer-matching rule, as a table (the same table runs end to end
in tests/app/test_race_app.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from actors.race_helpers import MATCHING
from hypothesis import given
from hypothesis import strategies as st

from roomactors.actors.matching import expected, is_correct, normalized


@pytest.mark.parametrize("given_answer, expected_answer, correct", MATCHING)
def test_matching_rule(given_answer: Any, expected_answer: Any, correct: bool) -> None:
    assert is_correct(expected(expected_answer), given_answer) is correct


def test_huge_exponents_do_not_stall() -> None:
    started = time.perf_counter()
    for text in ("1e999999999", "9" * 100, "1e-999999999", "1" * 50 + "/" + "3" * 49, "1e0000000000000021"):
        is_correct(expected(text), text)
        is_correct(expected("1"), text)
    assert time.perf_counter() - started < 0.5


@given(st.text(max_size=100))
def test_a_string_always_matches_itself_and_its_normalized_form(text: str) -> None:
    assert is_correct(expected(text), text)
    assert is_correct(expected(text), normalized(text))


@given(st.integers(min_value=-(10**40), max_value=10**40), st.integers(min_value=1, max_value=10**6))
def test_integers_and_fractions_match_as_rationals(numerator: int, denominator: int) -> None:
    text = f"{numerator * denominator}/{denominator}"
    assert is_correct(expected(numerator), text)
    assert is_correct(expected(text), numerator)
    assert is_correct(expected(str(numerator)), f"{numerator}.000")


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15))
def test_a_json_number_matches_its_shortest_decimal_text(value: float) -> None:
    assert is_correct(expected(repr(value)), value)
    assert is_correct(expected(value), repr(value))
