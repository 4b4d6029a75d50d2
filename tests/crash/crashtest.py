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

Environment: CRASH_ROUNDS, CRASH_SEED (random seed), POSTINO_BUILD
(directory of postino and postino-admin, default build), LOADGEN
(default build/loadgen), CRASH_KEEP=1 keeps the temporary directory.
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

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="postino-crash-")
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
            "[antispam]",
            "reject_unknown_sender_domain = no",
            "spf = no",
            "[intrusion]",
            "bypass = 127.0.0.1",
        ]
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
        """'queued=Q discarded-incoming=I' of the last start, or '?'."""
        last = "?"
        try:
            with open(self.log_path, "rb") as f:
                for line in f:
                    if b"event=recovered" in line:
                        last = line
        except OSError:
            pass
        m = re.search(rb"queued=(\d+) discarded-incoming=(\d+)", last) if last != "?" else None
        return "recovered %s queued, %s incoming discarded" % (
            m.group(1).decode(), m.group(2).decode()) if m else "recovery not logged"

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


def run_loadgen(srv, rnd, tag, acked_path):
    return subprocess.Popen(
        [LOADGEN, "-s", "127.0.0.1:%d" % srv.port, "-c", str(CONCURRENCY),
         "-n", "1000000", "-S", str(SIZE), "-m", str(PER_SESSION),
         "-t", str(LOAD_SECONDS), "-w", "5", "-o", acked_path,
         "-i", "%s-r%02d" % (tag, rnd), "-r", RCPT, "-f", "loadgen@example.org"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def self_check():
    """loadgen and gen_message() above must agree on the octets."""
    mid = b"<selfcheck.7@loadgen.example.org>"
    r = subprocess.run([LOADGEN, "-G", mid.decode(), "-S", str(SIZE), "-r", RCPT,
                        "-f", "loadgen@example.org"], capture_output=True, timeout=10)
    if r.returncode != 0 or r.stdout != gen_message(mid):
        sys.exit("crashtest: loadgen -G and gen_message() disagree; fix one of them")


def main():
    rounds = int(os.environ.get("CRASH_ROUNDS", "20"))
    seed = int(os.environ.get("CRASH_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    for b in (POSTINO, ADMIN, LOADGEN):
        if not os.access(b, os.X_OK):
            sys.exit("crashtest: %s is not built (make all bench-tools)" % b)
    self_check()
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
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
