"""The payload rules of protocol.md, one by one, on the pure validation functions."""

from __future__ import annotations

from typing import Any

import pytest

from roomactors.actors import User
from roomactors.actors.validation import (
    ProtocolError,
    parse_create_room,
    parse_deck,
    parse_join_lobby,
    parse_leave_lobby,
    parse_room_id,
)

CARD = {"id": 1, "problem": "1/2+1/4", "answer": "3/4"}


def invalid(fn: Any, payload: object, *words: str) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        fn(payload)
    assert info.value.code == "invalid_payload"
    for word in words:
        assert word in info.value.message
    return info.value


@pytest.mark.parametrize("payload", [None, [], "x", 3, True, [{"id": 1}]])
def test_payload_must_be_an_object(payload: object) -> None:
    for fn in (parse_join_lobby, parse_leave_lobby, parse_create_room):
        invalid(fn, payload, "object")
    with pytest.raises(ProtocolError, match="invalid_payload"):
        parse_room_id(payload, "join_room")


@pytest.mark.parametrize("user_id", [1, 0, -5, 10**20, "a", "x" * 64])
def test_valid_user_ids(user_id: object) -> None:
    assert parse_join_lobby({"id": user_id}).id == user_id


@pytest.mark.parametrize("user_id", ["", "x" * 65, None, True, 1.5, 2.0, [], {}])
def test_invalid_user_ids(user_id: object) -> None:
    invalid(parse_join_lobby, {"id": user_id}, "id")
    invalid(parse_leave_lobby, {"id": user_id}, "id")


def test_user_id_missing() -> None:
    invalid(parse_join_lobby, {"username": "mia"}, "id")
    invalid(parse_leave_lobby, {}, "id")


def test_username_and_auth_level_rules() -> None:
    claim = parse_join_lobby({"id": 1, "username": "u" * 64, "auth_level": None, "extra": [1, 2]})
    assert (claim.username, claim.has_username, claim.auth_level, claim.has_auth_level) == ("u" * 64, True, None, True)
    invalid(parse_join_lobby, {"id": 1, "username": "u" * 65}, "username", "64")
    invalid(parse_join_lobby, {"id": 1, "auth_level": 3}, "auth_level")
    invalid(parse_join_lobby, {"id": 1, "username": ["mia"]}, "username")


def test_claim_keeps_omitted_fields() -> None:
    old = User(1, "mia", "teacher")
    assert parse_join_lobby({"id": 1}).apply_to(old) == old
    assert parse_join_lobby({"id": 1, "username": "m"}).apply_to(old) == User(1, "m", "teacher")
    assert parse_join_lobby({"id": 1, "auth_level": None}).apply_to(old) == User(1, "mia", None)
    assert parse_join_lobby({"id": 1}).apply_to(None) == User(1, None, None)


@pytest.mark.parametrize("room_id", [0, -1, 1.0, "1", True, None, [1]])
def test_room_ids_are_positive_integers(room_id: object) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_room_id({"id": room_id}, "join_room")
    assert info.value.code == "invalid_payload"


def test_room_id_ok_and_missing() -> None:
    assert parse_room_id({"id": 7, "junk": 1}, "join_room") == 7
    with pytest.raises(ProtocolError, match="needs the room id"):
        parse_room_id({}, "leave_room")


def test_create_room_minimal_and_trimming() -> None:
    request = parse_create_room({"name": "  Fractions \n", "deck": {"name": " Week 3 ", "flashcards": [CARD]}})
    assert request.name == "Fractions"
    assert request.host is None
    assert request.deck.info.name == "Week 3"
    assert request.deck.info.num_problems == 1
    assert request.deck.cards[0].answer == "3/4"


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, " " + "x" * 101, None, 5, ["a"]])
def test_room_name_rules(name: object) -> None:
    invalid(parse_create_room, {"name": name, "deck": {"name": "d", "flashcards": [CARD]}}, "name")


def test_room_name_of_100_characters_after_trimming() -> None:
    assert parse_create_room({"name": "  " + "x" * 100 + "  ", "deck": {"name": "d", "flashcards": [CARD]}}).name == "x" * 100


def test_create_room_missing_parts() -> None:
    invalid(parse_create_room, {"deck": {"name": "d", "flashcards": [CARD]}}, "name")
    invalid(parse_create_room, {"name": "r"}, "deck")
    invalid(parse_create_room, {"name": "r", "deck": "d"}, "deck")
    invalid(parse_create_room, {"name": "r", "deck": {"flashcards": [CARD]}}, "deck.name")


def test_create_room_host_is_validated() -> None:
    request = parse_create_room({"name": "r", "host": {"id": "u1", "username": "mia"}, "deck": {"name": "d", "flashcards": [CARD]}})
    assert request.host is not None and request.host.id == "u1"
    invalid(parse_create_room, {"name": "r", "host": {"id": ""}, "deck": {"name": "d", "flashcards": [CARD]}}, "host.id")
    invalid(parse_create_room, {"name": "r", "host": 5, "deck": {"name": "d", "flashcards": [CARD]}}, "host")


def test_flashcard_spellings_and_precedence() -> None:
    assert len(parse_deck({"name": "d", "flashcard": [CARD, CARD]}).cards) == 2
    both = parse_deck({"name": "d", "flashcard": [CARD, CARD], "flashcards": [CARD]})
    assert len(both.cards) == 1
    invalid(parse_deck, {"name": "d"}, "flashcards")
    invalid(parse_deck, {"name": "d", "flashcards": {"0": CARD}}, "array")


def test_card_count_bounds() -> None:
    invalid(parse_deck, {"name": "d", "flashcards": []}, "0 cards", "1 to 1000")
    assert len(parse_deck({"name": "d", "flashcards": [CARD] * 1000}).cards) == 1000
    invalid(parse_deck, {"name": "d", "flashcards": [CARD] * 1001}, "1001")


def test_card_field_limits_say_which_limit() -> None:
    """issue 10, finding 9: card fields have their own limits, and a deck a budget."""
    def card(**fields: Any) -> dict[str, Any]:
        return {"name": "d", "flashcards": [CARD, {"id": 2, "problem": "p", "answer": "a", **fields}]}

    assert parse_deck(card(problem="p" * 200, answer="a" * 100, id="i" * 64)).cards[1].problem == "p" * 200
    invalid(parse_deck, card(problem="p" * 201), "card 1", "problem has 201 characters", "at most 200")
    error = invalid(parse_deck, card(answer="s" * 101), "card 1", "answer has 101 characters", "at most 100")
    assert "sss" not in error.message
    invalid(parse_deck, {"name": "d", "flashcards": [{"id": 1, "problem": "p", "solution": "s" * 101}]},
            "solution has 101 characters")
    invalid(parse_deck, card(id="i" * 65), "card 1", "id has 65 characters", "at most 64")
    invalid(parse_deck, card(answer=10**100), "more than 100 digits")
    assert parse_deck(card(answer=10**99, problem=2**60)).cards[1].answer == 10**99


def test_deck_budget_counts_ids_problems_and_answers() -> None:
    cards = [{"id": i, "problem": "p" * 40, "answer": "a" * 6} for i in range(1000)]  # 46 + len(id) each
    total = sum(46 + len(str(i)) for i in range(1000))
    assert total <= 50_000
    assert len(parse_deck({"name": "d", "flashcards": cards}).cards) == 1000
    cards = [{"id": i, "problem": "p" * 60, "answer": "a"} for i in range(1000)]
    invalid(parse_deck, {"name": "d", "flashcards": cards}, "characters of card text", "at most 50000")


def test_solution_is_accepted_for_answer() -> None:
    card = parse_deck({"name": "d", "flashcards": [{"id": "c1", "problem": 2, "solution": 4}]}).cards[0]
    assert (card.id, card.problem, card.answer) == ("c1", 2, 4)
    card = parse_deck({"name": "d", "flashcards": [{"id": 1, "problem": "p", "answer": "a", "solution": "s"}]}).cards[0]
    assert card.answer == "a"


@pytest.mark.parametrize(
    "card, words",
    [
        ("x", ("card 0", "object")),
        ({"problem": "p", "answer": "a"}, ("no id",)),
        ({"id": 1.5, "problem": "p", "answer": "a"}, ("id",)),
        ({"id": 1, "answer": "a"}, ("no problem",)),
        ({"id": 1, "problem": None, "answer": "a"}, ("problem",)),
        ({"id": 1, "problem": "p"}, ("no answer",)),
        ({"id": 1, "problem": "p", "answer": True}, ("answer",)),
        ({"id": 1, "problem": "p", "solution": ["s"]}, ("solution",)),
    ],
)
def test_card_rules(card: object, words: tuple[str, ...]) -> None:
    invalid(parse_deck, {"name": "d", "flashcards": [card]}, *words)


def test_bad_answer_is_not_echoed() -> None:
    error = invalid(parse_deck, {"name": "d", "flashcards": [{"id": 1, "problem": "p", "answer": {"secret": "42"}}]})
    assert "42" not in error.message


def test_optional_deck_fields_and_unknown_fields_dropped() -> None:
    deck = parse_deck(
        {
            "name": "d",
            "id": 9,
            "description": None,
            "user_id": "t1",
            "user_name": "mia",
            "created": "2024-01-01",
            "changed": 1700000000.5,
            "private": False,
            "numProblems": 0,
            "color": "red",
            "flashcards": [CARD],
        }
    )
    assert deck.info.to_json() == {
        "id": 9,
        "name": "d",
        "description": None,
        "numProblems": 0,
        "user_id": "t1",
        "user_name": "mia",
        "created": "2024-01-01",
        "changed": 1700000000.5,
        "private": False,
    }


@pytest.mark.parametrize("field, value", [("id", [1]), ("description", {"a": 1}), ("private", float("nan"))])
def test_optional_deck_field_types(field: str, value: object) -> None:
    invalid(parse_deck, {"name": "d", field: value, "flashcards": [CARD]}, f"deck.{field}")


@pytest.mark.parametrize("field", ["description", "user_name", "created"])
def test_optional_deck_texts_are_bounded_because_every_list_carries_them(field: str) -> None:
    assert parse_deck({"name": "d", field: "x" * 1000, "flashcards": [CARD]}).info is not None
    invalid(parse_deck, {"name": "d", field: "x" * 1001, "flashcards": [CARD]}, f"deck.{field} has 1001 characters")


@pytest.mark.parametrize("value", [-1, 1.5, "3", True])
def test_num_problems_is_a_non_negative_integer(value: object) -> None:
    invalid(parse_deck, {"name": "d", "numProblems": value, "flashcards": [CARD]}, "numProblems")


def test_answers_stay_out_of_reprs() -> None:
    request = parse_create_room({"name": "r", "deck": {"name": "d", "flashcards": [{"id": 1, "problem": "p", "answer": "SECRET"}]}})
    assert "SECRET" not in repr(request)
    assert "SECRET" not in repr(request.deck)
    assert "SECRET" not in repr(request.deck.cards)
    assert "SECRET" not in str(request.deck.info.to_json())


def test_unknown_error_code_is_a_bug() -> None:
    with pytest.raises(ValueError):
        ProtocolError("oops", "no such code")
