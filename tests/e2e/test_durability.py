"""R5.1/R5.2: a 250 means the message is on stable storage; a crash at
any instant (here: SIGKILL of parent, net and store together) loses no
acknowledged message, never delivers half a message, and delivers each
exactly once after a restart on the same data directory."""
import os
import re
import signal
import smtplib
import threading
import time
import uuid

from conftest import DEMO, SENDER, dot_stuff, split_received

N = 30
MID_RE = re.compile(rb"^Message-Id: (<[^>\r\n]+>)\r$", re.M)


class Ledger:
    """What was sent, what the server acknowledged, what was cut off."""

    def __init__(self):
        self.run = uuid.uuid4().hex[:12]
        self.sent = {}          # mid -> message bytes
        self.acked = set()      # got the 250
        self.unknown = set()    # whole message sent, no reply (crash)
        self.partial = set()    # never finished sending: must not appear
        self.lock = threading.Lock()

    def make(self, tag, i, size):
        mid = "<dur-%s-%s-%d@example.org>" % (self.run, tag, i)
        head = ("From: <sender@example.org>\r\nTo: <demo@example.test>\r\n"
                "Subject: durability %s %d\r\nMessage-Id: %s\r\n\r\n" % (tag, i, mid)).encode()
        line = (b"%s-%d " % (tag.encode(), i) + b"0123456789abcdef" * 5)[:76] + b"\r\n"
        body = b".dot line\r\n" + line * max(1, size // len(line)) + b"end\r\n"
        m = head + body
        with self.lock:
            self.sent[mid] = m
        return mid, m


def send_one(client, led, mid, m):
    code, resp = client.mail(SENDER)
    assert code == 250, resp
    code, resp = client.rcpt(DEMO)
    assert code == 250, resp
    code, resp = client.data(m)
    assert code == 250 and resp.startswith(b"2.0.0 Ok: queued as "), (code, resp)
    led.acked.add(mid)


class Background(threading.Thread):
    """Sends messages back to back on a raw connection until the server
    dies (or stop is set); records each as acked or unknown."""

    def __init__(self, server, led, tag, size):
        super().__init__(daemon=True)
        self.server, self.led, self.tag, self.size = server, led, tag, size
        self.stop = threading.Event()
        self.count = 0
        self.error = None

    def run(self):
        try:
            c = self.server.connect(timeout=5)
            c.ehlo()
        except Exception as e:          # server already gone
            self.error = e
            return
        for i in range(500):
            if self.stop.is_set():
                break
            mid, m = self.led.make(self.tag, i, self.size)
            try:
                c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
                c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")
                c.expect("DATA", "354 End data with <CR><LF>.<CR><LF>")
            except (OSError, EOFError, AssertionError) as e:
                self.led.partial.add(mid)
                self.error = e
                break
            wire = dot_stuff(m)
            try:
                c.send(wire[:-5])                 # all but the end of data
            except OSError as e:
                self.led.partial.add(mid)
                self.error = e
                break
            try:
                c.send(wire[-5:])
                r = c.reply(timeout=5)
            except (OSError, EOFError, AssertionError) as e:
                self.led.unknown.add(mid)
                self.error = e
                break
            if not r.raw.startswith(b"250 2.0.0 Ok: queued as "):
                self.led.unknown.add(mid)
                self.error = AssertionError(r)
                break
            self.led.acked.add(mid)
            self.count += 1
        c.close()


class Dangling(threading.Thread):
    """Opens DATA and sends half a message, then waits: that message
    must never be delivered."""

    def __init__(self, server, led, tag):
        super().__init__(daemon=True)
        self.server, self.led, self.tag = server, led, tag
        self.ready = threading.Event()
        self.conn = None

    def run(self):
        try:
            c = self.server.connect(timeout=5)
            c.ehlo()
            c.expect("MAIL FROM:<%s>" % SENDER, "250 2.1.0 Ok")
            c.expect("RCPT TO:<%s>" % DEMO, "250 2.1.5 Ok")
            c.expect("DATA", "354 End data with <CR><LF>.<CR><LF>")
            mid, m = self.led.make(self.tag, 0, 20000)
            self.led.partial.add(mid)
            c.send(dot_stuff(m)[: len(m) // 2])
            self.conn = c
        finally:
            self.ready.set()


def crash_round(server, led, k, tag, size=30000):
    """Send k messages on one connection with traffic alongside; SIGKILL
    every postino process right after the k-th 250; restart."""
    dangling = Dangling(server, led, tag + "half")
    dangling.start()
    assert dangling.ready.wait(10)
    bg = Background(server, led, tag + "bg", 60000)
    bg.start()
    pids = server.pids()
    assert set(pids) == {"parent", "net", "store"}, pids
    with smtplib.SMTP("127.0.0.1", server.mx_port, local_hostname="client.example.org",
                      timeout=10) as c:
        c.ehlo()
        for i in range(k):
            mid, m = led.make(tag, i, size)
            send_one(c, led, mid, m)
        server.kill9(pids)            # right after the k-th 250
    bg.stop.set()
    bg.join(15)
    assert not bg.is_alive()
    dangling.join(5)
    if dangling.conn is not None:
        dangling.conn.close()
    print("round %s: k=%d background acked=%d error=%r; acked=%d unknown=%d partial=%d"
          % (tag, k, bg.count, bg.error, len(led.acked), len(led.unknown), len(led.partial)))
    server.start()


def finish_and_check(server, led, tag, n, size=30000):
    with smtplib.SMTP("127.0.0.1", server.mx_port, local_hostname="client.example.org",
                      timeout=10) as c:
        c.ehlo()
        for i in range(n):
            mid, m = led.make(tag, i, size)
            send_one(c, led, mid, m)
        c.quit()
    check_mailbox(server, led)


def delivered(server, led):
    """{mid: count}; asserts every file is a complete, known message."""
    counts = {}
    for name, data in server.messages().items():
        received, rest = split_received(data)
        ids = MID_RE.findall(rest)
        assert len(ids) == 1, "%s: not one of the messages sent (partial?): %r..." % (
            name, rest[:200])
        mid = ids[0].decode()
        assert mid in led.sent, "%s: unknown Message-Id %s" % (name, mid)
        assert rest == led.sent[mid], "%s: %s delivered with different bytes (%d vs %d)" % (
            name, mid, len(rest), len(led.sent[mid]))
        counts[mid] = counts.get(mid, 0) + 1
    return counts


def check_mailbox(server, led, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        counts = delivered(server, led)
        missing = led.acked - set(counts)
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not missing, "%d acknowledged message(s) lost: %s" % (len(missing), sorted(missing)[:5])
    # Let the queue drain (late redeliveries would show as duplicates).
    time.sleep(1.0)
    counts = delivered(server, led)
    dup = {m: n for m, n in counts.items() if n != 1}
    assert not dup, "delivered more than once: %s" % dup
    half = led.partial & set(counts)
    assert not half, "a message whose DATA never ended was delivered: %s" % half
    stray = set(counts) - led.acked - led.unknown
    assert not stray, "delivered but never fully sent: %s" % stray
    # Nothing left behind in tmp/ of any Maildir once the queue is empty.
    mail = os.path.join(server.data_dir, "mail")
    deadline = time.monotonic() + 10
    while True:
        left = []
        for dom in os.listdir(mail):
            for user in os.listdir(os.path.join(mail, dom)):
                t = os.path.join(mail, dom, user, "tmp")
                if os.path.isdir(t):
                    left += [os.path.join(t, f) for f in os.listdir(t)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not left, "left in Maildir tmp/: %s" % left


def test_kill9_after_ack(server):
    led = Ledger()
    crash_round(server, led, 15, "a")
    n_before = len(led.acked)
    assert n_before >= 15
    finish_and_check(server, led, "b", N - 15)
    assert len(led.acked) >= N


def test_kill9_several_instants(server):
    led = Ledger()
    for r, k in enumerate((2, 7, 11)):
        crash_round(server, led, k, "r%d" % r, size=20000 + 9000 * r)
    finish_and_check(server, led, "end", 10)


def test_kill9_while_idle_and_restart_twice(server):
    """A restart with nothing in flight loses nothing and redelivers
    nothing."""
    led = Ledger()
    finish_and_check(server, led, "pre", 5)
    server.kill9()
    server.start()
    server.kill9()
    server.start()
    check_mailbox(server, led)
    assert len(delivered(server, led)) == 5


def test_kill9_one_role_is_restarted(server):
    """One role dying (SIGKILL of store, then of net) loses nothing: the
    parent starts the roles again and every acknowledged message is
    delivered exactly once."""
    led = Ledger()
    for r, role in enumerate(("store", "net")):
        pids = server.pids()
        with smtplib.SMTP("127.0.0.1", server.mx_port, local_hostname="client.example.org",
                          timeout=10) as c:
            c.ehlo()
            for i in range(4):
                mid, m = led.make("%s%d" % (role, r), i, 30000)
                send_one(c, led, mid, m)
            os.kill(pids[role], signal.SIGKILL)
        # The parent stays and starts both roles again (bounded wait).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            new = server.pids()
            if (set(new) == {"parent", "net", "store"} and new["net"] != pids["net"]
                    and new["store"] != pids["store"]):
                break
            time.sleep(0.1)
        assert new["parent"] == pids["parent"] and server.running()
        assert new.get("net") not in (None, pids["net"]), (pids, new)
        assert new.get("store") not in (None, pids["store"]), (pids, new)
        server.wait_ready(timeout=15)
    finish_and_check(server, led, "after", 3)
