"""Every reply of docs/replies.md that a test can provoke, byte for byte
(R1.2-R1.8, R3.6, R3.8, R3.10-R3.12)."""
import os
import signal
import socket
import ssl
import time
import uuid

import pytest

from conftest import (DATA_354, DEMO, EHLO_PLAIN, EHLO_TLS, GREETING, HOSTNAME, QUEUED, SENDER,
                      SMTPConn, dot_stuff, free_port, split_received, unverified_context)


def msg(tag="m", body=b"hello\r\n"):
    return (b"Subject: " + tag.encode() + b"\r\nMessage-Id: <" + uuid.uuid4().hex.encode()
            + b"@example.org>\r\n\r\n" + body)


def begin(c, rcpt=DEMO):
    c.ehlo()
    c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
    c.expect("RCPT TO:<%s>" % rcpt, "250 2.1.5 Ok")
    c.expect("DATA", DATA_354)


def assert_session_usable(c):
    c.expect("RSET", "250 2.0.0 Ok")
    c.expect("NOOP", "250 2.0.0 Ok")


# --------------------------------------------------------------------
# Greeting, HELO/EHLO, simple commands
# --------------------------------------------------------------------

def test_greeting_and_quit(shared_server):
    with shared_server.connect() as c:          # checks the 220 exactly
        c.expect("QUIT", "221 2.0.0 Bye")
        c.wait_eof()


def test_ehlo_exact(shared_server):
    with shared_server.connect() as c:
        r = c.cmd("EHLO client.example.org")
        assert r.lines == EHLO_PLAIN


def test_ehlo_after_starttls_and_on_submissions(shared_server):
    with shared_server.connect() as c:
        c.ehlo()
        c.starttls()
        r = c.cmd("EHLO client.example.org")
        assert r.lines == EHLO_TLS
    with shared_server.connect(port=shared_server.subs_port, tls=True) as c:
        r = c.cmd("EHLO client.example.org")
        assert r.lines == EHLO_TLS


def test_helo(shared_server):
    with shared_server.connect() as c:
        c.expect("HELO client.example.org", "250 %s" % HOSTNAME)
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")


def test_helo_ehlo_without_argument(shared_server):
    with shared_server.connect() as c:
        c.expect("HELO", "501 5.5.4 Syntax: HELO hostname")
        c.expect("EHLO", "501 5.5.4 Syntax: EHLO hostname")


def test_mail_before_helo(shared_server):
    """R1.3"""
    with shared_server.connect() as c:
        c.expect("MAIL FROM:<%s>" % SENDER, "503 5.5.1 Send HELO/EHLO first")
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")


def test_sequence_errors(shared_server):
    with shared_server.connect() as c:
        c.ehlo()
        c.expect("RCPT TO:<%s>" % DEMO, "503 5.5.1 Error: need MAIL command")
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        c.expect("MAIL FROM:<%s>" % SENDER, "503 5.5.1 Error: nested MAIL command")
        c.expect("DATA", "503 5.5.1 Error: need RCPT command")
        # A refused BDAT still carries its chunk (RFC 3030): the reply
        # comes after the octets.
        c.send(b"BDAT 10 LAST\r\n0123456789")
        c.expect_reply("503 5.5.1 Error: need RCPT command")
        c.expect("RSET", "250 2.0.0 Ok")
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")


def test_rset_noop_vrfy_help_unknown(shared_server):
    with shared_server.connect() as c:
        c.expect("NOOP", "250 2.0.0 Ok")
        c.expect("RSET", "250 2.0.0 Ok")
        c.ehlo()
        vrfy = "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery"
        c.expect("VRFY demo", vrfy)
        c.expect("VRFY <demo@example.test>", vrfy)
        c.expect("VRFY nobody@example.test", vrfy)
        c.expect("HELP", "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT "
                         "HELP VRFY STARTTLS")
        c.expect("FOOBAR", "500 5.5.2 Error: command not recognized")
        c.expect("XYZZY something", "500 5.5.2 Error: command not recognized")
        c.expect("noop", "250 2.0.0 Ok")
        c.expect("QUIT", "221 2.0.0 Bye")
        c.wait_eof()


# --------------------------------------------------------------------
# R1.4 bounded input
# --------------------------------------------------------------------

def test_command_line_too_long(shared_server):
    with shared_server.connect() as c:
        c.ehlo()
        # 512 octets with the CRLF is the limit (RFC 5321 4.5.3.1.4).
        c.expect("NOOP " + "x" * 505, "250 2.0.0 Ok")
        c.expect("NOOP " + "x" * 506, "500 5.5.2 Line too long")
        c.expect("NOOP " + "x" * 600, "500 5.5.2 Line too long")
        c.expect("NOOP", "250 2.0.0 Ok")
        # Much longer than any buffer: one reply, then the session goes on.
        c.expect("NOOP " + "y" * 20000, "500 5.5.2 Line too long")
        c.expect("NOOP", "250 2.0.0 Ok")
        assert c.pending(0.2) == b""


def test_command_bare_lf(shared_server):
    with shared_server.connect() as c:
        c.send(b"NOOP\n")
        c.expect_reply("500 5.5.2 Bare <LF> received")
        c.expect("NOOP", "250 2.0.0 Ok")


def test_data_line_too_long(server):
    with server.connect() as c:
        begin(c)
        c.send(b"Subject: long\r\n\r\n" + b"a" * 1200 + b"\r\nshort\r\n.\r\n")
        c.expect_reply("500 5.5.2 Line too long")
        assert_session_usable(c)
        # 1001 octets with the CRLF: one too many (RFC 5321 4.5.3.1.6).
        begin(c)
        c.send(b"Subject: long\r\n\r\n" + b"a" * 999 + b"\r\n.\r\n")
        c.expect_reply("500 5.5.2 Line too long")
        assert_session_usable(c)
        # 998 octets + CRLF is the longest legal line.
        m = msg("ok998", b"b" * 998 + b"\r\n")
        begin(c)
        c.send(dot_stuff(m))
        r = c.reply()
        assert r.raw.startswith(QUEUED), r
    (data,) = server.wait_messages(1)
    assert split_received(data)[1] == m
    server.assert_no_more(1)


def test_max_errors(make_server):
    """R1.4: max_errors = 3: the third error closes with 421."""
    p = make_server(smtp={"max_errors": 3})
    with p.connect() as c:
        c.expect("FOO", "500 5.5.2 Error: command not recognized")
        c.ehlo()
        c.expect("RCPT TO:<%s>" % DEMO, "503 5.5.1 Error: need MAIL command")
        c.send(b"BAR\r\n")
        r = c.reply()
        if r.raw == b"500 5.5.2 Error: command not recognized\r\n":
            r = c.reply()
        assert r.raw == ("421 4.7.0 %s Error: too many errors\r\n" % HOSTNAME).encode(), r
        c.wait_eof()


def test_max_errors_default_is_10(shared_server):
    with shared_server.connect() as c:
        for i in range(9):
            c.expect("FOO%d" % i, "500 5.5.2 Error: command not recognized")
        c.expect("NOOP", "250 2.0.0 Ok")
        c.send(b"FOO9\r\n")
        r = c.reply()
        if r.raw == b"500 5.5.2 Error: command not recognized\r\n":
            r = c.reply()
        assert r.raw == ("421 4.7.0 %s Error: too many errors\r\n" % HOSTNAME).encode(), r
        c.wait_eof()


# --------------------------------------------------------------------
# R1.5 SMTP smuggling
# --------------------------------------------------------------------

def test_bare_lf_in_data_rejected_no_smuggling(server):
    with server.connect() as c:
        begin(c)
        c.send(b"Subject: x\r\n\r\nhello\n.\nMAIL FROM:<evil@x>\r\n.\r\n")
        c.expect_reply("554 5.6.0 Bare <LF> received")
        # Nothing else: no reply to a smuggled MAIL or a second message.
        assert c.pending(0.5) == b""
        c.expect("RCPT TO:<%s>" % DEMO, "503 5.5.1 Error: need MAIL command")
        c.expect("NOOP", "250 2.0.0 Ok")
    server.assert_no_more(0)


@pytest.mark.parametrize("fake_end", [b"\n.\n", b"\r.\r\n", b"\n.\r\n", b"\r\n.\n", b"\r\n.\r"],
                         ids=["LF.LF", "CR.CRLF", "LF.CRLF", "CRLF.LF", "CRLF.CR"])
def test_fake_end_of_data_never_ends_data(server, fake_end):
    with server.connect() as c:
        begin(c)
        c.send(b"Subject: smuggle\r\n\r\nhello" + fake_end
               + b"MAIL FROM:<evil@x>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n"
                 b"Subject: smuggled\r\n\r\nevil\r\n.\r\n")
        r = c.reply()
        assert r.code == 554 and r.raw in (b"554 5.6.0 Bare <LF> received\r\n",
                                           b"554 5.6.0 Bare <CR> received\r\n"), r
        assert c.pending(0.5) == b"", "replies to smuggled commands"
        c.expect("NOOP", "250 2.0.0 Ok")
    server.assert_no_more(0)


def test_bare_cr_in_data(server):
    with server.connect() as c:
        begin(c)
        c.send(b"Subject: cr\r\n\r\nhello\rworld\r\n.\r\n")
        c.expect_reply("554 5.6.0 Bare <CR> received")
        assert c.pending(0.3) == b""
    server.assert_no_more(0)


def test_bare_lf_normalize(make_server):
    p = make_server(smtp={"bare_lf": "normalize"})
    with p.connect() as c:
        begin(c)
        c.send(b"Subject: norm\r\n\r\nline1\nline2\r\nline3\r\n.\r\n")
        r = c.reply()
        assert r.raw.startswith(QUEUED), r
        # The smuggling attempt is one message, never two.
        begin(c)
        c.send(b"Subject: smuggle\r\n\r\nhello\n.\nMAIL FROM:<evil@x>\r\n.\r\n")
        r = c.reply()
        assert r.raw.startswith(QUEUED), r
        assert c.pending(0.5) == b""
        c.expect("NOOP", "250 2.0.0 Ok")
    msgs = p.wait_messages(2)
    p.assert_no_more(2)
    bodies = sorted(split_received(d)[1] for d in msgs)
    assert bodies[0] == b"Subject: norm\r\n\r\nline1\r\nline2\r\nline3\r\n"
    assert bodies[1].startswith(b"Subject: smuggle\r\n\r\nhello\r\n")
    assert b"MAIL FROM:<evil@x>\r\n" in bodies[1]
    for b in bodies:
        assert b"\n" not in b.replace(b"\r\n", b"")


# --------------------------------------------------------------------
# R1.6 timeouts
# --------------------------------------------------------------------

def test_timeouts(make_server):
    p = make_server(smtp={"timeout_command": 2, "timeout_data": 2})
    text = "421 4.4.2 %s Error: timeout exceeded" % HOSTNAME
    with p.connect() as c:
        t0 = time.monotonic()
        c.expect_reply(text, timeout=8)
        assert time.monotonic() - t0 >= 1.5
        c.wait_eof()
    with p.connect() as c:
        c.ehlo()
        c.expect("NOOP", "250 2.0.0 Ok")
        c.expect_reply(text, timeout=8)
        c.wait_eof()
    with p.connect() as c:
        begin(c)
        c.send(b"Subject: slow\r\n\r\npart")
        c.expect_reply(text, timeout=8)
        c.wait_eof()
    p.assert_no_more(0)


# --------------------------------------------------------------------
# R1.8 connection limits
# --------------------------------------------------------------------

def _open_greeted(p, n):
    conns = []
    for _ in range(n):
        conns.append(p.connect())
    return conns


def _expect_too_many(p):
    s = socket.create_connection(("127.0.0.1", p.mx_port), timeout=10)
    c = SMTPConn(s)
    c.expect_reply("421 4.7.0 Too many connections, try again later")
    c.wait_eof()


@pytest.mark.parametrize("key", ["max_connections", "max_connections_per_ip"])
def test_connection_limits(make_server, key):
    p = make_server(smtp={key: 2})
    time.sleep(0.2)      # let the readiness probe's connection go
    conns = _open_greeted(p, 2)
    try:
        _expect_too_many(p)
        for c in conns:
            c.expect("NOOP", "250 2.0.0 Ok")
        # Once one leaves, a new client gets in (bounded retry: the
        # server notices the close asynchronously).
        conns[0].expect("QUIT", "221 2.0.0 Bye")
        conns[0].wait_eof()
        conns[0].close()
        deadline = time.monotonic() + 5
        while True:
            with socket.create_connection(("127.0.0.1", p.mx_port), timeout=10) as s:
                r = SMTPConn(s).reply()
            if r.code == 220 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert r.raw == ("%s\r\n" % GREETING).encode(), r
    finally:
        for c in conns:
            c.close()


# --------------------------------------------------------------------
# R3.6, R3.8 recipients
# --------------------------------------------------------------------

def test_relay_denied_and_unknown_user(shared_server):
    with shared_server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        c.expect("RCPT TO:<user@example.org>", "550 5.7.1 <user@example.org> Relay access denied")
        c.expect("RCPT TO:<user@sub.example.test>",
                 "550 5.7.1 <user@sub.example.test> Relay access denied")
        c.expect("RCPT TO:<nobody@example.test>", "550 5.1.1 <nobody@example.test> User unknown")
        c.expect("DATA", "503 5.5.1 Error: need RCPT command")
        c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")


# --------------------------------------------------------------------
# R3.11 size
# --------------------------------------------------------------------

def test_message_size(make_server):
    p = make_server(smtp={"max_message_size": "10K"})
    with p.connect() as c:
        r = c.cmd("EHLO client.example.org")
        assert "250-SIZE 10240" in r.lines, r
        c.expect("MAIL FROM:<%s> SIZE=20000" % SENDER,
                 "552 5.3.4 Message size exceeds fixed limit")
        c.expect("MAIL FROM:<%s> SIZE=5000" % SENDER, "250 2.1.0 Ok")
        c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")
        c.expect("DATA", DATA_354)
        big = msg("big", (b"x" * 76 + b"\r\n") * 160)         # 12.5 KB
        c.send(dot_stuff(big))
        c.expect_reply("552 5.3.4 Message size exceeds fixed limit")
        assert_session_usable(c)
        small = msg("small", (b"y" * 76 + b"\r\n") * 100)      # 7.8 KB
        begin(c)
        c.send(dot_stuff(small))
        r = c.reply()
        assert r.raw.startswith(QUEUED), r
    (data,) = p.wait_messages(1)
    assert split_received(data)[1] == small
    p.assert_no_more(1)


# --------------------------------------------------------------------
# R3.12 hops
# --------------------------------------------------------------------

def _hops(n):
    return b"".join(b"Received: from hop%d.example.org (hop%d.example.org [192.0.2.%d])\r\n"
                    b"\tby relay.example.org with ESMTP; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                    % (i, i, i + 1) for i in range(n))


def test_max_hops(server):
    with server.connect() as c:
        begin(c)
        c.send(dot_stuff(_hops(21) + msg("hops21")))
        c.expect_reply("554 5.4.6 Too many hops")
        assert_session_usable(c)
        ok = _hops(20) + msg("hops20")
        begin(c)
        c.send(dot_stuff(ok))
        r = c.reply()
        assert r.raw.startswith(QUEUED), r
    (data,) = server.wait_messages(1)
    assert split_received(data)[1] == ok
    server.assert_no_more(1)


# --------------------------------------------------------------------
# R3.10 recipients
# --------------------------------------------------------------------

def test_max_recipients(make_server):
    users = ["u%d@example.test" % i for i in range(1, 5)]
    p = make_server(smtp={"max_recipients": 3}, accounts=users)
    m = msg("rcpts")
    with p.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        for u in users[:3]:
            c.expect("RCPT TO:<%s>" % u, "250 2.1.5 Ok")
        c.expect("RCPT TO:<%s>" % users[3], "452 4.5.3 Too many recipients")
        c.expect("DATA", DATA_354)
        c.send(dot_stuff(m))
        r = c.reply()
        assert r.raw.startswith(QUEUED), r
    for u in users[:3]:
        (data,) = p.wait_messages(1, addr=u)
        assert split_received(data)[1] == m
    p.assert_no_more(0, addr=users[3])


# --------------------------------------------------------------------
# STARTTLS
# --------------------------------------------------------------------

def test_starttls_twice(shared_server):
    with shared_server.connect() as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        c.expect("STARTTLS", "503 5.5.1 Error: TLS already active")
        c.expect("NOOP", "250 2.0.0 Ok")
    with shared_server.connect(port=shared_server.subs_port, tls=True) as c:
        c.ehlo()
        c.expect("STARTTLS", "503 5.5.1 Error: TLS already active")


def test_starttls_not_offered(make_server):
    port = free_port()
    p = make_server(extra_config="[listener plain]\nlisten = 127.0.0.1:%d\nprofile = mx\n"
                                 "tls = none\n" % port)
    with p.connect(port=port) as c:
        r = c.cmd("EHLO client.example.org")
        assert "250-STARTTLS" not in r.lines and r.lines[0] == "250-" + HOSTNAME, r
        c.expect("STARTTLS", "502 5.5.1 Error: STARTTLS not available")
        c.expect("NOOP", "250 2.0.0 Ok")


def test_starttls_command_injection(shared_server):
    """A command pipelined after STARTTLS in the clear must not be
    answered inside TLS (CVE-2011-0411 class)."""
    with shared_server.connect() as c:
        c.ehlo()
        c.send(b"STARTTLS\r\nNOOP\r\n")
        c.expect_reply("220 2.0.0 Ready to start TLS")
        assert c.pending(0.3) == b"", "plaintext reply after STARTTLS"
        try:
            c.sock = unverified_context().wrap_socket(c.sock)
        except (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError):
            return          # closing on injected input is also safe
        c.sock.settimeout(10)
        r = c.cmd("EHLO client.example.org")
        assert r.lines == EHLO_TLS, "first reply inside TLS: %r" % r
        c.expect("NOOP", "250 2.0.0 Ok")
        c.expect("QUIT", "221 2.0.0 Bye")


# --------------------------------------------------------------------
# Header section bound, shutdown
# --------------------------------------------------------------------

def test_header_section_too_long(server):
    line = b"X-Filler: " + b"h" * 500 + b"\r\n"
    head = line * 140                                   # ~71 KB > 64 KiB
    with server.connect() as c:
        begin(c)
        c.send(dot_stuff(head + b"Subject: big header\r\n\r\nbody\r\n"))
        c.expect_reply("552 5.6.0 Header section too long")
        assert_session_usable(c)
        # The same octets in the body are fine.
        ok = b"Subject: big body\r\n\r\n" + head
        begin(c)
        c.send(dot_stuff(ok))
        r = c.reply()
        assert r.raw.startswith(QUEUED), r
    (data,) = server.wait_messages(1)
    assert split_received(data)[1] == ok
    server.assert_no_more(1)


def test_shutdown_reply(server):
    """SIGTERM: a connected client is told, then the connection closes."""
    with server.connect() as c:
        c.ehlo()
        os.kill(server.proc.pid, signal.SIGTERM)
        c.expect_reply("421 4.3.2 %s Service shutting down" % HOSTNAME, timeout=10)
        c.wait_eof()
    server.proc.wait(timeout=15)
