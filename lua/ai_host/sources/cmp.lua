--- ai_host.sources.cmp: an nvim-cmp source. Register it once, then list it in cmp's sources:
---   require('ai_host.sources.cmp').register()
---   cmp.setup({ sources = { { name = 'ai_host' }, { name = 'nvim_lsp' } } })
--- nvim-cmp's callback is called exactly once, when the suggestion is there (or with no items).

local source = {}

function source.new()
  return setmetatable({ cancel = nil }, { __index = source })
end

--- Register with nvim-cmp (when it is installed).
function source.register()
  local ok, cmp = pcall(require, 'cmp')
  if not ok then return false end
  cmp.register_source('ai_host', source.new())
  return true
end

function source:is_available()
  return require('ai_host.sources.common').available()
end

function source:get_debug_name()
  return 'ai_host'
end

function source:complete(params, callback)
  if self.cancel then self.cancel() end -- a newer keystroke: the older request is stale
  local buf = (params and params.context and params.context.bufnr) or vim.api.nvim_get_current_buf()
  self.cancel = require('ai_host.sources.common').fetch_items(buf, function(items)
    self.cancel = nil
    callback({ items = items, isIncomplete = false })
  end)
end

return source
