#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* Appends " tok" for each string of the array. Tokens hold no whitespace
 * but the single spaces between the rules of a "(...)" selector (checked
 * when the record was made; checked again here). */
static int
add_tokens(struct acl_buf *b, const json_t *arr, const char *user, const char *what,
    struct vd_error *err)
{
	size_t i;
	json_t *t;

	json_array_foreach(arr, i, t) {
		const char *s = json_string_value(t);

		int selector = s != NULL && s[0] == '(' && s[strlen(s) - 1] == ')';

		if (s == NULL || *s == '\0' || (!selector && strchr(s, ' ') != NULL) ||
		    vd_str_has_ctrl(s, strlen(s)))
			return vd_err(err, VD_EINTERNAL, "acl_render",
			    "user '%s' has a malformed %s token", user, what);
		if (buf_add(b, " ") < 0 || buf_add(b, s) < 0)
			return vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
	}
	return 0;
}

int
vd_acl_user_line(const json_t *u, char **out, struct vd_error *err)
{
	const char *name = json_string_value(json_object_get(u, "username"));
	const json_t *hashes = json_object_get(u, "password_hashes");
	struct acl_buf b = { 0 };
	char head[VD_ACL_NAME_MAX + 16];
	size_t k;
	json_t *h;

	*out = NULL;
	if (name == NULL || vd_acl_check_username("username", name, err) < 0)
		return -1;
	snprintf(head, sizeof(head), "user %s %s", name,
	    json_is_true(json_object_get(u, "enabled")) ? "on" : "off");
	if (buf_add(&b, head) < 0)
		goto oom;
	/* one fixed order: on/off, hashes or nopass, keys, channels, commands
	 * (C04) */
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
	*out = b.p;
	return 0;
oom:
	vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
fail:
	free(b.p);
	return -1;
}

/* The user a line is for: "user NAME ..." -> NAME, length in *n. */
static const char *
line_user(const char *line, size_t *n)
{
	const char *name = line + 5;

	*n = strcspn(name, " \n");
	return name;
}

static int
cmp_line(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	size_t nx, ny;
	const char *px = line_user(x, &nx), *py = line_user(y, &ny);
	int c = memcmp(px, py, nx < ny ? nx : ny);

	return c != 0 ? c : (nx > ny) - (nx < ny);
}

int
vd_acl_render_lines(const char **lines, size_t n, const char *admin_hash, char **out,
    struct vd_error *err)
{
	struct acl_buf b = { 0 };
	const char **sorted = NULL;
	char head[200];
	size_t i;

	*out = NULL;
	if (!vd_acl_is_hash(admin_hash))
		return vd_err(err, VD_EINTERNAL, "acl_render", "admin password hash is malformed");
	if (n > VD_ACL_MAX_USERS)
		return vd_err(err, VD_EINVALID, "too_many_users", "at most %d ACL users", VD_ACL_MAX_USERS);
	sorted = calloc(n ? n : 1, sizeof(*sorted));
	if (sorted == NULL)
		return vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
	for (i = 0; i < n; i++) {
		if (strncmp(lines[i], "user ", 5) != 0 || strchr(lines[i], '\n') != NULL) {
			vd_err(err, VD_EINTERNAL, "acl_render", "a stored ACL line is malformed");
			goto fail;
		}
		sorted[i] = lines[i];
	}
	qsort(sorted, n, sizeof(*sorted), cmp_line);
	/* without this line ACL LOAD recreates default as `on nopass` with every
	 * permission (C02) */
	snprintf(head, sizeof(head), "user default off resetpass resetkeys resetchannels -@all\n"
	    "user %s on #%s ~* &* +@all\n", VD_ACL_ADMIN_USER, admin_hash);
	if (buf_add(&b, head) < 0)
		goto oom;
	for (i = 0; i < n; i++) {
		if (i > 0 && cmp_line(&sorted[i - 1], &sorted[i]) == 0) {
			size_t len;
			const char *name = line_user(sorted[i], &len);

			/* since Valkey 7 a duplicate fails the whole load (C01) */
			vd_err(err, VD_ECONFLICT, "duplicate_user", "user '%.*s' appears twice", (int)len, name);
			goto fail;
		}
		if (buf_add(&b, sorted[i]) < 0 || buf_add(&b, "\n") < 0)
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

int
vd_acl_render(const json_t *users, const char *admin_hash, char **out, struct vd_error *err)
{
	size_t n = json_array_size(users), i;
	char **lines;
	int ret = -1;

	*out = NULL;
	if (n > VD_ACL_MAX_USERS)
		return vd_err(err, VD_EINVALID, "too_many_users", "at most %d ACL users", VD_ACL_MAX_USERS);
	lines = calloc(n ? n : 1, sizeof(*lines));
	if (lines == NULL)
		return vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
	for (i = 0; i < n; i++)
		if (vd_acl_user_line(json_array_get(users, i), &lines[i], err) < 0)
			goto done;
	ret = vd_acl_render_lines((const char **)lines, n, admin_hash, out, err);
done:
	for (i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
	return ret;
}

/* ---- rules ---- */

static const char *const acl_categories[] = {
	"all", "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
	"hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous",
	"connection", "transaction", "scripting",
};

/* Tokens that change passwords, on/off or wipe a user: never accepted in a
 * rule field, whatever its kind. */
static const char *const acl_forbidden[] = {
	"on", "off", "nopass", "resetpass", "reset", "resetkeys", "resetchannels", "clearselectors",
	"sanitize-payload", "skip-sanitize-payload",
};

static int
pattern_ok(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || n > VD_ACL_PATTERN_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] <= 0x20 || p[i] == 0x7f || p[i] == '(' || p[i] == ')')
			return 0;
	return vd_utf8_valid(p, n);
}

static int
command_name_ok(const char *c, size_t n)
{
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = c[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_' || ch == '.'))
			return 0;
	}
	return 1;
}

/* A token that sets or names a password: its text is never echoed. */
static int
secret_like(const char *tok)
{
	return tok[0] == '>' || tok[0] == '<' || tok[0] == '#' || tok[0] == '!';
}

/* Names a refused token in a message: itself, or its kind when it may be
 * a secret. */
static const char *
token_shown(const char *tok, char *buf, size_t bufsz)
{
	if (secret_like(tok))
		snprintf(buf, bufsz, "a token starting with '%c'", tok[0]);
	else
		snprintf(buf, bufsz, "'%.64s'", tok);
	return buf;
}

/* Why tok is not a rule of kind, or NULL when it is one. */
static const char *
rule_check(enum vd_acl_field kind, const char *tok)
{
	for (size_t i = 0; i < sizeof(acl_forbidden) / sizeof(acl_forbidden[0]); i++)
		if (strcasecmp(tok, acl_forbidden[i]) == 0)
			return "is not a rule this field takes (passwords, on/off and resets have their own fields)";
	if (secret_like(tok))
		return "looks like a password (not shown); passwords go in the password fields";
	switch (kind) {
	case VD_ACL_KEYS:
		if (strcmp(tok, "allkeys") == 0)
			return NULL;
		if (tok[0] == '~')
			return pattern_ok(tok + 1) ? NULL : "needs a key pattern without spaces after '~'";
		if (tok[0] == '%') {
			const char *t = strchr(tok, '~');
			size_t n = t ? (size_t)(t - tok - 1) : 0;

			if (t == NULL || n == 0 || n > 2 || strspn(tok + 1, "RW") != n)
				return "must be %R~pattern, %W~pattern or %RW~pattern";
			return pattern_ok(t + 1) ? NULL : "needs a key pattern after '~'";
		}
		return "must be ~pattern, %R~pattern, %W~pattern, %RW~pattern or allkeys";
	case VD_ACL_CHANNELS:
		if (strcmp(tok, "allchannels") == 0)
			return NULL;
		if (tok[0] == '&')
			return pattern_ok(tok + 1) ? NULL : "needs a channel pattern without spaces after '&'";
		return "must be &pattern or allchannels";
	case VD_ACL_PERMISSIONS:
		if (strcmp(tok, "allcommands") == 0 || strcmp(tok, "nocommands") == 0)
			return NULL;
		if (tok[0] != '+' && tok[0] != '-')
			return "must be +command, -command, +@category, -@category, +command|subcommand, "
			    "allcommands or nocommands";
		if (tok[1] == '@') {
			for (size_t i = 0; i < sizeof(acl_categories) / sizeof(acl_categories[0]); i++)
				if (strcmp(tok + 2, acl_categories[i]) == 0)
					return NULL;
			return "names an unknown command category";
		} else {
			const char *bar = strchr(tok + 1, '|');

			if (bar == NULL)
				return command_name_ok(tok + 1, strlen(tok + 1)) ? NULL : "names no valid command";
			if (!command_name_ok(tok + 1, (size_t)(bar - tok - 1)) ||
			    !command_name_ok(bar + 1, strlen(bar + 1)))
				return "must be +command|subcommand";
			return NULL;
		}
	}
	return "is not understood";
}

/* Splits a string on whitespace, keeping "(...)" selectors whole. */
static int
split_rules(const char *s, json_t *out, const char *field, struct vd_error *err)
{
	const char *p = s;

	while (*p != '\0') {
		const char *start;
		size_t n;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		start = p;
		if (*p == '(') {
			const char *close = strchr(p, ')');
			const char *open2 = strchr(p + 1, '(');

			if (close == NULL || (open2 != NULL && open2 < close))
				return vd_err_field(err, field, "%s: unbalanced '(' in a selector", field);
			p = close + 1;
			if (*p != '\0' && *p != ' ' && *p != '\t')
				return vd_err_field(err, field, "%s: a selector must be followed by a space", field);
		} else {
			while (*p != '\0' && *p != ' ' && *p != '\t') {
				if (*p == '(' || *p == ')')
					return vd_err_field(err, field, "%s: unbalanced parentheses", field);
				p++;
			}
		}
		n = (size_t)(p - start);
		json_array_append_new(out, json_stringn(start, n));
	}
	return 0;
}

/* Checks one selector "(rule rule ...)" of the permissions field: keys,
 * channels and commands inside, nothing else, and renders it with single
 * spaces into a new string. */
static int
selector_check(const char *sel, const char *field, char **norm, struct vd_error *err)
{
	size_t n = strlen(sel);
	char *inner, *tok, *save = NULL, *out;
	size_t olen = 0;

	*norm = NULL;
	if (n < 3 || sel[0] != '(' || sel[n - 1] != ')')
		return vd_err_field(err, field, "%s: a selector is (rules...) and cannot be empty", field);
	inner = strndup(sel + 1, n - 2);
	out = malloc(n + 1);
	if (inner == NULL || out == NULL) {
		free(inner);
		free(out);
		return vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
	}
	out[olen++] = '(';
	for (tok = strtok_r(inner, " \t", &save); tok != NULL; tok = strtok_r(NULL, " \t", &save)) {
		enum vd_acl_field k = tok[0] == '~' || tok[0] == '%' || strcmp(tok, "allkeys") == 0 ?
		    VD_ACL_KEYS : tok[0] == '&' || strcmp(tok, "allchannels") == 0 ? VD_ACL_CHANNELS :
		    VD_ACL_PERMISSIONS;
		const char *why = rule_check(k, tok);

		if (why != NULL) {
			char shown[96];

			vd_err_field(err, field, "%s: %s in a selector %s", field,
			    token_shown(tok, shown, sizeof(shown)), why);
			free(inner);
			free(out);
			return -1;
		}
		if (olen > 1)
			out[olen++] = ' ';
		memcpy(out + olen, tok, strlen(tok));
		olen += strlen(tok);
	}
	free(inner);
	if (olen == 1) {
		free(out);
		return vd_err_field(err, field, "%s: a selector cannot be empty", field);
	}
	out[olen++] = ')';
	out[olen] = '\0';
	*norm = out;
	return 0;
}

int
vd_acl_parse_rules(enum vd_acl_field kind, const char *field, const json_t *value, json_t **out,
    struct vd_error *err)
{
	json_t *raw = json_array(), *res = json_array(), *v;
	size_t i;

	*out = NULL;
	if (json_is_string(value)) {
		const char *s = json_string_value(value);

		if (vd_str_has_ctrl(s, strlen(s)) && strpbrk(s, "\r\n\v\f") != NULL)
			goto ctrl;
		if (split_rules(s, raw, field, err) < 0)
			goto fail;
	} else if (json_is_array(value)) {
		json_array_foreach(value, i, v) {
			const char *s = json_string_value(v);

			if (s == NULL || *s == '\0') {
				vd_err_field(err, field, "%s must hold non-empty strings", field);
				goto fail;
			}
			if (s[0] == '(')
				json_array_append_new(raw, json_string(s));
			else if (strpbrk(s, " \t") != NULL) {
				vd_err_field(err, field, "%s: '%.64s' holds whitespace (one rule per element)",
				    field, s);
				goto fail;
			} else
				json_array_append_new(raw, json_string(s));
		}
	} else {
		vd_err_field(err, field, "%s must be a space-separated string or an array of strings", field);
		goto fail;
	}
	if (json_array_size(raw) > VD_ACL_MAX_RULES) {
		vd_err_field(err, field, "%s holds more than %d rules", field, VD_ACL_MAX_RULES);
		goto fail;
	}
	json_array_foreach(raw, i, v) {
		const char *tok = json_string_value(v);
		const char *why;

		if (vd_str_has_ctrl(tok, strlen(tok)))
			goto ctrl;
		if (tok[0] == '(') {
			char *norm;

			if (kind != VD_ACL_PERMISSIONS) {
				vd_err_field(err, field, "%s: selectors go in permissions", field);
				goto fail;
			}
			if (selector_check(tok, field, &norm, err) < 0)
				goto fail;
			json_array_append_new(res, json_string(norm));
			free(norm);
			continue;
		}
		if ((why = rule_check(kind, tok)) != NULL) {
			if (!vd_utf8_valid(tok, strlen(tok)))
				vd_err_field(err, field, "%s: a rule is not valid UTF-8", field);
			else {
				char shown[96];

				vd_err_field(err, field, "%s: %s %s", field, token_shown(tok, shown, sizeof(shown)),
				    why);
			}
			goto fail;
		}
		json_array_append_new(res, json_string(tok));
	}
	json_decref(raw);
	*out = res;
	return 0;
ctrl:
	vd_err_field(err, field, "%s holds a control character (newline, tab in a token, ...)", field);
fail:
	json_decref(raw);
	json_decref(res);
	return -1;
}

/* ---- user records ---- */

static int
add_password_hash(json_t *hashes, const char *field, const char *pw, int min_len,
    struct vd_error *err)
{
	char h[65];
	size_t i;
	json_t *v;

	if (vd_acl_check_password(field, pw, min_len, err) < 0)
		return -1;
	vd_crypto_sha256_hex(pw, strlen(pw), h);
	json_array_foreach(hashes, i, v)
		if (strcmp(json_string_value(v), h) == 0)
			return vd_err_field(err, field, "%s: the user already has this password", field);
	if (json_array_size(hashes) >= VD_ACL_MAX_PASSWORDS)
		return vd_err_field(err, field, "a user has at most %d passwords", VD_ACL_MAX_PASSWORDS);
	json_array_append_new(hashes, json_string(h));
	return 0;
}


static int
set_rules(json_t *user, const json_t *body, const char *key, enum vd_acl_field kind,
    const char *prefix, struct vd_error *err)
{
	const json_t *v = json_object_get(body, key);
	char field[96];
	json_t *rules;

	if (v == NULL)
		return 0;
	snprintf(field, sizeof(field), "%s%s", prefix, key);
	if (vd_acl_parse_rules(kind, field, v, &rules, err) < 0)
		return -1;
	json_object_set_new(user, key, rules);
	return 0;
}

int
vd_acl_user_from_request(const json_t *body, int min_len, int full_access_default, long long now,
    const char *prefix, json_t **out, struct vd_error *err)
{
	static const char *const known[] = { "username", "password", "passwords", "nopass",
	    "permissions", "keys", "channels", "enabled" };
	const char *name = json_string_value(json_object_get(body, "username"));
	const json_t *pw = json_object_get(body, "password"), *pws = json_object_get(body, "passwords");
	const json_t *nopass = json_object_get(body, "nopass"), *enabled = json_object_get(body, "enabled");
	json_t *user = NULL, *hashes;
	char field[96];
	size_t i;
	json_t *v;

	*out = NULL;
	if (!json_is_object(body))
		return vd_err(err, VD_EBADREQ, "bad_request", "an ACL user must be a JSON object");
	if (vd_json_only_fields(body, known, sizeof(known) / sizeof(known[0]), prefix, err) < 0)
		return -1;
	snprintf(field, sizeof(field), "%susername", prefix);
	if (name == NULL)
		return vd_err_field(err, field, "%s is required (a string)", field);
	if (vd_acl_check_username(field, name, err) < 0)
		return -1;
	snprintf(field, sizeof(field), "%snopass", prefix);
	if (nopass != NULL && !json_is_boolean(nopass))
		return vd_err_field(err, field, "%s must be true or false", field);
	if (json_is_true(nopass) && (pw != NULL || pws != NULL))
		return vd_err_field(err, field, "%s and a password exclude each other", field);
	snprintf(field, sizeof(field), "%senabled", prefix);
	if (enabled != NULL && !json_is_boolean(enabled))
		return vd_err_field(err, field, "%s must be true or false", field);
	user = json_pack("{s:s,s:b,s:b,s:[],s:[],s:[],s:[],s:I,s:I}", "username", name,
	    "enabled", enabled ? json_is_true(enabled) : 1, "nopass", json_is_true(nopass),
	    "password_hashes", "keys", "channels", "permissions", "created_at", (json_int_t)now,
	    "updated_at", (json_int_t)now);
	if (user == NULL)
		return vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
	hashes = json_object_get(user, "password_hashes");
	if (pw != NULL) {
		snprintf(field, sizeof(field), "%spassword", prefix);
		if (!json_is_string(pw)) {
			vd_err_field(err, field, "%s must be a string", field);
			goto fail;
		}
		if (add_password_hash(hashes, field, json_string_value(pw), min_len, err) < 0)
			goto fail;
	}
	if (pws != NULL) {
		snprintf(field, sizeof(field), "%spasswords", prefix);
		if (!json_is_array(pws)) {
			vd_err_field(err, field, "%s must be an array of strings", field);
			goto fail;
		}
		json_array_foreach(pws, i, v) {
			if (!json_is_string(v)) {
				vd_err_field(err, field, "%s must be an array of strings", field);
				goto fail;
			}
			if (add_password_hash(hashes, field, json_string_value(v), min_len, err) < 0)
				goto fail;
		}
	}
	if (full_access_default && json_object_get(body, "permissions") == NULL &&
	    json_object_get(body, "keys") == NULL && json_object_get(body, "channels") == NULL) {
		json_object_set_new(user, "permissions", json_pack("[s]", "+@all"));
		json_object_set_new(user, "keys", json_pack("[s]", "~*"));
		json_object_set_new(user, "channels", json_pack("[s]", "&*"));
	} else if (!full_access_default && (json_object_get(body, "permissions") == NULL ||
	    json_object_get(body, "keys") == NULL)) {
		if (json_object_get(body, "permissions") == NULL) {
			snprintf(field, sizeof(field), "%spermissions", prefix);
			vd_err_field(err, field, "%s is required (e.g. \"+@read -@dangerous\")", field);
		} else {
			snprintf(field, sizeof(field), "%skeys", prefix);
			vd_err_field(err, field, "%s is required (e.g. \"~app:*\", or \"allkeys\")", field);
		}
		goto fail;
	}
	if (set_rules(user, body, "permissions", VD_ACL_PERMISSIONS, prefix, err) < 0 ||
	    set_rules(user, body, "keys", VD_ACL_KEYS, prefix, err) < 0 ||
	    set_rules(user, body, "channels", VD_ACL_CHANNELS, prefix, err) < 0)
		goto fail;
	*out = user;
	return 0;
fail:
	json_decref(user);
	return -1;
}

int
vd_acl_user_update(json_t *user, const json_t *body, int min_len, long long now,
    int *end_sessions, struct vd_error *err)
{
	static const char *const known[] = { "password", "add_password", "remove_password", "nopass",
	    "permissions", "keys", "channels", "enabled" };
	const json_t *pw = json_object_get(body, "password"), *add = json_object_get(body, "add_password");
	const json_t *rm = json_object_get(body, "remove_password"), *nopass = json_object_get(body, "nopass");
	const json_t *enabled = json_object_get(body, "enabled");
	json_t *next, *hashes;

	*end_sessions = 0;
	if (!json_is_object(body))
		return vd_err(err, VD_EBADREQ, "bad_request", "an ACL change must be a JSON object");
	if (vd_json_only_fields(body, known, sizeof(known) / sizeof(known[0]), "", err) < 0)
		return -1;
	if (json_object_size(body) == 0)
		return vd_err(err, VD_EBADREQ, "empty_change", "nothing to change: give at least one field");
	if ((pw && !json_is_string(pw)) || (add && !json_is_string(add)) || (rm && !json_is_string(rm)))
		return vd_err_field(err, pw && !json_is_string(pw) ? "password" : add && !json_is_string(add) ?
		    "add_password" : "remove_password", "passwords must be strings");
	if (nopass != NULL && !json_is_boolean(nopass))
		return vd_err_field(err, "nopass", "nopass must be true or false");
	if (enabled != NULL && !json_is_boolean(enabled))
		return vd_err_field(err, "enabled", "enabled must be true or false");
	if (json_is_true(nopass) && (pw || add))
		return vd_err_field(err, "nopass", "nopass and a password exclude each other");
	next = json_deep_copy(user);
	if (next == NULL)
		return vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
	hashes = json_object_get(next, "password_hashes");
	if (pw != NULL) {
		json_array_clear(hashes);
		if (add_password_hash(hashes, "password", json_string_value(pw), min_len, err) < 0)
			goto fail;
		json_object_set_new(next, "nopass", json_false());
		*end_sessions = 1;
	}
	if (add != NULL) {
		if (add_password_hash(hashes, "add_password", json_string_value(add), min_len, err) < 0)
			goto fail;
		json_object_set_new(next, "nopass", json_false());
	}
	if (rm != NULL) {
		char h[65];
		size_t i, found = (size_t)-1;
		json_t *v;

		vd_crypto_sha256_hex(json_string_value(rm), strlen(json_string_value(rm)), h);
		json_array_foreach(hashes, i, v)
			if (strcmp(json_string_value(v), h) == 0)
				found = i;
		if (found == (size_t)-1) {
			vd_err_field(err, "remove_password", "the user has no such password");
			goto fail;
		}
		json_array_remove(hashes, found);
		*end_sessions = 1;
	}
	if (nopass != NULL) {
		if (json_is_true(nopass))
			json_array_clear(hashes);
		if (json_is_true(json_object_get(next, "nopass")) && !json_is_true(nopass))
			*end_sessions = 1;
		json_object_set(next, "nopass", (json_t *)nopass);
	}
	if (enabled != NULL) {
		if (!json_is_true(enabled))
			*end_sessions = 1;
		json_object_set(next, "enabled", (json_t *)enabled);
	}
	if (set_rules(next, body, "permissions", VD_ACL_PERMISSIONS, "", err) < 0 ||
	    set_rules(next, body, "keys", VD_ACL_KEYS, "", err) < 0 ||
	    set_rules(next, body, "channels", VD_ACL_CHANNELS, "", err) < 0)
		goto fail;
	/* narrowed rules take effect for new commands of open sessions too, so
	 * only password and on/off changes end sessions */
	json_object_set_new(next, "updated_at", json_integer(now));
	json_object_update(user, next);
	json_decref(next);
	return 0;
fail:
	json_decref(next);
	return -1;
}

json_t *
vd_acl_user_view(const json_t *user)
{
	size_t npw = json_array_size(json_object_get(user, "password_hashes"));
	int nopass = json_is_true(json_object_get(user, "nopass"));
	int enabled = json_is_true(json_object_get(user, "enabled"));
	json_t *o;

	o = json_pack("{s:O,s:b,s:b,s:I,s:O,s:O,s:O,s:O,s:O,s:b}",
	    "username", json_object_get(user, "username"), "enabled", enabled, "nopass", nopass,
	    "password_count", (json_int_t)npw,
	    "permissions", json_object_get(user, "permissions"), "keys", json_object_get(user, "keys"),
	    "channels", json_object_get(user, "channels"),
	    "created_at", json_object_get(user, "created_at"),
	    "updated_at", json_object_get(user, "updated_at"),
	    "can_login", enabled && (nopass || npw > 0));
	if (o != NULL && enabled && !nopass && npw == 0)
		json_object_set_new(o, "warning", json_string("the user has no password and no nopass: "
		    "nobody can log in as it"));
	return o;
}
