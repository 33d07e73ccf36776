"""A python-socketio client in its own process, to be killed mid-race (SIGKILL).

Run by tests/app/test_seats_app.py: ``python killable_client.py URL USER_ID
TRANSPORT ROOM ANSWER``. It joins the lobby as USER_ID and joins room ROOM,
prints ``{"ready": true}``, answers card 0 with ANSWER once the race has
started, prints ``{"token": ..., "ack": ...}`` and waits to be killed. With ROOM
``host`` it creates a room instead (ANSWER is then the deck, as JSON), prints
``{"room": id, "token": ...}``, and starts the race (countdown 0) when a line
arrives on its stdin, printing the ack. A killed process says no goodbye: the kernel closes its sockets, so
the server sees the transport close without a Socket.IO DISCONNECT or an
Engine.IO close packet, a drop (race.md, "Seats that outlive a connection").
"""

from __future__ import annotations

import json
import sys
import threading

import socketio


def main() -> None:
    url, user_id, transport, room, answer = sys.argv[1:6]
    started = threading.Event()
    race: dict[str, object] = {}
    client = socketio.Client(reconnection=False)

    @client.on("racestart", namespace="/lobby")
    def on_racestart(payload: dict[str, object]) -> None:
        race.update(payload)
        started.set()

    client.connect(url, transports=[transport], namespaces=["/lobby"], wait_timeout=10)
    joined = client.call("join_lobby", {"id": user_id, "username": user_id}, namespace="/lobby", timeout=10)
    if room == "host":
        made = client.call("create_room", {"name": "Killable", "deck": json.loads(answer)}, namespace="/lobby",
                           timeout=10)
        print(json.dumps({"room": made["room"]["id"], "token": joined["token"]}), flush=True)
        sys.stdin.readline()
        started_ack = client.call("start_race", {"id": made["room"]["id"], "countdown": 0}, namespace="/lobby",
                                  timeout=10)
        print(json.dumps({"ack": started_ack}), flush=True)
        threading.Event().wait()  # until killed
    if int(room):
        assert client.call("join_room", {"id": int(room)}, namespace="/lobby", timeout=10)["ok"]
    print(json.dumps({"ready": True}), flush=True)
    if not started.wait(20):
        raise SystemExit("no racestart within 20 s")
    ack = client.call(
        "answer", {"id": int(room), "race_id": race["race_id"], "card": 0, "answer": answer},
        namespace="/lobby", timeout=10,
    )
    print(json.dumps({"token": joined["token"], "ack": ack}), flush=True)
    threading.Event().wait()  # until killed


if __name__ == "__main__":
    main()
