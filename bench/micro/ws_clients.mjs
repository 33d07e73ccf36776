// Raw WebSocket clients for the fan-out micro-benchmark (Node, one process).
// Same contract as ws_clients.py, but Node reads a thousand sockets faster
// than asyncio does, so the client is not what limits the measurement:
// prints READY once every client got its open packet, then DONE <seconds
// from the first counted byte to the last> lost=<n> once each client received
// --messages frames of --size bytes of data; exits when stdin closes.
import net from "node:net";
import crypto from "node:crypto";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, arg, i, all) => (arg.startsWith("--") ? [...acc, [arg.slice(2), all[i + 1]]] : acc), []),
);
const port = Number(args.port);
const clients = Number(args.clients ?? 1000);
const messages = Number(args.messages ?? 200);
const size = Number(args.size ?? 100);
const payload = 1 + size;
const frame = (payload < 126 ? 2 : payload < 65536 ? 4 : 10) + payload;
const expected = messages * frame;
// --socketio 1: join the main namespace ("40") and wait for its CONNECT reply.
const socketio = args.socketio === "1";
// --eio 3: Engine.IO v3 (socket.io-client 1.x/2.x): the server joins "/" itself.
const eio = args.eio ?? "4";

function masked(text) {
  const payload = Buffer.from(text);
  if (payload.length > 125) throw new Error("short frames only");
  const mask = crypto.randomBytes(4);
  const out = Buffer.alloc(6 + payload.length);
  out[0] = 0x81;
  out[1] = 0x80 | payload.length;
  mask.copy(out, 2);
  for (let i = 0; i < payload.length; i++) out[6 + i] = payload[i] ^ mask[i % 4];
  return out;
}

let ready = 0, done = 0, lost = 0, first = null;
// --acks N (with --socketio 1): each client then sends N events with an ack,
// one at a time ('42<id>["ping"]' -> '43<id>[...]'), and the run prints the
// round-trip percentiles in microseconds.
const acks = Number(args.acks ?? 0);
const ackStarters = [];
const rtts = [];

function pingLoop(socket, getBuffer, setBuffer) {
  let sent = 0, t0 = 0n;
  const next = () => {
    if (sent === acks) {
      if (++done === clients) report();
      return;
    }
    sent++;
    t0 = process.hrtime.bigint();
    socket.write(masked(`42${sent}["ping"]`));
  };
  socket.on("ackdata", () => {
    const buffer = getBuffer();
    if (buffer.length < 2) return;
    const length = buffer[1] & 0x7f;
    if (buffer.length < 2 + length) return;
    const packet = buffer.subarray(2, 2 + length).toString();
    setBuffer(buffer.subarray(2 + length));
    if (packet.startsWith(`43${sent}`)) {
      rtts.push(Number(process.hrtime.bigint() - t0) / 1000);
      next();
    }
    if (getBuffer().length) socket.emit("ackdata");
  });
  next();
}

function report() {
  rtts.sort((a, b) => a - b);
  const at = (q) => rtts[Math.min(rtts.length - 1, Math.floor(q * rtts.length))].toFixed(0);
  console.log(`ACKS n=${rtts.length} p50=${at(0.5)} p90=${at(0.9)} p99=${at(0.99)}`);
}

function open() {
  const socket = net.connect(port, "127.0.0.1");
  let state = "handshake", buffer = Buffer.alloc(0), received = 0;
  socket.setNoDelay(true);
  socket.on("connect", () => {
    const key = crypto.randomBytes(16).toString("base64");
    socket.write(
      `GET /socket.io/?EIO=${eio}&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
        `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
  socket.on("data", (data) => {
    if (state === "acking") {
      buffer = Buffer.concat([buffer, data]);
      socket.emit("ackdata");
      return;
    }
    if (state === "counting") {
      if (first === null) first = process.hrtime.bigint();
      received += data.length;
      if (received >= expected) {
        state = "done";
        if (++done === clients) finish();
      }
      return;
    }
    buffer = Buffer.concat([buffer, data]);
    if (state === "handshake") {
      const end = buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      if (!buffer.subarray(0, 12).toString().startsWith("HTTP/1.1 101")) throw new Error(buffer.toString());
      buffer = buffer.subarray(end + 4);
      state = "open";
    }
    if (state === "open" && buffer.length >= 2) {
      let length = buffer[1] & 0x7f, offset = 2;
      if (length === 126) {
        if (buffer.length < 4) return;
        length = buffer.readUInt16BE(2);
        offset = 4;
      }
      if (buffer.length < offset + length) return;
      const packet = buffer.subarray(offset, offset + length).toString();
      const rest = buffer.subarray(offset + length);
      if (socketio && packet.startsWith("0")) {
        if (eio !== "3") socket.write(masked("40"));
        buffer = rest;
        if (rest.length) socket.emit("data", Buffer.alloc(0));
        return;
      }
      if (acks > 0) {
        state = "acking";
        buffer = rest;
        ackStarters.push(() => pingLoop(socket, () => buffer, (b) => { buffer = b; }));
        if (++ready === clients) {
          console.log("READY");
          for (const start of ackStarters.splice(0)) start();
        }
        return;
      }
      state = "counting";
      buffer = null;
      if (++ready === clients) console.log("READY");
      if (rest.length) socket.emit("data", rest);
    }
  });
  socket.on("close", () => { if (state !== "done") lost++; });
  socket.on("error", () => {});
}

function finish() {
  const seconds = Number(process.hrtime.bigint() - first) / 1e9;
  console.log(`DONE ${seconds.toFixed(6)} lost=${lost}`);
}

// open in waves, so the server's listen backlog is never the limit
let opened = 0;
function wave() {
  for (let i = 0; i < 200 && opened < clients; i++, opened++) open();
  if (opened < clients) setTimeout(wave, 20);
}
wave();
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
