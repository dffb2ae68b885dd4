--- ai_host.fix: :AIFix and :AIDoc, rewrites with a purpose shown through the refactor preview.
---
--- :AIFix sends the diagnostics of the range and the titles of the code actions the language
--- server offers for it (asked asynchronously, waited for at most `M.actions_timeout_ms`: the
--- editor never waits on a server), with the definitions the code uses (ai_host.symbols, asked at
--- the same time); :AIDoc sends the function under the cursor for its doc comment.

local M = {}
local H = {}

--- How long :AIFix waits for the language servers' code actions before asking without them.
M.actions_timeout_ms = 300

--- Propose a fix for the diagnostics on lines line1..line2 of the current buffer. Without any,
--- says so and asks nothing.
---@param line1 integer
---@param line2 integer
function M.fix(line1, line2)
  local buf = vim.api.nvim_get_current_buf()
  local diags = require('ai_host.context').diagnostics(buf, line1, line2)
  if #diags == 0 then
    local where = line1 == line2 and ('line ' .. line1) or ('lines ' .. line1 .. '-' .. line2)
    vim.notify(
      'ai_host: no diagnostics on '
        .. where
        .. ', so nothing to fix; ]d moves to the next one, :AIRefactor rewrites code.',
      vim.log.levels.INFO
    )
    return
  end
  -- the code actions and the definitions the code uses are asked at once; the fix goes when both are in
  local titles, symbols
  local go = function()
    if titles == nil or symbols == nil then return end
    require('ai_host.refactor').start({
      buf = buf,
      line1 = line1,
      line2 = line2,
      purpose = 'fix',
      actions = titles,
      symbols = symbols,
    })
  end
  H.code_actions(buf, line1, line2, diags, function(t)
    titles = t
    go()
  end)
  require('ai_host.symbols').gather(buf, line1, line2, function(s)
    symbols = s
    go()
  end)
end

--- Propose the doc comment of lines line1..line2 of the current buffer (the function under the
--- cursor when the caller found one).
---@param line1 integer
---@param line2 integer
function M.doc(line1, line2) require('ai_host.refactor').start({ line1 = line1, line2 = line2, purpose = 'doc' }) end

-- Helpers --------------------------------------------------------------------------------------

-- Call `done(titles)` once with the titles of the code actions the buffer's language servers offer
-- for the range, or with what came before the timeout ({} without a server that has code actions).
function H.code_actions(buf, line1, line2, diags, done)
  local clients = vim.lsp.get_clients({ bufnr = buf, method = 'textDocument/codeAction' })
  if #clients == 0 then return done({}) end
  local finished, timer, cancel = false, vim.uv.new_timer(), nil
  local finish = function(titles)
    if finished then return end
    finished = true
    timer:stop()
    if not timer:is_closing() then timer:close() end
    if cancel then pcall(cancel) end
    done(titles)
  end
  timer:start(M.actions_timeout_ms, 0, vim.schedule_wrap(function() finish({}) end))
  local params = function(client)
    return {
      textDocument = { uri = vim.uri_from_bufnr(buf) },
      range = H.range(buf, line1, line2, client.offset_encoding or 'utf-16'),
      context = { diagnostics = H.lsp_diagnostics(diags), triggerKind = 1 },
    }
  end
  cancel = vim.lsp.buf_request_all(buf, 'textDocument/codeAction', params, function(results)
    local titles = {}
    for _, res in pairs(results or {}) do
      for _, action in ipairs(type(res.result) == 'table' and res.result or {}) do
        if type(action.title) == 'string' and action.title ~= '' then table.insert(titles, action.title) end
      end
    end
    vim.schedule(function() finish(titles) end)
  end)
end

-- The range's whole lines as an LSP range.
function H.range(buf, line1, line2, encoding)
  local last = vim.api.nvim_buf_get_lines(buf, line2 - 1, line2, false)[1] or ''
  local ok, col = pcall(vim.str_utfindex, last, encoding)
  return {
    start = { line = line1 - 1, character = 0 },
    ['end'] = { line = line2 - 1, character = ok and col or #last },
  }
end

-- The diagnostics as the server sent them (a code action refers to its own), else as LSP shapes them.
function H.lsp_diagnostics(diags)
  local out = {}
  for _, d in ipairs(diags) do
    local lsp = type(d.user_data) == 'table' and d.user_data.lsp or nil
    table.insert(out, lsp or {
      range = {
        start = { line = d.lnum, character = d.col or 0 },
        ['end'] = { line = d.end_lnum or d.lnum, character = d.end_col or d.col or 0 },
      },
      severity = d.severity,
      message = d.message,
      code = d.code,
      source = d.source,
    })
  end
  return out
end

return M
