"""Black-box harness: a real `jobq serve` process on a free loopback port,
with its own data folder, spoken to over real sockets."""
import contextlib
import http.server
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("JOBQ_BIN", str(ROOT / "build" / "san" / "jobq"))


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: looks at SQLite's files or at what only "
                            "the SQLite store has; skipped under JOBQ_TEST_STORE=postgres[-cluster]")
    config.addinivalue_line("markers", "cluster_differs(why): asserts what a cluster node does "
                            "differently, by design (docs/architecture.md, cluster mode); skipped "
                            "under JOBQ_TEST_STORE=postgres-cluster")


def pytest_collection_modifyitems(config, items):
    store = os.environ.get("JOBQ_TEST_STORE", "")
    if not store.startswith("postgres"):
        return
    for item in items:
        if "sqlite_only" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="SQLite store only"))
        differs = item.get_closest_marker("cluster_differs")
        if store == "postgres-cluster" and differs:
            item.add_marker(pytest.mark.skip(reason="cluster mode: " + differs.args[0]))


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBQ_")}
    env["JOBQ_ENV_FILE"] = "/nonexistent/.env"
    # Most tests stop servers with jobs still leased; the shutdown tests set their own grace.
    env["JOBQ_SHUTDOWN_GRACE"] = "0"
    # A free port for the Faktory protocol too: tests run servers side by side.
    env["JOBQ_FAKTORY_LISTEN"] = "127.0.0.1:0"
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.update(extra or {})
    return env


class Server:
    def __init__(self, workdir: Path, env=None, args=()):
        self.dir = workdir
        self.data = workdir / "data"
        self.log_path = workdir / "server.log"
        self.env = clean_env(env)
        self.args = list(args)
        self.proc = None
        self.url = None
        self.fwp_port = None
        self.session = requests.Session()

    def start(self, timeout=20):
        self.log_path.touch()
        offset = self.log_path.stat().st_size
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(self.data), *self.args],
            stdout=subprocess.DEVNULL, stderr=self.log_file, env=self.env, cwd=self.dir)
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.log_path.read_bytes()[offset:].decode(errors="replace")
            m = re.search(r'"msg":"listening".*?"port":(\d+)', text)
            if m:
                self.url = f"http://127.0.0.1:{m.group(1)}"
                f = re.search(r'"msg":"faktory protocol listening".*?"port":(\d+)', text)
                self.fwp_port = int(f.group(1)) if f else None
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"jobq exited with {self.proc.returncode}:\n{text}")
            time.sleep(0.02)
        raise RuntimeError("jobq did not start:\n" + self.log_text())

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stops the server and returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.log_file.close()
        self.proc = None
        return code

    def kill(self):
        return self.stop(signal.SIGKILL)

    def restart(self):
        assert self.stop() == 0, self.log_text()
        return self.start()

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def log_lines(self):
        out = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    # HTTP helpers: every call has a timeout so a hung server fails the test.
    def req(self, method, path, body=None, raw=None, timeout=10, **kw):
        if raw is not None:
            return self.session.request(method, self.url + path, data=raw, timeout=timeout, **kw)
        return self.session.request(method, self.url + path, json=body, timeout=timeout, **kw)

    def post(self, path, body=None, **kw):
        return self.req("POST", path, body, **kw)

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def enqueue(self, **job):
        job.setdefault("type", "t")
        r = self.post("/v1/jobs", job)
        assert r.status_code in (200, 201), r.text
        return r.json()

    def lease(self, worker="w1", queues=None, max=1, wait_ms=0):
        body = {"worker": worker, "max": max, "wait_ms": wait_ms}
        if queues is not None:
            body["queues"] = queues
        r = self.post("/v1/lease", body, timeout=wait_ms / 1000 + 10)
        assert r.status_code == 200, r.text
        return r.json()["jobs"]

    def wait_finished(self, job_id, timeout=15):
        """Polls until the job is completed, failed or cancelled; returns it."""
        end = time.time() + timeout
        while True:
            j = self.job(job_id)
            if j["state"] in ("completed", "failed", "cancelled"):
                return j
            if time.time() > end:
                raise AssertionError(f"{job_id} is still {j['state']}")
            time.sleep(0.05)

    def job(self, job_id):
        r = self.get(f"/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        return r.json()


@contextlib.contextmanager
def http_server(handler):
    """A real HTTP server on a free loopback port, in a thread; yields its URL."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def runner_job(server, jid, type_, queue, args, **extra):
    """Enqueues a job for a built-in runner, retried at once if it fails."""
    body = {"id": jid, "type": type_, "queue": queue, "args": args,
            "backoff": {"initial_ms": 0, "jitter": 0}, **extra}
    r = server.post("/v1/jobs", body)
    assert r.status_code == 201, r.text


class Producers:
    """Threads that enqueue jobs {"id": f"{prefix}{n}-{i}", **extra} one at
    a time until stopped (or max_each); `acked` holds every id answered 201."""

    def __init__(self, url, n, prefix, max_each=100000, **extra):
        self.url, self.prefix, self.max_each, self.extra = url, prefix, max_each, extra
        self.acked, self.lock, self.stopping = set(), threading.Lock(), threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(k,)) for k in range(n)]
        for t in self.threads:
            t.start()

    def _run(self, n):
        s = requests.Session()
        for i in range(self.max_each):
            if self.stopping.is_set():
                return
            jid = f"{self.prefix}{n}-{i}"
            body = {"type": "t", **self.extra, "id": jid}
            try:
                r = s.post(self.url + "/v1/jobs", json=body, timeout=5)
            except requests.RequestException:
                return
            if r.status_code == 201:
                with self.lock:
                    self.acked.add(jid)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(10)
        return self.acked


def assert_clean_log(server):
    text = server.log_text()
    assert "AddressSanitizer" not in text, text[-4000:]
    assert "runtime error" not in text, text[-4000:]
    assert "LeakSanitizer" not in text, text[-4000:]


@pytest.fixture
def make_server(tmp_path, request):
    servers = []
    # JOBQ_TEST_STORE=postgres: every server without a database of its own
    # gets a new PostgreSQL database (pg.py), so a suite runs on that store;
    # postgres-cluster: the same, as a node in cluster mode.
    store = os.environ.get("JOBQ_TEST_STORE", "")
    on_pg = store.startswith("postgres")

    def make(env=None, args=(), subdir="srv", start=True):
        d = tmp_path / f"{subdir}{len(servers)}"
        d.mkdir()
        if on_pg and "JOBQ_DATABASE_URL" not in (env or {}):
            env = {**(env or {}),
                   "JOBQ_DATABASE_URL": request.getfixturevalue("postgres").new_database()}
            if store == "postgres-cluster":
                env = {"JOBQ_CLUSTER": "true", "JOBQ_CLAIM_POLL": "50ms", **env}
        s = Server(d, env=env, args=args)
        servers.append(s)
        return s.start() if start else s

    yield make
    # Every server stops before any is judged: a failed assertion must not
    # leave the others running (a CI run left two behind that way).
    codes = []
    for s in servers:
        if s.proc is not None:
            try:
                codes.append((s, s.stop()))
            except subprocess.TimeoutExpired:  # killed by stop() itself
                codes.append((s, "no exit within the stop's timeout"))
    for s, code in codes:
        assert code == 0, f"unclean shutdown ({code}):\n" + s.log_text()[-4000:]
    for s in servers:
        if s.log_path.exists():
            assert_clean_log(s)


@pytest.fixture
def server(make_server):
    return make_server()


def assert_counts_match_rows(db):
    """The job counts statistics read (state_counts, kept by the writer)
    are those of the rows themselves."""
    kept = {(q, st): n for q, st, n in db.execute("SELECT queue, state, n FROM state_counts WHERE n <> 0")}
    rows = {(q, st): n for q, st, n in db.execute("SELECT queue, state, COUNT(*) FROM jobs GROUP BY 1, 2")}
    assert kept == rows


def assert_problem(r, status, type_, field=None):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["type"] == type_, body
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["request_id"]
    if field is not None:
        assert body.get("field") == field, body
    return body


@pytest.fixture(scope="session")
def postgres():
    """One throwaway PostgreSQL cluster for the session (pg.py); each test
    takes a new database of it."""
    from pg import Postgres
    cluster = Postgres()
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_server(make_server, postgres):
    """make_server on a new PostgreSQL database (or the one given as url)."""
    def make(env=None, url=None, **kw):
        env = dict(env or {})
        env["JOBQ_DATABASE_URL"] = url or postgres.new_database()
        return make_server(env=env, **kw)
    return make


# Cluster mode (test_cluster*.py): a node's TTL short enough for tests.
TTL_MS = 1500


@pytest.fixture
def cluster(pg_server, postgres):
    """make(n): n nodes on one new database."""
    def make(n=3, env=None):
        url = postgres.new_database()
        base = {"JOBQ_CLUSTER": "true", "JOBQ_NODE_TTL": f"{TTL_MS}ms",
                "JOBQ_CLAIM_POLL": "100ms", **(env or {})}
        nodes = [pg_server(env=base, url=url) for _ in range(n)]
        for node in nodes:
            wait_ready(node)
        return nodes, url
    return make


def wait_ready(node, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if node.get("/health/ready").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError("node never ready:\n" + node.log_text()[-3000:])


def lease_one(node, queue="q"):
    got = node.lease(queues=[queue], wait_ms=2000)
    assert len(got) == 1, got
    return got[0]
