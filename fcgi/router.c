#include <stdio.h>
#include <string.h>

#include "router.h"
#include "str.h"

#define ROUTER_MAX_SEGMENTS 16

struct segs {
	const char *s[ROUTER_MAX_SEGMENTS];
	size_t len[ROUTER_MAX_SEGMENTS];
	int n;
};

/* Splits "/a/b/c" into segments. -1 for paths that are not absolute, hold
 * empty, "." or ".." segments, or too many segments. */
static int
split_path(const char *path, struct segs *out)
{
	const char *p = path;

	out->n = 0;
	if (*p != '/')
		return -1;
	while (*p == '/') {
		const char *start = ++p;
		size_t len = strcspn(start, "/");

		if (len == 0) {
			if (*start == '\0' && out->n > 0)
				break;          /* one trailing slash is tolerated */
			return -1;
		}
		if ((len == 1 && start[0] == '.') || (len == 2 && start[0] == '.' && start[1] == '.'))
			return -1;
		if (out->n == ROUTER_MAX_SEGMENTS)
			return -1;
		out->s[out->n] = start;
		out->len[out->n] = len;
		out->n++;
		p = start + len;
	}
	return 0;
}

static int
param_check(const struct vd_param_rule *rules, size_t nrules, const char *name,
    const char *value, struct vd_error *err)
{
	for (size_t i = 0; i < nrules; i++)
		if (strcmp(rules[i].name, name) == 0)
			return rules[i].check(value, err);
	return 0;
}

/* Does path match pattern? Fills params (decoded) when it does. Returns 1
 * on a match, 0 on none, -1 when a captured value is malformed. */
static int
match_one(const struct segs *pat, const struct segs *path, struct vd_kv *params, int *nparams,
    struct vd_error *err)
{
	int i;

	if (pat->n != path->n)
		return 0;
	for (i = 0; i < pat->n; i++) {
		if (pat->s[i][0] == ':')
			continue;
		if (pat->len[i] != path->len[i] || memcmp(pat->s[i], path->s[i], pat->len[i]) != 0)
			return 0;
	}
	*nparams = 0;
	for (i = 0; i < pat->n; i++) {
		struct vd_kv *kv;
		long n;

		if (pat->s[i][0] != ':')
			continue;
		if (*nparams == VD_REQ_MAX_PARAMS)
			return vd_err(err, VD_EINTERNAL, "route_table", "route has too many parameters");
		kv = &params[*nparams];
		snprintf(kv->name, sizeof(kv->name), "%.*s", (int)pat->len[i] - 1, pat->s[i] + 1);
		n = vd_pct_decode(path->s[i], path->len[i], kv->value, sizeof(kv->value), 0);
		if (n <= 0 || vd_str_has_ctrl(kv->value, (size_t)n) || !vd_utf8_valid(kv->value, (size_t)n) ||
		    strchr(kv->value, '/') != NULL)
			return vd_err(err, VD_EBADREQ, "bad_path",
			    "path parameter '%s' is malformed, overlong or holds a slash or control character",
			    kv->name);
		(*nparams)++;
	}
	return 1;
}

static void
allow_add(char *allow, size_t allowsz, const char *method)
{
	size_t n = strlen(allow);

	/* keep each method once: "GET, PUT" */
	for (const char *p = allow; (p = strstr(p, method)) != NULL; p += strlen(method))
		if ((p == allow || p[-1] == ' ') && (p[strlen(method)] == ',' || p[strlen(method)] == '\0'))
			return;
	snprintf(allow + n, allowsz - n, "%s%s", n ? ", " : "", method);
}

int
vd_router_match(const struct vd_route *routes, size_t nroutes,
    const struct vd_param_rule *rules, size_t nrules, struct vd_req *req,
    const struct vd_route **out, char *allow, size_t allowsz, struct vd_error *err)
{
	struct segs path, pat;
	const char *method = req->method;
	const struct vd_route *found = NULL;
	struct vd_kv params[VD_REQ_MAX_PARAMS];
	int nparams;
	size_t i;
	int any = 0, m;

	*out = NULL;
	allow[0] = '\0';
	if (strlen(req->path) >= VD_REQ_PATH_MAX - 1 || split_path(req->path, &path) < 0)
		return vd_err(err, VD_ENOTFOUND, NULL, "no such resource");
	req->head = strcmp(method, "HEAD") == 0;
	if (req->head)
		method = "GET";
	for (i = 0; i < nroutes; i++) {
		if (split_path(routes[i].pattern, &pat) < 0)
			continue;
		/* capture into scratch space so a 405 leaves req->params empty */
		m = match_one(&pat, &path, params, &nparams, err);
		if (m < 0)
			return -1;
		if (m == 0)
			continue;
		any = 1;
		allow_add(allow, allowsz, routes[i].method);
		if (strcmp(routes[i].method, "GET") == 0)
			allow_add(allow, allowsz, "HEAD");
		if (found == NULL && strcmp(routes[i].method, method) == 0) {
			found = &routes[i];
			memcpy(req->params, params, (size_t)nparams * sizeof(params[0]));
			req->nparams = nparams;
		}
	}
	if (!any)
		return vd_err(err, VD_ENOTFOUND, NULL, "no such resource");
	if (found == NULL)
		return vd_err(err, VD_EMETHOD, NULL, "method %s is not allowed here; allowed: %s",
		    vd_str_has_ctrl(req->method, strlen(req->method)) ? "?" : req->method, allow);
	for (i = 0; i < (size_t)req->nparams; i++)
		if (param_check(rules, nrules, req->params[i].name, req->params[i].value, err) < 0)
			return -1;
	req->route = found;
	*out = found;
	return 0;
}
