"""The binary `make run` ships (build/jobq: optimised, jemalloc, no
sanitizers) does what the sanitizer build the other tests drive does: a
full cycle over HTTP and the Faktory protocol, and a SIGKILL that loses
nothing."""
import json
import os
import socket

import conftest
from conftest import ROOT


def _release(make_server, monkeypatch, env=None):
    monkeypatch.setattr(conftest, "BIN", str(ROOT / "build" / "jobq"))
    return make_server(env=env)


def _fwp(port, line):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        f = s.makefile("rwb")
        assert f.readline().startswith(b"+HI")
        f.write(b'HELLO {"v":2}\r\n')
        f.flush()
        assert f.readline() == b"+OK\r\n"
        f.write(line.encode() + b"\r\n")
        f.flush()
        return f.readline()


def test_release_build_cycles_and_survives_a_kill(make_server, monkeypatch):
    s = _release(make_server, monkeypatch, env={"JOBQ_DURABILITY": "os"})
    assert os.readlink(f"/proc/{s.proc.pid}/exe") == str(ROOT / "build" / "jobq")
    assert "libjemalloc" in open(f"/proc/{s.proc.pid}/maps").read()
    ids = [s.enqueue(type="t", args={"n": i})["id"] for i in range(50)]
    assert _fwp(s.fwp_port, 'PUSH ' + json.dumps({"jid": "rel-0001", "jobtype": "t", "args": [1]})) == b"+OK\r\n"
    jobs = s.lease(max=10)
    assert len(jobs) == 10
    for j in jobs:
        assert s.post(f"/v1/jobs/{j['id']}/complete", {"lease_id": j["lease_id"]}).status_code == 200
    s.kill()
    s.start()
    counts = s.get("/v1/stats").json()["counts"]
    assert counts["completed"] == 10 and counts["queued"] == 41, counts
    assert s.job(ids[-1])["args"] == {"n": 49}
