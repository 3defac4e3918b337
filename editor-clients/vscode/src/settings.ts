// Pure helpers (no `vscode` import, so node's test runner can load them): the extension's `lift.*` settings
// mapped to lift-lsp's nested initializationOptions, and the choice of the server executable.

import * as path from 'node:path';

/** Settings that configure the client itself; the server never sees them. */
export const CLIENT_ONLY_SETTINGS: readonly string[] = ['lift.serverPath', 'lift.trace.server'];

export const SECTION = 'lift';

/** A nested settings object as lift-lsp's `parse_options` takes it: `{backend: {kind: ...}, generation: {...}}`. */
export type ServerOptionsObject = Record<string, Record<string, unknown>>;

/**
 * The server settings' keys (`backend.kind`, ...) from the `contributes.configuration.properties` of the
 * extension's package.json, which lists every setting of `lift_lsp.options.settings_table()` as `lift.<key>`.
 */
export function serverSettingKeys(properties: Record<string, unknown>): string[] {
  const prefix = `${SECTION}.`;
  return Object.keys(properties)
    .filter((name) => name.startsWith(prefix) && !CLIENT_ONLY_SETTINGS.includes(name))
    .map((name) => name.slice(prefix.length));
}

/**
 * Nest dotted keys into sections: `get("backend.kind")` lands in `{backend: {kind}}`. Keys whose value is
 * `undefined` are left out, so the server applies its own default; `null` is kept (e.g. `generation.seed`).
 */
export function toInitializationOptions(
  keys: readonly string[],
  get: (key: string) => unknown,
): ServerOptionsObject {
  const options: ServerOptionsObject = {};
  for (const key of keys) {
    const dot = key.indexOf('.');
    if (dot <= 0 || dot === key.length - 1) {
      throw new Error(`setting key '${key}' is not of the form section.name`);
    }
    const value = get(key);
    if (value === undefined) {
      continue;
    }
    const section = key.slice(0, dot);
    const name = key.slice(dot + 1);
    (options[section] ??= {})[name] = value;
  }
  return options;
}

/** What `WorkspaceConfiguration.inspect(key)` returns (the parts used here). */
export interface InspectedSetting {
  defaultValue?: unknown;
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

/**
 * The value the user set (folder over workspace over user settings), or `undefined` when only the default
 * applies: unset settings are not sent, so the server's own defaults (and its notion of "not set", e.g. the
 * `modal` backend's EBNF default for `backend.constraintFormat`) stay in force.
 */
export function explicitValue(inspected: InspectedSetting | undefined): unknown {
  if (inspected === undefined) {
    return undefined;
  }
  return inspected.workspaceFolderValue ?? inspected.workspaceValue ?? inspected.globalValue;
}

/** The defaults declared in package.json, as a `get` function for `toInitializationOptions`. */
export function packageDefaults(properties: Record<string, unknown>): (key: string) => unknown {
  return (key: string) => {
    const property = properties[`${SECTION}.${key}`];
    if (typeof property !== 'object' || property === null || !('default' in property)) {
      return undefined;
    }
    return (property as { default: unknown }).default;
  };
}

/**
 * Which executable to start: `lift.serverPath` when set (`${workspaceFolder}` is expanded; a relative path is taken
 * from the first workspace folder; a bare name is looked up on PATH), else the first workspace folder's `.venv`
 * that has `lift-lsp`, else `lift-lsp` on PATH.
 */
export function resolveServerCommand(
  serverPath: string,
  workspaceFolders: readonly string[],
  exists: (file: string) => boolean,
  platform: string = process.platform,
): string {
  let configured = serverPath.trim();
  if (configured) {
    if (workspaceFolders.length === 0) {
      return configured;
    }
    configured = configured.split('${workspaceFolder}').join(workspaceFolders[0]);
    const bareName = !configured.includes('/') && !configured.includes('\\');
    if (path.isAbsolute(configured) || bareName) {
      return configured;
    }
    return path.join(workspaceFolders[0], configured);
  }
  const venvBin = platform === 'win32' ? path.join('.venv', 'Scripts', 'lift-lsp.exe') : path.join('.venv', 'bin', 'lift-lsp');
  for (const folder of workspaceFolders) {
    const candidate = path.join(folder, venvBin);
    if (exists(candidate)) {
      return candidate;
    }
  }
  return 'lift-lsp';
}
