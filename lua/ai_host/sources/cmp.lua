--- ai_host.sources.cmp: an nvim-cmp source. Register it once, then list it in cmp's sources:
---   require('ai_host.sources.cmp').register()
---   cmp.setup({ sources = { { name = 'nvim_lsp' }, { name = 'buffer' }, { name = 'ai_host' } } })
--- nvim-cmp's callback is called exactly once, when the suggestion is there (or with no items).
---
--- The item arrives late, and nvim-cmp rebuilds its menu when it does: an item that sorted first
--- would become the first entry under the user's <Tab> or <CR>. register() therefore puts
--- `comparator` (ai_host's items after all others) in front of cmp's comparators; a later
--- cmp.setup() that sets `sorting.comparators` replaces it, so put it first in that list.

local source = {}
local H = {}

function source.new() return setmetatable({ cancel = nil }, { __index = source }) end

--- Register with nvim-cmp (when it is installed). `opts.sort_last = false` leaves cmp's sorting alone.
---@param opts { sort_last: boolean? }|nil
function source.register(opts)
  local ok, cmp = pcall(require, 'cmp')
  if not ok then return false end
  cmp.register_source('ai_host', source.new())
  if not (opts and opts.sort_last == false) then H.sort_last(cmp) end
  H.hide_ghost_with_menu(cmp)
  return true
end

--- An nvim-cmp comparator: ai_host's items after every other item, no opinion otherwise.
function source.comparator(a, b)
  local a_ours, b_ours = a.source.name == 'ai_host', b.source.name == 'ai_host'
  if a_ours ~= b_ours then return b_ours end
  return nil
end

function source:is_available() return require('ai_host.sources.common').available() end

function source:get_debug_name() return 'ai_host' end

function source:complete(params, callback)
  if self.cancel then self.cancel() end -- a newer keystroke: the older request is stale
  local buf = (params and params.context and params.context.bufnr) or vim.api.nvim_get_current_buf()
  self.cancel = require('ai_host.sources.common').fetch_items(buf, function(items)
    self.cancel = nil
    callback({ items = items, isIncomplete = false })
  end)
end

-- Helpers --------------------------------------------------------------------------------------

function H.sort_last(cmp)
  local comparators = vim.tbl_get(cmp.get_config(), 'sorting', 'comparators') or {}
  if vim.tbl_contains(comparators, source.comparator) then return end
  cmp.setup({ sorting = { comparators = vim.list_extend({ source.comparator }, comparators) } })
end

-- Ghost text and the menu never show at once (completion.hide_with_menu): the menu opens after
-- the keystroke that may have kept a suggestion on screen.
function H.hide_ghost_with_menu(cmp)
  if H.hooked then return end
  H.hooked = true
  cmp.event:on('menu_opened', function()
    if require('ai_host').get_config().completion.hide_with_menu then require('ai_host.ghost').clear() end
  end)
end

return source
