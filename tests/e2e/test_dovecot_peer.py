"""Self-checks of tests/support/dovecot_lmtp.py (a private Dovecot LMTP
server, the local-delivery peer of SPEC R5.2), driven with
smtplib.LMTP over TCP and over the unix socket; no postino involved.

What postino's LMTP delivery tests will rely on is checked here first:
the bytes delivered into each user's Maildir (after as_sent()), one
reply per accepted recipient after DATA (RFC 2033 section 4.2), the
550 for an unknown user at RCPT, and that the private instance listens
on its own loopback port and socket only.
"""
import os
import re
import shutil
import smtplib
import socket
import tempfile

import pytest

from conftest import dot_stuff
from dovecot_lmtp import GREETING, HOSTNAME, DovecotLmtp, user_unknown
from procs import pid_alive, tree

WAIT = 10.0
LHLO = "client.example.org"
SENDER = "sender@example.org"
USERS = ("demo@example.test", "b@example.test")

# Leading dots (dot-stuffed on the wire), 8-bit text, a tab, a long
# line: all must come back as sent.
MSG = (b"From: <sender@example.org>\r\n"
       b"To: <demo@example.test>, <b@example.test>\r\n"
       b"Subject: dovecot peer self-check\r\n"
       b"Message-ID: <dovecot-peer-1@example.org>\r\n"
       b"\r\n"
       b".one leading dot\r\n"
       b"..two leading dots\r\n"
       b".\r\n"
       b"caf\xc3\xa9\tand a tab\r\n"
       + b"x" * 5000 + b"\r\n"
       b"last line\r\n")

SAVED = re.compile(rb"^2\.0\.0 <(?P<rcpt>[^>]*)> (?P<id>\S+) Saved$")


@pytest.fixture(scope="module")
def top():
    d = tempfile.mkdtemp(prefix="postino-e2e-dovecot-")
    os.chmod(d, 0o755)      # Dovecot's auth runs as dovecot, deliveries as nobody
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def lmtp(top):
    why = DovecotLmtp.unavailable()
    if why:
        pytest.skip("private Dovecot LMTP: " + why)
    d = DovecotLmtp(top, users=USERS, unix=True)
    try:
        d.start()
        yield d
    finally:
        pid = d.pid
        family = tree(pid) if pid else []
        d.stop()
    assert not d.alive(), "Dovecot master %d still alive" % pid
    left = [p for p in family if pid_alive(p)]
    assert not left, "Dovecot processes left after stop: %r" % left


def connect(lm, transport):
    """smtplib.LMTP to lm over "tcp" (host:port) or "unix" (the socket:
    smtplib.LMTP takes a host starting with "/" for a unix socket).
    Its ehlo() sends LHLO."""
    if transport == "tcp":
        c = smtplib.LMTP(lm.host, lm.port, local_hostname=LHLO, timeout=WAIT)
    else:
        c = smtplib.LMTP(lm.socket_path, local_hostname=LHLO, timeout=WAIT)
    return c


def data_replies(c, msg, n):
    """DATA, the dot-stuffed message, then the n replies LMTP gives
    after the final "." (one per accepted recipient), read one by one
    with smtplib's low-level getreply() (LMTP.data() reads only one)."""
    assert c.docmd("DATA") == (354, b"OK")
    c.send(dot_stuff(msg))
    return [c.getreply() for _ in range(n)]


def listening_tcp(pids):
    """(address, port) of every listening TCP socket held by pids, from
    /proc/net/tcp{,6} and /proc/PID/fd."""
    inodes = set()
    for pid in pids:
        fd_dir = "/proc/%d/fd" % pid
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fl = row.split()
            if fl[3] != "0A" or fl[9] not in inodes:       # 0A: LISTEN
                continue
            addr, port = fl[1].split(":")
            if len(addr) == 8:
                ip = ".".join(str(int(addr[i:i + 2], 16)) for i in (6, 4, 2, 0))
            else:
                ip = "ipv6:" + addr
            found.add((ip, int(port, 16)))
    return found


def test_private_listeners_only(lmtp):
    """Only host:port over TCP (none of 24, 110, 143, 993, 995, nothing
    on 0.0.0.0), the unix socket with mode 0666, no system config; on
    both transports the greeting "220 lmtp.example.test Dovecot ready."
    and an LHLO reply naming the hostname."""
    assert listening_tcp(tree(lmtp.pid)) == {(lmtp.host, lmtp.port)}
    assert os.stat(lmtp.socket_path).st_mode & 0o777 == 0o666
    with open(lmtp.conf_path) as f:
        conf = f.read()
    assert "/etc/dovecot" not in conf and "!include" not in conf
    for family, addr in ((socket.AF_INET, (lmtp.host, lmtp.port)),
                         (socket.AF_UNIX, lmtp.socket_path)):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(WAIT)
            s.connect(addr)
            assert s.recv(512) == (GREETING + "\r\n").encode()
            s.sendall(b"QUIT\r\n")
            assert s.recv(512) == b"221 2.0.0 Bye\r\n"
    for transport in ("tcp", "unix"):
        c = connect(lmtp, transport)
        try:
            code, text = c.ehlo(LHLO)
            assert code == 250
            assert text.split(b"\n") == [HOSTNAME.encode(), b"8BITMIME", b"CHUNKING",
                                         b"ENHANCEDSTATUSCODES", b"PIPELINING"]
        finally:
            c.quit()


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_two_users_byte_exact_one_reply_each(lmtp, transport):
    """One message to two users: after DATA one "250 2.0.0 <RCPT>
    SESSION-ID Saved" per recipient, in RCPT order, the second's id
    with ":R2"; the bytes in both Maildirs are those sent after
    as_sent(), with Return-Path: <SENDER> the only line added."""
    c = connect(lmtp, transport)
    try:
        assert c.ehlo(LHLO)[0] == 250
        assert c.docmd("MAIL", "FROM:<%s>" % SENDER) == (250, b"2.1.0 OK")
        for u in USERS:
            assert c.docmd("RCPT", "TO:<%s>" % u) == (250, b"2.1.5 OK")
        replies = data_replies(c, MSG, len(USERS))
        assert [code for code, _ in replies] == [250, 250], replies
        ms = [SAVED.match(text) for _, text in replies]
        assert all(ms), replies
        assert [m.group("rcpt").decode() for m in ms] == list(USERS)
        first, second = (m.group("id").decode() for m in ms)
        assert second == first + ":R2", replies
        # The connection goes on: a RSET after the transaction.
        assert c.docmd("RSET") == (250, b"2.0.0 OK")
    finally:
        c.quit()
    for u in USERS:
        (path, data), = lmtp.wait_messages(1, u, timeout=WAIT)
        assert path.startswith(os.path.join(lmtp.maildir_path(u), "new") + os.sep)
        assert data.startswith(b"Return-Path: <%s>\r\n" % SENDER.encode())
        assert DovecotLmtp.return_path(data) == "<%s>" % SENDER
        assert DovecotLmtp.as_sent(data) == MSG
        # Nothing else added: no Delivered-To:, no Received:.
        assert data == b"Return-Path: <%s>\r\n" % SENDER.encode() + MSG
        st = os.stat(path)
        assert (st.st_uid, st.st_gid) == (lmtp.uid, lmtp.gid)
    assert sorted(os.listdir(lmtp.maildir_path(USERS[0]))) == \
        ["cur", "maildirfolder", "new", "tmp"]


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_unknown_user_refused_at_rcpt(lmtp, transport):
    """An address not in the userdb gets, at RCPT,

        550 5.1.1 <nobody@example.test> User doesn't exist: nobody@example.test

    (the address as the client wrote it, twice, case kept); the
    transaction goes on for the known recipient, whose DATA reply is
    then the only one.  The null sender comes back as Return-Path: <>.
    """
    c = connect(lmtp, transport)
    try:
        assert c.ehlo(LHLO)[0] == 250
        assert c.docmd("MAIL", "FROM:<>") == (250, b"2.1.0 OK")
        code, text = c.docmd("RCPT", "TO:<nobody@example.test>")
        assert "%d %s" % (code, text.decode()) == user_unknown("nobody@example.test")
        assert (code, text) == (550, b"5.1.1 <nobody@example.test> User doesn't exist: "
                                     b"nobody@example.test")
        code, text = c.docmd("RCPT", "TO:<Other@Example.TEST>")
        assert (code, text.decode()) == (550, user_unknown("Other@Example.TEST")[4:])
        assert c.docmd("RCPT", "TO:<%s>" % USERS[0]) == (250, b"2.1.5 OK")
        (code, text), = data_replies(c, MSG, 1)
        assert code == 250 and SAVED.match(text), text
        assert SAVED.match(text).group("rcpt") == USERS[0].encode()
        # No further reply is pending: the next command's reply is its own.
        assert c.docmd("NOOP") == (250, b"2.0.0 OK")
    finally:
        c.quit()
    (path, data), = lmtp.wait_messages(1, USERS[0], timeout=WAIT)
    assert data == b"Return-Path: <>\r\n" + MSG
    assert DovecotLmtp.as_sent(data) == MSG
    assert lmtp.messages(USERS[1]) == []
    assert not os.path.exists(lmtp.maildir_path("nobody@example.test"))
    assert lmtp.wait_log(r"passwd-file\(nobody@example\.test(,[^)]*)?\): unknown user",
                         timeout=WAIT), lmtp.log()
