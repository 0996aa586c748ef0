#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "str.h"

int
vd_str_copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (size == 0)
		return -1;
	if (n >= size) {
		memcpy(dst, src, size - 1);
		dst[size - 1] = '\0';
		return -1;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long
vd_pct_decode(const char *in, size_t inlen, char *out, size_t outsz, int plus_is_space)
{
	size_t i, o = 0;

	for (i = 0; i < inlen; i++) {
		int c = (unsigned char)in[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= inlen)
				return -1;
			hi = hexval((unsigned char)in[i + 1]);
			lo = hexval((unsigned char)in[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = hi * 16 + lo;
			i += 2;
		} else if (c == '+' && plus_is_space) {
			c = ' ';
		}
		if (c == 0 || o + 1 >= outsz)
			return -1;
		out[o++] = (char)c;
	}
	if (outsz == 0)
		return -1;
	out[o] = '\0';
	return (long)o;
}

int
vd_str_has_ctrl(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return 1;
	}
	return 0;
}

/* Length of the UTF-8 sequence starting at s (at most len bytes), or 0 if
 * it is malformed. */
static size_t
utf8_seq(const unsigned char *s, size_t len)
{
	unsigned cp;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

int
vd_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;

	while (i < len) {
		n = utf8_seq(p + i, len - i);
		if (n == 0)
			return 0;
		i += n;
	}
	return 1;
}

json_t *
vd_json_string_lossy(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s), i = 0, o = 0, n;
	char *buf;
	json_t *j;

	/* the common case, clean text, without a copy */
	if (!vd_str_has_ctrl(s, len) && vd_utf8_valid(s, len))
		return json_stringn_nocheck(s, len);

	buf = malloc(len + 1);
	if (buf == NULL)
		return NULL;
	while (i < len) {
		n = utf8_seq(p + i, len - i);
		if (n == 0 || (n == 1 && (p[i] < 0x20 || p[i] == 0x7f))) {
			buf[o++] = '?';
			i++;
			continue;
		}
		memcpy(buf + o, p + i, n);
		o += n;
		i += n;
	}
	j = json_stringn(buf, o);
	free(buf);
	return j;
}

int
vd_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (s == NULL || *s == '\0' || (*s != '-' && (*s < '0' || *s > '9')))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

const char *
vd_str_or(const char *s, const char *fallback)
{
	return s != NULL ? s : fallback;
}

int
vd_json_only_fields(const json_t *obj, const char *const *known, size_t n, const char *prefix,
    struct vd_error *err)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v) {
		char field[96], list[256];
		size_t i, o = 0;

		for (i = 0; i < n; i++)
			if (strcmp(key, known[i]) == 0)
				break;
		if (i < n)
			continue;
		list[0] = '\0';
		for (i = 0; i < n && o < sizeof(list); i++)
			o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", known[i]);
		snprintf(field, sizeof(field), "%s%.64s", prefix, key);
		return vd_err_field(err, field, "unknown field '%s' (known: %s)", field, list);
	}
	return 0;
}
