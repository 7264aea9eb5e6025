"""A fresh jobq for a benchmark: build/jobq on a free loopback port with its
own data folder, none of the caller's JOBQ_* settings, logging at warn.
Shared by the Python benchmarks in bench/ (import jobq_server)."""
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "jobq")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Jobq:
    """Starts at once; `url` is its base URL. data: an existing data folder
    to reuse (kept on stop), else a new one (removed on stop)."""

    def __init__(self, settings=None, data=None):
        self.own_data = data is None
        self.data = data or tempfile.mkdtemp()
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBQ_")}
        env.update({"JOBQ_ENV_FILE": "/nonexistent", "JOBQ_LOG_LEVEL": "warn"})
        env.update(settings or {})
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}",
                                      "--data-dir", self.data], env=env,
                                     stderr=subprocess.DEVNULL)
        for _ in range(400):
            try:
                urllib.request.urlopen(self.url + "/health/live", timeout=1).read()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("jobq did not start")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.own_data:
            shutil.rmtree(self.data, ignore_errors=True)
