"""Built-in webhook runner (job type http.request on queue "webhook") against
a real HTTP server on loopback, started by the test."""
import http.server
import json
import subprocess
import time

import pytest

from conftest import BIN, clean_env, http_server, runner_job


class Hook(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode()
        Hook.seen.append((self.command, self.path, body, self.headers.get("X-Token")))
        if self.path == "/slow":
            time.sleep(3)
        if self.path == "/redir":
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        code = {"/ok": 200, "/boom": 500, "/bad": 400, "/gone": 404, "/limit": 429}.get(self.path, 200)
        reply = json.dumps({"path": self.path, "got": body}).encode()
        try:
            self.send_response(code)
            if code == 429:
                self.send_header("Retry-After", "2")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
        except OSError:
            pass  # the runner gave up first (timeout test)

    do_GET = do_POST = do_PUT = do_DELETE = do_any

    def log_message(self, *args):
        pass


@pytest.fixture
def hook_server():
    Hook.seen = []
    with http_server(Hook) as url:
        yield url


@pytest.fixture
def runner_server(make_server):
    return make_server(env={"JOBQ_RUNNERS": "webhook=4"})


def hook_job(server, jid, args, **extra):
    runner_job(server, jid, "http.request", "webhook", args, **extra)




def test_success_keeps_status_and_body(runner_server, hook_server):
    hook_job(runner_server, "ok", {"url": hook_server + "/ok", "body": {"n": 1},
                                   "headers": {"X-Token": "t0k"}})
    j = runner_server.wait_finished("ok")
    assert j["state"] == "completed" and j["attempts"] == 1
    assert j["result"]["status"] == 200 and j["result"]["content_type"] == "application/json"
    assert json.loads(j["result"]["body"])["got"] == '{"n":1}'
    assert ("POST", "/ok", '{"n":1}', "t0k") in Hook.seen


def test_failures_map_to_the_taxonomy(runner_server, hook_server):
    hook_job(runner_server, "boom", {"url": hook_server + "/boom"}, max_retries=1)
    hook_job(runner_server, "bad", {"url": hook_server + "/bad", "method": "PUT"}, max_retries=3)
    hook_job(runner_server, "gone", {"url": hook_server + "/gone"}, max_retries=3)
    hook_job(runner_server, "limit", {"url": hook_server + "/limit"}, max_retries=0)
    boom = runner_server.wait_finished("boom")
    assert boom["state"] == "failed" and boom["attempts"] == 2
    assert [e["type"] for e in boom["errors"]] == ["unavailable", "unavailable"]
    assert boom["errors"][0]["context"]["status"] == 500 and boom["errors"][0]["worker"] == "jobq:webhook"
    bad = runner_server.wait_finished("bad")
    assert bad["attempts"] == 1 and bad["errors"][0]["type"] == "validation"  # a 400 is not retried
    gone = runner_server.wait_finished("gone")
    assert gone["attempts"] == 1 and gone["errors"][0]["type"] == "not_found"
    # A 429 with Retry-After holds the host and spends no attempt, even with max_retries 0.
    end = time.time() + 10
    while time.time() < end and not runner_server.job("limit")["errors"]:
        time.sleep(0.05)
    limit = runner_server.job("limit")
    assert limit["state"] == "retrying" and limit["attempts"] == 0, limit
    assert limit["errors"][0]["type"] == "rate_limited"
    host = hook_server.split("//")[1]
    assert limit["breaker_key"] == host
    held = {b["key"]: b for b in runner_server.get("/v1/breakers").json()["breakers"]}[host]
    assert held["held_until"] is not None and held["state"] == "closed"
    assert runner_server.post("/v1/jobs/limit/cancel").status_code == 200


def test_timeouts_and_dead_hosts_are_retryable_failures(runner_server, hook_server):
    hook_job(runner_server, "slow", {"url": hook_server + "/slow", "timeout_ms": 400}, max_retries=0)
    hook_job(runner_server, "dead", {"url": "http://127.0.0.1:1/"}, max_retries=0)
    slow = runner_server.wait_finished("slow")
    assert slow["errors"][0]["type"] == "timeout"
    dead = runner_server.wait_finished("dead")
    assert dead["errors"][0]["type"] == "unavailable"


def test_bad_arguments_fail_without_a_request(runner_server, hook_server):
    cases = {
        "ftp": {"url": "ftp://127.0.0.1/x"},
        "nourl": {"body": "x"},
        "method": {"url": hook_server + "/ok", "method": "TRACE"},
        "extra": {"url": hook_server + "/ok", "shell": "rm -rf /"},
        "hdr": {"url": hook_server + "/ok", "headers": {"X-A": "1\r\nX-B: 2"}},
    }
    for jid, args in cases.items():
        hook_job(runner_server, jid, args, max_retries=5)
    r = runner_server.post("/v1/jobs", {"id": "wrongtype", "type": "other", "queue": "webhook"})
    assert r.status_code == 201
    for jid in list(cases) + ["wrongtype"]:
        j = runner_server.wait_finished(jid)
        assert j["state"] == "failed" and j["attempts"] == 1, jid
        assert j["errors"][0]["type"] == "validation", jid
    assert Hook.seen == []


def test_runners_are_off_by_default(make_server, hook_server):
    server = make_server()
    hook_job(server, "idle", {"url": hook_server + "/ok"})
    time.sleep(0.5)
    assert server.job("idle")["state"] == "queued" and Hook.seen == []


def test_bad_runner_spec_stops_startup(tmp_path):
    r = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"),
                        "--runners", "ftp=2"], env=clean_env(), capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1 and "JOBQ_RUNNERS" in r.stderr and "ftp=2" in r.stderr


@pytest.mark.cluster_differs("a stopping node hands its running jobs over (retried)")
def test_shutdown_with_a_webhook_in_flight(runner_server, hook_server):
    hook_job(runner_server, "inflight", {"url": hook_server + "/slow"}, timeout_ms=2000)
    time.sleep(0.5)
    assert runner_server.stop() == 0
    runner_server.start()
    assert runner_server.job("inflight")["state"] == "running"  # its lease comes back later


def test_redirects_are_followed_and_retry_after_is_honoured(runner_server, hook_server):
    hook_job(runner_server, "redir", {"url": hook_server + "/redir"})
    j = runner_server.wait_finished("redir")
    assert j["state"] == "completed" and json.loads(j["result"]["body"])["path"] == "/ok"
    hook_job(runner_server, "later", {"url": hook_server + "/limit"}, max_retries=1)
    end = time.time() + 5
    while time.time() < end and runner_server.job("later")["state"] != "retrying":
        time.sleep(0.05)
    j = runner_server.job("later")
    assert j["state"] == "retrying" and j["errors"][0]["type"] == "rate_limited"
    from datetime import datetime
    at = datetime.fromisoformat(j["errors"][0]["at"].replace("Z", "+00:00"))
    run_at = datetime.fromisoformat(j["run_at"].replace("Z", "+00:00"))
    assert (run_at - at).total_seconds() >= 1.9  # backoff is 0: the wait is Retry-After's


@pytest.mark.cluster_differs("blocked_by is computed from the node's memory")
def test_dead_host_opens_its_breaker_while_other_hosts_continue(make_server, hook_server):
    srv = make_server(env={"JOBQ_RUNNERS": "webhook=2", "JOBQ_BREAKER_FAILURES": "3",
                           "JOBQ_BREAKER_COOLDOWN": "60s"})
    for i in range(8):
        hook_job(srv, f"dead{i}", {"url": "http://127.0.0.1:1/"}, max_retries=0)
    for i in range(4):
        hook_job(srv, f"ok{i}", {"url": hook_server + "/ok"})
    for i in range(4):
        assert srv.wait_finished(f"ok{i}")["state"] == "completed"
    end = time.time() + 10
    while time.time() < end:
        breakers = {b["key"]: b for b in srv.get("/v1/breakers").json()["breakers"]}
        if breakers.get("127.0.0.1:1", {}).get("state") == "open":
            break
        time.sleep(0.05)
    dead = breakers["127.0.0.1:1"]
    assert dead["state"] == "open" and dead["failures"] >= 3, dead
    # The live host's breaker is closed (or already forgotten: nothing to remember).
    assert breakers.get(hook_server.split("//")[1], {"state": "closed"})["state"] == "closed"
    jobs = [srv.job(f"dead{i}") for i in range(8)]
    failed = [j for j in jobs if j["state"] == "failed"]
    held = [j for j in jobs if j["state"] == "queued"]
    assert len(failed) >= 3 and len(failed) + len(held) == 8
    assert held and all(j["blocked_by"] == "breaker:127.0.0.1:1" for j in held)
    assert all(j["attempts"] == 0 for j in held)
