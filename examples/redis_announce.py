"""Announce something to every client of a roomserver cluster from any Python program.

The roomserver nodes (``roomserver --redis redis://...``) listen on python-socketio's
Redis channel, so an ordinary Python program needs nothing of roomactors: only
python-socketio and redis-py (``pip install python-socketio redis``), and the same
Redis. This is what a school's admin tool would run to tell every student, on
every node, that the races end in five minutes::

    python examples/redis_announce.py --redis redis://127.0.0.1:6379/0 "Races end in 5 minutes"

Every client connected to ``/lobby`` (``--namespace`` to change it) on any node
receives the event ``announcement`` with ``{"text": ...}``. ``--to SID`` sends to
one client only (every Socket.IO sid is a room of its own).
"""

from __future__ import annotations

import argparse

import socketio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("text", help="what to announce")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="the cluster's Redis URL")
    parser.add_argument("--channel", default="socketio", help="the nodes' --redis-channel (default: socketio)")
    parser.add_argument("--namespace", default="/lobby", help="the Socket.IO namespace (default: /lobby)")
    parser.add_argument("--event", default="announcement", help="the event name (default: announcement)")
    parser.add_argument("--to", default=None, metavar="SID", help="one client's sid instead of everyone")
    args = parser.parse_args()
    # write_only: this program only publishes; it is not a Socket.IO server itself.
    manager = socketio.RedisManager(args.redis, channel=args.channel, write_only=True)
    manager.emit(args.event, {"text": args.text}, namespace=args.namespace, room=args.to)
    print(f"announced on {args.redis} channel {args.channel!r}: {args.text}")


if __name__ == "__main__":
    main()
