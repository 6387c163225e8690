/*
 * param.c — a Lua value as a statement parameter; see param.h.
 */
#include "param.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *fsdb_param_from_lua(lua_State *L, int idx, fsdb_param *p)
{
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        p->type = FSDB_P_NULL;
        return NULL;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) { /* fsdb.null, cjson.null, ngx.null */
            p->type = FSDB_P_NULL;
            return NULL;
        }
        return "";
    case LUA_TBOOLEAN:
        p->type = FSDB_P_INT;
        p->i = lua_toboolean(L, idx);
        return NULL;
    case LUA_TNUMBER:
#ifdef FSDB_HAS_INT64
        if (lua_isinteger(L, idx)) {
            p->type = FSDB_P_INT;
            p->i = (long long)lua_tointeger(L, idx);
            return NULL;
        }
#endif
        p->d = (double)lua_tonumber(L, idx);
        /* SQL has no NaN or infinity: the server would store something
         * else, or refuse the statement with a confusing message. */
        if (isnan(p->d))
            return "NaN";
        if (isinf(p->d))
            return p->d > 0 ? "inf" : "-inf";
#ifdef FSDB_HAS_INT64
        p->type = FSDB_P_DOUBLE;
#else
        /* LuaJIT has no integer type: whole numbers travel as integers. */
        if (p->d == floor(p->d) && fabs(p->d) < 9223372036854775808.0) {
            p->type = FSDB_P_INT;
            p->i = (long long)p->d;
        } else {
            p->type = FSDB_P_DOUBLE;
        }
#endif
        return NULL;
    case LUA_TSTRING: {
        size_t len;
        p->type = FSDB_P_STRING;
        p->s = lua_tolstring(L, idx, &len);
        p->len = (unsigned long)len;
        return NULL;
    }
    default:
        return "";
    }
}

int fsdb_param_refuse(lua_State *L, int idx, unsigned pos, const char *name, const char *why)
{
    char where[24];
    if (name == NULL)
        snprintf(where, sizeof where, "#%u", pos);
    if (*why)
        return luaL_error(L, "fsdb: bad parameter %s%s (%s cannot be stored in SQL)",
                          name ? ":" : "", name ? name : where, why);
    return luaL_error(L, "fsdb: bad parameter %s%s (%s cannot be bound; use nil, fsdb.null, "
                         "boolean, number or string)",
                      name ? ":" : "", name ? name : where, luaL_typename(L, idx));
}
