"""
The OpenSPF conformance suites for RFC 7208 and RFC 4408 (R4.3), run
through the SPF checker (src/mail/spf.c) by tests/spf/spf_driver, one
pytest case per suite case.

The suites are shared/testdata/spf, copied unchanged into tests/data/spf
so that a clean clone runs them too (README.md there says where they come
from and how a driver must read them).  They are read from the JSON
copies with the standard library; nothing in them is edited or skipped.
A case passes when the result is one of the case's results and, when the
case gives an explanation, the explanation is that text exactly (the
default explanation is "DEFAULT", as the suite's README asks).  Every
case also gets a well-formed Received-SPF field.

A case judged wrong would be marked xfail in XFAIL with the RFC text
that says why.  None is: all 203 RFC 7208 cases pass with their
preferred result, and every RFC 4408 case whose answer RFC 7208 changed
(mx-limit, the SPF type 99 records, multiple records, DNS errors) lists
the RFC 7208 answer among the results it accepts.
"""
import json
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data", "spf")
_build = os.environ.get("POSTINO_BUILD", "build")
BUILD = _build if os.path.isabs(_build) else os.path.join(ROOT, _build)
DRIVER = os.path.join(BUILD, "tests", "spf_driver")

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

# Cases judged wrong: {suite: {case: "RFC 7208 x.y: the text that says
# why"}}.  RFC 7208 is what the checker implements (SPEC R4.3).
XFAIL = {
    "rfc7208": {},
    "rfc4408": {},
}


def esc(s):
    """A driver field: the suite's text as the octets pyspf reads (latin-1)."""
    out = []
    for b in s.encode("latin-1"):
        c = chr(b)
        if c == "\\":
            out.append("\\\\")
        elif 0x20 <= b < 0x7f and c != "\t":
            out.append(c)
        else:
            out.append("\\x%02x" % b)
    return "".join(out)


def unesc(s):
    out, i = [], 0
    while i < len(s):
        if s[i] != "\\":
            out.append(s[i])
            i += 1
            continue
        c = s[i + 1]
        if c == "x":
            out.append(chr(int(s[i + 2:i + 4], 16)))
            i += 4
        else:
            out.append({"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}[c])
            i += 2
    return "".join(out)


def line(*fields):
    return "\t".join(esc(str(f)) for f in fields) + "\n"


def zone_lines(zonedata):
    """The zone as driver commands, each name's entries in suite order."""
    out = []
    for name, entries in zonedata.items():
        for e in entries:
            if e == "TIMEOUT":
                out.append(line("zone", name, "TIMEOUT"))
                continue
            ((rtype, value),) = e.items()
            if value in ("TIMEOUT", "NONE"):
                out.append(line("zone", name, value, rtype))
            elif rtype in ("TXT", "SPF"):
                strings = value if isinstance(value, list) else [value]
                out.append(line("zone", name, rtype, *strings))
            elif rtype == "MX":
                out.append(line("zone", name, "MX", value[0], value[1]))
            else:
                out.append(line("zone", name, rtype, value))
    return "".join(out)


def load(suite):
    with open(os.path.join(DATA, suite + "-tests.json"), encoding="ascii") as f:
        scenarios = json.load(f)
    params, seen = [], set()
    for sc in scenarios:
        zone = zone_lines(sc["zonedata"])
        for name, case in sc["tests"].items():
            assert name not in seen, "two cases named %s" % name
            seen.add(name)
            marks = []
            if name in XFAIL[suite]:
                marks.append(pytest.mark.xfail(reason=XFAIL[suite][name], strict=True))
            params.append(pytest.param(zone, case, id="%s/%s" % (suite, name), marks=marks))
    return params


CASES = load("rfc7208") + load("rfc4408")


def test_suite_sizes():
    """The README's figures: the whole suites are here."""
    n7208 = sum(1 for p in CASES if p.id.startswith("rfc7208/"))
    n4408 = sum(1 for p in CASES if p.id.startswith("rfc4408/"))
    assert (n7208, n4408) == (203, 191)


def check_header(hdr, result):
    assert hdr.startswith("Received-SPF: %s " % result), hdr
    assert hdr.endswith("\r\n"), hdr
    body = hdr[:-2]
    for i, c in enumerate(body):
        assert c == "\t" or 0x20 <= ord(c) < 0x7f or (
            body[i:i + 3] == "\r\n\t" or body[i - 1:i + 2] == "\r\n\t"), repr(hdr)
    for ln in body.split("\r\n"):
        assert len(ln) < 998


@pytest.mark.parametrize("zone, case", CASES)
def test_spf_case(zone, case):
    if not os.access(DRIVER, os.X_OK):
        pytest.fail("%s is not built (make %s)" % (DRIVER, os.path.relpath(DRIVER, ROOT)))
    stdin = zone + line("check", case["host"], case["mailfrom"], case["helo"])
    proc = subprocess.run([DRIVER, "-v"], input=stdin.encode("latin-1"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    err = proc.stderr.decode("latin-1")
    assert proc.returncode == 0, err
    assert not any(m in err for m in SANITIZER_MARKS), err
    out = proc.stdout.decode("latin-1").rstrip("\n").split("\t")
    assert len(out) == 5, out
    result, explanation, mechanism, problem, header = (unesc(f) for f in out)
    allowed = case["result"] if isinstance(case["result"], list) else [case["result"]]
    assert result in allowed, "got %s (%s%s), want %s; queries:\n%s" % (
        result, mechanism, problem, allowed, err)
    if "explanation" in case:
        assert explanation == case["explanation"], err
    check_header(header, result)
