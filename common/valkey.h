/* valkey: short connections to a managed instance as Valdock's admin ACL
 * user, and reading fields of INFO. */
#ifndef VD_VALKEY_H
#define VD_VALKEY_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stddef.h>

#include "error.h"

/* Connects to host:port and authenticates as user; a new context the
 * caller frees with redisFree, or NULL with err set (503). */
redisContext *vd_valkey_connect(const char *host, int port, const char *user,
    const char *password, int timeout_ms, struct vd_error *err);

/* Waits until host:port answers PING as user, at most timeout_ms; 0 when it
 * did. keep_going (may be NULL) is asked between tries and stops the wait
 * early when it returns 0. */
int vd_valkey_wait_ready(const char *host, int port, const char *user, const char *password,
    int timeout_ms, int (*keep_going)(void *), void *arg, struct vd_error *err);

/* New reference: an array reply of name, value pairs (HGETALL, CONFIG GET)
 * as a JSON object of strings; NULL when r is not an array. */
json_t *vd_valkey_pairs_json(const redisReply *r);

/* The value of `field` in INFO text, into out. -1 when absent. */
int vd_valkey_info_field(const char *info, const char *field, char *out, size_t outsz);

/* Sum of keys=N over the db lines of INFO keyspace text. */
long long vd_valkey_info_keys(const char *info);

#endif
