#include <string.h>

#include "names.h"

int
vd_name_check(const char *field, const char *v, struct vd_error *err)
{
	size_t n = strlen(v);

	if (n == 0 || n > VD_NAME_MAX || v[0] < 'a' || v[0] > 'z')
		goto bad;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			goto bad;
	}
	return 0;
bad:
	return vd_err_field(err, field,
	    "%s must be 1-%d characters of lowercase letters, digits, '-' or '_', starting with a letter",
	    field, VD_NAME_MAX);
}
