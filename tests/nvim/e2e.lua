-- Neovim end to end: drives the lift plugin (editor-clients/nvim) against a real lift-lsp, as a user would: hover,
-- "Generate from spec", a wrong example's diagnostic on :write, and its quick fix.
-- Run by tests/test_nvim_e2e.py:  nvim --headless --clean --cmd "set rtp^=editor-clients/nvim" -S tests/nvim/e2e.lua
-- Inputs (environment):
--   LIFT_E2E_CMD       JSON list: the server command
--   LIFT_E2E_SETTINGS  JSON object: the server settings
--   LIFT_E2E_STUB      a file with a stub function (`combine`) to generate
--   LIFT_E2E_STUB_LINE 0-based line of `def combine`
--   LIFT_E2E_CHECK     a file whose docstring example is wrong (diagnostics on save)
--   LIFT_E2E_BUFFER_OUT where the stub buffer's text is written after the generation
--   LIFT_E2E_FIXES     JSON list of {path, code, match, title}: a diagnostic (code, a part of its message) to fix
--   LIFT_E2E_RESULT    where the results (JSON) are written
-- Neovim 0.7 APIs only. Whatever happens, the results are written and Neovim quits.

local env = vim.env
local results = { steps = {}, notifications = {}, messages = {}, timings = {} }
local started = vim.loop.hrtime()

local function elapsed()
  return (vim.loop.hrtime() - started) / 1e9
end

local function write_results()
  results.lsp_log = vim.lsp.get_log_path()
  results.elapsed_s = elapsed()
  local file = assert(io.open(env.LIFT_E2E_RESULT, "w"))
  file:write(vim.json.encode(results))
  file:close()
end

--- Mark a step done; the results so far are written at once, so a run killed later still shows how far it got.
--- The next vim.ui.select (code_action() calls it when the server's answer arrives) picks the item titled `title`,
--- recording every title offered in `offered`; later calls select as before.
local function pick_once(title, offered)
  local select = vim.ui.select
  vim.ui.select = function(items, opts, on_choice)
    vim.ui.select = select
    local choice = nil
    for _, item in ipairs(items) do
      local shown = opts.format_item(item)
      table.insert(offered, shown)
      if shown == title and choice == nil then
        choice = item
      end
    end
    on_choice(choice)
  end
end

local function step(name)
  table.insert(results.steps, name)
  results.timings[name] = elapsed()
  write_results()
end

-- What the user would see: the plugin's notifications and the server's window/showMessage.
vim.notify = function(message, level)
  table.insert(results.notifications, { message = tostring(message), level = level })
end
local show_message = vim.lsp.handlers["window/showMessage"]
vim.lsp.handlers["window/showMessage"] = function(err, result, ctx, config)
  if result then
    table.insert(results.messages, { type = result.type, message = result.message })
  end
  return show_message(err, result, ctx, config)
end

local function lift_client(bufnr)
  for _, client in pairs(vim.lsp.buf_get_clients(bufnr)) do
    if client.name == "lift" then
      return client
    end
  end
  return nil
end

--- The one answer of the lift client to a request sent with buf_request_sync.
local function request(bufnr, method, params, timeout_ms)
  local client = assert(lift_client(bufnr), "lift is not attached")
  local answers, err = vim.lsp.buf_request_sync(bufnr, method, params, timeout_ms)
  assert(answers, method .. " got no answer: " .. tostring(err))
  local answer = answers[client.id]
  assert(answer, method .. ": no answer from the lift client")
  assert(not answer.err, method .. " failed: " .. vim.inspect(answer.err))
  return answer.result
end

local function buffer_text(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n") .. "\n"
end

--- lift's diagnostics of a buffer, as plain tables.
local function lift_diagnostics(bufnr)
  local out = {}
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    if d.source == "lift" then
      table.insert(out, {
        lnum = d.lnum,
        col = d.col,
        end_lnum = d.end_lnum,
        severity = d.severity,
        code = d.code,
        source = d.source,
        message = d.message,
      })
    end
  end
  return out
end

local function open(path)
  vim.cmd("edit " .. vim.fn.fnameescape(path))
  local bufnr = vim.api.nvim_get_current_buf()
  -- The plugin attaches on FileType python; wait until its client is up and this buffer is attached.
  local attached = vim.wait(60000, function()
    local client = lift_client(bufnr)
    return client ~= nil and client.initialized == true and vim.lsp.buf_is_attached(bufnr, client.id)
  end, 50)
  assert(attached, "lift-lsp did not attach to " .. path .. " within 60 s")
  return bufnr
end

local function main()
  local settings = vim.json.decode(env.LIFT_E2E_SETTINGS)
  local cmd = vim.json.decode(env.LIFT_E2E_CMD)
  require("lift").setup({ cmd = cmd, settings = settings, keymaps = false })
  step("setup")

  -- 1. The stub file.
  local bufnr = open(env.LIFT_E2E_STUB)
  results.filetype = vim.bo[bufnr].filetype
  local client = lift_client(bufnr)
  results.client = { name = client.name, id = client.id, root_dir = client.config.root_dir, cmd = client.config.cmd }
  results.clients_count = #vim.lsp.get_active_clients()
  step("attached")
  local original = buffer_text(bufnr)
  local uri = vim.uri_from_bufnr(bufnr)
  local line = tonumber(env.LIFT_E2E_STUB_LINE)

  -- 2. Hover on the function's name: its IR as Markdown.
  local hover = request(bufnr, "textDocument/hover", {
    textDocument = { uri = uri },
    position = { line = line, character = 5 },
  }, 30000)
  results.hover = hover
  step("hover")

  -- 3. The code actions on the stub.
  local actions = request(bufnr, "textDocument/codeAction", {
    textDocument = { uri = uri },
    range = { start = { line = line, character = 5 }, ["end"] = { line = line, character = 5 } },
    context = { diagnostics = {} },
  }, 30000) or {}
  results.action_titles = {}
  for _, action in ipairs(actions) do
    table.insert(results.action_titles, action.title)
    if action.title == "Generate from spec" then
      results.generate_action = action
    end
  end
  step("code actions")
  assert(results.generate_action, "no 'Generate from spec' action")

  -- 4. Run it as a user does: vim.lsp.buf.code_action() at the cursor, picking the action in vim.ui.select; Neovim
  -- hands the command to the plugin's command handler, which sends workspace/executeCommand; the server answers
  -- with workspace/applyEdit.
  vim.api.nvim_win_set_cursor(0, { line + 1, 5 })
  results.offered = {}
  pick_once("Generate from spec", results.offered)
  vim.lsp.buf.code_action()
  local function failed()
    for _, m in ipairs(results.messages) do
      if m.type == vim.lsp.protocol.MessageType.Error then
        return true
      end
    end
    return false
  end
  local changed = vim.wait(tonumber(env.LIFT_E2E_GENERATE_MS or "170000"), function()
    return buffer_text(bufnr) ~= original or failed()
  end, 100)
  results.generated = changed and not failed()
  step("generated")
  -- The command's own answer (the plugin notifies "lift: <message>" once the command returns ok).
  vim.wait(10000, function()
    for _, n in ipairs(results.notifications) do
      if not n.message:match("^lift: Generating ") then
        return true
      end
    end
    return failed()
  end, 50)
  results.modified = vim.bo[bufnr].modified
  vim.fn.writefile(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), env.LIFT_E2E_BUFFER_OUT)
  assert(results.generated, "the stub body was not replaced")

  -- 5. A file whose docstring example is wrong: `:write` it and wait for lift's diagnostic.
  vim.o.hidden = true -- the stub buffer stays modified (never saved)
  local check = open(env.LIFT_E2E_CHECK)
  results.same_client = lift_client(check).id == client.id
  results.diagnostics_before_save = #vim.diagnostic.get(check)
  step("opened check file")
  vim.cmd("write")
  step("written")
  vim.wait(60000, function()
    return #lift_diagnostics(check) > 0
  end, 50)
  results.diagnostics = lift_diagnostics(check)
  step("diagnostics")

  -- 6. Quick fixes (LIFT_E2E_FIXES, the first on the file above): on the diagnostic's line vim.lsp.buf.code_action()
  -- offers the fix, picked in vim.ui.select; Neovim applies its edit; :write; that diagnostic is gone.
  results.fixes = {}
  for _, fix in ipairs(vim.json.decode(env.LIFT_E2E_FIXES)) do
    local bufnr = open(fix.path)
    local function target()
      for _, d in ipairs(lift_diagnostics(bufnr)) do
        if d.code == fix.code and d.message:find(fix.match, 1, true) then
          return d
        end
      end
      return nil
    end
    if target() == nil then
      vim.cmd("write") -- onOpen is off: the save checks it
    end
    vim.wait(60000, function()
      return target() ~= nil
    end, 50)
    local diagnostic = assert(target(), "no " .. fix.code .. " diagnostic in " .. fix.path)
    vim.api.nvim_win_set_cursor(0, { diagnostic.lnum + 1, diagnostic.col })
    local unfixed = buffer_text(bufnr)
    local offered = {}
    pick_once(fix.title, offered)
    vim.lsp.buf.code_action()
    local changed = vim.wait(30000, function()
      return buffer_text(bufnr) ~= unfixed
    end, 50)
    local done = { path = fix.path, offered = offered, text = buffer_text(bufnr) }
    table.insert(results.fixes, done)
    assert(changed, "the quick fix '" .. fix.title .. "' did not change " .. fix.path)
    vim.cmd("write")
    vim.wait(60000, function()
      return target() == nil
    end, 50)
    done.remaining = lift_diagnostics(bufnr)
    step("fixed " .. fix.code)
  end
end

local ok, err = xpcall(main, debug.traceback)
results.ok = ok
results.error = ok and vim.NIL or tostring(err)
pcall(write_results)
vim.cmd("qa!")
