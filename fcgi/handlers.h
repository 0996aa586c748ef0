/* handlers: the per-resource request handlers and the worker context they
 * run in. A handler only ever sees a request that matched its route, passed
 * the auth hook, the body checks and the route's validator. */
#ifndef VD_HANDLERS_H
#define VD_HANDLERS_H

#include <time.h>

#include "config.h"
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
};

/* system */
int vd_h_system_health(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_system_info(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_system_metrics(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_settings_get(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_h_settings_put(struct vd_ctx *, struct vd_req *, struct vd_resp *, struct vd_error *);
int vd_v_settings_put(struct vd_req *, struct vd_error *);

#endif
