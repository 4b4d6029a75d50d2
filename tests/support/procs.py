"""
Processes and ports for the test and measurement scripts (e2e,
crashtest, bench): free loopback ports and the process trees of the
servers they start, read from /proc.  Standard library only, so that
scripts run without pytest can import it too.
"""
import os
import shutil
import socket
import subprocess
import time


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("State:"):
                    return "Z" not in line.split()[1]
    except OSError:
        return False
    return True


def wait_pid_gone(pid, timeout):
    """Wait until pid is gone; False if it is still there after timeout."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def children(pid):
    """The direct children of pid, from every thread of it."""
    out = []
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def tree(pid, bound=20000):
    """pid and its descendants, breadth first, at most bound of them."""
    out, todo, seen = [], [pid], set()
    while todo and len(out) < bound:
        p = todo.pop(0)
        if p in seen:
            continue
        seen.add(p)
        out.append(p)
        todo += children(p)
    return out


def private_master_cf(proto_path, port, smtpd_limit=None, drop=()):
    """
    A private Postfix instance's master.cf from the package's prototype:
    smtpd on 127.0.0.1:port (process limit smtpd_limit if given), no
    chroot (a private queue directory has no chroot files), and the pipe
    services and those named in drop left out.  Returns the text.
    """
    with open(proto_path) as f:
        proto = f.read().splitlines()
    out, skip = [], False
    for line in proto:
        if line.startswith("#") or not line.strip():
            continue
        if line[0] in " \t":
            if not skip:
                out.append(line)
            continue
        fl = line.split()
        skip = fl[7] == "pipe" or fl[0] in drop
        if skip:
            continue
        if fl[0] == "smtp" and fl[1] == "inet":
            fl[0] = "127.0.0.1:%d" % port
            if smtpd_limit is not None:
                fl[6] = str(smtpd_limit)
        fl[4] = "n"
        out.append("  ".join(fl))
    return "\n".join(out) + "\n"


def private_postfix_etc(etc, postconf):
    """Copies of postfix-files and friends in a private Postfix's etc
    (read by post-install when it creates the queue directories), so
    nothing under the system's meta_directory is written or
    re-permissioned.  Returns the system's meta_directory (its
    master.cf.proto is the private master.cf's template)."""
    sysmeta = subprocess.run([postconf, "-dh", "meta_directory"], capture_output=True,
                             text=True, timeout=30).stdout.strip() or "/etc/postfix"
    for name in ("postfix-files", "dynamicmaps.cf"):
        if os.path.exists(os.path.join(sysmeta, name)):
            shutil.copy(os.path.join(sysmeta, name), etc)
    for name in ("postfix-files.d", "dynamicmaps.cf.d"):
        os.mkdir(os.path.join(etc, name))
    return sysmeta
