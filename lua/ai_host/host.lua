--- ai_host.host: the Lua end of the bridge to the Python remote plugin.
---
--- Everything that may touch the network goes out as a notification (AiHostNotify, never a
--- blocking request); results come back as `_dispatch(id, event, data)` notifications and are
--- routed to the handlers of that job id. A job's events: 'chunk'*, then 'done' or 'error'.

local M = {}
local H = {}

-- State ---------------------------------------------------------------------------------------
-- H.jobs: job id -> { on_chunk = fun(data), on_done = fun(data), on_error = fun(data) }
H.jobs = {}
H.counter = 0
H.received = 0 -- events the host sent us, stale ones too (this host's count: it restarts with it)
H.config_sent = false
H.channel = nil -- the python3 host's channel, once it runs
H.watchdog = nil -- a timer that notices the host dying while jobs wait on it
H.watch_ms = 500

--- Whether the remote plugin's functions are registered (the rplugin manifest was built). Until
--- the host starts, the manifest only defines a FuncUndefined autocmd that bootstraps it.
function M.available()
  return vim.fn.exists('*AiHostNotify') == 1 or vim.fn.exists('#FuncUndefined#AiHostNotify') == 1
end

--- Make sure the remote plugin is registered: by the rplugin manifest when there is one, else by
--- ai_host itself, the way the manifest would (no :UpdateRemotePlugins run yet, `nvim --clean`,
--- which skips every manifest, or a plugin manager that skipped the build step). Returns true, or
--- false and a message for the user.
---@return boolean ok, string|nil message
function M.ensure_registered()
  if M.available() then return true end
  if vim.fn['remote#host#IsRunning']('python3') == 1 then
    return false, 'ai_host: Neovim\'s python3 host was started without ai_host, so it cannot be added now.'
      .. ' Restart Neovim (and run :AIInstall once if this happens again).'
  end
  local ok, err = pcall(vim.fn['remote#host#RegisterPlugin'], 'python3', H.shim(), {
    { sync = false, name = 'AiHostNotify', type = 'function', opts = vim.empty_dict() },
    { sync = true, name = 'AiHostRequest', type = 'function', opts = vim.empty_dict() },
  })
  if not ok or not M.available() then
    return false, 'ai_host: the remote plugin could not be registered (' .. H.first_line(err) .. ').'
      .. ' Run :AIInstall, then restart Neovim (see :checkhealth ai_host).'
  end
  H.self_registered = true
  return true
end

--- Whether ai_host registered itself (no manifest had it): for :checkhealth.
function M.self_registered()
  return H.self_registered == true
end

-- Whether a python for the host is known to work: warming up without one (before :AIInstall) would
-- only print the provider's error at startup; the first request says what to do instead.
function H.python_known()
  local prog = vim.g.python3_host_prog
  if prog ~= nil and prog ~= '' then return vim.fn.executable(vim.fn.expand(prog)) == 1 end
  return vim.g.loaded_python3_provider == 2
end

function H.shim()
  return require('ai_host.config').root .. '/rplugin/python3/ai_host_rplugin.py'
end

--- Send `event` with `payload` to the Python host. Returns true, or false and a message for the user.
---@return boolean ok, string|nil message
function M.notify(event, payload)
  local registered, why = M.ensure_registered()
  if not registered then return false, why end
  if not H.config_sent and event ~= 'config' then
    local ok, msg = M.notify('config', require('ai_host').wire_config())
    if not ok then return false, msg end
  end
  local ok, err = pcall(vim.fn.AiHostNotify, event, payload or vim.empty_dict())
  if not ok and H.is_dead_channel(err) then
    -- the Python host died (killed, crashed): start a new one and send this again
    local restarted, why = H.restart()
    if not restarted then return false, why end
    if event ~= 'config' then
      local sent, msg = M.notify('config', require('ai_host').wire_config())
      if not sent then return false, msg end
    end
    ok, err = pcall(vim.fn.AiHostNotify, event, payload or vim.empty_dict())
  end
  if not ok then
    return false,
      'ai_host: the Python host could not start (' .. H.first_line(err) .. '). Run :checkhealth ai_host and :checkhealth vim.provider.'
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
  H.jobs[id] = handlers
  local ok, msg = M.notify(kind, payload)
  if not ok then
    H.jobs[id] = nil
    require('ai_host.statusline').on_event(id, kind, 'error', { message = msg }, payload.prefetch)
    return nil, msg
  end
  require('ai_host.statusline').on_event(id, kind, 'start', {}, payload.prefetch)
  H.watch()
  return id
end

--- Cancel a job: its handlers are dropped at once (nothing of it renders), the host closes the stream.
function M.cancel(id)
  if id == nil or H.jobs[id] == nil then return end
  H.jobs[id] = nil
  require('ai_host.statusline').on_event(id, nil, 'cancelled', {})
  M.notify('cancel', { id = id })
end

--- Cancel every job in flight.
function M.cancel_all()
  local had = next(H.jobs) ~= nil
  for id in pairs(H.jobs) do
    require('ai_host.statusline').on_event(id, nil, 'cancelled', {})
  end
  H.jobs = {}
  if had then M.notify('cancel_all', vim.empty_dict()) end
end

--- Send `event` only if the host already runs (never start it for this); for passing updates.
function M.notify_if_running(event, payload)
  if H.config_sent then M.notify(event, payload) end
end

--- Whether ai_host has started the Python host (every job goes through it, so none ran before).
function M.started()
  return H.config_sent or H.channel ~= nil
end

--- The engine's state (queue, jobs, gates, figures), or nil and why. Synchronous but cheap: the
--- engine answers within 0.2 s or says it is busy. Never starts the host.
function M.status()
  if not M.started() then return nil, 'the Python host has not started yet (it starts with the first request)' end
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
function M.config_changed()
  H.config_sent = false
end

--- Called by the Python host (a notification): route one event of one job.
function M._dispatch(id, event, data)
  H.received = H.received + 1
  local job = H.jobs[id]
  if job == nil then return end -- cancelled or finished: a stale event never renders
  if event == 'done' or event == 'error' then H.jobs[id] = nil end
  if event == 'done' and type(data) == 'table' and data.superseded then -- the engine let it go for a newer one
    require('ai_host.statusline').on_event(id, nil, 'cancelled', {})
    if job.on_superseded then job.on_superseded(data) end
    return
  end
  require('ai_host.statusline').on_event(id, nil, event, data)
  local handler = job['on_' .. event]
  if handler then handler(data) end
end

function H.is_dead_channel(err)
  local text = tostring(err)
  return text:find("Channel doesn't exist", 1, true) ~= nil or text:find('Invalid channel', 1, true) ~= nil
end

-- Start a python3 host of our own with just this plugin, the way Neovim's provider does, and
-- point AiHostNotify / AiHostRequest at it. (Neovim never restarts a remote-plugin host itself.)
function H.restart()
  local shim = H.shim()
  local ok_prog, prog = pcall(vim.fn['provider#python3#Prog'])
  prog = (vim.g.python3_host_prog ~= nil and vim.g.python3_host_prog ~= '') and vim.g.python3_host_prog
    or (ok_prog and prog ~= '' and prog) or 'python3'
  local chan = vim.fn.jobstart({ prog, '-c',
    'import sys; sys.path = [p for p in sys.path if p != ""]; import neovim; neovim.start_host()', shim }, { rpc = true })
  if chan <= 0 then
    return false, 'ai_host: the Python host stopped and could not be restarted (' .. prog .. '). See :checkhealth ai_host.'
  end
  local ok, err = pcall(vim.fn.rpcrequest, chan, 'poll')
  if not ok then
    return false, 'ai_host: the Python host stopped and did not come back (' .. H.first_line(err) .. '). See :checkhealth ai_host.'
  end
  vim.fn['remote#define#FunctionOnChannel'](chan, shim .. ':function:AiHostNotify', 0, 'AiHostNotify', vim.empty_dict())
  vim.fn['remote#define#FunctionOnChannel'](chan, shim .. ':function:AiHostRequest', 1, 'AiHostRequest', vim.empty_dict())
  H.channel = chan
  H.config_sent = false
  H.received = 0
  H.restarts = (H.restarts or 0) + 1
  return true
end

-- While jobs wait on the host, check now and then that it is still there; if it died, each job
-- ends with an error (nothing waits forever) and the user is told once.
function H.watch()
  if H.watchdog ~= nil then return end
  local timer = vim.uv.new_timer()
  H.watchdog = timer
  timer:start(H.watch_ms, H.watch_ms, vim.schedule_wrap(function()
    if H.watchdog ~= timer then return end -- a tick queued before the timer was stopped
    if next(H.jobs) == nil then
      timer:stop()
      timer:close()
      H.watchdog = nil
      return
    end
    if H.channel ~= nil and next(vim.api.nvim_get_chan_info(H.channel)) == nil then
      local message = 'ai_host: the Python host stopped unexpectedly; the next request starts it again'
        .. ' (details: ' .. require('ai_host').wire_config().log.file .. ').'
      for id in pairs(H.jobs) do
        M._dispatch(id, 'error', { message = message })
      end
      H.channel = nil
    end
  end))
end

--- Jobs the editor is still waiting on, and whether the watchdog runs (for tests and :AIStatus).
function M.open_jobs()
  return { count = vim.tbl_count(H.jobs), watchdog = H.watchdog ~= nil }
end

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
  if chan == nil or next(vim.api.nvim_get_chan_info(chan)) == nil then return nil end
  local ok, pid = pcall(vim.fn.jobpid, chan)
  return ok and pid > 0 and pid or nil
end

--- How many times the host was restarted (for tests and :AIStatus).
function M.restarts()
  return H.restarts or 0
end

function H.first_line(err)
  return (tostring(err):gsub('\n.*', ''))
end

return M
