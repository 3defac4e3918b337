// Unit tests of the pure settings module, run with node's built-in test runner on the compiled JS.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import {
  CLIENT_ONLY_SETTINGS,
  explicitValue,
  packageDefaults,
  resolveServerCommand,
  type ServerSearch,
  serverSettingKeys,
  toInitializationOptions,
} from '../settings';

const packageJson = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
  contributes: { configuration: { properties: Record<string, { default?: unknown }> } };
};
const properties = packageJson.contributes.configuration.properties;

test('server keys are the lift.* properties less the client-only ones', () => {
  const keys = serverSettingKeys(properties);
  assert.ok(keys.includes('backend.kind'));
  assert.ok(keys.includes('generation.maxTokensIr'));
  for (const clientOnly of CLIENT_ONLY_SETTINGS) {
    assert.ok(clientOnly in properties, `${clientOnly} is declared in package.json`);
    assert.ok(!keys.includes(clientOnly.slice('lift.'.length)));
  }
  assert.equal(keys.length, Object.keys(properties).length - CLIENT_ONLY_SETTINGS.length);
});

test('package defaults nest into one object per section', () => {
  const keys = serverSettingKeys(properties);
  const options = toInitializationOptions(keys, packageDefaults(properties));
  assert.deepEqual(Object.keys(options).sort(), ['backend', 'contracts', 'diagnostics', 'generation', 'hover', 'python', 'sandbox']);
  assert.equal(options.backend.kind, 'none');
  assert.equal(options.backend.constraintFormat, 'json_schema');
  assert.equal(options.generation.maxTokensIr, 1024);
  assert.equal(options.generation.seed, null); // null is a value (no seed), not a missing setting
  assert.equal(options.hover.enabled, true);
  const count = Object.values(options).reduce((n, section) => n + Object.keys(section).length, 0);
  assert.equal(count, keys.length);
});

test('given values are nested, undefined ones are left to the server', () => {
  const values: Record<string, unknown> = {
    'backend.kind': 'modal',
    'backend.url': 'https://ws--lift-sglang-serve.modal.run/v1',
    'backend.constraintFormat': 'ebnf',
    'generation.candidates': 4,
    'sandbox.workers': undefined,
  };
  const options = toInitializationOptions(Object.keys(values), (key) => values[key]);
  assert.deepEqual(options, {
    backend: { kind: 'modal', url: 'https://ws--lift-sglang-serve.modal.run/v1', constraintFormat: 'ebnf' },
    generation: { candidates: 4 },
  });
});

test('only values the user set are sent, the most specific scope first', () => {
  assert.equal(explicitValue(undefined), undefined);
  assert.equal(explicitValue({ defaultValue: 'json_schema' }), undefined);
  assert.equal(explicitValue({ defaultValue: 'json_schema', globalValue: 'ebnf' }), 'ebnf');
  assert.equal(explicitValue({ globalValue: 'a', workspaceValue: 'b' }), 'b');
  assert.equal(explicitValue({ globalValue: 'a', workspaceValue: 'b', workspaceFolderValue: 'c' }), 'c');
  assert.equal(explicitValue({ globalValue: false }), false); // a falsy value the user set is still sent
  const inspected: Record<string, { defaultValue: unknown; globalValue?: unknown }> = {
    'backend.kind': { defaultValue: 'none', globalValue: 'modal' },
    'backend.constraintFormat': { defaultValue: 'json_schema' },
    'hover.enabled': { defaultValue: true },
  };
  const options = toInitializationOptions(Object.keys(inspected), (key) => explicitValue(inspected[key]));
  assert.deepEqual(options, { backend: { kind: 'modal' } });
});

test('a key without a section is refused', () => {
  assert.throws(() => toInitializationOptions(['kind'], () => 'x'), /section\.name/);
  assert.throws(() => toInitializationOptions(['backend.'], () => 'x'), /section\.name/);
});

test('server command: setting, then the Python extension\'s interpreter, then .venv, PATH, ~/.local/bin', () => {
  const venv = path.join('/ws', '.venv', 'bin', 'lift-lsp');
  const search = (files: string[], more: Partial<ServerSearch> = {}): ServerSearch => ({
    serverPath: '',
    workspaceFolders: ['/ws'],
    home: '/home/u',
    searchPath: '/usr/local/bin:/usr/bin',
    exists: (file: string) => files.includes(file),
    platform: 'linux',
    ...more,
  });
  const command = (files: string[], more: Partial<ServerSearch> = {}) => resolveServerCommand(search(files, more)).command;
  assert.equal(command([venv], { serverPath: '/opt/lift/bin/lift-lsp' }), '/opt/lift/bin/lift-lsp');
  assert.equal(command([], { serverPath: 'tools/lift-lsp' }), '/ws/tools/lift-lsp');
  assert.equal(command([], { serverPath: '${workspaceFolder}/env/bin/lift-lsp' }), '/ws/env/bin/lift-lsp');
  assert.equal(command([], { serverPath: '~/.local/bin/lift-lsp' }), '/home/u/.local/bin/lift-lsp'); // not /ws/~/...
  assert.equal(command([], { serverPath: '${userHome}/bin/lift-lsp' }), '/home/u/bin/lift-lsp');
  assert.equal(command([], { serverPath: '~' }), '/home/u');
  assert.equal(command([], { serverPath: '~user/lift-lsp' }), '/ws/~user/lift-lsp'); // only the user's own `~`
  assert.equal(command([], { serverPath: 'my-lift-lsp' }), 'my-lift-lsp');
  // The interpreter selected in the Python extension wins over .venv when lift-lsp is installed beside it.
  const selected = '/home/u/envs/proj/bin/python3';
  assert.equal(command([venv, '/home/u/envs/proj/bin/lift-lsp'], { interpreter: selected }), '/home/u/envs/proj/bin/lift-lsp');
  assert.deepEqual(resolveServerCommand(search([venv], { interpreter: selected })), {
    command: venv,
    source: "the workspace's .venv",
  }); // selected, but lift-lsp is not installed there
  assert.equal(command([venv], { workspaceFolders: ['/a', '/ws'] }), venv);
  assert.equal(command(['/usr/bin/lift-lsp', '/home/u/.local/bin/lift-lsp']), '/usr/bin/lift-lsp');
  assert.equal(command(['/home/u/.local/bin/lift-lsp']), '/home/u/.local/bin/lift-lsp');
  assert.deepEqual(resolveServerCommand(search([])), { command: 'lift-lsp', source: 'not found: PATH' });
  assert.equal(command([], { serverPath: '  ', workspaceFolders: [] }), 'lift-lsp');
  const winVenv = path.win32.join('C:\\ws', '.venv', 'Scripts', 'lift-lsp.exe');
  assert.equal(command([winVenv], { workspaceFolders: ['C:\\ws'], platform: 'win32', searchPath: '' }), winVenv);
});
