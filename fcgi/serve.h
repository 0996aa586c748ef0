/* serve: what `valdock serve` adds around the pool: the data directory, the
 * internal Valkey store (its config, password and process) and nginx (its
 * config rendered from the template, and its process). The pool master
 * forks and supervises both processes; this module says how to start them. */
#ifndef VD_SERVE_H
#define VD_SERVE_H

#include <sys/types.h>

#include "config.h"
#include "error.h"
#include "storeurl.h"

/* Creates the data directory tree (data 0711, run 0711, secrets/store 0700). */
int vd_serve_prepare_dirs(const struct vd_config *cfg, struct vd_error *err);

/* The store workers use: cfg->store_url when set (store_password wins over
 * a password in the url), else the internal store in the data directory. */
int vd_serve_store_url(const struct vd_config *cfg, struct vd_storeurl *out, struct vd_error *err);

/* Writes the internal store's config; its password is made on first start
 * and kept in DATA/secrets/store.password (0600); the config holds only its
 * SHA-256. */
int vd_serve_store_setup(const struct vd_config *cfg, struct vd_error *err);

/* Renders the nginx config from the template into DATA/run/nginx/nginx.conf.new;
 * vd_serve_nginx_test checks that file, vd_serve_nginx_commit puts it in
 * place, so a config nginx refuses never replaces one it runs with. */
int vd_serve_nginx_render(const struct vd_config *cfg, struct vd_error *err);
int vd_serve_nginx_commit(const struct vd_config *cfg, struct vd_error *err);

/* Checks that nothing listens on cfg->http_addr yet, so a taken port is
 * named at once instead of nginx retrying its bind. */
int vd_serve_http_addr_free(const struct vd_config *cfg, struct vd_error *err);

/* Runs `nginx -t` on the rendered (not yet committed) config; 0 when it
 * passes. */
int vd_serve_nginx_test(const struct vd_config *cfg, struct vd_error *err);

/* In a forked child: exec the program. Never return. */
void vd_serve_exec_store(const struct vd_config *cfg) __attribute__((noreturn));
void vd_serve_exec_nginx(const struct vd_config *cfg) __attribute__((noreturn));

/* The group the FastCGI socket belongs to so nginx workers can connect:
 * nginx_user's group when running as root and that user exists. */
int vd_serve_socket_group(const struct vd_config *cfg, gid_t *gid);

#endif
