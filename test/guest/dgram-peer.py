#!/usr/bin/env python3
"""The host end of a QEMU `-netdev dgram,local.type=fd` NIC, for tests.

Usage: dgram-peer.py TIMEOUT_S LOG QEMU_ARGV...

Creates an AF_UNIX SOCK_DGRAM socketpair, starts QEMU with one end as its
fd 3 (the argv must name fd 3), and reads datagrams from the other end until
one is a DHCP request (IPv4, UDP to port 67) or TIMEOUT_S passes. Prints one
JSON line: QEMU's pid at start ({"pid": N}), then the result
({"frames": N, "dhcp_src_mac": "..."} or {"frames": N, "error": "..."}).
Stops QEMU (SIGTERM, then SIGKILL) before it exits.
"""
import json
import os
import select
import socket
import subprocess
import sys
import time


def main() -> int:
    timeout, log, argv = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)

    def child_fd3() -> None:
        os.dup2(theirs.fileno(), 3)  # dup2 clears close-on-exec on fd 3

    # close_fds=False: Popen would close fd 3 after preexec_fn ran. Python's
    # own fds are close-on-exec (PEP 446), so QEMU inherits only 0-3.
    with open(log, "ab") as out:
        qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, preexec_fn=child_fd3, close_fds=False)
    theirs.close()
    print(json.dumps({"pid": qemu.pid}), flush=True)
    result = {"frames": 0}
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                result["error"] = f"no DHCP request within {timeout} s"
                break
            if qemu.poll() is not None:
                result["error"] = f"QEMU exited with {qemu.returncode}"
                break
            r, _, _ = select.select([ours], [], [], min(left, 0.5))
            if not r:
                continue
            frame = ours.recv(65536)
            result["frames"] += 1
            # Ethernet II: dst(6) src(6) type(2); IPv4 header; UDP dst port.
            if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
                continue
            ihl = (frame[14] & 0x0F) * 4
            dport = int.from_bytes(frame[14 + ihl + 2 : 14 + ihl + 4], "big")
            if dport == 67:
                result["dhcp_src_mac"] = frame[6:12].hex(":")
                break
    finally:
        qemu.terminate()
        try:
            qemu.wait(5)
        except subprocess.TimeoutExpired:
            qemu.kill()
            qemu.wait(5)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
