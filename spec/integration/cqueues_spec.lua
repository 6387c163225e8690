-- The codec transport under lua-cqueues (engine option transport =
-- "cqueues"): concurrency without threads, the pool's waits, sessions,
-- failures as the usual four values, TLS, and a hostile server.

local cqueues = require("cqueues")
local socket = require("cqueues.socket")
local fsdb = require("fsdb")
local db = require("helpers.db")

local unpack = table.unpack or unpack

local function engine(opts, url)
  opts = opts or {}
  opts.transport = "cqueues"
  return fsdb.engine.new(url or db.url, opts)
end

-- Runs fns as coroutines of one cqueues controller; raises the first error.
local function run(...)
  local loop = cqueues.new()
  for _, fn in ipairs({ ... }) do loop:wrap(fn) end
  local ok, err = loop:loop()
  if not ok then error(err, 0) end
end

local function with_param(url, param)
  return url .. (url:find("?", 1, true) and "&" or "?") .. param
end

-- Under `make asan`: lua-cqueues makes its TLS BIO method once and keeps it
-- for the process's life, which LeakSanitizer reports (without a stack
-- deep enough to suppress); its TLS is not fsdb's code.
local function no_tls_under_asan()
  if os.getenv("FSDB_ASAN") then
    pending("TLS through lua-cqueues is skipped under ASan (a one-time allocation of lua-cqueues)")
    return true
  end
end

local function encode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

describe("cqueues transport #mariadb", function()
  it("50 coroutines x 20 queries of SLEEP(0.05) finish far under the serial 50 s", function()
    local e = engine({ pool_size = 50, max_overflow = 0 })
    local ok, threads = 0, {}
    local started = cqueues.monotime()
    local fns = {}
    for w = 1, 50 do
      fns[w] = function()
        local conn = assert(e:connect())
        threads[conn:thread_id()] = true
        for q = 1, 20 do
          local res = assert(conn:execute("SELECT SLEEP(0.05) AS s, ? AS w, ? AS q", w, q))
          if res[1].w == w and res[1].q == q and res[1].s == 0 then ok = ok + 1 end
        end
        conn:close()
      end
    end
    run(unpack(fns))
    local elapsed = cqueues.monotime() - started
    io.stderr:write(("\n  cqueues: 50 x 20 SLEEP(0.05) in %.2f s (serial 50 s)\n"):format(elapsed))
    assert.are.equal(1000, ok)
    local n = 0
    for _ in pairs(threads) do n = n + 1 end
    assert.are.equal(50, n, "one server connection per coroutine")
    assert.is_true(elapsed < 10, ("took %.2f s"):format(elapsed))
    assert.are.equal(50, e:status().connects)
    e:dispose()
  end)

  it("an exhausted pool makes coroutines wait their turn, then times out with 9002", function()
    local e = engine({ pool_size = 2, max_overflow = 0, pool_timeout = 5 })
    local served = 0
    local fns = {}
    for i = 1, 6 do
      fns[i] = function()
        local conn = assert(e:connect())
        assert(conn:execute("SELECT SLEEP(0.05)"))
        served = served + 1
        conn:close()
      end
    end
    run(unpack(fns))
    assert.are.equal(6, served)
    local st = e:status()
    assert.are.equal(2, st.connects)
    assert.is_true(st.waits >= 1)

    local short = engine({ pool_size = 1, max_overflow = 0, pool_timeout = 0.2 })
    local got
    run(function()
      local held = assert(short:connect())
      cqueues.sleep(0.5)
      held:close()
    end, function()
      cqueues.sleep(0.05)
      got = { short:connect() }
    end)
    assert.is_nil(got[1])
    assert.are.equal(9002, got[3])
    assert.truthy(got[2]:find("pool limit of size 1 overflow 0 reached", 1, true))
    e:dispose()
    short:dispose()
  end)

  it("sessions: transactions, savepoints and rollback run unchanged", function()
    local e = engine()
    run(function()
      local name = db.unique("cq")
      db.must(e, ("CREATE TABLE %s (id INT PRIMARY KEY, v VARCHAR(10))"):format(name))
      local s = fsdb.session.new(e)
      assert(s:transaction(function(tx)
        assert(tx:execute(("INSERT INTO %s VALUES (1, 'a')"):format(name)))
        local ok = pcall(s.transaction, s, function(inner)
          assert(inner:execute(("INSERT INTO %s VALUES (2, 'b')"):format(name)))
          error("undo the inner one")
        end)
        assert.is_false(ok)
        return true
      end))
      s:close()
      local rows = db.must(e, ("SELECT id FROM %s ORDER BY id"):format(name))
      assert.are.equal(1, #rows)
      assert.are.equal(1, rows[1].id)
      db.must(e, "DROP TABLE " .. name)
    end)
    assert.are.equal(0, e:status().checked_out)
    e:dispose()
  end)

  it("a connection returned inside a transaction is rolled back", function()
    local e = engine({ pool_size = 1 })
    run(function()
      local c = assert(e:connect())
      assert(c:execute("BEGIN"))
      assert.is_true(c:in_transaction())
      c:close()
      c = assert(e:connect())
      assert.is_false(c:in_transaction())
      c:close()
    end)
    e:dispose()
  end)

  it("rows() streams and an early break leaves the connection usable", function()
    local e = engine({ pool_size = 1 })
    run(function()
      local c = assert(e:connect())
      local n = 0
      for _ in c:rows("SELECT seq FROM seq_1_to_1000") do
        n = n + 1
        if n == 10 then break end
      end
      assert.are.equal(10, n)
      -- Lua 5.1 has no to-be-closed values: a break leaves the stream open
      local ok = pcall(c.execute, c, "SELECT 1")
      if not ok then
        assert.has_error(function() c:execute("SELECT 1") end)
      end
      c:close()
      c = assert(e:connect())
      assert.are.equal(1, assert(c:execute("SELECT 1 AS one"))[1].one)
      c:close()
    end)
    e:dispose()
  end)

  it("a wrong password is 1045 with a hint, and the message never holds the password", function()
    local bad = db.url:gsub("^(mysql://[^:]+:)[^@]+@", "%1wrong-secret@")
    local e = engine({}, bad)
    local res, err, errno, sqlstate
    run(function() res, err, errno, sqlstate = e:connect() end)
    assert.is_nil(res)
    assert.are.equal(1045, errno)
    assert.are.equal("28000", sqlstate)
    assert.truthy(err:find("hint:", 1, true))
    assert.falsy(err:find("wrong-secret", 1, true))
  end)

  it("client_ed25519 accounts log in (MariaDB's Ed25519 variant); a wrong password is 1045", function()
    local root = db.root()
    root:execute("INSTALL SONAME 'auth_ed25519'") -- fails harmlessly when installed
    local p = root:execute("SELECT 1 FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'ed25519'"
      .. " AND PLUGIN_STATUS = 'ACTIVE'")
    if not p or #p == 0 then
      root:dispose()
      pending("the server has no auth_ed25519 plugin")
      return
    end
    for _, host in ipairs({ "%", "localhost" }) do
      db.must(root, ("CREATE OR REPLACE USER 'fsdb_ed'@'%s' IDENTIFIED VIA ed25519 USING PASSWORD('ed p@ss')")
        :format(host))
      db.must(root, ("GRANT SELECT ON %s.* TO 'fsdb_ed'@'%s'"):format(db.db, host))
    end
    local url = db.url:gsub("^mysql://[^@]+@", "mysql://fsdb_ed:ed%%20p%%40ss@")
    local good, bad = engine({}, url), engine({}, (url:gsub("ed%%20p", "ed%%20q")))
    local user, res, err, errno
    run(function()
      local c = assert(good:connect())
      user = assert(c:execute("SELECT CURRENT_USER() AS u"))[1].u
      c:close()
      res, err, errno = bad:connect()
    end)
    good:dispose()
    bad:dispose()
    for _, host in ipairs({ "%", "localhost" }) do
      root:execute(("DROP USER IF EXISTS 'fsdb_ed'@'%s'"):format(host))
    end
    root:dispose()
    assert.truthy(user:find("fsdb_ed@", 1, true))
    assert.is_nil(res)
    assert.are.equal(1045, errno)
    assert.falsy(err:find("ed q", 1, true))
  end)

  it("a server that is not there is 2003", function()
    local e = engine({}, "mysql://u:p@127.0.0.1:1/x")
    local res, err, errno
    run(function() res, err, errno = e:connect() end)
    assert.is_nil(res)
    assert.are.equal(2003, errno)
    assert.truthy(err:find("127.0.0.1", 1, true))
  end)

  it("read_timeout ends a slow query with 2013 and the pool discards the connection", function()
    local e = engine({ pool_size = 1 }, with_param(db.url, "read_timeout=1"))
    run(function()
      local c = assert(e:connect())
      local t0 = cqueues.monotime()
      local res, err, errno = c:execute("SELECT SLEEP(3)")
      assert.is_nil(res)
      assert.are.equal(2013, errno)
      assert.truthy(err:find("timeout", 1, true))
      assert.is_true(cqueues.monotime() - t0 < 2.5)
      c:close()
      c = assert(e:connect())
      assert(c:execute("SELECT 1"))
      c:close()
    end)
    assert.are.equal(2, e:status().connects)
    e:dispose()
  end)

  it("a KILLed connection gives 2013 and is never handed out again", function()
    local e = engine({ pool_size = 1 })
    local root = db.root()
    run(function()
      local c = assert(e:connect())
      local id = c:thread_id()
      root:execute("KILL " .. id)
      local res, _, errno = c:execute("SELECT 1")
      assert.is_nil(res)
      assert.is_true(errno == 2013 or errno == 2006 or errno == 1927 or errno == 4031, tostring(errno))
      c:close()
      c = assert(e:connect())
      assert.are_not.equal(id, c:thread_id())
      c:close()
    end)
    root:dispose()
    e:dispose()
  end)

  it("TLS with ssl_mode=VERIFY_CA and the test CA", function()
    if no_tls_under_asan() then return end
    local ca = os.getenv("FSDB_TEST_CA")
    local e = engine({}, with_param(db.url, "ssl_mode=VERIFY_CA&ssl_ca=" .. encode(ca)))
    run(function()
      local c = assert(e:connect())
      assert.truthy(c:info().tls_cipher)
      local r = assert(c:execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'"))
      assert.are_not.equal("", r[1].Value)
      c:close()
    end)
    e:dispose()
    -- a CA that did not sign the server's certificate is refused
    local wrong = engine({}, with_param(db.url, "ssl_mode=VERIFY_CA&ssl_ca=" .. encode(os.getenv("FSDB_TEST_CLIENT_CERT"))))
    local res, errno
    run(function()
      local _
      res, _, errno = wrong:connect()
    end)
    assert.is_nil(res)
    assert.are.equal(2026, errno)
  end)

  it("TLS with ssl_mode=VERIFY_IDENTITY checks the host name; client certificates log X509 users in", function()
    if no_tls_under_asan() then return end
    local ca = encode(os.getenv("FSDB_TEST_CA"))
    local good = engine({}, with_param(db.url, "ssl_mode=VERIFY_IDENTITY&ssl_ca=" .. ca))
    local alt = os.getenv("FSDB_TEST_ALT_HOST")
    local other = engine({}, with_param(db.url:gsub("@127%.0%.0%.1:", "@" .. alt .. ":"),
      "ssl_mode=VERIFY_IDENTITY&ssl_ca=" .. ca))
    local x509_url = db.url:gsub("^mysql://[^:]+:", "mysql://" .. os.getenv("FSDB_TEST_X509_USER") .. ":")
    local x509 = engine({}, with_param(x509_url, "ssl_mode=VERIFY_CA&ssl_ca=" .. ca
      .. "&ssl_cert=" .. encode(os.getenv("FSDB_TEST_CLIENT_CERT"))
      .. "&ssl_key=" .. encode(os.getenv("FSDB_TEST_CLIENT_KEY"))))
    local ok_conn, bad, bad_errno, x509_user
    run(function()
      ok_conn = good:connect()
      if ok_conn then ok_conn:close() end
      local _
      bad, _, bad_errno = other:connect()
      local c = assert(x509:connect())
      x509_user = assert(c:execute("SELECT CURRENT_USER() AS u"))[1].u
      c:close()
    end)
    assert.is_not_nil(ok_conn)
    assert.is_nil(bad)
    assert.are.equal(2026, bad_errno)
    assert.truthy(x509_user:find(os.getenv("FSDB_TEST_X509_USER"), 1, true))
    good:dispose(); other:dispose(); x509:dispose()
  end)

  it("caching_sha2_password follows the auth_plugins rules: refused by default, fast and full over a socket", function()
    local digest = require("openssl.digest")
    local function sha256(x) return digest.new("sha256"):final(x) end
    -- (no ~ operator in LuaJIT's grammar)
    local bxor = rawget(_G, "bit") and _G.bit.bxor or load("return function(a, b) return a ~ b end")()
    local function xor(a, b)
      local out = {}
      for i = 1, #a do out[i] = string.char(bxor(a:byte(i), b:byte(i))) end
      return table.concat(out)
    end
    local function pkt(seq, payload)
      local n = #payload
      return string.char(n % 256, math.floor(n / 256) % 256, math.floor(n / 65536), seq) .. payload
    end
    local nonce = "abcdefghijklmnopqrst"
    local hs = "\10" .. "8.0.36\0" .. "\7\0\0\0" .. nonce:sub(1, 8) .. "\0" .. string.char(0xff, 0xf7)
      .. "\45" .. "\2\0" .. string.char(0xff, 0x81) .. "\21" .. ("\0"):rep(10) .. nonce:sub(9) .. "\0"
      .. "caching_sha2_password\0"
    local fast = xor(sha256("s3cret"), sha256(sha256(sha256("s3cret")) .. nonce))
    -- Serves one login. verdict "switch": ask for caching_sha2_password by an
    -- auth switch (what a server does to a client that answered natively);
    -- 3: fast authentication succeeded; 4: "send me the password".
    local function serve(listener, verdict, seen)
      local s = listener:accept(2)
      if not s then return end
      s:setmode("bn", "bn")
      s:write(pkt(0, hs)); s:flush()
      local login = s:xread(-4096, "b", 2) or ""
      seen.login = login
      if verdict == "switch" then
        s:write(pkt(2, "\254caching_sha2_password\0" .. nonce .. "\0")); s:flush()
        seen.after = s:xread(-4096, "b", 1) or ""
      elseif verdict == 3 then
        s:write(pkt(2, "\1\3") .. pkt(3, "\0\0\0\2\0\0\0")); s:flush()
      else
        s:write(pkt(2, "\1\4")); s:flush()
        seen.after = s:xread(-4096, "b", 2) or ""
        s:write(pkt(4, "\0\0\0\2\0\0\0")); s:flush()
      end
      s:xread(-4096, "b", 1) -- the session set-up: the socket closes under it
      s:close()
    end
    local function login(listen, url, verdict)
      local listener = socket.listen(listen)
      listener:listen()
      local seen, r = {}, {}
      local e = engine({}, url(listener))
      run(function() serve(listener, verdict, seen) end, function() r = { e:connect() } end)
      listener:close()
      return seen, r[1], r[2], r[3]
    end
    local function tcp(extra)
      return function(l)
        local _, _, port = l:localname()
        return ("mysql://u:s3cret@127.0.0.1:%d/x%s"):format(port, extra or "")
      end
    end
    local path = os.tmpname()
    os.remove(path)
    local function sock(l)
      local _ = l
      return "mysql://u:s3cret@localhost/x?auth_plugins=caching_sha2_password&unix_socket=" .. encode(path)
    end

    -- by default: a native proof first, then the switch is refused
    local _
    local seen, res, err, errno = login({ host = "127.0.0.1", port = 0 }, tcp(), "switch")
    assert.is_nil(res)
    assert.are.equal(5010, errno)
    assert.truthy(err:find("refused before sending the password", 1, true))
    assert.falsy(seen.login:find(fast, 1, true))
    assert.falsy((seen.after or ""):find("s3cret", 1, true))
    -- listing it on an unverified channel is refused before the login
    seen, res, _, errno = login({ host = "127.0.0.1", port = 0 }, tcp("?auth_plugins=caching_sha2_password"), 3)
    assert.is_nil(res)
    assert.are.equal(9001, errno)
    assert.are.equal("", seen.login or "")
    -- over a unix socket, listed: the fast path's scramble; then the full
    -- authentication gets the password
    seen, _, _, errno = login({ path = path }, sock, 3)
    os.remove(path)
    assert.truthy(seen.login:find(fast, 1, true), "the fast-path scramble")
    assert.are.equal(2013, errno) -- logged in; the set-up query met a closed socket
    seen, _, _, errno = login({ path = path }, sock, 4)
    os.remove(path)
    assert.truthy((seen.after or ""):find("s3cret\0", 1, true))
    assert.are.equal(2013, errno)
  end)

  it("a hostile server's malformed packet is a clean 2027 error and a discarded connection", function()
    local listener = socket.listen({ host = "127.0.0.1", port = 0 })
    listener:listen()
    local _, _, port = listener:localname()
    local function pkt(seq, payload)
      local n = #payload
      return string.char(n % 256, math.floor(n / 256) % 256, math.floor(n / 65536), seq) .. payload
    end
    local caps = string.char(0xff, 0xf7) -- protocol 4.1, secure connection, …
    local hs = "\10" .. "10.11.0-MariaDB-hostile\0" .. "\1\0\0\0" .. "abcdefgh" .. "\0" .. caps
      .. "\45" .. "\2\0" .. string.char(0xff, 0x81) .. "\21" .. ("\0"):rep(10) .. "ijklmnopqrst\0"
      .. "mysql_native_password\0"
    local replies = {
      -- a column count of 2, then a column definition cut short
      pkt(1, "\2") .. pkt(2, "\3def\0\0\0\1a\0\12\33\0"),
    }
    local e = engine({ pool_size = 1 }, ("mysql://u:p@127.0.0.1:%d/x"):format(port))
    local res, err, errno
    run(function()
      local s = listener:accept()
      s:setmode("bn", "bn")
      s:write(pkt(0, hs)); s:flush()
      s:xread(-4096, "b") -- the login
      s:write(pkt(2, "\0\0\0\2\0\0\0")); s:flush()
      for _ = 1, 3 do -- the session set-up queries: answer the SELECT @@...
        local q = s:xread(-4096, "b")
        if not q then return end
        if q:find("wait_timeout", 1, true) then
          s:write(pkt(1, "\2") .. pkt(2, "\3def\0\0\0\1a\0\12\33\0\0\0\0\0\253\0\0\0\0\0")
            .. pkt(3, "\3def\0\0\0\1b\0\12\33\0\0\0\0\0\253\0\0\0\0\0") .. pkt(4, "\254\0\0\2\0")
            .. pkt(5, "\00528800\00816777216") .. pkt(6, "\254\0\0\2\0"))
          s:flush()
        else
          s:write(replies[1]); s:flush()
          break
        end
      end
      cqueues.sleep(0.2)
      s:close()
    end, function()
      local c = assert(e:connect())
      res, err, errno = c:execute("SELECT 1")
      c:close()
    end)
    listener:close()
    assert.is_nil(res)
    assert.are.equal(2027, errno)
    assert.truthy(err:find("malformed packet", 1, true))
    assert.are.equal(0, e:status().idle, "the connection was discarded")
  end)
end)
