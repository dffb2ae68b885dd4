--- ai_host.status: :AIStatus, what the engine is doing and why, in a float.

local M = {}
local H = {}

--- The status as lines of text (for the float, tests and bug reports). With `opts.start`, the
--- Python host is started first if it is not running yet (an explicit :AIStatus asks for it).
---@param opts { start: boolean? }|nil
---@return string[]
function M.lines(opts)
  if opts and opts.start then
    local ok, why = require('ai_host.host').ensure_started()
    if not ok then return { why } end
  end
  local s, why = require('ai_host.host').status()
  if s == nil then return { 'ai_host: ' .. why .. '.' } end
  if s.error then return { s.error } end
  local lines = { 'ai_host status', '' }
  local add = function(fmt, ...) table.insert(lines, string.format(fmt, ...)) end
  add('endpoint     %s', s.endpoint or '?')
  for _, e in ipairs(s.endpoints or {}) do
    add(
      '  %-10s %s %s (%s) for %s%s',
      e.name,
      e.kind,
      e.url,
      e.healthy and 'up' or 'down',
      table.concat(e.tasks or {}, ', '),
      (e.last_error or '') ~= '' and (': ' .. e.last_error) or ''
    )
  end
  for url, models in pairs(s.loaded or {}) do
    for _, m in ipairs(models) do
      local in_vram = m.size > 0 and m.size_vram / m.size or 1
      add(
        'loaded       %s on %s: %.1f GB, %d%% in GPU memory%s',
        m.name,
        url,
        m.size / 1e9,
        math.floor(in_vram * 100 + 0.5),
        in_vram < 0.999 and ' (partial CPU offload: slower)' or ''
      )
    end
  end
  local sched = s.scheduler or {}
  add('slots        %d per endpoint, queue up to %d', sched.limit or 0, sched.queue_limit or 0)
  for ep, e in pairs(sched.endpoints or {}) do
    local running = {}
    for id, age in pairs(e.running or {}) do
      table.insert(running, string.format('%s (%.1fs)', id, age))
    end
    table.sort(running)
    add(
      '  %s: running %s; queued %s',
      ep,
      #running > 0 and table.concat(running, ', ') or 'none',
      #(e.queued or {}) > 0 and table.concat(e.queued, ', ') or 'none'
    )
  end
  local gpu = s.gpu or {}
  if gpu.state == 'off' then
    add('GPU gate     off: %s', gpu.reason or '?')
  else
    add(
      'GPU gate     %s: %s, %.1f / %.1f GiB (%d%%, threshold %d%%)%s',
      gpu.state,
      gpu.name or '?',
      (gpu.used or 0) / 2 ^ 30,
      (gpu.total or 0) / 2 ^ 30,
      math.floor((gpu.fraction or 0) * 100 + 0.5),
      math.floor((gpu.threshold or 0) * 100 + 0.5),
      -- busy below the threshold: the gate waits for memory to fall a little under it (hysteresis)
      (gpu.state == 'busy' and gpu.release_below and (gpu.fraction or 1) <= (gpu.threshold or 0))
          and string.format(', busy until %d%% or less', math.floor(gpu.release_below * 100 + 0.5))
        or ''
    )
  end
  local lsp = s.lsp or {}
  -- the load now, read here: the engine only hears of a buffer crossing the threshold
  local busy = {}
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    local n = vim.api.nvim_buf_is_loaded(buf) and require('ai_host.context').lsp_pending(buf) or 0
    if n > 0 then table.insert(busy, string.format('buffer %d: %d pending', buf, n)) end
  end
  add(
    'LSP gate     busy above %d pending; %s',
    lsp.busy_above or 0,
    #busy > 0 and table.concat(busy, ', ') or 'all quiet'
  )
  local hits, misses = s.cache_hits or 0, s.cache_misses or 0
  add(
    'cache        %d hits, %d misses (%d%%)',
    hits,
    misses,
    hits + misses > 0 and math.floor(100 * hits / (hits + misses)) or 0
  )
  add(
    'jobs         %d started, %d done, %d failed, %d cancelled',
    s.jobs_started or 0,
    s.jobs_done or 0,
    s.jobs_failed or 0,
    s.jobs_cancelled or 0
  )
  for reason, n in pairs(s.dropped or {}) do
    add('dropped      %d (%s)', n, reason)
  end
  for model, f in pairs(s.models or {}) do
    add('model        %s: first token %s ms, %s tok/s (medians)', model, H.num(f.ttft_ms), H.num(f.tokens_per_s))
  end
  return lines
end

--- Show the status in a float; `q` closes it.
function M.show()
  local lines = M.lines({ start = true })
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = false
  vim.bo[buf].bufhidden = 'wipe'
  local width = 20
  for _, l in ipairs(lines) do
    width = math.max(width, vim.fn.strdisplaywidth(l) + 2)
  end
  width = math.min(width, vim.o.columns - 4)
  local win = vim.api.nvim_open_win(buf, true, {
    relative = 'editor',
    style = 'minimal',
    border = require('ai_host').get_config().ui.border,
    width = width,
    height = #lines,
    row = math.floor((vim.o.lines - #lines) / 2),
    col = math.floor((vim.o.columns - width) / 2),
    title = ' ai_host ',
    title_pos = 'center',
  })
  for _, lhs in ipairs({ 'q', '<Esc>' }) do
    vim.keymap.set('n', lhs, function() pcall(vim.api.nvim_win_close, win, true) end, { buffer = buf, nowait = true })
  end
  return buf, win
end

function H.num(v)
  if v == nil or v == vim.NIL then return '-' end
  return string.format('%.1f', v)
end

return M
