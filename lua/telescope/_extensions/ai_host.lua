--- Telescope extension of ai_host: `:Telescope ai_host models [task=completion]`, or
--- `require('telescope').extensions.ai_host.models({ task = 'completion' })`.
---
--- Only Telescope loads this file (ai_host itself never requires telescope). Which models are
--- listed, in what order, each line, and what <CR> does come from ai_host.picker, as for :AIModels.

local has_telescope, telescope = pcall(require, 'telescope')
if not has_telescope then
  error('ai_host: the Telescope extension needs telescope.nvim; use :AIModels without it.', 0)
end

local actions = require('telescope.actions')
local action_state = require('telescope.actions.state')
local conf = require('telescope.config').values
local finders = require('telescope.finders')
local pickers = require('telescope.pickers')
local previewers = require('telescope.previewers')

local M = {}
local H = {}

-- State ---------------------------------------------------------------------------------------
-- H.defaults: the options given in telescope.setup({ extensions = { ai_host = {...} } }).
H.defaults = {}

--- Choose the model of `opts.task` (one of require('ai_host.picker').tasks()) among every endpoint's
--- models; without a task, pick the task first. <CR> sets the model for the task at once. Other
--- `opts` are Telescope's (theme, layout_config, previewer = false, ...).
---@param opts table|nil
function M.models(opts)
  opts = vim.tbl_extend('force', H.defaults, opts or {})
  local task = opts.task
  opts.task = nil
  if task == nil or task == '' then return H.pick_task(opts) end
  require('ai_host.picker').fetch(task, function(items, current) H.pick_model(opts, task, items, current) end)
end

-- Helpers --------------------------------------------------------------------------------------

function H.pick_model(opts, task, items, current)
  local picker = require('ai_host.picker')
  pickers
    .new(opts, {
      prompt_title = 'ai_host: model for ' .. task,
      results_title = 'now: ' .. tostring(current),
      finder = finders.new_table({
        results = items,
        entry_maker = function(item)
          local line = picker.format(item, current)
          return { value = item, display = line, ordinal = line }
        end,
      }),
      sorter = conf.generic_sorter(opts),
      previewer = previewers.new_buffer_previewer({
        title = 'ai_host model',
        define_preview = function(self, entry)
          vim.api.nvim_buf_set_lines(self.state.bufnr, 0, -1, false, picker.details(entry.value, task, current))
        end,
      }),
      attach_mappings = function(prompt_bufnr)
        actions.select_default:replace(H.on_select(prompt_bufnr, function(item) picker.choose(task, item) end))
        return true
      end,
    })
    :find()
end

function H.pick_task(opts)
  local picker = require('ai_host.picker')
  pickers
    .new(vim.deepcopy(opts), {
      prompt_title = 'ai_host: model for which task?',
      finder = finders.new_table({
        results = picker.tasks(),
        entry_maker = function(task) return { value = task, display = picker.format_task(task), ordinal = task } end,
      }),
      sorter = conf.generic_sorter(opts),
      attach_mappings = function(prompt_bufnr)
        actions.select_default:replace(
          H.on_select(prompt_bufnr, function(task) M.models(vim.tbl_extend('force', opts, { task = task })) end)
        )
        return true
      end,
    })
    :find()
end

--- The <CR> of a picker: close it and call `fn` with the selected value (with nothing selected,
--- say so and stay open).
function H.on_select(prompt_bufnr, fn)
  return function()
    local entry = action_state.get_selected_entry()
    if entry == nil then
      return vim.notify('ai_host: nothing matches; change the prompt or press <Esc>.', vim.log.levels.WARN)
    end
    actions.close(prompt_bufnr)
    fn(entry.value)
  end
end

return telescope.register_extension({
  setup = function(ext_config) H.defaults = vim.deepcopy(ext_config or {}) end,
  exports = { models = M.models, ai_host = M.models },
})
