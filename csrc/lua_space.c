/* lua_space.c — binding for the space area (being written). */
#include "lua_nf.h"

void nf_lua_space_open(lua_State *L) { (void)L; }
