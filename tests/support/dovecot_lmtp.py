"""
A private Dovecot LMTP server (RFC 2033) for the end-to-end tests of
postino's local delivery over LMTP (SPEC R5.2, `[delivery] lmtp =
unix:/path` or `host:port`): Debian's dovecot-core + dovecot-lmtpd run
from a dovecot.conf of its own in a temporary directory, never the
system's (/etc/dovecot is not read, no system port is used).

    from dovecot_lmtp import DovecotLmtp

    with DovecotLmtp(top, users=["demo@example.test"], unix=True) as lm:
        ...                 # postino delivers to lm.host:lm.port or
                            # unix:lm.socket_path
        (path, data), = lm.wait_messages(1, "demo@example.test")
        assert DovecotLmtp.as_sent(data) == msg

Configuration (all in <dir>/dovecot.conf, <dir> = a mkdtemp under
top_dir): protocols = lmtp only, ssl = no, listen = host (127.0.0.0/8
only), base_dir <dir>/run, state_dir <dir>/state, log_path
<dir>/dovecot.log; service lmtp has an inet_listener on host:port and,
with unix=True, a unix_listener <dir>/lmtp (mode 0666, .socket_path)
too (the one Dovecot always has in base_dir, <dir>/run/lmtp, is left
alone).  hostname (greeting, LHLO reply) is "lmtp.example.test", so
the greeting is "220 lmtp.example.test Dovecot ready.".

Users: one passwd-file (<dir>/users, passdb and userdb) with each of
`users` (lower-cased, as Dovecot's default auth_username_format %Lu
looks them up), all with the uid and gid of "nobody".  LMTP asks only
the userdb; an address not there is refused at RCPT with

    550 5.1.1 <x@example.test> User doesn't exist: x@example.test

(user_unknown(addr)).  recipient_delimiter is "+" and
lmtp_save_to_detail_mailbox = no: demo+tag@example.test is demo's, into
its INBOX.

Mail: mail_location = maildir:<dir>/mail/%d/%n with Dovecot's index and
control files (dovecot.index*, dovecot-uidlist, dovecot-keywords) kept
out of it (INDEX= and CONTROL= under <dir>/index/%d/%n), so a user
local@domain's Maildir is exactly

    <dir>/mail/<domain>/<local>/{tmp,new,cur}   and an empty file
    <dir>/mail/<domain>/<local>/maildirfolder   Dovecot puts there

(maildir_path(user), made by Dovecot at the first delivery), owned by
nobody, one file per message and recipient (a message to two users is
one file in each Maildir, each named by Dovecot's maildir convention
TIME.MUSEC.PPID.HOST,S=SIZE,W=VSIZE).  LMTP delivers into new/;
messages() reads new/ and cur/.  mail_save_crlf = yes: the files keep
the CRLF line ends sent (a bare LF in the data is stored as CRLF, a
bare CR as it is).

What Dovecot's LMTP adds, as seen with 2.3.19.1 on Debian 12:
"Return-Path: <SENDER>\\r\\n" (the MAIL FROM address as written, "<>"
for the null sender) always, first; with its defaults also
"Delivered-To: RCPT" (lmtp_hdr_delivery_address = final, only when the
transaction has exactly one accepted recipient) and a Received: header
with the session id and the date (lmtp_add_received_header = yes):

    Received: from LHLO-NAME ([127.0.0.1])
    \\tby lmtp.example.test with LMTP
    \\tid SESSION-ID
    \\t(envelope-from <SENDER>)
    \\tfor <RCPT>; Wed, 02 Dec 2026 13:49:49 +0000    (the "for" only
                                                    with one recipient)

Both are turned off here (lmtp_hdr_delivery_address = none,
lmtp_add_received_header = no), so every file is exactly the
Return-Path: line and then the message as the client sent it
(dot-unstuffed), whatever the number of recipients; as_sent() strips
exactly that line and checks that it is there.

Replies (Dovecot words them itself; smtplib gives code and text):
greeting "220 lmtp.example.test Dovecot ready.", MAIL "250 2.1.0 OK",
RCPT "250 2.1.5 OK", DATA "354 OK", then after the final "." one reply
per accepted recipient, in RCPT order, "250 2.0.0 <RCPT> SESSION-ID
Saved" (SESSION-ID of the connection, with ":T<n>" for its n-th
transaction and ":R<n>" for the n-th RCPT if not the first, e.g.
"qNIGKf0hEGstUAAAg+zDdQ:T2:R2"); RSET "250 2.0.0 OK", QUIT "221 2.0.0
Bye", DATA with no recipient "503 5.5.0 No valid recipients".  The
address in replies is as the client wrote it (case kept); delivery
lower-cases it.

Processes (start, stop and log are dovecot_private.PrivateDovecot's,
shared with dovecot_pop3.py): `dovecot -F` is started as our child (its
PID is .pid) and runs, as usual, log, config, anvil, auth (as dovecot,
at the first lookup) and one lmtp process, started with the master
(process_min_avail = 1, process_limit = 1, client_limit = 100: it
serves every connection, and no process is spawned late enough to be
caught half-started by the shutdown).  stop() sends SIGTERM to the
master, which takes about 1 s to stop its children and exit, then
SIGKILLs by PID whatever of our master or its descendants is still
there after STOP_TIMEOUT.  stats_writer_socket_path is empty (no stats
process or client).

Needs root (Dovecot's master starts as root and drops privileges) and
the dovecot, dovenull and nobody users (see DovecotLmtp.unavailable()).
top_dir must be open to other users (0755): the auth process runs as
dovecot, deliveries as nobody.  Standard library only; every wait is
bounded in count and time; only the master started here (dovecot -F,
our child) and its descendants are signalled, by PID.
"""
import os
import pwd
import re
import socket
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
import dovecot_private  # noqa: E402
from dovecot_private import DovecotError, PrivateDovecot  # noqa: E402
from smtp_sink import smtp_ready  # noqa: E402

LMTP_BIN = "/usr/lib/dovecot/lmtp"
MAIL_USER = "nobody"            # owner of every Maildir
HOSTNAME = "lmtp.example.test"
GREETING = "220 %s Dovecot ready." % HOSTNAME
# sockaddr_un.sun_path is 108 bytes with its NUL.
UNIX_PATH_MAX = 107


def user_unknown(addr):
    """Dovecot's reply (code and text, as smtplib gives them) to RCPT
    TO:<addr> for an address not in the userdb."""
    return "550 5.1.1 <%s> User doesn't exist: %s" % (addr, addr)


class DovecotLmtpError(DovecotError):
    pass


def split_added(data):
    """(added, content) of a file Dovecot's LMTP delivered: added is the
    Return-Path line Dovecot put above the message (without its CRLF),
    content the rest, as sent.  ValueError when the file does not start
    with one "Return-Path: <...>" line."""
    if not data.startswith(b"Return-Path: <"):
        raise ValueError("no Return-Path: header where Dovecot puts it: %r" % data[:200])
    eol = data.find(b"\r\n")
    if eol == -1 or b"\n" in data[:eol] or not data[:eol].endswith(b">"):
        raise ValueError("not one Return-Path: <...> line: %r" % data[:200])
    return data[:eol], data[eol + 2:]


class DovecotLmtp(PrivateDovecot):
    """
    Dovecot's LMTP on host:port (port None: a free one) and, with
    unix=True, on the unix socket .socket_path; users: the addresses
    that exist (every other is refused at RCPT with 550 5.1.1).
    """

    KIND = "Dovecot LMTP"
    Error = DovecotLmtpError
    PREFIX = "dovecot-lmtp-"

    def __init__(self, top_dir, host="127.0.0.1", port=None, users=("demo@example.test",),
                 unix=False):
        why = self.unavailable()
        if why:
            raise DovecotLmtpError(why)
        self.users = []
        for u in users:
            u = u.lower()
            if not re.match(r"^[a-z0-9._%=-]+@[a-z0-9.-]+$", u) or ".." in u:
                raise ValueError("user %r is not a plain local@domain" % u)
            if u not in self.users:
                self.users.append(u)
        if not self.users:
            raise ValueError("no users")
        PrivateDovecot.__init__(self, top_dir, host, port,
                                why_open="Dovecot's auth runs as dovecot, deliveries as %s"
                                % MAIL_USER)
        self.users_path = os.path.join(self.dir, "users")
        self.mail_dir = os.path.join(self.dir, "mail")
        self.index_dir = os.path.join(self.dir, "index")
        self.socket_path = os.path.join(self.dir, "lmtp") if unix else None
        if self.socket_path and len(self.socket_path.encode()) > UNIX_PATH_MAX:
            raise DovecotLmtpError("unix socket path too long (%d > %d bytes): %s"
                                   % (len(self.socket_path.encode()), UNIX_PATH_MAX,
                                      self.socket_path))
        pw = pwd.getpwnam(MAIL_USER)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        for d in (self.mail_dir, self.index_dir):
            os.mkdir(d)
            os.chmod(d, 0o755)
            os.chown(d, self.uid, self.gid)
        with open(self.users_path, "w") as f:
            for u in self.users:
                # user:password:uid:gid:gecos:home:shell:extra (no home:
                # mail_location is absolute).
                f.write("%s:{PLAIN}unused-%s:%d:%d::::\n" % (u, u, self.uid, self.gid))
        os.chmod(self.users_path, 0o644)   # read by auth, which runs as dovecot

    @staticmethod
    def unavailable():
        """None if a private Dovecot LMTP can run here, else why not."""
        return dovecot_private.unavailable(LMTP_BIN, "dovecot-lmtpd", (MAIL_USER,))

    # -- configuration

    def config(self):
        """The text of dovecot.conf for the current port."""
        unix = ""
        if self.socket_path:
            unix = ("  unix_listener %s {\n"
                    "    mode = 0666\n"
                    "  }\n" % self.socket_path)
        idx = "%s/%%d/%%n" % self.index_dir
        return (
            self.common_config("lmtp", self.users_path, HOSTNAME)
            + "auth_mechanisms = plain\n"
            "mail_location = maildir:%(mail)s/%%d/%%n:INDEX=%(idx)s:CONTROL=%(idx)s\n"
            "mail_save_crlf = yes\n"
            "first_valid_uid = %(uid)d\n"
            "last_valid_uid = %(uid)d\n"
            "namespace inbox {\n"
            "  inbox = yes\n"
            "}\n"
            "recipient_delimiter = +\n"
            "lmtp_save_to_detail_mailbox = no\n"
            "lmtp_add_received_header = no\n"
            "lmtp_hdr_delivery_address = none\n"
            "lmtp_rcpt_check_quota = no\n"
            # One lmtp process, started with the master, serves every
            # connection: no process is ever spawned later, so none can
            # be caught half-started by the master's shutdown (one that
            # was blocked reading the config socket and held the stop
            # up by 5 s).  With client_limit > 1 lmtp drops privileges
            # to the user (nobody) only for each delivery (seteuid).
            "service lmtp {\n"
            "  process_min_avail = 1\n"
            "  process_limit = 1\n"
            "  client_limit = 100\n"
            "  inet_listener lmtp {\n"
            "    address = %(host)s\n"
            "    port = %(port)d\n"
            "  }\n"
            "%(unix)s"
            "}\n"
            % {"host": self.host, "mail": self.mail_dir, "idx": idx, "uid": self.uid,
               "port": self.port, "unix": unix})

    def maildir_path(self, user):
        """The Maildir of user local@domain: <dir>/mail/<domain>/<local>."""
        local, _, domain = user.lower().rpartition("@")
        return os.path.join(self.mail_dir, domain, local)

    # -- life cycle (start(), stop(), alive(), pid, log(), wait_log():
    # PrivateDovecot's)

    def ready(self):
        """The LMTP port, and the unix socket if any, answer 220."""
        return smtp_ready(self.host, self.port, timeout=1.0) and \
            (not self.socket_path or self._unix_ready())

    def _unix_ready(self, timeout=1.0):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                s.connect(self.socket_path)
                if s.recv(512).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return True
        except OSError:
            pass
        return False

    def stop(self):
        """Stop our Dovecot (by PID, bounded).  The Maildirs and the log
        stay, for messages() and log() after the stop."""
        self._kill()

    # -- what it received

    def messages(self, user=None):
        """[(path, bytes)] of the messages in user's Maildir (new/ and
        cur/; every user's with user None), oldest first.  Dovecot
        writes in tmp/ and renames, so each file read is complete."""
        found = []
        for u in ([user] if user else self.users):
            md = self.maildir_path(u)
            for sub in ("new", "cur"):
                d = os.path.join(md, sub)
                try:
                    names = os.listdir(d)
                except OSError:
                    continue
                for name in names:
                    path = os.path.join(d, name)
                    try:
                        st = os.stat(path)
                        with open(path, "rb") as f:
                            data = f.read()
                    except OSError:
                        continue        # moved from new/ to cur/ meanwhile
                    found.append((st.st_mtime_ns, name, path, data))
        found.sort()
        return [(p, b) for _, _, p, b in found]

    def wait_messages(self, n, user=None, timeout=10.0):
        """Poll until at least n messages are in user's Maildir (or in
        all of them, user None); messages() then, or DovecotLmtpError
        after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.messages(user)
            if len(msgs) >= n:
                return msgs
            if time.monotonic() >= deadline:
                raise DovecotLmtpError("%d of %d messages%s after %.1fs\n%s"
                                       % (len(msgs), n, " for %s" % user if user else "",
                                          timeout, self.log(tail=40)))
            time.sleep(0.05)

    def sent_messages(self, user=None):
        """as_sent() of each of messages(user), oldest first."""
        return [self.as_sent(data) for _, data in self.messages(user)]

    @staticmethod
    def return_path(data):
        """The Return-Path: of a delivered file, as Dovecot wrote it:
        "<SENDER>" ("<>" for the null sender)."""
        added, _ = split_added(data)
        return added[len(b"Return-Path: "):].decode("utf-8", "replace")

    @staticmethod
    def as_sent(data):
        """The message bytes as the client sent them (before
        dot-stuffing) from a delivered file: the Return-Path: line
        Dovecot prepends removed, nothing else changed (the file keeps
        CRLF, mail_save_crlf = yes).  Exact for a message whose lines
        all end in CRLF (a bare LF comes back as CRLF).  ValueError if
        the file does not start with that line."""
        return split_added(data)[1]
