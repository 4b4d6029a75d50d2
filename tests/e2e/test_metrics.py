"""R7.5: the Prometheus endpoint ([metrics] listen) and postino-admin stats.

A known sequence of sessions must move the counters by exactly what it
did; the text must pass Prometheus' own checker (promtool); the admin
command must show the same numbers; and the endpoint, an attack surface
like any listener, must answer a bad request with a clear error and a
close, in bounded time, and stay up.
"""
import base64
import poplib
import re
import smtplib
import socket
import subprocess
import time

import pytest

from conftest import (DEMO, DEMO_PASSWORD, SENDER, add_pop3s, extra_ports, free_port,
                      replace_submissions, unverified_context)

WAIT = 10.0
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


@pytest.fixture
def srv(make_server):
    p = make_server(metrics=True, start=False)
    add_pop3s(p)
    p.start()
    return p


def http(p, request, timeout=WAIT):
    """Send request (bytes) to the endpoint; everything until the close."""
    with socket.create_connection(("127.0.0.1", p.metrics_port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk


def curl(p):
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "-D", "-",
                        "http://127.0.0.1:%d/metrics" % p.metrics_port],
                       capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200 OK\r\n"), head
    assert "Content-Type: text/plain; version=0.0.4; charset=utf-8" in head
    length = int(re.search(r"Content-Length: (\d+)", head).group(1))
    assert length == len(body.encode())
    return body


def samples(text):
    """{'name{labels}': value} of every sample line; comments skipped."""
    res = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        key = m.group(1) + (m.group(2) or "")
        assert key not in res, "sample twice: %s" % key
        res[key] = float(m.group(3))
    return res


def rej(stage, reason, cls):
    return ('postino_smtp_rejections_total{stage="%s",reason="%s",class="%s"}'
            % (stage, reason, cls))


def auth(service, mech, result):
    return ('postino_auth_total{service="%s",mechanism="%s",result="%s"}'
            % (service, mech, result))


TX = "postino_smtp_transaction_seconds"


def send_local(p, n):
    for i in range(n):
        with smtplib.SMTP("127.0.0.1", p.mx_port, timeout=WAIT) as c:
            c.sendmail(SENDER, [DEMO], "Subject: m%d\r\n\r\nbody %d\r\n" % (i, i))


def relay_refused(p, n):
    with smtplib.SMTP("127.0.0.1", p.mx_port, timeout=WAIT) as c:
        c.ehlo("client.example.org")
        c.mail(SENDER)
        for i in range(n):
            code, _ = c.rcpt("someone%d@elsewhere.example.net" % i)
            assert code == 550
        c.rset()


def size_refused(p):
    with smtplib.SMTP("127.0.0.1", p.mx_port, timeout=WAIT) as c:
        c.ehlo("client.example.org")
        code, _ = c.mail(SENDER, ["SIZE=999999999999"])
        assert code == 552


def logins(p):
    ctx = unverified_context()
    with smtplib.SMTP_SSL("127.0.0.1", p.subs_port, timeout=WAIT, context=ctx) as c:
        c.ehlo("client.example.org")
        c.user, c.password = DEMO, "wrong-password"
        with pytest.raises(smtplib.SMTPAuthenticationError):
            c.auth("PLAIN", c.auth_plain)
    with smtplib.SMTP_SSL("127.0.0.1", p.subs_port, timeout=WAIT, context=ctx) as c:
        c.ehlo("client.example.org")
        c.user, c.password = DEMO, DEMO_PASSWORD
        c.auth("PLAIN", c.auth_plain)
    pop = poplib.POP3_SSL("127.0.0.1", p.pop3s_port, timeout=WAIT, context=ctx)
    pop.user(DEMO)
    pop.pass_(DEMO_PASSWORD)
    pop.quit()


def wait_for(p, want):
    """The samples once every key of want has its value (bounded): the
    deliveries and the ends of sessions come a moment after the reply."""
    deadline = time.monotonic() + WAIT
    while True:
        got = samples(curl(p))
        if all(got.get(k) == v for k, v in want.items()) or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def test_counters_move_by_the_sequence(srv):
    before = samples(curl(srv))
    send_local(srv, 3)
    relay_refused(srv, 2)
    size_refused(srv)
    logins(srv)
    key = 'postino_deliveries_total{transport="maildir",outcome="delivered"}'
    idle = {'postino_connections_current{listener="%s"}' % lst: 0
            for lst in ("mx", "submissions", "pop3s")}
    after = wait_for(srv, dict(idle, **{key: before[key] + 3}))

    def delta(k):
        return after[k] - before[k]

    assert delta("postino_messages_accepted_total") == 3
    assert delta(key) == 3
    assert delta(rej("rcpt", "relay", "permanent")) == 2
    assert delta(rej("mail", "size", "permanent")) == 1
    assert delta(auth("smtp", "PLAIN", "failure")) == 1
    assert delta(auth("smtp", "PLAIN", "success")) == 1
    # POP3 USER/PASS is verified, and counted, as PLAIN
    assert delta(auth("pop3", "PLAIN", "success")) == 1
    # 3 + 1 + 1 SMTP sessions on mx; 2 on submissions; 1 POP3
    assert delta('postino_connections_total{listener="mx"}') == 5
    assert delta('postino_connections_total{listener="submissions"}') == 2
    assert delta('postino_connections_total{listener="pop3s"}') == 1
    assert after['postino_connections_peak{listener="mx"}'] >= 1
    for lst in ("mx", "submissions", "pop3s"):
        assert after['postino_connections_current{listener="%s"}' % lst] == 0
    # only the 3 messages reached the end of DATA
    assert delta('%s_count{listener="mx"}' % TX) == 3
    assert delta('%s_count{listener="submissions"}' % TX) == 0
    assert '%s_count{listener="pop3s"}' % TX not in after
    assert after["postino_queue_messages"] == 0
    assert after["postino_queue_oldest_seconds"] == 0
    # nothing else moved: every other counter is where it was
    moved = {k for k in after if k.endswith("_total") or "_total{" in k
             if after[k] != before.get(k)}
    assert moved == {
        "postino_messages_accepted_total", key, rej("rcpt", "relay", "permanent"),
        rej("mail", "size", "permanent"), auth("smtp", "PLAIN", "failure"),
        auth("smtp", "PLAIN", "success"), auth("pop3", "PLAIN", "success"),
        'postino_connections_total{listener="mx"}',
        'postino_connections_total{listener="submissions"}',
        'postino_connections_total{listener="pop3s"}'}


def test_outbound_deferred_and_the_queue(srv):
    """A relayed message whose domain cannot be resolved (the tests' dead
    DNS port): one outbound job, one deferred SMTP delivery, and the
    message waits in the queue."""
    before = samples(curl(srv))
    with smtplib.SMTP_SSL("127.0.0.1", srv.subs_port, timeout=WAIT,
                          context=unverified_context()) as c:
        c.ehlo("client.example.org")
        c.user, c.password = DEMO, DEMO_PASSWORD
        c.auth("PLAIN", c.auth_plain)
        c.sendmail(DEMO, ["friend@far.example.net"], "Subject: out\r\n\r\nx\r\n")
    key = 'postino_deliveries_total{transport="smtp",outcome="deferred"}'
    after = wait_for(srv, {key: before[key] + 1, "postino_outbound_sessions_current": 0})
    assert after[key] - before[key] == 1
    assert after["postino_outbound_sessions_total"] - before["postino_outbound_sessions_total"] == 1
    assert after["postino_outbound_sessions_peak"] >= 1
    assert after["postino_queue_messages"] == 1
    assert 0 <= after["postino_queue_oldest_seconds"] < 2 * WAIT
    assert after['postino_deliveries_total{transport="smtp",outcome="delivered"}'] == 0


def test_histogram_is_consistent(srv):
    send_local(srv, 2)
    got = samples(curl(srv))
    for lst in ("mx", "submissions"):
        buckets = [(k, v) for k, v in got.items()
                   if k.startswith('%s_bucket{listener="%s",' % (TX, lst))]
        assert len(buckets) == 13
        values = [v for _, v in buckets]
        assert values == sorted(values), "buckets not cumulative: %r" % buckets
        assert buckets[-1][0].endswith('le="+Inf"}')
        assert values[-1] == got['%s_count{listener="%s"}' % (TX, lst)]
    assert got['%s_count{listener="mx"}' % TX] == 2
    assert 0 < got['%s_sum{listener="mx"}' % TX] < 2 * WAIT


def test_promtool_accepts_the_text(srv):
    send_local(srv, 1)
    body = curl(srv)
    assert body.count("# TYPE ") == body.count("# HELP ") > 10
    r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                       text=True, timeout=30)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_blocks_and_connect_refusals(make_server):
    """Two failed logins block 127.0.0.82 (max_auth_failures = 2); its
    next connect is refused with 421 by the check 'blocked'."""
    p = make_server(metrics=True, intrusion={"bypass": "127.0.0.1", "max_auth_failures": "2"})
    ip = "127.0.0.82"
    bad = base64.b64encode(b"\0" + DEMO.encode() + b"\0wrong").decode()
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", p.subs_port), timeout=WAIT,
                                     source_address=(ip, 0))
        with unverified_context().wrap_socket(s) as t:
            c = smtplib.SMTP()
            c.sock, c.file = t, t.makefile("rb")
            assert c.getreply()[0] == 220
            c.ehlo("client.example.org")
            assert c.docmd("AUTH PLAIN " + bad)[0] == 535
    with socket.create_connection(("127.0.0.1", p.mx_port), timeout=WAIT,
                                  source_address=(ip, 0)) as s:
        assert s.recv(4096).startswith(b"421 4.7.0 Client host [%s] blocked" % ip.encode())
    got = samples(curl(p))
    assert got['postino_blocks_total{reason="auth-failures"}'] == 1
    assert got[rej("connect", "blocked", "temporary")] == 1
    assert got[rej("connect", "blocked", "permanent")] == 0
    assert got[auth("smtp", "PLAIN", "failure")] == 2
    assert got['postino_connections_refused_total{listener="mx"}'] == 0


def test_limits_counted_once_under_the_log_check_names(make_server):
    """Refusals net makes itself carry the check= of their log line; the
    R3.10 recipient limit, which net and store both enforce, is one
    series."""
    p = make_server(metrics=True, smtp={"max_recipients": 2, "max_message_size": 1024})
    with smtplib.SMTP("127.0.0.1", p.mx_port, timeout=WAIT) as c:
        c.ehlo("client.example.org")
        c.mail(SENDER)
        assert [c.rcpt(DEMO)[0] for _ in range(3)] == [250, 250, 452]
        code, _ = c.data("Subject: big\r\n\r\n" + "x" * 2000 + "\r\n")
        assert code == 552
    got = samples(curl(p))
    assert got[rej("rcpt", "max-recipients", "temporary")] == 1
    assert got[rej("data", "size", "permanent")] == 1
    assert got['%s_count{listener="mx"}' % TX] == 1
    assert got["postino_messages_accepted_total"] == 0
    assert "check=max-recipients" in p.read_log()
    assert "check=size" in p.read_log()


def test_admin_stats_shows_the_same_numbers(srv):
    send_local(srv, 1)
    relay_refused(srv, 1)
    key = 'postino_deliveries_total{transport="maildir",outcome="delivered"}'
    wait_for(srv, {key: 1, 'postino_connections_current{listener="mx"}': 0})
    scraped = samples(curl(srv))
    r = srv.admin("stats")
    assert not any(line.startswith("#") for line in r.stdout.splitlines())
    assert samples(r.stdout) == scraped
    assert scraped["postino_messages_accepted_total"] == 1
    assert scraped[rej("rcpt", "relay", "permanent")] == 1


def test_admin_stats_without_daemon(make_server):
    p = make_server(metrics=True, start=False)
    r = p.admin("stats", check=False)
    assert r.returncode == 1
    assert r.stderr.startswith("postino-admin: postino is not running (")


def status_line(data):
    return data.split(b"\r\n", 1)[0]


def test_bad_requests_get_an_error_and_a_close(srv):
    assert status_line(http(srv, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n")) == \
        b"HTTP/1.1 405 Method Not Allowed"
    assert b"\r\nAllow: GET\r\n" in http(srv, b"PUT /metrics HTTP/1.0\r\n\r\n")
    assert status_line(http(srv, b"GET / HTTP/1.1\r\n\r\n")) == b"HTTP/1.1 404 Not Found"
    assert status_line(http(srv, b"GET /metricsx HTTP/1.1\r\n\r\n")) == \
        b"HTTP/1.1 404 Not Found"
    for bad in (b"GARBAGE\r\n\r\n", b"GET /metrics HTTP/2.0\r\n\r\n",
                b"GET /metrics HTTP/1.1\r\nNo-Colon\r\n\r\n",
                b"GET /met\x00rics HTTP/1.1\r\n\r\n", b"get /metrics HTTP/1.1\r\n\r\n"):
        assert status_line(http(srv, bad)) == b"HTTP/1.1 400 Bad Request", bad
    # a head that never ends within the bound
    huge = b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"a" * 8000 + b"\r\n\r\n"
    assert status_line(http(srv, huge)) == b"HTTP/1.1 431 Request Header Fields Too Large"
    # the query string is no part of the path
    assert status_line(http(srv, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n")) == b"HTTP/1.1 200 OK"
    assert "postino_messages_accepted_total 0" in curl(srv)


def test_slow_request_is_cut(srv):
    """A slowloris that trickles a byte a second gets 408 in ~5 s."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", srv.metrics_port), timeout=WAIT) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\n")
        data = b""
        s.settimeout(1.0)
        for _ in range(int(WAIT)):
            try:
                s.sendall(b"X")
                chunk = s.recv(4096)
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
        elapsed = time.monotonic() - start
    assert status_line(data) == b"HTTP/1.1 408 Request Timeout"
    assert 4.5 < elapsed < 8.0
    assert "metrics event=timeout address=[127.0.0.1]" in srv.read_log()
    curl(srv)


def test_clients_are_bounded(srv):
    idle = [socket.create_connection(("127.0.0.1", srv.metrics_port), timeout=WAIT)
            for _ in range(8)]
    try:
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", srv.metrics_port), timeout=WAIT) as s:
            assert s.recv(4096) == b""      # closed at once: 8 are busy
    finally:
        for s in idle:
            s.close()
    deadline = time.monotonic() + WAIT
    while True:     # the 8 are freed as their closes are seen
        try:
            curl(srv)
            break
        except AssertionError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert srv.running()


def test_listeners_follow_a_reload(make_server):
    """A reload that replaces a listener: the text shows the new set, the
    new listener counts from 0, and a session of the removed one ends
    without harm; [metrics] listen itself takes a restart."""
    p = make_server(metrics=True)
    extra, = extra_ports(p, 1)
    held = socket.create_connection(("127.0.0.1", p.subs_port), timeout=WAIT)
    held = unverified_context().wrap_socket(held)
    assert held.recv(4096).startswith(b"220 ")
    replace_submissions(p, "extra", extra)
    r = p.admin("reload", check=False)
    assert r.returncode == 0, r.stderr
    with smtplib.SMTP("127.0.0.1", extra, timeout=WAIT) as c:
        c.sendmail(SENDER, [DEMO], "Subject: x\r\n\r\nx\r\n")
    held.sendall(b"QUIT\r\n")
    assert held.recv(4096).startswith(b"221 ")
    held.close()
    got = wait_for(p, {'postino_connections_current{listener="extra"}': 0})
    assert got['postino_connections_total{listener="extra"}'] == 1
    assert got['%s_count{listener="extra"}' % TX] == 1
    assert not any('listener="submissions"' in k for k in got)
    assert got["postino_messages_accepted_total"] == 1

    text = open(p.conf).read().replace("listen = 127.0.0.1:%d\n" % p.metrics_port,
                                       "listen = 127.0.0.1:%d\n" % free_port())
    with open(p.conf, "w") as f:
        f.write(text)
    r = p.admin("reload", check=False)
    assert r.returncode == 1
    assert "[metrics] listen changed: that takes a restart" in r.stderr, r.stderr
    curl(p)


def test_places_come_back_after_big_and_trickling_requests(srv):
    """Every place is given back in bounded time: after heads of 4 KiB
    and more (431, and a 200 with junk after it), and after clients that
    trickle a byte a second once answered."""
    huge = b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"a" * 8000 + b"\r\n\r\n"
    junk = b"GET /metrics HTTP/1.0\r\n\r\n" + b"j" * 6000
    for i in range(8):
        data = http(srv, huge if i % 2 else junk)
        assert status_line(data) in (b"HTTP/1.1 431 Request Header Fields Too Large",
                                     b"HTTP/1.1 200 OK"), data[:80]
    trickle = []
    for _ in range(8):
        s = socket.create_connection(("127.0.0.1", srv.metrics_port), timeout=WAIT)
        s.sendall(b"GET /nope HTTP/1.1\r\n\r\n")
        trickle.append(s)
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4:        # past the 2 s linger
            for s in trickle:
                try:
                    s.sendall(b"x")
                except OSError:
                    pass
            time.sleep(0.5)
        # All 16 places were given back: a scrape is served at once.
        assert "postino_messages_accepted_total" in curl(srv)
    finally:
        for s in trickle:
            s.close()


def test_bdat_over_the_size_limit_is_counted(make_server):
    p = make_server(metrics=True, smtp={"max_message_size": 1024})
    c = p.connect()
    c.ehlo()
    assert c.cmd("MAIL FROM:<%s>" % SENDER).code == 250
    assert c.cmd("RCPT TO:<%s>" % DEMO).code == 250
    c.send(b"BDAT 2014\r\n" + b"x" * 2014)
    r = c.reply()
    assert r.raw == b"552 5.3.4 Message size exceeds fixed limit\r\n", r
    c.close()
    got = samples(curl(p))
    assert got[rej("data", "size", "permanent")] == 1
    assert got['%s_count{listener="mx"}' % TX] == 1
