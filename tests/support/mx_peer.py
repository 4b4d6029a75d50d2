"""
A private Postfix instance that RECEIVES mail for the end-to-end tests
of postino's outbound delivery: the destination MX of other domains, or
(require_auth=True) the smart host of the university guide.  The Debian
package runs from its own config, queue, data and mail directories
under a temporary directory, with smtpd on the (host, port) given, host
any 127.0.0.x; it never touches the system instance and never sends
mail anywhere (every transport is the virtual delivery agent).

    from mx_peer import MxPeer

    mx = MxPeer(top, "127.0.0.2", port, domains=["far.test"],
                reply_rcpt={"bad@far.test": "550 5.1.1 no such user"})
    mx.start()
    ...                                   # postino delivers
    (path, data), = mx.wait_messages(1, rcpt="a@far.test")
    assert MxPeer.as_sent(data) == msg    # the bytes postino sent
    mx.stop()

Delivery: the virtual(8) agent, as user nobody, into one Maildir for
every recipient, <dir>/vmail/Maildir/ (maildir), one file per recipient
(a message for two recipients is two files); messages(rcpt) tells them
apart by the Delivered-To: header virtual writes (virtual(8) allows no
$1 substitution in its maps, so no Maildir per recipient for addresses
not known in advance).  Recipients are those of `domains`
(virtual_mailbox_domains; every local part is accepted, through a
regexp virtual_mailbox_maps that matches anything), except those
in reply_rcpt, refused at RCPT with the code, status and text given (a
texthash check_recipient_access map; Postfix words the reply itself:
{"bad@far.test": "550 5.1.1 no such user"} is answered "550 5.1.1
<bad@far.test>: Recipient address rejected: no such user").  Other
domains are relay: refused ("554 5.7.1 <x@else.test>: Relay access
denied", reject_unauth_destination) unless the client authenticated.
With require_auth every RCPT of a client that did not authenticate is
refused ("554 5.7.1 <x@else.test>: Recipient address rejected: Access
denied", smtpd_relay_restrictions = permit_sasl_authenticated, reject),
and an authenticated one's, whatever the domain, delivered here.  A
wrong password gets "535 5.7.8 Error: authentication failed:
authentication failure"; smtpd_error_sleep_time is 0s, so refusals are
not slowed down.  (Should a delivery fail, Postfix's bounce to the
sender, and any notice to postmaster, would be delivered here too.)

What Postfix adds (documented by as_sent()): smtpd puts its Received:
header first ("Received: from HELO (unknown [ADDR])" / "\\tby HOSTNAME
(Postfix) with ESMTP[S][A] id QID" / ["\\tfor <RCPT>;"] date...), and
virtual prepends, above it, "Return-Path: <SENDER>", "X-Original-To:
RCPT" and "Delivered-To: RCPT".  It writes the file with LF line ends
(each CRLF of the message made LF; a bare LF is a line end too, and a
bare CR was seen delivered as a space).  The message content is
otherwise untouched (dot-unstuffed, 8-bit and lines longer than
line_length_limit intact): local_header_rewrite_clients is empty, so
cleanup neither rewrites header addresses nor adds a missing Date:,
From: or Message-ID: for loopback clients.  X-Original-To: and
Delivered-To: carry the recipient as the client wrote it (case kept).

TLS (tls=True): STARTTLS with a self-signed RSA certificate for
hostname made here with openssl (cert_path); auth_only_with_tls offers
AUTH only after STARTTLS (smtpd_tls_auth_only).  SASL (sasl_users
{"user": "password"}): Cyrus SASL in smtpd (smtpd_sasl_type = cyrus)
with a private smtpd.conf (cyrus_sasl_config_path), auxprop sasldb in a
private file made with saslpasswd2 -f, mech_list sasl_mechs (PLAIN LOGIN).  A user
"name@realm" is stored as name in realm; a user without "@" in the
realm hostname (smtpd_sasl_local_domain).

Needs root (Postfix's master drops to mail_owner) and the `postfix`
user; callers skip otherwise (see MxPeer.unavailable()).  top_dir must
be open to other users (0755): smtpd runs as postfix, virtual as nobody.
Standard library only; every wait is bounded; only the master started
here is signalled, by PID (inherited from PostfixPeer).
"""
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_E2E = os.path.join(os.path.dirname(_HERE), "e2e")
for _p in (_HERE, _E2E):
    if _p not in sys.path:
        sys.path.insert(0, _p)
from postfix_peer import POSTCONF, START_TIMEOUT, PostfixPeer  # noqa: E402
from procs import private_master_cf, private_postfix_etc  # noqa: E402
from smtp_sink import common_free_port, loopback, smtp_ready, unsearchable  # noqa: E402

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
SASLPASSWD2 = shutil.which("saslpasswd2") or "/usr/sbin/saslpasswd2"
MAIL_USER = "nobody"        # owner of the Maildirs (virtual_uid_maps)


class MxPeerError(Exception):
    pass


def split_prepended(data, hostname=None):
    """
    (prepended, content) of a file virtual(8) delivered: prepended is
    the list of header lines Postfix put above the message, without
    their line ends (Return-Path:, X-Original-To:, Delivered-To: from
    virtual, then the Received: header of smtpd with its continuation
    lines, folded as stored), content the rest, still with LF line
    ends.  The Received: header must say "by HOSTNAME (Postfix) with"
    (hostname given) so that a Received: header of the sender's is never
    taken for Postfix's.  ValueError when the file does not start so.
    """
    pos, prepended = 0, []
    for name, required in ((b"Return-Path: ", True), (b"X-Original-To: ", False),
                           (b"Delivered-To: ", True)):
        if data.startswith(name, pos):
            eol = data.find(b"\n", pos)
            if eol == -1:
                raise ValueError("%r header without a line end" % name)
            prepended.append(data[pos:eol])
            pos = eol + 1
        elif required:
            raise ValueError("no %r header where virtual puts it: %r"
                             % (name.strip(), data[pos:pos + 200]))
    if not data.startswith(b"Received: from ", pos):
        raise ValueError("no Received: header of Postfix's: %r" % data[pos:pos + 200])
    start = pos
    lines = []
    while True:
        eol = data.find(b"\n", pos)
        if eol == -1:
            raise ValueError("Received: header without a line end")
        lines.append(data[pos:eol])
        pos = eol + 1
        if data[pos:pos + 1] not in (b" ", b"\t"):
            break
    unfolded = b" ".join(l.strip() for l in lines)
    by = rb"\bby %s \(Postfix\) with " % (re.escape(hostname.encode()) if hostname else rb"\S+")
    if not re.search(by, unfolded):
        raise ValueError("the first Received: header is not Postfix's: %r" % data[start:pos])
    prepended.append(data[start:pos - 1])
    return prepended, data[pos:]


class MxPeer(PostfixPeer):
    """
    Postfix receiving mail on host:port (port None: a free one).

    domains: the domains whose every address is accepted and delivered
    (virtual_mailbox_domains).  tls: STARTTLS with a self-signed
    certificate.  sasl_users: {"user": "password"} enables AUTH PLAIN
    and LOGIN.  require_auth: refuse every RCPT (relay or not) unless
    authenticated, deliver every authenticated one.  auth_only_with_tls:
    AUTH only after STARTTLS.  reply_rcpt: {address: "5xx x.y.z text"}
    refused at RCPT.  extra_main: main.cf settings that override these.
    """

    def __init__(self, top_dir, host="127.0.0.1", port=None, domains=(), tls=True,
                 sasl_users=None, require_auth=False, auth_only_with_tls=False,
                 reply_rcpt=None, hostname="mx.far.test", extra_main=None,
                 sasl_mechs=("PLAIN", "LOGIN")):
        self.host = loopback(host)
        self.port = port if port is not None else common_free_port([self.host])
        self.domains = [d.lower() for d in domains]
        self.tls = tls
        self.sasl_users = dict(sasl_users or {})
        self.require_auth = require_auth
        self.auth_only_with_tls = auth_only_with_tls
        self.reply_rcpt = dict(reply_rcpt or {})
        self.sasl_mechs = tuple(sasl_mechs)
        self.myhostname = hostname
        self.master_pid = None
        if require_auth and not self.sasl_users:
            raise ValueError("require_auth needs sasl_users")
        if auth_only_with_tls and not tls:
            raise ValueError("auth_only_with_tls needs tls")
        why = self.unavailable()
        if why:
            raise MxPeerError(why)
        closed = unsearchable(top_dir)
        if closed:
            raise MxPeerError("%s is closed to other users: chmod 0755 the top directory "
                              "(smtpd runs as postfix, virtual as %s)" % (closed, MAIL_USER))
        self.dir = tempfile.mkdtemp(prefix="mx-%s-" % self.host, dir=top_dir)
        os.chmod(self.dir, 0o755)
        self.etc = os.path.join(self.dir, "etc")
        self.queue = os.path.join(self.dir, "queue")
        self.data = os.path.join(self.dir, "data")
        self.vmail = os.path.join(self.dir, "vmail")
        self.maildir = os.path.join(self.vmail, "Maildir")
        self.log_path = os.path.join(self.dir, "maillog")
        self.cert_path = os.path.join(self.etc, "cert.pem")
        self.key_path = os.path.join(self.etc, "key.pem")
        self.sasl_dir = os.path.join(self.etc, "sasl")
        self.sasldb = os.path.join(self.sasl_dir, "sasldb2")
        for d in (self.etc, self.queue):      # root-owned; post-install fills queue
            os.mkdir(d)
            os.chmod(d, 0o755)
        mail_pw = pwd.getpwnam(MAIL_USER)
        os.mkdir(self.vmail)
        os.chmod(self.vmail, 0o755)
        os.chown(self.vmail, mail_pw.pw_uid, mail_pw.pw_gid)
        sysmeta = private_postfix_etc(self.etc, POSTCONF)

        vmailbox = os.path.join(self.etc, "vmailbox")
        with open(vmailbox, "w") as f:
            # Every address: one Maildir.
            f.write("/^/ Maildir/\n")
        main = {
            "compatibility_level": "3.6",
            "meta_directory": self.etc,
            "queue_directory": self.queue,
            "data_directory": self.data,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "syslog_name": "postfix-mx",
            "maillog_file": self.log_path,
            "maillog_file_prefixes": self.dir,
            "myhostname": hostname,
            "mydomain": hostname.partition(".")[2] or "test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            # Postfix refuses an inet_interfaces address that no
            # interface has (127.0.0.2 is only lo's 127.0.0.0/8 route):
            # the smtpd line of master.cf names host instead.
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.1/32",
            "smtpd_peername_lookup": "no",
            "biff": "no",
            # Leave the message as the client sent it (no added Date:,
            # Message-ID:, no header address rewriting).
            "local_header_rewrite_clients": "",
            "virtual_mailbox_domains": ", ".join(self.domains),
            "virtual_mailbox_base": self.vmail,
            "virtual_mailbox_maps": "regexp:" + vmailbox,
            "virtual_uid_maps": "static:%d" % mail_pw.pw_uid,
            "virtual_gid_maps": "static:%d" % mail_pw.pw_gid,
            "virtual_mailbox_limit": "0",
            "mailbox_size_limit": "0",
            "message_size_limit": "104857600",
            # Nothing leaves: what is not for a virtual domain (relayed
            # after AUTH) is delivered here too.
            "default_transport": "virtual",
            "relay_transport": "virtual",
            "smtpd_relay_restrictions": ("permit_sasl_authenticated, reject" if require_auth
                                         else "permit_sasl_authenticated, "
                                              "reject_unauth_destination"),
            "smtpd_error_sleep_time": "0s",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
        }
        if self.reply_rcpt:
            access = os.path.join(self.etc, "rcpt_access")
            with open(access, "w") as f:
                for addr, reply in self.reply_rcpt.items():
                    if not re.match(r"^[45]\d\d ", reply) or "\n" in reply:
                        raise ValueError("reply %r is not one 4xx/5xx line" % reply)
                    f.write("%s %s\n" % (addr.lower(), reply))
            main["smtpd_recipient_restrictions"] = "check_recipient_access texthash:" + access
        if tls:
            self._make_cert()
            main.update({
                "smtpd_tls_security_level": "may",
                "smtpd_tls_cert_file": self.cert_path,
                "smtpd_tls_key_file": self.key_path,
                "smtpd_tls_loglevel": "1",
                "smtpd_tls_auth_only": "yes" if auth_only_with_tls else "no",
            })
        else:
            main["smtpd_tls_security_level"] = "none"
        if self.sasl_users:
            self._make_sasl()
            main.update({
                "smtpd_sasl_auth_enable": "yes",
                "smtpd_sasl_type": "cyrus",
                "smtpd_sasl_path": "smtpd",
                "cyrus_sasl_config_path": self.sasl_dir,
                "smtpd_sasl_local_domain": hostname,
                "smtpd_sasl_security_options": "noanonymous",
                "smtpd_sasl_tls_security_options": "noanonymous",
            })
        main.update(extra_main or {})
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            for k, v in main.items():
                f.write("%s = %s\n" % (k, v))
        # procs.private_master_cf puts smtpd on 127.0.0.1:port; move it.
        master = private_master_cf(os.path.join(sysmeta, "master.cf.proto"), self.port)
        ours = "127.0.0.1:%d " % self.port
        lines = master.splitlines(True)
        hits = [i for i, l in enumerate(lines) if l.startswith(ours)]
        assert len(hits) == 1, master
        lines[hits[0]] = "%s:%d " % (self.host, self.port) + lines[hits[0]][len(ours):]
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write("".join(lines))

    @staticmethod
    def unavailable(sasl=False):
        """None if a private Postfix MX can run here, else why not."""
        why = PostfixPeer.unavailable()
        if why:
            return why
        if not os.access(OPENSSL, os.X_OK):
            return "openssl is not installed"
        try:
            pwd.getpwnam(MAIL_USER)
        except KeyError:
            return "no %r user for the Maildirs" % MAIL_USER
        if sasl and not os.access(SASLPASSWD2, os.X_OK):
            return "saslpasswd2 is not installed (sasl2-bin: sh scripts/install-deps.sh)"
        return None

    # -- making the files

    def _run(self, args, **kw):
        r = subprocess.run(args, capture_output=True, timeout=60, **kw)
        if r.returncode != 0:
            raise MxPeerError("%s: exit %d: %s%s" % (" ".join(args), r.returncode,
                                                     r.stdout.decode(errors="replace"),
                                                     r.stderr.decode(errors="replace")))
        return r

    def _make_cert(self):
        self._run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                   "-keyout", self.key_path, "-out", self.cert_path,
                   "-subj", "/CN=%s" % self.myhostname,
                   "-addext", "subjectAltName=DNS:%s" % self.myhostname],
                  stdin=subprocess.DEVNULL)
        os.chmod(self.key_path, 0o600)
        os.chmod(self.cert_path, 0o644)

    def _make_sasl(self):
        if not os.access(SASLPASSWD2, os.X_OK):
            raise MxPeerError(self.unavailable(sasl=True))
        os.mkdir(self.sasl_dir)
        os.chmod(self.sasl_dir, 0o755)
        with open(os.path.join(self.sasl_dir, "smtpd.conf"), "w") as f:
            f.write("pwcheck_method: auxprop\n"
                    "auxprop_plugin: sasldb\n"
                    "sasldb_path: %s\n"
                    "mech_list: %s\n" % (self.sasldb, " ".join(self.sasl_mechs)))
        for user, password in self.sasl_users.items():
            name, at, realm = user.rpartition("@")
            if not at:
                name, realm = user, self.myhostname
            if "\n" in password or not name:
                raise ValueError("bad SASL user or password %r" % user)
            self._run([SASLPASSWD2, "-f", self.sasldb, "-c", "-p", "-u", realm, name],
                      input=password.encode())
        # smtpd (user postfix) reads it.
        os.chown(self.sasldb, 0, pwd.getpwnam("postfix").pw_gid)
        os.chmod(self.sasldb, 0o640)

    # -- life cycle (stop, alive, log, postfix are PostfixPeer's)

    def start(self):
        """postfix start; wait (bounded) until smtpd greets on host:port."""
        r = self.postfix("start")
        if r.returncode != 0:
            raise MxPeerError("postfix start: exit %d: %s%s\n%s"
                              % (r.returncode, r.stdout, r.stderr, self.log()))
        pidfile = os.path.join(self.queue, "pid", "master.pid")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.master_pid is None:
            try:
                with open(pidfile) as f:
                    self.master_pid = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                time.sleep(0.05)
        if not self.master_pid:
            raise MxPeerError("no master.pid after %.0fs\n%s" % (START_TIMEOUT, self.log()))
        while time.monotonic() < deadline:
            if not self.alive():
                raise MxPeerError("postfix master exited\n" + self.log())
            if smtp_ready(self.host, self.port):
                return self
            time.sleep(0.1)
        raise MxPeerError("smtpd not ready on %s:%d after %.0fs\n%s"
                          % (self.host, self.port, START_TIMEOUT, self.log()))

    def __enter__(self):
        if not self.alive():
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def wait_log(self, pattern, timeout=30.0):
        """PostfixPeer.wait_log, with pattern a regex or its text."""
        if isinstance(pattern, str):
            pattern = re.compile(pattern)
        return super().wait_log(pattern, timeout)

    # -- what it received

    @staticmethod
    def delivered_to(data):
        """The address of the Delivered-To: header virtual prepended
        (lower case), or None."""
        m = re.match(rb"(?:[^\n]*\n){0,2}?Delivered-To: ([^\n]*)\n", data)
        return m.group(1).decode("utf-8", "replace").lower() if m else None

    def messages(self, rcpt=None):
        """[(path, bytes)] of the messages delivered so far (to rcpt, by
        their Delivered-To:, any case; or to anyone), oldest first.  Only
        new/ is read: virtual writes in tmp/ and renames into new/, so
        each file there is complete."""
        new = os.path.join(self.maildir, "new")
        try:
            names = os.listdir(new)
        except OSError:
            return []
        found = []
        for name in names:
            path = os.path.join(new, name)
            try:
                st = os.stat(path)
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if rcpt is None or self.delivered_to(data) == rcpt.lower():
                found.append((st.st_mtime_ns, path, data))
        found.sort()
        return [(p, b) for _, p, b in found]

    def wait_messages(self, n, timeout=30.0, rcpt=None):
        """Poll until at least n messages (to rcpt, or to anyone) are
        delivered; messages() then, or MxPeerError after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.messages(rcpt)
            if len(msgs) >= n:
                return msgs
            if time.monotonic() >= deadline:
                raise MxPeerError("%d of %d messages%s after %.1fs\n%s"
                                  % (len(msgs), n, " for %s" % rcpt if rcpt else "", timeout,
                                     self.log(tail=40)))
            time.sleep(0.05)

    def split(self, data):
        """split_prepended() for this instance's hostname."""
        return split_prepended(data, self.myhostname)

    def sent_messages(self, rcpt=None):
        """as_sent() of each of messages(rcpt), oldest first."""
        return [self.as_sent(data, self.myhostname) for _, data in self.messages(rcpt)]

    @staticmethod
    def as_sent(data, hostname=None):
        """
        The message bytes as the client sent them (before dot-stuffing)
        from a delivered file: the lines Postfix prepends removed
        (Return-Path:, X-Original-To:, Delivered-To: and smtpd's
        Received: header, see split_prepended) and every LF made CRLF
        again.  Exact for a message whose lines all end in CRLF and that
        has no bare LF (Postfix stores a bare LF as a line end too).
        """
        return split_prepended(data, hostname)[1].replace(b"\n", b"\r\n")
