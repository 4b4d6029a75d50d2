"""
A private clamd for the end-to-end tests of R4.5: Debian's clamd
(clamav-daemon) with a clamd.conf of its own in a temporary directory,
in the foreground, on a unix socket in that directory, over a database
directory that holds only the two test signatures written here:

- EICAR_NAME: the EICAR test string (an .ndb body signature), anywhere
  in what clamd scans;
- CUSTOM_NAME: the MD5 of CUSTOM_PAYLOAD (an .hdb signature), which
  matches only once clamd has decoded the file out of its MIME part.

Never the public database, never freshclam, no network.  clamd names
signatures from a database of its own with ".UNOFFICIAL" appended, and
the names below include that.

    with Clamd() as av:
        conf = "[antivirus]\\nclamd = %s\\n" % av.socket
        ...
        av.stop()          # clamd down (the socket goes with it)

Only the process started here is ever signalled, by its PID, and every
wait is bounded.
"""
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

CLAMD = "/usr/sbin/clamd"

# Built from two halves, so that this file itself is no EICAR file.
EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$"
         + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")
EICAR_NAME = "Eicar-Test-Signature.UNOFFICIAL"

CUSTOM_PAYLOAD = b"".join(b"postino antivirus test attachment %04d\n" % i
                          for i in range(64))
CUSTOM_NAME = "Postino.Test.Custom-1.UNOFFICIAL"


class ClamdError(Exception):
    pass


def ping(path, timeout=1.0):
    """True when a clamd answers zPING on the unix socket path."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(b"zPING\0")
            return s.recv(16) == b"PONG\0"
    except OSError:
        return False


class Clamd:
    """
    stream_max: clamd's StreamMaxLength (e.g. "1K"); its default is 25M.
    """

    def __init__(self, stream_max=None):
        self.stream_max = stream_max
        self.dir = None
        self.proc = None

    @property
    def socket(self):
        """The [antivirus] clamd value: the socket's path."""
        return os.path.join(self.dir, "clamd.sock")

    @property
    def log_path(self):
        return os.path.join(self.dir, "clamd.log")

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _write(self, name, text, mode=0o644):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def _setup(self):
        self.dir = tempfile.mkdtemp(prefix="postino-clamd-")
        # The store role, as "postino" when the tests run as root, must
        # reach the socket (LocalSocketMode 666 below).
        os.chmod(self.dir, 0o755)
        os.mkdir(os.path.join(self.dir, "db"))
        os.mkdir(os.path.join(self.dir, "tmp"))
        self._write("db/postino-test.ndb",
                    "Eicar-Test-Signature:0:*:%s\n" % EICAR.hex())
        self._write("db/postino-test.hdb", "%s:%d:Postino.Test.Custom-1\n" % (
            hashlib.md5(CUSTOM_PAYLOAD).hexdigest(), len(CUSTOM_PAYLOAD)))
        conf = [
            "Foreground yes",
            "LocalSocket %s" % self.socket,
            "LocalSocketMode 666",
            "FixStaleSocket yes",
            "DatabaseDirectory %s" % os.path.join(self.dir, "db"),
            "TemporaryDirectory %s" % os.path.join(self.dir, "tmp"),
            "LogFile %s" % self.log_path,
            "LogTime yes",
            "LogVerbose yes",
            "SelfCheck 0",
            "MaxThreads 4",
            "Bytecode no",
        ]
        if self.stream_max:
            conf.append("StreamMaxLength %s" % self.stream_max)
        self.conf_path = self._write("clamd.conf", "\n".join(conf) + "\n")

    def start(self, timeout=30.0):
        if not os.access(CLAMD, os.X_OK):
            raise ClamdError("%s not found: install clamav-daemon "
                             "(sh scripts/install-deps.sh)" % CLAMD)
        if self.dir is None:
            self._setup()
        with open(os.path.join(self.dir, "clamd.out"), "a") as out:
            self.proc = subprocess.Popen(
                [CLAMD, "--config-file=%s" % self.conf_path],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                close_fds=True, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                raise ClamdError("clamd exited at start:\n%s" % self.log())
            if ping(self.socket):
                return self
            time.sleep(0.1)
        self._kill()
        raise ClamdError("clamd not ready after %.0fs:\n%s"
                         % (timeout, self.log()))

    def _kill(self, timeout=10.0):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        self.proc = None

    def stop(self):
        """SIGTERM by PID and wait (bounded): clamd is down, its files
        stay until cleanup()."""
        self._kill()

    def cleanup(self):
        self._kill()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.cleanup()
