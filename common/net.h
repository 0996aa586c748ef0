/* net: small socket helpers. */
#ifndef VD_NET_H
#define VD_NET_H

#include <stddef.h>

/* 1 when a TCP listener could bind addr:port now (nothing else listens
 * there); addr is a literal IPv4 or IPv6 address. */
int vd_net_tcp_free(const char *addr, long port);

/* Splits "host:port" or "[v6]:port" into host and port. -1 if malformed. */
int vd_net_split_hostport(const char *hostport, char *host, size_t hostsz, long *port);

#endif
