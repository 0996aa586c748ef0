"""Fixtures for the API and process tests of a whole `valdock serve` stack.

A Stack runs `valdock serve` (internal or external store, FastCGI pool,
nginx) in a fresh data directory on a free loopback port, captures its log,
and knows its process tree (read from /proc). Every stack a test starts is
stopped in teardown, which also checks that no process of it survived.

The binary is $VALDOCK_BIN (default _build/main/valdock, relative to the
current directory or else to the repository root). Each test's stacks live
in a /tmp/vdt-* (per module: /tmp/vdm-*) directory, removed afterwards
unless VALDOCK_TEST_KEEP=1. Needs a Docker engine on /var/run/docker.sock,
nginx and valkey-server.

    /usr/bin/python3 -m pytest -q tests/api
    VALDOCK_BIN=_build/asan/valdock /usr/bin/python3 -m pytest -q tests/api
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WEB_ROOT = REPO / "frontend" / "build"
NGINX_TEMPLATE = REPO / "nginx" / "valdock.conf.in"
DOCKER_SOCK = "/var/run/docker.sock"
KEEP = os.environ.get("VALDOCK_TEST_KEEP") == "1"


def valdock_bin():
    raw = os.environ.get("VALDOCK_BIN") or "_build/main/valdock"
    p = Path(raw)
    if not p.is_absolute():
        p = Path.cwd() / raw if (Path.cwd() / raw).exists() else REPO / raw
    return p.resolve()


# --------------------------------------------------------------------------
# small helpers

def wait_for(pred, timeout, what, interval=0.05):
    """Polls pred() until it returns a truthy value; fails after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_tmpdir(prefix):
    """A short directory under /tmp (unix socket paths are bounded) that
    nginx's unprivileged workers may traverse."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(d, 0o711)
    return d


# --------------------------------------------------------------------------
# /proc

def proc_stat(pid):
    """(state, ppid, starttime) or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[19])


def alive(pid, starttime=None):
    st = proc_stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    return starttime is None or st[2] == starttime


def all_pids():
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


def children_of(pid):
    out = []
    for p in all_pids():
        st = proc_stat(p)
        if st is not None and st[1] == pid and st[0] not in ("Z", "X"):
            out.append(p)
    return out


def descendants_of(pid):
    out, todo = [], [pid]
    while todo:
        for c in children_of(todo.pop()):
            out.append(c)
            todo.append(c)
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def exe(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def socket_inodes(pid):
    out = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(link)
    return out


# --------------------------------------------------------------------------
# HTTP

class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers          # list of (name, value)
        self.body = body                # bytes

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def json(self):
        return json.loads(self.body.decode())

    def __repr__(self):
        return f"<Response {self.status} {self.headers!r} {self.body[:300]!r}>"


def http_request(port, method, path, body=None, headers=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.reason, r.getheaders(), data)
    finally:
        conn.close()


def raw_request(port, data, timeout=10):
    """Sends bytes as they are and reads one answer: its headers, then as
    many body bytes as its Content-Length says, else (and always for HEAD)
    until the server closes (send `Connection: close`)."""
    head_req = data.startswith(b"HEAD ")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        raw = b""
        need = None
        while True:
            if need is None and b"\r\n\r\n" in raw:
                hdr = raw.partition(b"\r\n\r\n")[0].decode("latin-1")
                m = re.search(r"(?im)^content-length:\s*(\d+)\s*$", hdr)
                if head_req:
                    need = -1       # read to the end: any byte after the headers is a bug
                elif m:
                    need = len(hdr) + 4 + int(m.group(1))
            if need is not None and need >= 0 and len(raw) >= need:
                break
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            raw += b
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3}) ?(.*)", lines[0])
    assert m, f"no HTTP status line in {raw[:200]!r}"
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    return Response(int(m.group(1)), m.group(2), headers, body)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


def docker_get(path, sock=DOCKER_SOCK):
    conn = UnixHTTPConnection(sock)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, json.loads(r.read().decode())
    finally:
        conn.close()


# --------------------------------------------------------------------------
# the stack

class Stack:
    """One `valdock serve` process tree.

    env: extra environment; a value of None removes the variable.
    workers: VALDOCK_WORKERS, or None to leave it unset (config file wins).
    """

    active = []

    def __init__(self, root, name="stack", workers=4, env=None, data_dir=None, port=None):
        self.root = Path(root)
        self.name = name
        self.data = Path(data_dir) if data_dir else self.root / "data"
        self.port = port or free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.log_path = self.root / f"{name}.log"
        self.bin = valdock_bin()
        e = {k: v for k, v in os.environ.items() if not k.startswith("VALDOCK_") and k != "DOCKER_HOST"}
        e.update({
            "VALDOCK_DATA_DIR": str(self.data),
            "VALDOCK_HTTP_ADDR": self.addr,
            "VALDOCK_WEB_ROOT": str(WEB_ROOT),
            "VALDOCK_NGINX_TEMPLATE": str(NGINX_TEMPLATE),
        })
        if workers is not None:
            e["VALDOCK_WORKERS"] = str(workers)
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = str(v)
        self.env = e
        self.proc = None
        self.rc = None
        self.stopped = False
        self.bodies = []           # every response body this helper received
        self.known = {}            # pid -> starttime of every descendant seen
        self._log = None
        self._lock = threading.Lock()

    # -- life cycle

    def start(self, wait=True, expect_health=(200,), timeout=30):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(self.bin), "serve"], env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        Stack.active.append(self)
        if wait:
            self.wait_ready(expect_health, timeout)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def wait_ready(self, expect_health=(200,), timeout=30):
        """Until /system/health is answered by the pool (not nginx's fallback)
        with one of the expected statuses."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"valdock exited with {self.proc.returncode} before it was ready\n"
                                     + self.log_tail())
            try:
                r = self.request("GET", "/api/v1/system/health", timeout=5)
                last = r
                if r.status in expect_health and r.header("X-Request-Id"):
                    self.snapshot()
                    return r
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise AssertionError(f"stack not ready within {timeout} s (last: {last!r})\n" + self.log_tail())

    def signal(self, sig):
        self.snapshot()
        os.kill(self.pid, sig)

    def stop(self, timeout=None):
        """SIGTERM to the master; returns its exit code. Verifies nothing of
        the stack survives (killing leftovers before failing)."""
        if self.proc is None:
            return None
        if self.stopped:
            return self.rc
        self.stopped = True
        if self.proc.poll() is None:
            self.snapshot()
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.rc = self.proc.wait(timeout=timeout or 40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.rc = self.proc.wait()
                self._close()
                self.kill_leftovers()
                raise AssertionError(f"master did not exit within {timeout or 40} s of SIGTERM\n"
                                     + self.log_tail())
        else:
            self.rc = self.proc.returncode
        self._close()
        left = self.leftovers()
        if left:
            self.kill_leftovers()
            raise AssertionError(f"processes of the stack survived it: {left}\n" + self.log_tail())
        self.check_sanitizers()
        return self.rc

    SANITIZER = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|runtime error: ")

    def check_sanitizers(self):
        """A sanitizer build reports into the log: any report fails the test."""
        lines = self.log_text().splitlines()
        hits = [i for i, line in enumerate(lines) if self.SANITIZER.search(line)]
        if hits:
            raise AssertionError("sanitizer report in the log:\n" + "\n".join(lines[hits[0]:hits[0] + 40]))

    def wait_exit(self, timeout):
        """Waits for the master to exit on its own (noting its children
        meanwhile); its exit code, or None if it still runs."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.snapshot()
            time.sleep(0.05)
        self.rc = self.proc.poll()
        return self.rc

    def _close(self):
        if self in Stack.active:
            Stack.active.remove(self)
        if self._log is not None:
            self._log.close()
            self._log = None

    def snapshot(self):
        """Remembers every process of the tree, to check they are gone later."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for p in descendants_of(self.pid):
            st = proc_stat(p)
            if st is not None:
                self.known.setdefault(p, st[2])

    def leftovers(self):
        left = [(p, cmdline(p)) for p, t in self.known.items() if alive(p, t)]
        marker = str(self.data) + "/"
        for p in all_pids():
            if p != os.getpid() and marker in cmdline(p) and alive(p) and p not in [x[0] for x in left]:
                left.append((p, cmdline(p)))
        return left

    def kill_leftovers(self):
        for p, _ in self.leftovers():
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass

    # -- processes

    def processes(self):
        """{'worker': [...], 'housekeeper': [...], 'store': [...], 'nginx': [...]}
        of the master's live children. A valdock child holding the master's
        listening socket is a worker; the housekeeper closes it."""
        kinds = {"worker": [], "housekeeper": [], "store": [], "nginx": [], "other": []}
        if self.proc.poll() is not None:
            return kinds
        master_socks = socket_inodes(self.pid)
        binpath = str(self.bin)
        for c in children_of(self.pid):
            x = exe(c)
            if x.startswith(binpath):
                kind = "worker" if socket_inodes(c) & master_socks else "housekeeper"
            elif os.path.basename(x).startswith("valkey-"):   # valkey-server links to valkey-check-rdb
                kind = "store"
            elif "nginx" in os.path.basename(x):
                kind = "nginx"
            else:
                kind = "other"
            kinds[kind].append(c)
            st = proc_stat(c)
            if st is not None:
                self.known.setdefault(c, st[2])
        return kinds

    def workers(self):
        return sorted(self.processes()["worker"])

    def wait_workers(self, n, timeout=20, exclude=()):
        """Until exactly n workers run, none of them in exclude."""
        ex = set(exclude)

        def ok():
            w = self.workers()
            return w if len(w) == n and not (set(w) & ex) else None
        return wait_for(ok, timeout, f"{n} workers (excluding {sorted(ex)}); have {self.workers()}")

    def one(self, kind, timeout=20):
        return wait_for(lambda: (self.processes()[kind] or [None])[0], timeout, f"a {kind} process")

    # -- HTTP

    def request(self, method, path, body=None, headers=None, timeout=10):
        r = http_request(self.port, method, path, body, headers, timeout)
        with self._lock:
            self.bodies.append(r.body)
        return r

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def put_json(self, path, doc, **kw):
        return self.request("PUT", path, body=doc, **kw)

    def raw(self, data, timeout=10):
        r = raw_request(self.port, data, timeout)
        with self._lock:
            self.bodies.append(r.body)
        return r

    # -- log

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=60):
        lines = self.log_text().splitlines()
        return f"--- last {min(n, len(lines))} lines of {self.log_path} ---\n" + "\n".join(lines[-n:])

    def wait_log(self, pattern, timeout=20, count=1):
        rx = re.compile(pattern)
        return wait_for(lambda: len(rx.findall(self.log_text())) >= count, timeout,
                        f"{count}x /{pattern}/ in the log\n" + self.log_tail(20))


class ExternalStore:
    """A valkey-server of the test's own on a unix socket, with a password."""

    active = []

    def __init__(self, root, password):
        self.root = Path(root)
        self.sock = self.root / "ext.sock"
        self.password = password
        self.proc = None
        self.log_path = self.root / "ext-valkey.log"
        self.dir = self.root / "ext-store"
        self.dir.mkdir(exist_ok=True)

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["valkey-server", "--port", "0", "--unixsocket", str(self.sock), "--unixsocketperm", "700",
             "--requirepass", self.password, "--save", "", "--appendonly", "no", "--dir", str(self.dir),
             "--daemonize", "no", "--loglevel", "warning"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        ExternalStore.active.append(self)

        def answers():
            if self.proc.poll() is not None:
                raise AssertionError(f"external valkey-server exited: {self.log_path.read_text()}")
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(2)
                    s.connect(str(self.sock))
                    s.sendall(f"AUTH {self.password}\r\nPING\r\n".encode())
                    buf = b""
                    while b"PONG" not in buf:
                        b = s.recv(100)
                        if not b:
                            break
                        buf += b
                    return b"PONG" in buf
            except OSError:
                return False
        wait_for(answers, 20, "the external store to answer")
        return self

    def kill(self, sig=signal.SIGKILL):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=20)
        if self in ExternalStore.active:
            ExternalStore.active.remove(self)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.kill(signal.SIGTERM)


# --------------------------------------------------------------------------
# fixtures and hooks

@pytest.fixture(scope="session", autouse=True)
def _prerequisites():
    b = valdock_bin()
    if not os.access(b, os.X_OK):
        pytest.exit(f"valdock binary {b} not found: build it (scripts/setup build) or set VALDOCK_BIN", 2)
    if not (WEB_ROOT / "index.html").exists():
        pytest.exit(f"{WEB_ROOT}/index.html missing: build the frontend (scripts/setup build)", 2)
    for prog in ("nginx", "valkey-server"):
        if shutil.which(prog) is None and not Path("/usr/sbin", prog).exists():
            pytest.exit(f"{prog} is not installed (scripts/setup)", 2)
    if "/usr/sbin" not in os.environ.get("PATH", ""):
        os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin"


class StackFactory:
    def __init__(self, prefix):
        self.root = make_tmpdir(prefix)
        self.stacks = []
        self.stores = []

    def __call__(self, name="stack", **kw):
        s = Stack(self.root, name=name, **kw)
        self.stacks.append(s)
        return s

    def external_store(self, password):
        st = ExternalStore(self.root, password)
        self.stores.append(st)
        return st

    def close(self):
        errors = []
        for s in self.stacks:
            try:
                s.stop()
            except AssertionError as e:
                errors.append(str(e))
        for st in self.stores:
            st.stop()
        if not errors and not KEEP:
            shutil.rmtree(self.root, ignore_errors=True)
        if errors:
            raise AssertionError("teardown: " + "\n".join(errors))


@pytest.fixture
def stacks():
    """Makes stacks for one test; stops and checks them all afterwards."""
    f = StackFactory("vdt-")
    yield f
    f.close()


@pytest.fixture(scope="module")
def module_stacks():
    f = StackFactory("vdm-")
    yield f
    f.close()


@pytest.fixture(scope="module")
def shared_stack(module_stacks):
    """One stack shared by the read-mostly tests of a module."""
    return module_stacks("shared").start()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and (Stack.active or ExternalStore.active):
        for s in list(Stack.active):
            rep.sections.append((f"valdock log ({s.name}, pid {s.proc.pid})", s.log_tail(80)))


# --------------------------------------------------------------------------
# load

class Load:
    """A bounded concurrent load: `threads` threads each sending up to
    `per_thread` GETs of `path` (one connection per request, each with its
    own timeout), stopping early when stop() is called."""

    def __init__(self, stack, threads=8, per_thread=200, path="/api/v1/system/health", timeout=10):
        self.stack = stack
        self.path = path
        self.timeout = timeout
        self.per_thread = per_thread
        self.results = []          # (status, body, request id) or ("exception", repr, None)
        self.done = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self):
        for _ in range(self.per_thread):
            if self._stop.is_set():
                return
            try:
                r = http_request(self.stack.port, "GET", self.path, timeout=self.timeout)
                res = (r.status, r.body, r.header("X-Request-Id"))
            except Exception as e:       # noqa: BLE001 - every failure is a result here
                res = ("exception", repr(e), None)
            with self._lock:
                self.results.append(res)
                self.done += 1

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def wait_done(self, n, timeout=60):
        wait_for(lambda: self.done >= n or not any(t.is_alive() for t in self._threads), timeout,
                 f"{n} requests of the load to complete")

    def stop(self):
        self._stop.set()

    def join(self, timeout=120):
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        hung = sum(t.is_alive() for t in self._threads)
        assert hung == 0, f"{hung} load threads still running after {timeout} s (a request hung)"
        return self.results
