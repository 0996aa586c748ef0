/* instance: what a managed Valkey instance is, independent of any I/O.
 * The spec (JSON, kept in the store as instance:<id> field "spec"):
 *   {"id","port","image","template","config":{param: value},"memory_bytes",
 *    "publish_address","created_at"}
 * config holds the instance's catalogued parameters, copied from its
 * template at creation and changed through the config API.
 * Its files on the host:
 *   DATA/instances/<id>/conf/valkey.conf   rendered here; aclfile /etc/valkey/users.acl
 *   DATA/instances/<id>/conf/users.acl     rendered by acl.c
 *   DATA/instances/<id>/data/              RDB / AOF
 * and its container: name valdock-<id>, label io.valdock.instance=<id>, the
 * conf/ and data/ directories bind-mounted (directories, never single files),
 * the port published on the configured address. */
#ifndef VD_INSTANCE_H
#define VD_INSTANCE_H

#include <jansson.h>
#include <limits.h>

#include "error.h"

#define VD_INSTANCE_LABEL "io.valdock.instance"
#define VD_INSTANCE_CONTAINER_PREFIX "valdock-"
#define VD_INSTANCE_PORT_MIN 1024
#define VD_INSTANCE_PORT_MAX 65535
#define VD_INSTANCE_MEMORY_MIN (16LL * 1024 * 1024)
#define VD_INSTANCE_MEMORY_MAX (1024LL * 1024 * 1024 * 1024)
#define VD_INSTANCE_MAX_USERS 100
#define VD_INSTANCE_CREATE_MAX_BODY (256 * 1024)
/* the uid:gid the server runs as in the local image and the official one */
#define VD_INSTANCE_UID 999
#define VD_INSTANCE_GID 999

struct vd_instance_paths {
	char dir[1150];
	char conf_dir[1200];
	char data_dir[1200];
	char conf_file[1200];
	char acl_file[1200];
};

/* Paths of instance id under data_dir (id already checked by
 * vd_name_check). */
int vd_instance_paths(const char *data_dir, const char *id, struct vd_instance_paths *p,
    struct vd_error *err);

/* Validates the body of POST /instances against the settings document and
 * builds the spec (port 0 when the caller must allocate one; image left to
 * the caller) and the initial ACL users. 422 naming the field. */
int vd_instance_parse_create(const json_t *body, const json_t *settings, long long now,
    json_t **spec, json_t **users, struct vd_error *err);

/* Renders valkey.conf for spec into a new string: Valdock's own lines,
 * then each parameter quoted (catalog.h). */
int vd_instance_render_conf(const json_t *spec, char **out, struct vd_error *err);

/* Checks the parameters of spec against the instance itself: maxmemory
 * must fit in the container's memory limit. 422 naming the parameter. */
int vd_instance_check_config(const json_t *spec, struct vd_error *err);

/* maxmemory when the config sets none: 3/4 of the container's limit. */
long long vd_instance_default_maxmemory(const json_t *spec);

/* New reference: the body of POST /containers/create for spec. */
json_t *vd_instance_container_body(const json_t *spec, const struct vd_instance_paths *p);

/* Valdock's state for a Docker container state ("running", "exited", ...):
 * running, stopped, paused, restarting, error. */
const char *vd_instance_state_from_docker(const char *docker_state);

#endif
