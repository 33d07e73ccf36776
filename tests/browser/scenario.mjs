// The lobby page in a real browser: a teacher and two students, each in their own
// browser context (own cookies and sessionStorage, so own user ids), drive the page
// the way people do, through labels, buttons and the keyboard.
//
// Usage: node scenario.mjs <base-url> <artifacts-dir>
// Env: CHROMIUM (default /usr/bin/chromium), SCENARIO_STEP_TIMEOUT_MS (default 15000),
// SCENARIO_COLOR_SCHEME (light, the default, or dark).
// Prints one JSON line on stdout with what the pages showed, for the pytest side
// to assert on; progress and failures go to stderr; exit code 1 on any failure.
//
// The server must be started with max_rooms = 1: the second create_room is how the
// scenario provokes an error from the server (too_many_rooms) deterministically.

import { mkdirSync } from "node:fs";
import { join } from "node:path";

import {
  byTest, check, launchBrowser, openPerson as openPersonAt, signIn, STEP_MS, waitIn, waitPlayers, waitVisible, log,
} from "./pages.mjs";

const [baseUrl, artifacts] = process.argv.slice(2);
if (!baseUrl || !artifacts) {
  console.error("usage: node scenario.mjs <base-url> <artifacts-dir>");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });

const report = { steps: [], pages: {} };
const step = (name) => {
  log(name);
  report.steps.push(name);
};
const openPerson = (browser, name, viewport) => openPersonAt(browser, baseUrl, name, viewport);

async function roomItems(page) {
  return page.locator("[data-testid=room-item]").evaluateAll((items) =>
    items.map((li) => ({
      id: li.dataset.roomId,
      name: li.querySelector("[data-testid=room-name]").textContent,
      meta: li.querySelector("[data-testid=room-meta]").textContent,
    })));
}

async function transportOf(page) {
  return page.evaluate(() => ({
    attribute: document.querySelector("[data-testid=connection-state]").dataset.transport,
    engine: window.roomactorsLobby.socket.io.engine.transport.name,
  }));
}

async function main() {
  const browser = await launchBrowser();
  const people = [];
  try {
    step("open three browser contexts");
    const teacher = await openPerson(browser, "teacher", { width: 1200, height: 800 });
    const alice = await openPerson(browser, "alice", { width: 1200, height: 800 });
    const bob = await openPerson(browser, "bob", { width: 390, height: 844 }); // phone-sized
    people.push(teacher, alice, bob);

    step("sign in: the teacher by keyboard only, the students with the mouse");
    report.pages.teacher = { whoami: await signIn(teacher, "Ms Rivera", "teacher", { keyboard: true }) };
    report.pages.alice = { whoami: await signIn(alice, "Alice", "student", { keyboard: false }) };
    report.pages.bob = { whoami: await signIn(bob, "Bob", "student", { keyboard: true }) };
    for (const p of people) {
      await waitVisible(byTest(p.page, "rooms-empty"), `${p.name}: empty room list`);
    }

    step("the teacher creates a room with pasted cards");
    const tp = teacher.page;
    await tp.getByLabel("Room name").fill("Fractions");
    await tp.getByLabel("Deck name").fill("Week 3");
    await tp.getByLabel("Paste my own cards").check();
    await waitVisible(tp.getByLabel(/Cards, one per line/), "teacher: paste area");
    await tp.getByLabel(/Cards, one per line/).fill("1/2 + 1/4 = 3/4\n# a comment\n\n2/3 - 1/3 = 1/3\n3/4 × 2 = 3/2\n");
    await tp.getByRole("button", { name: "Create room" }).click();
    await waitVisible(byTest(tp, "room-view"), "teacher: room view after create");
    report.pages.teacher.roomTitle = (await byTest(tp, "room-title").textContent()).trim();
    report.pages.teacher.roomDeck = (await byTest(tp, "room-deck").textContent()).trim();
    report.pages.teacher.roomHost = (await byTest(tp, "room-host").textContent()).trim();
    check(report.pages.teacher.roomTitle === "Fractions", "teacher: room title");
    check(report.pages.teacher.roomDeck === "Week 3 · 3 cards", `teacher: deck is "${report.pages.teacher.roomDeck}"`);
    const teacherFocus = await tp.evaluate(() => document.activeElement?.id);
    check(teacherFocus === "room-heading", `teacher: focus on the room heading (got ${teacherFocus})`);

    step("the students see the room appear without reloading");
    for (const student of [alice, bob]) {
      await waitVisible(student.page.locator("[data-testid=room-item]", { hasText: "Fractions" }),
        `${student.name}: room in the list`);
      const marker = await student.page.evaluate(() => window.__noReloadMarker);
      check(marker === "still-here", `${student.name}: page was reloaded`);
    }
    report.pages.alice.roomsBeforeJoin = await roomItems(alice.page);
    check(report.pages.alice.roomsBeforeJoin.length === 1, "alice: exactly one room listed");
    check(report.pages.alice.roomsBeforeJoin[0].meta === "Host: Ms Rivera · Deck: Week 3 (3 cards) · 0 / 50 players",
      `alice: room meta "${report.pages.alice.roomsBeforeJoin[0].meta}"`);
    await alice.page.screenshot({ path: join(artifacts, "lobby.png"), fullPage: true });

    step("the search box asks the feed again: a name nobody has, then part of the room's");
    const search = alice.page.getByLabel("Search rooms by name");
    await search.fill("geometry");
    await waitVisible(byTest(alice.page, "rooms-empty"), "alice: no room matches the search");
    report.pages.alice.searchEmpty = (await byTest(alice.page, "rooms-empty").textContent()).trim();
    await search.fill("FRAC");
    await waitVisible(alice.page.locator("[data-testid=room-item]", { hasText: "Fractions" }), "alice: found by a piece of its name");
    await search.fill("");
    await waitVisible(alice.page.locator("[data-testid=room-item]", { hasText: "Fractions" }), "alice: the full list again");

    step("a server error is shown next to the action that caused it (too_many_rooms)");
    const ap = alice.page;
    await ap.getByLabel("Room name").fill("Second room");
    await ap.getByLabel("Deck name").fill("Tables");
    await ap.getByLabel("Number of cards").fill("5");
    await ap.getByRole("button", { name: "Create room" }).click();
    const createError = byTest(ap, "create-error");
    await waitVisible(createError, "alice: create error");
    report.pages.alice.createError = {
      text: (await createError.textContent()).trim(),
      code: await createError.getAttribute("data-code"),
      insideForm: await createError.evaluate((node) => node.closest("form")?.id ?? null),
    };
    check(report.pages.alice.createError.code === "too_many_rooms",
      `alice: error code ${report.pages.alice.createError.code}`);
    await waitVisible(byTest(ap, "lobby-view"), "alice: still in the lobby after the error");

    step("alice joins with the mouse, bob with the keyboard");
    await ap.getByRole("button", { name: "Join room Fractions" }).click();
    await waitVisible(byTest(ap, "room-view"), "alice: room view after join");
    report.pages.alice.roomHost = (await byTest(ap, "room-host").textContent()).trim();
    const bp = bob.page;
    await bp.getByRole("button", { name: "Join room Fractions" }).focus();
    await bp.keyboard.press("Enter");
    await waitVisible(byTest(bp, "room-view"), "bob: room view after join");

    step("the teacher sees both students");
    report.pages.teacher.playersAfterJoins = await waitPlayers(tp, "teacher", ["Alice", "Bob"]);
    report.pages.teacher.capacity = (await byTest(tp, "room-capacity").textContent()).trim();
    check(report.pages.teacher.capacity === "2 / 50", `teacher: capacity "${report.pages.teacher.capacity}"`);
    await waitPlayers(bp, "bob", ["Alice", "Bob"]);
    await tp.screenshot({ path: join(artifacts, "room.png"), fullPage: true });
    await bp.screenshot({ path: join(artifacts, "room-phone.png"), fullPage: true });

    step("alice leaves; the teacher sees only bob");
    await ap.getByRole("button", { name: "Leave room" }).click();
    await waitVisible(byTest(ap, "lobby-view"), "alice: back in the lobby");
    report.pages.alice.noticeAfterLeave = (await byTest(ap, "notice").locator(".notice-text").textContent()).trim();
    report.pages.teacher.playersAfterLeave = await waitPlayers(tp, "teacher", ["Bob"]);
    await waitIn(ap, "alice: list shows 1 player", () =>
      document.querySelector("[data-testid=room-item]")?.dataset.players === "1");

    step("the teacher closes the room; bob is told and is back in the lobby");
    await tp.getByRole("button", { name: "Close room" }).click();
    await waitVisible(byTest(tp, "lobby-view"), "teacher: back in the lobby");
    await waitVisible(byTest(bp, "lobby-view"), "bob: back in the lobby");
    const notice = byTest(bp, "notice");
    await waitVisible(notice, "bob: notice");
    report.pages.bob.notice = {
      text: (await notice.locator(".notice-text").textContent()).trim(),
      reason: await notice.getAttribute("data-reason"),
      live: await notice.evaluate((node) => node.closest("[aria-live]")?.getAttribute("aria-live")),
    };
    check(report.pages.bob.notice.reason === "host_left", `bob: notice reason ${report.pages.bob.notice.reason}`);
    check(report.pages.bob.notice.text.includes("The host closed the room."), `bob: notice "${report.pages.bob.notice.text}"`);
    for (const p of people) {
      await waitVisible(byTest(p.page, "rooms-empty"), `${p.name}: room list empty again`);
    }
    await bp.screenshot({ path: join(artifacts, "room-closed-phone.png"), fullPage: true });

    step("every page upgraded to WebSocket");
    for (const p of people) {
      await waitIn(p.page, `${p.name}: websocket`, () =>
        window.roomactorsLobby.socket.io.engine.transport.name === "websocket" &&
        document.querySelector("[data-testid=connection-state]").dataset.transport === "websocket");
      report.pages[p.name].transport = await transportOf(p.page);
      const feed = await p.page.evaluate(() => window.roomactorsLobby.state.feed);
      check(feed.watching === true && feed.fallback === false, `${p.name}: on the room feed (${JSON.stringify(feed)})`);
    }

    step("a dropped connection shows 'reconnecting'; the page signs in again, back in its seat (a server with a reconnect grace) or told the seat was lost");
    await tp.getByLabel("Room name").fill("After the drop");
    await tp.getByLabel("Deck name").fill("Tables");
    await tp.getByRole("button", { name: "Create room" }).click();
    await waitVisible(byTest(tp, "room-view"), "teacher: second room");
    await ap.getByRole("button", { name: "Join room After the drop" }).click();
    await waitVisible(byTest(ap, "room-view"), "alice: in the second room");
    await waitPlayers(tp, "teacher", ["Alice"]);
    await ap.evaluate(() => {
      const status = document.querySelector("[data-testid=connection-state]");
      window.__connectionStates = [];
      new MutationObserver(() => window.__connectionStates.push(status.dataset.state))
        .observe(status, { attributes: true, attributeFilter: ["data-state"] });
      window.roomactorsLobby.socket.io.engine.close(); // as if the network dropped
    });
    // "connected" only once the page's own join_lobby was answered
    await waitIn(ap, "alice: reconnected", () =>
      document.querySelector("[data-testid=connection-state]").dataset.state === "connected" &&
      window.__connectionStates.includes("reconnecting"));
    const seatKept = await ap.evaluate(() => document.body.dataset.view === "room");
    if (seatKept) {
      await waitVisible(byTest(ap, "room-view"), "alice: back in her seat");
      await waitPlayers(tp, "teacher", ["Alice"]);
    } else {
      await waitVisible(byTest(ap, "lobby-view"), "alice: lobby after reconnecting");
      await waitIn(ap, "alice: told about the lost seat", () =>
        document.querySelector("[data-testid=notice]").dataset.reason === "dropped");
      await waitPlayers(tp, "teacher", []);
      await waitIn(ap, "alice: list shows 0 players", () =>
        document.querySelector("[data-testid=room-item]")?.dataset.players === "0");
    }
    report.pages.alice.reconnect = {
      states: await ap.evaluate(() => [...new Set(window.__connectionStates)]),
      seatKept,
      notice: seatKept ? null : (await byTest(ap, "notice").locator(".notice-text").textContent()).trim(),
      whoami: (await byTest(ap, "whoami").textContent()).trim(),
      reloaded: (await ap.evaluate(() => window.__noReloadMarker)) !== "still-here",
    };
    await tp.getByRole("button", { name: "Close room" }).click();
    await waitVisible(byTest(ap, "rooms-empty"), "alice: second room gone");

    step("an unlisted room: in nobody's list; bob on the phone joins it by its code, keyboard only");
    await tp.getByLabel("Room name").fill("Secret quiz");
    await tp.getByLabel("Deck name").fill("Tables");
    await tp.getByLabel("Listed in the lobby").uncheck();
    await tp.getByRole("button", { name: "Create room" }).click();
    await waitVisible(byTest(tp, "room-view"), "teacher: unlisted room");
    await waitVisible(byTest(tp, "room-code"), "teacher: the room's code");
    const code = (await byTest(tp, "room-code").textContent()).trim();
    check(/^[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{6}$/.test(code), `teacher: room code "${code}"`);
    report.pages.teacher.unlistedCode = code;
    await tp.screenshot({ path: join(artifacts, "room-code.png"), fullPage: true });
    for (const p of [alice, bob]) {
      await waitVisible(byTest(p.page, "rooms-empty"), `${p.name}: the unlisted room is in no list`);
    }
    const codeField = bp.getByLabel("Room code from your teacher");
    await codeField.focus();
    await bp.keyboard.type(" zzzzzz ");
    await bp.keyboard.press("Enter");
    const codeError = byTest(bp, "join-code-error");
    await waitVisible(codeError, "bob: wrong code refused");
    report.pages.bob.wrongCode = {
      text: (await codeError.textContent()).trim(),
      code: await codeError.getAttribute("data-code"),
      focus: await bp.evaluate(() => document.activeElement?.id),
    };
    check(report.pages.bob.wrongCode.code === "room_not_found", `bob: wrong code error ${report.pages.bob.wrongCode.code}`);
    check(report.pages.bob.wrongCode.focus === "join-code", `bob: focus after a wrong code ${report.pages.bob.wrongCode.focus}`);
    await bp.keyboard.press("Control+A");
    await bp.keyboard.type(`  ${code.toLowerCase()} `); // as people type it
    await bp.screenshot({ path: join(artifacts, "join-code-phone.png"), fullPage: true });
    await bp.keyboard.press("Enter");
    await waitVisible(byTest(bp, "room-view"), "bob: in the unlisted room by its code");
    report.pages.bob.byCode = {
      title: (await byTest(bp, "room-title").textContent()).trim(),
      code: (await byTest(bp, "room-code").textContent()).trim(),
    };
    await waitPlayers(tp, "teacher", ["Bob"]);
    await waitVisible(byTest(ap, "rooms-empty"), "alice: still no room listed");
    await tp.getByRole("button", { name: "Close room" }).click();
    await waitVisible(byTest(bp, "lobby-view"), "bob: back in the lobby after the unlisted room closed");

    step("the same user in a new tab takes over; the old tab is told");
    const bobTab = await bob.context.newPage();
    const bobId = await bp.evaluate(() => sessionStorage.getItem("roomactors.userId"));
    const bobProfile = await bp.evaluate(() => sessionStorage.getItem("roomactors.profile"));
    const bobToken = await bp.evaluate(() => sessionStorage.getItem("roomactors.seatToken"));
    await bobTab.addInitScript(([id, profile, token]) => {
      sessionStorage.setItem("roomactors.userId", id);
      sessionStorage.setItem("roomactors.profile", profile);
      if (token) sessionStorage.setItem("roomactors.seatToken", token); // the seat's key: a takeover needs it
    }, [bobId, bobProfile, bobToken]);
    await bobTab.goto(baseUrl, { waitUntil: "load", timeout: STEP_MS });
    await waitVisible(byTest(bobTab, "lobby-view"), "bob's new tab: signed in again from the saved profile");
    await waitIn(bp, "bob's old tab: replaced", () =>
      document.querySelector("[data-testid=notice]")?.dataset.reason === "replaced" &&
      document.querySelector("[data-testid=connection-state]").dataset.state === "disconnected");
    report.pages.bob.replaced = {
      text: (await byTest(bp, "notice").locator(".notice-text").textContent()).trim(),
      view: await bp.evaluate(() => document.body.dataset.view),
      state: await bp.evaluate(() => document.querySelector("[data-testid=connection-state]").dataset.state),
    };
    await bobTab.close();

    for (const p of people) {
      report.pages[p.name].problems = p.problems;
    }
  } finally {
    for (const p of people) await p.context.close().catch(() => {});
    await browser.close();
  }
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().catch((err) => {
  console.error(`[scenario] FAILED at step "${report.steps.at(-1)}": ${err.stack || err}`);
  process.stdout.write(`${JSON.stringify({ ...report, error: String(err.message || err) })}\n`);
  process.exit(1);
});
