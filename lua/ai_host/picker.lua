--- ai_host.picker: choose the model of a task with vim.ui.select (so Telescope, fzf-lua and snacks
--- pickers work through their ui-select), listing every endpoint's models.

local M = {}
local H = {}

H.tasks = { 'completion', 'explain', 'refactor' }

--- Pick a model for `task` (asks for the task first when nil).
---@param task string|nil
function M.pick(task)
  if task == nil then
    return vim.ui.select(H.tasks, {
      prompt = 'ai_host: model for which task?',
      format_item = function(t) return t .. '  (now ' .. require('ai_host').get_config().models[t] .. ')' end,
    }, function(choice) if choice then M.pick(choice) end end)
  end
  local id, msg = require('ai_host.host').start('models', {}, {
    on_done = function(data) H.choose(task, data) end,
    on_error = function(data) vim.notify(data.message, vim.log.levels.ERROR) end,
  })
  if not id then vim.notify(msg, vim.log.levels.ERROR) end
end

--- One line per model: name, parameters, quantization, size, fill-in-the-middle, loaded, endpoint.
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

function H.choose(task, data)
  for _, p in ipairs(data.problems or {}) do
    vim.notify(p, vim.log.levels.WARN)
  end
  local items = data.models or {}
  if task == 'completion' then -- the models that can fill in the middle first
    table.sort(items, function(a, b) return (a.fim == true and 1 or 0) > (b.fim == true and 1 or 0) end)
  end
  if #items == 0 then
    return vim.notify('ai_host: no models found on the endpoints; pull one, e.g. `ollama pull qwen2.5-coder:7b`.',
      vim.log.levels.WARN)
  end
  local current = require('ai_host').get_config().models[task]
  vim.ui.select(items, {
    prompt = 'ai_host: model for ' .. task,
    kind = 'ai_host_model',
    format_item = function(item) return M.format(item, current) end,
  }, function(choice)
    if choice == nil then return end
    require('ai_host').set_model(task, choice.name)
    vim.notify('ai_host: ' .. task .. ' now uses ' .. choice.name, vim.log.levels.INFO)
  end)
end

return M
