"""Built-in download runner (http.download on queue "download") against a
local file server that supports Range and can cut a body short."""
import hashlib
import http.server
import os
import time

import pytest

from conftest import http_server, runner_job

DATA = bytes((i * 7 + i // 251) % 256 for i in range(300_000))
SHA = hashlib.sha256(DATA).hexdigest()


class Files(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests = []
    cut_once = set()

    def do_GET(self):
        rng = self.headers.get("Range")
        Files.requests.append((self.path, rng))
        if self.path == "/missing":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path in ("/norange-cut", "/other"):
            rng = None
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        body = DATA[start:] if self.path != "/other" else DATA[::-1]
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(DATA) - 1}/{len(DATA)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path == "/slow":
            for i in range(0, len(body), 20_000):
                self.wfile.write(body[i:i + 20_000])
                self.wfile.flush()
                time.sleep(0.25)
            return
        if self.path in ("/cut", "/norange-cut") and self.path not in Files.cut_once:
            Files.cut_once.add(self.path)
            self.wfile.write(body[:100_000])  # then hang up mid-body
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def files():
    Files.requests, Files.cut_once = [], set()
    with http_server(Files) as url:
        yield url


@pytest.fixture
def dl_server(make_server, tmp_path):
    root = tmp_path / "downloads"
    s = make_server(env={"JOBQ_RUNNERS": "download=2", "JOBQ_DOWNLOAD_DIR": str(root),
                         "JOBQ_DOWNLOAD_ALLOW_PRIVATE": "true"})
    s.root = root
    return s


def dl(server, jid, args, **extra):
    runner_job(server, jid, "http.download", "download", args, **extra)




def test_download_verifies_and_lands_in_place(dl_server, files):
    dl(dl_server, "a", {"url": files + "/f", "path": "sub/dir/file.bin", "sha256": SHA})
    j = dl_server.wait_finished("a")
    assert j["state"] == "completed", j["errors"]
    assert j["result"] == {"path": "sub/dir/file.bin", "bytes": len(DATA), "sha256": SHA, "resumed_from": 0}
    target = dl_server.root / "sub" / "dir" / "file.bin"
    assert target.read_bytes() == DATA
    assert sorted(os.listdir(target.parent)) == ["file.bin"]  # no .part left behind


def test_checksum_mismatch_fails_for_good_and_leaves_nothing(dl_server, files):
    dl(dl_server, "bad", {"url": files + "/f", "path": "x.bin", "sha256": "0" * 64}, max_retries=3)
    j = dl_server.wait_finished("bad")
    assert j["state"] == "failed" and j["attempts"] == 1
    assert j["errors"][0]["type"] == "validation" and "checksum mismatch" in j["errors"][0]["message"]
    assert os.listdir(dl_server.root) == []


def test_interrupted_download_resumes_with_range(dl_server, files):
    dl(dl_server, "cut", {"url": files + "/cut", "path": "cut.bin", "sha256": SHA}, max_retries=2)
    j = dl_server.wait_finished("cut")
    assert j["state"] == "completed", j["errors"]
    assert j["attempts"] == 2 and j["errors"][0]["type"] == "unavailable"
    assert j["result"]["resumed_from"] == 100_000
    assert ("/cut", "bytes=100000-") in Files.requests
    assert (dl_server.root / "cut.bin").read_bytes() == DATA


def test_paths_cannot_escape_the_folder(dl_server, files, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dl_server.root.mkdir(exist_ok=True)
    os.symlink(outside, dl_server.root / "link")
    for jid, path in [("abs", "/etc/x"), ("up", "../x"), ("mid", "a/../../x"), ("dot", "./x"),
                      ("sym", "link/x")]:
        dl(dl_server, jid, {"url": files + "/f", "path": path}, max_retries=3)
    for jid in ["abs", "up", "mid", "dot", "sym"]:
        j = dl_server.wait_finished(jid)
        assert j["state"] == "failed" and j["attempts"] == 1, jid
        assert j["errors"][0]["type"] == "validation", jid
    assert os.listdir(outside) == []
    assert Files.requests == []


def test_existing_file_needs_overwrite(dl_server, files):
    dl(dl_server, "one", {"url": files + "/f", "path": "same.bin"})
    assert dl_server.wait_finished("one")["state"] == "completed"
    dl(dl_server, "two", {"url": files + "/f", "path": "same.bin"})
    assert dl_server.wait_finished("two")["errors"][0]["type"] == "conflict"
    dl(dl_server, "three", {"url": files + "/f", "path": "same.bin", "overwrite": True})
    assert dl_server.wait_finished("three")["state"] == "completed"


def test_404_is_not_retried_and_max_bytes_is_enforced(dl_server, files):
    dl(dl_server, "nf", {"url": files + "/missing", "path": "nf.bin"}, max_retries=3)
    dl(dl_server, "big", {"url": files + "/f", "path": "big.bin", "max_bytes": 1000}, max_retries=3)
    nf = dl_server.wait_finished("nf")
    assert nf["attempts"] == 1 and nf["errors"][0]["type"] == "not_found"
    big = dl_server.wait_finished("big")
    assert big["attempts"] == 1 and big["errors"][0]["type"] == "validation"
    assert not (dl_server.root / "big.bin").exists()


def test_progress_is_visible_while_running(dl_server, files):
    dl(dl_server, "slow", {"url": files + "/slow", "path": "slow.bin"})
    seen = None
    end = time.time() + 10
    while time.time() < end and seen is None:
        j = dl_server.job("slow")
        if j["state"] == "running" and j["progress"]:
            seen = j["progress"]
        time.sleep(0.1)
    assert seen and 0 < seen["bytes"] < len(DATA) and seen["total"] == len(DATA)
    assert 0 < seen["percent"] < 100 and seen["bytes_per_s"] > 0
    assert dl_server.wait_finished("slow")["state"] == "completed"


def test_private_addresses_are_refused_by_default(make_server, files, tmp_path):
    server = make_server(env={"JOBQ_RUNNERS": "download=1", "JOBQ_DOWNLOAD_DIR": str(tmp_path / "d")})
    dl(server, "priv", {"url": files + "/f", "path": "p.bin"}, max_retries=3)
    j = server.wait_finished("priv")
    assert j["attempts"] == 1 and j["errors"][0]["type"] == "validation"
    assert "JOBQ_DOWNLOAD_ALLOW_PRIVATE" in j["errors"][0]["message"]
    assert Files.requests == []


def test_cli_download_and_wait(dl_server, files):
    from test_cli import jobq
    r = jobq("download", files + "/f?x=1", "--sha256", SHA, "--wait", server=dl_server)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "completed" in r.stdout.splitlines()[-1]
    assert (dl_server.root / "f").read_bytes() == DATA
    r = jobq("download", files + "/missing", "--to", "m.bin", "--wait", "--max-retries", "0",
             server=dl_server)
    assert r.returncode == 1 and "failed" in r.stdout
    r = jobq("download", files + "/f", "--to", "later.bin", server=dl_server)
    assert r.returncode == 0 and r.stdout.startswith("enqueued ")


def test_cancel_stops_a_running_download(dl_server, files):
    dl(dl_server, "stop-me", {"url": files + "/slow", "path": "stop.bin"})
    end = time.time() + 5
    while time.time() < end and dl_server.job("stop-me")["state"] != "running":
        time.sleep(0.05)
    dl_server.post("/v1/jobs/stop-me/cancel")
    j = dl_server.wait_finished("stop-me", timeout=5)
    assert j["state"] == "cancelled"
    assert not (dl_server.root / "stop.bin").exists()


def test_an_interrupted_download_without_range_support_starts_over(dl_server, files):
    """curl failed a 200 answer to a Range request ("range was not delivered")
    on every retry, and the job failed with its .part left behind."""
    dl(dl_server, "nr", {"url": files + "/norange-cut", "path": "nr.bin", "sha256": SHA},
       max_retries=2)
    j = dl_server.wait_finished("nr")
    assert j["state"] == "completed", j["errors"]
    assert j["result"]["resumed_from"] == 0 and j["attempts"] == 2
    assert (dl_server.root / "nr.bin").read_bytes() == DATA
    assert os.listdir(dl_server.root) == ["nr.bin"]


def test_a_new_job_never_resumes_another_jobs_part(dl_server, files):
    """A .part left by an unrelated job to the same path was resumed: half
    the bytes came from the other URL."""
    dl(dl_server, "first", {"url": files + "/cut", "path": "same.bin"}, max_retries=0)
    assert dl_server.wait_finished("first")["state"] == "failed"
    assert any(n.endswith(".part") for n in os.listdir(dl_server.root))
    dl(dl_server, "second", {"url": files + "/other", "path": "same.bin"})
    j = dl_server.wait_finished("second")
    assert j["state"] == "completed", j["errors"]
    assert j["result"]["resumed_from"] == 0
    assert (dl_server.root / "same.bin").read_bytes() == DATA[::-1]


def test_a_part_planted_as_a_hard_link_is_not_written_through(dl_server, files, tmp_path):
    dl(dl_server, "hl", {"url": files + "/cut", "path": "hl.bin"}, max_retries=0)
    assert dl_server.wait_finished("hl")["state"] == "failed"
    part = [n for n in os.listdir(dl_server.root) if n.endswith(".part")][0]
    outside = tmp_path / "precious"
    outside.write_bytes(b"keep me")
    os.unlink(dl_server.root / part)
    os.link(outside, dl_server.root / part)
    assert dl_server.post("/v1/jobs/hl/retry").status_code == 200
    j = dl_server.wait_finished("hl")
    assert j["state"] == "completed", j["errors"]
    assert j["result"]["resumed_from"] == 0
    assert outside.read_bytes() == b"keep me"
    assert (dl_server.root / "hl.bin").read_bytes() == DATA


def test_unspecified_and_mapped_addresses_are_refused(make_server, tmp_path):
    """http://[::]:PORT/ reached a server on ::1 though private targets are off."""
    import http.server as hs
    import socket as so
    import threading as th

    class V6(hs.ThreadingHTTPServer):
        address_family = so.AF_INET6
    Files.requests = []
    srv = V6(("::1", 0), Files)
    th.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    try:
        s = make_server(env={"JOBQ_RUNNERS": "download=1", "JOBQ_DOWNLOAD_DIR": str(tmp_path / "d")})
        urls = [f"http://[::]:{port}/f", f"http://[0:0:0:0:0:0:0:0]:{port}/f",
                f"http://[::1]:{port}/f", f"http://[::ffff:127.0.0.1]:{port}/f",
                f"http://0.0.0.0:{port}/f"]
        for i, url in enumerate(urls):
            dl(s, f"v6-{i}", {"url": url, "path": f"v6-{i}.bin"}, max_retries=0)
        for i, url in enumerate(urls):
            j = s.wait_finished(f"v6-{i}")
            assert j["state"] == "failed", url
            assert j["errors"][0]["type"] == "validation", (url, j["errors"])
        assert Files.requests == []
    finally:
        srv.shutdown()
        srv.server_close()
