"""ACL users of managed instances on real Valkey servers in Docker (issue 4):
rules enforced as granted (a real RESP client logged in as the user), the
field cases C01-C04, hostile input that must change nothing, passwords,
rotation and disabling (open sessions closed), stopped and paused instances,
concurrent changes, a file the server refuses, and secrets kept out of every
answer and log line.

Reuses test_instances.py's helpers: unique instance names (t<6 hex><suffix>),
a port range of its own for the stack, a RESP client. One stack serves the
whole module; every test makes its own instances, which are deleted (and
their containers removed, unpaused first) at the test's teardown even when
it fails, and at the module's end every container labelled with a name the
module used is removed.

    /usr/bin/python3 -m pytest -q tests/api/test_acls.py
"""

import hashlib
import re
import secrets
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import wait_for
from test_instances import (API, Env, Resp, RespError, docker_call, labelled_containers, remove_container,
                            store)

SECRETS = []        # every clear password this module gave to a stack (section 8 looks for them)


def secret(tag):
    """A distinctive password (>= 12 characters), remembered for the leak sweep."""
    p = f"pw-{tag}-{secrets.token_hex(8)}"
    SECRETS.append(p)
    return p


def sha(p):
    return hashlib.sha256(p.encode()).hexdigest()


# --------------------------------------------------------------------------
# RESP as a user

def auth_reply(port, user, password):
    """What AUTH user password answers on a fresh connection."""
    with Resp(port=port, timeout=5) as c:
        return c.call("AUTH", user, password)


def can_login(port, user, password):
    return auth_reply(port, user, password) == "OK"


def login(port, user, password):
    c = Resp(port=port, timeout=5)
    r = c.call("AUTH", user, password)
    if r != "OK":
        c.close()
        raise AssertionError(f"AUTH {user} refused: {r!r}")
    return c


def is_noperm(reply):
    return isinstance(reply, RespError) and str(reply).startswith("NOPERM")


def session_dead(c):
    """True when the server closed the session: the next command gets EOF
    (or a reset) instead of an answer; any answer (an error too) is False."""
    try:
        c.call("PING")
    except (ConnectionError, OSError):
        return True
    return False


# --------------------------------------------------------------------------
# fixtures: one stack, instances per test

@pytest.fixture(scope="module")
def aenv(module_stacks):
    e = Env(module_stacks)
    e.start("acls")
    yield e
    e.cleanup()


class Inst:
    """One managed instance and the ACL API around it."""

    def __init__(self, env, name, port):
        self.env = env
        self.s = env.stack
        self.name = name
        self.port = port
        self.acls = f"{API}/{name}/acls"
        self.acl_path = env.inst_dir(name) / "conf" / "users.acl"

    # -- API
    def add(self, username, password=None, permissions="+@all", keys="~*", expect=201, **extra):
        body = {"username": username, **extra}
        if password is not None:
            body["password"] = password
        if permissions is not None:
            body["permissions"] = permissions
        if keys is not None:
            body["keys"] = keys
        r = self.s.request("POST", self.acls, body=body, timeout=30)
        if expect is not None:
            assert r.status == expect, (body.get("username", "")[:80], r)
        return r

    def put(self, username, body, expect=200):
        r = self.s.request("PUT", f"{self.acls}/{username}", body=body, timeout=30)
        if expect is not None:
            assert r.status == expect, r
        return r

    def delete(self, username, expect=200):
        r = self.s.request("DELETE", f"{self.acls}/{username}", timeout=30)
        if expect is not None:
            assert r.status == expect, r
        return r

    def view(self, username):
        r = self.s.get(f"{self.acls}/{username}")
        assert r.status == 200, r
        return r.json()

    def users(self):
        r = self.s.get(self.acls)
        assert r.status == 200, r
        doc = r.json()
        assert doc["count"] == len(doc["users"])
        return doc

    def effective(self):
        r = self.s.get(f"{API}/{self.name}/effective-acls")
        assert r.status == 200, r
        return r.json()

    def op(self, what):
        r = self.env.op(self.name, what)
        assert r.status == 200, r
        return r

    # -- the file and the server
    def file(self):
        return self.acl_path.read_bytes()

    def lines(self):
        return self.file().decode().splitlines()

    def line_of(self, username):
        found = [ln for ln in self.lines() if ln.split()[1] == username]
        assert len(found) == 1, (username, found)
        return found[0]

    def server_rules(self, username):
        for u in self.effective()["users"]:
            if u["username"] == username:
                return u["rules"]
        return None

    def store_users(self):
        with store(self.s) as c:
            h = c("HGETALL", f"aclusers:{self.name}")
        return dict(zip(h[0::2], h[1::2]))

    def snapshot(self):
        """Everything that must stay the same when a change is refused."""
        eff = None
        if self.env.status(self.name) == "running":
            e = self.effective()
            eff = sorted((u["username"], u["rules"]) for u in e["users"])
        return {"file": self.file(), "api": self.users(), "store": self.store_users(), "server": eff}

    def container(self):
        lst = labelled_containers([self.name])
        assert len(lst) == 1, lst
        return lst[0]


@pytest.fixture
def make_inst(aenv):
    made = []

    def make(suffix="i", users=None):
        name = aenv.name(suffix)
        made.append(name)
        body = {} if users is None else {"users": users}
        r = aenv.create(name, **body)
        return Inst(aenv, name, r.json()["port"])
    yield make
    for n in made:
        for c in labelled_containers([n]):
            if c.get("State") == "paused":
                docker_call("POST", f"/containers/{c['Id']}/unpause")
        try:
            aenv.stack.request("DELETE", f"{API}/{n}", timeout=60)
        except OSError:
            pass
        for c in labelled_containers([n]):
            remove_container(c["Id"])


def invalid(r, field, *needles):
    """A 422 naming field, whose message holds every needle."""
    assert r.status == 422, r
    e = r.json()
    assert e["status"] == "error" and e["code"] == "invalid_field", e
    assert e.get("field") == field, (field, e)
    for n in needles:
        assert n in e["message"], (n, e)
    return e


# --------------------------------------------------------------------------
# 1. every rule kind: what was granted works, the rest is NOPERM

def test_rules_grant_exactly_what_was_asked(make_inst):
    i = make_inst("rules")
    port = i.port
    users = {
        "cmd": dict(permissions="+get", keys="~*"),
        "cat": dict(permissions="+@read -@dangerous", keys="~*"),
        "sub": dict(permissions="+client|setname", keys="~*"),
        "keypat": dict(permissions=["+get", "+set"], keys="~public:*"),
        "readonly": dict(permissions="+get +set", keys="%R~logs:* %W~inbox:*"),
        "chan": dict(permissions="+publish +subscribe", keys="~*", channels="&events:*"),
        "sel": dict(permissions=["+get", "(~logs:* +set)"], keys=["~app:*"]),
        "selstr": dict(permissions="+get (~logs:*  +set)", keys="~app:*"),
    }
    pws = {}
    for u, rules in users.items():
        pws[u] = secret(u)
        r = i.add(u, pws[u], **rules)
        assert r.json()["reloaded"] is True and r.json()["message"] == f"User '{u}' added and ACL reloaded."
        assert r.header("Location") == f"{i.acls}/{u}"
    # the stored rules come back as given (arrays, selector spaces normalised)
    assert i.view("cat")["permissions"] == ["+@read", "-@dangerous"]
    assert i.view("readonly")["keys"] == ["%R~logs:*", "%W~inbox:*"]
    assert i.view("chan")["channels"] == ["&events:*"]
    assert i.view("sel")["permissions"] == ["+get", "(~logs:* +set)"]
    assert i.view("selstr")["permissions"] == ["+get", "(~logs:* +set)"]

    with login(port, "cmd", pws["cmd"]) as c:
        assert c.call("GET", "k") is None
        assert is_noperm(c.call("SET", "k", "v"))
        assert is_noperm(c.call("DEL", "k"))
        assert is_noperm(c.call("ACL", "LIST"))
    with login(port, "cat", pws["cat"]) as c:
        assert c.call("GET", "k") is None
        assert c.call("EXISTS", "k") == 0
        assert is_noperm(c.call("SET", "k", "v"))
        assert is_noperm(c.call("KEYS", "*")), "KEYS is @read but also @dangerous"
        assert is_noperm(c.call("FLUSHALL"))
    with login(port, "sub", pws["sub"]) as c:
        assert c.call("CLIENT", "SETNAME", "subuser") == "OK"
        assert is_noperm(c.call("CLIENT", "LIST"))
        assert is_noperm(c.call("CLIENT", "KILL", "ID", "1"))
        assert is_noperm(c.call("GET", "k"))
    with login(port, "keypat", pws["keypat"]) as c:
        assert c.call("SET", "public:x", "1") == "OK"
        assert c.call("GET", "public:x") == "1"
        assert is_noperm(c.call("GET", "private:x"))
        assert is_noperm(c.call("SET", "private:x", "1"))
    with login(port, "readonly", pws["readonly"]) as c:
        assert c.call("GET", "logs:a") is None
        assert is_noperm(c.call("SET", "logs:a", "1")), "%R~ must not allow writes"
        assert c.call("SET", "inbox:a", "1") == "OK"
        assert is_noperm(c.call("GET", "inbox:a")), "%W~ must not allow reads"
        assert is_noperm(c.call("GET", "other"))
    with login(port, "chan", pws["chan"]) as c:
        assert c.call("PUBLISH", "events:a", "hello") == 0
        assert is_noperm(c.call("PUBLISH", "other", "hello"))
    with login(port, "chan", pws["chan"]) as c:
        assert is_noperm(c.call("SUBSCRIBE", "other"))
    with login(port, "chan", pws["chan"]) as c:
        assert c.call("SUBSCRIBE", "events:b") == ["subscribe", "events:b", 1]
    for u in ("sel", "selstr"):
        with login(port, u, pws[u]) as c:
            assert c.call("GET", "app:1") is None
            assert c.call("SET", "logs:1", "x") == "OK", "the selector grants SET on logs:*"
            assert is_noperm(c.call("SET", "app:1", "x")), "root rules grant only GET"
            assert is_noperm(c.call("GET", "logs:1")), "the selector grants only SET"
            assert is_noperm(c.call("GET", "other:1"))
    # the file holds each user once, in one fixed order: on, hashes, keys, channels, commands (C04)
    assert i.line_of("chan") == f"user chan on #{sha(pws['chan'])} ~* &events:* +publish +subscribe"
    assert i.line_of("sel") == f"user sel on #{sha(pws['sel'])} ~app:* +get (~logs:* +set)"
    assert i.effective()["in_sync"] is True


# --------------------------------------------------------------------------
# 2. field cases C01-C04

def test_c01_a_user_is_never_rendered_twice(make_inst, aenv):
    i = make_inst("c01")
    p = secret("c01")
    i.add("dup", p)
    before = i.snapshot()
    r = i.add("dup", secret("c01b"), expect=409)
    assert r.json() == {"status": "error", "code": "user_exists",
                        "message": "user 'dup' exists; change it with PUT"}
    assert i.snapshot() == before
    assert [ln.split()[1] for ln in i.lines()].count("dup") == 1
    # twenty concurrent adds of one name: exactly one wins
    with ThreadPoolExecutor(20) as ex:
        rs = list(ex.map(lambda _: i.add("race", secret("race"), expect=None), range(20)))
    assert sorted(r.status for r in rs) == [201] + [409] * 19, [(r.status, r.body) for r in rs]
    assert [ln.split()[1] for ln in i.lines()].count("race") == 1
    names = [ln.split()[1] for ln in i.lines()]
    assert len(names) == len(set(names)), names
    assert i.effective()["in_sync"] is True
    # users given twice at instance creation: 422, nothing made
    n = aenv.name("c01dup")
    r = aenv.stack.request("POST", API, body={"name": n, "users": [
        {"username": "app", "password": secret("c01c")}, {"username": "app", "password": secret("c01d")}]},
        timeout=90)
    invalid(r, "users[1].username", "twice")
    assert labelled_containers([n]) == []
    assert aenv.stack.get(f"{API}/{n}").status == 404


def assert_default_closed(i):
    first = i.lines()[0]
    assert first.startswith("user default off"), first
    assert "nopass" not in first.split() and not any(t[:1] in "#>" for t in first.split()[2:]), first
    assert str(auth_reply(i.port, "default", "")).startswith("WRONGPASS")
    assert str(auth_reply(i.port, "default", "anything-at-all")).startswith("WRONGPASS")
    with Resp(port=i.port) as c:
        assert str(c.call("GET", "k")).startswith("NOAUTH")
    rules = i.server_rules("default")
    assert rules[0] == "off" and "nopass" not in rules, rules


def test_c02_default_user_always_explicit_and_off(make_inst):
    i = make_inst("c02")
    assert_default_closed(i)
    p = secret("c02")
    i.add("u", p)
    assert_default_closed(i)
    i.put("u", {"permissions": "+get"})
    assert_default_closed(i)
    i.put("u", {"enabled": False})
    assert_default_closed(i)
    i.delete("u")
    assert_default_closed(i)
    assert [ln.split()[1] for ln in i.lines()] == ["default", "valdock"]
    assert_default_closed(i)


def test_c03_no_comments_no_clear_passwords_only_lowercase_hashes(make_inst):
    i = make_inst("c03")
    p_space = "my pass#1 long"
    SECRETS.append(p_space)
    base = secret("c03")
    i.add("keep", base, permissions="+get", keys="~*")
    before = i.snapshot()
    upper = "#" + sha("x").upper()
    lower = "#" + sha("x")
    # (field, value, what the message must hold): comments and hashes are
    # named; a clear password is only called one (section 8: never echoed)
    cases = [
        ("permissions", "+get # managed by valdock", "'#'"),
        ("permissions", "# managed", "'#'"),
        ("permissions", "+get >pass", "password"),
        ("permissions", ["+get", ">pass"], "password"),
        ("permissions", "+get <pass", "password"),
        ("permissions", f"+get {upper}", "password"),
        ("permissions", f"+get {lower}", "password"),
        ("permissions", f"+get !{sha('x')}", "password"),
        ("keys", "~* >pass", "password"),
        ("keys", f"~* {upper}", "password"),
        ("keys", "~* #comment", "password"),
        ("channels", "&* >pass", "password"),
        ("channels", f"&* {lower}", "password"),
        ("permissions", "(~x +get >pass)", "password"),
        ("permissions", "+get nopass", "'nopass'"),
        ("keys", "~* resetkeys", "'resetkeys'"),
    ]
    wrong = []
    for field, value, token in cases:
        body = {"password": secret("c03x"), "permissions": "+get", "keys": "~*", field: value}
        r = i.add("c03user", **body, expect=None)
        try:
            invalid(r, field, token)
        except AssertionError as ex:
            wrong.append(("POST", field, value, str(ex)[:300]))
        r = i.put("keep", {field: value}, expect=None)
        try:
            invalid(r, field, token)
        except AssertionError as ex:
            wrong.append(("PUT", field, value, str(ex)[:300]))
    assert not wrong, "\n".join(map(repr, wrong))
    assert i.snapshot() == before

    # a password with spaces and '#' works; only its lowercase hash is written
    r = i.add("spacey", p_space, permissions="+get", keys="~*")
    assert can_login(i.port, "spacey", p_space)
    assert not can_login(i.port, "spacey", "my")
    i.put("keep", {"password": p_space})
    assert can_login(i.port, "keep", p_space)
    assert not can_login(i.port, "keep", base)
    i.add("multi", passwords=[p_space, base + "#2 x"], permissions="+get", keys="~*")
    SECRETS.append(base + "#2 x")
    assert can_login(i.port, "multi", p_space) and can_login(i.port, "multi", base + "#2 x")
    text = i.file().decode()
    assert p_space not in text and "my pass" not in text
    assert i.line_of("spacey") == f"user spacey on #{sha(p_space)} ~* +get"
    assert i.line_of("multi") == f"user multi on #{sha(p_space)} #{sha(base + '#2 x')} ~* +get"
    for line in i.lines():
        assert not line.lstrip().startswith("#"), f"a comment line: {line!r}"
        assert line.startswith("user "), line
        for tok in line.split()[2:]:
            assert not tok.startswith(">") and not tok.startswith("<"), line
            if tok.startswith("#"):
                assert re.fullmatch(r"#[0-9a-f]{64}", tok), line


def test_c04_nopass_only_when_asked_and_no_password_means_no_login(make_inst):
    i = make_inst("c04")
    p = secret("c04")
    before = i.snapshot()
    # nopass and a password exclude each other; nopass is never a rule
    invalid(i.add("np", p, nopass=True, expect=None), "nopass")
    invalid(i.add("np", None, passwords=[p], nopass=True, expect=None), "nopass")
    invalid(i.add("np", p, permissions="+get nopass", expect=None), "permissions", "'nopass'")
    invalid(i.add("np", p, keys="~* nopass", expect=None), "keys", "'nopass'")
    assert i.snapshot() == before
    i.add("u", p, permissions="+get", keys="~*")
    invalid(i.put("u", {"nopass": True, "password": p}, expect=None), "nopass")
    invalid(i.put("u", {"nopass": True, "add_password": secret("c04b")}, expect=None), "nopass")
    invalid(i.put("u", {"permissions": "+get nopass"}, expect=None), "permissions", "'nopass'")

    # no password and no nopass: allowed, but reported as unable to log in, never nopass
    r = i.add("nopw", None, permissions="+get", keys="~*")
    v = r.json()["user"]
    assert v["can_login"] is False and v["nopass"] is False and v["password_count"] == 0
    assert "log in" in v["warning"]
    assert i.line_of("nopw") == "user nopw on ~* +get"
    for guess in ("", "x", "nopass", p):
        assert str(auth_reply(i.port, "nopw", guess)).startswith("WRONGPASS"), guess

    # removing every password: can_login false with a warning, and a real login fails
    assert can_login(i.port, "u", p)
    r = i.put("u", {"remove_password": p})
    v = r.json()["user"]
    assert v["can_login"] is False and v["password_count"] == 0 and v["nopass"] is False, v
    assert "warning" in v and i.view("u")["can_login"] is False and "warning" in i.view("u")
    assert not can_login(i.port, "u", p)
    assert "nopass" not in i.line_of("u").split()
    assert [u for u in i.users()["users"] if u["username"] == "u"][0]["can_login"] is False

    # nopass only with "nopass": true
    r = i.put("u", {"nopass": True})
    v = r.json()["user"]
    assert v["nopass"] is True and v["can_login"] is True and "warning" not in v
    assert i.line_of("u") == "user u on nopass ~* +get"
    assert can_login(i.port, "u", "anything")
    # a password again ends nopass
    p2 = secret("c04c")
    i.put("u", {"password": p2})
    assert i.line_of("u") == f"user u on #{sha(p2)} ~* +get"
    assert not can_login(i.port, "u", "anything") and can_login(i.port, "u", p2)
    # a disabled user with a password cannot log in either, and says so
    i.put("u", {"enabled": False})
    assert i.view("u")["can_login"] is False
    assert not can_login(i.port, "u", p2)
    assert "nopass" not in i.file().decode().split()
    assert i.effective()["in_sync"] is True


# --------------------------------------------------------------------------
# 3. hostile input: 422 and nothing changes anywhere

def test_hostile_input_changes_nothing(make_inst):
    i = make_inst("host")
    p = secret("host")
    i.add("victim", p, permissions="+get", keys="~v:*", channels="&v:*")
    before = i.snapshot()
    ok = {"password": secret("hostok"), "permissions": "+get", "keys": "~*"}
    posts = [
        ({"username": "bad\nname", **ok}, "username"),
        ({"username": "bad\rname", **ok}, "username"),
        ({"username": "bad name", **ok}, "username"),
        ({"username": "bad\tname", **ok}, "username"),
        ({"username": "u" * 10240, **ok}, "username"),
        ({"username": "üser", **ok}, "username"),
        ({"username": "ユーザー", **ok}, "username"),
        ({"username": "a\u200bb", **ok}, "username"),
        ({"username": "", **ok}, "username"),
        ({"username": 7, **ok}, "username"),
        ({"username": "default", **ok}, "username"),
        ({"username": "valdock", **ok}, "username"),
        ({"username": "ok1", **dict(ok, permissions="+get >x")}, "permissions"),
        ({"username": "ok1", **dict(ok, permissions="+get\n+set")}, "permissions"),
        ({"username": "ok1", **dict(ok, permissions="reset")}, "permissions"),
        ({"username": "ok1", **dict(ok, permissions="+get on")}, "permissions"),
        ({"username": "ok1", **dict(ok, permissions="+get off")}, "permissions"),
        ({"username": "ok1", **dict(ok, permissions="nopass")}, "permissions"),
        ({"username": "ok1", **dict(ok, permissions="+get resetpass")}, "permissions"),
        ({"username": "ok1", **dict(ok, permissions=["+get", "resetkeys"])}, "permissions"),
        ({"username": "ok1", **dict(ok, permissions="+@nosuchcategory")}, "permissions"),
        ({"username": "ok1", **dict(ok, permissions="~*")}, "permissions"),
        ({"username": "ok1", **dict(ok, keys="%R~")}, "keys"),
        ({"username": "ok1", **dict(ok, keys="%W~")}, "keys"),
        ({"username": "ok1", **dict(ok, keys="%R")}, "keys"),
        ({"username": "ok1", **dict(ok, keys="~")}, "keys"),
        ({"username": "ok1", **dict(ok, keys="+get")}, "keys"),
        ({"username": "ok1", **dict(ok, keys="&*")}, "keys"),
        ({"username": "ok1", **dict(ok, channels="~*")}, "channels"),
        ({"username": "ok1", **dict(ok, channels="&")}, "channels"),
        ({"username": "ok1", **dict(ok, permissions="(~a +get")}, "permissions"),
        ({"username": "ok1", **dict(ok, permissions="~a +get)")}, "permissions"),
        ({"username": "ok1", **dict(ok, permissions="+get (~a (+set))")}, "permissions"),
        ({"username": "ok1", **dict(ok, permissions=["(~a +get"])}, "permissions"),
        ({"username": "ok1", **dict(ok, permissions="()")}, "permissions"),
        ({"username": "ok1", **dict(ok, permissions="(%R~ +get)")}, "permissions"),
        ({"username": "ok1", **dict(ok, permissions="(~a +get on)")}, "permissions"),
        ({"username": "ok1", **dict(ok, keys="(~a)")}, "keys"),
        ({"username": "ok1", **dict(ok, keys=5)}, "keys"),
        ({"username": "ok1", **dict(ok, keys={"a": 1})}, "keys"),
        ({"username": "ok1", **dict(ok, keys=[5])}, "keys"),
        ({"username": "ok1", **dict(ok, keys=["~a b"])}, "keys"),
        ({"username": "ok1", **dict(ok, channels=True)}, "channels"),
        ({"username": "ok1", **dict(ok, permissions=None)}, "permissions"),
        ({"username": "ok1", **ok, "role": "admin"}, "role"),
        ({"username": "ok1", **ok, "enabled": "yes"}, "enabled"),
        ({"username": "ok1", **ok, "nopass": 1}, "nopass"),
        ({"username": "ok1", **dict(ok, password="short")}, "password"),
        ({"username": "ok1", **dict(ok, password="long-enough\npassword")}, "password"),
        ({"username": "ok1", **dict(ok, password=12345678901234)}, "password"),
        ({"username": "ok1", "password": ok["password"], "keys": "~*"}, "permissions"),
    ]
    wrong = []
    for body, field in posts:
        r = i.s.request("POST", i.acls, body=body)
        try:
            invalid(r, field)
        except AssertionError as ex:
            wrong.append(("POST", repr(body)[:120], field, str(ex)[:300]))
    puts = [
        ({"permissions": "+get >x"}, "permissions"),
        ({"permissions": "+get reset"}, "permissions"),
        ({"keys": "%R~"}, "keys"),
        ({"keys": 7}, "keys"),
        ({"channels": "~x"}, "channels"),
        ({"permissions": "(+get"}, "permissions"),
        ({"enabled": "false"}, "enabled"),
        ({"password": "short"}, "password"),
        ({"password": 5}, "password"),
        ({"remove_password": "not-the-password"}, "remove_password"),
        ({"username": "renamed"}, "username"),
        ({"bogus": 1}, "bogus"),
        ({"add_password": p}, "add_password"),       # the same password again
    ]
    for body, field in puts:
        r = i.put("victim", body, expect=None)
        try:
            invalid(r, field)
        except AssertionError as ex:
            wrong.append(("PUT", repr(body)[:120], field, str(ex)[:300]))
    # reserved or malformed names in the path never reach a user
    for method, path, body in (("PUT", f"{i.acls}/valdock", {"password": secret("adm")}),
                               ("DELETE", f"{i.acls}/valdock", None),
                               ("PUT", f"{i.acls}/default", {"nopass": True}),
                               ("DELETE", f"{i.acls}/default", None),
                               ("PUT", f"{i.acls}/%C3%BCser", {"enabled": False})):
        r = i.s.request(method, path, body=body)
        try:
            invalid(r, "username")
        except AssertionError as ex:
            wrong.append((method, path, "username", str(ex)[:300]))
    # a control character in the path is a malformed request (the router's rule for every path)
    r = i.s.request("PUT", f"{i.acls}/bad%0Aname", body={"enabled": False})
    if r.status != 400 or r.json().get("code") != "bad_path":
        wrong.append(("PUT", "newline in the path", 400, r.status, r.body[:200]))
    r = i.s.request("PUT", f"{i.acls}/{'u' * 10240}", body={"enabled": False})
    if r.status not in (414, 422):
        wrong.append(("PUT", "10 kB name in the path", r.status, r.body[:200]))
    # malformed bodies
    for raw in (b"{", b'{"username":"a","username":"b"}', b"[]", b'"x"'):
        r = i.s.request("POST", i.acls, body=raw, headers={"Content-Type": "application/json"})
        if r.status != 400:
            wrong.append(("POST", raw, 400, r.status, r.body[:200]))
    after = i.snapshot()
    assert not wrong, "answers that are not right:\n" + "\n".join(map(repr, wrong))
    assert after == before, "a refused request changed something"
    assert can_login(i.port, "victim", p)
    assert i.effective()["in_sync"] is True


# --------------------------------------------------------------------------
# 4. password change, disable, rotation, delete: sessions and logins

def test_password_change_disable_and_rotation_end_sessions(make_inst):
    i = make_inst("pw")
    port = i.port
    old, new = secret("old"), secret("new")
    i.add("alice", old, permissions="+@all", keys="~*")

    # a new password: open sessions closed, old fails, new works
    s1, s2 = login(port, "alice", old), login(port, "alice", old)
    assert s1.call("SET", "k", "v") == "OK"
    r = i.put("alice", {"password": new})
    assert r.json()["sessions_closed"] == 2 and r.json()["reloaded"] is True, r
    assert r.json()["message"] == "User 'alice' updated and ACL reloaded."
    assert session_dead(s1) is True and session_dead(s2) is True
    s1.close(), s2.close()
    assert str(auth_reply(port, "alice", old)).startswith("WRONGPASS")
    assert can_login(port, "alice", new)
    assert i.view("alice")["password_count"] == 1

    # disabled: sessions closed, no login even with the right password; enabled again: login works
    s1 = login(port, "alice", new)
    r = i.put("alice", {"enabled": False})
    assert r.json()["sessions_closed"] == 1 and r.json()["user"]["enabled"] is False
    assert session_dead(s1) is True
    s1.close()
    assert not can_login(port, "alice", new)
    assert i.line_of("alice").startswith("user alice off ")
    i.put("alice", {"enabled": True})
    assert can_login(port, "alice", new)

    # a rules-only change keeps sessions (narrowed rules apply to them at once)
    s1 = login(port, "alice", new)
    r = i.put("alice", {"permissions": "+get"})
    assert r.json()["sessions_closed"] == 0
    assert session_dead(s1) is False
    assert is_noperm(s1.call("SET", "k", "v")), "the narrowed rules apply to the open session"
    s1.close()

    # rotation: add the next password (nobody is logged out), then remove the old one
    nxt = secret("next")
    s1 = login(port, "alice", new)
    r = i.put("alice", {"add_password": nxt})
    assert r.json()["sessions_closed"] == 0 and r.json()["user"]["password_count"] == 2
    assert session_dead(s1) is False, "adding a password must not end sessions"
    assert can_login(port, "alice", new) and can_login(port, "alice", nxt)
    r = i.put("alice", {"remove_password": new})
    assert r.json()["user"]["password_count"] == 1
    assert str(auth_reply(port, "alice", new)).startswith("WRONGPASS")
    assert can_login(port, "alice", nxt)
    assert session_dead(s1) is True, "a session opened with the removed password stays open"
    s1.close()
    assert i.line_of("alice") == f"user alice on #{sha(nxt)} ~* +get"
    assert i.effective()["in_sync"] is True


def test_delete_closes_sessions_and_reports_them(make_inst):
    i = make_inst("del")
    p = secret("del")
    i.add("bob", p)
    s1 = login(i.port, "bob", p)
    r = i.delete("bob")
    assert r.json()["message"] == "User 'bob' deleted and ACL reloaded." and "user" not in r.json()
    assert session_dead(s1) is True
    s1.close()
    assert not can_login(i.port, "bob", p)
    assert "bob" not in [ln.split()[1] for ln in i.lines()]
    assert i.s.get(f"{i.acls}/bob").status == 404
    assert i.delete("bob", expect=404).json()["code"] == "user_not_found"
    # the answer says how many sessions were closed, as it does for a password change
    assert r.json()["sessions_closed"] == 1, \
        f"DELETE closed the user's one session but reports sessions_closed={r.json()['sessions_closed']}"


# --------------------------------------------------------------------------
# 5. a stopped instance: stored and written now, in force at start

def test_stopped_instance_takes_changes_at_start(make_inst):
    i = make_inst("stop")
    pa, pb, pb2 = secret("a"), secret("b"), secret("b2")
    i.add("keepme", pb, permissions="+get", keys="~*")
    i.add("gone", pa)
    i.op("stop")
    assert i.env.status(i.name) == "stopped"
    r = i.add("late", pa, permissions="+get +set", keys="~late:*")
    assert r.status in (200, 201)
    doc = r.json()
    assert doc["reloaded"] is False and doc["status"] == "ok"
    assert "when it starts" in doc["message"] and doc["message"].startswith("User 'late' added"), doc
    r = i.put("keepme", {"password": pb2})
    assert r.json()["reloaded"] is False and "when it starts" in r.json()["message"]
    r = i.delete("gone")
    assert r.json()["reloaded"] is False
    assert "late" in [ln.split()[1] for ln in i.lines()]
    assert i.s.get(f"{API}/{i.name}/effective-acls").status == 409
    i.op("start")
    with login(i.port, "late", pa) as c:
        assert c.call("SET", "late:1", "x") == "OK"
        assert is_noperm(c.call("SET", "other", "x"))
    assert can_login(i.port, "keepme", pb2) and not can_login(i.port, "keepme", pb)
    assert not can_login(i.port, "gone", pa)
    assert i.effective()["in_sync"] is True


# --------------------------------------------------------------------------
# 6. concurrent changes of one instance

def test_parallel_changes_all_land(make_inst):
    i = make_inst("par")
    n = 10
    names = [f"par{k}" for k in range(n)]
    pws = {u: secret(u) for u in names}
    with ThreadPoolExecutor(n) as ex:
        rs = list(ex.map(lambda u: i.add(u, pws[u], permissions="+get", keys=f"~{u}:*", expect=None), names))
    assert [r.status for r in rs] == [201] * n, [(r.status, r.body) for r in rs]
    assert {u["username"] for u in i.users()["users"]} == set(names)
    assert sorted(ln.split()[1] for ln in i.lines()[2:]) == sorted(names)
    eff = i.effective()
    assert eff["in_sync"] is True, eff["drift"]
    assert set(names) <= {u["username"] for u in eff["users"]}
    # then every password changed, every rule changed and two users deleted, all at once
    new = {u: secret(u + "n") for u in names}
    jobs = [("PUT", u, {"password": new[u]}) for u in names[:6]] + \
           [("PUT", u, {"permissions": "+get +set"}) for u in names[6:8]] + \
           [("DELETE", u, None) for u in names[8:]]

    def run(job):
        method, u, body = job
        return i.s.request(method, f"{i.acls}/{u}", body=body, timeout=30)
    with ThreadPoolExecutor(len(jobs)) as ex:
        rs = list(ex.map(run, jobs))
    assert [r.status for r in rs] == [200] * len(jobs), [(r.status, r.body) for r in rs]
    assert sorted(ln.split()[1] for ln in i.lines()[2:]) == sorted(names[:8])
    for u in names[:6]:
        assert i.line_of(u) == f"user {u} on #{sha(new[u])} ~{u}:* +get"
        assert can_login(i.port, u, new[u]) and not can_login(i.port, u, pws[u])
    for u in names[6:8]:
        with login(i.port, u, pws[u]) as c:
            assert c.call("SET", f"{u}:k", "v") == "OK"
    for u in names[8:]:
        assert not can_login(i.port, u, pws[u])
    assert i.effective()["in_sync"] is True
    with store(i.s) as c:
        assert c("EXISTS", f"lock:instance:{i.name}") == 0


# --------------------------------------------------------------------------
# 7. the server refuses the file; the server cannot be reached

def test_server_refuses_the_file_nothing_changes(make_inst):
    """Tokens that pass validation but that the server does not accept: an
    unknown command, a flag given twice, removing a first-arg of a command
    without subcommands. ACL LOAD fails as a whole; the previous file must
    be back, the store untouched, the answer 422 with Valkey's message."""
    i = make_inst("refuse")
    p = secret("refuse")
    i.add("victim", p, permissions="+get", keys="~*")
    before = i.snapshot()
    for field, value, needle in (("permissions", "+get +nosuchcommand", "nosuchcommand"),
                                 ("permissions", "+client|nosuchsub", "client|nosuchsub"),
                                 ("permissions", "-get|x", "get|x"),
                                 ("keys", "%RR~x", "users.acl")):
        body = {"username": "newbie", "password": secret("nb"), "permissions": "+get", "keys": "~*", field: value}
        r = i.s.request("POST", i.acls, body=body)
        assert r.status == 422, (value, r)
        e = r.json()
        assert e["code"] == "acl_rejected" and needle in e["message"] and "users.acl:" in e["message"], e
        assert i.snapshot() == before, f"a refused {value!r} changed something"
        r = i.put("victim", {field: value}, expect=422)
        assert r.json()["code"] == "acl_rejected"
        assert i.snapshot() == before, f"a refused change to {value!r} changed something"
    assert i.s.get(f"{i.acls}/newbie").status == 404
    with login(i.port, "victim", p) as c:
        assert c.call("GET", "k") is None and is_noperm(c.call("SET", "k", "v"))
    # and the next good change goes through
    i.add("newbie", secret("nb2"), permissions="+get", keys="~*")
    assert i.effective()["in_sync"] is True


def test_stopped_instance_refuses_a_rule_the_server_cannot_load(make_inst):
    """With the instance stopped there is no server to ACL LOAD into, but a
    rule it cannot load (here an unknown command) must still be refused:
    accepting it writes a file on which the server aborts at start, so the
    instance cannot start until someone deletes the user."""
    i = make_inst("stopbad")
    p = secret("sb")
    i.add("keep", p, permissions="+get", keys="~*")
    i.op("stop")
    before = i.snapshot()
    r = i.add("bad", secret("sb2"), permissions="+get +nosuchcommand", keys="~*", expect=None)
    answer = (r.status, r.body[:300])
    after = i.snapshot()
    start = i.env.op(i.name, "start")
    start_answer = (start.status, start.body[:300])
    if r.status in (200, 201):          # put things back so the instance can start for the teardown
        i.delete("bad")
    assert r.status == 422 and r.json()["code"] in ("acl_rejected", "invalid_field"), \
        (f"a rule the server cannot load was accepted for a stopped instance: {answer}; "
         f"the start then answered {start_answer}")
    assert after == before
    assert start.status == 200, start_answer
    assert can_login(i.port, "keep", p)


def test_users_at_create_validated_rendered_and_enforced(aenv, make_inst):
    s = aenv.stack
    pr, pf = secret("cr-ro"), secret("cr-full")
    i = make_inst("cr", users=[{"username": "ro", "password": pr, "permissions": "+get", "keys": ["~ro:*"]},
                              {"username": "full", "password": pf}])
    assert i.line_of("ro") == f"user ro on #{sha(pr)} ~ro:* +get"
    assert i.line_of("full") == f"user full on #{sha(pf)} ~* &* +@all"
    with login(i.port, "ro", pr) as c:
        assert c.call("GET", "ro:1") is None
        assert is_noperm(c.call("SET", "ro:1", "x")) and is_noperm(c.call("GET", "other"))
    with login(i.port, "full", pf) as c:
        assert c.call("SET", "any", "x") == "OK" and c.call("PUBLISH", "any", "x") == 0
    assert {u["username"] for u in i.users()["users"]} == {"ro", "full"}
    assert i.effective()["in_sync"] is True
    # the same checks as POST /acls, with the field named by its place in the list
    ok = {"username": "u", "password": secret("cr-x")}
    wrong = []
    for users, field in (([dict(ok, permissions="+get >x", keys="~*")], "users[0].permissions"),
                         ([ok, dict(ok, username="v", keys="%R~", permissions="+get")], "users[1].keys"),
                         ([dict(ok, permissions="+get reset", keys="~*")], "users[0].permissions"),
                         ([dict(ok, permissions="(~a +get", keys="~*")], "users[0].permissions"),
                         ([dict(ok, channels=5)], "users[0].channels"),
                         ([dict(ok, username="bad\nname")], "users[0].username"),
                         ([dict(ok, nopass=True)], "users[0].nopass"),
                         ([dict(ok, enabled="yes")], "users[0].enabled")):
        n = aenv.name("crbad")
        r = s.request("POST", API, body={"name": n, "users": users}, timeout=90)
        if r.status != 422 or r.json().get("field") != field:
            wrong.append((field, r.status, r.body[:200]))
        if labelled_containers([n]) or s.get(f"{API}/{n}").status != 404:
            wrong.append((field, "something was created"))
    assert not wrong, "\n".join(map(repr, wrong))


def test_create_with_a_rule_the_server_refuses(aenv):
    """A rule that passes validation but that the server cannot load, given
    at create: nothing may be left behind, and the answer is the client's
    fault (422 with Valkey's message), not a 502 as if a dependency failed."""
    s = aenv.stack
    n = aenv.name("crrefuse")
    r = s.request("POST", API, body={"name": n, "users": [
        {"username": "u", "password": secret("crr"), "permissions": "+get +nosuchcommand", "keys": "~*"}]},
        timeout=90)
    left = (labelled_containers([n]), s.get(f"{API}/{n}").status, (aenv.inst_dir(n)).exists())
    assert left == ([], 404, False), f"a refused create left things behind: {left}"
    assert r.status == 422, f"create with a rule the server refuses answered {r.status}: {r.body[:400]!r}"
    assert "nosuchcommand" in r.json()["message"], r


def test_slow_acl_load_answer_matches_what_the_server_did(make_inst):
    """An ACL LOAD that takes longer than Valdock waits for its answer (a big
    or rule-heavy file on a slow or throttled host): whatever the answer, the
    file, the store and the server must agree afterwards. Answering an error
    and putting the old file back while the server goes on to load the new
    one leaves a user on the server that the store does not know (it can log
    in although the API said the add failed).

    The load is made slow by users whose selectors hold thousands of category
    rules (each one walks the command table) and a CPU quota of 5% on the
    container."""
    i = make_inst("slow")
    heavy = "(" + " ".join(["+@read", "-@read"] * 3500) + ")"
    for k in range(10):
        i.add(f"heavy{k}", None, permissions=["-@all", heavy], keys="~h:*")
    cid = i.container()["Id"]
    before = i.snapshot()
    p = secret("slow")
    st, out = docker_call("POST", f"/containers/{cid}/update", {"CpuPeriod": 100000, "CpuQuota": 5000})
    assert st == 200, out
    try:
        r = i.add("late", p, permissions="+get", keys="~*", expect=None)
    finally:
        st, out = docker_call("POST", f"/containers/{cid}/update", {"CpuPeriod": 100000, "CpuQuota": 100000})
        assert st == 200, out
    answer = (r.status, r.json().get("code"), r.json().get("message", "")[:200])
    # the server is single-threaded: once it answers a new client, the ACL LOAD it got is over
    def answers():
        try:
            with Resp(port=i.port, timeout=5) as c:
                return isinstance(c.call("PING"), RespError)
        except OSError:
            return False
    wait_for(answers, 60, "the server to answer again", 0.2)
    eff = i.effective()
    on_server = "late" in {u["username"] for u in eff["users"]}
    logs_in = can_login(i.port, "late", p)
    facts = {"answer": answer, "late on the server": on_server, "late logs in": logs_in,
             "in_sync": eff["in_sync"], "drift": eff["drift"], "late in the store": "late" in i.store_users(),
             "late in the file": "late" in [ln.split()[1] for ln in i.lines()]}
    if r.status == 201:
        assert on_server and logs_in and eff["in_sync"], facts
    else:
        assert r.status in (503, 504), facts
        assert i.snapshot()["file"] == before["file"] and i.store_users() == before["store"], facts
        assert not on_server and not logs_in, \
            f"the API answered {answer[0]} but the server loaded the new file: {facts}"
        assert eff["in_sync"], facts


def docker_pause(cid, on):
    subprocess.run(["docker", "pause" if on else "unpause", cid], check=True, capture_output=True, timeout=30)


def test_paused_instance_change_refused_503_nothing_changes(make_inst):
    """A running container that does not answer (docker pause): a change must
    answer 503 and leave the file and the store as they were. A paused
    server keeps its ACL in memory and resumes with it: writing the file and
    the store and answering "takes effect when it starts" leaves the server
    enforcing the old rules after the unpause (old password still valid,
    disabled user still able to log in)."""
    i = make_inst("pause")
    p, p2 = secret("pz"), secret("pz2")
    i.add("victim", p, permissions="+get", keys="~*")
    cid = i.container()["Id"]
    before = i.snapshot()
    answers = {}
    docker_pause(cid, True)
    try:
        # let the housekeeper see the pause (the state it records must not matter)
        try:
            wait_for(lambda: i.env.view(i.name)["status"] != "running", 3, "the pause to be noticed", 0.05)
        except AssertionError:
            pass
        answers["state while paused"] = i.env.view(i.name)["status"]
        answers["POST newcomer"] = i.add("newcomer", secret("nc"), expect=None)
        answers["PUT password"] = i.put("victim", {"password": p2}, expect=None)
        answers["PUT disable"] = i.put("victim", {"enabled": False}, expect=None)
        answers["DELETE"] = i.delete("victim", expect=None)
        file_while_paused = i.file()
        store_while_paused = i.store_users()
        api_while_paused = i.users()
    finally:
        docker_pause(cid, False)
    wait_for(lambda: i.env.view(i.name)["status"] == "running", 10, "running again after unpause", 0.1)
    summary = {k: (v.status, v.json().get("code") or v.json().get("message")) if hasattr(v, "status") else v
               for k, v in answers.items()}
    # what the server enforces after the unpause
    summary["after unpause: old password logs in"] = can_login(i.port, "victim", p)
    summary["after unpause: new password logs in"] = can_login(i.port, "victim", p2)
    summary["after unpause: effective in_sync"] = i.effective()["in_sync"]
    for k in ("POST newcomer", "PUT password", "PUT disable", "DELETE"):
        assert answers[k].status == 503, f"{k} on a paused instance: {summary}"
        assert answers[k].json()["status"] == "error", answers[k]
    assert file_while_paused == before["file"], "the ACL file changed while the instance was paused"
    assert store_while_paused == before["store"] and api_while_paused == before["api"]
    assert i.snapshot() == before
    assert summary["after unpause: old password logs in"] and not summary["after unpause: new password logs in"]
    assert summary["after unpause: effective in_sync"]


# --------------------------------------------------------------------------
# 8. no password or hash in any answer or log line

def test_password_typed_into_a_rule_field_is_not_echoed(make_inst, aenv):
    """A password pasted into a rule field (`>secret`, `#<hash>`) is refused
    with a 422 naming the field, and the answer must not hand the secret (or
    the hash) back: error bodies end up in proxies, dashboards and logs."""
    i = make_inst("echo")
    clear = f"echo-{secrets.token_hex(8)}-secret"       # not in SECRETS: checked here only
    h = sha(clear)
    n_log = len(aenv.stack.log_text())
    got = []
    for field, value in (("permissions", f"+get >{clear}"), ("keys", f"~* >{clear}"),
                         ("channels", f"&* <{clear}"), ("permissions", f"+get #{h}"),
                         ("permissions", f"(~a +get >{clear})")):
        r = i.add("echo", secret("echo"), **{"permissions": "+get", "keys": "~*", field: value}, expect=None)
        invalid(r, field)
        got.append((field, value[:12], r.json()["message"]))
    leaked = [g for g in got if clear in g[2] or h in g[2] or h[:40] in g[2]]
    assert not leaked, "422 answers echo the password or hash they refuse:\n" + "\n".join(map(repr, leaked))
    log = aenv.stack.log_text()[n_log:]
    assert clear not in log and h not in log


# runs last: sweeps every answer and the log of the module's stack

def test_zz_no_secret_in_any_answer_or_log(make_inst, aenv):
    i = make_inst("leak")
    p1, p2 = secret("leak1") + "#1 $x", secret("leak2") + "'\"q"
    SECRETS.extend([p1, p2])
    i.add("alice", p1, permissions="+get", keys="~*")
    # refused requests carrying passwords
    i.add("alice", p1, expect=409)
    i.add("bob", p1, permissions="+nosuchcommand", expect=422)
    i.add("bob", p1, nopass=True, expect=422)
    i.add("bob", None, passwords=[p1, p1], expect=422)
    i.add("bob", p1 + "\x01", expect=422)
    i.add("bob", p1, bogus=p2, expect=422)
    i.put("alice", {"add_password": p1}, expect=422)
    i.put("alice", {"remove_password": p2}, expect=422)
    i.put("alice", {"password": p2})
    i.put("alice", {"add_password": p1})
    i.put("alice", {"remove_password": p2})
    for path in (i.acls, f"{i.acls}/alice", f"{API}/{i.name}/effective-acls"):
        assert i.s.get(path).status == 200
    i.s.request("POST", i.acls, body=('{"username":"carol","password":"%s"' % p2),
                headers={"Content-Type": "application/json"})
    assert can_login(i.port, "alice", p1)
    # effective-acls masks every hash, of every user
    for u in i.effective()["users"]:
        for t in u["rules"]:
            assert not re.fullmatch(r"[#!][0-9a-fA-F]{64}", t), (u["username"], t)
    leaks = []
    bodies = list(aenv.stack.bodies)
    log = aenv.stack.log_text()
    assert len(bodies) > 50
    for pw in SECRETS:
        h = sha(pw)
        for needle in (pw, h, h.upper()):
            enc = needle.encode()
            for b in bodies:
                if enc in b or needle.encode("unicode_escape") in b or \
                        needle.replace('"', '\\"').encode() in b:
                    leaks.append(("body", needle[:20], b[:160]))
            if needle in log or needle.replace('"', '\\"') in log:
                leaks.append(("log", needle[:20], [ln for ln in log.splitlines() if needle in ln][:1]))
    assert not leaks, "secrets in answers or the log:\n" + "\n".join(map(repr, leaks[:10]))
    # and the module left nothing behind: containers and records agree, no lock is held
    aenv.check()
