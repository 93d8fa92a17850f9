/**
 * The environment of the processes the extension starts (the debug adapter, the local server).
 * Settings travel as Canopy's own `CANOPY_*` variables rather than as arguments, so a token
 * never shows in a process listing and every Canopy command reads them the same way.
 */
export interface EnvironmentSettings {
  databaseUrl: string;
  pods: string;
}

/** A server to talk to: where it is and the token to present. */
export interface Endpoint {
  url: string;
  token: string;
}

/** `base` plus the `CANOPY_*` variables that `settings` and `endpoint` set. */
export function canopyEnvironment(
  settings: EnvironmentSettings,
  endpoint: Endpoint | undefined,
  base: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(base)) {
    if (value !== undefined) {
      env[key] = value;
    }
  }
  if (settings.databaseUrl !== "") {
    env.CANOPY_DATABASE_URL = settings.databaseUrl;
  }
  env.CANOPY_PODS = settings.pods;
  if (endpoint !== undefined) {
    env.CANOPY_URL = endpoint.url;
    env.CANOPY_TOKEN = endpoint.token;
  }
  return env;
}
