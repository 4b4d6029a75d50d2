"""R7.7: started as root, postino keeps root only in the parent; store
runs as 'postino', net as 'postino-net' chrooted into data_dir/empty."""
import os
import pwd

import pytest

from conftest import role_of


def status_ids(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return [int(x) for x in line.split()[1:]]
    raise AssertionError("no %s in /proc/%d/status" % (key, pid))


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().split(b"\0")


def roles(server):
    pids = server.pids()
    assert set(pids) == {"parent", "net", "store"}, pids
    for role in ("net", "store"):
        argv = cmdline(pids[role])
        assert any(role.encode() in a for a in argv), (role, argv)
    return pids


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_roles_users_as_root(server):
    pids = roles(server)
    assert status_ids(pids["parent"], "Uid") == [0, 0, 0, 0]
    store = pwd.getpwnam("postino")
    net = pwd.getpwnam("postino-net")
    assert status_ids(pids["store"], "Uid") == [store.pw_uid] * 4
    assert status_ids(pids["store"], "Gid") == [store.pw_gid] * 4
    assert status_ids(pids["net"], "Uid") == [net.pw_uid] * 4
    assert status_ids(pids["net"], "Gid") == [net.pw_gid] * 4
    # No supplementary group of root's left behind.
    for role, pw in (("store", store), ("net", net)):
        groups = status_ids(pids[role], "Groups")
        assert set(groups) <= {pw.pw_gid}, (role, groups)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_net_chroot_is_empty(server):
    pids = roles(server)
    empty = os.path.join(server.data_dir, "empty")
    assert os.readlink("/proc/%d/root" % pids["net"]) == empty
    assert os.listdir(empty) == []
    st = os.stat(empty)
    net = pwd.getpwnam("postino-net")
    assert st.st_uid != net.pw_uid and not (st.st_mode & 0o022), \
        "net's root must not be writable by net"
    assert os.readlink("/proc/%d/root" % pids["store"]) == "/"
    assert os.readlink("/proc/%d/root" % pids["parent"]) == "/"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_files_belong_to_postino(server):
    import smtplib
    with smtplib.SMTP("127.0.0.1", server.mx_port, timeout=10) as c:
        c.sendmail("sender@example.org", ["demo@example.test"], b"Subject: own\r\n\r\nx\r\n")
    server.wait_messages(1)
    store = pwd.getpwnam("postino")
    for path in (server.data_dir, server.store_file,
                 server.maildir(), os.path.join(server.maildir(), "new")):
        assert os.stat(path).st_uid == store.pw_uid, path
    for name in os.listdir(os.path.join(server.maildir(), "new")):
        assert os.stat(os.path.join(server.maildir(), "new", name)).st_uid == store.pw_uid


@pytest.mark.skipif(os.geteuid() == 0, reason="runs as root")
def test_roles_users_not_root(server):
    pids = roles(server)
    me = os.geteuid()
    for role, pid in pids.items():
        assert status_ids(pid, "Uid")[0] == me, role
        assert role_of(pid) in (None, "net", "store")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_data_dir_under_a_closed_directory():
    """A checkout under /root (mode 0700) with make run: the data
    directory sits below a directory the 'postino' user cannot enter.
    The admin tool and the store enter it as root first; the store's
    SQLite files must then open by their relative names."""
    import smtplib
    from conftest import DEMO, DOMAIN, Postino, _check_binaries, _finish
    _check_binaries()
    p = Postino()
    os.chmod(p.dir, 0o700)
    failed = True
    try:
        r = p.admin("domain", "add", DOMAIN, check=False)
        assert r.returncode == 0, r.stderr
        p.add_account(DEMO)
        assert "%s\n" % DOMAIN in p.admin("domain", "list").stdout
        p.start()
        with smtplib.SMTP("127.0.0.1", p.mx_port, timeout=10) as c:
            c.sendmail("sender@example.org", [DEMO], b"Subject: closed\r\n\r\nx\r\n")
        assert len(p.wait_messages(1)) == 1
        failed = False
    finally:
        _finish([p], failed)
