#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "request.h"
#include "str.h"

void
vd_req_init(struct vd_req *req)
{
	memset(req, 0, sizeof(*req));
	req->content_length = -1;
}

void
vd_req_free(struct vd_req *req)
{
	free(req->body);
	json_decref(req->json);
	req->body = NULL;
	req->json = NULL;
}

static const char *
kv_get(const struct vd_kv *kv, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(kv[i].name, name) == 0)
			return kv[i].value;
	return NULL;
}

const char *
vd_req_param(const struct vd_req *req, const char *name)
{
	return kv_get(req->params, req->nparams, name);
}

const char *
vd_req_query(const struct vd_req *req, const char *name)
{
	return kv_get(req->query, req->nquery, name);
}

int
vd_req_parse_query(struct vd_req *req, const char *qs, struct vd_error *err)
{
	const char *p = qs;
	size_t total;

	req->nquery = 0;
	if (qs == NULL || *qs == '\0')
		return 0;
	total = strlen(qs);
	if (total > VD_REQ_QUERY_MAX)
		return vd_err(err, VD_EBADREQ, "bad_query", "query string longer than %d bytes",
		    VD_REQ_QUERY_MAX);
	while (*p != '\0') {
		size_t len = strcspn(p, "&");
		const char *eq = memchr(p, '=', len);
		size_t klen = eq ? (size_t)(eq - p) : len;
		struct vd_kv *kv;
		long n;

		if (len == 0) {
			p++;
			continue;
		}
		if (req->nquery == VD_REQ_MAX_QUERY)
			return vd_err(err, VD_EBADREQ, "bad_query", "more than %d query parameters",
			    VD_REQ_MAX_QUERY);
		kv = &req->query[req->nquery];
		if (klen == 0 || vd_pct_decode(p, klen, kv->name, sizeof(kv->name), 1) <= 0)
			return vd_err(err, VD_EBADREQ, "bad_query", "malformed or overlong query parameter name");
		n = eq ? vd_pct_decode(eq + 1, len - klen - 1, kv->value, sizeof(kv->value), 1) :
		    vd_pct_decode("", 0, kv->value, sizeof(kv->value), 1);
		if (n < 0)
			return vd_err(err, VD_EBADREQ, "bad_query",
			    "malformed or overlong value of query parameter '%s'",
			    vd_str_has_ctrl(kv->name, strlen(kv->name)) ? "?" : kv->name);
		if (vd_str_has_ctrl(kv->name, strlen(kv->name)) || vd_str_has_ctrl(kv->value, (size_t)n) ||
		    !vd_utf8_valid(kv->name, strlen(kv->name)) || !vd_utf8_valid(kv->value, (size_t)n))
			return vd_err(err, VD_EBADREQ, "bad_query",
			    "query parameters must be UTF-8 without control characters");
		if (kv_get(req->query, req->nquery, kv->name) != NULL)
			return vd_err(err, VD_EBADREQ, "bad_query", "query parameter '%s' given twice",
			    kv->name);
		req->nquery++;
		p += len;
		if (*p == '&')
			p++;
	}
	return 0;
}

int
vd_req_is_json_type(const char *ct)
{
	static const char json[] = "application/json";
	size_t n = sizeof(json) - 1;

	if (ct == NULL || strncasecmp(ct, json, n) != 0)
		return 0;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

int
vd_req_check_body(const struct vd_req *req, int wants_json, size_t max_body, struct vd_error *err)
{
	if (req->content_length < 0) {
		/* nginx buffers a chunked body and passes its length; a FastCGI
		 * peer that streams one without CONTENT_LENGTH is refused rather
		 * than guessed */
		if (req->chunked)
			return vd_err(err, VD_ELENGTH, NULL, "a request body needs a Content-Length");
		if (wants_json)
			return vd_err(err, VD_ELENGTH, NULL, "this route needs a JSON body with a Content-Length");
		return 0;
	}
	if ((size_t)req->content_length > max_body)
		return vd_err(err, VD_ETOOLARGE, NULL, "request body of %ld bytes exceeds the limit of %zu",
		    req->content_length, max_body);
	if (wants_json && req->content_length == 0)
		return vd_err(err, VD_EBADREQ, "empty_body", "this route needs a JSON object body");
	if (wants_json && !vd_req_is_json_type(req->content_type))
		return vd_err(err, VD_EMEDIA, NULL, "this route takes Content-Type: application/json");
	return 0;
}

int
vd_req_parse_json(const char *body, size_t len, json_t **out, struct vd_error *err)
{
	json_error_t jerr;
	json_t *j;

	*out = NULL;
	if (!vd_utf8_valid(body, len))
		return vd_err(err, VD_EBADREQ, "malformed_json", "request body is not valid UTF-8");
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL)
		return vd_err(err, VD_EBADREQ, "malformed_json",
		    "malformed JSON at line %d, column %d (byte %d): %s", jerr.line, jerr.column,
		    jerr.position, jerr.text);
	if (!json_is_object(j)) {
		json_decref(j);
		return vd_err(err, VD_EBADREQ, "malformed_json", "request body must be a JSON object");
	}
	*out = j;
	return 0;
}

void
vd_resp_init(struct vd_resp *resp)
{
	memset(resp, 0, sizeof(*resp));
	resp->status = 200;
}

void
vd_resp_free(struct vd_resp *resp)
{
	json_decref(resp->body);
	free(resp->text);
	resp->body = NULL;
	resp->text = NULL;
}

int
vd_resp_text(struct vd_resp *resp, int status, const char *text, size_t len)
{
	char *copy = malloc(len + 1);

	if (copy == NULL)
		return -1;
	memcpy(copy, text, len);
	copy[len] = '\0';
	vd_resp_free(resp);
	resp->status = status;
	resp->text = copy;
	resp->text_len = len;
	return 0;
}

void
vd_resp_json(struct vd_resp *resp, int status, json_t *body)
{
	free(resp->text);
	resp->text = NULL;
	json_decref(resp->body);
	resp->status = status;
	resp->body = body;
}

void
vd_resp_error(struct vd_resp *resp, const struct vd_error *err)
{
	vd_resp_json(resp, vd_err_http_status(err->kind), vd_err_json(err));
}
