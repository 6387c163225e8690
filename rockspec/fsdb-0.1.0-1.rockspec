-- fsdb: a database layer for Lua over MySQL and MariaDB, with a C core.
--
-- From a checkout, build and install into a tree without any network:
--
--   luarocks --lua-version=5.4 --tree=TREE make rockspec/fsdb-0.1.0-1.rockspec
--
-- and for LuaJIT (Lua 5.1 C API; the modules go to TREE/…/lua/5.1):
--
--   luarocks --lua-version=5.1 --tree=TREE make rockspec/fsdb-0.1.0-1.rockspec \
--       LUA_INCDIR=/usr/include/luajit-2.1
--
-- (LuaRocks' wrapper for bin/fsdb then runs lua5.1; to have it run luajit,
-- use a config file with `lua_interpreter = "luajit"` via LUAROCKS_CONFIG.)
--
-- `luarocks make` builds from the files of the checkout it runs in; the
-- source URL below is a placeholder, used only by `luarocks build`.
-- Every file of lua/fsdb/ and csrc/*.c is listed below by name: a new
-- module or C source must be added here too.
-- The "builtin" backend compiles next to the sources: it leaves csrc/*.o
-- and fsdb/core.so in the checkout (both ignored by git); delete them with
--   rm -f csrc/*.o fsdb/core.so && rmdir fsdb
--
-- Connector/C is found through the MARIADB external dependency
-- (mariadb/mysql.h and libmariadb). Debian's luarocks already searches the
-- multiarch directory (lib/x86_64-linux-gnu); elsewhere, point it at the
-- library: `luarocks make … MARIADB_DIR=/opt/mariadb` or
-- `MARIADB_INCDIR=… MARIADB_LIBDIR=…`.

rockspec_format = "3.0"
package = "fsdb"
version = "0.1.0-1"

source = {
  url = "git+https://example.invalid/fsdb.git",
  tag = "v0.1.0",
}

description = {
  summary = "A database layer for Lua over MySQL and MariaDB, with a C core",
  detailed = [[
fsdb gives Lua 5.4 and LuaJIT/OpenResty programs what SQLAlchemy's engine,
pool and session, Flask-Migrate/Alembic and PyMySQL give Python programs:
URL and environment configuration (DATABASE_URL, DB_*, .env), a thread-safe
and fork-safe connection pool with pre-ping and recycling, server-side
prepared statements with bound parameters, sessions and transactions,
Alembic-style migrations, and the `fsdb` command-line tool. Connecting,
pooling and execution live in C on top of MariaDB Connector/C.
]],
  homepage = "https://example.invalid/fsdb",
  license = "MIT",
  labels = { "database", "mysql", "mariadb", "orm", "migrations" },
}

dependencies = {
  "lua >= 5.1", -- LuaJIT reports itself as 5.1
}

external_dependencies = {
  MARIADB = {
    header = "mariadb/mysql.h",
    library = "mariadb",
  },
}

build = {
  type = "builtin",
  modules = {
    ["fsdb"] = "lua/fsdb/init.lua",
    ["fsdb.cli"] = "lua/fsdb/cli.lua",
    ["fsdb.config"] = "lua/fsdb/config.lua",
    ["fsdb.engine"] = "lua/fsdb/engine.lua",
    ["fsdb.events"] = "lua/fsdb/events.lua",
    ["fsdb.markers"] = "lua/fsdb/markers.lua",
    ["fsdb.replicas"] = "lua/fsdb/replicas.lua",
    ["fsdb.migrate"] = "lua/fsdb/migrate.lua",
    ["fsdb.migrate.autogen"] = "lua/fsdb/migrate/autogen.lua",
    ["fsdb.migrate.compare"] = "lua/fsdb/migrate/compare.lua",
    ["fsdb.migrate.compare_keys"] = "lua/fsdb/migrate/compare_keys.lua",
    ["fsdb.migrate.inline"] = "lua/fsdb/migrate/inline.lua",
    ["fsdb.migrate.graph"] = "lua/fsdb/migrate/graph.lua",
    ["fsdb.migrate.listing"] = "lua/fsdb/migrate/listing.lua",
    ["fsdb.migrate.model"] = "lua/fsdb/migrate/model.lua",
    ["fsdb.migrate.ops"] = "lua/fsdb/migrate/ops.lua",
    ["fsdb.migrate.plan"] = "lua/fsdb/migrate/plan.lua",
    ["fsdb.migrate.reflect"] = "lua/fsdb/migrate/reflect.lua",
    ["fsdb.migrate.render"] = "lua/fsdb/migrate/render.lua",
    ["fsdb.migrate.runner"] = "lua/fsdb/migrate/runner.lua",
    ["fsdb.migrate.script"] = "lua/fsdb/migrate/script.lua",
    ["fsdb.migrate.types"] = "lua/fsdb/migrate/types.lua",
    ["fsdb.migrate.version"] = "lua/fsdb/migrate/version.lua",
    ["fsdb.options"] = "lua/fsdb/options.lua",
    ["fsdb.schema"] = "lua/fsdb/schema.lua",
    ["fsdb.session"] = "lua/fsdb/session.lua",
    ["fsdb.sql"] = "lua/fsdb/sql.lua",
    ["fsdb.sqltext"] = "lua/fsdb/sqltext.lua",
    ["fsdb.transport.conn"] = "lua/fsdb/transport/conn.lua",
    ["fsdb.transport.cqueues"] = "lua/fsdb/transport/cqueues.lua",
    ["fsdb.transport.ngx"] = "lua/fsdb/transport/ngx.lua",
    ["fsdb.transport.pool"] = "lua/fsdb/transport/pool.lua",
    ["fsdb.url"] = "lua/fsdb/url.lua",
    ["fsdb.core"] = {
      sources = {
        "csrc/auth.c",
        "csrc/codec.c",
        "csrc/columnar.c",
        "csrc/conn.c",
        "csrc/copies.c",
        "csrc/core.c",
        "csrc/deadline.c",
        "csrc/error.c",
        "csrc/failover.c",
        "csrc/hosts.c",
        "csrc/lcall.c",
        "csrc/lcodec.c",
        "csrc/lconn.c",
        "csrc/lcursor.c",
        "csrc/lengine.c",
        "csrc/lobserve.c",
        "csrc/luri.c",
        "csrc/param.c",
        "csrc/pool.c",
        "csrc/result.c",
        "csrc/sqlscan.c",
        "csrc/stmt.c",
        "csrc/stmtcache.c",
        "csrc/uri.c",
      },
      -- <mysql.h> is included unqualified, as `mariadb_config --cflags`
      -- arranges for the Makefile build. No extra defines: core.c sets
      -- _GNU_SOURCE itself for dladdr, and nothing else needs it.
      incdirs = { "csrc", "$(MARIADB_INCDIR)/mariadb" },
      libdirs = { "$(MARIADB_LIBDIR)" },
      libraries = { "mariadb", "crypto", "pthread", "m", "dl" },
    },
  },
  install = {
    bin = {
      fsdb = "bin/fsdb",
    },
  },
}
