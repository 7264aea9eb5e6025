"""The Faktory port with TLS (JOBQ_FAKTORY_TLS_CERT/_KEY): TLS 1.2 at
least, the real client over it, and a bad certificate refused at start."""
import socket
import ssl
import subprocess
import uuid

import pytest

from fwp import node


@pytest.fixture
def cert(tmp_path):
    key, crt = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(crt), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return crt, key


def tls_connect(port, crt):
    ctx = ssl.create_default_context(cafile=str(crt))
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def test_tls_handshake_and_the_real_client(make_server, cert):
    crt, key = cert
    s = make_server(env={"JOBQ_FAKTORY_TLS_CERT": str(crt), "JOBQ_FAKTORY_TLS_KEY": str(key)})
    c = tls_connect(s.fwp_port, crt)
    assert c.version() in ("TLSv1.2", "TLSv1.3")
    assert c.recv(100) == b'+HI {"v":2}\r\n'
    c.close()
    jid = f"tls-{uuid.uuid4().hex[:8]}"
    tls = {"ca": crt.read_text()}
    url = f"tcp://127.0.0.1:{s.fwp_port}"
    assert node(s, "push", url=url, tls=tls, jobs=[{"jid": jid, "jobtype": "T", "args": []}]) == {"jids": [jid]}
    w = node(s, "work", url=url, tls=tls, behavior={"T": "ok"}, until={"count": 1})
    assert [x["jid"] for x in w["seen"]] == [jid]
    assert s.wait_finished(jid)["state"] == "completed"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_below_1_2_and_plain_text_are_refused(make_server, cert):
    crt, key = cert
    s = make_server(env={"JOBQ_FAKTORY_TLS_CERT": str(crt), "JOBQ_FAKTORY_TLS_KEY": str(key)})
    # The client must really offer TLS 1.1 (OpenSSL's default level would
    # refuse it on our side), so that the refusal is the server's.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT@SECLEVEL=0")
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
        ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.fwp_port), timeout=5))
    plain = socket.create_connection(("127.0.0.1", s.fwp_port), timeout=5)
    plain.sendall(b'HELLO {"v":2}\r\n')
    data = b""
    try:
        while chunk := plain.recv(1000):
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    assert b"+HI" not in data and b"+OK" not in data
    assert s.get("/health/live").status_code == 200


def test_a_missing_or_mismatched_certificate_stops_start_up(make_server, cert, tmp_path):
    crt, key = cert
    for env, says in (({"JOBQ_FAKTORY_TLS_CERT": str(crt)}, "go together"),
                      ({"JOBQ_FAKTORY_TLS_CERT": str(tmp_path / "nope.pem"),
                        "JOBQ_FAKTORY_TLS_KEY": str(key)}, "JOBQ_FAKTORY_TLS_CERT"),
                      ({"JOBQ_FAKTORY_TLS_CERT": str(crt), "JOBQ_FAKTORY_TLS_KEY": str(crt)},
                       "JOBQ_FAKTORY_TLS_KEY")):
        s = make_server(env=env, start=False)
        with pytest.raises(RuntimeError, match=says):
            s.start()
        assert s.stop() == 1
