#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "docker.h"
#include "handlers.h"
#include "housekeeper.h"
#include "instance.h"
#include "instances.h"
#include "log.h"
#include "pool.h"
#include "names.h"
#include "store.h"

#define HK_EVENT_LINE_MAX 65536
#define HK_EVENTS_RETRY 2             /* seconds before following events again */
#define HK_CREATE_STALE 30            /* seconds a create may sit without its lock */

/* {"type":["container"],"label":["io.valdock.instance"]}, URL-encoded */
#define HK_EVENTS_PATH "/events?filters=%7B%22type%22%3A%5B%22container%22%5D%2C%22label%22%3A" \
	"%5B%22io.valdock.instance%22%5D%7D"
#define HK_LIST_PATH "/containers/json?all=1&filters=%7B%22label%22%3A%5B%22io.valdock.instance%22%5D%7D"

/* Sets the live state of an instance that still exists, is not being
 * created and is not under its lock (an event may arrive after a delete
 * removed the record; an operation under the lock sets the state it
 * reaches itself). state_at changes only with the state: it says since
 * when the state holds. */
static const char set_state_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
    "if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end "
    "local s = redis.call('HGET', KEYS[1], 'state') "
    "if s == 'creating' then return 0 end "
    "if ARGV[3] ~= '' and redis.call('HGET', KEYS[1], 'last_error') ~= ARGV[3] then "
    "  redis.call('HSET', KEYS[1], 'last_error', ARGV[3]) redis.call('INCR', KEYS[3]) end "
    "if s == ARGV[1] then return 0 end "
    "redis.call('HSET', KEYS[1], 'state', ARGV[1], 'state_at', ARGV[2]) "
    "redis.call('INCR', KEYS[3]) "
    "return 1";

static volatile sig_atomic_t hk_stop;

struct hk {
	struct vd_ctx ctx;
	CURLM *multi;
	CURL *events;
	int following;
	time_t follow_at;
	char line[HK_EVENT_LINE_MAX];
	size_t linelen;
	int line_overflow;
	int store_was_down;
	int docker_was_down;
};

static void
hk_on_term(int sig)
{
	(void)sig;
	hk_stop = 1;
}

static void
hk_set_state(struct hk *hk, const char *id, const char *state, const char *why)
{
	char key[96], lock[96], now[32];
	redisReply *r;

	snprintf(key, sizeof(key), "instance:%s", id);
	snprintf(lock, sizeof(lock), "lock:instance:%s", id);
	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	r = vd_store_cmdv(hk->ctx.store, NULL, "EVAL", set_state_lua, "3", key, lock,
	    VD_INST_VERSION_KEY, state, now, why ? why : "", NULL);
	if (r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
		vd_log_info("instance %s is now %s%s%s", id, state, why ? ": " : "", why ? why : "");
	if (r != NULL)
		freeReplyObject(r);
}

/* One line of Docker's event stream. */
static void
hk_event(struct hk *hk, const char *line, size_t len)
{
	json_t *ev = json_loadb(line, len, 0, NULL), *attrs;
	const char *action, *id, *code;
	char why[64];

	if (ev == NULL)
		return;
	action = json_string_value(json_object_get(ev, "Action"));
	attrs = json_object_get(json_object_get(ev, "Actor"), "Attributes");
	id = json_string_value(json_object_get(attrs, VD_INSTANCE_LABEL));
	code = json_string_value(json_object_get(attrs, "exitCode"));
	if (action == NULL || id == NULL || vd_name_check("id", id, NULL) < 0)
		goto done;     /* a label any container can carry: only well-formed ids */
	if (strcmp(action, "start") == 0 || strcmp(action, "restart") == 0 ||
	    strcmp(action, "unpause") == 0) {
		hk_set_state(hk, id, "running", NULL);
	} else if (strcmp(action, "die") == 0) {
		if (code != NULL && strcmp(code, "0") != 0) {
			snprintf(why, sizeof(why), "exited with code %.8s", code);
			hk_set_state(hk, id, "stopped", why);
		} else {
			hk_set_state(hk, id, "stopped", NULL);
		}
	} else if (strcmp(action, "oom") == 0) {
		hk_set_state(hk, id, "stopped", "killed: out of memory (raise memory)");
	} else if (strcmp(action, "pause") == 0) {
		hk_set_state(hk, id, "paused", "paused outside Valdock");
	} else if (strcmp(action, "destroy") == 0) {
		hk_set_state(hk, id, "missing", "container removed outside Valdock");
	}
done:
	json_decref(ev);
}

/* Events arrive as JSON lines, split anywhere across reads. */
static size_t
hk_events_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct hk *hk = arg;
	size_t n = size * nmemb;

	for (size_t i = 0; i < n; i++) {
		if (ptr[i] == '\n') {
			if (!hk->line_overflow)
				hk_event(hk, hk->line, hk->linelen);
			hk->linelen = 0;
			hk->line_overflow = 0;
		} else if (hk->linelen < sizeof(hk->line)) {
			hk->line[hk->linelen++] = ptr[i];
		} else {
			hk->line_overflow = 1;
		}
	}
	return n;
}

static void
hk_follow(struct hk *hk)
{
	struct vd_error err;

	if (hk->following || time(NULL) < hk->follow_at)
		return;
	hk->linelen = 0;
	hk->line_overflow = 0;
	if (vd_docker_stream_setup(hk->ctx.docker, hk->events, HK_EVENTS_PATH, hk_events_cb, hk,
	    &err) < 0) {
		hk->follow_at = time(NULL) + HK_EVENTS_RETRY;
		return;
	}
	curl_multi_add_handle(hk->multi, hk->events);
	hk->following = 1;
}

static void
hk_pump(struct hk *hk, int wait_ms)
{
	CURLMsg *msg;
	int running, left;

	if (!hk->following) {
		poll(NULL, 0, wait_ms);
		return;
	}
	curl_multi_perform(hk->multi, &running);
	while ((msg = curl_multi_info_read(hk->multi, &left)) != NULL) {
		if (msg->msg == CURLMSG_DONE) {
			curl_multi_remove_handle(hk->multi, hk->events);
			hk->following = 0;
			hk->follow_at = time(NULL) + HK_EVENTS_RETRY;
		}
	}
	if (hk->following)
		curl_multi_poll(hk->multi, NULL, 0, wait_ms, NULL);
}

/* Tears down a create whose worker died before finishing it: its lock
 * has expired and it has sat in `creating` too long. */
static void
hk_clean_interrupted(struct hk *hk, const char *id, redisReply *rec)
{
	const char *spec_text = NULL, *state_at = NULL;
	char key[96];
	struct vd_error err;
	redisReply *r;
	json_t *spec;
	long port = 0;

	for (size_t i = 0; i + 1 < rec->elements; i += 2) {
		if (strcmp(rec->element[i]->str, "spec") == 0)
			spec_text = rec->element[i + 1]->str;
		else if (strcmp(rec->element[i]->str, "state_at") == 0)
			state_at = rec->element[i + 1]->str;
	}
	if (state_at == NULL || time(NULL) - atol(state_at) < HK_CREATE_STALE)
		return;
	snprintf(key, sizeof(key), "lock:instance:%s", id);
	r = vd_store_cmdv(hk->ctx.store, NULL, "EXISTS", key, NULL);
	if (r == NULL || r->type != REDIS_REPLY_INTEGER || r->integer != 0) {
		if (r != NULL)
			freeReplyObject(r);
		return;
	}
	freeReplyObject(r);
	spec = spec_text ? json_loads(spec_text, 0, NULL) : NULL;
	port = (long)json_integer_value(json_object_get(spec, "port"));
	json_decref(spec);
	vd_err_clear(&err);
	if (vd_instances_teardown(&hk->ctx, id, port, 0, 0, &err) < 0)
		vd_log_warnx("instance %s: rolling back an interrupted create failed: %s", id, err.message);
	else
		vd_log_warnx("instance %s: rolled back a create that was interrupted", id);
}

/* Makes the store agree with Docker: each instance's state from its
 * container, `missing` when there is none, and the labelled containers no
 * instance owns listed as orphans. */
static void
hk_reconcile(struct hk *hk)
{
	json_t *list = NULL, *c, *orphans = json_array();
	redisReply *ids = NULL;
	struct vd_error err;
	long status;
	size_t i;
	char *text;

	vd_err_clear(&err);
	if (vd_docker_call(hk->ctx.docker, "GET", HK_LIST_PATH, NULL, &status, &list, &err) < 0 ||
	    !json_is_array(list))
		goto done;
	ids = vd_store_cmdv(hk->ctx.store, NULL, "SMEMBERS", "instances", NULL);
	if (ids == NULL || ids->type != REDIS_REPLY_ARRAY)
		goto done;
	for (size_t k = 0; k < ids->elements; k++) {
		const char *id = ids->element[k]->str;
		const char *docker_state = NULL;
		char key[96];
		redisReply *rec;

		json_array_foreach(list, i, c) {
			const char *owner = json_string_value(json_object_get(json_object_get(c, "Labels"),
			    VD_INSTANCE_LABEL));

			if (owner != NULL && strcmp(owner, id) == 0)
				docker_state = json_string_value(json_object_get(c, "State"));
		}
		snprintf(key, sizeof(key), "instance:%s", id);
		rec = vd_store_cmdv(hk->ctx.store, NULL, "HGETALL", key, NULL);
		if (rec == NULL)
			continue;
		if (rec->type == REDIS_REPLY_ARRAY) {
			const char *state = NULL;

			for (size_t f = 0; f + 1 < rec->elements; f += 2)
				if (strcmp(rec->element[f]->str, "state") == 0)
					state = rec->element[f + 1]->str;
			if (state != NULL && strcmp(state, "creating") == 0)
				hk_clean_interrupted(hk, id, rec);
			else if (docker_state == NULL)
				hk_set_state(hk, id, "missing", "container removed outside Valdock");
			else
				hk_set_state(hk, id, vd_instance_state_from_docker(docker_state), NULL);
		}
		freeReplyObject(rec);
	}
	json_array_foreach(list, i, c) {
		const char *owner = json_string_value(json_object_get(json_object_get(c, "Labels"),
		    VD_INSTANCE_LABEL));
		int known = 0;

		for (size_t k = 0; owner != NULL && k < ids->elements; k++)
			if (strcmp(ids->element[k]->str, owner) == 0)
				known = 1;
		if (owner != NULL && !known)
			json_array_append_new(orphans, json_pack("{s:s,s:O}", "instance", owner, "container",
			    json_object_get(c, "Id")));
	}
	if ((text = json_dumps(orphans, JSON_COMPACT)) != NULL) {
		redisReply *r = vd_store_cmdv(hk->ctx.store, NULL, "SET", "orphans", text, NULL);

		if (r != NULL)
			freeReplyObject(r);
		free(text);
	}
done:
	if (ids != NULL)
		freeReplyObject(ids);
	json_decref(list);
	json_decref(orphans);
}

static void
hk_tick(struct hk *hk)
{
	struct vd_error err;
	char now[32], pid[32];
	int docker_ok;
	redisReply *r;

	vd_err_clear(&err);
	if (vd_store_schema_init(hk->ctx.store, &err) < 0) {
		if (!hk->store_was_down)
			vd_log_warnx("store: %s", err.message);
		hk->store_was_down = 1;
		return;
	}
	if (hk->store_was_down)
		vd_log_info("store is reachable again");
	hk->store_was_down = 0;
	vd_err_clear(&err);
	docker_ok = vd_docker_ping(hk->ctx.docker, &err) == 0;
	if (!docker_ok && !hk->docker_was_down)
		vd_log_warnx("docker: %s", err.message);
	else if (docker_ok && hk->docker_was_down)
		vd_log_info("docker is reachable again");
	hk->docker_was_down = !docker_ok;
	if (docker_ok)
		hk_reconcile(hk);
	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	r = vd_store_cmdv(hk->ctx.store, &err, "HSET", "housekeeper", "pid", pid, "last_seen", now,
	    "docker_ok", docker_ok ? "1" : "0", NULL);
	if (r == NULL)
		vd_log_warnx("heartbeat: %s", err.message);
	else
		freeReplyObject(r);
}

void
vd_housekeeper_main(const struct vd_config *cfg, const struct vd_storeurl *store_url)
{
	struct vd_error err;
	struct hk *hk;
	time_t next_tick = 0;

	vd_log_set_role("housekeeper");
	vd_pool_child_signals(hk_on_term);

	hk = calloc(1, sizeof(*hk));
	if (hk == NULL || vd_crypto_init() < 0)
		_exit(1);
	hk->ctx.cfg = cfg;
	hk->ctx.started = time(NULL);
	hk->ctx.store = vd_store_new(store_url, cfg->store_timeout_ms, cfg->store_timeout_ms);
	hk->ctx.docker = vd_docker_new(cfg->docker_host, cfg->docker_tls_verify,
	    cfg->docker_cert_path[0] ? cfg->docker_cert_path : NULL, 10000, &err);
	hk->multi = curl_multi_init();
	hk->events = curl_easy_init();
	if (hk->ctx.store == NULL || hk->ctx.docker == NULL || hk->multi == NULL || hk->events == NULL) {
		vd_log_warnx("cannot set up: %s", hk->ctx.docker ? "out of memory" : err.message);
		_exit(1);
	}
	if (vd_crypto_master_key(cfg->data_dir, 0, hk->ctx.master_key, &err) < 0) {
		vd_log_warnx("cannot set up: %s", err.message);
		_exit(1);
	}
	while (!hk_stop) {
		if (time(NULL) >= next_tick) {
			hk_tick(hk);
			next_tick = time(NULL) + VD_HOUSEKEEPER_TICK_SECONDS;
		}
		hk_follow(hk);
		hk_pump(hk, 200);
	}
	if (hk->following)
		curl_multi_remove_handle(hk->multi, hk->events);
	curl_easy_cleanup(hk->events);
	curl_multi_cleanup(hk->multi);
	vd_store_free(hk->ctx.store);
	vd_docker_free(hk->ctx.docker);
	explicit_bzero(hk->ctx.master_key, sizeof(hk->ctx.master_key));
	free(hk);
	_exit(0);
}
