"""Self-checks of the outbound-delivery peers (no postino involved).

tests/support/smtp_sink.py (Postfix's smtp-sink as a remote MX that
records each transaction) and tests/support/mx_peer.py (a private
Postfix receiving as a destination MX, or as the university guide's
smart host with SMTP AUTH), driven with smtplib: what postino's
delivery tests will rely on — exact bytes, recipients, refusals, TLS,
AUTH — is checked here first.
"""
import os
import re
import shutil
import smtplib
import ssl
import tempfile

import pytest

from mx_peer import MxPeer
from smtp_sink import SmtpSink, common_free_port

WAIT = 10.0
HELO = "client.example.org"
SENDER = "sender@example.org"

# Leading dots (smtplib dot-stuffs them), 8-bit text, a tab, a line
# longer than Postfix's line_length_limit (2048): all must come back.
MSG = (b"From: <sender@example.org>\r\n"
       b"To: <a@far.test>\r\n"
       b"Subject: peers self-check\r\n"
       b"\r\n"
       b".one leading dot\r\n"
       b"..two leading dots\r\n"
       b".\r\n"
       b"caf\xc3\xa9\tand a tab\r\n"
       + b"x" * 5000 + b"\r\n"
       b"last line\r\n")


def need_root_mx():
    why = MxPeer.unavailable(sasl=True)
    if why:
        pytest.skip("private Postfix MX: " + why)


def need_sink():
    why = SmtpSink.unavailable()
    if why:
        pytest.skip("smtp-sink: " + why)


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@pytest.fixture(scope="module")
def top():
    d = tempfile.mkdtemp(prefix="postino-e2e-peers-")
    os.chmod(d, 0o755)      # smtp-sink runs as nobody, smtpd as postfix
    yield d
    shutil.rmtree(d, ignore_errors=True)


def smtp(host, port):
    return smtplib.SMTP(host, port, local_hostname=HELO, timeout=WAIT)


# --------------------------------------------------------------------
# smtp-sink
# --------------------------------------------------------------------

def test_sink_records_two_recipients_exact_bytes(top):
    need_sink()
    with SmtpSink(top, host="127.0.0.2") as sink:
        with smtp(sink.host, sink.port) as c:
            code, resp = c.ehlo()
            assert code == 250 and b"PIPELINING" in resp and b"8BITMIME" in resp, resp
            assert not c.has_extn("starttls")
            refused = c.sendmail(SENDER, ["a@far.test", "b@other.test"], MSG,
                                 mail_options=["BODY=8BITMIME"])
            assert refused == {}
            c.quit()
        t, = sink.wait_transactions(1, WAIT)
    assert t["client"] == "127.0.0.1"
    assert t["proto"] == "ESMTP"
    assert t["helo"] == HELO
    assert t["mail_from"] == SENDER
    assert t["mail_params"] == ["BODY=8BITMIME"]
    assert t["rcpts"] == ["a@far.test", "b@other.test"]
    assert t["data"] == MSG, "bytes differ:\n%r\n%r" % (t["data"][:300], MSG[:300])
    assert t["raw"] == MSG.replace(b"\r\n", b"\n")


def test_sink_null_sender_and_rcpt_params(top):
    need_sink()
    with SmtpSink(top) as sink:
        with smtp(sink.host, sink.port) as c:
            c.ehlo()
            assert c.mail("<>")[0] == 250
            assert c.rcpt("a@far.test", ["NOTIFY=NEVER"])[0] == 250
            assert c.data(MSG)[0] == 250
            c.quit()
        t, = sink.wait_transactions(1, WAIT)
    assert t["mail_from"] == "" and t["rcpts"] == ["a@far.test"]
    assert t["rcpt_args"] == ["<a@far.test> NOTIFY=NEVER"]


@pytest.mark.parametrize("kind,code,status", [("hard", 500, b"5.3.0"), ("soft", 450, b"4.3.0")])
def test_sink_rejects_rcpt(top, kind, code, status):
    need_sink()
    opts = {"hard_reject": ("rcpt",)} if kind == "hard" else {"soft_reject": ("rcpt",)}
    with SmtpSink(top, **opts) as sink:
        with smtp(sink.host, sink.port) as c:
            c.ehlo()
            # -f / -r turn PIPELINING off, as smtp-sink(1) says.
            assert not c.has_extn("pipelining")
            assert c.mail(SENDER)[0] == 250
            r = c.rcpt("a@far.test")
            assert r == (code, status + b" Error: command failed"), r
            c.quit()
        assert sink.transactions() == []


def test_sink_soft_reject_dot_still_dumps(top):
    """A refused "." (soft_reject=("dot",)) answers 450 after the data,
    and smtp-sink has dumped the transaction all the same."""
    need_sink()
    with SmtpSink(top, soft_reject=("dot",)) as sink:
        with smtp(sink.host, sink.port) as c:
            c.ehlo()
            assert c.mail(SENDER)[0] == 250
            assert c.rcpt("a@far.test")[0] == 250
            assert c.data(MSG) == (450, b"4.3.0 Error: command failed")
            c.quit()
        t, = sink.wait_transactions(1, WAIT)
        assert t["data"] == MSG


def test_two_sinks_same_port(top):
    need_sink()
    port = common_free_port(["127.0.0.2", "127.0.0.3"])
    with SmtpSink(top, host="127.0.0.2", port=port, hostname="mx1.far.test") as one, \
            SmtpSink(top, host="127.0.0.3", port=port, hostname="mx2.far.test") as two:
        assert one.port == two.port == port
        for sink, rcpt in ((one, "one@far.test"), (two, "two@far.test")):
            with smtp(sink.host, port) as c:
                code, resp = c.ehlo()
                assert resp.startswith(sink.hostname.encode()), resp
                assert c.sendmail(SENDER, [rcpt], MSG) == {}
                c.quit()
        t1, = one.wait_transactions(1, WAIT)
        t2, = two.wait_transactions(1, WAIT)
    assert (t1["rcpts"], t2["rcpts"]) == (["one@far.test"], ["two@far.test"])
    assert t1["data"] == t2["data"] == MSG


# --------------------------------------------------------------------
# Private Postfix as destination MX and as smart host
# --------------------------------------------------------------------

@pytest.fixture(scope="module")
def mx(top):
    need_root_mx()
    m = MxPeer(top, "127.0.0.2", domains=["far.test"],
               reply_rcpt={"bad@far.test": "550 5.1.1 no such user"})
    try:
        m.start()
        yield m
    finally:
        m.stop()
    assert not m.alive(), "Postfix master %d still alive" % m.master_pid


SMART_USERS = {"relay-user": "pw-relay-1", "demo@isp.test": "pw-demo-2"}


@pytest.fixture(scope="module")
def smart(top):
    need_root_mx()
    m = MxPeer(top, "127.0.0.3", hostname="smtp.isp.test", sasl_users=SMART_USERS,
               require_auth=True, auth_only_with_tls=True)
    try:
        m.start()
        yield m
    finally:
        m.stop()
    assert not m.alive(), "Postfix master %d still alive" % m.master_pid


def test_mx_starttls_byte_exact(mx):
    with smtp(mx.host, mx.port) as c:
        c.ehlo()
        assert c.has_extn("starttls")
        assert c.starttls(context=tls_context())[0] == 220
        c.ehlo()
        assert c.mail(SENDER, ["BODY=8BITMIME"])[0] == 250
        assert c.rcpt("a@far.test")[0] == 250
        assert c.rcpt("Mixed.Case@FAR.test")[0] == 250
        assert c.rcpt("bad@far.test") == (
            550, b"5.1.1 <bad@far.test>: Recipient address rejected: no such user")
        code, resp = c.rcpt("x@elsewhere.test")
        assert (code, resp) == (554, b"5.7.1 <x@elsewhere.test>: Relay access denied")
        code, resp = c.data(MSG)
        assert code == 250, resp
        qid = re.fullmatch(rb"2\.0\.0 Ok: queued as (\w+)", resp).group(1).decode()
        c.quit()
    (path, data), = mx.wait_messages(1, WAIT, rcpt="a@far.test")
    mx.wait_messages(1, WAIT, rcpt="mixed.case@far.test")
    assert mx.as_sent(data, mx.myhostname) == MSG
    prepended, _ = mx.split(data)
    assert prepended[:3] == [b"Return-Path: <%s>" % SENDER.encode(),
                             b"X-Original-To: a@far.test", b"Delivered-To: a@far.test"]
    received = b" ".join(l.strip() for l in prepended[3].split(b"\n"))
    assert re.match(rb"Received: from %s \(unknown \[127\.0\.0\.1\]\) by mx\.far\.test "
                    rb"\(Postfix\) with ESMTPS id %s;" % (re.escape(HELO.encode()),
                                                          qid.encode()), received), received
    assert mx.wait_log(r"%s: to=<a@far.test>, relay=virtual, .*status=sent" % qid, WAIT)


def login_plain(c, user, password):
    c.user, c.password = user, password
    return c.auth("PLAIN", c.auth_plain, initial_response_ok=True)


def login_login(c, user, password):
    c.user, c.password = user, password
    return c.auth("LOGIN", c.auth_login, initial_response_ok=False)


def tls_session(m):
    c = smtp(m.host, m.port)
    c.ehlo()
    assert c.starttls(context=tls_context())[0] == 220
    c.ehlo()
    return c


def test_smart_host_offers_auth_only_after_starttls(smart):
    with smtp(smart.host, smart.port) as c:
        c.ehlo()
        assert c.has_extn("starttls") and not c.has_extn("auth")
        c.starttls(context=tls_context())
        c.ehlo()
        assert c.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        c.quit()


def test_smart_host_refuses_relay_without_auth(smart):
    with tls_session(smart) as c:
        assert c.mail(SENDER)[0] == 250
        assert c.rcpt("someone@far.test") == (
            554, b"5.7.1 <someone@far.test>: Recipient address rejected: Access denied")
        c.quit()


@pytest.mark.parametrize("login", [login_plain, login_login], ids=["PLAIN", "LOGIN"])
@pytest.mark.parametrize("user", sorted(SMART_USERS))
def test_smart_host_auth_relays(smart, login, user):
    rcpt = "%s-%s@far-away.test" % (login.__name__, re.sub(r"\W", "-", user))
    with tls_session(smart) as c:
        assert login(c, user, SMART_USERS[user]) == (235, b"2.7.0 Authentication successful")
        assert c.sendmail(SENDER, [rcpt], MSG) == {}
        c.quit()
    (path, data), = smart.wait_messages(1, WAIT, rcpt=rcpt)
    assert smart.as_sent(data, smart.myhostname) == MSG
    assert re.search(rb"by smtp\.isp\.test \(Postfix\) with ESMTPSA id ", data)


@pytest.mark.parametrize("login", [login_plain, login_login], ids=["PLAIN", "LOGIN"])
def test_smart_host_wrong_password(smart, login):
    with tls_session(smart) as c:
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            login(c, "relay-user", "wrong-password")
        assert (e.value.smtp_code, e.value.smtp_error) == (
            535, b"5.7.8 Error: authentication failed: authentication failure"), e.value
        assert c.mail(SENDER)[0] == 250
        assert c.rcpt("someone@far.test")[0] == 554
        c.quit()
