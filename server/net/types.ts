// Networking types shared by the VM floor (vm/) and the network floor
// (vmnet/), which never import each other: vmnet/ produces these, vm/
// consumes them, daemon.ts connects the two.

/**
 * How a VM's NIC joins a vmnet network: through the network's host bridge
 * (the VM side opens a TAP on it), or through a datagram socket fd the
 * network backend relays Ethernet frames on (macOS vmnet; the receiver owns
 * the fd and must close it).
 */
export type NetworkAttachment = { bridge: string } | { fd: number };
