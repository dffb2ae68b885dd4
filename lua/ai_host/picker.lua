--- ai_host.picker: choose the model of a task, listing every endpoint's models.
---
--- The fetching, ordering, formatting and choosing live here, shared by :AIModels (vim.ui.select,
--- so Telescope, fzf-lua and snacks pickers work through their ui-select) and the Telescope
--- extension (lua/telescope/_extensions/ai_host.lua, loaded only by Telescope).

local M = {}
local H = {}

-- The tasks listed first (the rest follow in the schema's order).
H.first = { 'completion', 'explain', 'refactor' }

--- Pick a model for `task` with vim.ui.select (asks for the task first when nil).
---@param task string|nil
function M.pick(task)
  if task == nil then return M.ask_task(M.pick) end
  M.fetch(task, function(items, current)
    vim.ui.select(items, {
      prompt = 'ai_host: model for ' .. task,
      kind = 'ai_host_model',
      format_item = function(item) return M.format(item, current) end,
    }, function(choice)
      if choice ~= nil then M.choose(task, choice) end
    end)
  end)
end

--- Ask for a task with vim.ui.select, then call `on_task(task)` (not when cancelled).
---@param on_task fun(task: string)
function M.ask_task(on_task)
  vim.ui.select(M.tasks(), { prompt = 'ai_host: model for which task?', format_item = M.format_task }, function(choice)
    if choice ~= nil then on_task(choice) end
  end)
end

--- The tasks that have a model, in the order the pickers list them.
---@return string[]
function M.tasks()
  local out = vim.deepcopy(H.first)
  for _, task in ipairs(require('ai_host.config').tasks()) do
    if not vim.tbl_contains(out, task) then table.insert(out, task) end
  end
  return out
end

--- One line per task: its name and the model it uses now.
---@param task string
---@return string
function M.format_task(task)
  local models = require('ai_host').get_config().models
  if models[task] ~= '' then return task .. '  (now ' .. models[task] .. ')' end
  local from = require('ai_host.config').schema().inherits[task] -- a task left empty uses another's model
  return string.format("%s  (now %s's: %s)", task, from, models[from])
end

--- Fetch every endpoint's models (a job on the Python host), then call `on_items(items, current)`
--- with the models ordered for `task` (M.order) and the task's model now. Endpoints that did not
--- answer are warnings; with no models at all the user is told how to get one and `on_items` is
--- not called. Returns whether the job started (an unknown task or a host that cannot start is
--- an error message, not a raised error).
---@param task string
---@param on_items fun(items: table[], current: string)
---@return boolean started
function M.fetch(task, on_items)
  if type(task) ~= 'string' or require('ai_host').get_config().models[task] == nil then
    vim.notify(
      string.format("ai_host: no task '%s'; tasks are %s", tostring(task), table.concat(M.tasks(), ', ')),
      vim.log.levels.ERROR
    )
    return false
  end
  local id, msg = require('ai_host.host').start('models', {}, {
    on_done = function(data) H.on_models(task, data, on_items) end,
    on_error = function(data) vim.notify(data.message, vim.log.levels.ERROR) end,
  })
  if not id then vim.notify(msg, vim.log.levels.ERROR) end
  return id ~= nil
end

--- `items` ordered for `task`, in place: for completion the models that can fill in the middle
--- first, otherwise (and within each group) as the endpoints listed them.
---@param items table[]
---@param task string
---@return table[] items
function M.order(items, task)
  if task ~= 'completion' then return items end
  local listed = {}
  for i, item in ipairs(items) do
    listed[item] = i
  end
  table.sort(items, function(a, b)
    local a_fim, b_fim = a.fim == true, b.fim == true
    if a_fim ~= b_fim then return a_fim end
    return listed[a] < listed[b]
  end)
  return items
end

--- One line per model: name, parameters, quantization, size, fill-in-the-middle, loaded, endpoint.
---@param item table a model as the 'models' job lists it
---@param current string|nil the task's model now
---@return string
function M.format(item, current)
  local parts = { item.name }
  if (item.parameter_size or '') ~= '' then table.insert(parts, item.parameter_size) end
  if (item.quantization or '') ~= '' then table.insert(parts, item.quantization) end
  if (item.size or 0) > 0 then table.insert(parts, string.format('%.1f GB', item.size / 1e9)) end
  if item.fim == true then table.insert(parts, 'FIM') end
  if item.loaded then table.insert(parts, '● loaded') end
  if item.name == current then table.insert(parts, '(current)') end
  table.insert(parts, '@' .. item.endpoint)
  return table.concat(parts, '  ')
end

--- A model described one fact a line (for a picker's preview).
---@param item table a model as the 'models' job lists it
---@param task string
---@param current string|nil the task's model now
---@return string[]
function M.details(item, task, current)
  local fim = item.fim == true and 'yes' or item.fim == false and 'no' or 'unknown'
  local lines = {
    'model          ' .. item.name,
    'endpoint       ' .. tostring(item.endpoint),
    'parameters     ' .. ((item.parameter_size or '') ~= '' and item.parameter_size or '?'),
    'quantization   ' .. ((item.quantization or '') ~= '' and item.quantization or '?'),
    'size           ' .. ((item.size or 0) > 0 and string.format('%.1f GB', item.size / 1e9) or '?'),
    'fill-in-middle ' .. fim,
    'loaded now     ' .. (item.loaded and 'yes' or 'no'),
    '',
  }
  if item.name == current then
    table.insert(lines, task .. ' uses this model now.')
  else
    table.insert(lines, task .. ' uses ' .. tostring(current) .. ' now; <CR> switches it to this one.')
  end
  if task == 'completion' and item.fim == false then
    table.insert(lines, 'Ghost text wants a model that can fill in the middle (FIM).')
  end
  return lines
end

--- Use `item`'s model for `task` from now on, and say so.
---@param task string
---@param item table a model as the 'models' job lists it
function M.choose(task, item)
  require('ai_host').set_model(task, item.name)
  vim.notify('ai_host: ' .. task .. ' now uses ' .. item.name, vim.log.levels.INFO)
end

-- Helpers --------------------------------------------------------------------------------------

function H.on_models(task, data, on_items)
  for _, p in ipairs(data.problems or {}) do
    vim.notify(p, vim.log.levels.WARN)
  end
  local items = M.order(data.models or {}, task)
  if #items == 0 then
    return vim.notify(
      'ai_host: no models found on the endpoints; pull one, e.g. `ollama pull qwen2.5-coder:7b`.',
      vim.log.levels.WARN
    )
  end
  on_items(items, require('ai_host').get_config().models[task])
end

return M
