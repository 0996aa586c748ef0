/* housekeeper: the one background process of the pool, restarted by the
 * master if it dies. Slow or periodic work lives here, never on a request
 * path: it follows Docker's event stream into the instances' states, and
 * every tick keeps the store's schema key, reconciles every instance with
 * its container (missing ones, orphans, interrupted creates) and writes a
 * heartbeat (pid, last run, Docker reachable) that requests read. */
#ifndef VD_HOUSEKEEPER_H
#define VD_HOUSEKEEPER_H

#include "config.h"
#include "storeurl.h"

#define VD_HOUSEKEEPER_TICK_SECONDS 5

void vd_housekeeper_main(const struct vd_config *cfg, const struct vd_storeurl *store_url)
    __attribute__((noreturn));

#endif
