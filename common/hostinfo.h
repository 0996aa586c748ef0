/* hostinfo: facts about the host for /system/metrics, read from the kernel
 * (/proc, sysconf, statvfs). */
#ifndef VD_HOSTINFO_H
#define VD_HOSTINFO_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"

/* New reference: cpu_count, load[3], memory{total,available,used}_bytes,
 * disk{path,total,free,used}_bytes of data_dir, uptime_seconds. */
json_t *vd_hostinfo_json(const char *data_dir, struct vd_error *err);

/* Parses the text of /proc/meminfo; values in bytes. */
int vd_hostinfo_parse_meminfo(const char *text, long long *total, long long *available);

#endif
