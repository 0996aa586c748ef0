"""Instance configuration and templates on real Valkey servers in Docker
(issue 5): live and restart-only changes checked with CONFIG GET on the
server (as the user created with the instance, which has +@all), the
rendered valkey.conf, restarts, rollback of a CONFIG SET that fails half
way, stopped instances, templates (CRUD, built-ins, in use), instances
created from templates, and the field cases C05-C08.

Reuses test_instances.py's helpers: unique instance names (t<6 hex><suffix>),
a port range of its own for the stack, a RESP client, container cleanup.
One stack serves the whole module; every test makes its own instances and
templates, removed at the test's teardown even when it fails (containers by
label), and at the module's end every container labelled with a name the
module used is removed.

    /usr/bin/python3 -m pytest -q tests/api/test_config.py
"""

import json
import re
import secrets
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import wait_for
from test_instances import API, Env, Resp, inspect, labelled_containers, remove_container

TEMPLATES = "/api/v1/config/templates"
MB = 1024 * 1024
MEMORY = 64 * MB                      # every instance here: 64mb, so Valdock's maxmemory is 48mb
DERIVED_MAXMEMORY = MEMORY // 4 * 3
STORED_MSG = "Config stored; it takes effect when the instance starts."
RELOADED_MSG = "Config updated and instance reloaded."
RESTARTED_MSG = "Config updated and instance restarted."
BUILTINS = {
    "default": {},
    "cache": {"save": "", "appendonly": "no", "maxmemory-policy": "allkeys-lru"},
    "persistent": {"appendonly": "yes", "appendfsync": "everysec", "save": "3600 1 300 100 60 10000"},
}
PARAM_KEYS = {"name", "value", "running_value", "live", "restart_required", "sensitive", "source", "drift",
              "help"}


# --------------------------------------------------------------------------
# valkey.conf as the server reads it (quoted arguments, \" \\ \xHH escapes)

def split_args(line):
    out, i, n = [], 0, len(line)
    while True:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            return out
        cur = ""
        if line[i] == '"':
            i += 1
            while True:
                assert i < n, f"unterminated quotes in {line!r}"
                ch = line[i]
                if ch == "\\" and i + 3 < n and line[i + 1] == "x" and \
                        re.fullmatch(r"[0-9a-fA-F]{2}", line[i + 2:i + 4]):
                    cur += chr(int(line[i + 2:i + 4], 16))
                    i += 4
                elif ch == "\\" and i + 1 < n:
                    cur += {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "a": "\a"}.get(line[i + 1], line[i + 1])
                    i += 2
                elif ch == '"':
                    i += 1
                    assert i >= n or line[i] in " \t", f"closing quote must be followed by a space: {line!r}"
                    break
                else:
                    cur += ch
                    i += 1
        elif line[i] == "'":
            i += 1
            while True:
                assert i < n, f"unterminated quotes in {line!r}"
                if line[i] == "\\" and i + 1 < n and line[i + 1] == "'":
                    cur += "'"
                    i += 2
                elif line[i] == "'":
                    i += 1
                    break
                else:
                    cur += line[i]
                    i += 1
        else:
            while i < n and line[i] not in " \t":
                cur += line[i]
                i += 1
        out.append(cur)


def conf_entries(text):
    """[(directive, [arguments])] of a config file, comments and blanks skipped."""
    out = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        args = split_args(s)
        out.append((args[0].lower(), args[1:]))
    return out


def conf_values(text, key):
    """Every value the file gives key (a list: a directive given twice is a bug)."""
    return [" ".join(a) for k, a in conf_entries(text) if k == key]


# --------------------------------------------------------------------------
# errors

def error(r, status, code, field=None):
    assert r.status == status, r
    j = r.json()
    assert j["status"] == "error" and j["code"] == code, j
    assert isinstance(j.get("message"), str) and j["message"], j
    if field is not None:
        assert j.get("field") == field, j
    return j


# --------------------------------------------------------------------------
# fixtures: one stack, instances and templates per test

@pytest.fixture(scope="module")
def cenv(module_stacks):
    e = Env(module_stacks)
    e.start("config")
    yield e
    e.cleanup()


class Inst:
    """One managed instance, a user `app` with +@all, and its config API."""

    def __init__(self, env, name, port, password):
        self.env = env
        self.s = env.stack
        self.name = name
        self.port = port
        self.password = password
        self.path = f"{API}/{name}/config"
        self.conf_dir = env.inst_dir(name) / "conf"
        self.conf_path = self.conf_dir / "valkey.conf"

    # -- API
    def get(self):
        r = self.s.get(self.path)
        assert r.status == 200, r
        doc = r.json()
        assert set(doc) >= {"id", "template", "parameters", "running_values_known"}, doc
        assert doc["id"] == self.name
        return doc

    def params(self):
        doc = self.get()
        out = {}
        for p in doc["parameters"]:
            assert set(p) == PARAM_KEYS, p
            assert p["name"] not in out, f"{p['name']} listed twice"
            out[p["name"]] = p
        return out

    def put(self, doc, timeout=120):
        return self.s.request("PUT", self.path, body=doc, timeout=timeout)

    def put_ok(self, doc, live=(), restart=(), restarted=False, message=RELOADED_MSG):
        r = self.put(doc)
        assert r.status == 200, r
        j = r.json()
        assert j == {"status": "ok", "message": message, "applied_live": j["applied_live"],
                     "restart_required": j["restart_required"], "restarted": restarted, "persisted": True}, j
        assert sorted(j["applied_live"]) == sorted(live), j
        assert sorted(j["restart_required"]) == sorted(restart), j
        return j

    def op(self, what):
        r = self.s.request("POST", f"{API}/{self.name}/{what}", timeout=120)
        assert r.status == 200, r
        return r.json()

    def status(self):
        r = self.s.get(f"{API}/{self.name}")
        assert r.status == 200, r
        return r.json()["status"]

    # -- the server, as the app user
    def client(self):
        c = Resp(port=self.port, timeout=10)
        r = c.call("AUTH", "app", self.password)
        assert r == "OK", f"AUTH app on {self.port}: {r!r}"
        return c

    def cget(self, *keys):
        """{key: value} from CONFIG GET on the server."""
        with self.client() as c:
            out = {}
            for k in keys:
                r = c("CONFIG", "GET", k)
                assert len(r) == 2 and r[0] == k, r
                out[k] = r[1]
            return out

    def cli(self, *args):
        """valkey-cli as the app user (a real client), stdout lines."""
        r = subprocess.run(["valkey-cli", "-h", "127.0.0.1", "-p", str(self.port), "--user", "app", "--pass",
                            self.password, "--no-auth-warning", *[str(a) for a in args]],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r
        return r.stdout.splitlines()

    # -- the file
    def conf(self):
        return self.conf_path.read_text()

    def conf_value(self, key):
        vals = conf_values(self.conf(), key)
        assert len(vals) <= 1, f"{key} is in valkey.conf {len(vals)} times: {vals}"
        return vals[0] if vals else None

    def started_at(self):
        return inspect(f"valdock-{self.name}")["State"]["StartedAt"]


def password(tag):
    return f"pw-{tag}-{secrets.token_hex(8)}"


@pytest.fixture
def make_inst(cenv):
    made = []

    def make(suffix="i", expect=201, **fields):
        name = cenv.name(suffix)
        made.append(name)
        pw = password(suffix)
        r = cenv.create(name, expect=expect, users=[{"username": "app", "password": pw}], memory="64mb", **fields)
        if expect != 201:
            return r
        return Inst(cenv, name, r.json()["port"], pw)
    yield make
    for n in made:
        try:
            cenv.stack.request("DELETE", f"{API}/{n}", timeout=60)
        except OSError:
            pass
        for c in labelled_containers([n]):
            remove_container(c["Id"])


@pytest.fixture
def make_template(cenv):
    """Unique template names; every one is deleted at teardown."""
    made = []

    def name(suffix="t"):
        n = cenv.tag + "tpl" + suffix + secrets.token_hex(2)
        made.append(n)
        return n
    yield name
    for n in made:
        try:
            cenv.stack.request("DELETE", f"{TEMPLATES}/{n}")
        except OSError:
            pass


# --------------------------------------------------------------------------
# 1. a live key: CONFIG SET at once, in the file, kept by a restart, no drift

def test_live_keys_apply_at_once_persist_and_survive_restart(make_inst):
    i = make_inst("live")
    before = i.cget("maxmemory", "maxmemory-policy", "notify-keyspace-events")
    assert before == {"maxmemory": str(DERIVED_MAXMEMORY), "maxmemory-policy": "noeviction",
                      "notify-keyspace-events": ""}
    started = i.started_at()

    i.put_ok({"maxmemory": "40mb", "maxmemory-policy": "allkeys-lfu", "notify-keyspace-events": "Ex"},
             live=("maxmemory", "maxmemory-policy", "notify-keyspace-events"))
    # the server has them at once: valkey-cli as the app user
    assert i.cli("CONFIG", "GET", "maxmemory") == ["maxmemory", str(40 * MB)]
    assert i.cli("CONFIG", "GET", "maxmemory-policy") == ["maxmemory-policy", "allkeys-lfu"]
    assert set(i.cget("notify-keyspace-events")["notify-keyspace-events"]) == set("Ex")
    assert i.started_at() == started, "a live change restarted the container"
    # and the file, once each (no derived maxmemory line next to the configured one)
    assert i.conf_value("maxmemory") == "40mb"
    assert i.conf_value("maxmemory-policy") == "allkeys-lfu"
    assert i.conf_value("notify-keyspace-events") == "Ex"
    assert i.status() == "running"

    def no_drift():
        p = i.params()
        assert i.get()["running_values_known"] is True
        assert p["maxmemory"]["source"] == "configured" and p["maxmemory"]["drift"] is False
        assert p["maxmemory"]["value"] == "40mb" and p["maxmemory"]["running_value"] == str(40 * MB)
        assert p["maxmemory-policy"] == dict(p["maxmemory-policy"], value="allkeys-lfu",
                                             running_value="allkeys-lfu", source="configured", drift=False,
                                             live=True, restart_required=False, sensitive=False)
        nke = p["notify-keyspace-events"]
        assert nke["value"] == "Ex" and set(nke["running_value"]) == set("Ex") and nke["drift"] is False
        return p
    p = no_drift()
    # parameters not configured are Valkey's defaults, not drift
    assert p["hz"]["source"] == "default" and p["hz"]["value"] is None and p["hz"]["running_value"] == "10"
    assert p["hz"]["drift"] is False

    # the restart keeps them
    i.op("restart")
    assert i.started_at() != started
    assert i.cli("CONFIG", "GET", "maxmemory") == ["maxmemory", str(40 * MB)]
    assert i.cli("CONFIG", "GET", "maxmemory-policy") == ["maxmemory-policy", "allkeys-lfu"]
    assert set(i.cget("notify-keyspace-events")["notify-keyspace-events"]) == set("Ex")
    no_drift()

    # a change made on the server behind Valdock's back is drift
    with i.client() as c:
        assert c("CONFIG", "SET", "maxmemory-policy", "allkeys-random") == "OK"
    p = i.params()
    assert p["maxmemory-policy"]["running_value"] == "allkeys-random" and p["maxmemory-policy"]["drift"] is True
    assert p["maxmemory-policy"]["value"] == "allkeys-lfu"
    # and a PUT puts it right
    i.put_ok({"maxmemory-policy": "ALLKEYS-LFU"}, live=("maxmemory-policy",))
    assert i.cget("maxmemory-policy") == {"maxmemory-policy": "allkeys-lfu"}
    assert i.params()["maxmemory-policy"]["drift"] is False
    assert i.conf_value("maxmemory-policy") == "allkeys-lfu"


# --------------------------------------------------------------------------
# 2. a restart-only key: the instance restarts and comes back with it

def test_restart_only_key_restarts_the_instance(make_inst):
    i = make_inst("rst")
    with i.client() as c:
        assert c("CONFIG", "GET", "databases") == ["databases", "16"]
        assert c("SET", "kept", "1") == "OK"
        assert c("SAVE") == "OK"
    started = i.started_at()
    p = i.params()["databases"]
    assert p["live"] is False and p["restart_required"] is True

    i.put_ok({"databases": 32}, restart=("databases",), restarted=True, message=RESTARTED_MSG)
    assert i.started_at() != started, "the container was not restarted"
    assert i.status() == "running"
    assert i.cli("CONFIG", "GET", "databases") == ["databases", "32"]
    with i.client() as c:
        assert c("SELECT", "31") == "OK"
        assert c("SELECT", "0") == "OK" and c("GET", "kept") == "1"
    assert i.conf_value("databases") == "32"
    p = i.params()["databases"]
    assert (p["value"], p["running_value"], p["source"], p["drift"]) == ("32", "32", "configured", False)

    # live and restart-only keys together: both applied, one restart
    started = i.started_at()
    i.put_ok({"maxmemory-policy": "volatile-ttl", "databases": "20"}, live=("maxmemory-policy",),
             restart=("databases",), restarted=True, message=RESTARTED_MSG)
    assert i.started_at() != started
    assert i.cget("databases", "maxmemory-policy") == {"databases": "20", "maxmemory-policy": "volatile-ttl"}
    assert i.status() == "running"


# --------------------------------------------------------------------------
# 3. C05: a template with requirepass or user lines is refused, nothing stored

def test_c05_template_with_requirepass_or_user_is_refused(cenv, make_template, make_inst):
    s = cenv.stack
    n = make_template("c05")
    cases = [
        ({"requirepass": "x"}, "config.requirepass"),
        ({"user": "alice on >secretpw ~* +@all"}, "config.user"),
        ({"maxmemory": "100mb", "requirepass": "x"}, "config.requirepass"),
        ({"aclfile": "/tmp/users.acl"}, "config.aclfile"),
        ({"REQUIREPASS": "x"}, "config.REQUIREPASS"),
    ]
    for config, field in cases:
        r = s.request("POST", TEMPLATES, body={"name": n, "description": "c05", "config": config})
        error(r, 403, "refused_key", field)
        assert s.get(f"{TEMPLATES}/{n}").status == 404, "a refused template was stored"
    assert n not in [t["name"] for t in s.get(TEMPLATES).json()["templates"]]

    # an existing template cannot be changed into one either
    assert s.request("POST", TEMPLATES, body={"name": n, "config": {"hz": 20}}).status == 201
    for config, field in cases:
        error(s.put_json(f"{TEMPLATES}/{n}", {"config": config}), 403, "refused_key", field)
    assert s.get(f"{TEMPLATES}/{n}").json()["config"] == {"hz": "20"}

    # nor an instance's config
    i = make_inst("c05")
    before = i.conf()
    error(i.put({"requirepass": "x"}), 403, "refused_key", "requirepass")
    error(i.put({"user": "alice on nopass ~* +@all"}), 403, "refused_key", "user")
    assert i.conf() == before
    assert not re.search(r"^(requirepass|user) ", i.conf(), re.M | re.I)
    with i.client() as c:
        assert c("CONFIG", "GET", "requirepass") == ["requirepass", ""]
        assert sorted(u.split()[1] for u in c("ACL", "LIST")) == ["app", "default", "valdock"]


# --------------------------------------------------------------------------
# 4. C06: the conf directory is mounted; a change is persisted or answered as an error

def test_c06_conf_dir_mounted_and_never_a_silent_unpersisted_success(make_inst):
    i = make_inst("c06")
    j = inspect(f"valdock-{i.name}")
    mounts = {m["Destination"]: m for m in j["Mounts"]}
    assert mounts["/etc/valkey"]["Type"] == "bind" and mounts["/etc/valkey"]["Source"] == str(i.conf_dir)
    assert i.conf_dir.is_dir()
    assert not any(m["Destination"].startswith("/etc/valkey/") for m in j["Mounts"]), \
        "a single file is bind-mounted"
    assert not any(m["Source"].endswith("valkey.conf") for m in j["Mounts"])

    j = i.put_ok({"maxmemory-policy": "allkeys-lru"}, live=("maxmemory-policy",))
    assert j["persisted"] is True and i.conf_value("maxmemory-policy") == "allkeys-lru"
    # the server itself can rewrite its config in the mounted directory
    with i.client() as c:
        assert c("CONFIG", "REWRITE") == "OK"
    assert i.conf_value("maxmemory-policy") == "allkeys-lru"

    # persisting fails (the conf directory made immutable): either "not
    # persisted" or an error, and then the running server as before
    before_file = i.conf()
    before_server = i.cget("maxmemory-policy", "maxmemory-samples", "hz")
    assert before_server == {"maxmemory-policy": "allkeys-lru", "maxmemory-samples": "5", "hz": "10"}
    subprocess.run(["chattr", "+i", str(i.conf_dir)], check=True)
    try:
        r = i.put({"maxmemory-policy": "allkeys-lfu", "maxmemory-samples": 7, "hz": 20})
        after_server = i.cget("maxmemory-policy", "maxmemory-samples", "hz")
        after_file = i.conf()
    finally:
        subprocess.run(["chattr", "-i", str(i.conf_dir)], check=True)
    assert after_file == before_file
    if r.status == 200:
        assert r.json().get("persisted") is False, f"a plain success although the file did not change: {r.json()}"
    else:
        assert r.status >= 400 and r.json()["status"] == "error", r
        assert after_server == before_server, (
            f"the PUT answered {r.status} {r.json()['code']} ({r.json()['message']}) but the server kept "
            f"the new values: {before_server} -> {after_server}")
    p = i.params()
    assert p["maxmemory-policy"]["value"] == "allkeys-lru" and p["hz"]["value"] is None


# --------------------------------------------------------------------------
# 5. C07: quotes, spaces, $ and backslashes survive render, start and CONFIG GET

def test_c07_values_round_trip_and_sensitive_values_masked(make_inst):
    i = make_inst("c07")
    auth = "pa ss'$x\"y\\z"
    # more of the kind: a literal \x41 and \n, '#', shell syntax, UTF-8, a trailing backslash
    user = "re pl'$(id)\"\\x41\\n #x ${HOME} `u` p\u00e4ss \u2713\\"
    i.put_ok({"masterauth": auth, "masteruser": user}, live=("masterauth", "masteruser"))
    assert i.cget("masterauth", "masteruser") == {"masterauth": auth, "masteruser": user}
    assert i.conf_value("masterauth") == auth and i.conf_value("masteruser") == user
    i.op("restart")
    assert i.status() == "running"
    assert i.cget("masterauth", "masteruser") == {"masterauth": auth, "masteruser": user}

    r = i.s.get(i.path)
    assert auth.encode() not in r.body and json.dumps(auth)[1:-1].encode() not in r.body
    p = {x["name"]: x for x in r.json()["parameters"]}
    assert p["masterauth"]["sensitive"] is True
    assert p["masterauth"]["value"] == "********" and p["masterauth"]["running_value"] == "********"
    assert p["masterauth"]["drift"] is False
    assert p["masteruser"]["value"] == user and p["masteruser"]["running_value"] == user
    assert p["masteruser"]["drift"] is False


# --------------------------------------------------------------------------
# 6. C08: dir, dbfilename and the other owned keys are refused, nothing changes

REFUSED = ["dir", "dbfilename", "appenddirname", "appendfilename", "aclfile", "logfile", "include",
           "rename-command", "enable-protected-configs", "enable-debug-command", "enable-module-command",
           "loadmodule", "unixsocket", "unixsocketperm", "requirepass", "user", "port", "bind"]


def test_c08_owned_keys_refused_and_nothing_changes(cenv, make_inst, make_template):
    i = make_inst("c08")
    watch = ("dir", "dbfilename", "maxmemory-policy", "enable-protected-configs", "enable-debug-command",
             "appenddirname", "port", "aclfile")
    before_server = i.cget(*watch)
    assert before_server["dir"] == "/data" and before_server["dbfilename"] == "dump.rdb"
    before_file = i.conf()
    before_get = i.get()
    wrong = []
    cases = [({"dir": "/etc"}, "dir"), ({"dbfilename": "../../etc/passwd"}, "dbfilename"),
             ({"maxmemory-policy": "allkeys-lru", "dir": "/etc"}, "dir"),
             ({"dbfilename": "passwd", "maxmemory-policy": "allkeys-lru"}, "dbfilename"),
             ({"DIR": "/etc"}, "DIR"), ({"Dbfilename": "x"}, "Dbfilename")]
    cases += [({k: "yes" if k.startswith("enable-") else "/etc/x"}, k) for k in REFUSED]
    for doc, field in cases:
        r = i.put(doc)
        if r.status not in (403, 422) or r.json().get("field") != field:
            wrong.append((doc, r.status, r.body))
        elif r.status == 403 and r.json()["code"] != "refused_key":
            wrong.append((doc, r.status, r.body))
    assert i.cget(*watch) == before_server
    assert i.conf() == before_file
    assert i.get() == before_get
    assert not (i.env.inst_dir(i.name) / "data" / "passwd").exists()
    # the same for a template
    n = make_template("c08")
    for doc, field in cases:
        r = cenv.stack.request("POST", TEMPLATES, body={"name": n, "config": doc})
        if r.status not in (403, 422) or r.json().get("field") != "config." + field:
            wrong.append(("template", doc, r.status, r.body))
    assert cenv.stack.get(f"{TEMPLATES}/{n}").status == 404
    assert not wrong, "owned keys not refused as they should be:\n" + "\n".join(map(repr, wrong))


# --------------------------------------------------------------------------
# 7. a CONFIG SET failing half way puts back the ones set before it

def test_failing_config_set_rolls_back_the_keys_before_it(make_inst):
    i = make_inst("rb")
    # the premise: this server refuses activedefrag (no defrag-capable jemalloc)
    with i.client() as c:
        r = c.call("CONFIG", "SET", "activedefrag", "yes")
        assert not isinstance(r, str), "this image accepts activedefrag: the test needs another failing key"
    assert i.params()["activedefrag"]["live"] is True
    watch = ("maxmemory", "maxmemory-policy", "hz", "activedefrag")
    before_server = i.cget(*watch)
    assert before_server == {"maxmemory": str(DERIVED_MAXMEMORY), "maxmemory-policy": "noeviction", "hz": "10",
                             "activedefrag": "no"}
    before_file = i.conf()
    before_get = i.get()

    r = i.put({"maxmemory-policy": "volatile-lru", "activedefrag": "yes"})
    j = error(r, 422, "invalid_field", "activedefrag")
    assert "activedefrag" in j["message"]
    assert i.cget(*watch) == before_server
    assert i.conf() == before_file and i.get() == before_get

    # three set before the failing one
    r = i.put({"maxmemory": "30mb", "maxmemory-policy": "volatile-lru", "hz": 50, "activedefrag": "yes"})
    error(r, 422, "invalid_field", "activedefrag")
    assert i.cget(*watch) == before_server
    assert i.conf() == before_file and i.get() == before_get

    # and the same keys without the failing one go through
    i.put_ok({"maxmemory": "30mb", "maxmemory-policy": "volatile-lru", "hz": 50},
             live=("maxmemory", "maxmemory-policy", "hz"))
    assert i.cget(*watch) == {"maxmemory": str(30 * MB), "maxmemory-policy": "volatile-lru", "hz": "50",
                              "activedefrag": "no"}


# --------------------------------------------------------------------------
# 8. templates: CRUD, built-ins, in use, bad names and keys

def test_template_crud_builtins_and_in_use(cenv, make_template, make_inst):
    s = cenv.stack
    # built-ins listed and shown
    lst = s.get(TEMPLATES).json()
    assert lst["count"] == len(lst["templates"])
    by = {t["name"]: t for t in lst["templates"]}
    for name, config in BUILTINS.items():
        assert by[name]["builtin"] is True and by[name]["config"] == config, by[name]
        assert isinstance(by[name]["description"], str) and by[name]["description"]
        r = s.get(f"{TEMPLATES}/{name}")
        assert r.status == 200 and r.json() == by[name]

    # create
    n = make_template("crud")
    r = s.request("POST", TEMPLATES, body={"name": n, "description": "small LFU cache",
                                           "config": {"maxmemory": "32MB", "maxmemory-policy": "allkeys-lfu",
                                                      "appendonly": False, "hz": 20}})
    assert r.status == 201, r
    created = r.json()
    assert created == {"name": n, "description": "small LFU cache", "builtin": False,
                       "config": {"maxmemory": "32mb", "maxmemory-policy": "allkeys-lfu", "appendonly": "no",
                                  "hz": "20"}}
    assert r.header("Location") == f"{TEMPLATES}/{n}"
    error(s.request("POST", TEMPLATES, body={"name": n, "config": {}}), 409, "template_exists")
    assert s.get(f"{TEMPLATES}/{n}").json() == created
    lst = s.get(TEMPLATES).json()
    assert [t for t in lst["templates"] if t["name"] == n] == [created]
    assert {"default", "cache", "persistent"} <= {t["name"] for t in lst["templates"]}

    # update replaces the config
    r = s.put_json(f"{TEMPLATES}/{n}", {"description": "bigger", "config": {"maxmemory": "40mb"}})
    assert r.status == 200, r
    assert r.json() == {"name": n, "description": "bigger", "builtin": False, "config": {"maxmemory": "40mb"}}
    assert s.get(f"{TEMPLATES}/{n}").json() == r.json()
    r = s.put_json(f"{TEMPLATES}/{n}", {"name": n, "config": {"maxmemory": "48mb"}})
    assert r.status == 200 and r.json()["config"] == {"maxmemory": "48mb"}
    error(s.put_json(f"{TEMPLATES}/{n}", {"name": n + "x", "config": {}}), 422, "invalid_field", "name")
    error(s.put_json(f"{TEMPLATES}/{n}x", {"config": {}}), 404, "template_not_found")
    error(s.request("DELETE", f"{TEMPLATES}/{n}x"), 404, "template_not_found")
    error(s.get(f"{TEMPLATES}/{n}x"), 404, "template_not_found")

    # built-ins cannot be changed or deleted, nor shadowed
    for name, config in BUILTINS.items():
        error(s.put_json(f"{TEMPLATES}/{name}", {"config": {"hz": 20}}), 409, "template_builtin")
        error(s.request("DELETE", f"{TEMPLATES}/{name}"), 409, "template_builtin")
        error(s.request("POST", TEMPLATES, body={"name": name, "config": {"hz": 20}}), 409, "template_builtin")
        assert s.get(f"{TEMPLATES}/{name}").json()["config"] == config
    assert sorted(t["name"] for t in s.get(TEMPLATES).json()["templates"] if t["builtin"]) == \
        ["cache", "default", "persistent"]

    # in use: 409 naming the instance; free again once it is gone
    i = make_inst("use", configTemplate=n)
    j = error(s.request("DELETE", f"{TEMPLATES}/{n}"), 409, "template_in_use")
    assert i.name in j["message"] and n in j["message"]
    assert s.get(f"{TEMPLATES}/{n}").status == 200
    assert i.get()["template"] == n
    r = s.request("DELETE", f"{API}/{i.name}", timeout=60)
    assert r.status == 200, r
    r = s.request("DELETE", f"{TEMPLATES}/{n}")
    assert r.status == 200 and r.json()["status"] == "ok", r
    error(s.get(f"{TEMPLATES}/{n}"), 404, "template_not_found")
    assert n not in [t["name"] for t in s.get(TEMPLATES).json()["templates"]]
    # and the name can be taken again
    assert s.request("POST", TEMPLATES, body={"name": n, "config": {}}).status == 201


def test_template_bad_input(cenv, make_template):
    s = cenv.stack
    n = make_template("bad")
    wrong = []
    cases = [
        ({"name": "Bad", "config": {}}, "name"),
        ({"name": "1abc", "config": {}}, "name"),
        ({"name": "a b", "config": {}}, "name"),
        ({"name": "../x", "config": {}}, "name"),
        ({"name": "", "config": {}}, "name"),
        ({"name": "a" * 64, "config": {}}, "name"),
        ({"name": 5, "config": {}}, "name"),
        ({"config": {}}, "name"),
        ({"name": n}, "config"),
        ({"name": n, "config": "maxmemory 1mb"}, "config"),
        ({"name": n, "config": ["maxmemory"]}, "config"),
        ({"name": n, "config": {"maxmemroy": "1mb"}}, "config.maxmemroy"),
        ({"name": n, "config": {"hz": 20, "no-such-key": "x"}}, "config.no-such-key"),
        ({"name": n, "config": {"maxmemory": "lots"}}, "config.maxmemory"),
        ({"name": n, "config": {"maxmemory-policy": "sometimes"}}, "config.maxmemory-policy"),
        ({"name": n, "config": {"save": "60"}}, "config.save"),
        ({"name": n, "config": {"masterauth": "a\nb"}}, "config.masterauth"),
        ({"name": n, "config": {}, "extra": 1}, "extra"),
        ({"name": n, "config": {}, "description": "x" * 201}, "description"),
        ({"name": n, "config": {}, "description": "a\nb"}, "description"),
        ({"name": n, "config": {}, "description": 3}, "description"),
    ]
    for body, field in cases:
        r = s.request("POST", TEMPLATES, body=body)
        if r.status != 422 or r.json().get("code") != "invalid_field" or r.json().get("field") != field:
            wrong.append((body, field, r.status, r.body))
    for path in ("Bad", "a%20b", "1x"):
        for method in ("GET", "PUT", "DELETE"):
            r = s.request(method, f"{TEMPLATES}/{path}", body={"config": {}} if method == "PUT" else None)
            if r.status != 422 or r.json().get("field") != "name":
                wrong.append((method, path, r.status, r.body))
    assert s.get(f"{TEMPLATES}/{n}").status == 404
    assert not wrong, "bad template input not answered 422 naming the field:\n" + "\n".join(map(repr, wrong))


# --------------------------------------------------------------------------
# 9. instances created from templates run with their values

def test_instances_from_builtin_and_custom_templates(cenv, make_template, make_inst):
    s = cenv.stack
    d = make_inst("tdef")
    c = make_inst("tcache", configTemplate="cache")
    p = make_inst("tpers", configTemplate="persistent")

    assert d.get()["template"] == "default"
    assert d.cget("maxmemory") == {"maxmemory": str(DERIVED_MAXMEMORY)}
    mm = d.params()["maxmemory"]
    assert (mm["source"], mm["value"], mm["running_value"], mm["drift"]) == \
        ("derived", str(DERIVED_MAXMEMORY), str(DERIVED_MAXMEMORY), False)
    assert d.conf_value("maxmemory") == str(DERIVED_MAXMEMORY)

    assert c.get()["template"] == "cache"
    assert c.cget("save", "appendonly", "maxmemory-policy", "maxmemory") == {
        "save": "", "appendonly": "no", "maxmemory-policy": "allkeys-lru", "maxmemory": str(DERIVED_MAXMEMORY)}
    assert p.get()["template"] == "persistent"
    assert p.cget("appendonly", "appendfsync", "save") == {
        "appendonly": "yes", "appendfsync": "everysec", "save": "3600 1 300 100 60 10000"}
    for inst, config in ((c, BUILTINS["cache"]), (p, BUILTINS["persistent"])):
        params = inst.params()
        for k, v in config.items():
            assert (params[k]["value"], params[k]["source"], params[k]["drift"]) == (v, "configured", False), \
                (inst.name, k, params[k])
            assert inst.conf_value(k) == v

    # a custom template
    n = make_template("mine")
    r = s.request("POST", TEMPLATES, body={"name": n, "config": {"maxmemory": "20mb",
                                                                 "maxmemory-policy": "volatile-ttl", "hz": 25}})
    assert r.status == 201, r
    m = make_inst("tmine", configTemplate=n)
    want = {"maxmemory": str(20 * MB), "maxmemory-policy": "volatile-ttl", "hz": "25"}
    assert m.cget(*want) == want
    assert m.get()["template"] == n
    assert m.params()["maxmemory"]["source"] == "configured"

    # changing the template later leaves the instance as it is, even across a restart
    r = s.put_json(f"{TEMPLATES}/{n}", {"config": {"maxmemory": "30mb", "hz": 50}})
    assert r.status == 200, r
    params = m.params()
    assert params["maxmemory"]["value"] == "20mb" and params["hz"]["value"] == "25"
    assert params["maxmemory-policy"]["value"] == "volatile-ttl"
    m.op("restart")
    assert m.cget(*want) == want
    # a new instance from it gets the new values
    m2 = make_inst("tmine2", configTemplate=n)
    assert m2.cget("maxmemory", "maxmemory-policy", "hz") == {
        "maxmemory": str(30 * MB), "maxmemory-policy": "noeviction", "hz": "50"}


# --------------------------------------------------------------------------
# 10. bad values: 422 naming the key, nothing changed

def test_bad_values_rejected_and_nothing_changes(make_inst):
    i = make_inst("bad")
    watch = ("maxmemory", "maxmemory-policy", "save", "appendonly", "notify-keyspace-events", "masterauth",
             "databases", "hz", "maxclients")
    before_server = i.cget(*watch)
    before_file = i.conf()
    before_get = i.get()
    cases = [
        ({"maxmemory": "lots"}, "maxmemory"),
        ({"maxmemory": "-1"}, "maxmemory"),
        ({"maxmemory": "1.5gb"}, "maxmemory"),
        ({"maxmemory": "2000gb"}, "maxmemory"),
        ({"maxmemory": ""}, "maxmemory"),
        ({"maxmemory": None}, "maxmemory"),
        ({"maxmemory": {"size": 1}}, "maxmemory"),
        ({"maxmemory-policy": "sometimes"}, "maxmemory-policy"),
        ({"maxmemory-policy": "allkeys-lru\nrequirepass x"}, "maxmemory-policy"),
        ({"save": "0 0"}, "save"),
        ({"save": "60"}, "save"),
        ({"save": "60 -1"}, "save"),
        ({"save": "every minute"}, "save"),
        ({"appendonly": "maybe"}, "appendonly"),
        ({"appendonly": "true"}, "appendonly"),
        ({"appendonly": 1}, "appendonly"),
        ({"notify-keyspace-events": "KEQ"}, "notify-keyspace-events"),
        ({"notify-keyspace-events": "K E"}, "notify-keyspace-events"),
        ({"masterauth": "line\nrequirepass x"}, "masterauth"),
        ({"masterauth": "a\rb"}, "masterauth"),
        ({"masterauth": "x" * 513}, "masterauth"),
        ({"databases": 0}, "databases"),
        ({"databases": "10001"}, "databases"),
        ({"hz": "fast"}, "hz"),
        ({"maxclients": 1.5}, "maxclients"),
        ({"maxmemroy": "1mb"}, "maxmemroy"),
        ({"no-such-key": "x"}, "no-such-key"),
        ({"maxmemory-policy": "allkeys-lru", "maxmemory": "lots"}, "maxmemory"),
        ({"hz": 20, "databases": 0}, "databases"),
    ]
    wrong = []
    for doc, field in cases:
        r = i.put(doc)
        if r.status != 422 or r.json().get("code") != "invalid_field" or r.json().get("field") != field:
            wrong.append((doc, field, r.status, r.body))
    r = i.put({})
    assert r.status == 400 and r.json()["code"] == "empty_change", r
    # a NUL byte: the JSON parser refuses it (400) or the check names the key (422)
    r = i.put({"masterauth": "a\x00b"})
    assert r.status == 400 or (r.status == 422 and r.json()["field"] == "masterauth"), r
    for raw in (b"[1]", b'"maxmemory"', b"{"):
        r = i.s.request("PUT", i.path, body=raw, headers={"Content-Type": "application/json"})
        assert r.status == 400, (raw, r)
    assert i.cget(*watch) == before_server
    assert i.conf() == before_file
    assert i.get() == before_get
    assert not wrong, "bad values not answered 422 naming the key:\n" + "\n".join(map(repr, wrong))


# --------------------------------------------------------------------------
# 11. a stopped instance: stored, applied at start

def test_stopped_instance_change_takes_effect_at_start(make_inst):
    i = make_inst("stop")
    assert i.op("stop")["status"] == "stopped"
    i.put_ok({"maxmemory-policy": "allkeys-lfu", "databases": "24", "masterauth": "s3cret pw"},
             restart=("databases",), message=STORED_MSG)
    assert not inspect(f"valdock-{i.name}")["State"]["Running"], "the PUT started a stopped instance"
    assert i.status() == "stopped"
    assert i.conf_value("maxmemory-policy") == "allkeys-lfu" and i.conf_value("databases") == "24"
    doc = i.get()
    assert doc["running_values_known"] is False
    p = {x["name"]: x for x in doc["parameters"]}
    assert p["maxmemory-policy"]["value"] == "allkeys-lfu" and p["maxmemory-policy"]["running_value"] is None
    assert p["masterauth"]["value"] == "********"
    assert i.op("start")["status"] == "running"
    assert i.cget("maxmemory-policy", "databases", "masterauth") == {
        "maxmemory-policy": "allkeys-lfu", "databases": "24", "masterauth": "s3cret pw"}
    p = i.params()
    assert p["databases"]["drift"] is False and p["maxmemory-policy"]["drift"] is False


# --------------------------------------------------------------------------
# 12. a value the server refuses only at start (stored while stopped)

def test_value_refused_at_start_leaves_no_crash_loop_and_can_be_fixed(make_inst):
    """activedefrag passes validation and is stored for a stopped instance,
    but this image's server refuses it when it reads the file. The start
    fails, saying why (the server's own words name the directive); the
    instance must then really be down (not left to Docker's restart policy,
    crash-looping while Valdock says "stopped"), and a PUT putting it right
    followed by a start brings it back."""
    i = make_inst("refst")
    assert i.op("stop")["status"] == "stopped"
    i.put_ok({"activedefrag": "yes"}, message=STORED_MSG)
    assert i.conf_value("activedefrag") == "yes"
    problems = []
    r = i.s.request("POST", f"{API}/{i.name}/start", timeout=120)
    assert r.status >= 400 and r.json()["status"] == "error", r
    if "activedefrag" not in r.json()["message"]:
        problems.append(f"the failed start does not say why (no 'activedefrag' in it): {r.json()['message']!r}")
    # what Docker does with the container from now on, against what Valdock says
    seen = []
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        st = inspect(f"valdock-{i.name}")["State"]
        seen.append((st["Status"], i.status()))
        time.sleep(0.5)
    if any(d in ("restarting", "running") for d, _ in seen):
        problems.append(f"after the failed start Docker keeps restarting the container while Valdock reports "
                        f"{sorted(set(v for _, v in seen))}: (docker, valdock) = {seen}")
    if any(v == "running" for _, v in seen):
        problems.append(f"Valdock reports running after a failed start: {seen}")

    i.put_ok({"activedefrag": "no"}, message=STORED_MSG)
    j = i.op("start")
    assert j["status"] == "running", j
    if j["message"] not in ("started", "container recreated and started"):
        problems.append(f"the start after the fix answered {j!r} (it was not started by it)")
    wait_for(lambda: i.status() == "running", 10, "running")
    assert i.cget("activedefrag") == {"activedefrag": "no"}
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------
# 13. concurrent changes of one instance: serialized, server, file and store agree

def test_concurrent_changes_end_consistent(make_inst):
    i = make_inst("conc")
    values = list(range(11, 19))

    def change(v):
        return i.put({"hz": v, "maxmemory-samples": v % 60 + 1, "slowlog-max-len": v * 10})
    with ThreadPoolExecutor(len(values)) as ex:
        results = list(ex.map(change, values))
    assert all(r.status == 200 for r in results), [(r.status, r.body) for r in results]
    server = i.cget("hz", "maxmemory-samples", "slowlog-max-len")
    v = int(server["hz"])
    assert v in values
    want = {"hz": str(v), "maxmemory-samples": str(v % 60 + 1), "slowlog-max-len": str(v * 10)}
    assert server == want, "the server holds a mix of two changes"
    assert {k: i.conf_value(k) for k in want} == want, "the file and the server disagree"
    p = i.params()
    assert {k: p[k]["value"] for k in want} == want, "the store and the server disagree"
    assert not any(p[k]["drift"] for k in want)


# --------------------------------------------------------------------------
# 14. a template deleted while an instance is being created from it

def test_template_delete_never_orphans_an_instance_being_created(cenv, make_template, make_inst):
    """DELETE of a template must be 409 once an instance uses it: a create
    that has read the template and a delete running at the same moment may
    not both succeed (the instance would name a template that is gone)."""
    s = cenv.stack
    orphans = []
    for attempt in range(8):
        n = make_template(f"race{attempt}")
        assert s.request("POST", TEMPLATES, body={"name": n, "config": {"hz": 33}}).status == 201
        name = cenv.name(f"race{attempt}")
        out = {}

        def create():
            out["r"] = s.request("POST", API, body={"name": name, "configTemplate": n, "memory": "16mb"},
                                 timeout=120)
        t = threading.Thread(target=create)
        t.start()
        deleted = False
        while t.is_alive() and not deleted:
            deleted = s.request("DELETE", f"{TEMPLATES}/{n}").status == 200
        t.join()
        if out["r"].status == 201:
            view = s.get(f"{API}/{name}").json()
            if deleted or s.get(f"{TEMPLATES}/{n}").status == 404:
                orphans.append((name, view["template"]))
            r = s.request("DELETE", f"{API}/{name}", timeout=60)
            assert r.status == 200, r
        else:
            error(out["r"], 422, "invalid_field", "configTemplate")
        for c in labelled_containers([name]):
            remove_container(c["Id"])
    assert not orphans, f"instances created from a template deleted at the same time (instance, template): {orphans}"


def test_maxmemory_above_the_memory_limit_is_refused(cenv, make_template, make_inst):
    """maxmemory above the container's limit would let the kernel kill the
    server before it evicts: refused on a change and at creation from a
    template, naming maxmemory, and nothing changes or is created."""
    i = make_inst("mm")
    before = i.conf()
    error(i.put({"maxmemory": "65mb"}), 422, "invalid_field", "maxmemory")
    assert i.conf() == before
    assert i.cli("CONFIG", "GET", "maxmemory") == ["maxmemory", str(DERIVED_MAXMEMORY)]
    i.put_ok({"maxmemory": "64mb"}, live=("maxmemory",))
    t = make_template("mm")
    r = cenv.stack.request("POST", TEMPLATES, body={"name": t, "config": {"maxmemory": "1gb"}})
    assert r.status == 201, r
    ids = {x["id"] for x in cenv.stack.get(API).json()["instances"]}
    r = make_inst("mmt", expect=422, configTemplate=t)
    error(r, 422, "invalid_field", "maxmemory")
    assert {x["id"] for x in cenv.stack.get(API).json()["instances"]} == ids   # nothing created


def test_module_leaves_no_containers(cenv):
    """Runs last: every container this module made was removed by its test."""
    wait_for(lambda: labelled_containers(cenv.used) == [], 20,
             f"no containers left: {[c['Names'] for c in labelled_containers(cenv.used)]}")
    r = cenv.stack.get(TEMPLATES)
    assert all(not t["name"].startswith(cenv.tag) for t in r.json()["templates"]), r.json()
