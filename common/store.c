#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "str.h"
#include "valkey.h"

#define STORE_MAX_ARGS 64

struct vd_store {
	struct vd_storeurl url;
	int connect_ms;
	int command_ms;
	redisContext *ctx;
};

struct vd_store *
vd_store_new(const struct vd_storeurl *url, int connect_ms, int command_ms)
{
	struct vd_store *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	st->url = *url;
	st->connect_ms = connect_ms;
	st->command_ms = command_ms;
	return st;
}

static void
store_drop(struct vd_store *st)
{
	if (st->ctx != NULL)
		redisFree(st->ctx);
	st->ctx = NULL;
}

void
vd_store_reset(struct vd_store *st)
{
	store_drop(st);
}

void
vd_store_free(struct vd_store *st)
{
	if (st == NULL)
		return;
	store_drop(st);
	explicit_bzero(st->url.password, sizeof(st->url.password));
	free(st);
}

static struct timeval
ms_to_tv(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	return tv;
}

/* A connection the server closed while we were idle reads as EOF at once:
 * detect that before sending, instead of failing the next request. */
static int
store_conn_alive(redisContext *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };

	if (c->err)
		return 0;
	if (poll(&p, 1, 0) == 0)
		return 1;
	return 0;
}

static int
store_connect(struct vd_store *st, struct vd_error *err)
{
	struct timeval tv = ms_to_tv(st->connect_ms);
	redisReply *r;
	char where[512];

	if (st->ctx != NULL && store_conn_alive(st->ctx))
		return 0;
	store_drop(st);
	vd_storeurl_describe(&st->url, where, sizeof(where));
	if (st->url.is_unix)
		st->ctx = redisConnectUnixWithTimeout(st->url.path, tv);
	else
		st->ctx = redisConnectWithTimeout(st->url.host, st->url.port, tv);
	if (st->ctx == NULL || st->ctx->err) {
		vd_err(err, VD_EUNAVAIL, "store_unavailable", "store %s is unreachable: %s", where,
		    st->ctx ? st->ctx->errstr : "out of memory");
		store_drop(st);
		return -1;
	}
	tv = ms_to_tv(st->command_ms);
	redisSetTimeout(st->ctx, tv);
	if (st->url.password[0] != '\0') {
		if (st->url.user[0] != '\0')
			r = redisCommand(st->ctx, "AUTH %s %s", st->url.user, st->url.password);
		else
			r = redisCommand(st->ctx, "AUTH %s", st->url.password);
		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			/* the server's text says why (WRONGPASS...), never the password */
			vd_err(err, VD_EUNAVAIL, "store_unavailable", "store %s refused authentication: %s",
			    where, r ? r->str : st->ctx->errstr);
			if (r)
				freeReplyObject(r);
			store_drop(st);
			return -1;
		}
		freeReplyObject(r);
	}
	if (st->url.db != 0) {
		r = redisCommand(st->ctx, "SELECT %d", st->url.db);
		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			vd_err(err, VD_EUNAVAIL, "store_unavailable", "store %s: cannot select db %d",
			    where, st->url.db);
			if (r)
				freeReplyObject(r);
			store_drop(st);
			return -1;
		}
		freeReplyObject(r);
	}
	return 0;
}

redisReply *
vd_store_cmd(struct vd_store *st, struct vd_error *err, int argc, const char **argv,
    const size_t *lens)
{
	redisReply *r;

	if (store_connect(st, err) < 0)
		return NULL;
	r = redisCommandArgv(st->ctx, argc, argv, lens);
	if (r == NULL) {
		vd_err(err, VD_EUNAVAIL, "store_unavailable", "store connection failed during %s: %s", argv[0],
		    st->ctx->errstr);
		store_drop(st);
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		/* LOADING and similar mean the store is not ready, not that we erred */
		int unavailable = strncmp(r->str, "LOADING", 7) == 0 ||
		    strncmp(r->str, "NOAUTH", 6) == 0 || strncmp(r->str, "MASTERDOWN", 10) == 0;

		vd_err(err, unavailable ? VD_EUNAVAIL : VD_EINTERNAL,
		    unavailable ? "store_unavailable" : "store_error", "store %s failed: %.200s",
		    argv[0], r->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

redisReply *
vd_store_cmdv(struct vd_store *st, struct vd_error *err, ...)
{
	const char *argv[STORE_MAX_ARGS];
	size_t lens[STORE_MAX_ARGS];
	const char *a;
	int argc = 0;
	va_list ap;

	va_start(ap, err);
	while ((a = va_arg(ap, const char *)) != NULL) {
		if (argc == STORE_MAX_ARGS) {
			va_end(ap);
			vd_err(err, VD_EINTERNAL, "store_error", "too many store arguments");
			return NULL;
		}
		argv[argc] = a;
		lens[argc] = strlen(a);
		argc++;
	}
	va_end(ap);
	return vd_store_cmd(st, err, argc, argv, lens);
}

int
vd_store_ping(struct vd_store *st, struct vd_error *err)
{
	redisReply *r = vd_store_cmdv(st, err, "PING", NULL);
	int ok;

	if (r == NULL)
		return -1;
	ok = r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
	freeReplyObject(r);
	if (!ok)
		return vd_err(err, VD_EBADGATEWAY, "store_error", "store answered PING oddly");
	return 0;
}

int
vd_store_schema_init(struct vd_store *st, struct vd_error *err)
{
	char want[16];
	redisReply *r;
	long have;
	int rc = 0;

	snprintf(want, sizeof(want), "%d", VD_SCHEMA_VERSION);
	r = vd_store_cmdv(st, err, "SET", "schema", want, "NX", NULL);
	if (r == NULL)
		return -1;
	freeReplyObject(r);
	r = vd_store_cmdv(st, err, "GET", "schema", NULL);
	if (r == NULL)
		return -1;
	if (r->type != REDIS_REPLY_STRING || vd_parse_long(r->str, 1, 1000000, &have) < 0)
		rc = vd_err(err, VD_EINTERNAL, "store_schema", "store key 'schema' holds no version number");
	else if (have > VD_SCHEMA_VERSION)
		rc = vd_err(err, VD_EINTERNAL, "store_schema",
		    "store schema %ld is newer than this valdock understands (%d)", have, VD_SCHEMA_VERSION);
	freeReplyObject(r);
	return rc;
}

int
vd_store_info_field(struct vd_store *st, const char *section, const char *field,
    char *out, size_t outsz, struct vd_error *err)
{
	redisReply *r = vd_store_cmdv(st, err, "INFO", section, NULL);
	int rc = -1;

	if (r == NULL)
		return -1;
	if (r->type == REDIS_REPLY_STRING)
		rc = vd_valkey_info_field(r->str, field, out, outsz);
	freeReplyObject(r);
	if (rc < 0)
		vd_err(err, VD_EBADGATEWAY, "store_error", "store INFO has no %s", field);
	return rc;
}
