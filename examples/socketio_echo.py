"""The Socket.IO layer on its own: an echo server with acks, no rooms.

    python examples/socketio_echo.py --port 5000

Any Socket.IO client (browser, Node, python-socketio) can connect with default
settings: `io("http://127.0.0.1:5000").emitWithAck("echo", "hi")` answers "hi".
"""

import argparse

import trio

from roomactors import Socket, SocketIOServer

sio = SocketIOServer()


@sio.on("connect")
async def on_connect(socket: Socket, auth: object) -> None:
    socket.emit("welcome", {"sid": socket.sid})


@sio.on("echo")
async def echo(socket: Socket, *args: object) -> tuple[object, ...]:
    return args  # the return value is the ack


async def main(port: int) -> None:
    async with trio.open_nursery() as nursery:
        addresses = await nursery.start(sio.serve, "127.0.0.1", port)
        host, bound = addresses[0]
        print(f"Socket.IO echo server at http://{host}:{bound}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5000, help="TCP port on 127.0.0.1; 0 picks a free one")
    trio.run(main, parser.parse_args().port)
