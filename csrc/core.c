/*
 * core.c — the module `fsdb.core`: the C primitives Lua builds on.
 *
 * Exports: null (light userdata NULL, equal to cjson.null and ngx.null),
 * engine(url, options), parse_url, render_url, client_version, and the
 * metatables "fsdb.engine" and "fsdb.conn". Everything else is static.
 */
#define _GNU_SOURCE 1 /* dladdr */
#include "lcore.h"
#include "luri.h"

#include <dlfcn.h>
#include <mysql.h>

/* Lua unloads C modules when a state closes. Connector/C keeps
 * process-wide state from mysql_library_init() and the pool registers a
 * fork handler, so neither may vanish while the process lives: pin this
 * library (and with it libmariadb) for good. */
static void pin_self(void)
{
    Dl_info info;
    if (dladdr((void *)pin_self, &info) && info.dli_fname)
        dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

#ifdef FSDB_LUA51
void *fsdb_testudata(lua_State *L, int ud, const char *tname)
{
    void *p = lua_touserdata(L, ud);
    if (p == NULL || !lua_getmetatable(L, ud))
        return NULL;
    luaL_getmetatable(L, tname);
    if (!lua_rawequal(L, -1, -2))
        p = NULL;
    lua_pop(L, 2);
    return p;
}
#endif

int luaopen_fsdb_core(lua_State *L)
{
    /* Not thread-safe in Connector/C, so do it once, at load. */
    mysql_library_init(0, NULL, NULL);
    pin_self();

    lua_newtable(L);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    lua_pushstring(L, mysql_get_client_info());
    lua_setfield(L, -2, "client_version");
    lua_pushliteral(L, "0.1.0");
    lua_setfield(L, -2, "version");
    fsdb_luri_register(L);
    fsdb_lengine_register(L);
    fsdb_lconn_register(L);
    fsdb_lcursor_register(L);
    return 1;
}
