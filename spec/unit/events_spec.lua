-- fsdb.events without a server: the logger adapter and handler isolation.
local events = require("fsdb.events")

describe("fsdb.events.logger", function()
  after_each(function() rawset(_G, "ngx", nil) end)

  it("maps levels to ngx.log's when given ngx.log, and picks it by default under OpenResty", function()
    local got = {}
    local ngx = { DEBUG = 8, INFO = 7, WARN = 5, ERR = 4 }
    ngx.log = function(level, msg) got[#got + 1] = { level, msg } end
    rawset(_G, "ngx", ngx)
    events.logger(ngx.log)("info", "a")
    events.logger(nil)("error", "b")
    events.logger(nil)("warn", "c")
    events.logger(nil)("debug", "d")
    assert.are.same({ { 7, "a" }, { 4, "b" }, { 5, "c" }, { 8, "d" } }, got)
  end)

  it("calls an object's methods (warning for warn when it has no warn), a function as it is", function()
    local got = {}
    local obj = { info = function(self, m) got[#got + 1] = { self, "info", m } end,
                  warning = function(self, m) got[#got + 1] = { self, "warning", m } end }
    events.logger(obj)("info", "x")
    events.logger(obj)("warn", "y")
    events.logger(obj)("debug", "z") -- no such method: dropped
    assert.are.same({ { obj, "info", "x" }, { obj, "warning", "y" } }, got)
    local fn = function() end
    assert.are.equal(fn, events.logger(fn))
  end)
end)

describe("fsdb.events.observer", function()
  it("runs every handler even when one raises, and logs the raise", function()
    local lines, ran = {}, {}
    local observe, state = events.observer({ logger = function(level, msg) lines[#lines + 1] = level .. " " .. msg end })
    state.handlers.checkout = {
      function() error("first broke") end,
      function(conn) ran[#ran + 1] = conn end,
    }
    state.handlers.connect = { function(conn) ran[#ran + 1] = "connect " .. conn end }
    observe("checkout", "c1", true)
    observe("checkout", "c2", false)
    assert.are.same({ "connect c1", "c1", "c2" }, ran)
    assert.are.equal(2, #lines)
    assert.matches("^error fsdb: handler of engine event 'checkout' raised: .*first broke", lines[1])
  end)

  it("hands before_execute the parameters as the statement gets them", function()
    local seen = {}
    local observe, state = events.observer({})
    state.handlers.before_execute = { function(_, sql, params, method) seen[#seen + 1] = { sql, params, method } end }
    observe("before", "c", "execute", "SELECT ?, ?", 1, nil)
    observe("before", "c", "execute", "SELECT :a", { a = 1 })
    observe("before", "c", "execute", "SELECT 1")
    observe("before", "c", "query", "SELECT ?", { 2 }, { array = true })
    assert.are.same({
      { "SELECT ?, ?", { n = 2, 1 }, "execute" },
      { "SELECT :a", { a = 1 }, "execute" },
      { "SELECT 1", nil, "execute" },
      { "SELECT ?", { 2 }, "query" },
    }, seen)
  end)

  it("knows its event names", function()
    for _, name in ipairs(events.names) do assert.is_true(events.is_event(name)) end
    assert.is_false(events.is_event("checkout2"))
  end)
end)
