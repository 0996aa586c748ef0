#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "fsutil.h"
#include "housekeeper.h"
#include "log.h"
#include "pool.h"
#include "serve.h"
#include "store.h"
#include "worker.h"

#define POOL_MAX_CHILDREN 600
#define POOL_CRASH_WINDOW 10      /* seconds */
#define POOL_CRASH_LIMIT 5        /* crashes within the window that start the back-off */
#define POOL_BACKOFF_MAX 30       /* seconds */
#define POOL_STORE_WAIT 20        /* seconds for the internal store to answer at start */
#define POOL_EARLY_EXIT 5         /* seconds: nginx failing this soon after its first start is fatal */

enum child_kind { KIND_WORKER, KIND_HOUSEKEEPER, KIND_STORE, KIND_NGINX, KIND_N };

static const char *const kind_names[KIND_N] = { "worker", "housekeeper", "store", "nginx" };

struct child {
	pid_t pid;
	enum child_kind kind;
	int slot;
	unsigned gen;
	time_t started;
	int retiring;              /* we asked it to go (reload, shutdown) */
};

struct kind_state {
	time_t crashes[POOL_CRASH_LIMIT];
	int ncrash;
	int backoff;
	time_t next_start;
	int ever_started;
};

static struct {
	struct vd_config *cfg;
	const struct vd_pool_opts *opts;
	struct vd_storeurl store_url;
	int manage_store, manage_nginx;
	int listen_fd;
	int sigpipe[2];
	struct child children[POOL_MAX_CHILDREN];
	int nchildren;
	struct kind_state kinds[KIND_N];
	unsigned gen;
	time_t started;
	pid_t gone_group;          /* process group of a dead nginx/store, until it is empty */
	int stopping;              /* 0 running, 1 draining, 2 stopping the store */
	time_t deadline;
	int exit_code;
} pool;

static void pool_begin_stop(void);

/* Seconds on a clock that never steps: back-off and deadlines. */
static time_t
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void
pool_on_signal(int sig)
{
	int saved = errno;
	unsigned char b = (unsigned char)sig;

	if (write(pool.sigpipe[1], &b, 1) < 0) {
		/* the pipe is full: a wake-up is already pending */
	}
	errno = saved;
}

static int
pool_signals(void)
{
	struct sigaction sa;
	static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT };

	if (pipe2(pool.sigpipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = pool_on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigaction(sigs[i], &sa, NULL) < 0)
			return -1;
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	return 0;
}

/* Binds the FastCGI socket: 0660, group of nginx's user when root. A socket
 * another live pool answers on is refused, a stale one replaced. */
static int
pool_bind(void)
{
	struct sockaddr_un sa;
	const char *path = pool.cfg->socket_path;
	char dir[sizeof(sa.sun_path)], *slash;
	struct vd_error err;
	struct stat st;
	mode_t old;
	gid_t gid;
	int fd, probe;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		vd_log_warnx("socket path %s is too long", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(probe);
		vd_log_warnx("another process already serves %s: stop it first", path);
		return -1;
	}
	if (probe >= 0)
		close(probe);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			vd_log_warnx("%s exists and is not a socket: refusing to replace it", path);
			return -1;
		}
		unlink(path);   /* a stale socket nobody answers on */
	}
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (vd_fs_mkdirs(dir, 0711, &err) < 0) {
			vd_log_warnx("%s", err.message);
			return -1;
		}
	}
	/* non-blocking: workers wait in ppoll() and a connection another worker
	 * took first must not block them in accept() (see worker.c) */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		vd_log_warn("socket");
		return -1;
	}
	old = umask(0117);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		umask(old);
		vd_log_warn("cannot bind %s", path);
		close(fd);
		return -1;
	}
	umask(old);
	if (chmod(path, 0660) < 0)
		vd_log_warn("chmod %s", path);
	if (vd_serve_socket_group(pool.cfg, &gid) == 0 && chown(path, (uid_t)-1, gid) < 0)
		vd_log_warn("chown %s", path);
	if (listen(fd, 1024) < 0) {
		vd_log_warn("listen on %s", path);
		close(fd);
		return -1;
	}
	return fd;
}

void
vd_pool_child_signals(void (*on_term)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static struct child *
pool_find(pid_t pid)
{
	for (int i = 0; i < pool.nchildren; i++)
		if (pool.children[i].pid == pid)
			return &pool.children[i];
	return NULL;
}

static void
pool_remove(struct child *c)
{
	*c = pool.children[--pool.nchildren];
}

static int
pool_count(enum child_kind kind, int live_only)
{
	int n = 0;

	for (int i = 0; i < pool.nchildren; i++)
		if (pool.children[i].kind == kind && (!live_only || !pool.children[i].retiring))
			n++;
	return n;
}

/* Forks a child with signals blocked, so no handler of ours runs in it
 * before it has set its own. */
static pid_t
pool_spawn(enum child_kind kind, int slot)
{
	sigset_t all, old;
	pid_t pid, master;

	if (pool.nchildren == POOL_MAX_CHILDREN) {
		vd_log_warnx("child table full");
		return -1;
	}
	master = getpid();
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = fork();
	if (pid == 0) {
		struct sigaction sa;
		static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE };

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			sigaction(sigs[i], &sa, NULL);
		close(pool.sigpipe[0]);
		close(pool.sigpipe[1]);
		/* if the master dies (even by SIGKILL), its children follow */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != master)
			_exit(1);     /* it died before prctl took effect */
		sigprocmask(SIG_SETMASK, &old, NULL);
		/* the store and nginx outlive nothing of ours: only workers keep the
		 * listening socket */
		switch (kind) {
		case KIND_WORKER:
			vd_worker_main(pool.cfg, &pool.store_url, pool.listen_fd, slot, pool.started);
		case KIND_HOUSEKEEPER:
			close(pool.listen_fd);
			vd_housekeeper_main(pool.cfg, &pool.store_url);
		case KIND_STORE:
			if (pool.listen_fd >= 0)
				close(pool.listen_fd);
			setpgid(0, 0);   /* a terminal's Ctrl-C reaches us, not it directly */
			vd_serve_exec_store(pool.cfg);
		case KIND_NGINX:
			close(pool.listen_fd);
			setpgid(0, 0);
			vd_serve_exec_nginx(pool.cfg);
		default:
			_exit(1);
		}
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		vd_log_warn("fork of %s", kind_names[kind]);
		return -1;
	}
	pool.children[pool.nchildren++] = (struct child){
		.pid = pid, .kind = kind, .slot = slot, .gen = pool.gen, .started = mono_now(),
	};
	pool.kinds[kind].ever_started = 1;
	return pid;
}

/* Records a crash; after POOL_CRASH_LIMIT within the window the next start
 * waits, doubling up to POOL_BACKOFF_MAX. */
static void
pool_crashed(enum child_kind kind, time_t now)
{
	struct kind_state *k = &pool.kinds[kind];
	int recent = 0;

	if (k->ncrash == POOL_CRASH_LIMIT) {
		memmove(k->crashes, k->crashes + 1, sizeof(k->crashes[0]) * (POOL_CRASH_LIMIT - 1));
		k->ncrash--;
	}
	k->crashes[k->ncrash++] = now;
	for (int i = 0; i < k->ncrash; i++)
		if (now - k->crashes[i] < POOL_CRASH_WINDOW)
			recent++;
	if (recent >= POOL_CRASH_LIMIT) {
		k->backoff = k->backoff ? k->backoff * 2 : 1;
		if (k->backoff > POOL_BACKOFF_MAX)
			k->backoff = POOL_BACKOFF_MAX;
		k->next_start = now + k->backoff;
		vd_log_warnx("crash loop: %s crashed %d times in %d s; next start in %d s",
		    kind_names[kind], recent, POOL_CRASH_WINDOW, k->backoff);
	} else {
		k->backoff = 0;
	}
}

static void
pool_reap(void)
{
	time_t now = mono_now();
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct child *c = pool_find(pid);
		char what[48];
		int crashed;

		if (c == NULL)
			continue;
		if (c->kind == KIND_WORKER)
			snprintf(what, sizeof(what), "worker %d (pid %ld)", c->slot, (long)pid);
		else
			snprintf(what, sizeof(what), "%s (pid %ld)", kind_names[c->kind], (long)pid);
		crashed = !c->retiring && (WIFSIGNALED(status) || WEXITSTATUS(status) != 0 ||
		    c->kind == KIND_STORE || c->kind == KIND_NGINX || c->kind == KIND_HOUSEKEEPER);
		if (WIFSIGNALED(status))
			(crashed ? vd_log_warnx : vd_log_info)("%s %s by signal %d (%s)", what,
			    crashed ? "crashed: killed" : "stopped", WTERMSIG(status),
			    strsignal(WTERMSIG(status)));
		else if (crashed)
			vd_log_warnx("%s exited unexpectedly with status %d", what, WEXITSTATUS(status));
		/* a program we exec'd may leave children (nginx workers) behind:
		 * they go with it, or the next one finds its port taken */
		if (c->kind == KIND_NGINX || c->kind == KIND_STORE) {
			kill(-pid, SIGKILL);
			pool.gone_group = pid;
		}
		if (crashed && c->kind == KIND_NGINX && pool.stopping == 0 && WIFEXITED(status) &&
		    WEXITSTATUS(status) != 0 &&
		    now - c->started < POOL_EARLY_EXIT && pool.kinds[KIND_NGINX].ncrash == 0) {
			vd_log_warnx("nginx could not start (its message is above); stopping");
			pool.exit_code = 1;
			pool_begin_stop();
		}
		if (crashed)
			pool_crashed(c->kind, now);
		pool_remove(c);
	}
}

static void
pool_signal_kind(enum child_kind kind, int sig)
{
	for (int i = 0; i < pool.nchildren; i++)
		if (pool.children[i].kind == kind) {
			pool.children[i].retiring = 1;
			kill(pool.children[i].pid, sig);
		}
}

/* Starts whatever is missing: a worker per slot of the current
 * generation, the housekeeper, the store and nginx when managed. */
static void
pool_fill(void)
{
	time_t now = mono_now();

	if (now >= pool.kinds[KIND_WORKER].next_start) {
		for (int slot = 0; slot < pool.cfg->workers; slot++) {
			int have = 0;

			for (int i = 0; i < pool.nchildren; i++) {
				struct child *c = &pool.children[i];

				if (c->kind == KIND_WORKER && c->slot == slot && !c->retiring)
					have = 1;
			}
			if (!have)
				pool_spawn(KIND_WORKER, slot);
		}
	}
	if (now >= pool.kinds[KIND_HOUSEKEEPER].next_start && pool_count(KIND_HOUSEKEEPER, 1) == 0)
		pool_spawn(KIND_HOUSEKEEPER, 0);
	/* a successor waits until its predecessor's group is gone: nginx workers
	 * hold the port until they have exited */
	if (pool.gone_group != 0) {
		if (kill(-pool.gone_group, 0) == 0)
			return;
		pool.gone_group = 0;
	}
	if (pool.manage_store && now >= pool.kinds[KIND_STORE].next_start &&
	    pool_count(KIND_STORE, 0) == 0)
		pool_spawn(KIND_STORE, 0);
	if (pool.manage_nginx && now >= pool.kinds[KIND_NGINX].next_start &&
	    pool_count(KIND_NGINX, 0) == 0)
		pool_spawn(KIND_NGINX, 0);
}

/* Waits until the store answers PING, watching that its process lives. */
static int
pool_wait_store(void)
{
	struct vd_store *st = vd_store_new(&pool.store_url, 500, 2000);
	struct vd_error err;
	int tries = POOL_STORE_WAIT * 10;
	int ok = -1;

	vd_err_clear(&err);
	while (tries-- > 0) {
		if (vd_store_ping(st, &err) == 0) {
			ok = 0;
			break;
		}
		if (pool.manage_store) {
			pool_reap();
			if (pool_count(KIND_STORE, 0) == 0)
				break;
		}
		poll(NULL, 0, 100);
	}
	if (ok == 0 && vd_store_schema_init(st, &err) < 0)
		ok = -1;
	if (ok < 0)
		vd_log_warnx("store not ready: %s", err.message[0] ? err.message : "its process exited");
	vd_store_free(st);
	return ok;
}

/* SIGHUP: re-read the configuration; a new generation of workers and
 * housekeeper replaces the old one, each old worker finishing its request. */
static void
pool_reload(void)
{
	struct vd_config next;
	struct vd_error err;

	if (vd_config_load(&next, pool.opts->argc, pool.opts->argv, &err) < 0) {
		vd_log_warnx("reload refused, keeping the running configuration: %s", err.message);
		return;
	}
	if (pool.manage_nginx && (vd_serve_nginx_render(&next, &err) < 0 ||
	    vd_serve_nginx_test(&next, &err) < 0 || vd_serve_nginx_commit(&next, &err) < 0)) {
		vd_log_warnx("reload refused, keeping the running configuration: %s", err.message);
		return;
	}
	if (strcmp(next.socket_path, pool.cfg->socket_path) != 0 ||
	    strcmp(next.data_dir, pool.cfg->data_dir) != 0 ||
	    strcmp(next.store_url, pool.cfg->store_url) != 0)
		vd_log_warnx("reload: socket, data_dir and store_url changes need a restart; keeping them");
	snprintf(next.socket_path, sizeof(next.socket_path), "%s", pool.cfg->socket_path);
	snprintf(next.data_dir, sizeof(next.data_dir), "%s", pool.cfg->data_dir);
	snprintf(next.store_url, sizeof(next.store_url), "%s", pool.cfg->store_url);
	*pool.cfg = next;
	pool.gen++;
	pool_signal_kind(KIND_WORKER, SIGTERM);
	pool_signal_kind(KIND_HOUSEKEEPER, SIGTERM);
	for (int i = 0; pool.manage_nginx && i < pool.nchildren; i++)
		if (pool.children[i].kind == KIND_NGINX)
			kill(pool.children[i].pid, SIGHUP);
	vd_log_info("reloaded: %d workers, generation %u", pool.cfg->workers, pool.gen);
}

static void
pool_begin_stop(void)
{
	if (pool.stopping)
		return;
	vd_log_info("stopping: draining requests (up to %d s)", pool.cfg->shutdown_timeout);
	pool.stopping = 1;
	pool.deadline = mono_now() + pool.cfg->shutdown_timeout;
}

/* The stages of a shutdown, each bounded by shutdown_timeout: nginx stops
 * taking requests and finishes those it has (the workers still serve
 * them), then the workers and the housekeeper go, then the store. */
static const struct {
	enum child_kind kinds[2];
	int nkinds;
	int sig;
	const char *what;
} stop_stages[] = {
	{ { KIND_NGINX }, 1, SIGQUIT, "nginx" },
	{ { KIND_WORKER, KIND_HOUSEKEEPER }, 2, SIGTERM, "workers" },
	{ { KIND_STORE }, 1, SIGTERM, "store" },
};

/* One step of the shutdown; 1 when everything is gone. The stage's signal
 * is sent again each step: a SIGTERM landing just before a worker enters
 * accept() would otherwise be missed. */
static int
pool_stop_step(void)
{
	time_t now = mono_now();

	while (pool.stopping - 1 < (int)(sizeof(stop_stages) / sizeof(stop_stages[0]))) {
		int stage = pool.stopping - 1, left = 0;

		for (int k = 0; k < stop_stages[stage].nkinds; k++)
			left += pool_count(stop_stages[stage].kinds[k], 0);
		if (left == 0) {
			pool.stopping++;
			pool.deadline = now + pool.cfg->shutdown_timeout;
			continue;
		}
		for (int k = 0; k < stop_stages[stage].nkinds; k++)
			pool_signal_kind(stop_stages[stage].kinds[k], now < pool.deadline ?
			    stop_stages[stage].sig : SIGKILL);
		if (now >= pool.deadline)
			vd_log_warnx("%s: %d processes still running after %d s: killed them",
			    stop_stages[stage].what, left, pool.cfg->shutdown_timeout);
		return 0;
	}
	return 1;
}

static void
pool_drain_signals(void)
{
	unsigned char buf[64];
	ssize_t n;

	while ((n = read(pool.sigpipe[0], buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			switch (buf[i]) {
			case SIGCHLD:
				break;   /* reaped below on every turn */
			case SIGHUP:
				if (!pool.stopping)
					pool_reload();
				break;
			default:
				pool_begin_stop();
				break;
			}
		}
	}
}

int
vd_pool_main(struct vd_config *cfg, const struct vd_pool_opts *opts)
{
	struct vd_error err;

	memset(&pool, 0, sizeof(pool));
	pool.cfg = cfg;
	pool.opts = opts;
	pool.listen_fd = -1;
	pool.started = time(NULL);
	pool.manage_store = opts->serve && cfg->store_url[0] == '\0';
	pool.manage_nginx = opts->serve;
	vd_log_set_role("master");
	if (pool_signals() < 0) {
		vd_log_warn("cannot install signal handlers");
		return 1;
	}
	if (opts->serve && vd_serve_prepare_dirs(cfg, &err) < 0)
		goto fail;
	{
		/* made here, once, before any worker needs it */
		unsigned char key[VD_CRYPTO_KEYBYTES];
		int rc = vd_crypto_master_key(cfg->data_dir, 1, key, &err);

		explicit_bzero(key, sizeof(key));
		if (rc < 0)
			goto fail;
	}
	if (pool.manage_store) {
		if (vd_serve_store_setup(cfg, &err) < 0)
			goto fail;
	}
	if (vd_serve_store_url(cfg, &pool.store_url, &err) < 0)
		goto fail;
	/* the socket first: a second pool on the same data dir stops here,
	 * before it starts a second store on the same files */
	pool.listen_fd = pool_bind();
	if (pool.listen_fd < 0)
		return 1;
	if (pool.manage_store) {
		pool_spawn(KIND_STORE, 0);
		if (pool_wait_store() < 0) {
			pool.exit_code = 1;
			pool_begin_stop();
		}
	} else if (pool_wait_store() < 0) {
		vd_log_warnx("the store is not answering yet: requests that need it get 503 until it does");
	}
	if (!pool.stopping && pool.manage_nginx &&
	    (vd_serve_http_addr_free(cfg, &err) < 0 || vd_serve_nginx_render(cfg, &err) < 0 ||
	    vd_serve_nginx_test(cfg, &err) < 0 || vd_serve_nginx_commit(cfg, &err) < 0)) {
		vd_log_warnx("%s", err.message);
		pool.exit_code = 1;
		pool_begin_stop();
	}
	if (!pool.stopping)
		vd_log_info("valdock %s: %d workers on %s%s%s", VD_VERSION, cfg->workers, cfg->socket_path,
		    pool.manage_nginx ? ", http://" : "", pool.manage_nginx ? cfg->http_addr : "");
	for (;;) {
		struct pollfd p = { .fd = pool.sigpipe[0], .events = POLLIN };

		pool_drain_signals();
		pool_reap();
		if (pool.stopping) {
			if (pool_stop_step())
				break;
		} else {
			pool_fill();
			/* old workers of a reload that missed their SIGTERM */
			for (int i = 0; i < pool.nchildren; i++)
				if (pool.children[i].retiring && pool.children[i].kind != KIND_NGINX &&
				    pool.children[i].kind != KIND_STORE)
					kill(pool.children[i].pid, SIGTERM);
		}
		poll(&p, 1, pool.stopping ? 200 : 1000);
	}
	if (pool.listen_fd >= 0) {
		close(pool.listen_fd);
		unlink(cfg->socket_path);
	}
	vd_log_info("stopped");
	return pool.exit_code;
fail:
	vd_log_warnx("%s", err.message);
	return 1;
}
