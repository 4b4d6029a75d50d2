#!/usr/bin/python3
"""
POP3: postino's server against a private Dovecot POP3 on the same
machine, on identical copies of one Maildir.

    POSTINO_BUILD=build /usr/bin/python3 bench/pop3_bench.py     (QUICK=1: short)

Preparation: one postino (private copies of build/postino and
build/postino-admin, data under a temporary directory, an mx listener
and a pop3 listener, profile = pop3 with auth_plaintext_without_tls =
yes, on free 127.0.0.1 ports) takes MSGS (1,000) messages of 10,240
octets each for demo@example.test over SMTP (one session from
127.0.0.9), so the Maildir is postino's own delivery: its file names,
its Received: header on top of each message (about 10.4 KB a file).
For the logged-in idle connections it also gets LOGIN_N accounts
l0001@example.test... with one 1 KB message each (100 recipients a
transaction).  Then, before any POP3 login, `cp -a` of postino's whole
mail/ tree: the copy, owned by postino's user as the original, is what
a private Dovecot POP3 (tests/support/dovecot_pop3.py: Debian's
dovecot-core + dovecot-pop3d, its own dovecot.conf, plain TCP,
disable_plaintext_auth = no, index files in its own directory, the
dovecot-uidlist in the Maildir) serves.  TLS is off for both: the same
cost (none).

Measured, for each server in turn (postino's first, then postino is
stopped and Dovecot started):

  (a) RETR throughput.  One untimed warm-up session logs in, UIDLs and
      RETRs all MSGS messages and QUITs (each server builds its
      dovecot-uidlist / indexes and marks all messages seen, renaming
      them into cur/ with :2,S).  Then RUNS timed sessions of each kind:
      "one at a time" (RETR n, read the whole reply up to its final
      ".", then the next: what most clients do) and "pipelined" (at
      most WINDOW RETRs outstanding, RFC 2449 PIPELINING).  The client
      is a raw socket in Python reading whole replies (each reply's
      "+OK <size> octets" is checked and the octets summed).
      messages/s and MB/s (message octets, 10^6) over the RETR loop;
      CPU seconds of the server (utime+stime of every process of its
      tree, plus what the root reaped: Dovecot's pop3 and pop3-login
      processes, counted once they have exited) over the whole session
      from connect to the process's exit after QUIT, per 1,000 RETRs.
      Shown: the median of RUNS runs for the rates, the mean for the CPU
      time (read in clock ticks, 10 ms).

  (b) Memory per idle connection.  IDLE_N connections opened one after
      another, each reads the greeting and stays; the growth of the sum
      of PSS (and of RSS) of the server's processes divided by the
      connections, and the number of processes before and after (Dovecot
      runs one pop3-login process per connection by default).  Then a
      second variant, LOGIN_N connections each logged in (USER/PASS) as
      its own account (postino locks a mailbox for one session), idle
      in the TRANSACTION state (Dovecot: one pop3 process each).  For
      the greeting variant also Dovecot with its login service in
      "high-performance" mode (service_count = 0, process_min_avail =
      2), the setting large sites use, for reference.

Prints one markdown table, postino and Dovecot side by side with the
ratio postino/Dovecot.  Standard library only; loopback only; every
loop bounded in count and time, the whole run within BUDGET seconds
(a step that no longer fits is reported as skipped); only processes
started here are signalled, by PID; the temporary directory is removed
at the end (BENCH_KEEP=1 keeps it).  Errors are reported in the table
and the exit status is 0: a benchmark never fails a build.

Environment: QUICK=1 (RUNS = 3, LOGIN_N = 200, budget 300 s),
POSTINO_BUILD (default build), POP3_IDLE_N (default 1000),
POP3_LOGIN_N (default 1000, QUICK 200), POP3_RUNS (default 9, QUICK 3),
POP3_BUDGET (seconds, default 900, QUICK 300), BENCH_KEEP=1.
"""
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from procs import free_port, tree  # noqa: E402
from dovecot_pop3 import GREETING as DOVECOT_GREETING, DovecotPop3  # noqa: E402
import dovecot_private  # noqa: E402


def build_path(env, default):
    p = os.environ.get(env, default)
    return p if os.path.isabs(p) else os.path.join(ROOT, p)


BUILD = build_path("POSTINO_BUILD", "build")
POSTINO = os.path.join(BUILD, "postino")
ADMIN = os.path.join(BUILD, "postino-admin")

QUICK = os.environ.get("QUICK", "0") not in ("", "0")
MSGS = 1000
MSG_SIZE = 10240
IDLE_N = int(os.environ.get("POP3_IDLE_N", "1000"))
LOGIN_N = int(os.environ.get("POP3_LOGIN_N", "200" if QUICK else "1000"))
RUNS = int(os.environ.get("POP3_RUNS", "3" if QUICK else "9"))
BUDGET = float(os.environ.get("POP3_BUDGET", "300" if QUICK else "900"))
KEEP = os.environ.get("BENCH_KEEP", "0") not in ("", "0")
WINDOW = 32                     # RETRs outstanding when pipelined
SHARED_LOGIN_PROCS = 2          # Dovecot high-performance login processes

DOMAIN = "example.test"
USER = "demo@example.test"
PASSWORD = "bench-pw-1"
HOSTNAME = "mx.example.test"
SENDER = "bench@example.org"
SOURCE = "127.0.0.9"            # SMTP from here (never logs in over POP3)
POSTINO_GREETING = b"+OK postino ready.\r\n"

IO_TIMEOUT = 30.0
START_TIMEOUT = 20.0
DELIVERY_TIMEOUT = 300.0
SETTLE = 1.0                    # after opening the idle connections
CLK = os.sysconf("SC_CLK_TCK")
T0 = time.monotonic()


class Skip(Exception):
    """A step that no longer fits in the budget."""


def left():
    return BUDGET - (time.monotonic() - T0)


def need(seconds, what):
    if left() < seconds:
        raise Skip("skipped (%s: budget)" % what)


def log(msg):
    sys.stderr.write("[pop3_bench %6.1fs] %s\n" % (time.monotonic() - T0, msg))
    sys.stderr.flush()


# --------------------------------------------------------------------
# Process trees: CPU and memory
# --------------------------------------------------------------------

def stat_fields(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rindex(")") + 2:].split()


def cpu_seconds(root):
    """utime+stime of root's tree, plus what root reaped (cutime+cstime)."""
    total = 0
    for p in tree(root):
        f = stat_fields(p)
        if f is None:
            continue
        total += int(f[11]) + int(f[12])
        if p == root:
            total += int(f[13]) + int(f[14])
    return total / CLK


def memory_kb(root):
    """(sum of PSS, sum of RSS, processes) of root's tree, in kB."""
    pss = rss = n = 0
    for p in tree(root):
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
            n += 1
        except OSError:
            pass
    return pss, rss, n


def wait_gone(pids, timeout=10.0):
    """Wait (bounded) until none of pids is in /proc any more (exited
    and reaped, so that its CPU time is in its parent's cutime)."""
    deadline = time.monotonic() + timeout
    pids = list(pids)
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if os.path.exists("/proc/%d" % p)]
        if pids:
            time.sleep(0.01)
    return not pids


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n if hard == resource.RLIM_INFINITY else min(n, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --------------------------------------------------------------------
# A raw POP3 client reading whole replies
# --------------------------------------------------------------------

class Pop3:
    def __init__(self, port, greeting, timeout=IO_TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0
        got = self.line()
        if got + b"\r\n" != greeting:
            raise RuntimeError("greeting %r" % got)

    def _more(self):
        if self.pos > (1 << 20):
            del self.buf[:self.pos]
            self.pos = 0
        chunk = self.sock.recv(1 << 18)
        if not chunk:
            raise EOFError("closed; have %r" % bytes(self.buf[self.pos:self.pos + 200]))
        self.buf += chunk

    def line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                out = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return out
            self._more()

    def multi(self):
        """Skip a multi-line body (after its first line) through its
        final ".": its length on the wire."""
        start = self.pos
        scan = self.pos - 2         # the CRLF of the first line
        while True:
            i = self.buf.find(b"\r\n.\r\n", scan)
            if i >= 0:
                self.pos = i + 5
                return self.pos - start
            scan = max(start - 2, len(self.buf) - 4)
            base = self.pos
            self._more()
            shift = base - self.pos          # _more() may have compacted
            start -= shift
            scan -= shift

    def send(self, data):
        self.sock.sendall(data)

    def cmd(self, line):
        self.send(line + b"\r\n")
        return self.line()

    def ok(self, line, want=None):
        got = self.cmd(line)
        if not got.startswith(b"+OK") or (want is not None and got != want):
            raise RuntimeError("%s: %r" % (line.decode(errors="replace").split(" ")[0], got))
        return got

    def login(self, user, password):
        self.ok(b"USER " + user.encode())
        self.ok(b"PASS " + password.encode(), b"+OK Logged in.")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def retr_reply(c, n):
    """Read the reply to RETR n: its message octets."""
    first = c.line()
    if not (first.startswith(b"+OK ") and first.endswith(b" octets")):
        raise RuntimeError("RETR %d: %r" % (n, first))
    c.multi()
    return int(first.split()[1])


# --------------------------------------------------------------------
# The servers
# --------------------------------------------------------------------

class Postino:
    name = "postino"

    def __init__(self, top):
        self.dir = os.path.join(top, "postino")
        os.mkdir(self.dir)
        os.chmod(self.dir, 0o755)
        # private copies: a rebuild of build/ during the run changes nothing
        self.bin = os.path.join(self.dir, "postino")
        self.admin_bin = os.path.join(self.dir, "postino-admin")
        shutil.copy2(POSTINO, self.bin)
        shutil.copy2(ADMIN, self.admin_bin)
        self.data_dir = os.path.join(self.dir, "data")
        self.conf = os.path.join(self.dir, "postino.conf")
        self.log_path = os.path.join(self.dir, "postino.log")
        self.mx_port = free_port()
        self.port = free_port()
        while self.port == self.mx_port:
            self.port = free_port()
        dead_dns = free_port()
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "hostname = %s" % HOSTNAME,
                "data_dir = %s" % self.data_dir,
                "[listener mx]",
                "listen = 127.0.0.1:%d" % self.mx_port,
                "profile = mx",
                "[listener pop3]",
                "listen = 127.0.0.1:%d" % self.port,
                "profile = pop3",
                "auth_plaintext_without_tls = yes",
                "[smtp]",
                "max_connections = 20000",
                "max_connections_per_ip = 20000",
                "peername_lookup = no",
                "[antispam]",
                "reject_unknown_sender_domain = no",
                "spf = no",
                "[intrusion]",
                "bypass = 127.0.0.1",
                "[dns]",
                "servers = 127.0.0.1:%d" % dead_dns,
            ]) + "\n")
        os.chmod(self.conf, 0o644)
        self.proc = None
        self.admin("domain", "add", DOMAIN)
        self.admin("account", "add", USER, "--password-stdin", stdin=PASSWORD + "\n")

    def maildir(self, addr):
        local, domain = addr.split("@")
        return os.path.join(self.data_dir, "mail", domain, local)

    def admin(self, *args, stdin=None):
        r = subprocess.run([self.admin_bin, "-c", self.conf] + list(args), input=stdin,
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("postino-admin %s: %s%s" % (" ".join(args), r.stdout, r.stderr))

    def start(self):
        with open(self.log_path, "ab") as lg:
            self.proc = subprocess.Popen([self.bin, "-c", self.conf], stdin=subprocess.DEVNULL,
                                         stdout=lg, stderr=lg, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("postino exited at start: " + self.log_tail())
            try:
                c = Pop3(self.port, POSTINO_GREETING, timeout=2)
                c.cmd(b"QUIT")
                c.close()
                if len(tree(self.proc.pid)) >= 3:
                    return
            except (OSError, RuntimeError, EOFError):
                pass
            time.sleep(0.05)
        raise RuntimeError("postino did not start: " + self.log_tail())

    @property
    def root(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM by PID (the parent stops its children), bounded; then
        SIGKILL to whatever of its tree is left."""
        if self.proc is None:
            return
        family = tree(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        for p in family:
            if p == self.proc.pid and self.proc.poll() is not None:
                continue
            if not wait_gone([p], 5 if p != self.proc.pid else 0):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None

    def log_tail(self, n=20):
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return ""


class Dovecot:
    """DovecotPop3 with the interface the measurements use."""
    name = "Dovecot"

    def __init__(self, top, maildir, extra_users, max_connections, login_processes):
        self.dv = DovecotPop3(top, maildir, USER, PASSWORD, extra_users=extra_users,
                              max_connections=max_connections,
                              login_processes=login_processes,
                              login_shared_processes=SHARED_LOGIN_PROCS)

    def start(self):
        self.dv.start(timeout=START_TIMEOUT)

    @property
    def port(self):
        return self.dv.port

    @property
    def root(self):
        return self.dv.pid

    def alive(self):
        return self.dv.alive()

    def stop(self):
        self.dv.stop()

    def log_tail(self, n=20):
        return self.dv.log(tail=n)


# --------------------------------------------------------------------
# Preparation: postino's delivery
# --------------------------------------------------------------------

def message(i):
    """Message i: MSG_SIZE octets as sent, CRLF line ends, no leading dot."""
    head = (b"From: <%s>\r\nTo: <%s>\r\nSubject: pop3 bench message %d\r\n"
            b"Message-ID: <pop3-bench-%d@example.org>\r\n\r\n"
            % (SENDER.encode(), USER.encode(), i, i))
    line = b"%06d " % i + b"x" * 71 + b"\r\n"          # 79 + CRLF = 80 octets
    msg = head + line * ((MSG_SIZE - len(head)) // len(line))
    rest = MSG_SIZE - len(msg)                        # 0 to 79
    if rest >= 2:
        msg += b"y" * (rest - 2) + b"\r\n"
    elif rest == 1:
        msg = msg[:-2] + b"y\r\n"
    assert len(msg) == MSG_SIZE, len(msg)
    return msg


def small_message(i):
    return (b"From: <%s>\r\nSubject: login bench %d\r\n\r\n" % (SENDER.encode(), i)
            + (b"z" * 70 + b"\r\n") * 14)


class Smtp:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT,
                                             source_address=(SOURCE, 0))
        self.buf = b""
        self.reply(220)
        self.cmd(b"EHLO bench.example.org", 250)

    def reply(self, code):
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError("SMTP closed")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            if line[3:4] != b"-":
                if not line.startswith(b"%d" % code):
                    raise RuntimeError("SMTP: %r, wanted %d" % (line, code))
                return line

    def cmd(self, line, code):
        self.sock.sendall(line + b"\r\n")
        return self.reply(code)

    def send(self, msg, rcpts):
        self.cmd(b"MAIL FROM:<%s>" % SENDER.encode(), 250)
        for r in rcpts:
            self.cmd(b"RCPT TO:<%s>" % r.encode(), 250)
        self.cmd(b"DATA", 354)
        stuffed = b"\r\n".join(b"." + ln if ln.startswith(b".") else ln
                               for ln in msg.split(b"\r\n"))
        self.sock.sendall(stuffed + b".\r\n")
        self.reply(250)

    def close(self):
        try:
            self.cmd(b"QUIT", 221)
        except (OSError, RuntimeError, EOFError):
            pass
        self.sock.close()


def count_files(md):
    n = 0
    for sub in ("new", "cur"):
        try:
            n += len(os.listdir(os.path.join(md, sub)))
        except OSError:
            pass
    return n


def wait_files(mds, want, timeout):
    deadline = time.monotonic() + min(timeout, max(1.0, left()))
    while True:
        have = sum(count_files(md) for md in mds)
        if have >= want:
            return have
        if time.monotonic() >= deadline:
            raise RuntimeError("%d of %d messages in the Maildir(s) after %.0fs"
                               % (have, want, timeout))
        time.sleep(0.1)


def login_user(i):
    return "l%04d@%s" % (i + 1, DOMAIN)


def prepare(p):
    """Deliver MSGS messages to USER and one to each login account."""
    t = time.monotonic()
    c = Smtp(p.mx_port)
    for i in range(MSGS):
        c.send(message(i), [USER])
    c.close()
    wait_files([p.maildir(USER)], MSGS, DELIVERY_TIMEOUT)
    log("%d messages delivered by postino in %.1fs" % (MSGS, time.monotonic() - t))
    if LOGIN_N:
        t = time.monotonic()
        c = Smtp(p.mx_port)
        users = [login_user(i) for i in range(LOGIN_N)]
        for k in range(0, LOGIN_N, 100):
            c.send(small_message(k), users[k:k + 100])
        c.close()
        wait_files([p.maildir(u) for u in users], LOGIN_N, DELIVERY_TIMEOUT)
        log("%d login mailboxes filled in %.1fs" % (LOGIN_N, time.monotonic() - t))


# --------------------------------------------------------------------
# (a) RETR throughput
# --------------------------------------------------------------------

def retr_session(srv, greeting, pipelined):
    """One session: login, RETR 1..MSGS, QUIT.  Returns (seconds of the
    RETR loop, message octets, CPU seconds of the server's tree from
    connect until its session process is gone)."""
    cpu0 = cpu_seconds(srv.root)
    before = set(tree(srv.root))
    c = Pop3(srv.port, greeting)
    try:
        c.login(USER, PASSWORD)
        stat = c.ok(b"STAT").split()
        if int(stat[1]) != MSGS:
            raise RuntimeError("STAT: %r, wanted %d messages" % (stat, MSGS))
        octets = 0
        t = time.perf_counter()
        if not pipelined:
            for n in range(1, MSGS + 1):
                c.send(b"RETR %d\r\n" % n)
                octets += retr_reply(c, n)
        else:
            sent = done = 0
            while done < MSGS:
                batch = []
                while sent < MSGS and sent - done < WINDOW:
                    sent += 1
                    batch.append(b"RETR %d\r\n" % sent)
                if batch:
                    c.send(b"".join(batch))
                done += 1
                octets += retr_reply(c, done)
        secs = time.perf_counter() - t
        if octets != int(stat[2]):
            raise RuntimeError("RETR octets %d != STAT %s" % (octets, stat[2].decode()))
        session = [p for p in tree(srv.root) if p not in before]
        c.ok(b"QUIT")
    finally:
        c.close()
    wait_gone(session)          # Dovecot's pop3 process, reaped: in cutime
    time.sleep(0.2)             # postino's store finishing the update
    return secs, octets, cpu_seconds(srv.root) - cpu0


def warm_up(srv, greeting):
    c = Pop3(srv.port, greeting)
    try:
        c.login(USER, PASSWORD)
        c.send(b"UIDL\r\n")
        c.line()
        c.multi()
        for n in range(1, MSGS + 1):
            c.send(b"RETR %d\r\n" % n)
            retr_reply(c, n)
        c.ok(b"QUIT")
    finally:
        c.close()
    time.sleep(0.5)


def throughput(srv, greeting, res):
    need(30, "warm-up")
    warm_up(srv, greeting)
    for mode, pipelined in (("serial", False), ("pipelined", True)):
        runs = []
        for _ in range(RUNS):
            need(20, "RETR run")
            runs.append(retr_session(srv, greeting, pipelined))
        secs = statistics.median(r[0] for r in runs)
        octets = runs[0][1]
        res[mode + ".msgs"] = MSGS / secs
        res[mode + ".mb"] = octets / secs / 1e6
        # CPU times come in clock ticks (10 ms): the mean over the runs
        res[mode + ".cpu"] = sum(r[2] for r in runs) * 1000.0 / (MSGS * len(runs))
        res["octets"] = octets
        log("%s %s: %.0f msgs/s, %.1f MB/s, %.3f CPU s / 1000 RETR (runs: %s)"
            % (srv.name, mode, res[mode + ".msgs"], res[mode + ".mb"], res[mode + ".cpu"],
               ", ".join("%.3fs/%.2fcpu" % (r[0], r[2]) for r in runs)))


# --------------------------------------------------------------------
# (b) memory per idle connection
# --------------------------------------------------------------------

def idle(srv, greeting, n, users=None):
    """Open n connections (each reads the greeting; with users, logs in
    as users[i]); (PSS kB, RSS kB) growth per connection, the process
    counts before and after, and the seconds it took to open them all."""
    need(30, "idle connections")
    time.sleep(0.5)
    pss0, rss0, procs0 = memory_kb(srv.root)
    socks = []
    t = time.monotonic()
    deadline = t + max(10.0, min(left() - 20, 240.0))
    try:
        for i in range(n):
            if time.monotonic() > deadline:
                raise RuntimeError("%d of %d connections open when the time ran out" % (i, n))
            c = Pop3(srv.port, greeting)
            socks.append(c)
            if users:
                c.login(users[i], PASSWORD)
        opened = time.monotonic() - t
        time.sleep(SETTLE)
        pss1, rss1, procs1 = memory_kb(srv.root)
        for c in socks:         # every session still there?
            c.sock.settimeout(0)
            try:
                if c.sock.recv(1) == b"":
                    raise RuntimeError("the server closed an idle connection")
            except BlockingIOError:
                pass
    finally:
        for c in socks:
            c.close()
    log("%s: %d %s connections in %.1fs: PSS %d -> %d kB, RSS %d -> %d kB, processes %d -> %d"
        % (srv.name, n, "logged-in" if users else "idle", opened, pss0, pss1, rss0, rss1,
           procs0, procs1))
    # back to the processes of before (bounded)
    end = time.monotonic() + 30
    while len(tree(srv.root)) > procs0 and time.monotonic() < end:
        time.sleep(0.1)
    return (pss1 - pss0) / n, (rss1 - rss0) / n, procs0, procs1, opened


def memory(srv, greeting, res, with_login=True):
    try:
        res["idle"] = idle(srv, greeting, IDLE_N)
    except Skip as e:
        res["idle"] = str(e)
    except Exception as e:      # noqa: BLE001 - reported in the table
        res["idle"] = "error: %s" % e
    if with_login and LOGIN_N:
        try:
            res["login"] = idle(srv, greeting, LOGIN_N,
                                [login_user(i) for i in range(LOGIN_N)])
        except Skip as e:
            res["login"] = str(e)
        except Exception as e:  # noqa: BLE001
            res["login"] = "error: %s" % e


# --------------------------------------------------------------------
# The report
# --------------------------------------------------------------------

def fmt(v, digits):
    if isinstance(v, str):
        return v
    if v is None:
        return "-"
    return "{:,.{d}f}".format(v, d=digits)


def ratio(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
        return "%.2f" % (a / b)
    return "-"


def table(pr, dr, hp):
    rows = []

    def add(label, key, digits, pick=None):
        a, b = pr.get(key), dr.get(key)
        if pick is not None:
            a = a[pick] if isinstance(a, tuple) else a
            b = b[pick] if isinstance(b, tuple) else b
        rows.append((label, fmt(a, digits), fmt(b, digits), ratio(a, b)))

    for mode, what in (("serial", "one RETR at a time"),
                       ("pipelined", "pipelined, %d outstanding" % WINDOW)):
        add("RETR x%d (%s): messages/s" % (MSGS, what), mode + ".msgs", 0)
        add("RETR x%d (%s): MB/s" % (MSGS, what), mode + ".mb", 1)
        add("RETR x%d (%s): server CPU s per 1,000 RETRs" % (MSGS, what), mode + ".cpu", 3)
    add("%d idle connections (greeting read): PSS kB per connection" % IDLE_N, "idle", 1, 0)
    add("%d idle connections (greeting read): RSS kB per connection" % IDLE_N, "idle", 1, 1)
    pi, di = pr.get("idle"), dr.get("idle")
    rows.append(("%d idle connections: server processes before -> after" % IDLE_N,
                 "%d -> %d" % pi[2:4] if isinstance(pi, tuple) else fmt(pi, 0),
                 "%d -> %d" % di[2:4] if isinstance(di, tuple) else fmt(di, 0), "-"))
    add("%d idle connections: seconds to open them one by one" % IDLE_N, "idle", 1, 4)
    if LOGIN_N:
        add("%d logged-in idle sessions: PSS kB per session" % LOGIN_N, "login", 1, 0)
        add("%d logged-in idle sessions: RSS kB per session" % LOGIN_N, "login", 1, 1)
        pl, dl = pr.get("login"), dr.get("login")
        rows.append(("%d logged-in idle sessions: server processes before -> after" % LOGIN_N,
                     "%d -> %d" % pl[2:4] if isinstance(pl, tuple) else fmt(pl, 0),
                     "%d -> %d" % dl[2:4] if isinstance(dl, tuple) else fmt(dl, 0), "-"))
        add("%d logged-in idle sessions: seconds to open and log in one by one" % LOGIN_N,
            "login", 1, 4)
    h = hp.get("idle")
    if h is not None:
        a = pr.get("idle")
        for i, what in ((0, "PSS"), (1, "RSS")):
            b = h[i] if isinstance(h, tuple) else h
            aa = a[i] if isinstance(a, tuple) else a
            rows.append(("%d idle connections, Dovecot login service_count = 0 "
                         "(%d processes): %s kB per connection" % (IDLE_N, SHARED_LOGIN_PROCS, what),
                         fmt(aa, 1), fmt(b, 1), ratio(aa, b)))
    out = ["| measure | postino | Dovecot | postino/Dovecot |", "|---|---:|---:|---:|"]
    out += ["| %s | %s | %s | %s |" % r for r in rows]
    return "\n".join(out)


def versions():
    try:
        dv = subprocess.run([dovecot_private.DOVECOT, "--version"], capture_output=True,
                            text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        dv = "?"
    return dv


# --------------------------------------------------------------------

def main():
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    why = DovecotPop3.unavailable()
    if why:
        print("pop3_bench: Dovecot POP3 not available: %s" % why)
        return 0
    for b in (POSTINO, ADMIN):
        if not os.access(b, os.X_OK):
            print("pop3_bench: %s not built" % b)
            return 0
    nofile = raise_nofile(4 * max(IDLE_N, LOGIN_N) + 2000)
    load0 = os.getloadavg()[0]
    top = tempfile.mkdtemp(prefix="pop3-bench-")
    os.chmod(top, 0o755)
    p = dv = None
    pr, dr, hp = {}, {}, {}
    notes = []
    try:
        p = Postino(top)
        t = time.monotonic()
        for i in range(LOGIN_N):
            if left() < BUDGET / 2:
                raise RuntimeError("creating %d accounts takes too long (%d made)"
                                   % (LOGIN_N, i))
            p.admin("account", "add", login_user(i), "--password-stdin",
                    stdin=PASSWORD + "\n")
        log("%d accounts made in %.1fs" % (LOGIN_N, time.monotonic() - t))
        p.start()
        prepare(p)
        # Dovecot's identical copy, before any POP3 login
        mail_copy = os.path.join(top, "dovecot-mail")
        subprocess.run(["cp", "-a", os.path.join(p.data_dir, "mail"), mail_copy],
                       check=True, timeout=300)
        copy_of = lambda a: os.path.join(mail_copy, DOMAIN, a.split("@")[0])  # noqa: E731
        sizes = sum(os.path.getsize(os.path.join(d, n))
                    for d in (os.path.join(p.maildir(USER), s) for s in ("new", "cur"))
                    for n in os.listdir(d))
        notes.append("Maildir: %d messages, %d octets in files (10,240 sent + postino's "
                     "Received: header each), delivered by postino over SMTP; Dovecot "
                     "serves a `cp -a` copy made before any POP3 login" % (MSGS, sizes))

        try:
            throughput(p, POSTINO_GREETING, pr)
        except Skip as e:
            pr["serial.msgs"] = str(e)
        except Exception as e:  # noqa: BLE001
            pr["serial.msgs"] = "error: %s" % e
            log("postino throughput: %s\n%s" % (e, p.log_tail()))
        memory(p, POSTINO_GREETING, pr)
        p.stop()

        extra = [(login_user(i), PASSWORD, copy_of(login_user(i))) for i in range(LOGIN_N)]
        dv = Dovecot(top, copy_of(USER), extra, max(IDLE_N, LOGIN_N) + 50, "per-connection")
        dv.start()
        try:
            throughput(dv, DOVECOT_GREETING, dr)
        except Skip as e:
            dr["serial.msgs"] = str(e)
        except Exception as e:  # noqa: BLE001
            dr["serial.msgs"] = "error: %s" % e
            log("Dovecot throughput: %s\n%s" % (e, dv.log_tail()))
        memory(dv, DOVECOT_GREETING, dr)
        dv.stop()

        # Dovecot with shared login processes (high-performance mode)
        try:
            need(40, "Dovecot high-performance login")
            dv = Dovecot(top, copy_of(USER), [], IDLE_N + 50, "shared")
            dv.start()
            time.sleep(0.5)
            memory(dv, DOVECOT_GREETING, hp, with_login=False)
            dv.stop()
        except Skip as e:
            hp["idle"] = str(e)
        except Exception as e:  # noqa: BLE001
            hp["idle"] = "error: %s" % e
        if "octets" in pr and "octets" in dr and pr["octets"] != dr["octets"]:
            notes.append("MISMATCH: postino sent %d message octets for the %d RETRs, Dovecot %d"
                         % (pr["octets"], MSGS, dr["octets"]))
    except Exception as e:      # noqa: BLE001
        notes.append("error: %s" % e)
        log("error: %s" % e)
    finally:
        for s in (p, dv):
            if s is not None:
                try:
                    s.stop()
                except Exception as e:  # noqa: BLE001
                    log("stop %s: %s" % (s.name, e))
        if KEEP:
            log("kept %s" % top)
        else:
            shutil.rmtree(top, ignore_errors=True)

    print()
    print("## POP3: postino vs Dovecot %s (%s, %d CPUs, %s)"
          % (versions(), platform.machine(), os.cpu_count() or 0, platform.release()))
    print()
    for n in notes:
        print("- %s" % n)
    print("- plain TCP on 127.0.0.1 for both (postino: profile = pop3, "
          "auth_plaintext_without_tls = yes; Dovecot: ssl = no, disable_plaintext_auth = no)")
    print("- RETR: one session, login, all %d RETRs, QUIT; %d runs after an untimed "
          "warm-up session; msgs/s and MB/s (10^6 message octets) over the RETR loop, "
          "median of the runs; CPU: user+sys of the server's process tree from connect "
          "to the session's end, mean of the runs" % (MSGS, RUNS))
    print("- idle: connections opened one by one from a Python client; PSS/RSS: growth of "
          "the sum over every process of the server (Dovecot: master, log, config, anvil, "
          "auth and each pop3-login / pop3 process) divided by the connections; "
          "logged-in: each session its own account with one 1 KB message")
    print("- client RLIMIT_NOFILE %d; total %.0fs; load average at the start %.2f, at the "
          "end %.2f (anything else running skews the numbers)"
          % (nofile, time.monotonic() - T0, load0, os.getloadavg()[0]))
    print()
    print(table(pr, dr, hp))
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
