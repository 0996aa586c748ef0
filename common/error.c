#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "str.h"

static const struct {
	int status;
	const char *code;
} err_map[VD_ERR_KIND_MAX] = {
	[VD_OK]          = { 200, "ok" },
	[VD_EBADREQ]     = { 400, "bad_request" },
	[VD_EUNAUTH]     = { 401, "unauthorized" },
	[VD_EFORBIDDEN]  = { 403, "forbidden" },
	[VD_ENOTFOUND]   = { 404, "not_found" },
	[VD_EMETHOD]     = { 405, "method_not_allowed" },
	[VD_ECONFLICT]   = { 409, "conflict" },
	[VD_ELENGTH]     = { 411, "length_required" },
	[VD_ETOOLARGE]   = { 413, "payload_too_large" },
	[VD_EMEDIA]      = { 415, "unsupported_media_type" },
	[VD_EINVALID]    = { 422, "invalid_field" },
	[VD_EINTERNAL]   = { 500, "internal_error" },
	[VD_EBADGATEWAY] = { 502, "dependency_error" },
	[VD_EUNAVAIL]    = { 503, "unavailable" },
	[VD_ETIMEOUT]    = { 504, "timeout" },
};

static void
err_fill(struct vd_error *err, enum vd_err_kind kind, const char *code,
    const char *field, const char *fmt, va_list ap)
{
	if (kind <= VD_OK || kind >= VD_ERR_KIND_MAX)
		kind = VD_EINTERNAL;
	err->kind = kind;
	snprintf(err->code, sizeof(err->code), "%s", code ? code : err_map[kind].code);
	snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
}

int
vd_err(struct vd_error *err, enum vd_err_kind kind, const char *code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	err_fill(err, kind, code, NULL, fmt, ap);
	va_end(ap);
	return -1;
}

int
vd_err_field(struct vd_error *err, const char *field, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	err_fill(err, VD_EINVALID, NULL, field, fmt, ap);
	va_end(ap);
	return -1;
}

void
vd_err_clear(struct vd_error *err)
{
	memset(err, 0, sizeof(*err));
}

int
vd_err_http_status(enum vd_err_kind kind)
{
	if (kind < 0 || kind >= VD_ERR_KIND_MAX)
		return 500;
	return err_map[kind].status;
}

const char *
vd_err_default_code(enum vd_err_kind kind)
{
	if (kind < 0 || kind >= VD_ERR_KIND_MAX)
		return "internal_error";
	return err_map[kind].code;
}

json_t *
vd_err_json(const struct vd_error *err)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	/* messages may echo outside input: never let a bad byte lose the error */
	json_object_set_new(o, "status", json_string("error"));
	json_object_set_new(o, "code", vd_json_string_lossy(err->code[0] ? err->code :
	    vd_err_default_code(err->kind)));
	json_object_set_new(o, "message", vd_json_string_lossy(err->message[0] ? err->message :
	    "unknown error"));
	if (err->field[0] != '\0')
		json_object_set_new(o, "field", vd_json_string_lossy(err->field));
	return o;
}
