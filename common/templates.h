/* templates: named sets of catalogued parameters an instance is created
 * from, the way ElastiCache has parameter groups. Built-ins ship with
 * Valdock and cannot be changed; others live in the store as
 * config:template:<name> = {"name","description","config"}. An instance
 * copies its template's parameters at creation, so a later change to the
 * template leaves running instances as they are. */
#ifndef VD_TEMPLATES_H
#define VD_TEMPLATES_H

#include <jansson.h>

#include "error.h"

#define VD_TEMPLATE_DESCRIPTION_MAX 200
#define VD_TEMPLATE_MAX_BODY (64 * 1024)

/* New reference: the built-in template name, or NULL. */
json_t *vd_template_builtin(const char *name);

/* New reference: every built-in, in order. */
json_t *vd_template_builtins(void);

/* Validates a template request body ({"name","description","config"}; with
 * fixed_name, the name comes from the path and the body may omit it) and
 * builds the record with canonical values. 422/403 naming the field. */
int vd_template_from_request(const json_t *body, const char *fixed_name, json_t **out,
    struct vd_error *err);

#endif
