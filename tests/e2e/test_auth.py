"""SMTP AUTH end to end (R2, R3.6, R1.7).

Real clients (swaks, gsasl, curl, smtplib, a private Postfix as smart-host
client) authenticate over TLS on the submission (STARTTLS) and
submissions (implicit TLS) listeners and their messages arrive in demo's
Maildir as one Received: header ("with ESMTPSA") followed by exactly the
bytes sent; every reply of the AUTH exchange is compared byte for byte
(docs/replies.md, R2.2, R2.3, R2.6); an authenticated session may relay
(R3.6) and an unauthenticated one may not; and a wrong password and an
unknown user take the same time.

One server for the module (its state changes only on accounts made for
the test that changes them), with two extra listeners: `submission`
(587-style, STARTTLS) and `clear` (submission with
auth_plaintext_without_tls = yes).
"""
import base64
import email.utils
import hashlib
import hmac
import os
import re
import shutil
import smtplib
import statistics
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import (AUTH_LINE, DEMO, DEMO_PASSWORD, EHLO_PLAIN, EHLO_TLS, HOSTNAME, SENDER,
                      dot_stuff, extra_ports, new_server, serve_module, split_received, unfold,
                      unverified_context)
from postfix_peer import PostfixPeer

HELO = "client.example.org"
OFF = "off@example.test"            # SMTP-AUTH service switched off (R2.5)
DISABLED = "disabled@example.test"  # account disabled
UNKNOWN = "nobody@example.test"     # no such account
REMOTE = "someone@example.org"      # outside the local domains

OK_235 = "235 2.7.0 Authentication successful"
BAD_535 = "535 5.7.8 Authentication credentials invalid"
ALREADY_503 = "503 5.5.1 Error: already authenticated"
NOT_ENABLED_503 = "503 5.5.1 Error: authentication not enabled"
HELO_FIRST_503 = "503 5.5.1 Send HELO/EHLO first"
ABORTED_501 = "501 5.7.0 Authentication aborted"
DECODE_501 = "501 5.5.2 Cannot decode response"
UNKNOWN_MECH_504 = "504 5.5.4 Unrecognized authentication type"
ENCRYPT_538 = "538 5.7.11 Encryption required for requested authentication mechanism"
TOO_MANY_421 = "421 4.7.0 %s Error: too many failed authentications" % HOSTNAME
AUTH_REQUIRED_530 = "530 5.7.0 Authentication required"
RELAY_DENIED_550 = "550 5.7.1 <%s> Relay access denied" % REMOTE

# EHLO of a submission listener before STARTTLS: no PLAIN/LOGIN (R2.2).
EHLO_SUB_CLEAR = [
    "250-%s" % HOSTNAME,
    "250-SIZE 52428800",
    "250-PIPELINING",
    "250-8BITMIME",
    "250-ENHANCEDSTATUSCODES",
    "250-STARTTLS",
    "250-AUTH CRAM-MD5 SCRAM-SHA-256 SCRAM-SHA-1",
    "250-SMTPUTF8",
    "250 CHUNKING",
]
# ... and of one that allows plaintext mechanisms in clear.
EHLO_CLEAR_ALLOWED = EHLO_SUB_CLEAR[:6] + [AUTH_LINE] + EHLO_SUB_CLEAR[7:]

WAIT = 10.0


# --------------------------------------------------------------------
# The server
# --------------------------------------------------------------------

@pytest.fixture(scope="module")
def srv(request):
    """A server with demo, OFF and DISABLED (all usable at start) and the
    extra listeners `submission` (srv.sub_port) and `clear`
    (srv.clear_port)."""
    p = new_server(accounts=(DEMO, OFF, DISABLED), start=False)
    p.sub_port, p.clear_port = extra_ports(p, 2)
    p.extra_config = (
        "[listener submission]\n"
        "listen = 127.0.0.1:%d\n"
        "profile = submission\n"
        "[listener clear]\n"
        "listen = 127.0.0.1:%d\n"
        "profile = submission\n"
        "auth_plaintext_without_tls = yes\n" % (p.sub_port, p.clear_port))
    p.write_config()
    yield from serve_module(request, p, "srv")


# --------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------

def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def plain_ir(user, password, authzid=""):
    return b64("%s\0%s\0%s" % (authzid, user, password))


def cram_response(challenge_b64, user, password):
    chal = base64.b64decode(challenge_b64)
    digest = hmac.new(password.encode(), chal, hashlib.md5).hexdigest()
    return b64("%s %s" % (user, digest))


class Scram:
    """A SCRAM-SHA-256 / SCRAM-SHA-1 client (RFC 5802, RFC 7677), no
    channel binding (gs2 header "n,,").  Also an smtplib authobject."""

    HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-1": "sha1"}

    def __init__(self, mech, user, password):
        self.mech = mech
        self.hname = self.HASHES[mech]
        self.user = user
        self.password = password
        self.cnonce = base64.b64encode(os.urandom(18)).decode()
        self.gs2 = "n,,"
        name = user.replace("=", "=3D").replace(",", "=2C")
        self.client_first_bare = "n=%s,r=%s" % (name, self.cnonce)
        self.server_first = None
        self.server_final = None
        self.server_signature = None

    def _hmac(self, key, msg):
        return hmac.new(key, msg.encode() if isinstance(msg, str) else msg, self.hname).digest()

    def first(self):
        return self.gs2 + self.client_first_bare

    def final(self, server_first):
        self.server_first = server_first
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        assert attrs["r"].startswith(self.cnonce) and len(attrs["r"]) > len(self.cnonce), \
            server_first
        salt = base64.b64decode(attrs["s"])
        iterations = int(attrs["i"])
        salted = hashlib.pbkdf2_hmac(self.hname, self.password.encode(), salt, iterations)
        client_key = self._hmac(salted, "Client Key")
        stored_key = hashlib.new(self.hname, client_key).digest()
        without_proof = "c=%s,r=%s" % (b64(self.gs2), attrs["r"])
        auth_message = ",".join((self.client_first_bare, server_first, without_proof))
        client_sig = self._hmac(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, client_sig))
        server_key = self._hmac(salted, "Server Key")
        self.server_signature = b64(self._hmac(server_key, auth_message))
        return without_proof + ",p=" + b64(proof)

    @property
    def verified(self):
        """The server proved it knows the password (v= matches)."""
        return self.server_final == "v=" + self.server_signature

    def __call__(self, challenge=None):
        if challenge is None:
            return self.first()
        text = challenge.decode()
        if self.server_first is None:
            return self.final(text)
        self.server_final = text
        return ""


def scram_exchange(c, mech, user, password):
    """Run SCRAM on a raw SMTPConn; (final reply, Scram, [334 texts])."""
    sc = Scram(mech, user, password)
    challenges = []
    r = c.cmd("AUTH %s %s" % (mech, b64(sc.first())))
    while r.code == 334:
        text = base64.b64decode(r.lines[-1][4:]).decode()
        challenges.append(text)
        r = c.cmd(b64(sc(text.encode())))
        if len(challenges) > 3:
            break
    return r, sc, challenges


def make_message(tag, sender=DEMO):
    """Dot-stuffing and 8-bit UTF-8 text; ends in CRLF."""
    mid = "<%s.%s@example.org>" % (tag, uuid.uuid4().hex)
    body = (
        "Date: %s\r\n"
        "From: Demo <%s>\r\n"
        "To: Demo <demo@example.test>\r\n"
        "Subject: auth test %s\r\n"
        "Message-Id: %s\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "Grüße aus Köln — authenticated.\r\n"
        ".a line that begins with a dot\r\n"
        "..two dots\r\n"
        ".\r\n"
        "last line\r\n"
    ) % (email.utils.formatdate(usegmt=True), sender, tag, mid)
    return body.encode("utf-8"), mid


def find_by_mid(server, mid, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        found = [d for d in server.messages().values() if mid.encode() in d]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def wait_log(server, pattern, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        m = re.search(pattern, server.read_log())
        if m or time.monotonic() > deadline:
            return m
        time.sleep(0.05)


def check_delivered(server, msg, mid, qid, mech, tls=True, helo=HELO):
    """msg arrived once in demo's Maildir: Received (ESMTPSA/ESMTPA, TLS,
    the queue id) + exactly msg; the log names the mechanism and user."""
    found = find_by_mid(server, mid)
    assert len(found) == 1, "%s: %d copies in demo's Maildir" % (mid, len(found))
    received, rest = split_received(found[0])
    assert rest == msg, "delivered bytes differ from the bytes sent:\n%r\n%r" % (rest, msg)
    u = unfold(received)
    if helo is not None:
        assert u.startswith(("Received: from %s (" % helo).encode()), received
    assert b"[127.0.0.1]" in u, received
    proto = b"ESMTPSA" if tls else b"ESMTPA"
    assert re.search(rb"by " + re.escape(HOSTNAME.encode()) + rb" \(postino\) with "
                     + proto + rb"\s+id\s+" + re.escape(qid.encode()) + rb"\b", u), received
    if tls:
        assert re.search(rb"\(using TLSv1\.[23] with cipher [A-Z0-9_-]+", u), received
    else:
        assert b"using TLS" not in u, received
    line = wait_log(server, r"event=queued qid=%s [^\n]*" % re.escape(qid))
    assert line, "no queued line for %s" % qid
    assert line.group(0).endswith(" sasl_method=%s sasl_username=%s" % (mech, DEMO)), line.group(0)
    assert " proto=%s" % proto.decode() in line.group(0), line.group(0)
    assert wait_log(server, r"event=auth result=ok sasl_method=%s sasl_username=%s\n"
                    % (re.escape(mech), re.escape(DEMO))), "no auth ok line for " + mech


def sub_conn(server, tls=True, helo=HELO):
    """The submission listener, EHLO done (after STARTTLS if tls)."""
    c = server.connect(port=server.sub_port)
    c.ehlo(helo)
    if tls:
        c.starttls()
        c.ehlo(helo)
    return c


def subs_conn(server, helo=HELO):
    """The submissions listener (implicit TLS), EHLO done."""
    c = server.connect(port=server.subs_port, tls=True)
    c.ehlo(helo)
    return c


def mx_tls_conn(server, helo=HELO):
    c = server.connect()
    c.ehlo(helo)
    c.starttls()
    c.ehlo(helo)
    return c


def smtplib_send(client, msg, sender=DEMO, rcpts=(DEMO,)):
    code, resp = client.mail(sender)
    assert code == 250, resp
    for r in rcpts:
        code, resp = client.rcpt(r)
        assert code == 250, resp
    code, resp = client.data(msg)
    assert code == 250, resp
    m = re.fullmatch(rb"2\.0\.0 Ok: queued as (\S+)", resp)
    assert m, resp
    return m.group(1).decode()


def smtplib_client(server, transport):
    """An smtplib client after EHLO under TLS: transport 'submission'
    (STARTTLS) or 'submissions' (implicit TLS)."""
    if transport == "submissions":
        c = smtplib.SMTP_SSL("127.0.0.1", server.subs_port, local_hostname=HELO, timeout=WAIT,
                             context=unverified_context())
        c.ehlo(HELO)
    else:
        c = smtplib.SMTP("127.0.0.1", server.sub_port, local_hostname=HELO, timeout=WAIT)
        c.ehlo(HELO)
        code, resp = c.starttls(context=unverified_context())
        assert code == 220, resp
        c.ehlo(HELO)
    assert "250-AUTH " + c.esmtp_features.get("auth", "").strip() == AUTH_LINE, \
        c.esmtp_features
    return c


# --------------------------------------------------------------------
# 1. Real clients over TLS
# --------------------------------------------------------------------

@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5"])
@pytest.mark.parametrize("transport", ["submission", "submissions"])
def test_swaks(srv, tmp_path, mech, transport):
    msg, mid = make_message("swaks-%s-%s" % (mech, transport))
    path = tmp_path / "data.eml"
    # --no-data-fixup sends the file as is, then CRLF: the wire form
    # (dot-stuffed) without the final CRLF.
    path.write_bytes(dot_stuff(msg)[:-2])
    if transport == "submission":
        opts = ["--port", str(srv.sub_port), "--tls"]
    else:
        opts = ["--port", str(srv.subs_port), "--tlsc"]
    cmd = ["swaks", "--server", "127.0.0.1", "--helo", HELO, "--from", DEMO, "--to", DEMO,
           "--data", "@%s" % path, "--no-data-fixup", "--timeout", "10",
           "-a", mech, "-au", DEMO, "-ap", DEMO_PASSWORD] + opts
    r = subprocess.run(cmd, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, "swaks exit %d\n%s\n%s" % (r.returncode, out, r.stderr.decode())
    # "~>" / "<~": under TLS
    assert " ~> AUTH %s" % mech in out, out
    assert "<~  %s\n" % OK_235 in out, out
    m = re.search(r"<~  250 2\.0\.0 Ok: queued as (\S+)", out)
    assert m, out
    check_delivered(srv, msg, mid, m.group(1), mech)


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_gsasl_scram(srv, mech):
    """GNU SASL's client authenticates with SCRAM over STARTTLS on the
    submission listener.  (gsasl cannot do implicit TLS; with TLS it
    would add channel binding, which needs -PLUS, not offered: --no-cb.)"""
    cmd = ["gsasl", "--smtp", "--connect", "127.0.0.1:%d" % srv.sub_port, "--starttls",
           "--no-cb", "--x509-ca-file=", "--hostname", "mx.example.test",
           "--mechanism", mech, "--authentication-id", DEMO, "--password", DEMO_PASSWORD]
    r = subprocess.run(cmd, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    out = r.stdout.decode("utf-8", "replace")
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0, "gsasl exit %d\n%s\n%s" % (r.returncode, out, err)
    lines = out.splitlines()
    assert "220 2.0.0 Ready to start TLS" in lines, out
    assert AUTH_LINE in lines, out
    assert "AUTH %s" % mech in lines, out
    assert OK_235 in lines, out
    assert "Client authentication finished (server trusted)" in err, err
    assert wait_log(srv, r"event=auth result=ok sasl_method=%s sasl_username=%s\n"
                    % (re.escape(mech), re.escape(DEMO)))


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
@pytest.mark.parametrize("transport", ["submission", "submissions"])
def test_scram_smtplib(srv, mech, transport):
    """SCRAM (our own client, checking the server's signature) through
    smtplib, then a message."""
    msg, mid = make_message("scram-%s-%s" % (mech, transport))
    with smtplib_client(srv, transport) as c:
        sc = Scram(mech, DEMO, DEMO_PASSWORD)
        code, resp = c.auth(mech, sc)
        assert (code, resp) == (235, b"2.7.0 Authentication successful")
        assert sc.server_final and sc.verified, \
            "server signature %r, expected v=%s" % (sc.server_final, sc.server_signature)
        qid = smtplib_send(c, msg)
        c.quit()
    check_delivered(srv, msg, mid, qid, mech)


@pytest.mark.parametrize("mech,transport", [("PLAIN", "submission"), ("LOGIN", "submission"),
                                            ("PLAIN", "submissions"), ("LOGIN", "submissions")])
def test_curl(srv, tmp_path, mech, transport):
    msg, mid = make_message("curl-%s-%s" % (mech, transport))
    path = tmp_path / "msg.eml"
    path.write_bytes(msg)           # curl dot-stuffs by itself
    if transport == "submission":
        url, opts = "smtp://127.0.0.1:%d/%s" % (srv.sub_port, HELO), ["--ssl-reqd"]
    else:
        url, opts = "smtps://127.0.0.1:%d/%s" % (srv.subs_port, HELO), []
    cmd = ["curl", "-sS", "-v", "-k", "--max-time", "30", url, "--login-options",
           "AUTH=" + mech, "-u", "%s:%s" % (DEMO, DEMO_PASSWORD), "--mail-from", DEMO,
           "--mail-rcpt", DEMO, "-T", str(path)] + opts
    r = subprocess.run(cmd, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0, "curl exit %d\n%s" % (r.returncode, err)
    assert "> AUTH %s" % mech in err, err
    assert "< %s" % OK_235 in err, err
    m = re.search(r"< 250 2\.0\.0 Ok: queued as (\S+)", err)
    assert m, err
    check_delivered(srv, msg, mid, m.group(1), mech)


@pytest.mark.parametrize("how,transport,mech", [
    ("login", "submission", "CRAM-MD5"),    # smtplib's login() prefers CRAM-MD5
    ("login", "submissions", "CRAM-MD5"),
    ("PLAIN", "submission", "PLAIN"),
    ("LOGIN", "submissions", "LOGIN"),
])
def test_smtplib(srv, how, transport, mech):
    msg, mid = make_message("smtplib-%s-%s" % (how, transport))
    with smtplib_client(srv, transport) as c:
        if how == "login":
            code, resp = c.login(DEMO, DEMO_PASSWORD)
        else:
            c.user, c.password = DEMO, DEMO_PASSWORD
            code, resp = c.auth(how, c.auth_plain if how == "PLAIN" else c.auth_login)
        assert (code, resp) == (235, b"2.7.0 Authentication successful")
        qid = smtplib_send(c, msg)
        c.quit()
    check_delivered(srv, msg, mid, qid, mech)


def test_smtplib_cram_md5_in_clear_is_esmtpa(srv):
    """CRAM-MD5 without TLS on submission: Received says ESMTPA."""
    msg, mid = make_message("esmtpa")
    with smtplib.SMTP("127.0.0.1", srv.sub_port, local_hostname=HELO, timeout=WAIT) as c:
        c.ehlo(HELO)
        assert c.esmtp_features.get("auth", "").strip() == "CRAM-MD5 SCRAM-SHA-256 SCRAM-SHA-1"
        code, resp = c.login(DEMO, DEMO_PASSWORD)
        assert (code, resp) == (235, b"2.7.0 Authentication successful")
        qid = smtplib_send(c, msg)
        c.quit()
    check_delivered(srv, msg, mid, qid, "CRAM-MD5", tls=False)


def test_plain_in_clear_where_allowed_is_esmtpa(srv):
    """auth_plaintext_without_tls = yes on a listener: PLAIN in clear is
    offered and works; the message says ESMTPA."""
    msg, mid = make_message("clear-plain")
    with srv.connect(port=srv.clear_port) as c:
        r = c.ehlo(HELO)
        assert r.lines == EHLO_CLEAR_ALLOWED, r
        c.expect("AUTH PLAIN " + plain_ir(DEMO, DEMO_PASSWORD), OK_235)
        qid = c.send_message(msg, sender=DEMO)
        c.expect("QUIT", "221 2.0.0 Bye")
    check_delivered(srv, msg, mid, qid, "PLAIN", tls=False)


# --------------------------------------------------------------------
# 2. Postfix as the smart-host client (the university guide)
# --------------------------------------------------------------------

@pytest.mark.parametrize("mech", [None, "PLAIN", "LOGIN", "CRAM-MD5"])
def test_postfix_smart_host(srv, mech):
    """Postfix as the guide sets it up (relayhost = [host]:587, SASL
    password map, TLS required); mech None lets Cyrus SASL choose, else
    smtp_sasl_mechanism_filter forces one."""
    why = PostfixPeer.unavailable()
    if why:
        pytest.skip(why)
    top = tempfile.mkdtemp(prefix="postino-e2e-postfix-")
    os.chmod(top, 0o755)
    extra = {"smtp_sasl_mechanism_filter": mech.lower()} if mech else {}
    pf = PostfixPeer(top, srv.sub_port, DEMO, DEMO_PASSWORD, extra_main=extra)
    msg, mid = make_message("postfix-relay-%s" % mech)
    try:
        pf.start()
        # Submit to Postfix (its loopback smtpd); it relays to postino.
        with smtplib.SMTP("127.0.0.1", pf.port, local_hostname=HELO, timeout=WAIT) as c:
            c.ehlo(HELO)
            code, resp = c.mail(DEMO)
            assert code == 250, resp
            code, resp = c.rcpt(DEMO)
            assert code == 250, resp
            code, resp = c.data(msg)
            assert code == 250, resp
            c.quit()
        m = pf.wait_log(re.compile(r"relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*status=(\w+) "
                                   r"\((.*)\)" % srv.sub_port), timeout=30)
        assert m, "Postfix did not report a delivery attempt in 30s:\n" + pf.log(tail=60)
        assert m.group(1) == "sent", "Postfix: status=%s (%s)\n%s" % (
            m.group(1), m.group(2), pf.log(tail=60))
        qm = re.fullmatch(r"250 2\.0\.0 Ok: queued as (\S+)", m.group(2))
        assert qm, m.group(0)
        qid = qm.group(1)
        found = find_by_mid(srv, mid, timeout=30)
        assert len(found) == 1, "%s: %d copies in demo's Maildir" % (mid, len(found))
        received, rest = split_received(found[0])
        u = unfold(received)
        assert u.startswith(b"Received: from relay.example.org ("), received
        assert re.search(rb"\(postino\) with ESMTPSA\s+id\s+" + re.escape(qid.encode()) + rb"\b",
                         u), received
        assert re.search(rb"\(using TLSv1\.[23] with cipher [A-Z0-9_-]+", u), received
        # Postfix's own trace header, then exactly the message as sent.
        pf_received, body = split_received(rest)
        assert re.match(rb"Received: from %s \(unknown \[127\.0\.0\.1\]\) by "
                        rb"relay\.example\.org \(Postfix\) with ESMTP id "
                        % re.escape(HELO.encode()), unfold(pf_received)), pf_received
        assert body == msg, "bytes differ after Postfix's Received:\n%r\n%r" % (body, msg)
        line = wait_log(srv, r"event=queued qid=%s [^\n]*" % re.escape(qid))
        assert line and re.search(r" sasl_method=%s sasl_username=%s$" % (
            re.escape(mech) if mech else r"\S+", re.escape(DEMO)), line.group(0)), \
            line and line.group(0)
        if mech is None:    # which one Cyrus SASL chose (for the report)
            print("\nPostfix smart host: Cyrus SASL chose %s"
                  % re.search(r"sasl_method=(\S+)", line.group(0)).group(1))
        assert re.search(r"TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:%d: "
                         r"TLSv1\.[23] " % srv.sub_port, pf.log()), pf.log(tail=40)
    finally:
        pf.stop()
        alive = pf.alive()
        if not alive:
            shutil.rmtree(top, ignore_errors=True)
    assert not alive, "Postfix master %d still alive" % pf.master_pid


# --------------------------------------------------------------------
# 3. Exact replies
# --------------------------------------------------------------------

def test_ehlo_auth_lines(srv):
    # submission: no PLAIN/LOGIN before TLS (R2.2), all after.
    with srv.connect(port=srv.sub_port) as c:
        assert c.ehlo(HELO).lines == EHLO_SUB_CLEAR
        c.starttls()
        assert c.ehlo(HELO).lines == EHLO_TLS
    # submissions: under TLS from the start.
    with srv.connect(port=srv.subs_port, tls=True) as c:
        assert c.ehlo(HELO).lines == EHLO_TLS
    # mx: AUTH only after STARTTLS (R1.1).
    with srv.connect() as c:
        assert c.ehlo(HELO).lines == EHLO_PLAIN
        c.starttls()
        assert c.ehlo(HELO).lines == EHLO_TLS


def test_mx_no_auth_before_starttls(srv):
    with srv.connect() as c:
        r = c.ehlo(HELO)
        assert not any("AUTH" in l for l in r.lines), r
        c.expect("AUTH PLAIN " + plain_ir(DEMO, DEMO_PASSWORD), NOT_ENABLED_503)
        c.expect("AUTH CRAM-MD5", NOT_ENABLED_503)
        # not authenticated: no relay
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        c.expect("RCPT TO:<%s>" % REMOTE, RELAY_DENIED_550)
        c.expect("QUIT", "221 2.0.0 Bye")
    # after STARTTLS the same AUTH works
    with mx_tls_conn(srv) as c:
        c.expect("AUTH PLAIN " + plain_ir(DEMO, DEMO_PASSWORD), OK_235)
        c.expect("QUIT", "221 2.0.0 Bye")


def test_auth_before_ehlo(srv):
    with srv.connect(port=srv.subs_port, tls=True) as c:
        c.expect("AUTH PLAIN " + plain_ir(DEMO, DEMO_PASSWORD), HELO_FIRST_503)
        c.ehlo(HELO)
        c.expect("AUTH PLAIN " + plain_ir(DEMO, DEMO_PASSWORD), OK_235)
    # STARTTLS forgets the EHLO (RFC 3207 4.2): AUTH needs a new one.
    with srv.connect(port=srv.sub_port) as c:
        c.ehlo(HELO)
        c.starttls()
        c.expect("AUTH PLAIN " + plain_ir(DEMO, DEMO_PASSWORD), HELO_FIRST_503)
        c.ehlo(HELO)
        c.expect("AUTH PLAIN " + plain_ir(DEMO, DEMO_PASSWORD), OK_235)


@pytest.mark.parametrize("where", ["submission-clear", "submission-tls", "submissions"])
def test_mail_before_auth_530(srv, where):
    if where == "submissions":
        c = subs_conn(srv)
    else:
        c = sub_conn(srv, tls=(where == "submission-tls"))
    with c:
        c.expect("MAIL FROM:<%s>" % DEMO, AUTH_REQUIRED_530)
        c.expect("MAIL FROM:<%s>" % SENDER, AUTH_REQUIRED_530)
        # a failed AUTH does not authorize
        if where == "submission-clear":
            r, sc, ch = scram_exchange(c, "SCRAM-SHA-256", DEMO, "wrong-password")
            assert r.raw == (BAD_535 + "\r\n").encode(), r
        else:
            c.expect("AUTH PLAIN " + plain_ir(DEMO, "wrong-password"), BAD_535)
        c.expect("MAIL FROM:<%s>" % DEMO, AUTH_REQUIRED_530)
        r = c.cmd("RCPT TO:<%s>" % DEMO)
        assert r.code == 503, r
        if where == "submission-clear":
            r, sc, ch = scram_exchange(c, "SCRAM-SHA-256", DEMO, DEMO_PASSWORD)
            assert r.raw == (OK_235 + "\r\n").encode() and sc.verified, r
        else:
            c.expect("AUTH PLAIN " + plain_ir(DEMO, DEMO_PASSWORD), OK_235)
        c.expect("MAIL FROM:<%s>" % DEMO, "250 2.1.0 Ok")
        c.expect("QUIT", "221 2.0.0 Bye")


def test_plaintext_refused_in_clear_538(srv):
    with sub_conn(srv, tls=False) as c:
        c.expect("AUTH PLAIN " + plain_ir(DEMO, DEMO_PASSWORD), ENCRYPT_538)
        c.expect("AUTH PLAIN", ENCRYPT_538)
        c.expect("AUTH LOGIN", ENCRYPT_538)
        c.expect("AUTH LOGIN " + b64(DEMO), ENCRYPT_538)
        c.expect("AUTH plain", ENCRYPT_538)
        c.expect("MAIL FROM:<%s>" % DEMO, AUTH_REQUIRED_530)
        # 538 is no failed authentication: CRAM-MD5 in clear still works
        r = c.cmd("AUTH CRAM-MD5")
        assert r.code == 334, r
        c.expect(cram_response(r.lines[0][4:], DEMO, DEMO_PASSWORD), OK_235)
        c.expect("MAIL FROM:<%s>" % DEMO, "250 2.1.0 Ok")


def test_auth_twice_503(srv):
    with subs_conn(srv) as c:
        c.expect("AUTH PLAIN " + plain_ir(DEMO, DEMO_PASSWORD), OK_235)
        c.expect("AUTH PLAIN " + plain_ir(DEMO, DEMO_PASSWORD), ALREADY_503)
        c.expect("AUTH LOGIN", ALREADY_503)
        c.expect("AUTH CRAM-MD5", ALREADY_503)
        c.expect("AUTH SCRAM-SHA-256 " + b64("n,,n=%s,r=abcdefgh" % DEMO), ALREADY_503)
        c.expect("MAIL FROM:<%s>" % DEMO, "250 2.1.0 Ok")
        c.expect("QUIT", "221 2.0.0 Bye")


def test_cancel_501(srv):
    with sub_conn(srv) as c:
        c.expect("AUTH LOGIN", "334 VXNlcm5hbWU6")       # "Username:"
        c.expect("*", ABORTED_501)
        c.expect("AUTH LOGIN", "334 VXNlcm5hbWU6")
        c.expect(b64(DEMO), "334 UGFzc3dvcmQ6")          # "Password:"
        c.expect("*", ABORTED_501)
        c.expect("AUTH PLAIN", "334 ")
        c.expect("*", ABORTED_501)
        r = c.cmd("AUTH CRAM-MD5")
        assert r.code == 334, r
        c.expect("*", ABORTED_501)
        r = c.cmd("AUTH SCRAM-SHA-1 " + b64("n,,n=%s,r=abcdefghijkl" % DEMO))
        assert r.code == 334, r
        c.expect("*", ABORTED_501)
        # cancelling is not failing: no 421 after 5 cancels, and AUTH works
        c.expect("MAIL FROM:<%s>" % DEMO, AUTH_REQUIRED_530)
        c.expect("AUTH PLAIN " + plain_ir(DEMO, DEMO_PASSWORD), OK_235)
        c.expect("MAIL FROM:<%s>" % DEMO, "250 2.1.0 Ok")


def test_bad_base64_501(srv):
    with subs_conn(srv) as c:
        c.expect("AUTH PLAIN !!!notbase64", DECODE_501)
        c.expect("AUTH LOGIN", "334 VXNlcm5hbWU6")
        c.expect("ZGVtb0BleGFtcGxlLnRlc3Q", DECODE_501)   # missing padding
        c.expect("AUTH PLAIN", "334 ")
        c.expect("a b c", DECODE_501)
        c.expect("AUTH LOGIN " + b64(DEMO), "334 UGFzc3dvcmQ6")
        c.expect("%%%", DECODE_501)
        c.expect("MAIL FROM:<%s>" % DEMO, AUTH_REQUIRED_530)
        c.expect("AUTH PLAIN " + plain_ir(DEMO, DEMO_PASSWORD), OK_235)


def test_unknown_mechanism_504(srv):
    with subs_conn(srv) as c:
        for m in ("FOO", "DIGEST-MD5", "GSSAPI", "SCRAM-SHA-256-PLUS", "XOAUTH2",
                  "ANONYMOUS"):
            c.expect("AUTH " + m, UNKNOWN_MECH_504)
        c.expect("AUTH FOO " + b64("x"), UNKNOWN_MECH_504)
        c.expect("AUTH PLAIN " + plain_ir(DEMO, DEMO_PASSWORD), OK_235)


def test_initial_response(srv):
    """No initial response: an empty 334; "=": an empty one (RFC 4954 4),
    which PLAIN and LOGIN cannot decode into fields; a real one skips the
    first challenge."""
    with subs_conn(srv) as c:
        c.expect("AUTH PLAIN", "334 ")
        c.expect("*", ABORTED_501)
        c.expect("AUTH PLAIN =", DECODE_501)
        c.expect("AUTH LOGIN =", DECODE_501)
        c.expect("AUTH LOGIN " + b64(DEMO), "334 UGFzc3dvcmQ6")
        c.expect(b64(DEMO_PASSWORD), OK_235)
    with subs_conn(srv) as c:
        c.expect("AUTH PLAIN", "334 ")
        c.expect(plain_ir(DEMO, DEMO_PASSWORD), OK_235)
    with subs_conn(srv) as c:
        # PLAIN with authzid = authcid
        c.expect("AUTH PLAIN " + plain_ir(DEMO, DEMO_PASSWORD, authzid=DEMO), OK_235)


def test_three_failures_421(srv):
    with subs_conn(srv) as c:
        c.expect("AUTH PLAIN " + plain_ir(DEMO, "wrong-1"), BAD_535)
        r = c.cmd("AUTH CRAM-MD5")
        assert r.code == 334, r
        c.expect(cram_response(r.lines[0][4:], DEMO, "wrong-2"), BAD_535)
        c.send("AUTH PLAIN %s\r\n" % plain_ir(UNKNOWN, "wrong-3"))
        c.expect_reply(BAD_535)
        c.expect_reply(TOO_MANY_421)
        c.wait_eof()
    # two failures then success: no 421
    with subs_conn(srv) as c:
        c.expect("AUTH PLAIN " + plain_ir(DEMO, "wrong-1"), BAD_535)
        c.expect("AUTH LOGIN " + b64(DEMO), "334 UGFzc3dvcmQ6")
        c.expect(b64("wrong-2"), BAD_535)
        c.expect("AUTH PLAIN " + plain_ir(DEMO, DEMO_PASSWORD), OK_235)
        c.expect("MAIL FROM:<%s>" % DEMO, "250 2.1.0 Ok")
        c.expect("QUIT", "221 2.0.0 Bye")
    assert wait_log(srv, r"event=auth result=fail sasl_method=PLAIN\n")
    assert wait_log(srv, r"event=disconnect reason=auth-failures")


def _fail_reply(c, mech, user, password):
    """The final reply of one AUTH attempt with mech; for SCRAM also the
    challenges seen."""
    if mech == "PLAIN":
        return c.cmd("AUTH PLAIN " + plain_ir(user, password)), None
    if mech == "LOGIN":
        r = c.cmd("AUTH LOGIN")
        assert r.raw == b"334 VXNlcm5hbWU6\r\n", r
        r = c.cmd(b64(user))
        assert r.raw == b"334 UGFzc3dvcmQ6\r\n", r
        return c.cmd(b64(password)), None
    if mech == "CRAM-MD5":
        r = c.cmd("AUTH CRAM-MD5")
        assert r.code == 334, r
        chal = base64.b64decode(r.lines[0][4:]).decode()
        assert re.fullmatch(r"<[0-9]+\.[0-9]+@%s>" % re.escape(HOSTNAME), chal), chal
        return c.cmd(cram_response(r.lines[0][4:], user, password)), None
    r, sc, challenges = scram_exchange(c, mech, user, password)
    return r, challenges


def switch_off_accounts(srv):
    """Once per server: OFF and DISABLED authenticate (so the 535s below
    come from the switches alone), then, live, OFF's SMTP-AUTH service is
    switched off and DISABLED is disabled."""
    if getattr(srv, "accounts_switched", False):
        return
    for a in (OFF, DISABLED):
        with subs_conn(srv) as c:
            c.expect("AUTH PLAIN " + plain_ir(a, DEMO_PASSWORD), OK_235)
    srv.admin("account", "smtp-auth", OFF, "off")
    srv.admin("account", "disable", DISABLED)
    srv.accounts_switched = True


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_same_535_for_every_failure(srv, mech):
    """R2.3: wrong password, unknown user, disabled account and SMTP-AUTH
    switched off all get the same 535 (and SCRAM the same exchange)."""
    switch_off_accounts(srv)
    cases = [(DEMO, "wrong-password"), (UNKNOWN, DEMO_PASSWORD), (DISABLED, DEMO_PASSWORD),
             (OFF, DEMO_PASSWORD)]
    replies, exchanges = [], []
    for i, (user, pw) in enumerate(cases):
        # two attempts per session: under the 3-failures limit
        if i % 2 == 0:
            c = subs_conn(srv)
        r, challenges = _fail_reply(c, mech, user, pw)
        replies.append(r.raw)
        exchanges.append(challenges)
        if i % 2 == 1:
            c.expect("QUIT", "221 2.0.0 Bye")
            c.close()
    for (user, pw), raw in zip(cases, replies):
        assert raw == (BAD_535 + "\r\n").encode(), "%s %s: %r" % (mech, user, raw)
    if mech.startswith("SCRAM"):
        # server-first (salt, same iteration count), then e=invalid-proof
        for (user, pw), ch in zip(cases, exchanges):
            assert len(ch) == 2, "%s: %r" % (user, ch)
            m = re.fullmatch(r"r=[!-+\--~]+,s=([A-Za-z0-9+/=]+),i=([0-9]+)", ch[0])
            assert m, "%s: %r" % (user, ch[0])
            assert len(base64.b64decode(m.group(1))) >= 16, ch[0]
            assert ch[1] == "e=invalid-proof", "%s: %r" % (user, ch)
        iters = {re.search(r",i=([0-9]+)$", ch[0]).group(1) for ch in exchanges}
        assert len(iters) == 1, "iteration counts differ: %r" % exchanges
        # an unknown user's salt is stable (RFC 5802 9): no tell by asking twice
        salts = []
        for _ in range(2):
            with subs_conn(srv) as c:
                r, challenges = _fail_reply(c, mech, UNKNOWN, "x")
                assert r.raw == (BAD_535 + "\r\n").encode(), r
                salts.append(re.search(r",s=([^,]+),", challenges[0]).group(1))
        assert salts[0] == salts[1], salts
    # and the right password still works for demo
    with subs_conn(srv) as c:
        if mech.startswith("SCRAM"):
            r, sc, ch = scram_exchange(c, mech, DEMO, DEMO_PASSWORD)
            assert r.raw == (OK_235 + "\r\n").encode() and sc.verified, (r, ch)
        elif mech == "PLAIN":
            c.expect("AUTH PLAIN " + plain_ir(DEMO, DEMO_PASSWORD), OK_235)
        elif mech == "LOGIN":
            c.expect("AUTH LOGIN " + b64(DEMO), "334 UGFzc3dvcmQ6")
            c.expect(b64(DEMO_PASSWORD), OK_235)
        else:
            r = c.cmd("AUTH CRAM-MD5")
            c.expect(cram_response(r.lines[0][4:], DEMO, DEMO_PASSWORD), OK_235)


def test_starttls_forgets_auth(srv):
    """RFC 3207 4.2: what was learnt before TLS (AUTH too) is forgotten."""
    with srv.connect(port=srv.sub_port) as c:
        c.ehlo(HELO)
        r = c.cmd("AUTH CRAM-MD5")
        assert r.code == 334, r
        c.expect(cram_response(r.lines[0][4:], DEMO, DEMO_PASSWORD), OK_235)
        c.starttls()
        c.ehlo(HELO)
        c.expect("MAIL FROM:<%s>" % DEMO, AUTH_REQUIRED_530)
        c.expect("AUTH PLAIN " + plain_ir(DEMO, DEMO_PASSWORD), OK_235)
        c.expect("MAIL FROM:<%s>" % DEMO, "250 2.1.0 Ok")


# --------------------------------------------------------------------
# 4. Relay (R3.6)
# --------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["submission", "submissions", "mx-tls"])
def test_relay_authenticated_is_queued(srv, transport):
    msg, mid = make_message("relay-" + transport)
    conn = {"submission": sub_conn, "submissions": subs_conn, "mx-tls": mx_tls_conn}[transport]
    with conn(srv) as c:
        c.expect("AUTH PLAIN " + plain_ir(DEMO, DEMO_PASSWORD), OK_235)
        qid = c.send_message(msg, rcpts=(REMOTE,), sender=DEMO)
        c.expect("QUIT", "221 2.0.0 Bye")
    assert wait_log(srv, r"event=rcpt to=<%s> relay=auth\n" % re.escape(REMOTE))
    line = wait_log(srv, r"event=queued qid=%s [^\n]*" % re.escape(qid))
    assert line and line.group(0).endswith(" sasl_method=PLAIN sasl_username=%s" % DEMO), \
        line and line.group(0)
    # No DNS answers in these tests (conftest): the message is deferred
    # and stays in the queue.
    assert wait_log(srv, r"qid=%s event=deferred to=<%s> relay=none status=4\.4\.3 "
                    r"reply=\"temporary DNS failure looking up the MX of " % (
                        re.escape(qid), re.escape(REMOTE)))
    qfile = os.path.join(srv.data_dir, "spool", "queue", qid)
    deadline = time.monotonic() + WAIT
    while not os.path.exists(qfile) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.path.exists(qfile), "%s not in the queue: %s" % (
        qid, os.listdir(os.path.dirname(qfile)) if os.path.isdir(os.path.dirname(qfile)) else "-")
    time.sleep(0.3)
    assert os.path.exists(qfile), "%s left the queue" % qid
    assert not find_by_mid(srv, mid, timeout=0.1), "relayed message delivered locally"


def test_relay_unauthenticated_denied(srv):
    # mx in clear
    with srv.connect() as c:
        c.ehlo(HELO)
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        c.expect("RCPT TO:<%s>" % REMOTE, RELAY_DENIED_550)
        c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")     # local still fine
    # mx under TLS, no AUTH
    with mx_tls_conn(srv) as c:
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        c.expect("RCPT TO:<%s>" % REMOTE, RELAY_DENIED_550)
    # mx under TLS after a failed AUTH
    with mx_tls_conn(srv) as c:
        c.expect("AUTH PLAIN " + plain_ir(DEMO, "wrong-password"), BAD_535)
        c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
        c.expect("RCPT TO:<%s>" % REMOTE, RELAY_DENIED_550)
    assert wait_log(srv, r"event=reject to=<%s> check=relay" % re.escape(REMOTE))


# --------------------------------------------------------------------
# 5. Timing: wrong password vs unknown user
# --------------------------------------------------------------------

def test_timing_wrong_password_vs_unknown_user(srv):
    """AUTH PLAIN over implicit TLS, one session per pair (under the
    3-failures limit), the order alternating; only the AUTH round trip
    is timed.  Prints the medians; asserts only gross differences."""
    n = 30
    times = {"wrong-password": [], "unknown-user": []}
    attempts = {"wrong-password": plain_ir(DEMO, "wrong-password-x"),
                "unknown-user": plain_ir("nosuchuser@example.test", "wrong-password-x")}
    # warm-up (lazy dummy hash, TLS contexts)
    with subs_conn(srv) as c:
        for ir in attempts.values():
            c.expect("AUTH PLAIN " + ir, BAD_535)
    for i in range(n):
        order = ["wrong-password", "unknown-user"]
        if i % 2:
            order.reverse()
        with subs_conn(srv) as c:
            for kind in order:
                line = ("AUTH PLAIN %s\r\n" % attempts[kind]).encode()
                t0 = time.perf_counter()
                c.send(line)
                r = c.reply()
                times[kind].append(time.perf_counter() - t0)
                assert r.raw == (BAD_535 + "\r\n").encode(), r
            c.expect("QUIT", "221 2.0.0 Bye")
    med_w = statistics.median(times["wrong-password"])
    med_u = statistics.median(times["unknown-user"])
    ratio = med_w / med_u
    print("\nAUTH PLAIN timing over %d attempts each: wrong password median %.2f ms "
          "(min %.2f, max %.2f), unknown user median %.2f ms (min %.2f, max %.2f), "
          "ratio %.3f" % (n, med_w * 1e3, min(times["wrong-password"]) * 1e3,
                          max(times["wrong-password"]) * 1e3, med_u * 1e3,
                          min(times["unknown-user"]) * 1e3, max(times["unknown-user"]) * 1e3,
                          ratio))
    assert 0.5 <= ratio <= 2.0, "timing tells wrong password from unknown user: %.3f" % ratio
