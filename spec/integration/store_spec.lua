-- The furniture store (examples/furniture_store/store.lua) against a real
-- server. Runs in the second test database (FSDB_TEST_DB2) so that specs
-- using the first one are not affected; its tables are dropped at the end.
package.path = "examples/?.lua;" .. package.path

local fsdb = require("fsdb")
local store = require("furniture_store.store")

local SCHEMA = "examples/furniture_store/schema.sql"

-- FSDB_TEST_URL names the first test database; swap in the second one.
local function db2_url()
  local url = assert(os.getenv("FSDB_TEST_URL"), "FSDB_TEST_URL is not set (start scripts/testdb)")
  local db = os.getenv("FSDB_TEST_DB") or "fsdb_test"
  local db2 = os.getenv("FSDB_TEST_DB2") or "fsdb_test2"
  local base, query = url:match("^(.-)(%?.*)$")
  if not base then base, query = url, "" end
  local swapped, n = base:gsub("/" .. db:gsub("%p", "%%%0") .. "$", "/" .. db2)
  assert(n == 1, "FSDB_TEST_URL does not end in /" .. db)
  return swapped .. query
end

local function cents(s)
  local int, frac = s:match("^(%d+)%.(%d%d)$")
  assert(int, "not a DECIMAL(…,2) string: " .. tostring(s))
  return tonumber(int) * 100 + tonumber(frac)
end

describe("furniture store #mariadb", function()
  local engine, ids

  local function one(sql, ...)
    local rows, err = engine:execute(sql, ...)
    assert(rows, err)
    return rows[1]
  end

  local function stock(sku)
    return one("SELECT stock FROM products WHERE sku = ?", sku).stock
  end

  local function counts()
    return one("SELECT (SELECT COUNT(*) FROM orders) AS orders, (SELECT COUNT(*) FROM order_items) AS items")
  end

  local function item(sku, quantity)
    return { product_id = ids.products[sku], quantity = quantity }
  end

  local function no_checkouts()
    assert.are.equal(0, engine:status().checked_out)
  end

  setup(function()
    engine = fsdb.engine.new(db2_url(), { pool_size = 3, max_overflow = 3, pool_timeout = 5 })
  end)

  teardown(function()
    if engine then
      store.drop_tables(engine)
      engine:dispose()
    end
  end)

  before_each(function()
    assert(store.setup(engine, SCHEMA))
    ids = assert(store.seed(engine))
  end)

  after_each(function()
    no_checkouts()
  end)

  it("sets up the schema and seeds the catalog (again and again)", function()
    -- before_each already ran setup + seed once; a second run starts over.
    assert.are.equal(5, store.setup(engine, SCHEMA))
    ids = assert(store.seed(engine))
    local c = one("SELECT (SELECT COUNT(*) FROM categories) AS categories,"
      .. " (SELECT COUNT(*) FROM products) AS products, (SELECT COUNT(*) FROM customers) AS customers")
    assert.are.same({ categories = 5, products = 10, customers = 3 },
      { categories = c.categories, products = c.products, customers = c.customers })
    assert.are.equal(1, ids.categories.Sofas) -- ids start at 1 again after a clear
    local sofa = one("SELECT name, price, image, image_path FROM products WHERE sku = 'SOF-001'")
    assert.are.equal("Kanapé Ølstrup 🛋", sofa.name)
    assert.are.equal("899.00", sofa.price)
    assert.are.equal(fsdb.null, sofa.image)
    assert.are.equal("images/products/sof-001.jpg", sofa.image_path)
    assert.are.equal(fsdb.null, one("SELECT image_path FROM products WHERE sku = 'SOF-002'").image_path)
    no_checkouts()
  end)

  it("splits schema text on ';' at line ends only", function()
    local list = store.split_statements("-- a comment;\nSELECT 1;\n\nSELECT 'a;b'  ;  \r\nSELECT 3")
    assert.are.same({ "SELECT 1", "SELECT 'a;b'", "SELECT 3" }, list)
  end)

  it("reports a missing schema file without raising", function()
    local ok, err = store.setup(engine, "examples/furniture_store/no-such-schema.sql")
    assert.is_nil(ok)
    assert.matches("cannot read the schema", err, 1, true)
    no_checkouts()
  end)

  it("lists products with bound filters", function()
    local function skus(filter)
      local rows = assert(store.list_products(engine, filter))
      local out = {}
      for i, r in ipairs(rows) do out[i] = r.sku end
      return table.concat(out, " ")
    end
    assert.are.equal("CHA-001 CHA-003 CHA-002", skus({ category = "Chairs" }))
    assert.are.equal("CHA-001 CHA-002", skus({ category = "Chairs", in_stock = true }))
    assert.are.equal("CHA-003", skus({ in_stock = false }))
    assert.are.equal("LIG-001 TAB-002 LIG-002", skus({ max_price = "89.90" }))
    assert.are.equal("LIG-001 TAB-002", skus({ max_price = 89.89 }))
    assert.are.equal("LIG-001 TAB-002 LIG-002 CHA-001 CHA-002 BED-001", skus({ max_price = 400, in_stock = true }))
    assert.are.equal("", skus({ category = "Chairs' OR '1'='1" }))
    assert.are.equal(10, #assert(store.list_products(engine)))

    local row = assert(store.list_products(engine, { category = "Sofas", max_price = "1000" }))[1]
    assert.are.equal("Kanapé Ølstrup 🛋", row.name)
    assert.are.equal("899.00", row.price)
    assert.are.equal("Sofas", row.category)
    assert.are.equal(3, row.stock)

    assert.has_error(function() store.list_products(engine, { colour = "red" }) end)
    assert.has_error(function() store.list_products(engine, { max_price = {} }) end)
    no_checkouts()
  end)

  it("places an order: stock decremented exactly, total exact as DECIMAL", function()
    local order_id, total = store.place_order(engine, ids.customers["ada@example.com"],
      { item("SOF-001", 1), item("TAB-002", 3), item("LIG-001", 3) })
    assert.is_not_nil(order_id, total)
    -- 899.00 + 3 × 79.90 + 3 × 59.99; as Lua floats 3 × 79.90 alone is 239.70000000000002
    assert.are.equal("string", type(total))
    assert.are.equal("1318.67", total)
    assert.are.equal(2, stock("SOF-001"))
    assert.are.equal(7, stock("TAB-002"))
    assert.are.equal(4, stock("LIG-001"))
    assert.are.equal(5, stock("TAB-001")) -- untouched
    local order = assert(store.get_order(engine, order_id))
    assert.are.equal("placed", order.status)
    assert.are.equal("1318.67", order.total)
    assert.are.equal(3, #order.items)
    assert.are.equal("79.90", order.items[2].unit_price)
    assert.are.equal("239.70", order.items[2].amount)

    -- The same product twice in one order is one line with the sum.
    local id2, total2 = store.place_order(engine, ids.customers["grace@example.com"],
      { item("CHA-001", 2), item("CHA-001", 1) })
    assert.is_not_nil(id2, total2)
    assert.are.equal("387.00", total2)
    assert.are.equal(9, stock("CHA-001"))
    assert.are.same({ orders = 2, items = 4 }, counts())
    no_checkouts()
  end)

  it("refuses an order when stock is short and leaves stock and orders untouched", function()
    local before = counts()
    local id, err, errno, sqlstate = store.place_order(engine, ids.customers["grace@example.com"],
      { item("LIG-002", 2), item("SOF-002", 3) })
    assert.is_nil(id)
    assert.are.equal("insufficient stock for Chesterfield Classic", err)
    assert.is_nil(errno)
    assert.is_nil(sqlstate)
    assert.are.equal(6, stock("LIG-002"))
    assert.are.equal(2, stock("SOF-002"))
    assert.are.same(before, counts())

    -- Sold out is the same refusal; the last one can be bought exactly once.
    id, err = store.place_order(engine, 1, { item("CHA-003", 1) })
    assert.is_nil(id)
    assert.are.equal("insufficient stock for Desk Chair Ergo", err)
    assert.is_not_nil((store.place_order(engine, 1, { item("CHA-002", 1) })))
    id, err = store.place_order(engine, 2, { item("CHA-002", 1) })
    assert.is_nil(id)
    assert.are.equal("insufficient stock for Lounge Chair Hygge", err)
    assert.are.equal(0, stock("CHA-002"))

    -- Unknown customer / product: refusals too, nothing written.
    id, err = store.place_order(engine, 999, { item("TAB-001", 1) })
    assert.is_nil(id)
    assert.are.equal("no such customer #999", err)
    id, err = store.place_order(engine, 1, { { product_id = 999, quantity = 1 } })
    assert.is_nil(id)
    assert.are.equal("no such product #999", err)
    assert.are.same({ orders = 1, items = 1 }, counts())
    no_checkouts()
  end)

  it("cancels an order and restores its stock", function()
    local order_id = assert(store.place_order(engine, ids.customers["soren@example.dk"],
      { item("TAB-001", 2), item("CHA-001", 6) }))
    assert.are.equal(3, stock("TAB-001"))
    assert.are.equal(6, stock("CHA-001"))
    local restored = assert(store.cancel_order(engine, order_id))
    assert.are.equal(2, #restored)
    assert.are.equal(5, stock("TAB-001"))
    assert.are.equal(12, stock("CHA-001"))
    assert.are.equal("cancelled", assert(store.get_order(engine, order_id)).status)

    local again, err, errno = store.cancel_order(engine, order_id)
    assert.is_nil(again)
    assert.are.equal(("order #%d is already cancelled"):format(order_id), err)
    assert.is_nil(errno)
    assert.are.equal(5, stock("TAB-001")) -- not restored twice

    again, err = store.cancel_order(engine, 4242)
    assert.is_nil(again)
    assert.are.equal("no such order #4242", err)
    no_checkouts()
  end)

  it("sums sales per category in the report (cancelled orders excluded)", function()
    local empty = assert(store.sales_report(engine))
    assert.are.equal(5, #empty)
    assert.are.equal("0.00", empty.total)
    assert.are.equal(0, empty.orders)

    assert(store.place_order(engine, 1, { item("SOF-001", 1), item("TAB-002", 3) }))   -- 1138.70
    assert(store.place_order(engine, 2, { item("TAB-001", 1), item("CHA-001", 4) }))   -- 1165.50
    local third = assert(store.place_order(engine, 3, { item("LIG-001", 3) }))        -- 179.97
    assert(store.place_order(engine, 3, { item("LIG-002", 1), item("SOF-002", 1) }))   -- 1589.89
    assert(store.cancel_order(engine, third))

    local report = assert(store.sales_report(engine))
    local by = {}
    for _, r in ipairs(report) do by[r.category] = r end
    assert.are.equal("2398.99", by.Sofas.revenue)
    assert.are.equal("889.20", by.Tables.revenue)
    assert.are.equal("516.00", by.Chairs.revenue)
    assert.are.equal("89.90", by.Lighting.revenue)
    assert.are.equal("0.00", by.Beds.revenue)
    assert.are.equal(2, by.Sofas.orders)
    assert.are.equal(2, by.Sofas.units)
    assert.are.equal(4, by.Tables.units)
    assert.are.equal(0, by.Beds.orders)
    assert.are.equal("Sofas", report[1].category) -- biggest first
    assert.are.equal("3894.09", report.total)
    assert.are.equal(3, report.orders)
    local sum = 0
    for _, r in ipairs(report) do sum = sum + cents(r.revenue) end
    assert.are.equal(cents(report.total), sum)
    no_checkouts()
  end)

  it("round-trips an image byte-exact through the LONGBLOB", function()
    local sofa = ids.products["SOF-001"]
    assert.are.equal(fsdb.null, assert(store.fetch_image(engine, sofa)))

    local parts = { "\0", "\255", "\0\0", "\255\255", "\r\n\26" }
    for i = 0, 255 do parts[#parts + 1] = string.char(i) end
    for i = 255, 0, -1 do parts[#parts + 1] = string.char(i) end
    local x = 7
    for _ = 1, 150000 do
      x = (x * 75 + 74) % 65537
      parts[#parts + 1] = string.char(x % 256)
    end
    parts[#parts + 1] = "\0"
    local bytes = table.concat(parts)

    assert.are.equal(#bytes, store.store_image(engine, sofa, bytes))
    local back = assert(store.fetch_image(engine, sofa))
    assert.are.equal(#bytes, #back)
    assert.is_true(back == bytes)
    assert.are.equal(0, back:byte(1))
    assert.are.equal(255, back:byte(2))
    assert.are.equal(0, back:byte(-1))

    -- Storing the same bytes again is fine; an empty image is not NULL.
    assert.are.equal(#bytes, store.store_image(engine, sofa, bytes))
    assert.are.equal(0, store.store_image(engine, sofa, ""))
    assert.are.equal("", store.fetch_image(engine, sofa))

    local ok, err = store.store_image(engine, 999, bytes)
    assert.is_nil(ok)
    assert.are.equal("no such product #999", err)
    ok, err = store.fetch_image(engine, 999)
    assert.is_nil(ok)
    assert.are.equal("no such product #999", err)
    no_checkouts()
  end)

  it("re-runs the whole transaction after a lock wait timeout (1205)", function()
    local slow = fsdb.engine.new(db2_url(), { init_command = "SET SESSION innodb_lock_wait_timeout = 1" })
    local holder = assert(engine:connect())
    local ok, failure = pcall(function()
      assert(holder:execute("START TRANSACTION"))
      assert(holder:execute("SELECT stock FROM products WHERE sku = 'BED-001' FOR UPDATE"))

      -- The holder lets go while the store waits to retry: the retry succeeds.
      local retries = {}
      local order_id, total = store.place_order(slow, 1, { item("BED-001", 2) }, {
        on_retry = function(attempt, err, errno)
          retries[#retries + 1] = errno
          assert(holder:execute("ROLLBACK"))
        end,
      })
      assert.are.same({ 1205 }, retries)
      assert.is_not_nil(order_id, total)
      assert.are.equal("798.00", total)
      assert.are.equal(2, stock("BED-001"))
      assert.are.equal(0, slow:status().checked_out)

      -- The lock is never released: the retries run out and the error comes back.
      assert(holder:execute("START TRANSACTION"))
      assert(holder:execute("SELECT stock FROM products WHERE sku = 'BED-001' FOR UPDATE"))
      local seen = 0
      local id, err, errno, sqlstate = store.place_order(slow, 1, { item("BED-001", 1) },
        { retries = 1, on_retry = function() seen = seen + 1 end })
      assert.is_nil(id)
      assert.are.equal(1205, errno)
      assert.are.equal("HY000", sqlstate)
      assert.matches("^fsdb: ", err)
      assert.are.equal(1, seen)
      assert(holder:execute("ROLLBACK"))
      assert.are.equal(2, stock("BED-001"))
      assert.are.same({ orders = 1, items = 1 }, counts())
      assert.are.equal(0, slow:status().checked_out)
    end)
    holder:close()
    slow:dispose()
    if not ok then error(failure, 0) end
    no_checkouts()
  end)

  it("returns the connection when a call is misused mid-transaction", function()
    -- A Lua error raised inside a transaction: rolled back, connection returned.
    assert.has_error(function()
      store.transaction(engine, nil, function(conn)
        assert(conn:execute("INSERT INTO orders (customer_id) VALUES (1)"))
        return conn:execute("SELECT ? AS x", {}) -- misuse: no value for the placeholder
      end)
    end)
    no_checkouts()
    assert.has_error(function() store.place_order(engine, 1, { item("SOF-001", 0) }) end)
    assert.has_error(function() store.place_order(engine, "1", { item("SOF-001", 1) }) end)
    assert.has_error(function() store.store_image(engine, 1, 42) end)
    assert.has_error(function() store.transaction(engine, nil, function() error("boom") end) end, "boom")
    -- Nothing half-done was committed.
    assert.are.same({ orders = 0, items = 0 }, counts())
    no_checkouts()
  end)
end)
