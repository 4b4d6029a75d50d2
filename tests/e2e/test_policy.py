"""
Relay authorization and sender policy (SPEC 3), end to end, from
several loopback source addresses: trusted hosts (R3.5: ranges, CIDR,
host names resolved through a private dnsmasq and refreshed), untrusted
clients (R3.1, R3.6, R3.8), the devices listener (R3.9),
POP-before-SMTP grants (R3.4, with R3.2 applied to them, global mode,
expiry), both bypass lists (R3.3), relay_only_local_senders (R3.7), and
changes made with postino-admin taking effect without a restart.

Every test uses its own 127.x addresses (the per-IP limits and any later
per-IP state stay apart) and compares replies byte for byte.
"""
import os
import re
import sys
import time

import pytest

from conftest import (DATA_354, DEMO, SENDER, dot_stuff, free_port, split_received,
                      unfold)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from dnsmasq import Dnsmasq  # noqa: E402

MAIL_OK = "250 2.1.0 Ok"
RCPT_OK = "250 2.1.5 Ok"
REMOTE = "friend@example.org"
REMOTE2 = "someone@example.net"
OTHER_LOCAL = "user@example.test"


def r31(sender, rcpt):
    return "550 5.7.1 <%s> Access to <%s> not allowed" % (sender, rcpt)


def relay_denied(rcpt):
    return "550 5.7.1 <%s> Relay access denied" % rcpt


def unknown(rcpt):
    return "550 5.1.1 <%s> User unknown" % rcpt


def r32(sender):
    return "501 5.7.1 <%s>... Permission denied" % sender


def not_device(ip):
    return "554 5.7.1 Client host [%s] is not a registered device" % ip


def devices_server(make_server):
    """A started server with a [listener devices] on p.devices_port."""
    p = make_server(start=False)
    port = free_port()
    while port in (p.mx_port, p.subs_port):
        port = free_port()
    p.devices_port = port
    p.extra_config += "\n[listener devices]\nlisten = 127.0.0.1:%d\nprofile = devices\n" % port
    p.write_config()
    p.start()
    return p


def transaction(c, sender, rcpts):
    """MAIL then each RCPT on an open session: [MAIL reply, RCPT replies...]
    as text; the transaction is reset afterwards."""
    out = [c.cmd("MAIL FROM:<%s>" % sender).text]
    out += [c.cmd("RCPT TO:<%s>" % r).text for r in rcpts]
    c.expect("RSET", "250 2.0.0 Ok")
    return out


def session(p, source, sender, rcpts, port=None):
    """A whole session from source: EHLO, MAIL, the RCPTs, QUIT."""
    with p.connect(port=port, source=source) as c:
        c.ehlo()
        out = transaction(c, sender, rcpts)
        c.expect("QUIT", "221 2.0.0 Bye")
    return out


def expect_session(p, source, sender, rcpts_replies, port=None):
    rcpts = [r for r, _ in rcpts_replies]
    want = [MAIL_OK] + [w for _, w in rcpts_replies]
    got = session(p, source, sender, rcpts, port)
    assert got == want, "from %s, MAIL FROM:<%s>:\n got %r\nwant %r" % (
        source, sender, got, want)


def make_msg(tag):
    return ("From: <x@example.org>\r\nTo: <demo@example.test>\r\n"
            "Subject: %s\r\nMessage-ID: <%s@test>\r\n\r\nbody of %s\r\n" % (
                tag, tag, tag)).encode()


def send(p, source, sender, rcpts, msg, port=None):
    """A whole message from source; returns the queue id."""
    with p.connect(port=port, source=source) as c:
        c.ehlo()
        qid = c.send_message(msg, rcpts=rcpts, sender=sender)
        c.expect("QUIT", "221 2.0.0 Bye")
    return qid


def check_arrived(p, msg, qid, source, addr=DEMO, n=1):
    """addr's Maildir holds (among n messages) exactly msg after a
    Received header naming source and the queue id."""
    msgs = p.wait_messages(n, addr)
    found = [m for m in msgs if split_received(m)[1] == msg]
    assert len(found) == 1, "%s: %d copies of the message" % (addr, len(found))
    u = unfold(split_received(found[0])[0])
    assert ("[%s]" % source).encode() in u, u
    assert qid.encode() in u, u


def queue_envelopes(p):
    """{qid: envelope text} of spool/queue after local deliveries had
    time to finish (remote targets stay: no remote delivery yet)."""
    qdir = os.path.join(p.data_dir, "spool", "queue")
    time.sleep(0.3)
    out = {}
    for n in sorted(os.listdir(qdir)) if os.path.isdir(qdir) else []:
        with open(os.path.join(qdir, n), "rb") as f:
            data = f.read()
        m = re.search(rb"#POSTINO (\d+) (\d+)\n\Z", data[-51:])
        assert m, data[-80:]
        ml, el = int(m.group(1)), int(m.group(2))
        out[n] = data[ml:ml + el].decode("utf-8", "replace")
    return out


def wait_log(p, pattern, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        m = re.search(pattern, p.read_log())
        if m or time.monotonic() >= deadline:
            return m
        time.sleep(0.05)


def db_exec(p, sql, args=()):
    return p.store_sql(sql, args)[1]


# --------------------------------------------------------------------
# R3.5 trusted hosts: ranges and CIDR
# --------------------------------------------------------------------

TRUSTED_IN = ["127.0.0.16", "127.0.0.23", "127.0.0.31", "127.0.1.1", "127.0.1.254",
              "127.0.2.10", "127.0.2.20"]
TRUSTED_OUT = ["127.0.0.15", "127.0.0.32", "127.0.2.9", "127.0.2.21", "127.0.3.1"]


def test_trusted_range_cidr_relay_and_local_sender(make_server):
    p = make_server()
    p.admin("trusted", "add", "127.0.0.16-31")
    p.admin("trusted", "add", "127.0.1.0/24")
    p.admin("trusted", "add", "127.0.2.10-127.0.2.20")
    for ip in TRUSTED_IN:
        # A local sender (R3.1 does not apply) relays, and mails locally.
        expect_session(p, ip, DEMO, [(REMOTE, RCPT_OK), (DEMO, RCPT_OK),
                                     (OTHER_LOCAL, unknown(OTHER_LOCAL))])
        # Any sender relays from a trusted host.
        expect_session(p, ip, SENDER, [(REMOTE, RCPT_OK), (REMOTE2, RCPT_OK)])
    for ip in TRUSTED_OUT:
        expect_session(p, ip, DEMO, [(REMOTE, r31(DEMO, REMOTE)), (DEMO, r31(DEMO, DEMO))])
        expect_session(p, ip, SENDER, [(REMOTE, relay_denied(REMOTE)), (DEMO, RCPT_OK)])

    # A whole message: the local copy arrives, the remote one is queued
    # for relay (remote delivery is not built yet, so it stays).
    msg = make_msg("trusted-relay")
    qid = send(p, "127.0.0.17", DEMO, [DEMO, REMOTE], msg)
    check_arrived(p, msg, qid, "127.0.0.17")
    assert wait_log(p, r"address=\[127\.0\.0\.17\] event=rcpt to=<%s> relay=trusted\n"
                    % re.escape(REMOTE))
    env = queue_envelopes(p)
    assert list(env) == [qid], env
    assert "\nremote %s\n" % REMOTE in env[qid], env[qid]
    assert "\nlocal example.test demo\n" in env[qid], env[qid]


# --------------------------------------------------------------------
# An untrusted client: R3.1, R3.6, R3.8
# --------------------------------------------------------------------

def test_untrusted_client(make_server):
    ip = "127.0.0.77"
    p = make_server(accounts=(DEMO, OTHER_LOCAL))
    # A local sender is refused for every recipient, local or not (R3.1).
    expect_session(p, ip, DEMO, [(DEMO, r31(DEMO, DEMO)), (REMOTE, r31(DEMO, REMOTE)),
                                 (OTHER_LOCAL, r31(DEMO, OTHER_LOCAL))])
    # The spelling the client used is what the reply quotes.
    expect_session(p, ip, "Demo@EXAMPLE.test", [
        (DEMO, r31("Demo@EXAMPLE.test", DEMO))])
    # A remote sender: no relay, unknown users unknown, local users fine.
    expect_session(p, ip, SENDER, [(REMOTE, relay_denied(REMOTE)),
                                   (REMOTE2, relay_denied(REMOTE2)),
                                   ("nobody@example.test", unknown("nobody@example.test")),
                                   (DEMO, RCPT_OK), (OTHER_LOCAL, RCPT_OK)])
    # The null sender too.
    expect_session(p, ip, "", [(REMOTE, relay_denied(REMOTE)), (DEMO, RCPT_OK)])
    # And the message to local users arrives.
    msg = make_msg("untrusted-local")
    with p.connect(source=ip) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, MAIL_OK)
        c.expect("RCPT TO:<%s>" % REMOTE, relay_denied(REMOTE))
        c.expect("RCPT TO:<%s>" % DEMO, RCPT_OK)
        c.expect("RCPT TO:<%s>" % OTHER_LOCAL, RCPT_OK)
        c.expect("DATA", DATA_354)
        c.send(dot_stuff(msg))
        qid = c.queued_id(c.reply())
        c.expect("QUIT", "221 2.0.0 Bye")
    check_arrived(p, msg, qid, ip)
    check_arrived(p, msg, qid, ip, addr=OTHER_LOCAL)
    assert queue_envelopes(p) == {}


def test_reject_unauthorized_local_sender_off(make_server):
    p = make_server(extra_config="[relay]\nreject_unauthorized_local_sender = no\n")
    # R3.1 off: the local sender may mail local users, still not relay.
    expect_session(p, "127.0.0.78", DEMO, [(DEMO, RCPT_OK), (REMOTE, relay_denied(REMOTE))])


# --------------------------------------------------------------------
# R3.9 the devices listener
# --------------------------------------------------------------------

def test_devices_listener(make_server):
    p = devices_server(make_server)
    port = p.devices_port
    p.admin("device", "add", "127.0.0.40")
    dev = "127.0.0.40"
    # No TLS, no AUTH on it.
    with p.connect(port=port, source=dev) as c:
        c.expect("EHLO printer.example.test",
                 "250-mx.example.test\r\n250-SIZE 52428800\r\n250-PIPELINING\r\n"
                 "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250 CHUNKING")
        c.expect("STARTTLS", "502 5.5.1 Error: STARTTLS not available")
        c.expect("AUTH PLAIN AGRlbW9AZXhhbXBsZS50ZXN0AHNlY3JldC1wdy0x",
                 "503 5.5.1 Error: authentication not enabled")
        # A registered device may use a local sender (it is authorized)
        # and send to local users only.
        assert transaction(c, "scanner@example.test", [DEMO, REMOTE, "nobody@example.test"]) == [
            MAIL_OK, RCPT_OK, relay_denied(REMOTE), unknown("nobody@example.test")]
        assert transaction(c, SENDER, [REMOTE2, DEMO]) == [
            MAIL_OK, relay_denied(REMOTE2), RCPT_OK]
        msg = make_msg("from-the-printer")
        c.expect("MAIL FROM:<scanner@example.test>", MAIL_OK)
        c.expect("RCPT TO:<%s>" % REMOTE, relay_denied(REMOTE))
        c.expect("RCPT TO:<%s>" % DEMO, RCPT_OK)
        c.expect("DATA", DATA_354)
        c.send(dot_stuff(msg))
        qid = c.queued_id(c.reply())
        c.expect("QUIT", "221 2.0.0 Bye")
    check_arrived(p, msg, qid, dev)
    assert queue_envelopes(p) == {}

    # An address that is not registered is refused at connect.
    for ip in ("127.0.0.41", "127.0.0.39"):
        with p.connect(port=port, source=ip, greeting=False) as c:
            c.expect_reply(not_device(ip))
            c.wait_eof()
    # The device's address has no rights on the mx listener.
    expect_session(p, dev, "scanner@example.test", [
        (DEMO, r31("scanner@example.test", DEMO))])
    expect_session(p, dev, SENDER, [(REMOTE, relay_denied(REMOTE))])
    # device del: refused from the next connection on, no restart.
    p.admin("device", "del", dev)
    with p.connect(port=port, source=dev, greeting=False) as c:
        c.expect_reply(not_device(dev))
        c.wait_eof()
    p.admin("device", "add", "127.0.0.42-43")
    with p.connect(port=port, source="127.0.0.43") as c:
        c.ehlo()
        assert transaction(c, SENDER, [DEMO]) == [MAIL_OK, RCPT_OK]


def test_devices_listener_trusted_host_is_not_a_device(make_server):
    """The devices listener serves registered devices only: being a
    trusted host is not enough to connect, nor does a device relay."""
    p = devices_server(make_server)
    port = p.devices_port
    p.admin("trusted", "add", "127.0.0.44")
    with p.connect(port=port, source="127.0.0.44", greeting=False) as c:
        c.expect_reply(not_device("127.0.0.44"))
        c.wait_eof()
    p.admin("device", "add", "127.0.0.45")
    p.admin("trusted", "add", "127.0.0.45")
    expect_session(p, "127.0.0.45", SENDER, [(REMOTE, relay_denied(REMOTE)), (DEMO, RCPT_OK)],
                   port=port)


# --------------------------------------------------------------------
# R3.4 POP-before-SMTP grants
# --------------------------------------------------------------------

def test_popauth_grant(make_server):
    p = make_server(accounts=(DEMO, OTHER_LOCAL))
    p.add_alias("sales@example.test", DEMO)
    p.admin("popauth", "grant", DEMO, "127.0.0.50")
    ip = "127.0.0.50"
    # As demo (and demo's alias): relay, and local mail.
    expect_session(p, ip, DEMO, [(REMOTE, RCPT_OK), (DEMO, RCPT_OK), (OTHER_LOCAL, RCPT_OK)])
    expect_session(p, ip, "sales@example.test", [(REMOTE, RCPT_OK)])
    # R3.2 applies to a grant: another sender, local or remote, is refused.
    for other in (SENDER, OTHER_LOCAL):
        expect_session(p, ip, other, [(REMOTE, r32(other)), (DEMO, r32(other))])
    # Another address has no grant.
    expect_session(p, "127.0.0.51", DEMO, [(REMOTE, r31(DEMO, REMOTE))])
    expect_session(p, "127.0.0.51", SENDER, [(REMOTE, relay_denied(REMOTE))])

    msg = make_msg("pop-before-smtp")
    qid = send(p, ip, DEMO, [REMOTE, DEMO], msg)
    check_arrived(p, msg, qid, ip)
    assert wait_log(p, r"address=\[127\.0\.0\.50\] event=rcpt to=<%s> relay=pop-before-smtp\n"
                    % re.escape(REMOTE))
    env = queue_envelopes(p)
    assert list(env) == [qid] and "\nremote %s\n" % REMOTE in env[qid], env

    # The grant runs out: the next MAIL is not authorized any more.
    assert db_exec(p, "UPDATE popauth SET until = ? WHERE ip = ?",
                   (int(time.time()) - 1, ip)) == 1
    expect_session(p, ip, DEMO, [(REMOTE, r31(DEMO, REMOTE)), (DEMO, r31(DEMO, DEMO))])
    expect_session(p, ip, SENDER, [(REMOTE, relay_denied(REMOTE)), (DEMO, RCPT_OK)])
    # A new grant (another POP login) authorizes again.
    p.admin("popauth", "grant", DEMO, ip)
    expect_session(p, ip, DEMO, [(REMOTE, RCPT_OK)])


def test_popauth_expiry_within_a_session(make_server):
    """Authorization is decided at each MAIL: a grant that ran out
    between two transactions of one session no longer counts."""
    p = make_server()
    ip = "127.0.0.52"
    p.admin("popauth", "grant", DEMO, ip)
    with p.connect(source=ip) as c:
        c.ehlo()
        assert transaction(c, DEMO, [REMOTE]) == [MAIL_OK, RCPT_OK]
        db_exec(p, "UPDATE popauth SET until = ? WHERE ip = ?", (int(time.time()) - 1, ip))
        assert transaction(c, DEMO, [REMOTE]) == [MAIL_OK, r31(DEMO, REMOTE)]


def test_popauth_global(make_server):
    p = make_server(extra_config="[relay]\npop_before_smtp_global = yes\n",
                    accounts=(DEMO, OTHER_LOCAL))
    ip = "127.0.0.53"
    p.admin("popauth", "grant", DEMO, ip)
    # Any sender passes: no account to hold it to.
    for sender in (DEMO, SENDER, OTHER_LOCAL, "anyone@example.net", ""):
        expect_session(p, ip, sender, [(REMOTE, RCPT_OK), (DEMO, RCPT_OK)])
    expect_session(p, "127.0.0.54", SENDER, [(REMOTE, relay_denied(REMOTE))])


def test_popauth_off(make_server):
    p = make_server(extra_config="[relay]\npop_before_smtp_minutes = 0\n")
    r = p.admin("popauth", "grant", DEMO, "127.0.0.55", check=False)
    assert r.returncode == 1 and r.stdout + r.stderr != "", r
    # Even a row left in the store authorizes nobody when it is off.
    until = int(time.time()) + 600
    db_exec(p, "INSERT INTO popauth (ip, account, until) VALUES (?, ?, ?) ON CONFLICT (ip) "
            "DO UPDATE SET account = excluded.account, until = excluded.until",
            ("127.0.0.55", DEMO, until))
    expect_session(p, "127.0.0.55", DEMO, [(REMOTE, r31(DEMO, REMOTE))])


# --------------------------------------------------------------------
# R3.3 bypass lists
# --------------------------------------------------------------------

# (entry, client, sender, rcpt, skipped): R3.1 is skipped when an entry
# names the sender, its domain, the recipient, its domain or the client.
LOCAL_SENDER_BYPASS = [
    ("someone@example.test", "127.0.0.80", "someone@example.test", DEMO, True),
    ("someone@example.test", "127.0.0.80", "other@example.test", DEMO, False),
    ("example.test", "127.0.0.80", "someone@example.test", DEMO, True),
    ("demo@example.test", "127.0.0.80", "someone@example.test", DEMO, True),
    ("demo@example.test", "127.0.0.80", "someone@example.test", OTHER_LOCAL, False),
    ("127.0.0.80-89", "127.0.0.81", "someone@example.test", DEMO, True),
    ("127.0.0.80-89", "127.0.0.90", "someone@example.test", DEMO, False),
    ("127.0.0.80/29", "127.0.0.87", "someone@example.test", DEMO, True),
    ("127.0.0.80/29", "127.0.0.88", "someone@example.test", DEMO, False),
    ("127.0.0.82", "127.0.0.82", "someone@example.test", DEMO, True),
]


@pytest.mark.parametrize("entry,client,sender,rcpt,skipped", LOCAL_SENDER_BYPASS)
def test_local_sender_bypass(make_server, entry, client, sender, rcpt, skipped):
    p = make_server(accounts=(DEMO, OTHER_LOCAL))
    p.admin("bypass", "add", "local-sender", entry)
    want = RCPT_OK if skipped else r31(sender, rcpt)
    expect_session(p, client, sender, [(rcpt, want)])
    if skipped:
        # A bypass skips R3.1 only: it does not authorize relay.  (An
        # entry naming the recipient covers that recipient alone.)
        want = r31(sender, REMOTE) if entry == rcpt else relay_denied(REMOTE)
        expect_session(p, client, sender, [(REMOTE, want)])


def test_local_sender_bypass_message_arrives(make_server):
    p = make_server()
    p.admin("bypass", "add", "local-sender", "127.0.0.83")
    msg = make_msg("local-sender-bypass")
    qid = send(p, "127.0.0.83", "copier@example.test", [DEMO], msg)
    check_arrived(p, msg, qid, "127.0.0.83")


# The same for R3.2, on sessions authorized by a grant of demo's.
AUTH_MISMATCH_BYPASS = [
    ("example.org", "127.0.0.56", SENDER, DEMO, True),          # sender domain
    (SENDER, "127.0.0.56", SENDER, REMOTE2, True),              # sender address
    ("example.org", "127.0.0.56", "x@example.net", DEMO, False),
    ("friend@example.org", "127.0.0.56", "x@example.net", REMOTE, True),   # recipient
    ("friend@example.org", "127.0.0.56", "x@example.net", REMOTE2, False),
    ("example.net", "127.0.0.56", SENDER, REMOTE2, True),       # recipient domain
    ("127.0.0.56-57", "127.0.0.57", SENDER, REMOTE, True),      # client range
    ("127.0.0.56-57", "127.0.0.58", SENDER, REMOTE, False),
]


@pytest.mark.parametrize("entry,client,sender,rcpt,skipped", AUTH_MISMATCH_BYPASS)
def test_auth_mismatch_bypass(make_server, entry, client, sender, rcpt, skipped):
    p = make_server()
    p.admin("popauth", "grant", DEMO, client)
    p.admin("bypass", "add", "auth-mismatch", entry)
    expect_session(p, client, sender, [(rcpt, RCPT_OK if skipped else r32(sender))])


def test_bypass_lists_are_separate(make_server):
    """An entry of one list does nothing for the other check."""
    p = make_server()
    p.admin("bypass", "add", "auth-mismatch", "127.0.0.59")
    p.admin("bypass", "add", "local-sender", "example.org")
    expect_session(p, "127.0.0.59", DEMO, [(DEMO, r31(DEMO, DEMO))])
    p.admin("popauth", "grant", DEMO, "127.0.0.58")
    expect_session(p, "127.0.0.58", SENDER, [(DEMO, r32(SENDER))])


# --------------------------------------------------------------------
# R3.7 relay only for local senders
# --------------------------------------------------------------------

def test_relay_only_local_senders(make_server):
    p = make_server(extra_config="[relay]\nrelay_only_local_senders = yes\n")
    ip = "127.0.0.90"
    p.admin("trusted", "add", ip)
    # A remote sender from a trusted host: no relay, local mail fine.
    expect_session(p, ip, SENDER, [(REMOTE, relay_denied(REMOTE)), (DEMO, RCPT_OK)])
    expect_session(p, ip, "", [(REMOTE, relay_denied(REMOTE)), (DEMO, RCPT_OK)])
    # A local sender relays.
    expect_session(p, ip, DEMO, [(REMOTE, RCPT_OK), (DEMO, RCPT_OK)])
    # The same for a POP-before-SMTP grant in global mode.
    p2 = make_server(extra_config="[relay]\nrelay_only_local_senders = yes\n"
                                  "pop_before_smtp_global = yes\n")
    p2.admin("popauth", "grant", DEMO, "127.0.0.91")
    expect_session(p2, "127.0.0.91", SENDER, [(REMOTE, relay_denied(REMOTE))])
    expect_session(p2, "127.0.0.91", DEMO, [(REMOTE, RCPT_OK)])


# --------------------------------------------------------------------
# RFC 5321 4.5.1: <postmaster> without a domain
# --------------------------------------------------------------------

def test_bare_postmaster(make_server):
    """RFC 5321 4.5.1: RCPT TO:<Postmaster> must be accepted.  It is the
    postmaster of the first local domain among the host name
    (mx.example.test) and its parents: here postmaster@example.test,
    delivered locally, from any client, and never relayed."""
    p = make_server()
    # Without a postmaster there: unknown, not a relay.
    expect_session(p, "127.0.0.92", SENDER, [("postmaster", unknown("postmaster"))])
    p.add_alias("postmaster@example.test", DEMO)
    p.admin("trusted", "add", "127.0.0.93")
    expect_session(p, "127.0.0.92", SENDER, [("postmaster", RCPT_OK), ("Postmaster", RCPT_OK),
                                             ("POSTMASTER", RCPT_OK)])
    # Even for a local sender from an untrusted client R3.1 applies first.
    expect_session(p, "127.0.0.92", DEMO, [("Postmaster", r31(DEMO, "Postmaster"))])
    msgs = {}
    for ip in ("127.0.0.92", "127.0.0.93"):
        msgs[ip] = make_msg("to-postmaster-from-" + ip.replace(".", "-"))
        qid = send(p, ip, SENDER, ["Postmaster"], msgs[ip])
        check_arrived(p, msgs[ip], qid, ip, n=len(msgs))
    assert queue_envelopes(p) == {}
    assert "relay=" not in "".join(re.findall(r"event=rcpt to=<[Pp]ostmaster>[^\n]*",
                                              p.read_log()))


# --------------------------------------------------------------------
# postino-admin changes apply at once
# --------------------------------------------------------------------

def test_admin_changes_apply_without_restart(make_server):
    p = make_server()
    ip = "127.0.0.70"
    pid = p.proc.pid
    with p.connect(source=ip) as c:
        c.ehlo()
        assert transaction(c, SENDER, [REMOTE]) == [MAIL_OK, relay_denied(REMOTE)]
        p.admin("trusted", "add", "127.0.0.64/28")
        # The next MAIL of the same session sees it.
        assert transaction(c, SENDER, [REMOTE]) == [MAIL_OK, RCPT_OK]
        assert transaction(c, DEMO, [REMOTE]) == [MAIL_OK, RCPT_OK]
        p.admin("trusted", "del", "127.0.0.64/28")
        assert transaction(c, SENDER, [REMOTE]) == [MAIL_OK, relay_denied(REMOTE)]
        assert transaction(c, DEMO, [DEMO]) == [MAIL_OK, r31(DEMO, DEMO)]
        p.admin("bypass", "add", "local-sender", ip)
        assert transaction(c, DEMO, [DEMO]) == [MAIL_OK, RCPT_OK]
        p.admin("bypass", "del", "local-sender", ip)
        assert transaction(c, DEMO, [DEMO]) == [MAIL_OK, r31(DEMO, DEMO)]
        p.admin("popauth", "grant", DEMO, ip)
        assert transaction(c, DEMO, [REMOTE]) == [MAIL_OK, RCPT_OK]
        c.expect("QUIT", "221 2.0.0 Bye")
    # A new connection too, and it was all the same daemon.
    p.admin("trusted", "add", "127.0.0.71")
    expect_session(p, "127.0.0.71", SENDER, [(REMOTE, RCPT_OK)])
    assert p.proc.pid == pid and p.running() and p.starts == 1


# --------------------------------------------------------------------
# R3.5 trusted host names, through a private dnsmasq
# --------------------------------------------------------------------

@pytest.fixture
def dns():
    d = Dnsmasq(hosts={"relay.test": ["127.0.0.60"], "other.test": ["127.0.0.62"]}, ttl=2)
    d.start()
    yield d
    d.stop()


def dns_server(make_server, dns, *names):
    p = make_server(start=False, extra_config="[dns]\nservers = %s\n" % dns.server)
    for n in names:
        p.admin("trusted", "add", n)
    p.start()
    return p


def relays(p, ip):
    return session(p, ip, SENDER, [REMOTE])[1] == RCPT_OK


def wait_relays(p, ip, want, timeout):
    """Poll (one session a second) until ip relays (want=True) or not;
    the seconds it took, or None."""
    t0 = time.monotonic()
    while True:
        if relays(p, ip) == want:
            return time.monotonic() - t0
        if time.monotonic() - t0 >= timeout:
            return None
        time.sleep(1)


def test_trusted_host_name(make_server, dns):
    p = dns_server(make_server, dns, "relay.test")
    # Looked up at start; the answer comes within a moment.
    assert wait_log(p, r"policy event=trusted-host name=relay.test addresses=1 ttl=30\n")
    expect_session(p, "127.0.0.60", DEMO, [(REMOTE, RCPT_OK), (DEMO, RCPT_OK)])
    expect_session(p, "127.0.0.61", DEMO, [(REMOTE, r31(DEMO, REMOTE))])
    expect_session(p, "127.0.0.61", SENDER, [(REMOTE, relay_denied(REMOTE))])
    # Another name added while running is looked up (at the next connect
    # or MAIL, at the latest on the store's 10 s round) and then trusted,
    # without a restart.
    # Written fully qualified, the name is kept without the root dot.
    p.admin("trusted", "add", "other.test.")
    assert "other.test" in p.admin("trusted", "list").stdout.split("\n")
    assert wait_relays(p, "127.0.0.62", True, 15) is not None
    # trusted del of a name drops its addresses at once.
    p.admin("trusted", "del", "relay.test.")
    expect_session(p, "127.0.0.60", SENDER, [(REMOTE, relay_denied(REMOTE))])


def test_trusted_host_name_unknown(make_server, dns):
    """A name that does not resolve trusts nobody (and breaks nothing)."""
    p = dns_server(make_server, dns, "nowhere.test", "relay.test")
    assert wait_log(p, r"name=nowhere.test addresses=0 ttl=\d+ status=nxdomain\n")
    expect_session(p, "127.0.0.63", SENDER, [(REMOTE, relay_denied(REMOTE))])
    expect_session(p, "127.0.0.60", SENDER, [(REMOTE, RCPT_OK)])


@pytest.mark.slow
def test_trusted_host_name_follows_dns(make_server, dns):
    """The record changes; once its TTL ran out (the store clamps TTLs to
    at least 30 s and looks names up every 10 s) the old address is no
    longer trusted and the new one is.  Takes 30 to 40 s."""
    p = dns_server(make_server, dns, "relay.test")
    assert wait_log(p, r"name=relay.test addresses=1 ttl=30\n")
    assert relays(p, "127.0.0.60")
    assert not relays(p, "127.0.0.65")
    dns.set_hosts({"relay.test": ["127.0.0.65"], "other.test": ["127.0.0.62"]})
    took = wait_relays(p, "127.0.0.60", False, 45)
    assert took is not None, "127.0.0.60 still trusted 45 s after the record changed"
    assert relays(p, "127.0.0.65")
    assert len(re.findall(r"name=relay.test addresses=1 ttl=30\n", p.read_log())) >= 2


def test_relay_and_local_sender_refusals_count_toward_max_errors(make_server):
    """A client probing for an open relay, or sending as a local address
    from outside (R3.1), spends its protocol errors (R1.4): the third of
    max_errors = 3 closes the session."""
    p = make_server(smtp={"max_errors": 3})
    c = p.connect(source="127.0.0.121")
    c.ehlo()
    c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
    c.expect("RCPT TO:<a@far.example>", "550 5.7.1 <a@far.example> Relay access denied")
    c.expect("RCPT TO:<b@far.example>", "550 5.7.1 <b@far.example> Relay access denied")
    c.expect("RSET", "250 2.0.0 Ok")
    c.expect("MAIL FROM:<%s>" % DEMO, "250 2.1.0 Ok")
    c.expect("RCPT TO:<%s>" % DEMO,
             "550 5.7.1 <%s> Access to <%s> not allowed" % (DEMO, DEMO))
    c.expect_reply("421 4.7.0 %s Error: too many errors" % p.hostname)
    c.wait_eof()
