--- ai_host.config: the defaults (shared with the Python engine) and the validation of setup() options.
---
--- Defaults live in one file, `ai_host/defaults.json`, read by both sides. setup() deep-merges the
--- user's options over a copy, checks every leaf, and fails with a dotted-path message.

local M = {}
local H = {}

---@class ai_host.Config
---@field backend ai_host.BackendConfig Where the model server is.
---@field endpoints ai_host.Endpoint[] More servers, tried after `backend` for the tasks they serve.
---@field models table<string,string> Model per task: explain, completion, refactor.
---@field fallbacks table<string,string[]> Models tried in turn when a task's model is not on a server.
---@field timeouts ai_host.Timeouts Separate network limits (a cold model load is silent for a while).
---@field explain ai_host.ExplainConfig :AIExplain context and sampling.
---@field completion ai_host.CompletionConfig Ghost text while typing.
---@field refactor { context_lines: integer, max_chars: integer, num_ctx: integer, num_predict: integer, temperature: number, keep_alive: string, default_instruction: string, keys: table<string,string> } :AIRefactor.
---@field scheduler { concurrency: integer, queue_limit: integer, completion_rate_per_s: number, interactive_rate_per_s: number, completion_deadline_ms: integer, interactive_deadline_ms: integer } Slots, queue, rates, deadlines.
---@field lsp { busy_above: integer, completion_wait_ms: integer, interactive_wait_ms: integer } The LSP gate.
---@field gpu { enabled: boolean, device: integer, threshold: number, cache_ms: integer, wait_ms: integer, on_busy: 'warn'|'stop' } The GPU gate.
---@field ui ai_host.UiConfig Float size and look.
---@field prompts table<string,string> Prompt templates with {{placeholders}}.
---@field keymaps table<string,string> Default maps; '' disables one.
---@field security { redact: boolean, deny: string[], pins: table<string, string> } Secrets redacted; files never sent; model digests pinned.
---@field log { level: string, file: string } Log level and file ('' = stdpath('log')/ai_host.log).

---@class ai_host.BackendConfig
---@field kind 'ollama'|'openai' Ollama's native API or an OpenAI-compatible server.
---@field url string Base URL; '' = $OLLAMA_HOST, else http://127.0.0.1:11434.
---@field allow_remote boolean Allow a server that is not on this machine.
---@field api_key_env string Name of an environment variable holding a bearer token ('' = none).

---@class ai_host.Endpoint
---@field name string? Shown by :AIStatus.
---@field kind 'ollama'|'openai'? Default 'ollama'.
---@field url string Base URL.
---@field allow_remote boolean? Needed for a server not on this machine.
---@field api_key_env string? Environment variable with a bearer token.
---@field tasks string[]? Tasks it serves (default: all).

---@class ai_host.Timeouts
---@field connect_ms integer
---@field first_byte_ms integer
---@field idle_ms integer

---@class ai_host.ExplainConfig
---@field context_lines integer Lines above and below the code sent as context.
---@field max_chars integer Character budget for code plus context.
---@field num_ctx integer Context window asked of Ollama (its small default silently truncates).
---@field num_predict integer Most tokens to generate.
---@field temperature number
---@field keep_alive string How long Ollama keeps the model loaded afterwards.

---@class ai_host.CompletionConfig
---@field enabled boolean Ghost text on.
---@field debounce_ms integer Pause in typing before a request.
---@field context_chars integer Characters around the cursor sent (prefix + suffix).
---@field prefix_ratio number Share of the budget before the cursor (0..1).
---@field max_lines integer Most lines in a suggestion.
---@field num_predict integer Most tokens generated.
---@field num_ctx integer Ollama context window.
---@field temperature number
---@field keep_alive string How long Ollama keeps the model loaded.
---@field fim_template string '' = from the model, else 'qwen'|'codellama'|'deepseek'|'starcoder'|'codegemma'.
---@field hide_with_menu boolean No ghost text while a completion menu is open.
---@field max_file_bytes integer No ghost text in larger buffers.
---@field disabled_filetypes string[] Filetypes without ghost text.
---@field prefetch boolean Ask ahead for what follows the suggestion shown, when the model is idle.

---@class ai_host.UiConfig
---@field float_width number Fraction of the editor (<= 1) or columns (> 1).
---@field float_height number Fraction of the editor (<= 1) or lines (> 1).
---@field border string|string[] Any 'winborder' value.
---@field frame_ms integer How often streamed text is drawn (ms).

--- The plugin's root folder (the one holding lua/, ai_host/, rplugin/).
M.root = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h:h')

--- A fresh deep copy of the defaults.
---@return ai_host.Config
function M.defaults()
  if H.defaults == nil then
    local path = M.root .. '/ai_host/defaults.json'
    local fd = io.open(path, 'r')
    if fd == nil then error('ai_host: cannot read ' .. path .. '; reinstall the plugin.', 0) end
    local text = fd:read('*a')
    fd:close()
    H.defaults = vim.json.decode(text)
  end
  return vim.deepcopy(H.defaults)
end

--- Merge `opts` over the defaults and validate every leaf. Errors are `ai_host: `x.y` should be ...`.
---@param opts table|nil
---@return ai_host.Config
function M.build(opts)
  if opts ~= nil and type(opts) ~= 'table' then
    error(string.format('ai_host: setup() options should be a table, not %s', type(opts)), 0)
  end
  local config = M.defaults()
  H.merge(config, opts or {}, '')
  for path, check in pairs(H.checks) do
    local value = H.get(config, path)
    local msg = check(value)
    if msg then error(string.format('ai_host: `%s` %s', path, msg), 0) end
  end
  return config
end

-- Helpers --------------------------------------------------------------------------------------

function H.merge(base, over, prefix)
  for key, value in pairs(over) do
    local path = prefix .. tostring(key)
    local default = base[key]
    if default == nil then
      error(string.format('ai_host: `%s` is not an option (see :help ai_host-config)', path), 0)
    end
    -- nested options are merged key by key; an empty table in the defaults (security.pins) is a
    -- map of the user's own keys, taken whole below, as in ai_host/config.py
    if type(default) == 'table' and not vim.islist(default) and next(default) ~= nil then
      if type(value) ~= 'table' then
        error(string.format('ai_host: `%s` should be table, not %s', path, type(value)), 0)
      end
      H.merge(default, value, path .. '.')
    elseif path == 'ui.border' then
      if type(value) ~= 'string' and type(value) ~= 'table' then
        error(string.format('ai_host: `%s` should be string or table, not %s', path, type(value)), 0)
      end
      base[key] = value
    else
      if type(value) ~= type(default) then
        error(string.format('ai_host: `%s` should be %s, not %s', path, type(default), type(value)), 0)
      end
      base[key] = value
    end
  end
end

function H.get(tbl, path)
  for part in path:gmatch('[^.]+') do
    tbl = tbl[part]
  end
  return tbl
end

local function one_of(...)
  local allowed = { ... }
  return function(v)
    if not vim.tbl_contains(allowed, v) then
      return string.format("should be one of '%s', not '%s'", table.concat(allowed, "', '"), tostring(v))
    end
  end
end

local function positive(v)
  if v <= 0 then return 'should be a positive number, not ' .. tostring(v) end
end

local function list_of_strings(what)
  return function(v)
    if not vim.islist(v) then return 'should be a list of ' .. what end
    for i, item in ipairs(v) do
      if type(item) ~= 'string' then return string.format('[%d] should be string, not %s', i, type(item)) end
    end
  end
end

H.tasks = { 'explain', 'completion', 'refactor' }
H.endpoint_fields = {
  name = 'string', kind = 'string', url = 'string', allow_remote = 'boolean', api_key_env = 'string', tasks = 'table',
}

local function endpoints(v)
  if not vim.islist(v) then return 'should be a list of endpoints' end
  for i, e in ipairs(v) do
    local at = string.format('[%d]', i)
    if type(e) ~= 'table' then return at .. ' should be table, not ' .. type(e) end
    for key, value in pairs(e) do
      local want = H.endpoint_fields[key]
      if want == nil then return at .. '.' .. tostring(key) .. ' is not an option' end
      if type(value) ~= want then return string.format('%s.%s should be %s, not %s', at, key, want, type(value)) end
    end
    if type(e.url) ~= 'string' or not e.url:match('^https?://') then
      return at .. '.url should be an http(s) URL such as http://gpu-server:11434'
    end
    if e.kind ~= nil and e.kind ~= 'ollama' and e.kind ~= 'openai' then
      return at .. ".kind should be one of 'ollama', 'openai', not '" .. e.kind .. "'"
    end
    for _, t in ipairs(e.tasks or {}) do
      if not vim.tbl_contains(H.tasks, t) then
        return string.format("%s.tasks should name tasks among '%s', not '%s'", at, table.concat(H.tasks, "', '"), tostring(t))
      end
    end
  end
end

local function pins(v)
  for model, digest in pairs(v) do
    if type(model) ~= 'string' or model == '' then return 'should be keyed by model name, not ' .. tostring(model) end
    local at = "['" .. model .. "']"
    if type(digest) ~= 'string' then return at .. ' should be string, not ' .. type(digest) end
    local hex = digest:gsub('^sha256:', '')
    if not hex:match('^%x+$') or #hex < 12 or #hex > 64 then
      return at .. " should be the model's digest from `ollama list` (12 to 64 hex digits), not '" .. digest .. "'"
    end
  end
end

local function non_negative(v)
  if v < 0 then return 'should be 0 or more, not ' .. tostring(v) end
end

local function non_empty(v)
  if v == '' then return 'should not be empty' end
end

-- Checks beyond the type, by dotted path.
H.checks = {
  ['backend.kind'] = one_of('ollama', 'openai'),
  ['log.level'] = one_of('debug', 'info', 'warning', 'error'),
  ['timeouts.connect_ms'] = positive,
  ['timeouts.first_byte_ms'] = positive,
  ['timeouts.idle_ms'] = positive,
  ['explain.context_lines'] = function(v)
    if v < 0 then return 'should be 0 or more, not ' .. v end
  end,
  ['explain.max_chars'] = positive,
  ['explain.num_ctx'] = positive,
  ['explain.num_predict'] = positive,
  ['ui.float_width'] = positive,
  ['ui.float_height'] = positive,
  ['ui.frame_ms'] = positive,
  ['completion.debounce_ms'] = function(v)
    if v < 0 then return 'should be 0 or more, not ' .. v end
  end,
  ['completion.context_chars'] = positive,
  ['completion.prefix_ratio'] = function(v)
    if v <= 0 or v >= 1 then return 'should be between 0 and 1, not ' .. v end
  end,
  ['completion.max_lines'] = positive,
  ['completion.num_predict'] = positive,
  ['completion.num_ctx'] = positive,
  ['completion.max_file_bytes'] = positive,
  ['completion.fim_template'] = one_of('', 'qwen', 'codellama', 'deepseek', 'starcoder', 'codegemma'),
  ['completion.disabled_filetypes'] = list_of_strings('filetypes'),
  ['fallbacks.explain'] = list_of_strings('model names'),
  ['fallbacks.completion'] = list_of_strings('model names'),
  ['fallbacks.refactor'] = list_of_strings('model names'),
  endpoints = endpoints,
  ['security.deny'] = list_of_strings('file name patterns'),
  ['security.pins'] = pins,
  ['scheduler.concurrency'] = positive,
  ['scheduler.queue_limit'] = positive,
  ['scheduler.completion_rate_per_s'] = non_negative,
  ['scheduler.interactive_rate_per_s'] = non_negative,
  ['scheduler.completion_deadline_ms'] = positive,
  ['scheduler.interactive_deadline_ms'] = positive,
  ['lsp.busy_above'] = non_negative,
  ['lsp.completion_wait_ms'] = non_negative,
  ['lsp.interactive_wait_ms'] = non_negative,
  ['gpu.device'] = non_negative,
  ['gpu.threshold'] = function(v)
    if v <= 0 or v > 1 then return 'should be a fraction above 0 and at most 1, not ' .. v end
  end,
  ['gpu.cache_ms'] = non_negative,
  ['gpu.wait_ms'] = non_negative,
  ['gpu.on_busy'] = one_of('warn', 'stop'),
  ['refactor.context_lines'] = non_negative,
  ['refactor.max_chars'] = positive,
  ['refactor.num_ctx'] = positive,
  ['refactor.num_predict'] = positive,
  ['models.explain'] = non_empty,
  ['models.completion'] = non_empty,
  ['models.refactor'] = non_empty,
}

return M
