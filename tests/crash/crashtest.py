#!/usr/bin/python3
"""
Crash test: SIGKILL postino under load, restart it, and check that no
acknowledged message is lost, duplicated or cut short (SPEC R5.1/R5.2,
docs/queue.md).

Each of K rounds (CRASH_ROUNDS, default 20) runs build/loadgen at
concurrency 20 with 1 KB messages against one postino, freezes and
SIGKILLs every postino process (the parent and all its descendants,
found through /proc/<pid>/task/*/children) at a random instant 0.2-2 s
into the load, restarts postino on the same data dir while the load
goes on, waits for loadgen to stop (its time bound) and for the spool
to drain.  At the end every message whose 250 loadgen received (the
qid file, accumulated over rounds) must be in the Maildir exactly once,
byte for byte what was sent after the Received header; no message may
appear twice, none partially, and tmp/ must be empty.

Prints one line "K kills, N acknowledged, L lost, D duplicated, P
partial" (and informational lines before it); exits 1 if L, D or P is
not zero.  Standard library only.  Only loopback; every wait bounded;
only processes started here are signalled, by PID.

Then the outbound rounds (issue 10; CRASH_OUT_ROUNDS, default
CRASH_ROUNDS; 0 skips them): a second postino, in a data dir of its
own, trusts 127.0.0.1 and so relays what loadgen sends to
crash@far.test; a private dnsmasq gives far.test the MX mx1.far.test =
127.0.0.2, where Postfix's smtp-sink listens on postino's [delivery]
smtp_port and dumps each transaction to a file (retry_first 1 s,
retry_max 2 s).  Each round is an inbound round as above, against that
postino: the random SIGKILL hits while mail is both arriving and being
relayed (the round's line shows the connections open to the peer and
the messages queued at that instant), postino restarts, and the round
ends once spool/incoming and spool/queue are empty (at most 60 s, or
20 s without their count coming down: a hang).  At the end every
message whose 250 loadgen received must be among the sink's
transactions at least once, byte for byte: postino's Received header,
then exactly what loadgen sent, with the envelope <loadgen@example.org>
-> <crash@far.test>.  Lost: no such copy; partial: a dump that is not
that (wrong octets, wrong envelope, or not a complete dump: smtp-sink
removes the dump of a transaction cut off before its final ".", so any
file left was a whole transaction); duplicated: a Message-Id the sink
took more than once.

Prints "K kills outbound, N acknowledged, L lost, D duplicated, P
partial" after an info line; the outbound rounds fail if L or P is not
zero, on a hang, or if a role died or logged a panic or fatal error by
itself.  Duplicates are reported and do not fail: remote delivery is at
least once by design (docs/queue.md).  The peer's 250 reaches
spool/deferred/<qid> (or the removal of the queue file) only at the end
of the attempt, some milliseconds after the 250, so a SIGKILL in
between sends the message again after the restart; they cannot be 0 by
design.  Needs /usr/sbin/smtp-sink (postfix) and /usr/sbin/dnsmasq.

Environment: CRASH_ROUNDS, CRASH_OUT_ROUNDS, CRASH_SEED (random seed),
POSTINO_BUILD (directory of postino and postino-admin, default build),
LOADGEN (default build/loadgen), CRASH_KEEP=1 keeps the temporary
directories.
"""
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "support"))
from procs import free_port, pid_alive, tree  # noqa: E402
from dnsmasq import DNSMASQ, Dnsmasq  # noqa: E402
from smtp_sink import SmtpSink, common_free_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_path(env, default):
    p = os.environ.get(env, default)
    return p if os.path.isabs(p) else os.path.join(ROOT, p)


BUILD = build_path("POSTINO_BUILD", "build")
POSTINO = os.path.join(BUILD, "postino")
ADMIN = os.path.join(BUILD, "postino-admin")
LOADGEN = build_path("LOADGEN", os.path.join("build", "loadgen"))

DOMAIN = "example.test"
RCPT = "demo@example.test"
SENDER = "sender@example.org"
HOSTNAME = "mx.example.test"

CONCURRENCY = 20
SIZE = 1024
PER_SESSION = 10
LOAD_SECONDS = 3            # loadgen's own hard stop (-t)
KILL_AFTER = (0.2, 2.0)     # random instant into the load
START_TIMEOUT = 15.0
DRAIN_TIMEOUT = 60.0
LOADGEN_GRACE = 10.0        # past LOAD_SECONDS before loadgen counts as hung

MID_RE = re.compile(rb"^Message-Id: (<[^>\r\n]+>)\r$", re.M)
ALPHA = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
LINE_LEN = 76


# --------------------------------------------------------------------
# What loadgen sent (the same function as gen_message() in loadgen.c)
# --------------------------------------------------------------------

def fnv1a(data):
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def gen_message(mid, size=SIZE, sender="loadgen@example.org", rcpt=RCPT):
    """The octets loadgen sends for Message-Id mid (bytes, with <>)."""
    m = (b"From: <%s>\r\nTo: <%s>\r\nSubject: loadgen %s\r\nMessage-Id: %s\r\n\r\n"
         b".leading dot, stuffed on the wire\r\n"
         % (sender.encode(), rcpt.encode(), mid, mid))
    h = fnv1a(mid)
    j = 0
    while True:
        line = b"%04d " % (j % 10000) + bytes(
            ALPHA[(h + 7 * j + k) % 62] for k in range(LINE_LEN - 5))
        if len(m) + LINE_LEN + 2 <= size:
            m += line + b"\r\n"
            j += 1
            continue
        rem = size - len(m)
        if rem >= 2:
            m += line[:rem - 2] + b"\r\n"
        return m


def split_received(data):
    """(Received header, rest) of a delivered file, or None if the file
    does not start with one whole Received: header."""
    if not data.startswith(b"Received: from "):
        return None
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol == -1:
            return None
        pos = eol + 2
        if pos >= len(data) or data[pos:pos + 1] not in (b" ", b"\t"):
            return data[:pos], data[pos:]


# --------------------------------------------------------------------
# The server
# --------------------------------------------------------------------

class Server:
    """One postino in its own temporary directory (as tests/e2e does)."""

    def __init__(self, extra_lines=(), prefix="postino-crash-"):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        # As root postino drops to the 'postino' user, who must reach
        # data_dir through this directory.
        os.chmod(self.dir, 0o755)
        self.data_dir = os.path.join(self.dir, "data")
        self.conf = os.path.join(self.dir, "postino.conf")
        self.log_path = os.path.join(self.dir, "postino.log")
        self.port = free_port()
        self.proc = None
        self.starts = 0
        lines = [
            "hostname = %s" % HOSTNAME,
            "data_dir = %s" % self.data_dir,
            "[listener mx]",
            "listen = 127.0.0.1:%d" % self.port,
            "profile = mx",
            "[smtp]",
            # 20 load connections plus our readiness probes, all from
            # 127.0.0.1: above the per-address default of 20.
            "max_connections = 1000",
            "max_connections_per_ip = 1000",
            # No reverse lookup before the banner: the machine's resolver
            # may drop part of a burst, and a greeting then waits 2 s,
            # so that a kill finds less in flight.
            "peername_lookup = no",
            "[antispam]",
            "reject_unknown_sender_domain = no",
            "spf = no",
            "[intrusion]",
            "bypass = 127.0.0.1",
        ] + list(extra_lines)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(self.conf, 0o644)
        self.admin("domain", "add", DOMAIN)
        self.admin("account", "add", RCPT, "--password-stdin", stdin="crash-pw-1\n")

    def note(self, text):
        with open(self.log_path, "a") as f:
            f.write("[crashtest] %s\n" % text)

    def admin(self, *args, stdin=None):
        r = subprocess.run([ADMIN, "-c", self.conf] + list(args), input=stdin,
                           capture_output=True, text=True, timeout=30)
        self.note("admin %s -> %d %s%s" % (" ".join(args), r.returncode,
                                           r.stdout.strip(), r.stderr.strip()))
        if r.returncode != 0:
            raise RuntimeError("postino-admin %s: %s%s" % (" ".join(args), r.stdout, r.stderr))

    def start(self):
        self.starts += 1
        self.note("---- start #%d ----" % self.starts)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([POSTINO, "-c", self.conf], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True)
        self.wait_ready()

    def wait_ready(self):
        """Until the mx listener greets and both roles are running."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("postino exited with %s at start" % self.proc.returncode)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.settimeout(2)
                    if s.recv(512).startswith(b"220 ") and len(tree(self.proc.pid)[1:]) >= 2:
                        s.sendall(b"QUIT\r\n")
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("postino not ready after %.0f s" % START_TIMEOUT)

    def kill9(self):
        """Freeze, then SIGKILL, the parent and every descendant; returns
        the PIDs.  Frozen first so that none reacts to another's death."""
        pids = [self.proc.pid] + tree(self.proc.pid)[1:]
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for p in pids:
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
        self.note("---- SIGKILL %s ----" % pids)
        self.proc.wait(timeout=10)
        for p in pids[1:]:
            deadline = time.monotonic() + 10
            while pid_alive(p):
                if time.monotonic() > deadline:
                    raise RuntimeError("pid %d survived SIGKILL" % p)
                time.sleep(0.02)
        return pids

    def stop(self):
        """SIGTERM and a bounded wait; SIGKILL whatever is left."""
        if self.proc is None or self.proc.poll() is not None:
            return
        kids = tree(self.proc.pid)[1:]
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill9()
            return
        for p in kids:
            deadline = time.monotonic() + 10
            while pid_alive(p) and time.monotonic() < deadline:
                time.sleep(0.05)
            if pid_alive(p):
                os.kill(p, signal.SIGKILL)

    def spool_files(self):
        """Paths (relative to spool/) of every file in incoming/ and queue/."""
        spool = os.path.join(self.data_dir, "spool")
        out = []
        for sub in ("incoming", "queue"):
            for d, _, names in os.walk(os.path.join(spool, sub)):
                out += [os.path.relpath(os.path.join(d, n), spool) for n in names]
        return out

    def wait_drained(self):
        """True once spool/incoming and spool/queue are empty."""
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < deadline:
            if not self.spool_files():
                return True
            time.sleep(0.05)
        return False

    def maildir(self):
        local, domain = RCPT.split("@")
        return os.path.join(self.data_dir, "mail", domain, local)

    def recovered(self):
        """What the last start recovered: the messages scheduled again
        (queue event=scheduled now=N later=M) and the incoming files
        discarded (queue event=recovered discarded-incoming=I)."""
        sched = disc = None
        try:
            with open(self.log_path, "rb") as f:
                for line in f:
                    m = re.search(rb"event=scheduled now=(\d+) later=(\d+)", line)
                    if m:
                        sched = int(m.group(1)) + int(m.group(2))
                    m = re.search(rb"event=recovered discarded-incoming=(\d+)", line)
                    if m:
                        disc = int(m.group(1))
        except OSError:
            pass
        if sched is None or disc is None:
            return "recovery not logged"
        return "recovered %d queued, %d incoming discarded" % (sched, disc)

    def log_tail(self, lines=40, grep=None):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        if grep:
            text = [l for l in text if any(g in l for g in grep)]
        return "\n".join(text[-lines:])


# --------------------------------------------------------------------
# The check
# --------------------------------------------------------------------

class Ledger:
    """Every file seen in new/ and cur/, by Message-Id, and the partial ones."""

    def __init__(self, server):
        self.server = server
        self.seen = set()       # "new/name" already checked
        self.by_mid = {}        # mid -> ["new/name", ...]
        self.partial = []       # (file, reason)
        self.stray_tmp = []

    def scan(self, rnd):
        md = self.server.maildir()
        for sub in ("new", "cur"):
            try:
                names = os.listdir(os.path.join(md, sub))
            except FileNotFoundError:
                continue
            for n in names:
                key = sub + "/" + n
                if key in self.seen:
                    continue
                self.seen.add(key)
                self.check_file(rnd, key, os.path.join(md, sub, n))
        try:
            tmp = os.listdir(os.path.join(md, "tmp"))
        except FileNotFoundError:
            tmp = []
        for n in tmp:
            if n not in self.stray_tmp:
                self.stray_tmp.append(n)
                print("round %d: stray file tmp/%s" % (rnd, n))

    def check_file(self, rnd, key, path):
        with open(path, "rb") as f:
            data = f.read()
        parts = split_received(data)
        m = MID_RE.search(parts[1]) if parts else None
        if m is None:
            self.bad(rnd, key, "no Received header or no Message-Id (%d octets)" % len(data))
            return
        mid = m.group(1)
        self.by_mid.setdefault(mid, []).append(key)
        if parts[1] != gen_message(mid):
            self.bad(rnd, key, "%s: %d octets after Received, %d sent" % (
                mid.decode(), len(parts[1]), len(gen_message(mid))))

    def bad(self, rnd, key, why):
        self.partial.append((key, why))
        print("round %d: partial %s: %s" % (rnd, key, why))


def read_acked(path):
    """{mid: qid} of every 250 loadgen received."""
    acked = {}
    try:
        with open(path, "rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    continue        # cannot happen: loadgen exited
                qid, mid = line.rstrip(b"\n").split(b"\t")
                acked[mid] = qid
    except FileNotFoundError:
        pass
    return acked


def run_loadgen(srv, rnd, tag, acked_path, rcpt=RCPT):
    return subprocess.Popen(
        [LOADGEN, "-s", "127.0.0.1:%d" % srv.port, "-c", str(CONCURRENCY),
         "-n", "1000000", "-S", str(SIZE), "-m", str(PER_SESSION),
         "-t", str(LOAD_SECONDS), "-w", "5", "-o", acked_path,
         "-i", "%s-r%02d" % (tag, rnd), "-r", rcpt, "-f", "loadgen@example.org"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def self_check():
    """loadgen and gen_message() above must agree on the octets."""
    mid = b"<selfcheck.7@loadgen.example.org>"
    r = subprocess.run([LOADGEN, "-G", mid.decode(), "-S", str(SIZE), "-r", RCPT,
                        "-f", "loadgen@example.org"], capture_output=True, timeout=10)
    if r.returncode != 0 or r.stdout != gen_message(mid):
        sys.exit("crashtest: loadgen -G and gen_message() disagree; fix one of them")


def inbound(rounds, seed, rng):
    """The inbound rounds; True if they failed."""
    srv = Server()
    acked_path = os.path.join(srv.dir, "acked")
    ledger = Ledger(srv)
    tag = "%x" % seed
    kills, hangs = 0, []
    t0 = time.monotonic()
    print("crashtest: %d rounds, seed %d, dir %s" % (rounds, seed, srv.dir))
    sys.stdout.flush()
    ok = False
    lg = None
    try:
        srv.start()
        for rnd in range(1, rounds + 1):
            delay = rng.uniform(*KILL_AFTER)
            lg = run_loadgen(srv, rnd, tag, acked_path)
            time.sleep(delay)
            pids = srv.kill9()
            kills += 1
            srv.start()
            try:
                out, _ = lg.communicate(timeout=LOAD_SECONDS + LOADGEN_GRACE)
            except subprocess.TimeoutExpired:
                lg.kill()
                out, _ = lg.communicate(timeout=10)
                hangs.append("round %d: loadgen did not stop by itself" % rnd)
            summary = out.decode("utf-8", "replace").splitlines()
            summary = summary[0] if summary else "(no output)"
            if not srv.wait_drained():
                left = srv.spool_files()
                hangs.append("round %d: spool not drained after %.0f s: %d file(s): %s"
                             % (rnd, DRAIN_TIMEOUT, len(left), " ".join(left[:10])))
            ledger.scan(rnd)
            print("round %2d: kill at %.2f s (pids %s), %s; %s" % (
                rnd, delay, " ".join(map(str, pids)), srv.recovered(),
                summary.replace("loadgen: ", "")))
            sys.stdout.flush()
        ok = True
    finally:
        if lg is not None and lg.poll() is None:
            try:
                lg.wait(timeout=LOAD_SECONDS + LOADGEN_GRACE)
            except subprocess.TimeoutExpired:
                lg.kill()
                lg.wait(timeout=10)
        srv.stop()
        if not ok:
            print("crashtest: aborted; postino log tail:\n%s" % srv.log_tail())

    acked = read_acked(acked_path)
    lost, dup, qid_mismatch = [], [], []
    for mid, qid in acked.items():
        files = ledger.by_mid.get(mid, [])
        if not files:
            lost.append(mid)
        elif len(files) > 1:
            dup.append((mid, files))
        elif (b".Q%sR" % qid).decode() not in files[0]:
            qid_mismatch.append((mid, qid, files[0]))
    unacked = {mid: files for mid, files in ledger.by_mid.items() if mid not in acked}
    dup += [(mid, files) for mid, files in unacked.items() if len(files) > 1]
    for mid in lost[:20]:
        print("lost: %s (queued as %s)" % (mid.decode(), acked[mid].decode()))
    for mid, files in dup[:20]:
        print("duplicated: %s in %s" % (mid.decode(), " ".join(files)))
    for mid, qid, f in qid_mismatch[:20]:
        print("qid mismatch: %s acknowledged as %s, delivered as %s" % (
            mid.decode(), qid.decode(), f))
    for h in hangs:
        print("hang: %s" % h)
    partial = len(ledger.partial) + len(ledger.stray_tmp)
    print("info: %d delivered without a 250 to the client (each at most once: %s); "
          "%d stray tmp/ file(s); %d qid mismatch(es); %d hang(s); %.0f s"
          % (len(unacked), "yes" if all(len(f) == 1 for f in unacked.values()) else "no",
             len(ledger.stray_tmp), len(qid_mismatch), len(hangs),
             time.monotonic() - t0))
    print("%d kills, %d acknowledged, %d lost, %d duplicated, %d partial"
          % (kills, len(acked), len(lost), len(dup), partial))
    failed = lost or dup or partial or hangs
    if failed:
        print("crashtest: postino log excerpts in %s/postino.log" % srv.dir)
    elif os.environ.get("CRASH_KEEP") != "1":
        shutil.rmtree(srv.dir, ignore_errors=True)
    return bool(failed)


# --------------------------------------------------------------------
# The outbound phase: postino relays to an smtp-sink found by MX
# --------------------------------------------------------------------

OUT_DOMAIN = "far.test"
OUT_RCPT = "crash@far.test"
OUT_MX = "mx1.far.test"
OUT_PEER = "127.0.0.2"      # smtp-sink; postino is reached on 127.0.0.1
OUT_SENDER = "loadgen@example.org"
OUT_DRAIN_TIMEOUT = 60.0
OUT_DRAIN_IDLE = 20.0       # ... or this long without the spool shrinking
SCHEDULED_RE = re.compile(rb"queue event=scheduled now=(\d+) later=(\d+)")
DISCARDED_RE = re.compile(rb"queue event=recovered discarded-incoming=(\d+)")
QID_RE = re.compile(rb"\(postino\) with \S+ id ([0-9A-F]{16})")
CRASH_RE = re.compile(r"event=role-died|\bpanic: |\bfatal: ")


def peer_sessions(port):
    """Established TCP connections to OUT_PEER:port seen from the client
    side (postino's open outbound sessions), from /proc/net/tcp; -1 if
    it cannot be read."""
    want = "%s:%04X" % ("".join("%02X" % int(b) for b in reversed(OUT_PEER.split("."))),
                        port)
    n = 0
    try:
        with open("/proc/net/tcp") as f:
            next(f, None)
            for line in f:
                fields = line.split()
                if len(fields) > 3 and fields[2] == want and fields[3] == "01":
                    n += 1
    except OSError:
        return -1
    return n


class OutServer(Server):
    """A postino that relays far.test (trusted 127.0.0.1) by MX, through
    the private dnsmasq, to the sink's port."""

    def __init__(self, dns, port):
        super().__init__(extra_lines=[
            "[dns]",
            "servers = %s" % dns.server,
            "[delivery]",
            "smtp_port = %d" % port,
            "retry_first = 1",
            "retry_max = 2",
        ], prefix="postino-crash-out-")
        self.admin("trusted", "add", "127.0.0.1")

    def names(self, sub):
        try:
            return [n for n in os.listdir(os.path.join(self.data_dir, "spool", sub))
                    if not n.startswith(".")]
        except FileNotFoundError:
            return []

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def scheduled(self, timeout=5.0):
        """What the store did at the last start: 'S now, L later, I
        incoming discarded' (it logs that shortly after the greeting)."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.read_log()
            sched = SCHEDULED_RE.findall(log)
            disc = DISCARDED_RE.findall(log)
            if len(sched) >= self.starts and len(disc) >= self.starts:
                return "scheduled %s now, %s later, %s incoming discarded" % (
                    sched[-1][0].decode(), sched[-1][1].decode(), disc[-1].decode())
            if time.monotonic() > deadline:
                return "recovery not logged"
            time.sleep(0.05)

    def wait_drained_out(self):
        """True once spool/incoming and spool/queue are empty; False after
        OUT_DRAIN_TIMEOUT, or once their count has not come down for
        OUT_DRAIN_IDLE seconds."""
        start = time.monotonic()
        low, low_at = None, start
        while True:
            n = len(self.spool_files())
            if n == 0:
                return True
            now = time.monotonic()
            if low is None or n < low:
                low, low_at = n, now
            if now - start > OUT_DRAIN_TIMEOUT or now - low_at > OUT_DRAIN_IDLE:
                return False
            time.sleep(0.05)


def check_outbound(acked, transactions):
    """-> (by_mid {mid: [transaction, ...]} of the byte-exact copies,
    partial [(file, why)], qid mismatches [(mid, acked qid, seen qid)])."""
    by_mid, partial, qid_mismatch = {}, [], []
    for t in transactions:
        name = os.path.basename(t["path"])
        parts = split_received(t["data"])
        m = MID_RE.search(parts[1]) if parts else None
        if m is None:
            partial.append((name, "no Received header or no Message-Id (%d octets)"
                            % len(t["data"])))
            continue
        mid = m.group(1)
        want = gen_message(mid, rcpt=OUT_RCPT)
        if parts[1] != want:
            partial.append((name, "%s: %d octets after Received, %d sent" % (
                mid.decode(), len(parts[1]), len(want))))
            continue
        if t["mail_from"] != OUT_SENDER or t["rcpts"] != [OUT_RCPT]:
            partial.append((name, "%s: envelope MAIL <%s> RCPT %s" % (
                mid.decode(), t["mail_from"], t["rcpts"])))
            continue
        by_mid.setdefault(mid, []).append(t)
        q = QID_RE.search(parts[0])
        seen = q.group(1) if q else b"?"
        if mid in acked and seen != acked[mid]:
            qid_mismatch.append((mid, acked[mid], seen))
    return by_mid, partial, qid_mismatch


def outbound(rounds, seed, rng):
    """The outbound rounds; True if they failed."""
    t0 = time.monotonic()
    top = tempfile.mkdtemp(prefix="postino-crash-peer-")
    os.chmod(top, 0o755)        # smtp-sink as root runs as nobody
    dns = Dnsmasq(hosts={OUT_MX: [OUT_PEER]}, mx={OUT_DOMAIN: [(10, OUT_MX)]},
                  log_queries=False)
    sink = srv = lg = None
    kills, hangs = 0, []
    ok = False
    try:
        dns.start()
        port = common_free_port([OUT_PEER])
        sink = SmtpSink(top, host=OUT_PEER, port=port)
        sink.start()
        srv = OutServer(dns, port)
        acked_path = os.path.join(srv.dir, "acked")
        tag = "%xo" % seed
        print("crashtest: %d outbound rounds, dir %s, peer %s (MX of %s via dnsmasq %s)"
              % (rounds, srv.dir, sink.address, OUT_DOMAIN, dns.server))
        sys.stdout.flush()
        srv.start()
        for rnd in range(1, rounds + 1):
            delay = rng.uniform(*KILL_AFTER)
            lg = run_loadgen(srv, rnd, tag, acked_path, rcpt=OUT_RCPT)
            time.sleep(delay)
            sessions = peer_sessions(port)
            pids = srv.kill9()
            kills += 1
            queued = len(srv.names("queue"))
            srv.start()
            sched = srv.scheduled()
            try:
                out, _ = lg.communicate(timeout=LOAD_SECONDS + LOADGEN_GRACE)
            except subprocess.TimeoutExpired:
                lg.kill()
                out, _ = lg.communicate(timeout=10)
                hangs.append("outbound round %d: loadgen did not stop by itself" % rnd)
            summary = out.decode("utf-8", "replace").splitlines()
            summary = summary[0] if summary else "(no output)"
            t_drain = time.monotonic()
            if not srv.wait_drained_out():
                left = srv.spool_files()
                hangs.append("outbound round %d: spool not drained after %.0f s: %d "
                             "file(s): %s" % (rnd, time.monotonic() - t_drain, len(left),
                                              " ".join(left[:10])))
            print("out round %2d: kill at %.2f s (pids %s) with %d connection(s) open to the peer "
                  "and %d queued, %s; %s; drained in %.1f s, %d at the peer" % (
                      rnd, delay, " ".join(map(str, pids)), sessions, queued, sched,
                      summary.replace("loadgen: ", ""), time.monotonic() - t_drain,
                      len(os.listdir(sink.dump_dir))))
            sys.stdout.flush()
        ok = True
    finally:
        if lg is not None and lg.poll() is None:
            try:
                lg.wait(timeout=LOAD_SECONDS + LOADGEN_GRACE)
            except subprocess.TimeoutExpired:
                lg.kill()
                lg.wait(timeout=10)
        if srv is not None:
            srv.stop()
            if not ok:
                print("crashtest: outbound aborted; postino log tail:\n%s" % srv.log_tail())
        transactions, dumps = [], []
        if sink is not None:
            # postino has stopped: let smtp-sink see the end of any
            # session (it then removes the dump of a transaction cut off
            # before its final ".") before its files are read.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and any(
                    p.startswith(sink.dump_dir + os.sep) for p in sink._open_files()):
                time.sleep(0.05)
            transactions = sink.transactions()
            try:
                dumps = os.listdir(sink.dump_dir)
            except OSError:
                pass
            sink.stop()
        dns.stop()

    acked = read_acked(acked_path)
    by_mid, partial, qid_mismatch = check_outbound(acked, transactions)
    # smtp-sink removes the dump of a transaction cut off before its
    # final "."; a file left that does not parse is a damaged one.
    parsed = {os.path.basename(t["path"]) for t in transactions}
    partial += [(n, "not a complete dump") for n in sorted(set(dumps) - parsed)]
    lost = [mid for mid in acked if mid not in by_mid]
    dup = [(mid, ts) for mid, ts in by_mid.items() if len(ts) > 1]
    unacked = [mid for mid in by_mid if mid not in acked]
    for mid in lost[:20]:
        print("lost outbound: %s (queued as %s)" % (mid.decode(), acked[mid].decode()))
    for name, why in partial[:20]:
        print("partial outbound: %s: %s" % (name, why))
    for mid, ts in dup[:20]:
        print("duplicated outbound: %s %d times (%s)" % (
            mid.decode(), len(ts), " ".join(os.path.basename(t["path"]) for t in ts)))
    for mid, qid, seen in qid_mismatch[:20]:
        print("qid mismatch outbound: %s acknowledged as %s, relayed as %s" % (
            mid.decode(), qid.decode(), seen.decode()))
    crashes = [l for l in srv.read_log().decode("utf-8", "replace").splitlines()
               if CRASH_RE.search(l)]
    for l in crashes[:20]:
        print("crash: %s" % l)
    for h in hangs:
        print("hang: %s" % h)
    left_state = srv.names("deferred")
    print("info: outbound: %d transaction(s) at the peer; %d relayed without a 250 to "
          "the client; %d state file(s) left in spool/deferred; %d qid mismatch(es); "
          "%d role crash(es); %d hang(s); %.0f s"
          % (len(transactions), len(unacked), len(left_state), len(qid_mismatch),
             len(crashes), len(hangs), time.monotonic() - t0))
    print("%d kills outbound, %d acknowledged, %d lost, %d duplicated, %d partial"
          % (kills, len(acked), len(lost), len(dup), len(partial)))
    failed = lost or partial or hangs or crashes
    if failed:
        print("crashtest: outbound postino log in %s/postino.log, the peer's dumps in %s"
              % (srv.dir, sink.dump_dir))
    elif os.environ.get("CRASH_KEEP") != "1":
        shutil.rmtree(srv.dir, ignore_errors=True)
        shutil.rmtree(top, ignore_errors=True)
    return bool(failed)


def main():
    rounds = int(os.environ.get("CRASH_ROUNDS", "20"))
    out_rounds = int(os.environ.get("CRASH_OUT_ROUNDS", str(rounds)))
    seed = int(os.environ.get("CRASH_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    for b in (POSTINO, ADMIN, LOADGEN):
        if not os.access(b, os.X_OK):
            sys.exit("crashtest: %s is not built (make all bench-tools)" % b)
    if out_rounds > 0:
        why = SmtpSink.unavailable() or (
            None if os.access(DNSMASQ, os.X_OK) else "%s not found: install dnsmasq-base "
            "(sh scripts/install-deps.sh)" % DNSMASQ)
        if why:
            sys.exit("crashtest: the outbound rounds need %s (CRASH_OUT_ROUNDS=0 skips "
                     "them)" % why)
    self_check()
    failed = inbound(rounds, seed, rng)
    if out_rounds > 0:
        failed = outbound(out_rounds, seed, rng) or failed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
