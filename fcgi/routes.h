/* routes: the one table of the API. Every route is declared here once:
 * method, pattern, handler, least role, body rule and limit, validator. */
#ifndef VD_ROUTES_H
#define VD_ROUTES_H

#include <stddef.h>

#include "router.h"

extern const struct vd_route vd_routes[];
extern const size_t vd_routes_n;
extern const struct vd_param_rule vd_param_rules[];
extern const size_t vd_param_rules_n;

#endif
