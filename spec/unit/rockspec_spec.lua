-- The rockspec lists every module and C source by name (LuaRocks' builtin
-- backend has no globs): this keeps it in step with the tree.
local function lines(cmd)
  local out, p = {}, io.popen(cmd)
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  table.sort(out)
  return out
end

describe("rockspec/fsdb-0.1.0-1.rockspec", function()
  local spec = {}
  setup(function()
    local chunk = assert(loadfile("rockspec/fsdb-0.1.0-1.rockspec", "t", spec))
    if setfenv then setfenv(chunk, spec) end
    chunk()
  end)

  it("lists every Lua module under lua/fsdb", function()
    local listed = {}
    for name, src in pairs(spec.build.modules) do
      if type(src) == "string" then
        listed[#listed + 1] = src
        local expect = name == "fsdb" and "lua/fsdb/init.lua"
          or "lua/" .. name:gsub("%.", "/") .. ".lua"
        assert.are.equal(expect, src)
      end
    end
    table.sort(listed)
    assert.are.same(lines("find lua/fsdb -name '*.lua'"), listed)
  end)

  it("builds fsdb.core from every C file in csrc", function()
    local sources = {}
    for _, src in ipairs(spec.build.modules["fsdb.core"].sources) do sources[#sources + 1] = src end
    table.sort(sources)
    assert.are.same(lines("ls csrc/*.c"), sources)
  end)

  it("installs the fsdb command", function()
    assert.are.equal("bin/fsdb", spec.build.install.bin.fsdb)
  end)
end)
