/* lua_metrics.c — binding for the metrics area (being written). */
#include "lua_nf.h"

void nf_lua_metrics_open(lua_State *L) { (void)L; }
