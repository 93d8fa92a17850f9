// End-to-end: from a node into its Python code. Stopped at `scan` in the demo patrol, the
// editor's Step Into Target offers `Scan.update()`; choosing it opens robot.py at the method's
// first line in a Python session (debugpy, relayed by the Canopy adapter: no Python extension),
// with update()'s locals in Variables; F10 steps a line, and Continue returns to the tree
// session, stopped at scan's status change. Each failure leaves a screenshot in e2e/artifacts/.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { eventually, extensionRoot, repositoryRoot, runCommand, startWorkbench, viewRows } from "./workbench.mjs";

const artifacts = path.join(extensionRoot, "e2e", "artifacts");
const vsix = path.join(extensionRoot, "canopy.vsix");
const canopy = process.env.CANOPY_COMMAND ?? path.join(repositoryRoot, ".venv", "bin", "canopy");
const robot = fs.readFileSync(path.join(repositoryRoot, "examples", "patrol", "robot.py"), "utf8").split("\n");
/** The first line of Scan.update()'s body (1-based): where the step into stops. */
const UPDATE_LINE = robot.findIndex((line) => line.includes("exposure_ms = 100 //")) + 1;

let workbench;
let page;

const rows = (view) => viewRows(page, view);

/** The Call Stack once one of its rows starts with `text` (a string or a pattern); the rows. */
function callStackWith(text, withinMs = 20_000) {
  const matches = (row) => (typeof text === "string" ? row.startsWith(text) : text.test(row));
  return eventually(
    `a Call Stack row starting with ${text}`,
    async () => {
      const frames = await rows("Call Stack");
      return frames.some(matches) ? frames : undefined;
    },
    withinMs,
  );
}

/** A Call Stack row of Python's frame in update() ("update robot.py 68:1"). */
const IN_UPDATE = /^(Scan\.)?update\s*robot\.py/;

/** The line of the cursor, from the status bar ("Ln 68, Col 9"). */
async function cursorLine() {
  const text = await page.locator(".statusbar-item", { hasText: /^Ln \d+/ }).first().textContent();
  return Number(/^Ln (\d+)/.exec(text.trim())?.[1]);
}

describe("From a node into its Python code", function () {
  this.timeout(120_000);

  before(async function () {
    this.timeout(240_000);
    fs.mkdirSync(artifacts, { recursive: true });
    assert.ok(UPDATE_LINE > 0, "robot.py has Scan.update()'s division");
    workbench = await startWorkbench({
      workspace: path.join(repositoryRoot, "examples"),
      vsix,
      settings: { "canopy.path": canopy, "chat.disableAIFeatures": true, "workbench.secondarySideBar.defaultVisibility": "hidden" },
      env: { CANOPY_POD_SPARE_WORKER: "0" },
    });
    page = workbench.page;
  });

  afterEach(async function () {
    if (this.currentTest?.state === "failed" && page !== undefined) {
      const name = this.currentTest.title.replace(/[^a-z0-9]+/gi, "-").toLowerCase();
      await page.screenshot({ path: path.join(artifacts, `python-${name}.png`) }).catch(() => undefined);
      fs.copyFileSync(workbench.log, path.join(artifacts, "python-code-server.log"));
    }
  });

  after(async () => {
    await workbench?.stop();
  });

  it("stops at scan, with a breakpoint on its line", async () => {
    await eventually("the Explorer to list patrol/", async () => (await rows("Explorer")).some((r) => r === "patrol"));
    await page.keyboard.press("Control+p");
    await page.locator(".quick-input-widget input").fill("patrol.yaml");
    await page.locator(".quick-input-list .monaco-list-row", { hasText: "patrol.yaml" }).first().click();
    await page.locator(".margin-view-overlays .line-numbers", { hasText: /^29$/ }).waitFor();
    await page.locator(".monaco-editor .view-lines").first().click();
    await page.keyboard.press("Control+g");
    await page.keyboard.type("29");
    await page.keyboard.press("Enter");
    await page.keyboard.press("F9"); // a breakpoint on scan's line
    await page.locator(".codicon-debug-breakpoint").first().waitFor();
    await page.keyboard.press("F5");
    await callStackWith("patrol [Repeat]"); // stopOnEntry
    // Manual mode: every continue runs a tick (tick 1 moves; tick 2 reaches scan).
    // Each press waits a moment for the stop it causes (a busy machine takes seconds).
    for (let i = 0; i < 5 && !(await rows("Call Stack")).some((r) => r.startsWith("scan")); i++) {
      await page.keyboard.press("F5");
      await callStackWith("scan [Scan]", 4000).catch(() => undefined);
    }
    await callStackWith("scan [Scan]");
    await page.locator(".statusbar-item", { hasText: "Ln 29" }).waitFor();
  });

  it("Step Into Target opens robot.py at Scan.update() with its locals", async () => {
    await page.locator(".monaco-editor .view-lines").first().click();
    await runCommand(page, "Debug: Step Into Target");
    // The targets are offered in a quick pick, the tree's own step into first.
    const target = page.locator(".quick-input-list .monaco-list-row", { hasText: "into Scan.update() (robot.py)" });
    await target.waitFor();
    const offered = await page.locator(".quick-input-list .monaco-list-row .label-name").allTextContents();
    assert.deepEqual(offered.map((label) => label.trim()), ["next status change", "into Scan.update() (robot.py)"]);
    await target.click();
    // A Python session under the tree session, stopped in update().
    await callStackWith(IN_UPDATE);
    await page.locator(".tab.active", { hasText: "robot.py" }).waitFor();
    await eventually(`the cursor at robot.py:${UPDATE_LINE}`, async () => (await cursorLine()) === UPDATE_LINE);
    const variables = await eventually("self in Variables", async () => {
      const all = await rows("Variables");
      return all.some((r) => r.startsWith("self")) ? all : undefined;
    });
    assert.ok(variables.some((r) => r.startsWith("self")), variables.join(" | "));
  });

  it("F10 steps a line of the Python code", async () => {
    await page.keyboard.press("F10");
    await eventually(`the cursor at robot.py:${UPDATE_LINE + 1}`, async () => (await cursorLine()) === UPDATE_LINE + 1);
  });

  it("Continue returns to the tree session, stopped at scan's status change", async () => {
    await page.keyboard.press("F5");
    const frames = await callStackWith("scan [Scan] SUCCESS");
    assert.ok(!frames.some((row) => IN_UPDATE.test(row)), frames.join(" | "));
  });
});
