/* dockerlogs: turns the byte stream of GET /containers/{id}/logs into text.
 * Without a TTY, Docker frames each chunk with 8 bytes (stream byte, three
 * zeros, big-endian length); with a TTY the bytes come raw. Reads may split
 * a frame header, a payload or a UTF-8 character anywhere: the parser keeps
 * what it has until the rest arrives, per stream, and emits only whole
 * characters (malformed bytes become U+FFFD). */
#ifndef VD_DOCKERLOGS_H
#define VD_DOCKERLOGS_H

#include <stddef.h>

enum vd_log_stream { VD_LOG_STDIN = 0, VD_LOG_STDOUT = 1, VD_LOG_STDERR = 2 };

typedef void (*vd_logs_emit_fn)(enum vd_log_stream stream, const char *text, size_t len, void *arg);

struct vd_logs_parser {
	int tty;
	unsigned char hdr[8];
	size_t hdr_have;
	size_t frame_left;             /* payload bytes still to come in this frame */
	enum vd_log_stream stream;
	unsigned char carry[3][4];     /* an incomplete UTF-8 sequence per stream */
	size_t carry_have[3];
	int broken;
};

void vd_logs_init(struct vd_logs_parser *p, int tty);

/* Feeds the next bytes read. Returns -1 (and ignores all further input)
 * once a frame header is malformed. */
int vd_logs_feed(struct vd_logs_parser *p, const void *data, size_t len, vd_logs_emit_fn emit,
    void *arg);

/* At the end of the stream: an incomplete character left over becomes
 * U+FFFD. */
void vd_logs_finish(struct vd_logs_parser *p, vd_logs_emit_fn emit, void *arg);

#endif
