/* storeurl: parses the address of a Valkey store.
 *   unix://[user[:password]@]/path/to/socket[?db=N]
 *   valkey://[user[:password]@]host[:port][/N]   (redis:// is accepted too)
 * user and password are percent-decoded. */
#ifndef VD_STOREURL_H
#define VD_STOREURL_H

#include "error.h"

struct vd_storeurl {
	int  is_unix;
	char path[108];       /* unix socket path (sun_path size) */
	char host[256];
	int  port;
	char user[128];
	char password[256];
	int  db;
};

int vd_storeurl_parse(const char *url, struct vd_storeurl *out, struct vd_error *err);

/* The address without credentials, for logs and messages. */
void vd_storeurl_describe(const struct vd_storeurl *u, char *out, size_t outsz);

#endif
