--- ai_host.review: :AIReview, the working tree's changes reviewed by the model before any merge request.
---
--- The engine reads the changes with git (against HEAD or a ref) and reviews them file by file with
--- the same pipeline, prompts and redaction as `ai-host review`; each file's findings arrive as
--- they come and land as diagnostics (namespace `ai_host_review`) on the open buffers of that file,
--- and in a quickfix list of their own. A file opened later gets its diagnostics when it is read,
--- while the results are current (until the next :AIReview, or :AIReview! clears them).

local M = {}
local H = {}

-- State ---------------------------------------------------------------------------------------
-- H.run: nil, or the current review's results:
--   { id (job id), ref, status ('running'|'done'|'error'|'cancelled'|'cleared'),
--     by_path = { [resolved path] = { vim.Diagnostic without bufnr, ... } },
--     qf_items = { quickfix items of this run, in order }, qf_id (its quickfix list, once it has items),
--     files (files heard of), findings (count), progress (the engine's last status text) }
H.run = nil
H.ns = vim.api.nvim_create_namespace('ai_host_review')
H.group_name = 'ai_host_review'

--- Review the working tree's changes against `ref` (default HEAD), in the git repository that holds
--- the current directory. A review already running is cancelled; the previous results are cleared.
---@param ref string|nil
function M.run(ref)
  ref = (ref ~= nil and ref ~= '') and ref or H.default_ref
  H.reset() -- the previous run's quickfix list stays in the quickfix history
  local run = { ref = ref, status = 'running', by_path = {}, qf_items = {}, files = 0, findings = 0 }
  H.run = run
  H.watch_reads()
  local id, msg = require('ai_host.host').start('review', { cwd = vim.fn.getcwd(), ref = ref }, {
    on_status = function(data) H.on_status(run, data) end,
    on_findings = function(data) H.on_findings(run, data) end,
    on_done = function(data) H.on_done(run, data) end,
    on_error = function(data) H.on_error(run, data.message) end,
    on_superseded = function() H.set_status(run, 'cancelled') end,
  })
  if id == nil then return H.on_error(run, msg) end
  run.id = id
end

--- Stop a running review (the server stops generating); what it found so far stays.
function M.cancel()
  local run = H.run
  if run == nil or run.status ~= 'running' then return end
  H.set_status(run, 'cancelled')
  require('ai_host.host').cancel(run.id)
end

--- Remove every result of the last review (diagnostics, its quickfix entries, the autocmds), and
--- stop it if it still runs.
function M.clear()
  local run = H.reset()
  if run ~= nil and H.qf_valid(run) then
    run.status = 'cleared'
    vim.fn.setqflist({}, 'r', { id = run.qf_id, title = H.qf_title(run), items = {} })
  end
end

--- Refs for :AIReview's completion (HEAD, branches, remote branches, tags) that start with `arglead`.
--- Synchronous, but git gets at most H.complete_timeout_ms.
---@param arglead string|nil
---@return string[]
function M.complete(arglead)
  arglead = arglead or ''
  local refs = { H.default_ref }
  local ok, result = pcall(
    function()
      return vim
        .system(
          { 'git', 'for-each-ref', '--format=%(refname:short)', 'refs/heads', 'refs/remotes', 'refs/tags' },
          { cwd = vim.fn.getcwd(), text = true }
        )
        :wait(H.complete_timeout_ms)
    end
  )
  if ok and result.code == 0 then vim.list_extend(refs, vim.split(result.stdout or '', '\n', { trimempty = true })) end
  return vim.tbl_filter(function(ref) return ref:find(arglead, 1, true) == 1 end, refs)
end

--- The review's state (for tests, the statusline and bug reports).
function M.info()
  local run = H.run
  if run == nil then return { active = false, namespace = H.ns } end
  return {
    active = true,
    namespace = H.ns,
    id = run.id,
    ref = run.ref,
    status = run.status,
    files = run.files,
    findings = run.findings,
    progress = run.progress,
    qf_id = run.qf_id,
    paths = vim.tbl_keys(run.by_path),
  }
end

-- Helpers --------------------------------------------------------------------------------------

H.default_ref = 'HEAD'
H.complete_timeout_ms = 1000

-- The model's severities as diagnostics and quickfix types.
H.severity = {
  blocker = vim.diagnostic.severity.ERROR,
  major = vim.diagnostic.severity.ERROR,
  minor = vim.diagnostic.severity.WARN,
  info = vim.diagnostic.severity.INFO,
}
H.qf_type = { blocker = 'E', major = 'E', minor = 'W', info = 'I' }

function H.on_status(run, data)
  if H.run ~= run then return end
  if data.warning then return H.say('ai_host: ' .. data.text, vim.log.levels.WARN) end
  run.progress = data.text
end

-- One file's findings (or why it was not reviewed): diagnostics on its open buffers, quickfix entries.
function H.on_findings(run, data)
  if H.run ~= run or run.status ~= 'running' then return end
  run.files = run.files + 1
  local path = data.path
  local key = H.resolve(path)
  local diagnostics, qf = run.by_path[key] or {}, {}
  for _, item in ipairs(data.items or {}) do
    run.findings = run.findings + 1
    local text = H.text(item)
    local lnum = type(item.lnum) == 'number' and item.lnum or nil
    if lnum ~= nil then
      table.insert(diagnostics, {
        lnum = lnum - 1,
        col = 0,
        severity = H.severity[item.severity] or vim.diagnostic.severity.INFO,
        source = 'ai_host',
        code = H.str(item.category),
        message = text,
        user_data = { severity = item.severity, category = H.str(item.category), suggestion = H.str(item.suggestion) },
      })
    end
    table.insert(qf, {
      filename = path,
      lnum = lnum or 1,
      col = 1,
      type = H.qf_type[item.severity] or 'I',
      text = lnum and text or ('(no line) ' .. text),
    })
  end
  if type(data.not_reviewed) == 'string' then
    table.insert(qf, { filename = path, lnum = 1, text = 'not reviewed: ' .. data.not_reviewed })
  end
  if #diagnostics > 0 then
    run.by_path[key] = diagnostics
    for _, buf in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_is_loaded(buf) and H.resolve(vim.api.nvim_buf_get_name(buf)) == key then
        vim.diagnostic.set(H.ns, buf, diagnostics)
      end
    end
  end
  if #qf > 0 then H.qf_add(run, qf) end
end

function H.on_done(run, data)
  if H.run ~= run then return end
  H.set_status(run, 'done')
  local files, findings, skipped = data.files or run.files, data.findings or run.findings, data.not_reviewed or 0
  if files == 0 and skipped == 0 then
    return H.say('ai_host: nothing to review: no changes against ' .. run.ref .. '. Try :AIReview origin/main.')
  end
  local summary = string.format('ai_host: review of %d files: %d findings (%d not reviewed)', files, findings, skipped)
  if findings == 0 and skipped == 0 then return H.say(summary .. '.') end
  if vim.g.ai_host_review_open_qf == true and H.qf_current(run) then
    local win = vim.api.nvim_get_current_win()
    if pcall(vim.cmd, 'botright copen') then
      if vim.api.nvim_win_is_valid(win) then vim.api.nvim_set_current_win(win) end -- the cursor stays
      return H.say(summary .. '; they are in the quickfix list.')
    end
  end
  if H.qf_current(run) then return H.say(summary .. '; :copen to see them.') end
  H.say(summary .. "; :chistory lists the quickfix list '" .. H.qf_title(run) .. "'.")
end

function H.on_error(run, message)
  if H.run ~= run then return end
  H.set_status(run, 'error')
  message = tostring(message or 'the review stopped')
  if not message:find('^ai_host:') then message = 'ai_host: ' .. message .. ' (details: :AI log)' end
  H.say(message, vim.log.levels.ERROR)
end

-- Stop the current review and take its diagnostics away; returns it (nil if none).
function H.reset()
  M.cancel()
  local run = H.run
  H.run = nil
  vim.diagnostic.reset(H.ns)
  pcall(vim.api.nvim_del_augroup_by_name, H.group_name)
  return run
end

function H.set_status(run, status)
  run.status = status
  if H.qf_valid(run) then vim.fn.setqflist({}, 'a', { id = run.qf_id, title = H.qf_title(run) }) end
end

-- The quickfix list gets one file's entries. A run's first entries start a new list (like :make);
-- later ones go to that list by its id, even when another list became the current one meanwhile.
function H.qf_add(run, items)
  vim.list_extend(run.qf_items, items)
  if H.qf_valid(run) then
    vim.fn.setqflist({}, 'a', { id = run.qf_id, items = items })
    return
  end
  -- the first entries, or our list went off the end of the quickfix stack: all of them again
  vim.fn.setqflist({}, ' ', { title = H.qf_title(run), items = run.qf_items })
  run.qf_id = vim.fn.getqflist({ id = 0 }).id
end

function H.qf_title(run)
  local suffix = (run.status == 'running' or run.status == 'done') and '' or (' (' .. run.status .. ')')
  return 'ai_host review: ' .. run.ref .. suffix
end

function H.qf_valid(run) return run.qf_id ~= nil and vim.fn.getqflist({ id = run.qf_id }).id == run.qf_id end

function H.qf_current(run) return H.qf_valid(run) and vim.fn.getqflist({ id = 0 }).id == run.qf_id end

-- "[major] security: message"
function H.text(item)
  local text = '[' .. (H.str(item.severity) or 'info') .. '] '
  if H.str(item.category) then text = text .. item.category .. ': ' end
  return text .. (H.str(item.message) or '')
end

-- A non-empty string from the engine, or nil (its None arrives as vim.NIL).
function H.str(value) return type(value) == 'string' and value ~= '' and value or nil end

-- A path as it compares with a buffer's name: absolute, symlinks resolved where it exists.
function H.resolve(path)
  if path == nil or path == '' then return '' end
  return vim.uv.fs_realpath(path) or vim.fs.normalize(vim.fn.fnamemodify(path, ':p'))
end

-- A buffer read while the results are current gets its file's diagnostics.
function H.watch_reads()
  vim.api.nvim_create_autocmd('BufReadPost', {
    group = vim.api.nvim_create_augroup(H.group_name, { clear = true }),
    callback = function(ev)
      local run = H.run
      if run == nil then return end
      local diagnostics = run.by_path[H.resolve(vim.api.nvim_buf_get_name(ev.buf))]
      if diagnostics ~= nil then vim.diagnostic.set(H.ns, ev.buf, diagnostics) end
    end,
  })
end

-- Scheduled: a message from inside an event handler would otherwise wait behind a hit-enter prompt.
function H.say(message, level)
  vim.schedule(function() vim.notify(message, level or vim.log.levels.INFO) end)
end

return M
