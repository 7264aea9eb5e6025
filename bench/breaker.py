#!/usr/bin/python3
"""What a circuit breaker saves when a dependency dies.

A loopback "dead" server accepts connections and never answers, so every
webhook attempt against it waits out its whole timeout. N doomed jobs to it
are enqueued first, then M healthy jobs to a live loopback server, all on
the built-in webhook runner (4 slots). Measured with the breaker off and on:

  - runner seconds burnt on doomed attempts (attempts x timeout),
  - how long the healthy jobs take to finish (they queue behind the doomed),
  - the mean cost of one doomed job: with the breaker open it is not run at
    all (no attempt is spent) until a probe succeeds.

Usage: bench/breaker.py [DOOMED] [HEALTHY] [TIMEOUT_MS]   (defaults 40 20 2000)
Bounded: every wait has a deadline; the servers stop by themselves.
"""
import http.server
import json
import socket
import sys
import threading
import time

import requests

from jobq_server import Jobq



class Live(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *a):
        pass


def dead_server():
    """Accepts and holds connections without a byte of reply."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(256)
    held = []

    def loop():
        s.settimeout(0.5)
        end = time.time() + 600
        while time.time() < end:
            try:
                held.append(s.accept()[0])
            except socket.timeout:
                continue
            except OSError:
                return
    threading.Thread(target=loop, daemon=True).start()
    return s, held


def run(breaker_on, doomed, healthy, timeout_ms, dead_url, live_url):
    jobq = Jobq({"JOBQ_RUNNERS": "webhook=4",
                 "JOBQ_BREAKER_FAILURES": "5" if breaker_on else "0",
                 "JOBQ_BREAKER_RATIO": "0", "JOBQ_BREAKER_COOLDOWN": "60s"})
    url = jobq.url
    try:
        s = requests.Session()
        t0 = time.time()
        def job(i, target, kind):
            return {"id": f"{kind}{i}", "type": "http.request", "queue": "webhook",
                    "max_retries": 0, "args": {"url": target, "method": "POST",
                                               "timeout_ms": timeout_ms}}
        s.post(url + "/v1/jobs/batch", json={"jobs": [job(i, dead_url, "dead") for i in range(doomed)]})
        s.post(url + "/v1/jobs/batch", json={"jobs": [job(i, live_url, "live") for i in range(healthy)]})
        deadline = time.time() + doomed * timeout_ms / 1000 + 60
        live_done = None
        while time.time() < deadline:
            states = [s.get(f"{url}/v1/jobs/live{i}").json()["state"] for i in range(healthy)]
            if all(st == "completed" for st in states):
                live_done = time.time() - t0
                break
            time.sleep(0.05)
        attempts = sum(s.get(f"{url}/v1/jobs/dead{i}").json()["attempts"] for i in range(doomed))
        return {"breaker": "on" if breaker_on else "off", "healthy_done_s": live_done,
                "doomed_attempts": attempts,
                "runner_seconds_burnt": attempts * timeout_ms / 1000,
                "per_doomed_job_s": attempts * timeout_ms / 1000 / doomed}
    finally:
        jobq.stop()


def main():
    doomed = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    healthy = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    timeout_ms = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    dead, _held = dead_server()
    live = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Live)
    threading.Thread(target=live.serve_forever, daemon=True).start()
    dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}/"
    live_url = f"http://127.0.0.1:{live.server_address[1]}/"
    print(f"{doomed} doomed jobs (timeout {timeout_ms} ms) then {healthy} healthy, webhook=4")
    results = [run(False, doomed, healthy, timeout_ms, dead_url, live_url),
               run(True, doomed, healthy, timeout_ms, dead_url, live_url)]
    for r in results:
        print(json.dumps(r))
    off, on = results
    if off["healthy_done_s"] and on["healthy_done_s"]:
        print(f"healthy jobs finish {off['healthy_done_s'] / on['healthy_done_s']:.1f}x sooner "
              f"with the breaker; runner time burnt on the dead host "
              f"{off['runner_seconds_burnt'] / max(on['runner_seconds_burnt'], 1e-9):.1f}x less")
    live.shutdown()
    dead.close()


if __name__ == "__main__":
    main()
