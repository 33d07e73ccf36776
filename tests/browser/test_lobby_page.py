"""The lobby page end to end: Chromium, driven by playwright-core from Node, against
a server running in this test's trio loop.

Why a Node script (``scenario.mjs``) and not Python playwright: playwright-core comes
from npm with the other JavaScript test clients, and the browser is Debian's
Chromium (``setup.sh`` installs it), so no browser download is needed. The script
checks each step as it goes and prints what the pages showed as one JSON line; the
assertions below are on that record, i.e. on what the browsers displayed.

The scenario: a teacher and two students in separate browser contexts; the teacher
creates a room, the students see it appear without reloading and join (one by
keyboard, on a phone-sized window), the teacher sees them, one student leaves, the
teacher closes the room and the remaining student is told and is back in the lobby;
a second create_room hits max_rooms=1 and the error shows next to the form; every
page ends up on WebSocket; a dropped connection shows "reconnecting", the page
signs in again by itself, back in its seat (or told the seat was lost, on a server
without a reconnect grace; both servers here keep it); the teacher makes an unlisted room, which nobody's list
shows, and Bob (phone, keyboard only) joins it by its code after a wrong one is
refused in words; a second tab of the same user, with the seat's token, takes over. Screenshots go
to ``test-artifacts/browser/<server>/``.

The race (``race_scenario.mjs``, its own tests so the lobby's stay green on a server
without the race): the same three people; the teacher starts a race with a 3 s
countdown; every page shows the same ``start_at`` and, after ``time_sync``, the same
estimate of the server's clock; Alice answers with the mouse, Bob on a phone with the
keyboard alone, and each sees the other's lane move; the results give the places
and each student's answers against the right ones; the teacher's table of every
answer downloads as CSV; the race locked the room, the teacher unlocks it and Alice
leaves; a rematch from the results with a time limit and late join, which Alice
joins while it runs (``racestate``), ended by the teacher; Alice is removed and may
not come back, and a locked room shows as locked in the lobby. On both servers,
Alice and then the teacher reload mid-race and Bob's phone is offline for 5 s; each
carries on where they were (seats outlive a connection, race.md).

Signed identity (``signed_scenario.mjs``): the page opened with ``#credential=...``
signs in by itself, hides the name and role, keeps the teacher's room on a reload,
and says why an expired credential is refused.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import trio

from roomactors.config import RoomServerConfig

pytestmark = pytest.mark.browser

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
JS_DIR = REPO / "tests" / "js"
SCENARIO = HERE / "scenario.mjs"
RACE_SCENARIO = HERE / "race_scenario.mjs"
STANDIN_SERVER = HERE / "standin_server.mjs"
CLIENT_JS = JS_DIR / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts" / "browser"

#: The whole scenario takes about 5 s on a quiet machine; CI machines are shared.
SCENARIO_TIMEOUT = 180.0


@pytest.fixture
def node() -> str:
    """The node binary, or a skip that says what to install (a sync fixture: a skip
    raised inside the trio test loses its message)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (Node 20 is needed for the browser test)")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: run tests/browser/setup.sh")
    for package in ("playwright-core", "socket.io-client"):
        if not (JS_DIR / "node_modules" / package).is_dir():
            pytest.skip(f"{package} is not installed: run tests/browser/setup.sh (npm install in tests/js)")
    return node


async def run_scenario(
    node: str, base_url: str, artifacts: Path, script: Path = SCENARIO, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``script`` (``scenario.mjs`` by default) against ``base_url`` and return its report."""
    with trio.fail_after(SCENARIO_TIMEOUT):
        result = await trio.run_process(
            [node, str(script), base_url, str(artifacts)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            cwd=str(HERE),
            env={**os.environ, **(env or {})},
        )
    stderr = result.stderr.decode(errors="replace")
    lines = result.stdout.decode(errors="replace").strip().splitlines()
    report = json.loads(lines[-1]) if lines else {}
    assert result.returncode == 0, f"scenario failed: {report.get('error')}\n{stderr[-4000:]}"
    return report


def assert_what_the_pages_showed(report: dict[str, Any], seat_kept: bool = True) -> None:
    """``seat_kept``: the server keeps a dropped user's seat for a reconnect grace
    (roomserver, and the Node stand-in since it keeps seats too); False is for a
    server that counts a drop as leaving."""
    teacher, alice, bob = (report["pages"][name] for name in ("teacher", "alice", "bob"))

    assert teacher["whoami"] == "Signed in as Ms Rivera (teacher)"
    assert alice["whoami"] == "Signed in as Alice (student)"
    assert bob["whoami"] == "Signed in as Bob (student)"

    # The room as its host sees it, and as the lobby lists it (pasted deck: 3 cards).
    assert teacher["roomTitle"] == "Fractions"
    assert teacher["roomDeck"] == "Week 3 · 3 cards"
    assert teacher["roomHost"] == "Ms Rivera (teacher) — you"
    assert [room["name"] for room in alice["roomsBeforeJoin"]] == ["Fractions"]
    assert alice["roomsBeforeJoin"][0]["meta"] == "Host: Ms Rivera · Deck: Week 3 (3 cards) · 0 / 50 players"
    assert alice["roomHost"] == "Ms Rivera (teacher)"

    # The search box filters the feed on the server (filter.name).
    assert alice["searchEmpty"] == "No open room’s name contains “geometry”."

    # A server error, in words, inside the form that caused it.
    assert alice["createError"] == {
        "text": "The server has too many rooms right now. Try again later.",
        "code": "too_many_rooms",
        "insideForm": "create-form",
    }

    assert teacher["playersAfterJoins"] == ["Alice", "Bob"]
    assert teacher["capacity"] == "2 / 50"
    assert alice["noticeAfterLeave"] == "You left “Fractions”."
    assert teacher["playersAfterLeave"] == ["Bob"]

    assert bob["notice"] == {
        "text": "“Fractions”: The host closed the room. You are back in the lobby.",
        "reason": "host_left",
        "live": "polite",
    }

    for page in (teacher, alice, bob):
        assert page["transport"] == {"attribute": "websocket", "engine": "websocket"}
        assert page["problems"] == []

    # After a dropped connection: "reconnecting", then connected and signed in again,
    # back in her seat (the reconnect grace), or, where the server counted the drop
    # as leaving, told so.
    assert alice["reconnect"] == {
        "states": ["reconnecting", "connected"],
        "seatKept": seat_kept,
        "notice": None if seat_kept else "The connection dropped, so you left “After the drop”.",
        "whoami": "Signed in as Alice (student)",
        "reloaded": False,
    }

    # An unlisted room, joined by its code on the phone with the keyboard alone: a
    # wrong code in words, then the right one typed in lower case with spaces.
    code = teacher["unlistedCode"]
    assert len(code) == 6 and set(code) <= set("ABCDEFGHJKMNPQRSTUVWXYZ23456789")
    assert bob["wrongCode"] == {
        "text": "No open room has that code. Check it and try again.",
        "code": "room_not_found",
        "focus": "join-code",
    }
    assert bob["byCode"] == {"title": "Secret quiz", "code": code}

    assert bob["replaced"] == {
        "text": "You signed in from another tab or window, so this one stopped.",
        "view": "signin",
        "state": "disconnected",
    }


@pytest.fixture
def serve_roomserver() -> Any:
    try:
        from roomactors.server import serve_roomserver
    except ImportError as exc:  # until roomactors/server.py lands
        pytest.skip(f"roomactors.server is not available yet: {exc}")
    return serve_roomserver


async def test_lobby_page_with_roomserver(nursery: trio.Nursery, node: str, serve_roomserver: Any) -> None:
    config = RoomServerConfig(port=0, client_js_path=str(CLIENT_JS), max_rooms=1)
    server = await nursery.start(serve_roomserver, config)
    artifacts = ARTIFACTS / "roomserver"
    report = await run_scenario(node, server.url, artifacts)
    assert_what_the_pages_showed(report)
    for name in ("lobby.png", "room.png", "room-phone.png", "room-closed-phone.png"):
        assert (artifacts / name).stat().st_size > 0


async def test_lobby_page_with_node_reference_server(node: str) -> None:
    """The same scenario against socket.io 4 on Node (``standin_server.mjs``): the
    page is a correct client of the room protocol as the reference library speaks it."""
    from support.refservers import open_subprocess_server

    async with open_subprocess_server([node, str(STANDIN_SERVER), "--max-rooms", "1"], cwd=HERE) as url:
        artifacts = ARTIFACTS / "node-reference"
        report = await run_scenario(node, url, artifacts)
    assert_what_the_pages_showed(report)
    for name in ("lobby.png", "room.png"):
        assert (artifacts / name).stat().st_size > 0


# ---- the race ----

#: What the CSV holds: one row per student and card, the winner first.
CSV_HEADER = ["place", "student", "user_id", "card", "problem", "right_answer", "given", "correct", "seconds"]
EXPECTED_CSV = [
    # place, student, card, problem, right answer, given, correct
    ["1", "Bob", "1", "6 × 7", "42", "42", "yes"],
    ["1", "Bob", "2", "1/2 + 1/4", "3/4", " 0.75 ", "yes"],
    ["1", "Bob", "3", "Capital of France", "Paris", "paris", "yes"],
    ["2", "Alice", "1", "6 × 7", "42", "42", "yes"],
    ["2", "Alice", "2", "1/2 + 1/4", "3/4", "'=1/3", "no"],  # a formula guard: students type "="
    ["2", "Alice", "3", "Capital of France", "Paris", "PARIS", "yes"],
]


def assert_the_race_the_pages_showed(report: dict[str, Any]) -> None:
    teacher, alice, bob = (report["pages"][name] for name in ("teacher", "alice", "bob"))
    for page in (teacher, alice, bob):
        assert page["problems"] == []

    # One countdown for everyone: the same start_at, clocks synced to within 250 ms.
    assert report["countdown"] == {
        "sameStartAt": True,
        "shown": {"teacher": True, "alice": True, "bob": True},
        "synced": True,
        "clockSpreadUnder250ms": True,
    }
    # Bob (keyboard only) waits in the answer field; his screen reader heard the start once.
    assert bob["focusDuringCountdown"] == "answer-input"
    assert bob["liveUntilGo"] == [
        "The race starts in 3 seconds. Type each answer and press Enter.",
        "Go! Card 1 of 3: 6 × 7",
    ]
    assert alice["cardDuringCountdown"] == "Your first card appears here at the start."
    assert alice["firstProblem"] == "6 × 7"

    # Right/wrong at once; the answer field keeps the focus until the last card.
    assert [(a["feedback"], a["cardCount"]) for a in bob["answers"]] == [
        ("right", "Card 2 of 3"), ("right", "Card 3 of 3"), ("right", "Card 3 of 3")]
    assert [a["focus"] for a in bob["answers"][:2]] == ["answer-input", "answer-input"]
    assert bob["focusWhenDone"] == "race-done"
    assert [a["feedback"] for a in alice["answers"]] == ["right", "wrong", "right"]
    assert alice["answers"][1]["text"] == "✗ Wrong — on to the next card"

    # Live progress, seen by the others.
    assert teacher["aliceLaneAfterOne"] == {
        "answered": "1",
        "correct": "1",
        "done": "false",
        "name": "Alice",
        "stats": "1 of 3 · 1 right",
        "spoken": ": 1 of 3 answered, 1 right",  # what a screen reader reads after the name
    }
    assert alice["bobLane"]["done"] == "true"
    assert alice["bobLane"]["stats"].startswith("Done: 3 of 3 right · ")
    assert teacher["answerFormShown"] is False  # the host does not race

    # The results: places, and each student's own answers against the right ones.
    for page in (teacher, alice, bob):
        results = page["results"]
        assert results["reason"] == "Everyone answered every card."
        assert [(r["place"], r["name"], r["cells"][0], r["cells"][2]) for r in results["ranking"]] == [
            (1, "Bob", "1st", "3 of 3"), (2, "Alice", "2nd", "2 of 3")]
        assert results["focus"] == "results-heading"
    assert alice["results"]["ranking"][1]["badges"] == ["you"]
    assert alice["results"]["mine"] == [
        {"result": "right", "given": "42", "expected": "42"},
        {"result": "wrong", "given": "=1/3", "expected": "3/4"},
        {"result": "right", "given": "PARIS", "expected": "Paris"},
    ]
    assert [m["result"] for m in bob["results"]["mine"]] == ["right", "right", "right"]
    assert teacher["results"]["mine"] is None

    # The teacher's table and its CSV: one row per student and card.
    assert teacher["matrix"] == [
        ["Bob", "✓\u00a042 (right)", "✓\u00a0 0.75  (right)", "✓\u00a0paris (right)"],
        ["Alice", "✓\u00a042 (right)", "✗\u00a0=1/3 (wrong)", "✓\u00a0PARIS (right)"],
    ]
    csv = report["csv"]
    assert csv["filename"] == "race-race-day-1.csv"
    assert csv["bom"] is True
    assert csv["rows"][0] == CSV_HEADER
    body = csv["rows"][1:]
    assert [[r[0], r[1], r[3], r[4], r[5], r[6], r[7]] for r in body] == EXPECTED_CSV
    assert all(float(r[8]) >= 0 for r in body)
    assert len({r[2] for r in body}) == 2  # the two students' user ids

    # The race locked the room; the rematch, with late join, did not.
    assert teacher["lockedByRace"] is True
    first, second = report["rematch"]["raceIds"]
    assert first != second
    assert report["rematch"]["roomLocked"] is False
    # A time limit shows the time left, in a silent role=timer.
    assert report["rematch"]["timer"] == {"phase": "Time left", "timerRole": "timer", "underAMinute": True}
    assert bob["rematchAnswer"]["feedback"] == "wrong"
    # Alice, back during the race, starts at card 1 with everyone's progress so far.
    assert alice["lateJoin"]["card"] == "Card 1 of 3"
    assert alice["lateJoin"]["problem"] == "6 × 7"
    assert alice["lateJoin"]["focus"] == "answer-input"
    assert alice["lateJoin"]["bobLane"]["answered"] == "1"
    assert alice["lateAnswer"]["feedback"] == "right"
    rematch = report["rematch"]["results"]
    assert rematch["reason"] == "The host ended the race."
    assert [(r["place"], r["name"], r["cells"][2]) for r in rematch["ranking"]] == [
        (1, "Alice", "1 of 3"), (2, "Bob", "0 of 3")]

    # Kick and lock.
    assert alice["kicked"] == "The host removed you from “Race day”. You are back in the lobby."
    assert alice["rejoin"] == {
        "code": "banned", "text": "The host removed you from this room, so you cannot join it again."}
    assert alice["lockedRoom"] == {
        "button": "Locked",
        "disabled": True,
        "meta": "Host: Ms Rivera · Deck: Mixed bag (3 cards) · 1 / 50 players · Race over · Locked",
    }


RACE_SCREENSHOTS = ("race.png", "race-phone.png", "results.png", "results-phone.png")


def assert_the_pages_came_back_mid_race(report: dict[str, Any]) -> None:
    """Seats that outlive a connection: a student's and the teacher's reload mid-race,
    and a phone 5 s offline, each carry on where they were."""
    teacher, alice, bob = (report["pages"][name] for name in ("teacher", "alice", "bob"))
    assert alice["reload"] == {
        "sawReconnecting": "reconnecting",
        "problem": "1/2 + 1/4",
        "me": "Alice",
    }
    assert teacher["reload"]["roomTitle"] == "Race day"
    assert teacher["reload"]["aliceLane"] == teacher["aliceLaneAfterOne"]
    assert teacher["reload"]["answerFormShown"] is False
    assert bob["afterOffline"] == {"next": 0}


async def test_race_page_with_node_reference_server(node: str) -> None:
    """A whole race against the stand-in (``standin_server.mjs``): the page is a
    correct client of race.md as socket.io 4 speaks it."""
    from support.refservers import open_subprocess_server

    async with open_subprocess_server([node, str(STANDIN_SERVER)], cwd=HERE) as url:
        artifacts = ARTIFACTS / "node-reference-race"
        report = await run_scenario(node, url, artifacts, RACE_SCENARIO, env={"SCENARIO_SEATS": "1"})
    assert_the_race_the_pages_showed(report)
    assert_the_pages_came_back_mid_race(report)
    for name in RACE_SCREENSHOTS:
        assert (artifacts / name).stat().st_size > 0


async def test_race_page_with_roomserver(nursery: trio.Nursery, node: str, serve_roomserver: Any) -> None:
    config = RoomServerConfig(port=0, client_js_path=str(CLIENT_JS))
    server = await nursery.start(serve_roomserver, config)
    artifacts = ARTIFACTS / "roomserver-race"
    report = await run_scenario(node, server.url, artifacts, RACE_SCENARIO, env={"SCENARIO_SEATS": "1"})
    assert_the_race_the_pages_showed(report)
    assert_the_pages_came_back_mid_race(report)
    for name in RACE_SCREENSHOTS:
        assert (artifacts / name).stat().st_size > 0


# ---- signed identity (race.md, "Identity") ----

SIGNED_SCENARIO = HERE / "signed_scenario.mjs"
SIGNING_SECRET = "the-school-site-and-the-room-server-share-this"


def school_credential(sub: str, name: str, role: str, expires_in: float = 600) -> str:
    """What a school's site makes for a signed-in user (docs/configuration.md)."""
    import time

    import jwt

    claims = {"sub": sub, "name": name, "role": role, "exp": int(time.time() + expires_in)}
    return jwt.encode(claims, SIGNING_SECRET, algorithm="HS256")


async def test_signed_identity_on_the_page(nursery: trio.Nursery, node: str, serve_roomserver: Any) -> None:
    config = RoomServerConfig(
        port=0, client_js_path=str(CLIENT_JS), identity_secret=SIGNING_SECRET, teachers_only_create=True
    )
    server = await nursery.start(serve_roomserver, config)
    credentials = {
        "teacher": school_credential("t-1", "Ms Rivera", "teacher"),
        "student": school_credential("s-7", "Sam", "student"),
        "expired": school_credential("s-8", "Late", "student", expires_in=-3600),
    }
    report = await run_scenario(
        node, server.url, ARTIFACTS / "roomserver-signed", SIGNED_SCENARIO,
        env={"SCENARIO_CREDENTIALS": json.dumps(credentials)},
    )
    teacher, student, late = (report["pages"][name] for name in ("teacher", "student", "late"))
    assert teacher["signed"] == {
        "hash": "",  # taken out of the address bar
        "namesFieldHidden": True,
        "rolePickerHidden": True,
        "me": {"id": "t-1", "username": "Ms Rivera", "auth_level": "teacher"},
    }
    assert teacher["whoami"] == "Signed in as Ms Rivera (teacher)"
    assert student["signed"]["me"] == {"id": "s-7", "username": "Sam", "auth_level": "student"}
    assert student["signed"]["rolePickerHidden"] is True
    assert late["code"] == "unauthenticated" and "expired" in late["error"] and late["view"] == "signin"
    assert teacher["afterReload"] == {"view": "room", "room": "Signed room", "hash": ""}
    assert report["problems"] == []
