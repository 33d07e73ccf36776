// engine.io-client (the reference JS client) against our server: echoes
// "hello", '"q"' and 3 binary bytes, prints what came back as one JSON line.
const path = require("path");
const { Socket } = require(path.join(__dirname, "..", "js", "node_modules", "engine.io-client"));
const [port, transports] = [process.argv[2], JSON.parse(process.argv[3])];
const socket = new Socket(`ws://127.0.0.1:${port}`, { path: "/socket.io/", transports });
const got = [];
const messages = () => got.filter((x) => !x.startsWith("upgrade:"));
const timer = setTimeout(() => { console.log(JSON.stringify(got)); process.exit(2); }, 10000);
socket.on("open", () => { socket.send("hello"); socket.send('"q"'); socket.send(Buffer.from([1, 2, 3])); });
socket.on("upgrade", (t) => got.push("upgrade:" + t.name));
socket.on("message", (m) => {
  got.push(typeof m === "string" ? m : "bin:" + Buffer.from(m).toString("hex"));
  if (messages().length === 3) {
    const finish = () => { clearTimeout(timer); got.push("transport:" + socket.transport.name); console.log(JSON.stringify(got)); socket.close(); };
    // with both transports, wait for the upgrade to finish before reporting
    if (transports.length > 1 && socket.transport.name !== "websocket") socket.once("upgrade", finish); else finish();
  }
});
socket.on("error", (e) => { console.log(JSON.stringify(["error", String(e)])); process.exit(1); });
