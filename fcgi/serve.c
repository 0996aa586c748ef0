#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crypto.h"
#include "fsutil.h"
#include "log.h"
#include "net.h"
#include "serve.h"
#include "str.h"

#define STORE_PASSWORD_BYTES 32
#define NGINX_TEMPLATE_MAX (64 * 1024)
#define NGINX_CONF_MAX (128 * 1024)

static int
path_join(char *out, size_t outsz, const char *dir, const char *name, struct vd_error *err)
{
	if ((size_t)snprintf(out, outsz, "%s/%s", dir, name) >= outsz)
		return vd_err(err, VD_EINVALID, "path_too_long", "%s/%s is too long", dir, name);
	return 0;
}

/* Values put into nginx's config must not be able to end a directive or
 * open a block. */
static int
nginx_value_ok(const char *v)
{
	if (*v == '\0')
		return 0;
	for (; *v; v++)
		if ((unsigned char)*v < 0x20 || strchr(" ;{}'\"#$\\", *v) != NULL)
			return 0;
	return 1;
}

int
vd_serve_prepare_dirs(const struct vd_config *cfg, struct vd_error *err)
{
	static const struct { const char *name; mode_t mode; } dirs[] = {
		{ "", 0711 }, { "run", 0711 }, { "run/nginx", 0755 }, { "secrets", 0700 },
		{ "store", 0700 }, { "instances", 0711 },
	};
	char path[PATH_MAX];

	/* the path ends up in the store's and nginx's config files */
	if (!nginx_value_ok(cfg->data_dir))
		return vd_err(err, VD_EINVALID, "bad_config",
		    "data_dir must not hold spaces, quotes, ';', '#', '$', braces or control characters");
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (path_join(path, sizeof(path), cfg->data_dir, dirs[i].name, err) < 0 ||
		    vd_fs_mkdirs(path, dirs[i].mode, err) < 0)
			return -1;
		if (chmod(path, dirs[i].mode) < 0)
			return vd_err(err, VD_EINTERNAL, "chmod_failed", "cannot chmod %s: %s", path,
			    strerror(errno));
	}
	return 0;
}

static int
store_socket_path(const struct vd_config *cfg, char *out, size_t outsz, struct vd_error *err)
{
	if ((size_t)snprintf(out, outsz, "%s/run/store.sock", cfg->data_dir) >= outsz)
		return vd_err(err, VD_EINVALID, "path_too_long",
		    "data_dir is too long for the store's unix socket path");
	return 0;
}

int
vd_serve_store_url(const struct vd_config *cfg, struct vd_storeurl *u, struct vd_error *err)
{
	char path[PATH_MAX], *pw = NULL;
	size_t len;

	if (cfg->store_url[0] != '\0') {
		if (vd_storeurl_parse(cfg->store_url, u, err) < 0)
			return -1;
		if (cfg->store_password[0] != '\0')
			vd_str_copy(u->password, sizeof(u->password), cfg->store_password);
		return 0;
	}
	memset(u, 0, sizeof(*u));
	u->is_unix = 1;
	if (store_socket_path(cfg, u->path, sizeof(u->path), err) < 0 ||
	    path_join(path, sizeof(path), cfg->data_dir, "secrets/store.password", err) < 0)
		return -1;
	if (vd_fs_read(path, 256, &pw, &len, err) < 0)
		return -1;
	while (len > 0 && (pw[len - 1] == '\n' || pw[len - 1] == '\r'))
		pw[--len] = '\0';
	vd_str_copy(u->password, sizeof(u->password), pw);
	explicit_bzero(pw, len);
	free(pw);
	return 0;
}

int
vd_serve_store_setup(const struct vd_config *cfg, struct vd_error *err)
{
	char pwpath[PATH_MAX], confpath[PATH_MAX], sock[108];
	char pw[2 * STORE_PASSWORD_BYTES + 1], hash[65];
	char conf[PATH_MAX * 3 + 512];
	char *old = NULL;
	size_t oldlen;
	int n;

	if (path_join(pwpath, sizeof(pwpath), cfg->data_dir, "secrets/store.password", err) < 0 ||
	    path_join(confpath, sizeof(confpath), cfg->data_dir, "store/valkey.conf", err) < 0 ||
	    store_socket_path(cfg, sock, sizeof(sock), err) < 0)
		return -1;
	if (vd_fs_read(pwpath, 256, &old, &oldlen, NULL) == 0) {
		while (oldlen > 0 && (old[oldlen - 1] == '\n' || old[oldlen - 1] == '\r'))
			old[--oldlen] = '\0';
		vd_crypto_sha256_hex(old, oldlen, hash);
		explicit_bzero(old, oldlen);
		free(old);
	} else {
		if (vd_crypto_random_hex(pw, sizeof(pw), STORE_PASSWORD_BYTES) < 0 ||
		    vd_fs_write_atomic(pwpath, pw, strlen(pw), 0600, err) < 0)
			return -1;
		vd_crypto_sha256_hex(pw, strlen(pw), hash);
		explicit_bzero(pw, sizeof(pw));
		vd_log_info("generated the internal store password in %s", pwpath);
	}
	/* The store listens on a private unix socket only, persists every write
	 * (AOF, fsync always) and knows its password only as a hash. */
	n = snprintf(conf, sizeof(conf),
	    "# written by valdock serve at every start; edits are lost\n"
	    "port 0\n"
	    "unixsocket %s\n"
	    "unixsocketperm 700\n"
	    "dir %s/store\n"
	    "appendonly yes\n"
	    "appendfsync always\n"
	    "save \"\"\n"
	    "daemonize no\n"
	    "logfile \"\"\n"
	    "loglevel warning\n"
	    "user default on #%s ~* &* +@all\n",
	    sock, cfg->data_dir, hash);
	if (n < 0 || (size_t)n >= sizeof(conf))
		return vd_err(err, VD_EINTERNAL, "path_too_long", "store config too long");
	return vd_fs_write_atomic(confpath, conf, (size_t)n, 0600, err);
}

int
vd_serve_socket_group(const struct vd_config *cfg, gid_t *gid)
{
	struct passwd *pw;

	if (geteuid() != 0 || cfg->nginx_user[0] == '\0')
		return -1;
	pw = getpwnam(cfg->nginx_user);
	if (pw == NULL)
		return -1;
	*gid = pw->pw_gid;
	return 0;
}

int
vd_serve_nginx_render(const struct vd_config *cfg, struct vd_error *err)
{
	char path[PATH_MAX], run[PATH_MAX], user[128] = "", maxbody[32];
	char *tpl = NULL, *out = NULL;
	const char *p;
	size_t o = 0;
	int ret = -1;
	struct {
		const char *name;
		const char *value;
	} vars[] = {
		{ "@LISTEN@", cfg->http_addr },
		{ "@WEB_ROOT@", cfg->web_root },
		{ "@FCGI_SOCKET@", cfg->socket_path },
		{ "@RUN_DIR@", run },
		{ "@USER_DIRECTIVE@", user },
		{ "@MAX_BODY@", maxbody },
	};

	if (path_join(run, sizeof(run), cfg->data_dir, "run", err) < 0)
		return -1;
	if (geteuid() == 0 && cfg->nginx_user[0] != '\0') {
		if (!nginx_value_ok(cfg->nginx_user) || getpwnam(cfg->nginx_user) == NULL)
			return vd_err(err, VD_EINVALID, "bad_config", "nginx_user '%s' does not exist",
			    cfg->nginx_user);
		snprintf(user, sizeof(user), "user %s;", cfg->nginx_user);
	}
	/* nginx's own limit sits above the pool's so the pool answers 413 in
	 * JSON for anything nginx lets through */
	snprintf(maxbody, sizeof(maxbody), "%d", cfg->max_body * 2);
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if (vars[i].value != user && !nginx_value_ok(vars[i].value))
			return vd_err(err, VD_EINVALID, "bad_config",
			    "%s value '%s' is empty or holds a character nginx would misread",
			    vars[i].name, vars[i].value);
	if (vd_fs_read(cfg->nginx_template, NGINX_TEMPLATE_MAX, &tpl, NULL, err) < 0)
		return -1;
	out = malloc(NGINX_CONF_MAX);
	if (out == NULL) {
		vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
		goto done;
	}
	for (p = tpl; *p != '\0';) {
		size_t i, n;

		if (*p == '@') {
			for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
				n = strlen(vars[i].name);
				if (strncmp(p, vars[i].name, n) == 0)
					break;
			}
			if (i < sizeof(vars) / sizeof(vars[0])) {
				size_t vl = strlen(vars[i].value);

				if (o + vl >= NGINX_CONF_MAX)
					goto toolong;
				memcpy(out + o, vars[i].value, vl);
				o += vl;
				p += strlen(vars[i].name);
				continue;
			}
		}
		if (o + 1 >= NGINX_CONF_MAX)
			goto toolong;
		out[o++] = *p++;
	}
	if (path_join(path, sizeof(path), cfg->data_dir, "run/nginx/nginx.conf.new", err) < 0)
		goto done;
	ret = vd_fs_write_atomic(path, out, o, 0644, err);
	goto done;
toolong:
	vd_err(err, VD_EINTERNAL, "nginx_conf", "rendered nginx config is too long");
done:
	free(tpl);
	free(out);
	return ret;
}

int
vd_serve_http_addr_free(const struct vd_config *cfg, struct vd_error *err)
{
	char host[64];
	long port;

	if (vd_net_split_hostport(cfg->http_addr, host, sizeof(host), &port) < 0)
		return vd_err(err, VD_EINVALID, "bad_config",
		    "http_addr '%s' must be ADDRESS:PORT, e.g. 127.0.0.1:8080 or [::1]:8080", cfg->http_addr);
	if (!vd_net_tcp_free(host, port))
		return vd_err(err, VD_ECONFLICT, "port_in_use",
		    "%s is in use by another program (or is not an address of this host): "
		    "set VALDOCK_HTTP_ADDR or stop it", cfg->http_addr);
	return 0;
}

static void
nginx_argv(const struct vd_config *cfg, const char *name, char conf[PATH_MAX], char prefix[PATH_MAX])
{
	snprintf(conf, PATH_MAX, "%s/run/nginx/%s", cfg->data_dir, name);
	snprintf(prefix, PATH_MAX, "%s/run/nginx/", cfg->data_dir);
}

int
vd_serve_nginx_commit(const struct vd_config *cfg, struct vd_error *err)
{
	char from[PATH_MAX], to[PATH_MAX], prefix[PATH_MAX];

	nginx_argv(cfg, "nginx.conf.new", from, prefix);
	nginx_argv(cfg, "nginx.conf", to, prefix);
	if (rename(from, to) < 0)
		return vd_err(err, VD_EINTERNAL, "nginx_conf", "cannot rename %s: %s", from, strerror(errno));
	return 0;
}

int
vd_serve_nginx_test(const struct vd_config *cfg, struct vd_error *err)
{
	char conf[PATH_MAX], prefix[PATH_MAX];
	pid_t pid;
	int status;

	nginx_argv(cfg, "nginx.conf.new", conf, prefix);
	pid = fork();
	if (pid < 0)
		return vd_err(err, VD_EINTERNAL, "fork_failed", "cannot fork: %s", strerror(errno));
	if (pid == 0) {
		execlp(cfg->nginx_bin, cfg->nginx_bin, "-q", "-t", "-e", "stderr", "-c", conf, "-p",
		    prefix, (char *)NULL);
		vd_log_warn("cannot run %s", cfg->nginx_bin);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return vd_err(err, VD_EINTERNAL, "nginx_failed", "waitpid: %s", strerror(errno));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return vd_err(err, VD_EINTERNAL, "nginx_failed",
		    "nginx program '%s' not found (install nginx or set VALDOCK_NGINX)", cfg->nginx_bin);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return vd_err(err, VD_EINTERNAL, "nginx_failed",
		    "nginx rejected the generated config %s (its message is above)", conf);
	return 0;
}

void
vd_serve_exec_nginx(const struct vd_config *cfg)
{
	char conf[PATH_MAX], prefix[PATH_MAX];

	nginx_argv(cfg, "nginx.conf", conf, prefix);
	execlp(cfg->nginx_bin, cfg->nginx_bin, "-e", "stderr", "-c", conf, "-p", prefix, (char *)NULL);
	vd_log_warn("cannot run %s", cfg->nginx_bin);
	_exit(127);
}

void
vd_serve_exec_store(const struct vd_config *cfg)
{
	char conf[PATH_MAX];

	snprintf(conf, sizeof(conf), "%s/store/valkey.conf", cfg->data_dir);
	execlp(cfg->valkey_bin, cfg->valkey_bin, conf, (char *)NULL);
	vd_log_warn("cannot run %s (install valkey-server or set VALDOCK_VALKEY_SERVER)", cfg->valkey_bin);
	_exit(127);
}
