-- URL defaults come from fsdb.options only (the C parser reports what the
-- URL says): a URL without a port reaches port 3306 on every transport. The
-- fault proxy stands in for a server on 3306, on a loopback address of its
-- own (127.x.y.z), forwarding to the throwaway server.

local fsdb = require("fsdb")
local core = require("fsdb.core")
local db = require("helpers.db")
local tp = require("fsdb_testproxy")

-- The test URL with the proxy's address as host and no port at all.
local function portless(url, host)
  local out, n = url:gsub("@127%.0%.0%.1:%d+/", "@" .. host .. "/")
  assert(n == 1, "FSDB_TEST_URL is not mysql://…@127.0.0.1:PORT/…")
  return out
end

describe("URL defaults #mariadb", function()
  local proxy, host, url

  setup(function()
    -- A loopback address nothing else uses: 127.x.y.z with random x, y, z.
    math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000))
    for _ = 1, 5 do
      host = ("127.%d.%d.%d"):format(math.random(1, 254), math.random(1, 254), math.random(2, 254))
      proxy = tp.start("127.0.0.1", db.port, host, 3306)
      if proxy then break end
    end
    url = portless(db.url, host)
  end)

  teardown(function()
    if proxy then proxy:close() end
  end)

  local function need_proxy()
    if not proxy then
      pending("could not listen on a 127.x.y.z address's port 3306 (something listens on *:3306)")
      return false
    end
    return true
  end

  it("the C parser says nothing about the port; fsdb.url fills 3306 from fsdb.options", function()
    assert.is_nil(core.parse_url(portless(db.url, "127.0.0.2")).port)
    assert.are.equal(3306, fsdb.url.parse(portless(db.url, "127.0.0.2")).port)
  end)

  for _, transport in ipairs({ "libmariadb", "cqueues" }) do
    it(transport .. ": a URL without a port connects to 3306", function()
      if not need_proxy() then return end
      local before = proxy:stats()
      local e = fsdb.engine.new(url, { transport = transport, pool_size = 1 })
      local res, err = e:query("SELECT 41 + 1 AS n")
      assert.is_nil(err)
      assert.are.equal(42, tonumber(res[1].n))
      assert.is_true(proxy:stats() > before, "the connection went through the proxy on 3306")
      assert.matches("@" .. host:gsub("%.", "%%.") .. ":3306/", e:url())
      e:dispose()
    end)
  end
end)
