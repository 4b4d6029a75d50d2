"""
The account store in PostgreSQL (R7.2, [store] driver = postgres), for
several servers sharing one directory, against a private cluster
(tests/support/pg.py): two postino servers on one database see each
other's changes - an account added through one logs in on the other, a
POP-before-SMTP login on one authorizes relay on the other, a block
made on one holds on the other and is lifted everywhere by one
`postino-admin block del` - each within the lag docs/store.md states,
waited for by a bounded poll that also measures it.  PostgreSQL down or
hung stalls no SMTP or POP3 command: each server answers from its
mirror and passes its own changes on when the server is back.  `postino-admin
store migrate` copies every table of a SQLite store in one transaction
and refuses a target that holds rows unless --replace.  The
configuration refuses driver = postgres without a dsn, or a dsn libpq
cannot read, naming file and line.

Skipped (with the reason) only where the PostgreSQL server is not
installed.  The whole e2e suite runs on PostgreSQL with
POSTINO_TEST_STORE=postgres (conftest.py).
"""
import base64
import os
import signal
import socket
import sqlite3
import subprocess
import time

import pytest

from conftest import (DEMO, DEMO_PASSWORD, DOMAIN, POSTINO, SENDER, SMTPConn, children,
                      extra_ports, new_pg_database, session_pg, unverified_context)
from pg import PgCluster

# the bound docs/store.md states for a change made anywhere to be seen
# by every server; measured lags are printed (pytest -s)
LAG_BOUND = 2.0
RELAY_DENIED = "550 5.7.1 <friend@far.example> Relay access denied"
GOOD_PLAIN = base64.b64encode(b"\0" + DEMO.encode() + b"\0" + DEMO_PASSWORD.encode()).decode()
BAD_PLAIN = base64.b64encode(b"\0" + DEMO.encode() + b"\0wrong").decode()


@pytest.fixture
def pg():
    return session_pg()


def pair(make_server, intrusion=None, dsn=None):
    """Servers a and b on one database (a new one of the session's
    cluster by default), each with a pop3s listener; example.test added
    through a."""
    dsn = dsn or new_pg_database()
    servers = []
    for first in (True, False):
        p = make_server(store_dsn=dsn, accounts=(), start=False, domain=first,
                        intrusion=intrusion)
        p.pop3s_port, = extra_ports(p, 1)
        p.extra_config = "[listener pop3s]\nlisten = 127.0.0.1:%d\nprofile = pop3s\n" % \
            p.pop3s_port
        p.write_config()
        p.start()
        servers.append(p)
    return servers


def smtp_from(p, ip, port=None, tls=False):
    s = socket.create_connection(("127.0.0.1", port or p.mx_port), timeout=10,
                                 source_address=(ip, 0))
    if tls:
        s = unverified_context().wrap_socket(s)
    return SMTPConn(s)


def rcpt(p, ip, sender, rcpt_to):
    """The reply to RCPT TO on p's mx listener, from ip (or the refusal
    at connect)."""
    with smtp_from(p, ip) as c:
        first = c.reply()
        if first.code != 220:
            return first.text
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % sender, "250 2.1.0 Ok")
        return c.cmd("RCPT TO:<%s>" % rcpt_to).text


def greeting(p, ip):
    with smtp_from(p, ip) as c:
        return c.reply().text


def auth(p, ip, good=True):
    """AUTH PLAIN on p's submissions listener from ip: the reply code."""
    with smtp_from(p, ip, p.subs_port, tls=True) as c:
        first = c.reply()
        if first.code != 220:
            return first.code
        c.ehlo()
        return c.cmd("AUTH PLAIN " + (GOOD_PLAIN if good else BAD_PLAIN)).code


def pop3_login(p, ip):
    s = socket.create_connection(("127.0.0.1", p.pop3s_port), timeout=10, source_address=(ip, 0))
    s = unverified_context().wrap_socket(s)
    f = s.makefile("rb")
    try:
        assert f.readline().startswith(b"+OK")
        s.sendall(b"USER %s\r\n" % DEMO.encode())
        assert f.readline().startswith(b"+OK")
        s.sendall(b"PASS %s\r\n" % DEMO_PASSWORD.encode())
        assert f.readline() == b"+OK Logged in.\r\n"
        s.sendall(b"QUIT\r\n")
        f.readline()
    finally:
        s.close()


def wait_for(what, fn, want, timeout=LAG_BOUND):
    """Poll fn() until it returns want, at most timeout seconds; the time
    it took (the lag).  Fails with the last answer otherwise."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        got = fn()
        if got == want:
            lag = time.monotonic() - t0
            print("lag %s: %.0f ms" % (what, lag * 1000))
            return lag
        if time.monotonic() >= deadline:
            pytest.fail("%s: still %r after %.1f s, expected %r" % (what, got, timeout, want))
        time.sleep(0.01)


def test_account_added_on_a_logs_in_on_b(pg, make_server):
    a, b = pair(make_server)
    ip = "127.0.0.1"
    unknown = "550 5.1.1 <%s> User unknown" % DEMO
    assert rcpt(b, ip, SENDER, DEMO) == unknown
    a.add_account(DEMO)
    wait_for("account on b", lambda: rcpt(b, ip, SENDER, DEMO), "250 2.1.5 Ok")
    assert auth(b, ip) == 235
    # postino-admin of either server works on the one store
    assert b.admin("account", "list").stdout == "%s enabled smtp-auth=on\n" % DEMO
    b.admin("account", "disable", DEMO)
    wait_for("disable on a", lambda: auth(a, ip), 535)
    assert auth(b, ip) == 535
    assert a.log_has("store event=shared-loaded")


def test_pop_before_smtp_on_a_relays_on_b(pg, make_server):
    a, b = pair(make_server)
    a.add_account(DEMO)
    ip = "127.0.0.71"
    wait_for("account on b", lambda: rcpt(b, ip, SENDER, DEMO), "250 2.1.5 Ok")
    assert rcpt(b, ip, SENDER, "friend@far.example") == RELAY_DENIED
    pop3_login(a, ip)
    assert a.log_has("popauth event=grant address=[%s] user=%s minutes=15" % (ip, DEMO))
    wait_for("grant on b", lambda: rcpt(b, ip, DEMO, "friend@far.example"), "250 2.1.5 Ok")
    # in the shared store, which postino-admin of b reads
    assert pg.sql(b.store_dsn.split("dbname=")[1].split()[0],
                  "SELECT ip, account FROM popauth") == [[ip, DEMO]]
    # another address is not authorized by it
    assert rcpt(b, "127.0.0.72", SENDER, "friend@far.example") == RELAY_DENIED


def test_block_on_a_holds_on_b(pg, make_server):
    a, b = pair(make_server, intrusion={"bypass": "127.0.0.1", "max_auth_failures": "3",
                                        "block_minutes": "30"})
    a.add_account(DEMO)
    ip = "127.0.0.88"
    blocked = "421 4.7.0 Client host [%s] blocked, try again later" % ip
    wait_for("account on b", lambda: auth(b, "127.0.0.1"), 235)
    assert greeting(b, ip).startswith("220 ")
    for _ in range(3):
        assert auth(a, ip, good=False) == 535
    assert a.log_has("intrusion event=block address=[%s] reason=auth-failures count=3 "
                     "minutes=30" % ip)
    assert greeting(a, ip) == blocked
    wait_for("block on b", lambda: greeting(b, ip), blocked)
    # b counted nothing itself: the block came through the store
    assert "event=block " not in b.read_log()
    lines = b.admin("block", "list").stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(ip + " ") and \
        lines[0].endswith(" auth-failures"), lines
    # lifted through b, everywhere
    b.admin("block", "del", ip)
    wait_for("unblock on a", lambda: greeting(a, ip).startswith("220 "), True)
    wait_for("unblock on b", lambda: greeting(b, ip).startswith("220 "), True)


def own_pair(make_server, own, ip):
    """pair() on a cluster of the test's own (which it stops), with
    demo@example.test added through a and seen by b."""
    a, b = pair(make_server, dsn=own.create_db("own"))
    a.add_account(DEMO)
    wait_for("account on b", lambda: rcpt(b, ip, SENDER, DEMO), "250 2.1.5 Ok")
    return a, b


def test_postgres_away_and_back(make_server):
    """While PostgreSQL is down each server answers from its mirror and
    keeps its own changes; once it is back they reach the others, and
    the servers listen again."""
    ip = "127.0.0.73"
    with PgCluster() as own:
        a, b = own_pair(make_server, own, ip)
        own.pause()
        assert rcpt(b, ip, SENDER, DEMO) == "250 2.1.5 Ok"     # the mirror answers
        assert auth(b, ip) == 235
        pop3_login(a, ip)
        # a relays at once; b hears of it only through PostgreSQL
        assert rcpt(a, ip, DEMO, "friend@far.example") == "250 2.1.5 Ok"
        assert a.log_has("popauth event=grant address=[%s]" % ip)
        assert a.log_has("store event=shared-failed error=")
        assert rcpt(b, ip, SENDER, "friend@far.example") == RELAY_DENIED
        own.resume()
        wait_for("grant replayed", lambda: rcpt(b, ip, DEMO, "friend@far.example"),
                 "250 2.1.5 Ok", timeout=10)
        assert a.log_has("store event=shared-back") and b.log_has("store event=shared-back")
        # both listen again
        a.admin("account", "disable", DEMO)
        wait_for("disable on b after the outage", lambda: auth(b, ip), 535)


def signal_if_there(pid, sig):
    """A backend listed as PostgreSQL's child may be a zombie, which the
    postmaster reaps as soon as it runs again."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def test_hung_postgres_never_stalls_the_loop(make_server):
    """PostgreSQL stopped dead (SIGSTOP, connections open): a POP3 login
    still grants at once and every SMTP command is answered while the
    worker waits on the replay; when it runs again the grant reaches
    the other server."""
    ip = "127.0.0.75"
    with PgCluster() as own:
        a, b = own_pair(make_server, own, ip)
        server = [own.proc.pid] + children(own.proc.pid)
        for pid in server:
            signal_if_there(pid, signal.SIGSTOP)
        try:
            pop3_login(a, ip)
            assert a.log_has("popauth event=grant address=[%s]" % ip)
            for _ in range(5):
                t0 = time.monotonic()
                assert rcpt(a, ip, DEMO, "friend@far.example") == "250 2.1.5 Ok"
                assert auth(a, ip) == 235
                assert time.monotonic() - t0 < 1.0
            assert rcpt(b, ip, SENDER, "friend@far.example") == RELAY_DENIED
        finally:
            for pid in server:
                signal_if_there(pid, signal.SIGCONT)
        wait_for("grant after the stop", lambda: rcpt(b, ip, DEMO, "friend@far.example"),
                 "250 2.1.5 Ok", timeout=10)


# --------------------------------------------------------------------
# postino-admin store migrate
# --------------------------------------------------------------------

OTHER = "other@example.test"
LISTINGS = [("domain", "list"), ("account", "list"), ("alias", "list"), ("trusted", "list"),
            ("bypass", "list", "local-sender"), ("bypass", "list", "auth-mismatch"),
            ("device", "list"), ("redirect", "list"), ("block", "list")]
TABLES = ["domains", "accounts", "aliases", "send_as", "trusted", "bypass", "devices",
          "redirects", "blocks", "popauth"]


def sqlite_counts(p):
    con = sqlite3.connect(os.path.join(p.data_dir, "postino.db"), timeout=10)
    try:
        return {t: con.execute("SELECT count(*) FROM %s" % t).fetchone()[0] for t in TABLES}
    finally:
        con.close()


def fill(p):
    """A row of every kind in p's SQLite store."""
    p.add_account(OTHER)
    p.admin("account", "smtp-auth", OTHER, "off")
    p.admin("account", "disable", OTHER)
    p.add_alias("sales@" + DOMAIN, DEMO, "boss@far.example")
    p.add_alias("@" + DOMAIN, DEMO)
    p.admin("account", "send-as", DEMO, "ceo@" + DOMAIN)
    p.admin("trusted", "add", "192.0.2.0/24")
    p.admin("bypass", "add", "local-sender", "198.51.100.7")
    p.admin("bypass", "add", "auth-mismatch", "scanner@" + DOMAIN)
    p.admin("device", "add", "203.0.113.5")
    p.admin("redirect", "add", "old.example", "new@example.test", "relay.example:2525")
    p.admin("popauth", "grant", DEMO, "198.18.0.33")
    con = sqlite3.connect(os.path.join(p.data_dir, "postino.db"), timeout=10)
    try:
        with con:
            con.execute("INSERT INTO blocks (ip, until, reason) VALUES "
                        "('198.51.100.9', strftime('%s','now') + 3600, 'auth-failure')")
    finally:
        con.close()


def test_migrate_sqlite_to_postgres(pg, make_server):
    src = make_server(store_dsn="", start=False)
    fill(src)
    counts = sqlite_counts(src)
    assert all(n > 0 for n in counts.values()), counts
    total = sum(counts.values())
    want = [src.admin(*cmd).stdout for cmd in LISTINGS]
    dsn = new_pg_database()
    dbname = dsn.split("dbname=")[1].split()[0]

    r = src.admin("store", "migrate", "--to", dsn)
    assert r.stdout == "migrated %d rows of %s/postino.db\n" % (total, src.data_dir)
    assert {t: int(pg.sql(dbname, "SELECT count(*) FROM %s" % t)[0][0]) for t in TABLES} \
        == counts
    # the same rows, column for column (times included)
    con = sqlite3.connect(os.path.join(src.data_dir, "postino.db"))
    try:
        for t, order in (("accounts", "address"), ("popauth", "ip"), ("blocks", "ip")):
            lite = [["" if v is None else str(v) for v in row] for row in
                    con.execute("SELECT * FROM %s ORDER BY %s" % (t, order))]
            assert pg.sql(dbname, "SELECT * FROM %s ORDER BY %s" % (t, order)) == lite
    finally:
        con.close()

    # a target that holds rows is left alone, unless --replace
    r = src.admin("store", "migrate", "--to", dsn, check=False)
    assert (r.returncode, r.stdout, r.stderr) == (
        1, "", "postino-admin: the PostgreSQL store holds %d rows already; --replace "
        "empties it first\n" % total)
    src.admin("trusted", "add", "192.0.2.200")
    r = src.admin("store", "migrate", "--to", dsn, "--replace")
    assert r.stdout == "migrated %d rows of %s/postino.db\n" % (total + 1, src.data_dir)
    src.admin("trusted", "del", "192.0.2.200")
    src.admin("store", "migrate", "--to", dsn, "--replace")

    # a server on PostgreSQL sees them all
    dst = make_server(store_dsn=dsn, accounts=(), domain=False)
    assert [dst.admin(*cmd).stdout for cmd in LISTINGS] == want
    assert auth(dst, "127.0.0.1") == 235
    assert rcpt(dst, "127.0.0.1", SENDER, "sales@" + DOMAIN) == "250 2.1.5 Ok"
    assert rcpt(dst, "127.0.0.1", SENDER, "nobody@" + DOMAIN) == "250 2.1.5 Ok"  # catch-all
    r = dst.admin("explain", "--ip", "198.18.0.33", "--from", DEMO, "--to", "friend@far.example")
    assert "POP-before-SMTP grant" in r.stdout and \
        r.stdout.rstrip().endswith("final: 250 2.1.5 Ok"), r.stdout


def test_migrate_needs_a_target_and_a_store(make_server):
    p = make_server(store_dsn="", start=False)
    r = p.admin("store", "migrate", check=False)
    assert (r.returncode, r.stderr) == (
        1, "postino-admin: no PostgreSQL to migrate to: give --to DSN, or dsn in [store] "
        "of %s\n" % p.conf)
    r = p.admin("store", "migrate", "--to", "host=127.0.0.1 port=1 dbname=x", check=False)
    assert r.returncode == 1 and r.stderr.startswith("postino-admin: database postgres: "), \
        r.stderr
    # libpq's message, on one line
    assert r.stderr.endswith("'127.0.0.1', port 1 failed: Connection refused Is the server "
                             "running on that host and accepting TCP/IP connections?\n"), r.stderr


# --------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------

def check_config(tmp_path, store):
    path = tmp_path / "postino.conf"
    path.write_text("data_dir = data\n[listener mx]\nlisten = 127.0.0.1:2525\nprofile = mx\n"
                    "[store]\n" + store)
    r = subprocess.run([POSTINO, "-c", str(path), "check-config"], capture_output=True,
                       text=True, timeout=20)
    return r.returncode, r.stderr.replace(str(path), "FILE")


def test_config_driver_and_dsn(tmp_path):
    assert check_config(tmp_path, "driver = postgres\n") == (
        1, "postino: FILE:6: driver = postgres without a dsn, expected dsn = "
        "\"host=... dbname=...\" (a libpq connection string) in [store]\n")
    code, err = check_config(tmp_path, "driver = postgres\ndsn = host=x bogus\n")
    assert code == 1 and err.startswith("postino: FILE:7: dsn: missing \"=\" after "
                                        "\"bogus\" in connection info string, expected "), err
    assert check_config(tmp_path, "driver = mysql\n")[1].startswith(
        "postino: FILE:6: key 'driver': ")
    assert check_config(tmp_path, "driver = postgres\ndsn = host=127.0.0.1 dbname=x\n") == \
        (0, "")
    # a dsn with SQLite: the default target of store migrate
    assert check_config(tmp_path, "dsn = postgresql://127.0.0.1/x\n") == (0, "")
