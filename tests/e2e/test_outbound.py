"""R5.3, R5.6: delivery to other domains by MX, against real peers on
loopback: a private dnsmasq serves the MX and address records, Postfix's
smtp-sink plays the remote servers on 127.0.0.x and one port (postino's
[delivery] smtp_port), and the DSNs come back into the demo Maildir.

The client is trusted (127.0.0.1 in the trusted hosts), so it may send
as demo@example.test and relay (R3.5)."""
import email
import os
import shutil
import smtplib
import sys
import tempfile
import time

import pytest

from conftest import DEMO, Postino, _check_binaries, _failed, _finish

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from dnsmasq import Dnsmasq  # noqa: E402
from smtp_sink import SmtpSink, common_free_port  # noqa: E402

pytestmark = pytest.mark.skipif(SmtpSink.unavailable() is not None,
                                reason=str(SmtpSink.unavailable()))

MSG = (b"From: demo@example.test\r\n"
       b"To: someone@far.test\r\n"
       b"Subject: outbound\r\n"
       b"Message-ID: <out-1@example.test>\r\n"
       b"\r\n"
       b"line one\r\n"
       b".leading dot stays\r\n"
       b"last line\r\n")


class World:
    """dnsmasq, sinks on 127.0.0.2.. sharing one port, and postino."""

    def __init__(self, tmp, mx, hosts, delivery=None, smtp=None):
        self.tmp = tmp
        self.dns = Dnsmasq(hosts=hosts, mx=mx)
        self.dns.start()
        addrs = sorted({a for v in hosts.values() for a in v})
        self.port = common_free_port(addrs or ["127.0.0.2"])
        self.sinks = {}
        conf = {"smtp_port": self.port, "retry_first": 1, "retry_max": 2}
        conf.update(delivery or {})
        extra = "[dns]\nservers = %s\n[delivery]\n%s\n" % (
            self.dns.server, "\n".join("%s = %s" % kv for kv in conf.items()))
        _check_binaries()
        self.p = Postino(smtp=smtp, extra_config=extra)
        self.p.add_domain("example.test")
        self.p.add_account(DEMO)
        self.p.admin("trusted", "add", "127.0.0.1")
        self.p.start()

    def sink(self, host, **kw):
        s = SmtpSink(self.tmp, host=host, port=self.port, **kw)
        s.start()
        self.sinks[host] = s
        return s

    def send(self, rcpts, msg=MSG, sender=DEMO):
        with smtplib.SMTP("127.0.0.1", self.p.mx_port, timeout=10) as c:
            c.sendmail(sender, rcpts, msg)

    def log_has(self, text, timeout=15.0):
        return self.p.log_has(text, timeout)

    def close(self, failed):
        for s in self.sinks.values():
            s.stop()
        self.dns.stop()
        _finish([self.p], failed)


@pytest.fixture
def world(request):
    # The sinks drop to "nobody", which must reach their dump files.
    top = tempfile.mkdtemp(prefix="postino-out-")
    os.chmod(top, 0o755)
    made = []

    def make(**kw):
        w = World(top, **kw)
        made.append(w)
        return w
    yield make
    failed = _failed(request)
    for w in made:
        w.close(failed)
    shutil.rmtree(top, ignore_errors=True)


def test_mx_delivery_byte_exact_in_batches(world):
    w = world(mx={"far.test": [(10, "mx1.far.test")]},
              hosts={"mx1.far.test": ["127.0.0.2"]},
              delivery={"max_recipients_per_session": 2})
    sink = w.sink("127.0.0.2")
    rcpts = ["a@far.test", "b@far.test", "c@far.test", "d@far.test", "e@far.test"]
    w.send(rcpts)
    ts = sink.wait_transactions(3, timeout=15)
    assert sorted(len(t["rcpts"]) for t in ts) == [1, 2, 2]
    assert sorted(r for t in ts for r in t["rcpts"]) == rcpts
    for t in ts:
        assert t["mail_from"] == DEMO
        # postino's own Received header, then exactly the bytes sent
        assert t["data"].endswith(MSG)
        received = t["data"][:-len(MSG)].split(b"\r\n")
        assert received[0].startswith(b"Received: from ") and received[-1] == b""
        assert all(line[:1] in (b" ", b"\t") for line in received[1:-1])
    # all in one session: one connection, then removed from the queue
    assert w.log_has("event=removed")
    assert os.listdir(os.path.join(w.p.data_dir, "spool", "queue")) == []


def test_mx_preference_and_try_next(world):
    # The best MX (127.0.0.3) has nobody listening: the next one gets it.
    w = world(mx={"far.test": [(20, "mx2.far.test"), (10, "mx1.far.test")]},
              hosts={"mx1.far.test": ["127.0.0.3"], "mx2.far.test": ["127.0.0.2"]})
    sink = w.sink("127.0.0.2")
    w.send(["x@far.test"])
    t, = sink.wait_transactions(1, timeout=15)
    assert t["rcpts"] == ["x@far.test"]
    log = w.p.read_log()
    assert "event=address-failed relay=mx1.far.test[127.0.0.3]" in log


def test_no_mx_falls_back_to_address(world):
    w = world(mx={}, hosts={"plain.test": ["127.0.0.2"]})
    sink = w.sink("127.0.0.2")
    w.send(["y@plain.test"])
    t, = sink.wait_transactions(1, timeout=15)
    assert t["rcpts"] == ["y@plain.test"]


def wait_dsn(p, timeout=20):
    msgs = p.wait_messages(1, addr=DEMO, timeout=timeout)
    assert len(msgs) == 1, msgs
    return msgs[0]


def test_5xx_bounces_with_the_remote_reply(world):
    w = world(mx={"far.test": [(10, "mx1.far.test")]},
              hosts={"mx1.far.test": ["127.0.0.2"]})
    w.sink("127.0.0.2", hard_reject=("rcpt",))
    w.send(["gone@far.test"])
    raw = wait_dsn(w.p)
    msg = email.message_from_bytes(raw)
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert msg["To"] == "<%s>" % DEMO or DEMO in msg["To"]
    assert msg.get_content_type() == "multipart/report"
    text = raw.decode("ascii", "replace")
    assert "Final-Recipient: rfc822; gone@far.test" in text
    assert "Action: failed" in text
    assert "Remote-MTA: dns; mx1.far.test[127.0.0.2]" in text
    # smtp-sink's own hard reply, quoted
    assert "Diagnostic-Code: smtp; 5" in text
    assert "Subject: outbound" in text          # the original headers
    assert w.log_has("event=removed")


def test_4xx_is_retried_then_delivered(world):
    w = world(mx={"far.test": [(10, "mx1.far.test")]},
              hosts={"mx1.far.test": ["127.0.0.2"]})
    soft = w.sink("127.0.0.2", soft_reject=("rcpt",))
    w.send(["later@far.test"])
    assert w.log_has("event=retry-later attempts=1")
    soft.stop()
    del w.sinks["127.0.0.2"]
    sink = w.sink("127.0.0.2")
    t, = sink.wait_transactions(1, timeout=20)
    assert t["rcpts"] == ["later@far.test"]
    assert w.log_has("event=removed")
    # no bounce came back
    assert w.p.messages(DEMO) == {}


def test_null_mx_bounces_at_once(world):
    w = world(mx={"nomail.test": [(0, ".")]}, hosts={})
    w.send(["who@nomail.test"])
    text = wait_dsn(w.p).decode("ascii", "replace")
    assert "Status: 5.1.10" in text
    assert "null MX" in text


# --- queue tools (R5.7): each verb through the running daemon ----------

QID_RE = r"[0-9A-F]{16}"


def queued_ids(p):
    return sorted(os.listdir(os.path.join(p.data_dir, "spool", "queue")))


def test_queue_tools(world):
    import re
    # Nobody listens at far.test's MX: the message stays deferred.
    w = world(mx={"far.test": [(10, "mx1.far.test")]},
              hosts={"mx1.far.test": ["127.0.0.2"]},
              delivery={"retry_first": 3600, "retry_max": 3600})
    w.send(["a@far.test", "b@far.test"])
    assert w.log_has("event=retry-later attempts=1")
    qid, = queued_ids(w.p)

    out = w.p.admin("queue", "list").stdout
    lines = out.splitlines()
    assert re.match(r"^%s +\d+s +\d+ deferred <demo@example.test>$" % qid, lines[0]), out
    refused = "(connect to mx1.far.test[127.0.0.2]:%d: Connection refused)" % w.port
    assert lines[1] == "    <a@far.test> " + refused
    assert lines[2] == "    <b@far.test> " + refused
    size = int(lines[0].split()[2])
    assert lines[3] == "-- 1 message, %d octets" % size
    assert len(lines) == 4

    out = w.p.admin("queue", "show", qid).stdout
    assert out.startswith("queue id: %s\nstate: deferred\nage: " % qid), out
    assert "\nsize: %d\nsender: <demo@example.test>\n" % size in out
    assert "\nattempts: 1\n" in out
    assert "\nrecipient: <a@far.test> pending 4.4.1: connect to " in out
    assert "\nSubject: outbound\n" in out

    # hold: out of the queue and of the schedule; list says so
    r = w.p.admin("queue", "hold", qid)
    assert r.stdout == "%s on hold\n" % qid
    assert queued_ids(w.p) == []
    assert " hold " in w.p.admin("queue", "list").stdout
    r = w.p.admin("queue", "flush", qid, check=False)
    assert r.returncode == 1
    assert r.stderr == "postino-admin: no message %s in the queue (it is on hold: " \
        "release it first)\n" % qid
    # release, then flush with a listener: delivered now
    assert w.p.admin("queue", "release", qid).stdout == "%s released\n" % qid
    assert w.log_has("event=retry-later attempts=2")
    sink = w.sink("127.0.0.2")
    assert w.p.admin("queue", "flush").stdout == "1 message scheduled now\n"
    t, = sink.wait_transactions(1, timeout=15)
    assert sorted(t["rcpts"]) == ["a@far.test", "b@far.test"]
    assert w.log_has("qid=%s event=removed" % qid)
    assert w.p.admin("queue", "list").stdout == "Mail queue is empty\n"

    # delete, and bounce (a DSN to the sender, the message gone)
    sink.stop()
    del w.sinks["127.0.0.2"]
    w.send(["c@far.test"])
    w.send(["d@far.test"])
    deadline = time.monotonic() + 10
    while w.p.read_log().count("event=retry-later attempts=1") < 3 and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    q1, q2 = queued_ids(w.p)
    assert w.p.admin("queue", "delete", q1).stdout == "%s deleted\n" % q1
    assert queued_ids(w.p) == [q2]
    assert not os.path.exists(os.path.join(w.p.data_dir, "spool", "deferred", q1))
    assert w.p.admin("queue", "bounce", q2).stdout == "%s returned to its sender\n" % q2
    dsn = wait_dsn(w.p).decode()
    assert "Final-Recipient: rfc822; d@far.test" in dsn
    assert "returned by the administrator" in dsn
    assert w.log_has("qid=%s event=removed" % q2)

    # refusals: exit 1, one line naming what is wrong
    r = w.p.admin("queue", "show", "nonsense", check=False)
    assert (r.returncode, r.stderr) == (1, "postino-admin: 'nonsense' is not a queue id\n")
    r = w.p.admin("queue", "delete", q1, check=False)
    assert (r.returncode, r.stderr) == (1, "postino-admin: no message %s in the queue\n" % q1)


def test_queue_tools_need_the_daemon(world):
    w = world(mx={}, hosts={})
    w.p.stop()
    r = w.p.admin("queue", "list", check=False)
    assert r.returncode == 1
    assert r.stderr.startswith("postino-admin: postino is not running (")
    assert r.stderr.endswith("control.sock: No such file or directory); this "
                             "command acts through the daemon\n")


def test_received_names_a_forward_confirmed_client(world):
    # 127.0.0.1's PTR is client.far.test, whose A is 127.0.0.1 again.
    w = world(mx={"far.test": [(10, "mx1.far.test")]},
              hosts={"mx1.far.test": ["127.0.0.2"], "client.far.test": ["127.0.0.1"]})
    assert w.dns.query("1.0.0.127.in-addr.arpa", "PTR")[1], "dnsmasq gives no PTR"
    sink = w.sink("127.0.0.2")
    w.send(["x@far.test"])
    t, = sink.wait_transactions(1, timeout=15)
    first = t["data"].split(b"\r\n", 1)[0]
    assert first.endswith(b" (client.far.test [127.0.0.1])"), first
    assert w.log_has("address=[127.0.0.1] event=client-name host=client.far.test")


def test_received_unknown_without_a_confirmed_name(world):
    # A PTR (from the hosts entry of 127.0.0.3) but the client is
    # 127.0.0.1, which has none: "unknown".
    w = world(mx={"far.test": [(10, "mx1.far.test")]},
              hosts={"mx1.far.test": ["127.0.0.2"]})
    sink = w.sink("127.0.0.2")
    w.send(["x@far.test"])
    t, = sink.wait_transactions(1, timeout=15)
    first = t["data"].split(b"\r\n", 1)[0]
    assert first.endswith(b" (unknown [127.0.0.1])"), first
    assert "event=client-name" not in w.p.read_log()


def test_redirect_rule_routes_a_domain(world):
    """R5.5, the seeds' example: for far.test only, a relay server; the
    recipient unchanged (%%alias%%@%%domain%%).  For near.test, the
    recipient rewritten to another domain."""
    w = world(mx={"far.test": [(10, "mx1.far.test")], "near.test": [(10, "mx1.far.test")]},
              hosts={"mx1.far.test": ["127.0.0.2"], "relay.test": ["127.0.0.3"]})
    mx = w.sink("127.0.0.2")
    relay = w.sink("127.0.0.3")
    w.p.admin("redirect", "add", "far.test", "%%alias%%@%%domain%%", "127.0.0.3:%d" % w.port)
    w.p.admin("redirect", "add", "near.test", "%%alias%%@inside.test",
              "relay.test:%d" % w.port)
    w.send(["someone@far.test"])
    w.send(["other@near.test"])
    got = relay.wait_transactions(2, timeout=15)
    assert sorted(r for t in got for r in t["rcpts"]) == ["other@inside.test",
                                                         "someone@far.test"]
    assert mx.transactions() == []
    assert w.log_has("domain=far.test rcpts=1 redirect=127.0.0.3:%d" % w.port)


def test_mx_is_a_private_postfix_over_starttls(world):
    """The MX is a real Postfix (with STARTTLS and CHUNKING):
    opportunistic TLS is used, the message goes by BDAT and arrives
    byte-exact, a refused recipient bounces with Postfix's own words,
    the other is delivered."""
    from mx_peer import MxPeer
    if MxPeer.unavailable():
        pytest.skip(MxPeer.unavailable())
    w = world(mx={"far.test": [(10, "mx1.far.test")]},
              hosts={"mx1.far.test": ["127.0.0.2"]})
    peer = MxPeer(w.tmp, "127.0.0.2", w.port, domains=["far.test"],
                  reply_rcpt={"bad@far.test": "550 5.1.1 no such user"})
    peer.start()
    try:
        w.send(["good@far.test", "bad@far.test"])
        (path, data), = peer.wait_messages(1, rcpt="good@far.test", timeout=30)
        sent = MxPeer.as_sent(data, peer.myhostname)
        assert sent.endswith(MSG) and sent.startswith(b"Received: from ")
        assert "TLS connection established from unknown[127.0.0.1]" in peer.log()
        # Postfix offers CHUNKING: the message went as one BDAT LAST
        assert " bdat=1 " in peer.log() and " data=" not in peer.log()
        assert w.log_has("event=tls relay=mx1.far.test[127.0.0.2]:%d tls=TLSv1.3 cipher="
                         % w.port)
        text = wait_dsn(w.p).decode("ascii", "replace")
        assert "Final-Recipient: rfc822; bad@far.test" in text
        assert ("Diagnostic-Code: smtp; 550 5.1.1 <bad@far.test>: Recipient address "
                "rejected: no such user") in text
        assert "Final-Recipient: rfc822; good@far.test" not in text
        assert w.log_has("event=removed")
    finally:
        peer.stop()


def test_domain_add_gives_a_postmaster():
    """domain add makes postmaster@DOMAIN an alias of failed_mail; not
    with the computed default postmaster@hostname outside the local
    domains (that would send the postmaster's mail away, or loop)."""
    _check_binaries()
    p = Postino(extra_config="[delivery]\nfailed_mail = bounces@example.test\n")
    q = Postino()
    try:
        p.admin("domain", "add", "example.test")
        p.admin("domain", "add", "example.net")
        assert p.admin("alias", "list").stdout == (
            "postmaster@example.net bounces@example.test\n"
            "postmaster@example.test bounces@example.test\n")
        q.admin("domain", "add", "example.test")
        assert q.admin("alias", "list").stdout == ""
    finally:
        _finish([p, q], False)


def test_many_recipients_of_one_domain(world):
    """250 recipients of one domain: several jobs (one IPC message each
    must stay bounded), transactions of max_recipients_per_session,
    every recipient delivered once."""
    w = world(mx={"far.test": [(10, "mx1.far.test")]},
              hosts={"mx1.far.test": ["127.0.0.2"]},
              delivery={"max_recipients_per_session": 50},
              smtp={"max_recipients": 300})
    sink = w.sink("127.0.0.2")
    rcpts = ["r%03d@far.test" % i for i in range(250)]
    w.send(rcpts)
    ts = sink.wait_transactions(5, timeout=30)
    got = sorted(r for t in ts for r in t["rcpts"])
    assert got == rcpts
    assert sorted(len(t["rcpts"]) for t in ts) == [50] * 5
    assert w.log_has("event=removed")
    assert w.p.read_log().count("event=outbound job=") == 3


def test_hostile_reply_is_escaped_in_the_log(world):
    """A peer's reply goes into the log inside reply="...": its quotes
    and backslashes are escaped, so it cannot end the field early and
    pass a key=value of its own to a log reader (fail2ban)."""
    w = world(mx={"far.test": [(10, "mx1.far.test")]},
              hosts={"mx1.far.test": ["127.0.0.2"]})
    w.sink("127.0.0.2", hard_reject=("rcpt",),
           extra_args=("-B", '550 5.1.1 no" address=[6.6.6.6] x\\y'))
    w.send(["gone@far.test"])
    assert w.log_has('reply="550 5.1.1 no\\x22 address=[6.6.6.6] x\\x5cy"')
    assert 'no" address=[6.6.6.6]' not in w.p.read_log()
