--- ai_host.explain: the :AIExplain float. Opens at once, streams Markdown in, cancels on close.
---
--- The float's buffer holds exactly the model's text; status (working, errors, figures) lives in
--- the title, the footer and extmarks, never in the text. The explained buffer is never modified.
---
--- Follow-ups (`i`, `<CR>`): a question asked in a prompt line; its answer streams below the
--- earlier ones, after a line that shows the question, as the next turn of a 'chat' request whose
--- history (in memory only) is the explanation and the earlier follow-ups.
---
--- The definitions the code uses (ai_host.symbols) are gathered after the float opens, and the
--- request goes when they are in (at most `symbols.timeout_ms` later); follow-ups send them again.

local M = {}
local H = {}

-- State ---------------------------------------------------------------------------------------
-- H.state: nil, or the open float:
--   { buf, win, id (job id or nil), origin (source buffer), started (hrtime), timer (uv timer),
--     status ('working'|'streaming'|'done'|'error'|'cancelled'), message (last error or nil),
--     figures (table from the 'done' event or nil), req (the explain request: each follow-up
--     sends its range again), history ({ role = 'user'|'assistant', text } turns answered so far),
--     question (the follow-up being answered, or nil for the explanation), pieces (the text of the
--     answer streaming now), dropped (earlier turns the engine left out of the last answer),
--     gathering (cancels the lookup of the definitions the code uses, while it runs) }
H.state = nil
H.ns = vim.api.nvim_create_namespace('ai_host_explain')

-- The user turn the explanation answers, as the history of a follow-up tells it.
H.explain_question = 'Explain this code.'

--- Explain lines line1..line2 of the current buffer in a float.
---@param line1 integer
---@param line2 integer
function M.open(line1, line2)
  local ai = require('ai_host')
  local config = ai.get_config()
  local origin = vim.api.nvim_get_current_buf()
  local req = require('ai_host.context').range_request(origin, line1, line2, config.explain.context_lines)
  -- the engine routes the request (endpoint, model fallbacks); the title names the first choice
  local model = H.model_label(config.models.explain)

  M.close() -- running it again replaces the old one (and cancels its request)

  local buf = vim.api.nvim_create_buf(false, true)
  vim.bo[buf].bufhidden = 'wipe'
  -- 'filetype' is set when the stream ends: markdown's tree-sitter highlighting would re-parse the
  -- whole float on every frame while it streams (measured: p99 of an RPC round trip 12 ms → see
  -- docs/benchmarks.md)
  pcall(vim.api.nvim_buf_set_name, buf, 'ai-host://explain/' .. buf)
  vim.bo[buf].modifiable = false

  local label = (req.filename ~= '' and vim.fn.fnamemodify(req.filename, ':t') or '[No Name]')
    .. ':'
    .. req.start_line
    .. '-'
    .. req.end_line
  local win = vim.api.nvim_open_win(buf, true, H.win_config(config, label, model))
  vim.wo[win].wrap = true
  vim.wo[win].linebreak = true
  vim.wo[win].number = false
  vim.wo[win].relativenumber = false
  vim.wo[win].signcolumn = 'no'
  vim.wo[win].conceallevel = 2

  local state = {
    buf = buf,
    win = win,
    origin = origin,
    started = vim.uv.hrtime(),
    status = 'working',
    model = model,
    req = vim.deepcopy(req),
    history = {},
    pieces = {},
  }
  H.state = state
  for _, lhs in ipairs({ 'q', '<Esc>' }) do
    vim.keymap.set('n', lhs, M.close, { buffer = buf, nowait = true, desc = 'ai_host: close and cancel' })
  end
  vim.keymap.set('n', '<C-c>', M.cancel, { buffer = buf, nowait = true, desc = 'ai_host: stop the answer' })
  for _, lhs in ipairs({ 'i', '<CR>' }) do
    vim.keymap.set('n', lhs, function() M.ask() end, { buffer = buf, nowait = true, desc = 'ai_host: ask a follow-up' })
  end
  vim.api.nvim_create_autocmd('WinClosed', {
    pattern = tostring(win),
    once = true,
    callback = function()
      if H.state == state then vim.schedule(M.close) end
    end,
  })
  H.set_mark(state, 'Comment', '… waiting for ' .. model)
  state.timer = vim.uv.new_timer()
  state.timer:start(0, 250, vim.schedule_wrap(function() H.tick(state) end))

  -- the definitions the code uses, asked of the language servers: the request goes once they answer
  -- (or their time is up), while the float already shows that it waits
  state.gathering = require('ai_host.symbols').gather(origin, req.start_line, req.end_line, function(symbols)
    state.gathering = nil
    if H.state ~= state or state.status ~= 'working' then return end
    req.symbols, state.req.symbols = symbols, vim.deepcopy(symbols)
    H.send(state, 'explain', req)
  end)
  vim.api.nvim_exec_autocmds(
    'User',
    { pattern = 'AiHostExplainOpen', modeline = false, data = { buf = buf, win = win } }
  )
  return buf, win
end

--- Ask a follow-up about the explained code: `question`, or what vim.ui.input asks for. Its answer
--- streams below the earlier ones in the same float.
---@param question string|nil
function M.ask(question)
  local state = H.state
  if state == nil then return end
  if state.status == 'working' or state.status == 'streaming' then
    return H.say('ai_host: an answer is still coming; wait for it, or stop it with <C-c>, then ask again.')
  end
  if #state.history == 0 then
    return H.say('ai_host: there is no explanation to follow up on; run :AIExplain again.')
  end
  if question == nil then
    return vim.ui.input({ prompt = 'Ask: ' }, function(input)
      if input ~= nil and input:match('%S') then M.ask(input) end
    end)
  end
  state.question = question
  state.pieces = {}
  state.status, state.started, state.waiting_for, state.figures = 'working', vim.uv.hrtime(), nil, nil
  H.write(state, (H.is_empty(state) and '' or '\n\n') .. H.separator(question) .. '\n\n')
  H.set_mark(state, 'Comment', '… waiting for ' .. state.model)
  H.stop_timer(state)
  state.timer = vim.uv.new_timer()
  state.timer:start(0, 250, vim.schedule_wrap(function() H.tick(state) end))
  local req = vim.deepcopy(state.req)
  req.id, req.history, req.message = nil, vim.deepcopy(state.history), question
  H.send(state, 'chat', req)
end

--- Stop the answer that streams now (the server stops generating); the float stays open.
function M.cancel()
  local state = H.state
  if state == nil or not (state.status == 'working' or state.status == 'streaming') then return end
  require('ai_host.host').cancel(state.id)
  state.status = 'cancelled'
  H.stop_gathering(state)
  H.stop_timer(state)
  H.set_mark(state, nil)
  H.set_footer(state, #state.history > 0 and 'cancelled: i asks again' or 'cancelled: q closes')
end

--- Close the float and cancel its request (the server stops generating).
function M.close()
  local state = H.state
  if state == nil then return end
  H.state = nil
  if state.id and (state.status == 'working' or state.status == 'streaming') then
    require('ai_host.host').cancel(state.id)
    state.status = 'cancelled'
  end
  H.stop_gathering(state)
  H.stop_timer(state)
  if vim.api.nvim_win_is_valid(state.win) then pcall(vim.api.nvim_win_close, state.win, true) end
  if vim.api.nvim_buf_is_valid(state.buf) then pcall(vim.api.nvim_buf_delete, state.buf, { force = true }) end
end

--- What the float shows now (for tests, the statusline and bug reports).
function M.info()
  local s = H.state
  if s == nil then return { open = false } end
  local lines = vim.api.nvim_buf_is_valid(s.buf) and vim.api.nvim_buf_get_lines(s.buf, 0, -1, false) or {}
  local cfg = vim.api.nvim_win_is_valid(s.win) and vim.api.nvim_win_get_config(s.win) or {}
  return {
    open = true,
    buf = s.buf,
    win = s.win,
    id = s.id,
    status = s.status,
    message = s.message,
    figures = s.figures,
    waiting_for = s.waiting_for,
    warning = s.warning,
    text = table.concat(lines, '\n'),
    history = s.history,
    dropped = s.dropped,
    title = H.flatten(cfg.title),
    footer = H.flatten(cfg.footer),
  }
end

-- Helpers --------------------------------------------------------------------------------------

-- Start the request of the float's answer now: 'explain' (the explanation) or 'chat' (a follow-up).
function H.send(state, kind, req)
  local id, msg = require('ai_host.host').start(kind, req, {
    on_chunk = function(data) H.append(state, data.text) end,
    on_status = function(data) H.status(state, data) end,
    on_done = function(data) H.finish(state, data) end,
    on_error = function(data) H.fail(state, data.message) end,
  })
  state.id = id
  if not id then H.fail(state, msg) end
end

-- The line above a follow-up's answer: the question, on one line.
function H.separator(question) return '──── ' .. question:gsub('%s+', ' ') .. ' ────' end

function H.is_empty(state)
  return vim.api.nvim_buf_line_count(state.buf) == 1 and vim.api.nvim_buf_get_lines(state.buf, 0, 1, false)[1] == ''
end

function H.say(message) vim.notify(message, vim.log.levels.INFO) end

function H.win_config(config, label, model)
  local cols, rows = vim.o.columns, vim.o.lines - vim.o.cmdheight
  local size = function(v, total)
    return math.max(10, math.min(total - 4, v <= 1 and math.floor(total * v) or math.floor(v)))
  end
  local width, height = size(config.ui.float_width, cols), size(config.ui.float_height, rows)
  return {
    relative = 'editor',
    width = width,
    height = height,
    row = math.floor((rows - height) / 2) - 1,
    col = math.floor((cols - width) / 2),
    style = 'minimal',
    border = config.ui.border,
    title = { { ' AI explain · ' .. label .. ' · ' .. model .. ' ', 'AiHostTitle' } },
    title_pos = 'center',
    footer = { { ' working ', 'AiHostFooter' } },
    footer_pos = 'right',
  }
end

function H.set_footer(state, text, hl)
  if not vim.api.nvim_win_is_valid(state.win) then return end
  vim.api.nvim_win_set_config(
    state.win,
    { footer = { { ' ' .. text .. ' ', hl or 'AiHostFooter' } }, footer_pos = 'right' }
  )
end

--- A model's name as the title shows it: a file path (llama.cpp serves models by path) by its name.
function H.model_label(model)
  if type(model) ~= 'string' then return '?' end
  return model:find('[/\\]') and vim.fn.fnamemodify(model, ':t') or model
end

function H.set_mark(state, hl, text)
  if not vim.api.nvim_buf_is_valid(state.buf) then return end
  vim.api.nvim_buf_clear_namespace(state.buf, H.ns, 0, -1)
  if text == nil then return end
  local last = vim.api.nvim_buf_line_count(state.buf) - 1
  -- virtual lines never wrap: break the text at the float's width, so none of it is cut off
  local width = vim.api.nvim_win_is_valid(state.win) and vim.api.nvim_win_get_width(state.win) - 1 or 78
  local virt_lines = {}
  for _, line in ipairs(H.wrap(text, math.max(20, width))) do
    table.insert(virt_lines, { { line, hl } })
  end
  vim.api.nvim_buf_set_extmark(state.buf, H.ns, last, 0, { virt_lines = virt_lines })
end

function H.tick(state)
  if state.status ~= 'working' and state.status ~= 'streaming' then return H.stop_timer(state) end
  local secs = (vim.uv.hrtime() - state.started) / 1e9
  local what = state.status == 'working' and (state.waiting_for or 'waiting') or 'streaming'
  H.set_footer(state, string.format('%s %.1fs', what, secs))
end

-- The scheduler says why we wait (LSP busy, GPU memory) or warns (running with a full GPU).
function H.status(state, data)
  if data.warning then
    state.warning = data.text
    vim.schedule(function() vim.notify('ai_host: ' .. data.text, vim.log.levels.WARN) end)
  elseif state.status == 'working' then
    state.waiting_for = data.text
    H.tick(state)
  end
end

function H.stop_gathering(state)
  if state.gathering then
    state.gathering()
    state.gathering = nil
  end
end

function H.stop_timer(state)
  if state.timer then
    state.timer:stop()
    if not state.timer:is_closing() then state.timer:close() end
    state.timer = nil
  end
end

function H.append(state, text)
  if text == nil or text == '' or not vim.api.nvim_buf_is_valid(state.buf) then return end
  if state.status == 'working' then
    state.status = 'streaming'
    H.set_mark(state, nil)
  end
  table.insert(state.pieces, text)
  H.write(state, text)
end

-- Add `text` at the end of the float's buffer, the cursor following it if it was on the last line.
function H.write(state, text)
  local buf = state.buf
  if not vim.api.nvim_buf_is_valid(buf) then return end
  local last = vim.api.nvim_buf_line_count(buf) - 1
  -- the byte length of the last line is tracked, not read back: reading a long last line on every
  -- frame copied all of it (a model writing one huge paragraph made each frame slower)
  local tail = state.tail or 0
  local follow = vim.api.nvim_win_is_valid(state.win) and vim.api.nvim_win_get_cursor(state.win)[1] == last + 1
  local lines = vim.split(text, '\n', { plain = true })
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_text(buf, last, tail, last, tail, lines)
  vim.bo[buf].modifiable = false
  state.tail = #lines > 1 and #lines[#lines] or tail + #text
  if follow then
    local n = vim.api.nvim_buf_line_count(buf)
    pcall(vim.api.nvim_win_set_cursor, state.win, { n, 0 })
  end
end

-- Lines of at most `width` display cells, broken at spaces where possible.
function H.wrap(text, width)
  local out = {}
  for _, para in ipairs(vim.split(text, '\n', { plain = true })) do
    local line = ''
    for word in para:gmatch('%S+') do
      while vim.fn.strdisplaywidth(word) > width do -- a word longer than a line (a path, a URL)
        if line ~= '' then
          table.insert(out, line)
          line = ''
        end
        local cut = vim.fn.strcharpart(word, 0, width)
        table.insert(out, cut)
        word = word:sub(#cut + 1)
      end
      if line == '' then
        line = word
      elseif vim.fn.strdisplaywidth(line .. ' ' .. word) <= width then
        line = line .. ' ' .. word
      else
        table.insert(out, line)
        line = word
      end
    end
    table.insert(out, line)
  end
  return out
end

-- Markdown colours once the text is complete: the filetype, and tree-sitter's highlighter, which
-- a scratch buffer does not get by itself (Neovim ships the markdown parsers).
function H.highlight(state)
  if vim.api.nvim_buf_is_valid(state.buf) and vim.bo[state.buf].filetype == '' then
    vim.bo[state.buf].filetype = 'markdown'
    pcall(vim.treesitter.start, state.buf, 'markdown')
  end
end

function H.finish(state, data)
  H.highlight(state)
  state.status = 'done'
  state.figures = data
  -- the exchange joins the history a follow-up sends (the explanation answers H.explain_question)
  table.insert(state.history, { role = 'user', text = state.question or H.explain_question })
  table.insert(state.history, { role = 'assistant', text = table.concat(state.pieces) })
  state.dropped = tonumber(data.history_dropped) or 0
  H.stop_timer(state)
  H.set_mark(state, nil)
  local parts = {}
  if data.ttft_ms ~= nil and data.ttft_ms ~= vim.NIL then
    table.insert(parts, string.format('first token %d ms', data.ttft_ms))
  end
  if data.tokens_per_s ~= nil and data.tokens_per_s ~= vim.NIL then
    table.insert(parts, string.format('%.1f tok/s', data.tokens_per_s))
  end
  if data.done_reason == 'length' then table.insert(parts, 'cut at explain.num_predict') end
  local symbols = tonumber(data.symbols) or 0
  if symbols > 0 then table.insert(parts, symbols .. ' definition' .. (symbols == 1 and '' or 's')) end
  if state.dropped > 0 then
    table.insert(parts, state.dropped .. ' earlier turn' .. (state.dropped == 1 and '' or 's') .. ' left out')
  end
  if type(data.model) == 'string' and H.model_label(data.model) ~= state.model then
    table.insert(parts, 'answered by ' .. H.model_label(data.model))
  end
  H.set_footer(state, #parts > 0 and table.concat(parts, ' · ') or 'done')
  if vim.api.nvim_buf_is_valid(state.buf) and table.concat(state.pieces) == '' then
    H.set_mark(state, 'Comment', '(the model returned nothing)')
  end
end

function H.fail(state, message)
  H.highlight(state)
  state.status = 'error'
  state.message = message
  H.stop_timer(state)
  H.set_mark(state, 'ErrorMsg', message)
  H.set_footer(state, 'error', 'ErrorMsg')
  -- scheduled: an error raised while :AIExplain itself runs must not abort the command
  vim.schedule(function() vim.notify(message, vim.log.levels.ERROR) end)
end

function H.flatten(chunks)
  if type(chunks) ~= 'table' then return chunks or '' end
  local out = {}
  for _, c in ipairs(chunks) do
    table.insert(out, type(c) == 'table' and c[1] or c)
  end
  return table.concat(out)
end

return M
