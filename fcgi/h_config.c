/* Configuration endpoints: an instance's managed parameters (with drift
 * against the running server), changing them live or by a restart, and
 * the templates instances are created from.
 *
 * A change runs under the instance's lock: every value is checked first;
 * live parameters are CONFIG SET one by one, and if one fails the ones
 * already set get their previous values back; then valkey.conf is rendered
 * and written (a restart keeps the values); restart-only parameters
 * restart the instance, and if it does not come back the previous file is
 * restored and the instance restarted with it. The store changes last. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "catalog.h"
#include "fsutil.h"
#include "handlers.h"
#include "instances.h"
#include "log.h"
#include "names.h"
#include "str.h"
#include "templates.h"
#include "valkey.h"

#define CONFIG_LOCK_WAIT_MS 15000
#define CONF_FILE_MAX (1024 * 1024)
#define MASK "********"

/* Every parameter the server reports (CONFIG GET *) as a JSON object. */
static json_t *
running_config(redisContext *c)
{
	redisReply *r = redisCommand(c, "CONFIG GET *");
	json_t *o = vd_valkey_pairs_json(r);

	if (r != NULL)
		freeReplyObject(r);
	return o;
}

int
vd_h_config_get(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	const char *id = vd_req_param(req, "id");
	json_t *rec, *spec = NULL, *live = NULL, *params, *config;
	char pw[VD_INST_ADMIN_PASSWORD_MAX], mm[32];
	const struct vd_param_def *defs;
	redisContext *c = NULL;
	struct vd_error cerr;
	size_t n;

	if ((rec = vd_inst_record_load(ctx, id, err)) == NULL)
		return -1;
	if ((spec = vd_inst_record_spec(rec)) == NULL) {
		json_decref(rec);
		return vd_err(err, VD_EINTERNAL, "bad_record", "the instance record is unreadable");
	}
	config = json_object_get(spec, "config");
	vd_err_clear(&cerr);
	if (strcmp(vd_str_or(json_string_value(json_object_get(rec, "state")), ""), "running") == 0 &&
	    vd_inst_admin_password(ctx, rec, pw, sizeof(pw), &cerr) == 0 &&
	    (c = vd_inst_connect_admin(rec, spec, pw, &cerr)) != NULL)
		live = running_config(c);
	explicit_bzero(pw, sizeof(pw));
	snprintf(mm, sizeof(mm), "%lld", vd_instance_default_maxmemory(spec));
	defs = vd_catalog_all(&n);
	params = json_array();
	for (size_t i = 0; i < n; i++) {
		const char *mine = json_string_value(json_object_get(config, defs[i].name));
		const char *source = mine ? "configured" : "default";
		const char *running = live ? json_string_value(json_object_get(live, defs[i].name)) : NULL;
		json_t *p;

		if (mine == NULL && strcmp(defs[i].name, "maxmemory") == 0) {
			mine = mm;           /* what Valdock renders when the config names none */
			source = "derived";
		}
		p = json_pack("{s:s,s:b,s:b,s:b,s:s,s:s}", "name", defs[i].name, "live", defs[i].live,
		    "restart_required", !defs[i].live, "sensitive", defs[i].sensitive, "source", source,
		    "help", defs[i].help);
		json_object_set_new(p, "value", mine ? json_string(defs[i].sensitive ? MASK : mine) :
		    json_null());
		json_object_set_new(p, "running_value", running ? json_string(defs[i].sensitive ?
		    MASK : running) : json_null());
		json_object_set_new(p, "drift", json_boolean(mine != NULL && running != NULL &&
		    !vd_catalog_same(defs[i].name, mine, running)));
		json_array_append_new(params, p);
	}
	vd_resp_json(resp, 200, json_pack("{s:s,s:O,s:o,s:b}", "id", id, "template",
	    json_object_get(spec, "template"), "parameters", params, "running_values_known", live != NULL));
	if (live == NULL && c == NULL && cerr.message[0] != '\0')
		json_object_set_new(resp->body, "running_values_error", vd_json_string_lossy(cerr.message));
	if (c != NULL)
		redisFree(c);
	json_decref(live);
	json_decref(rec);
	json_decref(spec);
	return 0;
}

/* Puts back the values the keys in applied had before (previous). */
static void
restore_live(redisContext *c, json_t *applied, const json_t *previous)
{
	size_t i;
	json_t *k;

	json_array_foreach(applied, i, k) {
		const char *name = json_string_value(k);
		const char *was = json_string_value(json_object_get(previous, name));
		redisReply *r;

		if (was == NULL)
			continue;
		r = redisCommand(c, "CONFIG SET %s %s", name, was);
		if (r != NULL)
			freeReplyObject(r);
	}
	json_array_clear(applied);
}

/* CONFIG SET each live key of change, noting in previous what each had
 * (from CONFIG GET); on a failure the ones already set get it back. */
static int
apply_live(redisContext *c, const json_t *change, json_t *applied, json_t *previous,
    struct vd_error *err)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)change, key, v) {
		const struct vd_param_def *d = vd_catalog_find(key);
		redisReply *r;

		if (d == NULL || !d->live)
			continue;
		r = redisCommand(c, "CONFIG GET %s", key);
		if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
			json_object_set_new(previous, key, json_string(r->element[1]->str));
		if (r != NULL)
			freeReplyObject(r);
		r = redisCommand(c, "CONFIG SET %s %s", key, json_string_value(v));
		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			vd_err_field(err, key, "CONFIG SET %s failed: %.300s; the parameters set before it were "
			    "put back", key, r ? r->str : c->errstr);
			if (r != NULL)
				freeReplyObject(r);
			restore_live(c, applied, previous);
			return -1;
		}
		freeReplyObject(r);
		json_array_append_new(applied, json_string(key));
	}
	return 0;
}

static int
write_conf(const struct vd_instance_paths *p, const json_t *spec, struct vd_error *err)
{
	char *text = NULL;
	int rc;

	if (vd_instance_render_conf(spec, &text, err) < 0)
		return -1;
	rc = vd_fs_write_atomic_owned(p->conf_file, text, strlen(text), 0600, VD_INSTANCE_UID,
	    VD_INSTANCE_GID, err);
	free(text);
	return rc;
}

int
vd_h_config_put(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	const char *id = vd_req_param(req, "id");
	struct vd_inst_lock lk = { .held = 0 };
	struct vd_instance_paths paths;
	json_t *rec = NULL, *spec = NULL, *change = NULL, *applied = json_array(), *restart_keys = json_array();
	json_t *previous = json_object();
	char pw[VD_INST_ADMIN_PASSWORD_MAX], *old = NULL, *spec_text = NULL;
	redisContext *c = NULL;
	size_t oldlen = 0;
	int running, ret = -1, restarted = 0;
	const char *key;
	json_t *v;

	if (json_object_size(req->json) == 0) {
		vd_err(err, VD_EBADREQ, "empty_change", "give at least one parameter");
		goto done;
	}
	if (vd_catalog_check_all(req->json, &change, err) < 0)
		goto done;
	if ((rec = vd_inst_record_load(ctx, id, err)) == NULL)
		goto done;
	json_decref(rec);
	rec = NULL;
	if (vd_inst_lock_take(ctx, id, CONFIG_LOCK_WAIT_MS, &lk, err) < 0 ||
	    (rec = vd_inst_record_load(ctx, id, err)) == NULL)
		goto done;
	if (strcmp(vd_str_or(json_string_value(json_object_get(rec, "state")), ""), "creating") == 0) {
		vd_err(err, VD_ECONFLICT, "instance_busy", "instance '%s' is still being created", id);
		goto done;
	}
	if ((spec = vd_inst_record_spec(rec)) == NULL) {
		vd_err(err, VD_EINTERNAL, "bad_record", "the instance record is unreadable");
		goto done;
	}
	if (vd_inst_admin_password(ctx, rec, pw, sizeof(pw), err) < 0 ||
	    vd_instance_paths(ctx->cfg->data_dir, id, &paths, err) < 0 ||
	    vd_fs_read(paths.conf_file, CONF_FILE_MAX, &old, &oldlen, err) < 0)
		goto done;
	json_object_foreach(change, key, v)
		if (!vd_catalog_find(key)->live)
			json_array_append_new(restart_keys, json_string(key));
	if ((running = vd_inst_change_mode(rec, err)) < 0)
		goto done;
	if (running && (c = vd_inst_connect_admin(rec, spec, pw, err)) == NULL)
		goto done;
	json_object_update(json_object_get(spec, "config"), change);
	if (vd_instance_check_config(spec, err) < 0)
		goto done;
	if (c != NULL && apply_live(c, change, applied, previous, err) < 0)
		goto done;
	if (write_conf(&paths, spec, err) < 0) {
		/* not persisted means not applied: put the live values back (C06) */
		if (c != NULL)
			restore_live(c, applied, previous);
		goto done;
	}
	if (running && json_array_size(restart_keys) > 0) {
		redisFree(c);
		c = NULL;
		if (vd_instances_bring_up(ctx, id, spec, pw, 1, err) < 0) {
			struct vd_error rerr;
			char why[sizeof(err->message)];

			snprintf(why, sizeof(why), "%s", err->message);
			vd_fs_write_atomic_owned(paths.conf_file, old, oldlen, 0600, VD_INSTANCE_UID,
			    VD_INSTANCE_GID, NULL);
			vd_err_clear(&rerr);
			if (vd_instances_bring_up(ctx, id, spec, pw, 1, &rerr) < 0)
				vd_log_warnx("instance %s: restart with the previous config failed too: %s", id,
				    rerr.message);
			vd_err(err, VD_EBADGATEWAY, "restart_failed",
			    "the instance did not come back with the new config (%s); the previous config "
			    "was restored", why);
			goto done;
		}
		restarted = 1;
	}
	if ((spec_text = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS)) == NULL ||
	    vd_inst_record_set(ctx, id, err, "spec", spec_text, NULL) < 0)
		goto done;
	vd_resp_json(resp, 200, json_pack("{s:s,s:s,s:O,s:O,s:b,s:b}", "status", "ok", "message",
	    !running ? "Config stored; it takes effect when the instance starts." :
	    restarted ? "Config updated and instance restarted." : "Config updated and instance reloaded.",
	    "applied_live", applied, "restart_required", restart_keys, "restarted", restarted,
	    "persisted", 1));
	vd_log_info("instance %s: config changed (%zu live, %zu by restart)", id, json_array_size(applied),
	    running ? json_array_size(restart_keys) : 0);
	ret = 0;
done:
	vd_inst_lock_release(ctx, &lk);
	if (c != NULL)
		redisFree(c);
	explicit_bzero(pw, sizeof(pw));
	free(old);
	free(spec_text);
	json_decref(rec);
	json_decref(spec);
	json_decref(change);
	json_decref(applied);
	json_decref(previous);
	json_decref(restart_keys);
	return ret;
}

/* ---- templates ---- */

/* Ids of the instances created from template name (new array). */
static json_t *
template_users(struct vd_ctx *ctx, const char *name, struct vd_error *err)
{
	redisReply *ids = vd_store_cmdv(ctx->store, err, "SMEMBERS", "instances", NULL);
	json_t *out;

	if (ids == NULL)
		return NULL;
	out = json_array();
	for (size_t i = 0; ids->type == REDIS_REPLY_ARRAY && i < ids->elements; i++) {
		json_t *rec = vd_inst_record_load(ctx, ids->element[i]->str, NULL), *spec;

		if (rec == NULL)
			continue;
		spec = vd_inst_record_spec(rec);
		if (strcmp(vd_str_or(json_string_value(json_object_get(spec, "template")), ""), name) == 0)
			json_array_append_new(out, json_string(ids->element[i]->str));
		json_decref(spec);
		json_decref(rec);
	}
	freeReplyObject(ids);
	return out;
}

int
vd_h_templates_list(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	json_t *all = vd_template_builtins();
	redisReply *keys;

	/* a handful of templates: SCAN-free listing through a set of names */
	keys = vd_store_cmdv(ctx->store, err, "SMEMBERS", "config:templates", NULL);
	if (keys == NULL) {
		json_decref(all);
		return -1;
	}
	for (size_t i = 0; keys->type == REDIS_REPLY_ARRAY && i < keys->elements; i++) {
		json_t *t = vd_inst_template_load(ctx, keys->element[i]->str, NULL);

		if (t != NULL && !json_is_true(json_object_get(t, "builtin")))
			json_array_append_new(all, t);
		else
			json_decref(t);
	}
	freeReplyObject(keys);
	vd_resp_json(resp, 200, json_pack("{s:o,s:I}", "templates", all, "count",
	    (json_int_t)json_array_size(all)));
	return 0;
}

int
vd_h_templates_get(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	json_t *t = vd_inst_template_load(ctx, vd_req_param(req, "name"), err);

	if (t == NULL)
		return -1;
	vd_resp_json(resp, 200, t);
	return 0;
}

static int
template_store(struct vd_ctx *ctx, const json_t *t, int create, struct vd_error *err)
{
	const char *name = json_string_value(json_object_get(t, "name"));
	char key[96], *text = json_dumps(t, JSON_COMPACT | JSON_SORT_KEYS);
	redisReply *r;
	int ok;

	if (text == NULL)
		return vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
	vd_inst_key(key, sizeof(key), "config:template:", name);
	r = vd_store_cmdv(ctx->store, err, "SET", key, text, create ? "NX" : "XX", NULL);
	free(text);
	if (r == NULL)
		return -1;
	ok = r->type == REDIS_REPLY_STATUS;
	freeReplyObject(r);
	if (!ok)
		return create ? vd_err(err, VD_ECONFLICT, "template_exists", "a template named '%s' exists", name) :
		    vd_err(err, VD_ENOTFOUND, "template_not_found", "no template named '%s'", name);
	r = vd_store_cmdv(ctx->store, err, "SADD", "config:templates", name, NULL);
	if (r == NULL)
		return -1;
	freeReplyObject(r);
	return 0;
}

int
vd_h_templates_create(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	json_t *t, *builtin;

	if (vd_template_from_request(req->json, NULL, &t, err) < 0)
		return -1;
	builtin = vd_template_builtin(json_string_value(json_object_get(t, "name")));
	if (builtin != NULL) {
		json_decref(builtin);
		json_decref(t);
		return vd_err(err, VD_ECONFLICT, "template_builtin", "'%s' is a built-in template",
		    json_string_value(json_object_get(req->json, "name")));
	}
	if (template_store(ctx, t, 1, err) < 0) {
		json_decref(t);
		return -1;
	}
	snprintf(resp->location, sizeof(resp->location), "/api/v1/config/templates/%s",
	    json_string_value(json_object_get(t, "name")));
	vd_resp_json(resp, 201, t);
	return 0;
}

int
vd_h_templates_update(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	const char *name = vd_req_param(req, "name");
	json_t *t, *builtin = vd_template_builtin(name);

	if (builtin != NULL) {
		json_decref(builtin);
		return vd_err(err, VD_ECONFLICT, "template_builtin", "built-in template '%s' cannot be changed",
		    name);
	}
	if (vd_template_from_request(req->json, name, &t, err) < 0)
		return -1;
	if (template_store(ctx, t, 0, err) < 0) {
		json_decref(t);
		return -1;
	}
	vd_resp_json(resp, 200, t);
	return 0;
}

int
vd_h_templates_delete(struct vd_ctx *ctx, struct vd_req *req, struct vd_resp *resp,
    struct vd_error *err)
{
	const char *name = vd_req_param(req, "name");
	json_t *builtin = vd_template_builtin(name), *users;
	char key[96];
	redisReply *r;
	int gone;

	if (builtin != NULL) {
		json_decref(builtin);
		return vd_err(err, VD_ECONFLICT, "template_builtin", "built-in template '%s' cannot be deleted",
		    name);
	}
	if ((users = template_users(ctx, name, err)) == NULL)
		return -1;
	if (json_array_size(users) > 0) {
		char *list = json_dumps(users, JSON_COMPACT);

		vd_err(err, VD_ECONFLICT, "template_in_use", "template '%s' is used by instances %s", name,
		    list ? list : "");
		free(list);
		json_decref(users);
		return -1;
	}
	json_decref(users);
	vd_inst_key(key, sizeof(key), "config:template:", name);
	r = vd_store_cmdv(ctx->store, err, "DEL", key, NULL);
	if (r == NULL)
		return -1;
	gone = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
	freeReplyObject(r);
	r = vd_store_cmdv(ctx->store, err, "SREM", "config:templates", name, NULL);
	if (r != NULL)
		freeReplyObject(r);
	if (!gone)
		return vd_err(err, VD_ENOTFOUND, "template_not_found", "no template named '%s'", name);
	vd_resp_json(resp, 200, json_pack("{s:s,s:s}", "status", "ok", "message", "template deleted"));
	return 0;
}
