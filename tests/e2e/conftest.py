"""
End-to-end test harness for postino.

Runs the real daemon (build/postino, or $POSTINO_BUILD/postino) on
loopback ports in a fresh temporary directory per server, talks to it
with real clients (swaks, smtplib, raw sockets) and reads the Maildirs
it writes.  Standard library + pytest only.

Every wait is bounded in count and time; only processes started here
are ever signalled, by PID.
"""
import os
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "support"))
from procs import children, free_port, pid_alive, wait_pid_gone  # noqa: E402,F401
from pg import PgCluster, pg_missing  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_build = os.environ.get("POSTINO_BUILD", "build")
BUILD = _build if os.path.isabs(_build) else os.path.join(ROOT, _build)
POSTINO = os.path.join(BUILD, "postino")
ADMIN = os.path.join(BUILD, "postino-admin")

HOSTNAME = "mx.example.test"
DOMAIN = "example.test"
DEMO = "demo@example.test"
# A sender outside the local domains: R3.1 refuses local senders that
# did not authenticate.
SENDER = "sender@example.org"

GREETING = "220 %s ESMTP postino" % HOSTNAME
EHLO_PLAIN = [
    "250-%s" % HOSTNAME,
    "250-SIZE 52428800",
    "250-PIPELINING",
    "250-8BITMIME",
    "250-ENHANCEDSTATUSCODES",
    "250-STARTTLS",
    "250-SMTPUTF8",
    "250 CHUNKING",
]
# Under TLS (mx after STARTTLS, submissions): AUTH, no STARTTLS (R2.2).
AUTH_LINE = "250-AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 SCRAM-SHA-1"
EHLO_TLS = [
    "250-%s" % HOSTNAME,
    "250-SIZE 52428800",
    "250-PIPELINING",
    "250-8BITMIME",
    "250-ENHANCEDSTATUSCODES",
    AUTH_LINE,
    "250-SMTPUTF8",
    "250 CHUNKING",
]
DEMO_PASSWORD = "secret-pw-1"
DATA_354 = "354 End data with <CR><LF>.<CR><LF>"
QUEUED = b"250 2.0.0 Ok: queued as "

START_TIMEOUT = 10.0
DELIVERY_TIMEOUT = 10.0
IO_TIMEOUT = 10.0

# Servers whose stop was started but not waited for (see Postino.stop).
_LINGERING = []
# Every server made, for the sanitizer check and cleanup at the end.
_ALL = []

# POSTINO_TEST_STORE=postgres: every server keeps its account store in
# PostgreSQL ([store] driver = postgres), a database of its own in one
# private cluster for the session (tests/support/pg.py).
STORE = os.environ.get("POSTINO_TEST_STORE", "sqlite")
_PG = []
_DB_SEQ = [0]


def session_pg():
    """The session's private PostgreSQL cluster, started on first use."""
    if not _PG:
        why = pg_missing()
        if why is not None:
            pytest.skip(why)
        _PG.append(PgCluster().start())
    return _PG[0]


# the commands of postino-admin that change the store
ADMIN_WRITES = {"add", "del", "passwd", "disable", "enable", "smtp-auth", "send-as", "grant",
                "migrate"}
STORE_TABLES = [
    ("domains", "name, created"),
    ("accounts", "address, domain, local_part, password_hash, scram_sha256, scram_sha1, "
     "cram_md5, enabled, smtp_auth, created"),
    ("aliases", "address, target"), ("send_as", "account, address"), ("trusted", "entry"),
    ("bypass", "list, entry"), ("devices", "ip"), ("redirects", "domain, target, host"),
    ("blocks", "ip, until, reason"), ("popauth", "ip, account, until")]


def new_pg_database():
    """A libpq connection string to a new empty database of session_pg()."""
    _DB_SEQ[0] += 1
    return session_pg().create_db("postino%d" % _DB_SEQ[0])
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer")


def unverified_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def dot_stuff(msg):
    """Wire form of a message for DATA: leading dots doubled, then the
    end-of-data dot.  msg must end with CRLF."""
    assert msg.endswith(b"\r\n")
    lines = msg.split(b"\r\n")
    out = b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)
    return out + b".\r\n"


def split_received(data):
    """(received header bytes, rest) of a delivered file: the first
    header must be one Received: header, possibly folded."""
    assert data.startswith(b"Received: from "), data[:200]
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        assert eol != -1, "Received header without CRLF: %r" % data[:300]
        pos = eol + 2
        if pos >= len(data) or data[pos:pos + 1] not in (b" ", b"\t"):
            break
    return data[:pos], data[pos:]


def unfold(header):
    return header.replace(b"\r\n\t", b" ").replace(b"\r\n ", b" ")


# --------------------------------------------------------------------
# The daemon
# --------------------------------------------------------------------

class Postino:
    """One postino server in its own temporary directory."""

    def __init__(self, smtp=None, extra_config="", hostname=HOSTNAME, intrusion=None,
                 antispam=None, metrics=False, store_dsn=None):
        # store_dsn: a PostgreSQL store ([store] driver = postgres); ""
        # keeps SQLite even under POSTINO_TEST_STORE=postgres.  Only
        # with the suite's own database does admin() wait for the mirror
        # (the tests of test_pg_store.py measure that wait themselves).
        self.sync_mirror = store_dsn is None and STORE == "postgres"
        if self.sync_mirror:
            store_dsn = new_pg_database()
        self.store_dsn = store_dsn or None
        self.dir = tempfile.mkdtemp(prefix="postino-e2e-")
        # As root, postino drops to the 'postino' user which must reach
        # data_dir: the temporary directory must be traversable.
        os.chmod(self.dir, 0o755)
        self.data_dir = os.path.join(self.dir, "data")
        self.conf = os.path.join(self.dir, "postino.conf")
        self.log_path = os.path.join(self.dir, "postino.log")
        self.hostname = hostname
        self.mx_port = free_port()
        self.subs_port = free_port()
        while self.subs_port == self.mx_port:
            self.subs_port = free_port()
        self.smtp = {"max_connections": "256"}
        self.smtp.update({k: str(v) for k, v in (smtp or {}).items()})
        self.extra_config = extra_config
        # Intrusion prevention (R4.4) would block the loopback addresses
        # the protocol tests use by the hundred; the tests of R4.4 pass
        # their own [intrusion] keys.
        self.intrusion = intrusion or {"bypass": "127.0.0.0/8"}
        # Keep the DNS checks (R4.2, R4.3) out of the protocol tests:
        # no DNS on loopback CI; the tests of R4.1-R4.3 pass their own.
        self.antispam = antispam or {"reject_unknown_sender_domain": "no", "spf": "no"}
        self.dead_dns_port = free_port()
        # R7.5: the Prometheus endpoint, on a port of its own when asked.
        self.metrics_port = None
        while metrics and self.metrics_port in (None, self.mx_port, self.subs_port):
            self.metrics_port = free_port()
        self.proc = None
        self.children = []
        self.starts = 0
        _ALL.append(self)
        self.write_config()

    # -- configuration and administration ---------------------------

    def write_config(self):
        lines = [
            "hostname = %s" % self.hostname,
            "data_dir = %s" % self.data_dir,
            "[listener mx]",
            "listen = 127.0.0.1:%d" % self.mx_port,
            "profile = mx",
            "[listener submissions]",
            "listen = 127.0.0.1:%d" % self.subs_port,
            "profile = submissions",
            "[smtp]",
        ]
        lines += ["%s = %s" % kv for kv in self.smtp.items()]
        lines.append("[antispam]")
        lines += ["%s = %s" % kv for kv in self.antispam.items()]
        lines.append("[intrusion]")
        lines += ["%s = %s" % kv for kv in self.intrusion.items()]
        if "[dns]" not in self.extra_config:
            # Nothing here may ask the world's DNS: a loopback port with
            # no server refuses at once, so mail to other domains is
            # deferred (a temporary DNS failure) and stays queued.
            lines += ["[dns]", "servers = 127.0.0.1:%d" % self.dead_dns_port]
        if self.metrics_port:
            lines += ["[metrics]", "listen = 127.0.0.1:%d" % self.metrics_port]
        if self.store_dsn is not None and "[store]" not in self.extra_config:
            lines += ["[store]", "driver = postgres", "dsn = %s" % self.store_dsn]
        if self.extra_config:
            lines.append(self.extra_config)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(self.conf, 0o644)

    def admin(self, *args, password=None, check=True):
        cmd = [ADMIN, "-c", self.conf] + list(args)
        r = subprocess.run(cmd, input=(password + "\n") if password is not None else None,
                           capture_output=True, text=True, timeout=30)
        self._log_line("admin %s -> %d %s %s" % (" ".join(args), r.returncode,
                                                  r.stdout.strip(), r.stderr.strip()))
        if check:
            assert r.returncode == 0, "postino-admin %s: exit %d: %s%s" % (
                " ".join(args), r.returncode, r.stdout, r.stderr)
        if (r.returncode == 0 and self.sync_mirror and len(args) > 1 and
                args[1] in ADMIN_WRITES and self.proc is not None and self.proc.poll() is None):
            self.sync_store()
        return r

    @property
    def store_file(self):
        """The SQLite file the daemon reads: the store, or its mirror of
        PostgreSQL."""
        return os.path.join(self.data_dir, "postgres-mirror.db" if self.store_dsn
                            else "postino.db")

    def store_sql(self, sql, args=()):
        """Run sql (with ? parameters, in SQL both engines accept) on the
        account store itself, as the tests of a row's effect do:
        (rows, rowcount).  A change to PostgreSQL is waited for like an
        admin() change."""
        if not self.store_dsn:
            con = sqlite3.connect(os.path.join(self.data_dir, "postino.db"), timeout=10)
            try:
                with con:
                    cur = con.execute(sql, args)
                    return [list(r) for r in cur.fetchall()], cur.rowcount
            finally:
                con.close()
        parts = sql.split("?")
        assert len(parts) == len(args) + 1, sql
        text = parts[0]
        for a, rest in zip(args, parts[1:]):
            text += (str(a) if isinstance(a, int) else
                     "'%s'" % str(a).replace("'", "''")) + rest
        dbname = self.store_dsn.split("dbname=")[1].split()[0]
        rows, count = session_pg().sql_status(dbname, text)
        if count is not None and self.sync_mirror and self.proc is not None and \
                self.proc.poll() is None:
            self.sync_store()
        return [[int(v) if v.isdigit() else v for v in r] for r in rows], count

    def sync_store(self, timeout=5.0):
        """With PostgreSQL: wait until the running server's mirror holds
        what PostgreSQL holds, as it does a few ms after a change (the
        lag of docs/store.md), so that a test acts on the change at
        once as it may with SQLite."""
        deadline = time.monotonic() + timeout
        while True:
            pg, mirror = self._store_rows(), self._mirror_rows()
            if pg == mirror:
                return
            if time.monotonic() >= deadline:
                raise AssertionError("the mirror of %s still differs from PostgreSQL after "
                                     "%.0f s:\n%r\n%r" % (self.dir, timeout, mirror, pg))
            time.sleep(0.01)

    def _store_rows(self):
        dbname = self.store_dsn.split("dbname=")[1].split()[0]
        rows = session_pg().sql_many(dbname, ["SELECT %s FROM %s ORDER BY %s" % (cols, t, cols)
                                              for t, cols in STORE_TABLES])
        return {t: r for (t, _), r in zip(STORE_TABLES, rows)}

    def _mirror_rows(self):
        path = os.path.join(self.data_dir, "postgres-mirror.db")
        con = sqlite3.connect(path, timeout=10)
        try:
            return {t: [["" if v is None else str(v) for v in row] for row in
                        con.execute("SELECT %s FROM %s ORDER BY %s" % (cols, t, cols))]
                    for t, cols in STORE_TABLES}
        finally:
            con.close()

    def add_domain(self, domain=DOMAIN):
        self.admin("domain", "add", domain)

    def add_account(self, addr, password=DEMO_PASSWORD):
        self.admin("account", "add", addr, "--password-stdin", password=password)

    def add_alias(self, addr, *targets):
        self.admin("alias", "add", addr, *targets)

    def _log_line(self, text):
        with open(self.log_path, "a") as f:
            f.write("[test] %s\n" % text)

    # -- process control ----------------------------------------------

    def start(self, wait=True):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        self._log_line("---- start #%d ----" % self.starts)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([POSTINO, "-c", self.conf], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True)
        finally:
            log.close()
        self.children = []
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("postino exited with %s at start:\n%s"
                                     % (self.proc.returncode, self.read_log()))
            try:
                with socket.create_connection(("127.0.0.1", self.mx_port), timeout=2) as s:
                    c = SMTPConn(s, timeout=3)
                    r = c.reply()
                    if r.code == 220:
                        # Leave properly so the connection is gone before
                        # tests that count connections.
                        c.send(b"QUIT\r\n")
                        try:
                            c.reply()
                            c.wait_eof(timeout=3)
                        except (OSError, AssertionError):
                            pass
                        # Both roles up (a child not yet exec'd has no role).
                        if set(self.pids()) == {"parent", "net", "store"}:
                            self.children = self.child_pids()
                            return
                    last = r
            except (OSError, AssertionError) as e:
                last = e
            time.sleep(0.1)
        raise AssertionError("postino not ready after %.0fs (last: %r):\n%s"
                             % (timeout, last, self.read_log()))

    def child_pids(self, pid=None):
        return children(pid or self.proc.pid)

    def pids(self):
        """{'parent': pid, 'net': pid, 'store': pid} of the running server."""
        res = {"parent": self.proc.pid}
        for p in self.child_pids():
            role = role_of(p)
            if role:
                res[role] = p
        return res

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, wait=True, timeout=15.0):
        """SIGTERM the parent (which stops its children).  With
        wait=False the wait is left to the end of the session."""
        if self.proc is None:
            return
        kids = self.child_pids() or self.children
        if self.proc.poll() is None:
            self._log_line("---- SIGTERM %d ----" % self.proc.pid)
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if not wait:
            _LINGERING.append((self, kids))
            return
        self.reap(kids, timeout)

    def reap(self, kids, timeout=15.0):
        """Wait (bounded) for parent and kids to end; SIGKILL what is left."""
        deadline = time.monotonic() + timeout
        try:
            self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._log_line("parent did not stop in %.0fs: SIGKILL" % timeout)
            self.proc.kill()
            self.proc.wait(timeout=10)
        for k in kids:
            if not wait_pid_gone(k, max(0.1, deadline - time.monotonic())):
                try:
                    os.kill(k, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                wait_pid_gone(k, 5)

    def kill9(self, pids=None):
        """SIGKILL parent, store and net at (almost) the same instant
        (pids: a self.pids() taken earlier, to lose no time now)."""
        pids = pids or self.pids()
        kids = [p for r, p in pids.items() if r != "parent"] or self.child_pids()
        allp = [pids["parent"]] + kids
        # Freeze all three first so that none reacts to another's death.
        for p in allp:
            try:
                os.kill(p, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        for p in allp:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._log_line("---- SIGKILL %s ----" % allp)
        self.proc.wait(timeout=10)
        for k in kids:
            assert wait_pid_gone(k, 10), "child %d survived SIGKILL" % k
        return pids

    def restart(self):
        self.stop()
        self.start()

    def cleanup(self):
        if self.running():
            self.stop(wait=False)
        else:
            # Parent gone: make sure no child outlives it.
            for k in self.children:
                if pid_alive(k):
                    try:
                        os.kill(k, signal.SIGKILL)
                    except ProcessLookupError:
                        pass

    # -- logs -----------------------------------------------------------

    def log_has(self, text, timeout=10.0):
        """Poll the log until it holds text (bounded); True if it did."""
        deadline = time.monotonic() + timeout
        while True:
            if text in self.read_log():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # -- clients --------------------------------------------------------

    def connect(self, port=None, tls=False, timeout=IO_TIMEOUT, greeting=True,
                source=None):
        """A raw SMTP connection to the mx listener (or port); reads the
        greeting and checks it unless greeting=False.  source: a loopback
        address (127.x.y.z) the client socket is bound to first, so that
        the server sees the connection come from it."""
        port = port or self.mx_port
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                     source_address=(source, 0) if source else None)
        if tls:
            s = unverified_context().wrap_socket(s)
        c = SMTPConn(s, timeout=timeout)
        if greeting:
            r = c.reply()
            assert r.raw == ("220 %s ESMTP postino\r\n" % self.hostname).encode(), r
        return c

    # -- Maildir ----------------------------------------------------------

    def maildir(self, addr=DEMO):
        local, domain = addr.lower().split("@")
        return os.path.join(self.data_dir, "mail", domain, local)

    def messages(self, addr=DEMO, subdirs=("new", "cur")):
        """{name: bytes} of the delivered messages of addr."""
        out = {}
        for sub in subdirs:
            d = os.path.join(self.maildir(addr), sub)
            try:
                names = os.listdir(d)
            except FileNotFoundError:
                continue
            for n in names:
                with open(os.path.join(d, n), "rb") as f:
                    out[sub + "/" + n] = f.read()
        return out

    def wait_messages(self, n, addr=DEMO, timeout=DELIVERY_TIMEOUT):
        """Poll until addr has at least n messages; returns them (list of
        bytes, sorted by name)."""
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.messages(addr)
            if len(msgs) >= n or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        assert len(msgs) >= n, "%s: %d message(s) after %.0fs, expected %d\n%s" % (
            addr, len(msgs), timeout, n, sorted(msgs))
        return [msgs[k] for k in sorted(msgs)]

    def assert_no_more(self, n, addr=DEMO, settle=0.5):
        """After a short settle time, addr has exactly n messages."""
        time.sleep(settle)
        msgs = self.messages(addr)
        assert len(msgs) == n, "%s: %d message(s), expected %d: %s" % (
            addr, len(msgs), n, sorted(msgs))
        return [msgs[k] for k in sorted(msgs)]


def role_of(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return None
    for i, a in enumerate(argv):
        if a == b"-R" and i + 1 < len(argv):
            return argv[i + 1].decode()
    for a in argv:
        if a in (b"net", b"store"):
            return a.decode()
    return None


# --------------------------------------------------------------------
# Raw SMTP
# --------------------------------------------------------------------

class Reply:
    def __init__(self, raw):
        self.raw = raw
        self.lines = raw.decode("utf-8", "replace").split("\r\n")[:-1]
        self.code = int(self.lines[-1][:3])

    @property
    def text(self):
        return "\r\n".join(self.lines)

    def __repr__(self):
        return "Reply(%r)" % self.raw


class SMTPConn:
    """Bytes in, whole replies out, every read with a timeout."""

    def __init__(self, sock, timeout=IO_TIMEOUT):
        self.sock = sock
        self.timeout = timeout
        self.buf = b""
        sock.settimeout(timeout)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("timeout waiting for a reply; have %r" % self.buf)
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError("timeout waiting for a reply; have %r" % self.buf)
        finally:
            self.sock.settimeout(self.timeout)
        if not chunk:
            raise EOFError("connection closed; have %r" % self.buf)
        self.buf += chunk

    def reply(self, timeout=None):
        """One whole reply (all its lines)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        pos = 0
        while True:
            eol = self.buf.find(b"\r\n", pos)
            if eol == -1:
                if len(self.buf) > 1 << 20:
                    raise AssertionError("reply too long")
                self._fill(deadline)
                continue
            line = self.buf[pos:eol]
            assert len(line) >= 3 and line[:3].isdigit(), "bad reply line %r in %r" % (line, self.buf)
            pos = eol + 2
            if len(line) == 3 or line[3:4] == b" ":
                raw, self.buf = self.buf[:pos], self.buf[pos:]
                return Reply(raw)
            assert line[3:4] == b"-", "bad reply line %r" % line

    def replies(self, n, timeout=None):
        return [self.reply(timeout) for _ in range(n)]

    def cmd(self, line, timeout=None):
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply(timeout)

    def expect(self, line, text, timeout=None):
        """Send a command, assert the exact reply (text without CRLF)."""
        r = self.cmd(line, timeout)
        assert r.raw == text.encode() + b"\r\n", "%r: got %r, expected %r" % (line, r.raw, text)
        return r

    def expect_reply(self, text, timeout=None):
        r = self.reply(timeout)
        assert r.raw == text.encode() + b"\r\n", "got %r, expected %r" % (r.raw, text)
        return r

    def wait_eof(self, timeout=5.0):
        """Assert the server closes the connection (no further bytes)."""
        deadline = time.monotonic() + timeout
        extra = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("connection still open after %.0fs; got %r"
                                     % (timeout, self.buf + extra))
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            except ssl.SSLError:
                chunk = b""
            if not chunk:
                assert self.buf + extra == b"", "unexpected bytes before close: %r" % (self.buf + extra)
                return
            extra += chunk

    def pending(self, wait=0.3):
        """Whatever arrives within wait seconds (without blocking longer)."""
        deadline = time.monotonic() + wait
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, ssl.SSLError):
                break
            if not chunk:
                break
            self.buf += chunk
        self.sock.settimeout(self.timeout)
        out, self.buf = self.buf, b""
        return out

    def ehlo(self, name="client.example.org"):
        r = self.cmd("EHLO " + name)
        assert r.code == 250, r
        return r

    def starttls(self):
        r = self.cmd("STARTTLS")
        assert r.raw == b"220 2.0.0 Ready to start TLS\r\n", r
        assert self.buf == b"", "bytes after the STARTTLS reply: %r" % self.buf
        self.sock = unverified_context().wrap_socket(self.sock)
        self.sock.settimeout(self.timeout)
        return r

    def queued_id(self, r):
        prefix = b"250 2.0.0 Ok: queued as "
        assert r.raw.startswith(prefix) and r.raw.endswith(b"\r\n"), r
        qid = r.raw[len(prefix):-2].decode()
        assert qid and " " not in qid, r
        return qid

    def send_message(self, msg, rcpts=(DEMO,), sender=SENDER):
        """MAIL/RCPT/DATA of msg (bytes ending in CRLF) one command at a
        time; returns the queue id."""
        self.expect("MAIL FROM:<%s>" % sender, "250 2.1.0 Ok")
        for r in rcpts:
            self.expect("RCPT TO:<%s>" % r, "250 2.1.5 Ok")
        self.expect("DATA", "354 End data with <CR><LF>.<CR><LF>")
        self.send(dot_stuff(msg))
        return self.queued_id(self.reply())

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


# --------------------------------------------------------------------
# pytest glue
# --------------------------------------------------------------------

def pytest_configure(config):
    config.addinivalue_line("markers", "slow: longer end-to-end test")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    node = request.node
    for when in ("setup", "call"):
        rep = getattr(node, "rep_" + when, None)
        if rep is not None and rep.failed:
            return True
    return False


def _check_binaries():
    for b in (POSTINO, ADMIN):
        if not os.access(b, os.X_OK):
            pytest.fail("%s is not built (make, or set POSTINO_BUILD)" % b, pytrace=False)


def new_server(smtp=None, extra_config="", accounts=(DEMO,), start=True, intrusion=None,
               antispam=None, metrics=False, store_dsn=None, domain=True):
    _check_binaries()
    p = Postino(smtp=smtp, extra_config=extra_config, intrusion=intrusion, antispam=antispam,
                metrics=metrics, store_dsn=store_dsn)
    if domain:
        p.add_domain(DOMAIN)
    for a in accounts:
        p.add_account(a)
    if start:
        p.start()
    return p


def _finish(servers, failed):
    """Stop (without waiting) and print the logs of a failed test; the
    directories go at the end of the session."""
    for p in servers:
        p.cleanup()
        if failed:
            sys.stdout.write("\n===== postino log (%s) =====\n%s\n" % (p.dir, p.read_log()))


@pytest.fixture
def make_server(request):
    """Factory: make_server(smtp={...}, accounts=(...), start=True)."""
    servers = []

    def make(smtp=None, extra_config="", accounts=(DEMO,), start=True, intrusion=None,
             antispam=None, metrics=False, store_dsn=None, domain=True):
        p = new_server(smtp, extra_config, accounts, start=False, intrusion=intrusion,
                       antispam=antispam, metrics=metrics, store_dsn=store_dsn,
                       domain=domain)
        servers.append(p)
        if start:
            p.start()
        return p

    yield make
    _finish(servers, _failed(request))


@pytest.fixture
def server(make_server):
    """A running server with example.test and demo@example.test."""
    return make_server()


def add_pop3s(p):
    """Give p (not started) a pop3s listener on a free port, p.pop3s_port."""
    p.pop3s_port, = extra_ports(p, 1)
    p.extra_config += "\n[listener pop3s]\nlisten = 127.0.0.1:%d\nprofile = pop3s\n" % p.pop3s_port
    p.write_config()


def replace_submissions(p, name, port, profile="mx"):
    """Rewrite p's configuration file: its submissions listener becomes
    [listener name] on port (for a reload)."""
    text = open(p.conf).read()
    text = text.replace("[listener submissions]\nlisten = 127.0.0.1:%d\nprofile = submissions\n"
                        % p.subs_port,
                        "[listener %s]\nlisten = 127.0.0.1:%d\nprofile = %s\n" % (name, port, profile))
    with open(p.conf, "w") as f:
        f.write(text)


def extra_ports(p, n):
    """n free loopback ports besides the server's own listeners."""
    taken = {p.mx_port, p.subs_port, p.metrics_port}
    ports = []
    while len(ports) < n:
        port = free_port()
        if port not in taken:
            taken.add(port)
            ports.append(port)
    return ports


def serve_module(request, p, fixture):
    """The body of a module-scoped server fixture named fixture: start p,
    yield it, stop it.  _module_server_log prints its log with each
    failed test that used the fixture."""
    servers = request.module.__dict__.setdefault("_module_servers", {})
    servers[fixture] = p
    try:
        p.start()
    except BaseException:
        _finish([p], True)
        raise
    yield p
    _finish([p], False)


@pytest.fixture(autouse=True)
def _module_server_log(request):
    yield
    servers = getattr(request.module, "_module_servers", {})
    for fixture, p in servers.items():
        if fixture in request.fixturenames and _failed(request):
            sys.stdout.write("\n===== postino log (%s) =====\n%s\n" % (p.dir, p.read_log()))


@pytest.fixture(scope="module")
def shared_server(request):
    """One default server for a whole module of tests that do not change
    its state (its log is printed with each failed test that used it)."""
    yield from serve_module(request, new_server(start=False), "shared_server")


@pytest.fixture(scope="session", autouse=True)
def _reap_lingering():
    yield
    # Servers stopped with wait=False: wait for them all at once.
    deadline = time.monotonic() + 20
    for p, kids in _LINGERING:
        p.reap(kids, max(0.5, deadline - time.monotonic()))
    # Sanitizer reports (make test SAN=1) fail the run even when every
    # reply was right.
    bad = []
    for p in _ALL:
        if p.running():
            p.stop()
        log = p.read_log()
        if any(m in log for m in SANITIZER_MARKS):
            bad.append("===== postino log (%s) =====\n%s" % (p.dir, log))
        else:
            shutil.rmtree(p.dir, ignore_errors=True)
    # every server is stopped: the session's PostgreSQL may go
    for pg in _PG:
        pg.stop()
    if bad:
        sys.stdout.write("\n".join(bad) + "\n")
        pytest.fail("sanitizer reports in %d server log(s), kept in place" % len(bad),
                    pytrace=False)
