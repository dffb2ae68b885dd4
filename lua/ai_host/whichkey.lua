--- ai_host.whichkey: names the prefix of ai_host's normal-mode maps (`<leader>a`) as a group in
--- which-key, so that it shows `a ➜ +ai` rather than `a ➜ +7 keymaps`. Each map already carries
--- its description (`AI: explain code`, ...), which which-key shows as it is.
---
--- which-key is never loaded from here: the group is added when it is already loaded, else when
--- it loads later (lazy.nvim's `User LazyLoad`, or by the end of startup for other managers).

local M = {}
local H = {}

--- The group's name in which-key (shown with which-key's group symbol, `+ai`) and its icon.
M.group = 'ai'
M.icon = { icon = '󰚩', color = 'azure' }

-- The normal-mode maps whose common prefix is the group (config.keymaps keys).
H.map_keys =
  { 'explain', 'refactor', 'generate', 'fix', 'doc', 'chat', 'toggle', 'status', 'models', 'cancel_all', 'review' }

--- Add the group now if which-key is loaded, else as soon as it is (called by setup()).
function M.setup()
  if H.add() then return end
  local group = vim.api.nvim_create_augroup('ai_host_whichkey', { clear = true })
  vim.api.nvim_create_autocmd('User', {
    group = group,
    pattern = 'LazyLoad',
    callback = function(ev)
      if ev.data == 'which-key.nvim' then return H.add() end -- true: done, the autocmd goes
    end,
  })
  if vim.v.vim_did_enter == 0 then
    vim.api.nvim_create_autocmd('VimEnter', { group = group, once = true, callback = function() H.add() end })
  end
end

--- The prefix the group is for: the longest common prefix of the maps, in whole keys ('' if none).
function M.prefix()
  local keymaps = require('ai_host').get_config().keymaps
  local lhs = {}
  for _, key in ipairs(H.map_keys) do
    if (keymaps[key] or '') ~= '' then table.insert(lhs, keymaps[key]) end
  end
  if #lhs < 2 then return '' end
  local prefix = lhs[1]
  for i = 2, #lhs do
    while lhs[i]:sub(1, #prefix) ~= prefix do
      prefix = prefix:sub(1, -2)
    end
  end
  -- never cut a key name such as <C-a> in two
  local open = prefix:match('.*()<')
  if open and not prefix:find('>', open, true) then prefix = prefix:sub(1, open - 1) end
  if lhs[1] == prefix then return '' end
  return prefix
end

-- Helpers --------------------------------------------------------------------------------------

function H.add()
  local wk = package.loaded['which-key']
  if type(wk) ~= 'table' or type(wk.add) ~= 'function' then return false end
  local prefix = M.prefix()
  if prefix == '' then return true end
  wk.add({ { prefix, group = M.group, icon = M.icon, mode = { 'n', 'x' } } })
  return true
end

return M
