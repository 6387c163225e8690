-- Connecting goes where the URL says: localhost with a port is TCP (never
-- a silent socket), a charset typo fails when the URL is read, and a 1044
-- says the database may not exist.
local fsdb = require("fsdb")
local db = require("helpers.db")

local function with_host(url, host)
  return (url:gsub("@127%.0%.0%.1:", "@" .. host .. ":", 1))
end

describe("#mariadb connecting", function()
  it("localhost with an explicit port reaches that TCP port", function()
    local url = with_host(db.url, "localhost")
    assert.matches("@localhost:" .. db.port .. "/", url, 1, true)
    local engine = fsdb.engine.new(url)
    local conn = assert(engine:connect())
    assert.matches("via TCP/IP", conn:info().host_info, 1, true)
    local row = assert(conn:execute("SELECT @@port AS port"))[1]
    assert.are.equal(db.port, tonumber(row.port))
    conn:close()
    engine:dispose()
  end)

  it("localhost with a closed port fails on TCP, not through a socket", function()
    local url = with_host(db.url, "localhost"):gsub(":" .. db.port .. "/", ":1/", 1)
    local engine = fsdb.engine.new(url, { pool_pre_ping = false })
    local conn, err, errno, sqlstate = engine:connect()
    assert.is_nil(conn)
    assert.is_true(errno == 2002 or errno == 2003, "errno " .. tostring(errno))
    assert.matches("Can't connect to server on 'localhost'", err, 1, true)
    assert.is_nil(err:find("socket", 1, true))
    assert.are.equal("HY000", sqlstate)
    assert.is_nil(err:find(db.password, 1, true))
    engine:dispose()
  end)

  it("localhost without a port is TCP to 3306 too (no socket unless the URL names one)", function()
    local parsed = assert(fsdb.url.parse("mysql://u@localhost/d"))
    assert.are.equal(3306, parsed.port)
    assert.is_nil(parsed.unix_socket)
  end)

  it("a socket named in the URL is used", function()
    local conn = assert(fsdb.engine.new(db.socket_url):connect())
    assert.matches("via UNIX socket", conn:info().host_info, 1, true)
    conn:close()
  end)

  it("charset=utf9 fails when the URL is read, with its sqlstate", function()
    local url = db.url .. (db.url:find("?", 1, true) and "&" or "?") .. "charset=utf9"
    local t, err, errno, sqlstate = fsdb.url.parse(url)
    assert.is_nil(t)
    assert.are.same({ "fsdb: unknown charset 'utf9' in URL (use utf8mb4; SHOW CHARACTER SET lists the others)",
      9001, "42000" }, { err, errno, sqlstate })
    local ok, raised = pcall(fsdb.engine.new, url)
    assert.is_false(ok)
    assert.matches("unknown charset 'utf9'", raised, 1, true)
    assert.is_nil(raised:find(db.password, 1, true))
  end)

  it("a 1044 for a database that does not exist says it may not exist", function()
    -- A user with no global grants gets 1044, not 1049, for a missing database.
    local root = db.root()
    local user, pw = "fsdb_no_global", "n0-gl0bal"
    for _, h in ipairs({ "localhost", "127.0.0.1" }) do
      db.must(root, ("DROP USER IF EXISTS '%s'@'%s'"):format(user, h))
      db.must(root, ("CREATE USER '%s'@'%s' IDENTIFIED BY '%s'"):format(user, h, pw))
      db.must(root, ("GRANT SELECT ON `%s`.* TO '%s'@'%s'"):format(db.db, user, h))
    end
    local url = ("mysql://%s:%s@127.0.0.1:%d/fsdb_no_such_db_44"):format(user, pw, db.port)
    local engine = fsdb.engine.new(url)
    local conn, err, errno, sqlstate = engine:connect()
    engine:dispose()
    for _, h in ipairs({ "localhost", "127.0.0.1" }) do
      db.must(root, ("DROP USER '%s'@'%s'"):format(user, h))
    end
    root:dispose()
    assert.is_nil(conn)
    assert.are.same({ 1044, "42000" }, { errno, sqlstate })
    assert.matches("; hint: the database may not exist or the user has no grant on it", err, 1, true)
    assert.is_nil(err:find("DB_PASSWORD", 1, true))
    assert.is_nil(err:find(pw, 1, true))
  end)
end)
