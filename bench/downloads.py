#!/usr/bin/python3
"""Download throughput: jobq's download runner against curl, same files, same
loopback server, same run. Many small files, then one large file.

Usage: bench/downloads.py [--small N] [--small-kb K] [--large-mb M] [--concurrency C]
Needs build/jobq and curl. Bounded: every wait has a deadline."""
import argparse
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request

from jobq_server import Jobq



def serve(folder):
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=folder, **k)
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def api(url, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def jobq_fetch(url, base, names, out, concurrency, deadline_s=300):
    jobq = Jobq({"JOBQ_RUNNERS": f"download={concurrency}", "JOBQ_DOWNLOAD_DIR": out,
                 "JOBQ_DOWNLOAD_ALLOW_PRIVATE": "true"})
    api_url = jobq.url
    try:
        t0 = time.monotonic()
        for i in range(0, len(names), 1000):
            chunk = names[i:i + 1000]
            api(api_url, "/v1/jobs/batch", {"jobs": [
                {"type": "http.download", "queue": "download",
                 "args": {"url": f"{base}/{n}", "path": n}} for n in chunk]})
        while time.monotonic() - t0 < deadline_s:
            st = api(api_url, "/v1/stats")["counts"]
            if st["completed"] + st["failed"] == len(names):
                assert st["failed"] == 0, st
                return time.monotonic() - t0
            time.sleep(0.02)
        raise SystemExit("jobq did not finish in time")
    finally:
        jobq.stop()


def curl_fetch(base, names, out, concurrency):
    args = ["curl", "-sS", "--no-progress-meter", "--fail", "-Z", "--parallel-max", str(concurrency),
            "--output-dir", out]
    for n in names:
        args += ["-o", n, f"{base}/{n}"]
    t0 = time.monotonic()
    subprocess.run(args, check=True, timeout=300)
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=500)
    ap.add_argument("--small-kb", type=int, default=16)
    ap.add_argument("--large-mb", type=int, default=256)
    ap.add_argument("--concurrency", type=int, default=8)
    a = ap.parse_args()
    work = tempfile.mkdtemp()
    try:
        files = os.path.join(work, "files")
        os.mkdir(files)
        small = [f"s{i:05d}.bin" for i in range(a.small)]
        for n in small:
            with open(os.path.join(files, n), "wb") as f:
                f.write(os.urandom(a.small_kb * 1024))
        with open(os.path.join(files, "large.bin"), "wb") as f:
            for _ in range(a.large_mb):
                f.write(os.urandom(1 << 20))
        srv = serve(files)
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        for label, names, size in [(f"{a.small} x {a.small_kb} KiB", small, a.small * a.small_kb / 1024),
                                   (f"1 x {a.large_mb} MiB", ["large.bin"], a.large_mb)]:
            res = {}
            for tool in ("curl", "jobq"):
                out = os.path.join(work, tool)
                shutil.rmtree(out, ignore_errors=True)
                os.mkdir(out)
                secs = (curl_fetch(base, names, out, a.concurrency) if tool == "curl"
                        else jobq_fetch(base, base, names, out, a.concurrency))
                res[tool] = secs
                print(f"{label:>18}  {tool:5} {secs:7.2f} s  {size / secs:8.1f} MiB/s  "
                      f"{len(names) / secs:8.1f} files/s", flush=True)
            print(f"{label:>18}  jobq/curl time ratio {res['jobq'] / res['curl']:.2f}", flush=True)
        srv.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
