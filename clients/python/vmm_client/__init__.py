"""gRPC client helpers for the vmm daemon (proto package ``vmm.v1``).

The generated messages and stubs come from the ``vmm-api`` package
(``gen/python``); this module only builds channels:

    from vmm_client import Target, connect
    from vmm.v1 import vmm_pb2

    with connect(Target(socket="/var/lib/vmm/vmmd.sock")) as c:
        print(c.vmm.GetMeta(vmm_pb2.GetMetaRequest()).version)

A ``Target`` names the daemon's unix socket or its TCP address
("127.0.0.1:8080" or "http://127.0.0.1:8080"); a token, when given, is sent
as ``authorization: Bearer <token>`` metadata on every call. The daemon
serves plain gRPC over cleartext HTTP/2, so channels are insecure channels.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Optional

import grpc

from vmm.v1 import network_pb2_grpc, vmm_pb2_grpc

__all__ = ["Target", "Clients", "connect", "channel", "target_from_env"]


@dataclasses.dataclass(frozen=True)
class Target:
    """Where the daemon listens. ``socket`` wins over ``address``."""

    socket: str = ""
    address: str = ""
    token: str = ""

    def grpc_target(self) -> str:
        if self.socket:
            return "unix:" + self.socket
        if not self.address:
            raise ValueError("vmm_client.Target needs a socket or an address")
        addr = self.address
        if addr.startswith("https://"):
            raise ValueError(f"{addr!r}: the daemon serves cleartext only; use http:// or host:port")
        if addr.startswith("http://"):
            addr = addr[len("http://") :]
        return addr.rstrip("/")


def target_from_env(via: str = "unix", env: Optional[dict] = None) -> Target:
    """A Target from VMM_SOCKET / VMM_URL / VMM_TOKEN; ``via`` is "unix" or "tcp"."""
    env = os.environ if env is None else env
    token = env.get("VMM_TOKEN", "")
    if via == "unix":
        if not env.get("VMM_SOCKET"):
            raise RuntimeError("VMM_SOCKET (the daemon's unix socket path) is not set")
        return Target(socket=env["VMM_SOCKET"], token=token)
    if via == "tcp":
        if not env.get("VMM_URL"):
            raise RuntimeError("VMM_URL (http://127.0.0.1:PORT) is not set")
        return Target(address=env["VMM_URL"], token=token)
    raise ValueError(f"via must be 'unix' or 'tcp', not {via!r}")


class _CallDetails(grpc.ClientCallDetails):  # type: ignore[misc]
    def __init__(self, d: grpc.ClientCallDetails, metadata: Any) -> None:
        self.method = d.method
        self.timeout = d.timeout
        self.metadata = metadata
        self.credentials = d.credentials
        self.wait_for_ready = getattr(d, "wait_for_ready", None)
        self.compression = getattr(d, "compression", None)


class _Bearer(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
):
    """Adds the authorization metadata. (grpc's access-token call credentials
    require a secure channel; the daemon's loopback/unix endpoints are not.)"""

    def __init__(self, token: str) -> None:
        self._md = ("authorization", "Bearer " + token)

    def _details(self, d: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        md = [m for m in (d.metadata or []) if m[0] != "authorization"]
        return _CallDetails(d, md + [self._md])

    def intercept_unary_unary(self, cont: Callable, d: grpc.ClientCallDetails, req: Any) -> Any:
        return cont(self._details(d), req)

    def intercept_unary_stream(self, cont: Callable, d: grpc.ClientCallDetails, req: Any) -> Any:
        return cont(self._details(d), req)


def channel(t: Target) -> grpc.Channel:
    """An insecure gRPC channel to the daemon, with the bearer token if any."""
    # Over a unix socket grpc-core sends the percent-encoded path as
    # :authority ("tmp%2Fvmmd.sock"); the daemon accepts that.
    ch = grpc.insecure_channel(t.grpc_target())
    if t.token:
        ch = grpc.intercept_channel(ch, _Bearer(t.token))
    return ch


@dataclasses.dataclass
class Clients:
    """Stubs of both services over one channel. Use as a context manager."""

    channel: grpc.Channel
    vmm: vmm_pb2_grpc.VmmServiceStub
    network: network_pb2_grpc.NetworkServiceStub

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "Clients":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(t: Target) -> Clients:
    ch = channel(t)
    return Clients(ch, vmm_pb2_grpc.VmmServiceStub(ch), network_pb2_grpc.NetworkServiceStub(ch))
