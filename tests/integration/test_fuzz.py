"""Bounded random input against every endpoint (seeded, so a failure can be
replayed): no 5xx, always a JSON or problem+json answer, and the server,
built with ASan/UBSan, stays up and shuts down clean."""
import json
import os
import random

SEED = int(os.environ.get("JOBQ_FUZZ_SEED", "20261128"))
ROUNDS = 800

FIELDS = ["id", "type", "queue", "args", "priority", "max_retries", "timeout_ms", "run_at",
          "delay_ms", "backoff", "breaker_key", "worker", "queues", "max", "wait_ms", "lease_id",
          "result", "error", "retry", "progress", "extend_ms", "jobs", "results", "bogus"]


def rand_value(rng, depth=0):
    kind = rng.randrange(10 if depth < 3 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 2**31, 2**63 - 1, -2**63, 1000, 86400001, 3.5, 1e308])
    if kind in (3, 4, 5, 6):
        return rng.choice(["", "a", "t", "default", "critical", "x" * 300, "a b", "\u00e9", "\x00",
                           "2026-01-01T00:00:00Z", "internal", "../../etc", "%s%n", "\ud7ff"])
    if kind == 7:
        return [rand_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(FIELDS): rand_value(rng, depth + 1) for _ in range(rng.randrange(5))}


def rand_body(rng):
    r = rng.random()
    if r < 0.1:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
    obj = {rng.choice(FIELDS): rand_value(rng) for _ in range(rng.randrange(6))}
    if r < 0.5:
        obj["type"] = "t"
    if r < 0.3:
        obj["worker"] = "w"
    text = json.dumps(obj)
    if r > 0.95:
        text = text[: rng.randrange(len(text) + 1)]
    return text.encode()


def rand_path(rng, known_ids):
    jid = rng.choice(known_ids + ["nope", "a%20b", "%ff", "x" * 250, ""])
    return rng.choice([
        "/v1/jobs", "/v1/jobs/batch", f"/v1/jobs/{jid}", f"/v1/jobs/{jid}/cancel",
        f"/v1/jobs/{jid}/retry", f"/v1/jobs/{jid}/heartbeat", f"/v1/jobs/{jid}/complete",
        f"/v1/jobs/{jid}/fail", "/v1/lease", "/v1/ack", "/v1/queues", f"/v1/queues/{jid}/pause",
        f"/v1/queues/{jid}/resume", "/v1/stats", "/health/ready", "/v1/jobs?limit=" + jid,
        "/v1/jobs?state=" + jid + "&cursor=" + jid, "/" + jid, "/v1/breakers",
        f"/v1/breakers/{jid}/reset", "/v1/cache", "/v1/perf", "/v1/workers",
        "/v1/limits",
    ])


def test_random_requests_never_break_the_server(server):
    rng = random.Random(SEED)
    known = [server.enqueue(id=f"f{i}")["id"] for i in range(5)]
    for i in range(ROUNDS):
        method = rng.choice(["GET", "POST", "POST", "POST", "DELETE", "PUT"])
        path = rand_path(rng, known)
        body = rand_body(rng) if method in ("POST", "PUT") else None
        if "wait_ms" in (body or b"").decode(errors="ignore"):
            body = body.replace(b"wait_ms", b"wait_xx")  # keep each round quick
        r = server.req(method, path, raw=body if body is not None else b"")
        assert r.status_code < 500, (SEED, i, method, path, body, r.status_code, r.text)
        if r.status_code != 204:
            assert r.headers["Content-Type"].startswith(("application/json", "application/problem+json")), (i, r.headers)
            r.json()
        if r.status_code == 200 and path == "/v1/lease":
            known += [j["id"] for j in r.json()["jobs"]]
    assert server.get("/health/ready").status_code == 200
