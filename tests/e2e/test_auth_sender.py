"""
R3.2 "Reject if SMTP AUTH does not match sender" and its bypass list
(R3.3): an authenticated session may send as its account, its aliases
and the addresses granted with "account send-as"; anything else gets
501 5.7.1 <sender>... Permission denied, unless an auth-mismatch
bypass entry names the sender, the recipient, their domain or the
client address.
"""
import base64

import pytest

from conftest import DEMO, DEMO_PASSWORD, QUEUED


def auth_plain(c, user=DEMO, password=DEMO_PASSWORD):
    token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
    c.expect("AUTH PLAIN " + token.decode(), "235 2.7.0 Authentication successful")


def authed(p):
    c = p.connect(port=p.subs_port, tls=True)
    c.ehlo()
    auth_plain(c)
    return c


@pytest.fixture
def sub(make_server):
    p = make_server()
    p.add_alias("sales@example.test", DEMO)
    p.admin("account", "send-as", DEMO, "shared@example.test")
    return p


@pytest.mark.parametrize("sender", [DEMO, "Demo@Example.TEST", "sales@example.test",
                                    "shared@example.test", ""])
def test_own_addresses_are_accepted(sub, sender):
    with authed(sub) as c:
        c.expect("MAIL FROM:<%s>" % sender, "250 2.1.0 Ok")
        c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")


@pytest.mark.parametrize("sender", ["someone@example.test", "demo@example.org",
                                    "Other@Example.TEST"])
def test_other_senders_are_refused(sub, sender):
    with authed(sub) as c:
        c.expect("MAIL FROM:<%s>" % sender, "250 2.1.0 Ok")
        c.expect("RCPT TO:<%s>" % DEMO, "501 5.7.1 <%s>... Permission denied" % sender)
        c.expect("RCPT TO:<friend@example.org>", "501 5.7.1 <%s>... Permission denied"
                 % sender)
        # Still the same session: a right sender goes through.
        c.expect("RSET", "250 2.0.0 Ok")
        c.expect("MAIL FROM:<%s>" % DEMO, "250 2.1.0 Ok")
        c.expect("RCPT TO:<friend@example.org>", "250 2.1.5 Ok")


@pytest.mark.parametrize("entry,rcpt,ok", [
    ("someone@example.test", DEMO, True),          # the sender address
    ("example.test", DEMO, True),                  # the sender's domain
    ("friend@example.org", "friend@example.org", True),   # the recipient
    ("example.org", "friend@example.org", True),   # the recipient's domain
    ("example.org", DEMO, False),                  # another recipient domain
    ("127.0.0.0/8", DEMO, True),                   # client CIDR
    ("127.0.0.1-5", DEMO, True),                   # client range
    ("10.0.0.1", DEMO, False),                     # another address
])
def test_bypass_list(sub, entry, rcpt, ok):
    sub.admin("bypass", "add", "auth-mismatch", entry)
    with authed(sub) as c:
        c.expect("MAIL FROM:<someone@example.test>", "250 2.1.0 Ok")
        want = "250 2.1.5 Ok" if ok else \
            "501 5.7.1 <someone@example.test>... Permission denied"
        c.expect("RCPT TO:<%s>" % rcpt, want)


def test_switched_off(make_server):
    p = make_server(extra_config="[relay]\nreject_auth_sender_mismatch = no\n")
    with authed(p) as c:
        c.expect("MAIL FROM:<anyone@example.org>", "250 2.1.0 Ok")
        c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")
        c.expect("DATA", "354 End data with <CR><LF>.<CR><LF>")
        c.send(b"Subject: x\r\n\r\nx\r\n.\r\n")
        assert c.reply().raw.startswith(QUEUED)
    p.wait_messages(1)


def test_unauthenticated_sessions_are_not_concerned(sub):
    """R3.2 is about authenticated sessions (R3.1 is another check)."""
    with sub.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<someone@example.org>", "250 2.1.0 Ok")
        c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")
