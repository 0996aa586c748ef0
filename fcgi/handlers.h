/* handlers: the per-resource request handlers and the worker context they
 * run in. A handler only ever sees a request that matched its route, passed
 * the auth hook, the body checks and the route's validator. */
#ifndef VD_HANDLERS_H
#define VD_HANDLERS_H

#include <time.h>

#include "config.h"
#include "crypto.h"
#include "docker.h"
#include "request.h"
#include "router.h"
#include "store.h"

/* Owned by the worker process, not by a request. */
struct vd_ctx {
	const struct vd_config *cfg;
	struct vd_store *store;
	struct vd_docker *docker;
	time_t started;              /* when the pool master started */
	unsigned char master_key[VD_CRYPTO_KEYBYTES];
};

/* system */
int vd_h_system_health(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_system_info(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_system_metrics(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_settings_get(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_settings_put(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_v_settings_put(struct vd_req *, struct vd_error *);
int vd_h_openapi(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);

/* instances */
int vd_h_instances_create(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_instances_list(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_instances_get(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_instances_start(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_instances_stop(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_instances_restart(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_instances_delete(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_instances_stats(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);

/* ACL users of an instance */
int vd_h_acls_list(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_acls_get(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_acls_create(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_acls_update(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_acls_delete(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_acls_effective(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);

/* configuration and templates */
int vd_h_config_get(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_config_put(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_templates_list(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_templates_get(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_templates_create(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_templates_update(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_templates_delete(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);

/* Starts the instance's container (recreating it from the stored spec and
 * files when it is missing; stopping it first when restart) and waits
 * until the server answers as the admin user. Call under the lock. */
int vd_instances_bring_up(struct vd_ctx *ctx, const char *id, const json_t *spec,
    const char *admin_pw, int restart, struct vd_error *err);

/* Removes an instance's container, files (all, or its config only with
 * keep_data), records and port reservation; each step tolerates what is
 * already gone. no_container: none was made, Docker is not asked (a create
 * that failed before it, perhaps because Docker is down). The create
 * rollback, delete and the housekeeper's clean-up of interrupted creates
 * share it. */
int vd_instances_teardown(struct vd_ctx *ctx, const char *id, long port, int keep_data,
    int no_container, struct vd_error *err);

#endif
