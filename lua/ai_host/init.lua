--- ai_host: the help of a local code model in Neovim, without ever making the editor wait.
---
--- Lua is the hands (reading editor state, rendering, keymaps); the Python remote plugin is the
--- brain (scheduling, HTTP streaming, prompts). See :help ai_host.

local M = {}
local H = {}

-- State ---------------------------------------------------------------------------------------
-- H.config: the validated config (nil until setup() or first use, then defaults).
H.config = nil

--- Merge and validate `opts` over the defaults, set default keymaps and highlights.
--- Errors are raised as `ai_host: \`path\` should be ...` (no traceback).
---@param opts table|nil
function M.setup(opts)
  H.config = require('ai_host.config').build(opts)
  require('ai_host.install').use_private_python()
  require('ai_host.host').config_changed()
  H.apply_keymaps(H.config.keymaps)
  require('ai_host.whichkey').setup()
  H.apply_highlights()
  require('ai_host.ghost').attach()
  H.watch_buffers()
  H.warm_up()
end

--- The current config (defaults when setup() was never called).
---@return ai_host.Config
function M.get_config()
  if H.config == nil then
    H.config = require('ai_host.config').build({})
    H.apply_highlights()
  end
  return H.config
end

--- The config as sent to the Python host: defaults filled in where Lua knows better.
function M.wire_config()
  local config = vim.deepcopy(M.get_config())
  if config.log.file == '' then config.log.file = vim.fn.stdpath('log') .. '/ai_host.log' end
  return config
end

--- Explain code in a float. With `opts.range > 0`, lines opts.line1..opts.line2; otherwise the
--- function (tree-sitter) or paragraph around the cursor.
---@param opts { line1: integer?, line2: integer?, range: integer? }|nil
function M.explain(opts)
  local line1, line2 = H.lines(opts)
  return require('ai_host.explain').open(line1, line2)
end

--- Propose a rewrite of lines opts.line1..opts.line2 (opts.range > 0), else of the function or
--- paragraph around the cursor, as a diff preview to accept or reject.
---@param opts { line1: integer?, line2: integer?, range: integer?, instruction: string? }|nil
function M.refactor(opts)
  opts = opts or {}
  local line1, line2 = H.lines(opts)
  return require('ai_host.refactor').start({ line1 = line1, line2 = line2, instruction = opts.instruction })
end

--- Ask for an instruction and propose new code after the cursor's line, through the same preview.
---@param opts { instruction: string? }|nil
function M.generate(opts)
  opts = opts or {}
  local row = vim.api.nvim_win_get_cursor(0)[1]
  return require('ai_host.refactor').start({ line1 = row, line2 = row, insert = true, instruction = opts.instruction })
end

--- Propose a fix for the diagnostics on lines opts.line1..opts.line2 (opts.range > 0), else on the
--- cursor's line, through the refactor preview (with the language server's code actions' titles).
---@param opts { line1: integer?, line2: integer?, range: integer? }|nil
function M.fix(opts)
  opts = opts or {}
  local line1, line2 = opts.line1, opts.line2
  if (opts.range or 0) == 0 or line1 == nil then
    line1 = vim.api.nvim_win_get_cursor(0)[1]
    line2 = line1
  end
  return require('ai_host.fix').fix(line1, line2)
end

--- Propose the doc comment of the function under the cursor (or of lines opts.line1..opts.line2)
--- through the refactor preview.
---@param opts { line1: integer?, line2: integer?, range: integer? }|nil
function M.doc(opts)
  local line1, line2 = H.lines(opts)
  return require('ai_host.fix').doc(line1, line2)
end

--- A conversation about the code in a split (see :help ai_host-chat); `opts.message` is sent as
--- its next turn.
---@param opts { line1: integer?, line2: integer?, range: integer?, message: string? }|nil
function M.chat(opts) return require('ai_host.chat').open(opts) end

--- Use `model` for `task` (one of require('ai_host.config').tasks()) from now on (the model picker uses it).
---@param task string
---@param model string
function M.set_model(task, model)
  local config = M.get_config()
  if config.models[task] == nil then
    local tasks = table.concat(require('ai_host.config').tasks(), ', ')
    error(string.format("ai_host: no task '%s'; tasks are %s", tostring(task), tasks), 0)
  end
  if type(model) ~= 'string' or model == '' then error('ai_host: set_model() needs a model name', 0) end
  config.models[task] = model
  require('ai_host.host').notify_if_running('set_model', { task = task, model = model })
end

--- Cancel everything in flight (the server stops generating).
function M.cancel_all()
  require('ai_host.explain').close()
  require('ai_host.ghost').clear()
  require('ai_host.refactor').cancel()
  if package.loaded['ai_host.chat'] then require('ai_host.chat').cancel() end
  if package.loaded['ai_host.review'] then require('ai_host.review').cancel() end
  require('ai_host.host').cancel_all()
end

-- Helpers --------------------------------------------------------------------------------------

-- The lines a command works on: its range (`opts.range > 0`), else the function (tree-sitter) or
-- paragraph around the cursor.
function H.lines(opts)
  opts = opts or {}
  if (opts.range or 0) > 0 and opts.line1 ~= nil then return opts.line1, opts.line2 end
  return require('ai_host.context').around_cursor(vim.api.nvim_get_current_buf())
end

-- Default maps: { config key, modes, <Plug> name, description }.
H.maps = {
  { 'explain', { 'n', 'x' }, '<Plug>(ai-host-explain)', 'AI: explain code' },
  { 'refactor', { 'n', 'x' }, '<Plug>(ai-host-refactor)', 'AI: refactor code' },
  { 'generate', { 'n' }, '<Plug>(ai-host-generate)', 'AI: generate code from a prompt' },
  { 'fix', { 'n', 'x' }, '<Plug>(ai-host-fix)', 'AI: fix diagnostics' },
  { 'doc', { 'n' }, '<Plug>(ai-host-doc)', 'AI: write doc comment' },
  { 'chat', { 'n', 'x' }, '<Plug>(ai-host-chat)', 'AI: chat about code' },
  { 'toggle', { 'n' }, '<Plug>(ai-host-toggle)', 'AI: toggle ghost text' },
  { 'status', { 'n' }, '<Plug>(ai-host-status)', 'AI: status' },
  { 'models', { 'n' }, '<Plug>(ai-host-models)', 'AI: choose models' },
  { 'cancel_all', { 'n' }, '<Plug>(ai-host-cancel-all)', 'AI: cancel all' },
  { 'review', { 'n' }, '<Plug>(ai-host-review)', 'AI: review changes' },
}

-- Insert-mode keys of the ghost text: { config key, action, description }. Each falls through to
-- what the key did before (a plain <Tab>, or the user's / a completion menu's mapping of it).
H.insert_maps = {
  { 'accept', function(lhs) return require('ai_host.ghost').accept('all', lhs) end, 'AI: accept suggestion' },
  { 'accept_word', function(lhs) return require('ai_host.ghost').accept('word', lhs) end, 'AI: accept next word' },
  { 'accept_line', function(lhs) return require('ai_host.ghost').accept('line', lhs) end, 'AI: accept next line' },
  { 'dismiss', function(lhs) return require('ai_host.ghost').dismiss(lhs) end, 'AI: dismiss suggestion' },
  { 'next', function(lhs) return require('ai_host.ghost').cycle(1, lhs) end, 'AI: next suggestion' },
  { 'prev', function(lhs) return require('ai_host.ghost').cycle(-1, lhs) end, 'AI: previous suggestion' },
}

-- The maps the last setup() made: { { mode, lhs } }. A later setup() that no longer makes one
-- (its key changed, or was set to '') takes it away again.
H.applied = {}

function H.apply_keymaps(keymaps)
  local wanted = {}
  for _, m in ipairs(H.insert_maps) do
    local lhs = keymaps[m[1]]
    if lhs ~= nil and lhs ~= '' then wanted['i' .. lhs] = true end
  end
  for _, m in ipairs(H.maps) do
    local lhs = keymaps[m[1]]
    if lhs ~= nil and lhs ~= '' then
      for _, mode in ipairs(m[2]) do
        wanted[mode .. lhs] = true
      end
    end
  end
  for _, a in ipairs(H.applied) do
    if not wanted[a[1] .. a[2]] and H.is_ours(a[1], a[2]) then
      vim.keymap.del(a[1], a[2])
      if a[1] == 'i' then require('ai_host.keys').restore(a[2]) end
    end
  end
  H.applied = {}
  for _, m in ipairs(H.insert_maps) do
    local lhs = keymaps[m[1]]
    if lhs ~= nil and lhs ~= '' then
      require('ai_host.keys').remember(lhs)
      vim.keymap.set('i', lhs, function() return m[2](lhs) end, { expr = true, replace_keycodes = true, desc = m[3] })
      table.insert(H.applied, { 'i', lhs })
    end
  end
  for _, m in ipairs(H.maps) do
    local lhs = keymaps[m[1]]
    if lhs ~= nil and lhs ~= '' then
      for _, mode in ipairs(m[2]) do
        -- never overwrite a mapping the user made (ours from an earlier setup() may be replaced)
        if vim.tbl_isempty(vim.fn.maparg(lhs, mode, false, true)) or H.is_ours(mode, lhs) then
          vim.keymap.set(mode, lhs, m[3], { desc = m[4], remap = true })
          table.insert(H.applied, { mode, lhs })
        end
      end
    end
  end
end

function H.is_ours(mode, lhs)
  local existing = vim.fn.maparg(lhs, mode, false, true)
  return not vim.tbl_isempty(existing) and (existing.desc or ''):find('^AI: ') ~= nil
end

-- Tell the scheduler when a buffer's language server gets busy or catches up, and when a buffer is
-- wiped (only once the host runs: this never starts it).
function H.watch_buffers()
  local group = vim.api.nvim_create_augroup('ai_host_lsp', { clear = true })
  vim.api.nvim_create_autocmd('LspRequest', {
    group = group,
    callback = function(ev) require('ai_host.host').report_lsp(ev.buf) end,
  })
  vim.api.nvim_create_autocmd('BufWipeout', {
    group = group,
    callback = function(ev) require('ai_host.host').forget_buf(ev.buf) end,
  })
end

-- Start the Python host soon after startup rather than at the first pause in typing: starting it
-- is synchronous (Neovim's provider waits for it), so do it while the user is not typing yet.
function H.warm_up()
  if H.warmed then return end
  H.warmed = true
  vim.defer_fn(function() require('ai_host.host').warm_up() end, H.warm_up_ms)
end
H.warm_up_ms = 300

function H.apply_highlights()
  local set = function()
    vim.api.nvim_set_hl(0, 'AiHostTitle', { link = 'FloatTitle', default = true })
    vim.api.nvim_set_hl(0, 'AiHostFooter', { link = 'FloatFooter', default = true })
    require('ai_host.ghost').set_highlights() -- AiHostGhost, AiHostGhostCount, AiHostKind
    vim.api.nvim_set_hl(0, 'AiHostAdded', { link = 'DiffAdd', default = true })
    vim.api.nvim_set_hl(0, 'AiHostRemoved', { link = 'DiffDelete', default = true })
    vim.api.nvim_set_hl(0, 'AiHostHint', { link = 'Comment', default = true })
  end
  set()
  if H.hl_autocmd == nil then
    H.hl_autocmd = vim.api.nvim_create_autocmd('ColorScheme', {
      group = vim.api.nvim_create_augroup('ai_host_highlights', { clear = true }),
      callback = set,
    })
  end
end

return M
