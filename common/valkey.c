#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "str.h"
#include "valkey.h"

redisContext *
vd_valkey_connect(const char *host, int port, const char *user, const char *password,
    int timeout_ms, struct vd_error *err)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	redisContext *c;
	redisReply *r;

	c = redisConnectWithTimeout(host, port, tv);
	if (c == NULL || c->err) {
		vd_err(err, VD_EUNAVAIL, "instance_unreachable", "instance at %s:%d is unreachable: %s",
		    host, port, c ? c->errstr : "out of memory");
		if (c)
			redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, tv);
	r = redisCommand(c, "AUTH %s %s", user, password);
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		vd_err(err, VD_EUNAVAIL, "instance_auth", "instance at %s:%d refused %s: %.200s", host, port,
		    user, r ? r->str : c->errstr);
		if (r)
			freeReplyObject(r);
		redisFree(c);
		return NULL;
	}
	freeReplyObject(r);
	return c;
}

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int
vd_valkey_wait_ready(const char *host, int port, const char *user, const char *password,
    int timeout_ms, int (*keep_going)(void *), void *arg, struct vd_error *err)
{
	long deadline = now_ms() + timeout_ms;

	for (;;) {
		long left = deadline - now_ms();
		redisContext *c = vd_valkey_connect(host, port, user, password,
		    left < 1000 ? (left > 50 ? (int)left : 50) : 1000, err);

		if (c != NULL) {
			redisReply *r = redisCommand(c, "PING");
			int ok = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;

			if (r == NULL)
				vd_err(err, VD_EUNAVAIL, "instance_unreachable", "PING failed: %s", c->errstr);
			else if (!ok)
				vd_err(err, VD_EUNAVAIL, "instance_unreachable", "PING answered %.200s",
				    r->str ? r->str : "something else");
			if (r)
				freeReplyObject(r);
			redisFree(c);
			if (ok)
				return 0;
		}
		if (now_ms() >= deadline || (keep_going != NULL && !keep_going(arg)))
			return -1;
		poll(NULL, 0, 50);
	}
}

int
vd_valkey_info_field(const char *info, const char *field, char *out, size_t outsz)
{
	size_t flen = strlen(field);
	const char *p;

	for (p = info; p != NULL && *p != '\0'; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, field, flen) == 0 && p[flen] == ':') {
			size_t n = strcspn(p + flen + 1, "\r\n");

			if (n >= outsz)
				n = outsz - 1;
			memcpy(out, p + flen + 1, n);
			out[n] = '\0';
			return 0;
		}
	}
	return -1;
}

long long
vd_valkey_info_keys(const char *info)
{
	long long total = 0;
	const char *p;

	for (p = info; p != NULL && *p != '\0'; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		long long n;
		int db;

		if (sscanf(p, "db%d:keys=%lld", &db, &n) == 2 && n >= 0)
			total += n;
	}
	return total;
}

json_t *
vd_valkey_pairs_json(const redisReply *r)
{
	json_t *o;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY)
		return NULL;
	o = json_object();
	for (size_t i = 0; i + 1 < r->elements; i += 2)
		if (r->element[i]->type == REDIS_REPLY_STRING && r->element[i + 1]->type == REDIS_REPLY_STRING)
			json_object_set_new(o, r->element[i]->str, vd_json_string_lossy(r->element[i + 1]->str));
	return o;
}
