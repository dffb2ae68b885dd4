--- ai_host.chat: :AIChat, a conversation about a range of code in a split buffer.
---
--- The buffer (`ai-host://chat/N`, Markdown) is a transcript the user never edits: a message is
--- typed in a prompt line (`i`, `a`, `o` or `<CR>`: vim.ui.input) or given to `:AIChat {message}`,
--- and its answer streams in below it. Each turn is a 'chat' request with the range (read again
--- from the buffer, so edits and applied code blocks are seen), the earlier turns (memory only,
--- never written to disk) and the message; the engine leaves out the oldest turns that do not fit
--- the model's context and says how many, which the status line below the answer shows. The
--- definitions the code uses (ai_host.symbols) go with each turn.

local M = {}
local H = {}

-- State ---------------------------------------------------------------------------------------
-- H.chats: chat buffer -> conversation:
--   { n, buf, origin (the buffer the code is in), marks ({ first, last } extmarks on the range's
--     lines in origin: they follow edits above and inside it), label ('file:3-5'), req (the range
--     request at the start: used when origin is gone), history ({ role, text } turns answered),
--     status ('idle'|'working'|'streaming'|'done'|'error'|'cancelled'), id (job id), message (the
--     message being answered), pieces (its answer so far), turn_at ({ row, col } where its
--     exchange starts in the buffer: regenerate deletes from there), tail (byte length of the last
--     line), figures ('done' event), dropped (turns the engine left out), error (last message),
--     turn (counts the turns asked: a lookup of definitions that ends late sends nothing), symbols
--     ({ code, list }: the definitions the code uses, looked up again when the code changes) }
-- H.current: the conversation :AIChat without a range goes on with (the last one opened or used).
H.chats = {}
H.current = nil
H.counter = 0
H.ns = vim.api.nvim_create_namespace('ai_host_chat')
H.range_ns = vim.api.nvim_create_namespace('ai_host_chat_range')

--- :[range]AIChat [message]. With a range, a new conversation about it; without one, the current
--- conversation (shown and focused), else a new one about the function or paragraph around the
--- cursor. With a message, it is sent as the next turn; run in the conversation's buffer without
--- one, it asks for one.
---@param opts { line1: integer?, line2: integer?, range: integer?, message: string? }|nil
function M.open(opts)
  opts = opts or {}
  local message = (opts.message or '') ~= '' and opts.message or nil
  local here = H.chats[vim.api.nvim_get_current_buf()]
  local conv
  if here ~= nil then
    conv = here
  elseif (opts.range or 0) == 0 and H.current ~= nil and H.valid(H.current) then
    conv = H.current
  else
    local origin = vim.api.nvim_get_current_buf()
    local line1, line2 = opts.line1, opts.line2
    if (opts.range or 0) == 0 or line1 == nil then
      line1, line2 = require('ai_host.context').around_cursor(origin)
    end
    conv = H.new(origin, line1, line2)
  end
  H.current = conv
  H.show(conv)
  if message then
    M.send(message)
  elseif here ~= nil then -- :AIChat in the conversation itself: a message is what it can mean
    M.ask()
  end
  return conv.buf
end

--- Send `message` as the next turn of the current conversation (opening one if there is none).
---@param message string
function M.send(message)
  local conv = H.current
  if conv == nil or not H.valid(conv) then return M.open({ message = message }) end
  if conv.status == 'working' or conv.status == 'streaming' then
    return H.say('ai_host: an answer is still coming; wait for it, or stop it with <C-c>, then send again.')
  end
  local lines = vim.api.nvim_buf_line_count(conv.buf)
  conv.turn_at = { lines - 1, conv.tail }
  H.write(conv, '\n\n## You\n\n' .. message .. '\n\n## AI\n\n')
  H.ask_model(conv, message)
end

--- Ask for a message in a prompt line, and send it.
function M.ask()
  if H.current == nil or not H.valid(H.current) then return end
  vim.ui.input({ prompt = 'AI chat: ' }, function(input)
    if input ~= nil and input:match('%S') then M.send(input) end
  end)
end

--- Ask for the last answer again (the earlier one is removed from the buffer and the history).
function M.regenerate()
  local conv = H.current
  if conv == nil or not H.valid(conv) then return end
  if conv.status == 'working' or conv.status == 'streaming' then
    return H.say('ai_host: an answer is still coming; stop it with <C-c> first, then press gr.')
  end
  if conv.message == nil then return H.say('ai_host: nothing to regenerate yet; press i to send a message.') end
  if conv.answered then -- the last exchange leaves the history; it is asked again
    table.remove(conv.history)
    table.remove(conv.history)
  end
  local row, col = conv.turn_at[1], conv.turn_at[2]
  local message = conv.message
  H.set_text(conv, row, col, -1, -1, { '' })
  conv.tail = col
  H.write(conv, '\n\n## You\n\n' .. message .. '\n\n## AI\n\n')
  H.ask_model(conv, message)
end

--- Stop the answer that streams now (the server stops generating).
function M.cancel()
  local conv = H.current
  if conv == nil or not (conv.status == 'working' or conv.status == 'streaming') then return end
  require('ai_host.host').cancel(conv.id)
  conv.status = 'cancelled'
  H.render_status(conv)
end

--- Close the conversation's windows (cancelling its answer); :AIChat shows it again.
function M.close()
  local conv = H.current
  if conv == nil then return end
  M.cancel()
  if not vim.api.nvim_buf_is_valid(conv.buf) then return end
  for _, win in ipairs(vim.fn.win_findbuf(conv.buf)) do
    if #vim.api.nvim_tabpage_list_wins(0) > 1 then
      pcall(vim.api.nvim_win_close, win, false)
    elseif vim.api.nvim_buf_is_valid(conv.origin) then
      vim.api.nvim_win_set_buf(win, conv.origin)
    end
  end
end

--- Yank the last code block of the answers (into the register given before `gy`, else `"`).
function M.yank()
  local code = H.last_code(H.current)
  if code == nil then return H.say('ai_host: no code block in the answers yet; ask for code, then press gy.') end
  local reg = vim.v.register
  vim.fn.setreg(reg, code, 'l')
  H.say(string.format('ai_host: yanked the last code block (%d lines) into "%s; p puts it.', #code, reg))
end

--- Show the last code block as a proposal for the conversation's range, in the refactor preview.
function M.apply()
  local conv = H.current
  local code = H.last_code(conv)
  if code == nil then return H.say('ai_host: no code block in the answers yet; ask for code, then press ga.') end
  if not vim.api.nvim_buf_is_valid(conv.origin) then
    return H.say('ai_host: the buffer this conversation is about is gone; gy yanks the code block instead.')
  end
  local line1, line2 = H.range(conv)
  local win = vim.fn.win_findbuf(conv.origin)[1]
  if win then
    vim.api.nvim_set_current_win(win)
  else
    vim.cmd('aboveleft split')
    vim.api.nvim_win_set_buf(0, conv.origin)
  end
  vim.api.nvim_win_set_cursor(0, { line1, 0 })
  require('ai_host.refactor').propose(conv.origin, line1, line2, table.concat(code, '\n'))
end

--- The current conversation as the user sees it (for tests, the statusline and bug reports).
function M.info()
  local c = H.current
  if c == nil or not H.valid(c) then return { open = false } end
  local line1, line2 = H.range(c)
  local wins = vim.fn.win_findbuf(c.buf)
  local marks = vim.api.nvim_buf_get_extmarks(c.buf, H.ns, 0, -1, { details = true })
  local shown = {}
  for _, m in ipairs(marks) do
    for _, line in ipairs(m[4].virt_lines or {}) do
      table.insert(shown, line[1][1])
    end
  end
  return {
    open = true,
    n = c.n,
    buf = c.buf,
    win = wins[1],
    id = c.id,
    status = c.status,
    error = c.error,
    figures = c.figures,
    dropped = c.dropped,
    history = c.history,
    line1 = line1,
    line2 = line2,
    text = table.concat(vim.api.nvim_buf_get_lines(c.buf, 0, -1, false), '\n'),
    status_line = table.concat(shown, '\n'),
  }
end

-- Helpers --------------------------------------------------------------------------------------

-- The keys of a chat buffer: { lhs, action, description }.
H.keys = {
  { { 'i', 'a', 'o', '<CR>' }, function() M.ask() end, 'send a message' },
  { { '<C-c>' }, function() M.cancel() end, 'stop the answer' },
  { { 'q' }, function() M.close() end, 'close (stops the answer)' },
  { { 'gr' }, function() M.regenerate() end, 'regenerate the last answer' },
  { { 'gy' }, function() M.yank() end, 'yank the last code block' },
  { { 'ga' }, function() M.apply() end, 'propose the last code block for the range' },
}
H.hint = 'i send · gr regenerate · gy yank code · ga propose code for the range · <C-c> stop · q close'

function H.valid(conv) return conv ~= nil and vim.api.nvim_buf_is_valid(conv.buf) end

function H.new(origin, line1, line2)
  local config = require('ai_host').get_config()
  H.counter = H.counter + 1
  local req = require('ai_host.context').range_request(origin, line1, line2, config.explain.context_lines)
  local buf = vim.api.nvim_create_buf(false, true)
  vim.bo[buf].bufhidden = 'hide' -- q closes the window; :AIChat brings the conversation back
  pcall(vim.api.nvim_buf_set_name, buf, 'ai-host://chat/' .. H.counter)
  local label = (req.filename ~= '' and vim.fn.fnamemodify(req.filename, ':t') or '[No Name]')
    .. ':'
    .. req.start_line
    .. '-'
    .. req.end_line
  local conv = {
    n = H.counter,
    buf = buf,
    origin = origin,
    label = label,
    req = req,
    history = {},
    status = 'idle',
    tail = 0,
    model = H.model(config),
    marks = {
      vim.api.nvim_buf_set_extmark(origin, H.range_ns, req.start_line - 1, 0, { right_gravity = false }),
      vim.api.nvim_buf_set_extmark(origin, H.range_ns, req.end_line - 1, 0, {}),
    },
  }
  H.chats[buf] = conv
  H.write(conv, '# AI chat · ' .. label)
  vim.bo[buf].filetype = 'markdown'
  for _, k in ipairs(H.keys) do
    for _, lhs in ipairs(k[1]) do
      vim.keymap.set('n', lhs, k[2], { buffer = buf, nowait = true, desc = 'AI chat: ' .. k[3] })
    end
  end
  vim.api.nvim_create_autocmd('BufWipeout', {
    buffer = buf,
    once = true,
    callback = function()
      if conv.id and (conv.status == 'working' or conv.status == 'streaming') then
        require('ai_host.host').cancel(conv.id)
      end
      conv.status = 'cancelled' -- a turn still looking up definitions never starts
      H.chats[buf] = nil
      if H.current == conv then H.current = nil end
      if vim.api.nvim_buf_is_valid(origin) then vim.api.nvim_buf_clear_namespace(origin, H.range_ns, 0, -1) end
    end,
  })
  H.render_status(conv)
  return conv
end

-- The conversation's window, focused: the one showing it, else a new split (beside the code when
-- the screen is wide enough for both, else below).
function H.show(conv)
  local win = vim.fn.win_findbuf(conv.buf)[1]
  if win then return vim.api.nvim_set_current_win(win) end
  vim.cmd(vim.o.columns >= H.side_by_side_columns and 'botright vsplit' or 'botright split')
  vim.api.nvim_win_set_buf(0, conv.buf)
  vim.wo.wrap, vim.wo.linebreak, vim.wo.number, vim.wo.relativenumber = true, true, false, false
  vim.wo.conceallevel = 2
  vim.api.nvim_win_set_cursor(0, { vim.api.nvim_buf_line_count(conv.buf), 0 })
  vim.api.nvim_exec_autocmds(
    'User',
    { pattern = 'AiHostChatOpen', modeline = false, data = { buf = conv.buf, win = vim.api.nvim_get_current_win() } }
  )
end
H.side_by_side_columns = 160

function H.model(config)
  local m = config.models.chat ~= '' and config.models.chat or config.models.explain
  return type(m) == 'string' and (m:find('[/\\]') and vim.fn.fnamemodify(m, ':t') or m) or '?'
end

-- The range's lines now (the marks follow edits), or as they were at the start.
function H.range(conv)
  if conv and vim.api.nvim_buf_is_valid(conv.origin) then
    local a = vim.api.nvim_buf_get_extmark_by_id(conv.origin, H.range_ns, conv.marks[1], {})
    local b = vim.api.nvim_buf_get_extmark_by_id(conv.origin, H.range_ns, conv.marks[2], {})
    if a[1] and b[1] then return a[1] + 1, math.max(a[1], b[1]) + 1 end
  end
  return conv.req.start_line, conv.req.end_line
end

function H.ask_model(conv, message)
  local config = require('ai_host').get_config()
  local req = conv.req
  if vim.api.nvim_buf_is_valid(conv.origin) then
    local line1, line2 = H.range(conv)
    req = require('ai_host.context').range_request(conv.origin, line1, line2, config.explain.context_lines)
  end
  req = vim.deepcopy(req)
  req.id, req.history, req.message = nil, vim.deepcopy(conv.history), message
  conv.message, conv.answered, conv.pieces = message, false, {}
  conv.status, conv.figures, conv.error, conv.dropped = 'working', nil, nil, nil
  conv.id = nil
  conv.turn = (conv.turn or 0) + 1
  H.render_status(conv)
  local turn = conv.turn
  local send = function(symbols)
    if conv.turn ~= turn or conv.status ~= 'working' then return end -- stopped, or a newer turn
    conv.symbols = { code = req.code, list = symbols }
    req.symbols = symbols
    local id, msg = require('ai_host.host').start('chat', req, {
      on_chunk = function(data) H.append(conv, data.text) end,
      on_status = function(data) H.on_status(conv, data) end,
      on_done = function(data) H.on_done(conv, data) end,
      on_error = function(data) H.on_error(conv, data.message) end,
    })
    conv.id = id
    if not id then H.on_error(conv, msg) end
  end
  -- the definitions the code uses: looked up again only when the code changed since the last turn
  if conv.symbols and conv.symbols.code == req.code then return send(conv.symbols.list) end
  if not vim.api.nvim_buf_is_valid(conv.origin) then return send({}) end
  require('ai_host.symbols').gather(conv.origin, req.start_line, req.end_line, send)
end

function H.append(conv, text)
  if text == nil or text == '' or not vim.api.nvim_buf_is_valid(conv.buf) then return end
  if conv.status == 'working' then conv.status = 'streaming' end
  table.insert(conv.pieces, text)
  H.write(conv, text)
  H.render_status(conv)
end

function H.on_status(conv, data)
  if data.warning then
    H.say('ai_host: ' .. data.text, vim.log.levels.WARN)
  elseif conv.status == 'working' then
    conv.waiting_for = data.text
    H.render_status(conv)
  end
end

function H.on_done(conv, data)
  conv.status, conv.figures, conv.answered = 'done', data, true
  conv.dropped = tonumber(data.history_dropped) or 0
  table.insert(conv.history, { role = 'user', text = conv.message })
  table.insert(conv.history, { role = 'assistant', text = table.concat(conv.pieces) })
  H.render_status(conv)
end

function H.on_error(conv, message)
  conv.status, conv.error = 'error', message
  H.render_status(conv)
  vim.schedule(function() vim.notify(message, vim.log.levels.ERROR) end)
end

-- The line below the transcript: what the answer waits for, its figures, or why it stopped; and
-- the keys.
function H.render_status(conv)
  if not vim.api.nvim_buf_is_valid(conv.buf) then return end
  vim.api.nvim_buf_clear_namespace(conv.buf, H.ns, 0, -1)
  local text, hl
  if conv.status == 'working' then
    text, hl = '… ' .. (conv.waiting_for or ('waiting for ' .. conv.model)), 'Comment'
  elseif conv.status == 'streaming' then
    text, hl = '… streaming', 'Comment'
  elseif conv.status == 'done' then
    text, hl = H.figures(conv), 'AiHostFooter'
  elseif conv.status == 'cancelled' then
    text, hl = 'stopped: gr asks again', 'WarningMsg'
  elseif conv.status == 'error' then
    text, hl = conv.error or 'failed', 'ErrorMsg'
  end
  local virt = {}
  if text then table.insert(virt, { { text, hl } }) end
  table.insert(virt, { { H.hint, 'AiHostHint' } })
  local last = vim.api.nvim_buf_line_count(conv.buf) - 1
  vim.api.nvim_buf_set_extmark(conv.buf, H.ns, last, 0, { virt_lines = virt })
end

function H.figures(conv)
  local data, parts = conv.figures or {}, {}
  if data.ttft_ms ~= nil and data.ttft_ms ~= vim.NIL then
    table.insert(parts, string.format('first token %d ms', data.ttft_ms))
  end
  if data.tokens_per_s ~= nil and data.tokens_per_s ~= vim.NIL then
    table.insert(parts, string.format('%.1f tok/s', data.tokens_per_s))
  end
  if data.done_reason == 'length' then table.insert(parts, 'cut at explain.num_predict') end
  local symbols = tonumber(data.symbols) or 0
  if symbols > 0 then table.insert(parts, symbols .. ' definition' .. (symbols == 1 and '' or 's')) end
  if (conv.dropped or 0) > 0 then
    table.insert(parts, conv.dropped .. ' earlier turn' .. (conv.dropped == 1 and '' or 's') .. ' left out')
  end
  if #table.concat(conv.pieces or {}) == 0 then table.insert(parts, 'the model returned nothing') end
  return #parts > 0 and table.concat(parts, ' · ') or 'done'
end

-- The last fenced code block of the answers, as lines (nil if none has one).
function H.last_code(conv)
  if conv == nil then return nil end
  for i = #conv.history, 1, -1 do
    local turn = conv.history[i]
    if turn.role == 'assistant' then
      local block, found, fence = nil, nil, nil
      for _, line in ipairs(vim.split(turn.text, '\n', { plain = true })) do
        if fence == nil then
          local open = line:match('^%s*(```+)') or line:match('^%s*(~~~+)')
          if open then
            fence, block = open, {}
          end
        elseif line:match('^%s*' .. vim.pesc(fence) .. '%s*$') then
          found, fence = block, nil
        else
          table.insert(block, line)
        end
      end
      if found then return found end
    end
  end
  return nil
end

-- Add `text` at the end of the buffer, the cursor following it where it was on the last line.
function H.write(conv, text)
  local buf = conv.buf
  if not vim.api.nvim_buf_is_valid(buf) then return end
  local last = vim.api.nvim_buf_line_count(buf) - 1
  local wins = vim.fn.win_findbuf(buf)
  local follow = {}
  for _, win in ipairs(wins) do
    if vim.api.nvim_win_get_cursor(win)[1] == last + 1 then table.insert(follow, win) end
  end
  local lines = vim.split(text, '\n', { plain = true })
  H.set_text(conv, last, conv.tail, last, conv.tail, lines)
  -- the last line's length is tracked, not read back (reading a long one on every frame copies it)
  conv.tail = #lines > 1 and #lines[#lines] or conv.tail + #text
  local n = vim.api.nvim_buf_line_count(buf)
  for _, win in ipairs(follow) do
    pcall(vim.api.nvim_win_set_cursor, win, { n, 0 })
  end
end

function H.set_text(conv, row, col, end_row, end_col, lines)
  if end_row < 0 then
    end_row = vim.api.nvim_buf_line_count(conv.buf) - 1
    end_col = #(vim.api.nvim_buf_get_lines(conv.buf, end_row, end_row + 1, false)[1] or '')
  end
  vim.bo[conv.buf].modifiable = true
  vim.api.nvim_buf_set_text(conv.buf, row, col, end_row, end_col, lines)
  vim.bo[conv.buf].modifiable = false
end

function H.say(message, level) vim.notify(message, level or vim.log.levels.INFO) end

return M
