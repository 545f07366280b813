#!/usr/bin/env python3
"""Talks to a vmm daemon with grpcio: prints its metadata and its VMs, and
optionally creates (then removes) a VM record.

    python vmm_example.py --socket /var/lib/vmm/vmmd.sock
    python vmm_example.py --url http://127.0.0.1:8080 --token "$VMM_TOKEN"
    python vmm_example.py --socket ./vmmd.sock --create demo-1

Output, one line per item:

    daemon 0.1.0 on linux/x64 (qemu 7.2.22), default mode NETWORKING_MODE_USER
    vm demo-1 "demo-1" VM_STATUS_STOPPED mac 52:54:00:12:34:56
"""

from __future__ import annotations

import argparse
import os
import sys

import grpc

from vmm.v1 import vmm_pb2
from vmm_client import Target, connect


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--socket", default=os.environ.get("VMM_SOCKET", ""), help="daemon unix socket (default $VMM_SOCKET)")
    ap.add_argument("--url", default=os.environ.get("VMM_URL", ""), help="daemon address, e.g. http://127.0.0.1:8080 (default $VMM_URL)")
    ap.add_argument("--token", default=os.environ.get("VMM_TOKEN", ""), help="bearer token (default $VMM_TOKEN)")
    ap.add_argument("--create", default="", metavar="ID", help="create a VM record with this id, list, then remove it")
    args = ap.parse_args(argv)
    if not args.socket and not args.url:
        ap.error("--socket or --url is required")
    try:
        with connect(Target(socket=args.socket, address=args.url, token=args.token)) as c:
            meta = c.vmm.GetMeta(vmm_pb2.GetMetaRequest(), timeout=30)
            mode = vmm_pb2.NetworkingMode.Name(meta.default_networking_mode)
            print(f"daemon {meta.version} on {meta.platform} (qemu {meta.qemu_version or 'none'}), default mode {mode}")
            if args.create:
                vm = c.vmm.CreateVm(vmm_pb2.CreateVmRequest(id=args.create, config=vmm_pb2.VmConfig(name=args.create)), timeout=30).vm
                print(f"created {vm.id}")
            try:
                for v in c.vmm.ListVms(vmm_pb2.ListVmsRequest(brief=True), timeout=30).vms:
                    mac = f" mac {v.nics[0].mac}" if v.nics else ""
                    print(f'vm {v.id} "{v.name}" {vmm_pb2.VmStatus.Name(v.status)}{mac}')
            finally:
                if args.create:
                    c.vmm.RemoveVm(vmm_pb2.RemoveVmRequest(id=args.create), timeout=30)
                    print(f"removed {args.create}")
    except grpc.RpcError as e:
        print(f"vmm_example: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
