#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fsutil.h"
#include "str.h"

#ifndef VD_PKGDATADIR
#define VD_PKGDATADIR "/usr/local/share/valdock"
#endif

#define CONFIG_FILE_MAX (64 * 1024)

enum conf_type { CONF_STR, CONF_INT, CONF_BOOL };

struct conf_def {
	const char *key;       /* in the config file; the flag is --key with '_' as '-' */
	const char *env;
	enum conf_type type;
	size_t offset, size;
	long min, max;
	const char *def;
	const char *help;
};

#define STR(f) CONF_STR, offsetof(struct vd_config, f), sizeof(((struct vd_config *)0)->f)
#define INT(f) CONF_INT, offsetof(struct vd_config, f), sizeof(int)
#define BOOL(f) CONF_BOOL, offsetof(struct vd_config, f), sizeof(int)

static const struct conf_def conf_table[] = {
	{ "data_dir", "VALDOCK_DATA_DIR", STR(data_dir), 0, 0, "/var/lib/valdock",
	  "directory for the store, instances, secrets and runtime files" },
	{ "http_addr", "VALDOCK_HTTP_ADDR", STR(http_addr), 0, 0, "127.0.0.1:8080",
	  "address nginx listens on (serve)" },
	{ "store_url", "VALDOCK_STORE_URL", STR(store_url), 0, 0, "",
	  "external store (unix:///path or valkey://[user[:pass]@]host[:port][/db]); empty: serve starts its own" },
	{ "store_password", "VALDOCK_STORE_PASSWORD", STR(store_password), 0, 0, "",
	  "password for the external store (overrides one in the url)" },
	{ "docker_host", "DOCKER_HOST", STR(docker_host), 0, 0, "unix:///var/run/docker.sock",
	  "Docker engine address (unix:///path or tcp://host:port)" },
	{ "docker_tls_verify", "DOCKER_TLS_VERIFY", BOOL(docker_tls_verify), 0, 1, "0",
	  "use TLS with client certificates for tcp:// Docker hosts" },
	{ "docker_cert_path", "DOCKER_CERT_PATH", STR(docker_cert_path), 0, 0, "",
	  "directory with ca.pem, cert.pem and key.pem" },
	{ "socket", "VALDOCK_SOCKET", STR(socket_path), 0, 0, "",
	  "FastCGI unix socket (default DATA_DIR/run/fcgi.sock)" },
	{ "workers", "VALDOCK_WORKERS", INT(workers), 1, 256, "8",
	  "request worker processes" },
	{ "max_requests", "VALDOCK_MAX_REQUESTS", INT(max_requests), 0, 100000000, "10000",
	  "requests a worker serves before it is replaced (0: never)" },
	{ "shutdown_timeout", "VALDOCK_SHUTDOWN_TIMEOUT", INT(shutdown_timeout), 1, 600, "10",
	  "seconds to drain in-flight requests before SIGKILL" },
	{ "max_body", "VALDOCK_MAX_BODY", INT(max_body), 1024, 64 * 1024 * 1024, "1048576",
	  "largest request body accepted, in bytes" },
	{ "store_timeout_ms", "VALDOCK_STORE_TIMEOUT_MS", INT(store_timeout_ms), 50, 60000, "2000",
	  "store connect and command timeout" },
	{ "docker_timeout_ms", "VALDOCK_DOCKER_TIMEOUT_MS", INT(docker_timeout_ms), 100, 600000, "30000",
	  "Docker call timeout" },
	{ "web_root", "VALDOCK_WEB_ROOT", STR(web_root), 0, 0, VD_PKGDATADIR "/www",
	  "built dashboard served by nginx (serve)" },
	{ "nginx_template", "VALDOCK_NGINX_TEMPLATE", STR(nginx_template), 0, 0,
	  VD_PKGDATADIR "/nginx/valdock.conf.in", "nginx configuration template (serve)" },
	{ "nginx", "VALDOCK_NGINX", STR(nginx_bin), 0, 0, "nginx", "nginx program (serve)" },
	{ "nginx_user", "VALDOCK_NGINX_USER", STR(nginx_user), 0, 0, "www-data",
	  "user nginx workers run as when serve runs as root" },
	{ "valkey_server", "VALDOCK_VALKEY_SERVER", STR(valkey_bin), 0, 0, "valkey-server",
	  "valkey-server program for the internal store (serve)" },
};

#define CONF_N (sizeof(conf_table) / sizeof(conf_table[0]))

static int
conf_set(struct vd_config *cfg, const struct conf_def *d, const char *value, const char *source,
    struct vd_error *err)
{
	char *field = (char *)cfg + d->offset;
	long v;

	if (vd_str_has_ctrl(value, strlen(value)))
		return vd_err(err, VD_EINVALID, "bad_config", "%s: %s holds a control character",
		    source, d->key);
	switch (d->type) {
	case CONF_STR:
		if (vd_str_copy(field, d->size, value) < 0)
			return vd_err(err, VD_EINVALID, "bad_config", "%s: %s is longer than %zu bytes",
			    source, d->key, d->size - 1);
		return 0;
	case CONF_INT:
		if (vd_parse_long(value, d->min, d->max, &v) < 0)
			return vd_err(err, VD_EINVALID, "bad_config",
			    "%s: %s must be an integer from %ld to %ld", source, d->key, d->min, d->max);
		*(int *)(void *)field = (int)v;
		return 0;
	case CONF_BOOL:
		if (strcmp(value, "1") == 0 || strcmp(value, "true") == 0 || strcmp(value, "yes") == 0)
			*(int *)(void *)field = 1;
		else if (strcmp(value, "0") == 0 || strcmp(value, "false") == 0 ||
		    strcmp(value, "no") == 0 || value[0] == '\0')
			*(int *)(void *)field = 0;
		else
			return vd_err(err, VD_EINVALID, "bad_config", "%s: %s must be 1/0, true/false or yes/no",
			    source, d->key);
		return 0;
	}
	return -1;
}

static const struct conf_def *
conf_find(const char *key, size_t len)
{
	for (size_t i = 0; i < CONF_N; i++)
		if (strlen(conf_table[i].key) == len && strncmp(conf_table[i].key, key, len) == 0)
			return &conf_table[i];
	return NULL;
}

static void
trim(const char **s, size_t *len)
{
	while (*len > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t' || (*s)[*len - 1] == '\r'))
		(*len)--;
}

int
vd_config_parse_file_text(struct vd_config *cfg, const char *text, const char *source,
    struct vd_error *err)
{
	const char *line = text;
	char where[PATH_MAX + 32], value[PATH_MAX];
	int lineno = 0;

	while (line != NULL && *line != '\0') {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		const char *eq, *k, *v;
		size_t klen, vlen;
		const struct conf_def *d;

		lineno++;
		snprintf(where, sizeof(where), "%.*s:%d", PATH_MAX - 1, source, lineno);
		k = line;
		trim(&k, &len);
		if (len > 0 && k[0] != '#') {
			eq = memchr(k, '=', len);
			if (eq == NULL)
				return vd_err(err, VD_EINVALID, "bad_config", "%s: expected key = value", where);
			klen = (size_t)(eq - k);
			trim(&k, &klen);
			v = eq + 1;
			vlen = len - (size_t)(v - k);
			trim(&v, &vlen);
			d = conf_find(k, klen);
			if (d == NULL)
				return vd_err(err, VD_EINVALID, "bad_config", "%s: unknown key '%.*s'", where,
				    klen > 64 ? 64 : (int)klen, k);
			if (vlen >= sizeof(value))
				return vd_err(err, VD_EINVALID, "bad_config", "%s: value too long", where);
			memcpy(value, v, vlen);
			value[vlen] = '\0';
			if (conf_set(cfg, d, value, where, err) < 0)
				return -1;
		}
		line = nl ? nl + 1 : NULL;
	}
	return 0;
}

static int
conf_flag(struct vd_config *cfg, int argc, char **argv, int *i, struct vd_error *err)
{
	const char *arg = argv[*i] + 2, *eq = strchr(arg, '=');
	char key[64];
	size_t klen = eq ? (size_t)(eq - arg) : strlen(arg);
	const char *value;
	const struct conf_def *d;

	if (klen == 0 || klen >= sizeof(key))
		return vd_err(err, VD_EINVALID, "bad_flag", "unknown flag %.80s", argv[*i]);
	for (size_t j = 0; j < klen; j++)
		key[j] = arg[j] == '-' ? '_' : arg[j];
	key[klen] = '\0';
	d = conf_find(key, klen);
	if (d == NULL && strcmp(key, "config") != 0)
		return vd_err(err, VD_EINVALID, "bad_flag", "unknown flag --%.64s (see valdock help)", arg);
	if (eq != NULL)
		value = eq + 1;
	else if (*i + 1 < argc)
		value = argv[++(*i)];
	else
		return vd_err(err, VD_EINVALID, "bad_flag", "flag --%s needs a value", key);
	if (d == NULL)
		return 0;   /* --config was handled before the file was read */
	return conf_set(cfg, d, value, "flag", err);
}

int
vd_config_load(struct vd_config *cfg, int argc, char **argv, struct vd_error *err)
{
	const char *file = getenv("VALDOCK_CONFIG");
	char *text = NULL;
	int i;

	memset(cfg, 0, sizeof(*cfg));
	for (size_t k = 0; k < CONF_N; k++)
		if (conf_set(cfg, &conf_table[k], conf_table[k].def, "default", err) < 0)
			return -1;
	for (i = 0; i < argc; i++) {
		if (strncmp(argv[i], "--config=", 9) == 0)
			file = argv[i] + 9;
		else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			file = argv[i + 1];
	}
	if (file != NULL && *file != '\0') {
		if (vd_str_copy(cfg->config_file, sizeof(cfg->config_file), file) < 0)
			return vd_err(err, VD_EINVALID, "bad_config", "config file path too long");
		if (vd_fs_read(file, CONFIG_FILE_MAX, &text, NULL, err) < 0)
			return -1;
		if (vd_config_parse_file_text(cfg, text, file, err) < 0) {
			free(text);
			return -1;
		}
		free(text);
	}
	for (size_t k = 0; k < CONF_N; k++) {
		const char *v = getenv(conf_table[k].env);
		char where[80];

		snprintf(where, sizeof(where), "environment %s", conf_table[k].env);
		if (v != NULL && conf_set(cfg, &conf_table[k], v, where, err) < 0)
			return -1;
	}
	for (i = 0; i < argc; i++) {
		if (strncmp(argv[i], "--", 2) != 0)
			return vd_err(err, VD_EINVALID, "bad_flag", "unexpected argument '%.80s'", argv[i]);
		if (conf_flag(cfg, argc, argv, &i, err) < 0)
			return -1;
	}
	if (cfg->data_dir[0] != '/')
		return vd_err(err, VD_EINVALID, "bad_config", "data_dir must be an absolute path");
	if (cfg->socket_path[0] == '\0' &&
	    (size_t)snprintf(cfg->socket_path, sizeof(cfg->socket_path), "%s/run/fcgi.sock",
	    cfg->data_dir) >= sizeof(cfg->socket_path))
		return vd_err(err, VD_EINVALID, "bad_config",
		    "data_dir too long for a unix socket path; set socket explicitly");
	return 0;
}

void
vd_config_usage(FILE *out)
{
	fprintf(out, "usage: valdock [flags] serve|fcgi|version|help\n\n"
	    "  serve    run the whole stack: internal store, FastCGI pool, nginx\n"
	    "  fcgi     run the FastCGI pool only (nginx and the store run elsewhere)\n"
	    "  version  print the version\n\n"
	    "Settings (flag / environment / config file key; later sources win:\n"
	    "defaults, --config FILE or VALDOCK_CONFIG, environment, flags):\n");
	for (size_t k = 0; k < CONF_N; k++) {
		char flag[64];
		size_t j;

		for (j = 0; conf_table[k].key[j] && j < sizeof(flag) - 1; j++)
			flag[j] = conf_table[k].key[j] == '_' ? '-' : conf_table[k].key[j];
		flag[j] = '\0';
		fprintf(out, "  --%-20s %-26s %s%s%s%s\n", flag, conf_table[k].env, conf_table[k].help,
		    conf_table[k].def[0] ? " [" : "", conf_table[k].def, conf_table[k].def[0] ? "]" : "");
	}
}
