#!/usr/bin/env python3
"""NG client for the image tests: ping, and a real call with RTP checked packet by packet.

Standard library only. Usage:
  ng_call.py ping HOST:PORT
  ng_call.py call HOST:PORT --local-ip IP [--sdp-ip IP] [--media-host IP] [--packets N]
"""
import argparse
import os
import random
import select
import socket
import struct
import sys
import time


# --- bencode ---------------------------------------------------------------

def bencode(value):
    """Encode str/bytes/int/list/dict (keys sorted, as rtpengine sends them)."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, (bytes, bytearray)):
        return b"%d:%s" % (len(value), bytes(value))
    if isinstance(value, (list, tuple)):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError("cannot bencode %r" % type(value))


class BencodeError(ValueError):
    pass


def bdecode(data):
    """Decode one bencoded value; byte strings come back as bytes."""
    value, end = _bdecode_at(data, 0)
    if end != len(data):
        raise BencodeError("trailing bytes after value")
    return value


def _bdecode_at(data, i):
    if i >= len(data):
        raise BencodeError("truncated")
    c = data[i:i + 1]
    if c == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1:end]), end + 1
    if c == b"l":
        i += 1
        out = []
        while data[i:i + 1] != b"e":
            v, i = _bdecode_at(data, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i += 1
        out = {}
        while data[i:i + 1] != b"e":
            k, i = _bdecode_at(data, i)
            v, i = _bdecode_at(data, i)
            out[k.decode() if isinstance(k, bytes) else k] = v
        return out, i + 1
    if c.isdigit():
        colon = data.index(b":", i)
        n = int(data[i:colon])
        start = colon + 1
        if start + n > len(data):
            raise BencodeError("string runs past the end")
        return data[start:start + n], start + n
    raise BencodeError("unexpected byte %r at %d" % (c, i))


# --- NG over UDP -----------------------------------------------------------

def split_hostport(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


class NgClient:
    def __init__(self, addr, timeout=2.0, retries=3):
        self.addr = addr
        self.timeout = timeout
        self.retries = retries
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)

    def request(self, message):
        cookie = ("%d_%d" % (os.getpid(), random.randrange(1 << 30))).encode()
        datagram = cookie + b" " + bencode(message)
        for _ in range(self.retries):
            self.sock.sendto(datagram, self.addr)
            deadline = time.monotonic() + self.timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                    break
                reply = self.sock.recv(65535)
                got_cookie, _, body = reply.partition(b" ")
                if got_cookie == cookie:
                    return _str_keys(bdecode(body))
        raise TimeoutError("no NG reply from %s:%d to %r" % (self.addr + (message.get("command"),)))


def _str_keys(value):
    if isinstance(value, dict):
        return {k: _str_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_str_keys(v) for v in value]
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value
    return value


# --- SDP and RTP -----------------------------------------------------------

def make_sdp(ip, port, session_id):
    return "\r\n".join([
        "v=0",
        "o=- %d 1 IN IP4 %s" % (session_id, ip),
        "s=rtprelay image test",
        "c=IN IP4 %s" % ip,
        "t=0 0",
        "m=audio %d RTP/AVP 0 8 101" % port,
        "a=rtpmap:101 telephone-event/8000",
        "a=sendrecv",
        "",
    ])


def media_target(sdp):
    """The (address, port) of the first audio stream in an SDP from the relay (media c= beats session c=)."""
    session_addr = media_addr = port = None
    for line in sdp.replace("\r\n", "\n").split("\n"):
        if line.startswith("m="):
            if port is not None:
                break
            if line.startswith("m=audio "):
                port = int(line.split()[1])
        elif line.startswith("c=IN IP"):
            if port is None:
                session_addr = line.split()[2]
            else:
                media_addr = line.split()[2]
    addr = media_addr or session_addr
    if addr is None or port is None:
        raise ValueError("no c=/m=audio in SDP:\n" + sdp)
    return addr, port


def rtp_packet(seq, ts, ssrc, pt, payload):
    return struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


# --- commands --------------------------------------------------------------

def cmd_ping(args):
    ng = NgClient(split_hostport(args.ng), timeout=args.timeout, retries=args.retries)
    reply = ng.request({"command": "ping"})
    if reply.get("result") != "pong":
        print("ping: unexpected reply %r" % reply)
        return 1
    print("ping: pong")
    return 0


def bind_even_pair(ip):
    """A socket on an even port whose odd neighbour is free too (RTP/RTCP convention)."""
    for _ in range(200):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((ip, 0))
        port = s.getsockname()[1]
        if port % 2 == 0:
            return s
        s.close()
    raise OSError("no even port free on %s" % ip)


def cmd_call(args):
    ng = NgClient(split_hostport(args.ng), timeout=args.timeout, retries=args.retries)
    sdp_ip = args.sdp_ip or args.local_ip
    a = bind_even_pair(args.local_ip)
    b = bind_even_pair(args.local_ip)
    call_id = "image-test-%d-%d" % (os.getpid(), random.randrange(1 << 30))
    from_tag, to_tag = "caller-tag", "callee-tag"
    flags = {"replace": ["origin", "session-connection"]}

    offer = ng.request(dict(flags, command="offer", sdp=make_sdp(sdp_ip, a.getsockname()[1], 1),
                            **{"call-id": call_id, "from-tag": from_tag}))
    if offer.get("result") != "ok" or "sdp" not in offer:
        print("offer failed: %r" % offer)
        return 1
    answer = ng.request(dict(flags, command="answer", sdp=make_sdp(sdp_ip, b.getsockname()[1], 2),
                             **{"call-id": call_id, "from-tag": from_tag, "to-tag": to_tag}))
    if answer.get("result") != "ok" or "sdp" not in answer:
        print("answer failed: %r" % answer)
        return 1
    # The offer's output is what the callee (B) sends to; the answer's output is what the caller (A) sends to.
    b_sends_to = media_target(offer["sdp"])
    a_sends_to = media_target(answer["sdp"])
    if args.media_host:
        b_sends_to = (args.media_host, b_sends_to[1])
        a_sends_to = (args.media_host, a_sends_to[1])
    print("call %s: A %s:%d -> relay %s:%d, B %s:%d -> relay %s:%d" % (
        call_id, args.local_ip, a.getsockname()[1], a_sends_to[0], a_sends_to[1],
        args.local_ip, b.getsockname()[1], b_sends_to[0], b_sends_to[1]))

    sent = {"A": [], "B": []}
    received = {"A": [], "B": []}
    socks = {"A": a, "B": b}
    ssrc = {"A": random.randrange(1 << 32), "B": random.randrange(1 << 32)}
    seq0 = {"A": random.randrange(1 << 16), "B": random.randrange(1 << 16)}
    peer = {"A": "B", "B": "A"}

    def drain(wait):
        deadline = time.monotonic() + wait
        while True:
            left = max(0.0, deadline - time.monotonic())
            ready = select.select([a, b], [], [], left)[0]
            if not ready:
                return
            for s in ready:
                data = s.recv(65535)
                received["A" if s is a else "B"].append(data)

    for i in range(args.packets):
        for side, target in (("A", a_sends_to), ("B", b_sends_to)):
            pt = 0 if side == "A" else 8
            payload = bytes((i + j) & 0xFF for j in range(160)) if side == "A" else os.urandom(160)
            pkt = rtp_packet(seq0[side] + i, 160 * i, ssrc[side], pt, payload)
            socks[side].sendto(pkt, target)
            sent[side].append(pkt)
        drain(args.interval)
    drain(1.0)

    ok = True
    for side in ("A", "B"):
        got = received[peer[side]]
        want = sent[side]
        missing = [p for p in want if p not in got]
        extra = [p for p in got if p not in want]
        same_order = [p for p in got if p in want] == [p for p in want if p in got]
        # Every payload is distinct, so a packet received twice is a duplicate (never a stand-in for a lost one).
        duplicates = len(got) - len(set(got))
        print("%s->%s: sent %d, received %d, missing %d, unexpected %d, duplicated %d, order %s" % (
            side, peer[side], len(want), len(got), len(missing), len(extra), duplicates,
            "kept" if same_order else "CHANGED"))
        if len(missing) > args.allow_loss or extra or duplicates or not same_order:
            ok = False
    reply = ng.request({"command": "delete", "call-id": call_id, "from-tag": from_tag})
    if reply.get("result") != "ok":
        print("delete failed: %r" % reply)
        ok = False
    print("call: %s" % ("ok" if ok else "FAILED"))
    return 0 if ok else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for each NG reply")
    parser.add_argument("--retries", type=int, default=3, help="NG sends before giving up")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ping")
    p.add_argument("ng")
    c = sub.add_parser("call")
    c.add_argument("ng")
    c.add_argument("--local-ip", default="127.0.0.1", help="address the two endpoints bind to")
    c.add_argument("--sdp-ip", help="address the endpoints put in their SDP (default: --local-ip)")
    c.add_argument("--media-host", help="send RTP here instead of the address in the relay's SDP")
    c.add_argument("--packets", type=int, default=50, help="RTP packets each way")
    c.add_argument("--interval", type=float, default=0.005, help="seconds between packet pairs")
    c.add_argument("--allow-loss", type=int, default=0, help="packets each way that may go missing")
    args = parser.parse_args()
    try:
        return cmd_ping(args) if args.cmd == "ping" else cmd_call(args)
    except (OSError, ValueError, TimeoutError) as exc:
        print("%s: %s" % (args.cmd, exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
