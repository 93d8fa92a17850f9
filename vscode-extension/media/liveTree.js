// The live tree webview. The drawing is built once per tree; while the tree runs only the
// class attributes of the node groups change, applied once per animation frame, so a large
// tree ticking fast costs the browser a bounded amount of work per frame.
(function () {
  "use strict";
  const vscode = acquireVsCodeApi();
  // The page's other script (agentLanes.js, the Agents tab) posts through this: the API can be
  // acquired once per page.
  window.canopyView = { post: (message) => vscode.postMessage(message) };
  const SVG = "http://www.w3.org/2000/svg";
  const canvas = document.getElementById("canvas");
  const timeline = document.getElementById("timeline");
  const tickLabel = document.getElementById("tick");
  const liveButton = document.getElementById("live");
  const notice = document.getElementById("notice");
  const sessionLabel = document.getElementById("session");
  const summary = document.getElementById("summary");

  let groups = new Map(); // node id -> <g>
  let statuses = new Map();
  let current = null;
  let breakpoints = new Set();
  let failedPath = new Set(); // failing agents and the nodes above them (the Agents tab's view)
  let live = true;
  let lastTick = 0;
  let shownTick = 0;
  const pending = new Map(); // node id -> status, applied at the next frame
  let pendingCurrent;
  let frameRequested = false;
  let scrubWanted;

  function classOf(id) {
    const status = statuses.get(id);
    let name = "node status-" + (status || "NONE");
    if (id === current) name += " current";
    if (breakpoints.has(id)) name += " breakpoint";
    if (failedPath.has(id)) name += " failpath";
    return name;
  }

  function element(tag, attributes, parent) {
    const node = document.createElementNS(SVG, tag);
    for (const key in attributes) node.setAttribute(key, attributes[key]);
    if (parent) parent.appendChild(node);
    return node;
  }

  function draw(drawing) {
    groups = new Map();
    const svg = element("svg", {
      viewBox: "0 0 " + drawing.width + " " + drawing.height,
      width: drawing.width,
      height: drawing.height,
      role: "tree",
    });
    const places = new Map(drawing.nodes.map((n) => [n.id, n]));
    const w = drawing.nodeWidth;
    const h = drawing.nodeHeight;
    const edges = element("g", { class: "edges" }, svg);
    for (const edge of drawing.edges) {
      const a = places.get(edge.from);
      const b = places.get(edge.to);
      const x1 = a.x + w / 2, y1 = a.y + h, x2 = b.x + w / 2, y2 = b.y;
      const mid = (y1 + y2) / 2;
      element("path", { d: `M${x1},${y1} C${x1},${mid} ${x2},${mid} ${x2},${y2}` }, edges);
    }
    for (const node of drawing.nodes) {
      const group = element("g", { "data-id": node.id, "data-shape": node.shape, transform: `translate(${node.x},${node.y})`, tabindex: "0" }, svg);
      const title = element("title", {}, group);
      title.textContent = node.id + " (" + node.kind + ") — click to toggle a breakpoint";
      element("rect", { width: w, height: h, rx: node.shape === "behaviour" ? 18 : 4 }, group);
      const name = element("text", { x: w / 2, y: 15, class: "name" }, group);
      name.textContent = node.name.length > 20 ? node.name.slice(0, 19) + "…" : node.name;
      const kind = element("text", { x: w / 2, y: 29, class: "kind" }, group);
      kind.textContent = node.kind;
      element("circle", { cx: 8, cy: 8, r: 5, class: "dot" }, group);
      groups.set(node.id, group);
    }
    canvas.replaceChildren(svg);
    for (const id of groups.keys()) groups.get(id).setAttribute("class", classOf(id));
  }

  function applySnapshot(snapshot) {
    pending.clear();
    pendingCurrent = undefined;
    statuses = new Map(Object.entries(snapshot.statuses));
    current = snapshot.current;
    shownTick = snapshot.tick;
    for (const [id, group] of groups) group.setAttribute("class", classOf(id));
  }

  function frame() {
    frameRequested = false;
    const touched = new Set(pending.keys());
    for (const [id, status] of pending) statuses.set(id, status);
    pending.clear();
    if (pendingCurrent !== undefined) {
      if (current !== null) touched.add(current);
      current = pendingCurrent;
      if (current !== null) touched.add(current);
      pendingCurrent = undefined;
    }
    for (const id of touched) {
      const group = groups.get(id);
      if (group) group.setAttribute("class", classOf(id));
    }
    showTimeline();
    if (scrubWanted !== undefined) {
      vscode.postMessage({ type: "scrub", tick: scrubWanted });
      scrubWanted = undefined;
    }
  }

  function requestFrame() {
    if (!frameRequested) {
      frameRequested = true;
      requestAnimationFrame(frame);
    }
  }

  function showTimeline() {
    timeline.max = String(lastTick);
    if (live) shownTick = lastTick;
    if (document.activeElement !== timeline || live) timeline.value = String(shownTick);
    tickLabel.textContent = "tick " + shownTick + (live ? "" : " of " + lastTick);
    liveButton.disabled = live;
    document.body.classList.toggle("past", !live);
  }

  function say(text) {
    notice.textContent = text;
  }

  window.addEventListener("message", (event) => {
    const message = event.data;
    switch (message.type) {
      case "tree":
        live = message.live;
        lastTick = message.lastTick;
        breakpoints = new Set(message.breakpoints);
        sessionLabel.textContent = message.session;
        say("");
        draw(message.drawing);
        applySnapshot(message.snapshot);
        showTimeline();
        break;
      case "statuses":
        lastTick = Math.max(lastTick, message.lastTick);
        if (!live) break;
        for (const id in message.changes) pending.set(id, message.changes[id]);
        pendingCurrent = message.current;
        requestFrame();
        break;
      case "snapshot":
        live = message.live;
        lastTick = Math.max(lastTick, message.lastTick);
        applySnapshot(message.snapshot);
        showTimeline();
        break;
      case "ticks":
        lastTick = Math.max(lastTick, message.lastTick);
        requestFrame();
        break;
      case "breakpoints":
        breakpoints = new Set(message.ids);
        for (const [id, group] of groups) group.setAttribute("class", classOf(id));
        break;
      case "empty":
        groups = new Map();
        canvas.replaceChildren();
        say(message.message);
        break;
      case "notice":
        say(message.message);
        break;
      case "agents": {
        const path = message.view.failedPath;
        if (path.length !== failedPath.size || path.some((id) => !failedPath.has(id))) {
          failedPath = new Set(path);
          for (const [id, group] of groups) group.setAttribute("class", classOf(id));
        }
        break;
      }
      case "timeline":
        summary.textContent = message.summary;
        timeline.focus();
        break;
    }
  });

  canvas.addEventListener("click", (event) => {
    const group = event.target.closest && event.target.closest("g[data-id]");
    if (group) vscode.postMessage({ type: "toggleBreakpoint", id: group.getAttribute("data-id") });
  });
  canvas.addEventListener("keydown", (event) => {
    const group = event.target.closest && event.target.closest("g[data-id]");
    if (group && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      vscode.postMessage({ type: "toggleBreakpoint", id: group.getAttribute("data-id") });
    }
  });
  timeline.addEventListener("input", () => {
    live = false;
    shownTick = Number(timeline.value);
    scrubWanted = shownTick;
    requestFrame();
  });
  liveButton.addEventListener("click", () => {
    live = true;
    vscode.postMessage({ type: "live" });
  });
  vscode.postMessage({ type: "ready" });
})();
