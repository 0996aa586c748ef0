/* crypto: randomness and hashing on libsodium. */
#ifndef VD_CRYPTO_H
#define VD_CRYPTO_H

#include <stddef.h>

#include "error.h"

#define VD_CRYPTO_KEYBYTES 32

/* Must run once per process before any other call here (after fork too). */
int vd_crypto_init(void);

/* Fills out with 2*nbytes lowercase hex characters of fresh randomness and a
 * NUL; outsz must be at least 2*nbytes+1. */
int vd_crypto_random_hex(char *out, size_t outsz, size_t nbytes);

/* Lowercase hex SHA-256 of data: the form Valkey's ACL `#<hash>` takes. */
void vd_crypto_sha256_hex(const void *data, size_t len, char out[65]);

/* Encrypts plain with the master key (crypto_secretbox, fresh nonce) into a
 * new hex string nonce||box the caller frees; NULL when out of memory. */
char *vd_crypto_seal_hex(const unsigned char key[VD_CRYPTO_KEYBYTES], const void *plain, size_t len);

/* Opens what vd_crypto_seal_hex made into out (NUL-terminated). -1 when the
 * text is malformed, tampered with, sealed under another key, or too long. */
int vd_crypto_open_hex(const unsigned char key[VD_CRYPTO_KEYBYTES], const char *hex, char *out,
    size_t outsz);

/* The master key: VALDOCK_MASTER_KEY (64 hex characters) when set, else
 * DATA_DIR/secrets/master.key (32 bytes, 0600), made on first use when
 * create is set. */
int vd_crypto_master_key(const char *data_dir, int create, unsigned char key[VD_CRYPTO_KEYBYTES],
    struct vd_error *err);

#endif
