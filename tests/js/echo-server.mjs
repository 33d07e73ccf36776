// A small reference server on Node's socket.io 4, for the harness self-tests.
//
// Why: the client harnesses must be proven against a server known to speak the
// protocol correctly before they are used against ours. It listens on 127.0.0.1,
// port 0 unless --port is given, and prints the bound port on stdout as one line.
//
// Namespaces "/" and "/other" (and any other "/..." except "/refuse") answer:
//   echo(...args)      -> emits "echo" back with the same args (binary included)
//   ack(...args)       -> acks with the same args
//   whoami()           -> acks {namespace, sid, engine, transport}
//   ask(event, ...args)-> emits `event` to the client with an ack, then emits
//                         "answer" with the client's ack args (or {"error": ...})
//   disconnect_me()    -> the server disconnects this socket from the namespace
//   anything else      -> ignored, never acked
// "/refuse" rejects every connection with Error("not allowed") carrying data {"code": 7}.

import { createServer } from "node:http";
import { Server } from "socket.io";

const portFlag = process.argv.indexOf("--port");
const port = portFlag >= 0 ? Number(process.argv[portFlag + 1]) : 0;

const httpServer = createServer();
const io = new Server(httpServer, { cors: { origin: "*" } });

function serve(nsp) {
  nsp.on("connection", (socket) => {
    socket.on("echo", (...args) => {
      // An ack callback is not data: never echo it (it would become our own ack request).
      if (typeof args[args.length - 1] === "function") args.pop();
      socket.emit("echo", ...args);
    });
    socket.on("ack", (...args) => {
      const callback = args.pop();
      if (typeof callback === "function") callback(...args);
    });
    socket.on("whoami", (callback) =>
      callback({
        namespace: socket.nsp.name,
        sid: socket.id,
        engine: socket.conn.id,
        transport: socket.conn.transport.name,
      }),
    );
    socket.on("ask", (event, ...args) => {
      socket.timeout(5000).emit(event, ...args, (err, ...answer) => {
        if (err) socket.emit("answer", { error: String(err.message ?? err) });
        else socket.emit("answer", ...answer);
      });
    });
    socket.on("disconnect_me", () => socket.disconnect());
  });
}

const refuse = io.of("/refuse");
refuse.use((socket, next) => {
  const err = new Error("not allowed");
  err.data = { code: 7 };
  next(err);
});
serve(io.of(/^\/(?!refuse$).*/));
serve(io.of("/"));

httpServer.listen(port, "127.0.0.1", () => {
  process.stdout.write(`${httpServer.address().port}\n`);
});

function stop() {
  io.close();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.resume();
