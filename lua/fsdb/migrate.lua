--- fsdb.migrate — the migration runner (Alembic semantics, MySQL reality).
--
--   local migrate = require("fsdb.migrate")
--   local m = assert(migrate.open{ dir = "migrations" })
--   assert(m:upgrade("head"))
--   m:close()
--
-- This file is the environment (Alembic's EnvironmentContext plus the
-- command layer): env.lua, the connection (one dedicated connection,
-- --url / env.lua / the environment), the named server lock, and the
-- verbs — upgrade, downgrade, stamp, revision, merge, the drift check,
-- init. The rest of the package:
--   graph, plan     the revision map and what a target means
--   version         the version table (every write)
--   runner          the run context, online and --sql, and failure reports
--   listing         current, heads, branches, history, show
--   script          revision files and env.lua
--   ops, model      op and the table model it shares with fsdb.schema
--   autogen         reflect -> compare -> render
--
-- Every failure is `nil, err` (err starts with "fsdb: ", keeps Alembic's
-- wording and ends with "; hint: …"); nothing here raises for a database
-- or file problem.

local graph_mod = require("fsdb.migrate.graph")
local script = require("fsdb.migrate.script")
local version = require("fsdb.migrate.version")
local runner = require("fsdb.migrate.runner")

local unpack = table.unpack or unpack

local _M = {}

local M = {}
M.__index = M

_M.DEFAULT_DIR = "migrations"
_M.DEFAULT_VERSION_TABLE = "alembic_version"
_M.DEFAULT_LOCK_TIMEOUT = 60
_M.NOT_UP_TO_DATE = "Target database is not up to date."
_M.NO_CHANGES = "No changes in schema detected."

local ENV_KEYS = {
  url = true, bind = true, version_table = true, schema = true, include_object = true,
  drop_tables = true, lock_timeout = true,
  -- Alembic's comparison switches (context.configure's names)
  compare_type = true, compare_server_default = true, compare_comment = true,
}

local function pack(...)
  return { n = select("#", ...), ... }
end

local function fail(fmt, ...)
  return nil, "fsdb: " .. fmt:format(...)
end

--- A value as a SQL literal, and a statement with its parameters inlined,
--- for display (fsdb.migrate.runner).
_M.literal = runner.literal
_M.inline = runner.inline

-- Inserts text before "; hint: …" (or appends it).
local function with_detail(err, detail)
  err = tostring(err)
  local head, hint = err:match("^(.-)(; hint: .*)$")
  if head then return head .. detail .. hint end
  return err .. detail
end

------------------------------------------------------------------------
-- Opening a migrations directory
------------------------------------------------------------------------

local function check_env(env, path)
  for k in pairs(env) do
    if not ENV_KEYS[k] then
      local names = {}
      for name in pairs(ENV_KEYS) do names[#names + 1] = name end
      table.sort(names)
      return fail("unknown key '%s' in %s (known: %s)", tostring(k), path, table.concat(names, ", "))
    end
  end
  local vt = env.version_table
  if vt ~= nil and (type(vt) ~= "string" or not vt:match("^[%w_$]+$") or #vt > 60) then
    return fail("version_table in %s must be a table name of letters, digits, _ or $ (got %s)",
      path, tostring(vt))
  end
  if env.bind ~= nil and (type(env.bind) ~= "string" or env.bind == "") then
    return fail("bind in %s must be a bind name (string)", path)
  end
  if env.url ~= nil and type(env.url) ~= "string" and type(env.url) ~= "function" then
    return fail("url in %s must be a string or a function returning one", path)
  end
  if env.lock_timeout ~= nil and (type(env.lock_timeout) ~= "number" or env.lock_timeout < 0) then
    return fail("lock_timeout in %s must be a number of seconds >= 0", path)
  end
  if env.include_object ~= nil and type(env.include_object) ~= "function" then
    return fail("include_object in %s must be a function(kind, name)", path)
  end
  for _, k in ipairs({ "compare_type", "compare_server_default", "compare_comment" }) do
    if env[k] ~= nil and type(env[k]) ~= "boolean" then
      return fail("%s in %s must be true or false (got %s)", k, path, type(env[k]))
    end
  end
  local st = type(env.schema)
  if env.schema ~= nil and st ~= "string" and st ~= "function" and st ~= "table" then
    return fail("schema in %s must be a module name, a function or a table", path)
  end
  return true
end

--- Opens a migrations directory. Connects only when a command needs the
--- database.
-- syntax: m, err = migrate.open{ dir = "migrations", url = nil, out = writer,
--   bind = nil, lock_timeout = nil, getenv = os.getenv, dotenv = ".env",
--   engine_options = nil, on_url = nil }
-- out receives progress text (default: io.stdout). url overrides env.lua's.
-- bind and lock_timeout override env.lua's. on_url(url) is called with the
-- URL before connecting (the CLI uses it to keep the password out of its
-- output).
function _M.open(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    error("fsdb: bad argument #1 to 'open' (table expected, got " .. type(opts) .. ")", 2)
  end
  local dir = opts.dir or _M.DEFAULT_DIR
  if not script.is_dir(dir) then
    return fail("Path doesn't exist: %s. Please use the 'init' command to create a new migrations "
      .. "directory; hint: `fsdb init -d %s` creates it, or pass -d DIR", dir, dir)
  end
  local env, err = script.load_env(dir)
  if not env then return nil, err end
  local ok
  ok, err = check_env(env, dir .. "/env.lua")
  if not ok then return nil, err end
  local m = setmetatable({
    dir = dir,
    env = env,
    url = opts.url,
    bind = opts.bind or env.bind,
    version_table = env.version_table or _M.DEFAULT_VERSION_TABLE,
    vt = version.new(env.version_table or _M.DEFAULT_VERSION_TABLE),
    lock_timeout = tonumber(opts.lock_timeout) or env.lock_timeout or _M.DEFAULT_LOCK_TIMEOUT,
    out = opts.out or function(s) io.stdout:write(s) end,
    getenv = opts.getenv or os.getenv,
    dotenv = opts.dotenv,
    engine_options = opts.engine_options,
    on_url = opts.on_url,
  }, M)
  ok, err = m:reload()
  if not ok then return nil, err end
  return m
end

--- Reads versions/ again (after files changed on disk).
-- syntax: ok, err = m:reload()
function M:reload()
  local revs, err
  if script.is_dir(self.dir .. "/versions") then
    revs, err = script.load_versions(self.dir)
    if not revs then return nil, err end
  else
    revs = {}
  end
  local g
  g, err = graph_mod.new(revs)
  if not g then return nil, err end
  self.graph = g
  return true
end

------------------------------------------------------------------------
-- Connection, version table, lock
------------------------------------------------------------------------

local function bind_var(bind)
  return require("fsdb.config").bind_var(bind)
end

-- The URL and where it came from.
function M:resolve_url()
  if self.url then return self.url, "--url" end
  local u = self.env.url
  if type(u) == "function" then
    local ok, v = pcall(u)
    if not ok then return fail("url() in %s/env.lua failed: %s", self.dir, tostring(v)) end
    u = v
  end
  if type(u) == "string" and u ~= "" then return u, "env.lua" end
  local config = require("fsdb.config")
  if self.bind then
    local var = bind_var(self.bind)
    local v = self.getenv(var)
    if v == nil then
      v = (config.read_dotenv(self.dotenv) or {})[var]
    end
    if v and v ~= "" then return v, var end
    return fail("no database URL for bind '%s'; hint: set %s (in the environment or .env), url in "
      .. "%s/env.lua, or pass --url", self.bind, var, self.dir)
  end
  local v, err = config.url_from_env(self.getenv, self.dotenv)
  if not v then return nil, err end
  return v, "the environment (DATABASE_URL, DB_*, .env)"
end

-- A connection on the migration's own engine (one connection, no overflow).
function M:connect()
  local url, source = self:resolve_url()
  if not url then return nil, source end
  if self.on_url then self.on_url(url) end
  if not self.engine then
    local options = {}
    for k, v in pairs(self.engine_options or {}) do options[k] = v end
    options.pool_size = 1
    options.max_overflow = 0
    local engine_mod = require("fsdb.engine")
    local ok, engine = pcall(engine_mod.new, url, options)
    if not ok then
      return nil, (tostring(engine):gsub("^.-:%d+: (fsdb:)", "%1"))
    end
    self.engine = engine
    self.url_source = source
  end
  local conn, err, errno, sqlstate = self.engine:connect()
  if not conn then
    return nil, with_detail(err, (" (database %s from %s)"):format(self.engine:url(), self.url_source)),
      errno, sqlstate
  end
  return conn
end

-- The rows of the version table ({} when it does not exist yet), in the
-- graph's order; second value true when the table is missing.
function M:read_rows(conn)
  return self.vt:read(conn, self.graph)
end

-- "a, b" or "<base>"
local function show_rows(rows)
  return graph_mod.format_ids(rows)
end

local function first_value(res, key)
  local row = res and res[1]
  return row and row[key]
end

-- Takes the named lock for this database; returns the lock name.
function M:lock(conn)
  local res, err, errno, sqlstate = conn:execute("SELECT DATABASE() AS db, MD5(DATABASE()) AS h")
  if not res then return nil, err, errno, sqlstate end
  local db, h = first_value(res, "db"), first_value(res, "h")
  if type(db) ~= "string" then
    return fail("the database URL names no database; hint: add /dbname to the URL")
  end
  local name = "fsdb_migrate:" .. db
  if #name > 64 then
    name = "fsdb_migrate:" .. db:sub(1, 18) .. ":" .. h -- 13 + 18 + 1 + 32 = 64
  end
  local timeout = self.lock_timeout
  res, err, errno, sqlstate = conn:execute("SELECT GET_LOCK(?, 0) AS got", name)
  if not res then return nil, err, errno, sqlstate end
  local got = first_value(res, "got")
  if got ~= 1 and timeout > 0 then
    local holder = first_value(conn:execute("SELECT IS_USED_LOCK(?) AS id", name), "id")
    self.out(("Waiting up to %s s for the migration lock '%s' (held by connection %s: another "
      .. "migration is running)\n"):format(tostring(timeout), name, tostring(holder)))
    res, err, errno, sqlstate = conn:execute("SELECT GET_LOCK(?, ?) AS got", name, timeout)
    if not res then return nil, err, errno, sqlstate end
    got = first_value(res, "got")
  end
  if got ~= 1 then
    if got == 0 then
      local holder = first_value(conn:execute("SELECT IS_USED_LOCK(?) AS id", name), "id")
      return fail("another migration is running on database '%s' (lock '%s' held; waited %s s); hint: "
        .. "wait for it to finish and try again (the lock is held by connection %s: SHOW PROCESSLIST; "
        .. "raise lock_timeout in env.lua to wait longer)", db, name, tostring(timeout), tostring(holder))
    end
    return fail("GET_LOCK('%s') failed on database '%s'", name, db)
  end
  self.lock_name = name
  return name
end

function M:unlock(conn)
  if self.lock_name then
    conn:execute("SELECT RELEASE_LOCK(?) AS r", self.lock_name)
    self.lock_name = nil
  end
end

-- Runs fn(conn) on a connection, under the lock when `locked`; the lock
-- is released and the connection returned whatever happens.
function M:with_conn(locked, fn)
  local conn, err, errno, sqlstate = self:connect()
  if not conn then return nil, err, errno, sqlstate end
  if locked then
    local name
    name, err, errno, sqlstate = self:lock(conn)
    if not name then
      conn:close()
      return nil, err, errno, sqlstate
    end
  end
  local r = pack(pcall(fn, conn))
  if locked then pcall(self.unlock, self, conn) end
  conn:close()
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

------------------------------------------------------------------------
-- Running revisions
------------------------------------------------------------------------

-- Resolves a plan: the revisions to run (Alembic's rules, fsdb.migrate.plan).
function M:plan(direction, rows, target)
  if direction == "upgrade" then return self.graph:upgrade_plan(rows, target) end
  return self.graph:downgrade_plan(rows, target)
end

-- upgrade / downgrade, online or offline.
function M:migrate(direction, target, opts)
  opts = opts or {}
  local g = self.graph
  if opts.sql then return self:offline(direction, target) end
  return self:with_conn(true, function(conn)
    local res, err, errno, sqlstate = conn:execute(self.vt.sql.create)
    if not res then return nil, err, errno, sqlstate end
    local rows
    rows, err, errno, sqlstate = self:read_rows(conn)
    if not rows then return nil, err, errno, sqlstate end
    local ok
    ok, err = g:check_rows(rows)
    if not ok then return nil, err end
    local plan
    plan, err = self:plan(direction, rows, target)
    if not plan then return nil, err end
    if #plan == 0 then
      self.out(("Nothing to %s: the database is at %s\n"):format(direction, show_rows(rows)))
      return { ran = {}, rows = rows }
    end
    local new_rows, ferr, failure = runner.online(self, conn):run(direction, plan, rows)
    if not new_rows then return nil, ferr, failure end
    return { ran = plan, rows = new_rows }
  end)
end

-- The starting rows of an offline run: "from:to" gives them, else the
-- database is read (read only: no lock, no table created).
function M:offline_start(target)
  local from, to = target:match("^([^:]*):([^:]+)$")
  if from then
    if from == "" then return {}, to end
    local ids, err = self.graph:resolve(from)
    if not ids then return nil, err end
    return ids, to
  end
  local rows, err = self:with_conn(false, function(conn)
    local r, e = self:read_rows(conn)
    if not r then return nil, e end
    local ok, cerr = self.graph:check_rows(r)
    if not ok then return nil, cerr end
    return r
  end)
  if not rows then
    return nil, with_detail(err, "; for SQL without a database, give the start: fsdb upgrade --sql base:head")
  end
  return rows, target
end

function M:offline(direction, target)
  local rows, to = self:offline_start(target)
  if not rows then return nil, to end
  local plan, err = self:plan(direction, rows, to)
  if not plan then return nil, err end
  local ctx = runner.offline(self)
  self.out(("-- fsdb %s %s --sql: the statements that take a database at %s there; nothing was run\n")
    :format(direction, target, show_rows(rows)))
  if direction == "upgrade" then self.vt:create(ctx.exec) end
  local new_rows, ferr, failure = ctx:run(direction, plan, rows)
  if not new_rows then return nil, ferr, failure end
  return { ran = plan, rows = new_rows }
end

--- Applies revisions up to target (default "head").
-- syntax: result, err = m:upgrade(target, { sql = bool })
-- result: { ran = {ids}, rows = {version-table rows after} }
function M:upgrade(target, opts)
  return self:migrate("upgrade", target or "head", opts)
end

--- Undoes revisions down to target (default "-1").
-- syntax: result, err = m:downgrade(target, { sql = bool })
function M:downgrade(target, opts)
  return self:migrate("downgrade", target or "-1", opts)
end

--- Writes the version table without running any revision.
-- syntax: result, err = m:stamp(target, { purge = bool, sql = bool })
-- purge empties the table first and accepts rows naming unknown revisions.
function M:stamp(target, opts)
  opts = opts or {}
  local g = self.graph
  if type(target) ~= "string" or target == "" then
    return fail("stamp needs a target revision; hint: e.g. fsdb stamp head")
  end
  local function stamp_with(rows, ctx)
    -- With --purge the rows may name unknown revisions: the stamp starts
    -- from an empty table then.
    local new_rows, err = g:stamp_rows(rows, target, opts.purge)
    if not new_rows then return nil, err end
    local line = ("Running stamp_revision %s -> %s"):format(show_rows(rows), show_rows(new_rows))
    self.out(ctx.offline and ("-- " .. line .. "\n") or (line .. "\n"))
    local ok, serr, errno, sqlstate = ctx:stamp(rows, new_rows, opts.purge)
    if not ok then return nil, serr, errno, sqlstate end
    return { rows = new_rows }
  end
  if opts.sql then
    local rows, to = {}, target
    if not opts.purge then
      rows, to = self:offline_start(target)
      if not rows then return nil, to end
    end
    target = to
    local ctx = runner.offline(self)
    self.vt:create(ctx.exec)
    return stamp_with(rows, ctx)
  end
  return self:with_conn(true, function(conn)
    local res, err, errno, sqlstate = conn:execute(self.vt.sql.create)
    if not res then return nil, err, errno, sqlstate end
    local rows
    rows, err, errno, sqlstate = self:read_rows(conn)
    if not rows then return nil, err, errno, sqlstate end
    if not opts.purge then
      local ok, cerr = g:check_rows(rows)
      if not ok then
        return nil, (cerr:gsub("; hint: .*$", "; hint: `fsdb stamp --purge " .. target
          .. "` empties the version table first, whatever it names"))
      end
    end
    return stamp_with(rows, runner.online(self, conn))
  end)
end

------------------------------------------------------------------------
-- Writing revisions
------------------------------------------------------------------------

local function load_schema(self)
  local s = self.env.schema
  if s == nil then
    return fail("%s/env.lua names no schema to compare; hint: set schema = \"myapp.schema\" (a module "
      .. "returning the declared schema) — without it autogenerate would see no changes at all", self.dir)
  end
  if type(s) == "string" then
    local ok, v = pcall(require, s)
    if not ok then return fail("cannot load the schema module '%s' named in env.lua: %s", s, tostring(v)) end
    s = v
  elseif type(s) == "function" then
    local ok, v = pcall(s)
    if not ok then return fail("schema() in %s/env.lua failed: %s", self.dir, tostring(v)) end
    s = v
  end
  if s == nil then
    return fail("the schema named in %s/env.lua is nil; hint: the module or function must return the schema",
      self.dir)
  end
  return s
end

local function autogen_module()
  local ok, autogen = pcall(require, "fsdb.migrate.autogen")
  if not ok then
    return fail("autogenerate is not available: %s", tostring(autogen):match("^[^\n]*"))
  end
  return autogen
end

local function same_set(a, b)
  if #a ~= #b then return false end
  local s = {}
  for _, v in ipairs(a) do s[v] = true end
  for _, v in ipairs(b) do
    if not s[v] then return false end
  end
  return true
end

-- The down_revision(s) of a new revision based on `head`.
function M:parent_of_new(head, splice)
  local g = self.graph
  head = head or "head"
  if head == "base" then return {} end
  if head == "head" then
    local heads = g:heads()
    if #heads > 1 then
      return fail("Multiple heads are present; please specify the head revision on which the new "
        .. "revision should be based, or perform a merge.; hint: the heads are %s; `fsdb merge heads` "
        .. "joins them, --head <rev> picks one", g:describe_list(heads))
    end
    return heads
  end
  local ids, err, code = g:resolve(head)
  if not ids then
    -- Adopting a database another tool (Alembic) migrated: the new
    -- revision may follow a revision the version table names.
    if code == "cant_locate" and script.valid_id(head) then
      -- A full id, or a unique partial one (4+ characters, as for any
      -- revision), of a row.
      local rows = self:with_conn(false, function(conn) return self:read_rows(conn) end)
      local found = {}
      for _, r in ipairs(rows or {}) do
        if r == head or (#head >= 4 and r:sub(1, #head) == head) then found[#found + 1] = r end
      end
      if #found == 1 then return { found[1] } end
    end
    return nil, err
  end
  if #ids ~= 1 then
    return fail("--head must name one revision ('%s' names %d)", head, #ids)
  end
  if not g:is_head(ids[1]) and not splice then
    return fail("Revision %s is not a head revision; please specify --splice to create a new branch "
      .. "from this revision", ids[1])
  end
  return ids
end

--- Compares the schema env.lua names with the database, which must be
--- at `expect` (a list of revision ids: the new revision's parents, or the
--- heads). Returns { diffs =, rows =, autogen = the module }.
-- syntax: result, err, errno, sqlstate = m:compare_schema(expect)
function M:compare_schema(expect)
  local autogen, err = autogen_module()
  if not autogen then return nil, err end
  local schema
  schema, err = load_schema(self)
  if not schema then return nil, err end
  local env = self.env
  return self:with_conn(false, function(conn)
    local rows, e, en, st = self:read_rows(conn)
    if not rows then return nil, e, en, st end
    -- A row naming no revision file is Flask-Migrate's "Can't locate
    -- revision", not "not up to date".
    local ok, cerr = self.graph:check_rows(rows)
    if not ok then return nil, cerr end
    if not same_set(rows, expect) then
      return fail(_M.NOT_UP_TO_DATE .. "; hint: the database is at %s but the comparison needs it at %s; "
        .. "run `fsdb upgrade` first so the comparison starts from the latest revision (`fsdb stamp` only "
        .. "if the schema already matches it)", show_rows(rows), show_rows(expect))
    end
    -- compare raises on a schema it cannot use (misuse): report it.
    local called, diffs, derr, errno, sqlstate = pcall(autogen.compare, conn, schema, {
      version_table = self.version_table,
      include_object = env.include_object,
      drop_tables = env.drop_tables and true or false,
      bind = self.bind,
      compare_type = env.compare_type,
      compare_default = env.compare_server_default,
      compare_comment = env.compare_comment,
    })
    if not called then
      return nil, (tostring(diffs):gsub("^.-:%d+: (fsdb:)", "%1"))
    end
    if not diffs then return nil, derr, errno, sqlstate end
    return { diffs = diffs, rows = rows, autogen = autogen }
  end)
end

--- The drift check (Alembic's `check`): what `fsdb migrate` would write,
--- writing nothing. The database must be at the heads.
-- syntax: result, err = m:check_schema()
-- result: { diffs = {…} (empty: in sync), up = the up() body or nil, rows = }
function M:check_schema()
  local res, err, errno, sqlstate = self:compare_schema(self.graph:heads())
  if not res then return nil, err, errno, sqlstate end
  local up
  if #res.diffs > 0 then up = res.autogen.render(res.diffs) end
  return { diffs = res.diffs, up = up, rows = res.rows }
end

--- Writes a new revision file.
-- syntax: result, err = m:revision{ message =, autogenerate =, head =, splice =,
--   depends_on =, branch_label =, rev_id = }
-- result: { revision =, path =, down_revision = {…}, diffs = autogenerate's
-- diffs or nil } or, when autogenerate finds no difference,
-- { no_changes = true, message = "No changes in schema detected.", diffs = {} }
-- (no file is written). diffs[i].description says what was detected,
-- diffs.notes what was deliberately left out.
function M:revision(o)
  o = o or {}
  local g = self.graph
  local downs, err = self:parent_of_new(o.head, o.splice)
  if not downs then return nil, err end
  local id = o.rev_id
  if id ~= nil then
    if not script.valid_id(id) then
      return fail("--rev-id must be 1 to 32 letters, digits or _ (got '%s')", tostring(id))
    end
    if g:node(id) then return fail("Revision %s is present already; hint: pick another --rev-id", id) end
  else
    repeat id = script.new_id() until not g:node(id)
  end
  local deps
  if o.depends_on then
    deps = {}
    for _, d in ipairs(type(o.depends_on) == "table" and o.depends_on or { o.depends_on }) do
      local n, derr = g:get(d)
      if not n then return nil, derr end
      deps[#deps + 1] = n.id
    end
  end
  local labels
  if o.branch_label then
    labels = type(o.branch_label) == "table" and o.branch_label or { o.branch_label }
    for _, l in ipairs(labels) do
      if g.labels[l] or g:node(l) then return fail("Branch name '%s' is already in use", l) end
    end
  end
  local up_body, down_body, notes, diffs
  if o.autogenerate then
    local result
    result, err = self:compare_schema(downs)
    if not result then return nil, err end
    diffs = result.diffs
    if #diffs == 0 then
      return { no_changes = true, message = _M.NO_CHANGES, diffs = diffs }
    end
    up_body, down_body, notes = result.autogen.render(diffs)
  end
  local ok
  ok, err = script.mkdir_p(self.dir .. "/versions")
  if not ok then return nil, err end
  local down_revision = downs
  if #downs == 0 then down_revision = nil elseif #downs == 1 then down_revision = downs[1] end
  local path
  path, err = script.write_revision(self.dir, {
    revision = id, down_revision = down_revision, branch_labels = labels, depends_on = deps,
    message = o.message, up_body = up_body, down_body = down_body, notes = notes,
  })
  if not path then return nil, err end
  ok, err = self:reload()
  if not ok then return nil, err end
  return { revision = id, path = path, down_revision = downs, diffs = diffs }
end

--- Writes a merge revision joining several revisions (default: the heads).
-- syntax: result, err = m:merge(revs, message, { rev_id = })
function M:merge(revs, message, o)
  o = o or {}
  local g = self.graph
  if revs == nil or (type(revs) == "table" and #revs == 0) then revs = { "heads" } end
  if type(revs) == "string" then revs = { revs } end
  local set, ids = {}, {}
  for _, r in ipairs(revs) do
    local got, err = g:resolve(r)
    if not got then return nil, err end
    for _, id in ipairs(got) do
      if not set[id] then
        set[id] = true
        ids[#ids + 1] = id
      end
    end
  end
  ids = g:sort(ids)
  if #ids < 2 then
    return fail("merge needs at least two revisions (got %s); hint: `fsdb heads` lists the heads — "
      .. "there is nothing to merge with one", graph_mod.format_ids(ids))
  end
  for _, a in ipairs(ids) do
    local anc = g:closure({ a })
    for _, b in ipairs(ids) do
      if a ~= b and anc[b] then
        return fail("Revision %s is an ancestor of %s; hint: merge only revisions on different branches", b, a)
      end
    end
  end
  local id = o.rev_id
  if id then
    if not script.valid_id(id) then return fail("--rev-id must be 1 to 32 letters, digits or _") end
    if g:node(id) then return fail("Revision %s is present already", id) end
  else
    repeat id = script.new_id() until not g:node(id)
  end
  local ok, err = script.mkdir_p(self.dir .. "/versions")
  if not ok then return nil, err end
  local path
  path, err = script.write_revision(self.dir, {
    revision = id, down_revision = ids, message = message or ("merge " .. table.concat(ids, ", ")),
    up_body = "    -- a merge point: nothing to do unless the branches conflict",
    down_body = "    -- a merge point: nothing to do",
  })
  if not path then return nil, err end
  ok, err = self:reload()
  if not ok then return nil, err end
  return { revision = id, path = path, down_revision = ids }
end

--- Closes the migration's connection.
-- syntax: m:close()
function M:close()
  if self.engine then
    self.engine:dispose()
    self.engine = nil
  end
end

------------------------------------------------------------------------
-- init
------------------------------------------------------------------------

--- Creates a migrations directory: DIR/env.lua, DIR/README, DIR/versions/.
-- syntax: ok, err = migrate.init(dir, out)
function _M.init(dir, out)
  dir = dir or _M.DEFAULT_DIR
  out = out or function(s) io.stdout:write(s) end
  if script.exists(dir) then
    local names = script.list_dir(dir)
    if names == nil or #names > 0 then
      return fail("Directory %s already exists and is not empty; hint: pick another directory with -d, "
        .. "or remove it first", dir)
    end
  end
  for _, d in ipairs({ dir, dir .. "/versions" }) do
    out(("Creating directory %s ...  "):format(d))
    local ok, err = script.mkdir_p(d)
    if not ok then out("FAILED\n") return nil, err end
    out("done\n")
  end
  for _, f in ipairs({ { "env.lua", script.ENV_TEMPLATE }, { "README", script.README_TEMPLATE } }) do
    local path = dir .. "/" .. f[1]
    out(("Generating %s ...  "):format(path))
    local ok, err = script.write_file(path, f[2])
    if not ok then out("FAILED\n") return nil, err end
    out("done\n")
  end
  out(("Please edit %s/env.lua (the database URL and the schema to compare) before proceeding.\n"):format(dir))
  return true
end

require("fsdb.migrate.listing").extend(M)

_M.graph = graph_mod
_M.script = script
return _M
