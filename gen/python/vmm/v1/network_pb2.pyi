import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from vmm.v1 import vmm_pb2 as _vmm_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NetworkMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NETWORK_MODE_UNSPECIFIED: _ClassVar[NetworkMode]
    NETWORK_MODE_HOST: _ClassVar[NetworkMode]
    NETWORK_MODE_SHARED: _ClassVar[NetworkMode]

class NetworkState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NETWORK_STATE_UNSPECIFIED: _ClassVar[NetworkState]
    NETWORK_STATE_STARTING: _ClassVar[NetworkState]
    NETWORK_STATE_READY: _ClassVar[NetworkState]
    NETWORK_STATE_FAILED: _ClassVar[NetworkState]
NETWORK_MODE_UNSPECIFIED: NetworkMode
NETWORK_MODE_HOST: NetworkMode
NETWORK_MODE_SHARED: NetworkMode
NETWORK_STATE_UNSPECIFIED: NetworkState
NETWORK_STATE_STARTING: NetworkState
NETWORK_STATE_READY: NetworkState
NETWORK_STATE_FAILED: NetworkState

class DhcpReservation(_message.Message):
    __slots__ = ("mac", "ipv4")
    MAC_FIELD_NUMBER: _ClassVar[int]
    IPV4_FIELD_NUMBER: _ClassVar[int]
    mac: str
    ipv4: str
    def __init__(self, mac: _Optional[str] = ..., ipv4: _Optional[str] = ...) -> None: ...

class NetworkPortForward(_message.Message):
    __slots__ = ("protocol", "listen_address", "listen_port", "internal_address", "internal_port", "path", "proxy_protocol")
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    LISTEN_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    LISTEN_PORT_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_PORT_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    PROXY_PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    protocol: _vmm_pb2.Protocol
    listen_address: str
    listen_port: int
    internal_address: str
    internal_port: int
    path: _vmm_pb2.ForwardPath
    proxy_protocol: bool
    def __init__(self, protocol: _Optional[_Union[_vmm_pb2.Protocol, str]] = ..., listen_address: _Optional[str] = ..., listen_port: _Optional[int] = ..., internal_address: _Optional[str] = ..., internal_port: _Optional[int] = ..., path: _Optional[_Union[_vmm_pb2.ForwardPath, str]] = ..., proxy_protocol: _Optional[bool] = ...) -> None: ...

class NetworkConfig(_message.Message):
    __slots__ = ("mode", "ipv4_subnet", "ipv6_prefix", "mtu", "dhcp_enabled", "dhcp_reservations", "nat44_enabled", "nat66_enabled", "dns_proxy_enabled", "router_advertisement_enabled", "port_forwards", "external_interface")
    MODE_FIELD_NUMBER: _ClassVar[int]
    IPV4_SUBNET_FIELD_NUMBER: _ClassVar[int]
    IPV6_PREFIX_FIELD_NUMBER: _ClassVar[int]
    MTU_FIELD_NUMBER: _ClassVar[int]
    DHCP_ENABLED_FIELD_NUMBER: _ClassVar[int]
    DHCP_RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    NAT44_ENABLED_FIELD_NUMBER: _ClassVar[int]
    NAT66_ENABLED_FIELD_NUMBER: _ClassVar[int]
    DNS_PROXY_ENABLED_FIELD_NUMBER: _ClassVar[int]
    ROUTER_ADVERTISEMENT_ENABLED_FIELD_NUMBER: _ClassVar[int]
    PORT_FORWARDS_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_INTERFACE_FIELD_NUMBER: _ClassVar[int]
    mode: NetworkMode
    ipv4_subnet: str
    ipv6_prefix: str
    mtu: int
    dhcp_enabled: bool
    dhcp_reservations: _containers.RepeatedCompositeFieldContainer[DhcpReservation]
    nat44_enabled: bool
    nat66_enabled: bool
    dns_proxy_enabled: bool
    router_advertisement_enabled: bool
    port_forwards: _containers.RepeatedCompositeFieldContainer[NetworkPortForward]
    external_interface: str
    def __init__(self, mode: _Optional[_Union[NetworkMode, str]] = ..., ipv4_subnet: _Optional[str] = ..., ipv6_prefix: _Optional[str] = ..., mtu: _Optional[int] = ..., dhcp_enabled: _Optional[bool] = ..., dhcp_reservations: _Optional[_Iterable[_Union[DhcpReservation, _Mapping]]] = ..., nat44_enabled: _Optional[bool] = ..., nat66_enabled: _Optional[bool] = ..., dns_proxy_enabled: _Optional[bool] = ..., router_advertisement_enabled: _Optional[bool] = ..., port_forwards: _Optional[_Iterable[_Union[NetworkPortForward, _Mapping]]] = ..., external_interface: _Optional[str] = ...) -> None: ...

class Network(_message.Message):
    __slots__ = ("id", "name", "config", "serialization", "bridge", "attached_vm_ids", "holder_ids", "created_at", "ipv4_gateway", "state", "error", "state_changed_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    SERIALIZATION_FIELD_NUMBER: _ClassVar[int]
    BRIDGE_FIELD_NUMBER: _ClassVar[int]
    ATTACHED_VM_IDS_FIELD_NUMBER: _ClassVar[int]
    HOLDER_IDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    IPV4_GATEWAY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STATE_CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    config: NetworkConfig
    serialization: str
    bridge: str
    attached_vm_ids: _containers.RepeatedScalarFieldContainer[str]
    holder_ids: _containers.RepeatedScalarFieldContainer[str]
    created_at: _timestamp_pb2.Timestamp
    ipv4_gateway: str
    state: NetworkState
    error: str
    state_changed_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., config: _Optional[_Union[NetworkConfig, _Mapping]] = ..., serialization: _Optional[str] = ..., bridge: _Optional[str] = ..., attached_vm_ids: _Optional[_Iterable[str]] = ..., holder_ids: _Optional[_Iterable[str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ipv4_gateway: _Optional[str] = ..., state: _Optional[_Union[NetworkState, str]] = ..., error: _Optional[str] = ..., state_changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateNetworkRequest(_message.Message):
    __slots__ = ("name", "config")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    name: str
    config: NetworkConfig
    def __init__(self, name: _Optional[str] = ..., config: _Optional[_Union[NetworkConfig, _Mapping]] = ...) -> None: ...

class CreateNetworkResponse(_message.Message):
    __slots__ = ("network",)
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    network: Network
    def __init__(self, network: _Optional[_Union[Network, _Mapping]] = ...) -> None: ...

class GetNetworkRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetNetworkResponse(_message.Message):
    __slots__ = ("network",)
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    network: Network
    def __init__(self, network: _Optional[_Union[Network, _Mapping]] = ...) -> None: ...

class ListNetworksRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListNetworksResponse(_message.Message):
    __slots__ = ("networks", "next_page_token")
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    networks: _containers.RepeatedCompositeFieldContainer[Network]
    next_page_token: str
    def __init__(self, networks: _Optional[_Iterable[_Union[Network, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteNetworkRequest(_message.Message):
    __slots__ = ("id", "force")
    ID_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    id: str
    force: bool
    def __init__(self, id: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class DeleteNetworkResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AcquireNetworkRequest(_message.Message):
    __slots__ = ("serialization", "holder_description")
    SERIALIZATION_FIELD_NUMBER: _ClassVar[int]
    HOLDER_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    serialization: str
    holder_description: str
    def __init__(self, serialization: _Optional[str] = ..., holder_description: _Optional[str] = ...) -> None: ...

class AcquireNetworkResponse(_message.Message):
    __slots__ = ("network", "holder_id")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    HOLDER_ID_FIELD_NUMBER: _ClassVar[int]
    network: Network
    holder_id: str
    def __init__(self, network: _Optional[_Union[Network, _Mapping]] = ..., holder_id: _Optional[str] = ...) -> None: ...

class ReleaseNetworkRequest(_message.Message):
    __slots__ = ("network_id", "holder_id")
    NETWORK_ID_FIELD_NUMBER: _ClassVar[int]
    HOLDER_ID_FIELD_NUMBER: _ClassVar[int]
    network_id: str
    holder_id: str
    def __init__(self, network_id: _Optional[str] = ..., holder_id: _Optional[str] = ...) -> None: ...

class ReleaseNetworkResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
