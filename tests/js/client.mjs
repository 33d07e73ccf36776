// A remote-controlled socket.io-client 4, driven by the Python tests over pipes.
//
// Why a subprocess: the tests must talk to the server the way a real Node (and,
// by extension, browser) client does, so this file holds no protocol logic of its
// own; it only maps JSON lines to socket.io-client calls and back.
//
// stdin, one JSON object per line:
//   {"op":"connect","id":"a","url":"http://127.0.0.1:1234","namespace":"/lobby","opts":{...}}
//   {"op":"connect","id":"b","share":"a","namespace":"/other","opts":{...}}  same connection as "a"
//   {"op":"emit","id":"a","event":"join_lobby","args":[...]}
//   {"op":"call","id":"a","event":"create_room","args":[...],"timeout":5000,"seq":7}   (emit with ack)
//   {"op":"reply","id":"a","event":"ping","args":[...]}   canned answer to server->client acks
//   {"op":"transport","id":"a","seq":8}
//   {"op":"disconnect","id":"a"}
//   {"op":"close"} / {"op":"exit"}   disconnect everything and exit
// stdout, one JSON object per line:
//   {"type":"ready"}
//   {"type":"event","id":"a","event":"updaterooms","args":[...],"ack":false}
//   {"type":"ack","seq":7,"args":[...]}  or  {"type":"ack","seq":7,"error":"operation has timed out"}
//   {"type":"transport","seq":8,"name":"websocket"}
//   {"type":"connect","id":"a","sid":"..."}
//   {"type":"connect_error","id":"a","message":"...","data":...}
//   {"type":"disconnect","id":"a","reason":"io server disconnect"}
//   {"type":"upgrade","id":"a","transport":"websocket"}
//   {"type":"error","message":"...","seq":9?}
// Binary values travel as {"$bin":"<base64>"} in both directions.

import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const sockets = new Map();   // id -> Socket
const replies = new Map();   // id -> Map(event -> args) for server->client acks

function write(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function isBinary(value) {
  return Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

// JSON-safe copy of what socket.io-client handed us: binary becomes {"$bin": base64}.
function toWire(value) {
  if (isBinary(value)) {
    const buf = Buffer.isBuffer(value)
      ? value
      : value instanceof ArrayBuffer
        ? Buffer.from(value)
        : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return { $bin: buf.toString("base64") };
  }
  if (Array.isArray(value)) return value.map(toWire);
  if (value !== null && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = toWire(v);
    return out;
  }
  return value === undefined ? null : value;
}

// The inverse: {"$bin": base64} becomes a Buffer, which socket.io sends as an attachment.
function fromWire(value) {
  if (Array.isArray(value)) return value.map(fromWire);
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "$bin") return Buffer.from(value.$bin, "base64");
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = fromWire(v);
    return out;
  }
  return value;
}

function attach(id, socket) {
  socket.on("connect", () => write({ type: "connect", id, sid: socket.id ?? null }));
  socket.on("connect_error", (err) =>
    write({ type: "connect_error", id, message: String(err?.message ?? err), data: toWire(err?.data ?? null) }),
  );
  socket.on("disconnect", (reason, details) =>
    write({ type: "disconnect", id, reason, details: details ? String(details.description ?? details.message ?? "") : null }),
  );
  socket.onAny((event, ...args) => {
    let ack = false;
    if (args.length > 0 && typeof args[args.length - 1] === "function") {
      const callback = args.pop();
      ack = true;
      // Answer server->client acks with the canned reply, or with no arguments,
      // as python-socketio's client does when its handler returns None.
      const canned = replies.get(id)?.get(event) ?? [];
      callback(...fromWire(canned));
    }
    write({ type: "event", id, event, args: toWire(args), ack });
  });
  const manager = socket.io;
  if (!manager.__harnessWatched) {
    manager.__harnessWatched = true;
    // The engine exists once the manager opens; report its upgrades for every socket on it.
    manager.on("open", () => {
      manager.engine.on("upgrade", (transport) => {
        for (const [sid, s] of sockets) {
          if (s.io === manager) write({ type: "upgrade", id: sid, transport: transport.name });
        }
      });
    });
  }
}

function need(id) {
  const socket = sockets.get(id);
  if (!socket) throw new Error(`unknown socket id ${JSON.stringify(id)}`);
  return socket;
}

function shutdown() {
  for (const socket of sockets.values()) socket.disconnect();
  sockets.clear();
  // Give the close packets a moment to leave, then go, even if some handle lingers.
  setTimeout(() => process.exit(0), 50).unref();
}

function handle(cmd) {
  switch (cmd.op) {
    case "connect": {
      if (sockets.has(cmd.id)) throw new Error(`socket id ${cmd.id} already in use`);
      const namespace = cmd.namespace ?? "/";
      let socket;
      if (cmd.share !== undefined) {
        socket = need(cmd.share).io.socket(namespace, cmd.opts ?? {});
        socket.connect();
      } else {
        socket = io(new URL(namespace, cmd.url).href, cmd.opts ?? {});
      }
      sockets.set(cmd.id, socket);
      replies.set(cmd.id, new Map());
      attach(cmd.id, socket);
      return;
    }
    case "emit":
      need(cmd.id).emit(cmd.event, ...fromWire(cmd.args ?? []));
      return;
    case "call": {
      // emitWithAck() keeps only the first ack argument; an ack callback keeps them all.
      const socket = need(cmd.id);
      const args = fromWire(cmd.args ?? []);
      if (cmd.timeout !== undefined && cmd.timeout !== null) {
        socket.timeout(cmd.timeout).emit(cmd.event, ...args, (err, ...ackArgs) => {
          if (err) write({ type: "ack", seq: cmd.seq, error: String(err?.message ?? err) });
          else write({ type: "ack", seq: cmd.seq, args: toWire(ackArgs) });
        });
      } else {
        socket.emit(cmd.event, ...args, (...ackArgs) => write({ type: "ack", seq: cmd.seq, args: toWire(ackArgs) }));
      }
      return;
    }
    case "reply":
      need(cmd.id);
      replies.get(cmd.id).set(cmd.event, cmd.args ?? []);
      return;
    case "transport": {
      const socket = need(cmd.id);
      const engine = socket.io.engine;
      write({ type: "transport", seq: cmd.seq, name: engine?.transport?.name ?? null });
      return;
    }
    case "disconnect":
      need(cmd.id).disconnect();
      return;
    case "close":
    case "exit":
      shutdown();
      return;
    default:
      throw new Error(`unknown op ${JSON.stringify(cmd.op)}`);
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on("line", (line) => {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
    handle(cmd);
  } catch (err) {
    write({ type: "error", message: String(err?.message ?? err), seq: cmd?.seq ?? null, id: cmd?.id ?? null });
  }
});
lines.on("close", shutdown);
write({ type: "ready" });
