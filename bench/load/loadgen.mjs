// Load generator for the room protocol: many socket.io-client 4 users in one Node process.
//
// Why Node and socket.io-client: it is the client the game's players run (in
// browsers), it is cheap per connection, and every server under test (roomactors
// and the peers in ../peers) is measured by the same client code.
//
// What a run does, against any server of the room protocol:
//   1. connect --clients sockets to --namespace (at most --connect-concurrency at once);
//   2. each sends join_lobby (with an ack);
//   3. the first --rooms clients create a room each; the others join rooms round-robin;
//   4. for --duration seconds each player alternates leave_room / join_room (next room)
//      at --rate commands per second (jittered), all with acks;
//   5. the hosts leave (their rooms close); once everyone sees the empty list, all disconnect.
// It measures: connect time; ack latency per command; "visibility": the time from
// sending join_room/leave_room until the sender's own updaterooms shows the change
// (what a player waits for on screen; ack order is unspecified, the list is not);
// updaterooms received; roomclosed received; error codes; unexpected disconnects.
// The report is one JSON object on stdout (and in --out if given).
//
//   node loadgen.mjs --url http://127.0.0.1:8000 [--namespace /lobby] [--clients 200]
//        [--rooms 10] [--duration 10] [--rate 1] [--transports default|websocket|polling]
//        [--connect-concurrency 50] [--timeout 10] [--out results.json]
//
// Keep --rate under the server's per-connection rate limit (roomactors: 20/s).

import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { parseArgs } from "node:util";

let io;
try {
  ({ io } = await import("socket.io-client"));
} catch {
  ({ io } = createRequire(new URL("../../tests/js/package.json", import.meta.url))("socket.io-client"));
}

const { values: flags } = parseArgs({
  options: {
    url: { type: "string" },
    namespace: { type: "string", default: "/lobby" },
    clients: { type: "string", default: "200" },
    rooms: { type: "string", default: "10" },
    duration: { type: "string", default: "10" },
    rate: { type: "string", default: "1" },
    transports: { type: "string", default: "default" },
    "connect-concurrency": { type: "string", default: "50" },
    timeout: { type: "string", default: "10" },
    out: { type: "string" },
  },
});
if (!flags.url) {
  process.stderr.write("loadgen: --url is required\n");
  process.exit(2);
}

const CLIENTS = Number(flags.clients);
const ROOMS = Math.min(Number(flags.rooms), CLIENTS);
const DURATION_MS = Number(flags.duration) * 1000;
const RATE = Number(flags.rate);
const TIMEOUT_MS = Number(flags.timeout) * 1000;
const CONCURRENCY = Number(flags["connect-concurrency"]);
const DECK = {
  name: "Bench deck",
  flashcards: Array.from({ length: 20 }, (_, i) => ({ id: i + 1, problem: `${i}+${i}`, answer: `${2 * i}` })),
};

const now = () => performance.now();

// --- measurements -----------------------------------------------------------------

class Series {
  constructor() {
    this.values = [];
  }
  add(ms) {
    this.values.push(ms);
  }
  summary() {
    const v = [...this.values].sort((a, b) => a - b);
    const at = (q) => (v.length ? round(v[Math.min(v.length - 1, Math.floor(q * v.length))]) : null);
    return { n: v.length, p50_ms: at(0.5), p90_ms: at(0.9), p99_ms: at(0.99), max_ms: v.length ? round(v[v.length - 1]) : null };
  }
}
const round = (x) => Math.round(x * 100) / 100;

const stats = {
  connect: new Series(),
  acks: new Map(), // command -> Series
  visibility: new Map(), // command -> Series
  errors: new Map(), // code -> count
  connectFailures: 0,
  ackTimeouts: 0,
  visibilityTimeouts: 0,
  updaterooms: 0,
  roomclosed: 0,
  unexpectedDisconnects: 0,
};
const series = (map, key) => map.get(key) ?? map.set(key, new Series()).get(key);
const countError = (code) => stats.errors.set(code, (stats.errors.get(code) ?? 0) + 1);

// --- one simulated user -------------------------------------------------------------

class User {
  constructor(index) {
    this.index = index;
    this.userId = index + 1;
    this.rooms = [];
    this.expect = null; // {command, roomId, present, t0, resolve}
    this.closing = false;
  }

  connect() {
    const opts = { forceNew: true, reconnection: false, timeout: TIMEOUT_MS };
    if (flags.transports !== "default") opts.transports = [flags.transports];
    const t0 = now();
    this.socket = io(new URL(flags.namespace, flags.url).href, opts);
    this.socket.on("updaterooms", (rooms) => {
      stats.updaterooms += 1;
      this.rooms = rooms;
      this.checkExpectation();
    });
    this.socket.on("roomclosed", () => {
      stats.roomclosed += 1;
    });
    this.socket.on("rejected", ({ code }) => countError(code));
    this.socket.on("disconnect", () => {
      if (!this.closing) stats.unexpectedDisconnects += 1;
    });
    return new Promise((resolve) => {
      this.socket.once("connect", () => {
        stats.connect.add(now() - t0);
        resolve(true);
      });
      this.socket.once("connect_error", () => {
        stats.connectFailures += 1;
        resolve(false);
      });
    });
  }

  async call(command, payload) {
    const t0 = now();
    try {
      const reply = await this.socket.timeout(TIMEOUT_MS).emitWithAck(command, payload);
      series(stats.acks, command).add(now() - t0);
      if (!reply.ok) countError(reply.error.code);
      return reply;
    } catch {
      stats.ackTimeouts += 1;
      return { ok: false, error: { code: "ack_timeout" } };
    }
  }

  seatedIn(roomId) {
    const room = this.rooms.find((r) => r.id === roomId);
    return Boolean(room && room.players.some((p) => p.id === this.userId));
  }

  checkExpectation() {
    const e = this.expect;
    if (e && this.seatedIn(e.roomId) === e.present) {
      series(stats.visibility, e.command).add(now() - e.t0);
      this.expect = null;
      e.resolve();
    }
  }

  // Send a room command; resolve once both its ack and the list showing it have arrived.
  async roomCommand(command, roomId) {
    const t0 = now();
    const seen = new Promise((resolve) => {
      this.expect = { command, roomId, present: command === "join_room", t0, resolve };
    });
    const reply = await this.call(command, { id: roomId });
    if (!reply.ok) {
      this.expect = null;
      return reply;
    }
    this.checkExpectation();
    let timer;
    const timedOut = new Promise((resolve) => {
      timer = setTimeout(() => resolve("timeout"), TIMEOUT_MS);
    });
    if ((await Promise.race([seen, timedOut])) === "timeout") {
      stats.visibilityTimeouts += 1;
      this.expect = null;
    }
    clearTimeout(timer);
    return reply;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function inBatches(items, size, fn) {
  const out = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

// --- the run ------------------------------------------------------------------------

const started = now();
const users = Array.from({ length: CLIENTS }, (_, i) => new User(i));
const connected = (await inBatches(users, CONCURRENCY, (u) => u.connect())).filter(Boolean).length;
const live = users.filter((u) => u.socket.connected);

await Promise.all(live.map((u) => u.call("join_lobby", { id: u.userId, username: `user${u.userId}`, auth_level: "student" })));

const hosts = live.slice(0, ROOMS);
const players = live.slice(ROOMS);
const roomIds = (await Promise.all(hosts.map((h) => h.call("create_room", { name: `Room ${h.userId}`, deck: DECK }))))
  .filter((r) => r.ok)
  .map((r) => r.room.id);

async function play(user, position) {
  if (!roomIds.length) return;
  let seat = position % roomIds.length;
  let inRoom = (await user.roomCommand("join_room", roomIds[seat])).ok;
  const deadline = now() + DURATION_MS;
  const period = 1000 / RATE;
  while (now() < deadline) {
    await sleep(period * (0.5 + Math.random()));
    if (now() >= deadline) break;
    if (inRoom) {
      inRoom = !(await user.roomCommand("leave_room", roomIds[seat])).ok;
      seat = (seat + 1) % roomIds.length;
    } else {
      inRoom = (await user.roomCommand("join_room", roomIds[seat])).ok;
    }
  }
}

const churnStarted = now();
if (RATE > 0) await Promise.all(players.map((u, i) => play(u, i)));
const churnSeconds = (now() - churnStarted) / 1000;

const seatedAtEnd = players.filter((u) => roomIds.some((id) => u.seatedIn(id))).length; // each gets a roomclosed
await Promise.all(hosts.map((h, i) => (roomIds[i] !== undefined ? h.call("leave_room", { id: roomIds[i] }) : null)));
// Wait until everyone sees the empty list (roomclosed comes before it), so the
// counts are complete and the next run starts from an idle server.
const settleDeadline = now() + TIMEOUT_MS;
while (live.some((u) => u.socket.connected && u.rooms.length > 0) && now() < settleDeadline) await sleep(20);
const finalListTimeouts = live.filter((u) => u.socket.connected && u.rooms.length > 0).length;
for (const u of users) {
  u.closing = true;
  u.socket.disconnect();
}

const report = {
  url: flags.url,
  namespace: flags.namespace,
  transports: flags.transports,
  clients: CLIENTS,
  connected,
  rooms: roomIds.length,
  rate_per_player: RATE,
  churn_seconds: round(churnSeconds),
  total_seconds: round((now() - started) / 1000),
  connect: stats.connect.summary(),
  connect_failures: stats.connectFailures,
  acks: Object.fromEntries([...stats.acks].map(([k, s]) => [k, s.summary()])),
  visibility: Object.fromEntries([...stats.visibility].map(([k, s]) => [k, s.summary()])),
  room_commands_per_second: round(
    ((stats.acks.get("join_room")?.values.length ?? 0) + (stats.acks.get("leave_room")?.values.length ?? 0)) /
      Math.max(churnSeconds, 1e-9),
  ),
  updaterooms_received: stats.updaterooms,
  roomclosed_received: stats.roomclosed,
  seated_at_end: seatedAtEnd,
  errors: Object.fromEntries(stats.errors),
  ack_timeouts: stats.ackTimeouts,
  visibility_timeouts: stats.visibilityTimeouts,
  unexpected_disconnects: stats.unexpectedDisconnects,
  final_list_timeouts: finalListTimeouts,
};
const text = JSON.stringify(report, null, 2);
if (flags.out) writeFileSync(flags.out, text + "\n");
process.stdout.write(text + "\n");
setTimeout(() => process.exit(0), 100).unref();
