#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static char log_role[32] = "valdock";

void
vd_log_set_role(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
}

static void log_vappend(char *buf, size_t size, size_t *n, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static void log_append(char *buf, size_t size, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Appends at *n, keeping room for the newline; output past the end is cut. */
static void
log_vappend(char *buf, size_t size, size_t *n, const char *fmt, va_list ap)
{
	int r;

	if (*n + 2 >= size)
		return;
	r = vsnprintf(buf + *n, size - 1 - *n, fmt, ap);
	if (r < 0)
		return;
	*n += (size_t)r;
	if (*n > size - 2)
		*n = size - 2;
}

static void
log_append(char *buf, size_t size, size_t *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vappend(buf, size, n, fmt, ap);
	va_end(ap);
}

/* Builds the whole line first and writes it with one write(2), so lines of
 * processes sharing stderr never interleave. */
static void log_emit(const char *level, int with_errno, int saved_errno, const char *fmt,
    va_list ap) __attribute__((format(printf, 4, 0)));

static void
log_emit(const char *level, int with_errno, int saved_errno, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	log_append(line, sizeof(line), &n, ".%03ldZ %s[%ld] %s: ", ts.tv_nsec / 1000000, log_role,
	    (long)getpid(), level);
	log_vappend(line, sizeof(line), &n, fmt, ap);
	if (with_errno)
		log_append(line, sizeof(line), &n, ": %s", strerror(saved_errno));
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0) {
		/* nowhere left to report a failing stderr */
	}
}

void
vd_log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit("info", 0, 0, fmt, ap);
	va_end(ap);
}

void
vd_log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_emit("warn", 1, saved, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
vd_log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit("warn", 0, 0, fmt, ap);
	va_end(ap);
}
