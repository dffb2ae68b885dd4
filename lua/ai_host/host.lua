--- ai_host.host: the Lua end of the bridge to the Python remote plugin, and the one table of jobs.
---
--- Everything that may touch the network goes out as a notification (AiHostNotify, never a
--- blocking request); results come back as `_dispatch(id, event, data)` notifications and are
--- routed to the handlers of that job id. A job's events: 'chunk'*, then 'done' or 'error'.
--- A host that died is started again without waiting for it: what is sent meanwhile waits in a
--- queue, and goes out when the new host says it is up (its client info: the `ChanInfo` event).

local M = {}

--- The version of the messages this side sends (ai_host/protocol: VERSION); :checkhealth compares.
M.PROTOCOL = 1
local H = {}

-- State ---------------------------------------------------------------------------------------
-- H.jobs: job id -> the one record of a job the editor waits on (ai_host.statusline reads it):
--   { id, kind, prefetch (for the engine's cache only, never shown), phase ('queued'|'waiting'|
--     'streaming'), why (what it waits for, while 'waiting'), output (its first output came),
--     channel (the host it was sent to), handlers = { on_<event> = fun(data) } }
H.jobs = {}
H.counter = 0
H.received = 0 -- events the host sent us, stale ones too (this host's count: it restarts with it)
H.config_sent = false
H.channel = nil -- the python3 host's channel, once it runs
H.starting = false -- a host of ours is starting: notifications wait in H.queue until it is up
H.queue = {} -- { { event, payload }, ... }, in the order they were sent
H.start_wait_ms = 30000 -- a new host that has not said it is up by then is given up on
H.lsp_told = {} -- buf -> the pending LSP requests this host was last told of
H.watchdog = nil -- a timer that notices the host dying while jobs wait on it
H.watch_ms = 500

--- Whether the remote plugin's functions are registered (the rplugin manifest was built). Until
--- the host starts, the manifest only defines a FuncUndefined autocmd that bootstraps it.
function M.available() return vim.fn.exists('*AiHostNotify') == 1 or vim.fn.exists('#FuncUndefined#AiHostNotify') == 1 end

--- Make sure the remote plugin is registered: by the rplugin manifest when there is one, else by
--- ai_host itself, the way the manifest would (no :UpdateRemotePlugins run yet, `nvim --clean`,
--- which skips every manifest, or a plugin manager that skipped the build step). Returns true, or
--- false and a message for the user.
---@return boolean ok, string|nil message
function M.ensure_registered()
  if M.available() then return true end
  if vim.fn['remote#host#IsRunning']('python3') == 1 then
    return false,
      "ai_host: Neovim's python3 host was started without ai_host, so it cannot be added now."
        .. ' Restart Neovim (and run :AIInstall once if this happens again).'
  end
  local ok, err = pcall(vim.fn['remote#host#RegisterPlugin'], 'python3', H.shim(), {
    { sync = false, name = 'AiHostNotify', type = 'function', opts = vim.empty_dict() },
    { sync = true, name = 'AiHostRequest', type = 'function', opts = vim.empty_dict() },
  })
  if not ok or not M.available() then
    return false,
      'ai_host: the remote plugin could not be registered ('
        .. H.first_line(err)
        .. '). Run :AIInstall, then restart Neovim (see :checkhealth ai_host).'
  end
  H.self_registered = true
  return true
end

--- Whether ai_host registered itself (no manifest had it): for :checkhealth.
function M.self_registered() return H.self_registered == true end

--- Send `event` with `payload` to the Python host. Returns true, or false and a message for the user.
--- While a restarted host starts, it is queued (and sent once the host is up) instead.
---@return boolean ok, string|nil message
function M.notify(event, payload)
  local registered, why = M.ensure_registered()
  if not registered then return false, why end
  if H.starting then return H.enqueue(event, payload) end
  if not H.config_sent and event ~= 'config' then
    local ok, msg = M.notify('config', require('ai_host').wire_config())
    if not ok then return false, msg end
    if H.starting then return H.enqueue(event, payload) end -- sending the config found the host dead
  end
  local ok, err = pcall(vim.fn.AiHostNotify, event, payload or vim.empty_dict())
  if not ok and H.is_dead_channel(err) then
    -- the Python host died (killed, crashed): what it was doing is lost, so those jobs end with a
    -- message now (never a float waiting forever); a new host starts, and this goes out once it is up
    local dead = H.channel
    for _, id in ipairs(vim.tbl_keys(H.jobs)) do
      if dead ~= nil and H.jobs[id].channel == dead then H.route(id, 'error', { message = H.stopped_message() }) end
    end
    local restarted, why_not = H.restart()
    if not restarted then return false, why_not end
    return H.enqueue(event, payload)
  end
  if not ok then
    return false,
      'ai_host: the Python host could not start ('
        .. H.first_line(err)
        .. '). Run :checkhealth ai_host and :checkhealth vim.provider.'
  end
  if H.channel == nil then
    local got, chan = pcall(vim.fn['remote#host#Require'], 'python3') -- it runs now: cheap
    H.channel = got and chan or nil
  end
  if event == 'config' then H.config_sent = true end
  return true
end

--- Start a job of `kind`. Returns its id, or nil and a message for the user.
---@param kind string
---@param payload table
---@param handlers table { on_chunk, on_done, on_error, on_superseded (the engine let the job go for a newer one) }
---@return string|nil id, string|nil message
function M.start(kind, payload, handlers)
  H.counter = H.counter + 1
  local id = string.format('%s-%d', kind, H.counter)
  payload.id = id
  local job = {
    id = id,
    kind = kind,
    prefetch = payload.prefetch == true or payload.warm == true,
    phase = 'queued',
    handlers = handlers,
  }
  H.jobs[id] = job
  -- the gate learns of a busy language server before the job reaches it (the host may start now)
  if payload.buf ~= nil then M.report_lsp(payload.buf, true) end
  local ok, msg = M.notify(kind, payload)
  if not ok then
    H.jobs[id] = nil
    require('ai_host.statusline').on_refused(msg)
    return nil, msg
  end
  job.channel = not H.starting and H.channel or nil -- the host it went to (none yet while one starts)
  require('ai_host.statusline').on_start(job)
  H.watch()
  return id
end

--- Cancel a job: its handlers are dropped at once (nothing of it renders), the host closes the stream.
function M.cancel(id)
  local job = id ~= nil and H.jobs[id] or nil
  if job == nil then return end
  H.jobs[id] = nil
  require('ai_host.statusline').on_end(job, 'cancelled', {})
  M.notify('cancel', { id = id })
end

--- Cancel every job in flight.
function M.cancel_all()
  local jobs = H.jobs
  H.jobs = {}
  for _, job in pairs(jobs) do
    require('ai_host.statusline').on_end(job, 'cancelled', {})
  end
  if next(jobs) ~= nil then M.notify('cancel_all', vim.empty_dict()) end
end

--- The jobs the editor waits on: job id -> record (see H.jobs). Read it, never change it.
function M.jobs() return H.jobs end

--- Whether a restarted host is starting (what is sent waits for it).
function M.starting() return H.starting end

--- Send `event` only if the host already runs (never start it for this); for passing updates.
function M.notify_if_running(event, payload)
  if H.config_sent or H.starting then M.notify(event, payload) end
end

--- Tell the engine a buffer's language-server load when it crosses `lsp.busy_above` (busy <-> free):
--- that is all its gate needs. Only once the host runs, unless `start` (a job is about to start it).
---@param buf integer
---@param start boolean|nil
function M.report_lsp(buf, start)
  if H.starting or not (start or H.config_sent) then return end -- a new host hears of every load once up
  local pending = require('ai_host.context').lsp_pending(buf)
  local above = require('ai_host').get_config().lsp.busy_above
  if (pending > above) == ((H.lsp_told[buf] or 0) > above) then return end
  if M.notify('lsp', { buf = buf, pending = pending }) then H.lsp_told[buf] = pending end
end

--- A buffer was wiped: the engine drops what it keeps of it (its jobs, prefetch, LSP load).
function M.forget_buf(buf)
  H.lsp_told[buf] = nil
  M.notify_if_running('forget_buf', { buf = buf })
end

--- Whether ai_host has started the Python host (every job goes through it, so none ran before).
function M.started() return H.config_sent or H.channel ~= nil end

--- The engine's state (queue, jobs, gates, figures), or nil and why. Synchronous but cheap: the
--- engine answers within 0.2 s or says it is busy. Never starts the host, nor waits for one starting.
function M.status()
  if not M.started() then return nil, 'the Python host has not started yet (it starts with the first request)' end
  if H.starting then return nil, 'the Python host is starting again (it had stopped)' end
  local ok, result = pcall(vim.fn.AiHostRequest, 'status')
  if not ok then return nil, H.first_line(result) end
  return result
end

--- Start the Python host and send the config, unless that happened already.
function M.warm_up()
  if H.config_sent or not H.python_known() or not M.ensure_registered() then return end
  M.notify('config', require('ai_host').wire_config())
end

--- Start the Python host now (and send the config) if it is not running; for explicit commands
--- such as :AIStatus. Returns true, or false and a message for the user.
---@return boolean ok, string|nil message
function M.ensure_started()
  if H.config_sent then return true end
  return M.notify('config', require('ai_host').wire_config())
end

--- Mark the config as changed: it is sent again before the next job.
function M.config_changed() H.config_sent = false end

--- Called by the Python host (a notification): route one event of one job.
function M._dispatch(id, event, data)
  H.received = H.received + 1
  H.route(id, event, data)
end

--- Jobs the editor is still waiting on, and whether the watchdog runs (for tests and :AIStatus).
function M.open_jobs() return { count = vim.tbl_count(H.jobs), watchdog = H.watchdog ~= nil } end

--- What the editor side still has going, for tests that must know when everything has settled:
--- jobs waiting on the host, events received from it (compare with the engine's `events_emitted`
--- in status), and whether a ghost-text debounce timer is yet to decide.
function M.activity()
  return { jobs = vim.tbl_count(H.jobs), received = H.received, debouncing = require('ai_host.ghost').debouncing() }
end

--- The process id of the Python host, or nil while none runs (never starts one).
function M.pid()
  local chan = H.channel
  if chan == nil and vim.fn['remote#host#IsRunning']('python3') == 1 then
    chan = vim.fn['remote#host#Require']('python3') -- it runs: this only looks its channel up
  end
  if chan == nil or not H.alive(chan) then return nil end
  local ok, pid = pcall(vim.fn.jobpid, chan)
  return ok and pid > 0 and pid or nil
end

--- How many times the host was restarted (for tests and :AIStatus).
function M.restarts() return H.restarts or 0 end

-- Helpers --------------------------------------------------------------------------------------

-- Events that carry a job's output (the first one ends its wait in the statusline).
H.output_events = { chunk = true, suggestion = true, proposal = true }

-- One event of one job, to its record and its handler.
function H.route(id, event, data)
  local job = H.jobs[id]
  if job == nil then return end -- cancelled or finished: a stale event never renders
  local statusline = require('ai_host.statusline')
  if event == 'done' or event == 'error' then H.jobs[id] = nil end
  if event == 'done' and type(data) == 'table' and data.superseded then -- the engine let it go for a newer one
    statusline.on_end(job, 'cancelled', {})
    if job.handlers.on_superseded then job.handlers.on_superseded(data) end
    return
  end
  if H.output_events[event] then
    job.phase = 'streaming'
    if not job.output then
      job.output = true
      statusline.on_first_output(job)
    end
  elseif event == 'status' and not data.warning then
    job.phase, job.why = 'waiting', data.text
  elseif event == 'done' or event == 'error' then
    statusline.on_end(job, event, data)
  end
  local handler = job.handlers['on_' .. event]
  if handler then handler(data) end
end

-- Whether a python for the host is known to work: warming up without one (before :AIInstall) would
-- only print the provider's error at startup; the first request says what to do instead.
function H.python_known()
  local prog = vim.g.python3_host_prog
  if prog ~= nil and prog ~= '' then return vim.fn.executable(vim.fn.expand(prog)) == 1 end
  return vim.g.loaded_python3_provider == 2
end

function H.shim() return require('ai_host.config').root .. '/rplugin/python3/ai_host_rplugin.py' end

function H.is_dead_channel(err)
  local text = tostring(err)
  return text:find("Channel doesn't exist", 1, true) ~= nil or text:find('Invalid channel', 1, true) ~= nil
end

function H.alive(chan) return next(vim.api.nvim_get_chan_info(chan)) ~= nil end

-- While the restarted host starts: keep what is sent, in order, for when it is up. A job cancelled
-- meanwhile simply leaves the queue (the new host never heard of it); the config goes first anyway.
-- A warm-up is let go: a new host's server cache is cold, and the next request reads it anyway.
function H.enqueue(event, payload)
  if event == 'config' then return true end
  if payload and payload.warm then
    H.jobs[payload.id] = nil
    return true
  end
  if event == 'cancel' or event == 'cancel_all' then
    for i = #H.queue, 1, -1 do
      local queued = H.queue[i][2].id
      if queued ~= nil and (event == 'cancel_all' or queued == payload.id) then table.remove(H.queue, i) end
    end
    return true
  end
  table.insert(H.queue, { event, payload or vim.empty_dict() })
  return true
end

-- How Neovim's provider starts a python3 host, with just this plugin.
H.host_code = 'import sys; sys.path = [p for p in sys.path if p != ""]; import neovim; neovim.start_host()'

-- Start a python3 host of our own with just this plugin, the way Neovim's provider does, and point
-- AiHostNotify / AiHostRequest at it, without waiting for it (the provider's `poll` request would
-- block the editor while Python starts): it is up when it sends its client info. (Neovim never
-- restarts a remote-plugin host itself.)
function H.restart()
  local shim = H.shim()
  local ok_prog, prog = pcall(vim.fn['provider#python3#Prog'])
  prog = (vim.g.python3_host_prog ~= nil and vim.g.python3_host_prog ~= '') and vim.g.python3_host_prog
    or (ok_prog and prog ~= '' and prog)
    or 'python3'
  local chan
  local ok, started = pcall(vim.fn.jobstart, { vim.fn.expand(prog), '-c', H.host_code, shim }, {
    rpc = true,
    on_exit = function() H.on_exit(chan) end,
  })
  chan = ok and started or 0
  if chan <= 0 then
    return false,
      'ai_host: the Python host stopped and could not be restarted (' .. prog .. '). See :checkhealth ai_host.'
  end
  local define = vim.fn['remote#define#FunctionOnChannel']
  define(chan, shim .. ':function:AiHostNotify', 0, 'AiHostNotify', vim.empty_dict())
  define(chan, shim .. ':function:AiHostRequest', 1, 'AiHostRequest', vim.empty_dict())
  H.channel, H.starting, H.queue = chan, true, {}
  H.config_sent, H.received, H.lsp_told = false, 0, {}
  H.restarts = (H.restarts or 0) + 1
  vim.api.nvim_create_autocmd('ChanInfo', {
    group = vim.api.nvim_create_augroup('ai_host_host', { clear = true }),
    callback = function()
      local info = vim.v.event.info or {}
      if info.id ~= chan or (info.client or {}).name == nil then return end
      if H.channel == chan and H.starting then H.on_up() end
      return true -- this host said who it is: nothing more to hear from this autocmd
    end,
  })
  vim.defer_fn(function()
    if H.channel ~= chan or not H.starting then return end
    pcall(vim.fn.jobstop, chan)
    H.host_gone(H.not_back_message('it did not start within ' .. H.start_wait_ms / 1000 .. ' s'))
  end, H.start_wait_ms)
  return true
end

-- The restarted host is up: tell it of every busy language server, then send what waited for it,
-- in order (the config first), except jobs that ended meanwhile.
function H.on_up()
  H.starting, H.lsp_told = false, {}
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(buf) then M.report_lsp(buf, true) end
  end
  local queue = H.queue
  H.queue = {}
  for _, item in ipairs(queue) do
    local event, payload = item[1], item[2]
    local job = payload.id ~= nil and H.jobs[payload.id] or nil
    if payload.id == nil or job ~= nil then
      local ok, msg = M.notify(event, payload)
      if not ok and job ~= nil then H.route(payload.id, 'error', { message = msg }) end
      if ok and job ~= nil then job.channel = H.channel end
    end
  end
end

function H.on_exit(chan)
  if chan == nil or chan ~= H.channel then return end
  if H.starting then return H.host_gone(H.not_back_message('it exited as it started')) end
  H.host_gone(H.stopped_message())
end

function H.not_back_message(why)
  return 'ai_host: the Python host stopped and did not come back ('
    .. why
    .. '). See :checkhealth ai_host (details: '
    .. require('ai_host').wire_config().log.file
    .. ').'
end

function H.stopped_message()
  return 'ai_host: the Python host stopped unexpectedly; the next request starts it again'
    .. ' (details: '
    .. require('ai_host').wire_config().log.file
    .. ').'
end

-- The host is gone: every job ends with an error (nothing waits forever), the next request starts
-- a new one.
function H.host_gone(message)
  H.channel, H.starting, H.queue = nil, false, {}
  for _, id in ipairs(vim.tbl_keys(H.jobs)) do
    H.route(id, 'error', { message = message })
  end
end

-- While jobs wait on the host, check now and then that it is still there; if it died, each job
-- ends with an error (nothing waits forever) and the user is told once.
function H.watch()
  if H.watchdog ~= nil then return end
  local timer = vim.uv.new_timer()
  H.watchdog = timer
  timer:start(
    H.watch_ms,
    H.watch_ms,
    vim.schedule_wrap(function()
      if H.watchdog ~= timer then return end -- a tick queued before the timer was stopped
      if next(H.jobs) == nil then
        timer:stop()
        timer:close()
        H.watchdog = nil
        return
      end
      if H.channel ~= nil and not H.alive(H.channel) then H.host_gone(H.stopped_message()) end
    end)
  )
end

function H.first_line(err) return (tostring(err):gsub('\n.*', '')) end

return M
