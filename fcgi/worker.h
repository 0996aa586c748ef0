/* worker: one request worker process. Accepts FastCGI requests on the
 * pool's socket one at a time, runs them through the route table and
 * answers. On SIGTERM it finishes the request in hand, then exits; after
 * cfg->max_requests it exits 0 so the master replaces it (recycling). */
#ifndef VD_WORKER_H
#define VD_WORKER_H

#include <time.h>

#include "config.h"
#include "storeurl.h"

/* Never returns: exits the process. */
void vd_worker_main(const struct vd_config *cfg, const struct vd_storeurl *store_url,
    int listen_fd, int slot, time_t started) __attribute__((noreturn));

#endif
