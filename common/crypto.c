#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "fsutil.h"

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

char *
vd_crypto_seal_hex(const unsigned char key[VD_CRYPTO_KEYBYTES], const void *plain, size_t len)
{
	size_t boxlen = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + len;
	unsigned char *box;
	char *hex;

	box = malloc(boxlen);
	hex = malloc(2 * boxlen + 1);
	if (box == NULL || hex == NULL) {
		free(box);
		free(hex);
		return NULL;
	}
	randombytes_buf(box, crypto_secretbox_NONCEBYTES);
	crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, plain, len, box, key);
	sodium_bin2hex(hex, 2 * boxlen + 1, box, boxlen);
	free(box);
	return hex;
}

int
vd_crypto_open_hex(const unsigned char key[VD_CRYPTO_KEYBYTES], const char *hex, char *out,
    size_t outsz)
{
	size_t hexlen = strlen(hex), boxlen, plainlen;
	unsigned char *box;
	int ret = -1;

	if (hexlen % 2 != 0 || hexlen / 2 < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)
		return -1;
	box = malloc(hexlen / 2);
	if (box == NULL)
		return -1;
	if (sodium_hex2bin(box, hexlen / 2, hex, hexlen, NULL, &boxlen, NULL) != 0 ||
	    boxlen != hexlen / 2)
		goto done;
	plainlen = boxlen - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
	if (plainlen + 1 > outsz)
		goto done;
	if (crypto_secretbox_open_easy((unsigned char *)out, box + crypto_secretbox_NONCEBYTES,
	    boxlen - crypto_secretbox_NONCEBYTES, box, key) != 0)
		goto done;
	out[plainlen] = '\0';
	ret = 0;
done:
	free(box);
	return ret;
}

int
vd_crypto_master_key(const char *data_dir, int create, unsigned char key[VD_CRYPTO_KEYBYTES],
    struct vd_error *err)
{
	const char *env = getenv("VALDOCK_MASTER_KEY");
	char path[1100];
	char *buf = NULL;
	size_t len, binlen;

	if (env != NULL && *env != '\0') {
		if (strlen(env) != 2 * VD_CRYPTO_KEYBYTES ||
		    sodium_hex2bin(key, VD_CRYPTO_KEYBYTES, env, strlen(env), NULL, &binlen, NULL) != 0 ||
		    binlen != VD_CRYPTO_KEYBYTES)
			return vd_err(err, VD_EINVALID, "bad_master_key",
			    "VALDOCK_MASTER_KEY must be %d hexadecimal characters", 2 * VD_CRYPTO_KEYBYTES);
		return 0;
	}
	snprintf(path, sizeof(path), "%s/secrets/master.key", data_dir);
	if (vd_fs_read(path, 64, &buf, &len, err) == 0) {
		int ok = len == VD_CRYPTO_KEYBYTES;

		if (ok)
			memcpy(key, buf, VD_CRYPTO_KEYBYTES);
		sodium_memzero(buf, len);
		free(buf);
		if (!ok)
			return vd_err(err, VD_EINTERNAL, "bad_master_key", "%s is not a %d-byte key", path,
			    VD_CRYPTO_KEYBYTES);
		return 0;
	}
	/* only a key that does not exist is made: one we cannot read is an
	 * error, never replaced (every sealed secret depends on it) */
	if (err != NULL && err->kind != VD_ENOTFOUND)
		return -1;
	if (!create)
		return vd_err(err, VD_EINTERNAL, "no_master_key", "no master key in %s", path);
	snprintf(path, sizeof(path), "%s/secrets", data_dir);
	if (vd_fs_mkdirs(path, 0700, err) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/secrets/master.key", data_dir);
	randombytes_buf(key, VD_CRYPTO_KEYBYTES);
	return vd_fs_write_atomic(path, key, VD_CRYPTO_KEYBYTES, 0600, err);
}
