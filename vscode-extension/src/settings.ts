/** The extension's settings, read in one place, and the environment they give Canopy's processes. */
import * as vscode from "vscode";
import type { CommandSettings } from "./canopyCommand";

/** Everything under `canopy.*`, plus the Python extension's interpreter. */
export interface CanopySettings extends CommandSettings {
  serverUrl: string;
  token: string;
  databaseUrl: string;
  pods: "local" | "kubernetes";
}

/** The current settings (of `scope`'s folder when given). */
export function readSettings(scope?: vscode.ConfigurationScope): CanopySettings {
  const canopy = vscode.workspace.getConfiguration("canopy", scope);
  const python = vscode.workspace.getConfiguration("python", scope);
  return {
    path: canopy.get<string>("path", "").trim(),
    pythonPath: canopy.get<string>("pythonPath", "").trim(),
    defaultInterpreterPath: python.get<string>("defaultInterpreterPath", "").trim(),
    serverUrl: canopy.get<string>("serverUrl", "").trim().replace(/\/+$/, ""),
    token: canopy.get<string>("token", "").trim(),
    databaseUrl: canopy.get<string>("databaseUrl", "").trim(),
    pods: canopy.get<"local" | "kubernetes">("pods", "local"),
  };
}
