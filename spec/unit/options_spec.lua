-- Engine options: NaN and ±inf are refused for every numeric option, with
-- a message naming the option (no connection needed).
local engine = require("fsdb.engine")

local url = "mysql://u:secret@127.0.0.1:1/d"
local NUMERIC = { "pool_size", "max_overflow", "pool_timeout", "pool_recycle", "pool_pre_ping_window",
                  "pool_leak_threshold", "statement_cache_size" }
local VALUES = { { 0 / 0, "NaN" }, { math.huge, "inf" }, { -math.huge, "-inf" } }

describe("fsdb.engine options", function()
  for _, name in ipairs(NUMERIC) do
    for _, v in ipairs(VALUES) do
      it(("refuse %s = %s, naming it"):format(name, v[2]), function()
        local ok, err = pcall(engine.new, url, { [name] = v[1] })
        assert.is_false(ok)
        assert.matches(("fsdb: bad value for engine option '%s' (expected a finite number, got %s)")
          :format(name, v[2]), err, 1, true)
        assert.is_nil(err:find("secret", 1, true))
      end)
    end
  end

  it("refuse a non-finite value for a non-numeric option as well", function()
    local ok, err = pcall(engine.new, url, { echo = 0 / 0 })
    assert.is_false(ok)
    assert.matches("engine option 'echo' (expected a finite number, got NaN)", err, 1, true)
  end)

  it("still take large finite values", function()
    local e = engine.new(url, { pool_timeout = 1e6, pool_recycle = 86400 * 365 })
    assert.are.equal(1e6, e.options.pool_timeout)
  end)
end)
