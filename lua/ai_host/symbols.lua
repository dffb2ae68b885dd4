--- ai_host.symbols: the definitions the code of a range uses (functions, classes, types), for
--- explain, refactor, fix and chat to send along with it.
---
--- The identifiers of the range (tree-sitter's, else words) are looked up with the buffer's
--- language servers (`textDocument/definition`, one request per identifier, all at once), waited
--- for at most `M.timeout_ms`: the editor never waits on a server, and a request goes without what
--- did not come in time. Without a language server (or for what it did not find), tree-sitter's
--- definitions in the same buffer (else lines that read like one: `def name`, `function name`...).
--- Each definition is read from its file, bounded: the comment above it, its signature, docstring
--- and first lines. Files on `security.deny` are never read (the engine drops them as well, and
--- judges the whole list: here only its patterns without a slash and folders are applied).

local M = {}
local H = {}

--- How long a request waits for the language servers' definitions before going without them.
M.timeout_ms = 250
--- The most identifiers looked up for one request.
M.max_identifiers = 20
--- The most lines of one definition sent (the comment above it included), and characters.
M.max_lines = 20
M.max_chars = 2000
--- The most comment lines above a definition sent with it.
M.max_comment_lines = 6
--- Buffer lines searched for same-buffer definitions (a huge file is searched in its first ones).
M.max_scan_lines = 20000

--- Gather the definitions lines line1..line2 of `buf` use, and call `done(symbols)` once, each
--- { name, path (absolute), line (1-based), text }: at once when no language server can find
--- definitions, else when every request is answered or `M.timeout_ms` passes, whichever is first.
--- Returns a function that cancels the gathering (`done` is then never called).
---@param buf integer
---@param line1 integer
---@param line2 integer
---@param done fun(symbols: table[])
---@return fun() cancel
function M.gather(buf, line1, line2, done)
  local idents = H.identifiers(buf, line1, line2)
  local clients = #idents > 0 and vim.lsp.get_clients({ bufnr = buf, method = 'textDocument/definition' }) or {}
  if #clients == 0 then
    done(H.collect(buf, line1, line2, idents, {}))
    return function() end
  end
  local found = {} -- identifier index -> { uri, line (0-based) }
  local finished, cancels, timer = false, {}, vim.uv.new_timer()
  local stop = function()
    if finished then return false end
    finished = true
    timer:stop()
    if not timer:is_closing() then timer:close() end
    for _, cancel in ipairs(cancels) do
      pcall(cancel) -- the requests that did not answer leave the servers' queues
    end
    return true
  end
  local finish = function()
    if stop() then done(H.collect(buf, line1, line2, idents, found)) end
  end
  timer:start(M.timeout_ms, 0, vim.schedule_wrap(finish))
  local waiting = #idents
  local uri = vim.uri_from_bufnr(buf)
  for i, ident in ipairs(idents) do
    local params = function(client)
      local line = vim.api.nvim_buf_get_lines(buf, ident.row, ident.row + 1, false)[1] or ''
      local ok, character = pcall(vim.str_utfindex, line, client.offset_encoding or 'utf-16', ident.col, false)
      return { textDocument = { uri = uri }, position = { line = ident.row, character = ok and character or ident.col } }
    end
    local ok, cancel = pcall(vim.lsp.buf_request_all, buf, 'textDocument/definition', params, function(results)
      if finished then return end
      for _, res in pairs(results or {}) do
        found[i] = found[i] or H.location(res.result, uri, line1, line2)
      end
      waiting = waiting - 1
      if waiting == 0 then vim.schedule(finish) end
    end)
    if ok and type(cancel) == 'function' then
      table.insert(cancels, cancel)
    else
      waiting = waiting - 1
    end
  end
  if waiting == 0 then vim.schedule(finish) end
  return function() stop() end
end

--- The identifiers lines line1..line2 of `buf` use, each once (where it first appears), in order,
--- at most M.max_identifiers: { name, row (0-based), col (byte) }.
---@param buf integer
---@param line1 integer
---@param line2 integer
---@return { name: string, row: integer, col: integer }[]
function M.identifiers(buf, line1, line2) return H.identifiers(buf, line1, line2) end

-- Helpers --------------------------------------------------------------------------------------

-- Words that are never worth a lookup (the fallback without tree-sitter reads every word).
H.keywords = {}
for word in
  ([[and as assert async await break case catch char class const continue def default del do elif else
  elseif end enum except export extends false False final finally fn for from func function global go goto
  if impl import in int interface is lambda let local match mod mut new nil None nonlocal not null or
  package pass private protected pub public raise range repeat return self Self static struct super switch
  then this throw true True try type typeof undefined until use var void while with yield]]):gmatch('%S+')
do
  H.keywords[word] = true
end

-- Node types (a part of one) that are a name to look up, across common grammars.
H.identifier_types = { 'identifier', 'constant' }
-- Keywords before a name that make a line read like a definition (the fallback without tree-sitter).
H.definition_words = { 'def', 'class', 'function', 'fn', 'func', 'struct', 'interface', 'enum', 'trait', 'type' }

function H.identifiers(buf, line1, line2)
  local out, seen = {}, {}
  local add = function(name, row, col)
    if #out >= M.max_identifiers or seen[name] or H.keywords[name] or #name < 2 then return end
    seen[name] = true
    table.insert(out, { name = name, row = row, col = col })
  end
  local root = H.root(buf)
  if root then
    local node = root:named_descendant_for_range(line1 - 1, 0, line2 - 1, 0) or root
    while node:parent() and (node:start() > line1 - 1 or node:end_() < line2 - 1) do
      node = node:parent()
    end
    H.walk(node, line1 - 1, line2 - 1, function(n)
      local t = n:type()
      for _, pat in ipairs(H.identifier_types) do
        if t:find(pat, 1, true) then
          local row, col = n:start()
          add(vim.treesitter.get_node_text(n, buf), row, col)
          return
        end
      end
    end)
    return out
  end
  -- without a parser: the words outside strings and comments, the ones called first
  local words, calls = {}, {}
  for i, line in ipairs(H.code_only(buf, vim.api.nvim_buf_get_lines(buf, line1 - 1, line2, false))) do
    for col, word, after in line:gmatch('()([%a_][%w_]*)()') do
      if col == 1 or not line:sub(col - 1, col - 1):match('[%w_]') then
        table.insert(line:match('^%s*%(', after) and calls or words, { word, line1 - 2 + i, col - 1 })
      end
    end
  end
  for _, w in ipairs(vim.list_extend(calls, words)) do
    add(w[1], w[2], w[3])
  end
  return out
end

-- The lines with their strings and comments blanked out (same length: columns stay right), as far
-- as a line-by-line look can tell: quotes, triple quotes across lines, and the line comment of the
-- buffer's 'commentstring'.
function H.code_only(buf, lines)
  local leader = vim.trim((vim.bo[buf].commentstring or ''):match('^(.-)%%s') or '')
  local out, triple = {}, nil
  for _, line in ipairs(lines) do
    local chars, i, n = {}, 1, #line
    while i <= n do
      local c = line:sub(i, i)
      local three = line:sub(i, i + 2)
      if triple then
        if three == triple then
          triple = nil
          table.insert(chars, '   ')
          i = i + 3
        else
          table.insert(chars, ' ')
          i = i + 1
        end
      elseif three == '"""' or three == "'''" then
        triple = three
        table.insert(chars, '   ')
        i = i + 3
      elseif c == '"' or c == "'" or c == '`' then
        local close = line:find(c, i + 1, true)
        while close and line:sub(close - 1, close - 1) == '\\' do
          close = line:find(c, close + 1, true)
        end
        close = close or n
        table.insert(chars, string.rep(' ', close - i + 1))
        i = close + 1
      elseif leader ~= '' and line:sub(i, i + #leader - 1) == leader then
        table.insert(chars, string.rep(' ', n - i + 1))
        i = n + 1
      else
        table.insert(chars, c)
        i = i + 1
      end
    end
    table.insert(out, table.concat(chars))
  end
  return out
end

-- Call `visit(node)` for each named node under `node` that starts on rows row1..row2, in order.
function H.walk(node, row1, row2, visit)
  for child in node:iter_children() do
    local srow, _, erow = child:range()
    if erow >= row1 and srow <= row2 then
      if child:named() and srow >= row1 then visit(child) end
      if child:child_count() > 0 then H.walk(child, row1, row2, visit) end
    end
  end
end

-- The buffer's syntax tree, parsed now if it is not (nil without a parser for its filetype).
function H.root(buf)
  local ok, parser = pcall(vim.treesitter.get_parser, buf, nil, { error = false })
  if not ok or parser == nil then return nil end
  local parsed, trees = pcall(function() return parser:parse() end)
  if not parsed or type(trees) ~= 'table' or trees[1] == nil then return nil end
  return trees[1]:root()
end

-- The first definition in an LSP answer (Location, Location[], LocationLink[]) outside the range.
function H.location(result, uri, line1, line2)
  if type(result) ~= 'table' then return nil end
  local list = (result.uri or result.targetUri) and { result } or result
  for _, loc in ipairs(list) do
    local target = loc.uri or loc.targetUri
    local range = loc.range or loc.targetSelectionRange or loc.targetRange
    if type(target) == 'string' and type(range) == 'table' and type(range.start) == 'table' then
      local line = range.start.line
      if not (target == uri and line >= line1 - 1 and line <= line2 - 1) then return { uri = target, line = line } end
    end
  end
  return nil
end

-- The symbols to send: the language servers' definitions (`found`, by identifier), else the
-- buffer's own; each read from its file, once, in the identifiers' order, denied files left out.
function H.collect(buf, line1, line2, idents, found)
  local missing = {}
  for i, ident in ipairs(idents) do
    if found[i] == nil then missing[ident.name] = i end
  end
  if next(missing) ~= nil then
    local uri = vim.uri_from_bufnr(buf)
    for name, def in pairs(H.local_definitions(buf, line1, line2, missing)) do
      found[missing[name]] = { uri = uri, line = def.row, last = def.last, buf = buf }
    end
  end
  local out, seen = {}, {}
  local deny = require('ai_host').get_config().security.deny
  for i, ident in ipairs(idents) do
    local loc = found[i]
    if loc and loc.uri:match('^file:') then
      local path = vim.uri_to_fname(loc.uri)
      local key = path .. ':' .. loc.line
      if not seen[key] and not H.denied(path, deny) then
        seen[key] = true
        local text = H.read(path, loc.line, loc.last, loc.buf)
        if text then table.insert(out, { name = ident.name, path = path, line = loc.line + 1, text = text }) end
      end
    end
  end
  return out
end

-- Definitions in `buf` (outside lines line1..line2) of the names in `wanted`: name -> { row,
-- last (its last row, when tree-sitter knows it) }, 0-based.
function H.local_definitions(buf, line1, line2, wanted)
  local out = {}
  local root = H.root(buf)
  local lines = vim.api.nvim_buf_get_lines(buf, 0, M.max_scan_lines, false)
  for row, line in ipairs(lines) do
    row = row - 1
    if row < line1 - 1 or row > line2 - 1 then
      for col, word in line:gmatch('()([%a_][%w_]*)') do
        if wanted[word] and out[word] == nil then
          local def = root and H.ts_definition(buf, root, row, col - 1, word)
            or (not root and H.reads_like_definition(line, col) and { row = row })
          if def then out[word] = def end
        end
      end
    end
  end
  return out
end

-- The definition node whose name is the word at row, col: { row, last } of the node, or nil.
function H.ts_definition(buf, root, row, col, word)
  local node = root:named_descendant_for_range(row, col, row, col + #word)
  for _ = 1, 3 do -- the name is the definition's `name` field, or a part of it (`M.name`)
    if node == nil then return nil end
    local parent = node:parent()
    if parent and H.is_definition(parent:type()) then
      for _, name in ipairs(parent:field('name')) do
        local srow, scol, erow, ecol = name:range()
        if srow <= row and erow >= row and scol <= col and ecol >= col + #word then
          local first, _, last = parent:range()
          return { row = first, last = last }
        end
      end
    end
    node = parent
  end
  return nil
end

function H.is_definition(t)
  if t:find('call', 1, true) then return false end
  return t:find('definition', 1, true)
    or t:find('declaration', 1, true)
    or t:find('_item$')
    or t:find('class', 1, true)
    or t:find('struct', 1, true)
    or t:find('interface', 1, true)
    or t:find('enum', 1, true)
end

-- Whether the word at byte `col` (1-based) of `line` follows a keyword that defines it.
function H.reads_like_definition(line, col)
  local before = line:sub(1, col - 1)
  for _, kw in ipairs(H.definition_words) do
    if before:match('%f[%w_]' .. kw .. '%s+[%w_%.:]*$') then return true end
  end
  return false
end

-- The text of the definition on 0-based `row` of the file at `path` (of `buf` when it is loaded):
-- the comment lines above it, then its lines up to `last` (when known) or to where its
-- indentation ends, at most M.max_lines and M.max_chars; nil if it cannot be read.
function H.read(path, row, last, buf)
  local first = math.max(0, row - M.max_comment_lines)
  local upto = row + M.max_lines
  local lines
  buf = buf or H.loaded_buf(path)
  if buf and vim.api.nvim_buf_is_loaded(buf) then
    lines = vim.api.nvim_buf_get_lines(buf, first, upto, false)
  else
    lines = H.read_file(path, first, upto)
  end
  if lines == nil or #lines <= row - first then return nil end
  local above = {}
  for i = row - first, 1, -1 do -- the comment right above: its doc
    if not lines[i]:match('^%s*[-#/%*]') or lines[i]:match('^%s*$') then break end
    table.insert(above, 1, lines[i])
  end
  local def = H.extent(vim.list_slice(lines, row - first + 1), last and (last - row + 1) or nil)
  local out = vim.list_extend(above, def)
  local text = table.concat(out, '\n')
  if #text > M.max_chars then text = text:sub(1, M.max_chars):gsub('\n[^\n]*$', '') .. '\n…' end
  return text
end

-- The lines of a definition that starts at lines[1]: `count` lines when known, else up to the
-- first line indented no deeper than the first (a closing `end`, `}` or `)` kept); a definition
-- longer than M.max_lines ends in '…'.
function H.extent(lines, count)
  local indent = #(lines[1] or ''):match('^%s*')
  local n = count or #lines
  if count == nil then
    for i = 2, #lines do
      local line = lines[i]
      if line:match('%S') and #line:match('^%s*') <= indent then
        local closing = line:match('^%s*[%}%)%]]') or line:match('^%s*end%f[^%w_]') or line:match('^%s*{%s*$')
        if not closing then
          n = i - 1
          break
        end
        if not line:match('^%s*{%s*$') then
          n = i
          break
        end
      end
    end
  end
  local out = vim.list_slice(lines, 1, math.min(n, M.max_lines))
  while #out > 1 and not out[#out]:match('%S') do
    table.remove(out)
  end
  if n > M.max_lines then table.insert(out, '…') end
  return out
end

-- The loaded buffer of the file at `path` (its text may be newer than the file's), or nil.
function H.loaded_buf(path)
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(b) and vim.api.nvim_buf_get_name(b) == path then return b end
  end
  return nil
end

-- Lines first..upto-1 (0-based) of a file, read only as far as needed; nil if it cannot be read.
function H.read_file(path, first, upto)
  local stat = vim.uv.fs_stat(path)
  if not stat or stat.type ~= 'file' then return nil end
  local f = io.open(path, 'r')
  if not f then return nil end
  local out, row = {}, 0
  for line in f:lines() do
    if row >= upto then break end
    if row >= first then table.insert(out, line) end
    row = row + 1
  end
  f:close()
  return out
end

-- Whether `path` is on the deny list, as far as its patterns without a slash (matched against the
-- file's name) and plain folder patterns (`secrets/`) tell; the last pattern that matches decides.
function H.denied(path, patterns)
  local name = vim.fs.basename(path)
  local decided = false
  for _, pattern in ipairs(patterns or {}) do
    local negated = pattern:sub(1, 1) == '!'
    local body = negated and pattern:sub(2) or pattern
    local match = false
    if not body:find('/', 1, true) then
      local ok, re = pcall(vim.regex, vim.fn.glob2regpat(body) .. '\\c')
      match = ok and re:match_str(name) ~= nil
    elseif body:match('^[%w_%.%-]+/$') then
      match = ('/' .. path:lower()):find('/' .. body:lower(), 1, true) ~= nil
    end
    if match then decided = not negated end
  end
  return decided
end

return M
