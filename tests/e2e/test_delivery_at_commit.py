"""R5.1/R5.2, delivery at commit (docs/queue.md): a message whose every
recipient is a local mailbox is in each Maildir's new/ before the 250,
as one file linked into every box, and never in the queue; when a link
cannot be made it takes the queue instead, whole and without its
envelope in any mailbox."""
import os
import re

from conftest import DEMO, split_received

OTHER = "other@example.test"
MSG = (b"From: <sender@example.org>\r\nTo: <demo@example.test>\r\n"
       b"Subject: at commit\r\nMessage-Id: <at-commit-1@example.org>\r\n\r\n"
       b"first line\r\n.leading dot\r\nlast line\r\n")


def spool(p, sub):
    return sorted(os.listdir(os.path.join(p.data_dir, "spool", sub)))


def new_files(p, addr):
    d = os.path.join(p.maildir(addr), "new")
    try:
        return sorted(os.path.join(d, n) for n in os.listdir(d))
    except FileNotFoundError:
        return []


def test_two_local_recipients_get_one_file_before_the_250(make_server):
    p = make_server(accounts=(DEMO, OTHER))
    with p.connect() as c:
        c.ehlo()
        qid = c.send_message(MSG, rcpts=(DEMO, OTHER))
        # read at once: the 250 came after both links and their fsyncs
        demo, other = new_files(p, DEMO), new_files(p, OTHER)
        assert len(demo) == 1 and len(other) == 1, (demo, other)
        assert spool(p, "queue") == [] and spool(p, "incoming") == []
    a, b = os.stat(demo[0]), os.stat(other[0])
    assert (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
    assert a.st_nlink == 2 and a.st_mode & 0o777 == 0o600
    # the names delivery would have given target 0 and target 1
    assert re.fullmatch(r"\d+\.Q%sR0\.mx\.example\.test,S=%d" % (qid, a.st_size),
                        os.path.basename(demo[0])), demo
    assert re.fullmatch(r"\d+\.Q%sR1\.mx\.example\.test,S=%d" % (qid, a.st_size),
                        os.path.basename(other[0])), other
    with open(demo[0], "rb") as f:
        received, rest = split_received(f.read())
    assert rest == MSG
    assert b"id %s" % qid.encode() in received
    assert p.log_has("queue qid=%s event=delivered to=<demo@example.test> "
                     "mailbox=example.test/demo" % qid)
    assert p.log_has("queue qid=%s event=delivered to=<other@example.test> "
                     "mailbox=example.test/other" % qid)
    assert p.admin("queue", "list").stdout == "Mail queue is empty\n"


def test_an_unlinkable_mailbox_sends_the_message_through_the_queue(server):
    p = server
    with p.connect() as c:
        c.ehlo()
        c.send_message(MSG)                 # makes the Maildir
    new = os.path.join(p.maildir(DEMO), "new")
    assert len(os.listdir(new)) == 1
    os.chmod(new, 0o500)                    # store can no longer link there
    try:
        with p.connect() as c:
            c.ehlo()
            qid = c.send_message(MSG)
        assert p.log_has("queue qid=%s event=queued-for-delivery "
                         "mailbox=example.test/demo reason=\"Permission denied\"" % qid)
        # delivery from the queue meets the same error and keeps it
        assert p.log_has("queue qid=%s event=deferred to=<demo@example.test> "
                         "error=\"Permission denied\"" % qid)
        assert spool(p, "queue") == [qid]
        assert len(os.listdir(new)) == 1
    finally:
        os.chmod(new, 0o700)
    assert p.admin("queue", "flush").stdout == "1 message scheduled now\n"
    msgs = p.wait_messages(2)
    assert p.log_has("queue qid=%s event=removed" % qid)
    # the queued file's envelope and trailer stayed out of the mailbox
    for m in msgs:
        assert split_received(m)[1] == MSG
    for path in new_files(p, DEMO):
        assert os.stat(path).st_nlink == 1


def test_at_commit_no_queues_every_message_first(make_server):
    p = make_server(extra_config="[delivery]\nat_commit = no\n")
    with p.connect() as c:
        c.ehlo()
        qid = c.send_message(MSG)
    assert p.log_has("queue qid=%s event=removed" % qid)
    msgs = p.wait_messages(1)
    assert split_received(msgs[0])[1] == MSG
    assert os.stat(new_files(p, DEMO)[0]).st_nlink == 1
    # a reload to yes: the next one is in new/ by its 250
    with open(p.conf) as f:
        text = f.read()
    with open(p.conf, "w") as f:
        f.write(text.replace("at_commit = no", "at_commit = yes"))
    p.admin("reload")
    with p.connect() as c:
        c.ehlo()
        qid = c.send_message(MSG)
        assert len(new_files(p, DEMO)) == 2
    assert not p.log_has("queue qid=%s event=removed" % qid, timeout=0.5)
