--- fsdb.migrate.autogen — autogenerate: compares a schema declared in Lua
--- (fsdb.schema) with the live database and proposes the op calls that
--- close the gap. Alembic's three steps, one module each:
--
--   reflect  (fsdb.migrate.reflect)  information_schema → a table model
--   compare  (fsdb.migrate.compare, compare_keys)  declared vs reflected
--            → diffs as plain data, in a dependency-safe order
--   render   (fsdb.migrate.render)   diffs → the Lua source of op calls
--
-- with the lexing both sides share in fsdb.migrate.types.
--
--   local diffs, err = autogen.compare(conn, schema, { version_table = "alembic_version" })
--   local up, down, notes = autogen.render(diffs)   -- bodies of up(op) and down(op)
--
-- What it compares: tables, table options (comment, engine, charset and
-- collation, row format), columns (type, nullability, default, ON UPDATE,
-- comment, auto_increment), indexes and unique constraints, foreign keys.
-- Server spellings are normalised before comparing (int(10) unsigned =
-- INT UNSIGNED, tinyint(1) = BOOLEAN, current_timestamp() =
-- CURRENT_TIMESTAMP, '…' quoting of defaults, …), so a table made by
-- op.create_table from a declaration compares equal to it.
--
-- Safety: a table that is in the database but not declared is never
-- dropped unless asked (opts.drop_tables, or include_object returning true
-- for it), and an empty declaration against a database with tables is an
-- error rather than "drop everything". What is deliberately not proposed
-- (kept tables, primary key changes, …) is listed in diffs.notes, which
-- render returns as a comment for the top of the revision file.

local types = require("fsdb.migrate.types")
local compare = require("fsdb.migrate.compare")
local render = require("fsdb.migrate.render")

local _M = {}

--- Compares the declared schema with the database of conn. Returns the
--- diffs (plain data: kind, table, column?, name?, description, …) with
--- diffs.notes (what was deliberately not proposed) and diffs.kept_tables,
--- or nil, err (, errno, sqlstate).
--- opts: version_table ("alembic_version"), bind (which tables of the
--- schema: nil = the default database), drop_tables, include_object(type,
--- name, reflected, compare_to, object, table_name), compare_type,
--- compare_default, compare_comment (all default true).
-- syntax: diffs, err, errno, sqlstate = autogen.compare(conn, schema, opts)
_M.compare = compare.compare

--- The bodies of up(op) and down(op) for diffs from compare, and the
--- notes comment (nil without notes). opts.indent (default four spaces).
-- syntax: up_body, down_body, notes_comment = autogen.render(diffs, opts)
_M.render = render.bodies

--- The op call(s) of one diff: up, down.
-- syntax: up, down = autogen.render_diff(d)
_M.render_diff = render.diff

--- Canonical spellings (see fsdb.migrate.types).
_M.normalize_type = types.normalize_type
_M.normalize_expr = types.normalize_expr

return _M
