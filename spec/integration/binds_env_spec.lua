-- One convention for a second database's URL: DATABASE_URL_<NAME>, read by
-- fsdb.new's binds (auth = true), fsdb.config.bind_url and `fsdb check
-- --bind` / the migration verbs' --bind.
local fsdb = require("fsdb")
local cli = require("fsdb.cli")
local db = require("helpers.db")

local function shell_quote(s)
  return "'" .. s:gsub("'", [['\'']]) .. "'"
end

-- Runs Lua code in a fresh interpreter with the given environment
-- variables; returns its exit status and output.
local function lua_with_env(vars, code)
  local interpreter = jit and "luajit" or "lua5.4"
  local parts = { "env -u DATABASE_URL_AUTH" }
  for k, v in pairs(vars) do parts[#parts + 1] = k .. "=" .. shell_quote(v) end
  local prelude = ("package.path = %q; package.cpath = %q; "):format(package.path, package.cpath)
  local p = assert(io.popen(table.concat(parts, " ") .. " " .. interpreter .. " -e "
    .. shell_quote(prelude .. code) .. " 2>&1; echo \"__status=$?\""))
  local text = p:read("*a")
  p:close()
  return tonumber(text:match("__status=(%d+)%s*$")), (text:gsub("__status=%d+%s*$", ""))
end

local function db2_url()
  return (db.url:gsub("/" .. db.db .. "([?]?)", "/" .. db.db2 .. "%1", 1))
end

describe("DATABASE_URL_<NAME>", function()
  it("names the variable the same way everywhere", function()
    assert.are.equal("DATABASE_URL_AUTH", fsdb.config.bind_var("auth"))
    assert.are.equal("DATABASE_URL_READ_REPLICA", fsdb.config.bind_var("read-replica"))
    assert.are.equal("DATABASE_URL_AUDIT2", fsdb.config.bind_var("Audit2"))
  end)

  it("bind_url: the environment first, then .env, else a message naming the variable", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write('DATABASE_URL_AUTH="mysql://file@h/auth"  # from the file\n')
    f:close()
    local none = function() return nil end
    assert.are.same({ "mysql://env@h/auth", "DATABASE_URL_AUTH" }, { fsdb.config.bind_url("auth",
      function(n) if n == "DATABASE_URL_AUTH" then return "mysql://env@h/auth" end end, path) })
    assert.are.same({ "mysql://file@h/auth", "DATABASE_URL_AUTH" }, { fsdb.config.bind_url("auth", none, path) })
    os.remove(path)
    assert.are.same({ nil, "fsdb: no database URL for bind 'auth'; set DATABASE_URL_AUTH (in the environment "
      .. "or a .env file)" }, { fsdb.config.bind_url("auth", none, path) })
    assert.are.same({ nil, "fsdb: no database URL for bind 'auth'; set DATABASE_URL_AUTH (in the environment "
      .. "or a .env file)" }, { fsdb.config.bind_url("auth", function() return "" end, path) })
  end)

  it("fsdb.new{binds = {auth = true}} without the variable raises naming it", function()
    local status, out = lua_with_env({}, [[
      local fsdb = require("fsdb")
      local ok, err = pcall(fsdb.new, { url = "mysql://u@127.0.0.1:1/d", binds = { auth = true } })
      print(ok, err)
      ok, err = pcall(fsdb.new, { url = "mysql://u@127.0.0.1:1/d", binds = { auth = { pool_size = 1 } } })
      print(ok, err)]])
    assert.are.equal(0, status, out)
    assert.are.equal("false\tfsdb: no database URL for bind 'auth'; set DATABASE_URL_AUTH (in the "
      .. "environment or a .env file)\n", out:match("^[^\n]*\n"))
    assert.matches("\nfalse\tfsdb: no database URL for bind 'auth'; set DATABASE_URL_AUTH", out)
  end)

  it("rejects other bind values, naming the variable", function()
    local ok, err = pcall(fsdb.new, { url = "mysql://u@127.0.0.1:1/d", binds = { auth = 5 } })
    assert.is_false(ok)
    assert.matches("fsdb: bind 'auth' must be a URL, true (from DATABASE_URL_AUTH) or a table of options, "
      .. "got number", err, 1, true)
    ok, err = pcall(fsdb.new, { url = "mysql://u@127.0.0.1:1/d", binds = { auth = { url = 5 } } })
    assert.is_false(ok)
    assert.matches("fsdb: bind 'auth': url must be a string, got number", err, 1, true)
  end)

  it("#mariadb fsdb.new{binds = {auth = true}} connects to DATABASE_URL_AUTH", function()
    local status, out = lua_with_env({ DATABASE_URL_AUTH = db2_url() }, ([[
      local fsdb = require("fsdb")
      local db = fsdb.new{ url = %q, binds = { auth = true, audit = { pool_size = 1, url = %q } } }
      local s = db:session()
      print(assert(s:using("auth"):execute("SELECT DATABASE() AS d"))[1].d)
      print(db.engines.audit:status().size)
      s:close()]]):format(db.url, db2_url()))
    assert.are.equal(0, status, out)
    assert.are.equal(db.db2 .. "\n1\n", out)
    assert.is_nil(out:find(db.password, 1, true))
  end)

  it("#mariadb fsdb check --bind NAME reads DATABASE_URL_<NAME>", function()
    local outs, errs = {}, {}
    local status = cli.main({ "check", "--bind", "auth" }, {
      out = function(s) outs[#outs + 1] = s end,
      err = function(s) errs[#errs + 1] = s end,
      getenv = function(n) if n == "DATABASE_URL_AUTH" then return db2_url() end end,
      dotenv = "/nonexistent/fsdb-spec/.env",
    })
    local out = table.concat(outs)
    assert.are.equal(0, status, table.concat(errs))
    assert.matches("(from DATABASE_URL_AUTH)", out, 1, true)
    assert.matches("\ndatabase: +" .. db.db2 .. "\n", out)
    assert.is_nil(out:find(db.password, 1, true))

    outs, errs = {}, {}
    status = cli.main({ "check", "--bind", "auth" }, {
      out = function(s) outs[#outs + 1] = s end,
      err = function(s) errs[#errs + 1] = s end,
      getenv = function() return nil end,
      dotenv = "/nonexistent/fsdb-spec/.env",
    })
    assert.are.equal(1, status)
    assert.matches("set DATABASE_URL_AUTH", table.concat(errs), 1, true)
  end)
end)
