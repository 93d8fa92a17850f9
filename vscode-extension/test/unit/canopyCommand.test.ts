import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CanopyNotFound, findCanopy } from "../../src/canopyCommand";

/** A folder with executables at the given relative paths (real files, real permission bits). */
function tree(files: string[], mode = 0o755): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "canopy-command-"));
  for (const file of files) {
    const full = path.join(root, file);
    fs.mkdirSync(path.dirname(full), { recursive: true });
    fs.writeFileSync(full, "#!/bin/sh\n");
    fs.chmodSync(full, mode);
  }
  return root;
}

const none = { path: "", pythonPath: "", defaultInterpreterPath: "" };

describe("findCanopy", () => {
  it("prefers the environment of canopy.pythonPath", () => {
    const root = tree(["env/bin/canopy", "env/bin/python", "ws/.venv/bin/canopy", "bin/canopy"]);
    const found = findCanopy(
      { ...none, pythonPath: path.join(root, "env/bin/python") },
      [path.join(root, "ws")],
      path.join(root, "bin"),
    );
    assert.equal(found, path.join(root, "env/bin/canopy"));
  });

  it("uses the Python extension's interpreter when canopy.pythonPath is empty", () => {
    const root = tree(["py/bin/canopy", "ws/.venv/bin/canopy"]);
    const found = findCanopy({ ...none, defaultInterpreterPath: path.join(root, "py/bin/python3") }, [path.join(root, "ws")], "");
    assert.equal(found, path.join(root, "py/bin/canopy"));
  });

  it("finds a workspace .venv before PATH", () => {
    const root = tree(["ws/.venv/bin/canopy", "bin/canopy"]);
    assert.equal(findCanopy(none, [path.join(root, "ws")], path.join(root, "bin")), path.join(root, "ws/.venv/bin/canopy"));
  });

  it("falls back to PATH", () => {
    const root = tree(["a/other", "b/canopy"]);
    const search = [path.join(root, "a"), path.join(root, "b")].join(path.delimiter);
    assert.equal(findCanopy(none, [path.join(root, "ws")], search), path.join(root, "b/canopy"));
  });

  it("skips files that are not executable", () => {
    const root = tree(["ws/.venv/bin/canopy"], 0o644);
    assert.throws(() => findCanopy(none, [path.join(root, "ws")], ""), CanopyNotFound);
  });

  it("names every place it looked when there is no canopy", () => {
    const root = tree([]);
    const error = (() => {
      try {
        findCanopy({ ...none, pythonPath: "/opt/py/bin/python" }, [root], "/nowhere");
      } catch (caught) {
        return caught as CanopyNotFound;
      }
      assert.fail("no error");
    })();
    assert.ok(error instanceof CanopyNotFound);
    assert.match(error.message, /cannot find the `canopy` command/);
    assert.ok(error.looked.includes("/opt/py/bin/canopy"));
    assert.ok(error.looked.includes(path.join(root, ".venv", "bin", "canopy")));
    assert.ok(error.looked.includes(path.join("/nowhere", "canopy")));
    assert.match(error.message, /canopy\.path/);
  });

  it("reports a canopy.path that does not exist instead of falling back", () => {
    const root = tree(["bin/canopy"]);
    assert.throws(
      () => findCanopy({ ...none, path: "/missing/canopy" }, [], path.join(root, "bin")),
      /the command in the setting canopy.path, "\/missing\/canopy", does not exist/,
    );
  });

  it("looks a bare canopy.path up on PATH", () => {
    const root = tree(["bin/canopy-dev"]);
    assert.equal(findCanopy({ ...none, path: "canopy-dev" }, [], path.join(root, "bin")), path.join(root, "bin/canopy-dev"));
  });
});
