"""R5.4: the university guide's smart host.  A private Postfix with
Cyrus SASL (sasldb) and STARTTLS relays for authenticated clients only;
postino sends through it with AUTH, always or only when direct delivery
fails, and refuses to send in clear with smarthost_tls = require."""
import os
import pwd
import shutil
import smtplib
import sys
import tempfile

import pytest

from conftest import DEMO, Postino, _check_binaries, _failed, _finish

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from dnsmasq import Dnsmasq  # noqa: E402
from mx_peer import MxPeer  # noqa: E402
from smtp_sink import SmtpSink, common_free_port  # noqa: E402

pytestmark = pytest.mark.skipif(MxPeer.unavailable(sasl=True) is not None,
                                reason=str(MxPeer.unavailable(sasl=True)))

USER, PASSWORD = "relayuser", "relay-secret-7"
MSG = (b"From: demo@example.test\r\n"
       b"To: friend@elsewhere.test\r\n"
       b"Subject: via the smart host\r\n"
       b"\r\n"
       b"hello through the relay\r\n")


class Setup:
    def __init__(self, top, mode, tls_require=False, peer_tls=True, mx=None, hosts=None,
                 user=USER, password=PASSWORD, mechs=("PLAIN", "LOGIN")):
        self.top = top
        self.port = common_free_port(["127.0.0.2", "127.0.0.4"])
        self.peer = MxPeer(top, "127.0.0.4", self.port, tls=peer_tls,
                           sasl_users={USER: PASSWORD}, require_auth=True,
                           auth_only_with_tls=peer_tls, hostname="smarthost.test",
                           sasl_mechs=mechs)
        self.peer.start()
        self.dns = Dnsmasq(hosts=hosts or {}, mx=mx or {})
        self.dns.start()
        pwfile = os.path.join(top, "smarthost.pw")
        with open(pwfile, "w") as f:
            f.write(password + "\n")
        store = pwd.getpwnam("postino")
        os.chown(pwfile, store.pw_uid, store.pw_gid)
        os.chmod(pwfile, 0o600)
        extra = "\n".join([
            "[dns]", "servers = %s" % self.dns.server,
            "[delivery]",
            "smtp_port = %d" % self.port,
            "smarthost = [127.0.0.4]:%d" % self.port,
            "smarthost_mode = %s" % mode,
            "smarthost_user = %s" % user,
            "smarthost_password_file = %s" % pwfile,
            "smarthost_tls = %s" % ("require" if tls_require else "may"),
            "retry_first = 1", "retry_max = 2", ""])
        _check_binaries()
        self.p = Postino(extra_config=extra)
        self.p.add_domain("example.test")
        self.p.add_account(DEMO)
        self.p.admin("trusted", "add", "127.0.0.1")
        self.p.start()

    def send(self, rcpts):
        with smtplib.SMTP("127.0.0.1", self.p.mx_port, timeout=10) as c:
            c.sendmail(DEMO, rcpts, MSG)

    def log_has(self, text, timeout=15.0):
        return self.p.log_has(text, timeout)

    def close(self, failed):
        self.peer.stop()
        self.dns.stop()
        if failed:
            sys.stdout.write("\n===== smart host log =====\n%s\n" % self.peer.log())
        _finish([self.p], failed)


@pytest.fixture
def setup(request):
    top = tempfile.mkdtemp(prefix="postino-sh-")
    os.chmod(top, 0o755)
    made = []

    def make(*a, **kw):
        s = Setup(top, *a, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close(_failed(request))
    shutil.rmtree(top, ignore_errors=True)


def test_always_with_auth_over_starttls(setup):
    s = setup("always")
    s.send(["friend@elsewhere.test", "other@far-away.test"])
    got = s.peer.wait_messages(2, timeout=30)
    for path, data in got:
        assert MxPeer.as_sent(data, "smarthost.test").endswith(MSG)
    log = s.peer.log()
    # Postfix saw TLS and a SASL login as our user
    assert "sasl_method=PLAIN, sasl_username=%s" % USER in log
    assert "TLS connection established from unknown[127.0.0.1]" in log
    assert s.log_has("event=auth relay=127.0.0.4[127.0.0.4]:%d sasl_method=PLAIN sasl_username=%s"
                     % (s.port, USER))
    assert s.log_has("event=removed")


def test_always_with_auth_login(setup):
    # A smart host that offers LOGIN only (many Exchange-era relays do).
    s = setup("always", mechs=("LOGIN",))
    s.send(["friend@elsewhere.test"])
    (path, data), = s.peer.wait_messages(1, timeout=30)
    assert MxPeer.as_sent(data, "smarthost.test").endswith(MSG)
    assert "sasl_method=LOGIN, sasl_username=%s" % USER in s.peer.log()
    assert s.log_has("event=auth relay=127.0.0.4[127.0.0.4]:%d sasl_method=LOGIN sasl_username=%s"
                     % (s.port, USER))


def test_wrong_password_defers(setup):
    s = setup("always", password="not-the-password")
    s.send(["friend@elsewhere.test"])
    assert s.log_has("refused our AUTH: 535")
    assert s.log_has("event=retry-later")
    assert s.peer.messages() == []


def test_require_refuses_a_smarthost_without_starttls(setup):
    s = setup("always", tls_require=True, peer_tls=False)
    s.send(["friend@elsewhere.test"])
    assert s.log_has("offers no STARTTLS (smarthost_tls = require)")
    assert s.log_has("event=retry-later")
    assert s.peer.messages() == []
    # postino said EHLO and left: no AUTH in clear, no MAIL
    assert "sasl_method" not in s.peer.log()
    assert " mail=" not in s.peer.log()


def test_fallback_only_after_direct_delivery_failed(setup):
    # far.test's MX is 127.0.0.2, where nobody listens: then the smart host.
    s = setup("fallback", mx={"far.test": [(10, "mx.far.test")]},
              hosts={"mx.far.test": ["127.0.0.2"]})
    s.send(["someone@far.test"])
    (path, data), = s.peer.wait_messages(1, timeout=30)
    assert MxPeer.as_sent(data, "smarthost.test").endswith(MSG)
    log = s.p.read_log()
    assert "event=address-failed relay=mx.far.test[127.0.0.2]" in log
    assert "event=fallback" in log


def test_fallback_not_used_when_direct_works(setup, tmp_path):
    s = setup("fallback", mx={"far.test": [(10, "mx.far.test")]},
              hosts={"mx.far.test": ["127.0.0.2"]})
    sink = SmtpSink(s.top, host="127.0.0.2", port=s.port)
    sink.start()
    try:
        s.send(["someone@far.test"])
        t, = sink.wait_transactions(1, timeout=15)
        assert t["rcpts"] == ["someone@far.test"]
        assert "event=fallback" not in s.p.read_log()
        assert s.peer.messages() == []
    finally:
        sink.stop()
