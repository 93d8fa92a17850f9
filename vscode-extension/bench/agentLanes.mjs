// Does the Agents tab stay smooth with 50 agents?
//
// Loads the real webview scripts (media/liveTree.js and media/agentLanes.js) in Debian's
// chromium with the extension's own model (out/src/liveTree/agents.js), and replays a workflow
// of 50 agents — 5 Parallels of 10, one after the other, each agent making 4 calls of 150 to
// 900 ms (one in ten failing, a few cancelled) — in real time. As the extension does, every
// 40 ms that events arrived they are folded into the model and its whole view (lanes, bars,
// estimate) is posted to the page, which draws in animation frames.
// It records the model's time per update (events -> view), the interval between animation
// frames, the browser's long tasks (> 50 ms) and the share of time the main thread was busy.
// Smooth means: frame interval p99 <= 33 ms (30 fps or better) and no long task.
// Usage: node bench/agentLanes.mjs [--quick]   (after `npm run compile`). JSON is the last line.
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const { PAGE_BODY } = require(path.join(root, "out/src/liveTree/model.js"));
const modelSource = fs.readFileSync(path.join(root, "out/src/liveTree/agents.js"), "utf8");
const treeSource = fs.readFileSync(path.join(root, "media/liveTree.js"), "utf8");
const lanesSource = fs.readFileSync(path.join(root, "media/agentLanes.js"), "utf8");
const style = fs.readFileSync(path.join(root, "media/liveTree.css"), "utf8");

const quick = process.argv.includes("--quick");
const STAGES = 5;
const FANOUT = 10;
const CALLS = 4;
const AGENTS = STAGES * FANOUT;

/** The tree's nodes (a Sequence of Parallels of llm agents) and every agent event, with
 * times from the run's start in ms; the calls of a stage all start when the previous ends. */
function workflow() {
  const nodes = [{ id: "flow", name: "flow", kind: "Sequence", kind_short: "Sequence", shape: "sequence", parent: null, status: null, source: null }];
  const events = [];
  let seed = 7;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  let offset = 0;
  let stageStart = 0;
  for (let s = 0; s < STAGES; s++) {
    const stage = `flow/stage${s}`;
    nodes.push({ id: stage, name: `stage${s}`, kind: "Parallel", kind_short: "Parallel", shape: "parallel", parent: "flow", status: null, source: null });
    let stageEnd = stageStart;
    for (let a = 0; a < FANOUT; a++) {
      const id = `${stage}/agent${a}`;
      nodes.push({ id, name: `agent${a}`, kind: "llm", kind_short: "llm", shape: "behaviour", parent: stage, status: null, source: null });
      let at = stageStart;
      for (let c = 0; c < CALLS; c++) {
        const call = `${id}#${c}`;
        const latency = 150 + random() * 750;
        const base = { node_id: id, call_id: call, agent: "llm" };
        events.push({ ...base, type: "AgentCallStarted", at, model: "claude-haiku-4-5" });
        const end = at + latency;
        const roll = random();
        if (roll < 0.1) {
          events.push({ ...base, type: "AgentCallFailed", at: end, latency_ms: latency, retries: 1, error_type: "ModelError", message: "overloaded" });
        } else if (roll < 0.15) {
          events.push({ ...base, type: "AgentCallCancelled", at: end, latency_ms: latency, reason: "preempted" });
        } else {
          events.push({ ...base, type: "AgentCallCompleted", at: end, latency_ms: latency, retries: 0, input_tokens: 400, output_tokens: 60, cost_usd: 0.0007 });
        }
        at = end;
      }
      stageEnd = Math.max(stageEnd, at);
    }
    stageStart = stageEnd;
  }
  events.sort((a, b) => a.at - b.at);
  for (const event of events) event.offset = ++offset;
  return { nodes, events, duration: stageStart };
}

function page() {
  return `<!DOCTYPE html><html><head><style>${style}</style></head><body>${PAGE_BODY}
<script>
window.acquireVsCodeApi = () => ({ postMessage() {} });
var exports = {};
${modelSource}
window.AgentTimeline = exports.AgentTimeline;
</script>
<script>${treeSource}</script>
<script>${lanesSource}</script>
<script>
window.drive = (nodes, events, duration, speed) => new Promise((resolve) => {
  window.postMessage({ type: "tab", tab: "agents" }, "*");
  const model = new AgentTimeline();
  model.setTree(nodes);
  const frames = [];
  const longTasks = [];
  const updates = [];
  const observer = new PerformanceObserver((list) => { for (const e of list.getEntries()) longTasks.push(e.duration); });
  observer.observe({ entryTypes: ["longtask"] });
  let last = performance.now();
  let running = true;
  const onFrame = (now) => { frames.push(now - last); last = now; if (running) requestAnimationFrame(onFrame); };
  requestAnimationFrame(onFrame);
  const t0 = Date.now();
  let next = 0;
  const flusher = setInterval(() => {
    const elapsed = (Date.now() - t0) * speed;
    const batch = [];
    while (next < events.length && events[next].at <= elapsed) {
      const e = events[next++];
      batch.push({ ...e, time: t0 + e.at / speed, tick: Math.floor(e.at / 50) });
    }
    if (batch.length === 0 && next < events.length) return; // as the extension: a view when calls came
    const started = performance.now();
    model.add(batch);
    const view = model.view(Date.now());
    updates.push(performance.now() - started);
    window.postMessage({ type: "agents", view }, "*");
    if (next >= events.length) {
      clearInterval(flusher);
      setTimeout(() => {
        running = false;
        observer.disconnect();
        resolve({ frames: frames.slice(5), longTasks, updates, bars: view.bars.length, lanes: view.lanes.length, summary: document.getElementById("agents-summary").textContent });
      }, 300);
    }
  }, 40);
});
</script></body></html>`;
}

async function busy(cdp) {
  const { metrics } = await cdp.send("Performance.getMetrics");
  const value = (name) => metrics.find((m) => m.name === name)?.value ?? 0;
  return { task: value("TaskDuration"), script: value("ScriptDuration"), style: value("RecalcStyleDuration") + value("LayoutDuration") };
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const round = (value, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

async function main() {
  const { nodes, events, duration } = workflow();
  const speed = quick ? 2 : 1; // --quick replays the run twice as fast
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const tab = await browser.newPage({ viewport: { width: 1600, height: 1400 } });
    await tab.setContent(page());
    const cdp = await tab.context().newCDPSession(tab);
    await cdp.send("Performance.enable");
    const before = await busy(cdp);
    const started = Date.now();
    const run = await tab.evaluate(([n, e, d, s]) => window.drive(n, e, d, s), [nodes, events, duration, speed]);
    const seconds = (Date.now() - started) / 1000;
    const after = await busy(cdp);
    const drawn = await tab.locator("#lanes rect[data-call]").count();
    if (process.env.BENCH_SCREENSHOT) await tab.screenshot({ path: process.env.BENCH_SCREENSHOT, fullPage: true });
    const result = {
      bench: "agent_lanes",
      quick,
      agents: AGENTS,
      calls: events.filter((e) => e.type === "AgentCallStarted").length,
      events: events.length,
      seconds: round(seconds),
      updates: run.updates.length,
      model_ms_p50: round(percentile(run.updates, 50), 2),
      model_ms_p99: round(percentile(run.updates, 99), 2),
      model_ms_max: round(Math.max(...run.updates), 2),
      fps: round(run.frames.length / seconds),
      frame_ms_p50: round(percentile(run.frames, 50)),
      frame_ms_p99: round(percentile(run.frames, 99)),
      frame_ms_max: round(Math.max(...run.frames)),
      long_tasks: run.longTasks.length,
      main_thread_busy: round((after.task - before.task) / seconds, 3),
      script_s: round(after.script - before.script, 3),
      style_layout_s: round(after.style - before.style, 3),
      bars_drawn: drawn,
      lanes: run.lanes,
      summary: run.summary,
    };
    result.smooth = result.frame_ms_p99 <= 33 && result.long_tasks === 0;
    console.error(
      `${AGENTS} agents, ${result.calls} calls over ${result.seconds} s: model ${result.model_ms_p50} ms p50, ${result.model_ms_p99} ms p99 per update;` +
        ` ${result.fps} fps, frame p99 ${result.frame_ms_p99} ms, long tasks ${result.long_tasks}, main thread busy ${(result.main_thread_busy * 100).toFixed(1)} %`,
    );
    console.log(JSON.stringify(result));
  } finally {
    await browser.close();
  }
}

await main();
