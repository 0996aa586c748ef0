/* log: one-line messages to stderr, prefixed with time, process role and pid.
 * vd_log_warn appends strerror(errno); vd_log_warnx does not. Never pass a
 * secret, a token or a request body to these. */
#ifndef VD_LOG_H
#define VD_LOG_H

/* Sets the role shown on every line ("master", "worker 3", ...). The string
 * is copied. */
void vd_log_set_role(const char *role);

void vd_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vd_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vd_log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
