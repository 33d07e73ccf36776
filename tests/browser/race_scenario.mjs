// A whole race in real browsers: a teacher and two students in their own browser
// contexts. Alice uses a desktop window and the mouse; Bob a phone-sized window and
// the keyboard alone (Tab, typing, Enter). The teacher starts a race, everyone sees
// the same countdown, the students answer, each sees the others' progress live, the
// results show the right places and answers, the teacher downloads the answers as
// CSV, starts a rematch and ends it, then removes a student and locks the room.
//
// Usage: node race_scenario.mjs <base-url> <artifacts-dir>
// Env: CHROMIUM (default /usr/bin/chromium), SCENARIO_STEP_TIMEOUT_MS (default 15000),
// SCENARIO_SEATS=1 (reload pages and drop the network mid-race: a server with a reconnect grace),
// SCENARIO_COLOR_SCHEME (light, the default, or dark).
// Prints one JSON line on stdout with what the pages showed (the pytest side asserts
// on it); progress and failures go to stderr; exit code 1 on any failure.

import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

import {
  activeId, byTest, check, launchBrowser, openPerson, runScenario, signIn, tabTo, textOf, texts, waitIn,
  waitPlayers, waitVisible,
} from "./pages.mjs";

const [baseUrl, artifacts] = process.argv.slice(2);
if (!baseUrl || !artifacts) {
  console.error("usage: node race_scenario.mjs <base-url> <artifacts-dir>");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });

const ROOM = "Race day";
const CARDS = "6 × 7 = 42\n1/2 + 1/4 = 3/4\nCapital of France = Paris\n";
const COUNTDOWN_S = "3";

const userIdOf = (page) => page.evaluate(() => window.roomactorsLobby.state.me.id);

// Records what a page shows from now on, so the checks do not depend on looking at
// the right moment (a loaded machine can stall the test past a 3 s countdown): the
// countdown when it first appears (its number, the card area's text, the focus),
// and every text of the screen readers' live region.
const watchRace = (page) => page.evaluate(() => {
  const seen = { countdown: null, live: [] };
  window.__raceSeen = seen;
  const countdown = document.querySelector("[data-testid=countdown]");
  new MutationObserver(() => {
    if (!countdown.hidden && seen.countdown === null) {
      seen.countdown = {
        number: document.querySelector("[data-testid=countdown-number]").textContent,
        problem: document.querySelector("[data-testid=problem]").textContent,
        focus: document.activeElement?.id ?? null,
      };
    }
  }).observe(countdown, { attributes: true, attributeFilter: ["hidden"] });
  const live = document.querySelector("[data-testid=race-live]");
  new MutationObserver(() => seen.live.push(live.textContent))
    .observe(live, { childList: true, characterData: true, subtree: true });
});
const raceSeen = (page) => page.evaluate(() => window.__raceSeen);

// What a page shows of the race right now.
const raceView = (page) => page.evaluate(() => {
  const panel = document.querySelector("[data-testid=race-panel]");
  return {
    visible: !panel.hidden,
    raceId: panel.dataset.raceId,
    startAt: Number(panel.dataset.startAt),
    phase: panel.dataset.phase,
    // the page's estimate of the server clock minus this machine's clock: the same
    // machine runs every context, so the estimates must agree
    clockSkew: window.roomactorsLobby.serverNow() - (performance.timeOrigin + performance.now()),
    synced: Number.isFinite(window.roomactorsLobby.clock.bestRtt), // time_sync answered
  };
});

const laneOf = (page, who, userId) => waitIn(page, `${who}: lane of ${userId}`, (id) => {
  const li = document.querySelector(`[data-testid=lane][data-user-id="${CSS.escape(String(id))}"]`);
  return li ? { answered: li.dataset.answered, correct: li.dataset.correct, done: li.dataset.done,
    name: li.querySelector("[data-testid=lane-name]").textContent,
    stats: li.querySelector("[data-testid=lane-stats]").textContent,
    spoken: li.querySelector(".lane-spoken").textContent } : null;
}, userId);

async function waitLane(page, who, userId, want) {
  return waitIn(page, `${who}: lane of ${userId} is ${JSON.stringify(want)}`, ([id, expected]) => {
    const li = document.querySelector(`[data-testid=lane][data-user-id="${CSS.escape(String(id))}"]`);
    return li && Object.entries(expected).every(([k, v]) => li.dataset[k] === v);
  }, [userId, want]);
}

// Types an answer into the focused-or-given field and presses Enter; waits for the
// verdict of that card (the feedback changes, or the race moves on).
async function answer(page, who, text, { keyboardOnly }) {
  const [before, position] = await page.evaluate(() => {
    const r = window.roomactorsLobby.state.race;
    return r ? [r.next, r.cards.findIndex((c) => c.index === r.next)] : [null, -1];
  });
  if (keyboardOnly) {
    const focused = await activeId(page);
    check(focused === "answer-input", `${who}: the answer field keeps the focus (got ${focused})`);
    await page.keyboard.type(text);
    await page.keyboard.press("Enter");
  } else {
    await page.getByLabel("Your answer", { exact: true }).fill(text);
    await page.getByLabel("Your answer", { exact: true }).press("Enter");
  }
  await waitIn(page, `${who}: verdict for card ${before}`, (card) => {
    const r = window.roomactorsLobby.state.race;
    return !r || (r.next !== card && !r.pending);
  }, before);
  // The server may send raceover before the last answer's ack (their order is not
  // specified): then the results give that card's verdict.
  return page.evaluate((at) => {
    const feedback = document.querySelector("[data-testid=answer-feedback]");
    const over = window.roomactorsLobby.state.race === null;
    const row = over ? document.querySelectorAll("[data-testid=my-answer]")[at] : null;
    return {
      feedback: over ? row?.dataset.result ?? "missing" : feedback.dataset.result,
      text: over ? null : feedback.textContent,
      focus: document.activeElement?.id ?? null,
      cardCount: document.querySelector("[data-testid=card-count]").textContent,
    };
  }, position);
}

async function resultsOf(page) {
  return page.evaluate(() => ({
    reason: document.querySelector("[data-testid=results-reason]").textContent,
    ranking: [...document.querySelectorAll("[data-testid=ranking-row]")].map((tr) => ({
      place: Number(tr.dataset.place),
      name: tr.cells[1].firstChild.textContent,
      badges: [...tr.cells[1].querySelectorAll(".badge")].map((b) => b.textContent),
      cells: [...tr.cells].map((td) => td.textContent.trim()),
    })),
    mine: document.querySelector("[data-testid=my-answers]").hidden ? null
      : [...document.querySelectorAll("[data-testid=my-answer]")].map((tr) => ({
        result: tr.dataset.result,
        given: tr.querySelector("[data-testid=given-text]")?.textContent ?? null,
        expected: tr.querySelector("[data-testid=expected]").textContent,
      })),
    focus: document.activeElement?.id ?? null,
  }));
}

function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(cell);
      cell = "";
    } else if (c === "\n") {
      row.push(cell.replace(/\r$/, ""));
      rows.push(row);
      row = [];
      cell = "";
    } else cell += c;
  }
  if (cell || row.length) rows.push([...row, cell]);
  return rows;
}

await runScenario(async (report, step) => {
  const browser = await launchBrowser();
  const people = [];
  try {
    step("open: the teacher and Alice on desktops, Bob on a phone");
    const teacher = await openPerson(browser, baseUrl, "teacher", { width: 1200, height: 820 });
    const alice = await openPerson(browser, baseUrl, "alice", { width: 1200, height: 820 });
    const bob = await openPerson(browser, baseUrl, "bob", { width: 390, height: 844 });
    people.push(teacher, alice, bob);
    const [tp, ap, bp] = [teacher.page, alice.page, bob.page];
    for (const p of people) report.pages[p.name] = {};

    step("sign in (Bob by keyboard)");
    await signIn(teacher, "Ms Rivera", "teacher", { keyboard: false });
    await signIn(alice, "Alice", "student", { keyboard: false });
    await signIn(bob, "Bob", "student", { keyboard: true });
    const ids = { alice: String(await userIdOf(ap)), bob: String(await userIdOf(bp)) };

    step("the teacher creates a room with three pasted cards");
    await tp.getByLabel("Room name").fill(ROOM);
    await tp.getByLabel("Deck name").fill("Mixed bag");
    await tp.getByLabel("Paste my own cards").check();
    await tp.getByLabel(/Cards, one per line/).fill(CARDS);
    await tp.getByRole("button", { name: "Create room" }).click();
    await waitVisible(byTest(tp, "room-view"), "teacher: room view");
    await waitVisible(byTest(tp, "race-setup"), "teacher: race options");

    step("Alice joins with the mouse; Bob tabs to the room's Join button and presses Enter");
    await ap.getByRole("button", { name: `Join room ${ROOM}` }).click();
    await waitVisible(byTest(ap, "room-view"), "alice: room view");
    await waitIn(bp, "bob: room listed", (name) =>
      [...document.querySelectorAll("[data-testid=room-name]")].some((n) => n.textContent === name), ROOM);
    await tabTo(bp, "bob: Join button", (label) => document.activeElement?.getAttribute("aria-label") === label,
      `Join room ${ROOM}`);
    await bp.keyboard.press("Enter");
    await waitVisible(byTest(bp, "room-view"), "bob: room view");
    await waitPlayers(tp, "teacher", ["Alice", "Bob"]);
    check(await byTest(ap, "race-setup").isHidden(), "alice: a student sees no race options");

    step("the teacher, by keyboard, sets a 3 s countdown and starts the race with Enter");
    await tabTo(tp, "teacher: countdown field", () => document.activeElement?.id === "opt-countdown");
    await tp.keyboard.press("Control+A");
    await tp.keyboard.type(COUNTDOWN_S);
    for (const p of people) await watchRace(p.page);
    await tp.keyboard.press("Enter"); // submits the options form

    step("everyone sees the same countdown, from the same start_at and clock");
    const countdown = {};
    for (const p of people) {
      await waitIn(p.page, `${p.name}: race panel`, () => !document.querySelector("[data-testid=race-panel]").hidden);
      countdown[p.name] = await raceView(p.page);
    }
    const starts = new Set(Object.values(countdown).map((v) => v.startAt));
    check(starts.size === 1, `one start_at for everyone: ${[...starts]}`);
    const skews = Object.values(countdown).map((v) => v.clockSkew);
    const spread = Math.max(...skews) - Math.min(...skews);
    report.countdown = {
      sameStartAt: starts.size === 1,
      shown: Object.fromEntries(await Promise.all(people.map(async (p) => {
        const seen = await raceSeen(p.page);
        return [p.name, seen.countdown !== null && Number(seen.countdown.number) >= 1];
      }))),
      synced: Object.values(countdown).every((v) => v.synced),
      clockSpreadUnder250ms: spread < 250,
    };
    report.pages.bob.focusDuringCountdown = (await raceSeen(bp)).countdown.focus;
    report.pages.alice.cardDuringCountdown = (await raceSeen(ap)).countdown.problem;
    await bp.screenshot({ path: join(artifacts, "countdown-phone.png") });

    step("the race starts on every page");
    for (const p of people) {
      await waitIn(p.page, `${p.name}: racing`, () =>
        document.querySelector("[data-testid=race-panel]").dataset.phase === "racing");
    }
    report.pages.alice.firstProblem = await textOf(byTest(ap, "problem"));
    report.pages.bob.liveUntilGo = (await raceSeen(bp)).live.slice(0, 2);

    step("Alice answers the first card; the teacher and Bob see her lane move");
    report.pages.alice.answers = [await answer(ap, "alice", "42", { keyboardOnly: false })];
    await waitLane(tp, "teacher", ids.alice, { answered: "1", correct: "1" });
    await waitLane(bp, "bob", ids.alice, { answered: "1", correct: "1" });
    report.pages.teacher.aliceLaneAfterOne = await laneOf(tp, "teacher", ids.alice);

    // Seats outlive a connection (race.md): a reload or a dropped network mid-race
    // brings the page back to where it was, through racestate. Only against a server
    // with a reconnect grace (SCENARIO_SEATS=1): roomserver and the Node stand-in.
    if (process.env.SCENARIO_SEATS === "1") {
    const backInTheRace = async (page, who) => {
      await waitIn(page, `${who}: connected again`, () =>
        document.querySelector("[data-testid=connection-state]").dataset.state === "connected");
      await waitVisible(byTest(page, "room-view"), `${who}: back in the room`);
      await waitIn(page, `${who}: racing again`, () =>
        document.querySelector("[data-testid=race-panel]")?.dataset.phase === "racing");
    };
    step("Alice reloads her page mid-race: 'Reconnecting…', then her next card");
    await ap.reload({ waitUntil: "load" });
    await backInTheRace(ap, "alice");
    // what the page showed since it loaded (reading the state once after the load
    // would race with the rejoin, which may already be answered)
    const aliceReload = { sawReconnecting: await ap.evaluate(() =>
      window.roomactorsLobby.state.connectionShown.includes("reconnecting") ? "reconnecting" : "no") };
    await waitIn(ap, "alice: her next card", () => window.roomactorsLobby.state.race?.next === 1);
    aliceReload.problem = await textOf(byTest(ap, "problem"));
    aliceReload.me = await ap.evaluate(() => window.roomactorsLobby.state.me.username);
    report.pages.alice.reload = aliceReload;
    await waitLane(tp, "teacher", ids.alice, { answered: "1", correct: "1" });

    step("the teacher reloads mid-race: the room, the race and the lanes are back");
    await tp.reload({ waitUntil: "load" });
    await backInTheRace(tp, "teacher");
    report.pages.teacher.reload = {
      roomTitle: await textOf(byTest(tp, "room-title")),
      aliceLane: await laneOf(tp, "teacher", ids.alice),
      answerFormShown: await byTest(tp, "answer-form").isVisible(),
    };

    step("Bob's phone loses the network for 5 s and carries on");
    await bob.context.setOffline(true);
    await bp.waitForTimeout(5000); // the outage itself: nothing to wait for but time
    await bob.context.setOffline(false);
    await backInTheRace(bp, "bob");
    report.pages.bob.afterOffline = { next: await bp.evaluate(() => window.roomactorsLobby.state.race?.next) };
    // A reload and an outage fail requests on purpose; what counts is what follows.
    for (const p of people) p.problems.length = 0;
    }

    step("Bob answers all three by keyboard; the focus stays in the answer field");
    report.pages.bob.answers = [];
    for (const text of ["42", " 0.75 ", "paris"]) {
      report.pages.bob.answers.push(await answer(bp, "bob", text, { keyboardOnly: true }));
      if (report.pages.bob.answers.length === 1) await bp.screenshot({ path: join(artifacts, "race-phone.png") });
    }
    await waitVisible(byTest(bp, "race-done"), "bob: done");
    report.pages.bob.focusWhenDone = await activeId(bp);
    await waitLane(tp, "teacher", ids.bob, { answered: "3", correct: "3", done: "true" });
    await waitLane(ap, "alice", ids.bob, { done: "true" });
    report.pages.alice.bobLane = await laneOf(ap, "alice", ids.bob);
    report.pages.teacher.answerFormShown = await byTest(tp, "answer-form").isVisible();
    await ap.screenshot({ path: join(artifacts, "race.png") });
    await tp.screenshot({ path: join(artifacts, "race-teacher.png") });

    step("Alice gets one wrong and one right (case does not matter); the race ends");
    report.pages.alice.answers.push(await answer(ap, "alice", "=1/3", { keyboardOnly: false }));
    report.pages.alice.answers.push(await answer(ap, "alice", "PARIS", { keyboardOnly: false }));

    step("everyone sees the results with the right places");
    for (const p of people) {
      await waitVisible(byTest(p.page, "results-panel"), `${p.name}: results`);
      report.pages[p.name].results = await resultsOf(p.page);
    }

    step("the teacher sees every student's answers and downloads them as CSV");
    await waitIn(tp, "teacher: answers table", () =>
      document.querySelectorAll("[data-testid=student-answers]").length === 2 &&
      !document.querySelector("[data-testid=download-csv]").disabled);
    report.pages.teacher.matrix = await tp.locator("[data-testid=student-answers]").evaluateAll((rows) =>
      rows.map((tr) => [...tr.cells].map((c) => c.textContent.trim())));
    const [download] = await Promise.all([
      tp.waitForEvent("download", { timeout: 15000 }),
      tp.getByRole("button", { name: "Download answers (CSV)" }).click(),
    ]);
    const csvPath = join(artifacts, "answers.csv");
    await download.saveAs(csvPath);
    const csvText = readFileSync(csvPath, "utf8");
    report.csv = {
      filename: download.suggestedFilename(),
      bom: csvText.startsWith("\ufeff"),
      rows: parseCsv(csvText.replace(/^\ufeff/, "")),
    };
    await tp.screenshot({ path: join(artifacts, "results.png"), fullPage: true });
    await ap.screenshot({ path: join(artifacts, "results-student.png"), fullPage: true });
    await bp.screenshot({ path: join(artifacts, "results-phone.png"), fullPage: true });

    step("the race locked the room; the teacher unlocks it, and Alice leaves");
    report.pages.teacher.lockedByRace = await tp.getByLabel("Lock the room").isChecked();
    await tabTo(tp, "teacher: lock checkbox", () => document.activeElement?.id === "lock-room");
    await tp.keyboard.press("Space");
    await waitIn(ap, "alice: room unlocked", () =>
      window.roomactorsLobby.state.rooms[0]?.locked === false);
    await ap.getByRole("button", { name: "Leave room" }).click();
    await waitVisible(byTest(ap, "lobby-view"), "alice: in the lobby");
    await waitPlayers(tp, "teacher", ["Bob"]);

    step("the teacher starts a rematch from the results: a 60 s limit, late join on");
    const firstRace = countdown.teacher.raceId;
    await tp.getByLabel("Time limit (seconds)").fill("60");
    await tp.getByLabel(/Late join/).check();
    await tp.getByRole("button", { name: "Rematch" }).click();
    for (const p of [teacher, bob]) {
      await waitIn(p.page, `${p.name}: a new race`, (old) => {
        const panel = document.querySelector("[data-testid=race-panel]");
        return !panel.hidden && panel.dataset.raceId !== old;
      }, firstRace);
    }
    report.rematch = { raceIds: [firstRace, (await raceView(tp)).raceId] };
    await waitIn(bp, "bob: racing again", () =>
      document.querySelector("[data-testid=race-panel]").dataset.phase === "racing");
    report.rematch.timer = await waitIn(bp, "bob: time left", () => {
      const phase = document.querySelector("[data-testid=race-phase]").textContent;
      const timer = document.querySelector("[data-testid=race-timer]").textContent;
      return phase === "Time left" && /^[01]:\d\d$/.test(timer) ? { phase, timerRole: document
        .querySelector("[data-testid=race-timer]").getAttribute("role"), underAMinute: timer <= "1:00" } : null;
    });
    report.rematch.roomLocked = await tp.getByLabel("Lock the room").isChecked();
    report.pages.bob.rematchAnswer = await answer(bp, "bob", "41", { keyboardOnly: true });
    await waitLane(tp, "teacher", ids.bob, { answered: "1", correct: "0" });

    step("Alice joins the running race late (racestate) and answers");
    await ap.getByRole("button", { name: `Join room ${ROOM}` }).click();
    await waitVisible(byTest(ap, "room-view"), "alice: back in the room");
    await waitIn(ap, "alice: in the race", () => {
      const panel = document.querySelector("[data-testid=race-panel]");
      return !panel.hidden && panel.dataset.phase === "racing" && !document.querySelector("[data-testid=answer-form]").hidden;
    });
    report.pages.alice.lateJoin = {
      card: await textOf(byTest(ap, "card-count")),
      problem: await textOf(byTest(ap, "problem")),
      focus: await activeId(ap),
      bobLane: await laneOf(ap, "alice", ids.bob),
    };
    report.pages.alice.lateAnswer = await answer(ap, "alice", "42", { keyboardOnly: false });
    await waitLane(tp, "teacher", ids.alice, { answered: "1", correct: "1" });
    await waitLane(bp, "bob", ids.alice, { answered: "1", correct: "1" });

    step("the teacher ends the rematch");
    await tp.getByRole("button", { name: "End race" }).click();
    for (const p of people) {
      await waitIn(p.page, `${p.name}: rematch results`, (old) => {
        const panel = document.querySelector("[data-testid=results-panel]");
        return !panel.hidden && panel.dataset.raceId !== old;
      }, firstRace);
    }
    report.rematch.results = await resultsOf(ap);

    step("the teacher removes Alice; she may not come back");
    await tp.getByRole("button", { name: "Remove Alice from the room" }).click();
    await waitVisible(byTest(ap, "lobby-view"), "alice: back in the lobby");
    await waitIn(ap, "alice: told", () => document.querySelector("[data-testid=notice]").dataset.reason === "kicked");
    report.pages.alice.kicked = await textOf(byTest(ap, "notice").locator(".notice-text"));
    await waitPlayers(tp, "teacher", ["Bob"]);
    await ap.getByRole("button", { name: `Join room ${ROOM}` }).click();
    const joinError = ap.locator("[data-testid=room-item] [data-testid=room-error]");
    await waitVisible(joinError, "alice: join refused");
    report.pages.alice.rejoin = { code: await joinError.getAttribute("data-code"), text: await textOf(joinError) };

    step("the teacher locks the room; the lobby shows it locked");
    await tp.getByLabel("Lock the room").check();
    await waitIn(ap, "alice: the room is locked", () =>
      document.querySelector("[data-testid=room-item]")?.dataset.locked === "true");
    const joinButton = ap.locator("[data-testid=room-item] [data-testid=join-room]");
    report.pages.alice.lockedRoom = {
      button: await textOf(joinButton),
      disabled: await joinButton.isDisabled(),
      meta: await textOf(ap.locator("[data-testid=room-meta]")),
    };

    step("the teacher closes the room");
    await tp.getByRole("button", { name: "Close room" }).click();
    await waitVisible(byTest(bp, "lobby-view"), "bob: back in the lobby");
    for (const p of people) report.pages[p.name].problems = p.problems;
  } finally {
    for (const p of people) await p.context.close().catch(() => {});
    await browser.close();
  }
});
