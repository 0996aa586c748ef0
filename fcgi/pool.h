/* pool: the master process. It binds the FastCGI socket before forking,
 * then forks and supervises every child: N request workers, the
 * housekeeper and, under `serve`, the internal store and nginx. It reaps
 * children and restarts them (a crash logged with its signal, a crash loop
 * slowed by a growing back-off), recycles workers, reloads on SIGHUP
 * (new workers replace old ones, each finishing its request) and on
 * SIGTERM/SIGINT drains requests, then stops nginx, workers and the store in
 * that order, escalating to SIGKILL after cfg->shutdown_timeout. */
#ifndef VD_POOL_H
#define VD_POOL_H

#include "config.h"

struct vd_pool_opts {
	int serve;      /* run the store (unless cfg->store_url) and nginx too */
	int argc;       /* flags, re-read with the environment on SIGHUP */
	char **argv;
};

/* In a child of the pool: on_term handles SIGTERM and SIGINT (without
 * SA_RESTART), SIGPIPE and SIGHUP are ignored. */
void vd_pool_child_signals(void (*on_term)(int));

/* Runs until stopped; returns the process exit code. */
int vd_pool_main(struct vd_config *cfg, const struct vd_pool_opts *opts);

#endif
