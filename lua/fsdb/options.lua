--- fsdb.options — the one table of options: names, defaults, what each
--- accepts and what it does, for the engine, its pool and the URL.
--
-- fsdb.engine validates with it and hands C a complete table (csrc/lengine.c
-- applies no default of its own); `fsdb options` prints it. URL options are
-- read by the URL parser (csrc/uri.c, which checks their grammar and reports
-- only what the URL says); they are listed here with the value used when the
-- URL does not set them, the only place those values are stated.

local _M = {}

local function whole(v)
  return type(v) == "number" and v == math.floor(v)
end

local function number_at_least(min, what)
  return function(v)
    if type(v) ~= "number" or v < min then return what end
  end
end

local function whole_at_least(min, what)
  return function(v)
    if not whole(v) or v < min then return what end
  end
end

local function boolean(v)
  if type(v) ~= "boolean" then return "a boolean" end
end

local ISOLATION = { ["READ UNCOMMITTED"] = true, ["READ COMMITTED"] = true,
                    ["REPEATABLE READ"] = true, ["SERIALIZABLE"] = true }

--- Engine and pool options, in the order they are documented. Each has
--- name, default (nil: not set), check (nil or what the value should be)
--- and doc.
_M.engine = {
  { name = "pool_size", default = 5, check = whole_at_least(0, "a whole number >= 0"),
    doc = "connections the pool keeps open" },
  { name = "max_overflow", default = 10, check = whole_at_least(-1, "a whole number >= -1 (-1 = unlimited)"),
    doc = "connections opened beyond pool_size under load, closed on return" },
  { name = "pool_timeout", default = 30, check = number_at_least(0, "a number of seconds >= 0"),
    doc = "seconds a checkout waits for a free connection" },
  { name = "pool_recycle", default = -1, check = function(v)
      if type(v) ~= "number" then return "a number of seconds (-1 = never)" end
    end, doc = "seconds after which a connection is replaced (-1: never)" },
  { name = "pool_pre_ping", default = true, check = boolean,
    doc = "ping a connection idle longer than pool_pre_ping_window before handing it out" },
  { name = "pool_pre_ping_window", default = 1, check = number_at_least(0, "a number of seconds >= 0"),
    doc = "seconds of idleness after which pool_pre_ping pings" },
  { name = "pool_reset_on_return", default = "rollback", check = function(v)
      if v ~= "rollback" and v ~= "commit" and v ~= "reset" and v ~= false then
        return '"rollback", "commit", "reset" or false'
      end
    end, doc = "what a returned connection gets: ROLLBACK, COMMIT, a full reset, or nothing" },
  { name = "pool_leak_threshold", default = 0, check = number_at_least(0, "a number of seconds >= 0 (0 = off)"),
    doc = "warn on standard error when a connection was held longer (0: off)" },
  { name = "pool_use_lifo", default = false, check = boolean,
    doc = "hand out the most recently returned connection first" },
  { name = "isolation_level", check = function(v)
      if type(v) ~= "string" or not ISOLATION[v:upper():gsub("_", " ")] then
        return '"READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ" or "SERIALIZABLE"'
      end
    end, doc = "transaction isolation of every connection (unset: the server's)" },
  { name = "init_command", check = function(v)
      if type(v) ~= "string" then return "a string of SQL" end
    end, doc = "SQL run on each new connection" },
  { name = "on_connect", check = function(v)
      if type(v) ~= "function" then return "a function(conn)" end
    end, doc = "function(conn) run on each new connection" },
  { name = "executemany_mode", default = "auto", check = function(v)
      if v ~= "auto" and v ~= "values" and v ~= "each" then return '"auto", "values" or "each"' end
    end, doc = "executemany: array binding when the server has it, multi-row INSERT, or one execute per set" },
  { name = "statement_cache_size", default = 64, check = whole_at_least(1, "a whole number >= 1"),
    doc = "prepared statements kept per connection" },
  { name = "max_statement_time", default = 0, check = function(v)
      if type(v) ~= "number" or v < 0 or v > 31536000 then return "a number of seconds >= 0 (0 = no limit)" end
    end, doc = "MariaDB's max_statement_time for every statement, in seconds (0 = no limit); also a per-call option" },
  { name = "wsrep_sync_wait", check = function(v)
      if type(v) ~= "number" or not whole(v) or v < 0 or v > 15 then return "a whole number 0-15" end
    end, doc = "Galera's wsrep_sync_wait on each connection, for causal reads (unset: the server's)" },
  { name = "commit_markers", default = false, check = boolean,
    doc = "write a marker row (table fsdb_commit_markers) in each transaction, so a COMMIT"
      .. " whose connection was lost is known as committed or not" },
  { name = "retry_reads", default = true, check = boolean,
    doc = "run a plain SELECT (engine:execute/query) once more when its connection was lost (a restart)" },
  { name = "replicas", check = function(v)
      if type(v) ~= "table" or #v == 0 then return "a non-empty list of replica URLs" end
      local n = 0
      for _ in pairs(v) do n = n + 1 end
      if n ~= #v then return "a non-empty list of replica URLs" end
      for _, u in ipairs(v) do
        if type(u) ~= "string" then return "a non-empty list of replica URLs" end
      end
    end, doc = "URLs of read replicas: plain SELECTs outside a transaction go to them (unset: none)" },
  { name = "replica_max_lag", default = 10, check = function(v)
      if type(v) ~= "number" or (v < 0 and v ~= -1) then return "a number of seconds >= 0, or -1 (no check)" end
    end, doc = "seconds of replication lag that take a replica out of rotation (-1: lag not checked)" },
  { name = "replica_check_interval", default = 1, check = number_at_least(0, "a number of seconds >= 0"),
    doc = "seconds between two lag checks of one replica" },
  { name = "replica_wait_timeout", default = 1, check = number_at_least(0, "a number of seconds >= 0"),
    doc = "seconds a session's replica read waits for its last write (MASTER_GTID_WAIT) before going to the primary" },
  { name = "transport", default = "libmariadb", check = function(v)
      if v ~= "libmariadb" and v ~= "cosocket" and v ~= "cqueues" then
        return '"libmariadb", "cosocket" or "cqueues"'
      end
    end, doc = "libmariadb (blocking, the default), or the protocol codec over OpenResty cosockets or lua-cqueues" },
  { name = "echo", default = false, check = function(v)
      if type(v) ~= "boolean" and type(v) ~= "function" then
        return "a boolean, or a function(level, message) to log to"
      end
    end, doc = "log each statement: SQL, elapsed time, row count (a function: the logger)" },
  { name = "echo_parameters", default = false, check = boolean,
    doc = "show the parameters in echo lines (hidden by default)" },
  { name = "logger", check = function(v)
      if type(v) ~= "function" and type(v) ~= "table" and type(v) ~= "userdata" then
        return "a function(level, message), ngx.log or an object with debug/info/warn/error methods"
      end
    end, doc = "where echo lines and handler errors go (unset: ngx.log under OpenResty, else standard error)" },
}

--- URL options (mysql://user:password@host:port/database?name=value),
--- with the value used when the URL does not set them.
_M.url = {
  { name = "host", default = "localhost", doc = "server host; localhost with an explicit port is TCP" },
  { name = "port", default = 3306, doc = "server TCP port" },
  { name = "unix_socket", doc = "path of the server's socket (instead of host and port)" },
  { name = "charset", default = "utf8mb4", doc = "connection character set (checked when parsed)" },
  { name = "collation", doc = "connection collation (unset: the charset's default)" },
  { name = "connect_timeout", default = 10, doc = "seconds to connect" },
  { name = "read_timeout", default = 300, doc = "seconds to wait for a reply" },
  { name = "write_timeout", default = 60, doc = "seconds to wait to send" },
  { name = "ssl_mode", doc = "DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY" },
  { name = "ssl_ca", doc = "CA file for VERIFY_CA/VERIFY_IDENTITY" },
  { name = "ssl_capath", doc = "directory of CA files" },
  { name = "ssl_cert", doc = "client certificate" },
  { name = "ssl_key", doc = "client key" },
  { name = "ssl_cipher", doc = "allowed TLS ciphers" },
  { name = "auth_plugins", doc = "authentication plugins allowed beyond the default ones" },
  { name = "local_infile", default = false, doc = "allow LOAD DATA LOCAL INFILE" },
}

local BY_NAME = {}
for _, o in ipairs(_M.engine) do BY_NAME[o.name] = o end

local URL_FILLED = { host = true, port = true, charset = true, connect_timeout = true,
                     read_timeout = true, write_timeout = true }

--- The URL defaults the C core fills in what a URL leaves out (host,
--- port, charset, timeouts), as a new table.
-- syntax: t = options.url_defaults()
function _M.url_defaults()
  local t = {}
  for _, o in ipairs(_M.url) do
    if URL_FILLED[o.name] then t[o.name] = o.default end
  end
  return t
end

--- The engine option names, sorted, as one string.
-- syntax: s = options.known()
function _M.known()
  local names = {}
  for name in pairs(BY_NAME) do names[#names + 1] = name end
  table.sort(names)
  return table.concat(names, ", ")
end

--- The default of an engine option (nil when unset by default).
-- syntax: v = options.default(name)
function _M.default(name)
  local o = BY_NAME[name]
  return o and o.default
end

--- Checks an engine options table and returns a new one with every
--- default filled in (isolation_level normalised). Raises, at level, on
--- a value that is not a table, an unknown name, NaN or an infinity, or a
--- value the option does not accept, naming the option.
-- syntax: full = options.check_engine(options_or_nil, level)
function _M.check_engine(options, level)
  level = (level or 1) + 1
  if options == nil then options = {} end
  if type(options) ~= "table" then
    error("fsdb: engine options must be a table, got " .. type(options), level)
  end
  local full = {}
  for name, value in pairs(options) do
    local o = BY_NAME[name]
    if not o then
      error(("fsdb: unknown engine option '%s' (known: %s)"):format(tostring(name), _M.known()), level)
    end
    -- NaN and ±inf pass "v < 0" tests and end as garbage in C (an inf
    -- pool_size became -2147483648): refused for every option.
    if type(value) == "number" and (value ~= value or value == math.huge or value == -math.huge) then
      error(("fsdb: bad value for engine option '%s' (expected a finite number, got %s)")
        :format(name, value ~= value and "NaN" or value > 0 and "inf" or "-inf"), level)
    end
    local want = o.check(value)
    if want then
      error(("fsdb: bad value for engine option '%s' (expected %s)"):format(name, want), level)
    end
    full[name] = value
  end
  for _, o in ipairs(_M.engine) do
    if full[o.name] == nil then full[o.name] = o.default end
  end
  if full.isolation_level then
    full.isolation_level = full.isolation_level:upper():gsub("_", " ")
  end
  return full
end

local function show(v)
  if v == nil then return "-" end
  if type(v) == "string" then return ('"%s"'):format(v) end
  return tostring(v)
end

--- The table as text: one line per option (name, default, what it does).
-- syntax: text = options.describe()
function _M.describe()
  local out = { "Engine and pool options (fsdb.engine.new(url, options), engine_options):" }
  local function rows(list)
    for _, o in ipairs(list) do
      out[#out + 1] = ("  %-22s %-12s %s"):format(o.name, show(o.default), o.doc)
    end
  end
  rows(_M.engine)
  out[#out + 1] = ""
  out[#out + 1] = "URL options (mysql://user:password@host:port/database?name=value):"
  rows(_M.url)
  return table.concat(out, "\n") .. "\n"
end

return _M
