--- ai_host.context: read what a request needs from the editor (a snapshot), cheaply.

local M = {}
local H = {}

--- The range around the cursor to explain: the enclosing function (tree-sitter), else the paragraph.
---@param buf integer
---@return integer line1, integer line2 1-based, inclusive
function M.around_cursor(buf)
  local row = vim.api.nvim_win_get_cursor(0)[1]
  local l1, l2 = H.enclosing_definition(buf)
  if l1 then return l1, l2 end
  return H.paragraph(buf, row)
end

--- The request for explaining lines line1..line2 of `buf`.
---@param buf integer
---@param line1 integer
---@param line2 integer
---@param context_lines integer
function M.range_request(buf, line1, line2, context_lines)
  local count = vim.api.nvim_buf_line_count(buf)
  line1 = math.max(1, math.min(line1, count))
  line2 = math.max(line1, math.min(line2, count))
  local get = function(a, b) -- 1-based inclusive
    if b < a then return '' end
    return table.concat(vim.api.nvim_buf_get_lines(buf, a - 1, b, false), '\n')
  end
  local diagnostics = {}
  for _, d in ipairs(M.diagnostics(buf, line1, line2)) do
    -- the code (E501, unused-local) is what a user searches for: it goes with the message
    local code = (d.code ~= nil and d.code ~= vim.NIL) and (' [' .. tostring(d.code) .. ']') or ''
    table.insert(diagnostics, { lnum = d.lnum + 1, severity = d.severity, message = d.message .. code })
  end
  local name = vim.api.nvim_buf_get_name(buf)
  return {
    code = get(line1, line2),
    before = get(math.max(1, line1 - context_lines), line1 - 1),
    after = get(line2 + 1, math.min(count, line2 + context_lines)),
    filename = name ~= '' and vim.fn.fnamemodify(name, ':~:.') or '',
    path = name ~= '' and vim.fn.fnamemodify(name, ':p') or '', -- the engine resolves links on it (deny list)
    buftype = vim.bo[buf].buftype, -- a terminal's text (`cat .env`) is never sent
    filetype = vim.bo[buf].filetype,
    start_line = line1,
    end_line = line2,
    diagnostics = diagnostics,
    buf = buf,
  }
end

--- The diagnostics (vim.diagnostic.get's items) on lines line1..line2 of `buf`, one that spans
--- several lines included when any of them is in the range.
---@param buf integer
---@param line1 integer
---@param line2 integer
---@return vim.Diagnostic[]
function M.diagnostics(buf, line1, line2)
  local out = {}
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    if d.lnum <= line2 - 1 and (d.end_lnum or d.lnum) >= line1 - 1 then table.insert(out, d) end
  end
  table.sort(out, function(a, b) return a.lnum < b.lnum end)
  return out
end

--- Requests the buffer's language servers have not answered yet (the scheduler lets them go first).
---@param buf integer
---@return integer
function M.lsp_pending(buf)
  local n = 0
  for _, client in ipairs(vim.lsp.get_clients({ bufnr = buf })) do
    for _, req in pairs(client.requests or {}) do
      if req.type == 'pending' then n = n + 1 end
    end
  end
  return n
end

-- Helpers --------------------------------------------------------------------------------------

-- Node types that name a definition worth explaining as a whole, across common grammars.
H.definition_pattern = { 'function', 'method', 'class', 'impl', 'struct', 'interface', 'module' }

function H.enclosing_definition(buf)
  local ok, node = pcall(vim.treesitter.get_node, { bufnr = buf })
  if not ok or node == nil then return nil end
  while node do
    local t = node:type()
    for _, pat in ipairs(H.definition_pattern) do
      if t:find(pat, 1, true) then
        local srow, _, erow, ecol = node:range()
        if ecol == 0 and erow > srow then erow = erow - 1 end
        if erow > srow then return srow + 1, erow + 1 end
      end
    end
    node = node:parent()
  end
  return nil
end

function H.paragraph(buf, row)
  local count = vim.api.nvim_buf_line_count(buf)
  local blank = function(r) return vim.api.nvim_buf_get_lines(buf, r - 1, r, false)[1]:match('^%s*$') ~= nil end
  local l1, l2 = row, row
  while l1 > 1 and not blank(l1 - 1) do
    l1 = l1 - 1
  end
  while l2 < count and not blank(l2 + 1) do
    l2 = l2 + 1
  end
  return l1, l2
end

return M
