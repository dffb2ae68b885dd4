-- Start Neovim with ai_host loaded from this checkout: its python host (.venv), its rplugin
-- manifest, default config. Honours $OLLAMA_HOST.  Usage: .venv/bin/nvim -u scripts/minimal_init.lua
-- Also what a bug report should use.
local root = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h')
vim.opt.runtimepath:prepend(root)
vim.g.python3_host_prog = root .. '/.venv/bin/python'
if (vim.env.NVIM_RPLUGIN_MANIFEST or '') == '' then
  vim.env.NVIM_RPLUGIN_MANIFEST = root .. '/.venv/rplugin.vim'
end
vim.g.loaded_node_provider = 0
vim.g.loaded_perl_provider = 0
vim.g.loaded_ruby_provider = 0
vim.g.mapleader = vim.g.mapleader or ' '
vim.o.swapfile = false

require('ai_host').setup(vim.g.ai_host_test_opts or {})
