"""
sendmail(1) (R7.6): the command drops a file into <data_dir>/maildrop/,
the store role picks it up, queues it and delivers it.  With -bs it
speaks SMTP on standard input and output, one drop file a transaction.
"""
import os
import shutil
import pwd
import re
import select
import subprocess
import time

import pytest

from conftest import BUILD, DEMO, HOSTNAME, dot_stuff


SENDMAIL = os.path.join(BUILD, "sendmail")
OTHER = "other@example.test"


def split_received(data):
    """The pickup's own Received field (folded once), and the rest."""
    first, _, rest = data.partition(b"\r\n")
    second, _, body = rest.partition(b"\r\n")
    assert second.startswith(b"\tid "), data
    return first + b"\r\n" + second + b"\r\n", body


def sendmail(p, args, message, check=True):
    r = subprocess.run([SENDMAIL, "-C", p.conf] + args, input=message,
                       capture_output=True, timeout=30)
    if check:
        assert r.returncode == 0, r
    return r


def test_sendmail_delivers_with_crlf(server):
    sendmail(server, [DEMO], b"Subject: local\n\nline one\n.dot line\n")
    (data,) = server.wait_messages(1)
    received, body = split_received(data)
    assert received.startswith(b"Received: by %s (postino sendmail, uid %d"
                               % (HOSTNAME.encode(), os.getuid()))
    # LF becomes CRLF; without -i a lone "." would end input, ".dot" not.
    assert body == b"Subject: local\r\n\r\nline one\r\n.dot line\r\n"
    server.assert_no_more(1)


def test_sendmail_t_reads_headers_and_drops_bcc(make_server):
    p = make_server(accounts=(DEMO, OTHER))
    msg = (b"To: Demo <%s>\nBcc: %s\nSubject: t\n\nbody\n"
           % (DEMO.encode(), OTHER.encode()))
    sendmail(p, ["-t", "-i", "-f", "sender@example.org"], msg)
    for addr in (DEMO, OTHER):
        (data,) = p.wait_messages(1, addr=addr)
        body = split_received(data)[1]
        assert b"Bcc:" not in body
        assert body.endswith(b"Subject: t\r\n\r\nbody\r\n")


def test_sendmail_without_daemon_directory_is_a_temporary_error(make_server):
    p = make_server(start=False)
    r = sendmail(p, [DEMO], b"Subject: x\n\nx\n", check=False)
    assert r.returncode == 75, r
    assert b"maildrop" in r.stderr


def test_sendmail_no_recipient_is_usage(server):
    r = sendmail(server, [], b"Subject: x\n\nx\n", check=False)
    assert r.returncode == 64, r
    assert r.stderr == b"sendmail: no recipients\n"


def test_bad_drop_file_is_set_aside_not_delivered(server):
    """A drop file any local user could write by hand is refused whole."""
    drop = os.path.join(server.data_dir, "maildrop")
    name = "0123456789abcdef"
    with open(os.path.join(drop, name), "wb") as f:
        f.write(b"postino-maildrop 1\nsender a@example.org\nrcpt \n\nbody\r\n")
    bad = os.path.join(drop, ".bad." + name)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not os.path.exists(bad):
        time.sleep(0.1)
    assert os.path.exists(bad)
    assert not os.path.exists(os.path.join(drop, name))
    server.assert_no_more(0)
    # The pickup goes on with good files.
    sendmail(server, [DEMO], b"Subject: after\n\nok\n")
    server.wait_messages(1)


# --------------------------------------------------------------------
# sendmail -bs: SMTP over a pipe
# --------------------------------------------------------------------

BS_GREETING = b"220 %s ESMTP postino (sendmail -bs)\r\n" % HOSTNAME.encode()
BS_EHLO = (b"250-%s\r\n250-SIZE 52428800\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
           b"250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n" % HOSTNAME.encode())
DATA_354 = b"354 End data with <CR><LF>.<CR><LF>\r\n"
QUEUED_RE = re.compile(rb"250 2\.0\.0 Ok: queued as ([0-9a-f]{16})\r\n\Z")


class BsSession:
    """build/sendmail -bs as a child: bytes in, whole replies out, every
    read bounded in time."""

    def __init__(self, p, user=None, timeout=10.0):
        binary = SENDMAIL
        if user is not None:
            # another user may not reach the checkout (a home of mode
            # 0700): a copy in the server's directory, which is 0755
            binary = os.path.join(p.dir, "sendmail")
            shutil.copy2(SENDMAIL, binary)
            os.chmod(binary, 0o755)
        self.proc = subprocess.Popen([binary, "-bs", "-C", p.conf],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, user=user)
        self.timeout = timeout
        self.buf = b""

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def reply(self):
        """One whole reply, all its lines, as bytes."""
        deadline = time.monotonic() + self.timeout
        fd = self.proc.stdout.fileno()
        pos = 0
        while True:
            eol = self.buf.find(b"\r\n", pos)
            if eol != -1:
                line = self.buf[pos:eol]
                assert re.match(rb"\d{3}[ -]", line), self.buf
                pos = eol + 2
                if line[3:4] == b" ":
                    out, self.buf = self.buf[:pos], self.buf[pos:]
                    return out
                continue
            left = deadline - time.monotonic()
            assert left > 0, "no whole reply; have %r" % self.buf
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 65536)
                assert chunk, "end of output; have %r" % self.buf
                self.buf += chunk

    def expect(self, line, want):
        self.send(line + b"\r\n")
        got = self.reply()
        assert got == want + b"\r\n", (line, got)

    def queued(self):
        r = self.reply()
        m = QUEUED_RE.match(r)
        assert m, r
        return m.group(1).decode()

    def finish(self):
        """Close our end; returns (exit status, rest of stdout, stderr)."""
        self.proc.stdin.close()
        # Little output is left: the pipes cannot fill before it exits.
        rc = self.proc.wait(timeout=self.timeout)
        out, err = self.proc.stdout.read(), self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc, self.buf + out, err


@pytest.fixture
def bs_start():
    """Factory: bs_start(server, user=None) -> BsSession.  A session a
    failed test left running is killed, by its PID, at teardown."""
    sessions = []

    def start(p, user=None):
        sessions.append(BsSession(p, user=user))
        return sessions[-1]

    yield start
    for bs in sessions:
        if bs.proc.poll() is None:
            bs.proc.kill()
            bs.proc.wait(timeout=10)


def bs_transaction(bs, sender, rcpts, message):
    """MAIL, RCPT, DATA one at a time; returns the drop file's name."""
    bs.expect(b"MAIL FROM:<%s>" % sender.encode(), b"250 2.1.0 Ok")
    for r in rcpts:
        bs.expect(b"RCPT TO:<%s>" % r.encode(), b"250 2.1.5 Ok")
    bs.expect(b"DATA", DATA_354.rstrip(b"\r\n"))
    bs.send(dot_stuff(message))
    return bs.queued()


def drop_dir_entries(p):
    return sorted(os.listdir(os.path.join(p.data_dir, "maildrop")))


def test_bs_two_transactions_in_one_session(server, bs_start):
    first = (b"Subject: first\r\n\r\none\r\n.leading dot\r\n.\r\n"
             b"..two dots\r\n")
    second = b"Subject: second\r\nX-8bit: caf\xc3\xa9\r\n\r\n\r\nlast line\r\n"
    bs = bs_start(server)
    assert bs.reply() == BS_GREETING
    bs.send(b"EHLO client.example.org\r\n")
    assert bs.reply() == BS_EHLO
    ids = [bs_transaction(bs, "sender@example.org", [DEMO], first),
           bs_transaction(bs, "", [DEMO], second)]
    assert ids[0] != ids[1]
    bs.expect(b"QUIT", b"221 2.0.0 Bye")
    rc, out, err = bs.finish()
    assert (rc, out, err) == (0, b"", b"")
    got = sorted(split_received(m)[1] for m in server.wait_messages(2))
    # Dot-unstuffed, byte for byte; the lone "." inside did not end it.
    assert got == sorted([first, second])
    for m in server.messages().values():
        received = split_received(m)[0]
        assert received.startswith(b"Received: by %s (postino sendmail, uid %d"
                                   % (HOSTNAME.encode(), os.getuid()))
    server.assert_no_more(2)
    assert server.log_has("from=<sender@example.org>")
    assert server.log_has("from=<>")


def test_bs_pipelined_group(make_server, bs_start):
    p = make_server(accounts=(DEMO, OTHER))
    message = b"Subject: pipelined\r\n\r\n.hidden\r\nbody\r\n"
    bs = bs_start(p)
    assert bs.reply() == BS_GREETING
    bs.send(b"EHLO client.example.org\r\n")
    assert bs.reply() == BS_EHLO
    # RFC 2920: the whole group in one write, DATA last.
    bs.send(b"MAIL FROM:<sender@example.org> SIZE=%d BODY=8BITMIME\r\n"
            b"RCPT TO:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
            % (len(message), DEMO.encode(), OTHER.encode()))
    assert [bs.reply() for _ in range(4)] == [
        b"250 2.1.0 Ok\r\n", b"250 2.1.5 Ok\r\n", b"250 2.1.5 Ok\r\n", DATA_354]
    # The message, then RSET, NOOP and QUIT in the same write.
    bs.send(dot_stuff(message) + b"RSET\r\nNOOP\r\nQUIT\r\n")
    bs.queued()
    assert [bs.reply() for _ in range(3)] == [
        b"250 2.0.0 Ok\r\n", b"250 2.0.0 Ok\r\n", b"221 2.0.0 Bye\r\n"]
    rc, out, _ = bs.finish()
    assert (rc, out) == (0, b"")
    for addr in (DEMO, OTHER):
        (data,) = p.wait_messages(1, addr=addr)
        assert split_received(data)[1] == message


def test_bs_errors_and_replies(server, bs_start):
    bs = bs_start(server)
    assert bs.reply() == BS_GREETING
    bs.expect(b"MAIL FROM:<sender@example.org>", b"503 5.5.1 Send HELO/EHLO first")
    bs.expect(b"HELO client.example.org", b"250 " + HOSTNAME.encode())
    bs.expect(b"RCPT TO:<%s>" % DEMO.encode(), b"503 5.5.1 Error: need MAIL command")
    bs.expect(b"DATA", b"503 5.5.1 Error: need MAIL command")
    bs.expect(b"BDAT 10 LAST", b"500 5.5.2 Error: command not recognized")
    bs.expect(b"NOOP " + b"x" * 600, b"500 5.5.2 Line too long")
    bs.expect(b"VRFY demo", b"252 2.5.2 Cannot VRFY user, but will accept "
              b"message and attempt delivery")
    bs.expect(b"HELP", b"214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET "
              b"NOOP QUIT HELP VRFY")
    bs.expect(b"MAIL FROM:<sender@example.org> SIZE=999999999",
              b"552 5.3.4 Message size exceeds fixed limit")
    bs.expect(b"MAIL FROM:<sender@example.org>", b"250 2.1.0 Ok")
    bs.expect(b"MAIL FROM:<sender@example.org>",
              b"503 5.5.1 Error: nested MAIL command")
    bs.expect(b"DATA", b"503 5.5.1 Error: need RCPT command")
    bs.expect(b"RCPT TO:<>", b"553 5.1.3 Bad recipient address syntax")
    bs.expect(b"RCPT TO:<%s>" % DEMO.encode(), b"250 2.1.5 Ok")
    bs.expect(b"DATA", b"354 End data with <CR><LF>.<CR><LF>")
    # bare_lf = reject (the default): the whole message is refused.
    bs.send(b"Subject: bare\nx\r\n.\r\n")
    assert bs.reply() == b"554 5.6.0 Bare <LF> received\r\n"
    bs.expect(b"RCPT TO:<%s>" % DEMO.encode(), b"503 5.5.1 Error: need MAIL command")
    bs.expect(b"QUIT", b"221 2.0.0 Bye")
    rc, out, _ = bs.finish()
    assert (rc, out) == (0, b"")
    server.assert_no_more(0)
    assert drop_dir_entries(server) == []


def test_bs_eof_in_data_queues_nothing(server, bs_start):
    bs = bs_start(server)
    assert bs.reply() == BS_GREETING
    bs.send(b"EHLO client.example.org\r\n")
    assert bs.reply() == BS_EHLO
    bs.expect(b"MAIL FROM:<sender@example.org>", b"250 2.1.0 Ok")
    bs.expect(b"RCPT TO:<%s>" % DEMO.encode(), b"250 2.1.5 Ok")
    bs.expect(b"DATA", b"354 End data with <CR><LF>.<CR><LF>")
    bs.send(b"Subject: cut\r\n\r\nhalf a message\r\n")
    rc, out, err = bs.finish()
    assert rc == 76, (rc, err)          # EX_PROTOCOL
    assert out == b""
    assert err == (b"sendmail: end of input in the middle of a transaction; "
                   b"nothing queued\n")
    server.assert_no_more(0, settle=1.5)
    # Not half-queued: no drop file, no temporary file.
    assert drop_dir_entries(server) == []


def test_bs_refuses_operands_and_other_modes(server):
    r = sendmail(server, ["-bs", DEMO], b"", check=False)
    assert (r.returncode, r.stdout) == (64, b""), r
    assert r.stderr == b"sendmail: -bs takes no address operands\n"
    r = sendmail(server, ["-bp"], b"", check=False)
    assert r.returncode == 64 and r.stderr == b"sendmail: -bp is not supported\n", r
    # End of input right after the greeting: a session without mail.
    r = sendmail(server, ["-bs"], b"", check=False)
    assert (r.returncode, r.stdout, r.stderr) == (0, BS_GREETING, b""), r


def test_bs_as_unprivileged_user_is_believed_for_its_uid_only(server, bs_start):
    """The sender is taken as given; the pickup names the file's owner."""
    if os.getuid() != 0:
        pytest.skip("needs root to run as another user")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody'")
    # postino-sendmail(1) NOTES: local users need search rights on data_dir.
    os.chmod(server.data_dir, os.stat(server.data_dir).st_mode | 0o001)
    message = b"Subject: from nobody\r\n\r\nhi\r\n"
    bs = bs_start(server, user=nobody.pw_uid)
    assert bs.reply() == BS_GREETING
    bs.expect(b"HELO localhost", b"250 " + HOSTNAME.encode())
    bs_transaction(bs, "root@example.org", [DEMO], message)
    bs.expect(b"QUIT", b"221 2.0.0 Bye")
    rc, _, err = bs.finish()
    assert rc == 0, err
    (data,) = server.wait_messages(1)
    received, body = split_received(data)
    assert body == message
    assert received.startswith(b"Received: by %s (postino sendmail, uid %d nobody)"
                               % (HOSTNAME.encode(), nobody.pw_uid))
    assert server.log_has("uid=%d from=<root@example.org>" % nobody.pw_uid)
