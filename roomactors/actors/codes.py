"""Room codes: what a teacher reads out and a student types to join a room.

A code is short (6 characters), uses an alphabet without look-alikes (no
``I``/``L``/``1``, ``O``/``0``), is unique among the rooms open at once, and is
drawn at random with :mod:`secrets`: room ids count up from 1, so a code
derived from them (or from any sequence) would let a student walk through
everybody's rooms. 31**6 (about 887 million) codes against at most
``max_rooms`` open rooms makes a guess hit an open room with a chance of about
1 in 90,000 at 10,000 rooms; the command rate limit bounds the guessing.

On a cluster (docs/cluster.md) each node's lobby owns the codes of its own
rooms; ``taken_elsewhere`` (the node's replica of the other nodes' rooms) makes
it draw again when another node's room holds the code. Two rooms created at
nearly the same moment on two nodes can still get one code (neither replica had
the other's yet); the room directory resolves that clash
(:meth:`roomactors.cluster.directory.ClusterDirectory.room_of_code`).

Sans-IO and clock-free: the lobby actor owns one :class:`CodeBook`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import Final

CODE_ALPHABET: Final = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
"""The characters of a room code (protocol.md): upper-case letters and digits
without ``I``, ``L``, ``O``, ``0`` and ``1``."""
CODE_LENGTH: Final = 6
MAX_CODE_INPUT_CHARS: Final = 16
"""``join_room {code}`` accepts any string of 1 to this many characters (an
unknown one is ``room_not_found``); longer is ``invalid_payload``."""

_ALPHABET_SET: Final = frozenset(CODE_ALPHABET)

ELSEWHERE_DRAWS: Final = 32
"""Draws that ask ``taken_elsewhere``; after them only this book's own codes count
(a check that says "taken" for ever must not hang the lobby; the directory
resolves a clash)."""


def normalize_code(text: str) -> str | None:
    """The code ``text`` names, upper-cased; None when no code can look like it.

    Only ASCII is upper-cased: ``str.upper`` turns some single characters into
    several (``"ﬀ"`` into ``"FF"``), which must not make a stranger string match.
    """
    if len(text) != CODE_LENGTH or not text.isascii():
        return None
    code = text.upper()
    return code if _ALPHABET_SET.issuperset(code) else None


class CodeBook:
    """The codes of the open rooms, both ways (code -> room id, room id -> code).

    ``choice`` picks one character; the default is :func:`secrets.choice`.
    Tests pass a seeded ``random.Random().choice`` to force collisions.
    ``taken_elsewhere`` (None: nothing is) says whether a room of another node
    holds a code; :meth:`issue` then draws again.
    """

    def __init__(
        self,
        choice: Callable[[Sequence[str]], str] = secrets.choice,
        taken_elsewhere: Callable[[str], bool] | None = None,
    ) -> None:
        self._choice = choice
        self.taken_elsewhere = taken_elsewhere
        self._rooms: dict[str, int] = {}
        self._codes: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._rooms)

    def issue(self, room_id: int) -> str:
        """A fresh code for ``room_id``, unique among the codes issued and not
        released, and not ``taken_elsewhere`` (for the first ``ELSEWHERE_DRAWS`` draws).

        Draws again on a collision; with the rooms a server (or a cluster) holds
        (at most a few ten-thousands of 887 million codes) a second draw is
        already rare.
        """
        if room_id in self._codes:
            raise ValueError(f"room {room_id} already has code {self._codes[room_id]}")
        if len(self._rooms) >= len(CODE_ALPHABET) ** CODE_LENGTH // 2:
            raise RuntimeError("more than half of all room codes are in use")  # pragma: no cover
        asked = 0
        while True:
            code = "".join(self._choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            if code in self._rooms:
                continue
            asked += 1
            if self.taken_elsewhere is None or asked > ELSEWHERE_DRAWS or not self.taken_elsewhere(code):
                break
        self._rooms[code] = room_id
        self._codes[room_id] = code
        return code

    def release(self, room_id: int) -> None:
        """The room closed: its code may be issued again. Unknown ids are ignored."""
        code = self._codes.pop(room_id, None)
        if code is not None:
            del self._rooms[code]

    def code_of(self, room_id: int) -> str | None:
        return self._codes.get(room_id)

    def room_of(self, text: str) -> int | None:
        """The open room whose code ``text`` is (any letter case), or None."""
        code = normalize_code(text)
        return None if code is None else self._rooms.get(code)
