// A stand-in room server on Node's socket.io 4, for the lobby page's browser test.
//
// Why: the page must be proven a correct client of the room protocol
// (/work/shared/protocol.md) against a server built on the reference library,
// independently of roomactors' own server. It implements just enough of the
// protocol for the page: join_lobby, leave_lobby, create_room, join_room,
// leave_room with acks and `rejected`, updaterooms, roomclosed, replaced,
// max_rooms / max_players. It serves the page like roomactors.web.routes does
// (the client from node_modules at /static/socket.io.min.js).
//
// Usage: node standin_server.mjs [--max-rooms N] [--max-players N]
// Listens on 127.0.0.1 port 0 and prints the port as its first stdout line;
// exits when stdin closes.

import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..", "..");
const require = createRequire(join(repo, "tests", "js", "package.json"));
const { Server } = require("socket.io");

function flag(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}
const maxRooms = flag("--max-rooms", 10000);
const maxPlayers = flag("--max-players", 50);

const staticDir = join(repo, "roomactors", "web", "static");
const clientJs = join(dirname(require.resolve("socket.io-client/package.json")), "dist", "socket.io.min.js");
const files = {
  "/": ["text/html; charset=utf-8", () =>
    readFileSync(join(staticDir, "index.html"), "utf8").replace("{{CLIENT_JS_URL}}", "/static/socket.io.min.js")],
  "/static/lobby.css": ["text/css; charset=utf-8", () => readFileSync(join(staticDir, "lobby.css"))],
  "/static/lobby.js": ["text/javascript; charset=utf-8", () => readFileSync(join(staticDir, "lobby.js"))],
  "/static/socket.io.min.js": ["text/javascript; charset=utf-8", () => readFileSync(clientJs)],
};

const httpServer = createServer((req, res) => {
  if (req.url.startsWith("/socket.io/")) return; // socket.io answers these
  const file = files[req.url.split("?")[0]];
  if (!file || req.method !== "GET") {
    res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    return;
  }
  const body = file[1]();
  res.writeHead(200, { "content-type": file[0], "cache-control": "no-cache" }).end(body);
});
const io = new Server(httpServer, { serveClient: false });

// ---- state: users, rooms ----
const users = new Map(); // id key -> {user, socket}
const rooms = new Map(); // room id -> {id, name, host, deck, players: [user], max_players}
let nextRoomId = 1;
const key = (id) => `${typeof id}:${id}`;

function summary(room) {
  return {
    id: room.id,
    name: room.name,
    host: room.host,
    deck: room.deck,
    players: room.players,
    max_players: room.max_players,
  };
}
const roomList = () => [...rooms.values()].map(summary);
const namespaces = [io.of("/"), io.of("/lobby")];
const broadcast = () => namespaces.forEach((nsp) => nsp.emit("updaterooms", roomList()));

function seatOf(userId) {
  for (const room of rooms.values()) {
    if (key(room.host.id) === key(userId)) return { room, host: true };
    if (room.players.some((p) => key(p.id) === key(userId))) return { room, host: false };
  }
  return null;
}

function closeRoom(room, reason) {
  rooms.delete(room.id);
  for (const player of room.players) {
    const entry = users.get(key(player.id));
    if (entry) entry.socket.emit("roomclosed", { id: room.id, reason });
  }
}

function leaveSeat(userId, reason) {
  const seat = seatOf(userId);
  if (!seat) return false;
  if (seat.host) closeRoom(seat.room, reason);
  else seat.room.players = seat.room.players.filter((p) => key(p.id) !== key(userId));
  return true;
}

class Refusal extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const validId = (id) => (Number.isInteger(id) || (typeof id === "string" && id.length > 0 && id.length <= 64));
const roomId = (payload) => {
  if (!payload || !Number.isInteger(payload.id) || payload.id < 1) throw new Refusal("invalid_payload", "id must be a positive integer");
  return payload.id;
};

function serve(nsp) {
  nsp.on("connection", (socket) => {
    let me = null;
    const commands = {
      join_lobby(payload) {
        if (!payload || !validId(payload.id)) throw new Refusal("invalid_payload", "id must be an integer or a string");
        if (me && key(me.id) !== key(payload.id)) throw new Refusal("identity_mismatch", "this connection speaks for another user");
        const previous = users.get(key(payload.id));
        const user = {
          id: payload.id,
          username: payload.username ?? previous?.user.username ?? null,
          auth_level: payload.auth_level ?? previous?.user.auth_level ?? null,
        };
        if (previous && previous.socket !== socket) {
          previous.socket.emit("replaced", { reason: "joined from another connection" });
          previous.socket.disconnect();
        }
        me = user;
        users.set(key(user.id), { user, socket });
        socket.emit("updaterooms", roomList());
        return { user, room: seatOf(user.id)?.room.id ?? null };
      },
      leave_lobby(payload) {
        if (!me) throw new Refusal("not_in_lobby", "sign in first");
        if (payload && key(payload.id) !== key(me.id)) throw new Refusal("forbidden", "not you");
        if (leaveSeat(me.id, "host_left")) broadcast();
        users.delete(key(me.id));
        me = null;
        return {};
      },
      create_room(payload) {
        if (!payload || typeof payload.name !== "string" || !payload.name.trim() || payload.name.trim().length > 100)
          throw new Refusal("invalid_payload", "name must be 1 to 100 characters");
        const deck = payload.deck;
        const cards = deck && (deck.flashcards ?? deck.flashcard);
        if (!deck || typeof deck.name !== "string" || !deck.name || !Array.isArray(cards) || cards.length < 1 || cards.length > 1000)
          throw new Refusal("invalid_payload", "deck needs a name and 1 to 1000 cards");
        if (!me) throw new Refusal("not_in_lobby", "sign in first");
        if (seatOf(me.id)) throw new Refusal("already_in_room", "leave your room first");
        if (rooms.size >= maxRooms) throw new Refusal("too_many_rooms", `the server holds at most ${maxRooms} rooms`);
        const room = {
          id: nextRoomId++,
          name: payload.name.trim(),
          host: me,
          deck: {
            id: deck.id ?? null, name: deck.name, description: deck.description ?? null,
            numProblems: deck.numProblems ?? cards.length, user_id: deck.user_id ?? null,
            user_name: deck.user_name ?? null, created: null, changed: null, private: deck.private ?? null,
          },
          players: [],
          max_players: maxPlayers,
        };
        rooms.set(room.id, room);
        broadcast();
        return { room: summary(room) };
      },
      join_room(payload) {
        const id = roomId(payload);
        if (!me) throw new Refusal("not_in_lobby", "sign in first");
        const room = rooms.get(id);
        if (!room) throw new Refusal("room_not_found", `no room ${id}`);
        const seat = seatOf(me.id);
        if (seat && seat.room === room) return { room: summary(room) };
        if (seat) throw new Refusal("already_in_room", "leave your room first");
        if (room.players.length >= room.max_players) throw new Refusal("room_full", "the room is full");
        room.players.push(me);
        broadcast();
        return { room: summary(room) };
      },
      leave_room(payload) {
        const id = roomId(payload);
        if (!me) throw new Refusal("not_in_lobby", "sign in first");
        if (!rooms.has(id)) throw new Refusal("room_not_found", `no room ${id}`);
        if (seatOf(me.id)?.room.id !== id) throw new Refusal("not_in_room", "you are not in that room");
        leaveSeat(me.id, "host_left");
        broadcast();
        return {};
      },
    };
    for (const [event, run] of Object.entries(commands)) {
      socket.on(event, (payload, ack) => {
        try {
          const reply = { ok: true, ...run(payload) };
          if (typeof ack === "function") ack(reply);
        } catch (err) {
          if (!(err instanceof Refusal)) throw err;
          const error = { code: err.code, message: err.message };
          if (typeof ack === "function") ack({ ok: false, error });
          else socket.emit("rejected", { event, ...error });
        }
      });
    }
    socket.on("disconnect", () => {
      if (!me) return;
      const entry = users.get(key(me.id));
      if (entry && entry.socket === socket) {
        users.delete(key(me.id));
        if (leaveSeat(me.id, "host_disconnected")) broadcast();
      }
    });
  });
}
namespaces.forEach(serve);

httpServer.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${httpServer.address().port}\n`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
