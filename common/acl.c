#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "crypto.h"
#include "str.h"

int
vd_acl_check_username(const char *field, const char *name, struct vd_error *err)
{
	size_t n = strlen(name);

	if (n == 0 || n > VD_ACL_NAME_MAX)
		return vd_err_field(err, field, "%s must be 1-%d characters", field, VD_ACL_NAME_MAX);
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    (i > 0 && (c == '.' || c == '_' || c == '-' || c == '@' || c == '+'))))
			return vd_err_field(err, field,
			    "%s may hold only letters, digits and . _ - @ +, starting with a letter or digit",
			    field);
	}
	if (strcmp(name, VD_ACL_ADMIN_USER) == 0 || strcmp(name, "default") == 0)
		return vd_err_field(err, field, "%s '%s' is reserved", field, name);
	return 0;
}

int
vd_acl_check_password(const char *field, const char *pw, int min_len, struct vd_error *err)
{
	size_t n = strlen(pw);

	if ((long)n < min_len)
		return vd_err_field(err, field, "%s must be at least %d characters", field, min_len);
	if (n > VD_ACL_PASSWORD_MAX)
		return vd_err_field(err, field, "%s must be at most %d bytes", field, VD_ACL_PASSWORD_MAX);
	if (vd_str_has_ctrl(pw, n) || !vd_utf8_valid(pw, n))
		return vd_err_field(err, field, "%s must be UTF-8 text without control characters", field);
	return 0;
}

int
vd_acl_is_hash(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == 64;
}

json_t *
vd_acl_user_full_access(const char *username, const char *password, long long now)
{
	char hash[65];

	vd_crypto_sha256_hex(password, strlen(password), hash);
	return json_pack("{s:s,s:b,s:b,s:[s],s:[s],s:[s],s:[s],s:I,s:I}", "username", username,
	    "enabled", 1, "nopass", 0, "password_hashes", hash, "keys", "~*", "channels", "&*",
	    "permissions", "+@all", "created_at", (json_int_t)now, "updated_at", (json_int_t)now);
}

struct acl_buf {
	char *p;
	size_t len, cap;
};

static int
buf_add(struct acl_buf *b, const char *s)
{
	size_t n = strlen(s);

	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (p == NULL)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n + 1);
	b->len += n;
	return 0;
}

/* Appends " tok" for each string of the array; tokens hold no whitespace
 * (checked when the record was made; checked again here). */
static int
add_tokens(struct acl_buf *b, const json_t *arr, const char *user, const char *what,
    struct vd_error *err)
{
	size_t i;
	json_t *t;

	json_array_foreach(arr, i, t) {
		const char *s = json_string_value(t);

		if (s == NULL || *s == '\0' || strpbrk(s, " \t\r\n") != NULL ||
		    vd_str_has_ctrl(s, strlen(s)))
			return vd_err(err, VD_EINTERNAL, "acl_render",
			    "user '%s' has a malformed %s token", user, what);
		if (buf_add(b, " ") < 0 || buf_add(b, s) < 0)
			return vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
	}
	return 0;
}

static int
cmp_user(const void *a, const void *b)
{
	const char *x = json_string_value(json_object_get(*(json_t *const *)a, "username"));
	const char *y = json_string_value(json_object_get(*(json_t *const *)b, "username"));

	return strcmp(x ? x : "", y ? y : "");
}

int
vd_acl_render(const json_t *users, const char *admin_hash, char **out, struct vd_error *err)
{
	struct acl_buf b = { 0 };
	json_t **sorted = NULL;
	size_t n = json_array_size(users), i;
	char line[200];

	*out = NULL;
	if (!vd_acl_is_hash(admin_hash))
		return vd_err(err, VD_EINTERNAL, "acl_render", "admin password hash is malformed");
	if (n > VD_ACL_MAX_USERS)
		return vd_err(err, VD_EINVALID, "too_many_users", "at most %d ACL users", VD_ACL_MAX_USERS);
	sorted = calloc(n ? n : 1, sizeof(*sorted));
	if (sorted == NULL)
		return vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
	for (i = 0; i < n; i++)
		sorted[i] = json_array_get(users, i);
	qsort(sorted, n, sizeof(*sorted), cmp_user);
	/* without this line ACL LOAD recreates default as `on nopass` with every
	 * permission (C02) */
	snprintf(line, sizeof(line), "user default off resetpass resetkeys resetchannels -@all\n"
	    "user %s on #%s ~* &* +@all\n", VD_ACL_ADMIN_USER, admin_hash);
	if (buf_add(&b, line) < 0)
		goto oom;
	for (i = 0; i < n; i++) {
		const json_t *u = sorted[i];
		const char *name = json_string_value(json_object_get(u, "username"));
		const json_t *hashes = json_object_get(u, "password_hashes");
		size_t k;
		json_t *h;

		if (name == NULL || vd_acl_check_username("username", name, err) < 0)
			goto fail;
		if (i > 0 && strcmp(name, json_string_value(json_object_get(sorted[i - 1], "username"))) == 0) {
			/* since Valkey 7 a duplicate fails the whole load (C01) */
			vd_err(err, VD_ECONFLICT, "duplicate_user", "user '%s' appears twice", name);
			goto fail;
		}
		snprintf(line, sizeof(line), "user %s %s", name,
		    json_is_true(json_object_get(u, "enabled")) ? "on" : "off");
		if (buf_add(&b, line) < 0)
			goto oom;
		/* one fixed order: on/off, hashes or nopass, keys, channels,
		 * commands (C04) */
		if (json_is_true(json_object_get(u, "nopass"))) {
			if (buf_add(&b, " nopass") < 0)
				goto oom;
		} else {
			json_array_foreach(hashes, k, h) {
				const char *hs = json_string_value(h);

				if (hs == NULL || !vd_acl_is_hash(hs)) {
					vd_err(err, VD_EINTERNAL, "acl_render",
					    "user '%s' has a password hash that is not lowercase 64-hex", name);
					goto fail;
				}
				if (buf_add(&b, " #") < 0 || buf_add(&b, hs) < 0)
					goto oom;
			}
		}
		if (add_tokens(&b, json_object_get(u, "keys"), name, "key", err) < 0 ||
		    add_tokens(&b, json_object_get(u, "channels"), name, "channel", err) < 0 ||
		    add_tokens(&b, json_object_get(u, "permissions"), name, "permission", err) < 0)
			goto fail;
		if (buf_add(&b, "\n") < 0)
			goto oom;
	}
	free(sorted);
	*out = b.p;
	return 0;
oom:
	vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
fail:
	free(sorted);
	free(b.p);
	return -1;
}
