--- ai_host.sources.blink: a blink.cmp source. In blink's config:
---   sources = { default = { 'lsp', 'path', 'buffer', 'ai_host' },
---               providers = { ai_host = { name = 'AI', module = 'ai_host.sources.blink', async = true } } }
--- Contract: the callback is called at once (nothing yet, incomplete), later calls append the
--- suggestion when it has arrived; the returned function cancels the request.
--- The item sorts below every other (its score_offset, `source.score_offset`): it arrives late,
--- and blink selects the first item again when items are added, so an item that sorted first
--- would take the selection from under the user's <Tab> or <CR>. Raise it with the provider's
--- own `score_offset`.

local source = {}

--- Added to the item's fuzzy score. A keyword's best match scores about 16 a character, so this
--- keeps the item under every item that matches what was typed at all.
source.score_offset = -100

function source.new(opts) return setmetatable({ opts = opts or {} }, { __index = source }) end

function source:enabled() return require('ai_host.sources.common').available() end

function source:get_trigger_characters() return {} end

function source:get_completions(ctx, callback)
  local buf = (ctx and ctx.bufnr) or vim.api.nvim_get_current_buf()
  callback({ items = {}, is_incomplete_forward = true, is_incomplete_backward = true })
  return require('ai_host.sources.common').fetch_items(buf, function(items)
    for _, item in ipairs(items) do
      item.score_offset = source.score_offset
    end
    callback({ items = items, is_incomplete_forward = false, is_incomplete_backward = false })
  end)
end

function source:resolve(item, callback) callback(item) end

return source
