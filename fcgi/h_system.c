/* System endpoints: health, info, host metrics, settings. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>

#include "config.h"
#include "handlers.h"
#include "hostinfo.h"
#include "routes.h"
#include "settings.h"
#include "str.h"


/* Health is public and cheap: a hanging engine must not hold workers, and
 * a busy load balancer must not turn into load on dockerd. Each worker asks
 * Docker at most once per HEALTH_DOCKER_TTL_MS and answers from that; the
 * store, which serves every request anyway, is asked every time. */
#define HEALTH_DOCKER_TIMEOUT_MS 1500
#define HEALTH_DOCKER_TTL_MS 1000

static struct {
	struct timespec at;
	int ok;
	char why[sizeof(((struct vd_error *)0)->message)];
} docker_health;

static long
ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t->tv_sec) * 1000L + (now.tv_nsec - t->tv_nsec) / 1000000L;
}

/* 0 when Docker answered within the last second (or now); else -1 and why. */
static int
docker_health_check(struct vd_ctx *ctx, char *why, size_t whysz)
{
	struct vd_error e;

	if (docker_health.at.tv_sec == 0 || ms_since(&docker_health.at) >= HEALTH_DOCKER_TTL_MS) {
		vd_err_clear(&e);
		docker_health.ok = vd_docker_ping_within(ctx->docker, HEALTH_DOCKER_TIMEOUT_MS, &e) == 0;
		snprintf(docker_health.why, sizeof(docker_health.why), "%s", e.message);
		clock_gettime(CLOCK_MONOTONIC, &docker_health.at);
	}
	snprintf(why, whysz, "%s", docker_health.why);
	return docker_health.ok ? 0 : -1;
}

int
vd_h_system_health(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	struct vd_error e;
	json_t *checks = json_object();
	char msg[1100] = "";
	int down = 0;

	vd_err_clear(&e);
	if (vd_store_ping(ctx->store, &e) == 0) {
		json_object_set_new(checks, "store", json_string("ok"));
	} else {
		json_object_set_new(checks, "store", vd_json_string_lossy(e.message));
		snprintf(msg, sizeof(msg), "store is down: %s", e.message);
		down++;
	}
	vd_err_clear(&e);
	if (docker_health_check(ctx, e.message, sizeof(e.message)) == 0) {
		json_object_set_new(checks, "docker", json_string("ok"));
	} else {
		size_t n = strlen(msg);

		json_object_set_new(checks, "docker", vd_json_string_lossy(e.message));
		snprintf(msg + n, sizeof(msg) - n, "%sdocker is down: %s", n ? "; " : "", e.message);
		down++;
	}
	if (down == 0) {
		vd_resp_json(resp, 200, json_pack("{s:s,s:o}", "status", "ok", "checks", checks));
		return 0;
	}
	vd_resp_json(resp, 503, json_pack("{s:s,s:s,s:o,s:o}", "status", "error", "code", "unhealthy",
	    "message", vd_json_string_lossy(msg), "checks", checks));
	return 0;
}

/* The housekeeper's heartbeat, so an operator sees whether it runs. */
static json_t *
info_housekeeper(struct vd_ctx *ctx)
{
	redisReply *r = vd_store_cmdv(ctx->store, NULL, "HGETALL", "housekeeper", NULL);
	json_t *o = json_object();

	if (r != NULL && r->type == REDIS_REPLY_ARRAY) {
		for (size_t i = 0; i + 1 < r->elements; i += 2) {
			long v;

			if (r->element[i]->type == REDIS_REPLY_STRING &&
			    r->element[i + 1]->type == REDIS_REPLY_STRING &&
			    vd_parse_long(r->element[i + 1]->str, 0, 1L << 40, &v) == 0)
				json_object_set_new(o, r->element[i]->str, json_integer(v));
		}
	}
	if (r != NULL)
		freeReplyObject(r);
	return o;
}

int
vd_h_system_info(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	char valkey_version[64];
	struct vd_error derr;
	redisReply *r;
	json_t *o;
	long long count;

	if (vd_store_info_field(ctx->store, "server", "valkey_version", valkey_version,
	    sizeof(valkey_version), err) < 0)
		return -1;
	r = vd_store_cmdv(ctx->store, err, "SCARD", "instances", NULL);
	if (r == NULL)
		return -1;
	count = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
	freeReplyObject(r);
	o = json_pack("{s:s,s:s,s:I,s:I}", "valdock_version", VD_VERSION,
	    "valkey_version", valkey_version, "instances_count", (json_int_t)count,
	    "started_at", (json_int_t)ctx->started);
	vd_err_clear(&derr);
	if (vd_docker_ping(ctx->docker, &derr) == 0) {
		json_object_set_new(o, "docker_version", json_string(vd_docker_engine_version(ctx->docker)));
		json_object_set_new(o, "docker_api_version", json_string(vd_docker_api_version(ctx->docker)));
	} else {
		json_object_set_new(o, "docker_version", json_null());
		json_object_set_new(o, "docker_api_version", json_null());
		json_object_set_new(o, "docker_error", vd_json_string_lossy(derr.message));
	}
	json_object_set_new(o, "housekeeper", info_housekeeper(ctx));
	vd_resp_json(resp, 200, o);
	return 0;
}

int
vd_h_system_metrics(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	json_t *o = vd_hostinfo_json(ctx->cfg->data_dir, err);

	if (o == NULL)
		return -1;
	json_object_set_new(o, "valdock_uptime_seconds", json_integer((json_int_t)(time(NULL) - ctx->started)));
	vd_resp_json(resp, 200, o);
	return 0;
}

int
vd_h_settings_get(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	json_t *doc = vd_settings_load(ctx->store, err);

	if (doc == NULL)
		return -1;
	vd_resp_json(resp, 200, doc);
	return 0;
}

int
vd_v_settings_put(struct vd_req *req, struct vd_error *err)
{
	return vd_settings_check_patch(req->json, err);
}

/* Read-modify-write under WATCH, so two concurrent PUTs of different keys
 * both land. */
int
vd_h_settings_put(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	json_t *doc = NULL;
	redisReply *r;
	char *text = NULL;
	int attempt, ret = -1;

	for (attempt = 0; attempt < 5; attempt++) {
		r = vd_store_cmdv(ctx->store, err, "WATCH", VD_SETTINGS_KEY, NULL);
		if (r == NULL)
			goto done;
		freeReplyObject(r);
		json_decref(doc);
		free(text);
		text = NULL;
		if ((doc = vd_settings_load(ctx->store, err)) == NULL)
			goto unwatch;
		if (vd_settings_apply(doc, req->json, err) < 0)
			goto unwatch;
		if ((text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
			vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
			goto unwatch;
		}
		if ((r = vd_store_cmdv(ctx->store, err, "MULTI", NULL)) == NULL)
			goto done;
		freeReplyObject(r);
		if ((r = vd_store_cmdv(ctx->store, err, "SET", VD_SETTINGS_KEY, text, NULL)) == NULL ||
		    (freeReplyObject(r), r = vd_store_cmdv(ctx->store, err, "EXEC", NULL)) == NULL) {
			vd_store_reset(ctx->store);   /* never leave the connection inside MULTI */
			goto done;
		}
		if (r->type == REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			vd_resp_json(resp, 200, doc);
			doc = NULL;
			ret = 0;
			goto done;
		}
		freeReplyObject(r);   /* nil: another writer won; read again */
	}
	vd_err(err, VD_ECONFLICT, "settings_busy", "settings changed concurrently too often; try again");
	goto done;
unwatch:
	r = vd_store_cmdv(ctx->store, NULL, "UNWATCH", NULL);
	if (r != NULL)
		freeReplyObject(r);
done:
	json_decref(doc);
	free(text);
	return ret;
}

/* The OpenAPI document, built from the route table itself so it cannot
 * drift from what the router serves. */
int
vd_h_openapi(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp, struct vd_error *err)
{
	static const char *const roles[] = { "public", "viewer", "operator", "admin" };
	json_t *paths = json_object(), *doc;

	for (size_t i = 0; i < vd_routes_n; i++) {
		const struct vd_route *r = &vd_routes[i];
		char path[256], method[16];
		size_t o = 0;
		json_t *params = json_array(), *op, *item;

		/* /api/v1/instances/:id -> /api/v1/instances/{id} */
		for (const char *p = r->pattern; *p && o + 3 < sizeof(path); p++) {
			if (*p == ':' && p[-1] == '/') {
				size_t n = strcspn(p + 1, "/");
				char name[32];

				snprintf(name, sizeof(name), "%.*s", (int)n, p + 1);
				o += (size_t)snprintf(path + o, sizeof(path) - o, "{%s}", name);
				json_array_append_new(params, json_pack("{s:s,s:s,s:b,s:{s:s}}", "name", name,
				    "in", "path", "required", 1, "schema", "type", "string"));
				p += n;
			} else {
				path[o++] = *p;
			}
		}
		path[o] = '\0';
		for (o = 0; r->method[o] && o + 1 < sizeof(method); o++)
			method[o] = (char)(r->method[o] + ('a' - 'A'));
		method[o] = '\0';
		op = json_pack("{s:s,s:s,s:{s:{s:s}}}", "summary", r->summary, "x-valdock-role",
		    roles[r->role], "responses", "default", "description", "JSON; errors as "
		    "{\"status\":\"error\",\"code\",\"message\",\"field\"?}");
		if (json_array_size(params) > 0)
			json_object_set_new(op, "parameters", params);
		else
			json_decref(params);
		if (r->body == VD_BODY_JSON)
			json_object_set_new(op, "requestBody", json_pack("{s:b,s:{s:{s:{s:s}}}}", "required", 1,
			    "content", "application/json", "schema", "type", "object"));
		if ((item = json_object_get(paths, path)) == NULL) {
			item = json_object();
			json_object_set_new(paths, path, item);
		}
		json_object_set_new(item, method, op);
	}
	doc = json_pack("{s:s,s:{s:s,s:s},s:o}", "openapi", "3.0.3", "info", "title", "Valdock API",
	    "version", VD_VERSION, "paths", paths);
	if (doc == NULL)
		return vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
	vd_resp_json(resp, 200, doc);
	return 0;
}
