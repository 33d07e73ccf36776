// The room protocol (docs/protocol.md in this repository) on Node's socket.io 4: a benchmark peer.
//
// Why it exists: the benchmark compares roomactors with the reference stacks doing
// the same work, so this server follows the same contract, check for check:
// namespaces "/" and "/lobby" share one lobby, every command answers by ack or by
// `rejected`, errors come in the contract's order, `updaterooms` goes to every
// client on every change, `roomclosed` precedes it, a second connection of a user
// takes over. It keeps everything in one process's memory, like roomactors.
//
//   node server.mjs --port 0 [--host 127.0.0.1] [--max-players 50] [--max-rooms 10000]
//                   [--command-rate 20] [--command-burst 40]   (rate 0: no limit)
//                   [--ping-interval 25] [--ping-timeout 20] [--max-payload 1000000]
//                   [--exit-on-stdin-close]   (for a parent that may die without a signal)
// Prints the bound port on stdout as one line once listening.

import { createServer } from "node:http";
import { createRequire } from "node:module";
import { parseArgs } from "node:util";

// socket.io from bench/node_modules; the test harness's copy (tests/js) will do as well.
let Server;
try {
  ({ Server } = await import("socket.io"));
} catch {
  ({ Server } = createRequire(new URL("../../../tests/js/package.json", import.meta.url))("socket.io"));
}

const { values: flags } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    "max-players": { type: "string", default: "50" },
    "max-rooms": { type: "string", default: "10000" },
    "command-rate": { type: "string", default: "20" },
    "command-burst": { type: "string", default: "40" },
    "ping-interval": { type: "string", default: "25" },
    "ping-timeout": { type: "string", default: "20" },
    "max-payload": { type: "string", default: "1000000" },
    "exit-on-stdin-close": { type: "boolean", default: false },
  },
});

const LIMITS = {
  maxPlayers: Number(flags["max-players"]),
  maxRooms: Number(flags["max-rooms"]),
  commandRate: Number(flags["command-rate"]) || null,
  commandBurst: Number(flags["command-burst"]),
};
const MAX_ID_CHARS = 64;
const MAX_USER_TEXT_CHARS = 64;
const MAX_NAME_CHARS = 100;
const MAX_CARDS = 1000;
const OPTIONAL_DECK_FIELDS = ["id", "description", "user_id", "user_name", "created", "changed", "private"];
const COMMANDS = new Set(["join_lobby", "leave_lobby", "create_room", "join_room", "leave_room"]);

class ProtocolError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}
const invalid = (message) => new ProtocolError("invalid_payload", message);

// --- validation: raw JSON in, clean values or ProtocolError out ------------------

const chars = (s) => [...s].length; // code points, as Python counts them
const isInt = (v) => typeof v === "number" && Number.isInteger(v);
const isNumber = (v) => typeof v === "number" && Number.isFinite(v);
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v) && !ArrayBuffer.isView(v);
const has = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);

function requireObject(payload, command) {
  if (!isObject(payload)) throw invalid(`${command} takes one JSON object`);
  return payload;
}

function parseUserId(value, where = "id") {
  if (isInt(value)) return value;
  if (typeof value === "string") {
    if (value.length === 0) throw invalid(`${where} must not be empty`);
    if (chars(value) > MAX_ID_CHARS) throw invalid(`${where} has more than ${MAX_ID_CHARS} characters`);
    return value;
  }
  throw invalid(`${where} must be an integer or a string`);
}

function optionalText(raw, key, where) {
  if (!has(raw, key)) return { given: false, value: null };
  const value = raw[key];
  if (value === null) return { given: true, value: null };
  if (typeof value !== "string") throw invalid(`${where}${key} must be a string or null`);
  if (chars(value) > MAX_USER_TEXT_CHARS) throw invalid(`${where}${key} has more than ${MAX_USER_TEXT_CHARS} characters`);
  return { given: true, value };
}

function parseUserClaim(raw, where = "") {
  if (!isObject(raw)) throw invalid(`${where || "the payload "}must be an object`);
  if (!has(raw, "id")) throw invalid(`${where}id is missing`);
  return {
    id: parseUserId(raw.id, `${where}id`),
    username: optionalText(raw, "username", where),
    authLevel: optionalText(raw, "auth_level", where),
  };
}

function trimmedName(value, where) {
  if (typeof value !== "string") throw invalid(`${where} must be a string`);
  const name = value.trim();
  if (!name) throw invalid(`${where} must not be empty`);
  if (chars(name) > MAX_NAME_CHARS) throw invalid(`${where} has more than ${MAX_NAME_CHARS} characters`);
  return name;
}

function parseRoomId(payload, command) {
  const raw = requireObject(payload, command);
  if (!has(raw, "id")) throw invalid(`${command} needs the room id`);
  if (!isInt(raw.id) || raw.id <= 0) throw invalid("a room id is a positive integer");
  return raw.id;
}

function scalar(value, where) {
  if (value === null || typeof value === "string" || typeof value === "boolean" || isNumber(value)) return value;
  throw invalid(`${where} must be a string, number, boolean or null`);
}

function parseCard(raw, index) {
  const where = `deck card ${index}`;
  if (!isObject(raw)) throw invalid(`${where} must be an object`);
  if (!has(raw, "id")) throw invalid(`${where} has no id`);
  if (!(isInt(raw.id) || typeof raw.id === "string")) throw invalid(`${where}: id must be an integer or a string`);
  if (!has(raw, "problem")) throw invalid(`${where} has no problem`);
  if (!(typeof raw.problem === "string" || isNumber(raw.problem))) throw invalid(`${where}: problem must be a string or a number`);
  let answer;
  if (has(raw, "answer")) answer = raw.answer;
  else if (has(raw, "solution")) answer = raw.solution;
  else throw invalid(`${where} has no answer (or solution)`);
  if (!(typeof answer === "string" || isNumber(answer))) throw invalid(`${where}: answer must be a string or a number`);
  return { id: raw.id, problem: raw.problem, answer };
}

function parseDeck(raw) {
  if (!isObject(raw)) throw invalid("deck must be an object");
  if (!has(raw, "name")) throw invalid("deck.name is missing");
  const name = trimmedName(raw.name, "deck.name");
  let cardsRaw;
  if (has(raw, "flashcards")) cardsRaw = raw.flashcards;
  else if (has(raw, "flashcard")) cardsRaw = raw.flashcard;
  else throw invalid("deck has no cards (deck.flashcards)");
  if (!Array.isArray(cardsRaw)) throw invalid("deck cards must be an array");
  if (cardsRaw.length < 1 || cardsRaw.length > MAX_CARDS) throw invalid(`a deck has 1 to ${MAX_CARDS} cards`);
  const cards = cardsRaw.map(parseCard);
  const info = { id: null, name, description: null, numProblems: cards.length, user_id: null, user_name: null, created: null, changed: null, private: null };
  for (const key of OPTIONAL_DECK_FIELDS) if (has(raw, key)) info[key] = scalar(raw[key], `deck.${key}`);
  if (has(raw, "numProblems") && raw.numProblems !== null) {
    if (!isInt(raw.numProblems) || raw.numProblems < 0) throw invalid("deck.numProblems must be a non-negative integer");
    info.numProblems = raw.numProblems;
  }
  return { info, cards };
}

function parseCreateRoom(payload) {
  const raw = requireObject(payload, "create_room");
  if (!has(raw, "name")) throw invalid("create_room needs a room name");
  const name = trimmedName(raw.name, "name");
  if (!has(raw, "deck")) throw invalid("create_room needs a deck");
  const deck = parseDeck(raw.deck);
  const host = raw.host !== undefined && raw.host !== null ? parseUserClaim(raw.host, "host.") : null;
  return { name, deck, host };
}

// --- the lobby: users, rooms, connections ----------------------------------------

const userJson = (u) => ({ id: u.id, username: u.username, auth_level: u.authLevel });
const sameUserId = (a, b) => a === b; // 1 and "1" are different users, as in Python

class Lobby {
  constructor(io, namespaces) {
    this.io = io;
    this.namespaces = namespaces;
    this.conns = new Map(); // socket.id -> {socket, userId, tokens, refilledAt}
    this.users = new Map(); // user id -> {user, connId, roomId}
    this.rooms = new Map(); // room id -> {id, name, host, deck, cards, players: [user ids], max_players}
    this.nextRoomId = 1;
    this.dirty = false;
  }

  connect(socket) {
    this.conns.set(socket.id, { socket, userId: null, tokens: LIMITS.commandBurst, refilledAt: performance.now() / 1000 });
  }

  disconnect(socket) {
    const conn = this.conns.get(socket.id);
    if (!conn) return; // replaced earlier (a takeover disconnects it mid-command: publish nothing here)
    if (conn.userId !== null) this.removeUser(conn, "host_disconnected");
    this.conns.delete(socket.id);
    this.publishIfDirty();
  }

  command(socket, name, payload) {
    const conn = this.conns.get(socket.id);
    try {
      if (!conn) throw new ProtocolError("not_in_lobby", "this connection was replaced or has left");
      this.takeToken(conn);
      return this[name](conn, payload);
    } catch (err) {
      if (!(err instanceof ProtocolError)) {
        console.error(err);
        err = new ProtocolError("internal", "the server failed; nothing changed");
      }
      return { ok: false, error: { code: err.code, message: err.message } };
    } finally {
      this.publishIfDirty();
    }
  }

  takeToken(conn) {
    if (LIMITS.commandRate === null) return;
    const now = performance.now() / 1000;
    conn.tokens = Math.min(LIMITS.commandBurst, conn.tokens + (now - conn.refilledAt) * LIMITS.commandRate);
    conn.refilledAt = now;
    if (conn.tokens < 1) throw new ProtocolError("rate_limited", "too many commands from this connection");
    conn.tokens -= 1;
  }

  join_lobby(conn, payload) {
    const claim = parseUserClaim(requireObject(payload, "join_lobby"));
    if (conn.userId !== null && !sameUserId(conn.userId, claim.id)) {
      throw new ProtocolError("identity_mismatch", `this connection speaks for user ${conn.userId}`);
    }
    const state = this.bind(conn, claim);
    if (!this.dirty) conn.socket.emit("updaterooms", this.roomList()); // else the broadcast covers it
    return { ok: true, user: userJson(state.user), room: state.roomId };
  }

  leave_lobby(conn, payload) {
    const raw = requireObject(payload, "leave_lobby");
    if (!has(raw, "id")) throw invalid("leave_lobby needs your user id");
    const userId = parseUserId(raw.id);
    if (conn.userId === null) throw new ProtocolError("not_in_lobby", "send join_lobby first");
    if (!sameUserId(userId, conn.userId)) throw new ProtocolError("forbidden", `this connection speaks for user ${conn.userId}`);
    this.removeUser(conn, "host_left");
    return { ok: true };
  }

  create_room(conn, payload) {
    const request = parseCreateRoom(payload);
    let userId;
    if (conn.userId === null) {
      if (request.host === null) throw new ProtocolError("not_in_lobby", "join the lobby first, or send a host");
      userId = request.host.id;
    } else {
      if (request.host !== null && !sameUserId(request.host.id, conn.userId)) {
        throw new ProtocolError("identity_mismatch", `this connection speaks for user ${conn.userId}`);
      }
      userId = conn.userId;
    }
    const existing = this.users.get(userId);
    if (existing && existing.roomId !== null) throw new ProtocolError("already_in_room", `you sit in room ${existing.roomId}`);
    if (this.rooms.size >= LIMITS.maxRooms) throw new ProtocolError("too_many_rooms", "the server holds its limit of rooms");
    const state = conn.userId === null ? this.bind(conn, request.host) : this.users.get(userId);
    const room = {
      id: this.nextRoomId++,
      name: request.name,
      hostId: state.user.id,
      deck: request.deck.info,
      cards: request.deck.cards, // kept, never shown
      players: [],
    };
    this.rooms.set(room.id, room);
    state.roomId = room.id;
    this.dirty = true;
    return { ok: true, room: this.summary(room) };
  }

  join_room(conn, payload) {
    const roomId = parseRoomId(payload, "join_room");
    const state = this.speaker(conn);
    const room = this.room(roomId);
    if (state.roomId === roomId) return { ok: true, room: this.summary(room) };
    if (state.roomId !== null) throw new ProtocolError("already_in_room", `you sit in room ${state.roomId}`);
    if (room.players.length >= LIMITS.maxPlayers) throw new ProtocolError("room_full", `room ${roomId} is full`);
    room.players.push(state.user.id);
    state.roomId = roomId;
    this.dirty = true;
    return { ok: true, room: this.summary(room) };
  }

  leave_room(conn, payload) {
    const roomId = parseRoomId(payload, "leave_room");
    const state = this.speaker(conn);
    const room = this.room(roomId);
    if (state.roomId !== roomId) throw new ProtocolError("not_in_room", `you are not in room ${roomId}`);
    if (sameUserId(room.hostId, state.user.id)) this.closeRoom(roomId, "host_left");
    else this.leaveSeat(room, state);
    return { ok: true };
  }

  speaker(conn) {
    if (conn.userId === null) throw new ProtocolError("not_in_lobby", "send join_lobby first");
    return this.users.get(conn.userId);
  }

  room(roomId) {
    const room = this.rooms.get(roomId);
    if (!room) throw new ProtocolError("room_not_found", `room ${roomId} does not exist`);
    return room;
  }

  bind(conn, claim) {
    let state = this.users.get(claim.id);
    const base = state ? state.user : { id: claim.id, username: null, authLevel: null };
    const user = {
      id: claim.id,
      username: claim.username.given ? claim.username.value : base.username,
      authLevel: claim.authLevel.given ? claim.authLevel.value : base.authLevel,
    };
    if (!state) {
      state = { user, connId: conn.socket.id, roomId: null };
      this.users.set(claim.id, state);
      conn.userId = claim.id;
      return state;
    }
    if (state.connId !== conn.socket.id) this.takeOver(state, conn);
    if (user.username !== state.user.username || user.authLevel !== state.user.authLevel) {
      state.user = user;
      if (state.roomId !== null) this.dirty = true; // the change shows in the list
    }
    return state;
  }

  takeOver(state, conn) {
    const old = this.conns.get(state.connId);
    this.conns.delete(state.connId);
    state.connId = conn.socket.id;
    conn.userId = state.user.id;
    if (old) {
      old.userId = null;
      old.socket.emit("replaced", { reason: `user ${JSON.stringify(state.user.id)} joined from another connection` });
      old.socket.disconnect(); // leaves the namespace only, like roomactors' detach
    }
  }

  removeUser(conn, hostReason) {
    const state = this.users.get(conn.userId);
    if (state.roomId !== null) {
      const room = this.rooms.get(state.roomId);
      if (sameUserId(room.hostId, state.user.id)) this.closeRoom(room.id, hostReason);
      else this.leaveSeat(room, state);
    }
    this.users.delete(conn.userId);
    conn.userId = null;
  }

  leaveSeat(room, state) {
    room.players = room.players.filter((id) => !sameUserId(id, state.user.id));
    state.roomId = null;
    this.dirty = true;
  }

  closeRoom(roomId, reason) {
    const room = this.rooms.get(roomId);
    if (!room) return;
    this.rooms.delete(roomId);
    this.dirty = true;
    const tellHost = reason === "shutdown" || reason === "crashed";
    for (const seatedId of [room.hostId, ...room.players]) {
      const state = this.users.get(seatedId);
      if (!state || state.roomId !== roomId) continue;
      state.roomId = null;
      if (seatedId === room.hostId && !tellHost) continue;
      this.conns.get(state.connId)?.socket.emit("roomclosed", { id: roomId, reason });
    }
  }

  summary(room) {
    return {
      id: room.id,
      name: room.name,
      host: userJson(this.users.get(room.hostId).user),
      deck: { ...room.deck },
      players: room.players.map((id) => userJson(this.users.get(id).user)),
      max_players: LIMITS.maxPlayers,
    };
  }

  roomList() {
    return [...this.rooms.values()].map((room) => this.summary(room));
  }

  publishIfDirty() {
    if (!this.dirty) return;
    this.dirty = false;
    const list = this.roomList();
    for (const nsp of this.namespaces) nsp.emit("updaterooms", list); // one encode per namespace
  }
}

// --- wiring ----------------------------------------------------------------------

const httpServer = createServer();
const io = new Server(httpServer, {
  pingInterval: Number(flags["ping-interval"]) * 1000,
  pingTimeout: Number(flags["ping-timeout"]) * 1000,
  maxHttpBufferSize: Number(flags["max-payload"]),
});
const namespaces = [io.of("/"), io.of("/lobby")];
const lobby = new Lobby(io, namespaces);

for (const nsp of namespaces) {
  nsp.on("connection", (socket) => {
    lobby.connect(socket);
    socket.on("disconnect", () => lobby.disconnect(socket));
    socket.onAny((event, ...args) => {
      if (!COMMANDS.has(event)) return;
      const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
      const reply = lobby.command(socket, event, args[0]);
      if (ack) ack(reply);
      else if (!reply.ok) socket.emit("rejected", { event, code: reply.error.code, message: reply.error.message });
    });
  });
}

httpServer.listen(Number(flags.port), flags.host, () => {
  process.stdout.write(`${httpServer.address().port}\n`);
});

function stop() {
  io.close();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
if (flags["exit-on-stdin-close"]) {
  process.stdin.on("end", stop);
  process.stdin.resume();
}
