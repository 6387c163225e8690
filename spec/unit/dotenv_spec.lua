-- .env files are read the way python-dotenv reads them (a Flask app's .env
-- must mean the same to fsdb). Each case has its expected variables, and
-- the same table is run through Debian's python3-dotenv, so the
-- expectations cannot drift from the reference.
local config = require("fsdb.config")

-- name, file text, real environment, expected variables
local cases = {
  { "plain", "DB_HOST=127.0.0.1\n", {}, { DB_HOST = "127.0.0.1" } },
  { "double quotes and a comment", 'DB_HOST="127.0.0.1"  # the container\n', {}, { DB_HOST = "127.0.0.1" } },
  { "single quotes keep a #", "DB_PASSWORD='p@ss #1' # the password\n", {}, { DB_PASSWORD = "p@ss #1" } },
  { "an unquoted value ends at ' #'", "DB_PORT=3307 # mapped port\n", {}, { DB_PORT = "3307" } },
  { "a # inside a word stays", "DB_PASSWORD=abc#def\n", {}, { DB_PASSWORD = "abc#def" } },
  { "export and spaces around =", "export DB_USER=shop\nDB_NAME = store  \n", {},
    { DB_USER = "shop", DB_NAME = "store" } },
  { "${VAR} from a line above", "DB_HOST=db\nDATABASE_URL=mysql://u@${DB_HOST}:3306/s\n", {},
    { DB_HOST = "db", DATABASE_URL = "mysql://u@db:3306/s" } },
  { "${VAR}: the real environment wins over the file", "DB_HOST=file\nURL=${DB_HOST}\n", { DB_HOST = "real" },
    { DB_HOST = "file", URL = "real" } },
  { "${VAR:-default}", "A=${MISSING:-fallback}\nB=${SET:-unused}\n", { SET = "set" },
    { A = "fallback", B = "set" } },
  { "an unset ${VAR} is empty; a bare $VAR stays", "A=x${MISSING}y\nB=$HOME/x\n", {},
    { A = "xy", B = "$HOME/x" } },
  { "${VAR} in quotes too", "P=s3cret\nA=\"${P}\"\nB='${P}'\n", {}, { P = "s3cret", A = "s3cret", B = "s3cret" } },
  { "escapes in double quotes", 'A="l1\\nl2\\t\\"q\\" \\\\ \\d \\\'"\n', {}, { A = "l1\nl2\t\"q\" \\ \\d '" } },
  { "single quotes: only \\' and \\\\", "A='a\\nb \\' c \\\\'\n", {}, { A = "a\\nb ' c \\" } },
  { "a quoted value spans lines", 'A="first\nsecond"\nB=2\n', {}, { A = "first\nsecond", B = "2" } },
  { "a line that does not parse sets nothing", "BROKEN LINE\nB=2\n", {}, { B = "2" } },
  { "text after a closing quote spoils the line", 'A="x"y\nB=1\n', {}, { B = "1" } },
  { "an unclosed quote spoils its line", 'A="abc\nB=1\n', {}, { B = "1" } },
  { "empty values", "A=\nB=\"\"\nC=''\n", {}, { A = "", B = "", C = "" } },
  { "a key without = sets nothing (and expands to empty)", "A\nB=${A:-d}\n", {}, { B = "" } },
  { "CRLF line ends, also inside quotes", 'A=1\r\nB="x\r\ny"\r\n', {}, { A = "1", B = "x\ny" } },
  { "the later line wins", "A=1\nA=2\n", {}, { A = "2" } },
  { "comments, blank lines, indentation", "  # settings\n\n   A=1\n\t# B=2\n", {}, { A = "1" } },
  { "a password with URL characters", "DB_PASSWORD=p@ss:w/rd%42\n", {}, { DB_PASSWORD = "p@ss:w/rd%42" } },
  { "= inside a value", "A=b=c\n", {}, { A = "b=c" } },
  { "'quoted' key, and export as a key", "'A'=1\nexport=2\n", {}, { A = "1", export = "2" } },
  { "no final newline", "A=last", {}, { A = "last" } },
  { "a value that starts with #", "A=#x\nB= #y\n", {}, { A = "#x", B = "#y" } },
}

local function getenv_of(env)
  return function(name) return env[name] end
end

local function unhex(h)
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

local shell_quote = require("helpers.files").shell_quote

-- python-dotenv's reading of text, as load_dotenv does it (the real
-- environment wins over the file for ${VAR}): name → value, nil = no value.
local PY = [[
import sys
from dotenv.main import DotEnv
d = DotEnv(sys.argv[1], interpolate=True, override=False).dict()
for k, v in d.items():
    print(k.encode().hex(), "-" if v is None else "=" + v.encode().hex())
]]

local function python_reads(text, env)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  local vars = { "env -i PATH=/usr/bin:/bin" }
  for k, v in pairs(env) do vars[#vars + 1] = k .. "=" .. shell_quote(v) end
  local p = assert(io.popen(table.concat(vars, " ") .. " python3 -c " .. shell_quote(PY) .. " "
    .. shell_quote(path) .. " 2>/dev/null"))
  local out = p:read("*a")
  p:close()
  os.remove(path)
  local got = {}
  for k, v in out:gmatch("(%x*) ([^\n]*)\n") do
    got[unhex(k)] = v ~= "-" and unhex(v:sub(2)) or nil
  end
  return got, out
end

describe("fsdb.config.parse_dotenv", function()
  for i, c in ipairs(cases) do
    it(("#%d %s"):format(i, c[1]), function()
      assert.are.same(c[4], config.parse_dotenv(c[2], getenv_of(c[3])))
    end)
  end

  it("has 15 or more cases", function()
    assert.is_true(#cases >= 15)
  end)

  it("reads ${VAR} from os.getenv by default", function()
    local home = os.getenv("HOME")
    if home then
      assert.are.same({ A = home }, config.parse_dotenv("A=${HOME}"))
    end
  end)

  it("a quoted password loses its quotes and comment on its way into the URL", function()
    local vars = config.parse_dotenv('DB_USER=shop\nDB_PASSWORD="p@ss w"  # prod\nDB_HOST="127.0.0.1"  # local\n'
      .. "DB_PORT=3307 # mapped\nDB_NAME='store'\n", getenv_of({}))
    assert.are.equal("mysql://shop:p%40ss%20w@127.0.0.1:3307/store", config.url_from_vars(vars))
  end)
end)

describe("fsdb.config.parse_dotenv against python-dotenv", function()
  -- env -i: no LD_PRELOAD of the ASan run's sanitizer into python.
  local ok = os.execute("env -i PATH=/usr/bin:/bin python3 -c 'import dotenv' 2>/dev/null")
  assert.is_truthy(ok == true or ok == 0,
    "python3-dotenv is needed for this spec (scripts/deps installs it)")
  for i, c in ipairs(cases) do
    it(("#%d %s"):format(i, c[1]), function()
      local got, raw = python_reads(c[2], c[3])
      assert.are.same(c[4], got, "python-dotenv read: " .. raw)
    end)
  end
end)
