/* units: sizes as operators write them ("256mb", "1gb", "512k", "1048576"),
 * parsed the way Valkey reads its config: k/kb/m/mb/g/gb, powers of 1024,
 * case-insensitive. */
#ifndef VD_UNITS_H
#define VD_UNITS_H

#include <stddef.h>

/* Parses s into bytes. Returns -1 for anything else, or an overflow. */
int vd_units_parse_bytes(const char *s, long long *out);

/* Writes bytes in the largest exact unit ("256mb", "1gb", "1000"). */
void vd_units_format_bytes(long long bytes, char *out, size_t outsz);

#endif
