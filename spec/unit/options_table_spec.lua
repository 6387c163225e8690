-- fsdb.options: the one table of engine, pool and URL options.
local optlist = require("fsdb.options")
local engine = require("fsdb.engine")

local URL = "mysql://u:secret@127.0.0.1:1/db"

describe("fsdb.options", function()
  it("fills in every default; the engine keeps the complete table", function()
    local e = engine.new(URL, { pool_size = 2 })
    for _, o in ipairs(optlist.engine) do
      if o.name == "pool_size" then
        assert.are.equal(2, e.options.pool_size)
      else
        assert.are.equal(o.default, e.options[o.name], o.name)
      end
    end
    assert.are.same({ 2, 10 }, { e:status().size, e:status().max_overflow })
  end)

  it("C applies no default of its own: an incomplete table is refused", function()
    local core = require("fsdb.core")
    local ok, err = pcall(core.engine, URL, { pool_size = 1 })
    assert.is_false(ok)
    assert.matches("engine option '.-' missing", err)
  end)

  it("C states no URL default: an engine without fsdb.options' URL defaults is refused", function()
    local core = require("fsdb.core")
    local full = optlist.check_engine({})
    local ok, err = pcall(core.engine, URL, full)
    assert.is_false(ok)
    assert.matches("bad argument #3", err, 1, true)
    local d = optlist.url_defaults()
    for name in pairs(d) do
      local partial = optlist.url_defaults()
      partial[name] = nil
      ok, err = pcall(core.engine, URL, full, partial)
      assert.is_false(ok, name)
      assert.matches("URL default '" .. name .. "' missing or bad", err, 1, true)
    end
    local e = core.engine(URL, full, d)
    e:close()
  end)

  it("states every URL default the C core fills in, and `fsdb options` shows them", function()
    local d = optlist.url_defaults()
    assert.are.same({ host = "localhost", port = 3306, charset = "utf8mb4", connect_timeout = 10,
                      read_timeout = 300, write_timeout = 60 }, d)
    local text = optlist.describe()
    for name, v in pairs(d) do
      assert.matches("\n  " .. name .. " +" .. (type(v) == "string" and '"' .. v .. '"' or tostring(v)) .. " ", text)
    end
    -- a fresh table each time: a caller changing one changes nothing else
    d.port = 1
    assert.are.equal(3306, optlist.url_defaults().port)
  end)

  it("names the option and what it accepts; unknown names list the known ones", function()
    local ok, err = pcall(engine.new, URL, { pool_size = -1 })
    assert.is_false(ok)
    assert.matches("bad value for engine option 'pool_size' (expected a whole number >= 0)", err, 1, true)
    ok, err = pcall(engine.new, URL, { pool_szie = 1 })
    assert.is_false(ok)
    assert.matches("unknown engine option 'pool_szie' (known: ", err, 1, true)
    for _, o in ipairs(optlist.engine) do
      assert.matches(o.name, err:match("%(known: (.*)%)$"), 1, true)
    end
    ok, err = pcall(engine.new, URL, { echo_parameters = "yes" })
    assert.is_false(ok)
    assert.matches("engine option 'echo_parameters' (expected a boolean)", err, 1, true)
  end)

  it("every option is in the README and in `fsdb options`", function()
    local f = assert(io.open("README.md"))
    local readme = f:read("*a")
    f:close()
    local text = optlist.describe()
    for _, list in ipairs({ optlist.engine, optlist.url }) do
      for _, o in ipairs(list) do
        assert.truthy(readme:find(o.name, 1, true), o.name .. " not in README.md")
        assert.truthy(text:find("\n  " .. o.name .. " ", 1, true), o.name)
      end
    end
    local out = {}
    local cli = require("fsdb.cli")
    local status = cli.main({ "options" }, { out = function(s) out[#out + 1] = s end,
                                             err = function(s) out[#out + 1] = s end })
    assert.are.equal(0, status)
    assert.are.equal(text, table.concat(out))
  end)
end)
