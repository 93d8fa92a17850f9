// Is the live tree smooth on a 200-node tree ticking at 50 Hz?
//
// Loads the real webview script (media/liveTree.js) in Debian's chromium, draws a 200-node tree
// laid out by the extension's own layout, and drives it with every node changing status on
// every tick at 50 Hz (10,000 status events a second, the worst case). Two ways, in the same run:
//   batched   — each tick's changes merged by the extension's StatusBatcher and flushed every
//               40 ms (what the adapter's batches and the extension do);
//   unbatched — every status event is posted to the view as it comes (the baseline).
// It records the interval between animation frames, the browser's long tasks (> 50 ms) and the
// share of time the page's main thread was busy.
// Smooth means: frame interval p99 <= 33 ms (30 fps or better) and no long task.
// Usage: node bench/liveTree.mjs [--quick]   (after `npm run compile`). JSON is the last line.
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const { layout } = require(path.join(root, "out/src/liveTree/layout.js"));
const { PAGE_BODY } = require(path.join(root, "out/src/liveTree/model.js"));
const batcherSource = fs.readFileSync(path.join(root, "out/src/liveTree/batcher.js"), "utf8");
const viewSource = fs.readFileSync(path.join(root, "media/liveTree.js"), "utf8");
const style = fs.readFileSync(path.join(root, "media/liveTree.css"), "utf8");

const quick = process.argv.includes("--quick");
const SECONDS = quick ? 5 : 20;
const NODES = 200;
const HZ = 50;

/** 200 nodes: a root, 19 sequences of 9 behaviours, and a chain under the last behaviour. */
function tree() {
  const nodes = [{ id: "root", parent: null }];
  for (let s = 0; s < 19; s++) {
    nodes.push({ id: `root/s${s}`, parent: "root" });
    for (let b = 0; b < 9; b++) nodes.push({ id: `root/s${s}/b${b}`, parent: `root/s${s}` });
  }
  for (let d = 0; nodes.length < NODES; d++) {
    nodes.push({ id: `root/s18/b8/c${d}`, parent: d === 0 ? "root/s18/b8" : `root/s18/b8/c${d - 1}` });
  }
  const full = nodes.map((n) => ({ ...n, name: n.id.split("/").pop(), kind: "k", kind_short: "Behaviour", shape: "behaviour", status: "INVALID", source: null }));
  const edges = full.filter((n) => n.parent !== null).map((n) => ({ from: n.parent, to: n.id }));
  return { drawing: layout(full, edges), ids: full.map((n) => n.id) };
}

function page(drawing, ids) {
  const statuses = Object.fromEntries(ids.map((id) => [id, "INVALID"]));
  const treeMessage = {
    type: "tree", drawing, live: true, lastTick: 0, breakpoints: [], session: "bench",
    snapshot: { statuses, current: null, tick: 0, inTick: false, rootStatus: null },
  };
  return `<!DOCTYPE html><html><head><style>${style}</style></head><body>${PAGE_BODY}
<script>
window.acquireVsCodeApi = () => ({ postMessage() {} });
var exports = {};
${batcherSource}
window.StatusBatcher = exports.StatusBatcher;
</script>
<script>${viewSource}</script>
<script>
window.postMessage(${JSON.stringify(treeMessage)}, "*");
window.drive = (mode, seconds, hz, ids) => new Promise((resolve) => {
  const STATUSES = ["RUNNING", "SUCCESS", "FAILURE"];
  const batcher = new StatusBatcher();
  const frames = [];
  const longTasks = [];
  const observer = new PerformanceObserver((list) => { for (const e of list.getEntries()) longTasks.push(e.duration); });
  observer.observe({ entryTypes: ["longtask"] });
  let last = performance.now();
  let running = true;
  const onFrame = (now) => { frames.push(now - last); last = now; if (running) requestAnimationFrame(onFrame); };
  requestAnimationFrame(onFrame);
  let tick = 0;
  let posted = 0;
  const ticker = setInterval(() => {
    tick++;
    const changes = {};
    ids.forEach((id, i) => {
      const status = STATUSES[(tick + i) % 3];
      if (mode === "batched") {
        changes[id] = status;
      } else {
        posted++;
        window.postMessage({ type: "statuses", changes: { [id]: status }, current: id, tick, lastTick: tick }, "*");
      }
    });
    if (mode === "batched") batcher.addBatch({ changes, current: ids[ids.length - 1], tick, reloaded: false });
  }, 1000 / hz);
  const flusher = mode === "batched" ? setInterval(() => {
    const batch = batcher.flush();
    if (batch) { posted++; window.postMessage({ type: "statuses", ...batch, lastTick: batch.tick }, "*"); }
  }, 40) : undefined;
  setTimeout(() => {
    clearInterval(ticker);
    if (flusher) clearInterval(flusher);
    running = false;
    observer.disconnect();
    const shown = document.getElementById("tick").textContent;
    resolve({ frames: frames.slice(5), longTasks, ticks: tick, posted, shown });
  }, seconds * 1000);
});
</script></body></html>`;
}

/** Seconds the page's main thread has spent running tasks, scripts, and style and layout. */
async function busy(cdp) {
  const { metrics } = await cdp.send("Performance.getMetrics");
  const value = (name) => metrics.find((m) => m.name === name)?.value ?? 0;
  return { task: value("TaskDuration"), script: value("ScriptDuration"), style: value("RecalcStyleDuration") + value("LayoutDuration") };
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main() {
  const { drawing, ids } = tree();
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const results = {};
  try {
    for (const mode of ["batched", "unbatched"]) {
      const tab = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
      await tab.setContent(page(drawing, ids));
      await tab.waitForSelector("#canvas g[data-id]");
      const cdp = await tab.context().newCDPSession(tab);
      await cdp.send("Performance.enable");
      const before = await busy(cdp);
      const run = await tab.evaluate(([m, s, hz, list]) => window.drive(m, s, hz, list), [mode, SECONDS, HZ, ids]);
      const after = await busy(cdp);
      const drawn = await tab.locator("#canvas g[data-id]").count();
      await tab.close();
      const result = {
        frames: run.frames.length,
        fps: Math.round((run.frames.length / SECONDS) * 10) / 10,
        frame_ms_p50: Math.round(percentile(run.frames, 50) * 10) / 10,
        frame_ms_p99: Math.round(percentile(run.frames, 99) * 10) / 10,
        frame_ms_max: Math.round(Math.max(...run.frames) * 10) / 10,
        long_tasks: run.longTasks.length,
        main_thread_busy: Math.round(((after.task - before.task) / SECONDS) * 1000) / 1000,
        script_s: Math.round((after.script - before.script) * 1000) / 1000,
        style_layout_s: Math.round((after.style - before.style) * 1000) / 1000,
        ticks: run.ticks,
        messages_to_view: run.posted,
        nodes_drawn: drawn,
      };
      result.smooth = result.frame_ms_p99 <= 33 && result.long_tasks === 0;
      results[mode] = result;
      console.error(
        `${mode.padEnd(9)}  ${result.fps} fps  frame p50 ${result.frame_ms_p50} ms  p99 ${result.frame_ms_p99} ms` +
          `  max ${result.frame_ms_max} ms  long tasks ${result.long_tasks}  main thread busy ${(result.main_thread_busy * 100).toFixed(1)} %` +
          `  messages ${result.messages_to_view}`,
      );
    }
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify({ bench: "live_tree", quick, nodes: NODES, hz: HZ, seconds: SECONDS, ...results, target_met: results.batched.smooth }));
}

await main();
