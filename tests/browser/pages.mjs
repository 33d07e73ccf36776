// What both browser scenarios (scenario.mjs: the lobby; race_scenario.mjs: the race)
// share: launching Chromium, one browser context per person, waiting on what a page
// shows, signing in the way people do. Every wait is bounded by STEP_MS and says
// what it waited for when it gives up.

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "..", "js", "package.json"));
const { chromium } = require("playwright-core");

export const STEP_MS = Number(process.env.SCENARIO_STEP_TIMEOUT_MS || 15000);
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const COLOR_SCHEME = process.env.SCENARIO_COLOR_SCHEME || "light";

export const log = (...args) => console.error("[scenario]", ...args);

export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

export const byTest = (page, id) => page.locator(`[data-testid="${id}"]`);

export async function waitVisible(locator, what) {
  try {
    await locator.waitFor({ state: "visible", timeout: STEP_MS });
  } catch (err) {
    throw new Error(`${what}: not visible within ${STEP_MS} ms (${err.message.split("\n")[0]})`);
  }
}

// Waits until fn(page) (evaluated in the page with arg) is truthy; returns its value.
export async function waitIn(page, what, fn, arg) {
  try {
    const handle = await page.waitForFunction(fn, arg, { timeout: STEP_MS, polling: "raf" });
    return await handle.jsonValue();
  } catch (err) {
    throw new Error(`${what}: not within ${STEP_MS} ms (${err.message.split("\n")[0]})`);
  }
}

export const texts = (locator) => locator.evaluateAll((nodes) => nodes.map((n) => n.textContent.trim()));
export const textOf = async (locator) => (await locator.textContent()).trim();
export const activeId = (page) => page.evaluate(() => document.activeElement?.id ?? null);

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Playwright gives every launch a fresh temporary profile (user-data-dir).
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: 60000,
  });
}

export async function openPerson(browser, baseUrl, name, viewport) {
  const context = await browser.newContext({
    viewport,
    reducedMotion: "reduce",
    acceptDownloads: true,
    colorScheme: COLOR_SCHEME, // to look at the pages in dark mode by hand
  });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console: ${msg.text()}`);
  });
  page.on("requestfailed", (req) => problems.push(`requestfailed: ${req.url()} ${req.failure()?.errorText}`));
  await page.goto(baseUrl, { waitUntil: "load", timeout: STEP_MS });
  // Set once per document: if the page ever reloads, the marker is gone.
  await page.evaluate(() => {
    window.__noReloadMarker = "still-here";
  });
  await waitIn(page, `${name}: connected`, () =>
    document.querySelector("[data-testid=connection-state]")?.dataset.state === "connected");
  return { name, context, page, problems };
}

export async function signIn(person, username, role, { keyboard }) {
  const { page } = person;
  await waitVisible(byTest(page, "signin-view"), `${person.name}: sign-in view`);
  // The name field has focus on load, so typing goes straight in.
  const focused = await activeId(page);
  check(focused === "signin-name", `${person.name}: name field focused on load (got ${focused})`);
  if (keyboard) {
    await page.keyboard.type(username);
    if (role === "teacher") {
      await page.keyboard.press("Tab"); // to the role radios (the checked one: student)
      await page.keyboard.press("ArrowDown"); // radios move with arrows: teacher
    }
    await page.keyboard.press("Enter");
  } else {
    await page.getByLabel("Your name").fill(username);
    await page.getByLabel(role === "teacher" ? "Teacher" : "Student", { exact: true }).check();
    await page.getByRole("button", { name: "Enter the lobby" }).click();
  }
  await waitVisible(byTest(page, "lobby-view"), `${person.name}: lobby view after sign-in`);
  const whoami = await textOf(byTest(page, "whoami"));
  check(whoami === `Signed in as ${username} (${role})`, `${person.name}: whoami is "${whoami}"`);
  // Focus moved to the new view's heading, not lost on <body>.
  const active = await activeId(page);
  check(active === "lobby-heading", `${person.name}: focus on the lobby heading (got ${active})`);
  return whoami;
}

export async function waitPlayers(page, who, expected) {
  await waitIn(page, `${who}: players ${JSON.stringify(expected)}`, (want) => {
    const names = [...document.querySelectorAll("[data-testid=player]")].map((li) => li.firstChild.textContent);
    return JSON.stringify(names) === JSON.stringify(want);
  }, expected);
  return expected;
}

// Presses Tab until the focused element satisfies `predicate` (run in the page):
// how a keyboard-only user reaches a control.
export async function tabTo(page, what, predicate, arg, maxPresses = 80) {
  for (let i = 0; i < maxPresses; i += 1) {
    await page.keyboard.press("Tab");
    if (await page.evaluate(predicate, arg)) return i + 1;
  }
  throw new Error(`${what}: not reached within ${maxPresses} presses of Tab`);
}

// Runs `body(report, step)` and prints the report as one JSON line on stdout (with
// `error` on failure, and exit code 1).
export async function runScenario(body) {
  const report = { steps: [], pages: {} };
  const step = (name) => {
    log(name);
    report.steps.push(name);
  };
  try {
    await body(report, step);
  } catch (err) {
    console.error(`[scenario] FAILED at step "${report.steps.at(-1)}": ${err.stack || err}`);
    process.stdout.write(`${JSON.stringify({ ...report, error: String(err.message || err) })}\n`);
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify(report)}\n`);
}
