#include <errno.h>
#include <fcgiapp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "handlers.h"
#include "log.h"
#include "pool.h"
#include "routes.h"
#include "str.h"
#include "worker.h"

static volatile sig_atomic_t worker_stop;

static void
worker_on_term(int sig)
{
	(void)sig;
	worker_stop = 1;
}

static const char *
reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default:  return "Status";
	}
}

/* Every route passes here before its handler. The authentication issue
 * puts credentials and roles behind it; until then the pool is reached only
 * through its 0660 unix socket and nginx listens on loopback by default. */
static int
worker_authorize(struct vd_ctx *ctx, const struct vd_req *req, const struct vd_route *route,
    struct vd_error *err)
{
	(void)ctx;
	(void)req;
	(void)route;
	(void)err;
	return 0;
}

static int
read_body(FCGX_Request *fr, struct vd_req *req, struct vd_error *err)
{
	size_t want = (size_t)req->content_length, got = 0;

	req->body = malloc(want + 1);
	if (req->body == NULL)
		return vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
	while (got < want) {
		int n = FCGX_GetStr(req->body + got, (int)(want - got), fr->in);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	req->body[got] = '\0';
	req->body_len = got;
	if (got != want)
		return vd_err(err, VD_EBADREQ, "short_body",
		    "request body ended after %zu of %zu bytes", got, want);
	return 0;
}

/* Fills req from the CGI parameters nginx sent. */
static int
load_params(FCGX_Request *fr, struct vd_req *req, struct vd_error *err)
{
	const char *method = FCGX_GetParam("REQUEST_METHOD", fr->envp);
	const char *uri = FCGX_GetParam("REQUEST_URI", fr->envp);
	const char *qs = FCGX_GetParam("QUERY_STRING", fr->envp);
	const char *cl = FCGX_GetParam("CONTENT_LENGTH", fr->envp);
	const char *ct = FCGX_GetParam("CONTENT_TYPE", fr->envp);
	const char *te = FCGX_GetParam("HTTP_TRANSFER_ENCODING", fr->envp);
	const char *rid = FCGX_GetParam("REQUEST_ID", fr->envp);
	size_t plen;
	long len;

	if (rid != NULL && strlen(rid) < sizeof(req->id) && strspn(rid, "0123456789abcdef") == strlen(rid) &&
	    *rid != '\0')
		vd_str_copy(req->id, sizeof(req->id), rid);
	else
		vd_crypto_random_hex(req->id, sizeof(req->id), 16);
	if (method == NULL || uri == NULL)
		return vd_err(err, VD_EBADREQ, NULL, "request without REQUEST_METHOD or REQUEST_URI");
	if (vd_str_copy(req->method, sizeof(req->method), method) < 0)
		return vd_err(err, VD_EMETHOD, NULL, "method name too long");
	plen = strcspn(uri, "?");
	if (plen >= sizeof(req->path))
		return vd_err(err, VD_EBADREQ, "uri_too_long", "request path longer than %zu bytes",
		    sizeof(req->path) - 1);
	memcpy(req->path, uri, plen);
	req->path[plen] = '\0';
	if (ct != NULL)
		vd_str_copy(req->content_type, sizeof(req->content_type), ct);
	req->chunked = te != NULL && *te != '\0';
	if (cl != NULL && *cl != '\0') {
		if (vd_parse_long(cl, 0, 1L << 40, &len) < 0)
			return vd_err(err, VD_EBADREQ, NULL, "malformed Content-Length");
		req->content_length = len;
	}
	return vd_req_parse_query(req, qs, err);
}

/* The fixed order of checks before a handler runs: params, route, auth,
 * body framing, body, validator. */
static int
dispatch(struct vd_ctx *ctx, FCGX_Request *fr, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	const struct vd_route *route;
	size_t limit;
	int wants_json;

	if (load_params(fr, req, err) < 0)
		return -1;
	if (vd_router_match(vd_routes, vd_routes_n, vd_param_rules, vd_param_rules_n, req, &route,
	    resp->allow, sizeof(resp->allow), err) < 0)
		return -1;
	if (worker_authorize(ctx, req, route, err) < 0)
		return -1;
	wants_json = route->body == VD_BODY_JSON;
	limit = route->max_body ? route->max_body : (size_t)ctx->cfg->max_body;
	if (vd_req_check_body(req, wants_json, limit, err) < 0)
		return -1;
	if (wants_json) {
		if (read_body(fr, req, err) < 0)
			return -1;
		if (vd_req_parse_json(req->body, req->body_len, &req->json, err) < 0)
			return -1;
	}
	if (route->validate != NULL && route->validate(req, err) < 0)
		return -1;
	return route->handler(ctx, req, resp, err);
}

/* Headers are formatted with snprintf: libfcgi's own FCGX_FPrintF knows no
 * %zu and silently stops at it. */
static void
write_response(FCGX_Request *fr, const struct vd_req *req, struct vd_resp *resp)
{
	char head[1024];
	char *text = NULL;
	size_t len = 0;
	int n;

	if (resp->text != NULL) {
		text = resp->text;
		resp->text = NULL;
		len = resp->text_len;
	} else if (resp->body != NULL) {
		text = json_dumps(resp->body, JSON_COMPACT | JSON_ENSURE_ASCII);
		if (text == NULL)
			resp->status = 500;
		else
			len = strlen(text);
	}
	n = snprintf(head, sizeof(head), "Status: %d %s\r\nContent-Type: application/json\r\n"
	    "Cache-Control: no-store\r\nX-Request-Id: %s\r\nContent-Length: %zu\r\n%s%s%s%s%s%s\r\n",
	    resp->status, reason_phrase(resp->status), req->id, len,
	    resp->allow[0] ? "Allow: " : "", resp->allow, resp->allow[0] ? "\r\n" : "",
	    resp->location[0] ? "Location: " : "", resp->location, resp->location[0] ? "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(head))
		n = snprintf(head, sizeof(head), "Status: 500 Internal Server Error\r\n"
		    "Content-Length: 0\r\n\r\n");
	FCGX_PutStr(head, n, fr->out);
	if (text != NULL && !req->head)
		FCGX_PutStr(text, (int)len, fr->out);
	free(text);
}

static double
ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* The path as logged: control bytes masked, bounded. Never the query
 * string, which may one day carry a token. */
static void
log_path(const char *path, char *out, size_t outsz)
{
	size_t i;

	for (i = 0; path[i] != '\0' && i + 1 < outsz; i++)
		out[i] = ((unsigned char)path[i] < 0x20 || path[i] == 0x7f || path[i] == '"') ? '?' : path[i];
	out[i] = '\0';
}

static void
handle_one(struct vd_ctx *ctx, FCGX_Request *fr)
{
	struct vd_req req;
	struct vd_resp resp;
	struct vd_error err;
	struct timespec t0;
	char lpath[200], lmethod[16];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	vd_req_init(&req);
	vd_resp_init(&resp);
	vd_err_clear(&err);
	if (dispatch(ctx, fr, &req, &resp, &err) < 0) {
		if (err.kind == VD_OK)
			vd_err(&err, VD_EINTERNAL, NULL, "handler failed without saying why");
		vd_resp_error(&resp, &err);
	} else if (resp.body == NULL && resp.text == NULL) {
		vd_err(&err, VD_EINTERNAL, NULL, "the answer could not be built");
		vd_resp_error(&resp, &err);
	}
	write_response(fr, &req, &resp);
	log_path(req.path, lpath, sizeof(lpath));
	log_path(req.method, lmethod, sizeof(lmethod));
	vd_log_info("req=%s %s \"%s\" route=\"%s\" status=%d ms=%.2f", req.id, lmethod, lpath,
	    req.route ? req.route->pattern : "-", resp.status, ms_since(&t0));
	vd_req_free(&req);
	vd_resp_free(&resp);
}

void
vd_worker_main(const struct vd_config *cfg, const struct vd_storeurl *store_url, int listen_fd,
    int slot, time_t started)
{
	sigset_t stopsigs, waitmask;
	struct vd_ctx ctx;
	struct vd_error err;
	FCGX_Request fr;
	char role[32];
	long served = 0;

	snprintf(role, sizeof(role), "worker-%d", slot);
	vd_log_set_role(role);
	/* SIGTERM and SIGINT stay blocked except while the worker waits in
	 * ppoll() for a connection: a request in hand is never interrupted
	 * (libfcgi treats EINTR on its reads and writes as a broken stream), and
	 * a stop that arrives meanwhile waits until the request is answered. */
	vd_pool_child_signals(worker_on_term);
	sigemptyset(&stopsigs);
	sigaddset(&stopsigs, SIGTERM);
	sigaddset(&stopsigs, SIGINT);
	sigprocmask(SIG_BLOCK, &stopsigs, &waitmask);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);

	if (vd_crypto_init() < 0 || FCGX_Init() != 0) {
		vd_log_warnx("cannot initialise libsodium or libfcgi");
		_exit(1);
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = cfg;
	ctx.started = started;
	ctx.store = vd_store_new(store_url, cfg->store_timeout_ms, cfg->store_timeout_ms);
	ctx.docker = vd_docker_new(cfg->docker_host, cfg->docker_tls_verify,
	    cfg->docker_cert_path[0] ? cfg->docker_cert_path : NULL, cfg->docker_timeout_ms, &err);
	if (ctx.store == NULL || ctx.docker == NULL) {
		vd_log_warnx("cannot set up worker: %s", ctx.docker ? "out of memory" : err.message);
		_exit(1);
	}
	if (vd_crypto_master_key(cfg->data_dir, 0, ctx.master_key, &err) < 0) {
		vd_log_warnx("cannot set up worker: %s", err.message);
		_exit(1);
	}
	if (FCGX_InitRequest(&fr, listen_fd, 0) != 0) {
		vd_log_warnx("cannot initialise the FastCGI request");
		_exit(1);
	}
	while (!worker_stop) {
		struct pollfd p = { .fd = listen_fd, .events = POLLIN };
		int rc;

		if (ppoll(&p, 1, NULL, &waitmask) < 0) {
			if (errno == EINTR)
				continue;      /* the loop condition sees a stop */
			vd_log_warn("waiting for connections");
			_exit(1);
		}
		/* the socket is non-blocking: another worker may have taken it */
		rc = FCGX_Accept_r(&fr);
		if (rc == -EAGAIN || rc == -EWOULDBLOCK || rc == -ECONNABORTED)
			continue;
		if (rc < 0) {
			errno = -rc;
			vd_log_warn("FastCGI accept failed");
			_exit(1);      /* counted as a crash: the master backs off */
		}
		handle_one(&ctx, &fr);
		FCGX_Finish_r(&fr);
		served++;
		if (cfg->max_requests > 0 && served >= cfg->max_requests) {
			vd_log_info("recycling after %ld requests", served);
			break;
		}
	}
	FCGX_Free(&fr, 0);
	vd_store_free(ctx.store);
	vd_docker_free(ctx.docker);
	_exit(0);
}
