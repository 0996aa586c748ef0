/* router: the route table's types and the matcher. Patterns are absolute
 * paths whose ":name" segments capture a parameter; each captured value is
 * percent-decoded and checked by the rule declared for its name before any
 * handler runs. */
#ifndef VD_ROUTER_H
#define VD_ROUTER_H

#include <stddef.h>

#include "error.h"
#include "request.h"

struct vd_ctx;

typedef int (*vd_handler_fn)(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err);
typedef int (*vd_validate_fn)(struct vd_req *req, struct vd_error *err);

enum vd_role { VD_ROLE_PUBLIC, VD_ROLE_VIEWER, VD_ROLE_OPERATOR, VD_ROLE_ADMIN };
enum vd_body { VD_BODY_NONE, VD_BODY_JSON };

struct vd_route {
	const char *method;
	const char *pattern;
	vd_handler_fn handler;
	enum vd_role role;          /* the least role allowed (auth issue) */
	enum vd_body body;
	size_t max_body;            /* 0: the configured max_body */
	vd_validate_fn validate;    /* runs on the parsed request before the handler */
	const char *summary;
};

struct vd_param_rule {
	const char *name;           /* without ':' */
	int (*check)(const char *value, struct vd_error *err);
};

/* Finds the route for req->method and req->path and fills req->params.
 * 404 when no pattern matches the path, 405 with allow (e.g. "GET, PUT")
 * when patterns match but not the method, 422/400 for a parameter its rule
 * refuses. HEAD is served by GET routes. */
int vd_router_match(const struct vd_route *routes, size_t nroutes,
    const struct vd_param_rule *rules, size_t nrules, struct vd_req *req,
    const struct vd_route **out, char *allow, size_t allowsz, struct vd_error *err);

#endif
