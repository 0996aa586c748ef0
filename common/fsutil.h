/* fsutil: file system helpers. Writes are atomic: a temp file in the same
 * directory, fsync, rename, fsync of the directory. */
#ifndef VD_FSUTIL_H
#define VD_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* Creates path and its missing parents with mode (existing ones are kept). */
int vd_fs_mkdirs(const char *path, mode_t mode, struct vd_error *err);

/* Atomically replaces path with data[0..len), created with mode. */
int vd_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
    struct vd_error *err);

/* The same, owned by uid:gid before it appears ((uid_t)-1 keeps ours). */
int vd_fs_write_atomic_owned(const char *path, const void *data, size_t len, mode_t mode,
    uid_t uid, gid_t gid, struct vd_error *err);

/* Removes path and everything below it, never following symlinks. A
 * missing path is not an error. */
int vd_fs_remove_tree(const char *path, struct vd_error *err);

/* Reads a whole file of at most max bytes into a new, NUL-terminated buffer
 * the caller frees. */
int vd_fs_read(const char *path, size_t max, char **out, size_t *outlen, struct vd_error *err);

#endif
