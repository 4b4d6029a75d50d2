"""
A private Postfix instance for end-to-end tests: the Debian package run
from its own config, queue and data directories under a temporary
directory, with smtpd on one free 127.0.0.1 port.  It never touches the
system instance (/etc/postfix is only read, port 25 is never used).

Used as the university guide's "smart host" client: Postfix relays all
mail to postino's submission listener with STARTTLS and SMTP AUTH
(relayhost, smtp_sasl_*), as an administrator would set it up.

Needs root (Postfix's master drops to mail_owner) and the `postfix`
user; callers skip otherwise (see PostfixPeer.unavailable()).
Standard library only; every wait is bounded; only the master started
here is signalled, by PID.
"""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time

from procs import free_port, pid_alive, private_master_cf, private_postfix_etc

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
POSTCONF = shutil.which("postconf") or "/usr/sbin/postconf"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


class PostfixPeer:
    """Postfix relaying everything to relayhost [127.0.0.1]:relay_port,
    authenticating as sasl_user:sasl_password over required TLS."""

    @staticmethod
    def unavailable():
        """None if a private Postfix can run here, else why not."""
        if os.geteuid() != 0:
            return "not root: Postfix's master cannot run"
        if not os.access(POSTFIX, os.X_OK):
            return "postfix is not installed"
        try:
            pwd.getpwnam("postfix")
        except KeyError:
            return "no 'postfix' user"
        return None

    def __init__(self, top, relay_port, sasl_user, sasl_password,
                 myhostname="relay.example.org", extra_main=None):
        self.dir = os.path.join(top, "postfix")
        os.mkdir(self.dir)
        os.chmod(self.dir, 0o755)
        self.etc = os.path.join(self.dir, "etc")
        self.queue = os.path.join(self.dir, "queue")
        self.data = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "maillog")
        self.port = free_port()
        self.relay_port = relay_port
        self.myhostname = myhostname
        self.master_pid = None
        os.mkdir(self.etc)
        os.mkdir(self.queue)            # root-owned; post-install fills it
        os.chmod(self.queue, 0o755)
        sysmeta = private_postfix_etc(self.etc, POSTCONF)
        nexthop = "[127.0.0.1]:%d" % relay_port
        self.sasl_file = os.path.join(self.etc, "sasl_passwd")
        with open(self.sasl_file, "w") as f:
            f.write("%s %s:%s\n" % (nexthop, sasl_user, sasl_password))
        os.chmod(self.sasl_file, 0o600)
        main = {
            "compatibility_level": "3.6",
            "meta_directory": self.etc,
            "queue_directory": self.queue,
            "data_directory": self.data,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "syslog_name": "postfix-e2e",
            "maillog_file": self.log_path,
            "maillog_file_prefixes": self.dir,
            "myhostname": myhostname,
            "mydomain": "example.org",
            "myorigin": "$myhostname",
            "mydestination": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "smtpd_peername_lookup": "no",
            "biff": "no",
            # The smart host of the university guide.
            "relayhost": nexthop,
            "smtp_sasl_auth_enable": "yes",
            "smtp_sasl_password_maps": "texthash:" + self.sasl_file,
            "smtp_sasl_security_options": "noanonymous",
            "smtp_sasl_tls_security_options": "noanonymous",
            "smtp_tls_security_level": "encrypt",
            "smtp_tls_loglevel": "1",
            # Fail fast rather than retrying in the background.
            "smtp_connect_timeout": "10s",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
        }
        main.update(extra_main or {})
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            for k, v in main.items():
                f.write("%s = %s\n" % (k, v))
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(private_master_cf(os.path.join(sysmeta, "master.cf.proto"), self.port))

    def postfix(self, *args, timeout=60):
        return subprocess.run([POSTFIX, "-c", self.etc] + list(args), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def start(self):
        r = self.postfix("start")
        if r.returncode != 0:
            raise AssertionError("postfix start: exit %d: %s%s\n%s"
                                 % (r.returncode, r.stdout, r.stderr, self.log()))
        pidfile = os.path.join(self.queue, "pid", "master.pid")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.master_pid is None:
            try:
                with open(pidfile) as f:
                    self.master_pid = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                time.sleep(0.05)
        assert self.master_pid, "no master.pid after %.0fs\n%s" % (START_TIMEOUT, self.log())
        # Ready when smtpd greets.
        last = None
        while time.monotonic() < deadline:
            assert self.alive(), "postfix master exited\n" + self.log()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=3) as s:
                    s.settimeout(5)
                    if s.recv(512).startswith(b"220 "):
                        s.sendall(b"QUIT\r\n")
                        return self
            except OSError as e:
                last = e
            time.sleep(0.1)
        raise AssertionError("postfix smtpd not ready after %.0fs (%r)\n%s"
                             % (START_TIMEOUT, last, self.log()))

    def alive(self):
        return self.master_pid is not None and pid_alive(self.master_pid)

    def stop(self):
        """postfix stop, bounded; then SIGKILL our master by PID."""
        if not self.alive():
            return
        try:
            self.postfix("stop", timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.alive():
            try:
                os.kill(self.master_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def log(self, tail=None):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        if tail:
            text = "\n".join(text.splitlines()[-tail:])
        return text

    def wait_log(self, pattern, timeout=30.0):
        """Poll the maillog until pattern (a compiled regex) matches; the
        match, or None after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            m = pattern.search(self.log())
            if m or time.monotonic() >= deadline:
                return m
            time.sleep(0.1)
