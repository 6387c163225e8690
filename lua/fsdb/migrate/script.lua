--- fsdb.migrate.script — the migrations directory on disk.
--
-- Owns the files: reading env.lua and versions/*.lua, writing new revision
-- files and the directory `fsdb init` creates, revision ids and file-name
-- slugs. No connection, no C core.
--
-- A revision file returns
--   { revision = "12 hex", down_revision = nil | "id" | {"id1", "id2"},
--     branch_labels = nil | {…}, depends_on = nil | {…}, message = "…",
--     up = function(op) … end, down = function(op) … end }

local _M = {}

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", [['\'']]) .. "'"
end

local function ok_status(a, _, code)
  -- Lua 5.1/LuaJIT: a number; Lua 5.2+: true|nil, "exit", code
  if type(a) == "number" then return a == 0 end
  return a == true and (code == nil or code == 0)
end

--- True when a file or directory exists.
function _M.exists(path)
  local ok = os.rename(path, path)
  return ok and true or false
end

-- rename(p/, p/) succeeds only for a directory (same name: a no-op).
function _M.is_dir(path)
  return _M.exists(path:match("/$") and path or path .. "/")
end

--- Creates a directory and its parents; true or nil, err.
function _M.mkdir_p(path)
  local has_lfs, lfs = pcall(require, "lfs")
  if has_lfs and type(lfs.mkdir) == "function" then
    local parts, cur = {}, path:sub(1, 1) == "/" and "" or "."
    for p in path:gmatch("[^/]+") do parts[#parts + 1] = p end
    for _, p in ipairs(parts) do
      cur = cur .. "/" .. p
      if not _M.is_dir(cur) then lfs.mkdir(cur) end
    end
  else
    ok_status(os.execute("mkdir -p " .. shell_quote(path) .. " 2>/dev/null"))
  end
  if not _M.is_dir(path) then
    return nil, ("fsdb: cannot create directory '%s'"):format(path)
  end
  return true
end

--- The names in a directory (without . and ..), sorted; nil, err when it
--- cannot be read.
function _M.list_dir(path)
  local names = {}
  local has_lfs, lfs = pcall(require, "lfs")
  if has_lfs and type(lfs.dir) == "function" then
    local ok, err = pcall(function()
      for name in lfs.dir(path) do
        if name ~= "." and name ~= ".." then names[#names + 1] = name end
      end
    end)
    if not ok then return nil, ("fsdb: cannot read directory '%s': %s"):format(path, tostring(err)) end
  else
    if not _M.is_dir(path) then
      return nil, ("fsdb: cannot read directory '%s'"):format(path)
    end
    local p = io.popen("ls -1A " .. shell_quote(path) .. " 2>/dev/null")
    if not p then return nil, ("fsdb: cannot read directory '%s'"):format(path) end
    for name in p:lines() do names[#names + 1] = name end
    p:close()
  end
  table.sort(names)
  return names
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("*a")
  f:close()
  return s
end
_M.read_file = read_file

local function write_file(path, text)
  if _M.exists(path) then
    return nil, ("fsdb: %s already exists"):format(path)
  end
  local f, err = io.open(path, "wb")
  if not f then return nil, ("fsdb: cannot write %s: %s"):format(path, tostring(err)) end
  local ok, werr = f:write(text)
  f:close()
  if not ok then return nil, ("fsdb: cannot write %s: %s"):format(path, tostring(werr)) end
  return true
end
_M.write_file = write_file

------------------------------------------------------------------------
-- Ids and names
------------------------------------------------------------------------

--- A new revision id: 12 lowercase hex characters from /dev/urandom
--- (os.time and math.random where there is none).
-- syntax: id = script.new_id()
function _M.new_id()
  local f = io.open("/dev/urandom", "rb")
  if f then
    local bytes = f:read(6)
    f:close()
    if bytes and #bytes == 6 then
      return (bytes:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
    end
  end
  math.randomseed(os.time() + math.floor((os.clock() * 1000000) % 1000000))
  local t = {}
  for i = 1, 12 do t[i] = ("%x"):format(math.random(0, 15)) end
  return table.concat(t)
end

--- The file-name slug of a message: lowercase, every run of characters
--- other than letters and digits as one "_", at most 40 characters.
-- syntax: s = script.slug(message)
function _M.slug(message)
  local s = tostring(message or ""):lower():gsub("[^%w]+", "_")
  s = s:gsub("^_+", ""):sub(1, 40):gsub("_+$", "")
  return s
end

function _M.valid_id(id)
  return type(id) == "string" and #id >= 1 and #id <= 32 and id:match("^[%w_]+$") ~= nil
end

------------------------------------------------------------------------
-- Loading
------------------------------------------------------------------------

local function is_string_list(v)
  if type(v) ~= "table" then return false end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  if n ~= #v then return false end
  for _, x in ipairs(v) do
    if type(x) ~= "string" then return false end
  end
  return true
end

-- Checks the table a revision file returned; nil or what is wrong.
local function check_revision(r)
  if type(r) ~= "table" then
    return "must return a table (got " .. type(r) .. ")"
  end
  if not _M.valid_id(r.revision) then
    return "revision must be an id of 1 to 32 letters, digits or _ (got " .. tostring(r.revision) .. ")"
  end
  for _, key in ipairs({ "down_revision", "depends_on", "branch_labels" }) do
    local v = r[key]
    if v ~= nil and type(v) ~= "string" and not is_string_list(v) then
      return key .. " must be nil, a string or a list of strings"
    end
  end
  local downs = type(r.down_revision) == "table" and r.down_revision or { r.down_revision }
  for _, d in ipairs(downs) do
    if not _M.valid_id(d) then return "down_revision '" .. tostring(d) .. "' is not a revision id" end
  end
  if r.message ~= nil and type(r.message) ~= "string" then
    return "message must be a string"
  end
  if type(r.up) ~= "function" then
    return "up must be a function(op)"
  end
  if r.down ~= nil and type(r.down) ~= "function" then
    return "down must be a function(op) or nil"
  end
end

--- Loads one revision file.
-- syntax: rev, err = script.load_revision(path)
function _M.load_revision(path)
  local chunk, err = loadfile(path)
  if not chunk then
    return nil, "fsdb: cannot load revision file " .. tostring(err)
  end
  local ok, r = pcall(chunk)
  if not ok then
    return nil, ("fsdb: revision file %s failed to load: %s"):format(path, tostring(r))
  end
  local bad = check_revision(r)
  if bad then
    return nil, ("fsdb: revision file %s: %s"):format(path, bad)
  end
  r.path = path
  return r
end

--- Loads every versions/*.lua of a migrations directory.
-- syntax: revisions, err = script.load_versions(dir)
function _M.load_versions(dir)
  local vdir = dir .. "/versions"
  local names, err = _M.list_dir(vdir)
  if not names then return nil, err end
  local revs = {}
  for _, name in ipairs(names) do
    if name:match("%.lua$") and not name:match("^[%._]") then
      local r, lerr = _M.load_revision(vdir .. "/" .. name)
      if not r then return nil, lerr end
      r.filename = name
      revs[#revs + 1] = r
    end
  end
  return revs
end

--- Loads env.lua (optional: {} when there is none).
-- syntax: env, err = script.load_env(dir)
function _M.load_env(dir)
  local path = dir .. "/env.lua"
  if not _M.exists(path) then return {} end
  local chunk, err = loadfile(path)
  if not chunk then return nil, "fsdb: cannot load " .. tostring(err) end
  local ok, env = pcall(chunk)
  if not ok then
    return nil, ("fsdb: %s failed to load: %s"):format(path, tostring(env))
  end
  if env == nil then return {} end
  if type(env) ~= "table" then
    return nil, ("fsdb: %s must return a table (got %s)"):format(path, type(env))
  end
  return env
end

------------------------------------------------------------------------
-- Writing
------------------------------------------------------------------------

local function lua_value(v)
  if v == nil then return "nil" end
  if type(v) == "string" then return ("%q"):format(v) end
  local t = {}
  for _, x in ipairs(v) do t[#t + 1] = ("%q"):format(x) end
  return "{ " .. table.concat(t, ", ") .. " }"
end

local function comment_lines(text)
  local t = {}
  for l in (tostring(text) .. "\n"):gmatch("([^\n]*)\n") do
    t[#t + 1] = (l == "" and "--" or "-- " .. l)
  end
  return table.concat(t, "\n")
end

-- Indents a body to sit inside `function(op) … end` unless it already is.
local function body(text, default)
  if text == nil or text:match("^%s*$") then return default end
  text = text:gsub("\n+$", "")
  if text:match("^    ") or text:match("^\t") then return text end
  return (("\n" .. text):gsub("\n([^\n])", "\n    %1"):sub(2))
end

local DEFAULT_UP = '    -- e.g. op.execute("ALTER TABLE products ADD COLUMN sku VARCHAR(32)")'
local DEFAULT_DOWN = '    -- e.g. op.execute("ALTER TABLE products DROP COLUMN sku")'

--- The text of a revision file.
-- syntax: text = script.render{ revision =, down_revision =, branch_labels =,
--   depends_on =, message =, create_date =, up_body =, down_body = }
function _M.render(f)
  local message = f.message or ""
  local revises = f.down_revision
  if type(revises) == "table" then revises = table.concat(revises, ", ") end
  local lines = {
    comment_lines(message ~= "" and message or "(no message)"),
    "--",
    "-- Revision ID: " .. f.revision,
    "-- Revises:" .. (revises and " " .. revises or ""),
    "-- Create Date: " .. (f.create_date or os.date("%Y-%m-%d %H:%M:%S")),
    "",
    "return {",
    "  revision = " .. lua_value(f.revision) .. ",",
    "  down_revision = " .. lua_value(f.down_revision) .. ",",
    "  branch_labels = " .. lua_value(f.branch_labels) .. ",",
    "  depends_on = " .. lua_value(f.depends_on) .. ",",
    "  message = " .. lua_value(message) .. ",",
    "",
    "  up = function(op)",
    body(f.up_body, DEFAULT_UP),
    "  end,",
    "",
    "  down = function(op)",
    body(f.down_body, DEFAULT_DOWN),
    "  end,",
    "}",
    "",
  }
  if f.notes then
    -- What autogenerate left out, once, under the header.
    table.insert(lines, 6, "--\n" .. (f.notes:gsub("\n$", "")))
  end
  return table.concat(lines, "\n")
end

--- Writes a new revision file into dir/versions; returns its path.
-- syntax: path, err = script.write_revision(dir, fields)
function _M.write_revision(dir, f)
  local slug = _M.slug(f.message)
  local path = ("%s/versions/%s_%s.lua"):format(dir, f.revision, slug)
  local ok, err = write_file(path, _M.render(f))
  if not ok then return nil, err end
  return path
end

_M.ENV_TEMPLATE = [=[
-- The migrations environment: how `fsdb` connects, which version table it
-- keeps, and what `fsdb migrate` (revision --autogenerate) compares. Every
-- key is optional.
return {
  -- The database. Default: --url, else DATABASE_URL (or DB_USER, DB_PASSWORD,
  -- DB_HOST, DB_PORT, DB_NAME, DB_SOCKET), the environment first, then ./.env.
  -- A string or a function returning one.
  -- url = "mysql://user:password@127.0.0.1:3306/store",

  -- Migrate one bind of a multi-database application (Flask-Migrate's
  -- --multidb) with its own migrations directory: the URL then comes from
  -- DATABASE_URL_<NAME> (DATABASE_URL_AUTH for "auth") unless url is set.
  -- bind = "auth",

  -- The version table. "alembic_version" is Alembic's name, so a database
  -- migrated by Alembic can be adopted.
  version_table = "alembic_version",

  -- The schema autogenerate compares with the database: a module name, a
  -- function returning the schema, or the schema itself. Without one,
  -- `fsdb migrate` refuses to run (it would detect no changes).
  -- schema = "myapp.schema",

  -- Which tables autogenerate looks at; return false to leave one alone
  -- (tables another application owns, for instance).
  -- include_object = function(kind, name)
  --   return not name:match("^legacy_")
  -- end,

  -- Let autogenerate emit DROP TABLE for tables the schema does not declare.
  -- drop_tables = false,

  -- Seconds to wait for another migration holding the lock (GET_LOCK).
  lock_timeout = 60,
}
]=]

_M.README_TEMPLATE = [=[
Migrations managed by fsdb.

  fsdb revision -m "add products"      a new empty revision in versions/
  fsdb migrate -m "add products"       the same, with the changes detected
                                       against the schema named in env.lua
  fsdb upgrade                         apply every pending revision
  fsdb downgrade                       undo the last revision
  fsdb current | history | heads       where the database and the scripts are

env.lua says how to connect and which schema to compare; `fsdb help CMD`
describes each command.
]=]

return _M
