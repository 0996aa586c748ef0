/* store: the worker's connection to the internal Valkey store (hiredis).
 * One connection per process, opened lazily, checked before each use and
 * re-opened after a failure, so a worker keeps serving once the store is back.
 * Every user-supplied value travels as a binary-safe argv element. */
#ifndef VD_STORE_H
#define VD_STORE_H

#include <hiredis/hiredis.h>

#include "error.h"
#include "storeurl.h"

#define VD_SCHEMA_VERSION 1

struct vd_store;

/* Copies url; connects on first use. Timeouts in milliseconds. */
struct vd_store *vd_store_new(const struct vd_storeurl *url, int connect_ms, int command_ms);
void vd_store_free(struct vd_store *st);

/* Runs one command. Returns a new reply the caller frees with
 * freeReplyObject, or NULL with err set: 503 "store_unavailable" when the
 * store cannot be reached, 500 "store_error" when it answered an error. */
redisReply *vd_store_cmd(struct vd_store *st, struct vd_error *err, int argc,
    const char **argv, const size_t *lens);

/* The same with NUL-terminated string arguments, ending with NULL. */
redisReply *vd_store_cmdv(struct vd_store *st, struct vd_error *err, ...);

/* Closes the connection (the next command opens a new one): after a
 * failure inside MULTI, so no later command lands in a dead transaction. */
void vd_store_reset(struct vd_store *st);

/* PING; 0 when the store answers PONG. */
int vd_store_ping(struct vd_store *st, struct vd_error *err);

/* Sets the schema version key when absent; refuses a store written by a newer
 * Valdock. */
int vd_store_schema_init(struct vd_store *st, struct vd_error *err);

/* Value of one field of INFO (e.g. "valkey_version") into out. */
int vd_store_info_field(struct vd_store *st, const char *section, const char *field,
    char *out, size_t outsz, struct vd_error *err);

#endif
