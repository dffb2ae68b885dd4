--- ai_host.install: the build step. A Python environment private to the plugin (`.venv` in the
--- plugin's folder, made with --system-site-packages so nothing of the user's Python is hidden),
--- with pynvim and ai_host's dependencies; then the remote plugin is registered.
---
--- lazy.nvim: `build = function() require('ai_host.install').build() end`; by hand: :AIInstall
--- (asynchronous). Without a manifest ai_host registers itself (ai_host.host.ensure_registered).

local M = {}
local H = {}

H.pip_timeout_ms = 15 * 60 * 1000

--- The private environment's python (it may not exist yet).
function M.venv_python() return require('ai_host.config').root .. '/.venv/bin/python' end

--- Make or update the private environment and register the remote plugin. Returns true, or false
--- and what went wrong (also notified). Blocking unless `opts.async` (what :AIInstall uses: the
--- editor stays usable, each step and the result are shown); a plugin manager's build step blocks.
---@param opts { python: string?, async: boolean? }|nil
function M.build(opts)
  opts = opts or {}
  local steps, err = H.plan(opts)
  if steps == nil then return H.fail(err) end
  if opts.async then
    H.next_step(steps, 1)
    return true
  end
  for i, step in ipairs(steps) do
    H.say(H.step_line(step, i, #steps))
    local res = H.run(step.cmd, step.timeout)
    if not res.ok then return H.fail(step.what .. ' failed: ' .. res.err) end
  end
  return H.finish()
end

--- Use the private environment for the python3 host, unless the user chose a python themselves.
--- Called early (plugin/ai_host.lua, setup(), the build); it must run before the python3 host
--- starts. If Neovim already probed for a python3 (a Python ftplugin asks before a lazy-loaded
--- plugin's setup() runs) and found none with pynvim, the probe is run again with this one.
function M.use_private_python()
  if vim.g.python3_host_prog ~= nil and vim.g.python3_host_prog ~= '' then return false end
  if vim.fn.executable(M.venv_python()) == 0 then return false end
  vim.g.python3_host_prog = M.venv_python()
  M.reprobe_python3()
  return true
end

--- Undo a failed python3 provider probe (Neovim set g:loaded_python3_provider = 0 itself, before
--- python3_host_prog pointed at a Python with pynvim). The provider finds its Python anew each time
--- it starts a host, from python3_host_prog, so only the flag is wrong: set it as a successful probe
--- does. A 0 set by the user (the provider's script never ran) is left alone. Returns whether it did.
function M.reprobe_python3()
  if vim.g.loaded_python3_provider ~= 0 or vim.fn.exists('*provider#python3#Call') == 0 then return false end
  if (vim.g.python3_host_prog or '') == '' then return false end
  vim.g.loaded_python3_provider = 2
  return true
end

-- The steps of a build, after checking the Python to build with; nil and why if it cannot be used.
function H.plan(opts)
  local root = require('ai_host.config').root
  local python = opts.python or vim.g.ai_host_python or H.host_python()
  if python == nil then return nil, 'no python3 found; install Python 3.11+ or set vim.g.ai_host_python' end
  local version = H.run({ python, '-c', 'import sys; print("%d.%d" % sys.version_info[:2])' })
  if not version.ok then return nil, 'cannot run ' .. python .. ': ' .. version.err end
  local major, minor = version.out:match('(%d+)%.(%d+)')
  if tonumber(major) < 3 or (tonumber(major) == 3 and tonumber(minor) < 11) then
    return nil,
      python .. ' is Python ' .. vim.trim(version.out) .. '; ai_host needs 3.11 or newer (set vim.g.ai_host_python)'
  end
  local steps = {}
  if vim.fn.executable(M.venv_python()) == 0 then
    table.insert(steps, {
      what = 'python -m venv',
      short = "making the plugin's Python environment",
      cmd = { python, '-m', 'venv', '--system-site-packages', root .. '/.venv' },
    })
  end
  table.insert(steps, {
    what = 'pip install',
    short = "installing pynvim and ai_host's dependencies",
    cmd = { M.venv_python(), '-m', 'pip', 'install', '--quiet', '--upgrade', 'pynvim', root },
    timeout = H.pip_timeout_ms,
  })
  return steps
end

-- One short line a step, the same whether the build blocks or not (a longer one would stop the
-- editor at a hit-enter prompt).
function H.step_line(step, i, n) return string.format('install %d/%d: %s…', i, n, step.short) end

function H.next_step(steps, i)
  if i > #steps then return H.finish() end
  local step = steps[i]
  H.say(H.step_line(step, i, #steps))
  local ok, err = pcall(vim.system, step.cmd, { text = true, timeout = step.timeout or 30000 }, function(res)
    vim.schedule(function()
      if res.code ~= 0 then return H.fail(step.what .. ' failed: ' .. H.output(res)) end
      H.next_step(steps, i + 1)
    end)
  end)
  if not ok then H.fail(step.what .. ' failed: ' .. tostring(err)) end
end

-- The environment is ready: use it, and write the rplugin manifest (ai_host also registers itself
-- without one, so a manifest that cannot be written only costs a message).
function H.finish()
  local running = vim.fn['remote#host#IsRunning']('python3') == 1
  M.use_private_python()
  local ok, err = pcall(vim.cmd, 'silent call remote#host#UpdateRemotePlugins()')
  if not ok then
    H.say(
      'the rplugin manifest was not written ('
        .. tostring(err):gsub('\n.*', '')
        .. '); ai_host registers itself instead.'
    )
  end
  if running then
    H.say('installed; restart Neovim to use it (:checkhealth ai_host)')
  else
    H.say('installed and ready (:checkhealth ai_host shows it)')
  end
  return true
end

function H.host_python()
  local ok, prog = pcall(vim.fn['provider#python3#Prog'])
  if ok and prog ~= '' then return prog end
  local found = vim.fn.exepath('python3')
  return found ~= '' and found or nil
end

function H.run(cmd, timeout)
  local ok, res = pcall(function() return vim.system(cmd, { text = true }):wait(timeout or 30000) end)
  if not ok then return { ok = false, err = tostring(res) } end
  return { ok = res.code == 0, out = res.stdout or '', err = H.output(res) }
end

function H.output(res)
  local text = vim.trim((res.stderr or '') ~= '' and res.stderr or (res.stdout or ''))
  if res.code == 124 or res.signal == 15 then text = 'it took too long and was stopped. ' .. text end
  return text:sub(-600)
end

function H.say(msg) vim.notify('ai_host: ' .. msg, vim.log.levels.INFO) end

function H.fail(msg)
  vim.notify('ai_host: install: ' .. msg, vim.log.levels.ERROR)
  return false, msg
end

return M
