/* config: the process configuration. Every setting is declared once in a
 * table (file key, environment variable, flag, type, bounds, help), read in
 * this order, later winning: defaults, config file, environment, flags.
 * SIGHUP re-reads the same sources. */
#ifndef VD_CONFIG_H
#define VD_CONFIG_H

#include <limits.h>
#include <stdio.h>

#include "error.h"

struct vd_config {
	char config_file[PATH_MAX];
	char data_dir[1024];
	char http_addr[128];
	char store_url[1024];
	char store_password[256];
	char docker_host[512];
	int  docker_tls_verify;
	char docker_cert_path[256];
	char socket_path[108];
	int  workers;
	int  max_requests;
	int  shutdown_timeout;
	int  max_body;
	int  store_timeout_ms;
	int  docker_timeout_ms;
	char web_root[PATH_MAX];
	char nginx_template[PATH_MAX];
	char nginx_bin[PATH_MAX];
	char nginx_user[64];
	char valkey_bin[PATH_MAX];
};

/* Fills cfg from all sources. argv holds only flags (the subcommand
 * removed). */
int vd_config_load(struct vd_config *cfg, int argc, char **argv, struct vd_error *err);

/* Applies the text of a config file onto cfg; `source` names it in errors. */
int vd_config_parse_file_text(struct vd_config *cfg, const char *text, const char *source,
    struct vd_error *err);

/* Prints the table as help text. */
void vd_config_usage(FILE *out);

#endif
