"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries,
a new cluster in a temporary folder, listening on a free loopback port
(and a socket in that folder), trust authentication for the one user
`jobq`, stopped and removed at the end. As root (CI) the server runs as
the `postgres` user, which PostgreSQL requires."""
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile


def _bin_dir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL's server is not installed (make test installs it)")
    return os.path.dirname(found[-1])


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Postgres:
    def __init__(self, options=""):
        """options: more server settings (-c name=value ...), for benchmarks."""
        self.bin = _bin_dir()
        self.root = tempfile.mkdtemp(prefix="jobq-pg-")
        self.data = os.path.join(self.root, "data")
        self.log = os.path.join(self.root, "server.log")
        self.as_user = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.port = _free_port()
        self.options = options
        self._run("initdb", "-D", self.data, "-U", "jobq", "--auth=trust", "--encoding=UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        self.start()
        self.count = 0

    def start(self):
        """Starts the server (again, after halt()), on the same port."""
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                  f"-c max_connections=200 -c shared_buffers=32MB {self.options}", "start")

    def halt(self, mode="fast"):
        """Stops the server, keeping its data for start()."""
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def _processes(self):
        """The postmaster and every process it started (sessions included)."""
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            main = int(f.readline())
        kids = subprocess.run(["pgrep", "-P", str(main)], capture_output=True, text=True,
                              timeout=10).stdout.split()
        return [main, *map(int, kids)]

    def freeze(self):
        """Stops every process of the server (SIGSTOP): it still holds its
        sockets, and the kernel acknowledges what clients send, but nothing
        answers, as with a hung host or disk. thaw() ends it."""
        self.frozen = self._processes()
        for pid in self.frozen:
            os.kill(pid, signal.SIGSTOP)

    def thaw(self):
        for pid in getattr(self, "frozen", []):
            os.kill(pid, signal.SIGCONT)
        self.frozen = []

    def _run(self, tool, *args):
        subprocess.run([*self.as_user, os.path.join(self.bin, tool), *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def psql(self, sql, db="postgres"):
        """Runs sql; returns the rows as lists of strings (unaligned, tab-separated)."""
        out = subprocess.run([os.path.join(self.bin, "psql"), "-h", "127.0.0.1", "-p",
                              str(self.port), "-U", "jobq", "-d", db, "-X", "-q", "-A", "-t",
                              "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                             check=True, capture_output=True, text=True, timeout=60).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def new_database(self):
        """A new empty database; returns its URL."""
        self.count += 1
        name = f"jobq_test_{self.count}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def url(self, db):
        return f"postgres://jobq@127.0.0.1:{self.port}/{db}"

    def stop(self):
        self.thaw()
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class HeldSession:
    """A psql session of its own that stays open: an operator's transaction
    left holding locks."""
    def __init__(self, postgres, url):
        self.p = subprocess.Popen([postgres.bin + "/psql", "-h", "127.0.0.1", "-p",
                                   str(postgres.port), "-U", "jobq", "-d",
                                   url.rsplit("/", 1)[1], "-X", "-q", "-A", "-t"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, sql):
        """Sends sql and waits for the marker after it: the statement ran."""
        self.p.stdin.write(sql + "\nSELECT 'done-marker';\n")
        self.p.stdin.flush()
        for line in self.p.stdout:
            if line.strip() == "done-marker":
                return
        raise AssertionError("psql ended")

    def close(self):
        self.p.stdin.close()
        self.p.wait(10)


def history_parts(postgres, url):
    """The names of the partitions of history in the database at url."""
    return sorted(r[0] for r in postgres.psql("SELECT c.relname FROM pg_inherits i JOIN"
                                              " pg_class c ON c.oid = i.inhrelid WHERE"
                                              " i.inhparent = 'history'::regclass",
                                              db=url.rsplit("/", 1)[1]))


def rows(postgres, url, sql):
    """sql's rows in the database at url (Postgres.psql)."""
    return postgres.psql(sql, db=url.rsplit("/", 1)[1])


def _doc_6(t):
    """Schema 6's reading of a row's args apart (postgres_schema.c)."""
    return (f"CASE WHEN {t}args IS NOT NULL AND {t}args_at BETWEEN 0 AND length({t}doc) THEN"
            f" overlay({t}doc PLACING {t}args FROM {t}args_at + 1 FOR 0) ELSE {t}doc END")


def undo_schema_8(postgres, url):
    """The database at url as schema 7 left it: each job's args apart in
    its own row (a column, args), no payloads table."""
    back = " ".join(f"UPDATE {t} j SET args = p.args FROM payloads p WHERE p.id = j.id AND"
                    f" p.origin = coalesce(j.origin, 0);" for t in ("jobs", "history"))
    rows(postgres, url,
         "DROP VIEW jobs_all; ALTER TABLE jobs ADD COLUMN args bytea;"
         " ALTER TABLE history ADD COLUMN args bytea; " + back +
         " CREATE VIEW jobs_all AS SELECT id, queue, type, state, priority, created_at,"
         f" updated_at, run_at, {_doc_6('')} AS doc, bkey, owner, token FROM jobs"
         " UNION ALL SELECT id, queue, type, state, priority, created_at, updated_at, run_at,"
         f" {_doc_6('')} AS doc, bkey, NULL::bigint, token FROM history;"
         " DROP TABLE payloads; DELETE FROM schema_migrations WHERE version >= 8")
