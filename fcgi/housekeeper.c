#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "docker.h"
#include "housekeeper.h"
#include "log.h"
#include "store.h"

static volatile sig_atomic_t hk_stop;

static void
hk_on_term(int sig)
{
	(void)sig;
	hk_stop = 1;
}

static void
hk_tick(struct vd_store *st, struct vd_docker *dk, int *store_was_down)
{
	struct vd_error err;
	char now[32], pid[32], docker_ok[4];
	redisReply *r;

	vd_err_clear(&err);
	if (vd_store_schema_init(st, &err) < 0) {
		if (!*store_was_down)
			vd_log_warnx("store: %s", err.message);
		*store_was_down = 1;
		return;
	}
	if (*store_was_down)
		vd_log_info("store is reachable again");
	*store_was_down = 0;
	snprintf(docker_ok, sizeof(docker_ok), "%d", vd_docker_ping(dk, NULL) == 0);
	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	r = vd_store_cmdv(st, &err, "HSET", "housekeeper", "pid", pid, "last_seen", now,
	    "docker_ok", docker_ok, NULL);
	if (r == NULL)
		vd_log_warnx("heartbeat: %s", err.message);
	else
		freeReplyObject(r);
}

void
vd_housekeeper_main(const struct vd_config *cfg, const struct vd_storeurl *store_url)
{
	struct sigaction sa;
	struct vd_store *st;
	struct vd_docker *dk;
	struct vd_error err;
	int store_was_down = 0;

	vd_log_set_role("housekeeper");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = hk_on_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	st = vd_store_new(store_url, cfg->store_timeout_ms, cfg->store_timeout_ms);
	dk = vd_docker_new(cfg->docker_host, cfg->docker_tls_verify,
	    cfg->docker_cert_path[0] ? cfg->docker_cert_path : NULL, 5000, &err);
	if (st == NULL || dk == NULL) {
		vd_log_warnx("cannot set up: %s", dk ? "out of memory" : err.message);
		_exit(1);
	}
	while (!hk_stop) {
		hk_tick(st, dk, &store_was_down);
		/* sleep in small steps so SIGTERM is answered at once */
		for (int i = 0; i < VD_HOUSEKEEPER_TICK_SECONDS * 10 && !hk_stop; i++)
			poll(NULL, 0, 100);
	}
	vd_store_free(st);
	vd_docker_free(dk);
	_exit(0);
}
