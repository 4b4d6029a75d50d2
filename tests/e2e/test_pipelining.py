"""PIPELINING (RFC 2920) and CHUNKING/BDAT (RFC 3030)."""
import uuid

from conftest import DATA_354, DEMO, EHLO_PLAIN, QUEUED, SENDER, dot_stuff, split_received

BDAT_SYNTAX = "501 5.5.4 Syntax: BDAT size [LAST]"


def msg(tag, body=b"hello\r\n"):
    return (b"Subject: " + tag.encode() + b"\r\nMessage-Id: <" + uuid.uuid4().hex.encode()
            + b"@example.org>\r\n\r\n" + body)


def queued(r):
    assert r.raw.startswith(QUEUED) and r.raw.endswith(b"\r\n"), r
    return r.raw[len(QUEUED):-2].decode()


def bodies(server, n):
    msgs = server.wait_messages(n)
    server.assert_no_more(n)
    return sorted(split_received(d)[1] for d in msgs)


def test_whole_transaction_in_one_write(server):
    m = msg("pipelined")
    with server.connect() as c:
        c.send("EHLO client.example.org\r\n"
               "MAIL FROM:<%s>\r\n"
               "RCPT TO:<%s>\r\n"
               "RCPT TO:<nobody@example.test>\r\n"
               "RCPT TO:<user@example.org>\r\n"
               "DATA\r\n" % (SENDER, DEMO))
        r = c.replies(6)
        assert r[0].lines == EHLO_PLAIN
        assert [x.raw for x in r[1:]] == [
            b"250 2.1.0 Ok\r\n",
            b"250 2.1.5 Ok\r\n",
            b"550 5.1.1 <nobody@example.test> User unknown\r\n",
            b"550 5.7.1 <user@example.org> Relay access denied\r\n",
            (DATA_354 + "\r\n").encode(),
        ]
        c.send(dot_stuff(m))
        queued(c.reply())
        c.expect("QUIT", "221 2.0.0 Bye")
    assert bodies(server, 1) == [m]


def test_mail_pipelined_after_end_of_data(make_server):
    other = "other@example.test"
    server = make_server(accounts=(DEMO, other))
    m1, m2 = msg("first"), msg("second")
    with server.connect() as c:
        c.ehlo()
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER, DEMO, other))
        r = c.replies(4)
        assert [x.raw[:3] for x in r] == [b"250", b"250", b"250", b"354"], r
        c.send(dot_stuff(m1) + ("MAIL FROM:<%s>\r\n" % SENDER).encode())
        q1 = queued(c.reply())
        c.expect_reply("250 2.1.0 Ok")
        c.send(("RCPT TO:<%s>\r\nDATA\r\n" % DEMO).encode())
        c.expect_reply("250 2.1.5 Ok")
        c.expect_reply(DATA_354)
        c.send(dot_stuff(m2) + b"QUIT\r\n")
        q2 = queued(c.reply())
        c.expect_reply("221 2.0.0 Bye")
        c.wait_eof()
        assert q1 != q2
    got = bodies(server, 2)
    assert got == sorted([m1, m2])
    (data,) = server.wait_messages(1, addr=other)
    assert split_received(data)[1] == m1
    server.assert_no_more(1, addr=other)


def test_rset_pipelined_after_data_and_error(server):
    with server.connect() as c:
        c.ehlo()
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<nobody@example.test>\r\nDATA\r\nRSET\r\nNOOP\r\n"
               % SENDER)
        assert [x.raw for x in c.replies(5)] == [
            b"250 2.1.0 Ok\r\n",
            b"550 5.1.1 <nobody@example.test> User unknown\r\n",
            b"503 5.5.1 Error: need RCPT command\r\n",
            b"250 2.0.0 Ok\r\n",
            b"250 2.0.0 Ok\r\n",
        ]
    server.assert_no_more(0)


# --------------------------------------------------------------------
# BDAT
# --------------------------------------------------------------------

# Dots, a would-be end of data and 8-bit text: BDAT carries octets as
# they are (no dot-unstuffing, no end-of-data detection).
BINARYISH = ("Subject: bdat\r\n\r\n.leading dot\r\n..two\r\n.\r\n"
             "Grüße 日本語\r\n\r\n.\r\nafter the fake end\r\n").encode()


def test_bdat_last(server):
    m = msg("bdat", BINARYISH)
    with server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")
        c.send(b"BDAT %d LAST\r\n" % len(m) + m)
        queued(c.reply())
        c.expect("NOOP", "250 2.0.0 Ok")
    assert bodies(server, 1) == [m]


def test_bdat_two_chunks(server):
    m = msg("chunks", BINARYISH * 3)
    a, b = m[:37], m[37:]          # split inside a line
    with server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")
        c.send(b"BDAT %d\r\n" % len(a) + a)
        c.expect_reply("250 2.0.0 %d octets received" % len(a))
        c.send(b"BDAT %d LAST\r\n" % len(b) + b)
        queued(c.reply())
    assert bodies(server, 1) == [m]


def test_bdat_empty_last_chunk(server):
    m = msg("zero", BINARYISH)
    with server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")
        c.send(b"BDAT %d\r\n" % len(m) + m)
        c.expect_reply("250 2.0.0 %d octets received" % len(m))
        c.send(b"BDAT 0 LAST\r\n")
        queued(c.reply())
    assert bodies(server, 1) == [m]


def test_bdat_whole_transaction_pipelined(server):
    m = msg("bdatpipe", BINARYISH)
    with server.connect() as c:
        c.ehlo()
        c.send(("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\n" % (SENDER, DEMO)).encode()
               + b"BDAT %d LAST\r\n" % len(m) + m + b"QUIT\r\n")
        c.expect_reply("250 2.1.0 Ok")
        c.expect_reply("250 2.1.5 Ok")
        queued(c.reply())
        c.expect_reply("221 2.0.0 Bye")
        c.wait_eof()
    assert bodies(server, 1) == [m]


def test_bdat_syntax(server):
    with server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")
        c.expect("BDAT", BDAT_SYNTAX)
        c.expect("BDAT abc", BDAT_SYNTAX)
        c.expect("BDAT abc LAST", BDAT_SYNTAX)
        c.expect("BDAT -5", BDAT_SYNTAX)
        c.expect("NOOP", "250 2.0.0 Ok")
    server.assert_no_more(0)


def test_data_after_bdat(server):
    with server.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")
        c.send(b"BDAT 5\r\nabcde")
        c.expect_reply("250 2.0.0 5 octets received")
        c.expect("DATA", "503 5.5.1 Error: DATA after BDAT")
        c.expect("RSET", "250 2.0.0 Ok")
    server.assert_no_more(0)


def test_bdat_size_limit(make_server):
    p = make_server(smtp={"max_message_size": "10K"})
    big = msg("big", (b"z" * 78 + b"\r\n") * 200)      # 16 KB
    with p.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")
        c.send(b"BDAT %d LAST\r\n" % len(big) + big)
        c.expect_reply("552 5.3.4 Message size exceeds fixed limit")
        c.expect("NOOP", "250 2.0.0 Ok")
    p.assert_no_more(0)
