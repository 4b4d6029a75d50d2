"""
A private PostgreSQL cluster for the end-to-end tests of the shared
account store ([store] driver = postgres, R7.2): initdb in a temporary
directory, the server on 127.0.0.1 and a free port with its Unix socket
in that directory, never the system's cluster.  Standard library only.

    from pg import PgCluster, pg_missing

    if pg_missing():
        pytest.skip(pg_missing())
    with PgCluster() as pg:
        dsn = pg.create_db("one")   # "host=127.0.0.1 port=P dbname=one ..."
        rows = pg.sql("one", "SELECT count(*) FROM accounts")

PostgreSQL refuses to run as root, so as root the cluster belongs to
the "postgres" user the Debian package creates (or "nobody").  Access
is "trust" (initdb -A trust): the cluster only listens on loopback and
its socket directory is private.  Only the server started here is ever
signalled, by its PID.
"""
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

from procs import free_port, wait_pid_gone


def pg_bindir():
    """The newest /usr/lib/postgresql/N/bin holding initdb, or None."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                  key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return os.path.dirname(dirs[-1]) if dirs else None


def pg_missing():
    """Why no private cluster can run here, or None when one can."""
    if pg_bindir() is None:
        return ("PostgreSQL server not installed (no /usr/lib/postgresql/*/bin/"
                "initdb): run scripts/install-deps.sh as root")
    if shutil.which("psql") is None:
        return "psql not installed: run scripts/install-deps.sh as root"
    return None


def _owner():
    """The user the cluster runs as: ourselves, or an unprivileged one as root."""
    if os.getuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    raise RuntimeError("no unprivileged user to run PostgreSQL as")


class PgCluster:
    def __init__(self):
        self.bindir = pg_bindir()
        self.dir = tempfile.mkdtemp(prefix="postino-pg-")
        self.data = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "postgres.log")
        self.port = None
        self.proc = None
        self.owner = _owner()
        if self.owner is not None:
            os.chown(self.dir, self.owner.pw_uid, self.owner.pw_gid)
        os.chmod(self.dir, 0o700)

    def _demote(self):
        if self.owner is not None:
            os.setgid(self.owner.pw_gid)
            os.setgroups([])
            os.setuid(self.owner.pw_uid)

    def _run(self, args, **kw):
        return subprocess.run(args, preexec_fn=self._demote, capture_output=True,
                              text=True, timeout=120, cwd=self.dir, **kw)

    def start(self, timeout=30.0):
        r = self._run([os.path.join(self.bindir, "initdb"), "-A", "trust", "-U",
                       "postgres", "-E", "UTF8", "--no-locale", "-D", self.data])
        if r.returncode != 0:
            raise RuntimeError("initdb failed: %s%s" % (r.stdout, r.stderr))
        self.port = free_port()
        return self.resume(timeout)

    def resume(self, timeout=30.0):
        """Start the server (again, after pause(), on the same port)."""
        log = open(self.log_path, "ab")
        try:
            # fsync off: a test cluster; the tests never crash the host
            self.proc = subprocess.Popen(
                [os.path.join(self.bindir, "postgres"), "-D", self.data,
                 "-k", self.dir, "-h", "127.0.0.1", "-p", str(self.port),
                 "-c", "fsync=off", "-c", "max_connections=200",
                 "-c", "shared_buffers=16MB"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                preexec_fn=self._demote, start_new_session=True, cwd=self.dir)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited with %s:\n%s"
                                   % (self.proc.returncode, self.read_log()))
            r = self._psql("postgres", "SELECT 1")
            if r.returncode == 0:
                return self
            time.sleep(0.1)
        raise RuntimeError("postgres not ready after %.0f s:\n%s"
                           % (timeout, self.read_log()))

    def read_log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _psql(self, db, sql, quiet=True, stdin=None):
        """psql on database db: sql, or the script on stdin when sql is None."""
        return subprocess.run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                               "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                               "-d", db] + (["-q"] if quiet else []) +
                              (["-c", sql] if sql is not None else ["-f", "-"]),
                              input=stdin, capture_output=True, text=True, timeout=60)

    def sql(self, db, sql):
        """Rows of sql on database db, each a list of text columns."""
        r = self._psql(db, sql)
        if r.returncode != 0:
            raise RuntimeError("psql %s: %s" % (sql, r.stderr))
        return [line.split("|") for line in r.stdout.splitlines() if line]

    def sql_status(self, db, sql):
        """(rows, rowcount) of sql; rowcount is None for a SELECT."""
        r = self._psql(db, sql, quiet=False)
        if r.returncode != 0:
            raise RuntimeError("psql %s: %s" % (sql, r.stderr))
        lines = [line for line in r.stdout.splitlines() if line]
        words = lines[-1].split() if lines else []
        if words and words[0] in ("INSERT", "UPDATE", "DELETE") and words[-1].isdigit():
            return [line.split("|") for line in lines[:-1]], int(words[-1])
        return [line.split("|") for line in lines], None

    def sql_many(self, db, queries):
        """The rows of each query, in one psql run: a list of lists."""
        script = "".join("SELECT '#%d';\n%s;\n" % (i, q) for i, q in enumerate(queries))
        r = self._psql(db, None, stdin=script)
        if r.returncode != 0:
            raise RuntimeError("psql: %s" % r.stderr)
        out = []
        for line in r.stdout.splitlines():
            if line.startswith("#") and line[1:].isdigit():
                out.append([])
            elif line:
                out[-1].append(line.split("|"))
        return out

    def dsn(self, db):
        return "host=127.0.0.1 port=%d dbname=%s user=postgres" % (self.port, db)

    def create_db(self, name):
        """A new empty database; its libpq connection string."""
        self.sql("postgres", 'CREATE DATABASE "%s"' % name)
        return self.dsn(name)

    def stop(self, timeout=15.0):
        self.pause(timeout)
        shutil.rmtree(self.dir, ignore_errors=True)

    def pause(self, timeout=15.0):
        """Stop the server, keeping its data for resume()."""
        if self.proc is not None and self.proc.poll() is None:
            # SIGINT: "fast" shutdown, which ends the clients' sessions
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
            wait_pid_gone(self.proc.pid, timeout)
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
