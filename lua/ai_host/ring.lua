--- ai_host.ring: the context ring, chunks of other buffers the user recently worked in.
---
--- Text around the cursor of a buffer left (or left insert mode in) and what was yanked, newest
--- first, a few chunks at most. Ghost-text requests carry the part of it the engine can use.

local M = {}
local H = {}

-- State ---------------------------------------------------------------------------------------
-- H.ring: newest first, { { buf, key (a place or a yank: the same key replaces the older chunk),
--   filename (relative, as the prompt names it), path (absolute, for the deny list), text }, ... }
H.ring = {}
H.size = 6
H.chunk_lines = 40 -- lines kept around the cursor of a buffer left or edited
H.yank_chars = 2000 -- most characters kept of a yank
-- The share of `completion.context_chars` the engine keeps for other files, and what each chunk
-- costs of it besides its text: EXTRA_CONTEXT_SHARE and fim.with_extra in the Python package.
H.share = 0.25
H.chunk_overhead = 16

--- Start remembering (called by ai_host.ghost.attach()).
function M.attach()
  local group = vim.api.nvim_create_augroup('ai_host_ring', { clear = true })
  local au = function(event, callback) vim.api.nvim_create_autocmd(event, { group = group, callback = callback }) end
  au('BufLeave', function(ev) H.remember_around_cursor(ev.buf) end)
  au('InsertLeave', function(ev) H.remember_around_cursor(ev.buf) end)
  au('TextYankPost', function(ev) H.remember_yank(ev.buf) end)
  au('BufWipeout', function(ev) M.forget(ev.buf) end)
end

--- The chunks that go with a request from `buf`: newest first, none of `buf` itself nor already in
--- `prefix`, within the engine's budget for them (the rest would be cut there: it is not sent).
---@param buf integer
---@param context_chars integer `completion.context_chars`
---@param prefix string|nil the text before the cursor that the request carries
---@return { filename: string, path: string, text: string }[]
function M.extra(buf, context_chars, prefix)
  local budget, used, out = math.floor(context_chars * H.share), 0, {}
  for _, chunk in ipairs(H.ring) do
    local text = chunk.text:gsub('^\n+', ''):gsub('\n+$', '')
    local cost = #text + #chunk.filename + H.chunk_overhead
    local useful = chunk.buf ~= buf and (prefix == nil or not prefix:find(text, 1, true))
    if useful and used + cost <= budget then
      used = used + cost
      table.insert(out, { filename = chunk.filename, path = chunk.path, text = chunk.text })
    end
  end
  return out
end

--- A wiped buffer leaves nothing behind: its chunks (yanks too) leave the ring.
function M.forget(buf)
  for i = #H.ring, 1, -1 do
    if H.ring[i].buf == buf then table.remove(H.ring, i) end
  end
end

-- Helpers --------------------------------------------------------------------------------------

function H.usable(buf)
  return vim.api.nvim_buf_is_valid(buf) and vim.bo[buf].buftype == '' and vim.api.nvim_buf_get_name(buf) ~= ''
end

function H.remember(buf, text, key)
  if not H.usable(buf) or not text:find('%S') then return end
  for i = #H.ring, 1, -1 do -- the same place or the same text replaces the older chunk
    if H.ring[i].key == key or H.ring[i].text == text then table.remove(H.ring, i) end
  end
  table.insert(H.ring, 1, {
    buf = buf,
    key = key,
    filename = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(buf), ':~:.'),
    path = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(buf), ':p'),
    text = text,
  })
  while #H.ring > H.size do
    table.remove(H.ring)
  end
end

function H.remember_around_cursor(buf)
  if not H.usable(buf) or vim.api.nvim_get_current_buf() ~= buf then return end
  local row = vim.api.nvim_win_get_cursor(0)[1]
  local first = math.max(0, row - 1 - H.chunk_lines / 2)
  local lines = vim.api.nvim_buf_get_lines(buf, first, first + H.chunk_lines, false)
  H.remember(buf, table.concat(lines, '\n'), buf .. ':' .. math.floor(first / H.chunk_lines))
end

function H.remember_yank(buf)
  local text = table.concat(vim.v.event.regcontents or {}, '\n'):sub(1, H.yank_chars)
  H.remember(buf, text, 'yank:' .. text)
end

return M
