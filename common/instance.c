#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "catalog.h"
#include "instance.h"
#include "names.h"
#include "str.h"
#include "units.h"

int
vd_instance_paths(const char *data_dir, const char *id, struct vd_instance_paths *p,
    struct vd_error *err)
{
	int n = snprintf(p->dir, sizeof(p->dir), "%s/instances/%s", data_dir, id);

	if (n < 0 || (size_t)n + 20 >= sizeof(p->dir))
		return vd_err(err, VD_EINTERNAL, "path_too_long", "instance path too long");
	snprintf(p->conf_dir, sizeof(p->conf_dir), "%s/conf", p->dir);
	snprintf(p->data_dir, sizeof(p->data_dir), "%s/data", p->dir);
	snprintf(p->conf_file, sizeof(p->conf_file), "%s/conf/valkey.conf", p->dir);
	snprintf(p->acl_file, sizeof(p->acl_file), "%s/conf/users.acl", p->dir);
	return 0;
}

static int
parse_memory(const json_t *v, long long *out, struct vd_error *err)
{
	static const char *rule = "memory must be a size such as \"256mb\" or \"1gb\" from 16mb to 1024gb";

	if (json_is_integer(v))
		*out = json_integer_value(v);
	else if (!json_is_string(v) || vd_units_parse_bytes(json_string_value(v), out) < 0)
		return vd_err_field(err, "memory", "%s", rule);
	if (*out < VD_INSTANCE_MEMORY_MIN || *out > VD_INSTANCE_MEMORY_MAX)
		return vd_err_field(err, "memory", "%s", rule);
	return 0;
}

/* The users named at creation: the same records and checks as the ACL
 * API; one given without rules gets every permission on every key. */
static int
parse_users(const json_t *v, int min_len, long long now, json_t **users, struct vd_error *err)
{
	size_t i;
	json_t *u;

	*users = json_array();
	if (v == NULL)
		return 0;
	if (!json_is_array(v) || json_array_size(v) > VD_INSTANCE_MAX_USERS)
		return vd_err_field(err, "users", "users must be an array of at most %d {\"username\",\"password\"}",
		    VD_INSTANCE_MAX_USERS);
	json_array_foreach(v, i, u) {
		char prefix[48];
		json_t *rec, *prev;
		size_t j;

		snprintf(prefix, sizeof(prefix), "users[%zu].", i);
		if (!json_is_object(u)) {
			snprintf(prefix, sizeof(prefix), "users[%zu]", i);
			return vd_err_field(err, prefix, "%s must be an object", prefix);
		}
		if (vd_acl_user_from_request(u, min_len, 1, now, prefix, &rec, err) < 0)
			return -1;
		if (json_array_size(json_object_get(rec, "password_hashes")) == 0 &&
		    !json_is_true(json_object_get(rec, "nopass"))) {
			json_decref(rec);
			snprintf(prefix, sizeof(prefix), "users[%zu].password", i);
			return vd_err_field(err, prefix, "%s is required: without it nobody can log in", prefix);
		}
		json_array_foreach(*users, j, prev) {
			if (strcmp(json_string_value(json_object_get(prev, "username")),
			    json_string_value(json_object_get(rec, "username"))) == 0) {
				json_decref(rec);
				snprintf(prefix, sizeof(prefix), "users[%zu].username", i);
				return vd_err_field(err, prefix, "user '%s' is given twice",
				    json_string_value(json_object_get(prev, "username")));
			}
		}
		json_array_append_new(*users, rec);
	}
	return 0;
}

int
vd_instance_parse_create(const json_t *body, const json_t *settings, long long now,
    json_t **spec, json_t **users, struct vd_error *err)
{
	static const char *const known[] = { "name", "port", "configTemplate", "users", "memory" };
	const char *name, *tmpl = "default";
	json_t *v;
	long long memory;
	json_int_t port = 0;
	int min_len;

	*spec = NULL;
	*users = NULL;
	if (vd_json_only_fields(body, known, sizeof(known) / sizeof(known[0]), "", err) < 0)
		return -1;
	name = json_string_value(json_object_get(body, "name"));
	if (name == NULL)
		return vd_err_field(err, "name", "name is required");
	if (vd_name_check("name", name, err) < 0)
		return -1;
	v = json_object_get(body, "port");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < VD_INSTANCE_PORT_MIN ||
		    json_integer_value(v) > VD_INSTANCE_PORT_MAX)
			return vd_err_field(err, "port", "port must be an integer from %d to %d, or omitted",
			    VD_INSTANCE_PORT_MIN, VD_INSTANCE_PORT_MAX);
		port = json_integer_value(v);
	}
	v = json_object_get(body, "configTemplate");
	if (v != NULL && !json_is_null(v)) {
		tmpl = json_string_value(v);
		if (tmpl == NULL || vd_name_check("configTemplate", tmpl, err) < 0)
			return vd_err_field(err, "configTemplate", "configTemplate must name a template");
	}
	v = json_object_get(body, "memory");
	if (v != NULL && !json_is_null(v)) {
		if (parse_memory(v, &memory, err) < 0)
			return -1;
	} else {
		memory = json_integer_value(json_object_get(settings, "default_memory_mb")) * 1024 * 1024;
	}
	min_len = (int)json_integer_value(json_object_get(settings, "acl_password_min_length"));
	if (parse_users(json_object_get(body, "users"), min_len, now, users, err) < 0) {
		json_decref(*users);
		*users = NULL;
		return -1;
	}
	*spec = json_pack("{s:s,s:I,s:s,s:{},s:I,s:O,s:I}", "id", name, "port", port, "template", tmpl,
	    "config",
	    "memory_bytes", (json_int_t)memory, "publish_address",
	    json_object_get(settings, "publish_address"), "created_at", (json_int_t)now);
	if (*spec == NULL) {
		json_decref(*users);
		*users = NULL;
		return vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
	}
	return 0;
}

int
vd_instance_check_config(const json_t *spec, struct vd_error *err)
{
	const char *mm = json_string_value(json_object_get(json_object_get(spec, "config"), "maxmemory"));
	long long limit = json_integer_value(json_object_get(spec, "memory_bytes")), bytes;

	if (mm != NULL && vd_units_parse_bytes(mm, &bytes) == 0 && bytes > limit) {
		char lim[32];

		vd_units_format_bytes(limit, lim, sizeof(lim));
		return vd_err_field(err, "maxmemory",
		    "maxmemory %s exceeds the instance's memory limit of %s: the kernel would kill the server "
		    "before it evicts", mm, lim);
	}
	return 0;
}

/* The maxmemory an instance gets when its config names none: three
 * quarters of the container's limit, so the server evicts or refuses
 * writes before the kernel kills it. */
long long
vd_instance_default_maxmemory(const json_t *spec)
{
	long long limit = json_integer_value(json_object_get(spec, "memory_bytes"));

	return limit / 4 * 3 / (1024 * 1024) * (1024 * 1024);
}

int
vd_instance_render_conf(const json_t *spec, char **out, struct vd_error *err)
{
	const char *id = json_string_value(json_object_get(spec, "id"));
	const json_t *config = json_object_get(spec, "config");
	size_t cap = 4096 + json_object_size(config) * (VD_CATALOG_VALUE_MAX * 4 + 64), o;
	const char *key;
	json_t *v;
	char *buf;
	int n;

	buf = malloc(cap);
	if (buf == NULL || id == NULL) {
		free(buf);
		return vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
	}
	/* Valdock owns where the server listens, its files and its users;
	 * protected-mode is off because the default user is off: only ACL users
	 * get in. The parameters follow, quoted. */
	n = snprintf(buf, cap,
	    "# valkey.conf of instance %s, rendered by Valdock; edit through Valdock\n"
	    "port 6379\n"
	    "bind * -::*\n"
	    "protected-mode no\n"
	    "dir /data\n"
	    "aclfile /etc/valkey/users.acl\n"
	    "daemonize no\n"
	    "logfile \"\"\n",
	    id);
	if (n < 0 || (size_t)n >= cap)
		goto toolong;
	o = (size_t)n;
	if (json_object_get(config, "maxmemory") == NULL) {
		n = snprintf(buf + o, cap - o, "maxmemory \"%lld\"\n", vd_instance_default_maxmemory(spec));
		if (n < 0 || (size_t)n >= cap - o)
			goto toolong;
		o += (size_t)n;
	}
	json_object_foreach((json_t *)config, key, v) {
		if (!json_is_string(v) || vd_catalog_find(key) == NULL) {
			free(buf);
			return vd_err(err, VD_EINTERNAL, "render", "stored parameter '%s' is not catalogued", key);
		}
		n = vd_catalog_render_line(key, json_string_value(v), buf + o, cap - o);
		if (n < 0)
			goto toolong;
		o += (size_t)n;
	}
	*out = buf;
	return 0;
toolong:
	free(buf);
	return vd_err(err, VD_EINTERNAL, "render", "instance config too long");
}

json_t *
vd_instance_container_body(const json_t *spec, const struct vd_instance_paths *p)
{
	const char *id = json_string_value(json_object_get(spec, "id"));
	const char *addr = json_string_value(json_object_get(spec, "publish_address"));
	char port[16], user[32];

	snprintf(port, sizeof(port), "%lld", (long long)json_integer_value(json_object_get(spec, "port")));
	snprintf(user, sizeof(user), "%d:%d", VD_INSTANCE_UID, VD_INSTANCE_GID);
	/* Cmd is only the config file: the local image's entrypoint is
	 * valkey-server, and the official image's entrypoint runs valkey-server
	 * for an argument ending in .conf. */
	return json_pack("{s:s,s:[s],s:s,s:{s:s,s:s},s:{s:{}},"
	    "s:{s:[{s:s,s:s,s:s},{s:s,s:s,s:s}],s:{s:[{s:s,s:s}]},s:{s:s},s:I,s:I}}",
	    "Image", json_string_value(json_object_get(spec, "image")),
	    "Cmd", "/etc/valkey/valkey.conf",
	    "User", user,
	    "Labels", VD_INSTANCE_LABEL, id, "io.valdock.managed", "true",
	    "ExposedPorts", "6379/tcp",
	    "HostConfig",
	    "Mounts",
	    "Type", "bind", "Source", p->conf_dir, "Target", "/etc/valkey",
	    "Type", "bind", "Source", p->data_dir, "Target", "/data",
	    "PortBindings", "6379/tcp", "HostIp", addr ? addr : "127.0.0.1", "HostPort", port,
	    "RestartPolicy", "Name", "unless-stopped",
	    "Memory", json_integer_value(json_object_get(spec, "memory_bytes")),
	    "MemorySwap", json_integer_value(json_object_get(spec, "memory_bytes")));
}

const char *
vd_instance_state_from_docker(const char *s)
{
	if (s == NULL)
		return "error";
	if (strcmp(s, "running") == 0)
		return "running";
	if (strcmp(s, "restarting") == 0)
		return "restarting";
	if (strcmp(s, "paused") == 0)
		return "paused";
	if (strcmp(s, "exited") == 0 || strcmp(s, "created") == 0)
		return "stopped";
	return "error";   /* dead, removing, or something new */
}
