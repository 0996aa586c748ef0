/* libFuzzer target: the store url and DOCKER_HOST parsers, and the docker
 * API version picker, on arbitrary text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "docker.h"
#include "storeurl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vd_storeurl u;
	struct vd_docker_host h;
	struct vd_error err;
	char *s, v[16], desc[512];
	char *mid;

	s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (vd_storeurl_parse(s, &u, &err) == 0)
		vd_storeurl_describe(&u, desc, sizeof(desc));
	vd_docker_parse_host(s, size & 1, &h, &err);
	mid = strchr(s, ' ');
	if (mid != NULL) {
		*mid = '\0';
		vd_docker_pick_api(s, mid + 1, v, sizeof(v), &err);
	}
	free(s);
	return 0;
}
