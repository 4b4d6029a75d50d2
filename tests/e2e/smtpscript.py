"""
A small interpreter for OpenSMTPD's "smtpscript" regression grammar
(tests/data/smtpscript/README.md, a copy of the project's shared
testdata).  Standard library only.

    script = parse(text)            # -> Script(procs, cases)
    run_case(case, script.procs, connect)   # raises ScriptError

connect() must return a connected socket.  Every step is recorded in a
transcript ("C: ..." sent, "S: ..." received, "-- ..." notes) that the
ScriptError message carries, so a failure shows the exact dialog.
"""
import random
import re
import socket
import ssl
import time

IO_TIMEOUT = 10.0
DISCONNECT_TIMEOUT = 5.0


class ParseError(Exception):
    pass


class ScriptError(AssertionError):
    """A failed expectation; str() is the reason plus the transcript."""

    def __init__(self, reason, transcript):
        self.reason = reason
        self.transcript = list(transcript)
        AssertionError.__init__(self, "%s\n--- dialog ---\n%s" % (reason, "\n".join(_clip(self.transcript))))


def _clip(lines, head=25, tail=40):
    """Long dialogs (repeat 1000 ...): the start and the end."""
    if len(lines) <= head + tail + 1:
        return lines
    return lines[:head] + ["... %d lines ..." % (len(lines) - head - tail)] + lines[-tail:]


# --------------------------------------------------------------------
# Lexer and parser
# --------------------------------------------------------------------

_TOKEN = re.compile(r"""
      (?P<ws>[ \t\r]+)
    | (?P<nl>\n)
    | (?P<comment>\#[^\n]*)
    | (?P<string>"(?:[^"\\\n]|\\.)*")
    | (?P<brace>[{}])
    | (?P<number>\d+(?![A-Za-z_.-]))
    | (?P<word>[A-Za-z_][A-Za-z0-9_.-]*)
""", re.X)

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"'}


def _unquote(s, line):
    out = []
    i = 1
    while i < len(s) - 1:
        c = s[i]
        if c == "\\":
            n = s[i + 1]
            if n not in _ESCAPES:
                raise ParseError("line %d: unknown escape \\%s" % (line, n))
            out.append(_ESCAPES[n])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def tokenize(text):
    """[(kind, value, line)]; kinds: str, num, word, '{', '}', 'nl'."""
    toks = []
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ParseError("line %d: unexpected %r" % (line, text[pos:pos + 20]))
        kind = m.lastgroup
        val = m.group()
        if kind == "nl":
            toks.append(("nl", val, line))
            line += 1
        elif kind == "string":
            toks.append(("str", _unquote(val, line), line))
        elif kind == "brace":
            toks.append((val, val, line))
        elif kind == "number":
            toks.append(("num", int(val), line))
        elif kind == "word":
            toks.append(("word", val, line))
        pos = m.end()
    toks.append(("eof", None, line))
    return toks


class Case:
    def __init__(self, index, name, options, body, line):
        self.index = index              # 0-based position in its file
        self.name = name                # None when unnamed
        self.no_autoconnect = "no-autoconnect" in options
        self.expect_fail = "expect fail" in options
        self.skip = "skip" in options
        self.body = body                # list of statements
        self.line = line

    @property
    def label(self):
        return "%02d" % self.index + ("-" + self.name if self.name else "")

    def __repr__(self):
        return "Case(%s, line %d)" % (self.label, self.line)


class Script:
    def __init__(self, procs, cases):
        self.procs = procs              # {name: [statements]}
        self.cases = cases              # [Case]


class _Parser:
    def __init__(self, text):
        self.toks = tokenize(text)
        self.i = 0

    def peek(self, skip_nl=True):
        if skip_nl:
            while self.toks[self.i][0] == "nl":
                self.i += 1
        return self.toks[self.i]

    def next(self, skip_nl=True):
        t = self.peek(skip_nl)
        self.i += 1
        return t

    def want(self, kind, value=None, skip_nl=True):
        t = self.next(skip_nl)
        if t[0] != kind or (value is not None and t[1] != value):
            raise ParseError("line %d: expected %s, got %r" % (t[2], value or kind, t[1]))
        return t[1]

    def end_of_statement(self):
        t = self.peek(skip_nl=False)
        if t[0] in ("nl", "eof", "}"):
            return
        raise ParseError("line %d: junk after statement: %r" % (t[2], t[1]))

    def script(self):
        procs, cases = {}, []
        while True:
            kind, val, line = self.peek()
            if kind == "eof":
                return Script(procs, cases)
            if kind == "word" and val == "proc":
                self.next()
                name = self.want("word")
                if name in procs:
                    raise ParseError("line %d: proc %s defined twice" % (line, name))
                procs[name] = self.block()
            elif kind == "word" and val == "test-case":
                self.next()
                name, options = None, []
                while self.peek()[0] != "{":
                    k, v, l = self.next()
                    if k == "word" and v == "name":
                        name = self.want("str")
                    elif k == "word" and v in ("no-autoconnect", "skip"):
                        options.append(v)
                    elif k == "word" and v == "expect":
                        self.want("word", "fail")
                        options.append("expect fail")
                    else:
                        raise ParseError("line %d: unknown test-case option %r" % (l, v))
                cases.append(Case(len(cases), name, options, self.block(), line))
            else:
                raise ParseError("line %d: expected proc or test-case, got %r" % (line, val))

    def block(self):
        self.want("{")
        body = []
        while self.peek()[0] != "}":
            if self.peek()[0] == "eof":
                raise ParseError("unterminated block")
            body.append(self.statement())
        self.next()
        return body

    def statement(self):
        kind, val, line = self.next()
        if kind != "word":
            raise ParseError("line %d: expected a statement, got %r" % (line, val))
        if val in ("writeln", "write"):
            st = (val, self.want("str"))
        elif val == "call":
            st = ("call", self.want("word"))
        elif val == "expect":
            what = self.want("word")
            if what == "smtp":
                t = self.peek(skip_nl=False)
                cls = None
                if t[0] == "word" and t[1] in ("ok", "helo", "tempfail", "permfail"):
                    cls = self.next()[1]
                st = ("expect-smtp", cls)
            elif what == "disconnect":
                st = ("expect-disconnect",)
            else:
                raise ParseError("line %d: unknown expect %r" % (line, what))
        elif val in ("starttls", "tls"):
            st = ("starttls",)
        elif val == "connect":
            st = ("connect",)
        elif val == "sleep":
            st = ("sleep", self.want("num"))
        elif val == "repeat":
            n = self.want("num")
            if self.peek()[0] == "{":
                return ("repeat", n, self.block(), line)
            return ("repeat", n, [self.statement()], line)
        elif val == "random":
            return ("random", self.block(), line)
        else:
            raise ParseError("line %d: unknown statement %r" % (line, val))
        self.end_of_statement()
        return st + (line,)


def parse(text):
    return _Parser(text).script()


def parse_file(path):
    with open(path, encoding="utf-8") as f:
        return parse(f.read())


# --------------------------------------------------------------------
# Runner
# --------------------------------------------------------------------

class _Session:
    def __init__(self, connect, timeout=IO_TIMEOUT):
        self.connect_fn = connect
        self.timeout = timeout
        self.sock = None
        self.buf = b""
        self.log = []

    # -- transport ------------------------------------------------------

    def fail(self, reason):
        raise ScriptError(reason, self.log)

    def connect(self):
        if self.sock is not None:
            self.fail("connect: already connected")
        self.sock = self.connect_fn()
        self.sock.settimeout(self.timeout)
        self.buf = b""
        self.log.append("-- connected")

    def need_sock(self, what):
        if self.sock is None:
            self.fail("%s: not connected" % what)

    def send(self, data):
        self.need_sock("write")
        self.log.append("C: " + _show(data))
        try:
            self.sock.sendall(data)
        except OSError as e:
            self.fail("write failed: %r" % e)

    def _recv(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout()
        self.sock.settimeout(remaining)
        try:
            return self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return b""
        except ssl.SSLError as e:
            if "EOF" in str(e) or "UNEXPECTED_EOF" in str(e):
                return b""
            raise
        finally:
            self.sock.settimeout(self.timeout)

    def read_line(self, deadline):
        while True:
            eol = self.buf.find(b"\n")
            if eol != -1:
                line, self.buf = self.buf[:eol + 1], self.buf[eol + 1:]
                return line
            if len(self.buf) > 1 << 20:
                self.fail("reply line over 1 MiB")
            try:
                chunk = self._recv(deadline)
            except socket.timeout:
                self.fail("timeout (%.0fs) waiting for a reply; partial %r" % (self.timeout, self.buf))
            if not chunk:
                self.fail("connection closed while waiting for a reply; partial %r" % self.buf)
            self.buf += chunk

    def read_reply(self):
        """[(code, sep, text)] of one whole reply."""
        self.need_sock("expect smtp")
        deadline = time.monotonic() + self.timeout
        lines = []
        while True:
            raw = self.read_line(deadline)
            self.log.append("S: " + _show(raw))
            if not raw.endswith(b"\r\n"):
                self.fail("reply line not ended by CRLF: %r" % raw)
            line = raw[:-2].decode("utf-8", "replace")
            m = re.match(r"^([2-5][0-9][0-9])([ -]|$)(.*)$", line)
            if not m:
                self.fail("malformed reply line %r" % line)
            code, sep, text = m.group(1), m.group(2) or " ", m.group(3)
            if lines and code != lines[0][0]:
                self.fail("reply code changed inside a multi-line reply: %s then %s" % (lines[0][0], code))
            lines.append((code, sep, text))
            if sep == " ":
                return lines

    def expect_smtp(self, cls):
        lines = self.read_reply()
        code = lines[0][0]
        first = code[0]
        if cls is None:
            return
        want = {"ok": "23", "helo": "23", "tempfail": "4", "permfail": "5"}[cls]
        if first not in want:
            self.fail("expect smtp %s: got %s reply" % (cls, code))
        if cls != "helo" and len(lines) > 1:
            self.fail("expect smtp %s: got a %d-line reply, a single line is required"
                      % (cls, len(lines)))

    def expect_disconnect(self):
        self.need_sock("expect disconnect")
        if self.buf:
            self.log.append("S: " + _show(self.buf))
            self.fail("expect disconnect: unread input %r" % self.buf)
        deadline = time.monotonic() + DISCONNECT_TIMEOUT
        try:
            chunk = self._recv(deadline)
        except socket.timeout:
            self.fail("expect disconnect: connection still open after %.0fs" % DISCONNECT_TIMEOUT)
        if chunk:
            self.log.append("S: " + _show(chunk))
            self.fail("expect disconnect: got %r instead of the end of the connection" % chunk)
        self.log.append("-- disconnected")
        self.close()

    def starttls(self):
        self.need_sock("starttls")
        if self.buf:
            self.fail("starttls: unread input before the handshake %r" % self.buf)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            self.sock.settimeout(self.timeout)
            self.sock = ctx.wrap_socket(self.sock)
        except (OSError, ssl.SSLError) as e:
            self.fail("TLS handshake failed: %r" % e)
        self.log.append("-- TLS %s %s" % (self.sock.version(), self.sock.cipher()[0]))

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    # -- statements -------------------------------------------------------

    def run(self, body, procs, depth=0):
        if depth > 50:
            self.fail("call nesting too deep")
        for st in body:
            op = st[0]
            if op == "writeln":
                self.send(st[1].encode("utf-8") + b"\r\n")
            elif op == "write":
                self.send(st[1].encode("utf-8"))
            elif op == "call":
                if st[1] not in procs:
                    self.fail("call: no proc %r" % st[1])
                self.run(procs[st[1]], procs, depth + 1)
            elif op == "expect-smtp":
                self.expect_smtp(st[1])
            elif op == "expect-disconnect":
                self.expect_disconnect()
            elif op == "starttls":
                self.starttls()
            elif op == "connect":
                self.connect()
            elif op == "sleep":
                time.sleep(st[1] / 1000.0)
            elif op == "repeat":
                for _ in range(st[1]):
                    self.run(st[2], procs, depth)
            elif op == "random":
                if st[1]:
                    self.run([random.choice(st[1])], procs, depth)
            else:
                self.fail("unknown op %r" % (op,))


def _show(data):
    return repr(data)[2:-1] if isinstance(data, bytes) else str(data)


def run_case(case, procs, connect, timeout=IO_TIMEOUT):
    """Run one test-case; returns the transcript.  Raises ScriptError
    when it fails (or, for 'expect fail' cases, when it passes)."""
    s = _Session(connect, timeout)
    try:
        try:
            if not case.no_autoconnect:
                s.connect()
            s.run(case.body, procs)
        except ScriptError:
            if case.expect_fail:
                return s.log
            raise
        if case.expect_fail:
            s.fail("case marked 'expect fail' passed")
        return s.log
    finally:
        s.close()


# --------------------------------------------------------------------
# Rewriting (for variants built from the files without editing them)
# --------------------------------------------------------------------

def rewrite(body, procs, fn):
    """A copy of body with calls expanded inline and fn(statement) ->
    statement | list of statements applied to every leaf statement."""
    out = []
    for st in body:
        op = st[0]
        if op == "call":
            out += rewrite(procs[st[1]], procs, fn)
        elif op == "repeat":
            r = fn(st)
            if r is not st:
                out += r if isinstance(r, list) else [r]
                continue
            out.append(("repeat", st[1], rewrite(st[2], procs, fn), st[3]))
        elif op == "random":
            out.append(("random", rewrite(st[1], procs, fn), st[2]))
        else:
            r = fn(st)
            out += r if isinstance(r, list) else [r]
    return out
