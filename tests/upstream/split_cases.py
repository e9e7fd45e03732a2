#!/usr/bin/env python3
"""Split rtpengine's daemon test scripts into one runnable Perl script per case.

The upstream suite (t/auto-daemon-tests*.pl, fetched at test time, never
stored in this repository) is one long Perl script per file: a preamble that
starts the daemon (`autotest_start(...)`) and defines helpers, then a series
of cases, each beginning with a top-level `new_call`.  This tool cuts a file
into preamble + cases, classifies every case as plain-relay or not, and writes
`<preamble><case>done_testing();` scripts so each case runs against its own
fresh daemon.

A case is a top-level statement starting with `new_call` (optionally as
`(...) = new_call(...)`, where newer suites may break the line after the
`=`), and runs until the next one.  A top-level
`if (...) { ... }` block that itself contains a `new_call` (the AMR blocks,
only enabled on the upstream author's machine) becomes its own segment and
is always excluded.  Braces are counted outside heredoc bodies, strings and
comments, so `new_call` lines nested in blocks never start a case.

Selection criteria (conservative: a case is excluded when ANY rule matches;
rules are applied to the Perl code of the case, with heredoc bodies and the
title arguments of offer/answer/rtpe_req removed, unless marked SDP):

  srtp         SDES / DTLS / OSRTP / DTLS-fingerprint / DTLS-reverse keys,
               srtp_* helpers, 'pad crypto'; SDP: a=crypto, RTP/SAVP(F),
               UDP/TLS, a=fingerprint, a=setup, a=tls-id, CRYPTO*/FINGERPRINT
               placeholders.  Waived (with `protocol`) for SDES cases that
               only check signalling: no srtp_snd/srtp_rcv, no DTLS other
               than off and no DTLS line in an expected output that no input
               had; and for the SDES cases with SRTP packets listed by title
               in SRTP_PACKET_CASES (checked one by one)
  ice          any ICE value other than 'remove'/'default', ICE-lite, trickle ICE,
               STUN helpers (stun_req/stun_succ/NGCP::Rtpclient::ICE);
               SDP: ICE placeholders (ICEBASE/ICEUFRAG/ICEPWD) or
               a=candidate / a=ice-* / a=end-of-candidates in an expected
               output (candidates rtpengine generates itself).  Waived, with
               srtp and protocol, for the ICE/DTLS cases listed by title in WEBRTC_CASES
               (checked one by one)
  transcode    transcode, codec dict keys other than strip (mask, offer, set,
               accept, consume, except), codec-* flags other than
               codec-strip-*, always-transcode, single/symmetric/asymmetric/
               reorder codecs, allow-transcoding; SDP: an expected output
               naming a codec (rtpmap or static payload type) that no input
               SDP of the case offered
  dtmf         any DTMF keyword (inject DTMF, play/block DTMF)
  ptime        ptime / ptime-reverse request keys (repacketisation)
  player       play media, block/unblock/silence media, start/stop
               forwarding, blob, the embedded wav file
  recording    record-call, start/stop recording, any 'record'
  t38          T.38 keys and the T38 word in code; SDP: udptl in an expected
               output that no input had
  cn           silence / CN / comfort noise handling
  protocol     transport-protocol / transport protocol (profile translation)
  label        label, subscribe/publish, JSON mode
  amr          the $amr_tests conditional blocks
  jitter       jitter buffer / delay buffer keys
  command      any rtpe_req() command other than delete and statistics, and
               the create()/create_answer() helpers of newer suites
  extmap       extmap => { mask / strip } (RTP header extensions rewritten in
               the packets); checked before the transcode rule, whose codec
               keys (mask, ...) it shares
  bundle       bundle => [...] (BUNDLE: several m= lines on one port)

Usage:
  split_cases.py --src DIR --out DIR [--file NAME:PREFIX ...]

Writes OUT/cases/<id>.pl for every case (selected or not) and
OUT/manifest.tsv with columns: id, selected (1/0), file:line, title,
reasons (comma-separated; empty when selected).
"""

import argparse
import os
import re
import sys

DEFAULT_FILES = [
    ("auto-daemon-tests.pl", "main"),
    ("auto-daemon-tests-intfs.pl", "intfs"),
    ("auto-daemon-tests-heuristic.pl", "heuristic"),
    # Files that upstream added after 10.5 (none of them exists at the 10.5
    # tags, so the 10.5 runs are unchanged), holding cases that can be plain
    # relay: SDP and o= manipulations, the rtpp-flags string, asymmetric
    # latching, RTP header extensions passed through, interface aliases and
    # the create/transform commands (the last two excluded case by case).
    # Not split: files that start the daemon from one of the suite's config
    # files (templates, codec preferences, music on hold), or with the media
    # player, recording, jitter/delay buffer, DTX, EVS, MOS/RTP measurement,
    # Redis, kernel or HTTP-listener options, or that test SRTP/DTLS only.
    ("auto-daemon-tests-sdp-manipulations.pl", "sdpmanip"),
    ("auto-daemon-tests-sdp-orig-replacements.pl", "sdporig"),
    ("auto-daemon-tests-rtpp-flags.pl", "rtppflags"),
    ("auto-daemon-tests-unknown-fmtp.pl", "fmtp"),
    ("auto-daemon-tests-asymmetric.pl", "asym"),
    ("auto-daemon-tests-rtp-ext.pl", "rtpext"),
    ("auto-daemon-tests-bundle.pl", "bundle"),
    ("auto-daemon-tests-alias.pl", "alias"),
    ("auto-daemon-tests-create.pl", "create"),
    ("auto-daemon-tests-transform.pl", "transform"),
]

CASE_START = re.compile(r"^(?:my\s*)?(?:\([^)]*\)\s*=\s*)?new_call\b")
ASSIGN_ONLY = re.compile(r"^(?:my\s*)?\([^)]*\)\s*=\s*$")
NEW_CALL_CONT = re.compile(r"^\s*new_call\b")
BLOCK_START = re.compile(r"^(?:if|unless)\s*\(")
HEREDOC = re.compile(r"<<\s*~?\s*(?:\"(\w+)\"|'(\w+)'|([A-Za-z_]\w*))")
DONE_TESTING = re.compile(r"^\s*done_testing\s*(?:\(\s*\))?\s*;\s*$")

# Static RTP payload types (RFC 3551) as rtpengine names them in a=rtpmap.
STATIC_PT = {
    "0": "PCMU", "3": "GSM", "4": "G723", "5": "DVI4", "6": "DVI4",
    "7": "LPC", "8": "PCMA", "9": "G722", "10": "L16", "11": "L16",
    "12": "QCELP", "13": "CN", "14": "MPA", "15": "G728", "16": "DVI4",
    "17": "DVI4", "18": "G729", "25": "CelB", "26": "JPEG", "28": "nv",
    "31": "H261", "32": "MPV", "33": "MP2T", "34": "H263",
}

# RTP header extension manipulation (newer suites): its dict shares key names
# with the codec dict, so it is matched and removed before CODE_RULES.
EXTMAP_DICT = re.compile(r"\bextmap'?\s*=>\s*\{[^{}]*\}")

# (reason, regex) applied to the case's Perl code (heredoc bodies removed).
CODE_RULES = [
    ("srtp", r"\bSDES\b|\bDTLS\b|\bOSRTP\b|DTLS-fingerprint|DTLS-reverse|"
             r"\bsrtp_|pad.crypto|\bSAVPF?\b|\bcrypto\b"),
    ("ice", r"\bICE\s*=>\s*(?=\S)(?!['\"](?:remove|default)['\"])|ICE-lite|trickle.ICE|"
            r"stun_req|stun_succ|NGCP::Rtpclient::ICE"),
    ("transcode", r"transcod|\bcodec-(?!strip-)[a-z]+|"
                  r"\b(?:mask|offer|set|accept|consume|except)'?\s*=>|"
                  r"single.codec|symmetric.codecs|reorder.codecs"),
    ("dtmf", r"(?i)dtmf"),
    ("ptime", r"\bptime\b"),
    ("player", r"(?i)play.media|block.media|silence.media|"
               r"start.forwarding|stop.forwarding|\bblob\b|\$wav_file"),
    ("recording", r"(?i)record"),
    ("t38", r"T\.38|\bT38\b|(?i:\bt38\b)"),
    ("cn", r"(?i)silence|\bCN\b|comfort"),
    ("protocol", r"(?i)transport.protocol"),
    ("label", r"\blabel\b|subscribe|publish|use_json"),
    ("amr", r"\$amr_tests"),
    ("jitter", r"(?i)jitter|delay.buffer"),
    ("bundle", r"\bbundle'?\s*=>"),
    ("command", r"\bcreate(?:_answer)?\s*\("),
]

SDP_ANY_RULES = [
    ("srtp", r"a=crypto|RTP/SAVP|UDP/TLS|a=fingerprint|a=setup:|a=tls-id|"
             r"CRYPTO\d|FINGERPRINT"),
    ("ice", r"ICEBASE|ICEUFRAG|ICEPWD"),
]

SDP_EXPECTED_RULES = [
    ("ice", r"a=candidate|a=ice-|a=end-of-candidates"),
]

ALLOWED_COMMANDS = {"delete", "statistics"}

# SDES cases the relay handles in signalling alone: a case whose only reasons are srtp and/or
# protocol is selected when it sends no SRTP packets (srtp_snd/srtp_rcv: the per-packet
# transform), asks for no DTLS and expects no DTLS line that no input had (rtprelay offers none;
# an a=setup passed through on an MSRP section is fine).
SDES_PACKETS_OR_DTLS = re.compile(
    r"\bsrtp_(?:snd|rcv)\b|\bDTLS(?:-fingerprint|-reverse)?'?\s*=>(?!\s*['\"](?:off|no|disable)['\"])")
SDES_UNOFFERED_SDP = re.compile(r"a=fingerprint|a=setup:|a=tls-id|UDP/TLS|FINGERPRINT")

# SDES cases that send SRTP packets and that rtprelay was checked to pass one by one, by title
# (ids shift between tags, titles do not). They are selected whatever the rules say: the rules
# above cannot tell a packet check rtprelay passes from one it does not (e.g. "OSRTP offer,
# accept, same suite" expects SRTP passed through undecrypted under keys neither side offered).
SRTP_PACKET_CASES = {
    "RTP to SRTP switch (and SRTP re-invite)",
    "reg SRTP offer, accept, diff suite",
    "OSRTP offer, accept, diff suite",
    "OSRTP offer, reject w/ accept flag",
    "non-OSRTP offer with offer flag, accept",
    "non-OSRTP offer with offer flag and protocol, accept",
}

# ICE and DTLS cases checked one by one, by title: what they expect is the relay's handshake
# signalling (a=setup roles, DTLS-reverse, DTLS offered next to SDES on RTP/SAVP and what a re-offer keeps of it, trickle
# without ICE, ICE default/remove on plain SDP). The other ICE cases expect rtpengine's candidates on every address of an interface
# (IPv4 and IPv6) or its ICE=optional pass-through of the peer's candidates, which rtprelay
# does not do (tests/upstream/differences.md).
WEBRTC_CASES = {
    "trickle ICE test A no ICE",
    "trickle ICE test B no ICE",
    "DTLS-reverse not set",
    "DTLS-reverse set",
    "plain SDP, no ICE",
    "plain SDP, ICE default",
    "plain SDP, ICE removed",
    "GH 1086",
    "fingerprint selection",
}
# What a WEBRTC_CASES title waives; any other reason (transcoding, a command...) still excludes.
WEBRTC_WAIVED = ("ice", "srtp", "protocol")


class Segment:
    """A top-level slice of a test file: preamble, case or conditional block."""

    def __init__(self, kind, start):
        self.kind = kind  # "case" or "block"
        self.start = start  # 1-based line number of the first line
        self.lines = []


def strip_strings_and_comments(line):
    """Remove quoted strings and a trailing comment so braces can be counted."""
    out = []
    i = 0
    quote = None
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
            i += 1
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "#":
            # `$#array` is not a comment
            if not (i > 0 and line[i - 1] == "$"):
                break
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def scan(lines):
    """Yield (line, depth_before, in_heredoc) for every line."""
    depth = 0
    pending = []  # heredoc terminators opened on the current line
    terminator = None
    for line in lines:
        if terminator is not None:
            yield line, depth, True
            if line.rstrip("\n") == terminator:
                terminator = pending.pop(0) if pending else None
            continue
        yield line, depth, False
        code = strip_strings_and_comments(line.rstrip("\n"))
        for m in HEREDOC.finditer(line):
            pending.append(next(g for g in m.groups() if g))
        depth += code.count("{") - code.count("}")
        if pending:
            terminator = pending.pop(0)


def starts_case(lines, i):
    """True when lines[i] (at top level) begins a case.

    Either the line itself is `[my] [(...) =] new_call...`, or (newer suites)
    it is `(...) =` alone with `new_call` on the next non-blank line.
    """
    if CASE_START.match(lines[i]):
        return True
    if not ASSIGN_ONLY.match(lines[i]):
        return False
    for nxt in lines[i + 1:]:
        if nxt.strip():
            return bool(NEW_CALL_CONT.match(nxt))
    return False


def split_file(text):
    lines = text.splitlines(keepends=True)
    preamble = []
    segments = []
    current = None
    for lineno, (line, depth, in_doc) in enumerate(scan(lines), start=1):
        starts = not in_doc and depth == 0
        if starts and starts_case(lines, lineno - 1):
            current = Segment("case", lineno)
            segments.append(current)
        elif starts and BLOCK_START.match(line):
            current = Segment("block", lineno)
            segments.append(current)
        if current is None:
            preamble.append(line)
        else:
            current.lines.append(line)
    # A conditional block without a new_call is ordinary code of the case
    # before it; fold it back.
    merged = []
    for seg in segments:
        if seg.kind == "block" and not any("new_call" in l for l in seg.lines) and merged:
            merged[-1].lines.extend(seg.lines)
        else:
            merged.append(seg)
    # The file's own done_testing() belongs to no case: the runner adds one.
    for seg in merged:
        seg.lines = [l for l in seg.lines if not DONE_TESTING.match(l)]
    return "".join(preamble), merged


def code_and_heredocs(lines):
    code, docs, cur = [], [], None
    for line, _depth, in_doc in scan(lines):
        if in_doc:
            if cur is None:
                cur = []
                docs.append(cur)
            cur.append(line)
        else:
            cur = None
            code.append(line)
    return "".join(code), ["".join(d) for d in docs]


def sdp_codecs(sdp):
    """Codec names an SDP names: rtpmap encodings plus static m= payload types."""
    names = set()
    for m in re.finditer(r"^a=rtpmap:\d+\s+([^/\s]+)", sdp, re.M):
        names.add(m.group(1).upper())
    for m in re.finditer(r"^m=\S+\s+\S+\s+RTP/\S+\s+(.*)$", sdp, re.M):
        for pt in m.group(1).split():
            if pt in STATIC_PT:
                names.add(STATIC_PT[pt].upper())
    return names


TITLE_ARG = re.compile(
    r"""\b((?:offer|answer|publish)\(\s*|rtpe_req\(\s*(['"])[^'"]*\2\s*,\s*)(['"])(?:(?!\3).)*\3""")


def classify(seg):
    if seg.kind == "block":
        return ["amr" if "$amr_tests" in "".join(seg.lines) else "conditional-block"]
    code, docs = code_and_heredocs(seg.lines)
    # Case titles are prose ("two codecs, no transcoding"): never match on them.
    code = TITLE_ARG.sub(lambda m: m.group(1) + "''", code)
    reasons = []

    def add(r):
        if r not in reasons:
            reasons.append(r)

    if EXTMAP_DICT.search(code):
        add("extmap")
        code = EXTMAP_DICT.sub("", code)
    for reason, rx in CODE_RULES:
        if re.search(rx, code):
            add(reason)
    for cmd in re.findall(r"rtpe_req\(\s*['\"]([^'\"]+)['\"]", code):
        if cmd not in ALLOWED_COMMANDS:
            add("command")
    inputs, expected = [], []
    for doc in docs:
        parts = re.split(r"^-{3,}\s*$\n?", doc, flags=re.M)
        inputs.append(parts[0])
        expected.extend(parts[1:])
    every = "".join(docs)
    for reason, rx in SDP_ANY_RULES:
        if re.search(rx, every):
            add(reason)
    for reason, rx in SDP_EXPECTED_RULES:
        if any(re.search(rx, e) for e in expected):
            add(reason)
    offered = set()
    for i in inputs:
        offered |= sdp_codecs(i)
    if any(sdp_codecs(e) - offered for e in expected):
        add("transcode")
    if any("udptl" in e for e in expected) and not any("udptl" in i for i in inputs):
        add("t38")
    every_input = "".join(inputs)
    if (reasons and set(reasons) <= {"srtp", "protocol"}
            and not SDES_PACKETS_OR_DTLS.search(code)
            and not any(SDES_UNOFFERED_SDP.search(line) and line not in every_input
                        for e in expected for line in e.splitlines())):
        return []
    return reasons


def title_of(seg):
    text = "".join(seg.lines)
    m = re.search(r"\b(?:offer|answer|publish|rtpe_req)\(\s*(['\"])(.*?)\1", text)
    if m and m.group(0).startswith("rtpe_req"):
        m2 = re.search(r"rtpe_req\(\s*['\"][^'\"]*['\"]\s*,\s*(['\"])(.*?)\1", text)
        return m2.group(2) if m2 else m.group(2)
    return m.group(2) if m else "(untitled)"


FOOTER = "\n\ndone_testing();\n"

# Written between the preamble (which starts the daemon) and the case.  It
# only prints TAP comments, so it changes no outcome:
# - newer harnesses (those exporting rtpe_raw_req) no longer report their
#   start-up ping as an assertion; the runner needs to know whether the
#   daemon answered, to stop early when it never starts;
# - newer harnesses die (rather than exit) when an expected packet does not
#   arrive; the runner's explanation wants the line of the case that died.
GLUE = r"""
# ---- runner glue (only prints TAP comments) ----
if (defined &main::rtpe_raw_req) {
	my $pong = rtpe_raw_req({ command => 'ping' });
	my $up = ref($pong) eq 'HASH' && ($pong->{result} // '') eq 'pong';
	print "# runner: ping ", ($up ? "answered" : "not answered"), "\n";
}
{
	my $next = $SIG{__DIE__};
	$SIG{__DIE__} = sub {
		if (defined $^S && !$^S) {
			for (my $i = 0; my @frame = caller($i); $i++) {
				next unless $frame[1] eq __FILE__;
				my $msg = join('', @_);
				$msg =~ s/\s+\z//;
				$msg =~ s/\n/ /g;
				print "# runner: died at line $frame[2]: $msg\n";
				last;
			}
		}
		$next->(@_) if ref($next) eq 'CODE';
	};
}
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", required=True, help="unpacked rtpengine source tree")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--file", action="append", default=[],
                    help="NAME:PREFIX of a t/ file to split (default: main, intfs, heuristic)")
    args = ap.parse_args()

    files = [tuple(f.split(":", 1)) for f in args.file] or DEFAULT_FILES
    cases_dir = os.path.join(args.out, "cases")
    os.makedirs(cases_dir, exist_ok=True)
    rows = []
    for name, prefix in files:
        path = os.path.join(args.src, "t", name)
        if not os.path.exists(path):
            print(f"note: {name} not in this source tree, skipped", file=sys.stderr)
            continue
        with open(path, encoding="latin-1") as fh:
            text = fh.read()
        preamble, segments = split_file(text)
        if "autotest_start" not in preamble:
            print(f"error: {name}: no autotest_start() before the first case", file=sys.stderr)
            return 1
        for n, seg in enumerate(segments, start=1):
            cid = f"{prefix}-{n:03d}"
            title = title_of(seg).replace("\t", " ")
            reasons = [] if title in SRTP_PACKET_CASES else classify(seg)
            if title in WEBRTC_CASES:
                reasons = [r for r in reasons if r not in WEBRTC_WAIVED]
            script = os.path.join(cases_dir, cid + ".pl")
            with open(script, "w", encoding="latin-1") as out:
                out.write(preamble)
                out.write(GLUE)
                out.write(f"\n# ---- case {cid} ({name}:{seg.start}) ----\n")
                # A case may assign variables that an earlier case declared.
                out.write("no strict 'vars';\n")
                out.write("".join(seg.lines))
                out.write(FOOTER)
            rows.append((cid, "0" if reasons else "1", f"{name}:{seg.start}", title,
                         ",".join(reasons)))
    with open(os.path.join(args.out, "manifest.tsv"), "w", encoding="latin-1") as fh:
        for row in rows:
            fh.write("\t".join(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
