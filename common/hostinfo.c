#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fsutil.h"
#include "hostinfo.h"

int
vd_hostinfo_parse_meminfo(const char *text, long long *total, long long *available)
{
	const char *p;
	int found = 0;

	*total = *available = -1;
	for (p = text; p != NULL && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		long long kb;

		if (sscanf(p, "MemTotal: %lld kB", &kb) == 1 && kb >= 0) {
			*total = kb * 1024;
			found++;
		} else if (sscanf(p, "MemAvailable: %lld kB", &kb) == 1 && kb >= 0) {
			*available = kb * 1024;
			found++;
		}
	}
	return found == 2 ? 0 : -1;
}

json_t *
vd_hostinfo_json(const char *data_dir, struct vd_error *err)
{
	long long total, avail;
	struct statvfs vfs;
	double load[3] = { 0, 0, 0 };
	double uptime = 0;
	char *text = NULL;
	json_t *o;

	o = json_object();
	if (o == NULL) {
		vd_err(err, VD_EINTERNAL, "no_memory", "out of memory");
		return NULL;
	}
	json_object_set_new(o, "cpu_count", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
	if (getloadavg(load, 3) == 3)
		json_object_set_new(o, "load", json_pack("[f,f,f]", load[0], load[1], load[2]));
	if (vd_fs_read("/proc/meminfo", 65536, &text, NULL, NULL) == 0 &&
	    vd_hostinfo_parse_meminfo(text, &total, &avail) == 0)
		json_object_set_new(o, "memory", json_pack("{s:I,s:I,s:I}", "total_bytes",
		    (json_int_t)total, "available_bytes", (json_int_t)avail, "used_bytes",
		    (json_int_t)(total - avail)));
	free(text);
	text = NULL;
	if (statvfs(data_dir, &vfs) == 0) {
		unsigned long long bs = vfs.f_frsize;

		json_object_set_new(o, "disk", json_pack("{s:s,s:I,s:I,s:I}", "path", data_dir,
		    "total_bytes", (json_int_t)(vfs.f_blocks * bs),
		    "free_bytes", (json_int_t)(vfs.f_bavail * bs),
		    "used_bytes", (json_int_t)((vfs.f_blocks - vfs.f_bfree) * bs)));
	}
	if (vd_fs_read("/proc/uptime", 4096, &text, NULL, NULL) == 0 &&
	    sscanf(text, "%lf", &uptime) == 1)
		json_object_set_new(o, "uptime_seconds", json_integer((json_int_t)uptime));
	free(text);
	return o;
}
