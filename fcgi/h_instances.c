/* Instance endpoints: create, list, inspect, start, stop, restart, delete,
 * stats. Every change to one instance runs under its lock; a create either
 * fully happens or leaves nothing behind (records, port, files, container).
 * The store layout is described in instances.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "acl.h"
#include "crypto.h"
#include "fsutil.h"
#include "handlers.h"
#include "instance.h"
#include "instances.h"
#include "log.h"
#include "net.h"
#include "settings.h"
#include "str.h"
#include "units.h"
#include "valkey.h"

#define READY_TIMEOUT_MS 20000
#define LOG_TAIL_LINES 15

/* Reserves name and port in one step: two creates of one name, or of one
 * port, cannot both pass. */
static const char reserve_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 'name' end "
    "if redis.call('EXISTS', KEYS[2]) == 1 then return 'port' end "
    "redis.call('SET', KEYS[2], ARGV[1]) "
    "redis.call('HSET', KEYS[1], 'spec', ARGV[2], 'state', 'creating', 'state_at', ARGV[3]) "
    "redis.call('SADD', KEYS[3], ARGV[1]) "
    "redis.call('INCR', KEYS[4]) "
    "return 'ok'";

/* The fields a listing shows, of every instance, in one round trip (no
 * secrets leave the store for it). */
static const char *const list_fields[] = { "spec", "state", "container_id", "started_at", "last_error" };
static const char list_lua[] =
    "local out = {} "
    "for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do "
    "  out[#out + 1] = redis.call('HMGET', 'instance:' .. id, unpack(ARGV)) "
    "end return out";





/* The configured image when the engine has it or can pull it, else the
 * fallback (the locally built one). */
static int
resolve_image(struct vd_ctx *ctx, const json_t *settings, char *out, size_t outsz,
    struct vd_error *err)
{
	const char *want = json_string_value(json_object_get(settings, "instance_image"));
	const char *fallback = json_string_value(json_object_get(settings, "fallback_image"));
	char path[400], repo[300], tag[128] = "latest";
	struct vd_error perr;
	long status;
	const char *colon, *slash;

	snprintf(path, sizeof(path), "/images/%s/json", want);
	if (vd_docker_call(ctx->docker, "GET", path, NULL, &status, NULL, err) == 0)
		return vd_str_copy(out, outsz, want) < 0 ?
		    vd_err(err, VD_EINTERNAL, "image", "image name too long") : 0;
	if (status == 0)
		return -1;   /* Docker itself is down */
	/* split repo:tag for the pull (a ':' after the last '/' is the tag) */
	slash = strrchr(want, '/');
	colon = strrchr(want, ':');
	if (colon != NULL && (slash == NULL || colon > slash) && strchr(want, '@') == NULL) {
		snprintf(repo, sizeof(repo), "%.*s", (int)(colon - want), want);
		snprintf(tag, sizeof(tag), "%s", colon + 1);
	} else {
		snprintf(repo, sizeof(repo), "%s", want);
	}
	snprintf(path, sizeof(path), "/images/create?fromImage=%s&tag=%s", repo, tag);
	vd_err_clear(&perr);
	if (vd_docker_call(ctx->docker, "POST", path, NULL, &status, NULL, &perr) == 0) {
		snprintf(path, sizeof(path), "/images/%s/json", want);
		if (vd_docker_call(ctx->docker, "GET", path, NULL, &status, NULL, &perr) == 0)
			return vd_str_copy(out, outsz, want) < 0 ?
			    vd_err(err, VD_EINTERNAL, "image", "image name too long") : 0;
	}
	snprintf(path, sizeof(path), "/images/%s/json", fallback);
	if (vd_docker_call(ctx->docker, "GET", path, NULL, &status, NULL, err) == 0) {
		vd_log_info("image %s is absent and cannot be pulled (%s); using %s", want,
		    perr.message, fallback);
		return vd_str_copy(out, outsz, fallback) < 0 ?
		    vd_err(err, VD_EINTERNAL, "image", "image name too long") : 0;
	}
	if (status == 0)
		return -1;
	return vd_err(err, VD_EUNAVAIL, "image_unavailable",
	    "image %s is absent and cannot be pulled (%s), and the fallback image %s is absent too",
	    want, perr.message, fallback);
}








struct running_check {
	struct vd_ctx *ctx;
	const char *container;
};

/* Between readiness tries: give up at once if the container stopped. */
static int
still_running(void *arg)
{
	struct running_check *rc = arg;
	char path[160];
	json_t *j = NULL;
	long status;
	int running;

	snprintf(path, sizeof(path), "/containers/%s/json", rc->container);
	if (vd_docker_call(rc->ctx->docker, "GET", path, NULL, &status, &j, NULL) < 0)
		return 0;
	/* a server that exits at once is restarted by the restart policy and
	 * shows Running again: a restart at all means it crashed */
	running = json_is_true(json_object_get(json_object_get(j, "State"), "Running")) &&
	    !json_is_true(json_object_get(json_object_get(j, "State"), "Restarting")) &&
	    json_integer_value(json_object_get(j, "RestartCount")) == 0;
	json_decref(j);
	return running;
}

/* The container's address on its network, for Valdock's own admin traffic
 * (faster than the published port through docker-proxy), and its full id
 * when cid is given. */
static int
container_ip(struct vd_ctx *ctx, const char *container, char *ip, size_t ipsz, char *cid,
    size_t cidsz, struct vd_error *err)
{
	char path[160];
	json_t *j, *nets, *n;
	const char *addr = NULL, *name;
	long status;

	snprintf(path, sizeof(path), "/containers/%s/json", container);
	if (vd_docker_call(ctx->docker, "GET", path, NULL, &status, &j, err) < 0)
		return -1;
	nets = json_object_get(json_object_get(j, "NetworkSettings"), "Networks");
	json_object_foreach(nets, name, n) {
		const char *a = json_string_value(json_object_get(n, "IPAddress"));

		if (a != NULL && *a != '\0') {
			addr = a;
			break;
		}
	}
	/* a remote engine's container addresses are not reachable from here */
	snprintf(ip, ipsz, "%s", addr && vd_docker_is_local(ctx->docker) ? addr : "");
	if (cid != NULL)
		snprintf(cid, cidsz, "%s", vd_str_or(json_string_value(json_object_get(j, "Id")), ""));
	json_decref(j);
	return 0;
}

/* Starts the container and waits until the server answers PING as the
 * admin user; when it never does, the error carries its last log lines. */
static int
start_and_wait(struct vd_ctx *ctx, const char *id, const json_t *spec, const char *admin_pw,
    const char *container, char *ip, size_t ipsz, struct vd_error *err)
{
	struct running_check rc = { ctx, container };
	struct vd_error werr;
	char path[160], *logs = NULL;
	const char *host;
	long status;
	int port;

	snprintf(path, sizeof(path), "/containers/%s/start", container);
	if (vd_docker_call(ctx->docker, "POST", path, NULL, &status, NULL, err) < 0) {
		if (strstr(err->message, "already allocated") || strstr(err->message, "address already in use")) {
			char why[sizeof(err->message)];

			snprintf(why, sizeof(why), "%s", err->message);
			vd_err(err, VD_ECONFLICT, "port_in_use", "port %lld is in use on %s: %s",
			    (long long)json_integer_value(json_object_get(spec, "port")),
			    json_string_value(json_object_get(spec, "publish_address")), why);
		}
		return -1;
	}
	if (container_ip(ctx, container, ip, ipsz, NULL, 0, err) < 0)
		return -1;
	host = ip[0] ? ip : json_string_value(json_object_get(spec, "publish_address"));
	port = ip[0] ? 6379 : (int)json_integer_value(json_object_get(spec, "port"));
	vd_err_clear(&werr);
	if (vd_valkey_wait_ready(host, port, VD_ACL_ADMIN_USER, admin_pw, READY_TIMEOUT_MS,
	    still_running, &rc, &werr) == 0) {
		redisContext *c = vd_valkey_connect(host, port, VD_ACL_ADMIN_USER, admin_pw, 2000, NULL);

		if (c != NULL) {
			vd_inst_learn_commands(ctx, c);
			redisFree(c);
		}
		return 0;
	}
	vd_docker_logs_tail(ctx->docker, container, LOG_TAIL_LINES, 0, &logs, NULL);
	/* its restart policy would keep a failing server looping: stop it */
	snprintf(path, sizeof(path), "/containers/%s/stop?t=2", container);
	vd_docker_call(ctx->docker, "POST", path, NULL, &status, NULL, NULL);
	{
		/* the end of the log says why */
		size_t n = logs ? strlen(logs) : 0;
		const char *tail = n > 400 ? logs + n - 400 : (logs ? logs : "");

		while (n > 400 && (*tail & 0xc0) == 0x80)
			tail++;
		if (logs != NULL && strstr(logs, "ACL errors") != NULL)
			/* the server named what it refused: a client's rule, not our fault */
			vd_err(err, VD_EINVALID, "acl_rejected",
			    "instance '%s' refused its ACL file at start; the end of its log: %s", id, tail);
		else
			vd_err(err, VD_EBADGATEWAY, "instance_not_ready",
			    "instance '%s' did not answer PING (%s); the end of its log: %s", id, werr.message,
			    *tail ? tail : "(none)");
	}
	free(logs);
	return -1;
}

/* Creates the container for spec. Its id goes to cid. */
static int
container_create(struct vd_ctx *ctx, const char *id, const json_t *spec,
    const struct vd_instance_paths *p, char *cid, size_t cidsz, struct vd_error *err)
{
	char path[160];
	json_t *body, *out = NULL;
	long status;
	int ret;

	body = vd_instance_container_body(spec, p);
	if (body == NULL)
		return vd_err(err, VD_EINTERNAL, "no_memory", "cannot build the container spec");
	snprintf(path, sizeof(path), "/containers/create?name=%s%s", VD_INSTANCE_CONTAINER_PREFIX, id);
	ret = vd_docker_call(ctx->docker, "POST", path, body, &status, &out, err);
	json_decref(body);
	if (ret < 0) {
		if (status == 409)
			vd_err(err, VD_ECONFLICT, "container_exists",
			    "a container named %s%s already exists outside Valdock: remove or rename it",
			    VD_INSTANCE_CONTAINER_PREFIX, id);
		return -1;
	}
	snprintf(cid, cidsz, "%s", vd_str_or(json_string_value(json_object_get(out, "Id")), ""));
	json_decref(out);
	if (cid[0] == '\0')
		return vd_err(err, VD_EBADGATEWAY, "docker_error", "docker created a container without an id");
	return 0;
}



/* Picks a host port: the requested one, else the first of the settings'
 * range that is neither reserved nor busy on the host; reserves it and the
 * name in one step. */
static int
reserve(struct vd_ctx *ctx, json_t *spec, const json_t *settings, struct vd_error *err)
{
	const char *id = json_string_value(json_object_get(spec, "id"));
	const char *addr = json_string_value(json_object_get(spec, "publish_address"));
	long want = (long)json_integer_value(json_object_get(spec, "port"));
	long lo = want ? want : (long)json_integer_value(json_object_get(settings, "port_range_start"));
	long hi = want ? want : (long)json_integer_value(json_object_get(settings, "port_range_end"));
	char key[96], pkey[32], now[32], *text;
	redisReply *r;

	vd_inst_key(key, sizeof(key), "instance:", id);
	vd_inst_now_str(now, sizeof(now));
	for (long port = lo; port <= hi; port++) {
		const char *answer;
		int rc;

		if (want) {
			/* name the holder when it is one of ours */
			snprintf(pkey, sizeof(pkey), "port:%ld", port);
			r = vd_store_cmdv(ctx->store, err, "GET", pkey, NULL);
			if (r == NULL)
				return -1;
			if (r->type == REDIS_REPLY_STRING && strcmp(r->str, id) != 0) {
				vd_err(err, VD_ECONFLICT, "port_taken", "port %ld is held by instance '%s'", port,
				    r->str);
				freeReplyObject(r);
				return -1;
			}
			freeReplyObject(r);
		}
		if (!vd_net_tcp_free(addr, port)) {
			if (want)
				return vd_err(err, VD_ECONFLICT, "port_in_use",
				    "port %ld is in use on %s by another program", port, addr);
			continue;
		}
		json_object_set_new(spec, "port", json_integer(port));
		snprintf(pkey, sizeof(pkey), "port:%ld", port);
		text = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
		if (text == NULL)
			return vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
		r = vd_store_cmdv(ctx->store, err, "EVAL", reserve_lua, "4", key, pkey, "instances",
		    VD_INST_VERSION_KEY, id, text, now, NULL);
		free(text);
		if (r == NULL)
			return -1;
		answer = r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ? r->str : "";
		rc = strcmp(answer, "ok") == 0 ? 0 : strcmp(answer, "name") == 0 ? 1 : 2;
		freeReplyObject(r);
		if (rc == 0)
			return 0;
		if (rc == 1)
			return vd_err(err, VD_ECONFLICT, "name_taken", "an instance named '%s' exists", id);
		if (want)
			return vd_err(err, VD_ECONFLICT, "port_taken",
			    "port %ld is held by another Valdock instance", port);
	}
	json_object_set_new(spec, "port", json_integer(0));
	return vd_err(err, VD_ECONFLICT, "no_free_port", "no free port in %ld-%ld on %s", lo, hi, addr);
}

int
vd_h_instances_create(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	struct vd_instance_paths paths;
	struct vd_inst_lock lk = { .held = 0 };
	json_t *settings = NULL, *spec = NULL, *users = NULL;
	char image[256], admin_pw[VD_INST_ADMIN_PASSWORD_MAX], cid[80] = "", ip[64] = "";
	char now[32], *sealed = NULL, *spec_text = NULL;
	const char *id;
	int reserved = 0, ret = -1;
	long long t0 = time(NULL);

	if ((settings = vd_settings_load(ctx->store, err)) == NULL)
		goto done;
	if (vd_instance_parse_create(req->json, settings, t0, &spec, &users, err) < 0)
		goto done;
	id = json_string_value(json_object_get(spec, "id"));
	{
		json_t *tmpl = vd_inst_template_load(ctx,
		    json_string_value(json_object_get(spec, "template")), err);

		if (tmpl == NULL) {
			if (err->kind == VD_ENOTFOUND)
				vd_err_field(err, "configTemplate", "configTemplate: no template named '%s'",
				    json_string_value(json_object_get(spec, "template")));
			goto done;
		}
		json_object_set(spec, "config", json_object_get(tmpl, "config"));
		json_decref(tmpl);
		if (vd_instance_check_config(spec, err) < 0)
			goto done;
	}
	if (vd_instance_paths(ctx->cfg->data_dir, id, &paths, err) < 0)
		goto done;
	{
		/* a taken name is the clearer answer than a busy lock */
		char key[96];
		redisReply *r;
		int exists;

		vd_inst_key(key, sizeof(key), "instance:", id);
		if ((r = vd_store_cmdv(ctx->store, err, "EXISTS", key, NULL)) == NULL)
			goto done;
		exists = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
		freeReplyObject(r);
		if (exists) {
			vd_err(err, VD_ECONFLICT, "name_taken", "an instance named '%s' exists", id);
			goto done;
		}
	}
	if (vd_inst_lock_take(ctx, id, 0, &lk, err) < 0)
		goto done;
	/* name and port first: a request that cannot succeed is told so before
	 * any image is looked up or pulled */
	if (reserve(ctx, spec, settings, err) < 0)
		goto done;
	reserved = 1;
	if (vd_inst_lock_renew(ctx, &lk, err) < 0 ||
	    resolve_image(ctx, settings, image, sizeof(image), err) < 0)
		goto done;
	json_object_set_new(spec, "image", json_string(image));
	if ((spec_text = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
		goto done;
	}
	if (vd_inst_record_set(ctx, id, err, "spec", spec_text, NULL) < 0)
		goto done;
	{
		/* a template deleted since it was read would leave this instance
		 * naming nothing; now that the record names it, a delete sees it */
		json_t *tmpl = vd_inst_template_load(ctx, json_string_value(json_object_get(spec, "template")),
		    err);

		if (tmpl == NULL) {
			if (err->kind == VD_ENOTFOUND)
				vd_err_field(err, "configTemplate", "configTemplate: template '%s' was deleted meanwhile",
				    json_string_value(json_object_get(spec, "template")));
			goto done;
		}
		json_decref(tmpl);
	}
	vd_crypto_random_hex(admin_pw, sizeof(admin_pw), VD_INST_ADMIN_PASSWORD_BYTES);
	if ((sealed = vd_crypto_seal_hex(ctx->master_key, admin_pw, strlen(admin_pw))) == NULL) {
		vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
		goto done;
	}
	if (vd_inst_record_set(ctx, id, err, "admin_secret", sealed, NULL) < 0)
		goto done;
	if (vd_inst_render_and_write(ctx, id, spec, users, admin_pw, &paths, err) < 0)
		goto done;
	if (vd_inst_lock_renew(ctx, &lk, err) < 0 ||
	    container_create(ctx, id, spec, &paths, cid, sizeof(cid), err) < 0)
		goto done;
	if (vd_inst_lock_renew(ctx, &lk, err) < 0 ||
	    start_and_wait(ctx, id, spec, admin_pw, cid, ip, sizeof(ip), err) < 0)
		goto done;
	if (vd_inst_lock_renew(ctx, &lk, err) < 0)
		goto done;
	/* the users go to the store last: until here nothing else reads them */
	{
		size_t i;
		json_t *u;

		json_array_foreach(users, i, u)
			if (vd_inst_user_store(ctx, id, json_string_value(json_object_get(u, "username")), u,
			    err) < 0)
				goto done;
	}
	vd_inst_now_str(now, sizeof(now));
	if (vd_inst_record_set(ctx, id, err, "state", "running", "state_at", now, "container_id", cid, "ip", ip,
	    "started_at", now, "last_error", "", NULL) < 0)
		goto done;
	snprintf(resp->location, sizeof(resp->location), "/api/v1/instances/%s", id);
	vd_resp_json(resp, 201, json_pack("{s:s,s:s,s:O,s:I}", "id", id, "status", "running", "port",
	    json_object_get(spec, "port"), "created_at", (json_int_t)t0));
	vd_log_info("instance %s created on port %lld (%s)", id,
	    (long long)json_integer_value(json_object_get(spec, "port")), image);
	ret = 0;
done:
	if (ret < 0 && reserved) {
		struct vd_error rerr;

		vd_err_clear(&rerr);
		if (vd_instances_teardown(ctx, id, (long)json_integer_value(json_object_get(spec, "port")), 0,
		    cid[0] == '\0', &rerr) < 0)
			vd_log_warnx("rolling back instance %s failed: %s (the housekeeper retries)", id,
			    rerr.message);
	}
	vd_inst_lock_release(ctx, &lk);
	explicit_bzero(admin_pw, sizeof(admin_pw));
	free(sealed);
	free(spec_text);
	json_decref(settings);
	json_decref(spec);
	json_decref(users);
	return ret;
}


/* The public view of a record: spec fields, live state, never a secret. */
static json_t *
record_view(const json_t *rec, int docker_ok)
{
	json_t *spec = vd_inst_record_spec(rec), *o;
	const char *state = json_string_value(json_object_get(rec, "state"));
	const char *addr;
	char mem[32], address[80];

	if (spec == NULL)
		return NULL;
	addr = json_string_value(json_object_get(spec, "publish_address"));
	vd_units_format_bytes(json_integer_value(json_object_get(spec, "memory_bytes")), mem, sizeof(mem));
	snprintf(address, sizeof(address), strchr(addr ? addr : "", ':') ? "[%s]:%lld" : "%s:%lld",
	    addr ? addr : "", (long long)json_integer_value(json_object_get(spec, "port")));
	o = json_pack("{s:O,s:O,s:O,s:O,s:O,s:s,s:O,s:s,s:O}",
	    "id", json_object_get(spec, "id"), "name", json_object_get(spec, "id"),
	    "port", json_object_get(spec, "port"), "image", json_object_get(spec, "image"),
	    "template", json_object_get(spec, "template"), "memory", mem,
	    "memory_bytes", json_object_get(spec, "memory_bytes"), "address", address,
	    "created_at", json_object_get(spec, "created_at"));
	if (o == NULL) {
		json_decref(spec);
		return NULL;
	}
	if (!docker_ok && state != NULL && strcmp(state, "creating") != 0) {
		json_object_set_new(o, "status", json_string("unknown"));
		json_object_set_new(o, "last_known_status", json_string(state));
	} else {
		json_object_set_new(o, "status", json_string(state ? state : "unknown"));
	}
	json_object_set_new(o, "container_id",
	    json_string(vd_str_or(json_string_value(json_object_get(rec, "container_id")), "")));
	{
		const char *s = json_string_value(json_object_get(rec, "started_at"));
		const char *e = json_string_value(json_object_get(rec, "last_error"));

		json_object_set_new(o, "started_at", s && *s ? json_integer(atoll(s)) : json_null());
		json_object_set_new(o, "last_error", e && *e ? json_string(e) : json_null());
	}
	json_decref(spec);
	return o;
}

/* This worker's last rendered list, and what it was rendered from. */
static struct {
	char *text;
	size_t len;
	long long version;
	int docker_ok;
} list_cache;

int
vd_h_instances_list(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	redisReply *r;
	json_t *arr;
	long long version;
	int docker_ok;
	char *text;

	/* the rendered list is kept while nothing it shows has changed */
	if ((version = vd_inst_version(ctx, err)) < 0)
		return -1;
	docker_ok = vd_inst_docker_known(ctx);
	if (list_cache.text != NULL && list_cache.version == version && list_cache.docker_ok == docker_ok)
		return vd_resp_text(resp, 200, list_cache.text, list_cache.len) < 0 ?
		    vd_err(err, VD_EINTERNAL, "no_memory", "out of memory") : 0;
	r = vd_store_cmdv(ctx->store, err, "EVAL", list_lua, "1", "instances",
	    list_fields[0], list_fields[1], list_fields[2], list_fields[3], list_fields[4], NULL);
	if (r == NULL)
		return -1;
	arr = json_array();
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		redisReply *h = r->element[i];
		json_t *rec = json_object(), *view;

		for (size_t k = 0; h->type == REDIS_REPLY_ARRAY && k < h->elements && k < 5; k++)
			if (h->element[k]->type == REDIS_REPLY_STRING)
				json_object_set_new(rec, list_fields[k], vd_json_string_lossy(h->element[k]->str));
		view = record_view(rec, docker_ok);
		json_decref(rec);
		if (view != NULL)
			json_array_append_new(arr, view);
	}
	freeReplyObject(r);
	{
		json_t *doc = json_pack("{s:o,s:I}", "instances", arr, "count",
		    (json_int_t)json_array_size(arr));

		text = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII);
		json_decref(doc);
	}
	if (text == NULL)
		return vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
	free(list_cache.text);
	list_cache.text = text;
	list_cache.len = strlen(text);
	list_cache.version = version;
	list_cache.docker_ok = docker_ok;
	return vd_resp_text(resp, 200, text, list_cache.len) < 0 ?
	    vd_err(err, VD_EINTERNAL, "no_memory", "out of memory") : 0;
}

int
vd_h_instances_get(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	json_t *rec = vd_inst_record_load(ctx, vd_req_param(req, "id"), err), *view;

	if (rec == NULL)
		return -1;
	view = record_view(rec, vd_inst_docker_known(ctx));
	json_decref(rec);
	if (view == NULL)
		return vd_err(err, VD_EINTERNAL, "bad_record", "the instance record is unreadable");
	vd_resp_json(resp, 200, view);
	return 0;
}

/* Everything start/stop/restart need, loaded under the lock. */
struct op {
	struct vd_inst_lock lk;
	json_t *rec;
	json_t *spec;
	const char *id;
	char admin_pw[VD_INST_ADMIN_PASSWORD_MAX];
};

static int
op_begin(struct vd_ctx *ctx, struct vd_req *req, struct op *op, struct vd_error *err)
{
	memset(op, 0, sizeof(*op));
	op->id = vd_req_param(req, "id");
	if ((op->rec = vd_inst_record_load(ctx, op->id, err)) == NULL)
		return -1;
	if (vd_inst_lock_take(ctx, op->id, 0, &op->lk, err) < 0)
		return -1;
	json_decref(op->rec);    /* read again under the lock */
	if ((op->rec = vd_inst_record_load(ctx, op->id, err)) == NULL)
		return -1;
	if (strcmp(vd_str_or(json_string_value(json_object_get(op->rec, "state")), ""), "creating") == 0)
		return vd_err(err, VD_ECONFLICT, "instance_busy", "instance '%s' is still being created", op->id);
	if ((op->spec = vd_inst_record_spec(op->rec)) == NULL)
		return vd_err(err, VD_EINTERNAL, "bad_record", "the instance record is unreadable");
	return vd_inst_admin_password(ctx, op->rec, op->admin_pw, sizeof(op->admin_pw), err);
}

static void
op_end(struct vd_ctx *ctx, struct op *op)
{
	vd_inst_lock_release(ctx, &op->lk);
	explicit_bzero(op->admin_pw, sizeof(op->admin_pw));
	json_decref(op->rec);
	json_decref(op->spec);
}

/* Inspects the instance's container: 1 running, 0 not running, 2 missing
 * (removed behind Valdock's back), -1 Docker failed or the container of
 * that name is not Valdock's (409: it is never touched). */
static int
container_status(struct vd_ctx *ctx, const char *id, struct vd_error *err)
{
	char path[160];
	const char *owner;
	json_t *j = NULL;
	long status;
	int running;

	snprintf(path, sizeof(path), "/containers/%s%s/json", VD_INSTANCE_CONTAINER_PREFIX, id);
	if (vd_docker_call(ctx->docker, "GET", path, NULL, &status, &j, err) < 0)
		return status == 404 ? 2 : -1;
	owner = json_string_value(json_object_get(json_object_get(json_object_get(j, "Config"),
	    "Labels"), VD_INSTANCE_LABEL));
	if (owner == NULL || strcmp(owner, id) != 0) {
		json_decref(j);
		return vd_err(err, VD_ECONFLICT, "container_exists",
		    "a container named %s%s exists that Valdock did not make: remove or rename it",
		    VD_INSTANCE_CONTAINER_PREFIX, id);
	}
	running = json_is_true(json_object_get(json_object_get(j, "State"), "Running"));
	json_decref(j);
	return running;
}

int
vd_instances_bring_up(struct vd_ctx *ctx, const char *id, const json_t *spec, const char *admin_pw,
    int restart, struct vd_error *err)
{
	struct vd_instance_paths paths;
	char cid[80], ip[64] = "", now[32], path[160];
	long status;
	int st;

	if (vd_instance_paths(ctx->cfg->data_dir, id, &paths, err) < 0)
		return -1;
	if ((st = container_status(ctx, id, err)) < 0)
		return -1;
	snprintf(cid, sizeof(cid), "%s%s", VD_INSTANCE_CONTAINER_PREFIX, id);
	if (st == 2) {
		json_t *users = vd_inst_users_load(ctx, id, err);
		int rc;

		if (users == NULL)
			return -1;
		rc = vd_inst_render_and_write(ctx, id, spec, users, admin_pw, &paths, err);
		json_decref(users);
		if (rc < 0 || container_create(ctx, id, spec, &paths, cid, sizeof(cid), err) < 0)
			return -1;
		vd_log_info("instance %s: container was missing; recreated it from the stored spec", id);
	} else if (st == 1 && restart) {
		snprintf(path, sizeof(path), "/containers/%s/stop?t=10", cid);
		if (vd_docker_call(ctx->docker, "POST", path, NULL, &status, NULL, err) < 0 && status != 304)
			return -1;
	}
	if (st != 1 || restart) {
		if (start_and_wait(ctx, id, spec, admin_pw, cid, ip, sizeof(ip), err) < 0) {
			vd_inst_record_set(ctx, id, NULL, "last_error", err->message, NULL);
			return -1;
		}
	}
	/* cid may still be the container's name: record its id */
	if (container_ip(ctx, cid, ip, sizeof(ip), cid, sizeof(cid), err) < 0)
		return -1;
	vd_inst_now_str(now, sizeof(now));
	if (st != 1 || restart)
		return vd_inst_record_set(ctx, id, err, "state", "running", "state_at", now, "container_id", cid,
		    "ip", ip, "started_at", now, "last_error", "", NULL);
	return vd_inst_record_set(ctx, id, err, "state", "running", "ip", ip, NULL);
}

static int
op_answer(struct vd_resp *resp, const char *id, const char *status, const char *message)
{
	vd_resp_json(resp, 200, json_pack("{s:s,s:s,s:s}", "id", id, "status", status, "message", message));
	return 0;
}

int
vd_h_instances_start(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	struct op op;
	int ret = -1, st;

	if (op_begin(ctx, req, &op, err) < 0)
		goto done;
	st = container_status(ctx, op.id, err);
	if (st < 0)
		goto done;
	if (st == 1) {
		ret = op_answer(resp, op.id, "running", "already running");
		goto done;
	}
	if (vd_instances_bring_up(ctx, op.id, op.spec, op.admin_pw, 0, err) < 0)
		goto done;
	ret = op_answer(resp, op.id, "running", st == 2 ? "container recreated and started" : "started");
done:
	op_end(ctx, &op);
	return ret;
}

int
vd_h_instances_restart(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	struct op op;
	int ret = -1;

	if (op_begin(ctx, req, &op, err) < 0 || vd_instances_bring_up(ctx, op.id, op.spec, op.admin_pw, 1, err) < 0)
		goto done;
	ret = op_answer(resp, op.id, "running", "restarted");
done:
	op_end(ctx, &op);
	return ret;
}

int
vd_h_instances_stop(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	char path[160], now[32];
	struct op op;
	long status;
	int ret = -1, st;

	if (op_begin(ctx, req, &op, err) < 0)
		goto done;
	st = container_status(ctx, op.id, err);
	if (st < 0)
		goto done;
	vd_inst_now_str(now, sizeof(now));
	if (st == 2) {
		vd_inst_record_set(ctx, op.id, NULL, "state", "missing", "state_at", now, NULL);
		ret = op_answer(resp, op.id, "missing", "no container to stop (it was removed outside Valdock)");
		goto done;
	}
	if (st == 0) {
		ret = op_answer(resp, op.id, "stopped", "already stopped");
		goto done;
	}
	snprintf(path, sizeof(path), "/containers/%s%s/stop?t=10", VD_INSTANCE_CONTAINER_PREFIX, op.id);
	if (vd_docker_call(ctx->docker, "POST", path, NULL, &status, NULL, err) < 0 && status != 304)
		goto done;
	if (vd_inst_record_set(ctx, op.id, err, "state", "stopped", "state_at", now, NULL) < 0)
		goto done;
	ret = op_answer(resp, op.id, "stopped", "stopped");
done:
	op_end(ctx, &op);
	return ret;
}

int
vd_h_instances_delete(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	const char *id = vd_req_param(req, "id");
	const char *keep = vd_req_query(req, "keep_data");
	struct vd_inst_lock lk = { .held = 0 };
	json_t *rec = NULL, *spec = NULL;
	int keep_data = 0, ret = -1;

	if (keep != NULL) {
		if (strcmp(keep, "true") == 0 || strcmp(keep, "1") == 0)
			keep_data = 1;
		else if (strcmp(keep, "false") != 0 && strcmp(keep, "0") != 0)
			return vd_err_field(err, "keep_data", "keep_data must be true or false");
	}
	if ((rec = vd_inst_record_load(ctx, id, err)) == NULL)
		goto done;
	if (vd_inst_lock_take(ctx, id, 0, &lk, err) < 0)
		goto done;
	if ((spec = vd_inst_record_spec(rec)) == NULL) {
		vd_err(err, VD_EINTERNAL, "bad_record", "the instance record is unreadable");
		goto done;
	}
	if (vd_instances_teardown(ctx, id, (long)json_integer_value(json_object_get(spec, "port")), keep_data,
	    0, err) < 0)
		goto done;
	vd_log_info("instance %s deleted%s", id, keep_data ? " (data kept)" : "");
	vd_resp_json(resp, 200, json_pack("{s:s,s:s,s:b}", "status", "ok", "message",
	    keep_data ? "instance deleted; its data directory was kept" : "instance deleted",
	    "data_kept", keep_data));
	ret = 0;
done:
	vd_inst_lock_release(ctx, &lk);
	json_decref(rec);
	json_decref(spec);
	return ret;
}

int
vd_h_instances_stats(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	const char *id = vd_req_param(req, "id");
	char pw[VD_INST_ADMIN_PASSWORD_MAX], v[64];
	json_t *rec, *spec = NULL, *o = NULL;
	const char *state;
	redisContext *c = NULL;
	redisReply *r = NULL;
	int ret = -1;

	if ((rec = vd_inst_record_load(ctx, id, err)) == NULL)
		return -1;
	state = vd_str_or(json_string_value(json_object_get(rec, "state")), "unknown");
	if (!vd_inst_docker_known(ctx))
		state = "unknown";
	o = json_pack("{s:s,s:s}", "id", id, "status", state);
	if (strcmp(state, "running") != 0) {
		vd_resp_json(resp, 200, o);
		o = NULL;
		ret = 0;
		goto done;
	}
	if ((spec = vd_inst_record_spec(rec)) == NULL || vd_inst_admin_password(ctx, rec, pw, sizeof(pw), err) < 0)
		goto done;
	c = vd_inst_connect_admin(rec, spec, pw, err);
	if (c == NULL)
		goto done;
	r = redisCommand(c, "INFO");
	if (r == NULL || r->type != REDIS_REPLY_STRING) {
		vd_err(err, VD_EBADGATEWAY, "instance_error", "INFO failed on instance '%s'", id);
		goto done;
	}
	if (vd_valkey_info_field(r->str, "uptime_in_seconds", v, sizeof(v)) == 0)
		json_object_set_new(o, "uptime_seconds", json_integer(atoll(v)));
	if (vd_valkey_info_field(r->str, "used_memory", v, sizeof(v)) == 0)
		json_object_set_new(o, "used_memory_bytes", json_integer(atoll(v)));
	if (vd_valkey_info_field(r->str, "connected_clients", v, sizeof(v)) == 0)
		json_object_set_new(o, "connected_clients", json_integer(atoll(v)));
	if (vd_valkey_info_field(r->str, "valkey_version", v, sizeof(v)) == 0)
		json_object_set_new(o, "valkey_version", json_string(v));
	json_object_set_new(o, "keys", json_integer(vd_valkey_info_keys(r->str)));
	json_object_set_new(o, "memory_limit_bytes", json_integer(json_integer_value(json_object_get(spec,
	    "memory_bytes"))));
	vd_resp_json(resp, 200, o);
	o = NULL;
	ret = 0;
done:
	if (r != NULL)
		freeReplyObject(r);
	if (c != NULL)
		redisFree(c);
	explicit_bzero(pw, sizeof(pw));
	json_decref(o);
	json_decref(rec);
	json_decref(spec);
	return ret;
}
