-- `fsdb check` against the throwaway server: in-process through
-- fsdb.cli.main, and as the real bin/fsdb in a subprocess.
local cli = require("fsdb.cli")
local db = require("helpers.db")

local function run(argv, env)
  local out, err = {}, {}
  env = env or {}
  env.out = function(s) out[#out + 1] = s end
  env.err = function(s) err[#err + 1] = s end
  env.getenv = env.getenv or function() return nil end
  env.dotenv = env.dotenv or "/nonexistent/fsdb-spec/.env"
  local status = cli.main(argv, env)
  return status, table.concat(out), table.concat(err)
end

local function encode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local function shell_quote(s)
  return "'" .. s:gsub("'", [['\'']]) .. "'"
end

-- The checkout: three levels above this file (spec/integration/cli_spec.lua).
local function checkout_root()
  local src = debug.getinfo(1, "S").source
  local dir = src:match("^@(.*)/spec/integration/[^/]*$")
  if dir == nil and src:match("^@spec/") then dir = "." end
  return dir or "."
end

-- Runs a shell command; returns its exit status and combined output.
local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"__status=$?\""))
  local text = p:read("*a")
  p:close()
  local status = tonumber(text:match("__status=(%d+)%s*$"))
  return status, (text:gsub("__status=%d+%s*$", ""))
end

describe("fsdb check #mariadb", function()
  local password = db.password
  local encoded = encode(password)

  local function no_password(text)
    assert.is_nil(text:find(password, 1, true), "raw password in output:\n" .. text)
    assert.is_nil(text:find(encoded, 1, true), "encoded password in output:\n" .. text)
  end

  it("reports server, user, database, charset and OK", function()
    local status, out, err = run({ "check", "--url", db.url })
    assert.are.equal(0, status, err)
    assert.are.equal("", err)
    assert.matches("\nserver: +[^\n]*MariaDB", out)
    assert.matches("fsdb@", out, 1, true)
    assert.matches("\ndatabase: +fsdb_test\n", out)
    assert.matches("\ncharset: +utf8mb4 ", out)
    assert.matches("\ntls: +%S", out)
    assert.matches("\nwait_timeout: +%d+ s\n", out)
    assert.matches("\npool: +size 5, max_overflow 10", out)
    assert.matches("mysql://fsdb:***@", out, 1, true)
    assert.matches("\nOK\n$", out)
    no_password(out)
  end)

  it("finds the database through DATABASE_URL", function()
    local status, out = run({ "check" }, {
      getenv = function(name) if name == "DATABASE_URL" then return db.url end end,
    })
    assert.are.equal(0, status)
    assert.matches("from DATABASE_URL", out, 1, true)
    assert.matches("\nOK\n$", out)
    no_password(out)
  end)

  it("finds the database through DB_* variables", function()
    local vars = { DB_USER = "fsdb", DB_PASSWORD = password, DB_HOST = "127.0.0.1",
                   DB_PORT = tostring(db.port), DB_NAME = db.db }
    local status, out = run({ "check" }, { getenv = function(name) return vars[name] end })
    assert.are.equal(0, status)
    assert.matches("from DB_* variables", out, 1, true)
    assert.matches("\nOK\n$", out)
    no_password(out)
  end)

  it("a wrong password exits 1 with 1045 / 28000", function()
    local url = ("mysql://fsdb:wrong-secret@127.0.0.1:%d/%s"):format(db.port, db.db)
    local status, out, err = run({ "check", "--url", url })
    assert.are.equal(1, status)
    assert.are.equal("", out)
    assert.matches("^fsdb check: FAILED\n", err)
    assert.matches("\nerrno: +1045\n", err)
    assert.matches("\nsqlstate: +28000\n", err)
    assert.matches("DB_PASSWORD", err, 1, true)
    assert.is_nil(err:find("wrong-secret", 1, true))
  end)

  it("an unknown database exits 1 with 1049 and a CREATE DATABASE hint", function()
    local url = db.root_url:gsub("/[^/]*$", "") .. "/fsdb_no_such_db"
    local status, out, err = run({ "check", "--url", url })
    assert.are.equal(1, status)
    assert.are.equal("", out)
    assert.matches("\nerrno: +1049\n", err)
    assert.matches("\nsqlstate: +42000\n", err)
    assert.matches("CREATE DATABASE", err, 1, true)
    assert.matches("fsdb_no_such_db", err, 1, true)
  end)

  describe("bin/fsdb as a subprocess", function()
    local root = checkout_root()
    local interpreter = jit and "luajit" or "lua5.4"
    -- No LUA_PATH/LUA_CPATH: the script must find the checkout by itself.
    local clean_env = "env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 "
      .. "-u DB_USER -u DB_PASSWORD -u DB_HOST -u DB_PORT -u DB_NAME -u DB_SOCKET "

    it("check with DATABASE_URL exits 0 and prints OK", function()
      local status, text = sh(clean_env .. "DATABASE_URL=" .. shell_quote(db.url) .. " "
        .. interpreter .. " " .. shell_quote(root .. "/bin/fsdb") .. " check")
      assert.are.equal(0, status, text)
      assert.matches("MariaDB", text, 1, true)
      assert.matches("fsdb@", text, 1, true)
      assert.matches("fsdb_test", text, 1, true)
      assert.matches("utf8mb4", text, 1, true)
      assert.matches("from DATABASE_URL", text, 1, true)
      assert.matches("\nOK\n$", text)
      no_password(text)
    end)

    it("runs through its #! line and reports failure with exit 1", function()
      local url = ("mysql://fsdb:wrong-secret@127.0.0.1:%d/%s"):format(db.port, db.db)
      local status, text = sh(clean_env .. "DATABASE_URL=" .. shell_quote(url) .. " "
        .. shell_quote(root .. "/bin/fsdb") .. " check")
      assert.are.equal(1, status, text)
      assert.matches("fsdb check: FAILED", text, 1, true)
      assert.matches("errno: +1045", text)
      assert.is_nil(text:find("wrong-secret", 1, true))
    end)

    it("exits 2 on a usage error", function()
      local status, text = sh(clean_env .. interpreter .. " " .. shell_quote(root .. "/bin/fsdb")
        .. " --no-such-flag")
      assert.are.equal(2, status, text)
      assert.matches("usage: fsdb", text, 1, true)
    end)
  end)
end)
