-- lift-lsp client for Neovim 0.7+ (no nvim-lspconfig needed).
--
--   require("lift").setup({
--     cmd = nil,          -- list, or function(root_dir) -> list; default: $VIRTUAL_ENV's, <root>/.venv's, PATH's, ~/.local/bin's lift-lsp
--     settings = {},      -- server settings, nested ({backend = {kind = "modal"}}) or dotted ({["backend.kind"] = "modal"})
--     keymaps = true,     -- true: <leader>lg generate, <leader>li show IR, K hover (if K is free); false; or a table
--     root_markers = { ".git", "pyproject.toml" },
--     on_attach = nil,    -- function(client, bufnr), called after the plugin's own attach
--   })
--
-- One client per root directory (the nearest ancestor holding a root marker, else the current directory). Only
-- APIs present in 0.7 are used (vim.lsp.start_client / buf_attach_client, nvim_create_autocmd), so it also runs
-- on later versions.

local M = {}

local GENERATE = "lift.generate"
local SHOW_IR = "lift.showIr"
local GENERATE_TITLE = "Generate from spec"

local defaults = {
  cmd = nil,
  settings = {},
  keymaps = true,
  root_markers = { ".git", "pyproject.toml" },
  filetypes = { "python" },
  on_attach = nil,
  capabilities = nil,
}

local default_keymaps = { generate = "<leader>lg", show_ir = "<leader>li", hover = "K" }

M.config = vim.deepcopy(defaults)
M.clients = {} -- root_dir -> client id
local progress_tokens = {} -- active lift progress tokens -> client id

local uv = vim.uv or vim.loop
local has_011 = vim.fn.has("nvim-0.11") == 1

-- Client methods: called with `.` up to 0.10, with `:` from 0.11 on (where the `.` form is deprecated).
local function call(client, method, ...)
  if has_011 then
    return client[method](client, ...)
  end
  return client[method](...)
end

-- 0.11 deprecates start_client; its vim.lsp.start(config, {attach = false}) starts (or reuses) without attaching.
local function start_client(config)
  if has_011 then
    return vim.lsp.start(config, { attach = false })
  end
  return vim.lsp.start_client(config)
end

local function buffer_clients(bufnr)
  if vim.lsp.get_clients then
    return vim.lsp.get_clients({ bufnr = bufnr })
  end
  return vim.lsp.buf_get_clients(bufnr)
end

local function notify(message, level)
  vim.notify("lift: " .. message, level or vim.log.levels.INFO)
end

--- Settings as lift-lsp's initializationOptions: `{backend = {kind = ...}, ...}`. Dotted keys are nested; empty
--- tables become JSON objects (a plain empty Lua table would be sent as `[]`).
function M.to_init_options(settings)
  local out = {}
  for key, value in pairs(settings or {}) do
    local section, name = nil, nil
    if type(key) == "string" then
      section, name = key:match("^([^.]+)%.(.+)$")
    end
    if section then
      out[section] = out[section] or {}
      out[section][name] = value
    elseif type(value) == "table" then
      out[key] = out[key] or {}
      for k, v in pairs(value) do
        out[key][k] = v
      end
    else
      out[key] = value -- not a section: the server reports it
    end
  end
  for key, value in pairs(out) do
    if type(value) == "table" and next(value) == nil then
      out[key] = vim.empty_dict()
    end
  end
  if next(out) == nil then
    return vim.empty_dict()
  end
  return out
end

local function is_dir_with(dir, marker)
  return uv.fs_stat(dir .. "/" .. marker) ~= nil
end

--- The nearest ancestor of the buffer's file that holds a root marker; the current directory otherwise.
function M.find_root(bufnr)
  local name = vim.api.nvim_buf_get_name(bufnr or 0)
  if name == "" then
    return vim.fn.getcwd()
  end
  local dir = vim.fn.fnamemodify(name, ":p:h")
  while dir and dir ~= "" do
    for _, marker in ipairs(M.config.root_markers) do
      if is_dir_with(dir, marker) then
        return dir
      end
    end
    local parent = vim.fn.fnamemodify(dir, ":h")
    if parent == dir then
      break
    end
    dir = parent
  end
  return vim.fn.getcwd()
end

local function server_cmd(root)
  local cmd = M.config.cmd
  if type(cmd) == "function" then
    cmd = cmd(root)
  end
  if type(cmd) == "string" then
    cmd = { cmd }
  end
  if cmd then
    return cmd
  end
  -- The activated virtual environment, the project's .venv, PATH, then where pipx and `uv tool` install it.
  local candidates = { root .. "/.venv/bin/lift-lsp", "lift-lsp", vim.fn.expand("~/.local/bin/lift-lsp") }
  if vim.env.VIRTUAL_ENV and vim.env.VIRTUAL_ENV ~= "" then
    table.insert(candidates, 1, vim.env.VIRTUAL_ENV .. "/bin/lift-lsp")
  end
  for _, candidate in ipairs(candidates) do
    if vim.fn.executable(candidate) == 1 then
      return { candidate }
    end
  end
  return { "lift-lsp" }
end

local function lift_client(bufnr)
  for _, client in pairs(buffer_clients(bufnr or vim.api.nvim_get_current_buf())) do
    if client.name == "lift" then
      return client
    end
  end
  return nil
end

local function show_ir_result(result)
  if type(result) ~= "table" or #result == 0 then
    notify("no function here")
    return
  end
  local lines = {}
  for _, entry in ipairs(result) do
    table.insert(lines, string.format("## `%s` (line %d)", entry["function"], entry.line))
    table.insert(lines, "")
    vim.list_extend(lines, vim.split(entry.markdown or "", "\n", { plain = true }))
    table.insert(lines, "")
  end
  vim.cmd("botright new")
  local buf = vim.api.nvim_get_current_buf()
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].buftype = "nofile"
  vim.bo[buf].bufhidden = "wipe"
  vim.bo[buf].swapfile = false
  vim.bo[buf].filetype = "markdown"
  vim.bo[buf].modifiable = false
  pcall(vim.api.nvim_buf_set_name, buf, "lift://ir/" .. buf)
end

--- Run one of the server's commands and handle its result (used for code actions and the keymaps alike).
local function execute(client, command, arguments, bufnr)
  call(client, "request", "workspace/executeCommand", { command = command, arguments = arguments }, function(err, result)
    if err then
      notify(command .. " failed: " .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
    elseif command == SHOW_IR then
      show_ir_result(result)
    elseif command == GENERATE and type(result) == "table" and result.ok then
      notify(result.message or "generated")
    end -- a failed generation is reported by the server itself (window/showMessage)
  end, bufnr)
end

local client_commands = {
  [GENERATE] = function(command, ctx)
    local client = vim.lsp.get_client_by_id(ctx.client_id)
    if client then
      execute(client, GENERATE, command.arguments, ctx.bufnr)
    end
  end,
  [SHOW_IR] = function(command, ctx)
    local client = vim.lsp.get_client_by_id(ctx.client_id)
    if client then
      execute(client, SHOW_IR, command.arguments, ctx.bufnr)
    end
  end,
}

--- Ask the server for its code actions at the cursor and run the one that invokes `command`.
local function run_action_at_cursor(command, fallback_args)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = lift_client(bufnr)
  if not client then
    notify("lift-lsp is not attached to this buffer", vim.log.levels.WARN)
    return
  end
  local params = vim.lsp.util.make_range_params(0, client.offset_encoding)
  params.context = { diagnostics = {} }
  call(client, "request", "textDocument/codeAction", params, function(err, actions)
    if err then
      notify("code actions failed: " .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
      return
    end
    for _, action in ipairs(actions or {}) do
      local cmd = type(action.command) == "table" and action.command or action
      if cmd.command == command then
        if action.disabled then
          notify(action.disabled.reason, vim.log.levels.WARN)
          return
        end
        execute(client, command, cmd.arguments, bufnr)
        return
      end
    end
    if fallback_args then
      execute(client, command, fallback_args, bufnr)
    else
      notify("no '" .. GENERATE_TITLE .. "' here: put the cursor in a stub function with a spec", vim.log.levels.WARN)
    end
  end, bufnr)
end

--- "Generate from spec" for the function at the cursor (the server's code action, run directly).
function M.generate()
  run_action_at_cursor(GENERATE, nil)
end

--- The IR of the function at the cursor (or of every function in the file) in a scratch markdown window.
function M.show_ir()
  run_action_at_cursor(SHOW_IR, { vim.uri_from_bufnr(0) })
end

--- Cancel the generations in flight (their work-done progress tokens).
function M.cancel()
  for token, client_id in pairs(progress_tokens) do
    local client = vim.lsp.get_client_by_id(client_id)
    if client then
      call(client, "notify", "window/workDoneProgress/cancel", { token = token })
    end
    progress_tokens[token] = nil
  end
end

local function progress_handler(err, result, ctx, config)
  local default = vim.lsp.handlers["$/progress"]
  if default then
    default(err, result, ctx, config)
  end
  local value = result and result.value
  if type(value) ~= "table" then
    return
  end
  local token = result.token
  if value.kind == "begin" then
    progress_tokens[token] = ctx.client_id
    notify(value.title or "working")
  elseif value.kind == "report" then
    local pct = value.percentage and string.format(" (%d%%)", value.percentage) or ""
    vim.api.nvim_echo({ { "lift: " .. (value.message or "") .. pct } }, false, {})
  elseif value.kind == "end" then
    progress_tokens[token] = nil
    vim.api.nvim_echo({ { "" } }, false, {})
  end
end

local function set_keymaps(bufnr)
  local keys = M.config.keymaps
  if not keys then
    return
  end
  if keys == true then
    keys = default_keymaps
  end
  local function map(lhs, rhs, desc)
    if lhs then
      vim.keymap.set("n", lhs, rhs, { buffer = bufnr, silent = true, desc = desc })
    end
  end
  map(keys.generate, M.generate, "lift: " .. GENERATE_TITLE)
  map(keys.show_ir, M.show_ir, "lift: show IR")
  if keys.hover and vim.fn.maparg(keys.hover, "n") == "" then
    map(keys.hover, vim.lsp.buf.hover, "lift: hover (IR)")
  end
end

local function on_attach(client, bufnr)
  set_keymaps(bufnr)
  if M.config.on_attach then
    M.config.on_attach(client, bufnr)
  end
end

local function start(root)
  local cmd = server_cmd(root)
  if vim.fn.executable(cmd[1]) ~= 1 then
    notify(
      "cannot start '" .. cmd[1] .. "': install lift-lsp (`pipx install` or `uv tool install`, see the README),"
        .. " or into " .. root .. "/.venv, or set cmd in setup()",
      vim.log.levels.WARN
    )
    return nil
  end
  local options = M.to_init_options(M.config.settings)
  return start_client({
    name = "lift",
    cmd = cmd,
    cmd_cwd = root,
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = root } },
    init_options = options,
    settings = { lift = options },
    capabilities = M.config.capabilities or vim.lsp.protocol.make_client_capabilities(),
    commands = client_commands,
    handlers = { ["$/progress"] = progress_handler },
    on_attach = on_attach,
    on_exit = function(_, _, client_id)
      if M.clients[root] == client_id then
        M.clients[root] = nil
      end
    end,
  })
end

--- Attach the buffer to its root's client, starting the client on first use.
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  if vim.bo[bufnr].buftype ~= "" then
    return nil
  end
  local root = M.find_root(bufnr)
  local id = M.clients[root]
  local client = id and vim.lsp.get_client_by_id(id)
  if not client or call(client, "is_stopped") then
    id = start(root)
    if not id then
      return nil
    end
    M.clients[root] = id
  end
  vim.lsp.buf_attach_client(bufnr, id)
  return id
end

--- Send new settings to every running lift client (`workspace/didChangeConfiguration`).
function M.update_settings(settings)
  M.config.settings = settings
  local options = M.to_init_options(settings)
  for _, id in pairs(M.clients) do
    local client = vim.lsp.get_client_by_id(id)
    if client then
      client.config.settings = { lift = options }
      call(client, "notify", "workspace/didChangeConfiguration", { settings = { lift = options } })
    end
  end
end

--- Stop every lift client; buffers are attached again by `attach` (or `:LiftRestart`).
function M.stop()
  for root, id in pairs(M.clients) do
    local client = vim.lsp.get_client_by_id(id)
    if client then
      call(client, "stop")
    end
    M.clients[root] = nil
  end
end

local function is_lift_filetype(ft)
  return vim.tbl_contains(M.config.filetypes, ft)
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(defaults), opts or {})
  if opts and opts.settings then
    M.config.settings = opts.settings -- taken as given, not merged into the (empty) default
  end
  local group = vim.api.nvim_create_augroup("lift_lsp", { clear = true })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = M.config.filetypes,
    callback = function(args)
      M.attach(args.buf)
    end,
  })
  vim.api.nvim_create_user_command("LiftGenerate", M.generate, { desc = "lift: " .. GENERATE_TITLE })
  vim.api.nvim_create_user_command("LiftShowIr", M.show_ir, { desc = "lift: show the IR" })
  vim.api.nvim_create_user_command("LiftCancel", M.cancel, { desc = "lift: cancel generations in flight" })
  vim.api.nvim_create_user_command("LiftRestart", function()
    M.stop()
    vim.defer_fn(function()
      for _, buf in ipairs(vim.api.nvim_list_bufs()) do
        if vim.api.nvim_buf_is_loaded(buf) and is_lift_filetype(vim.bo[buf].filetype) then
          M.attach(buf)
        end
      end
    end, 500)
  end, { desc = "lift: restart the server" })
  -- buffers opened before setup()
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(buf) and is_lift_filetype(vim.bo[buf].filetype) then
      M.attach(buf)
    end
  end
end

return M
