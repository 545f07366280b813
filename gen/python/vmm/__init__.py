"""Generated protobuf and gRPC modules for the vmm API (package vmm.v1)."""
