/*
 * compat.h — one block that lets the same sources build against
 * Lua 5.4 and LuaJIT (Lua 5.1 C API).
 */
#ifndef FSDB_COMPAT_H
#define FSDB_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

/* luaL_checkudata for full userdata only (core.c). A light userdata can
 * carry any metatable (debug.setmetatable gives all of them one), and
 * luaL_checkudata would hand back its pointer as if it were ours. */
void *fsdb_checkudata(lua_State *L, int idx, const char *tname);
/* The same for a method whose closure keeps the metatable at upvalue
 * mt_upvalue: one pointer comparison instead of luaL_checkudata's
 * registry lookup by name, which cost more than the rest of a guard. */
void *fsdb_checkudata_up(lua_State *L, int idx, int mt_upvalue, const char *tname);

#if LUA_VERSION_NUM < 502
/* LuaJIT / 5.1 */
#define FSDB_LUA51 1
#ifndef luaL_newlib
#define luaL_newlib(L, l) (lua_newtable(L), luaL_register(L, NULL, l))
#endif
#define fsdb_rawlen(L, i) lua_objlen(L, (i))
#define fsdb_setfuncs(L, l) luaL_register(L, NULL, l)
void *fsdb_testudata(lua_State *L, int ud, const char *tname);
#define luaL_testudata fsdb_testudata
/* A userdata's companion value: 5.1 keeps it in the environment table. */
#define fsdb_newuserdata(L, sz) lua_newuserdata(L, (sz))
#define fsdb_setuservalue(L, idx) lua_setfenv(L, (idx))
#define fsdb_getuservalue(L, idx) lua_getfenv(L, (idx))
#else
#define fsdb_rawlen(L, i) lua_rawlen(L, (i))
#define fsdb_setfuncs(L, l) luaL_setfuncs(L, l, 0)
#if LUA_VERSION_NUM >= 504
#define fsdb_newuserdata(L, sz) lua_newuserdatauv(L, (sz), 1)
#define fsdb_setuservalue(L, idx) lua_setiuservalue(L, (idx), 1)
#define fsdb_getuservalue(L, idx) ((void)lua_getiuservalue(L, (idx), 1))
#else
#define fsdb_newuserdata(L, sz) lua_newuserdata(L, (sz))
#define fsdb_setuservalue(L, idx) lua_setuservalue(L, (idx))
#define fsdb_getuservalue(L, idx) ((void)lua_getuservalue(L, (idx)))
#endif
#endif

/* Integers: Lua 5.3+ has 64-bit integers; LuaJIT has only doubles, where
 * integers are exact up to ±2^53. */
#if LUA_VERSION_NUM >= 503
#define FSDB_HAS_INT64 1
#endif

#endif
