#include <stdio.h>
#include <string.h>

#include "storeurl.h"
#include "str.h"

#define URL_MAX 2048

/* Splits "user[:password]@" off the front of *rest when present. */
static int
url_userinfo(const char **rest, struct vd_storeurl *u, struct vd_error *err)
{
	const char *s = *rest, *at, *colon, *end;

	/* the userinfo ends at the last '@' before the path/host part */
	end = s + strcspn(s, "/?#");
	if (s[0] == '/' ) /* unix:///path: no userinfo */
		return 0;
	at = NULL;
	for (const char *p = s; p < end; p++)
		if (*p == '@')
			at = p;
	if (at == NULL)
		return 0;
	colon = memchr(s, ':', (size_t)(at - s));
	if (vd_pct_decode(s, (size_t)((colon ? colon : at) - s), u->user, sizeof(u->user), 0) < 0)
		return vd_err(err, VD_EINVALID, "bad_store_url", "store url: malformed user name");
	if (colon != NULL &&
	    vd_pct_decode(colon + 1, (size_t)(at - colon - 1), u->password, sizeof(u->password), 0) < 0)
		return vd_err(err, VD_EINVALID, "bad_store_url", "store url: malformed password");
	if (vd_str_has_ctrl(u->user, strlen(u->user)) || strchr(u->user, ' ') != NULL)
		return vd_err(err, VD_EINVALID, "bad_store_url", "store url: user name holds spaces or control characters");
	*rest = at + 1;
	return 0;
}

static int
url_unix(const char *s, struct vd_storeurl *u, struct vd_error *err)
{
	const char *q = strchr(s, '?');
	size_t plen = q ? (size_t)(q - s) : strlen(s);
	long db;

	if (plen == 0 || s[0] != '/')
		return vd_err(err, VD_EINVALID, "bad_store_url", "store url: unix socket path must be absolute");
	if (plen >= sizeof(u->path))
		return vd_err(err, VD_EINVALID, "bad_store_url", "store url: unix socket path longer than %zu bytes",
		    sizeof(u->path) - 1);
	memcpy(u->path, s, plen);
	u->path[plen] = '\0';
	if (vd_str_has_ctrl(u->path, plen))
		return vd_err(err, VD_EINVALID, "bad_store_url", "store url: control character in socket path");
	u->is_unix = 1;
	if (q != NULL) {
		if (strncmp(q, "?db=", 4) != 0 || vd_parse_long(q + 4, 0, 1023, &db) < 0)
			return vd_err(err, VD_EINVALID, "bad_store_url", "store url: only ?db=N (0-1023) is understood");
		u->db = (int)db;
	}
	return 0;
}

static int
url_tcp(const char *s, struct vd_storeurl *u, struct vd_error *err)
{
	const char *hend, *p;
	char num[16];
	long v;
	size_t hlen;

	if (s[0] == '[') {
		hend = strchr(s, ']');
		if (hend == NULL)
			return vd_err(err, VD_EINVALID, "bad_store_url", "store url: unclosed '[' in host");
		hlen = (size_t)(hend - s - 1);
		if (hlen == 0 || hlen >= sizeof(u->host))
			return vd_err(err, VD_EINVALID, "bad_store_url", "store url: bad host");
		memcpy(u->host, s + 1, hlen);
		p = hend + 1;
	} else {
		hlen = strcspn(s, ":/");
		if (hlen == 0 || hlen >= sizeof(u->host))
			return vd_err(err, VD_EINVALID, "bad_store_url", "store url: missing or overlong host");
		memcpy(u->host, s, hlen);
		p = s + hlen;
	}
	u->host[hlen] = '\0';
	for (size_t i = 0; i < hlen; i++) {
		char c = u->host[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '-' || c == ':' || c == '_'))
			return vd_err(err, VD_EINVALID, "bad_store_url", "store url: bad character in host");
	}
	u->port = 6379;
	if (*p == ':') {
		size_t n = strcspn(p + 1, "/");

		if (n == 0 || n >= sizeof(num))
			return vd_err(err, VD_EINVALID, "bad_store_url", "store url: bad port");
		memcpy(num, p + 1, n);
		num[n] = '\0';
		if (vd_parse_long(num, 1, 65535, &v) < 0)
			return vd_err(err, VD_EINVALID, "bad_store_url", "store url: port must be 1-65535");
		u->port = (int)v;
		p += 1 + n;
	}
	if (*p == '/' && p[1] != '\0') {
		if (vd_parse_long(p + 1, 0, 1023, &v) < 0)
			return vd_err(err, VD_EINVALID, "bad_store_url", "store url: database must be 0-1023");
		u->db = (int)v;
	} else if (*p != '\0' && strcmp(p, "/") != 0) {
		return vd_err(err, VD_EINVALID, "bad_store_url", "store url: unexpected text after host");
	}
	return 0;
}

int
vd_storeurl_parse(const char *url, struct vd_storeurl *u, struct vd_error *err)
{
	const char *rest;

	memset(u, 0, sizeof(*u));
	if (url == NULL || strlen(url) > URL_MAX)
		return vd_err(err, VD_EINVALID, "bad_store_url", "store url missing or too long");
	if (strncmp(url, "unix://", 7) == 0) {
		rest = url + 7;
		if (url_userinfo(&rest, u, err) < 0)
			return -1;
		return url_unix(rest, u, err);
	}
	if (strncmp(url, "valkey://", 9) == 0)
		rest = url + 9;
	else if (strncmp(url, "redis://", 8) == 0)
		rest = url + 8;
	else
		return vd_err(err, VD_EINVALID, "bad_store_url",
		    "store url must start with unix://, valkey:// or redis://");
	if (url_userinfo(&rest, u, err) < 0)
		return -1;
	return url_tcp(rest, u, err);
}

void
vd_storeurl_describe(const struct vd_storeurl *u, char *out, size_t outsz)
{
	if (u->is_unix)
		snprintf(out, outsz, "unix://%s%s%s", u->user[0] ? u->user : "",
		    u->user[0] ? "@" : "", u->path);
	else
		snprintf(out, outsz, "valkey://%s%s%s:%d/%d", u->user[0] ? u->user : "",
		    u->user[0] ? "@" : "", u->host, u->port, u->db);
}
