/* Unit tests of the pure modules: errors, strings, store url, docker host
 * and API negotiation, settings, names, config, request parsing, router. */
#include <check.h>
#include <string.h>

#include "acl.h"
#include "config.h"
#include "crypto.h"
#include "dockerlogs.h"
#include "docker.h"
#include "error.h"
#include "hostinfo.h"
#include "instance.h"
#include "names.h"
#include "request.h"
#include "router.h"
#include "settings.h"
#include "storeurl.h"
#include "str.h"
#include "units.h"
#include "unit.h"

/* ---- error ---- */

START_TEST(test_error_status_map)
{
	ck_assert_int_eq(vd_err_http_status(VD_EBADREQ), 400);
	ck_assert_int_eq(vd_err_http_status(VD_EMETHOD), 405);
	ck_assert_int_eq(vd_err_http_status(VD_ELENGTH), 411);
	ck_assert_int_eq(vd_err_http_status(VD_ETOOLARGE), 413);
	ck_assert_int_eq(vd_err_http_status(VD_EMEDIA), 415);
	ck_assert_int_eq(vd_err_http_status(VD_EINVALID), 422);
	ck_assert_int_eq(vd_err_http_status(VD_EUNAVAIL), 503);
	ck_assert_int_eq(vd_err_http_status(VD_ERR_KIND_MAX), 500);
}
END_TEST

START_TEST(test_error_json_shape)
{
	struct vd_error e;
	json_t *j;

	vd_err_clear(&e);
	ck_assert_int_eq(vd_err_field(&e, "port", "port must be %d-%d", 1, 65535), -1);
	j = vd_err_json(&e);
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "error");
	ck_assert_str_eq(json_string_value(json_object_get(j, "code")), "invalid_field");
	ck_assert_str_eq(json_string_value(json_object_get(j, "message")), "port must be 1-65535");
	ck_assert_str_eq(json_string_value(json_object_get(j, "field")), "port");
	json_decref(j);
	/* a message echoing invalid UTF-8 still yields an error body */
	vd_err(&e, VD_EBADREQ, NULL, "bad \xff byte\x01");
	j = vd_err_json(&e);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(json_object_get(j, "message")), "bad ? byte?");
	ck_assert_str_eq(json_string_value(json_object_get(j, "code")), "bad_request");
	json_decref(j);
}
END_TEST

/* ---- str ---- */

START_TEST(test_pct_decode)
{
	char out[16];

	ck_assert_int_eq(vd_pct_decode("a%20b+c", 7, out, sizeof(out), 1), 5);
	ck_assert_str_eq(out, "a b c");
	ck_assert_int_eq(vd_pct_decode("a+c", 3, out, sizeof(out), 0), 3);
	ck_assert_str_eq(out, "a+c");
	ck_assert_int_eq(vd_pct_decode("%4", 2, out, sizeof(out), 0), -1);
	ck_assert_int_eq(vd_pct_decode("%zz", 3, out, sizeof(out), 0), -1);
	ck_assert_int_eq(vd_pct_decode("%00", 3, out, sizeof(out), 0), -1);
	ck_assert_int_eq(vd_pct_decode("0123456789abcdef", 16, out, sizeof(out), 0), -1);
	ck_assert_int_eq(vd_pct_decode("%41", 3, out, sizeof(out), 0), 1);
	ck_assert_str_eq(out, "A");
}
END_TEST

START_TEST(test_utf8)
{
	ck_assert_int_eq(vd_utf8_valid("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15), 1);
	ck_assert_int_eq(vd_utf8_valid("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 14), 0);
	ck_assert_int_eq(vd_utf8_valid("\xc0\xaf", 2), 0);          /* overlong */
	ck_assert_int_eq(vd_utf8_valid("\xed\xa0\x80", 3), 0);      /* surrogate */
	ck_assert_int_eq(vd_utf8_valid("\xe2\x82", 2), 0);          /* cut short */
	ck_assert_int_eq(vd_utf8_valid("\xf5\x80\x80\x80", 4), 0);  /* above U+10FFFF */
}
END_TEST

START_TEST(test_parse_long)
{
	long v;

	ck_assert_int_eq(vd_parse_long("42", 0, 100, &v), 0);
	ck_assert_int_eq(v, 42);
	ck_assert_int_eq(vd_parse_long("101", 0, 100, &v), -1);
	ck_assert_int_eq(vd_parse_long("4x", 0, 100, &v), -1);
	ck_assert_int_eq(vd_parse_long(" 4", 0, 100, &v), -1);
	ck_assert_int_eq(vd_parse_long("", 0, 100, &v), -1);
	ck_assert_int_eq(vd_parse_long("99999999999999999999999", 0, 100, &v), -1);
}
END_TEST

/* ---- store url ---- */

START_TEST(test_storeurl_forms)
{
	struct vd_storeurl u;
	struct vd_error e;

	ck_assert_int_eq(vd_storeurl_parse("unix:///run/v/store.sock", &u, &e), 0);
	ck_assert_int_eq(u.is_unix, 1);
	ck_assert_str_eq(u.path, "/run/v/store.sock");
	ck_assert_str_eq(u.password, "");

	ck_assert_int_eq(vd_storeurl_parse("unix://app:p%40ss@/tmp/s.sock?db=3", &u, &e), 0);
	ck_assert_str_eq(u.user, "app");
	ck_assert_str_eq(u.password, "p@ss");
	ck_assert_str_eq(u.path, "/tmp/s.sock");
	ck_assert_int_eq(u.db, 3);

	ck_assert_int_eq(vd_storeurl_parse("valkey://:secret@db.example:6380/2", &u, &e), 0);
	ck_assert_int_eq(u.is_unix, 0);
	ck_assert_str_eq(u.host, "db.example");
	ck_assert_int_eq(u.port, 6380);
	ck_assert_int_eq(u.db, 2);
	ck_assert_str_eq(u.user, "");
	ck_assert_str_eq(u.password, "secret");

	ck_assert_int_eq(vd_storeurl_parse("redis://[::1]", &u, &e), 0);
	ck_assert_str_eq(u.host, "::1");
	ck_assert_int_eq(u.port, 6379);
}
END_TEST

START_TEST(test_storeurl_refused)
{
	static const char *bad[] = {
		"http://x", "unix://relative/path", "valkey://host:0", "valkey://host:65536",
		"valkey://host:12ab", "valkey://ho st", "valkey://host/9999", "valkey://[::1",
		"unix:///p?db=x", "valkey://", "unix://", "valkey://h:1/2/3",
	};
	struct vd_storeurl u;
	struct vd_error e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vd_err_clear(&e);
		ck_assert_msg(vd_storeurl_parse(bad[i], &u, &e) == -1, "accepted %s", bad[i]);
		ck_assert_str_eq(e.code, "bad_store_url");
	}
}
END_TEST

START_TEST(test_storeurl_describe_hides_password)
{
	struct vd_storeurl u;
	struct vd_error e;
	char d[256];

	ck_assert_int_eq(vd_storeurl_parse("valkey://u:topsecret@h:1/0", &u, &e), 0);
	vd_storeurl_describe(&u, d, sizeof(d));
	ck_assert_ptr_null(strstr(d, "topsecret"));
	ck_assert_str_eq(d, "valkey://u@h:1/0");
}
END_TEST

/* ---- docker (field case C11) ---- */

START_TEST(test_docker_pick_api)
{
	struct vd_error e;
	char v[16];

	/* Debian's engine: 1.41, minimum 1.12 */
	ck_assert_int_eq(vd_docker_pick_api("1.41", "1.12", v, sizeof(v), &e), 0);
	ck_assert_str_eq(v, "1.41");
	/* Docker 29: offers 1.52, refuses anything under 1.44 */
	ck_assert_int_eq(vd_docker_pick_api("1.52", "1.44", v, sizeof(v), &e), 0);
	ck_assert_str_eq(v, "1.52");
	/* a newer engine than we know: we speak our newest */
	ck_assert_int_eq(vd_docker_pick_api("1.60", "1.44", v, sizeof(v), &e), 0);
	ck_assert_str_eq(v, VD_DOCKER_API_MAX);
	/* too old for us: both versions named */
	ck_assert_int_eq(vd_docker_pick_api("1.40", "1.12", v, sizeof(v), &e), -1);
	ck_assert_ptr_nonnull(strstr(e.message, "1.40"));
	ck_assert_ptr_nonnull(strstr(e.message, VD_DOCKER_API_MIN));
	/* an engine whose minimum is above our newest */
	ck_assert_int_eq(vd_docker_pick_api("1.70", "1.60", v, sizeof(v), &e), -1);
	ck_assert_ptr_nonnull(strstr(e.message, "1.60"));
	ck_assert_ptr_nonnull(strstr(e.message, VD_DOCKER_API_MAX));
	ck_assert_int_eq(vd_docker_pick_api("one.41", NULL, v, sizeof(v), &e), -1);
	ck_assert_int_eq(vd_docker_pick_api("1.41x", NULL, v, sizeof(v), &e), -1);
}
END_TEST

START_TEST(test_docker_parse_host)
{
	struct vd_docker_host h;
	struct vd_error e;

	ck_assert_int_eq(vd_docker_parse_host(NULL, 0, &h, &e), 0);
	ck_assert_int_eq(h.is_unix, 1);
	ck_assert_str_eq(h.path, "/var/run/docker.sock");
	ck_assert_int_eq(vd_docker_parse_host("tcp://10.0.0.5:2376", 1, &h, &e), 0);
	ck_assert_str_eq(h.base_url, "https://10.0.0.5:2376");
	ck_assert_int_eq(vd_docker_parse_host("tcp://h:2375", 0, &h, &e), 0);
	ck_assert_str_eq(h.base_url, "http://h:2375");
	ck_assert_int_eq(vd_docker_parse_host("ssh://h", 0, &h, &e), -1);
	ck_assert_int_eq(vd_docker_parse_host("unix://rel", 0, &h, &e), -1);
	ck_assert_int_eq(vd_docker_parse_host("tcp://h:1/x", 0, &h, &e), -1);
	ck_assert_int_eq(vd_docker_parse_host("tcp://h@evil:1", 0, &h, &e), -1);
}
END_TEST

/* ---- settings ---- */

START_TEST(test_settings_apply)
{
	struct vd_error e;
	json_t *doc = vd_settings_defaults();
	json_t *patch;

	ck_assert_int_eq(json_integer_value(json_object_get(doc, "metrics_interval")), 10);
	patch = json_pack("{s:i,s:s}", "metrics_interval", 30, "publish_address", "0.0.0.0");
	ck_assert_int_eq(vd_settings_apply(doc, patch, &e), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "metrics_interval")), 30);
	ck_assert_str_eq(json_string_value(json_object_get(doc, "publish_address")), "0.0.0.0");
	json_decref(patch);

	/* unknown key, wrong type, out of bounds, bad address, crossed range:
	 * each 422 naming the field, doc unchanged */
	patch = json_pack("{s:i}", "colour", 1);
	ck_assert_int_eq(vd_settings_apply(doc, patch, &e), -1);
	ck_assert_int_eq(e.kind, VD_EINVALID);
	ck_assert_str_eq(e.field, "colour");
	json_decref(patch);
	patch = json_pack("{s:s}", "metrics_interval", "10");
	ck_assert_int_eq(vd_settings_apply(doc, patch, &e), -1);
	ck_assert_str_eq(e.field, "metrics_interval");
	json_decref(patch);
	patch = json_pack("{s:i}", "metrics_interval", 0);
	ck_assert_int_eq(vd_settings_apply(doc, patch, &e), -1);
	json_decref(patch);
	patch = json_pack("{s:s}", "publish_address", "localhost; rm");
	ck_assert_int_eq(vd_settings_apply(doc, patch, &e), -1);
	ck_assert_str_eq(e.field, "publish_address");
	json_decref(patch);
	patch = json_pack("{s:i,s:i}", "port_range_start", 9000, "port_range_end", 8000);
	ck_assert_int_eq(vd_settings_apply(doc, patch, &e), -1);
	ck_assert_str_eq(e.field, "port_range_start");
	json_decref(patch);
	patch = json_pack("{s:s}", "instance_image", "valkey/valkey:8 --privileged");
	ck_assert_int_eq(vd_settings_apply(doc, patch, &e), -1);
	json_decref(patch);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "metrics_interval")), 30);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "port_range_start")), 7000);
	json_decref(doc);
}
END_TEST

START_TEST(test_settings_from_stored)
{
	json_t *stored = json_pack("{s:i,s:s,s:s}", "metrics_interval", 60, "gone_key", "x",
	    "publish_address", "not an ip");
	json_t *doc = vd_settings_from_stored(stored);

	ck_assert_int_eq(json_integer_value(json_object_get(doc, "metrics_interval")), 60);
	ck_assert_ptr_null(json_object_get(doc, "gone_key"));
	ck_assert_str_eq(json_string_value(json_object_get(doc, "publish_address")), "127.0.0.1");
	json_decref(stored);
	json_decref(doc);
}
END_TEST

/* ---- names ---- */

START_TEST(test_names)
{
	struct vd_error e;
	char long_name[80];

	ck_assert_int_eq(vd_name_check("name", "cache-1_a", &e), 0);
	ck_assert_int_eq(vd_name_check("name", "Cache", &e), -1);
	ck_assert_str_eq(e.field, "name");
	ck_assert_int_eq(vd_name_check("name", "1cache", &e), -1);
	ck_assert_int_eq(vd_name_check("name", "", &e), -1);
	ck_assert_int_eq(vd_name_check("name", "a/../b", &e), -1);
	ck_assert_int_eq(vd_name_check("name", "a b", &e), -1);
	memset(long_name, 'a', 64);
	long_name[64] = '\0';
	ck_assert_int_eq(vd_name_check("name", long_name, &e), -1);
	long_name[63] = '\0';
	ck_assert_int_eq(vd_name_check("name", long_name, &e), 0);
}
END_TEST

/* ---- config ---- */

START_TEST(test_config_file_and_precedence)
{
	struct vd_config cfg;
	struct vd_error e;
	char *argv[] = { "--workers=3", "--data-dir", "/srv/vd" };

	unsetenv("VALDOCK_WORKERS");
	unsetenv("VALDOCK_CONFIG");
	setenv("VALDOCK_MAX_REQUESTS", "77", 1);
	ck_assert_int_eq(vd_config_load(&cfg, 3, argv, &e), 0);
	ck_assert_int_eq(cfg.workers, 3);
	ck_assert_int_eq(cfg.max_requests, 77);
	ck_assert_str_eq(cfg.data_dir, "/srv/vd");
	ck_assert_str_eq(cfg.socket_path, "/srv/vd/run/fcgi.sock");
	ck_assert_str_eq(cfg.http_addr, "127.0.0.1:8080");
	unsetenv("VALDOCK_MAX_REQUESTS");

	ck_assert_int_eq(vd_config_parse_file_text(&cfg, "# comment\n\n workers = 5 \r\n"
	    "http_addr=0.0.0.0:9000\n", "f", &e), 0);
	ck_assert_int_eq(cfg.workers, 5);
	ck_assert_str_eq(cfg.http_addr, "0.0.0.0:9000");
	ck_assert_int_eq(vd_config_parse_file_text(&cfg, "workers = 0\n", "f", &e), -1);
	ck_assert_ptr_nonnull(strstr(e.message, "f:1"));
	ck_assert_int_eq(vd_config_parse_file_text(&cfg, "\nnope = 1\n", "f", &e), -1);
	ck_assert_ptr_nonnull(strstr(e.message, "f:2"));
	ck_assert_int_eq(vd_config_parse_file_text(&cfg, "workers\n", "f", &e), -1);
}
END_TEST

START_TEST(test_config_refuses)
{
	struct vd_config cfg;
	struct vd_error e;
	char *unknown[] = { "--colour=red" };
	char *relative[] = { "--data-dir=var/lib" };
	char *novalue[] = { "--workers" };

	ck_assert_int_eq(vd_config_load(&cfg, 1, unknown, &e), -1);
	ck_assert_int_eq(vd_config_load(&cfg, 1, relative, &e), -1);
	ck_assert_int_eq(vd_config_load(&cfg, 1, novalue, &e), -1);
	setenv("VALDOCK_WORKERS", "many", 1);
	ck_assert_int_eq(vd_config_load(&cfg, 0, NULL, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.message, "VALDOCK_WORKERS"));
	unsetenv("VALDOCK_WORKERS");
}
END_TEST

/* ---- request ---- */

START_TEST(test_query)
{
	struct vd_req r;
	struct vd_error e;

	vd_req_init(&r);
	ck_assert_int_eq(vd_req_parse_query(&r, "keep_data=true&range=1h&x=a%20b&flag", &e), 0);
	ck_assert_int_eq(r.nquery, 4);
	ck_assert_str_eq(vd_req_query(&r, "keep_data"), "true");
	ck_assert_str_eq(vd_req_query(&r, "x"), "a b");
	ck_assert_str_eq(vd_req_query(&r, "flag"), "");
	ck_assert_ptr_null(vd_req_query(&r, "nope"));
	ck_assert_int_eq(vd_req_parse_query(&r, "a=1&a=2", &e), -1);
	ck_assert_int_eq(e.kind, VD_EBADREQ);
	ck_assert_int_eq(vd_req_parse_query(&r, "a=%0a", &e), -1);
	ck_assert_int_eq(vd_req_parse_query(&r, "a=%zz", &e), -1);
	ck_assert_int_eq(vd_req_parse_query(&r, "=v", &e), -1);
	ck_assert_int_eq(vd_req_parse_query(&r, "a=%ff", &e), -1);
	ck_assert_int_eq(vd_req_parse_query(&r, "a&b&c&d&e&f&g&h&i&j&k&l&m&n&o&p&q", &e), -1);
	ck_assert_int_eq(vd_req_parse_query(&r, "", &e), 0);
	ck_assert_int_eq(r.nquery, 0);
}
END_TEST

START_TEST(test_body_checks)
{
	struct vd_req r;
	struct vd_error e;

	vd_req_init(&r);
	/* JSON route without a length: 411; chunked anywhere: 411 */
	ck_assert_int_eq(vd_req_check_body(&r, 1, 100, &e), -1);
	ck_assert_int_eq(e.kind, VD_ELENGTH);
	ck_assert_int_eq(vd_req_check_body(&r, 0, 100, &e), 0);
	r.chunked = 1;
	ck_assert_int_eq(vd_req_check_body(&r, 0, 100, &e), -1);
	ck_assert_int_eq(e.kind, VD_ELENGTH);
	r.chunked = 0;
	r.content_length = 101;
	ck_assert_int_eq(vd_req_check_body(&r, 1, 100, &e), -1);
	ck_assert_int_eq(e.kind, VD_ETOOLARGE);
	r.content_length = 10;
	strcpy(r.content_type, "text/plain");
	ck_assert_int_eq(vd_req_check_body(&r, 1, 100, &e), -1);
	ck_assert_int_eq(e.kind, VD_EMEDIA);
	strcpy(r.content_type, "application/json; charset=utf-8");
	ck_assert_int_eq(vd_req_check_body(&r, 1, 100, &e), 0);
	strcpy(r.content_type, "application/jsonx");
	ck_assert_int_eq(vd_req_check_body(&r, 1, 100, &e), -1);
	r.content_length = 0;
	strcpy(r.content_type, "application/json");
	ck_assert_int_eq(vd_req_check_body(&r, 1, 100, &e), -1);
	ck_assert_int_eq(e.kind, VD_EBADREQ);
}
END_TEST

START_TEST(test_json_body)
{
	struct vd_error e;
	json_t *j;

	ck_assert_int_eq(vd_req_parse_json("{\"a\":1}", 7, &j, &e), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "a")), 1);
	json_decref(j);
	ck_assert_int_eq(vd_req_parse_json("{\"a\":1,\n\"b\":}", 14, &j, &e), -1);
	ck_assert_int_eq(e.kind, VD_EBADREQ);
	ck_assert_ptr_nonnull(strstr(e.message, "line 2"));
	ck_assert_ptr_null(j);
	ck_assert_int_eq(vd_req_parse_json("[1]", 3, &j, &e), -1);
	ck_assert_int_eq(vd_req_parse_json("{\"a\":1,\"a\":2}", 13, &j, &e), -1);
	ck_assert_int_eq(vd_req_parse_json("{\"a\":\"\xff\"}", 9, &j, &e), -1);
	ck_assert_int_eq(vd_req_parse_json("{}{}", 4, &j, &e), -1);
}
END_TEST

/* ---- router ---- */

static int
h_dummy(struct vd_ctx *c, struct vd_req *r, struct vd_resp *p, struct vd_error *e)
{
	(void)c; (void)r; (void)p; (void)e;
	return 0;
}

static int
check_id(const char *v, struct vd_error *e)
{
	return vd_name_check("id", v, e);
}

static const struct vd_route t_routes[] = {
	{ "GET", "/api/v1/things", h_dummy, VD_ROLE_VIEWER, VD_BODY_NONE, 0, NULL, "" },
	{ "POST", "/api/v1/things", h_dummy, VD_ROLE_OPERATOR, VD_BODY_JSON, 0, NULL, "" },
	{ "GET", "/api/v1/things/:id", h_dummy, VD_ROLE_VIEWER, VD_BODY_NONE, 0, NULL, "" },
	{ "DELETE", "/api/v1/things/:id", h_dummy, VD_ROLE_OPERATOR, VD_BODY_NONE, 0, NULL, "" },
	{ "POST", "/api/v1/things/:id/start", h_dummy, VD_ROLE_OPERATOR, VD_BODY_NONE, 0, NULL, "" },
};
static const struct vd_param_rule t_rules[] = { { "id", check_id } };

static int
route(const char *method, const char *path, struct vd_req *r, const struct vd_route **out,
    char *allow, struct vd_error *e)
{
	vd_req_init(r);
	strcpy(r->method, method);
	strcpy(r->path, path);
	return vd_router_match(t_routes, 5, t_rules, 1, r, out, allow, 64, e);
}

START_TEST(test_router)
{
	const struct vd_route *rt;
	struct vd_req r;
	struct vd_error e;
	char allow[64];

	ck_assert_int_eq(route("GET", "/api/v1/things", &r, &rt, allow, &e), 0);
	ck_assert_ptr_eq(rt, &t_routes[0]);
	ck_assert_int_eq(route("GET", "/api/v1/things/", &r, &rt, allow, &e), 0);
	ck_assert_int_eq(route("POST", "/api/v1/things/cache-1/start", &r, &rt, allow, &e), 0);
	ck_assert_ptr_eq(rt, &t_routes[4]);
	ck_assert_str_eq(vd_req_param(&r, "id"), "cache-1");
	ck_assert_int_eq(route("HEAD", "/api/v1/things/c1", &r, &rt, allow, &e), 0);
	ck_assert_int_eq(r.head, 1);

	ck_assert_int_eq(route("PUT", "/api/v1/things/c1", &r, &rt, allow, &e), -1);
	ck_assert_int_eq(e.kind, VD_EMETHOD);
	ck_assert_str_eq(allow, "GET, HEAD, DELETE");
	ck_assert_int_eq(r.nparams, 0);
	ck_assert_int_eq(route("PATCH", "/api/v1/things", &r, &rt, allow, &e), -1);
	ck_assert_str_eq(allow, "GET, HEAD, POST");

	ck_assert_int_eq(route("GET", "/api/v1/nothing", &r, &rt, allow, &e), -1);
	ck_assert_int_eq(e.kind, VD_ENOTFOUND);
	ck_assert_int_eq(route("GET", "/api/v1/things/c1/../c2", &r, &rt, allow, &e), -1);
	ck_assert_int_eq(e.kind, VD_ENOTFOUND);
	ck_assert_int_eq(route("GET", "/api/v1//things", &r, &rt, allow, &e), -1);
	ck_assert_int_eq(route("GET", "api/v1/things", &r, &rt, allow, &e), -1);

	/* a captured value its rule refuses: 422 naming the parameter */
	ck_assert_int_eq(route("GET", "/api/v1/things/Bad%20Name", &r, &rt, allow, &e), -1);
	ck_assert_int_eq(e.kind, VD_EINVALID);
	ck_assert_str_eq(e.field, "id");
	/* encoded slash, NUL, control byte: 400 */
	ck_assert_int_eq(route("GET", "/api/v1/things/a%2Fb", &r, &rt, allow, &e), -1);
	ck_assert_int_eq(e.kind, VD_EBADREQ);
	ck_assert_int_eq(route("GET", "/api/v1/things/a%00", &r, &rt, allow, &e), -1);
	ck_assert_int_eq(route("GET", "/api/v1/things/a%0a", &r, &rt, allow, &e), -1);
}
END_TEST

/* ---- hostinfo ---- */

START_TEST(test_meminfo)
{
	long long t, a;

	ck_assert_int_eq(vd_hostinfo_parse_meminfo("MemTotal:  2048 kB\nMemFree: 1 kB\n"
	    "MemAvailable:    1024 kB\n", &t, &a), 0);
	ck_assert_int_eq(t, 2048LL * 1024);
	ck_assert_int_eq(a, 1024LL * 1024);
	ck_assert_int_eq(vd_hostinfo_parse_meminfo("MemTotal: 5 kB\n", &t, &a), -1);
}
END_TEST


/* ---- units ---- */

START_TEST(test_units)
{
	long long v;
	char out[32];

	ck_assert_int_eq(vd_units_parse_bytes("256mb", &v), 0);
	ck_assert_int_eq(v, 256LL * 1024 * 1024);
	ck_assert_int_eq(vd_units_parse_bytes("1GB", &v), 0);
	ck_assert_int_eq(v, 1024LL * 1024 * 1024);
	ck_assert_int_eq(vd_units_parse_bytes("512k", &v), 0);
	ck_assert_int_eq(v, 512LL * 1024);
	ck_assert_int_eq(vd_units_parse_bytes("1000", &v), 0);
	ck_assert_int_eq(v, 1000);
	ck_assert_int_eq(vd_units_parse_bytes("1.5gb", &v), -1);
	ck_assert_int_eq(vd_units_parse_bytes("-1mb", &v), -1);
	ck_assert_int_eq(vd_units_parse_bytes("mb", &v), -1);
	ck_assert_int_eq(vd_units_parse_bytes("12tb", &v), -1);
	ck_assert_int_eq(vd_units_parse_bytes("99999999999999999999", &v), -1);
	ck_assert_int_eq(vd_units_parse_bytes("9999999999999gb", &v), -1);
	vd_units_format_bytes(256LL * 1024 * 1024, out, sizeof(out));
	ck_assert_str_eq(out, "256mb");
	vd_units_format_bytes(3LL * 1024 * 1024 * 1024, out, sizeof(out));
	ck_assert_str_eq(out, "3gb");
	vd_units_format_bytes(1000, out, sizeof(out));
	ck_assert_str_eq(out, "1000");
}
END_TEST

/* ---- crypto ---- */

START_TEST(test_seal_open)
{
	unsigned char key[VD_CRYPTO_KEYBYTES], other[VD_CRYPTO_KEYBYTES];
	char out[64], *hex, *hex2;

	ck_assert_int_eq(vd_crypto_init(), 0);
	memset(key, 7, sizeof(key));
	memset(other, 8, sizeof(other));
	hex = vd_crypto_seal_hex(key, "admin-secret", 12);
	hex2 = vd_crypto_seal_hex(key, "admin-secret", 12);
	ck_assert_ptr_null(strstr(hex, "admin-secret"));
	ck_assert_str_ne(hex, hex2);                     /* fresh nonce each time */
	ck_assert_int_eq(vd_crypto_open_hex(key, hex, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "admin-secret");
	ck_assert_int_eq(vd_crypto_open_hex(other, hex, out, sizeof(out)), -1);
	hex[strlen(hex) - 1] = hex[strlen(hex) - 1] == '0' ? '1' : '0';
	ck_assert_int_eq(vd_crypto_open_hex(key, hex, out, sizeof(out)), -1);
	ck_assert_int_eq(vd_crypto_open_hex(key, "zz", out, sizeof(out)), -1);
	ck_assert_int_eq(vd_crypto_open_hex(key, hex2, out, 5), -1);
	free(hex);
	free(hex2);
}
END_TEST

START_TEST(test_sha256_hex)
{
	char h[65];

	vd_crypto_sha256_hex("abc", 3, h);
	ck_assert_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

/* ---- docker logs (field case C12) ---- */

struct logbuf {
	char out[3][256];
	size_t len[3];
};

static void
collect(enum vd_log_stream st, const char *text, size_t len, void *arg)
{
	struct logbuf *b = arg;

	ck_assert_int_le(b->len[st] + len, sizeof(b->out[st]) - 1);
	memcpy(b->out[st] + b->len[st], text, len);
	b->len[st] += len;
	b->out[st][b->len[st]] = '\0';
	ck_assert(vd_utf8_valid(text, len));
}

/* Two frames (stdout "héllo €", stderr "日本") fed one byte at a time and in
 * one piece give the same text: no frame or character is split. */
START_TEST(test_logs_frames_split_anywhere)
{
	static const unsigned char frames[] = {
		1, 0, 0, 0, 0, 0, 0, 10, 'h', 0xc3, 0xa9, 'l', 'l', 'o', ' ', 0xe2, 0x82, 0xac,
		2, 0, 0, 0, 0, 0, 0, 3, 0xe6, 0x97, 0xa5,
		2, 0, 0, 0, 0, 0, 0, 3, 0xe6, 0x9c, 0xac,
	};
	struct vd_logs_parser p;
	struct logbuf whole, bytewise;

	memset(&whole, 0, sizeof(whole));
	memset(&bytewise, 0, sizeof(bytewise));
	vd_logs_init(&p, 0);
	ck_assert_int_eq(vd_logs_feed(&p, frames, sizeof(frames), collect, &whole), 0);
	vd_logs_finish(&p, collect, &whole);
	ck_assert_str_eq(whole.out[1], "h\xc3\xa9llo \xe2\x82\xac");
	ck_assert_str_eq(whole.out[2], "\xe6\x97\xa5\xe6\x9c\xac");
	vd_logs_init(&p, 0);
	for (size_t i = 0; i < sizeof(frames); i++)
		ck_assert_int_eq(vd_logs_feed(&p, frames + i, 1, collect, &bytewise), 0);
	vd_logs_finish(&p, collect, &bytewise);
	ck_assert_str_eq(bytewise.out[1], whole.out[1]);
	ck_assert_str_eq(bytewise.out[2], whole.out[2]);
}
END_TEST

/* A character split across two frames of the same stream is joined. */
START_TEST(test_logs_char_across_frames)
{
	static const unsigned char frames[] = {
		1, 0, 0, 0, 0, 0, 0, 2, 'a', 0xe2,
		1, 0, 0, 0, 0, 0, 0, 3, 0x82, 0xac, 'b',
	};
	struct vd_logs_parser p;
	struct logbuf b;

	memset(&b, 0, sizeof(b));
	vd_logs_init(&p, 0);
	ck_assert_int_eq(vd_logs_feed(&p, frames, sizeof(frames), collect, &b), 0);
	ck_assert_str_eq(b.out[1], "a\xe2\x82\xac" "b");
}
END_TEST

/* With a TTY the bytes are raw: a frame-like header is text, not framing. */
START_TEST(test_logs_tty_raw)
{
	static const unsigned char raw[] = { 'r', 'e', 'a', 'd', 'y', ' ', 0xf0, 0x9f, 0x98, 0x80, '\n' };
	struct vd_logs_parser p;
	struct logbuf b;

	memset(&b, 0, sizeof(b));
	vd_logs_init(&p, 1);
	ck_assert_int_eq(vd_logs_feed(&p, raw, 8, collect, &b), 0);
	ck_assert_str_eq(b.out[1], "ready ");      /* the emoji waits for its rest */
	ck_assert_int_eq(vd_logs_feed(&p, raw + 8, sizeof(raw) - 8, collect, &b), 0);
	ck_assert_str_eq(b.out[1], "ready \xf0\x9f\x98\x80\n");
}
END_TEST

START_TEST(test_logs_malformed)
{
	static const unsigned char bad_header[] = { 7, 0, 0, 0, 0, 0, 0, 1, 'x' };
	static const unsigned char bad_utf8[] = { 1, 0, 0, 0, 0, 0, 0, 4, 'a', 0xff, 0xc3, 'b' };
	struct vd_logs_parser p;
	struct logbuf b;

	memset(&b, 0, sizeof(b));
	vd_logs_init(&p, 0);
	ck_assert_int_eq(vd_logs_feed(&p, bad_header, sizeof(bad_header), collect, &b), -1);
	ck_assert_int_eq(vd_logs_feed(&p, bad_utf8, sizeof(bad_utf8), collect, &b), -1);
	vd_logs_init(&p, 0);
	ck_assert_int_eq(vd_logs_feed(&p, bad_utf8, sizeof(bad_utf8), collect, &b), 0);
	ck_assert_str_eq(b.out[1], "a\xef\xbf\xbd\xef\xbf\xbd" "b");
	/* a stream that ends inside a character */
	memset(&b, 0, sizeof(b));
	vd_logs_init(&p, 1);
	vd_logs_feed(&p, "\xe2\x82", 2, collect, &b);
	ck_assert_uint_eq(b.len[1], 0);
	vd_logs_finish(&p, collect, &b);
	ck_assert_str_eq(b.out[1], "\xef\xbf\xbd");
}
END_TEST

/* ---- acl (field cases C01-C04) ---- */

/* A user as named at instance creation: one password, every permission. */
static json_t *
full_user(const char *name, const char *password)
{
	json_t *body = json_pack("{s:s,s:s}", "username", name, "password", password), *u;
	struct vd_error e;

	ck_assert_int_eq(vd_acl_user_from_request(body, 12, 1, 1, "", &u, &e), 0);
	json_decref(body);
	return u;
}

static const char *H1 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

START_TEST(test_acl_render)
{
	struct vd_error e;
	json_t *users = json_array();
	char *out;

	/* hashes below: printf PASSWORD | sha256sum */
	json_array_append_new(users, full_user("zed", "zed-password-1"));
	json_array_append_new(users, full_user("app", "app-password-1"));
	json_array_append_new(users, json_pack("{s:s,s:b,s:b,s:[],s:[s],s:[],s:[s,s]}", "username",
	    "ro", "enabled", 0, "nopass", 1, "password_hashes", "keys", "~public:*", "channels",
	    "permissions", "-@all", "+get"));
	ck_assert_int_eq(vd_acl_render(users, H1, &out, &e), 0);
	/* default first and off (C02), admin second, then users by name, no
	 * comments, one fixed token order (C04) */
	ck_assert_str_eq(out,
	    "user default off resetpass resetkeys resetchannels -@all\n"
	    "user valdock on #ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad ~* &* +@all\n"
	    "user app on #19d4dbf5d456d34716c35d17d58e43ee45dc6e4f93ce28320811b7900efb894c ~* &* +@all\n"
	    "user ro off nopass ~public:* -@all +get\n"
	    "user zed on #9d3019d5c5faa2d69b04a51f808bbbca8d8214dea3078ca2cebfcd5f9d1f987e ~* &* +@all\n");
	free(out);
	json_decref(users);
}
END_TEST

START_TEST(test_acl_render_refuses)
{
	struct vd_error e;
	json_t *users = json_array();
	char *out;

	/* a user twice (C01) */
	json_array_append_new(users, full_user("app", "app-password-1"));
	json_array_append_new(users, full_user("app", "app-password-2"));
	ck_assert_int_eq(vd_acl_render(users, H1, &out, &e), -1);
	ck_assert_str_eq(e.code, "duplicate_user");
	ck_assert_ptr_null(out);
	json_decref(users);
	/* an uppercase or short hash (C03) */
	users = json_pack("[{s:s,s:b,s:[s],s:[],s:[],s:[]}]", "username", "u", "enabled", 1,
	    "password_hashes", "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
	    "keys", "channels", "permissions");
	ck_assert_int_eq(vd_acl_render(users, H1, &out, &e), -1);
	json_decref(users);
	users = json_pack("[{s:s,s:b,s:[],s:[s],s:[],s:[]}]", "username", "u", "enabled", 1,
	    "password_hashes", "keys", "~a b", "channels", "permissions");
	ck_assert_int_eq(vd_acl_render(users, H1, &out, &e), -1);
	json_decref(users);
	users = json_array();
	ck_assert_int_eq(vd_acl_render(users, "abc", &out, &e), -1);
	json_decref(users);
}
END_TEST

START_TEST(test_acl_checks)
{
	struct vd_error e;
	char long_pw[600];

	ck_assert_int_eq(vd_acl_check_username("u", "app.reader@team-1", &e), 0);
	ck_assert_int_eq(vd_acl_check_username("u", "default", &e), -1);
	ck_assert_int_eq(vd_acl_check_username("u", VD_ACL_ADMIN_USER, &e), -1);
	ck_assert_int_eq(vd_acl_check_username("u", "a b", &e), -1);
	ck_assert_int_eq(vd_acl_check_username("u", "a\tb", &e), -1);
	ck_assert_int_eq(vd_acl_check_username("u", "-x", &e), -1);
	ck_assert_int_eq(vd_acl_check_username("u", "", &e), -1);
	ck_assert_int_eq(vd_acl_check_password("p", "my pass#1 long", 12, &e), 0);
	ck_assert_int_eq(vd_acl_check_password("p", "short", 12, &e), -1);
	ck_assert_int_eq(vd_acl_check_password("p", "twelve chars\n", 12, &e), -1);
	memset(long_pw, 'a', 513);
	long_pw[513] = '\0';
	ck_assert_int_eq(vd_acl_check_password("p", long_pw, 12, &e), -1);
	ck_assert_int_eq(vd_acl_is_hash(H1), 1);
	ck_assert_int_eq(vd_acl_is_hash("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"), 0);
	ck_assert_int_eq(vd_acl_is_hash("ba7816bf"), 0);
}
END_TEST

/* ---- instance ---- */

START_TEST(test_instance_parse_create)
{
	struct vd_error e;
	json_t *settings = vd_settings_defaults(), *spec, *users, *body;

	body = json_pack("{s:s,s:i,s:s,s:[{s:s,s:s}]}", "name", "cache-1", "port", 7100, "memory",
	    "64mb", "users", "username", "app", "password", "app-password-1");
	ck_assert_int_eq(vd_instance_parse_create(body, settings, 5, &spec, &users, &e), 0);
	ck_assert_str_eq(json_string_value(json_object_get(spec, "id")), "cache-1");
	ck_assert_int_eq(json_integer_value(json_object_get(spec, "port")), 7100);
	ck_assert_int_eq(json_integer_value(json_object_get(spec, "memory_bytes")), 64LL << 20);
	ck_assert_str_eq(json_string_value(json_object_get(spec, "publish_address")), "127.0.0.1");
	ck_assert_int_eq(json_array_size(users), 1);
	/* the password is kept only as its hash */
	{
		char *dump = json_dumps(users, 0);

		ck_assert_ptr_null(strstr(dump, "app-password-1"));
		free(dump);
	}
	json_decref(spec);
	json_decref(users);
	json_decref(body);

	body = json_pack("{s:s}", "name", "c");
	ck_assert_int_eq(vd_instance_parse_create(body, settings, 5, &spec, &users, &e), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(spec, "port")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(spec, "memory_bytes")), 256LL << 20);
	json_decref(spec);
	json_decref(users);
	json_decref(body);
	json_decref(settings);
}
END_TEST

START_TEST(test_instance_parse_create_refuses)
{
	static const char *bad[][2] = {
		{ "{\"name\":\"Cache\"}", "name" },
		{ "{\"port\":7000}", "name" },
		{ "{\"name\":\"c\",\"port\":0}", "port" },
		{ "{\"name\":\"c\",\"port\":65536}", "port" },
		{ "{\"name\":\"c\",\"port\":\"7000\"}", "port" },
		{ "{\"name\":\"c\",\"memory\":\"1.5gb\"}", "memory" },
		{ "{\"name\":\"c\",\"memory\":\"8mb\"}", "memory" },
		{ "{\"name\":\"c\",\"configTemplate\":\"No Such\"}", "configTemplate" },
		{ "{\"name\":\"c\",\"configTemplate\":7}", "configTemplate" },
		{ "{\"name\":\"c\",\"users\":{}}", "users" },
		{ "{\"name\":\"c\",\"users\":[{\"username\":\"a\"}]}", "users[0].password" },
		{ "{\"name\":\"c\",\"users\":[{\"username\":\"a\",\"password\":\"aaaaaaaaaaaa\",\"x\":1}]}", "users[0].x" },
		{ "{\"name\":\"c\",\"users\":[{\"username\":\"a\",\"password\":\"aaaaaaaaaaaa\"},"
		  "{\"username\":\"a\",\"password\":\"bbbbbbbbbbbb\"}]}", "users[1].username" },
		{ "{\"name\":\"c\",\"image\":\"evil\"}", "image" },
	};
	json_t *settings = vd_settings_defaults(), *spec, *users, *body;
	struct vd_error e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		body = json_loads(bad[i][0], 0, NULL);
		ck_assert_ptr_nonnull(body);
		vd_err_clear(&e);
		ck_assert_msg(vd_instance_parse_create(body, settings, 5, &spec, &users, &e) == -1,
		    "accepted %s", bad[i][0]);
		ck_assert_int_eq(e.kind, VD_EINVALID);
		ck_assert_str_eq(e.field, bad[i][1]);
		ck_assert_ptr_null(spec);
		json_decref(body);
	}
	json_decref(settings);
}
END_TEST

START_TEST(test_instance_container_body)
{
	struct vd_instance_paths p;
	struct vd_error e;
	json_t *spec, *b, *hc, *m;

	spec = json_pack("{s:s,s:i,s:s,s:I,s:s}", "id", "c1", "port", 7002, "image", "valdock/valkey:local",
	    "memory_bytes", (json_int_t)(64LL << 20), "publish_address", "127.0.0.1");
	ck_assert_int_eq(vd_instance_paths("/var/lib/valdock", "c1", &p, &e), 0);
	ck_assert_str_eq(p.conf_dir, "/var/lib/valdock/instances/c1/conf");
	b = vd_instance_container_body(spec, &p);
	ck_assert_ptr_nonnull(b);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(b, "Labels"), VD_INSTANCE_LABEL)), "c1");
	hc = json_object_get(b, "HostConfig");
	/* directories, bind type (a missing source fails instead of appearing
	 * as a root-owned directory: C09) */
	m = json_array_get(json_object_get(hc, "Mounts"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(m, "Type")), "bind");
	ck_assert_str_eq(json_string_value(json_object_get(m, "Source")), "/var/lib/valdock/instances/c1/conf");
	ck_assert_str_eq(json_string_value(json_object_get(m, "Target")), "/etc/valkey");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(
	    json_object_get(hc, "PortBindings"), "6379/tcp"), 0), "HostPort")), "7002");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(hc, "RestartPolicy"), "Name")),
	    "unless-stopped");
	ck_assert_int_eq(json_integer_value(json_object_get(hc, "Memory")), 64LL << 20);
	/* arguments as an array, never a shell line */
	ck_assert(json_is_array(json_object_get(b, "Cmd")));
	json_decref(b);
	json_decref(spec);
	ck_assert_str_eq(vd_instance_state_from_docker("running"), "running");
	ck_assert_str_eq(vd_instance_state_from_docker("exited"), "stopped");
	ck_assert_str_eq(vd_instance_state_from_docker("dead"), "error");
}
END_TEST

/* ---- acl rules (C03, hostile input) ---- */

static int
rules(enum vd_acl_field kind, const char *text, json_t **out, struct vd_error *e)
{
	json_t *v = json_string(text);
	int rc = vd_acl_parse_rules(kind, "f", v, out, e);

	json_decref(v);
	return rc;
}

START_TEST(test_acl_rules_accepted)
{
	struct vd_error e;
	json_t *out, *arr;

	ck_assert_int_eq(rules(VD_ACL_PERMISSIONS, " +@read  -@dangerous +client|setname allcommands ", &out, &e), 0);
	ck_assert_int_eq(json_array_size(out), 4);
	ck_assert_str_eq(json_string_value(json_array_get(out, 2)), "+client|setname");
	json_decref(out);
	ck_assert_int_eq(rules(VD_ACL_PERMISSIONS, "+get (~logs:*  +set)", &out, &e), 0);
	ck_assert_str_eq(json_string_value(json_array_get(out, 1)), "(~logs:* +set)");
	json_decref(out);
	ck_assert_int_eq(rules(VD_ACL_KEYS, "~public:* %R~logs:* %RW~x allkeys", &out, &e), 0);
	ck_assert_int_eq(json_array_size(out), 4);
	json_decref(out);
	ck_assert_int_eq(rules(VD_ACL_CHANNELS, "&events:* allchannels", &out, &e), 0);
	json_decref(out);
	arr = json_pack("[s,s]", "~a:*", "%W~b");
	ck_assert_int_eq(vd_acl_parse_rules(VD_ACL_KEYS, "keys", arr, &out, &e), 0);
	ck_assert_int_eq(json_array_size(out), 2);
	json_decref(out);
	json_decref(arr);
}
END_TEST

START_TEST(test_acl_rules_refused)
{
	static const struct { enum vd_acl_field kind; const char *text; } bad[] = {
		{ VD_ACL_PERMISSIONS, "+get >x" },        /* a password smuggled in */
		{ VD_ACL_PERMISSIONS, "+get #ba78" },
		{ VD_ACL_PERMISSIONS, "nopass" },
		{ VD_ACL_PERMISSIONS, "reset" },
		{ VD_ACL_PERMISSIONS, "on" },
		{ VD_ACL_PERMISSIONS, "+@nosuchcategory" },
		{ VD_ACL_PERMISSIONS, "get" },
		{ VD_ACL_PERMISSIONS, "+get\nuser evil on nopass" },
		{ VD_ACL_PERMISSIONS, "+get (~x +set" },   /* unbalanced selector */
		{ VD_ACL_PERMISSIONS, "+get ~x +set)" },
		{ VD_ACL_PERMISSIONS, "(>pw +get)" },
		{ VD_ACL_PERMISSIONS, "()" },
		{ VD_ACL_PERMISSIONS, "(~a +get)(&b)" },    /* selectors run together */
		{ VD_ACL_PERMISSIONS, "~keys:*" },         /* a key rule in permissions */
		{ VD_ACL_KEYS, "+@all" },
		{ VD_ACL_KEYS, "%R~" },                    /* %R needs a pattern */
		{ VD_ACL_KEYS, "%X~a" },
		{ VD_ACL_KEYS, "~" },
		{ VD_ACL_KEYS, "resetkeys" },
		{ VD_ACL_KEYS, "&chan" },
		{ VD_ACL_CHANNELS, "~key" },
		{ VD_ACL_CHANNELS, "resetchannels" },
		{ VD_ACL_CHANNELS, "&" },
	};
	struct vd_error e;
	json_t *out;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vd_err_clear(&e);
		ck_assert_msg(rules(bad[i].kind, bad[i].text, &out, &e) == -1, "accepted '%s'", bad[i].text);
		ck_assert_int_eq(e.kind, VD_EINVALID);
		ck_assert_str_eq(e.field, "f");
		ck_assert_ptr_null(out);
	}
	/* an array element with a space cannot hide two rules */
	{
		json_t *arr = json_pack("[s]", "~a ~b");

		ck_assert_int_eq(vd_acl_parse_rules(VD_ACL_KEYS, "keys", arr, &out, &e), -1);
		json_decref(arr);
		arr = json_pack("[i]", 3);
		ck_assert_int_eq(vd_acl_parse_rules(VD_ACL_KEYS, "keys", arr, &out, &e), -1);
		json_decref(arr);
	}
}
END_TEST

START_TEST(test_acl_user_records)
{
	struct vd_error e;
	json_t *body, *u, *change, *view;
	int end;

	body = json_pack("{s:s,s:s,s:s,s:s}", "username", "reader", "password", "reader-pass-01",
	    "permissions", "+@read", "keys", "~public:*");
	ck_assert_int_eq(vd_acl_user_from_request(body, 12, 0, 1, "", &u, &e), 0);
	ck_assert_int_eq(json_array_size(json_object_get(u, "password_hashes")), 1);
	ck_assert_int_eq(json_array_size(json_object_get(u, "channels")), 0);
	json_decref(body);

	/* rotation: add a second password, remove the first */
	change = json_pack("{s:s}", "add_password", "reader-pass-02");
	ck_assert_int_eq(vd_acl_user_update(u, change, 12, 2, &end, &e), 0);
	ck_assert_int_eq(end, 0);
	ck_assert_int_eq(json_array_size(json_object_get(u, "password_hashes")), 2);
	json_decref(change);
	change = json_pack("{s:s}", "remove_password", "reader-pass-01");
	ck_assert_int_eq(vd_acl_user_update(u, change, 12, 3, &end, &e), 0);
	ck_assert_int_eq(end, 1);
	ck_assert_int_eq(json_array_size(json_object_get(u, "password_hashes")), 1);
	json_decref(change);
	change = json_pack("{s:s}", "remove_password", "never-was-one");
	ck_assert_int_eq(vd_acl_user_update(u, change, 12, 3, &end, &e), -1);
	ck_assert_str_eq(e.field, "remove_password");
	json_decref(change);
	/* disabling ends sessions; a bad field leaves the record as it was */
	change = json_pack("{s:b,s:s,s:s}", "enabled", 0, "keys", "~ok", "permissions", "+get >x");
	ck_assert_int_eq(vd_acl_user_update(u, change, 12, 4, &end, &e), -1);
	ck_assert(json_is_true(json_object_get(u, "enabled")));
	json_decref(change);
	change = json_pack("{s:b}", "enabled", 0);
	ck_assert_int_eq(vd_acl_user_update(u, change, 12, 4, &end, &e), 0);
	ck_assert_int_eq(end, 1);
	json_decref(change);
	/* removing the last password: reported as unable to log in (C04) */
	change = json_pack("{s:b,s:s}", "enabled", 1, "remove_password", "reader-pass-02");
	ck_assert_int_eq(vd_acl_user_update(u, change, 12, 5, &end, &e), 0);
	view = vd_acl_user_view(u);
	ck_assert(json_is_false(json_object_get(view, "can_login")));
	ck_assert_ptr_nonnull(json_object_get(view, "warning"));
	ck_assert_ptr_null(json_object_get(view, "password_hashes"));
	json_decref(view);
	json_decref(change);
	/* nopass only when asked for, and never with a password (C04) */
	change = json_pack("{s:b,s:s}", "nopass", 1, "add_password", "reader-pass-03");
	ck_assert_int_eq(vd_acl_user_update(u, change, 12, 6, &end, &e), -1);
	json_decref(change);
	json_decref(u);

	body = json_pack("{s:s,s:s}", "username", "x", "permissions", "+get");
	ck_assert_int_eq(vd_acl_user_from_request(body, 12, 0, 1, "", &u, &e), -1);
	ck_assert_str_eq(e.field, "keys");
	json_decref(body);
	body = json_pack("{s:s,s:s,s:s,s:s}", "username", "x\ny", "password", "reader-pass-01",
	    "permissions", "+get", "keys", "~a");
	ck_assert_int_eq(vd_acl_user_from_request(body, 12, 0, 1, "", &u, &e), -1);
	ck_assert_str_eq(e.field, "username");
	json_decref(body);
}
END_TEST

/* Lines kept per user render the same file in any order; a duplicate is
 * refused (C01). */
START_TEST(test_acl_render_lines)
{
	const char *lines[] = { "user zed on nopass ~z +get", "user app on nopass ~a +get",
	    "user app2 off nopass ~b +get" };
	const char *dup[] = { "user app on nopass ~a +get", "user app off nopass ~x +set" };
	const char *bad[] = { "user app on\nuser evil on nopass" };
	struct vd_error e;
	char *out;

	ck_assert_int_eq(vd_acl_render_lines(lines, 3, H1, &out, &e), 0);
	ck_assert_ptr_nonnull(strstr(out, "+@all\nuser app on nopass ~a +get\nuser app2 off nopass ~b +get\n"
	    "user zed on nopass ~z +get\n"));
	ck_assert_int_eq(strncmp(out, "user default off", 16), 0);
	free(out);
	ck_assert_int_eq(vd_acl_render_lines(dup, 2, H1, &out, &e), -1);
	ck_assert_str_eq(e.code, "duplicate_user");
	ck_assert_int_eq(vd_acl_render_lines(bad, 1, H1, &out, &e), -1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("valdock units");
	TCase *tc = tcase_create("pure");

	tcase_add_test(tc, test_error_status_map);
	tcase_add_test(tc, test_error_json_shape);
	tcase_add_test(tc, test_pct_decode);
	tcase_add_test(tc, test_utf8);
	tcase_add_test(tc, test_parse_long);
	tcase_add_test(tc, test_storeurl_forms);
	tcase_add_test(tc, test_storeurl_refused);
	tcase_add_test(tc, test_storeurl_describe_hides_password);
	tcase_add_test(tc, test_docker_pick_api);
	tcase_add_test(tc, test_docker_parse_host);
	tcase_add_test(tc, test_settings_apply);
	tcase_add_test(tc, test_settings_from_stored);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_config_file_and_precedence);
	tcase_add_test(tc, test_config_refuses);
	tcase_add_test(tc, test_query);
	tcase_add_test(tc, test_body_checks);
	tcase_add_test(tc, test_json_body);
	tcase_add_test(tc, test_router);
	tcase_add_test(tc, test_meminfo);
	tcase_add_test(tc, test_units);
	tcase_add_test(tc, test_seal_open);
	tcase_add_test(tc, test_sha256_hex);
	tcase_add_test(tc, test_logs_frames_split_anywhere);
	tcase_add_test(tc, test_logs_char_across_frames);
	tcase_add_test(tc, test_logs_tty_raw);
	tcase_add_test(tc, test_logs_malformed);
	tcase_add_test(tc, test_acl_render);
	tcase_add_test(tc, test_acl_render_refuses);
	tcase_add_test(tc, test_acl_render_lines);
	tcase_add_test(tc, test_acl_checks);
	tcase_add_test(tc, test_acl_rules_accepted);
	tcase_add_test(tc, test_acl_rules_refused);
	tcase_add_test(tc, test_acl_user_records);
	tcase_add_test(tc, test_instance_parse_create);
	tcase_add_test(tc, test_instance_parse_create_refuses);
	tcase_add_test(tc, test_instance_container_body);
	suite_add_tcase(s, tc);
	return vd_unit_run(s);
}
