-- Failures caused by the server, the network or the environment return
-- `nil, err, errno, sqlstate` (DESIGN.md "Errors"). Each case checks all
-- four values, the hint, that the password never shows, and that the
-- engine has no connection left checked out.

local fsdb = require("fsdb")
local db = require("helpers.db")

-- The test password raw and percent-encoded as it appears in the URL.
local function encode(s)
  return (s:gsub("[^%w%-%._~]", function(c)
    return ("%%%02X"):format(c:byte())
  end))
end

-- db.url with its password replaced by `password` (already encoded).
local function with_password(url, password)
  local head, tail = url:match("^(%a[%w+.-]*://[^:/@]+:)[^@]*(@.*)$")
  assert(head, "the test URL has no user:password part")
  return head .. password .. tail
end

-- db.url pointing at another database.
local function with_database(url, name)
  local base, query = url:match("^([^?]*)(.*)$")
  local replaced, n = base:gsub("/[^/]*$", "/" .. name)
  assert(n == 1 and replaced:find("@", 1, true), "cannot find the database in the test URL")
  return replaced .. query
end

-- A local TCP port nothing listens on: refused when we try it.
local function closed_port()
  local ok, socket = pcall(require, "socket")
  for _, port in ipairs({ 1, 9, 47, 61, 65533 }) do
    local open
    if ok then
      local s = socket.tcp()
      s:settimeout(2)
      open = s:connect("127.0.0.1", port) ~= nil
      s:close()
    else
      local r = os.execute(("bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d' 2>/dev/null"):format(port))
      open = r == true or r == 0
    end
    if not open then
      return port
    end
  end
  error("no closed port found on 127.0.0.1")
end

-- Asserts that err is one fsdb line without any form of a secret.
local function clean_message(err, secrets)
  assert.are.equal("string", type(err))
  assert.are.equal("fsdb: ", err:sub(1, 6), "err must start with 'fsdb: ': " .. err)
  assert.is_nil(err:find("\n", 1, true), "err must be one line")
  for _, secret in ipairs(secrets) do
    assert.is_nil(err:find(secret, 1, true), "err shows a secret: " .. err)
  end
end

-- Asserts the four return values of a failure.
local function failure(secrets, res, err, errno, sqlstate, want)
  assert.is_nil(res, "expected a failure, got a result")
  clean_message(err, secrets)
  if type(want.errno) == "table" then
    local seen = false
    for _, code in ipairs(want.errno) do
      seen = seen or errno == code
    end
    assert.is_true(seen, ("errno %s is not one of %s"):format(tostring(errno), table.concat(want.errno, ", ")))
  else
    assert.are.equal(want.errno, errno, "errno; err was: " .. err)
  end
  assert.are.equal("number", type(errno))
  assert.are.equal(want.sqlstate, sqlstate, "sqlstate; err was: " .. err)
  for _, words in ipairs(want.contains or {}) do
    assert.is_truthy(err:find(words, 1, true), ("err lacks %q: %s"):format(words, err))
  end
  if want.hint then
    local hint = err:match("; hint: (.*)$")
    assert.is_truthy(hint, "err has no hint: " .. err)
    for _, words in ipairs(want.hint) do
      assert.is_truthy(hint:find(words, 1, true), ("hint lacks %q: %s"):format(words, err))
    end
  end
end

describe("errors #mariadb", function()
  local secrets

  setup(function()
    secrets = { db.password, encode(db.password) }
    -- The URL really carries that encoded form, or the checks prove nothing.
    assert.is_truthy(db.url:find(encode(db.password), 1, true))
  end)

  describe("statement errors", function()
    local engine, conn, t

    setup(function()
      engine = db.engine()
      conn = assert(engine:connect())
      t = db.unique("errs")
      db.must(conn, "CREATE TABLE " .. t .. " (id INT PRIMARY KEY, name VARCHAR(20))")
      db.must(conn, "INSERT INTO " .. t .. " VALUES (1, 'one')")
    end)

    teardown(function()
      if conn then
        conn:execute("DROP TABLE IF EXISTS " .. t)
        conn:close()
      end
      if engine then
        engine:dispose()
      end
    end)

    it("syntax error on the text path: 1064, 42000", function()
      local res, err, errno, sqlstate = conn:execute("SELEC 1")
      failure(secrets, res, err, errno, sqlstate,
        { errno = 1064, sqlstate = "42000", contains = { "SQL syntax", "near 'SELEC 1'" } })
    end)

    it("syntax error on the prepared path: 1064, 42000", function()
      local res, err, errno, sqlstate = conn:execute("SELEC ?", 1)
      failure(secrets, res, err, errno, sqlstate,
        { errno = 1064, sqlstate = "42000", contains = { "SQL syntax", "near 'SELEC ?'" } })
    end)

    it("duplicate key on the text path: 1062, 23000", function()
      local res, err, errno, sqlstate = conn:execute("INSERT INTO " .. t .. " VALUES (1, 'again')")
      failure(secrets, res, err, errno, sqlstate,
        { errno = 1062, sqlstate = "23000", contains = { "Duplicate entry '1'" } })
    end)

    it("duplicate key on the prepared path: 1062, 23000", function()
      local res, err, errno, sqlstate = conn:execute("INSERT INTO " .. t .. " VALUES (?, ?)", 1, "again")
      failure(secrets, res, err, errno, sqlstate,
        { errno = 1062, sqlstate = "23000", contains = { "Duplicate entry '1'" } })
    end)

    it("an error while rows are produced, text path: 1690, 22003", function()
      local res, err, errno, sqlstate = conn:execute("SELECT CAST(1 AS UNSIGNED) - 2 AS v")
      failure(secrets, res, err, errno, sqlstate,
        { errno = 1690, sqlstate = "22003", contains = { "BIGINT UNSIGNED value is out of range" } })
    end)

    it("an error while rows are produced, prepared path: 1690, 22003", function()
      local res, err, errno, sqlstate = conn:execute("SELECT CAST(1 AS UNSIGNED) - ? AS v", 2)
      failure(secrets, res, err, errno, sqlstate,
        { errno = 1690, sqlstate = "22003", contains = { "BIGINT UNSIGNED value is out of range" } })
    end)

    it("the connection stays usable after a statement error", function()
      local res = assert(conn:execute("SELECT COUNT(*) AS n FROM " .. t .. " WHERE id = ?", 1))
      assert.are.equal(1, res[1].n)
      assert.are.equal(1, engine:status().checked_out)
    end)

    it("engine:execute returns the failure and leaves nothing checked out", function()
      local e2 = db.engine()
      local res, err, errno, sqlstate = e2:execute("SELEC 1")
      failure(secrets, res, err, errno, sqlstate, { errno = 1064, sqlstate = "42000" })
      assert.are.equal(0, e2:status().checked_out)
      res, err, errno, sqlstate = e2:execute("INSERT INTO " .. t .. " VALUES (?, ?)", 1, "again")
      failure(secrets, res, err, errno, sqlstate, { errno = 1062, sqlstate = "23000" })
      assert.are.equal(0, e2:status().checked_out)
      e2:dispose()
    end)
  end)

  describe("connection errors", function()
    -- Connects through a fresh engine; checks the failure and the pool.
    local function connect_fails(url, want, extra_secrets)
      local engine = fsdb.engine.new(url)
      local all = { secrets[1], secrets[2] }
      for _, s in ipairs(extra_secrets or {}) do
        all[#all + 1] = s
      end
      local res, err, errno, sqlstate = engine:connect()
      failure(all, res, err, errno, sqlstate, want)
      assert.are.equal(0, engine:status().checked_out)
      -- engine:execute goes through the same checkout
      res, err, errno, sqlstate = engine:execute("SELECT 1")
      failure(all, res, err, errno, sqlstate, want)
      assert.are.equal(0, engine:status().checked_out)
      engine:dispose()
      return err
    end

    it("access denied with a wrong password: 1045, 28000", function()
      local wrong = "wr0ng@pw:" .. db.password
      connect_fails(with_password(db.url, encode(wrong)), {
        errno = 1045, sqlstate = "28000",
        contains = { "Access denied" },
        hint = { "DB_USER/DB_PASSWORD" },
      }, { wrong, encode(wrong) })
    end)

    it("unknown database: 1049, 42000", function()
      -- The test user may create fsdb_% databases, so the server says
      -- "unknown" rather than "access denied" for this name.
      local name = db.unique("fsdb_nodb")
      connect_fails(with_database(db.url, name), {
        errno = 1049, sqlstate = "42000",
        contains = { "Unknown database '" .. name .. "'" },
        hint = { "CREATE DATABASE" },
      })
    end)

    it("connection refused on a closed local port: 2002 or 2003, HY000", function()
      local port = closed_port()
      local url = db.url:gsub("@[^/]*/", "@127.0.0.1:" .. port .. "/", 1)
      assert.is_truthy(url:find("@127.0.0.1:" .. port .. "/", 1, true))
      connect_fails(url, {
        errno = { 2002, 2003 }, sqlstate = "HY000",
        contains = { "127.0.0.1" },
        hint = { "DB_HOST/DB_PORT" },
      })
    end)

    it("a socket path that does not exist: 2002, HY000", function()
      local path = "/nonexistent-" .. db.unique("fsdb") .. "/mysqld.sock"
      local base = db.url:match("^([^?]*)")
      local url = base:gsub("@[^/]*/", "@localhost/", 1) .. "?unix_socket=" .. encode(path)
      connect_fails(url, {
        errno = 2002, sqlstate = "HY000",
        contains = { path },
        hint = { "DB_HOST/DB_PORT", "DB_SOCKET" },
      })
    end)
  end)

  describe("the password is never shown", function()
    it("tostring(engine) and engine:url() show *** instead", function()
      local engine = db.engine()
      for _, shown in ipairs({ tostring(engine), engine:url() }) do
        assert.is_truthy(shown:find(":***@", 1, true), shown)
        for _, secret in ipairs(secrets) do
          assert.is_nil(shown:find(secret, 1, true), shown)
        end
      end
      local status = engine:status()
      for k, v in pairs(status) do
        for _, secret in ipairs(secrets) do
          assert.is_nil(tostring(k):find(secret, 1, true))
          assert.is_nil(tostring(v):find(secret, 1, true))
        end
      end
      engine:dispose()
    end)

    it("a connection's tostring does not show it", function()
      local engine = db.engine()
      local conn = assert(engine:connect())
      for _, shown in ipairs({ tostring(conn) }) do
        for _, secret in ipairs(secrets) do
          assert.is_nil(shown:find(secret, 1, true), shown)
        end
      end
      conn:close()
      engine:dispose()
    end)

    it("a bad URL raises an error without the password", function()
      local enc = encode(db.password)
      local bad = {
        -- unencoded '@', ':' and '/' in the password
        "mysql://fsdb:" .. db.password .. "@127.0.0.1:3306/fsdb_test",
        "mysql://fsdb:" .. enc .. "@127.0.0.1:99999/fsdb_test",
        "mysql://fsdb:" .. enc .. "@127.0.0.1:3306/fsdb_test?bogus_option=1",
        "mysql://fsdb:" .. enc .. "@127.0.0.1:3306/fsdb_test?connect_timeout=soon",
        "postgres://fsdb:" .. enc .. "@127.0.0.1:3306/fsdb_test",
        "mysql://fsdb:" .. enc .. "%zz@127.0.0.1:3306/fsdb_test",
      }
      for i, url in ipairs(bad) do
        local ok, err = pcall(fsdb.engine.new, url)
        assert.is_false(ok, "accepted bad URL #" .. i)
        clean_message(tostring(err):gsub("^[^:]+:%d+: ", ""), secrets)
      end
    end)
  end)
end)
