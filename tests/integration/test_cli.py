"""The jobq binary's client and admin subcommands, as a user runs them."""
import json
import sqlite3
import subprocess

import pytest

from conftest import BIN, clean_env


def jobq(*args, server=None, env=None, cwd=None):
    e = clean_env(env)
    if server is not None:
        e["JOBQ_URL"] = server.url
    return subprocess.run([BIN, *args], capture_output=True, text=True, env=e, cwd=cwd, timeout=30)


def test_enqueue_get_list_cancel_retry_stats(server):
    r = jobq("enqueue", "email", "--queue", "mail", "--args", '{"to":"x"}', "--priority", "high",
             "--id", "cli-1", server=server)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("enqueued cli-1 (state queued)")
    r = jobq("get", "cli-1", "--json", server=server)
    job = json.loads(r.stdout)
    assert job["args"] == {"to": "x"} and job["priority"] == "high" and job["queue"] == "mail"
    r = jobq("get", "cli-1", server=server)
    assert "state:       queued" in r.stdout and "queue:       mail" in r.stdout
    r = jobq("list", "--queue", "mail", server=server)
    assert r.returncode == 0 and "cli-1" in r.stdout and "STATE" in r.stdout
    r = jobq("list", "--json", "--state", "queued", server=server)
    assert [j["id"] for j in json.loads(r.stdout)["jobs"]] == ["cli-1"]
    r = jobq("cancel", "cli-1", server=server)
    assert r.returncode == 0 and "cli-1" in r.stdout and "cancelled" in r.stdout
    r = jobq("retry", "cli-1", server=server)
    assert r.returncode == 0 and "queued" in r.stdout
    r = jobq("stats", server=server)
    assert r.returncode == 0 and "queued" in r.stdout and "enqueued" in r.stdout
    r = jobq("stats", "--json", server=server)
    assert json.loads(r.stdout)["totals"]["enqueued"] == 1


def test_errors_are_one_line_and_nonzero(server):
    r = jobq("get", "missing", server=server)
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "not_found" in r.stderr and "404" in r.stderr
    r = jobq("cancel", "missing", server=server)
    assert r.returncode == 1
    r = jobq("enqueue", "t", "--args", "{not json", server=server)
    assert r.returncode == 2 and "--args" in r.stderr
    r = jobq("enqueue", "bad type!", server=server)
    assert r.returncode == 1 and "validation" in r.stderr
    r = jobq("list", "--bogus", "1", server=server)
    assert r.returncode == 2 and "--bogus" in r.stderr
    r = jobq("frobnicate")
    assert r.returncode == 2 and "unknown command" in r.stderr


def test_unreachable_server():
    r = jobq("stats", "--server", "http://127.0.0.1:1")
    assert r.returncode == 1 and "cannot reach" in r.stderr


def test_version_and_help():
    r = jobq("version")
    assert r.returncode == 0 and r.stdout.startswith("jobq ")
    r = jobq("help")
    assert r.returncode == 0
    for word in ["serve", "enqueue", "migrate", "JOBQ_LISTEN", "JOBQ_DURABILITY", "--json"]:
        assert word in r.stdout


def test_print_config_precedence(tmp_path):
    (tmp_path / ".env").write_text("JOBQ_LISTEN=127.0.0.1:1111\nJOBQ_LOG_LEVEL=warn\nJOBQ_DEFAULT_MAX_RETRIES=7\n")
    env = {"JOBQ_ENV_FILE": str(tmp_path / ".env"), "JOBQ_LOG_LEVEL": "error"}
    r = jobq("serve", "--print-config", "--default-max-retries", "9", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    cfg = dict(line.split("=", 1) for line in r.stdout.splitlines())
    assert cfg["JOBQ_LISTEN"] == "127.0.0.1:1111"      # .env over default
    assert cfg["JOBQ_LOG_LEVEL"] == "error"            # environment over .env
    assert cfg["JOBQ_DEFAULT_MAX_RETRIES"] == "9"      # flag over everything
    assert cfg["JOBQ_DURABILITY"] == "fsync"
    assert cfg["JOBQ_DATABASE_URL"] == "sqlite://./data/jobq.db"


def test_bad_config_stops_startup_naming_key_and_value(tmp_path):
    r = jobq("serve", "--durability", "sometimes", cwd=tmp_path)
    assert r.returncode == 2
    assert "JOBQ_DURABILITY" in r.stderr and "sometimes" in r.stderr and "fsync" in r.stderr
    r = jobq("serve", env={"JOBQ_MAX_BODY_BYTES": "lots"}, cwd=tmp_path)
    assert r.returncode == 2 and "JOBQ_MAX_BODY_BYTES" in r.stderr and "lots" in r.stderr
    r = jobq("serve", "--listen", "nonsense", "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
    assert r.returncode == 1 and "JOBQ_LISTEN" in r.stderr


def test_migrate_status_and_refusals(tmp_path):
    data = str(tmp_path / "data")
    r = jobq("migrate", "--status", "--data-dir", data)
    assert r.returncode == 0 and "current version: 0" in r.stdout and "pending" in r.stdout
    r = jobq("serve", "--data-dir", data, env={"JOBQ_AUTO_MIGRATE": "false"})
    assert r.returncode == 1 and "jobq migrate" in r.stderr
    r = jobq("migrate", "--data-dir", data)
    assert r.returncode == 0 and "schema version 5" in r.stdout
    r = jobq("migrate", "--status", "--data-dir", data)
    assert "current version: 5" in r.stdout and "up to date" in r.stdout
    db = sqlite3.connect(str(tmp_path / "data" / "jobq.db"))
    db.execute("INSERT INTO schema_migrations VALUES (99, 0)")
    db.commit()
    db.close()
    r = jobq("serve", "--data-dir", data, "--listen", "127.0.0.1:0")
    assert r.returncode == 1 and "99" in r.stderr and "upgrade jobq" in r.stderr
    r = jobq("migrate", "--status", "--data-dir", data)
    assert r.returncode == 1 and "NEWER" in r.stdout


def test_numeric_priority_and_flag_positions(server, tmp_path):
    r = jobq("enqueue", "t", "--priority", "0", "--json", server=server)
    assert r.returncode == 0 and json.loads(r.stdout)["priority"] == "critical"
    r = jobq("serve", "--log-level", "warn", "--print-config", cwd=tmp_path)
    assert r.returncode == 0 and "JOBQ_LOG_LEVEL=warn" in r.stdout
    r = jobq("migrate", "--data-dir", str(tmp_path / "d"), "--status")
    assert r.returncode == 0 and "latest version" in r.stdout
    r = jobq("serve", "--help")
    assert r.returncode == 0 and "usage:" in r.stdout


def test_top_shows_queues_and_workers(server):
    server.enqueue(queue="topq")
    server.lease(worker="top-worker", queues=["topq"])
    r = jobq("top", "--iterations", "2", server=server)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("jobq top") == 2
    assert "topq" in r.stdout and "top-worker" in r.stdout and "WORKER" in r.stdout
    r = jobq("top", "--iterations", "1", "--server", "http://127.0.0.1:1")
    assert r.returncode == 1 and "cannot reach" in r.stderr
    assert jobq("top", "--iterations", "0", server=server).returncode == 2


def test_wait_follows_a_job_to_its_end(server):
    import threading
    import time
    server.enqueue(id="w-ok")
    server.enqueue(id="w-bad", max_retries=0)

    def work():
        time.sleep(0.5)
        for j in server.lease(max=2):
            if j["id"] == "w-ok":
                server.post("/v1/jobs/w-ok/heartbeat", {"lease_id": j["lease_id"], "progress": {"pct": 50}})
                time.sleep(0.5)
                server.post("/v1/jobs/w-ok/complete", {"lease_id": j["lease_id"]})
            else:
                server.post("/v1/jobs/w-bad/fail", {"lease_id": j["lease_id"], "error": {"type": "internal"}})

    th = threading.Thread(target=work)
    th.start()
    r = jobq("wait", "w-ok", server=server)
    th.join(10)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "w-ok: queued, attempt 0" and out[-1].startswith("w-ok: completed, attempt 1")
    assert any('progress {"pct":50}' in line for line in out)
    r = jobq("wait", "w-bad", server=server)
    assert r.returncode == 1 and r.stdout.strip().endswith("failed, attempt 1")
    server.enqueue(id="w-stuck")
    r = jobq("wait", "w-stuck", "--timeout-ms", "300", server=server)
    assert r.returncode == 1 and "still queued" in r.stderr
    assert jobq("wait", "nope", server=server).returncode == 1


def test_cli_sends_the_api_key_from_the_environment(make_server):
    secret = "cli-secret-0123456789"
    srv = make_server(env={"JOBQ_API_KEYS": f"me:producer:{secret}"})
    r = jobq("enqueue", "t", "--id", "k1", server=srv)
    assert r.returncode != 0 and "API key" in r.stderr
    r = jobq("enqueue", "t", "--id", "k1", server=srv, env={"JOBQ_API_KEY": secret})
    assert r.returncode == 0, r.stderr
    r = jobq("get", "k1", server=srv, env={"JOBQ_API_KEY": secret})
    assert r.returncode == 0 and "queued" in r.stdout


@pytest.mark.sqlite_only
def test_migration_2_backfills_state_counts(make_server):
    """A version-1 database with jobs in it: migration 2 counts them once,
    and the writer keeps the counts right from then on (the triggers that
    did until schema 5 are gone again, so the script drops them if there)."""
    srv = make_server()
    for i in range(5):
        srv.enqueue(id=f"m{i}", queue="q1" if i < 3 else "q2")
    [j] = srv.lease(queues=["q1"])
    srv.post(f"/v1/jobs/{j['id']}/complete", {"lease_id": j["lease_id"]})
    srv.post("/v1/jobs/m4/cancel")
    assert srv.stop() == 0
    db = sqlite3.connect(str(srv.data / "jobq.db"))
    db.executescript("DROP TRIGGER IF EXISTS jobs_count_insert;"
                     "DROP TRIGGER IF EXISTS jobs_count_update;"
                     "DROP TRIGGER IF EXISTS jobs_count_delete; DROP TABLE state_counts;"
                     "DROP TABLE journal_state;"
                     "DELETE FROM schema_migrations WHERE version >= 2;")
    db.close()
    r = jobq("migrate", "--data-dir", str(srv.data))
    assert r.returncode == 0 and "schema version 5" in r.stdout, r.stderr
    srv.start()
    q = {x["name"]: x["counts"] for x in srv.get("/v1/queues").json()["queues"]}
    assert q["q1"]["queued"] == 2 and q["q1"]["completed"] == 1
    assert q["q2"]["queued"] == 1 and q["q2"]["cancelled"] == 1
    srv.post("/v1/jobs/m3/cancel")
    assert srv.req("DELETE", "/v1/jobs/m4").status_code == 204
    q = {x["name"]: x["counts"] for x in srv.get("/v1/queues").json()["queues"]}
    assert q["q2"]["queued"] == 0 and q["q2"]["cancelled"] == 1
    stats = srv.get("/v1/stats").json()
    assert stats["counts"]["queued"] == 2 and stats["counts"]["completed"] == 1


def test_bulk_acts_on_every_matching_job_and_waits(server):
    for i in range(5):
        server.enqueue(id=f"bk{i}", queue="bk", priority="low" if i < 3 else "high")
    r = jobq("bulk", "cancel", "--queue", "bk", "--priority", "low", "--dry-run", server=server)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "cancel: 3 matched, 0 changed, 0 skipped (done)"
    assert server.job("bk0")["state"] == "queued"
    r = jobq("bulk", "cancel", "--queue", "bk", "--priority", "low", server=server)
    assert r.returncode == 0 and "3 changed" in r.stdout, r.stdout + r.stderr
    assert [server.job(f"bk{i}")["state"] for i in range(5)] == ["cancelled"] * 3 + ["queued"] * 2
    r = jobq("bulk", "explode", "--queue", "bk", server=server)
    assert r.returncode == 1 and "action" in r.stderr
    r = jobq("bulk", "--queue", "bk", server=server)
    assert r.returncode == 2
