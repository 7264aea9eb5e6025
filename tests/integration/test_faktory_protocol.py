"""The Faktory protocol on raw sockets: every error reply, and malformed,
oversized, binary, half-sent and pipelined input. The server must answer
each with the protocol's own error, change nothing, and stay up."""
import json
import os
import socket
import time

import pytest

from fwp import Raw, connect, pwdhash


def job(jid="abcdefgh", **kw):
    return json.dumps({"jid": jid, "jobtype": "T", "args": [], **kw})


def err(reply):
    assert isinstance(reply, tuple) and reply[0] == "ERR", reply
    return reply[1]


def test_greeting_without_password_is_compact_v2(server):
    c = Raw(server.fwp_port)
    assert c._line() == b'+HI {"v":2}'


def test_password_vectors():
    assert pwdhash("foobar", "55104dc76695721d", 1545) == \
        "6d877f8e5544b1f2598768f817413ab8a357afffa924dedae99eb91472d4ec30"
    assert pwdhash("abcde123", "123", 3) == \
        "ef646abadf4ffba660d9bbb8de8e45576970de917b4c9da8cad96b49e64636d9"


def test_greeting_with_password_and_legacy_single_hash(make_server):
    s = make_server(env={"JOBQ_FAKTORY_PASSWORD": "pw-of-the-test"})
    c = Raw(s.fwp_port)
    hi = c.hi()
    assert hi["v"] == 2 and 4000 <= hi["i"] <= 8095 and len(hi["s"]) == 16
    c2 = Raw(s.fwp_port)
    assert c2.hi()["s"] != hi["s"]  # a fresh salt per connection
    # v1 clients (and the Python library) hash once.
    c3 = Raw(s.fwp_port)
    assert c3.hello(password="pw-of-the-test", v=1) == "OK"
    c4 = Raw(s.fwp_port)
    assert err(c4.hello(password="wrong")) == "Invalid password"
    assert c4.closed()
    c5 = Raw(s.fwp_port)
    c5.hi()
    assert err(c5.cmd('HELLO {"v":2}')) == "Invalid password"  # no hash at all


def test_commands_before_hello_are_refused_and_closed(server):
    c = Raw(server.fwp_port)
    c.hi()
    assert "HELLO" in err(c.cmd(f"PUSH {job()}"))
    assert c.closed()
    assert server.get("/v1/jobs").json()["jobs"] == []


@pytest.mark.parametrize("hello, field", [
    ("not json", "malformed"), ("[1]", "object"), ('{"wid": "bad wid!"}', "wid"),
    ('{"pid": "x"}', "pid"), ('{"labels": {}}', "labels"), ('{"hostname": 5}', "hostname"),
])
def test_bad_hello_is_refused_and_closed(server, hello, field):
    c = Raw(server.fwp_port)
    c.hi()
    assert field in err(c.cmd("HELLO " + hello))
    assert c.closed()


@pytest.mark.parametrize("line, field", [
    ("PUSH", "malformed"),
    ("PUSH {", "malformed"),
    ("PUSH []", "object"),
    ('PUSH {"jobtype":"T","args":[]}', "jid"),
    ('PUSH {"jid":"short","jobtype":"T","args":[]}', "jid"),
    ('PUSH {"jid":"abcdefgh","args":[]}', "jobtype"),
    ('PUSH {"jid":"abcdefgh","jobtype":"T"}', "args"),
    ('PUSH {"jid":"abcdefgh","jobtype":"T","args":{}}', "args"),
    ('PUSH {"jid":"abcdefgh","jobtype":"T","args":[],"queue":"a b"}', "queue"),
    ('PUSH {"jid":"abcdefgh","jobtype":"T","args":[],"retry":"x"}', "retry"),
    ('PUSH {"jid":"abcdefgh","jobtype":"T","args":[],"retry":-2}', "retry"),
    ('PUSH {"jid":"abcdefgh","jobtype":"T","args":[],"reserve_for":5}', "reserve_for"),
    ('PUSH {"jid":"abcdefgh","jobtype":"T","args":[],"at":"tomorrow"}', "at"),
    ('PUSH {"jid":"abcdefgh","jobtype":"T","args":[],"priority":10}', "priority"),
    ('PUSH {"jid":"abcdefgh","jobtype":"T","args":[],"custom":[]}', "custom"),
    ('PUSH {"jid":"abcdefgh","jobtype":"T","args":[],"custom":{"priority":"urgent"}}', "priority"),
    ('PUSH {"jid":"abcdefgh","jobtype":"T","args":[],"custom":{"backoff":{"x":1}}}', "backoff"),
    ('PUSH {"jid":"abcdefgh","jobtype":"T","args":[],"custom":{"breaker_key":"a b"}}', "breaker_key"),
    ('PUSH {"jid":"abcdefgh","jid":"abcdefgi","jobtype":"T","args":[]}', "malformed"),
    ("PUSHB {}", "array"),
    ("PUSHB []", "array"),
    ("FETCH", "queue"),
    ("FETCH bad!queue", "queue"),
    ("ACK", "malformed"),
    ("ACK {}", "jid"),
    ('FAIL {"jid": 5}', "jid"),
    ("BEAT {}", "wid"),
    ('BEAT {"wid":"nobody"}', "unknown worker"),
    ("MUTATE {}", "cmd"),
    ('MUTATE {"cmd":"kill","target":"everything"}', "target"),
    ('MUTATE {"cmd":"kill","target":"dead","filter":{"jids":[1]}}', "jids"),
    ("QUEUE", "QUEUE"),
    ("QUEUE EXPLODE q", "EXPLODE"),
    ("QUEUE PAUSE bad!name", "queue name"),
    ("BATCH NEW {}", "not supported"),
    ("TRACK GET x", "not supported"),
    ("NOPE", "unknown command NOPE"),
    ("push " + job(), "unknown command push"),
    ("", "unknown command"),
])
def test_every_error_reply_names_what_is_wrong_and_changes_nothing(server, line, field):
    c = connect(server)
    assert field in err(c.cmd(line)), line
    assert c.cmd("INFO")  # still talking
    assert server.get("/v1/jobs").json()["jobs"] == []


def test_nested_json_is_bounded(server):
    c = connect(server)
    deep = "[" * 200 + "]" * 200
    assert "malformed" in err(c.cmd('PUSH {"jid":"abcdefgh","jobtype":"T","args":%s}' % deep))


def test_a_huge_line_is_refused_and_the_connection_closed(make_server):
    s = make_server(env={"JOBQ_MAX_BODY_BYTES": "4096"})
    c = connect(s)
    c.send("PUSH " + "x" * 10000)
    assert "line too long" in err(c.reply())
    assert c.closed()
    c = connect(s)  # the server goes on
    assert c.cmd("PUSH " + job(args=["y" * 3000])) == "OK"


def test_the_error_reaches_a_client_still_sending_its_line(make_server):
    """The refusal is followed by our FIN, not a reset: the client may go on
    sending what it had started (src/net/linger.h)."""
    s = make_server(env={"JOBQ_MAX_BODY_BYTES": "4096"})
    c = connect(s)
    c.send("PUSH " + "x" * 10000)
    time.sleep(0.3)  # refused and closed by now
    c.send("x" * 65536 + "\r\n")
    assert "line too long" in err(c.reply())
    assert c.closed()


def test_binary_garbage_gets_errors_not_a_crash(server):
    c = connect(server)
    c.send(bytes(range(256)).replace(b"\n", b"") + b"\r\n")
    assert "unknown command" in err(c.reply())
    c.send(b"\x00\xff\xfe PUSH \x00{}\r\n")
    assert err(c.reply())
    assert c.cmd("INFO")


def test_half_sent_lines_and_pipelined_commands(server):
    c = connect(server)
    line = f"PUSH {job('halfsent1')}\r\n".encode()
    for b in line:  # one byte at a time
        c.send(bytes([b]))
    assert c.reply() == "OK"
    # Three commands in one write, answered in order.
    c.send(f"PUSH {job('piped001')}\r\nPUSH {job('piped002')}\nFETCH default\r\n")
    assert c.reply() == "OK" and c.reply() == "OK"
    assert json.loads(c.reply())["jid"] == "halfsent1"
    assert server.job("piped002")["state"] == "queued"


def test_a_stalled_half_line_is_closed_after_the_body_timeout(make_server):
    s = make_server(env={"JOBQ_BODY_TIMEOUT": "500"})
    c = connect(s)
    c.send("PUSH {")
    time.sleep(1.2)
    assert c.closed()


def test_a_handshake_not_finished_in_2s_is_closed(server):
    c = Raw(server.fwp_port)
    c.hi()
    t0 = time.time()
    c.sock.settimeout(5)
    assert c.closed()
    assert 1.5 < time.time() - t0 < 4


def test_connections_past_the_limit_are_told_and_closed(make_server):
    s = make_server(env={"JOBQ_MAX_CONNECTIONS": "4"})
    held = [Raw(s.fwp_port) for _ in range(4)]
    extra = Raw(s.fwp_port)
    assert "too many connections" in err(extra.reply())
    assert extra.closed()
    for h in held:
        h.close()


def test_end_closes_without_a_reply(server):
    c = connect(server)
    c.send("END\r\n")
    assert c.closed()


def test_hello_twice_is_an_error(server):
    c = connect(server)
    assert "already" in err(c.cmd('HELLO {"v":2}'))


def test_same_job_again_is_idempotent_and_a_different_one_clashes(server):
    c = connect(server)
    assert c.cmd("PUSH " + job("idem0001", args=[1])) == "OK"
    assert c.cmd("PUSH " + job("idem0001", args=[1])) == "OK"
    assert "idem0001" in err(c.cmd("PUSH " + job("idem0001", args=[2])))
    assert len(server.get("/v1/jobs").json()["jobs"]) == 1


def test_a_finished_job_pushed_again_after_a_restart_is_not_enqueued_twice(make_server):
    """Its jid is only in the database then, behind the filter of stored
    ids, which must say "maybe" for it (a "no" skips the lookup)."""
    server = make_server(env={"JOBQ_FINISHED_IN_MEMORY": "0"})
    c = connect(server, wid="wr")
    for i in range(20):
        assert c.cmd("PUSH " + job(f"again{i:03d}", args=[i])) == "OK"
        assert json.loads(c.cmd("FETCH default"))["jid"] == f"again{i:03d}"
        assert c.cmd('ACK {"jid":"again%03d"}' % i) == "OK"
    server.restart()
    deadline = time.time() + 10
    while not os.environ.get("JOBQ_TEST_STORE", "").startswith("postgres") and \
            not any(l.get("msg") == "filter of stored ids ready" for l in server.log_lines()):
        assert time.time() < deadline, "the filter of stored ids never became ready"
        time.sleep(0.05)
    c = connect(server, wid="wr")
    for i in range(20):
        assert c.cmd("PUSH " + job(f"again{i:03d}", args=[i])) == "OK"
    assert c.cmd("PUSH " + job("fresh001")) == "OK"
    states = {j["id"]: j["state"] for j in server.get("/v1/jobs?limit=100").json()["jobs"]}
    assert len(states) == 21 and states["fresh001"] == "queued"
    assert all(states[f"again{i:03d}"] == "completed" for i in range(20))


def test_ack_of_a_job_held_by_another_worker_is_refused(server):
    a, b = connect(server, wid="wa"), connect(server, wid="wb")
    assert a.cmd("PUSH " + job("held0001")) == "OK"
    assert json.loads(a.cmd("FETCH default"))["jid"] == "held0001"
    assert "another worker" in err(b.cmd('ACK {"jid":"held0001"}'))
    assert b.cmd('ACK {"jid":"unknown-jid"}') == "OK"
    assert a.cmd('ACK {"jid":"held0001"}') == "OK"
    assert server.job("held0001")["state"] == "completed"


def test_fail_caps_and_trims_what_the_worker_sends(server):
    c = connect(server, wid="wf")
    assert c.cmd("PUSH " + job("failcap1", retry=-1)) == "OK"
    c.cmd("FETCH default")
    body = {"jid": "failcap1", "errtype": "  " + "E" * 300 + " ", "message": "",
            "backtrace": [f"line {i}" for i in range(500)]}
    assert c.cmd("FAIL " + json.dumps(body)) == "OK"
    e = server.job("failcap1")["errors"][-1]
    assert e["message"] == "unknown" and len(e["context"]["errtype"]) == 100
    assert len(e["context"]["backtrace"]) == 50
    # caps count characters, not bytes: 150 two-byte characters keep 100 whole ones
    assert c.cmd("PUSH " + job("failcap2", retry=-1)) == "OK"
    c.cmd("FETCH default")
    assert c.cmd("FAIL " + json.dumps({"jid": "failcap2", "errtype": "\u00e9" * 150,
                                       "message": "m" * 1500})) == "OK"
    e = server.job("failcap2")["errors"][-1]
    assert e["context"]["errtype"] == "\u00e9" * 100 and e["message"] == "m" * 1000


def test_roles_limit_the_commands(make_server):
    s = make_server(env={"JOBQ_API_KEYS": "rd:reader:reader-secret-0123456"})
    c = Raw(s.fwp_port)
    assert c.hello(password="reader-secret-0123456") == "OK"
    assert c.cmd("INFO")
    for line in (f"PUSH {job()}", "FETCH default", "FLUSH", "QUEUE PAUSE *"):
        assert "forbidden" in err(c.cmd(line)), line


def test_flush_deletes_every_job_but_the_running(server):
    c = connect(server, wid="wfl")
    for n in range(5):
        assert c.cmd("PUSH " + job(f"flush00{n}")) == "OK"
    assert json.loads(c.cmd("FETCH default"))["jid"] == "flush000"
    server.enqueue(id="flushdone", type="t")
    [l] = server.lease(queues=["default"])
    server.post(f"/v1/jobs/{l['id']}/complete", {"lease_id": l["lease_id"]})
    assert c.cmd("FLUSH") == "OK"
    left = [j["id"] for j in server.get("/v1/jobs").json()["jobs"]]
    assert left == ["flush000"], left


def test_a_client_gone_while_its_command_waits_is_cleaned_up(make_server):
    """Closed while a PUSH waits to be durable, while INFO's store read is
    in flight, and while a FETCH waits: the server frees each connection
    once (the sanitizer build fails on a use after free or a leak) and
    keeps serving."""
    s = make_server(env={"JOBQ_FAULT_COMMIT_DELAY_MS": "300", "JOBQ_FAULT_READ_DELAY_MS": "300"})
    for line in (f"PUSH {job('gone0001')}", "INFO", "FETCH nothing-here"):
        c = connect(s)
        c.send(line + "\r\n")
        time.sleep(0.05)
        c.close()
    time.sleep(0.8)
    c = connect(s)
    assert c.cmd("INFO")
    assert s.job("gone0001")["state"] == "queued"  # acknowledged or not, it was written


def test_shutdown_answers_fetches_refuses_pushes_and_takes_acks(make_server):
    import signal
    import threading
    s = make_server(env={"JOBQ_SHUTDOWN_GRACE": "5s"})
    w = connect(s, wid="wd")
    assert w.cmd("PUSH " + job("drain001")) == "OK"
    assert json.loads(w.cmd("FETCH default"))["jid"] == "drain001"
    waiting = connect(s, wid="wd")
    waiting.send("FETCH default\r\n")
    time.sleep(0.2)
    p = connect(s)
    s.proc.send_signal(signal.SIGTERM)
    t0 = time.time()
    assert waiting.reply() is None and time.time() - t0 < 1.5  # released at once
    assert "shutting down" in err(p.cmd("PUSH " + job("drain002")))
    assert w.cmd('ACK {"jid":"drain001"}') == "OK"  # running work may still report
    assert s.proc.wait(10) == 0
    s.proc = None
    s.log_file.close()
    s.start()
    assert s.job("drain001")["state"] == "completed"
    assert s.get("/v1/jobs/drain002").status_code == 404


def test_fetch_tries_queues_in_the_order_listed_then_priority(server):
    c = connect(server, wid="wo")
    assert c.cmd("PUSH " + job("order-b-crit", queue="b", priority=9)) == "OK"
    assert c.cmd("PUSH " + job("order-a-low1", queue="a", priority=2)) == "OK"
    assert c.cmd("PUSH " + job("order-a-high", queue="a", priority=8)) == "OK"
    got = [json.loads(c.cmd("FETCH a b"))["jid"] for _ in range(3)]
    assert got == ["order-a-high", "order-a-low1", "order-b-crit"], got
    assert c.cmd("QUEUE PAUSE a") == "OK"
    assert c.cmd("PUSH " + job("order-a-late", queue="a")) == "OK"
    assert c.cmd("PUSH " + job("order-b-late", queue="b")) == "OK"
    assert json.loads(c.cmd("FETCH a b"))["jid"] == "order-b-late"  # paused: skipped


def test_commands_and_errors_are_counted_in_metrics(server):
    c = connect(server)
    assert c.cmd("PUSH " + job("metric01")) == "OK"
    err(c.cmd("PUSH {"))
    err(c.cmd("WHAT"))
    text = server.get("/metrics").text
    assert 'jobq_faktory_commands_total{command="PUSH"} 2' in text
    assert 'jobq_faktory_errors_total{command="PUSH"} 1' in text
    assert 'jobq_faktory_commands_total{command="other"} 1' in text
    assert 'jobq_faktory_commands_total{command="HELLO"} 1' in text


def test_a_flood_of_bad_passwords_does_not_stall_the_server(make_server):
    """Each check costs thousands of SHA-256 per key; with 64 keys, 30 bogus
    HELLOs are seconds of hashing. They run off the loop thread: HTTP and
    established connections keep answering meanwhile."""
    keys = ",".join(f"k{i}:worker:secret-number-{i:04d}-xxxx" for i in range(64))
    s = make_server(env={"JOBQ_API_KEYS": keys})
    ok = Raw(s.fwp_port)
    assert ok.hello(password="secret-number-0063-xxxx") == "OK"
    flood = []
    for _ in range(30):
        c = Raw(s.fwp_port)
        hi = c.hi()
        c.send('HELLO {"v":2,"pwdhash":"%s"}\r\n' % ("0" * 64))
        flood.append(c)
    t0 = time.time()
    assert s.get("/health/live", timeout=5).status_code == 200
    assert ok.cmd("INFO")
    assert time.time() - t0 < 1.5, time.time() - t0
    outcomes = set()
    for c in flood:  # refused, or closed by the 2 s handshake deadline while queued
        c.sock.settimeout(30)
        try:
            r = c.reply()
            assert r == ("ERR", "Invalid password") or "busy" in r[1], r
            outcomes.add(r[1])
        except EOFError:
            outcomes.add("closed")
    assert "Invalid password" in outcomes, outcomes
    assert ok.cmd("INFO")


def test_stopping_with_connections_open_frees_every_one(make_server):
    """Stopped while 60 clients are connected, some waiting in FETCH (which
    the shutdown answers) and some idle: every connection is freed (the
    fixture fails on any leak the sanitizer sees) and the exit is clean."""
    s = make_server()
    conns = [connect(s, wid=f"stop{i}") for i in range(60)]
    for c in conns[:40]:
        c.send("FETCH default\r\n")
    for c in conns[40:50]:
        c.send("INFO\r\n")
    time.sleep(0.3)
    assert s.stop() == 0
    for c in conns[:40]:
        try:
            assert c.reply() is None
        except (EOFError, ConnectionResetError):
            pass


def test_beat_reports_show_in_workers(server):
    c = connect(server, wid="wbeat", labels=["blue"])
    assert c.cmd('BEAT {"wid":"wbeat","current_state":"quiet","rss_kb":12345}') == "OK"
    w = {x["id"]: x for x in server.get("/v1/workers").json()["workers"]}["wbeat"]
    assert w["reported_state"] == "quiet" and w["rss_kb"] == 12345 and w["labels"] == ["blue"]
    assert w["state"] == "active" and w["protocol"] == "faktory" and w["pid"] > 0


def test_rate_limits_apply_and_share_the_budget_with_http(make_server):
    s = make_server(env={"JOBQ_RATE_LIMIT": "2", "JOBQ_RATE_BURST": "5"})
    c = connect(s)
    replies = [c.cmd("INFO") for _ in range(8)]
    limited = [r for r in replies if isinstance(r, tuple)]
    assert 1 <= len(limited) <= 4 and "rate limited" in limited[0][1], replies
    # the same client (its address, without keys) over HTTP: the same bucket, empty now
    r = s.get("/v1/stats")
    assert r.status_code == 429, r.text


def test_info_lists_ten_thousand_queues_and_counts_them_all(server):
    """INFO listed every queue, built on the loop at each call (queue names
    are the clients'); it lists 10,000 now, as /v1/queues, and total_queues
    still counts every one."""
    c = connect(server)
    try:
        for b in range(11):
            jobs = [{"jid": f"infoq-{b:02d}-{i:04d}", "jobtype": "t", "args": [],
                     "queue": f"iq{b:02d}-{i:04d}"} for i in range(1000)]
            assert c.cmd("PUSHB " + json.dumps(jobs)) == "{}"
        info = json.loads(c.cmd("INFO"))["faktory"]
    finally:
        c.close()
    assert info["total_queues"] == 11000, info["total_queues"]
    assert len(info["queues"]) == 10000
    assert info["total_enqueued"] == 11000
