import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { discoveryPath, parseDiscovery, readDiscovery } from "../../src/discovery";

describe("discovery", () => {
  const valid = { url: "http://127.0.0.1:8470", token: "t", pid: process.pid, version: "0.1.0" };

  it("parses what canopy serve writes", () => {
    assert.deepEqual(parseDiscovery(JSON.stringify(valid)), valid);
  });

  it("rejects half-written or foreign files", () => {
    assert.equal(parseDiscovery('{"url": "http://x", "tok'), undefined);
    assert.equal(parseDiscovery("[]"), undefined);
    assert.equal(parseDiscovery(JSON.stringify({ ...valid, pid: "12" })), undefined);
    assert.equal(parseDiscovery(JSON.stringify({ ...valid, token: undefined })), undefined);
  });

  it("ignores a file whose server process is gone", () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), "canopy-discovery-"));
    fs.mkdirSync(path.dirname(discoveryPath(folder)));
    fs.writeFileSync(discoveryPath(folder), JSON.stringify(valid));
    assert.deepEqual(readDiscovery(folder), valid);
    assert.equal(readDiscovery(folder, () => false), undefined);
    assert.equal(readDiscovery(path.join(folder, "elsewhere")), undefined);
  });
});
