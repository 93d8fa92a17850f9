import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { discoveryPath } from "../../src/discovery";
import { LocalServer } from "../../src/localServer";
import { ServerClient, ServerError } from "../../src/serverClient";

/** The repository's own `canopy` (the Python package under test, installed by `make`). */
const canopy = path.resolve(__dirname, "../../../../.venv/bin/canopy");

describe("LocalServer and ServerClient against a real canopy serve", function () {
  this.timeout(60_000);
  let output = "";
  const server = new LocalServer({ append: (text) => (output += text) });
  let folder: string;

  before(function () {
    if (!fs.existsSync(canopy)) {
      this.skip(); // run `make test` at the repository root, which installs it first
    }
    folder = fs.mkdtempSync(path.join(os.tmpdir(), "canopy-server-"));
  });

  afterEach(async () => {
    await server.stop(); // a failed test leaves no server behind for the next one
  });

  it("starts, toggles debug mode, refuses a wrong token, and stops cleanly", async () => {
    const env = { ...process.env, CANOPY_POD_SPARE_WORKER: "0" } as Record<string, string>;
    const found = await server.start(canopy, folder, env);
    assert.match(found.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(server.running);
    // The banner follows the discovery file on another stream, so it may arrive a moment later.
    await outputMatches(() => output, /serving on/);

    const client = new ServerClient(found);
    assert.equal(await client.pod(), undefined);
    const pod = await client.ensurePod();
    assert.equal(pod.state, "ready");
    assert.equal(pod.provider, "local");
    assert.equal(typeof pod.ready_ms, "number");
    assert.equal((await client.pod())?.pod_id, pod.pod_id);
    assert.deepEqual(await client.executions(), []);
    await client.stopPod();
    assert.equal(await client.pod(), undefined);

    const stranger = new ServerClient({ url: found.url, token: "not-a-token" });
    await assert.rejects(stranger.ensurePod(), (error: unknown) => {
      assert.ok(error instanceof ServerError);
      assert.equal(error.status, 401);
      assert.match(error.message, /^PUT http:\/\/127\.0\.0\.1:\d+\/api\/v1\/pods\/me: 401 /);
      return true;
    });

    await server.stop();
    assert.equal(server.running, false);
    assert.equal(fs.existsSync(discoveryPath(folder)), false);
    await assert.rejects(client.pod(), (error: unknown) => error instanceof ServerError && error.status === undefined);
  });

  it("reports a server that exits before it is ready, with its last words", async () => {
    const env = { ...process.env, CANOPY_POD_MAX_SESSIONS: "many" } as Record<string, string>;
    await assert.rejects(server.start(canopy, folder, { ...env }), /the local server exited \(code \d+\):.*CANOPY_POD_MAX_SESSIONS/s);
    assert.equal(server.running, false);
  });
});

/** Wait up to five seconds for the collected output to match `pattern`. */
async function outputMatches(output: () => string, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!pattern.test(output()) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.match(output(), pattern);
}
