/* request: the request and response of one API call, and the pure parsing
 * steps the worker applies to outside input before a handler sees it
 * (query string, body framing checks, JSON body). No I/O here, so the unit
 * tests and the fuzz target drive exactly what the workers run. */
#ifndef VD_REQUEST_H
#define VD_REQUEST_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"

#define VD_REQ_PATH_MAX   1024
#define VD_REQ_MAX_PARAMS 4
#define VD_REQ_MAX_QUERY  16
#define VD_REQ_QUERY_MAX  2048

struct vd_route;

struct vd_kv {
	char name[32];
	char value[256];
};

struct vd_req {
	char id[40];                 /* nginx's $request_id, or one we make */
	char method[16];
	char path[VD_REQ_PATH_MAX];  /* as received, without the query string */
	int  head;                   /* HEAD: answered as GET without a body */
	const struct vd_route *route;
	struct vd_kv params[VD_REQ_MAX_PARAMS];
	int  nparams;
	struct vd_kv query[VD_REQ_MAX_QUERY];
	int  nquery;
	long content_length;         /* -1 when the request had none */
	int  chunked;                /* Transfer-Encoding was given */
	char content_type[128];
	char *body;                  /* owned, NUL-terminated */
	size_t body_len;
	json_t *json;                /* owned: the parsed body of a JSON route */
};

struct vd_resp {
	int status;
	json_t *body;                /* owned */
	char *text;                  /* owned: a body already serialized (wins over body) */
	size_t text_len;
	char allow[64];
	char location[256];
};

void vd_req_init(struct vd_req *req);
void vd_req_free(struct vd_req *req);

/* Borrowed values, NULL when absent. */
const char *vd_req_param(const struct vd_req *req, const char *name);
const char *vd_req_query(const struct vd_req *req, const char *name);

/* Splits and percent-decodes a query string into req->query. Bounded in
 * count and length; control characters refused (400). */
int vd_req_parse_query(struct vd_req *req, const char *qs, struct vd_error *err);

/* Checks the framing of the body a route expects before reading it:
 * 411 when a body has no length, 413 over max_body, 415 when a JSON route
 * gets another media type. */
int vd_req_check_body(const struct vd_req *req, int wants_json, size_t max_body,
    struct vd_error *err);

/* Parses a JSON object body; 400 naming line, column and byte position. */
int vd_req_parse_json(const char *body, size_t len, json_t **out, struct vd_error *err);

/* 1 for application/json (parameters such as charset allowed). */
int vd_req_is_json_type(const char *content_type);

void vd_resp_init(struct vd_resp *resp);
void vd_resp_free(struct vd_resp *resp);
/* Takes ownership of body. */
void vd_resp_json(struct vd_resp *resp, int status, json_t *body);
void vd_resp_error(struct vd_resp *resp, const struct vd_error *err);
/* Answers a copy of JSON text already serialized; -1 when out of memory. */
int vd_resp_text(struct vd_resp *resp, int status, const char *text, size_t len);

#endif
