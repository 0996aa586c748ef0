#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "docker.h"
#include "dockerlogs.h"
#include "str.h"

#define DOCKER_MAX_BODY (16u * 1024 * 1024)

struct vd_docker {
	struct vd_docker_host host;
	char describe[300];
	char cert_dir[256];
	int timeout_ms;
	CURL *curl;
	char api[16];             /* negotiated version, "" until then */
	char engine_version[64];
};

struct docker_buf {
	char *data;
	size_t len;
	int overflow;
	char api_header[16];
};

int
vd_docker_parse_host(const char *h, int tls_verify, struct vd_docker_host *out,
    struct vd_error *err)
{
	const char *rest;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (h == NULL || *h == '\0')
		h = "unix:///var/run/docker.sock";
	if (strncmp(h, "unix://", 7) == 0) {
		rest = h + 7;
		n = strlen(rest);
		if (n == 0 || rest[0] != '/' || n >= sizeof(out->path) || vd_str_has_ctrl(rest, n))
			return vd_err(err, VD_EINVALID, "bad_docker_host",
			    "DOCKER_HOST: unix socket path must be absolute and under %zu bytes",
			    sizeof(out->path));
		memcpy(out->path, rest, n + 1);
		out->is_unix = 1;
		snprintf(out->base_url, sizeof(out->base_url), "http://localhost");
		return 0;
	}
	if (strncmp(h, "tcp://", 6) == 0) {
		rest = h + 6;
		n = strcspn(rest, "/");
		if (n == 0 || n > 255 || (rest[n] != '\0' && strcmp(rest + n, "/") != 0))
			return vd_err(err, VD_EINVALID, "bad_docker_host", "DOCKER_HOST: expected tcp://host:port");
		for (size_t i = 0; i < n; i++) {
			char c = rest[i];

			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			    c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
				return vd_err(err, VD_EINVALID, "bad_docker_host",
				    "DOCKER_HOST: bad character in host");
		}
		out->tls = tls_verify;
		snprintf(out->base_url, sizeof(out->base_url), "%s://%.*s", tls_verify ? "https" : "http",
		    (int)n, rest);
		return 0;
	}
	return vd_err(err, VD_EINVALID, "bad_docker_host", "DOCKER_HOST must start with unix:// or tcp://");
}

/* "1.41" -> 1041; -1 if malformed */
static long
api_num(const char *v)
{
	char major[8], *dot;
	long a, b;

	if (v == NULL || strlen(v) >= sizeof(major) + 8)
		return -1;
	dot = strchr(v, '.');
	if (dot == NULL || (size_t)(dot - v) >= sizeof(major))
		return -1;
	memcpy(major, v, (size_t)(dot - v));
	major[dot - v] = '\0';
	if (vd_parse_long(major, 0, 99, &a) < 0 || vd_parse_long(dot + 1, 0, 999, &b) < 0)
		return -1;
	return a * 1000 + b;
}

int
vd_docker_pick_api(const char *daemon_max, const char *daemon_min, char *out, size_t outsz,
    struct vd_error *err)
{
	long ours_min = api_num(VD_DOCKER_API_MIN), ours_max = api_num(VD_DOCKER_API_MAX);
	long dmax = api_num(daemon_max), dmin = daemon_min ? api_num(daemon_min) : 0;
	long pick;

	if (dmax < 0 || dmin < 0)
		return vd_err(err, VD_EBADGATEWAY, "docker_version",
		    "docker engine reported a malformed API version");
	pick = dmax < ours_max ? dmax : ours_max;
	if (pick < ours_min)
		return vd_err(err, VD_EBADGATEWAY, "docker_version",
		    "docker engine speaks API up to %s; valdock needs %s to %s", daemon_max,
		    VD_DOCKER_API_MIN, VD_DOCKER_API_MAX);
	if (pick < dmin)
		return vd_err(err, VD_EBADGATEWAY, "docker_version",
		    "docker engine needs API %s or newer; valdock speaks %s to %s", daemon_min,
		    VD_DOCKER_API_MIN, VD_DOCKER_API_MAX);
	snprintf(out, outsz, "%ld.%ld", pick / 1000, pick % 1000);
	return 0;
}

struct vd_docker *
vd_docker_new(const char *docker_host, int tls_verify, const char *cert_dir, int timeout_ms,
    struct vd_error *err)
{
	struct vd_docker *d = calloc(1, sizeof(*d));

	if (d == NULL) {
		vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
		return NULL;
	}
	if (vd_docker_parse_host(docker_host, tls_verify, &d->host, err) < 0) {
		free(d);
		return NULL;
	}
	if (d->host.is_unix)
		snprintf(d->describe, sizeof(d->describe), "unix://%s", d->host.path);
	else
		snprintf(d->describe, sizeof(d->describe), "%s", d->host.base_url);
	if (cert_dir != NULL)
		snprintf(d->cert_dir, sizeof(d->cert_dir), "%s", cert_dir);
	d->timeout_ms = timeout_ms;
	return d;
}

void
vd_docker_free(struct vd_docker *d)
{
	if (d == NULL)
		return;
	if (d->curl != NULL)
		curl_easy_cleanup(d->curl);
	free(d);
}

static size_t
docker_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct docker_buf *b = userdata;
	size_t n = size * nmemb;
	char *p;

	if (b->len + n > DOCKER_MAX_BODY) {
		b->overflow = 1;
		return 0;
	}
	p = realloc(b->data, b->len + n + 1);
	if (p == NULL)
		return 0;
	b->data = p;
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static size_t
docker_header_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct docker_buf *b = userdata;
	size_t n = size * nmemb;
	static const char name[] = "api-version:";
	size_t nl = sizeof(name) - 1;

	if (n > nl && strncasecmp(ptr, name, nl) == 0) {
		const char *v = ptr + nl;
		size_t vl = n - nl;

		while (vl > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			vl--;
		}
		while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		if (vl < sizeof(b->api_header)) {
			memcpy(b->api_header, v, vl);
			b->api_header[vl] = '\0';
		}
	}
	return n;
}

/* Transport options shared by every handle talking to this daemon. */
static void
docker_transport(const struct vd_docker *d, CURL *h)
{
	char path[sizeof(d->cert_dir) + 16];

	if (d->host.is_unix)
		curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, d->host.path);
	if (d->host.tls && d->cert_dir[0] != '\0') {
		snprintf(path, sizeof(path), "%s/ca.pem", d->cert_dir);
		curl_easy_setopt(h, CURLOPT_CAINFO, path);
		snprintf(path, sizeof(path), "%s/cert.pem", d->cert_dir);
		curl_easy_setopt(h, CURLOPT_SSLCERT, path);
		snprintf(path, sizeof(path), "%s/key.pem", d->cert_dir);
		curl_easy_setopt(h, CURLOPT_SSLKEY, path);
	}
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(d->timeout_ms < 3000 ? d->timeout_ms : 3000));
}

/* One HTTP exchange with the daemon. full_path already carries the version
 * prefix (or none, for /_ping). */
static int
docker_http(struct vd_docker *d, const char *method, const char *full_path, json_t *body,
    long *status, struct docker_buf *resp, struct vd_error *err)
{
	struct curl_slist *hdrs = NULL;
	char url[1024];
	char *payload = NULL;
	CURLcode rc;
	int ret = -1;

	*status = 0;
	if (d->curl == NULL) {
		d->curl = curl_easy_init();
		if (d->curl == NULL)
			return vd_err(err, VD_EINTERNAL, "no_memory", "cannot initialise libcurl");
	}
	curl_easy_reset(d->curl);
	if ((size_t)snprintf(url, sizeof(url), "%s%s", d->host.base_url, full_path) >= sizeof(url))
		return vd_err(err, VD_EINTERNAL, "docker_path", "docker request path too long");
	curl_easy_setopt(d->curl, CURLOPT_URL, url);
	docker_transport(d, d->curl);
	curl_easy_setopt(d->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(d->curl, CURLOPT_TIMEOUT_MS, (long)d->timeout_ms);
	curl_easy_setopt(d->curl, CURLOPT_WRITEFUNCTION, docker_write_cb);
	curl_easy_setopt(d->curl, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(d->curl, CURLOPT_HEADERFUNCTION, docker_header_cb);
	curl_easy_setopt(d->curl, CURLOPT_HEADERDATA, resp);
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (body != NULL) {
		payload = json_dumps(body, JSON_COMPACT);
		if (payload == NULL) {
			vd_err(err, VD_EINTERNAL, "no_memory", "cannot encode docker request");
			goto done;
		}
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(d->curl, CURLOPT_POSTFIELDS, payload);
		curl_easy_setopt(d->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
	} else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
		curl_easy_setopt(d->curl, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(d->curl, CURLOPT_POSTFIELDSIZE, 0L);
	}
	curl_easy_setopt(d->curl, CURLOPT_HTTPHEADER, hdrs);
	rc = curl_easy_perform(d->curl);
	if (rc != CURLE_OK) {
		d->api[0] = '\0';   /* the daemon may come back as another version */
		if (resp->overflow)
			vd_err(err, VD_EBADGATEWAY, "docker_error", "docker answer larger than %u bytes",
			    DOCKER_MAX_BODY);
		else if (rc == CURLE_OPERATION_TIMEDOUT)
			vd_err(err, VD_ETIMEOUT, "docker_timeout", "docker at %s did not answer within %d ms",
			    d->describe, d->timeout_ms);
		else
			vd_err(err, VD_EUNAVAIL, "docker_unavailable", "docker at %s is unreachable: %s",
			    d->describe, curl_easy_strerror(rc));
		goto done;
	}
	curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, status);
	ret = 0;
done:
	curl_slist_free_all(hdrs);
	free(payload);
	return ret;
}

/* Turns a non-2xx answer into err, keeping Docker's own message. */
static void
docker_status_err(const struct vd_docker *d, long status, const struct docker_buf *b,
    struct vd_error *err)
{
	const char *msg = NULL;
	json_t *j = NULL;
	enum vd_err_kind kind;
	const char *code;

	if (b->data != NULL)
		j = json_loadb(b->data, b->len, 0, NULL);
	if (j != NULL)
		msg = json_string_value(json_object_get(j, "message"));
	switch (status) {
	case 404:
		kind = VD_ENOTFOUND;
		code = "docker_not_found";
		break;
	case 409:
		kind = VD_ECONFLICT;
		code = "docker_conflict";
		break;
	default:
		kind = VD_EBADGATEWAY;
		code = "docker_error";
		break;
	}
	vd_err(err, kind, code, "docker answered %ld: %.300s", status,
	    msg ? msg : (b->data && vd_utf8_valid(b->data, b->len) ? b->data : "no message"));
	json_decref(j);
}

static int
docker_negotiate(struct vd_docker *d, struct vd_error *err)
{
	struct docker_buf b = { 0 };
	char offered[16], path[64];
	const char *min_api, *ver;
	json_t *v = NULL;
	long status;
	int ret = -1;

	if (d->api[0] != '\0')
		return 0;
	if (docker_http(d, "GET", "/_ping", NULL, &status, &b, err) < 0)
		goto done;
	if (status != 200 || b.api_header[0] == '\0') {
		vd_err(err, VD_EBADGATEWAY, "docker_error",
		    "docker at %s answered /_ping with status %ld and no Api-Version", d->describe, status);
		goto done;
	}
	snprintf(offered, sizeof(offered), "%s", b.api_header);
	free(b.data);
	memset(&b, 0, sizeof(b));
	/* /version at the daemon's own version is always inside its range and
	 * tells its minimum. */
	if (api_num(offered) < 0) {
		vd_err(err, VD_EBADGATEWAY, "docker_version", "docker reported a malformed API version");
		goto done;
	}
	snprintf(path, sizeof(path), "/v%s/version", offered);
	if (docker_http(d, "GET", path, NULL, &status, &b, err) < 0)
		goto done;
	if (status != 200 || (v = json_loadb(b.data ? b.data : "", b.len, 0, NULL)) == NULL) {
		docker_status_err(d, status, &b, err);
		goto done;
	}
	min_api = json_string_value(json_object_get(v, "MinAPIVersion"));
	ver = json_string_value(json_object_get(v, "Version"));
	if (vd_docker_pick_api(offered, min_api, d->api, sizeof(d->api), err) < 0) {
		d->api[0] = '\0';
		goto done;
	}
	snprintf(d->engine_version, sizeof(d->engine_version), "%s", ver ? ver : "unknown");
	ret = 0;
done:
	free(b.data);
	json_decref(v);
	return ret;
}

/* The shared part of a versioned call: negotiation, path checks, the
 * exchange and error mapping. b holds the body either way. */
static int
docker_versioned(struct vd_docker *d, const char *method, const char *path, json_t *body,
    long *status, struct docker_buf *b, struct vd_error *err)
{
	char full[768];

	*status = 0;
	if (path[0] != '/' || vd_str_has_ctrl(path, strlen(path)) || strchr(path, ' ') != NULL)
		return vd_err(err, VD_EINTERNAL, "docker_path", "refusing a malformed docker path");
	if (docker_negotiate(d, err) < 0)
		return -1;
	if ((size_t)snprintf(full, sizeof(full), "/v%s%s", d->api, path) >= sizeof(full))
		return vd_err(err, VD_EINTERNAL, "docker_path", "docker request path too long");
	if (docker_http(d, method, full, body, status, b, err) < 0)
		return -1;
	if (*status >= 400) {
		docker_status_err(d, *status, b, err);
		return -1;
	}
	return 0;
}

int
vd_docker_call(struct vd_docker *d, const char *method, const char *path, json_t *body,
    long *status, json_t **out, struct vd_error *err)
{
	struct docker_buf b = { 0 };
	int ret;

	if (out != NULL)
		*out = NULL;
	ret = docker_versioned(d, method, path, body, status, &b, err);
	if (ret == 0 && out != NULL && b.len > 0)
		*out = json_loadb(b.data, b.len, 0, NULL);
	free(b.data);
	return ret;
}

int
vd_docker_call_raw(struct vd_docker *d, const char *method, const char *path, long *status,
    char **out, size_t *outlen, struct vd_error *err)
{
	struct docker_buf b = { 0 };

	*out = NULL;
	*outlen = 0;
	if (docker_versioned(d, method, path, NULL, status, &b, err) < 0) {
		free(b.data);
		return -1;
	}
	if (b.data == NULL && (b.data = calloc(1, 1)) == NULL)
		return vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
	*out = b.data;
	*outlen = b.len;
	return 0;
}

struct logs_text {
	char *p;
	size_t len, cap;
};

static void
logs_collect(enum vd_log_stream st, const char *text, size_t len, void *arg)
{
	struct logs_text *t = arg;
	char *p;

	(void)st;
	if (t->len + len + 1 > t->cap) {
		size_t cap = (t->cap ? t->cap * 2 : 1024) + len;

		if ((p = realloc(t->p, cap)) == NULL)
			return;
		t->p = p;
		t->cap = cap;
	}
	memcpy(t->p + t->len, text, len);
	t->len += len;
	t->p[t->len] = '\0';
}

int
vd_docker_logs_tail(struct vd_docker *d, const char *container, int lines, int tty,
    char **out, struct vd_error *err)
{
	struct vd_logs_parser parser;
	struct logs_text t = { 0 };
	char path[256], *raw;
	size_t rawlen;
	long status;

	*out = NULL;
	snprintf(path, sizeof(path), "/containers/%s/logs?stdout=1&stderr=1&tail=%d", container, lines);
	if (vd_docker_call_raw(d, "GET", path, &status, &raw, &rawlen, err) < 0)
		return -1;
	vd_logs_init(&parser, tty);
	vd_logs_feed(&parser, raw, rawlen, logs_collect, &t);
	vd_logs_finish(&parser, logs_collect, &t);
	free(raw);
	if (t.p == NULL && (t.p = calloc(1, 1)) == NULL)
		return vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
	*out = t.p;
	return 0;
}

int
vd_docker_ping(struct vd_docker *d, struct vd_error *err)
{
	struct docker_buf b = { 0 };
	long status;
	int ret;

	if (docker_negotiate(d, err) < 0)
		return -1;
	ret = docker_http(d, "GET", "/_ping", NULL, &status, &b, err);
	if (ret == 0 && status != 200)
		ret = vd_err(err, VD_EBADGATEWAY, "docker_error", "docker answered /_ping with %ld", status);
	free(b.data);
	return ret;
}

int
vd_docker_stream_setup(struct vd_docker *d, CURL *h, const char *path,
    size_t (*write_cb)(char *, size_t, size_t, void *), void *arg, struct vd_error *err)
{
	char url[1024];

	if (path[0] != '/' || vd_str_has_ctrl(path, strlen(path)) || strchr(path, ' ') != NULL)
		return vd_err(err, VD_EINTERNAL, "docker_path", "refusing a malformed docker path");
	if (docker_negotiate(d, err) < 0)
		return -1;
	if ((size_t)snprintf(url, sizeof(url), "%s/v%s%s", d->host.base_url, d->api, path) >= sizeof(url))
		return vd_err(err, VD_EINTERNAL, "docker_path", "docker request path too long");
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	docker_transport(d, h);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, arg);
	return 0;
}

int
vd_docker_ping_within(struct vd_docker *d, int timeout_ms, struct vd_error *err)
{
	int saved = d->timeout_ms, rc;

	d->timeout_ms = timeout_ms;
	rc = vd_docker_ping(d, err);
	d->timeout_ms = saved;
	return rc;
}

int
vd_docker_is_local(const struct vd_docker *d)
{
	return d->host.is_unix;
}

const char *
vd_docker_api_version(const struct vd_docker *d)
{
	return d->api;
}

const char *
vd_docker_engine_version(const struct vd_docker *d)
{
	return d->engine_version;
}

const char *
vd_docker_describe(const struct vd_docker *d)
{
	return d->describe;
}
