-- ai_host: commands and <Plug> maps only; every module is required on first use.
if vim.g.loaded_ai_host then return end
vim.g.loaded_ai_host = true

-- The python3 host runs in the plugin's private environment (made by the build step) unless the
-- user chose a python: set it now, before a Python ftplugin's has('python3') makes Neovim probe
-- (and, finding no pynvim in the system Python, disable the provider). Loaded later (lazy.nvim),
-- after such a probe, the probe runs again with this python.
if (vim.g.python3_host_prog or '') == '' then
  local python = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h') .. '/.venv/bin/python'
  if vim.uv.fs_stat(python) then
    vim.g.python3_host_prog = python
    if vim.g.loaded_python3_provider == 0 then require('ai_host.install').reprobe_python3() end
  end
end

local function safe(fn)
  return function(...)
    local ok, err = pcall(fn, ...)
    if not ok then
      local msg = tostring(err)
      if not msg:find('^ai_host:') then msg = 'ai_host: ' .. msg .. ' (details: :messages; please report it)' end
      -- scheduled: an error raised inside the command would abort whatever ran it (a mapping, a macro)
      vim.schedule(function() vim.notify(msg, vim.log.levels.ERROR) end)
    end
  end
end

vim.api.nvim_create_user_command(
  'AIExplain',
  safe(function(o) require('ai_host').explain({ line1 = o.line1, line2 = o.line2, range = o.range }) end),
  { range = true, desc = 'ai_host: explain the range (or the function around the cursor) in a float' }
)

vim.keymap.set(
  'n',
  '<Plug>(ai-host-explain)',
  safe(function() require('ai_host').explain({}) end),
  { desc = 'AI: explain code' }
)
vim.keymap.set('x', '<Plug>(ai-host-explain)', ':AIExplain<CR>', { silent = true, desc = 'AI: explain selection' })
vim.keymap.set(
  'n',
  '<Plug>(ai-host-toggle)',
  safe(function() require('ai_host.ghost').toggle() end),
  { desc = 'AI: toggle ghost text' }
)

vim.api.nvim_create_user_command(
  'AIStatus',
  safe(function() require('ai_host.status').show() end),
  { desc = 'ai_host: queue, jobs, LSP and GPU gates, figures' }
)
vim.api.nvim_create_user_command(
  'AICancel',
  safe(function() require('ai_host').cancel_all() end),
  { desc = 'ai_host: cancel every request in flight' }
)
vim.keymap.set(
  'n',
  '<Plug>(ai-host-status)',
  safe(function() require('ai_host.status').show() end),
  { desc = 'AI: status' }
)
vim.keymap.set(
  'n',
  '<Plug>(ai-host-cancel-all)',
  safe(function() require('ai_host').cancel_all() end),
  { desc = 'AI: cancel all' }
)

vim.api.nvim_create_user_command(
  'AIRefactor',
  safe(
    function(o) require('ai_host').refactor({ line1 = o.line1, line2 = o.line2, range = o.range, instruction = o.args }) end
  ),
  { range = true, nargs = '*', desc = 'ai_host: propose a rewrite of the range (or the function around the cursor)' }
)
vim.keymap.set(
  'n',
  '<Plug>(ai-host-refactor)',
  safe(function() require('ai_host').refactor({}) end),
  { desc = 'AI: refactor code' }
)
vim.keymap.set('x', '<Plug>(ai-host-refactor)', ':AIRefactor<CR>', { silent = true, desc = 'AI: refactor selection' })
vim.keymap.set(
  'n',
  '<Plug>(ai-host-generate)',
  safe(function() require('ai_host').generate({}) end),
  { desc = 'AI: generate code here from a prompt' }
)

vim.api.nvim_create_user_command(
  'AIFix',
  safe(function(o) require('ai_host').fix({ line1 = o.line1, line2 = o.line2, range = o.range }) end),
  { range = true, desc = "ai_host: propose a fix for the diagnostics of the range (or the cursor's line)" }
)
vim.keymap.set(
  'n',
  '<Plug>(ai-host-fix)',
  safe(function() require('ai_host').fix({}) end),
  { desc = 'AI: fix diagnostics' }
)
vim.keymap.set('x', '<Plug>(ai-host-fix)', ':AIFix<CR>', { silent = true, desc = 'AI: fix diagnostics of selection' })
vim.api.nvim_create_user_command(
  'AIDoc',
  safe(function(o) require('ai_host').doc({ line1 = o.line1, line2 = o.line2, range = o.range }) end),
  { range = true, desc = 'ai_host: propose the doc comment of the function under the cursor (or the range)' }
)
vim.keymap.set(
  'n',
  '<Plug>(ai-host-doc)',
  safe(function() require('ai_host').doc({}) end),
  { desc = 'AI: write doc comment' }
)
vim.api.nvim_create_user_command(
  'AIChat',
  safe(function(o) require('ai_host').chat({ line1 = o.line1, line2 = o.line2, range = o.range, message = o.args }) end),
  { range = true, nargs = '*', desc = 'ai_host: talk about the range (or the function around the cursor) in a split' }
)
vim.keymap.set(
  'n',
  '<Plug>(ai-host-chat)',
  safe(function() require('ai_host').chat({}) end),
  { desc = 'AI: chat about code' }
)
vim.keymap.set('x', '<Plug>(ai-host-chat)', ':AIChat<CR>', { silent = true, desc = 'AI: chat about selection' })

vim.api.nvim_create_user_command(
  'AIInstall',
  safe(function() require('ai_host.install').build({ async = true }) end),
  { desc = 'ai_host: (re)install the private Python environment and register the remote plugin' }
)

vim.api.nvim_create_user_command(
  'AIModels',
  safe(function(o) require('ai_host.picker').pick(o.args ~= '' and o.args or nil) end),
  {
    nargs = '?',
    complete = function() return require('ai_host.picker').tasks() end,
    desc = 'ai_host: choose the model of a task',
  }
)
vim.keymap.set(
  'n',
  '<Plug>(ai-host-models)',
  safe(function() require('ai_host.picker').pick() end),
  { desc = 'AI: choose models' }
)

vim.api.nvim_create_user_command(
  'AIReview',
  safe(function(o)
    if o.bang then return require('ai_host.review').clear() end
    require('ai_host.review').run(o.args ~= '' and o.args or nil)
  end),
  {
    nargs = '?',
    bang = true,
    complete = function(arglead) return require('ai_host.review').complete(arglead) end,
    desc = "ai_host: review the working tree's changes against HEAD or [ref] (! clears the results)",
  }
)
vim.keymap.set(
  'n',
  '<Plug>(ai-host-review)',
  safe(function() require('ai_host.review').run() end),
  { desc = 'AI: review changes' }
)

-- One command with subcommands, for everything (the :AIExplain-style names stay: users ask for them).
local subcommands = {
  explain = function(o) require('ai_host').explain({ line1 = o.line1, line2 = o.line2, range = o.range }) end,
  refactor = function(o, rest)
    require('ai_host').refactor({ line1 = o.line1, line2 = o.line2, range = o.range, instruction = rest })
  end,
  generate = function(_, rest) require('ai_host').generate({ instruction = rest ~= '' and rest or nil }) end,
  fix = function(o) require('ai_host').fix({ line1 = o.line1, line2 = o.line2, range = o.range }) end,
  doc = function(o) require('ai_host').doc({ line1 = o.line1, line2 = o.line2, range = o.range }) end,
  chat = function(o, rest)
    require('ai_host').chat({ line1 = o.line1, line2 = o.line2, range = o.range, message = rest })
  end,
  status = function() require('ai_host.status').show() end,
  cancel = function() require('ai_host').cancel_all() end,
  models = function(_, rest) require('ai_host.picker').pick(rest ~= '' and rest or nil) end,
  toggle = function() require('ai_host.ghost').toggle() end,
  install = function() require('ai_host.install').build({ async = true }) end,
  log = function() vim.cmd('split ' .. vim.fn.fnameescape(require('ai_host').wire_config().log.file)) end,
  health = function() vim.cmd('checkhealth ai_host') end,
  review = function(_, rest) require('ai_host.review').run(rest ~= '' and rest or nil) end,
}
vim.api.nvim_create_user_command(
  'AI',
  safe(function(o)
    local name, rest = (o.args or ''):match('^(%S*)%s*(.-)$')
    local fn = subcommands[name]
    if fn == nil then
      local names = vim.tbl_keys(subcommands)
      table.sort(names)
      error('ai_host: unknown subcommand "' .. name .. '"; use one of: ' .. table.concat(names, ', '), 0)
    end
    fn(o, rest)
  end),
  {
    nargs = '+',
    range = true,
    desc = 'ai_host: :AI explain|refactor|generate|fix|doc|chat|review|status|cancel|models|toggle|install|log|health',
    complete = function(arglead, cmdline)
      if cmdline:match('^%S*AI%s+models%s+%S*$') then
        return vim.tbl_filter(function(n) return n:find(arglead, 1, true) == 1 end, require('ai_host.picker').tasks())
      end
      if cmdline:match('^%S*AI%s+review%s+%S*$') then return require('ai_host.review').complete(arglead) end
      if cmdline:match('^%S*AI%s+%S+%s') then return {} end
      local names = vim.tbl_keys(subcommands)
      table.sort(names)
      return vim.tbl_filter(function(n) return n:find(arglead, 1, true) == 1 end, names)
    end,
  }
)
