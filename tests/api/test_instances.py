"""Instances on a real Docker engine (issue 3): create, list, inspect, start,
stop, restart, delete, stats; bad input, races, Docker down, outside changes,
restart of the whole stack, secrets and the files on the host (C09, C10).

Docker is shared with other stacks and other people's runs, so every test
  - names its instances t<6 random hex><suffix> and remembers every name it used,
  - gives each stack its own port range (PUT /system/settings),
  - removes at teardown every container labelled io.valdock.instance=<a used name>,
  - ends with Env.check(): the containers labelled with its names and the
    stack's records are the same set, and no files remain for deleted
    instances (except data/ of a delete with keep_data).

    /usr/bin/python3 -m pytest -q tests/api/test_instances.py
"""

import ctypes
import ctypes.util
import hashlib
import json
import os
import random
import re
import secrets
import signal
import socket
import stat
import subprocess
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import DOCKER_SOCK, UnixHTTPConnection, wait_for

API = "/api/v1/instances"
SETTINGS = "/api/v1/system/settings"
LABEL = "io.valdock.instance"
LOCAL_IMAGE = "valdock/valkey:local"
MB = 1024 * 1024
CREATE_TIMEOUT = 90
NAME_RULE = ("name must be 1-63 characters of lowercase letters, digits, '-' or '_', "
             "starting with a letter")
PORT_RULE = "port must be an integer from 1024 to 65535, or omitted"
MEMORY_RULE = 'memory must be a size such as "256mb" or "1gb" from 16mb to 1024gb'
VIEW_KEYS = {"id", "name", "port", "image", "template", "memory", "memory_bytes", "address", "created_at",
             "status", "container_id", "started_at", "last_error"}


# --------------------------------------------------------------------------
# Docker

def docker_call(method, path, body=None, timeout=30):
    """(status, parsed JSON or None) of one Docker API call on the local socket."""
    conn = UnixHTTPConnection(DOCKER_SOCK, timeout=timeout)
    try:
        hdrs = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw.decode()) if raw else None
        except ValueError:
            return r.status, raw.decode(errors="replace")
    finally:
        conn.close()


def labelled_containers(names):
    """Every container (running or not) labelled io.valdock.instance=<one of names>."""
    names = set(names)
    if not names:
        return []
    flt = urllib.parse.quote(json.dumps({"label": [LABEL]}))
    st, lst = docker_call("GET", f"/containers/json?all=1&filters={flt}")
    assert st == 200, lst
    return [c for c in lst if (c.get("Labels") or {}).get(LABEL) in names]


def inspect(name_or_id):
    st, j = docker_call("GET", f"/containers/{name_or_id}/json")
    return j if st == 200 else None


def remove_container(cid):
    docker_call("DELETE", f"/containers/{cid}?force=1&v=1")


# --------------------------------------------------------------------------
# RESP (Valkey) client: enough of the protocol for these tests

class RespError(Exception):
    pass


class Resp:
    def __init__(self, host="127.0.0.1", port=None, unix=None, timeout=5):
        if unix is not None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(timeout)
            self.sock.connect(str(unix))
        else:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        self.f = self.sock.makefile("rb")

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def _read(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("connection closed by the server")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2].decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise ConnectionError(f"unexpected RESP line {line!r}")

    def call(self, *args):
        """The reply; an error reply comes back as a RespError (not raised)."""
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self._read()

    def __call__(self, *args):
        """The reply; an error reply is raised."""
        r = self.call(*args)
        if isinstance(r, RespError):
            raise r
        return r


def client(port, user, password, timeout=5):
    c = Resp(port=port, timeout=timeout)
    r = c.call("AUTH", user, password)
    assert r == "OK", f"AUTH {user} on port {port}: {r!r}"
    return c


def pings(port, user, password):
    """True when the server on port answers PING as user."""
    try:
        with client(port, user, password, timeout=2) as c:
            return c("PING") == "PONG"
    except (OSError, ConnectionError, AssertionError):
        return False


def valkey_cli(port, *args, user=None, password=None):
    cmd = ["valkey-cli", "-h", "127.0.0.1", "-p", str(port)]
    if user is not None:
        cmd += ["--user", user, "--pass", password, "--no-auth-warning"]
    r = subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=20)
    return r.stdout.strip()


# --------------------------------------------------------------------------
# the internal store, read directly (to prove nothing changed in it)

def store(stack):
    pw = (stack.data / "secrets" / "store.password").read_text().strip()
    c = Resp(unix=stack.data / "run" / "store.sock")
    assert c.call("AUTH", pw) == "OK"
    return c


def store_snapshot(stack, names):
    """Everything the store holds about the given instance names."""
    snap = {}
    with store(stack) as c:
        members = set(c("SMEMBERS", "instances"))
        snap["instances"] = sorted(members & set(names))
        for n in sorted(names):
            for key in (f"instance:{n}", f"aclusers:{n}"):
                h = c("HGETALL", key)
                if h:
                    snap[key] = dict(zip(h[0::2], h[1::2]))
            lk = c("GET", f"lock:instance:{n}")
            if lk is not None:
                snap[f"lock:instance:{n}"] = lk
        cursor = "0"
        while True:
            cursor, keys = c("SCAN", cursor, "MATCH", "port:*", "COUNT", 1000)
            for k in keys:
                v = c("GET", k)
                if v in names:
                    snap[k] = v
            if cursor == "0":
                break
    return snap


def open_admin_secret(stack, sealed_hex):
    """Opens an instance's sealed admin password with the stack's master key
    (crypto_secretbox: nonce || MAC+ciphertext, in hex), through libsodium."""
    lib = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
    assert lib.sodium_init() >= 0
    key = (stack.data / "secrets" / "master.key").read_bytes()
    assert len(key) == 32
    box = bytes.fromhex(sealed_hex)
    nonce, c = box[:24], box[24:]
    m = ctypes.create_string_buffer(len(c) - 16)
    rc = lib.crypto_secretbox_open_easy(m, c, ctypes.c_ulonglong(len(c)), nonce, key)
    assert rc == 0, "the admin secret does not open with the master key"
    return m.raw.decode()


# --------------------------------------------------------------------------
# per-test environment: names, port ranges, cleanup, the after-test check

_BASES = set()
_BASES_LOCK = threading.Lock()


def port_free(port, addr="127.0.0.1"):
    with socket.socket() as s:
        try:
            s.bind((addr, port))
            return True
        except OSError:
            return False


def pick_port_range(width=50):
    """A random range of `width` ports below the kernel's ephemeral range,
    unused by this run and currently free (first 10 ports checked)."""
    with _BASES_LOCK:
        for _ in range(200):
            base = random.randrange(20000, 32700 - width, width)
            if base in _BASES:
                continue
            if all(port_free(p) for p in range(base, base + 10)):
                _BASES.add(base)
                return base, base + width - 1
    raise AssertionError("no free port range")


class Env:
    def __init__(self, factory):
        self.factory = factory
        self.tag = "t" + secrets.token_hex(3)
        self.used = set()          # every instance name this test used
        self.kept = set()          # deleted with keep_data=true (data/ may stay)
        self.stack = None
        self.range = pick_port_range()

    def name(self, suffix):
        n = self.tag + suffix
        self.used.add(n)
        return n

    # -- stacks

    def start(self, name="stack", set_range=True, expect_health=(200,), **kw):
        s = self.factory(name, **kw).start(expect_health=expect_health)
        if set_range:
            r = s.put_json(SETTINGS, {"port_range_start": self.range[0], "port_range_end": self.range[1]})
            assert r.status == 200, r
        self.stack = s
        return s

    def free_port(self):
        """A port of this test's range that nothing holds."""
        for p in range(self.range[1], self.range[0] - 1, -1):
            if port_free(p) and not any(i["port"] == p for i in self.list()):
                return p
        raise AssertionError("no free port left in the range")

    # -- API helpers on the current stack

    def create(self, name, expect=201, **fields):
        body = {"name": name, **fields}
        r = self.stack.request("POST", API, body=body, timeout=CREATE_TIMEOUT)
        assert r.status == expect, r
        return r

    def list(self):
        r = self.stack.get(API)
        assert r.status == 200, r
        doc = r.json()
        assert doc["count"] == len(doc["instances"])
        return doc["instances"]

    def view(self, name):
        r = self.stack.get(f"{API}/{name}")
        assert r.status == 200, r
        return r.json()

    def status(self, name):
        return self.view(name)["status"]

    def wait_status(self, name, want, timeout=10):
        return wait_for(lambda: self.status(name) == want, timeout,
                        f"instance {name} to show {want} (now {self.status(name)})", interval=0.1)

    def op(self, name, what, timeout=CREATE_TIMEOUT):
        return self.stack.request("POST", f"{API}/{name}/{what}", timeout=timeout)

    def stats(self, name):
        r = self.stack.get(f"{API}/{name}/stats")
        assert r.status == 200, r
        return r.json()

    def delete(self, name, keep_data=False):
        path = f"{API}/{name}" + ("?keep_data=true" if keep_data else "")
        r = self.stack.request("DELETE", path, timeout=60)
        assert r.status == 200, r
        assert r.json() == {"status": "ok", "data_kept": keep_data,
                            "message": "instance deleted; its data directory was kept" if keep_data
                            else "instance deleted"}
        if keep_data:
            self.kept.add(name)
        else:
            self.kept.discard(name)
        return r

    def inst_dir(self, name, stack=None):
        return (stack or self.stack).data / "instances" / name

    # -- the after-every-test rule

    def assert_nothing_of(self, name, stack=None):
        """No container, no record, no files for name."""
        s = stack or self.stack
        assert labelled_containers([name]) == []
        assert inspect(f"valdock-{name}") is None
        r = s.get(f"{API}/{name}")
        assert r.status == 404 and r.json()["code"] == "instance_not_found", r
        assert not self.inst_dir(name, s).exists(), list(self.inst_dir(name, s).rglob("*"))

    def check(self, stack=None):
        s = stack or self.stack
        containers = {c["Labels"][LABEL] for c in labelled_containers(self.used)}
        records = {i["id"] for i in self.list_of(s)} & self.used
        assert containers == records, (f"containers without a record: {containers - records}; "
                                       f"records without a container: {records - containers}")
        for n in self.used - records:
            d = self.inst_dir(n, s)
            if not d.exists():
                continue
            left = sorted(str(p.relative_to(d)) for p in d.rglob("*"))
            if n in self.kept:
                assert all(p == "data" or p.startswith("data/") for p in left), left
            else:
                raise AssertionError(f"files left for deleted instance {n}: {left}")
        # no per-instance lock outlives its request
        if (s.data / "run" / "store.sock").exists():
            with store(s) as c:
                for n in self.used:
                    assert c("EXISTS", f"lock:instance:{n}") == 0, f"lock of {n} left behind"

    @staticmethod
    def list_of(stack):
        r = stack.get(API)
        assert r.status == 200, r
        return r.json()["instances"]

    def cleanup(self):
        for c in labelled_containers(self.used):
            remove_container(c["Id"])


@pytest.fixture
def env(stacks):
    e = Env(stacks)
    yield e
    e.cleanup()


def pw(tag):
    """A distinctive password (at least 12 characters) nobody else uses."""
    return f"pw-{tag}-{secrets.token_hex(8)}"


# --------------------------------------------------------------------------
# 1. create, a real client, the views and stats

def test_create_real_client_views_and_stats(env):
    s = env.start()
    name = env.name("app")
    upw = pw("app")
    t0 = int(time.time())
    r = env.create(name, users=[{"username": "appuser", "password": upw}], memory="64mb")
    t1 = int(time.time())
    body = r.json()
    assert set(body) == {"id", "status", "port", "created_at"}
    assert body["id"] == name and body["status"] == "running"
    assert t0 <= body["created_at"] <= t1
    assert env.range[0] <= body["port"] <= env.range[1], "port allocated from the settings' range"
    assert r.header("Location") == f"{API}/{name}"
    port = body["port"]

    # a real client: valkey-cli as the user given at create
    assert valkey_cli(port, "SET", "greeting", "héllo wörld", user="appuser", password=upw) == "OK"
    assert valkey_cli(port, "GET", "greeting", user="appuser", password=upw) == "héllo wörld"
    # the default user can do nothing
    assert valkey_cli(port, "PING").startswith("NOAUTH")
    assert valkey_cli(port, "GET", "greeting").startswith("NOAUTH")
    assert valkey_cli(port, "AUTH", "default", "x").startswith("WRONGPASS")
    with Resp(port=port) as c:
        assert isinstance(c.call("PING"), RespError) and str(c.call("PING")).startswith("NOAUTH")
        assert str(c.call("AUTH", "default", "")).startswith("WRONGPASS")
        assert str(c.call("AUTH", "appuser", "wrong-password-x")).startswith("WRONGPASS")
    acl = valkey_cli(port, "ACL", "LIST", user="appuser", password=upw).splitlines()
    assert [a for a in acl if a.startswith("user default ")] and \
        re.match(r"user default off( |$)", [a for a in acl if a.startswith("user default ")][0]), acl
    assert "nopass" not in " ".join(acl)
    assert sorted(a.split()[1] for a in acl) == ["appuser", "default", "valdock"]

    # the views
    ctr = inspect(f"valdock-{name}")
    assert ctr is not None and ctr["State"]["Running"]
    listed = [i for i in env.list() if i["id"] == name]
    assert len(listed) == 1
    one = env.view(name)
    assert listed[0] == one
    assert set(one) == VIEW_KEYS
    assert one == {
        "id": name, "name": name, "port": port, "image": LOCAL_IMAGE, "template": "default",
        "memory": "64mb", "memory_bytes": 64 * MB, "address": f"127.0.0.1:{port}",
        "created_at": body["created_at"], "status": "running", "container_id": ctr["Id"],
        "started_at": one["started_at"], "last_error": None,
    }
    assert t0 <= one["started_at"] <= int(time.time())
    # the container as the issue describes it
    assert ctr["Name"] == f"/valdock-{name}"
    assert ctr["Config"]["Labels"][LABEL] == name
    assert ctr["Config"]["Image"] == LOCAL_IMAGE
    assert ctr["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert ctr["HostConfig"]["Memory"] == 64 * MB
    assert ctr["HostConfig"]["PortBindings"] == {"6379/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}

    # stats: keys == DBSIZE after N writes, memory, uptime
    n = 37
    with client(port, "appuser", upw) as c:
        for i in range(n):
            assert c("SET", f"k:{i}", "x" * i) == "OK"
        dbsize = c("DBSIZE")
    assert dbsize == n + 1
    st = env.stats(name)
    assert st["id"] == name and st["status"] == "running"
    assert st["keys"] == dbsize
    assert isinstance(st["used_memory_bytes"], int) and st["used_memory_bytes"] > 0
    assert isinstance(st["uptime_seconds"], int) and 0 <= st["uptime_seconds"] <= int(time.time()) - t0 + 1
    assert st["memory_limit_bytes"] == 64 * MB

    # the longest name (63 characters) works end to end; the default memory applies
    long_name = env.name("x" * (63 - len(env.tag)))
    assert len(long_name) == 63
    r = env.create(long_name, users=[{"username": "u", "password": upw}])
    lv = env.view(long_name)
    assert lv["status"] == "running" and lv["memory"] == "256mb" and lv["memory_bytes"] == 256 * MB
    assert lv["port"] != port and env.range[0] <= lv["port"] <= env.range[1]
    assert pings(lv["port"], "u", upw)
    assert {i["id"] for i in env.list()} == {name, long_name}

    env.delete(long_name)
    env.delete(name)
    env.assert_nothing_of(name)
    env.assert_nothing_of(long_name)
    env.check()


# --------------------------------------------------------------------------
# 2. bad input: 422 naming the field, and nothing created

def invalid(field, message=None):
    d = {"status": "error", "code": "invalid_field", "field": field}
    if message is not None:
        d["message"] = message
    return d


def test_create_bad_input_creates_nothing(env):
    s = env.start()
    ok = env.name("ok")     # a valid name for the cases where another field is wrong
    good_user = {"username": "app", "password": "long-enough-pw"}
    cases = [
        # names
        ({"name": "Abc"}, invalid("name", NAME_RULE)),
        ({"name": env.tag.upper() + "x"}, invalid("name", NAME_RULE)),
        ({"name": "1abc"}, invalid("name", NAME_RULE)),
        ({"name": "-abc"}, invalid("name", NAME_RULE)),
        ({"name": "a" * 64}, invalid("name", NAME_RULE)),
        ({"name": "a/b"}, invalid("name", NAME_RULE)),
        ({"name": "../etc"}, invalid("name", NAME_RULE)),
        ({"name": "a.b"}, invalid("name", NAME_RULE)),
        ({"name": "a b"}, invalid("name", NAME_RULE)),
        ({"name": "ab\n"}, invalid("name", NAME_RULE)),
        ({"name": "é"}, invalid("name", NAME_RULE)),
        ({"name": ""}, invalid("name", NAME_RULE)),
        ({"name": 5}, invalid("name", "name is required")),
        ({"name": ["a"]}, invalid("name", "name is required")),
        ({"name": None}, invalid("name", "name is required")),
        ({}, invalid("name", "name is required")),
        # ports
        ({"name": ok, "port": 0}, invalid("port", PORT_RULE)),
        ({"name": ok, "port": 1023}, invalid("port", PORT_RULE)),
        ({"name": ok, "port": 65536}, invalid("port", PORT_RULE)),
        ({"name": ok, "port": -1}, invalid("port", PORT_RULE)),
        ({"name": ok, "port": "7000"}, invalid("port", PORT_RULE)),
        ({"name": ok, "port": 1.5}, invalid("port", PORT_RULE)),
        ({"name": ok, "port": 7000.0}, invalid("port", PORT_RULE)),
        ({"name": ok, "port": True}, invalid("port", PORT_RULE)),
        ({"name": ok, "port": [7000]}, invalid("port", PORT_RULE)),
        # unknown fields
        ({"name": ok, "bogus": 1}, invalid("bogus")),
        ({"name": ok, "Name": ok}, invalid("Name")),
        ({"name": ok, "image": "evil/image"}, invalid("image")),
        # memory
        ({"name": ok, "memory": "lots"}, invalid("memory", MEMORY_RULE)),
        ({"name": ok, "memory": "15mb"}, invalid("memory", MEMORY_RULE)),
        ({"name": ok, "memory": "1.5gb"}, invalid("memory", MEMORY_RULE)),
        ({"name": ok, "memory": "64 mb"}, invalid("memory", MEMORY_RULE)),
        ({"name": ok, "memory": "-64mb"}, invalid("memory", MEMORY_RULE)),
        ({"name": ok, "memory": ""}, invalid("memory", MEMORY_RULE)),
        ({"name": ok, "memory": "2000gb"}, invalid("memory", MEMORY_RULE)),
        ({"name": ok, "memory": "99999999999999999999mb"}, invalid("memory", MEMORY_RULE)),
        ({"name": ok, "memory": 1024}, invalid("memory", MEMORY_RULE)),
        ({"name": ok, "memory": True}, invalid("memory", MEMORY_RULE)),
        # template
        ({"name": ok, "configTemplate": "nope"}, invalid("configTemplate")),
        ({"name": ok, "configTemplate": 3}, invalid("configTemplate")),
        # users
        ({"name": ok, "users": {"username": "a"}}, invalid("users")),
        ({"name": ok, "users": ["app"]}, invalid(("users", "users[0]"))),
        ({"name": ok, "users": [{"username": "app", "password": "short"}]}, invalid("users[0].password")),
        ({"name": ok, "users": [{"username": "app"}]}, invalid("users[0].password")),
        ({"name": ok, "users": [{"password": "long-enough-pw"}]}, invalid("users[0].username")),
        ({"name": ok, "users": [{"username": "default", "password": "long-enough-pw"}]},
         invalid("users[0].username")),
        ({"name": ok, "users": [{"username": "valdock", "password": "long-enough-pw"}]},
         invalid("users[0].username")),
        ({"name": ok, "users": [good_user, {"username": "my user", "password": "long-enough-pw"}]},
         invalid("users[1].username")),
        ({"name": ok, "users": [{"username": "", "password": "long-enough-pw"}]}, invalid("users[0].username")),
        ({"name": ok, "users": [{"username": "u" * 65, "password": "long-enough-pw"}]},
         invalid("users[0].username")),
        ({"name": ok, "users": [good_user, dict(good_user)]},
         invalid("users[1].username", "user 'app' is given twice")),
        ({"name": ok, "users": [{"username": "app", "password": "long-enough\npw"}]},
         invalid("users[0].password")),
        ({"name": ok, "users": [{"username": "app", "password": "x" * 513}]}, invalid("users[0].password")),
        ({"name": ok, "users": [{"username": "app", "password": "long-enough-pw", "role": "admin"}]},
         invalid(("users[0]", "users[0].role"))),
    ]
    wrong = []      # every case is tried; the mismatches are reported together at the end
    for doc, want in cases:
        r = s.request("POST", API, body=doc)
        if r.status != 422:
            wrong.append((doc, r.status, r.body))
            continue
        got = r.json()
        assert isinstance(got.get("message"), str) and got["message"], got
        if isinstance(want["field"], tuple):     # either spelling of the field is right
            if got.get("field") in want["field"]:
                want = dict(want, field=got["field"])
        if "message" not in want:
            got = {k: v for k, v in got.items() if k != "message"}
        if got != want:
            wrong.append((doc, want, r.json()))

    # malformed bodies: 400; wrong or missing content type: 415; empty: 400
    for raw in (b"{", b'{"name": "a",}', b"[1]", b'"x"', b'{"name":"a","name":"b"}', b"\xff\xfe"):
        r = s.request("POST", API, body=raw, headers={"Content-Type": "application/json"})
        assert r.status == 400, (raw, r)
        assert r.json()["code"] == "malformed_json" and r.json()["status"] == "error"
    doc = json.dumps({"name": ok}).encode()
    for ctype in ("text/plain", "application/x-www-form-urlencoded", None):
        hdrs = {"Content-Type": ctype} if ctype else {}
        r = s.request("POST", API, body=doc, headers=hdrs)
        assert r.status == 415, (ctype, r)
        assert r.json()["code"] == "unsupported_media_type"
    r = s.request("POST", API, body=b"", headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.json()["code"] == "empty_body", r
    # a bad id in a path; an id nobody has
    for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/start"), ("POST", "/stop"),
                           ("POST", "/restart"), ("GET", "/stats")):
        r = s.request(method, f"{API}/Bad-Name{suffix}")
        assert r.status == 422 and r.json()["field"] == "id", (method, suffix, r)
        r = s.request(method, f"{API}/{ok}{suffix}")
        assert r.status == 404, (method, suffix, r)
        assert r.json() == {"status": "error", "code": "instance_not_found",
                            "message": f"no instance named '{ok}'"}
    r = s.request("PUT", API, body={"name": ok})
    assert r.status == 405 and set(x.strip() for x in r.header("Allow").split(",")) >= {"GET", "POST"}

    # nothing was created anywhere
    assert env.list() == []
    assert labelled_containers([ok]) == []
    inst = s.data / "instances"
    assert not inst.exists() or list(inst.iterdir()) == [], list(inst.rglob("*"))
    with store(s) as c:
        assert c("SCARD", "instances") == 0
        assert c("KEYS", "instance:*") == [] and c("KEYS", "port:*") == []
        assert c("KEYS", "aclusers:*") == [] and c("KEYS", "lock:*") == []
    # and the valid name is still free
    env.create(ok)
    env.delete(ok)
    env.check()
    assert not wrong, "422 answers that are not right (input, expected, got):\n" + \
        "\n".join(repr(w) for w in wrong)


# --------------------------------------------------------------------------
# 3. names and ports taken, races, a port held on the host (C10)

def test_duplicate_names_parallel_creates_and_taken_ports(env):
    s = env.start()
    a = env.name("a")
    ra = env.create(a).json()
    r = s.request("POST", API, body={"name": a})
    assert r.status == 409, r
    assert r.json() == {"status": "error", "code": "name_taken", "message": f"an instance named '{a}' exists"}
    assert len(labelled_containers([a])) == 1

    # 20 creates of one name at once: exactly one 201, the others 409
    b = env.name("b")
    with ThreadPoolExecutor(20) as ex:
        results = list(ex.map(lambda _: s.request("POST", API, body={"name": b}, timeout=CREATE_TIMEOUT),
                              range(20)))
    statuses = sorted(r.status for r in results)
    assert statuses == [201] + [409] * 19, [(r.status, r.body) for r in results]
    for r in results:
        if r.status == 409:
            # the loser either saw the name reserved or the create still holding it
            assert r.json()["code"] in ("name_taken", "instance_busy"), r
            assert b in r.json()["message"]
    assert len(labelled_containers([b])) == 1
    assert env.status(b) == "running"

    # 8 creates of different names on one port at once: exactly one wins
    port = env.free_port()
    racers = [env.name(f"r{i}") for i in range(8)]
    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(lambda n: s.request("POST", API, body={"name": n, "port": port},
                                                  timeout=CREATE_TIMEOUT), racers))
    won = [n for n, r in zip(racers, results) if r.status == 201]
    assert len(won) == 1, [(r.status, r.body) for r in results]
    for n, r in zip(racers, results):
        if r.status != 201:
            assert r.status == 409 and r.json()["code"] in ("port_taken", "port_in_use"), r
            assert str(port) in r.json()["message"]
            env.assert_nothing_of(n)
    assert [c["Labels"][LABEL] for c in labelled_containers(racers)] == won

    # a port held by another instance: 409 naming the holder
    c = env.name("c")
    r = s.request("POST", API, body={"name": c, "port": ra["port"]})
    assert r.status == 409, r
    assert r.json() == {"status": "error", "code": "port_taken",
                        "message": f"port {ra['port']} is held by instance '{a}'"}
    env.assert_nothing_of(c)

    # C10: a port held on the host by a plain listener, on the publish address
    # and on the wildcard address; the same request twice gets the same answer
    for bind_addr in ("127.0.0.1", "0.0.0.0"):
        hport = env.free_port()
        d = env.name("d" + bind_addr.replace(".", ""))
        with socket.socket() as lsn:
            lsn.bind((bind_addr, hport))
            lsn.listen(5)
            answers = []
            for _ in range(2):
                r = s.request("POST", API, body={"name": d, "port": hport}, timeout=CREATE_TIMEOUT)
                assert r.status == 409, r
                answers.append(r.json())
                env.assert_nothing_of(d)
            assert answers[0] == answers[1]
            assert answers[0]["code"] == "port_in_use"
            assert f"port {hport} " in answers[0]["message"] + " "
        # once the listener is gone the same request succeeds: nothing was left over
        r = env.create(d, port=hport)
        assert r.json()["port"] == hport
        env.delete(d)
        env.assert_nothing_of(d)

    # 6 creates of different names at once, no port given: six distinct ports
    many = [env.name(f"m{i}") for i in range(6)]
    with ThreadPoolExecutor(6) as ex:
        results = list(ex.map(lambda n: s.request("POST", API, body={"name": n, "memory": "16mb"},
                                                  timeout=CREATE_TIMEOUT), many))
    assert [r.status for r in results] == [201] * 6, [(r.status, r.body) for r in results]
    got = [r.json()["port"] for r in results]
    assert len(set(got)) == 6 and all(env.range[0] <= p <= env.range[1] for p in got)
    assert all(pings_noauth(p) for p in got)

    # allocation skips a port held on the host; with none left: 409 no_free_port
    lo = env.free_port()
    assert port_free(lo - 1) and not any(i["port"] == lo - 1 for i in env.list())
    r = s.put_json(SETTINGS, {"port_range_start": lo - 1, "port_range_end": lo})
    assert r.status == 200, r
    e = env.name("e")
    f = env.name("f")
    with socket.socket() as lsn:
        lsn.bind(("127.0.0.1", lo - 1))
        lsn.listen(1)
        assert env.create(e).json()["port"] == lo
        r = s.request("POST", API, body={"name": f}, timeout=CREATE_TIMEOUT)
        assert r.status == 409, r
        assert r.json() == {"status": "error", "code": "no_free_port",
                            "message": f"no free port in {lo - 1}-{lo} on 127.0.0.1"}
        env.assert_nothing_of(f)
    r = s.put_json(SETTINGS, {"port_range_start": env.range[0], "port_range_end": env.range[1]})
    assert r.status == 200, r

    for n in [a, b, e] + won + many:
        env.delete(n)
    env.check()


def pings_noauth(port):
    """True when something on port speaks RESP and refuses the default user."""
    try:
        with Resp(port=port, timeout=2) as c:
            return str(c.call("PING")).startswith("NOAUTH")
    except OSError:
        return False


# --------------------------------------------------------------------------
# 4. neither image available

def test_image_unavailable_leaves_nothing(env):
    s = env.start()
    before = s.get(SETTINGS).json()
    missing1 = f"valdock/nonexistent-{env.tag}:none"
    missing2 = f"valdock/nonexistent-{env.tag}-fallback:none"
    r = s.put_json(SETTINGS, {"instance_image": missing1, "fallback_image": missing2})
    assert r.status == 200, r
    name = env.name("img")
    try:
        r = s.request("POST", API, body={"name": name, "users": [{"username": "app", "password": pw("img")}]},
                      timeout=CREATE_TIMEOUT)
        assert r.status == 503, r
        err = r.json()
        assert err["status"] == "error" and err["code"] == "image_unavailable"
        assert missing1 in err["message"] and missing2 in err["message"]
        env.assert_nothing_of(name)
        with store(s) as c:
            assert c("KEYS", "port:*") == [] and c("SCARD", "instances") == 0
        # a second try answers the same way
        r = s.request("POST", API, body={"name": name}, timeout=CREATE_TIMEOUT)
        assert r.status == 503 and r.json()["code"] == "image_unavailable"
        env.assert_nothing_of(name)
    finally:
        r = s.put_json(SETTINGS, {"instance_image": before["instance_image"],
                                  "fallback_image": before["fallback_image"]})
        assert r.status == 200 and r.json() == before
    env.create(name)
    assert env.view(name)["image"] == LOCAL_IMAGE
    env.delete(name)
    env.check()


def test_server_that_never_answers_is_rolled_back_with_its_log(env):
    """A container that starts but whose server exits at once: the create
    answers with the server's own last log lines and leaves nothing."""
    s = env.start()
    image = f"valdock-test/broken-{env.tag}:x"
    st, base = docker_call("POST", f"/containers/create?name=vdtest-{env.tag}-base",
                           {"Image": LOCAL_IMAGE, "Labels": {"io.valdock.test": env.tag}})
    assert st == 201, base
    try:
        st, out = docker_call("POST", "/commit?" + urllib.parse.urlencode(
            {"container": base["Id"], "repo": image.split(":")[0], "tag": "x"}),
            {"Entrypoint": ["/usr/bin/valkey-server", f"--bogus-directive-{env.tag}", "1"], "Cmd": None,
             "Labels": {"io.valdock.test": env.tag}})
        assert st == 201, out
    finally:
        remove_container(base["Id"])
    try:
        r = s.put_json(SETTINGS, {"instance_image": image})
        assert r.status == 200, r
        name = env.name("broken")
        t0 = time.monotonic()
        r = s.request("POST", API, body={"name": name, "users": [{"username": "app", "password": pw("b")}]},
                      timeout=CREATE_TIMEOUT)
        took = time.monotonic() - t0
        assert r.status == 502, r
        e = r.json()
        assert e["status"] == "error" and e["code"] == "instance_not_ready", e
        assert f"bogus-directive-{env.tag}" in e["message"] and "Bad directive" in e["message"], e
        env.assert_nothing_of(name)
        with store(s) as c:
            assert c("KEYS", "port:*") == [] and c("SCARD", "instances") == 0
    finally:
        s.put_json(SETTINGS, {"instance_image": "valkey/valkey:8.0"})
        docker_call("DELETE", f"/images/{image}?force=1")
    env.check()
    # the server exits within milliseconds; under the restart policy Docker
    # keeps restarting it (State.Running stays true while Restarting), which
    # must not keep the create waiting for its whole readiness timeout (20 s)
    assert took < 10, f"create waited {took:.1f} s for a server that exits at once (crash loop not seen)"


def test_foreign_container_with_the_name_is_left_alone(env):
    """A container named valdock-<name> that Valdock did not make: the create
    answers 409 container_exists, and rolling back must not remove it."""
    s = env.start()
    name = env.name("foreign")
    st, foreign = docker_call("POST", f"/containers/create?name=valdock-{name}",
                              {"Image": LOCAL_IMAGE, "Labels": {"io.valdock.test": env.tag}})
    assert st == 201, foreign
    try:
        r = s.request("POST", API, body={"name": name}, timeout=CREATE_TIMEOUT)
        assert r.status == 409, r
        assert r.json()["code"] == "container_exists" and f"valdock-{name}" in r.json()["message"]
        r2 = s.get(f"{API}/{name}")
        assert r2.status == 404
        assert not env.inst_dir(name).exists()
        still = inspect(foreign["Id"])
        assert still is not None, "rolling back the create removed a container Valdock did not make"
    finally:
        remove_container(foreign["Id"])
    env.create(name)
    env.delete(name)
    env.check()


def test_foreign_container_taking_a_missing_instance_name_is_not_touched(env):
    """After an instance's container was removed outside Valdock, someone else
    runs a container under the same name: start, stop and restart must not
    act on it (nor claim the instance runs), and the instance stays missing."""
    s = env.start()
    name = env.name("taken")
    upw = pw("taken")
    env.create(name, users=[{"username": "app", "password": upw}])
    st, _ = docker_call("DELETE", f"/containers/valdock-{name}?force=1")
    assert st == 204
    env.wait_status(name, "missing")
    st, foreign = docker_call("POST", f"/containers/create?name=valdock-{name}",
                              {"Image": LOCAL_IMAGE, "Cmd": ["--port", "6379", "--save", ""],
                               "Labels": {"io.valdock.test": env.tag}})
    assert st == 201, foreign
    try:
        st, _ = docker_call("POST", f"/containers/{foreign['Id']}/start")
        assert st == 204
        problems = []
        for what in ("stop", "start", "restart"):
            before = inspect(foreign["Id"])
            if not before["State"]["Running"]:     # an earlier operation stopped it: set it going again
                docker_call("POST", f"/containers/{foreign['Id']}/start")
                before = inspect(foreign["Id"])
            r = env.op(name, what)
            j = inspect(foreign["Id"])
            if j is None or not j["State"]["Running"] or j["State"]["StartedAt"] != before["State"]["StartedAt"]:
                problems.append(f"POST /{what} acted on the foreign container: {r.status} {r.body.decode()}")
            elif r.status == 200 and r.json().get("status") != "missing":
                problems.append(f"POST /{what} claims {r.body.decode()} for a missing instance")
            elif r.status not in (200, 409) or (r.status == 409 and r.json()["code"] != "container_exists"):
                problems.append(f"POST /{what}: {r.status} {r.body.decode()}")
            if env.status(name) != "missing":
                problems.append(f"after POST /{what} the instance shows {env.status(name)}")
        assert (inspect(foreign["Id"])["Config"]["Labels"] or {}).get(LABEL) is None
        assert not problems, "\n".join(problems)
    finally:
        remove_container(foreign["Id"])
    r = env.op(name, "start")
    assert r.status == 200 and r.json()["message"] == "container recreated and started", r
    assert pings(env.view(name)["port"], "app", upw)
    env.delete(name)
    env.check()


# --------------------------------------------------------------------------
# 5. stop, start, restart, their no-ops; data survives

def test_lifecycle_stop_start_restart(env):
    s = env.start()
    name = env.name("life")
    upw = pw("life")
    port = env.create(name, users=[{"username": "app", "password": upw}], memory="32mb").json()["port"]
    with client(port, "app", upw) as c:
        assert c("SET", "before-stop", "1") == "OK"
    cid = env.view(name)["container_id"]

    r = env.op(name, "stop")
    assert r.status == 200, r
    assert r.json() == {"id": name, "status": "stopped", "message": "stopped"}
    assert env.status(name) == "stopped"
    assert inspect(cid)["State"]["Running"] is False
    assert not pings(port, "app", upw), "a stopped instance still answers"
    assert env.stats(name) == {"id": name, "status": "stopped"}
    r = env.op(name, "stop")
    assert r.status == 200 and r.json() == {"id": name, "status": "stopped", "message": "already stopped"}, r
    assert env.status(name) == "stopped"

    r = env.op(name, "start")
    assert r.status == 200 and r.json() == {"id": name, "status": "running", "message": "started"}, r
    assert env.status(name) == "running"
    assert inspect(f"valdock-{name}")["Id"] == cid, "start of a stopped container must not recreate it"
    # the view must keep naming the container by its id (checked at the end,
    # so that the rest of the lifecycle is still exercised when it does not)
    ids_seen = [("after start", env.view(name)["container_id"])]
    with client(port, "app", upw) as c:
        assert c("GET", "before-stop") == "1", "data written before a stop is gone"
        assert c("SET", "before-restart", "2") == "OK"
    r = env.op(name, "start")
    assert r.status == 200 and r.json() == {"id": name, "status": "running", "message": "already running"}, r

    # restart: uptime starts again, data stays
    up = wait_for(lambda: (lambda st: st if st["uptime_seconds"] >= 2 else None)(env.stats(name)), 10,
                  "uptime of 2 s")["uptime_seconds"]
    started = env.view(name)["started_at"]
    docker_started = inspect(cid)["State"]["StartedAt"]
    r = env.op(name, "restart")
    assert r.status == 200 and r.json() == {"id": name, "status": "running", "message": "restarted"}, r
    assert env.status(name) == "running"
    st = env.stats(name)
    assert st["status"] == "running" and st["uptime_seconds"] < up
    assert env.view(name)["started_at"] > started
    assert inspect(cid)["State"]["StartedAt"] != docker_started
    ids_seen.append(("after restart", env.view(name)["container_id"]))
    with client(port, "app", upw) as c:
        assert c("GET", "before-stop") == "1" and c("GET", "before-restart") == "2"
    # restart of a stopped instance starts it
    assert env.op(name, "stop").status == 200
    r = env.op(name, "restart")
    assert r.status == 200 and r.json()["status"] == "running", r
    assert pings(port, "app", upw)
    # the housekeeper agrees a few seconds later (no event flips it)
    time.sleep(1)
    assert env.status(name) == "running"
    ids_seen.append(("after restart of a stopped instance", env.view(name)["container_id"]))
    env.delete(name)
    env.assert_nothing_of(name)
    env.check()
    wrong = [(when, got) for when, got in ids_seen if got != cid]
    assert not wrong, f"GET /instances/{name} container_id should stay {cid}, was: {wrong}"


# --------------------------------------------------------------------------
# 6. changes made behind Valdock's back

def test_outside_changes_seen_and_start_recreates(env):
    s = env.start()
    name = env.name("out")
    upw = pw("out")
    port = env.create(name, users=[{"username": "app", "password": upw}]).json()["port"]
    ctr = inspect(f"valdock-{name}")
    cid = ctr["Id"]

    # the server process dies (not through Docker): the restart policy brings it back
    os.kill(ctr["State"]["Pid"], signal.SIGKILL)
    wait_for(lambda: (lambda j: j["State"]["Running"] and j["State"]["Pid"] != ctr["State"]["Pid"])(inspect(cid)),
             20, "docker to restart the killed server")
    env.wait_status(name, "running")
    wait_for(lambda: pings(port, "app", upw), 10, "the restarted server to answer")

    with client(port, "app", upw) as c:
        assert c("SET", "survivor", "yes") == "OK"
    # docker stop outside Valdock
    st, _ = docker_call("POST", f"/containers/{cid}/stop?t=10")
    assert st == 204
    t0 = time.monotonic()
    env.wait_status(name, "stopped", timeout=8)
    seen_after = time.monotonic() - t0
    assert seen_after < 8
    # docker rm -f outside Valdock
    st, _ = docker_call("DELETE", f"/containers/{cid}?force=1")
    assert st == 204
    env.wait_status(name, "missing", timeout=8)
    v = env.view(name)
    assert v["last_error"] == "container removed outside Valdock"
    st = env.stats(name)
    assert st == {"id": name, "status": "missing"}
    r = env.op(name, "stop")
    assert r.status == 200 and r.json()["status"] == "missing", r
    # the housekeeper does not undo it by itself
    time.sleep(1)
    assert env.status(name) == "missing"

    # start recreates the container from the stored spec
    r = env.op(name, "start")
    assert r.status == 200, r
    assert r.json() == {"id": name, "status": "running", "message": "container recreated and started"}
    v = env.view(name)
    assert v["status"] == "running" and v["last_error"] is None
    new = inspect(f"valdock-{name}")
    assert new["Id"] != cid and v["container_id"] == new["Id"]
    assert new["Config"]["Labels"][LABEL] == name
    assert new["HostConfig"]["Memory"] == 256 * MB
    with client(port, "app", upw) as c:
        assert c("GET", "survivor") == "yes", "data of the removed container was lost"
    assert valkey_cli(port, "PING").startswith("NOAUTH")
    env.delete(name)
    env.assert_nothing_of(name)
    env.check()


# --------------------------------------------------------------------------
# 7. delete, with and without keep_data

def test_delete_removes_everything_and_port_is_reusable(env):
    s = env.start()
    name = env.name("del")
    upw = pw("del")
    port = env.create(name, users=[{"username": "app", "password": upw}]).json()["port"]
    with client(port, "app", upw) as c:
        c("SET", "k", "v")
        c("SAVE")
    assert (env.inst_dir(name) / "data" / "dump.rdb").exists()
    r = s.request("DELETE", f"{API}/{name}?keep_data=maybe")
    assert r.status == 422, r
    assert r.json() == invalid("keep_data", "keep_data must be true or false")
    assert env.status(name) == "running"

    env.delete(name)
    env.assert_nothing_of(name)
    assert not pings(port, "app", upw)
    r = s.request("DELETE", f"{API}/{name}")
    assert r.status == 404 and r.json()["code"] == "instance_not_found"
    # the port is free again, for an instance of another name
    other = env.name("reuse")
    assert env.create(other, port=port).json()["port"] == port
    # explicit keep_data=false is a full delete too
    r = s.request("DELETE", f"{API}/{other}?keep_data=false")
    assert r.status == 200 and r.json()["data_kept"] is False
    env.assert_nothing_of(other)
    # an instance whose container was removed outside Valdock deletes cleanly
    gone = env.name("gone")
    env.create(gone)
    st, _ = docker_call("DELETE", f"/containers/valdock-{gone}?force=1")
    assert st == 204
    env.wait_status(gone, "missing")
    env.delete(gone)
    env.assert_nothing_of(gone)
    env.check()


def test_delete_keep_data_then_recreate_reuses_it(env):
    s = env.start()
    name = env.name("keep")
    upw = pw("keep")
    port = env.create(name, users=[{"username": "app", "password": upw}]).json()["port"]
    with client(port, "app", upw) as c:
        assert c("SET", "saved", "1") == "OK"
        assert c("SAVE") == "OK"
        assert c("SET", "acknowledged", "2") == "OK"     # written, acknowledged, not yet saved
    env.delete(name, keep_data=True)
    d = env.inst_dir(name)
    assert (d / "data").is_dir() and not (d / "conf").exists()
    assert sorted(p.name for p in d.iterdir()) == ["data"]
    assert labelled_containers([name]) == []
    r = s.get(f"{API}/{name}")
    assert r.status == 404
    env.check()

    r = env.create(name, users=[{"username": "app2", "password": upw}])
    port = r.json()["port"]
    with client(port, "app2", upw) as c:
        assert c("GET", "saved") == "1", "the kept data directory was not reused"
        # keep_data must keep what the server had acknowledged, not just its
        # last snapshot: the container has to shut down cleanly (and save)
        # before it is removed
        assert c("GET", "acknowledged") == "2", \
            "DELETE ?keep_data=true lost an acknowledged write (container killed without a save)"
    env.delete(name)
    env.assert_nothing_of(name)
    env.check()


# --------------------------------------------------------------------------
# 8. Docker unreachable

def test_docker_unreachable_reads_answer_writes_refused(env):
    a = env.start("real")
    name = env.name("dk")
    upw = pw("dk")
    port = env.create(name, users=[{"username": "app", "password": upw}]).json()["port"]
    with client(port, "app", upw) as c:
        c("SET", "k", "v")
    cid = env.view(name)["container_id"]
    before = store_snapshot(a, env.used)
    assert a.stop() == 0
    assert inspect(cid)["State"]["Running"], "stopping valdock must not stop the instances"

    b = env.start("nodocker", set_range=False, data_dir=a.data, expect_health=(503,),
                  env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    h = b.get("/api/v1/system/health").json()
    assert h["checks"]["store"] == "ok" and "docker" in h["checks"]["docker"]

    def unknown():
        lst = env.list()
        return lst if [i["status"] for i in lst] == ["unknown"] else None
    lst = wait_for(unknown, 20, "status unknown once the housekeeper finds Docker down", interval=0.2)
    assert lst[0]["id"] == name and lst[0]["last_known_status"] == "running"
    assert lst[0]["port"] == port and lst[0]["container_id"] == cid
    assert env.view(name)["status"] == "unknown"
    assert env.stats(name) == {"id": name, "status": "unknown"}
    snap = store_snapshot(b, env.used)
    assert {k: ({f: x for f, x in v.items() if f != "state_at"} if isinstance(v, dict) else v)
            for k, v in snap.items()} == \
           {k: ({f: x for f, x in v.items() if f != "state_at"} if isinstance(v, dict) else v)
            for k, v in before.items()}

    def refused(r):
        assert r.status == 503, r
        e = r.json()
        assert e["status"] == "error" and e["code"] == "docker_unavailable", e
        assert "docker" in e["message"].lower()

    new = env.name("dknew")
    refused(b.request("POST", API, body={"name": new, "users": [{"username": "app", "password": upw}]},
                      timeout=CREATE_TIMEOUT))
    for what in ("start", "stop", "restart"):
        refused(env.op(name, what))
    refused(b.request("DELETE", f"{API}/{name}"))
    refused(b.request("DELETE", f"{API}/{name}?keep_data=true"))
    assert store_snapshot(b, env.used) == snap, "a refused write changed the store"
    assert not env.inst_dir(new, b).exists()
    assert (env.inst_dir(name, b) / "conf" / "users.acl").exists()
    assert [i["status"] for i in env.list()] == ["unknown"]
    assert inspect(cid)["State"]["Running"]
    assert b.stop() == 0

    # back on the real engine: true again
    c2 = env.start("real-again", set_range=False, data_dir=a.data)
    env.wait_status(name, "running", timeout=15)
    v = env.view(name)
    assert v["container_id"] == cid and v["port"] == port and "last_known_status" not in v
    with client(port, "app", upw) as c:
        assert c("GET", "k") == "v"
    assert env.op(name, "stop").json()["status"] == "stopped"
    assert env.op(name, "start").json()["status"] == "running"
    env.delete(name)
    env.assert_nothing_of(name)
    env.assert_nothing_of(new)
    env.check(c2)


# --------------------------------------------------------------------------
# 9. restart of the whole stack

def test_whole_stack_restart_keeps_instances(env):
    a = env.start("first")
    names = [env.name("s1"), env.name("s2")]
    pws = {n: pw(n) for n in names}
    ports, cids, started = {}, {}, {}
    for n in names:
        ports[n] = env.create(n, users=[{"username": "app", "password": pws[n]}], memory="32mb").json()["port"]
        with client(ports[n], "app", pws[n]) as c:
            c("SET", "who", n)
        j = inspect(f"valdock-{n}")
        cids[n], started[n] = j["Id"], j["State"]["StartedAt"]
    views = {n: env.view(n) for n in names}
    assert a.stop() == 0

    b = env.start("second", set_range=False, data_dir=a.data)
    lst = {i["id"]: i for i in env.list()}
    assert set(lst) == set(names)
    for n in names:
        assert lst[n] == views[n], "an instance changed across a restart of valdock"
        assert lst[n]["status"] == "running" and lst[n]["container_id"] == cids[n]
        j = inspect(cids[n])
        assert j["State"]["Running"] and j["State"]["StartedAt"] == started[n], "container was restarted"
        assert inspect(f"valdock-{n}")["Id"] == cids[n], "container was recreated"
        with client(ports[n], "app", pws[n]) as c:
            assert c("GET", "who") == n
        assert env.stats(n)["status"] == "running"
    # still running after the housekeeper has reconciled
    time.sleep(6)
    assert all(i["status"] == "running" for i in env.list())
    # and a fresh create does not take their ports
    third = env.name("s3")
    assert env.create(third).json()["port"] not in ports.values()

    # what happens while valdock is down is seen when it is back
    assert b.stop() == 0
    st, _ = docker_call("POST", f"/containers/{cids[names[1]]}/stop?t=10")
    assert st == 204
    st, _ = docker_call("DELETE", f"/containers/valdock-{third}?force=1")
    assert st == 204
    c3 = env.start("third", set_range=False, data_dir=a.data)
    env.wait_status(names[1], "stopped", timeout=12)
    env.wait_status(third, "missing", timeout=12)
    assert env.status(names[0]) == "running"
    assert env.op(names[1], "start").json()["status"] == "running"
    assert env.op(third, "start").json()["message"] == "container recreated and started"
    for n in names + [third]:
        assert pings_noauth(env.view(n)["port"])
        env.delete(n)
    env.check(c3)


def test_idle_instance_record_is_not_rewritten_every_tick(env):
    """The housekeeper reconciles every tick; when nothing changed it must not
    write: each write is an fsync'd AOF append (appendfsync always), and
    state_at should say since when the state holds, not when it was last looked at."""
    s = env.start()
    name = env.name("idle")
    env.create(name, memory="16mb")
    time.sleep(1)

    def record():
        with store(s) as c:
            h = c("HGETALL", f"instance:{name}")
        return dict(zip(h[0::2], h[1::2]))
    before = record()
    assert before["state"] == "running"
    time.sleep(11)       # two housekeeper ticks (5 s each)
    after = record()
    assert env.status(name) == "running"
    env.delete(name)
    env.check()
    assert after == before, (f"the record of an idle instance was rewritten: state_at "
                             f"{before.get('state_at')} -> {after.get('state_at')}")


# --------------------------------------------------------------------------
# 10. secrets

def test_secrets_never_leak(env):
    s = env.start()
    name = env.name("sec")
    p1, p2 = pw("first") + "#1 $x", pw("second") + "'\"q"
    body = {"name": name, "users": [{"username": "alice", "password": p1},
                                    {"username": "bob", "password": p2}]}
    r = env.create(name, users=body["users"])
    port = r.json()["port"]
    # refused requests that carry the passwords: the answers must not echo them
    s.request("POST", API, body=body)                                          # name taken
    s.request("POST", API, body={"name": env.name("sec2"), "users": [body["users"][0], body["users"][0]]})
    s.request("POST", API, body={"name": env.name("sec3"), "users": body["users"], "pw": p1})
    s.request("POST", API, body={"name": env.name("sec4"),
                                 "users": [{"username": "carol", "password": p1, "extra": p2}]})
    s.request("POST", API, body={"name": env.name("sec5"), "users": [{"username": "bad name", "password": p1}]})
    s.request("POST", API, body={"name": env.name("sec6"), "users": [{"username": "dave", "password": p1 + "\x01"}]})
    s.request("POST", API, body=('{"name":"x","users":[{"username":"a","password":"%s"' % p1),
              headers={"Content-Type": "application/json"})
    for path in (API, f"{API}/{name}", f"{API}/{name}/stats"):
        assert s.get(path).status == 200
    for what in ("stop", "start", "restart"):
        assert env.op(name, what).status == 200
    assert pings(port, "alice", p1) and pings(port, "bob", p2)

    # files: only hashes, default off
    conf = env.inst_dir(name) / "conf"
    acl = (conf / "users.acl").read_text()
    lines = acl.splitlines()
    h1, h2 = hashlib.sha256(p1.encode()).hexdigest(), hashlib.sha256(p2.encode()).hexdigest()
    assert lines[0].startswith("user default off ")
    assert " nopass" not in lines[0] and "#" not in lines[0] and ">" not in lines[0]
    assert re.fullmatch(r"user valdock on #[0-9a-f]{64} ~\* &\* \+@all", lines[1]), lines[1]
    assert lines[2:] == [f"user alice on #{h1} ~* &* +@all", f"user bob on #{h2} ~* &* +@all"]
    for line in lines:
        for tok in line.split():
            assert not tok.startswith(">"), line
            if tok.startswith("#"):
                assert re.fullmatch(r"#[0-9a-f]{64}", tok), tok
    for f in conf.iterdir():
        text = f.read_text()
        assert p1 not in text and p2 not in text

    # the admin password: only sealed in the store; it opens with the master key
    with store(s) as c:
        sealed = c("HGET", f"instance:{name}", "admin_secret")
        for v in c("HVALS", f"aclusers:{name}"):
            assert p1 not in v and p2 not in v
        assert all(p1 not in x and p2 not in x for x in c("HVALS", f"instance:{name}"))
    assert re.fullmatch(r"[0-9a-f]+", sealed)
    admin_pw = open_admin_secret(s, sealed)
    admin_hash = hashlib.sha256(admin_pw.encode()).hexdigest()
    assert lines[1] == f"user valdock on #{admin_hash} ~* &* +@all"
    assert pings(port, "valdock", admin_pw)
    ctr = inspect(f"valdock-{name}")
    ctr_text = json.dumps(ctr)
    for secret in (p1, p2, admin_pw, h1, h2, admin_hash):
        assert json.dumps(secret)[1:-1] not in ctr_text, "a secret is in the container's spec"

    env.delete(name)
    assert s.stop() == 0
    assert len(s.bodies) > 15
    for b in s.bodies:
        assert b"admin_secret" not in b
        for secret in (p1, p2, admin_pw, sealed, admin_hash, h1, h2):
            assert secret.encode() not in b and json.dumps(secret)[1:-1].encode() not in b, \
                f"a secret is in a response: {b[:200]!r}"
    log = s.log_text()
    for secret in (p1, p2, admin_pw, sealed, admin_hash, h1, h2):
        assert secret not in log and json.dumps(secret)[1:-1] not in log, "a secret is in the log"
    t = env.start("after", set_range=False, data_dir=s.data)
    env.check(t)


# --------------------------------------------------------------------------
# 11. the files and mounts of an instance (C09)

def test_files_owned_and_mounted_as_directories(env):
    s = env.start()
    name = env.name("c09")
    upw = pw("c09")
    env.create(name, users=[{"username": "app", "password": upw}])
    d = env.inst_dir(name)
    conf, data = d / "conf", d / "data"
    for p, mode in ((conf, 0o700), (data, 0o700), (conf / "valkey.conf", 0o600), (conf / "users.acl", 0o600)):
        st = os.lstat(p)
        assert (st.st_uid, st.st_gid) == (999, 999), (p, st.st_uid, st.st_gid)
        assert stat.S_IMODE(st.st_mode) == mode, (p, oct(st.st_mode))
    assert stat.S_ISDIR(os.lstat(conf).st_mode) and stat.S_ISDIR(os.lstat(data).st_mode)
    assert stat.S_ISREG(os.lstat(conf / "valkey.conf").st_mode)
    assert stat.S_ISREG(os.lstat(conf / "users.acl").st_mode)
    assert sorted(p.name for p in conf.iterdir()) == ["users.acl", "valkey.conf"], "no temp files left"
    cf = (conf / "valkey.conf").read_text()
    assert re.search(r"^aclfile /etc/valkey/users\.acl$", cf, re.M)
    assert re.search(r"^dir /data$", cf, re.M)
    assert not re.search(r"^(requirepass|user) ", cf, re.M)

    j = inspect(f"valdock-{name}")
    mounts = sorted(j["Mounts"], key=lambda m: m["Destination"])
    assert [(m["Type"], m["Source"], m["Destination"], m["RW"]) for m in mounts] == [
        ("bind", str(data), "/data", True), ("bind", str(conf), "/etc/valkey", True)]
    for m in mounts:
        assert os.path.isdir(m["Source"]), m
    hc = j["HostConfig"]
    assert not hc.get("Binds"), "Binds (which create a missing source) instead of Mounts"
    assert sorted((m["Type"], m["Target"]) for m in hc["Mounts"]) == [("bind", "/data"), ("bind", "/etc/valkey")]
    assert j["Config"]["User"] == "999:999"
    # the server itself reads its files from the mounts and can rewrite its config
    with client(int(j["HostConfig"]["PortBindings"]["6379/tcp"][0]["HostPort"]), "app", upw) as c:
        assert c("CONFIG", "GET", "dir") == ["dir", "/data"]
        assert c("SAVE") == "OK"
    assert (data / "dump.rdb").exists() and os.lstat(data / "dump.rdb").st_uid == 999
    env.delete(name)
    env.assert_nothing_of(name)
    env.check()

