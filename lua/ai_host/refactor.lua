--- ai_host.refactor: :AIRefactor and generate-from-prompt. The proposal streams in as a diff
--- preview in place (removed lines marked, new lines as virtual lines), then is accepted or
--- rejected, all at once or hunk by hunk. The buffer changes only on accept, as one undo step,
--- and only if the lines are still what the request saw.
---
--- Why in place rather than a side-by-side float: the change is read where it will land, in the
--- user's own window, colours and folds, and it works in any layout (no window juggling).

local M = {}
local H = {}

-- State ---------------------------------------------------------------------------------------
-- H.state: nil, or the preview:
--   { buf, id (job id), mark (extmark id tracking the range's first line, or the line an insert
--     goes after), insert (bool), old (lines of the range when asked, kept in step with accepted
--     hunks), new (lines proposed so far), status ('streaming'|'done'|'cancelled'|'error'),
--     conflict (the range was edited since), maps (saved buffer-local maps), augroup,
--     unrestored (placeholders of redacted secrets the model moved to a line where they were not:
--     left as placeholders, the hunks holding them marked), purpose ('refactor'|'fix'|'doc', or
--     'chat': a code block M.propose() shows, no request), gathering (cancels the lookup of the
--     definitions the code uses, while it runs: the request goes after it) }
H.state = nil
H.ns = vim.api.nvim_create_namespace('ai_host_refactor')
H.track_ns = vim.api.nvim_create_namespace('ai_host_refactor_track')
H.counter = 0

--- Ask for a rewrite of lines line1..line2 of `opts.buf` (default: the current buffer), or, with
--- opts.insert, for new code after line `line1`. `opts.purpose` says what the rewrite is for:
--- 'refactor' (as the instruction says; without one, vim.ui.input asks), 'fix' (the diagnostics of
--- the range, with the language server's code actions' titles in `opts.actions`) or 'doc' (the
--- range's doc comment). The definitions the range uses (ai_host.symbols) go with it: gathered
--- here, or given in `opts.symbols`.
---@param opts { line1: integer, line2: integer, instruction: string?, insert: boolean?, buf: integer?, purpose: string?, actions: string[]?, symbols: table[]? }
function M.start(opts)
  local config = require('ai_host').get_config()
  local purpose = opts.purpose or 'refactor'
  if purpose == 'refactor' and (opts.instruction == nil or opts.instruction == '') then
    local prompt = opts.insert and 'AI generate: ' or 'AI refactor: '
    local default = opts.insert and '' or config.refactor.default_instruction
    vim.ui.input({ prompt = prompt, default = default }, function(input)
      if input == nil or input == '' then return end
      M.start(vim.tbl_extend('force', opts, { instruction = input }))
    end)
    return
  end
  M.close()
  local buf = opts.buf or vim.api.nvim_get_current_buf()
  if not vim.api.nvim_buf_is_valid(buf) then return end
  local req
  if opts.insert then
    req = require('ai_host.context').range_request(buf, opts.line1, opts.line1, config.refactor.context_lines)
    req.before = req.before .. (req.before ~= '' and '\n' or '') .. req.code
    req.code, req.insert, req.end_line = '', true, opts.line1
  else
    req = require('ai_host.context').range_request(buf, opts.line1, opts.line2, config.refactor.context_lines)
  end
  req.instruction = opts.instruction or ''
  req.use_tabs = not vim.bo[buf].expandtab
  req.shiftwidth = H.shiftwidth(buf)
  req.purpose = purpose
  req.actions = opts.actions or {}

  local old = opts.insert and {} or vim.api.nvim_buf_get_lines(buf, req.start_line - 1, req.end_line, false)
  local state = H.open(buf, req.start_line, old, opts.insert == true, purpose)
  state.status = 'streaming'
  H.render(state)
  local send = function(symbols)
    state.gathering = nil
    if H.state ~= state or state.status ~= 'streaming' then return end
    req.symbols = symbols
    local id, msg = require('ai_host.host').start('refactor', req, {
      on_proposal = function(data) H.on_proposal(state, data.text) end,
      on_done = function(data) H.on_done(state, data) end,
      on_error = function(data) H.on_error(state, data.message) end,
      on_status = function(data) H.on_status(state, data) end,
    })
    state.id = id
    if not id then H.on_error(state, msg) end
  end
  if opts.insert then return send({}) end -- new code uses nothing yet
  if opts.symbols then return send(opts.symbols) end -- gathered by the caller (:AIFix)
  -- the definitions the code uses: the request goes once the language servers answer (or their
  -- time is up), while the preview already shows that it streams
  state.gathering = require('ai_host.symbols').gather(buf, req.start_line, req.end_line, send)
end

--- Show `text` as the proposal for lines line1..line2 of `buf` (the chat's last code block): the
--- same preview, keys and one-undo-step accept as a streamed proposal, without asking a model.
---@param buf integer
---@param line1 integer
---@param line2 integer
---@param text string
function M.propose(buf, line1, line2, text)
  M.close()
  local state = H.open(buf, line1, vim.api.nvim_buf_get_lines(buf, line1 - 1, line2, false), false, 'chat')
  state.status = 'done'
  state.new = vim.split(text, '\n', { plain = true })
  if #H.hunks(state) == 0 then
    return H.finish(
      state,
      'ai_host: the code block is the same as the lines, so there is nothing to apply; ask for a change first.'
    )
  end
  H.render(state)
  H.redraw(state)
end

--- Apply every change of the proposal (one undo step).
function M.accept_all()
  local state = H.ready()
  if not state then return end
  if not H.unchanged(state) then return H.conflict(state) end
  local first = H.first_row(state)
  vim.api.nvim_buf_set_lines(state.buf, first, first + #state.old, false, state.new)
  H.finish(state, string.format('ai_host: %s applied (u undoes it).', H.applied[state.purpose] or 'refactor'))
end

--- Reject the proposal (cancelling it if it still streams).
function M.reject_all()
  if H.state == nil then return end
  M.close()
end

--- Apply the hunk under the cursor (one undo step); the rest stays proposed.
function M.accept_hunk()
  local state = H.ready()
  if not state then return end
  if not H.unchanged(state) then return H.conflict(state) end
  local h = H.hunk_at_cursor(state)
  if h == nil then return end
  local first = H.first_row(state)
  local a_first = H.offset(h[1], h[2])
  local lines = vim.list_slice(state.new, h[3], h[3] + h[4] - 1)
  vim.api.nvim_buf_set_lines(state.buf, first + a_first, first + a_first + h[2], false, lines)
  state.old = H.splice(state.old, a_first, h[2], lines)
  H.after_hunk(state)
end

--- Drop the hunk under the cursor from the proposal.
function M.reject_hunk()
  local state = H.state
  if state == nil or state.status == 'streaming' then return end
  local h = H.hunk_at_cursor(state)
  if h == nil then return end
  local b_first, a_first = H.offset(h[3], h[4]), H.offset(h[1], h[2])
  state.new = H.splice(state.new, b_first, h[4], vim.list_slice(state.old, a_first + 1, a_first + h[2]))
  H.after_hunk(state)
end

--- Move the cursor to the next (dir = 1) or previous (dir = -1) proposed change.
function M.jump(dir)
  local state = H.state
  if state == nil then return end
  local row = vim.api.nvim_win_get_cursor(0)[1] - 1
  local rows = {}
  for _, h in ipairs(H.hunks(state)) do
    table.insert(rows, H.hunk_row(state, h))
  end
  if dir < 0 then rows = vim.fn.reverse(rows) end
  for _, r in ipairs(rows) do
    if (dir > 0 and r > row) or (dir < 0 and r < row) then return vim.api.nvim_win_set_cursor(0, { r + 1, 0 }) end
  end
end

--- Stop the stream (the server stops generating); the partial proposal stays visible, unapplied.
function M.cancel()
  local state = H.state
  if state == nil or state.status ~= 'streaming' then return end
  require('ai_host.host').cancel(state.id)
  if state.gathering then state.gathering() end
  state.status = 'cancelled'
  H.render(state)
end

--- Remove the preview (cancelling a stream); the buffer is left as it is.
function M.close()
  local state = H.state
  if state == nil then return end
  H.state = nil
  if state.status == 'streaming' and state.id then require('ai_host.host').cancel(state.id) end
  if state.gathering then state.gathering() end
  if vim.api.nvim_buf_is_valid(state.buf) then
    vim.api.nvim_buf_clear_namespace(state.buf, H.ns, 0, -1)
    pcall(vim.api.nvim_buf_del_extmark, state.buf, H.track_ns, state.mark)
    H.restore_keys(state)
  end
  if state.augroup then pcall(vim.api.nvim_del_augroup_by_id, state.augroup) end
end

--- What the preview shows (for tests, the statusline and bug reports).
function M.info()
  local s = H.state
  if s == nil then return { open = false } end
  return {
    open = true,
    status = s.status,
    conflict = s.conflict == true,
    message = s.message,
    new = s.new,
    old = s.old,
    hunks = #H.hunks(s),
    hint = H.hint_text(s),
    unrestored = s.unrestored or {},
    symbols = s.symbols or 0,
  }
end

-- Helpers --------------------------------------------------------------------------------------

-- A preview of `old`, the lines from `line1` of `buf` (an insert: none, after `line1`): its state,
-- the mark that follows edits above it, its keys and its watch on the buffer.
function H.open(buf, line1, old, insert, purpose)
  local config = require('ai_host').get_config()
  local state = { buf = buf, insert = insert, old = old, new = {}, purpose = purpose }
  -- the mark follows edits above the range; an insert anchors on the line it goes after
  state.mark = vim.api.nvim_buf_set_extmark(buf, H.track_ns, line1 - 1, 0, { right_gravity = false })
  H.state = state
  H.set_keys(state, config.refactor.keys)
  H.watch(state)
  return state
end

-- 'shiftwidth' of `buf` as shiftwidth() reads it (0: 'tabstop'), for a buffer that may not be current.
function H.shiftwidth(buf)
  local sw = vim.bo[buf].shiftwidth
  return sw > 0 and sw or vim.bo[buf].tabstop
end

function H.first_row(state)
  local pos = vim.api.nvim_buf_get_extmark_by_id(state.buf, H.track_ns, state.mark, {})
  return (pos[1] or 0) + (state.insert and 1 or 0)
end

function H.unchanged(state)
  local first = H.first_row(state)
  return vim.deep_equal(vim.api.nvim_buf_get_lines(state.buf, first, first + #state.old, false), state.old)
end

function H.ready()
  local state = H.state
  if state == nil then return nil end
  if state.status == 'streaming' then
    H.say(
      'ai_host: the proposal is still coming; wait for it, or reject it with '
        .. require('ai_host').get_config().refactor.keys.reject_all
        .. '.'
    )
    return nil
  end
  if state.status ~= 'done' then
    H.say(
      'ai_host: this proposal is incomplete (' .. state.status .. '), so it cannot be applied; reject it and ask again.'
    )
    return nil
  end
  return state
end

function H.splice(list, first, count, items)
  local out = vim.list_slice(list, 1, first)
  vim.list_extend(out, items)
  vim.list_extend(out, list, first + count + 1, #list)
  return out
end

function H.hunks(state)
  if #state.old == 0 and #state.new == 0 then return {} end
  local old = #state.old > 0 and (table.concat(state.old, '\n') .. '\n') or ''
  local new = #state.new > 0 and (table.concat(state.new, '\n') .. '\n') or ''
  return vim.diff(old, new, { result_type = 'indices', algorithm = 'histogram' })
end

-- The buffer row where a hunk shows (its first removed line, or the line an insertion follows).
function H.hunk_row(state, h)
  local first = H.first_row(state)
  if h[2] > 0 then return first + h[1] - 1 end
  return math.max(0, first + h[1] - 1)
end

-- The hunk under the cursor, or nil after telling the user how to get to one.
function H.hunk_at_cursor(state)
  local row = vim.api.nvim_win_get_cursor(0)[1] - 1
  local first = H.first_row(state)
  for _, h in ipairs(H.hunks(state)) do
    local top = H.hunk_row(state, h)
    local bottom = h[2] > 0 and first + h[1] + h[2] - 2 or top
    if row >= top and row <= bottom then return h end
  end
  H.say('ai_host: the cursor is not on a proposed change; ]h moves to the next one.')
end

-- 0-based offset where a side of a vim.diff() hunk starts: (start, count) is 1-based, and for an
-- empty side `start` is the line the hunk comes after.
function H.offset(start, count) return count == 0 and start or start - 1 end

function H.after_hunk(state)
  if #H.hunks(state) == 0 then return H.finish(state, nil) end
  H.render(state)
end

-- What the hint calls the preview, by the request's purpose ('chat': a code block from :AIChat).
H.titles = { refactor = 'AI refactor', fix = 'AI fix', doc = 'AI doc', chat = 'AI chat' }
H.applied = { fix = 'fix', doc = 'doc comment', chat = 'code block' }

function H.hint_text(state)
  local k = require('ai_host').get_config().refactor.keys
  local what = ({
    streaming = 'streaming…',
    done = 'ready',
    cancelled = 'cancelled: nothing can be applied',
    error = 'failed',
  })[state.status] or state.status
  if state.status == 'done' and (state.symbols or 0) > 0 then
    what = what .. ' · ' .. state.symbols .. ' definition' .. (state.symbols == 1 and '' or 's') .. ' sent'
  end
  if state.conflict then what = 'the lines changed since the request: accepting will not apply' end
  return string.format(
    '%s (%s) %s accept all · %s reject all · %s/%s accept/reject change · %s %s move',
    H.titles[state.purpose] or H.titles.refactor,
    what,
    k.accept_all,
    k.reject_all,
    k.accept_hunk,
    k.reject_hunk,
    k.next_hunk,
    k.prev_hunk
  )
end

function H.render(state)
  local buf = state.buf
  if not vim.api.nvim_buf_is_valid(buf) then return end
  vim.api.nvim_buf_clear_namespace(buf, H.ns, 0, -1)
  local first = H.first_row(state)
  local count = vim.api.nvim_buf_line_count(buf)
  local hint_row = state.insert and math.max(0, first - 1) or math.min(first, count - 1)
  vim.api.nvim_buf_set_extmark(buf, H.ns, hint_row, 0, {
    virt_lines = {
      { { H.hint_text(state), state.conflict and 'WarningMsg' or 'AiHostHint' } },
      state.unrestored and #state.unrestored > 0 and { { H.moved_text(state), 'WarningMsg' } } or nil,
    },
    virt_lines_above = not state.insert,
  })
  for _, h in ipairs(H.hunks(state)) do
    for i = 0, h[2] - 1 do
      vim.api.nvim_buf_set_extmark(
        buf,
        H.ns,
        first + h[1] - 1 + i,
        0,
        { line_hl_group = 'AiHostRemoved', sign_text = '-' }
      )
    end
    if h[4] > 0 then
      local virt = {}
      for _, line in ipairs(vim.list_slice(state.new, h[3], h[3] + h[4] - 1)) do
        local moved = state.unrestored and #state.unrestored > 0 and line:find('<redacted:', 1, true)
        table.insert(
          virt,
          moved and { { line, 'WarningMsg' }, { '  ← a moved secret: not restored', 'WarningMsg' } }
            or { { line, 'AiHostAdded' } }
        )
      end
      local anchor, above
      if h[2] > 0 then
        anchor, above = first + h[1] + h[2] - 2, false
      elseif first + h[1] - 1 >= 0 then
        anchor, above = first + h[1] - 1, false
      else
        anchor, above = 0, true
      end
      vim.api.nvim_buf_set_extmark(
        buf,
        H.ns,
        math.min(anchor, count - 1),
        0,
        { virt_lines = virt, virt_lines_above = above }
      )
    end
  end
end

function H.on_proposal(state, text)
  if H.state ~= state then return end
  state.new = vim.split(text, '\n', { plain = true })
  H.render(state)
end

function H.on_done(state, data)
  if H.state ~= state then return end
  state.status = 'done'
  state.new = vim.split(data.text or '', '\n', { plain = true })
  state.unrestored = type(data.unrestored) == 'table' and data.unrestored or nil
  state.symbols = tonumber(data.symbols)
  if #H.hunks(state) == 0 then return H.finish(state, 'ai_host: the model proposed no change.') end
  H.render(state)
  H.redraw(state)
  if state.unrestored and #state.unrestored > 0 then H.say(H.moved_text(state), vim.log.levels.WARN) end
end

--- A redacted secret the model put on a line where it was not stays a placeholder (it could be
--- a leak: a URL, a log call); the user is told, to reject that change or write it by hand.
function H.moved_text(state)
  return string.format(
    'ai_host: the proposal moves %s to a line where it was not; it stays a placeholder there '
      .. '(reject that change with %s, or edit it after accepting).',
    table.concat(state.unrestored, ', '),
    require('ai_host').get_config().refactor.keys.reject_hunk
  )
end

-- The hint's virtual line changes from "streaming…" to "ready" while nothing else on screen does;
-- a user saw the old hint stay until :redraw! (generate, a real model): redraw the buffer's windows.
function H.redraw(state)
  if vim.api.nvim__redraw then pcall(vim.api.nvim__redraw, { buf = state.buf, valid = false, flush = true }) end
end

function H.on_error(state, message)
  if H.state ~= state then return end
  state.status = 'error'
  state.message = message
  H.render(state)
  H.redraw(state)
  H.say(message, vim.log.levels.ERROR)
end

function H.on_status(state, data)
  if data.warning then H.say('ai_host: ' .. data.text, vim.log.levels.WARN) end
end

-- The range was edited: nothing is applied; the proposal opens in a split, to read or yank.
function H.conflict(state)
  local name = 'ai-host://refactor/' .. H.next_id()
  local ft = vim.bo[state.buf].filetype
  local lines = state.new
  H.finish(state, nil)
  vim.cmd('botright split')
  local pbuf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_win_set_buf(0, pbuf)
  pcall(vim.api.nvim_buf_set_name, pbuf, name)
  vim.api.nvim_buf_set_lines(pbuf, 0, -1, false, lines)
  vim.bo[pbuf].filetype = ft
  vim.bo[pbuf].bufhidden = 'wipe'
  H.say(
    'ai_host: the lines changed since the request, so nothing was applied. The proposal is in '
      .. name
      .. ' (below): yank what you need from it.',
    vim.log.levels.WARN
  )
end

function H.next_id()
  H.counter = H.counter + 1
  return H.counter
end

function H.finish(state, message)
  if H.state == state then M.close() end
  if message then H.say(message) end
end

function H.say(message, level)
  vim.schedule(function() vim.notify(message, level or vim.log.levels.INFO) end)
end

-- While the preview is open: its keys (buffer-local, the user's own maps saved and put back), and
-- a watch on the buffer (edits in the range, the buffer going away).
function H.set_keys(state, keys)
  local actions = {
    accept_all = M.accept_all,
    reject_all = M.reject_all,
    accept_hunk = M.accept_hunk,
    reject_hunk = M.reject_hunk,
    next_hunk = function() M.jump(1) end,
    prev_hunk = function() M.jump(-1) end,
  }
  state.maps = {}
  for name, fn in pairs(actions) do
    local lhs = keys[name]
    if lhs and lhs ~= '' then
      local prior = vim.fn.maparg(lhs, 'n', false, true)
      table.insert(state.maps, { lhs = lhs, prior = (prior.buffer == 1) and prior or nil })
      vim.keymap.set('n', lhs, fn, { buffer = state.buf, nowait = true, desc = 'AI refactor: ' .. name:gsub('_', ' ') })
    end
  end
end

function H.restore_keys(state)
  for _, m in ipairs(state.maps or {}) do
    pcall(vim.keymap.del, 'n', m.lhs, { buffer = state.buf })
    if m.prior then vim.api.nvim_buf_call(state.buf, function() vim.fn.mapset('n', false, m.prior) end) end
  end
end

function H.watch(state)
  state.augroup = vim.api.nvim_create_augroup('ai_host_refactor_' .. state.buf, { clear = true })
  vim.api.nvim_create_autocmd({ 'TextChanged', 'TextChangedI' }, {
    group = state.augroup,
    buffer = state.buf,
    callback = function()
      if H.state ~= state then return end
      local changed = not H.unchanged(state)
      if changed ~= (state.conflict == true) then
        state.conflict = changed
        H.render(state)
      end
    end,
  })
  vim.api.nvim_create_autocmd({ 'BufUnload', 'BufWipeout', 'BufWinLeave' }, {
    group = state.augroup,
    buffer = state.buf,
    callback = function()
      if H.state == state then M.close() end
    end,
  })
end

return M
