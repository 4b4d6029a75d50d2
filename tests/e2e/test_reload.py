"""Reload (R7.1): SIGHUP and `postino-admin reload`.

The parent reads the file again and checks it; a broken file is refused
with FILE:LINE and the server goes on unchanged.  Otherwise new sessions
get the new settings (limits, listeners, the certificate) while sessions
in flight finish on the ones they started with, and no accepted message
is lost.
"""

import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time

from conftest import (ADMIN, DEMO, DOMAIN, SENDER, SMTPConn, free_port, replace_submissions,
                      unverified_context)

MSG = b"From: <sender@example.org>\r\nTo: <demo@example.test>\r\nSubject: reload\r\n\r\nbody\r\n"


def set_key(p, key, value):
    p.smtp[key] = str(value)
    p.write_config()


def reload_admin(p):
    return p.admin("reload", check=False)


def generation(p):
    return len(re.findall(r"parent event=reloaded generation=", p.read_log()))


def sighup(p):
    before = generation(p)
    os.kill(p.proc.pid, signal.SIGHUP)
    return before


def wait_reloaded(p, before, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if generation(p) > before:
            return
        time.sleep(0.05)
    raise AssertionError("no reload in the log:\n" + p.read_log())


def rcpts(c, n, first=1):
    """RCPT TO n local recipients (aliases of demo); the replies."""
    return [c.cmd("RCPT TO:<r%d@%s>" % (i, DOMAIN)) for i in range(first, first + n)]


def start_transaction(p):
    c = p.connect()
    c.ehlo()
    r = c.cmd("MAIL FROM:<%s>" % SENDER)
    assert r.code == 250, r
    return c


def make_aliases(p, n):
    for i in range(1, n + 1):
        p.add_alias("r%d@%s" % (i, DOMAIN), DEMO)


def test_session_in_flight_keeps_its_limits_new_session_sees_new(make_server):
    p = make_server(smtp={"max_recipients": 2})
    make_aliases(p, 6)
    old = start_transaction(p)
    assert [r.code for r in rcpts(old, 1)] == [250]

    set_key(p, "max_recipients", 5)
    r = reload_admin(p)
    assert (r.returncode, r.stderr) == (0, ""), r
    assert re.fullmatch(r"configuration \d+ applied\n", r.stdout), r.stdout

    # The session opened before goes on with max_recipients = 2 ...
    got = rcpts(old, 2, first=2)
    assert got[0].code == 250
    assert (got[1].code, got[1].text) == (452, "452 4.5.3 Too many recipients")
    assert old.cmd("DATA").code == 354
    old.send(MSG + b".\r\n")
    assert old.reply().code == 250
    assert old.cmd("QUIT").code == 221
    old.close()
    p.wait_messages(1)      # both aliases of demo: one copy

    # ... a new one gets 5.
    new = start_transaction(p)
    got = rcpts(new, 6)
    assert [r.code for r in got] == [250] * 5 + [452]
    assert got[5].text == "452 4.5.3 Too many recipients"
    new.close()


def test_a_lower_limit_does_not_reach_a_session_in_flight(make_server):
    """store checks the recipients too (R3.10): with the settings the
    session started with, not the reloaded ones."""
    p = make_server(smtp={"max_recipients": 4})
    make_aliases(p, 4)
    old = start_transaction(p)
    assert [r.code for r in rcpts(old, 1)] == [250]
    set_key(p, "max_recipients", 2)
    wait_reloaded(p, sighup(p))
    assert [r.code for r in rcpts(old, 3, first=2)] == [250, 250, 250]
    assert old.cmd("DATA").code == 354
    old.send(MSG + b".\r\n")
    assert old.reply().code == 250
    assert old.cmd("QUIT").code == 221
    old.close()
    new = start_transaction(p)
    assert [r.code for r in rcpts(new, 3)] == [250, 250, 452]
    new.close()


def test_sighup_applies_and_logs(make_server):
    p = make_server(smtp={"max_recipients": 1})
    make_aliases(p, 3)
    set_key(p, "max_recipients", 3)
    wait_reloaded(p, sighup(p))
    assert p.log_has("parent event=reload by=sighup")
    assert p.log_has("net event=reload generation=1 listeners=2")
    assert p.log_has("store event=reload generation=1")
    c = start_transaction(p)
    assert [r.code for r in rcpts(c, 3)] == [250, 250, 250]
    c.close()


def test_broken_file_is_refused_with_file_line_and_service_goes_on(make_server):
    p = make_server(smtp={"max_recipients": 1})
    make_aliases(p, 2)
    with open(p.conf) as f:
        text = f.read()
    lines = text.splitlines()
    n = lines.index("[smtp]") + 2           # right after the [smtp] header
    lines.insert(n - 1, "max_recipients = many")
    with open(p.conf, "w") as f:
        f.write("\n".join(lines) + "\n")

    # postino-admin reads the file first, and says the same.
    r = reload_admin(p)
    assert r.returncode == 1
    assert r.stdout == ""
    m = re.fullmatch(r"postino-admin: (.+):(\d+): (.*)\n", r.stderr)
    assert m, r.stderr
    assert (m.group(1), int(m.group(2))) == (p.conf, n), r.stderr
    assert "max_recipients" in m.group(3)

    # SIGHUP: the parent logs FILE:LINE, and nothing changes.
    os.kill(p.proc.pid, signal.SIGHUP)
    assert p.log_has('parent event=reload-refused error="%s:%d: %s"' % (p.conf, n, m.group(3)))
    assert p.running()
    c = start_transaction(p)
    got = rcpts(c, 2)
    assert [r.code for r in got] == [250, 452]
    assert c.cmd("DATA").code == 354
    c.send(MSG + b".\r\n")
    assert c.reply().code == 250
    c.close()
    p.wait_messages(1)


def test_a_key_read_only_at_start_refuses_the_reload(make_server):
    p = make_server()
    with open(p.conf) as f:
        text = f.read()
    with open(p.conf, "w") as f:
        f.write(text.replace("data_dir = %s" % p.data_dir,
                             "data_dir = %s-elsewhere" % p.data_dir))
    os.kill(p.proc.pid, signal.SIGHUP)
    assert p.log_has('parent event=reload-refused error="%s: data_dir changed: that takes '
                     'a restart (reload refused, nothing changed)"' % p.conf)
    c = p.connect()
    c.ehlo()
    c.close()


def peer_cert(p, implicit=False):
    ctx = unverified_context()
    if implicit:
        raw = socket.create_connection(("127.0.0.1", p.subs_port), timeout=10)
        s = ctx.wrap_socket(raw)
        der = s.getpeercert(binary_form=True)
        s.close()
        return der
    c = p.connect()
    c.ehlo()
    c.starttls()
    der = c.sock.getpeercert(binary_form=True)
    c.close()
    return der


def new_cert(p, cn):
    cert = os.path.join(p.dir, cn + ".pem")
    key = os.path.join(p.dir, cn + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                    "/CN=" + cn, "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    with open(cert, "rb") as f:
        pem = f.read()
    return cert, key, ssl.PEM_cert_to_DER_cert(pem.decode())


def test_renewed_certificate_is_served_to_new_sessions(make_server):
    p = make_server()
    before = peer_cert(p)
    assert peer_cert(p, implicit=True) == before
    # A session opened before the reload, its TLS already up.
    old = p.connect()
    old.ehlo()
    old.starttls()

    cert, key, der = new_cert(p, "renewed.example.test")
    p.extra_config = "[tls]\ncert = %s\nkey = %s" % (cert, key)
    p.write_config()
    r = reload_admin(p)
    assert r.returncode == 0, r.stderr
    assert peer_cert(p) == der
    assert peer_cert(p, implicit=True) == der
    old.ehlo()
    old.send_message(MSG)
    old.close()

    # A key that does not match: refused, naming the file; the renewed
    # certificate stays.
    _, other_key, _ = new_cert(p, "other.example.test")
    p.extra_config = "[tls]\ncert = %s\nkey = %s" % (cert, other_key)
    p.write_config()
    r = reload_admin(p)
    assert r.returncode == 1
    assert r.stderr.startswith("postino-admin: cannot load key %s: " % other_key), r.stderr
    assert peer_cert(p) == der


def test_listeners_added_and_removed(make_server):
    p = make_server()
    extra = free_port()
    # A session on the submissions listener, open across its removal.
    ctx = unverified_context()
    raw = socket.create_connection(("127.0.0.1", p.subs_port), timeout=10)
    held = SMTPConn(ctx.wrap_socket(raw))
    assert held.reply().code == 220

    replace_submissions(p, "extra", extra)
    r = reload_admin(p)
    assert r.returncode == 0, r.stderr
    assert p.log_has("parent event=listen name=extra profile=mx tls=starttls addresses=1")

    c = SMTPConn(socket.create_connection(("127.0.0.1", extra), timeout=10))
    assert c.reply().code == 220
    c.close()
    s = socket.socket()
    try:
        assert s.connect_ex(("127.0.0.1", p.subs_port)) != 0
    finally:
        s.close()
    # The mx listener kept its socket; the held session still works.
    c = p.connect()
    c.ehlo()
    c.close()
    assert held.cmd("EHLO client.example.org").code == 250
    assert held.cmd("QUIT").code == 221
    held.close()

    # A listener that cannot be bound: refused, and nothing changes.
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        with open(p.conf, "a") as f:
            f.write("[listener taken]\nlisten = 127.0.0.1:%d\nprofile = mx\n" % port)
        r = reload_admin(p)
        assert r.returncode == 1
        assert "listener taken: cannot listen on 127.0.0.1:%d: Address already in use" % port \
            in r.stderr, r.stderr
        c = SMTPConn(socket.create_connection(("127.0.0.1", extra), timeout=10))
        assert c.reply().code == 220
        c.close()
    finally:
        busy.close()


def test_a_restarted_role_keeps_the_running_configuration(make_server):
    """The roles parse the text the parent checked, never the file: an
    edit nobody reloaded does not reach a role restarted after a crash."""
    p = make_server(smtp={"max_recipients": 2})
    make_aliases(p, 2)
    set_key(p, "max_recipients", 1)          # edited, not reloaded
    net = p.pids()["net"]
    os.kill(net, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        pids = p.pids()
        if pids.get("net") not in (None, net) and pids.get("store"):
            break
        assert time.monotonic() < deadline, p.read_log()
        time.sleep(0.1)
    p.wait_ready()
    c = start_transaction(p)
    assert [r.code for r in rcpts(c, 2)] == [250, 250]
    c.close()


def fd_counts(p):
    return {role: len(os.listdir("/proc/%d/fd" % pid)) for role, pid in p.pids().items()}


def test_no_accepted_message_is_lost_across_reloads(make_server):
    p = make_server()
    fds = fd_counts(p)
    sent = []
    errors = []
    stop = threading.Event()

    def sender(k):
        for i in range(15):
            if stop.is_set():
                return
            try:
                c = p.connect()
                c.ehlo()
                sent.append(c.send_message(MSG))
                c.cmd("QUIT")
                c.close()
            except (OSError, AssertionError) as e:
                errors.append(repr(e))

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(5):
            set_key(p, "max_recipients", 10 + i)
            r = reload_admin(p)
            assert r.returncode == 0, r.stderr
            time.sleep(0.1)
    finally:
        for t in threads:
            t.join(timeout=120)
        stop.set()
    assert errors == []
    assert len(sent) == 60
    p.wait_messages(60)
    p.assert_no_more(60)
    # Five reloads leave no descriptor behind in any process.
    assert fd_counts(p) == fds


def test_a_burst_of_sighups_leaves_one_working_server(make_server):
    p = make_server()
    fds = fd_counts(p)
    c = p.connect()
    c.ehlo()
    for _ in range(20):
        os.kill(p.proc.pid, signal.SIGHUP)
    # Signals may merge; each reload that ran reached both roles, in
    # order, and the parent reports the last once both applied it (a
    # reload still waiting for the roles when the next one starts is
    # superseded by it).
    deadline = time.monotonic() + 20
    while True:
        log = p.read_log()
        runs = log.count("parent event=reload by=sighup")
        if "parent event=reloaded generation=%d\n" % runs in log:
            break
        assert time.monotonic() < deadline, log
        time.sleep(0.05)
    assert 1 <= runs <= 20
    for role in ("net", "store"):
        gens = [int(g) for g in re.findall(role + r" event=reload generation=(\d+)", log)]
        assert gens == list(range(1, runs + 1)), (role, gens)
    c.send_message(MSG)
    c.cmd("QUIT")
    c.close()
    n = p.connect()
    n.ehlo()
    n.send_message(MSG)
    n.cmd("QUIT")
    n.close()
    p.wait_messages(2)
    deadline = time.monotonic() + 5
    while fd_counts(p) != fds and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fd_counts(p) == fds


def tls_session(p, ctx, session=None):
    """An implicit-TLS session on submissions: (reused?, its session)."""
    raw = socket.create_connection(("127.0.0.1", p.subs_port), timeout=10)
    s = ctx.wrap_socket(raw, session=session)
    c = SMTPConn(s)
    assert c.reply().code == 220       # a TLS 1.3 ticket comes with it
    assert c.cmd("QUIT").code == 221
    reused, sess = s.session_reused, s.session
    c.close()
    return reused, sess


def test_an_unchanged_certificate_keeps_tls_sessions_resumable(make_server):
    p = make_server()
    ctx = unverified_context()
    _, sess = tls_session(p, ctx)
    assert tls_session(p, ctx, sess)[0]
    p.smtp["max_recipients"] = "7"
    p.write_config()
    assert reload_admin(p).returncode == 0
    assert tls_session(p, ctx, sess)[0], "a reload that kept the certificate dropped the session cache"
    cert, key, _ = new_cert(p, "renewed.example.test")
    p.extra_config = "[tls]\ncert = %s\nkey = %s" % (cert, key)
    p.write_config()
    assert reload_admin(p).returncode == 0
    assert p.log_has("net event=tls-reloaded cert=%s" % cert)
    assert not tls_session(p, ctx, sess)[0]


def test_a_sighup_to_the_whole_group_reloads_and_drops_nothing(make_server):
    p = make_server(smtp={"max_recipients": 1})
    make_aliases(p, 2)
    c = start_transaction(p)
    set_key(p, "max_recipients", 2)
    before = generation(p)
    os.killpg(p.proc.pid, signal.SIGHUP)     # pkill -HUP postino, a hangup
    wait_reloaded(p, before)
    assert "role-died" not in p.read_log()
    assert [r.code for r in rcpts(c, 1)] == [250]
    assert c.cmd("DATA").code == 354
    c.send(MSG + b".\r\n")
    assert c.reply().code == 250
    c.close()


def test_a_reloaded_intrusion_bypass_is_used(make_server):
    p = make_server(intrusion={"bypass": "127.0.0.1", "max_connections_per_minute": "2"})
    with open(p.conf) as f:
        text = f.read()
    with open(p.conf, "w") as f:
        f.write(text.replace("bypass = 127.0.0.1", "bypass = 127.0.0.1, 127.0.0.77"))
    assert reload_admin(p).returncode == 0
    for _ in range(4):
        c = p.connect(source="127.0.0.77")
        c.cmd("QUIT")
        c.close()
    assert "address=[127.0.0.77] reason" not in p.read_log()
    assert "intrusion event=block" not in p.read_log()


def test_reload_follows_a_switched_symbolic_link(make_server):
    p = make_server(smtp={"max_recipients": 1})
    make_aliases(p, 3)
    with open(p.conf) as f:
        text = f.read()
    v2 = os.path.join(p.dir, "v2.conf")
    with open(v2, "w") as f:
        f.write(text.replace("max_recipients = 1", "max_recipients = 3"))
    # The server was started on p.conf: make that path a link to v2.
    os.rename(p.conf, os.path.join(p.dir, "v1.conf"))
    os.symlink(v2, p.conf)
    assert reload_admin(p).returncode == 0
    c = start_transaction(p)
    assert [r.code for r in rcpts(c, 3)] == [250, 250, 250]
    c.close()


def test_a_role_restarts_without_the_file(make_server):
    """A role parses the parent's copy: with the file moved away (a
    deploy replacing it), net killed and restarted still serves."""
    p = make_server()
    os.rename(p.conf, p.conf + ".away")
    try:
        net = p.pids()["net"]
        os.kill(net, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while p.pids().get("net") in (None, net):
            assert time.monotonic() < deadline, p.read_log()
            time.sleep(0.1)
        p.wait_ready()
        c = p.connect()
        c.ehlo()
        c.send_message(MSG)
        c.close()
        assert "exit-1" not in p.read_log()
    finally:
        os.rename(p.conf + ".away", p.conf)


def pidfd_getfd(pid, fd):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        n = libc.syscall(438, pidfd, fd, 0)     # SYS_pidfd_getfd
        assert n >= 0, os.strerror(ctypes.get_errno())
        return n
    finally:
        os.close(pidfd)


def test_a_malformed_packet_from_a_role_restarts_it_not_the_server(make_server):
    """The parent is root: a broken or hostile net must not stop it.  A
    4-octet packet on net's channel to the parent (its descriptor 5)."""
    p = make_server()
    parent, net = p.pids()["parent"], p.pids()["net"]
    fd = pidfd_getfd(net, 5)
    s = socket.socket(fileno=fd)
    s.send(b"\0\0\0\0")
    s.close()
    assert p.log_has("parent event=bad-message role=net") or \
        p.log_has("ipc event=malformed peer=net")
    deadline = time.monotonic() + 30
    while p.pids().get("net") in (None, net):
        assert time.monotonic() < deadline, p.read_log()
        time.sleep(0.1)
    p.wait_ready()
    assert p.running() and p.pids()["parent"] == parent
    c = p.connect()
    c.ehlo()
    c.send_message(MSG)
    c.close()


def test_an_answer_meant_for_a_dead_store_goes_to_nobody(make_server):
    """A reload asked through a store that then dies is never answered
    to the next store's request (which gets its own outcome)."""
    p = make_server()
    pids = p.pids()
    os.kill(pids["net"], signal.SIGSTOP)       # net will not confirm
    try:
        slow = subprocess.Popen([ADMIN, "-c", p.conf, "reload"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert p.log_has("parent event=reload by=control")
        os.kill(pids["store"], signal.SIGKILL)
        out, err = slow.communicate(timeout=30)
        assert slow.returncode == 1, (out, err)
    finally:
        try:
            os.kill(pids["net"], signal.SIGCONT)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 30
    while p.pids().get("store") in (None, pids["store"]):
        assert time.monotonic() < deadline, p.read_log()
        time.sleep(0.1)
    p.wait_ready()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        with open(p.conf, "a") as f:
            f.write("[listener taken]\nlisten = 127.0.0.1:%d\nprofile = mx\n"
                    % busy.getsockname()[1])
        r = reload_admin(p)
        assert r.returncode == 1 and "Address already in use" in r.stderr, r
    finally:
        busy.close()
