/* crypto: randomness and hashing on libsodium. */
#ifndef VD_CRYPTO_H
#define VD_CRYPTO_H

#include <stddef.h>

/* Must run once per process before any other call here (after fork too). */
int vd_crypto_init(void);

/* Fills out with 2*nbytes lowercase hex characters of fresh randomness and a
 * NUL; outsz must be at least 2*nbytes+1. */
int vd_crypto_random_hex(char *out, size_t outsz, size_t nbytes);

/* Lowercase hex SHA-256 of data: the form Valkey's ACL `#<hash>` takes. */
void vd_crypto_sha256_hex(const void *data, size_t len, char out[65]);

#endif
