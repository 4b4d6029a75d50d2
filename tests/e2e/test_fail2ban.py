"""
R7.4: postino's log is readable by fail2ban.  One server (mx,
submissions, pop3s and devices listeners, a private dnsmasq for the
DNSBL, sender-domain and SPF checks) is given a known sequence from
distinct loopback addresses: failed SMTP AUTH with every mechanism and
failed POP3 logins, every kind of refusal (policy checks, messages
refused at the end of DATA or of a BDAT chunk, too many errors, over the
per-address connection limit, a client blocked by postino's own
intrusion prevention (R4.4) refused at connect on SMTP and POP3), the
temporary refusals that are not the client's doing (event=defer), and
successful logins, deliveries and a POP3 download in between.  A second
server, with timeout_greeting and a connection limit of one, sees a
client talking before the greeting and a client over the server's own
limit.  Then Debian's fail2ban-regex runs etc/fail2ban/filter.d/postino.conf
over both logs: exactly one matched line per failed login (the store's,
not net's second line about it) and per refusal, each with its client's
address as the host, and nothing else.  And every line postino wrote
has the shape docs/logs.md promises (key=value, quoted values escaped).
"""
import base64
import collections
import hashlib
import hmac
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from dnsmasq import Dnsmasq  # noqa: E402

from conftest import DEMO, DEMO_PASSWORD, HOSTNAME, ROOT, extra_ports  # noqa: E402
from test_auth import scram_exchange  # noqa: E402
from test_pop3 import FAILED, POP3Conn  # noqa: E402

FILTER = os.path.join(ROOT, "etc", "fail2ban", "filter.d", "postino.conf")
JAIL = os.path.join(ROOT, "etc", "fail2ban", "jail.d", "postino.conf")
FAIL2BAN_REGEX = shutil.which("fail2ban-regex") or "/usr/bin/fail2ban-regex"

SENDER = "sender@good.test"     # a remote sender whose domain and SPF pass
REMOTE = "friend@example.org"
QUOTED = '"a b\\"c"@far.test'    # relayed; far.test has no MX: bounced
BAD_535 = "535 5.7.8 Authentication credentials invalid"
OK_235 = "235 2.7.0 Authentication successful"
TOO_MANY_421 = "421 4.7.0 mx.example.test Error: too many failed authentications"
TOO_BIG = "552 5.3.4 Message size exceeds fixed limit"

# The clients.  Everything in 127.0.0.0/25 is in the [intrusion] bypass
# list (counted, never blocked); 127.0.0.128 and up are outside it: the
# DNSBL, sender-domain and SPF checks and the rate limits skip a
# bypassed client, and BLOCKED is to be blocked.
AUTH_A = "127.0.0.61"       # 3 failed SMTP AUTH, then a login and a message
AUTH_B = "127.0.0.62"       # 2 failed SMTP AUTH (CRAM-MD5, an unknown user)
AUTH_C = "127.0.0.63"       # 2 failed SMTP AUTH: SCRAM-SHA-256, SCRAM-SHA-1
POP_A = "127.0.0.71"        # 2 failed POP3 USER/PASS, then a login and RETR
POP_B = "127.0.0.72"        # 1 failed POP3 AUTH PLAIN
POP_ERRORS = "127.0.0.73"   # POP3: too many bad commands
POP_CONNLIMIT = "127.0.0.74"  # POP3: over max_connections_per_ip
RELAY = "127.0.0.81"        # relay access denied
UNKNOWN = "127.0.0.82"      # an unknown user, then a message delivered
LOCAL_SENDER = "127.0.0.83"  # R3.1
NOT_OWNED = "127.0.0.84"    # R3.2 (authenticated), then a message delivered
NO_AUTH = "127.0.0.85"      # MAIL on submissions before AUTH
NOT_DEVICE = "127.0.0.86"   # not a registered device
ERRORS = "127.0.0.87"       # too many errors
CONNLIMIT = "127.0.0.88"    # over max_connections_per_ip
CLEAN = "127.0.0.90"        # only a message delivered
SIZE_MAIL = "127.0.0.91"    # MAIL ... SIZE= over max_message_size
SIZE_DATA = "127.0.0.92"    # a message over max_message_size (DATA)
BARE_LF = "127.0.0.93"      # a bare LF in DATA (bare_lf = reject)
LONG_LINE = "127.0.0.94"    # a line over 1000 octets
HEADERS = "127.0.0.95"      # a header section over 64 KiB
HOPS = "127.0.0.96"         # more Received: fields than max_hops
BDAT_SIZE = "127.0.0.97"    # a BDAT chunk over max_message_size
MAX_RCPT = "127.0.0.98"     # more RCPT than max_recipients: deferred
DNSBL = "127.0.0.130"       # listed in bl.test, refused at connect
GONE_DOMAIN = "127.0.0.131"  # sender domain does not exist (R4.2)
SPF_FAIL = "127.0.0.132"    # SPF fail (R4.3)
DNS_TEMPFAIL = "127.0.0.133"  # sender domain lookup fails: 451 4.4.3, deferred
RATE_MSG = "127.0.0.134"    # a message, then over messages_per_ip
RATE_RCPT = "127.0.0.135"   # over recipients_per_ip
BLOCKED = "127.0.0.200"     # 3 SMTP + 2 POP3 failures: blocked (R4.4),
                            # then refused at connect on SMTP and POP3
# the second server's
PREGREET = "127.0.0.101"    # talks before the greeting
HOLDER = "127.0.0.102"      # holds the one connection allowed
BUSY = "127.0.0.103"        # over max_connections: deferred

N_SMTP = {AUTH_A: 3, AUTH_B: 2, AUTH_C: 2, BLOCKED: 3}   # failed SMTP AUTH
M_POP3 = {POP_A: 2, POP_B: 1, BLOCKED: 2}          # failed POP3 logins
K_SMTP = {RELAY: "relay", UNKNOWN: "recipient", LOCAL_SENDER: "local-sender",
          NOT_OWNED: "auth-sender", NO_AUTH: "submission-auth", NOT_DEVICE: "devices",
          GONE_DOMAIN: "sender-domain", SPF_FAIL: "spf", DNSBL: "dnsbl",
          BLOCKED: "blocked", ERRORS: "errors", CONNLIMIT: "max-connections-per-ip",
          SIZE_MAIL: "size", SIZE_DATA: "size", BARE_LF: "bare-lf",
          LONG_LINE: "line-length", HEADERS: "header-size", HOPS: "max-hops",
          BDAT_SIZE: "size", RATE_MSG: "rate-messages",
          RATE_RCPT: "rate-recipients"}            # SMTP refusals
K_POP3 = {BLOCKED: "blocked", POP_ERRORS: "errors",
          POP_CONNLIMIT: "max-connections-per-ip"}  # POP3 refusals
K_GATE = {PREGREET: "pregreet"}                    # the second server's
# temporary refusals that are no doing of the client's: logged, not matched
D_SMTP = {DNS_TEMPFAIL: "check=sender-domain status=451 dsn=4.4.3",
          MAX_RCPT: "check=max-recipients status=452 dsn=4.5.3"}
D_GATE = {BUSY: "check=max-connections status=421 dsn=4.7.0"}

LINES_RE = re.compile(r"^Lines: (\d+) lines, (\d+) ignored, (\d+) matched, (\d+) missed",
                      re.M)
HIT_RE = re.compile(r"^\|\s+(\d+)\) \[(\d+)\] ", re.M)

# docs/logs.md: every line is "TIME postino[ROLE/PID]: [LEVEL: ]WHAT
# key=value...", a value bare (no space, no quote) or quoted with '"',
# '\\' and controls escaped as \xHH.
KV = r'[a-z][a-z0-9_-]*=(?:"(?:[^"\\\x00-\x1f]|\\x[0-9a-f]{2})*"|[^\s"]*)'
SHAPE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z postino\[(?:parent|net|store)/\d+\]: "
                      r"(?:(?:warning|error|debug): )?[a-z][a-z0-9-]*(?: %s)+$" % KV)


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def plain(user, password):
    return b64("\0%s\0%s" % (user, password))


def message(tag, sender=SENDER):
    return ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n\r\n"
            "body of %s\r\n" % (sender, DEMO, tag, tag, tag)).encode()


@pytest.fixture
def dns():
    d = Dnsmasq(hosts={"130.0.0.127.bl.test": ["127.0.0.2"],
                       "mx.good.test": ["192.0.2.25"],
                       "fail.test": ["192.0.2.31"]},
                txt={"130.0.0.127.bl.test": "Listed for tests",
                     "good.test": "v=spf1 ip4:127.0.0.0/24 -all",
                     "fail.test": "v=spf1 ip4:192.0.2.0/24 -all"},
                mx={"good.test": [(10, "mx.good.test")]})
    d.start()
    yield d
    d.stop()


def f2b_server(make_server, dns):
    p = make_server(start=False,
                    smtp={"max_connections_per_ip": "2", "max_message_size": "100K",
                          "max_recipients": "3"},
                    intrusion={"bypass": "127.0.0.0/25", "max_auth_failures": "5",
                               "block_minutes": "30"},
                    antispam={"dnsbl": "bl.test", "dnsbl_close": "yes",
                              "reject_unknown_sender_domain": "yes", "spf": "yes",
                              "dns_timeout": "5"})
    p.pop3s_port, p.devices_port = extra_ports(p, 2)
    p.extra_config = "\n".join([
        "[listener pop3s]", "listen = 127.0.0.1:%d" % p.pop3s_port, "profile = pop3s",
        "[listener devices]", "listen = 127.0.0.1:%d" % p.devices_port,
        "profile = devices",
        "[ratelimit]", "messages_per_ip = 1", "recipients_per_ip = 2",
        "[dns]", "servers = %s" % dns.server])
    p.write_config()
    p.start()
    return p


def subs(p, ip):
    """A submissions session from ip, after EHLO."""
    c = p.connect(port=p.subs_port, tls=True, source=ip)
    c.ehlo()
    return c


def mx(p, ip):
    c = p.connect(source=ip)
    c.ehlo()
    return c


def refused_at_connect(p, ip, port, want):
    c = p.connect(port=port, source=ip, greeting=False)
    try:
        assert c.reply().raw == want.encode() + b"\r\n"
        c.wait_eof()
    finally:
        c.close()


def run_regex(log, *opts):
    r = subprocess.run([FAIL2BAN_REGEX] + list(opts) + [log, FILTER],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, "fail2ban-regex: exit %d\n%s%s" % (
        r.returncode, r.stdout, r.stderr)
    return r.stdout


def produce(p):
    """The known sequence; replies checked byte for byte."""
    # -- failed SMTP AUTH, and logins and messages that must not match
    with subs(p, AUTH_A) as c:
        c.expect("AUTH PLAIN " + plain(DEMO, "wrong-1"), BAD_535)
        c.expect("AUTH PLAIN " + plain(DEMO, "wrong-2"), BAD_535)
        c.expect("QUIT", "221 2.0.0 Bye")
    with subs(p, AUTH_A) as c:
        c.expect("AUTH LOGIN", "334 VXNlcm5hbWU6")
        c.expect(b64(DEMO), "334 UGFzc3dvcmQ6")
        c.expect(b64("wrong-3"), BAD_535)
        c.expect("AUTH PLAIN " + plain(DEMO, DEMO_PASSWORD), OK_235)
        c.send_message(message("auth-a"), rcpts=(DEMO,), sender=DEMO)
        c.expect("QUIT", "221 2.0.0 Bye")
    with subs(p, AUTH_B) as c:
        r = c.cmd("AUTH CRAM-MD5")
        assert r.code == 334, r
        digest = hmac.new(b"wrong-4", base64.b64decode(r.lines[0][4:]),
                          hashlib.md5).hexdigest()
        c.expect(b64("%s %s" % (DEMO, digest)), BAD_535)
        c.expect("AUTH PLAIN " + plain("nobody@example.test", "wrong-5"), BAD_535)
        c.expect("QUIT", "221 2.0.0 Bye")
    with subs(p, AUTH_C) as c:
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
            r, _, _ = scram_exchange(c, mech, DEMO, "wrong-" + mech)
            assert r.raw == BAD_535.encode() + b"\r\n", r
        c.expect("QUIT", "221 2.0.0 Bye")

    # -- failed POP3 logins, and a login that must not match
    c = POP3Conn(p.pop3s_port, tls=True, source=POP_A)
    try:
        for pw in ("wrong-6", "wrong-7"):
            c.expect("USER " + DEMO, b"+OK")
            c.expect("PASS " + pw, FAILED[:-2])
        c.login()
        stat = c.cmd("STAT")
        assert stat.startswith(b"+OK "), stat
        c.expect("QUIT", b"+OK Logging out.")
    finally:
        c.close()
    c = POP3Conn(p.pop3s_port, tls=True, source=POP_B)
    try:
        c.expect("AUTH PLAIN " + plain(DEMO, "wrong-8"), FAILED[:-2])
        c.expect("QUIT", b"+OK Logging out.")
    finally:
        c.close()

    # -- policy refusals, with transactions that go through in between
    with mx(p, RELAY) as c:
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        c.expect("RCPT TO:<%s>" % REMOTE, "550 5.7.1 <%s> Relay access denied" % REMOTE)
        c.expect("QUIT", "221 2.0.0 Bye")
    with mx(p, UNKNOWN) as c:
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        c.expect("RCPT TO:<nobody@example.test>",
                 "550 5.1.1 <nobody@example.test> User unknown")
        c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")
        c.expect("DATA", "354 End data with <CR><LF>.<CR><LF>")
        c.send(message("unknown") + b".\r\n")
        c.queued_id(c.reply())
        c.expect("QUIT", "221 2.0.0 Bye")
    with mx(p, LOCAL_SENDER) as c:
        c.expect("MAIL FROM:<%s>" % DEMO, "250 2.1.0 Ok")
        c.expect("RCPT TO:<%s>" % DEMO,
                 "550 5.7.1 <%s> Access to <%s> not allowed" % (DEMO, DEMO))
        c.expect("QUIT", "221 2.0.0 Bye")
    with subs(p, NOT_OWNED) as c:
        c.expect("AUTH PLAIN " + plain(DEMO, DEMO_PASSWORD), OK_235)
        c.expect("MAIL FROM:<boss@example.test>", "250 2.1.0 Ok")
        c.expect("RCPT TO:<%s>" % DEMO, "501 5.7.1 <boss@example.test>... Permission denied")
        c.expect("RSET", "250 2.0.0 Ok")
        c.send_message(message("not-owned", DEMO), rcpts=(DEMO,), sender=DEMO)
        # relayed: a quoted local part with a space and a quote, which
        # the queue's lines write escaped (the shape check, below)
        c.send_message(message("quoted", DEMO), rcpts=(QUOTED,), sender=DEMO)
        c.expect("QUIT", "221 2.0.0 Bye")
    with subs(p, NO_AUTH) as c:
        c.expect("MAIL FROM:<%s>" % SENDER, "530 5.7.0 Authentication required")
        c.expect("QUIT", "221 2.0.0 Bye")
    refused_at_connect(p, NOT_DEVICE, p.devices_port,
                       "554 5.7.1 Client host [%s] is not a registered device" % NOT_DEVICE)
    with mx(p, GONE_DOMAIN) as c:
        c.expect("MAIL FROM:<x@gone.test>",
                 "550 5.1.8 <x@gone.test>: Sender address rejected: Domain not found")
        c.expect("QUIT", "221 2.0.0 Bye")
    with mx(p, SPF_FAIL) as c:
        r = c.cmd("MAIL FROM:<x@fail.test>")
        assert r.text.startswith("550 5.7.23 <x@fail.test>: Sender address rejected: "
                                 "SPF fail: "), r
        c.expect("QUIT", "221 2.0.0 Bye")
    with mx(p, CLEAN) as c:
        c.send_message(message("clean"), rcpts=(DEMO,), sender=SENDER)
        c.expect("QUIT", "221 2.0.0 Bye")
    with mx(p, DNS_TEMPFAIL) as c:
        # dnsmasq refuses names outside "test": a temporary failure,
        # logged as event=reject, that is no fault of the client's
        c.expect("MAIL FROM:<x@example.net>",
                 "451 4.4.3 <x@example.net>: Sender address rejected: Domain lookup failed, "
                 "try again later")
        c.expect("QUIT", "221 2.0.0 Bye")
    refused_at_connect(p, DNSBL, p.mx_port,
                       "554 5.7.1 Service unavailable; Client host [%s] blocked using "
                       "bl.test; Listed for tests" % DNSBL)

    c = POP3Conn(p.pop3s_port, tls=True, source=POP_ERRORS)
    try:
        for _ in range(10):
            c.expect("XYZZY", b"-ERR Unknown command.")
        assert c.line() == b"-ERR Too many bad commands.\r\n"
        c.eof()
    finally:
        c.close()

    # -- over max_connections_per_ip (2), on SMTP and on POP3 under TLS
    held = [mx(p, CONNLIMIT) for _ in range(2)]
    refused_at_connect(p, CONNLIMIT, p.mx_port,
                       "421 4.7.0 Too many connections, try again later")
    for c in held:
        c.expect("QUIT", "221 2.0.0 Bye")
        c.close()
    held = [POP3Conn(p.pop3s_port, tls=True, source=POP_CONNLIMIT) for _ in range(2)]
    with socket.create_connection(("127.0.0.1", p.pop3s_port), timeout=10,
                                  source_address=(POP_CONNLIMIT, 0)) as sock:
        assert sock.recv(100) == b""     # implicit TLS: closed without a word
    for c in held:
        c.expect("QUIT", b"+OK Logging out.")
        c.close()

    # -- too many errors (max_errors = 10)
    with mx(p, ERRORS) as c:
        for _ in range(10):
            c.expect("XYZZY", "500 5.5.2 Error: command not recognized")
        c.expect_reply("421 4.7.0 %s Error: too many errors" % HOSTNAME)
        c.wait_eof()

    # -- messages refused: at MAIL by their SIZE, at the end of DATA or
    # of a BDAT chunk by what they hold
    with mx(p, SIZE_MAIL) as c:
        c.expect("MAIL FROM:<%s> SIZE=200000" % SENDER, TOO_BIG)
        c.expect("QUIT", "221 2.0.0 Bye")
    line = b"x" * 70 + b"\r\n"
    for ip, body, want in (
            (SIZE_DATA, line * 1800, TOO_BIG),
            (BARE_LF, b"one\ntwo\r\n", "554 5.6.0 Bare <LF> received"),
            (LONG_LINE, b"y" * 1200 + b"\r\n", "500 5.5.2 Line too long"),
            (HEADERS, None, "552 5.6.0 Header section too long"),
            (HOPS, None, "554 5.4.6 Too many hops")):
        if ip == HEADERS:
            msg = b"".join(b"X-Filler-%04d: %s\r\n" % (i, b"z" * 60)
                           for i in range(1100)) + b"\r\nbody\r\n"
        elif ip == HOPS:
            msg = b"".join(b"Received: from hop%d.example.org by hop%d.example.org; "
                           b"Fri, 31 Jan 2025 12:00:00 +0000\r\n" % (i, i + 1)
                           for i in range(25)) + message(ip)
        else:
            msg = message(ip)[:-2] + body
        with mx(p, ip) as c:
            c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
            c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")
            c.expect("DATA", "354 End data with <CR><LF>.<CR><LF>")
            c.send(msg + b".\r\n")
            c.expect_reply(want)
            c.expect("QUIT", "221 2.0.0 Bye")
    with mx(p, BDAT_SIZE) as c:
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")
        c.send(b"BDAT 120000\r\n" + line * (120000 // len(line)) + b"x" * (120000 % len(line)))
        c.expect_reply(TOO_BIG)
        c.expect("QUIT", "221 2.0.0 Bye")

    # -- rate limits (R4.4), clients outside the bypass list
    with mx(p, RATE_MSG) as c:
        c.send_message(message("rate"), rcpts=(DEMO,), sender=SENDER)
        c.expect("MAIL FROM:<%s>" % SENDER, "451 4.7.1 Message rate limit of 1 an hour "
                 "reached for [%s]" % RATE_MSG)
        c.expect("QUIT", "221 2.0.0 Bye")
    with mx(p, RATE_RCPT) as c:
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")
        c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")
        c.expect("RCPT TO:<%s>" % DEMO, "452 4.5.3 Recipient rate limit of 2 an hour "
                 "reached for [%s]" % RATE_RCPT)
        c.expect("QUIT", "221 2.0.0 Bye")

    # -- more recipients than one transaction takes: deferred, the
    # client's right (RFC 5321 4.5.3.1.8), not matched
    with mx(p, MAX_RCPT) as c:
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        for _ in range(3):
            c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")
        c.expect("RCPT TO:<%s>" % DEMO, "452 4.5.3 Too many recipients")
        c.expect("QUIT", "221 2.0.0 Bye")

    # -- a brute force that postino blocks itself (R4.4): five failures
    # over SMTP and POP3 together, then refused at connect on both
    with subs(p, BLOCKED) as c:
        c.expect("AUTH PLAIN " + plain(DEMO, "wrong-9"), BAD_535)
        c.expect("AUTH PLAIN " + plain(DEMO, "wrong-10"), BAD_535)
        c.send("AUTH PLAIN %s\r\n" % plain(DEMO, "wrong-11"))
        c.expect_reply(BAD_535)
        c.expect_reply(TOO_MANY_421)
        c.wait_eof()
    c = POP3Conn(p.pop3s_port, tls=True, source=BLOCKED)
    try:
        for pw in ("wrong-12", "wrong-13"):
            c.expect("USER " + DEMO, b"+OK")
            c.expect("PASS " + pw, FAILED[:-2])
    finally:
        c.close()
    assert p.log_has("intrusion event=block address=[%s] reason=auth-failures count=5 "
                     "minutes=30" % BLOCKED)
    refused_at_connect(p, BLOCKED, p.mx_port,
                       "421 4.7.0 Client host [%s] blocked, try again later" % BLOCKED)
    c = POP3Conn(p.pop3s_port, tls=True, source=BLOCKED, greeting=False)
    try:
        assert c.line() == (b"-ERR [SYS/TEMP] Client host [%s] blocked, try again later.\r\n"
                            % BLOCKED.encode())
        c.eof()
    finally:
        c.close()

    # the messages are delivered (queue lines in the log)
    p.wait_messages(5)


def gate_server(make_server):
    """The second server: a greeting delay, room for one connection."""
    p = make_server(smtp={"timeout_greeting": "1", "max_connections": "1"})
    with p.connect(source=PREGREET, greeting=False) as c:
        c.send("EHLO early.example.org\r\n")
        c.expect_reply("554 5.5.1 %s Error: talked before the greeting" % HOSTNAME)
        c.wait_eof()
    with p.connect(source=HOLDER) as held:
        refused_at_connect(p, BUSY, p.mx_port,
                           "421 4.7.0 Too many connections, try again later")
        held.expect("QUIT", "221 2.0.0 Bye")
    return p


def regex_summary(name, log, capsys):
    """fail2ban-regex over log: (total, ignored, matched, missed), {failregex
    number: hits}; its summary line goes to the test's output."""
    out = run_regex(log)
    lines = LINES_RE.search(out)
    assert lines, out
    with capsys.disabled():
        sys.stdout.write("\nfail2ban-regex, %s server's log: %s\n" % (name, lines.group(0)))
    hits = {int(i): int(h) for i, h in HIT_RE.findall(out.split("Ignoreregex:")[0])}
    return tuple(map(int, lines.groups())), hits, out


def matched_lines(log):
    """[(host, line)] of every line the filter matches in log."""
    out = run_regex(log, "-o", "<ip> <msg>")
    return [ln.split(" ", 1) for ln in out.splitlines() if ln.strip()]


def tally(matches):
    """Failed logins by service and host, refusals by protocol and host
    (one each at most), from the matched lines."""
    auth = {"smtp": collections.Counter(), "pop3": collections.Counter()}
    refs = {"smtp": {}, "pop3": {}}
    for host, line in matches:
        assert re.search(r": (?:smtp |pop3 |auth )session=[0-9a-f]{16} address=\[%s\] "
                         % re.escape(host), line), (host, line)
        assert " event=auth " not in line and "result=ok" not in line, line
        assert " event=defer " not in line, line
        f = re.search(r" auth session=\S+ address=\S+ service=(smtp|pop3) ", line)
        if f:
            assert "postino[store/" in line and "result=fail" in line, line
            auth[f.group(1)][host] += 1
            continue
        r = re.search(r"postino\[net/\d+\]: (smtp|pop3) \S+ \S+ event=reject (?:\S+ )*?"
                      r"check=(\S+) status=(?:\d{3} dsn=\d\.\d+\.\d+|-ERR)(?: \S+)*$", line)
        assert r, line
        assert host not in refs[r.group(1)], "two refusals of %s: %s" % (host, line)
        refs[r.group(1)][host] = r.group(2)
    return auth, refs


def assert_shape(log, least):
    """Every line postino wrote is key=value (docs/logs.md); at least
    least of them.  Not postino's: the test's own lines, and under
    make test SAN=1 the sanitizers' ("==PID==...", which conftest judges)."""
    n = 0
    for line in log.splitlines():
        if line.startswith("[test] ") or re.match(r"==\d+==", line):
            continue
        assert SHAPE_RE.match(line), "not key=value: %r" % line
        n += 1
    assert n >= least, log


def test_fail2ban_regex_counts_each_failure_and_refusal_once(make_server, dns, capsys):
    if not os.access(FAIL2BAN_REGEX, os.X_OK):
        pytest.fail("%s is missing: sh scripts/install-deps.sh installs fail2ban"
                    % FAIL2BAN_REGEX, pytrace=False)
    assert os.path.isfile(JAIL)
    p = f2b_server(make_server, dns)
    produce(p)
    gate = gate_server(make_server)
    # the logs as they end: nothing more is written to them
    p.stop()
    gate.stop()
    log, gate_log = p.read_log(), gate.read_log()

    n, m = sum(N_SMTP.values()), sum(M_POP3.values())
    k = len(K_SMTP) + len(K_POP3)
    want = n + m + k

    # the log holds what must not match, too
    assert len(re.findall(r" event=auth result=fail ", log)) == n + m
    assert "result=ok" in log and "event=queued" in log and "event=login" in log
    assert re.search(r"postino\[store/\d+\]: queue qid=\S+ event=delivered ", log)
    assert "intrusion event=block address=[%s]" % BLOCKED in log
    for text, d in ((log, D_SMTP), (gate_log, D_GATE)):
        for ip, codes in d.items():
            assert len(re.findall(r"address=\[%s\] event=defer (?:\S+ )*?%s(?: |\n)"
                                  % (re.escape(ip), codes), text)) == 1, (ip, text)

    (total, ignored, matched, missed), hits, out = regex_summary("the first", p.log_path, capsys)
    assert (matched, ignored) == (want, 0), out
    assert total == matched + missed, out
    # failregex 1: failed logins; 2: refusals
    assert hits == {1: n + m, 2: k}, out

    auth, refs = tally(matched_lines(p.log_path))
    assert dict(auth["smtp"]) == N_SMTP
    assert dict(auth["pop3"]) == M_POP3
    assert refs["smtp"] == K_SMTP
    assert refs["pop3"] == K_POP3

    (total, ignored, matched, missed), hits, out = regex_summary("the second", gate.log_path, capsys)
    assert (matched, ignored, hits) == (len(K_GATE), 0, {2: len(K_GATE)}), out
    auth, refs = tally(matched_lines(gate.log_path))
    assert (refs["smtp"], refs["pop3"]) == (K_GATE, {})

    assert_shape(log, 200)
    assert_shape(gate_log, 20)


def test_store_error_is_deferred_not_counted(make_server):
    """A refusal for postino's own failure names it (check=store-error,
    not the check that ran into it), as event=defer: fail2ban does not
    ban a client for it.  The failure: the table of blocked addresses
    is gone from under the running store."""
    p = make_server(intrusion={"bypass": "127.0.0.0/25"}, start=False)
    p.pop3_port, = extra_ports(p, 1)
    p.extra_config = "[listener pop3]\nlisten = 127.0.0.1:%d\nprofile = pop3" % p.pop3_port
    p.write_config()
    p.start()
    ip = "127.0.0.140"
    con = sqlite3.connect(p.store_file, timeout=10)    # the file the daemon reads
    try:
        con.execute("ALTER TABLE blocks RENAME TO blocks_gone")
        con.commit()
        c = p.connect(source=ip, greeting=False)
        try:
            c.expect_reply("451 4.3.0 Error: local error in processing")
            c.wait_eof()
        finally:
            c.close()
        c = POP3Conn(p.pop3_port, source=ip, greeting=False)
        try:
            assert c.line() == b"-ERR [SYS/TEMP] Local error in processing.\r\n"
            c.eof()
        finally:
            c.close()
        con.execute("ALTER TABLE blocks_gone RENAME TO blocks")
        con.commit()
    finally:
        con.close()
    with p.connect(source=ip) as c:          # the table back: served again
        c.expect("QUIT", "221 2.0.0 Bye")
    p.stop()
    log = p.read_log()
    assert len(re.findall(r"smtp session=[0-9a-f]{16} address=\[%s\] event=defer "
                          r"check=store-error status=451 dsn=4\.3\.0 host=\S+\n"
                          % re.escape(ip), log)) == 1, log
    assert len(re.findall(r"pop3 session=[0-9a-f]{16} address=\[%s\] event=defer "
                          r"check=store-error status=-ERR resp_code=SYS/TEMP\n"
                          % re.escape(ip), log)) == 1, log
    assert " event=reject " not in log, log
    assert matched_lines(p.log_path) == []
    assert_shape(log, 10)
