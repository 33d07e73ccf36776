"""Room codes: alphabet, uniqueness among open rooms (and across nodes), randomness, case-insensitive lookup."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from roomactors.actors.codes import CODE_ALPHABET, CODE_LENGTH, ELSEWHERE_DRAWS, CodeBook, normalize_code


def test_codes_use_the_alphabet_without_look_alikes() -> None:
    assert len(CODE_ALPHABET) == 31 and not set("ILO01") & set(CODE_ALPHABET)
    book = CodeBook()
    codes = [book.issue(room_id) for room_id in range(1, 2001)]
    assert all(len(code) == CODE_LENGTH and set(code) <= set(CODE_ALPHABET) for code in codes)
    assert len(set(codes)) == len(codes)


def test_codes_are_not_in_sequence() -> None:
    """Consecutive rooms get unrelated codes: no shared prefix beyond chance, no order."""
    book = CodeBook()
    codes = [book.issue(room_id) for room_id in range(1, 1001)]
    assert codes != sorted(codes)
    same_prefix = sum(a[:3] == b[:3] for a, b in itertools.pairwise(codes))
    assert same_prefix <= 5  # chance: 999 / 31**3, about 0.03
    # every position takes (nearly) every character
    for position in range(CODE_LENGTH):
        assert len({code[position] for code in codes}) >= 28


def test_collisions_draw_again_and_released_codes_come_back() -> None:
    rng = random.Random(1)
    tiny = CodeBook(choice=lambda alphabet: rng.choice(alphabet[:2]))  # 64 codes only
    codes = {tiny.issue(room_id) for room_id in range(1, 31)}
    assert len(codes) == 30
    tiny.release(1)
    tiny.release(999)  # unknown: ignored
    assert len(tiny) == 29 and tiny.code_of(1) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 30)), max_size=80))
def test_lookup_matches_exactly_the_open_rooms(ops: list[tuple[bool, int]]) -> None:
    book = CodeBook()
    open_rooms: dict[int, str] = {}
    for create, room_id in ops:
        if create and room_id not in open_rooms:
            open_rooms[room_id] = book.issue(room_id)
        elif not create:
            book.release(room_id)
            open_rooms.pop(room_id, None)
        assert len(set(open_rooms.values())) == len(open_rooms)
        for rid, code in open_rooms.items():
            assert book.room_of(code) == rid
            assert book.room_of(code.lower()) == rid
            assert book.code_of(rid) == code


def test_normalize_code() -> None:
    assert normalize_code("abc234") == "ABC234"
    assert normalize_code("ABC23") is None  # too short
    assert normalize_code("ABC2345") is None
    assert normalize_code("ABC10O") is None  # look-alikes are not in the alphabet
    assert normalize_code("\ufb00\ufb00\ufb00") is None  # "ff" ligatures must not upper-case into a code
    assert normalize_code(" ABC23") is None  # not trimmed


def test_a_code_taken_by_another_node_s_room_is_drawn_again() -> None:
    """On a cluster the node's replica knows the other nodes' codes: those are skipped too."""
    rng = random.Random(7)
    drawn: list[str] = []
    elsewhere: set[str] = set()

    def choice(alphabet: str) -> str:
        return rng.choice(alphabet[:2])  # 64 codes: collisions on purpose

    probe = CodeBook(choice=choice)
    for room_id in range(1, 9):
        elsewhere.add(probe.issue(room_id))  # what "another node" holds: 8 of the 64 codes

    def taken(code: str) -> bool:
        drawn.append(code)
        return code in elsewhere

    book = CodeBook(choice=choice, taken_elsewhere=taken)
    codes = [book.issue(room_id) for room_id in range(1, 41)]
    assert len(set(codes)) == 40 and not set(codes) & elsewhere
    assert set(drawn) & elsewhere  # it did draw the other node's codes, and drew again
    assert all(code not in codes[:i] for i, code in enumerate(codes))


def test_a_check_that_always_says_taken_does_not_hang_the_lobby() -> None:
    asked: list[str] = []
    book = CodeBook(taken_elsewhere=lambda code: asked.append(code) is None)
    code = book.issue(1)
    assert len(asked) == ELSEWHERE_DRAWS and book.room_of(code) == 1
