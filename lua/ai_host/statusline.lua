--- ai_host.statusline: what the plugin is doing, for lualine and friends, and `User` events.
---
--- Read from ai_host.host's job table, and told by it of each job's start, first output and end:
--- reading it costs no RPC, so a statusline may call it on every redraw. Events (`:autocmd User
--- AiHost*`), each with `data` { id, kind, ... }: AiHostStart, AiHostFirstToken, AiHostDone, AiHostError.

local M = {}
local H = {}

-- State ---------------------------------------------------------------------------------------
-- H.last: { state = 'done'|'error'|'cancelled', text, tokens_per_s } of the most recent job that ended
H.last = nil
H.icons = { idle = 'AI', queued = 'AI …', waiting = 'AI ⏸', streaming = 'AI ▶', error = 'AI ✗' }

--- The state now: 'idle', 'queued', 'waiting' (for LSP or GPU), 'streaming' or 'error', and a text.
---@return { state: string, text: string, tokens_per_s: number? }
function M.get()
  local host = require('ai_host.host')
  local streaming, waiting, queued
  for _, job in pairs(host.jobs()) do
    if not job.prefetch then
      if job.phase == 'streaming' then
        streaming = job
      elseif job.phase == 'waiting' then
        waiting = job
      else
        queued = job
      end
    end
  end
  if streaming then return { state = 'streaming', text = H.icons.streaming .. ' ' .. streaming.kind } end
  if waiting then return { state = 'waiting', text = H.icons.waiting .. ' ' .. waiting.why } end
  -- a job waits for the Python host to start again (it had stopped)
  if queued and host.starting() then return { state = 'queued', text = H.icons.queued .. ' starting' } end
  if queued then return { state = 'queued', text = H.icons.queued .. ' ' .. queued.kind } end
  if H.last and H.last.state == 'error' then return { state = 'error', text = H.icons.error .. ' ' .. H.last.text } end
  if H.last and H.last.tokens_per_s then
    return {
      state = 'idle',
      text = string.format('%s %.0f tok/s', H.icons.idle, H.last.tokens_per_s),
      tokens_per_s = H.last.tokens_per_s,
    }
  end
  return { state = 'idle', text = H.icons.idle }
end

--- For lualine: `sections = { lualine_x = { require('ai_host.statusline').component } }`.
function M.component() return M.get().text end

--- A job was sent (ai_host.host calls this, and the three below).
function M.on_start(job) H.fire('AiHostStart', { id = job.id, kind = job.kind }) end

--- A job's first output arrived.
function M.on_first_output(job) H.fire('AiHostFirstToken', { id = job.id, kind = job.kind }) end

--- A job ended: `how` is 'done', 'error' or 'cancelled' (the engine let it go, or the user did).
function M.on_end(job, how, data)
  if job.prefetch then return end
  if how == 'error' then
    H.last = { state = 'error', text = H.short(data.message) }
    H.fire('AiHostError', { id = job.id, kind = job.kind, message = data.message })
  elseif how == 'done' then
    local tps = data.tokens_per_s
    H.last = { state = 'done', tokens_per_s = (type(tps) == 'number') and tps or nil }
    H.fire('AiHostDone', vim.tbl_extend('force', { id = job.id, kind = job.kind }, data))
  else
    H.last = { state = 'cancelled' }
  end
end

--- A job could not even be sent (no Python host): the statusline shows the error.
function M.on_refused(message) H.last = { state = 'error', text = H.short(message) } end

-- Helpers --------------------------------------------------------------------------------------

function H.short(message) return (tostring(message or ''):gsub('^ai_host: ', ''):sub(1, 40)) end

function H.fire(pattern, data) vim.api.nvim_exec_autocmds('User', { pattern = pattern, modeline = false, data = data }) end

return M
