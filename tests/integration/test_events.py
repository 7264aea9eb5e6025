"""GET /v1/events: the dashboard's live data as server-sent events, read
over real sockets by a plain SSE parser."""
import json
import socket
import time

import pytest

from conftest import assert_problem


class Stream:
    """One event stream on its own socket, parsed as text/event-stream."""

    def __init__(self, server, path="/v1/events", headers=""):
        host, port = server.url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        self.buf = b""
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ")[1])
        self.head = head.decode()
        self.chunked = "transfer-encoding: chunked" in self.head.lower()
        self.text = ""

    def _until(self, mark):
        while mark not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(self.buf[-200:])
            self.buf += data
        i = self.buf.index(mark) + len(mark)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _more(self):
        if not self.chunked:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.text += data.decode()
            return
        size = int(self._until(b"\r\n").strip(), 16)
        if size == 0:
            raise EOFError
        while len(self.buf) < size + 2:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.buf += data
        self.text += self.buf[:size].decode()
        self.buf = self.buf[size + 2:]

    def event(self, timeout=5):
        """The next (name, data) pair; data parsed as JSON when it has any."""
        self.sock.settimeout(timeout)
        while True:
            while "\n\n" not in self.text:
                self._more()
            block, self.text = self.text.split("\n\n", 1)
            name, data = "message", None
            for line in block.split("\n"):
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
            if data is not None or name != "message":
                return name, data

    def until(self, pred, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            name, data = self.event(timeout=max(0.1, deadline - time.time()))
            if pred(name, data):
                return name, data
        raise AssertionError("no such event in time")

    def close(self):
        self.sock.close()


def test_a_stream_starts_with_a_snapshot_then_ticks_each_second(server):
    server.enqueue(id="e1", queue="eq")
    s = Stream(server)
    assert s.status == 200
    assert "content-type: text/event-stream" in s.head.lower()
    assert "cache-control: no-store" in s.head.lower()
    name, snap = s.event()
    assert name == "snapshot"
    assert snap["totals"]["queued"] == 1
    assert [q["name"] for q in snap["queues"]] == ["eq"]
    t0 = time.time()
    name, tick = s.event(timeout=3)
    assert name == "tick" and tick["t"] > snap["t"] - 1
    name, tick2 = s.event(timeout=3)
    # A tick a second: the second one comes about a second after the first.
    assert 0.5 < (tick2["t"] - tick["t"]) / 1000 < 1.6, (tick["t"], tick2["t"])
    assert time.time() - t0 < 3.5
    s.close()


def test_job_events_and_totals_arrive_without_polling(server):
    s = Stream(server)
    s.event()  # snapshot
    server.enqueue(id="live1", queue="lq", priority="high")
    _, tick = s.until(lambda n, d: n == "tick" and any(j["id"] == "live1" for j in d["jobs"]))
    ev = next(j for j in tick["jobs"] if j["id"] == "live1")
    assert ev == {"id": "live1", "queue": "lq", "type": "t", "event": "enqueued",
                  "state": "queued", "priority": "high"}
    assert tick["totals"]["queued"] == 1
    (job,) = server.lease(queues=["lq"])
    server.post(f"/v1/jobs/{job['id']}/complete", {"lease_id": job["lease_id"]})
    _, tick = s.until(lambda n, d: n == "tick" and d["last_hour"]["completed"] == 1)
    assert tick["totals"]["queued"] == 0
    assert tick["workers"] == 1
    s.close()


def test_a_flood_of_jobs_is_capped_per_tick(server):
    s = Stream(server)
    s.event()
    jobs = [{"queue": "fq", "type": "t"} for _ in range(300)]
    r = server.post("/v1/jobs/batch", {"jobs": jobs})
    assert r.status_code in (200, 201), r.text
    _, tick = s.until(lambda n, d: n == "tick" and (d["jobs"] or d["jobs_dropped"]))
    assert len(tick["jobs"]) == 100
    assert tick["jobs_dropped"] == 200
    s.close()


def test_streams_are_capped_and_a_closed_one_frees_its_place(make_server):
    server = make_server(env={"JOBQ_MAX_STREAMS": "2"})
    a, b = Stream(server), Stream(server)
    assert a.status == b.status == 200
    r = server.get("/v1/events")
    assert_problem(r, 503, "unavailable")
    assert "JOBQ_MAX_STREAMS" in r.json()["detail"]
    assert r.headers["Retry-After"]
    a.close()
    deadline = time.time() + 5
    while time.time() < deadline:  # the server sees the close at its next write
        c = Stream(server)
        if c.status == 200:
            break
        c.close()
        time.sleep(0.3)
    assert c.status == 200
    b.close()
    c.close()


def test_a_stream_needs_a_reader_key_when_keys_are_set(make_server):
    server = make_server(env={"JOBQ_API_KEYS": "ops:admin:s3cret-admin-key"})
    s = Stream(server)
    assert s.status == 401
    s.close()
    s = Stream(server, headers="Authorization: Bearer s3cret-admin-key\r\n")
    assert s.status == 200
    assert s.event()[0] == "snapshot"
    s.close()


def test_unknown_query_parameters_are_refused(server):
    r = server.get("/v1/events?since=1")
    assert_problem(r, 400, "validation", "since")


def test_a_client_that_never_reads_does_not_hold_the_server(make_server):
    server = make_server()
    host, port = server.url.removeprefix("http://").split(":")
    # A stream whose client reads nothing, with a tiny receive buffer.
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    stuck.connect((host, int(port)))
    stuck.sendall(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
    # Enough work that each tick is large, and time for several.
    server.post("/v1/jobs/batch", {"jobs": [{"queue": f"q{i}", "type": "t"} for i in range(150)]})
    time.sleep(2.5)
    t0 = time.time()
    assert server.get("/v1/stats").status_code == 200
    assert time.time() - t0 < 2
    s = Stream(server)
    assert s.event()[0] == "snapshot"
    s.close()
    stuck.close()


def test_shutdown_ends_every_stream_at_once(make_server):
    server = make_server(env={"JOBQ_SHUTDOWN_GRACE": "30s"})
    s = Stream(server)
    s.event()
    t0 = time.time()
    server.proc.send_signal(15)
    name, _ = s.until(lambda n, d: n == "bye")
    assert server.proc.wait(10) == 0
    assert time.time() - t0 < 5  # not the 30 s grace: a stream holds no work
    server.proc = None
    server.log_file.close()
    s.close()


@pytest.mark.cluster_differs("a node's breaker changes are its own")
def test_breakers_keep_their_state_changes(server):
    for i in range(5):
        server.enqueue(queue="bq", type="charge", breaker_key="pay.example", max_retries=0)
        (job,) = server.lease(queues=["bq"])
        server.post(f"/v1/jobs/{job['id']}/fail", {"lease_id": job["lease_id"],
                    "error": {"type": "unavailable", "message": "down"}})
    s = Stream(server)  # opened after the change: the history has it anyway
    body = server.get("/v1/breakers").json()
    (change,) = body["changes"]
    assert (change["key"], change["from"], change["to"]) == ("pay.example", "closed", "open")
    assert change["at"].endswith("Z")
    server.post("/v1/breakers/pay.example/reset")
    _, tick = s.until(lambda n, d: n == "tick" and d["breaker_events"])
    assert tick["breaker_events"] == [{"key": "pay.example", "from": "open", "to": "closed"}]
    assert [c["to"] for c in server.get("/v1/breakers").json()["changes"]] == ["closed", "open"]
    s.close()
