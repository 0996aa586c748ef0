/* libFuzzer target: the config file parser and the settings validator on
 * arbitrary text (the settings input is the same bytes read as JSON). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vd_config cfg;
	struct vd_error err;
	json_t *patch, *doc;
	char *s;

	s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	memset(&cfg, 0, sizeof(cfg));
	vd_config_parse_file_text(&cfg, s, "fuzz", &err);
	patch = json_loadb(s, size, 0, NULL);
	if (patch != NULL) {
		doc = vd_settings_defaults();
		vd_settings_apply(doc, patch, &err);
		json_decref(doc);
		json_decref(patch);
	}
	free(s);
	return 0;
}
