"""Signed identity: how a school's site signs its users into the room server.

    python examples/signed_identity.py       # serves on a free port, prints sign-in links

The school's site and the room server share one secret. The site, which knows
who is signed in, makes a short-lived credential (a JWT, HS256) with the user's
id, name and role, and sends the browser to the room server's page with it in
the URL fragment (``#credential=...``: a fragment never reaches a server's logs).
The page hands it to ``join_lobby {credential}``; the server believes the claims,
and nothing else: nobody can pick "teacher" or take another user's id.

This example plays both parts: ``make_credential`` is what the school's site
runs (five lines, PyJWT), and the room server runs embedded with the same
secret and ``teachers_only_create``, so that only the teacher can create rooms.
"""

import argparse
import secrets
import time

import jwt  # pip install PyJWT
import trio

from roomactors import RoomServerConfig, serve_roomserver


def make_credential(user_id: str, name: str, role: str, secret: str, minutes: int = 60) -> str:
    """What the school's site runs for the signed-in user (see docs/configuration.md)."""
    claims = {"sub": str(user_id), "name": name, "role": role, "exp": int(time.time()) + 60 * minutes}
    return jwt.encode(claims, secret, algorithm="HS256")


async def main(seconds: float) -> None:
    secret = secrets.token_urlsafe(32)  # in real life: --identity-secret-file, shared with the site
    config = RoomServerConfig(port=0, identity_secret=secret, teachers_only_create=True)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_roomserver, config)
        print(f"room server at {server.url}", flush=True)
        for user_id, name, role in (("t-1", "Ms Rivera", "teacher"), ("s-17", "Mia", "student")):
            print(f"{role} {name}: {server.url}/#credential={make_credential(user_id, name, role, secret)}", flush=True)
        await trio.sleep(seconds)
        await server.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3600.0, help="how long to serve (default: an hour)")
    trio.run(main, parser.parse_args().seconds)
