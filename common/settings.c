#include <arpa/inet.h>
#include <string.h>

#include "settings.h"
#include "str.h"

enum setting_type { SET_STRING, SET_INT };

struct setting_def {
	const char *name;
	enum setting_type type;
	long min, max;            /* int bounds, or string length bounds */
	const char *def_str;
	long def_int;
	/* extra check for strings; returns a reason or NULL */
	const char *(*check)(const char *value);
};

/* An image reference: registry/name[:tag][@digest], no spaces or controls. */
static const char *
check_image(const char *v)
{
	for (const char *p = v; *p; p++) {
		char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '-' || c == '_' || c == '/' || c == ':' || c == '@'))
			return "an image reference (letters, digits and . - _ / : @)";
	}
	if (v[0] == '-' || v[0] == '/' || v[0] == ':' || v[0] == '.' || strstr(v, "..") != NULL ||
	    strstr(v, "//") != NULL)
		return "an image reference that starts with a letter or digit, without '..' or '//'";
	return NULL;
}

static const char *
check_ip(const char *v)
{
	unsigned char buf[16];

	if (inet_pton(AF_INET, v, buf) == 1 || inet_pton(AF_INET6, v, buf) == 1)
		return NULL;
	return "an IPv4 or IPv6 address";
}

static const struct setting_def settings_table[] = {
	{ "instance_image",          SET_STRING, 1, 255, "valkey/valkey:8.0", 0, check_image },
	{ "fallback_image",          SET_STRING, 1, 255, "valdock/valkey:local", 0, check_image },
	{ "publish_address",         SET_STRING, 2, 45, "127.0.0.1", 0, check_ip },
	{ "port_range_start",        SET_INT, 1024, 65535, NULL, 7000, NULL },
	{ "port_range_end",          SET_INT, 1024, 65535, NULL, 7999, NULL },
	{ "metrics_interval",        SET_INT, 1, 3600, NULL, 10, NULL },
	{ "acl_password_min_length", SET_INT, 8, 256, NULL, 12, NULL },
	{ "default_memory_mb",       SET_INT, 16, 1048576, NULL, 256, NULL },
};

#define SETTINGS_N (sizeof(settings_table) / sizeof(settings_table[0]))

static const struct setting_def *
settings_find(const char *name)
{
	for (size_t i = 0; i < SETTINGS_N; i++)
		if (strcmp(settings_table[i].name, name) == 0)
			return &settings_table[i];
	return NULL;
}

json_t *
vd_settings_defaults(void)
{
	json_t *doc = json_object();

	for (size_t i = 0; i < SETTINGS_N && doc; i++) {
		const struct setting_def *s = &settings_table[i];

		json_object_set_new(doc, s->name, s->type == SET_INT ?
		    json_integer(s->def_int) : json_string(s->def_str));
	}
	return doc;
}

static int
settings_check_one(const struct setting_def *s, const json_t *v, struct vd_error *err)
{
	if (s->type == SET_INT) {
		json_int_t n;

		if (!json_is_integer(v))
			return vd_err_field(err, s->name, "%s must be an integer from %ld to %ld",
			    s->name, s->min, s->max);
		n = json_integer_value(v);
		if (n < s->min || n > s->max)
			return vd_err_field(err, s->name, "%s must be from %ld to %ld", s->name, s->min,
			    s->max);
		return 0;
	} else {
		const char *str = json_string_value(v);
		const char *why;
		size_t len;

		if (str == NULL)
			return vd_err_field(err, s->name, "%s must be a string", s->name);
		len = strlen(str);
		if ((long)len < s->min || (long)len > s->max)
			return vd_err_field(err, s->name, "%s must be %ld to %ld characters", s->name,
			    s->min, s->max);
		if (s->check != NULL && (why = s->check(str)) != NULL)
			return vd_err_field(err, s->name, "%s must be %s", s->name, why);
		return 0;
	}
}

json_t *
vd_settings_from_stored(const json_t *stored)
{
	json_t *doc = vd_settings_defaults();
	const char *key;
	json_t *v;

	if (doc == NULL || !json_is_object(stored))
		return doc;
	json_object_foreach((json_t *)stored, key, v) {
		const struct setting_def *s = settings_find(key);

		if (s != NULL && settings_check_one(s, v, NULL) == 0)
			json_object_set(doc, key, v);
	}
	return doc;
}

int
vd_settings_check_patch(const json_t *patch, struct vd_error *err)
{
	const char *key;
	json_t *v;

	if (!json_is_object(patch))
		return vd_err(err, VD_EBADREQ, "bad_request", "settings must be a JSON object");
	json_object_foreach((json_t *)patch, key, v) {
		const struct setting_def *s = settings_find(key);

		if (s == NULL)
			return vd_err_field(err, key, "unknown setting '%.64s'", key);
		if (settings_check_one(s, v, err) < 0)
			return -1;
	}
	return 0;
}

int
vd_settings_apply(json_t *doc, const json_t *patch, struct vd_error *err)
{
	json_t *next;
	json_int_t lo, hi;
	int ret = -1;

	if (vd_settings_check_patch(patch, err) < 0)
		return -1;
	next = json_deep_copy(doc);
	if (next == NULL)
		return vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
	json_object_update(next, (json_t *)patch);
	lo = json_integer_value(json_object_get(next, "port_range_start"));
	hi = json_integer_value(json_object_get(next, "port_range_end"));
	if (lo > hi) {
		vd_err_field(err, json_object_get(patch, "port_range_start") ? "port_range_start" :
		    "port_range_end", "port_range_start (%lld) must not exceed port_range_end (%lld)",
		    (long long)lo, (long long)hi);
		goto done;
	}
	json_object_update(doc, next);
	ret = 0;
done:
	json_decref(next);
	return ret;
}

json_t *
vd_settings_load(struct vd_store *st, struct vd_error *err)
{
	redisReply *r = vd_store_cmdv(st, err, "GET", VD_SETTINGS_KEY, NULL);
	json_t *stored = NULL, *doc;

	if (r == NULL)
		return NULL;
	if (r->type == REDIS_REPLY_STRING)
		stored = json_loadb(r->str, r->len, 0, NULL);
	freeReplyObject(r);
	doc = vd_settings_from_stored(stored);
	json_decref(stored);
	if (doc == NULL)
		vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
	return doc;
}
