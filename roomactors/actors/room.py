"""The room actor: one task per room, owning its seats, its deck and its races.

The lobby asks a room for what it owns (seats, capacity, the race) and forwards
it the race commands; the room answers, and sends its members the race's events
itself (``racestart``, ``raceprogress``, ``raceover``, ``kicked``, ``racestate``)
through their :class:`Client` hand-over methods. It never awaits the lobby: when
its summary changes by itself (the countdown ends, the last answer, the time
limit) it tells the lobby without waiting (``RoomChanged``), and the lobby asks
for the new summary. So lobby and rooms cannot deadlock.

The deck, answers included, never leaves this module before ``raceover``:
replies carry summaries and acks, events carry problems only.

Time: every race time is server epoch milliseconds (:mod:`.clock`); the room's
timer (the end of the countdown, ``end_at``, the next progress) is a deadline
on its own mailbox loop, so a race costs no task of its own and none per player.
"""

from __future__ import annotations

import logging
import math
import random
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Final

import trio

from .client import Client, SharedEvent
from .clock import ServerClock
from .commands import (
    TIME_LIMIT_RANGE,
    AnswerRequest,
    EndRaceRequest,
    KickPlayerRequest,
    LockRoomRequest,
    RaceResultsRequest,
    RoomRequest,
    StartRaceRequest,
)
from .mailbox import ActorRef, ActorStopped, MailboxFull, open_mailbox
from .messages import (
    CloseRoom,
    CommandDone,
    Describe,
    DirectCommand,
    JoinRoom,
    LeaveRoom,
    LobbyMessage,
    Reseat,
    RoomChanged,
    RoomCommand,
    RoomCrashed,
    RoomMessage,
    RoomReply,
    Rerouted,
    UpdateUser,
)
from .race import Race, Racer
from .records import Deck, JsonDict, RoomSummary, User, UserId
from .validation import ProtocolError

logger = logging.getLogger(__name__)

SUPERVISION = "one-for-one, no restart"
"""How the lobby supervises rooms: a room that raises is logged and gone; its
players and host get ``roomclosed`` (reason ``crashed``) and go back to the lobby;
the lobby and every other room go on. A crashed room is not restarted: its
in-memory state is what failed, and its players are better off choosing again."""

PROGRESS_INTERVAL: Final = 0.2
"""Seconds between two ``raceprogress`` of one room, at most one per interval."""
RESULTS_KEPT: Final = 10
"""Finished races a room keeps for ``race_results``."""
NOTIFY_RETRY: Final = 0.05
"""Seconds before telling the lobby again when its mailbox was full."""
PROGRESS_KEY: Final = "raceprogress"
"""Outbox replace key of ``raceprogress``: newest wins per client."""

OK: Final = {"ok": True}


class RoomActor:
    """A room's state and its message handler; only the room's task calls ``handle``."""

    def __init__(
        self,
        room_id: int,
        name: str,
        host: User,
        deck: Deck,
        max_players: int,
        *,
        host_client: Client | None = None,
        clock: ServerClock | None = None,
        lobby: ActorRef[LobbyMessage] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.room_id = room_id
        self.name = name
        self.host = host
        self._deck = deck
        self.max_players = max_players
        self.players: list[User] = []
        self._clients: dict[UserId, Client | None] = {host.id: host_client}
        self._clock = clock if clock is not None else ServerClock(0)
        self._lobby = lobby
        self._rng = rng if rng is not None else random.Random()
        self.locked = False
        self._banned: set[UserId] = set()
        self.race: Race | None = None
        """The race running, or the last one (finished); None before the first."""
        self._finished: deque[Race] = deque(maxlen=RESULTS_KEPT)
        self._next_race_id = 1
        self._phase = "waiting"
        self._progress_dirty = False
        self._progress_sent_at = -math.inf
        self._notify_pending = False
        self._notify_retry_at = math.inf
        #: The lobby is closing the room: direct commands go the lobby's way (room_not_found).
        self._closing = False

    def __repr__(self) -> str:
        return f"RoomActor(id={self.room_id}, name={self.name!r}, players={len(self.players)}, phase={self._phase})"

    def summary(self) -> RoomSummary:
        return RoomSummary(
            self.room_id, self.name, self.host, self._deck.info, tuple(self.players), self.max_players,
            state=self._phase, locked=self.locked, offline=self._offline(),
            late_join=self.running is not None and self.running.late_join,
        )

    def _offline(self) -> frozenset[UserId]:
        """Seated users whose connection is gone while their seat is kept (``Reseat(id, None)``)."""
        return frozenset(user_id for user_id, client in self._clients.items() if client is None)

    @property
    def running(self) -> Race | None:
        """The race in ``countdown`` or ``racing``, if any."""
        race = self.race
        return race if race is not None and not race.over else None

    # --- the message loop --------------------------------------------------------------

    async def handle(self, message: RoomMessage) -> RoomReply:
        self.advance()
        match message:
            case Describe():
                self._notify_pending = False  # the lobby is reading the summary now
            case JoinRoom(user, client):
                return self._join(user, client)
            case LeaveRoom(user_id):
                if not any(p.id == user_id for p in self.players):
                    return ProtocolError("not_in_room", f"you are not a player of room {self.room_id}")
                self._remove_player(user_id)
            case UpdateUser(user):
                self._update_user(user)
            case Reseat(user_id, client):
                self._reseat(user_id, client)
            case CloseRoom(reason):
                self._closing = True
                if self.running is not None:
                    self._finish(reason)
                return None
            case RoomCommand(user_id, request):
                return self._command(user_id, request)
            case DirectCommand(user_id, client, request):
                # the route may be stale (a kick, a takeover, a close that crossed
                # the answer): then the lobby answers, as if it had come its way
                if self._closing or self._clients.get(user_id) is not client:
                    return Rerouted()
                return self._command(user_id, request)
            case _:
                raise TypeError(f"room {self.room_id} got an unknown message {type(message).__name__}")
        return self.summary()

    def deadline(self) -> float:
        """When the room's timer must run next (trio time; inf: nothing due)."""
        due = self._notify_retry_at
        race = self.running
        if race is not None:
            edge = race.start_at if self._phase == "countdown" else race.end_at
            due = min(due, self._clock.trio_time(edge))
            if self._progress_dirty:
                due = min(due, self._progress_sent_at + PROGRESS_INTERVAL)
        return due

    def on_deadline(self) -> None:
        self.advance()
        if self._notify_retry_at <= trio.current_time():
            self._notify_retry_at = math.inf
            self._notify_lobby()
        self._maybe_send_progress()

    def advance(self) -> None:
        """Apply what the clock decided: the countdown's end, the time limit."""
        race = self.running
        if race is None:
            return
        now_ms = self._clock.ms()
        if now_ms >= race.end_at:
            self._finish("time_up")
            return
        phase = race.state(now_ms)
        if phase != self._phase:
            self._phase = phase
            logger.info("room %d race %d: racing", self.room_id, race.race_id)
            self._notify_lobby()

    # --- seats ----------------------------------------------------------------------------

    def _join(self, user: User, client: Client | None) -> RoomReply:
        if user.id == self.host.id or any(p.id == user.id for p in self.players):
            return self.summary()
        if user.id in self._banned:
            return ProtocolError(
                "banned", f"the host removed you from room {self.room_id}; you cannot join it again, pick another room"
            )
        if self.locked:
            return ProtocolError(
                "room_locked", f"room {self.room_id} is locked; ask its host to unlock it, or pick another room"
            )
        race = self.running
        if race is not None and not race.late_join:
            return ProtocolError(
                "race_in_progress", f"room {self.room_id} is racing; join when the race is over, or pick another room"
            )
        if len(self.players) >= self.max_players:
            return ProtocolError(
                "room_full",
                f"room {self.room_id} is full ({self.max_players} players); pick another room or create one",
            )
        self.players.append(user)
        self._clients[user.id] = client
        if race is not None:  # a late join: from card 0, same end_at
            racer = race.racers.get(user.id)
            if racer is None:
                race.racers[user.id] = Racer(user)
            else:  # back in the race they left, with what they had answered
                racer.left, racer.user = False, user
            self._send_state(user.id)
            self._progress_changed()
        return self.summary()

    def _remove_player(self, user_id: UserId) -> None:
        self.players = [p for p in self.players if p.id != user_id]
        self._clients.pop(user_id, None)
        race = self.running
        if race is not None and user_id in race.racers:
            race.racers[user_id].left = True
            self._progress_changed()
            if race.all_done():
                self._finish("all_done")

    def _update_user(self, user: User) -> None:
        if user.id == self.host.id:
            self.host = user
        self.players = [user if p.id == user.id else p for p in self.players]
        if self.race is not None and user.id in self.race.racers and not self.race.over:
            self.race.racers[user.id].user = user

    def _reseat(self, user_id: UserId, client: Client | None) -> None:
        if user_id not in self._clients:
            return
        was_offline = self._clients[user_id] is None
        self._clients[user_id] = client
        if self.running is not None:
            if client is not None:
                self._send_state(user_id)
            if was_offline != (client is None):
                self._progress_changed()  # connected changed

    # --- commands -----------------------------------------------------------------------

    def _command(self, user_id: UserId, request: RoomRequest) -> CommandDone:
        removed: UserId | None = None
        try:
            match request:
                case AnswerRequest():
                    ack = self._answer(user_id, request)
                case StartRaceRequest():
                    ack = self._start_race(user_id, request)
                case EndRaceRequest():
                    self._require_host(user_id, "end_race")
                    if self.running is None:
                        raise ProtocolError(
                            "not_racing", f"no race is running in room {self.room_id}; start one with start_race"
                        )
                    self._finish("host_ended")
                    ack = dict(OK)
                case RaceResultsRequest():
                    ack = self._race_results(user_id, request)
                case KickPlayerRequest():
                    ack = self._kick(user_id, request)
                    removed = request.user  # only reached when the kick succeeded
                case LockRoomRequest():
                    self._require_host(user_id, "lock_room")
                    self.locked = request.locked
                    ack = dict(OK)
                case _:
                    raise TypeError(f"room {self.room_id} got an unknown request {type(request).__name__}")
        except ProtocolError as error:
            logger.debug("room %d: %s from %r refused: %s", self.room_id, type(request).__name__, user_id, error.code)
            ack = error.to_ack()
        # answer and race_results are forwarded (the lobby ignores the summary):
        # no summary on the hot path; a phase change they cause goes by RoomChanged
        summary = None if isinstance(request, (AnswerRequest, RaceResultsRequest)) else self.summary()
        return CommandDone(ack, summary, removed)

    def _require_host(self, user_id: UserId, command: str) -> None:
        if user_id != self.host.id:
            raise ProtocolError(
                "not_host", f"only the host of room {self.room_id} may send {command}; ask the host to do it"
            )

    def _start_race(self, user_id: UserId, request: StartRaceRequest) -> JsonDict:
        self._require_host(user_id, "start_race")
        if self.running is not None:
            raise ProtocolError(
                "race_in_progress", f"a race is running in room {self.room_id}; end it (end_race) or wait for its end"
            )
        if not self.players:
            raise ProtocolError("no_players", f"room {self.room_id} has no players yet; wait for players to join")
        cards = list(self._deck.cards)
        if request.shuffle:
            self._rng.shuffle(cards)
        now_ms = self._clock.ms()
        start_at = now_ms + round(request.countdown * 1000)
        limit = request.time_limit if request.time_limit is not None else TIME_LIMIT_RANGE[1]
        end_at = start_at + round(limit * 1000)
        race = Race(self.room_id, self._next_race_id, tuple(cards), list(self.players), start_at, end_at,
                    request.late_join)
        self._next_race_id += 1
        self.race = race
        self.locked = self.locked or not request.late_join
        self._phase = race.state(now_ms)
        self._progress_dirty = False
        self._progress_sent_at = -math.inf
        event = SharedEvent("racestart", race.start_json(now_ms))
        for client in self._members():
            self._hand(client, "send_shared", event)
        logger.info("room %d race %d starts in %d ms with %d players", self.room_id, race.race_id,
                    start_at - now_ms, len(race.racers))
        return {"ok": True, "race_id": race.race_id, "start_at": start_at, "end_at": end_at}

    def _answer(self, user_id: UserId, request: AnswerRequest) -> JsonDict:
        race = self.race
        racer = None
        if race is not None and race.race_id == request.race_id:
            racer = race.racers.get(user_id)
        if race is None or racer is None or racer.left:
            raise ProtocolError(
                "not_racing",
                f"you are not a player of race {request.race_id} in room {self.room_id}; "
                "answer only in a race you were started in (see racestart), with its race_id",
            )
        now_ms = self._clock.ms()
        if race.over:
            raise ProtocolError("race_over", f"race {race.race_id} is over; wait for the host to start the next one")
        if now_ms < race.start_at:
            raise ProtocolError(
                "race_not_started", f"race {race.race_id} starts at server time {race.start_at}; answer after that"
            )
        if race.done(racer):
            raise ProtocolError("wrong_card", "you have answered every card of this race; wait for its end")
        if request.card != racer.next:
            raise ProtocolError("wrong_card", f"answer your next card, index {racer.next} (one attempt per card, in order)")
        correct = race.record(racer, request.answer, now_ms)
        ack = {"ok": True, "card": request.card, "correct": correct, "next": race.next_of(racer)}
        self._progress_changed()
        if ack["next"] is None and race.all_done():  # only this racer's last answer can end it
            self._finish("all_done")
        return ack

    def _race_results(self, user_id: UserId, request: RaceResultsRequest) -> JsonDict:
        self._require_host(user_id, "race_results")
        running = self.running
        if running is not None and request.race_id in (None, running.race_id):
            raise ProtocolError(
                "race_in_progress", f"race {running.race_id} is still running; ask for its results when it is over"
            )
        found: Race | None = None
        if request.race_id is None:
            found = self._finished[-1] if self._finished else None
        else:
            found = next((r for r in self._finished if r.race_id == request.race_id), None)
        if found is None:
            which = "no race has finished yet" if request.race_id is None else (
                f"race {request.race_id} is not one of the last {RESULTS_KEPT} races")
            raise ProtocolError("race_not_found", f"room {self.room_id}: {which}; send race_results with a race_id it ran")
        return {"ok": True, "results": found.results_json()}

    def _kick(self, user_id: UserId, request: KickPlayerRequest) -> JsonDict:
        self._require_host(user_id, "kick_player")
        if not any(p.id == request.user for p in self.players):
            raise ProtocolError(
                "not_in_room", f"user {request.user!r} is not a player of room {self.room_id}; kick one of its players"
            )
        client = self._clients.get(request.user)
        self._banned.add(request.user)
        self._remove_player(request.user)
        if client is not None:
            self._hand(client, "send_event", "kicked", {"id": self.room_id})
        logger.info("room %d: host kicked user %r", self.room_id, request.user)
        return dict(OK)

    # --- race events ----------------------------------------------------------------------

    def _members(self) -> Iterator[Client]:
        """The clients of the host and of every player (those still connected)."""
        for client in self._clients.values():
            if client is not None:
                yield client

    def _send_state(self, user_id: UserId) -> None:
        race, client = self.running, self._clients.get(user_id)
        if race is not None and client is not None:
            self._hand(client, "send_event", "racestate", race.state_json(self._clock.ms(), user_id, self._offline()))

    def _progress_changed(self) -> None:
        self._progress_dirty = True
        self._maybe_send_progress()

    def _maybe_send_progress(self) -> None:
        race = self.running
        if race is None or not self._progress_dirty:
            return
        now = trio.current_time()
        if now < self._progress_sent_at + PROGRESS_INTERVAL:
            return  # the timer sends it (see deadline)
        self._progress_dirty = False
        self._progress_sent_at = now
        progress = race.progress_json(self._clock.ms(), self._offline())
        event = SharedEvent(PROGRESS_KEY, progress, replace_key=PROGRESS_KEY)
        for client in self._members():
            self._hand(client, "send_shared", event)

    def _finish(self, reason: str) -> None:
        race = self.running
        assert race is not None
        race.reason = reason
        self._finished.append(race)
        self._phase = "finished"
        self._progress_dirty = False
        for user_id, client in self._clients.items():
            if client is not None:
                self._hand(client, "send_event", "raceover", race.over_json(user_id))
        logger.info("room %d race %d over: %s", self.room_id, race.race_id, reason)
        self._notify_lobby()

    def _notify_lobby(self) -> None:
        """Tell the lobby the summary changed, never waiting (see the module)."""
        if self._lobby is None or self._notify_pending:
            return
        try:
            self._lobby.tell_nowait(RoomChanged(self.room_id))
        except MailboxFull:
            self._notify_retry_at = trio.current_time() + NOTIFY_RETRY
        except ActorStopped:
            pass  # the lobby is gone; nobody to tell
        else:
            self._notify_pending = True

    def _hand(self, client: Client, method: str, *args: object) -> None:
        """Call a client method; one client that raises must not stop the room."""
        try:
            getattr(client, method)(*args)
        except Exception:
            logger.exception("room %d: client %r raised in %s; ignored", self.room_id, client.client_id, method)


async def run_room(
    room_id: int,
    name: str,
    host: User,
    deck: Deck,
    max_players: int,
    lobby: ActorRef[LobbyMessage],
    mailbox_size: int = 16,
    *,
    host_client: Client | None = None,
    clock: ServerClock | None = None,
    batch_scope: Callable[[], AbstractContextManager[object]] | None = None,
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
        actor = RoomActor(room_id, name, host, deck, max_players, host_client=host_client, clock=clock, lobby=lobby)
        task_status.started(ref)
        try:
            await mailbox.serve(actor.handle, deadline=actor.deadline, on_deadline=actor.on_deadline,
                                batch_scope=batch_scope)
        except Exception:
            logger.exception("room %d crashed; supervision %s: closing it, players go back to the lobby",
                             room_id, SUPERVISION)
            try:
                await lobby.tell(RoomCrashed(room_id))
            except ActorStopped:
                pass  # the lobby is gone too; nobody left to tell

