/* Store tests against a real valkey-server this test starts on a temporary
 * unix socket with a password: connect, AUTH, argv safety, schema, and
 * reconnection after the server restarts. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store.h"
#include "unit.h"

static char tmpdir[] = "/tmp/vd-store-test-XXXXXX";
static char sockpath[100];
static pid_t server_pid = -1;

static void
server_start(void)
{
	char conf[512];
	FILE *f;

	snprintf(conf, sizeof(conf), "%s/valkey.conf", tmpdir);
	f = fopen(conf, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "port 0\nunixsocket %s\nunixsocketperm 700\ndir %s\nsave \"\"\n"
	    "appendonly no\nloglevel warning\nlogfile \"\"\nrequirepass test-pass\n", sockpath, tmpdir);
	fclose(f);
	server_pid = fork();
	ck_assert_int_ge(server_pid, 0);
	if (server_pid == 0) {
		const char *bin = getenv("VALDOCK_VALKEY_SERVER");

		execlp(bin ? bin : "valkey-server", bin ? bin : "valkey-server", conf, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) {
		struct stat st;

		if (stat(sockpath, &st) == 0)
			return;
		usleep(50000);
	}
	ck_abort_msg("valkey-server did not create %s", sockpath);
}

static void
server_stop(void)
{
	if (server_pid > 0) {
		kill(server_pid, SIGTERM);
		waitpid(server_pid, NULL, 0);
	}
	server_pid = -1;
	unlink(sockpath);
}

static void
setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(sockpath, sizeof(sockpath), "%s/s.sock", tmpdir);
	server_start();
}

static void
teardown(void)
{
	char cmd[600];

	server_stop();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0) {
		/* leftovers in /tmp are harmless */
	}
	strcpy(tmpdir, "/tmp/vd-store-test-XXXXXX");
}

static struct vd_store *
open_store(const char *password)
{
	struct vd_storeurl u;

	memset(&u, 0, sizeof(u));
	u.is_unix = 1;
	snprintf(u.path, sizeof(u.path), "%s", sockpath);
	snprintf(u.password, sizeof(u.password), "%s", password);
	return vd_store_new(&u, 500, 1000);
}

START_TEST(test_ping_and_auth)
{
	struct vd_store *ok = open_store("test-pass"), *bad = open_store("wrong");
	struct vd_error e;

	ck_assert_int_eq(vd_store_ping(ok, &e), 0);
	vd_err_clear(&e);
	ck_assert_int_eq(vd_store_ping(bad, &e), -1);
	ck_assert_int_eq(e.kind, VD_EUNAVAIL);
	ck_assert_ptr_null(strstr(e.message, "wrong"));   /* never echo the password */
	vd_store_free(ok);
	vd_store_free(bad);
}
END_TEST

START_TEST(test_argv_is_binary_safe)
{
	struct vd_store *st = open_store("test-pass");
	const char *value = "a b\r\n*3\r\n$3\r\nDEL\0x";
	const char *argv[] = { "SET", "k e y", value };
	size_t lens[] = { 3, 5, 19 };
	struct vd_error e;
	redisReply *r;

	r = vd_store_cmd(st, &e, 3, argv, lens);
	ck_assert_ptr_nonnull(r);
	freeReplyObject(r);
	r = vd_store_cmdv(st, &e, "GET", "k e y", NULL);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->len, 19);
	ck_assert_mem_eq(r->str, value, 19);
	freeReplyObject(r);
	/* an error reply is a 500 store_error, not a crash */
	r = vd_store_cmdv(st, &e, "INCR", "k e y", NULL);
	ck_assert_ptr_null(r);
	ck_assert_str_eq(e.code, "store_error");
	vd_store_free(st);
}
END_TEST

START_TEST(test_schema)
{
	struct vd_store *st = open_store("test-pass");
	struct vd_error e;
	redisReply *r;

	ck_assert_int_eq(vd_store_schema_init(st, &e), 0);
	r = vd_store_cmdv(st, &e, "GET", "schema", NULL);
	ck_assert_str_eq(r->str, "1");
	freeReplyObject(r);
	r = vd_store_cmdv(st, &e, "SET", "schema", "999", NULL);
	freeReplyObject(r);
	ck_assert_int_eq(vd_store_schema_init(st, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.message, "999"));
	vd_store_free(st);
}
END_TEST

START_TEST(test_info_field)
{
	struct vd_store *st = open_store("test-pass");
	struct vd_error e;
	char v[64];

	ck_assert_int_eq(vd_store_info_field(st, "server", "valkey_version", v, sizeof(v), &e), 0);
	ck_assert_int_gt(strlen(v), 0);
	ck_assert_ptr_nonnull(strchr(v, '.'));
	ck_assert_int_eq(vd_store_info_field(st, "server", "no_such_field", v, sizeof(v), &e), -1);
	vd_store_free(st);
}
END_TEST

/* The server goes away and comes back: one 503 while it is gone, then the
 * same store object serves again without being recreated. */
START_TEST(test_reconnect)
{
	struct vd_store *st = open_store("test-pass");
	struct vd_error e;

	ck_assert_int_eq(vd_store_ping(st, &e), 0);
	server_stop();
	ck_assert_int_eq(vd_store_ping(st, &e), -1);
	ck_assert_int_eq(e.kind, VD_EUNAVAIL);
	ck_assert_str_eq(e.code, "store_unavailable");
	server_start();
	ck_assert_int_eq(vd_store_ping(st, &e), 0);
	/* a restart while idle is noticed before the next command, not after */
	server_stop();
	server_start();
	ck_assert_int_eq(vd_store_ping(st, &e), 0);
	vd_store_free(st);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("real valkey-server");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_ping_and_auth);
	tcase_add_test(tc, test_argv_is_binary_safe);
	tcase_add_test(tc, test_schema);
	tcase_add_test(tc, test_info_field);
	tcase_add_test(tc, test_reconnect);
	suite_add_tcase(s, tc);
	return vd_unit_run(s);
}
