"""
A stand-in for a remote SMTP server in the end-to-end tests: Postfix's
smtp-sink(1) (/usr/sbin/smtp-sink, package postfix) on a loopback
address, with every mail transaction dumped to a file of its own.
Standard library only.

    from smtp_sink import SmtpSink, common_free_port

    port = common_free_port(["127.0.0.2", "127.0.0.3"])
    with SmtpSink(top, host="127.0.0.2", port=port) as mx1, \\
            SmtpSink(top, host="127.0.0.3", port=port,
                     hard_reject=("rcpt",)) as mx2:
        ...                                  # postino delivers
        t, = mx1.wait_transactions(1, timeout=10)
        assert t["rcpts"] == ["a@far.test"] and t["data"] == msg

Several sinks can listen at once on different 127.0.0.x addresses and
the same port (each binds its own address only).  smtp-sink speaks
ESMTP with PIPELINING, 8BITMIME, DSN, ENHANCEDSTATUSCODES and (fake)
AUTH; it has no STARTTLS at all (use mx_peer.MxPeer for TLS).

The dump format (smtp-sink -d TEMPLATE, see "DUMP FILE FORMAT" in
smtp-sink(1)), as observed with Postfix 3.7 on Debian 12.  smtp-sink
creates the file at MAIL FROM, keeps it open while the transaction
runs and closes it after the final "."; RSET or a new MAIL before the
"." removes it.  Every line ends in a bare LF:

    X-Client-Addr: 127.0.0.1
    X-Client-Proto: ESMTP
    X-Helo-Args: client.example.org       (only after a HELO/EHLO)
    X-Mail-Args: <a@b.test> BODY=8BITMIME (the MAIL arguments after FROM:)
    X-Rcpt-Args: <r1@x.test>              (one per accepted RCPT, in order)
    X-Rcpt-Args: <r2@y.test> NOTIFY=NEVER
    Received: from client.example.org ([127.0.0.1])
    \\tby smtp-sink.test (smtp-sink) with ESMTP id 187b831a;
    \\tWed,  2 Dec 2026 13:20:15 +0000 (UTC)
    <the message content, dot-unstuffed, each line ending in LF>
    <one empty line>

So the message content is everything after the three-line Received:
header, less the final "\\n" (the empty line).  smtp-sink stores it
already dot-unstuffed (".." at a line start is stored as "."), with
each CRLF stored as LF; it also stores a bare LF as LF and drops a bare
CR altogether ("a\\rb" is stored as "ab").  data is therefore the
stored content with every LF turned back into CRLF: exactly the bytes
sent (before dot-stuffing) for any message whose lines all end in CRLF
and that has no bare CR or LF, which is what RFC 5321 requires of a
client; raw keeps the stored LF form.

A file counts as a transaction only once smtp-sink has closed it (it is
no longer among /proc/PID/fd of the sink), it ends in "\\n\\n" and its
header parses.  A transaction cut off by a dropped connection before
its "." leaves no file (Postfix 3.7's smtp-sink removes it; a file
that is cut short all the same would be skipped).  Note that
a transaction whose "." was refused (hard_reject=("dot",)) is still
dumped: smtp-sink writes the file before replying.

Only the smtp-sink started here is ever signalled, by its PID; every
wait is bounded.
"""
import ipaddress
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
from procs import pid_alive  # noqa: E402

SMTP_SINK = "/usr/sbin/smtp-sink"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0

# Command names smtp-sink's -f/-r/-q/-Q understand; "dot" stands for
# "." (the end of DATA).
COMMANDS = ("CONNECT", "HELO", "EHLO", "LHLO", "MAIL", "RCPT", "VRFY", "DATA", ".",
            "RSET", "NOOP", "QUIT", "AUTH", "XCLIENT", "XFORWARD", "ETRN")


class SmtpSinkError(Exception):
    pass


def loopback(host):
    """host if it is an IPv4 address in 127.0.0.0/8, else ValueError."""
    a = ipaddress.ip_address(host)
    if a.version != 4 or a not in ipaddress.ip_network("127.0.0.0/8"):
        raise ValueError("%r is not a 127.0.0.0/8 address" % host)
    return str(a)


def common_free_port(hosts=("127.0.0.1",), tries=50):
    """A TCP port that was free a moment ago on every one of hosts (all
    in 127.0.0.0/8): one port number for several MX hosts."""
    hosts = [loopback(h) for h in hosts]
    for _ in range(tries):
        socks = []
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
            for h in hosts[1:]:
                t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(t)
                t.bind((h, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise SmtpSinkError("no port free on all of %s" % ", ".join(hosts))


def unsearchable(path):
    """The first directory on the way to path that other users cannot
    enter (no o+x), or None: a user such as nobody reaches path only
    when there is none."""
    path = os.path.abspath(path)
    parts = path.split(os.sep)
    for i in range(2, len(parts) + 1):
        d = os.sep.join(parts[:i]) or os.sep
        try:
            if not os.stat(d).st_mode & 0o001:
                return d
        except OSError:
            return d
    return None


def smtp_ready(host, port, timeout=3.0):
    """True if host:port answers with a 220 greeting (then QUIT)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            if s.recv(512).startswith(b"220"):
                s.sendall(b"QUIT\r\n")
                return True
    except OSError:
        pass
    return False


def _command_list(names):
    out = []
    for n in names:
        n = "." if n.lower() == "dot" else n.upper()
        if n not in COMMANDS:
            raise ValueError("unknown smtp-sink command name %r" % n)
        out.append(n)
    return ",".join(out)


def _address(args):
    """The address of MAIL/RCPT arguments "<a@b> PARAM=..." ("" for <>)
    and the parameters after it."""
    args = args.strip()
    if args.startswith("<"):
        end = args.find(">")
        if end != -1:
            return args[1:end], args[end + 1:].split()
    parts = args.split()
    return (parts[0] if parts else ""), parts[1:]


_RECEIVED = re.compile(rb"Received: from .*\n\tby .* \(smtp-sink\) with (\S+) id (\S+);\n\t.*\n")


def parse_dump(raw):
    """
    One dump file's bytes -> dict:
      client      "127.0.0.1" (X-Client-Addr)
      proto       "SMTP", "ESMTP" or "LMTP"
      helo        last HELO/EHLO argument, or None
      mail_args   the MAIL arguments as sent after FROM:
      mail_from   its address without <> ("" for the null sender)
      mail_params its parameters, e.g. ["BODY=8BITMIME"]
      rcpt_args   the arguments of each accepted RCPT, in order
      rcpts       their addresses without <>
      id          the random part of the file name (Received: id)
      raw         the content as stored (LF line ends)
      data        the content with every LF made CRLF (see the module doc)
    ValueError if the bytes are not a complete dump.
    """
    if not raw.endswith(b"\n\n"):
        raise ValueError("dump does not end in an empty line")
    t = {"client": None, "proto": None, "helo": None, "mail_args": None,
         "mail_from": None, "mail_params": [], "rcpt_args": [], "rcpts": []}
    pos = 0
    while True:
        eol = raw.find(b"\n", pos)
        if eol == -1:
            raise ValueError("dump without a Received: header")
        line = raw[pos:eol].decode("utf-8", "surrogateescape")
        if line.startswith("Received: "):
            break
        name, sep, value = line.partition(": ")
        if not sep:
            raise ValueError("bad dump header line %r" % line)
        if name == "X-Client-Addr":
            t["client"] = value
        elif name == "X-Client-Proto":
            t["proto"] = value
        elif name == "X-Helo-Args":
            t["helo"] = value
        elif name == "X-Mail-Args":
            t["mail_args"] = value
            t["mail_from"], t["mail_params"] = _address(value)
        elif name == "X-Rcpt-Args":
            t["rcpt_args"].append(value)
            t["rcpts"].append(_address(value)[0])
        # Anything else (a -S start string) is left out.
        pos = eol + 1
    m = _RECEIVED.match(raw, pos)
    if not m or t["client"] is None or t["mail_args"] is None:
        raise ValueError("dump header incomplete")
    t["id"] = m.group(2).decode("ascii", "replace")
    t["raw"] = raw[m.end():-1]
    t["data"] = t["raw"].replace(b"\n", b"\r\n")
    return t


class SmtpSink:
    """
    smtp-sink on host:port (port None: a free one), dumping each
    transaction under its own directory in top_dir.

    hard_reject / soft_reject: command names ("mail", "rcpt", "data",
    "dot" for the final ".", "ehlo", ...) refused with 500 5.3.0 / 450
    4.3.0 (-f / -r; either one also turns PIPELINING off, as in
    smtp-sink).  no_pipelining (-p), no_8bitmime (-8).  no_starttls
    must stay True: smtp-sink has no STARTTLS.  extra_args go to
    smtp-sink before the address, e.g. ("-a",) for no AUTH, ("-B", "550
    5.1.1 nope") for another hard reply, ("-w", "3") to wait before the
    354.  hostname is the greeting's and Received: name (-h).
    """

    def __init__(self, top_dir, host="127.0.0.1", port=None, hard_reject=(), soft_reject=(),
                 no_pipelining=False, no_8bitmime=False, no_starttls=True, extra_args=(),
                 hostname="smtp-sink.test"):
        if not no_starttls:
            raise ValueError("smtp-sink cannot offer STARTTLS; use mx_peer.MxPeer")
        self.host = loopback(host)
        self.port = port
        self.hard_reject = tuple(hard_reject)
        self.soft_reject = tuple(soft_reject)
        self.no_pipelining = no_pipelining
        self.no_8bitmime = no_8bitmime
        self.extra_args = [str(a) for a in extra_args]
        self.hostname = hostname
        self.dir = tempfile.mkdtemp(prefix="sink-%s-" % self.host, dir=top_dir)
        os.chmod(self.dir, 0o755)
        self.dump_dir = os.path.join(self.dir, "dump")
        self.log_path = os.path.join(self.dir, "smtp-sink.log")
        self.proc = None
        self._user = None
        if os.geteuid() == 0:
            # smtp-sink must drop root (-u); the dump directory is that
            # user's.
            self._user = "nobody"
        os.mkdir(self.dump_dir)
        os.chmod(self.dump_dir, 0o755)
        if self._user:
            pw = pwd.getpwnam(self._user)
            os.chown(self.dump_dir, pw.pw_uid, pw.pw_gid)
            closed = unsearchable(self.dump_dir)
            if closed:
                raise SmtpSinkError("%s is closed to %s (smtp-sink -u %s could not write its "
                                    "dumps): chmod 0755 the top directory"
                                    % (closed, self._user, self._user))

    @staticmethod
    def unavailable():
        """None if smtp-sink can run here, else why not."""
        if not os.access(SMTP_SINK, os.X_OK):
            return "%s not found: install postfix (sh scripts/install-deps.sh)" % SMTP_SINK
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("nobody")
            except KeyError:
                return "no 'nobody' user for smtp-sink -u"
        return None

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)

    def args(self):
        a = [SMTP_SINK, "-h", self.hostname]
        if self._user:
            a += ["-u", self._user]
        # strftime(3) expands the template: keep a '%' in the path literal.
        a += ["-d", os.path.join(self.dump_dir, "t.").replace("%", "%%")]
        if self.hard_reject:
            a += ["-f", _command_list(self.hard_reject)]
        if self.soft_reject:
            a += ["-r", _command_list(self.soft_reject)]
        if self.no_pipelining:
            a.append("-p")
        if self.no_8bitmime:
            a.append("-8")
        return a + self.extra_args + ["%s:%d" % (self.host, self.port), "64"]

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # -- life cycle

    def start(self, timeout=START_TIMEOUT):
        """Start and wait until it greets; returns self.  With port None
        a free port is chosen (and another one if it was taken)."""
        why = self.unavailable()
        if why:
            raise SmtpSinkError(why)
        assert self.proc is None, "already started"
        fixed = self.port is not None
        for _ in range(1 if fixed else 5):
            if not fixed:
                self.port = common_free_port([self.host])
            if self._spawn(timeout):
                return self
        raise SmtpSinkError("smtp-sink did not start on %s:%s; its output:\n%s"
                            % (self.host, self.port, self.log()))

    def _spawn(self, timeout):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, close_fds=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False
            if smtp_ready(self.host, self.port, timeout=1.0):
                return True
            time.sleep(0.05)
        self._kill()
        return False

    def _kill(self, timeout=STOP_TIMEOUT):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        self.proc = None

    def stop(self):
        """SIGTERM by PID (SIGKILL if it lingers), bounded.  The dump
        files stay, for transactions() after the stop."""
        self._kill()

    def alive(self):
        return self.proc is not None and pid_alive(self.proc.pid)

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- what it received

    def _open_files(self):
        """The dump files smtp-sink still has open (in progress)."""
        if not self.alive():
            return set()
        fd_dir = "/proc/%d/fd" % self.proc.pid
        out = set()
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            return out
        for fd in fds:
            try:
                out.add(os.readlink(os.path.join(fd_dir, fd)))
            except OSError:
                pass
        return out

    def transactions(self):
        """Every complete transaction so far, oldest first (by the dump
        file's modification time): a list of parse_dump() dicts, each
        with "path" too."""
        busy = self._open_files()
        found = []
        try:
            names = os.listdir(self.dump_dir)
        except OSError:
            return []
        for name in names:
            path = os.path.join(self.dump_dir, name)
            if path in busy:
                continue
            try:
                st = os.stat(path)
                with open(path, "rb") as f:
                    raw = f.read()
            except OSError:
                continue        # removed by an RSET meanwhile
            try:
                t = parse_dump(raw)
            except ValueError:
                continue        # aborted or cut off
            t["path"] = path
            found.append((st.st_mtime_ns, name, t))
        found.sort(key=lambda x: (x[0], x[1]))
        return [t for _, _, t in found]

    def wait_transactions(self, n, timeout=10.0):
        """Poll until at least n transactions are complete; returns
        transactions() then, or raises SmtpSinkError after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            ts = self.transactions()
            if len(ts) >= n:
                return ts
            if time.monotonic() >= deadline:
                raise SmtpSinkError("%d of %d transactions on %s after %.1fs"
                                    % (len(ts), n, self.address, timeout))
            time.sleep(0.05)
