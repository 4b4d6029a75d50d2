"""
R7.1: postino check-config reports file, line and key; the daemon
refuses to start on a bad file with the same message.
"""
import os
import subprocess
import tempfile

from conftest import POSTINO


def run(*args):
    return subprocess.run([POSTINO] + list(args), capture_output=True,
                          timeout=20, text=True)


def write(text):
    d = tempfile.mkdtemp(prefix="postino-conf-")
    path = os.path.join(d, "postino.conf")
    with open(path, "w") as f:
        f.write(text)
    return os.path.realpath(path)


GOOD = """hostname = mx.example.test
data_dir = data
[listener mx]
listen = 127.0.0.1:2525
profile = mx
"""


def test_check_config_ok():
    path = write(GOOD)
    r = run("-c", path, "check-config")
    assert (r.returncode, r.stdout, r.stderr) == (0, "%s: ok\n" % path, "")


def test_bad_value_names_file_line_and_key_and_start_refuses():
    path = write(GOOD + "[smtp]\nmax_recipients = lots\n")
    want = ("postino: %s:7: key 'max_recipients': 'lots' is not a number, "
            "expected an integer from 1 to 100000\n" % path)
    r = run("-c", path, "check-config")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", want)
    r = run("-c", path)                 # the daemon itself
    assert (r.returncode, r.stderr) == (1, want)


def test_unknown_key_and_missing_file():
    path = write(GOOD + "[smtp]\nmax_rcpt = 5\n")
    r = run("-c", path, "check-config")
    assert r.returncode == 1
    assert r.stderr == "postino: %s:7: unknown key 'max_rcpt' in section [smtp]\n" % path
    r = run("-c", path + ".missing", "check-config")
    assert r.returncode == 1 and "postino.conf.missing" in r.stderr


def test_usage():
    r = run()
    assert r.returncode == 2 and r.stderr.startswith("usage: postino -c FILE")


def test_config_reference_is_generated_from_the_table():
    """docs/config.md is what the key table says, never hand-edited."""
    from conftest import ADMIN, ROOT
    r = subprocess.run([ADMIN, "show", "config-doc"], capture_output=True,
                       timeout=20, text=True)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(ROOT, "docs", "config.md")) as f:
        assert f.read() == r.stdout, "run: build/postino-admin show config-doc > docs/config.md"


def test_config_man_page_is_generated_from_the_table():
    """man/postino.conf.5 is the same table in roff, never hand-edited."""
    from conftest import ADMIN, ROOT
    r = subprocess.run([ADMIN, "show", "config-man"], capture_output=True,
                       timeout=20, text=True)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(ROOT, "man", "postino.conf.5")) as f:
        assert f.read() == r.stdout, "run: build/postino-admin show config-man > man/postino.conf.5"
