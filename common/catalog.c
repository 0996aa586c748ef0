#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "catalog.h"
#include "str.h"
#include "units.h"

#define GB (1024LL * 1024 * 1024)
#define INT32 2147483647LL

static const struct vd_param_def catalog[] = {
	/* memory */
	{ "maxmemory", VD_PARAM_BYTES, 0, 1024 * GB, NULL, 1, 0, "memory limit for data (0: none)" },
	{ "maxmemory-policy", VD_PARAM_ENUM, 0, 0, "noeviction allkeys-lru allkeys-lfu allkeys-random "
	  "volatile-lru volatile-lfu volatile-random volatile-ttl", 1, 0, "what to evict at maxmemory" },
	{ "maxmemory-samples", VD_PARAM_INT, 1, 64, NULL, 1, 0, "keys sampled per eviction" },
	{ "lfu-log-factor", VD_PARAM_INT, 0, 255, NULL, 1, 0, "LFU counter logarithm factor" },
	{ "lfu-decay-time", VD_PARAM_INT, 0, INT32, NULL, 1, 0, "LFU counter decay in minutes" },
	{ "lazyfree-lazy-eviction", VD_PARAM_BOOL, 0, 0, NULL, 1, 0, "free evicted keys in the background" },
	{ "lazyfree-lazy-expire", VD_PARAM_BOOL, 0, 0, NULL, 1, 0, "free expired keys in the background" },
	{ "lazyfree-lazy-user-del", VD_PARAM_BOOL, 0, 0, NULL, 1, 0, "DEL behaves like UNLINK" },
	{ "activedefrag", VD_PARAM_BOOL, 0, 0, NULL, 1, 0, "active memory defragmentation" },
	/* persistence */
	{ "appendonly", VD_PARAM_BOOL, 0, 0, NULL, 1, 0, "append-only file persistence" },
	{ "appendfsync", VD_PARAM_ENUM, 0, 0, "always everysec no", 1, 0, "when the AOF is fsynced" },
	{ "save", VD_PARAM_SAVE, 0, 0, NULL, 1, 0, "RDB snapshot points: \"seconds changes ...\", \"\" for none" },
	{ "rdbcompression", VD_PARAM_BOOL, 0, 0, NULL, 1, 0, "compress RDB files" },
	{ "rdbchecksum", VD_PARAM_BOOL, 0, 0, NULL, 0, 0, "checksum RDB files" },
	{ "aof-use-rdb-preamble", VD_PARAM_BOOL, 0, 0, NULL, 1, 0, "RDB preamble in rewritten AOFs" },
	{ "auto-aof-rewrite-percentage", VD_PARAM_INT, 0, INT32, NULL, 1, 0, "AOF growth that triggers a rewrite" },
	{ "auto-aof-rewrite-min-size", VD_PARAM_BYTES, 0, 1024 * GB, NULL, 1, 0, "smallest AOF rewritten" },
	{ "stop-writes-on-bgsave-error", VD_PARAM_BOOL, 0, 0, NULL, 1, 0, "refuse writes after a failed save" },
	/* clients and networking */
	{ "maxclients", VD_PARAM_INT, 1, 100000, NULL, 1, 0, "most simultaneous clients" },
	{ "timeout", VD_PARAM_INT, 0, INT32, NULL, 1, 0, "close idle clients after seconds (0: never)" },
	{ "tcp-keepalive", VD_PARAM_INT, 0, INT32, NULL, 1, 0, "TCP keepalive seconds" },
	{ "tcp-backlog", VD_PARAM_INT, 1, 65535, NULL, 0, 0, "listen backlog" },
	{ "io-threads", VD_PARAM_INT, 1, 128, NULL, 0, 0, "I/O threads" },
	{ "databases", VD_PARAM_INT, 1, 10000, NULL, 0, 0, "number of databases" },
	{ "hz", VD_PARAM_INT, 1, 500, NULL, 1, 0, "background task frequency" },
	{ "busy-reply-threshold", VD_PARAM_INT, 0, INT32, NULL, 1, 0, "milliseconds before BUSY replies" },
	/* observability */
	{ "loglevel", VD_PARAM_ENUM, 0, 0, "debug verbose notice warning nothing", 1, 0, "log verbosity" },
	{ "slowlog-log-slower-than", VD_PARAM_INT, -1, INT32, NULL, 1, 0, "microseconds that make a slow command" },
	{ "slowlog-max-len", VD_PARAM_INT, 0, INT32, NULL, 1, 0, "slow log entries kept" },
	{ "latency-monitor-threshold", VD_PARAM_INT, 0, INT32, NULL, 1, 0, "milliseconds of latency recorded" },
	{ "notify-keyspace-events", VD_PARAM_CHARS, 0, 0, "KEg$lshzxetmdAn", 1, 0, "keyspace notifications" },
	/* replication */
	{ "masteruser", VD_PARAM_STRING, 0, 128, NULL, 1, 0, "user to authenticate to a primary as" },
	{ "masterauth", VD_PARAM_STRING, 0, 512, NULL, 1, 1, "password for the primary" },
	{ "replica-read-only", VD_PARAM_BOOL, 0, 0, NULL, 1, 0, "replicas refuse writes" },
	{ "repl-backlog-size", VD_PARAM_BYTES, 16 * 1024, 64 * GB, NULL, 1, 0, "replication backlog" },
	{ "min-replicas-to-write", VD_PARAM_INT, 0, 1000, NULL, 1, 0, "replicas needed to accept writes" },
	{ "min-replicas-max-lag", VD_PARAM_INT, 0, INT32, NULL, 1, 0, "seconds of lag those replicas may have" },
};

#define CATALOG_N (sizeof(catalog) / sizeof(catalog[0]))

/* Owned by Valdock or never to be set by a client: files and directories
 * (CONFIG SET dir + dbfilename + SAVE writes any file), code loading,
 * protected and debug commands, and who may connect (ACLs live in the ACL
 * file; where the server listens is Valdock's). */
static const char *const refused[] = {
	"dir", "dbfilename", "appenddirname", "appendfilename", "aclfile", "logfile", "include",
	"rename-command", "enable-protected-configs", "enable-debug-command", "enable-module-command",
	"loadmodule", "unixsocket", "unixsocketperm", "unixsocketgroup", "requirepass", "user", "port",
	"bind", "bind-source-addr", "protected-mode", "daemonize", "pidfile", "tls-port", "supervised",
	"replicaof", "slaveof", "cluster-enabled", "cluster-config-file", "syslog-enabled", "oom-score-adj",
};

const struct vd_param_def *
vd_catalog_find(const char *name)
{
	for (size_t i = 0; i < CATALOG_N; i++)
		if (strcmp(catalog[i].name, name) == 0)
			return &catalog[i];
	return NULL;
}

const struct vd_param_def *
vd_catalog_all(size_t *n)
{
	*n = CATALOG_N;
	return catalog;
}

static int
word_in(const char *word, const char *words)
{
	size_t n = strlen(word);
	const char *p = words;

	while (*p != '\0') {
		size_t w = strcspn(p, " ");

		if (w == n && strncasecmp(p, word, n) == 0)
			return 1;
		p += w;
		while (*p == ' ')
			p++;
	}
	return 0;
}

/* "3600 1 300 100": pairs of non-negative integers, or empty. */
static int
save_ok(const char *v, char *out, size_t outsz)
{
	char buf[256], *tok, *save = NULL;
	long long n;
	int count = 0;
	size_t o = 0;

	if (strlen(v) >= sizeof(buf))
		return 0;
	snprintf(buf, sizeof(buf), "%s", v);
	out[0] = '\0';
	for (tok = strtok_r(buf, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		char *end;

		if (*tok < '0' || *tok > '9')
			return 0;
		n = strtoll(tok, &end, 10);
		/* seconds (even positions) start at 1, changes at 0, as the server wants */
		if (*end != '\0' || n < (count % 2 == 0 ? 1 : 0) || n > INT32)
			return 0;
		o += (size_t)snprintf(out + o, o < outsz ? outsz - o : 0, "%s%lld", count ? " " : "", n);
		count++;
	}
	return count % 2 == 0 && count <= 32 && o < outsz;
}

static int
is_refused(const char *name)
{
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (strcasecmp(refused[i], name) == 0)
			return 1;
	return 0;
}

int
vd_catalog_check(const char *name, const json_t *value, char *out, size_t outsz,
    struct vd_error *err)
{
	const struct vd_param_def *d;
	char text[VD_CATALOG_VALUE_MAX + 1];
	long long n;

	if (is_refused(name)) {
		vd_err(err, VD_EFORBIDDEN, "refused_key",
		    "'%s' cannot be set through Valdock: Valdock owns it or it is unsafe", name);
		snprintf(err->field, sizeof(err->field), "%s", name);
		return -1;
	}
	d = vd_catalog_find(name);
	if (d == NULL)
		return vd_err_field(err, name, "'%.64s' is not a parameter Valdock manages", name);
	/* numbers and booleans are welcome where they mean the same */
	if (json_is_integer(value) && (d->type == VD_PARAM_INT || d->type == VD_PARAM_BYTES))
		snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(value));
	else if (json_is_boolean(value) && d->type == VD_PARAM_BOOL)
		snprintf(text, sizeof(text), "%s", json_is_true(value) ? "yes" : "no");
	else if (json_is_string(value) && strlen(json_string_value(value)) <= VD_CATALOG_VALUE_MAX)
		snprintf(text, sizeof(text), "%s", json_string_value(value));
	else
		return vd_err_field(err, name, "%s takes a string%s", name,
		    json_is_string(value) ? " of at most 1024 bytes" : "");
	if (vd_str_has_ctrl(text, strlen(text)) || !vd_utf8_valid(text, strlen(text)))
		return vd_err_field(err, name, "%s must be UTF-8 text without control characters", name);
	switch (d->type) {
	case VD_PARAM_BOOL:
		if (strcasecmp(text, "yes") == 0 || strcasecmp(text, "no") == 0) {
			snprintf(out, outsz, "%s", strcasecmp(text, "yes") == 0 ? "yes" : "no");
			return 0;
		}
		return vd_err_field(err, name, "%s must be yes or no", name);
	case VD_PARAM_INT: {
		long v;

		if (vd_parse_long(text, (long)d->min, (long)d->max, &v) == 0) {
			snprintf(out, outsz, "%ld", v);
			return 0;
		}
	}
		return vd_err_field(err, name, "%s must be an integer from %lld to %lld", name, d->min, d->max);
	case VD_PARAM_BYTES:
		if (vd_units_parse_bytes(text, &n) == 0 && n >= d->min && n <= d->max) {
			vd_units_format_bytes(n, out, outsz);
			return 0;
		}
		return vd_err_field(err, name, "%s must be a size such as 512mb or 1gb (bytes: %lld to %lld)",
		    name, d->min, d->max);
	case VD_PARAM_ENUM:
		if (word_in(text, d->values)) {
			for (size_t i = 0; text[i]; i++)
				text[i] = (char)(text[i] >= 'A' && text[i] <= 'Z' ? text[i] + 32 : text[i]);
			snprintf(out, outsz, "%s", text);
			return 0;
		}
		return vd_err_field(err, name, "%s must be one of: %s", name, d->values);
	case VD_PARAM_SAVE:
		if (save_ok(text, out, outsz))
			return 0;
		return vd_err_field(err, name,
		    "%s must be pairs of \"seconds changes\" (e.g. \"3600 1 300 100\"), or \"\" for none", name);
	case VD_PARAM_CHARS:
		if (strspn(text, d->values) == strlen(text)) {
			snprintf(out, outsz, "%s", text);
			return 0;
		}
		return vd_err_field(err, name, "%s may hold only the letters %s", name, d->values);
	case VD_PARAM_STRING:
		if ((long long)strlen(text) <= d->max) {
			snprintf(out, outsz, "%s", text);
			return 0;
		}
		return vd_err_field(err, name, "%s must be at most %lld bytes", name, d->max);
	}
	return vd_err_field(err, name, "%s is not understood", name);
}

int
vd_catalog_check_all(const json_t *config, json_t **norm, struct vd_error *err)
{
	char v[VD_CATALOG_VALUE_MAX + 1];
	const char *key;
	json_t *value;

	*norm = NULL;
	if (!json_is_object(config))
		return vd_err_field(err, "config", "config must be an object of parameter: value");
	*norm = json_object();
	json_object_foreach((json_t *)config, key, value) {
		if (vd_catalog_check(key, value, v, sizeof(v), err) < 0) {
			json_decref(*norm);
			*norm = NULL;
			return -1;
		}
		json_object_set_new(*norm, key, json_string(v));
	}
	return 0;
}

int
vd_catalog_render_line(const char *name, const char *value, char *out, size_t outsz)
{
	size_t o = 0;
	int n;

	n = snprintf(out, outsz, "%s \"", name);
	if (n < 0 || (size_t)n >= outsz)
		return -1;
	o = (size_t)n;
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		char esc[8];
		size_t el;

		if (*p == '"' || *p == '\\')
			el = (size_t)snprintf(esc, sizeof(esc), "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			el = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", *p);
		else {
			esc[0] = (char)*p;
			esc[1] = '\0';
			el = 1;
		}
		if (o + el + 3 > outsz)
			return -1;
		memcpy(out + o, esc, el);
		o += el;
	}
	out[o++] = '"';
	out[o++] = '\n';
	out[o] = '\0';
	return (int)o;
}

/* Keyspace event letters as the server reports them: reordered, and A
 * standing for the event classes it stands for. */
static void
chars_expand(const char *s, char *out, size_t outsz)
{
	size_t o = 0;

	for (; *s && o + 12 < outsz; s++) {
		if (*s == 'A') {
			memcpy(out + o, "g$lshzxetd", 10);
			o += 10;
		} else {
			out[o++] = *s;
		}
	}
	out[o] = '\0';
}

static int
chars_same(const char *a, const char *b)
{
	char x[64], y[64];

	chars_expand(a, x, sizeof(x));
	chars_expand(b, y, sizeof(y));
	for (const char *p = x; *p; p++)
		if (strchr(y, *p) == NULL)
			return 0;
	for (const char *p = y; *p; p++)
		if (strchr(x, *p) == NULL)
			return 0;
	return 1;
}

int
vd_catalog_same(const char *name, const char *a, const char *b)
{
	const struct vd_param_def *d = vd_catalog_find(name);
	long long x, y;

	if (d != NULL && d->type == VD_PARAM_BYTES &&
	    vd_units_parse_bytes(a, &x) == 0 && vd_units_parse_bytes(b, &y) == 0)
		return x == y;
	if (d != NULL && (d->type == VD_PARAM_ENUM || d->type == VD_PARAM_BOOL))
		return strcasecmp(a, b) == 0;
	if (d != NULL && d->type == VD_PARAM_CHARS)
		return chars_same(a, b);
	return strcmp(a, b) == 0;
}
