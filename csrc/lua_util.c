/* lua_util.c — binding helpers shared by every lua_*.c file. */
#include <string.h>
#include "lua_nf.h"

int nf_lua_raise(lua_State *L, const nf_err *err)
{
    return luaL_error(L, "nasflat: %s", err->msg);
}

int nf_lua_fail(lua_State *L, const nf_err *err)
{
    lua_pushnil(L);
    lua_pushstring(L, err->msg);
    return 2;
}

void nf_lua_check_options(lua_State *L, int idx, const char *fname, const char *const allowed[])
{
    if (lua_isnoneornil(L, idx)) return;
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s: option keys must be strings (got a %s key)", fname, luaL_typename(L, -1));
        const char *k = lua_tostring(L, -1);
        int ok = 0;
        for (int i = 0; allowed[i]; i++)
            if (strcmp(allowed[i], k) == 0) { ok = 1; break; }
        if (!ok) {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (int i = 0; allowed[i]; i++) {
                if (i) luaL_addstring(&b, ", ");
                luaL_addstring(&b, allowed[i]);
            }
            luaL_pushresult(&b);
            luaL_error(L, "%s: unknown option '%s' (allowed: %s)", fname, k, lua_tostring(L, -1));
        }
    }
}

/* Raw access, like nf_lua_check_options's lua_next: the value read is the value checked, no metamethod
 * runs, and a string stays anchored by the table while the caller uses it. */
static int opt_field(lua_State *L, int idx, const char *key)
{
    if (lua_isnoneornil(L, idx)) return 0;
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx)) luaL_error(L, "option '%s': options must be a table (got %s)", key, luaL_typename(L, idx));
    lua_pushstring(L, key);
    lua_rawget(L, idx);
    if (lua_isnil(L, -1)) { lua_pop(L, 1); return 0; }
    return 1;
}

lua_Integer nf_lua_opt_integer(lua_State *L, int idx, const char *key, lua_Integer def)
{
    if (!opt_field(L, idx, key)) return def;
    int isnum;
    lua_Integer v = lua_tointegerx(L, -1, &isnum);
    if (!isnum) luaL_error(L, "option '%s' must be an integer (got %s)", key, luaL_typename(L, -1));
    lua_pop(L, 1);
    return v;
}

lua_Number nf_lua_opt_number(lua_State *L, int idx, const char *key, lua_Number def)
{
    if (!opt_field(L, idx, key)) return def;
    if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "option '%s' must be a number (got %s)", key, luaL_typename(L, -1));
    lua_Number v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

int nf_lua_opt_boolean(lua_State *L, int idx, const char *key, int def)
{
    if (!opt_field(L, idx, key)) return def;
    if (!lua_isboolean(L, -1)) luaL_error(L, "option '%s' must be a boolean (got %s)", key, luaL_typename(L, -1));
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

const char *nf_lua_opt_string(lua_State *L, int idx, const char *key, const char *def)
{
    if (!opt_field(L, idx, key)) return def;
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "option '%s' must be a string (got %s)", key, luaL_typename(L, -1));
    const char *v = lua_tostring(L, -1);
    lua_pop(L, 1); /* the options table keeps the string alive */
    return v;
}

/* C memory (large core objects) is invisible to Lua's collector, whose pacing counts only its own heap. A step of
 * the same size is not enough: in generational mode (the lua 5.4 interpreter's default) a step is a minor
 * collection, which never frees an object that has grown old, and a model fine-tuned for a few hundred steps is old
 * when it is dropped (seen: 5.4 GB of dead networks on a 3-trial FBNet hybrid run). So: a full collection whenever
 * the C memory accounted since the last one passes the larger of the Lua heap and ACCOUNT_MIN. Garbage held in C
 * stays under that bound in either mode, for a traversal of the Lua heap per that much C allocation. The count
 * lives in the registry (one per Lua state). */
#define ACCOUNT_MIN ((size_t)64 << 20)
static const char account_key = 0; /* its address is the registry key */

void nf_lua_account(lua_State *L, size_t bytes)
{
    size_t *since;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &account_key) == LUA_TUSERDATA) {
        since = lua_touserdata(L, -1);
        lua_pop(L, 1);
    } else {
        lua_pop(L, 1);
        since = lua_newuserdatauv(L, sizeof *since, 0);
        *since = 0;
        lua_rawsetp(L, LUA_REGISTRYINDEX, &account_key); /* the registry keeps it alive */
    }
    *since += bytes;
    size_t heap = (size_t)lua_gc(L, LUA_GCCOUNT) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB);
    if (*since >= (heap > ACCOUNT_MIN ? heap : ACCOUNT_MIN)) {
        *since = 0;
        lua_gc(L, LUA_GCCOLLECT);
    }
}
