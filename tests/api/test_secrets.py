"""The internal store's password stays a secret: mode 0600 on disk, only its
hash in the store's config, never in a response, the log or a command line."""

import hashlib
import os
import re
import signal
import stat

from conftest import cmdline, wait_for

SETTINGS = "/api/v1/system/settings"


def test_store_password_stays_secret(stacks):
    s = stacks().start()
    pwfile = s.data / "secrets" / "store.password"
    pw = pwfile.read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", pw), "a 32-byte random password in hex"
    assert stat.S_IMODE(os.stat(pwfile).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(s.data / "secrets").st_mode) == 0o700
    conf_path = s.data / "store" / "valkey.conf"
    conf = conf_path.read_text()
    assert pw not in conf
    sha = hashlib.sha256(pw.encode()).hexdigest()
    assert re.search(rf"^user default on #{sha} ", conf, re.M), conf
    assert stat.S_IMODE(os.stat(conf_path).st_mode) == 0o600
    assert pw not in (s.data / "run" / "nginx" / "nginx.conf").read_text()

    # every kind of answer, including the store's failure messages
    for path in ("/api/v1/system/health", "/api/v1/system/info", "/api/v1/system/metrics", SETTINGS,
                 "/api/v1/nope", "/api/v1/system/health?a=%zz", "/", "/instances"):
        s.get(path)
    s.put_json(SETTINGS, {"metrics_interval": 12})
    s.put_json(SETTINGS, {"nope": 1})
    s.request("PUT", SETTINGS, body=b"{", headers={"Content-Type": "application/json"})
    store = s.one("store")
    for p in s.processes()["store"] + s.processes()["worker"] + [s.pid]:
        assert pw not in cmdline(p)
    os.kill(store, signal.SIGKILL)
    for _ in range(4):
        s.get("/api/v1/system/health")
        s.get(SETTINGS)
    wait_for(lambda: s.get("/api/v1/system/health").status == 200, 20, "the store to come back")
    s.get("/api/v1/system/info")
    assert any(b"store_unavailable" in b or b"unhealthy" in b for b in s.bodies), "the outage was seen"
    assert len(s.bodies) > 20
    for body in s.bodies:
        assert pw.encode() not in body
        assert sha.encode() not in body
    assert s.stop() == 0
    # the whole log, including the shutdown
    log = s.log_text()
    assert "generated the internal store password" in log
    assert pw not in log
    assert sha not in log
    # a restart reuses the password
    t = stacks("again", data_dir=s.data).start()
    assert pwfile.read_text().strip() == pw
    assert "generated the internal store password" not in t.log_text()
    assert t.stop() == 0
    assert pw not in t.log_text()
