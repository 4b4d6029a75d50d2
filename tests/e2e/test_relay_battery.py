"""
R3.6: relay tricks never open a relay.

An untrusted client (127.0.0.77 is in no list) tries, in one SMTP
transaction, every form of recipient that has opened relays in the past:
the percent hack, bang paths, source routes, quoted local parts holding
@ % !, user@remote@local, address literals, trailing dots, case, domains
that only look like ours, control and 8-bit octets, spaces, junk after
the path, two paths in one RCPT, unbalanced brackets, over-long parts and
the odd spellings of the command itself.  Each line gets the exact reply
of the table: relay denied, user unknown, or a syntax 500/501/553/555
-- or, for the few forms that really name a local mailbox (a source
route ending in a local address, RFC 5321 4.1.1.3 and C; a quoted or
upper-case spelling of a local address), 250 and a local delivery.

Then, in the same session, mail to a local user still arrives, and the
spool holds no envelope naming any of the remote destinations: nothing
was queued for relay.
"""
import os
import re
import time

from conftest import DATA_354, DEMO, SENDER, dot_stuff, split_received, unfold

CLIENT = "127.0.0.77"
USER = "user@example.test"          # a second local account

RELAY = "550 5.7.1 <%s> Relay access denied"
UNKNOWN = "550 5.1.1 <%s> User unknown"
OK = "250 2.1.5 Ok"
BAD_RCPT = "553 5.1.3 Bad recipient address syntax"
SYNTAX = "501 5.5.4 Syntax: RCPT TO:<address>"
PARAM_SYNTAX = "501 5.5.4 Invalid parameter syntax"
PARAM_UNKNOWN = "555 5.5.4 Unsupported parameter"
UNRECOGNIZED = "500 5.5.2 Error: command not recognized"
BARE_LF = "500 5.5.2 Bare <LF> received"

LONG_LOCAL = "u" * 64                       # the longest local part
TOO_LONG_LOCAL = "u" * 65
LONG_LABEL = "d" * 64                       # one label over 63 octets
# A path of 257 octets with its brackets, one over RFC 5321's 256.
LONG_DOMAIN = ".".join(["d" * 60] * 4) + ".org"         # 247 octets
LONG_PATH = "us@" + LONG_DOMAIN + "x" * 5                # 255 + 2 = 257
LONG_ROUTE = "@" + ".".join(["r" * 60] * 4) + ":user@example.test"


def rcpt(path):
    return b"RCPT TO:<" + path + b">"


def relay(path):
    return RELAY % path.decode("utf-8")


# (bytes sent before the final CRLF, [every reply it gets, in order]).
# The remote part of every trick is a name under remote.org, other.org,
# a look-alike of example.test, or an address literal; after the battery
# none of them may appear in the spool.
BATTERY = [
    # -- the percent hack
    (rcpt(b"user%remote.org@example.test"), [relay(b"user%remote.org@example.test")]),
    (rcpt(b"user%remote.org@EXAMPLE.TEST"), [relay(b"user%remote.org@EXAMPLE.TEST")]),
    (rcpt(b"USER%REMOTE.ORG@example.test"), [relay(b"USER%REMOTE.ORG@example.test")]),
    (rcpt(b"user%remote.org%example.test@example.test"),
     [relay(b"user%remote.org%example.test@example.test")]),
    (rcpt(b"user%remote.org@example.test."), [relay(b"user%remote.org@example.test.")]),
    (rcpt(b"user%remote.org@[127.0.0.1]"), [relay(b"user%remote.org@[127.0.0.1]")]),
    (rcpt(b"user@remote.org%example.test"), [BAD_RCPT]),
    (rcpt(b"user@remote.org%example.test@example.test"), [BAD_RCPT]),
    (rcpt(b"user%remote.org"), [BAD_RCPT]),
    # -- bang paths
    (rcpt(b"remote.org!user@example.test"), [relay(b"remote.org!user@example.test")]),
    (rcpt(b"remote.org!user%example.test@example.test"),
     [relay(b"remote.org!user%example.test@example.test")]),
    (rcpt(b"remote!user"), [BAD_RCPT]),
    (rcpt(b"remote.org!user"), [BAD_RCPT]),
    # -- source routes: dropped, the mailbox at the end decides
    (rcpt(b"@example.test:user@remote.org"), [relay(b"@example.test:user@remote.org")]),
    (rcpt(b"@example.test,@example.test:user@remote.org"),
     [relay(b"@example.test,@example.test:user@remote.org")]),
    (rcpt(b"@example.test:user%remote.org@example.test"),
     [relay(b"@example.test:user%remote.org@example.test")]),
    (rcpt(b"@remote.org:user@example.test"), [OK]),            # local: user@example.test
    (rcpt(b"@remote.org,@other.org:user@example.test"), [OK]),  # local as well
    (rcpt(b"@remote.org:nobody@example.test"), [UNKNOWN % "@remote.org:nobody@example.test"]),
    (rcpt(b"@:user@remote.org"), [BAD_RCPT]),
    (rcpt(b"@remote.org;user@example.test"), [BAD_RCPT]),
    (rcpt(LONG_ROUTE.encode()), [BAD_RCPT]),
    # -- quoted local parts holding @ % !, backslash escapes
    (rcpt(b'"user@remote.org"@example.test'), [relay(b'"user@remote.org"@example.test')]),
    (rcpt(b'"user%remote.org"@example.test'), [relay(b'"user%remote.org"@example.test')]),
    (rcpt(b'"remote.org!user"@example.test'), [relay(b'"remote.org!user"@example.test')]),
    (rcpt(b'"user\\@remote.org"@example.test'), [relay(b'"user\\@remote.org"@example.test')]),
    (rcpt(b'"user@remote.org"'), [BAD_RCPT]),
    (rcpt(b'user\\@remote.org@example.test'), [BAD_RCPT]),
    (rcpt(b'"user"@example.test'), [OK]),                      # local: user@example.test
    # -- more than one @
    (rcpt(b"user@remote.org@example.test"), [BAD_RCPT]),
    (rcpt(b"user@example.test@remote.org"), [BAD_RCPT]),
    (rcpt(b"user@[127.0.0.1]@example.test"), [BAD_RCPT]),
    # -- address literals: never local
    (rcpt(b"user@[127.0.0.1]"), [relay(b"user@[127.0.0.1]")]),
    (rcpt(b"user@[IPv6:::1]"), [relay(b"user@[IPv6:::1]")]),
    (rcpt(b"user@[IPv6:0:0:0:0:0:0:0:1]"), [relay(b"user@[IPv6:0:0:0:0:0:0:0:1]")]),
    (rcpt(b"user@[192.0.2.1]"), [relay(b"user@[192.0.2.1]")]),
    (rcpt(b"postmaster@[127.0.0.1]"), [relay(b"postmaster@[127.0.0.1]")]),
    (rcpt(b"user@[remote.org]"), [BAD_RCPT]),
    (rcpt(b"user@[::1]"), [BAD_RCPT]),
    (rcpt(b"user@127.0.0.1"), [relay(b"user@127.0.0.1")]),
    # -- trailing dots and case
    (rcpt(b"user@remote.org."), [relay(b"user@remote.org.")]),
    (rcpt(b"user@REMOTE.ORG"), [relay(b"user@REMOTE.ORG")]),
    (rcpt(b"user@example.test.."), [BAD_RCPT]),
    (rcpt(b"user@.example.test"), [BAD_RCPT]),
    (rcpt(b"user@example.test."), [OK]),                       # local
    (rcpt(b"USER@EXAMPLE.TEST"), [OK]),                        # local
    # -- domains that end, begin or look like ours
    (rcpt(b"user@evilexample.test"), [relay(b"user@evilexample.test")]),
    (rcpt(b"user@example.test.remote.org"), [relay(b"user@example.test.remote.org")]),
    (rcpt(b"user@sub.example.test"), [relay(b"user@sub.example.test")]),
    (rcpt(b"user@example.testremote.org"), [relay(b"user@example.testremote.org")]),
    (rcpt(b"user@example-test.org"), [relay(b"user@example-test.org")]),
    (rcpt(b"user@mx.example.test"), [relay(b"user@mx.example.test")]),
    (rcpt(b"user@localhost"), [relay(b"user@localhost")]),
    (rcpt(b"user@remote.org:25"), [BAD_RCPT]),
    (rcpt(b"user@-remote.org"), [BAD_RCPT]),
    # -- NUL, CR, LF, TAB inside the address
    (rcpt(b"user\x00@remote.org"), [UNRECOGNIZED]),
    (rcpt(b"user@example.test\x00@remote.org"), [UNRECOGNIZED]),
    (rcpt(b"user@remote.org\r"), [BAD_RCPT]),
    (b"RCPT TO:<user@remote.org>\rRCPT TO:<user@example.test>", [SYNTAX]),
    (b"RCPT TO:<user@remote.org\n>", [BARE_LF, UNRECOGNIZED]),
    (b"RCPT TO:<user@remote.org>\n", [BARE_LF, UNRECOGNIZED]),
    (rcpt(b"user\t@remote.org"), [BAD_RCPT]),
    (rcpt(b"user@remote.org\t"), [BAD_RCPT]),
    # -- spaces and junk
    (rcpt(b"user @remote.org"), [BAD_RCPT]),
    (rcpt(b"user@ remote.org"), [BAD_RCPT]),
    (rcpt(b" user@remote.org"), [BAD_RCPT]),
    (b"RCPT TO:<user@remote.org>junk", [SYNTAX]),
    (b"RCPT TO:<user@remote.org> junk", [PARAM_UNKNOWN]),
    (b"RCPT TO:<user@remote.org> FOO=BAR", [PARAM_UNKNOWN]),
    (b"RCPT TO:<user@remote.org> ", [relay(b"user@remote.org")]),
    # -- two addresses in one RCPT
    (b"RCPT TO:<user@remote.org>,<user@example.test>", [SYNTAX]),
    (b"RCPT TO:<user@example.test>,<user@remote.org>", [SYNTAX]),
    (b"RCPT TO:<user@remote.org> <user@example.test>", [PARAM_SYNTAX]),
    (rcpt(b"user@example.test,user@remote.org"), [BAD_RCPT]),
    (rcpt(b"user@example.test, user@remote.org"), [BAD_RCPT]),
    # -- unbalanced brackets, no brackets, empty
    (b"RCPT TO:<user@remote.org", [BAD_RCPT]),
    (b"RCPT TO:user@remote.org>", [SYNTAX]),
    (b"RCPT TO:user@remote.org", [SYNTAX]),
    (b"RCPT TO:<<user@remote.org>>", [BAD_RCPT]),
    (b"RCPT TO:<user@remote.org>>", [SYNTAX]),
    (rcpt(b""), [BAD_RCPT]),
    (rcpt(b" "), [BAD_RCPT]),
    # -- postmaster elsewhere is elsewhere; <postmaster> alone is ours
    # (postmaster@example.test, which does not exist here: RFC 5321 4.5.1)
    (rcpt(b"postmaster"), [UNKNOWN % "postmaster"]),
    (rcpt(b"Postmaster"), [UNKNOWN % "Postmaster"]),
    (rcpt(b"postmaster@remote.org"), [relay(b"postmaster@remote.org")]),
    (rcpt(b"Postmaster@REMOTE.ORG"), [relay(b"Postmaster@REMOTE.ORG")]),
    # -- 8-bit octets without SMTPUTF8 (the MAIL had none)
    (rcpt("usér@remote.org".encode()), [BAD_RCPT]),
    (rcpt("user@rémote.org".encode()), [BAD_RCPT]),
    (rcpt("usér%remote.org@example.test".encode()), [BAD_RCPT]),
    (rcpt(b"us\xe9r@remote.org"), [BAD_RCPT]),                 # not even UTF-8
    # -- lengths
    (rcpt(LONG_LOCAL.encode() + b"@remote.org"), [relay(LONG_LOCAL.encode() + b"@remote.org")]),
    (rcpt(TOO_LONG_LOCAL.encode() + b"@remote.org"), [BAD_RCPT]),
    (rcpt(TOO_LONG_LOCAL.encode() + b"@example.test"), [BAD_RCPT]),
    (rcpt(b"user@" + LONG_LABEL.encode() + b".org"), [BAD_RCPT]),
    (rcpt(LONG_PATH.encode()), [BAD_RCPT]),
    # -- spellings of the command
    (b"RCPT TO: <user@remote.org>", [relay(b"user@remote.org")]),
    (b"rcpt to:<user@remote.org>", [relay(b"user@remote.org")]),
    (b"Rcpt To:<user%remote.org@example.test>", [relay(b"user%remote.org@example.test")]),
    (b"RCPT TO:<user@remote.org> NOTIFY=NEVER", [relay(b"user@remote.org")]),
    (b"RCPT TO:<user@remote.org> ORCPT=rfc822;user@example.test", [relay(b"user@remote.org")]),
    (b"RCPT TO <user@remote.org>", [SYNTAX]),
    (b"RCPT <user@remote.org>", [SYNTAX]),
    (b"RCPT FROM:<user@remote.org>", [SYNTAX]),
]

# Under SMTPUTF8 the 8-bit forms parse, and are just as remote.
BATTERY_UTF8 = [
    (rcpt("usér@remote.org".encode()), [relay("usér@remote.org".encode())]),
    (rcpt("user@rémote.org".encode()), [relay("user@rémote.org".encode())]),
    (rcpt("usér%remote.org@example.test".encode()),
     [relay("usér%remote.org@example.test".encode())]),
    (rcpt('"usér@remote.org"@example.test'.encode()),
     [relay('"usér@remote.org"@example.test'.encode())]),
    (rcpt("user@exämple.test".encode()), [relay("user@exämple.test".encode())]),
]

# The null sender: bounces may not be relayed either.
BATTERY_NULL = [
    (rcpt(b"user%remote.org@example.test"), [relay(b"user%remote.org@example.test")]),
    (rcpt(b"@example.test:user@remote.org"), [relay(b"@example.test:user@remote.org")]),
    (rcpt(b"user@[127.0.0.1]"), [relay(b"user@[127.0.0.1]")]),
    (rcpt(b"user@remote.org"), [relay(b"user@remote.org")]),
]

# What must never reach the spool (as it would for a relayed recipient).
REMOTE_MARKS = [b"remote.org", b"other.org", b"evilexample", b"sub.example.test",
                b"example.testremote", b"example-test.org", b"mx.example.test>",
                b"localhost", b"[127.0.0.1]", b"[ipv6:", b"[192.0.2.1]", b"127.0.0.1\n",
                "rémote".encode(), "exämple".encode(), b"remote "]


def run_battery(c, table):
    """Send every line; the list of mismatches (line, got, expected)."""
    bad = []
    for line, want in table:
        c.send(line + b"\r\n")
        got = [c.reply().raw for _ in want]
        exp = [w.encode("utf-8") + b"\r\n" for w in want]
        if got != exp:
            bad.append((line, got, exp))
    # Nothing more came (a line that got more replies than listed).
    extra = c.pending(0.3)
    if extra:
        bad.append((b"(after the battery)", [extra], []))
    return bad


def spool_files(p):
    out = {}
    top = os.path.join(p.data_dir, "spool")
    for d, _, names in os.walk(top):
        for n in names:
            path = os.path.join(d, n)
            try:
                with open(path, "rb") as f:
                    out[os.path.relpath(path, top)] = f.read()
            except OSError:
                pass
    return out


def envelope(data):
    """The envelope of a committed queue file (docs/queue.md)."""
    m = re.search(rb"#POSTINO (\d+) (\d+)\n\Z", data[-51:])
    assert m and len(data[-51:]) == 51, data[-80:]
    msglen, envlen = int(m.group(1)), int(m.group(2))
    return data[msglen:msglen + envlen]


def test_relay_battery(make_server):
    assert len(BATTERY) + len(BATTERY_UTF8) + len(BATTERY_NULL) >= 40
    # Many lines are syntax errors on purpose: let the session live.
    p = make_server(smtp={"max_errors": "1000"}, accounts=(DEMO, USER))
    msg = (b"From: <sender@example.org>\r\nTo: <demo@example.test>\r\n"
           b"Subject: after the relay battery\r\n\r\nstill delivered\r\n")
    with p.connect(source=CLIENT) as c:
        c.expect("EHLO client.example.org", "250-mx.example.test\r\n250-SIZE 52428800\r\n"
                 "250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n"
                 "250-STARTTLS\r\n250-SMTPUTF8\r\n250 CHUNKING")
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        bad = run_battery(c, BATTERY)
        # The transaction survived every refusal: a local recipient is
        # still taken and the message arrives.
        c.expect("RCPT TO:<%s>" % DEMO, OK)
        c.expect("DATA", DATA_354)
        c.send(dot_stuff(msg))
        qid = c.queued_id(c.reply())

        c.expect("MAIL FROM:<%s> SMTPUTF8" % SENDER, "250 2.1.0 Ok")
        bad += run_battery(c, BATTERY_UTF8)
        c.expect("RSET", "250 2.0.0 Ok")
        c.expect("MAIL FROM:<>", "250 2.1.0 Ok")
        bad += run_battery(c, BATTERY_NULL)
        c.expect("RSET", "250 2.0.0 Ok")
        c.expect("QUIT", "221 2.0.0 Bye")
    assert not bad, "%d of the battery got another reply:\n%s" % (len(bad), "\n".join(
        "  %r\n     got      %r\n     expected %r" % b for b in bad))

    # demo got exactly the message, from 127.0.0.77.
    (data,) = p.wait_messages(1)
    received, rest = split_received(data)
    assert rest == msg
    u = unfold(received)
    assert b"[%s]" % CLIENT.encode() in u and qid.encode() in u, received
    # The local forms (source route ending here, quoted, upper case,
    # trailing dot) all name user@example.test: that is local delivery,
    # not relay -- and one mailbox, so one copy.
    p.wait_messages(1, addr=USER)
    (udata,) = p.assert_no_more(1, addr=USER)
    assert split_received(udata)[1] == msg
    p.assert_no_more(1, addr=DEMO, settle=0)

    # The queue empties (only local targets): nothing stays for relay.
    qdir = os.path.join(p.data_dir, "spool", "queue")
    deadline = time.monotonic() + 10
    while os.path.isdir(qdir) and os.listdir(qdir) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = spool_files(p)
    assert not [n for n in left if n.startswith("queue" + os.sep)], \
        "still queued: %s" % {n: envelope(d) for n, d in left.items()
                              if n.startswith("queue" + os.sep)}
    for name, data in left.items():
        low = data.lower()
        for mark in REMOTE_MARKS:
            assert mark.lower() not in low, "%s mentions %r" % (name, mark)
    log = p.read_log()
    assert "event=deferred" not in log, log
    rcpt_events = re.findall(r"event=rcpt to=<[^\n]*", log)
    assert not [e for e in rcpt_events if "relay=" in e], rcpt_events
    assert len(rcpt_events) == 6, rcpt_events     # the 5 local forms above + demo
