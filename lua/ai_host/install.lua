--- ai_host.install: the build step. A Python environment private to the plugin (`.venv` in the
--- plugin's folder, made with --system-site-packages so nothing of the user's Python is hidden),
--- with pynvim and ai_host's dependencies; then the remote plugin is registered.
---
--- lazy.nvim: `build = function() require('ai_host.install').build() end`, or run :AIInstall.

local M = {}
local H = {}

H.pip_timeout_ms = 15 * 60 * 1000

--- The private environment's python (it may not exist yet).
function M.venv_python()
  return require('ai_host.config').root .. '/.venv/bin/python'
end

--- Make or update the private environment and register the remote plugin. Returns true, or false
--- and what went wrong (also notified). Blocking: it is meant for a plugin manager's build step.
---@param opts { python: string? }|nil
function M.build(opts)
  opts = opts or {}
  local root = require('ai_host.config').root
  local python = opts.python or vim.g.ai_host_python or H.host_python()
  if python == nil then return H.fail('no python3 found; install Python 3.11+ or set vim.g.ai_host_python') end
  local version = H.run({ python, '-c', 'import sys; print("%d.%d" % sys.version_info[:2])' })
  if not version.ok then return H.fail('cannot run ' .. python .. ': ' .. version.err) end
  local major, minor = version.out:match('(%d+)%.(%d+)')
  if tonumber(major) < 3 or (tonumber(major) == 3 and tonumber(minor) < 11) then
    return H.fail(python .. ' is Python ' .. vim.trim(version.out) .. '; ai_host needs 3.11 or newer (set vim.g.ai_host_python)')
  end
  local venv_python = M.venv_python()
  if vim.fn.executable(venv_python) == 0 then
    H.say('creating ' .. root .. '/.venv with ' .. python)
    local made = H.run({ python, '-m', 'venv', '--system-site-packages', root .. '/.venv' })
    if not made.ok then return H.fail('python -m venv failed: ' .. made.err) end
  end
  H.say('installing pynvim and ai_host\'s dependencies (a minute or two)')
  local pip = H.run({ venv_python, '-m', 'pip', 'install', '--quiet', '--upgrade', 'pynvim', root }, H.pip_timeout_ms)
  if not pip.ok then return H.fail('pip install failed: ' .. pip.err) end
  M.use_private_python()
  local ok, err = pcall(vim.cmd, 'silent UpdateRemotePlugins')
  if not ok then return H.fail(':UpdateRemotePlugins failed: ' .. tostring(err)) end
  H.say('installed. Restart Neovim to use it (the remote plugin is registered).')
  return true
end

--- Use the private environment for the python3 host, unless the user chose a python themselves.
--- Called by setup(); it must run before the python3 host starts.
function M.use_private_python()
  if vim.g.python3_host_prog ~= nil and vim.g.python3_host_prog ~= '' then return false end
  if vim.fn.executable(M.venv_python()) == 0 then return false end
  vim.g.python3_host_prog = M.venv_python()
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
  local err = vim.trim((res.stderr or '') ~= '' and res.stderr or (res.stdout or ''))
  return { ok = res.code == 0, out = res.stdout or '', err = err:sub(-600) }
end

function H.say(msg)
  vim.notify('ai_host: ' .. msg, vim.log.levels.INFO)
end

function H.fail(msg)
  vim.notify('ai_host: install: ' .. msg, vim.log.levels.ERROR)
  return false, msg
end

return M
