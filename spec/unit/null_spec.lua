-- fsdb.null is the light userdata NULL that cjson and OpenResty use, so
-- rows can be handed to cjson.encode and ngx.null compared directly.
local fsdb = require("fsdb")

describe("fsdb.null", function()
  it("is a light userdata equal to cjson.null", function()
    local cjson = require("cjson")
    assert.are.equal("userdata", type(fsdb.null))
    assert.is_true(fsdb.null == cjson.null)
    assert.are.equal('{"a":null}', cjson.encode({ a = fsdb.null }))
    assert.are.equal(fsdb.null, cjson.decode('{"a":null}').a)
  end)

  it("is what fsdb.is_null recognises, with nil", function()
    assert.is_true(fsdb.is_null(fsdb.null))
    assert.is_true(fsdb.is_null(nil))
    assert.is_false(fsdb.is_null(0))
    assert.is_false(fsdb.is_null(""))
    assert.is_false(fsdb.is_null(false))
  end)
end)
