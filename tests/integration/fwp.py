"""Faktory protocol helpers for the tests: a raw-socket client (every byte
ours, for malformed input) and the real faktory-worker library from npm,
run through faktory/driver.js."""
import hashlib
import json
import os
import socket
import subprocess
from pathlib import Path

DRIVER = Path(__file__).resolve().parent / "faktory" / "driver.js"
NODE_PATH = os.environ.get(
    "JOBQ_NODE_PATH", str(Path(__file__).resolve().parents[2] / "build" / "node" / "node_modules"))


def pwdhash(password, salt, iterations):
    h = hashlib.sha256((password + salt).encode()).digest()
    for _ in range(iterations - 1):
        h = hashlib.sha256(h).digest()
    return h.hex()


class Raw:
    """One connection, replies parsed as RESP. Every read has a timeout."""

    def __init__(self, port, timeout=5):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"closed; unread {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        """'+OK' -> 'OK'; '-ERR x' -> ('ERR', 'x'); bulk -> str; null -> None."""
        line = self._line()
        kind, rest = line[:1], line[1:].decode()
        if kind == b"+":
            return rest
        if kind == b"-":
            return ("ERR", rest[4:] if rest.startswith("ERR ") else rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError("closed inside a bulk reply")
                self.buf += chunk
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode()
        raise AssertionError(f"unexpected reply line {line!r}")

    def closed(self):
        """True if the server closed the connection (after any reply)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:  # closed with our input unread
            return True
        except socket.timeout:
            return False

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def hi(self):
        line = self.reply()
        assert line.startswith("HI "), line
        return json.loads(line[3:])

    def hello(self, password=None, v=2, **fields):
        hi = self.hi()
        hello = {"hostname": "test", "pid": os.getpid(), "v": v, **fields}
        if password is not None and "s" in hi:
            hello["pwdhash"] = pwdhash(password, hi["s"], hi["i"] if v >= 2 else 1)
        return self.cmd("HELLO " + json.dumps(hello))


def connect(server, **hello):
    c = Raw(server.fwp_port)
    assert c.hello(**hello) == "OK"
    return c


def node(server, op, timeout=60, **args):
    """Runs one driver command with the real client; returns its JSON result."""
    url = args.pop("url", f"tcp://127.0.0.1:{server.fwp_port}")
    cmd = {"op": op, "url": url, "timeout_ms": int(timeout * 1000), **args}
    env = dict(os.environ, NODE_PATH=NODE_PATH)
    p = subprocess.run(["node", str(DRIVER), json.dumps(cmd)], capture_output=True, text=True,
                       timeout=timeout + 10, env=env)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    assert lines, f"driver gave nothing (rc {p.returncode}):\n{p.stdout}\n{p.stderr}"
    return json.loads(lines[-1])
