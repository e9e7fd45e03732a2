#!/usr/bin/env python3
"""Checks of split_cases.py, explain.py and compare_runs.py on small made-up inputs.

run.sh runs them before every suite run (a wrong split would silently change
which cases count); by hand: python3 tests/upstream/test_split_cases.py
"""

import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import compare_runs  # noqa: E402
import explain  # noqa: E402
import split_cases  # noqa: E402

PREAMBLE = "use strict;\nautotest_start(qw(-i 192.0.2.1)) or die;\nmy ($a, $b);\n\n"

SDP_PLAIN = "<<SDP);\nv=0\nm=audio 4000 RTP/AVP 0\n----\nv=0\nm=audio PORT RTP/AVP 0\nSDP\n"


def case(opts="{ }", head="new_call;\n"):
    return f"{head}offer('t', {opts}, {SDP_PLAIN}\n"


class Split(unittest.TestCase):
    def segments(self, body):
        _pre, segs = split_cases.split_file(PREAMBLE + body)
        return segs

    def test_assignment_broken_after_equals_starts_a_case(self):
        body = case() + case(head="($a, $b) =\n\tnew_call([qw(192.0.2.9 4000)]);\n")
        segs = self.segments(body)
        self.assertEqual(len(segs), 2)
        self.assertTrue(segs[1].lines[0].startswith("($a, $b) ="))

    def test_assignment_without_new_call_is_not_a_case(self):
        body = case() + "($a, $b) =\n\tfoo();\n"
        self.assertEqual(len(self.segments(body)), 1)

    def test_new_call_nc_inside_a_case_does_not_split(self):
        body = case() + "new_call_nc([qw(192.0.2.9 4000)]);\n"
        self.assertEqual(len(self.segments(body)), 1)

    def reasons(self, body):
        (seg,) = self.segments(body)
        return split_cases.classify(seg)

    def test_plain_case_is_selected(self):
        self.assertEqual(self.reasons(case()), [])

    def test_extmap_mask_is_extmap_not_transcode(self):
        self.assertEqual(self.reasons(case("{ extmap => { mask => ['x'] } }")), ["extmap"])

    def test_codec_mask_is_still_transcode(self):
        self.assertIn("transcode", self.reasons(case("{ codec => { mask => ['PCMA'] } }")))

    def test_bundle_key_is_excluded(self):
        self.assertEqual(self.reasons(case("{ bundle => ['accept'] }")), ["bundle"])

    def sdes_case(self, opts, out, tail=""):
        sdp = ("<<SDP);\nv=0\nm=audio 4000 RTP/AVP 0\n----\nv=0\nm=audio PORT RTP/SAVP 0\n"
               + out + "SDP\n")
        return self.reasons(f"new_call;\noffer('t', {opts}, {sdp}{tail}\n")

    def test_sdes_signalling_only_is_selected(self):
        opts = "{ 'transport-protocol' => 'RTP/SAVP', DTLS => 'off', SDES => ['no-X'] }"
        out = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:CRYPTO128\n"
        self.assertEqual(self.sdes_case(opts, out), [])

    def test_sdes_with_packets_or_dtls_is_not(self):
        crypto = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:CRYPTO128\n"
        f8 = "a=crypto:9 F8_128_HMAC_SHA1_80 inline:CRYPTO128\n"
        off = "{ DTLS => 'off' }"
        self.assertIn("srtp", self.sdes_case(off, crypto, "srtp_snd($a, 1, 2, 3);"))
        self.assertIn("srtp", self.sdes_case("{ DTLS => 'passive' }", crypto))
        # The relay offers the F8 suites as rtpengine does.
        self.assertEqual(self.sdes_case(off, crypto + f8), [])
        self.assertIn("srtp", self.sdes_case(off, crypto + "a=setup:actpass\n"))
        # Other reasons still count.
        self.assertIn("dtmf", self.sdes_case("{ DTLS => 'off', DTMF => 1 }", crypto))

    def test_srtp_packet_cases_are_selected_by_title(self):
        srtp = "srtp_snd($a, 1, 2, 3);\n"
        listed = "new_call;\noffer('reg SRTP offer, accept, diff suite', { }, " + SDP_PLAIN + srtp
        other = "new_call;\noffer('another SRTP case', { }, " + SDP_PLAIN + srtp
        with tempfile.TemporaryDirectory() as tmp:
            os.makedirs(os.path.join(tmp, "src", "t"))
            with open(os.path.join(tmp, "src", "t", "auto-daemon-tests.pl"), "w") as fh:
                fh.write(PREAMBLE + listed + other)
            out = os.path.join(tmp, "out")
            subprocess.run([sys.executable, split_cases.__file__, "--src", os.path.join(tmp, "src"),
                            "--out", out], check=True, capture_output=True)
            with open(os.path.join(out, "manifest.tsv")) as fh:
                rows = [line.rstrip("\n").split("\t") for line in fh]
        self.assertEqual([(r[0], r[1], r[4]) for r in rows],
                         [("main-001", "1", ""), ("main-002", "0", "srtp")])

    def test_create_helper_is_a_command(self):
        body = "new_call;\ncreate('t', { }, " + SDP_PLAIN
        self.assertEqual(self.reasons(body), ["command"])

    def test_scripts_carry_the_glue_after_the_preamble(self):
        with tempfile.TemporaryDirectory() as tmp:
            os.makedirs(os.path.join(tmp, "src", "t"))
            with open(os.path.join(tmp, "src", "t", "auto-daemon-tests.pl"), "w") as fh:
                fh.write(PREAMBLE + case())
            out = os.path.join(tmp, "out")
            subprocess.run([sys.executable, split_cases.__file__, "--src", os.path.join(tmp, "src"),
                            "--out", out], check=True, capture_output=True)
            with open(os.path.join(out, "cases", "main-001.pl")) as fh:
                script = fh.read()
        self.assertLess(script.index("autotest_start"), script.index("# runner: ping"))
        self.assertLess(script.index("# runner: died at line"), script.index("---- case main-001"))


class Explain(unittest.TestCase):
    def test_died_line_is_the_first_failure(self):
        tap = ["ok 1 - a", "# runner: died at line 12: error: recv timed out", "not ok 2 - b"]
        line, diag = explain.first_failure(tap)
        self.assertEqual(line, tap[1])
        self.assertEqual(diag, [])


class Compare(unittest.TestCase):
    def test_normalise_hides_ports_paths_and_loop_ids(self):
        a = compare_runs.normalise("m=audio 30012 RTP/AVP 0 /w/run/main-001/x.pl a=rtpengine:0123456789ab")
        b = compare_runs.normalise("m=audio 31020 RTP/AVP 0 /v/run/main-001/x.pl a=rtpengine:ba9876543210")
        self.assertEqual(a, b)

    def test_same_failure_as_the_reference(self):
        with tempfile.TemporaryDirectory() as tmp:
            for run, port in (("mine", 30012), ("ref", 31020)):
                d = os.path.join(tmp, run, "run", "main-001")
                os.makedirs(d)
                with open(os.path.join(d, "result"), "w") as fh:
                    fh.write("FAIL\t1\t1\t1\t1\t1\n")
                with open(os.path.join(d, "tap.log"), "w") as fh:
                    fh.write(f"ok 1 - a\nnot ok 2 - b\n#          got: '{port}'\n")
            out = subprocess.run([sys.executable, compare_runs.__file__, os.path.join(tmp, "mine"),
                                  os.path.join(tmp, "ref")], check=True, capture_output=True, text=True)
        self.assertIn("same-as-ref main-001", out.stdout)


if __name__ == "__main__":
    unittest.main()
