--- :checkhealth ai_host. Every warning says what to do. Network checks are bounded (3 s in all).

local M = {}
local H = {}

H.modules = {
  { 'pynvim', 'pynvim' },
  { 'aiohttp', 'aiohttp' },
  { 'msgpack', 'msgpack' },
  { 'lru', 'lru-dict' },
  { 'pynvml', 'nvidia-ml-py' },
  { 'ai_host', "ai_host (this plugin's Python package)" },
}
H.python_timeout_ms = 5000

function M.check()
  local health = vim.health
  health.start('ai_host: Neovim and Python')
  local v = vim.version()
  local version = string.format('%d.%d.%d', v.major, v.minor, v.patch)
  if vim.fn.has('nvim-0.11') == 1 then
    health.ok('Neovim ' .. version)
  else
    health.error('Neovim ' .. version .. ' is too old', { 'ai_host needs Neovim 0.11 or newer.' })
  end
  -- A 0 that Neovim set after a failed probe (before the plugin's python was known) is undone when
  -- there is a python now; only a 0 the user set (the provider's script never ran) stops here.
  require('ai_host.install').use_private_python()
  require('ai_host.install').reprobe_python3()
  if vim.g.loaded_python3_provider == 0 and vim.fn.exists('*provider#python3#Call') == 0 then
    return health.error(
      'the python3 provider is disabled (g:loaded_python3_provider = 0 in your config)',
      { 'Remove that setting: ai_host runs in the python3 host.' }
    )
  end
  local ok_prog, prog = pcall(vim.fn['provider#python3#Prog'])
  prog = (ok_prog and prog ~= '') and prog or vim.g.python3_host_prog
  if prog == nil or prog == '' then
    return health.error('no python3 for the python3 host', {
      "Run :AIInstall (it makes the plugin's own Python environment), or install Python 3.11+ with pynvim and "
        .. 'set vim.g.python3_host_prog; :checkhealth vim.provider shows what Neovim found.',
    })
  end
  health.info('python3 host: ' .. prog)
  H.check_imports(health, prog)

  health.start('ai_host: remote plugin')
  local host = require('ai_host.host')
  local registered, why = host.ensure_registered()
  if not registered then return health.error('the remote plugin is not registered', { why }) end
  if host.self_registered() then
    local clean = vim.tbl_contains(vim.v.argv, '--clean')
    health.ok(
      'registered by ai_host itself (AiHostNotify, AiHostRequest): '
        .. (
          clean and 'Neovim skips every rplugin manifest under --clean'
          or 'no rplugin manifest has it yet; :AIInstall writes one'
        )
    )
  else
    health.ok('registered (AiHostNotify, AiHostRequest)')
  end

  health.start('ai_host: model servers, models, GPU')
  host.warm_up()
  local ok, checks = pcall(vim.fn.AiHostRequest, 'health')
  if not ok or type(checks) ~= 'table' then
    return health.error(
      'the Python host did not answer: ' .. tostring(checks),
      { 'See :checkhealth vim.provider, and the log: ' .. require('ai_host').wire_config().log.file }
    )
  end
  if checks.error then return health.error(checks.error) end
  local got_version, version = pcall(vim.fn.AiHostRequest, 'protocol')
  if got_version and version == host.PROTOCOL then
    health.ok("the Python host reads this plugin's messages (protocol " .. host.PROTOCOL .. ')')
  else
    health.error(
      'the Python host speaks protocol '
        .. tostring(got_version and version or '?')
        .. ', this plugin '
        .. host.PROTOCOL,
      { 'Update the plugin so its Lua and Python parts come from the same version, then restart Neovim.' }
    )
  end
  for _, c in ipairs(checks) do
    local advice = (c.advice or '') ~= '' and { c.advice } or nil
    if c.level == 'ok' then
      health.ok(c.msg)
    elseif c.level == 'warn' then
      health.warn(c.msg, advice)
    elseif c.level == 'error' then
      health.error(c.msg, advice)
    else
      health.info(c.msg)
    end
  end
end

function H.check_imports(health, prog)
  local code = table.concat({
    'import importlib, json',
    'out = {}',
    'for name in ' .. vim.json.encode(vim.tbl_map(function(m) return m[1] end, H.modules)) .. ':',
    '    try:',
    '        mod = importlib.import_module(name)',
    '        out[name] = str(getattr(mod, "__version__", "") or getattr(mod, "VERSION", "") or "ok")',
    '    except Exception as e:',
    '        out[name] = "MISSING: " + str(e)',
    'print(json.dumps(out))',
  }, '\n')
  local ok, res = pcall(
    function() return vim.system({ prog, '-c', code }, { text = true }):wait(H.python_timeout_ms) end
  )
  if not ok or res.code ~= 0 then
    return health.error('could not run ' .. prog, { 'Check :checkhealth vim.provider, or run :AIInstall.' })
  end
  local decoded_ok, found = pcall(vim.json.decode, res.stdout)
  if not decoded_ok then return health.error('unexpected output from ' .. prog .. ': ' .. res.stdout) end
  for _, m in ipairs(H.modules) do
    local status = found[m[1]] or 'MISSING'
    if status:find('^MISSING') then
      health.error(m[2] .. ' is not importable in the python3 host: ' .. status, {
        'Install it into that Python: '
          .. prog
          .. ' -m pip install '
          .. (m[1] == 'ai_host' and '<path to this plugin>' or m[2]),
        "Or run :AIInstall (the plugin's build step; see :help ai_host-setup).",
      })
    else
      health.ok(m[2] .. ' ' .. status)
    end
  end
end

return M
