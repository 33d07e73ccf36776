// The room protocol (docs/protocol.md in this repository) on Node's socket.io 4: a benchmark peer.
//
// Why it exists: the benchmark compares roomactors with the reference stacks doing
// the same work, so this server follows the same contract, check for check:
// namespaces "/" and "/lobby" share one lobby, every command answers by ack or by
// `rejected`, errors come in the contract's order, `updaterooms` goes to every
// client on every change, `roomclosed` precedes it, a second connection of a user
// takes over. It keeps everything in one process's memory, like roomactors.
// The race (docs/protocol.md, "The race")
// too: the deck's answers stay in the room until `raceover`, every time is the
// server's, `raceprogress` goes out at most every 200 ms per room (socket.io has no
// newest-wins per client: the room's throttle is all the coalescing there is).
// Room codes and unlisted rooms (protocol.md "Room codes and the room feed": `code`,
// `create_room {listed}`, `join_room {code}`, `roomupdated`), not the feed
// (`watch_rooms`): the race benchmark seats its players in unlisted rooms.
// Identity (race.md "Identity"): the open mode only, with seat tokens: every join
// issues a fresh token, and a held user id is claimed only with it (else
// `identity_taken`, nothing changes). Signed identity (`join_lobby {credential}`,
// JWTs) is not implemented here: the benchmark peers need only open identity.
// Seats that outlive a connection (race.md): a drop (socket.io's "transport close",
// "transport error" or "ping timeout": no DISCONNECT packet) keeps the user's seat
// for --reconnect-grace seconds (a timer per held seat), shown `connected: false`;
// a return with the token takes it back (`racestate` during a race); when the grace
// ends a player leaves and a host's room closes (`host_disconnected`).
//
//   node server.mjs --port 0 [--host 127.0.0.1] [--max-players 50] [--max-rooms 10000]
//                   [--command-rate 20] [--command-burst 40]   (rate 0: no limit)
//                   [--reconnect-grace 60]   (0: a drop is a leave)
//                   [--ping-interval 25] [--ping-timeout 20] [--max-payload 1000000]
//                   [--exit-on-stdin-close]   (for a parent that may die without a signal)
// Prints the bound port on stdout as one line once listening.

import { randomBytes, timingSafeEqual } from "node:crypto";
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
    "reconnect-grace": { type: "string", default: "60" },
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
  reconnectGraceMs: Number(flags["reconnect-grace"]) * 1000,
};
// socket.io's reasons for a connection that ended without a goodbye
const DROP_REASONS = new Set(["transport close", "transport error", "ping timeout"]);
const MAX_ID_CHARS = 64;
const MAX_USER_TEXT_CHARS = 64;
const MAX_TOKEN_CHARS = 64; // a seat token as a client sends it back (ours are 24 characters)
const SEAT_TOKEN_BYTES = 18; // 144 random bits, 24 base64url characters, as roomactors
const MAX_NAME_CHARS = 100;
const MAX_CARDS = 1000;
const OPTIONAL_DECK_FIELDS = ["id", "description", "user_id", "user_name", "created", "changed", "private"];
const COMMANDS = new Set([
  "join_lobby", "leave_lobby", "create_room", "join_room", "leave_room",
  "time_sync", "start_race", "answer", "end_race", "race_results", "kick_player", "lock_room",
]);
const MAX_ANSWER_CHARS = 100;
const PROGRESS_INTERVAL_MS = 200;
const RESULTS_KEPT = 10;
const NO_LIMIT_CAP_S = 3600;
const CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const CODE_LENGTH = 6;
const MAX_CODE_CHARS = 16;

/** Server epoch milliseconds: the monotonic clock plus the epoch at start-up, so they never jump. */
const serverMs = () => Math.floor(performance.timeOrigin + performance.now());

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
  let token = null;
  if (has(raw, "token") && raw.token !== null) {
    if (typeof raw.token !== "string") throw invalid(`${where}token must be the string from your join_lobby ack, or null`);
    if (raw.token.length > MAX_TOKEN_CHARS) throw invalid(`${where}token has more than ${MAX_TOKEN_CHARS} characters`);
    token = raw.token;
  }
  return {
    id: parseUserId(raw.id, `${where}id`),
    username: optionalText(raw, "username", where),
    authLevel: optionalText(raw, "auth_level", where),
    token,
  };
}

const newSeatToken = () => randomBytes(SEAT_TOKEN_BYTES).toString("base64url");

/** Whether `given` is the seat's token, compared in constant time. */
function tokenMatches(given, expected) {
  if (given === null || expected === null) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
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

/** join_room's target: `{id}` or `{code}`, never both. */
function parseRoomTarget(payload) {
  const raw = requireObject(payload, "join_room");
  const hasCode = has(raw, "code");
  if (hasCode && has(raw, "id")) throw invalid("join_room takes a room id or a code, not both");
  if (!hasCode) return { id: parseRoomId(raw, "join_room"), code: null };
  if (typeof raw.code !== "string" || chars(raw.code) < 1 || chars(raw.code) > MAX_CODE_CHARS) {
    throw invalid(`a room code is a string of 1 to ${MAX_CODE_CHARS} characters`);
  }
  return { id: null, code: raw.code.toUpperCase() };
}

function parseCreateRoom(payload) {
  const raw = requireObject(payload, "create_room");
  if (!has(raw, "name")) throw invalid("create_room needs a room name");
  const name = trimmedName(raw.name, "name");
  if (!has(raw, "deck")) throw invalid("create_room needs a deck");
  const deck = parseDeck(raw.deck);
  const host = raw.host !== undefined && raw.host !== null ? parseUserClaim(raw.host, "host.") : null;
  let listed = deck.info.private !== true; // a private deck makes an unlisted room unless `listed` says otherwise
  if (has(raw, "listed") && raw.listed !== null) {
    if (typeof raw.listed !== "boolean") throw invalid("listed must be true or false");
    listed = raw.listed;
  }
  return { name, deck, host, listed };
}

function optionalSeconds(raw, key, low, high, fallback) {
  if (!has(raw, key)) return fallback;
  const value = raw[key];
  if (!isNumber(value) || value < low || value > high) throw invalid(`${key} must be a number of seconds from ${low} to ${high}`);
  return value;
}

function optionalFlag(raw, key) {
  if (!has(raw, key)) return false;
  if (typeof raw[key] !== "boolean") throw invalid(`${key} must be true or false`);
  return raw[key];
}

function positiveInt(raw, key, command) {
  if (!has(raw, key)) throw invalid(`${command} needs ${key}`);
  if (!isInt(raw[key]) || raw[key] <= 0) throw invalid(`${key} must be a positive integer`);
  return raw[key];
}

function parseStartRace(payload) {
  const raw = requireObject(payload, "start_race");
  const id = parseRoomId(raw, "start_race");
  const countdown = optionalSeconds(raw, "countdown", 0, 10, 3);
  let timeLimit = null;
  if (has(raw, "time_limit") && raw.time_limit !== null) timeLimit = optionalSeconds(raw, "time_limit", 10, 3600, null);
  return { id, countdown, timeLimit, shuffle: optionalFlag(raw, "shuffle"), lateJoin: optionalFlag(raw, "late_join") };
}

function parseAnswer(payload) {
  const raw = requireObject(payload, "answer");
  const id = parseRoomId(raw, "answer");
  const raceId = positiveInt(raw, "race_id", "answer");
  if (!has(raw, "card")) throw invalid("answer needs the card index");
  if (!isInt(raw.card) || raw.card < 0) throw invalid("card must be a non-negative integer (the index of your next card)");
  if (!has(raw, "answer")) throw invalid("answer needs the answer");
  const given = raw.answer;
  if (typeof given === "string") {
    if (chars(given) > MAX_ANSWER_CHARS) throw invalid(`an answer has at most ${MAX_ANSWER_CHARS} characters`);
  } else if (!isNumber(given)) throw invalid("an answer is a string or a number");
  return { id, raceId, card: raw.card, given };
}

// The matching rule: trimmed, NFKC, case-folded, inner whitespace collapsed; or equal
// exact rationals (BigInt numerator/denominator, as Python's fractions.Fraction reads
// "4", "4.0", "8/2", "0.75", "3/4"). A decimal exponent beyond ±20 is text only.
const MAX_EXPONENT = 20;
const RATIONAL = /^([-+]?)(?=\d|\.\d)(\d*|\d+(?:_\d+)*)(?:\s*\/\s*(\d+(?:_\d+)*)|(?:\.(\d+(?:_\d+)*)?)?(?:e([-+]?\d+(?:_\d+)*))?)$/i;

/** The text a number is read through: its shortest decimal form, as JSON wrote it. */
const answerText = (v) => (typeof v === "number" ? String(v) : v);

/** Python's str.casefold as far as JavaScript can: full upper then lower case folds ß
 * to ss; a final sigma folds like any sigma. */
function normalize(text) {
  return text.normalize("NFKC").toUpperCase().toLowerCase().replace(/ς/g, "σ").trim().split(/\s+/).join(" ");
}

function rational(text) {
  const m = RATIONAL.exec(text);
  if (!m) return null;
  const digits = (d) => BigInt((d || "0").replace(/_/g, ""));
  const sign = m[1] === "-" ? -1n : 1n;
  if (m[3] !== undefined) {
    const den = digits(m[3]);
    return den === 0n ? null : [sign * digits(m[2]), den];
  }
  const decimals = (m[4] || "").replace(/_/g, "");
  const exp = m[5] === undefined ? 0 : Number(m[5].replace(/_/g, ""));
  if (Math.abs(exp) > MAX_EXPONENT) return null;
  let num = sign * digits(`${m[2] || "0"}${decimals}`);
  let den = 10n ** BigInt(decimals.length);
  if (exp >= 0) num *= 10n ** BigInt(exp);
  else den *= 10n ** BigInt(-exp);
  return [num, den];
}

function matches(given, expected) {
  const a = normalize(answerText(given));
  const b = normalize(answerText(expected));
  if (a === b) return true;
  const x = rational(a);
  const y = x && rational(b);
  return Boolean(y) && x[0] * y[1] === y[0] * x[1];
}

function shuffled(n) {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** Most correct first, then smallest time_ms, then most answered; equal on all three
 * share a place and the next place skips (1, 1, 3). Never answered: time_ms null, last. */
function ranking(players) {
  const time = (p) => (p.timeMs === null ? Infinity : p.timeMs);
  const sorted = [...players].sort((a, b) => b.correct - a.correct || time(a) - time(b) || b.answered - a.answered);
  const out = [];
  sorted.forEach((p, i) => {
    const prev = sorted[i - 1];
    const tied = prev && prev.correct === p.correct && time(prev) === time(p) && prev.answered === p.answered;
    out.push({ place: tied ? out[i - 1].place : i + 1, id: p.id, username: p.username, correct: p.correct, answered: p.answered, time_ms: p.timeMs, left: p.left });
  });
  return out;
}

// --- the lobby: users, rooms, connections ----------------------------------------

const userJson = (u) => ({ id: u.id, username: u.username, auth_level: u.authLevel });
const memberJson = (state) => ({ ...userJson(state.user), connected: state.connId !== null }); // null: dropped, in its grace
const sameUserId = (a, b) => a === b; // 1 and "1" are different users, as in Python

class Lobby {
  constructor(io, namespaces) {
    this.io = io;
    this.namespaces = namespaces;
    this.conns = new Map(); // socket.id -> {socket, userId, tokens, refilledAt}
    this.users = new Map(); // user id -> {user, connId, roomId}
    this.rooms = new Map(); // room id -> {id, name, host, deck, cards, players: [user ids], max_players}
    this.codes = new Map(); // room code -> room id, for open rooms
    this.nextRoomId = 1;
    this.dirty = false; // the list changed
    this.changed = new Set(); // rooms whose members get a roomupdated
  }

  connect(socket) {
    this.conns.set(socket.id, { socket, userId: null, tokens: LIMITS.commandBurst, refilledAt: performance.now() / 1000 });
  }

  disconnect(socket, reason) {
    const conn = this.conns.get(socket.id);
    if (!conn) return; // replaced earlier (a takeover disconnects it mid-command: publish nothing here)
    if (conn.userId !== null) {
      if (DROP_REASONS.has(reason) && LIMITS.reconnectGraceMs > 0) this.hold(this.users.get(conn.userId));
      else this.removeUser(conn, "host_disconnected");
    }
    this.conns.delete(socket.id);
    this.publishIfDirty();
  }

  /** A drop: the seat waits for the token's holder for the grace, shown connected: false. */
  hold(state) {
    state.connId = null;
    state.graceTimer = setTimeout(() => this.later(() => this.graceEnded(state)), LIMITS.reconnectGraceMs);
    if (state.roomId === null) return;
    const room = this.rooms.get(state.roomId);
    this.touch(room);
    if (this.runningRace(room)) this.scheduleProgress(room);
  }

  graceEnded(state) {
    if (this.users.get(state.user.id) !== state || state.connId !== null) return; // came back
    this.removeState(state, "host_disconnected");
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
    this.checkHeld(conn, claim);
    const returning = this.users.get(claim.id)?.connId === null;
    const state = this.bind(conn, claim);
    if (returning && state.roomId !== null) {
      const room = this.rooms.get(state.roomId);
      this.touch(room); // connected: true again
      const race = this.runningRace(room);
      if (race) {
        this.sendTo(state.user.id, "racestate", this.raceState(room, race, race.players.get(state.user.id)));
        this.scheduleProgress(room);
      }
    }
    if (!this.dirty) conn.socket.emit("updaterooms", this.roomList()); // else the broadcast covers it
    state.token = newSeatToken(); // the previous one stops working
    return { ok: true, user: userJson(state.user), room: state.roomId, token: state.token };
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
      this.checkHeld(conn, request.host);
    } else {
      if (request.host !== null && !sameUserId(request.host.id, conn.userId)) {
        throw new ProtocolError("identity_mismatch", `this connection speaks for user ${conn.userId}`);
      }
      userId = conn.userId;
    }
    const existing = this.users.get(userId);
    if (existing && existing.roomId !== null) throw new ProtocolError("already_in_room", `you sit in room ${existing.roomId}`);
    if (this.rooms.size >= LIMITS.maxRooms) throw new ProtocolError("too_many_rooms", "the server holds its limit of rooms");
    const binds = conn.userId === null;
    const state = binds ? this.bind(conn, request.host) : this.users.get(userId);
    if (binds) state.token = newSeatToken(); // it bound this connection, as join_lobby does
    const room = {
      id: this.nextRoomId++,
      code: this.newCode(),
      listed: request.listed,
      name: request.name,
      hostId: state.user.id,
      deck: request.deck.info,
      cards: request.deck.cards, // kept, never shown
      players: [],
      state: "waiting",
      locked: false,
      banned: new Set(),
      race: null, // the current or last race
      nextRaceId: 1,
      results: [], // the last RESULTS_KEPT finished races, newest last
    };
    this.rooms.set(room.id, room);
    this.codes.set(room.code, room.id);
    state.roomId = room.id;
    this.touch(room);
    const reply = { ok: true, room: this.summary(room) };
    if (binds) reply.token = state.token;
    return reply;
  }

  join_room(conn, payload) {
    const target = parseRoomTarget(payload);
    const state = this.speaker(conn);
    const room = target.code === null ? this.room(target.id, state) : this.roomByCode(target.code);
    const roomId = room.id;
    if (state.roomId === roomId) return { ok: true, room: this.summary(room) };
    if (state.roomId !== null) throw new ProtocolError("already_in_room", `you sit in room ${state.roomId}; leave it first`);
    if (room.banned.has(state.user.id)) throw new ProtocolError("banned", `the host removed you from room ${roomId}; pick another room`);
    if (room.locked) throw new ProtocolError("room_locked", `room ${roomId} is locked; ask its host to unlock it`);
    const race = this.runningRace(room);
    if (race && !race.lateJoin) throw new ProtocolError("race_in_progress", `room ${roomId} is racing; join when the race is over`);
    if (room.players.length >= LIMITS.maxPlayers) throw new ProtocolError("room_full", `room ${roomId} is full`);
    room.players.push(state.user.id);
    state.roomId = roomId;
    this.touch(room);
    if (race) {
      const player = this.racer(state.user);
      race.players.set(state.user.id, player);
      this.sendTo(state.user.id, "racestate", this.raceState(room, race, player));
      this.scheduleProgress(room);
    }
    return { ok: true, room: this.summary(room) };
  }

  leave_room(conn, payload) {
    const roomId = parseRoomId(payload, "leave_room");
    const state = this.speaker(conn);
    const room = this.room(roomId, state);
    if (state.roomId !== roomId) throw new ProtocolError("not_in_room", `you are not in room ${roomId}`);
    if (sameUserId(room.hostId, state.user.id)) this.closeRoom(roomId, "host_left");
    else this.leaveSeat(room, state);
    return { ok: true };
  }

  // --- the race --------------------------------------------------------------------

  time_sync(conn, payload) {
    const raw = requireObject(payload, "time_sync");
    if (!has(raw, "t0") || !isNumber(raw.t0)) throw invalid("time_sync needs t0, your clock's reading as a number");
    return { ok: true, t0: raw.t0, server_ms: serverMs() };
  }

  start_race(conn, payload) {
    const request = parseStartRace(payload);
    const { room } = this.hostOf(conn, request.id);
    if (this.runningRace(room)) throw new ProtocolError("race_in_progress", `room ${room.id} is racing; end_race first`);
    if (room.players.length === 0) throw new ProtocolError("no_players", `room ${room.id} has no players yet; wait for someone to join`);
    const now = serverMs();
    const startAt = now + Math.round(request.countdown * 1000);
    const endAt = startAt + Math.round((request.timeLimit ?? NO_LIMIT_CAP_S) * 1000);
    const order = request.shuffle ? shuffled(room.cards.length) : room.cards.map((_, i) => i);
    const race = {
      id: room.nextRaceId++,
      startAt,
      endAt,
      lateJoin: request.lateJoin,
      cards: order.map((i) => room.cards[i]),
      players: new Map(room.players.map((id) => [id, this.racer(this.users.get(id).user)])),
      over: false,
      lastProgressAt: -Infinity,
      progressTimer: null,
      startTimer: null,
      endTimer: null,
    };
    this.clearTimers(room);
    room.race = race;
    if (!request.lateJoin) room.locked = true;
    room.state = startAt > now ? "countdown" : "racing";
    this.touch(room);
    if (startAt > now) race.startTimer = setTimeout(() => this.later(() => this.advance(room)), startAt - now);
    race.endTimer = setTimeout(() => this.later(() => this.advance(room)), endAt - now);
    const cards = race.cards.map((card, index) => ({ index, problem: card.problem }));
    const players = [...race.players.values()].map((p) => ({ id: p.id, username: p.username }));
    this.sendToMembers(room, "racestart", { id: room.id, race_id: race.id, start_at: startAt, end_at: endAt, server_ms: now, cards, players });
    return { ok: true, race_id: race.id, start_at: startAt, end_at: endAt };
  }

  answer(conn, payload) {
    const request = parseAnswer(payload);
    const state = this.speaker(conn);
    const room = this.room(request.id, state);
    const race = room.race;
    const player = race && race.id === request.raceId ? race.players.get(state.user.id) : undefined;
    if (!player || player.left) throw new ProtocolError("not_racing", `you are not a player of race ${request.raceId} in room ${room.id}`);
    const now = serverMs();
    if (!race.over && now < race.startAt) throw new ProtocolError("race_not_started", `the race starts at ${race.startAt} (server time); wait for it`);
    if (race.over) throw new ProtocolError("race_over", `race ${race.id} is over; wait for the next one`);
    if (request.card !== player.next) {
      const next = player.next === null ? "you have answered every card" : `your next card is ${player.next}`;
      throw new ProtocolError("wrong_card", `${next}; answer the cards in order`);
    }
    const card = race.cards[request.card];
    const correct = matches(request.given, card.answer);
    const ms = now - race.startAt;
    player.mine.push({ index: request.card, given: request.given, correct, ms });
    player.answered += 1;
    if (correct) player.correct += 1;
    player.timeMs = ms;
    player.next = request.card + 1 < race.cards.length ? request.card + 1 : null;
    this.scheduleProgress(room);
    this.endIfAllDone(room);
    return { ok: true, card: request.card, correct, next: player.next };
  }

  end_race(conn, payload) {
    const roomId = parseRoomId(payload, "end_race");
    const { room } = this.hostOf(conn, roomId);
    if (!this.runningRace(room)) throw new ProtocolError("not_racing", `room ${room.id} has no race running`);
    this.finishRace(room, "host_ended");
    return { ok: true };
  }

  race_results(conn, payload) {
    const raw = requireObject(payload, "race_results");
    const roomId = parseRoomId(raw, "race_results");
    let raceId = null;
    if (has(raw, "race_id") && raw.race_id !== null) raceId = positiveInt(raw, "race_id", "race_results");
    const { room } = this.hostOf(conn, roomId);
    const running = this.runningRace(room);
    if (running && (raceId === null || raceId === running.id)) {
      throw new ProtocolError("race_in_progress", `race ${running.id} is still running; ask again when it is over`);
    }
    const found = raceId === null ? room.results[room.results.length - 1] : room.results.find((r) => r.race_id === raceId);
    if (!found) throw new ProtocolError("race_not_found", raceId === null ? `room ${room.id} has no finished race yet` : `room ${room.id} keeps no race ${raceId}`);
    return { ok: true, results: found };
  }

  kick_player(conn, payload) {
    const raw = requireObject(payload, "kick_player");
    const roomId = parseRoomId(raw, "kick_player");
    if (!has(raw, "user")) throw invalid("kick_player needs the user id to kick");
    const userId = parseUserId(raw.user, "user");
    const { room } = this.hostOf(conn, roomId);
    if (!room.players.some((id) => sameUserId(id, userId))) throw new ProtocolError("not_in_room", `user ${JSON.stringify(userId)} is not a player of room ${room.id}`);
    room.banned.add(userId);
    this.leaveSeat(room, this.users.get(userId));
    this.sendTo(userId, "kicked", { id: room.id });
    return { ok: true };
  }

  lock_room(conn, payload) {
    const raw = requireObject(payload, "lock_room");
    const roomId = parseRoomId(raw, "lock_room");
    if (!has(raw, "locked") || typeof raw.locked !== "boolean") throw invalid("lock_room needs locked: true or false");
    const { room } = this.hostOf(conn, roomId);
    if (room.locked !== raw.locked) {
      room.locked = raw.locked;
      this.touch(room);
    }
    return { ok: true };
  }

  hostOf(conn, roomId) {
    const state = this.speaker(conn);
    const room = this.room(roomId, state);
    if (!sameUserId(room.hostId, state.user.id)) throw new ProtocolError("not_host", `only the host of room ${room.id} may do that`);
    return { state, room };
  }

  racer(user) {
    return { id: user.id, username: user.username, next: 0, answered: 0, correct: 0, timeMs: null, left: false, mine: [] };
  }

  runningRace(room) {
    return room.race && !room.race.over ? room.race : null;
  }

  /** A timer fired: act on the room as a command would, then publish. */
  later(fn) {
    try {
      fn();
    } catch (err) {
      console.error(err);
    } finally {
      this.publishIfDirty();
    }
  }

  /** The countdown's end and end_at, on the server's clock. */
  advance(room) {
    const race = this.runningRace(room);
    if (!race || this.rooms.get(room.id) !== room) return;
    const now = serverMs();
    if (now >= race.endAt) this.finishRace(room, "time_up");
    else if (room.state === "countdown" && now >= race.startAt) {
      room.state = "racing";
      this.touch(room);
    } else {
      // a timer a little early: try again at the due time
      const due = room.state === "countdown" ? race.startAt : race.endAt;
      const field = room.state === "countdown" ? "startTimer" : "endTimer";
      race[field] = setTimeout(() => this.later(() => this.advance(room)), Math.max(1, due - now));
    }
  }

  endIfAllDone(room) {
    const race = this.runningRace(room);
    if (race && [...race.players.values()].every((p) => p.left || p.next === null)) this.finishRace(room, "all_done");
  }

  clearTimers(room) {
    const race = room.race;
    if (!race) return;
    for (const key of ["startTimer", "endTimer", "progressTimer"]) {
      clearTimeout(race[key]);
      race[key] = null;
    }
  }

  finishRace(room, reason) {
    const race = room.race;
    race.over = true;
    this.clearTimers(room);
    room.state = "finished";
    this.touch(room);
    const players = [...race.players.values()];
    const results = {
      id: room.id,
      race_id: race.id,
      reason,
      ranking: ranking(players),
      cards: race.cards.map((card, index) => ({ index, problem: card.problem, answer: card.answer })),
    };
    room.results.push({ ...results, answers: players.map((p) => ({ id: p.id, username: p.username, mine: p.mine })) });
    if (room.results.length > RESULTS_KEPT) room.results.shift();
    this.sendTo(room.hostId, "raceover", { ...results, mine: [] });
    for (const p of players) if (!p.left) this.sendTo(p.id, "raceover", { ...results, mine: p.mine });
  }

  progressPlayers(race) {
    return [...race.players.values()].map((p) => ({
      id: p.id, username: p.username, answered: p.answered, correct: p.correct, done: p.next === null, time_ms: p.timeMs,
      connected: !p.left && this.users.get(p.id)?.connId != null,
    }));
  }

  raceState(room, race, player) {
    return {
      id: room.id, race_id: race.id, state: room.state, start_at: race.startAt, end_at: race.endAt, server_ms: serverMs(),
      cards: race.cards.map((card, index) => ({ index, problem: card.problem })), next: player ? player.next : null,
      progress: this.progressPlayers(race),
    };
  }

  /** At most one raceprogress per room every PROGRESS_INTERVAL_MS: the first change goes
   * out at once, later ones wait for the interval and go out as one. */
  scheduleProgress(room) {
    const race = room.race;
    if (race.progressTimer !== null) return;
    const wait = race.lastProgressAt + PROGRESS_INTERVAL_MS - performance.now();
    const send = () => {
      race.progressTimer = null;
      if (race.over || this.rooms.get(room.id) !== room) return;
      race.lastProgressAt = performance.now();
      this.sendToMembers(room, "raceprogress", { id: room.id, race_id: race.id, server_ms: serverMs(), players: this.progressPlayers(race) });
    };
    if (wait <= 0) send();
    else race.progressTimer = setTimeout(send, wait);
  }

  sendTo(userId, event, payload) {
    const state = this.users.get(userId);
    if (state) this.conns.get(state.connId)?.socket.emit(event, payload);
  }

  /** One encode per namespace: socket.io sends to a list of socket ids as rooms. */
  sendToMembers(room, event, payload) {
    const byNamespace = new Map();
    for (const userId of [room.hostId, ...room.players]) {
      const socket = this.conns.get(this.users.get(userId)?.connId)?.socket;
      if (!socket) continue;
      if (!byNamespace.has(socket.nsp)) byNamespace.set(socket.nsp, []);
      byNamespace.get(socket.nsp).push(socket.id);
    }
    for (const [nsp, ids] of byNamespace) nsp.to(ids).emit(event, payload);
  }

  speaker(conn) {
    if (conn.userId === null) throw new ProtocolError("not_in_lobby", "send join_lobby first");
    return this.users.get(conn.userId);
  }

  /** A room by id; an unlisted room only for its members (ids reveal nothing). */
  room(roomId, state = null) {
    const room = this.rooms.get(roomId);
    if (!room || (!room.listed && state && !this.isMember(room, state.user.id))) {
      throw new ProtocolError("room_not_found", `room ${roomId} does not exist; check the id or join by code`);
    }
    return room;
  }

  roomByCode(code) {
    const room = this.rooms.get(this.codes.get(code));
    if (!room) throw new ProtocolError("room_not_found", `no open room has the code ${code}; check it with your host`);
    return room;
  }

  isMember(room, userId) {
    return sameUserId(room.hostId, userId) || room.players.some((id) => sameUserId(id, userId));
  }

  newCode() {
    for (;;) {
      let code = "";
      for (let i = 0; i < CODE_LENGTH; i++) code += CODE_ALPHABET[Math.floor(Math.random() * CODE_ALPHABET.length)];
      if (!this.codes.has(code)) return code;
    }
  }

  /** The room's summary changed: its members get a roomupdated, and a listed room's change is a list change. */
  touch(room) {
    this.changed.add(room);
    if (room.listed) this.dirty = true;
  }

  /** race.md "Identity": a held id (here: connected elsewhere) is taken over only with
   * its seat token; else identity_taken, and nothing changes. */
  checkHeld(conn, claim) {
    const state = this.users.get(claim.id);
    if (!state || state.connId === conn.socket.id || tokenMatches(claim.token, state.token)) return;
    const given = claim.token !== null ? "a token that is not this seat's" : "no token";
    throw new ProtocolError(
      "identity_taken",
      `user ${JSON.stringify(claim.id)} is signed in on another connection and this carries ${given}; to take the seat over, `
        + "send the token from that user's last join_lobby ack, or use another id",
    );
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
      state = { user, connId: conn.socket.id, roomId: null, token: null, graceTimer: null };
      this.users.set(claim.id, state);
      conn.userId = claim.id;
      return state;
    }
    if (state.connId !== conn.socket.id) this.takeOver(state, conn);
    if (user.username !== state.user.username || user.authLevel !== state.user.authLevel) {
      state.user = user;
      if (state.roomId !== null) this.touch(this.rooms.get(state.roomId)); // the change shows in the list
    }
    return state;
  }

  takeOver(state, conn) {
    clearTimeout(state.graceTimer); // a return within the grace
    state.graceTimer = null;
    const old = state.connId === null ? undefined : this.conns.get(state.connId);
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
    this.removeState(this.users.get(conn.userId), hostReason);
    conn.userId = null;
  }

  removeState(state, hostReason) {
    if (state.roomId !== null) {
      const room = this.rooms.get(state.roomId);
      if (sameUserId(room.hostId, state.user.id)) this.closeRoom(room.id, hostReason);
      else this.leaveSeat(room, state);
    }
    this.users.delete(state.user.id);
  }

  leaveSeat(room, state) {
    room.players = room.players.filter((id) => !sameUserId(id, state.user.id));
    state.roomId = null;
    this.touch(room);
    const player = room.race?.players.get(state.user.id);
    if (player && !player.left) {
      player.left = true; // stays in the results with what they answered
      if (this.runningRace(room)) {
        this.scheduleProgress(room);
        this.endIfAllDone(room);
      }
    }
  }

  closeRoom(roomId, reason) {
    const room = this.rooms.get(roomId);
    if (!room) return;
    if (this.runningRace(room)) this.finishRace(room, reason); // raceover before roomclosed, to the host too
    this.clearTimers(room);
    this.rooms.delete(roomId);
    this.codes.delete(room.code);
    this.changed.delete(room);
    if (room.listed) this.dirty = true;
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
      code: room.code,
      name: room.name,
      host: memberJson(this.users.get(room.hostId)),
      deck: { ...room.deck },
      players: room.players.map((id) => memberJson(this.users.get(id))),
      max_players: LIMITS.maxPlayers,
      state: room.state,
      locked: room.locked,
    };
  }

  roomList() {
    return [...this.rooms.values()].filter((room) => room.listed).map((room) => this.summary(room));
  }

  publishIfDirty() {
    for (const room of this.changed) if (this.rooms.get(room.id) === room) this.sendToMembers(room, "roomupdated", { room: this.summary(room) });
    this.changed.clear();
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
    socket.on("disconnect", (reason) => lobby.disconnect(socket, reason));
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
