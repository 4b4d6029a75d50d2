"""
What every private Dovecot of the tests and benchmarks shares
(dovecot_lmtp.DovecotLmtp, dovecot_pop3.DovecotPop3): a temporary
directory of its own under top_dir holding dovecot.conf, base_dir
(run/), state_dir (state/), the log (dovecot.log) and the master's
stdout/stderr (dovecot.out); `dovecot -F -c <dir>/dovecot.conf` started
as our child, never the system's instance (/etc/dovecot is not read, no
system port is used); a bounded wait until it answers; and a bounded
stop by PID.

A subclass gives config() (the whole text of dovecot.conf; it may start
with common_config()) and ready() (one bounded probe: True once the
service answers), and sets KIND (for messages) and Error (the exception
it raises).

Processes: stop() sends SIGTERM to the master, which stops its children
and exits (about 1 s), then SIGKILLs by PID whatever of our master or
of the descendants it had is still there after STOP_TIMEOUT.  Only that
master (our child) and its descendants are ever signalled.

Needs root (Dovecot's master starts as root and drops privileges) and
the dovecot and dovenull users (see unavailable()).  Standard library
only; every wait is bounded in count and time.
"""
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
from procs import pid_alive, tree  # noqa: E402
from smtp_sink import common_free_port, loopback, unsearchable  # noqa: E402

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
SYSTEM_USERS = ("dovecot", "dovenull")   # default_internal_user, default_login_user
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
START_TRIES = 5                 # free ports tried when port is None


class DovecotError(Exception):
    pass


def unavailable(binary, package, users=()):
    """None if a private Dovecot running binary (e.g. /usr/lib/dovecot/pop3,
    from package) can run here, else why not."""
    if os.geteuid() != 0:
        return "not root: Dovecot's master cannot run (it starts as root)"
    if not os.access(DOVECOT, os.X_OK):
        return "dovecot is not installed (dovecot-core: sh scripts/install-deps.sh)"
    if not os.access(binary, os.X_OK):
        return "%s not found (%s: sh scripts/install-deps.sh)" % (binary, package)
    for u in SYSTEM_USERS + tuple(users):
        try:
            pwd.getpwnam(u)
        except KeyError:
            return "no %r user (made by dovecot-core's postinst)" % u
    return None


class PrivateDovecot:
    """A private Dovecot on host:port (port None: a free one, another
    one tried if Dovecot cannot bind it).  why_open: who needs to enter
    top_dir (for the error when it is closed to other users)."""

    KIND = "Dovecot"
    Error = DovecotError
    PREFIX = "dovecot-"

    def __init__(self, top_dir, host="127.0.0.1", port=None, why_open="Dovecot's auth "
                 "runs as dovecot"):
        self.host = loopback(host)
        self._fixed_port = port is not None
        self.port = port if port is not None else common_free_port([self.host])
        closed = unsearchable(top_dir)
        if closed:
            raise self.Error("%s is closed to other users: chmod 0755 the top directory (%s)"
                             % (closed, why_open))
        self.dir = tempfile.mkdtemp(prefix=self.PREFIX, dir=top_dir)
        os.chmod(self.dir, 0o755)
        self.conf_path = os.path.join(self.dir, "dovecot.conf")
        self.base_dir = os.path.join(self.dir, "run")
        self.state_dir = os.path.join(self.dir, "state")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.out_path = os.path.join(self.dir, "dovecot.out")   # master's stdout/stderr
        self.proc = None

    # -- configuration (the subclass's)

    def common_config(self, protocols, users_path, hostname=None):
        """The lines every private instance has: its own directories and
        log, protocols, listen = host only, no TLS, no stats, one
        passwd-file (users_path) as passdb and userdb."""
        return (
            "# Private %(kind)s for postino's tests (tests/support/%(mod)s.py)\n"
            "instance_name = postino-test-%(name)s\n"
            "base_dir = %(base)s\n"
            "state_dir = %(state)s\n"
            "log_path = %(log)s\n"
            "info_log_path = %(log)s\n"
            "debug_log_path = %(log)s\n"
            "protocols = %(protocols)s\n"
            "listen = %(host)s\n"
            "ssl = no\n"
            "%(hostname)s"
            "login_greeting = Dovecot ready.\n"
            "default_internal_user = dovecot\n"
            "default_login_user = dovenull\n"
            "auth_verbose = yes\n"
            "passdb {\n"
            "  driver = passwd-file\n"
            "  args = %(users)s\n"
            "}\n"
            "userdb {\n"
            "  driver = passwd-file\n"
            "  args = %(users)s\n"
            "}\n"
            # No stats client: a process started just before the
            # master's shutdown would wait 5 s for the (gone) stats
            # process's handshake, and the master for it.
            "stats_writer_socket_path =\n"
            % {"kind": self.KIND, "mod": type(self).__module__,
               "name": os.path.basename(self.dir), "base": self.base_dir,
               "state": self.state_dir, "log": self.log_path, "protocols": protocols,
               "host": self.host, "users": users_path,
               "hostname": "hostname = %s\n" % hostname if hostname else ""})

    def config(self):
        raise NotImplementedError

    def ready(self):
        """One bounded probe: True once the service answers."""
        raise NotImplementedError

    # -- life cycle

    def start(self, timeout=START_TIMEOUT):
        """Write dovecot.conf, run dovecot -F -c it; wait (bounded) until
        ready().  With port None the free port chosen at construction is
        used, and another one if Dovecot could not bind it (self.port
        tells which).  Returns self."""
        assert self.proc is None, "already started"
        for i in range(1 if self._fixed_port else START_TRIES):
            if i:
                self.port = common_free_port([self.host])
            with open(self.conf_path, "w") as f:
                f.write(self.config())
            os.chmod(self.conf_path, 0o644)
            if self._spawn(timeout):
                return self
            if "Address already in use" not in self.log():
                break
        raise self.Error("%s did not start on %s:%s\n%s"
                         % (self.KIND, self.host, self.port, self.log(tail=40)))

    def preexec(self):
        """Run in the child before exec (e.g. to raise a limit)."""

    def _spawn(self, timeout):
        with open(self.out_path, "ab") as out:
            self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf_path],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         close_fds=True, preexec_fn=self.preexec)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False
            if self.ready():
                return True
            time.sleep(0.05)
        self._kill()
        return False

    def _kill(self, timeout=STOP_TIMEOUT):
        """SIGTERM to our master by PID (it stops its children), bounded;
        then SIGKILL to it and to whatever of its descendants is left."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            family = tree(self.proc.pid)
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                family = tree(self.proc.pid) + family
                self._sigkill(family)
                self.proc.wait(timeout)
            # Children the master did not take down with it (once it is
            # gone they are no longer in its tree: the PIDs noted above).
            deadline = time.monotonic() + timeout
            left = [p for p in family[1:] if pid_alive(p)]
            while left and time.monotonic() < deadline:
                time.sleep(0.05)
                left = [p for p in left if pid_alive(p)]
            self._sigkill(left)
        self.proc = None

    @staticmethod
    def _sigkill(pids):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self):
        """Stop our Dovecot (by PID, bounded).  Its directory stays, for
        log() after the stop."""
        self._kill()

    def alive(self):
        return self.proc is not None and pid_alive(self.proc.pid)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def pids(self):
        """The master and its descendants now ([] when stopped)."""
        return tree(self.proc.pid) if self.alive() else []

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- log

    def log(self, tail=None):
        """Dovecot's log (log_path) and then whatever the master wrote
        to its stdout/stderr (fatal start-up errors)."""
        text = ""
        for path in (self.log_path, self.out_path):
            try:
                with open(path, "rb") as f:
                    text += f.read().decode("utf-8", "replace")
            except OSError:
                pass
        if tail:
            text = "\n".join(text.splitlines()[-tail:])
        return text

    def wait_log(self, pattern, timeout=10.0):
        """Poll the log until pattern (a regex or its text) matches; the
        match, or None after timeout."""
        if isinstance(pattern, str):
            pattern = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = pattern.search(self.log())
            if m or time.monotonic() >= deadline:
                return m
            time.sleep(0.05)
