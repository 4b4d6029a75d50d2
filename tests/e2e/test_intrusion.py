"""
Intrusion prevention (R4.4) and rate limits (R4.6), end to end: failed
logins over SMTP AUTH and POP3 from one address share one budget and
block it; a blocked address is refused at connect with 421 (and -ERR on
POP3), survives a restart, and is lifted by `postino-admin block del`;
trusted hosts and the bypass list are never blocked; an administrator
who mistypes and then logs in starts over; unknown recipients and
connection floods block too; the rate limits refuse with replies that
name the limit.  Every block and unblock is one log line.
"""
import base64
import socket
import time

from conftest import DEMO, DEMO_PASSWORD, SENDER, SMTPConn, add_pop3s, unverified_context

BAD_PLAIN = base64.b64encode(b"\0" + DEMO.encode() + b"\0wrong").decode()
GOOD_PLAIN = base64.b64encode(b"\0" + DEMO.encode() + b"\0" + DEMO_PASSWORD.encode()).decode()


def blocked_reply(ip):
    return b"421 4.7.0 Client host [%s] blocked, try again later\r\n" % ip.encode()


def server(make_server, **intrusion):
    keys = {"bypass": "127.0.0.1", "block_minutes": "30"}
    keys.update({k: str(v) for k, v in intrusion.items()})
    p = make_server(intrusion=keys, start=False)
    add_pop3s(p)
    p.start()
    return p


def raw(port, ip, tls=False):
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(ip, 0))
    if tls:
        s = unverified_context().wrap_socket(s)
    return SMTPConn(s)


def auth_attempt(p, ip, good=False):
    """One AUTH PLAIN on submissions from ip: 'ok', 'fail' or the
    refusal at connect (bytes)."""
    c = raw(p.subs_port, ip, tls=True)
    try:
        first = c.reply()
        if first.code != 220:
            return first.raw
        c.ehlo()
        r = c.cmd("AUTH PLAIN " + (GOOD_PLAIN if good else BAD_PLAIN))
        return "ok" if r.code == 235 else "fail"
    finally:
        c.close()


def pop3_attempt(p, ip, password):
    s = socket.create_connection(("127.0.0.1", p.pop3s_port), timeout=10, source_address=(ip, 0))
    s = unverified_context().wrap_socket(s)
    f = s.makefile("rb")
    try:
        first = f.readline()
        if not first.startswith(b"+OK"):
            return first
        s.sendall(b"USER %s\r\n" % DEMO.encode())
        f.readline()
        s.sendall(b"PASS %s\r\n" % password.encode())
        r = f.readline()
        s.sendall(b"QUIT\r\n")
        return "ok" if r.startswith(b"+OK") else "fail"
    finally:
        s.close()


def test_brute_force_is_blocked(make_server):
    """50 wrong passwords from one address: the fifth failure blocks it;
    what follows is refused at connect, on SMTP and POP3 alike."""
    p = server(make_server, max_auth_failures=5)
    ip = "127.0.0.81"
    results = [auth_attempt(p, ip) for _ in range(50)]
    assert results[:5] == ["fail"] * 5
    assert results[5:] == [blocked_reply(ip)] * 45
    assert p.log_has("intrusion event=block address=[%s] reason=auth-failures count=5 "
                     "minutes=30" % ip)
    assert pop3_attempt(p, ip, DEMO_PASSWORD) == \
        b"-ERR [SYS/TEMP] Client host [%s] blocked, try again later.\r\n" % ip.encode()
    # the right password does not help a blocked address
    assert auth_attempt(p, ip, good=True) == blocked_reply(ip)
    # another address is not affected
    assert auth_attempt(p, "127.0.0.82", good=True) == "ok"
    r = p.admin("block", "list")
    assert r.stdout.startswith(ip + " ") and "auth-failures" in r.stdout, r.stdout


def test_smtp_and_pop3_share_one_budget(make_server):
    p = server(make_server, max_auth_failures=5)
    ip = "127.0.0.83"
    assert [auth_attempt(p, ip) for _ in range(3)] == ["fail"] * 3
    assert [pop3_attempt(p, ip, "wrong") for _ in range(2)] == ["fail"] * 2
    assert auth_attempt(p, ip) == blocked_reply(ip)


def test_trusted_and_bypass_never_blocked(make_server):
    p = server(make_server, max_auth_failures=3, bypass="127.0.0.1, 127.0.0.85")
    p.admin("trusted", "add", "127.0.0.84")
    for ip in ("127.0.0.84", "127.0.0.85"):
        assert [auth_attempt(p, ip) for _ in range(20)] == ["fail"] * 20
        assert auth_attempt(p, ip, good=True) == "ok"
    assert "event=block" not in p.read_log()


def test_mistyping_admin_is_not_locked_out(make_server):
    """Three wrong passwords, then the right one, again and again: the
    success forgets the failures (R4.4)."""
    p = server(make_server, max_auth_failures=5)
    ip = "127.0.0.86"
    for _ in range(5):
        assert [auth_attempt(p, ip) for _ in range(3)] == ["fail"] * 3
        assert auth_attempt(p, ip, good=True) == "ok"
    assert pop3_attempt(p, ip, "wrong") == "fail"
    assert pop3_attempt(p, ip, DEMO_PASSWORD) == "ok"
    assert "event=block" not in p.read_log()


def test_block_survives_restart_and_del_lifts_it(make_server):
    p = server(make_server, max_auth_failures=2)
    ip = "127.0.0.87"
    assert [auth_attempt(p, ip) for _ in range(2)] == ["fail"] * 2
    assert auth_attempt(p, ip) == blocked_reply(ip)
    p.restart()
    assert auth_attempt(p, ip) == blocked_reply(ip)
    r = p.admin("block", "del", ip)
    assert r.returncode == 0
    assert auth_attempt(p, ip, good=True) == "ok"
    # the daemon logs the end of the block (within its 10 s tick)
    assert p.log_has("intrusion event=unblock address=[%s] reason=admin was=auth-failures" % ip,
                     timeout=15)
    r = p.admin("block", "del", ip, check=False)
    assert r.returncode == 1 and "no block for %s" % ip in r.stdout + r.stderr


def test_unknown_recipients_block(make_server):
    p = server(make_server, max_unknown_rcpts=3)
    ip = "127.0.0.88"
    c = raw(p.mx_port, ip)
    assert c.reply().code == 220
    c.ehlo()
    c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
    for i in range(3):
        c.expect("RCPT TO:<nobody%d@example.test>" % i,
                 "550 5.1.1 <nobody%d@example.test> User unknown" % i)
    c.close()
    assert p.log_has("intrusion event=block address=[%s] reason=unknown-recipients count=3" % ip)
    c = raw(p.mx_port, ip)
    assert c.reply().raw == blocked_reply(ip)
    c.wait_eof()


def test_connection_flood_blocks(make_server):
    p = server(make_server, max_connections_per_minute=5)
    ip = "127.0.0.89"
    for _ in range(4):
        c = raw(p.mx_port, ip)
        assert c.reply().code == 220
        c.close()
    # the fifth connection in a minute passes the threshold: refused
    c = raw(p.mx_port, ip)
    assert c.reply().raw == blocked_reply(ip)
    assert p.log_has("intrusion event=block address=[%s] reason=connections count=5" % ip)


def test_protocol_errors_block(make_server):
    p = server(make_server, max_protocol_errors=6)
    ip = "127.0.0.90"
    for _ in range(2):
        c = raw(p.mx_port, ip)
        assert c.reply().code == 220
        for _ in range(3):
            assert c.cmd("BOGUS").code == 500
        c.cmd("QUIT")
        c.close()
    assert p.log_has("intrusion event=block address=[%s] reason=protocol-errors count=6" % ip)
    c = raw(p.mx_port, ip)
    assert c.reply().raw == blocked_reply(ip)


def send_one(c, sender, rcpts):
    c.expect("MAIL FROM:<%s>" % sender, "250 2.1.0 Ok")
    for r in rcpts:
        c.expect("RCPT TO:<%s>" % r, "250 2.1.5 Ok")
    c.expect("DATA", "354 End data with <CR><LF>.<CR><LF>")
    c.send(b"Subject: rate\r\n\r\nhi\r\n.\r\n")
    c.queued_id(c.reply())


def test_rate_limit_per_account(make_server):
    p = make_server(extra_config="[ratelimit]\nmessages_per_account = 2\n"
                                 "recipients_per_account = 3\n",
                    intrusion={"bypass": "127.0.0.1"})
    c = raw(p.subs_port, "127.0.0.91", tls=True)
    assert c.reply().code == 220
    c.ehlo()
    assert c.cmd("AUTH PLAIN " + GOOD_PLAIN).code == 235
    send_one(c, DEMO, [DEMO, "a@far.example"])
    # a third recipient in the hour is the last one allowed
    c.expect("MAIL FROM:<%s>" % DEMO, "250 2.1.0 Ok")
    c.expect("RCPT TO:<b@far.example>", "250 2.1.5 Ok")
    c.expect("RCPT TO:<c@far.example>",
             "452 4.5.3 Recipient rate limit of 3 an hour reached for %s" % DEMO)
    c.expect("DATA", "354 End data with <CR><LF>.<CR><LF>")
    c.send(b"Subject: rate\r\n\r\nhi\r\n.\r\n")
    c.queued_id(c.reply())
    c.expect("MAIL FROM:<%s>" % DEMO,
             "451 4.7.1 Message rate limit of 2 an hour reached for %s" % DEMO)
    c.close()


def test_rate_limit_per_ip(make_server):
    p = make_server(extra_config="[ratelimit]\nrecipients_per_ip = 2\n",
                    intrusion={"bypass": "127.0.0.1"})
    c = raw(p.mx_port, "127.0.0.92")
    assert c.reply().code == 220
    c.ehlo()
    send_one(c, SENDER, [DEMO, DEMO])
    c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
    c.expect("RCPT TO:<%s>" % DEMO,
             "452 4.5.3 Recipient rate limit of 2 an hour reached for [127.0.0.92]")
    c.close()
    # another address has its own count
    c = raw(p.mx_port, "127.0.0.93")
    assert c.reply().code == 220
    c.ehlo()
    send_one(c, SENDER, [DEMO])
    c.close()


def test_failures_net_refuses_alone_count_too(make_server):
    """A login net refuses without asking store (PLAIN naming another
    authorization identity, an over-long POP3 password) counts and is
    logged like any other failed login."""
    p = server(make_server, max_auth_failures=4)
    ip = "127.0.0.94"
    proxy = base64.b64encode(b"other@example.test\0" + DEMO.encode() + b"\0" +
                             DEMO_PASSWORD.encode()).decode()
    for _ in range(2):
        c = raw(p.subs_port, ip, tls=True)
        assert c.reply().code == 220
        c.ehlo()
        assert c.cmd("AUTH PLAIN " + proxy).raw == \
            b"535 5.7.8 Authentication credentials invalid\r\n"
        c.close()
    assert p.log_has("address=[%s] service=smtp sasl_method=PLAIN sasl_username=- result=fail failures=2" % ip)
    assert [pop3_attempt(p, ip, "x" * 300) for _ in range(2)] == ["fail", "fail"]
    assert p.log_has("intrusion event=block address=[%s] reason=auth-failures count=4" % ip)
