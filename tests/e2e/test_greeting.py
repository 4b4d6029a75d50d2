"""
timeout_greeting: the banner waits; a client that talks first is
refused (it is no SMTP client: RFC 5321 4.3.1).
"""
import socket
import time

from conftest import GREETING, HOSTNAME, DEMO


def test_talking_first_is_refused(make_server):
    p = make_server(smtp={"timeout_greeting": 2})
    s = socket.create_connection(("127.0.0.1", p.mx_port), timeout=10)
    s.sendall(b"EHLO early.example.org\r\n")
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    assert data == b"554 5.5.1 %s Error: talked before the greeting\r\n" % HOSTNAME.encode()
    assert s.recv(4096) == b""        # closed
    s.close()


def test_patient_client_gets_the_banner_late(make_server):
    p = make_server(smtp={"timeout_greeting": 1})
    t0 = time.monotonic()
    with p.connect() as c:            # checks the 220 exactly
        assert time.monotonic() - t0 >= 0.9
        c.expect("QUIT", "221 2.0.0 Bye")
    assert GREETING.startswith("220 ")


def test_scram_iterations_configurable(make_server):
    p = make_server(smtp={"scram_iterations": 8192}, accounts=())
    p.add_account(DEMO)
    (s256, s1, cram, pw), = p.store_sql(
        "SELECT scram_sha256, scram_sha1, cram_md5, password_hash FROM accounts")[0]
    assert s256.startswith("8192$") and s1.startswith("8192$")
    assert len(cram) == 64 and pw.startswith("$y$")
    assert "secret" not in s256 + s1 + cram + pw      # never plaintext (R2.4)
