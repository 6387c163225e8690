-- luacheck settings (`make lint`; Debian's lua-check). fsdb runs on Lua 5.4
-- and LuaJIT, so the standard library is the union of both.
std = "max"
max_line_length = 120
-- `_` and `_name` mark values kept on purpose (and unused loop variables).
unused_secondaries = true
ignore = { "212/_.*", "213/_.*" }

-- bin/fsdb has no .lua extension; check it as Lua.
include_files = { "lua/**/*.lua", "spec/**/*.lua", "examples/**/*.lua", "bin/fsdb", "*.lua", ".busted",
                  ".luacheckrc", "config.ld" }
exclude_files = { "build/**" }

-- Specs hold tables of exact error messages: longer lines there.
files["spec/**/*.lua"] = { std = "+busted", max_line_length = 150 }
-- The README spec swaps os.getenv while a sample runs.
files["spec/integration/readme_spec.lua"] = { globals = { "os" } }
-- OpenResty: ngx is the host's (ngx.status and ngx.header are set).
files["examples/openresty/**/*.lua"] = { globals = { "ngx" } }
files["lua/fsdb/session.lua"] = { read_globals = { "ngx" } }
-- The migrations' env.lua and revision files run in an environment fsdb
-- gives them.
files["examples/**/migrations*/**/*.lua"] = { read_globals = { "op" } }
