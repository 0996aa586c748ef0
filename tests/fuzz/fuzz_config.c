/* libFuzzer target: the config file parser and the validators of JSON
 * request bodies (settings, instance creation, templates, instance
 * config) on arbitrary text. Whatever a validator accepts must render into
 * a valkey.conf where every parameter stays on its own line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "config.h"
#include "instance.h"
#include "settings.h"
#include "templates.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_render(json_t *spec)
{
	struct vd_error err;
	char *conf;

	json_object_set_new(spec, "image", json_string("valdock/valkey:local"));
	if (vd_instance_render_conf(spec, &conf, &err) == 0) {
		size_t lines = 0;

		for (char *p = conf; *p; p++)
			lines += *p == '\n';
		/* eight lines of Valdock's own, maxmemory perhaps, one per parameter */
		if (lines > 9 + json_object_size(json_object_get(spec, "config")))
			abort();
		free(conf);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vd_config cfg;
	struct vd_error err;
	json_t *body, *doc, *spec, *users, *tmpl, *norm;
	char *s;

	s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	memset(&cfg, 0, sizeof(cfg));
	vd_config_parse_file_text(&cfg, s, "fuzz", &err);
	body = json_loadb(s, size, 0, NULL);
	if (body != NULL) {
		doc = vd_settings_defaults();
		vd_settings_apply(doc, body, &err);
		if (vd_instance_parse_create(body, doc, 1, &spec, &users, &err) == 0) {
			check_render(spec);
			json_decref(spec);
			json_decref(users);
		}
		if (vd_template_from_request(body, NULL, &tmpl, &err) == 0) {
			spec = json_pack("{s:s,s:I,s:O}", "id", "f", "memory_bytes", (json_int_t)(64 << 20),
			    "config", json_object_get(tmpl, "config"));
			check_render(spec);
			json_decref(spec);
			json_decref(tmpl);
		}
		if (vd_catalog_check_all(body, &norm, &err) == 0)
			json_decref(norm);
		json_decref(doc);
		json_decref(body);
	}
	free(s);
	return 0;
}
