-- The revision graph and target resolution, without a server: linear
-- histories, branches, merges, partial ids, relative targets, branch
-- labels, adopted (external) revisions, cycles; plus the revision-file
-- helpers of fsdb.migrate.script.
local graph = require("fsdb.migrate.graph")
local script = require("fsdb.migrate.script")

local function rev(id, down, extra)
  local r = { revision = id, down_revision = down, message = "msg " .. id,
              up = function() end, down = function() end }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

local function build(revs)
  local g, err = graph.new(revs)
  assert(g, err)
  return g
end

local function same(expected, got)
  assert.are.same(expected, got)
end

-- a1 -> a2 -> a3 (ids chosen so partial matching has something to bite)
local function linear()
  return build({
    rev("aaaa11110000", nil),
    rev("aaaa22220000", "aaaa11110000"),
    rev("bbbb33330000", "aaaa22220000"),
  })
end

--        r1
--       /  \
--     x2    y2
--     |     |
--     x3    y2 is a head, x3 is a head
local function branched()
  return build({
    rev("r1000000000a", nil),
    rev("x2000000000b", "r1000000000a", { branch_labels = { "left" } }),
    rev("x3000000000c", "x2000000000b"),
    rev("y2000000000d", "r1000000000a", { branch_labels = "right" }),
  })
end

local function merged()
  return build({
    rev("r1000000000a", nil),
    rev("x2000000000b", "r1000000000a"),
    rev("y2000000000d", "r1000000000a"),
    rev("m3000000000e", { "x2000000000b", "y2000000000d" }),
    rev("n4000000000f", "m3000000000e"),
  })
end

describe("fsdb.migrate.graph", function()
  describe("a linear history", function()
    it("has one head and one base, in topological order", function()
      local g = linear()
      same({ "bbbb33330000" }, g:heads())
      same({ "aaaa11110000" }, g:bases())
      same({ "aaaa11110000", "aaaa22220000", "bbbb33330000" }, g.order)
      same({ "bbbb33330000", "aaaa22220000", "aaaa11110000" }, g:newest_first())
      same({}, g:branchpoints())
    end)

    it("resolves head, heads, base and full ids", function()
      local g = linear()
      same({ "bbbb33330000" }, g:resolve("head"))
      same({ "bbbb33330000" }, g:resolve("heads"))
      same({}, g:resolve("base"))
      same({ "aaaa22220000" }, g:resolve("aaaa22220000"))
    end)

    it("resolves a unique partial id of 4 or more characters", function()
      local g = linear()
      same({ "bbbb33330000" }, g:resolve("bbbb"))
      same({ "aaaa22220000" }, g:resolve("aaaa2"))
    end)

    it("refuses an ambiguous partial id, naming the candidates", function()
      local ids, err = linear():resolve("aaaa")
      assert.is_nil(ids)
      assert.matches("Multiple revisions start with 'aaaa': aaaa11110000, aaaa22220000", err, 1, true)
      assert.matches("; hint: ", err, 1, true)
    end)

    it("refuses a partial id shorter than 4 characters", function()
      local ids, err = linear():resolve("bbb")
      assert.is_nil(ids)
      assert.matches("No such revision or branch 'bbb'; please ensure at least four characters", err, 1, true)
    end)

    it("an unknown id is Can't locate revision identified by '…', with a hint", function()
      local ids, err = linear():resolve("cccc")
      assert.is_nil(ids)
      assert.matches("^fsdb: Can't locate revision identified by 'cccc'; hint: ", err)
    end)

    it("plans an upgrade from base and from the middle", function()
      local g = linear()
      same({ "aaaa11110000", "aaaa22220000", "bbbb33330000" }, g:upgrade_plan({}, "head"))
      same({ "bbbb33330000" }, g:upgrade_plan({ "aaaa22220000" }, "head"))
      same({}, g:upgrade_plan({ "bbbb33330000" }, "head"))
      same({ "aaaa11110000" }, g:upgrade_plan({}, "aaaa1"))
    end)

    it("+N walks forward from the current revision, -N backward", function()
      local g = linear()
      same({ "aaaa11110000" }, g:resolve("+1", {}))
      same({ "aaaa22220000" }, g:resolve("+2", {}))
      same({ "bbbb33330000" }, g:resolve("+1", { "aaaa22220000" }))
      same({ "aaaa22220000" }, g:resolve("-1", { "bbbb33330000" }))
      same({}, g:resolve("-3", { "bbbb33330000" }))
      same({ "aaaa11110000" }, g:resolve("bbbb-2"))
      same({ "bbbb33330000" }, g:resolve("aaaa1+2"))
    end)

    it("a walk past either end says how far it got", function()
      local g = linear()
      local ids, err = g:resolve("+2", { "aaaa22220000" })
      assert.is_nil(ids)
      assert.matches("Relative revision +2 didn't produce 2 migrations", err, 1, true)
      ids, err = g:resolve("-4", { "bbbb33330000" })
      assert.is_nil(ids)
      assert.matches("Relative revision -4 didn't produce 4 migrations", err, 1, true)
    end)

    it("plans downgrades: -1, to a revision, to base", function()
      local g = linear()
      local cur = { "bbbb33330000" }
      same({ "bbbb33330000" }, g:downgrade_plan(cur, "-1"))
      same({ "bbbb33330000", "aaaa22220000" }, g:downgrade_plan(cur, "aaaa1"))
      same({ "bbbb33330000", "aaaa22220000", "aaaa11110000" }, g:downgrade_plan(cur, "base"))
    end)

    it("refuses to downgrade to a revision that is not applied", function()
      local g = linear()
      local plan, err = g:downgrade_plan({ "aaaa11110000" }, "bbbb33330000")
      assert.is_nil(plan)
      assert.matches("Destination bbbb33330000 is not a valid downgrade target from current head(s)", err, 1, true)
    end)

    it("the version table holds one row, updated step by step", function()
      local g = linear()
      same({ "aaaa22220000" }, g:rows_for(g:closure({ "aaaa22220000" })))
      same({ { "insert", "aaaa11110000" } }, graph.row_changes({}, { "aaaa11110000" }))
      same({ { "update", "aaaa11110000", "aaaa22220000" } },
        graph.row_changes({ "aaaa11110000" }, { "aaaa22220000" }))
      same({ { "delete", "aaaa11110000" } }, graph.row_changes({ "aaaa11110000" }, {}))
    end)

    it("history lines look like Alembic's", function()
      local g = linear()
      assert.are.equal("<base> -> aaaa11110000, msg aaaa11110000", g:line("aaaa11110000"))
      assert.are.equal("aaaa22220000 -> bbbb33330000 (head), msg bbbb33330000", g:line("bbbb33330000"))
    end)

    it("history ranges include both ends", function()
      local g = linear()
      same({ "bbbb33330000", "aaaa22220000" }, g:range("aaaa2:head"))
      same({ "aaaa22220000", "aaaa11110000" }, g:range(":aaaa2"))
      same({ "bbbb33330000", "aaaa22220000", "aaaa11110000" }, g:range("base:heads"))
      same({ "aaaa22220000" }, g:range("current:current", { "aaaa22220000" }))
      local ids, err = g:range("nonsense")
      assert.is_nil(ids)
      assert.matches("bad revision range", err, 1, true)
    end)
  end)

  describe("branches", function()
    it("has two heads and a branch point", function()
      local g = branched()
      same({ "x3000000000c", "y2000000000d" }, g:heads())
      same({ "r1000000000a" }, g:branchpoints())
      assert.matches("(branchpoint)", g:line("r1000000000a"), 1, true)
    end)

    it("'head' is Alembic's multiple-heads error with a hint", function()
      local ids, err = branched():resolve("head")
      assert.is_nil(ids)
      assert.matches("Multiple head revisions are present for given argument 'head'; please specify a "
        .. "specific target revision, '<branchname>@head' to narrow to a specific head, or 'heads' for "
        .. "all heads; hint: ", err, 1, true)
      assert.matches("x3000000000c", err, 1, true)
      assert.matches("y2000000000d", err, 1, true)
      assert.matches("fsdb merge", err, 1, true)
    end)

    it("'heads' is both heads; upgrading to them inserts a second row", function()
      local g = branched()
      same({ "x3000000000c", "y2000000000d" }, g:resolve("heads"))
      local plan = g:upgrade_plan({ "x3000000000c" }, "heads")
      same({ "y2000000000d" }, plan)
      local applied = g:closure({ "x3000000000c" })
      applied["y2000000000d"] = true
      same({ "x3000000000c", "y2000000000d" }, g:rows_for(applied))
      same({ { "insert", "y2000000000d" } }, graph.row_changes({ "x3000000000c" }, g:rows_for(applied)))
    end)

    it("branch labels name a revision and LABEL@head its head", function()
      local g = branched()
      same({ "x2000000000b" }, g:resolve("left"))
      same({ "x3000000000c" }, g:resolve("left@head"))
      same({ "y2000000000d" }, g:resolve("right@head"))
      same({}, g:resolve("left@base")) -- Alembic: the base of that branch
      assert.matches("(left)", g:line("x2000000000b"), 1, true)
    end)

    it("REV@head with several heads above it is the multiple-heads error", function()
      local ids, err = branched():resolve("r100@head")
      assert.is_nil(ids)
      assert.matches("given argument 'r100@head'", err, 1, true)
    end)

    it("+1 from a branch point is ambiguous", function()
      local ids, err = branched():resolve("+1", { "r1000000000a" })
      assert.is_nil(ids)
      assert.matches("Ambiguous walk", err, 1, true)
    end)

    it("-1 with two current revisions is ambiguous", function()
      local ids, err = branched():resolve("-1", { "x3000000000c", "y2000000000d" })
      assert.is_nil(ids)
      assert.matches("Relative revision -1 is ambiguous", err, 1, true)
    end)

    it("a downgrade to a revision undoes only its own branch", function()
      local g = branched()
      local cur = { "x3000000000c", "y2000000000d" }
      same({ "x3000000000c" }, g:downgrade_plan(cur, "x200"))
      local plan = g:downgrade_plan(cur, "r100")
      table.sort(plan)
      same({ "x2000000000b", "x3000000000c", "y2000000000d" }, plan)
    end)

    it("duplicate branch labels are refused", function()
      local g, err = graph.new({
        rev("r1000000000a", nil, { branch_labels = "dup" }),
        rev("x2000000000b", "r1000000000a", { branch_labels = { "dup" } }),
      })
      assert.is_nil(g)
      assert.matches("Branch name 'dup' is used by revisions", err, 1, true)
    end)

    it("stamp keeps rows on unrelated branches unless purged", function()
      local g = branched()
      same({ "x2000000000b", "y2000000000d" }, g:stamp_rows({ "x3000000000c", "y2000000000d" }, "x2000000000b"))
      same({ "x2000000000b" }, g:stamp_rows({ "x3000000000c", "y2000000000d" }, "x2000000000b", true))
      same({}, g:stamp_rows({ "x3000000000c" }, "base"))
      same({ "x3000000000c", "y2000000000d" }, g:stamp_rows({}, "heads"))
      -- LABEL@base empties only that branch's rows
      same({ "y2000000000d" }, g:stamp_rows({ "x3000000000c", "y2000000000d" }, "left@base"))
    end)
  end)

  describe("merges", function()
    it("one head again; the merge is a mergepoint", function()
      local g = merged()
      same({ "n4000000000f" }, g:heads())
      assert.matches("^%(x2000000000b, y2000000000d%) %-> m3000000000e %(mergepoint%)", g:line("m3000000000e"))
    end)

    it("applying the merge replaces both rows by one", function()
      local g = merged()
      local before = { "x2000000000b", "y2000000000d" }
      same({ "m3000000000e", "n4000000000f" }, g:upgrade_plan(before, "head"))
      local applied = g:closure(before)
      applied["m3000000000e"] = true
      local after = g:rows_for(applied)
      same({ "m3000000000e" }, after)
      same({ { "delete", "y2000000000d" }, { "update", "x2000000000b", "m3000000000e" } },
        graph.row_changes(before, after))
    end)

    it("undoing the merge brings both rows back", function()
      local g = merged()
      local applied = g:closure({ "m3000000000e" })
      applied["m3000000000e"] = nil
      local rows = g:rows_for(applied)
      same({ "x2000000000b", "y2000000000d" }, rows)
      same({ { "update", "m3000000000e", "x2000000000b" }, { "insert", "y2000000000d" } },
        graph.row_changes({ "m3000000000e" }, rows))
    end)

    it("-1 from the merge is Alembic's ambiguous walk; a downgrade to the branch point undoes both", function()
      local g = merged()
      local ids, err, code = g:resolve("-1", { "m3000000000e" })
      assert.is_nil(ids)
      assert.matches("Ambiguous walk", err, 1, true)
      assert.are.equal("ambiguous", code)
      ids, err = g:downgrade_plan({ "m3000000000e" }, "-1")
      assert.is_nil(ids)
      assert.matches("Ambiguous walk", err, 1, true)
      same({ "m3000000000e", "y2000000000d", "x2000000000b" }, g:downgrade_plan({ "m3000000000e" }, "r100"))
    end)

    it("a plan from base applies each parent before the merge", function()
      local g = merged()
      local plan = g:upgrade_plan({}, "head")
      same({ "r1000000000a", "x2000000000b", "y2000000000d", "m3000000000e", "n4000000000f" }, plan)
    end)
  end)

  describe("depends_on", function()
    it("a dependency on another branch is applied first and does not use up a head", function()
      local g = build({
        rev("r1000000000a", nil),
        rev("x2000000000b", "r1000000000a"),
        rev("y2000000000d", "r1000000000a", { depends_on = "x2000000000b" }),
      })
      same({ "x2000000000b", "y2000000000d" }, g:heads())
      same({ "x2000000000b", "y2000000000d" }, g:upgrade_plan({ "r1000000000a" }, "y2000000000d"))
      -- undoing x2 undoes y2 first
      same({ "y2000000000d", "x2000000000b" }, g:downgrade_plan({ "y2000000000d" }, "r1000000000a"))
    end)

    -- ae01 <- ae02, and dd01 (label lib) with depends_on = ae02
    local function lib()
      return build({
        rev("ae1000000001", nil),
        rev("ae1000000002", "ae1000000001"),
        rev("dd4000000001", nil, { branch_labels = "lib", depends_on = "ae1000000002" }),
      })
    end

    it("the version table keeps no row for a dependency (Alembic's effective head)", function()
      local g = lib()
      same({ "dd4000000001" }, g:rows_for(g:closure({ "dd4000000001" })))
      same({ "ae1000000001", "ae1000000002", "dd4000000001" }, g:upgrade_plan({}, "heads"))
      same({}, g:upgrade_plan({ "dd4000000001" }, "heads"))
    end)

    it("LABEL@base undoes only the label's revisions, not the branch it depends on", function()
      local g = lib()
      same({ "dd4000000001" }, g:downgrade_plan({ "dd4000000001" }, "lib@base"))
      same({ "ae1000000002" }, g:rows_for({ ae1000000001 = true, ae1000000002 = true }))
      -- undoing the dependency undoes what needs it first
      same({ "dd4000000001", "ae1000000002" }, g:downgrade_plan({ "dd4000000001" }, "ae1000000001"))
    end)

    it("LABEL@+1 and LABEL@-1 walk that branch only", function()
      local g = lib()
      same({ "dd4000000001" }, g:upgrade_plan({ "ae1000000002" }, "lib@+1"))
      same({ "ae1000000001" }, g:upgrade_plan({}, "ae1000000001@+1"))
      same({ "dd4000000001" }, g:downgrade_plan({ "dd4000000001" }, "lib@-1"))
      local plan, err = g:upgrade_plan({ "dd4000000001" }, "lib@+1")
      assert.is_nil(plan)
      assert.matches("Relative revision lib@+1 didn't produce 1 migrations", err, 1, true)
    end)

    it("an unknown dependency is Can't locate", function()
      local g, err = graph.new({ rev("r1000000000a", nil, { depends_on = { "nope1234" } }) })
      assert.is_nil(g)
      assert.matches("Can't locate revision identified by 'nope1234'", err, 1, true)
    end)
  end)

  describe("broken and adopted histories", function()
    it("a cycle is refused, naming the revisions in it", function()
      local g, err = graph.new({
        rev("aaaa00000001", "aaaa00000002"),
        rev("aaaa00000002", "aaaa00000001"),
      })
      assert.is_nil(g)
      assert.matches("Cycle is detected in revisions (aaaa00000001, aaaa00000002)", err, 1, true)
      g, err = graph.new({ rev("aaaa00000001", "aaaa00000001") })
      assert.is_nil(g)
      assert.matches("Cycle is detected", err, 1, true)
    end)

    it("the same id twice is refused", function()
      local g, err = graph.new({ rev("aaaa00000001", nil, { path = "one.lua" }),
                                 rev("aaaa00000001", nil, { path = "two.lua" }) })
      assert.is_nil(g)
      assert.matches("Revision aaaa00000001 is present more than once (one.lua and two.lua)", err, 1, true)
    end)

    it("a missing down_revision cannot be run through: Can't locate …", function()
      local g = build({ rev("bbbb00000002", "ae1027a6acf1"), rev("bbbb00000003", "bbbb00000002") })
      local plan, err = g:upgrade_plan({}, "head")
      assert.is_nil(plan)
      assert.matches("^fsdb: Can't locate revision identified by 'ae1027a6acf1'; hint: ", err)
      local ids
      ids, err = g:resolve("-3", { "bbbb00000003" })
      assert.is_nil(ids)
      assert.matches("Can't locate revision identified by 'ae1027a6acf1'", err, 1, true)
      plan, err = g:downgrade_plan({ "bbbb00000003" }, "base")
      assert.is_nil(plan)
      assert.matches("Can't locate revision identified by 'ae1027a6acf1'", err, 1, true)
    end)

    it("a version table naming the missing revision (an adopted database) upgrades from there", function()
      local g = build({ rev("bbbb00000002", "ae1027a6acf1"), rev("bbbb00000003", "bbbb00000002") })
      assert.is_true(g:check_rows({ "ae1027a6acf1" }))
      same({ "bbbb00000002", "bbbb00000003" }, g:upgrade_plan({ "ae1027a6acf1" }, "head"))
      same({ "bbbb00000003", "bbbb00000002" }, g:downgrade_plan({ "bbbb00000003" }, "ae10"))
      same({ "ae1027a6acf1" }, g:resolve("-2", { "bbbb00000003" }))
      same({ "bbbb00000003", "bbbb00000002" }, g:newest_first())
    end)

    it("a version-table row that names nothing known is Can't locate, with the ways out", function()
      local ok, err = linear():check_rows({ "aaaa11110000", "deadbeef0000" })
      assert.is_nil(ok)
      assert.matches("^fsdb: Can't locate revision identified by 'deadbeef0000'; hint: ", err)
      assert.matches("stamp --purge", err, 1, true)
    end)
  end)
end)

describe("fsdb.migrate.script", function()
  it("new_id gives 12 lowercase hex characters, different each time", function()
    local seen = {}
    for _ = 1, 50 do
      local id = script.new_id()
      assert.matches("^%x%x%x%x%x%x%x%x%x%x%x%x$", id)
      assert.are.equal(id:lower(), id)
      assert.is_nil(seen[id])
      seen[id] = true
    end
  end)

  it("slug lowercases, turns other characters into _ and keeps 40 characters", function()
    assert.are.equal("add_products_table", script.slug("Add products: table!"))
    assert.are.equal("", script.slug(""))
    assert.are.equal("caf_cr_me", script.slug("Café crème"))
    local long = script.slug(("word "):rep(20))
    assert.is_true(#long <= 40)
    assert.matches("^word_word", long)
    assert.is_nil(long:match("_$"))
  end)

  it("a rendered revision loads back with the same fields", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(script.mkdir_p(dir .. "/versions"))
    local path = assert(script.write_revision(dir, {
      revision = "0123456789ab", down_revision = { "aaaa00000001", "aaaa00000002" },
      branch_labels = { "auth" }, message = "Merge \"two\" heads\nsecond line",
      up_body = 'op.execute("SELECT 1")', down_body = nil,
    }))
    assert.matches("/versions/0123456789ab_merge_two_heads_second_line%.lua$", path)
    local r = assert(script.load_revision(path))
    assert.are.equal("0123456789ab", r.revision)
    same({ "aaaa00000001", "aaaa00000002" }, r.down_revision)
    same({ "auth" }, r.branch_labels)
    assert.are.equal("Merge \"two\" heads\nsecond line", r.message)
    local ran = {}
    r.up({ execute = function(sql) ran[#ran + 1] = sql end })
    same({ "SELECT 1" }, ran)
    assert.is_function(r.down)
    local text = script.read_file(path)
    assert.matches("\n%-%- Revision ID: 0123456789ab\n", text)
    assert.matches("\n%-%- Revises: aaaa00000001, aaaa00000002\n", text)
    local revs = assert(script.load_versions(dir))
    assert.are.equal(1, #revs)
    os.remove(path)
    os.remove(dir .. "/versions")
    os.remove(dir)
  end)

  it("a revision file with a bad shape is refused with its path", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(script.mkdir_p(dir))
    local path = dir .. "/bad.lua"
    assert(script.write_file(path, "return { revision = 'x y', up = function() end }"))
    local r, err = script.load_revision(path)
    assert.is_nil(r)
    assert.matches("bad.lua: revision must be an id", err, 1, true)
    os.remove(path)
    assert(script.write_file(path, "return { revision = 'abcd', down_revision = 'zzzz' }"))
    r, err = script.load_revision(path)
    assert.is_nil(r)
    assert.matches("up must be a function", err, 1, true)
    os.remove(path)
    os.remove(dir)
  end)
end)

describe("fsdb.migrate.inline", function()
  local migrate = require("fsdb.migrate")
  it("inlines ? and :name as literals, not inside quotes or comments", function()
    assert.are.equal("INSERT INTO t VALUES (1, 'it''s', NULL, 1)",
      migrate.inline("INSERT INTO t VALUES (?, ?, ?, ?)", { 1, "it's", nil, true, n = 4 }))
    assert.are.equal("SELECT '?' , `a?` , 'x' -- ?\n",
      migrate.inline("SELECT '?' , `a?` , ? -- ?\n", { "x" }))
    assert.are.equal("UPDATE t SET a = 'v' WHERE b = 2",
      migrate.inline("UPDATE t SET a = :a WHERE b = :b", { a = "v", b = 2 }))
    assert.are.equal("SELECT 1", migrate.inline("SELECT 1", nil))
  end)
end)
