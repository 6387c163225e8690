/*
 * auth.h — which authentication plugins a connection may use (libmariadb,
 * no Lua).
 *
 * Owns: the rule that the password goes only to a verified server. The
 * server names the plugin (in its handshake or in an auth switch request),
 * so a rogue server or a man in the middle could pick one that hands it the
 * password. By default only mysql_native_password and client_ed25519 may
 * run: they send a proof computed from the password and the server's
 * challenge, never the password. The URL option auth_plugins replaces that
 * list; plugins that send the password in clear text (mysql_clear_password,
 * dialog) or encrypted to an RSA key the server sends (sha256_password,
 * caching_sha2_password's full authentication) may be listed only on a
 * channel where the server is verified before any byte of the login:
 * ssl_mode=VERIFY_IDENTITY, or a unix socket.
 */
#ifndef FSDB_AUTH_H
#define FSDB_AUTH_H

#include <mysql.h>
#include "error.h"
#include "uri.h"

/* Sets the allowed plugins on my (before mysql_real_connect). Returns 0,
 * or -1 with err set (9001) when the URL lists a plugin that exposes the
 * password on a channel that does not verify the server. */
int fsdb_auth_apply(MYSQL *my, const fsdb_uri *u, fsdb_error *err);

/* Rewrites Connector/C's "plugin not allowed" error of a failed connect
 * into one that names the plugin the server asked for, what it would have
 * sent, and the URL option that allows it. Other errors are left alone. */
void fsdb_auth_explain(fsdb_error *err, const fsdb_uri *u);

#endif
