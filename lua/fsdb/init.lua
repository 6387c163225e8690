--- fsdb — a database layer for Lua over MySQL and MariaDB.
--
--   local fsdb = require("fsdb")
--   local engine = fsdb.engine.new("mysql://user:pass@127.0.0.1/shop")
--   local rows = assert(engine:execute("SELECT id, name FROM products WHERE price < ?", 100))
--
--   local db = fsdb.new{ url = nil, binds = { auth = true } }  -- DATABASE_URL_AUTH
--   local s = db:session()

local core = require("fsdb.core")

local _M = {
  _VERSION = core.version,
  --- SQL NULL: a light userdata equal to cjson.null and ngx.null.
  null = core.null,
  engine = require("fsdb.engine"),
  config = require("fsdb.config"),
  client_version = core.client_version,
}

-- Loaded on first use: a program that only runs queries should not pay for
-- compiling the session layer at start-up (bench: start to first query).
local LAZY = { session = "fsdb.session", sql = "fsdb.sql", url = "fsdb.url", migrate = "fsdb.migrate",
               events = "fsdb.events" }
setmetatable(_M, {
  __index = function(t, k)
    local name = LAZY[k]
    if name then
      local mod = require(name)
      rawset(t, k, mod)
      return mod
    end
    if k == "all" then
      --- Every row, said on purpose: s:delete(tbl, fsdb.all) (fsdb.sql.all).
      local all = require("fsdb.sql").all
      rawset(t, k, all)
      return all
    end
  end,
})

local engine_mod = _M.engine
local function session_mod() return _M.session end

--- True for SQL NULL as fsdb returns it (and for nil).
-- syntax: b = fsdb.is_null(v)
function _M.is_null(v)
  return v == nil or v == core.null
end

-- A db: the engines of one application (Flask-SQLAlchemy's SQLALCHEMY_BINDS).
local DB = {}
DB.__index = DB

local NEW_KEYS = { url = true, binds = true, engine_options = true }

-- An engine error re-raised for a bind, without engine.new's position.
local function bind_error(name, err)
  err = tostring(err):gsub("^.-:%d+: (fsdb:)", "%1")
  return ("fsdb: bind '%s': %s"):format(name, (err:gsub("^fsdb: ", "")))
end

-- engine_options with the bind's own options laid over them.
local function bind_options(base, spec)
  local opts = {}
  for k, v in pairs(base or {}) do opts[k] = v end
  for k, v in pairs(spec) do
    if k ~= "url" then opts[k] = v end
  end
  return opts
end

--- Creates a db: the default engine (url; nil = from the environment) and
--- one engine per bind. binds maps a name to a URL, to true (the URL from
--- DATABASE_URL_<NAME>, the environment first, then .env) or to a table
--- { url = …, <engine options> } laid over engine_options (no url: from
--- DATABASE_URL_<NAME> too). A bind never silently goes missing: an unset
--- variable raises naming it, and so does a nil URL. No connection is
--- made until a session (or engine) uses one. The default engine is
--- db.engine, also db.engines.default; binds.default, when given, is its
--- URL (without url) or a table of its options laid over engine_options
--- ({url = primary, replicas = {…}}; its url only without url).
--- db.engines[name] raises for an unknown name.
-- syntax: db = fsdb.new{ url = url_or_nil, binds = { name = url | true | {url = …, options…} }, engine_options = {…} }
function _M.new(config)
  if config == nil then config = {} end
  if type(config) ~= "table" then
    error("fsdb: bad argument #1 to 'new' (table expected, got " .. type(config) .. ")", 2)
  end
  for k in pairs(config) do
    if not NEW_KEYS[k] then
      error(("fsdb: unknown fsdb.new option '%s' (known: binds, engine_options, url)"):format(tostring(k)), 2)
    end
  end
  local binds = config.binds
  if binds ~= nil and type(binds) ~= "table" then
    error("fsdb: binds must be a table of name = URL or options, got " .. type(binds), 2)
  end
  local base = config.engine_options
  if base ~= nil and type(base) ~= "table" then
    error("fsdb: engine_options must be a table, got " .. type(base), 2)
  end

  -- binds.default: the default engine's own URL and options (replicas…),
  -- when the top-level url does not give the URL already.
  local main_url, main_opts = config.url, base
  local dspec = binds and binds.default
  if dspec ~= nil then
    if type(dspec) == "table" and not (config.url ~= nil and dspec.url ~= nil) then
      if dspec.url ~= nil and type(dspec.url) ~= "string" then
        error(("fsdb: bind 'default': url must be a string, got %s"):format(type(dspec.url)), 2)
      end
      main_url, main_opts = config.url or dspec.url, bind_options(base, dspec)
    elseif type(dspec) == "string" and config.url == nil then
      main_url = dspec
    else
      error("fsdb: bind name 'default' is reserved for the main url", 2)
    end
  end
  local ok, default = pcall(engine_mod.new, main_url, main_opts)
  if not ok then
    error((tostring(default):gsub("^.-:%d+: (fsdb:)", "%1")), 2)
  end
  local engines = { default = default }
  local names = {}
  for name in pairs(binds or {}) do
    if name ~= "default" then names[#names + 1] = name end
  end
  table.sort(names, function(a, b) return tostring(a) < tostring(b) end)
  for _, name in ipairs(names) do
    local spec = binds[name]
    if type(name) ~= "string" or name == "" then
      error("fsdb: bind names must be non-empty strings, got " .. tostring(name), 2)
    end
    local url, opts
    if type(spec) == "string" then
      url, opts = spec, base
    elseif spec == true then
      opts = base
    elseif type(spec) == "table" then
      if spec.url ~= nil and type(spec.url) ~= "string" then
        error(("fsdb: bind '%s': url must be a string, got %s"):format(name, type(spec.url)), 2)
      end
      url, opts = spec.url, bind_options(base, spec)
    else
      error(("fsdb: bind '%s' must be a URL, true (from %s) or a table of options, got %s")
        :format(name, _M.config.bind_var(name), type(spec)), 2)
    end
    if url == nil then
      local err
      url, err = _M.config.bind_url(name)
      if not url then error(err, 2) end
      if not (opts and opts.replicas) then
        local urls = _M.config.replica_urls(name)
        if urls then
          opts = bind_options(opts, {})
          opts.replicas = urls
        end
      end
    end
    local made, engine = pcall(engine_mod.new, url, opts)
    if not made then
      error(bind_error(name, engine), 2)
    end
    engines[name] = engine
  end

  setmetatable(engines, {
    __index = function(t, name)
      error(session_mod().unknown_bind(name, t), 2)
    end,
  })
  return setmetatable({ engine = default, engines = engines }, DB)
end

--- The engine of a bind (nil or "default": the default engine); raises
--- naming an unknown bind.
-- syntax: engine = db:get_engine(name)
function DB:get_engine(name)
  if name == nil then return self.engine end
  local engine = rawget(self.engines, name)
  if engine == nil then
    error(session_mod().unknown_bind(name, self.engines), 2)
  end
  return engine
end

--- The bind names, sorted ("default" included).
-- syntax: names = db:bind_names()
function DB:bind_names()
  local names = {}
  for name in pairs(self.engines) do names[#names + 1] = name end
  table.sort(names)
  return names
end

--- A new session over every engine of the db (lazy: no connection yet).
-- syntax: s = db:session()
function DB:session()
  return session_mod().new(self)
end

--- A scoped-session registry for this db (see fsdb.session.scoped).
-- syntax: registry = db:scoped(scopefunc)
function DB:scoped(scopefunc)
  local ok, registry = pcall(session_mod().scoped, function() return session_mod().new(self) end, scopefunc)
  if not ok then error(registry, 2) end
  return registry
end

--- Closes the idle connections of every engine.
-- syntax: db:dispose()
function DB:dispose()
  for _, engine in pairs(self.engines) do
    engine:dispose()
  end
end

function DB:__tostring()
  return "fsdb.db (" .. table.concat(self:bind_names(), ", ") .. ")"
end

_M.DB = DB
return _M
