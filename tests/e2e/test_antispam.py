"""
DNSBL (R4.1), unknown sender domains (R4.2) and SPF (R4.3) against a real dnsmasq
on a loopback port: exact replies for a listed client (closed at once,
or refused at RCPT), an unlisted one, a trusted one (never checked), an
authenticated session, a DNS server that never answers (bounded by
[antispam] dns_timeout, then accepted); a sender domain with an MX,
with only an address, with a null MX, that does not exist, and whose
lookup fails; explain gives the live session's replies.
"""
import socket
import sys
import os
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from dnsmasq import Dnsmasq  # noqa: E402

from conftest import DEMO, DEMO_PASSWORD, SENDER, SMTPConn, unverified_context  # noqa: E402

LISTED = "127.0.0.5"        # in bl.test, with a reason
LISTED2 = "127.0.0.7"       # in bl2.test only, no TXT
CLEAN = "127.0.0.6"
REASON = "Listed for tests, see https://bl.test/q?ip=127.0.0.5"
V6NAME = ".".join(reversed("20010db8" + "0" * 23 + "5")) + ".bl.test"


def listed_reply(ip, zone, text=None):
    return "554 5.7.1 Service unavailable; Client host [%s] blocked using %s%s" % (
        ip, zone, "; " + text if text else "")


@pytest.fixture(scope="module")
def dns():
    d = Dnsmasq(hosts={"5.0.0.127.bl.test": ["127.0.0.2"],
                       # 2001:db8::5, nibble by nibble (RFC 5782 2.4)
                       V6NAME: ["127.0.0.3"],
                       "7.0.0.127.bl2.test": ["127.0.0.4"],
                       # a wildcard-happy zone answering outside 127/8
                       "6.0.0.127.bl2.test": ["192.0.2.1"],
                       "mx.good.test": ["192.0.2.25"],
                       "addr.test": ["192.0.2.26"],
                       "pass.test": ["192.0.2.30"], "fail.test": ["192.0.2.31"],
                       "soft.test": ["192.0.2.32"], "exp.test": ["192.0.2.33"],
                       "temp.test": ["192.0.2.34"], "perm.test": ["192.0.2.35"]},
                txt={"5.0.0.127.bl.test": REASON,
                     "pass.test": "v=spf1 ip4:127.0.0.0/24 -all",
                     "fail.test": "v=spf1 ip4:192.0.2.0/24 -all",
                     "soft.test": "v=spf1 ~all",
                     "exp.test": "v=spf1 -all exp=why.exp.test",
                     "why.exp.test": "%{i} is not one of %{d}'s hosts",
                     "temp.test": "v=spf1 include:example.net -all",
                     "perm.test": "v=spf1 ip4:127.0.0.300 -all"},
                mx={"good.test": [(10, "mx.good.test")],
                    "nullmx.test": [(0, ".")]})
    d.start()
    yield d
    d.stop()


def server(make_server, dns, dnsbl_close="yes", dns_server=None, timeout=5, spf="no",
           softfail="tag"):
    return make_server(
        antispam={"dnsbl": "bl.test, bl2.test", "dnsbl_close": dnsbl_close,
                  "reject_unknown_sender_domain": "yes", "spf": spf,
                  "spf_softfail": softfail, "dns_timeout": str(timeout)},
        intrusion={"bypass": "127.0.0.1"},
        extra_config="[dns]\nservers = %s\n" % (dns_server or dns.server))


def connect(p, ip, port=None):
    s = socket.create_connection(("127.0.0.1", port or p.mx_port), timeout=15,
                                 source_address=(ip, 0))
    return SMTPConn(s, timeout=15)


def test_listed_client_is_closed_at_once(make_server, dns):
    p = server(make_server, dns)
    c = connect(p, LISTED)
    assert c.reply().raw == (listed_reply(LISTED, "bl.test", REASON) + "\r\n").encode()
    c.wait_eof()
    # again: the verdict comes from the cache (the answer's TTL holds)
    asked = dns.log().count("query[A] 5.0.0.127.bl.test ")
    c = connect(p, LISTED)
    assert c.reply().raw == (listed_reply(LISTED, "bl.test", REASON) + "\r\n").encode()
    c.wait_eof()
    assert dns.log().count("query[A] 5.0.0.127.bl.test ") == asked
    # RFC 5782: a listing is an A record; no AAAA is asked
    assert "query[AAAA] 5.0.0.127.bl.test" not in dns.log()
    c = connect(p, LISTED2)
    assert c.reply().raw == (listed_reply(LISTED2, "bl2.test") + "\r\n").encode()
    c.wait_eof()
    # an answer outside 127.0.0.0/8 lists nobody; nor does no answer
    c = connect(p, CLEAN)
    assert c.reply().raw == b"220 mx.example.test ESMTP postino\r\n"
    c.close()
    assert p.log_has("event=reject check=dnsbl status=554 dsn=5.7.1")


def test_listed_client_refused_at_rcpt_unless_authorized(make_server, dns):
    p = server(make_server, dns, dnsbl_close="no")
    c = connect(p, LISTED)
    assert c.reply().code == 220
    c.ehlo()
    c.expect("MAIL FROM:<x@good.test>", "250 2.1.0 Ok")
    c.expect("RCPT TO:<%s>" % DEMO, listed_reply(LISTED, "bl.test", REASON))
    c.cmd("RSET")
    # after STARTTLS and AUTH the session is authorized: not refused
    c.starttls()
    c.ehlo()
    import base64
    assert c.cmd("AUTH PLAIN " + base64.b64encode(
        b"\0" + DEMO.encode() + b"\0" + DEMO_PASSWORD.encode()).decode()).code == 235
    c.expect("MAIL FROM:<%s>" % DEMO, "250 2.1.0 Ok")
    c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")
    c.close()


def test_trusted_client_is_never_checked(make_server, dns):
    p = server(make_server, dns)
    p.admin("trusted", "add", LISTED)
    before = len(dns.log())
    c = connect(p, LISTED)
    assert c.reply().code == 220
    c.close()
    assert "5.0.0.127.bl.test" not in dns.log()[before:]


def test_silent_dns_is_bounded_and_accepts(make_server, dns):
    """A DNS server that never answers: the banner waits dns_timeout
    (2 s) at most, then the client is served (the default: accept)."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        p = server(make_server, dns, dns_server="127.0.0.1:%d" % silent.getsockname()[1],
                   timeout=2)
        t = time.monotonic()
        c = connect(p, LISTED)
        assert c.reply().code == 220
        took = time.monotonic() - t
        assert 1.5 < took < 5, took
        c.ehlo()
        # the sender's domain: no answer in time is a temporary failure
        t = time.monotonic()
        c.expect("MAIL FROM:<x@good.test>",
                 "451 4.4.3 <x@good.test>: Sender address rejected: Domain lookup failed, "
                 "try again later")
        assert time.monotonic() - t < 5
        c.close()
    finally:
        silent.close()


@pytest.mark.parametrize("sender,reply", [
    ("x@good.test", "250 2.1.0 Ok"),
    ("x@addr.test", "250 2.1.0 Ok"),
    ("x@GOOD.test", "250 2.1.0 Ok"),
    ("x@gone.test", "550 5.1.8 <x@gone.test>: Sender address rejected: Domain not found"),
    ("x@nullmx.test", "550 5.7.27 <x@nullmx.test>: Sender address rejected: Domain does not "
                      "accept mail (null MX)"),
    # dnsmasq refuses names outside "test": a failed lookup
    ("x@example.net", "451 4.4.3 <x@example.net>: Sender address rejected: Domain lookup "
                      "failed, try again later"),
    ("", "250 2.1.0 Ok"),
    ("x@[192.0.2.1]", "250 2.1.0 Ok"),
    (DEMO, "250 2.1.0 Ok"),
])
def test_sender_domain(make_server, dns, sender, reply):
    p = server(make_server, dns)
    c = connect(p, CLEAN)
    assert c.reply().code == 220
    c.ehlo()
    c.expect("MAIL FROM:<%s>" % sender, reply)
    if reply.startswith("250"):
        rcpt = c.cmd("RCPT TO:<%s>" % DEMO)
        assert rcpt.code == 250 or sender == DEMO, rcpt
    c.close()


def test_authenticated_sender_domain_not_checked(make_server, dns):
    import base64
    p = server(make_server, dns)
    p.admin("account", "send-as", DEMO, "x@gone.test")
    s = socket.create_connection(("127.0.0.1", p.subs_port), timeout=10)
    c = SMTPConn(unverified_context().wrap_socket(s))
    assert c.reply().code == 220
    c.ehlo()
    assert c.cmd("AUTH PLAIN " + base64.b64encode(
        b"\0" + DEMO.encode() + b"\0" + DEMO_PASSWORD.encode()).decode()).code == 235
    c.expect("MAIL FROM:<x@gone.test>", "250 2.1.0 Ok")
    c.close()


def test_explain_asks_the_same_dns(make_server, dns):
    p = server(make_server, dns)
    # an IPv6 client: the nibble name
    r = p.admin("explain", "--ip", "2001:db8::5", "--from", SENDER, "--to", DEMO, check=False)
    assert r.stdout.rstrip().endswith("final: " + listed_reply("2001:db8::5", "bl.test")), \
        r.stdout
    r = p.admin("explain", "--ip", LISTED, "--from", SENDER, "--to", DEMO, check=False)
    assert r.stdout.rstrip().endswith("final: " + listed_reply(LISTED, "bl.test", REASON))
    assert "connect  dnsbl            REJECT    127.0.0.5 listed by bl.test (127.0.0.2)" \
        in r.stdout, r.stdout
    r = p.admin("explain", "--ip", CLEAN, "--from", "x@gone.test", "--to", DEMO, check=False)
    assert r.stdout.rstrip().endswith(
        "final: 550 5.1.8 <x@gone.test>: Sender address rejected: Domain not found"), r.stdout
    r = p.admin("explain", "--ip", CLEAN, "--from", "x@good.test", "--to", DEMO, check=False)
    assert "good.test has an MX or an address" in r.stdout
    assert r.stdout.rstrip().endswith("final: 250 2.1.5 Ok"), r.stdout


# --------------------------------------------------------------------
# SPF (R4.3)
# --------------------------------------------------------------------

def spf_header(p, sender):
    """Send one message from sender; the first header field delivered."""
    before = len(p.messages())
    c = connect(p, CLEAN)
    assert c.reply().code == 220
    c.ehlo("client.test")
    c.send_message(b"Subject: spf\r\n\r\nhi\r\n", sender=sender)
    c.close()
    msg = p.wait_messages(before + 1)
    new = [m for m in msg if b"Subject: spf" in m][-1]
    first = new.split(b"\r\nReceived: ", 1)[0]
    return first.replace(b"\r\n\t", b" ").decode()


@pytest.mark.parametrize("sender,result,mech", [
    ("x@pass.test", "pass", "ip4:127.0.0.0/24"),
    ("x@soft.test", "softfail", "~all"),
    ("x@good.test", "none", None),
    ("x@temp.test", "temperror", None),
    ("x@perm.test", "permerror", None),
])
def test_spf_tags(make_server, dns, sender, result, mech):
    p = server(make_server, dns, spf="yes")
    h = spf_header(p, sender)
    assert h.startswith("Received-SPF: %s (" % result), h
    assert "client-ip=127.0.0.6;" in h and 'envelope-from="%s";' % sender in h \
        or "envelope-from=%s;" % sender in h, h
    assert "helo=client.test;" in h and "receiver=mx.example.test;" in h, h
    if mech:
        assert mech in h, h


def test_spf_fail_is_refused(make_server, dns):
    p = server(make_server, dns, spf="yes")
    c = connect(p, CLEAN)
    assert c.reply().code == 220
    c.ehlo("client.test")
    c.expect("MAIL FROM:<x@fail.test>",
             "550 5.7.23 <x@fail.test>: Sender address rejected: SPF fail: fail.test does "
             "not designate 127.0.0.6 as permitted sender")
    # the record's own explanation (exp=), its macros expanded
    c.expect("MAIL FROM:<x@exp.test>",
             "550 5.7.23 <x@exp.test>: Sender address rejected: SPF fail: 127.0.0.6 is "
             "not one of exp.test's hosts")
    c.close()


def test_spf_softfail_reject(make_server, dns):
    p = server(make_server, dns, spf="yes", softfail="reject")
    c = connect(p, CLEAN)
    assert c.reply().code == 220
    c.ehlo("client.test")
    c.expect("MAIL FROM:<x@soft.test>",
             "550 5.7.23 <x@soft.test>: Sender address rejected: SPF softfail: soft.test "
             "does not designate 127.0.0.6 as permitted sender")
    c.close()


def test_spf_explain(make_server, dns):
    p = server(make_server, dns, spf="yes")
    r = p.admin("explain", "--ip", CLEAN, "--helo", "client.test", "--from", "x@fail.test",
                "--to", DEMO, check=False)
    assert r.stdout.rstrip().endswith(
        "final: 550 5.7.23 <x@fail.test>: Sender address rejected: SPF fail: fail.test does "
        "not designate 127.0.0.6 as permitted sender"), r.stdout
    r = p.admin("explain", "--ip", CLEAN, "--helo", "client.test", "--from", "x@pass.test",
                "--to", DEMO)
    assert "mail     spf              DUNNO     pass: tagged" in r.stdout, r.stdout
    assert "mail     +> Received-SPF: pass (" in r.stdout, r.stdout
