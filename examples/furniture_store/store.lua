--- The furniture store's logic, written on fsdb sessions.
--
--   package.path = "examples/?.lua;" .. package.path
--   local store = require("furniture_store.store")
--   local db = assert(store.open())              -- DATABASE_URL (+ DATABASE_URL_AUTH)
--   local rows = assert(store.list_products(db, { category = "Chairs", in_stock = true }))
--   local order_id, total = store.place_order(db, customer_id, {
--     { product_id = rows[1].id, quantity = 2 },
--   })
--   if not order_id then print("refused: " .. total) end
--
-- Two databases, like the Flask store's SQLALCHEMY_BINDS: the catalog,
-- customers and orders on the default bind; users (credentials) and their
-- logins on the `auth` bind. The tables are made by the migrations in
-- migrations/ and migrations_auth/ (see schema.lua).
--
-- Conventions (the same as fsdb's own):
--   * every function takes the db from store.open(), opens one session for
--     its work and always closes it (connections go back to the pool, also
--     when a Lua error is raised);
--   * or, in place of the db, a session of it (a web request's scoped
--     session, say): the work then runs in that session, which stays open
--     for its owner to commit or close. The functions that write (placing
--     or cancelling an order, registering, seeding) use s:transaction, so
--     they commit the session's transaction, with whatever it held
--     uncommitted; called inside the caller's own s:transaction they are a
--     savepoint of it, committed or rolled back with it and not retried;
--   * success returns values; failure returns nil, err, errno, sqlstate.
--     A business refusal ("insufficient stock for …") is nil, err without
--     an errno; server and network failures carry the server's
--     errno/sqlstate;
--   * misuse (wrong argument types, unknown options) raises a Lua error;
--   * money is DECIMAL in the database and a string in Lua ("1058.80"):
--     every sum and product of money is computed in SQL, never with Lua
--     floats.
--
-- Runs on Lua 5.4 and LuaJIT.

local fsdb = require("fsdb")
local Session = require("fsdb.session").Session
local config = require("furniture_store.config")

local unpack = table.unpack or unpack

local store = {}

--- Engine options of both binds (SQLAlchemy's names).
store.ENGINE_OPTIONS = { pool_size = 5, max_overflow = 5, pool_timeout = 10, pool_recycle = 3600 }

--- How many times place_order and cancel_order run their transaction
--- again after a deadlock (1213) or a lock wait timeout (1205).
store.retries = 3

--- The store's tables per bind, children first (the order to empty them).
store.TABLES = {
  default = { "order_items", "orders", "products", "customers", "categories" },
  auth = { "logins", "users" },
}

--- The demo catalog. Prices are strings: they go to DECIMAL columns
--- exactly. Passwords are only ever sent as bound parameters and never
--- printed.
store.CATALOG = {
  categories = { "Sofas", "Tables", "Chairs", "Beds", "Lighting" },
  products = {
    { sku = "SOF-001", category = "Sofas", name = "Kanapé Ølstrup 🛋", price = "899.00", stock = 3,
      image_path = "images/products/SOF-001.jpg" },
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
    { name = "Ada Lovelace", email = "ada@example.com", password = "analytical-engine-1843" },
    { name = "Søren Kierkegaard", email = "soren@example.dk", password = "enten-eller-1843" },
    { name = "Grace Hopper", email = "grace@example.com", password = "cobol-nanosecond-1959" },
  },
}

----------------------------------------------------------------------------
-- Plumbing
----------------------------------------------------------------------------

local function pack(...)
  return { n = select("#", ...), ... }
end

-- Misuse raises; the message names the store function.
local function misuse(fname, fmt, ...)
  error(("store.%s: " .. fmt):format(fname, ...), 0)
end

local function is_session(x)
  return type(x) == "table" and getmetatable(x) == Session
end

local function check_db(db, fname)
  if not is_session(db) and (type(db) ~= "table" or type(db.session) ~= "function") then
    misuse(fname, "db must be the db from store.open() or a session of it, got %s", type(db))
  end
end

-- Raises (misuse) unless v is a positive whole number.
local function check_id(v, what, fname)
  if type(v) ~= "number" or v < 1 or v ~= math.floor(v) then
    misuse(fname, "%s must be a positive whole number, got %s", what, tostring(v))
  end
end

local function check_opts(opts, known, fname)
  if opts == nil then return {} end
  if type(opts) ~= "table" then misuse(fname, "opts must be a table, got %s", type(opts)) end
  for k in pairs(opts) do
    if not known[k] then misuse(fname, "unknown option '%s'", tostring(k)) end
  end
  return opts
end

--- Runs fn(s, ...) with a new session of db and always closes it (what fn
--- did not commit is rolled back), also when fn raises (re-raised). Given
--- a session instead of a db, runs fn in it and leaves it open.
-- syntax: ... = store.with_session(db, fn, ...)
function store.with_session(db, fn, ...)
  check_db(db, "with_session")
  if is_session(db) then
    return fn(db, ...)
  end
  local s = db:session()
  local r = pack(pcall(fn, s, ...))
  s:close()
  if not r[1] then
    error(r[2], 0)
  end
  return unpack(r, 2, r.n)
end

local with_session = store.with_session

----------------------------------------------------------------------------
-- Set-up
----------------------------------------------------------------------------

local OPEN_OPTIONS = { url = true, auth_url = true, getenv = true, dotenv = true, engine_options = true }

--- The store's db: the default bind from url (nil: DATABASE_URL, DB_*,
--- ./.env) and the `auth` bind from auth_url (nil: DATABASE_URL_AUTH, else
--- the main database's name + "_auth" on the same server). getenv and
--- dotenv replace os.getenv and ./.env. No connection is made yet.
--- Returns nil, err when no database is configured; raises on a malformed
--- URL or option.
-- syntax: db, err = store.open{ url =, auth_url =, getenv =, dotenv =, engine_options = }
function store.open(opts)
  opts = check_opts(opts, OPEN_OPTIONS, "open")
  local getenv = opts.getenv or os.getenv
  local url, err = opts.url, nil
  if url == nil then
    url, err = config.main_url(getenv, opts.dotenv)
    if not url then return nil, err end
  end
  local auth_url = opts.auth_url
  if auth_url == nil then
    auth_url, err = config.auth_url(getenv, url, opts.dotenv)
    if not auth_url then return nil, err end
  end
  return fsdb.new{
    url = url,
    binds = { auth = auth_url },
    engine_options = opts.engine_options or store.ENGINE_OPTIONS,
  }
end

--- The pool status of every bind: { default = engine:status(), auth = … }.
-- syntax: t = store.pool_status(db)
function store.pool_status(db)
  check_db(db, "pool_status")
  if is_session(db) then misuse("pool_status", "needs the db from store.open(), not a session") end
  local t = {}
  for _, name in ipairs(db:bind_names()) do
    t[name] = db:get_engine(name):status()
  end
  return t
end

--- Empties the store's tables on both binds in one session transaction
--- (categories, which the migrations fill, are kept). For demos and tests.
-- syntax: ok, err, errno, sqlstate = store.reset(db)
function store.reset(db)
  check_db(db, "reset")
  return with_session(db, function(s)
    return s:transaction(function()
      for _, bind in ipairs({ "default", "auth" }) do
        local view = s:using(bind)
        for _, t in ipairs(store.TABLES[bind]) do
          if t ~= "categories" then
            local n, err, errno, sqlstate = view:delete(t, fsdb.all)
            if not n then return nil, err, errno, sqlstate end
          end
        end
      end
      return true
    end)
  end)
end

----------------------------------------------------------------------------
-- Customers and credentials (the auth bind)
----------------------------------------------------------------------------

local function check_customer(c, fname)
  if type(c) ~= "table" then misuse(fname, "customer must be a table {name =, email =, password =}") end
  for _, k in ipairs({ "name", "email", "password" }) do
    if type(c[k]) ~= "string" or c[k] == "" then
      misuse(fname, "customer.%s must be a non-empty string", k)
    end
  end
end

-- The customer row (default bind) and its credentials (auth bind), in the
-- caller's session transaction.
local function register_in(s, c)
  local id, err, errno, sqlstate = s:insert("customers", { name = c.name, email = c.email })
  if not id then
    if errno == 1062 then return nil, ("a customer with the email %s already exists"):format(c.email) end
    return nil, err, errno, sqlstate
  end
  -- The salt (16 random bytes) and the hash are computed by the server;
  -- the password only travels as a bound parameter. SHA-256 of salt ..
  -- password keeps this example short: a real application should use a
  -- slow, memory-hard key derivation function (argon2id, scrypt or bcrypt)
  -- so that a stolen users table cannot be brute-forced quickly.
  local res
  res, err, errno, sqlstate = s:using("auth"):execute(
    "INSERT INTO users (customer_id, email, password_salt, password_hash)"
      .. " SELECT ?, ?, salt, SHA2(CONCAT(salt, ?), 256)"
      .. " FROM (SELECT HEX(RANDOM_BYTES(16)) AS salt) AS fresh",
    id, c.email, c.password)
  if not res then
    if errno == 1062 then return nil, ("a user with the email %s already exists"):format(c.email) end
    return nil, err, errno, sqlstate
  end
  return id
end

--- Registers a customer: the customers row on the default bind and a users
--- row (salted password hash) on the auth bind, committed together.
--- Returns the customer id; a taken email is nil, err.
-- syntax: id, err, errno, sqlstate = store.register_customer(db, {name =, email =, password =})
function store.register_customer(db, customer)
  check_db(db, "register_customer")
  check_customer(customer, "register_customer")
  return with_session(db, function(s)
    return s:transaction(function() return register_in(s, customer) end)
  end)
end

--- Checks an email and password against the auth bind and records the
--- attempt in logins. Returns customer_id, name; a wrong email or password
--- is nil, "wrong email or password" (the same answer for both).
-- syntax: customer_id, name_or_err, errno, sqlstate = store.authenticate(db, email, password)
function store.authenticate(db, email, password)
  check_db(db, "authenticate")
  if type(email) ~= "string" or type(password) ~= "string" then
    misuse("authenticate", "email and password must be strings")
  end
  local r = pack(with_session(db, function(s)
    return s:transaction(function()
      local auth = s:using("auth")
      local rows, err, errno, sqlstate = auth:execute(
        "SELECT id, customer_id, password_hash = SHA2(CONCAT(password_salt, ?), 256) AS ok"
          .. " FROM users WHERE email = ?", password, email)
      if not rows then return nil, err, errno, sqlstate end
      local user = rows[1]
      if not user then return { ok = false } end
      local ok = user.ok == 1
      local id
      id, err, errno, sqlstate = auth:insert("logins", { user_id = user.id, succeeded = ok })
      if not id then return nil, err, errno, sqlstate end
      if not ok then return { ok = false } end
      local n
      n, err, errno, sqlstate = auth:execute("UPDATE users SET last_login_at = NOW() WHERE id = ?", user.id)
      if not n then return nil, err, errno, sqlstate end
      -- The customer's name from the other database, in the same session.
      rows, err, errno, sqlstate = s:select("customers", { columns = { "name" }, where = { id = user.customer_id } })
      if not rows then return nil, err, errno, sqlstate end
      return { ok = true, customer_id = user.customer_id, name = rows[1] and rows[1].name }
    end)
  end))
  local res = r[1]
  if res == nil then return unpack(r, 1, r.n) end
  if not res.ok then return nil, "wrong email or password" end
  return res.customer_id, res.name
end

----------------------------------------------------------------------------
-- Catalog
----------------------------------------------------------------------------

--- Inserts the catalog (default store.CATALOG) in one session transaction
--- over both binds: missing categories, the products (one executemany)
--- and the customers with their credentials. Returns the new ids:
--- { categories = {name → id}, products = {sku → id}, customers = {email → id} }.
-- syntax: ids, err, errno, sqlstate = store.seed(db, catalog)
function store.seed(db, catalog)
  check_db(db, "seed")
  catalog = catalog or store.CATALOG
  return with_session(db, function(s)
    return s:transaction(function()
      local ids = { categories = {}, products = {}, customers = {} }
      local rows, err, errno, sqlstate = s:select("categories", { columns = { "id", "name" } })
      if not rows then return nil, err, errno, sqlstate end
      for _, r in ipairs(rows) do ids.categories[r.name] = r.id end
      for _, name in ipairs(catalog.categories) do
        if not ids.categories[name] then
          local res
          res, err, errno, sqlstate = s:execute(
            "INSERT INTO categories (name, slug) VALUES (?, LOWER(REPLACE(TRIM(?), ' ', '-')))", name, name)
          if not res then return nil, err, errno, sqlstate end
          ids.categories[name] = res.insert_id
        end
      end

      local sets = {}
      for i, p in ipairs(catalog.products) do
        local category_id = ids.categories[p.category]
        if not category_id then
          return nil, ("product %s names an unknown category '%s'"):format(p.sku, tostring(p.category))
        end
        sets[i] = { category_id, p.sku, p.name, p.price, p.stock, p.image_path or fsdb.null }
      end
      if #sets > 0 then
        local res
        res, err, errno, sqlstate = s:executemany(
          "INSERT INTO products (category_id, sku, name, price, stock, image_path) VALUES (?, ?, ?, ?, ?, ?)", sets)
        if not res then return nil, err, errno, sqlstate end
      end
      rows, err, errno, sqlstate = s:select("products", { columns = { "id", "sku" } })
      if not rows then return nil, err, errno, sqlstate end
      for _, r in ipairs(rows) do ids.products[r.sku] = r.id end

      for _, c in ipairs(catalog.customers) do
        check_customer(c, "seed")
        local id
        id, err, errno, sqlstate = register_in(s, c)
        if not id then return nil, err, errno, sqlstate end
        ids.customers[c.email] = id
      end
      return ids
    end)
  end)
end

local FILTERS = { category = true, min_price = true, max_price = true, in_stock = true }

local function price_param(v, what)
  local t = type(v)
  if t ~= "string" and t ~= "number" then
    misuse("list_products", "%s must be a string or a number, got %s", what, t)
  end
  return tostring(v)
end

--- Lists products, cheapest first. Every filter is optional and travels as
--- a bound parameter:
---   category  = "Chairs" or "chairs"   (name or slug)
---   min_price = "100", max_price = 400 (compared as DECIMAL, never as floats)
---   in_stock  = true | false           (stock > 0 | stock = 0)
--- Rows: id, sku, name, category, price (string), stock, image_path.
-- syntax: rows, err, errno, sqlstate = store.list_products(db, filter)
function store.list_products(db, filter)
  check_db(db, "list_products")
  filter = filter or {}
  if type(filter) ~= "table" then misuse("list_products", "filter must be a table") end
  for k in pairs(filter) do
    if not FILTERS[k] then
      misuse("list_products", "unknown filter '%s' (known: category, in_stock, max_price, min_price)", tostring(k))
    end
  end
  local where, params = {}, {}
  if filter.category ~= nil then
    if type(filter.category) ~= "string" then misuse("list_products", "category must be a string") end
    where[#where + 1] = "(c.name = ? OR c.slug = ?)"
    params[#params + 1] = filter.category
    params[#params + 1] = filter.category
  end
  if filter.min_price ~= nil then
    where[#where + 1] = "p.price >= CAST(? AS DECIMAL(12,2))"
    params[#params + 1] = price_param(filter.min_price, "min_price")
  end
  if filter.max_price ~= nil then
    where[#where + 1] = "p.price <= CAST(? AS DECIMAL(12,2))"
    params[#params + 1] = price_param(filter.max_price, "max_price")
  end
  if filter.in_stock ~= nil then
    where[#where + 1] = filter.in_stock and "p.stock > 0" or "p.stock = 0"
  end
  local sql = "SELECT p.id, p.sku, p.name, c.name AS category, p.price, p.stock, p.image_path"
    .. " FROM products p JOIN categories c ON c.id = p.category_id"
    .. (#where > 0 and (" WHERE " .. table.concat(where, " AND ")) or "")
    .. " ORDER BY p.price, p.id"
  return with_session(db, function(s)
    return s:execute(sql, params)
  end)
end

--- One product (id, sku, name, price, stock, image_path) or nil, err.
-- syntax: row, err, errno, sqlstate = store.get_product(db, product_id)
function store.get_product(db, product_id)
  check_db(db, "get_product")
  check_id(product_id, "product_id", "get_product")
  return with_session(db, function(s)
    local rows, err, errno, sqlstate = s:select("products", {
      columns = { "id", "sku", "name", "price", "stock", "image_path" }, where = { id = product_id } })
    if not rows then return nil, err, errno, sqlstate end
    if not rows[1] then return nil, ("no such product #%d"):format(product_id) end
    return rows[1]
  end)
end

----------------------------------------------------------------------------
-- Orders
----------------------------------------------------------------------------

-- Checks the items and merges repeated products; sorted by product id, so
-- every transaction locks its rows in the same order (fewer deadlocks).
local function order_lines(items, fname)
  if type(items) ~= "table" or #items == 0 then
    misuse(fname, "items must be a non-empty list of {product_id =, quantity =}")
  end
  local by_id, lines = {}, {}
  for i, item in ipairs(items) do
    if type(item) ~= "table" then misuse(fname, "item #%d must be a table", i) end
    check_id(item.product_id, ("item #%d product_id"):format(i), fname)
    check_id(item.quantity, ("item #%d quantity"):format(i), fname)
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

-- One attempt at an order, inside the session transaction.
local function order_body(s, customer_id, lines, on_locked)
  local rows, err, errno, sqlstate = s:select("customers", { columns = { "id" }, where = { id = customer_id } })
  if not rows then return nil, err, errno, sqlstate end
  if not rows[1] then return nil, ("no such customer #%d"):format(customer_id) end

  -- Lock every product row of the order (in id order) until commit: a
  -- second buyer of the same product waits here, and then sees the stock
  -- this order left.
  local ids = {}
  for i, line in ipairs(lines) do ids[i] = line.product_id end
  local products
  products, err, errno, sqlstate = s:select("products", {
    columns = { "id", "name", "price", "stock" }, where = { id = ids }, order_by = "id", for_update = true })
  if not products then return nil, err, errno, sqlstate end
  if on_locked then on_locked(s, products) end

  local by_id = {}
  for _, p in ipairs(products) do by_id[p.id] = p end
  for _, line in ipairs(lines) do
    local p = by_id[line.product_id]
    if not p then return nil, ("no such product #%d"):format(line.product_id) end
    if p.stock < line.quantity then
      return nil, "insufficient stock for " .. p.name
    end
  end

  local order_id
  order_id, err, errno, sqlstate = s:insert("orders", { customer_id = customer_id })
  if not order_id then return nil, err, errno, sqlstate end
  local stock_sets, item_sets = {}, {}
  for i, line in ipairs(lines) do
    stock_sets[i] = { line.quantity, line.product_id }
    -- unit_price is the locked row's DECIMAL string, stored exactly.
    item_sets[i] = { order_id, line.product_id, line.quantity, by_id[line.product_id].price }
  end
  local res
  res, err, errno, sqlstate = s:executemany("UPDATE products SET stock = stock - ? WHERE id = ?", stock_sets)
  if not res then return nil, err, errno, sqlstate end
  res, err, errno, sqlstate = s:executemany(
    "INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES (?, ?, ?, ?)", item_sets)
  if not res then return nil, err, errno, sqlstate end
  -- The total is summed by the server, as DECIMAL.
  res, err, errno, sqlstate = s:execute(
    "UPDATE orders SET total = (SELECT SUM(quantity * unit_price) FROM order_items WHERE order_id = ?)"
      .. " WHERE id = ?", order_id, order_id)
  if not res then return nil, err, errno, sqlstate end
  rows, err, errno, sqlstate = s:select("orders", { columns = { "total" }, where = { id = order_id } })
  if not rows then return nil, err, errno, sqlstate end
  return order_id, rows[1].total
end

local ORDER_OPTIONS = { retries = true, on_locked = true, on_retry = true }

--- Places an order in ONE transaction: locks the product rows
--- (SELECT … FOR UPDATE), checks and decrements the stock, writes the order
--- and its items and computes the total in SQL. A deadlock or lock wait
--- timeout runs the whole transaction again (opts.retries, default
--- store.retries). items: { {product_id = n, quantity = n}, … }.
--- opts.on_locked(s, products) runs while the rows are locked (e.g. to call
--- a payment provider); opts.on_retry(attempt, errno) before a new attempt.
--- Returns order_id, total (DECIMAL string); "insufficient stock for
--- <name>", "no such customer #n" and "no such product #n" are nil, err.
-- syntax: order_id, total_or_err, errno, sqlstate = store.place_order(db, customer_id, items, opts)
function store.place_order(db, customer_id, items, opts)
  check_db(db, "place_order")
  check_id(customer_id, "customer_id", "place_order")
  local lines = order_lines(items, "place_order")
  opts = check_opts(opts, ORDER_OPTIONS, "place_order")
  local attempt, last_errno = 0, nil
  return with_session(db, function(s)
    return s:transaction(function()
      attempt = attempt + 1
      if attempt > 1 and opts.on_retry then opts.on_retry(attempt, last_errno) end
      local r = pack(order_body(s, customer_id, lines, opts.on_locked))
      if r[1] == nil then last_errno = r[3] end
      return unpack(r, 1, r.n)
    end, { retries = opts.retries or store.retries })
  end)
end

--- Cancels a placed order in one transaction and puts its items back in
--- stock. Returns the restored items { {product_id, name, quantity}, … };
--- an unknown or already cancelled order is nil, err.
-- syntax: items, err, errno, sqlstate = store.cancel_order(db, order_id, opts)
function store.cancel_order(db, order_id, opts)
  check_db(db, "cancel_order")
  check_id(order_id, "order_id", "cancel_order")
  opts = check_opts(opts, { retries = true }, "cancel_order")
  return with_session(db, function(s)
    return s:transaction(function()
      local rows, err, errno, sqlstate = s:select("orders", {
        columns = { "id", "status" }, where = { id = order_id }, for_update = true })
      if not rows then return nil, err, errno, sqlstate end
      if not rows[1] then return nil, ("no such order #%d"):format(order_id) end
      if rows[1].status ~= "placed" then
        return nil, ("order #%d is already %s"):format(order_id, rows[1].status)
      end
      -- Lock the products in id order, like place_order does.
      local items
      items, err, errno, sqlstate = s:execute(
        "SELECT p.id AS product_id, p.name, oi.quantity FROM order_items oi"
          .. " JOIN products p ON p.id = oi.product_id WHERE oi.order_id = ?"
          .. " ORDER BY p.id FOR UPDATE", order_id)
      if not items then return nil, err, errno, sqlstate end
      local res
      res, err, errno, sqlstate = s:execute(
        "UPDATE products p JOIN order_items oi ON oi.product_id = p.id"
          .. " SET p.stock = p.stock + oi.quantity WHERE oi.order_id = ?", order_id)
      if not res then return nil, err, errno, sqlstate end
      res, err, errno, sqlstate = s:execute(
        "UPDATE orders SET status = 'cancelled', cancelled_at = NOW() WHERE id = ?", order_id)
      if not res then return nil, err, errno, sqlstate end
      return items
    end, { retries = opts.retries or store.retries })
  end)
end

--- One order with its customer's name and its items (product_id, name,
--- quantity, unit_price, amount), or nil, err.
-- syntax: order, err, errno, sqlstate = store.get_order(db, order_id)
function store.get_order(db, order_id)
  check_db(db, "get_order")
  check_id(order_id, "order_id", "get_order")
  return with_session(db, function(s)
    local rows, err, errno, sqlstate = s:execute(
      "SELECT o.id, o.customer_id, c.name AS customer, o.status, o.total, o.created_at"
        .. " FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = ?", order_id)
    if not rows then return nil, err, errno, sqlstate end
    if not rows[1] then return nil, ("no such order #%d"):format(order_id) end
    local order = rows[1]
    order.items, err, errno, sqlstate = s:execute(
      "SELECT oi.product_id, p.name, oi.quantity, oi.unit_price, oi.quantity * oi.unit_price AS amount"
        .. " FROM order_items oi JOIN products p ON p.id = oi.product_id"
        .. " WHERE oi.order_id = ? ORDER BY oi.product_id", order_id)
    if not order.items then return nil, err, errno, sqlstate end
    return order
  end)
end

----------------------------------------------------------------------------
-- Reporting
----------------------------------------------------------------------------

--- Sales of placed (not cancelled) orders. Returns an array of
--- { category, orders, units, revenue } per category, biggest revenue
--- first, with fields .orders, .cancelled, .units and .total (DECIMAL
--- string) for the whole store and .top_products (up to 3 of { sku, name,
--- units, revenue }). All queries read one snapshot (one session
--- transaction), so the parts add up even while orders come in.
-- syntax: report, err, errno, sqlstate = store.sales_report(db)
function store.sales_report(db)
  check_db(db, "sales_report")
  return with_session(db, function(s)
    local rows, err, errno, sqlstate = s:execute([[
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
    sum, err, errno, sqlstate = s:execute([[
      SELECT CAST(COALESCE(SUM(status = 'placed'), 0) AS UNSIGNED) AS orders,
             CAST(COALESCE(SUM(status = 'cancelled'), 0) AS UNSIGNED) AS cancelled,
             CAST(COALESCE(SUM(CASE WHEN status = 'placed' THEN total END), 0) AS DECIMAL(14,2)) AS total
        FROM orders]])
    if not sum then return nil, err, errno, sqlstate end
    local top
    top, err, errno, sqlstate = s:execute([[
      SELECT p.sku, p.name, CAST(SUM(oi.quantity) AS UNSIGNED) AS units,
             CAST(SUM(oi.quantity * oi.unit_price) AS DECIMAL(14,2)) AS revenue
        FROM order_items oi
        JOIN orders o ON o.id = oi.order_id AND o.status = 'placed'
        JOIN products p ON p.id = oi.product_id
       GROUP BY p.id, p.sku, p.name
       ORDER BY revenue DESC, p.sku
       LIMIT 3]])
    if not top then return nil, err, errno, sqlstate end
    rows.orders = sum[1].orders
    rows.cancelled = sum[1].cancelled
    rows.total = sum[1].total
    local units = 0
    for _, r in ipairs(rows) do units = units + r.units end
    rows.units = units
    rows.top_products = top
    return rows
  end)
end

----------------------------------------------------------------------------
-- Images: in a LONGBLOB, or (recommended) as a file with its path stored
----------------------------------------------------------------------------

--- Stores image bytes in products.image (LONGBLOB), byte for byte.
--- Returns the number of bytes stored.
-- syntax: n, err, errno, sqlstate = store.store_image(db, product_id, bytes)
function store.store_image(db, product_id, bytes)
  check_db(db, "store_image")
  check_id(product_id, "product_id", "store_image")
  if type(bytes) ~= "string" then misuse("store_image", "bytes must be a string") end
  return with_session(db, function(s)
    return s:transaction(function()
      -- fsdb connects with found-rows on: 1 even when the bytes are the same.
      local n, err, errno, sqlstate = s:update("products", { image = bytes }, { id = product_id })
      if not n then return nil, err, errno, sqlstate end
      if n == 0 then return nil, ("no such product #%d"):format(product_id) end
      return #bytes
    end)
  end)
end

--- The image bytes of a product; fsdb.null when it has none.
-- syntax: bytes, err, errno, sqlstate = store.fetch_image(db, product_id)
function store.fetch_image(db, product_id)
  check_db(db, "fetch_image")
  check_id(product_id, "product_id", "fetch_image")
  return with_session(db, function(s)
    local rows, err, errno, sqlstate = s:select("products", { columns = { "image" }, where = { id = product_id } })
    if not rows then return nil, err, errno, sqlstate end
    if not rows[1] then return nil, ("no such product #%d"):format(product_id) end
    return rows[1].image
  end)
end

local function image_extension(bytes)
  if bytes:sub(1, 8) == "\137PNG\r\n\26\n" then return "png" end
  if bytes:sub(1, 3) == "\255\216\255" then return "jpg" end
  if bytes:sub(1, 4) == "RIFF" and bytes:sub(9, 12) == "WEBP" then return "webp" end
  return "bin"
end

local function write_file(path, bytes)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(bytes)
  local closed, cerr = f:close()
  if not ok or not closed then
    os.remove(path)
    return nil, werr or cerr
  end
  return true
end

--- The recommended alternative: writes the image to a file under root
--- (images/products/<sku>.<ext>; root/images/products must exist) and
--- stores only that relative path in products.image_path. Returns the path.
-- syntax: path, err, errno, sqlstate = store.save_image_file(db, product_id, bytes, root)
function store.save_image_file(db, product_id, bytes, root)
  check_db(db, "save_image_file")
  check_id(product_id, "product_id", "save_image_file")
  if type(bytes) ~= "string" then misuse("save_image_file", "bytes must be a string") end
  if type(root) ~= "string" then misuse("save_image_file", "root must be a directory name") end
  return with_session(db, function(s)
    return s:transaction(function()
      local rows, err, errno, sqlstate = s:select("products", {
        columns = { "sku" }, where = { id = product_id }, for_update = true })
      if not rows then return nil, err, errno, sqlstate end
      if not rows[1] then return nil, ("no such product #%d"):format(product_id) end
      local path = ("images/products/%s.%s"):format(rows[1].sku:gsub("[^%w_-]", "_"), image_extension(bytes))
      local ok, werr = write_file(root .. "/" .. path, bytes)
      if not ok then return nil, "cannot write the image file: " .. tostring(werr) end
      local n
      n, err, errno, sqlstate = s:update("products", { image_path = path }, { id = product_id })
      if not n then
        os.remove(root .. "/" .. path)
        return nil, err, errno, sqlstate
      end
      return path
    end)
  end)
end

--- Reads a product's image file back through the path in the database.
--- Returns bytes, path.
-- syntax: bytes, path_or_err = store.load_image_file(db, product_id, root)
function store.load_image_file(db, product_id, root)
  local p, err, errno, sqlstate = store.get_product(db, product_id)
  if not p then return nil, err, errno, sqlstate end
  if p.image_path == fsdb.null then return nil, ("product #%d has no image file"):format(product_id) end
  local f, ferr = io.open(root .. "/" .. p.image_path, "rb")
  if not f then return nil, "cannot read the image file: " .. tostring(ferr) end
  local bytes = f:read("*a")
  f:close()
  return bytes, p.image_path
end

return store
