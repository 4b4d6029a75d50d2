"""Real clients (swaks, smtplib) deliver to demo@example.test over plain
SMTP and STARTTLS on the mx listener and over implicit TLS on the
submissions listener; the Maildir file is one Received: header followed
by exactly the bytes sent (R1.7, R5.2, R7.8)."""
import os
import re
import signal
import smtplib
import subprocess
import time
import uuid

from conftest import (DEMO, DEMO_PASSWORD, HOSTNAME, SENDER, dot_stuff, split_received, unfold,
                      unverified_context, wait_pid_gone)

HELO = "client.example.org"


def make_message(tag):
    """A message exercising dot-stuffing and 8-bit UTF-8 text; ends in CRLF."""
    mid = "<%s.%s@example.org>" % (tag, uuid.uuid4().hex)
    body = (
        "From: Sender <sender@example.org>\r\n"
        "To: Demo <demo@example.test>\r\n"
        "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= %s\r\n"
        "Message-Id: %s\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "Grüße aus Köln — 日本語のテキスト, ça va?\r\n"
        ".a line that begins with a dot\r\n"
        "..two dots\r\n"
        ".\r\n"
        " .not at the start\r\n"
        "\r\n"
        "last line\r\n"
    ) % (tag, mid)
    return body.encode("utf-8"), mid


def check_delivered(data, msg, qid, tls, auth=False):
    received, rest = split_received(data)
    assert rest == msg, "delivered bytes differ from the bytes sent"
    assert received.startswith(("Received: from %s (" % HELO).encode()), received
    u = unfold(received)
    assert b"[127.0.0.1]" in u, received
    # RFC 3848: S for TLS, A for AUTH
    proto = b"ESMTP" + (b"S" if tls else b"") + (b"A" if auth else b"")
    assert re.search(rb"by " + re.escape(HOSTNAME.encode()) + rb" \(postino\) with "
                     + proto + rb"\s+id\s+" + re.escape(qid.encode()) + rb"\b", u), received
    if tls:
        assert re.search(rb"\(using TLSv1\.[23] with cipher [A-Z0-9_-]+", u), received
    else:
        assert b"using TLS" not in u and b"ESMTPS" not in u, received


def find_by_mid(server, mid, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        found = [d for d in server.messages().values() if mid.encode() in d]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def smtplib_send(client, msg, sender=SENDER):
    client.ehlo(HELO)
    code, resp = client.mail(sender, ["BODY=8BITMIME"])
    assert code == 250, resp
    code, resp = client.rcpt(DEMO)
    assert code == 250, resp
    code, resp = client.data(msg)
    assert code == 250, resp
    m = re.fullmatch(rb"2\.0\.0 Ok: queued as (\S+)", resp)
    assert m, resp
    return m.group(1).decode()


def test_smtplib_plain(server):
    msg, mid = make_message("plain")
    with smtplib.SMTP("127.0.0.1", server.mx_port, local_hostname=HELO, timeout=10) as c:
        qid = smtplib_send(c, msg)
        c.quit()
    (data,) = server.wait_messages(1)
    check_delivered(data, msg, qid, tls=False)


def test_smtplib_starttls(server):
    msg, mid = make_message("starttls")
    with smtplib.SMTP("127.0.0.1", server.mx_port, local_hostname=HELO, timeout=10) as c:
        c.ehlo(HELO)
        assert c.has_extn("starttls")
        code, resp = c.starttls(context=unverified_context())
        assert code == 220 and resp == b"2.0.0 Ready to start TLS"
        assert not c.has_extn("starttls"), "STARTTLS offered again inside TLS"
        qid = smtplib_send(c, msg)
        c.quit()
    (data,) = server.wait_messages(1)
    check_delivered(data, msg, qid, tls=True)


def test_smtplib_submissions_implicit_tls(server):
    msg, mid = make_message("smtps")
    with smtplib.SMTP_SSL("127.0.0.1", server.subs_port, local_hostname=HELO, timeout=10,
                          context=unverified_context()) as c:
        c.ehlo(HELO)
        c.login(DEMO, DEMO_PASSWORD)            # R2.6: AUTH first
        qid = smtplib_send(c, msg, sender=DEMO)  # R3.2: as itself
        assert not c.has_extn("starttls")
        c.quit()
    (data,) = server.wait_messages(1)
    check_delivered(data, msg, qid, tls=True, auth=True)


def test_several_messages_one_session(server):
    sent = []
    with smtplib.SMTP("127.0.0.1", server.mx_port, local_hostname=HELO, timeout=10) as c:
        for i in range(3):
            msg, mid = make_message("multi%d" % i)
            sent.append((msg, mid, smtplib_send(c, msg)))
            c.rset()
        c.quit()
    server.wait_messages(3)
    for msg, mid, qid in sent:
        found = find_by_mid(server, mid)
        assert len(found) == 1, mid
        check_delivered(found[0], msg, qid, tls=False)
    assert len({q for _, _, q in sent}) == 3, "queue ids must differ"
    server.assert_no_more(3)


def run_swaks(server, tmp_path, msg, *opts, port=None, sender=SENDER):
    path = tmp_path / "data.eml"
    # --no-data-fixup sends the file as is, then CRLF: give the wire form
    # (dot-stuffed) without the final CRLF.
    path.write_bytes(dot_stuff(msg)[:-2])
    cmd = ["swaks", "--server", "127.0.0.1", "--port", str(port or server.mx_port),
           "--helo", HELO, "--from", sender, "--to", DEMO,
           "--data", "@%s" % path, "--no-data-fixup", "--timeout", "10"] + list(opts)
    r = subprocess.run(cmd, capture_output=True, timeout=60)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, "swaks exit %d\n%s\n%s" % (r.returncode, out, r.stderr.decode())
    m = re.search(r"<[-~]  250 2\.0\.0 Ok: queued as (\S+)", out)
    assert m, out
    return m.group(1), out


def test_swaks_plain(server, tmp_path):
    msg, mid = make_message("swaks")
    qid, out = run_swaks(server, tmp_path, msg)
    (data,) = server.wait_messages(1)
    check_delivered(data, msg, qid, tls=False)


def test_swaks_starttls(server, tmp_path):
    msg, mid = make_message("swakstls")
    qid, out = run_swaks(server, tmp_path, msg, "--tls")
    assert "STARTTLS" in out
    (data,) = server.wait_messages(1)
    check_delivered(data, msg, qid, tls=True)


def test_swaks_implicit_tls_submissions(server, tmp_path):
    msg, mid = make_message("swakstlsc")
    qid, out = run_swaks(server, tmp_path, msg, "--tlsc", "-a", "PLAIN", "-au", DEMO,
                         "-ap", DEMO_PASSWORD, port=server.subs_port, sender=DEMO)
    (data,) = server.wait_messages(1)
    check_delivered(data, msg, qid, tls=True, auth=True)


def test_swaks_default_message(server):
    """The README's first message, as is."""
    r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % server.mx_port,
                        "--to", DEMO, "--from", SENDER, "--helo", HELO,
                        "--header", "Subject: hello", "--timeout", "10"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    (data,) = server.wait_messages(1)
    received, rest = split_received(data)
    assert b"Subject: hello\r\n" in rest
    assert rest.endswith(b"\r\n") and b"\n" not in rest.replace(b"\r\n", b"")


def test_maildir_layout(server):
    msg, mid = make_message("layout")
    with smtplib.SMTP("127.0.0.1", server.mx_port, local_hostname=HELO, timeout=10) as c:
        smtplib_send(c, msg)
        c.quit()
    server.wait_messages(1)
    md = server.maildir()
    for sub in ("tmp", "new", "cur"):
        assert os.path.isdir(os.path.join(md, sub)), sub
    assert os.listdir(os.path.join(md, "tmp")) == []
    assert os.path.isfile(server.store_file)
    assert os.path.isfile(os.path.join(server.data_dir, "tls", "cert.pem"))


def test_sigterm_stops_all_three(server):
    pids = server.pids()
    assert set(pids) == {"parent", "net", "store"}, pids
    t0 = time.monotonic()
    os.kill(pids["parent"], signal.SIGTERM)
    rc = server.proc.wait(timeout=15)
    for role in ("net", "store"):
        assert wait_pid_gone(pids[role], 5), "%s (%d) still running" % (role, pids[role])
    elapsed = time.monotonic() - t0
    assert rc == 0, rc
    assert elapsed < 10, "shutdown took %.1fs" % elapsed


def test_restart_same_data_dir(server):
    msg, mid = make_message("before")
    with smtplib.SMTP("127.0.0.1", server.mx_port, local_hostname=HELO, timeout=10) as c:
        smtplib_send(c, msg)
        c.quit()
    server.wait_messages(1)
    server.restart()
    msg2, mid2 = make_message("after")
    with smtplib.SMTP("127.0.0.1", server.mx_port, local_hostname=HELO, timeout=10) as c:
        smtplib_send(c, msg2)
        c.quit()
    server.wait_messages(2)
    assert len(find_by_mid(server, mid)) == 1
    assert len(find_by_mid(server, mid2)) == 1


def test_alias_and_catch_all(make_server):
    """R3.8: aliases and a per-domain catch-all deliver to the target."""
    p = make_server(start=False)
    p.add_alias("info@example.test", DEMO)
    p.start()
    with p.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        c.expect("RCPT TO:<nobody@example.test>", "550 5.1.1 <nobody@example.test> User unknown")
        c.expect("RCPT TO:<info@example.test>", "250 2.1.5 Ok")
        c.expect("DATA", "354 End data with <CR><LF>.<CR><LF>")
        m1, mid1 = make_message("alias")
        c.send(dot_stuff(m1))
        assert c.reply().raw.startswith(b"250 2.0.0 Ok: queued as ")
    (data,) = p.wait_messages(1)
    assert split_received(data)[1] == m1
    p.stop()
    p.add_alias("@example.test", DEMO)
    p.start()
    with p.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        c.expect("RCPT TO:<nobody@example.test>", "250 2.1.5 Ok")
        c.expect("RCPT TO:<user@example.org>", "550 5.7.1 <user@example.org> Relay access denied")
        c.expect("DATA", "354 End data with <CR><LF>.<CR><LF>")
        m2, mid2 = make_message("catchall")
        c.send(dot_stuff(m2))
        assert c.reply().raw.startswith(b"250 2.0.0 Ok: queued as ")
    p.wait_messages(2)
    assert len(find_by_mid(p, mid2)) == 1
    p.assert_no_more(2)


def test_smtputf8(server):
    """SMTPUTF8 is offered: an internationalized sender and 8-bit
    headers are accepted and delivered as sent."""
    m = ("From: Pelé <pelé@exämple.org>\r\nSubject: Grüße\r\nMessage-Id: <%s@example.org>\r\n"
         "\r\nçà\r\n" % uuid.uuid4().hex).encode("utf-8")
    with server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<pelé@exämple.org> SMTPUTF8 BODY=8BITMIME".encode("utf-8"),
                 "250 2.1.0 Ok")
        c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")
        c.expect("DATA", "354 End data with <CR><LF>.<CR><LF>")
        c.send(dot_stuff(m))
        assert c.reply().raw.startswith(b"250 2.0.0 Ok: queued as ")
    (data,) = server.wait_messages(1)
    assert split_received(data)[1] == m


def test_same_mailbox_twice_is_delivered_once(server):
    """A recipient given twice, or reached directly and through an alias,
    gets one copy (as Postfix's cleanup does)."""
    server.add_alias("team@example.test", DEMO)
    msg = b"Subject: once\r\n\r\nonly one copy\r\n"
    with smtplib.SMTP("127.0.0.1", server.mx_port, timeout=10) as c:
        c.sendmail(SENDER, [DEMO, "Demo@Example.TEST", "team@example.test"], msg)
    (data,) = server.wait_messages(1)
    assert split_received(data)[1] == msg
    server.assert_no_more(1)
