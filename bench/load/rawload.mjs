// The benchmark's lean load client: raw Engine.IO v4 / Socket.IO v5 over `ws` (and
// over plain HTTP long-polling for the connection ramp), many connections in one
// Node process, one scenario per run.
//
// Why raw and not socket.io-client: with thousands of receiving connections on one
// core, a full client (reconnection logic, emitter chains, a JSON parse of every
// frame) is what saturates first, and the benchmark would measure the load
// generator. This client completes the WebSocket handshake directly
// (`/socket.io/?EIO=4&transport=websocket`), answers pings, connects `/lobby` with
// `40/lobby,` and recognises `updaterooms` frames by their text without parsing
// them. It offers no permessage-deflate, so no server compresses.
//
// It measures what it can see from outside: latencies on its own clock, the
// server's CPU time and RSS from /proc/<pid> (--server-pid), each core's
// utilisation from /proc/stat, and its own CPU time. One JSON object on stdout;
// progress on stderr.
//
//   node rawload.mjs --url http://127.0.0.1:PORT --scenario fanout|churn|connections|ack|race
//        [--server-pid PID] [--clk-tck 100] [scenario flags, see FLAGS below]
//
// Several servers (the nodes of one cluster): --url and --server-pid take
// comma-separated lists, in the same order. WebSocket connections are spread over the
// URLs round-robin (connection i on node i mod K); the fan-out's creator is on the
// first node; the race puts room r's host on node r mod K and its j-th player on node
// (r + j) mod K, so that each room has players on its own node ("local") and on the
// others ("remote"), and reports join and answer latencies for each kind. The
// server CPU figures are the nodes' sum (and each node's in `server_cpu_share_by_node`).
// Polling clients (connections scenario) use the first URL.
//
// Every loop is bounded in count and in time; the process exits when the scenario ends.

import { readFileSync } from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import { parseArgs } from "node:util";

let WebSocket;
try {
  ({ WebSocket } = await import("ws"));
} catch {
  WebSocket = createRequire(new URL("../../tests/js/package.json", import.meta.url))("ws");
}

const { values: FLAGS } = parseArgs({
  options: {
    url: { type: "string" },
    scenario: { type: "string" },
    namespace: { type: "string", default: "/lobby" },
    "server-pid": { type: "string", default: "0" },
    "clk-tck": { type: "string", default: "100" },
    "connect-concurrency": { type: "string", default: "100" },
    timeout: { type: "string", default: "20" }, // seconds for any one wait
    // fanout
    clients: { type: "string", default: "1000" },
    commands: { type: "string", default: "400" }, // at most this many create/disband commands
    duration: { type: "string", default: "15" }, // seconds of measurement at most
    warmup: { type: "string", default: "6" }, // commands before measuring
    // churn
    watchers: { type: "string", default: "500" },
    rooms: { type: "string", default: "10" },
    players: { type: "string", default: "100" },
    "drain-timeout": { type: "string", default: "60" }, // seconds for the watchers to catch up
    // every client: commands per second per connection it stays under (0: no pacing),
    // for servers whose per-connection rate limit is on (burst: --client-burst)
    "client-rate": { type: "string", default: "0" },
    "client-burst": { type: "string", default: "30" },
    creators: { type: "string", default: "1" }, // fanout: connections taking turns at creating
    // connections
    websockets: { type: "string", default: "10000" },
    polling: { type: "string", default: "1000" },
    settle: { type: "string", default: "1" }, // seconds before reading RSS
    // ack
    "ack-clients": { type: "string", default: "200" },
    // race (--rooms, --duration as above)
    "race-players": { type: "string", default: "25" }, // players per room, besides the host
    "race-rate": { type: "string", default: "1" }, // answers per second per player
    "race-warmup": { type: "string", default: "3" }, // seconds of answering before measuring
    "race-saturate": { type: "string", default: "0" }, // seconds of closed-loop answering after (0: none)
    observers: { type: "string", default: "2" }, // members per room that parse raceprogress (the host first)
  },
});
if (!FLAGS.url || !FLAGS.scenario) {
  process.stderr.write("rawload: --url and --scenario are required\n");
  process.exit(2);
}

const NS = FLAGS.namespace;
const NS_PREFIX = NS === "/" ? "" : `${NS},`;
const EVENT_PREFIX = `42${NS_PREFIX}`;
const ACK_PREFIX = `43${NS_PREFIX}`;
const LIST_PREFIX_BYTES = Buffer.from(`${EVENT_PREFIX}["updaterooms"`);
const PROGRESS_PREFIX_BYTES = Buffer.from(`${EVENT_PREFIX}["raceprogress"`);
const RACESTART_PREFIX_BYTES = Buffer.from(`${EVENT_PREFIX}["racestart"`);
const startsWith = (data, prefix) => data.length > prefix.length && data.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACKET = 0x5b;
/** `...,[]]`: the list is empty (with or without a space before it). */
const isEmptyList = (b) => b[b.length - 1] === CLOSE_BRACKET && b[b.length - 2] === CLOSE_BRACKET && b[b.length - 3] === OPEN_BRACKET;
const URLS = FLAGS.url.split(",").filter(Boolean).map((u) => new URL(u));
const URL_BASE = URLS[0];
const WS_URLS = URLS.map((u) => `ws://${u.host}/socket.io/?EIO=4&transport=websocket`);
const NODES = WS_URLS.length;
const POLL_PATH = "/socket.io/?EIO=4&transport=polling";
const SERVER_PIDS = FLAGS["server-pid"].split(",").map(Number).filter((pid) => pid > 0);
const CLK_TCK = Number(FLAGS["clk-tck"]);
const TIMEOUT_MS = Number(FLAGS.timeout) * 1000;
const CONCURRENCY = Number(FLAGS["connect-concurrency"]);
const DECK = {
  name: "Bench deck",
  flashcards: Array.from({ length: 20 }, (_, i) => ({ id: i + 1, problem: `${i}+${i}`, answer: `${2 * i}` })),
};

const now = () => performance.now();
const log = (msg) => process.stderr.write(`rawload[${FLAGS.scenario}]: ${msg}\n`);
const round = (x, digits = 3) => (x === null || Number.isNaN(x) ? null : Number(x.toFixed(digits)));

// --- what /proc says --------------------------------------------------------------

/** Each server's CPU seconds so far (one entry per --server-pid). */
function serverCpuSecondsEach() {
  return SERVER_PIDS.map((pid) => {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime (fields 14, 15)
  });
}

function serverRssKiB() {
  if (!SERVER_PIDS.length) return null;
  let total = 0;
  for (const pid of SERVER_PIDS) {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    if (!match) return null;
    total += Number(match[1]);
  }
  return total;
}

function coreTimes() {
  const cores = {};
  for (const line of readFileSync("/proc/stat", "utf8").split("\n")) {
    const m = /^(cpu\d+) (.*)$/.exec(line);
    if (!m) continue;
    const v = m[2].trim().split(/\s+/).map(Number);
    const idle = v[3] + (v[4] || 0);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    cores[m[1]] = { idle, total };
  }
  return cores;
}

/** A window over which CPU is accounted: the server's, this process's, each core's. */
class CpuWindow {
  constructor() {
    this.t0 = now();
    this.server0 = serverCpuSecondsEach();
    this.self0 = process.cpuUsage();
    this.cores0 = coreTimes();
  }
  close() {
    const seconds = (now() - this.t0) / 1000;
    const server1 = serverCpuSecondsEach();
    const serverSeconds = server1.reduce((a, b, i) => a + b - this.server0[i], 0);
    const self = process.cpuUsage(this.self0);
    const cores1 = coreTimes();
    const cores = {};
    for (const [name, c1] of Object.entries(cores1)) {
      const c0 = this.cores0[name];
      if (!c0 || c1.total === c0.total) continue;
      cores[name] = round(1 - (c1.idle - c0.idle) / (c1.total - c0.total), 3);
    }
    return {
      seconds: round(seconds),
      server_cpu_seconds: server1.length ? round(serverSeconds) : null,
      server_cpu_share: server1.length ? round(serverSeconds / seconds) : null,
      ...(server1.length > 1 ? { server_cpu_share_by_node: server1.map((b, i) => round((b - this.server0[i]) / seconds)) } : {}),
      loadgen_cpu_share: round((self.user + self.system) / 1e6 / seconds),
      core_utilisation: cores,
    };
  }
}

class Series {
  constructor() {
    this.values = [];
  }
  add(ms) {
    this.values.push(ms);
  }
  summary() {
    const v = Float64Array.from(this.values).sort();
    const at = (q) => (v.length ? round(v[Math.min(v.length - 1, Math.floor(q * v.length))]) : null);
    return { count: v.length, p50_ms: at(0.5), p99_ms: at(0.99), max_ms: v.length ? round(v[v.length - 1]) : null };
  }
}

const CLIENT_RATE = Number(FLAGS["client-rate"]);
const CLIENT_BURST = Number(FLAGS["client-burst"]);
let pacedMs = 0;

/** Keeps one connection under the server's per-connection command rate, so that a run
 * with the rate limit on measures the server, not `rate_limited` answers. */
class Pacer {
  constructor() {
    this.tokens = CLIENT_BURST;
    this.at = now();
  }
  async take() {
    if (!CLIENT_RATE) return;
    const t = now();
    this.tokens = Math.min(CLIENT_BURST, this.tokens + ((t - this.at) / 1000) * CLIENT_RATE);
    this.at = t;
    if (this.tokens < 1) {
      const wait = ((1 - this.tokens) / CLIENT_RATE) * 1000;
      pacedMs += wait;
      await new Promise((r) => setTimeout(r, wait));
      this.tokens = 1;
      this.at = now();
    }
    this.tokens -= 1;
  }
}

const errors = { counts: {}, add(code) { this.counts[code] = (this.counts[code] || 0) + 1; } };

// --- one WebSocket connection ------------------------------------------------------

/** Clients with acks outstanding, and the one sweep that times them out. */
const WITH_ACKS = new Set();
setInterval(() => {
  const t = now();
  for (const client of WITH_ACKS) {
    for (const [id, pending] of client.acks) {
      if (pending.deadline > t) continue;
      client.acks.delete(id);
      pending.reject(new Error(`${pending.event} ack timeout`));
    }
    if (client.acks.size === 0) WITH_ACKS.delete(client);
  }
}, 250).unref();

/** One Socket.IO client over a raw WebSocket: handshake, pings, one namespace, acks. */
class WsClient {
  constructor(index, node = index % NODES) {
    this.index = index;
    this.node = node; // which of the --url servers it connects to
    this.ackSeq = 0;
    this.acks = new Map();
    this.onList = null; // (bytes: Buffer) => void, for `updaterooms` frames
    this.onProgress = null; // (bytes: Buffer) => void, for `raceprogress` frames
    this.onRaceStart = null; // (bytes: Buffer) => void, for `racestart` frames
    this.lists = 0;
    this.open = false;
    this.gen = -1; // fan-out: the last command this client has seen
    this.pacer = new Pacer();
  }

  /** Resolves once the namespace is connected. */
  connect() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(WS_URLS[this.node], { perMessageDeflate: false, skipUTF8Validation: true });
      this.ws = ws;
      let connected = false;
      const timer = setTimeout(() => fail(new Error("connect timeout")), TIMEOUT_MS);
      const fail = (err) => {
        clearTimeout(timer);
        if (!connected) reject(err);
      };
      ws.on("error", (err) => fail(err));
      ws.on("close", () => {
        if (connected && this.open) errors.add("disconnect");
        this.open = false;
        fail(new Error("closed during connect"));
        for (const { reject: r } of this.acks.values()) r(new Error("closed"));
        this.acks.clear();
        WITH_ACKS.delete(this);
      });
      ws.on("message", (data, isBinary) => {
        if (isBinary) return;
        // Lists are most of the traffic: recognised and searched as bytes, never decoded.
        if (data.length > LIST_PREFIX_BYTES.length && data.compare(LIST_PREFIX_BYTES, 0, LIST_PREFIX_BYTES.length, 0, LIST_PREFIX_BYTES.length) === 0) {
          this.lists++;
          if (this.onList) this.onList(data);
          return;
        }
        if (this.onProgress && startsWith(data, PROGRESS_PREFIX_BYTES)) {
          this.onProgress(data);
          return;
        }
        if (this.onRaceStart && startsWith(data, RACESTART_PREFIX_BYTES)) {
          this.onRaceStart(data);
          return;
        }
        const text = data.toString();
        const kind = text.charCodeAt(0);
        if (kind === 50 /* "2" ping */ && text.length === 1) {
          ws.send("3");
        } else if (kind === 52 /* "4" message */) {
          if (text.startsWith(ACK_PREFIX)) {
            this.#ack(text);
          } else if (!connected && text.startsWith(`40${NS_PREFIX}`)) {
            connected = true;
            this.open = true;
            clearTimeout(timer);
            resolve(this);
          } else if (text.startsWith(`44${NS_PREFIX}`)) {
            errors.add("connect_error");
            fail(new Error(`connect error ${text}`));
          }
        } else if (kind === 48 /* "0" open */) {
          ws.send(`40${NS_PREFIX}`);
        }
      });
    });
  }

  #ack(text) {
    const start = ACK_PREFIX.length;
    const bracket = text.indexOf("[", start);
    const id = Number(text.slice(start, bracket));
    const pending = this.acks.get(id);
    if (!pending) return;
    this.acks.delete(id);
    if (this.acks.size === 0) WITH_ACKS.delete(this);
    pending.resolve(text.slice(bracket));
  }

  emit(event, payload) {
    this.ws.send(`${EVENT_PREFIX}${JSON.stringify([event, payload])}`);
  }

  /** Sends a command with an ack; resolves to the first ack argument, parsed. */
  call(event, payload) {
    const id = this.ackSeq++;
    return new Promise((resolve, reject) => {
      // One shared sweep (below) enforces the deadline: a timer per call would cost
      // the load client more than the server's answer.
      this.acks.set(id, { resolve, reject, deadline: now() + TIMEOUT_MS, event });
      if (this.acks.size === 1) WITH_ACKS.add(this);
      this.ws.send(`${EVENT_PREFIX}${id}${JSON.stringify([event, payload])}`);
    });
  }

  close() {
    this.open = false;
    this.ws?.terminate();
  }
}

/** Calls a command (after pacing, see Pacer) and counts a failure by its error code;
 * returns the ack or null. `client.sentAt` is when it went out. */
const OK = /^\[\{"ok":\s?true[,}]/;
const OK_ONLY = Object.freeze({ ok: true });
const PARSED_ACKS = new Set(["create_room", "start_race"]);

async function command(client, event, payload, pace = true) {
  if (pace) await client.pacer.take();
  client.sentAt = now();
  try {
    const raw = await client.call(event, payload);
    // Parsing every ack would make the load client the bottleneck; only answers whose
    // body is used (create_room's room, start_race's race_id) or that are not a plain
    // success are parsed. (RAWLOAD_DEBUG=1 logs every failed command.)
    if (!PARSED_ACKS.has(event) && OK.test(raw)) return OK_ONLY;
    const ack = JSON.parse(raw)[0];
    if (!ack || ack.ok !== true) {
      errors.add(ack?.error?.code ?? "bad_ack");
      if (process.env.RAWLOAD_DEBUG) log(`${event} ${JSON.stringify(payload).slice(0, 200)} -> ${raw}`);
    }
    return ack;
  } catch (err) {
    errors.add(err.message.includes("timeout") ? "ack_timeout" : "ack_lost");
    return null;
  }
}

/** Runs `make(i)` for i < count with at most CONCURRENCY in flight. */
async function ramp(count, make) {
  const results = new Array(count);
  let next = 0;
  async function worker() {
    while (next < count) {
      const i = next++;
      results[i] = await make(i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, count) }, worker));
  return results;
}

/** `count` connections; `nodeOf(i)` picks the server of the i-th (default: round-robin). */
async function connectMany(count, firstIndex = 0, nodeOf = (i) => (firstIndex + i) % NODES) {
  const t0 = now();
  const clients = await ramp(count, (i) => new WsClient(firstIndex + i, nodeOf(i)).connect());
  return { clients, seconds: (now() - t0) / 1000 };
}

async function joinLobbyAll(clients, prefix) {
  await ramp(clients.length, (i) => command(clients[i], "join_lobby", { id: `${prefix}${i}`, username: `u${i}` }));
}

// --- scenarios ---------------------------------------------------------------------

/** Lobby fan-out: N watchers; one client creates and disbands a room in a closed loop;
 * each command's latency is until the last watcher has the list that shows it. With
 * several servers the watchers are spread round-robin and the creators are on the first. */
async function fanout() {
  const N = Number(FLAGS.clients);
  const maxCommands = Number(FLAGS.commands);
  const warmup = Number(FLAGS.warmup);
  const durationMs = Number(FLAGS.duration) * 1000;
  const { clients: watchers, seconds: connectSeconds } = await connectMany(N);
  await joinLobbyAll(watchers, "w");
  // Several creators only so that each stays under a per-connection rate limit; they
  // take turns, so there is still one command in flight at a time.
  const { clients: creators } = await connectMany(Number(FLAGS.creators), N, () => 0);
  await joinLobbyAll(creators, "creator");
  log(`${N} watchers in the lobby after ${connectSeconds.toFixed(1)} s`);

  let gen = 0;
  let remaining = 0;
  let needles = null; // strings of which one must occur in the list; null: "empty list"; "any": any other list
  let done = null;
  let delivered = 0;
  for (const w of watchers) {
    w.onList = (bytes) => {
      delivered++;
      if (w.gen === gen) return;
      const hit =
        needles === null ? isEmptyList(bytes) : needles === "any" ? !isEmptyList(bytes) : bytes.includes(needles[0]) || bytes.includes(needles[1]);
      if (!hit) return;
      w.gen = gen;
      if (--remaining === 0) done();
    };
  }

  const latency = new Series();
  // A single server numbers rooms 1, 2, ...; a cluster node from its own block of ids
  // (docs/cluster.md): the first create takes any non-empty list, and tells the base.
  let roomId = null;
  let timeouts = 0;
  let measured = 0;
  let deliveredAtStart = 0;
  let window = null;
  const deadline = () => window !== null && now() - window.t0 >= durationMs;

  async function step(creator, event, payload, expect) {
    gen++;
    needles = expect;
    remaining = watchers.length;
    const seen = new Promise((resolve) => (done = resolve));
    await creator.pacer.take();
    const t0 = now();
    const ack = command(creator, event, payload, false);
    let timer;
    const outcome = await Promise.race([
      seen.then(() => "seen"),
      new Promise((resolve) => (timer = setTimeout(() => resolve("timeout"), TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    const ms = now() - t0;
    const reply = await ack;
    return { outcome, ms, reply };
  }

  for (let i = 0; i < warmup + maxCommands && !deadline(); i++) {
    if (i === warmup) {
      window = new CpuWindow();
      deliveredAtStart = delivered;
    }
    const creating = i % 2 === 0;
    const creator = creators[(i >> 1) % creators.length];
    let result;
    if (creating) {
      // ids are assigned in order and only these clients create rooms
      const expected = roomId === null ? null : roomId + 1;
      const needle = expected === null ? "any" : [`"id":${expected},`, `"id": ${expected},`];
      result = await step(creator, "create_room", { name: `Room ${i}`, deck: DECK }, needle);
      const got = result.reply?.room?.id;
      if (got !== undefined && expected !== null && got !== expected) errors.add("unexpected_room_id");
      roomId = got ?? expected;
    } else {
      result = await step(creator, "leave_room", { id: roomId }, null);
    }
    if (result.outcome === "timeout") {
      timeouts++;
      errors.add("fanout_timeout");
    } else if (window !== null) {
      latency.add(result.ms);
    }
    if (window !== null) measured++;
  }
  if (window === null) throw new Error("fan-out ended during warm-up");
  const cpu = window.close();
  const deliveries = delivered - deliveredAtStart;
  for (const c of [...watchers, ...creators]) c.close();
  return {
    clients: N,
    connect_seconds: round(connectSeconds),
    commands: measured,
    creators: creators.length,
    timeouts,
    latency: latency.summary(),
    deliveries,
    deliveries_expected: (measured - timeouts) * N, // one list per watcher per command
    deliveries_per_second: round(deliveries / cpu.seconds, 1),
    server_cpu_us_per_delivery: cpu.server_cpu_seconds === null ? null : round((cpu.server_cpu_seconds / deliveries) * 1e6, 2),
    cpu,
  };
}

/** Room churn: players join and leave rooms concurrently (closed loop, acks) while
 * watchers sit in the lobby receiving every list. */
async function churn() {
  const W = Number(FLAGS.watchers);
  const R = Number(FLAGS.rooms);
  const P = Number(FLAGS.players);
  const durationMs = Number(FLAGS.duration) * 1000;
  const { clients: watchers } = await connectMany(W);
  await joinLobbyAll(watchers, "w");
  const { clients: hosts } = await connectMany(R, W);
  const roomIds = [];
  for (const [i, host] of hosts.entries()) {
    const ack = await command(host, "create_room", { name: `Room ${i}`, host: { id: `h${i}`, username: `h${i}` }, deck: DECK });
    if (ack?.room?.id === undefined) throw new Error(`create_room failed: ${JSON.stringify(ack)}`);
    roomIds.push(ack.room.id);
  }
  const { clients: players } = await connectMany(P, W + R);
  await joinLobbyAll(players, "p");
  const [sentinel] = (await connectMany(1, W + R + P)).clients;
  await command(sentinel, "join_lobby", { id: "sentinel", username: "sentinel" });
  log(`${W} watchers, ${R} rooms, ${P} players`);

  // A server may answer acks faster than it delivers the lists they cause (queueing
  // them); the run ends only when every watcher has the list that follows the last
  // command, so commands/s counts work done, not work deferred.
  let watcherLists = 0;
  let needle = null;
  let waiting = W;
  let drained;
  const caughtUp = new Promise((resolve) => (drained = resolve));
  for (const w of watchers) {
    w.onList = (bytes) => {
      watcherLists++;
      if (needle !== null && w.gen !== 1 && bytes.includes(needle)) {
        w.gen = 1;
        if (--waiting === 0) drained();
      }
    };
  }
  const latency = new Series();
  const window = new CpuWindow();
  const listsAtStart = watcherLists;
  const end = window.t0 + durationMs;
  let ok = 0;
  await Promise.all(
    players.map(async (player, p) => {
      for (let k = 0; k < 1_000_000 && now() < end; k++) {
        const roomId = roomIds[(p + (k >> 1)) % R];
        const ack = await command(player, k % 2 === 0 ? "join_room" : "leave_room", { id: roomId });
        const ms = now() - player.sentAt;
        if (ack?.ok === true) {
          ok++;
          latency.add(ms);
        } else if (ack === null) {
          return; // connection trouble: counted in errors, this player stops
        }
      }
    }),
  );
  const loopSeconds = (now() - window.t0) / 1000;
  needle = `drain-${process.pid}-${Date.now()}`;
  const drainStart = now();
  command(sentinel, "create_room", { name: needle, deck: DECK });
  let timer;
  const outcome = await Promise.race([
    caughtUp.then(() => "caught_up"),
    new Promise((resolve) => (timer = setTimeout(() => resolve("timeout"), Number(FLAGS["drain-timeout"]) * 1000))),
  ]);
  clearTimeout(timer);
  if (outcome === "timeout") errors.add("drain_timeout");
  const drainSeconds = (now() - drainStart) / 1000;
  const cpu = window.close();
  for (const c of [...watchers, ...hosts, ...players, sentinel]) c.close();
  return {
    watchers: W,
    rooms: R,
    players: P,
    commands_ok: ok,
    commands_per_second: round(ok / cpu.seconds, 1),
    commands_per_second_acked: round(ok / loopSeconds, 1),
    drain_seconds: round(drainSeconds),
    ack_latency: latency.summary(),
    watcher_lists: watcherLists - listsAtStart,
    watcher_lists_per_second: round((watcherLists - listsAtStart) / cpu.seconds, 1),
    cpu,
  };
}

/** Ack round trip: one client with sequential acks, then many with one outstanding each. */
async function ack() {
  const durationMs = Number(FLAGS.duration) * 1000;
  const maxCommands = Number(FLAGS.commands);
  const many = Number(FLAGS["ack-clients"]);

  async function loop(clients, label) {
    const latency = new Series();
    const window = new CpuWindow();
    const end = window.t0 + durationMs;
    let perClient = Math.ceil(maxCommands / clients.length);
    await Promise.all(
      clients.map(async (client, i) => {
        const payload = { id: `${label}${i}`, username: `${label}${i}` };
        for (let k = 0; k < perClient && now() < end; k++) {
          const reply = await command(client, "join_lobby", payload);
          if (reply === null) return;
          latency.add(now() - client.sentAt);
        }
      }),
    );
    const cpu = window.close();
    const summary = latency.summary();
    return { clients: clients.length, acks: summary.count, acks_per_second: round(summary.count / cpu.seconds, 1), latency: summary, cpu };
  }

  const [single] = (await connectMany(1)).clients;
  await command(single, "join_lobby", { id: "s0", username: "s0" });
  const sequential = await loop([single], "s");
  single.close();
  const { clients } = await connectMany(many, 1);
  await joinLobbyAll(clients, "c");
  const concurrent = await loop(clients, "c");
  for (const c of clients) c.close();
  return { sequential, concurrent };
}

/** The race: R rooms of P players (and a host each), every player answering at a fixed
 * pace (open loop: on schedule, not after the previous ack), phases spread evenly over
 * the period. Measures each answer's ack latency, and its progress lag: from sending it
 * to an observer (the host, and --observers - 1 players of the room) having the first
 * `raceprogress` that counts it. The other players' progress frames are counted, not
 * parsed (parsing 25 receivers' copies would make the load client the bottleneck).
 * Rooms are unlisted and joined by code when the server has codes (else every join
 * would send every client the whole list); then, optionally, closed-loop answering
 * (each player sends its next answer when the previous is acknowledged) for
 * --race-saturate seconds: the answers/s the server sustains.
 * With several servers (a cluster), room r's host is on node r mod K and its j-th
 * player on node (r + j) mod K: players with j mod K = 0 are on the room's node
 * ("local"), the others reach it through their node's relay ("remote"); join and
 * answer latencies, and the progress lag seen by local and remote observers, are
 * reported for each kind (`by_locality`). */
async function race() {
  const R = Number(FLAGS.rooms);
  const P = Number(FLAGS["race-players"]);
  const rate = Number(FLAGS["race-rate"]);
  const warmupMs = Number(FLAGS["race-warmup"]) * 1000;
  const durationMs = Number(FLAGS.duration) * 1000;
  const saturateMs = Number(FLAGS["race-saturate"]) * 1000;
  const observersPerRoom = Math.max(1, Math.min(P + 1, Number(FLAGS.observers)));
  // Enough cards for the paced part, and for the closed loop at up to 30,000 answers/s
  // in all (a player who runs out ends that window); a deck's limit is 1,000. Every
  // member receives every problem in racestart, so the deck is no bigger than that.
  const saturateCards = saturateMs ? Math.ceil((saturateMs / 1000) * 30_000 / (R * P)) : 0;
  const cardCount = Math.min(1000, Math.ceil(rate * (warmupMs + durationMs) / 1000) + 20 + saturateCards);
  const deck = {
    name: "Race deck",
    flashcards: Array.from({ length: cardCount }, (_, i) => ({ id: i + 1, problem: `${i}+${i}`, answer: `${2 * i}` })),
  };
  const t0Setup = now();

  // Hosts and their rooms.
  const { clients: hosts } = await connectMany(R, 0, (r) => r % NODES);
  let created = 0;
  const rooms = await ramp(R, async (r) => {
    const ack = await command(hosts[r], "create_room", { name: `Race ${r}`, host: { id: `h${r}`, username: `h${r}` }, deck, listed: false });
    if (ack?.room?.id === undefined) throw new Error(`create_room failed: ${JSON.stringify(ack)}`);
    hosts[r].local = true;
    return { id: ack.room.id, code: ack.room.code, host: hosts[r], node: r % NODES, players: [], raceId: null, createdAs: created++ };
  });
  const byCode = rooms[0].code !== undefined;
  log(`${R} rooms${byCode ? " (unlisted, joined by code)" : " (listed: this server has no room codes)"}`);
  if (NODES > 1) await awaitDirectories(rooms, byCode);

  // Players: join the lobby and their room.
  const joinLatency = { all: new Series(), local: new Series(), remote: new Series() };
  const { clients: players } = await connectMany(R * P, R, (i) => (Math.floor(i / P) + (i % P)) % NODES);
  await ramp(players.length, async (i) => {
    const room = rooms[Math.floor(i / P)];
    const player = players[i];
    player.userId = `p${i}`;
    player.room = room;
    player.local = player.node === room.node;
    await command(player, "join_lobby", { id: player.userId, username: `p${i}` });
    const ack = await command(player, "join_room", byCode ? { code: room.code } : { id: room.id });
    if (ack?.ok !== true) throw new Error(`join_room failed: ${JSON.stringify(ack)}`);
    joinLatency.all.add(now() - player.sentAt);
    joinLatency[player.local ? "local" : "remote"].add(now() - player.sentAt);
  });
  for (const [i, player] of players.entries()) rooms[Math.floor(i / P)].players.push(player);
  log(`${players.length} players seated after ${((now() - t0Setup) / 1000).toFixed(1)} s`);

  // Start every race at once (no countdown: racing at start_at = now).
  let started = 0;
  let allStarted;
  const everyoneStarted = new Promise((resolve) => (allStarted = resolve));
  for (const p of players) {
    p.onRaceStart = () => {
      p.onRaceStart = null;
      if (++started === players.length) allStarted();
    };
  }
  await ramp(R, async (r) => {
    const ack = await command(rooms[r].host, "start_race", { id: rooms[r].id, countdown: 0 });
    if (ack?.ok !== true) throw new Error(`start_race failed: ${JSON.stringify(ack)}`);
    rooms[r].raceId = ack.race_id;
  });
  let timer;
  const startOutcome = await Promise.race([
    everyoneStarted.then(() => "started"),
    new Promise((resolve) => (timer = setTimeout(() => resolve("timeout"), TIMEOUT_MS * 3))),
  ]);
  clearTimeout(timer);
  if (startOutcome !== "started") throw new Error(`only ${started} of ${players.length} players got racestart`);
  const setupSeconds = (now() - t0Setup) / 1000;
  log(`${R} races started after ${setupSeconds.toFixed(1)} s`);

  // What each answer is and when it went out.
  for (const p of players) {
    p.next = 0;
    p.sent = new Float64Array(cardCount).fill(NaN);
    p.measured = new Uint8Array(cardCount); // sent inside the measured window
  }
  const ackLatency = new Series();
  const progressLag = new Series();
  const ackBy = { local: new Series(), remote: new Series() };
  const lagBy = { local: new Series(), remote: new Series() }; // by the observer's node
  let answersAcked = 0;
  let progressFrames = 0;
  let progressOutstanding = 0; // measured answers times their observers, not yet seen

  // Observers parse raceprogress; everybody else counts it.
  for (const room of rooms) {
    const members = [room.host, ...room.players];
    const byId = new Map(room.players.map((p) => [p.userId, p]));
    for (const [m, member] of members.entries()) {
      if (m >= observersPerRoom) {
        member.onProgress = () => progressFrames++;
        continue;
      }
      const seen = new Map(); // player id -> answers this observer has seen counted
      const lagHere = lagBy[member.local ? "local" : "remote"];
      member.observer = true;
      member.onProgress = (bytes) => {
        progressFrames++;
        const t = now();
        const payload = JSON.parse(bytes.toString().slice(EVENT_PREFIX.length))[1];
        for (const entry of payload.players) {
          const p = byId.get(entry.id);
          if (!p || p === member) continue; // your own progress is not a lag
          for (let k = seen.get(entry.id) ?? 0; k < entry.answered; k++) {
            if (p.measured[k]) {
              progressLag.add(t - p.sent[k]);
              lagHere.add(t - p.sent[k]);
              progressOutstanding--;
            }
          }
          seen.set(entry.id, Math.max(seen.get(entry.id) ?? 0, entry.answered));
        }
      };
    }
  }
  const observersOf = (p) => observersPerRoom - (p.room.players.indexOf(p) < observersPerRoom - 1 ? 1 : 0);

  function answer(p, inWindow) {
    const k = p.next++;
    const correct = k % 5 !== 4; // every fifth answer wrong
    p.sent[k] = now();
    if (inWindow) {
      p.measured[k] = 1;
      progressOutstanding += observersOf(p);
    }
    const sentAt = p.sent[k];
    return command(p, "answer", { id: p.room.id, race_id: p.room.raceId, card: k, answer: correct ? `${2 * k}` : "x" }, false).then((ack) => {
      if (ack?.ok !== true) return false;
      if (inWindow) {
        answersAcked++;
        ackLatency.add(now() - sentAt);
        ackBy[p.local ? "local" : "remote"].add(now() - sentAt);
      }
      return true;
    });
  }

  // The paced phase: answer s = k * N + i (i in phase order) is due at t0 + (k + i / N) / rate;
  // it is measured when it is due inside the window. How late the load client sends
  // (its schedule lag) is reported: when it is large, the load client set the pace.
  const N = players.length;
  const scheduleLag = new Series();
  const periodMs = 1000 / rate;
  const pending = new Set();
  const t0 = now() + 200;
  const endAt = t0 + warmupMs + durationMs;
  let window = null;
  let sentInWindow = 0;
  let framesAtStart = 0;
  let seq = 0;
  const windowStart = t0 + warmupMs;
  await new Promise((resolve) => {
    function tick() {
      const t = now();
      if (window === null && t >= windowStart) {
        window = new CpuWindow();
        framesAtStart = progressFrames;
      }
      for (; ; seq++) {
        const k = Math.floor(seq / N);
        const due = t0 + (k + (seq % N) / N) * periodMs;
        if (due >= endAt) return resolve();
        if (due > t) break;
        const p = players[seq % N];
        if (p.next >= cardCount) continue;
        const inWindow = due >= windowStart;
        if (inWindow) {
          sentInWindow++;
          scheduleLag.add(t - due);
        }
        const done = answer(p, inWindow);
        pending.add(done);
        done.finally(() => pending.delete(done));
      }
      setTimeout(tick, 1);
    }
    tick();
  });
  const cpu = window.close();
  const framesInWindow = progressFrames - framesAtStart;
  // Every measured answer acked and seen by its observers (or the wait times out).
  const drainStart = now();
  await Promise.all(pending);
  while (progressOutstanding > 0 && now() - drainStart < TIMEOUT_MS) await new Promise((r) => setTimeout(r, 20));
  if (progressOutstanding > 0) errors.add("progress_not_seen");
  const paced = {
    answers_sent: sentInWindow,
    answers_acked: answersAcked,
    target_answers_per_second: round(N * rate, 1),
    answers_per_second: round(answersAcked / cpu.seconds, 1),
    ack_latency: ackLatency.summary(),
    progress_lag: progressLag.summary(),
    join_latency: joinLatency.all.summary(),
    schedule_lag: scheduleLag.summary(),
    progress_frames_per_second: round(framesInWindow / cpu.seconds, 1),
    cpu,
  };

  let saturation = null;
  if (saturateMs > 0) {
    await new Promise((r) => setTimeout(r, 500));
    const latency = new Series();
    const satWindow = new CpuWindow();
    const stopAt = satWindow.t0 + saturateMs;
    let stopped = false;
    await Promise.all(
      players.map(async (p) => {
        while (!stopped && now() < stopAt && p.next < cardCount) {
          const sentAt = now();
          const k = p.next++;
          const ack = await command(p, "answer", { id: p.room.id, race_id: p.room.raceId, card: k, answer: `${2 * k}` });
          if (ack?.ok !== true) return;
          if (now() <= stopAt) latency.add(now() - sentAt);
        }
        stopped = true; // the first player out of cards ends the window for everyone
      }),
    );
    const satCpu = satWindow.close();
    const summary = latency.summary();
    saturation = { answers: summary.count, answers_per_second: round(summary.count / satCpu.seconds, 1), ack_latency: summary, cpu: satCpu };
  }

  for (const c of [...hosts, ...players]) c.close();
  return {
    rooms: R,
    players_per_room: P,
    players: N,
    rate_per_player: rate,
    cards: cardCount,
    by_code: byCode,
    observers_per_room: observersPerRoom,
    setup_seconds: round(setupSeconds),
    ...paced,
    saturation,
    ...(NODES > 1
      ? {
          nodes: NODES,
          by_locality: Object.fromEntries(
            ["local", "remote"].map((kind) => [
              kind,
              {
                players: players.filter((p) => p.local === (kind === "local")).length,
                join_latency: joinLatency[kind].summary(),
                ack_latency: ackBy[kind].summary(),
                progress_lag: lagBy[kind].summary(),
              },
            ]),
          ),
        }
      : {}),
  };
}

/** A cluster's nodes learn each other's rooms through Redis, a little after the
 * creator's ack: before the players join by code, one probe client per node joins (and
 * leaves) the last room created on each other node, retrying `room_not_found` (every
 * 50 ms, for at most --timeout). Each node's directory is one ordered stream of
 * changes, so once the last room is there the earlier ones are too. */
async function awaitDirectories(rooms, byCode) {
  const t0 = now();
  const { clients: probes } = await connectMany(NODES, 1_000_000, (k) => k);
  for (const probe of probes) {
    const ack = JSON.parse(await probe.call("join_lobby", { id: `probe${probe.node}`, username: "probe" }))[0];
    if (ack?.ok !== true) throw new Error(`probe join_lobby failed: ${JSON.stringify(ack)}`);
    for (let node = 0; node < NODES; node++) {
      const mine = rooms.filter((room) => room.node === node);
      if (node === probe.node || !mine.length) continue;
      const last = mine.reduce((a, b) => (b.createdAs > a.createdAs ? b : a));
      for (let attempt = 0; ; attempt++) {
        const reply = JSON.parse(await probe.call("join_room", byCode ? { code: last.code } : { id: last.id }))[0];
        if (reply?.ok === true) break;
        if (reply?.error?.code !== "room_not_found" || now() - t0 > TIMEOUT_MS) {
          throw new Error(`node ${probe.node} does not see node ${node}'s rooms: ${JSON.stringify(reply)}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      const left = JSON.parse(await probe.call("leave_room", { id: last.id }))[0];
      if (left?.ok !== true) throw new Error(`probe leave_room failed: ${JSON.stringify(left)}`);
    }
  }
  for (const probe of probes) probe.close();
  log(`every node sees every room after ${((now() - t0) / 1000).toFixed(2)} s`);
}

// --- the connection ramp -------------------------------------------------------------

const pollAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: URL_BASE.hostname,
        port: URL_BASE.port,
        method,
        path,
        agent: pollAgent,
        headers: body === undefined ? {} : { "content-type": "text/plain;charset=UTF-8", "content-length": Buffer.byteLength(body) },
        timeout: TIMEOUT_MS + 30_000,
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString()) : reject(new Error(`HTTP ${res.statusCode}`))));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("poll timeout")));
    req.on("error", reject);
    req.end(body);
  });
}

/** One Socket.IO client over HTTP long-polling: connects the namespace, then keeps one
 * GET pending and answers pings until stopped. */
class PollClient {
  constructor() {
    this.stopped = false;
  }
  async connect() {
    const open = await request("GET", POLL_PATH);
    this.path = `${POLL_PATH}&sid=${JSON.parse(open.slice(1)).sid}`;
    await request("POST", this.path, `40${NS_PREFIX}`);
    for (let i = 0; i < 10; i++) {
      const packets = (await request("GET", this.path)).split("\x1e");
      if (packets.some((p) => p.startsWith(`40${NS_PREFIX}`))) {
        this.loop = this.#poll();
        return this;
      }
    }
    throw new Error("no namespace connect over polling");
  }
  async #poll() {
    while (!this.stopped) {
      let payload;
      try {
        payload = await request("GET", this.path);
      } catch (err) {
        if (!this.stopped) errors.add("poll_lost");
        return;
      }
      for (const packet of payload.split("\x1e")) {
        if (packet === "2") request("POST", this.path, "3").catch(() => !this.stopped && errors.add("pong_lost"));
        else if (packet === "1") {
          if (!this.stopped) errors.add("disconnect");
          return;
        }
      }
    }
  }
}

async function connections() {
  const WSN = Number(FLAGS.websockets);
  const PN = Number(FLAGS.polling);
  const settle = () => new Promise((r) => setTimeout(r, Number(FLAGS.settle) * 1000));
  await settle();
  const rss0 = serverRssKiB();
  const window = new CpuWindow();
  const { clients: sockets, seconds: wsSeconds } = await connectMany(WSN);
  await settle();
  const rss1 = serverRssKiB();
  log(`${WSN} websockets in ${wsSeconds.toFixed(1)} s`);
  const t0 = now();
  const pollers = await ramp(PN, () => new PollClient().connect());
  const pollSeconds = (now() - t0) / 1000;
  await settle();
  const rss2 = serverRssKiB();
  const cpu = window.close();
  log(`${PN} polling clients in ${pollSeconds.toFixed(1)} s`);
  const alive = sockets.filter((s) => s.open).length;
  for (const p of pollers) p.stopped = true;
  for (const s of sockets) s.close();
  pollAgent.destroy();
  const per = (a, b, n) => (a === null || b === null || n === 0 ? null : round((b - a) / n, 2));
  return {
    websockets: WSN,
    polling: PN,
    websockets_open_at_end: alive,
    connect_seconds: round(wsSeconds + pollSeconds),
    websocket_connect_seconds: round(wsSeconds),
    polling_connect_seconds: round(pollSeconds),
    rss_kib: { before: rss0, after_websockets: rss1, after_polling: rss2 },
    rss_kib_per_websocket: per(rss0, rss1, WSN),
    rss_kib_per_polling: per(rss1, rss2, PN),
    cpu,
  };
}

// --- main ----------------------------------------------------------------------------

const SCENARIOS = { fanout, churn, connections, ack, race };
const scenario = SCENARIOS[FLAGS.scenario];
if (!scenario) {
  process.stderr.write(`rawload: unknown scenario ${FLAGS.scenario}\n`);
  process.exit(2);
}
const hardStop = setTimeout(() => {
  process.stderr.write("rawload: scenario overran its time bound\n");
  process.exit(3);
}, (Number(FLAGS.duration) * 2 + Number(FLAGS["race-warmup"]) + Number(FLAGS["race-saturate"]) * 2 + 600) * 1000);
hardStop.unref();
try {
  const result = await scenario();
  result.errors = errors.counts;
  result.paced_seconds = round(pacedMs / 1000);
  process.stdout.write(JSON.stringify({ scenario: FLAGS.scenario, ...result }) + "\n");
  process.exit(0);
} catch (err) {
  process.stderr.write(`rawload: ${err.stack || err}\n`);
  process.stdout.write(JSON.stringify({ scenario: FLAGS.scenario, failed: String(err), errors: errors.counts }) + "\n");
  process.exit(1);
}
