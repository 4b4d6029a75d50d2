"""
POP3 (SPEC section 6, R3.4, R6.2): real clients (Python's poplib, curl,
fetchmail, mpop) against postino's pop3 (STLS) and pop3s listeners,
byte-exact against the Maildir files; the exact replies of
docs/replies.md over raw sockets; the mailbox lock, deletions only at
QUIT, a SIGKILL in the middle of a session; the STLS injection case; and
the seeds' POP-before-SMTP scenario end to end.
"""
import os
import poplib
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import (DEMO, DEMO_PASSWORD, POSTINO, SENDER, SMTPConn, extra_ports,
                      unverified_context)

OTHER = "other@example.test"
GREETING = b"+OK postino ready.\r\n"
FAILED = b"-ERR [AUTH] Authentication failed.\r\n"
PLAINTEXT = (b"-ERR [AUTH] Plaintext authentication disallowed on non-secure "
             b"(SSL/TLS) connections.\r\n")
CAPA_COMMON = [b"+OK Capability list follows", b"CAPA", b"TOP", b"UIDL",
               b"RESP-CODES", b"AUTH-RESP-CODE", b"PIPELINING"]


# --------------------------------------------------------------------
# A server with POP3 listeners, and a raw POP3 client
# --------------------------------------------------------------------

def pop3_server(make_server, extra="", relay="", accounts=(DEMO, OTHER), pop3=""):
    """A started server with [listener pop3] (STLS) and [listener pop3s]."""
    p = make_server(accounts=accounts, start=False)
    p.pop3_port, p.pop3s_port = extra_ports(p, 2)
    p.extra_config = "\n".join([
        "[listener pop3]", "listen = 127.0.0.1:%d" % p.pop3_port, "profile = pop3",
        "[listener pop3s]", "listen = 127.0.0.1:%d" % p.pop3s_port, "profile = pop3s",
        "[relay]", relay,
        "[pop3]", pop3,
        extra])
    p.write_config()
    p.start()
    return p


class POP3Conn:
    """Bytes in, exact lines out, every read bounded in time."""

    def __init__(self, port, tls=False, source=None, timeout=10.0, greeting=True):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                     source_address=(source, 0) if source else None)
        if tls:
            s = unverified_context().wrap_socket(s)
        self.sock = s
        self.buf = b""
        self.timeout = timeout
        if greeting:
            assert self.line() == GREETING

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def line(self, timeout=None):
        """One line, CRLF included."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\r\n" not in self.buf:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "timeout; have %r" % self.buf
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise AssertionError("timeout; have %r" % self.buf)
            if not chunk:
                raise EOFError("closed; have %r" % self.buf)
            self.buf += chunk
        i = self.buf.index(b"\r\n") + 2
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.line()

    def expect(self, line, want):
        got = self.cmd(line)
        assert got == want + b"\r\n", "%s: got %r, want %r" % (line, got, want)

    def multi(self):
        """The lines of a multi-line body up to its ".", CRLF removed."""
        out = []
        while True:
            ln = self.line()[:-2]
            if ln == b".":
                return out
            out.append(ln)

    def login(self, user=DEMO, password=DEMO_PASSWORD):
        self.expect("USER " + user, b"+OK")
        self.expect("PASS " + password, b"+OK Logged in.")

    def stls(self):
        self.expect("STLS", b"+OK Begin TLS negotiation now.")
        assert self.buf == b""
        self.sock = unverified_context().wrap_socket(self.sock)

    def eof(self, timeout=5.0):
        """The server closed the connection, with nothing more sent."""
        self.sock.settimeout(timeout)
        try:
            rest = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            rest = b""
        assert self.buf + rest == b"", "bytes before close: %r" % (self.buf + rest)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def deliver(p, bodies, rcpt=DEMO):
    """Send each message (bytes ending in CRLF) to rcpt over SMTP; wait
    until they are all in its Maildir; return {name: bytes} of them."""
    before = len(p.messages(rcpt))
    # from an address that never logs in over POP3 here: a login's grant
    # makes its address send as the account (R3.4), and R3.2 applies
    with p.connect(source="127.0.0.9") as c:
        c.ehlo()
        for b in bodies:
            c.send_message(b, rcpts=(rcpt,))
        c.cmd("QUIT")
    p.wait_messages(before + len(bodies), rcpt)
    return p.messages(rcpt)


def message(i, size=0):
    body = b"".join(b"line %d of message %d\r\n" % (k, i) for k in range(max(3, size // 24)))
    return (b"From: sender@example.org\r\nTo: demo@example.test\r\n"
            b"Subject: message %d\r\n\r\n" % i) + b".a line with a leading dot\r\n" + body


def by_uid(p, addr=DEMO):
    """Maildir file bytes in the order POP3 lists them (UID order); the
    UIDs come from dovecot-uidlist, which a first login writes."""
    c = POP3Conn(p.pop3s_port, tls=True)
    c.login(addr)
    c.expect("QUIT", b"+OK Logging out.")
    uids = read_uidlist(p, addr)
    msgs = p.messages(addr, subdirs=("cur",))
    order = sorted(msgs, key=lambda n: uids[n.split("/", 1)[1].split(":")[0]])
    return [msgs[n] for n in order]


def read_uidlist(p, addr=DEMO):
    with open(os.path.join(p.maildir(addr), "dovecot-uidlist"), "rb") as f:
        lines = f.read().decode().splitlines()
    assert re.match(r"^3 V\d+ N\d+ G[0-9a-f]{32}$", lines[0]), lines[0]
    uids = {}
    for ln in lines[1:]:
        head, name = ln.split(" :", 1)
        uids[name] = int(head.split()[0])
    return uids


def poplib_stls(p):
    c = poplib.POP3("127.0.0.1", p.pop3_port, timeout=10)
    c.stls(unverified_context())
    c.user(DEMO)
    c.pass_(DEMO_PASSWORD)
    return c


def poplib_ssl(p):
    c = poplib.POP3_SSL("127.0.0.1", p.pop3s_port, timeout=10,
                        context=unverified_context())
    c.user(DEMO)
    c.pass_(DEMO_PASSWORD)
    return c


def joined(lines):
    return b"".join(ln + b"\r\n" for ln in lines)


# --------------------------------------------------------------------
# Python's poplib over STLS and pop3s
# --------------------------------------------------------------------

def test_poplib_stls_retr_top_uidl_dele(make_server):
    p = pop3_server(make_server)
    deliver(p, [message(i) for i in range(3)])
    files = by_uid(p)
    c = poplib_stls(p)
    assert len(files) == 3
    assert c.stat() == (3, sum(len(f) for f in files))
    resp, lines, _ = c.list()
    assert resp == b"+OK 3 messages:"
    assert lines == [b"%d %d" % (i + 1, len(f)) for i, f in enumerate(files)]
    for i, f in enumerate(files):
        resp, lines, octets = c.retr(i + 1)
        assert resp == b"+OK %d octets" % len(f)
        assert joined(lines) == f            # byte-exact, dots unstuffed
    # TOP: the header section, the empty line, then n lines of the body
    head, body = files[0].split(b"\r\n\r\n", 1)
    resp, lines, _ = c.top(1, 2)
    assert resp == b"+OK"
    assert joined(lines) == head + b"\r\n\r\n" + b"".join(body.split(b"\r\n")[i] + b"\r\n"
                                                         for i in range(2))
    resp, lines, _ = c.top(1, 0)
    assert joined(lines) == head + b"\r\n\r\n"
    uids = read_uidlist(p)
    names = sorted(uids, key=uids.get)
    resp, lines, _ = c.uidl()
    uidvalidity = int(open(os.path.join(p.maildir(), "dovecot-uidlist")).readline().split()[1][1:])
    assert lines == [b"%d %08x%08x" % (i + 1, uids[n], uidvalidity) for i, n in enumerate(names)]
    assert c.uidl(2) == b"+OK 2 %08x%08x" % (uids[names[1]], uidvalidity)
    assert c.dele(2) == b"+OK Marked to be deleted."
    with pytest.raises(poplib.error_proto, match=r"There's no message 2\."):
        c.retr(2)
    assert c.stat() == (2, len(files[0]) + len(files[2]))
    # nothing is deleted before QUIT (RFC 1939 6)
    assert len(p.messages()) == 3
    assert c.quit() == b"+OK Logging out, messages deleted."
    left = p.messages()
    assert sorted(left.values()) == sorted([files[0], files[2]])
    # what was retrieved is marked seen, Dovecot-style
    assert all(n.startswith("cur/") and n.endswith(":2,S") for n in left), left


def test_poplib_pop3s_rset_keeps_everything(make_server):
    p = pop3_server(make_server)
    deliver(p, [message(i) for i in range(2)])
    c = poplib_ssl(p)
    c.dele(1)
    c.dele(2)
    assert c.stat() == (0, 0)
    assert c.rset() == b"+OK"
    assert c.stat()[0] == 2
    assert c.noop() == b"+OK"
    assert c.quit() == b"+OK Logging out."
    assert len(p.messages()) == 2
    assert p.log_has("event=login sasl_method=USER sasl_username=demo@example.test tls=TLSv1.3 messages=2")


def test_uidl_stable_across_sessions_and_restart(make_server):
    p = pop3_server(make_server)
    deliver(p, [message(i) for i in range(3)])
    c = poplib_ssl(p)
    first = c.uidl()[1]
    c.quit()
    p.restart()
    c = poplib_ssl(p)
    assert c.uidl()[1] == first
    c.dele(1)
    c.quit()
    deliver(p, [message(9)])
    c = poplib_ssl(p)
    now = c.uidl()[1]
    c.quit()
    # the survivors keep their UIDL, the new message gets a new one
    assert [ln.split()[1] for ln in now[:2]] == [ln.split()[1] for ln in first[1:]]
    assert now[2].split()[1] not in [ln.split()[1] for ln in first]


@pytest.mark.parametrize("tls", ["pop3s", "stls"])
def test_large_message_streams(make_server, tls):
    """A 30 MB message goes out byte-exact, and net never holds it: not
    over implicit TLS, nor under the TLS filter of STLS."""
    p = pop3_server(make_server)
    big = message(1) + b"".join(b"%08d " % i + b"x" * 70 + b"\r\n" for i in range(400000))
    files = deliver(p, [big])
    f = list(files.values())[0]
    net_pid = p.pids()["net"]
    c = poplib_ssl(p) if tls == "pop3s" else poplib_stls(p)
    resp, lines, _ = c.retr(1)
    assert joined(lines) == f
    c.quit()
    with open(POSTINO, "rb") as b:
        if b"__asan_init" in b.read():
            return      # ASan keeps freed memory in quarantine: no bound to see
    with open("/proc/%d/status" % net_pid) as st:
        hwm = int(re.search(r"VmHWM:\s+(\d+) kB", st.read()).group(1))
    assert hwm < 24 * 1024, "net's peak memory %d kB for a %d-octet message" % (hwm, len(f))


def test_lf_file_and_dots_from_another_agent(make_server):
    """A message another program put in new/ with bare LF line ends: its
    POP3 size counts CRLF, RETR sends CRLF, leading dots doubled."""
    p = pop3_server(make_server)
    deliver(p, [message(0)])      # makes the Maildir
    raw = b"Subject: lf\n\n.\n..two\nlast line without newline"
    path = os.path.join(p.maildir(), "new", "1700000000.M1P1.other")
    with open(path, "wb") as f:
        f.write(raw)
    st = os.stat(os.path.join(p.maildir(), "new"))
    os.chown(path, st.st_uid, st.st_gid)
    c = POP3Conn(p.pop3s_port, tls=True)
    c.login()
    want = raw.replace(b"\n", b"\r\n")
    assert c.cmd("LIST 1") == b"+OK 1 %d\r\n" % len(want)
    assert c.cmd("RETR 1") == b"+OK %d octets\r\n" % len(want)
    got = b""
    while not got.endswith(b"\r\n.\r\n"):
        got += c.line()
    assert got == b"Subject: lf\r\n\r\n..\r\n...two\r\nlast line without newline\r\n.\r\n"
    c.expect("QUIT", b"+OK Logging out.")


# --------------------------------------------------------------------
# curl, fetchmail, mpop
# --------------------------------------------------------------------

def curl(*args):
    r = subprocess.run(["curl", "-sS", "-k", "--max-time", "20"] + list(args),
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_curl_pop3s_list_retr(make_server):
    p = pop3_server(make_server)
    deliver(p, [message(i) for i in range(2)])
    files = by_uid(p)
    base = "pop3s://127.0.0.1:%d/" % p.pop3s_port
    user = ["--user", "%s:%s" % (DEMO, DEMO_PASSWORD)]
    assert curl(*user, base) == b"".join(b"%d %d\r\n" % (i + 1, len(f))
                                         for i, f in enumerate(files))
    for i, f in enumerate(files):
        assert curl(*user, base + str(i + 1)) == f
    # curl picks the strongest SASL mechanism offered (CRAM-MD5 here)
    assert p.log_has("service=pop3 sasl_method=CRAM-MD5 sasl_username=demo@example.test result=ok")
    # and AUTH PLAIN when told
    assert curl(*user, "--login-options", "AUTH=PLAIN", base + "1") == files[0]
    assert p.log_has("service=pop3 sasl_method=PLAIN sasl_username=demo@example.test result=ok")
    # over STLS on the pop3 listener, with USER/PASS
    assert curl(*user, "--ssl-reqd", "pop3://127.0.0.1:%d/2" % p.pop3_port) == files[1]


def fetched_files(d):
    return [open(os.path.join(d, n), "rb").read() for n in sorted(os.listdir(d))]


def test_fetchmail_fetches_and_deletes(make_server, tmp_path):
    p = pop3_server(make_server)
    deliver(p, [message(i) for i in range(3)])
    files = by_uid(p)
    out = tmp_path / "out"
    out.mkdir()
    mda = tmp_path / "mda.sh"
    mda.write_text('#!/bin/sh\nn=$(ls %s | wc -l)\ncat > %s/$(printf %%04d "$n")\n' % (out, out))
    mda.chmod(0o755)
    rc = tmp_path / "fetchmailrc"
    rc.write_text("set no syslog\npoll 127.0.0.1 service %d protocol pop3 uidl\n"
                  "  user '%s' password '%s' ssl no sslcertck\n"
                  "  mda '%s' no rewrite\n" % (p.pop3s_port, DEMO, DEMO_PASSWORD, mda))
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))
    r = subprocess.run(["fetchmail", "-f", str(rc), "--nosyslog", "-v"], capture_output=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    got = fetched_files(out)
    assert len(got) == 3
    for g, f in zip(got, files):
        # fetchmail hands the MDA the message with LF line ends, after
        # a Received: of its own (one folded header)
        m = re.match(rb"Received: from 127\.0\.0\.1 .*\n(?:[ \t].*\n)*", g)
        assert m and b"(fetchmail-" in m.group(0), g[:300]
        rest = g[m.end():]
        assert rest == f.replace(b"\r\n", b"\n"), (g[:300], f[:300])
    assert p.messages() == {}, "fetchmail deletes what it fetched"


def test_mpop_fetches_and_deletes(make_server, tmp_path):
    p = pop3_server(make_server)
    deliver(p, [message(i) for i in range(3)])
    files = by_uid(p)
    box = tmp_path / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (box / sub).mkdir(parents=True)
    conf = tmp_path / "mpoprc"
    conf.write_text("account default\nhost 127.0.0.1\nport %d\ntls on\ntls_starttls on\n"
                    "tls_certcheck off\nauth user\nuser %s\npassword %s\n"
                    "delivery maildir %s\nreceived_header off\nkeep off\n"
                    "uidls_file %s/uidls\n"
                    % (p.pop3_port, DEMO, DEMO_PASSWORD, box, tmp_path))
    conf.chmod(0o600)
    r = subprocess.run(["mpop", "-C", str(conf), "-q"], capture_output=True, timeout=60,
                       env=dict(os.environ, HOME=str(tmp_path)))
    assert r.returncode == 0, r.stdout + r.stderr
    got = sorted(fetched_files(box / "new"))
    want = sorted(f.replace(b"\r\n", b"\n") for f in files)
    assert got == want      # mpop stores LF line ends, nothing added
    assert p.messages() == {}


# --------------------------------------------------------------------
# Exact replies, raw
# --------------------------------------------------------------------

def test_capa_and_plaintext_before_tls(make_server):
    p = pop3_server(make_server)
    c = POP3Conn(p.pop3_port)
    assert c.cmd("CAPA") == b"+OK Capability list follows\r\n"
    assert c.multi() == CAPA_COMMON[1:] + [b"SASL CRAM-MD5 SCRAM-SHA-256 SCRAM-SHA-1",
                                           b"STLS"]
    assert c.cmd("USER " + DEMO) == PLAINTEXT
    assert c.cmd("PASS x") == PLAINTEXT
    assert c.cmd("AUTH PLAIN") == PLAINTEXT
    assert c.cmd("STAT") == b"-ERR Command not valid in this state.\r\n"
    assert c.cmd("APOP demo x") == b"-ERR Unknown command.\r\n"
    c.stls()
    assert c.cmd("CAPA") == b"+OK Capability list follows\r\n"
    assert c.multi() == CAPA_COMMON[1:] + [
        b"USER", b"SASL PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 SCRAM-SHA-1"]
    c.expect("STLS", b"-ERR TLS is already active.")
    c.expect("AUTH", b"+OK")
    assert c.multi() == [b"PLAIN", b"LOGIN", b"CRAM-MD5", b"SCRAM-SHA-256", b"SCRAM-SHA-1"]
    c.expect("QUIT", b"+OK Logging out.")
    c.eof()


def test_exact_replies_after_login(make_server):
    p = pop3_server(make_server)
    deliver(p, [message(0)])
    c = POP3Conn(p.pop3s_port, tls=True)
    c.expect("PASS x", b"-ERR No username given.")
    c.login()
    c.expect("USER x", b"-ERR Command not valid in this state.")
    c.expect("LIST 2", b"-ERR There's no message 2.")
    c.expect("LIST x", b"-ERR Invalid message number.")
    c.expect("LIST 0", b"-ERR Invalid message number.")
    c.expect("TOP 1", b"-ERR Invalid arguments.")
    c.expect("DELE 1", b"+OK Marked to be deleted.")
    c.expect("DELE 1", b"-ERR There's no message 1.")
    c.expect("STAT", b"+OK 0 0")
    c.expect("LIST", b"+OK 0 messages:")
    assert c.multi() == []
    c.expect("RSET", b"+OK")
    c.expect("CAPA", b"+OK Capability list follows")
    assert c.multi() == CAPA_COMMON[1:]
    c.expect("FOO", b"-ERR Unknown command.")
    c.expect("QUIT", b"+OK Logging out.")
    c.eof()


def test_auth_plain_sasl(make_server):
    import base64
    p = pop3_server(make_server)
    c = POP3Conn(p.pop3s_port, tls=True)
    cred = base64.b64encode(b"\0" + DEMO.encode() + b"\0" + b"wrong").decode()
    c.expect("AUTH PLAIN " + cred, FAILED[:-2])
    c.expect("AUTH PLAIN", b"+ ")
    c.expect("*", b"-ERR Authentication aborted.")
    c.expect("AUTH PLAIN", b"+ ")
    c.expect("not base64!", b"-ERR Cannot decode response.")
    c.expect("AUTH X-NONE", b"-ERR Unsupported authentication mechanism.")
    cred = base64.b64encode(b"\0" + DEMO.encode() + b"\0" + DEMO_PASSWORD.encode()).decode()
    c.expect("AUTH PLAIN " + cred, b"+OK Logged in.")
    c.expect("QUIT", b"+OK Logging out.")


def test_same_reply_for_every_failure_and_shared_counter(make_server):
    """Unknown user, wrong password, disabled account: one reply; POP3
    failures count with SMTP AUTH's per address; the third closes."""
    p = pop3_server(make_server, accounts=(DEMO, OTHER, "off@example.test"))
    p.admin("account", "disable", "off@example.test")
    ip = "127.0.0.61"
    # one failed SMTP AUTH from ip first
    with p.connect(port=p.subs_port, tls=True, source=ip) as s:
        s.ehlo()
        r = s.cmd("AUTH PLAIN AGRlbW9AZXhhbXBsZS50ZXN0AHdyb25n")
        assert r.code == 535
    c = POP3Conn(p.pop3s_port, tls=True, source=ip)
    times = []
    for user, pw in ((DEMO, "wrong"), ("nobody@example.test", "x"),
                     ("off@example.test", DEMO_PASSWORD)):
        c.expect("USER " + user, b"+OK")
        t = time.monotonic()
        assert c.cmd("PASS " + pw) == FAILED
        times.append(time.monotonic() - t)
    c.eof()
    assert p.log_has("address=[%s] service=pop3 sasl_method=PLAIN sasl_username=- result=fail failures=4" % ip)
    # the hash is computed whether the account exists or not
    assert max(times) < 5 * min(times) + 0.05, times
    # a disabled SMTP-AUTH switch is SMTP's only: that account still reads mail
    p.admin("account", "smtp-auth", OTHER, "off")
    c = POP3Conn(p.pop3s_port, tls=True)
    c.login(OTHER)
    c.expect("QUIT", b"+OK Logging out.")


def test_limits(make_server):
    p = pop3_server(make_server, pop3="timeout = 2\nmax_commands = 20")
    c = POP3Conn(p.pop3s_port, tls=True)
    c.send(b"NOOP " + b"x" * 2000 + b"\r\n")
    assert c.line() == b"-ERR Line too long.\r\n"
    c.close()
    c = POP3Conn(p.pop3s_port, tls=True)
    for _ in range(9):
        assert c.cmd("BOGUS") == b"-ERR Unknown command.\r\n"
    assert c.cmd("BOGUS") == b"-ERR Unknown command.\r\n"
    assert c.line() == b"-ERR Too many bad commands.\r\n"
    c.eof()
    c = POP3Conn(p.pop3s_port, tls=True)
    c.login()
    for _ in range(18):
        c.expect("NOOP", b"+OK")
    assert c.cmd("NOOP") == b"-ERR Too many commands.\r\n"
    c.eof()
    c = POP3Conn(p.pop3s_port, tls=True)
    assert c.line(timeout=6) == b"-ERR Disconnected for inactivity.\r\n"
    c.eof()


# --------------------------------------------------------------------
# The lock, UPDATE only at QUIT, crashes
# --------------------------------------------------------------------

def test_second_session_is_refused_first_deletes_once(make_server):
    p = pop3_server(make_server)
    deliver(p, [message(i) for i in range(3)])
    a = POP3Conn(p.pop3s_port, tls=True)
    a.login()
    b = POP3Conn(p.pop3_port)
    b.stls()
    b.expect("USER " + DEMO, b"+OK")
    b.expect("PASS " + DEMO_PASSWORD, b"-ERR [IN-USE] Mailbox is locked by another POP3 session.")
    a.expect("DELE 1", b"+OK Marked to be deleted.")
    a.expect("DELE 3", b"+OK Marked to be deleted.")
    a.expect("QUIT", b"+OK Logging out, messages deleted.")
    a.eof()
    assert len(p.messages()) == 1
    # the refused session may log in now, and sees what is left
    b.login()
    b.expect("STAT", b"+OK 1 %d" % len(list(p.messages().values())[0]))
    b.expect("QUIT", b"+OK Logging out.")
    assert len(p.messages()) == 1


def test_dropped_connection_deletes_nothing(make_server):
    p = pop3_server(make_server)
    deliver(p, [message(i) for i in range(2)])
    c = POP3Conn(p.pop3s_port, tls=True)
    c.login()
    c.expect("DELE 1", b"+OK Marked to be deleted.")
    c.expect("DELE 2", b"+OK Marked to be deleted.")
    c.close()
    deadline = time.monotonic() + 10
    while not re.search(r"pop3 session=\S+ address=\[127.0.0.1\] event=disconnect "
                        r"reason=(eof|error)", p.read_log()):
        assert time.monotonic() < deadline, "no disconnect logged"
        time.sleep(0.05)
    # the lock went with the session
    c = POP3Conn(p.pop3s_port, tls=True)
    c.login()
    c.expect("STAT", b"+OK 2 %d" % sum(len(m) for m in p.messages().values()))
    c.expect("QUIT", b"+OK Logging out.")


def test_kill9_in_a_session_loses_and_deletes_nothing(make_server):
    p = pop3_server(make_server)
    files = deliver(p, [message(i) for i in range(3)])
    c = POP3Conn(p.pop3s_port, tls=True)
    c.login()
    uidl = (c.cmd("UIDL"), c.multi())
    for i in (1, 2, 3):
        c.expect("DELE %d" % i, b"+OK Marked to be deleted.")
    p.kill9()
    c.close()
    p.start()
    assert sorted(p.messages().values()) == sorted(files.values())
    c = POP3Conn(p.pop3s_port, tls=True)
    c.login()                   # the lock died with the process
    assert (c.cmd("UIDL"), c.multi()) == uidl
    c.expect("QUIT", b"+OK Logging out.")


def test_stls_injection_is_discarded(make_server):
    """Commands sent in the same packet as STLS are not run under TLS
    (CVE-2011-0411): after the handshake, the first reply is to the
    first command sent under TLS."""
    p = pop3_server(make_server)
    c = POP3Conn(p.pop3_port)
    c.send(b"STLS\r\nCAPA\r\nUSER " + DEMO.encode() + b"\r\n")
    assert c.line() == b"+OK Begin TLS negotiation now.\r\n"
    assert c.buf == b""
    c.sock = unverified_context().wrap_socket(c.sock)
    c.expect("PASS " + DEMO_PASSWORD, b"-ERR No username given.")
    c.expect("QUIT", b"+OK Logging out.")


# --------------------------------------------------------------------
# The seeds' scenario: POP before SMTP (R3.4, R6.2)
# --------------------------------------------------------------------

RELAY_DENIED = "550 5.7.1 <friend@far.example> Relay access denied"


def smtp_from(p, ip):
    c = SMTPConn(socket.create_connection(("127.0.0.1", p.mx_port), timeout=10,
                                          source_address=(ip, 0)))
    assert c.reply().code == 220
    c.ehlo()
    return c


def db(p, sql, args=()):
    return [tuple(r) for r in p.store_sql(sql, args)[0]]


def test_pop_before_smtp(make_server):
    p = pop3_server(make_server, relay="pop_before_smtp_minutes = 1")
    ip = "127.0.0.71"
    with smtp_from(p, ip) as s:
        s.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        s.expect("RCPT TO:<friend@far.example>", RELAY_DENIED)
    c = POP3Conn(p.pop3s_port, tls=True, source=ip)
    t = int(time.time())
    c.login()
    c.expect("QUIT", b"+OK Logging out.")
    assert p.log_has("popauth event=grant address=[%s] user=%s minutes=1" % (ip, DEMO))
    (account, until), = db(p, "SELECT account, until FROM popauth WHERE ip = ?", (ip,))
    assert account == DEMO and t + 55 <= until <= int(time.time()) + 61
    r = p.admin("explain", "--ip", ip, "--from", DEMO, "--to", "friend@far.example")
    assert "POP-before-SMTP grant" in r.stdout
    assert r.stdout.rstrip().endswith("final: 250 2.1.5 Ok"), r.stdout
    # relays through mx without AUTH, as its own address only (global = no)
    with smtp_from(p, ip) as s:
        s.expect("MAIL FROM:<%s>" % DEMO, "250 2.1.0 Ok")
        s.expect("RCPT TO:<friend@far.example>", "250 2.1.5 Ok")
        s.expect("DATA", "354 End data with <CR><LF>.<CR><LF>")
        s.send(b"Subject: via POP before SMTP\r\n\r\nhi\r\n.\r\n")
        s.queued_id(s.reply())
        s.expect("MAIL FROM:<%s>" % OTHER, "250 2.1.0 Ok")
        s.expect("RCPT TO:<friend@far.example>",
                 "501 5.7.1 <%s>... Permission denied" % OTHER)
    # another address is not authorized by that login
    with smtp_from(p, "127.0.0.72") as s:
        s.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        s.expect("RCPT TO:<friend@far.example>", RELAY_DENIED)
    # the grant survives a restart
    p.restart()
    with smtp_from(p, ip) as s:
        s.expect("MAIL FROM:<%s>" % DEMO, "250 2.1.0 Ok")
        s.expect("RCPT TO:<friend@far.example>", "250 2.1.5 Ok")
    # after pop_before_smtp_minutes it is refused again
    db(p, "UPDATE popauth SET until = ? WHERE ip = ?", (int(time.time()) - 1, ip))
    with smtp_from(p, ip) as s:
        s.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        s.expect("RCPT TO:<friend@far.example>", RELAY_DENIED)


def test_pop_before_smtp_global(make_server):
    p = pop3_server(make_server, relay="pop_before_smtp_global = yes")
    ip = "127.0.0.73"
    c = POP3Conn(p.pop3s_port, tls=True, source=ip)
    c.login()
    c.expect("QUIT", b"+OK Logging out.")
    with smtp_from(p, ip) as s:
        s.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        s.expect("RCPT TO:<friend@far.example>", "250 2.1.5 Ok")


def test_failed_login_grants_nothing(make_server):
    p = pop3_server(make_server)
    ip = "127.0.0.74"
    c = POP3Conn(p.pop3s_port, tls=True, source=ip)
    c.expect("USER " + DEMO, b"+OK")
    assert c.cmd("PASS wrong") == FAILED
    c.close()
    assert db(p, "SELECT * FROM popauth WHERE ip = ?", (ip,)) == []


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_auth_scram(make_server, mech):
    """SCRAM over POP3 (RFC 5034 + RFC 5802): the client proves the
    password, the server proves it knows it (v=), both under STLS."""
    import base64
    from test_auth import Scram
    p = pop3_server(make_server)
    c = POP3Conn(p.pop3_port)
    c.stls()
    sc = Scram(mech, DEMO, DEMO_PASSWORD)
    r = c.cmd("AUTH %s %s" % (mech, base64.b64encode(sc.first().encode()).decode()))
    for _ in range(3):
        if not r.startswith(b"+ "):
            break
        text = base64.b64decode(r[2:-2]).decode()
        r = c.cmd(base64.b64encode(sc(text.encode()).encode()).decode())
    assert r == b"+OK Logged in.\r\n"
    assert sc.verified
    c.expect("QUIT", b"+OK Logging out.")
    assert p.log_has("service=pop3 sasl_method=%s sasl_username=%s result=ok" % (mech, DEMO))


def test_over_the_connection_limit(make_server):
    """Over max_connections_per_ip a POP3 client is told so in POP3, and
    an implicit-TLS one is closed without plain text on its TLS port."""
    p = make_server(smtp={"max_connections_per_ip": 1}, accounts=(DEMO,), start=False)
    p.pop3_port, p.pop3s_port = extra_ports(p, 2)
    p.extra_config = "\n".join([
        "[listener pop3]", "listen = 127.0.0.1:%d" % p.pop3_port, "profile = pop3",
        "[listener pop3s]", "listen = 127.0.0.1:%d" % p.pop3s_port, "profile = pop3s"])
    p.write_config()
    p.start()
    first = POP3Conn(p.pop3_port, source="127.0.0.75")
    second = POP3Conn(p.pop3_port, source="127.0.0.75", greeting=False)
    assert second.line() == b"-ERR [SYS/TEMP] Too many connections, try again later.\r\n"
    second.eof()
    s = socket.create_connection(("127.0.0.1", p.pop3s_port), timeout=10,
                                 source_address=("127.0.0.75", 0))
    s.settimeout(10)
    assert s.recv(100) == b""
    s.close()
    assert re.search(r"postino\[net/\d+\]: pop3 session=[0-9a-f]{16} address=\[127\.0\.0\.75\] "
                     r"event=reject check=max-connections-per-ip status=-ERR "
                     r"resp_code=SYS/TEMP listener=pop3s\n", p.read_log())
    first.expect("QUIT", b"+OK Logging out.")
