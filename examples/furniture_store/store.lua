--- The furniture store's logic, written on top of fsdb.
--
--   local fsdb  = require("fsdb")
--   local store = require("furniture_store.store")
--   local engine = fsdb.engine.new()            -- DATABASE_URL, DB_*, .env
--   assert(store.setup(engine, "examples/furniture_store/schema.sql"))
--   local ids = assert(store.seed(engine))
--   local order_id, total = store.place_order(engine, ids.customers["ada@example.com"],
--     { { product_id = ids.products["SOF-001"], quantity = 1 } })
--
-- Conventions (the same as fsdb's own):
--   * every function takes an engine, checks out ONE connection and always
--     returns it to the pool, on success, on failure and when a Lua error is
--     raised;
--   * success returns values; failure returns nil, err, errno, sqlstate.
--     A business refusal ("insufficient stock for …") is nil, err with no
--     errno; server and network failures carry the server's errno/sqlstate;
--   * misuse (wrong argument types) raises a Lua error;
--   * money is DECIMAL in the database and a string in Lua ("1058.80"): all
--     arithmetic on it happens in SQL, never with Lua floats.
--
-- Runs on Lua 5.4 and LuaJIT.

local fsdb = require("fsdb")

local unpack = table.unpack or unpack

local store = {}

--- Tables of the store, parents first (create order).
store.TABLES = { "categories", "products", "customers", "orders", "order_items" }

-- Children first: the order in which rows can be deleted / tables dropped.
local CHILDREN_FIRST = { "order_items", "orders", "customers", "products", "categories" }

--- Server errors after which the whole transaction is worth running again.
store.RETRYABLE = { [1213] = "deadlock", [1205] = "lock wait timeout" }

--- How many times place_order / cancel_order re-run a transaction that
--- failed with a deadlock or a lock wait timeout (so at most retries + 1 runs).
store.retries = 3

--- The demo catalog. Prices are strings: they go to DECIMAL columns exactly.
store.CATALOG = {
  categories = { "Sofas", "Tables", "Chairs", "Beds", "Lighting" },
  products = {
    { sku = "SOF-001", category = "Sofas", name = "Kanapé Ølstrup 🛋", price = "899.00", stock = 3,
      image_path = "images/products/sof-001.jpg" },
    { sku = "SOF-002", category = "Sofas", name = "Chesterfield Classic", price = "1499.99", stock = 2 },
    { sku = "TAB-001", category = "Tables", name = "Oak Dining Table", price = "649.50", stock = 5 },
    { sku = "TAB-002", category = "Tables", name = "Side Table Birk", price = "79.90", stock = 10 },
    { sku = "CHA-001", category = "Chairs", name = "Windsor Chair", price = "129.00", stock = 12 },
    { sku = "CHA-002", category = "Chairs", name = "Lounge Chair Hygge", price = "349.00", stock = 1 },
    { sku = "CHA-003", category = "Chairs", name = "Desk Chair Ergo", price = "249.95", stock = 0 },
    { sku = "BED-001", category = "Beds", name = "Bed Frame Nordic", price = "399.00", stock = 4 },
    { sku = "LIG-001", category = "Lighting", name = "Floor Lamp Lumen", price = "59.99", stock = 7 },
    { sku = "LIG-002", category = "Lighting", name = "Pendant Lamp Ängsö", price = "89.90", stock = 6 },
  },
  customers = {
    { name = "Ada Lovelace", email = "ada@example.com" },
    { name = "Søren Kierkegaard", email = "soren@example.dk" },
    { name = "Grace Hopper", email = "grace@example.com" },
  },
}

----------------------------------------------------------------------------
-- Plumbing: one connection per call, transactions, retries.
----------------------------------------------------------------------------

local function pack(...)
  return { n = select("#", ...), ... }
end

--- Runs fn(conn, ...) on a connection checked out from engine and always
--- returns the connection, also when fn raises (the error is re-raised).
-- syntax: ... = store.with_connection(engine, fn, ...)
function store.with_connection(engine, fn, ...)
  local conn, err, errno, sqlstate = engine:connect()
  if not conn then
    return nil, err, errno, sqlstate
  end
  local r = pack(pcall(fn, conn, ...))
  conn:close()
  if not r[1] then
    error(r[2], 0)
  end
  return unpack(r, 2, r.n)
end

local function rollback(conn)
  -- Best effort: after a lost connection there is nothing to roll back,
  -- and the pool discards such a connection when it is returned.
  pcall(conn.execute, conn, "ROLLBACK")
end

--- Runs fn(conn, ...) between START TRANSACTION and COMMIT on one
--- connection. fn returns values to commit, or nil, err, errno, sqlstate to
--- roll back. A deadlock (1213) or lock wait timeout (1205) rolls back and
--- runs the whole transaction again, up to opts.retries times (default
--- store.retries); opts.on_retry(attempt, err, errno) is called before each
--- new run. opts.start replaces the START TRANSACTION statement. A Lua error
--- raised by fn rolls back and is re-raised.
-- syntax: ... = store.transaction(engine, opts, fn, ...)
function store.transaction(engine, opts, fn, ...)
  opts = opts or {}
  local retries = opts.retries or store.retries
  local start = opts.start or "START TRANSACTION"
  return store.with_connection(engine, function(conn, ...)
    local attempt = 0
    while true do
      attempt = attempt + 1
      local r = pack(conn:execute(start))
      if r[1] then
        local body = pack(pcall(fn, conn, ...))
        if not body[1] then
          rollback(conn)
          error(body[2], 0)
        end
        r = pack(unpack(body, 2, body.n))
        if r[1] ~= nil then
          local c = pack(conn:execute("COMMIT"))
          if c[1] then
            return unpack(r, 1, r.n)
          end
          r = c
        end
        rollback(conn)
      end
      local err, errno = r[2], r[3]
      if not (store.RETRYABLE[errno] and attempt <= retries) then
        return nil, err, errno, r[4]
      end
      if opts.on_retry then
        opts.on_retry(attempt, err, errno)
      end
    end
  end, ...)
end

-- Raises (misuse) unless v is a positive whole number; level 3 blames the
-- caller of the store function that called check_id.
local function check_id(v, what, fname, level)
  if type(v) ~= "number" or v < 1 or v ~= math.floor(v) then
    error(("store.%s: %s must be a positive whole number, got %s"):format(fname, what, tostring(v)),
      level or 3)
  end
end

----------------------------------------------------------------------------
-- Schema
----------------------------------------------------------------------------

--- Splits SQL text into statements: a statement ends with ';' at the end
--- of a line. Lines that are only a "--" comment are dropped first.
-- syntax: list = store.split_statements(text)
function store.split_statements(text)
  local kept = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    if not line:match("^%s*%-%-") then
      kept[#kept + 1] = line
    end
  end
  local list = {}
  local body = table.concat(kept, "\n")
  local function add(stmt)
    stmt = stmt:match("^%s*(.-)%s*$")
    if stmt ~= "" then
      list[#list + 1] = stmt
    end
  end
  local pos = 1
  while true do
    local s, e = body:find(";[ \t\r]*\n", pos)
    if not s then break end
    add(body:sub(pos, s - 1))
    pos = e + 1
  end
  -- The last statement may end the file without a newline (or a ';').
  add((body:sub(pos):gsub(";%s*$", "")))
  return list
end

--- Creates the tables from schema.sql (CREATE TABLE IF NOT EXISTS …) and
--- empties them for a fresh run (ids start at 1 again).
--- Returns the number of schema statements run.
-- syntax: n, err, errno, sqlstate = store.setup(engine, schema_path)
function store.setup(engine, schema_path)
  if type(schema_path) ~= "string" then
    error("store.setup: schema_path must be a string", 2)
  end
  local f, ferr = io.open(schema_path, "rb")
  if not f then
    return nil, "cannot read the schema: " .. tostring(ferr)
  end
  local text = f:read("*a")
  f:close()
  local statements = store.split_statements(text)
  return store.with_connection(engine, function(conn)
    for i, sql in ipairs(statements) do
      local ok, err, errno, sqlstate = conn:execute(sql)
      if not ok then
        return nil, ("%s (statement %d of %s)"):format(err, i, schema_path), errno, sqlstate
      end
    end
    for _, t in ipairs(CHILDREN_FIRST) do
      local ok, err, errno, sqlstate = conn:execute("DELETE FROM " .. t)
      if not ok then return nil, err, errno, sqlstate end
    end
    for _, t in ipairs(CHILDREN_FIRST) do
      local ok, err, errno, sqlstate = conn:execute("ALTER TABLE " .. t .. " AUTO_INCREMENT = 1")
      if not ok then return nil, err, errno, sqlstate end
    end
    return #statements
  end)
end

--- Drops the store's tables (children first). Missing tables are fine.
-- syntax: ok, err, errno, sqlstate = store.drop_tables(engine)
function store.drop_tables(engine)
  return store.with_connection(engine, function(conn)
    for _, t in ipairs(CHILDREN_FIRST) do
      local ok, err, errno, sqlstate = conn:execute("DROP TABLE IF EXISTS " .. t)
      if not ok then return nil, err, errno, sqlstate end
    end
    return true
  end)
end

----------------------------------------------------------------------------
-- Catalog
----------------------------------------------------------------------------

--- Inserts the catalog (default store.CATALOG) in one transaction, with
--- bound parameters. Returns the new ids:
--- { categories = {name → id}, products = {sku → id}, customers = {email → id} }.
-- syntax: ids, err, errno, sqlstate = store.seed(engine, catalog)
function store.seed(engine, catalog)
  catalog = catalog or store.CATALOG
  return store.transaction(engine, { retries = 0 }, function(conn)
    local ids = { categories = {}, products = {}, customers = {} }
    for _, name in ipairs(catalog.categories) do
      local res, err, errno, sqlstate = conn:execute("INSERT INTO categories (name) VALUES (?)", name)
      if not res then return nil, err, errno, sqlstate end
      ids.categories[name] = res.insert_id
    end
    for _, p in ipairs(catalog.products) do
      local category_id = ids.categories[p.category]
      if not category_id then
        return nil, ("product %s names an unknown category '%s'"):format(p.sku, tostring(p.category))
      end
      local res, err, errno, sqlstate = conn:execute(
        "INSERT INTO products (category_id, sku, name, price, stock, image_path) VALUES (?, ?, ?, ?, ?, ?)",
        category_id, p.sku, p.name, p.price, p.stock, p.image_path or fsdb.null)
      if not res then return nil, err, errno, sqlstate end
      ids.products[p.sku] = res.insert_id
    end
    for _, c in ipairs(catalog.customers) do
      local res, err, errno, sqlstate = conn:execute(
        "INSERT INTO customers (name, email) VALUES (:name, :email)", { name = c.name, email = c.email })
      if not res then return nil, err, errno, sqlstate end
      ids.customers[c.email] = res.insert_id
    end
    return ids
  end)
end

local FILTERS = { category = true, max_price = true, in_stock = true }

--- Lists products, cheapest first. Every filter is optional and bound:
---   category  = "Chairs"       (category name)
---   max_price = "400" or 400   (compared as DECIMAL, never as a float)
---   in_stock  = true | false   (stock > 0 | stock = 0)
--- Rows: id, sku, name, category, price (string), stock.
-- syntax: rows, err, errno, sqlstate = store.list_products(engine, filter)
function store.list_products(engine, filter)
  filter = filter or {}
  if type(filter) ~= "table" then
    error("store.list_products: filter must be a table", 2)
  end
  for k in pairs(filter) do
    if not FILTERS[k] then
      error(("store.list_products: unknown filter '%s' (known: category, max_price, in_stock)"):format(tostring(k)), 2)
    end
  end
  local where, params = {}, {}
  if filter.category ~= nil then
    if type(filter.category) ~= "string" then
      error("store.list_products: category must be a string", 2)
    end
    where[#where + 1] = "c.name = ?"
    params[#params + 1] = filter.category
  end
  if filter.max_price ~= nil then
    local t = type(filter.max_price)
    if t ~= "string" and t ~= "number" then
      error("store.list_products: max_price must be a string or a number", 2)
    end
    where[#where + 1] = "p.price <= CAST(? AS DECIMAL(12,2))"
    params[#params + 1] = tostring(filter.max_price)
  end
  if filter.in_stock ~= nil then
    where[#where + 1] = filter.in_stock and "p.stock > 0" or "p.stock = 0"
  end
  local sql = "SELECT p.id, p.sku, p.name, c.name AS category, p.price, p.stock"
    .. " FROM products p JOIN categories c ON c.id = p.category_id"
    .. (#where > 0 and (" WHERE " .. table.concat(where, " AND ")) or "")
    .. " ORDER BY p.price, p.id"
  return store.with_connection(engine, function(conn)
    return conn:execute(sql, unpack(params))
  end)
end

--- One product by id (id, sku, name, price, stock, image_path) or nil, err.
-- syntax: row, err, errno, sqlstate = store.get_product(engine, product_id)
function store.get_product(engine, product_id)
  check_id(product_id, "product_id", "get_product")
  return store.with_connection(engine, function(conn)
    local rows, err, errno, sqlstate = conn:execute(
      "SELECT id, sku, name, price, stock, image_path FROM products WHERE id = ?", product_id)
    if not rows then return nil, err, errno, sqlstate end
    if not rows[1] then return nil, ("no such product #%d"):format(product_id) end
    return rows[1]
  end)
end

----------------------------------------------------------------------------
-- Orders
----------------------------------------------------------------------------

-- Checks the items and merges repeated products; sorted by product id so
-- every transaction locks rows in the same order (fewer deadlocks).
local function order_lines(items, fname)
  if type(items) ~= "table" or #items == 0 then
    error(("store.%s: items must be a non-empty list of {product_id =, quantity =}"):format(fname), 3)
  end
  local by_id, lines = {}, {}
  for i, item in ipairs(items) do
    if type(item) ~= "table" then
      error(("store.%s: item #%d must be a table"):format(fname, i), 3)
    end
    check_id(item.product_id, ("item #%d product_id"):format(i), fname, 4)
    check_id(item.quantity, ("item #%d quantity"):format(i), fname, 4)
    local line = by_id[item.product_id]
    if line then
      line.quantity = line.quantity + item.quantity
    else
      line = { product_id = item.product_id, quantity = item.quantity }
      by_id[item.product_id] = line
      lines[#lines + 1] = line
    end
  end
  table.sort(lines, function(a, b) return a.product_id < b.product_id end)
  return lines
end

-- The order itself, inside an open transaction (see order_in_transaction).
local function order_body(conn, customer_id, lines)
  local res, err, errno, sqlstate = conn:execute("SELECT id FROM customers WHERE id = ?", customer_id)
  if not res then return nil, err, errno, sqlstate end
  if not res[1] then return nil, ("no such customer #%d"):format(customer_id) end

  for _, line in ipairs(lines) do
    res, err, errno, sqlstate = conn:execute(
      "SELECT id, name, stock FROM products WHERE id = ? FOR UPDATE", line.product_id)
    if not res then return nil, err, errno, sqlstate end
    local p = res[1]
    if not p then return nil, ("no such product #%d"):format(line.product_id) end
    if p.stock < line.quantity then
      return nil, "insufficient stock for " .. p.name
    end
  end

  res, err, errno, sqlstate = conn:execute(
    "INSERT INTO orders (customer_id, status, total) VALUES (?, 'placed', 0)", customer_id)
  if not res then return nil, err, errno, sqlstate end
  local order_id = res.insert_id

  for _, line in ipairs(lines) do
    res, err, errno, sqlstate = conn:execute(
      "UPDATE products SET stock = stock - ? WHERE id = ?", line.quantity, line.product_id)
    if not res then return nil, err, errno, sqlstate end
    res, err, errno, sqlstate = conn:execute(
      "INSERT INTO order_items (order_id, product_id, quantity, unit_price)"
        .. " SELECT ?, id, ?, price FROM products WHERE id = ?",
      order_id, line.quantity, line.product_id)
    if not res then return nil, err, errno, sqlstate end
  end

  res, err, errno, sqlstate = conn:execute(
    "UPDATE orders SET total = (SELECT SUM(quantity * unit_price) FROM order_items WHERE order_id = ?)"
      .. " WHERE id = ?", order_id, order_id)
  if not res then return nil, err, errno, sqlstate end
  res, err, errno, sqlstate = conn:execute("SELECT total FROM orders WHERE id = ?", order_id)
  if not res then return nil, err, errno, sqlstate end
  return order_id, res[1].total
end

--- The work of an order, on a connection whose transaction the CALLER has
--- opened (START TRANSACTION) and will COMMIT or ROLLBACK: locks each
--- product row (SELECT … FOR UPDATE), checks stock, decrements it, inserts
--- the order and its items and computes the total in SQL (DECIMAL).
--- Returns order_id, total (string) or nil, err, errno, sqlstate; a refusal
--- is nil, "insufficient stock for <name>".
-- syntax: order_id, total = store.order_in_transaction(conn, customer_id, items)
function store.order_in_transaction(conn, customer_id, items)
  check_id(customer_id, "customer_id", "order_in_transaction")
  local lines = order_lines(items, "order_in_transaction")
  return order_body(conn, customer_id, lines)
end

--- Places an order in ONE transaction on one connection; a deadlock or
--- lock wait timeout re-runs the whole transaction (store.retries times).
--- items: { {product_id = n, quantity = n}, … }.
--- opts (optional): retries, on_retry(attempt, err, errno).
--- Returns order_id, total (DECIMAL string) or nil, err, errno, sqlstate.
-- syntax: order_id, total = store.place_order(engine, customer_id, items, opts)
function store.place_order(engine, customer_id, items, opts)
  check_id(customer_id, "customer_id", "place_order")
  local lines = order_lines(items, "place_order")
  return store.transaction(engine, opts, order_body, customer_id, lines)
end

--- Cancels a placed order in one transaction and puts its items back in
--- stock. Returns the restored items { {product_id, name, quantity}, … }.
-- syntax: items, err, errno, sqlstate = store.cancel_order(engine, order_id, opts)
function store.cancel_order(engine, order_id, opts)
  check_id(order_id, "order_id", "cancel_order")
  return store.transaction(engine, opts, function(conn)
    local res, err, errno, sqlstate = conn:execute(
      "SELECT id, status FROM orders WHERE id = ? FOR UPDATE", order_id)
    if not res then return nil, err, errno, sqlstate end
    if not res[1] then return nil, ("no such order #%d"):format(order_id) end
    if res[1].status ~= "placed" then
      return nil, ("order #%d is already %s"):format(order_id, res[1].status)
    end
    -- Lock the products in id order, like place_order does.
    local items
    items, err, errno, sqlstate = conn:execute(
      "SELECT p.id AS product_id, p.name, oi.quantity FROM order_items oi"
        .. " JOIN products p ON p.id = oi.product_id WHERE oi.order_id = ?"
        .. " ORDER BY p.id FOR UPDATE", order_id)
    if not items then return nil, err, errno, sqlstate end
    res, err, errno, sqlstate = conn:execute(
      "UPDATE products p JOIN order_items oi ON oi.product_id = p.id"
        .. " SET p.stock = p.stock + oi.quantity WHERE oi.order_id = ?", order_id)
    if not res then return nil, err, errno, sqlstate end
    res, err, errno, sqlstate = conn:execute(
      "UPDATE orders SET status = 'cancelled', cancelled_at = NOW() WHERE id = ?", order_id)
    if not res then return nil, err, errno, sqlstate end
    return items
  end)
end

--- One order with its items, or nil, err.
-- syntax: order, err, errno, sqlstate = store.get_order(engine, order_id)
function store.get_order(engine, order_id)
  check_id(order_id, "order_id", "get_order")
  return store.with_connection(engine, function(conn)
    local rows, err, errno, sqlstate = conn:execute(
      "SELECT o.id, o.customer_id, c.name AS customer, o.status, o.total"
        .. " FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = ?", order_id)
    if not rows then return nil, err, errno, sqlstate end
    if not rows[1] then return nil, ("no such order #%d"):format(order_id) end
    local order = rows[1]
    order.items, err, errno, sqlstate = conn:execute(
      "SELECT oi.product_id, p.name, oi.quantity, oi.unit_price,"
        .. " oi.quantity * oi.unit_price AS amount FROM order_items oi"
        .. " JOIN products p ON p.id = oi.product_id WHERE oi.order_id = ? ORDER BY oi.id", order_id)
    if not order.items then return nil, err, errno, sqlstate end
    return order
  end)
end

----------------------------------------------------------------------------
-- Reporting
----------------------------------------------------------------------------

--- Sales of placed (not cancelled) orders per category, biggest first.
--- Returns an array of { category, orders, units, revenue } (revenue a
--- DECIMAL string) with fields .total (DECIMAL string, from orders.total)
--- and .orders (number of placed orders). Both queries read one snapshot.
-- syntax: report, err, errno, sqlstate = store.sales_report(engine)
function store.sales_report(engine)
  local opts = { retries = 0, start = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY" }
  return store.transaction(engine, opts, function(conn)
    local rows, err, errno, sqlstate = conn:execute([[
      SELECT c.name AS category,
             COUNT(DISTINCT s.order_id) AS orders,
             CAST(COALESCE(SUM(s.quantity), 0) AS UNSIGNED) AS units,
             CAST(COALESCE(SUM(s.quantity * s.unit_price), 0) AS DECIMAL(14,2)) AS revenue
        FROM categories c
        LEFT JOIN (SELECT p.category_id, oi.order_id, oi.quantity, oi.unit_price
                     FROM order_items oi
                     JOIN orders o ON o.id = oi.order_id AND o.status = 'placed'
                     JOIN products p ON p.id = oi.product_id) s
               ON s.category_id = c.id
       GROUP BY c.id, c.name
       ORDER BY revenue DESC, c.name]])
    if not rows then return nil, err, errno, sqlstate end
    local sum
    sum, err, errno, sqlstate = conn:execute(
      "SELECT COUNT(*) AS orders, CAST(COALESCE(SUM(total), 0) AS DECIMAL(14,2)) AS total"
        .. " FROM orders WHERE status = 'placed'")
    if not sum then return nil, err, errno, sqlstate end
    rows.total = sum[1].total
    rows.orders = sum[1].orders
    return rows
  end)
end

----------------------------------------------------------------------------
-- Images
----------------------------------------------------------------------------

--- Stores an image in products.image (LONGBLOB), byte for byte.
--- (For a real shop prefer products.image_path; see schema.sql.)
--- Returns the number of bytes stored.
-- syntax: n, err, errno, sqlstate = store.store_image(engine, product_id, bytes)
function store.store_image(engine, product_id, bytes)
  check_id(product_id, "product_id", "store_image")
  if type(bytes) ~= "string" then
    error("store.store_image: bytes must be a string", 2)
  end
  return store.with_connection(engine, function(conn)
    local res, err, errno, sqlstate = conn:execute(
      "UPDATE products SET image = ? WHERE id = ?", bytes, product_id)
    if not res then return nil, err, errno, sqlstate end
    if res.affected_rows == 0 then
      -- Zero rows may also mean "same bytes again" on servers counting
      -- changed rather than matched rows; ask.
      local rows
      rows, err, errno, sqlstate = conn:execute("SELECT id FROM products WHERE id = ?", product_id)
      if not rows then return nil, err, errno, sqlstate end
      if not rows[1] then return nil, ("no such product #%d"):format(product_id) end
    end
    return #bytes
  end)
end

--- The image bytes of a product; fsdb.null when it has none.
-- syntax: bytes, err, errno, sqlstate = store.fetch_image(engine, product_id)
function store.fetch_image(engine, product_id)
  check_id(product_id, "product_id", "fetch_image")
  return store.with_connection(engine, function(conn)
    local rows, err, errno, sqlstate = conn:execute("SELECT image FROM products WHERE id = ?", product_id)
    if not rows then return nil, err, errno, sqlstate end
    if not rows[1] then return nil, ("no such product #%d"):format(product_id) end
    return rows[1].image
  end)
end

return store
