// A stand-in room server on Node's socket.io 4, for the lobby page's browser test.
//
// Why: the page must be proven a correct client of the room protocol
// (docs/protocol.md) against a server built on the reference library,
// independently of roomactors' own server. It implements just enough of the
// protocol for the page: join_lobby, leave_lobby, create_room, join_room,
// leave_room with acks and `rejected`, updaterooms, roomclosed, replaced,
// max_rooms / max_players; and the race (docs/protocol.md, "The race": "Roles and
// phases", "Time", "Commands", "Events"): time_sync, start_race, answer, end_race,
// race_results, kick_player, lock_room; racestart, racestate (late join),
// raceprogress (at most every 200 ms per room), raceover, kicked; lists with
// `state`, `locked` and `connected`; room codes, unlisted rooms, `roomupdated` and
// the room feed (watch_rooms / roomschanged / unwatch_rooms) of protocol.md "Room
// codes and the room feed", simply: on each change every watcher's filtered list is
// computed again and compared with what it was sent (no coalescing, so no
// snapshots after the ack). Seats that outlive a connection and open identity
// (race.md "Seats that outlive a connection", "Identity"): every join_lobby ack
// carries a fresh seat `token`; a held user id (connected, or dropped within the
// grace) is claimed only with it, else `identity_taken`; a drop (socket.io's
// "transport close", "transport error" or "ping timeout": no DISCONNECT packet)
// keeps the seat for --reconnect-grace seconds with `connected: false`; coming back
// with the token takes it back (`racestate` during a race); when the grace ends a
// player leaves and a host's room closes (`host_disconnected`). Not here: signed
// identity, and create_room's `host` (the page always joins first). It serves the
// page like roomactors.web.routes does (the client from node_modules at
// /static/socket.io.min.js).
//
// Usage: node standin_server.mjs [--max-rooms N] [--max-players N] [--reconnect-grace S]
//   (--reconnect-grace: seconds a dropped user's seat is kept, default 60; 0: a drop is a leave)
// Listens on 127.0.0.1 port 0 and prints the port as its first stdout line;
// exits when stdin closes.

import { randomBytes, timingSafeEqual } from "node:crypto";
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
const reconnectGraceMs = flag("--reconnect-grace", 60) * 1000;
// socket.io's reasons for a connection that ended without a goodbye (no DISCONNECT packet)
const DROP_REASONS = new Set(["transport close", "transport error", "ping timeout"]);
const newSeatToken = () => randomBytes(18).toString("base64url"); // 144 bits, as roomactors
function tokenMatches(given, expected) {
  if (typeof given !== "string" || typeof expected !== "string") return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

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

// ---- time (race.md "Time"): server epoch ms from the monotonic clock ----
const epochOffset = Date.now() - performance.now();
const serverMs = () => Math.round(epochOffset + performance.now());

// ---- race.md's matching rule ----
// Trimmed, NFKC, case-folded (upper then lower: close to Python's casefold, ß → ss),
// inner whitespace collapsed; or equal as exact rationals (BigInt numerator and
// denominator), the way Python's fractions.Fraction reads "4", "4.0", "8/2", "0.75".
const RATIONAL = /^([-+]?)(?=\d|\.\d)(\d*)(?:\/(\d+)|(?:\.(\d*))?(?:e([-+]?\d+))?)$/i;
const MAX_EXPONENT = 20;

function answerText(value) {
  // A JSON number is read through its shortest decimal form (String() gives it).
  return String(value).normalize("NFKC").toUpperCase().toLowerCase().replace(/\s+/gu, " ").trim();
}

function toRational(text) {
  const match = RATIONAL.exec(text);
  if (!match) return null;
  const [, sign, whole, denominator, decimals = "", exponent] = match;
  let num;
  let den = 1n;
  if (denominator !== undefined) {
    num = BigInt(whole);
    den = BigInt(denominator);
    if (den === 0n) return null;
  } else {
    const exp = exponent === undefined ? 0 : Number(exponent);
    if (!(Math.abs(exp) <= MAX_EXPONENT)) return null; // compared as text only
    num = BigInt(`${whole}${decimals}` || "0");
    const shift = exp - decimals.length;
    if (shift >= 0) num *= 10n ** BigInt(shift);
    else den = 10n ** BigInt(-shift);
  }
  return { num: sign === "-" ? -num : num, den };
}

function answersMatch(given, expected) {
  const a = answerText(given);
  const b = answerText(expected);
  if (a === b) return true;
  const x = toRational(a);
  const y = toRational(b);
  return x !== null && y !== null && x.num * y.den === y.num * x.den;
}

// ---- state: users, rooms ----
const users = new Map(); // id key -> {user, socket (null while dropped), token, graceTimer}
const rooms = new Map(); // room id -> room (see create_room)
let nextRoomId = 1;
const key = (id) => `${typeof id}:${id}`;
const PROGRESS_EVERY_MS = 200;
const RACE_CAP_S = 3600;
const KEPT_RESULTS = 10;

const isConnected = (userId) => Boolean(users.get(key(userId))?.socket);
const connected = (user) => ({ ...user, connected: isConnected(user.id) });

function summary(room) {
  return {
    id: room.id,
    name: room.name,
    host: connected(room.host),
    deck: room.deck,
    players: room.players.map(connected),
    max_players: room.max_players,
    state: room.state,
    locked: room.locked,
    code: room.code,
  };
}
const roomList = () => [...rooms.values()].filter((room) => room.listed).map(summary);
const namespaces = [io.of("/"), io.of("/lobby")];

// ---- codes ----
const CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789";
function newCode() {
  for (;;) {
    const code = Array.from({ length: 6 }, () => CODE_ALPHABET[Math.floor(Math.random() * CODE_ALPHABET.length)]).join("");
    if (![...rooms.values()].some((room) => room.code === code)) return code;
  }
}

// ---- the feed: socket.data.watch = {filter, limit, version, sent: Map id -> JSON} ----
const STATES = ["waiting", "countdown", "racing", "finished"];
function hasSeats(room) {
  const late = running(room) && room.race.options.late_join;
  return !room.locked && room.players.length < room.max_players && (!running(room) || late);
}
function matches(room, filter) {
  if (filter.state !== null && !filter.state.includes(room.state)) return false;
  if (filter.has_seats !== null && hasSeats(room) !== filter.has_seats) return false;
  if (filter.name !== null && !room.name.toLowerCase().includes(filter.name.toLowerCase())) return false;
  if (filter.host !== null && key(room.host.id) !== key(filter.host)) return false;
  return true;
}
function feedRooms(watch) {
  return [...rooms.values()].filter((room) => room.listed && matches(room, watch.filter))
    .sort((a, b) => b.id - a.id).slice(0, watch.limit).map(summary);
}
function readFilter(payload) {
  if (payload !== undefined && payload !== null && (typeof payload !== "object" || Array.isArray(payload)))
    throw new Refusal("invalid_payload", "send watch_rooms {filter?, limit?}");
  const limit = payload?.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new Refusal("invalid_payload", "limit must be an integer from 1 to 1000");
  const raw = payload?.filter ?? {};
  if (typeof raw !== "object" || Array.isArray(raw)) throw new Refusal("invalid_payload", "filter must be an object");
  const filter = { state: null, has_seats: null, name: null, host: null };
  if (!absent(raw.state)) {
    const list = Array.isArray(raw.state) ? raw.state : [raw.state];
    if (!list.every((s) => STATES.includes(s))) throw new Refusal("invalid_payload", `filter.state must be one of ${STATES.join(", ")} or a list of them`);
    filter.state = list;
  }
  if (!absent(raw.has_seats)) {
    if (typeof raw.has_seats !== "boolean") throw new Refusal("invalid_payload", "filter.has_seats must be true or false");
    filter.has_seats = raw.has_seats;
  }
  if (!absent(raw.name)) {
    if (typeof raw.name !== "string") throw new Refusal("invalid_payload", "filter.name must be a string");
    filter.name = raw.name;
  }
  if (!absent(raw.host)) {
    if (!validId(raw.host)) throw new Refusal("invalid_payload", "filter.host must be a user id");
    filter.host = raw.host;
  }
  return { filter, limit };
}
function sendFeed(socket) {
  const watch = socket.data.watch;
  const now = new Map(feedRooms(watch).map((room) => [room.id, room]));
  const upsert = [...now.values()].filter((room) => watch.sent.get(room.id) !== JSON.stringify(room));
  const remove = [...watch.sent.keys()].filter((id) => !now.has(id));
  if (upsert.length === 0 && remove.length === 0) return;
  watch.version += 1;
  watch.sent = new Map([...now.values()].map((room) => [room.id, JSON.stringify(room)]));
  socket.emit("roomschanged", { version: watch.version, upsert, remove, snapshot: false });
}

// Every change: roomupdated to every room's members, then lists or feeds.
function broadcast() {
  for (const room of rooms.values()) {
    const room_ = summary(room);
    toMembers(room, "roomupdated", () => ({ room: room_ }));
  }
  for (const nsp of namespaces) {
    const list = roomList();
    for (const socket of nsp.sockets.values()) {
      if (socket.data.watch) sendFeed(socket);
      else socket.emit("updaterooms", list);
    }
  }
}
const socketOf = (userId) => users.get(key(userId))?.socket ?? null;

function seatOf(userId) {
  for (const room of rooms.values()) {
    if (key(room.host.id) === key(userId)) return { room, host: true };
    if (room.players.some((p) => key(p.id) === key(userId))) return { room, host: false };
  }
  return null;
}

// ---- the race ----
const running = (room) => room.race !== null && !room.race.over;

function toMembers(room, event, payloadFor) {
  for (const user of [room.host, ...room.players]) {
    const socket = socketOf(user.id);
    if (socket) socket.emit(event, payloadFor(user));
  }
}

function progressPlayers(race) {
  return [...race.racers.values()].map((r) => ({
    id: r.id,
    username: r.username,
    answered: r.answers.length,
    correct: r.correct,
    done: r.next === null,
    time_ms: r.time_ms,
    connected: !r.left && isConnected(r.id),
  }));
}

function sendProgress(room) {
  const race = room.race;
  room.progress.lastSent = serverMs();
  const payload = { id: room.id, race_id: race.race_id, server_ms: serverMs(), players: progressPlayers(race) };
  toMembers(room, "raceprogress", () => payload);
}

// At most one raceprogress per room every PROGRESS_EVERY_MS; a timer (even of 0 ms)
// also lets the answer's ack leave first.
function scheduleProgress(room) {
  const progress = room.progress;
  if (progress.timer) return;
  const wait = Math.max(0, progress.lastSent + PROGRESS_EVERY_MS - serverMs());
  progress.timer = setTimeout(() => {
    progress.timer = null;
    if (room.race && rooms.has(room.id)) sendProgress(room);
  }, wait);
}

function raceCards(race, withAnswers) {
  return race.cards.map((c) => (withAnswers ? { index: c.index, problem: c.problem, answer: c.answer } : { index: c.index, problem: c.problem }));
}

function ranking(race) {
  const rows = [...race.racers.values()].map((r) => ({
    place: 0, id: r.id, username: r.username, correct: r.correct, answered: r.answers.length, time_ms: r.time_ms, left: r.left,
  }));
  const order = (a, b) =>
    (b.answered > 0) - (a.answered > 0) || b.correct - a.correct || (a.time_ms ?? 0) - (b.time_ms ?? 0) || b.answered - a.answered;
  rows.sort(order);
  rows.forEach((row, i) => {
    row.place = i > 0 && order(rows[i - 1], row) === 0 ? rows[i - 1].place : i + 1;
  });
  return rows;
}

function endRace(room, reason, { quiet = false } = {}) {
  const race = room.race;
  if (!race || race.over) return;
  race.over = true;
  race.timers.forEach(clearTimeout);
  if (room.progress.timer) {
    clearTimeout(room.progress.timer);
    room.progress.timer = null;
    sendProgress(room); // the newest progress is never skipped
  }
  room.state = "finished";
  const base = { id: room.id, race_id: race.race_id, reason, ranking: ranking(race), cards: raceCards(race, true) };
  const answers = [...race.racers.values()].map((r) => ({ id: r.id, username: r.username, mine: r.answers }));
  room.results = [...room.results, { ...base, answers }].slice(-KEPT_RESULTS);
  toMembers(room, "raceover", (user) => ({ ...base, mine: race.racers.get(key(user.id))?.answers ?? [] }));
  if (!quiet) broadcast();
}

function checkAllDone(room) {
  const race = room.race;
  if (!race || race.over || !rooms.has(room.id)) return;
  if ([...race.racers.values()].every((r) => r.left || r.next === null)) endRace(room, "all_done");
}

function racerLeaves(room, userId) {
  const racer = running(room) ? room.race.racers.get(key(userId)) : undefined;
  if (!racer) return;
  racer.left = true;
  scheduleProgress(room);
  setImmediate(() => checkAllDone(room));
}

function newRacer(user) {
  return { id: user.id, username: user.username, next: 0, answers: [], correct: 0, time_ms: null, left: false };
}

function raceState(room, userId) {
  const race = room.race;
  const racer = race.racers.get(key(userId));
  return {
    id: room.id, race_id: race.race_id, state: room.state, start_at: race.start_at, end_at: race.end_at,
    server_ms: serverMs(), cards: raceCards(race, false), next: racer ? racer.next : null, progress: progressPlayers(race),
  };
}

function shuffled(list) {
  const out = [...list];
  for (let i = out.length - 1; i > 0; i -= 1) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function startRace(room, options) {
  const now = serverMs();
  const startAt = now + Math.round(options.countdown * 1000);
  const race = {
    race_id: room.nextRaceId++,
    start_at: startAt,
    end_at: startAt + Math.round((options.time_limit ?? RACE_CAP_S) * 1000),
    options,
    cards: (options.shuffle ? shuffled(room.cards) : room.cards).map((c, index) => ({ index, problem: c.problem, answer: c.answer })),
    racers: new Map(room.players.map((p) => [key(p.id), newRacer(p)])),
    over: false,
    timers: [],
  };
  room.race = race;
  room.state = options.countdown > 0 ? "countdown" : "racing";
  if (!options.late_join) room.locked = true;
  if (options.countdown > 0) {
    race.timers.push(setTimeout(() => {
      room.state = "racing";
      broadcast();
    }, startAt - now));
  }
  race.timers.push(setTimeout(() => endRace(room, "time_up"), race.end_at - now));
  const start = {
    id: room.id, race_id: race.race_id, start_at: race.start_at, end_at: race.end_at, server_ms: now,
    cards: raceCards(race, false), players: room.players.map((p) => ({ id: p.id, username: p.username })),
  };
  toMembers(room, "racestart", () => start);
  broadcast();
  return race;
}

function closeRoom(room, reason) {
  if (running(room)) endRace(room, reason, { quiet: true });
  if (room.progress.timer) clearTimeout(room.progress.timer);
  rooms.delete(room.id);
  for (const player of room.players) {
    users.get(key(player.id))?.socket?.emit("roomclosed", { id: room.id, reason });
  }
}

function leaveSeat(userId, reason) {
  const seat = seatOf(userId);
  if (!seat) return false;
  if (seat.host) closeRoom(seat.room, reason);
  else {
    seat.room.players = seat.room.players.filter((p) => key(p.id) !== key(userId));
    racerLeaves(seat.room, userId);
  }
  return true;
}

class Refusal extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const validId = (id) => (Number.isInteger(id) || (typeof id === "string" && id.length > 0 && id.length <= 64));
const positiveInt = (value) => Number.isInteger(value) && value >= 1;
const roomId = (payload) => {
  if (!payload || typeof payload !== "object" || !positiveInt(payload.id)) throw new Refusal("invalid_payload", "id must be a positive integer");
  return payload.id;
};
const absent = (value) => value === undefined || value === null;

function raceOptions(payload) {
  const number = (name, lo, hi, fallback) => {
    const value = payload[name];
    if (absent(value)) return fallback;
    if (typeof value !== "number" || !Number.isFinite(value) || value < lo || value > hi)
      throw new Refusal("invalid_payload", `${name} must be a number of seconds from ${lo} to ${hi}`);
    return value;
  };
  const flag = (name) => {
    const value = payload[name];
    if (absent(value)) return false;
    if (typeof value !== "boolean") throw new Refusal("invalid_payload", `${name} must be true or false`);
    return value;
  };
  return { countdown: number("countdown", 0, 10, 3), time_limit: number("time_limit", 10, 3600, null), shuffle: flag("shuffle"), late_join: flag("late_join") };
}

function serve(nsp) {
  nsp.on("connection", (socket) => {
    let me = null;
    const signedIn = () => {
      if (!me) throw new Refusal("not_in_lobby", "sign in first (join_lobby)");
    };
    // An unlisted room's id reveals nothing to whoever is not in it.
    const existingRoom = (id) => {
      const room = rooms.get(id);
      const member = room && me && seatOf(me.id)?.room === room;
      if (!room || (!room.listed && !member)) throw new Refusal("room_not_found", `no room ${id}: refresh the room list`);
      return room;
    };
    // Steps 1, 2, 4 and "who may do it" of a host's command.
    const hostedRoom = (payload) => {
      const id = roomId(payload);
      signedIn();
      const room = existingRoom(id);
      if (key(room.host.id) !== key(me.id)) throw new Refusal("not_host", "only the room's host can do that");
      return room;
    };
    const commands = {
      join_lobby(payload) {
        if (!payload || !validId(payload.id)) throw new Refusal("invalid_payload", "id must be an integer or a string");
        if (!absent(payload.token) && (typeof payload.token !== "string" || payload.token.length > 64))
          throw new Refusal("invalid_payload", "token must be the string from your join_lobby ack, or null");
        if (me && key(me.id) !== key(payload.id)) throw new Refusal("identity_mismatch", "this connection speaks for another user");
        const previous = users.get(key(payload.id));
        // A held id (connected elsewhere, or dropped within its grace) needs its seat token.
        if (previous && previous.socket !== socket && !tokenMatches(payload.token, previous.token))
          throw new Refusal("identity_taken", "that user id is in use; send the token from its last join_lobby ack, or pick another id");
        const user = {
          id: payload.id,
          username: payload.username ?? previous?.user.username ?? null,
          auth_level: payload.auth_level ?? previous?.user.auth_level ?? null,
        };
        const returning = previous !== undefined && previous.socket === null; // back within the grace
        if (previous?.socket && previous.socket !== socket) {
          previous.socket.emit("replaced", { reason: "joined from another connection" });
          previous.socket.disconnect();
        }
        if (previous) clearTimeout(previous.graceTimer);
        const newlyBound = previous?.socket !== socket;
        me = user;
        const entry = { user, socket, token: newSeatToken(), graceTimer: null }; // the old token stops working
        users.set(key(user.id), entry);
        const seat = seatOf(user.id);
        if (seat) {
          // the room's lists hold the user objects: keep them in step with the profile
          if (seat.host) seat.room.host = user;
          else seat.room.players = seat.room.players.map((p) => (key(p.id) === key(user.id) ? user : p));
        }
        if (!socket.data.watch) socket.emit("updaterooms", roomList());
        if (seat && newlyBound) socket.emit("roomupdated", { room: summary(seat.room) });
        if (returning && seat) {
          broadcast(); // connected: true again
          const room = seat.room;
          if (running(room)) {
            scheduleProgress(room);
            setImmediate(() => {
              if (running(room) && users.get(key(user.id)) === entry) entry.socket?.emit("racestate", raceState(room, user.id));
            });
          }
        }
        return { user, room: seat?.room.id ?? null, token: entry.token };
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
        if (!absent(payload.listed) && typeof payload.listed !== "boolean")
          throw new Refusal("invalid_payload", "listed must be true, false or null");
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
          cards: cards.map((c) => ({ problem: c.problem, answer: c.answer ?? c.solution })), // never sent before raceover
          players: [],
          max_players: maxPlayers,
          state: "waiting",
          locked: false,
          code: newCode(),
          listed: absent(payload.listed) ? deck.private !== true : payload.listed,
          banned: new Set(),
          race: null, // the running race, or the last one (over: true)
          results: [], // the last KEPT_RESULTS finished races, for race_results
          nextRaceId: 1,
          progress: { lastSent: 0, timer: null },
        };
        rooms.set(room.id, room);
        broadcast();
        return { room: summary(room) };
      },
      join_room(payload) {
        let room;
        if (payload && typeof payload === "object" && "code" in payload) {
          const code = payload.code;
          if (!absent(payload.id)) throw new Refusal("invalid_payload", "send either id or code, not both");
          if (typeof code !== "string" || code.length < 1 || code.length > 16)
            throw new Refusal("invalid_payload", "code must be a string of 1 to 16 characters");
          signedIn();
          room = [...rooms.values()].find((r) => r.code === code.toUpperCase());
          if (!room) throw new Refusal("room_not_found", "no open room has that code; check it with your host");
        } else {
          const id = roomId(payload);
          signedIn();
          room = existingRoom(id);
        }
        const seat = seatOf(me.id);
        if (seat && seat.room === room) return { room: summary(room) };
        if (seat) throw new Refusal("already_in_room", "leave your room first");
        if (room.banned.has(key(me.id))) throw new Refusal("banned", "the host removed you from this room; pick another one");
        if (room.locked) throw new Refusal("room_locked", "the host locked this room; ask them to unlock it");
        const late = running(room) && room.race.options.late_join;
        if (running(room) && !late) throw new Refusal("race_in_progress", "a race is running; join when it is over");
        if (room.players.length >= room.max_players) throw new Refusal("room_full", "the room is full");
        room.players.push(me);
        if (late) {
          const racer = room.race.racers.get(key(me.id));
          if (racer) racer.left = false;
          else room.race.racers.set(key(me.id), newRacer(me));
          const joiner = me;
          setImmediate(() => {
            if (running(room)) socketOf(joiner.id)?.emit("racestate", raceState(room, joiner.id));
          });
          scheduleProgress(room);
        }
        broadcast();
        return { room: summary(room) };
      },
      leave_room(payload) {
        const id = roomId(payload);
        signedIn();
        existingRoom(id);
        if (seatOf(me.id)?.room.id !== id) throw new Refusal("not_in_room", "you are not in that room");
        leaveSeat(me.id, "host_left");
        broadcast();
        return {};
      },
      watch_rooms(payload) {
        const { filter, limit } = readFilter(payload);
        const version = (socket.data.watch?.version ?? 0) + 1;
        const watch = { filter, limit, version, sent: new Map() };
        const list = feedRooms(watch);
        watch.sent = new Map(list.map((room) => [room.id, JSON.stringify(room)]));
        socket.data.watch = watch;
        return { version, rooms: list };
      },
      unwatch_rooms() {
        if (socket.data.watch) {
          socket.data.watch = null;
          socket.emit("updaterooms", roomList());
        }
        return {};
      },
      time_sync(payload) {
        if (!payload || typeof payload.t0 !== "number" || !Number.isFinite(payload.t0))
          throw new Refusal("invalid_payload", "t0 must be a number (your clock when you sent this)");
        return { t0: payload.t0, server_ms: serverMs() };
      },
      start_race(payload) {
        roomId(payload);
        const options = raceOptions(payload);
        const room = hostedRoom(payload);
        if (running(room)) throw new Refusal("race_in_progress", "a race is running; end it first (end_race)");
        if (room.players.length === 0) throw new Refusal("no_players", "nobody has joined yet; wait for players");
        const race = startRace(room, options);
        return { race_id: race.race_id, start_at: race.start_at, end_at: race.end_at };
      },
      answer(payload) {
        roomId(payload);
        if (!positiveInt(payload.race_id)) throw new Refusal("invalid_payload", "race_id must be a positive integer");
        if (!Number.isInteger(payload.card) || payload.card < 0) throw new Refusal("invalid_payload", "card must be a card index");
        const given = payload.answer;
        const okAnswer = (typeof given === "string" && given.length <= 100) || (typeof given === "number" && Number.isFinite(given));
        if (!okAnswer) throw new Refusal("invalid_payload", "answer must be a number or a string of at most 100 characters");
        signedIn();
        const room = existingRoom(payload.id);
        const race = room.race;
        const racer = race && race.race_id === payload.race_id ? race.racers.get(key(me.id)) : undefined;
        if (!racer || racer.left) throw new Refusal("not_racing", "you are not a player of that race");
        if (race.over) throw new Refusal("race_over", "the race is over; wait for the results");
        const now = serverMs();
        if (now < race.start_at) throw new Refusal("race_not_started", "the race has not started yet; wait for the countdown");
        if (racer.next !== payload.card) throw new Refusal("wrong_card", `answer card ${racer.next} next`);
        const card = race.cards[racer.next];
        const correct = answersMatch(given, card.answer);
        racer.answers.push({ index: card.index, given, correct, ms: now - race.start_at });
        if (correct) racer.correct += 1;
        racer.time_ms = now - race.start_at;
        racer.next = racer.next + 1 < race.cards.length ? racer.next + 1 : null;
        scheduleProgress(room);
        if (racer.next === null) setImmediate(() => checkAllDone(room));
        return { card: card.index, correct, next: racer.next };
      },
      end_race(payload) {
        const room = hostedRoom(payload);
        if (!running(room)) throw new Refusal("not_racing", "no race is running");
        setImmediate(() => endRace(room, "host_ended"));
        return {};
      },
      race_results(payload) {
        roomId(payload);
        if (!absent(payload.race_id) && !positiveInt(payload.race_id)) throw new Refusal("invalid_payload", "race_id must be a positive integer");
        const room = hostedRoom(payload);
        const wanted = absent(payload.race_id) ? null : payload.race_id;
        if (running(room) && (wanted === null || wanted === room.race.race_id))
          throw new Refusal("race_in_progress", "the race is still running; ask again when it is over");
        const results = wanted === null ? room.results.at(-1) : room.results.find((r) => r.race_id === wanted);
        if (!results) throw new Refusal("race_not_found", "no such finished race in this room");
        return { results };
      },
      kick_player(payload) {
        roomId(payload);
        if (!validId(payload.user)) throw new Refusal("invalid_payload", "user must be a user id");
        const room = hostedRoom(payload);
        if (!room.players.some((p) => key(p.id) === key(payload.user))) throw new Refusal("not_in_room", "that user is not a player of this room");
        room.banned.add(key(payload.user));
        socketOf(payload.user)?.emit("kicked", { id: room.id });
        leaveSeat(payload.user, "kicked");
        broadcast();
        return {};
      },
      lock_room(payload) {
        roomId(payload);
        if (typeof payload.locked !== "boolean") throw new Refusal("invalid_payload", "locked must be true or false");
        const room = hostedRoom(payload);
        if (room.locked !== payload.locked) {
          room.locked = payload.locked;
          broadcast();
        }
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
    socket.on("disconnect", (reason) => {
      if (!me) return;
      const userId = me.id;
      const entry = users.get(key(userId));
      if (!entry || entry.socket !== socket) return; // replaced earlier
      if (DROP_REASONS.has(reason) && reconnectGraceMs > 0) {
        // a drop: the seat waits for the token's holder, shown connected: false
        entry.socket = null;
        entry.graceTimer = setTimeout(() => {
          if (users.get(key(userId)) !== entry || entry.socket !== null) return; // came back
          users.delete(key(userId));
          if (leaveSeat(userId, "host_disconnected")) broadcast();
        }, reconnectGraceMs);
        const seat = seatOf(userId);
        if (seat) {
          if (running(seat.room)) scheduleProgress(seat.room);
          broadcast();
        }
        return;
      }
      users.delete(key(userId));
      if (leaveSeat(userId, "host_disconnected")) broadcast();
    });
  });
}
namespaces.forEach(serve);

httpServer.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${httpServer.address().port}\n`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
