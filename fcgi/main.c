/* valdock: one program. `serve` runs the whole stack in the foreground,
 * `fcgi` the FastCGI pool alone (for systemd or compose). */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "crypto.h"
#include "log.h"
#include "pool.h"

int
main(int argc, char **argv)
{
	struct vd_pool_opts opts;
	struct vd_config cfg;
	struct vd_error err;
	const char *cmd = NULL;
	char *flags[256];
	int nflags = 0, rc;

	/* the subcommand may stand anywhere among the flags */
	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--", 2) != 0 && cmd == NULL &&
		    (i == 1 || strncmp(argv[i - 1], "--", 2) != 0 || strchr(argv[i - 1], '=') != NULL ||
		    strcmp(argv[i - 1], "--help") == 0))
			cmd = argv[i];
		else if (nflags < (int)(sizeof(flags) / sizeof(flags[0])))
			flags[nflags++] = argv[i];
	}
	if (cmd == NULL || strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0) {
		vd_config_usage(cmd == NULL ? stderr : stdout);
		return cmd == NULL ? 2 : 0;
	}
	if (strcmp(cmd, "version") == 0) {
		printf("valdock %s\n", VD_VERSION);
		return 0;
	}
	if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "fcgi") != 0) {
		fprintf(stderr, "valdock: unknown command '%s' (serve, fcgi, version, help)\n", cmd);
		return 2;
	}
	if (vd_config_load(&cfg, nflags, flags, &err) < 0) {
		fprintf(stderr, "valdock: %s\n", err.message);
		return 2;
	}
	if (vd_crypto_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		fprintf(stderr, "valdock: cannot initialise libsodium or libcurl\n");
		return 1;
	}
	opts.serve = strcmp(cmd, "serve") == 0;
	opts.argc = nflags;
	opts.argv = flags;
	rc = vd_pool_main(&cfg, &opts);
	curl_global_cleanup();
	return rc;
}
