// The Agents tab of the live tree: one lane per agent, each call a bar over a shared time axis,
// the moment now, the estimated end, and a cursor that says which calls were in flight at a
// moment (and shows the tree at that moment's tick). The extension sends the whole model
// (lanes, bars, estimate: src/liveTree/agents.ts); this script only draws it. The SVG keeps one
// element per lane and per call, made once and placed in milliseconds from the first call; an
// animation frame (on a new view, or 20 times a second while calls run) only rescales their
// layer and stretches the running calls' bars, so a wide fan-out of agents costs the browser a
// bounded amount of work per frame.
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const LABEL = 190; // the lane labels' column
  const INDENT = 14; // a Parallel's bracket, before its agents' labels
  const LANE = 24;
  const BAR = 14;
  const AXIS = 20;
  const RIGHT = 16;
  const GROW_MS = 50;
  const STEPS = [50, 100, 200, 500, 1000, 2000, 5000, 10000, 15000, 30000, 60000, 120000, 300000, 600000];

  const host = document.getElementById("lanes");
  const section = document.getElementById("agents");
  const summary = document.getElementById("agents-summary");
  const atLabel = document.getElementById("agents-at");
  const tabs = [...document.querySelectorAll("#tabs button")];
  const timeline = document.getElementById("timeline");

  let view = null;
  let receivedAt = 0;
  let laneKey = null;
  const bars = new Map(); // call id -> { rect, title, outcome, tip, className, start, end, lane, slow, mark }
  let placedOrigin = null; // the time the bars' x are counted from
  let cursor = null; // a moment (ms since the epoch) the user points at
  let postedTick;
  let frameRequested = false;
  let growTimer;
  let shownSummary = "";
  let shownAt = "";

  function element(tag, attributes, parent) {
    const node = document.createElementNS(SVG, tag);
    for (const key in attributes) node.setAttribute(key, attributes[key]);
    if (parent) parent.appendChild(node);
    return node;
  }

  const svg = element("svg", { role: "img", tabindex: "0", "aria-label": "The agents' calls over time", height: AXIS });
  const axis = element("g", { class: "axis" }, svg);
  const groupLayer = element("g", { class: "groups" }, svg);
  const laneLayer = element("g", { class: "lanes" }, svg);
  const barLayer = element("g", { class: "bars" }, svg);
  const nowLine = element("line", { class: "now" }, svg);
  const etaLine = element("line", { class: "eta" }, svg);
  const cursorLine = element("line", { class: "cursor", visibility: "hidden" }, svg);
  const etaTitle = element("title", {}, etaLine);
  host.appendChild(svg);

  const visible = () => !section.hidden;

  /** The latest moment: the model's, moved on by the page's clock while calls run. */
  function clock() {
    if (view === null) return 0;
    return view.now + (view.estimate.running > 0 ? performance.now() - receivedAt : 0);
  }

  /** The time axis: from the first call to now or the estimated end, whichever is later. */
  function domain() {
    const start = view.origin ?? view.now;
    const end = Math.max(clock(), view.estimate.endsAt ?? 0, start + 1000);
    return [start, end];
  }

  function drawLanes() {
    laneLayer.replaceChildren();
    groupLayer.replaceChildren();
    view.lanes.forEach((lane, i) => {
      const y = AXIS + i * LANE;
      const group = element("g", { class: "lane", "data-lane": lane.id, transform: `translate(0,${y})` }, laneLayer);
      element("rect", { class: "lane-bg", x: 0, y: 0, width: "100%", height: LANE }, group);
      const label = element("text", { x: lane.parallel ? INDENT : 2, y: LANE / 2 }, group);
      label.textContent = lane.name.length > 24 ? lane.name.slice(0, 23) + "…" : lane.name;
      element("title", {}, group).textContent = lane.path.join(" › ");
    });
    // A Parallel's agents are adjacent: a bracket spans them, named after the Parallel.
    for (let i = 0; i < view.lanes.length; ) {
      const parallel = view.lanes[i].parallel;
      let j = i + 1;
      while (parallel && j < view.lanes.length && view.lanes[j].parallel?.id === parallel.id) j++;
      if (parallel) {
        const top = AXIS + i * LANE + 4;
        const bottom = AXIS + j * LANE - 4;
        const bracket = element("g", { class: "group", "data-parallel": parallel.id }, groupLayer);
        element("path", { d: `M${INDENT - 4},${top} H4 V${bottom} H${INDENT - 4}` }, bracket);
        element("title", {}, bracket).textContent = `${parallel.name}: ${j - i} agents side by side (Parallel)`;
      }
      i = j;
    }
    svg.setAttribute("height", AXIS + view.lanes.length * LANE + 4);
  }

  /** Make or update the element of every call; drop those the model no longer has. */
  function syncBars() {
    const wanted = new Set();
    for (const bar of view.bars) {
      wanted.add(bar.callId);
      let drawn = bars.get(bar.callId);
      if (drawn === undefined) {
        const rect = element("rect", { "data-call": bar.callId, height: BAR, "vector-effect": "non-scaling-stroke" }, barLayer);
        drawn = { rect, title: element("title", {}, rect), outcome: null, tip: null, className: "", start: null, end: null, lane: null, slow: null, mark: null };
        bars.set(bar.callId, drawn);
      }
      if (drawn.start !== bar.start || placedOrigin !== view.origin) {
        drawn.start = bar.start;
        drawn.rect.setAttribute("x", bar.start - view.origin);
      }
      if (drawn.end !== bar.end) {
        drawn.end = bar.end;
        // A bar has no width below a millisecond's; its stroke (never scaled) keeps it seen.
        if (bar.end !== null) drawn.rect.setAttribute("width", Math.max(bar.end - bar.start, 0.001));
      }
      if (drawn.slow !== bar.slow || drawn.lane !== bar.lane || placedOrigin !== view.origin) {
        drawn.slow = bar.slow;
        placeSlowMark(drawn, bar);
      }
      if (drawn.lane !== bar.lane) {
        drawn.lane = bar.lane;
        drawn.rect.setAttribute("y", AXIS + bar.lane * LANE + (LANE - BAR) / 2);
      }
      if (drawn.outcome !== bar.outcome) {
        drawn.outcome = bar.outcome;
        drawn.rect.setAttribute("data-outcome", bar.outcome);
        drawn.rect.setAttribute("data-node", bar.node);
      }
      if (drawn.tip !== bar.tip) {
        drawn.tip = bar.tip;
        drawn.title.textContent = bar.tip;
      }
    }
    placedOrigin = view.origin;
    for (const [id, drawn] of bars) {
      if (!wanted.has(id)) {
        drawn.rect.remove();
        if (drawn.mark !== null) drawn.mark.remove();
        bars.delete(id);
      }
    }
    const failed = new Set(view.lanes.filter((lane) => lane.failed).map((lane) => lane.id));
    for (const lane of laneLayer.children) {
      const name = failed.has(lane.getAttribute("data-lane")) ? "lane failed" : "lane";
      if (lane.getAttribute("class") !== name) lane.setAttribute("class", name);
    }
  }

  /** The mark across a call's bar where it was told slow (AgentSlow), or none. */
  function placeSlowMark(drawn, bar) {
    if (bar.slow === null) {
      if (drawn.mark !== null) drawn.mark.remove();
      drawn.mark = null;
      return;
    }
    if (drawn.mark === null) {
      drawn.mark = element("line", { class: "slow-mark", "vector-effect": "non-scaling-stroke" }, barLayer);
      element("title", {}, drawn.mark).textContent = "running late from here";
    }
    const x = bar.slow - view.origin;
    const top = AXIS + bar.lane * LANE + 2;
    for (const [key, value] of [["x1", x], ["x2", x], ["y1", top], ["y2", top + LANE - 4]]) {
      drawn.mark.setAttribute(key, value);
    }
  }

  function seconds(ms) {
    return ms >= 1000 ? (ms / 1000).toFixed(ms >= 10000 ? 1 : 2) + " s" : Math.round(ms) + " ms";
  }

  /** An estimate needs no milliseconds: "~1.2 s" (it changes ten times a second, not every frame). */
  function roughly(ms) {
    return (ms / 1000).toFixed(1) + " s";
  }

  function drawAxis(start, end, x, height) {
    const span = end - start;
    const step = STEPS.find((s) => span / s <= 8) ?? STEPS[STEPS.length - 1];
    const count = Math.floor(span / step) + 1;
    while (axis.children.length < count * 2) {
      element("line", {}, axis);
      element("text", {}, axis);
    }
    for (let i = 0; i < axis.children.length / 2; i++) {
      const line = axis.children[2 * i];
      const text = axis.children[2 * i + 1];
      if (i >= count) {
        line.setAttribute("visibility", "hidden");
        text.setAttribute("visibility", "hidden");
        continue;
      }
      const at = x(start + i * step);
      line.setAttribute("visibility", "visible");
      text.setAttribute("visibility", "visible");
      line.setAttribute("x1", at);
      line.setAttribute("x2", at);
      line.setAttribute("y1", AXIS - 4);
      line.setAttribute("y2", height);
      text.setAttribute("x", at);
      text.setAttribute("y", AXIS - 8);
      text.textContent = seconds(i * step);
    }
  }

  function vertical(line, at, height) {
    line.setAttribute("x1", at);
    line.setAttribute("x2", at);
    line.setAttribute("y1", AXIS - 4);
    line.setAttribute("y2", height);
  }

  /** The tick the tree was at, at moment `t`: between the agent events around it, the ticks
   * are taken to have passed evenly (they do in auto and interval modes; a stop between them
   * makes it an estimate, still between those two events' ticks). */
  function tickAt(t) {
    const marks = view.ticks;
    let low = 0;
    let high = marks.length - 1;
    let before = -1; // the last mark at or before t
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (marks[middle][0] <= t) {
        before = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    if (before < 0) return marks.length > 0 ? marks[0][1] : 0;
    const [t1, k1] = marks[before];
    const next = marks[before + 1];
    if (next === undefined || next[0] === t1) return k1;
    return k1 + Math.floor(((t - t1) / (next[0] - t1)) * (next[1] - k1));
  }

  function describe(now) {
    const e = view.estimate;
    if (view.lanes.length === 0) return "No agents in this tree.";
    const failed = view.lanes.filter((lane) => lane.failed).length;
    const parts = [`${e.done} of ${e.total} agents done`];
    if (e.running > 0) parts.push(`${e.running} running`);
    if (failed > 0) parts.push(`${failed} failed`);
    if (e.medianMs !== null) parts.push(`median ${seconds(e.medianMs)}`);
    if (e.endsAt !== null) parts.push(`done in ~${roughly(Math.max(0, e.endsAt - now))} (estimated)`);
    return parts.join(" · ");
  }

  function frame() {
    frameRequested = false;
    if (view === null || !visible()) return;
    const width = Math.max(host.clientWidth, LABEL + 100);
    const height = AXIS + view.lanes.length * LANE;
    if (svg.getAttribute("width") !== String(width)) svg.setAttribute("width", width);
    const [start, end] = domain();
    const scale = (width - LABEL - RIGHT) / (end - start);
    const x = (t) => LABEL + (t - start) * scale;
    const now = clock();
    drawAxis(start, end, x, height);
    // The bars are placed in ms from the first call: one transform fits them to the axis.
    barLayer.setAttribute("transform", `translate(${x(view.origin ?? start)},0) scale(${scale},1)`);
    const inFlight = [];
    for (const bar of view.bars) {
      const drawn = bars.get(bar.callId);
      const stop = bar.end ?? now;
      if (bar.end === null) drawn.rect.setAttribute("width", Math.max(stop - bar.start, 0.001));
      const flying = cursor !== null && bar.start <= cursor && cursor < stop;
      if (flying) inFlight.push(view.lanes[bar.lane].name);
      const name = `bar outcome-${bar.outcome}${flying ? " in-flight" : ""}`;
      if (drawn.className !== name) drawn.rect.setAttribute("class", (drawn.className = name));
    }
    vertical(nowLine, x(now), height);
    nowLine.setAttribute("visibility", view.origin === null ? "hidden" : "visible");
    const eta = view.estimate.endsAt;
    etaLine.setAttribute("visibility", eta === null ? "hidden" : "visible");
    if (eta !== null) {
      vertical(etaLine, x(eta), height);
      etaTitle.textContent = `estimated end: ${seconds(eta - start)} (${view.estimate.medianMs === null ? "" : "median call " + seconds(view.estimate.medianMs)})`;
    }
    cursorLine.setAttribute("visibility", cursor === null ? "hidden" : "visible");
    let at = "";
    if (cursor !== null) {
      vertical(cursorLine, x(cursor), height);
      at = `at ${seconds(Math.max(0, cursor - start))} · tick ${tickAt(cursor)} · ` +
        (inFlight.length > 0 ? `in flight: ${inFlight.join(", ")}` : "nothing in flight");
    }
    if (at !== shownAt) atLabel.textContent = shownAt = at;
    const text = describe(now);
    if (text !== shownSummary) summary.textContent = shownSummary = text;
    if (view.estimate.running > 0 && growTimer === undefined) {
      // Running bars grow with the clock: redrawn 20 times a second (a new view, at once).
      growTimer = setTimeout(() => {
        growTimer = undefined;
        requestFrame();
      }, GROW_MS);
    }
  }

  function requestFrame() {
    if (!frameRequested) {
      frameRequested = true;
      requestAnimationFrame(frame);
    }
  }

  function show(tab) {
    section.hidden = tab !== "agents";
    document.body.setAttribute("data-tab", tab);
    for (const button of tabs) button.setAttribute("aria-selected", String(button.dataset.tab === tab));
    requestFrame();
  }

  /** The moment under the pointer, or null left of the time axis. */
  function momentAt(clientX) {
    if (view === null || view.origin === null) return null;
    const box = svg.getBoundingClientRect();
    const [start, end] = domain();
    const offset = clientX - box.left - LABEL;
    const span = box.width - LABEL - RIGHT;
    return start + Math.min(Math.max(offset / span, 0), 1) * (end - start);
  }

  /** Show the tree at the cursor's tick: move the live tree's own timeline there, as a user
   * would (it pauses the live updates and asks for the tree at that tick). */
  function travel() {
    if (cursor === null) return;
    const tick = tickAt(cursor);
    if (tick !== postedTick) {
      postedTick = tick;
      timeline.value = String(tick);
      timeline.dispatchEvent(new Event("input"));
    }
  }

  window.addEventListener("message", (event) => {
    const message = event.data;
    if (message.type === "agents") {
      view = message.view;
      receivedAt = performance.now();
      const key = view.lanes.map((lane) => lane.id + "\u0000" + (lane.parallel?.id ?? "")).join("\u0001");
      if (key !== laneKey) {
        laneKey = key;
        drawLanes();
      }
      syncBars();
      requestFrame();
    } else if (message.type === "tab") {
      show(message.tab);
    } else if (message.type === "tree") {
      postedTick = undefined;
    } else if (message.type === "empty") {
      // No session: nothing to draw until the next one's agents come.
      view = null;
      laneKey = null;
      bars.clear();
      for (const layer of [laneLayer, groupLayer, barLayer]) layer.replaceChildren();
      for (const line of [nowLine, etaLine, cursorLine]) line.setAttribute("visibility", "hidden");
      svg.setAttribute("height", AXIS);
      cursor = null;
      summary.textContent = shownSummary = "";
      atLabel.textContent = shownAt = "";
    }
  });

  for (const button of tabs) {
    button.addEventListener("click", () => {
      show(button.dataset.tab);
      window.canopyView.post({ type: "tab", tab: button.dataset.tab });
    });
  }
  svg.addEventListener("pointerdown", (event) => {
    const moment = momentAt(event.clientX);
    if (moment === null) return;
    svg.setPointerCapture(event.pointerId);
    cursor = moment;
    requestFrame();
  });
  svg.addEventListener("pointermove", (event) => {
    if (!svg.hasPointerCapture(event.pointerId)) return;
    cursor = momentAt(event.clientX);
    requestFrame();
  });
  svg.addEventListener("pointerup", (event) => {
    if (svg.hasPointerCapture(event.pointerId)) svg.releasePointerCapture(event.pointerId);
    travel();
  });
  svg.addEventListener("keydown", (event) => {
    if (view === null || view.origin === null) return;
    const [start, end] = domain();
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      event.preventDefault();
      const step = (end - start) / 50;
      cursor = Math.min(Math.max((cursor ?? clock()) + (event.key === "ArrowLeft" ? -step : step), start), end);
      requestFrame();
    } else if (event.key === "Enter") {
      travel();
    } else if (event.key === "Escape") {
      cursor = null;
      requestFrame();
    }
  });
  new ResizeObserver(() => requestFrame()).observe(host);
})();
