"""R4.5: every message is scanned by clamd (INSTREAM) before the reply
to the end of DATA or of the last BDAT chunk.  A private clamd
(tests/support/clamd.py) holds two test signatures only: EICAR and a
custom MD5 signature of an attachment.  Infected mail gets the 554 and
is never queued; when clamd is down, refuses, is silent past
[antivirus] timeout or answers an error, on_error decides (451 or
queued).  docs/replies.md lists the replies."""
import base64
import os
import re
import socket
import threading
import time

import pytest

from conftest import DEMO, SENDER, split_received
from clamd import CUSTOM_NAME, CUSTOM_PAYLOAD, EICAR, EICAR_NAME, Clamd

INFECTED = "554 5.7.1 Message rejected: virus found: %s"
SCANFAIL = "451 4.7.1 Virus scan failed, try again later"
# Any client may send a virus: not only the trusted 127.0.0.1.
CLIENT = "127.0.0.45"


def msg(tag, body):
    return (("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
             "Message-Id: <%s@example.org>\r\n\r\n" % (SENDER, DEMO, tag, tag))
            .encode() + body)


def eicar_msg(tag="eicar"):
    return msg(tag, b"Here is the test file:\r\n" + EICAR + b"\r\nbye\r\n")


def custom_msg(tag="custom"):
    """The custom signature's payload as a base64 attachment: clamd
    must decode the MIME part to match it."""
    b64 = base64.encodebytes(CUSTOM_PAYLOAD).replace(b"\n", b"\r\n")
    return (("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
             "MIME-Version: 1.0\r\n"
             "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
             "--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
             "--b1\r\nContent-Type: application/octet-stream\r\n"
             "Content-Transfer-Encoding: base64\r\n"
             "Content-Disposition: attachment; filename=\"t.bin\"\r\n\r\n"
             % (SENDER, DEMO, tag)).encode() + b64 + b"--b1--\r\n")


def clean_msg(tag="clean"):
    return msg(tag, b"Nothing to see here.\r\n.leading dot\r\n"
               b"Gr\xc3\xbc\xc3\x9fe\r\n")


def av_conf(addr, on_error=None, timeout=None):
    lines = ["[antivirus]", "clamd = %s" % addr]
    if on_error:
        lines.append("on_error = %s" % on_error)
    if timeout:
        lines.append("timeout = %d" % timeout)
    return "\n".join(lines) + "\n"


def start_server(make_server, addr, debug=False, **kw):
    p = make_server(start=False)
    p.extra_config = av_conf(addr, **kw)
    p.write_config()
    if debug:
        # log_level is a top-level key: before every section.
        with open(p.conf) as f:
            text = f.read()
        with open(p.conf, "w") as f:
            f.write("log_level = debug\n" + text)
    return p.start()


def spool_files(p):
    out = []
    for sub in ("incoming", "queue"):
        d = os.path.join(p.data_dir, "spool", sub)
        out += [sub + "/" + n for n in os.listdir(d)] if os.path.isdir(d) else []
    return out


def assert_nothing_queued(p):
    p.assert_no_more(0)
    assert spool_files(p) == []


def send_data(c, m):
    """MAIL, RCPT, DATA of m; returns the final reply."""
    c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
    c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")
    c.expect("DATA", "354 End data with <CR><LF>.<CR><LF>")
    c.send(m.replace(b"\r\n.", b"\r\n..") + b".\r\n")
    return c.reply(timeout=30)


def send_bdat(c, m, split=None):
    """MAIL, RCPT, then m in BDAT chunks (cut at split); the final reply."""
    c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
    c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")
    if split:
        a, m = m[:split], m[split:]
        c.send(b"BDAT %d\r\n" % len(a) + a)
        c.expect_reply("250 2.0.0 %d octets received" % len(a))
    c.send(b"BDAT %d LAST\r\n" % len(m) + m)
    return c.reply(timeout=30)


def delivered_body(p, n=1):
    got = p.wait_messages(n)
    return [split_received(g)[1] for g in got]


@pytest.fixture(scope="module")
def clamd():
    av = Clamd()
    try:
        av.start()
    except BaseException:
        av.cleanup()
        raise
    yield av
    av.cleanup()


# --------------------------------------------------------------------
# A working clamd
# --------------------------------------------------------------------

def test_eicar_refused_and_not_queued(make_server, clamd):
    p = start_server(make_server, clamd.socket)
    with p.connect(source=CLIENT) as c:
        c.ehlo()
        r = send_data(c, eicar_msg())
        assert r.raw == (INFECTED % EICAR_NAME).encode() + b"\r\n", r
        # The transaction is over; the session goes on.
        c.expect("RCPT TO:<%s>" % DEMO, "503 5.5.1 Error: need MAIL command")
        c.expect("NOOP", "250 2.0.0 Ok")
    assert_nothing_queued(p)
    assert p.log_has("event=virus-found virus=%s" % EICAR_NAME)
    # refused: the client's doing (fail2ban counts it)
    assert re.search(r"address=\[%s\] event=reject qid=[0-9A-F]+ from=<%s> check=virus "
                     r"status=554 dsn=5\.7\.1 host=\S+\n" % (re.escape(CLIENT), re.escape(SENDER)),
                     p.read_log())


def test_custom_signature_in_attachment(make_server, clamd):
    p = start_server(make_server, clamd.socket)
    with p.connect(source=CLIENT) as c:
        c.ehlo()
        r = send_data(c, custom_msg())
        assert r.raw == (INFECTED % CUSTOM_NAME).encode() + b"\r\n", r
    assert_nothing_queued(p)
    assert p.log_has("event=virus-found virus=%s" % CUSTOM_NAME)


def test_clean_message_delivered_byte_exact(make_server, clamd):
    p = start_server(make_server, clamd.socket, debug=True)
    m = clean_msg()
    with p.connect(source=CLIENT) as c:
        c.ehlo()
        c.queued_id(send_data(c, m))
        # A virus and then a clean message in one session.
        r = send_data(c, eicar_msg("second"))
        assert r.raw == (INFECTED % EICAR_NAME).encode() + b"\r\n", r
        m2 = clean_msg("third")
        c.queued_id(send_data(c, m2))
    assert sorted(delivered_body(p, 2)) == sorted([m, m2])
    p.assert_no_more(2)
    assert p.log_has("event=scanned")


def test_bdat(make_server, clamd):
    p = start_server(make_server, clamd.socket)
    with p.connect(source=CLIENT) as c:
        c.ehlo()
        r = send_bdat(c, eicar_msg("bdat"))
        assert r.raw == (INFECTED % EICAR_NAME).encode() + b"\r\n", r
        # EICAR cut in two by the chunks: clamd sees the whole message.
        m = eicar_msg("bdat-split")
        r = send_bdat(c, m, split=m.index(EICAR) + 20)
        assert r.raw == (INFECTED % EICAR_NAME).encode() + b"\r\n", r
        r = send_bdat(c, custom_msg("bdat-custom"), split=100)
        assert r.raw == (INFECTED % CUSTOM_NAME).encode() + b"\r\n", r
        clean = clean_msg("bdat-clean")
        c.queued_id(send_bdat(c, clean, split=50))
    assert delivered_body(p) == [clean]
    p.assert_no_more(1)


def test_large_clean_message(make_server, clamd):
    """Several INSTREAM chunks (64 KiB each)."""
    p = start_server(make_server, clamd.socket)
    m = msg("large", b"".join(b"line %06d of a long clean message\r\n" % i
                              for i in range(20000)))
    assert len(m) > 5 * 65536
    with p.connect(source=CLIENT) as c:
        c.ehlo()
        c.queued_id(send_data(c, m))
    assert delivered_body(p) == [m]


# --------------------------------------------------------------------
# clamd down, refusing, silent or failing: on_error decides
# --------------------------------------------------------------------

def test_clamd_down_tempfail(make_server):
    with Clamd() as av:
        path = av.socket
        p = start_server(make_server, path)
        with p.connect(source=CLIENT) as c:
            c.ehlo()
            c.queued_id(send_data(c, clean_msg("before")))
        p.wait_messages(1)
        av.stop()
        with p.connect(source=CLIENT) as c:
            c.ehlo()
            r = send_data(c, clean_msg("while-down"))
            assert r.raw == SCANFAIL.encode() + b"\r\n", r
            r = send_bdat(c, clean_msg("while-down-bdat"))
            assert r.raw == SCANFAIL.encode() + b"\r\n", r
    p.assert_no_more(1)
    assert spool_files(p) == []
    assert p.log_has("event=scan-failed error=\"connect %s: " % path)
    assert p.log_has("on_error=tempfail")
    # deferred, DATA and BDAT: no doing of the client's
    assert len(re.findall(r"address=\[%s\] event=defer qid=[0-9A-F]+ from=<%s> "
                          r"check=virus-scan status=451 dsn=4\.7\.1 host=\S+\n"
                          % (re.escape(CLIENT), re.escape(SENDER)), p.read_log())) == 2


def test_clamd_down_accept(make_server):
    with Clamd() as av:
        p = start_server(make_server, av.socket, on_error="accept")
        av.stop()
        m = clean_msg("accepted")
        with p.connect(source=CLIENT) as c:
            c.ehlo()
            c.queued_id(send_data(c, m))
    assert delivered_body(p) == [m]
    assert p.log_has("event=scan-failed")
    assert p.log_has("on_error=accept")


def test_no_socket_at_all(make_server, tmp_path):
    """A path where nothing ever listened, and a refused TCP port."""
    p = start_server(make_server, str(tmp_path / "no-such.sock"))
    with p.connect(source=CLIENT) as c:
        c.ehlo()
        r = send_data(c, clean_msg("nosock"))
        assert r.raw == SCANFAIL.encode() + b"\r\n", r
    assert_nothing_queued(p)


def test_refused_tcp_port(make_server):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))       # bound, never listening: refused
    port = s.getsockname()[1]
    try:
        p = start_server(make_server, "127.0.0.1:%d" % port)
        with p.connect(source=CLIENT) as c:
            c.ehlo()
            r = send_data(c, clean_msg("refused"))
            assert r.raw == SCANFAIL.encode() + b"\r\n", r
    finally:
        s.close()
    assert_nothing_queued(p)
    assert p.log_has("error=\"connect 127.0.0.1:%d: Connection refused\"" % port)


class SilentClamd:
    """Accepts on a loopback TCP port, reads everything, never answers
    (or answers `reply` once the stream has ended)."""

    def __init__(self, reply=None):
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.stop_ev = threading.Event()
        self.conns = []
        self.received = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_ev.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(c)
            c.settimeout(0.2)
            data = b""
            deadline = time.monotonic() + 60
            while not self.stop_ev.is_set() and time.monotonic() < deadline:
                try:
                    chunk = c.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                data += chunk
                if data.endswith(b"\0\0\0\0") and self.reply is not None:
                    c.sendall(self.reply)
                    break
            self.received.append(data)
            if self.reply is not None:
                c.close()

    def close(self):
        self.stop_ev.set()
        self.thread.join(10)
        for c in self.conns:
            c.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.mark.parametrize("on_error", ["tempfail", "accept"])
def test_silent_clamd_times_out(make_server, on_error):
    with SilentClamd() as fake:
        p = start_server(make_server, fake.addr, on_error=on_error, timeout=2)
        m = clean_msg("silent-" + on_error)
        with p.connect(source=CLIENT) as c:
            c.ehlo()
            t0 = time.monotonic()
            r = send_data(c, m)
            took = time.monotonic() - t0
        assert 1.5 <= took < 10, took
        # It got the whole INSTREAM exchange but the answer.
        assert fake.received and fake.received[0].startswith(b"zINSTREAM\0")
        assert fake.received[0].endswith(b"\0\0\0\0")
    if on_error == "tempfail":
        assert r.raw == SCANFAIL.encode() + b"\r\n", r
        assert_nothing_queued(p)
    else:
        queued = r.raw.startswith(b"250 2.0.0 Ok: queued as ")
        assert queued, r
        assert delivered_body(p) == [m]
    assert p.log_has("error=\"timeout (2000 ms) waiting for clamd's reply\"")


@pytest.mark.parametrize("answer", [b"stream: Can't allocate memory ERROR\0",
                                    b"UNKNOWN COMMAND\n", b""])
def test_clamd_error_reply(make_server, answer):
    with SilentClamd(reply=answer) as fake:
        p = start_server(make_server, fake.addr, timeout=5)
        with p.connect(source=CLIENT) as c:
            c.ehlo()
            r = send_data(c, clean_msg("err"))
            assert r.raw == SCANFAIL.encode() + b"\r\n", r
    assert_nothing_queued(p)
    assert p.log_has("event=scan-failed")


def test_hostile_virus_name(make_server):
    """clamd's text reaches the reply as printable ASCII only, bounded
    (an LF would end clamd's reply: tests/unit/test_clamd.c)."""
    name = b"Evil\r250 2.0.0 Ok\x01\x7f\xff" + b"A" * 300
    with SilentClamd(reply=b"stream: " + name + b" FOUND\0") as fake:
        p = start_server(make_server, fake.addr, timeout=5)
        with p.connect(source=CLIENT) as c:
            c.ehlo()
            r = send_data(c, clean_msg("evil"))
            want = (b"Evil?250 2.0.0 Ok???" + b"A" * 300)[:100]
            assert r.raw == (INFECTED % want.decode()).encode() + b"\r\n", r
            c.expect("NOOP", "250 2.0.0 Ok")
    assert_nothing_queued(p)


def test_stream_max_length_is_a_scan_failure(make_server):
    """clamd's StreamMaxLength: "INSTREAM size limit exceeded" is a
    failure of the scan, which on_error decides."""
    with Clamd(stream_max="64K") as av:
        p = start_server(make_server, av.socket)
        small = clean_msg("small")
        big = msg("big", b"".join(b"%078d\r\n" % i for i in range(4000)))
        with p.connect(source=CLIENT) as c:
            c.ehlo()
            c.queued_id(send_data(c, small))
            r = send_data(c, big)
            assert r.raw == SCANFAIL.encode() + b"\r\n", r
        assert delivered_body(p) == [small]
        p.assert_no_more(1)
        assert p.log_has("error=\"INSTREAM size limit exceeded.\"")
        p.stop()
        # on_error = accept: the big message is queued.
        p.extra_config = av_conf(av.socket, on_error="accept")
        p.write_config()
        p.start()
        with p.connect(source=CLIENT) as c:
            c.ehlo()
            c.queued_id(send_data(c, big))
        assert sorted(delivered_body(p, 2)) == sorted([small, big])
