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

/** Where to look for lift-lsp. */
export interface ServerSearch {
  /** `lift.serverPath` (empty: search). */
  serverPath: string;
  workspaceFolders: readonly string[];
  /** The interpreter selected in the Python extension (its executable), when that extension is present. */
  interpreter?: string;
  home: string;
  /** `PATH`. */
  searchPath: string;
  exists: (file: string) => boolean;
  platform?: string;
}

/** The executable to start and where it was found (for the log and the error message). */
export interface ServerCommand {
  command: string;
  source: string;
}

/**
 * Which lift-lsp to start:
 * 1. `lift.serverPath` when set (`~`, `${userHome}` and `${workspaceFolder}` are expanded; a relative path is taken
 *    from the first workspace folder; a bare name is looked up on PATH);
 * 2. beside the interpreter selected in the Python extension (the environment it is installed in);
 * 3. the first workspace folder's `.venv` that has it;
 * 4. on PATH, then in `~/.local/bin` (where `pipx install` and `uv tool install` put it).
 */
export function resolveServerCommand(search: ServerSearch): ServerCommand {
  const { workspaceFolders, home, exists } = search;
  const platform = search.platform ?? process.platform;
  const paths = platform === 'win32' ? path.win32 : path.posix;
  const executable = platform === 'win32' ? 'lift-lsp.exe' : 'lift-lsp';
  const configured = search.serverPath.trim();
  if (configured) {
    let expanded = configured.replace(/^~(?=$|[\\/])/, home).split('${userHome}').join(home);
    if (workspaceFolders.length > 0) {
      expanded = expanded.split('${workspaceFolder}').join(workspaceFolders[0]);
    }
    const bareName = !expanded.includes('/') && !expanded.includes('\\');
    if (paths.isAbsolute(expanded) || bareName || workspaceFolders.length === 0) {
      return { command: expanded, source: 'lift.serverPath' };
    }
    return { command: paths.join(workspaceFolders[0], expanded), source: 'lift.serverPath' };
  }
  if (search.interpreter) {
    const beside = paths.join(paths.dirname(search.interpreter), executable);
    if (exists(beside)) {
      return { command: beside, source: "the Python extension's selected interpreter" };
    }
  }
  const venvBin = platform === 'win32' ? paths.join('.venv', 'Scripts', executable) : paths.join('.venv', 'bin', executable);
  for (const folder of workspaceFolders) {
    const candidate = paths.join(folder, venvBin);
    if (exists(candidate)) {
      return { command: candidate, source: "the workspace's .venv" };
    }
  }
  const delimiter = platform === 'win32' ? ';' : ':';
  for (const dir of search.searchPath.split(delimiter).filter((d) => d !== '')) {
    if (exists(paths.join(dir, executable))) {
      return { command: paths.join(dir, executable), source: 'PATH' };
    }
  }
  const toolBin = paths.join(home, '.local', 'bin', executable);
  if (exists(toolBin)) {
    return { command: toolBin, source: '~/.local/bin (pipx, uv tool)' };
  }
  return { command: 'lift-lsp', source: 'not found: PATH' };
}
