// The VS Code client of lift-lsp: starts the server over stdio for Python files, passes the `lift.*` settings the
// user has set as initializationOptions and on change (unset ones are left to the server's defaults), and gives the
// server's commands a palette entry and a result view. The server is found as `resolveServerCommand` says, first
// beside the interpreter selected in the Python extension (its public API) when that extension is installed.
// Workspace Trust: a trusted workspace is sent as `sandbox.trustAll` (examples and module code run on open and save);
// in Restricted Mode the server runs no code of the workspace (not even its own .venv's lift-lsp), and granting trust
// restarts it.
//
// The server registers `lift.generate` and `lift.showIr` (executeCommand); vscode-languageclient turns them into
// VS Code commands. The middleware below fills in their arguments when they are run from the palette (from the
// code actions the server offers at the cursor) and shows what `lift.showIr` returns. Work-done progress of a
// generation (with its cancel button) is shown by the client library.

import * as fs from 'node:fs';
import * as os from 'node:os';
import { PythonExtension } from '@vscode/python-extension';
import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  TransportKind,
} from 'vscode-languageclient/node';

import { SECTION, explicitValue, resolveServerCommand, serverSettingKeys, toInitializationOptions } from './settings';

const GENERATE = 'lift.generate';
const SHOW_IR = 'lift.showIr';

interface IrEntry {
  function: string;
  line: number;
  ir: unknown;
  markdown: string;
}

let client: LanguageClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel('LIFT', { log: true });
  const properties = (context.extension.packageJSON as { contributes: { configuration: { properties: Record<string, unknown> } } })
    .contributes.configuration.properties;
  const keys = serverSettingKeys(properties);
  const settings = () => {
    const config = vscode.workspace.getConfiguration(SECTION);
    const options = toInitializationOptions(keys, (key) => explicitValue(config.inspect(key)));
    if (vscode.workspace.isTrusted) {
      (options.sandbox ??= {}).trustAll = true; // Workspace Trust: examples and module code may run on open and save
    }
    return options;
  };

  const start = async (): Promise<void> => {
    const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
    const trusted = vscode.workspace.isTrusted; // an untrusted workspace's own .venv/bin/lift-lsp is not run
    const { command, source } = resolveServerCommand({
      serverPath: vscode.workspace.getConfiguration(SECTION).get<string>('serverPath', ''),
      workspaceFolders: trusted ? folders : [],
      interpreter: trusted ? await selectedInterpreter() : undefined,
      home: os.homedir(),
      searchPath: process.env.PATH ?? '',
      exists: (file) => fs.existsSync(file),
    });
    output.info(`starting ${command} (${source})`);
    const serverOptions: ServerOptions = { command, args: [], transport: TransportKind.stdio, options: { cwd: folders[0] } };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ language: 'python' }],
      initializationOptions: settings(),
      outputChannel: output,
      middleware: { executeCommand: (cmd, args, next) => runCommand(cmd, args, next) },
    };
    client = new LanguageClient('lift', 'LIFT', serverOptions, clientOptions);
    try {
      await client.start();
    } catch (err) {
      void vscode.window.showErrorMessage(
        `LIFT: could not start ${command} (${String(err)}). Install lift-lsp (see the README: pipx or uv tool),` +
          ' select an interpreter that has it, or set lift.serverPath.',
      );
    }
  };
  const stop = async (): Promise<void> => {
    const running = client;
    client = undefined;
    if (running !== undefined) {
      await running.stop().catch(() => undefined);
      running.dispose();
    }
  };

  context.subscriptions.push(
    output,
    vscode.commands.registerCommand('lift.restartServer', async () => {
      await stop();
      await start();
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(async () => {
      await stop(); // restarted: the workspace's .venv server may now be taken, and checks that run code turn on
      await start();
    }),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (!event.affectsConfiguration(SECTION)) {
        return;
      }
      if (event.affectsConfiguration(`${SECTION}.serverPath`)) {
        await stop();
        await start();
      } else if (client?.isRunning()) {
        await client.sendNotification(DidChangeConfigurationNotification.type, { settings: { [SECTION]: settings() } });
      }
    }),
    { dispose: () => void stop() },
  );
  const python = await pythonApi();
  if (python !== undefined) {
    context.subscriptions.push(
      python.environments.onDidChangeActiveEnvironmentPath(async () => {
        await stop();
        await start();
      }),
    );
  }
  await start();
}

/** The Python extension's API, when that extension is installed and enabled. */
async function pythonApi(): Promise<PythonExtension | undefined> {
  if (vscode.extensions.getExtension('ms-python.python') === undefined) {
    return undefined;
  }
  try {
    return await PythonExtension.api();
  } catch {
    return undefined;
  }
}

/** The executable of the interpreter selected in the Python extension for the workspace. */
async function selectedInterpreter(): Promise<string | undefined> {
  const python = await pythonApi();
  if (python === undefined) {
    return undefined;
  }
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  try {
    const active = python.environments.getActiveEnvironmentPath(folder);
    return (await python.environments.resolveEnvironment(active))?.executable.uri?.fsPath;
  } catch {
    return undefined; // an environment it cannot resolve: look elsewhere
  }
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}

async function runCommand(command: string, args: unknown[], next: (command: string, args: unknown[]) => unknown): Promise<unknown> {
  if (args.length === 0 && (command === GENERATE || command === SHOW_IR)) {
    const found = await argumentsAtCursor(command);
    if (found === undefined) {
      return undefined;
    }
    args = found;
  }
  const result = await next(command, args);
  if (command === SHOW_IR) {
    await showIr(result as IrEntry[] | null);
  } else if (command === GENERATE) {
    const outcome = result as { ok?: boolean; message?: string } | null;
    if (outcome?.ok) {
      vscode.window.setStatusBarMessage(`LIFT: ${outcome.message ?? 'generated'}`, 8000);
    }
  }
  return result;
}

/** The arguments of the server's own code action for `command` at the cursor (the server knows the function). */
async function argumentsAtCursor(command: string): Promise<unknown[] | undefined> {
  const editor = vscode.window.activeTextEditor;
  if (editor === undefined || editor.document.languageId !== 'python') {
    void vscode.window.showWarningMessage('LIFT: open a Python file and place the cursor in a function.');
    return undefined;
  }
  const actions =
    (await vscode.commands.executeCommand<(vscode.CodeAction | vscode.Command)[]>(
      'vscode.executeCodeActionProvider',
      editor.document.uri,
      editor.selection,
    )) ?? [];
  for (const action of actions) {
    // A Command has a string `command`; a CodeAction may carry a Command object.
    const isCommand = typeof (action as vscode.Command).command === 'string';
    const invoked = isCommand ? (action as vscode.Command) : (action as vscode.CodeAction).command;
    if (invoked?.command !== command) {
      continue;
    }
    const disabled = isCommand ? undefined : (action as vscode.CodeAction).disabled;
    if (disabled !== undefined) {
      void vscode.window.showWarningMessage(`LIFT: ${disabled.reason}`);
      return undefined;
    }
    return invoked.arguments ?? [];
  }
  if (command === SHOW_IR) {
    return [editor.document.uri.toString()]; // no function at the cursor: every function of the file
  }
  void vscode.window.showWarningMessage('LIFT: place the cursor in a stub function that has a spec.');
  return undefined;
}

async function showIr(entries: IrEntry[] | null): Promise<void> {
  if (!entries || entries.length === 0) {
    void vscode.window.showInformationMessage('LIFT: no function here.');
    return;
  }
  const parts = entries.map(
    (e) => `## \`${e.function}\` (line ${e.line})\n\n${e.markdown}\n\n\`\`\`json\n${JSON.stringify(e.ir, null, 2)}\n\`\`\`\n`,
  );
  const document = await vscode.workspace.openTextDocument({ language: 'markdown', content: parts.join('\n') });
  await vscode.window.showTextDocument(document, { viewColumn: vscode.ViewColumn.Beside, preview: true });
}
