"""Dependencies going away and coming back: the store (external and
internal) and the Docker engine."""

import os
import re
import secrets
import signal

from conftest import alive, wait_for

HEALTH = "/api/v1/system/health"
SETTINGS = "/api/v1/system/settings"


def served_by(stack, request_id):
    """The pid of the worker that logged the request."""
    m = wait_for(lambda: re.search(rf"worker-\d+\[(\d+)\] info: req={request_id} ", stack.log_text()),
                 10, f"the log line of request {request_id}")
    return int(m.group(1))


def test_external_store_down_and_back(stacks):
    password = secrets.token_hex(16)
    ext = stacks.external_store(password).start()
    s = stacks(env={"VALDOCK_STORE_URL": f"unix://{ext.sock}", "VALDOCK_STORE_PASSWORD": password}).start()
    procs = s.processes()
    assert procs["store"] == [], "an external store means no internal one"
    workers = s.wait_workers(4)
    assert s.put_json(SETTINGS, {"metrics_interval": 33}).status == 200

    ext.kill(signal.SIGKILL)
    where = f"store unix://{ext.sock} is unreachable: "
    # every worker notices: its connection is dead, the reconnect is refused
    for _ in range(8):
        r = s.get(HEALTH)
        assert r.status == 503, r
        assert r.header("X-Request-Id"), "answered by the pool, not nginx"
        body = r.json()
        assert set(body) == {"status", "code", "message", "checks"}
        assert (body["status"], body["code"]) == ("error", "unhealthy")
        assert body["checks"]["docker"] == "ok"
        assert body["checks"]["store"].startswith(where), body
        assert body["checks"]["store"] == where + "Connection refused"
        assert body["message"] == "store is down: " + body["checks"]["store"]
        assert "store" in body["message"]
    for method, path, doc in (("GET", SETTINGS, None), ("PUT", SETTINGS, {"metrics_interval": 34}),
                              ("GET", "/api/v1/system/info", None)):
        r = s.request(method, path, body=doc)
        assert r.status == 503, (method, path, r)
        body = r.json()
        assert (body["status"], body["code"]) == ("error", "store_unavailable"), body
        assert body["message"] == where + "Connection refused"
    # endpoints that need no store still answer
    assert s.get("/api/v1/system/metrics").status == 200

    ext.start()       # same socket path, same password; its data is gone (no persistence)
    wait_for(lambda: s.get(HEALTH).status == 200, 20, "health to recover")
    ids = []
    for _ in range(8):
        r = s.get(HEALTH)
        assert r.status == 200, r
        assert r.json() == {"status": "ok", "checks": {"store": "ok", "docker": "ok"}}
        ids.append(r.header("X-Request-Id"))
        assert s.get(SETTINGS).status == 200
    # the same workers reconnected: none was restarted
    assert s.workers() == workers
    assert {served_by(s, rid) for rid in ids} <= set(workers)
    assert "crashed" not in s.log_text()
    assert "exited unexpectedly" not in s.log_text()
    assert password not in s.log_text()
    assert all(password.encode() not in b for b in s.bodies)


def test_internal_store_killed_is_restarted_with_its_data(stacks):
    s = stacks().start()
    assert s.put_json(SETTINGS, {"metrics_interval": 42, "default_memory_mb": 1000}).status == 200
    workers = s.wait_workers(4)
    old = s.one("store")
    os.kill(old, signal.SIGKILL)
    s.wait_log(rf"master\[{s.pid}\] warn: store \(pid {old}\) crashed: killed by signal 9 \(Killed\)")
    new = wait_for(lambda: [p for p in s.processes()["store"] if p != old], 20, "a new store process")[0]
    assert not alive(old)
    assert alive(new)
    wait_for(lambda: s.get(HEALTH).status == 200, 20, "health to recover")
    assert s.get(HEALTH).json() == {"status": "ok", "checks": {"store": "ok", "docker": "ok"}}
    doc = s.get(SETTINGS).json()
    assert (doc["metrics_interval"], doc["default_memory_mb"]) == (42, 1000), "AOF lost the write"
    assert s.workers() == workers
    assert s.processes()["store"] == [new]


def test_docker_unreachable(stacks):
    sock = "/nonexistent/docker.sock"
    s = stacks(env={"DOCKER_HOST": f"unix://{sock}"}).start(expect_health=(503,))
    r = s.get(HEALTH)
    assert r.status == 503
    assert r.header("Content-Type").startswith("application/json")
    body = r.json()
    assert set(body) == {"status", "code", "message", "checks"}
    assert (body["status"], body["code"]) == ("error", "unhealthy")
    assert body["checks"]["store"] == "ok"
    docker = body["checks"]["docker"]
    assert sock in docker
    assert re.fullmatch(rf"docker at unix://{re.escape(sock)} is unreachable: .+", docker), docker
    assert body["message"] == "docker is down: " + docker
    r = s.get("/api/v1/system/info")
    assert r.status == 200, r
    info = r.json()
    assert info["docker_version"] is None
    assert info["docker_api_version"] is None
    assert info["docker_error"] == docker
    assert info["instances_count"] == 0
    # everything that does not need Docker works
    assert s.get(SETTINGS).status == 200
    assert s.put_json(SETTINGS, {"metrics_interval": 15}).status == 200
    assert s.get("/api/v1/system/metrics").status == 200
    hk = wait_for(lambda: s.get("/api/v1/system/info").json()["housekeeper"].get("docker_ok") is not None
                  and s.get("/api/v1/system/info").json()["housekeeper"], 15, "the housekeeper's heartbeat")
    assert hk["docker_ok"] == 0
