#include <sodium.h>

#include "crypto.h"

int
vd_crypto_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

int
vd_crypto_random_hex(char *out, size_t outsz, size_t nbytes)
{
	unsigned char buf[64];

	if (nbytes > sizeof(buf) || outsz < 2 * nbytes + 1)
		return -1;
	randombytes_buf(buf, nbytes);
	sodium_bin2hex(out, outsz, buf, nbytes);
	sodium_memzero(buf, sizeof(buf));
	return 0;
}

void
vd_crypto_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, data, len);
	sodium_bin2hex(out, 65, h, sizeof(h));
}
