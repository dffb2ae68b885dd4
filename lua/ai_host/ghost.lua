--- ai_host.ghost: ghost-text completion while typing (fill-in-the-middle), streamed into extmarks.
---
--- After a pause in typing (completion.debounce_ms) a request leaves with a snapshot of the text
--- around the cursor. The suggestion is drawn as it streams: the rest of the cursor's line inline,
--- further lines as virtual lines. Typing the suggestion's next characters shrinks it (no new
--- request); so does typing past a request that has not answered yet, while what comes agrees with
--- what was typed (its prompt evaluation is not thrown away: one request per buffer at the server);
--- any other keystroke cancels the request at once and hides the stale text. When the cursor goes
--- to another line (completion.warm), a new empty line asks at once, without a pause; another line
--- has the server read its prompt (a warm-up), so the pause waits only for the characters typed.
--- Its insert-mode keys fall through by ai_host.keys; the text of other buffers comes from ai_host.ring.

local M = {}
local H = {}

-- State ---------------------------------------------------------------------------------------
-- H.state: nil, or the suggestion being requested/shown:
--   { buf, row (0-based), col (byte col of the anchor), line_before, line_after (text of the
--     anchor line around the cursor at request time), id (job id), text (suggestion so far),
--     typed (text entered since the anchor, a prefix of `text`), done (stream ended),
--     prefix, suffix (what was sent), sent (hrtime), shown (first text drawn),
--     alts (texts of the suggestions fetched for this anchor), index (which one is shown) }
H.state = nil
H.timer = nil -- the debounce timer
H.fired = 0 -- debounce timer callbacks fired and not yet run on the main loop
H.enabled = true -- the <leader>at toggle
H.shown_errors = {} -- each distinct error is notified once per session
H.pending = nil -- the text an accept is about to insert
H.warmed = nil -- { buf, row (1-based) }: the place of the last request or warm-up
-- H.samples: { sent, shown } hrtimes of a request leaving and its first text on screen (bench/)
H.samples = {}
H.max_samples = 1000
H.ns = vim.api.nvim_create_namespace('ai_host_ghost')

--- Start listening to typing, and remembering other buffers for the context ring (called by setup()).
function M.attach()
  local group = vim.api.nvim_create_augroup('ai_host_ghost', { clear = true })
  local au = function(events, callback, pattern)
    vim.api.nvim_create_autocmd(events, { group = group, callback = callback, pattern = pattern })
  end
  au({ 'InsertEnter', 'TextChangedI', 'TextChangedP' }, function() M.on_change() end)
  au('CursorMovedI', function() M.on_cursor() end)
  au({ 'InsertLeave', 'BufLeave', 'WinLeave' }, function()
    M.clear()
    H.warmed = nil -- back in Insert mode, the server may hold other text by then: warm again
  end)
  au('ModeChanged', function() M.clear() end, 'i*:[^i]*') -- <C-c> leaves insert without InsertLeave
  local hide_with_menu = function()
    if require('ai_host').get_config().completion.hide_with_menu then M.clear() end
  end
  au('CompleteChanged', hide_with_menu)
  -- blink.cmp's menu opens after the keystroke that may have kept a suggestion on screen (nvim-cmp's
  -- is hooked by ai_host.sources.cmp.register())
  au('User', hide_with_menu, 'BlinkCmpMenuOpen')
  require('ai_host.ring').attach()
end

--- The buffer changed in insert mode: keep the suggestion if the user typed into it, else start over.
function M.on_change()
  local state = H.state
  local buf = vim.api.nvim_get_current_buf()
  if state ~= nil and H.still_valid(state) then
    -- typed on into the suggestion, maybe onto its next line: the server has read its prompt, and
    -- what is typed goes on from there (no warm-up for this line). (Typed past a request that has
    -- shown nothing yet, its answer may still cover the new line: H.again sees to it if not.)
    if state.text ~= '' then H.warmed = { buf = state.buf, row = vim.api.nvim_win_get_cursor(0)[1] } end
    return H.render(state)
  end
  H.drop(state)
  if H.allowed(buf) and not H.warm(buf) then H.debounce() end
end

--- The cursor moved without a change: a suggestion only survives if the cursor is where it expects.
function M.on_cursor()
  if H.state ~= nil and not H.still_valid(H.state) then H.drop(H.state) end
end

--- Hide the suggestion and cancel its request (the server stops generating), and its prefetch
--- unless `keep_prefetch` (the suggestion was taken whole: the prefetch is for where we are now).
function M.clear(keep_prefetch)
  if H.timer then H.timer:stop() end
  local state = H.state
  H.state = nil
  if state == nil then return end
  if state.id and not state.done then require('ai_host.host').cancel(state.id) end
  if state.prefetch_id and not keep_prefetch then require('ai_host.host').cancel(state.prefetch_id) end
  if vim.api.nvim_buf_is_valid(state.buf) then vim.api.nvim_buf_clear_namespace(state.buf, H.ns, 0, -1) end
end

--- Whether a pause is still being timed (a request may yet leave from it).
function M.debouncing() return H.fired > 0 or (H.timer ~= nil and H.timer:is_active()) end

--- Turn ghost text on or off everywhere.
function M.toggle()
  H.enabled = not H.enabled
  if not H.enabled then M.clear() end
  vim.notify('ai_host: ghost text ' .. (H.enabled and 'on' or 'off (<leader>at turns it back on)'), vim.log.levels.INFO)
  return H.enabled
end

--- Keys for an insert-mode <expr> map: accept all / 'word' / 'line' of the suggestion, or fall through.
---@param kind 'all'|'word'|'line'
---@param lhs string the key that was pressed, for the fall-through
function M.accept(kind, lhs)
  local state = H.state
  local rest = state and H.still_valid(state) and state.text:sub(#state.typed + 1) or ''
  if rest == '' or vim.fn.reg_executing() ~= '' then return H.fall_through(lhs) end
  local part = rest
  if kind == 'word' then
    part = rest:match('^\n[ \t]*')
      or rest:match('^[ \t]*[%w_\128-\255]+')
      or rest:match('^[ \t]*[^%w_\128-\255%s]+')
      or rest:match('^[ \t]+')
      or rest
  elseif kind == 'line' then
    part = rest:match('^\n?[^\n]*')
  end
  H.pending = part
  -- <C-g>u: accepting is an undo step of its own. The text goes in through the API (charwise,
  -- no auto-indent, exactly as shown), not as typed keys.
  return '<C-g>u<Cmd>lua require("ai_host.ghost")._insert()<CR>'
end

--- Insert the text an accept chose, at the cursor, leaving the cursor after it.
function M._insert()
  local text = H.pending
  H.pending = nil
  if text == nil or text == '' then return end
  vim.api.nvim_put(vim.split(text, '\n', { plain = true }), 'c', false, true)
end

--- Show the next (dir = 1) or previous (dir = -1) alternative suggestion. Alternatives are fetched
--- only when asked for, one per press, for the place the first suggestion was made.
function M.cycle(dir, lhs)
  local state = H.state
  if state == nil or not H.still_valid(state) or state.text == '' then return H.fall_through(lhs) end
  vim.schedule(function() H.cycle(state, dir) end)
  return ''
end

--- Dismiss the suggestion (or fall through when there is none).
function M.dismiss(lhs)
  local state = H.state
  if state == nil or #state.text <= #state.typed then return H.fall_through(lhs) end
  M.clear()
  return ''
end

--- Define the highlight groups of ghost text and of the AI item in completion menus, `default` so
--- that a colourscheme that sets them wins (called by setup() and on every ColorScheme).
function M.set_highlights()
  vim.api.nvim_set_hl(0, 'AiHostGhost', H.ghost_highlight())
  vim.api.nvim_set_hl(0, 'AiHostGhostCount', { link = 'Special', default = true })
  vim.api.nvim_set_hl(0, 'AiHostKind', { link = 'Special', default = true })
end

--- Latency samples, oldest first: ms from request to first ghost text drawn, or with `times` the
--- moments themselves ({ sent = ns, shown = ns } on vim.uv.hrtime()'s clock). `clear` empties them.
function M.samples(clear, times)
  local out = H.samples
  if clear then H.samples = {} end
  if times then return out end
  return vim.tbl_map(function(t) return (t.shown - t.sent) / 1e6 end, out)
end

--- What is shown now (for tests and the statusline).
function M.info()
  local s = H.state
  if s == nil then return { shown = false } end
  return {
    shown = s.text ~= '' and #s.text > #s.typed,
    text = s.text:sub(#s.typed + 1),
    id = s.id,
    done = s.done,
    index = s.index,
    count = s.alts and #s.alts or 1,
  }
end

--- Ask for the suggestion at the cursor without drawing it (for completion-menu sources): the same
--- request, engine and cache as ghost text. `on_done(text)` gets the whole suggestion ('' if none).
--- Returns a function that cancels the request (the server stops generating).
---@param buf integer
---@param on_done fun(text: string, anchor: { row: integer, col: integer, keyword: string })
---@return fun()
function M.fetch(buf, on_done)
  if buf == 0 or buf == nil then buf = vim.api.nvim_get_current_buf() end -- one engine group per real buffer
  local config = require('ai_host').get_config().completion
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  local line = vim.api.nvim_buf_get_lines(buf, row - 1, row, false)[1] or ''
  local before, after = line:sub(1, col), line:sub(col + 1)
  local prefix, suffix, prefix_row = H.window(buf, row, before, after, config.context_chars)
  local anchor = { row = row - 1, col = col, keyword = before:match('[%w_]*$') }
  local text, finished = '', false
  local id = require('ai_host.host').start('complete', H.payload(buf, prefix, suffix, { prefix_row = prefix_row }), {
    on_suggestion = function(data) text = data.text end,
    on_done = function()
      finished = true
      on_done(text, anchor)
    end,
    on_error = function(data)
      finished = true
      H.on_error(nil, data.message)
      on_done('', anchor)
    end,
    on_superseded = function() -- ghost text asked for this buffer meanwhile: the menu gets no item
      finished = true
      on_done('', anchor)
    end,
  })
  if not id then
    on_done('', anchor)
    return function() end
  end
  return function()
    if not finished then require('ai_host.host').cancel(id) end
  end
end

--- The bounded window of text around the cursor that a request carries (for tests).
function M._window(buf, row, before, after, budget) return H.window(buf, row, before, after, budget) end

--- The chunks of other buffers that go with the next request (for tests).
function M.extra_context()
  local context_chars = require('ai_host').get_config().completion.context_chars
  return require('ai_host.ring').extra(vim.api.nvim_get_current_buf(), context_chars)
end

-- Helpers --------------------------------------------------------------------------------------

-- No suggestion to act on: the key does what it did before ours.
function H.fall_through(lhs) return require('ai_host.keys').fall_through(lhs) end

-- The suggestion no longer fits: clear it. If all of it is in (accepted or typed, and maybe more
-- typed after it), its prefetch is for where the user went and keeps running (the engine decides
-- whether its answer serves); otherwise the prefetch is stale and is cancelled too. And all of it
-- in, the server has read its prompt and written that text: what is typed goes on from there (no
-- warm-up for the line the cursor is on).
function H.drop(state)
  local typed = state and (state.seen or state.typed)
  local over = state ~= nil and state.text ~= '' and typed:sub(1, #state.text) == state.text
  if over then H.warmed = { buf = state.buf, row = vim.api.nvim_win_get_cursor(0)[1] } end
  M.clear(over and state.done)
end

function H.allowed(buf)
  local config = require('ai_host').get_config().completion
  if not (H.enabled and config.enabled) or vim.b[buf].ai_host_disable then return false end
  -- a macro must replay exactly as it was recorded: no suggestion while one is recorded or run
  if vim.fn.reg_recording() ~= '' or vim.fn.reg_executing() ~= '' then return false end
  if vim.bo[buf].buftype ~= '' or not vim.bo[buf].modifiable then return false end
  if vim.tbl_contains(config.disabled_filetypes, vim.bo[buf].filetype) then return false end
  if vim.api.nvim_buf_get_offset(buf, vim.api.nvim_buf_line_count(buf)) > config.max_file_bytes then return false end
  if config.hide_with_menu and H.menu_visible() then return false end
  return true
end

function H.menu_visible()
  if vim.fn.pumvisible() == 1 then return true end
  -- only menus already loaded: never force-load a lazily loaded plugin from a keystroke
  local blink, cmp = package.loaded['blink.cmp'], package.loaded['cmp']
  if blink and type(blink.is_visible) == 'function' and blink.is_visible() then return true end
  return cmp ~= nil and type(cmp.visible) == 'function' and cmp.visible() or false
end

function H.debounce()
  H.timer = H.timer or vim.uv.new_timer()
  H.timer:stop()
  H.timer:start(require('ai_host').get_config().completion.debounce_ms, 0, function()
    H.fired = H.fired + 1
    vim.schedule(function()
      H.fired = H.fired - 1
      H.request()
    end)
  end)
end

function H.request(opts)
  opts = opts or {}
  if not vim.api.nvim_get_mode().mode:find('^i') then return end
  local buf = vim.api.nvim_get_current_buf()
  if not H.allowed(buf) then return end
  M.clear()
  local config = require('ai_host').get_config().completion
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  local line = vim.api.nvim_buf_get_lines(buf, row - 1, row, false)[1]
  local state = {
    buf = buf,
    row = row - 1,
    col = col,
    line_before = line:sub(1, col),
    line_after = line:sub(col + 1),
    text = '',
    typed = '',
    done = false,
    sent = vim.uv.hrtime(),
    alts = opts.alts,
    index = opts.alts and #opts.alts + 1 or 1,
  }
  state.prefix, state.suffix, state.prefix_row =
    H.window(buf, row, state.line_before, state.line_after, config.context_chars)
  H.state = state
  H.warmed = { buf = buf, row = row }
  local id, msg = require('ai_host.host').start(
    'complete',
    H.payload(buf, state.prefix, state.suffix, {
      variant = state.index - 1,
      prefix_row = state.prefix_row,
    }),
    {
      on_suggestion = function(data) H.on_suggestion(state, data.text) end,
      on_done = function() H.on_done(state) end,
      on_superseded = function() H.on_superseded(state) end,
      on_error = function(data) H.on_error(state, data.message) end,
      on_status = function(data)
        if data.warning then H.on_error(nil, 'ai_host: ' .. data.text) end
      end,
    }
  )
  state.id = id
  if not id then H.on_error(state, msg) end
end

function H.payload(buf, prefix, suffix, extra_fields)
  local name = vim.api.nvim_buf_get_name(buf)
  local payload = {
    buf = buf,
    prefix = prefix,
    suffix = suffix,
    filetype = vim.bo[buf].filetype,
    filename = name ~= '' and vim.fn.fnamemodify(name, ':~:.') or '',
    path = name ~= '' and vim.fn.fnamemodify(name, ':p') or '', -- the engine resolves links on it (deny list)
    buftype = vim.bo[buf].buftype,
    commentstring = vim.bo[buf].commentstring,
    -- what the engine can use of the ring (the language server's load goes as an `lsp` event)
    extra = require('ai_host.ring').extra(buf, require('ai_host').get_config().completion.context_chars, prefix),
  }
  return vim.tbl_extend('force', payload, extra_fields or {})
end

-- Text around the cursor, read from a bounded window of lines: the cost does not grow with the file
-- (nor with one enormous line: the cursor's own line is cut to the budget too).
H.window_lines = 400

function H.window(buf, row, before, after, budget)
  before = before:sub(-budget)
  after = after:sub(1, budget)
  local first = math.max(0, row - 1 - H.window_lines)
  local above = vim.api.nvim_buf_get_lines(buf, first, row - 1, false)
  local below = vim.api.nvim_buf_get_lines(buf, row, row + H.window_lines, false)
  local kept, used = {}, #before
  for i = #above, 1, -1 do
    used = used + #above[i] + 1
    if used > budget then break end
    table.insert(kept, 1, above[i])
  end
  table.insert(kept, before)
  local tail, tail_used = { after }, #after
  for _, l in ipairs(below) do
    tail_used = tail_used + #l + 1
    if tail_used > budget then break end
    table.insert(tail, l)
  end
  -- the row of the prefix's first line: the engine keeps the window's start still while typing
  return table.concat(kept, '\n'), table.concat(tail, '\n'), row - #kept
end

--- Is the suggestion still right for the buffer? Updates state.typed with what was typed since.
function H.still_valid(state)
  if vim.api.nvim_get_current_buf() ~= state.buf or not vim.api.nvim_buf_is_valid(state.buf) then return false end
  if not vim.api.nvim_get_mode().mode:find('^i') then return false end
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  row = row - 1
  if row < state.row or (row == state.row and col < state.col) then return false end
  local ok, anchor_line = pcall(vim.api.nvim_buf_get_text, state.buf, state.row, 0, state.row, state.col, {})
  if not ok or anchor_line[1] ~= state.line_before then return false end
  local cursor_line = vim.api.nvim_buf_get_lines(state.buf, row, row + 1, false)[1] or ''
  if cursor_line:sub(col + 1) ~= state.line_after then return false end
  local typed = table.concat(vim.api.nvim_buf_get_text(state.buf, state.row, state.col, row, col, {}), '\n')
  state.seen = typed -- (even where it is no longer right: H.drop reads it)
  -- typed into the suggestion; or typed past what has come so far, which agrees with it: the
  -- answer being computed may still serve (its prompt is not thrown away for a new one)
  local into = state.text:sub(1, #typed) == typed
  -- (a request still waiting for a host that is starting has cost nothing: it is replaced instead)
  local ahead = not state.done and typed:sub(1, #state.text) == state.text and not require('ai_host.host').starting()
  if not (into or ahead) then return false end
  state.typed = typed
  if state.done and #typed >= #state.text then return false end -- all of it is in: ask for what follows
  return true
end

-- Which alternative is shown, once the user cycles: `index/known`, after the suggestion's first line.
H.count_format = '  (%d/%d)'

function H.render(state)
  if not vim.api.nvim_buf_is_valid(state.buf) then return end
  vim.api.nvim_buf_clear_namespace(state.buf, H.ns, 0, -1)
  local rest = state.text:sub(#state.typed + 1)
  if rest == '' then return end
  local lines = vim.split(rest, '\n', { plain = true })
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  local opts = { hl_mode = 'combine', priority = 10000 }
  if lines[1] ~= '' then
    opts.virt_text = { { lines[1], 'AiHostGhost' } }
    opts.virt_text_pos = 'inline'
  end
  if #lines > 1 then
    opts.virt_lines = {}
    for i = 2, #lines do
      table.insert(opts.virt_lines, { { lines[i], 'AiHostGhost' } })
    end
  end
  vim.api.nvim_buf_set_extmark(state.buf, H.ns, row - 1, col, opts)
  if state.alts then
    local count = string.format(H.count_format, state.index, math.max(#state.alts, state.index))
    vim.api.nvim_buf_set_extmark(state.buf, H.ns, row - 1, 0, {
      virt_text = { { count, 'AiHostGhostCount' } },
      virt_text_pos = 'eol',
      hl_mode = 'combine',
      priority = 10000,
    })
  end
end

-- Comment's look, with a terminal colour of its own: the default colourscheme gives Comment none,
-- so without 'termguicolors' ghost text looked exactly like code. Colour 8 is grey in 16- and
-- 256-colour terminals.
H.ghost_cterm = { ctermfg = 8, cterm = { italic = true } }

function H.ghost_highlight()
  local hl = vim.api.nvim_get_hl(0, { name = 'Comment', link = false })
  if hl.ctermfg == nil then
    hl.ctermfg = H.ghost_cterm.ctermfg
    hl.cterm = vim.tbl_extend('force', hl.cterm or {}, H.ghost_cterm.cterm)
  end
  hl.default = true
  return hl
end

function H.on_suggestion(state, text)
  if H.state ~= state then return end -- superseded: stale text never renders
  state.text = text
  if state.alts then state.alts[state.index] = text end
  if not H.still_valid(state) then return H.again(state) end
  H.render(state)
  if not state.shown and text ~= '' then
    state.shown = true
    if #H.samples >= H.max_samples then table.remove(H.samples, 1) end
    table.insert(H.samples, { sent = state.sent, shown = vim.uv.hrtime() })
  end
end

function H.on_done(state)
  if H.state ~= state then return end
  state.done = true
  if state.text == '' or not H.still_valid(state) then return H.again(state) end
  if state.index == 1 and require('ai_host').get_config().completion.prefetch then H.prefetch(state) end
end

-- The answer does not fit what was typed while it was computed (or it ended before the typing):
-- drop it, and ask for where the cursor is now if the user typed meanwhile: at once if that is on
-- another line (the user is typing a line nothing was asked for), else after a pause.
function H.again(state)
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  local moved = vim.api.nvim_get_current_buf() == state.buf and (row - 1 ~= state.row or col ~= state.col)
  H.drop(state)
  if not (moved and H.allowed(state.buf)) then return end
  if row - 1 ~= state.row and require('ai_host').get_config().completion.warm then
    vim.schedule(H.request)
  else
    H.debounce()
  end
end

-- A completion-menu source asked for this buffer meanwhile: nothing more comes; what is shown
-- stays (it is still right for the text), an empty suggestion goes.
function H.on_superseded(state)
  if H.state ~= state then return end
  state.done = true
  if state.text == '' then M.clear() end
end

-- The cursor is on another line than the last request or warm-up (completion.warm; not while a
-- host starts): the engine starts on it at once, while the user types the line. On a new, empty
-- line (nothing but indentation, nothing after the cursor) that is the suggestion itself, without
-- waiting for a pause: it is there for the line's first keys, and while what is typed agrees with
-- it, no other request leaves (returns true: no pause is timed). Elsewhere the server reads the
-- text around the cursor (a warm-up: nothing shown, an error not reported), so that the request at
-- the next pause is evaluated from the characters typed on. The engine warms up only when nothing
-- else wants the model.
function H.warm(buf)
  local config = require('ai_host').get_config().completion
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  if not config.warm or (H.warmed and H.warmed.buf == buf and H.warmed.row == row) then return false end
  if require('ai_host.host').starting() then return false end -- a new host's server cache is cold anyway
  H.warmed = { buf = buf, row = row }
  local line = vim.api.nvim_buf_get_lines(buf, row - 1, row, false)[1] or ''
  if col == #line and not line:find('%S') then
    vim.schedule(H.request) -- (at InsertEnter, Insert mode has not begun yet)
    return true
  end
  local prefix, suffix, prefix_row = H.window(buf, row, line:sub(1, col), line:sub(col + 1), config.context_chars)
  require('ai_host.host').start(
    'complete',
    H.payload(buf, prefix, suffix, { warm = true, prefix_row = prefix_row }),
    {}
  )
  return false
end

-- Ask ahead for what would follow accepting the whole suggestion, into the engine's cache only.
function H.prefetch(state)
  state.prefetch_id = require('ai_host.host').start(
    'complete',
    H.payload(state.buf, state.prefix .. state.text, state.suffix, { prefetch = true, prefix_row = state.prefix_row }),
    {}
  )
end

function H.cycle(state, dir)
  if H.state ~= state or not H.still_valid(state) then return end
  state.alts = state.alts or { state.text }
  local target = state.index + dir
  if target < 1 then return end
  if state.typed ~= '' then
    -- typed into the suggestion: alternatives are for the place where the cursor is now
    return H.request({ alts = {} })
  end
  if target <= #state.alts then
    state.index = target
    state.text = state.alts[target]
    return H.render(state)
  end
  if not state.done then return end -- the one shown is still coming
  H.request({ alts = state.alts })
end

function H.on_error(state, message)
  if state ~= nil and H.state == state then
    state.done = true
    M.clear()
  end
  if message and not H.shown_errors[message] then
    H.shown_errors[message] = true
    vim.schedule(function()
      vim.notify(message, vim.log.levels.WARN)
      H.note(message)
    end)
  end
end

-- In insert mode the message line is redrawn at once (-- INSERT --): a message about ghost text is
-- also shown where the user looks, after the cursor's line, until the next key or leaving insert.
H.note_ns = vim.api.nvim_create_namespace('ai_host_ghost_note')
function H.note(message)
  if not vim.api.nvim_get_mode().mode:find('^i') then return end
  local buf, row = vim.api.nvim_get_current_buf(), vim.api.nvim_win_get_cursor(0)[1] - 1
  vim.api.nvim_buf_clear_namespace(buf, H.note_ns, 0, -1)
  vim.api.nvim_buf_set_extmark(
    buf,
    H.note_ns,
    row,
    0,
    { virt_text = { { message, 'WarningMsg' } }, virt_text_pos = 'eol' }
  )
  vim.api.nvim_create_autocmd({ 'InsertLeave', 'TextChangedI', 'CursorMovedI' }, {
    buffer = buf,
    once = true,
    callback = function()
      if vim.api.nvim_buf_is_valid(buf) then vim.api.nvim_buf_clear_namespace(buf, H.note_ns, 0, -1) end
    end,
  })
end

return M
