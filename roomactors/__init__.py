"""roomactors: the lobby and game-room server of a multiplayer flashcard game.

Three layers, each usable on its own: an Engine.IO v4 server on trio
(:mod:`roomactors.engineio`), a Socket.IO v5 server on top of it
(:mod:`roomactors.socketio`), and the lobby and room actors
(:mod:`roomactors.actors`) that speak the room protocol of ``docs/protocol.md``.
"""

import logging as _logging

_logging.getLogger(__name__).addHandler(_logging.NullHandler())

__all__: tuple[str, ...] = ()
