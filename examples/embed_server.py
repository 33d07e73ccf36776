"""Run the room server inside your own trio program, next to your own tasks.

    python examples/embed_server.py          # serves on a free port, prints the URL

The server is a task in *your* nursery: you get its URL and statistics, and you
decide when it stops (here: after --seconds, or on Ctrl-C).
"""

import argparse

import trio

from roomactors import RoomServerConfig, serve_roomserver


async def main(seconds: float) -> None:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_roomserver, RoomServerConfig(port=0))
        print(f"room server at {server.url}", flush=True)
        await trio.sleep(seconds)
        print(f"statistics: {server.statistics()}", flush=True)
        await server.shutdown()  # players are told (roomclosed: shutdown), connections closed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3600.0, help="how long to serve (default: an hour)")
    trio.run(main, parser.parse_args().seconds)
