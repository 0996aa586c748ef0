#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "str.h"

int
vd_fs_mkdirs(const char *path, mode_t mode, struct vd_error *err)
{
	char buf[PATH_MAX];
	size_t i, len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return vd_err(err, VD_EINTERNAL, "bad_path", "path too long or empty");
	memcpy(buf, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return vd_err(err, VD_EINTERNAL, "mkdir_failed", "cannot create %s: %s",
			    buf, strerror(errno));
		if (i < len)
			buf[i] = '/';
	}
	return 0;
}

static int
fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	char *slash;
	int fd, rc;

	if (vd_str_copy(dir, sizeof(dir), path) < 0)
		return -1;
	slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int
vd_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
    struct vd_error *err)
{
	return vd_fs_write_atomic_owned(path, data, len, mode, (uid_t)-1, (gid_t)-1, err);
}

int
vd_fs_write_atomic_owned(const char *path, const void *data, size_t len, mode_t mode,
    uid_t uid, gid_t gid, struct vd_error *err)
{
	char tmp[PATH_MAX];
	const char *p = data;
	int fd = -1;
	int n;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return vd_err(err, VD_EINTERNAL, "bad_path", "path too long");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0) {
		vd_err(err, VD_EINTERNAL, "write_failed", "cannot create %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid) < 0) {
		vd_err(err, VD_EINTERNAL, "write_failed", "cannot chown %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (fchmod(fd, mode) < 0) {
		vd_err(err, VD_EINTERNAL, "write_failed", "cannot chmod %s: %s", tmp, strerror(errno));
		goto fail;
	}
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			vd_err(err, VD_EINTERNAL, "write_failed", "cannot write %s: %s", tmp,
			    strerror(errno));
			goto fail;
		}
		p += w;
		len -= (size_t)w;
	}
	if (fsync(fd) < 0) {
		vd_err(err, VD_EINTERNAL, "write_failed", "cannot sync %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		vd_err(err, VD_EINTERNAL, "write_failed", "cannot close %s: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		vd_err(err, VD_EINTERNAL, "write_failed", "cannot rename to %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	if (fsync_dir_of(path) < 0)
		return vd_err(err, VD_EINTERNAL, "write_failed", "cannot sync directory of %s: %s",
		    path, strerror(errno));
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return -1;
}

int
vd_fs_read(const char *path, size_t max, char **out, size_t *outlen, struct vd_error *err)
{
	char *buf = NULL;
	size_t len = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vd_err(err, errno == ENOENT ? VD_ENOTFOUND : VD_EINTERNAL, "read_failed",
		    "cannot open %s: %s", path, strerror(errno));
	buf = malloc(max + 1);
	if (buf == NULL) {
		close(fd);
		return vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
	}
	for (;;) {
		ssize_t r = read(fd, buf + len, max + 1 - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			vd_err(err, VD_EINTERNAL, "read_failed", "cannot read %s: %s", path,
			    strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > max) {
			vd_err(err, VD_EINTERNAL, "file_too_large", "%s is larger than %zu bytes",
			    path, max);
			goto fail;
		}
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	if (outlen != NULL)
		*outlen = len;
	return 0;
fail:
	close(fd);
	free(buf);
	return -1;
}

static int
remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int
vd_fs_remove_tree(const char *path, struct vd_error *err)
{
	struct stat st;

	if (lstat(path, &st) < 0 && errno == ENOENT)
		return 0;
	if (nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		return vd_err(err, VD_EINTERNAL, "remove_failed", "cannot remove %s: %s", path,
		    strerror(errno));
	return 0;
}
