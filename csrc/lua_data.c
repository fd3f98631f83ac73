/* lua_data.c — binding for the data area (being written). */
#include "lua_nf.h"

void nf_lua_data_open(lua_State *L) { (void)L; }
