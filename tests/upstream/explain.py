#!/usr/bin/env python3
"""Summarise the first failing assertion in a case's TAP log.

For an SDP mismatch (Test::More `like` with the harness's whole-SDP regex),
print the first line where the daemon's SDP and the expectation differ,
instead of two full SDP dumps.  Anything else: the failing line and a few
lines of its diagnostics.

When the case died instead (newer harnesses die when an expected packet
does not arrive; the runner's glue prints where), print the message and,
given the case script, the statement at that line.

Usage: explain.py TAPLOG [CASE_SCRIPT]
"""

import re
import sys

PLACEHOLDERS = [
    (r"(\d{1,5})", "PORT"),
    (r"([0-9a-zA-Z]{16})", "ICEBASE"),
    (r"([0-9a-zA-Z]{8})", "ICEUFRAG"),
    (r"([0-9a-zA-Z]{26})", "ICEPWD"),
    (r"\d+ \d+", "SDP_VERSION"),
    (r"rtpengine-\S+", "RTPE_VERSION"),
]


DIED = re.compile(r"^# runner: died at line (\d+): (.*)$")


def first_failure(lines):
    """The first `not ok` or runner `died at` line and the `#` diagnostics after it."""
    for i, line in enumerate(lines):
        if DIED.match(line):
            return line, []
        if line.startswith("not ok "):
            diag = []
            for d in lines[i + 1:]:
                if not d.startswith("#"):
                    break
                diag.append(d[2:] if d.startswith("# ") else d[1:])
            return line, diag
    return None, []


def split_like(diag):
    """(got, regex) text of a failed `like`, or None."""
    text = "\n".join(diag)
    m = re.search(r"^\s*'(.*)'\n\s*doesn't match '\(\?\^s?:(.*)\)'\s*$", text, re.S | re.M)
    if not m:
        return None
    return m.group(1), m.group(2)


def readable(rx_line):
    for rx, name in PLACEHOLDERS:
        rx_line = rx_line.replace(rx, name)
    rx_line = re.sub(r"\((\[[^\]]*\]\{\d+\})\)", r"<\1>", rx_line)
    return re.sub(r"\\(.)", r"\1", rx_line)


def sdp_diff(got, regex):
    regex = regex.removeprefix("^")
    regex = regex.removesuffix("$")
    # quotemeta turns each newline into backslash-newline
    rx_lines = regex.split("\\\n")
    got_lines = got.split("\n")
    for n in range(max(len(rx_lines), len(got_lines))):
        g = got_lines[n] if n < len(got_lines) else None
        r = rx_lines[n] if n < len(rx_lines) else None
        if g is not None and r is not None:
            try:
                if re.fullmatch(r, g, re.S):
                    continue
            except re.error:
                if readable(r) == g:
                    continue
        out = [f"SDP line {n + 1}:"]
        out.append(f"  got      {g!r}" if g is not None else "  got      (no more lines)")
        out.append(f"  expected {readable(r)!r}" if r is not None else "  expected (no more lines)")
        return out
    return ["SDP lines all match one by one (difference in line ends?)"]


def script_line(path, lineno):
    """Line LINENO (1-based) of the case script, stripped, or None."""
    try:
        with open(path, encoding="latin-1") as fh:
            for n, text in enumerate(fh, start=1):
                if n == lineno:
                    return text.strip()
    except OSError:
        return None
    return None


def main():
    with open(sys.argv[1], encoding="utf-8", errors="replace") as fh:
        lines = fh.read().splitlines()
    line, diag = first_failure(lines)
    if line is None:
        return 1
    died = DIED.match(line)
    if died:
        print(f"died at line {died.group(1)} of the case: {died.group(2)}")
        statement = script_line(sys.argv[2], int(died.group(1))) if len(sys.argv) > 2 else None
        if statement:
            print(f"  {statement}")
        return 0
    print(line)
    parts = split_like(diag)
    if parts:
        for out in sdp_diff(*parts):
            print(out)
    else:
        for d in diag[:12]:
            print("# " + d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
