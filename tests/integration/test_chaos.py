"""A bounded chaos run (about a minute) on the sanitizer build: producers,
workers that complete or fail what they lease, and cancellers, while jobq
is killed with SIGKILL at random moments and, once, cannot commit (its file
size limit, as a full disk). Afterwards every acknowledged change is there,
no job was ever handed to two workers at once, the database passes
`PRAGMA integrity_check`, and no sanitizer report appeared."""
import os
import random
import resource
import sqlite3
import threading
import time

import requests

from conftest import assert_clean_log

DURATION_S = 45
SEED = int(os.environ.get("JOBQ_CHAOS_SEED", "0")) or random.randrange(1 << 30)


class Ledger:
    """What the server acknowledged, and every lease it granted."""

    def __init__(self):
        self.lock = threading.Lock()
        self.enqueued = set()
        self.final = {}        # id -> state an acknowledged change left it in for good
        self.grants = {}       # (epoch, id) -> [(received_at, released_at or None, lease_id)]

    def grant(self, epoch, jid, lease_id, timeout_s):
        now = time.monotonic()
        with self.lock:
            for got, released, other in self.grants.get((epoch, jid), []):
                # 0.5 s: the server started the lease a little before we heard of it
                end = released if released is not None else got + timeout_s - 0.5
                assert now >= end, f"{jid} leased as {lease_id} while {other} was live (seed {SEED})"
            self.grants.setdefault((epoch, jid), []).append([now, None, lease_id])

    def release(self, epoch, jid, lease_id, at):
        with self.lock:
            for g in self.grants.get((epoch, jid), []):
                if g[2] == lease_id and g[1] is None:
                    g[1] = at


def producer(url, ledger, stop, n, rng):
    s = requests.Session()
    i = 0
    while not stop.is_set():
        jid = f"p{n}-{i}"
        i += 1
        try:
            r = s.post(url() + "/v1/jobs", json={"id": jid, "type": "t", "max_retries": 2,
                                                 "timeout_ms": 3000,
                                                 "backoff": {"initial_ms": 0, "jitter": 0}},
                       timeout=3)
        except requests.RequestException:
            time.sleep(0.05)
            continue
        if r.status_code in (200, 201):
            with ledger.lock:
                ledger.enqueued.add(jid)
        elif rng.random() < 0.1:
            time.sleep(0.05)


def worker(url, epoch, ledger, stop, n, rng):
    s = requests.Session()
    while not stop.is_set():
        try:
            r = s.post(url() + "/v1/lease", json={"worker": f"w{n}", "max": 5, "wait_ms": 200},
                       timeout=3)
            jobs = r.json()["jobs"] if r.status_code == 200 else []
        except (requests.RequestException, ValueError):
            time.sleep(0.05)
            continue
        e = epoch[0]
        for j in jobs:
            ledger.grant(e, j["id"], j["lease_id"], 3.0)
        for j in jobs:
            ok = rng.random() < 0.7
            body = {"lease_id": j["lease_id"]}
            if not ok:
                body.update(error={"type": rng.choice(["internal", "validation"]),
                                   "message": "chaos"}, retry=rng.random() < 0.5)
            sent = time.monotonic()
            ledger.release(e, j["id"], j["lease_id"], sent)
            try:
                r = s.post(f"{url()}/v1/jobs/{j['id']}/{'complete' if ok else 'fail'}", json=body,
                           timeout=3)
            except requests.RequestException:
                continue
            if r.status_code == 200 and r.json()["state"] in ("completed", "failed"):
                with ledger.lock:
                    ledger.final[j["id"]] = r.json()["state"]


def canceller(url, ledger, stop, rng):
    s = requests.Session()
    while not stop.is_set():
        time.sleep(0.02)
        with ledger.lock:
            if not ledger.enqueued:
                continue
            jid = rng.choice(sorted(ledger.enqueued)[-200:])
        try:
            r = s.post(f"{url()}/v1/jobs/{jid}/cancel", timeout=3)
        except requests.RequestException:
            continue
        if r.status_code == 200 and r.json()["state"] == "cancelled":
            with ledger.lock:
                ledger.final[jid] = "cancelled"


def test_chaos_kills_and_a_commit_outage_lose_nothing(make_server):
    rng = random.Random(SEED)
    # A queued-job budget of one byte: every queued job that freezes goes to
    # the spill file, and a kill with jobs there must cost nothing (it is a
    # cache of the store).
    srv = make_server(env={"JOBQ_DURABILITY": "os", "JOBQ_CACHE_TTL_MS": "0",
                           "JOBQ_QUEUED_IN_MEMORY": "1"})
    ledger, stop, epoch = Ledger(), threading.Event(), [0]
    url = lambda: srv.url  # noqa: E731 (the port changes on every restart)
    threads = [threading.Thread(target=producer, args=(url, ledger, stop, n, random.Random(rng.random())))
               for n in range(3)]
    threads += [threading.Thread(target=worker, args=(url, epoch, ledger, stop, n, random.Random(rng.random())))
                for n in range(3)]
    threads.append(threading.Thread(target=canceller, args=(url, ledger, stop, random.Random(rng.random()))))
    for t in threads:
        t.start()
    kills, outage_done, end, spilled = 0, False, time.monotonic() + DURATION_S, 0
    try:
        while time.monotonic() < end:
            time.sleep(rng.uniform(1.0, 4.0))
            if not outage_done and time.monotonic() > end - DURATION_S / 2:
                outage_done = True
                data_size = max(p.stat().st_size for p in srv.data.iterdir() if p.is_file())
                limit = max(data_size, srv.log_path.stat().st_size) + 32 * 1024
                resource.prlimit(srv.proc.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
                time.sleep(2)
                resource.prlimit(srv.proc.pid, resource.RLIMIT_FSIZE,
                                 (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            try:
                spilled = max(spilled, srv.get("/v1/perf", timeout=2).json()["system"]["jobs_spilled"])
            except Exception:  # noqa: BLE001 (mid-outage: the sample is optional)
                pass
            srv.kill()
            kills += 1
            epoch[0] += 1
            srv.start()
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    assert kills >= 5 and outage_done
    assert spilled > 0  # the kills did meet jobs in the spill file
    assert srv.stop() == 0, srv.log_text()[-3000:]
    db = sqlite3.connect(srv.data / "jobq.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = dict(db.execute("SELECT id, state FROM jobs"))
    db.close()
    missing = ledger.enqueued - stored.keys()
    assert not missing, f"acknowledged enqueues lost: {sorted(missing)[:10]} (seed {SEED})"
    wrong = {j: (s, stored.get(j)) for j, s in ledger.final.items() if stored.get(j) != s}
    assert not wrong, f"acknowledged outcomes lost: {list(wrong.items())[:10]} (seed {SEED})"
    assert len(ledger.enqueued) > 200 and len(ledger.final) > 50, (len(ledger.enqueued), len(ledger.final))
    assert_clean_log(srv)
