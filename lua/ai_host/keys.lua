--- ai_host.keys: insert-mode keys of ghost text that fall through to what the key did before.
---
--- Before ai_host maps an insert-mode key (<Tab> to accept...), the global mapping it had is
--- remembered; when there is no suggestion to act on, the key does what that mapping did (the
--- user's, or a completion menu's), or what the key does by itself.

local M = {}
local H = {}

-- State ---------------------------------------------------------------------------------------
-- H.fallbacks: lhs -> the insert-mode mapping (maparg dict) that existed before ours
-- H.fallback_list: the same, by number (a key name inside <Cmd> would be replaced as a key);
--   each mapping's `index` is its place in this list
H.fallbacks = {}
H.fallback_list = {}

--- Remember the mapping `lhs` had before ours, so that our map can fall through to it.
---@param lhs string
function M.remember(lhs)
  local prior = H.global_insert_map(lhs)
  if prior ~= nil and not (prior.desc or ''):find('^AI: ') and not H.menu_maps[prior.desc or ''] then
    H.fallbacks[lhs] = prior
    table.insert(H.fallback_list, prior)
    prior.index = #H.fallback_list
  end
end

--- Put back the insert-mode mapping `lhs` had before ours (our map of it was taken away).
---@param lhs string
function M.restore(lhs)
  local prior = H.fallbacks[lhs]
  if prior == nil then return end
  H.fallbacks[lhs] = nil
  vim.fn.mapset('i', false, prior)
end

--- Keys for an insert-mode <expr> map that has nothing to do: what `lhs` did before ours.
---@param lhs string
---@return string
function M.fall_through(lhs)
  local prior = H.fallbacks[lhs]
  if prior == nil then return lhs end
  if prior.callback then
    if prior.expr == 1 then
      local keys = prior.callback() or ''
      if prior.replace_keycodes ~= 1 then -- raw key codes: feed them as they are
        vim.api.nvim_feedkeys(keys, prior.noremap == 1 and 'n' or 'm', false)
        return ''
      end
      return keys
    end
    -- not an <expr> map: it may change text, which our <expr> map must not do itself
    return '<Cmd>lua require("ai_host.keys")._run(' .. prior.index .. ')<CR>'
  end
  local rhs = (prior.rhs or ''):gsub('<[Ss][Ii][Dd]>', '<SNR>' .. (prior.sid or 0) .. '_')
  local keys = prior.expr == 1 and vim.api.nvim_eval(rhs) or vim.api.nvim_replace_termcodes(rhs, true, true, true)
  vim.api.nvim_feedkeys(keys, prior.noremap == 1 and 'n' or 'm', false)
  return ''
end

--- Run a fall-through callback where text may change (not inside our <expr> map).
function M._run(n)
  local prior = H.fallback_list[n]
  if prior and prior.callback then prior.callback() end
end

-- Helpers --------------------------------------------------------------------------------------

-- Only a global mapping can be ours to fall through to: a buffer-local one (blink.cmp maps <Tab> in
-- each buffer on InsertEnter) runs before ours and falls through to it, so remembering it would
-- make a loop. Neither is a completion menu's global wrapper of our own map (nvim-cmp replaces the
-- global map with one that falls through to ours, and wraps ours again on the next InsertEnter).
H.menu_maps = { ['cmp.utils.keymap.set_map'] = true }

function H.global_insert_map(lhs)
  local key = vim.api.nvim_replace_termcodes(lhs, true, true, true)
  for _, map in ipairs(vim.api.nvim_get_keymap('i')) do
    if vim.api.nvim_replace_termcodes(map.lhs, true, true, true) == key then return map end
  end
  return nil
end

return M
