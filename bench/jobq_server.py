"""A fresh jobq for a benchmark: build/jobq on a free loopback port with its
own data folder, none of the caller's JOBQ_* settings, logging at warn.
Shared by the Python benchmarks in bench/ (import jobq_server)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "jobq")


def builds(args):
    """The builds an A/B bench compares, from its arguments: this build,
    and with `--ab OTHER_JOBQ` first that binary too. Returns them as
    (name, path) pairs and the arguments left."""
    found = [("this build", BIN)]
    if args[:1] == ["--ab"]:
        found.append((args[1], os.path.abspath(args[1])))
        args = args[2:]
    return found, args


def call(url, path, body=None, timeout=60):
    """An HTTP call to jobq: POST body as JSON (GET without one); the
    reply's JSON, or None when it has no body. A 4xx or 5xx raises."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method="POST" if data else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Jobq:
    """Starts at once and waits until it is ready (`ready_s` says how long
    that took); `url` is its base URL. data: an existing data folder to
    reuse (kept on stop), else a new one (removed on stop)."""

    def __init__(self, settings=None, data=None, start_timeout=20):
        self.own_data = data is None
        self.data = data or tempfile.mkdtemp()
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBQ_")}
        env.update({"JOBQ_ENV_FILE": "/nonexistent", "JOBQ_LOG_LEVEL": "warn"})
        env.update(settings or {})
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        t0 = time.monotonic()
        self.proc = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}",
                                      "--data-dir", self.data], env=env,
                                     stderr=subprocess.DEVNULL)
        while time.monotonic() - t0 < start_timeout:
            try:
                urllib.request.urlopen(self.url + "/health/ready", timeout=5).read()
                self.ready_s = time.monotonic() - t0
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("jobq did not start")

    def rss_bytes(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.own_data:
            shutil.rmtree(self.data, ignore_errors=True)
