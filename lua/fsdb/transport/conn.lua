--- fsdb.transport.conn — connections over the protocol codec.
--
-- The C codec (csrc/codec.c, csrc/lcodec.c) turns packets into values and
-- values into packets; this module moves the bytes through a socket with
-- OpenResty's cosocket interface (ngx.socket.tcp, or
-- fsdb.transport.cqueues for plain Lua), so a wait for the server yields to
-- the event loop instead of blocking it. A "link" is one server
-- connection (socket, codec, statement cache); a "conn" is a checked-out
-- link with the same methods and return values as the C fsdb.conn.

local core = require("fsdb.core")
local sqltext = require("fsdb.sqltext")

local _M = {}

local READ_CHUNK = 65536

local IN_TRANS = 0x0001
local NO_BACKSLASH_ESCAPES = 0x0200

-- one flag of the server status (no bit operators in Lua 5.1/LuaJIT)
local function has(flags, bit) return math.floor(flags / bit) % 2 == 1 end

-- Handshake collation ids (each charset's default collation, as
-- Connector/C sends them); other charsets follow with SET NAMES.
local CHARSET_IDS = {
  utf8mb4 = 45, utf8mb3 = 33, utf8 = 33, latin1 = 8, latin2 = 9, ascii = 11,
  binary = 63, cp1250 = 26, cp1251 = 51, cp1256 = 57, cp1257 = 59, greek = 25,
  hebrew = 16, koi8r = 7, koi8u = 22, sjis = 13, ujis = 12, euckr = 19, gbk = 28,
  gb2312 = 24, big5 = 1, tis620 = 18, cp850 = 4, cp852 = 40, cp866 = 36, macroman = 39,
}

local TLS_MISSING = "TLS/SSL error: SSL is required, but the server does not support it (ssl_mode=%s)"
local TOO_BIG = "the statement needs a %d-byte packet, more than the server's max_allowed_packet (%d bytes)"

local function fail(code, sqlstate, msg, secret)
  return core.codec_error(code, sqlstate, msg, secret)
end

-- ---- links ----

local Link = {}
Link.__index = Link

--- The server's status flags of the last reply.
function Link:status()
  return (self.codec:status())
end

function Link:no_backslash_escapes()
  return has(self:status(), NO_BACKSLASH_ESCAPES)
end

-- Lost: the socket is closed and the link is never used again.
function Link:lost(why, during)
  self.dead = true
  if self.sock then
    self.sock:close()
  end
  if why == "timeout" then
    return fail(2013, "HY000", ("Lost connection to server %s (%s timeout)"):format(
      during or "during query", self.waiting or "read"))
  end
  return fail(2013, "HY000", ("Lost connection to server %s (%s)"):format(during or "during query",
    tostring(why)))
end

-- The socket's timeouts: the URL's (fsdb.options' when it gives none,
-- filled at parse; until logged in, reads wait connect_timeout, as on
-- Connector/C), each cut to what is left of the checkout's time
-- (pool_timeout) while the pool has set one. false: no time is left.
function Link:bound()
  local u, d, ms = self.cfg.url, self.deadline, math.huge
  if d then
    ms = math.ceil((d - self.sched.now()) * 1000)
    if ms <= 0 then return false end
  end
  local read = self.logged_in and u.read_timeout or u.connect_timeout
  self.sock:settimeouts(math.min(u.connect_timeout * 1000, ms), math.min(u.write_timeout * 1000, ms),
    math.min(read * 1000, ms))
  return true
end

--- The pool's time limit for what the link does next (a checkout's
--- connect, ping and on_connect), or nil to go back to the URL's timeouts.
function Link:limit(deadline)
  self.deadline = deadline
  if self.sock then self:bound() end
end

function Link:send(bytes)
  if self.deadline and not self:bound() then return self:lost("timeout") end
  self.waiting = "write"
  local ok, err = self.sock:send(bytes)
  self.waiting = nil
  if not ok then
    return self:lost(err)
  end
  return true
end

-- Calls codec:method(...) until it has a whole answer, feeding it what the
-- socket delivers meanwhile.
function Link:await(method, ...)
  local codec, sock = self.codec, self.sock
  local f = codec[method]
  while true do
    local a, b, c, d = f(codec, ...)
    if a ~= false then
      return a, b, c, d
    end
    if self.deadline and not self:bound() then return self:lost("timeout") end
    self.waiting = "read"
    local data, err = sock:receiveany(READ_CHUNK)
    self.waiting = nil
    if not data then
      return self:lost(err)
    end
    codec:feed(data)
  end
end

local function is_disconnect(errno)
  return errno == 2006 or errno == 2013 or errno == 2027 or errno == 2055 or errno == 4031
    or errno == 1927 or errno == 1053 or errno == 2002 or errno == 2003
end

--- Runs one command whose reply is an OK/ERR or a result set.
function Link:simple(cmd, arg)
  local ok, err, errno, state = self:send(self.codec:command(cmd, arg))
  if not ok then return nil, err, errno, state end
  local res
  res, err, errno, state = self:await("read", {}, false, false)
  if not res and is_disconnect(errno) then self.dead = true end
  return res, err, errno, state
end

local function tls_wanted(u)
  local m = u.ssl_mode
  if m == "DISABLED" then return false end
  if m == nil then
    return (u.ssl_ca or u.ssl_capath or u.ssl_cert or u.ssl_key or u.ssl_cipher) and "preferred" or false
  end
  if m == "PREFERRED" then return "preferred" end
  return "required"
end

-- The auth-plugin rules of the libmariadb path (csrc/auth.c): by default
-- only plugins that send a proof, never the password; the URL option
-- auth_plugins replaces the list, and may name a plugin that hands the
-- password over only on a channel verified before the login
-- (ssl_mode=VERIFY_IDENTITY, or a unix socket). The codec answers
-- mysql_native_password, client_ed25519 and caching_sha2_password.
local SAFE_PLUGINS = "mysql_native_password,client_ed25519"
local SUPPORTED = { mysql_native_password = true, client_ed25519 = true, caching_sha2_password = true }
local EXPOSING = {
  mysql_clear_password = "sends the password in clear text",
  dialog = "sends the password in clear text",
  sha256_password = "sends the password in clear text over TLS, else encrypted to an RSA key the server sends",
  caching_sha2_password = "sends the password in clear text over TLS, else encrypted to an RSA key the "
    .. "server sends (its full authentication)",
}
local PLUGIN_NOT_ALLOWED = 5010 -- Connector/C's CR_PLUGIN_NOT_ALLOWED

local function channel_verified(u)
  return u.ssl_mode == "VERIFY_IDENTITY" or u.unix_socket ~= nil
end

-- The allowed plugins as a set, or nil, err, errno, sqlstate for a list
-- that would expose the password on an unverified channel.
local function allowed_plugins(u)
  local list, set = u.auth_plugins or SAFE_PLUGINS, {}
  for name in tostring(list):gmatch("[^,]+") do
    if EXPOSING[name] and not channel_verified(u) then
      return fail(9001, nil, ("auth_plugins lists %s, which %s: allowed only with ssl_mode=VERIFY_IDENTITY "
        .. "or over a unix socket"):format(name, EXPOSING[name]))
    end
    set[name] = true
  end
  return set, list
end

local function refuse_plugin(u, name, list)
  local sends = EXPOSING[name]
  if sends and not channel_verified(u) then
    return fail(PLUGIN_NOT_ALLOWED, "HY000", ("the server asked for authentication plugin '%s', refused "
      .. "before sending the password: it %s; hint: if the server is meant to use it, connect with "
      .. "ssl_mode=VERIFY_IDENTITY (or over a unix socket) and add auth_plugins=%s to the URL")
      :format(name, sends, name))
  end
  if not SUPPORTED[name] then
    return fail(PLUGIN_NOT_ALLOWED, "HY000", ("the server asked for authentication plugin '%s', which "
      .. "the %s transport does not speak (it speaks mysql_native_password, client_ed25519 and "
      .. "caching_sha2_password), refused before sending the password; hint: use the libmariadb "
      .. "transport for this account"):format(name, "codec"))
  end
  return fail(PLUGIN_NOT_ALLOWED, "HY000", ("the server asked for authentication plugin '%s', which "
    .. "auth_plugins does not allow (allowed: %s), refused before sending the password; hint: add it "
    .. "to auth_plugins in the URL if the account uses it%s"):format(name, list,
    sends and ("; note: it " .. sends) or ""))
end

-- Logs in: handshake, TLS, the auth plugin exchange.
function Link:login(cfg)
  local u, codec = cfg.url, self.codec
  local hs, err, errno, state = self:await("handshake")
  if not hs then
    return nil, err, errno, state
  end
  if not hs.protocol_41 then
    return fail(2027, "08S01", "the server is too old (no protocol 4.1 authentication)")
  end
  -- MariaDB prefixes "5.5.5-" for old clients; Connector/C strips it
  self.server_version = hs.server_version:gsub("^5%.5%.5%-", "")
  self.thread_id = hs.thread_id
  self.bulk = hs.bulk
  local charset_id = CHARSET_IDS[u.charset:lower()] or 45
  local want_tls = not self.unix and tls_wanted(u)
  local secure = self.unix -- a unix socket is local: secure, like the server says
  if want_tls and hs.ssl then
    local ok, e = self:send(codec:ssl_request(charset_id, u.database ~= nil))
    if not ok then return nil, e end
    local verify = u.ssl_mode == "VERIFY_CA" or u.ssl_mode == "VERIFY_IDENTITY" or u.ssl_ca ~= nil
      or u.ssl_capath ~= nil
    local shake_ok, why
    if self.sched.name == "cosocket" then
      -- nginx verifies against lua_ssl_trusted_certificate (nginx.conf), and
      -- checks the host name only when given one: VERIFY_CA passes none.
      if u.ssl_cert or u.ssl_key then
        self.dead = true
        self.sock:close()
        return fail(2026, "HY000", "TLS/SSL error: client certificates (ssl_cert, ssl_key) are not "
          .. "available on cosockets of this nginx Lua module; hint: use the blocking or "
          .. "worker-thread mode for X509 accounts")
      end
      shake_ok, why = self.sock:sslhandshake(nil, u.ssl_mode == "VERIFY_IDENTITY" and u.host or nil, verify)
    else
      shake_ok, why = self.sock:sslhandshake(nil, u.host, verify, {
        ca = u.ssl_ca, capath = u.ssl_capath, cert = u.ssl_cert, key = u.ssl_key,
        cipher = u.ssl_cipher, verify_name = u.ssl_mode == "VERIFY_IDENTITY",
      })
    end
    if not shake_ok then
      self.dead = true
      self.sock:close()
      return fail(2026, "HY000", "TLS/SSL error: " .. tostring(why))
    end
    self.tls = true
    secure = u.ssl_mode == "VERIFY_IDENTITY"
  elseif want_tls == "required" then
    return fail(2026, "HY000", TLS_MISSING:format(u.ssl_mode))
  end
  local password = u.password or ""
  local allowed, list = allowed_plugins(u)
  if not allowed then
    self.dead = true
    self.sock:close()
    return nil, list, 9001, "HY000"
  end
  -- The first answer: to the handshake's plugin when allowed; otherwise a
  -- native proof (a hash, never the password), and the server switches.
  local plugin = hs.plugin
  if not (allowed[plugin] and SUPPORTED[plugin]) or plugin == "client_ed25519" then
    plugin = "mysql_native_password"
  end
  local ok, e2, n2, s2 = self:send(codec:login(u.user, password, u.database, plugin, charset_id))
  if not ok then return nil, e2, n2, s2 end
  while true do
    local r, a, b, c = self:await("auth")
    if r == true then
      break
    elseif r == "switch" then
      if not (allowed[a] and SUPPORTED[a]) then
        self.dead = true
        self.sock:close()
        return refuse_plugin(u, a, list)
      end
      ok, e2 = self:send(codec:auth_reply(a, password))
      if not ok then return nil, e2 end
    elseif r == "full" then
      -- caching_sha2_password wants the password itself: only to a server
      -- whose identity was verified (or over a unix socket), and only when
      -- the URL opts in (auth_plugins), as on the libmariadb path.
      if not (secure and channel_verified(u) and allowed.caching_sha2_password) then
        self.dead = true
        self.sock:close()
        return fail(2061, "HY000", "caching_sha2_password asks for the password in full; this is "
          .. "only sent with auth_plugins=caching_sha2_password and ssl_mode=VERIFY_IDENTITY (or a "
          .. "unix socket); hint: log in once with the mysql client to fill the server's cache, or "
          .. "use mysql_native_password")
      end
      ok, e2 = self:send(codec:auth_reply(nil, password .. "\0"))
      if not ok then return nil, e2 end
    else
      self.dead = true
      if self.sock then self.sock:close() end
      return r, a, b, c
    end
  end
  if u.ssl_mode and (u.ssl_mode == "REQUIRED" or u.ssl_mode == "VERIFY_CA" or u.ssl_mode == "VERIFY_IDENTITY")
    and not self.tls and not self.unix then
    return fail(2026, "HY000", TLS_MISSING:format(u.ssl_mode))
  end
  return true
end

local function setup(link, sql)
  local res, err, errno, state = link:simple("query", sql)
  if not res then return nil, err, errno, state end
  return res
end

-- What the pool re-applies after COM_RESET_CONNECTION too (conn.c's
-- apply_session_settings): the collation and the isolation level.
function Link:session_settings(cfg)
  local u = cfg.url
  local cs = u.charset
  if u.collation then
    local ok, err, errno, state = setup(self, ("SET NAMES %s COLLATE %s"):format(cs, u.collation))
    if not ok then return nil, err, errno, state end
  elseif not CHARSET_IDS[cs:lower()] then
    local ok, err, errno, state = setup(self, ("SET NAMES %s"):format(cs))
    if not ok then return nil, err, errno, state end
  end
  if cfg.isolation_level then
    local ok, err, errno, state = setup(self, "SET SESSION TRANSACTION ISOLATION LEVEL " .. cfg.isolation_level)
    if not ok then return nil, err, errno, state end
  end
  -- the engine options max_statement_time (whole milliseconds) and
  -- wsrep_sync_wait, as conn.c sets them
  local ms = math.floor((cfg.max_statement_time or 0) * 1000 + 0.5)
  if ms > 0 then
    local ok, err, errno, state = setup(self, "SET SESSION max_statement_time = " .. sqltext.number(ms / 1000))
    if not ok then return nil, err, errno, state end
  end
  if cfg.wsrep_sync_wait then
    local ok, err, errno, state = setup(self, "SET SESSION wsrep_sync_wait = " .. sqltext.number(cfg.wsrep_sync_wait))
    if not ok then return nil, err, errno, state end
  end
  -- An engine with replicas: COMMIT's OK packet then carries its GTID
  -- (codec:tracked_gtid), as conn.c asks; a server that refuses costs
  -- only this query, and a session falls back to SELECT @@last_gtid.
  if cfg.track_gtid then
    local ok, err, errno, state = setup(self, "SET SESSION session_track_system_variables = "
      .. "CONCAT_WS(',', NULLIF(@@session_track_system_variables, ''), 'last_gtid')")
    if not ok and self.dead then return nil, err, errno, state end
  end
  return true
end

--- Opens a link: connect, log in, set the session up; every wait ends by
--- deadline (the checkout's, sched.now() time) when one is given.
-- syntax: link, err, errno, sqlstate = conn.open(cfg, sched, pool_name, deadline)
function _M.open(cfg, sched, pool_name, deadline)
  local u = cfg.url
  local link = setmetatable({ codec = core.codec(), stmts = {}, nstmts = 0, tick = 0,
    created = sched.now(), sched = sched, cfg = cfg, deadline = deadline }, Link)
  local sock = sched.tcp()
  local opts = pool_name and { pool = pool_name } or nil
  link.sock = sock
  local ok, err
  if not link:bound() then
    sock:close()
    return fail(2003, "HY000", ("Can't connect to server on '%s' (timeout)"):format(u.host or u.unix_socket))
  end
  if u.unix_socket then
    link.unix = true
    ok, err = sock:connect("unix:" .. u.unix_socket, opts)
    if not ok then
      sock:close()
      return fail(2002, "HY000", ("Can't connect to local server through socket '%s' (%s)"):format(
        u.unix_socket, tostring(err)))
    end
  else
    ok, err = sock:connect(u.host, u.port, opts)
    if not ok then
      sock:close()
      return fail(2003, "HY000", ("Can't connect to server on '%s' (%s)"):format(u.host, tostring(err)))
    end
  end
  return _M.start(link, cfg)
end

-- Logs a freshly connected link in and sets its session up.
function _M.start(link, cfg)
  local pw = cfg.url.password
  local ok, err, errno, state = link:login(cfg)
  if not ok then
    if link.sock then link.sock:close() end
    link.dead = true
    return core.codec_error(errno or 2013, state, (tostring(err):gsub("^fsdb: ", "")), pw)
  end
  link.logged_in = true
  link:bound()
  if cfg.init_command then
    ok, err, errno, state = setup(link, cfg.init_command)
    if not ok then link:quit(); return nil, err, errno, state end
  end
  ok, err, errno, state = link:session_settings(cfg)
  if not ok then link:quit(); return nil, err, errno, state end
  local res
  res, err, errno, state = link:simple("query", "SELECT @@SESSION.wait_timeout, @@SESSION.max_allowed_packet")
  if not res then link:quit(); return nil, err, errno, state end
  link.idle_limit = tonumber(res[1] and res[1]["@@SESSION.wait_timeout"]) or 0
  link.max_packet = tonumber(res[1] and res[1]["@@SESSION.max_allowed_packet"]) or 0
  link.codec_ok = true
  return link
end

--- Polite close: COM_QUIT, then the socket.
function Link:quit()
  if not self.dead and self.sock then
    local ok, bytes = pcall(self.codec.command, self.codec, "quit")
    if ok then self.sock:send(bytes) end
  end
  self.dead = true
  if self.sock then self.sock:close() end
end

--- Forgets the link without a word to the server (finalizers).
function Link:drop()
  self.dead = true
  if self.sock then self.sock:close() end
end

-- ---- prepared statements ----

local function scan(sql, nbe)
  local found = core.placeholders(sql, nbe)
  local style, names = nil, nil
  for i = 1, #found do
    local p = found[i]
    local s = p[3] and ":" or "?"
    if style and style ~= s then
      error("fsdb: SQL mixes '?' and ':name' placeholders; use one style per statement", 0)
    end
    style = s
  end
  local text = sql
  if style == ":" then
    names = {}
    local parts, last = {}, 1
    for i = 1, #found do
      local p = found[i]
      parts[#parts + 1] = sql:sub(last, p[1] - 1)
      parts[#parts + 1] = "?"
      last = p[2] + 1
      names[i] = p[3]
    end
    parts[#parts + 1] = sql:sub(last)
    text = table.concat(parts)
  end
  return { n = #found, style = style, names = names, text = text }
end

local function forget_oldest(link)
  local oldest, key
  for k, s in pairs(link.stmts) do
    if not oldest or s.used < oldest.used then oldest, key = s, k end
  end
  if key then
    link.stmts[key] = nil
    link.nstmts = link.nstmts - 1
    -- COM_STMT_CLOSE has no reply
    local ok = link:send(link.codec:command("close_stmt", oldest.id))
    return ok
  end
  return true
end

-- The cached statement for sql, prepared on first use.
function Link:stmt(sql)
  local s = self.stmts[sql]
  self.tick = self.tick + 1
  if s then
    s.used = self.tick
    return s
  end
  local sc = scan(sql, self:no_backslash_escapes())
  local ok, err, errno, state = self:send(self.codec:command("prepare", sc.text))
  if not ok then return nil, err, errno, state end
  local p
  p, err, errno, state = self:await("read_prepare")
  if not p then return nil, err, errno, state end
  if p.nparams ~= sc.n then
    -- the scanner and the server disagree (e.g. a placeholder in a
    -- comment style the scanner does not know): trust the server
    sc.n = p.nparams
  end
  s = { id = p.id, nparams = p.nparams, ncols = p.ncols, scan = sc, used = self.tick }
  if self.nstmts >= (self.cfg.statement_cache_size or 64) then
    forget_oldest(self)
  end
  self.stmts[sql] = s
  self.nstmts = self.nstmts + 1
  return s
end

function Link:forget_stmts()
  self.stmts = {}
  self.nstmts = 0
end

-- ---- checked-out connections ----

local Conn = {}
Conn.__index = Conn
_M.Conn = Conn

local function plural(n) return n == 1 and "" or "s" end

local function check(self)
  local link = self._link
  if not link then error("fsdb: connection is closed", 3) end
  if self._streaming then
    error("fsdb: connection is busy streaming rows (conn:rows); finish the loop or call cursor:close() first", 3)
  end
  if self._busy then
    error("fsdb: connection is busy reading a result; finish or close it first", 3)
  end
  return link
end

-- A failure reaches the caller; a disconnect also retires the link.
local function failed(_, link, err, errno, state)
  if errno == 1213 then
    local st = link:status()
    if has(st, IN_TRANS) then link.codec:set_status(st - IN_TRANS) end
  end
  if is_disconnect(errno) then link.dead = true end
  return nil, err, errno, state
end

-- Values for stmt s from varargs (first..) or one table.
local function collect(s, tbl, ...)
  local sc, n = s.scan, s.nparams
  local vals = {}
  if tbl == nil then
    if sc.style == ":" then
      error("fsdb: statement uses :name placeholders; pass one table of values", 4)
    end
    local nargs = select("#", ...)
    if nargs ~= n then
      error(("fsdb: statement has %d placeholder%s but %d parameter%s given"):format(
        n, plural(n), nargs, nargs == 1 and " was" or "s were"), 4)
    end
    for i = 1, n do vals[i] = (select(i, ...)) end
    return vals
  end
  if sc.style == ":" then
    for i = 1, n do
      local name = sc.names[i]
      local v = tbl[name]
      if v == nil then
        error(("fsdb: no value for parameter :%s (use fsdb.null for NULL)"):format(name), 4)
      end
      vals[i] = v
    end
    return vals, sc.names
  end
  local count = type(tbl.n) == "number" and tbl.n or #tbl
  if count ~= n then
    error(("fsdb: statement has %d placeholder%s but %d parameter%s given"):format(
      n, plural(n), count, count == 1 and " was" or "s were"), 4)
  end
  for i = 1, n do vals[i] = tbl[i] end
  return vals
end

local Cursor = {}

-- Reads the reply of the command just sent: a result, or a cursor.
local function reply(self, link, array_rows, stream)
  if stream then
    local acc = {}
    local first, err, errno, state = link:await("read", acc, array_rows, true)
    if first == nil then
      return failed(self, link, err, errno, state)
    end
    return Cursor.new(self, link, acc, array_rows, first)
  end
  local res, err, errno, state = link:await("read", {}, array_rows, false)
  if not res then
    return failed(self, link, err, errno, state)
  end
  return res
end

local function run(self, sql, tbl, array_rows, stream, ...)
  local link = check(self)
  if type(sql) ~= "string" then
    error(("fsdb: bad argument #1 (SQL string expected, got %s)"):format(type(sql)), 3)
  end
  self._busy = true
  local ok, a, b, c, d = pcall(function(...)
    if tbl == nil and select("#", ...) == 0 then
      local sc = scan(sql, link:no_backslash_escapes())
      if sc.n > 0 then
        error(("fsdb: statement has %d placeholder%s but no parameters were given"):format(sc.n, plural(sc.n)), 0)
      end
      if link.max_packet > 0 and #sql + 1 > link.max_packet then
        return fail(1153, "08S01", TOO_BIG:format(#sql + 1, link.max_packet))
      end
      local sent, err, errno, state = link:send(link.codec:command("query", sql))
      if not sent then return failed(self, link, err, errno, state) end
      return reply(self, link, array_rows, stream)
    end
    local s, err, errno, state = link:stmt(sql)
    if not s then return failed(self, link, err, errno, state) end
    local vals, names = collect(s, tbl, ...)
    local bytes = link.codec:execute(s.id, vals, s.nparams, names)
    if link.max_packet > 0 and #bytes > link.max_packet then
      return fail(1153, "08S01", TOO_BIG:format(#bytes, link.max_packet))
    end
    local sent
    sent, err, errno, state = link:send(bytes)
    if not sent then return failed(self, link, err, errno, state) end
    return reply(self, link, array_rows, stream)
  end, ...)
  self._busy = false
  if not ok then
    -- A raise with a command half done leaves the link out of step.
    local _, idle = link.codec:status()
    if not idle then link.dead = true end
    error(a, 0)
  end
  return a, b, c, d
end

--- conn:execute(sql, ...) — varargs fill '?', or one table argument.
function Conn:execute(sql, ...)
  local n = select("#", ...)
  if n == 1 and type((...)) == "table" then
    return run(self, sql, (...), false, false)
  end
  return run(self, sql, nil, false, false, ...)
end

-- opts[name]: nil or a boolean; anything else is misuse.
local function bool_opt(opts, name)
  local v = opts[name]
  if v ~= nil and type(v) ~= "boolean" then
    error(("fsdb: bad value for query option '%s' (expected a boolean)"):format(name), 5)
  end
  return v == true
end

-- The rows form of opts: false (keyed), true (arrays) or "columnar"
-- (one array per column, buffered results only), as the codec reads it.
local function rows_form(opts, stream)
  local array = bool_opt(opts, "array")
  if stream then bool_opt(opts, "reuse") end
  if not bool_opt(opts, "columnar") then return array end
  if stream then
    error("fsdb: query option 'columnar' is for buffered results (conn:query), not for streaming rows", 4)
  end
  if array then error("fsdb: query options 'columnar' and 'array' exclude each other", 4) end
  return "columnar"
end

local function query_args(params, opts, stream)
  local array_rows = false
  if opts ~= nil then
    if type(opts) ~= "table" then
      error("fsdb: bad argument #3 to 'query' (table expected, got " .. type(opts) .. ")", 3)
    end
    array_rows = rows_form(opts, stream)
  end
  if params ~= nil and type(params) ~= "table" then
    error("fsdb: bad argument #2 to 'query' (table expected, got " .. type(params) .. ")", 3)
  end
  return params, array_rows
end

-- query's and query_rows' max_statement_time, as the libmariadb
-- transport applies it (csrc/lconn.c): MariaDB's SET STATEMENT … FOR in
-- whole milliseconds. Other options the libmariadb transport ignores are
-- ignored here too; it honours no option this one does not.
local function statement_limit(sql, opts)
  local v = opts and opts.max_statement_time
  if v == nil then return sql end
  local t = (type(v) == "number" or type(v) == "string") and tonumber(v)
  if not t or not (t > 0 and t <= 31536000) then
    error("fsdb: bad value for query option 'max_statement_time' (expected a number of seconds > 0)", 0)
  end
  if type(sql) ~= "string" then return sql end -- run() says what is wrong with it
  local ms = math.floor(t * 1000 + 0.5)
  return "SET STATEMENT max_statement_time = " .. sqltext.number(ms / 1000) .. " FOR " .. sql
end

--- conn:query(sql, params_or_nil, opts_or_nil); opts.columnar = true: one
--- array per column (res[j], res.by_name[name]) instead of rows.
function Conn:query(sql, params, opts)
  local tbl, array_rows = query_args(params, opts, false)
  return run(self, statement_limit(sql, opts), tbl, array_rows, false)
end

-- what a generic for wants: iterator, nil, nil, closing value; a
-- statement that failed raises, as on the libmariadb transport (a loop
-- over nil would hide the error, or fail on the closing value)
local function for_loop(cur, err, errno, state)
  if cur == nil then
    error(("%s (errno %s, sqlstate %s)"):format(tostring(err), tostring(errno), tostring(state)), 0)
  end
  return cur, nil, nil, cur
end

--- conn:rows(sql, ...) — a cursor streaming the rows.
function Conn:rows(sql, ...)
  local n = select("#", ...)
  if n == 1 and type((...)) == "table" then
    return for_loop(run(self, sql, (...), false, true))
  end
  return for_loop(run(self, sql, nil, false, true, ...))
end

function Conn:query_rows(sql, params, opts)
  local tbl, array_rows = query_args(params, opts, true)
  local cur, err, errno, state = run(self, statement_limit(sql, opts), tbl, array_rows, true)
  -- reuse: one row table for the whole loop, refilled (csrc/lcursor.c)
  if cur and opts and opts.reuse then cur.reuse = {} end
  return for_loop(cur, err, errno, state)
end

--- conn:executemany(sql, sets) — one prepared statement, one execute per
--- set; {affected_rows = total, insert_id = first id, warnings = n}.
function Conn:executemany(sql, sets)
  local link = check(self)
  if type(sql) ~= "string" then error("fsdb: bad argument #1 to 'executemany' (string expected)", 2) end
  if type(sets) ~= "table" then
    error(("bad argument #2 to 'executemany' (table expected, got %s)"):format(type(sets)), 2)
  end
  local s, err, errno, state = link:stmt(sql)
  if not s then return failed(self, link, err, errno, state) end
  if s.ncols > 0 then
    error("fsdb: executemany() is for statements without a result (INSERT, UPDATE, DELETE, "
      .. "REPLACE); use execute() or rows() for queries", 2)
  end
  if s.nparams == 0 then error("fsdb: executemany() needs a statement with placeholders", 2) end
  local affected, first_id, warnings = 0, 0, 0
  for k = 1, #sets do
    local set = sets[k]
    if type(set) ~= "table" then
      error(("fsdb: bad parameter set #%d (table expected, got %s)"):format(k, type(set)), 2)
    end
    if s.scan.style == ":" then
      for _, name in ipairs(s.scan.names) do
        if set[name] == nil then
          error(("fsdb: parameter set #%d has no value for :%s (use fsdb.null for NULL)"):format(k, name), 2)
        end
      end
    else
      local count = type(set.n) == "number" and set.n or #set
      if count ~= s.nparams then
        error(("fsdb: parameter set #%d has %d value%s, the statement has %d placeholder%s"):format(
          k, count, plural(count), s.nparams, plural(s.nparams)), 2)
      end
    end
    local res
    res, err, errno, state = run(self, sql, set, false, false)
    if not res then return nil, err, errno, state end
    affected = affected + res.affected_rows
    if first_id == 0 then first_id = res.insert_id end
    warnings = res.warnings
  end
  return { affected_rows = affected, insert_id = first_id, warnings = warnings }
end

function Conn:ping()
  local link = check(self)
  local res, err, errno, state = link:simple("ping")
  if not res then return failed(self, link, err, errno, state) end
  return true
end

function Conn:in_transaction()
  local link = check(self)
  return has(link:status(), IN_TRANS)
end

function Conn:thread_id()
  return check(self).thread_id
end

-- The last_gtid the server reported in the last statement's OK packet
-- (session tracking, on engines with replicas), nil when none or not a
-- plain GTID: a session then asks SELECT @@last_gtid instead.
function Conn:tracked_gtid()
  return check(self).codec:tracked_gtid()
end

function Conn:info()
  local link = check(self)
  local u = link.cfg.url
  return {
    thread_id = link.thread_id,
    server_version = link.server_version,
    host_info = link.unix and "Localhost via UNIX socket" or (u.host .. " via TCP/IP"),
    charset = u.charset,
    tls_cipher = link.tls and (link.sock.cipher and link.sock:cipher() or "TLS") or nil,
    wait_timeout = link.idle_limit,
    age = link.sched.now() - link.created,
    transport = link.sched.name,
  }
end

--- Returns the connection to its pool (rolled back per
--- pool_reset_on_return, or discarded when it cannot be made clean).
--- The engine's observer hears "checkin" first, while the connection is
--- still usable (a handler that closes it ends the close here).
function Conn:close()
  local link = self._link
  if not link then return end
  local obs = self._pool.observer
  if obs and not self._closing then
    self._closing = true
    pcall(obs, "checkin", self)
    self._closing = nil
    if self._link ~= link then return end
  end
  self._link = nil
  if self._cursor then self._cursor:_detach() end
  local pool = self._pool
  pool:checkin(link, self._busy or self._streaming, self._out_at)
end

-- Returns the connection to be closed, not kept (a failed on_connect).
function Conn:_discard()
  local link = self._link
  if not link then return end
  self._link = nil
  self._pool:checkin(link, true, self._out_at)
end

-- The statement methods under the engine's observer (csrc/lobserve.c's
-- observed_call, in Lua): ctx = observer("before", conn, method, args…);
-- the call, protected and timed; observer("after", conn, ctx, elapsed,
-- invalidated, ok, results… or the error), then the error raised again.
-- Without an observer the method is called as it is (a tail call).
local unpack = table.unpack or unpack

local function pack(ok, ...)
  return ok, select("#", ...), { ... }
end

local function observed(name)
  local body = Conn[name]
  Conn[name] = function(self, ...)
    local pool, link = self._pool, self._link
    local obs = pool and pool.observer
    if not obs or not link then return body(self, ...) end
    local got, ctx = pcall(obs, "before", self, name, ...)
    if not got then ctx = nil end
    local was_dead = link.dead
    local now = link.sched.now
    local t0 = now()
    local ok, n, r = pack(pcall(body, self, ...))
    local elapsed = now() - t0
    pcall(obs, "after", self, ctx, elapsed, link.dead and not was_dead or false, ok, unpack(r, 1, n))
    if not ok then error(r[1], 0) end
    return unpack(r, 1, n)
  end
end

for _, name in ipairs({ "execute", "query", "rows", "query_rows", "executemany" }) do
  observed(name)
end

function Conn:__tostring()
  if not self._link then return "fsdb.conn (closed)" end
  return ("fsdb.conn (thread %d, %s)"):format(self._link.thread_id, self._link.sched.name)
end

Conn.__close = Conn.close

-- A conn collected without close(): its link is dropped, never talked to
-- (finalizers cannot wait for a server).
function Conn:__gc()
  local link = self._link
  if link then
    self._link = nil
    link:drop()
    self._pool:forget(link)
  end
end

function _M.wrap(pool, link)
  local c = setmetatable({ _link = link, _pool = pool, _out_at = link.sched.now() }, Conn)
  if _VERSION == "Lua 5.1" and newproxy then
    -- LuaJIT: tables have no __gc; a proxy carries it
    local proxy = newproxy(true)
    getmetatable(proxy).__gc = function() Conn.__gc(c) end
    c._gc = proxy
  end
  return c
end

-- ---- cursors (conn:rows) ----

Cursor.__index = Cursor

function Cursor.new(conn, link, acc, array_rows, first)
  local cur = setmetatable({ conn = conn, link = link, acc = acc, array_rows = array_rows,
    cols = acc.columns or {} }, Cursor)
  if first == true then
    cur.done = true -- no rows (or no result at all)
    return cur
  end
  cur.pending = first
  conn._streaming = true
  conn._cursor = cur
  return cur
end

function Cursor:_end()
  if self.conn._cursor == self then
    self.conn._streaming = false
    self.conn._cursor = nil
  end
  self.done = true
end

function Cursor:_detach()
  self.done = true
  self.link = nil
end

-- query_rows' reuse: the row's columns copied into the one table.
local function refill(cur, row)
  local t, cols = cur.reuse, cur.cols
  if not t then return row end
  if cur.array_rows then
    for i = 1, #cols do t[i] = row[i] end
  else
    for i = 1, #cols do t[cols[i]] = row[cols[i]] end
  end
  return t
end

function Cursor:__call()
  if self.done then return nil end
  if self.pending then
    local row = self.pending
    self.pending = nil
    return refill(self, row)
  end
  local row, err, errno, state = self.link:await("read", self.acc, self.array_rows, true)
  if row == true then
    self:_end()
    return nil
  end
  if row == nil then
    self:_end()
    if is_disconnect(errno) then self.link.dead = true end
    error(("%s [%s %s]"):format(tostring(err), tostring(errno), tostring(state)), 2)
  end
  return refill(self, row)
end

--- Ends the stream early: the rest of the rows is read and dropped.
function Cursor:close()
  if self.done then return end
  self.pending = nil
  local link = self.link
  while true do
    local row = link:await("read", self.acc, self.array_rows, true)
    if row == true then break end
    if row == nil then link.dead = true; break end
  end
  self:_end()
end

Cursor.__close = function(self) self:close() end

function Cursor:columns()
  return self.cols
end

function Cursor:next()
  return self()
end

return _M
