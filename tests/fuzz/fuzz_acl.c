/* libFuzzer target: ACL rule fields and user records from arbitrary input.
 * The first byte picks the field; the rest is the field's text, then the
 * same bytes as a JSON user record and change. Whatever is accepted must
 * render into an ACL file line without a newline, a comment or a password
 * the request did not set. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *H = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vd_error err;
	json_t *v, *out, *body, *user;
	char *s, *file;
	int end;

	if (size < 1)
		return 0;
	s = malloc(size);
	if (s == NULL)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	v = json_string(s);
	if (v != NULL && vd_acl_parse_rules((enum vd_acl_field)(data[0] % 3), "f", v, &out, &err) == 0) {
		size_t i;
		json_t *t;

		json_array_foreach(out, i, t)
			if (strpbrk(json_string_value(t), "\r\n\t") != NULL)
				abort();
		json_decref(out);
	}
	json_decref(v);
	body = json_loads(s, 0, NULL);
	if (body != NULL && vd_acl_user_from_request(body, 1, data[0] & 1, 1, "", &user, &err) == 0) {
		json_t *users = json_array();

		vd_acl_user_update(user, body, 1, 2, &end, &err);
		json_array_append(users, user);
		if (vd_acl_render(users, H, &file, &err) == 0) {
			/* default, admin, the user: exactly three lines, and no token
			 * that sets a clear-text password or removes one */
			int lines = 0;
			char *save = NULL;

			for (char *p = file; *p; p++)
				lines += *p == '\n';
			if (lines != 3)
				abort();
			for (char *t = strtok_r(file, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
				if (t[0] == '>' || t[0] == '<' || t[0] == '!' ||
				    (t[0] == '#' && strlen(t) != 65))
					abort();
			free(file);
		}
		json_decref(users);
		json_decref(user);
	}
	json_decref(body);
	free(s);
	return 0;
}
