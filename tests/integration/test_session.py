"""/v1/session: the dashboard's sign-in with an API key, held as a session
cookie, over real HTTP with requests (which keeps cookies like a browser)."""
import time

import requests

from conftest import assert_problem

ADMIN = "adm-0123456789abcdef0123"
READER = "rdr-0123456789abcdef0123"
KEYS = {"JOBQ_API_KEYS": f"ops:admin:{ADMIN},viewer:reader:{READER}"}


def sign_in(server, key):
    s = requests.Session()
    r = s.post(server.url + "/v1/session", json={"key": key}, timeout=10)
    return s, r


def test_without_keys_everyone_is_admin_and_no_cookie_is_set(server):
    r = server.get("/v1/session")
    assert r.json() == {"keys": False, "signed_in": True, "role": "admin",
                        "name": None, "expires_at": None}
    r = server.post("/v1/session", {"key": "anything"})
    assert r.status_code == 200 and "Set-Cookie" not in r.headers


def test_sign_in_sets_a_strict_httponly_cookie_that_stands_for_the_key(make_server):
    server = make_server(env=KEYS)
    s = requests.Session()
    assert s.get(server.url + "/v1/session").json() == {
        "keys": True, "signed_in": False, "role": "reader", "name": None, "expires_at": None}
    assert s.get(server.url + "/v1/queues").status_code == 401
    r = s.post(server.url + "/v1/session", json={"key": ADMIN})
    assert r.status_code == 200, r.text
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("jobq_session=")
    for attr in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"):
        assert attr in cookie
    assert ADMIN not in cookie
    me = s.get(server.url + "/v1/session").json()
    assert me["signed_in"] and me["name"] == "ops" and me["role"] == "admin" and me["expires_at"]
    assert s.get(server.url + "/v1/queues").status_code == 200
    # A change needs the CSRF header as well as the cookie.
    r = s.post(server.url + "/v1/queues/q/pause")
    assert_problem(r, 403, "unauthorized", "X-Jobq-Csrf")
    assert not any(q["paused"] for q in s.get(server.url + "/v1/queues").json()["queues"])
    r = s.post(server.url + "/v1/queues/q/pause", headers={"X-Jobq-Csrf": "1"})
    assert r.status_code == 200 and r.json()["paused"]
    # Signing out ends the session on the server, not only in the browser.
    token = s.cookies["jobq_session"]
    assert s.delete(server.url + "/v1/session").status_code == 204
    r = requests.get(server.url + "/v1/queues", cookies={"jobq_session": token}, timeout=10)
    assert r.status_code == 401


def test_a_reader_session_is_refused_changes(make_server):
    server = make_server(env=KEYS)
    server.session.headers["Authorization"] = f"Bearer {ADMIN}"
    server.enqueue(id="j1", queue="q")
    s, r = sign_in(server, READER)
    assert r.json()["role"] == "reader"
    r = s.post(server.url + "/v1/jobs/j1/cancel", headers={"X-Jobq-Csrf": "1"})
    assert_problem(r, 403, "unauthorized", "Authorization")
    assert server.job("j1")["state"] == "queued"


def test_bad_keys_and_tokens_are_refused_and_guessing_is_limited(make_server):
    server = make_server(env=KEYS)
    s, r = sign_in(server, "wrong")
    assert_problem(r, 401, "unauthorized", "key")
    assert "Set-Cookie" not in r.headers
    r = requests.post(server.url + "/v1/session", json={"key": 5}, timeout=10)
    assert_problem(r, 400, "validation", "key")
    r = requests.post(server.url + "/v1/session", json={"key": ADMIN, "role": "admin"}, timeout=10)
    assert_problem(r, 400, "validation", "role")
    forged = {"jobq_session": "0" * 64}
    assert requests.get(server.url + "/v1/queues", cookies=forged, timeout=10).status_code == 401
    # Ten tries at once, then one a second, per address.
    codes = [sign_in(server, f"guess-{i}")[1].status_code for i in range(12)]
    assert codes.count(429) >= 1, codes
    r = sign_in(server, ADMIN)[1]
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_a_session_ends_when_its_key_is_removed(make_server):
    server = make_server(start=False)
    env_file = server.dir / "keys.env"
    env_file.write_text(f"JOBQ_API_KEYS={KEYS['JOBQ_API_KEYS']}\n")
    server.env["JOBQ_ENV_FILE"] = str(env_file)
    server.start()
    s, r = sign_in(server, READER)
    assert r.json()["role"] == "reader"
    assert s.get(server.url + "/v1/queues").status_code == 200
    env_file.write_text(f"JOBQ_API_KEYS=ops:admin:{ADMIN}\n")
    server.proc.send_signal(1)  # SIGHUP reloads the keys
    deadline = time.time() + 5
    while time.time() < deadline and s.get(server.url + "/v1/queues").status_code == 200:
        time.sleep(0.1)
    assert s.get(server.url + "/v1/queues").status_code == 401
