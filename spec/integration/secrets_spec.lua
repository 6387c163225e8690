-- No password in anything fsdb produces (DESIGN.md "Errors"): errors,
-- raised messages, tostring of every handle, engine:url(), status(),
-- conn:info(), the `fsdb` command's output (check and the migration verbs,
-- in-process and as a subprocess), the pool's stderr warning, and the logs
-- scripts/run-tests writes under build/test-logs/. Each output is checked
-- for the password of the URL it came from, raw and percent-encoded.
local fsdb = require("fsdb")
local db = require("helpers.db")
local h = require("support.hardening")

local unpack = table.unpack or unpack

-- A second password for the failures: its own characters that need
-- encoding, so a leak of either form shows.
local WRONG = "Wr0ng:s3cr#t/@?%x"

-- The sweep's password: every character that means something in a URL, a
-- shell or SQL ('"\@:/?#%&=;), each between two letters that rarely meet,
-- so that any 3-byte piece of it showing anywhere is a leak, not chance.
local SWEEP = "Zj'Qx\"Vk\\Wq@Yf:Jz/Xb?Kv#Qm%Zp&Jw=Vy;Xq"
local SWEEP_WRONG = "Gk'Pw\"Hy\\Fv@Uz:Nq/Tj?Yx#Bm%Kq&Dz=Wj;Vg"

-- Every 3-byte piece of s, raw and percent-encoded.
local function pieces(s)
  local list = {}
  for i = 1, #s - 2 do
    local piece = s:sub(i, i + 2)
    list[#list + 1] = piece
    list[#list + 1] = h.encode(piece)
  end
  list[#list + 1] = h.encode(s)
  return list
end

-- A local TCP port nothing listens on: bind and close one (the proxy's
-- listener is the easiest socket to get), then check it is closed.
local function closed_port()
  local p = h.proxy()
  local port = p:port()
  p:close()
  local status = h.sh(("bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d' 2>/dev/null"):format(port))
  assert(status ~= 0, "the port is still open")
  return port
end

-- Everything in v as text: tables (status(), info(), results) recursively.
local function dump(v, seen)
  seen = seen or {}
  if type(v) ~= "table" then
    return tostring(v)
  end
  if seen[v] then return "" end
  seen[v] = true
  local parts = { tostring(v) }
  for k, x in pairs(v) do
    parts[#parts + 1] = dump(k, seen) .. "=" .. dump(x, seen)
  end
  return table.concat(parts, " ")
end

-- Asserts that none of the texts shows a password (the test one, WRONG,
-- and any extra pieces).
local function clean(label, texts, extra)
  local secrets = { WRONG, h.encode(WRONG) }
  for _, x in ipairs(extra or {}) do secrets[#secrets + 1] = x end
  for i, text in ipairs(texts) do
    local s = dump(text)
    h.no_secret(s, secrets)
    assert.is_string(s, label .. " #" .. i)
  end
end

-- All values of a call, errors included, as one text.
local function outcome(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = dump((select(i, ...))) end
  return table.concat(parts, " | ")
end

describe("secrets stay out of every output #mariadb", function()
  local engines = {}
  local tmp

  setup(function()
    tmp = os.tmpname()
    os.remove(tmp)
    assert(os.execute("mkdir -p " .. h.shell_quote(tmp)))
  end)

  teardown(function()
    for _, e in ipairs(engines) do pcall(e.dispose, e) end
    if tmp and tmp:match("^/tmp/lua_%w+$") then
      os.execute("rm -rf " .. h.shell_quote(tmp))
    end
  end)

  local function engine(url, options)
    local e = fsdb.engine.new(url, options)
    engines[#engines + 1] = e
    return e
  end

  local wrong_url = h.url({ password = WRONG })

  it("a wrong password: connect, execute, query, engine and CLI", function()
    local e = engine(wrong_url, { pool_size = 1 })
    local texts = {
      outcome(e:connect()),
      outcome(e:execute("SELECT 1")),
      outcome(e:execute("SELECT ? AS x", 1)),
      tostring(e), e:url(), e:status(),
    }
    local _, _, errno = e:connect()
    assert.are.equal(1045, errno)
    local status, out, err = h.cli({ "check", "--url", wrong_url })
    assert.are.equal(1, status)
    texts[#texts + 1] = out .. err
    status, out, err = h.cli({ "check" }, { getenv = function(name)
      return ({ DB_USER = "fsdb", DB_PASSWORD = WRONG, DB_HOST = "127.0.0.1",
                DB_PORT = tostring(db.port), DB_NAME = db.db })[name]
    end })
    assert.are.equal(1, status)
    texts[#texts + 1] = out .. err
    clean("wrong password", texts)
  end)

  it("malformed URLs that hold the password: raised and returned errors", function()
    local enc, raw = h.encode(db.password), db.password
    local urls = {
      "mysql://fsdb:" .. enc .. "@127.0.0.1:99999/db",
      "mysql://fsdb:" .. raw .. "@127.0.0.1:3306/db",
      "mysql://fsdb:" .. enc .. "@127.0.0.1/db?bogus=1",
      "mysql://fsdb:" .. enc .. "@127.0.0.1/db?ssl_mode=SOMETIMES",
      "mysql://fsdb:" .. enc .. "%zz@127.0.0.1/db",
      "mysql://fsdb:" .. enc .. "%00@127.0.0.1/db",
      "postgres://fsdb:" .. enc .. "@127.0.0.1/db",
      "mysql://fsdb:" .. enc .. "@bad host/db",
      "mysql://fsdb:" .. enc .. "\n@127.0.0.1/db",
      "mysql://fsdb:" .. enc .. "@[::1/db",
      "mysql://fsdb:" .. raw .. "@[::1]x/db",
      "mysql://fsdb:" .. WRONG .. "@127.0.0.1/db",
      "mysql://fsdb:" .. raw .. "@127.0.0.1/db?ssl_ca=%2Ftmp%2Fca.pem&bogus=1",
      "mysql://fsdb:" .. enc .. "@127.0.0.1/db?read_timeout=soon",
      "mysql://fsdb:" .. enc .. "@127.0.0.1/db?connect_timeout=1&connect_timeout=2",
    }
    -- Pieces of the raw password a parser could quote on their own.
    local raw_pieces = { "ss:w", "rd%42", "w/rd" }
    for _, url in ipairs(urls) do
      local ok, e = pcall(fsdb.engine.new, url)
      local texts = { tostring(e), outcome(fsdb.url.parse(url)), fsdb.url.redact(url) }
      if ok then
        texts[#texts + 1] = outcome(e:connect())
        texts[#texts + 1] = e:url()
        e:dispose()
      end
      local status, out, err = h.cli({ "check", "--url", url })
      assert.are.equal(1, status, url)
      texts[#texts + 1] = out .. err
      clean("URL " .. url:sub(1, 12), texts, raw_pieces)
    end
  end)

  it("refused, unknown database and pool timeout", function()
    local port = closed_port()
    local refused = engine(h.url({ port = port, params = { "connect_timeout=2" } }))
    local r1 = { refused:connect() }
    -- Connector/C 3.3 says 2002 for a refused TCP connection too.
    assert.is_true(r1[3] == 2002 or r1[3] == 2003, tostring(r1[2]))
    local nodb = engine(h.url({ db = "fsdb_no_such_db_secrets" }))
    local r2 = { nodb:connect() }
    assert.are.equal(1049, r2[3])
    local small = engine(db.url, { pool_size = 1, max_overflow = 0, pool_timeout = 0.2 })
    local held = assert(small:connect())
    local r3 = { small:connect() }
    assert.are.equal(9002, r3[3])
    held:close()
    clean("failures", { outcome(unpack(r1)), outcome(unpack(r2)), outcome(unpack(r3)),
      refused:status(), nodb:status(), small:status(), tostring(refused), refused:url() })
  end)

  it("tostring of engine, conn, cursor, session, transaction, db and bind view", function()
    local url2 = h.url({ db = db.db2 })
    local e = engine(db.url)
    local conn = assert(e:connect())
    local texts = { tostring(e), e:url(), tostring(conn), dump(conn:info()) }
    local cur = assert(conn:rows("SELECT 1 AS x UNION ALL SELECT 2"))
    texts[#texts + 1] = tostring(cur)
    cur:close()
    texts[#texts + 1] = tostring(cur)
    conn:close()
    texts[#texts + 1] = tostring(conn)
    local app = fsdb.new({ url = db.url, binds = { auth = url2 } })
    local s = app:session()
    texts[#texts + 1] = tostring(s)
    db.must(s, "SELECT 1")
    texts[#texts + 1] = tostring(s)
    texts[#texts + 1] = tostring(s:using("auth"))
    local tx = s:begin()
    texts[#texts + 1] = tostring(tx)
    tx:rollback()
    texts[#texts + 1] = outcome(s:execute("SELECT * FROM no_such_table_secrets"))
    texts[#texts + 1] = outcome(pcall(s.transaction, s, function() error("inside") end))
    s:close()
    texts[#texts + 1] = tostring(s)
    texts[#texts + 1] = tostring(app)
    texts[#texts + 1] = app.engine:url()
    texts[#texts + 1] = app.engines.auth:url()
    texts[#texts + 1] = dump(app.engine:status())
    app.engine:dispose()
    app.engines.auth:dispose()
    texts[#texts + 1] = tostring(e)
    e:dispose()
    texts[#texts + 1] = tostring(e)
    clean("tostring", texts)
  end)

  it("misuse errors raised with a URL around", function()
    local e = engine(db.url)
    local texts = {
      select(2, pcall(fsdb.engine.new, db.url, { no_such_option = 1 })),
      select(2, pcall(fsdb.engine.new, db.url, { pool_size = "many" })),
      select(2, pcall(fsdb.new, { url = db.url, bogus = true })),
      select(2, pcall(e.execute, e, "SELECT ? AS a", {})),
      select(2, pcall(e.execute, e, "SELECT ? AS a", function() end)),
    }
    local conn = assert(e:connect())
    conn:close()
    texts[#texts + 1] = select(2, pcall(conn.execute, conn, "SELECT 1"))
    clean("misuse", texts)
  end)

  it("fsdb check and migration verbs, in-process and as bin/fsdb", function()
    local dir = tmp .. "/migrations"
    local status, out, err = h.cli({ "init", "-d", dir })
    assert.are.equal(0, status, err)
    local texts = { out .. err }
    local port = closed_port()
    local refused = h.url({ port = port, params = { "connect_timeout=2" } })
    for _, argv in ipairs({
      { "current", "-d", dir, "--url", wrong_url },
      { "upgrade", "-d", dir, "--url", wrong_url },
      { "upgrade", "-d", dir, "--url", refused },
      { "downgrade", "base", "-d", dir, "--url", wrong_url },
      { "stamp", "head", "-d", dir, "--url", wrong_url },
      { "revision", "--autogenerate", "-m", "x", "-d", dir, "--url", wrong_url },
      { "current", "-d", tmp .. "/nowhere", "--url", wrong_url },
      { "check", "--url", refused },
    }) do
      status, out, err = h.cli(argv)
      assert.are.equal(1, status, argv[1] .. ": " .. out .. err)
      texts[#texts + 1] = out .. err
    end
    status, out, err = h.cli({ "check", "--url", db.url })
    assert.are.equal(0, status, err)
    texts[#texts + 1] = out .. err
    status, out, err = h.cli({ "current", "-d", dir, "--url", db.url })
    assert.are.equal(0, status, err)
    texts[#texts + 1] = out .. err

    -- The real command, with the URL in the environment and in DB_*.
    local root = h.checkout_root()
    local interpreter = jit and "luajit" or "lua5.4"
    local clean_env = "env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 "
      .. "-u DB_USER -u DB_PASSWORD -u DB_HOST -u DB_PORT -u DB_NAME -u DB_SOCKET "
    local fsdb_cmd = interpreter .. " " .. h.shell_quote(root .. "/bin/fsdb")
    for _, cmd in ipairs({
      clean_env .. "DATABASE_URL=" .. h.shell_quote(wrong_url) .. " " .. fsdb_cmd .. " check",
      clean_env .. "DATABASE_URL=" .. h.shell_quote(wrong_url) .. " " .. fsdb_cmd
        .. " -d " .. h.shell_quote(dir) .. " upgrade",
      clean_env .. "DB_USER=fsdb DB_PASSWORD=" .. h.shell_quote(WRONG) .. " DB_HOST=127.0.0.1 DB_PORT="
        .. db.port .. " DB_NAME=" .. db.db .. " " .. fsdb_cmd .. " check",
      clean_env .. "DATABASE_URL=" .. h.shell_quote(db.url) .. " " .. fsdb_cmd .. " check",
      clean_env .. "DATABASE_URL=" .. h.shell_quote(db.url) .. " " .. fsdb_cmd
        .. " -d " .. h.shell_quote(dir) .. " history",
    }) do
      local _, text = h.sh(cmd)
      texts[#texts + 1] = text
    end
    clean("cli", texts)
  end)

  it("the pool's leak warning on stderr", function()
    local root = h.checkout_root()
    local script = tmp .. "/leak.lua"
    local f = assert(io.open(script, "w"))
    f:write([[
local fsdb = require("fsdb")
local th = require("fsdb_testhelper")
local e = fsdb.engine.new(os.getenv("LEAK_URL"), { pool_leak_threshold = 0.01 })
local c = assert(e:connect())
th.sleep(0.05)
c:close()
e:dispose()
print("done")
]])
    f:close()
    local interpreter = jit and "luajit" or "lua5.4"
    local cdir = jit and "build/luajit" or "build/lua5.4"
    local paths = ("package.path=%q..package.path package.cpath=%q..package.cpath"):format(
      root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;", root .. "/" .. cdir .. "/?.so;")
    local status, text = h.sh("LEAK_URL=" .. h.shell_quote(db.url) .. " " .. interpreter
      .. " -e " .. h.shell_quote(paths) .. " " .. h.shell_quote(script))
    assert.are.equal(0, status, text)
    assert.matches("fsdb: warning: connection", text, 1, true)
    clean("leak warning", { text })
  end)

  it("the test logs under build/test-logs/ (fsdb's output, not spec names)", function()
    local log_pieces = h.secrets()
    for _, x in ipairs(pieces(SWEEP)) do log_pieces[#log_pieces + 1] = x end
    local dir = h.checkout_root() .. "/build/test-logs"
    local p = io.popen("ls -1 " .. h.shell_quote(dir) .. " 2>/dev/null")
    local names = p:read("*a")
    p:close()
    local checked = 0
    for name in names:gmatch("[^\n]+") do
      local f = io.open(dir .. "/" .. name, "rb")
      if f then
        local n = 0
        for line in f:lines() do
          n = n + 1
          -- TAP's "ok N - <name>" lines are the specs' own titles, some of
          -- which quote a URL from their test table; every other line is
          -- what ran printed.
          if not line:match("^ok %d+ ") and not line:match("^not ok %d+ ") then
            for _, secret in ipairs(log_pieces) do
              assert.is_nil(line:find(secret, 1, true),
                ("%s line %d shows the test password: %s"):format(name, n, line))
            end
          end
        end
        f:close()
        checked = checked + 1
      end
    end
    assert.is_true(checked >= 0)
  end)
end)

describe("a password of URL, shell and SQL characters #mariadb", function()
  local root, tmp
  local USER = "fsdb_sweep"
  -- 128 characters, 372 bytes: with it, "Access denied for user '…' to
  -- database '…'" outgrows Connector/C's 512-byte error buffer.
  local LONG_USER = "fsdb_sweep_" .. ("\226\130\172"):rep(117) -- U+20AC
  local engines = {}

  local function hex(x)
    return (x:gsub(".", function(c) return ("%02X"):format(c:byte()) end))
  end

  local function sweep_url(opts)
    opts = opts or {}
    local s = ("mysql://%s:%s@%s:%d/%s"):format(h.encode(opts.user or USER),
      h.encode(opts.password or SWEEP), h.host, opts.port or db.port, opts.db or db.db)
    if opts.params then s = s .. "?" .. table.concat(opts.params, "&") end
    return s
  end

  local function engine(url, options)
    local e = fsdb.engine.new(url, options)
    engines[#engines + 1] = e
    return e
  end

  -- No 3-byte piece of either sweep password (raw or encoded) in any text.
  local function clean_sweep(label, texts)
    local list = pieces(SWEEP)
    for _, x in ipairs(pieces(SWEEP_WRONG)) do list[#list + 1] = x end
    for i, text in ipairs(texts) do
      local shown = dump(text)
      for _, piece in ipairs(list) do
        local at = shown:find(piece, 1, true)
        -- The report marks the place and never prints the piece itself.
        assert.is_nil(at, ("%s #%d shows a piece of the password at <HERE>: %s<HERE>%s"):format(
          label, i, shown:sub(math.max(1, (at or 1) - 60), (at or 1) - 1),
          shown:sub((at or 1) + #piece, (at or 1) + #piece + 60)))
      end
    end
  end

  setup(function()
    root = fsdb.engine.new(h.root_socket_url())
    -- The hash from the server itself: no SQL text carries the password.
    local rows = assert(root:execute("SELECT PASSWORD(X'" .. hex(SWEEP) .. "') AS h"))
    for _, user in ipairs({ USER, LONG_USER }) do
      db.must(root, "DROP USER IF EXISTS '" .. user .. "'@'%'")
      db.must(root, "CREATE USER '" .. user .. "'@'%' IDENTIFIED BY PASSWORD '" .. rows[1].h .. "'")
      db.must(root, "GRANT ALL ON `" .. db.db .. "`.* TO '" .. user .. "'@'%'")
    end
    tmp = os.tmpname()
    os.remove(tmp)
    assert(os.execute("mkdir -p " .. h.shell_quote(tmp)))
  end)

  teardown(function()
    for _, e in ipairs(engines) do pcall(e.dispose, e) end
    if root then
      for _, user in ipairs({ USER, LONG_USER }) do
        pcall(root.execute, root, "DROP USER IF EXISTS '" .. user .. "'@'%'")
      end
      pcall(root.execute, root, "DROP TABLE IF EXISTS `" .. db.db .. "`.fsdb_secrets_argv_version")
      root:dispose()
    end
    if tmp and tmp:match("^/tmp/lua_%w+$") then
      os.execute("rm -rf " .. h.shell_quote(tmp))
    end
  end)

  it("works as a password (the sweep tests the real thing)", function()
    local e = engine(sweep_url())
    local rows = assert(e:execute("SELECT CURRENT_USER() AS u"))
    assert.are.equal(USER .. "@%", rows[1].u)
  end)

  it("a wrong password, refused, unknown database, pool timeout, tostring, url, status", function()
    local texts = {}
    local wrong = engine(sweep_url({ password = SWEEP_WRONG }), { pool_size = 1 })
    local r = { wrong:connect() }
    assert.are.equal(1045, r[3])
    texts[#texts + 1] = outcome(unpack(r))
    texts[#texts + 1] = outcome(wrong:execute("SELECT 1"))
    local port = closed_port()
    local refused = engine(sweep_url({ port = port, params = { "connect_timeout=2" } }))
    r = { refused:connect() }
    assert.is_true(r[3] == 2002 or r[3] == 2003, tostring(r[2]))
    texts[#texts + 1] = outcome(unpack(r))
    local nodb = engine(sweep_url({ db = "fsdb_no_such_db_sweep" }))
    r = { nodb:connect() }
    assert.is_true(r[3] == 1044 or r[3] == 1049, tostring(r[2]))
    texts[#texts + 1] = outcome(unpack(r))
    local small = engine(sweep_url(), { pool_size = 1, max_overflow = 0, pool_timeout = 0.2 })
    local held = assert(small:connect())
    r = { small:connect() }
    assert.are.equal(9002, r[3])
    texts[#texts + 1] = outcome(unpack(r))
    texts[#texts + 1] = tostring(held)
    texts[#texts + 1] = dump(held:info())
    held:close()
    local app = fsdb.new({ url = sweep_url() })
    local s = app:session()
    texts[#texts + 1] = outcome(s:execute("SELECT * FROM no_such_table_sweep"))
    texts[#texts + 1] = tostring(s)
    s:close()
    texts[#texts + 1] = tostring(app)
    app.engine:dispose()
    for _, e in ipairs({ wrong, refused, nodb, small }) do
      texts[#texts + 1] = tostring(e)
      texts[#texts + 1] = e:url()
      texts[#texts + 1] = e:status()
    end
    clean_sweep("failures", texts)
  end)

  it("bad URL forms, host-less ones included: parse, render, redact, engine, fsdb check", function()
    local enc, raw = h.encode(SWEEP), SWEEP
    local hp = h.host .. ":" .. db.port
    local urls = {
      -- host-less: "user:password" with no "@host"
      "mysql://" .. USER .. ":" .. enc .. "/" .. db.db,
      "mysql://" .. USER .. ":" .. enc,
      "mysql://" .. USER .. ":" .. enc .. "?charset=utf8mb4",
      "mysql://" .. USER .. ":" .. h.encode(SWEEP_WRONG) .. "/" .. db.db,
      -- a raw password: its '/', '?', '#', '@' make the URL look shorter
      "mysql://" .. USER .. ":" .. raw .. "@" .. hp .. "/" .. db.db,
      "mysql://" .. USER .. ":" .. raw .. "@" .. hp .. "/" .. db.db .. "?charset=utf8mb4",
      "mysql://" .. USER .. ":" .. raw .. "@" .. h.host .. "/db@2",
      -- every kind of error, around the encoded password
      "mysql://" .. USER .. ":" .. enc .. "@" .. h.host .. ":99999/" .. db.db,
      "mysql://" .. USER .. ":" .. enc .. "@" .. hp .. "/" .. db.db .. "?bogus=1",
      "mysql://" .. USER .. ":" .. enc .. "@" .. hp .. "/" .. db.db .. "?ssl_mode=SOMETIMES",
      "mysql://" .. USER .. ":" .. enc .. "%zz@" .. hp .. "/" .. db.db,
      "mysql://" .. USER .. ":" .. enc .. "%00@" .. hp .. "/" .. db.db,
      "mysql://" .. USER .. ":" .. enc .. "@bad host/" .. db.db,
      "mysql://" .. USER .. ":" .. enc .. "\n@" .. hp .. "/" .. db.db,
      "mysql://" .. USER .. ":" .. enc .. "@[::1/" .. db.db,
      "mysql://" .. USER .. ":" .. enc .. "@" .. hp .. "/a/b",
      "postgres://" .. USER .. ":" .. enc .. "@" .. hp .. "/" .. db.db,
      "mysql:/" .. USER .. ":" .. enc .. "@" .. hp .. "/" .. db.db,
      USER .. ":" .. enc .. "@" .. hp .. "/" .. db.db,
    }
    for _, url in ipairs(urls) do
      local texts = { fsdb.url.redact(url), outcome(fsdb.url.parse(url)), outcome(fsdb.url.render(url)) }
      local ok, e = pcall(fsdb.engine.new, url, { pool_size = 1 })
      texts[#texts + 1] = tostring(e)
      if ok then
        texts[#texts + 1] = outcome(e:connect())
        texts[#texts + 1] = e:url()
        texts[#texts + 1] = e:status()
        e:dispose()
      end
      ok, e = pcall(fsdb.new, { url = url })
      texts[#texts + 1] = tostring(e)
      if ok then e.engine:dispose() end
      local status, out, err = h.cli({ "check", "--url", url })
      assert.are_not.equal(0, status)
      texts[#texts + 1] = out .. err
      status, out, err = h.cli({ "check" }, { getenv = function(name)
        return name == "DATABASE_URL" and url or nil
      end })
      assert.are_not.equal(0, status)
      texts[#texts + 1] = out .. err
      clean_sweep(fsdb.url.redact(url):sub(1, 40), texts)
    end
  end)

  it("a password cut by Connector/C's 512-byte error buffer shows no byte of it", function()
    local e = engine(sweep_url({ user = LONG_USER }), { pool_size = 1 })
    local conn = assert(e:connect())
    -- Where the database name starts in the message.
    local _, probe = conn:execute("USE `MARK`")
    local from = assert(probe:find("MARK", 1, true), probe) - 1 - #"fsdb: "
    local texts = {}
    for shown = 1, 12 do
      -- ASCII and 3-byte padding so that the message reaches Connector/C's
      -- 511th byte after `shown` bytes of the password.
      local need = 511 - shown - from
      local wide = math.floor(need / 3)
      local narrow = need - 3 * wide
      local name = ("a"):rep(narrow) .. ("\226\130\172"):rep(wide) .. SWEEP:sub(1, shown + 3)
      assert.is_true(narrow + wide + shown + 3 <= 64, "the database name is too long")
      local res, err, errno = conn:execute("USE `" .. name .. "`")
      assert.is_nil(res)
      assert.are.equal(1044, errno, err)
      -- The server's text went up to the cut: the mask ends it.
      assert.truthy(err:find("***; hint: ", 1, true), err)
      for j = 1, shown do
        assert.is_nil(err:find(SWEEP:sub(1, j) .. "; hint: ", 1, true),
          ("%d byte(s) of the password show at the cut: %s"):format(j, err))
      end
      texts[#texts + 1] = err
    end
    conn:close()
    clean_sweep("cut", texts)
  end)

  it("fsdb check and the migration verbs, in-process and as bin/fsdb (--url, --url-file, stdin)", function()
    local dir = tmp .. "/migrations"
    local status, out, err = h.cli({ "init", "-d", dir })
    assert.are.equal(0, status, out .. err)
    local texts = {}
    local good, wrong = sweep_url(), sweep_url({ password = SWEEP_WRONG })
    local hostless = "mysql://" .. USER .. ":" .. h.encode(SWEEP) .. "/" .. db.db
    for _, argv in ipairs({
      { "check", "--url", wrong },
      { "check", "--url", hostless },
      { "current", "-d", dir, "--url", wrong },
      { "current", "-d", dir, "--url", hostless },
      { "upgrade", "-d", dir, "--url", wrong },
      { "stamp", "head", "-d", dir, "--url", hostless },
    }) do
      status, out, err = h.cli(argv)
      assert.are_not.equal(0, status, argv[1] .. ": " .. out .. err)
      texts[#texts + 1] = out .. err
    end
    -- These need no connection: whatever they do, they show nothing.
    for _, argv in ipairs({
      { "history", "-d", dir, "--url", hostless },
      { "upgrade", "--sql", "-d", dir, "--url", hostless },
      { "upgrade", "--sql", "-d", dir, "--url", wrong },
    }) do
      status, out, err = h.cli(argv)
      assert.is_number(status)
      texts[#texts + 1] = out .. err
    end
    status, out, err = h.cli({ "check", "--url", good })
    assert.are.equal(0, status, err)
    texts[#texts + 1] = out .. err

    local file = tmp .. "/url"
    local interpreter = jit and "luajit" or "lua5.4"
    local fsdb_cmd = "env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 -u DATABASE_URL "
      .. "-u DB_USER -u DB_PASSWORD -u DB_HOST -u DB_PORT -u DB_NAME -u DB_SOCKET "
      .. interpreter .. " " .. h.shell_quote(h.checkout_root() .. "/bin/fsdb")
    for _, case in ipairs({
      { good, "check --url-file " .. h.shell_quote(file), 0, "(from --url-file)" },
      { good, "check --url - < " .. h.shell_quote(file), 0 },
      { good, "check --url \"$(cat " .. h.shell_quote(file) .. ")\"", 0 },
      { wrong, "check --url-file " .. h.shell_quote(file), 1 },
      { hostless, "check --url-file " .. h.shell_quote(file), 1 },
      { hostless, "-d " .. h.shell_quote(dir) .. " current --url - < " .. h.shell_quote(file), 1 },
      { wrong, "-d " .. h.shell_quote(dir) .. " upgrade --url \"$(cat " .. h.shell_quote(file) .. ")\"", 1 },
    }) do
      local f = assert(io.open(file, "w"))
      f:write(case[1], "\n")
      f:close()
      local code, text = h.sh(fsdb_cmd .. " " .. case[2])
      assert.are.equal(case[3], code, case[2] .. ": " .. text)
      if case[4] then assert.truthy(text:find(case[4], 1, true), text) end
      texts[#texts + 1] = text
    end
    clean_sweep("cli", texts)
  end)

  it("`ps` (/proc/PID/cmdline) of a running `fsdb upgrade --url …` never shows the password", function()
    local th = require("fsdb_testhelper")
    local dir = tmp .. "/slow"
    local status, _, err = h.cli({ "init", "-d", dir })
    assert.are.equal(0, status, err)
    local f = assert(io.open(dir .. "/env.lua", "w"))
    f:write('return { version_table = "fsdb_secrets_argv_version" }\n')
    f:close()
    f = assert(io.open(dir .. "/versions/0001_slow.lua", "w"))
    f:write([[
return {
  revision = "0001", down_revision = nil, message = "slow",
  up = function(op) op.execute("DO SLEEP(2)") end,
  down = function(op) end,
}
]])
    f:close()
    local urlfile, out, script = tmp .. "/slow-url", tmp .. "/slow-out", tmp .. "/slow.sh"
    f = assert(io.open(urlfile, "w"))
    f:write(sweep_url(), "\n")
    f:close()
    -- The shell reads the URL from a file, so that only the fsdb process
    -- itself ever has it on its command line; the environment is empty but
    -- for PATH, so that the test server's variables are not in it.
    local interpreter = jit and "luajit" or "lua5.4"
    f = assert(io.open(script, "w"))
    f:write(("url=$(cat %s)\nexec %s %s -d %s upgrade --url \"$url\" > %s 2>&1\n"):format(
      h.shell_quote(urlfile), interpreter, h.shell_quote(h.checkout_root() .. "/bin/fsdb"),
      h.shell_quote(dir), h.shell_quote(out)))
    f:close()
    local p = assert(io.popen("env -i PATH=\"$PATH\" sh " .. h.shell_quote(script)
      .. " >/dev/null 2>&1 & echo $!"))
    local pid = assert(tonumber(p:read("*l")))
    p:close()

    local function slurp(path)
      local g = io.open(path, "rb")
      if not g then return nil end
      local text = g:read("*a")
      g:close()
      return text
    end
    local secrets = { SWEEP, h.encode(SWEEP), "Zj'Qx" }
    local function shows(text)
      for _, x in ipairs(secrets) do
        if text:find(x, 1, true) then return true end
      end
      return false
    end
    -- Sample until the process is gone: its command line, its environment
    -- and whether the migration has started.
    local samples, deadline = {}, th.now() + 60
    while th.now() < deadline do
      -- Gone, or a zombie: done. (The command line reads empty for a moment
      -- while the process re-executes itself.)
      local stat = slurp("/proc/" .. pid .. "/stat")
      if stat == nil or stat:match("^%d+ %b() (%a)") == "Z" then break end
      local cmd = slurp("/proc/" .. pid .. "/cmdline") or ""
      local environ = slurp("/proc/" .. pid .. "/environ") or ""
      local running = (slurp(out) or ""):find("Running upgrade", 1, true) ~= nil
      samples[#samples + 1] = { cmd = cmd, environ = environ, running = running }
      th.sleep(0.005)
    end
    assert.is_true(th.now() < deadline, "fsdb upgrade did not finish")
    local result = slurp(out) or ""
    assert.truthy(result:find("Running upgrade  -> 0001, slow", 1, true), "output: " .. result)
    clean_sweep("upgrade output", { result })

    -- Once the migration runs, and to the end: never on the command line
    -- nor in the environment; and only the start-up (before the
    -- re-execution) may have had it on the command line.
    local during, hidden_seen = 0, false
    for i, sample in ipairs(samples) do
      local cmd = sample.cmd:gsub("%z", " ")
      -- (Empty while it re-executes itself and while it exits.)
      if sample.running and sample.cmd ~= "" then
        during = during + 1
        assert.is_false(shows(sample.cmd), ("sample %d: %s"):format(i, fsdb.url.redact(cmd)))
        assert.is_false(shows(sample.environ), ("sample %d: the environment shows it"):format(i))
        assert.truthy(cmd:find(" upgrade", 1, true), cmd)
      end
      if cmd:find("bin/fsdb", 1, true) and not cmd:find("--url", 1, true) then
        hidden_seen = true
      elseif hidden_seen then
        assert.is_false(shows(sample.cmd),
          ("sample %d, after the re-execution: %s"):format(i, fsdb.url.redact(cmd)))
      end
    end
    -- The two-second migration was watched, many times over.
    assert.is_true(during >= 20, "samples while the migration ran: " .. during)
  end)

  it("usage errors of --url-file and --url -", function()
    local texts = {}
    local status, _, err = h.cli({ "check", "--url-file", tmp .. "/nowhere" })
    assert.are.equal(2, status)
    assert.truthy(err:find("cannot read --url-file", 1, true), err)
    texts[#texts + 1] = err
    local file = tmp .. "/url2"
    local f = assert(io.open(file, "w"))
    f:write(sweep_url(), "\n")
    f:close()
    status, _, err = h.cli({ "check", "--url-file", file, "--url", sweep_url() })
    assert.are.equal(2, status)
    assert.truthy(err:find("not both", 1, true), err)
    texts[#texts + 1] = err
    status, _, err = h.cli({ "check", "--url", "-" }, { read_stdin = function() return nil end })
    assert.are.equal(2, status)
    assert.truthy(err:find("standard input holds no URL", 1, true), err)
    local out
    status, out, err = h.cli({ "check", "--url", "-" }, { read_stdin = function() return "  " .. sweep_url() .. "\r" end })
    assert.are.equal(0, status, err)
    assert.truthy(out:find("(from --url -)", 1, true), out)
    texts[#texts + 1] = out .. err
    clean_sweep("usage", texts)
  end)
end)
