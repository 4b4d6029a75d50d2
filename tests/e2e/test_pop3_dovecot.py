"""
POP3 (SPEC section 6, docs/replies.md "POP3 replies"): postino's POP3
and a real Dovecot POP3 (tests/support/dovecot_pop3.py, a private
instance) serving the very same Maildir, one after the other, give the
same UIDL for every message (pop3_uidl_format %08Xu%08Xv, the UIDs of
the Maildir's dovecot-uidlist, which both read and write), the same
LIST and STAT, and RETR the same bytes; a UID either assigns is the one
the other shows; a DELE through either is gone for the other and the
survivors keep their UIDLs.

postino delivers over SMTP (from 127.0.0.9, as test_pop3.deliver does)
into data_dir/mail/example.test/demo, owned by its store user; Dovecot
runs as that owner, with its index files in its own temporary
directory and its control files (dovecot-uidlist) in the Maildir.  No
two POP3 sessions are open at once.
"""
import os
import re
import sys

import pytest

from conftest import DEMO, DEMO_PASSWORD, _failed, split_received
from test_pop3 import POP3Conn, deliver, message, pop3_server

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from dovecot_pop3 import GREETING, DovecotPop3, read_uidlist  # noqa: E402

pytestmark = pytest.mark.skipif(DovecotPop3.unavailable() is not None,
                                reason=str(DovecotPop3.unavailable()))

LOGOUT = b"+OK Logging out.\r\n"
LOGOUT_DELETED = b"+OK Logging out, messages deleted.\r\n"
# What Dovecot must never log about the Maildir postino keeps (the
# master's own note of our SIGTERM at the stop aside).
DOVECOT_TROUBLE = re.compile(r"^(?!.* master: Warning: Killed with signal 15 ).*"
                             r"(Error|Fatal|Panic|Warning): .*$", re.M)

# Varied messages: a leading dot (test_pop3.message has one), a body
# of several KB, 8-bit text, a line that is only a dot.
MESSAGES = [
    message(0),
    message(1, size=6000),
    (b"From: sender@example.org\r\nTo: demo@example.test\r\nSubject: 8bit\r\n\r\n"
     b"caf\xc3\xa9\tand a tab\r\n.\r\n..\r\nlast\r\n"),
]


# --------------------------------------------------------------------
# Both servers on one Maildir, and what a session sees
# --------------------------------------------------------------------

@pytest.fixture
def pair(make_server, request):
    """pair(n): a postino with POP3 listeners and n of MESSAGES
    delivered to demo, and a started private Dovecot POP3 on demo's
    Maildir (made by the first delivery, so owned by postino's user)."""
    made = []

    def make(n=len(MESSAGES)):
        p = pop3_server(make_server)
        deliver(p, MESSAGES[:n])
        dv = DovecotPop3(p.dir, p.maildir(DEMO), DEMO, DEMO_PASSWORD)
        made.append(dv)
        dv.start()
        return p, dv

    yield make
    failed = _failed(request)
    for dv in made:
        dv.stop()
        if failed:
            sys.stdout.write("\n===== Dovecot log (%s) =====\n%s\n" % (dv.dir, dv.log()))
    for dv in made:
        # After the stop: whatever Dovecot found wrong with the Maildir.
        assert not DOVECOT_TROUBLE.search(dv.log()), dv.log()


def postino_session(p):
    c = POP3Conn(p.pop3s_port, tls=True)
    c.login()
    return c


def dovecot_session(dv):
    c = POP3Conn(dv.port, greeting=False)
    assert c.line() == GREETING
    c.login(DEMO, DEMO_PASSWORD)
    return c


def whole(c, command):
    """The whole multi-line reply to command, as sent (CRLFs kept)."""
    c.send(command + "\r\n")
    first = c.line()
    assert first.startswith(b"+OK"), (command, first)
    out = [first]
    while out[-1] != b".\r\n":
        out.append(c.line())
    return b"".join(out)


def snapshot(c):
    """What a logged-in session shows: STAT, LIST, UIDL and each RETR,
    every reply as sent."""
    stat = c.cmd("STAT")
    m = re.match(rb"^\+OK (\d+) (\d+)\r\n$", stat)
    assert m, stat
    return {"stat": stat, "list": whole(c, "LIST"), "uidl": whole(c, "UIDL"),
            "retr": [whole(c, "RETR %d" % (i + 1)) for i in range(int(m.group(1)))]}


def look(c, logout=LOGOUT):
    """snapshot() of c, then QUIT (with the reply logout)."""
    s = snapshot(c)
    c.expect("QUIT", logout[:-2])
    c.close()
    return s


def uidls(snap):
    """[uidl] of a snapshot, in message-number order."""
    lines = snap["uidl"].split(b"\r\n")[1:-2]
    assert [ln.split()[0] for ln in lines] == [b"%d" % (i + 1) for i in range(len(lines))]
    return [ln.split()[1].decode() for ln in lines]


def unstuffed(retr):
    """The message bytes of a whole RETR reply: no +OK line, no final
    dot, leading dots undoubled."""
    lines = retr.split(b"\r\n")[1:-2]
    return b"".join((ln[1:] if ln.startswith(b".") else ln) + b"\r\n" for ln in lines)


def uidl(uid, validity):
    """Dovecot's UIDL of a message: pop3_uidl_format %08Xu%08Xv, where
    Dovecot's %X modifier writes lower-case hex digits (var_expand's
    m_str_hex is "%llx"): UID 1 of UIDVALIDITY 1796419723 is
    "000000016b13308b"."""
    return "%08x%08x" % (uid, validity)


def uidl_of(maildir, name):
    """uidl() of the UID dovecot-uidlist gives the file name (its base,
    without the :2,... flags) and of the UIDVALIDITY."""
    validity, _, uids = read_uidlist(maildir)
    return uidl(uids[name.split(":")[0]], validity)


def folded(snap):
    """snap with its UIDL reply in lower case: the tests other than
    test_dovecot_shows_postinos_uidl_list_and_bytes compare UIDs, not
    the case of their hex digits (which that test checks)."""
    first, rest = snap["uidl"].split(b"\r\n", 1)
    return dict(snap, uidl=first + b"\r\n" + rest.lower())


def in_uid_order(maildir):
    """[(base name, bytes)] of the Maildir's messages in UID order."""
    _, _, uids = read_uidlist(maildir)
    found = []
    for sub in ("new", "cur"):
        for n in os.listdir(os.path.join(maildir, sub)):
            with open(os.path.join(maildir, sub, n), "rb") as f:
                found.append((uids[n.split(":")[0]], n.split(":")[0], f.read()))
    return [(n, data) for _, n, data in sorted(found)]


def drop_in_new(maildir, name, data):
    """A message put into new/ by hand (written in tmp/, renamed), owned
    like the Maildir."""
    st = os.stat(maildir)
    tmp = os.path.join(maildir, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(data)
    os.chown(tmp, st.st_uid, st.st_gid)
    os.chmod(tmp, 0o600)
    os.rename(tmp, os.path.join(maildir, "new", name))


# --------------------------------------------------------------------
# postino first, then Dovecot
# --------------------------------------------------------------------

def test_dovecot_shows_postinos_uidl_list_and_bytes(pair):
    p, dv = pair()
    md = p.maildir(DEMO)
    mine = look(postino_session(p))
    files = in_uid_order(md)        # by the UIDs postino's login wrote
    assert [unstuffed(r) for r in mine["retr"]] == [data for _, data in files]
    # each as sent, below the Received: postino put on top
    assert sorted(split_received(data)[1] for _, data in files) == sorted(MESSAGES)
    validity, next_uid, _ = read_uidlist(md)

    theirs = look(dovecot_session(dv))
    assert theirs["stat"] == mine["stat"]
    assert theirs["list"] == mine["list"]
    assert len(theirs["retr"]) == len(MESSAGES)
    for i, (a, b) in enumerate(zip(theirs["retr"], mine["retr"])):
        assert a == b, "RETR %d differs" % (i + 1)
    # Dovecot kept postino's UIDVALIDITY and UIDs (it may add fields)
    v2, n2, _ = read_uidlist(md)
    assert (v2, n2) == (validity, next_uid)
    assert uidls(theirs) == [uidl_of(md, n) for n, _ in files]
    # the same UIDs and UIDVALIDITY, and the same UIDL lines byte for
    # byte (docs/replies.md: "the same a Dovecot with default settings
    # would give"; a client that leaves mail on the server would fetch
    # every message again after a move between the two otherwise)
    assert folded(mine)["uidl"] == folded(theirs)["uidl"]
    assert mine["uidl"] == theirs["uidl"], \
        "the UIDLs differ in the case of their hex digits (Dovecot's are lower-case)"
    # and postino reads the dovecot-uidlist Dovecot rewrote alike
    assert look(postino_session(p)) == mine


def test_dovecot_first_on_a_fresh_maildir(pair):
    """Nobody has logged in yet (no dovecot-uidlist): Dovecot's UIDs and
    UIDVALIDITY are the ones postino then shows.  A file another agent
    wrote with bare LF line ends is sized and sent alike (CRLF)."""
    p, dv = pair(2)
    md = p.maildir(DEMO)
    assert not os.path.exists(os.path.join(md, "dovecot-uidlist"))
    drop_in_new(md, "1700000000.M1P1.other", b"Subject: lf\n\n.\n..two\nlast line\n")
    theirs = look(dovecot_session(dv))
    assert len(uidls(theirs)) == 3
    # (where it is depends on Dovecot: it numbers new files by name)
    assert b"Subject: lf\r\n\r\n.\r\n..two\r\nlast line\r\n" in \
        [unstuffed(r) for r in theirs["retr"]]
    assert uidls(theirs) == [uidl_of(md, n) for n, _ in in_uid_order(md)]
    mine = look(postino_session(p))
    assert folded(mine) == folded(theirs)


# --------------------------------------------------------------------
# Dovecot assigns a UID, postino shows it; and back
# --------------------------------------------------------------------

def test_postino_shows_the_uid_dovecot_assigned(pair):
    p, dv = pair()
    md = p.maildir(DEMO)
    before = look(postino_session(p))
    validity, next_uid, _ = read_uidlist(md)
    # a message only Dovecot has seen: it gives it the next UID
    name = "1700000001.M2P2.elsewhere"
    data = (b"From: x@example.org\r\nTo: demo@example.test\r\nSubject: by hand\r\n\r\n"
            b".dotted\r\nbody\r\n")
    drop_in_new(md, name, data)
    theirs = look(dovecot_session(dv))
    _, n2, uids = read_uidlist(md)
    assert uids[name] == next_uid and n2 == next_uid + 1
    assert uidls(theirs) == [u.lower() for u in uidls(before)] + [uidl(next_uid, validity)]
    assert unstuffed(theirs["retr"][-1]) == data
    # postino shows it with Dovecot's UID, the rest as before
    mine = look(postino_session(p))
    assert folded(mine) == folded(theirs)

    # the other way: a message postino delivers after Dovecot wrote the
    # uidlist gets the UID after Dovecot's, in both
    deliver(p, [message(7)])
    mine = look(postino_session(p))
    _, n3, uids = read_uidlist(md)
    assert [u.lower() for u in uidls(mine)] == uidls(theirs) + [uidl(next_uid + 1, validity)]
    assert n3 == next_uid + 2 and max(uids.values()) == next_uid + 1
    assert split_received(unstuffed(mine["retr"][-1]))[1] == message(7)
    assert folded(look(dovecot_session(dv))) == folded(mine)


# --------------------------------------------------------------------
# DELE through one, gone for the other
# --------------------------------------------------------------------

def without(snap, k):
    """What snapshot snap should become once message k (1-based) is gone:
    the survivors renumbered, each with its UIDL, size and bytes."""
    list_lines = snap["list"].split(b"\r\n")[1:-2]
    sizes = [int(ln.split()[1]) for ln in list_lines]
    ids = uidls(snap)
    del sizes[k - 1], ids[k - 1]
    retr = snap["retr"][:k - 1] + snap["retr"][k:]
    return {"stat": b"+OK %d %d\r\n" % (len(sizes), sum(sizes)),
            "list": b"+OK %d messages:\r\n" % len(sizes)
            + b"".join(b"%d %d\r\n" % (i + 1, s) for i, s in enumerate(sizes)) + b".\r\n",
            "uidl": b"+OK\r\n" + b"".join(b"%d %s\r\n" % (i + 1, u.encode())
                                          for i, u in enumerate(ids)) + b".\r\n",
            "retr": retr}


def test_dele_through_one_is_gone_for_the_other(pair):
    p, dv = pair()
    mine = folded(look(postino_session(p)))
    # Dovecot has indexed all three before the deletion
    assert folded(look(dovecot_session(dv))) == mine

    c = postino_session(p)
    c.expect("DELE 2", b"+OK Marked to be deleted.")
    c.expect("QUIT", LOGOUT_DELETED[:-2])
    c.close()
    want = without(mine, 2)
    assert len(p.messages(DEMO)) == len(MESSAGES) - 1
    assert folded(look(dovecot_session(dv))) == want    # the others keep their UIDLs
    assert folded(look(postino_session(p))) == want

    # and through Dovecot: postino no longer lists it
    c = dovecot_session(dv)
    c.expect("DELE 1", b"+OK Marked to be deleted.")
    c.expect("QUIT", LOGOUT_DELETED[:-2])
    c.close()
    want = without(want, 1)
    assert len(p.messages(DEMO)) == len(MESSAGES) - 2
    assert folded(look(postino_session(p))) == want
    assert folded(look(dovecot_session(dv))) == want
