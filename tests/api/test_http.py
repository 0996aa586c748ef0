"""HTTP behaviour of the stack: the JSON error shape, body framing, HEAD,
request ids, security headers and the static dashboard (SPA fallback)."""

import os
import re

from conftest import WEB_ROOT

SETTINGS = "/api/v1/system/settings"
HEALTH = "/api/v1/system/health"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
IMMUTABLE = "public, max-age=31536000, immutable"


def err(code, message, **extra):
    return dict({"status": "error", "code": code, "message": message}, **extra)


def assert_error(r, status, code, message=None):
    assert r.status == status, r
    assert r.header("Content-Type").split(";")[0].strip() == "application/json", r
    body = r.json()
    assert body["status"] == "error" and body["code"] == code, body
    assert set(body) <= {"status", "code", "message", "field"}
    assert isinstance(body["message"], str) and body["message"]
    if message is not None:
        assert body["message"] == message
    return body


def raw_put(stack, body, headers=""):
    head = (f"PUT {SETTINGS} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}\r\n").encode()
    return stack.raw(head + body)


# ---------------------------------------------------------------- errors

def test_404_unknown_path(shared_stack):
    r = shared_stack.get("/api/v1/nope")
    assert_error(r, 404, "not_found")
    assert r.json() == err("not_found", "no such resource")
    assert r.header("Allow") is None
    r = shared_stack.get("/api/v1/system/health/extra")
    assert r.json() == err("not_found", "no such resource")
    # outside /api/v1 nginx answers in the same shape
    r = shared_stack.get("/api/v2/system/health")
    assert_error(r, 404, "not_found", "no such API version; use /api/v1")


def test_405_with_allow(shared_stack):
    r = shared_stack.request("DELETE", HEALTH)
    assert_error(r, 405, "method_not_allowed")
    assert r.json() == err("method_not_allowed", "method DELETE is not allowed here; allowed: GET, HEAD")
    assert r.header("Allow") == "GET, HEAD"
    r = shared_stack.request("POST", SETTINGS, body={})
    assert r.json() == err("method_not_allowed", "method POST is not allowed here; allowed: GET, HEAD, PUT")
    assert r.header("Allow") == "GET, HEAD, PUT"


def test_411_put_without_length(shared_stack):
    r = raw_put(shared_stack, b"", "Content-Type: application/json\r\n")
    assert_error(r, 411, "length_required", "this route needs a JSON body with a Content-Length")
    assert r.header("X-Request-Id")


def test_400_empty_body(shared_stack):
    r = shared_stack.request("PUT", SETTINGS, body=b"", headers={"Content-Type": "application/json"})
    assert r.json() == err("empty_body", "this route needs a JSON object body")
    assert r.status == 400


def test_413_pool_limit(shared_stack):
    body = b'{"metrics_interval": 5}'.ljust(16385)
    r = raw_put(shared_stack, body, "Content-Type: application/json\r\nContent-Length: 16385\r\n")
    assert_error(r, 413, "payload_too_large", "request body of 16385 bytes exceeds the limit of 16384")
    assert r.header("X-Request-Id"), "the pool, not nginx, answers below nginx's limit"
    # exactly at the limit it is read (and parsed: trailing spaces are fine)
    body = b'{"metrics_interval": 5}'.ljust(16384)
    r = raw_put(shared_stack, body, "Content-Type: application/json\r\nContent-Length: 16384\r\n")
    assert r.status == 200, r


def test_413_nginx_limit(shared_stack):
    # nginx's client_max_body_size is 2 * max_body (default 1 MiB); it
    # answers from the Content-Length alone, without reading the body
    n = 2 * 1048576 + 1
    r = raw_put(shared_stack, b"", f"Content-Type: application/json\r\nContent-Length: {n}\r\n")
    assert_error(r, 413, "payload_too_large", "request body exceeds the limit")
    assert r.json() == err("payload_too_large", "request body exceeds the limit")
    assert r.header("X-Request-Id") is None, "nginx answers this one"


def test_413_between_limits_is_the_pools(shared_stack):
    # a body nginx accepts but the settings route does not: the pool's 413,
    # even though it never reads the body
    body = b" " * 1000000
    r = shared_stack.request("PUT", SETTINGS, body=body, headers={"Content-Type": "application/json"})
    assert_error(r, 413, "payload_too_large", "request body of 1000000 bytes exceeds the limit of 16384")


def test_415_wrong_media_type(shared_stack):
    r = shared_stack.request("PUT", SETTINGS, body=b'{"metrics_interval": 5}',
                             headers={"Content-Type": "text/plain"})
    assert_error(r, 415, "unsupported_media_type", "this route takes Content-Type: application/json")
    r = raw_put(shared_stack, b"{}", "Content-Length: 2\r\n")
    assert_error(r, 415, "unsupported_media_type", "this route takes Content-Type: application/json")
    # parameters of application/json are fine
    r = shared_stack.request("PUT", SETTINGS, body=b"{}",
                             headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status == 200, r


def test_400_malformed_json_names_line_and_column(shared_stack):
    before = shared_stack.get(SETTINGS).json()
    body = b'{\n  "metrics_interval": 5,\n  oops\n}'
    r = shared_stack.request("PUT", SETTINGS, body=body, headers={"Content-Type": "application/json"})
    b = assert_error(r, 400, "malformed_json")
    assert re.fullmatch(r"malformed JSON at line 3, column \d+ \(byte \d+\): .+", b["message"]), b
    # jansson reports the position at the end of the offending token
    assert b["message"] == "malformed JSON at line 3, column 6 (byte 33): string or '}' expected near 'oops'"
    r = shared_stack.request("PUT", SETTINGS, body=b'{"a":', headers={"Content-Type": "application/json"})
    assert r.json() == err("malformed_json",
                           "malformed JSON at line 1, column 5 (byte 5): unexpected token near end of file")
    r = shared_stack.request("PUT", SETTINGS, body=b'{"instance_image": "\xff"}',
                             headers={"Content-Type": "application/json"})
    assert r.json() == err("malformed_json", "request body is not valid UTF-8")
    assert shared_stack.get(SETTINGS).json() == before


def test_400_non_object_json(shared_stack):
    for body in (b"[1]", b'[{"metrics_interval": 5}]'):
        r = shared_stack.request("PUT", SETTINGS, body=body, headers={"Content-Type": "application/json"})
        assert r.status == 400
        assert r.json() == err("malformed_json", "request body must be a JSON object")


def test_400_duplicate_keys(shared_stack):
    before = shared_stack.get(SETTINGS).json()
    body = b'{"metrics_interval":1,"metrics_interval":2}'
    r = shared_stack.request("PUT", SETTINGS, body=body, headers={"Content-Type": "application/json"})
    assert r.status == 400
    assert r.json() == err("malformed_json", "malformed JSON at line 1, column 40 (byte 40): "
                                             "duplicate object key near '\"metrics_interval\"'")
    assert shared_stack.get(SETTINGS).json() == before


def test_400_bad_query(shared_stack):
    r = shared_stack.get(HEALTH + "?a=%zz")
    assert_error(r, 400, "bad_query", "malformed or overlong value of query parameter 'a'")
    r = shared_stack.get(HEALTH + "?a=1&a=2")
    assert r.json() == err("bad_query", "query parameter 'a' given twice")
    r = shared_stack.get(HEALTH + "?a=%01")
    assert r.json() == err("bad_query", "query parameters must be UTF-8 without control characters")
    # a well-formed query is accepted
    assert shared_stack.get(HEALTH + "?a=1&b=%41").status == 200


def test_chunked_put_is_dechunked_by_nginx(shared_stack):
    """nginx buffers the chunked body (fastcgi_request_buffering on) and
    passes its length as CONTENT_LENGTH, so the pool accepts it: 200."""
    doc = b'{"metrics_interval": 61}'
    body = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, doc[:10], len(doc) - 10, doc[10:])
    r = raw_put(shared_stack, body, "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n")
    assert r.status == 200, r
    assert r.json()["metrics_interval"] == 61
    assert shared_stack.get(SETTINGS).json()["metrics_interval"] == 61
    # the pool's own limit still holds for a de-chunked body
    big = b'{"metrics_interval": 62}'.ljust(20000)
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(big), big)
    r = raw_put(shared_stack, body, "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n")
    assert_error(r, 413, "payload_too_large", "request body of 20000 bytes exceeds the limit of 16384")
    assert shared_stack.get(SETTINGS).json()["metrics_interval"] == 61


# ---------------------------------------------------------------- HEAD, ids

def test_head_has_headers_and_no_body(shared_stack):
    get = shared_stack.get(HEALTH)
    r = shared_stack.raw(f"HEAD {HEALTH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    assert r.status == 200
    assert r.body == b""
    assert r.header("Content-Type").startswith("application/json")
    assert int(r.header("Content-Length")) == len(get.body)
    assert r.header("X-Request-Id")
    r = shared_stack.raw(f"HEAD {SETTINGS} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    assert r.status == 200 and r.body == b""
    assert int(r.header("Content-Length")) == len(shared_stack.get(SETTINGS).body)
    r = shared_stack.raw(b"HEAD /api/v1/nope HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert r.status == 404 and r.body == b""


def test_request_id(shared_stack):
    ids = []
    for path in (HEALTH, SETTINGS, "/api/v1/nope"):
        r = shared_stack.get(path)
        rid = r.header("X-Request-Id")
        assert rid and re.fullmatch(r"[0-9a-f]{32}", rid), r
        ids.append(rid)
    r = shared_stack.request("DELETE", HEALTH)
    ids.append(r.header("X-Request-Id"))
    assert len(set(ids)) == len(ids)
    # the same id is in the worker's log line of that request
    shared_stack.wait_log(f"req={ids[-1]} DELETE \"{HEALTH}\"")


# ---------------------------------------------------------------- headers, static

def some_asset():
    files = sorted(p for p in (WEB_ROOT / "_app" / "immutable").rglob("*.js") if p.is_file())
    assert files, "the frontend build has no immutable assets"
    return files[0]


def assert_security_headers(r):
    for name in ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"):
        assert len(r.header_all(name)) == 1, (name, r.headers)
    csp = r.header("Content-Security-Policy")
    assert csp == CSP
    assert "frame-ancestors 'none'" in [d.strip() for d in csp.split(";")]
    assert r.header("X-Content-Type-Options") == "nosniff"
    assert r.header("X-Frame-Options") == "DENY"
    assert r.header("Referrer-Policy") == "no-referrer"


def test_security_headers_everywhere(shared_stack):
    asset = "/" + str(some_asset().relative_to(WEB_ROOT))
    responses = {
        "/": shared_stack.get("/"),
        "/instances": shared_stack.get("/instances"),
        asset: shared_stack.get(asset),
        "/_app/immutable/x.js": shared_stack.get("/_app/immutable/x.js"),
        HEALTH: shared_stack.get(HEALTH),
        "/api/v1/nope": shared_stack.get("/api/v1/nope"),
        "/api/v2/x": shared_stack.get("/api/v2/x"),
        "405": shared_stack.request("DELETE", HEALTH),
        "413 nginx": raw_put(shared_stack, b"", "Content-Type: application/json\r\nContent-Length: 9999999\r\n"),
    }
    for what, r in responses.items():
        try:
            assert_security_headers(r)
        except AssertionError as e:
            raise AssertionError(f"{what}: {e}") from e


def test_spa_fallback_and_caching(shared_stack):
    index = (WEB_ROOT / "index.html").read_bytes()
    for path in ("/", "/instances", "/instances/cache-1/settings"):
        r = shared_stack.get(path)
        assert r.status == 200, (path, r)
        assert r.header("Content-Type").startswith("text/html")
        assert r.body == index
        assert r.header("Cache-Control") == "no-cache"
    asset = some_asset()
    r = shared_stack.get("/" + str(asset.relative_to(WEB_ROOT)))
    assert r.status == 200
    assert r.body == asset.read_bytes()
    assert r.header("Content-Type").startswith("application/javascript")
    assert r.header("Cache-Control") == IMMUTABLE
    r = shared_stack.get("/_app/immutable/x.js")
    assert r.status == 404
    assert r.body != index


def test_missing_immutable_asset_is_not_cached_for_a_year(shared_stack):
    """The year-long immutable Cache-Control goes on hashed assets only, never
    on the 404 of a missing one (a browser or proxy would keep it)."""
    r = shared_stack.get("/_app/immutable/x.js")
    assert r.status == 404
    cc = r.header("Cache-Control")
    assert cc != IMMUTABLE, f"a 404 answered with Cache-Control: {cc}"


def test_pool_unreachable_answers_503_json(stacks):
    """A pool that does not answer is a 503 with the pool_unavailable JSON
    body (error_page 502 504 =503), not nginx's 502."""
    s = stacks().start()
    sock = s.data / "run" / "fcgi.sock"
    hidden = s.data / "run" / "fcgi.sock.hidden"
    os.rename(sock, hidden)            # nginx cannot connect: as if no pool ran
    try:
        r = s.get(HEALTH)
    finally:
        os.rename(hidden, sock)
    assert r.header("Content-Type").split(";")[0] == "application/json"
    assert r.json() == err("pool_unavailable", "the valdock API pool is not answering")
    assert_security_headers(r)
    assert r.status == 503, f"status {r.status} {r.reason}"
    assert s.get(HEALTH).status == 200
