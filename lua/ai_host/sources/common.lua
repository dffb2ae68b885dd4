--- ai_host.sources.common: a ghost-text suggestion as an LSP-style completion item, for menus.

local M = {}

--- How the item looks in a menu: its own kind name, icon and highlight (|AiHostKind|), so that it
--- never passes for a buffer word. Change the fields to restyle it.
M.kind = { name = 'AI', icon = '󰚩', hl = 'AiHostKind' }

--- The item for `text` at `anchor` (from ghost.fetch): it replaces the word before the cursor by
--- that word plus the suggestion, so the menu's fuzzy filter matches what was typed.
function M.item(text, anchor, filetype)
  local first = text:match('^[^\n]*')
  local label = anchor.keyword .. first
  if #label > 60 then label = label:sub(1, 57) .. '…' end
  if label == '' then label = vim.trim(text):match('^[^\n]*') end
  local start = anchor.col - #anchor.keyword
  return {
    label = label,
    kind = vim.lsp.protocol.CompletionItemKind.Text,
    insertTextFormat = vim.lsp.protocol.InsertTextFormat.PlainText,
    textEdit = {
      newText = anchor.keyword .. text,
      range = {
        start = { line = anchor.row, character = start },
        ['end'] = { line = anchor.row, character = anchor.col },
      },
    },
    documentation = { kind = 'markdown', value = '```' .. (filetype or '') .. '\n' .. text .. '\n```' },
    detail = 'ai_host',
    -- blink.cmp reads these three
    kind_name = M.kind.name,
    kind_icon = M.kind.icon,
    kind_hl = M.kind.hl,
    -- nvim-cmp reads this table
    cmp = { kind_text = M.kind.name, kind_hl_group = M.kind.hl, icon = M.kind.icon, icon_hl_group = M.kind.hl },
  }
end

--- Whether a menu may ask in this buffer (not special buffers, not where the user turned it off).
function M.available()
  local buf = vim.api.nvim_get_current_buf()
  return vim.bo[buf].buftype == '' and not vim.b[buf].ai_host_disable
end

--- Ask for the suggestion at the cursor; `done(items)` gets zero or one item. Returns the cancel.
function M.fetch_items(buf, done)
  return require('ai_host.ghost').fetch(
    buf,
    function(text, anchor) done(text ~= '' and { M.item(text, anchor, vim.bo[buf].filetype) } or {}) end
  )
end

return M
