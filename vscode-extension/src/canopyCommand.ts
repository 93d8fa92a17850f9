/**
 * Finding the `canopy` command in the user's Python environment.
 *
 * The debug adapter and the local server are the Python package's own commands, so the
 * extension must run the `canopy` of the environment the user develops in — not whatever is
 * first on the editor's PATH, which is often a different interpreter or none at all.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** The settings that say where Canopy is installed. */
export interface CommandSettings {
  /** `canopy.path`: the command itself. */
  path: string;
  /** `canopy.pythonPath`: an interpreter whose environment has Canopy. */
  pythonPath: string;
  /** The Python extension's `python.defaultInterpreterPath`. */
  defaultInterpreterPath: string;
}

/** No `canopy` was found; `looked` lists every place tried, for the message. */
export class CanopyNotFound extends Error {
  constructor(
    readonly looked: string[],
    reason?: string,
  ) {
    super(
      reason ??
        "Canopy: cannot find the `canopy` command. Install Canopy in your project's Python " +
          "environment (`pip install -e .` in the Canopy checkout, or `pip install canopy`), " +
          "or set `canopy.path` or `canopy.pythonPath`. Looked in: " +
          looked.join(", "),
    );
  }
}

const executableNames = process.platform === "win32" ? ["canopy.exe", "canopy.cmd"] : ["canopy"];
const binFolder = process.platform === "win32" ? "Scripts" : "bin";

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Where an interpreter's environment keeps its console scripts (`.venv/bin/python` → `.venv/bin`). */
function scriptsOf(python: string): string[] {
  return executableNames.map((name) => path.join(path.dirname(python), name));
}

/**
 * The absolute path of the `canopy` command to run, in this order: `canopy.path`; the
 * environment of `canopy.pythonPath`, then of `python.defaultInterpreterPath`; a `.venv` or
 * `venv` in a workspace folder; `PATH`. An explicit `canopy.path` that does not exist is an
 * error of its own rather than a silent fall-back, so a typo is not hidden.
 */
export function findCanopy(
  settings: CommandSettings,
  workspaceFolders: readonly string[],
  searchPath: string = process.env.PATH ?? "",
  executable: (file: string) => boolean = isExecutable,
): string {
  const folders = searchPath.split(path.delimiter).filter((folder) => folder !== "");
  const onPath = folders.flatMap((folder) => executableNames.map((name) => path.join(folder, name)));
  if (settings.path !== "") {
    const candidates = path.isAbsolute(settings.path)
      ? [settings.path]
      : folders.map((folder) => path.join(folder, settings.path));
    const found = candidates.find(executable);
    if (found === undefined) {
      throw new CanopyNotFound(
        [settings.path],
        `Canopy: the command in the setting canopy.path, ${JSON.stringify(settings.path)}, ` +
          "does not exist or is not executable.",
      );
    }
    return found;
  }
  const looked = [
    ...[settings.pythonPath, settings.defaultInterpreterPath]
      .filter((python) => python !== "" && path.isAbsolute(python))
      .flatMap(scriptsOf),
    ...workspaceFolders.flatMap((folder) =>
      [".venv", "venv"].flatMap((env) =>
        executableNames.map((name) => path.join(folder, env, binFolder, name)),
      ),
    ),
    ...onPath,
  ];
  const found = looked.find(executable);
  if (found === undefined) {
    throw new CanopyNotFound(looked.length > 0 ? looked : ["(nowhere: PATH is empty)"]);
  }
  return found;
}
