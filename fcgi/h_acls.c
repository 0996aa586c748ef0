/* ACL endpoints of an instance: list, show, add, change, delete users, and
 * what the running server enforces. Every change follows one flow under the
 * instance's lock: read every user from the store, apply the change in
 * memory, validate, render the whole file, swap it in, ACL LOAD; when the
 * server refuses, the previous file goes back and the store is untouched;
 * when it accepts, the store is written and the sessions of users that lost
 * their way in are closed (ACL LOAD leaves them open). A stopped instance
 * gets the file and the store; the file loads when it starts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acl.h"
#include "fsutil.h"
#include "handlers.h"
#include "instances.h"
#include "log.h"
#include "settings.h"
#include "str.h"

#define ACL_LOCK_WAIT_MS 15000
#define ACL_FILE_MAX (16 * 1024 * 1024)
#define ACL_LOAD_TIMEOUT_MS 15000

enum acl_op { ACL_ADD, ACL_UPDATE, ACL_DELETE };

/* Index of the user named name in users, or -1. */
static long
find_user(const json_t *users, const char *name)
{
	size_t i;
	json_t *u;

	json_array_foreach(users, i, u)
		if (strcmp(vd_str_or(json_string_value(json_object_get(u, "username")), ""), name) == 0)
			return (long)i;
	return -1;
}

/* For an instance that is not running: refuses commands the server does
 * not know (when the store knows its commands), since a file that names
 * one would stop the server at its next start. */
static int
check_commands(struct vd_ctx *ctx, const json_t *user, struct vd_error *err)
{
	size_t i;
	json_t *t;

	json_array_foreach(json_object_get(user, "permissions"), i, t) {
		char buf[VD_ACL_PATTERN_MAX + 8], *tok, *save = NULL;

		snprintf(buf, sizeof(buf), "%s", json_string_value(t));
		for (tok = strtok_r(buf, "() ", &save); tok != NULL; tok = strtok_r(NULL, "() ", &save)) {
			char cmd[72];
			size_t n;

			if ((tok[0] != '+' && tok[0] != '-') || tok[1] == '@')
				continue;
			n = strcspn(tok + 1, "|");
			if (n == 0 || n >= sizeof(cmd))
				continue;
			for (size_t k = 0; k < n; k++)
				cmd[k] = (char)(tok[1 + k] >= 'A' && tok[1 + k] <= 'Z' ? tok[1 + k] + 32 : tok[1 + k]);
			cmd[n] = '\0';
			if (vd_inst_unknown_command(ctx, cmd))
				return vd_err_field(err, "permissions", "permissions: '%s' is not a command this server knows",
				    cmd);
		}
	}
	return 0;
}

/* Sessions open as name now (CLIENT LIST; its USER filter is newer than
 * Valkey 8.0). */
static long long
count_sessions(redisContext *c, const char *name)
{
	char needle[VD_ACL_NAME_MAX + 16];
	redisReply *r;
	long long n = 0;

	if (c == NULL)
		return 0;
	snprintf(needle, sizeof(needle), " user=%s ", name);
	r = redisCommand(c, "CLIENT LIST");
	if (r != NULL && r->type == REDIS_REPLY_STRING) {
		for (const char *p = r->str; p != NULL && *p; ) {
			const char *nl = strchr(p, '\n');
			size_t len = nl ? (size_t)(nl - p) : strlen(p);

			if (memmem(p, len, needle, strlen(needle)) != NULL)
				n++;
			p = nl ? nl + 1 : NULL;
		}
	}
	if (r != NULL)
		freeReplyObject(r);
	return n;
}

/* Swaps the new file in and loads it; on refusal the old file goes back and
 * err carries the server's message (file:line). */
static int
swap_and_load(redisContext *c, const struct vd_instance_paths *p, const char *text, const char *old,
    size_t oldlen, void (*reload)(void *), void *reload_arg, struct vd_error *err)
{
	redisReply *r;

	if (vd_fs_write_atomic_owned(p->acl_file, text, strlen(text), 0600, VD_INSTANCE_UID,
	    VD_INSTANCE_GID, err) < 0)
		return -1;
	if (c == NULL)
		return 0;
	/* ACL LOAD of 10,000 users takes ~0.1 s; give a busy server time */
	redisSetTimeout(c, (struct timeval){ ACL_LOAD_TIMEOUT_MS / 1000, 0 });
	r = redisCommand(c, "ACL LOAD");
	if (r != NULL && r->type != REDIS_REPLY_ERROR) {
		freeReplyObject(r);
		return 0;
	}
	if (r != NULL)
		vd_err(err, VD_EINVALID, "acl_rejected", "the server refused the new ACL file: %.400s", r->str);
	else
		vd_err(err, VD_EUNAVAIL, "instance_unreachable",
		    "ACL LOAD got no answer (%s); the previous file was put back and loaded again", c->errstr);
	if (r != NULL)
		freeReplyObject(r);
	if (vd_fs_write_atomic_owned(p->acl_file, old, oldlen, 0600, VD_INSTANCE_UID, VD_INSTANCE_GID,
	    NULL) < 0)
		vd_log_warnx("could not put the previous ACL file %s back", p->acl_file);
	else if (r == NULL && reload != NULL)
		reload(reload_arg);     /* it may have loaded the new file after all */
	return -1;
}

struct reload_ctx {
	const json_t *rec, *spec;
	const char *pw;
};

/* After an ACL LOAD whose answer was lost: load the restored file on a new
 * connection, so server and file agree again. */
static void
reload_previous(void *arg)
{
	struct reload_ctx *rc = arg;
	redisContext *c = vd_inst_connect_admin(rc->rec, rc->spec, rc->pw, NULL);
	redisReply *r;

	if (c == NULL)
		return;
	redisSetTimeout(c, (struct timeval){ ACL_LOAD_TIMEOUT_MS / 1000, 0 });
	r = redisCommand(c, "ACL LOAD");
	if (r != NULL)
		freeReplyObject(r);
	redisFree(c);
}

/* Closes every session of name: its password or its right to log in went. */
static long long
end_sessions(redisContext *c, const char *name)
{
	redisReply *r;
	long long n = 0;

	if (c == NULL)
		return 0;
	r = redisCommand(c, "CLIENT KILL USER %s", name);
	if (r != NULL && r->type == REDIS_REPLY_INTEGER)
		n = r->integer;
	if (r != NULL)
		freeReplyObject(r);
	return n;
}

/* The whole flow of one change; user_json is the request body (NULL for a
 * delete). On success *view holds what the API shows of the user. */
static int
acl_change(struct vd_ctx *ctx, const char *id, enum acl_op op, const char *name,
    const json_t *body, json_t **view, int *loaded, long long *closed, struct vd_error *err)
{
	struct vd_inst_lock lk = { .held = 0 };
	struct vd_instance_paths paths;
	json_t *rec = NULL, *spec = NULL, *lines = NULL, *settings = NULL, *user = NULL;
	char pw[VD_INST_ADMIN_PASSWORD_MAX], hash[65], *text = NULL, *old = NULL;
	redisContext *c = NULL;
	struct reload_ctx rc;
	long long before = 0;
	size_t oldlen = 0;
	int must_end = 0, running, ret = -1, min_len;
	long long now = time(NULL);

	*view = NULL;
	*loaded = 0;
	*closed = 0;
	if ((rec = vd_inst_record_load(ctx, id, err)) == NULL)
		goto done;
	if (vd_inst_lock_take(ctx, id, ACL_LOCK_WAIT_MS, &lk, err) < 0)
		goto done;
	json_decref(rec);                                    /* again, under the lock */
	if ((rec = vd_inst_record_load(ctx, id, err)) == NULL)
		goto done;
	if (strcmp(vd_str_or(json_string_value(json_object_get(rec, "state")), ""), "creating") == 0) {
		vd_err(err, VD_ECONFLICT, "instance_busy", "instance '%s' is still being created", id);
		goto done;
	}
	if ((spec = vd_inst_record_spec(rec)) == NULL) {
		vd_err(err, VD_EINTERNAL, "bad_record", "the instance record is unreadable");
		goto done;
	}
	if ((settings = vd_settings_load(ctx->store, err)) == NULL ||
	    vd_inst_admin_password(ctx, rec, pw, sizeof(pw), err) < 0 ||
	    vd_instance_paths(ctx->cfg->data_dir, id, &paths, err) < 0)
		goto done;
	min_len = (int)json_integer_value(json_object_get(settings, "acl_password_min_length"));
	vd_err_clear(err);
	user = vd_inst_user_load(ctx, id, name, err);
	if (user == NULL && err->kind != VD_OK)
		goto done;
	switch (op) {
	case ACL_ADD:
		if (user != NULL) {
			vd_err(err, VD_ECONFLICT, "user_exists", "user '%s' exists; change it with PUT", name);
			goto done;
		}
		if (vd_acl_user_from_request(body, min_len, 0, now, "", &user, err) < 0)
			goto done;
		break;
	case ACL_UPDATE:
		if (user == NULL) {
			vd_err(err, VD_ENOTFOUND, "user_not_found", "instance '%s' has no user '%s'", id, name);
			goto done;
		}
		if (vd_acl_user_update(user, body, min_len, now, &must_end, err) < 0)
			goto done;
		break;
	case ACL_DELETE:
		if (user == NULL) {
			vd_err(err, VD_ENOTFOUND, "user_not_found", "instance '%s' has no user '%s'", id, name);
			goto done;
		}
		must_end = 1;
		break;
	}
	/* the file from every user's stored line, this user's made anew: a
	 * change to one user of thousands reads no other record */
	if ((lines = vd_inst_lines_load(ctx, id, err)) == NULL)
		goto done;
	if (op == ACL_DELETE) {
		json_object_del(lines, name);
	} else {
		char *line;

		if (vd_acl_user_line(user, &line, err) < 0)
			goto done;
		json_object_set_new(lines, name, json_string(line));
		free(line);
	}
	vd_crypto_sha256_hex(pw, strlen(pw), hash);
	{
		const char **list = calloc(json_object_size(lines) + 1, sizeof(*list));
		const char *k;
		json_t *v;
		size_t n = 0;
		int rendered;

		if (list == NULL) {
			vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
			goto done;
		}
		json_object_foreach(lines, k, v)
			list[n++] = json_string_value(v);
		rendered = vd_acl_render_lines(list, n, hash, &text, err);
		free(list);
		if (rendered < 0)
			goto done;
	}
	if (vd_fs_read(paths.acl_file, ACL_FILE_MAX, &old, &oldlen, err) < 0)
		goto done;
	if ((running = vd_inst_change_mode(rec, err)) < 0)
		goto done;
	if (!running && user != NULL && check_commands(ctx, user, err) < 0)
		goto done;
	if (running && (c = vd_inst_connect_admin(rec, spec, pw, err)) == NULL)
		goto done;   /* nothing changed yet */
	before = must_end ? count_sessions(c, name) : 0;
	rc.rec = rec;
	rc.spec = spec;
	rc.pw = pw;
	if (swap_and_load(c, &paths, text, old, oldlen, reload_previous, &rc, err) < 0)
		goto done;
	*loaded = c != NULL;
	if (vd_inst_user_store(ctx, id, name, op == ACL_DELETE ? NULL : user, err) < 0) {
		/* the store is the source of truth: put the file and server back */
		struct vd_error ignored;

		if (swap_and_load(c, &paths, old, text, strlen(text), NULL, NULL, &ignored) < 0)
			vd_log_warnx("instance %s: ACL file restore after a store failure failed", id);
		goto done;
	}
	if (must_end) {
		/* a deleted user's sessions go with ACL LOAD itself */
		*closed = end_sessions(c, name);
		if (*closed < before)
			*closed = before;
	}
	if (user != NULL)
		*view = vd_acl_user_view(user);
	vd_log_info("instance %s: ACL user %s %s%s", id, name,
	    op == ACL_ADD ? "added" : op == ACL_UPDATE ? "changed" : "deleted",
	    *loaded ? " and loaded" : " (loads at start)");
	ret = 0;
done:
	vd_inst_lock_release(ctx, &lk);
	if (c != NULL)
		redisFree(c);
	explicit_bzero(pw, sizeof(pw));
	free(text);
	free(old);
	json_decref(rec);
	json_decref(spec);
	json_decref(lines);
	json_decref(settings);
	json_decref(user);
	return ret;
}

static void
acl_answer(struct vd_resp *resp, int status, const char *name, const char *verb, int loaded,
    long long closed, json_t *view)
{
	char msg[200];
	json_t *o;

	if (loaded)
		snprintf(msg, sizeof(msg), "User '%s' %s and ACL reloaded.", name, verb);
	else
		snprintf(msg, sizeof(msg), "User '%s' %s; the instance is not running, the ACL file "
		    "takes effect when it starts.", name, verb);
	o = json_pack("{s:s,s:s,s:b,s:I}", "status", "ok", "message", msg, "reloaded", loaded,
	    "sessions_closed", (json_int_t)closed);
	if (view != NULL)
		json_object_set_new(o, "user", view);
	vd_resp_json(resp, status, o);
}

int
vd_h_acls_create(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	const char *id = vd_req_param(req, "id");
	const char *name = json_string_value(json_object_get(req->json, "username"));
	json_t *view;
	long long closed;
	int loaded;

	if (name == NULL)
		return vd_err_field(err, "username", "username is required (a string)");
	if (vd_acl_check_username("username", name, err) < 0)
		return -1;
	if (acl_change(ctx, id, ACL_ADD, name, req->json, &view, &loaded, &closed, err) < 0)
		return -1;
	snprintf(resp->location, sizeof(resp->location), "/api/v1/instances/%s/acls/%s", id, name);
	acl_answer(resp, 201, name, "added", loaded, closed, view);
	return 0;
}

int
vd_h_acls_update(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	const char *name = vd_req_param(req, "username");
	json_t *view;
	long long closed;
	int loaded;

	if (acl_change(ctx, vd_req_param(req, "id"), ACL_UPDATE, name, req->json, &view, &loaded,
	    &closed, err) < 0)
		return -1;
	acl_answer(resp, 200, name, "updated", loaded, closed, view);
	return 0;
}

int
vd_h_acls_delete(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	const char *name = vd_req_param(req, "username");
	json_t *view;
	long long closed;
	int loaded;

	if (acl_change(ctx, vd_req_param(req, "id"), ACL_DELETE, name, NULL, &view, &loaded, &closed,
	    err) < 0)
		return -1;
	acl_answer(resp, 200, name, "deleted", loaded, closed, NULL);
	return 0;
}

int
vd_h_acls_list(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	const char *id = vd_req_param(req, "id");
	json_t *rec, *users, *arr;
	size_t i;
	json_t *u;

	if ((rec = vd_inst_record_load(ctx, id, err)) == NULL)
		return -1;
	json_decref(rec);
	if ((users = vd_inst_users_load(ctx, id, err)) == NULL)
		return -1;
	arr = json_array();
	json_array_foreach(users, i, u)
		json_array_append_new(arr, vd_acl_user_view(u));
	json_decref(users);
	vd_resp_json(resp, 200, json_pack("{s:o,s:I}", "users", arr, "count",
	    (json_int_t)json_array_size(arr)));
	return 0;
}

int
vd_h_acls_get(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp, struct vd_error *err)
{
	const char *id = vd_req_param(req, "id"), *name = vd_req_param(req, "username");
	json_t *rec, *users;
	long at;

	if ((rec = vd_inst_record_load(ctx, id, err)) == NULL)
		return -1;
	json_decref(rec);
	if ((users = vd_inst_users_load(ctx, id, err)) == NULL)
		return -1;
	at = find_user(users, name);
	if (at < 0) {
		json_decref(users);
		return vd_err(err, VD_ENOTFOUND, "user_not_found", "instance '%s' has no user '%s'", id, name);
	}
	vd_resp_json(resp, 200, vd_acl_user_view(json_array_get(users, (size_t)at)));
	json_decref(users);
	return 0;
}

/* One line of ACL LIST with password hashes masked. */
static json_t *
effective_line(const char *line, char *user, size_t usersz)
{
	char *copy = strdup(line), *tok, *save = NULL;
	json_t *rules = json_array();
	int n = 0;

	user[0] = '\0';
	for (tok = strtok_r(copy, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save), n++) {
		if (n == 0)
			continue;                               /* "user" */
		if (n == 1) {
			snprintf(user, usersz, "%s", tok);
			continue;
		}
		json_array_append_new(rules, vd_json_string_lossy(tok[0] == '#' ? "#<sha256>" : tok));
	}
	free(copy);
	return rules;
}

int
vd_h_acls_effective(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	const char *id = vd_req_param(req, "id");
	char pw[VD_INST_ADMIN_PASSWORD_MAX], uname[VD_ACL_NAME_MAX + 16];
	json_t *rec = NULL, *spec = NULL, *users = NULL, *live = NULL;
	json_t *only_server = NULL, *only_store = NULL, *differs = NULL;
	redisContext *c = NULL;
	redisReply *r = NULL;
	int ret = -1;
	size_t i;
	json_t *u;

	if ((rec = vd_inst_record_load(ctx, id, err)) == NULL)
		goto done;
	if (strcmp(vd_str_or(json_string_value(json_object_get(rec, "state")), ""), "running") != 0) {
		vd_err(err, VD_ECONFLICT, "instance_not_running",
		    "instance '%s' is not running: there is no server to ask", id);
		goto done;
	}
	if ((spec = vd_inst_record_spec(rec)) == NULL ||
	    vd_inst_admin_password(ctx, rec, pw, sizeof(pw), err) < 0 ||
	    (users = vd_inst_users_load(ctx, id, err)) == NULL ||
	    (c = vd_inst_connect_admin(rec, spec, pw, err)) == NULL)
		goto done;
	r = redisCommand(c, "ACL LIST");
	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		vd_err(err, VD_EBADGATEWAY, "instance_error", "ACL LIST failed on instance '%s'", id);
		goto done;
	}
	live = json_array();
	only_server = json_array();
	only_store = json_array();
	differs = json_array();
	for (i = 0; i < r->elements; i++) {
		json_t *rules = effective_line(r->element[i]->str, uname, sizeof(uname));
		long at = find_user(users, uname);

		json_array_append_new(live, json_pack("{s:s,s:o}", "username", uname, "rules", rules));
		if (strcmp(uname, "default") == 0 || strcmp(uname, VD_ACL_ADMIN_USER) == 0)
			continue;
		if (at < 0) {
			json_array_append_new(only_server, json_string(uname));
		} else {
			int on_server = 0, in_store;
			size_t k;
			json_t *t;

			json_array_foreach(rules, k, t)
				if (strcmp(json_string_value(t), "on") == 0)
					on_server = 1;
			in_store = json_is_true(json_object_get(json_array_get(users, (size_t)at), "enabled"));
			if (on_server != in_store)
				json_array_append_new(differs, json_string(uname));
		}
	}
	json_array_foreach(users, i, u) {
		const char *name = json_string_value(json_object_get(u, "username"));
		int seen = 0;

		for (size_t k = 0; k < r->elements; k++) {
			char *line = r->element[k]->str;
			size_t n = strlen(name);

			if (strncmp(line, "user ", 5) == 0 && strncmp(line + 5, name, n) == 0 && line[5 + n] == ' ')
				seen = 1;
		}
		if (!seen)
			json_array_append_new(only_store, json_string(name));
	}
	vd_resp_json(resp, 200, json_pack("{s:o,s:{s:O,s:O,s:O},s:b}", "users", live,
	    "drift", "only_on_server", only_server, "only_in_store", only_store, "enabled_differs", differs,
	    "in_sync", json_array_size(only_server) + json_array_size(only_store) +
	    json_array_size(differs) == 0));
	ret = 0;
done:
	if (r != NULL)
		freeReplyObject(r);
	if (c != NULL)
		redisFree(c);
	explicit_bzero(pw, sizeof(pw));
	json_decref(rec);
	json_decref(spec);
	json_decref(users);
	json_decref(only_server);
	json_decref(only_store);
	json_decref(differs);
	return ret;
}
