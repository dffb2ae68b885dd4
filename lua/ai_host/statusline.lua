--- ai_host.statusline: what the plugin is doing, for lualine and friends, and `User` events.
---
--- Kept up to date from the job events Lua already receives: reading it costs no RPC, so a
--- statusline may call it on every redraw. Events (`:autocmd User AiHost*`), each with `data`
--- { id, kind, ... }: AiHostStart, AiHostFirstToken, AiHostDone, AiHostError.

local M = {}
local H = {}

-- State ---------------------------------------------------------------------------------------
-- H.jobs: job id -> { kind, phase ('queued'|'waiting'|'streaming'), why (status text), first (bool) }
-- H.last: { state = 'done'|'error'|'cancelled', text } of the most recent job that ended
H.jobs = {}
H.last = nil
H.icons = { idle = 'AI', queued = 'AI …', waiting = 'AI ⏸', streaming = 'AI ▶', error = 'AI ✗' }

--- The state now: 'idle', 'queued', 'waiting' (for LSP or GPU), 'streaming' or 'error', and a text.
---@return { state: string, text: string, tokens_per_s: number? }
function M.get()
  local streaming, waiting, queued
  for _, job in pairs(H.jobs) do
    if not job.prefetch then
      if job.phase == 'streaming' then streaming = job
      elseif job.phase == 'waiting' then waiting = job
      else queued = job end
    end
  end
  if streaming then return { state = 'streaming', text = H.icons.streaming .. ' ' .. streaming.kind } end
  if waiting then return { state = 'waiting', text = H.icons.waiting .. ' ' .. waiting.why } end
  if queued then return { state = 'queued', text = H.icons.queued .. ' ' .. queued.kind } end
  if H.last and H.last.state == 'error' then return { state = 'error', text = H.icons.error .. ' ' .. H.last.text } end
  if H.last and H.last.tokens_per_s then
    return { state = 'idle', text = string.format('%s %.0f tok/s', H.icons.idle, H.last.tokens_per_s), tokens_per_s = H.last.tokens_per_s }
  end
  return { state = 'idle', text = H.icons.idle }
end

--- For lualine: `sections = { lualine_x = { require('ai_host.statusline').component } }`.
function M.component()
  return M.get().text
end

--- Fed by ai_host.host with every event of every job.
function M.on_event(id, kind, event, data, prefetch)
  local job = H.jobs[id]
  if event == 'start' then
    H.jobs[id] = { kind = kind, phase = 'queued', prefetch = prefetch == true }
    return H.fire('AiHostStart', { id = id, kind = kind })
  end
  if job == nil then
    if event == 'error' then H.last = { state = 'error', text = H.short(data.message) } end
    return
  end
  if event == 'chunk' or event == 'suggestion' or event == 'proposal' then
    job.phase = 'streaming'
    if not job.first then
      job.first = true
      H.fire('AiHostFirstToken', { id = id, kind = job.kind })
    end
  elseif event == 'status' and not data.warning then
    job.phase, job.why = 'waiting', data.text
  elseif event == 'done' or event == 'error' or event == 'cancelled' then
    H.jobs[id] = nil
    if job.prefetch then return end
    if event == 'error' then
      H.last = { state = 'error', text = H.short(data.message) }
      H.fire('AiHostError', { id = id, kind = job.kind, message = data.message })
    elseif event == 'done' then
      local tps = data.tokens_per_s
      H.last = { state = 'done', tokens_per_s = (type(tps) == 'number') and tps or nil }
      H.fire('AiHostDone', vim.tbl_extend('force', { id = id, kind = job.kind }, data))
    else
      H.last = { state = 'cancelled' }
    end
  end
end

function H.short(message)
  return (tostring(message or ''):gsub('^ai_host: ', ''):sub(1, 40))
end

function H.fire(pattern, data)
  vim.api.nvim_exec_autocmds('User', { pattern = pattern, modeline = false, data = data })
end

return M
