// Writes the debugger's launch/attach configuration attributes in package.json from
// ../schemas/launch.schema.json, the schema the debug adapter validates against, so the editor
// completes and checks exactly what the adapter accepts. With --check it changes nothing and
// fails when package.json has drifted from the schema.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const manifestPath = join(here, "..", "package.json");
const schemaPath = join(here, "..", "..", "schemas", "launch.schema.json");

/** The `configurationAttributes` that `schema` means: one entry per request kind. */
export function attributesOf(schema) {
  const attributes = {};
  for (const kind of ["launch", "attach"]) {
    const definition = schema.$defs?.[kind];
    if (definition === undefined) {
      throw new Error(`${schemaPath}: $defs.${kind} is missing`);
    }
    attributes[kind] = {
      required: definition.required ?? [],
      properties: definition.properties ?? {},
    };
  }
  return attributes;
}

function main() {
  const check = process.argv.includes("--check");
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
  const wanted = attributesOf(JSON.parse(readFileSync(schemaPath, "utf8")));
  const debuggers = manifest.contributes.debuggers.filter((d) => d.type === "canopy");
  if (debuggers.length !== 1) {
    throw new Error(`${manifestPath}: expected one debugger of type "canopy"`);
  }
  const [contribution] = debuggers;
  if (isDeepStrictEqual(contribution.configurationAttributes, wanted)) {
    console.log("configuration attributes match schemas/launch.schema.json");
    return;
  }
  if (check) {
    console.error(
      `${manifestPath}: contributes.debuggers[canopy].configurationAttributes differ from ` +
        `schemas/launch.schema.json; run 'npm run attributes' in vscode-extension/`,
    );
    process.exit(1);
  }
  contribution.configurationAttributes = wanted;
  writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + "\n");
  console.log("configuration attributes written from schemas/launch.schema.json");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main();
}
