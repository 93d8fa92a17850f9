// End-to-end: the packaged extension in a real VS Code (code-server), driven through chromium
// like a user would: the demo workspace, a gutter breakpoint in the tree file, F5, the Call
// Stack and Variables, stepping (over, into, back), editing the blackboard, the locals of the
// raising line, the live tree view, the comparison of two executions, every
// configuration of the workspace's launch.json to its first stop or its end (the Groot2 one in a
// local pod, to its failure), a workflow's agents as lanes over time, and the debug-mode
// status-bar item. Each failure leaves a screenshot in e2e/artifacts/.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  comparisonFrame,
  eventually,
  extensionRoot,
  has,
  liveTreeFrame,
  repositoryRoot,
  runCommand,
  startWorkbench,
  viewRows,
} from "./workbench.mjs";

const artifacts = path.join(extensionRoot, "e2e", "artifacts");
const vsix = path.join(extensionRoot, "canopy.vsix");
const canopy = process.env.CANOPY_COMMAND ?? path.join(repositoryRoot, ".venv", "bin", "canopy");

let workbench;
let page;

/** Text of every row of a view's list (Explorer, Call Stack, Variables, Breakpoints). */
const rows = (view) => viewRows(page, view);

/** The Call Stack's frames once the session is stopped with `first` as its top frame. */
async function stoppedAt(first) {
  return eventually(`the Call Stack to show ${first} on top`, async () => {
    const frames = await rows("Call Stack");
    return frames.length > 0 && frames[0].startsWith(first) ? frames : undefined;
  });
}

/** Whether the session is stopped on the exception `name`: the state label in the Call Stack's
 * header is the stop's description ("builtins.ZeroDivisionError: ..."), or its widget shows. */
async function stoppedOn(name) {
  const label = await page.evaluate(() =>
    [...document.querySelectorAll(".pane-header")].map((header) => header.textContent).find((text) => text.includes("Call Stack")) ?? "",
  );
  return label.includes(name) || (await page.locator(".exception-widget", { hasText: name }).count()) > 0;
}

/** Continue (a tick at a time, in manual mode) until the session stops on the exception
 * `name`. Each press waits a moment for the stop it causes, and none is made at that stop:
 * continuing past it would end the execution. */
async function continueToException(name, limit) {
  for (let i = 0; i < limit; i++) {
    if (await stoppedOn(name)) return;
    await page.keyboard.press("F5");
    await eventually("the next stop", async () => ((await stoppedOn(name)) ? true : undefined), 1500).catch(
      () => undefined,
    );
  }
}

/** Expand a scope or variable of the Variables view by its label. */
async function expand(label) {
  const row = page.locator(".debug-variables .monaco-list-row", { hasText: label }).first();
  await row.waitFor();
  if ((await row.getAttribute("aria-expanded")) === "false") {
    await row.click();
  }
}

/** Edit a blackboard value in place in the Variables view, as a user does (double-click). */
async function editBlackboard(name, value) {
  await expand("Blackboard");
  const row = page.locator(".debug-variables .monaco-list-row", { hasText: new RegExp(`^\\s*${name}\\s*=`) }).first();
  await row.waitFor();
  await row.locator(".value").dblclick();
  const input = row.locator("input");
  await input.waitFor();
  await input.fill(value);
  await input.press("Enter");
  await eventually(`${name} = ${value} in Variables`, async () => has(await rows("Variables"), `${name} = ${value}`));
}

/** End the debug session, if one runs, and wait for its toolbar to go. */
async function endSession() {
  if (await page.locator(".debug-toolbar").isVisible()) {
    await runCommand(page, "Debug: Stop");
  }
  await page.locator(".debug-toolbar").waitFor({ state: "hidden" });
}

/** What each configuration of the demo workspace's launch.json does, from F5 to its first stop
 * or its end. A configuration added there without an outcome here fails the suite: an example
 * cannot rot unseen. */
const EXPECTED_OUTCOMES = {
  "Debug the patrol (YAML)": async () => {
    const frames = await stoppedAt("patrol [Repeat]"); // stopOnEntry, on the root
    assert.equal(frames.length, 1, frames.join(" | "));
    await page.locator(".tab.active", { hasText: "patrol.yaml" }).waitFor();
  },
  "Debug the patrol in a local pod (Groot2 XML)": async () => {
    // The adapter starts a server and a pod; the project's canopy.toml gives the tree the
    // same initial values as patrol.yaml, so it runs the rounds down to the same bug.
    await eventually("the stop on ZeroDivisionError", async () => await stoppedOn("ZeroDivisionError"), 90_000);
    const frames = await stoppedAt("Scan.update");
    // On top, the raising line of the user's own code (the row reads its name, file and line),
    // then the node frames.
    assert.match(frames[0], /^Scan\.update\s*robot\.py\s*68:\d+/);
    assert.deepEqual(frames.slice(1).map((f) => f.split(" ")[0]), ["scan", "round", "patrol"]);
    // The editor opens robot.py at the line that divides by zero, the exception's widget on it.
    await page.locator(".tab.active", { hasText: "robot.py" }).waitFor();
    await page.locator(".statusbar-item", { hasText: "Ln 68" }).waitFor(); // exposure_ms = 100 // ...
    await page.locator(".exception-widget", { hasText: "ZeroDivisionError" }).waitFor();
    // The live tree, opened at the stop, says what was told when it raised.
    await runCommand(page, "Canopy: Show the Live Tree");
    const view = await liveTreeFrame(page);
    await eventually("the live tree telling the exception", async () =>
      (await view.locator("#notice").textContent())?.endsWith(
        ": ZeroDivisionError in scan (tick 8): integer division or modulo by zero",
      ),
    );
    await page.locator(".debug-toolbar .codicon-debug-continue").click();
    await page.locator(".debug-toolbar").waitFor({ state: "hidden" });
    await page.getByRole("tab", { name: /Debug Console/ }).first().click();
    const transcript = await eventually("the end in the Debug Console", async () => {
      const text = await page.evaluate(() =>
        [...document.querySelectorAll(".repl .monaco-list-row")].map((row) => row.textContent).join("\n"),
      );
      return text.includes("ended: failed: ZeroDivisionError in scan") ? text : undefined;
    });
    // Told as it happened, with no exception filter needed: the exception, the node and its
    // line in the tree file, the raising line of the user's code.
    assert.match(transcript, /ZeroDivisionError in scan \(tick 8\): integer division or modulo by zero/);
    assert.match(transcript, /node patrol\/round\/scan at \S*patrol\.xml:10/);
    assert.match(transcript, /raised in update at \S*robot\.py:68: exposure_ms = /);
    assert.doesNotMatch(transcript, /KeyError/);
    await eventually("the live tree saying how it ended", async () =>
      (await view.locator("#notice").textContent())?.includes("has ended: failed: ZeroDivisionError in scan."),
    );
  },
  "Debug the triage workflow": async () => {
    const frames = await stoppedAt("triage [Sequence]"); // stopOnEntry, on the root
    assert.equal(frames.length, 1, frames.join(" | "));
    await page.locator(".tab.active", { hasText: "triage.yaml" }).waitFor();
  },
};

describe("Canopy in VS Code", function () {
  this.timeout(120_000);

  before(async function () {
    this.timeout(240_000);
    fs.mkdirSync(artifacts, { recursive: true });
    workbench = await startWorkbench({
      workspace: path.join(repositoryRoot, "examples"),
      vsix,
      settings: {
        "canopy.path": canopy,
        "chat.disableAIFeatures": true,
        "workbench.secondarySideBar.defaultVisibility": "hidden",
        // The comparison report is an untitled editor: starting a session must not ask to save it.
        "debug.saveBeforeStart": "none",
      },
      env: { CANOPY_POD_SPARE_WORKER: "0" },
    });
    page = workbench.page;
  });

  afterEach(async function () {
    if (this.currentTest?.state === "failed" && page !== undefined) {
      const name = this.currentTest.title.replace(/[^a-z0-9]+/gi, "-").toLowerCase();
      await page.screenshot({ path: path.join(artifacts, `${name}.png`) }).catch(() => undefined);
      fs.copyFileSync(workbench.log, path.join(artifacts, "code-server.log"));
    }
  });

  after(async () => {
    await workbench?.stop();
  });

  it("opens the demo workspace with Canopy's debug mode off", async () => {
    await eventually("the Explorer to list patrol/", async () => (await rows("Explorer")).some((r) => r === "patrol"));
    await page.locator(".statusbar-item", { hasText: "Canopy: off" }).waitFor();
  });

  it("sets a breakpoint in the gutter of the tree file", async () => {
    await page.keyboard.press("Control+p");
    await page.locator(".quick-input-widget input").fill("patrol.yaml");
    await page.locator(".quick-input-list .monaco-list-row", { hasText: "patrol.yaml" }).first().click();
    await page.locator(".margin-view-overlays .line-numbers", { hasText: /^29$/ }).waitFor();
    const where = await page.evaluate(() => {
      const line = [...document.querySelectorAll(".margin-view-overlays .line-numbers")].find((e) => e.textContent.trim() === "29");
      const margin = document.querySelector(".margin-view-overlays").getBoundingClientRect();
      const box = line.getBoundingClientRect();
      return { x: margin.left + 8, y: box.top + box.height / 2 };
    });
    await page.mouse.click(where.x, where.y);
    await page.locator(".codicon-debug-breakpoint").first().waitFor();
  });

  it("F5 stops at that node: the node path in the Call Stack, the blackboard in Variables", async () => {
    await page.locator(".monaco-editor .view-lines").first().click();
    await page.keyboard.press("F5");
    await stoppedAt("patrol [Repeat]"); // stopOnEntry
    const breakpoints = await rows("Breakpoints");
    assert.ok(breakpoints.some((r) => /^patrol\.yaml.*29$/.test(r)), breakpoints.join(" | "));
    // Manual mode: every continue runs a tick (tick 1 moves; tick 2 reaches scan).
    for (let i = 0; i < 3 && !(await rows("Call Stack"))[0]?.startsWith("scan"); i++) {
      await page.keyboard.press("F5");
      await page.waitForTimeout(600);
    }
    const frames = await stoppedAt("scan [Scan]");
    assert.deepEqual(frames.map((f) => f.split(" ")[0]), ["scan", "round", "patrol"]);
    await page.locator(".debug-top-stack-frame-line").first().waitFor();
    await page.locator(".statusbar-item", { hasText: "Ln 29" }).waitFor();
    await expand("Blackboard");
    const variables = await eventually("battery in Variables", async () => {
      const all = await rows("Variables");
      return all.some((r) => r.startsWith("battery")) ? all : undefined;
    });
    assert.ok(has(variables, "battery = 35"), variables.join(" | "));
    assert.ok(has(variables, "waypoint = 1"), variables.join(" | "));
  });

  it("steps over and into", async () => {
    await page.keyboard.press("F10"); // next: the rest of the tick
    let frames = await stoppedAt("patrol [Repeat] RUNNING");
    assert.equal(frames.length, 1);
    await page.keyboard.press("F11"); // step in: the next node status change, in tick 3
    frames = await stoppedAt("check_battery [CheckBattery]");
    assert.deepEqual(frames.map((f) => f.split(" ")[0]), ["check_battery", "round", "patrol"]);
  });

  it("steps back through the recorded history", async () => {
    await page.locator(".debug-toolbar .codicon-debug-step-back").click();
    const frames = await stoppedAt("patrol [Repeat] RUNNING");
    assert.equal(frames.length, 1);
    await eventually("the Node scope of patrol", async () => has(await rows("Variables"), "id = 'patrol'"));
    await expand("Tick");
    const variables = await eventually("the Tick scope", async () => {
      const all = await rows("Variables");
      return all.some((r) => r.startsWith("past")) ? all : undefined;
    });
    assert.ok(has(variables, "tick = 2") && has(variables, "past = True"), variables.join(" | "));
  });

  it("edits a blackboard value in Variables and continues into the bug", async () => {
    await page.keyboard.press("F5"); // back to the live tree
    await eventually("the live tree (past = False)", async () => has(await rows("Variables"), "past = False"));
    await editBlackboard("battery", "15");
    // Move costs 10: scan then divides by 5 // 10 == 0.
    await continueToException("ZeroDivisionError", 6);
    await page.locator(".exception-widget", { hasText: "ZeroDivisionError" }).waitFor();
    // The top frame is the raising line of robot.py, above the node frames.
    const frames = await stoppedAt("Scan.update");
    assert.ok(frames[1]?.startsWith("scan [Scan]"), frames.join(" | "));
    // Its Variables start with the Locals scope: update()'s own variables when it raised.
    await expand("Locals");
    const variables = await eventually("the locals of Scan.update", async () => {
      const all = await rows("Variables");
      return all.some((r) => r.replace(/\s+/g, "").startsWith("self=")) ? all : undefined;
    });
    assert.equal(variables[0], "Locals", variables.join(" | "));
    assert.match(variables[1], /^self\s*=/, variables.join(" | ")); // the first local, under Locals
  });

  it("shows the live tree: statuses, the current node, breakpoints on click, the timeline", async () => {
    await runCommand(page, "Canopy: Show the Live Tree");
    const view = await liveTreeFrame(page);
    const classOf = (id) => view.locator(`g[data-id="${id}"]`).getAttribute("class");
    await eventually("scan drawn as the current node", async () => (await classOf("patrol/round/scan"))?.includes("current"));
    assert.match(await classOf("patrol/round/check_battery"), /status-SUCCESS/);
    assert.match(await classOf("patrol/round/move"), /status-SUCCESS/);
    assert.match(await classOf("patrol/round"), /status-RUNNING/);
    assert.equal(await view.locator("g[data-id]").count(), 5);

    await view.locator('g[data-id="patrol/round/move"]').click();
    await eventually("a breakpoint on move in the Breakpoints view", async () =>
      (await rows("Breakpoints")).some((r) => r.includes("patrol/round/move")),
    );
    await eventually("move drawn with a breakpoint", async () => (await classOf("patrol/round/move"))?.includes("breakpoint"));

    const last = Number(await view.locator("#timeline").getAttribute("max"));
    assert.ok(last >= 4, `the timeline reaches tick ${last}`);
    await view.locator("#timeline").fill("1");
    await eventually("tick 1 on the timeline", async () => (await view.locator("#tick").textContent()) === `tick 1 of ${last}`);
    // At the end of tick 1 the robot was still driving, and had never scanned.
    await eventually("tick 1's statuses", async () => /status-RUNNING/.test(await classOf("patrol/round/move")));
    assert.match(await classOf("patrol/round/scan"), /status-(INVALID|NONE)/);
    await view.locator("#live").click();
    await eventually("back to the running tree", async () => (await classOf("patrol/round/scan"))?.includes("current"));
  });

  it("shows the execution timeline", async () => {
    await runCommand(page, "Canopy: Show the Execution Timeline");
    const view = await liveTreeFrame(page);
    const summary = await eventually("the timeline summary", async () => {
      const text = await view.locator("#summary").textContent();
      return text !== "" ? text : undefined;
    });
    const parts = summary.match(
      /^\d+ ticks · \d+\.\d ms mean, (\d+\.\d) ms max · (\d+\.\d) ms paused · (RUNNING|SUCCESS|FAILURE) \d+/,
    );
    assert.ok(parts, `the timeline summary reads ${summary}`);
    // The session stopped at breakpoints: that time is told apart, not counted as the ticks' work.
    assert.ok(Number(parts[1]) < Number(parts[2]), summary);
  });

  it("compares two executions", async () => {
    await page.keyboard.press("Shift+F5");
    await page.locator(".debug-toolbar").waitFor({ state: "hidden" });
    await runCommand(page, "Remove All Breakpoints");
    await page.locator(".monaco-editor .view-lines").first().click();
    await page.keyboard.press("F5");
    await stoppedAt("patrol [Repeat]"); // on entry, tick 0
    await editBlackboard("battery", "40"); // the first run started with 45
    for (let tick = 1; tick <= 3; tick++) {
      await page.keyboard.press("F5"); // manual mode: one tick
      await expand("Tick");
      await eventually(`tick ${tick}`, async () => has(await rows("Variables"), `tick = ${tick}`));
    }
    await runCommand(page, "Canopy: Compare Two Executions");
    // The earlier run, remembered under its session's name.
    await page.locator(".quick-input-list .monaco-list-row", { hasText: "Debug the patrol (YAML)" }).first().click();
    // The comparison view: both runs, where they part, the first difference marked.
    let view = await comparisonFrame(page);
    const text = async (selector) => (await view.locator(selector).first().textContent()).replace(/\s+/g, " ").trim();
    assert.match(await text("#divergence"), /They diverge at tick 1\. The same through tick 0\./);
    // This run's tick 1 began with the edited battery, the earlier one's with no such write.
    assert.match(await text("#first-change"), /First difference: A wrote \/battery = 40; B recorded nothing there\./);
    const battery = view.locator('#blackboard tr[data-key="/battery"]');
    assert.match(await battery.getAttribute("class"), /\bfirst\b/);
    assert.equal(await battery.locator("td").nth(1).textContent(), "40");
    assert.equal(await battery.locator("td").nth(2).textContent(), "45");
    assert.equal(await view.locator("tr.first").count(), 1);
    assert.equal(await view.locator("#summary tr", { hasText: "ticks" }).locator("td").first().textContent(), "3");

    // The session still runs: the jump opens its live tree at tick 1.
    await view.locator("#jump").click();
    const tree = await liveTreeFrame(page);
    await eventually("the live tree at tick 1", async () => /^tick 1 of \d+$/.test(await tree.locator("#tick").textContent()));
    assert.match(await tree.locator('g[data-id="patrol/round/move"]').getAttribute("class"), /status-RUNNING/);

    // The Markdown report, for tickets, from the comparison view.
    await page.locator(".tab", { hasText: " vs " }).first().click();
    view = await comparisonFrame(page);
    await view.locator("#markdown").click();
    // It opens in a Markdown editor (editors render spaces as no-break spaces).
    const report = await eventually("the comparison report", () =>
      page.evaluate(() =>
        [...document.querySelectorAll(".monaco-editor .view-lines")]
          .map((lines) => lines.textContent.replace(/\u00a0/g, " "))
          .find((text) => text.includes("They diverge at")),
      ),
    );
    assert.match(report, /They diverge at tick 1\.\*\* The same through tick 0\./);
    assert.match(report, /\| `\/battery` \| `40` \| `45` \|/);

    // With no session left, the jump shows both states at that tick in the view itself.
    await page.locator(".monaco-editor .view-lines").first().click();
    await page.keyboard.press("Shift+F5");
    await page.locator(".debug-toolbar").waitFor({ state: "hidden" });
    await page.locator(".tab", { hasText: " vs " }).first().click();
    view = await comparisonFrame(page);
    await view.locator("#jump").click();
    view = await comparisonFrame(page, "#comparison #state");
    assert.match(await text("#state h2"), /The state at the end of tick 1/);
    assert.match(await text("#notice"), /No session on either execution runs any more/);
    const before = view.locator('#state-blackboard tr[data-key="/battery"]');
    assert.match(await before.getAttribute("class"), /\bdiffers first\b/);
    assert.equal(await before.locator("td").nth(1).textContent(), "40");
    const same = view.locator('#state-nodes tr[data-node="patrol/round/move"]');
    assert.doesNotMatch((await same.getAttribute("class")) ?? "", /differs/);
  });

  it("runs every configuration of the demo workspace's launch.json to its first stop or its end", async function () {
    this.timeout(240_000); // a server and a debug pod of its own for the Groot2 configuration
    // The configurations as shipped (a later scenario adds one of its own to the copy).
    const shipped = JSON.parse(fs.readFileSync(path.join(repositoryRoot, "examples", ".vscode", "launch.json"), "utf8"));
    await endSession();
    await runCommand(page, "Remove All Breakpoints");
    for (const { name } of shipped.configurations) {
      const outcome = EXPECTED_OUTCOMES[name];
      assert.ok(outcome, `say what the configuration "${name}" must do in EXPECTED_OUTCOMES`);
      await runCommand(page, "Debug: Select and Start Debugging");
      await page.locator(".quick-input-list .monaco-list-row", { hasText: name }).first().click();
      await outcome();
      await endSession();
    }
  });

  it("draws the workflow's agents as lanes over time: the fan-out side by side, each call's outcome", async () => {
    // A workflow of the suite's own (e2e/agents/), copied into the workspace with a launch
    // configuration: three model calls side by side, then one that fails.
    fs.cpSync(path.join(extensionRoot, "e2e", "agents"), path.join(workbench.workspace, "agents"), { recursive: true });
    const launchFile = path.join(workbench.workspace, ".vscode", "launch.json");
    const launch = JSON.parse(fs.readFileSync(launchFile, "utf8"));
    const name = "Run the agents' workflow";
    launch.configurations.push({
      type: "canopy",
      request: "launch",
      name,
      program: "${workspaceFolder}/agents/lanes.yaml",
      mode: "interval",
      intervalMs: 50,
      stopOnEntry: true,
    });
    fs.writeFileSync(launchFile, JSON.stringify(launch, null, 2));
    await eventually("the new launch configuration", async () => {
      await runCommand(page, "Debug: Select and Start Debugging");
      const row = page.locator(".quick-input-list .monaco-list-row", { hasText: name }).first();
      if (await row.isVisible().catch(() => false)) {
        await row.click();
        return true;
      }
      await page.keyboard.press("Escape"); // the file is read a moment after it changes
      return false;
    });
    await stoppedAt("lanes [Sequence]");

    await runCommand(page, "Canopy: Show the Agents' Timeline");
    const view = await liveTreeFrame(page);
    const lanes = () => view.locator("#lanes g.lane").evaluateAll((all) => all.map((lane) => lane.getAttribute("data-lane")));
    await eventually("the agents' lanes", async () => (await lanes()).length === 4);
    // Tree order: the Parallel's agents adjacent, under one bracket, then the reply.
    assert.deepEqual(await lanes(), ["lanes/research/search", "lanes/research/summarize", "lanes/research/classify", "lanes/reply"]);
    assert.equal(await view.locator('#lanes g.group[data-parallel="lanes/research"]').count(), 1);
    await eventually("the Agents tab", () => view.locator("#agents").isVisible());
    assert.ok(!(await view.locator("#canvas").isVisible()));

    /** Each agent's calls' outcomes, by its last name. */
    const outcomes = () =>
      view.locator("#lanes rect[data-call]").evaluateAll((bars) => {
        const found = {};
        for (const bar of bars) (found[bar.getAttribute("data-node").split("/").pop()] ??= []).push(bar.getAttribute("data-outcome"));
        return found;
      });
    // A breakpoint on the reply (a click on its node, on the Tree tab) holds the run after the
    // fan-out.
    await view.locator("#tab-tree").click();
    await view.locator('g[data-id="lanes/reply"]').click();
    await eventually("a breakpoint on reply", async () => (await rows("Breakpoints")).some((r) => r.includes("lanes/reply")));
    await view.locator("#tab-agents").click();
    await page.locator(".debug-toolbar .codicon-debug-continue").click();
    // classify (0.6 s) and search (1.2 s) answer while summarize (4 s) still runs: the estimate
    // goes by their latencies.
    const midway = await eventually("two answers while summarize runs", async () => {
      const now = await outcomes();
      return now.classify?.[0] === "succeeded" && now.search?.[0] === "succeeded" && now.summarize?.[0] === "running" ? now : undefined;
    });
    assert.equal(midway.reply, undefined);
    const estimated = /^2 of 4 agents done · 1 running · median \d+ ms · done in ~\d+(\.\d+ s| ms) \(estimated\)$/;
    await eventually("the summary with the estimate", async () => estimated.test(await view.locator("#agents-summary").textContent()));
    await stoppedAt("reply");
    await eventually("summarize answered too", async () => (await outcomes()).summarize?.[0] === "succeeded");
    assert.deepEqual(await outcomes(), { search: ["succeeded"], summarize: ["succeeded"], classify: ["succeeded"] });
    const tip = (node) => view.locator(`#lanes rect[data-node="${node}"] title`).first().textContent();
    assert.match(await tip("lanes/research/classify"), /^classify — succeeded · claude-haiku-4-5 · \d+ ms · 40 in \/ 2 out tokens/);

    // The cursor in the middle of summarize's call: only it was in flight; the tree travels to
    // that moment's tick.
    const bar = await view.locator('#lanes rect[data-node="lanes/research/summarize"]').boundingBox();
    const svg = await view.locator("#lanes svg").boundingBox();
    await view.locator("#lanes svg").click({ position: { x: bar.x - svg.x + bar.width / 2, y: 4 } });
    await eventually("the calls in flight at the cursor", async () =>
      /^at \d+\.\d+ s · tick \d+ · in flight: summarize$/.test(await view.locator("#agents-at").textContent()),
    );
    const travelled = Number((await view.locator("#agents-at").textContent()).match(/tick (\d+)/)[1]);
    assert.ok(travelled >= 1, `the cursor's tick is ${travelled}`);
    await eventually(`the tree at tick ${travelled}`, async () =>
      new RegExp(`^tick ${travelled} of \\d+$`).test(await view.locator("#tick").textContent()),
    );
    await view.locator("#tab-tree").click();
    await eventually("summarize running at that tick", async () =>
      /status-RUNNING/.test(await view.locator('g[data-id="lanes/research/summarize"]').getAttribute("class")),
    );

    // On: the reply, with no answer on file, fails and the run ends.
    await runCommand(page, "Remove All Breakpoints");
    await page.locator(".debug-toolbar .codicon-debug-continue").click();
    await view.locator("#tab-agents").click();
    const ended = await eventually("the reply failed", async () => {
      const now = await outcomes();
      return now.reply?.[0] === "failed" ? now : undefined;
    });
    assert.deepEqual(ended, { search: ["succeeded"], summarize: ["succeeded"], classify: ["succeeded"], reply: ["failed"] });
    await eventually("every agent done", async () =>
      /^4 of 4 agents done · 1 failed · median /.test(await view.locator("#agents-summary").textContent()),
    );
    assert.match(await tip("lanes/reply"), /^reply — failed[^]*\nMissingFixture: /);
    assert.equal(await view.locator("#lanes g.lane.failed").getAttribute("data-lane"), "lanes/reply");
    // On the Tree tab, the failing agent and its path to the root are marked.
    await view.locator("#tab-tree").click();
    assert.ok(await view.locator("#canvas").isVisible());
    for (const id of ["lanes", "lanes/reply"]) {
      assert.match(await view.locator(`g[data-id="${id}"]`).getAttribute("class"), /\bfailpath\b/);
    }
    assert.doesNotMatch(await view.locator('g[data-id="lanes/research"]').getAttribute("class"), /failpath/);
  });

  it("toggles debug mode from the status bar", async () => {
    await page.keyboard.press("Shift+F5");
    await page.locator(".statusbar-item", { hasText: "Canopy: off" }).click();
    await page.locator(".statusbar-item", { hasText: "Canopy: ready" }).waitFor({ timeout: 60_000 });
    await page.locator(".statusbar-item", { hasText: "Canopy: ready" }).click();
    await page.locator(".statusbar-item", { hasText: "Canopy: off" }).waitFor({ timeout: 30_000 });
  });

  it("says clearly where it looked when the canopy command is missing", async () => {
    const settings = JSON.parse(fs.readFileSync(workbench.settingsFile, "utf8"));
    fs.writeFileSync(workbench.settingsFile, JSON.stringify({ ...settings, "canopy.path": "/nowhere/canopy" }, null, 2));
    try {
      await page.locator(".monaco-editor .view-lines").first().click();
      const toast = page.locator(".notifications-toasts", { hasText: "canopy.path" });
      await eventually("the error about canopy.path", async () => {
        if (await toast.isVisible()) return true;
        await page.keyboard.press("F5"); // the settings file is read a moment after it changes
        await page.waitForTimeout(1000);
        return false;
      });
      assert.match(await toast.textContent(), /the command in the setting canopy\.path, "\/nowhere\/canopy", does not exist/);
    } finally {
      fs.writeFileSync(workbench.settingsFile, JSON.stringify(settings, null, 2));
    }
  });
});
