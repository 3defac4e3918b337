// Drives a real VS Code (code-server) in headless Chromium as a user would, with the LIFT extension installed and a
// workspace whose .venv holds lift-lsp. Run by tests/test_vscode_e2e.py, which starts code-server and asserts on the
// JSON this script writes. Steps: open stubs.py and hover a function name (the IR); pick "Generate from spec" in the
// lightbulb's menu on another stub's `def` line and save the generated body; open square.py, break its example
// and save (the Problems panel shows lift's LIFT001); click the lightbulb on that line and pick "Update the example to
// the actual result" in the first menu it opens; save again (the problem is gone).
//
// Environment: LIFT_E2E_URL (code-server's URL, with ?folder=...), LIFT_E2E_CHROMIUM (the browser),
// LIFT_E2E_RESULT (where the JSON goes), LIFT_E2E_SHOTS (a folder for screenshots when a step fails).

'use strict';

const fs = require('node:fs');
const path = require('node:path');
const puppeteer = require('puppeteer-core');

const env = process.env;
const results = { steps: [], ok: false };
const STEP_MS = 120000;
const GENERATE_MS = 1800000; // a bound for a hang only: a real model on a busy CPU is slow, and its speed is not tested

function write() {
  fs.writeFileSync(env.LIFT_E2E_RESULT, JSON.stringify(results, null, 1));
}

function step(name, extra = {}) {
  results.steps.push(name);
  Object.assign(results, extra);
  write();
}

async function press(page, chord) {
  const keys = chord.split('+');
  for (const key of keys.slice(0, -1)) await page.keyboard.down(key);
  await page.keyboard.press(keys[keys.length - 1]);
  for (const key of keys.slice(0, -1).reverse()) await page.keyboard.up(key);
}

/** Wait until `fn(...args)` is truthy in the page; its value. */
async function until(page, fn, ...args) {
  return untilWithin(page, STEP_MS, fn, ...args);
}

/** `until`, giving up after `ms`. */
async function untilWithin(page, ms, fn, ...args) {
  const handle = await page.waitForFunction(fn, { timeout: ms, polling: 250 }, ...args);
  return handle.jsonValue();
}

/** The text of the active editor's lines, as rendered. */
function editorText(page) {
  return page.evaluate(() => {
    const lines = [...document.querySelectorAll('.editor-instance .monaco-editor .view-line')];
    return lines
      .map((line) => ({ top: parseFloat(line.style.top), text: line.innerText.replace(/\u00a0/g, ' ') }))
      .sort((a, b) => a.top - b.top)
      .map((line) => line.text)
      .join('\n');
  });
}

/** Quick Open (Ctrl+P) a file of the workspace; wait until its editor shows `needle`. */
async function openFile(page, name, needle) {
  await press(page, 'Control+P');
  await page.waitForSelector('.quick-input-widget .quick-input-box input', { visible: true, timeout: STEP_MS });
  await page.keyboard.type(name);
  await until(
    page,
    (wanted) => [...document.querySelectorAll('.quick-input-list .monaco-list-row')].some((r) => r.innerText.includes(wanted)),
    name,
  );
  await page.keyboard.press('Enter');
  await until(
    page,
    (text) => [...document.querySelectorAll('.editor-instance .view-line')].some((l) => l.innerText.replace(/\u00a0/g, ' ').includes(text)),
    needle,
  );
}

/** Ctrl+G to a 1-based line (and column). */
async function goToLine(page, line, column = 1) {
  await press(page, 'Control+G');
  await page.waitForSelector('.quick-input-widget .quick-input-box input', { visible: true, timeout: STEP_MS });
  await page.keyboard.type(`${line}:${column}`);
  await page.keyboard.press('Enter');
  await page.waitForSelector('.quick-input-widget', { hidden: true, timeout: STEP_MS });
}

/** The rows of the Problems panel (opened with Ctrl+Shift+M). */
async function problems(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('.markers-panel .monaco-list-row')].map((row) => row.innerText.replace(/\s+/g, ' ')),
  );
}

/** The lightbulb the editor shows (a hidden one stays in the page, without this attribute). */
const SHOWN_BULB = '.editor-instance .lightBulbWidget[monaco-visible-content-widget="true"]';

/** Click the lightbulb of `line` and then the menu row titled `title`; the rows offered go in the results. VS Code
 * keeps a lightbulb, and the actions it got for the line it was on, until the actions for the cursor's new line have
 * come: so the cursor first goes to `emptyLine`, where lift offers no action, until no bulb is shown; the bulb shown
 * after the cursor has come to `line` is then that line's. That first menu must hold `title`. */
async function pickQuickFix(page, line, emptyLine, title) {
  await goToLine(page, emptyLine, 1);
  await until(page, (shown) => !document.querySelector(shown), SHOWN_BULB);
  await goToLine(page, line, 5);
  const bulb = await until(page, (shown) => {
    const widget = document.querySelector(shown);
    const box = widget?.getBoundingClientRect();
    return box && box.width > 0 ? { x: box.x + box.width / 2, y: box.y + box.height / 2 } : null;
  }, SHOWN_BULB);
  await page.mouse.click(bulb.x, bulb.y);
  const offered = await until(page, () => {
    const rows = [...document.querySelectorAll('.action-widget .monaco-list-row')].map((r) => r.innerText.trim());
    return rows.length > 0 ? rows : null;
  });
  step('lightbulb', { offered });
  if (!offered.some((row) => row.includes(title))) {
    throw new Error(`the lightbulb's menu has no "${title}": ${JSON.stringify(offered)}`);
  }
  const findRow = (wanted) => {
    for (const r of document.querySelectorAll('.action-widget .monaco-list-row')) {
      if (r.innerText.includes(wanted)) {
        const box = r.getBoundingClientRect();
        return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
      }
    }
    return null;
  };
  const row = await until(page, findRow, title);
  await page.mouse.move(row.x, row.y);
  const settled = await until(page, findRow, title); // where it is once the pointer is on it
  await page.mouse.click(settled.x, settled.y);
}

async function main() {
  const browser = await puppeteer.launch({
    executablePath: env.LIFT_E2E_CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--window-size=1400,1000'],
    defaultViewport: { width: 1400, height: 1000 },
    protocolTimeout: GENERATE_MS + STEP_MS, // a wait is one call to the browser: the generation's may be long
  });
  const page = await browser.newPage();
  try {
    await run(page);
    results.ok = true;
  } catch (err) {
    results.error = String(err && err.stack ? err.stack : err);
    if (env.LIFT_E2E_SHOTS) {
      await page.screenshot({ path: path.join(env.LIFT_E2E_SHOTS, 'failure.png') }).catch(() => undefined);
    }
  } finally {
    write();
    await browser.close();
  }
}

async function run(page) {
  await page.goto(env.LIFT_E2E_URL, { waitUntil: 'domcontentloaded', timeout: STEP_MS });
  await page.waitForSelector('.monaco-workbench .part.editor', { timeout: STEP_MS });
  step('workbench');

  // 1. Hover the name of a function: the extension started lift-lsp, whose hover is the function's IR.
  await openFile(page, 'stubs.py', 'def running_max');
  step('opened stubs.py');
  const name = await until(page, () => {
    for (const span of document.querySelectorAll('.editor-instance .view-line span span')) {
      if (span.textContent === 'running_max') {
        const box = span.getBoundingClientRect();
        return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
      }
    }
    return null;
  });
  // The first hover may come before the server is up (VS Code then shows nothing): move away and back until it shows.
  let hover = null;
  for (let attempt = 0; hover === null && attempt < 40; attempt += 1) {
    await page.mouse.move(name.x, name.y + 200);
    await page.mouse.move(name.x, name.y, { steps: 5 });
    hover = await page
      .waitForFunction(
        () => {
          const shown = [...document.querySelectorAll('.monaco-hover .hover-contents, .monaco-hover .rendered-markdown')];
          const text = shown.map((h) => h.innerText).join('\n');
          return text.includes('running_max(values') ? text : null;
        },
        { timeout: 3000, polling: 250 },
      )
      .then((handle) => handle.jsonValue())
      .catch(() => null);
  }
  if (hover === null) throw new Error('no hover with the IR of running_max');
  step('hover', { hover });

  // 2. Generate a stub's body: "Generate from spec" from the first menu of the lightbulb on `larger`'s `def` line;
  // the model behind the server writes it, VS Code applies the server's edit; saved, so the test can run its
  // examples. A notification that the generation failed ends the wait too, and is reported.
  const stub = (await editorText(page)).split('\n');
  const defLine = stub.findIndex((line) => line.startsWith('def larger')) + 1;
  const stubs = stub.filter((line) => line.trim() === '...').length;
  await pickQuickFix(page, defLine, stub.length, 'Generate from spec');
  step('generate picked', { offered_generate: results.offered });
  const outcome = await untilWithin(page, GENERATE_MS, (before) => {
    const lines = [...document.querySelectorAll('.editor-instance .view-line')].map((l) => l.innerText.trim());
    const toasts = [...document.querySelectorAll('.notifications-toasts .notification-list-item-message')];
    const said = toasts.map((t) => t.innerText.trim()).filter((t) => t.includes('LIFT') || t.includes('lift-lsp'));
    if (said.length > 0) return { said };
    return lines.length > 0 && lines.filter((line) => line === '...').length < before ? { said: [] } : null;
  }, stubs);
  if (outcome.said.length > 0) throw new Error(`the generation did not apply: ${JSON.stringify(outcome.said)}`);
  await press(page, 'Control+S');
  step('generated', { generated: await editorText(page) });

  // 3. Break the example of square.py and save: lift's diagnostic in the Problems panel.
  await openFile(page, 'square.py', '>>> sq(3)');
  const before = await editorText(page);
  const wantLine = before.split('\n').indexOf('    9') + 1;
  if (wantLine === 0) throw new Error(`no want line "    9" in square.py:\n${before}`);
  await goToLine(page, wantLine, 6);
  await page.keyboard.press('Backspace');
  await page.keyboard.type('6');
  await press(page, 'Control+S');
  step('saved a wrong example', { edited: await editorText(page) });
  await press(page, 'Control+Shift+M');
  const problem = await until(page, () => {
    const rows = [...document.querySelectorAll('.markers-panel .monaco-list-row')].map((r) => r.innerText.replace(/\s+/g, ' '));
    return rows.find((row) => row.includes('LIFT001')) ?? null;
  });
  step('problem', { problem, problemsAfterSave: await problems(page) });

  // 4. The lightbulb on the example's line: its quick fix, picked with the mouse from the first menu it opens.
  const lastLine = before.split('\n').length; // empty: no function there
  await pickQuickFix(page, wantLine - 1, lastLine, 'Update the example to the actual result');
  await until(page, () => {
    const lines = [...document.querySelectorAll('.editor-instance .view-line')].map((l) => l.innerText.replace(/\u00a0/g, ' '));
    return lines.includes('    9');
  });
  const fixed = await editorText(page);
  await press(page, 'Control+S');
  step('fixed', { fixed });

  // 5. After the save, lift's problem is gone.
  await until(page, () => {
    const panel = document.querySelector('.markers-panel');
    if (!panel) return false;
    return ![...panel.querySelectorAll('.monaco-list-row')].some((r) => r.innerText.includes('LIFT001'));
  });
  step('problem gone', { problemsAfterFix: await problems(page) });
}

main();
