--- ai_host.config: the defaults (shared with the Python engine) and the validation of setup() options.
---
--- Every option lives in one file, `ai_host/config_schema.json`: its default, type, constraint and a
--- one-line doc. Both sides read it: setup() deep-merges the user's options over the defaults and
--- checks every key against the schema here, the engine (ai_host/config.py) checks the same rules
--- with the same sentences. The annotations in lua/ai_host/types.lua and the configuration chapter
--- of `:help ai_host-config` are generated from it by scripts/gen_config_docs.py.
---
--- A leaf's `type` is one of: boolean, integer, number, string, enum (`choices`), list (of strings,
--- `of` names them), map (string -> string; `digest` for model pins), string_or_list, endpoints.
--- Constraints: `above` / `below` (exclusive bounds), `min` / `max` (inclusive), `nonempty`.

local M = {}
local H = {}

--- The plugin's root folder (the one holding lua/, ai_host/, rplugin/).
M.root = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h:h')

--- The schema, decoded once (do not modify it).
---@return table
function M.schema()
  if H.schema == nil then
    local path = M.root .. '/ai_host/config_schema.json'
    local fd = io.open(path, 'r')
    if fd == nil then error('ai_host: cannot read ' .. path .. '; reinstall the plugin.', 0) end
    local text = fd:read('*a')
    fd:close()
    H.schema = vim.json.decode(text)
  end
  return H.schema
end

--- The tasks that have a model (models.*, fallbacks.*, an endpoint's `tasks`), in the schema's order.
---@return string[]
function M.tasks() return vim.deepcopy(M.schema().tasks) end

--- A fresh deep copy of the defaults.
---@return ai_host.Config
function M.defaults()
  if H.defaults == nil then H.defaults = H.defaults_of(M.schema()) end
  return vim.deepcopy(H.defaults)
end

--- Merge `opts` over the defaults and validate every key it sets. Errors are `ai_host: `x.y` should be ...`.
---@param opts table|nil
---@return ai_host.Config
function M.build(opts)
  if opts ~= nil and type(opts) ~= 'table' then
    error(string.format('ai_host: setup() options should be a table, not %s', type(opts)), 0)
  end
  local config = M.defaults()
  H.merge(config, M.schema().keys, opts or {}, '')
  return config
end

-- Helpers --------------------------------------------------------------------------------------

-- The Lua type each schema type must have.
H.lua_type = {
  boolean = 'boolean',
  integer = 'number',
  number = 'number',
  string = 'string',
  enum = 'string',
  list = 'table',
  map = 'table',
  endpoints = 'table',
}

function H.defaults_of(node)
  local out = {}
  for key, spec in pairs(node.keys) do
    if spec.keys ~= nil then
      out[key] = H.defaults_of(spec)
    else
      out[key] = vim.deepcopy(spec.default)
    end
  end
  return out
end

function H.merge(base, keys, over, prefix)
  for key, value in pairs(over) do
    local path = prefix .. tostring(key)
    local spec = type(key) == 'string' and keys[key] or nil
    if spec == nil then error(string.format('ai_host: `%s` is not an option (see :help ai_host-config)', path), 0) end
    if spec.keys ~= nil then
      if type(value) ~= 'table' then
        error(string.format('ai_host: `%s` should be table, not %s', path, type(value)), 0)
      end
      H.merge(base[key], spec.keys, value, path .. '.')
    else
      local msg = H.problem(spec, value)
      if msg then error(string.format('ai_host: `%s` %s', path, msg), 0) end
      base[key] = value
    end
  end
end

--- What is wrong with `value` for an option described by `spec`, or nil.
function H.problem(spec, value)
  local kind = spec.type
  if kind == 'string_or_list' then
    if type(value) ~= 'string' and type(value) ~= 'table' then
      return 'should be string or table, not ' .. type(value)
    end
    return nil
  end
  local want = H.lua_type[kind]
  if type(value) ~= want then return string.format('should be %s, not %s', want, type(value)) end
  if kind == 'integer' and value ~= math.floor(value) then
    return 'should be a whole number, not ' .. tostring(value)
  end
  if kind == 'integer' or kind == 'number' then return H.range_problem(spec, value) end
  if kind == 'enum' and not vim.tbl_contains(spec.choices, value) then
    return string.format("should be one of %s, not '%s'", H.quoted(spec.choices), value)
  end
  if kind == 'string' and spec.nonempty and value == '' then return 'should not be empty' end
  if kind == 'list' then return H.list_problem(value, spec.of or 'strings') end
  if kind == 'map' then return H.map_problem(spec, value) end
  if kind == 'endpoints' then return H.endpoints_problem(spec, value) end
  return nil
end

function H.quoted(items) return "'" .. table.concat(items, "', '") .. "'" end

function H.range_problem(spec, v)
  local low_ok = (spec.above == nil or v > spec.above) and (spec.min == nil or v >= spec.min)
  local high_ok = (spec.below == nil or v < spec.below) and (spec.max == nil or v <= spec.max)
  if low_ok and high_ok then return nil end
  return string.format('should be %s, not %s', H.range_words(spec), tostring(v))
end

--- What a bounded number should be, in words (the same as range_words() in ai_host/config.py).
function H.range_words(spec)
  local above, below, lo, hi = spec.above, spec.below, spec.min, spec.max
  local low = above ~= nil and ('above ' .. tostring(above)) or lo ~= nil and (tostring(lo) .. ' or more') or nil
  local high = below ~= nil and ('below ' .. tostring(below)) or hi ~= nil and ('at most ' .. tostring(hi)) or nil
  if low == nil then return tostring(high) end
  if high == nil then return above == 0 and 'a positive number' or low end
  if above ~= nil and below ~= nil then return string.format('between %s and %s', tostring(above), tostring(below)) end
  if lo ~= nil and hi ~= nil then return string.format('from %s to %s', tostring(lo), tostring(hi)) end
  local bottom, top = above or lo, below or hi
  return ((bottom >= 0 and top <= 1) and 'a fraction ' or '') .. low .. ' and ' .. high
end

function H.list_problem(v, of)
  if not vim.islist(v) then return 'should be a list of ' .. of end
  for i, item in ipairs(v) do
    if type(item) ~= 'string' then return string.format('[%d] should be string, not %s', i, type(item)) end
  end
end

function H.map_problem(spec, v)
  for key, item in pairs(v) do
    if type(key) ~= 'string' or key == '' then return 'should be keyed by model name, not ' .. tostring(key) end
    local at = "['" .. key .. "']"
    if type(item) ~= 'string' then return at .. ' should be string, not ' .. type(item) end
    local hex = item:lower():gsub('^sha256:', '')
    if spec.digest and (not hex:match('^%x+$') or #hex < 12 or #hex > 64) then
      return at .. " should be the model's digest from `ollama list` (12 to 64 hex digits), not '" .. item .. "'"
    end
  end
end

function H.endpoints_problem(spec, v)
  if not vim.islist(v) then return 'should be a list of endpoints' end
  for i, e in ipairs(v) do
    local at = string.format('[%d]', i)
    if type(e) ~= 'table' then return at .. ' should be table, not ' .. type(e) end
    for key, value in pairs(e) do
      local field = type(key) == 'string' and spec.fields[key] or nil
      if field == nil then return at .. '.' .. tostring(key) .. ' is not an option' end
      local want = H.lua_type[field.type]
      if type(value) ~= want then return string.format('%s.%s should be %s, not %s', at, key, want, type(value)) end
    end
    -- in this order on both sides: the URL, then choices, then tasks
    for key, field in pairs(spec.fields) do
      if field.url and (type(e[key]) ~= 'string' or not e[key]:match('^https?://')) then
        return string.format('%s.%s should be an http(s) URL such as http://gpu-server:11434', at, key)
      end
    end
    for key, field in pairs(spec.fields) do
      if field.type == 'enum' and e[key] ~= nil and not vim.tbl_contains(field.choices, e[key]) then
        return string.format("%s.%s should be one of %s, not '%s'", at, key, H.quoted(field.choices), e[key])
      end
    end
    local tasks = M.schema().tasks
    for key, field in pairs(spec.fields) do
      for _, t in ipairs(field.of == 'tasks' and e[key] or {}) do
        if not vim.tbl_contains(tasks, t) then
          return string.format("%s.%s should name tasks among %s, not '%s'", at, key, H.quoted(tasks), tostring(t))
        end
      end
    end
  end
end

return M
