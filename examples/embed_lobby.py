"""The lobby and rooms with no network at all: the same actors the server runs.

    python examples/embed_lobby.py

A MemoryClient stands for a connected client: it records what the actors send
it. A bot, a test or a different transport can drive the lobby this way.
"""

import trio

from roomactors import MemoryClient, open_lobby

DECK = {"name": "Times tables", "flashcards": [{"id": 1, "problem": "6x7", "answer": "42"}]}


async def main() -> None:
    async with open_lobby() as lobby:
        teacher, student = MemoryClient("teacher"), MemoryClient("student")
        await lobby.connect(teacher)
        await lobby.connect(student)
        await lobby.command(teacher, "join_lobby", {"id": 1, "username": "mia", "auth_level": "teacher"})
        await lobby.command(student, "join_lobby", {"id": 2, "username": "sam", "auth_level": "student"})
        reply = await lobby.command(teacher, "create_room", {"name": "Tables", "deck": DECK})
        room_id = reply["room"]["id"]
        print("created:", reply["room"]["name"], "id", room_id)
        print("join:", await lobby.command(student, "join_room", {"id": room_id}))
        rooms = (await student.next_room_list()).to_json()
        while not rooms or not rooms[0]["players"]:
            rooms = (await student.next_room_list()).to_json()
        print("the student sees:", [(r["name"], [p["username"] for p in r["players"]]) for r in rooms])
        await lobby.command(teacher, "leave_room", {"id": room_id})
        print("the student was told:", await student.wait_event("roomclosed"))


if __name__ == "__main__":
    trio.run(main)
