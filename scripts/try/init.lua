-- `make try`: Neovim with ai_host wired to a real local code model that scripts/try.py serves
-- with llama.cpp on 127.0.0.1 ($AI_HOST_TRY_URL, model $AI_HOST_TRY_MODEL). The settings suit a
-- 0.5B model on a CPU: short suggestions from a small window, so the first one comes in seconds.
local root = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h:h')
vim.opt.runtimepath:prepend(root)
vim.g.python3_host_prog = root .. '/.venv/bin/python'
if (vim.env.NVIM_RPLUGIN_MANIFEST or '') == '' then vim.env.NVIM_RPLUGIN_MANIFEST = root .. '/.venv/rplugin.vim' end
vim.g.loaded_node_provider, vim.g.loaded_perl_provider, vim.g.loaded_ruby_provider = 0, 0, 0
vim.g.mapleader = ' '
vim.o.swapfile = false
vim.o.termguicolors = vim.env.COLORTERM == 'truecolor' or vim.env.COLORTERM == '24bit'

local model = vim.env.AI_HOST_TRY_MODEL or 'qwen2.5-coder-0.5b'
require('ai_host').setup({
  backend = { kind = 'openai', url = vim.env.AI_HOST_TRY_URL or 'http://127.0.0.1:8012' },
  models = { explain = model, completion = model, refactor = model },
  completion = {
    fim_template = 'qwen', max_lines = 4, num_predict = 48, temperature = 0,
    context_chars = 1600, prefix_ratio = 0.75, debounce_ms = 250, prefetch = false,
    warm = vim.env.AI_HOST_TRY_WARM ~= '0', -- (bench/real_typing.py compares it off)
  },
  explain = { context_lines = 4, max_chars = 3000, num_predict = 256 },
  refactor = { context_lines = 4, max_chars = 3000, num_predict = 512 },
  scheduler = { concurrency = 1 },
  gpu = { enabled = false },
})

vim.api.nvim_create_autocmd('BufWinEnter', {
  once = true,
  callback = function()
    vim.wo.winbar = ' ai_host try · ' .. model .. ' on your CPU · pause in insert mode for ghost text'
      .. ' · <Tab> accept · <Space>ae explain · <Space>ar refactor · :qa quits (and stops the server)'
  end,
})
