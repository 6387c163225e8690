local config = require("fsdb.config")

local function env(t)
  return function(name) return t[name] end
end

describe("fsdb.config", function()
  describe("url_from_vars", function()
    local cases = {
      { { DATABASE_URL = "mysql://a:b@h/d" }, "mysql://a:b@h/d" },
      { { DATABASE_URL = "mysql://a:b@h/d", DB_USER = "x", DB_NAME = "y" }, "mysql://a:b@h/d" },
      { { DB_USER = "shop", DB_PASSWORD = "secret", DB_HOST = "db.local", DB_PORT = "3307", DB_NAME = "store" },
        "mysql://shop:secret@db.local:3307/store" },
      { { DB_USER = "shop", DB_NAME = "store" }, "mysql://shop@localhost/store" },
      { { DB_USER = "shop", DB_PASSWORD = "", DB_NAME = "store" }, "mysql://shop@localhost/store" },
      { { DB_USER = "sh@p", DB_PASSWORD = "p@ss:w/rd%42", DB_HOST = "127.0.0.1", DB_NAME = "store" },
        "mysql://sh%40p:p%40ss%3Aw%2Frd%2542@127.0.0.1/store" },
      { { DB_USER = "u", DB_HOST = "::1", DB_PORT = "3306", DB_NAME = "d" }, "mysql://u@[::1]:3306/d" },
      { { DB_USER = "u", DB_NAME = "d", DB_SOCKET = "/run/mysqld/mysqld.sock", DB_PORT = "3306" },
        "mysql://u@localhost/d?unix_socket=%2Frun%2Fmysqld%2Fmysqld.sock" },
      { { DB_USER = "u", DB_NAME = "caf\195\169" }, "mysql://u@localhost/caf%C3%A9" },
      -- a host list: DB_PORT for the hosts that give none, bare IPv6 bracketed
      { { DB_USER = "u", DB_HOST = "h1, h2:3307,::1,[::2]:3309", DB_PORT = "3310", DB_NAME = "d" },
        "mysql://u@h1:3310,h2:3307,[::1]:3310,[::2]:3309/d" },
      { { DB_USER = "u", DB_HOST = "h1,h2", DB_NAME = "d" }, "mysql://u@h1,h2/d" },
    }
    for i, c in ipairs(cases) do
      it("case " .. i .. " -> " .. require("fsdb.url").redact(c[2]), function()
        assert.are.equal(c[2], config.url_from_vars(c[1]))
      end)
    end

    it("every built URL parses back to the same parts", function()
      local url = require("fsdb.url")
      local t = assert(url.parse(config.url_from_vars({
        DB_USER = "sh@p", DB_PASSWORD = "p@ss:w/rd%42", DB_HOST = "127.0.0.1", DB_PORT = "3310", DB_NAME = "store" })))
      assert.are.equal("sh@p", t.user)
      assert.are.equal("p@ss:w/rd%42", t.password)
      assert.are.equal("127.0.0.1", t.host)
      assert.are.equal(3310, t.port)
      assert.are.equal("store", t.database)
    end)

    it("says what to set when nothing is configured", function()
      local u, err = config.url_from_vars({})
      assert.is_nil(u)
      assert.are.equal("fsdb: no database configured; set DATABASE_URL or DB_USER, DB_PASSWORD, "
        .. "DB_HOST, DB_PORT and DB_NAME (in the environment or a .env file)", err)
    end)
  end)

  describe("parse_dotenv", function()
    it("reads the usual shapes", function()
      local vars = config.parse_dotenv(table.concat({
        "# the store's settings",
        "",
        "DB_USER=shop",
        "export DB_HOST = db.local ",
        "DB_PASSWORD='p@ss # not a comment'",
        'DB_NAME="store\\tx"',
        "DB_PORT=3307 # a comment",
        "BROKEN LINE",
        "CRLF=yes\r",
        "EMPTY=",
      }, "\n"))
      assert.are.same({
        DB_USER = "shop", DB_HOST = "db.local", DB_PASSWORD = "p@ss # not a comment",
        DB_NAME = "store\tx", DB_PORT = "3307", CRLF = "yes", EMPTY = "",
      }, vars)
    end)
  end)

  describe("url_from_env", function()
    local path = os.tmpname()
    setup(function()
      local f = assert(io.open(path, "w"))
      f:write("DB_USER=fromfile\nDB_PASSWORD=filepw\nDB_NAME=filedb\nDB_PORT=3999\n")
      f:close()
    end)
    teardown(function() os.remove(path) end)

    it("real environment variables win over .env", function()
      local u = config.url_from_env(env({ DB_USER = "real", DB_HOST = "10.0.0.5" }), path)
      assert.are.equal("mysql://real:filepw@10.0.0.5:3999/filedb", u)
    end)

    it("DATABASE_URL in the environment wins over DB_* in .env", function()
      assert.are.equal("mysql://x@y/z", config.url_from_env(env({ DATABASE_URL = "mysql://x@y/z" }), path))
    end)

    it("works without a .env file", function()
      local u = config.url_from_env(env({ DB_USER = "a", DB_NAME = "b" }), path .. ".missing")
      assert.are.equal("mysql://a@localhost/b", u)
    end)
  end)
end)

describe("fsdb.engine options", function()
  local engine = require("fsdb.engine")
  local url = "mysql://u:secret@127.0.0.1:1/d"

  it("creates no connection until first use", function()
    local e = engine.new(url, { pool_size = 2 })
    local st = e:status()
    assert.are.same({ 2, 10, 0, 0, 0, 0 }, { st.size, st.max_overflow, st.checked_out, st.idle, st.overflow, st.connects })
  end)

  it("applies SQLAlchemy's defaults", function()
    local st = engine.new(url):status()
    assert.are.equal(5, st.size)
    assert.are.equal(10, st.max_overflow)
  end)

  it("raises on an unknown option, naming it", function()
    local ok, err = pcall(engine.new, url, { pool_sise = 3 })
    assert.is_false(ok)
    assert.matches("fsdb: unknown engine option 'pool_sise' (known: ", err, 1, true)
  end)

  local bad = {
    { "pool_size", -1 }, { "pool_size", 1.5 }, { "pool_size", "5" }, { "max_overflow", -2 },
    { "pool_timeout", -1 }, { "pool_recycle", "1" }, { "pool_pre_ping", 1 },
    { "pool_reset_on_return", "rollbak" }, { "pool_reset_on_return", true },
    { "pool_use_lifo", "yes" }, { "isolation_level", "DIRTY" }, { "init_command", 5 },
    { "on_connect", "f" }, { "statement_cache_size", 0 },
    { "executemany_mode", "bulk" }, { "executemany_mode", true },
  }
  for _, b in ipairs(bad) do
    it(("raises on %s = %s"):format(b[1], tostring(b[2])), function()
      local ok, err = pcall(engine.new, url, { [b[1]] = b[2] })
      assert.is_false(ok)
      assert.matches(("fsdb: bad value for engine option '%s' (expected "):format(b[1]), err, 1, true)
    end)
  end

  it("raises on a bad URL without showing the password", function()
    local ok, err = pcall(engine.new, "postgresql://u:secret@h/d")
    assert.is_false(ok)
    assert.matches("unsupported URL scheme 'postgresql'", err, 1, true)
    assert.is_nil(err:find("secret", 1, true))
  end)

  it("renders itself without the password", function()
    local e = engine.new(url)
    assert.are.equal("mysql://u:***@127.0.0.1:1/d", e:url())
    assert.are.equal("fsdb.engine (mysql://u:***@127.0.0.1:1/d)", tostring(e))
  end)
end)
