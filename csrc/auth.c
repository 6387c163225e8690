/*
 * auth.c — which authentication plugins a connection may use; see auth.h.
 *
 * Connector/C 3.3 enforces the list (MARIADB_OPT_RESTRICTED_AUTH) before it
 * runs a plugin, for the plugin of the server's handshake (then not even
 * the login packet goes) as for one named by an auth switch request (then
 * nothing more goes). It matches a name by substring of the list: a list
 * holding "xmysql_clear_passwordx" lets mysql_clear_password run. So the
 * URL parser lets only whole known names into auth_plugins; none of them
 * holds another real plugin's name, and a made-up name that matches a piece
 * of one finds no plugin to load (Connector/C then sends empty answers).
 */
#include "auth.h"

#include <errmsg.h>
#include <stdio.h>
#include <string.h>

#define SAFE_PLUGINS "mysql_native_password,client_ed25519"

/* The plugins that hand the password to whoever answers the login, and
 * how. */
static const struct {
    const char *name;
    const char *sends;
} exposing[] = {
    { "mysql_clear_password", "sends the password in clear text" },
    { "dialog", "sends the password in clear text" },
    { "sha256_password", "sends the password in clear text over TLS, else encrypted to an RSA "
                         "key the server sends" },
    { "caching_sha2_password", "sends the password in clear text over TLS, else encrypted to an "
                               "RSA key the server sends (its full authentication)" },
};
#define N_EXPOSING (sizeof exposing / sizeof exposing[0])

static const char *what_it_sends(const char *name, size_t n)
{
    size_t i;

    for (i = 0; i < N_EXPOSING; i++)
        if (strlen(exposing[i].name) == n && strncmp(name, exposing[i].name, n) == 0)
            return exposing[i].sends;
    return NULL;
}

/* Verified before the login: VERIFY_IDENTITY refuses a server without TLS
 * or with a certificate for another name before sending anything; a socket
 * is local. fsdb uses a socket only when the URL names one (a host,
 * "localhost" included, is TCP). */
static int channel_verified(const fsdb_uri *u)
{
    return u->ssl_mode == FSDB_SSL_VERIFY_IDENTITY || u->unix_socket != NULL;
}

int fsdb_auth_apply(MYSQL *my, const fsdb_uri *u, fsdb_error *err)
{
    const char *item = u->auth_plugins;

    while (item != NULL && !channel_verified(u)) {
        size_t n = strcspn(item, ",");
        const char *sends = what_it_sends(item, n);

        if (sends != NULL) {
            fsdb_error_set(err, FSDB_ERR_URL, NULL,
                           "auth_plugins lists %.*s, which %s: allowed only with "
                           "ssl_mode=VERIFY_IDENTITY or over a unix socket",
                           (int)n, item, sends);
            return -1;
        }
        item = item[n] == ',' ? item + n + 1 : NULL;
    }
    if (mysql_optionsv(my, MARIADB_OPT_RESTRICTED_AUTH,
                       u->auth_plugins ? u->auth_plugins : SAFE_PLUGINS) != 0) {
        fsdb_error_set(err, FSDB_ERR_NOMEM, NULL, "out of memory opening a connection");
        return -1;
    }
    return 0;
}

/* Connector/C 3.3's message names the plugin of the server's handshake
 * correctly but garbles the name from an auth switch request (the check
 * itself uses the right name: auth_spec.lua would see the password
 * otherwise). So only a name fsdb knows is repeated, never bytes a server
 * chose; anything else is reported without a name. */
static int known_name(const char *s, size_t n)
{
    static const char *const safe[] = { "mysql_native_password", "client_ed25519",
                                        "auth_gssapi_client", "mysql_old_password" };
    size_t i;

    for (i = 0; i < sizeof safe / sizeof safe[0]; i++)
        if (strlen(safe[i]) == n && strncmp(s, safe[i], n) == 0)
            return 1;
    return what_it_sends(s, n) != NULL;
}

void fsdb_auth_explain(fsdb_error *err, const fsdb_uri *u)
{
    const char *allowed = u->auth_plugins ? u->auth_plugins : SAFE_PLUGINS;
    const char *q1, *q2, *sends;
    char name[64] = "";
    size_t n;

    if (err->code != CR_PLUGIN_NOT_ALLOWED)
        return;
    if ((q1 = strchr(err->message, '\'')) != NULL && (q2 = strchr(q1 + 1, '\'')) != NULL &&
        (n = (size_t)(q2 - q1 - 1)) < sizeof name && known_name(q1 + 1, n))
        memcpy(name, q1 + 1, n), name[n] = '\0';
    sends = what_it_sends(name, strlen(name));
    if (name[0] == '\0')
        fsdb_error_set(err, CR_PLUGIN_NOT_ALLOWED, "HY000",
                       "the server asked (by an auth switch request) for an authentication plugin "
                       "that auth_plugins does not allow (allowed: %s), refused before sending "
                       "the password; hint: "
                       "mysql_clear_password, dialog, sha256_password and caching_sha2_password "
                       "send the password: to use one, connect with ssl_mode=VERIFY_IDENTITY (or "
                       "over a unix socket) and list it in auth_plugins", allowed);
    else if (sends != NULL && !channel_verified(u))
        fsdb_error_set(err, CR_PLUGIN_NOT_ALLOWED, "HY000",
                       "the server asked for authentication plugin '%s', refused before sending "
                       "the password: it %s; hint: if the server is meant to use it, connect with "
                       "ssl_mode=VERIFY_IDENTITY (or over a unix socket) and add "
                       "auth_plugins=%s to the URL", name, sends, name);
    else
        fsdb_error_set(err, CR_PLUGIN_NOT_ALLOWED, "HY000",
                       "the server asked for authentication plugin '%s', which auth_plugins "
                       "does not allow (allowed: %s), refused before sending the password; hint: "
                       "add it to auth_plugins in the URL if the account uses it%s%s",
                       name, allowed, sends ? "; note: it " : "", sends ? sends : "");
}
