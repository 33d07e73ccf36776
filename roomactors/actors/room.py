"""The room actor: one task per room, owning its host, players, deck and capacity.

Only the lobby talks to a room (clients go through the lobby), and the room never
talks back except through replies, so lobby and rooms cannot deadlock. The deck,
answers included, never leaves this module: replies carry a RoomSummary only.
"""

from __future__ import annotations

import logging

import trio

from .mailbox import ActorRef, ActorStopped, open_mailbox
from .messages import Describe, JoinRoom, LeaveRoom, LobbyMessage, RoomCrashed, RoomMessage, UpdateUser
from .records import Deck, RoomSummary, User
from .validation import ProtocolError

logger = logging.getLogger(__name__)

SUPERVISION = "one-for-one, no restart"
"""How the lobby supervises rooms: a room that raises is logged and gone; its
players and host get ``roomclosed`` (reason ``crashed``) and go back to the lobby;
the lobby and every other room go on. A crashed room is not restarted: its
in-memory state is what failed, and its players are better off choosing again."""

RoomReply = RoomSummary | ProtocolError


class RoomActor:
    """A room's state and its message handler; only the room's task calls ``handle``."""

    def __init__(self, room_id: int, name: str, host: User, deck: Deck, max_players: int) -> None:
        self.room_id = room_id
        self.name = name
        self.host = host
        self._deck = deck
        self.max_players = max_players
        self.players: list[User] = []

    def __repr__(self) -> str:
        return f"RoomActor(id={self.room_id}, name={self.name!r}, players={len(self.players)})"

    def summary(self) -> RoomSummary:
        return RoomSummary(self.room_id, self.name, self.host, self._deck.info, tuple(self.players), self.max_players)

    async def handle(self, message: RoomMessage) -> RoomReply:
        match message:
            case Describe():
                pass
            case JoinRoom(user):
                if user.id == self.host.id or any(p.id == user.id for p in self.players):
                    return self.summary()
                if len(self.players) >= self.max_players:
                    return ProtocolError(
                        "room_full",
                        f"room {self.room_id} is full ({self.max_players} players); pick another room or create one",
                    )
                self.players.append(user)
            case LeaveRoom(user_id):
                kept = [p for p in self.players if p.id != user_id]
                if len(kept) == len(self.players):
                    return ProtocolError("not_in_room", f"you are not a player of room {self.room_id}")
                self.players = kept
            case UpdateUser(user):
                if user.id == self.host.id:
                    self.host = user
                self.players = [user if p.id == user.id else p for p in self.players]
            case _:
                raise TypeError(f"room {self.room_id} got an unknown message {type(message).__name__}")
        return self.summary()


async def run_room(
    room_id: int,
    name: str,
    host: User,
    deck: Deck,
    max_players: int,
    lobby: ActorRef[LobbyMessage],
    mailbox_size: int = 16,
    *,
    task_status: trio.TaskStatus[ActorRef[RoomMessage]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run one room until the lobby closes its ref; supervise it (see SUPERVISION).

    Started by the lobby with ``nursery.start`` in the lobby's own nursery; the
    room's only ref is handed back through ``task_status.started(ref)``. This task
    never raises an ``Exception``: a crash is logged and reported to the lobby, so
    it cannot cancel the lobby's nursery. ``lobby`` is this task's own clone.
    """
    with lobby:
        ref: ActorRef[RoomMessage]
        ref, mailbox = open_mailbox(f"room {room_id}", mailbox_size)
        actor = RoomActor(room_id, name, host, deck, max_players)
        task_status.started(ref)
        try:
            await mailbox.serve(actor.handle)
        except Exception:
            logger.exception("room %d crashed; supervision %s: closing it, players go back to the lobby",
                             room_id, SUPERVISION)
            try:
                await lobby.tell(RoomCrashed(room_id))
            except ActorStopped:
                pass  # the lobby is gone too; nobody left to tell
