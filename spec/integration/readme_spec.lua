-- Every ```lua block of README.md, run on its own (one spec per block)
-- against the furniture store's tables: two private databases
-- (fsdb_readme_<unique> and …_auth, dropped at the end) migrated with the
-- example's migrations and seeded with its catalog before each block.
--
-- A block sees DATABASE_URL and DATABASE_URL_AUTH through a fake
-- os.getenv in its environment (and library code it calls sees the same
-- answers: os.getenv itself is swapped while the block runs). A block that
-- raises fails its spec. A block whose first line is `-- not run: <reason>`
-- is reported as pending; nothing else is skipped. A block that returns a
-- revision or a schema has it checked too.
--
-- The migration session shown under "Commands" (`$ fsdb …` lines and
-- their output) is replayed in a temporary directory and compared line by
-- line.
package.path = "examples/?.lua;" .. package.path

local fsdb = require("fsdb")
local cli = require("fsdb.cli")
local ops = require("fsdb.migrate.ops")
local schema_mod = require("fsdb.schema")
local helper = require("helpers.db")
local th = require("fsdb_testhelper")
local config = require("furniture_store.config")
local store = require("furniture_store.store")

local README = "README.md"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", [['\'']]) .. "'"
end

local function lines_of(text)
  local t = {}
  for l in (text .. "\n"):gmatch("([^\n]*)\n") do t[#t + 1] = l end
  if t[#t] == "" then t[#t] = nil end
  return t
end

--- The fenced blocks of a Markdown text: { lang, code, line (of the opening
--- fence), section (the heading above it) }. A fence may be indented
--- (inside a list item); that indentation is removed from the block's lines.
local function fenced_blocks(text)
  local blocks, cur, section = {}, nil, ""
  for n, l in ipairs(lines_of(text)) do
    if cur then
      if l:match("^%s*```%s*$") then
        cur.code = table.concat(cur.lines, "\n") .. "\n"
        blocks[#blocks + 1] = cur
        cur = nil
      else
        local body = l
        if l:sub(1, #cur.indent) == cur.indent then body = l:sub(#cur.indent + 1) end
        cur.lines[#cur.lines + 1] = body
      end
    else
      local indent, lang = l:match("^(%s*)```(%w*)%s*$")
      if indent then
        cur = { indent = indent, lang = lang, line = n, lines = {}, section = section }
      elseif l:match("^#+ ") then
        section = l:match("^#+ (.-)%s*$")
      end
    end
  end
  assert(cur == nil, "README.md: a code block opened at line " .. tostring(cur and cur.line) .. " is not closed")
  return blocks
end

local counter = 0
local function unique_name()
  counter = counter + 1
  math.randomseed(os.time() + counter + th.getpid())
  return ("fsdb_readme_%d_%d_%d"):format(os.time() % 100000, th.getpid() % 100000, math.random(1, 99999))
end

local function fsdb_cli(argv, vars)
  local out, err = {}, {}
  local status = cli.main(argv, {
    out = function(s) out[#out + 1] = s end,
    err = function(s) err[#err + 1] = s end,
    getenv = function(k) return vars and vars[k] end,
    dotenv = "/nonexistent/fsdb-spec/.env",
  })
  local o, e = table.concat(out), table.concat(err)
  assert.is_nil((o .. e):find(helper.password, 1, true), "password in the command's output")
  return status, o, e
end

local function create_databases(names)
  local admin = helper.engine({ pool_size = 1 })
  for _, n in ipairs(names) do
    helper.must(admin, "CREATE DATABASE `" .. n .. "` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
  end
  admin:dispose()
end

local function drop_databases(names)
  local admin = helper.engine({ pool_size = 1 })
  for _, n in ipairs(names) do admin:execute("DROP DATABASE IF EXISTS `" .. n .. "`") end
  admin:dispose()
end

local blocks = fenced_blocks(read(README))
local lua_blocks = {}
for _, b in ipairs(blocks) do
  if b.lang == "lua" then lua_blocks[#lua_blocks + 1] = b end
end

describe("README.md", function()
  it("has lua code blocks to run, every one of them found", function()
    local fences = 0
    for _ in read(README):gmatch("```lua") do fences = fences + 1 end
    assert.is_true(#lua_blocks >= 9, "found only " .. #lua_blocks .. " lua blocks")
    assert.are.equal(fences, #lua_blocks)
  end)

  it("extracts indented blocks without their indentation", function()
    local got = fenced_blocks("- item\n\n  ```lua\n  local x = 1\n    return x\n  ```\n")
    assert.are.equal(1, #got)
    assert.are.equal("local x = 1\n  return x\n", got[1].code)
  end)
end)

describe("README.md code samples #mariadb", function()
  local names, vars

  -- Empties the store's tables (ids start at 1 again) and seeds the
  -- catalog: products 1-10, customers and users 1-3, as the samples expect.
  local function fresh_data()
    local function truncate(url, tables)
      local e = fsdb.engine.new(url, { pool_size = 1 })
      local c = assert(e:connect())
      assert(c:execute("SET FOREIGN_KEY_CHECKS = 0"))
      for _, t in ipairs(tables) do assert(c:execute("TRUNCATE TABLE `" .. t .. "`")) end
      assert(c:execute("SET FOREIGN_KEY_CHECKS = 1"))
      c:close()
      e:dispose()
    end
    truncate(vars.DATABASE_URL, { "order_items", "orders", "products", "customers" })
    truncate(vars.DATABASE_URL_AUTH, { "logins", "users" })
    local db = assert(store.open{ url = vars.DATABASE_URL, auth_url = vars.DATABASE_URL_AUTH })
    local ids = assert(store.seed(db))
    db:dispose()
    assert.are.equal(1, ids.products["SOF-001"])
    assert.are.equal(1, ids.customers["ada@example.com"])
  end

  setup(function()
    local main = unique_name()
    names = { main, main .. "_auth" }
    create_databases(names)
    vars = {
      DATABASE_URL = config.with_database(helper.url, names[1]),
      DATABASE_URL_AUTH = config.with_database(helper.url, names[2]),
    }
    local status, _, err = fsdb_cli({ "upgrade", "-d", "examples/furniture_store/migrations",
                                      "--url", vars.DATABASE_URL })
    assert(status == 0, err)
    status, _, err = fsdb_cli({ "upgrade", "-d", "examples/furniture_store/migrations_auth",
                                "--url", vars.DATABASE_URL_AUTH })
    assert(status == 0, err)
  end)

  teardown(function()
    if names then drop_databases(names) end
  end)

  -- Runs one block in an environment of its own; returns what it returned
  -- (packed) and what it printed.
  local function run_block(b)
    local printed = {}
    local fake_os = {}
    for k, v in pairs(os) do fake_os[k] = v end
    fake_os.getenv = function(name) return vars[name] end
    fake_os.exit = function() error("a README sample called os.exit", 2) end
    local env = setmetatable({
      os = fake_os,
      print = function(...)
        local t = {}
        for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
        printed[#printed + 1] = table.concat(t, "\t")
      end,
    }, { __index = _G })
    env._G = env
    -- Blank lines in front, so that line numbers in errors are README's.
    local code = ("\n"):rep(b.line) .. b.code
    local fn, err
    if setfenv then
      fn, err = load(code, "=README.md")
      if fn then setfenv(fn, env) end
    else
      fn, err = load(code, "=README.md", "t", env)
    end
    assert(fn, err)
    local real_getenv = os.getenv
    os.getenv = fake_os.getenv
    local r = { n = 0 }
    local function pack(...) return { n = select("#", ...), ... } end
    local ok, failure = xpcall(function() r = pack(fn()) end, debug.traceback)
    os.getenv = real_getenv
    collectgarbage()
    if not ok then
      error(("the README.md sample at line %d raised:\n%s"):format(b.line, tostring(failure)), 0)
    end
    return r, printed
  end

  -- What a block returned: a revision file or a schema is checked.
  local function check_result(b, r)
    local v = r[1]
    if type(v) == "table" and v.revision ~= nil then
      assert.matches("^%x%x%x%x%x%x%x%x%x%x%x%x$", v.revision)
      assert.is_function(v.up)
      local seen = {}
      local op = ops.new(function(sql) seen[#seen + 1] = sql return true end)
      v.up(op)
      if v.down then v.down(op) end
      assert.is_true(#seen > 0, ("README.md line %d: the revision runs no statement"):format(b.line))
    elseif schema_mod.is_schema(v) then
      assert(v:validate())
      assert.is_true(#v.order > 0)
    end
  end

  for _, b in ipairs(lua_blocks) do
    local first = b.code:match("^%s*([^\n]*)")
    local reason = first:match("^%-%- not run: (.+)$")
    local title = ("runs the lua block at line %d (%s)"):format(b.line, b.section)
    if reason then
      pending(title .. ": " .. reason)
    else
      it(title, function()
        fresh_data()
        local r, printed = run_block(b)
        check_result(b, r)
        -- Nothing a sample prints may carry the password.
        assert.is_nil(table.concat(printed, "\n"):find(helper.password, 1, true))
      end)
    end
  end

  it("does what the samples claim: the order total, the inserted sofa, the last lounge chair", function()
    fresh_data()
    -- The store sample: two Windsor chairs for Ada.
    local store_block
    for _, b in ipairs(lua_blocks) do
      if b.code:find("furniture_store.store", 1, true) then store_block = b end
    end
    assert.is_not_nil(store_block, "no README sample uses the store")
    local _, printed = run_block(store_block)
    assert.are.equal("order #1 placed, total 258.00", printed[1])
    -- The quick start inserted its sofa, the transaction sample took the
    -- last lounge chair: run them again on fresh data and look.
    fresh_data()
    for _, b in ipairs(lua_blocks) do
      if b.code:find("SOF-100", 1, true) or b.code:find("out of stock", 1, true) then run_block(b) end
    end
    local e = fsdb.engine.new(vars.DATABASE_URL, { pool_size = 1 })
    local rows = helper.must(e, "SELECT name, price FROM products WHERE sku = 'SOF-100'")
    assert.are.same({ name = "Kanapé Ølstrup 🛋 XL", price = "1299.00" }, { name = rows[1].name, price = rows[1].price })
    assert.are.equal(0, helper.must(e, "SELECT stock FROM products WHERE id = 6")[1].stock)
    assert.are.equal("349.00", helper.must(e, "SELECT total FROM orders")[1].total)
    e:dispose()
  end)
end)

describe("README.md migration session #mariadb", function()
  local name, tmp

  setup(function()
    name = unique_name() .. "_mig"
    create_databases({ name })
    tmp = os.tmpname()
    os.remove(tmp)
    assert(os.execute("mkdir -p " .. shell_quote(tmp)))
  end)

  teardown(function()
    if name then drop_databases({ name }) end
    if tmp then os.execute("rm -rf " .. shell_quote(tmp)) end
  end)

  -- "$ fsdb revision -m "create products"" → { "revision", "-m", "create products" }
  local function words(cmdline)
    local t, i = {}, 1
    while i <= #cmdline do
      local c = cmdline:sub(i, i)
      if c == " " then
        i = i + 1
      elseif c == '"' then
        local j = cmdline:find('"', i + 1, true)
        t[#t + 1] = cmdline:sub(i + 1, j - 1)
        i = j + 1
      else
        local j = cmdline:find(" ", i, true) or (#cmdline + 1)
        t[#t + 1] = cmdline:sub(i, j - 1)
        i = j
      end
    end
    return t
  end

  it("replays the `fsdb` session shown under Commands, output line by line", function()
    local session
    for _, b in ipairs(blocks) do
      if b.lang == "" and b.code:match("^%$ fsdb init\n") then session = b end
    end
    assert.is_not_nil(session, "README.md: no block starting with `$ fsdb init`")
    local add_price
    for _, b in ipairs(lua_blocks) do
      if b.code:find('revision = "ddd56c815235"', 1, true) then add_price = b.code end
    end
    assert.is_not_nil(add_price, "README.md: no add-price revision sample")

    -- Commands and the output each one shows.
    local steps, cur = {}, nil
    for _, l in ipairs(lines_of(session.code)) do
      local cmd = l:match("^%$ (.*)$")
      if cmd then
        cur = { cmd = cmd, expect = {} }
        steps[#steps + 1] = cur
      else
        cur.expect[#cur.expect + 1] = l
      end
    end

    local dir = tmp .. "/migrations"
    local vars = { DATABASE_URL = config.with_database(helper.url, name) }
    local id_map = {}
    local ran = 0
    for _, st in ipairs(steps) do
      local argv = words(st.cmd)
      if argv[1] == "fsdb" then
        table.remove(argv, 1)
        argv[#argv + 1] = "-d"
        argv[#argv + 1] = dir
        local status, out, err = fsdb_cli(argv, vars)
        assert.are.equal(0, status, st.cmd .. ": " .. err)
        out = out:gsub(tmp:gsub("%p", "%%%0") .. "/", "")
        local got = lines_of(out)
        -- A fresh revision gets a random id: follow it.
        for _, l in ipairs(got) do
          local new_id = l:match("^Generating migrations/versions/(%x+)_")
          if new_id then
            for _, e in ipairs(st.expect) do
              local shown = e:match("^Generating migrations/versions/(%x+)_")
              if shown then id_map[shown] = new_id end
            end
          end
        end
        local expect = {}
        for i, e in ipairs(st.expect) do
          for shown, real in pairs(id_map) do e = e:gsub(shown, real) end
          expect[i] = e
        end
        if expect[#expect] == "…" then
          expect[#expect] = nil
          while #got > #expect do got[#got] = nil end
        end
        assert.are.same(expect, got, "output of `" .. st.cmd .. "`")
        ran = ran + 1
      else
        -- "$ $EDITOR migrations/versions/<id>_<slug>.lua": write what the
        -- README says the file holds.
        local path = st.cmd:match("^%$EDITOR (%S+)")
        assert.is_not_nil(path, "README.md session: unexpected command " .. st.cmd)
        for shown, real in pairs(id_map) do path = path:gsub(shown, real) end
        if path:find("create_products", 1, true) then
          local file = tmp .. "/" .. path
          local text = read(file)
          local up = '    op.create_table("products", {\n'
            .. '      { "id", "INT UNSIGNED", primary_key = true, auto_increment = true },\n'
            .. '      { "name", "VARCHAR(200)", nullable = false },\n'
            .. '    })\n'
          local n
          text, n = text:gsub("(up = function%(op%)\n)[^\n]*\n", "%1" .. up:gsub("%%", "%%%%"))
          assert.are.equal(1, n)
          write(file, text)
        else
          local code = add_price
          for shown, real in pairs(id_map) do code = code:gsub(shown, real) end
          write(tmp .. "/" .. path, code)
        end
      end
    end
    assert.is_true(ran >= 6)
  end)
end)
