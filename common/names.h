/* names: the naming rule of instances (and templates): lowercase letters,
 * digits, '-' and '_', 1-63 characters, starting with a letter. The name is
 * also the instance id, so it reaches paths and container names only after
 * this check. */
#ifndef VD_NAMES_H
#define VD_NAMES_H

#include "error.h"

#define VD_NAME_MAX 63

/* 0 when value follows the rule; else a 422 naming field. */
int vd_name_check(const char *field, const char *value, struct vd_error *err);

#endif
