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
  local pieces = { WRONG, h.encode(WRONG) }
  for _, x in ipairs(extra or {}) do pieces[#pieces + 1] = x end
  for i, text in ipairs(texts) do
    local s = dump(text)
    h.no_secret(s, pieces)
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
    local pieces = { "ss:w", "rd%42", "w/rd" }
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
      clean("URL " .. url:sub(1, 12), texts, pieces)
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
            for _, secret in ipairs(h.secrets()) do
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
