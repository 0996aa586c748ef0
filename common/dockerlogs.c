#include <string.h>

#include "dockerlogs.h"

static const char replacement[] = "\xef\xbf\xbd";   /* U+FFFD */

void
vd_logs_init(struct vd_logs_parser *p, int tty)
{
	memset(p, 0, sizeof(*p));
	p->tty = tty;
	p->stream = VD_LOG_STDOUT;
}

/* Expected length of a sequence from its lead byte; 0 for a byte that
 * cannot start one. */
static size_t
seq_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return 2;
	if (c >= 0xe0 && c <= 0xef)
		return 3;
	if (c >= 0xf0 && c <= 0xf4)
		return 4;
	return 0;
}

/* 1 if s[0..n) is one well-formed sequence (no overlong, no surrogate). */
static int
seq_ok(const unsigned char *s, size_t n)
{
	unsigned cp;

	if (n == 1)
		return 1;
	cp = s[0] & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	return !((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff));
}

/* Emits the payload bytes of one stream, whole characters only. */
static void
emit_text(struct vd_logs_parser *p, enum vd_log_stream st, const unsigned char *s, size_t len,
    vd_logs_emit_fn emit, void *arg)
{
	unsigned char *carry = p->carry[st];
	size_t *have = &p->carry_have[st];
	size_t i = 0, start = 0;

	/* finish a character begun in an earlier read */
	while (*have > 0 && i < len) {
		size_t want = seq_len(carry[0]);

		if ((s[i] & 0xc0) != 0x80) {         /* cut short: not a continuation */
			emit(st, replacement, 3, arg);
			*have = 0;
			break;
		}
		carry[(*have)++] = s[i++];
		if (*have == want) {
			if (seq_ok(carry, want))
				emit(st, (const char *)carry, want, arg);
			else
				emit(st, replacement, 3, arg);
			*have = 0;
		}
	}
	start = i;
	while (i < len) {
		size_t n = seq_len(s[i]);

		if (n == 0 || (i + n <= len && !seq_ok(s + i, n))) {
			if (i > start)
				emit(st, (const char *)s + start, i - start, arg);
			emit(st, replacement, 3, arg);
			i++;
			start = i;
			continue;
		}
		if (i + n > len) {
			/* keep the start of a character whose rest is still to come, if
			 * what we have is a plausible prefix */
			size_t k;

			for (k = 1; i + k < len; k++)
				if ((s[i + k] & 0xc0) != 0x80)
					break;
			if (i + k < len) {
				if (i > start)
					emit(st, (const char *)s + start, i - start, arg);
				emit(st, replacement, 3, arg);
				i += k;
				start = i;
				continue;
			}
			if (i > start)
				emit(st, (const char *)s + start, i - start, arg);
			memcpy(carry, s + i, len - i);
			*have = len - i;
			return;
		}
		i += n;
	}
	if (i > start)
		emit(st, (const char *)s + start, i - start, arg);
}

int
vd_logs_feed(struct vd_logs_parser *p, const void *data, size_t len, vd_logs_emit_fn emit,
    void *arg)
{
	const unsigned char *s = data;

	if (p->broken)
		return -1;
	if (p->tty) {
		emit_text(p, VD_LOG_STDOUT, s, len, emit, arg);
		return 0;
	}
	while (len > 0) {
		if (p->frame_left == 0) {
			size_t take = 8 - p->hdr_have;

			if (take > len)
				take = len;
			memcpy(p->hdr + p->hdr_have, s, take);
			p->hdr_have += take;
			s += take;
			len -= take;
			if (p->hdr_have < 8)
				return 0;
			p->hdr_have = 0;
			if (p->hdr[0] > 2 || p->hdr[1] || p->hdr[2] || p->hdr[3]) {
				p->broken = 1;
				return -1;
			}
			p->stream = (enum vd_log_stream)p->hdr[0];
			p->frame_left = ((size_t)p->hdr[4] << 24) | ((size_t)p->hdr[5] << 16) |
			    ((size_t)p->hdr[6] << 8) | (size_t)p->hdr[7];
			continue;
		}
		{
			size_t take = p->frame_left < len ? p->frame_left : len;

			emit_text(p, p->stream, s, take, emit, arg);
			p->frame_left -= take;
			s += take;
			len -= take;
		}
	}
	return 0;
}

void
vd_logs_finish(struct vd_logs_parser *p, vd_logs_emit_fn emit, void *arg)
{
	for (int st = 0; st < 3; st++) {
		if (p->carry_have[st] > 0)
			emit((enum vd_log_stream)st, replacement, 3, arg);
		p->carry_have[st] = 0;
	}
}
