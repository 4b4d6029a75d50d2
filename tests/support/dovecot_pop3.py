"""
A private Dovecot POP3 server serving a Maildir someone else wrote
(postino's), for the tests that compare postino's POP3 with Dovecot's
on the very same Maildir (tests/e2e/test_pop3_dovecot.py) and for
bench/pop3_bench.py: Debian's dovecot-core + dovecot-pop3d run from a
dovecot.conf of its own in a temporary directory, never the system's
(/etc/dovecot is not read, no system port is used; the start, stop and
log are dovecot_private.PrivateDovecot's, shared with dovecot_lmtp.py).

    from dovecot_pop3 import DovecotPop3

    with DovecotPop3(top, p.maildir(DEMO), DEMO, DEMO_PASSWORD) as dv:
        ...                 # POP3 on dv.host:dv.port, plaintext USER/PASS

Configuration (all in <dir>/dovecot.conf, <dir> = a mkdtemp under
top_dir): protocols = pop3 only, ssl = no, disable_plaintext_auth = no
(USER/PASS and AUTH PLAIN/LOGIN over plain TCP, loopback only),
listen = host (127.0.0.0/8 only); service pop3-login has its pop3
inet_listener on host:port and its pop3s listener off (port = 0), so
neither 110 nor 995 is ever bound.  Greeting "+OK Dovecot ready."
(GREETING).

User: one passwd-file (<dir>/users, passdb and userdb) with `user`
(lower-cased, as auth_username_format %Lu looks it up) and its password
({PLAIN}), with the uid and gid that own `maildir` (postino's store
user when postino wrote it): Dovecot's pop3 process runs as that owner,
so what it writes in the Maildir (dovecot-uidlist, renames into cur/,
unlinks) is owned as postino's own files are.  `extra_users`, a list of
(user, password, maildir), adds more, each with its own Maildir (a
userdb_mail extra field) and its owner's uid.

Mail: mail_location = maildir:<maildir>:INDEX=<dir>/index/<user>: Dovecot
serves the given Maildir itself, its index files (dovecot.index*) kept
under the temporary directory, its control files (dovecot-uidlist,
dovecot-keywords) in the Maildir (Dovecot's default, CONTROL not set):
the dovecot-uidlist postino keeps is the one Dovecot reads and writes.
pop3_uidl_format = %08Xu%08Xv (Dovecot's default, written out): a UIDL
is the UID and the UIDVALIDITY in 8 upper-case hex digits each.

Processes: `dovecot -F` is our child (.pid); it runs log, config,
anvil, auth (as dovecot) and, per connection, a pop3-login process (as
dovenull; Dovecot's default service_count = 1, one process a
connection) and, per logged-in session, a pop3 process (as the Maildir's
owner).  With max_connections=N the process and client limits are
raised for N connections at once (default_process_limit,
default_client_limit, mail_max_userip_connections) and the master's
RLIMIT_NOFILE with them; login_processes='shared' switches pop3-login
to Dovecot's "high-performance" mode (service_count = 0, one process
serving many connections, process_min_avail = login_shared_processes).
stop() is PrivateDovecot's: SIGTERM to the master, SIGKILL by PID to
whatever of its tree is left after STOP_TIMEOUT.

Needs root and the dovecot and dovenull users (see
DovecotPop3.unavailable()); top_dir must be open to other users (0755),
and the Maildir to its owner.  Standard library only; every wait is
bounded in count and time.
"""
import os
import pwd
import re
import resource
import socket
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
import dovecot_private  # noqa: E402
from dovecot_private import DovecotError, PrivateDovecot  # noqa: E402

POP3_BIN = "/usr/lib/dovecot/pop3"
GREETING = b"+OK Dovecot ready.\r\n"
UIDL_FORMAT = "%08Xu%08Xv"      # Dovecot's default pop3_uidl_format


class DovecotPop3Error(DovecotError):
    pass


def pop3_ready(host, port, timeout=1.0):
    """True if host:port greets with +OK (then QUIT)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            if s.recv(512).startswith(b"+OK"):
                s.sendall(b"QUIT\r\n")
                return True
    except OSError:
        pass
    return False


def read_uidlist(maildir):
    """(uidvalidity, next_uid, {base name: uid}) of maildir/dovecot-uidlist
    (version 3: "3 V<uidvalidity> N<next uid> G<guid>", then one
    "<uid> [<ext>...] :<base name>" a message)."""
    with open(os.path.join(maildir, "dovecot-uidlist"), "rb") as f:
        lines = f.read().decode().splitlines()
    head = dict((w[0], w[1:]) for w in lines[0].split()[1:])
    uids = {}
    for ln in lines[1:]:
        if not ln.strip():
            continue
        fields, name = ln.split(" :", 1)
        uids[name] = int(fields.split()[0])
    return int(head["V"]), int(head["N"]), uids


class DovecotPop3(PrivateDovecot):
    """Dovecot's POP3 on host:port (port None: a free one) serving
    maildir as user's INBOX; password: user's password."""

    KIND = "Dovecot POP3"
    Error = DovecotPop3Error
    PREFIX = "dovecot-pop3-"

    def __init__(self, top_dir, maildir, user="demo@example.test", password="secret-pw-1",
                 host="127.0.0.1", port=None, extra_users=(), max_connections=None,
                 login_processes="per-connection", login_shared_processes=4):
        why = self.unavailable()
        if why:
            raise DovecotPop3Error(why)
        if login_processes not in ("per-connection", "shared"):
            raise ValueError("login_processes: per-connection or shared")
        self.users = []         # [(user, password, maildir, uid, gid)]
        for u, pw, md in [(user, password, maildir)] + list(extra_users):
            u = u.lower()
            if not re.match(r"^[a-z0-9._%=+-]+@[a-z0-9.-]+$", u) or ".." in u:
                raise ValueError("user %r is not a plain local@domain" % u)
            if any(c in pw for c in ":\n\r") or any(c in md for c in ":\n\r "):
                raise ValueError("a ':', a space or a line end in %r or its Maildir" % u)
            st = os.stat(md)
            if st.st_uid == 0:
                raise DovecotPop3Error("%s is owned by root: Dovecot will not run mail "
                                       "processes as root" % md)
            self.users.append((u, pw, os.path.abspath(md), st.st_uid, st.st_gid))
        self.user, self.password, self.maildir = self.users[0][:3]
        self.max_connections = max_connections
        self.login_processes = login_processes
        self.login_shared_processes = login_shared_processes
        PrivateDovecot.__init__(self, top_dir, host, port,
                                why_open="Dovecot's auth runs as dovecot")
        self.users_path = os.path.join(self.dir, "users")
        self.index_dir = os.path.join(self.dir, "index")
        os.mkdir(self.index_dir)
        os.chmod(self.index_dir, 0o755)
        with open(self.users_path, "w") as f:
            for u, pw, md, uid, gid in self.users:
                idx = os.path.join(self.index_dir, u)
                os.mkdir(idx)
                os.chmod(idx, 0o700)
                os.chown(idx, uid, gid)
                # user:password:uid:gid:gecos:home:shell:extra fields (no
                # home: the Maildir is an absolute path)
                extra = "" if md == self.maildir else \
                    "userdb_mail=maildir:%s:INDEX=%s" % (md, idx)
                f.write("%s:{PLAIN}%s:%d:%d::::%s\n" % (u, pw, uid, gid, extra))
        os.chmod(self.users_path, 0o644)   # read by auth, which runs as dovecot

    @staticmethod
    def unavailable():
        """None if a private Dovecot POP3 can run here, else why not."""
        return dovecot_private.unavailable(POP3_BIN, "dovecot-pop3d")

    # -- configuration

    def config(self):
        """The text of dovecot.conf for the current port."""
        uids = [u[3] for u in self.users]
        limits = ""
        if self.max_connections:
            n = int(self.max_connections)
            limits = ("default_process_limit = %d\n"
                      "default_client_limit = %d\n"
                      "mail_max_userip_connections = %d\n"
                      % (n + 100, 2 * n + 200, n + 100))
        login = ""
        if self.login_processes == "shared":
            login = ("  service_count = 0\n"
                     "  process_min_avail = %d\n" % self.login_shared_processes)
        return (
            self.common_config("pop3", self.users_path)
            + "disable_plaintext_auth = no\n"
            "auth_mechanisms = plain login\n"
            "mail_location = maildir:%(maildir)s:INDEX=%(idx)s\n"
            "first_valid_uid = %(first)d\n"
            "last_valid_uid = %(last)d\n"
            "namespace inbox {\n"
            "  inbox = yes\n"
            "}\n"
            "pop3_uidl_format = %(uidl)s\n"
            "%(limits)s"
            "service pop3-login {\n"
            "%(login)s"
            "  inet_listener pop3 {\n"
            "    address = %(host)s\n"
            "    port = %(port)d\n"
            "  }\n"
            "  inet_listener pop3s {\n"
            "    port = 0\n"
            "  }\n"
            "}\n"
            % {"maildir": self.maildir, "idx": os.path.join(self.index_dir, self.user),
               "first": min(uids), "last": max(uids), "uidl": UIDL_FORMAT,
               "limits": limits, "login": login, "host": self.host, "port": self.port})

    def preexec(self):
        if self.max_connections:
            want = 4 * int(self.max_connections) + 1000
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            if hard != resource.RLIM_INFINITY and hard < want:
                want = hard
            if soft == resource.RLIM_INFINITY or soft < want:
                resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    def ready(self):
        return pop3_ready(self.host, self.port)

    # -- the Maildir

    def uidlist(self, maildir=None):
        """read_uidlist() of the (first user's) Maildir."""
        return read_uidlist(maildir or self.maildir)
