/* str: bounded string helpers used by every parser of outside input. */
#ifndef VD_STR_H
#define VD_STR_H

#include <stddef.h>
#include <jansson.h>

#include "error.h"

/* Copies src into dst (always terminated). Returns -1 if src did not fit. */
int vd_str_copy(char *dst, size_t size, const char *src);

/* Percent-decodes in[0..inlen) into out (terminated); '+' is kept as is
 * unless plus_is_space. Returns the decoded length, or -1 on a malformed
 * escape, a decoded NUL byte, or an out buffer too small. */
long vd_pct_decode(const char *in, size_t inlen, char *out, size_t outsz, int plus_is_space);

/* 1 if s[0..len) holds an ASCII control byte (< 0x20 or 0x7f). */
int vd_str_has_ctrl(const char *s, size_t len);

/* 1 if s[0..len) is well-formed UTF-8 (no overlongs, no surrogates). */
int vd_utf8_valid(const char *s, size_t len);

/* New reference: a JSON string of s with invalid UTF-8 and control bytes
 * replaced by '?', for echoing outside input in messages. */
json_t *vd_json_string_lossy(const char *s);

/* s, or fallback when s is NULL. */
const char *vd_str_or(const char *s, const char *fallback);

/* 0 when every key of obj is one of known (n of them); else a 422 naming
 * prefix+key and listing the known fields. */
int vd_json_only_fields(const json_t *obj, const char *const *known, size_t n, const char *prefix,
    struct vd_error *err);

/* Parses a whole decimal integer within [min, max]. Returns -1 otherwise. */
int vd_parse_long(const char *s, long min, long max, long *out);

#endif
