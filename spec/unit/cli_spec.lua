-- The command line without a server: usage, exit codes, and a `check`
-- that fails cleanly (and without leaking the password) when nothing
-- listens.
local cli = require("fsdb.cli")

-- Runs cli.main with captured output; returns status, stdout, stderr.
local function run(argv, env)
  local out, err = {}, {}
  env = env or {}
  env.out = function(s) out[#out + 1] = s end
  env.err = function(s) err[#err + 1] = s end
  if not env.getenv then
    env.getenv = function() return nil end -- no DATABASE_URL / DB_* leaks in
  end
  env.dotenv = env.dotenv or "/nonexistent/fsdb-spec/.env"
  local status = cli.main(argv, env)
  return status, table.concat(out), table.concat(err)
end

-- Ports with a listening TCP socket, from /proc/net/tcp and tcp6.
local function listening_ports()
  local ports = {}
  for _, file in ipairs({ "/proc/net/tcp", "/proc/net/tcp6" }) do
    local f = io.open(file, "r")
    if f then
      for l in f:lines() do
        local port, state = l:match("^%s*%d+:%s+%x+:(%x+)%s+%x+:%x+%s+(%x+)")
        if port and state == "0A" then
          ports[tonumber(port, 16)] = true
        end
      end
      f:close()
    end
  end
  return ports
end

local function closed_port()
  local busy = listening_ports()
  for _, p in ipairs({ 1, 9, 47, 61, 2, 3 }) do
    if not busy[p] then return p end
  end
  error("no closed port found among the candidates")
end

describe("fsdb.cli", function()
  describe("usage", function()
    it("--help exits 0 and lists check and the migration commands", function()
      local status, out, err = run({ "--help" })
      assert.are.equal(0, status)
      assert.are.equal("", err)
      assert.matches("usage: fsdb", out, 1, true)
      assert.matches("\n  check ", out, 1, true)
      assert.is_nil(out:find("not available yet", 1, true))
      for _, verb in ipairs({ "init", "revision", "migrate", "upgrade", "downgrade", "stamp",
                              "current", "history", "heads", "branches", "merge", "show" }) do
        assert.matches("%f[%w]" .. verb .. "%f[^%w]", out)
      end
    end)

    it("help and -h say the same", function()
      local s1, help = run({ "help" })
      local s2, h = run({ "-h" })
      assert.are.equal(0, s1)
      assert.are.equal(0, s2)
      assert.are.equal(help, h)
    end)

    it("help check and check --help describe check", function()
      local s1, out1 = run({ "help", "check" })
      local s2, out2 = run({ "check", "--help" })
      assert.are.equal(0, s1)
      assert.are.equal(0, s2)
      assert.matches("usage: fsdb check", out1, 1, true)
      assert.are.equal(out1, out2)
    end)

    it("--version exits 0 and names the version", function()
      local status, out = run({ "--version" })
      assert.are.equal(0, status)
      assert.matches("^fsdb %d+%.%d+%.%d+", out)
      assert.matches("Connector/C", out, 1, true)
    end)

    it("no command is a usage error", function()
      local status, out, err = run({})
      assert.are.equal(2, status)
      assert.are.equal("", out)
      assert.matches("no command given", err, 1, true)
      assert.matches("usage: fsdb", err, 1, true)
    end)

    it("an unknown command exits 2 with the usage on stderr", function()
      local status, out, err = run({ "frobnicate" })
      assert.are.equal(2, status)
      assert.are.equal("", out)
      assert.matches("unknown command 'frobnicate'", err, 1, true)
      assert.matches("usage: fsdb", err, 1, true)
    end)

    it("an unknown option exits 2 with the usage on stderr", function()
      local status, out, err = run({ "check", "--frobnicate" })
      assert.are.equal(2, status)
      assert.are.equal("", out)
      assert.matches("unknown option '--frobnicate'", err, 1, true)
      assert.matches("usage: fsdb", err, 1, true)
    end)

    it("--url without a value exits 2", function()
      local status, _, err = run({ "check", "--url" })
      assert.are.equal(2, status)
      assert.matches("needs a value", err, 1, true)
    end)

    it("check takes no positional arguments", function()
      local status, _, err = run({ "check", "extra" })
      assert.are.equal(2, status)
      assert.matches("takes no arguments", err, 1, true)
    end)

    it("a usage error never echoes a password", function()
      local status, out, err = run({ "check", "mysql://u:secretpw@127.0.0.1/d" })
      assert.are.equal(2, status)
      assert.is_nil((out .. err):find("secretpw", 1, true))
      status, out, err = run({ "--bogus=mysql://u:secretpw@h/d", "check" })
      assert.are.equal(2, status)
      assert.is_nil((out .. err):find("secretpw", 1, true))
    end)

    for _, verb in ipairs({ "upgrade", "downgrade", "history", "current", "heads" }) do
      it("'" .. verb .. "' without a migrations directory exits 1 and says to run init", function()
        local status, out, err = run({ verb, "-d", "/nonexistent/fsdb-spec/migrations" })
        assert.are.equal(1, status)
        assert.are.equal("", out)
        assert.matches("^fsdb " .. verb .. ": Path doesn't exist: /nonexistent/fsdb%-spec/migrations%. Please use the 'init' command", err)
      end)
    end
  end)

  describe("check without a server", function()
    it("a closed port exits 1 with errno, sqlstate and a hint, and no password", function()
      local port = closed_port()
      local url = ("mysql://u:secretpw@127.0.0.1:%d/d"):format(port)
      local status, out, err = run({ "check", "--url", url })
      assert.are.equal(1, status)
      assert.are.equal("", out)
      assert.matches("^fsdb check: FAILED\n", err)
      assert.matches("\nurl: +mysql://u:%*%*%*@127%.0%.0%.1:" .. port .. "/d", err)
      assert.matches("\nerror: +fsdb: ", err)
      local errno = tonumber(err:match("\nerrno: +(%d+)"))
      assert.truthy(errno == 2002 or errno == 2003, "errno 2002 or 2003 expected in:\n" .. err)
      assert.matches("\nsqlstate: +HY000", err)
      assert.matches("DB_HOST", err, 1, true)
      assert.is_nil(err:find("secretpw", 1, true))
    end)

    it("--url=URL works the same", function()
      local url = ("mysql://u:secretpw@127.0.0.1:%d/d"):format(closed_port())
      local status, out, err = run({ "check", "--url=" .. url })
      assert.are.equal(1, status)
      assert.are.equal("", out)
      assert.is_nil(err:find("secretpw", 1, true))
    end)

    it("takes the URL from DATABASE_URL when --url is absent", function()
      local url = ("mysql://u:secretpw@127.0.0.1:%d/d"):format(closed_port())
      local status, _, err = run({ "check" }, {
        getenv = function(name) if name == "DATABASE_URL" then return url end end,
      })
      assert.are.equal(1, status)
      assert.matches("from DATABASE_URL", err, 1, true)
      assert.is_nil(err:find("secretpw", 1, true))
    end)

    it("builds the URL from DB_* variables", function()
      local vars = { DB_USER = "u", DB_PASSWORD = "secret/pw", DB_HOST = "127.0.0.1",
                     DB_PORT = tostring(closed_port()), DB_NAME = "d" }
      local status, _, err = run({ "check" }, { getenv = function(name) return vars[name] end })
      assert.are.equal(1, status)
      assert.matches("from DB_* variables", err, 1, true)
      assert.matches("mysql://u:***@127.0.0.1:", err, 1, true)
      assert.is_nil(err:find("secret/pw", 1, true))
      assert.is_nil(err:find("secret%2Fpw", 1, true))
    end)

    it("no configuration at all exits 1 and says what to set", function()
      local status, out, err = run({ "check" })
      assert.are.equal(1, status)
      assert.are.equal("", out)
      assert.matches("^fsdb check: FAILED\n", err)
      assert.matches("DATABASE_URL", err, 1, true)
    end)

    it("a malformed URL exits 1 with fsdb's URL error and no password", function()
      local status, _, err = run({ "check", "--url", "mysql://u:secretpw@h:99999/d" })
      assert.are.equal(1, status)
      assert.matches("\nerrno: +9001", err)
      assert.is_nil(err:find("secretpw", 1, true))
    end)

    it("a password with URL-special characters is hidden in both forms", function()
      local url = ("mysql://u:p%%40ss%%3Aw%%2Frd%%2542@127.0.0.1:%d/d"):format(closed_port())
      local status, _, err = run({ "check", "--url", url })
      assert.are.equal(1, status)
      assert.is_nil(err:find("p@ss:w/rd%42", 1, true))
      assert.is_nil(err:find("p%40ss%3Aw%2Frd%2542", 1, true))
    end)
  end)
end)
