"""The room protocol's payload rules: raw JSON in, typed values or ``ProtocolError`` out.

Pure functions, no actor and no I/O, so that every rule of ``protocol.md`` can be
tested on its own and the actors only ever see values that are already valid.
Unknown fields are dropped here; nothing downstream sees them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .records import Card, Deck, DeckInfo, Scalar, User, UserId

MAX_ID_CHARS: Final = 64
MAX_USER_TEXT_CHARS: Final = 64
MAX_NAME_CHARS: Final = 100
MAX_TOKEN_CHARS: Final = 64
"""A seat ``token`` as a client sends it back (the server's are 24 characters)."""
MAX_CREDENTIAL_CHARS: Final = 4096
"""A signed identity (a JWT) in ``join_lobby {credential}``."""
MAX_CARDS: Final = 1000
MAX_PROBLEM_CHARS: Final = 200
"""A card's ``problem`` (a string; numbers are short by nature)."""
MAX_ANSWER_CHARS: Final = 100
"""A card's ``answer`` (and what a player may give: race.md's 100 characters)."""
MAX_CARD_ID_CHARS: Final = 64
"""A card's string ``id``."""
MAX_DECK_CHARS: Final = 50_000
"""The deck budget: all cards' ids, problems and answers together, in characters.
A room keeps its deck for its whole life, and rooms multiply (issue 10,
finding 9): 1000 cards of the longest fields would hold ~364,000 characters per
room; this keeps a room's deck within ~50,000 (a generous classroom deck of
1000 cards averages 50 characters a card)."""
MAX_DECK_TEXT_CHARS: Final = 1000
"""The deck's optional text fields (``description``, ``user_name``, ...) travel in
every ``updaterooms`` to every client, so they are bounded (protocol.md:
``invalid_payload`` for a field of the wrong size); a deck's cards stay in its room."""

ERROR_CODES: Final = frozenset(
    {
        "invalid_payload",
        "not_in_lobby",
        "already_in_room",
        "room_not_found",
        "room_full",
        "not_in_room",
        "forbidden",
        "identity_mismatch",
        "too_many_rooms",
        "rate_limited",
        "internal",
        # race.md, in the order they are checked after room_not_found
        "not_host",
        "not_racing",
        "race_in_progress",
        "no_players",
        "race_not_started",
        "race_over",
        "wrong_card",
        "race_not_found",
        "banned",
        "room_locked",
        # race.md, "Identity": checked at step 3
        "identity_taken",
        "unauthenticated",
        # docs/cluster.md: a room's node did not answer a relayed command in time
        "node_unavailable",
    }
)


class ProtocolError(Exception):
    """A command the client got wrong (or that cannot be done right now).

    Carries the protocol's error code and a message that says what to do; it
    becomes ``{"ok": false, "error": {...}}`` or a ``rejected`` event.
    """

    def __init__(self, code: str, message: str) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def to_ack(self) -> dict[str, Any]:
        return {"ok": False, "error": {"code": self.code, "message": self.message}}


def invalid(message: str) -> ProtocolError:
    return ProtocolError("invalid_payload", message)


@dataclass(frozen=True)
class UserClaim:
    """A ``join_lobby`` payload (or a ``create_room`` host): an id, and the profile
    fields the client actually sent, so that omitted ones keep their old value."""

    id: UserId
    username: str | None = None
    auth_level: str | None = None
    has_username: bool = False
    has_auth_level: bool = False
    token: str | None = field(default=None, repr=False)
    """The seat token from an earlier ack (race.md, "Identity"); never logged."""

    def apply_to(self, current: User | None) -> User:
        """The user after this claim: given fields replace, omitted ones are kept."""
        base = current if current is not None else User(self.id)
        return User(
            self.id,
            self.username if self.has_username else base.username,
            self.auth_level if self.has_auth_level else base.auth_level,
        )


@dataclass(frozen=True)
class CreateRoomRequest:
    name: str
    deck: Deck
    host: UserClaim | None
    listed: bool = True
    """False: in no list and no feed, joined by code only (see ``feed_validation.parse_listed``)."""


# --- field helpers ---------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def require_object(payload: object, command: str) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise invalid(f"{command} takes one JSON object, got {_json_type(payload)}")
    return payload


def is_number(value: object) -> bool:
    """A finite JSON number (booleans are not numbers)."""
    return _is_number(value)


def json_type(value: object) -> str:
    """How a refusal names a wrong value's type (never its content)."""
    return _json_type(value)


def shown(value: object) -> str:
    """A wrong value as a refusal may quote it (see ``_shown``)."""
    return _shown(value)


def _shown(value: object) -> str:
    """A wrong value as a refusal may quote it: small numbers as they are, anything
    else by its type. Never ``repr`` a client's value: 10,000 nested arrays make
    repr raise RecursionError (in the lobby's task) and a huge one is echoed back."""
    if _is_number(value) and abs(value) < 10**15:  # type: ignore[arg-type]
        return repr(value)
    return _json_type(value)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def parse_user_id(value: object, where: str = "id") -> UserId:
    if _is_int(value):
        return value  # type: ignore[return-value]
    if isinstance(value, str):
        if not value:
            raise invalid(f"{where} must not be empty")
        if len(value) > MAX_ID_CHARS:
            raise invalid(f"{where} has {len(value)} characters; at most {MAX_ID_CHARS} are allowed")
        return value
    raise invalid(f"{where} must be an integer or a string, got {_json_type(value)}")


def _optional_text(raw: Mapping[str, Any], key: str, where: str) -> tuple[str | None, bool]:
    if key not in raw:
        return None, False
    value = raw[key]
    if value is None:
        return None, True
    if not isinstance(value, str):
        raise invalid(f"{where}{key} must be a string or null, got {_json_type(value)}")
    if len(value) > MAX_USER_TEXT_CHARS:
        raise invalid(f"{where}{key} has {len(value)} characters; at most {MAX_USER_TEXT_CHARS} are allowed")
    return value, True


def parse_user_claim(raw: object, where: str = "") -> UserClaim:
    """A user object ``{id, username?, auth_level?}``; ``where`` prefixes field names
    in messages (``"host."``)."""
    if not isinstance(raw, Mapping):
        raise invalid(f"{where.rstrip('.') or 'the payload'} must be an object, got {_json_type(raw)}")
    if "id" not in raw:
        raise invalid(f"{where}id is missing")
    user_id = parse_user_id(raw["id"], f"{where}id")
    username, has_username = _optional_text(raw, "username", where)
    auth_level, has_auth_level = _optional_text(raw, "auth_level", where)
    token = raw.get("token")
    if token is not None:
        if not isinstance(token, str):
            raise invalid(f"{where}token must be the string from your join_lobby ack, or null; got {_json_type(token)}")
        if len(token) > MAX_TOKEN_CHARS:
            raise invalid(f"{where}token has {len(token)} characters; a seat token has at most {MAX_TOKEN_CHARS}")
    return UserClaim(user_id, username, auth_level, has_username, has_auth_level, token)


def _trimmed_name(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise invalid(f"{where} must be a string, got {_json_type(value)}")
    name = value.strip()
    if not name:
        raise invalid(f"{where} must not be empty")
    if len(name) > MAX_NAME_CHARS:
        raise invalid(f"{where} has {len(name)} characters; at most {MAX_NAME_CHARS} are allowed")
    return name


def parse_room_id(payload: object, command: str) -> int:
    """``{id}`` of ``join_room`` / ``leave_room``: a positive integer."""
    raw = require_object(payload, command)
    if "id" not in raw:
        raise invalid(f"{command} needs the room id, e.g. {{\"id\": 1}}")
    value = raw["id"]
    if not _is_int(value) or value <= 0:
        raise invalid(f"a room id is a positive integer, got {_shown(value)}")
    return int(value)


def parse_join_lobby(payload: object) -> UserClaim:
    return parse_user_claim(require_object(payload, "join_lobby"))


def parse_credential(payload: object) -> str | None:
    """The ``credential`` of ``join_lobby {credential}`` (a signed identity), or None."""
    credential = require_object(payload, "join_lobby").get("credential")
    if credential is None:
        return None
    if not isinstance(credential, str) or not credential:
        raise invalid(
            f"credential must be the token your school's site made (a non-empty string), got {_json_type(credential)}"
        )
    if len(credential) > MAX_CREDENTIAL_CHARS:
        raise invalid(f"credential has {len(credential)} characters; at most {MAX_CREDENTIAL_CHARS} are allowed")
    return credential


def parse_leave_lobby(payload: object) -> UserId:
    raw = require_object(payload, "leave_lobby")
    if "id" not in raw:
        raise invalid("leave_lobby needs your user id, e.g. {\"id\": 1}")
    return parse_user_id(raw["id"])


# --- decks -----------------------------------------------------------------

_OPTIONAL_DECK_FIELDS: Final = ("id", "description", "user_id", "user_name", "created", "changed", "private")


def _scalar(value: object, where: str) -> Scalar:
    if isinstance(value, str) and len(value) > MAX_DECK_TEXT_CHARS:
        raise invalid(f"{where} has {len(value)} characters; at most {MAX_DECK_TEXT_CHARS} are allowed")
    if value is None or isinstance(value, (str, bool)) or _is_number(value):
        return value  # type: ignore[return-value]
    raise invalid(f"{where} must be a string, number, boolean or null, got {_json_type(value)}")


def _card(raw: object, index: int) -> Card:
    where = f"deck card {index}"
    if not isinstance(raw, Mapping):
        raise invalid(f"{where} must be an object {{id, problem, answer}}, got {_json_type(raw)}")
    if "id" not in raw:
        raise invalid(f"{where} has no id")
    card_id = raw["id"]
    if not (_is_int(card_id) or isinstance(card_id, str)):
        raise invalid(f"{where}: id must be an integer or a string, got {_json_type(card_id)}")
    if isinstance(card_id, str) and len(card_id) > MAX_CARD_ID_CHARS:
        raise invalid(f"{where}: id has {len(card_id)} characters; a card id has at most {MAX_CARD_ID_CHARS}")
    if "problem" not in raw:
        raise invalid(f"{where} has no problem")
    problem = raw["problem"]
    if not (isinstance(problem, str) or _is_number(problem)):
        raise invalid(f"{where}: problem must be a string or a number, got {_json_type(problem)}")
    if isinstance(problem, str) and len(problem) > MAX_PROBLEM_CHARS:
        raise invalid(f"{where}: problem has {len(problem)} characters; a problem has at most {MAX_PROBLEM_CHARS}")
    if "answer" in raw:
        answer, answer_key = raw["answer"], "answer"
    elif "solution" in raw:
        answer, answer_key = raw["solution"], "solution"
    else:
        raise invalid(f"{where} has no answer (or solution)")
    if not (isinstance(answer, str) or _is_number(answer)):
        # Never echo the value: it is (meant to be) an answer.
        raise invalid(f"{where}: {answer_key} must be a string or a number, got {_json_type(answer)}")
    if isinstance(answer, str) and len(answer) > MAX_ANSWER_CHARS:
        raise invalid(f"{where}: {answer_key} has {len(answer)} characters; an answer has at most {MAX_ANSWER_CHARS}")
    if _is_int(answer) and abs(answer) >= 10**MAX_ANSWER_CHARS:
        raise invalid(f"{where}: {answer_key} has more than {MAX_ANSWER_CHARS} digits; an answer has at most {MAX_ANSWER_CHARS}")
    return Card(card_id, problem, answer)


def _card_chars(card: Card) -> int:
    """What a card costs of the deck budget: its id, problem and answer as text."""
    return sum(len(v) if isinstance(v, str) else len(repr(v)) for v in (card.id, card.problem, card.answer))


def parse_deck(raw: object) -> Deck:
    if not isinstance(raw, Mapping):
        raise invalid(f"deck must be an object, got {_json_type(raw)}")
    if "name" not in raw:
        raise invalid("deck.name is missing")
    name = _trimmed_name(raw["name"], "deck.name")
    if "flashcards" in raw:
        cards_raw, cards_key = raw["flashcards"], "flashcards"
    elif "flashcard" in raw:
        cards_raw, cards_key = raw["flashcard"], "flashcard"
    else:
        raise invalid("deck has no cards: send them as deck.flashcards (or deck.flashcard)")
    if not isinstance(cards_raw, (list, tuple)):
        raise invalid(f"deck.{cards_key} must be an array of cards, got {_json_type(cards_raw)}")
    if not 1 <= len(cards_raw) <= MAX_CARDS:
        raise invalid(f"deck.{cards_key} has {len(cards_raw)} cards; a deck has 1 to {MAX_CARDS}")
    cards = tuple(_card(card, i) for i, card in enumerate(cards_raw))
    total = sum(_card_chars(card) for card in cards)
    if total > MAX_DECK_CHARS:
        raise invalid(
            f"deck.{cards_key} holds {total} characters of card text (ids, problems and answers); "
            f"a deck holds at most {MAX_DECK_CHARS}: use fewer or shorter cards"
        )
    optional = {key: _scalar(raw[key], f"deck.{key}") for key in _OPTIONAL_DECK_FIELDS if key in raw}
    num_problems = raw.get("numProblems")
    if num_problems is None:
        num_problems = len(cards)
    elif not _is_int(num_problems) or num_problems < 0:
        raise invalid(f"deck.numProblems must be a non-negative integer, got {_shown(num_problems)}")
    return Deck(DeckInfo(name=name, num_problems=int(num_problems), **optional), cards)


def parse_create_room(payload: object) -> CreateRoomRequest:
    raw = require_object(payload, "create_room")
    if "name" not in raw:
        raise invalid("create_room needs a room name")
    name = _trimmed_name(raw["name"], "name")
    if "deck" not in raw:
        raise invalid("create_room needs a deck")
    deck = parse_deck(raw["deck"])
    host = parse_user_claim(raw["host"], "host.") if raw.get("host") is not None else None
    return CreateRoomRequest(name, deck, host)
