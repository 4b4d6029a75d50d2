"""
sendmail(1) (R7.6): the command drops a file into <data_dir>/maildrop/,
the store role picks it up, queues it and delivers it.
"""
import os
import subprocess
import time

from conftest import BUILD, DEMO, HOSTNAME


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
