// A remote-controlled socket.io-client 1.x or 2.x (Engine.IO v3, Socket.IO
// protocol 4), driven by the Python tests over pipes exactly as client.mjs
// drives socket.io-client 4 (same JSON lines; see client.mjs).
//
//   node legacy_client.cjs socket.io-client-1     (npm alias of socket.io-client@1.7.x)
//   node legacy_client.cjs socket.io-client-2     (npm alias of socket.io-client@2.x)
//
// Differences, because the old libraries lack them: events are seen by
// wrapping Socket#onevent (no onAny); "call" times out with a timer of its
// own; a CONNECT_ERROR arrives as the socket's "error" event with the message
// as a plain string and is reported as connect_error.
//
// The 2017 game client ran `JSON.parse(data)` on every "updaterooms"; with
// the option {"parseRoomLists": true} this driver does the same and reports
// the parsed list (an exception is reported as an error, failing the test).

"use strict";

const readline = require("node:readline");

const library = process.argv[2];
if (!library) {
  process.stderr.write("usage: node legacy_client.cjs <socket.io-client package>\n");
  process.exit(2);
}
const io = require(library);

const sockets = new Map(); // id -> Socket
const replies = new Map(); // id -> Map(event -> args)

function write(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function isBinary(value) {
  return Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

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

function attach(id, socket, parseRoomLists) {
  socket.on("connect", () => write({ type: "connect", id, sid: socket.id ?? null }));
  socket.on("connect_error", (err) =>
    write({ type: "connect_error", id, message: String(err?.message ?? err), data: null }),
  );
  socket.on("error", (err) =>
    write({ type: "connect_error", id, message: String(err?.message ?? err), data: null }),
  );
  socket.on("disconnect", (reason) => write({ type: "disconnect", id, reason, details: null }));
  const onevent = socket.onevent;
  socket.onevent = function (packet) {
    const args = (packet.data || []).slice();
    const event = args.shift();
    let ack = false;
    if (packet.id != null) {
      ack = true;
      const canned = replies.get(id)?.get(event) ?? [];
      this.ack(packet.id).apply(this, fromWire(canned));
    }
    let reported = args;
    if (event === "updaterooms" && parseRoomLists) {
      // What the 2017 client did with every list: JSON.parse(data).
      try {
        reported = [JSON.parse(args[0])];
      } catch (err) {
        write({ type: "error", id, message: `JSON.parse(updaterooms data) failed: ${err} on ${JSON.stringify(args[0])}` });
        return;
      }
    }
    write({ type: "event", id, event, args: toWire(reported), ack });
    if (!ack) onevent.call(this, packet);
  };
  const manager = socket.io;
  if (!manager.__harnessWatched) {
    manager.__harnessWatched = true;
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
  setTimeout(() => process.exit(0), 50).unref();
}

function handle(cmd) {
  switch (cmd.op) {
    case "connect": {
      if (sockets.has(cmd.id)) throw new Error(`socket id ${cmd.id} already in use`);
      const namespace = cmd.namespace ?? "/";
      const opts = Object.assign({}, cmd.opts ?? {});
      const parseRoomLists = !!opts.parseRoomLists;
      delete opts.parseRoomLists;
      let socket;
      if (cmd.share !== undefined) {
        socket = need(cmd.share).io.socket(namespace);
        socket.open();
      } else {
        socket = io(cmd.url.replace(/\/$/, "") + (namespace === "/" ? "" : namespace), opts);
      }
      sockets.set(cmd.id, socket);
      replies.set(cmd.id, new Map());
      attach(cmd.id, socket, parseRoomLists);
      return;
    }
    case "emit":
      need(cmd.id).emit(cmd.event, ...fromWire(cmd.args ?? []));
      return;
    case "call": {
      const socket = need(cmd.id);
      let done = false;
      const timer = setTimeout(() => {
        if (done) return;
        done = true;
        write({ type: "ack", seq: cmd.seq, error: "operation has timed out" });
      }, cmd.timeout ?? 10000);
      socket.emit(cmd.event, ...fromWire(cmd.args ?? []), (...ackArgs) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        write({ type: "ack", seq: cmd.seq, args: toWire(ackArgs) });
      });
      return;
    }
    case "reply":
      need(cmd.id);
      replies.get(cmd.id).set(cmd.event, cmd.args ?? []);
      return;
    case "transport": {
      const engine = need(cmd.id).io.engine;
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

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
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
