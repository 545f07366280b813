"""Live-daemon tests of the Python client (grpcio), over the unix socket and TCP.

    VMM_SOCKET=/path/vmmd.sock VMM_URL=http://127.0.0.1:PORT [VMM_TOKEN=...] \
        .tools/venv/bin/python -m pytest clients/python

test/integration/clients.test.ts starts a daemon and runs this. Missing
environment fails the run at collection; nothing is skipped.
"""

from __future__ import annotations

import os
import re
import threading

import grpc
import pytest

from vmm.v1 import vmm_pb2
from vmm_client import Target, connect, target_from_env

for _var in ("VMM_SOCKET", "VMM_URL"):
    if not os.environ.get(_var):
        raise RuntimeError(f"{_var} must be set (VMM_SOCKET=daemon unix socket, VMM_URL=http://127.0.0.1:PORT, VMM_TOKEN when tokens are configured)")

TOKEN = os.environ.get("VMM_TOKEN", "")
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
TIMEOUT = 30
# Host ports distinct from other clients' records on the same daemon.
PORT_BASE = 31000 + (os.getpid() % 500) * 20
VIAS = ["unix", "tcp"]


def _id(via: str, what: str) -> str:
    return f"py-{what}-{via}-{os.getpid()}"


@pytest.fixture(params=VIAS)
def via(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def clients(via: str):
    with connect(target_from_env(via)) as c:
        yield c


def _events(info: vmm_pb2.VmInfo) -> list[str]:
    return [e.kind for e in info.events]


def test_lifecycle(clients, via: str) -> None:
    vid = _id(via, "life")
    p1 = PORT_BASE + (0 if via == "unix" else 2)
    p2 = p1 + 1
    name = f"Python client {vid}"
    c = clients.vmm

    vm = c.CreateVm(
        vmm_pb2.CreateVmRequest(
            id=vid,
            config=vmm_pb2.VmConfig(
                name=name,
                memory_mib=128,
                ports=[vmm_pb2.PortMapping(protocol=vmm_pb2.PROTOCOL_TCP, host_port=p1, vm_port=22)],
            ),
        ),
        timeout=TIMEOUT,
    ).vm
    try:
        assert (vm.id, vm.name, vm.status) == (vid, name, vmm_pb2.VM_STATUS_STOPPED)
        assert vm.config.memory_mib == 128 and vm.config.vcpus == 1
        assert len(vm.nics) == 1 and MAC_RE.match(vm.nics[0].mac), vm.nics
        mac = vm.nics[0].mac
        assert list(vm.config.ports) == [vmm_pb2.PortMapping(protocol=vmm_pb2.PROTOCOL_TCP, host_address="127.0.0.1", host_port=p1, vm_port=22)]

        with pytest.raises(grpc.RpcError) as ei:
            c.CreateVm(vmm_pb2.CreateVmRequest(id=vid, config=vmm_pb2.VmConfig(name="dup")), timeout=TIMEOUT)
        assert ei.value.code() == grpc.StatusCode.ALREADY_EXISTS, ei.value.details()

        lst = c.ListVms(vmm_pb2.ListVmsRequest(ids=[vid]), timeout=TIMEOUT)
        assert lst.total_size == 1 and [v.id for v in lst.vms] == [vid] and lst.vms[0].HasField("config")
        lst = c.ListVms(vmm_pb2.ListVmsRequest(keyword=vid, brief=True), timeout=TIMEOUT)
        assert [v.id for v in lst.vms] == [vid]
        assert not lst.vms[0].HasField("config") and len(lst.vms[0].events) == 0
        assert vid in [v.id for v in c.ListVms(vmm_pb2.ListVmsRequest(), timeout=TIMEOUT).vms]

        info = c.GetInfo(vmm_pb2.GetInfoRequest(id=vid), timeout=TIMEOUT).vm
        assert (info.id, info.name, info.nics[0].mac, info.pid, info.uptime_seconds) == (vid, name, mac, 0, 0)
        assert "created" in _events(info)

        new_name = name + " (renamed)"
        up = c.UpdateVm(
            vmm_pb2.UpdateVmRequest(
                id=vid,
                name=new_name,
                update_ports=True,
                ports=[
                    vmm_pb2.PortMapping(protocol=vmm_pb2.PROTOCOL_UDP, host_port=p2, vm_port=53),
                    vmm_pb2.PortMapping(protocol=vmm_pb2.PROTOCOL_TCP, host_address="127.0.0.1", host_port=p1, vm_port=8080),
                ],
            ),
            timeout=TIMEOUT,
        ).vm
        assert up.name == new_name and up.config.memory_mib == 128
        assert [(p.protocol, p.host_port, p.vm_port) for p in up.config.ports] == [
            (vmm_pb2.PROTOCOL_UDP, p2, 53),
            (vmm_pb2.PROTOCOL_TCP, p1, 8080),
        ]
        # Omitted fields are left unchanged (proto3 optional: unset, not zero).
        up2 = c.UpdateVm(vmm_pb2.UpdateVmRequest(id=vid, vcpus=2), timeout=TIMEOUT).vm
        assert up2.name == new_name and len(up2.config.ports) == 2 and up2.config.vcpus == 2

        info = c.GetInfo(vmm_pb2.GetInfoRequest(id=vid), timeout=TIMEOUT).vm
        assert info.name == new_name and len(info.config.ports) == 2 and info.nics[0].mac == mac
        assert "updated" in _events(info)
    finally:
        try:
            c.RemoveVm(vmm_pb2.RemoveVmRequest(id=vid, force=True), timeout=TIMEOUT)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise

    with pytest.raises(grpc.RpcError) as ei:
        c.GetInfo(vmm_pb2.GetInfoRequest(id=vid), timeout=TIMEOUT)
    assert ei.value.code() == grpc.StatusCode.NOT_FOUND
    assert vid in ei.value.details()
    with pytest.raises(grpc.RpcError) as ei:
        c.RemoveVm(vmm_pb2.RemoveVmRequest(id=vid), timeout=TIMEOUT)
    assert ei.value.code() == grpc.StatusCode.NOT_FOUND
    assert c.ListVms(vmm_pb2.ListVmsRequest(ids=[vid]), timeout=TIMEOUT).total_size == 0


def test_invalid_argument_names_field(clients) -> None:
    with pytest.raises(grpc.RpcError) as ei:
        clients.vmm.CreateVm(
            vmm_pb2.CreateVmRequest(
                config=vmm_pb2.VmConfig(
                    name="bad-port",
                    ports=[vmm_pb2.PortMapping(protocol=vmm_pb2.PROTOCOL_TCP, host_port=70000, vm_port=22)],
                )
            ),
            timeout=TIMEOUT,
        )
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "config.ports[0].host_port" in ei.value.details()


def test_watch_events(clients, via: str) -> None:
    """The server stream delivers the created event (token metadata on streams too)."""
    stream = clients.vmm.WatchEvents(vmm_pb2.WatchEventsRequest(), timeout=TIMEOUT)
    got: list[vmm_pb2.WatchEventsResponse] = []
    created: list[str] = []
    seen = threading.Event()

    def read() -> None:
        try:
            for ev in stream:
                got.append(ev)
                if ev.vm_id in created and ev.event.kind == "created":
                    seen.set()
                    return
        except grpc.RpcError:
            pass

    threading.Thread(target=read, daemon=True).start()
    # The daemon sends response headers with the first event, so there is no
    # signal that the subscription is live: create VMs until one is seen.
    try:
        for i in range(10):
            vid = _id(via, f"watch{i}")
            created.append(vid)
            clients.vmm.CreateVm(vmm_pb2.CreateVmRequest(id=vid, config=vmm_pb2.VmConfig(name=vid)), timeout=TIMEOUT)
            if seen.wait(1.0):
                break
        assert seen.is_set(), f"no created event for {created}; got {got}"
    finally:
        stream.cancel()
        for vid in created:
            clients.vmm.RemoveVm(vmm_pb2.RemoveVmRequest(id=vid), timeout=TIMEOUT)


def test_health(via: str) -> None:
    """grpc.health.v1.Health/Check needs no token. Raw bytes: the health
    messages are not part of gen/python (empty request; status SERVING = 1)."""
    t = target_from_env(via)
    with connect(Target(socket=t.socket, address=t.address)) as c:
        check = c.channel.unary_unary("/grpc.health.v1.Health/Check")
        assert check(b"", timeout=TIMEOUT) == b"\x08\x01"


def test_meta_auth_required(clients) -> None:
    meta = clients.vmm.GetMeta(vmm_pb2.GetMetaRequest(), timeout=TIMEOUT)
    assert re.match(r"^\d+\.\d+\.\d+", meta.version)
    assert meta.auth_required == (TOKEN != "")


@pytest.mark.parametrize("token", ["", "wrong-token-0123456789"])
def test_bad_token_refused(via: str, token: str) -> None:
    if TOKEN == "":
        # Without tokens configured every call is allowed: check that instead.
        with connect(target_from_env(via)) as c:
            c.vmm.GetMeta(vmm_pb2.GetMetaRequest(), timeout=TIMEOUT)
        return
    t = target_from_env(via)
    with connect(Target(socket=t.socket, address=t.address, token=token)) as c:
        with pytest.raises(grpc.RpcError) as ei:
            c.vmm.GetMeta(vmm_pb2.GetMetaRequest(), timeout=TIMEOUT)
    assert ei.value.code() == grpc.StatusCode.UNAUTHENTICATED, ei.value.details()
