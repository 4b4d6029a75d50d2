"""
A private dnsmasq for the end-to-end tests: the stub DNS server that
stands in for the outside world, on 127.0.0.1 and a free port (UDP and
TCP), with the records a test gives it.  Standard library only.

    from dnsmasq import Dnsmasq

    with Dnsmasq(hosts={"relay.test": ["192.0.2.7", "2001:db8::7"]},
                 ttl=30,
                 txt={"example.test": ["v=spf1 ip4:192.0.2.7 -all"]},
                 mx={"example.test": [(10, "relay.test")]}) as dns:
        conf = "[dns]\\nservers = %s\\n" % dns.server  # 127.0.0.1:PORT
        ...
        dns.set_hosts({"relay.test": ["192.0.2.8"]})   # while it runs
        assert dns.addresses("relay.test") == ["192.0.2.8"]

Address records given as hosts live in an --addn-hosts file, which
dnsmasq re-reads on SIGHUP: set_hosts() rewrites the file, sends SIGHUP
to the PID and returns only once dnsmasq has logged the re-read and
answers with the new addresses.  They all carry the TTL ttl
(--local-ttl).  Records with a TTL of their own (host_records), TXT and
MX records are options, which SIGHUP does not re-read: reconfigure()
restarts dnsmasq on the same port with new ones.

Unknown names under local_domains ("test" by default) get NXDOMAIN; any
other name gets REFUSED, since there is no upstream server.  Only the
process started here is ever signalled, by its PID.
"""
import ipaddress
import os
import pwd
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
from procs import pid_alive  # noqa: E402

DNSMASQ = "/usr/sbin/dnsmasq"

QTYPES = {"A": 1, "CNAME": 5, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28}
RCODES = {0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}

_NAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?$")


class DnsmasqError(Exception):
    pass


def free_udp_tcp_port(tries=50):
    """A port on 127.0.0.1 free for both UDP and TCP a moment ago."""
    for _ in range(tries):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise DnsmasqError("no port free for both UDP and TCP")


def _check_name(name):
    if not _NAME.match(name.rstrip(".")):
        raise ValueError("bad DNS name %r" % name)
    return name.rstrip(".")


def _check_addr(addr):
    return str(ipaddress.ip_address(addr))


def _conf_quote(s):
    """A TXT string in dnsmasq.conf quotes (its escapes: \\\\ \\" \\t)."""
    if any(ord(c) < 0x20 and c != "\t" for c in s) or "\x7f" in s:
        raise ValueError("control character in TXT %r" % s)
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"').replace(
        "\t", "\\t")


# ---------------------------------------------------------------- client

def _encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        b = label.encode("ascii")
        if not 0 < len(b) < 64:
            raise ValueError("bad label in %r" % name)
        out += bytes([len(b)]) + b
    return out + b"\0"


def _read_name(msg, off, depth=0):
    """(name, offset after it) of a possibly compressed name."""
    labels = []
    while True:
        if off >= len(msg) or depth > 20:
            raise DnsmasqError("malformed name in answer")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            ptr = struct.unpack(">H", msg[off:off + 2])[0] & 0x3FFF
            rest, _ = _read_name(msg, ptr, depth + 1)
            if rest:
                labels.append(rest)
            return ".".join(labels), off + 2
        off += 1
        if n == 0:
            return ".".join(labels), off
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n


def _rdata(msg, rtype, off, rdlen):
    rd = msg[off:off + rdlen]
    if rtype == 1:
        return str(ipaddress.IPv4Address(rd))
    if rtype == 28:
        return str(ipaddress.IPv6Address(rd))
    if rtype in (5, 12):
        return _read_name(msg, off)[0]
    if rtype == 15:
        return (struct.unpack(">H", rd[:2])[0], _read_name(msg, off + 2)[0])
    if rtype == 16:
        out, i = [], 0
        while i < len(rd):
            out.append(rd[i + 1:i + 1 + rd[i]].decode("utf-8", "replace"))
            i += 1 + rd[i]
        return out
    return rd


def _parse(msg, qid):
    qd_id, flags, qd, an = struct.unpack(">HHHH", msg[:8])
    if qd_id != qid:
        raise DnsmasqError("answer to another query")
    off = 12
    for _ in range(qd):
        off = _read_name(msg, off)[1] + 4
    answers = []
    for _ in range(an):
        _, off = _read_name(msg, off)
        rtype, _, ttl, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
        off += 10
        name = {v: k for k, v in QTYPES.items()}.get(rtype, rtype)
        answers.append((name, ttl, _rdata(msg, rtype, off, rdlen)))
        off += rdlen
    return flags, RCODES.get(flags & 15, flags & 15), answers


def query(port, name, qtype="A", timeout=2.0, host="127.0.0.1"):
    """
    Ask host:port once: (rcode, [(type, ttl, value)]), rcode a name
    such as "NOERROR" or "NXDOMAIN".  Values: an address string, a CNAME
    target, (preference, exchange) for MX, a list of strings for TXT.
    A truncated UDP answer is asked again over TCP.
    """
    qid = random.randrange(65536)
    msg = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + \
        _encode_name(name) + struct.pack(">HH", QTYPES[qtype], 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(msg, (host, port))
        ans = s.recv(65535)
    flags, rcode, answers = _parse(ans, qid)
    if not flags & 0x0200:
        return rcode, answers
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(struct.pack(">H", len(msg)) + msg)
        buf = b""
        while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
            chunk = s.recv(65535)
            if not chunk:
                raise DnsmasqError("TCP answer cut short")
            buf += chunk
    _, rcode, answers = _parse(buf[2:], qid)
    return rcode, answers


# ---------------------------------------------------------------- server

class Dnsmasq:
    """
    hosts: {name: [address, ...]}, IPv4 and IPv6, TTL ttl; changed at
    run time with set_hosts().
    host_records: [(name, [address, ...], ttl), ...], each with its TTL.
    txt: {name: [string, ...]}: one TXT record per string.
    mx: {name: [(preference, exchange), ...]}.
    local_domains: domains answered here alone (NXDOMAIN when unknown).
    """

    def __init__(self, hosts=None, ttl=60, host_records=(), txt=None,
                 mx=None, local_domains=("test",), port=None,
                 log_queries=True):
        self.hosts = dict(hosts or {})
        self.ttl = int(ttl)
        self.host_records = list(host_records)
        self.txt = dict(txt or {})
        self.mx = dict(mx or {})
        self.local_domains = tuple(local_domains)
        self.port = port
        self.log_queries = log_queries
        self.dir = None
        self.proc = None

    # -- paths and files

    @property
    def server(self):
        """The [dns] servers item: "127.0.0.1:PORT"."""
        return "127.0.0.1:%d" % self.port

    @property
    def hosts_path(self):
        return os.path.join(self.dir, "hosts")

    @property
    def conf_path(self):
        return os.path.join(self.dir, "records.conf")

    @property
    def log_path(self):
        return os.path.join(self.dir, "dnsmasq.log")

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _write(self, path, text):
        # Readable by "nobody", which dnsmasq runs as when we are root;
        # renamed into place so a SIGHUP never reads half a file.
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)

    def _hosts_text(self, hosts):
        lines = []
        for name, addrs in sorted(hosts.items()):
            name = _check_name(name)
            for a in addrs:
                lines.append("%s %s" % (_check_addr(a), name))
        return "\n".join(lines) + "\n"

    def _conf_text(self):
        lines = []
        for name, addrs, ttl in self.host_records:
            name = _check_name(name)
            for a in addrs:
                lines.append("host-record=%s,%s,%d"
                             % (name, _check_addr(a), int(ttl)))
        for name, strings in sorted(self.txt.items()):
            if isinstance(strings, str):
                strings = [strings]
            name = _check_name(name)
            for s in strings:
                lines.append("txt-record=%s,%s" % (name, _conf_quote(s)))
        for name, records in sorted(self.mx.items()):
            name = _check_name(name)
            for pref, exchange in records:
                # "." is the null MX of RFC 7505
                exchange = "." if exchange == "." else _check_name(exchange)
                lines.append("mx-host=%s,%s,%d" % (name, exchange, int(pref)))
        return "\n".join(lines) + "\n"

    def _args(self, port):
        user = "nobody" if os.geteuid() == 0 else \
            pwd.getpwuid(os.geteuid()).pw_name
        args = [DNSMASQ, "--no-resolv", "--no-hosts",
                "--conf-file=/dev/null", "--conf-file=%s" % self.conf_path,
                "--keep-in-foreground", "--bind-interfaces",
                "--listen-address=127.0.0.1", "--port=%d" % port,
                "--user=%s" % user, "--pid-file=", "--log-facility=-",
                "--local-ttl=%d" % self.ttl,
                "--addn-hosts=%s" % self.hosts_path]
        args += ["--local=/%s/" % _check_name(d) for d in self.local_domains]
        if self.log_queries:
            args.append("--log-queries")
        return args

    # -- life cycle

    def start(self, timeout=10.0):
        """Start on self.port, or a free port; returns self."""
        if not os.access(DNSMASQ, os.X_OK):
            raise DnsmasqError("%s not found: install dnsmasq-base "
                               "(sh scripts/install-deps.sh)" % DNSMASQ)
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix="postino-dnsmasq-")
            os.chmod(self.dir, 0o755)
        self._write(self.hosts_path, self._hosts_text(self.hosts))
        self._write(self.conf_path, self._conf_text())
        fixed = self.port is not None
        for _ in range(5):
            port = self.port if fixed else free_udp_tcp_port()
            if self._spawn(port, timeout):
                self.port = port
                return self
            # A fixed port (a restart) may still be held for a moment.
            time.sleep(0.2)
        raise DnsmasqError("dnsmasq did not start; its log:\n" + self.log())

    def _spawn(self, port, timeout):
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(
                self._args(port), stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, close_fds=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False
            try:
                query(port, "ready.invalid", "A", timeout=0.2)
                return True
            except (OSError, DnsmasqError):
                time.sleep(0.05)
        self._kill()
        return False

    def _kill(self, timeout=5.0):
        if self.proc is None:
            return
        pid = self.proc.pid
        if self.proc.poll() is None:
            os.kill(pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(pid, signal.SIGKILL)
                self.proc.wait(timeout)
        self.proc = None

    def stop(self):
        """SIGTERM by PID, wait, and remove the files."""
        self._kill()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def alive(self):
        return self.proc is not None and pid_alive(self.proc.pid)

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- changing records

    def set_hosts(self, hosts, timeout=5.0):
        """
        Replace every hosts record while dnsmasq runs: rewrite the
        --addn-hosts file, SIGHUP, then wait until dnsmasq has re-read
        it and answers each name with exactly its new addresses (and a
        name dropped with none).  DnsmasqError when it does not.
        """
        if not self.alive():
            raise DnsmasqError("dnsmasq is not running")
        old = self.hosts
        self.hosts = dict(hosts)
        text = self._hosts_text(self.hosts)
        marker = "read %s - " % self.hosts_path
        seen = self.log().count(marker)
        self._write(self.hosts_path, text)
        os.kill(self.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while self.log().count(marker) <= seen:
            if time.monotonic() >= deadline:
                raise DnsmasqError("no re-read of %s after SIGHUP; log:\n%s"
                                   % (self.hosts_path, self.log()))
            time.sleep(0.02)
        want = {_check_name(n): sorted(_check_addr(a) for a in addrs)
                for n, addrs in self.hosts.items()}
        for n in old:
            want.setdefault(_check_name(n), [])
        for name, addrs in want.items():
            while self.addresses(name) != addrs:
                if time.monotonic() >= deadline:
                    raise DnsmasqError("%s answers %s, want %s"
                                       % (name, self.addresses(name), addrs))
                time.sleep(0.02)

    def reconfigure(self, **changes):
        """
        Change anything given to the constructor (txt=, mx=,
        host_records=, ttl=, local_domains=, hosts=) by restarting
        dnsmasq on the same port: SIGHUP does not re-read options.
        """
        for k, v in changes.items():
            if k not in ("hosts", "ttl", "host_records", "txt", "mx",
                         "local_domains"):
                raise TypeError("unknown record kind %r" % k)
            setattr(self, k, v if k != "ttl" else int(v))
        self._kill()
        self.start()

    # -- asking

    def query(self, name, qtype="A"):
        return query(self.port, name, qtype)

    def addresses(self, name):
        """The A and AAAA answers for name, sorted ([] when none)."""
        out = []
        for qtype in ("A", "AAAA"):
            _, answers = self.query(name, qtype)
            out += [v for t, _, v in answers if t == qtype]
        return sorted(out)
