import * as assert from "node:assert/strict";
import { canopyEnvironment } from "../../src/environment";

describe("canopyEnvironment", () => {
  it("passes the settings and the server as CANOPY_* variables", () => {
    const env = canopyEnvironment(
      { databaseUrl: "postgresql://db/canopy", pods: "kubernetes" },
      { url: "http://127.0.0.1:9000", token: "secret" },
      { PATH: "/bin", HOME: "/home/me" },
    );
    assert.deepEqual(env, {
      PATH: "/bin",
      HOME: "/home/me",
      CANOPY_DATABASE_URL: "postgresql://db/canopy",
      CANOPY_PODS: "kubernetes",
      CANOPY_URL: "http://127.0.0.1:9000",
      CANOPY_TOKEN: "secret",
    });
  });

  it("leaves the database and server to Canopy's own defaults when unset", () => {
    const env = canopyEnvironment({ databaseUrl: "", pods: "local" }, undefined, { PATH: "/bin", CANOPY_URL: "x", UNSET: undefined });
    assert.deepEqual(env, { PATH: "/bin", CANOPY_URL: "x", CANOPY_PODS: "local" });
  });
});
