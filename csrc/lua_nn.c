/* lua_nn.c — binding for the nn area (being written). */
#include "lua_nf.h"

void nf_lua_nn_open(lua_State *L) { (void)L; }
