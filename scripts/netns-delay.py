#!/usr/bin/env python3
"""Delay the packets of one NFQUEUE queue: a user-space stand-in for `tc netem delay`.

Used by scripts/netns-cluster.sh on kernels built without sch_netem. The script sends a
node's outgoing packets to queue QUEUE (an iptables `NFQUEUE --queue-bypass` rule in
the node's network namespace) and starts this program in that namespace. It holds each
packet for DELAY ms plus a uniform random jitter in [-JITTER, +JITTER] ms, then lets it
go on its way (verdict ACCEPT). The packets stay in the kernel the whole time: only
their ids travel to this process, so nothing is copied or re-checksummed.

How it talks to the kernel: a raw netlink socket (NETLINK_NETFILTER), the nfnetlink_queue
protocol of <linux/netfilter/nfnetlink_queue.h>, with the standard library only:
  - bind the queue, copy mode META (no payload), a long queue, FAIL_OPEN (a full queue
    lets packets through instead of dropping them) and GSO (big TCP segments are queued
    whole, not split);
  - for each queued packet, note its id and its release time;
  - release in order with one batch verdict (ACCEPT every id up to N).

Shortcuts taken:
  - Packets leave in the order they came (no reordering, as netem does with `rate`):
    a packet's release time is at least the one before it, so under a burst the jitter
    only ever adds delay.
  - A notification lost to a full socket buffer costs nothing: the batch verdict covers
    every id up to the next one seen.
  - On exit (SIGTERM) every held packet is released; if this process dies, the rule's
    `--queue-bypass` lets new packets through undelayed.
"""

import argparse
import heapq
import os
import random
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_CONFIG = 2
NFQNL_MSG_VERDICT_BATCH = 3
NFQNL_CFG_CMD_BIND = 1
NFQNL_CFG_CMD_UNBIND = 2
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_CFG_MASK = 4
NFQA_CFG_FLAGS = 5
NFQA_CFG_F_FAIL_OPEN = 1
NFQA_CFG_F_GSO = 4
NFQNL_COPY_META = 1
NF_ACCEPT = 1
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5


def attr(kind, payload):
    """One netlink attribute, padded to 4 bytes."""
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


class Queue:
    def __init__(self, num, maxlen):
        self.num = num
        self.seq = 0
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
        self.sock.bind((0, 0))
        cmd = lambda c: attr(NFQA_CFG_CMD, struct.pack("!BxH", c, socket.AF_INET))
        self.request(NFQNL_MSG_CONFIG, cmd(NFQNL_CFG_CMD_BIND), ack=True)
        flags = NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO
        self.request(
            NFQNL_MSG_CONFIG,
            attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META))
            + attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", maxlen))
            + attr(NFQA_CFG_MASK, struct.pack("!I", flags))
            + attr(NFQA_CFG_FLAGS, struct.pack("!I", flags)),
            ack=True,
        )

    def request(self, msg, attrs, ack=False):
        self.seq += 1
        body = struct.pack("!BBH", socket.AF_UNSPEC, 0, self.num) + attrs
        flags = NLM_F_REQUEST | (NLM_F_ACK if ack else 0)
        header = struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg, flags, self.seq, 0)
        self.sock.send(header + body)
        if ack:
            data = self.sock.recv(65536)
            _, kind, _, _, _ = struct.unpack_from("=IHHII", data)
            if kind == NLMSG_ERROR:
                (err,) = struct.unpack_from("=i", data, 16)
                if err != 0:
                    raise OSError(-err, f"nfnetlink_queue config of queue {self.num}: {os.strerror(-err)}")

    def accept_up_to(self, packet_id):
        self.request(NFQNL_MSG_VERDICT_BATCH, attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, packet_id)))

    def packet_ids(self):
        """The ids of the packets in the notifications waiting on the socket."""
        ids = []
        while True:
            try:
                data = self.sock.recv(1 << 20, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return ids
            off = 0
            while off + 16 <= len(data):
                length, kind, _, _, _ = struct.unpack_from("=IHHII", data, off)
                if length < 16:
                    break
                if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                    a = off + 20  # after nlmsghdr and nfgenmsg
                    while a + 4 <= off + length:
                        alen, atype = struct.unpack_from("=HH", data, a)
                        if alen < 4:
                            break
                        if atype & 0x3FFF == NFQA_PACKET_HDR:
                            ids.append(struct.unpack_from("!I", data, a + 4)[0])
                        a += (alen + 3) & ~3
                off += (length + 3) & ~3


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--queue", type=int, default=0, help="NFQUEUE number (default 0)")
    p.add_argument("--delay", type=float, required=True, help="delay in ms")
    p.add_argument("--jitter", type=float, default=0.0, help="uniform jitter +/- ms (default 0)")
    p.add_argument("--maxlen", type=int, default=65536, help="packets the kernel may hold (default 65536)")
    a = p.parse_args()
    if a.delay < 0 or a.jitter < 0 or a.jitter > a.delay:
        p.error("need 0 <= jitter <= delay")

    q = Queue(a.queue, a.maxlen)
    held = []  # (release time, packet id), release times non-decreasing
    last_release = 0.0
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    print(f"delaying queue {a.queue}: {a.delay} ms +/- {a.jitter} ms", flush=True)
    while not stopping:
        # Wake at the next release, and at least every 100 ms to notice SIGTERM.
        timeout = 0.1
        if held:
            timeout = min(timeout, max(0.0, held[0][0] - time.monotonic()))
        try:
            readable, _, _ = select.select([q.sock], [], [], timeout)
        except InterruptedError:
            continue
        now = time.monotonic()
        if readable:
            for pid in q.packet_ids():
                d = a.delay + random.uniform(-a.jitter, a.jitter)
                last_release = max(last_release, now + d / 1000.0)
                heapq.heappush(held, (last_release, pid))
        due = None
        while held and held[0][0] <= now:
            due = heapq.heappop(held)[1]
        if due is not None:
            q.accept_up_to(due)
    if held:
        q.accept_up_to(max(pid for _, pid in held))
    return 0


if __name__ == "__main__":
    sys.exit(main())
