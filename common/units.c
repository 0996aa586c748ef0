#include <limits.h>
#include <stdio.h>
#include <strings.h>

#include "units.h"

static const struct {
	const char *suffix;
	long long mul;
} units[] = {
	{ "gb", 1024LL * 1024 * 1024 }, { "g", 1024LL * 1024 * 1024 },
	{ "mb", 1024LL * 1024 }, { "m", 1024LL * 1024 },
	{ "kb", 1024 }, { "k", 1024 }, { "b", 1 }, { "", 1 },
};

int
vd_units_parse_bytes(const char *s, long long *out)
{
	long long v = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (LLONG_MAX - (*p - '0')) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(p, units[i].suffix) == 0) {
			if (v > LLONG_MAX / units[i].mul)
				return -1;
			*out = v * units[i].mul;
			return 0;
		}
	}
	return -1;
}

void
vd_units_format_bytes(long long bytes, char *out, size_t outsz)
{
	if (bytes > 0 && bytes % (1024LL * 1024 * 1024) == 0)
		snprintf(out, outsz, "%lldgb", bytes / (1024LL * 1024 * 1024));
	else if (bytes > 0 && bytes % (1024LL * 1024) == 0)
		snprintf(out, outsz, "%lldmb", bytes / (1024LL * 1024));
	else if (bytes > 0 && bytes % 1024 == 0)
		snprintf(out, outsz, "%lldkb", bytes / 1024);
	else
		snprintf(out, outsz, "%lld", bytes);
}
