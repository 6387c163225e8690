/*
 * param.h — one Lua value as a statement parameter (fsdb_param), the
 * same rules on every path: Connector/C (lconn.c) and the protocol codec
 * (lcodec.c).
 */
#ifndef FSDB_PARAM_H
#define FSDB_PARAM_H

#include "compat.h"
#include "stmt.h"

/* The value at idx into p. NULL when it converted, else why not: "NaN",
 * "inf", "-inf" (SQL has none of them) or "" (a type SQL has no place
 * for). p->s points into the Lua string: the caller keeps it alive.
 * Runs no Lua code and allocates nothing. */
const char *fsdb_param_from_lua(lua_State *L, int idx, fsdb_param *p);

/* Raises the message for a refused value: names the parameter :name, or
 * #pos when name is NULL. */
int fsdb_param_refuse(lua_State *L, int idx, unsigned pos, const char *name, const char *why);

/* Both: raises on a refused value. */
static inline void fsdb_param_check(lua_State *L, int idx, fsdb_param *p, unsigned pos,
                                    const char *name)
{
    const char *why = fsdb_param_from_lua(L, idx, p);
    if (why)
        fsdb_param_refuse(L, idx, pos, name, why);
}

#endif
