/* docker: a client of the Docker Engine API over libcurl (unix socket, or
 * tcp with optional TLS as DOCKER_TLS_VERIFY/DOCKER_CERT_PATH say). One
 * client per process; its connection is reused. The API version is
 * negotiated on first use from the unversioned GET /_ping (Api-Version) and
 * GET /version (MinAPIVersion): min(ours, the daemon's), refused with both
 * versions named when the ranges do not meet. Paths are fixed endpoints
 * plus ids the caller validated. */
#ifndef VD_DOCKER_H
#define VD_DOCKER_H

#include <curl/curl.h>
#include <jansson.h>

#include "error.h"

/* The API range this client is written against. */
#define VD_DOCKER_API_MIN "1.41"
#define VD_DOCKER_API_MAX "1.52"

struct vd_docker_host {
	int  is_unix;
	char path[108];      /* unix socket */
	char base_url[300];  /* http://localhost or http(s)://host:port */
	int  tls;
};

/* Parses a DOCKER_HOST value (NULL or empty: unix:///var/run/docker.sock). */
int vd_docker_parse_host(const char *docker_host, int tls_verify, struct vd_docker_host *out,
    struct vd_error *err);

/* Chooses the API version to speak: min(ours, daemon_max), which must lie in
 * [ours_min, ours_max] and be at least daemon_min (may be NULL). */
int vd_docker_pick_api(const char *daemon_max, const char *daemon_min, char *out, size_t outsz,
    struct vd_error *err);

struct vd_docker;

/* cert_dir may be NULL (DOCKER_CERT_PATH). timeout_ms bounds each call. */
struct vd_docker *vd_docker_new(const char *docker_host, int tls_verify, const char *cert_dir,
    int timeout_ms, struct vd_error *err);
void vd_docker_free(struct vd_docker *d);

/* A versioned call: method, path such as "/containers/json?all=1", an
 * optional JSON body. On a 2xx/3xx answer returns 0 with *status and *out
 * (a new reference, NULL when the body is empty or not JSON). On a 4xx/5xx
 * answer returns -1 with *status set and err holding Docker's message;
 * when Docker cannot be reached, -1 with *status 0 and a 503 error. */
int vd_docker_call(struct vd_docker *d, const char *method, const char *path, json_t *body,
    long *status, json_t **out, struct vd_error *err);

/* Like vd_docker_call for answers that are not JSON: *out receives the raw
 * body (NUL-terminated, caller frees) and *outlen its length. */
int vd_docker_call_raw(struct vd_docker *d, const char *method, const char *path, long *status,
    char **out, size_t *outlen, struct vd_error *err);

/* The last `lines` lines of a container's stdout and stderr as UTF-8 text
 * (frames removed unless the container has a TTY), into a new string. */
int vd_docker_logs_tail(struct vd_docker *d, const char *container, int lines, int tty,
    char **out, struct vd_error *err);

/* Prepares the caller's easy handle h for a long-lived versioned GET of
 * path (e.g. /events), whose body goes to write_cb as it arrives. The caller
 * runs it (typically in a multi handle) and owns h. No overall timeout. */
int vd_docker_stream_setup(struct vd_docker *d, CURL *h, const char *path,
    size_t (*write_cb)(char *, size_t, size_t, void *), void *arg, struct vd_error *err);

/* Negotiates if needed and answers the daemon's facts. */
int vd_docker_ping(struct vd_docker *d, struct vd_error *err);

/* The same, bounded by timeout_ms instead of the client's timeout (for a
 * health check that must answer quickly whatever Docker does). */
int vd_docker_ping_within(struct vd_docker *d, int timeout_ms, struct vd_error *err);

/* 1 when the engine is on this host (a unix socket), so a container's own
 * address is reachable from here. */
int vd_docker_is_local(const struct vd_docker *d);
const char *vd_docker_api_version(const struct vd_docker *d);   /* "" until negotiated */
const char *vd_docker_engine_version(const struct vd_docker *d);
const char *vd_docker_describe(const struct vd_docker *d);     /* the address, for messages */

#endif
