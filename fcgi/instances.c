#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acl.h"
#include "crypto.h"
#include "fsutil.h"
#include "housekeeper.h"
#include "instances.h"
#include "log.h"
#include "str.h"
#include "templates.h"
#include "valkey.h"

static const char renew_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end "
    "return 0";

static const char unlock_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

void
vd_inst_key(char *out, size_t outsz, const char *prefix, const char *id)
{
	snprintf(out, outsz, "%s%s", prefix, id);
}

int
vd_inst_lock_take(struct vd_ctx *ctx, const char *id, int wait_ms, struct vd_inst_lock *lk,
    struct vd_error *err)
{
	char px[16];
	redisReply *r;
	int got, waited = 0;

	vd_inst_key(lk->key, sizeof(lk->key), "lock:instance:", id);
	vd_crypto_random_hex(lk->token, sizeof(lk->token), 16);
	snprintf(px, sizeof(px), "%d", VD_INST_LOCK_MS);
	for (;;) {
		r = vd_store_cmdv(ctx->store, err, "SET", lk->key, lk->token, "NX", "PX", px, NULL);
		if (r == NULL)
			return -1;
		got = r->type == REDIS_REPLY_STATUS;
		freeReplyObject(r);
		if (got)
			break;
		if (waited >= wait_ms)
			return vd_err(err, VD_ECONFLICT, "instance_busy",
			    "instance '%s' is being changed by another request; try again", id);
		poll(NULL, 0, 20);
		waited += 20;
	}
	lk->held = 1;
	return 0;
}

void
vd_inst_lock_release(struct vd_ctx *ctx, struct vd_inst_lock *lk)
{
	redisReply *r;

	if (!lk->held)
		return;
	r = vd_store_cmdv(ctx->store, NULL, "EVAL", unlock_lua, "1", lk->key, lk->token, NULL);
	if (r != NULL)
		freeReplyObject(r);
	lk->held = 0;
}

/* conf/ and data/ owned by the server's uid, the two files written
 * atomically and synced before any container sees them (C09). */
static int
write_files(const struct vd_instance_paths *p, const char *conf, const char *acl,
    struct vd_error *err)
{
	if (vd_fs_mkdirs(p->dir, 0711, err) < 0 || vd_fs_mkdirs(p->conf_dir, 0700, err) < 0 ||
	    vd_fs_mkdirs(p->data_dir, 0700, err) < 0)
		return -1;
	if (chown(p->conf_dir, VD_INSTANCE_UID, VD_INSTANCE_GID) < 0 ||
	    chown(p->data_dir, VD_INSTANCE_UID, VD_INSTANCE_GID) < 0)
		return vd_err(err, VD_EINTERNAL, "chown_failed", "cannot give %s to uid %d: %s", p->dir,
		    VD_INSTANCE_UID, strerror(errno));
	if (vd_fs_write_atomic_owned(p->conf_file, conf, strlen(conf), 0600, VD_INSTANCE_UID,
	    VD_INSTANCE_GID, err) < 0)
		return -1;
	return vd_fs_write_atomic_owned(p->acl_file, acl, strlen(acl), 0600, VD_INSTANCE_UID,
	    VD_INSTANCE_GID, err);
}

/* The stored users of an instance as a JSON array (new reference). */
json_t *
vd_inst_users_load(struct vd_ctx *ctx, const char *id, struct vd_error *err)
{
	char key[96];
	redisReply *r;
	json_t *arr;

	vd_inst_key(key, sizeof(key), "aclusers:", id);
	r = vd_store_cmdv(ctx->store, err, "HVALS", key, NULL);
	if (r == NULL)
		return NULL;
	arr = json_array();
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		json_t *u = json_loadb(r->element[i]->str, r->element[i]->len, 0, NULL);

		if (u != NULL)
			json_array_append_new(arr, u);
	}
	freeReplyObject(r);
	return arr;
}

/* One instance record (instance:<id> hash) as a JSON object of strings;
 * NULL with 404 when there is none. */
json_t *
vd_inst_record_load(struct vd_ctx *ctx, const char *id, struct vd_error *err)
{
	char key[96];
	redisReply *r;
	json_t *o;

	vd_inst_key(key, sizeof(key), "instance:", id);
	r = vd_store_cmdv(ctx->store, err, "HGETALL", key, NULL);
	if (r == NULL)
		return NULL;
	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
		freeReplyObject(r);
		vd_err(err, VD_ENOTFOUND, "instance_not_found", "no instance named '%s'", id);
		return NULL;
	}
	o = vd_valkey_pairs_json(r);
	freeReplyObject(r);
	return o;
}

json_t *
vd_inst_record_spec(const json_t *rec)
{
	const char *s = json_string_value(json_object_get(rec, "spec"));

	return s ? json_loads(s, 0, NULL) : NULL;
}

/* Sets fields of instance:<id>; pairs of strings ending with NULL. */
int
vd_inst_record_set(struct vd_ctx *ctx, const char *id, struct vd_error *err, ...)
{
	const char *argv[28];
	size_t lens[28];
	char key[96];
	const char *a;
	int argc = 5;
	va_list ap;
	redisReply *r;

	vd_inst_key(key, sizeof(key), "instance:", id);
	argv[0] = "EVAL";
	argv[1] = "redis.call('HSET', KEYS[1], unpack(ARGV)) return redis.call('INCR', KEYS[2])";
	argv[2] = "2";
	argv[3] = key;
	argv[4] = VD_INST_VERSION_KEY;
	va_start(ap, err);
	while ((a = va_arg(ap, const char *)) != NULL && argc < 28)
		argv[argc++] = a;
	va_end(ap);
	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	r = vd_store_cmd(ctx->store, err, argc, argv, lens);
	if (r == NULL)
		return -1;
	freeReplyObject(r);
	return 0;
}

void
vd_inst_now_str(char *out, size_t outsz)
{
	snprintf(out, outsz, "%lld", (long long)time(NULL));
}

/* Removes everything a create may have made; each step tolerates what is
 * already gone. Used to roll back and to delete. */
int
vd_instances_teardown(struct vd_ctx *ctx, const char *id, long port, int keep_data,
    int no_container, struct vd_error *err)
{
	struct vd_instance_paths p;
	char path[160], key[96], pkey[32], pkey2[96];
	const char *owner;
	json_t *c = NULL;
	long status;
	redisReply *r;

	/* only a container that carries our label for this id: one that merely
	 * has the name was made by someone else and is left alone */
	snprintf(path, sizeof(path), "/containers/%s%s/json", VD_INSTANCE_CONTAINER_PREFIX, id);
	if (!no_container && vd_docker_call(ctx->docker, "GET", path, NULL, &status, &c, err) < 0 &&
	    status != 404)
		return -1;
	owner = json_string_value(json_object_get(json_object_get(json_object_get(c, "Config"),
	    "Labels"), VD_INSTANCE_LABEL));
	if (c != NULL && (owner == NULL || strcmp(owner, id) != 0)) {
		vd_log_warnx("instance %s: container %s%s is not Valdock's; leaving it alone", id,
		    VD_INSTANCE_CONTAINER_PREFIX, id);
	} else if (c != NULL) {
		if (keep_data) {
			/* stop it first: on SIGTERM the server saves what it acknowledged */
			snprintf(path, sizeof(path), "/containers/%s%s/stop?t=10", VD_INSTANCE_CONTAINER_PREFIX, id);
			if (vd_docker_call(ctx->docker, "POST", path, NULL, &status, NULL, err) < 0 &&
			    status != 304 && status != 404) {
				json_decref(c);
				return -1;
			}
		}
		snprintf(path, sizeof(path), "/containers/%s%s?force=1&v=1", VD_INSTANCE_CONTAINER_PREFIX, id);
		if (vd_docker_call(ctx->docker, "DELETE", path, NULL, &status, NULL, err) < 0 && status != 404) {
			json_decref(c);
			return -1;
		}
	}
	json_decref(c);
	if (vd_instance_paths(ctx->cfg->data_dir, id, &p, err) < 0)
		return -1;
	if (keep_data) {
		if (vd_fs_remove_tree(p.conf_dir, err) < 0)
			return -1;
	} else if (vd_fs_remove_tree(p.dir, err) < 0) {
		return -1;
	}
	vd_inst_key(key, sizeof(key), "instance:", id);
	snprintf(pkey, sizeof(pkey), "port:%ld", port);
	r = vd_store_cmdv(ctx->store, err, "DEL", key, NULL);
	if (r == NULL)
		return -1;
	freeReplyObject(r);
	if (port > 0) {
		/* only our own reservation: another instance may hold the port now */
		r = vd_store_cmdv(ctx->store, err, "EVAL",
		    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end return 1",
		    "1", pkey, id, NULL);
		if (r == NULL)
			return -1;
		freeReplyObject(r);
	}
	vd_inst_key(key, sizeof(key), "aclusers:", id);
	vd_inst_key(pkey2, sizeof(pkey2), "acllines:", id);
	r = vd_store_cmdv(ctx->store, err, "DEL", key, pkey2, NULL);
	if (r == NULL)
		return -1;
	freeReplyObject(r);
	r = vd_store_cmdv(ctx->store, err, "SREM", "instances", id, NULL);
	if (r == NULL)
		return -1;
	freeReplyObject(r);
	r = vd_store_cmdv(ctx->store, err, "INCR", VD_INST_VERSION_KEY, NULL);
	if (r == NULL)
		return -1;
	freeReplyObject(r);
	return 0;
}

/* Renders both files from the store's spec and users and writes them. */
int
vd_inst_render_and_write(struct vd_ctx *ctx, const char *id, const json_t *spec, const json_t *users,
    const char *admin_pw, const struct vd_instance_paths *p, struct vd_error *err)
{
	char hash[65], *conf = NULL, *acl = NULL;
	int ret = -1;

	vd_crypto_sha256_hex(admin_pw, strlen(admin_pw), hash);
	if (vd_instance_render_conf(spec, &conf, err) == 0 &&
	    vd_acl_render(users, hash, &acl, err) == 0)
		ret = write_files(p, conf, acl, err);
	free(conf);
	free(acl);
	(void)id;
	return ret;
}

int
vd_inst_admin_password(struct vd_ctx *ctx, const json_t *rec, char *out, size_t outsz, struct vd_error *err)
{
	const char *sealed = json_string_value(json_object_get(rec, "admin_secret"));

	if (sealed == NULL || vd_crypto_open_hex(ctx->master_key, sealed, out, outsz) < 0)
		return vd_err(err, VD_EINTERNAL, "secret_unreadable",
		    "the instance's admin secret cannot be opened with this master key");
	return 0;
}

/* Docker's state is only known while the housekeeper reaches Docker. */
int
vd_inst_docker_known(struct vd_ctx *ctx)
{
	redisReply *r = vd_store_cmdv(ctx->store, NULL, "HMGET", "housekeeper", "docker_ok", "last_seen",
	    NULL);
	int ok = 0;

	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING) {
		long at = atol(r->element[1]->str);

		ok = strcmp(r->element[0]->str, "1") == 0 && time(NULL) - at <= 3 * VD_HOUSEKEEPER_TICK_SECONDS;
	}
	if (r != NULL)
		freeReplyObject(r);
	return ok;
}

redisContext *
vd_inst_connect_admin(const json_t *rec, const json_t *spec, const char *admin_pw,
    struct vd_error *err)
{
	const char *ip = json_string_value(json_object_get(rec, "ip"));

	if (ip != NULL && *ip != '\0')
		return vd_valkey_connect(ip, 6379, VD_ACL_ADMIN_USER, admin_pw, 2000, err);
	return vd_valkey_connect(json_string_value(json_object_get(spec, "publish_address")),
	    (int)json_integer_value(json_object_get(spec, "port")), VD_ACL_ADMIN_USER, admin_pw, 2000, err);
}

int
vd_inst_lock_renew(struct vd_ctx *ctx, struct vd_inst_lock *lk, struct vd_error *err)
{
	char px[16];
	redisReply *r;
	int ok;

	snprintf(px, sizeof(px), "%d", VD_INST_LOCK_MS);
	r = vd_store_cmdv(ctx->store, err, "EVAL", renew_lua, "1", lk->key, lk->token, px, NULL);
	if (r == NULL)
		return -1;
	ok = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
	freeReplyObject(r);
	if (!ok) {
		lk->held = 0;
		return vd_err(err, VD_ECONFLICT, "lock_lost",
		    "the instance's lock expired during the operation; it was not completed");
	}
	return 0;
}

json_t *
vd_inst_template_load(struct vd_ctx *ctx, const char *name, struct vd_error *err)
{
	json_t *t = vd_template_builtin(name);
	char key[96];
	redisReply *r;

	if (t != NULL)
		return t;
	vd_inst_key(key, sizeof(key), "config:template:", name);
	r = vd_store_cmdv(ctx->store, err, "GET", key, NULL);
	if (r == NULL)
		return NULL;
	if (r->type == REDIS_REPLY_STRING)
		t = json_loadb(r->str, r->len, 0, NULL);
	freeReplyObject(r);
	if (t == NULL)
		vd_err(err, VD_ENOTFOUND, "template_not_found", "no template named '%s'", name);
	return t;
}

long long
vd_inst_version(struct vd_ctx *ctx, struct vd_error *err)
{
	redisReply *r = vd_store_cmdv(ctx->store, err, "GET", VD_INST_VERSION_KEY, NULL);
	long long v = 0;

	if (r == NULL)
		return -1;
	if (r->type == REDIS_REPLY_STRING)
		v = atoll(r->str);
	freeReplyObject(r);
	return v;
}

int
vd_inst_change_mode(const json_t *rec, struct vd_error *err)
{
	const char *state = vd_str_or(json_string_value(json_object_get(rec, "state")), "");

	if (strcmp(state, "running") == 0)
		return 1;
	if (strcmp(state, "stopped") == 0 || strcmp(state, "missing") == 0 || strcmp(state, "error") == 0)
		return 0;
	return vd_err(err, VD_EUNAVAIL, "instance_unavailable",
	    "the instance is %s: it cannot load a change now nor be sure to load it at its next start; "
	    "wait, or start or stop it first", *state ? state : "in an unknown state");
}

void
vd_inst_learn_commands(struct vd_ctx *ctx, redisContext *c)
{
	redisReply *r = redisCommand(c, "COMMAND LIST");
	const char **argv;
	size_t *lens;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0 || r->elements > 10000) {
		if (r != NULL)
			freeReplyObject(r);
		return;
	}
	argv = calloc(r->elements + 2, sizeof(*argv));
	lens = calloc(r->elements + 2, sizeof(*lens));
	if (argv != NULL && lens != NULL) {
		redisReply *s;

		argv[0] = "SADD";
		argv[1] = "valkey:commands";
		for (size_t i = 0; i < r->elements; i++) {
			argv[i + 2] = r->element[i]->str;
			lens[i + 2] = r->element[i]->len;
		}
		lens[0] = 4;
		lens[1] = strlen(argv[1]);
		s = vd_store_cmd(ctx->store, NULL, (int)r->elements + 2, argv, lens);
		if (s != NULL)
			freeReplyObject(s);
	}
	free(argv);
	free(lens);
	freeReplyObject(r);
}

int
vd_inst_unknown_command(struct vd_ctx *ctx, const char *cmd)
{
	redisReply *r = vd_store_cmdv(ctx->store, NULL, "EVAL",
	    "if redis.call('SCARD', KEYS[1]) == 0 then return 0 end "
	    "if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 0 end return 1",
	    "1", "valkey:commands", cmd, NULL);
	int unknown = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1;

	if (r != NULL)
		freeReplyObject(r);
	return unknown;
}

int
vd_inst_user_store(struct vd_ctx *ctx, const char *id, const char *name, const json_t *user,
    struct vd_error *err)
{
	char ukey[96], lkey[96], *text = NULL, *line = NULL;
	redisReply *r;

	vd_inst_key(ukey, sizeof(ukey), "aclusers:", id);
	vd_inst_key(lkey, sizeof(lkey), "acllines:", id);
	if (user == NULL) {
		r = vd_store_cmdv(ctx->store, err, "EVAL",
		    "redis.call('HDEL', KEYS[1], ARGV[1]) return redis.call('HDEL', KEYS[2], ARGV[1])",
		    "2", ukey, lkey, name, NULL);
	} else {
		if (vd_acl_user_line(user, &line, err) < 0)
			return -1;
		if ((text = json_dumps(user, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
			free(line);
			return vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
		}
		r = vd_store_cmdv(ctx->store, err, "EVAL",
		    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])",
		    "2", ukey, lkey, name, text, line, NULL);
		free(text);
		free(line);
	}
	if (r == NULL)
		return -1;
	freeReplyObject(r);
	return 0;
}

json_t *
vd_inst_user_load(struct vd_ctx *ctx, const char *id, const char *name, struct vd_error *err)
{
	char key[96];
	redisReply *r;
	json_t *u = NULL;

	vd_inst_key(key, sizeof(key), "aclusers:", id);
	r = vd_store_cmdv(ctx->store, err, "HGET", key, name, NULL);
	if (r == NULL)
		return NULL;
	if (r->type == REDIS_REPLY_STRING)
		u = json_loadb(r->str, r->len, 0, NULL);
	freeReplyObject(r);
	return u;
}

json_t *
vd_inst_lines_load(struct vd_ctx *ctx, const char *id, struct vd_error *err)
{
	char ukey[96], lkey[96];
	redisReply *r, *n;
	json_t *lines;
	long long users = 0;

	vd_inst_key(ukey, sizeof(ukey), "aclusers:", id);
	vd_inst_key(lkey, sizeof(lkey), "acllines:", id);
	if ((n = vd_store_cmdv(ctx->store, err, "HLEN", ukey, NULL)) == NULL)
		return NULL;
	users = n->type == REDIS_REPLY_INTEGER ? n->integer : 0;
	freeReplyObject(n);
	if ((r = vd_store_cmdv(ctx->store, err, "HGETALL", lkey, NULL)) == NULL)
		return NULL;
	lines = vd_valkey_pairs_json(r);
	freeReplyObject(r);
	if (lines != NULL && (long long)json_object_size(lines) != users) {
		/* records without lines: render and keep them, once */
		json_t *all = vd_inst_users_load(ctx, id, err), *u;
		size_t i;

		json_decref(lines);
		lines = NULL;
		if (all == NULL)
			return NULL;
		lines = json_object();
		json_array_foreach(all, i, u) {
			const char *name = json_string_value(json_object_get(u, "username"));
			char *line;

			if (name == NULL || vd_inst_user_store(ctx, id, name, u, err) < 0 ||
			    vd_acl_user_line(u, &line, err) < 0) {
				json_decref(all);
				json_decref(lines);
				return NULL;
			}
			json_object_set_new(lines, name, json_string(line));
			free(line);
		}
		json_decref(all);
	}
	if (lines == NULL)
		vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
	return lines;
}
