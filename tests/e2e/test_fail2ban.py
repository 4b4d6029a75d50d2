"""
R7.4: postino's log is readable by fail2ban.  One server (mx,
submissions, pop3s and devices listeners, a private dnsmasq for the
DNSBL, sender-domain and SPF checks) is given a known sequence from
distinct loopback addresses: failed SMTP AUTH and POP3 logins, policy
refusals of every kind, a client blocked by postino's own intrusion
prevention (R4.4) and refused at connect on SMTP and POP3, and
successful logins, deliveries and a POP3 download in between.  Then
Debian's fail2ban-regex runs etc/fail2ban/filter.d/postino.conf over the
server's log: exactly one matched line per failed login (the store's,
not net's second line about it) and per refusal, each with its client's
address as the host, and nothing else.
"""
import base64
import collections
import hashlib
import hmac
import os
import re
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from dnsmasq import Dnsmasq  # noqa: E402

from conftest import DEMO, DEMO_PASSWORD, ROOT, extra_ports  # noqa: E402
from test_pop3 import FAILED, POP3Conn  # noqa: E402

FILTER = os.path.join(ROOT, "etc", "fail2ban", "filter.d", "postino.conf")
JAIL = os.path.join(ROOT, "etc", "fail2ban", "jail.d", "postino.conf")
FAIL2BAN_REGEX = shutil.which("fail2ban-regex") or "/usr/bin/fail2ban-regex"

SENDER = "sender@good.test"     # a remote sender whose domain and SPF pass
REMOTE = "friend@example.org"
BAD_535 = "535 5.7.8 Authentication credentials invalid"
OK_235 = "235 2.7.0 Authentication successful"
TOO_MANY_421 = "421 4.7.0 mx.example.test Error: too many failed authentications"

# The clients.  Everything in 127.0.0.0/25 is in the [intrusion] bypass
# list (counted, never blocked); 127.0.0.128 and up are outside it: the
# DNSBL, sender-domain and SPF checks skip a bypassed client, and
# BLOCKED is to be blocked.
AUTH_A = "127.0.0.61"       # 3 failed SMTP AUTH, then a login and a message
AUTH_B = "127.0.0.62"       # 2 failed SMTP AUTH (CRAM-MD5, an unknown user)
POP_A = "127.0.0.71"        # 2 failed POP3 USER/PASS, then a login and RETR
POP_B = "127.0.0.72"        # 1 failed POP3 AUTH PLAIN
RELAY = "127.0.0.81"        # relay access denied
UNKNOWN = "127.0.0.82"      # an unknown user, then a message delivered
LOCAL_SENDER = "127.0.0.83"  # R3.1
NOT_OWNED = "127.0.0.84"    # R3.2 (authenticated), then a message delivered
NO_AUTH = "127.0.0.85"      # MAIL on submissions before AUTH
NOT_DEVICE = "127.0.0.86"   # not a registered device
CLEAN = "127.0.0.90"        # only a message delivered
DNSBL = "127.0.0.130"       # listed in bl.test, refused at connect
GONE_DOMAIN = "127.0.0.131"  # sender domain does not exist (R4.2)
SPF_FAIL = "127.0.0.132"    # SPF fail (R4.3)
DNS_TEMPFAIL = "127.0.0.133"  # sender domain lookup fails: 451 4.4.3, not matched
BLOCKED = "127.0.0.200"     # 3 SMTP + 2 POP3 failures: blocked (R4.4),
                            # then refused at connect on SMTP and POP3

N_SMTP = {AUTH_A: 3, AUTH_B: 2, BLOCKED: 3}        # failed SMTP AUTH
M_POP3 = {POP_A: 2, POP_B: 1, BLOCKED: 2}          # failed POP3 logins
K_SMTP = {RELAY: "relay", UNKNOWN: "recipient", LOCAL_SENDER: "local-sender",
          NOT_OWNED: "auth-sender", NO_AUTH: "submission-auth", NOT_DEVICE: "devices",
          GONE_DOMAIN: "sender-domain", SPF_FAIL: "spf", DNSBL: "dnsbl",
          BLOCKED: "blocked"}                      # SMTP policy refusals
K_POP3 = {BLOCKED: "blocked"}                      # POP3 refused at connect

LINES_RE = re.compile(r"^Lines: (\d+) lines, (\d+) ignored, (\d+) matched, (\d+) missed",
                      re.M)
HIT_RE = re.compile(r"^\|\s+(\d+)\) \[(\d+)\] ", re.M)


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

    # the three messages are delivered (queue lines in the log)
    p.wait_messages(4)


def test_fail2ban_regex_counts_each_failure_and_refusal_once(make_server, dns):
    if not os.access(FAIL2BAN_REGEX, os.X_OK):
        pytest.fail("%s is missing: sh scripts/install-deps.sh installs fail2ban"
                    % FAIL2BAN_REGEX, pytrace=False)
    assert os.path.isfile(JAIL)
    p = f2b_server(make_server, dns)
    produce(p)
    # the log as it ends: nothing more is written to it
    p.stop()
    log = p.read_log()

    n, m = sum(N_SMTP.values()), sum(M_POP3.values())
    k_smtp, k_pop3 = len(K_SMTP), len(K_POP3)
    want = n + m + k_smtp + k_pop3

    # the log holds what must not match, too
    assert len(re.findall(r" event=auth result=fail ", log)) == n + m
    assert "result=ok" in log and "event=queued" in log and "event=login" in log
    assert re.search(r"postino\[store/\d+\]: queue qid=\S+ event=delivered ", log)
    assert "intrusion event=block address=[%s]" % BLOCKED in log
    assert "address=[%s] event=reject from=<x@example.net> check=sender-domain " \
           "status=451 dsn=4.4.3" % DNS_TEMPFAIL in log

    out = run_regex(p.log_path)
    lines = LINES_RE.search(out)
    assert lines, out
    total, ignored, matched, missed = map(int, lines.groups())
    assert (matched, ignored) == (want, 0), out
    assert total == matched + missed, out
    # failregex 1: failed logins; 2: SMTP refusals; 3: POP3 refusals
    hits = [int(h) for _, h in HIT_RE.findall(out.split("Ignoreregex:")[0])]
    assert hits == [n + m, k_smtp, k_pop3], out

    # each matched line, with the host fail2ban took from it
    out = run_regex(p.log_path, "-o", "<ip> <msg>")
    matches = [ln.split(" ", 1) for ln in out.splitlines() if ln.strip()]
    assert len(matches) == want, out
    smtp_auth, pop3_auth = collections.Counter(), collections.Counter()
    smtp_ref, pop3_ref = {}, {}
    for host, line in matches:
        assert re.search(r": (?:smtp |pop3 |auth )session=[0-9a-f]+ address=\[%s\] "
                         % re.escape(host), line), (host, line)
        assert " event=auth " not in line and "result=ok" not in line, line
        f = re.search(r" auth session=\S+ address=\S+ service=(smtp|pop3) ", line)
        if f:
            assert "postino[store/" in line and "result=fail" in line, line
            (smtp_auth if f.group(1) == "smtp" else pop3_auth)[host] += 1
            continue
        r = re.search(r"postino\[net/\d+\]: (smtp|pop3) .* event=reject .*check=(\S+)", line)
        assert r, line
        refs = smtp_ref if r.group(1) == "smtp" else pop3_ref
        assert host not in refs, "two refusals of %s: %s" % (host, line)
        refs[host] = r.group(2)
    assert dict(smtp_auth) == N_SMTP
    assert dict(pop3_auth) == M_POP3
    assert smtp_ref == K_SMTP
    assert pop3_ref == K_POP3
    for quiet in (CLEAN, DNS_TEMPFAIL):
        assert quiet not in {h for h, _ in matches}
