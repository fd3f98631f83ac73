/* lua_data.c — binding for the data layer: nasflat.Latency and nasflat.Table userdata and
 * core.data = {load_latency, load_table, dir}. The Lua front is lua/nasflat/data.lua.
 *
 * Conventions: rows and device/column numbers are 1-based in Lua. A wrong argument type or an
 * out-of-range row raises; a file that cannot be loaded, an unknown device or column name
 * returns nil, message. */
#include <math.h>
#include <string.h>
#include "lua_nf.h"
#include "nf_data.h"

#define NF_LATENCY_MT "nasflat.Latency"
#define NF_TABLE_MT "nasflat.Table"

typedef struct {
    nf_latency lat;
    int closed;
} lua_latency;

typedef struct {
    nf_table tab;
    int closed;
} lua_table;

/* ---------------------------------------------------------------- shared */

static const char *path_of(lua_State *L, int idx)
{
    lua_getiuservalue(L, idx, 1);
    const char *p = lua_tostring(L, -1);
    lua_pop(L, 1);   /* the userdata keeps the string alive */
    return p ? p : "?";
}

static int64_t row_arg(lua_State *L, int idx, int64_t n)
{
    lua_Integer r = luaL_checkinteger(L, idx);
    if (r < 1 || r > n) {
        lua_pushfstring(L, "row %I out of range 1..%I", (lua_Integer)r, (lua_Integer)n);
        luaL_argerror(L, idx, lua_tostring(L, -1));
    }
    return (int64_t)(r - 1);
}

/* Push nil and "<what> '<name>' (known: a, b, ...)"; returns 2. */
static int unknown_name(lua_State *L, const char *what, const char *name, char *const *names, int n)
{
    luaL_Buffer b;
    lua_pushnil(L);
    luaL_buffinit(L, &b);
    lua_pushfstring(L, "unknown %s '%s' (known: ", what, name);
    luaL_addvalue(&b);
    for (int i = 0; i < n; i++) {
        if (i) luaL_addstring(&b, ", ");
        luaL_addstring(&b, names[i]);
    }
    luaL_addstring(&b, ")");
    luaL_pushresult(&b);
    return 2;
}

static void push_names(lua_State *L, char *const *names, int n)
{
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

/* --------------------------------------------------------------- Latency */

nf_latency *nf_lua_check_latency(lua_State *L, int idx)
{
    lua_latency *u = luaL_checkudata(L, idx, NF_LATENCY_MT);
    if (u->closed) luaL_error(L, "nasflat: attempt to use a closed Latency");
    return &u->lat;
}

/* Device argument: a name or a 1-based number. Returns the 0-based index, or -1 after pushing
 * nil, message for an unknown name (the caller returns 2). */
static int device_arg(lua_State *L, const nf_latency *lat, int idx)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *name = lua_tostring(L, idx);
        int d = nf_latency_device(lat, name);
        if (d < 0) unknown_name(L, "device", name, lat->devices, lat->n_devices);
        return d;
    }
    if (!lua_isinteger(L, idx)) luaL_typeerror(L, idx, "device name or number");
    lua_Integer d = lua_tointeger(L, idx);
    if (d < 1 || d > lat->n_devices) {
        lua_pushfstring(L, "device %I out of range 1..%d", (lua_Integer)d, lat->n_devices);
        luaL_argerror(L, idx, lua_tostring(L, -1));
    }
    return (int)d - 1;
}

nf_latency *nf_lua_latency_new(lua_State *L)
{
    lua_latency *u = lua_newuserdatauv(L, sizeof *u, 1);
    memset(u, 0, sizeof *u);
    u->closed = 1;   /* not usable, and no metatable, until nf_lua_latency_done */
    return &u->lat;
}

void nf_lua_latency_done(lua_State *L, int idx, const char *origin)
{
    idx = lua_absindex(L, idx);
    lua_latency *u = lua_touserdata(L, idx);
    u->closed = 0;
    luaL_setmetatable(L, NF_LATENCY_MT);   /* only now: a failed fill leaves nothing to free */
    lua_pushstring(L, origin ? origin : "?");
    lua_setiuservalue(L, idx, 1);
    nf_lua_account(L, u->lat.bytes);
}

/* The path argument at idx; NULL after pushing nil, message when it holds a NUL byte (C would open the
 * file named by the part before it). */
static const char *path_arg(lua_State *L, int idx)
{
    size_t len;
    const char *path = luaL_checklstring(L, idx, &len);
    if (strlen(path) == len) return path;
    lua_pushnil(L);
    lua_pushfstring(L, "%s: the path has a NUL byte at byte %d (a file name cannot contain NUL)", path,
                    (int)strlen(path) + 1);
    return NULL;
}

/* core.data.load_latency(path) -> Latency | nil, message */
static int l_load_latency(lua_State *L)
{
    const char *path = path_arg(L, 1);
    if (!path) return 2;
    nf_latency *lat = nf_lua_latency_new(L);
    nf_err err;
    if (nf_latency_load(path, lat, &err)) return nf_lua_fail(L, &err);
    nf_lua_latency_done(L, -1, path);
    return 1;
}

/* core.data.latency_from(ms, devices [, arch_index [, arch_strings]]) -> Latency
 * ms: a 2-D Tensor n_archs x n_devices (NaN = not measured); devices: list of names;
 * arch_index: list of integers or nil (0..n-1); arch_strings: list of strings or nil.
 * Bad input raises (it is the caller's data, not a file). */
static int l_latency_from(lua_State *L)
{
    nf_tensor *ms = nf_lua_check_tensor(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (ms->ndim != 2) luaL_argerror(L, 1, "expected a 2-D tensor (archs x devices)");
    int64_t n = ms->shape[0];
    int64_t nd64 = ms->shape[1];
    if (nd64 > 1000000) luaL_argerror(L, 1, "too many devices");
    int nd = (int)nd64;
    if ((int64_t)(lua_Integer)lua_rawlen(L, 2) != nd) {
        lua_pushfstring(L, "%I device names for %I tensor columns", (lua_Integer)(lua_Integer)lua_rawlen(L, 2), (lua_Integer)nd);
        luaL_argerror(L, 2, lua_tostring(L, -1));
    }
    /* scratch arrays live in userdata, so a raised error leaks nothing */
    const char **devs = lua_newuserdatauv(L, sizeof(char *) * (size_t)(nd ? nd : 1), 0);
    for (int d = 0; d < nd; d++) {
        if (lua_rawgeti(L, 2, d + 1) != LUA_TSTRING) luaL_argerror(L, 2, "device names must be strings");
        devs[d] = lua_tostring(L, -1);   /* anchored by the table */
        lua_pop(L, 1);
    }
    int64_t *idx = NULL;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        if ((int64_t)(lua_Integer)lua_rawlen(L, 3) != n) luaL_argerror(L, 3, "one arch index per tensor row expected");
        idx = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)(n ? n : 1), 0);
        for (int64_t i = 0; i < n; i++) {
            lua_rawgeti(L, 3, i + 1);
            int ok;
            idx[i] = (int64_t)lua_tointegerx(L, -1, &ok);
            if (!ok) luaL_argerror(L, 3, "arch indices must be integers");
            lua_pop(L, 1);
        }
    }
    const char **strs = NULL;
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        if ((int64_t)(lua_Integer)lua_rawlen(L, 4) != n) luaL_argerror(L, 4, "one arch string per tensor row expected");
        strs = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n ? n : 1), 0);
        for (int64_t i = 0; i < n; i++) {
            if (lua_rawgeti(L, 4, i + 1) != LUA_TSTRING) luaL_argerror(L, 4, "arch strings must be strings");
            strs[i] = lua_tostring(L, -1);
            lua_pop(L, 1);
        }
    }
    nf_latency *lat = nf_lua_latency_new(L);
    nf_err err;
    if (nf_latency_from_arrays(n, nd, idx, strs, devs, ms->data, lat, &err)) return nf_lua_raise(L, &err);
    nf_lua_latency_done(L, -1, "(from arrays)");
    return 1;
}

static int lat_n_archs(lua_State *L)
{
    lua_pushinteger(L, nf_lua_check_latency(L, 1)->n_archs);
    return 1;
}

static int lat_n_devices(lua_State *L)
{
    lua_pushinteger(L, nf_lua_check_latency(L, 1)->n_devices);
    return 1;
}

static int lat_devices(lua_State *L)
{
    nf_latency *lat = nf_lua_check_latency(L, 1);
    push_names(L, lat->devices, lat->n_devices);
    return 1;
}

static int lat_device_index(lua_State *L)
{
    nf_latency *lat = nf_lua_check_latency(L, 1);
    const char *name = luaL_checkstring(L, 2);
    int d = nf_latency_device(lat, name);
    if (d < 0) return unknown_name(L, "device", name, lat->devices, lat->n_devices);
    lua_pushinteger(L, d + 1);
    return 1;
}

static int push_column(lua_State *L, int normalised)
{
    nf_latency *lat = nf_lua_check_latency(L, 1);
    int d = device_arg(L, lat, 2);
    if (d < 0) return 2;
    int64_t n = lat->n_archs;
    nf_lua_tensor *t = nf_lua_tensor_new(L, 1, &n);
    const float *src = (normalised ? lat->norm : lat->ms) + d;
    size_t stride = (size_t)lat->n_devices;
    for (int64_t i = 0; i < n; i++) t->t.data[i] = src[(size_t)i * stride];
    return 1;
}

static int lat_ms(lua_State *L) { return push_column(L, 0); }
static int lat_norm(lua_State *L) { return push_column(L, 1); }

static int lat_measured(lua_State *L)
{
    nf_latency *lat = nf_lua_check_latency(L, 1);
    int d = device_arg(L, lat, 2);
    if (d < 0) return 2;
    lua_createtable(L, (int)lat->n_measured[d], 0);
    lua_Integer k = 0;
    for (int64_t i = 0; i < lat->n_archs; i++)
        if (!isnan(lat->ms[(size_t)i * (size_t)lat->n_devices + (size_t)d])) {
            lua_pushinteger(L, i + 1);
            lua_rawseti(L, -2, ++k);
        }
    return 1;
}

static int lat_n_measured(lua_State *L)
{
    nf_latency *lat = nf_lua_check_latency(L, 1);
    int d = device_arg(L, lat, 2);
    if (d < 0) return 2;
    lua_pushinteger(L, lat->n_measured[d]);
    return 1;
}

/* lat:get(row, device) -> ms, norm | nil (not measured) | nil, message (unknown device) */
static int lat_get(lua_State *L)
{
    nf_latency *lat = nf_lua_check_latency(L, 1);
    int64_t r = row_arg(L, 2, lat->n_archs);
    int d = device_arg(L, lat, 3);
    if (d < 0) return 2;
    size_t k = (size_t)r * (size_t)lat->n_devices + (size_t)d;
    if (isnan(lat->ms[k])) { lua_pushnil(L); return 1; }
    lua_pushnumber(L, lat->ms[k]);
    lua_pushnumber(L, lat->norm[k]);
    return 2;
}

static int lat_arch_string(lua_State *L)
{
    nf_latency *lat = nf_lua_check_latency(L, 1);
    lua_pushstring(L, lat->arch_strings[row_arg(L, 2, lat->n_archs)]);
    return 1;
}

static int lat_arch_index(lua_State *L)
{
    nf_latency *lat = nf_lua_check_latency(L, 1);
    lua_pushinteger(L, lat->arch_index[row_arg(L, 2, lat->n_archs)]);
    return 1;
}

/* lat:row_of(arch_index) -> row | nil */
static int lat_row_of(lua_State *L)
{
    nf_latency *lat = nf_lua_check_latency(L, 1);
    int64_t r = nf_latency_row(lat, (int64_t)luaL_checkinteger(L, 2));
    if (r < 0) lua_pushnil(L);
    else lua_pushinteger(L, r + 1);
    return 1;
}

/* lat:range(device) -> min, max over the measured values | nil, message */
static int lat_range(lua_State *L)
{
    nf_latency *lat = nf_lua_check_latency(L, 1);
    int d = device_arg(L, lat, 2);
    if (d < 0) return 2;
    if (lat->n_measured[d] == 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "device '%s' has no measured values", lat->devices[d]);
        return 2;
    }
    lua_pushnumber(L, lat->dev_min[d]);
    lua_pushnumber(L, lat->dev_max[d]);
    return 2;
}

static int lat_path(lua_State *L)
{
    nf_lua_check_latency(L, 1);
    lua_pushstring(L, path_of(L, 1));
    return 1;
}

static int lat_free(lua_State *L)
{
    lua_latency *u = luaL_checkudata(L, 1, NF_LATENCY_MT);
    nf_latency_free(&u->lat);
    u->closed = 1;
    return 0;
}

static int lat_tostring(lua_State *L)
{
    lua_latency *u = luaL_checkudata(L, 1, NF_LATENCY_MT);
    if (u->closed) lua_pushliteral(L, "nasflat.Latency (closed)");
    else lua_pushfstring(L, "nasflat.Latency(%I archs x %d devices)", (lua_Integer)u->lat.n_archs, u->lat.n_devices);
    return 1;
}

/* ----------------------------------------------------------------- Table */

nf_table *nf_lua_check_table(lua_State *L, int idx)
{
    lua_table *u = luaL_checkudata(L, idx, NF_TABLE_MT);
    if (u->closed) luaL_error(L, "nasflat: attempt to use a closed Table");
    return &u->tab;
}

/* Column argument: a name or a 1-based number; -1 after pushing nil, message for an unknown name. */
static int column_arg(lua_State *L, const nf_table *t, int idx)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *name = lua_tostring(L, idx);
        int c = nf_table_column(t, name);
        if (c < 0) unknown_name(L, "column", name, t->names, t->n_cols);
        return c;
    }
    if (!lua_isinteger(L, idx)) luaL_typeerror(L, idx, "column name or number");
    lua_Integer c = lua_tointeger(L, idx);
    if (c < 1 || c > t->n_cols) {
        lua_pushfstring(L, "column %I out of range 1..%d", (lua_Integer)c, t->n_cols);
        luaL_argerror(L, idx, lua_tostring(L, -1));
    }
    return (int)c - 1;
}

/* A list of strings from option field `key` of the table at idx, as a NULL-terminated array
 * kept alive in a new userdata (pushed). Returns NULL (and pushes nothing) if the option is absent. */
static const char *const *name_list(lua_State *L, int idx, const char *key)
{
    if (lua_isnoneornil(L, idx)) return NULL;
    idx = lua_absindex(L, idx);
    lua_pushstring(L, key);
    lua_rawget(L, idx);   /* raw: the list stays anchored by the options table once it is off the stack */
    if (lua_isnil(L, -1)) { lua_pop(L, 1); return NULL; }
    if (!lua_istable(L, -1)) luaL_error(L, "load_table: option '%s' must be a list of column names (got %s)", key, luaL_typename(L, -1));
    int list = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, list);
    const char **names = lua_newuserdatauv(L, sizeof(char *) * ((size_t)n + 1), 0);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, list, i) != LUA_TSTRING)
            luaL_error(L, "load_table: option '%s' entry %I must be a string (got %s)", key, i, luaL_typename(L, -1));
        names[i - 1] = lua_tostring(L, -1);   /* anchored by the options table */
        lua_pop(L, 1);
    }
    names[n] = NULL;
    lua_remove(L, list);   /* keep the userdata; the list stays referenced by the options table */
    return names;
}

/* core.data.load_table(path [, opts]) -> Table | nil, message
 * opts: strings = {names} (kept as strings), numbers = {names} (must be numeric),
 *       key = "arch_index" (default: arch_index if present; false = no key), duplicates = false */
static int l_load_table(lua_State *L)
{
    static const char *const allowed[] = {"strings", "numbers", "key", "duplicates", NULL};
    luaL_checkstring(L, 1);
    nf_lua_check_options(L, 2, "load_table", allowed);
    const char *path = path_arg(L, 1);
    if (!path) return 2;
    nf_table_opts o;
    memset(&o, 0, sizeof o);
    o.string_cols = name_list(L, 2, "strings");
    o.number_cols = name_list(L, 2, "numbers");
    o.allow_duplicates = nf_lua_opt_boolean(L, 2, "duplicates", 0);
    if (!lua_isnoneornil(L, 2)) {
        int ty = lua_getfield(L, 2, "key");
        if (ty == LUA_TSTRING) o.key = lua_tostring(L, -1);
        else if (ty == LUA_TBOOLEAN && !lua_toboolean(L, -1)) o.key = "";
        else if (ty != LUA_TNIL) luaL_error(L, "load_table: option 'key' must be a column name or false (got %s)", luaL_typename(L, -1));
        lua_pop(L, 1);   /* the options table anchors the string */
    }
    lua_table *u = lua_newuserdatauv(L, sizeof *u, 1);
    memset(u, 0, sizeof *u);
    u->closed = 1;
    nf_err err;
    nf_status st = nf_table_load(path, &o, &u->tab, &err);
    if (st == NF_EINVAL) return nf_lua_raise(L, &err);   /* contradictory options: a programmer error */
    if (st) return nf_lua_fail(L, &err);
    u->closed = 0;
    luaL_setmetatable(L, NF_TABLE_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    nf_lua_account(L, u->tab.bytes);
    return 1;
}

static int tab_n_rows(lua_State *L)
{
    lua_pushinteger(L, nf_lua_check_table(L, 1)->n_rows);
    return 1;
}

static int tab_n_cols(lua_State *L)
{
    lua_pushinteger(L, nf_lua_check_table(L, 1)->n_cols);
    return 1;
}

static int tab_header(lua_State *L)
{
    nf_table *t = nf_lua_check_table(L, 1);
    push_names(L, t->names, t->n_cols);
    return 1;
}

/* tab:column_type(name) -> "number" | "string" | nil, message */
static int tab_column_type(lua_State *L)
{
    nf_table *t = nf_lua_check_table(L, 1);
    int c = column_arg(L, t, 2);
    if (c < 0) return 2;
    lua_pushstring(L, t->is_string[c] ? "string" : "number");
    return 1;
}

/* tab:column(name) -> Tensor (numeric, NaN for empty cells) | list of strings | nil, message */
static int tab_column(lua_State *L)
{
    nf_table *t = nf_lua_check_table(L, 1);
    int c = column_arg(L, t, 2);
    if (c < 0) return 2;
    if (t->is_string[c]) {
        lua_createtable(L, (int)t->n_rows, 0);
        for (int64_t i = 0; i < t->n_rows; i++) {
            lua_pushstring(L, t->str[c][i]);
            lua_rawseti(L, -2, i + 1);
        }
        return 1;
    }
    int64_t n = t->n_rows;
    nf_lua_tensor *x = nf_lua_tensor_new(L, 1, &n);
    for (int64_t i = 0; i < n; i++) x->t.data[i] = (float)t->num[c][i];
    return 1;
}

static void push_cell(lua_State *L, const nf_table *t, int64_t r, int c)
{
    if (t->is_string[c]) lua_pushstring(L, t->str[c][r]);
    else if (isnan(t->num[c][r])) lua_pushnil(L);
    else if (c == t->key) lua_pushinteger(L, t->arch_index[r]);
    else lua_pushnumber(L, t->num[c][r]);
}

/* tab:get(row, column) -> number (double) | string | nil (empty numeric cell) | nil, message */
static int tab_get(lua_State *L)
{
    nf_table *t = nf_lua_check_table(L, 1);
    int64_t r = row_arg(L, 2, t->n_rows);
    int c = column_arg(L, t, 3);
    if (c < 0) return 2;
    push_cell(L, t, r, c);
    return 1;
}

/* tab:row(row) -> {column = value, ...} (empty numeric cells absent) */
static int tab_row(lua_State *L)
{
    nf_table *t = nf_lua_check_table(L, 1);
    int64_t r = row_arg(L, 2, t->n_rows);
    lua_createtable(L, 0, t->n_cols);
    for (int c = 0; c < t->n_cols; c++) {
        push_cell(L, t, r, c);
        lua_setfield(L, -2, t->names[c]);
    }
    return 1;
}

static int tab_key(lua_State *L)
{
    nf_table *t = nf_lua_check_table(L, 1);
    if (t->key < 0) lua_pushnil(L);
    else lua_pushstring(L, t->names[t->key]);
    return 1;
}

static void check_key(lua_State *L, const nf_table *t)
{
    if (t->key < 0) luaL_error(L, "nasflat: table %s has no key column (load it with opts.key)", path_of(L, 1));
}

static int tab_arch_index(lua_State *L)
{
    nf_table *t = nf_lua_check_table(L, 1);
    check_key(L, t);
    lua_pushinteger(L, t->arch_index[row_arg(L, 2, t->n_rows)]);
    return 1;
}

/* tab:row_of(arch_index) -> first row with that key | nil */
static int tab_row_of(lua_State *L)
{
    nf_table *t = nf_lua_check_table(L, 1);
    check_key(L, t);
    int64_t r = nf_table_row(t, (int64_t)luaL_checkinteger(L, 2));
    if (r < 0) lua_pushnil(L);
    else lua_pushinteger(L, r + 1);
    return 1;
}

/* tab:rows_of(arch_index) -> {rows} (ascending, possibly empty) */
static int tab_rows_of(lua_State *L)
{
    nf_table *t = nf_lua_check_table(L, 1);
    check_key(L, t);
    const int64_t *rows;
    int64_t n = nf_table_rows(t, (int64_t)luaL_checkinteger(L, 2), &rows);
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) {
        lua_pushinteger(L, rows[i] + 1);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int tab_path(lua_State *L)
{
    nf_lua_check_table(L, 1);
    lua_pushstring(L, path_of(L, 1));
    return 1;
}

static int tab_free(lua_State *L)
{
    lua_table *u = luaL_checkudata(L, 1, NF_TABLE_MT);
    nf_table_free(&u->tab);
    u->closed = 1;
    return 0;
}

static int tab_tostring(lua_State *L)
{
    lua_table *u = luaL_checkudata(L, 1, NF_TABLE_MT);
    if (u->closed) lua_pushliteral(L, "nasflat.Table (closed)");
    else lua_pushfstring(L, "nasflat.Table(%I rows x %d columns)", (lua_Integer)u->tab.n_rows, u->tab.n_cols);
    return 1;
}

static int tab_len(lua_State *L)
{
    lua_pushinteger(L, nf_lua_check_table(L, 1)->n_rows);
    return 1;
}

/* ------------------------------------------------------------- directory */

/* core.data.dir(opt, env, fallback) -> path | nil, message (each argument may be nil) */
static int l_dir(lua_State *L)
{
    const char *opt = luaL_optstring(L, 1, NULL);
    const char *env = luaL_optstring(L, 2, NULL);
    const char *fallback = luaL_optstring(L, 3, NULL);
    size_t cap = 16;
    if (opt) cap += strlen(opt);
    if (env) cap += strlen(env);
    if (fallback) cap += strlen(fallback);
    char *out = lua_newuserdatauv(L, cap, 0);
    nf_err err;
    if (nf_data_dir(opt, env, fallback, out, cap, &err)) return nf_lua_fail(L, &err);
    lua_pushstring(L, out);
    return 1;
}

/* ------------------------------------------------------------------ open */

static void new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction free_fn,
                      lua_CFunction tostring_fn, lua_CFunction len_fn)
{
    luaL_newmetatable(L, name);
    lua_pushcfunction(L, free_fn);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, free_fn);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, tostring_fn);
    lua_setfield(L, -2, "__tostring");
    if (len_fn) {
        lua_pushcfunction(L, len_fn);
        lua_setfield(L, -2, "__len");
    }
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

void nf_lua_data_open(lua_State *L)
{
    static const luaL_Reg lat_methods[] = {
        {"n_archs", lat_n_archs}, {"n_devices", lat_n_devices}, {"devices", lat_devices},
        {"device_index", lat_device_index}, {"ms", lat_ms}, {"norm", lat_norm},
        {"measured", lat_measured}, {"n_measured", lat_n_measured}, {"get", lat_get},
        {"arch_string", lat_arch_string}, {"arch_index", lat_arch_index}, {"row_of", lat_row_of},
        {"range", lat_range}, {"path", lat_path}, {"free", lat_free}, {NULL, NULL},
    };
    static const luaL_Reg tab_methods[] = {
        {"n_rows", tab_n_rows}, {"n_cols", tab_n_cols}, {"header", tab_header},
        {"column_type", tab_column_type}, {"column", tab_column}, {"get", tab_get}, {"row", tab_row},
        {"key", tab_key}, {"arch_index", tab_arch_index}, {"row_of", tab_row_of}, {"rows_of", tab_rows_of},
        {"path", tab_path}, {"free", tab_free}, {NULL, NULL},
    };
    static const luaL_Reg fns[] = {
        {"load_latency", l_load_latency}, {"latency_from", l_latency_from}, {"load_table", l_load_table},
        {"dir", l_dir}, {NULL, NULL},
    };
    new_class(L, NF_LATENCY_MT, lat_methods, lat_free, lat_tostring, NULL);
    new_class(L, NF_TABLE_MT, tab_methods, tab_free, tab_tostring, tab_len);
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "data");
}
