// Chromium (playwright-core) on the lobby page, for tests/proxy/test_browser.py.
//
// Usage: node browser_check.mjs <mode> <url>
//   proxy:   the page through nginx over https (the test's self-signed
//            certificate accepted); a socket.io-client socket made by the page's
//            own `io` connects to /lobby and upgrades to WebSocket (wss).
//   offline: the page whose client library cannot load; what it says, and where
//            a submitted sign-in form leaves the address bar.
// Prints one JSON line on stdout; exit code 1 on failure.

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "..", "js", "package.json"));
const { chromium } = require("playwright-core");

const [mode, url] = process.argv.slice(2);
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const STEP_MS = 20000;

async function proxy(page) {
  await page.goto(url);
  await page.waitForFunction(() => typeof window.io === "function", null, { timeout: STEP_MS });
  return page.evaluate(
    (stepMs) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no WebSocket upgrade in time")), stepMs);
        const socket = window.io("/lobby", { forceNew: true });
        socket.on("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
        socket.on("connect", () => {
          const engine = socket.io.engine;
          const done = () => {
            clearTimeout(timer);
            socket.emit("join_lobby", { id: "browser", username: "Browser" }, (ack) => {
              resolve({ protocol: location.protocol, transport: engine.transport.name, ack: ack.ok });
              socket.disconnect();
            });
          };
          if (engine.transport.name === "websocket") done();
          else engine.once("upgrade", done);
        });
      }),
    STEP_MS,
  );
}

async function offline(page) {
  await page.goto(url);
  const notice = page.getByText("whoever runs this server");
  await notice.waitFor({ timeout: STEP_MS });
  const form = page.locator("form").first();
  await form.locator("input[type=text]").first().fill("Mia");
  await form.locator("[type=submit]").first().click();
  // A native submit would navigate; give it the time a navigation takes to start.
  const navigated = await page
    .waitForEvent("framenavigated", { timeout: 1500 })
    .then(() => true)
    .catch(() => false);
  return { notice: await notice.innerText(), href: page.url(), navigated };
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  timeout: 60000,
});
let exitCode = 0;
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const result = mode === "proxy" ? await proxy(page) : await offline(page);
  console.log(JSON.stringify(result));
} catch (err) {
  console.log(JSON.stringify({ error: String(err && err.stack ? err.stack : err) }));
  exitCode = 1;
} finally {
  await browser.close();
}
process.exit(exitCode);
