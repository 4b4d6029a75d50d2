"""
make install (README "Installing"): every file lands where the README
says, with sane modes, and nothing else; each manual page renders with
no warning; postino-admin(8) names every command of the admin table;
the systemd unit passes systemd-analyze verify.  The install runs
`make install-files`, which copies what $POSTINO_BUILD holds without
building, into a temporary DESTDIR.
"""
import filecmp
import glob
import os
import re
import shutil
import stat
import subprocess
import tempfile

import pytest

from conftest import ADMIN, BUILD, ROOT

PREFIX = "/usr"
SBIN = {"postino": "postino", "postino-admin": "postino-admin",
        "postino-sendmail": "sendmail"}     # installed name: build name
MANS = ["man1/postino-sendmail.1", "man5/postino.conf.5", "man8/postino.8",
        "man8/postino-admin.8"]
UNIT = "lib/systemd/system/postino.service"
DOCS = (["postino.conf.example", "README.md"] +
        sorted(os.path.basename(p)
               for p in glob.glob(os.path.join(ROOT, "docs", "*.md"))))


def make(*args):
    """Run make in the tree, without the MAKEFLAGS of a make test above."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    return subprocess.run(["make", "--no-print-directory", "-C", ROOT,
                           "B=" + BUILD, "PREFIX=" + PREFIX] + list(args),
                          capture_output=True, text=True, timeout=120,
                          env=env)


def install(destdir):
    r = make("install-files", "DESTDIR=" + destdir)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


@pytest.fixture(scope="module")
def dest():
    d = tempfile.mkdtemp(prefix="postino-install-")
    install(d)
    yield d
    shutil.rmtree(d)


def under(dest, rel):
    return os.path.join(dest, PREFIX.lstrip("/"), rel)


def expected(dest):
    """Every installed file and its mode."""
    files = {under(dest, "sbin/" + n): 0o755 for n in SBIN}
    files.update({under(dest, "share/man/" + m): 0o644 for m in MANS})
    files[under(dest, UNIT)] = 0o644
    files.update({under(dest, "share/doc/postino/" + d): 0o644
                  for d in DOCS})
    return files


def test_every_file_where_documented_and_nothing_else(dest):
    want = expected(dest)
    got = {}
    for top, dirs, files in os.walk(dest):
        for d in dirs:
            mode = stat.S_IMODE(os.stat(os.path.join(top, d)).st_mode)
            assert mode == 0o755, (os.path.join(top, d), oct(mode))
        for f in files:
            st = os.lstat(os.path.join(top, f))
            assert stat.S_ISREG(st.st_mode), f
            got[os.path.join(top, f)] = stat.S_IMODE(st.st_mode)
    assert got == want
    # Never /etc, never a sendmail that would shadow another MTA's.
    assert not os.path.exists(os.path.join(dest, "etc"))
    assert not os.path.exists(under(dest, "sbin/sendmail"))


def test_installed_programs_are_the_built_ones(dest):
    for name, built in SBIN.items():
        assert filecmp.cmp(under(dest, "sbin/" + name),
                           os.path.join(BUILD, built), shallow=False), name
    r = subprocess.run([under(dest, "sbin/postino")], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 2 and r.stderr.startswith("usage: postino")


def test_example_config_and_docs_are_the_tree_s(dest):
    doc = under(dest, "share/doc/postino/")
    assert filecmp.cmp(doc + "postino.conf.example",
                       os.path.join(ROOT, "etc", "postino.conf.example"),
                       shallow=False)
    r = subprocess.run([under(dest, "sbin/postino"), "-c",
                        doc + "postino.conf.example", "check-config"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr


def test_unit_runs_the_installed_binary(dest):
    with open(under(dest, UNIT)) as f:
        unit = f.read()
    lines = unit.splitlines()
    assert "ExecStart=%s/sbin/postino -c /etc/postino/postino.conf" \
        % PREFIX in lines
    assert "ExecReload=/bin/kill -HUP $MAINPID" in lines
    assert "Type=simple" in lines and "Restart=on-failure" in lines
    assert not [l for l in lines
                if "/usr/local" in l and not l.startswith("#")]
    # No User=: postino starts as root and drops privileges itself.
    assert not any(l.startswith(("User=", "DynamicUser=")) for l in lines)


@pytest.mark.parametrize("page", MANS)
def test_man_page_renders_without_warnings(dest, page):
    path = under(dest, "share/man/" + page)
    r = subprocess.run(["groff", "-man", "-ww", "-z", path],
                       capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    if shutil.which("man") is None:
        return      # groff-base without man-db: groff has checked it
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    r = subprocess.run(["man", "--warnings=all", "-l", path],
                       capture_output=True, text=True, timeout=30, env=env)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    name = os.path.basename(page).rsplit(".", 1)[0]
    assert r.stdout.startswith(name.upper() + "(" + page[3]), r.stdout[:80]
    assert "\nNAME\n" in r.stdout and "\nSEE ALSO\n" in r.stdout


def roff_text(path):
    """The page's source without font escapes, \\- as -."""
    with open(path) as f:
        text = f.read()
    return re.sub(r"\\f[BIRP]", "", text).replace("\\-", "-")


def test_admin_page_names_every_command():
    r = subprocess.run([ADMIN], capture_output=True, text=True, timeout=20)
    assert r.returncode == 2
    cmds = [l.split()[:2] for l in r.stderr.splitlines()
            if l.startswith("  ")]
    assert len(cmds) > 30, r.stderr
    text = roff_text(os.path.join(ROOT, "man", "postino-admin.8"))
    for words in cmds:
        cmd = " ".join(w for w in words if not w.startswith("-"))
        assert re.search(r"^%s(\s|$)" % re.escape(cmd), text, re.M), \
            "postino-admin.8 lacks '%s'" % cmd


def test_unit_verifies(dest, tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (package systemd): "
                    "the unit is not verified")
    # verify wants ExecStart to exist: point it into DESTDIR.
    with open(under(dest, UNIT)) as f:
        unit = f.read().replace(PREFIX + "/sbin/",
                                under(dest, "sbin/"))
    path = tmp_path / "postino.service"
    path.write_text(unit)
    env = dict(os.environ, MANPATH=under(dest, "share/man"))
    r = subprocess.run(["systemd-analyze", "verify", str(path)],
                       capture_output=True, text=True, timeout=60,
                       env=env, cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "postino.service" not in r.stdout + r.stderr, r.stdout + r.stderr


def test_uninstall_removes_every_file(tmp_path):
    d = str(tmp_path / "root")
    install(d)
    r = make("uninstall", "DESTDIR=" + d)
    assert r.returncode == 0, r.stdout + r.stderr
    left = [os.path.join(t, f) for t, _, fs in os.walk(d) for f in fs]
    assert left == []
