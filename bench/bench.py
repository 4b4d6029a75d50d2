#!/usr/bin/python3
"""
make bench: postino against a private Postfix on the same machine.

Starts one postino and one Postfix (the Debian package, run from its own
config, queue, data and mailbox directories under a temporary folder,
listening on a free 127.0.0.1 port; never the system instance), both
configured alike: local domain example.test, account demo@example.test,
durable queue, delivery into a Maildir.  Then, for each load point
(message size x concurrency), each on freshly started servers:

  1. smtp-source (Postfix's load generator) sends N messages over C
     persistent sessions (-d); wall clock until it exits gives msgs/s;
  2. the server's CPU time (user+sys of every process of the server,
     plus what its parent reaped) over the run, per 1,000 messages;
  3. the time from the start of the load until the last message sits in
     the Maildir (new/);
  4. peak memory: the highest sum of PSS (proportional set size, so the
     pages the processes share count once) of the server's processes,
     sampled every 0.25 s;
  5. a separate, shorter run of build/loadgen at the same C and size for
     p50/p99 transaction latency (smtp-source reports none).

Then two points that must not collapse, 1 KB, each server freshly
started, figures 1-4 as above: a new connection per message at C = 200
(smtp-source without -d), and 2,000 clients arriving at once, one
message each (-s 2000 -m 2000, no -d).  Then the memory each server
holds with 1,000 and 10,000 idle
connections (they read the greeting and send nothing).  Then relay to
another domain, end to end: one smtp-sink (-c, counters only, no dumps)
on 127.0.0.2 is the peer of both; postino (127.0.0.1 trusted, [dns]
servers = a private dnsmasq giving far.test the MX mx1.far.test ->
127.0.0.2, [delivery] smtp_port = the sink's) and Postfix
(transport_maps: far.test smtp:[127.0.0.2]:PORT, no DNS), each freshly
started, take RELAY_N messages of 1 KB to bench@far.test from
smtp-source at each of RELAY_CONCS; end-to-end msgs/s is the messages
at the peer over the time from the start of the load until the last of
them was there, beside accepted msgs/s (until smtp-source exits).  Then
the anti-spam DNS checks, postino alone (a fresh instance of the same
binary): ANTISPAM_N messages of 1 KB from 127.0.0.1, one connection per
message (smtp-source without -d), at c = 10 and 50, (a) with [antispam]
dnsbl = two zones, reject_unknown_sender_domain = yes and spf = yes,
and (b) with all three off, each on a fresh start; [dns] servers = a
private dnsmasq with its query log, which gives the sender's domain
(SENDER's) an MX and the SPF record ANTISPAM_SPF and lists nobody; the
client is not bypassed and no [intrusion] threshold can block it (blocks
in the log are counted): msgs/s, CPU per message by role, the
differences (a)-(b) and dnsmasq's queries per connection.  Last, the
disk's rate of write(1 KB)+fsync+rename+fsync(dir), the ceiling for a
durable queue.  Prints three markdown tables and writes them to
build/bench.md.
Last, it runs build/policy_bench (make bench-policy), if built, and
prints its lines as they are.

Standard library only.  Only loopback; every load and wait is bounded
in count and time; only processes started here are signalled, by PID
(Postfix through `postfix -c OUR_DIR stop`).  Benchmarks never fail a
build: errors are reported in the table and the exit status is 0.

Environment: QUICK=1 (1,000 messages per point, C = 1 and 50, 1 KB
only, 1,000 idle connections only, relay at C = 10 only, 1,000
messages per anti-spam run: about a minute and a half), BENCH_N
(messages per point), BENCH_RELAY_N (messages per relay point, default
BENCH_N), BENCH_ANTISPAM_N (messages per anti-spam run, default
BENCH_N), BENCH_ONLY=antispam (that point alone: no Postfix, no loadgen
needed; its table is printed, and written only to a BENCH_OUT given),
POSTINO_BUILD (default build), LOADGEN (default build/loadgen),
BENCH_OUT (default build/bench.md), BENCH_KEEP=1 keeps the temporary
directory, POSTFIX_MAIN="name=value;..." overrides Postfix's main.cf
(e.g. in_flow_delay=0).
"""
import os
import pwd
import grp
import re
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "support"))
from procs import children, free_port, private_master_cf, private_postfix_etc, tree  # noqa: E402
from dnsmasq import Dnsmasq  # noqa: E402
from smtp_sink import SMTP_SINK, SmtpSink, common_free_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_path(env, default):
    p = os.environ.get(env, default)
    return p if os.path.isabs(p) else os.path.join(ROOT, p)


BUILD = build_path("POSTINO_BUILD", "build")
POSTINO = os.path.join(BUILD, "postino")
ADMIN = os.path.join(BUILD, "postino-admin")
LOADGEN = build_path("LOADGEN", os.path.join("build", "loadgen"))
OUT = build_path("BENCH_OUT", os.path.join("build", "bench.md"))
SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
POSTCONF = shutil.which("postconf") or "/usr/sbin/postconf"

QUICK = os.environ.get("QUICK", "0") not in ("", "0")
DOMAIN = "example.test"
RCPT = "demo@example.test"
SENDER = "bench@example.org"
HOSTNAME = "mx.example.test"

if QUICK:
    N = int(os.environ.get("BENCH_N", "1000"))
    CONCS = [1, 50]
    SIZES = [1024]
    IDLE = [1000]
    LAT_N = 500
    DISK_N = 500
else:
    N = int(os.environ.get("BENCH_N", "10000"))
    CONCS = [1, 10, 50, 200]
    SIZES = [1024, 102400]
    IDLE = [1000, 10000]
    LAT_N = 2000
    DISK_N = 3000

# No collapse: 1 KB, a new connection per message at c = 200, and 2,000
# clients arriving at once, one message each; each on a fresh start of
# both servers, not subject to BUDGET (each bounded by LOAD_TIMEOUT).
STORMS = [(200, N), (2000, 2000)]

LOAD_TIMEOUT = 150.0        # one smtp-source run, hard bound
DRAIN_TIMEOUT = 90.0        # until the last message is in the Maildir
DRAIN_STALL = 30.0          # ... or this long without progress
LAT_TIMEOUT = 30            # loadgen's own -t
IDLE_OPEN_TIMEOUT = 60.0    # opening and greeting K idle connections
IDLE_STALL = 5.0            # ... or this long without a new greeting
START_TIMEOUT = 20.0
POSTFIX_SMTPD_LIMIT = 1100  # smtpd processes: C=200 and 1,000 idle fit
NOFILE = 65536
BUDGET = 60.0 if QUICK else 480.0   # no new load point after this (s)

# Relay: 1 KB messages to RELAY_RCPT, which both servers send on to one
# smtp-sink on RELAY_HOST (postino by far.test's MX from a private
# dnsmasq, Postfix by transport_maps); not subject to BUDGET, each
# point bounded by LOAD_TIMEOUT + RELAY_DRAIN_TIMEOUT.
RELAY_DOMAIN = "far.test"
RELAY_RCPT = "bench@far.test"
RELAY_MX = "mx1.far.test"
RELAY_HOST = "127.0.0.2"
RELAY_N = int(os.environ.get("BENCH_RELAY_N", str(N)))
RELAY_CONCS = [10] if QUICK else [10, 50]
RELAY_DRAIN_TIMEOUT = 240.0  # until the peer has them all (after the load)
RELAY_STALL = 30.0           # ... or this long without a new one at the peer

# Anti-spam DNS checks (postino alone, a fresh instance of the same
# binary): 1 KB messages from 127.0.0.1, one connection per message
# (smtp-source without -d), with (a) the DNSBL zones, the sender-domain
# check and SPF on, all answered by a private dnsmasq that logs every
# query, and (b) all three off; not subject to BUDGET, each run bounded
# by LOAD_TIMEOUT + DRAIN_TIMEOUT.
SENDER_DOMAIN = SENDER.split("@")[1]
ANTISPAM_ZONES = ["bl1.bench.test", "bl2.bench.test"]   # 127.0.0.1 in neither
ANTISPAM_MX = "mx." + SENDER_DOMAIN
ANTISPAM_SPF = "v=spf1 ip4:127.0.0.0/8 -all"
ANTISPAM_N = int(os.environ.get("BENCH_ANTISPAM_N", str(N)))
ANTISPAM_CONCS = [10, 50]
ONLY = os.environ.get("BENCH_ONLY", "")     # "antispam": that point alone


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


# --------------------------------------------------------------------
# /proc: process trees, CPU, memory
# --------------------------------------------------------------------

CLK = os.sysconf("SC_CLK_TCK")


def stat_fields(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rindex(")") + 2:].split()


def cpu_seconds(root):
    """user+sys of root and every live descendant, plus what root has
    reaped (cutime+cstime): processes that come and go (Postfix's
    smtpd, cleanup, virtual) are counted once their parent reaps them."""
    total = 0
    for p in tree(root):
        f = stat_fields(p)
        if f is None:
            continue
        total += int(f[11]) + int(f[12])         # utime, stime
        if p == root:
            total += int(f[13]) + int(f[14])     # cutime, cstime
    return total / CLK


def memory_kb(root):
    """(sum of PSS, sum of RSS, number of processes) of root's tree, kB."""
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


class Sampler:
    """Peak PSS of a process tree, sampled every `every` seconds."""

    def __init__(self, root, every=0.25):
        self.root, self.every = root, every
        self.peak = 0
        self.stop_ev = threading.Event()
        self.th = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop_ev.is_set():
            self.peak = max(self.peak, memory_kb(self.root)[0])
            self.stop_ev.wait(self.every)

    def __enter__(self):
        self.th.start()
        return self

    def __exit__(self, *a):
        self.stop_ev.set()
        self.th.join(5)
        self.peak = max(self.peak, memory_kb(self.root)[0])


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        if hard != resource.RLIM_INFINITY and hard < n:
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))   # root only
        else:
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def wait_greeting(port, timeout, alive=lambda: True):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.settimeout(2)
                if s.recv(512).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def maildir_count(md):
    try:
        return len(os.listdir(os.path.join(md, "new")))
    except FileNotFoundError:
        return 0


def maildir_clear(md):
    for sub in ("new", "cur"):
        d = os.path.join(md, sub)
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            continue
        for n in names:
            try:
                os.unlink(os.path.join(d, n))
            except OSError:
                pass


# --------------------------------------------------------------------
# The servers
# --------------------------------------------------------------------

class Postino:
    name = "postino"

    def __init__(self, top, sub="postino", like=None):
        self.dir = os.path.join(top, sub)
        os.mkdir(self.dir)
        os.chmod(self.dir, 0o755)
        # Private copies: a rebuild of build/ during the run changes nothing
        # (a second instance copies the first one's: the same binary).
        self.bin = os.path.join(self.dir, "postino")
        self.admin_bin = os.path.join(self.dir, "postino-admin")
        shutil.copy2(like.bin if like else POSTINO, self.bin)
        shutil.copy2(like.admin_bin if like else ADMIN, self.admin_bin)
        self.restarts = []
        self.data_dir = os.path.join(self.dir, "data")
        self.conf = os.path.join(self.dir, "postino.conf")
        self.log_path = os.path.join(self.dir, "postino.log")
        self.port = free_port()
        self.proc = None
        lines = [
            "hostname = %s" % HOSTNAME,
            "data_dir = %s" % self.data_dir,
            "[listener mx]",
            "listen = 127.0.0.1:%d" % self.port,
            "profile = mx",
            "[smtp]",
            "max_connections = 20000",
            "max_connections_per_ip = 20000",
            # as the Postfix of this bench (smtpd_peername_lookup = no)
            "peername_lookup = no",
            "[antispam]",
            "reject_unknown_sender_domain = no",
            "spf = no",
            "[intrusion]",
            "bypass = 127.0.0.1",
        ]
        self.base_conf = lines
        self.write_conf()
        self.admin("domain", "add", DOMAIN)
        self.admin("account", "add", RCPT, "--password-stdin", stdin="bench-pw-1\n")
        self.maildir = os.path.join(self.data_dir, "mail", DOMAIN, RCPT.split("@")[0])

    def write_conf(self, extra=()):
        with open(self.conf, "w") as f:
            f.write("\n".join(self.base_conf + list(extra)) + "\n")
        os.chmod(self.conf, 0o644)

    def relay_to(self, dns_server, port):
        """Relay for the loopback client: other domains by MX through
        dns_server, to port (while stopped; the next start reads it)."""
        self.write_conf(["[dns]", "servers = %s" % dns_server,
                         "[delivery]", "smtp_port = %d" % port])
        self.admin("trusted", "add", "127.0.0.1")

    def antispam_conf(self, dns_server, on):
        """The anti-spam point (while stopped): [antispam] dnsbl (the
        ANTISPAM_ZONES), reject_unknown_sender_domain and spf all on or
        all off, [dns] servers = dns_server either way; the loopback
        client is not in [intrusion] bypass (bypassed clients are never
        looked up) and no threshold can block it."""
        cut = self.base_conf.index("[antispam]")
        yn = "yes" if on else "no"
        lines = self.base_conf[:cut] + ["[antispam]"]
        if on:
            lines.append("dnsbl = %s" % ", ".join(ANTISPAM_ZONES))
        lines += ["reject_unknown_sender_domain = %s" % yn, "spf = %s" % yn,
                  "[intrusion]",
                  "max_connections_per_minute = 0",
                  "max_messages_per_hour = 0",
                  "max_auth_failures = 1000000",
                  "max_unknown_rcpts = 1000000",
                  "max_protocol_errors = 1000000",
                  "[dns]", "servers = %s" % dns_server]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(self.conf, 0o644)

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_since(self, off):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(off)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def relay_trouble(self, text):
        """Counts of the log events that are not a plain relay, in text."""
        out = {}
        for ev in ("retry-later", "deferred", "failed", "bounced", "address-failed",
                   "error", "role-died", "commit-failed", "refused", "reject", "defer"):
            k = text.count("event=%s " % ev) + text.count("event=%s\n" % ev)
            if k:
                out[ev] = k
        return out

    def admin(self, *args, stdin=None):
        r = subprocess.run([self.admin_bin, "-c", self.conf] + list(args), input=stdin,
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("postino-admin %s: %s%s" % (" ".join(args), r.stdout, r.stderr))

    def start(self):
        with open(self.log_path, "ab") as lg:
            self.proc = subprocess.Popen(
                [self.bin, "-c", self.conf], stdin=subprocess.DEVNULL, stdout=lg,
                stderr=lg, start_new_session=True)
        ok = wait_greeting(self.port, START_TIMEOUT, lambda: self.proc.poll() is None)
        deadline = time.monotonic() + START_TIMEOUT
        while ok and len(tree(self.proc.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        if not ok:
            raise RuntimeError("postino did not start; log:\n" + self.log_tail())

    @property
    def root(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def exit_reason(self):
        """How the last run ended: exit status and the log's last lines."""
        rc = self.proc.poll() if self.proc else None
        tail = [l for l in self.log_tail(200).splitlines()
                if "event=connect" not in l and "event=disconnect" not in l
                and "event=mail" not in l and "event=rcpt" not in l
                and "event=queued" not in l and "event=delivered" not in l]
        return "exit status %s; log: %s" % (rc, " | ".join(
            re.sub(r"^\S+ ", "", l) for l in tail[-4:]))

    def queue_empty(self):
        spool = os.path.join(self.data_dir, "spool")
        for sub in ("incoming", "queue"):
            for _, _, names in os.walk(os.path.join(spool, sub)):
                if names:
                    return False
        return True

    def stop(self):
        if not self.alive():
            return
        kids = tree(self.proc.pid)[1:]
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            for p in [self.proc.pid] + kids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait(timeout=10)

    def log_tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return ""


class Postfix:
    """A private Postfix: config, queue, data and mailboxes under top/postfix;
    smtpd on 127.0.0.1:port only; never the system instance."""
    name = "Postfix"

    def __init__(self, top, relay_port=None):
        self.dir = os.path.join(top, "postfix")
        os.mkdir(self.dir)
        os.chmod(self.dir, 0o755)
        self.etc = os.path.join(self.dir, "etc")
        self.queue = os.path.join(self.dir, "queue")
        self.data = os.path.join(self.dir, "data")
        self.vmail = os.path.join(self.dir, "vmail")
        self.log_path = os.path.join(self.dir, "maillog")
        self.port = free_port()
        self.master_pid = None
        self.restarts = []
        os.mkdir(self.etc)
        os.mkdir(self.queue)        # root-owned; post-install fills it
        os.chmod(self.queue, 0o755)
        sysmeta = private_postfix_etc(self.etc, POSTCONF)
        # Deliver as the user postino stores mail as (or nobody).
        for u in ("postino", "nobody"):
            try:
                pw = pwd.getpwnam(u)
                break
            except KeyError:
                pw = None
        uid, gid = (pw.pw_uid, pw.pw_gid) if pw else (os.getuid(), os.getgid())
        os.mkdir(self.vmail)
        os.chown(self.vmail, uid, gid)
        with open(os.path.join(self.etc, "vmailbox"), "w") as f:
            f.write("%s %s/%s/\n" % (RCPT, DOMAIN, RCPT.split("@")[0]))   # "/": Maildir
        # The relay measurement: far.test to the sink, no DNS.
        with open(os.path.join(self.etc, "transport"), "w") as f:
            if relay_port:
                f.write("%s smtp:[%s]:%d\n" % (RELAY_DOMAIN, RELAY_HOST, relay_port))
        main = {
            "compatibility_level": "3.6",
            "meta_directory": self.etc,
            "queue_directory": self.queue,
            "data_directory": self.data,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "maillog_file": self.log_path,
            "maillog_file_prefixes": self.dir,
            "myhostname": HOSTNAME,
            "mydomain": DOMAIN,
            "myorigin": "$mydomain",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "smtpd_recipient_restrictions": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "relayhost": "",
            "biff": "no",
            "virtual_mailbox_domains": DOMAIN,
            "virtual_mailbox_base": self.vmail,
            "virtual_mailbox_maps": "texthash:" + os.path.join(self.etc, "vmailbox"),
            "virtual_uid_maps": "static:%d" % uid,
            "virtual_gid_maps": "static:%d" % gid,
            "virtual_minimum_uid": "1",
            # The load: C = 200 sessions from one address, and the idle test.
            "default_process_limit": "300",
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_connection_rate_limit": "0",
            "smtpd_client_message_rate_limit": "0",
            "smtpd_peername_lookup": "no",
            "transport_maps": "texthash:" + os.path.join(self.etc, "transport"),
        }
        # POSTFIX_MAIN="name=value;name=value" overrides (e.g. in_flow_delay=0).
        for kv in os.environ.get("POSTFIX_MAIN", "").split(";"):
            if "=" in kv:
                k, v = kv.split("=", 1)
                main[k.strip()] = v.strip()
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            for k, v in main.items():
                f.write("%s = %s\n" % (k, v))
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(private_master_cf(os.path.join(sysmeta, "master.cf.proto"),
                                      self.port, smtpd_limit=POSTFIX_SMTPD_LIMIT,
                                      drop=("tlsmgr",)))
        self.maildir = os.path.join(self.vmail, DOMAIN, RCPT.split("@")[0])

    def postfix(self, *args, timeout=60):
        r = subprocess.run([POSTFIX, "-c", self.etc] + list(args), capture_output=True,
                           text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        return r

    def start(self):
        r = self.postfix("start")
        if r.returncode != 0:
            raise RuntimeError("postfix start: %s%s\n%s" % (r.stdout, r.stderr, self.log_tail()))
        pidfile = os.path.join(self.queue, "pid", "master.pid")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                with open(pidfile) as f:
                    self.master_pid = int(f.read().split()[0])
                break
            except (OSError, ValueError, IndexError):
                time.sleep(0.05)
        if not self.master_pid or not wait_greeting(self.port, START_TIMEOUT, self.alive):
            raise RuntimeError("postfix did not start\n" + self.log_tail())

    @property
    def root(self):
        return self.master_pid

    def alive(self):
        f = stat_fields(self.master_pid) if self.master_pid else None
        return f is not None and f[0] != "Z"

    def exit_reason(self):
        return "log: " + " | ".join(self.log_tail(4).splitlines())

    def queue_empty(self):
        for sub in ("incoming", "active", "deferred", "maildrop", "hold"):
            for _, _, names in os.walk(os.path.join(self.queue, sub)):
                if names:
                    return False
        return True

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_since(self, off):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(off)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def relay_trouble(self, text):
        out = {}
        for st in ("deferred", "bounced", "undeliverable"):
            k = text.count("status=%s" % st)
            if k:
                out[st] = k
        for word in ("fatal:", "panic:", "warning:"):
            k = text.count(" %s " % word)
            if k:
                # The first such line says what it is (e.g. qmgr's
                # "mail for X is using up N of N active queue entries").
                first = text[text.index(" %s " % word) + len(word) + 2:].split("\n", 1)[0]
                out["%s (first: %s)" % (word.rstrip(":"), first[:120])] = k
        return out

    def stop(self):
        if not self.alive():
            return
        self.postfix("stop")
        deadline = time.monotonic() + 30
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.alive():
            self.postfix("abort")

    def log_tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return ""


# --------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------

LG_RE = re.compile(r"accepted (\d+), failed (\d+), elapsed ([\d.]+) s, ([\d.]+) msgs/s, "
                   r"latency p50 ([\d.]+) ms, p99 ([\d.]+) ms")


def wait_drained(srv, target, t0):
    """Until target messages are in the Maildir and the queue is empty;
    returns (count, seconds from t0 to the moment the count was reached)."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    last, last_change, when = -1, time.monotonic(), None
    while time.monotonic() < deadline:
        n = maildir_count(srv.maildir)
        now = time.monotonic()
        if n != last:
            last, last_change = n, now
        if n >= target and when is None:
            when = now - t0
        if when is not None and srv.queue_empty():
            return n, when
        if now - last_change > DRAIN_STALL:
            break
        time.sleep(0.05)
    return last, when


def load_point(srv, size, conc, n=None, persistent=True):
    """One smtp-source run of n messages (N); a dict of figures.  Not
    persistent: a new connection per message (no -d), and no latency
    pass."""
    n = n or N
    res = {}
    maildir_clear(srv.maildir)
    before = maildir_count(srv.maildir)
    cpu0 = cpu_seconds(srv.root)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [SMTP_SOURCE, "-4"] + (["-d"] if persistent else []) + [
           "-s", str(conc), "-m", str(n), "-l", str(size),
           "-M", "client.example.org", "-f", SENDER, "-t", RCPT,
           "127.0.0.1:%d" % srv.port]
    with Sampler(srv.root) as smp:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL)
        try:
            _, err = p.communicate(timeout=LOAD_TIMEOUT)
            wall = time.monotonic() - t0
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate(timeout=10)
            wall = time.monotonic() - t0
            res["error"] = "smtp-source killed after %.0f s" % LOAD_TIMEOUT
        if p.returncode not in (0, None) and "error" not in res:
            res["error"] = "smtp-source exit %d: %s" % (
                p.returncode, err.decode("utf-8", "replace").strip().splitlines()[-1:] or "")
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        count, last = wait_drained(srv, before + n, t0)
        cpu1 = cpu_seconds(srv.root)
    accepted = count - before
    res.update({
        "accepted": accepted,
        "wall": wall,
        "rate": accepted / wall if wall > 0 else 0,
        "cpu_per_k": (cpu1 - cpu0) / accepted * 1000 if accepted else None,
        "client_cpu": (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime),
        "last": last,
        "peak_mb": smp.peak / 1024,
    })
    if accepted < n and "error" not in res:
        res["error"] = "%d of %d messages in the Maildir" % (accepted, n)
    if not persistent:
        maildir_clear(srv.maildir)
        return res
    # Latency: build/loadgen, same C and size, pipelined, 10 per session.
    maildir_clear(srv.maildir)
    lat_n = max(LAT_N, conc * 10)
    r = subprocess.run([LOADGEN, "-s", "127.0.0.1:%d" % srv.port, "-c", str(conc),
                        "-n", str(lat_n), "-S", str(size), "-m", "10",
                        "-t", str(LAT_TIMEOUT), "-w", "20", "-r", RCPT, "-f", SENDER],
                       capture_output=True, text=True, timeout=LAT_TIMEOUT + 30)
    m = LG_RE.search(r.stdout)
    if m:
        res["p50"], res["p99"] = float(m.group(5)), float(m.group(6))
        res["lg_rate"] = float(m.group(4))
        if int(m.group(2)):
            res["lg_note"] = "loadgen: %s failed" % m.group(2)
    else:
        res["lg_note"] = "loadgen: " + (r.stdout + r.stderr).strip()[:200]
    wait_drained(srv, int(m.group(1)) if m else 0, time.monotonic())
    maildir_clear(srv.maildir)
    return res


def idle_connections(srv, k):
    """Open k connections that read the greeting and stay idle; returns
    (greeted, established, pss_kb, rss_kb, nprocs, seconds)."""
    sel = selectors.DefaultSelector()
    socks = []
    greeted = 0
    state = {}
    t0 = time.monotonic()
    deadline = t0 + IDLE_OPEN_TIMEOUT
    last_progress = t0
    try:
        opened = 0
        while time.monotonic() < deadline:
            # Keep at most 500 handshakes in flight.
            while opened < k and opened - greeted < 500:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                try:
                    s.connect_ex(("127.0.0.1", srv.port))
                except OSError:
                    s.close()
                    break
                socks.append(s)
                state[s.fileno()] = b""
                sel.register(s, selectors.EVENT_READ, s)
                opened += 1
            if greeted >= k:
                break
            events = sel.select(timeout=0.2)
            for key, _ in events:
                s = key.data
                try:
                    data = s.recv(512)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                sel.unregister(s)
                if data.startswith(b"220"):
                    greeted += 1
                    last_progress = time.monotonic()
            if time.monotonic() - last_progress > IDLE_STALL and opened >= k:
                break
            if time.monotonic() - last_progress > IDLE_STALL and opened - greeted >= 500:
                # The server stopped greeting: open the rest anyway.
                while opened < k:
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.setblocking(False)
                    s.connect_ex(("127.0.0.1", srv.port))
                    socks.append(s)
                    sel.register(s, selectors.EVENT_READ, s)
                    opened += 1
                last_progress = time.monotonic()
        secs = time.monotonic() - t0
        time.sleep(2)       # let the server settle
        established = 0
        for s in socks:
            try:
                s.getpeername()
                established += 1
            except OSError:
                pass
        pss, rss, nprocs = memory_kb(srv.root)
        return greeted, established, pss, rss, nprocs, secs
    finally:
        sel.close()
        for s in socks:
            s.close()


def idle_test(srv):
    out = {}
    time.sleep(1)
    base = memory_kb(srv.root)
    out["base"] = base
    for k in IDLE:
        if not srv.alive():
            out[k] = None
            break
        out[k] = idle_connections(srv, k)
        # Wait until the server has let the connections go (bounded).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and memory_kb(srv.root)[2] > base[2] + 5:
            time.sleep(0.5)
        time.sleep(1)
    return out


class CountingSink(SmtpSink):
    """The relay's peer: smtp-sink with its running counters (-c) and no
    dumps.  smtp-sink rewrites "sess=S quit=Q mesg=M\\r" on its stdout
    (our log file) each time a "." is received, a QUIT is executed or a
    session ends; received() reads the last M."""
    MESG_RE = re.compile(rb"mesg=(\d+)")

    def args(self):
        a = [SMTP_SINK, "-h", self.hostname]
        if self._user:
            a += ["-u", self._user]
        return a + ["-c", "%s:%d" % (self.host, self.port), "256"]

    def received(self):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 256))
                tail = f.read()
        except OSError:
            return 0
        m = self.MESG_RE.findall(tail)
        return int(m[-1]) if m else 0


def relay_point(srv, sink, conc, helpers):
    """N messages of 1 KB to RELAY_RCPT at concurrency conc; the server
    relays them to the sink.  helpers: {name: pid} whose CPU over the
    point is reported too (the sink, dnsmasq)."""
    res = {}
    target_n = RELAY_N
    before = sink.received()
    log_off = srv.log_size()
    cpu0 = cpu_seconds(srv.root)
    hcpu0 = {k: cpu_seconds(v) for k, v in helpers.items()}
    cmd = [SMTP_SOURCE, "-4", "-d", "-s", str(conc), "-m", str(target_n), "-l", "1024",
           "-M", "client.example.org", "-f", SENDER, "-t", RELAY_RCPT,
           "127.0.0.1:%d" % srv.port]
    when_all = None
    with Sampler(srv.root) as smp:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL)
        # While the load runs: note when the peer has them all (it may
        # before smtp-source has closed its sessions).
        deadline = t0 + LOAD_TIMEOUT
        while True:
            try:
                p.wait(timeout=0.02)
                break
            except subprocess.TimeoutExpired:
                pass
            if when_all is None and sink.received() - before >= target_n:
                when_all = time.monotonic() - t0
            if time.monotonic() > deadline:
                p.kill()
                res["error"] = "smtp-source killed after %.0f s" % LOAD_TIMEOUT
                break
        _, err = p.communicate(timeout=10)
        wall = time.monotonic() - t0
        at_end = sink.received() - before
        if p.returncode not in (0, None) and "error" not in res:
            res["error"] = "smtp-source exit %d: %s" % (
                p.returncode, " ".join(err.decode("utf-8", "replace").strip()
                                       .splitlines()[-1:]))
        # Until the peer has them all and the server's queue is empty.
        deadline = time.monotonic() + RELAY_DRAIN_TIMEOUT
        last, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            n = sink.received() - before
            now = time.monotonic()
            if n != last:
                last, last_change = n, now
            if n >= target_n and when_all is None:
                when_all = now - t0
            if when_all is not None and srv.queue_empty():
                break
            if now - last_change > RELAY_STALL:
                break
            time.sleep(0.02)
        time.sleep(0.5)         # a duplicate would show by now
        received = sink.received() - before
        cpu1 = cpu_seconds(srv.root)
        hcpu1 = {k: cpu_seconds(v) for k, v in helpers.items()}
    accepted = target_n if p.returncode == 0 else None
    res.update({
        "n": target_n,
        "received": received,
        "at_end": at_end,
        "wall": wall,
        "acc_rate": accepted / wall if accepted and wall > 0 else None,
        "last": when_all,
        "rate": target_n / when_all if when_all else None,
        "cpu_per_k": (cpu1 - cpu0) / received * 1000 if received else None,
        "helper_cpu_per_k": {k: (hcpu1[k] - hcpu0[k]) / received * 1000 if received else None
                             for k in helpers},
        "peak_mb": smp.peak / 1024,
        "trouble": srv.relay_trouble(srv.log_since(log_off)),
    })
    if when_all is None:
        res.setdefault("error", "%d of %d messages at the peer after %.0f s (%d when the "
                       "load ended; no new one for %.0f s)"
                       % (received, target_n, time.monotonic() - t0, at_end,
                          time.monotonic() - last_change))
    elif received > target_n:
        res.setdefault("error", "%d messages at the peer for %d sent (duplicates)"
                       % (received, target_n))
    elif not srv.queue_empty():
        res.setdefault("error", "queue not empty after the peer had them all")
    return res


def role_cpu(root, which=(11, 12)):
    """{role: CPU seconds} of the live processes of root's tree, by their
    -R argument (the parent is "parent"); user+sys, or which=(11,) user
    alone, (12,) sys alone."""
    out = {}
    for p in tree(root):
        f = stat_fields(p)
        if f is None:
            continue
        role = "parent"
        if p != root:
            try:
                with open("/proc/%d/cmdline" % p, "rb") as fh:
                    argv = fh.read().split(b"\0")
                role = argv[argv.index(b"-R") + 1].decode("ascii", "replace")
            except (OSError, ValueError, IndexError):
                role = "other"
        out[role] = out.get(role, 0.0) + sum(int(f[i]) for i in which) / CLK
    return out


QUERY_RE = re.compile(r" query\[(\w+)\] (\S+) from ")


def dns_queries(dns, off):
    """{qtype: count} of the queries dnsmasq logged after offset off of
    its log, and the log's size now."""
    try:
        with open(dns.log_path, "rb") as f:
            f.seek(off)
            raw = f.read()
    except OSError:
        return {}, off
    text = raw.decode("utf-8", "replace")
    out = {}
    for m in QUERY_RE.finditer(text):
        out[m.group(1)] = out.get(m.group(1), 0) + 1
    if "log entries lost" in text:
        out["(log lines lost)"] = 1
    return out, off + len(raw)


def received_spf(md):
    """The Received-SPF: field of one message in the Maildir, unfolded,
    without its name; "(none)" if it has none, None without a message."""
    try:
        names = os.listdir(os.path.join(md, "new"))
    except OSError:
        return None
    for n in names[:1]:
        try:
            with open(os.path.join(md, "new", n), "rb") as f:
                head = f.read(4096).decode("utf-8", "replace")
        except OSError:
            return None
        m = re.search(r"^Received-SPF:[ \t]*((?:[^\r\n]|\r?\n[ \t])*)", head, re.M)
        return re.sub(r"\r?\n[ \t]+", " ", m.group(1)) if m else "(none)"
    return None


def antispam_point(srv, dns, conc, dns_start, log_start):
    """ANTISPAM_N messages of 1 KB, one connection each, at concurrency
    conc, on srv as configured; figures as load_point's, plus dnsmasq's
    queries by type (from dns_start, dnsmasq's log size before srv was
    started, until the load: the readiness probe's; then the load's) and
    the blocks and refusals in postino's log since log_start."""
    res = {}
    maildir_clear(srv.maildir)
    before = maildir_count(srv.maildir)
    start_q, dns_off = dns_queries(dns, dns_start)
    log_off = srv.log_size()
    cpu0 = cpu_seconds(srv.root)
    role0 = role_cpu(srv.root)
    user0 = role_cpu(srv.root, (11,))
    dcpu0 = cpu_seconds(dns.proc.pid)
    cmd = [SMTP_SOURCE, "-4", "-s", str(conc), "-m", str(ANTISPAM_N), "-l", "1024",
           "-M", "client.example.org", "-f", SENDER, "-t", RCPT,
           "127.0.0.1:%d" % srv.port]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    try:
        _, err = p.communicate(timeout=LOAD_TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate(timeout=10)
        res["error"] = "smtp-source killed after %.0f s" % LOAD_TIMEOUT
    except BaseException:       # a SIGTERM: smtp-source goes too
        p.kill()
        p.wait(10)
        raise
    wall = time.monotonic() - t0
    if p.returncode not in (0, None) and "error" not in res:
        res["error"] = "smtp-source exit %d: %s" % (
            p.returncode, " ".join(err.decode("utf-8", "replace").strip()
                                   .splitlines()[-1:]))
    count, last = wait_drained(srv, before + ANTISPAM_N, t0)
    cpu1 = cpu_seconds(srv.root)
    role1 = role_cpu(srv.root)
    user1 = role_cpu(srv.root, (11,))
    dcpu1 = cpu_seconds(dns.proc.pid)
    time.sleep(0.2)             # dnsmasq's last log lines
    load_q, _ = dns_queries(dns, dns_off)
    conns = len(re.findall(r"event=connect\b", srv.log_since(log_off)))
    text = srv.log_since(log_start)
    rejects = {}
    for m in re.finditer(r"event=(?:reject|defer)\b.*?check=(\S+)", text):
        rejects[m.group(1)] = rejects.get(m.group(1), 0) + 1
    accepted = count - before
    per = accepted or None
    res.update({
        "accepted": accepted,
        "conns": conns,
        "wall": wall,
        "rate": accepted / wall if wall > 0 else 0,
        "last": last,
        "cpu_ms": (cpu1 - cpu0) / per * 1000 if per else None,
        "role_ms": {k: (role1.get(k, 0) - v) / per * 1000 if per else None
                    for k, v in role0.items() if k in ("net", "store")},
        "user_ms": {k: (user1.get(k, 0) - v) / per * 1000 if per else None
                    for k, v in user0.items() if k in ("net", "store")},
        "dns_ms": (dcpu1 - dcpu0) / per * 1000 if per else None,
        "start_q": start_q,
        "load_q": load_q,
        "queries": sum(v for k, v in load_q.items() if not k.startswith("(")),
        "blocks": len(re.findall(r"event=block(?:-failed)?(?![\w-])", text)),
        "rejects": rejects,
        "spf_field": received_spf(srv.maildir),
    })
    if accepted < ANTISPAM_N and "error" not in res:
        res["error"] = "%d of %d messages in the Maildir" % (accepted, ANTISPAM_N)
    maildir_clear(srv.maildir)
    return res


def antispam_test(top, like=None):
    """The anti-spam point: a postino of its own (the same binary as
    like's), at each of ANTISPAM_CONCS (a) with the three DNS checks on
    and (b) off, each run on a fresh start; {conc: {"on"|"off": res}}."""
    if not os.access("/usr/sbin/dnsmasq", os.X_OK):
        return {"skipped": "/usr/sbin/dnsmasq not found (sh scripts/install-deps.sh)"}
    out = {}
    with Dnsmasq(hosts={ANTISPAM_MX: ["192.0.2.25"]},
                 mx={SENDER_DOMAIN: [(10, ANTISPAM_MX)]},
                 txt={SENDER_DOMAIN: [ANTISPAM_SPF]},
                 local_domains=("test", SENDER_DOMAIN), log_queries=True) as dns:
        srv = Postino(top, sub="postino-antispam", like=like)
        log("antispam: dnsmasq on %s (query log), postino on 127.0.0.1:%d"
            % (dns.server, srv.port))
        try:
            for i, conc in enumerate(ANTISPAM_CONCS):
                out[conc] = {}
                # (a) first at the first C, (b) first at the next: the
                # order's own effect does not always fall on one side.
                for mode in (("on", "off") if i % 2 == 0 else ("off", "on")):
                    try:
                        srv.stop()
                        srv.antispam_conf(dns.server, mode == "on")
                        dns_start = os.path.getsize(dns.log_path)
                        log_start = srv.log_size()
                        srv.start()
                        r = antispam_point(srv, dns, conc, dns_start, log_start)
                    except Exception as e:     # noqa: BLE001  (reported, not raised)
                        r = {"error": "antispam point: %r" % (e,)}
                    if not srv.alive():
                        r["error"] = "server died during the point: " + srv.exit_reason()
                    if not dns.alive():
                        r["error"] = "dnsmasq died: " + dns.log()[-300:]
                    out[conc][mode] = r
                    log("antispam 1 KB c=%-3d checks %-3s %s msgs/s, %s of %d, cpu %s ms/msg "
                        "(%s), %s DNS queries (%s), blocks %s, rejects %s %s"
                        % (conc, mode, fmt(r.get("rate")), r.get("accepted", "–"),
                           ANTISPAM_N, fmt(r.get("cpu_ms"), "%.3f"),
                           ", ".join("%s %.3f" % kv for kv in
                                     sorted((r.get("role_ms") or {}).items()) if kv[1]
                                     is not None),
                           r.get("queries", "–"), r.get("load_q", ""),
                           r.get("blocks", "–"), r.get("rejects", ""),
                           r.get("error", "")))
        finally:
            srv.stop()
    return out


def relay_test(top, servers, sink_port):
    """The relay points: each server, freshly started, relays RELAY_N
    messages at each of RELAY_CONCS to one sink; {conc: {name: res}}."""
    out = {}
    with Dnsmasq(hosts={RELAY_MX: [RELAY_HOST]}, mx={RELAY_DOMAIN: [(10, RELAY_MX)]},
                 log_queries=False) as dns, \
            CountingSink(top, host=RELAY_HOST, port=sink_port) as sink:
        log("relay: dnsmasq on %s, smtp-sink on %s" % (dns.server, sink.address))
        for srv in servers:
            srv.stop()
            if isinstance(srv, Postino):
                srv.relay_to(dns.server, sink.port)
        for conc in RELAY_CONCS:
            out[conc] = {}
            for srv in servers:
                helpers = {"smtp-sink": sink.proc.pid}
                if isinstance(srv, Postino):
                    helpers["dnsmasq"] = dns.proc.pid
                try:
                    srv.stop()
                    srv.start()
                    r = relay_point(srv, sink, conc, helpers)
                except Exception as e:     # noqa: BLE001  (reported, not raised)
                    r = {"error": "relay point: %r" % (e,)}
                if not srv.alive():
                    r["error"] = "server died during the point: " + srv.exit_reason()
                if not sink.alive():
                    r["error"] = "smtp-sink died: " + sink.log()[-300:]
                out[conc][srv.name] = r
                log("relay 1 KB c=%-3d %-7s %s msgs/s end to end, accepted %s msgs/s, "
                    "%s of %s at the peer (%s when the load ended), last %s s, cpu %s s/1k, "
                    "peak %.0f MB %s %s"
                    % (conc, srv.name, fmt(r.get("rate")), fmt(r.get("acc_rate")),
                       r.get("received", "–"), r.get("n", "–"), r.get("at_end", "–"),
                       fmt(r.get("last"), "%.1f"), fmt(r.get("cpu_per_k"), "%.2f"),
                       r.get("peak_mb", 0), r.get("trouble") or "", r.get("error", "")))
        for srv in servers:
            srv.stop()
    return out


def disk_ceiling(top, writers):
    """write(1 KB)+fsync+rename+fsync(dir) per op, `writers` threads;
    ops/s over DISK_N ops in all (bounded to 15 s)."""
    d = os.path.join(top, "disk")
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    os.makedirs(os.path.join(d, "new"), exist_ok=True)
    payload = b"x" * 1023 + b"\n"
    done = [0] * writers
    stop_at = time.monotonic() + 15
    per = DISK_N // writers

    def work(w):
        dfd = os.open(os.path.join(d, "new"), os.O_RDONLY | os.O_DIRECTORY)
        try:
            for i in range(per):
                if time.monotonic() > stop_at:
                    break
                tmp = os.path.join(d, "tmp", "%d.%d" % (w, i))
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.write(fd, payload)
                os.fsync(fd)
                os.close(fd)
                os.rename(tmp, os.path.join(d, "new", "%d.%d" % (w, i)))
                os.fsync(dfd)
                done[w] += 1
        finally:
            os.close(dfd)

    t0 = time.monotonic()
    ths = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    secs = time.monotonic() - t0
    shutil.rmtree(d, ignore_errors=True)
    return sum(done) / secs if secs > 0 else 0


# --------------------------------------------------------------------
# The table
# --------------------------------------------------------------------

def fmt(v, spec="%.0f", none="–"):
    return none if v is None else spec % v


def pair(a, b, spec):
    return "%s / %s" % (fmt(a, spec), fmt(b, spec))


def render(results, idle, disk, meta):
    L = []
    L.append("postino vs Postfix %s, %s, nproc %s, load average before: %s; "
             "%s messages per point (smtp-source -d), latency from build/loadgen "
             "(%s+ messages, pipelined, 10 per session)%s"
             % (meta["postfix_version"], meta["date"], meta["nproc"], meta["loadavg"],
                "{:,}".format(N), "{:,}".format(LAT_N), ", QUICK" if QUICK else ""))
    L.append("")
    L.append("| load | postino msgs/s | Postfix msgs/s | postino/Postfix "
             "| CPU s per 1,000 msgs (postino / Postfix) | p50 ms | p99 ms "
             "| last in Maildir s | peak memory MB |")
    L.append("|---|---:|---:|---:|---|---|---|---|---|")
    notes = []
    for (size, conc, n), r in results.items():
        a, b = r.get("postino", {}), r.get("Postfix", {})
        ratio = (a["rate"] / b["rate"]) if a.get("rate") and b.get("rate") else None
        label = "%s, c=%d" % ("1 KB" if size == 1024 else "%d KB" % (size // 1024), conc)
        if n is not None and n == conc:
            label = "1 KB, %s clients at once, a connection each" % "{:,}".format(n)
        elif n is not None:
            label += ", a new connection per message"
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label, fmt(a.get("rate")), fmt(b.get("rate")), fmt(ratio, "%.2f"),
            pair(a.get("cpu_per_k"), b.get("cpu_per_k"), "%.2f"),
            pair(a.get("p50"), b.get("p50"), "%.1f"),
            pair(a.get("p99"), b.get("p99"), "%.1f"),
            pair(a.get("last"), b.get("last"), "%.1f"),
            pair(a.get("peak_mb"), b.get("peak_mb"), "%.0f")))
        for nm, x in (("postino", a), ("Postfix", b)):
            for key in ("error", "lg_note"):
                if x.get(key):
                    notes.append("%s %s: %s" % (label, nm, x[key]))
    # Idle connections: PSS held, per connection over the idle baseline.
    for k in IDLE:
        cells = []
        per = []
        for nm in ("postino", "Postfix"):
            i = idle.get(nm, {})
            v = i.get(k)
            if not v:
                cells.append("–")
                per.append(None)
                continue
            g, est, pss, rss, nprocs, secs = v
            base = i["base"][0]
            pc = (pss - base) / g if g else None
            per.append(pc)
            cells.append("%d greeted, %d open, %.0f MB in %d processes, %s KB/conn"
                         % (g, est, pss / 1024, nprocs, fmt(pc, "%.1f")))
        ratio = per[0] / per[1] if per[0] and per[1] else None
        L.append("| %s idle connections | %s | %s | %s | | | | | memory per connection, "
                 "ratio above |" % ("{:,}".format(k), cells[0], cells[1],
                                    fmt(ratio, "%.3f")))
    L.append("| disk: write 1 KB + fsync + rename + fsync dir | 1 writer: %.0f/s "
             "| 8 writers: %.0f/s | | | | | | ceiling of a queue that fsyncs each message |"
             % (disk[1], disk[8]))
    L.append("")
    bases = []
    for nm in ("postino", "Postfix"):
        b = idle.get(nm, {}).get("base")
        bases.append(fmt(b[0] / 1024 if b else None, "%.0f"))
    L.append("Memory is the sum of PSS over the server's processes (idle, no "
             "connection: postino %s MB, Postfix %s MB); CPU is user+sys of the "
             "server's processes (smtp-source itself used %s s of CPU per 1,000 "
             "messages, on the same cores)." % (bases[0], bases[1],
                                                meta.get("client_cpu", "–")))
    for n in notes:
        L.append("- " + n)
    return "\n".join(L) + "\n"


def render_relay(relay, port):
    """The relay points: a second table, in the style of the first."""
    L = [""]
    if not relay:
        return ""
    if "skipped" in relay:
        return "\nRelay to another domain: not measured (%s)\n" % relay["skipped"]
    L.append("Relay to another domain, end to end (accepted on submission, received by "
             "the peer): %s messages of 1 KB to %s per point (smtp-source -d -s C), "
             "relayed to one smtp-sink on %s:%s (postino: the MX of %s from a private "
             "dnsmasq; Postfix: transport_maps %s smtp:[%s]:%s, no DNS); end to end = "
             "messages at the peer / time from the start of the load until the last one "
             "was there"
             % ("{:,}".format(RELAY_N), RELAY_RCPT, RELAY_HOST, port, RELAY_DOMAIN,
                RELAY_DOMAIN, RELAY_HOST, port))
    L.append("")
    L.append("| relay load | postino msgs/s end to end | Postfix msgs/s end to end "
             "| postino/Postfix | accepted msgs/s (postino / Postfix) "
             "| at the peer when the load ended | last at the peer s "
             "| CPU s per 1,000 msgs | peak memory MB |")
    L.append("|---|---:|---:|---:|---|---|---|---|---|")
    notes = []
    helpers = {}
    for conc, r in relay.items():
        a, b = r.get("postino", {}), r.get("Postfix", {})
        ratio = (a["rate"] / b["rate"]) if a.get("rate") and b.get("rate") else None

        def share(x):
            if x.get("n") is None:
                return "–"
            return "%d%%" % round(100.0 * x["at_end"] / x["n"])
        label = "1 KB, c=%d" % conc
        L.append("| %s | %s | %s | %s | %s | %s / %s | %s | %s | %s |" % (
            label, fmt(a.get("rate")), fmt(b.get("rate")), fmt(ratio, "%.2f"),
            pair(a.get("acc_rate"), b.get("acc_rate"), "%.0f"),
            share(a), share(b),
            pair(a.get("last"), b.get("last"), "%.1f"),
            pair(a.get("cpu_per_k"), b.get("cpu_per_k"), "%.2f"),
            pair(a.get("peak_mb"), b.get("peak_mb"), "%.0f")))
        for nm, x in (("postino", a), ("Postfix", b)):
            if x.get("error"):
                notes.append("%s %s: %s" % (label, nm, x["error"]))
            if x.get("trouble"):
                notes.append("%s %s: log: %s" % (label, nm, ", ".join(
                    "%s %d" % kv for kv in sorted(x["trouble"].items()))))
            for k, v in (x.get("helper_cpu_per_k") or {}).items():
                if v is not None:
                    helpers.setdefault((k, nm), []).append("%.2f" % v)
    L.append("")
    L.append("The peer (smtp-sink) used %s s (postino's load) / %s s (Postfix's) of CPU "
             "per 1,000 messages, and dnsmasq %s s (postino's MX and address lookups; "
             "Postfix asks none), on the same cores, by point."
             % (", ".join(helpers.get(("smtp-sink", "postino"), ["–"])),
                ", ".join(helpers.get(("smtp-sink", "Postfix"), ["–"])),
                ", ".join(helpers.get(("dnsmasq", "postino"), ["–"]))))
    for n in notes:
        L.append("- " + n)
    return "\n".join(L) + "\n"


def render_antispam(anti):
    """The anti-spam point: a third table."""
    if not anti:
        return ""
    if "skipped" in anti:
        return "\nAnti-spam DNS checks: not measured (%s)\n" % anti["skipped"]
    L = [""]
    L.append("Anti-spam DNS checks, postino alone (the same binary, an instance of its "
             "own): %s messages of 1 KB to %s per run, one connection per message "
             "(smtp-source -s C, no -d), from 127.0.0.1 (not in [intrusion] bypass; "
             "max_connections_per_minute = 0), each run on a fresh start; (a) [antispam] "
             "dnsbl = %s (127.0.0.1 listed by neither: NXDOMAIN), "
             "reject_unknown_sender_domain = yes, spf = yes; (b) all three off; both with "
             "[dns] servers = a private dnsmasq (query log on) giving %s the MX %s and the "
             "TXT \"%s\"; CPU = user+sys of postino's processes per message, net and "
             "store roles, all = with the parent"
             % ("{:,}".format(ANTISPAM_N), RCPT, ", ".join(ANTISPAM_ZONES), SENDER_DOMAIN,
                ANTISPAM_MX, ANTISPAM_SPF))
    L.append("")
    L.append("| antispam load | msgs/s (a) checks on | msgs/s (b) off | (a)−(b) msgs/s "
             "| CPU ms per msg (a): net / store / all | CPU ms per msg (b): net / store / all "
             "| (a)−(b) CPU ms per connection: all (net, store) "
             "| dnsmasq queries per connection (a / b) |")
    L.append("|---|---:|---:|---:|---|---|---|---|")
    notes = []

    def cpu3(x):
        rm = x.get("role_ms") or {}
        return "%s / %s / %s" % (fmt(rm.get("net"), "%.3f"), fmt(rm.get("store"), "%.3f"),
                                 fmt(x.get("cpu_ms"), "%.3f"))

    def diff(a, b, key, sub=None):
        va = (a.get(key) or {}).get(sub) if sub else a.get(key)
        vb = (b.get(key) or {}).get(sub) if sub else b.get(key)
        return None if va is None or vb is None else va - vb

    def qpc(x):
        return x["queries"] / x["conns"] if x.get("conns") and "queries" in x else None

    for conc, r in anti.items():
        a, b = r.get("on", {}), r.get("off", {})
        label = "1 KB, c=%d" % conc
        dc = diff(a, b, "cpu_ms")
        L.append("| %s | %s | %s | %s | %s | %s | %s (%s, %s) | %s / %s |" % (
            label, fmt(a.get("rate")), fmt(b.get("rate")),
            fmt(diff(a, b, "rate"), "%+.0f"), cpu3(a), cpu3(b),
            fmt(dc, "%+.3f"), fmt(diff(a, b, "role_ms", "net"), "%+.3f"),
            fmt(diff(a, b, "role_ms", "store"), "%+.3f"),
            fmt(qpc(a), "%.2f"), fmt(qpc(b), "%.2f")))
        if a.get("user_ms") and b.get("user_ms"):
            notes.append("%s: user CPU alone, ms per connection (a) / (b): net %s / %s, "
                         "store %s / %s; (a)−(b) net %s, store %s"
                         % (label, fmt(a["user_ms"].get("net"), "%.3f"),
                            fmt(b["user_ms"].get("net"), "%.3f"),
                            fmt(a["user_ms"].get("store"), "%.3f"),
                            fmt(b["user_ms"].get("store"), "%.3f"),
                            fmt(diff(a, b, "user_ms", "net"), "%+.3f"),
                            fmt(diff(a, b, "user_ms", "store"), "%+.3f")))
        for mode, x in (("(a)", a), ("(b)", b)):
            if x.get("error"):
                notes.append("%s %s: %s" % (label, mode, x["error"]))
            if "load_q" in x and (mode == "(a)" or x["queries"] or x["blocks"]
                                   or x["rejects"]):
                notes.append(
                    "%s %s: %d connections, %d messages; dnsmasq: %s over the load "
                    "(%s at the start: the readiness probe's), %s CPU-ms per connection; "
                    "Received-SPF: %s; postino log: %d event=block, refusals: %s"
                    % (label, mode, x["conns"], x["accepted"],
                       ", ".join("%s %d" % kv for kv in sorted(x["load_q"].items())) or "none",
                       ", ".join("%s %d" % kv for kv in sorted(x["start_q"].items()))
                       or "none", fmt(x.get("dns_ms"), "%.3f"),
                       re.sub(r"\).*", ")", x.get("spf_field") or "–"), x["blocks"],
                       ", ".join("%s %d" % kv for kv in sorted(x["rejects"].items()))
                       or "none"))
    runs = [x for r in anti.values() for x in r.values() if "blocks" in x]
    L.append("")
    L.append("dnsmasq's query log counts every query postino asked; event=block lines in "
             "postino's log: %d over the %d runs (from each start to the end of its load)."
             % (sum(x["blocks"] for x in runs), len(runs)))
    for n in notes:
        L.append("- " + n)
    return "\n".join(L) + "\n"


def policy_bench():
    """The policy engine's decisions, timed (bench/policy_bench.c): its
    output as it is, or nothing if it is not built."""
    exe = os.path.join(BUILD, "policy_bench")
    if not os.access(exe, os.X_OK):
        return
    try:
        r = subprocess.run([exe], capture_output=True, text=True, timeout=300)
        out = r.stdout + r.stderr
    except (OSError, subprocess.SubprocessError) as e:
        out = "policy_bench: %r" % (e,)
    print(out.rstrip())


# --------------------------------------------------------------------

def on_term(signum, frame):
    raise SystemExit("bench: signal %d: stopping the servers" % signum)


def antispam_only(top, meta, t_start):
    """BENCH_ONLY=antispam: the anti-spam point alone, printed (and
    written to BENCH_OUT only if that is set: build/bench.md keeps the
    last whole run)."""
    log("dir %s, BENCH_ONLY=antispam, %d messages per run" % (top, ANTISPAM_N))
    anti = {}
    try:
        anti = antispam_test(top)
    except Exception as e:      # benchmarks print, they do not fail
        log("aborted: %r" % (e,))
        anti = {"skipped": "antispam: %r" % (e,)}
    finally:
        if os.environ.get("BENCH_KEEP") == "1":
            log("kept %s" % top)
        else:
            shutil.rmtree(top, ignore_errors=True)
    with open("/proc/loadavg") as f:
        after = " ".join(f.read().split()[:3])
    table = ("postino anti-spam DNS checks alone (BENCH_ONLY=antispam), %s, nproc %s, "
             "load average before: %s, after: %s%s\n"
             % (meta["date"], meta["nproc"], meta["loadavg"], after,
                ", QUICK" if QUICK else ""))
    table += render_antispam(anti)
    table += "\n(%.0f s for the whole run)\n" % (time.monotonic() - t_start)
    print(table)
    if os.environ.get("BENCH_OUT"):
        os.makedirs(os.path.dirname(OUT), exist_ok=True)
        with open(OUT, "w") as f:
            f.write(table)
    return 0


def main():
    # A SIGTERM (say, from timeout(1)) still stops both servers and
    # removes the temporary directory (the finally clause below).
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    if ONLY not in ("", "antispam"):
        print("bench: BENCH_ONLY=%s: only BENCH_ONLY=antispam is known" % ONLY)
        return 0
    for b in (POSTINO, ADMIN) + (() if ONLY else (LOADGEN,)):
        if not os.access(b, os.X_OK):
            print("bench: %s is not built (make all bench-tools)" % b)
            return 0
    if not os.access(SMTP_SOURCE, os.X_OK):
        print("bench: smtp-source not found (sh scripts/install-deps.sh installs postfix)")
        return 0
    nofile = raise_nofile(NOFILE)
    with open("/proc/loadavg") as f:
        loadavg = " ".join(f.read().split()[:3])
    try:
        pfv = subprocess.run([POSTCONF, "-dh", "mail_version"], capture_output=True,
                             text=True, timeout=30).stdout.strip()
    except OSError:
        pfv = "?"
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "nproc": os.cpu_count(),
            "loadavg": loadavg, "postfix_version": pfv}
    top = tempfile.mkdtemp(prefix="postino-bench-")
    os.chmod(top, 0o755)
    t_start = time.monotonic()
    if ONLY == "antispam":
        return antispam_only(top, meta, t_start)
    log("dir %s, RLIMIT_NOFILE %d, %d messages per point" % (top, nofile, N))
    servers = []
    results = {}
    idle = {}
    relay = {}
    anti = {}
    client_cpu = [0.0, 0]
    relay_port = None
    try:
        relay_port = common_free_port([RELAY_HOST])
        pino = Postino(top)
        servers.append(pino)
        if os.geteuid() == 0:
            pfix = Postfix(top, relay_port=relay_port)
            servers.append(pfix)
        else:
            log("not root: Postfix cannot run its own master; postino only")
        for srv in servers:
            srv.start()
            log("%s up on 127.0.0.1:%d" % (srv.name, srv.port))
        points = [(size, conc, None) for size in SIZES for conc in CONCS]
        points += [(1024, conc, n) for conc, n in STORMS]
        for size, conc, n in points:
            results[(size, conc, n)] = {}
            for srv in servers:
                if n is None and time.monotonic() - t_start > BUDGET:
                    results[(size, conc, n)][srv.name] = {
                        "error": "skipped: past the %.0f s budget" % BUDGET}
                    continue
                if not srv.alive():
                    why = srv.exit_reason()
                    log("%s is not running (%s); restarting" % (srv.name, why))
                    srv.restarts.append("before %s c=%d: found not running, "
                                        "restarted (%s)" % (size, conc, why))
                    srv.start()
                # Each point on a freshly started server: Postfix keeps
                # the smtpd processes of a point for max_idle (100 s),
                # which would count in the next point's memory.
                if (size, conc, n) != points[0]:
                    srv.stop()
                    srv.start()
                r = load_point(srv, size, conc, n=n, persistent=n is None)
                if not srv.alive():
                    r["error"] = "server died during the point: " + srv.exit_reason()
                results[(size, conc, n)][srv.name] = r
                if r.get("accepted"):
                    client_cpu[0] += r["client_cpu"]
                    client_cpu[1] += r["accepted"]
                log("%6d B c=%-4d %s %-7s %6.0f msgs/s  cpu %s s/1k  last %s s  "
                    "p50 %s p99 %s ms  peak %.0f MB %s"
                    % (size, conc, "conn/msg" if n else "", srv.name, r.get("rate", 0),
                       fmt(r.get("cpu_per_k"), "%.2f"), fmt(r.get("last"), "%.1f"),
                       fmt(r.get("p50"), "%.1f"), fmt(r.get("p99"), "%.1f"),
                       r.get("peak_mb", 0), r.get("error", "")))
        for srv in servers:
            # A fresh start: Postfix keeps idle smtpd processes of the
            # load for max_idle (100 s), which would inflate the baseline.
            srv.stop()
            srv.start()
            if srv.alive():
                idle[srv.name] = idle_test(srv)
                for k in IDLE:
                    log("%s idle %d: %s" % (srv.name, k, idle[srv.name].get(k)))
        why = SmtpSink.unavailable() or (
            None if os.access("/usr/sbin/dnsmasq", os.X_OK)
            else "/usr/sbin/dnsmasq not found (sh scripts/install-deps.sh)")
        if why:
            relay = {"skipped": why}
        else:
            try:
                relay = relay_test(top, servers, relay_port)
            except Exception as e:  # noqa: BLE001  (reported, not raised)
                log("relay: %r" % (e,))
                relay = {"skipped": "relay: %r" % (e,)}
        for srv in servers:
            srv.stop()
        try:
            anti = antispam_test(top, like=pino)
        except Exception as e:  # noqa: BLE001  (reported, not raised)
            log("antispam: %r" % (e,))
            anti = {"skipped": "antispam: %r" % (e,)}
        disk = {1: disk_ceiling(top, 1), 8: disk_ceiling(top, 8)}
        log("disk: %.0f ops/s (1 writer), %.0f ops/s (8 writers)" % (disk[1], disk[8]))
    except Exception as e:      # benchmarks print, they do not fail
        log("aborted: %r" % (e,))
        for srv in servers:
            log("%s log tail:\n%s" % (srv.name, srv.log_tail()))
        disk = {1: 0, 8: 0}
    finally:
        for srv in servers:
            try:
                srv.stop()
            except Exception as e:
                log("stopping %s: %r" % (srv.name, e))
        if os.environ.get("BENCH_KEEP") == "1":
            log("kept %s" % top)
        else:
            shutil.rmtree(top, ignore_errors=True)
    if client_cpu[1]:
        meta["client_cpu"] = "%.2f" % (client_cpu[0] / client_cpu[1] * 1000)
    idle.setdefault("postino", {})
    idle.setdefault("Postfix", {})
    table = render(results, idle, disk, meta)
    table += render_relay(relay, relay_port)
    table += render_antispam(anti)
    for srv in servers:
        for note in srv.restarts:
            table += "- %s %s\n" % (srv.name, note)
    table += "\n(%.0f s for the whole run)\n" % (time.monotonic() - t_start)
    print(table)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write(table)
    policy_bench()
    return 0


if __name__ == "__main__":
    sys.exit(main())
