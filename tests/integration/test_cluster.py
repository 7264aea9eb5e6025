"""Cluster mode: several jobq nodes on one PostgreSQL database (issue 13).
Real nodes (separate processes) on a real throwaway cluster (pg.py), over
real sockets; what each test asserts is read back from the database with
psql as well as through the API."""
import signal
import threading
import time

import json

import pytest

from conftest import TTL_MS, assert_problem, lease_one, wait_ready
from pg import rows
from fwp import connect

def test_a_job_enqueued_on_one_node_is_leased_on_another(cluster, postgres):
    (a, b, c), url = cluster(3)
    a.enqueue(id="j1", queue="q", args={"n": 1})
    got = b.lease(queues=["q"], wait_ms=2000)
    assert [j["id"] for j in got] == ["j1"]
    assert c.lease(queues=["q"], wait_ms=0) == []  # one live lease in the whole cluster
    r = b.post("/v1/jobs/j1/complete", {"lease_id": got[0]["lease_id"], "result": {"ok": True}})
    assert r.status_code == 200, r.text
    done = c.job("j1")
    assert done["state"] == "completed" and done["result"] == {"ok": True}
    # finished, it left the hot table for history (schema version 5)
    assert rows(postgres, url, "SELECT count(*) FROM jobs") == [["0"]]
    assert rows(postgres, url, "SELECT state, token > 0 FROM history") == [["completed", "t"]]


def test_a_long_poll_on_one_node_is_answered_by_an_enqueue_on_another(cluster):
    (a, b), _ = cluster(2)
    got = {}
    t = threading.Thread(target=lambda: got.update(jobs=b.lease(queues=["q"], wait_ms=5000)))
    t.start()
    time.sleep(0.3)
    a.enqueue(id="late", queue="q")
    t.join(10)
    assert [j["id"] for j in got["jobs"]] == ["late"]


def test_a_wake_up_from_another_node_ends_a_long_poll_before_its_poll(cluster):
    """With claims polled once a minute, only the enqueuing node's wake-up
    (LISTEN/NOTIFY) can answer a worker waiting on another node within its
    wait: without it the lease comes back empty after 20 s. A wake-up for a
    queue nobody waits on changes nothing (the wait goes on)."""
    (a, b), _ = cluster(2, env={"JOBQ_CLAIM_POLL": "60s"})
    got = {}
    t = threading.Thread(target=lambda: got.update(jobs=b.lease(queues=["q"], wait_ms=20000)))
    t.start()
    time.sleep(1.0)  # b's first claim has come back empty: b now waits for its poll
    a.enqueue(id="other", queue="elsewhere")
    time.sleep(0.5)
    assert t.is_alive()
    a.enqueue(id="woken", queue="q")
    t.join(30)
    assert [j["id"] for j in got["jobs"]] == ["woken"], b.log_text()[-2000:]


def test_a_queues_concurrency_limit_holds_across_nodes(cluster):
    """JOBQ_LIMITS' queue concurrency is the whole cluster's: three nodes
    with workers asking for 5 each hold at most 2 jobs of the queue at
    once (per node, they could hold 6); once one completes, another node
    may take the freed slot. Another queue is not held back."""
    nodes, _ = cluster(3, env={"JOBQ_LIMITS": "queue:lim concurrency=2"})
    for i in range(6):
        nodes[i % 3].enqueue(id=f"lim{i}", queue="lim")
    nodes[0].enqueue(id="free1", queue="free")
    held = []

    def ask(node):  # all three at once: their claims race for the slots
        got = node.lease(queues=["lim"], max=5, wait_ms=300)
        with lock:
            held.extend((node, j) for j in got)
    lock = threading.Lock()
    for _ in range(2):  # twice round the nodes: every one has asked
        ts = [threading.Thread(target=ask, args=(node,)) for node in nodes]
        for t in ts:
            t.start()
        for t in ts:
            t.join(10)
    assert len(held) == 2, [j["id"] for _, j in held]
    assert [j["id"] for j in nodes[1].lease(queues=["free"], wait_ms=2000)] == ["free1"]
    node, j = held.pop()
    r = node.post(f"/v1/jobs/{j['id']}/complete", {"lease_id": j["lease_id"]})
    assert r.status_code == 200, r.text
    got = []
    end = time.time() + 10
    while not got and time.time() < end:
        for other in nodes:
            got += other.lease(queues=["lim"], max=5, wait_ms=200)
    assert len(got) == 1, [x["id"] for x in got]


def fail_unavailable(node, job):
    r = node.post(f"/v1/jobs/{job['id']}/fail", {"lease_id": job["lease_id"],
                  "error": {"type": "unavailable", "message": "down"}})
    assert r.status_code == 200, r.text


def breaker(node, key):
    """The breaker of key as node lists it (others it lists: keys of jobs it
    runs), or None."""
    found = [x for x in node.get("/v1/breakers").json()["breakers"] if x["key"] == key]
    return found[0] if found else None


def lease_all(nodes, queues, wait_ms=300):
    """Every node asks at once (their claims race); what each got."""
    got, lock = [], threading.Lock()

    def ask(node):
        jobs = node.lease(queues=queues, max=5, wait_ms=wait_ms)
        with lock:
            got.extend((node, j) for j in jobs)
    ts = [threading.Thread(target=ask, args=(n,)) for n in nodes]
    for t in ts:
        t.start()
    for t in ts:
        t.join(10)
    return got


def test_a_breaker_is_the_whole_clusters(cluster, postgres):
    """Failures one node sees open the key's breaker for every node: no node
    hands out its jobs (other keys' go on); after the cool-down one probe
    in the whole cluster, however many workers ask; a failed probe opens
    it again for twice as long; a probe that succeeds closes it for all."""
    env = {"JOBQ_BREAKER_FAILURES": "2", "JOBQ_BREAKER_RATIO": "0",
           "JOBQ_BREAKER_COOLDOWN": "1500ms", "JOBQ_BREAKER_COOLDOWN_MAX": "60s"}
    (a, b, c), url = cluster(3, env=env)
    for i in range(2):
        a.enqueue(id=f"f{i}", queue="q", breaker_key="api.example", max_retries=0)
        (job,) = a.lease(queues=["q"], wait_ms=2000)
        fail_unavailable(a, job)
    time.sleep(0.3)  # the others hear of it at once (a notification); a claim out may not
    for i in range(4):
        b.enqueue(id=f"held{i}", queue="q", breaker_key="api.example")
    c.enqueue(id="other", queue="q", breaker_key="elsewhere")
    brk = breaker(b, "api.example")
    assert (brk["state"], brk["cooldown_ms"]) == ("open", 1500)
    got = lease_all([a, b, c], ["q"])
    assert [j["id"] for _, j in got] == ["other"]
    time.sleep(1.6)  # half-open now
    probes = lease_all([a, b, c], ["q"], wait_ms=500)
    assert len(probes) == 1, [j["id"] for _, j in probes]
    node, probe = probes[0]
    assert rows(postgres, url, "SELECT probe_job FROM breakers") == [[probe["id"]]]
    assert lease_all([a, b, c], ["q"]) == []  # the probe is out
    fail_unavailable(node, probe)
    brk = breaker(c, "api.example")
    assert (brk["state"], brk["cooldown_ms"]) == ("open", 3000)
    time.sleep(1.6)
    assert lease_all([a, b, c], ["q"]) == []  # still open: twice the cool-down
    time.sleep(1.6)
    probes = lease_all([a, b, c], ["q"], wait_ms=500)
    assert len(probes) == 1, [j["id"] for _, j in probes]
    node, probe = probes[0]
    r = node.post(f"/v1/jobs/{probe['id']}/complete", {"lease_id": probe["lease_id"]})
    assert r.status_code == 200, r.text
    assert rows(postgres, url, "SELECT count(*) FROM breakers") == [["0"]]
    brk = breaker(b, "api.example")
    assert brk is None or brk["state"] == "closed", brk
    left = lease_all([a, b, c], ["q"], wait_ms=1000)
    assert len(left) == 3, [j["id"] for _, j in left]  # 4, less the probe that completed


def test_an_operator_reset_closes_the_clusters_breaker(cluster, postgres):
    env = {"JOBQ_BREAKER_FAILURES": "1", "JOBQ_BREAKER_RATIO": "0",
           "JOBQ_BREAKER_COOLDOWN": "60s"}
    (a, b), url = cluster(2, env=env)
    a.enqueue(id="f", queue="q", breaker_key="k", max_retries=0)
    (job,) = a.lease(queues=["q"], wait_ms=2000)
    fail_unavailable(a, job)
    b.enqueue(id="held", queue="q", breaker_key="k")
    assert b.lease(queues=["q"], wait_ms=300) == []
    r = b.post("/v1/breakers/k/reset")
    assert r.status_code == 200 and r.json()["state"] == "closed", r.text
    assert rows(postgres, url, "SELECT count(*) FROM breakers") == [["0"]]
    assert [j["id"] for j in a.lease(queues=["q"], wait_ms=2000)] == ["held"]


def test_an_operators_change_is_refused_if_a_claim_came_between(pg_server, postgres):
    """An operator's cancel reads the job, then writes it. If another node
    claims, runs and gives the job back in between, the write would wipe
    out that attempt: it is refused (409) and the attempt stays. Node a's
    commits are slowed (a longer TTL, so that its beats keep up), so its
    write lands after node b's attempt; read again, the cancel goes."""
    url = postgres.new_database()
    base = {"JOBQ_CLUSTER": "true", "JOBQ_NODE_TTL": "10s", "JOBQ_CLAIM_POLL": "100ms"}
    a = pg_server(env={**base, "JOBQ_FAULT_COMMIT_DELAY_MS": "1000"}, url=url)
    b = pg_server(env=base, url=url)
    for node in (a, b):
        wait_ready(node)
    b.enqueue(id="j", queue="q", max_retries=3)
    slow = threading.Thread(target=lambda: a.enqueue(id="slow", queue="other"))
    slow.start()  # a's writer sleeps in this commit
    time.sleep(0.2)
    got = {}
    cancel = threading.Thread(target=lambda: got.update(r=a.post("/v1/jobs/j/cancel")))
    cancel.start()  # read now, written after the slow commit
    time.sleep(0.3)
    (job,) = b.lease(queues=["q"], wait_ms=2000)
    fail_unavailable(b, job)
    cancel.join(15)
    slow.join(15)
    assert_problem(got["r"], 409, "conflict")
    assert rows(postgres, url, "SELECT state FROM jobs WHERE id = 'j'") == [["retrying"]]
    assert b.job("j")["attempts"] == 1
    r = a.post("/v1/jobs/j/cancel")
    assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text


def test_type_and_key_concurrency_limits_hold_across_nodes(cluster):
    """JOBQ_LIMITS' concurrency of a type and of a breaker key is the whole
    cluster's, like a queue's: three nodes whose workers ask for 5 each
    (at once, twice round) hold at most 2 `video` jobs and 1 job of key
    `api.example`; the other jobs of the same queue, behind them, are
    not held back; a completion frees a slot for any node."""
    nodes, _ = cluster(3, env={"JOBQ_LIMITS": "type:video concurrency=2; key:api.example concurrency=1"})
    for i in range(6):
        nodes[i % 3].enqueue(id=f"v{i}", queue="q", type="video")
    for i in range(3):
        nodes[i % 3].enqueue(id=f"k{i}", queue="q", type="fetch", breaker_key="api.example")
    for i in range(3):
        nodes[i % 3].enqueue(id=f"free{i}", queue="q", type="mail")
    held = []
    for _ in range(2):
        held += lease_all(nodes, ["q"])
    ids = sorted(j["id"] for _, j in held)
    assert len([i for i in ids if i.startswith("v")]) == 2, ids
    assert len([i for i in ids if i.startswith("k")]) == 1, ids
    assert [i for i in ids if i.startswith("free")] == ["free0", "free1", "free2"], ids
    node, j = next((n, j) for n, j in held if j["id"].startswith("v"))
    r = node.post(f"/v1/jobs/{j['id']}/complete", {"lease_id": j["lease_id"]})
    assert r.status_code == 200, r.text
    got = []
    end = time.time() + 10
    while not got and time.time() < end:
        got = lease_all(nodes, ["q"], wait_ms=200)
    assert [x["id"][0] for _, x in got] == ["v"], [x["id"] for _, x in got]


def test_rate_limits_are_shared_among_the_nodes_alive(cluster):
    """Rates hold per node, each node's share of the rate configured: with
    two nodes alive each admits half (execution and API rates alike), so
    the cluster admits about the rate configured; once one stops, the
    other admits the whole rate again."""
    env = {"JOBQ_LIMITS": "queue:r rate=4 burst=4", "JOBQ_RATE_LIMIT": "100",
           "JOBQ_RATE_BURST": "100"}
    (a, b), _ = cluster(2, env=env)

    def shares(node, want):
        end = time.time() + 10
        while time.time() < end:
            r = node.get("/v1/limits")
            (lim,) = r.json()["execution"]
            if (lim["rate"], lim["burst"], r.headers["RateLimit-Limit"]) == want:
                return
            time.sleep(0.1)
        raise AssertionError(f"{(lim['rate'], lim['burst'], r.headers['RateLimit-Limit'])}")
    shares(a, (2.0, 2.0, "50"))
    shares(b, (2.0, 2.0, "50"))
    b.stop()
    shares(a, (4.0, 4.0, "100"))


def test_a_slot_freed_on_one_node_wakes_a_lessee_on_another(cluster):
    """A queue limited to one job cluster-wide: a worker on node b waits
    while node a holds it; a's completion announces the freed slot, so b's
    claim goes at once (claims poll only once a minute here: without the
    wake-up, b's lease would come back empty after its 5 s wait)."""
    (a, b), _ = cluster(2, env={"JOBQ_LIMITS": "queue:one concurrency=1", "JOBQ_CLAIM_POLL": "60s"})
    a.enqueue(id="first", queue="one")
    a.enqueue(id="second", queue="one")
    (j,) = a.lease(queues=["one"], wait_ms=2000)
    got = {}
    t = threading.Thread(target=lambda: got.update(jobs=b.lease(queues=["one"], wait_ms=5000)))
    t.start()
    time.sleep(1.0)  # b's claim came back empty: the slot is taken
    r = a.post(f"/v1/jobs/{j['id']}/complete", {"lease_id": j["lease_id"]})
    assert r.status_code == 200, r.text
    t0 = time.time()
    t.join(10)
    assert [x["id"] for x in got["jobs"]] == ["second"]
    assert time.time() - t0 < 3


def test_deletes_are_fenced_like_every_holders_write(cluster, postgres):
    """A Faktory job pushed with retry 0 that fails is deleted by the node
    that held it (under its claim), and a delete of a job another node
    runs is refused with 409 and changes nothing."""
    (a, b), url = cluster(2)
    pa, pb = connect(a, wid="wa"), connect(b, wid="wb")
    assert pa.cmd("PUSH " + json.dumps({"jid": "once0001", "jobtype": "t", "queue": "q",
                                        "args": [], "retry": 0})) == "OK"
    assert json.loads(pb.cmd("FETCH q"))["jid"] == "once0001"
    assert pb.cmd('FAIL {"jid":"once0001","errtype":"E","message":"boom"}') == "OK"
    assert rows(postgres, url, "SELECT id FROM jobs_all WHERE id = 'once0001'") == []
    a.enqueue(id="busy", queue="q")
    got = b.lease(queues=["q"], wait_ms=2000)
    assert [j["id"] for j in got] == ["busy"]
    r = a.req("DELETE", "/v1/jobs/busy")
    assert r.status_code == 409, r.text
    assert rows(postgres, url, "SELECT state, owner IS NOT NULL FROM jobs WHERE id = 'busy'") == \
        [["running", "t"]]
    r = b.post("/v1/jobs/busy/complete", {"lease_id": got[0]["lease_id"]})
    assert r.status_code == 200, r.text


def test_the_faktory_protocol_works_across_nodes(cluster, postgres):
    (a, b), url = cluster(2)
    pa, pb = connect(a, wid="wa"), connect(b, wid="wb")
    for jid, queue in (("fq1job01", "q1"), ("fq2job01", "q2")):
        job = {"jid": jid, "jobtype": "t", "queue": queue, "args": [1]}
        assert pa.cmd("PUSH " + json.dumps(job)) == "OK"
    assert pb.cmd("PUSH " + json.dumps({"jid": "fq1job01", "jobtype": "t", "queue": "q1",
                                        "args": [1]})) == "OK"  # the same job: one
    got = json.loads(pb.cmd("FETCH q2 q1"))  # the queues in the order listed
    assert got["jid"] == "fq2job01"
    assert pb.cmd('ACK {"jid":"fq2job01"}') == "OK"
    assert json.loads(pb.cmd("FETCH q2 q1"))["jid"] == "fq1job01"
    assert pb.cmd('ACK {"jid":"fq1job01"}') == "OK"
    assert dict(rows(postgres, url, "SELECT id, state FROM jobs_all")) == \
        {"fq1job01": "completed", "fq2job01": "completed"}


def test_the_jobs_gauges_of_metrics_count_the_whole_cluster(cluster):
    """A node's memory holds only the jobs it runs; /metrics' jobs gauges
    (unfinished states) and the oldest job's age are the database's, on
    every node alike, as /v1/stats shows them."""
    from test_metrics import scrape, value
    (a, b), _ = cluster(2)
    for i in range(3):
        a.enqueue(id=f"g{i}", queue="gq")
    got = b.lease(queues=["gq"], max=2)
    assert len(got) == 2
    r = b.post(f"/v1/jobs/{got[0]['id']}/complete", {"lease_id": got[0]["lease_id"]})
    assert r.status_code == 200, r.text
    time.sleep(1.2)  # past the query cache's second
    for node in (a, b):
        _, s = scrape(node)
        assert value(s, "jobq_jobs", queue="gq", state="queued") == 1
        assert value(s, "jobq_jobs", queue="gq", state="running") == 1
        assert value(s, "jobq_queue_oldest_job_age_seconds", queue="gq") >= 1
    stats = a.get("/v1/stats").json()
    counts = stats["queues"]["gq"]["counts"]
    assert (counts["queued"], counts["running"], counts["completed"]) == (1, 1, 1)
    assert stats["queues"]["gq"]["oldest_queued_age_s"] >= 1 and stats["oldest_queued_age_s"] >= 1


def test_the_event_streams_counts_are_the_clusters(cluster):
    """The dashboard's live stream shows the database's counts: jobs
    enqueued on one node appear in another node's snapshot and ticks."""
    from test_events import Stream
    (a, b), _ = cluster(2)
    a.enqueue(id="s1", queue="sq")
    s = Stream(b)
    name, snap = s.event()
    assert name == "snapshot" and snap["totals"]["queued"] == 1, snap
    assert [q["name"] for q in snap["queues"]] == ["sq"]
    a.enqueue(id="s2", queue="sq")
    _, tick = s.until(lambda n, d: n == "tick" and d["totals"]["queued"] == 2)
    assert tick["queues"][0]["queued"] == 2
    s.close()


def test_priority_order_holds_across_nodes(cluster):
    (a, b, c), _ = cluster(3)
    a.enqueue(id="low1", queue="q", priority="low")
    b.enqueue(id="norm1", queue="q")
    c.enqueue(id="high1", queue="q", priority="high")
    a.enqueue(id="norm2", queue="q")
    order = []
    for node in (b, c, a, b):
        got = node.lease(queues=["q"], wait_ms=1000)
        assert len(got) == 1
        order.append(got[0]["id"])
    assert order == ["high1", "norm1", "norm2", "low1"]


def test_an_idempotent_id_sent_to_two_nodes_makes_one_job(cluster, postgres):
    (a, b), url = cluster(2)
    first = a.post("/v1/jobs", {"id": "same", "type": "t", "queue": "q", "args": {"x": 1}})
    again = b.post("/v1/jobs", {"id": "same", "type": "t", "queue": "q", "args": {"x": 1}})
    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    other = b.post("/v1/jobs", {"id": "same", "type": "t", "queue": "q", "args": {"x": 2}})
    assert_problem(other, 409, "conflict")
    # At the same moment, through both: one job, and neither answer loses it.
    results = []
    def send(node):
        results.append(node.post("/v1/jobs", {"id": "race", "type": "t", "queue": "q"}))
    ts = [threading.Thread(target=send, args=(n,)) for n in (a, b)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(r.status_code for r in results) in ([200, 201], [201, 409]), \
        [r.text for r in results]
    assert rows(postgres, url, "SELECT count(*) FROM jobs_all WHERE id='race'") == [["1"]]


def slowed_pair(pg_server, postgres):
    """Two nodes on a new database, the second's every transaction step
    delayed 1.5 s (JOBQ_FAULT_STEP_DELAY_MS): a window the first can act in
    between the second's read of an id and its batch."""
    url = postgres.new_database()
    base = {"JOBQ_CLUSTER": "true", "JOBQ_NODE_TTL": "10s", "JOBQ_CLAIM_POLL": "100ms"}
    a = pg_server(env=base, url=url)
    b = pg_server(env={**base, "JOBQ_FAULT_STEP_DELAY_MS": "1500"}, url=url)
    for node in (a, b):
        wait_ready(node)
    return (a, b), url


def test_an_idempotent_id_run_on_another_node_during_an_enqueue_stays_one_job(
        pg_server, postgres):
    """b looks the id up (nothing there) and is slow to insert it; a
    meanwhile enqueues, runs and finishes the same id, whose row leaves
    jobs for history: b's insert then finds no conflict in jobs, and its
    check of history before the commit must undo it (one job, b answers
    409 as for any id another node's enqueue took first). Its payload
    goes with it: the job keeps a's."""
    (a, b), url = slowed_pair(pg_server, postgres)
    spec = {"id": "twice", "type": "t", "queue": "q", "args": {"from": "a" * 2000}}
    late = []
    t = threading.Thread(target=lambda: late.append(
        b.post("/v1/jobs", {**spec, "args": {"from": "b" * 2000}})))
    t.start()
    time.sleep(0.3)  # b has read the id and waits to begin its batch
    assert a.post("/v1/jobs", spec).status_code == 201
    j = lease_one(a)
    assert a.post("/v1/jobs/twice/complete", {"lease_id": j["lease_id"]}).status_code == 200
    assert rows(postgres, url, "SELECT id, state FROM history") == [["twice", "completed"]]
    t.join()
    assert_problem(late[0], 409, "conflict")
    assert rows(postgres, url, "SELECT count(*) FROM jobs_all WHERE id='twice'") == [["1"]]
    assert rows(postgres, url, "SELECT count(*) FROM payloads") == [["1"]]
    assert b.job("twice")["args"] == spec["args"]


def test_a_claim_never_takes_an_insert_its_batch_undoes(pg_server, postgres):
    """As above, with a worker waiting on b for the queue: b's batch (the
    one after a slow one) holds its insert of the id and the worker's
    claim, queued after it. A claim must come after the check of
    the batch's inserts against history, or it would hand the worker a job
    the check then undoes (a job that is not there)."""
    (a, b), url = slowed_pair(pg_server, postgres)
    spec = {"id": "undone", "type": "t", "queue": "u"}
    late, waited = [], []
    slow = threading.Thread(target=lambda: b.post("/v1/jobs", {"type": "t", "queue": "w"}))
    slow.start()
    time.sleep(0.3)  # b's batch of the other job is under way
    t = threading.Thread(target=lambda: late.append(b.post("/v1/jobs", spec)))
    t.start()
    time.sleep(0.3)  # b has read the id and queued its insert for the next batch
    worker = threading.Thread(target=lambda: waited.append(b.lease(queues=["u"], wait_ms=9000)))
    worker.start()  # its claim queued after the insert
    assert a.post("/v1/jobs", spec).status_code == 201
    j = a.lease(queues=["u"], wait_ms=2000)[0]
    assert a.post("/v1/jobs/undone/complete", {"lease_id": j["lease_id"]}).status_code == 200
    for th in (slow, t, worker):
        th.join()
    assert_problem(late[0], 409, "conflict")
    assert waited == [[]], waited
    assert rows(postgres, url, "SELECT id, state FROM jobs_all WHERE queue = 'u'") == \
        [["undone", "completed"]]


def test_a_killed_nodes_leases_come_back(cluster, postgres):
    (a, b, c), url = cluster(3)
    for i in range(5):
        a.enqueue(id=f"k{i}", queue="q")
    got = b.lease(queues=["q"], max=5, wait_ms=2000)
    assert len(got) == 5
    b.kill()
    t0 = time.time()
    back = []
    while len(back) < 5 and time.time() - t0 < 10:
        back += c.lease(queues=["q"], max=5, wait_ms=500)
    took = time.time() - t0
    assert sorted(j["id"] for j in back) == [f"k{i}" for i in range(5)]
    assert took < TTL_MS / 1000 + TTL_MS / 3000 + 2, took  # the TTL plus a sweep
    for j in back:
        # 2: its first attempt ended as an expired lease's; 1: the kill came
        # before that lease was written (leases are not waited for), so
        # the claim was simply given back.
        assert j["attempts"] in (1, 2)
        r = c.post(f"/v1/jobs/{j['id']}/complete", {"lease_id": j["lease_id"]})
        assert r.status_code == 200, r.text
    assert rows(postgres, url, "SELECT count(*) FROM jobs_all WHERE state='completed'") == [["5"]]


def test_a_paused_node_cannot_complete_what_it_lost(cluster, postgres):
    (a, b), url = cluster(2)
    a.enqueue(id="p1", queue="q")
    got = b.lease(queues=["q"], wait_ms=2000)
    assert [j["id"] for j in got] == ["p1"]
    b.proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(TTL_MS / 1000 + 1.0)
        back = []
        end = time.time() + 5
        while not back and time.time() < end:
            back = a.lease(queues=["q"], wait_ms=500)
        assert [j["id"] for j in back] == ["p1"]
    finally:
        b.proc.send_signal(signal.SIGCONT)
    stale = b.post("/v1/jobs/p1/complete", {"lease_id": got[0]["lease_id"], "result": 1})
    assert stale.status_code in (404, 409, 503), stale.text
    r = a.post("/v1/jobs/p1/complete", {"lease_id": back[0]["lease_id"], "result": 2})
    assert r.status_code == 200, r.text
    assert a.job("p1")["result"] == 2
    wait_ready(b)  # it registered again
    a.enqueue(id="p2", queue="q")
    assert [j["id"] for j in b.lease(queues=["q"], wait_ms=2000)] == ["p2"]


class Workload:
    """Producers and workers over HTTP, one worker per node, recording what
    each node acknowledged: enqueues, and every lease as an interval from
    its grant to the last call its node answered for it (a completion, or
    nothing when the node died). Every 4th job's args are kept apart (a
    payload, schema 8)."""

    def __init__(self, nodes):
        self.nodes = nodes
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.enqueued = set()
        self.completed = {}   # id -> lease_id whose completion was accepted
        self.intervals = []   # (id, lease_id, node index, start, end)
        self.threads = []
        self.errors = []  # what the workers' calls raised, for a failure's message
        self.unanswered = set()  # jobs whose completion call got no answer (its node died)

    def producer(self):
        i = 0
        while not self.stop.is_set() and i < 400:
            node = self.nodes[i % len(self.nodes)]
            jid = f"m{i}"
            spec = {"id": jid, "type": "t", "queue": "q", "timeout_ms": 5000}
            if i % 4 == 0:
                spec["args"] = {"big": jid * (1500 // len(jid))}
            i += 1
            try:
                # A lease a worker walked away from (its call failed) runs out
                # in 5 s, so the drain finds the job again.
                r = node.post("/v1/jobs", spec, timeout=5)
            except Exception:
                continue
            if r.status_code in (200, 201):
                with self.lock:
                    self.enqueued.add(jid)
            time.sleep(0.005)

    def worker(self, k):
        node = self.nodes[k]
        while not self.stop.is_set():
            try:
                got = node.lease(worker=f"w{k}", queues=["q"], max=5, wait_ms=200)
            except Exception:
                if node.proc is None or node.proc.poll() is not None:
                    return  # the node is gone; its leases end where its answers did
                continue
            start = time.time()
            for j in got:
                end = start
                try:
                    for _ in range(50):  # as a worker library would, while its node is busy
                        r = node.post(f"/v1/jobs/{j['id']}/complete",
                                      {"lease_id": j["lease_id"]}, timeout=5)
                        if r.status_code != 503:
                            break
                        time.sleep(0.1)
                    if r.status_code == 200:
                        end = time.time()
                        with self.lock:
                            assert j["id"] not in self.completed, "completed twice"
                            self.completed[j["id"]] = j["lease_id"]
                except Exception as e:
                    self.errors.append(repr(e))
                    with self.lock:
                        self.unanswered.add(j["id"])
                with self.lock:
                    self.intervals.append((j["id"], j["lease_id"], k, start, end))

    def start(self):
        self.threads = [threading.Thread(target=self.producer)]
        self.threads += [threading.Thread(target=self.worker, args=(k,))
                         for k in range(len(self.nodes))]
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def drain(self, nodes, timeout=30):
        """Completes what is left through the nodes still up."""
        end = time.time() + timeout
        while set(self.completed) < self.enqueued and time.time() < end:
            for node in nodes:
                r = node.post("/v1/lease", {"worker": "drain", "queues": ["q"], "max": 50,
                                            "wait_ms": 100})
                if r.status_code == 503:  # a moment without its store (a fault's retry)
                    time.sleep(0.1)
                    continue
                assert r.status_code == 200, r.text
                for j in r.json()["jobs"]:
                    r = node.post(f"/v1/jobs/{j['id']}/complete", {"lease_id": j["lease_id"]})
                    if r.status_code == 200:
                        self.completed[j["id"]] = j["lease_id"]
                    self.intervals.append((j["id"], j["lease_id"], -1, time.time(), time.time()))

    def check(self, postgres, url):
        # A completion whose node died before answering may have committed:
        # the job is then done, though no answer said so (and no drain
        # finds it). Any other job must have an accepted completion.
        stored = dict(rows(postgres, url, "SELECT id, state FROM jobs_all"))
        done_unseen = {j for j in self.unanswered if stored.get(j) == "completed"}
        missing = sorted(self.enqueued - set(self.completed) - done_unseen)[:20]
        assert self.enqueued and not missing, self.errors[:5] + rows(
            postgres, url, "SELECT id, state, owner, token FROM jobs_all WHERE id IN (%s)" %
            ",".join(f"'{m}'" for m in missing))
        assert set(self.completed) <= set(stored)
        for jid in self.enqueued:
            assert stored.get(jid) == "completed", (jid, stored.get(jid))
        # Every row with args apart has its payload, under its own insert,
        # and no payload is left without its job (a retried or undone
        # insert, a moved job).
        apart = rows(postgres, url, "SELECT j.id, p.id IS NOT NULL FROM (SELECT id, origin,"
                     " args_at FROM jobs UNION ALL SELECT id, origin, args_at FROM history) j"
                     " LEFT JOIN payloads p ON p.id = j.id AND p.origin = coalesce(j.origin, 0)"
                     " WHERE j.args_at IS NOT NULL")
        assert all(has == "t" for _, has in apart), apart
        assert {jid for jid, _ in apart} == {j for j in stored if int(j[1:]) % 4 == 0}
        assert rows(postgres, url, "SELECT count(*) FROM payloads p WHERE NOT EXISTS"
                    " (SELECT 1 FROM jobs_all j WHERE j.id = p.id)") == [["0"]]
        by_job = {}
        for jid, lease, k, s, e in self.intervals:
            by_job.setdefault(jid, []).append((s, e, lease, k))
        for jid, spans in by_job.items():
            spans.sort()
            for (s1, e1, l1, k1), (s2, e2, l2, k2) in zip(spans, spans[1:]):
                assert e1 <= s2, f"{jid}: lease {l1} on node {k1} overlaps {l2} on node {k2}"


def test_sigkill_of_a_node_under_load_loses_nothing(cluster, postgres):
    nodes, url = cluster(3)
    w = Workload(nodes)
    w.start()
    time.sleep(2.0)
    nodes[1].kill()
    time.sleep(3.0)
    w.finish()
    w.drain([nodes[0], nodes[2]])
    w.check(postgres, url)


def test_commits_whose_outcome_was_lost_are_run_again_harmlessly(cluster, postgres):
    """Every 4th commit of every node is reported failed after it committed
    (JOBQ_FAULT_COMMIT_LOST_EVERY), as when a session breaks in COMMIT: the
    batch runs again. Its claims must take back what the first run took,
    its enqueues and its holders' writes must find their own rows
    acceptable; else jobs are stranded, enqueues refused, completions lost."""
    nodes, url = cluster(3, env={"JOBQ_FAULT_COMMIT_LOST_EVERY": "4"})
    w = Workload(nodes)
    w.start()
    time.sleep(3.0)
    w.finish()
    w.drain(nodes)
    w.check(postgres, url)
    assert any("outcome was lost" in n.log_text() for n in nodes)


def test_terminated_database_connections_lose_nothing(cluster, postgres):
    nodes, url = cluster(3)
    w = Workload(nodes)
    w.start()
    time.sleep(1.0)
    db = url.rsplit("/", 1)[1]
    for _ in range(3):
        postgres.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                      f"datname = '{db}' AND pid <> pg_backend_pid()")
        time.sleep(0.7)
    w.finish()
    w.drain(nodes)
    w.check(postgres, url)
    for node in nodes:
        wait_ready(node)


def test_an_immediate_postgres_restart_loses_nothing(make_server):
    """PostgreSQL stopped with -m immediate (a crash: no checkpoint) under
    load and started again: every node comes back by itself, and every
    acknowledged enqueue and completion is there. A cluster of its own."""
    from pg import Postgres
    pgc = Postgres()
    try:
        url = pgc.new_database()
        env = {"JOBQ_DATABASE_URL": url, "JOBQ_CLUSTER": "true", "JOBQ_NODE_TTL": f"{TTL_MS}ms",
               "JOBQ_CLAIM_POLL": "100ms"}
        nodes = [make_server(env=env) for _ in range(3)]
        for node in nodes:
            wait_ready(node)
        w = Workload(nodes)
        w.start()
        time.sleep(1.0)
        pgc.halt("immediate")
        time.sleep(0.5)
        pgc.start()
        time.sleep(1.5)
        w.finish()
        for node in nodes:
            wait_ready(node, timeout=30)
        w.drain(nodes, timeout=40)
        w.check(pgc, url)
        for node in nodes:  # while their database is still there to commit to
            assert node.stop() == 0, node.log_text()[-3000:]
    finally:
        pgc.stop()


def test_cluster_mode_is_refused_where_it_cannot_hold(make_server, cluster):
    lone = make_server(env={"JOBQ_CLUSTER": "true",
                            "JOBQ_DATABASE_URL": "sqlite://jobq.db"}, start=False)
    with pytest.raises(RuntimeError, match="cluster mode needs a PostgreSQL database"):
        lone.start()
    lone.proc = None
    (a,), url = cluster(1)
    single = make_server(env={"JOBQ_DATABASE_URL": url}, start=False)
    with pytest.raises(RuntimeError, match="several need cluster mode"):
        single.start()
    single.proc = None


def test_a_node_stopped_gracefully_hands_its_jobs_over_before_its_ttl(make_server, postgres):
    url = postgres.new_database()
    env = {"JOBQ_DATABASE_URL": url, "JOBQ_CLUSTER": "true", "JOBQ_NODE_TTL": "30s",
           "JOBQ_CLAIM_POLL": "100ms"}
    a, b = make_server(env=env), make_server(env=env)
    wait_ready(a)
    wait_ready(b)
    a.enqueue(id="g1", queue="q")
    assert [j["id"] for j in b.lease(queues=["q"], wait_ms=2000)] == ["g1"]
    assert b.stop() == 0
    # Its row expired as it stopped: the next beat of a (every 10 s) takes
    # g1 over, long before the 30 s TTL.
    back, end = [], time.time() + 20
    while not back and time.time() < end:
        back = a.lease(queues=["q"], wait_ms=1000)
    assert [j["id"] for j in back] == ["g1"], a.log_text()[-2000:]
    assert rows(postgres, url, "SELECT count(*) FROM nodes") == [["1"]]
