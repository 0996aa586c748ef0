/* error: the one error type of the program. A failing function fills a
 * struct vd_error and returns -1 (or NULL); the request layer turns it into
 * the common JSON error shape with the HTTP status mapped here, in one place.
 * Messages start lowercase, say what failed, and never hold a secret. */
#ifndef VD_ERROR_H
#define VD_ERROR_H

#include <jansson.h>

enum vd_err_kind {
	VD_OK = 0,
	VD_EBADREQ,      /* 400 malformed request */
	VD_EUNAUTH,      /* 401 */
	VD_EFORBIDDEN,   /* 403 */
	VD_ENOTFOUND,    /* 404 */
	VD_EMETHOD,      /* 405 */
	VD_ECONFLICT,    /* 409 */
	VD_ELENGTH,      /* 411 */
	VD_ETOOLARGE,    /* 413 */
	VD_EMEDIA,       /* 415 */
	VD_EINVALID,     /* 422 a field failed validation */
	VD_EINTERNAL,    /* 500 */
	VD_EBADGATEWAY,  /* 502 a dependency answered with an error */
	VD_EUNAVAIL,     /* 503 a dependency is down */
	VD_ETIMEOUT,     /* 504 a dependency did not answer in time */
	VD_ERR_KIND_MAX
};

struct vd_error {
	enum vd_err_kind kind;
	char code[48];     /* machine-readable, e.g. "port_in_use" */
	char field[64];    /* the offending field for 422, else empty */
	char message[512];
};

/* Fills err (if not NULL) and returns -1, so callers can write
 * `return vd_err(err, VD_EINVALID, "bad_name", "...")`. A NULL code takes the
 * kind's default code. */
int vd_err(struct vd_error *err, enum vd_err_kind kind, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Like vd_err, for a 422 naming the field. */
int vd_err_field(struct vd_error *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void vd_err_clear(struct vd_error *err);
int vd_err_http_status(enum vd_err_kind kind);
const char *vd_err_default_code(enum vd_err_kind kind);

/* New reference: {"status":"error","code":..,"message":..[,"field":..]}. */
json_t *vd_err_json(const struct vd_error *err);

#endif
