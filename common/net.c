#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"
#include "str.h"

int
vd_net_tcp_free(const char *addr, long port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd, one = 1, ok;

	if (port < 1 || port > 65535)
		return 0;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		len = sizeof(*v4);
	} else if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		len = sizeof(*v6);
	} else {
		return 0;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	/* as servers do: a port left in TIME_WAIT counts as free */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ok = bind(fd, (struct sockaddr *)&ss, len) == 0;
	close(fd);
	return ok;
}

int
vd_net_split_hostport(const char *hp, char *host, size_t hostsz, long *port)
{
	const char *colon;
	size_t n;

	if (hp[0] == '[') {
		const char *end = strchr(hp, ']');

		if (end == NULL || end[1] != ':')
			return -1;
		n = (size_t)(end - hp - 1);
		if (n == 0 || n >= hostsz)
			return -1;
		memcpy(host, hp + 1, n);
		host[n] = '\0';
		colon = end + 1;
	} else {
		colon = strrchr(hp, ':');
		if (colon == NULL)
			return -1;
		n = (size_t)(colon - hp);
		if (n == 0 || n >= hostsz || memchr(hp, ':', n) != NULL)
			return -1;
		memcpy(host, hp, n);
		host[n] = '\0';
	}
	return vd_parse_long(colon + 1, 1, 65535, port);
}
