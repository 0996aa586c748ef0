#include <string.h>

#include "catalog.h"
#include "names.h"
#include "str.h"
#include "templates.h"

static const struct {
	const char *name;
	const char *description;
	const char *config;     /* JSON */
} builtins[] = {
	{ "default", "Valkey's own defaults, memory capped below the container limit", "{}" },
	{ "cache", "A cache: no persistence, least-recently-used keys evicted at maxmemory",
	  "{\"save\":\"\",\"appendonly\":\"no\",\"maxmemory-policy\":\"allkeys-lru\"}" },
	{ "persistent", "Durable data: append-only file fsynced every second, RDB snapshots too",
	  "{\"appendonly\":\"yes\",\"appendfsync\":\"everysec\",\"save\":\"3600 1 300 100 60 10000\"}" },
};

#define BUILTINS_N (sizeof(builtins) / sizeof(builtins[0]))

static json_t *
builtin_at(size_t i)
{
	return json_pack("{s:s,s:s,s:o,s:b}", "name", builtins[i].name, "description",
	    builtins[i].description, "config", json_loads(builtins[i].config, 0, NULL), "builtin", 1);
}

json_t *
vd_template_builtin(const char *name)
{
	for (size_t i = 0; i < BUILTINS_N; i++)
		if (strcmp(builtins[i].name, name) == 0)
			return builtin_at(i);
	return NULL;
}

json_t *
vd_template_builtins(void)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < BUILTINS_N; i++)
		json_array_append_new(arr, builtin_at(i));
	return arr;
}

int
vd_template_from_request(const json_t *body, const char *fixed_name, json_t **out,
    struct vd_error *err)
{
	static const char *const known[] = { "name", "description", "config" };
	const char *name = json_string_value(json_object_get(body, "name"));
	const json_t *desc = json_object_get(body, "description");
	json_t *config = json_object_get(body, "config"), *norm;

	*out = NULL;
	if (vd_json_only_fields(body, known, sizeof(known) / sizeof(known[0]), "", err) < 0)
		return -1;
	if (fixed_name != NULL) {
		if (name != NULL && strcmp(name, fixed_name) != 0)
			return vd_err_field(err, "name", "a template is renamed by creating a new one");
		name = fixed_name;
	}
	if (name == NULL)
		return vd_err_field(err, "name", "name is required");
	if (vd_name_check("name", name, err) < 0)
		return -1;
	if (desc != NULL && (!json_is_string(desc) ||
	    strlen(json_string_value(desc)) > VD_TEMPLATE_DESCRIPTION_MAX ||
	    vd_str_has_ctrl(json_string_value(desc), strlen(json_string_value(desc)))))
		return vd_err_field(err, "description", "description must be text of at most %d bytes",
		    VD_TEMPLATE_DESCRIPTION_MAX);
	if (config == NULL)
		return vd_err_field(err, "config", "config is required (an object of parameters)");
	if (vd_catalog_check_all(config, &norm, err) < 0) {
		/* say where the refused key sits */
		if (err != NULL && err->field[0] != '\0' && strncmp(err->field, "config.", 7) != 0 &&
		    strcmp(err->field, "config") != 0) {
			char field[sizeof(err->field) + 8];

			snprintf(field, sizeof(field), "config.%s", err->field);
			vd_str_copy(err->field, sizeof(err->field), field);
		}
		return -1;
	}
	*out = json_pack("{s:s,s:s,s:o,s:b}", "name", name, "description",
	    desc ? json_string_value(desc) : "", "config", norm, "builtin", 0);
	return 0;
}
