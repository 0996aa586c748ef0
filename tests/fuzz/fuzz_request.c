/* libFuzzer target: everything a request goes through before a handler, on
 * arbitrary bytes. The input is split at the first two NUL bytes into a path,
 * a query string and a body; the path is matched against the real route
 * table (with the method chosen by the first byte), the query string parsed,
 * the body framing checked and the body parsed as JSON. */
#include <stdint.h>
#include <string.h>

#include "request.h"
#include "router.h"
#include "routes.h"

static const char *const methods[] = { "GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct vd_route *route;
	struct vd_req req;
	struct vd_error err;
	char allow[64], qs[VD_REQ_QUERY_MAX + 64];
	const uint8_t *p, *end = data + size;
	size_t n;

	if (size < 1)
		return 0;
	vd_req_init(&req);
	strcpy(req.method, methods[data[0] % (sizeof(methods) / sizeof(methods[0]))]);
	data++;
	p = memchr(data, 0, (size_t)(end - data));
	n = p ? (size_t)(p - data) : (size_t)(end - data);
	if (n >= sizeof(req.path))
		n = sizeof(req.path) - 1;
	memcpy(req.path, data, n);
	req.path[n] = '\0';
	vd_router_match(vd_routes, vd_routes_n, vd_param_rules, vd_param_rules_n, &req, &route,
	    allow, sizeof(allow), &err);
	if (p == NULL)
		return 0;
	data = p + 1;
	p = memchr(data, 0, (size_t)(end - data));
	n = p ? (size_t)(p - data) : (size_t)(end - data);
	if (n >= sizeof(qs))
		n = sizeof(qs) - 1;
	memcpy(qs, data, n);
	qs[n] = '\0';
	vd_req_parse_query(&req, qs, &err);
	if (p == NULL)
		return 0;
	data = p + 1;
	req.content_length = (long)(end - data);
	strcpy(req.content_type, "application/json");
	if (vd_req_check_body(&req, 1, 65536, &err) == 0) {
		json_t *j = NULL;

		if (vd_req_parse_json((const char *)data, (size_t)(end - data), &j, &err) == 0)
			json_decref(j);
	}
	vd_req_free(&req);
	return 0;
}
