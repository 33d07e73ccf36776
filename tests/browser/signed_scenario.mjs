// Signed identity on the lobby page: a school's site opens the page with
// `#credential=...` (a JWT it signed). The page signs in with it by itself, takes it
// out of the address bar, shows no name field and no role picker, and a reload keeps
// the teacher's room. A student's credential that expired is refused in words.
//
// Usage: node signed_scenario.mjs <base-url> <artifacts-dir>
// Env: SCENARIO_CREDENTIALS: JSON {teacher, student, expired} (made by the pytest side).
// Prints one JSON line on stdout with what the pages showed.

import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { byTest, launchBrowser, openPerson, runScenario, textOf, waitIn, waitPlayers, waitVisible } from "./pages.mjs";

const [baseUrl, artifacts] = process.argv.slice(2);
if (!baseUrl || !artifacts) {
  console.error("usage: node signed_scenario.mjs <base-url> <artifacts-dir>");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const credentials = JSON.parse(process.env.SCENARIO_CREDENTIALS || "{}");

const signedView = (page) => page.evaluate(() => ({
  hash: window.location.hash,
  namesFieldHidden: document.querySelector("[data-testid=name-field]").hidden,
  rolePickerHidden: document.querySelector("[data-testid=role-picker]").hidden,
  me: window.roomactorsLobby.state.me,
}));

await runScenario(async (report, step) => {
  const browser = await launchBrowser();
  const contexts = [];
  try {
    step("the teacher arrives from the school's site with a credential");
    const teacher = await openPerson(browser, `${baseUrl}/#credential=${credentials.teacher}`, "teacher",
      { width: 1200, height: 820 });
    contexts.push(teacher.context);
    const tp = teacher.page;
    await waitVisible(byTest(tp, "lobby-view"), "teacher: signed in by the credential");
    report.pages.teacher = { signed: await signedView(tp), whoami: await textOf(byTest(tp, "whoami")) };

    step("the teacher creates a room");
    await tp.getByLabel("Room name").fill("Signed room");
    await tp.getByLabel("Deck name").fill("Tables");
    await tp.getByRole("button", { name: "Create room" }).click();
    await waitVisible(byTest(tp, "room-view"), "teacher: in the room");

    step("a student arrives with an expired credential: refused, in words");
    const late = await openPerson(browser, `${baseUrl}/#credential=${credentials.expired}`, "late",
      { width: 390, height: 844 });
    contexts.push(late.context);
    await waitIn(late.page, "late: refused", () => !document.querySelector("[data-testid=signin-error]").hidden);
    report.pages.late = {
      error: await textOf(byTest(late.page, "signin-error")),
      code: await late.page.evaluate(() => document.querySelector("[data-testid=signin-error]").dataset.code),
      view: await late.page.evaluate(() => document.body.dataset.view),
    };

    step("a student arrives with a good credential and joins");
    const student = await openPerson(browser, `${baseUrl}/#credential=${credentials.student}`, "student",
      { width: 390, height: 844 });
    contexts.push(student.context);
    const sp = student.page;
    await waitVisible(byTest(sp, "lobby-view"), "student: signed in by the credential");
    report.pages.student = { signed: await signedView(sp) };
    await sp.getByRole("button", { name: "Join room Signed room" }).click();
    await waitVisible(byTest(sp, "room-view"), "student: in the room");
    await waitPlayers(tp, "teacher", ["Sam"]);

    step("the teacher reloads: the credential is kept for the tab, and so is the room");
    await tp.reload({ waitUntil: "load" });
    await waitIn(tp, "teacher: connected again", () =>
      document.querySelector("[data-testid=connection-state]").dataset.state === "connected");
    await waitVisible(byTest(tp, "room-view"), "teacher: back in the room");
    await waitPlayers(tp, "teacher", ["Sam"]);
    report.pages.teacher.afterReload = {
      view: await tp.evaluate(() => document.body.dataset.view),
      room: await textOf(byTest(tp, "room-title")),
      hash: await tp.evaluate(() => window.location.hash),
    };
    await tp.screenshot({ path: join(artifacts, "signed-room.png") });
    report.problems = [...teacher.problems, ...student.problems];
  } finally {
    for (const context of contexts) await context.close().catch(() => {});
    await browser.close();
  }
});
