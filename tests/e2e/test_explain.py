"""
R3.13: `postino-admin explain` prints every check of the policy engine
with its result, then `final: <reply>`, and that reply is exactly what a
live session from the same address, with the same HELO, MAIL and RCPTs,
is told.  Each scenario runs explain, then the live session (the client
socket bound to --ip), and compares every stage's reply: the greeting,
MAIL, each RCPT -- and the final line with the last of them.
"""
import base64
import re

import pytest

from conftest import DEMO, DEMO_PASSWORD, SENDER, extra_ports, new_server, serve_module

HELO = "client.example.org"
REMOTE = "friend@example.org"

TRUSTED = "127.0.0.102"
GRANTED = "127.0.0.103"
DEVICE = "127.0.0.105"

# Every check, in the order the engine runs them (docs/policy.md).
CHECKS = [("connect", "blocked"), ("connect", "dnsbl"), ("connect", "devices"),
          ("mail", "submission-auth"), ("mail", "authorized"), ("mail", "sender"),
          ("mail", "sender-domain"), ("mail", "spf"), ("mail", "rate-messages"),
          ("rcpt", "max-recipients"), ("rcpt", "recipient-form"),
          ("rcpt", "local-sender"), ("rcpt", "auth-sender"), ("rcpt", "rate-recipients"),
          ("rcpt", "dnsbl"), ("rcpt", "relay"), ("rcpt", "recipient")]


@pytest.fixture(scope="module")
def srv(request):
    """One server for every scenario: the submission listener on
    srv.sub_port, a devices listener on srv.dev_port, TRUSTED trusted,
    DEVICE registered, a grant of demo's for GRANTED."""
    p = new_server(start=False)
    p.sub_port, p.dev_port = extra_ports(p, 2)
    p.extra_config = ("[listener submission]\nlisten = 127.0.0.1:%d\nprofile = submission\n"
                      "[listener devices]\nlisten = 127.0.0.1:%d\nprofile = devices\n"
                      % (p.sub_port, p.dev_port))
    p.write_config()
    p.admin("trusted", "add", TRUSTED)
    p.admin("device", "add", DEVICE)
    p.admin("popauth", "grant", DEMO, GRANTED)
    p.add_alias("sales@example.test", DEMO)
    p.add_alias("postmaster@example.test", DEMO)
    yield from serve_module(request, p, "srv")


def explain(p, ip, sender, rcpts, listener=None, auth=None, helo=HELO):
    """(stdout, [(stage, reply)...], final reply) of postino-admin explain."""
    args = ["explain", "--ip", ip, "--helo", helo, "--from", sender]
    for r in rcpts:
        args += ["--to", r]
    if listener:
        args += ["--listener", listener]
    if auth:
        args += ["--auth", auth]
    r = p.admin(*args)
    out = r.stdout
    stages = re.findall(r"^(connect|mail|rcpt) +=> (.*)$", out, re.M)
    finals = re.findall(r"^final: (.*)$", out, re.M)
    assert len(finals) == 1 and out.endswith("final: %s\n" % finals[0]), out
    return out, stages, finals[0]


def auth_plain(c, user=DEMO, password=DEMO_PASSWORD):
    token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
    c.expect("AUTH PLAIN " + token, "235 2.7.0 Authentication successful")


def live(p, ip, sender, rcpts, listener=None, auth=None, helo=HELO):
    """[(stage, reply)...] of a real session from ip on that listener."""
    port, tls = {None: (p.mx_port, False), "mx": (p.mx_port, False),
                 "submission": (p.sub_port, False), "submissions": (p.subs_port, True),
                 "devices": (p.dev_port, False)}[listener]
    out = []
    with p.connect(port=port, tls=tls, source=ip, greeting=False) as c:
        greeting = c.reply()
        out.append(("connect", greeting.text))
        if greeting.code != 220:
            c.wait_eof()
            return out
        c.ehlo(helo)
        if auth:
            if not tls:
                c.starttls()
                c.ehlo(helo)
            auth_plain(c, auth)
        r = c.cmd("MAIL FROM:<%s>" % sender)
        out.append(("mail", r.text))
        if r.code == 250:
            for rc in rcpts:
                out.append(("rcpt", c.cmd("RCPT TO:<%s>" % rc).text))
        c.expect("QUIT", "221 2.0.0 Bye")
    return out


def same_as_live(p, ip, sender, rcpts, final, listener=None, auth=None, decided=None):
    """explain and the live session agree, stage by stage, and the final
    reply is the one expected; decided=(stage, check, result) is the line
    that made the decision."""
    out, stages, got_final = explain(p, ip, sender, rcpts, listener, auth)
    real = live(p, ip, sender, rcpts, listener, auth)
    assert stages == real, "explain:\n%s\nlive session: %r" % (out, real)
    assert got_final == real[-1][1], out
    assert got_final == final, out
    if decided:
        stage, check, result = decided
        assert re.search(r"^%s +%s +%s +\S" % (stage, re.escape(check), result), out, re.M), out
    return out


SCENARIOS = [
    # (name, ip, listener, auth, sender, rcpts, final, deciding check)
    ("untrusted-local-sender", "127.0.0.101", None, None, DEMO, [REMOTE],
     "550 5.7.1 <demo@example.test> Access to <friend@example.org> not allowed",
     ("rcpt", "local-sender", "REJECT")),
    ("untrusted-local-sender-to-local", "127.0.0.101", None, None, DEMO, [DEMO],
     "550 5.7.1 <demo@example.test> Access to <demo@example.test> not allowed",
     ("rcpt", "local-sender", "REJECT")),
    ("trusted-relay", TRUSTED, None, None, SENDER, [DEMO, REMOTE],
     "250 2.1.5 Ok", ("rcpt", "relay", "ACCEPT")),
    ("trusted-local-sender-relay", TRUSTED, None, None, DEMO, [REMOTE],
     "250 2.1.5 Ok", ("rcpt", "relay", "ACCEPT")),
    ("granted-relay", GRANTED, None, None, DEMO, [REMOTE],
     "250 2.1.5 Ok", ("rcpt", "relay", "ACCEPT")),
    ("granted-relay-alias", GRANTED, None, None, "sales@example.test", [REMOTE],
     "250 2.1.5 Ok", ("rcpt", "relay", "ACCEPT")),
    ("granted-wrong-sender", GRANTED, None, None, SENDER, [REMOTE],
     "501 5.7.1 <sender@example.org>... Permission denied",
     ("rcpt", "auth-sender", "REJECT")),
    ("unknown-local-user", "127.0.0.104", None, None, SENDER, ["nobody@example.test"],
     "550 5.1.1 <nobody@example.test> User unknown", ("rcpt", "recipient", "REJECT")),
    ("local-delivery", "127.0.0.104", None, None, SENDER, ["Demo@Example.Test"],
     "250 2.1.5 Ok", ("rcpt", "recipient", "ACCEPT")),
    ("device-to-remote", DEVICE, "devices", None, "scanner@example.test", [DEMO, REMOTE],
     "550 5.7.1 <friend@example.org> Relay access denied", ("rcpt", "relay", "REJECT")),
    ("device-to-local", DEVICE, "devices", None, "scanner@example.test", [DEMO],
     "250 2.1.5 Ok", ("rcpt", "recipient", "ACCEPT")),
    ("unregistered-device", "127.0.0.106", "devices", None, SENDER, [DEMO],
     "554 5.7.1 Client host [127.0.0.106] is not a registered device",
     ("connect", "devices", "REJECT")),
    ("device-address-on-mx", DEVICE, None, None, SENDER, [REMOTE],
     "550 5.7.1 <friend@example.org> Relay access denied", ("rcpt", "relay", "REJECT")),
    ("auth-relay-submission", "127.0.0.107", "submission", DEMO, DEMO, [REMOTE, DEMO],
     "250 2.1.5 Ok", ("rcpt", "recipient", "ACCEPT")),
    ("auth-relay-submissions", "127.0.0.107", "submissions", DEMO, DEMO, [REMOTE],
     "250 2.1.5 Ok", ("rcpt", "relay", "ACCEPT")),
    ("auth-wrong-sender", "127.0.0.107", "submissions", DEMO, SENDER, [REMOTE],
     "501 5.7.1 <sender@example.org>... Permission denied",
     ("rcpt", "auth-sender", "REJECT")),
    ("auth-relay-mx-starttls", "127.0.0.107", None, DEMO, DEMO, [REMOTE],
     "250 2.1.5 Ok", ("rcpt", "relay", "ACCEPT")),
    ("submissions-without-auth", "127.0.0.107", "submissions", None, DEMO, [REMOTE],
     "530 5.7.0 Authentication required", ("mail", "submission-auth", "REJECT")),
    ("untrusted-relay", "127.0.0.108", None, None, SENDER, [DEMO, REMOTE],
     "550 5.7.1 <friend@example.org> Relay access denied", ("rcpt", "relay", "REJECT")),
    ("untrusted-null-sender-relay", "127.0.0.108", None, None, "", [REMOTE],
     "550 5.7.1 <friend@example.org> Relay access denied", ("rcpt", "relay", "REJECT")),
    ("percent-hack", "127.0.0.109", None, None, SENDER, ["demo%example.org@example.test"],
     "550 5.7.1 <demo%example.org@example.test> Relay access denied",
     ("rcpt", "relay", "REJECT")),
    ("source-route-to-remote", "127.0.0.109", None, None, SENDER,
     ["@example.test:friend@example.org"],
     "550 5.7.1 <@example.test:friend@example.org> Relay access denied",
     ("rcpt", "relay", "REJECT")),
    ("bare-postmaster", "127.0.0.109", None, None, SENDER, ["Postmaster"],
     "250 2.1.5 Ok", ("rcpt", "recipient", "ACCEPT")),
    ("address-literal", "127.0.0.109", None, None, SENDER, ["demo@[127.0.0.1]"],
     "550 5.7.1 <demo@[127.0.0.1]> Relay access denied", ("rcpt", "relay", "REJECT")),
]


@pytest.mark.parametrize("name,ip,listener,auth,sender,rcpts,final,decided", SCENARIOS,
                         ids=[s[0] for s in SCENARIOS])
def test_explain_matches_live_session(srv, name, ip, listener, auth, sender, rcpts, final,
                                      decided):
    same_as_live(srv, ip, sender, rcpts, final, listener, auth, decided)


def test_explain_lists_every_check(srv):
    """A run through to the last RCPT check names all of them, in order,
    each with a result and a reason; the checks after the deciding one
    are 'not reached'."""
    out = same_as_live(srv, "127.0.0.110", SENDER, [DEMO], "250 2.1.5 Ok")
    rows = re.findall(r"^(connect|mail|rcpt) +([a-z-]+) +(DUNNO|ACCEPT|REJECT|TEMPFAIL|-) +(.+)$",
                      out, re.M)
    assert [(s, c) for s, c, _, _ in rows] == CHECKS, out
    assert all(reason.strip() for _, _, _, reason in rows), out
    assert rows[-1][2] == "ACCEPT", out

    out = same_as_live(srv, "127.0.0.110", SENDER, [REMOTE],
                       "550 5.7.1 <friend@example.org> Relay access denied")
    rows = re.findall(r"^(rcpt) +([a-z-]+) +(\S+) +(.+)$", out, re.M)
    assert rows[-2][1:3] == ("relay", "REJECT") and rows[-1][1:] == (
        "recipient", "-", "not reached"), out


def test_explain_several_recipients(srv):
    """Each --to is one RCPT of the same transaction: the replies match
    the live ones one by one; final is the last."""
    rcpts = [DEMO, REMOTE, "nobody@example.test", "sales@example.test"]
    out = same_as_live(srv, "127.0.0.111", SENDER, rcpts, "250 2.1.5 Ok")
    assert re.findall(r"^rcpt +=> (.*)$", out, re.M) == [
        "250 2.1.5 Ok", "550 5.7.1 <friend@example.org> Relay access denied",
        "550 5.1.1 <nobody@example.test> User unknown", "250 2.1.5 Ok"], out


def test_explain_follows_admin_changes(srv):
    """explain reads the same store: a trusted add shows at once, in
    explain and live alike."""
    ip = "127.0.0.112"
    same_as_live(srv, ip, SENDER, [REMOTE], "550 5.7.1 <friend@example.org> Relay access denied")
    srv.admin("trusted", "add", ip)
    try:
        same_as_live(srv, ip, SENDER, [REMOTE], "250 2.1.5 Ok",
                     decided=("rcpt", "relay", "ACCEPT"))
    finally:
        srv.admin("trusted", "del", ip)
    same_as_live(srv, ip, SENDER, [REMOTE], "550 5.7.1 <friend@example.org> Relay access denied")


@pytest.mark.parametrize("args", [
    ["--ip", "not-an-ip", "--from", SENDER, "--to", DEMO],
    ["--ip", "127.0.0.1", "--from", SENDER, "--to", DEMO, "--listener", "pop3"],
    ["--ip", "127.0.0.1", "--from", SENDER, "--to", DEMO, "--auth", "nobody@example.test"],
])
def test_explain_refused(srv, args):
    r = srv.admin("explain", *args, check=False)
    assert r.returncode == 1, r
    assert "final:" not in r.stdout


@pytest.mark.parametrize("args", [
    ["--ip", "127.0.0.1", "--to", DEMO],
    ["--ip", "127.0.0.1", "--from", SENDER],
    ["--from", SENDER, "--to", DEMO],
    ["--ip", "127.0.0.1", "--from", SENDER, "--to"],
    ["--ip", "127.0.0.1", "--from", SENDER, "--to", DEMO, "--bogus", "x"],
])
def test_explain_usage(srv, args):
    r = srv.admin("explain", *args, check=False)
    assert r.returncode == 2, r
