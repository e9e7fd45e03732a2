#!/usr/bin/env python3
"""Compare two runs of the same suite, case by case and assertion by assertion.

Used to classify the failures of a newer upstream suite: run it against
rtprelay and against a reference daemon (Debian's rtpengine 10.5, the
behaviour rtprelay follows), both with `run.sh --keep DIR`, then

    compare_runs.py DIR_RTPRELAY DIR_REFERENCE

For every case that failed in the first run, it says whether each failing
assertion failed in the reference run too, with the same description and the
same received value (SDP or packet check; ports, temp paths and the
loop-protect id normalised).  A case whose failures all match is one where
the suite expects something that the reference does not do either: the
behaviour changed upstream after the reference.  The other cases need a look;
the first assertion that differs is printed.

Output, one line a case: `same-as-ref ID`, `ref-passes ID: ...` or
`differs ID: ...`; then counts.  Exit status 0.
"""

import os
import re
import sys

TAP = re.compile(r"^(not ok|ok) (\d+) - (.*)$")
DIED = re.compile(r"^# runner: died at line (\d+): (.*?)(?: at /\S+ line \d+\.?)?\s*$")


def normalise(text):
    text = re.sub(r"/\S*/(split|run)/\S*|/\S+\.p[lm]\b", "PATH", text)
    text = re.sub(r"\b\d{4,5}\b", "N", text)
    text = re.sub(r"rtpengine:[0-9a-f]{12}", "rtpengine:LOOPER", text)
    return re.sub(r"^#\s?", "", text, flags=re.M)


def assertions(path):
    """[(status, description, received)] of a TAP log, `died` entries included."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    out = []
    for i, line in enumerate(lines):
        died = DIED.match(line)
        if died:
            out.append(("died", "line " + died.group(1), normalise(died.group(2))))
            continue
        m = TAP.match(line)
        if not m:
            continue
        received = ""
        if m.group(1) == "not ok":
            diag = []
            for d in lines[i + 1:]:
                if not d.startswith("#"):
                    break
                diag.append(d)
            text = "\n".join(diag)
            like = re.search(r"^#\s+'(.*?)'\n#\s+doesn't match", text, re.S | re.M)
            got = re.search(r"got: (.*)", text)
            received = like.group(1) if like else (got.group(1) if got else "")
        out.append((m.group(1), normalise(m.group(3)), normalise(received)))
    return out


def verdicts(run_dir):
    """{case id: PASS/FAIL} from the result files of a kept run."""
    res = {}
    for cid in sorted(os.listdir(run_dir)):
        result = os.path.join(run_dir, cid, "result")
        if os.path.isfile(result):
            with open(result, encoding="utf-8") as fh:
                res[cid] = fh.read().split("\t", 1)[0]
    return res


def short(entry):
    if entry is None:
        return "(not reached)"
    status, desc, received = entry
    received = received.replace("\n", "|")
    return f"{status} {desc}" + (f" [{received[:160]}]" if received else "")


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    runs = [os.path.join(d, "run") if os.path.isdir(os.path.join(d, "run")) else d
            for d in sys.argv[1:]]
    mine, ref = verdicts(runs[0]), verdicts(runs[1])
    counts = {}
    for cid, verdict in mine.items():
        if verdict == "PASS":
            continue
        a = assertions(os.path.join(runs[0], cid, "tap.log")) or []
        b = assertions(os.path.join(runs[1], cid, "tap.log"))
        if b is None:
            kind, detail = "no-ref", "not run in the reference run"
        else:
            kind, detail = "same-as-ref", ""
            for n, entry in enumerate(a):
                if entry[0] == "ok":
                    continue
                other = b[n] if n < len(b) else None
                if other != entry:
                    kind = "ref-passes" if ref.get(cid) == "PASS" else "differs"
                    detail = f"#{n + 1}: {short(entry)}  reference: {short(other)}"
                    break
        counts[kind] = counts.get(kind, 0) + 1
        print(f"{kind} {cid}" + (f": {detail}" if detail else ""))
    print(", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no failed cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
