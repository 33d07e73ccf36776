// The lobby-at-scale workload (issue 13): many rooms, lobby clients on full lists
// and on the room feed, a steady rate of room changes; what a change costs the
// server (CPU, bytes written) and how late each watcher sees it.
//
//   node lobbyscale.mjs --url http://127.0.0.1:PORT --server-pid PID
//        --rooms 10000 --full 500 --feed 500 --rate 50 --duration 20
//
// Setup: `--rooms` hosts each open a room (named "Room <i> <topic>"); each host
// first watches its own room only (`watch_rooms {filter: {host}}`), so that the
// hosts, who are not what is measured, get no full lists. Then `--full` clients
// join the lobby (full `updaterooms` lists) and `--feed` clients watch the rooms
// of one topic that have seats (`{name: topic, has_seats: true}`, `--limit`).
// `--idle` connections watch nothing (a filter that matches no room): they pad a
// run with few rooms to as many connections as one with many, so that the two
// differ in rooms only (heartbeats cost per connection, not per room).
// Measurement: `--churn` hosts take turns, `--rate` times a second, at creating a
// room "Churn m<seq> <topic>" or disbanding the one they created (each a change).
//
// Lag of a create, per watcher: until a full-list client has a list whose newest
// room (the last in the list: rooms are in creation order, and a list cut to its
// size bound keeps the newest) is that create or a later one; until a feed
// client whose filter matches it has a roomschanged naming it. Only the tail of a
// list is searched, so the load client stays cheaper than the server.
//
// Raw Engine.IO v4 / Socket.IO v5 over `ws`, as rawload.mjs (which see). One JSON
// object on stdout; progress on stderr. Every wait is bounded.

import { readFileSync } from "node:fs";
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
    "server-pid": { type: "string", default: "0" },
    "clk-tck": { type: "string", default: "100" },
    rooms: { type: "string", default: "10000" },
    full: { type: "string", default: "500" },
    feed: { type: "string", default: "500" },
    limit: { type: "string", default: "100" },
    topics: { type: "string", default: "20" },
    churn: { type: "string", default: "50" },
    idle: { type: "string", default: "0" }, // connections that only watch nothing (padding to compare room counts)
    rate: { type: "string", default: "50" },
    duration: { type: "string", default: "20" },
    settle: { type: "string", default: "3" },
    "connect-concurrency": { type: "string", default: "100" },
    timeout: { type: "string", default: "60" },
  },
});
if (!FLAGS.url) {
  process.stderr.write("lobbyscale: --url is required\n");
  process.exit(2);
}

const NS_PREFIX = "/lobby,";
const EVENT_PREFIX = `42${NS_PREFIX}`;
const ACK_PREFIX = `43${NS_PREFIX}`;
const LIST_PREFIX = Buffer.from(`${EVENT_PREFIX}["updaterooms"`);
const FEED_PREFIX = Buffer.from(`${EVENT_PREFIX}["roomschanged"`);
const MARK = Buffer.from('"Churn m');
const WS_URL = `ws://${new URL(FLAGS.url).host}/socket.io/?EIO=4&transport=websocket`;
const SERVER_PID = Number(FLAGS["server-pid"]);
const CLK_TCK = Number(FLAGS["clk-tck"]);
const TIMEOUT_MS = Number(FLAGS.timeout) * 1000;
const CONCURRENCY = Number(FLAGS["connect-concurrency"]);
const TOPICS = Array.from({ length: Number(FLAGS.topics) }, (_, i) => `topic${String.fromCharCode(97 + (i % 26))}${i}`);
const DECK = { name: "Bench deck", flashcards: [{ id: 1, problem: "1+1", answer: "2" }] };

const now = () => performance.now();
const log = (msg) => process.stderr.write(`lobbyscale: ${msg}\n`);
const round = (x, digits = 3) => (x === null || Number.isNaN(x) ? null : Number(x.toFixed(digits)));
const errors = {};
const fail = (code) => (errors[code] = (errors[code] || 0) + 1);

function serverCpuSeconds() {
  if (!SERVER_PID) return null;
  const stat = readFileSync(`/proc/${SERVER_PID}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

function serverBytesWritten() {
  if (!SERVER_PID) return null;
  const match = /^wchar: (\d+)$/m.exec(readFileSync(`/proc/${SERVER_PID}/io`, "utf8"));
  return match ? Number(match[1]) : null;
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

/** One Socket.IO client over a raw WebSocket on /lobby; `onFrame(bytes)` sees list and feed frames. */
class Client {
  constructor() {
    this.seq = 0;
    this.acks = new Map();
    this.onFrame = null;
  }
  connect() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(WS_URL, { perMessageDeflate: false, skipUTF8Validation: true });
      this.ws = ws;
      let connected = false;
      const timer = setTimeout(() => reject(new Error("connect timeout")), TIMEOUT_MS);
      ws.on("error", (err) => !connected && reject(err));
      ws.on("close", () => {
        if (connected) fail("disconnect");
        for (const { reject: r } of this.acks.values()) r(new Error("closed"));
        this.acks.clear();
      });
      ws.on("message", (data, isBinary) => {
        if (isBinary) return;
        if (data.length > 30 && data[0] === 52 && data[1] === 50 && this.onFrame) {
          if (data.compare(LIST_PREFIX, 0, LIST_PREFIX.length, 0, LIST_PREFIX.length) === 0) return this.onFrame("list", data);
          if (data.compare(FEED_PREFIX, 0, FEED_PREFIX.length, 0, FEED_PREFIX.length) === 0) return this.onFrame("feed", data);
        }
        if (data[0] === 50 && data.length === 1) return ws.send("3");
        if (data[0] !== 52 && data[0] !== 48) return;
        const text = data.toString();
        if (text[0] === "0") return ws.send(`40${NS_PREFIX}`);
        if (text.startsWith(ACK_PREFIX)) {
          const bracket = text.indexOf("[", ACK_PREFIX.length);
          const pending = this.acks.get(Number(text.slice(ACK_PREFIX.length, bracket)));
          if (pending) {
            this.acks.delete(Number(text.slice(ACK_PREFIX.length, bracket)));
            pending.resolve(JSON.parse(text.slice(bracket))[0]);
          }
        } else if (!connected && text.startsWith(`40${NS_PREFIX}`)) {
          connected = true;
          clearTimeout(timer);
          resolve(this);
        }
      });
    });
  }
  call(event, payload) {
    const id = this.seq++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.acks.delete(id);
        reject(new Error(`${event} ack timeout`));
      }, TIMEOUT_MS);
      this.acks.set(id, { resolve: (v) => (clearTimeout(timer), resolve(v)), reject });
      this.ws.send(`${EVENT_PREFIX}${id}${JSON.stringify([event, payload])}`);
    });
  }
  async ok(event, payload) {
    try {
      const ack = await this.call(event, payload);
      if (!ack || ack.ok !== true) fail(ack?.error?.code ?? "bad_ack");
      return ack;
    } catch (err) {
      fail(err.message.includes("timeout") ? "ack_timeout" : "ack_lost");
      return null;
    }
  }
  close() {
    this.ws?.terminate();
  }
}

async function ramp(count, make) {
  const out = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      out[i] = await make(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, count) }, worker));
  return out;
}

/** A host that watches only its own room (no full lists), signed in as `id`. */
async function host(id) {
  const c = await new Client().connect();
  c.ok("watch_rooms", { filter: { host: id }, limit: 1 });
  await c.ok("join_lobby", { id, username: id });
  return c;
}

const created = new Map(); // seq -> time of the create's ack request
const lagFull = new Series();
const lagFeed = new Series();
let listBytes = 0;
let measuring = false;

/** The churn marker sequence numbers in `bytes` from `start` on. */
function markers(bytes, start = 0) {
  const found = [];
  let at = bytes.indexOf(MARK, start);
  while (at >= 0) {
    let seq = 0;
    let i = at + MARK.length;
    while (bytes[i] >= 48 && bytes[i] <= 57) seq = seq * 10 + (bytes[i++] - 48);
    found.push(seq);
    at = bytes.indexOf(MARK, i);
  }
  return found;
}

function watchFull(client) {
  client.covered = 0;
  client.onFrame = (kind, bytes) => {
    if (kind !== "list") return;
    listBytes = bytes.length;
    if (!measuring) return;
    const newest = Math.max(0, ...markers(bytes, Math.max(0, bytes.length - 2000)));
    const t = now();
    for (let seq = client.covered + 1; seq <= newest; seq++) {
      const at = created.get(seq);
      if (at !== undefined) lagFull.add(t - at);
    }
    if (newest > client.covered) client.covered = newest;
  };
}

function watchFeed(client, topic) {
  client.seen = new Set();
  client.onFrame = (kind, bytes) => {
    if (kind !== "feed" || !measuring) return;
    const t = now();
    for (const seq of markers(bytes)) {
      if (client.seen.has(seq)) continue;
      client.seen.add(seq);
      const at = created.get(seq);
      if (at !== undefined && created.topic.get(seq) === topic) lagFeed.add(t - at);
    }
  };
}
created.topic = new Map();

async function main() {
  const R = Number(FLAGS.rooms);
  const t0 = now();
  const hosts = await ramp(R, async (i) => {
    const c = await host(`h${i}`);
    await c.ok("create_room", { name: `Room ${i} ${TOPICS[i % TOPICS.length]}`, deck: DECK });
    return c;
  });
  log(`${R} rooms open after ${((now() - t0) / 1000).toFixed(1)} s`);
  const churners = await ramp(Number(FLAGS.churn), (i) => host(`c${i}`));
  const idle = await ramp(Number(FLAGS.idle), async () => {
    const c = await new Client().connect();
    await c.ok("watch_rooms", { filter: { state: [] } });
    return c;
  });
  const full = await ramp(Number(FLAGS.full), async (i) => {
    const c = await new Client().connect();
    watchFull(c);
    await c.ok("join_lobby", { id: `f${i}` });
    return c;
  });
  const feed = await ramp(Number(FLAGS.feed), async (i) => {
    const c = await new Client().connect();
    const topic = TOPICS[i % TOPICS.length];
    watchFeed(c, topic);
    await c.ok("watch_rooms", { filter: { name: topic, has_seats: true }, limit: Number(FLAGS.limit) });
    return c;
  });
  log(`${full.length} full-list and ${feed.length} feed clients after ${((now() - t0) / 1000).toFixed(1)} s`);
  await new Promise((r) => setTimeout(r, Number(FLAGS.settle) * 1000));

  const intervalMs = 1000 / Number(FLAGS.rate);
  const durationMs = Number(FLAGS.duration) * 1000;
  const rooms = new Array(churners.length).fill(null);
  let seq = 0;
  let changes = 0;
  const cpu0 = serverCpuSeconds();
  const bytes0 = serverBytesWritten();
  const self0 = process.cpuUsage();
  const start = now();
  measuring = true;
  const inflight = [];
  for (let k = 0; now() - start < durationMs; k++) {
    const j = k % churners.length;
    let changed = true;
    if (rooms[j] === null) {
      const mark = ++seq;
      const topic = TOPICS[mark % TOPICS.length];
      created.set(mark, now());
      created.topic.set(mark, topic);
      rooms[j] = -1; // being created
      inflight.push(churners[j].ok("create_room", { name: `Churn m${mark} ${topic}`, deck: DECK }).then((ack) => {
        rooms[j] = ack?.ok ? ack.room.id : null;
      }));
    } else if (rooms[j] > 0) {
      const id = rooms[j];
      rooms[j] = -1;
      inflight.push(churners[j].ok("leave_room", { id }).then(() => (rooms[j] = null)));
    } else {
      fail("churn_busy"); // its previous command is still out: this tick is skipped
      changed = false;
    }
    if (changed) changes++;
    const wait = start + (k + 1) * intervalMs - now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  await Promise.all(inflight);
  const seconds = (now() - start) / 1000;
  const cpu = serverCpuSeconds() - cpu0;
  const written = serverBytesWritten() - bytes0;
  const self = process.cpuUsage(self0);
  await new Promise((r) => setTimeout(r, 1500)); // the last lists and frames arrive
  measuring = false;
  for (const c of [...hosts, ...churners, ...idle, ...full, ...feed]) c.close();
  return {
    rooms: R,
    idle_connections: idle.length,
    full_clients: full.length,
    feed_clients: feed.length,
    changes,
    changes_per_second: round(changes / seconds, 1),
    seconds: round(seconds),
    server_cpu_share: round(cpu / seconds),
    server_cpu_ms_per_change: round((cpu * 1000) / changes),
    loadgen_cpu_share: round((self.user + self.system) / 1e6 / seconds),
    server_bytes_per_change: Math.round(written / changes),
    last_list_bytes: listBytes,
    lag_full: lagFull.summary(),
    lag_feed: lagFeed.summary(),
  };
}

const hardStop = setTimeout(() => {
  process.stderr.write("lobbyscale: overran its time bound\n");
  process.exit(3);
}, (Number(FLAGS.duration) + 900) * 1000);
hardStop.unref();
try {
  const result = await main();
  process.stdout.write(JSON.stringify({ ...result, errors }) + "\n");
  process.exit(0);
} catch (err) {
  process.stderr.write(`lobbyscale: ${err.stack || err}\n`);
  process.stdout.write(JSON.stringify({ failed: String(err), errors }) + "\n");
  process.exit(1);
}
