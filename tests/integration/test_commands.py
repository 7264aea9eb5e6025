"""Built-in command runner: operator-declared argv templates, no shell, one
argv element per placeholder, cleared environment, killed on timeout."""
import os
import subprocess
import time

import pytest

from conftest import BIN, clean_env

COMMANDS = {
    "JOBQ_COMMAND_show": r"printf [%s]\n {a} {b}",
    "JOBQ_COMMAND_script": "sh -c {script}",
    "JOBQ_COMMAND_nap": "sleep {secs}",
    "JOBQ_COMMAND_envdump": "env",
    "JOBQ_COMMAND_where": "pwd",
    "JOBQ_COMMAND_sneaky": "{prog} -x",
    "JOBQ_COMMAND_list": "ls {dir}",
    "JOBQ_COMMAND_listsafe": "ls -d -- {dir}",
    "JOBQ_COMMAND_PROGRESS_script": r"\[download\] +([0-9.]+)%",
    "JOBQ_COMMAND_NORETRY_script": "7,9",
}


@pytest.fixture
def cmd_server(make_server):
    return make_server(env=dict(COMMANDS, JOBQ_RUNNERS="command=4"))


def running(cmdline):
    """True if a process with exactly this command line exists (no pgrep needed)."""
    want = cmdline.split()
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")[:-1]
        except OSError:
            continue
        if [a.decode(errors="replace") for a in args] == want:
            return True
    return False


def run(server, jid, type_, args=None, **extra):
    body = {"id": jid, "type": type_, "queue": "command", "args": args or {}}
    body.update(extra)
    assert server.post("/v1/jobs", body).status_code == 201




def test_placeholders_are_single_arguments(cmd_server):
    run(cmd_server, "inj", "show", {"a": "x y; rm -rf / $(id)", "b": 42})
    j = cmd_server.wait_finished("inj")
    assert j["state"] == "completed", j["errors"]
    assert j["result"]["stdout"] == "[x y; rm -rf / $(id)]\n[42]\n" and j["result"]["exit_code"] == 0


def test_failure_keeps_exit_code_and_output(cmd_server):
    run(cmd_server, "bad", "script", {"script": "echo out; echo err >&2; exit 3"}, max_retries=1,
        backoff={"initial_ms": 0, "jitter": 0})
    j = cmd_server.wait_finished("bad")
    assert j["state"] == "failed" and j["attempts"] == 2
    e = j["errors"][0]
    assert e["type"] == "internal" and e["message"] == "exit code 3"
    assert e["context"] == {"stdout": "out\n", "stderr": "err\n", "exit_code": 3}
    assert e["worker"] == "jobq:command"


def test_timeout_kills_the_process_group(cmd_server):
    t = time.monotonic()
    run(cmd_server, "long", "nap", {"secs": 30}, timeout_ms=1500, max_retries=0)
    j = cmd_server.wait_finished("long")
    assert j["errors"][0]["type"] == "timeout" and time.monotonic() - t < 8
    assert not running("sleep 30")


def test_environment_and_folder(cmd_server):
    run(cmd_server, "env", "envdump")
    run(cmd_server, "pwd", "where")
    env = cmd_server.wait_finished("env")["result"]["stdout"].split()
    assert sorted(env) == ["LANG=C.UTF-8", "PATH=/usr/local/bin:/usr/bin:/bin"]
    pwd = cmd_server.wait_finished("pwd")["result"]["stdout"].strip()
    assert pwd == str(cmd_server.data / "commands")


def test_refusals(cmd_server):
    run(cmd_server, "unknown", "rm")
    run(cmd_server, "missing", "show", {"a": "only a"})
    run(cmd_server, "prog", "sneaky", {"prog": "/bin/rm"})
    for jid in ["unknown", "missing", "prog"]:
        j = cmd_server.wait_finished(jid)
        assert j["state"] == "failed" and j["attempts"] == 1 and j["errors"][0]["type"] == "validation", jid


def test_a_job_argument_cannot_become_an_option(cmd_server):
    """`ls {dir}` with dir="--version" ran `ls --version`; with the documented
    `yt-dlp ... {url}` a producer could have passed `--exec ...`."""
    run(cmd_server, "opt", "list", {"dir": "--version"})
    j = cmd_server.wait_finished("opt")
    assert j["state"] == "failed" and j["errors"][0]["type"] == "validation", j
    assert "args.dir" in j["errors"][0]["message"]
    # After the operator's "--" the value is a path, whatever it looks like.
    run(cmd_server, "safe", "listsafe", {"dir": "-nonexistent"}, max_retries=0)
    j = cmd_server.wait_finished("safe")
    assert j["errors"][0]["type"] != "validation", j
    assert "-nonexistent" in j["errors"][0]["context"]["stderr"]


def test_bad_command_setting_stops_startup(tmp_path):
    env = clean_env({"JOBQ_COMMAND_bad name": "echo"})
    r = subprocess.run([BIN, "serve", "--print-config"], env=env, capture_output=True, text=True,
                       timeout=30, cwd=tmp_path)
    assert r.returncode == 2 and "JOBQ_COMMAND_bad name" in r.stderr
    env = clean_env({"JOBQ_COMMAND_video": "yt-dlp -o {output} {url}"})
    r = subprocess.run([BIN, "serve", "--print-config"], env=env, capture_output=True, text=True,
                       timeout=30, cwd=tmp_path)
    assert r.returncode == 0 and "JOBQ_COMMAND_video=yt-dlp -o {output} {url}" in r.stdout


def test_cancel_stops_a_running_command(cmd_server):
    run(cmd_server, "napper", "nap", {"secs": 30}, timeout_ms=60000)
    end = time.time() + 5
    while time.time() < end and cmd_server.job("napper")["state"] != "running":
        time.sleep(0.05)
    time.sleep(0.3)
    t = time.monotonic()
    assert cmd_server.post("/v1/jobs/napper/cancel").json()["cancel_requested"] is True
    j = cmd_server.wait_finished("napper")
    assert j["state"] == "cancelled" and time.monotonic() - t < 5
    assert not running("sleep 30")


def test_progress_pattern_and_non_retried_exit_codes(cmd_server):
    script = ("echo '[download]  12.5%'; sleep 1.2; echo '[download]  55.0%'; sleep 1.5; "
              "echo done")
    run(cmd_server, "prog", "script", {"script": script})
    seen = set()
    end = time.time() + 8
    while time.time() < end:
        j = cmd_server.job("prog")
        if j["progress"]:
            seen.add(j["progress"]["percent"])
            assert j["progress"]["line"].startswith("[download]")
        if j["state"] == "completed":
            break
        time.sleep(0.05)
    assert 55.0 in seen or 12.5 in seen
    run(cmd_server, "seven", "script", {"script": "exit 7"}, max_retries=3)
    j = cmd_server.wait_finished("seven")
    assert j["state"] == "failed" and j["attempts"] == 1 and j["errors"][0]["message"] == "exit code 7"


@pytest.mark.cluster_differs("a stopping node hands its running jobs over (retried)")
def test_stopping_jobq_stops_running_commands(cmd_server):
    run(cmd_server, "orphan", "nap", {"secs": 31}, timeout_ms=60000)
    end = time.time() + 5
    while time.time() < end and cmd_server.job("orphan")["state"] != "running":
        time.sleep(0.05)
    time.sleep(0.3)
    assert cmd_server.stop() == 0
    assert not running("sleep 31")
    cmd_server.start()
    assert cmd_server.job("orphan")["state"] == "running"  # its lease will bring it back
