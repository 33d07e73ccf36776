// The 2017 game client's setting, for real: socket.io-client 1.x/2.x loaded in
// Chromium (XHR2, so Engine.IO v3 *binary* polling payloads, which Node's
// socket.io-client never uses), a teacher and a student in two pages running
// the Lobby.js sequence: join_lobby on connect, create_room, join_room,
// leave_room, no acks, JSON.parse(data) on every updaterooms.
//
// Usage: node legacy_2017.mjs <base-url> <socket.io.js bundle> <transports JSON or "default">
// Prints one JSON line: what each page received. Exit code 1 on any failure.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "..", "js", "package.json"));
const { chromium } = require("playwright-core");

const [baseUrl, bundle, transportsArg] = process.argv.slice(2);
const transports = transportsArg && transportsArg !== "default" ? JSON.parse(transportsArg) : null;
const STEP_MS = Number(process.env.SCENARIO_STEP_TIMEOUT_MS || 15000);
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const TEACHER = { id: 1, auth_level: "teacher", username: "Ms Frizzle ½ 🦊" };
const STUDENT = { id: 2, auth_level: "student", username: "Zoë" };
const DECK = { name: "Brüche", flashcards: [{ id: 1, problem: "1/2+1/4", solution: "3/4" }] };

// Runs in the page: the 2017 client, more or less as Lobby.js had it.
function lobbyJs({ url, user, transports }) {
  const opts = { forceNew: true };
  if (transports) opts.transports = transports;
  const socket = io(url + "/lobby", opts);
  window.seen = { lists: [], events: [], errors: [] };
  socket.on("connect", () => socket.emit("join_lobby", user));
  socket.on("updaterooms", (data) => {
    try {
      window.seen.lists.push(JSON.parse(data));
    } catch (err) {
      window.seen.errors.push(`JSON.parse failed on ${JSON.stringify(data)}: ${err}`);
    }
  });
  for (const name of ["roomclosed", "rejected", "replaced"]) {
    socket.on(name, (data) => window.seen.events.push([name, data]));
  }
  socket.on("error", (err) => window.seen.errors.push(`error: ${err}`));
  window.socket = socket;
}

const lastList = (page) => page.evaluate(() => window.seen.lists[window.seen.lists.length - 1] ?? null);

async function until(page, what, predicate, arg) {
  try {
    await page.waitForFunction(predicate, arg, { timeout: STEP_MS, polling: 50 });
  } catch (err) {
    const seen = await page.evaluate(() => window.seen);
    throw new Error(`${what}: not within ${STEP_MS} ms; seen ${JSON.stringify(seen)}`);
  }
}

const listIs = (expected) => {
  const lists = window.seen.lists;
  const last = lists[lists.length - 1];
  return Array.isArray(last) && JSON.stringify(last.map((room) => room.name)) === JSON.stringify(expected);
};
const playersAre = (expected) => {
  const lists = window.seen.lists;
  const last = lists[lists.length - 1];
  return Array.isArray(last) && last.length === 1 &&
    JSON.stringify(last[0].players.map((p) => p.id)) === JSON.stringify(expected);
};

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
const report = {};
try {
  const code = readFileSync(bundle, "utf8");
  const pages = {};
  for (const [name, user] of [["teacher", TEACHER], ["student", STUDENT]]) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(baseUrl + "/healthz"); // same origin as the server, as the game's page was
    await page.addScriptTag({ content: code });
    await page.evaluate(lobbyJs, { url: baseUrl, user, transports });
    await until(page, `${name}: first list`, () => window.seen.lists.length > 0);
    pages[name] = page;
  }
  const { teacher, student } = pages;
  await teacher.evaluate((deck) => window.socket.emit("create_room", {
    name: "Brüche ½ 😀", host: { id: 1, auth_level: "teacher", username: "Ms Frizzle ½ 🦊" }, deck,
  }), DECK);
  for (const page of [teacher, student]) await until(page, "room listed", listIs, ["Brüche ½ 😀"]);
  const roomId = (await lastList(student))[0].id;
  await student.evaluate((id) => window.socket.emit("join_room", { id }), roomId);
  for (const page of [teacher, student]) await until(page, "student seated", playersAre, [2]);
  await student.evaluate((id) => window.socket.emit("leave_room", { id }), roomId);
  for (const page of [teacher, student]) await until(page, "student left", playersAre, []);
  await student.evaluate((id) => window.socket.emit("join_room", { id }), roomId);
  await until(student, "student back", playersAre, [2]);
  await teacher.evaluate((id) => window.socket.emit("leave_room", { id }), roomId);
  for (const page of [teacher, student]) await until(page, "room gone", listIs, []);
  for (const [name, page] of Object.entries(pages)) {
    report[name] = await page.evaluate(() => ({
      ...window.seen,
      transport: window.socket.io.engine.transport.name,
      supportsBinary: window.socket.io.engine.transport.supportsBinary ?? null,
    }));
    report[name].lastList = await lastList(page);
    await page.evaluate(() => window.socket.close());
  }
  console.log(JSON.stringify(report));
} catch (err) {
  console.log(JSON.stringify({ error: String(err?.message ?? err), ...report }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
