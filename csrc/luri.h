/*
 * luri.h — Lua glue for database URLs (uri.c) and for fsdb errors.
 *
 * Owns: the Lua shape of a parsed URL (a plain table, unset fields absent)
 * and the four-value failure convention `nil, err, errno, sqlstate`, which
 * the rest of the core reuses through fsdb_luri_push_error.
 */
#ifndef FSDB_LURI_H
#define FSDB_LURI_H

#include "compat.h"
#include "error.h"
#include "uri.h"

/* Adds parse_url(s [, defaults]), render_url(s [, defaults]),
 * exec_with_env(argv, name, value) and take_env(name) to the table on top
 * of the stack. */
void fsdb_luri_register(lua_State *L);

/* Pushes nil, message, code, sqlstate; returns 4 (for `return …;`). */
int fsdb_luri_push_error(lua_State *L, const fsdb_error *e);

/* Pushes a table describing u: scheme, user, password, host, port, database,
 * unix_socket, charset, connect_timeout, read_timeout, write_timeout,
 * ssl_mode (its name), ssl_ca, ssl_cert, ssl_key, ssl_capath, ssl_cipher,
 * local_infile (boolean), target_session_attrs, load_balance_hosts,
 * host_recheck_seconds and, for a host list, hosts = { {host=, port=}, … }.
 * What the URL left out is left out (local_infile is always there). */
void fsdb_luri_push_uri(lua_State *L, const fsdb_uri *u);

/* Reads the URL defaults fsdb.options hands C (a table {host =, port =,
 * charset =, connect_timeout =, read_timeout =, write_timeout =}) at
 * stack index idx (> 0) into *d; raises on a missing or bad field. Pushes 2
 * values that anchor d's strings: pop them once d is no longer used. */
void fsdb_luri_check_defaults(lua_State *L, int idx, fsdb_uri_defaults *d);

#endif
