"""R5.2: local delivery over LMTP into a real Dovecot (dovecot-lmtpd),
on a loopback port and on a unix socket: byte-exact messages, one reply
per recipient, and a recipient Dovecot refuses bounced with its reply."""
import os
import shutil
import smtplib
import sys
import tempfile

import pytest

from conftest import DEMO, Postino, _check_binaries, _failed, _finish

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from dovecot_lmtp import DovecotLmtp  # noqa: E402

pytestmark = pytest.mark.skipif(DovecotLmtp.unavailable() is not None,
                                reason=str(DovecotLmtp.unavailable()))

OTHER = "other@example.test"
GHOST = "ghost@example.test"     # an account of postino's, unknown to Dovecot
MSG = (b"From: demo@example.test\r\n"
       b"To: other@example.test\r\n"
       b"Subject: over lmtp\r\n"
       b"\r\n"
       b"first\r\n"
       b".dot at the start\r\n"
       b"last\r\n")


@pytest.fixture(params=["tcp", "unix"])
def lmtp(request):
    _check_binaries()
    top = tempfile.mkdtemp(prefix="postino-lmtp-")
    os.chmod(top, 0o755)
    dove = DovecotLmtp(top, users=(DEMO, OTHER), unix=request.param == "unix")
    dove.start()
    try:
        spec = ("unix:%s" % dove.socket_path if request.param == "unix"
                else "127.0.0.1:%d" % dove.port)
        p = Postino(extra_config="[delivery]\nlmtp = %s\nretry_first = 1\n" % spec)
        p.add_domain("example.test")
        for a in (DEMO, OTHER, GHOST):
            p.add_account(a)
        p.admin("trusted", "add", "127.0.0.1")
        p.start()
    except BaseException:
        # no Dovecot outlives a failed set-up
        dove.stop()
        shutil.rmtree(top, ignore_errors=True)
        raise
    yield p, dove
    dove.stop()
    _finish([p], _failed(request))
    shutil.rmtree(top, ignore_errors=True)


def test_lmtp_delivers_byte_exact(lmtp):
    p, dove = lmtp
    with smtplib.SMTP("127.0.0.1", p.mx_port, timeout=10) as c:
        c.sendmail(DEMO, [DEMO, OTHER], MSG)
    for user in (DEMO, OTHER):
        (path, data), = dove.wait_messages(1, user=user, timeout=15)
        sent = DovecotLmtp.as_sent(data)
        assert sent.startswith(b"Received: from ")
        assert sent.endswith(b"\r\n" + MSG)
        assert DovecotLmtp.return_path(data) == "<%s>" % DEMO
    # one reply per recipient, each logged with its own text
    for user in (DEMO, OTHER):
        assert p.log_has("to=<%s> reply=\"250 2.0.0 <%s>" % (user, user))
    assert p.log_has("event=removed")
    # nothing in postino's own Maildirs
    assert p.messages(DEMO) == {}


def test_lmtp_refusal_bounces_with_dovecots_reply(lmtp):
    p, dove = lmtp
    with smtplib.SMTP("127.0.0.1", p.mx_port, timeout=10) as c:
        c.sendmail(DEMO, [GHOST], MSG)
    # the bounce comes back to demo, through Dovecot too
    (path, data), = dove.wait_messages(1, user=DEMO, timeout=20)
    text = data.decode("ascii", "replace")
    assert "Subject: Undelivered Mail Returned to Sender" in text
    assert "Final-Recipient: rfc822; %s" % GHOST in text
    assert "Diagnostic-Code: smtp; 550 5.1.1 <%s> User doesn't exist: %s" % (GHOST, GHOST) in text
    assert DovecotLmtp.return_path(data) == "<>"
