"""The system endpoints: health, info, metrics and settings."""

import os
import re
import subprocess
import threading

from conftest import REPO, alive, docker_get, valdock_bin, wait_for

DEFAULTS = {
    "instance_image": "valkey/valkey:8.0",
    "fallback_image": "valdock/valkey:local",
    "publish_address": "127.0.0.1",
    "port_range_start": 7000,
    "port_range_end": 7999,
    "metrics_interval": 10,
    "acl_password_min_length": 12,
    "default_memory_mb": 256,
}

SETTINGS = "/api/v1/system/settings"


def version_tuple(v):
    return tuple(int(x) for x in v.split("."))


def test_health_ok(shared_stack):
    r = shared_stack.get("/api/v1/system/health")
    assert r.status == 200
    assert r.header("Content-Type").startswith("application/json")
    assert r.json() == {"status": "ok", "checks": {"store": "ok", "docker": "ok"}}


def test_info(shared_stack):
    out = subprocess.run([str(valdock_bin()), "version"], capture_output=True, text=True, check=True).stdout
    m = re.fullmatch(r"valdock (\S+)\n", out)
    assert m, out
    valdock_version = m.group(1)
    out = subprocess.run(["valkey-server", "--version"], capture_output=True, text=True, check=True).stdout
    valkey_version = re.search(r"(?:^|\s)v=(\S+)", out).group(1)
    status, dv = docker_get("/version")
    assert status == 200
    ours_max = re.search(r'#define VD_DOCKER_API_MAX "([0-9.]+)"',
                         (REPO / "common" / "docker.h").read_text()).group(1)
    # the client speaks min(its newest, the daemon's); equal to the daemon's
    # ApiVersion whenever the daemon is not newer than the client
    api = min(dv["ApiVersion"], ours_max, key=version_tuple)

    # the housekeeper's first heartbeat may land just after the stack is ready
    def info_with_heartbeat():
        r = shared_stack.get("/api/v1/system/info")
        assert r.status == 200, r
        return r if "pid" in r.json()["housekeeper"] else None
    r = wait_for(info_with_heartbeat, 15, "the housekeeper's heartbeat in /system/info")
    info = r.json()
    assert set(info) == {"valdock_version", "valkey_version", "instances_count", "started_at",
                         "docker_version", "docker_api_version", "housekeeper"}
    assert info["valdock_version"] == valdock_version
    assert info["valkey_version"] == valkey_version
    assert info["docker_version"] == dv["Version"]
    assert info["docker_api_version"] == api
    assert info["instances_count"] == 0
    assert isinstance(info["started_at"], int)
    hk = info["housekeeper"]
    assert set(hk) == {"pid", "last_seen", "docker_ok"}
    assert hk["docker_ok"] == 1
    assert alive(hk["pid"])
    assert shared_stack.processes()["housekeeper"] == [hk["pid"]]


def test_metrics(shared_stack):
    r = shared_stack.get("/api/v1/system/metrics")
    assert r.status == 200
    m = r.json()
    assert set(m) == {"cpu_count", "load", "memory", "disk", "uptime_seconds", "valdock_uptime_seconds"}
    assert m["cpu_count"] == os.cpu_count()
    assert len(m["load"]) == 3 and all(isinstance(x, (int, float)) and x >= 0 for x in m["load"])
    with open("/proc/meminfo") as f:
        total_kb = int(re.search(r"^MemTotal:\s+(\d+) kB", f.read(), re.M).group(1))
    mem = m["memory"]
    assert mem["total_bytes"] == total_kb * 1024
    assert 0 <= mem["available_bytes"] <= mem["total_bytes"]
    assert mem["used_bytes"] == mem["total_bytes"] - mem["available_bytes"]
    vfs = os.statvfs(shared_stack.data)
    disk = m["disk"]
    assert disk["path"] == str(shared_stack.data)
    assert disk["total_bytes"] == vfs.f_blocks * vfs.f_frsize
    assert 0 <= disk["free_bytes"] <= disk["total_bytes"]
    assert 0 <= disk["used_bytes"] <= disk["total_bytes"]
    assert isinstance(m["uptime_seconds"], int) and m["uptime_seconds"] >= 0
    assert isinstance(m["valdock_uptime_seconds"], int) and m["valdock_uptime_seconds"] >= 0


def test_settings_defaults_and_partial_put(stacks):
    s = stacks().start()
    r = s.get(SETTINGS)
    assert r.status == 200
    assert r.json() == DEFAULTS
    patch = {"metrics_interval": 30, "publish_address": "::1", "port_range_start": 7100,
             "instance_image": "valkey/valkey:8.1"}
    r = s.put_json(SETTINGS, patch)
    assert r.status == 200, r
    want = dict(DEFAULTS, **patch)
    assert r.json() == want
    assert s.get(SETTINGS).json() == want
    # a second subset keeps the first
    r = s.put_json(SETTINGS, {"default_memory_mb": 512})
    assert r.status == 200, r
    want["default_memory_mb"] = 512
    assert r.json() == want
    assert s.get(SETTINGS).json() == want
    # an empty object changes nothing
    r = s.put_json(SETTINGS, {})
    assert r.status == 200 and r.json() == want


def invalid(field, message):
    return {"status": "error", "code": "invalid_field", "message": message, "field": field}


def test_settings_put_refused_changes_nothing(stacks):
    s = stacks().start()
    assert s.put_json(SETTINGS, {"metrics_interval": 20}).status == 200
    before = s.get(SETTINGS).json()
    cases = [
        ({"nope": 1}, invalid("nope", "unknown setting 'nope'")),
        ({"metrics_interval": "10"}, invalid("metrics_interval", "metrics_interval must be an integer from 1 to 3600")),
        ({"metrics_interval": 10.0}, invalid("metrics_interval", "metrics_interval must be an integer from 1 to 3600")),
        ({"metrics_interval": True}, invalid("metrics_interval", "metrics_interval must be an integer from 1 to 3600")),
        ({"metrics_interval": None}, invalid("metrics_interval", "metrics_interval must be an integer from 1 to 3600")),
        ({"instance_image": 5}, invalid("instance_image", "instance_image must be a string")),
        ({"metrics_interval": 0}, invalid("metrics_interval", "metrics_interval must be from 1 to 3600")),
        ({"metrics_interval": 3601}, invalid("metrics_interval", "metrics_interval must be from 1 to 3600")),
        ({"port_range_start": 80}, invalid("port_range_start", "port_range_start must be from 1024 to 65535")),
        ({"port_range_end": 65536}, invalid("port_range_end", "port_range_end must be from 1024 to 65535")),
        ({"acl_password_min_length": 7}, invalid("acl_password_min_length", "acl_password_min_length must be from 8 to 256")),
        ({"instance_image": ""}, invalid("instance_image", "instance_image must be 1 to 255 characters")),
        ({"instance_image": "valkey/valkey 8"},
         invalid("instance_image", "instance_image must be an image reference (letters, digits and . - _ / : @)")),
        ({"publish_address": "localhost"}, invalid("publish_address", "publish_address must be an IPv4 or IPv6 address")),
        # crossed port range: both given, and one given against the stored other
        ({"port_range_start": 8000, "port_range_end": 7500},
         invalid("port_range_start", "port_range_start (8000) must not exceed port_range_end (7500)")),
        ({"port_range_end": 6000},
         invalid("port_range_end", "port_range_start (7000) must not exceed port_range_end (6000)")),
        ({"port_range_start": 9000},
         invalid("port_range_start", "port_range_start (9000) must not exceed port_range_end (7999)")),
        # a valid key next to a bad one: the whole document is refused
        ({"metrics_interval": 99, "nope": 1}, invalid("nope", "unknown setting 'nope'")),
        ({"default_memory_mb": 1024, "metrics_interval": -1},
         invalid("metrics_interval", "metrics_interval must be from 1 to 3600")),
    ]
    for doc, body in cases:
        r = s.put_json(SETTINGS, doc)
        assert (r.status, r.json()) == (422, body), doc
        assert r.header("Content-Type").startswith("application/json")
        assert s.get(SETTINGS).json() == before, f"{doc} changed the settings"


def test_settings_survive_restart(stacks):
    a = stacks("first").start()
    patch = {"metrics_interval": 77, "port_range_start": 20000, "port_range_end": 20999,
             "fallback_image": "example/valkey:7"}
    assert a.put_json(SETTINGS, patch).status == 200
    assert a.stop() == 0
    b = stacks("second", data_dir=a.data).start()
    assert b.get(SETTINGS).json() == dict(DEFAULTS, **patch)


def test_concurrent_puts_of_different_keys_all_land(stacks):
    """PUT is a read-modify-write under WATCH: writers of different keys on
    different workers must not undo each other."""
    s = stacks().start()
    keys = {"metrics_interval": 100, "default_memory_mb": 1000, "acl_password_min_length": 20,
            "port_range_end": 30000}
    last_ok = {}
    errors = []

    def writer(key, base):
        for i in range(25):
            try:
                r = s.put_json(SETTINGS, {key: base + i})
            except OSError as e:
                errors.append(repr(e))
                continue
            if r.status == 200:
                last_ok[key] = base + i
                if r.json()[key] != base + i:
                    errors.append(f"{key}: answer shows {r.json()[key]}, not {base + i}")
            elif not (r.status == 409 and r.json()["code"] == "settings_busy"):
                errors.append(f"{key}: {r!r}")
    threads = [threading.Thread(target=writer, args=kv) for kv in keys.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[:5]
    assert set(last_ok) == set(keys)
    doc = s.get(SETTINGS).json()
    assert {k: doc[k] for k in keys} == last_ok
