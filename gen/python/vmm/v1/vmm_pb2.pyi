import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NetworkingMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NETWORKING_MODE_UNSPECIFIED: _ClassVar[NetworkingMode]
    NETWORKING_MODE_USER: _ClassVar[NetworkingMode]
    NETWORKING_MODE_PASST: _ClassVar[NetworkingMode]
    NETWORKING_MODE_BRIDGE: _ClassVar[NetworkingMode]
    NETWORKING_MODE_TAP: _ClassVar[NetworkingMode]
    NETWORKING_MODE_MACVTAP: _ClassVar[NetworkingMode]
    NETWORKING_MODE_VMNET: _ClassVar[NetworkingMode]
    NETWORKING_MODE_CUSTOM: _ClassVar[NetworkingMode]

class Protocol(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROTOCOL_UNSPECIFIED: _ClassVar[Protocol]
    PROTOCOL_TCP: _ClassVar[Protocol]
    PROTOCOL_UDP: _ClassVar[Protocol]

class ForwardPath(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FORWARD_PATH_UNSPECIFIED: _ClassVar[ForwardPath]
    FORWARD_PATH_USERSPACE: _ClassVar[ForwardPath]
    FORWARD_PATH_NAT: _ClassVar[ForwardPath]

class VmStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VM_STATUS_UNSPECIFIED: _ClassVar[VmStatus]
    VM_STATUS_STOPPED: _ClassVar[VmStatus]
    VM_STATUS_STARTING: _ClassVar[VmStatus]
    VM_STATUS_RUNNING: _ClassVar[VmStatus]
    VM_STATUS_STOPPING: _ClassVar[VmStatus]
    VM_STATUS_EXITED: _ClassVar[VmStatus]

class LeaseAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEASE_ACTION_UNSPECIFIED: _ClassVar[LeaseAction]
    LEASE_ACTION_ADD: _ClassVar[LeaseAction]
    LEASE_ACTION_OLD: _ClassVar[LeaseAction]
    LEASE_ACTION_DEL: _ClassVar[LeaseAction]

class LeaseVerification(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEASE_VERIFICATION_UNSPECIFIED: _ClassVar[LeaseVerification]
    LEASE_VERIFICATION_PENDING: _ClassVar[LeaseVerification]
    LEASE_VERIFICATION_VERIFIED: _ClassVar[LeaseVerification]
    LEASE_VERIFICATION_SILENT: _ClassVar[LeaseVerification]
    LEASE_VERIFICATION_TRUSTED: _ClassVar[LeaseVerification]
NETWORKING_MODE_UNSPECIFIED: NetworkingMode
NETWORKING_MODE_USER: NetworkingMode
NETWORKING_MODE_PASST: NetworkingMode
NETWORKING_MODE_BRIDGE: NetworkingMode
NETWORKING_MODE_TAP: NetworkingMode
NETWORKING_MODE_MACVTAP: NetworkingMode
NETWORKING_MODE_VMNET: NetworkingMode
NETWORKING_MODE_CUSTOM: NetworkingMode
PROTOCOL_UNSPECIFIED: Protocol
PROTOCOL_TCP: Protocol
PROTOCOL_UDP: Protocol
FORWARD_PATH_UNSPECIFIED: ForwardPath
FORWARD_PATH_USERSPACE: ForwardPath
FORWARD_PATH_NAT: ForwardPath
VM_STATUS_UNSPECIFIED: VmStatus
VM_STATUS_STOPPED: VmStatus
VM_STATUS_STARTING: VmStatus
VM_STATUS_RUNNING: VmStatus
VM_STATUS_STOPPING: VmStatus
VM_STATUS_EXITED: VmStatus
LEASE_ACTION_UNSPECIFIED: LeaseAction
LEASE_ACTION_ADD: LeaseAction
LEASE_ACTION_OLD: LeaseAction
LEASE_ACTION_DEL: LeaseAction
LEASE_VERIFICATION_UNSPECIFIED: LeaseVerification
LEASE_VERIFICATION_PENDING: LeaseVerification
LEASE_VERIFICATION_VERIFIED: LeaseVerification
LEASE_VERIFICATION_SILENT: LeaseVerification
LEASE_VERIFICATION_TRUSTED: LeaseVerification

class PortMapping(_message.Message):
    __slots__ = ("protocol", "host_address", "host_port", "vm_port", "nic_index", "path", "proxy_protocol")
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    HOST_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HOST_PORT_FIELD_NUMBER: _ClassVar[int]
    VM_PORT_FIELD_NUMBER: _ClassVar[int]
    NIC_INDEX_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    PROXY_PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    protocol: Protocol
    host_address: str
    host_port: int
    vm_port: int
    nic_index: int
    path: ForwardPath
    proxy_protocol: bool
    def __init__(self, protocol: _Optional[_Union[Protocol, str]] = ..., host_address: _Optional[str] = ..., host_port: _Optional[int] = ..., vm_port: _Optional[int] = ..., nic_index: _Optional[int] = ..., path: _Optional[_Union[ForwardPath, str]] = ..., proxy_protocol: _Optional[bool] = ...) -> None: ...

class NicConfig(_message.Message):
    __slots__ = ("mode", "bridge", "macvtap_parent", "network_id", "custom_netdev")
    MODE_FIELD_NUMBER: _ClassVar[int]
    BRIDGE_FIELD_NUMBER: _ClassVar[int]
    MACVTAP_PARENT_FIELD_NUMBER: _ClassVar[int]
    NETWORK_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_NETDEV_FIELD_NUMBER: _ClassVar[int]
    mode: NetworkingMode
    bridge: str
    macvtap_parent: str
    network_id: str
    custom_netdev: str
    def __init__(self, mode: _Optional[_Union[NetworkingMode, str]] = ..., bridge: _Optional[str] = ..., macvtap_parent: _Optional[str] = ..., network_id: _Optional[str] = ..., custom_netdev: _Optional[str] = ...) -> None: ...

class VmConfig(_message.Message):
    __slots__ = ("name", "vcpus", "memory_mib", "kernel", "initrd", "cmdline", "disk", "nics", "ports", "auto_restart", "image", "image_size_mib", "disks", "cloud_init", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    KERNEL_FIELD_NUMBER: _ClassVar[int]
    INITRD_FIELD_NUMBER: _ClassVar[int]
    CMDLINE_FIELD_NUMBER: _ClassVar[int]
    DISK_FIELD_NUMBER: _ClassVar[int]
    NICS_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    AUTO_RESTART_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SIZE_MIB_FIELD_NUMBER: _ClassVar[int]
    DISKS_FIELD_NUMBER: _ClassVar[int]
    CLOUD_INIT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    vcpus: int
    memory_mib: int
    kernel: str
    initrd: str
    cmdline: str
    disk: str
    nics: _containers.RepeatedCompositeFieldContainer[NicConfig]
    ports: _containers.RepeatedCompositeFieldContainer[PortMapping]
    auto_restart: bool
    image: str
    image_size_mib: int
    disks: _containers.RepeatedCompositeFieldContainer[DiskConfig]
    cloud_init: CloudInit
    labels: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., vcpus: _Optional[int] = ..., memory_mib: _Optional[int] = ..., kernel: _Optional[str] = ..., initrd: _Optional[str] = ..., cmdline: _Optional[str] = ..., disk: _Optional[str] = ..., nics: _Optional[_Iterable[_Union[NicConfig, _Mapping]]] = ..., ports: _Optional[_Iterable[_Union[PortMapping, _Mapping]]] = ..., auto_restart: _Optional[bool] = ..., image: _Optional[str] = ..., image_size_mib: _Optional[int] = ..., disks: _Optional[_Iterable[_Union[DiskConfig, _Mapping]]] = ..., cloud_init: _Optional[_Union[CloudInit, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class DiskConfig(_message.Message):
    __slots__ = ("image", "size_mib")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    SIZE_MIB_FIELD_NUMBER: _ClassVar[int]
    image: str
    size_mib: int
    def __init__(self, image: _Optional[str] = ..., size_mib: _Optional[int] = ...) -> None: ...

class CloudInit(_message.Message):
    __slots__ = ("user_data", "ssh_authorized_keys", "hostname", "network_config")
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    SSH_AUTHORIZED_KEYS_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    NETWORK_CONFIG_FIELD_NUMBER: _ClassVar[int]
    user_data: str
    ssh_authorized_keys: _containers.RepeatedScalarFieldContainer[str]
    hostname: str
    network_config: str
    def __init__(self, user_data: _Optional[str] = ..., ssh_authorized_keys: _Optional[_Iterable[str]] = ..., hostname: _Optional[str] = ..., network_config: _Optional[str] = ...) -> None: ...

class DiskInfo(_message.Message):
    __slots__ = ("index", "path", "format", "image", "size_mib")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    SIZE_MIB_FIELD_NUMBER: _ClassVar[int]
    index: int
    path: str
    format: str
    image: str
    size_mib: int
    def __init__(self, index: _Optional[int] = ..., path: _Optional[str] = ..., format: _Optional[str] = ..., image: _Optional[str] = ..., size_mib: _Optional[int] = ...) -> None: ...

class Lease(_message.Message):
    __slots__ = ("ip", "hostname", "expires_at", "updated_at", "interface", "verification", "verified_at", "verification_detail")
    IP_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_DETAIL_FIELD_NUMBER: _ClassVar[int]
    ip: str
    hostname: str
    expires_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    interface: str
    verification: LeaseVerification
    verified_at: _timestamp_pb2.Timestamp
    verification_detail: str
    def __init__(self, ip: _Optional[str] = ..., hostname: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., interface: _Optional[str] = ..., verification: _Optional[_Union[LeaseVerification, str]] = ..., verified_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., verification_detail: _Optional[str] = ...) -> None: ...

class NicInfo(_message.Message):
    __slots__ = ("index", "mode", "mac", "bridge", "host_interface", "network_id", "lease")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    BRIDGE_FIELD_NUMBER: _ClassVar[int]
    HOST_INTERFACE_FIELD_NUMBER: _ClassVar[int]
    NETWORK_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    index: int
    mode: NetworkingMode
    mac: str
    bridge: str
    host_interface: str
    network_id: str
    lease: Lease
    def __init__(self, index: _Optional[int] = ..., mode: _Optional[_Union[NetworkingMode, str]] = ..., mac: _Optional[str] = ..., bridge: _Optional[str] = ..., host_interface: _Optional[str] = ..., network_id: _Optional[str] = ..., lease: _Optional[_Union[Lease, _Mapping]] = ...) -> None: ...

class ForwardCounters(_message.Message):
    __slots__ = ("connections_active", "connections_total", "bytes_to_guest", "bytes_from_guest", "sessions_active", "errors")
    CONNECTIONS_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    CONNECTIONS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    BYTES_TO_GUEST_FIELD_NUMBER: _ClassVar[int]
    BYTES_FROM_GUEST_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    connections_active: int
    connections_total: int
    bytes_to_guest: int
    bytes_from_guest: int
    sessions_active: int
    errors: int
    def __init__(self, connections_active: _Optional[int] = ..., connections_total: _Optional[int] = ..., bytes_to_guest: _Optional[int] = ..., bytes_from_guest: _Optional[int] = ..., sessions_active: _Optional[int] = ..., errors: _Optional[int] = ...) -> None: ...

class ForwardInfo(_message.Message):
    __slots__ = ("protocol", "listen_address", "listen_port", "target_address", "target_port", "counters", "relay", "nic_index", "proxy_protocol", "connect_failures", "last_connect_error", "error")
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    LISTEN_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    LISTEN_PORT_FIELD_NUMBER: _ClassVar[int]
    TARGET_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TARGET_PORT_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    RELAY_FIELD_NUMBER: _ClassVar[int]
    NIC_INDEX_FIELD_NUMBER: _ClassVar[int]
    PROXY_PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    CONNECT_FAILURES_FIELD_NUMBER: _ClassVar[int]
    LAST_CONNECT_ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    protocol: Protocol
    listen_address: str
    listen_port: int
    target_address: str
    target_port: int
    counters: ForwardCounters
    relay: str
    nic_index: int
    proxy_protocol: bool
    connect_failures: int
    last_connect_error: str
    error: str
    def __init__(self, protocol: _Optional[_Union[Protocol, str]] = ..., listen_address: _Optional[str] = ..., listen_port: _Optional[int] = ..., target_address: _Optional[str] = ..., target_port: _Optional[int] = ..., counters: _Optional[_Union[ForwardCounters, _Mapping]] = ..., relay: _Optional[str] = ..., nic_index: _Optional[int] = ..., proxy_protocol: _Optional[bool] = ..., connect_failures: _Optional[int] = ..., last_connect_error: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class VmEvent(_message.Message):
    __slots__ = ("time", "kind", "message")
    TIME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    kind: str
    message: str
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class VmInfo(_message.Message):
    __slots__ = ("id", "name", "status", "instance_id", "created_at", "started_at", "uptime_seconds", "config", "nics", "forwards", "events", "pid", "disks")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    NICS_FIELD_NUMBER: _ClassVar[int]
    FORWARDS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    DISKS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    status: VmStatus
    instance_id: str
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    uptime_seconds: int
    config: VmConfig
    nics: _containers.RepeatedCompositeFieldContainer[NicInfo]
    forwards: _containers.RepeatedCompositeFieldContainer[ForwardInfo]
    events: _containers.RepeatedCompositeFieldContainer[VmEvent]
    pid: int
    disks: _containers.RepeatedCompositeFieldContainer[DiskInfo]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., status: _Optional[_Union[VmStatus, str]] = ..., instance_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., uptime_seconds: _Optional[int] = ..., config: _Optional[_Union[VmConfig, _Mapping]] = ..., nics: _Optional[_Iterable[_Union[NicInfo, _Mapping]]] = ..., forwards: _Optional[_Iterable[_Union[ForwardInfo, _Mapping]]] = ..., events: _Optional[_Iterable[_Union[VmEvent, _Mapping]]] = ..., pid: _Optional[int] = ..., disks: _Optional[_Iterable[_Union[DiskInfo, _Mapping]]] = ...) -> None: ...

class CreateVmRequest(_message.Message):
    __slots__ = ("id", "config", "start")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    id: str
    config: VmConfig
    start: bool
    def __init__(self, id: _Optional[str] = ..., config: _Optional[_Union[VmConfig, _Mapping]] = ..., start: _Optional[bool] = ...) -> None: ...

class CreateVmResponse(_message.Message):
    __slots__ = ("vm",)
    VM_FIELD_NUMBER: _ClassVar[int]
    vm: VmInfo
    def __init__(self, vm: _Optional[_Union[VmInfo, _Mapping]] = ...) -> None: ...

class UpdateVmRequest(_message.Message):
    __slots__ = ("id", "name", "vcpus", "memory_mib", "kernel", "initrd", "cmdline", "auto_restart", "update_ports", "ports", "cloud_init", "labels")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    KERNEL_FIELD_NUMBER: _ClassVar[int]
    INITRD_FIELD_NUMBER: _ClassVar[int]
    CMDLINE_FIELD_NUMBER: _ClassVar[int]
    AUTO_RESTART_FIELD_NUMBER: _ClassVar[int]
    UPDATE_PORTS_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    CLOUD_INIT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    vcpus: int
    memory_mib: int
    kernel: str
    initrd: str
    cmdline: str
    auto_restart: bool
    update_ports: bool
    ports: _containers.RepeatedCompositeFieldContainer[PortMapping]
    cloud_init: CloudInit
    labels: VmLabels
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., vcpus: _Optional[int] = ..., memory_mib: _Optional[int] = ..., kernel: _Optional[str] = ..., initrd: _Optional[str] = ..., cmdline: _Optional[str] = ..., auto_restart: _Optional[bool] = ..., update_ports: _Optional[bool] = ..., ports: _Optional[_Iterable[_Union[PortMapping, _Mapping]]] = ..., cloud_init: _Optional[_Union[CloudInit, _Mapping]] = ..., labels: _Optional[_Union[VmLabels, _Mapping]] = ...) -> None: ...

class VmLabels(_message.Message):
    __slots__ = ("labels",)
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    LABELS_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.ScalarMap[str, str]
    def __init__(self, labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class UpdateVmResponse(_message.Message):
    __slots__ = ("vm",)
    VM_FIELD_NUMBER: _ClassVar[int]
    vm: VmInfo
    def __init__(self, vm: _Optional[_Union[VmInfo, _Mapping]] = ...) -> None: ...

class StartVmRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class StartVmResponse(_message.Message):
    __slots__ = ("vm",)
    VM_FIELD_NUMBER: _ClassVar[int]
    vm: VmInfo
    def __init__(self, vm: _Optional[_Union[VmInfo, _Mapping]] = ...) -> None: ...

class StopVmRequest(_message.Message):
    __slots__ = ("id", "force", "timeout_seconds")
    ID_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    force: bool
    timeout_seconds: int
    def __init__(self, id: _Optional[str] = ..., force: _Optional[bool] = ..., timeout_seconds: _Optional[int] = ...) -> None: ...

class StopVmResponse(_message.Message):
    __slots__ = ("vm",)
    VM_FIELD_NUMBER: _ClassVar[int]
    vm: VmInfo
    def __init__(self, vm: _Optional[_Union[VmInfo, _Mapping]] = ...) -> None: ...

class RemoveVmRequest(_message.Message):
    __slots__ = ("id", "force")
    ID_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    id: str
    force: bool
    def __init__(self, id: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class RemoveVmResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListVmsRequest(_message.Message):
    __slots__ = ("ids", "keyword", "page_size", "page_token", "brief", "names", "label_selector")
    IDS_FIELD_NUMBER: _ClassVar[int]
    KEYWORD_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    BRIEF_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    LABEL_SELECTOR_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    keyword: str
    page_size: int
    page_token: str
    brief: bool
    names: _containers.RepeatedScalarFieldContainer[str]
    label_selector: str
    def __init__(self, ids: _Optional[_Iterable[str]] = ..., keyword: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., brief: _Optional[bool] = ..., names: _Optional[_Iterable[str]] = ..., label_selector: _Optional[str] = ...) -> None: ...

class ListVmsResponse(_message.Message):
    __slots__ = ("vms", "next_page_token", "total_size")
    VMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    vms: _containers.RepeatedCompositeFieldContainer[VmInfo]
    next_page_token: str
    total_size: int
    def __init__(self, vms: _Optional[_Iterable[_Union[VmInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ("id", "max_events")
    ID_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    max_events: int
    def __init__(self, id: _Optional[str] = ..., max_events: _Optional[int] = ...) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("vm",)
    VM_FIELD_NUMBER: _ClassVar[int]
    vm: VmInfo
    def __init__(self, vm: _Optional[_Union[VmInfo, _Mapping]] = ...) -> None: ...

class ReportDhcpLeaseRequest(_message.Message):
    __slots__ = ("action", "mac", "ip", "hostname", "expires_unix", "interface")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_FIELD_NUMBER: _ClassVar[int]
    action: LeaseAction
    mac: str
    ip: str
    hostname: str
    expires_unix: int
    interface: str
    def __init__(self, action: _Optional[_Union[LeaseAction, str]] = ..., mac: _Optional[str] = ..., ip: _Optional[str] = ..., hostname: _Optional[str] = ..., expires_unix: _Optional[int] = ..., interface: _Optional[str] = ...) -> None: ...

class ReportDhcpLeaseResponse(_message.Message):
    __slots__ = ("vm_id", "nic_index", "forwards", "lease")
    VM_ID_FIELD_NUMBER: _ClassVar[int]
    NIC_INDEX_FIELD_NUMBER: _ClassVar[int]
    FORWARDS_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    vm_id: str
    nic_index: int
    forwards: _containers.RepeatedCompositeFieldContainer[ForwardInfo]
    lease: Lease
    def __init__(self, vm_id: _Optional[str] = ..., nic_index: _Optional[int] = ..., forwards: _Optional[_Iterable[_Union[ForwardInfo, _Mapping]]] = ..., lease: _Optional[_Union[Lease, _Mapping]] = ...) -> None: ...

class GetMetaRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetMetaResponse(_message.Message):
    __slots__ = ("version", "qemu_version", "networking_modes", "default_networking_mode", "forward_service_enabled", "forward_relay", "platform", "auth_required", "accel", "accel_reason", "images_dir", "host_cpus", "host_memory_bytes", "bridges")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    QEMU_VERSION_FIELD_NUMBER: _ClassVar[int]
    NETWORKING_MODES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_NETWORKING_MODE_FIELD_NUMBER: _ClassVar[int]
    FORWARD_SERVICE_ENABLED_FIELD_NUMBER: _ClassVar[int]
    FORWARD_RELAY_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    AUTH_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    ACCEL_FIELD_NUMBER: _ClassVar[int]
    ACCEL_REASON_FIELD_NUMBER: _ClassVar[int]
    IMAGES_DIR_FIELD_NUMBER: _ClassVar[int]
    HOST_CPUS_FIELD_NUMBER: _ClassVar[int]
    HOST_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    BRIDGES_FIELD_NUMBER: _ClassVar[int]
    version: str
    qemu_version: str
    networking_modes: _containers.RepeatedScalarFieldContainer[NetworkingMode]
    default_networking_mode: NetworkingMode
    forward_service_enabled: bool
    forward_relay: str
    platform: str
    auth_required: bool
    accel: str
    accel_reason: str
    images_dir: str
    host_cpus: int
    host_memory_bytes: int
    bridges: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, version: _Optional[str] = ..., qemu_version: _Optional[str] = ..., networking_modes: _Optional[_Iterable[_Union[NetworkingMode, str]]] = ..., default_networking_mode: _Optional[_Union[NetworkingMode, str]] = ..., forward_service_enabled: _Optional[bool] = ..., forward_relay: _Optional[str] = ..., platform: _Optional[str] = ..., auth_required: _Optional[bool] = ..., accel: _Optional[str] = ..., accel_reason: _Optional[str] = ..., images_dir: _Optional[str] = ..., host_cpus: _Optional[int] = ..., host_memory_bytes: _Optional[int] = ..., bridges: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("vm_id",)
    VM_ID_FIELD_NUMBER: _ClassVar[int]
    vm_id: str
    def __init__(self, vm_id: _Optional[str] = ...) -> None: ...

class WatchEventsResponse(_message.Message):
    __slots__ = ("vm_id", "event", "subscribed")
    VM_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    vm_id: str
    event: VmEvent
    subscribed: bool
    def __init__(self, vm_id: _Optional[str] = ..., event: _Optional[_Union[VmEvent, _Mapping]] = ..., subscribed: _Optional[bool] = ...) -> None: ...

class AttachConsoleRequest(_message.Message):
    __slots__ = ("vm_id", "input")
    VM_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    vm_id: str
    input: bytes
    def __init__(self, vm_id: _Optional[str] = ..., input: _Optional[bytes] = ...) -> None: ...

class AttachConsoleResponse(_message.Message):
    __slots__ = ("attached", "output")
    ATTACHED_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    attached: bool
    output: bytes
    def __init__(self, attached: _Optional[bool] = ..., output: _Optional[bytes] = ...) -> None: ...

class ListImagesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Image(_message.Message):
    __slots__ = ("name", "disk", "disk_format", "disk_file_bytes", "kernel", "initrd", "cmdline", "problem")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISK_FIELD_NUMBER: _ClassVar[int]
    DISK_FORMAT_FIELD_NUMBER: _ClassVar[int]
    DISK_FILE_BYTES_FIELD_NUMBER: _ClassVar[int]
    KERNEL_FIELD_NUMBER: _ClassVar[int]
    INITRD_FIELD_NUMBER: _ClassVar[int]
    CMDLINE_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    name: str
    disk: str
    disk_format: str
    disk_file_bytes: int
    kernel: str
    initrd: str
    cmdline: str
    problem: str
    def __init__(self, name: _Optional[str] = ..., disk: _Optional[str] = ..., disk_format: _Optional[str] = ..., disk_file_bytes: _Optional[int] = ..., kernel: _Optional[str] = ..., initrd: _Optional[str] = ..., cmdline: _Optional[str] = ..., problem: _Optional[str] = ...) -> None: ...

class ListImagesResponse(_message.Message):
    __slots__ = ("images",)
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Image]
    def __init__(self, images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ...) -> None: ...

class ReadConsoleRequest(_message.Message):
    __slots__ = ("id", "offset", "tail_lines", "instance_id", "follow", "max_chunk_bytes")
    ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    TAIL_LINES_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    MAX_CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    id: str
    offset: int
    tail_lines: int
    instance_id: str
    follow: bool
    max_chunk_bytes: int
    def __init__(self, id: _Optional[str] = ..., offset: _Optional[int] = ..., tail_lines: _Optional[int] = ..., instance_id: _Optional[str] = ..., follow: _Optional[bool] = ..., max_chunk_bytes: _Optional[int] = ...) -> None: ...

class ReadConsoleResponse(_message.Message):
    __slots__ = ("instance_id", "offset", "data", "first_offset")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    FIRST_OFFSET_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    offset: int
    data: bytes
    first_offset: int
    def __init__(self, instance_id: _Optional[str] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., first_offset: _Optional[int] = ...) -> None: ...

class GetVmStatsRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class NicStats(_message.Message):
    __slots__ = ("index", "host_interface", "rx_bytes", "rx_packets", "tx_bytes", "tx_packets")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    HOST_INTERFACE_FIELD_NUMBER: _ClassVar[int]
    RX_BYTES_FIELD_NUMBER: _ClassVar[int]
    RX_PACKETS_FIELD_NUMBER: _ClassVar[int]
    TX_BYTES_FIELD_NUMBER: _ClassVar[int]
    TX_PACKETS_FIELD_NUMBER: _ClassVar[int]
    index: int
    host_interface: str
    rx_bytes: int
    rx_packets: int
    tx_bytes: int
    tx_packets: int
    def __init__(self, index: _Optional[int] = ..., host_interface: _Optional[str] = ..., rx_bytes: _Optional[int] = ..., rx_packets: _Optional[int] = ..., tx_bytes: _Optional[int] = ..., tx_packets: _Optional[int] = ...) -> None: ...

class GetVmStatsResponse(_message.Message):
    __slots__ = ("id", "status", "instance_id", "sampled_at", "cpu_percent", "cpu_window_seconds", "cpu_seconds", "memory_rss_bytes", "memory_configured_bytes", "uptime_seconds", "nics", "threads")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLED_AT_FIELD_NUMBER: _ClassVar[int]
    CPU_PERCENT_FIELD_NUMBER: _ClassVar[int]
    CPU_WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CPU_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_CONFIGURED_BYTES_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    NICS_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: VmStatus
    instance_id: str
    sampled_at: _timestamp_pb2.Timestamp
    cpu_percent: float
    cpu_window_seconds: float
    cpu_seconds: float
    memory_rss_bytes: int
    memory_configured_bytes: int
    uptime_seconds: int
    nics: _containers.RepeatedCompositeFieldContainer[NicStats]
    threads: int
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[VmStatus, str]] = ..., instance_id: _Optional[str] = ..., sampled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cpu_percent: _Optional[float] = ..., cpu_window_seconds: _Optional[float] = ..., cpu_seconds: _Optional[float] = ..., memory_rss_bytes: _Optional[int] = ..., memory_configured_bytes: _Optional[int] = ..., uptime_seconds: _Optional[int] = ..., nics: _Optional[_Iterable[_Union[NicStats, _Mapping]]] = ..., threads: _Optional[int] = ...) -> None: ...
